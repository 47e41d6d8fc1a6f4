"""One run per diagnosis under way: a double click on Diagnose, or a second responder typing
`/diagnose` while the first run still waits on a slow system, starts no second run; the asker
is told who started it, when and where its result goes. A run that ended frees the service."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.incidents.schemas import DeclareIncident
from bot.models import Actor, Severity
from bot.slack import diagnosis_blocks as views
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import pinned_summary, policy_with
from tests.e2e.slow_endpoint import SlowEndpoint
from tests.harness import BotHarness
from tests.waiting import until


async def _harness(make_harness: HarnessFactory, endpoint: SlowEndpoint) -> BotHarness:
    ready = endpoint.url.replace("/health", "/ready")
    return await make_harness(
        "sqlite",
        policy=policy_with(
            services={
                "web": {"http": [{"url": endpoint.url, "timeout": 30}]},
                "api": {"http": [{"url": ready, "timeout": 30}]},
            },
            roles={"responders": ["U0ALICE", "U0BOB"]},
        ),
    )


def _summaries(harness: BotHarness, channel: str, service: str = "web") -> list[dict[str, Any]]:
    return [
        c.response["message"]
        for c in harness.double.calls_to("chat.postMessage")
        if c.ok
        and c.response.get("channel") == channel
        and str(c.params.get("text", "")).startswith(f"Diagnosis of {service}:")
        and not c.params.get("thread_ts")
    ]


async def test_a_second_diagnose_while_one_runs_is_told_and_starts_nothing(
    make_harness: HarnessFactory, slow_endpoint: SlowEndpoint
) -> None:
    harness = await _harness(make_harness, slow_endpoint)
    await harness.command("web", command="/diagnose", user_id="U0ALICE", channel_id="C0OPS")
    [started] = await harness.replies()
    assert started["text"].startswith("Diagnosing `web`")
    await until(lambda: len(slow_endpoint.hits) == 1, "the first run to reach the endpoint")

    # Bob asks while Alice's run still waits on the endpoint (same service, no checks named).
    await harness.command("WEB", command="/diagnose", user_id="U0BOB", channel_id="C0OTHER")
    [told] = await harness.replies()
    assert "Diagnosing" not in told["text"]
    assert "A diagnosis of `web` is already running (started by <@U0ALICE>, since" in told["text"]
    assert "its result will be posted in <#C0OPS>" in told["text"]
    assert "No second run was started" in told["text"]
    # A different check set is a different run: not held up by Alice's.
    assert harness.services.diagnostics.running("web", ["http"]) is None

    slow_endpoint.gate.set()
    await harness.settle()
    await until(lambda: len(_summaries(harness, "C0OPS")) == 1, "Alice's summary")
    assert slow_endpoint.hits == ["/health"]  # one run for two askers
    assert _summaries(harness, "C0OTHER") == []
    assert harness.services.diagnostics.running("web") is None  # freed once it ended

    async def refused() -> bool:
        outcomes = [(e.actor, e.outcome) async for e in harness.services.audit.entries()]
        return ("U0BOB", "refused: already running") in outcomes

    await until(refused, "Bob's refusal on the record")

    # Once the run has ended, the next request runs again.
    await harness.command("web", command="/diagnose", user_id="U0BOB", channel_id="C0OTHER")
    [again] = await harness.replies()
    assert again["text"].startswith("Diagnosing `web`")
    await harness.settle()
    await until(lambda: len(_summaries(harness, "C0OTHER")) == 1, "Bob's own summary")
    assert len(slow_endpoint.hits) == 2


async def test_a_double_click_on_diagnose_runs_the_checks_once(
    make_harness: HarnessFactory, slow_endpoint: SlowEndpoint
) -> None:
    harness = await _harness(make_harness, slow_endpoint)
    incident = await harness.services.incidents.declare(
        DeclareIncident(severity=Severity.P1, title="Web slow", services=("web",)),
        Actor("U0ALICE"),
    )
    await harness.settle()
    incident = await harness.services.incidents.get(incident.id)
    room = incident.channel_id or ""
    card = pinned_summary(harness, room)

    async def click(user: str) -> None:
        response = await harness.click(
            views.DIAGNOSE_ACTION,
            value=incident.id,
            message=card,
            channel_id=room,
            message_ts=card["ts"],
            user_id=user,
        )
        assert response.status == 200

    await asyncio.gather(click("U0ALICE"), click("U0ALICE"), click("U0BOB"))
    answers = sorted(r["text"] for r in await harness.replies(3))
    assert len([a for a in answers if a.startswith("Diagnosing `web`")]) == 1, answers
    running = [a for a in answers if "is already running" in a]
    assert len(running) == 2 and all(f"posted in <#{room}>" in a for a in running), answers
    await until(lambda: len(slow_endpoint.hits) == 1, "the one run to reach the endpoint")

    slow_endpoint.gate.set()
    await harness.settle()
    await until(lambda: len(_summaries(harness, room)) == 1, "the one summary")
    await harness.settle()
    _, events = await harness.services.incidents.with_timeline(incident.id)
    assert len([e for e in events if e.kind == "diagnosed"]) == 1
    assert slow_endpoint.hits == ["/health"]
    assert len(_summaries(harness, room)) == 1


async def test_a_run_cut_short_does_not_hold_the_service(
    make_harness: HarnessFactory, slow_endpoint: SlowEndpoint
) -> None:
    # As the alert path's timeout cuts its run: cancelled mid-check, the service is free.
    harness = await _harness(make_harness, slow_endpoint)
    diagnostics = harness.services.diagnostics
    run = asyncio.ensure_future(diagnostics.diagnose("web", Actor("U0ALICE")))
    await until(lambda: len(slow_endpoint.hits) == 1, "the run to reach the endpoint")
    assert diagnostics.running("web") is not None
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert diagnostics.running("web") is None

    slow_endpoint.gate.set()
    diagnosis = await diagnostics.diagnose("web", Actor("U0BOB"))
    assert diagnosis.report.service == "web" and len(slow_endpoint.hits) == 2


async def test_a_service_named_twice_on_an_incident_is_diagnosed_once_by_the_button(
    make_harness: HarnessFactory, slow_endpoint: SlowEndpoint
) -> None:
    # The declaration form keeps "Web" and "web" apart; the button ran and posted both.
    harness = await _harness(make_harness, slow_endpoint)
    slow_endpoint.gate.set()
    incident = await harness.services.incidents.declare(
        DeclareIncident(severity=Severity.P1, title="Web slow", services=("Web", "web")),
        Actor("U0ALICE"),
    )
    await harness.settle()
    incident = await harness.services.incidents.get(incident.id)
    room = incident.channel_id or ""
    card = pinned_summary(harness, room)
    await harness.click(
        views.DIAGNOSE_ACTION, value=incident.id, channel_id=room, message=card, user_id="U0BOB"
    )
    [started] = await harness.replies()
    assert started["text"].lower().startswith("diagnosing `web`")

    async def audited() -> bool:
        actions = [e.action async for e in harness.services.audit.entries()]
        return "diagnose.button" in actions

    await until(audited, "the click to be done and audited")
    await harness.settle()
    assert slow_endpoint.hits == ["/health"] and len(_summaries(harness, room)) == 1


async def test_a_second_click_while_an_incidents_services_run_starts_none_of_them(
    make_harness: HarnessFactory, slow_endpoint: SlowEndpoint
) -> None:
    # The button ran an incident's services one after another: a second click, refused on
    # the first, ran the second service; the first click then ran that service again.
    harness = await _harness(make_harness, slow_endpoint)
    incident = await harness.services.incidents.declare(
        DeclareIncident(severity=Severity.P1, title="Web slow", services=("web", "api")),
        Actor("U0ALICE"),
    )
    await harness.settle()
    incident = await harness.services.incidents.get(incident.id)
    room = incident.channel_id or ""
    card = pinned_summary(harness, room)
    await harness.click(
        views.DIAGNOSE_ACTION, value=incident.id, channel_id=room, message=card, user_id="U0ALICE"
    )
    # Both under way at once (one after another, the second waited for the first to end).
    await until(lambda: len(slow_endpoint.hits) == 2, "both runs to reach their endpoints")
    first = sorted(r["text"][:16] for r in await harness.replies(2))
    assert first == ["Diagnosing `api`", "Diagnosing `web`"]

    await harness.click(
        views.DIAGNOSE_ACTION, value=incident.id, channel_id=room, message=card, user_id="U0BOB"
    )
    second = await harness.replies(2)
    assert all("is already running" in r["text"] for r in second), second

    slow_endpoint.gate.set()
    await harness.settle()
    for service in ("web", "api"):
        await until(lambda s=service: len(_summaries(harness, room, s)) == 1, service)

    async def both_clicks_done() -> bool:
        actions = [e.action async for e in harness.services.audit.entries()]
        return actions.count("diagnose.button") == 2

    await until(both_clicks_done, "both clicks to be done and audited")
    await harness.settle()
    assert sorted(slow_endpoint.hits) == ["/health", "/ready"]
    assert len(_summaries(harness, room, "api")) == 1


async def test_a_service_and_its_checks_may_be_written_with_commas(
    make_harness: HarnessFactory, slow_endpoint: SlowEndpoint
) -> None:
    # `/diagnose web,http` answered "No service called 'webhttp'"; the answer said every
    # check runs even when only some were named.
    slow_endpoint.gate.set()
    harness = await _harness(make_harness, slow_endpoint)
    await harness.command("web,http", command="/diagnose", user_id="U0ALICE", channel_id="C0OPS")
    [started] = await harness.replies()
    assert started["text"] == "Diagnosing `web`: the `http` checks run now; results here shortly."
    await harness.settle()
    await until(lambda: len(_summaries(harness, "C0OPS")) == 1, "the summary")
    response = await harness.command(",", command="/diagnose", user_id="U0ALICE")
    assert "Usage: `/diagnose" in str(response.body)  # on the ack, as for no words at all


async def test_the_started_answer_names_the_service_and_checks_as_the_catalog_does(
    make_harness: HarnessFactory, slow_endpoint: SlowEndpoint
) -> None:
    # `/diagnose WEB` said "Diagnosing `WEB`", echoing the typing, not the catalog's name
    # (the summary and the refusal of a second asker say `web`).
    slow_endpoint.gate.set()
    harness = await _harness(make_harness, slow_endpoint)
    await harness.command(
        "WEB HTTP Http", command="/diagnose", user_id="U0ALICE", channel_id="C0OPS"
    )
    [started] = await harness.replies()
    assert started["text"] == "Diagnosing `web`: the `http` checks run now; results here shortly."
    await harness.settle()
    await until(lambda: len(_summaries(harness, "C0OPS")) == 1, "the summary")


async def test_naming_every_check_is_the_same_run_as_naming_none(
    make_harness: HarnessFactory, slow_endpoint: SlowEndpoint
) -> None:
    # `/diagnose web http` (web's only check) started a second run beside `/diagnose web`,
    # though they are the same checks: twice the load on the system being diagnosed.
    harness = await _harness(make_harness, slow_endpoint)
    await harness.command("web", command="/diagnose", user_id="U0ALICE", channel_id="C0OPS")
    [started] = await harness.replies()
    assert started["text"].startswith("Diagnosing `web`: every check runs")
    await until(lambda: len(slow_endpoint.hits) == 1, "the first run to reach the endpoint")
    await harness.command("web http", command="/diagnose", user_id="U0BOB", channel_id="C0OPS")
    [told] = await harness.replies()
    assert "A diagnosis of `web` is already running (started by <@U0ALICE>" in told["text"]
    slow_endpoint.gate.set()
    await until(lambda: len(_summaries(harness, "C0OPS")) == 1, "Alice's summary")
    assert slow_endpoint.hits == ["/health"]
    # Alone, it runs.
    await harness.command("web http", command="/diagnose", user_id="U0BOB", channel_id="C0OPS")
    [again] = await harness.replies()
    assert again["text"].startswith("Diagnosing `web`: the `http` checks run"), again
    # Its summary, so the bot is not stopped with the run under way (a stop waits for it).
    await until(lambda: len(_summaries(harness, "C0OPS")) == 2, "Bob's summary")
