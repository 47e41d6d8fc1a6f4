"""What other parts read of remediation: a run as the post-incident report shows it, and a
request waiting for someone's approval as the App Home shows it. Plain data, defined here so
that remediation imports neither the reports nor the Home (they import it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class RemediationRun:
    """One remediation run on an incident, as the report shows it."""

    action: str
    target: str
    requested_by: str
    approvers: tuple[str, ...]
    outcome: str
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class ApprovalWaiting:
    """A remediation request the viewer may approve now (the App Home shows its buttons)."""

    request_id: int
    action: str
    service: str
    summary: str
    risk: str
    requested_by: str
    expires_at: datetime
    approvals: int
    approvals_needed: int
    incident_id: str | None = None
