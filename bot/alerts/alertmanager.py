"""Alertmanager's silences API (v2), as the Silence button uses it: make one, ask how one
stands, expire one. Its failures are translated here, once, into AlertmanagerUnavailable."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp

from bot import outside_json
from bot.alerts.models import parse_time
from bot.errors import Conflict
from bot.redact import redact_text

# Logged as before this API left bot.alerts.silences: log-based alerts match the name.
log = logging.getLogger("bot.alerts.silences")

SILENCES_PATH = "/api/v2/silences"
# Alertmanager's silence IDs are UUIDs: anything else is no ID to record, show or expire.
_SILENCE_ID = re.compile(r"[0-9A-Za-z-]{1,64}")


class AlertmanagerUnavailable(Conflict):
    """Alertmanager refused or did not answer: nothing was silenced (the message says why)."""


class AlertmanagerUnanswered(AlertmanagerUnavailable):
    """A silence was sent but no answer came back (a timeout, a connection dropped mid-request):
    Alertmanager may have made it. Ask it (`find`) before saying either way."""


CREATED_BY = "chatops-bot"


@dataclass(frozen=True, slots=True)
class Found:
    """A silence Alertmanager holds, made by the bot."""

    silence_id: str
    matchers: list[dict[str, Any]]
    ends_at: datetime


def _same(one: list[dict[str, Any]], other: Any) -> bool:
    """Matchers equal as Alertmanager gives them back (in any order, `isEqual` defaulting)."""
    if not isinstance(other, list) or not all(isinstance(m, dict) for m in other):
        return False

    def key(m: dict[str, Any]) -> tuple[str, str, bool, bool]:
        return (
            str(m.get("name")),
            str(m.get("value")),
            bool(m.get("isRegex")),
            bool(m.get("isEqual", True)),
        )

    return sorted(map(key, one)) == sorted(map(key, other))


async def find(
    session: aiohttp.ClientSession,
    url: str,
    wanted: list[list[dict[str, Any]]],
    marker: str,
    skip: frozenset[str] = frozenset(),
) -> list[Found]:
    """The active (or pending) silences Alertmanager holds of exactly one of `wanted`'s matcher
    sets, made by the bot with a comment starting with `marker` (not those of `skip`), at most
    one per set: a silence a request made though no answer came back. AlertmanagerUnavailable
    when Alertmanager cannot be asked."""
    try:
        async with session.get(url + SILENCES_PATH) as answer:
            text = await answer.text(errors="replace")
            status = answer.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise AlertmanagerUnavailable(
            f"Alertmanager could not be reached at {url}:"
            f" {redact_text(str(exc) or type(exc).__name__)[:200]}"
        ) from None
    try:
        listed = outside_json.loads(text) if status == 200 else None
    except ValueError:  # outside input: not JSON, or nested past reason
        listed = None
    if not isinstance(listed, list):
        raise AlertmanagerUnavailable(f"Alertmanager did not list its silences (HTTP {status}).")
    found: list[Found] = []
    for matchers in wanted:
        for one in listed:
            if not isinstance(one, dict):
                continue
            status_of = one.get("status")
            silence_id, comment = one.get("id"), one.get("comment")
            ends_at = parse_time(str(one.get("endsAt", "")))
            if (
                isinstance(silence_id, str)
                and _SILENCE_ID.fullmatch(silence_id)
                and silence_id not in skip
                and one.get("createdBy") == CREATED_BY
                and isinstance(comment, str)
                and comment.startswith(marker)
                and isinstance(status_of, dict)
                and status_of.get("state") in ("active", "pending")
                and ends_at is not None
                and _same(matchers, one.get("matchers"))
            ):
                found.append(Found(silence_id, matchers, ends_at))
                break
    return found


async def expire(session: aiohttp.ClientSession, url: str, silence_ids: list[str]) -> list[str]:
    """Expire silences just made (the record of them failed); those Alertmanager would
    not expire (they end by themselves after `silence_for`)."""
    left: list[str] = []
    for silence_id in silence_ids:
        try:
            path = f"{url}/api/v2/silence/{quote(silence_id, safe='')}"
            async with session.delete(path) as answer:
                if answer.status == 200:
                    continue
                problem = f"HTTP {answer.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            problem = redact_text(str(exc))[:200]
        log.warning("silence %s, unrecorded, could not be expired: %s", silence_id, problem)
        left.append(silence_id)
    return left


async def state(session: aiohttp.ClientSession, url: str, silence_id: str) -> tuple[bool, datetime]:
    """(running, its end) as Alertmanager has it; a silence it no longer knows (garbage
    collected, or another Alertmanager) has ended."""
    try:
        async with session.get(f"{url}/api/v2/silence/{quote(silence_id, safe='')}") as answer:
            if answer.status == 404:
                return False, datetime.max.replace(tzinfo=UTC)
            body = outside_json.loads(await answer.read())
            status = body.get("status") if isinstance(body, dict) else None
            standing = status.get("state") if isinstance(status, dict) else None
            if answer.status != 200 or not isinstance(standing, str):
                raise AlertmanagerUnavailable(
                    f"Alertmanager did not say how silence {silence_id} stands"
                    f" (HTTP {answer.status})."
                )
            ends_at = parse_time(str(body.get("endsAt", "")))
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise AlertmanagerUnavailable(
            f"Alertmanager could not be reached at {url}: {redact_text(str(exc))[:200]}"
        ) from None
    if ends_at is None:
        raise AlertmanagerUnavailable(f"Alertmanager gave silence {silence_id} no end.")
    return standing in ("active", "pending"), ends_at


async def create(
    session: aiohttp.ClientSession,
    url: str,
    matchers: list[dict[str, Any]],
    now: datetime,
    ends_at: datetime,
    comment: str,
) -> tuple[str, list[dict[str, Any]]]:
    """Make a silence of `matchers` from `now` to `ends_at`; (its ID, the matchers).
    AlertmanagerUnanswered when the request went out but no answer came back."""
    body = {
        "matchers": matchers,
        "startsAt": now.isoformat(),
        "endsAt": ends_at.isoformat(),
        "createdBy": CREATED_BY,
        "comment": comment[:300],
    }
    try:
        async with session.post(url + SILENCES_PATH, json=body) as response:
            # Read as text first: a proxy's 503 page is no JSON, and is a refusal.
            text = await response.text(errors="replace")
            status = response.status
    except aiohttp.ClientConnectorError as exc:  # never connected: nothing was sent
        raise AlertmanagerUnavailable(
            f"Alertmanager could not be reached at {url}: {redact_text(str(exc))[:200]}"
        ) from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise AlertmanagerUnanswered(
            f"Alertmanager did not answer the silence request at {url}:"
            f" {redact_text(str(exc) or type(exc).__name__)[:200]}."
        ) from None
    try:
        answer = outside_json.loads(text)
    except ValueError:
        answer = text
    silence_id = answer.get("silenceID") if isinstance(answer, dict) else None
    if status != 200 or not isinstance(silence_id, str) or not _SILENCE_ID.fullmatch(silence_id):
        # The text as received ("replace"d): the parsed answer may hold a lone surrogate.
        detail = redact_text(" ".join(text[:400].split()))[:200].rstrip(".")
        raise AlertmanagerUnavailable(
            f"Alertmanager refused the silence (HTTP {status}): {detail}."
        )
    return silence_id, matchers
