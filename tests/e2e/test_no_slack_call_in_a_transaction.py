"""Issue 15: approving or denying a remediation read the request FOR UPDATE, then asked Slack
who is in the approvers' user group (usergroups.users.list) inside the transaction: the row
(and on SQLite every writer) waited on Slack. Every Web API call the bot makes is recorded
here with the number of store transactions open in the calling task; none may be open."""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest

from bot.incidents.schemas import DeclareIncident
from bot.models import Actor, Severity
from bot.permissions import CachedDirectory
from bot.reports.forms import PostmortemInput
from bot.reports.models import NewActionItem
from bot.slack import report_blocks
from bot.slack.client import PacedWebClient
from bot.slack.notifier import SlackDirectory
from tests.e2e.conftest import HarnessFactory
from tests.fake_kubernetes import FakeKubernetes, deployment
from tests.harness import BotHarness
from tests.remediation_helpers import click, finish, remediation_policy, request, request_id

SERVICES = {
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
# Transactions open in this task (and the tasks it started while one was open).
OPEN = contextvars.ContextVar("open_transactions", default=0)


def count_transactions(harness: BotHarness) -> None:
    """Wrap the real store's transaction(), snapshot() and autocommit() to count the open
    ones (each holds a connection)."""
    store = harness.store

    def counted(
        begin: Callable[[], AbstractAsyncContextManager[Any]],
    ) -> Callable[[], AbstractAsyncContextManager[Any]]:
        @asynccontextmanager
        async def transaction() -> AsyncIterator[Any]:
            token = OPEN.set(OPEN.get() + 1)
            try:
                async with begin() as tx:
                    yield tx
            finally:
                OPEN.reset(token)

        return transaction

    store.transaction = counted(store.transaction)
    store.snapshot = counted(store.snapshot)
    store.autocommit = counted(store.autocommit)


@pytest.fixture
def slack_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(Web API method, transactions open in the caller) for every call of every bot client."""
    calls: list[tuple[str, int]] = []
    original = PacedWebClient.api_call

    async def api_call(self: PacedWebClient, api_method: str, **kwargs: Any) -> Any:
        calls.append((api_method, OPEN.get()))
        return await original(self, api_method, **kwargs)

    monkeypatch.setattr(PacedWebClient, "api_call", api_call)
    return calls


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_who_may_approve_or_deny_is_asked_of_slack_outside_any_transaction(
    make_harness: HarnessFactory,
    fake_kubernetes: FakeKubernetes,
    slack_calls: list[tuple[str, int]],
    store: str,
) -> None:
    fake_kubernetes.state.add(deployment("checkout", namespace="shop", replicas=3))
    harness = await make_harness(
        store, policy=remediation_policy(SERVICES, approvers=["S0SRE"], high_risk_approvals=1)
    )
    harness.double.add_usergroup("S0SRE", ["U0SRE1", "U0SRE2"])
    count_transactions(harness)

    _, denied = await request(harness, "kubernetes.scale checkout replicas=4")
    _, approved = await request(harness, "kubernetes.scale checkout replicas=5")
    assert denied is not None and approved is not None
    # The first decision misses the directory's cache: the look-up goes to Slack.
    assert "Denied" in await click(harness, denied, user="U0SRE1", verb="deny")
    assert "not an approver" in await click(harness, approved, user="U0EVE")
    assert "Running" in await click(harness, approved, user="U0SRE2")
    await finish(harness, request_id(denied), request_id(approved))

    assert ("usergroups.users.list", 0) in slack_calls
    in_transaction = [(method, n) for method, n in slack_calls if n]
    assert in_transaction == [], in_transaction


async def test_whether_a_closer_is_a_responder_is_asked_of_slack_outside_any_transaction(
    make_harness: HarnessFactory, slack_calls: list[tuple[str, int]]
) -> None:
    # reports/service.py asked the same question inside its transaction, after the dedup claim.
    harness = await make_harness(
        "sqlite", policy=remediation_policy(SERVICES, responders=["S0SRE"])
    )
    harness.double.add_usergroup("S0SRE", ["U0SRE1"])
    incident = await harness.services.incidents.declare(
        DeclareIncident(severity=Severity.P3, title="Queue backlog"), Actor("U0SRE1")
    )
    due = harness.services.clock.now() + timedelta(days=5)
    _, (item,) = await harness.services.postmortems.save_postmortem(
        incident.id,
        Actor("U0SRE1"),
        PostmortemInput(action_items=[NewActionItem("Add index check", "U0BOB", due)]),
    )
    # A cold cache, as the bot has after a restart or once its 5 minutes have passed.
    harness.services.permissions.directory = CachedDirectory(SlackDirectory(harness.bot.client))
    count_transactions(harness)
    clicked = await harness.click(
        report_blocks.CLOSE_ITEM_ACTION, value=str(item.id), user_id="U0SRE1"
    )
    assert clicked.status == 200
    await harness.double.wait_for("chat.postEphemeral")
    _, (closed,) = await harness.services.postmortems.action_items(incident.id)
    assert closed.closed_by == "U0SRE1"
    assert ("usergroups.users.list", 0) in slack_calls
    in_transaction = [(method, n) for method, n in slack_calls if n]
    assert in_transaction == [], in_transaction
