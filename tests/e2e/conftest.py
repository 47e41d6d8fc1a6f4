from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.slow_endpoint import slow_endpoint  # noqa: F401 (a fixture of the diagnosis tests)
from tests.harness import BotHarness, start_harness

HarnessFactory = Callable[..., Awaitable[BotHarness]]


@pytest.fixture
async def make_harness(
    request: pytest.FixtureRequest, tmp_path: Path, migrated_sqlite: Callable[[Path], str]
) -> AsyncIterator[HarnessFactory]:
    """Start the bot against the Slack double on `store` ("sqlite" or "postgres")."""
    started: list[BotHarness] = []

    async def make(
        store: str = "sqlite", *, database_url: str | None = None, **kwargs: Any
    ) -> BotHarness:
        if database_url is not None:
            url = database_url
        elif store == "sqlite":
            # The bot migrates as it starts: a migrated copy spares it ~40 ms.
            url = migrated_sqlite(tmp_path / f"chatops-{len(started)}.db")
        elif "postgres_url" in request.fixturenames:
            url = request.getfixturevalue("postgres_url")  # the test's own, to share
        else:
            # The bot migrates as it starts: a migrated database spares it 0.15-0.3 s.
            url = request.getfixturevalue("migrated_postgres_url")
        harness = await start_harness(url, **kwargs)
        started.append(harness)
        return harness

    yield make
    doubles = []
    for harness in reversed(started):
        await harness.bot.stop()
        await harness.sender.close()
        if harness.double not in doubles:
            doubles.append(harness.double)
    for double in doubles:
        await double.stop()
        assert double.violations == [], double.violations


@pytest.fixture
async def harness(make_harness: HarnessFactory) -> BotHarness:
    return await make_harness("sqlite")
