"""Read-only diagnostics of the systems in the service catalog.

catalog entry -> checks (probes per system, bot.diagnostics.probes) -> graded findings
-> advisor (the runbooks' decision tree) -> suggestions. Nothing here imports Slack.
"""

from bot.diagnostics.findings import CheckRun, Finding, Grade, Report, Suggestion

__all__ = ["CheckRun", "Finding", "Grade", "Report", "Suggestion"]
