"""`chatops-bot diagnose` and Slack share one run per service and checks (through the bot's
REDIS_URL): the command line ran beside a Slack-started run of the same checks, hitting an
overloaded system twice. Either side asking while the other runs is told who runs it and where
its result goes, and starts nothing; the run ended, the service is free."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from bot.cli import DIAGNOSE_RUNNING
from bot.policy import default_policy_text
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import policy_with
from tests.e2e.slow_endpoint import SlowEndpoint
from tests.harness import BotHarness
from tests.waiting import until

pytestmark = [pytest.mark.redis]

ROLES = {"responders": ["U0ALICE", "U0BOB"]}


def _services(endpoint: SlowEndpoint) -> dict[str, object]:
    return {"web": {"http": [{"url": endpoint.url, "timeout": 30}]}}


async def _harness(make_harness: HarnessFactory, endpoint: SlowEndpoint, redis: str) -> BotHarness:
    policy = policy_with(services=_services(endpoint), roles=ROLES)
    return await make_harness("sqlite", policy=policy, redis_url=redis)


async def _cli(
    tmp_path: Path, endpoint: SlowEndpoint, redis_url: str, *args: str
) -> asyncio.subprocess.Process:
    """`chatops-bot diagnose ...` in a terminal of its own, with the bot's REDIS_URL."""
    data = yaml.safe_load(default_policy_text())
    data["services"] = _services(endpoint)
    policy = tmp_path / "chatops.yml"
    policy.write_text(yaml.safe_dump(data))
    beside_python = Path(sys.executable).parent / "chatops-bot"
    entry = str(beside_python) if beside_python.exists() else shutil.which("chatops-bot")
    assert entry, "the chatops-bot entry point is not installed (pip install -e .)"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
        "CHATOPS_POLICY": str(policy),
        "REDIS_URL": redis_url,
    }
    return await asyncio.create_subprocess_exec(
        entry,
        "diagnose",
        *args,
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _finished(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_command_line_is_refused_while_slack_runs_the_same_diagnosis(
    make_harness: HarnessFactory, slow_endpoint: SlowEndpoint, redis_url: str, tmp_path: Path
) -> None:
    harness = await _harness(make_harness, slow_endpoint, redis_url)
    await harness.command("web", command="/diagnose", user_id="U0ALICE", channel_id="C0OPS")
    [started] = await harness.replies()
    assert str(started["text"]).startswith("Diagnosing `web`")
    await until(lambda: len(slow_endpoint.hits) == 1, "Alice's run to reach the endpoint")

    code, out, err = await _finished(await _cli(tmp_path, slow_endpoint, redis_url, "WEB"))
    assert code == DIAGNOSE_RUNNING, (code, out, err)
    assert out == ""
    assert "A diagnosis of web is already running (started by Slack user U0ALICE, at " in err
    assert "its result will be posted in Slack, channel C0OPS. Nothing was run" in err
    assert slow_endpoint.hits == ["/health"]  # the terminal's run did not reach the system

    # Other checks are another run: `http` alone is not held up by Alice's whole run.
    slow_endpoint.gate.set()
    code, out, err = await _finished(await _cli(tmp_path, slow_endpoint, redis_url, "web", "http"))
    assert code == 0, (code, out, err)
    assert out.startswith("Diagnosis of web: OK")


async def test_slack_is_told_of_a_diagnosis_running_on_the_command_line(
    make_harness: HarnessFactory, slow_endpoint: SlowEndpoint, redis_url: str, tmp_path: Path
) -> None:
    harness = await _harness(make_harness, slow_endpoint, redis_url)
    cli = await _cli(tmp_path, slow_endpoint, redis_url, "web")
    try:
        await until(lambda: len(slow_endpoint.hits) == 1, "the terminal's run to reach it")
        await harness.command("web", command="/diagnose", user_id="U0BOB", channel_id="C0OPS")
        [told] = await harness.replies()
    finally:
        slow_endpoint.gate.set()
        code, out, err = await _finished(cli)
    assert code == 0 and out.startswith("Diagnosis of web: OK"), (code, out, err)
    text = str(told["text"])
    assert "Diagnosing" not in text
    assert "is already running (started by `" in text
    assert "` with `chatops-bot diagnose`, since" in text and "<@cli:" not in text
    assert "its result is printed on that terminal, not posted in Slack" in text
    assert slow_endpoint.hits == ["/health"]

    # The terminal's run ended and released the service: Slack runs it now.
    await harness.command("web", command="/diagnose", user_id="U0BOB", channel_id="C0OPS")
    [again] = await harness.replies()
    assert str(again["text"]).startswith("Diagnosing `web`")
    await harness.settle()
    assert slow_endpoint.hits == ["/health", "/health"]
