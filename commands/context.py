"""What every listener needs, and the one place command failures become polite answers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.audit import AuditRecord
from bot.dedup import was_handled
from bot.errors import (
    Conflict,
    DuplicateRequest,
    NotFound,
    NotifierError,
    PermissionDenied,
    StoreBusy,
    StoreError,
    StoreUnavailable,
    UsageError,
)
from bot.http_errors import UNREACHABLE
from bot.incidents.parsing import check_command, parse_target
from bot.incidents.schemas import IncidentTarget
from bot.models import Actor
from bot.services import Services
from bot.slack import error_text, help_text
from bot.slack.escape import escape_mrkdwn
from bot.store.base import CommitLog, commit_log
from bot.text import excerpt, visible

log = logging.getLogger(__name__)

# A refused command is recorded as an excerpt: enough to see what was tried, and bounded
# however long the input was.
REFUSED_TEXT_MAX = 500


class Responder(Protocol):
    """How a listener answers the person who asked: Bolt's `respond` (a response_url), or,
    after a modal (which has none), an ephemeral message (commands.views.ModalResponder)."""

    async def __call__(
        self,
        text: str = "",
        blocks: Sequence[dict[str, Any]] | None = None,
        *,
        response_type: str | None = None,
    ) -> Any: ...


@dataclass
class CommandContext:
    """One invocation: who, where, which request, and how to answer them."""

    services: Services
    actor: Actor
    request_id: str | None
    channel_id: str | None
    respond: Responder
    client: AsyncWebClient
    trigger_id: str | None = None

    async def reply(self, text: str, *, blocks: list[dict[str, Any]] | None = None) -> None:
        """Answer only the person who asked (ephemeral)."""
        await self.respond(text=text, blocks=blocks, response_type="ephemeral")

    async def locate(self, incident_id: str | None) -> str:
        """The incident named, or the one whose channel this is; NotFound otherwise."""
        return await self.services.incidents.locate(incident_id, channel_id=self.channel_id)

    async def audit_refusal(self, action: str, outcome: str, args: dict[str, Any]) -> None:
        """Refused and malformed invocations change nothing, but they are on the record."""
        await record_invocation(self.services, self.actor, action, outcome, args, self.request_id)

    async def audit_read(self, action: str, args: dict[str, Any]) -> None:
        """Reads (list, show, help...) change nothing, but every invocation is on the record."""
        await record_invocation(self.services, self.actor, action, "ok", args, self.request_id)


class ModalResponder:
    """Answers the submitter of a modal or an App Home button (neither has a response_url):
    ephemeral in `channel_id`, else (no channel, or one the bot cannot post in) by DM."""

    def __init__(self, client: AsyncWebClient, channel_id: str | None, user_id: str) -> None:
        self.client = client
        self.channel_id = channel_id
        self.user_id = user_id

    async def __call__(
        self,
        text: str = "",
        blocks: Sequence[dict[str, Any]] | None = None,
        *,
        response_type: str | None = None,
    ) -> Any:
        if self.channel_id:
            try:
                return await self.client.chat_postEphemeral(
                    channel=self.channel_id, user=self.user_id, text=text, blocks=blocks
                )
            except SlackApiError as exc:
                # Not a member there, or a channel the bot cannot see: fall back to a DM.
                log.info("ephemeral answer failed (%s); sending a DM", exc.response.get("error"))
            except UNREACHABLE as exc:
                # No answer: it may not have been shown, and a second copy does less harm.
                log.info("ephemeral answer got no answer (%r); sending a DM", exc)
        try:
            return await self.client.chat_postMessage(
                channel=self.user_id, text=text, blocks=blocks
            )
        except (SlackApiError, *UNREACHABLE) as exc:
            # The action itself is done and on record: only its answer is lost.
            log.warning("no answer to %s could be delivered: %r", self.user_id, exc)
            return None


def listener_context(
    services: Services,
    context: dict[str, Any],
    client: AsyncWebClient,
    *,
    channel_id: str | None,
    respond: Responder | None = None,
    trigger_id: str | None = None,
) -> CommandContext:
    """One invocation from Bolt's `context` (the actor and request ID our middleware set).
    Without `respond` (a modal, the App Home) answers go through a ModalResponder."""
    actor: Actor = context["actor"]
    return CommandContext(
        services=services,
        actor=actor,
        request_id=context.get("request_id"),
        channel_id=channel_id,
        respond=respond or ModalResponder(client, channel_id, actor.user_id),
        client=client,
        trigger_id=trigger_id,
    )


async def record_invocation(
    services: Services,
    actor: Actor,
    action: str,
    outcome: str,
    args: dict[str, Any],
    request_id: str | None,
) -> None:
    """Audit a command that changed nothing; a store outage must not cost the user an answer.

    The input may be anything a person could type, refused because of what it holds: every
    text is recorded bounded, with control characters written out (a NUL byte cannot be
    stored in PostgreSQL at all).
    """
    safe_args = _recordable(args)
    incident_id = safe_args.get("incident_id")
    try:
        await services.audit.record(
            AuditRecord(
                actor=actor.user_id,
                action=_recordable(action),
                target=str(incident_id or "-"),
                outcome=outcome,
                args=safe_args,
                incident_id=incident_id if isinstance(incident_id, str) else None,
                request_id=request_id,
            )
        )
    except StoreError as exc:
        log.warning("could not audit %s (%s): %s", action, outcome, exc)


async def command_words(
    ack: Callable[..., Awaitable[Any]],
    services: Services,
    context: dict[str, Any],
    raw: str,
    *,
    usage_for: str,
    action: str,
) -> list[str] | None:
    """The words of a slash command's text, or None once a text that is too long or holds a
    control character has been refused on the ack (as every command does) and audited."""
    try:
        return check_command(raw).split()
    except UsageError as exc:
        await ack(response_type="ephemeral", text=help_text.usage(usage_for, str(exc)))
        await record_invocation(
            services,
            context["actor"],
            action,
            "rejected: usage",
            {"text": raw},
            context.get("request_id"),
        )
        return None


def _recordable(value: Any) -> Any:
    if isinstance(value, str):
        return visible(excerpt(value, REFUSED_TEXT_MAX))
    if isinstance(value, dict):
        return {_recordable(str(key)): _recordable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_recordable(item) for item in value]
    return value


Parsed = TypeVar("Parsed", bound=IncidentTarget)


def on_incident(
    action: str,
    parse: Callable[[str], Parsed],
    act: Callable[[CommandContext, str, Parsed], Awaitable[None]],
    *,
    read_only: bool = False,
) -> Callable[[CommandContext, str], Awaitable[None]]:
    """A subcommand about one incident (`/incident <name> [INC-ID] ...`): parse the rest,
    find the incident it names or the one whose channel this is, then `act` on it, under
    run_command as `action` (its last word names the usage shown on a refusal)."""

    async def subcommand(ctx: CommandContext, rest: str) -> None:
        async def work() -> None:
            command = parse(rest)
            incident_id = await ctx.locate(command.incident_id)
            await act(ctx, incident_id, command)

        await run_command(ctx, action, {"text": rest}, work, read_only=read_only)

    return subcommand


def target_parser(name: str) -> Callable[[str], IncidentTarget]:
    """The parser of a subcommand that takes nothing but an optional incident ID."""
    return lambda rest: parse_target(rest, name)


async def run_command(
    ctx: CommandContext,
    action: str,
    args: dict[str, Any],
    work: Callable[[], Awaitable[None]],
    *,
    usage_for: str | None = None,
    read_only: bool = False,
    given_back: str = "",
) -> None:
    """Run `work`; turn every expected failure into a short ephemeral answer, audited.

    `given_back`: what a form's author typed (the form is gone once submitted), added to an
    answer that failed, or whose outcome is unknown, so that nothing typed is lost.

    Changes are audited by the services in their own transactions; `read_only` commands
    are audited here once they have answered.

    A failure is answered "nothing was changed" only when that is known: when no
    transaction of the work had sent its COMMIT. After one had (the connection lost as the
    COMMIT's answer came back, a failure once the change was made), the request's claim is
    read back: the answer says the change went through, or that it cannot tell.
    """
    log_token = commit_log.set(CommitLog())
    try:
        await work()
        if read_only:
            await ctx.audit_read(action, args)
    except UsageError as exc:
        await ctx.audit_refusal(action, "rejected: usage", args)
        await ctx.reply(help_text.usage(usage_for or action.split(".")[-1], str(exc)))
    except PermissionDenied as exc:
        await ctx.audit_refusal(action, "refused: not allowed", args)
        await ctx.reply(error_text.not_allowed(str(exc)))
    except (NotFound, Conflict) as exc:
        await ctx.audit_refusal(action, f"refused: {exc}", args)
        # Its text may quote a target's own error (a dry run's): text, never markup.
        await ctx.reply(escape_mrkdwn(str(exc)))
    except DuplicateRequest:
        await ctx.reply(error_text.duplicate_request())
    except NotifierError as exc:
        # Slack failed a call the command needed (a user group to check who may act): said
        # as Slack's failure, never as a refusal or a fault of ours.
        log.warning("Slack failed during %s: %s", action, exc)
        await _failed(ctx, error_text.slack_unanswered(exc.error_code), read_only, given_back)
    except StoreUnavailable:
        log.exception("store unavailable during %s", action)
        await _failed(ctx, error_text.store_unavailable(), read_only, given_back)
    except StoreBusy as exc:
        log.warning("store busy during %s: %s", action, exc)
        await _failed(ctx, error_text.store_busy(), read_only, given_back)
    except Exception:
        log.exception("%s failed", action)
        await _failed(ctx, error_text.internal_error(), read_only, given_back)
    finally:
        commit_log.reset(log_token)


async def _failed(
    ctx: CommandContext, nothing_changed: str, read_only: bool, given_back: str = ""
) -> None:
    """Answer a failed command truthfully: `nothing_changed` when no write was sent to
    commit (or the command only reads); otherwise what the request's claim, which commits
    with the change it guards, says: it went through, it did not, or nobody can tell.
    `given_back` follows any answer but "it went through"."""
    sent = commit_log.get() or CommitLog()
    back = error_text.given_back(given_back) if given_back else ""
    if read_only or sent.sent == 0:
        await ctx.reply(nothing_changed + back)
        return
    handled = await was_handled(ctx.services.store, ctx.request_id) if ctx.request_id else None
    if handled:
        await ctx.reply(error_text.done_unconfirmed())
    elif handled is False and sent.committed == 0:
        await ctx.reply(nothing_changed + back)  # the claim is not there: nor its change
    else:
        await ctx.reply(error_text.outcome_unknown() + back)
