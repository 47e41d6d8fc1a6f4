"""Run a real diagnosis against catalog entries given as plain dicts (what a policy says)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.clock import SystemClock
from bot.diagnostics.findings import Finding, Grade, Report
from bot.diagnostics.service import DiagnosticsService
from bot.models import Actor
from bot.permissions import Permissions, StaticDirectory
from bot.policy import Policy, default_policy_text, parse_policy
from bot.store import create_store, migrate


def policy_with(services: dict[str, Any], **extra: Any) -> Policy:
    data = yaml.safe_load(default_policy_text())
    data["services"] = services
    data.update(extra)
    return parse_policy(yaml.safe_dump(data))


async def diagnose(
    tmp_path: Path, services: dict[str, Any], name: str, checks: tuple[str, ...] = ()
) -> Report:
    policy = policy_with(services)
    store = create_store(f"sqlite:///{tmp_path}/diagnose.db")
    await store.open()
    try:
        await migrate(store)
        service = DiagnosticsService(
            policy=policy,
            store=store,
            clock=SystemClock(),
            permissions=Permissions(policy, StaticDirectory()),
        )
        diagnosis = await service.diagnose(name, Actor("U0ALICE"), checks=checks)
    finally:
        await store.close()
    return diagnosis.report


def finding(report: Report, check: str) -> Finding:
    found = [f for f in report.findings if f.check == check]
    assert len(found) == 1, f"{check}: {[(f.check, f.summary) for f in report.findings]}"
    return found[0]


__all__ = ["Grade", "diagnose", "finding", "policy_with"]
