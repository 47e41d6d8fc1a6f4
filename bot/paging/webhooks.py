"""What the paging services send back: verified first, then read into pydantic models.

PagerDuty V3 webhooks carry `X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>`,
keyed with the subscription's secret; during a secret rotation several comma-separated
signatures arrive and one valid one is enough. Opsgenie's outgoing webhook is not signed: the
integration sends a custom header we ask for (`X-ChatOps-Webhook-Secret`), compared in
constant time. Only acknowledgements are acted on; other events are read and ignored.
Identifiers are shape-checked here (they are stored, and a PagerDuty user ID becomes a URL
path): a signed body whose IDs are not IDs is refused like any unreadable one. A person's name
is kept with its control characters and bidi overrides written out (`\x00`): it goes on the
timeline and into Slack, and PostgreSQL cannot store a NUL.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from bot.policy.paging import OPSGENIE, PAGERDUTY, PAGERDUTY_ID, PROVIDER_ID
from bot.text import visible

PAGERDUTY_SIGNATURE_HEADER = "X-PagerDuty-Signature"
OPSGENIE_SECRET_HEADER = "X-ChatOps-Webhook-Secret"


class WebhookRefused(Exception):
    """A webhook body that is signed but cannot be read (answered 400)."""


def pagerduty_signature_valid(raw: bytes, headers: Mapping[str, str], secret: str) -> bool:
    """True when one of the `v1=` signatures is the body's HMAC-SHA256 under `secret`."""
    header = headers.get(PAGERDUTY_SIGNATURE_HEADER) or ""
    expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    for part in header.split(","):
        version, _, signature = part.strip().partition("=")
        # Compared as bytes: a str with non-ASCII characters (anyone can send one) would raise.
        given = signature.lower().encode("utf-8", "replace")
        if version == "v1" and hmac.compare_digest(given, expected.encode()):
            return True
    return False


def opsgenie_secret_valid(headers: Mapping[str, str], secret: str) -> bool:
    """True when the shared secret header matches (constant time)."""
    given = headers.get(OPSGENIE_SECRET_HEADER) or ""
    return hmac.compare_digest(given.encode("utf-8", "replace"), secret.encode())


# A name a provider gives a person, as recorded on the timeline.
_NAME_CHARS = 200


def _shaped(shape: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not shape.match(value):
            raise ValueError(f"not {what}")  # the value itself is not repeated back
        return value

    return AfterValidator(check)


PagerDutyId = Annotated[str, _shaped(PAGERDUTY_ID, "a PagerDuty ID")]
ProviderId = Annotated[str, _shaped(PROVIDER_ID, "an identifier")]
Shown = Annotated[str, AfterValidator(visible)]  # control characters written out


class _Read(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class PagerDutyReference(_Read):
    id: PagerDutyId
    type: str = ""
    summary: Shown = ""


class PagerDutyIncident(_Read):
    id: str
    type: str
    incident_key: str | None = None
    status: str | None = None
    title: str = ""


class PagerDutyEvent(_Read):
    id: ProviderId
    event_type: str
    resource_type: str
    occurred_at: str
    agent: PagerDutyReference | None = None
    data: PagerDutyIncident


class PagerDutyWebhook(_Read):
    event: PagerDutyEvent


class OpsgenieAlert(_Read):
    alertId: ProviderId
    alias: str | None = None
    username: Shown | None = None
    userId: ProviderId | None = None
    message: str = ""


class OpsgenieWebhook(_Read):
    action: str
    alert: OpsgenieAlert


@dataclass(frozen=True, slots=True)
class ProviderAcknowledgement:
    """Someone acknowledged an incident's page at the provider."""

    provider: str
    incident_id: str  # the dedup key / alias: our incident's ID
    event_id: str  # the provider's ID of this delivery, for de-duplication
    person_id: str | None  # the provider's user ID (PagerDuty), to look up the e-mail
    person_email: str | None
    person_name: str


def read_pagerduty(raw: bytes) -> ProviderAcknowledgement | None:
    """The acknowledgement a V3 webhook carries; None for any other event."""
    try:
        webhook = PagerDutyWebhook.model_validate_json(raw)
    except ValidationError as exc:
        raise WebhookRefused(f"not a PagerDuty V3 webhook: {_first(exc)}") from None
    event = webhook.event
    if event.event_type != "incident.acknowledged" or not event.data.incident_key:
        return None
    agent = event.agent
    return ProviderAcknowledgement(
        provider=PAGERDUTY,
        incident_id=event.data.incident_key,
        event_id=event.id,
        person_id=agent.id if agent and agent.type.startswith("user") else None,
        person_email=None,
        person_name=agent.summary[:_NAME_CHARS] if agent else "",
    )


def read_opsgenie(raw: bytes) -> ProviderAcknowledgement | None:
    """The acknowledgement an outgoing webhook carries; None for any other action."""
    try:
        webhook = OpsgenieWebhook.model_validate_json(raw)
    except ValidationError as exc:
        raise WebhookRefused(f"not an Opsgenie webhook: {_first(exc)}") from None
    if webhook.action != "Acknowledge" or not webhook.alert.alias:
        return None
    username = webhook.alert.username or ""
    return ProviderAcknowledgement(
        provider=OPSGENIE,
        incident_id=webhook.alert.alias,
        # One acknowledgement per alert: a redelivery of it changes nothing twice.
        event_id=f"{webhook.alert.alertId}:acknowledge",
        person_id=webhook.alert.userId,
        person_email=username if "@" in username else None,
        person_name=username[:_NAME_CHARS],
    )


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "body"
    return f"{where}: {error['msg']}"[:200]
