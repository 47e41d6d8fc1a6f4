"""The paging adapters against the PagerDuty and Opsgenie doubles over HTTP: what they send,
and how each answer becomes a NotifierError (retryable or not, retry_after)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from bot.errors import NotifierError
from bot.models import Severity
from bot.paging.http import Breaker
from bot.paging.oncall import OnCallResolver
from bot.paging.opsgenie import OpsgeniePager
from bot.paging.pagerduty import PagerDutyPager
from bot.paging.ports import Alert
from bot.policy.paging import OpsgenieConfig, PagerDutyConfig
from tests.local_http import serving
from tests.paging_doubles import Answer, OpsgenieDouble, PagerDutyDouble, PdOnCall

KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


@pytest.fixture
async def pd() -> AsyncIterator[PagerDutyDouble]:
    double = PagerDutyDouble(routing_key=KEY, api_key="rest-key")
    await double.start()
    yield double
    await double.stop()


@pytest.fixture
async def og() -> AsyncIterator[OpsgenieDouble]:
    double = OpsgenieDouble(api_key="genie-key")
    await double.start()
    yield double
    await double.stop()


def _alert(summary: str = "INC-20261127-001 (P0): Checkout down") -> Alert:
    return Alert(
        incident_id="INC-20261127-001",
        title="Checkout down",
        severity=Severity.P0,
        summary=summary,
        link="https://slack.com/app_redirect?channel=C0WAR",
        level=1,
        details={"services": "checkout"},
    )


def _pagerduty(
    pd: PagerDutyDouble, session: aiohttp.ClientSession, **config: str
) -> PagerDutyPager:
    async def opened() -> aiohttp.ClientSession:
        return session

    settings = PagerDutyConfig(
        routing_key_env="K", api_key_env="A", events_url=pd.url, api_url=pd.url, **config
    )
    return PagerDutyPager(settings, routing_key=KEY, api_key="rest-key", session=opened)


async def test_pagerduty_events_and_the_answers_they_get(
    pd: PagerDutyDouble, session: aiohttp.ClientSession
) -> None:
    pager = _pagerduty(pd, session)
    await pager.trigger(_alert())
    await pager.trigger(_alert())  # a retry: de-duplicated into the same incident
    await pager.acknowledge("INC-20261127-001")
    assert pd.actions() == ["trigger", "trigger", "acknowledge"]
    assert pd.incidents["INC-20261127-001"].triggers == 2
    assert pd.events[0]["payload"]["severity"] == "critical"
    assert pd.events[0]["payload"]["component"] == "checkout"

    pd.fail_next(Answer(429), Answer(500), Answer(503, retry_after=7))
    with pytest.raises(NotifierError) as limited:
        await pager.resolve("INC-20261127-001")
    assert limited.value.retryable and limited.value.retry_after == 1.0
    with pytest.raises(NotifierError) as down:
        await pager.resolve("INC-20261127-001")
    assert down.value.retryable and down.value.retry_after is None
    with pytest.raises(NotifierError) as later:
        await pager.resolve("INC-20261127-001")
    assert later.value.retry_after == 7.0

    # Refused for good (400): a person must fix it; PagerDuty's own words are kept.
    with pytest.raises(NotifierError) as refused:
        await pager.trigger(_alert(summary=""))
    assert not refused.value.retryable
    assert "payload.summary" in str(refused.value)
    pd.violations.clear()


async def test_a_wrong_routing_key_is_not_retried_and_not_shown(
    pd: PagerDutyDouble, session: aiohttp.ClientSession
) -> None:
    pager = _pagerduty(pd, session)
    pager._routing_key = "f" * 32
    with pytest.raises(NotifierError) as refused:
        await pager.trigger(_alert())
    assert not refused.value.retryable and "f" * 32 not in str(refused.value)
    pd.violations.clear()


async def test_an_unreachable_provider_is_retryable(session: aiohttp.ClientSession) -> None:
    async def opened() -> aiohttp.ClientSession:
        return session

    config = PagerDutyConfig(routing_key_env="K", events_url="http://127.0.0.1:1")
    pager = PagerDutyPager(config, routing_key=KEY, api_key=None, session=opened)
    with pytest.raises(NotifierError) as caught:
        await pager.trigger(_alert())
    assert caught.value.retryable and caught.value.error_code == "unreachable"


async def test_pagerduty_on_call_from_a_schedule_or_an_escalation_policy(
    pd: PagerDutyDouble, session: aiohttp.ClientSession
) -> None:
    jane = pd.add_user("PJANE01", "Jane", "jane@example.com")
    lead = pd.add_user("PLEAD01", "Lee", "lee@example.com")
    pd.oncalls += [PdOnCall(jane, schedule="P0SCHED"), PdOnCall(lead, level=2)]
    assert await _pagerduty(pd, session, schedule="P0SCHED").oncall_emails() == ["jane@example.com"]
    # An escalation policy: whoever stands at its first level.
    by_policy = _pagerduty(pd, session, escalation_policy="PEP0001")
    assert await by_policy.oncall_emails() == ["jane@example.com"]
    assert await by_policy.person_email("PLEAD01") == "lee@example.com"
    assert await _pagerduty(pd, session).oncall_emails() is None  # no schedule: not asked


async def test_opsgenie_alerts_and_schedule(
    og: OpsgenieDouble, session: aiohttp.ClientSession
) -> None:
    async def opened() -> aiohttp.ClientSession:
        return session

    config = OpsgenieConfig(api_key_env="K", team="sre", schedule="sre", api_url=og.url)
    pager = OpsgeniePager(config, api_key="genie-key", session=opened)
    await pager.trigger(_alert())
    await pager.trigger(_alert())  # a retry: one open alert per alias
    await pager.acknowledge("INC-20261127-001")
    await pager.resolve("INC-20261127-001")
    alert = og.alerts["INC-20261127-001"]
    assert (alert.count, alert.acknowledged, alert.status, alert.priority) == (
        2,
        True,
        "closed",
        "P1",
    )
    og.schedules["sre"] = ["omar@example.com"]
    assert await pager.oncall_emails() == ["omar@example.com"]

    # A message Opsgenie refuses (422) is not retried; a 429 is, after a second.
    with pytest.raises(NotifierError) as refused:
        await pager.trigger(_alert(summary=""))
    assert not refused.value.retryable and "Message can not be empty" in str(refused.value)
    og.fail_next(Answer(429))
    with pytest.raises(NotifierError) as limited:
        await pager.acknowledge("INC-20261127-001")
    assert limited.value.retryable and limited.value.retry_after == 1.0
    og.violations.clear()


class _People:
    def __init__(self, known: dict[str, str]) -> None:
        self.known = known
        self.asked: list[str] = []

    async def user_by_email(self, email: str) -> str | None:
        self.asked.append(email)
        return self.known.get(email)


async def test_on_call_is_cached_and_served_stale_when_the_provider_fails(
    og: OpsgenieDouble, session: aiohttp.ClientSession
) -> None:
    async def opened() -> aiohttp.ClientSession:
        return session

    config = OpsgenieConfig(api_key_env="K", schedule="sre", api_url=og.url)
    pager = OpsgeniePager(config, api_key="genie-key", session=opened)
    og.schedules["sre"] = ["omar@example.com", "ghost@example.com"]
    people = _People({"omar@example.com": "U0OMAR"})
    clock = [0.0]
    resolver = OnCallResolver({"opsgenie": pager}, people, ttl=60, monotonic=lambda: clock[0])

    first = await resolver.now("opsgenie")
    assert first is not None
    assert (first.users, first.unmatched) == (("U0OMAR",), ("ghost@example.com",))
    await resolver.now("opsgenie")
    assert og.seen == 1  # cached
    clock[0] = 61.0
    og.fail_next(Answer(503))
    stale = await resolver.now("opsgenie")
    assert stale is not None and stale.stale and stale.users == ("U0OMAR",)
    assert await resolver.slack_users(["opsgenie"]) == ["U0OMAR"]

    fresh = OnCallResolver({"opsgenie": pager}, people, ttl=60)
    og.fail_next(Answer(500))
    down = await fresh.now("opsgenie")
    assert down is not None and not down.reachable and down.users == ()

    # A refusal for good is no outage: the schedule was deleted (or the key revoked), and
    # whoever it named last is no longer on call. They were paged for every incident since.
    clock[0] = 200.0
    del og.schedules["sre"]
    gone = await resolver.now("opsgenie")
    assert gone is not None and gone.users == () and not gone.stale and gone.refused
    assert await resolver.slack_users(["opsgenie"]) == []
    og.fail_next(Answer(503))  # and a later outage has nothing earlier to fall back on
    later = await resolver.now("opsgenie")
    assert later is not None and not later.stale and later.users == ()


@pytest.mark.parametrize("user_id", ["../../oncalls?x=1", "..", "P1%2F..", "PJANE01/../x", ""])
async def test_an_id_from_outside_never_leaves_its_path_segment(
    pd: PagerDutyDouble, og: OpsgenieDouble, session: aiohttp.ClientSession, user_id: str
) -> None:
    """The adapters check an identifier's shape where it becomes a URL path, whatever checked
    it before: refused for good, and no request is sent."""
    with pytest.raises(NotifierError, match="not a well-formed PagerDuty user ID") as refused:
        await _pagerduty(pd, session).person_email(user_id)
    assert not refused.value.retryable

    async def opened() -> aiohttp.ClientSession:
        return session

    opsgenie = OpsgeniePager(
        OpsgenieConfig(api_key_env="K", api_url=og.url), api_key="k" * 8, session=opened
    )
    with pytest.raises(NotifierError, match="not a well-formed Opsgenie alert alias") as alias:
        await opsgenie.acknowledge(user_id)
    assert not alias.value.retryable
    assert (pd.paths, og.paths) == ([], [])


async def test_calls_that_hang_side_by_side_open_the_breaker_once_not_for_longer(
    pd: PagerDutyDouble, session: aiohttp.ClientSession
) -> None:
    """Provider calls are delivered side by side: a trigger and an on-call lookup both wait
    on a provider that stopped answering. Each timeout doubled the cooldown, so one silence
    kept PagerDuty given up on for 60 s, not 30: the pages went out half a minute late."""
    now = [1000.0]
    pager = _pagerduty(pd, session, schedule="P0SCHED")
    pager.timeout, pager.breaker = 0.2, Breaker(monotonic=lambda: now[0])
    pd.hang()
    both = await asyncio.gather(
        pager.trigger(_alert()), pager.oncall_emails(), return_exceptions=True
    )
    assert all(isinstance(e, NotifierError) and e.retryable for e in both), both
    assert len(pd.paths) == 2  # both were under way when it stopped answering

    pd.answer_again()
    now[0] += 31  # the cooldown of one silence has passed: the next call goes through
    await pager.trigger(_alert())  # raised "unreachable", given up on for 29 s more


@pytest.mark.parametrize(
    ("status", "text", "said"),
    [
        (202, "[" * 100_000 + "]" * 100_000, "not JSON"),
        (202, '{"status": "success", "dedup_key": NaN}', "not JSON"),
        # The provider's words go into the error, then the timeline and the audit's hash:
        # a lone surrogate (which UTF-8 cannot encode) was kept in them.
        (400, '{"status": "invalid event", "message": "bad \\ud800"}', "HTTP 400"),
    ],
    ids=["nested", "nan", "surrogate"],
)
async def test_a_provider_answering_json_no_store_can_keep_is_an_error_not_a_crash(
    session: aiohttp.ClientSession, status: int, text: str, said: str
) -> None:
    """A provider (or whatever answers at its address) whose answer is JSON nested past
    Python's recursion limit, holds NaN or a lone surrogate: a NotifierError saying so, as
    for any unreadable body (the first was a RecursionError escaping the adapter), whose
    text UTF-8 can encode."""

    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=status, text=text, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v2/enqueue", answer)

    async def opened() -> aiohttp.ClientSession:
        return session

    async with serving(app) as url:
        config = PagerDutyConfig(routing_key_env="K", events_url=url)
        pager = PagerDutyPager(config, routing_key=KEY, api_key=None, session=opened)
        with pytest.raises(NotifierError) as caught:
            await pager.trigger(_alert())
    assert said in str(caught.value)
    str(caught.value).encode()  # no lone surrogate
