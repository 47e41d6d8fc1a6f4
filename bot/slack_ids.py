"""The shapes of Slack's IDs, written once: a person (U…, W… on Enterprise Grid), a user
group (S…), a channel (C…, G… for older private ones). No Slack client here: plain data."""

from __future__ import annotations

import re

USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
GROUP_ID = re.compile(r"S[A-Z0-9]{2,}")
CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,}")


def is_user_id(value: str) -> bool:
    return USER_ID.fullmatch(value) is not None


def is_group_id(value: str) -> bool:
    return GROUP_ID.fullmatch(value) is not None


def is_channel_id(value: str) -> bool:
    return CHANNEL_ID.fullmatch(value) is not None
