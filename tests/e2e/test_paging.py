"""Pages that wake people: PagerDuty and Opsgenie as escalation targets, end to end.

The bot runs for real (HTTP, the outbox, the escalation engine) against the Slack double and
the PagerDuty and Opsgenie doubles (tests/paging_doubles.py), all on loopback; webhooks are
sent to the bot's HTTP server signed as the providers sign them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from bot.console.workspace import SlackDouble
from bot.escalation import ReminderKind
from bot.models import Incident
from bot.paging.http import Breaker
from bot.refs import Person
from bot.reminders import ReminderStatus
from bot.slack import blocks
from bot.slack.rich import mrkdwn
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import current, declare, policy_with, posts, reply
from tests.harness import BOT_TOKEN, BotHarness, openapi_spec
from tests.paging_doubles import Answer, OpsgenieDouble, PagerDutyDouble, PdOnCall
from tests.waiting import until

ROUTING_KEY = "R0UTINGKEY0123456789abcdef012345"  # 32 characters, as PagerDuty's are
PD_API_KEY = "pd-rest-key-u+xyzzy-0123"
PD_SECRET = "pd-webhook-secret-ChAtOpS-42"
OG_API_KEY = "0f1e2d3c-og-api-key-4b5a69788796"
OG_SECRET = "og-webhook-secret-ChAtOpS-43"
SECRETS = (ROUTING_KEY, PD_API_KEY, PD_SECRET, OG_API_KEY, OG_SECRET)


@dataclass
class Paging:
    harness: BotHarness
    pd: PagerDutyDouble
    og: OpsgenieDouble

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.harness.bot.port}{path}"

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                self.url(path), data=body, headers={"Content-Type": "application/json", **headers}
            ) as response:
                return response.status, await response.json()

    async def pagerduty_webhook(
        self, body: dict[str, Any], *, secret: str = PD_SECRET
    ) -> tuple[int, Any]:
        raw = json.dumps(body).encode()
        signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        # During a rotation PagerDuty sends several signatures; one valid one is enough.
        header = f"v1=00ff{signature[4:]},v1={signature}"
        return await self.post("/paging/pagerduty", raw, {"X-PagerDuty-Signature": header})

    async def opsgenie_webhook(
        self, body: dict[str, Any], *, secret: str = OG_SECRET
    ) -> tuple[int, Any]:
        raw = json.dumps(body).encode()
        return await self.post("/paging/opsgenie", raw, {"X-ChatOps-Webhook-Secret": secret})


def paging_policy(provider: str) -> Any:
    paging: dict[str, Any] = {}
    return paging, [
        {"after": 0, "notify": ["U0ONCALL", provider]},
        {"after": 3600, "notify": ["U0LEAD"]},
    ]


@pytest.fixture
async def paging(
    make_harness: HarnessFactory, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> AsyncIterator[Paging]:
    """`request.param` (indirect parametrisation) adds top-level policy settings; its
    `_secret_ends` (not a setting) ends every secret's variable, as a file's newline would,
    and `_store` names the store ("sqlite" unless told)."""
    settings = dict(getattr(request, "param", {}))
    ends = settings.pop("_secret_ends", "")
    store = settings.pop("_store", "sqlite")
    pd = PagerDutyDouble(routing_key=ROUTING_KEY, api_key=PD_API_KEY)
    og = OpsgenieDouble(api_key=OG_API_KEY)
    await pd.start()
    await og.start()
    jane = pd.add_user("PJANE01", "Jane Doe", "jane@example.com")
    pd.oncalls.append(PdOnCall(jane, schedule="P0SCHED"))
    og.schedules["sre_schedule"] = ["omar@example.com"]
    for name, value in (
        ("PAGERDUTY_ROUTING_KEY", ROUTING_KEY),
        ("PAGERDUTY_API_KEY", PD_API_KEY),
        ("PAGERDUTY_WEBHOOK_SECRET", PD_SECRET),
        ("OPSGENIE_API_KEY", OG_API_KEY),
        ("OPSGENIE_WEBHOOK_SECRET", OG_SECRET),
    ):
        monkeypatch.setenv(name, value + ends)
    policy = policy_with(
        paging={
            "pagerduty": {
                "routing_key_env": "PAGERDUTY_ROUTING_KEY",
                "api_key_env": "PAGERDUTY_API_KEY",
                "webhook_secret_env": "PAGERDUTY_WEBHOOK_SECRET",
                "schedule": "P0SCHED",
                "events_url": pd.url,
                "api_url": pd.url,
            },
            "opsgenie": {
                "api_key_env": "OPSGENIE_API_KEY",
                "webhook_secret_env": "OPSGENIE_WEBHOOK_SECRET",
                "team": "sre",
                "schedule": "sre_schedule",
                "api_url": og.url,
            },
        },
        **{
            "escalation": {
                # P1 pages PagerDuty, P2 Opsgenie; level 2 comes an hour later (if nobody acks).
                "P1": [
                    {"after": 0, "notify": ["U0ONCALL", "pagerduty"]},
                    {"after": 3600, "notify": ["U0LEAD"]},
                ],
                "P2": [
                    {"after": 0, "notify": ["U0ONCALL", "opsgenie"]},
                    {"after": 3600, "notify": ["U0LEAD"]},
                ],
            },
            **settings,
        },
    )
    double = SlackDouble(bot_token=BOT_TOKEN, openapi_spec=openapi_spec())
    double.add_user("U0JANE", name="jane", real_name="Jane Doe")
    double.add_user("U0OMAR", name="omar", real_name="Omar Khan")
    harness = await make_harness(store, policy=policy, double=double)
    yield Paging(harness, pd, og)
    await pd.stop()
    await og.stop()
    assert pd.violations == [], pd.violations
    assert og.violations == [], og.violations
    # No secret ever reached Slack, the timeline, the audit log or the outbox.
    seen = json.dumps([c.params for c in double.calls], default=str)
    async with harness.store.transaction() as tx:
        for table in ("timeline", "audit_log", "outbox"):
            rows = await tx.fetchall(f"SELECT * FROM {table}")
            seen += json.dumps([dict(row) for row in rows], default=str)
    for secret in SECRETS:
        assert secret not in seen


async def pending_pages(harness: BotHarness, incident: Incident) -> list[int]:
    reminders = await harness.services.escalation.reminders_for(
        incident.id, [ReminderStatus.PENDING]
    )
    return [r.level for r in reminders if r.kind == ReminderKind.PAGE]


def dm_texts(harness: BotHarness, user_id: str) -> list[str]:
    channel = harness.double.state.open_im(user_id)[0].id
    return [str(call.params.get("text")) for call in posts(harness, channel)]


async def test_pagerduty_both_ways_from_declaration_to_resolution(paging: Paging) -> None:
    harness, pd = paging.harness, paging.pd
    incident = await declare(harness, "declare P1 Checkout API returns 502")

    # Declared P1: a trigger event keyed by the incident, severity mapped, with its link.
    [trigger] = pd.events
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == incident.id
    assert trigger["payload"]["severity"] == "error"
    assert "Checkout API returns 502" in trigger["payload"]["summary"]
    assert incident.id in trigger["payload"]["summary"]
    channel = incident.channel_id
    # Its link opens the incident in Slack: the war room, or the announcement channel when
    # the page outran the war room's set-up (they do not wait for each other).
    assert channel and trigger["links"][0]["href"].endswith(
        (f"channel={channel}", "channel=C0INCIDENTS")
    )
    # The Slack page went out too, and whoever the PagerDuty schedule has on call (Jane,
    # found in Slack by e-mail) was paged with the first level.
    assert dm_texts(harness, "U0ONCALL") and dm_texts(harness, "U0JANE")
    assert "PagerDuty" in " ".join(str(c.params.get("text")) for c in posts(harness, channel))

    # Acknowledged in Slack: PagerDuty's incident is acknowledged.
    assert "acknowledged" in (await reply(harness, f"ack {incident.id}")).lower()
    await harness.settle()
    assert pd.actions(incident.id) == ["trigger", "acknowledge"]
    assert pd.incidents[incident.id].status == "acknowledged"

    # Resolved: resolved there too. Reopened: triggered again, once.
    await reply(harness, f"resolve {incident.id} rolled back the deploy")
    await harness.settle()
    assert pd.actions(incident.id) == ["trigger", "acknowledge", "resolve"]
    assert pd.incidents[incident.id].status == "resolved"
    await reply(harness, "reopen it came back", channel_id=channel)
    await harness.settle()
    assert pd.actions(incident.id) == ["trigger", "acknowledge", "resolve", "trigger"]
    assert pd.incidents[incident.id].status == "triggered"


async def test_a_signed_pagerduty_acknowledgement_stops_the_slack_escalation(
    paging: Paging,
) -> None:
    harness, pd = paging.harness, paging.pd
    incident = await declare(harness, "declare P1 Payments time out")
    assert await pending_pages(harness, incident) == [2]
    jane = pd.users["PJANE01"]

    body = pd.webhook("incident.acknowledged", incident.id, jane)
    status, answer = await paging.pagerduty_webhook(body)
    assert (status, answer["outcome"]) == (200, "acknowledged")

    acked = await current(harness, incident)
    assert acked.acknowledged_by == "U0JANE"  # the PagerDuty user, found in Slack by e-mail
    assert await pending_pages(harness, incident) == []  # level 2 will not be paged
    timeline = [e.parts for e in await harness.services.incidents.timeline(incident.id)]
    assert ("Acknowledged in PagerDuty by ", Person("U0JANE")) in timeline
    await harness.settle()
    assert pd.actions(incident.id) == ["trigger"]  # not echoed back to PagerDuty
    # PagerDuty delivers again: nothing changes twice.
    status, answer = await paging.pagerduty_webhook(body)
    assert status == 200 and answer["outcome"] != "acknowledged"
    timeline = [
        mrkdwn(e.parts, e.said) for e in await harness.services.incidents.timeline(incident.id)
    ]
    assert timeline.count("Acknowledged in PagerDuty by <@U0JANE>") == 1

    # Other events are read and ignored; resolving in Slack resolves in PagerDuty.
    status, answer = await paging.pagerduty_webhook(
        pd.webhook("incident.priority_updated", incident.id, jane)
    )
    assert status == 200 and answer["outcome"].startswith("ignored")
    await reply(harness, f"resolve {incident.id} restarted the pool")
    await harness.settle()
    assert pd.actions(incident.id) == ["trigger", "resolve"]


@pytest.mark.parametrize("paging", [{"_secret_ends": "\n"}], indirect=True)
async def test_secrets_set_with_a_trailing_newline_page_and_hear_acknowledgements(
    paging: Paging,
) -> None:
    """A Secret made from a file (`echo key > f`) ends in a newline. Read as it was, the
    routing key was refused by PagerDuty (the level's page not reached), the REST key made
    a header aiohttp refuses (no one on call), and the webhook's signature never matched
    (every acknowledgement made in PagerDuty refused with 401)."""
    harness, pd = paging.harness, paging.pd
    incident = await declare(harness, "declare P1 Payments time out")
    assert [e["dedup_key"] for e in pd.events] == [incident.id]  # paged at PagerDuty
    assert dm_texts(harness, "U0JANE")  # on call there, found through the REST API
    body = pd.webhook("incident.acknowledged", incident.id, pd.users["PJANE01"])
    status, answer = await paging.pagerduty_webhook(body)
    assert (status, answer["outcome"]) == (200, "acknowledged"), answer


async def test_a_badly_signed_webhook_gets_401_and_records_nothing(paging: Paging) -> None:
    harness, pd = paging.harness, paging.pd
    incident = await declare(harness, "declare P1 Search is down")
    async with harness.store.transaction() as tx:
        before = await tx.fetchone("SELECT COUNT(*) AS n FROM audit_log")
    body = pd.webhook("incident.acknowledged", incident.id, pd.users["PJANE01"])

    status, _ = await paging.pagerduty_webhook(body, secret="not-the-secret")
    assert status == 401
    status, _ = await paging.post("/paging/pagerduty", json.dumps(body).encode(), {})
    assert status == 401
    status, _ = await paging.opsgenie_webhook(
        paging.og.webhook("Acknowledge", incident.id, "jane@example.com"), secret="guess"
    )
    assert status == 401

    after = await current(harness, incident)
    assert after.acknowledged_at is None and after.version == incident.version
    assert await pending_pages(harness, incident) == [2]
    async with harness.store.transaction() as tx:
        assert await tx.fetchone("SELECT COUNT(*) AS n FROM audit_log") == before
    # Signed, but not a webhook: 400, nothing recorded either.
    raw = b'{"event": {"id": 1}}'
    signature = hmac.new(PD_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    status, _ = await paging.post(
        "/paging/pagerduty", raw, {"X-PagerDuty-Signature": f"v1={signature}"}
    )
    assert status == 400
    assert (await current(harness, incident)).version == incident.version


async def test_a_signature_header_that_is_not_ascii_gets_401_not_a_500(paging: Paging) -> None:
    # Anyone can send one: a header's bytes arrive as they are, and comparing a non-ASCII str
    # in constant time raised a TypeError (a 500 and a traceback for every such post).
    harness = paging.harness
    incident = await declare(harness, "declare P1 Search is down")
    body = json.dumps(
        paging.pd.webhook("incident.acknowledged", incident.id, paging.pd.users["PJANE01"])
    ).encode()
    for path, header in (
        ("/paging/pagerduty", "X-PagerDuty-Signature: v1=\u00e9"),
        ("/paging/opsgenie", "X-ChatOps-Webhook-Secret: \u00e9"),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", harness.bot.port)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
            f"{header}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        # Also a byte that is not UTF-8 at all, which the server hands on undecodable.
        writer.write(head.encode().replace(b"\xc3\xa9", b"\xc3\xa9\xff") + body)
        status_line = await reader.readline()
        writer.close()
        assert status_line.split()[1] == b"401", (path, status_line)
    assert (await current(harness, incident)).acknowledged_at is None


async def test_opsgenie_both_ways(paging: Paging) -> None:
    harness, og = paging.harness, paging.og
    first = await declare(harness, "declare P2 Reports are slow")

    # Declared P2 with opsgenie on its first level: an alert, aliased by the incident.
    [(action, alert)] = og.requests
    assert action == "create" and alert["alias"] == first.id
    assert alert["priority"] == "P3"
    assert alert["responders"] == [{"type": "team", "name": "sre"}]
    assert dm_texts(harness, "U0OMAR")  # on call in the Opsgenie schedule, found by e-mail

    # Acknowledged in Slack, then resolved: acknowledged and closed in Opsgenie.
    await reply(harness, f"ack {first.id}")
    await reply(harness, f"resolve {first.id} cache warmed")
    await harness.settle()
    assert og.actions(first.id) == ["create", "acknowledge", "close"]
    assert og.alerts[first.id].status == "closed"

    # Acknowledged in Opsgenie: recorded as Omar's, and the Slack escalation stops.
    second = await declare(harness, "declare P2 Exports fail")
    assert await pending_pages(harness, second) == [2]
    status, answer = await paging.opsgenie_webhook(
        og.webhook("Acknowledge", second.id, "omar@example.com")
    )
    assert (status, answer["outcome"]) == (200, "acknowledged")
    assert (await current(harness, second)).acknowledged_by == "U0OMAR"
    assert await pending_pages(harness, second) == []
    await reply(harness, f"resolve {second.id} retried the export")
    await harness.settle()
    assert og.actions(second.id) == ["create", "close"]


async def test_a_provider_outage_delays_the_page_and_never_doubles_it(paging: Paging) -> None:
    harness, pd = paging.harness, paging.pd
    # Retried half a second after a 500 or 503, not 2 s then 4 s (backing off is not what this
    # test proves; a 429's Retry-After still holds the page its full second).
    harness.services.dispatcher.failures.max_backoff = 0.5
    # Rate limited twice, then down (500, 503): the page must arrive once when it recovers.
    pd.fail_next(Answer(429, times=2, retry_after=1), Answer(500), Answer(503))
    incident = await declare(harness, "declare P1 Login fails")
    channel = incident.channel_id or ""

    # While PagerDuty fails, the Slack page goes out and the outage is told in the channel.
    assert dm_texts(harness, "U0ONCALL")
    await pd.wait_until(lambda: pd.seen >= 1, what="a first attempt")
    assert pd.events == []

    def told(words: str) -> bool:
        return any(words in str(c.params.get("text")) for c in posts(harness, channel))

    await pd.wait_until(lambda: len(pd.events) == 1, timeout=30, what="the page, once")
    await harness.settle()
    assert pd.actions(incident.id) == ["trigger"]
    assert pd.incidents[incident.id].triggers == 1
    assert pd.seen == 5  # two 429s, a 500, a 503, then 202
    assert [s for s, _ in pd.refused] == [429, 429, 500, 503]
    assert told("PagerDuty could not be reached")
    assert told("PagerDuty answers again")
    kinds = [e.kind for e in await harness.services.incidents.timeline(incident.id)]
    assert kinds.count("paging_failed") == 1  # told once per outage, not once per attempt
    assert kinds.count("paging_recovered") == 1


class Monotonic:
    """A monotonic clock the test moves: the breaker's cooldown without waiting it out."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_provider_that_stops_answering_is_waited_for_once_not_at_every_call(
    paging: Paging,
) -> None:
    """PagerDuty takes connections and never answers. The outbox delivers one effect at a
    time, so every call that waited out its timeout held up every Slack message of every
    incident: the trigger, each retry of it, and each page's on-call lookup in turn."""
    harness, pd = paging.harness, paging.pd
    assert harness.services.paging is not None
    clock = Monotonic()
    breaker = Breaker(monotonic=clock)
    for pager in harness.services.paging.pagers.values():
        pager.timeout, pager.breaker = 0.5, breaker  # type: ignore[attr-defined]
    harness.services.dispatcher.failures.max_backoff = 0.5  # retried in 0.5 s, not 2 s, 4 s...
    pd.hang()
    incident = await declare(harness, "declare P1 Login fails")
    second = await declare(harness, "declare P1 Search fails")
    channel = incident.channel_id or ""

    def told(incident: Incident, words: str) -> bool:
        posted = posts(harness, incident.channel_id or "")
        return any(words in str(c.params.get("text")) for c in posted)

    async def settled_with(words: str) -> bool:
        await harness.settle()
        return told(incident, words) and told(second, words)

    await until(lambda: settled_with("PagerDuty could not be reached"), "both outages told")
    # Only the calls under way when it stopped answering (the first trigger, and its on-call
    # lookup if it ran beside it) waited out their timeout; every later call (the second
    # trigger, its lookup, the retries) failed at once instead of waiting too.
    assert pd.paths[0] == "POST /v2/enqueue" and pd.paths.count("POST /v2/enqueue") == 1
    assert len(pd.paths) == 1 or (len(pd.paths) == 2 and pd.paths[1].startswith("GET /oncalls"))
    assert dm_texts(harness, "U0ONCALL") and channel

    pd.answer_again()
    clock.now += 31  # the cooldown has passed: the next call goes through
    await until(lambda: settled_with("PagerDuty answers again"), "both pages", timeout=20)
    assert pd.actions(incident.id) == ["trigger"] and pd.actions(second.id) == ["trigger"]


async def test_a_provider_that_hangs_holds_up_no_other_incidents_slack_messages(
    paging: Paging,
) -> None:
    """PagerDuty takes connections and never answers. The outbox delivered one effect at a
    time, so while its call waited (10 s, each time the breaker let one through) every other
    incident's announcement and pages by DM waited too. Provider calls and on-call look-ups
    are now delivered apart: the next incident is announced while the call still hangs."""
    harness, pd = paging.harness, paging.pd
    assert harness.services.paging is not None
    for pager in harness.services.paging.pagers.values():
        pager.timeout = 19.0  # type: ignore[attr-defined]  # longer than the test's waits
    announcements = harness.services.policy.announce_channel
    pd.hang()
    await reply(harness, "declare P1 Login fails")  # pages PagerDuty: its call hangs
    [hanging] = await harness.services.incidents.list(open_only=False)
    await pd.wait_until(lambda: "POST /v2/enqueue" in pd.paths, what="the trigger, held")

    await reply(harness, "declare P2 Exports fail")  # pages Opsgenie, which answers
    second = next(
        i for i in await harness.services.incidents.list(open_only=False) if i.id != hanging.id
    )

    def announced() -> bool:
        return any(second.id in str(c.params) for c in posts(harness, announcements))

    await until(announced, "the second incident's announcement while PagerDuty hangs")
    await until(lambda: any(second.id in t for t in dm_texts(harness, "U0OMAR")), "its DM")
    # Not after the call gave up: it is still in its first attempt, unanswered.
    async with harness.store.transaction() as tx:
        trigger = await tx.fetchone(
            "SELECT * FROM outbox WHERE kind = 'paging.trigger' AND lane = ?",
            (f"{hanging.id}/pagerduty",),
        )
    assert trigger is not None and trigger["last_error"] is None
    assert trigger["delivered_at"] is None and trigger["claimed_until"] is not None

    # PagerDuty answers the held call: paged once, nothing to tell of an outage.
    pd.answer_again()
    await harness.settle()
    assert pd.actions(hanging.id) == ["trigger"] and pd.incidents[hanging.id].triggers == 1
    assert any(hanging.id in t for t in dm_texts(harness, "U0JANE"))  # its on-call look-up
    kinds = [e.kind for e in await harness.services.incidents.timeline(hanging.id)]
    assert "paging_failed" not in kinds


async def test_a_levels_slack_people_are_paged_while_the_on_call_look_up_hangs(
    paging: Paging,
) -> None:
    """The first level names U0ONCALL and PagerDuty. Its fan-out queued U0ONCALL's DM only
    after asking PagerDuty who is on call, so while PagerDuty hung (10 s per breaker cycle)
    the level's own person was not paged either. They are now paged first."""
    harness, pd = paging.harness, paging.pd
    assert harness.services.paging is not None
    for pager in harness.services.paging.pagers.values():
        pager.timeout = 19.0  # type: ignore[attr-defined]  # longer than the test's waits
    pd.hang()
    await reply(harness, "declare P1 Login fails")
    [incident] = await harness.services.incidents.list(open_only=False)
    await pd.wait_until(
        lambda: any(p.startswith("GET /oncalls") for p in pd.paths), what="the look-up, held"
    )
    await until(
        lambda: any(incident.id in t for t in dm_texts(harness, "U0ONCALL")),
        "U0ONCALL's page DM while PagerDuty's on-call look-up hangs",
    )
    assert not dm_texts(harness, "U0JANE")  # the look-up has not answered: nobody else yet

    # PagerDuty answers: its on-call is paged too, and nobody twice.
    pd.answer_again()
    await harness.settle()
    assert len([t for t in dm_texts(harness, "U0JANE") if incident.id in t]) == 1
    assert len([t for t in dm_texts(harness, "U0ONCALL") if incident.id in t]) == 1


async def test_oncall_shows_who_the_schedules_have_on_call(paging: Paging) -> None:
    harness = paging.harness
    response = await harness.command("", command="/oncall")
    assert response.status == 200
    [answer] = await harness.replies()
    text = str(answer["text"])
    assert "On call now at PagerDuty: <@U0JANE>" in text
    assert "On call now at Opsgenie: <@U0OMAR>" in text
    assert "Level 1, at once: <@U0ONCALL> PagerDuty" in text

    # PagerDuty unreachable, nothing cached yet for it: the policy's levels stand.
    harness.services.paging.oncall._cache.clear()
    paging.pd.fail_next(Answer(503, times=3))
    await harness.command("P1", command="/oncall")
    [answer] = await harness.replies()
    assert "PagerDuty could not be reached, so the levels below stand" in str(answer["text"])


async def test_oncall_blames_slack_not_the_provider_when_slack_cannot_find_people(
    paging: Paging,
) -> None:
    """PagerDuty answered; Slack refused users.lookupByEmail (an app installed before it had
    users:read.email). `/oncall` said "PagerDuty refused to say who is on call" and dropped
    its answer; and someone on call with no Slack user was listed as if DMed."""
    harness = paging.harness
    harness.double.fail("users.lookupByEmail", "missing_scope")
    await harness.command("P1", command="/oncall")
    [answer] = await harness.replies()
    text = str(answer["text"])
    assert "refused" not in text and "could not be reached" not in text, text
    assert (
        "On call now at PagerDuty: jane@example.com (Slack could not look it up: no DM);"
        " Slack error: missing_scope; paged with the first level of P1"
    ) in text, text

    # The incomplete answer was not kept: asked again, Slack finds her.
    await harness.command("P1", command="/oncall")
    [answer] = await harness.replies()
    assert "On call now at PagerDuty: <@U0JANE>; paged with the first level" in str(answer["text"])

    # Someone on call who has no Slack user (left the workspace) is said to get no DM.
    paging.og.schedules["sre_schedule"] = ["gone@example.com"]
    await harness.command("P2", command="/oncall")
    [answer] = await harness.replies()
    assert "On call now at Opsgenie: gone@example.com (no Slack user: no DM)" in str(answer["text"])


async def test_oncall_tells_a_failed_look_up_from_an_e_mail_slack_has_no_user_for(
    paging: Paging,
) -> None:
    """Slack failed to look up Omar, and answered that nobody has gone@example.com
    (users_not_found): `/oncall` said "Slack could not look it up" of both, as if gone might
    still be in Slack."""
    harness = paging.harness
    paging.og.schedules["sre_schedule"] = ["omar@example.com", "gone@example.com"]
    harness.double.fail("users.lookupByEmail", "ratelimited")  # Omar's look-up only
    await harness.command("P2", command="/oncall")
    [answer] = await harness.replies()
    text = str(answer["text"])
    assert (
        "On call now at Opsgenie: omar@example.com (Slack could not look it up: no DM),"
        " gone@example.com (no Slack user: no DM); Slack error: ratelimited;"
    ) in text, text


async def test_oncall_says_which_severities_page_each_services_on_call(paging: Paging) -> None:
    """P1's first level names PagerDuty, P2's Opsgenie. `/oncall P1` said Opsgenie's on-call
    was "paged with the first level" too: whoever read it expected Omar to be woken for a
    P1, and nobody would have been, and it asked Opsgenie for nothing it needed."""
    harness = paging.harness
    await harness.command("P1", command="/oncall")
    [answer] = await harness.replies()
    text = str(answer["text"])
    assert "On call now at PagerDuty: <@U0JANE>; paged with the first level of P1" in text
    assert "Opsgenie" not in text and "U0OMAR" not in text
    assert not any("on-calls" in path for path in paging.og.paths)

    await harness.command("", command="/oncall")
    [answer] = await harness.replies()
    text = str(answer["text"])
    assert "On call now at PagerDuty: <@U0JANE>; paged with the first level of P1" in text
    assert "On call now at Opsgenie: <@U0OMAR>; paged with the first level of P2" in text


async def test_ids_from_a_signed_webhook_never_steer_a_request_and_are_logged_clipped(
    paging: Paging, caplog: pytest.LogCaptureFixture
) -> None:
    """A signed PagerDuty acknowledgement whose `agent.id` is `../../oncalls?x=1` made the
    bot send `GET /oncalls?x=1` with its API key; a 100,112-character key with a NUL byte
    was logged whole, and the NUL made the log binary."""
    harness, pd, og = paging.harness, paging.pd, paging.og
    incident = await declare(harness, "declare P1 Checkout is down")
    await harness.settle()
    before = list(pd.paths)

    body = pd.webhook("incident.acknowledged", incident.id, pd.users["PJANE01"])
    body["event"]["agent"]["id"] = "../../oncalls?x=1"
    status, answer = await paging.pagerduty_webhook(body)
    assert status == 400 and "event.agent.id" in answer["error"]
    assert "not a PagerDuty ID" in answer["error"] and "oncalls" not in answer["error"]
    await harness.settle()
    assert pd.paths == before  # no request at all, least of all GET /oncalls?x=1
    assert (await current(harness, incident)).acknowledged_at is None

    # The same acknowledgement with a well-formed ID is heard (and looked up by its path).
    body["event"]["agent"]["id"] = "PJANE01"
    status, answer = await paging.pagerduty_webhook(body)
    assert (status, answer["outcome"]) == (200, "acknowledged")
    assert pd.paths[len(before) :] == ["GET /users/PJANE01"]

    # A key from outside reaches the log clipped, its control characters escaped.
    caplog.set_level(logging.INFO, logger="bot.paging")
    key = "INC-20261127-001\x00\n" + "K" * 100_094
    assert len(key) == 100_112
    status, answer = await paging.opsgenie_webhook(og.webhook("Acknowledge", key, "jane"))
    assert (status, answer["outcome"]) == (200, "ignored: not an incident of this bot")
    [line] = [r.getMessage() for r in caplog.records if "opsgenie webhook for" in r.getMessage()]
    assert len(line) < 400 and "(100112 characters)" in line
    assert "\x00" not in line and "\n" not in line and "INC-20261127-001\\x00\\x0a" in line


async def test_a_drill_pages_slack_but_not_pagerduty_by_default(paging: Paging) -> None:
    harness, pd = paging.harness, paging.pd
    assert (await reply(harness, "drill P1 Checkout failover")).startswith("[DRILL] Declared")
    await harness.settle()
    [drill] = (await harness.services.incidents.list_page(drills=True)).incidents
    assert dm_texts(harness, "U0ONCALL")[0].startswith(":rotating_light: [DRILL] You are paged")
    await reply(harness, f"ack {drill.id}", user_id="U0ONCALL")
    await reply(harness, f"resolve {drill.id} drill over")
    await harness.settle()
    assert pd.events == []  # no trigger, so no acknowledge or resolve either
    [report] = [
        t
        for t in map(str, (c.params.get("blocks") for c in posts(harness, drill.channel_id or "")))
        if "Drill report" in t
    ]
    assert "PagerDuty: not paged, as drills page Slack only" in report
    assert "(level 1 answered)" in report


@pytest.mark.parametrize("paging", [{"drills": {"page_providers": True}}], indirect=True)
async def test_a_drill_pages_pagerduty_marked_drill_when_the_policy_says_so(
    paging: Paging,
) -> None:
    harness, pd = paging.harness, paging.pd
    await reply(harness, "drill P1 Checkout failover")
    await harness.settle()
    [drill] = (await harness.services.incidents.list_page(drills=True)).incidents
    [trigger] = pd.events
    assert trigger["dedup_key"] == drill.id
    assert trigger["payload"]["summary"] == f"[DRILL] {drill.id} (P1): Checkout failover"
    assert trigger["payload"]["custom_details"]["drill"].startswith("a practice incident")
    # Allowed to page them, a drill asks them who is on call too, as an incident does.
    assert any(drill.id in t for t in dm_texts(harness, "U0JANE"))
    await reply(harness, f"resolve {drill.id} drill over")
    await harness.settle()
    assert pd.actions(drill.id) == ["trigger", "resolve"]
    [report] = [
        t
        for t in map(str, (c.params.get("blocks") for c in posts(harness, drill.channel_id or "")))
        if "Drill report" in t
    ]
    assert "PagerDuty: resolved" in report


async def test_a_providers_name_for_a_person_reaches_slack_as_text(paging: Paging) -> None:
    """The name PagerDuty gives the acknowledging person (no Slack account by that e-mail)
    goes on the timeline and into the war room: its mentions as text, its NUL byte (which
    PostgreSQL cannot store) and bidi override written out."""
    harness, pd = paging.harness, paging.pd
    incident = await declare(harness, "declare P1 Payments time out")
    stranger = pd.add_user("PEVIL01", "<!channel> Eve \u202eevil\x00", "eve@example.com")
    body = pd.webhook("incident.acknowledged", incident.id, stranger)
    status, answer = await paging.pagerduty_webhook(body)
    assert (status, answer["outcome"]) == (200, "acknowledged")
    await harness.settle()
    [line] = [
        e.text
        for e in await harness.services.incidents.timeline(incident.id)
        if e.text.startswith("Acknowledged in PagerDuty")
    ]
    assert line == "Acknowledged in PagerDuty by <!channel> Eve \\u202eevil\\x00"
    sent = [str(c.params.get("text")) for c in harness.double.calls]
    assert any("Eve \\u202eevil\\x00" in text for text in sent)
    assert not any("\x00" in text or "\u202e" in text or "<!channel>" in text for text in sent)


@pytest.mark.parametrize(
    "paging", [{"roles": {"responders": ["U0ALICE"], "approvers": ["U0ENGLEAD"]}}], indirect=True
)
async def test_the_on_call_a_paging_service_names_acknowledges_from_the_page_dm(
    paging: Paging,
) -> None:
    """Jane is on call at PagerDuty, paged by DM with the first level; the responders are
    only Alice. Her page's Acknowledge button was refused, and the pages went on."""
    harness = paging.harness
    incident = await declare(harness, "declare P1 Checkout API returns 502")
    assert dm_texts(harness, "U0JANE")
    await harness.click(blocks.ACK_ACTION, value=incident.id, user_id="U0JANE")
    [answer] = await harness.replies()
    assert "You acknowledged" in answer["text"], answer
    assert (await current(harness, incident)).acknowledged_by == "U0JANE"


_PAGERDUTY_SECOND = {
    "escalation": {
        "P1": [
            {"after": 0, "notify": ["U0ONCALL"]},
            {"after": 3600, "notify": ["pagerduty"]},
        ]
    }
}


@pytest.mark.parametrize("paging", [_PAGERDUTY_SECOND], indirect=True)
async def test_a_pagerduty_page_by_hand_overtaken_by_an_acknowledgement_still_triggers(
    paging: Paging,
) -> None:
    """Someone escalates to the level PagerDuty pages, and the on-call acknowledges in Slack
    before the trigger went out (PagerDuty answered 503 first): the trigger was dropped as
    if the schedule had paged, though the escalator was told PagerDuty was paged."""
    harness, pd = paging.harness, paging.pd
    harness.services.dispatcher.failures.max_backoff = 0.5  # retried in 0.5 s, not 2 s
    incident = await declare(harness, "declare P1 Login fails")
    pd.fail_next(Answer(503))
    assert "paging PagerDuty now" in await reply(harness, f"escalate {incident.id} need SRE")
    assert "You acknowledged" in await reply(harness, f"ack {incident.id}", user_id="U0ONCALL")
    await pd.wait_until(
        lambda: "acknowledge" in pd.actions(incident.id), timeout=30, what="the acknowledgement"
    )
    assert pd.actions(incident.id) == ["trigger", "acknowledge"]


_BOTH_STORES = [{}, {"_store": "postgres"}]


def posted_texts(harness: BotHarness) -> list[str]:
    """Every message posted, in any channel."""
    return [
        str(call.params.get("text")) + str(call.params.get("blocks"))
        for call in harness.double.calls_to("chat.postMessage")
    ]


async def timeline_texts(harness: BotHarness, incident: Incident) -> list[str]:
    async with harness.store.transaction() as tx:
        rows = await tx.fetchall(
            "SELECT text FROM timeline WHERE incident_id = ? ORDER BY id", (incident.id,)
        )
    return [str(row["text"]) for row in rows]


@pytest.mark.parametrize("paging", _BOTH_STORES, indirect=True)
async def test_the_on_call_is_dmed_once_after_slack_fails_to_look_them_up(
    paging: Paging,
) -> None:
    """PagerDuty has Jane on call; Slack answered her users.lookupByEmail with a 503. Her
    page DM was dropped for good (the fan-out ended with the people it had found), though
    PagerDuty paged her: the look-up is now tried again, as the outbox retries a post."""
    harness = paging.harness
    harness.services.dispatcher.failures.max_backoff = 0.1  # retried at once, not in 2 s
    harness.double.http_error("users.lookupByEmail", 503)
    incident = await declare(harness, "declare P1 Checkout API returns 502")
    await until(lambda: bool(dm_texts(harness, "U0JANE")), "Jane's page DM, looked up again", 3)
    await harness.settle()
    assert len(harness.double.calls_to("users.lookupByEmail")) == 2  # failed, then answered
    assert len([t for t in dm_texts(harness, "U0JANE") if incident.id in t]) == 1
    assert len([t for t in dm_texts(harness, "U0ONCALL") if incident.id in t]) == 1
    assert not [t for t in await timeline_texts(harness, incident) if "could not" in t]


_SRE_GROUP_AND_OPSGENIE = {
    "escalation": {
        "P2": [
            {"after": 0, "notify": ["U0ONCALL", "S0SRE", "opsgenie"]},
            {"after": 3600, "notify": ["U0LEAD"]},
        ]
    }
}


@pytest.mark.parametrize(
    "paging",
    [_SRE_GROUP_AND_OPSGENIE, {**_SRE_GROUP_AND_OPSGENIE, "_store": "postgres"}],
    indirect=True,
)
async def test_an_on_call_person_with_no_slack_user_is_told_once(paging: Paging) -> None:
    """Opsgenie has gone@example.com (no Slack user) and Omar on call. Gone's page DM was
    dropped without a word: now the channel is told, like any page that reached nobody, and
    once, though the fan-out runs again (S0SRE's members could not be read the first time)."""
    harness = paging.harness
    harness.services.dispatcher.failures.max_backoff = 0.1  # retried at once, not in 2 s
    harness.double.add_usergroup("S0SRE", ["U0LEAD"])
    paging.og.schedules["sre_schedule"] = ["gone@example.com", "omar@example.com"]
    harness.double.http_error("usergroups.users.list", 503)
    incident = await declare(harness, "declare P2 Search is slow")
    await until(lambda: bool(dm_texts(harness, "U0LEAD")), "the group's DM, read again", 3)
    await harness.settle()
    assert len(harness.double.calls_to("usergroups.users.list")) >= 2  # the fan-out ran again
    line = (
        "Level 1 page could not DM gone@example.com, on call at Opsgenie: no Slack user has"
        " that e-mail (users_not_found); Opsgenie pages them"
    )
    assert len([t for t in await timeline_texts(harness, incident) if line in t]) == 1
    assert len([t for t in posted_texts(harness) if line in t]) == 1, posted_texts(harness)
    for user in ("U0OMAR", "U0LEAD", "U0ONCALL"):
        assert len([t for t in dm_texts(harness, user) if incident.id in t]) == 1, user
    # The service still pages them: the level is not unreached, the next one not paged.
    assert await pending_pages(harness, incident) == [2]


async def test_an_on_call_person_slack_refuses_to_look_up_is_told_not_retried(
    paging: Paging,
) -> None:
    """Slack refused Jane's look-up for a reason of the bot's own (missing_scope): no retry
    mends that, so the page's DM to her is told as not sent, once, and not tried again."""
    harness = paging.harness
    harness.double.fail("users.lookupByEmail", "missing_scope")
    incident = await declare(harness, "declare P1 Checkout API returns 502")
    await harness.settle()
    line = (
        "Level 1 page could not DM jane@example.com, on call at PagerDuty: Slack refused to"
        " look them up (missing_scope); PagerDuty pages them"
    )
    assert len([t for t in await timeline_texts(harness, incident) if line in t]) == 1
    assert len(harness.double.calls_to("users.lookupByEmail")) == 1
    assert not dm_texts(harness, "U0JANE")


_TWO_SERVICES = {
    "escalation": {
        "P1": [
            {"after": 0, "notify": ["U0ONCALL", "pagerduty", "opsgenie"]},
            {"after": 3600, "notify": ["U0LEAD"]},
        ]
    }
}


@pytest.mark.parametrize(
    "paging", [_TWO_SERVICES, {**_TWO_SERVICES, "_store": "postgres"}], indirect=True
)
async def test_two_paging_services_of_a_level_are_asked_who_is_on_call_at_once(
    paging: Paging, caplog: pytest.LogCaptureFixture
) -> None:
    """A level names PagerDuty and Opsgenie, and both hang. The page's fan-out asked them who
    is on call in turn: Opsgenie only once PagerDuty's call had timed out (10 s), and two
    silent ones took the whole 20 s a handler has. Now each is asked at once, within its own
    timeout: Opsgenie gets its question while PagerDuty's is still unanswered."""
    harness, pd, og = paging.harness, paging.pd, paging.og
    assert harness.services.paging is not None
    for pager in harness.services.paging.pagers.values():
        pager.timeout = 19.0  # type: ignore[attr-defined]  # longer than the test's waits
    pd.hang()
    og.hang()
    with caplog.at_level(logging.WARNING, logger="bot.paging.oncall"):
        # Not `declare`, which waits for every delivery: these hang until answered.
        assert "Declared" in await reply(harness, "declare P1 Login fails")
        await pd.wait_until(
            lambda: any(p.startswith("GET /oncalls") for p in pd.paths),
            what="PagerDuty asked who is on call",
        )
        await og.wait_until(
            lambda: any("/on-calls" in p for p in og.paths),
            what="Opsgenie asked who is on call while PagerDuty's question is unanswered",
        )
        # Neither look-up has ended (answered, timed out or failed): both are under way.
        assert not [r for r in caplog.records if r.getMessage().startswith("on call at")]
    pd.answer_again()
    og.answer_again()
    [incident] = await harness.services.incidents.list(open_only=False)
    await until(
        lambda: bool(dm_texts(harness, "U0JANE") and dm_texts(harness, "U0OMAR")),
        "whoever each service has on call, paged by DM",
    )
    await harness.settle()
    for user in ("U0JANE", "U0OMAR", "U0ONCALL"):
        assert len([t for t in dm_texts(harness, user) if incident.id in t]) == 1, user
    assert pd.actions(incident.id) == ["trigger"]
    assert not [t for t in await timeline_texts(harness, incident) if "could not" in t]
    assert await _fanouts_finished(harness) == 1


async def _fanouts_finished(harness: BotHarness) -> int:
    async with harness.store.transaction() as tx:
        row = await tx.fetchone("SELECT COUNT(*) AS n FROM page_fanouts")
    return int(row["n"]) if row is not None else 0


@pytest.mark.parametrize(
    "paging", [_TWO_SERVICES, {**_TWO_SERVICES, "_store": "postgres"}], indirect=True
)
async def test_a_paging_service_that_hangs_holds_up_nobody_the_other_has_on_call(
    paging: Paging, caplog: pytest.LogCaptureFixture
) -> None:
    """PagerDuty hangs, Opsgenie answers. Omar, on call at Opsgenie, was DMed only once
    PagerDuty's question had timed out: he is DMed while it is still unanswered."""
    harness, pd = paging.harness, paging.pd
    assert harness.services.paging is not None
    for pager in harness.services.paging.pagers.values():
        pager.timeout = 19.0  # type: ignore[attr-defined]  # longer than the test's waits
    pd.hang()
    with caplog.at_level(logging.WARNING, logger="bot.paging.oncall"):
        assert "Declared" in await reply(harness, "declare P1 Login fails")
        [incident] = await harness.services.incidents.list(open_only=False)
        await until(
            lambda: any(incident.id in t for t in dm_texts(harness, "U0OMAR")),
            "Omar's page DM while PagerDuty's question is unanswered",
        )
        assert any(p.startswith("GET /oncalls") for p in pd.paths)  # asked, held
        assert not [r for r in caplog.records if r.getMessage().startswith("on call at")]
        assert await _fanouts_finished(harness) == 0  # not ended while PagerDuty is asked
    pd.answer_again()
    await until(lambda: bool(dm_texts(harness, "U0JANE")), "Jane's DM once PagerDuty answers")
    await harness.settle()
    for user in ("U0JANE", "U0OMAR", "U0ONCALL"):
        assert len([t for t in dm_texts(harness, user) if incident.id in t]) == 1, user
    assert await _fanouts_finished(harness) == 1


@pytest.mark.parametrize("paging", [_TWO_SERVICES], indirect=True)
async def test_a_drill_asks_no_paging_service_who_is_on_call_and_an_incident_still_does(
    paging: Paging,
) -> None:
    """A drill triggered neither PagerDuty nor Opsgenie, but its first level's fan-out still
    asked both who is on call (`GET /oncalls`, `GET /v2/schedules/.../on-calls`) and DMed
    whoever they named: practice reached the real paging services. A drill's people are its
    levels' Slack targets; a real incident still asks both services."""
    harness, pd, og = paging.harness, paging.pd, paging.og
    asked_before = (list(pd.paths), list(og.paths))
    # First: a real incident's answer, cached for a minute, would hide the drill's question.
    assert (await reply(harness, "drill P1 Checkout failover")).startswith("[DRILL] Declared")
    await harness.settle()
    [drill] = (await harness.services.incidents.list_page(drills=True)).incidents
    assert any(drill.id in t for t in dm_texts(harness, "U0ONCALL"))
    assert (pd.paths, og.paths) == asked_before  # no request at all, not even a read
    assert not dm_texts(harness, "U0JANE") and not dm_texts(harness, "U0OMAR")

    incident = await declare(harness, "declare P1 Checkout API returns 502")
    await harness.settle()
    assert any(p.startswith("GET /oncalls") for p in pd.paths)
    assert any(p.startswith("GET /v2/schedules/sre_schedule/on-calls") for p in og.paths)
    for user in ("U0JANE", "U0OMAR", "U0ONCALL"):
        assert any(incident.id in t for t in dm_texts(harness, user)), user
    assert not any(drill.id in t for t in dm_texts(harness, "U0JANE") + dm_texts(harness, "U0OMAR"))
