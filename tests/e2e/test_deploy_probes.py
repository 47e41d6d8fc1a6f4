"""The Deployment's probes against a running bot (deploy/deployment.yaml): a dependency every
replica shares going down must not take every replica out of the Service while the bot still
answers and says what is wrong (DESIGN: "Where the store or Redis is down, the bot still
answers")."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import reply

DEPLOYMENT = Path(__file__).resolve().parents[2] / "deploy" / "deployment.yaml"


def _container() -> dict[str, Any]:
    [deployment] = [
        d for d in yaml.safe_load_all(DEPLOYMENT.read_text()) if d and d["kind"] == "Deployment"
    ]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


async def test_redis_down_leaves_the_pod_ready_and_the_bot_answering(
    make_harness: HarnessFactory,
) -> None:
    """With /readyz as the readiness probe a Redis outage (503, "down": ["coordinator"])
    made every replica unready at once: the Service had no endpoint, Slack got the ingress'
    503, while each bot would have declared the incident (Redis is optional)."""
    with socket.socket() as held:  # a port nothing listens on while the test runs
        held.bind(("127.0.0.1", 0))
        harness = await make_harness(
            "sqlite", redis_url=f"redis://127.0.0.1:{held.getsockname()[1]}/0"
        )
        base = harness.app_url.removesuffix("/slack/events")
        async with aiohttp.ClientSession() as session:
            async with session.get(base + "/readyz") as response:
                assert response.status == 503  # what is wrong, for a person or a monitor
                assert "coordinator" in (await response.json())["down"]
            for probe in ("readinessProbe", "livenessProbe"):
                path = _container()[probe]["httpGet"]["path"]
                async with session.get(base + path) as response:
                    assert response.status == 200, (probe, path, await response.text())
        answer = await reply(harness, "declare P3 Search is slow")
    assert answer.startswith("Declared *INC-"), answer
