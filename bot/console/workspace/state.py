"""Workspace state and Web API method semantics for the Slack test double.

Everything here is synchronous and transport-free: `WorkspaceState.call(method, params)`
either returns the JSON body Slack would send (without `ok`) or raises `ApiError` carrying
Slack's error code. `bot.console.workspace.server.SlackDouble` puts HTTP, auth and recording
around it.

The workspace is made of parts, each in a module of its own, holding its own data and
answering its own methods: `team` (who the team and the app are, IDs and timestamps),
`directory` (users and user groups), `conversations` (channels, IMs and MPIMs; the listing
in `listing`), `messages` (chat.*, threads, ephemerals, history), `pins_reactions`, `views`
(Surfaces: modals and App Homes) and `files` (Uploads). The table below says which part
answers which method.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from bot.console.workspace.api import ApiError, as_flag
from bot.console.workspace.conversations import Channel, Conversations, channel_name_error
from bot.console.workspace.directory import Directory
from bot.console.workspace.files import UploadedFile, Uploads
from bot.console.workspace.listing import conversations_list
from bot.console.workspace.messages import Messages
from bot.console.workspace.pins_reactions import PinsAndReactions
from bot.console.workspace.team import Team
from bot.console.workspace.views import Surfaces

__all__ = [
    "ApiError",
    "Channel",
    "UploadedFile",
    "WorkspaceState",
    "as_flag",
    "channel_name_error",
]


class WorkspaceState:
    """One Slack workspace: users, channels, messages, pins, views and files."""

    def __init__(
        self,
        *,
        team: Team,
        users: Mapping[str, Mapping[str, Any]] | None,
        usergroups: Mapping[str, Iterable[str]] | None,
        channels_exist_by_default: bool,
        chat_write_public: bool,
        trigger_id_ttl: float | None,
        wall_clock: Callable[[], float],
    ) -> None:
        directory = Directory(team, users, usergroups)
        conversations = Conversations(
            team, directory, channels_exist_by_default=channels_exist_by_default
        )
        messages = Messages(team, directory, conversations, chat_write_public=chat_write_public)
        pins_reactions = PinsAndReactions(team, conversations, messages)
        surfaces = Surfaces(team, directory, trigger_id_ttl=trigger_id_ttl, wall_clock=wall_clock)
        uploads = Uploads(team, conversations, messages)
        self.team = team
        self.directory = directory
        self.conversations = conversations
        self.messages = messages
        self.pins_reactions = pins_reactions
        self.surfaces = surfaces
        self.uploads = uploads
        # What the server, the console and tests read and seed: the parts' own objects.
        self.team_id = team.team_id
        self.bot_user_id = team.bot_user_id
        self.app_id = team.app_id
        self.users = directory.users
        self.usergroups = directory.usergroups
        self.channels = conversations.channels
        self.ephemerals = messages.ephemerals
        self.views = surfaces.views
        self.files = uploads.files
        self.new_ts = team.new_ts
        self.add_channel = conversations.add_channel
        self.find_channel = conversations.find_channel
        self.open_im = conversations.open_im
        self.post_message = messages.post_message
        self.replace_message = messages.replace_message
        self.delete_message = messages.delete_message
        self.add_ephemeral = messages.add_ephemeral
        self.receive_upload = uploads.receive_upload
        self._methods: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
            "api.test": lambda p: {"args": dict(p)},
            "auth.test": team.auth_test,
            "chat.postMessage": messages.chat_post_message,
            "chat.update": messages.chat_update,
            "chat.postEphemeral": messages.chat_post_ephemeral,
            "chat.delete": messages.chat_delete,
            "chat.getPermalink": messages.chat_get_permalink,
            "conversations.create": conversations.conversations_create,
            "conversations.invite": conversations.conversations_invite,
            "conversations.join": conversations.conversations_join,
            "conversations.setTopic": lambda p: conversations.set_topic_or_purpose(p, "topic"),
            "conversations.setPurpose": lambda p: conversations.set_topic_or_purpose(p, "purpose"),
            "conversations.info": conversations.conversations_info,
            "conversations.list": lambda p: conversations_list(conversations, p),
            "conversations.open": conversations.conversations_open,
            "conversations.members": conversations.conversations_members,
            "conversations.history": messages.conversations_history,
            "conversations.replies": messages.conversations_replies,
            "pins.add": pins_reactions.pins_add,
            "pins.remove": pins_reactions.pins_remove,
            "pins.list": pins_reactions.pins_list,
            "reactions.add": pins_reactions.reactions_add,
            "users.info": directory.users_info,
            "users.lookupByEmail": directory.users_lookup_by_email,
            "usergroups.users.list": directory.usergroups_users_list,
            "views.open": surfaces.views_open,
            "views.push": surfaces.views_push,
            "views.update": surfaces.views_update,
            "views.publish": surfaces.views_publish,
            "files.getUploadURLExternal": uploads.files_get_upload_url,
            "files.completeUploadExternal": uploads.files_complete_upload,
        }

    def implements(self, method: str) -> bool:
        """True when the double answers `method` (else Slack's `unknown_method`)."""
        return method in self._methods

    def call(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Run a Web API method: the success body (with `ok`), or raise ApiError."""
        handler = self._methods.get(method)
        if handler is None:
            raise ApiError("unknown_method")
        return {"ok": True, **handler(params)}
