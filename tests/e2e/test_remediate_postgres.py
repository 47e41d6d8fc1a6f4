"""PostgreSQL remediations on a real server, approved by another person: a real blocking
backend terminated and gone, sessions idle in transaction terminated (only those of the
preview), and the bot's own backends never touched, even when they match the filter."""

from __future__ import annotations

import asyncio

import psycopg
import psycopg.conninfo
import pytest

from bot.catalog import PostgresTarget
from bot.targets.postgres import PostgresClient
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import declare
from tests.harness import BotHarness
from tests.remediation_helpers import (
    APPROVER,
    click,
    final_update,
    finish,
    remediation_policy,
    request,
    request_id,
    thread_replies,
)
from tests.waiting import poll_sql

pytestmark = pytest.mark.postgres

SERVICES = {"shop": {"postgres": {"dsn_env": "SHOP_DB_URL", "timeout": 10}}}


def _pids(dsn: str, where: str) -> set[int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(f"SELECT pid FROM pg_stat_activity WHERE {where}").fetchall()
    return {row[0] for row in rows}


@pytest.fixture
async def shop(
    make_harness: HarnessFactory, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> BotHarness:
    """The bot, its store on the same PostgreSQL database as the service it remediates."""
    monkeypatch.setenv("SHOP_DB_URL", postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, state text)")
        conn.execute("INSERT INTO orders VALUES (1, 'new'), (2, 'new')")
        # The application's own role: the bot leaves superuser sessions alone.
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'orders'").fetchone():
            conn.execute("CREATE ROLE orders LOGIN")
        conn.execute("GRANT ALL ON orders TO orders")
    return await make_harness(
        "postgres", database_url=postgres_url, policy=remediation_policy(SERVICES)
    )


async def test_a_real_blocking_backend_is_terminated_after_approval(
    shop: BotHarness, postgres_url: str
) -> None:
    holder = psycopg.connect(postgres_url, application_name="billing-worker", user="orders")
    waiter = psycopg.connect(
        postgres_url, autocommit=True, application_name="checkout-api", user="orders"
    )
    try:
        holder.execute("UPDATE orders SET state = 'paid' WHERE id = 1")  # lock held, txn open
        holder_pid, waiter_pid = holder.info.backend_pid, waiter.info.backend_pid
        blocked = asyncio.create_task(
            asyncio.to_thread(waiter.execute, "UPDATE orders SET state = 'shipped' WHERE id = 1")
        )
        await asyncio.to_thread(
            poll_sql,
            postgres_url,
            "SELECT 1 WHERE %s = ANY(pg_blocking_pids(%s))",
            (holder_pid, waiter_pid),
        )
        answer, message = await request(
            shop, f"postgres.terminate_backend shop {holder_pid} terminate=yes"
        )
        assert message is not None, answer
        text = str(message["blocks"])
        assert f"backend {holder_pid} (app=billing-worker" in text
        assert f"it blocks pids {waiter_pid}" in text
        assert holder_pid in _pids(postgres_url, "true")  # the dry run changed nothing

        assert "Running" in await click(shop, message, user=APPROVER)
        await finish(shop)
        await blocked  # the waiter got its lock: the blocker is gone
    finally:
        holder.close()
        waiter.close()
    assert holder_pid not in _pids(postgres_url, "true")
    [outcome] = thread_replies(shop, message)
    assert f"gone: pids {holder_pid}" in outcome and "terminated it" in outcome


async def test_idle_in_transaction_sessions_of_the_preview_only(
    shop: BotHarness, postgres_url: str
) -> None:
    sessions = [
        psycopg.connect(postgres_url, application_name="orders-api", user="orders")
        for _ in range(3)
    ]
    late = psycopg.connect(postgres_url, application_name="orders-api", user="orders")
    try:
        for session in sessions:
            session.execute("SELECT 1")  # opens a transaction, then idles in it
        pids = [s.info.backend_pid for s in sessions]
        await asyncio.to_thread(
            poll_sql,
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE application_name = 'orders-api'"
            " AND state = 'idle in transaction' AND now() - state_change > interval '1.2 s'"
            " HAVING count(*) = 3",
        )
        _, message = await request(shop, "postgres.terminate_idle_in_transaction shop older_than=1")
        assert message is not None
        text = str(message["blocks"])
        assert "terminate 3 sessions idle in transaction for more than 1 s" in text
        assert f"pids {', '.join(map(str, sorted(pids)))}" in text
        assert "app=orders-api, user=" in text

        # Before the approval: one session commits, a new one starts idling in a transaction.
        sessions[0].commit()
        late.execute("SELECT 1")
        late_pid = late.info.backend_pid
        await asyncio.to_thread(
            poll_sql,
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND now() - state_change > '1.2 s'",
            (late_pid,),
        )
        await click(shop, message, user=APPROVER)
        await finish(shop)
        alive = _pids(postgres_url, "true")
        assert pids[0] in alive and late_pid in alive  # not in the preview any more / never
        assert pids[1] not in alive and pids[2] not in alive
        [outcome] = thread_replies(shop, message)
        assert f"left alone: pids {pids[0]}" in outcome
    finally:
        for session in [*sessions, late]:
            session.close()


async def test_the_bots_own_backends_are_never_terminated(
    shop: BotHarness, postgres_url: str
) -> None:
    idle = psycopg.connect(
        postgres_url, autocommit=True, application_name="reporting", user="orders"
    )
    # A session the bot itself opened (its diagnostics client), idle: it matches the filter.
    own = PostgresClient(PostgresTarget(dsn_env="SHOP_DB_URL")).session()
    session = await own.__aenter__()
    try:
        own_pid = (await session.fetchone("SELECT pg_backend_pid() AS pid"))["pid"]  # type: ignore[index]
        for pid in (idle.info.backend_pid, own_pid):
            await asyncio.to_thread(
                poll_sql,
                postgres_url,
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'idle'"
                " AND now() - state_change > '1.2 s'",
                (pid,),
            )
        bot_pids = _pids(postgres_url, "application_name LIKE 'chatops-bot%%'")
        assert own_pid in bot_pids

        answer, refused = await request(shop, f"postgres.terminate_backend shop {own_pid}")
        assert refused is None and "the bot's own" in answer

        _, message = await request(shop, "postgres.terminate_idle shop older_than=1")
        assert message is not None
        change = str(message["blocks"][1]["text"]["text"])
        assert f"pids {idle.info.backend_pid} (app=reporting" in change, change
        assert f"{own_pid} (the bot's own)" in change, change
        await click(shop, message, user=APPROVER)
        await finish(shop)
        alive = _pids(postgres_url, "true")
        assert own_pid in alive and idle.info.backend_pid not in alive
        assert await session.fetchone("SELECT 1 AS ok") == {"ok": 1}
    finally:
        await own.__aexit__(None, None, None)
        idle.close()


async def test_a_sessions_application_name_never_pings_the_channel(
    shop: BotHarness, postgres_url: str
) -> None:
    # Any client names its own session: `<!channel>` reached the request's notification
    # text unescaped (the blocks were escaped), and Slack reads that text as markup.
    session = psycopg.connect(postgres_url, application_name="<!channel> pay", user="orders")
    try:
        session.execute("SELECT 1")
        pid = session.info.backend_pid
        await asyncio.to_thread(
            poll_sql,
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND now() - state_change > '1.2 s'",
            (pid,),
        )
        _, message = await request(shop, "postgres.terminate_idle_in_transaction shop older_than=1")
        assert message is not None
        posts = [c.params for c in shop.double.calls_to("chat.postMessage") if c.ok]
        assert posts and all("<!channel>" not in str(p) for p in posts)
        assert "app=&lt;!channel&gt; pay" in str(message["text"])
        # One session is one session ("terminate 1 sessions" read as a typo in a hurry).
        assert "terminate 1 session idle in transaction for more than 1 s" in message["text"]
    finally:
        session.close()


async def test_sessions_ended_before_a_refusal_are_reported_as_ended(
    make_harness: HarnessFactory, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bot's role may end one role's sessions and not another's: PostgreSQL refused the
    # second pg_terminate_backend after the first had ended a session. The request said
    # "Failed: permission denied" and nothing of the session it had ended.
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        for role in ("remediator", "orders", "billing"):
            if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute("GRANT pg_read_all_stats TO remediator")
        sessions = [
            psycopg.connect(postgres_url, application_name="worker", user=role)
            for role in ("orders", "billing")
        ]
        ended, refused = sorted((s.info.backend_pid, str(s.info.user)) for s in sessions)
        mine = ended[1]  # the role whose sessions the bot may end
        admin.execute(f"GRANT {mine} TO remediator")
        try:
            for session in sessions:
                session.execute("SELECT 1")  # opens a transaction, then idles in it
            await asyncio.to_thread(
                poll_sql,
                postgres_url,
                "SELECT 1 FROM pg_stat_activity WHERE application_name = 'worker'"
                " AND state = 'idle in transaction' AND now() - state_change > '1.2 s'"
                " HAVING count(*) = 2",
            )
            as_remediator = psycopg.conninfo.make_conninfo(postgres_url, user="remediator")
            monkeypatch.setenv("SHOP_DB_URL", as_remediator)
            harness = await make_harness("sqlite", policy=remediation_policy(SERVICES))
            _, message = await request(
                harness, "postgres.terminate_idle_in_transaction shop older_than=1"
            )
            assert message is not None
            await click(harness, message, user=APPROVER)
            await finish(harness, request_id(message))
            alive = _pids(postgres_url, "application_name = 'worker'")
        finally:
            admin.execute(f"REVOKE {mine} FROM remediator")
            for session in sessions:
                session.close()
    assert alive == {refused[0]}
    [outcome] = thread_replies(harness, message)
    assert f"terminated pids {ended[0]}; then postgres: must be a member" in outcome, outcome
    assert f"not ended: pids {refused[0]}" in outcome
    assert "Failed" in str(final_update(harness, message)["blocks"])


async def test_sessions_the_bots_role_cannot_read_are_named_not_denied(
    make_harness: HarnessFactory, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A DSN whose role lacks pg_read_all_stats sees another role's sessions with no state:
    # "No backend 4121 on this database" and "No sessions idle in transaction" were false.
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        for role in ("watcher", "orders"):
            if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                admin.execute(f"CREATE ROLE {role} LOGIN")
    monkeypatch.setenv("SHOP_DB_URL", psycopg.conninfo.make_conninfo(postgres_url, user="watcher"))
    harness = await make_harness("sqlite", policy=remediation_policy(SERVICES))
    with psycopg.connect(postgres_url, application_name="leaky", user="orders") as leaky:
        leaky.execute("SELECT 1")  # opens a transaction, then sits idle
        pid = leaky.info.backend_pid
        await asyncio.to_thread(
            poll_sql,
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND now() - state_change > '1.2 s'",
            (pid,),
        )
        answer, refused = await request(harness, f"postgres.terminate_backend shop {pid}")
        assert refused is None
        assert f"Backend {pid} is another role's" in answer and "pg_read_all_stats" in answer
        answer, refused = await request(
            harness, "postgres.terminate_idle_in_transaction shop older_than=1"
        )
        assert refused is None
        assert "1 session of other roles not readable by the bot's role" in answer, answer


async def test_cancelling_a_backend_that_runs_no_query_is_refused_with_the_way_out(
    shop: BotHarness, postgres_url: str
) -> None:
    # A lock holder idle in its transaction has no query: cancelling it "Succeeded" and it
    # went on blocking everyone.
    with psycopg.connect(postgres_url, application_name="billing-worker", user="orders") as idle:
        idle.execute("UPDATE orders SET state = 'paid' WHERE id = 1")  # lock held, txn open
        pid = idle.info.backend_pid
        await asyncio.to_thread(
            poll_sql,
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'idle in transaction'",
            (pid,),
        )
        answer, refused = await request(shop, f"postgres.terminate_backend shop {pid}")
        assert refused is None
        assert f"Backend {pid} runs no query (idle in transaction)" in answer
        assert "add terminate=yes" in answer
        _, message = await request(shop, f"postgres.terminate_backend shop {pid} terminate=yes")
        assert message is not None


async def test_numbers_in_other_scripts_are_refused_not_read_as_numbers(
    shop: BotHarness, postgres_url: str
) -> None:
    # `older_than=１２` (full-width digits, as a Japanese keyboard types them) was read as
    # 12 s: `\d` and float() take any script's digits. A typed number is ASCII 0-9 only.
    with psycopg.connect(postgres_url, application_name="billing-worker", user="orders") as idle:
        idle.execute("UPDATE orders SET state = 'paid' WHERE id = 1")  # idle in transaction
        pid = idle.info.backend_pid
        for text, said in (
            (
                "postgres.terminate_idle_in_transaction shop older_than=１２",
                "older_than: invalid duration '１２': write its digits as 0-9 (an age:",
            ),
            (
                "postgres.terminate_long_queries shop older_than=١m",
                "older_than: invalid duration '١m': write its digits as 0-9",
            ),
            (
                "postgres.terminate_idle_in_transaction shop older_than=1 pids=１２３",
                "pids: give them as numbers in digits 0-9 separated by commas",
            ),
            (
                "postgres.terminate_backend shop pid=４１２１",
                "pid: '４１２１' is not a whole number in digits 0-9",
            ),
        ):
            answer, posted = await request(shop, text)
            assert posted is None, text
            assert said in answer, answer
        assert pid in _pids(postgres_url, "state = 'idle in transaction'")


async def test_a_cancelled_query_is_read_back_as_ended_not_as_a_session_still_there(
    shop: BotHarness, postgres_url: str
) -> None:
    # A cancel was read back as "none gone; still connected: pids N": true of every cancel
    # (the session stays), and silent on what was asked, whether the query stopped.
    with psycopg.connect(
        postgres_url, autocommit=True, application_name="reports", user="orders"
    ) as busy:
        pid = busy.info.backend_pid
        running = asyncio.create_task(asyncio.to_thread(busy.execute, "SELECT pg_sleep(60)"))
        await asyncio.to_thread(
            poll_sql,
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active'"
            " AND query LIKE 'SELECT pg_sleep%%'",
            (pid,),
        )
        answer, message = await request(shop, f"postgres.terminate_backend shop {pid}")
        assert message is not None, answer
        await click(shop, message, user=APPROVER)
        await finish(shop, request_id(message))
        with pytest.raises(psycopg.errors.QueryCanceled):
            await running
    [outcome] = thread_replies(shop, message)
    assert f"cancelled the query of backend {pid}" in outcome, outcome
    assert f"its query ended; backend {pid} is idle" in outcome
    assert "still connected" not in outcome and "none gone" not in outcome
    assert "Succeeded" in str(final_update(shop, message)["blocks"])


async def test_typed_pids_are_told_apart_without_claiming_they_once_matched(
    shop: BotHarness, postgres_url: str
) -> None:
    # `pids=` typed by hand: a pid that never matched was "no longer matching", and the
    # others "not named by the diagnosis", though no diagnosis named anything.
    idle = [psycopg.connect(postgres_url, application_name="orders-api", user="orders")]
    idle.append(psycopg.connect(postgres_url, application_name="orders-api", user="orders"))
    active = psycopg.connect(postgres_url, autocommit=True, user="orders")
    running = asyncio.create_task(asyncio.to_thread(active.execute, "SELECT pg_sleep(30)"))
    try:
        for session in idle:
            session.execute("SELECT 1")  # idles in its transaction
        kept, other = (s.info.backend_pid for s in idle)
        busy = active.info.backend_pid
        await asyncio.to_thread(
            poll_sql,
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE application_name = 'orders-api'"
            " AND state = 'idle in transaction' AND now() - state_change > '1.2 s'"
            " HAVING count(*) = 2",
        )
        answer, message = await request(
            shop,
            f"postgres.terminate_idle_in_transaction shop older_than=1 pids={kept},{busy}",
        )
        assert message is not None, answer
        assert f"pids {kept} (" in answer
        assert f"; named, but not matching now: pids {busy}" in answer, answer
        assert f"; not among the pids named, not touched: pids {other}" in answer
        assert "no longer" not in answer and "diagnosis" not in answer
    finally:
        for session in idle:
            session.close()
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_cancel_backend(%s)", (active.info.backend_pid,))
        with pytest.raises(psycopg.errors.QueryCanceled):
            await running
        active.close()


async def test_names_from_the_database_never_ping_from_the_incident_timeline(
    shop: BotHarness, postgres_url: str
) -> None:
    # The request's line on the war room's timeline held the preview as markup: a session
    # named `<!here>` pinged from /incident timeline and the catch-up, and a role named
    # `<@U0BOSS>` was read as a mention of that person.
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute('DROP ROLE IF EXISTS "<@U0BOSS>"')
        admin.execute('CREATE ROLE "<@U0BOSS>" LOGIN')
    incident = await declare(shop, "declare P1 Checkout slow")
    room = incident.channel_id
    assert room is not None
    session = psycopg.connect(postgres_url, application_name="<!here>", user="<@U0BOSS>")
    try:
        session.execute("SELECT 1")
        await asyncio.to_thread(
            poll_sql,
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND now() - state_change > '1.2 s'",
            (session.info.backend_pid,),
        )
        _, message = await request(
            shop, "postgres.terminate_idle_in_transaction shop older_than=1", channel=room
        )
        assert message is not None
        for command in ("timeline", "catchup"):
            await shop.command(command, channel_id=room)
            answer = str(await shop.replies())
            assert "<!here>" not in answer and "<@U0BOSS>" not in answer, answer
            assert "app=&lt;!here&gt;" in answer, answer  # the catch-up cuts the line short
            assert command != "timeline" or "user=&lt;@U0BOSS&gt;" in answer, answer
    finally:
        session.close()
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute('DROP ROLE "<@U0BOSS>"')


async def test_control_characters_from_the_database_never_reach_the_approver(
    shop: BotHarness, postgres_url: str
) -> None:
    # A role named with a right-to-left override (it turns what follows around on screen)
    # and a query with terminal colour codes went into the preview the approver reads.
    role = "ops\u202eNIAMOD"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
    incident = await declare(shop, "declare P1 Checkout slow")
    room = incident.channel_id
    assert room is not None
    session = psycopg.connect(postgres_url, user=role)
    try:
        session.execute("SELECT '\x1b[31mred\x1b[0m'")
        await asyncio.to_thread(
            poll_sql,
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND now() - state_change > '1.2 s'",
            (session.info.backend_pid,),
        )
        _, message = await request(
            shop, "postgres.terminate_idle_in_transaction shop older_than=1", channel=room
        )
        assert message is not None
        shown = str(message)
        assert "opsNIAMOD" in shown, shown  # the session is listed, without the override
        await shop.command("timeline", channel_id=room)
        shown += str(await shop.replies())
        assert "\u202e" not in shown and "\x1b" not in shown, shown
    finally:
        session.close()
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP ROLE "{role}"')


async def test_a_cancel_approved_for_one_query_never_cancels_the_next_one(
    shop: BotHarness, postgres_url: str
) -> None:
    # The approver read "cancel the query of backend N (...: the report)"; by the click the
    # report had ended and the session ran the nightly export, which the bot cancelled.
    with (
        psycopg.connect(
            postgres_url, autocommit=True, application_name="reports", user="orders"
        ) as busy,
        psycopg.connect(postgres_url, autocommit=True) as admin,
    ):
        pid = busy.info.backend_pid
        report = asyncio.create_task(asyncio.to_thread(busy.execute, "SELECT pg_sleep(60)"))
        await asyncio.to_thread(
            poll_sql,
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active'"
            " AND query LIKE 'SELECT pg_sleep%%'",
            (pid,),
        )
        answer, message = await request(shop, f"postgres.terminate_backend shop {pid}")
        assert message is not None, answer
        admin.execute("SELECT pg_cancel_backend(%s)", (pid,))  # the report ends by itself
        with pytest.raises(psycopg.errors.QueryCanceled):
            await report
        export = asyncio.create_task(
            asyncio.to_thread(busy.execute, "SELECT pg_sleep(60), 'export'")
        )
        await asyncio.to_thread(
            poll_sql,
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active'"
            " AND query LIKE '%%export%%'",
            (pid,),
        )
        await click(shop, message, user=APPROVER)
        await finish(shop, request_id(message))
        running = admin.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active'"
            " AND query LIKE '%%export%%'",
            (pid,),
        ).fetchone()
        admin.execute("SELECT pg_cancel_backend(%s)", (pid,))  # the test's own clean-up
        with pytest.raises(psycopg.errors.QueryCanceled):
            await export
    assert running is not None, "the export, never approved, was cancelled"
    [outcome] = thread_replies(shop, message)
    assert "nothing changed" in outcome, outcome
    assert f"the query of backend {pid} the preview showed has ended" in outcome, outcome
    assert "Failed" in str(final_update(shop, message)["blocks"])


async def test_the_same_pids_in_another_order_are_the_same_change_to_approve(
    shop: BotHarness, postgres_url: str
) -> None:
    # The diagnosis's button carried pids=[a, b]; typed by hand, pids=b,a was posted as a
    # second request for the same sessions, for a second approver to approve as well.
    idle = [
        psycopg.connect(postgres_url, application_name="orders-api", user="orders")
        for _ in range(2)
    ]
    try:
        for session in idle:
            session.execute("SELECT 1")  # idles in its transaction
        first, second = sorted(s.info.backend_pid for s in idle)
        await asyncio.to_thread(
            poll_sql,
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE application_name = 'orders-api'"
            " AND state = 'idle in transaction' AND now() - state_change > '1.2 s'"
            " HAVING count(*) = 2",
        )
        action = "postgres.terminate_idle_in_transaction shop older_than=1"
        answer, message = await request(shop, f"{action} pids={second},{first}")
        assert message is not None, answer
        for pids in (f"{first},{second}", f"{first},{second},{first}"):
            answer, again = await request(shop, f"{action} pids={pids}")
            assert again is None, pids
            assert f"request #{request_id(message)} asks for the same change" in answer, answer
    finally:
        for session in idle:
            session.close()
