"""A page that reaches nobody: a level whose every DM fails for good (deactivated, not in the
workspace) is told in the incident's channel in words, and the next level is paged at once,
exactly once; a level partly reached keeps its timer, and an acknowledgement stops it all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.escalation import ReminderKind
from bot.models import Severity
from bot.policy import parse_policy
from bot.reminders import ReminderStatus
from bot.slack.rich import mrkdwn
from tests.escalation_env import ALICE, BOB, MATRIX_POLICY, Env, start_env, stop_env
from tests.integration.test_escalation_service import _second_process

PEOPLE = ("U0ALICE", "U0BOB", "U0ENGLEAD", "U0SRE1", "U0SRE2", "U0TEAMLEAD", "U0VPENG")


async def _env(
    tmp_path: Path,
    url: str = "",
    *,
    policy: str = MATRIX_POLICY,
    usergroups: dict[str, list[str]] | None = None,
    **users: Any,
) -> Env:
    known: dict[str, dict[str, Any]] = {user: {} for user in PEOPLE}
    known.update(users)
    return await start_env(
        url or f"sqlite:///{tmp_path}/unreached.db",
        policy=parse_policy(policy, source="<test>"),
        users=known,
        usergroups=usergroups,
    )


def _told(env: Env) -> list[str]:
    return [c.params["text"] for c in env.posts("page could not reach")]


async def test_a_level_that_reaches_nobody_pages_the_next_now_and_once(
    tmp_path: Path, migrated_postgres_url: str
) -> None:
    env = await _env(tmp_path, migrated_postgres_url)  # U0ONCALL is not in this workspace
    other = await _second_process(env, migrated_postgres_url)
    try:
        incident = await env.declare("P2")
        # Told in words where the incident runs (the announcement's thread: P2 has no war room).
        assert _told(env) == [
            ":warning: Level 1 page could not reach <@U0ONCALL>: not in this Slack workspace"
            " (user_not_found)"
        ]
        [told] = env.posts("page could not reach")
        assert told.params.get("thread_ts")  # the announcement's thread
        assert env.dms("escalation level 2") == {"U0TEAMLEAD": 1}  # now, not in 30 minutes
        [page] = env.posts("*Escalation level 2*")
        assert "Paged now: level 1 reached nobody." in page.params["text"]
        lines = [
            mrkdwn(e.parts, e.said) for e in await env.services.incidents.timeline(incident.id)
        ]
        assert "Paged level 2: <@U0TEAMLEAD> (level 1 reached nobody)" in lines
        state = await env.services.escalation.state(incident.id)
        assert state is not None and state.level == 2
        # The timer that would have paged level 2 later pages nobody twice, in either process.
        assert (ReminderKind.PAGE, 2) not in await env.pending(incident)
        env.clock.advance(minutes=31)
        await env.services.reminders.fire_due()
        await other.fire_due()
        await env.deliver()
        assert env.dms("escalation level 2") == {"U0TEAMLEAD": 1}
        assert len(env.posts("*Escalation level 2*")) == 1
        assert len(_told(env)) == 1
    finally:
        await other.store.close()
        await stop_env(env)


async def test_a_deactivated_person_is_named_as_such(tmp_path: Path) -> None:
    env = await _env(tmp_path, U0ONCALL={"deleted": True})
    try:
        await env.declare("P2")
        assert _told(env) == [
            ":warning: Level 1 page could not reach <@U0ONCALL>: deactivated in Slack"
            " (user_disabled)"
        ]
        assert env.dms("escalation level 2") == {"U0TEAMLEAD": 1}
    finally:
        await stop_env(env)


async def test_a_level_partly_reached_keeps_its_timer(tmp_path: Path) -> None:
    policy = MATRIX_POLICY.replace(
        "  P2:\n    - {after: 0, notify: [U0ONCALL]}",
        "  P2:\n    - {after: 0, notify: [U0ONCALL, U0BOB]}",
    )
    env = await _env(tmp_path, policy=policy)
    try:
        incident = await env.declare("P2")
        assert len(_told(env)) == 1  # U0ONCALL, told; U0BOB was reached
        assert env.dms("escalation level 1") == {"U0BOB": 1}
        assert env.dms("escalation level 2") == {}
        assert (ReminderKind.PAGE, 2) in await env.pending(incident)
        await env.step(minutes=30)
        assert env.dms("escalation level 2") == {"U0TEAMLEAD": 1}  # at its time, once
    finally:
        await stop_env(env)


async def test_an_acknowledged_incident_pages_no_further_when_a_level_reaches_nobody(
    tmp_path: Path,
) -> None:
    # Level 2, paged by hand after the acknowledgement, names someone deactivated: the channel
    # is told, but the acknowledgement stops the escalation as it stops any page.
    policy = MATRIX_POLICY.replace(
        "    - {after: 30m, notify: [U0TEAMLEAD]}\n  P3:",
        "    - {after: 30m, notify: [U0GONE]}\n    - {after: 1h, notify: [U0TEAMLEAD]}\n  P3:",
    )
    env = await _env(tmp_path, policy=policy, U0ONCALL={}, U0GONE={"deleted": True})
    try:
        incident = await env.declare("P2")
        await env.services.incidents.acknowledge(incident.id, BOB)
        await env.services.escalation.escalate(incident.id, ALICE, reason="need more hands")
        await env.deliver()
        assert _told(env) == [
            ":warning: Level 2 page could not reach <@U0GONE>: deactivated in Slack (user_disabled)"
        ]
        assert env.dms("escalation level 3") == {}
        state = await env.services.escalation.state(incident.id)
        assert state is not None and state.level == 2
        fired = await env.reminders(incident, ReminderStatus.FIRED)
        assert [r.level for r in fired if r.kind == ReminderKind.PAGE] == [1, 2]
    finally:
        await stop_env(env)


async def test_a_level_paged_by_hand_that_reaches_nobody_pages_the_next(tmp_path: Path) -> None:
    policy = MATRIX_POLICY.replace(
        "    - {after: 30m, notify: [U0TEAMLEAD]}\n  P3:",
        "    - {after: 30m, notify: [U0GONE]}\n    - {after: 1h, notify: [U0TEAMLEAD]}\n  P3:",
    )
    env = await _env(tmp_path, policy=policy, U0ONCALL={})
    try:
        incident = await env.declare("P2")
        await env.services.escalation.escalate(incident.id, ALICE, reason="need more hands")
        await env.deliver()
        assert env.dms("escalation level 3") == {"U0TEAMLEAD": 1}
        await env.step(minutes=61)  # level 3's own timer pages nobody twice
        assert env.dms("escalation level 3") == {"U0TEAMLEAD": 1}
    finally:
        await stop_env(env)


async def test_a_failure_of_the_bots_own_pages_no_level_early(tmp_path: Path) -> None:
    # A missing scope fails every DM alike: it says nothing about the person, and must not
    # page each level at once in turn.
    env = await _env(tmp_path, U0ONCALL={})
    env.double.fail("conversations.open", "missing_scope")
    try:
        incident = await env.declare("P2")
        assert _told(env) == []
        assert env.dms("escalation level 2") == {}
        assert (ReminderKind.PAGE, 2) in await env.pending(incident)
        lines = [
            mrkdwn(e.parts, e.said) for e in await env.services.incidents.timeline(incident.id)
        ]
        assert "Page DM to <@U0ONCALL> failed: missing_scope" in lines
    finally:
        await stop_env(env)


async def test_the_last_level_reaching_nobody_is_said(tmp_path: Path) -> None:
    env = await _env(tmp_path, U0TEAMLEAD={"deleted": True})  # U0ONCALL: not in the workspace
    try:
        incident = await env.declare("P2")
        assert env.dms("escalation level") == {}
        assert len(_told(env)) == 2  # level 1's person, then level 2's, paged at once
        [last] = env.posts("the last escalation level")
        assert last.params["text"] == (
            ":warning: Level 2, the last escalation level of P2, reached nobody by DM:"
            " no one else will be paged."
        )
        state = await env.services.escalation.state(incident.id)
        assert state is not None and state.level == 2
    finally:
        await stop_env(env)


async def test_a_catch_up_page_that_reaches_nobody_keeps_the_timer(tmp_path: Path) -> None:
    # Raised to P1, level 1 pages only whom P2 did not name (U0IC, deactivated): the level
    # was reached all the same (U0ONCALL), so level 2 waits for its time.
    policy = MATRIX_POLICY.replace(
        "  P1:\n    - {after: 0, notify: [U0ONCALL]}",
        "  P1:\n    - {after: 0, notify: [U0ONCALL, U0IC]}",
    )
    env = await _env(tmp_path, policy=policy, U0ONCALL={}, U0IC={"deleted": True})
    try:
        incident = await env.declare("P2")
        await env.step(minutes=5)
        await env.services.incidents.change_severity(incident.id, ALICE, severity=Severity.P1)
        await env.deliver()
        await env.step(seconds=1)
        assert [t.rsplit(": ", 1)[1] for t in _told(env)] == [
            "deactivated in Slack (user_disabled)"
        ]
        assert env.dms("escalation level 2") == {}
        assert (ReminderKind.PAGE, 2) in await env.pending(incident)
    finally:
        await stop_env(env)


async def test_a_level_of_empty_user_groups_pages_the_next_now(tmp_path: Path) -> None:
    policy = MATRIX_POLICY.replace(
        "  P2:\n    - {after: 0, notify: [U0ONCALL]}", "  P2:\n    - {after: 0, notify: [S0EMPTY]}"
    )
    env = await _env(tmp_path, policy=policy, usergroups={"S0EMPTY": []})
    try:
        incident = await env.declare("P2")
        [told] = env.posts("page reached nobody")
        assert told.params["text"] == (
            ":warning: Level 1 page reached nobody: no one could be found in <!subteam^S0EMPTY>"
        )
        assert env.dms("escalation level 2") == {"U0TEAMLEAD": 1}
        await env.step(minutes=31)
        assert env.dms("escalation level 2") == {"U0TEAMLEAD": 1}
        assert (ReminderKind.PAGE, 2) not in await env.pending(incident)
    finally:
        await stop_env(env)
