"""An in-process Slack workspace: the console's Slack, and the tests' Slack double.

`server` serves the Web API, response_url and Socket Mode over loopback; `state` holds the
workspace and each method's semantics; `checks` refuses payloads Slack would refuse.
"""

from bot.console.workspace.server import (
    Channel,
    RecordedCall,
    RecordedResponse,
    SlackDouble,
    UploadedFile,
)

__all__ = ["Channel", "RecordedCall", "RecordedResponse", "SlackDouble", "UploadedFile"]
