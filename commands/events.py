"""Events API listeners: a message in a war room that gets the configured reaction
(policy.reaction_to_timeline, :pushpin: by default) is copied to the incident's timeline;
someone who joins a war room gets the incident's catch-up, once, seen only by them."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.audit import AuditRecord
from bot.errors import (
    CoordinatorUnavailable,
    DuplicateRequest,
    NotifierError,
    PermissionDenied,
    StoreError,
)
from bot.http_errors import UNREACHABLE
from bot.incidents.pending_pins import PendingPin
from bot.models import Actor
from bot.services import Services
from bot.slack import catchup_text, error_text
from bot.slack_ids import is_channel_id

log = logging.getLogger(__name__)
# A catch-up Slack rate-limits (and so did not show) is tried this many times in all.
_CATCHUP_TRIES = 3

# A message's `ts`: seconds, a dot, microseconds ("1764925261.000200").
_MESSAGE_TS = re.compile(r"[0-9]{1,12}\.[0-9]{1,9}")


def register(app: AsyncApp, services: Services) -> None:
    @app.event("reaction_added")
    async def reaction_added(
        event: dict[str, Any], context: dict[str, Any], client: AsyncWebClient
    ) -> None:
        # Bolt has acknowledged the event already; nothing here holds Slack up.
        if event.get("reaction") != services.policy.reaction_to_timeline:
            return
        item = event.get("item")
        if not isinstance(item, dict):
            return  # not a reaction to anything the bot can read (a 5 here was a traceback)
        if item.get("type") != "message" or not is_channel_id(item.get("channel")):
            return
        if not _MESSAGE_TS.fullmatch(str(item.get("ts", ""))[:40]):
            return  # not a message's timestamp: nothing to read, nothing to send to Slack
        actor: Actor = context.get("actor") or Actor(user_id=str(event.get("user", "")))
        request_id = context.get("request_id")
        try:
            await services.incidents.add_message_to_timeline(
                channel_id=str(item["channel"]),
                message_ts=str(item["ts"]),
                actor=actor,
                request_id=request_id,
            )
        except DuplicateRequest:
            return  # a redelivered event
        except PermissionDenied as exc:
            # Not a responder: on record, and told privately, as a refused note is.
            await _audit(services, actor, item, "refused: not allowed", request_id)
            await _tell_refused(client, str(item["channel"]), actor.user_id, str(exc))
        except NotifierError as exc:
            # Slack would not show the message (a missing history scope, say): on record.
            log.warning(
                "could not read %s/%s for the timeline: %s", item["channel"], item["ts"], exc
            )
            await _audit(services, actor, item, f"failed: {exc.error_code or exc}", request_id)
        except StoreError as exc:
            await _keep_for_later(services, item, actor, request_id, exc)

    @app.event("member_joined_channel")
    async def member_joined(
        event: dict[str, Any], context: dict[str, Any], client: AsyncWebClient
    ) -> None:
        user_id = str(event.get("user") or "")
        channel_id = str(event.get("channel") or "")
        if not user_id or not channel_id or user_id == context.get("bot_user_id"):
            return  # the bot joining (it creates every war room) needs no catch-up
        try:
            joined = await services.catchup.for_joiner(channel_id, user_id)
        except StoreError as exc:
            log.warning("no catch-up for %s in %s: %s", user_id, channel_id, exc)
            return
        if joined is None:
            # Not a war room, the declarer, joining with the room, or given already.
            log.debug("no catch-up owed to %s in %s", user_id, channel_id)
            return
        for attempt in range(1, _CATCHUP_TRIES + 1):
            try:
                await client.chat_postEphemeral(
                    channel=channel_id,
                    user=user_id,
                    text=catchup_text.catchup_text(joined.catchup),
                    blocks=catchup_text.catchup_blocks(joined.catchup),
                )
                return
            except SlackApiError as exc:
                if exc.response.status_code == 429 and attempt < _CATCHUP_TRIES:
                    # Rate limited: nothing was shown. The client holds the next call until
                    # Slack's Retry-After has passed (a war room's rush of joiners).
                    continue
                # Given once: a refused post is not retried (`/incident catchup` shows it).
                log.warning("could not give %s the catch-up in %s: %r", user_id, channel_id, exc)
                return
            except UNREACHABLE as exc:
                # No answer: it may have been shown, so it is not sent again.
                log.warning("could not give %s the catch-up in %s: %r", user_id, channel_id, exc)
                return


async def _tell_refused(client: AsyncWebClient, channel_id: str, user_id: str, reason: str) -> None:
    """The reactor learns why their pin did nothing: `/incident note`'s refusal, to them only."""
    try:
        await client.chat_postEphemeral(
            channel=channel_id, user=user_id, text=error_text.not_allowed(reason)
        )
    except (SlackApiError, *UNREACHABLE) as exc:
        log.warning("could not tell %s their pin was refused: %r", user_id, exc)


async def _audit(
    services: Services,
    actor: Actor,
    item: dict[str, Any],
    outcome: str,
    request_id: str | None,
) -> None:
    """A reaction that copied nothing to the timeline, on record."""
    try:
        await services.audit.record(
            AuditRecord(
                actor=actor.user_id,
                action="incident.timeline_message",
                target=str(item["channel"]),
                outcome=outcome,
                args={"channel": item["channel"], "ts": item["ts"]},
                request_id=request_id,
            )
        )
    except StoreError:
        log.warning("could not audit the timeline copy (%s): store error", outcome)


async def _keep_for_later(
    services: Services,
    item: dict[str, Any],
    actor: Actor,
    request_id: str | None,
    error: StoreError,
) -> None:
    """The store is down: keep the reaction, recorded once the store answers again."""
    log.warning("store error, keeping a reaction in %s for later: %s", item["channel"], error)
    if services.pending_pins is None:
        log.error("a reaction in %s was not recorded: nowhere to keep it", item["channel"])
        return
    pin = PendingPin(
        channel_id=str(item["channel"]),
        message_ts=str(item["ts"]),
        user_id=actor.user_id,
        request_id=request_id,
    )
    try:
        await services.pending_pins.keep(pin)
    except CoordinatorUnavailable:
        log.error("a reaction in %s was lost: store and Redis both down", item["channel"])
