"""What the bot shows in Slack stays what it means at Slack's limits and with hostile text:
no `<...>` Slack would read as something else (the harness checks every ack, the double every
message and view), no list cut short without saying so."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import policy_with
from tests.harness import BotHarness


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

