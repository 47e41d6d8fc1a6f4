"""What the bot says in Slack when something failed: a Slack step of an incident (with advice
to fix it), the store out of reach or busy, a refusal, a form that would not open."""

from __future__ import annotations

from bot.models import Incident
from bot.slack.escape import escape_mrkdwn
from bot.slack.templates import channel, user

STEP_DESCRIPTIONS = {
    "announce": "post its announcement in {target}",
    "create_war_room": "create its war room {target}",
    "invite": "invite {target} to its war room",
    "expand_group": "read the members of {target} to invite them",
    "post_summary": "post its summary in {target}",
    "pin_summary": "pin its summary in {target}",
    "refresh_summary": "update its summary and topic in {target}",
    "post_update": "post its status update in {target}",
    "post_notice": "post a notice in {target}",
}
# Steps `/incident warroom` runs again.
WAR_ROOM_STEPS = {
    "create_war_room",
    "invite",
    "expand_group",
    "post_summary",
    "pin_summary",
    "refresh_summary",
}

ERROR_ADVICE = {
    "channel_not_found": "Check that the channel exists and that I am invited to it.",
    "not_in_channel": "Invite me to the channel.",
    "is_archived": "The channel is archived; unarchive it or pick another.",
    "missing_scope": "My Slack app lacks a permission; an admin must reinstall it.",
    "user_not_found": "That person is not in this workspace.",
    "name_taken": "Every channel name I tried is taken; archive or rename one of them.",
    "restricted_action": "Workspace settings do not let me create channels; ask an admin.",
    "user_is_restricted": "Guests can only be added to channels by an admin.",
    "user_is_ultra_restricted": "Single-channel guests cannot be added to another channel.",
    "no_such_subteam": "That user group does not exist any more; fix the policy.",
}
# Slack failing, not refusing (a war room given up on after a minute of them): nothing to fix.
SLACK_FAILING = {
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "slack_unreachable",
}


def step_failed(incident: Incident, step: str, target: str | None, error: str) -> str:
    where = ""
    if target:
        if target.startswith("#"):
            where = f"`{target}`"  # a channel name: the channel may not exist to link to
        else:
            where = channel(target) if target[:1] in "CG" else user(target)
    what = STEP_DESCRIPTIONS.get(step, step.replace("_", " ")).format(target=where)
    what = " ".join(what.split())  # no double space when there is no target
    advice = ERROR_ADVICE.get(error, "")
    if step in WAR_ROOM_STEPS and error in SLACK_FAILING:
        # Only a room never made sends its pages elsewhere; the other steps' pages went to it.
        failing = "Slack kept failing"
        if step == "create_war_room":
            failing += "; the pages went to the announcement channel"
        advice = f"{failing}. Run `/incident warroom {incident.id}` once Slack answers again."
    elif step in WAR_ROOM_STEPS:
        advice = f"{advice} Fix it, then run `/incident warroom {incident.id}`.".strip()
    return (
        f":warning: *{incident.id}* stands, but I could not {what} (`{error}`). {advice}".rstrip()
    )


def store_unavailable() -> str:
    return (
        ":warning: I can't reach my database right now, so nothing was changed. "
        "Please try again in a moment."
    )


def store_busy() -> str:
    # Load, not an outage: the database is up, the request waited its turn and ran out of time.
    return (
        ":hourglass: I'm handling more requests than my database can take right now and "
        "yours waited too long, so nothing was changed. Please try again in a minute."
    )


def slack_unanswered(error_code: str) -> str:
    # Slack failed a call the command needed (a user group's members, say): not a refusal.
    why = f" (`{escape_mrkdwn(error_code)}`)" if error_code else ""
    return (
        f":warning: Slack did not answer me{why}, so nothing was changed."
        " Please try again in a moment."
    )


def done_unconfirmed() -> str:
    # The change committed; something after it failed (the answer itself, a later step).
    return (
        ":white_check_mark: That went through: your request is recorded. Something failed"
        " after it, so I could not confirm the details here. Please don't send it again;"
        " `/incident list` shows where things stand."
    )


def given_back(typed: str) -> str:
    """What a form's author typed, quoted after a failure's answer (the form is gone)."""
    quoted = "\n".join(f">{escape_mrkdwn(line)}" for line in typed.splitlines())
    return f"\nHere is what you wrote:\n{quoted}"


def outcome_unknown() -> str:
    # A COMMIT was sent and its answer lost, or a later step failed: whether it stands is
    # not known, so the person must not be told that nothing changed.
    return (
        ":warning: I lost track of your request while saving it, so I can't tell whether it"
        " was recorded. Check `/incident list` before you try again."
    )


def duplicate_request() -> str:
    return "That request was already handled; nothing was changed."


def not_allowed(reason: str) -> str:
    return f":no_entry: {reason}"


def internal_error() -> str:
    return ":warning: Something went wrong on my side and nothing was changed. It is logged."


# Each form by name: what it is called, and what to do when it cannot open.
_FORMS = {
    "declare": (
        "declaration form",
        "Declare with `/incident declare &lt;P0|P1|P2|P3&gt; &lt;title&gt;` instead.",
    ),
    "update": ("update form", "Use `/incident update` instead."),
    "postmortem": ("postmortem form", "Try `/incident postmortem` again in a moment."),
}


def form_failed(form: str, error: str) -> str:
    """A modal that Slack would not open: which one, why, and what to do instead."""
    name, instead = _FORMS[form]
    return f"I could not open the {name} (`{escape_mrkdwn(error)}`). {instead}"


def form_unanswered(form: str) -> str:
    """A modal whose opening Slack never answered: it may have opened, or not."""
    name, instead = _FORMS[form]
    return f"Slack did not answer when I opened the {name}. If it did not open: {instead}"


def unknown_button() -> str:
    return (
        "That button is not one this version of the bot knows (on an older message, perhaps),"
        " so nothing was done."
    )


def unknown_form() -> str:
    return (
        "This form is not one this version of the bot knows (opened before an upgrade,"
        " perhaps), so nothing was saved. Close it and start again."
    )
