"""What the bot shows in Slack stays what it means at Slack's limits and with hostile text:
no `<...>` Slack would read as something else (the harness checks every ack, the double every
message and view), no list cut short without saying so."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from tests.alert_helpers import TOKEN
from tests.e2e.alert_env import Alerts, alert, alerts_policy, health_url
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import policy_with, posts, reply
from tests.harness import BotHarness

__all__ = ["health_url"]  # the fixture, used here


async def _ack_text(harness: BotHarness, text: str, command: str) -> str:
    response = await harness.command(text, command=command)
    assert response.status == 200 and isinstance(response.body, dict), response.body
    return str(response.body["text"])


async def test_usage_answers_show_their_placeholders_as_text(
    make_harness: HarnessFactory,
) -> None:
    # `<service>` unescaped is a Slack link to "service": the usage read "/diagnose  [check
    # ...]". The harness records such markup in an ack among the double's violations.
    services: dict[str, Any] = {"cache": {"redis": {"url_env": "CACHE_URL"}}}
    harness = await make_harness("sqlite", policy=policy_with(services=services))
    diagnose = await _ack_text(harness, "", "/diagnose")
    assert "`/diagnose &lt;service&gt; [check ...]`" in diagnose, diagnose
    remediate = await _ack_text(harness, "help", "/remediate")
    assert "`/remediate &lt;action&gt; &lt;service&gt; [key=value ...]`" in remediate, remediate
    assert harness.double.violations == []


async def test_a_batch_of_alerts_with_long_links_lists_every_alert_it_names(
    make_harness: HarnessFactory, health_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Grafana and Prometheus links run to hundreds of characters (a PromQL expression in the
    # generatorURL): the batch was one section clipped at 3,000 characters, which showed an
    # alert or two, cut the next link mid-way (raw `<https://...` on screen) and lost the
    # count of the alerts not listed.
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    harness = await make_harness("sqlite", policy=alerts_policy(health_url, auto_diagnose=False))
    expr = "sum(rate(http_requests_total{code=~%225..%22}[5m]))" * 20
    sent = []
    for n in range(12):
        item = alert(f"HighErrorRate{n:02}", "checkout", summary="5xx above 5% & rising")
        item["generatorURL"] = f"http://prometheus.example/graph?g0.expr={expr}&n={n}"
        item["dashboardURL"] = f"http://grafana.example/d/checkout?var-n={n}&{'x=1&' * 100}"
        sent.append(item)
    async with aiohttp.ClientSession() as session:
        alerts = Alerts(harness, session)
        status, _ = await alerts.send(*sent)
        assert status == 200
        await alerts.settled()
    [incident] = await alerts.incidents()
    incident = await harness.services.incidents.get(incident.id)
    [batch] = [
        c.params["blocks"]
        for c in posts(harness, incident.channel_id or "")
        if "12 alerts firing" in str(c.params["text"])
    ]
    shown = json.dumps(batch, ensure_ascii=False)
    for n in range(10):
        assert f"HighErrorRate{n:02}" in shown, n
    assert "…and 2 more firing" in shown
    assert "Now 12 alerts firing" in shown
    assert harness.double.violations == []  # no link cut in half (the double checks)


async def test_the_declare_form_offers_every_service_of_a_large_catalog(
    make_harness: HarnessFactory,
) -> None:
    # Slack allows 100 options a menu: the form offered the first 100 services (by name) and
    # nothing said the rest were missing; a service past the 100th could not be picked.
    names = [f"svc-{n:03}" for n in range(130)]
    catalog: dict[str, Any] = {name: {} for name in names}
    harness = await make_harness("sqlite", policy=policy_with(services=catalog))
    assert (await harness.command("declare", channel_id="C0GENERAL")).status == 200
    [opened] = await harness.double.wait_for("views.open")
    assert opened.ok, opened.response
    view = opened.response["view"]
    [element] = [b["element"] for b in view["blocks"] if b.get("block_id") == "services"]
    offered = [o["value"] for o in element.get("options", [])] + [
        o["value"] for group in element.get("option_groups", []) for o in group["options"]
    ]
    assert offered == names
    values = {
        "title": {"value": "Latency on the last service"},
        "severity": {"value": {"type": "static_select", "selected_option": {"value": "P3"}}},
        "services": {
            "value": {
                "type": "multi_static_select",
                "selected_options": [{"value": "svc-129"}, {"value": "svc-000"}],
            }
        },
    }
    response = await harness.submit_view("incident_declare", values, view=view, user_id="U0BOB")
    assert response.status == 200 and not response.body
    await harness.double.wait_for("chat.postEphemeral")
    [incident] = await harness.services.incidents.list()
    assert incident.services == ("svc-129", "svc-000")


async def test_the_app_home_counts_the_viewers_incidents_it_does_not_list(
    harness: BotHarness,
) -> None:
    # "Your incidents" listed five and said nothing of the rest: whoever declared or held a
    # role in seven open incidents read five as all of theirs.
    for n in range(7):
        await reply(harness, f"declare P3 Queue backlog {n}", user_id="U0BOB")
    await harness.settle()
    event = {"type": "app_home_opened", "user": "U0BOB", "tab": "home", "channel": "D0BOB"}
    assert (await harness.event(event)).status == 200
    [published] = await harness.double.wait_for("views.publish")
    assert published.ok
    shown = json.dumps(published.params["view"], ensure_ascii=False)
    assert "…and 2 more naming you" in shown


async def test_a_form_that_cannot_open_shows_what_was_typed_as_text(harness: BotHarness) -> None:
    # `/incident postmortem` with words after the ID answers in the form it opened; the
    # error quoted those words as mrkdwn: `<x|y>` became a link, `<@U0EVE>` a mention.
    typed = "&lt;https://e.vil|pay&gt; &lt;@U0EVE&gt;"  # as Slack sends what was typed
    assert (await harness.command(f"postmortem {typed}")).status == 200
    [filled] = await harness.double.wait_for("views.update")
    [block] = filled.params["view"]["blocks"]
    text = block["text"]["text"]
    assert "not '&lt;https://e.vil|pay&gt; &lt;@U0EVE&gt;'" in text, text
