"""An in-process Slack workspace: the console's Slack, and the tests' Slack double.

Transport: `server` (SlackDouble: start, stop, seeding and reading the workspace) is made
of `web_api` (the Web API and upload URLs over HTTP), `response_urls`, `socket_mode`,
`faults` (scripted failures) and `recording` (calls seen, and waiting for them); `checks`,
`documented` and `limits` refuse what Slack would refuse.

Semantics, transport-free: `state` (WorkspaceState: which part answers which method) is
made of `team` (identity, IDs, timestamps), `directory` (users, user groups),
`conversations` (channels, IMs, MPIMs; `listing` pages conversations.list), `messages`
(chat.*, threads, ephemerals, history), `pins_reactions`, `views` (modals, App Homes) and
`files` (uploads); `api` holds ApiError and argument helpers.
"""

from bot.console.workspace.server import (
    Channel,
    RecordedCall,
    RecordedResponse,
    SlackDouble,
    UploadedFile,
)

__all__ = ["Channel", "RecordedCall", "RecordedResponse", "SlackDouble", "UploadedFile"]
