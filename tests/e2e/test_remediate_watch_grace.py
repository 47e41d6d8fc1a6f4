"""`remediation.watch_grace`: the policy's grace reaches the watch reminder that closes a run
abandoned by a dead process (due at the start plus the timeout plus the grace)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml
from pydantic import ValidationError

from bot.clock import FakeClock
from bot.policy import Policy, default_policy_text
from bot.remediation.timers import RemediationKind
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import policy_with
from tests.fake_kubernetes import FakeKubernetes, deployment
from tests.remediation_helpers import APPROVER, SECOND, click, finish, request, request_id

SERVICES = {
    "checkout": {
        "kubernetes": {"context": "test", "namespace": "shop", "deployments": ["checkout"]}
    }
}


async def test_the_policys_grace_sets_the_watch_reminders_due_time(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    fake_kubernetes.state.add(deployment("checkout", namespace="shop", replicas=3))
    policy = policy_with(
        services=SERVICES,
        roles={"approvers": [APPROVER, SECOND]},
        remediation={"timeout": 7, "watch_grace": 3},
    )
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    harness = await make_harness("sqlite", policy=policy, clock=clock)
    _, message = await request(harness, "kubernetes.scale checkout replicas=6")
    assert message is not None
    assert "Running" in await click(harness, message, user=APPROVER)
    await finish(harness, request_id(message))

    async with harness.store.transaction() as tx:
        started = await tx.fetchone(
            "SELECT started_at FROM remediation_requests WHERE id = ?", (request_id(message),)
        )
        [watch] = await tx.fetchall(
            "SELECT due_at FROM reminders WHERE kind = ?", (RemediationKind.WATCH.value,)
        )
    assert started is not None
    assert watch["due_at"] - started["started_at"] == pytest.approx(7 + 3)


@pytest.mark.parametrize("grace", [0, -1, "2h", "1bd"])
def test_a_grace_that_is_not_positive_or_over_an_hour_is_refused(grace: object) -> None:
    data = yaml.safe_load(default_policy_text())
    data["remediation"] = {"watch_grace": grace}
    with pytest.raises(ValidationError, match="watch_grace"):
        Policy.model_validate(data)
    data["remediation"] = {"watch_grace": "1h"}
    assert Policy.model_validate(data).remediation.watch_grace.seconds == 3600
