"""PagerDuty: Events API v2 for pages, REST API v2 for who is on call and who acknowledged.

Events: `POST {events_url}/v2/enqueue` with the integration's routing key; the incident's ID
is the `dedup_key`, so a retried trigger adds nothing and acknowledge/resolve find the same
PagerDuty incident. REST: `Authorization: Token token=<key>` with the v2 Accept header;
`GET /oncalls?schedule_ids[]=...&include[]=users` for who is on call, `GET /users/{id}` for
the e-mail of whoever acknowledged in PagerDuty.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bot.paging.http import Breaker, call, path_segment
from bot.paging.ports import PAGERDUTY_SEVERITY, Alert
from bot.policy.paging import PAGERDUTY, PAGERDUTY_ID, PagerDutyConfig

SessionSource = Callable[[], Awaitable[aiohttp.ClientSession]]
_SOURCE = "chatops-bot"
_ACCEPT = "application/vnd.pagerduty+json;version=2"


class PagerDutyPager:
    """The Pager port on PagerDuty."""

    provider = PAGERDUTY

    def __init__(
        self,
        config: PagerDutyConfig,
        *,
        routing_key: str,
        api_key: str | None,
        session: SessionSource,
        timeout: float = 10.0,
        breaker: Breaker | None = None,
    ) -> None:
        self.config = config
        self._routing_key = routing_key
        self._api_key = api_key
        self._session = session
        self.timeout = timeout
        self.breaker = breaker

    async def _enqueue(self, event: dict[str, Any]) -> None:
        await call(
            await self._session(),
            PAGERDUTY,
            "POST",
            f"{self.config.events_url}/v2/enqueue",
            headers={"Content-Type": "application/json"},
            json_body={"routing_key": self._routing_key, **event},
            timeout=self.timeout,
            breaker=self.breaker,
        )

    async def trigger(self, alert: Alert) -> None:
        """A trigger event: opens the PagerDuty incident, or joins the open one of its key."""
        payload: dict[str, Any] = {
            "summary": alert.summary[:1024],
            "source": _SOURCE,
            "severity": PAGERDUTY_SEVERITY[alert.severity],
            "class": "incident",
            "custom_details": {"incident": alert.incident_id, **alert.details},
        }
        if alert.details.get("services"):
            payload["component"] = alert.details["services"]
        await self._enqueue(
            {
                "event_action": "trigger",
                "dedup_key": alert.incident_id,
                "payload": payload,
                "links": [{"href": alert.link, "text": f"{alert.incident_id} in Slack"}],
                "client": _SOURCE,
                "client_url": alert.link,
            }
        )

    async def acknowledge(self, incident_id: str) -> None:
        await self._enqueue({"event_action": "acknowledge", "dedup_key": incident_id})

    async def resolve(self, incident_id: str) -> None:
        await self._enqueue({"event_action": "resolve", "dedup_key": incident_id})

    async def _rest(self, path: str, params: list[tuple[str, str]] | None = None) -> Any:
        return await call(
            await self._session(),
            PAGERDUTY,
            "GET",
            f"{self.config.api_url}{path}",
            headers={"Authorization": f"Token token={self._api_key}", "Accept": _ACCEPT},
            params=params,
            timeout=self.timeout,
            breaker=self.breaker,
        )

    async def oncall_emails(self) -> list[str] | None:
        """Whoever is on call now on the schedule (or escalation policy's first level)."""
        if not self._api_key or not (self.config.schedule or self.config.escalation_policy):
            return None
        params = [("include[]", "users"), ("earliest", "true")]
        if self.config.schedule:
            params.append(("schedule_ids[]", self.config.schedule))
        else:
            params.append(("escalation_policy_ids[]", self.config.escalation_policy or ""))
        body = await self._rest("/oncalls", params)
        emails: list[str] = []
        for oncall in body.get("oncalls") or []:
            if not self.config.schedule and oncall.get("escalation_level") != 1:
                continue  # an escalation policy: its first level is who is on call
            email = (oncall.get("user") or {}).get("email")
            if isinstance(email, str) and email not in emails:
                emails.append(email)
        return emails

    async def person_email(self, user_id: str) -> str | None:
        """The e-mail of a PagerDuty user (who acknowledged); None without an API key."""
        if not self._api_key:
            return None
        # The ID came in a webhook: `../../oncalls?x=1` must not become another request.
        body = await self._rest(
            f"/users/{path_segment(PAGERDUTY, user_id, PAGERDUTY_ID, 'user ID')}"
        )
        email = (body.get("user") or {}).get("email")
        return email if isinstance(email, str) else None
