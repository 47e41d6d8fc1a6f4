"""Issue 15: a burst of declarations on a contended PostgreSQL answered some requesters "I
can't reach my database ... nothing was changed" although their incidents were created. A
failure that comes once a COMMIT has been sent (here: the connection lost while the server's
confirmation of the COMMIT was on its way back) may follow a change that stands; the answer
must say what happened, read back from the request's claim, never "nothing was changed".

The fault is a real one: a TCP proxy in front of the real PostgreSQL lets the COMMIT of the
transaction that inserts the incident through, waits until the server has confirmed it, and
closes the connection before the confirmation reaches the bot.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from bot.console.workspace import SlackDouble
from bot.errors import NotifierError, StoreUnavailable
from bot.incidents.changes import IncidentChange
from bot.incidents.effects import PIN
from bot.incidents.schemas import DeclareIncident
from bot.models import SYSTEM, Actor, Severity, Status
from bot.outbox import Effect
from bot.policy import load_policy
from bot.slack import error_text
from bot.store import Tx
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import ANNOUNCE, count, reply
from tests.harness import BOT_TOKEN, openapi_spec

pytestmark = pytest.mark.postgres


class CommitCutter:
    """A loopback TCP proxy to PostgreSQL. Once armed, the first connection whose
    transaction inserted an incident has its COMMIT delivered and confirmed by the server,
    then is closed before the confirmation is passed on."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.armed = False
        self.cut = asyncio.Event()
        # After the cut, the database is gone: every connection closed, new ones refused.
        self.blackout = False
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.blackout and self.cut.is_set():
            client_w.close()
            return
        server_r, server_w = await asyncio.open_connection(*self.upstream)
        self._writers.update((client_w, server_w))
        state = {"inserted": False, "cutting": False}
        tasks = [
            asyncio.create_task(self._to_server(client_r, server_w, state)),
            asyncio.create_task(self._to_client(server_r, client_w, state)),
        ]
        self._tasks.update(tasks)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for writer in (client_w, server_w):
                writer.close()
            self._tasks.difference_update(tasks)

    async def _to_server(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: dict[str, bool]
    ) -> None:
        while chunk := await reader.read(65536):
            if b"INSERT INTO incidents " in chunk:
                state["inserted"] = True
            if self.armed and state["inserted"] and b"COMMIT" in chunk:
                self.armed = False
                state["cutting"] = True  # the server's answer will not be passed on
            writer.write(chunk)
            await writer.drain()

    async def _to_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: dict[str, bool]
    ) -> None:
        while chunk := await reader.read(65536):
            if state["cutting"]:
                if b"COMMIT\x00" in chunk:  # CommandComplete: the server has committed
                    self.cut.set()
                    if self.blackout:
                        for other in self._writers:
                            other.close()
                    return  # closing both ends: the bot never hears it
                continue
            writer.write(chunk)
            await writer.drain()


@pytest.fixture
async def cutter(postgres_url: str) -> AsyncIterator[tuple[CommitCutter, str]]:
    parts = urlsplit(postgres_url)
    proxy = CommitCutter(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    netloc = (
        f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else f"127.0.0.1:{proxy.port}"
    )
    try:
        yield proxy, urlunsplit(parts._replace(netloc=netloc))
    finally:
        await proxy.stop()


async def test_a_declaration_whose_commit_answer_is_lost_is_not_called_unchanged(
    make_harness: HarnessFactory, cutter: tuple[CommitCutter, str]
) -> None:
    proxy, url = cutter
    harness = await make_harness(database_url=url)
    proxy.armed = True
    response = await harness.command("declare P2 Checkout is down", channel_id="C0GENERAL")
    assert response.status == 200
    [answer] = await harness.replies(timeout=15)
    assert proxy.cut.is_set()  # the fault happened where it was meant to
    assert await count(harness, "incidents") == 1  # the declaration stands
    assert "nothing was changed" not in answer["text"]
    assert answer["text"] == error_text.done_unconfirmed()
    # And it is whole: announced once, like any other declaration.
    await harness.settle()
    announcements = [
        c.params["text"]
        for c in harness.double.calls_to("chat.postMessage")
        if c.params["channel"] == ANNOUNCE and c.params["text"].startswith("Incident Update:")
    ]
    assert len(announcements) == 1 and "Checkout is down" in announcements[0]


async def test_when_the_claim_cannot_be_read_back_the_answer_says_so(
    make_harness: HarnessFactory, cutter: tuple[CommitCutter, str]
) -> None:
    # The COMMIT went out and the database went away with its answer: nobody can tell yet
    # whether the declaration stands, and the answer must not guess "nothing was changed".
    proxy, url = cutter
    harness = await make_harness(database_url=url)
    proxy.armed, proxy.blackout = True, True
    await harness.command("declare P2 Checkout is down", channel_id="C0GENERAL")
    [answer] = await harness.replies(timeout=20)
    assert proxy.cut.is_set()
    assert answer["text"] == error_text.outcome_unknown()
    assert "nothing was changed" not in answer["text"]


class _LostMidway:
    """The database lost inside the declaration's transaction, before its COMMIT."""

    async def incident_changed(self, tx: Tx, change: IncidentChange) -> None:
        raise StoreUnavailable("PostgreSQL is unavailable: server closed the connection")


async def test_a_declaration_lost_before_its_commit_changed_nothing_and_says_so(
    make_harness: HarnessFactory, postgres_url: str
) -> None:
    # The day's number was taken (and committed) before the declaration's transaction: that
    # is no change of the user's, and the answer must still be "nothing was changed".
    harness = await make_harness(database_url=postgres_url)
    harness.services.incidents.changes.listeners.append(_LostMidway())
    await harness.command("declare P2 Checkout is down", channel_id="C0GENERAL")
    [answer] = await harness.replies(timeout=15)
    assert answer["text"] == error_text.store_unavailable()
    assert await count(harness, "incidents") == 0


async def test_a_responder_slack_cannot_confirm_is_told_slack_failed_not_that_they_may_not(
    make_harness: HarnessFactory,
) -> None:
    # responders: [S0SRE]. usergroups.users.list answered 429 (its tier allows 20 a minute)
    # and a member of the group was told ":no_entry: Only responders may change incidents."
    # and the refusal audited: a false claim, at the moment they needed the bot.
    policy = load_policy(None)
    roles = policy.roles.model_copy(update={"responders": ["S0SRE"]})
    policy = policy.model_copy(update={"roles": roles})
    double = SlackDouble(
        bot_token=BOT_TOKEN, openapi_spec=openapi_spec(), usergroups={"S0SRE": ["U0SRE1"]}
    )
    harness = await make_harness("sqlite", policy=policy, double=double)
    incident = await harness.services.incidents.declare(
        DeclareIncident(severity=Severity.P3, title="Disk full"), SYSTEM
    )
    double.rate_limit("usergroups.users.list", retry_after=0)  # 1 s would only be waited out
    answer = await reply(
        harness, f"update {incident.id} monitoring Fix rolled out", user_id="U0SRE1"
    )
    assert answer == error_text.slack_unanswered("ratelimited")
    stored = await harness.services.incidents.get(incident.id)
    assert stored.status is Status.INVESTIGATING
    # Slack answering again, the same person may.
    answer = await reply(
        harness, f"update {incident.id} monitoring Fix rolled out", user_id="U0SRE1"
    )
    assert "Only responders" not in answer
    assert (await harness.services.incidents.get(incident.id)).status is Status.MONITORING
    # Someone who is not in the group is still refused, Slack answering or not.
    answer = await reply(harness, f"update {incident.id} resolved Done", user_id="U0MALLORY")
    assert answer.startswith(":no_entry: Only responders may change incidents.")


async def test_a_failure_report_the_store_cannot_record_is_still_delivered(
    make_harness: HarnessFactory, tmp_path: Path
) -> None:
    # The card's pin failed for good; recording that met the database held by another writer
    # (StoreBusy) and the report to the war room was never sent: the effect was failed
    # already, so nobody ever heard of it. As a diagnosis the store cannot record, it is now
    # delivered through the notifier all the same.
    database = tmp_path / "held.db"
    harness = await make_harness(database_url=f"sqlite:///{database}", DATABASE_QUEUE_SECONDS=1.0)
    incident = await harness.services.incidents.declare(
        DeclareIncident(severity=Severity.P1, title="Checkout down"), Actor("U0ALICE")
    )
    await harness.settle()
    incident = await harness.services.incidents.get(incident.id)
    room = incident.channel_id or ""
    assert room
    failed = harness.services.dispatcher.failures.on_failure[PIN]
    effect = Effect(1, PIN, incident.id, {}, 1, incident.declared_at, 1)
    holder = sqlite3.connect(database, isolation_level=None, timeout=10, check_same_thread=False)
    await asyncio.to_thread(holder.execute, "BEGIN IMMEDIATE")
    try:
        await failed(effect, NotifierError("not_pinnable", error_code="not_pinnable"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    told = [
        str(c.params["text"])
        for c in harness.double.calls_to("chat.postMessage")
        if c.ok and c.params.get("channel") == room
    ]
    assert error_text.step_failed(incident, "pin_summary", room, "not_pinnable") in told
