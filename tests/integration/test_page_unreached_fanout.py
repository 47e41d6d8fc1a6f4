"""A level naming user groups or a paging service that reaches nobody pages the next level at
once, as a level of people does. The bug: a level whose only group held two deactivated
people waited its whole timer (30 minutes here) while the channel was told each was not
reached; a level naming PagerDuty with a refused routing key waited the same."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.escalation import ReminderKind
from bot.policy import parse_policy
from bot.slack.rich import mrkdwn
from tests.escalation_env import ALICE, BOB, MATRIX_POLICY, Env, start_env, stop_env
from tests.integration.test_escalation_service import _second_process
from tests.paging_doubles import Answer, OpsgenieDouble, PagerDutyDouble

PEOPLE = ("U0ALICE", "U0BOB", "U0ONCALL", "U0TEAMLEAD", "U0SRE1", "U0SRE2", "U0ENGLEAD")
GONE = {"U0GONE1": {"deleted": True}, "U0GONE2": {"deleted": True}}
ROUTING_KEY = "R0UTINGKEY0123456789abcdef012345"  # 32 characters, as PagerDuty's are
OG_KEY = "0f1e2d3c-og-api-key-4b5a69788796"


def _level_one(notify: str) -> str:
    """The matrix policy with P2's first level naming `notify` (level 2 after 30 minutes)."""
    level = f"  P2:\n    - {{after: 0, notify: {notify}}}"
    return MATRIX_POLICY.replace("  P2:\n    - {after: 0, notify: [U0ONCALL]}", level)


async def _env(
    tmp_path: Path,
    policy: str,
    *,
    url: str = "",
    usergroups: dict[str, list[str]] | None = None,
    env: dict[str, str] | None = None,
    **users: Any,
) -> Env:
    known: dict[str, dict[str, Any]] = {user: {} for user in PEOPLE}
    known.update(GONE)
    known.update(users)
    return await start_env(
        url or f"sqlite:///{tmp_path}/fanout.db",
        policy=parse_policy(policy, source="<test>"),
        users=known,
        usergroups=usergroups if usergroups is not None else {},
        env=env or {},
    )


def _told(env: Env) -> list[str]:
    return [str(c.params["text"]) for c in env.posts("page could not reach")]


async def _lines(env: Env, incident_id: str) -> list[str]:
    return [mrkdwn(e.parts, e.said) for e in await env.services.incidents.timeline(incident_id)]


async def test_a_group_of_deactivated_people_pages_the_next_level_now_and_once(
    tmp_path: Path, migrated_postgres_url: str
) -> None:
    policy = _level_one("[S0GONE]")
    env = await _env(
        tmp_path, policy, url=migrated_postgres_url, usergroups={"S0GONE": ["U0GONE1", "U0GONE2"]}
    )
    other = await _second_process(env, migrated_postgres_url)
    try:
        incident = await env.declare("P2")
        assert sorted(_told(env)) == [
            f":warning: Level 1 page could not reach <@{who}>: deactivated in Slack (user_disabled)"
            for who in ("U0GONE1", "U0GONE2")
        ]
        assert env.dms("escalation level 2") == {"U0TEAMLEAD": 1}  # now, not in 30 minutes
        [page] = env.posts("*Escalation level 2*")
        assert "Paged now: level 1 reached nobody." in page.params["text"]
        assert (ReminderKind.PAGE, 2) not in await env.pending(incident)
        # Level 2's timer pages nobody twice, in either process.
        env.clock.advance(minutes=31)
        await env.services.reminders.fire_due()
        await other.fire_due()
        await env.deliver()
        assert env.dms("escalation level 2") == {"U0TEAMLEAD": 1}
        assert len(env.posts("*Escalation level 2*")) == 1
    finally:
        await other.store.close()
        await stop_env(env)


async def test_people_and_groups_all_refused_page_the_next_level_counting_each_once(
    tmp_path: Path,
) -> None:
    # U0GONE1 is in both groups and named too: one DM, one line, and still "every one".
    policy = _level_one("[U0ONCALL, U0GONE1, S0A, S0B]")
    groups = {"S0A": ["U0GONE1", "U0GONE2"], "S0B": ["U0GONE1"]}
    env = await _env(tmp_path, policy, usergroups=groups, U0ONCALL={"deleted": True})
    try:
        await env.declare("P2")
        assert len(env.double.calls_to("conversations.open")) == 3 + 1  # + level 2's person
        assert sorted(t.split("<@")[1].split(">")[0] for t in _told(env)) == [
            "U0GONE1",
            "U0GONE2",
            "U0ONCALL",
        ]
        assert env.dms("escalation level 2") == {"U0TEAMLEAD": 1}
    finally:
        await stop_env(env)


async def test_a_group_with_someone_reached_keeps_the_timer(tmp_path: Path) -> None:
    policy = _level_one("[U0GONE1, S0SRE]")
    env = await _env(tmp_path, policy, usergroups={"S0SRE": ["U0GONE2", "U0SRE1"]})
    try:
        incident = await env.declare("P2")
        assert len(_told(env)) == 2
        assert env.dms("escalation level 1") == {"U0SRE1": 1}
        assert env.dms("escalation level 2") == {}
        assert (ReminderKind.PAGE, 2) in await env.pending(incident)
        await env.step(minutes=30)
        assert env.dms("escalation level 2") == {"U0TEAMLEAD": 1}  # at its time, once
    finally:
        await stop_env(env)


async def test_a_group_the_bot_may_not_read_pages_no_level_early(tmp_path: Path) -> None:
    # A missing scope says nothing about who is in the group: the level keeps its timer.
    policy = _level_one("[U0GONE1, S0SRE]")
    env = await _env(tmp_path, policy, usergroups={"S0SRE": ["U0SRE1"]})
    env.double.fail("usergroups.users.list", "missing_scope")
    try:
        incident = await env.declare("P2")
        assert len(_told(env)) == 1  # U0GONE1, told
        assert env.dms("escalation level 2") == {}
        assert (ReminderKind.PAGE, 2) in await env.pending(incident)
        assert "Page could not read <!subteam^S0SRE>: missing_scope" in await _lines(
            env, incident.id
        )
    finally:
        await stop_env(env)


async def test_only_groups_the_bot_may_not_read_page_no_level_early(tmp_path: Path) -> None:
    # Before, "no one could be found" was said of them and level 2 paged at once.
    env = await _env(tmp_path, _level_one("[S0SRE]"), usergroups={"S0SRE": ["U0SRE1"]})
    env.double.fail("usergroups.users.list", "missing_scope")
    try:
        incident = await env.declare("P2")
        assert env.posts("page reached nobody") == []
        assert env.dms("escalation level 2") == {}
        assert (ReminderKind.PAGE, 2) in await env.pending(incident)
    finally:
        await stop_env(env)


async def test_a_group_slack_failed_to_list_is_waited_for(tmp_path: Path) -> None:
    # The person named is refused while the group is still to be read: not the whole level.
    policy = _level_one("[U0GONE1, S0SRE]")
    env = await _env(tmp_path, policy, usergroups={"S0SRE": ["U0GONE2"]})
    env.double.fail("usergroups.users.list", "internal_error")
    try:
        incident = await env.declare("P2")
        assert len(_told(env)) == 1
        assert env.dms("escalation level 2") == {}
        assert (ReminderKind.PAGE, 2) in await env.pending(incident)
        await env.step(seconds=5)  # the fan-out, tried again, reads the group
        assert len(_told(env)) == 2
        assert env.dms("escalation level 2") == {"U0TEAMLEAD": 1}
    finally:
        await stop_env(env)


@pytest.fixture
async def pagerduty() -> AsyncIterator[PagerDutyDouble]:
    double = PagerDutyDouble(routing_key=ROUTING_KEY, api_key="pd-rest-key")
    await double.start()
    yield double
    await double.stop()


def _with_pagerduty(policy: str, pd: PagerDutyDouble) -> str:
    return policy + (
        "paging:\n  pagerduty:\n    routing_key_env: PD_KEY\n    events_url: " + pd.url + "\n"
    )


_WRONG_KEY = {"PD_KEY": "W" * 32}
_REFUSED = (
    ":warning: Level 1 page could not reach PagerDuty: it refused the page (http_400);"
    " check the `paging:` settings"
)


async def test_a_refused_routing_key_on_a_level_of_pagerduty_pages_the_next_now(
    tmp_path: Path, pagerduty: PagerDutyDouble
) -> None:
    policy = _with_pagerduty(_level_one("[pagerduty]"), pagerduty)
    env = await _env(tmp_path, policy, env=_WRONG_KEY)
    try:
        incident = await env.declare("P2")
        assert [s for s, _ in pagerduty.refused] == [400]
        assert pagerduty.events == []
        assert _told(env) == [_REFUSED]  # once, in words, and not twice in other words
        assert env.posts("refused to page") == []
        assert env.dms("escalation level 2") == {"U0TEAMLEAD": 1}
        assert (ReminderKind.PAGE, 2) not in await env.pending(incident)
        assert "Paged level 2: <@U0TEAMLEAD> (level 1 reached nobody)" in await _lines(
            env, incident.id
        )
    finally:
        pagerduty.violations.clear()  # the refusal asked for
        await stop_env(env)


async def test_a_level_of_a_group_and_pagerduty_waits_for_both(
    tmp_path: Path, pagerduty: PagerDutyDouble
) -> None:
    policy = _with_pagerduty(_level_one("[S0GONE, pagerduty]"), pagerduty)
    env = await _env(tmp_path, policy, env=_WRONG_KEY, usergroups={"S0GONE": ["U0GONE1"]})
    try:
        incident = await env.declare("P2")
        assert sorted(_told(env)) == [
            ":warning: Level 1 page could not reach <@U0GONE1>: deactivated in Slack"
            " (user_disabled)",
            _REFUSED,
        ]
        assert env.dms("escalation level 2") == {"U0TEAMLEAD": 1}
        assert (ReminderKind.PAGE, 2) not in await env.pending(incident)
    finally:
        pagerduty.violations.clear()
        await stop_env(env)


async def test_a_refused_pagerduty_beside_someone_reached_keeps_the_timer(
    tmp_path: Path, pagerduty: PagerDutyDouble
) -> None:
    policy = _with_pagerduty(_level_one("[U0ONCALL, pagerduty]"), pagerduty)
    env = await _env(tmp_path, policy, env=_WRONG_KEY)
    try:
        incident = await env.declare("P2")
        assert _told(env) == [_REFUSED]
        assert env.dms("escalation level 1") == {"U0ONCALL": 1}
        assert env.dms("escalation level 2") == {}
        assert (ReminderKind.PAGE, 2) in await env.pending(incident)
    finally:
        pagerduty.violations.clear()
        await stop_env(env)


async def test_pagerduty_down_is_retried_and_pages_no_level_early(
    tmp_path: Path, pagerduty: PagerDutyDouble
) -> None:
    # A 5xx may have paged someone, and is retried: the level keeps its timer.
    policy = _with_pagerduty(_level_one("[U0GONE1, pagerduty]"), pagerduty)
    env = await _env(tmp_path, policy, env={"PD_KEY": ROUTING_KEY})
    pagerduty.fail_next(Answer(503, times=2))
    try:
        incident = await env.declare("P2")
        assert len(_told(env)) == 1  # U0GONE1
        assert env.dms("escalation level 2") == {}
        await env.step(seconds=10)
        await env.step(seconds=10)
        assert pagerduty.actions() == ["trigger"]  # paged on a retry, once
        assert env.dms("escalation level 2") == {}
        assert (ReminderKind.PAGE, 2) in await env.pending(incident)
    finally:
        await stop_env(env)


async def test_an_acknowledgement_stops_a_refused_pagerduty_paging_further(
    tmp_path: Path, pagerduty: PagerDutyDouble
) -> None:
    # Level 2, paged by hand after the acknowledgement, names PagerDuty with a refused key:
    # told, but the acknowledgement stops the escalation as it stops any page.
    policy = _with_pagerduty(
        MATRIX_POLICY.replace(
            "    - {after: 30m, notify: [U0TEAMLEAD]}\n  P3:",
            "    - {after: 30m, notify: [pagerduty]}\n    - {after: 1h, notify: [U0TEAMLEAD]}"
            "\n  P3:",
        ),
        pagerduty,
    )
    env = await _env(tmp_path, policy, env=_WRONG_KEY)
    try:
        incident = await env.declare("P2")
        await env.services.incidents.acknowledge(incident.id, BOB)
        await env.services.escalation.escalate(incident.id, ALICE, reason="need more hands")
        await env.deliver()
        assert _told(env) == [_REFUSED.replace("Level 1", "Level 2")]
        assert env.dms("escalation level 3") == {}
        state = await env.services.escalation.state(incident.id)
        assert state is not None and state.level == 2
    finally:
        pagerduty.violations.clear()
        await stop_env(env)


async def test_a_refused_opsgenie_key_counts_as_unreached_too(tmp_path: Path) -> None:
    og = OpsgenieDouble(api_key=OG_KEY)
    await og.start()
    policy = _level_one("[U0GONE1, opsgenie]") + (
        f"paging:\n  opsgenie:\n    api_key_env: OG_KEY\n    api_url: {og.url}\n"
    )
    env = await _env(tmp_path, policy, env={"OG_KEY": "not-the-key"})
    try:
        await env.declare("P2")
        [refused] = [t for t in _told(env) if "Opsgenie" in t]
        assert refused.startswith(":warning: Level 1 page could not reach Opsgenie: it refused")
        assert env.dms("escalation level 2") == {"U0TEAMLEAD": 1}
    finally:
        await stop_env(env)
        await og.stop()


def _refusals(env: Env) -> list[str]:
    """Whatever the channel was told of PagerDuty refusing a page, in either wording."""
    return [
        text
        for text in (str(c.params["text"]) for c in env.posts("PagerDuty"))
        if "refused to page" in text or "could not reach PagerDuty" in text
    ]


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_a_reopening_refused_by_a_wrong_key_is_told_once(
    tmp_path: Path, pagerduty: PagerDutyDouble, request: pytest.FixtureRequest, store: str
) -> None:
    """PagerDuty is P2's second level. Reopened, its own trigger (PagerDuty was paged
    before) met the wrong key and was told; half an hour later the new escalation's level 2
    met it again and the channel was told a second time, in other words, for one reopening.
    The level's refusal still counts as reaching nobody: level 3 is paged at once."""
    policy = _with_pagerduty(
        MATRIX_POLICY.replace(
            "    - {after: 30m, notify: [U0TEAMLEAD]}\n  P3:",
            "    - {after: 30m, notify: [pagerduty]}\n    - {after: 1h, notify: [U0TEAMLEAD]}"
            "\n  P3:",
        ),
        pagerduty,
    )
    url = request.getfixturevalue("migrated_postgres_url") if store == "postgres" else ""
    env = await _env(tmp_path, policy, url=url, env=_WRONG_KEY)
    try:
        incident = await env.declare("P2")
        await env.step(minutes=31)
        assert _refusals(env) == [_REFUSED.replace("Level 1", "Level 2")]
        await env.services.incidents.resolve(incident.id, ALICE, summary="rolled back")
        await env.deliver()
        await env.services.incidents.reopen(incident.id, ALICE, reason="errors are back")
        await env.deliver()
        assert _refusals(env)[1:] == [
            ":warning: PagerDuty refused to page (http 400); check the `paging:` settings."
            " The Slack pages stand"
        ]
        await env.step(minutes=31)  # the new escalation's level 2: PagerDuty again
        assert [s for s, _ in pagerduty.refused] == [400] * 4  # page, resolve, 2 pages
        assert len(_refusals(env)) == 2, _refusals(env)
        # On the timeline all the same, and counted: level 3 paged at once, twice in all.
        lines = await _lines(env, incident.id)
        assert sum("Level 2 page could not reach PagerDuty" in line for line in lines) == 2
        assert env.dms("escalation level 3") == {"U0TEAMLEAD": 2}
    finally:
        pagerduty.violations.clear()
        await stop_env(env)
