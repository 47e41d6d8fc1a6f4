"""The whole remediation loop typed by two people in the console (`scripts/demo`): Alice
requests a scale on the fake Kubernetes API server, the preview is shown, Bob presses
Approve and answers its confirm dialog, the outcome is shown and the deployment changed."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import yaml

from bot.console.app import Console, QueueLines
from bot.console.render import Style
from bot.policy import default_policy_text
from tests.fake_kubernetes import FakeKubernetes, deployment
from tests.waiting import wait_for_output


def _policy_file(tmp_path: Path) -> Path:
    data = yaml.safe_load(default_policy_text())
    data["roles"] = {**(data.get("roles") or {}), "approvers": ["U0BOB"]}
    data["services"] = {
        "checkout": {
            "kubernetes": {
                "context": "test",
                "namespace": "shop",
                "deployments": ["checkout"],
                "min_replicas": 2,
                "max_replicas": 12,
            }
        }
    }
    path = tmp_path / "chatops.yml"
    path.write_text(yaml.safe_dump(data))
    return path


async def test_two_people_request_and_approve_a_remediation_in_the_console(
    tmp_path: Path, fake_kubernetes: FakeKubernetes
) -> None:
    fake_kubernetes.state.add(deployment("checkout", namespace="shop", replicas=3))
    out, lines = io.StringIO(), QueueLines()
    console = Console(
        lines=lines,
        out=out,
        database_url=f"sqlite:///{tmp_path}/console.db",
        policy_path=_policy_file(tmp_path),
        style=Style(color=False, unicode=True),
        quiet=0.15,
    )
    await console.start()
    task = asyncio.create_task(console.run())
    try:
        await wait_for_output(out, "Type a slash command", since=0, task=task, timeout=15)
        mark = len(out.getvalue())
        lines.feed(":as U0ALICE", "/remediate kubernetes.scale checkout replicas=6")
        shown = await wait_for_output(out, "Approve", since=mark, task=task, timeout=15)
        shown = await wait_for_output(
            out, "from 3 to 6 replicas", since=mark, task=task, timeout=15
        )
        assert "scale deployment checkout in namespace shop from 3 to 6 replicas" in shown
        approve = re.findall(r"\[(\d+)\] Approve", shown)[-1]
        assert fake_kubernetes.state.deployments[("shop", "checkout")]["spec"]["replicas"] == 3

        # Alice may not approve her own request.
        mark = len(out.getvalue())
        lines.feed(approve, "y")
        await wait_for_output(
            out, "someone else must approve it", since=mark, task=task, timeout=15
        )

        mark = len(out.getvalue())
        lines.feed(":as U0BOB", approve)
        await wait_for_output(out, "Approve this change?", since=mark, task=task, timeout=15)
        lines.feed("y")
        done = await wait_for_output(
            out, "scaled checkout from 3 to 6 replicas", since=mark, task=task, timeout=15
        )
        assert "Running" in done or "Succeeded" in done
        await wait_for_output(out, "Succeeded", since=mark, task=task, timeout=15)
        assert fake_kubernetes.state.deployments[("shop", "checkout")]["spec"]["replicas"] == 6
        lines.feed(":quit")
        assert await asyncio.wait_for(task, timeout=20) == 0
    finally:
        if not task.done():
            lines.close()
            await asyncio.wait_for(task, timeout=20)
