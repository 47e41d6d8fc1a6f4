"""Files in the Slack double: the files v2 upload flow and the file objects Slack answers.

files.getUploadURLExternal hands out an upload URL (served by `server`), the bytes arrive
there (`receive_upload`), files.completeUploadExternal shares them in a channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.console.workspace.api import ApiError, require
from bot.console.workspace.conversations import Conversations
from bot.console.workspace.messages import Messages
from bot.console.workspace.team import Team


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


class Uploads:
    """Files by ID, from the upload URL handed out to the share in a channel."""

    def __init__(self, team: Team, conversations: Conversations, messages: Messages) -> None:
        self.team = team
        self.conversations = conversations
        self.messages = messages
        self.files: dict[str, UploadedFile] = {}
        self.files_base_url = ""  # set by the server once it knows its address

    def files_get_upload_url(self, params: Mapping[str, Any]) -> dict[str, Any]:
        filename = str(require(params, "filename"))
        try:
            length = int(require(params, "length"))
        except ValueError:
            raise ApiError("invalid_arguments") from None
        if length <= 0:
            raise ApiError("invalid_arguments")
        file_id = self.team.new_id("F")
        self.files[file_id] = UploadedFile(file_id, filename, length, created=self.team.now())
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
            "user": self.team.bot_user_id,
            "size": len(upload.content or b""),
            "mode": "hosted",
            "is_external": False,
            "is_public": False,
            "url_private": f"https://files.slack.com/files-pri/{self.team.team_id}-{upload.id}/{upload.filename}",
            "permalink": f"https://{self.team.team_domain}.slack.com/files/{self.team.bot_user_id}/{upload.id}",
            "channels": list(upload.channels),
        }

    def files_complete_upload(self, params: Mapping[str, Any]) -> dict[str, Any]:
        entries = require(params, "files")
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
            target = self.conversations.visible_channel({"channel": ref})
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
            self.messages.post_message(target, share)
        return {"files": [{"id": u.id, "title": u.title} for u in uploads]}
