"""Preloaded into a `chatops-bot run` process by `bench/memory.py --trace`: tracemalloc from
the first import (`MEMTRACE_FRAMES` frames, 1 by default), and on SIGUSR1 a snapshot written
next to `MEMTRACE_OUT` (`.N.snap`, then `.N.done`). With `MEMTRACE_FRAMES=0` there is no
tracemalloc (it hides the allocator's statistics) and `.N.arenas` holds Python's allocator
arenas instead (`sys._debugmallocstats`).
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

_FRAMES = int(os.environ.get("MEMTRACE_FRAMES", "1"))
if _FRAMES > 0:
    tracemalloc.start(_FRAMES)
_taken = 0


def _snapshot(signum: int, frame: FrameType | None) -> None:
    global _taken
    out = f"{os.environ['MEMTRACE_OUT']}.{_taken}"
    _taken += 1
    gc.collect()
    if tracemalloc.is_tracing():
        tracemalloc.take_snapshot().dump(f"{out}.snap")
    else:
        saved = os.dup(2)
        try:
            with open(f"{out}.arenas", "w") as arenas:
                os.dup2(arenas.fileno(), 2)
                sys._debugmallocstats()  # writes to fd 2
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    Path(f"{out}.done").touch()


signal.signal(signal.SIGUSR1, _snapshot)

if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()
