"""`/incident drill` end to end on both stores: a practice incident through the real machinery
(announcement, war room, pages by channel and DM, escalation, acknowledgement, the service's
read-only checks against a real Redis), marked DRILL everywhere, no remediation that writes,
a drill report when it ends, and kept out of statistics, the App Home and the incident list."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from bot.incidents.naming import CHANNEL_NAME_MAX
from bot.models import Incident
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import ANNOUNCE, policy_with, posts, reply
from tests.harness import BotHarness
from tests.remediation_helpers import request
from tests.waiting import until

pytestmark = pytest.mark.redis

LEVELS = {
    "P1": [{"after": 0, "notify": ["U0ONCALL"]}, {"after": "1h", "notify": ["U0LEAD"]}],
}


@pytest.fixture
def full_cache(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A Redis at 98 % of its maxmemory under noeviction: the runbook suggests a write
    (CONFIG SET maxmemory-policy allkeys-lru), which a drill must never offer."""
    monkeypatch.setenv("CACHE_URL", redis_url)
    client = redis.Redis.from_url(redis_url)
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", int(used / 0.98))
    try:
        yield redis_url
    finally:
        client.config_set("maxmemory", 0)
        client.close()


def _texts(harness: BotHarness, channel: str) -> list[str]:
    return [str(c.params.get("text")) for c in posts(harness, channel)]


def _buttons(message: dict[str, Any]) -> list[str]:
    return [
        element.get("value", "")
        for block in message.get("blocks") or []
        if block.get("type") == "actions"
        for element in block["elements"]
    ]


def _diagnosis_summaries(harness: BotHarness, channel: str) -> list[dict[str, Any]]:
    return [
        c.params
        for c in posts(harness, channel)
        if str(c.params.get("text")).startswith("Diagnosis of") and not c.params.get("thread_ts")
    ]


async def _drill(harness: BotHarness, text: str) -> Incident:
    answer = await reply(harness, text, user_id="U0ALICE")
    assert answer.startswith("[DRILL] Declared"), answer
    await harness.settle()
    page = await harness.services.incidents.list_page(open_only=False, drills=True)
    return await harness.services.incidents.get(page.incidents[0].id)


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_a_drill_runs_the_real_machinery_marked_drill_and_reports(
    make_harness: HarnessFactory, store: str, full_cache: str
) -> None:
    policy = policy_with(escalation=LEVELS, services={"cache": {"redis": {"url_env": "CACHE_URL"}}})
    harness = await make_harness(store, policy=policy)
    drill = await _drill(harness, "drill P1 cache: eviction storm at peak")
    assert drill.drill and drill.services == ("cache",)
    assert drill.title == "cache: eviction storm at peak"

    # Marked DRILL: announcement, war room name and topic, the page there and by DM.
    room = drill.channel_id
    assert room
    name = harness.double.channel(room).name
    assert name.startswith(f"drill-{drill.id.lower()}-") and len(name) <= CHANNEL_NAME_MAX
    announcement = harness.double.messages(ANNOUNCE)[0]
    assert announcement["text"].startswith("[DRILL] ")
    assert announcement["blocks"][0]["text"]["text"].startswith(f"[DRILL] {drill.id}")
    assert harness.double.topic(room).startswith("[DRILL] ")
    assert any(
        t.startswith(":rotating_light: [DRILL] *Escalation level 1*") for t in _texts(harness, room)
    )
    oncall_dm = harness.double.state.open_im("U0ONCALL")[0].id
    assert _texts(harness, oncall_dm)[0].startswith(":rotating_light: [DRILL] You are paged")

    # The service's read-only checks ran, on the timeline, their summary in the war room,
    # with no remediation that writes on offer.
    async def checked() -> bool:
        return any(
            e.kind == "diagnosed" for e in await harness.services.incidents.timeline(drill.id)
        )

    await until(checked, "the drill's checks on its timeline")
    await until(lambda: bool(_diagnosis_summaries(harness, room)), "the checks' summary posted")
    [summary] = _diagnosis_summaries(harness, room)
    assert "redis.set_maxmemory_policy" not in str(_buttons(summary))
    # The same checks outside a drill do offer it: the drill is what leaves it out.
    await harness.command("cache", command="/diagnose", channel_id="C0GENERAL")
    [started] = await harness.replies()  # said once the checks are known to run
    assert started["text"].startswith("Diagnosing `cache`")
    await until(lambda: bool(_diagnosis_summaries(harness, "C0GENERAL")), "a real diagnosis")
    [real] = _diagnosis_summaries(harness, "C0GENERAL")
    assert "redis.set_maxmemory_policy" in str(_buttons(real))

    # Asking for a remediation in the drill's room is refused, and changes nothing.
    answer, posted = await request(
        harness, "redis.set_maxmemory_policy cache allkeys-lru", user="U0BOB", channel=room
    )
    assert posted is None and f"{drill.id} is a DRILL" in answer
    assert "`/diagnose cache`" in answer  # not `<service>`, which Slack shows as a link
    async with harness.store.transaction() as tx:
        assert await tx.fetchall("SELECT id FROM remediation_requests") == []
    policy_now = redis.Redis.from_url(full_cache).config_get("maxmemory-policy")
    assert policy_now in ({"maxmemory-policy": "noeviction"}, {b"maxmemory-policy": b"noeviction"})

    # Kept apart: not an open incident, not on the App Home, listed under drills.
    assert "No open incidents." in await reply(harness, "list")
    listed = await reply(harness, "list drills")
    assert listed.startswith("Drills") and drill.id in str(harness.double.responses[-1].payload)
    home = await harness.services.home.home("U0ALICE")
    assert home.open_total == 0 and home.open_incidents == () and home.mine == ()

    # Level 2 paged by hand; the lead answers; the drill ends.
    await reply(harness, f"escalate {drill.id} practising the second level", user_id="U0ALICE")
    await harness.settle()
    lead_dm = harness.double.state.open_im("U0LEAD")[0].id
    assert _texts(harness, lead_dm)[0].startswith(":rotating_light: [DRILL] You are paged")
    await reply(harness, f"ack {drill.id}", user_id="U0LEAD")
    await reply(harness, f"resolve {drill.id} drill over", user_id="U0ALICE")
    await harness.settle()

    [report] = [
        c.params
        for c in posts(harness, room)
        if c.params["text"].startswith("[DRILL] Drill report")
    ]
    text = str(report["blocks"])
    assert "Level 1, " in text and "after the declaration: <@U0ONCALL>" in text
    assert "Level 2, " in text and "escalated by <@U0ALICE>: <@U0LEAD>" in text
    assert "*Acknowledged* by <@U0LEAD>" in text and "(level 2 answered)" in text
    assert "cache graded *CRIT*" in text and "redis.memory" in text
    timeline = await harness.services.incidents.timeline(drill.id)
    [entry] = [e for e in timeline if e.kind == "drill_report"]
    assert entry.data["report"]["answered_level"] == 2
    assert entry.data["report"]["acknowledged_by"] == "U0LEAD"
    assert [p["level"] for p in entry.data["report"]["pages"]] == [1, 2]

    # Left out of the statistics.
    stats = await harness.services.reports.stats(days=1)
    assert stats.total == 0


async def test_a_drill_scenario_naming_no_service_runs_no_checks(
    make_harness: HarnessFactory,
) -> None:
    p2_levels = {**LEVELS, "P2": [{"after": 0, "notify": ["U0ONCALL"]}]}
    harness = await make_harness("sqlite", policy=policy_with(escalation=p2_levels))
    drill = await _drill(harness, "drill P2 comms: status page outage")
    assert drill.services == () and drill.channel_id is None
    await harness.settle()
    # Its card carries its first page (no war room): marked DRILL there too.
    [card] = [c.params for c in posts(harness, ANNOUNCE) if drill.id in c.params["text"]]
    assert ":rotating_light: [DRILL] *Escalation level 1:*" in str(card["blocks"]), card
    assert await reply(harness, "drill P1 service=nosuch x", user_id="U0ALICE") == (
        "'nosuch' is not a service of the catalog. Services: none: the policy has no "
        "service catalog yet (`services:` in the policy file that CHATOPS_POLICY names; "
        "`examples/shop.yml` is one to start from). "
        "Usage: `/incident drill &lt;P0|P1|P2|P3&gt; [&lt;service&gt;:] "
        "&lt;scenario&gt;` (for example `/incident drill P1 checkout: database failover`)"
    )
    await reply(harness, f"resolve {drill.id} done", user_id="U0ALICE")
    await harness.settle()
    [report] = [
        c.params for c in posts(harness, ANNOUNCE) if c.params["text"].startswith("[DRILL] Drill")
    ]
    # Not "name a catalogued service: `/incident drill P1 checkout: …`" with no checkout.
    assert (
        "*Checks*: none ran, as it named no catalogued service (start the scenario with one and"
        " a colon: `/incident drill P2 &lt;service&gt;: …`)"
    ) in str(report["blocks"]), report
    assert "checkout" not in str(report["blocks"])
    assert "*Acknowledged*: never" in str(report["blocks"])
    # Its post-incident report says what it was too.
    _, markdown = await harness.services.reports.report_markdown(drill.id)
    assert markdown.startswith(f"# [DRILL] Post-incident report: {drill.id}")


async def test_the_drill_answer_says_whose_checks_run_or_why_none(
    make_harness: HarnessFactory,
) -> None:
    """`checkout:failover` (no space) or a misspelt service named no service: the drill ran
    no checks and said so only in its report, once it had ended."""
    services = {"checkout": {"http": [{"url": "http://127.0.0.1:9/health"}]}}
    harness = await make_harness("sqlite", policy=policy_with(services=services))
    answer = await reply(harness, "drill P2 checkout: failover", user_id="U0ALICE")
    assert answer.endswith(
        "The read-only checks of `checkout` run in a moment; their summary is posted in its"
        " channel."
    ), answer
    answer = await reply(harness, "drill P2 checkout:failover", user_id="U0ALICE")
    assert answer.endswith(
        "No catalogued service is named, so no checks run: start the scenario with one and a"
        " colon (`checkout: …`) or add `service=checkout`. Services: checkout."
    ), answer
