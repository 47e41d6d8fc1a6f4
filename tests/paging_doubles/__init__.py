"""PagerDuty and Opsgenie, served over HTTP on loopback: what the paging tests talk to.

Written from the providers' published references (PagerDuty's Events API v2 and REST API v2
`/oncalls` and `/users/{id}`; Opsgenie's Alert API and Who-is-on-call API): real paths, real
JSON shapes, the documented status codes. Each checks the payloads it receives and answers a
malformed one as the provider does (PagerDuty 400 "invalid event" with its `errors`; Opsgenie
422 for a semantic error such as an empty message, 400 for a body that is not JSON), a wrong
key with 401 (Opsgenie 401 / 422 too), and injected failures (429 rate limits, 5xx outages)
for as many requests as a test asks. What they accepted is kept in `events` / `requests`,
what they refused in `refused`, and every problem with a request the bot sent in
`violations` (a test ends by asserting it is empty).
"""

from tests.paging_doubles.base import Answer
from tests.paging_doubles.opsgenie import OgAlert, OpsgenieDouble
from tests.paging_doubles.pagerduty import PagerDutyDouble, PdIncident, PdOnCall, PdUser

__all__ = [
    "Answer",
    "OgAlert",
    "OpsgenieDouble",
    "PagerDutyDouble",
    "PdIncident",
    "PdOnCall",
    "PdUser",
]
