"""Alerts in Slack: the wording and Block Kit of a batch of alerts (one message per batch),
and the AlertNotifier port on the Web API. Alert text comes from monitors: escaped, never
markup; links are shown as links only when they are http(s)."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.alerts.delivery import AlertBatch
from bot.alerts.matchers import MAX_SILENCES
from bot.alerts.routing import NO_SERVICE
from bot.alerts.silences import Silenced
from bot.alerts.storage import StoredAlert
from bot.durations import humanize_seconds
from bot.notify import MessageRef
from bot.slack import templates as t
from bot.slack.blocks import (
    RESOLVE_ACTION,
    SECTION_MAX,
    button,
    confirm_dialog,
    context,
    section,
)
from bot.slack.escape import escape_mrkdwn
from bot.slack.notifier import call_slack

SILENCE_ACTION = "alerts_silence"
SHOWN = 10  # alerts listed by name in one message; the rest are counted


def silence_value(incident_id: str, batch: int) -> str:
    return f"{incident_id}:{batch}"


def read_silence_value(value: str) -> tuple[str, int]:
    """(incident ID, batch) from a Silence button's value; ValueError when it is not one."""
    incident_id, _, batch = value.rpartition(":")
    number = int(batch)
    # A batch number is a small counter; an edited value past SQLite's integers was a 500.
    if not 0 < number < 2**31:
        raise ValueError(f"batch {number} is out of range")
    return incident_id, number


def _link(text: str, url: str) -> str:
    if not url.startswith(("http://", "https://")) or any(c in url for c in "<>| "):
        return ""
    return f"<{url}|{escape_mrkdwn(text)}>"


def _line(alert: StoredAlert, verb: str, *, service: bool = False) -> str:
    """One alert on one line that fits a section whole: links that would not fit (a long
    PromQL expression makes a generatorURL of 2,000 characters) are left out, never cut.
    `service`: name its service too (a batch of several services': a storm incident's)."""
    head = f"{verb} *{escape_mrkdwn(alert.name[:80])}*"
    if service and alert.service != NO_SERVICE:
        head += f" ({escape_mrkdwn(alert.service[:80])})"
    summary = escape_mrkdwn(alert.summary[:200])
    links = [link for link in (_link(text, url) for text, url in alert.links[:3]) if link]
    while True:
        parts = [head, summary, " · ".join(links)]
        line = " — ".join(part for part in parts if part)
        if len(line) <= SECTION_MAX or not links:
            return line
        links.pop()


def _sections(lines: list[str]) -> list[dict[str, Any]]:
    """Lines packed into as few sections as Slack's 3,000 characters a section allow; one
    section clipped the list after an alert or two, mid-link, and with it the count of the
    rest."""
    texts: list[str] = []
    for line in lines:
        if texts and len(texts[-1]) + 1 + len(line) <= SECTION_MAX:
            texts[-1] += "\n" + line
        else:
            texts.append(line)
    return [section(text) for text in texts]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def batch_text(batch: AlertBatch) -> str:
    """The notification text (and screen-reader fallback) of a batch message."""
    parts = []
    if batch.fired:
        parts.append(f"{_plural(len(batch.fired), 'alert')} firing")
    if batch.resolved:
        parts.append(f"{_plural(len(batch.resolved), 'alert')} resolved")
    text = f"{batch.incident.id}: " + ", ".join(parts)
    if batch.all_clear:
        text += ". Every alert has cleared."
    return text


def batch_blocks(batch: AlertBatch, *, silence_seconds: float) -> list[dict[str, Any]]:
    several = len({a.service for a in (*batch.fired, *batch.resolved)}) > 1
    lines = [_line(a, ":rotating_light: firing", service=several) for a in batch.fired[:SHOWN]]
    if len(batch.fired) > SHOWN:
        lines.append(f"…and {len(batch.fired) - SHOWN} more firing ({names_of(batch.fired)})")
    lines += [
        _line(a, ":white_check_mark: resolved", service=several) for a in batch.resolved[:SHOWN]
    ]
    if len(batch.resolved) > SHOWN:
        lines.append(f"…and {len(batch.resolved) - SHOWN} more resolved")
    counts = (
        f"Now {_plural(batch.firing_now, 'alert')} firing, {batch.resolved_total} resolved"
        f" on {batch.incident.id}."
    )
    # At most 2 x SHOWN + 2 lines, so at most 22 sections: within Slack's 50 blocks.
    blocks: list[dict[str, Any]] = [*_sections(lines), context(counts)]
    elements = []
    if batch.silenceable and batch.silenced_until is not None:
        # No second click offered while the silence holds: what it covers, until when.
        silenced = [a for a in batch.fired if a.source == "alertmanager"]
        blocks.append(
            context(
                f":no_bell: Silenced in Alertmanager until {t.slack_date(batch.silenced_until)}:"
                f" {_plural(len(silenced), 'alert')} ({names_of(silenced)})."
            )
        )
    elif batch.silenceable:
        label = f"Silence {humanize_seconds(silence_seconds)}"
        elements.append(
            button(
                label,
                SILENCE_ACTION,
                silence_value(batch.incident.id, batch.batch),
                confirm=confirm_dialog(
                    "Silence these alerts?",
                    f"Alertmanager stops notifying about the alerts listed here for"
                    f" {humanize_seconds(silence_seconds)}; the silence expires by itself.",
                    "Silence",
                ),
            )
        )
    if batch.all_clear and batch.incident.is_open:
        blocks.insert(
            len(blocks) - 1,  # after the alerts, above the counts
            section(":large_green_circle: *Every alert of this incident has cleared.*"),
        )
        elements.append(
            button(
                "Resolve",
                RESOLVE_ACTION,
                batch.incident.id,
                style="danger",
                confirm=confirm_dialog(
                    "Resolve this incident?",
                    t.resolve_confirm_text(batch.incident),
                    "Resolve",
                    danger=True,
                ),
            )
        )
    if elements:
        blocks.append({"type": "actions", "elements": elements})
    return blocks


def names_of(alerts: list[StoredAlert], limit: int = 5) -> str:
    seen: list[str] = []
    for alert in alerts:
        if alert.name not in seen:
            seen.append(alert.name)
    shown = ", ".join(escape_mrkdwn(n[:60]) for n in seen[:limit])
    return shown + (f" and {len(seen) - limit} more" if len(seen) > limit else "")


def silence_answer(done: Silenced) -> str:
    """The clicker's private answer."""
    until = t.slack_date(done.ends_at)
    if not done.confirmed:
        return (
            f"The bot's record says these alerts are silenced until {until}, but Alertmanager"
            " could not be reached to confirm it: check its silences page."
        )
    ended = ""
    if done.ended_early:
        first = done.ended_early[0]
        ended = (
            f"The earlier silence was ended in Alertmanager at {t.slack_date(first.ended_at)},"
            f" before its planned end at {t.slack_date(first.planned_end)}. "
        )
    left = (
        f" Not silenced: {_plural(done.left_out, 'alert')} of other names or services (one"
        f" click silences at most {MAX_SILENCES} alert names, each of one service)."
        if done.left_out
        else ""
    )
    if not done.changed:
        return ended + f"These alerts are already silenced in Alertmanager (until {until})." + left
    if done.failed:
        rest = list(done.unsilenced)
        return (
            ended + f"{done.failed} Silenced {_plural(done.alerts, 'alert')} of {done.incident_id}"
            f" before it failed, until {until} ({', '.join(done.silence_ids)}). Not silenced"
            f" yet: {_plural(len(rest), 'alert')} ({names_of(rest)}): click Silence again for"
            " them."
        )
    return (
        ended
        + f"Silenced {_plural(done.alerts, 'alert')} of {done.incident_id} in Alertmanager until"
        f" {until} ({', '.join(done.silence_ids)}); the silence expires by itself." + left
    )


class SlackAlertNotifier:
    """The AlertNotifier port on Slack's Web API."""

    def __init__(self, client: AsyncWebClient, *, silence_seconds: float) -> None:
        self.client = client
        self.silence_seconds = silence_seconds

    async def post_alerts(
        self, batch: AlertBatch, *, channel: str, thread_ts: str | None
    ) -> MessageRef:
        response = await call_slack(
            self.client.chat_postMessage(
                channel=channel,
                text=batch_text(batch),
                blocks=batch_blocks(batch, silence_seconds=self.silence_seconds),
                thread_ts=thread_ts,
                unfurl_links=False,
            )
        )
        return MessageRef(str(response["channel"]), str(response["ts"]))

    async def update_alerts(self, batch: AlertBatch, ref: MessageRef) -> None:
        await call_slack(
            self.client.chat_update(
                channel=ref.channel,
                ts=ref.ts,
                text=batch_text(batch),
                blocks=batch_blocks(batch, silence_seconds=self.silence_seconds),
            )
        )
