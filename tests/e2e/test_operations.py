"""What an operator sees: /metrics after real traffic, /livez, /readyz naming what is down."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from urllib.parse import urlsplit

import aiohttp

from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import declare
from tests.harness import BotHarness
from tests.servers import LOOPBACK
from tests.waiting import until


def _base(app_url: str) -> str:
    return app_url.removesuffix("/slack/events")


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


def _sample(page: str, name: str, **labels: str) -> float:
    """The value of one sample in the Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
    for line in page.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_count_requests_slack_calls_and_the_outbox(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness("sqlite")
    base = _base(harness.app_url)
    _, before = await _get(base + "/metrics")
    await declare(harness, "declare P3 Search is slow")
    status, page = await _get(base + "/metrics")
    assert status == 200

    def grew(name: str, **labels: str) -> float:
        return _sample(page, name, **labels) - _sample(before, name, **labels)

    assert grew("chatops_requests_total", kind="command", outcome="ok") == 1
    assert grew("chatops_ack_seconds_count", kind="command") == 1
    assert grew("chatops_slack_calls_total", method="chat.postMessage") >= 1
    assert grew("chatops_outbox_effects_total", kind="incident.announce", outcome="delivered") == 1
    assert "chatops_outbox_pending " in page and "chatops_outbox_oldest_pending_seconds " in page

    # A refused call is counted by method and Slack's error.
    harness.double.fail("chat.postMessage", "channel_not_found")
    await declare(harness, "declare P3 Search is slower")
    _, after = await _get(base + "/metrics")
    assert (
        _sample(
            after,
            "chatops_slack_errors_total",
            method="chat.postMessage",
            error="channel_not_found",
        )
        - _sample(
            page, "chatops_slack_errors_total", method="chat.postMessage", error="channel_not_found"
        )
        == 1
    )


async def test_readyz_names_what_is_down_and_livez_still_answers(
    make_harness: HarnessFactory,
) -> None:
    # Redis on a port nobody listens on; Slack refusing the token.
    harness = await make_harness("sqlite", redis_url="redis://127.0.0.1:9/0")
    base = _base(harness.app_url)
    harness.double.fail("auth.test", "invalid_auth", times=50)
    status, body = await _get(base + "/readyz")
    assert status == 503
    # ... and, Redis away, this replica does not hear the others (pub/sub).
    assert '"store": "ok"' in body and '"down": ["coordinator", "slack", "replicas"]' in body
    assert '"replicas": "not hearing the other replicas for ' in body
    assert "invalid_auth" in body
    assert (await _get(base + "/livez"))[0] == 200
    # The command is still acknowledged and answered while Slack's auth.test fails.
    answer = await harness.command("declare P3 Search is slow")
    assert answer.status == 200
    [reply] = await harness.replies()
    assert "Declared" in reply["text"]


async def test_readyz_is_ready_when_everything_answers(
    make_harness: HarnessFactory, redis_url: str
) -> None:
    harness = await make_harness("sqlite", redis_url=redis_url)
    await _listening(harness)
    status, body = await _get(_base(harness.app_url) + "/readyz")
    assert status == 200, body
    assert '"slack": "ok"' in body and '"coordinator": "ok"' in body
    assert '"replicas": "ok"' in body


async def _listening(harness: BotHarness) -> None:
    """Until the replicas' listener has subscribed: /readyz says `replicas` is down until then
    (this process does not hear the others yet), and a first request can come before it."""
    await until(harness.services.status_push.listening.is_set, "the replicas listener")


class _HeldPings:
    """A loopback proxy in front of Redis: once `holding` is set, a PING is passed on only
    when `release` is set (bytes otherwise pass unchanged both ways)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.holding, self.release = threading.Event(), threading.Event()
        self._listener = socket.create_server((LOOPBACK, 0))
        self._sockets: list[socket.socket] = []
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                upstream = socket.create_connection((LOOPBACK, self.upstream_port))
                self._sockets += [client, upstream]
                threading.Thread(target=self._pass, args=(upstream, client), daemon=True).start()
                threading.Thread(
                    target=self._pass, args=(client, upstream, True), daemon=True
                ).start()

    def _pass(self, source: socket.socket, sink: socket.socket, requests: bool = False) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                if requests and b"PING" in chunk and self.holding.is_set():
                    self.release.wait(30)
                sink.sendall(chunk)

    def close(self) -> None:
        self.release.set()
        for sock in [self._listener, *self._sockets]:
            sock.close()


async def test_readyz_asks_its_dependencies_at_once(
    make_harness: HarnessFactory, redis_url: str
) -> None:
    """The probes once ran in turn, each bounded by 5 s: a Redis and a Slack both hung made
    /readyz take 7 s (up to 15 s), where 5 s was meant. Here Redis answers the probe's PING
    only once Slack's auth.test has been asked: asked in turn, the coordinator's PING timed
    out first (503)."""
    redis = urlsplit(redis_url)
    assert redis.port is not None
    proxy = _HeldPings(redis.port)
    try:
        harness = await make_harness(
            "sqlite", redis_url=redis._replace(netloc=f"{LOOPBACK}:{proxy.port}").geturl()
        )
        await _listening(harness)
        asked = len(harness.double.calls_to("auth.test"))
        proxy.holding.set()

        async def release_once_slack_is_asked() -> None:
            await until(lambda: len(harness.double.calls_to("auth.test")) > asked, "auth.test")
            proxy.release.set()

        releasing = asyncio.create_task(release_once_slack_is_asked())
        status, body = await _get(_base(harness.app_url) + "/readyz")
        assert status == 200, body
        assert '"store": "ok"' in body and '"coordinator": "ok"' in body
        assert '"slack": "ok"' in body
        await releasing
    finally:
        proxy.close()


async def test_commands_are_acknowledged_while_auth_test_hangs_and_asked_once(
    make_harness: HarnessFactory,
) -> None:
    """Before the bot knows who it is, every request waits for auth.test. Each once waited
    its turn to ask again: with Slack's Web API hanging (or unreachable), a burst of commands
    was acknowledged one call at a time, too late for Slack's 3 s. Now one call is shared,
    and a request goes on with the bot token alone after at most half a second."""
    harness = await make_harness("sqlite")
    held = harness.double.hold_reply("auth.test", times=100)
    try:
        # The guard only keeps the suite from hanging on the old code.
        answers = await asyncio.wait_for(
            asyncio.gather(*(harness.command(f"declare P3 Burst {n}") for n in range(10))),
            timeout=20,
        )
        assert [a.status for a in answers] == [200] * 10
        assert not held.is_set()  # answered while auth.test was still unanswered
        assert len(harness.double.calls_to("auth.test")) == 1
        replies = await harness.replies(10)
        assert all("Declared" in r["text"] for r in replies)
    finally:
        held.set()
