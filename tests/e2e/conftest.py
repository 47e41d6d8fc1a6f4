from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.harness import BotHarness, start_harness

HarnessFactory = Callable[..., Awaitable[BotHarness]]


@pytest.fixture
async def make_harness(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[HarnessFactory]:
    """Start the bot against the Slack double on `store` ("sqlite" or "postgres")."""
    started: list[BotHarness] = []

    async def make(store: str = "sqlite", **kwargs: Any) -> BotHarness:
        if store == "sqlite":
            url = f"sqlite:///{tmp_path}/chatops-{len(started)}.db"
        else:
            url = request.getfixturevalue("postgres_url")
        harness = await start_harness(url, **kwargs)
        started.append(harness)
        return harness

    yield make
    for harness in started:
        await harness.stop()
        assert harness.double.violations == [], harness.double.violations


@pytest.fixture
async def harness(make_harness: HarnessFactory) -> BotHarness:
    return await make_harness("sqlite")
