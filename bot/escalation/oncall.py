"""`/oncall`: who stands at each escalation level, read from the policy."""

from __future__ import annotations

from dataclasses import dataclass

from bot.models import Severity
from bot.policy import Policy


@dataclass(frozen=True, slots=True)
class OnCallLevel:
    level: int
    after: float
    recipients: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OnCall:
    """Who stands at each escalation level of one severity, and its targets."""

    severity: Severity
    levels: tuple[OnCallLevel, ...]
    ack_within: str
    resolve_within: str
    update_every: str | None


def oncall(policy: Policy, severity: Severity | None = None) -> list[OnCall]:
    """Who stands at each escalation level, per severity (all severities by default)."""
    rows = []
    for sev in [severity] if severity is not None else list(Severity):
        times = policy.response_times(sev)
        rows.append(
            OnCall(
                severity=sev,
                levels=tuple(
                    OnCallLevel(number, level.after.seconds, tuple(level.notify))
                    for number, level in enumerate(policy.levels(sev), start=1)
                ),
                ack_within=str(times.ack_within),
                resolve_within=str(times.resolve_within),
                update_every=str(times.update_every) if times.update_every else None,
            )
        )
    return rows
