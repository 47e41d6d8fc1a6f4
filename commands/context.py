"""What every listener needs, and the one place command failures become polite answers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from slack_sdk.web.async_client import AsyncWebClient

from bot.audit import AuditRecord
from bot.errors import (
    Conflict,
    DuplicateRequest,
    NotFound,
    PermissionDenied,
    StoreUnavailable,
    UsageError,
)
from bot.models import Actor
from bot.services import Services
from bot.slack import templates

log = logging.getLogger(__name__)


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

    async def audit_refusal(self, action: str, outcome: str, args: dict[str, Any]) -> None:
        try:
            await self.services.audit.record(
                AuditRecord(
                    actor=self.actor.user_id,
                    action=action,
                    target=str(args.get("incident_id", "-")),
                    outcome=outcome,
                    args=args,
                    incident_id=args.get("incident_id"),
                    request_id=self.request_id,
                )
            )
        except StoreUnavailable:
            log.warning("could not audit refused %s: store unavailable", action)


async def run_command(
    ctx: CommandContext,
    action: str,
    args: dict[str, Any],
    work: Callable[[], Awaitable[None]],
    *,
    usage_for: str | None = None,
) -> None:
    """Run `work`; turn every expected failure into a short ephemeral answer, audited."""
    try:
        await work()
    except UsageError as exc:
        await ctx.audit_refusal(action, "rejected: usage", args)
        await ctx.reply(templates.usage(usage_for or action.split(".")[-1], str(exc)))
    except PermissionDenied as exc:
        await ctx.audit_refusal(action, "refused: not allowed", args)
        await ctx.reply(templates.not_allowed(str(exc)))
    except (NotFound, Conflict) as exc:
        await ctx.audit_refusal(action, f"refused: {exc}", args)
        await ctx.reply(str(exc))
    except DuplicateRequest:
        await ctx.reply(templates.duplicate_request())
    except StoreUnavailable:
        log.exception("store unavailable during %s", action)
        await ctx.reply(templates.store_unavailable())
    except Exception:
        log.exception("%s failed", action)
        await ctx.reply(templates.internal_error())
