"""The console's opening lines: where its database, policy and log are, who and where you are,
what an earlier session left (war rooms back, requests waiting, notes), and the status page."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.console.app import Console


def banner_lines(console: Console) -> list[str]:
    """The lines printed when the console starts."""
    policy = str(console.policy_path) if console.policy_path else "built-in"
    announce = console.policy.announce_channel if console.policy else "?"
    lines = [
        console.style.bold("chatops-bot console") + ": the real bot, and a pretend Slack "
        "workspace in this process.",
        console.style.dim(f"Database {console.database_url}; policy {policy}."),
        f"Announcements go to {console.feed.where_id(announce)}. You are {console.user_id} in "
        f"{console.feed.where_id(console.channel_id)}.",
        "Type a slash command (/incident help), a button's number, or :help.",
    ]
    if console.log_file is not None:
        lines.insert(2, console.style.dim(f"The bot's log: {console.log_file}"))
    if console.earlier:
        rooms = ", ".join(console.earlier[-3:]) + (" ..." if len(console.earlier) > 3 else "")
        lines.insert(
            -1,
            console.style.dim(
                f"{len(console.earlier)} war room(s) of an earlier session are back ({rooms}) "
                "with their cards; their other messages were not kept (scripts/demo "
                "--fresh starts over)."
            ),
        )
    for note in console.earlier_notes:  # left out, expired: not dimmed, they need reading
        lines.insert(-1, note)
    if console.waiting:
        count = len(console.waiting)
        lines.insert(
            -1,
            f"{count} remediation request{'s' if count != 1 else ''} of an earlier session "
            f"still wait{'' if count != 1 else 's'} for approval (below): press Approve or "
            "Deny by its number.",
        )
    if console.bot is not None:
        # `/incident publish` says "on the public status page": say where it is served.
        lines.insert(
            -1,
            console.style.dim(
                f"Status page (what /incident publish shows): "
                f"http://127.0.0.1:{console.bot.port}/status, while the console runs."
            ),
        )
    return lines
