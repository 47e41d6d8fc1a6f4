"""How long a burst of declarations keeps the on-call person's pages waiting, at Slack's pace.

    .venv/bin/python bench/page_latency.py [--count 20] [--pace-scale 10] [--store sqlite]

`--count` signed `/incident declare P2 ...` commands are sent at once to the real bot
(`create_bot` on a loopback port, outbox and escalation running), whose Web API is the Slack
double enforcing Slack's rate limits: one message a second per channel, `--pace-scale` times
faster (10 by default: the figures are printed back in Slack's seconds). A P2 incident is
announced in the announcement channel, paged there (it has no war room) and its level-1
people are DMed. Printed: for each kind of message, seconds from the burst to the first
and the last of them, in Slack's time.

What it shows: whether a page's DM waits behind the announcement channel's queue. The
channel takes one message a second, so a burst of N incidents fills it for 2N seconds; the
DMs go to another channel, with a queue of its own. Figures only: see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cluster import BOT_TOKEN, SIGNING_SECRET, start_in_process  # noqa: E402
from bot.console.workspace import RecordedCall, RecordedResponse, SlackDouble  # noqa: E402
from bot.policy import load_policy  # noqa: E402
from bot.slack.limits import SlackLimits  # noqa: E402
from bot.slack.requests import SlackRequestSender, slash_command_body  # noqa: E402

CHANNEL = "C0BENCH"
USER = "U0BENCH"
_INCIDENT = re.compile(r"INC-\d{8}-\d+")


class Arrivals:
    """When each kind of message arrived at the double (seconds since `started`)."""

    def __init__(self, announce_channel: str) -> None:
        self.announce_channel = announce_channel
        self.started = time.perf_counter()
        self.times: dict[str, list[float]] = {"announcement": [], "page post": [], "page DM": []}
        self.seen: dict[str, list[str]] = {kind: [] for kind in self.times}  # incident IDs
        self.changed = asyncio.Event()

    async def __call__(self, item: RecordedCall | RecordedResponse) -> None:
        if not isinstance(item, RecordedCall) or item.method != "chat.postMessage" or not item.ok:
            return
        text = str(item.params.get("text", ""))
        channel = str(item.params.get("channel", ""))
        if not _INCIDENT.search(text):
            return
        if channel.startswith("D"):
            kinds = ["page DM"]
        elif text.startswith("Incident Update:"):
            # The card carries the level-1 page of an incident without a war room.
            kinds = ["announcement"] + (["page post"] if "you are paged" in text else [])
        elif channel == self.announce_channel:
            kinds = ["page post"]
        else:
            return
        for kind in kinds:
            self.times[kind].append(time.perf_counter() - self.started)
            self.seen[kind].append(_INCIDENT.search(text).group(0))  # type: ignore[union-attr]
        self.changed.set()

    async def wait(self, count: int, within: float) -> bool:
        try:
            async with asyncio.timeout(within):
                while min(len(times) for times in self.times.values()) < count:
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            return False
        return True


async def measure(count: int, pace_scale: float, database_url: str) -> None:
    policy = load_policy(None)
    arrivals = Arrivals(policy.announce_channel)
    async with AsyncExitStack() as stack:
        double = SlackDouble(
            bot_token=BOT_TOKEN, on_event=arrivals, rate_limits=SlackLimits(scale=pace_scale)
        )
        await double.start()
        stack.push_async_callback(double.stop)
        double.add_channel(CHANNEL, "bench")
        url = await start_in_process(
            stack, double, database_url, pace_scale=pace_scale, policy=policy
        )
        session = await stack.enter_async_context(aiohttp.ClientSession())
        sender = SlackRequestSender(url, SIGNING_SECRET, session=session)
        bodies = [
            slash_command_body(
                text=f"declare P2 Burst declaration {n}",
                user_id=USER,
                channel_id=CHANNEL,
                response_url=double.new_response_url(channel=CHANNEL, user_id=USER),
            )
            for n in range(count)
        ]
        arrivals.started = time.perf_counter()
        await asyncio.gather(*(sender.send(body) for body in bodies))
        finished = await arrivals.wait(count, within=10 + 4 * count / pace_scale)
    print(f"{count} P2 declarations at once, Slack's pace x{pace_scale:g}, in Slack's seconds")
    for kind, times in arrivals.times.items():
        if times:
            first, last = min(times) * pace_scale, max(times) * pace_scale
            twice = len(times) - len(set(arrivals.seen[kind]))
            print(
                f"  {kind:<13} {len(times):4d}  first after {first:5.1f} s, last {last:5.1f} s;"
                f" {twice} twice"
            )
    if not finished:
        print("  (stopped waiting: not every message arrived)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--pace-scale", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(measure(args.count, args.pace_scale, f"sqlite:///{folder}/bench.db"))


if __name__ == "__main__":
    main()
