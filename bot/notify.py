"""The Notifier port: how services reach people. Slack is one implementation.

Contract: each method delivers one notification and returns where it landed (if anywhere),
or raises NotifierError, and nothing else: `retryable` set for transient failures (rate
limits, 5xx, an answer that is not the API's own, network errors, timeouts), with
`retry_after` when the far side said when to come back; cleared for permanent ones (unknown
channel, missing scope). Methods take domain objects and render them themselves, so
services never build Slack payloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.models import Incident
from bot.refs import Rich


@dataclass(frozen=True, slots=True)
class MessageRef:
    channel: str
    ts: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A message read back from a channel (to copy it to a timeline)."""

    channel: str
    ts: str
    text: str
    user: str | None = None  # None for messages from bots and integrations


@dataclass(frozen=True, slots=True)
class ChannelFacts:
    """A channel found by name: enough to tell whether the bot made it, and when."""

    id: str
    name: str
    creator: str
    created: datetime
    created_by_bot: bool


@dataclass(frozen=True, slots=True)
class Page:
    """One escalation page: who it is for and why.

    `recipients` are the level's users (U...) and user groups (S...). `waited` is how long the
    incident has gone unacknowledged since it was `since` ("declared" or "reopened"), for a
    page by the clock; `by` and `reason` say who paged by hand (`/incident escalate`) and why.
    """

    level: int
    recipients: tuple[str, ...]
    waited: float | None = None
    by: str | None = None
    reason: str = ""
    since: str = "declared"


@dataclass(frozen=True, slots=True)
class EscalationShown:
    """Where an incident's escalation stands, as its card shows it: the highest level paged
    (0: nobody yet) of the `levels` its severity has. The card's Escalate button carries
    `level`, so that only one of two people pressing it at once pages the next level."""

    level: int
    levels: int


class Notifier(Protocol):
    async def announce_incident(
        self, incident: Incident, *, channel: str, escalation: EscalationShown | None = None
    ) -> MessageRef:
        """Post the declaration, in the communication template, to `channel`; with
        `escalation`, how far the pages have gone (shown, and carried by Escalate)."""
        ...

    async def report_failure(
        self, incident: Incident, *, user_id: str, step: str, target: str | None, error: str
    ) -> None:
        """Tell one person (by direct message) that a step of `incident` failed for good.

        `step` names what failed ("announce", "create_channel", ...), `target` the channel or
        user it was aimed at, `error` the error code. The incident itself stands.
        """
        ...

    # -- war rooms and the incident's messages (bot.incidents.flows) -----------------------

    async def report_failure_in_channel(
        self, incident: Incident, *, channel: str, step: str, target: str | None, error: str
    ) -> None:
        """Like `report_failure`, but told to everyone in `channel` (the war room)."""
        ...

    async def create_channel(self, name: str) -> str:
        """Create a public channel called `name` and return its ID.

        NotifierError with `error_code` "name_taken" when the name is in use; the caller
        picks another.
        """
        ...

    async def find_channel(self, name: str) -> ChannelFacts | None:
        """The unarchived public channel called `name`, None when there is none (a
        `create_channel` whose reply was lost may have made it)."""
        ...

    async def invite(self, channel: str, user_ids: Sequence[str]) -> dict[str, str]:
        """Invite each user into `channel`; return {user_id: error code} for those who could
        not be (someone already there, or the bot itself, is not a failure). Raises
        NotifierError for a failure of the whole call (rate limit, unknown channel)."""
        ...

    async def set_topic(self, incident: Incident, *, channel: str) -> None:
        """Set `channel`'s topic from the incident: severity, status and commander."""
        ...

    async def post_summary(
        self, incident: Incident, *, channel: str, escalation: EscalationShown | None = None
    ) -> MessageRef:
        """Post the incident's summary card (state, roles, buttons) in `channel`; with
        `escalation` as in `announce_incident`."""
        ...

    async def update_card(
        self, incident: Incident, ref: MessageRef, *, escalation: EscalationShown | None = None
    ) -> None:
        """Edit an incident card (the summary or the announcement) in place to show
        `incident` as it is now (`escalation` as in `announce_incident`).
        NotifierError "message_not_found" when it was deleted."""
        ...

    async def pin(self, ref: MessageRef) -> None:
        """Pin a message in its channel; one already pinned is fine."""
        ...

    async def post_update(self, incident: Incident, *, channel: str, kind: str) -> MessageRef:
        """Post a status update in the communication template. `kind` is the change behind
        it (updated, resolved, reopened, severity_changed) and picks its headline."""
        ...

    async def post_notice(
        self,
        incident: Incident,
        *,
        channel: str,
        kind: str,
        text: Rich,
        actor: str,
        thread_ts: str | None = None,
        said: str = "",
    ) -> MessageRef:
        """Post one line about a change (`kind`: acknowledged, assigned, noted...) by `actor`;
        `text` is its timeline entry (bot.refs), `said` the end of it that a person wrote (shown as
        text, never as markup). In a thread when `thread_ts` is given."""
        ...

    async def fetch_message(self, channel: str, ts: str) -> ChatMessage | None:
        """Read one message of `channel` (a reply in a thread too); None when it is gone.
        Its `text` is plain: what a reader saw, with no markup left in it."""
        ...

    async def page(self, incident: Incident, page: Page, *, channel: str) -> MessageRef:
        """Post an escalation page in `channel`, mentioning every target of the level."""
        ...

    async def page_user(
        self, incident: Incident, page: Page, *, user_id: str, channel: str
    ) -> MessageRef:
        """Page one person by direct message, pointing at `channel` where the incident runs."""
        ...

    async def warn_breach(
        self,
        incident: Incident,
        *,
        channel: str,
        target: str,
        within: str,
        due_at: datetime,
        mention: str | None,
    ) -> MessageRef:
        """Post in `channel` that the `target` ("acknowledge" or "resolve") of the severity,
        `within` (a duration in words) and due at `due_at`, has passed; `mention` is who to
        ping (the commander)."""
        ...

    async def remind(
        self, incident: Incident, *, user_id: str, kind: str, due_at: datetime, within: str
    ) -> MessageRef:
        """Remind one person by direct message: `kind` is "update_due" (a status update was
        due at `due_at`), "review_preliminary" or "review_formal" (a post-incident review is
        due at `due_at`, `within` of the resolution)."""
        ...

    async def remind_in_channel(
        self,
        incident: Incident,
        *,
        channel: str,
        mentions: Sequence[str],
        kind: str,
        due_at: datetime,
        within: str,
    ) -> MessageRef:
        """Like `remind`, but posted in `channel` mentioning `mentions` (users and user
        groups): for an incident no person leads, so there is nobody to message directly."""
        ...
