"""`/incident update` text -> UpdateStatus: the status, the message and its `eta <duration>` and
`impact <text>` options, and ETA durations. Errors are UsageError naming what was wrong."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta

from bot.durations import Duration, humanize_seconds
from bot.errors import UsageError
from bot.incidents.parsing import _build, _check_length, _quote, take_incident_id
from bot.incidents.schemas import IMPACT_MAX, MESSAGE_MAX, UpdateStatus
from bot.models import Status

STATUSES = ", ".join(s.value for s in Status)
# The furthest an ETA may lie: beyond a month it is a plan, not an estimate (and a duration of
# centuries would not even fit a date).
ETA_MAX = timedelta(days=30)


def parse_duration(text: str) -> timedelta:
    """An ETA like `30m`, `2h`, `1d` or seconds, at most ETA_MAX; UsageError otherwise."""
    try:
        duration = Duration.parse(text)
    except ValueError:
        raise UsageError(f"'{_quote(text)}' is not a duration; use 30m, 2h or 1d.") from None
    if duration.business_days:
        raise UsageError("Give the ETA in clock time (30m, 2h, 1d), not business days.")
    if duration.is_zero:
        raise UsageError("An ETA must be later than now; give a duration like 30m.")
    # Checked before it becomes a timedelta: `99999999999999999999d` would overflow one.
    if not math.isfinite(duration.seconds) or duration.seconds > ETA_MAX.total_seconds():
        raise UsageError(
            f"An ETA is at most {humanize_seconds(ETA_MAX.total_seconds())} away "
            f"(`eta {ETA_MAX.days}d`); '{_quote(text)}' is further than that."
        )
    return duration.as_timedelta()


def _keyword(token: str) -> str | None:
    word = token.lower().rstrip(":")
    return word if word in ("eta", "impact") else None


def _try_duration(token: str) -> timedelta | UsageError:
    """The duration `token` gives, or the error that says why it gives none."""
    try:
        return parse_duration(token)
    except UsageError as exc:
        return exc


def _message_end(
    tokens: Sequence[str], keywords: Sequence[str | None]
) -> tuple[int, timedelta | UsageError | None]:
    """Where the message stops and the options begin (len(tokens) when there are none).

    The options start at the first `impact` after the first word, or at the first `eta` that
    is clearly an option: followed by a duration, or ending the text (`eta`, `eta soon`), or
    followed by another clause. An `eta` in a sentence (`the eta is unclear`) is a word. One
    left-to-right pass: every token is classified once; the duration after an `eta` is parsed
    once and handed on with the position.
    """
    count = len(tokens)
    for index, keyword in enumerate(keywords):
        if keyword == "impact" and index > 0:
            return index, None
        if keyword != "eta":
            continue
        if index + 1 >= count:
            return index, None
        duration = _try_duration(tokens[index + 1])
        ends = index + 2 >= count or keywords[index + 2] is not None
        if isinstance(duration, timedelta) or ends:
            return index, duration
    return count, None


def _options(
    tokens: Sequence[str],
    keywords: Sequence[str | None],
    start: int,
    first_eta: timedelta | UsageError | None,
) -> tuple[timedelta | None, str | None]:
    """`eta <duration>` and `impact <text>` from `start` to the end, in either order.

    The impact runs to the end, or to a closing `eta <duration>` (the last two words).
    """
    count = len(tokens)
    eta: timedelta | None = None
    impact: str | None = None
    index = start
    while index < count:
        keyword = keywords[index]
        if keyword == "eta":
            if eta is not None:
                raise UsageError("Give `eta` once.")
            if index + 1 >= count:
                raise UsageError("Give a duration after `eta`, like `eta 30m`.")
            if index == start and first_eta is not None:
                duration = first_eta  # parsed already, while finding the message's end
            else:
                duration = _try_duration(tokens[index + 1])
            if isinstance(duration, UsageError):
                raise duration
            eta = duration
            index += 2
        elif keyword == "impact":
            if impact is not None:
                raise UsageError("Give `impact` once.")
            end = count
            if count - 2 > index and keywords[count - 2] == "eta":
                end = count - 2
            elif count - 1 > index and keywords[count - 1] == "eta":
                end = count - 1
            impact = " ".join(tokens[index + 1 : end])
            if not impact:
                raise UsageError("Describe the impact after `impact`.")
            index = end
        else:
            raise UsageError("Put `eta` and `impact` after the message, at the end.")
    return eta, impact


def parse_update(rest: str) -> UpdateStatus:
    """`[ID] <status> <message> [eta <duration>] [impact <text>]`, options in either order.

    Linear in the length of the text: the words are split once, each is classified once
    (keyword or not), and the message and the options are read in one pass each.
    """
    incident_id, tail = take_incident_id(rest)
    tokens = tail.split()
    if not tokens:
        raise UsageError("Give a status and a message.")
    status = tokens[0].lower()
    if status not in Status.__members__.values():
        raise UsageError(f"'{_quote(tokens[0])}' is not a status; use one of {STATUSES}.")
    words_ = tokens[1:]
    if not words_:
        raise UsageError("Say what is happening after the status.")
    keywords = [_keyword(word) for word in words_]
    end, first_eta = _message_end(words_, keywords)
    if end == 0:
        # `update monitoring eta 30m`: the options are not the message.
        raise UsageError(
            "Say what is happening after the status, before `eta` or `impact` (for example "
            "`/incident update monitoring Error rate back to normal eta 30m`)."
        )
    eta, impact = _options(words_, keywords, end, first_eta)
    message = " ".join(words_[:end])
    _check_length("message", message, MESSAGE_MAX)
    if impact is not None:
        _check_length("impact", impact, IMPACT_MAX)
    return _build(
        UpdateStatus,
        incident_id=incident_id,
        status=status,
        message=message,
        eta=eta,
        impact=impact,
    )
