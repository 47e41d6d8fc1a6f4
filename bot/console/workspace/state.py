"""Workspace state and Web API method semantics for the Slack test double.

Everything here is synchronous and transport-free: `WorkspaceState.call(method, params)`
either returns the JSON body Slack would send (without `ok`) or raises `ApiError` carrying
Slack's error code. `bot.console.workspace.server.SlackDouble` puts HTTP, auth and recording
around it.
"""

from __future__ import annotations

import copy
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.console.workspace.checks import MESSAGE_TEXT_MAX

_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_CHANNEL_ID = re.compile(r"C[A-Z0-9]{2,}")
CHANNEL_NAME_MAX = 80
# Who made the channels that exist before a test: a person, not the bot.
CHANNEL_CREATOR = "U0SBXADMIN"
TOPIC_MAX = 250
MAX_MODAL_STACK = 3
RESPONSE_URL_MAX_POSTS = 5


class ApiError(Exception):
    """A Slack Web API error answer: `{"ok": false, "error": error, **extra}`."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON body Slack sends for this error."""
        return {"ok": False, "error": self.error, **self.extra}


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


@dataclass
class UploadedFile:
    """A file from the files v2 flow (getUploadURLExternal, upload, completeUploadExternal)."""

    id: str
    filename: str
    length: int
    created: int
    content: bytes | None = None  # None until the bytes arrive at the upload URL
    title: str | None = None
    channels: list[str] = field(default_factory=list)
    completed: bool = False


def _text_obj(value: str, creator: str, last_set: int) -> dict[str, Any]:
    return {"value": value, "creator": creator, "last_set": last_set}


def as_flag(value: Any) -> bool:
    """Slack booleans arrive as JSON booleans or as form strings ("true", "1")."""
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)


def _require(params: Mapping[str, Any], name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise ApiError(
            "invalid_arguments",
            response_metadata={"messages": [f"[ERROR] missing required field: {name}"]},
        )
    return value


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


class WorkspaceState:
    """One Slack workspace: users, channels, messages, pins, views and files."""

    def __init__(
        self,
        *,
        team_id: str,
        bot_user_id: str,
        bot_id: str,
        app_id: str,
        users: Mapping[str, Mapping[str, Any]] | None,
        usergroups: Mapping[str, Iterable[str]] | None,
        channels_exist_by_default: bool,
        chat_write_public: bool,
        trigger_id_ttl: float | None,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self.team_id = team_id
        self.team_domain = team_id.lower()
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        # No seeded directory means any well-formed user ID exists (handy for quick tests).
        self._open_directory = users is None
        self.users: dict[str, dict[str, Any]] = {uid: dict(u) for uid, u in (users or {}).items()}
        self.usergroups: dict[str, list[str]] = {
            gid: list(members) for gid, members in (usergroups or {}).items()
        }
        self.channels_exist_by_default = channels_exist_by_default
        self.chat_write_public = chat_write_public
        self.trigger_id_ttl = trigger_id_ttl
        self._clock = clock
        self._wall_clock = wall_clock  # trigger_ids are minted with the wall clock
        self.channels: dict[str, Channel] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.views: dict[str, dict[str, Any]] = {}
        self.files: dict[str, UploadedFile] = {}
        self.files_base_url = ""  # set by the server once it knows its address
        self._home_views: dict[str, str] = {}  # user -> view id
        self._modal_stacks: list[list[str]] = []  # each: root view id first
        self._used_triggers: set[str] = set()
        self._id_counter = 0
        self._last_ts_us = 0
        self._methods: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
            "api.test": lambda p: {"args": dict(p)},
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.create": self._conversations_create,
            "conversations.invite": self._conversations_invite,
            "conversations.join": self._conversations_join,
            "conversations.setTopic": lambda p: self._set_topic_or_purpose(p, "topic"),
            "conversations.setPurpose": lambda p: self._set_topic_or_purpose(p, "purpose"),
            "conversations.info": self._conversations_info,
            "conversations.list": self._conversations_list,
            "conversations.open": self._conversations_open,
            "conversations.members": self._conversations_members,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "pins.add": self._pins_add,
            "pins.remove": self._pins_remove,
            "pins.list": self._pins_list,
            "reactions.add": self._reactions_add,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "usergroups.users.list": self._usergroups_users_list,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }

    # ----- dispatch and ids -------------------------------------------------------------

    def implements(self, method: str) -> bool:
        """True when the double answers `method` (else Slack's `unknown_method`)."""
        return method in self._methods

    def call(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Run a Web API method: the success body (with `ok`), or raise ApiError."""
        handler = self._methods.get(method)
        if handler is None:
            raise ApiError("unknown_method")
        return {"ok": True, **handler(params)}

    def new_id(self, prefix: str) -> str:
        """A Slack-shaped ID ("C0SBX000001"): prefix, then 10 of [A-Z0-9]."""
        self._id_counter += 1
        return f"{prefix}0SBX{self._id_counter:06d}"

    def new_ts(self) -> str:
        """A message ts: unique and strictly increasing, as Slack's are within a channel."""
        now_us = int(self._clock() * 1_000_000)
        self._last_ts_us = max(now_us, self._last_ts_us + 100)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def now(self) -> int:
        """Current time in whole seconds, from the injected clock."""
        return int(self._clock())

    # ----- users ------------------------------------------------------------------------

    def user_exists(self, user_id: str) -> bool:
        """Whether users.info would find `user_id`."""
        if user_id == self.bot_user_id or user_id in self.users:
            return True
        return self._open_directory and bool(_USER_ID.fullmatch(user_id))

    def user_object(self, user_id: str) -> dict[str, Any]:
        """users.info's `user` object: seed fields over realistic defaults."""
        if not self.user_exists(user_id):
            raise ApiError("user_not_found")
        seed = self.users.get(user_id, {})
        is_bot = user_id == self.bot_user_id
        name = seed.get("name") or ("chatops-bot" if is_bot else user_id.lower())
        real_name = seed.get("real_name") or name
        profile = {
            "real_name": real_name,
            "display_name": name,
            "real_name_normalized": real_name,
            "display_name_normalized": name,
            "team": self.team_id,
            **({"email": f"{name}@example.com"} if not is_bot else {"bot_id": self.bot_id}),
            **seed.get("profile", {}),
        }
        user = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": False,
            "real_name": real_name,
            "tz": "Etc/UTC",
            "tz_label": "Coordinated Universal Time",
            "tz_offset": 0,
            "is_admin": False,
            "is_owner": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": self.now(),
        }
        user.update({k: v for k, v in seed.items() if k != "profile"})
        user["profile"] = profile
        return user

    # ----- channels ---------------------------------------------------------------------

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
        its creator is `creator`, else its first human member, else a person of the team."""
        member_list = list(members or [])
        humans = [m for m in member_list if m != self.bot_user_id]
        if bot_is_member and self.bot_user_id not in member_list:
            member_list.append(self.bot_user_id)
        channel = Channel(
            id=channel_id,
            name=name,
            created=self.now(),
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

    def _visible_channel(self, params: Mapping[str, Any], key: str = "channel") -> Channel:
        channel = self.find_channel(str(_require(params, key)))
        # Slack hides private channels the bot is not in behind the same error.
        if channel is None or (channel.is_private and self.bot_user_id not in channel.members):
            raise ApiError("channel_not_found")
        return channel

    def _member_channel(self, params: Mapping[str, Any]) -> Channel:
        channel = self._visible_channel(params)
        if self.bot_user_id not in channel.members:
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
            "shared_team_ids": [self.team_id],
            "pending_connected_team_ids": [],
            "is_member": self.bot_user_id in channel.members,
            "topic": dict(channel.topic),
            "purpose": dict(channel.purpose),
            "previous_names": [],
        }
        if num_members:
            body["num_members"] = len(channel.members)
        return body

    def open_im(self, user_id: str) -> tuple[Channel, bool]:
        """The DM channel with `user_id` (created on first use); True when it already existed."""
        if not self.user_exists(user_id):
            raise ApiError("user_not_found")
        for channel in self.channels.values():
            if channel.is_im and channel.user == user_id:
                return channel, True
        channel = Channel(
            id=self.new_id("D"),
            name=user_id,
            created=self.now(),
            creator=self.bot_user_id,
            is_private=True,
            is_im=True,
            user=user_id,
            members=[self.bot_user_id, user_id],
        )
        self.channels[channel.id] = channel
        return channel, False

    # ----- messages ---------------------------------------------------------------------

    def find_message(self, channel: Channel, ts: Any) -> dict[str, Any]:
        """The message at `ts`, or Slack's `message_not_found`."""
        for message in channel.messages:
            if message["ts"] == ts:
                return message
        raise ApiError("message_not_found")

    def post_message(self, channel: Channel, params: Mapping[str, Any]) -> dict[str, Any]:
        """Append a bot message to `channel` (chat.postMessage, response_url in_channel)."""
        text = params.get("text")
        if not any(params.get(key) for key in ("text", "blocks", "attachments", "files")):
            raise ApiError("no_text")
        if isinstance(text, str) and len(text) > MESSAGE_TEXT_MAX:
            raise ApiError("msg_too_long")
        thread_ts = params.get("thread_ts") or None
        parent = None
        if thread_ts is not None:
            try:
                parent = self.find_message(channel, thread_ts)
            except ApiError:
                raise ApiError("invalid_thread_ts") from None
        message: dict[str, Any] = {
            "type": "message",
            "text": text or "",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "ts": self.new_ts(),
            "bot_profile": {
                "id": self.bot_id,
                "app_id": self.app_id,
                "name": "chatops-bot",
                "deleted": False,
                "team_id": self.team_id,
                "updated": self.now(),
                "icons": {
                    f"image_{size}": f"https://a.slack-edge.com/80588/img/plugins/app/bot_{size}.png"
                    for size in (36, 48, 72)
                },
            },
        }
        for key in ("blocks", "attachments", "metadata", "files", "upload"):
            if params.get(key):
                message[key] = copy.deepcopy(params[key])
        if parent is not None:
            message["thread_ts"] = parent["ts"]
            if as_flag(params.get("reply_broadcast")):
                message["subtype"] = "thread_broadcast"
            parent["thread_ts"] = parent["ts"]
            parent["reply_count"] = parent.get("reply_count", 0) + 1
            parent["latest_reply"] = message["ts"]
            parent["reply_users"] = sorted({*parent.get("reply_users", []), self.bot_user_id})
            parent["reply_users_count"] = len(parent["reply_users"])
        channel.messages.append(message)
        return message

    def replace_message(self, channel_id: str | None, ts: str, params: Mapping[str, Any]) -> bool:
        """response_url `replace_original`: edit a channel message or an ephemeral one."""
        channel = self.channels.get(channel_id or "")
        targets = list(channel.messages) if channel else []
        targets += [e for e in self.ephemerals if e.get("channel") == channel_id]
        for message in targets:
            if message.get("ts") == ts or message.get("message_ts") == ts:
                message["text"] = params.get("text") or ""
                message["blocks"] = copy.deepcopy(params.get("blocks") or [])
                return True
        return False

    def delete_message(self, channel_id: str | None, ts: str) -> bool:
        """Remove a message (chat.delete, response_url `delete_original`)."""
        channel = self.channels.get(channel_id or "")
        if channel is None:
            return False
        before = len(channel.messages)
        channel.messages = [m for m in channel.messages if m["ts"] != ts]
        channel.pinned = [p for p in channel.pinned if p != ts]
        return len(channel.messages) != before

    def add_ephemeral(
        self, channel_id: str | None, user_id: str | None, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Remember a message only `user_id` saw."""
        ephemeral = {
            "channel": channel_id,
            "user": user_id,
            "text": params.get("text") or "",
            "blocks": copy.deepcopy(params.get("blocks") or []),
            "thread_ts": params.get("thread_ts"),
            "message_ts": self.new_ts(),
        }
        self.ephemerals.append(ephemeral)
        return ephemeral

    # ----- Web API methods --------------------------------------------------------------

    def _auth_test(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": "Sandbox Workspace",
            "user": "chatops-bot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, params: Mapping[str, Any]) -> dict[str, Any]:
        ref = str(_require(params, "channel"))
        if _USER_ID.fullmatch(ref):
            channel, _ = self.open_im(ref)  # posting to a user ID lands in the DM
        else:
            channel = self._visible_channel(params)
        if channel.is_archived:
            raise ApiError("is_archived")
        if self.bot_user_id not in channel.members and not self.chat_write_public:
            raise ApiError("not_in_channel")
        message = self.post_message(channel, params)
        return {"channel": channel.id, "ts": message["ts"], "message": copy.deepcopy(message)}

    def _chat_update(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._visible_channel(params)
        message = self.find_message(channel, _require(params, "ts"))
        if message.get("bot_id") != self.bot_id:
            raise ApiError("cant_update_message")
        if "text" not in params and "blocks" not in params and "attachments" not in params:
            raise ApiError("no_text")
        text = params.get("text")
        if isinstance(text, str) and len(text) > MESSAGE_TEXT_MAX:
            raise ApiError("msg_too_long")
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in params:
                message[key] = copy.deepcopy(params[key])
        # chat.update does not notify anyone; Slack marks the edit instead.
        message["edited"] = {"user": self.bot_user_id, "ts": self.new_ts()}
        answer = {k: v for k, v in message.items() if k not in ("ts", "type")}
        return {
            "channel": channel.id,
            "ts": message["ts"],
            "text": message["text"],
            "message": copy.deepcopy(answer),
        }

    def _chat_post_ephemeral(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._visible_channel(params)
        user_id = str(_require(params, "user"))
        if not self.user_exists(user_id):
            raise ApiError("user_not_found")
        if channel.members_known and user_id not in channel.members:
            raise ApiError("user_not_in_channel")
        if not params.get("text") and not params.get("blocks") and not params.get("attachments"):
            raise ApiError("no_text")
        ephemeral = self.add_ephemeral(channel.id, user_id, params)
        return {"message_ts": ephemeral["message_ts"]}

    def _chat_delete(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._visible_channel(params)
        ts = str(_require(params, "ts"))
        if self.find_message(channel, ts).get("bot_id") != self.bot_id:
            raise ApiError("cant_delete_message")
        self.delete_message(channel.id, ts)
        return {"channel": channel.id, "ts": ts}

    def _chat_get_permalink(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._visible_channel(params)
        ts = str(_require(params, "message_ts"))
        self.find_message(channel, ts)
        link = f"https://{self.team_domain}.slack.com/archives/{channel.id}/p{ts.replace('.', '')}"
        return {"channel": channel.id, "permalink": link}

    def _conversations_create(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = str(params.get("name") or "")
        error = channel_name_error(name)
        if error:
            raise ApiError(error)
        if any(c.name == name and not c.is_im for c in self.channels.values()):
            raise ApiError("name_taken")
        now = self.now()
        channel = Channel(
            id=self.new_id("C"),
            name=name,
            created=now,
            creator=self.bot_user_id,
            is_private=as_flag(params.get("is_private")),
            members=[self.bot_user_id],
            topic=_text_obj("", "", 0),
            purpose=_text_obj("", "", 0),
        )
        self.channels[channel.id] = channel
        return {"channel": self.channel_object(channel)}

    def _conversations_invite(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(params)
        users = [u.strip() for u in str(_require(params, "users")).split(",") if u.strip()]
        errors: list[dict[str, Any]] = []
        valid: list[str] = []
        for user_id in dict.fromkeys(users):
            if user_id == self.bot_user_id:
                error = "cant_invite_self"
            elif not self.user_exists(user_id):
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

    def _conversations_join(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._visible_channel(params)
        if channel.is_im or channel.is_mpim or channel.is_private:
            raise ApiError("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise ApiError("is_archived")
        body: dict[str, Any] = {}
        if self.bot_user_id in channel.members:
            body = {"warning": "already_in_channel"}
            body["response_metadata"] = {"warnings": ["already_in_channel"]}
        else:
            channel.members.append(self.bot_user_id)
        return {"channel": self.channel_object(channel), **body}

    def _set_topic_or_purpose(self, params: Mapping[str, Any], kind: str) -> dict[str, Any]:
        channel = self._member_channel(params)
        value = str(params.get(kind) or "")
        if kind == "topic" and len(value) > TOPIC_MAX:
            raise ApiError("too_long")
        setattr(channel, kind, _text_obj(value, self.bot_user_id, self.now()))
        return {"channel": self.channel_object(channel)}

    def _conversations_info(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._visible_channel(params)
        num_members = as_flag(params.get("include_num_members"))
        return {"channel": self.channel_object(channel, num_members=num_members)}

    def _conversations_list(self, params: Mapping[str, Any]) -> dict[str, Any]:
        from bot.console.workspace.listing import conversations_list  # built on this module

        return conversations_list(self, params)

    def _conversations_open(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if params.get("channel"):
            channel = self._visible_channel(params)
            return {"channel": self.channel_object(channel), "already_open": True}
        users = [u.strip() for u in str(_require(params, "users")).split(",") if u.strip()]
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
            if not self.user_exists(user_id):
                raise ApiError("user_not_found")
        members = sorted({*users, self.bot_user_id})
        for channel in self.channels.values():
            if channel.is_mpim and sorted(channel.members) == members:
                return channel, True
        channel = Channel(
            id=self.new_id("C"),
            name="mpdm-" + "--".join(u.lower() for u in members) + "-1",
            created=self.now(),
            creator=self.bot_user_id,
            is_private=True,
            is_mpim=True,
            members=members,
            topic=_text_obj("", "", 0),
            purpose=_text_obj("", "", 0),
        )
        self.channels[channel.id] = channel
        return channel, False

    def _conversations_members(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._visible_channel(params)
        return {"members": list(channel.members), "response_metadata": {"next_cursor": ""}}

    def _conversations_history(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._visible_channel(params)
        limit = int(params.get("limit") or 100)
        offset = int(params.get("cursor") or 0)
        oldest = float(params.get("oldest") or 0)
        latest = float(params.get("latest") or "inf")
        inclusive = as_flag(params.get("inclusive"))
        top_level = [
            m
            for m in reversed(channel.messages)  # newest first, as Slack answers
            if m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast"
        ]

        def in_range(ts: float) -> bool:
            return oldest <= ts <= latest if inclusive else oldest < ts < latest

        in_range_messages = [m for m in top_level if in_range(float(m["ts"]))]
        page = in_range_messages[offset : offset + limit]
        has_more = offset + limit < len(in_range_messages)
        return {
            "messages": copy.deepcopy(page),
            "has_more": has_more,
            "pin_count": len(channel.pinned),
            "channel_actions_ts": None,
            "channel_actions_count": 0,
            "response_metadata": {"next_cursor": str(offset + limit) if has_more else ""},
        }

    def _conversations_replies(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._visible_channel(params)
        parent = self.find_message(channel, _require(params, "ts"))
        replies = [m for m in channel.messages if m.get("thread_ts") == parent["ts"]]
        if parent not in replies:
            replies.insert(0, parent)
        return {"messages": copy.deepcopy(replies), "has_more": False}

    def _pins_add(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(params)
        ts = str(_require(params, "timestamp"))
        message = self.find_message(channel, ts)
        if ts in channel.pinned:
            raise ApiError("already_pinned")
        channel.pinned.append(ts)
        message["pinned_to"] = [channel.id]
        return {}

    def _pins_remove(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(params)
        ts = str(_require(params, "timestamp"))
        message = self.find_message(channel, ts)
        if ts not in channel.pinned:
            raise ApiError("no_pin")
        channel.pinned.remove(ts)
        message.pop("pinned_to", None)
        return {}

    def _pins_list(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._visible_channel(params)
        items = [
            {
                "type": "message",
                "channel": channel.id,
                "created_by": self.bot_user_id,
                "message": copy.deepcopy(self.find_message(channel, ts)),
            }
            for ts in channel.pinned
        ]
        return {"items": items}

    def _reactions_add(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._visible_channel(params)
        name = str(_require(params, "name"))
        if ":" in name or " " in name:
            raise ApiError("invalid_name")  # Slack wants "white_check_mark", not ":...:"
        message = self.find_message(channel, _require(params, "timestamp"))
        reactions: list[dict[str, Any]] = message.setdefault("reactions", [])
        for reaction in reactions:
            if reaction["name"] == name:
                if self.bot_user_id in reaction["users"]:
                    raise ApiError("already_reacted")
                reaction["users"].append(self.bot_user_id)
                reaction["count"] += 1
                return {}
        reactions.append({"name": name, "users": [self.bot_user_id], "count": 1})
        return {}

    def _users_info(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {"user": self.user_object(str(_require(params, "user")))}

    def _users_lookup_by_email(self, params: Mapping[str, Any]) -> dict[str, Any]:
        email = str(_require(params, "email"))
        for user_id in [self.bot_user_id, *self.users]:
            user = self.user_object(user_id)
            if user["profile"].get("email") == email:
                return {"user": user}
        raise ApiError("users_not_found")

    def _usergroups_users_list(self, params: Mapping[str, Any]) -> dict[str, Any]:
        group_id = str(_require(params, "usergroup"))
        if group_id not in self.usergroups:
            raise ApiError("no_such_subteam")
        return {"users": list(self.usergroups[group_id])}

    # ----- views ------------------------------------------------------------------------

    def _use_trigger(self, params: Mapping[str, Any]) -> None:
        trigger_id = str(_require(params, "trigger_id"))
        if trigger_id in self._used_triggers:
            raise ApiError("exchanged_trigger_id")
        minted_ms = trigger_id.split(".", 1)[0]
        # Only triggers minted by bot.slack.requests carry their birth time (13-digit ms).
        if self.trigger_id_ttl is not None and len(minted_ms) == 13 and minted_ms.isdigit():
            if self._wall_clock() - int(minted_ms) / 1000 > self.trigger_id_ttl:
                raise ApiError("expired_trigger_id")
        self._used_triggers.add(trigger_id)

    def _view_object(
        self, view: Mapping[str, Any], view_id: str, root_id: str, previous: str | None
    ) -> dict[str, Any]:
        view_type = view.get("type", "modal")
        body: dict[str, Any] = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view_type,
            "blocks": copy.deepcopy(view.get("blocks", [])),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{self.now()}.{secrets.token_hex(4)}",
            "clear_on_close": as_flag(view.get("clear_on_close", False)),
            "notify_on_close": as_flag(view.get("notify_on_close", False)),
            "root_view_id": root_id,
            "previous_view_id": previous,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        for key in ("title", "submit", "close"):
            body[key] = copy.deepcopy(view.get(key))
        return body

    def _check_external_id(self, view: Mapping[str, Any], keep: str | None = None) -> None:
        external_id = view.get("external_id")
        if external_id and any(
            v["external_id"] == external_id and v["id"] != keep for v in self.views.values()
        ):
            raise ApiError("duplicate_external_id")

    def _views_open(self, params: Mapping[str, Any]) -> dict[str, Any]:
        view = _require(params, "view")
        self._use_trigger(params)
        self._check_external_id(view)
        view_id = self.new_id("V")
        self.views[view_id] = self._view_object(view, view_id, view_id, None)
        self._modal_stacks.append([view_id])
        return {"view": copy.deepcopy(self.views[view_id])}

    def _views_push(self, params: Mapping[str, Any]) -> dict[str, Any]:
        view = _require(params, "view")
        self._use_trigger(params)
        if not self._modal_stacks:
            raise ApiError("invalid_arguments", response_metadata={"messages": ["no open modal"]})
        stack = self._modal_stacks[-1]  # the modal the user is looking at
        if len(stack) >= MAX_MODAL_STACK:
            raise ApiError("push_limit_reached")
        self._check_external_id(view)
        view_id = self.new_id("V")
        self.views[view_id] = self._view_object(view, view_id, stack[0], stack[-1])
        stack.append(view_id)
        return {"view": copy.deepcopy(self.views[view_id])}

    def _views_update(self, params: Mapping[str, Any]) -> dict[str, Any]:
        view = _require(params, "view")
        view_id = params.get("view_id")
        external_id = params.get("external_id")
        if not view_id and not external_id:
            raise ApiError("invalid_arguments", response_metadata={"messages": ["view_id"]})
        current = self.views.get(str(view_id)) if view_id else None
        if current is None and external_id:
            matches = (v for v in self.views.values() if v["external_id"] == external_id)
            current = next(matches, None)
        if current is None:
            raise ApiError("not_found")
        if params.get("hash") and params["hash"] != current["hash"]:
            raise ApiError("hash_conflict")  # someone updated it since the caller looked
        self._check_external_id(view, keep=current["id"])
        updated = self._view_object(
            view, current["id"], current["root_view_id"], current["previous_view_id"]
        )
        self.views[current["id"]] = updated
        return {"view": copy.deepcopy(updated)}

    def _views_publish(self, params: Mapping[str, Any]) -> dict[str, Any]:
        view = _require(params, "view")
        user_id = str(_require(params, "user_id"))
        if not self.user_exists(user_id):
            raise ApiError("user_not_found")
        if view.get("type") != "home":
            raise ApiError("invalid_arguments", response_metadata={"messages": ["type: home"]})
        view_id = self._home_views.get(user_id) or self.new_id("V")
        current = self.views.get(view_id)
        if current and params.get("hash") and params["hash"] != current["hash"]:
            raise ApiError("hash_conflict")
        self._home_views[user_id] = view_id
        self.views[view_id] = self._view_object(view, view_id, view_id, None)
        return {"view": copy.deepcopy(self.views[view_id])}

    # ----- files v2 ---------------------------------------------------------------------

    def _files_get_upload_url(self, params: Mapping[str, Any]) -> dict[str, Any]:
        filename = str(_require(params, "filename"))
        try:
            length = int(_require(params, "length"))
        except ValueError:
            raise ApiError("invalid_arguments") from None
        if length <= 0:
            raise ApiError("invalid_arguments")
        file_id = self.new_id("F")
        self.files[file_id] = UploadedFile(file_id, filename, length, created=self.now())
        return {"upload_url": f"{self.files_base_url}{file_id}", "file_id": file_id}

    def receive_upload(self, file_id: str, content: bytes) -> bool:
        """Bytes POSTed to an upload URL; False when the URL was never issued."""
        upload = self.files.get(file_id)
        if upload is None or upload.completed:
            return False
        upload.content = content
        return True

    def file_object(self, upload: UploadedFile) -> dict[str, Any]:
        """The `file` object Slack returns after completeUploadExternal."""
        return {
            "id": upload.id,
            "created": upload.created,
            "timestamp": upload.created,
            "name": upload.filename,
            "title": upload.title or upload.filename,
            "mimetype": "text/plain",
            "filetype": "text",
            "user": self.bot_user_id,
            "size": len(upload.content or b""),
            "mode": "hosted",
            "is_external": False,
            "is_public": False,
            "url_private": f"https://files.slack.com/files-pri/{self.team_id}-{upload.id}/{upload.filename}",
            "permalink": f"https://{self.team_domain}.slack.com/files/{self.bot_user_id}/{upload.id}",
            "channels": list(upload.channels),
        }

    def _files_complete_upload(self, params: Mapping[str, Any]) -> dict[str, Any]:
        entries = _require(params, "files")
        if not isinstance(entries, list) or not entries:
            raise ApiError("invalid_arguments")
        uploads: list[UploadedFile] = []
        for entry in entries:
            upload = self.files.get(str(entry.get("id")))
            if upload is None or upload.completed:
                raise ApiError("file_not_found")
            if upload.content is None:
                raise ApiError("file_upload_not_complete")  # bytes never reached the URL
            upload.title = entry.get("title") or upload.filename
            uploads.append(upload)
        target = None
        if params.get("channel_id") or params.get("channels"):
            ref = str(params.get("channel_id") or str(params["channels"]).split(",")[0])
            target = self._visible_channel({"channel": ref})
        for upload in uploads:
            upload.completed = True
            if target is not None:
                upload.channels.append(target.id)
        if target is not None:
            # Slack shares the files with a message from the uploader.
            share = {
                "text": params.get("initial_comment") or "",
                "files": [self.file_object(u) for u in uploads],
                "upload": True,
                "thread_ts": params.get("thread_ts"),
            }
            self.post_message(target, share)
        return {"files": [{"id": u.id, "title": u.title} for u in uploads]}
