"""The shapes of Slack's IDs, written once: a person (U…, W… on Enterprise Grid), a user
group (S…), a channel (C…, G… for older private ones). No Slack client here: plain data."""

from __future__ import annotations

import re

USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
GROUP_ID = re.compile(r"S[A-Z0-9]{2,}")
CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,}")


# Each takes any value: what a payload calls an ID may be a number or an object.


def is_user_id(value: object) -> bool:
    return isinstance(value, str) and USER_ID.fullmatch(value) is not None


def is_group_id(value: object) -> bool:
    return isinstance(value, str) and GROUP_ID.fullmatch(value) is not None


def is_channel_id(value: object) -> bool:
    return isinstance(value, str) and CHANNEL_ID.fullmatch(value) is not None
