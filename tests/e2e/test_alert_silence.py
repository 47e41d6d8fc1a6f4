"""Silence from Slack: the Silence button on an alerts' thread message creates a silence in a
real Alertmanager (API v2, tests/monitoring.py), audited and on the timeline; a second click
makes none; an Alertmanager that cannot be reached is said so and nothing is recorded."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web

from bot.clock import FakeClock
from bot.slack import error_text
from bot.slack.alert_blocks import SILENCE_ACTION
from tests.alert_helpers import TOKEN, alert
from tests.e2e.alert_env import Alerts, alerts_policy, health_url
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import posts
from tests.faulty_tcp import FaultyTcp
from tests.local_http import serving
from tests.monitoring import AlertmanagerServer
from tests.servers import ServerUnavailable, free_port
from tests.waiting import until

__all__ = ["health_url"]  # the fixture, used here


@pytest.fixture
def alertmanager() -> Iterator[AlertmanagerServer]:
    try:
        server = AlertmanagerServer().start()
    except ServerUnavailable as exc:
        pytest.fail(f"cannot start Alertmanager: {exc}", pytrace=False)
    yield server
    server.stop()


@asynccontextmanager
async def _alerts(
    make_harness: HarnessFactory,
    health_url: str,
    alertmanager_url: str,
    clock: FakeClock | None = None,
    store: str = "sqlite",
) -> AsyncIterator[Alerts]:
    harness = await make_harness(
        store, policy=alerts_policy(health_url, alertmanager_url=alertmanager_url), clock=clock
    )
    async with aiohttp.ClientSession() as session:
        yield Alerts(harness, session)


def _silence_button(alerts: Alerts, channel: str) -> str:
    for call in posts(alerts.harness, channel):
        for block in call.params.get("blocks") or []:
            for element in block.get("elements", []):
                if element.get("action_id") == SILENCE_ACTION:
                    return str(element["value"])
    raise AssertionError("no Silence button was posted")


async def test_silence_button_creates_an_expiring_silence_once(
    make_harness: HarnessFactory,
    health_url: str,
    alertmanager: AlertmanagerServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    async with _alerts(make_harness, health_url, alertmanager.url) as alerts:
        await alerts.send(
            alert("HighErrorRate", "checkout", pod="a"), alert("HighErrorRate", "checkout", pod="b")
        )
        await alerts.settled()
        [incident] = await alerts.incidents()
        incident = await alerts.harness.services.incidents.get(incident.id)
        assert incident.channel_id is not None
        value = _silence_button(alerts, incident.channel_id)

        await alerts.harness.click(
            SILENCE_ACTION, value=value, channel_id=incident.channel_id, user_id="U0ALICE"
        )
        [answer] = await alerts.harness.replies()
        assert "Silenced 2 alerts" in answer["text"], answer
        [silence] = alertmanager.silences()
        assert silence["status"]["state"] == "active"
        assert silence["createdBy"] == "chatops-bot"
        matchers = {m["name"]: m["value"] for m in silence["matchers"]}
        # The labels both alerts share; not the pod, which differs.
        assert matchers == {
            "alertname": "HighErrorRate",
            "service": "checkout",
            "severity": "critical",
        }
        starts = datetime.fromisoformat(silence["startsAt"].replace("Z", "+00:00"))
        ends = datetime.fromisoformat(silence["endsAt"].replace("Z", "+00:00"))
        assert round((ends - starts).total_seconds()) == 3600  # it expires by itself
        await alerts.settled()
        events = await alerts.harness.services.incidents.timeline(incident.id)
        [line] = [e for e in events if e.kind == "alerts_silenced"]
        assert line.text.startswith("Silenced 2 alerts in Alertmanager for 1 h")
        assert any(
            "Silenced 2 alerts" in str(c.params["text"])
            for c in posts(alerts.harness, incident.channel_id)
        )
        async with alerts.harness.store.transaction() as tx:
            audited = await tx.fetchall("SELECT * FROM audit_log WHERE action = 'alerts.silence'")
        assert len(audited) == 1 and silence["id"] in json.dumps(audited[0]["args"])

        # A second click (or Slack's retry) makes no second silence.
        await alerts.harness.click(
            SILENCE_ACTION, value=value, channel_id=incident.channel_id, user_id="U0BOB"
        )
        [answer] = await alerts.harness.replies()
        assert "already silenced" in answer["text"]
        assert len(alertmanager.silences()) == 1


async def test_unreachable_alertmanager_is_said_and_nothing_recorded(
    make_harness: HarnessFactory, health_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    nowhere = f"http://127.0.0.1:{free_port()}"
    async with _alerts(make_harness, health_url, nowhere) as alerts:
        await alerts.send(alert("HighErrorRate", "checkout"))
        await alerts.settled()
        [incident] = await alerts.incidents()
        incident = await alerts.harness.services.incidents.get(incident.id)
        assert incident.channel_id is not None
        value = _silence_button(alerts, incident.channel_id)
        await alerts.harness.click(
            SILENCE_ACTION, value=value, channel_id=incident.channel_id, user_id="U0ALICE"
        )
        [answer] = await alerts.harness.replies()
        assert "Alertmanager could not be reached" in answer["text"], answer
        events = await alerts.harness.services.incidents.timeline(incident.id)
        assert "alerts_silenced" not in [e.kind for e in events]


async def test_once_the_silence_expired_the_button_silences_again(
    make_harness: HarnessFactory,
    health_url: str,
    alertmanager: AlertmanagerServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The batch's button is the only one for its alerts (a resend posts nothing new). An
    hour later, when the silence had ended and the alert paged again, a click answered
    "already silenced (until <an hour from now>)" and silenced nothing."""
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    clock = FakeClock(datetime.now(UTC))
    async with _alerts(make_harness, health_url, alertmanager.url, clock) as alerts:
        await alerts.send(alert("HighErrorRate", "checkout"))
        await alerts.settled()
        [incident] = await alerts.incidents()
        room = (await alerts.harness.services.incidents.get(incident.id)).channel_id or ""
        value = _silence_button(alerts, room)
        await alerts.harness.click(SILENCE_ACTION, value=value, channel_id=room, user_id="U0ALICE")
        [answer] = await alerts.harness.replies()
        assert "Silenced 1 alert" in answer["text"], answer
        clock.advance(minutes=30)  # still running: said so, with its own end
        await alerts.harness.click(SILENCE_ACTION, value=value, channel_id=room, user_id="U0BOB")
        [answer] = await alerts.harness.replies()
        [first] = alertmanager.silences()
        ends = int(datetime.fromisoformat(first["endsAt"].replace("Z", "+00:00")).timestamp())
        assert "already silenced" in answer["text"] and f"<!date^{ends}^" in answer["text"]

        clock.advance(minutes=31)  # it has ended
        await alerts.harness.click(SILENCE_ACTION, value=value, channel_id=room, user_id="U0BOB")
        [answer] = await alerts.harness.replies()
        assert "Silenced 1 alert" in answer["text"], answer
        assert len(alertmanager.silences()) == 2
        await alerts.settled()
        events = await alerts.harness.services.incidents.timeline(incident.id)
        assert [e.kind for e in events].count("alerts_silenced") == 2


def _batch_message(alerts: Alerts, channel: str) -> dict[str, object]:
    """The alerts message with the Silence button as it stands: posted, then edited."""
    for call in posts(alerts.harness, channel):
        if SILENCE_ACTION in json.dumps(call.params.get("blocks") or []):
            ts = call.response["ts"]
            shown = [
                c.params
                for c in alerts.harness.double.calls_to("chat.update")
                if c.ok and c.params.get("ts") == ts
            ]
            return shown[-1] if shown else call.params
    raise AssertionError("no Silence button was posted")


async def test_a_silenced_batch_offers_no_second_click_until_its_silence_ends(
    make_harness: HarnessFactory,
    health_url: str,
    alertmanager: AlertmanagerServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The batch's message kept its Silence button after a click: the next responder at 3
    a.m. could not tell the alerts were silenced, nor until when. It now says what is
    silenced and until when, without the button, and offers it again once the silence ends."""
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    clock = FakeClock(datetime.now(UTC))
    async with _alerts(make_harness, health_url, alertmanager.url, clock) as alerts:
        await alerts.send(
            alert("HighErrorRate", "checkout", pod="a"), alert("HighErrorRate", "checkout", pod="b")
        )
        await alerts.settled()
        [incident] = await alerts.incidents()
        room = (await alerts.harness.services.incidents.get(incident.id)).channel_id or ""
        value = _silence_button(alerts, room)
        await alerts.harness.click(SILENCE_ACTION, value=value, channel_id=room, user_id="U0ALICE")
        [answer] = await alerts.harness.replies()
        assert "Silenced 2 alerts" in answer["text"], answer
        await alerts.settled()
        [silence] = alertmanager.silences()
        ends = int(datetime.fromisoformat(silence["endsAt"].replace("Z", "+00:00")).timestamp())
        shown = json.dumps(_batch_message(alerts, room)["blocks"])
        assert SILENCE_ACTION not in shown
        assert f"Silenced in Alertmanager until <!date^{ends}^" in shown
        assert "2 alerts (HighErrorRate)" in shown

        clock.advance(minutes=61)  # the silence ran out: the button is offered again
        await alerts.settled()
        shown = json.dumps(_batch_message(alerts, room)["blocks"])
        assert SILENCE_ACTION in shown and "Silenced in Alertmanager" not in shown


async def test_a_firing_notification_of_a_silenced_alert_says_the_silence_ended_once(
    make_harness: HarnessFactory,
    health_url: str,
    alertmanager: AlertmanagerServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Someone expired the bot's silence in Alertmanager, which paged again: the bot still
    said "silenced until ..." and learned otherwise only at the next click. Alertmanager
    notifies of no silenced alert, so its firing notification now records the silence as
    ended (once) and the batch's message offers Silence again."""
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    clock = FakeClock(datetime.now(UTC))
    async with _alerts(make_harness, health_url, alertmanager.url, clock) as alerts:
        firing = alert("HighErrorRate", "checkout")
        await alerts.send(firing)
        await alerts.settled()
        [incident] = await alerts.incidents()
        room = (await alerts.harness.services.incidents.get(incident.id)).channel_id or ""
        value = _silence_button(alerts, room)
        await alerts.harness.click(SILENCE_ACTION, value=value, channel_id=room, user_id="U0ALICE")
        [answer] = await alerts.harness.replies()
        assert "Silenced 1 alert" in answer["text"], answer
        await alerts.send(firing)  # a notification sent as the silence was made: no sign
        await alerts.settled()
        assert SILENCE_ACTION not in json.dumps(_batch_message(alerts, room)["blocks"])

        clock.advance(minutes=10)
        for _ in range(2):  # Alertmanager's next notifications: told once
            await alerts.send(firing)
            await alerts.settled()
        [silence] = alertmanager.silences()
        events = await alerts.harness.services.incidents.timeline(incident.id)
        [line] = [e for e in events if e.kind == "alerts_silence_ended"]
        assert line.text.startswith(
            f"Alertmanager notified of firing alerts again, though the silence made from Slack"
            f" ({silence['id']}) should hold them until"
        ), line.text
        assert line.text.endswith("Silence is offered again on their message: HighErrorRate")
        assert SILENCE_ACTION in json.dumps(_batch_message(alerts, room)["blocks"])
        await alerts.harness.click(SILENCE_ACTION, value=value, channel_id=room, user_id="U0BOB")
        [answer] = await alerts.harness.replies()
        assert "Silenced 1 alert" in answer["text"], answer  # made again, not "already"


async def test_a_silence_ended_by_hand_in_alertmanager_is_learned_and_made_again(
    make_harness: HarnessFactory,
    health_url: str,
    alertmanager: AlertmanagerServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Someone expired the bot's silence in Alertmanager's UI ten minutes in. A click then
    answered "already silenced (until <its recorded end>)" and silenced nothing, while
    Alertmanager paged again: the bot now asks Alertmanager, records that the silence ended
    by hand (a timeline line), and silences again."""
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    async with _alerts(make_harness, health_url, alertmanager.url) as alerts:
        await alerts.send(alert("HighErrorRate", "checkout"))
        await alerts.settled()
        [incident] = await alerts.incidents()
        room = (await alerts.harness.services.incidents.get(incident.id)).channel_id or ""
        value = _silence_button(alerts, room)
        await alerts.harness.click(SILENCE_ACTION, value=value, channel_id=room, user_id="U0ALICE")
        [answer] = await alerts.harness.replies()
        assert "Silenced 1 alert" in answer["text"], answer
        [first] = alertmanager.silences()

        async with aiohttp.ClientSession() as session:  # expired by hand, as its UI does
            async with session.delete(f"{alertmanager.url}/api/v2/silence/{first['id']}") as r:
                assert r.status == 200, await r.text()
        assert alertmanager.silences()[0]["status"]["state"] == "expired"

        await alerts.harness.click(SILENCE_ACTION, value=value, channel_id=room, user_id="U0BOB")
        [answer] = await alerts.harness.replies()
        assert "already silenced" not in answer["text"], answer
        assert "ended in Alertmanager" in answer["text"], answer
        assert "Silenced 1 alert" in answer["text"], answer
        states = sorted(s["status"]["state"] for s in alertmanager.silences())
        assert states == ["active", "expired"]
        await alerts.settled()
        events = await alerts.harness.services.incidents.timeline(incident.id)
        kinds = [e.kind for e in events]
        assert kinds.count("alerts_silenced") == 2
        [ended] = [e for e in events if e.kind == "alerts_silence_ended"]
        assert first["id"] in ended.text and "ended by hand in Alertmanager" in ended.text
        assert kinds.index("alerts_silence_ended") < len(kinds) - 1 - kinds[::-1].index(
            "alerts_silenced"
        )

        # The new one runs: a third click says so, with Alertmanager's end, and makes none.
        await alerts.harness.click(SILENCE_ACTION, value=value, channel_id=room, user_id="U0BOB")
        [answer] = await alerts.harness.replies()
        assert "already silenced" in answer["text"] and "ended" not in answer["text"], answer
        assert len(alertmanager.silences()) == 2


async def test_a_running_silence_alertmanager_cannot_confirm_is_said_so(
    make_harness: HarnessFactory,
    health_url: str,
    alertmanager: AlertmanagerServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    async with _alerts(make_harness, health_url, alertmanager.url) as alerts:
        await alerts.send(alert("HighErrorRate", "checkout"))
        await alerts.settled()
        [incident] = await alerts.incidents()
        room = (await alerts.harness.services.incidents.get(incident.id)).channel_id or ""
        value = _silence_button(alerts, room)
        await alerts.harness.click(SILENCE_ACTION, value=value, channel_id=room, user_id="U0ALICE")
        await alerts.harness.replies()
        alertmanager.stop()
        await alerts.harness.click(SILENCE_ACTION, value=value, channel_id=room, user_id="U0BOB")
        [answer] = await alerts.harness.replies()
        assert "could not be reached to confirm" in answer["text"], answer


async def test_a_silence_matches_an_alert_whose_label_value_was_cut(
    make_harness: HarnessFactory,
    health_url: str,
    alertmanager: AlertmanagerServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A label value over 4,000 characters is cut when read (bot.alerts.models). The silence
    was made with the cut value as an equality matcher: Alertmanager's alert, whose value is
    whole, did not match it, and kept paging while the bot said it was silenced. The cut value
    now matches as a prefix; an alert that differs within it is still not silenced."""
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    long_value = "k8s-pod-labels: " + "app=checkout,tier=web;(x)[y]{z}.*+?|^$\\ " * 120
    assert len(long_value) > 4000
    other_value = "X" + long_value[1:]  # differs in its first character
    now = datetime.now(UTC)

    def in_alertmanager(detail: str) -> dict[str, object]:
        labels = alert("HighErrorRate", "checkout", detail=detail)["labels"]
        return {
            "labels": labels,
            "annotations": {"summary": "5xx"},
            "startsAt": now.isoformat(),
            "endsAt": now.replace(year=now.year + 1).isoformat(),
        }

    async with _alerts(make_harness, health_url, alertmanager.url) as alerts:
        async with alerts.session.post(
            f"{alertmanager.url}/api/v2/alerts",
            json=[in_alertmanager(long_value), in_alertmanager(other_value)],
        ) as response:
            assert response.status == 200, await response.text()
        await alerts.send(alert("HighErrorRate", "checkout", detail=long_value))
        await alerts.settled()
        [incident] = await alerts.incidents()
        room = (await alerts.harness.services.incidents.get(incident.id)).channel_id or ""
        [row] = await alerts.alert_rows()
        assert len(json.loads(row["labels"])["detail"]) == 4000  # cut when read
        value = _silence_button(alerts, room)
        await alerts.harness.click(SILENCE_ACTION, value=value, channel_id=room, user_id="U0ALICE")
        [answer] = await alerts.harness.replies()
        assert "Silenced 1 alert" in answer["text"], answer
        [silence] = alertmanager.silences()

        def silenced() -> dict[str, list[str]]:
            return {
                a["labels"]["detail"][:1]: a["status"]["silencedBy"] for a in alertmanager.alerts()
            }

        async def settled() -> bool:
            return len(silenced()) == 2 and bool(silenced()["k"])

        await until(settled, "Alertmanager to mark the alert silenced")
        assert silenced() == {"k": [silence["id"]], "X": []}


async def test_a_label_value_cut_and_cleaned_of_control_characters_is_still_silenced(
    make_harness: HarnessFactory,
    health_url: str,
    alertmanager: AlertmanagerServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Control characters were left out of a label value after it was cut: a value cut at
    4,000 characters, ten of them bells, was recorded with 3,990, matched exactly (never)
    and the alert kept paging while the bot said it was silenced. A short value with a bell
    was matched without it, as no alert has it. Each is now read as U+FFFD, one for one, and
    matched as any one character; an alert that differs elsewhere is still not silenced."""
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    long_value = "x" * 3990 + "\x07" * 20 + "y" * 100
    other_value = "X" + long_value[1:]
    now = datetime.now(UTC)

    def in_alertmanager(detail: str) -> dict[str, object]:
        labels = alert("HighErrorRate", "checkout", detail=detail, pod="p\x07q")["labels"]
        return {
            "labels": labels,
            "annotations": {"summary": "5xx"},
            "startsAt": now.isoformat(),
            "endsAt": now.replace(year=now.year + 1).isoformat(),
        }

    async with _alerts(make_harness, health_url, alertmanager.url) as alerts:
        async with alerts.session.post(
            f"{alertmanager.url}/api/v2/alerts",
            json=[in_alertmanager(long_value), in_alertmanager(other_value)],
        ) as response:
            assert response.status == 200, await response.text()
        await alerts.send(alert("HighErrorRate", "checkout", detail=long_value, pod="p\x07q"))
        await alerts.settled()
        [incident] = await alerts.incidents()
        room = (await alerts.harness.services.incidents.get(incident.id)).channel_id or ""
        [row] = await alerts.alert_rows()
        labels = json.loads(row["labels"])
        assert len(labels["detail"]) == 4000 and labels["pod"] == "p\ufffdq"
        value = _silence_button(alerts, room)
        await alerts.harness.click(SILENCE_ACTION, value=value, channel_id=room, user_id="U0ALICE")
        [answer] = await alerts.harness.replies()
        assert "Silenced 1 alert" in answer["text"], answer
        [silence] = alertmanager.silences()

        def silenced() -> dict[str, list[str]]:
            return {
                a["labels"]["detail"][:1]: a["status"]["silencedBy"] for a in alertmanager.alerts()
            }

        async def settled() -> bool:
            return len(silenced()) == 2 and bool(silenced()["x"])

        await until(settled, "Alertmanager to mark the alert silenced")
        assert silenced() == {"x": [silence["id"]], "X": []}


async def test_an_edited_silence_button_is_refused_plainly(
    make_harness: HarnessFactory, health_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch number past SQLite's integers answered "Something went wrong on my side"
    (a traceback), and a value naming no batch was followed by the usage of /incident."""
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    async with _alerts(make_harness, health_url, f"http://127.0.0.1:{free_port()}") as alerts:
        await alerts.send(alert("HighErrorRate", "checkout"))
        await alerts.settled()
        [incident] = await alerts.incidents()
        for value in (f"{incident.id}:99999999999999999999", f"{incident.id}:0", "junk"):
            await alerts.harness.click(
                SILENCE_ACTION, value=value, channel_id="C0ROOM", user_id="U0ALICE"
            )
            [answer] = await alerts.harness.replies()
            assert answer["text"] == "That button does not name a batch of alerts.", answer


async def test_clicks_at_the_same_moment_make_one_silence(
    make_harness: HarnessFactory,
    health_url: str,
    alertmanager: AlertmanagerServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A double click and a second responder at the same moment each found nothing recorded
    and each made a silence: three silences in Alertmanager and three timeline lines."""
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    async with _alerts(make_harness, health_url, alertmanager.url) as alerts:
        await alerts.send(alert("HighErrorRate", "checkout"))
        await alerts.settled()
        [incident] = await alerts.incidents()
        room = (await alerts.harness.services.incidents.get(incident.id)).channel_id or ""
        value = _silence_button(alerts, room)
        await asyncio.gather(
            *(
                alerts.harness.click(SILENCE_ACTION, value=value, channel_id=room, user_id=user)
                for user in ("U0ALICE", "U0BOB", "U0ALICE")
            )
        )
        answers = [a["text"] for a in await alerts.harness.replies(3)]
        assert sum(a.startswith("Silenced 1 alert") for a in answers) == 1, answers
        assert len(alertmanager.silences()) == 1
        await alerts.settled()
        events = await alerts.harness.services.incidents.timeline(incident.id)
        assert [e.kind for e in events].count("alerts_silenced") == 1
        # Once it is done, the next click is told it runs.
        await alerts.harness.click(SILENCE_ACTION, value=value, channel_id=room, user_id="U0BOB")
        [answer] = await alerts.harness.replies()
        assert "already silenced" in answer["text"], answer


async def test_a_batch_of_more_alert_names_than_one_click_silences_says_so(
    make_harness: HarnessFactory,
    health_url: str,
    alertmanager: AlertmanagerServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One click makes at most 20 silences (one per alert name); a storm batch of 25 names
    was answered "Silenced 25 alerts", five of them still paging."""
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    async with _alerts(make_harness, health_url, alertmanager.url) as alerts:
        await alerts.send(*(alert(f"Alert{n:02}", "checkout") for n in range(25)))
        await alerts.settled()
        [incident] = await alerts.incidents()
        room = (await alerts.harness.services.incidents.get(incident.id)).channel_id or ""
        value = _silence_button(alerts, room)
        await alerts.harness.click(SILENCE_ACTION, value=value, channel_id=room, user_id="U0ALICE")
        [answer] = await alerts.harness.replies()
        assert answer["text"].startswith(f"Silenced 20 alerts of {incident.id}"), answer
        assert answer["text"].endswith(
            "Not silenced: 5 alerts of other names or services (one click silences at most 20"
            " alert names, each of one service)."
        ), answer
        assert len(alertmanager.silences()) == 20
        await alerts.settled()
        events = await alerts.harness.services.incidents.timeline(incident.id)
        [line] = [e for e in events if e.kind == "alerts_silenced"]
        assert line.text.startswith("Silenced 20 alerts in Alertmanager")


async def _passed_on(request: web.Request, upstream: str) -> tuple[int, bytes]:
    """`request` sent on to `upstream` as it came: Alertmanager's status and body."""
    async with aiohttp.ClientSession() as session:
        async with session.request(
            request.method,
            upstream + request.path_qs,
            data=await request.read(),
            headers={"Content-Type": "application/json"},
        ) as answer:
            return answer.status, await answer.read()


@asynccontextmanager
async def _failing_from(
    upstream: str,
    failing_post: int | set[int],
    after_post: Callable[[], None] | None = None,
) -> AsyncIterator[str]:
    """Alertmanager behind a proxy whose `failing_post`-th silence creation (counting from
    1; 0: none; or each of a set) answers 503 without reaching it, as one behind a load
    balancer does mid-restart. `after_post` runs once each creation passed through has been
    made."""
    posted = 0
    failing = failing_post if isinstance(failing_post, set) else {failing_post}

    async def forward(request: web.Request) -> web.Response:
        nonlocal posted
        if request.method == "POST":
            posted += 1
            if posted in failing:
                return web.Response(status=503, text="upstream connect error")
        status, body = await _passed_on(request, upstream)
        if request.method == "POST" and after_post is not None:
            after_post()
        return web.Response(status=status, body=body)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    async with serving(app) as url:
        yield url


async def test_silences_made_before_alertmanager_failed_mid_click_are_kept_not_made_twice(
    make_harness: HarnessFactory,
    health_url: str,
    alertmanager: AlertmanagerServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A click makes one silence per alert name, one after another. When Alertmanager failed
    on the second of three, the first (made) was recorded nowhere and the answer said
    nothing was silenced: the next click made it again, two silences for one alert name."""
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    async with _failing_from(alertmanager.url, failing_post=2) as proxy:
        async with _alerts(make_harness, health_url, proxy) as alerts:
            await alerts.send(*(alert(name, "checkout") for name in ("Errors", "Latency", "Disk")))
            await alerts.settled()
            [incident] = await alerts.incidents()
            room = (await alerts.harness.services.incidents.get(incident.id)).channel_id or ""
            value = _silence_button(alerts, room)
            await alerts.harness.click(
                SILENCE_ACTION, value=value, channel_id=room, user_id="U0ALICE"
            )
            [answer] = await alerts.harness.replies()
            assert answer["text"].startswith(
                "Alertmanager refused the silence (HTTP 503): upstream connect error."
                f" Silenced 1 alert of {incident.id} before it failed"
            ), answer
            assert answer["text"].endswith(
                "Not silenced yet: 2 alerts (Latency, Disk): click Silence again for them."
            ), answer
            [made] = alertmanager.silences()
            assert {m["value"] for m in made["matchers"]} >= {"Errors"}
            await alerts.settled()
            events = await alerts.harness.services.incidents.timeline(incident.id)
            [line] = [e for e in events if e.kind == "alerts_silenced"]
            assert line.text.startswith("Silenced 1 alert in Alertmanager for 1 h")
            # The message keeps its button: the rest are not silenced.
            assert SILENCE_ACTION in json.dumps(_batch_message(alerts, room)["blocks"])

            await alerts.harness.click(
                SILENCE_ACTION, value=value, channel_id=room, user_id="U0BOB"
            )
            [answer] = await alerts.harness.replies()
            assert answer["text"].startswith(f"Silenced 3 alerts of {incident.id}"), answer
            names = sorted(
                m["value"]
                for s in alertmanager.silences()
                for m in s["matchers"]
                if m["name"] == "alertname"
            )
            assert names == ["Disk", "Errors", "Latency"]  # each once
            await alerts.settled()
            events = await alerts.harness.services.incidents.timeline(incident.id)
            lines = [e.text for e in events if e.kind == "alerts_silenced"]
            assert lines[1].startswith("Silenced 2 alerts in Alertmanager for 1 h")
            assert SILENCE_ACTION not in json.dumps(_batch_message(alerts, room)["blocks"])


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_a_message_partly_silenced_keeps_its_button_when_shown_again(
    make_harness: HarnessFactory,
    health_url: str,
    alertmanager: AlertmanagerServer,
    monkeypatch: pytest.MonkeyPatch,
    store: str,
) -> None:
    """A click Alertmanager failed part way leaves the message its button; but the next
    edit of the message (here a second click learning that the first silence was expired by
    hand, and failing part way again) showed it "Silenced until ..." with no button, while
    two of its alerts were still unsilenced."""
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    async with _failing_from(alertmanager.url, failing_post={2, 4}) as proxy:
        async with _alerts(make_harness, health_url, proxy, store=store) as alerts:
            await alerts.send(*(alert(name, "checkout") for name in ("Errors", "Latency", "Disk")))
            await alerts.settled()
            [incident] = await alerts.incidents()
            room = (await alerts.harness.services.incidents.get(incident.id)).channel_id or ""
            value = _silence_button(alerts, room)
            await alerts.harness.click(
                SILENCE_ACTION, value=value, channel_id=room, user_id="U0ALICE"
            )
            [answer] = await alerts.harness.replies()
            assert "Not silenced yet: 2 alerts (Latency, Disk)" in answer["text"], answer
            [first] = alertmanager.silences()
            async with aiohttp.ClientSession() as session:  # expired by hand, as its UI does
                path = f"{alertmanager.url}/api/v2/silence/{first['id']}"
                async with session.delete(path) as expired:
                    assert expired.status == 200, await expired.text()

            await alerts.harness.click(
                SILENCE_ACTION, value=value, channel_id=room, user_id="U0BOB"
            )
            [answer] = await alerts.harness.replies()
            assert "ended in Alertmanager" in answer["text"], answer
            assert "Not silenced yet: 2 alerts (Latency, Disk)" in answer["text"], answer
            await alerts.settled()  # the silence that ended refreshes the message
            assert alerts.harness.double.calls_to("chat.update")
            shown = json.dumps(_batch_message(alerts, room)["blocks"])
            assert SILENCE_ACTION in shown and "Silenced in Alertmanager until" not in shown

            # Once every alert is silenced, the message says so, without its button.
            await alerts.harness.click(
                SILENCE_ACTION, value=value, channel_id=room, user_id="U0BOB"
            )
            [answer] = await alerts.harness.replies()
            assert answer["text"].startswith(f"Silenced 3 alerts of {incident.id}"), answer
            await alerts.settled()
            shown = json.dumps(_batch_message(alerts, room)["blocks"])
            assert SILENCE_ACTION not in shown and "Silenced in Alertmanager until" in shown


async def test_a_refusal_that_is_no_json_is_said_as_a_refusal(
    make_harness: HarnessFactory,
    health_url: str,
    alertmanager: AlertmanagerServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A proxy's 503 page in front of Alertmanager was answered "Alertmanager could not be
    reached at ...: Expecting value: line 1 column 1 (char 0)": a JSON error, not the 503."""
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    async with _failing_from(alertmanager.url, failing_post=1) as proxy:
        async with _alerts(make_harness, health_url, proxy) as alerts:
            await alerts.send(alert("Errors", "checkout"))
            await alerts.settled()
            [incident] = await alerts.incidents()
            room = (await alerts.harness.services.incidents.get(incident.id)).channel_id or ""
            value = _silence_button(alerts, room)
            await alerts.harness.click(
                SILENCE_ACTION, value=value, channel_id=room, user_id="U0ALICE"
            )
            [answer] = await alerts.harness.replies()
            assert answer["text"] == (
                "Alertmanager refused the silence (HTTP 503): upstream connect error."
                " Nothing was silenced."
            ), answer
            assert alertmanager.silences() == []


async def test_silencing_a_storm_batch_silences_its_services_alerts_not_every_service(
    make_harness: HarnessFactory,
    health_url: str,
    alertmanager: AlertmanagerServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A storm incident's batch holds one alert name for several services. Its silence was
    made of the labels the alerts of that name share, the service not among them: clicking
    it silenced `Down` for every service in Alertmanager, the one with an incident of its
    own (paging no more) and any that would go down within the hour. Those naming no
    service are silenced apart, and only they: their silence names no service either."""
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    now = datetime.now(UTC)
    services = ("apples", "berries", "cherries")
    unnamed = alert("Down", "-", fingerprint="f00d")
    del unnamed["labels"]["service"]
    policy = alerts_policy(
        health_url, alertmanager_url=alertmanager.url, storm={"max_incidents": 1}
    )
    harness = await make_harness("sqlite", policy=policy)
    async with aiohttp.ClientSession() as session:
        alerts = Alerts(harness, session)
        shown = [
            {
                "labels": alert("Down", service)["labels"],
                "startsAt": now.isoformat(),
                "endsAt": now.replace(year=now.year + 1).isoformat(),
            }
            for service in (*services, "dates")
        ] + [
            {
                "labels": unnamed["labels"],
                "startsAt": now.isoformat(),
                "endsAt": now.replace(year=now.year + 1).isoformat(),
            }
        ]
        async with session.post(f"{alertmanager.url}/api/v2/alerts", json=shown) as response:
            assert response.status == 200, await response.text()
        await alerts.send(*(alert("Down", service) for service in services))
        await alerts.settled()
        await alerts.send(unnamed)  # folded into the storm too
        await alerts.settled()
        storm = next(i for i in await alerts.incidents() if i.services == ("berries", "cherries"))
        room = (await harness.services.incidents.get(storm.id)).channel_id or ""
        buttons = [
            str(element["value"])
            for call in posts(harness, room)
            for block in call.params.get("blocks") or []
            for element in block.get("elements", [])
            if element.get("action_id") == SILENCE_ACTION
        ]
        assert len(buttons) == 2  # the storm's first batch, then the unnamed alert's
        for value, count in zip(buttons, ("2 alerts", "1 alert"), strict=True):
            await harness.click(SILENCE_ACTION, value=value, channel_id=room, user_id="U0ALICE")
            [answer] = await harness.replies()
            assert answer["text"].startswith(f"Silenced {count} of {storm.id}"), answer
        assert len(alertmanager.silences()) == 3  # one a service, and one for no service

        def silenced() -> dict[str, bool]:
            return {
                a["labels"].get("service", "-"): bool(a["status"]["silencedBy"])
                for a in alertmanager.alerts()
            }

        async def settled() -> bool:
            return len(silenced()) == 5 and any(silenced().values())

        await until(settled, "Alertmanager to mark the alerts silenced")
        assert silenced() == {
            "apples": False,
            "berries": True,
            "cherries": True,
            "dates": False,
            "-": True,
        }


async def test_silences_the_database_could_not_record_are_expired_not_left_running(
    make_harness: HarnessFactory,
    health_url: str,
    alertmanager: AlertmanagerServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Alertmanager made the silence, then the database could not take its record (busy):
    the clicker was told nothing was changed while the silence ran in Alertmanager,
    recorded nowhere (no line, no end on the message), and the next click made another."""
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    release = asyncio.Event()
    holding: list[asyncio.Task[None]] = []

    async def hold_the_only_connection() -> None:
        async with harness.store.transaction() as tx:
            await tx.fetchone("SELECT 1 AS one")
            await release.wait()

    def busy_once() -> None:
        if not holding:
            holding.append(asyncio.get_running_loop().create_task(hold_the_only_connection()))

    async with _failing_from(alertmanager.url, 0, after_post=busy_once) as proxy:
        harness = await make_harness(
            "postgres",
            policy=alerts_policy(health_url, alertmanager_url=proxy),
            DATABASE_POOL_SIZE=1,
            DATABASE_QUEUE_SECONDS=0.5,
        )
        async with aiohttp.ClientSession() as session:
            alerts = Alerts(harness, session)
            await alerts.send(alert("Errors", "checkout"))
            await alerts.settled()
            [incident] = await alerts.incidents()
            room = (await harness.services.incidents.get(incident.id)).channel_id or ""
            value = _silence_button(alerts, room)
            await harness.click(SILENCE_ACTION, value=value, channel_id=room, user_id="U0ALICE")
            [answer] = await harness.replies(timeout=15)
            release.set()
            await holding[0]
            assert answer["text"] == error_text.store_busy(), answer
            assert [s["status"]["state"] for s in alertmanager.silences()] == ["expired"]

            await harness.click(SILENCE_ACTION, value=value, channel_id=room, user_id="U0ALICE")
            [answer] = await harness.replies(timeout=15)
            assert answer["text"].startswith(f"Silenced 1 alert of {incident.id}"), answer
            states = sorted(s["status"]["state"] for s in alertmanager.silences())
            assert states == ["active", "expired"]


@asynccontextmanager
async def _answering(text: str, state: str = "", listing: str = "[]") -> AsyncIterator[str]:
    """Whatever answers at Alertmanager's address: every silence made is a 200 with `text`,
    every question of how one stands a 200 with `state`, every list of silences `listing`."""

    async def made(request: web.Request) -> web.Response:
        return web.Response(text=text, content_type="application/json")

    async def stands(request: web.Request) -> web.Response:
        return web.Response(text=state, content_type="application/json")

    async def listed(request: web.Request) -> web.Response:
        return web.Response(text=listing, content_type="application/json")

    app = web.Application()
    app.router.add_post("/api/v2/silences", made)
    app.router.add_get("/api/v2/silences", listed)  # holding none yet
    app.router.add_get("/api/v2/silence/{id}", stands)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,  # nested past the recursion limit: a RecursionError
        '{"silenceID": "\\ud800"}',  # a lone surrogate: no store can encode it
        '{"silenceID": NaN}',
        '{"silenceID": ' + "9" * 4000 + "}",
        '{"silenceID": "' + "a" * 100_000 + '"}',
    ],
    ids=["nested", "surrogate", "nan", "number", "long"],
)
async def test_a_silence_answered_with_no_silence_id_is_said_as_a_refusal(
    make_harness: HarnessFactory,
    health_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    text: str,
) -> None:
    """What answers at Alertmanager's address is outside input: JSON nested thousands deep
    raised a RecursionError out of the click, and an ID that is no silence ID (a lone
    surrogate, a number, 100,000 characters) was recorded as one. Each is a refusal, said,
    and nothing is recorded."""
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    async with _answering(text) as url, _alerts(make_harness, health_url, url) as alerts:
        await alerts.send(alert("Errors", "checkout"))
        await alerts.settled()
        [incident] = await alerts.incidents()
        room = (await alerts.harness.services.incidents.get(incident.id)).channel_id or ""
        value = _silence_button(alerts, room)
        with caplog.at_level(logging.WARNING):
            await alerts.harness.click(
                SILENCE_ACTION, value=value, channel_id=room, user_id="U0ALICE"
            )
            [answer] = await alerts.harness.replies()
        assert answer["text"].startswith("Alertmanager refused the silence (HTTP 200)"), answer
        assert answer["text"].endswith("Nothing was silenced."), answer
        assert len(answer["text"]) < 400
        assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
        async with alerts.harness.store.transaction() as tx:
            assert await tx.fetchall("SELECT * FROM alert_silences") == []


@pytest.mark.parametrize(
    "state",
    ["[" * 100_000 + "]" * 100_000, '{"status": "active", "endsAt": "2030-01-01T00:00:00Z"}'],
    ids=["nested", "status-not-an-object"],
)
async def test_a_silence_whose_standing_is_answered_with_no_standing_is_said_unconfirmed(
    make_harness: HarnessFactory,
    health_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    state: str,
) -> None:
    """Asked how a silence stands, whatever answers at Alertmanager's address gave JSON nested
    thousands deep (a RecursionError out of the click) or a `status` that is no object (an
    AttributeError): the click is told the silence runs as recorded, unconfirmed."""
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    made = '{"silenceID": "5b0c7d1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e"}'
    async with _answering(made, state) as url, _alerts(make_harness, health_url, url) as alerts:
        await alerts.send(alert("Errors", "checkout"))
        await alerts.settled()
        [incident] = await alerts.incidents()
        room = (await alerts.harness.services.incidents.get(incident.id)).channel_id or ""
        value = _silence_button(alerts, room)
        await alerts.harness.click(SILENCE_ACTION, value=value, channel_id=room, user_id="U0ALICE")
        [answer] = await alerts.harness.replies()
        assert "Silenced 1 alert" in answer["text"], answer
        with caplog.at_level(logging.WARNING):
            await alerts.harness.click(
                SILENCE_ACTION, value=value, channel_id=room, user_id="U0BOB"
            )
            [answer] = await alerts.harness.replies()
        assert "could not be reached to confirm" in answer["text"], answer
        assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []


# A silence request left unanswered gives up after this long (the bot's is 10 s).
_PATIENCE = 2.0


async def _first_batch(alerts: Alerts, *names: str) -> tuple[str, str, str]:
    """(incident ID, its channel, its Silence button's value) once `names` fired."""
    await alerts.send(*(alert(name, "checkout") for name in names))
    await alerts.settled()
    [incident] = await alerts.incidents()
    room = (await alerts.harness.services.incidents.get(incident.id)).channel_id or ""
    alerts.harness.services.silences.timeout = _PATIENCE  # type: ignore[union-attr]
    return incident.id, room, _silence_button(alerts, room)


async def _recorded(alerts: Alerts) -> list[str]:
    async with alerts.harness.store.transaction() as tx:
        rows = await tx.fetchall("SELECT silence_id FROM alert_silences ORDER BY silence_id")
    return [str(row["silence_id"]) for row in rows]


async def test_a_silence_made_though_its_answer_timed_out_is_recorded_not_made_twice(
    make_harness: HarnessFactory,
    health_url: str,
    alertmanager: AlertmanagerServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Alertmanager made the silence but its answer never came back (slow, behind a proxy):
    the clicker was told it could not be reached and nothing was silenced, the record said
    none ran, and the next click made a second silence of the same alerts."""
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    mute = FaultyTcp(alertmanager.port, after=b"POST /api/v2/silences", fault="mute")
    with mute:
        proxy = f"http://127.0.0.1:{mute.port}"
        async with _alerts(make_harness, health_url, proxy) as alerts:
            incident_id, room, value = await _first_batch(alerts, "Errors")
            await alerts.harness.click(
                SILENCE_ACTION, value=value, channel_id=room, user_id="U0ALICE"
            )
            [answer] = await alerts.harness.replies(timeout=_PATIENCE * 4)
            assert mute.tripped == 1  # the request reached Alertmanager, its answer did not
            assert answer["text"].startswith(f"Silenced 1 alert of {incident_id}"), answer
            [silence] = alertmanager.silences()
            assert await _recorded(alerts) == [silence["id"]]
            await alerts.settled()
            events = await alerts.harness.services.incidents.timeline(incident_id)
            assert [e.kind for e in events].count("alerts_silenced") == 1

            await alerts.harness.click(
                SILENCE_ACTION, value=value, channel_id=room, user_id="U0BOB"
            )
            [answer] = await alerts.harness.replies(timeout=_PATIENCE * 4)
            assert "already silenced" in answer["text"], answer
            assert len(alertmanager.silences()) == 1


@asynccontextmanager
async def _unanswering(
    upstream: str, post: str, lists_after_post: bool = True
) -> AsyncIterator[tuple[str, dict[str, bool]]]:
    """Alertmanager behind a proxy that passes each silence made on to it, then ("hold")
    keeps the answer past the bot's patience or ("drop") closes the connection instead of
    answering, while `faults["on"]`. After such a POST, the list of silences is refused (503)
    unless `lists_after_post`. Yields (its URL, faults: set "on" False to heal it)."""
    faults = {"on": True, "posted": False}
    done = asyncio.Event()

    async def forward(request: web.Request) -> web.StreamResponse:
        if request.method == "GET" and faults["on"] and faults["posted"] and not lists_after_post:
            return web.Response(status=503, text="upstream connect error")
        status, body = await _passed_on(request, upstream)
        if request.method == "POST" and faults["on"]:
            faults["posted"] = True
            if post == "drop":
                assert request.transport is not None
                request.transport.close()
            else:
                await done.wait()  # answered never: the bot gives up first
        return web.Response(status=status, body=body)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    async with serving(app) as url:
        try:
            yield url, faults
        finally:
            done.set()


async def test_a_silence_whose_connection_dropped_mid_request_is_recorded_once(
    make_harness: HarnessFactory,
    health_url: str,
    alertmanager: AlertmanagerServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The connection dropped after Alertmanager took the silence, before its answer: two
    alert names, the first's silence made so; each is made once and both are recorded."""
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    async with _unanswering(alertmanager.url, "drop") as (proxy, faults):
        async with _alerts(make_harness, health_url, proxy) as alerts:
            incident_id, room, value = await _first_batch(alerts, "Errors", "Latency")
            await alerts.harness.click(
                SILENCE_ACTION, value=value, channel_id=room, user_id="U0ALICE"
            )
            [answer] = await alerts.harness.replies(timeout=_PATIENCE * 4)
            assert faults["posted"]
            assert answer["text"].startswith(f"Silenced 2 alerts of {incident_id}"), answer
            names = sorted(
                m["value"]
                for s in alertmanager.silences()
                for m in s["matchers"]
                if m["name"] == "alertname"
            )
            assert names == ["Errors", "Latency"]  # each once
            assert await _recorded(alerts) == sorted(s["id"] for s in alertmanager.silences())


async def test_a_silence_alertmanager_cannot_be_asked_about_is_said_maybe_and_not_recorded(
    make_harness: HarnessFactory,
    health_url: str,
    alertmanager: AlertmanagerServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The silence request went unanswered and Alertmanager could not then be asked whether
    it made it: the clicker was told "Nothing was silenced" though it had been. They are told
    it may or may not have been, and where to look; nothing is recorded; the next click, with
    Alertmanager back, finds it and makes no second one."""
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    async with _unanswering(alertmanager.url, "hold", lists_after_post=False) as (proxy, faults):
        async with _alerts(make_harness, health_url, proxy) as alerts:
            incident_id, room, value = await _first_batch(alerts, "Errors")
            await alerts.harness.click(
                SILENCE_ACTION, value=value, channel_id=room, user_id="U0ALICE"
            )
            [answer] = await alerts.harness.replies(timeout=_PATIENCE * 4)
            assert "may or may not have made the silence" in answer["text"], answer
            assert f"{proxy}/#/silences" in answer["text"], answer
            assert "Nothing was silenced" not in answer["text"], answer
            assert len(alertmanager.silences()) == 1  # it was made
            assert await _recorded(alerts) == []
            await alerts.settled()
            events = await alerts.harness.services.incidents.timeline(incident_id)
            assert "alerts_silenced" not in [e.kind for e in events]
            assert SILENCE_ACTION in json.dumps(_batch_message(alerts, room)["blocks"])

            faults["on"] = False
            await alerts.harness.click(
                SILENCE_ACTION, value=value, channel_id=room, user_id="U0BOB"
            )
            [answer] = await alerts.harness.replies(timeout=_PATIENCE * 4)
            assert answer["text"].startswith(f"Silenced 1 alert of {incident_id}"), answer
            [silence] = alertmanager.silences()
            assert await _recorded(alerts) == [silence["id"]]


@pytest.mark.parametrize(
    "listing",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"silences": []}',
        "<html>503</html>",
    ],
    ids=["nested", "not-a-list", "not-json"],
)
async def test_silences_listed_as_no_list_are_said_and_nothing_made(
    make_harness: HarnessFactory,
    health_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    listing: str,
) -> None:
    """Each click first asks Alertmanager for a silence an unanswered request made: a list
    that is none (outside input) is said, and no silence is made or recorded."""
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    made = '{"silenceID": "5b0c7d1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e"}'
    async with (
        _answering(made, listing=listing) as url,
        _alerts(make_harness, health_url, url) as alerts,
    ):
        _, room, value = await _first_batch(alerts, "Errors")
        with caplog.at_level(logging.WARNING):
            await alerts.harness.click(
                SILENCE_ACTION, value=value, channel_id=room, user_id="U0ALICE"
            )
            [answer] = await alerts.harness.replies()
        assert answer["text"] == (
            "Alertmanager did not list its silences (HTTP 200). Nothing was silenced."
        ), answer
        assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
        assert await _recorded(alerts) == []
