"""This process, named as the holder of the claims it takes in the shared store (reminders,
remediation runs): host, process and a random part, so a restarted process is a new owner."""

from __future__ import annotations

import os
import socket
import uuid


def owner_id() -> str:
    """A new owner ID for this process: `host:pid:random`."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
