"""Alerts in, end to end: the bot runs for real (HTTP, the outbox, the war room, the
diagnosis) against the Slack double; Alertmanager's webhook is posted to it as Alertmanager
posts it, with its bearer token. On both stores."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest

from bot import metrics
from bot.incidents import storage
from bot.incidents.schemas import DeclareIncident
from bot.models import SYSTEM, Actor, Incident, Severity, Status
from tests.alert_helpers import TOKEN, alert, post, webhook
from tests.e2e.alert_env import Alerts, alerts_policy, health_url
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import posts, reply

__all__ = ["health_url"]  # the fixture, used here


@pytest.fixture(params=["sqlite", "postgres"])
async def alerts(
    request: pytest.FixtureRequest,
    make_harness: HarnessFactory,
    health_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Alerts]:
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    harness = await make_harness(request.param, policy=alerts_policy(health_url))
    async with aiohttp.ClientSession() as session:
        yield Alerts(harness, session)


async def _outcomes(alerts: Alerts) -> list[str]:
    return [str(row["outcome"]) for row in await alerts.alert_rows()]


async def _settled(alerts: Alerts) -> None:
    await alerts.settled()


async def test_an_alert_declares_a_diagnosed_incident_and_repeats_change_nothing(
    alerts: Alerts,
) -> None:
    status, body = await alerts.send(alert("HighErrorRate", "checkout", summary="5xx at 7%"))
    assert status == 200, body
    assert body["outcomes"] == {"new": 1}  # recorded; the incident is decided after the 200
    await _settled(alerts)
    assert await _outcomes(alerts) == ["declared"]
    [incident] = await alerts.incidents()
    assert incident.severity == "P1" and incident.services == ("checkout",)
    assert incident.title == "checkout: 5xx at 7%"
    assert incident.declared_by == "chatops-bot"
    incident = await alerts.harness.services.incidents.get(incident.id)
    assert incident.channel_id is not None  # the war room, as for a typed P1
    room = posts(alerts.harness, incident.channel_id)
    # The diagnosis is in the war room, graded, run by the bot.
    [diagnosis] = [c for c in room if str(c.params["text"]).startswith("Diagnosis of checkout")]
    assert "OK" in diagnosis.params["text"]
    assert "run by the bot, on an alert" in json.dumps(diagnosis.params["blocks"])
    assert "<@chatops-bot>" not in json.dumps([c.params for c in alerts.harness.double.calls])
    assert alerts.alert_messages(incident.channel_id) == [f"{incident.id}: 1 alert firing"]
    [message] = [c for c in room if c.params.get("text") == f"{incident.id}: 1 alert firing"]
    assert room.index(diagnosis) < room.index(message)  # the diagnosis is read first
    assert "prometheus.example" in json.dumps(message.params["blocks"])
    assert "alerts_silence" in json.dumps(message.params["blocks"])
    events = await alerts.harness.services.incidents.timeline(incident.id)
    kinds = [e.kind for e in events]
    assert "declared" in kinds and "alerts_declared" in kinds and "diagnosed" in kinds

    # Alertmanager resends the group (repeat_interval) and retries: nothing changes.
    calls = len(alerts.harness.double.calls)
    status, body = await alerts.send(alert("HighErrorRate", "checkout", summary="5xx at 7%"))
    assert (status, body["outcomes"]) == (200, {"duplicate": 1})
    await _settled(alerts)
    assert len(await alerts.incidents()) == 1
    assert len(await alerts.alert_rows()) == 1
    assert len(alerts.harness.double.calls) == calls


async def test_second_alert_joins_and_clearing_offers_resolve(alerts: Alerts) -> None:
    first = alert("HighErrorRate", "checkout")
    await alerts.send(first)
    await _settled(alerts)
    second = alert("HighLatency", "checkout", severity="warning")
    status, body = await alerts.send(first, second)
    assert (status, body["outcomes"]) == (200, {"duplicate": 1, "new": 1})
    await _settled(alerts)
    assert await _outcomes(alerts) == ["declared", "attached"]
    [incident] = await alerts.incidents()
    incident = await alerts.harness.services.incidents.get(incident.id)
    assert incident.channel_id is not None
    assert f"{incident.id}: 1 alert firing" in alerts.alert_messages(incident.channel_id)
    assert len(alerts.alert_messages(incident.channel_id)) == 2
    assert incident.current_status == "Alerts: 2 firing, 0 resolved."  # the count on the card
    # Whoever catches up reads the alerts firing, from the same records.
    catchup = await alerts.harness.services.catchup.catchup(incident.id)
    assert sorted(a.name for a in catchup.alerts) == ["HighErrorRate", "HighLatency"]
    assert catchup.alerts_total == 2 and all(a.source == "alertmanager" for a in catchup.alerts)
    answer = await reply(alerts.harness, f"catchup {incident.id}")
    assert "Alerts firing (2): " in answer and "HighLatency" in answer

    # Both clear: a note for each batch; the last one says so and offers Resolve.
    await alerts.send({**first, "status": "resolved"})
    await _settled(alerts)
    await alerts.send({**second, "status": "resolved"})
    await _settled(alerts)
    messages = alerts.alert_messages(incident.channel_id)
    assert messages[-1] == f"{incident.id}: 1 alert resolved. Every alert has cleared."
    last = [
        c for c in posts(alerts.harness, incident.channel_id) if c.params["text"] == messages[-1]
    ]
    assert "incident_resolve" in json.dumps(last[0].params["blocks"])
    kinds = [e.kind for e in await alerts.harness.services.incidents.timeline(incident.id)]
    assert kinds.count("alerts_resolved") == 2 and kinds.count("alerts_cleared") == 1
    after = await alerts.harness.services.incidents.get(incident.id)
    assert after.status is not Status.RESOLVED  # only resolve_when_clear resolves by itself
    assert (await alerts.harness.services.catchup.catchup(incident.id)).alerts_total == 0
    assert after.current_status.startswith("Alerts: every alert has cleared (2 resolved)")
    edits = [
        json.dumps(c.params["blocks"])
        for c in alerts.harness.double.calls_to("chat.update")
        if c.ok and c.params.get("ts") == after.summary_ts
    ]
    assert "every alert has cleared" in edits[-1]  # the card says so


async def test_resolve_when_clear_resolves_by_itself(
    make_harness: HarnessFactory, health_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    harness = await make_harness(
        "sqlite", policy=alerts_policy(health_url, resolve_when_clear=True, auto_diagnose=False)
    )
    async with aiohttp.ClientSession() as session:
        alerts = Alerts(harness, session)
        firing = alert("HighErrorRate", "checkout")
        await alerts.send(firing)
        await _settled(alerts)
        await alerts.send({**firing, "status": "resolved"})
        await _settled(alerts)
        [incident] = await alerts.incidents()
        assert incident.status is Status.RESOLVED and incident.resolved_by == SYSTEM.user_id
        kinds = [e.kind for e in await harness.services.incidents.timeline(incident.id)]
        assert "diagnosed" not in kinds  # auto_diagnose: false
        assert kinds[-2:] == ["alerts_cleared", "resolved"]


async def test_wrong_token_malformed_and_ignored(alerts: Alerts) -> None:
    status, body = await alerts.send(alert("HighErrorRate", "checkout"), token="wrong")
    assert status == 401
    status, body = await alerts.send(alert("HighErrorRate", "checkout"), token=None)
    assert status == 401
    status, body = await post(alerts.session, alerts.url(), b"{not json")
    assert status == 400 and "not an Alertmanager webhook" in body["error"]
    broken = webhook([alert("X", "checkout")])
    broken["alerts"][0]["startsAt"] = "yesterday"
    status, body = await post(alerts.session, alerts.url(), broken)
    assert status == 400 and "alerts.0.startsAt" in body["error"]
    status, body = await alerts.send(alert("Watchdog", "checkout"))
    assert (status, body["outcomes"]) == (200, {"ignored": 1})
    status, body = await alerts.send(alert("Odd", "checkout", severity="whatever"))
    assert (status, body["outcomes"]) == (200, {"new": 1})
    await _settled(alerts)
    assert await alerts.incidents() == []
    assert await _outcomes(alerts) == ["ignored", "recorded"]  # no severity mapped: not declared
    assert len(await alerts.alert_rows()) == 2


async def test_a_token_set_with_a_trailing_newline_still_lets_alerts_in(
    alerts: Alerts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Secret made from a file (`echo token > f`) holds the token and a newline; the
    monitor sends it trimmed (Alertmanager trims its credentials_file). The token given was
    trimmed and compared with the untrimmed one: every post was refused (401), every alert
    lost, though the token was right."""
    monkeypatch.setenv("ALERTS_TOKEN", f"  {TOKEN}\n")
    status, body = await alerts.send(alert("HighErrorRate", "checkout"))
    assert (status, body.get("outcomes")) == (200, {"new": 1}), body
    status, body = await alerts.send(alert("HighErrorRate", "checkout"), token="wrong")
    assert status == 401


async def test_a_bearer_token_that_is_not_utf8_gets_401_not_a_500(alerts: Alerts) -> None:
    # aiohttp keeps a header's undecodable bytes as surrogates, which str.encode() refused:
    # a 500 and a traceback for anyone who posted one, token or not.
    body = json.dumps(webhook([alert("HighErrorRate", "checkout")])).encode()
    for token in (b"\xff", b"\xc3\xa9", TOKEN.encode() + b"\xff"):
        reader, writer = await asyncio.open_connection("127.0.0.1", alerts.harness.bot.port)
        writer.write(
            b"POST /alerts/alertmanager HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json"
            b"\r\nAuthorization: Bearer " + token + b"\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        status_line = await reader.readline()
        writer.close()
        assert status_line.split()[1] == b"401", (token, status_line)
    assert await alerts.alert_rows() == []


async def test_odd_times_and_deeply_nested_json_are_a_400_never_a_500(alerts: Alerts) -> None:
    """Each of these once raised out of the reader (a 500, and a monitor that retries it
    for ever): a time an offset moves past year 1 or 9999, an empty startsAt, and a generic
    body of arrays nested thousands deep."""
    for starts_at in ("9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", ""):
        status, body = await alerts.send(alert("X", "checkout", starts_at=starts_at))
        assert status == 400 and "alerts.0.startsAt" in body["error"], (starts_at, body)
    late = alert("X", "checkout")
    late["endsAt"] = "0001-01-01T00:00:00+01:00"  # Go's zero time with an offset: no end
    status, body = await alerts.send(late)
    assert (status, body["outcomes"]) == (200, {"new": 1}), body
    generic = {"title": "Queue stuck", "dedup_key": "q", "started_at": "0001-01-01T00:00:00+01:00"}
    status, body = await post(alerts.session, alerts.url("/alerts/generic"), generic)
    assert (status, body["outcomes"]) == (200, {"new": 1}), body
    deep = b"[" * 100_000 + b"]" * 100_000
    status, body = await post(alerts.session, alerts.url("/alerts/generic"), deep)
    assert status == 400 and "recursion limit exceeded" in body["error"], body


@pytest.mark.parametrize(
    "raw",
    [
        # `links` was read leniently: the surrogate was recorded, to reach Slack and the
        # audit's hash later (every other field refused it).
        b'{"title": "Disk", "dedup_key": "d", "links": [{"url": "https://g/\\udfff"}]}',
        b'{"title": "Disk", "dedup_key": "d", "description": "\\ud800"}',
        b'{"title": "Disk", "dedup_key": "d", "labels": {"\\ud800": "x"}}',
        b'{"title": "Disk", "dedup_key": "d", "started_at": NaN}',
    ],
    ids=["link", "description", "label", "nan"],
)
async def test_a_generic_body_holding_what_no_store_can_keep_is_a_400(
    alerts: Alerts, raw: bytes
) -> None:
    """JSON may escape a lone surrogate (`"\\ud800"`), which UTF-8 cannot encode: no store,
    hash or Slack payload can take it. Refused as not JSON, wherever it is, as the
    Alertmanager and Grafana endpoints refuse it."""
    status, body = await post(alerts.session, alerts.url("/alerts/generic"), raw)
    assert status == 400 and body["error"].startswith("the body is not JSON"), body
    assert await alerts.alert_rows() == []


async def test_a_long_annotation_or_link_is_cut_never_refusing_the_group(alerts: Alerts) -> None:
    """A long PromQL expression makes a generatorURL of thousands of characters, and a
    Grafana valueString or a description can run past 4,000: the group was refused (400)
    and Alertmanager retried it for ever, every alert of it lost. Now the value is cut and
    the link left out."""
    long = alert("HighErrorRate", "checkout", summary="5xx at 7%")
    long["annotations"]["description"] = "d" * 5000
    long["generatorURL"] = "http://prometheus.example/graph?g0.expr=" + "x" * 3000
    long["valueString"] = "[ var='A' labels={pod=p} value=1 ], " * 200
    status, body = await alerts.send(long, alert("HighLatency", "checkout"))
    assert (status, body["outcomes"]) == (200, {"new": 2}), body
    await _settled(alerts)
    [incident] = await alerts.incidents()
    assert incident.impact.startswith("ddd")
    [row] = [r for r in await alerts.alert_rows() if "HighErrorRate" in r["labels"]]
    assert len(json.loads(row["annotations"])["description"]) == 4000
    incident = await alerts.harness.services.incidents.get(incident.id)
    assert incident.channel_id is not None
    shown = json.dumps([c.params for c in posts(alerts.harness, incident.channel_id)])
    assert "HighErrorRate" in shown and "x" * 100 not in shown  # posted, without the link


async def test_an_alert_with_a_hundred_labels_is_taken_whole(alerts: Alerts) -> None:
    """kube-state-metrics joins a pod's labels into its alerts: 64 labels or more refused
    the whole group (400), and Alertmanager retried it for ever, every alert of it lost."""
    many = alert("KubePodCrashLooping", "checkout", summary="crash looping")
    many["labels"] |= {f"label_app_kubernetes_io_{n}": f"v{n}" for n in range(120)}
    status, body = await alerts.send(many, alert("HighLatency", "checkout"))
    assert (status, body["outcomes"]) == (200, {"new": 2}), body
    await _settled(alerts)
    [row] = [r for r in await alerts.alert_rows() if "KubePodCrashLooping" in r["labels"]]
    assert len(json.loads(row["labels"])) == len(many["labels"]) > 120


async def test_control_characters_in_an_alert_are_left_out_never_a_500(alerts: Alerts) -> None:
    """A NUL byte (which PostgreSQL cannot store) or a bidi override in a label, annotation or
    generic field: the alert is recorded and declared without them; refusing the post would
    drop the group's other alerts with it."""
    nul = alert("Disk\x00Full", "checkout", summary="disk \u202efull\x00", pod="p\x00")
    nul["annotations"]["description"] = "line one\nline\x07two"
    status, body = await alerts.send(nul, alert("Other", "checkout"))
    assert (status, body["outcomes"]) == (200, {"new": 2}), body
    generic = {"title": "Queue\x00stuck", "dedup_key": "q\x00", "service": "checkout"}
    status, body = await post(alerts.session, alerts.url("/alerts/generic"), generic)
    assert (status, body["outcomes"]) == (200, {"new": 1}), body
    await _settled(alerts)
    [incident] = await alerts.incidents()
    assert incident.title.startswith("checkout: disk full")
    names = sorted(json.loads(row["labels"])["alertname"] for row in await alerts.alert_rows())
    # A label value keeps its length, each control character marked (bot.alerts.models).
    assert names == ["Disk\ufffdFull", "Other", "Queuestuck"]
    for call in alerts.harness.double.calls:  # what Slack was sent holds neither
        for text in _strings(call.params):
            assert "\x00" not in text and "\u202e" not in text, (call.method, text)


async def test_an_alert_name_is_never_a_mention_or_a_link_on_the_timeline(alerts: Alerts) -> None:
    """An alert's name is a monitor's words: on the timeline and in the catch-up it shows as
    text. It once went in as the bot's own words, read for markup: `<@U…>` became a mention,
    and `<!channel>` and `<url|label>` reached Slack as markup."""
    evil = "<!channel> <@U0EVIL1234> <https://evil.example|log in>"
    await alerts.send(alert(evil, "checkout", summary="Checkout errors"))
    await _settled(alerts)
    [incident] = await alerts.incidents()
    await alerts.send({**alert(evil, "checkout"), "status": "resolved"})
    await _settled(alerts)
    answer = await reply(alerts.harness, f"catchup {incident.id}")
    assert "1 alert resolved: &lt;!channel&gt; &lt;@U0EVIL1234&gt;" in answer, answer
    await alerts.harness.command(f"timeline {incident.id}")
    [shown] = await alerts.harness.replies()
    for text in [answer, *_strings(shown)]:
        for markup in ("<!channel>", "<@U0EVIL1234>", "<https://evil"):
            assert markup not in text, text
    events = await alerts.harness.services.incidents.timeline(incident.id)
    lines = [e for e in events if e.kind in ("alerts_declared", "alerts_resolved")]
    assert len(lines) == 2 and all(e.said == evil for e in lines)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    return [text for item in value for text in _strings(item)] if isinstance(value, list) else []


async def test_generic_and_grafana_endpoints(alerts: Alerts) -> None:
    generic = {
        "title": "Disk almost full",
        "service": "billing",
        "severity": "warning",
        "dedup_key": "disk-1",
        "links": [{"url": "https://grafana.example/d/1", "text": "dashboard"}],
    }
    status, body = await post(alerts.session, alerts.url("/alerts/generic"), generic)
    assert (status, body["outcomes"]) == (200, {"new": 1}), body
    await _settled(alerts)  # decided before the Grafana alert comes, so that one joins
    status, body = await post(alerts.session, alerts.url("/alerts/generic"), generic)
    assert body["outcomes"] == {"duplicate": 1}
    status, body = await post(alerts.session, alerts.url("/alerts/generic"), {"title": "x"})
    assert status == 400 and "dedup_key" in body["error"]
    grafana = webhook([alert("CPU", "billing")])
    grafana |= {"orgId": 1, "title": "[FIRING:1] CPU", "state": "alerting"}
    grafana["alerts"][0] |= {"dashboardURL": "https://grafana.example/d/2", "values": {"A": 1}}
    status, body = await post(alerts.session, alerts.url("/alerts/grafana"), grafana)
    assert (status, body["outcomes"]) == (200, {"new": 1}), body
    await _settled(alerts)
    assert await _outcomes(alerts) == ["declared", "attached"]
    [incident] = await alerts.incidents()
    # The warning opened a P2; Grafana's critical alert joining raised it.
    assert incident.services == ("billing",) and incident.severity == "P1"
    # Only Alertmanager's alerts can be silenced from Slack: no Silence button on the
    # generic or Grafana ones (it was offered, and every click failed).
    batches = [
        json.dumps(c.params["blocks"])
        for c in alerts.harness.double.calls_to("chat.postMessage")
        if str(c.params.get("text")).startswith(f"{incident.id}: 1 alert firing")
    ]
    assert len(batches) == 2 and not any("alerts_silence" in b for b in batches)


async def test_grafana_posts_its_own_webhook_version(alerts: Alerts) -> None:
    """Grafana's webhook contact point sends `"version": "1"` (Alertmanager's is "4"): every
    post Grafana made was refused with 400 "webhook version '1' is not supported", and its
    alerts never reached anyone. Alertmanager's endpoint still takes its own version only."""
    firing = alert("DiskFull", "billing", starts_at="2026-12-05T06:51:03.157076+02:00")
    grafana = webhook([firing]) | {
        "version": "1",
        "orgId": 1,
        "title": "[FIRING:1] DiskFull (billing critical)",
        "state": "alerting",
        "message": "**Firing**",
    }
    grafana["alerts"][0] |= {"silenceURL": "https://grafana.example/silence", "values": {"B": 97}}
    status, body = await post(alerts.session, alerts.url("/alerts/grafana"), grafana)
    assert (status, body) == (200, {"ok": True, "outcomes": {"new": 1}}), body
    await _settled(alerts)
    [incident] = await alerts.incidents()
    assert incident.services == ("billing",) and incident.severity == "P1"
    status, body = await post(alerts.session, alerts.url(), grafana)
    assert status == 400 and "version '1' is not supported" in body["error"], body


async def test_a_generic_resolution_by_its_key_alone_resolves_the_firing_alert(
    alerts: Alerts,
) -> None:
    """Monitors resolve by the dedup key alone (PagerDuty's Events API does). A generic
    resolution without `started_at` was recorded as an occurrence of its own, never seen
    firing: the alert that fired with a start stayed firing for good, the card counting it,
    and the clearing never came."""
    generic = {"title": "Disk full", "service": "billing", "severity": "P2", "dedup_key": "d"}
    url = alerts.url("/alerts/generic")
    fired = generic | {"started_at": "2026-12-05T04:00:00Z"}
    assert (await post(alerts.session, url, fired))[1]["outcomes"] == {"new": 1}
    await _settled(alerts)
    status, body = await post(alerts.session, url, generic | {"status": "resolved"})
    assert (status, body["outcomes"]) == (200, {"resolved": 1}), body
    await _settled(alerts)
    [incident] = await alerts.incidents()
    assert incident.current_status == (
        "Alerts: every alert has cleared (1 resolved); resolve it when you are satisfied."
    )
    # Told once: its resend changes nothing.
    status, body = await post(alerts.session, url, generic | {"status": "resolved"})
    assert (status, body["outcomes"]) == (200, {"duplicate": 1}), body
    assert [r["status"] for r in await alerts.alert_rows()] == ["resolved"]


async def test_refire_within_an_hour_reopens(alerts: Alerts) -> None:
    first = alert("HighErrorRate", "checkout")
    await alerts.send(first)
    await _settled(alerts)
    [incident] = await alerts.incidents()
    await alerts.harness.services.incidents.resolve(incident.id, SYSTEM, summary="fixed")
    again = alert("HighErrorRate", "checkout", starts_at="2026-12-05T05:00:00Z")
    status, body = await alerts.send(again)
    assert (status, body["outcomes"]) == (200, {"new": 1})
    await _settled(alerts)
    assert await _outcomes(alerts) == ["declared", "reopened"]
    [after] = await alerts.incidents()
    assert after.id == incident.id and after.is_open
    kinds = [e.kind for e in await alerts.harness.services.incidents.timeline(incident.id)]
    assert "reopened" in kinds and "alerts_reopened" in kinds


async def test_alert_joins_the_incident_a_person_declared_for_the_service(
    alerts: Alerts,
) -> None:
    # Typed "Checkout" in the form: an alert's "checkout" is the same service (it opened a
    # second incident for it).
    declared = await alerts.harness.services.incidents.declare(
        DeclareIncident(severity=Severity.P2, title="Checkout is slow", services=("Checkout",)),
        Actor("U0ALICE"),
    )
    await _settled(alerts)
    status, body = await alerts.send(alert("HighLatency", "checkout", severity="critical"))
    assert (status, body["outcomes"]) == (200, {"new": 1})
    await _settled(alerts)
    [row] = await alerts.alert_rows()
    assert (row["outcome"], row["incident_id"]) == ("attached", declared.id)
    assert [i.id for i in await alerts.incidents()] == [declared.id]
    kinds = [e.kind for e in await alerts.harness.services.incidents.timeline(declared.id)]
    assert "alerts_attached" in kinds and "diagnosed" in kinds  # diagnosed when alerts came
    after = await alerts.harness.services.incidents.get(declared.id)
    assert after.current_status == "Alerts: 1 firing, 0 resolved."


async def test_a_real_alert_never_joins_a_drill_of_its_service(alerts: Alerts) -> None:
    """A drill names its service (`checkout: ...`); a real alert for that service must open
    a real incident, not be filed under the practice one (marked DRILL, left out of the
    statistics, PagerDuty left alone)."""
    answer = await reply(alerts.harness, "drill P1 checkout: database failover")
    assert answer.startswith("[DRILL] Declared"), answer
    await _settled(alerts)
    [drill] = (await alerts.harness.services.incidents.list_page(drills=True)).incidents
    status, body = await alerts.send(alert("HighErrorRate", "checkout", summary="5xx at 7%"))
    assert (status, body["outcomes"]) == (200, {"new": 1})
    await _settled(alerts)
    [row] = await alerts.alert_rows()
    assert row["outcome"] == "declared" and row["incident_id"] != drill.id
    real = await alerts.harness.services.incidents.get(row["incident_id"])
    assert not real.drill and real.title == "checkout: 5xx at 7%"
    kinds = [e.kind for e in await alerts.harness.services.incidents.timeline(drill.id)]
    assert "alerts_attached" not in kinds


async def test_large_and_oversized_bodies(alerts: Alerts) -> None:
    """A body arrives in chunks: all of it is read (a 600 KB group was once cut at the first
    chunk and refused as malformed); one over 1 MiB is refused, chunked or not."""
    big = webhook([alert(f"A{n}", "checkout", pod=f"p{n}") for n in range(1500)])
    raw = json.dumps(big).encode()
    assert 300_000 < len(raw) < 1024 * 1024

    async def chunked(data: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(data), 4096):
            yield data[start : start + 4096]

    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with alerts.session.post(alerts.url(), data=chunked(raw), headers=headers) as answer:
        assert answer.status == 200, await answer.text()
        assert (await answer.json())["outcomes"] == {"new": 1500}
    huge = raw + b" " * (1024 * 1024)
    async with alerts.session.post(alerts.url(), data=chunked(huge), headers=headers) as answer:
        assert answer.status == 413
    async with alerts.session.post(alerts.url(), data=huge, headers=headers) as answer:
        assert answer.status == 413


async def test_a_group_past_two_thousand_alerts_is_taken_not_refused_on_every_resend(
    alerts: Alerts,
) -> None:
    """Alertmanager cannot split a group: a storm's group of 2,100 alerts (and 40 more that its
    max_alerts already left out) was a 400 on every resend, and no incident ever opened. The
    first 2,000 are taken (resolutions first), the rest said left out, in the answer and the
    metric."""
    left_out = metrics.ALERTS_RECEIVED.labels("alertmanager", "left_out")
    before = left_out._value.get()
    body = webhook([alert(f"A{n}", "checkout", pod=f"p{n}") for n in range(2100)])
    body["truncatedAlerts"] = 40
    status, answer = await post(alerts.session, alerts.url(), body)
    assert status == 200, answer
    assert answer["outcomes"] == {"new": 2000} and answer["left_out"] == 140
    assert left_out._value.get() == before + 140
    await _settled(alerts)
    [incident] = await alerts.incidents()
    assert incident.services == ("checkout",) and incident.status is not Status.RESOLVED
    assert "left part of the group out" in incident.current_status, incident
    # Which cut it may have been, said: a group without max_alerts is cut by the bot alone.
    assert "max_alerts, or past the 2,000" in incident.current_status, incident
    # A group within the limit says nothing of what was left out.
    status, answer = await alerts.send(alert("B", "checkout"))
    assert status == 200 and "left_out" not in answer


@pytest.mark.parametrize("truncated", [10**400, 10**300, 2**64, 1_000_000_001, -1])
async def test_a_truncated_count_no_alertmanager_could_send_is_a_400(
    alerts: Alerts, truncated: int
) -> None:
    """`truncatedAlerts` past float's range raised out of the left_out metric (a 500, and
    the sender retrying for ever); one within it (10**300) was added to the metric, which
    then counted nothing else for good. Past a billion (no Alertmanager holds as many) it
    is refused, saying why, and nothing is recorded or counted."""
    left_out = metrics.ALERTS_RECEIVED.labels("alertmanager", "left_out")
    before = left_out._value.get()
    body = webhook([alert("A", "checkout")])
    body["truncatedAlerts"] = truncated
    status, answer = await post(alerts.session, alerts.url(), body)
    assert status == 400 and "truncatedAlerts" in answer["error"], answer
    assert len(answer["error"]) < 300
    assert left_out._value.get() == before and await alerts.alert_rows() == []


async def test_a_generic_alert_without_a_start_is_firing_since_it_came(alerts: Alerts) -> None:
    """A generic alert sent without `started_at` is recorded as starting in 1971 (its
    dedup key alone names it): the catch-up said "Queue stuck since 1 Jan 1971"."""
    generic = {"title": "Queue stuck", "dedup_key": "q-1", "service": "checkout"}
    generic["severity"] = "critical"
    status, body = await post(alerts.session, alerts.url("/alerts/generic"), generic)
    assert (status, body["outcomes"]) == (200, {"new": 1}), body
    await _settled(alerts)
    [incident] = await alerts.incidents()
    [firing] = (await alerts.harness.services.catchup.catchup(incident.id)).alerts
    assert firing.since is not None
    assert abs((firing.since - alerts.harness.services.clock.now()).total_seconds()) < 3600
    answer = await reply(alerts.harness, f"catchup {incident.id}")
    assert "Queue stuck since" in answer and "1971" not in answer, answer


async def test_a_generic_alerts_top_level_service_and_severity_win_over_its_labels(
    alerts: Alerts,
) -> None:
    """A sender set `service` and `severity` (the format's own fields) and copied its
    generic labels, `service: platform` and `severity: info` among them: the labels won,
    so the alert opened a P3 for "platform" instead of a P1 for checkout."""
    generic = {
        "title": "Checkout 5xx",
        "dedup_key": "co-5xx",
        "service": "checkout",
        "severity": "critical",
        "labels": {"service": "platform", "severity": "info", "team": "payments"},
    }
    status, body = await post(alerts.session, alerts.url("/alerts/generic"), generic)
    assert (status, body["outcomes"]) == (200, {"new": 1}), body
    await _settled(alerts)
    [incident] = await alerts.incidents()
    assert (incident.severity, incident.services) == ("P1", ("checkout",))
    [row] = await alerts.alert_rows()
    labels = json.loads(row["labels"])
    assert (row["service"], labels["service"], labels["severity"]) == (
        "checkout",
        "checkout",
        "critical",
    )
    assert labels["team"] == "payments"  # the other labels kept as sent
    # Labels alone still name the service and severity when the fields are left out.
    labelled = {"title": "Disk", "dedup_key": "disk", "labels": {"service": "billing"}}
    labelled["labels"]["severity"] = "warning"
    status, body = await post(alerts.session, alerts.url("/alerts/generic"), labelled)
    assert (status, body["outcomes"]) == (200, {"new": 1}), body
    await _settled(alerts)
    [billing] = [i for i in await alerts.incidents() if i.services == ("billing",)]
    assert billing.severity == "P2"


async def test_a_more_severe_alert_joining_raises_the_severity(alerts: Alerts) -> None:
    """A warning opened a P2 (no war room, nobody paged beyond its level); the critical
    alert that followed for the same service only joined it: the P1 it calls for, with its
    war room and pages, never came. Now it raises the severity, as a person would, unless a
    person has set the severity themselves."""
    await alerts.send(alert("HighLatency", "checkout", severity="warning"))
    await _settled(alerts)
    [incident] = await alerts.incidents()
    assert incident.severity == "P2" and incident.channel_id is None
    status, body = await alerts.send(alert("HighErrorRate", "checkout"))
    assert (status, body["outcomes"]) == (200, {"new": 1})
    await _settled(alerts)
    assert await _outcomes(alerts) == ["declared", "attached"]
    raised = await alerts.harness.services.incidents.get(incident.id)
    assert raised.severity == "P1" and raised.channel_id is not None  # its war room opened
    events = await alerts.harness.services.incidents.timeline(incident.id)
    [line] = [e for e in events if e.kind == "severity_changed"]
    assert line.text == "Severity P2 → P1 by the bot" and line.actor == SYSTEM.user_id
    # A lower one joining lowers nothing.
    await alerts.send(alert("DiskFilling", "checkout", severity="info"))
    await _settled(alerts)
    assert (await alerts.harness.services.incidents.get(incident.id)).severity == "P1"

    # A person judged it a P2: the next critical alert leaves their severity alone.
    await alerts.harness.services.incidents.change_severity(
        incident.id, Actor("U0ALICE"), severity=Severity.P2
    )
    await alerts.send(alert("HighErrorRate", "checkout", starts_at="2026-12-05T05:00:00Z"))
    await _settled(alerts)
    assert (await alerts.harness.services.incidents.get(incident.id)).severity == "P2"


async def test_a_more_severe_alert_firing_again_reopens_at_its_severity(alerts: Alerts) -> None:
    await alerts.send(alert("HighLatency", "checkout", severity="warning"))
    await _settled(alerts)
    [incident] = await alerts.incidents()
    await alerts.harness.services.incidents.resolve(incident.id, SYSTEM, summary="fixed")
    await alerts.send(alert("HighErrorRate", "checkout", starts_at="2026-12-05T05:00:00Z"))
    await _settled(alerts)
    assert await _outcomes(alerts) == ["declared", "reopened"]
    after = await alerts.harness.services.incidents.get(incident.id)
    assert after.is_open and after.severity == "P1" and after.channel_id is not None


async def test_an_alert_that_fired_again_without_its_resolution_clears_all_the_same(
    alerts: Alerts,
) -> None:
    """An alert that clears and fires again between two of Alertmanager's notifications comes
    back with a new startsAt, its resolution never sent: the first occurrence stayed
    "firing" for ever, so the incident counted 2 firing, and when the alert really cleared
    the bot never said so (nor offered Resolve, nor resolved with resolve_when_clear)."""
    first = alert("HighErrorRate", "checkout")
    await alerts.send(first)
    await _settled(alerts)
    again = alert("HighErrorRate", "checkout", starts_at="2026-12-05T05:00:00Z")
    status, body = await alerts.send(again)
    assert (status, body["outcomes"]) == (200, {"new": 1})
    await _settled(alerts)
    [incident] = await alerts.incidents()
    after = await alerts.harness.services.incidents.get(incident.id)
    assert after.current_status == "Alerts: 1 firing, 1 resolved."
    # A late copy of the first notification changes nothing.
    status, body = await alerts.send(first)
    assert body["outcomes"] == {"duplicate": 1}
    await alerts.send({**again, "status": "resolved"})
    await _settled(alerts)
    after = await alerts.harness.services.incidents.get(incident.id)
    assert after.current_status.startswith("Alerts: every alert has cleared (2 resolved)")
    kinds = [e.kind for e in await alerts.harness.services.incidents.timeline(incident.id)]
    assert kinds.count("alerts_cleared") == 1


async def test_a_later_start_seen_only_resolved_ends_the_earlier_occurrence(
    alerts: Alerts,
) -> None:
    """The alert cleared, fired again and cleared again between notifications: only the
    second occurrence's resolution came. The first stayed "firing" for ever."""
    await alerts.send(alert("HighErrorRate", "checkout"))
    await _settled(alerts)
    later = alert("HighErrorRate", "checkout", starts_at="2026-12-05T05:00:00Z")
    status, body = await alerts.send({**later, "status": "resolved"})
    assert (status, body["outcomes"]) == (200, {"recorded": 1})
    await _settled(alerts)
    [incident] = await alerts.incidents()
    after = await alerts.harness.services.incidents.get(incident.id)
    assert after.current_status.startswith("Alerts: every alert has cleared (1 resolved)")


async def test_alerts_slack_refuses_to_post_are_on_the_timeline_not_dropped_unseen(
    alerts: Alerts,
) -> None:
    # The war room archived under a running incident: the next alert's message failed for
    # good and nothing anywhere said so (every other failed notification is on the timeline).
    first = alert("HighErrorRate", "checkout")
    await alerts.send(first)
    await _settled(alerts)
    [incident] = await alerts.incidents()
    incident = await alerts.harness.services.incidents.get(incident.id)
    room = incident.channel_id
    assert room is not None
    alerts.harness.double.fail("chat.postMessage", "is_archived", channel=room)
    await alerts.send(first, alert("HighLatency", "checkout", severity="warning"))
    await _settled(alerts)
    events = await alerts.harness.services.incidents.timeline(incident.id)
    [failed] = [e for e in events if e.kind == "notification_failed"]
    assert failed.text == f"Alerts message in #{room} failed: is_archived"
    entries = [e async for e in alerts.harness.services.audit.entries(incident_id=incident.id)]
    assert [e.outcome for e in entries if e.action == "alerts.post"] == ["failed: is_archived"]


async def test_an_alert_joins_its_service_incident_behind_two_hundred_newer_open_ones(
    alerts: Alerts,
) -> None:
    services = alerts.harness.services
    declared = await services.incidents.declare(
        DeclareIncident(severity=Severity.P3, title="Checkout is slow", services=("checkout",)),
        Actor("U0ALICE"),
    )
    later = declared.declared_at + timedelta(minutes=1)
    async with alerts.harness.store.transaction() as tx:
        for seq in range(500, 710):
            await storage.insert(
                tx,
                Incident(
                    id=f"INC-20261127-{seq}",
                    title=f"Other outage {seq}",
                    severity=Severity.P3,
                    status=Status.INVESTIGATING,
                    declared_by="U0BOB",
                    declared_at=later + timedelta(seconds=seq),
                    updated_at=later + timedelta(seconds=seq),
                    services=(f"svc{seq}",),
                ),
                day="20261127",
                seq=seq,
            )
    await _settled(alerts)
    status, body = await alerts.send(alert("HighLatency", "checkout", severity="warning"))
    assert (status, body["outcomes"]) == (200, {"new": 1})
    await _settled(alerts)
    [row] = await alerts.alert_rows()
    assert (row["outcome"], row["incident_id"]) == ("attached", declared.id)
