"""The command reference in Slack: `/incident help`, the usage line each command's mistakes
are answered with, and the answer to a subcommand that does not exist."""

from __future__ import annotations

from bot.slack.escape import escape_mrkdwn
from bot.text import visible

# Usage lines show `<title>` and `<P0|P1>` literally: escaped like any text (see escape.py).
_USAGE_TEXT = {
    "declare": "`/incident declare <P0|P1|P2|P3> <title>` (for example `/incident declare P1 "
    "Checkout API returns 502`)",
    "ack": "`/incident ack [INC-ID]`",
    "update": "`/incident update [INC-ID] <investigating|identified|monitoring|resolved> "
    "<message> [eta <duration>] [impact <text>]` (for example `/incident update identified "
    "Bad deploy of checkout eta 30m impact EU card payments fail`)",
    "severity": "`/incident severity [INC-ID] <P0|P1|P2|P3>`",
    "assign": "`/incident assign [INC-ID] <commander|tech-lead|comms-lead|sme> <@person>`",
    "note": "`/incident note [INC-ID] <text>`",
    "resolve": "`/incident resolve [INC-ID] <summary of the fix>`",
    "reopen": "`/incident reopen [INC-ID] [reason]`",
    "list": "`/incident list [open|all|drills] [page N]` (50 a page: `/incident list all page 2`)",
    "catchup": "`/incident catchup [INC-ID]`",
    "drill": "`/incident drill <P0|P1|P2|P3> [<service>:] <scenario>` (for example `/incident "
    "drill P1 checkout: database failover`)",
    "show": "`/incident show [INC-ID]`",
    "timeline": "`/incident timeline [INC-ID]`",
    "warroom": "`/incident warroom [INC-ID]`",
    "publish": "`/incident publish [INC-ID] [update <N>]` (the incident and its status updates "
    "so far, on the public status page; `update N`: a withdrawn update put back)",
    "unpublish": "`/incident unpublish [INC-ID] [last|update <N>]` (without `last` or "
    "`update N`: the whole incident off the public status page)",
    "escalate": "`/incident escalate [INC-ID] [reason]` (the ID may be left out in the "
    "incident's own channel)",
    "oncall": "`/oncall [P0|P1|P2|P3]`",
    "report": "`/incident report [INC-ID]`",
    "postmortem": "`/incident postmortem [INC-ID]`",
    "actions": "`/incident actions [INC-ID]`",
    "stats": "`/incident stats [days]` (1 to 366; 30 when left out)",
    "diagnose": "`/diagnose <service> [check ...]`",
    "remediate": "`/remediate <action> <service> [key=value ...]` (`/remediate help` lists"
    " the actions)",
    "help": "`/incident help` lists every command",
}
USAGE = {command: escape_mrkdwn(line) for command, line in _USAGE_TEXT.items()}

HELP_TEXT = """*Incident commands* (in an incident's war room the INC-ID may be left out)
• `/incident declare <P0|P1|P2|P3> <title>`: declare an incident and announce it \
(`/incident declare` alone opens a form)
• `/incident ack [INC-ID]`: acknowledge it (stops the pages)
• `/incident update [INC-ID] <investigating|identified|monitoring|resolved> <message> \
[eta <duration>] [impact <text>]`: post a status update
• `/incident severity [INC-ID] <P0|P1|P2|P3>`: change the severity
• `/incident assign [INC-ID] <commander|tech-lead|comms-lead|sme> <@person>`: give a role
• `/incident note [INC-ID] <text>`: add a note to the timeline
• `/incident resolve [INC-ID] <summary>` · `/incident reopen [INC-ID] [reason]`
• `/incident list [open|all|drills] [page N]` · `/incident show [INC-ID]` · \
`/incident timeline [INC-ID]`
• `/incident catchup [INC-ID]`: where it stands, in a dozen lines (only you see it)
• `/incident drill <P0|P1|P2|P3> [<service>:] <scenario>`: a practice incident, marked DRILL
• `/incident warroom [INC-ID]`: open the war room, or retry its set-up after a failure
• `/incident escalate [INC-ID] [reason]`: page the next escalation level now
• `/incident publish [INC-ID]`: put the incident and its status updates so far on the \
public status page (notes, roles and diagnoses never go there); `update <N>`: put a \
withdrawn status update back
• `/incident unpublish [INC-ID] [last|update <N>]`: take the incident, or one of its status \
updates (N counts them from 1; `last`: the newest published), off the status page
• `/incident report [INC-ID]`: share the post-incident report (Markdown file)
• `/incident postmortem [INC-ID]`: record root cause, lessons and action items
• `/incident actions [INC-ID]`: list action items (close them with their button)
• `/incident stats [days]`: MTTA, MTTR, MTTD and breaches per severity, with a chart
• `/oncall [P0|P1|P2|P3]`: who is paged at each escalation level
• `/diagnose <service> [check ...]`: the runbook's read-only checks on a service, graded
• `/remediate <action> <service> [key=value ...]`: request a fix; it runs once another \
person approves it (`/remediate help` lists the actions)
• `/incident help`: this list
Severities: P0 critical (outage, data loss, breach), P1 high (major feature down), \
P2 medium (minor feature, moderate impact), P3 low (cosmetic)."""
HELP = escape_mrkdwn(HELP_TEXT)


def usage(command: str, problem: str = "") -> str:
    """`problem` is plain text (it may quote what the user typed); the usage line follows."""
    lead = f"{escape_mrkdwn(visible(problem))} " if problem else ""
    return f"{lead}Usage: {USAGE.get(command, USAGE['help'])}"


def unknown_subcommand(name: str) -> str:
    shown = escape_mrkdwn(visible(name[:40]))
    return f"I don't know `/incident {shown}`. Try `/incident help` for the list."
