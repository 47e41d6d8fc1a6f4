"""Conversations in the Slack double: channels, IMs and MPIMs, their members, topic and purpose.

conversations.create, invite, join, setTopic, setPurpose, info, open and members; the
listing (conversations.list) is in `listing`, a channel's messages in `messages`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.console.workspace.api import ApiError, as_flag, require
from bot.console.workspace.directory import Directory
from bot.console.workspace.team import Team

_CHANNEL_ID = re.compile(r"C[A-Z0-9]{2,}")
CHANNEL_NAME_MAX = 80
# Who made the channels that exist before a test: a person, not the bot.
CHANNEL_CREATOR = "U0SBXADMIN"
TOPIC_MAX = 250


@dataclass
class Channel:
    """A conversation as the double remembers it (public, private, IM or MPIM)."""

    id: str
    name: str
    created: int
    creator: str
    is_private: bool = False
    is_im: bool = False
    is_mpim: bool = False
    is_archived: bool = False
    user: str | None = None  # the other party of an IM
    members: list[str] = field(default_factory=list)
    # False for channels the double never saw being built (config channels): nobody can say
    # who is in them, so membership checks on humans are skipped.
    members_known: bool = True
    topic: dict[str, Any] = field(default_factory=dict)
    purpose: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)  # oldest first, with replies
    pinned: list[str] = field(default_factory=list)  # message ts, in pin order


def _text_obj(value: str, creator: str, last_set: int) -> dict[str, Any]:
    return {"value": value, "creator": creator, "last_set": last_set}


def channel_name_error(name: str) -> str | None:
    """Slack's verdict on a new channel name, or None when it is acceptable."""
    if not name:
        return "invalid_name_required"
    if len(name) > CHANNEL_NAME_MAX:
        return "invalid_name_maxlength"
    # Lowercase letters (any script), digits, hyphens and underscores only.
    if not all(c in "-_" or c.isdigit() or (c.isalpha() and c == c.lower()) for c in name):
        return "invalid_name_specials"
    if all(c in "-_" for c in name):
        return "invalid_name_punctuation"
    return None


class Conversations:
    """Every conversation in the workspace by ID, and the conversations.* methods on them.

    A method named after a Web API method (`conversations_create`) answers it: the success
    body without `ok`, or ApiError.
    """

    def __init__(
        self, team: Team, directory: Directory, *, channels_exist_by_default: bool
    ) -> None:
        self.team = team
        self.directory = directory
        self.channels_exist_by_default = channels_exist_by_default
        self.channels: dict[str, Channel] = {}

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        is_private: bool = False,
        members: Iterable[str] | None = None,
        bot_is_member: bool = True,
        creator: str | None = None,
    ) -> Channel:
        """Declare a channel that exists before the test (created by humans, from config):
        its creator is `creator`, else its first human member, else a person of the team.
        `members=None`: nobody knows who is in it (membership checks on humans skipped)."""
        member_list = list(members or [])
        humans = [m for m in member_list if m != self.team.bot_user_id]
        if bot_is_member and self.team.bot_user_id not in member_list:
            member_list.append(self.team.bot_user_id)
        channel = Channel(
            id=channel_id,
            name=name,
            created=self.team.now(),
            creator=creator or (humans[0] if humans else CHANNEL_CREATOR),
            is_private=is_private,
            members=member_list,
            members_known=members is not None,
            topic=_text_obj("", "", 0),
            purpose=_text_obj("", "", 0),
        )
        self.channels[channel_id] = channel
        return channel

    def find_channel(self, ref: str) -> Channel | None:
        """A channel by ID, `#name` or name; config channels spring into existence here."""
        if ref in self.channels:
            return self.channels[ref]
        name = ref.removeprefix("#")
        for channel in self.channels.values():
            if channel.name == name and not channel.is_im:
                return channel
        if self.channels_exist_by_default and _CHANNEL_ID.fullmatch(ref):
            # Config channels: the bot was invited by humans long ago.
            return self.add_channel(ref, ref.lower(), members=None)
        return None

    def visible_channel(self, params: Mapping[str, Any], key: str = "channel") -> Channel:
        """The channel named by `params[key]`, if the bot may see it; else channel_not_found."""
        channel = self.find_channel(str(require(params, key)))
        # Slack hides private channels the bot is not in behind the same error.
        if channel is None or (channel.is_private and self.team.bot_user_id not in channel.members):
            raise ApiError("channel_not_found")
        return channel

    def member_channel(self, params: Mapping[str, Any]) -> Channel:
        """Like `visible_channel`, for methods that need the bot in the channel."""
        channel = self.visible_channel(params)
        if self.team.bot_user_id not in channel.members:
            raise ApiError("not_in_channel")
        return channel

    def channel_object(self, channel: Channel, *, num_members: bool = False) -> dict[str, Any]:
        """The conversation object Slack returns for `channel`."""
        if channel.is_im:
            return {
                "id": channel.id,
                "created": channel.created,
                "is_im": True,
                "is_org_shared": False,
                "user": channel.user,
                "is_user_deleted": False,
                "priority": 0,
            }
        body: dict[str, Any] = {
            "id": channel.id,
            "name": channel.name,
            "is_channel": not channel.is_mpim,
            "is_group": False,
            "is_im": False,
            "is_mpim": channel.is_mpim,
            "is_private": channel.is_private,
            "created": channel.created,
            "is_archived": channel.is_archived,
            "is_general": False,
            "unlinked": 0,
            "name_normalized": channel.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "parent_conversation": None,
            "creator": channel.creator,
            "is_ext_shared": False,
            "shared_team_ids": [self.team.team_id],
            "pending_connected_team_ids": [],
            "is_member": self.team.bot_user_id in channel.members,
            "topic": dict(channel.topic),
            "purpose": dict(channel.purpose),
            "previous_names": [],
        }
        if num_members:
            body["num_members"] = len(channel.members)
        return body

    def open_im(self, user_id: str) -> tuple[Channel, bool]:
        """The DM channel with `user_id` (created on first use); True when it already existed."""
        if not self.directory.user_exists(user_id):
            raise ApiError("user_not_found")
        if self.directory.users.get(user_id, {}).get("deleted"):
            raise ApiError("user_disabled")  # deactivated: Slack opens no DM with them
        for channel in self.channels.values():
            if channel.is_im and channel.user == user_id:
                return channel, True
        channel = Channel(
            id=self.team.new_id("D"),
            name=user_id,
            created=self.team.now(),
            creator=self.team.bot_user_id,
            is_private=True,
            is_im=True,
            user=user_id,
            members=[self.team.bot_user_id, user_id],
        )
        self.channels[channel.id] = channel
        return channel, False

    def conversations_create(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = str(params.get("name") or "")
        error = channel_name_error(name)
        if error:
            raise ApiError(error)
        if any(c.name == name and not c.is_im for c in self.channels.values()):
            raise ApiError("name_taken")
        now = self.team.now()
        channel = Channel(
            id=self.team.new_id("C"),
            name=name,
            created=now,
            creator=self.team.bot_user_id,
            is_private=as_flag(params.get("is_private")),
            members=[self.team.bot_user_id],
            topic=_text_obj("", "", 0),
            purpose=_text_obj("", "", 0),
        )
        self.channels[channel.id] = channel
        return {"channel": self.channel_object(channel)}

    def conversations_invite(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self.member_channel(params)
        users = [u.strip() for u in str(require(params, "users")).split(",") if u.strip()]
        errors: list[dict[str, Any]] = []
        valid: list[str] = []
        for user_id in dict.fromkeys(users):
            if user_id == self.team.bot_user_id:
                error = "cant_invite_self"
            elif not self.directory.user_exists(user_id):
                error = "user_not_found"
            elif user_id in channel.members:
                error = "already_in_channel"
            else:
                valid.append(user_id)
                continue
            errors.append({"user": user_id, "ok": False, "error": error})
        # Like Slack: any bad user fails the whole call unless `force` asks to skip them.
        if errors and not as_flag(params.get("force")):
            raise ApiError(errors[0]["error"], errors=errors)
        channel.members.extend(valid)
        body: dict[str, Any] = {"channel": self.channel_object(channel)}
        if errors:
            body["errors"] = errors
        return body

    def conversations_join(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self.visible_channel(params)
        if channel.is_im or channel.is_mpim or channel.is_private:
            raise ApiError("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise ApiError("is_archived")
        body: dict[str, Any] = {}
        if self.team.bot_user_id in channel.members:
            body = {"warning": "already_in_channel"}
            body["response_metadata"] = {"warnings": ["already_in_channel"]}
        else:
            channel.members.append(self.team.bot_user_id)
        return {"channel": self.channel_object(channel), **body}

    def set_topic_or_purpose(self, params: Mapping[str, Any], kind: str) -> dict[str, Any]:
        channel = self.member_channel(params)
        value = str(params.get(kind) or "")
        if kind == "topic" and len(value) > TOPIC_MAX:
            raise ApiError("too_long")
        setattr(channel, kind, _text_obj(value, self.team.bot_user_id, self.team.now()))
        return {"channel": self.channel_object(channel)}

    def conversations_info(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self.visible_channel(params)
        num_members = as_flag(params.get("include_num_members"))
        return {"channel": self.channel_object(channel, num_members=num_members)}

    def conversations_open(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if params.get("channel"):
            channel = self.visible_channel(params)
            return {"channel": self.channel_object(channel), "already_open": True}
        users = [u.strip() for u in str(require(params, "users")).split(",") if u.strip()]
        if len(users) == 1:
            channel, existed = self.open_im(users[0])
        else:
            channel, existed = self._open_mpim(users)
        full = as_flag(params.get("return_im"))
        body: dict[str, Any] = {
            "channel": self.channel_object(channel) if full else {"id": channel.id}
        }
        if existed:
            body.update(no_op=True, already_open=True)
        return body

    def _open_mpim(self, users: list[str]) -> tuple[Channel, bool]:
        for user_id in users:
            if not self.directory.user_exists(user_id):
                raise ApiError("user_not_found")
        members = sorted({*users, self.team.bot_user_id})
        for channel in self.channels.values():
            if channel.is_mpim and sorted(channel.members) == members:
                return channel, True
        channel = Channel(
            id=self.team.new_id("C"),
            name="mpdm-" + "--".join(u.lower() for u in members) + "-1",
            created=self.team.now(),
            creator=self.team.bot_user_id,
            is_private=True,
            is_mpim=True,
            members=members,
            topic=_text_obj("", "", 0),
            purpose=_text_obj("", "", 0),
        )
        self.channels[channel.id] = channel
        return channel, False

    def conversations_members(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self.visible_channel(params)
        return {"members": list(channel.members), "response_metadata": {"next_cursor": ""}}
