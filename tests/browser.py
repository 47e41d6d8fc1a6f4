"""A real browser for tests: Debian's chromium, headless, one throwaway profile per run.

Installed by scripts/_bootstrap.sh (`ensure_servers`). Runs as a subprocess on the event
loop's own child watcher, so the bot under test keeps serving while the browser loads a page.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
PHONE = (390, 844)
DESKTOP = (1280, 900)
# A guard against a hung browser, not a performance bound.
RUN_LIMIT = 120.0
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # ignored by git


def _flags(profile: str) -> list[str]:
    return [
        "--headless",
        "--no-sandbox",  # these machines run tests as root
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]


def _require_chromium() -> None:
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: run `source scripts/_bootstrap.sh && ensure_servers`"
        " (it installs Debian's chromium)"
    )


def _clear(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)


def _written(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


async def _run(*args: str) -> bytes:
    _require_chromium()
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        process = await asyncio.create_subprocess_exec(
            str(CHROMIUM),
            *_flags(profile),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(RUN_LIMIT):
                out, err = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    return out


async def dump_dom(url: str) -> str:
    """The DOM after the page loaded, serialised (what a reader's browser built)."""
    return (await _run("--dump-dom", url)).decode("utf-8")


async def screenshot(url: str, path: Path, size: tuple[int, int]) -> Path:
    """A PNG of `url` in a window of `size` (width, height) pixels."""
    _clear(path)
    await _run(f"--screenshot={path}", f"--window-size={size[0]},{size[1]}", url)
    assert _written(path), f"chromium wrote no screenshot at {path}"
    return path
