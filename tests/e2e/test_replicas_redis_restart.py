"""Two replicas on one database and one Redis, and Redis restarted under them: each says on
/readyz that it does not hear the other while Redis is away, then listens again, so a
withdrawal made on one is dropped by the other at once, as before the restart."""

from __future__ import annotations

import json
from collections.abc import Iterator

import aiohttp
import pytest

from tests.e2e.incident_helpers import reply
from tests.e2e.status_helpers import declare_with_services, get, status_policy
from tests.harness import BotHarness
from tests.servers import RedisServer
from tests.waiting import until

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SECRET = "password hunter2 leaked by ACME Corp"


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    """A Redis of this test's own: it is killed and restarted."""
    with RedisServer() as server:
        yield server


async def _readyz(harness: BotHarness) -> dict[str, object]:
    url = harness.app_url.removesuffix("/slack/events") + "/readyz"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        body: dict[str, object] = json.loads(await response.text())
        return body


async def test_a_withdrawal_after_a_redis_restart_reaches_every_replica_at_once(
    make_harness, postgres_url: str, redis: RedisServer
) -> None:
    replicas = [
        await make_harness(
            database_url=postgres_url,
            redis_url=redis.url,
            policy=status_policy(),
            STATUS_REFRESH_SECONDS=300,  # only a push moves a kept page within the test
        )
        for _ in range(2)
    ]
    first, second = replicas
    for replica in replicas:
        await until(replica.services.status_push.listening.is_set, "each replica listening")
    assert (await _readyz(second))["replicas"] == "ok"
    incident = await declare_with_services(first, "Card payments fail")
    room = (await first.services.incidents.get(incident.id)).channel_id or ""
    await reply(first, f"update identified {SECRET}", channel_id=room)
    await reply(first, "publish", channel_id=room)

    redis.kill()

    async def not_hearing() -> bool:
        replicas_check = (await _readyz(second)).get("replicas")
        return str(replicas_check).startswith("not hearing the other replicas")

    await until(not_hearing, "/readyz saying the replica does not hear the others")
    redis.restart()
    for replica in replicas:
        await until(replica.services.status_push.listening.is_set, "each replica back")
    assert (await _readyz(second))["replicas"] == "ok"
    assert SECRET in (await get(second, "/status.json")).text  # kept for 5 minutes

    await reply(first, "unpublish last", channel_id=room)

    async def withdrawn_everywhere() -> bool:
        return SECRET not in (await get(second, "/status.json")).text

    await until(withdrawn_everywhere, "the other replica dropping the withdrawn update")
