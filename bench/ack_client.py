"""The load client of bench/ack_latency.py, in a process of its own.

    python bench/ack_client.py SIGNING_SECRET   (bench/ack_latency.py starts it)

Reads one JSON line per burst from stdin, `{"targets": [url, ...], "bodies": [[body,
content_type], ...]}`, signs every body, sends them all at once (body n to target n modulo the
number of targets: a round-robin front without the extra hop) and answers one JSON line,
`{"ms": [each request's time to its HTTP 200, in order]}` or `{"error": "..."}`.

Its own process, so the time it measures is not spent waiting behind the Slack double (which
answers the bot's post-ack calls in the benchmark's process) on one event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.slack.signed_requests import signed_headers  # noqa: E402


async def burst(
    session: aiohttp.ClientSession, secret: str, targets: list[str], bodies: list[list[str]]
) -> list[float]:
    signed = [
        (targets[n % len(targets)], body.encode(), signed_headers(secret, body, None, None, "", ct))
        for n, (body, ct) in enumerate(bodies)
    ]

    async def one(url: str, data: bytes, headers: dict[str, str]) -> float:
        started = time.perf_counter()
        async with session.post(url, data=data, headers=headers) as response:
            await response.read()
            elapsed = (time.perf_counter() - started) * 1000
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status} from {url}")
        return elapsed

    return list(await asyncio.gather(*(one(*request) for request in signed)))


async def serve(secret: str) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    connector = aiohttp.TCPConnector(limit=0)  # no client-side queueing
    async with aiohttp.ClientSession(connector=connector) as session:
        while line := await reader.readline():
            order = json.loads(line)
            try:
                answer = {"ms": await burst(session, secret, order["targets"], order["bodies"])}
            except (RuntimeError, aiohttp.ClientError, TimeoutError) as exc:
                answer = {"error": str(exc) or type(exc).__name__}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("signing_secret", help="the secret the apps check requests with")
    asyncio.run(serve(parser.parse_args().signing_secret))
