"""The status page in a real browser (Debian's chromium, headless): what a reader's browser
builds from it, at phone and desktop width. The screenshots are written for review into
tests/artifacts/ (ignored by git) and their paths printed."""

from __future__ import annotations

import re

from tests.browser import ARTIFACTS, DESKTOP, PHONE, dump_dom, screenshot
from tests.e2e.incident_helpers import reply
from tests.e2e.status_helpers import base_url, declare_with_services, status_policy

NOTE = "Internal note: failover of db01 was attempted by hand"


async def test_a_public_update_shows_and_an_internal_note_does_not(make_harness) -> None:
    harness = await make_harness(policy=status_policy(), STATUS_REFRESH_SECONDS=0)
    incident = await declare_with_services(
        harness,
        "Checkout API returns 502",
        services=("checkout", "payments"),
        impact="Some customers in the EU cannot pay by card",
    )
    room = (await harness.services.incidents.get(incident.id)).channel_id or ""
    await reply(harness, "update identified A bad deploy; rolling back", channel_id=room)
    await reply(harness, f"note {NOTE}", channel_id=room)
    await reply(harness, "publish", channel_id=room)
    earlier = await declare_with_services(harness, "Slow search results", severity="P3")
    await reply(harness, f"resolve {earlier.id} An index rebuilt; search is fast again")
    await reply(harness, f"publish {earlier.id}")
    url = base_url(harness) + "/status"

    dom = await dump_dom(url)
    text = _visible_text(dom)
    assert "A bad deploy; rolling back" in text
    assert "Checkout API returns 502" in text and "Partial outage" in text
    assert "An index rebuilt; search is fast again" in text  # resolved, in the last 90 days
    assert "db01" not in dom and "Internal note" not in dom
    assert "U0ALICE" not in dom and "<script" not in dom.lower()

    for name, size in (("phone", PHONE), ("desktop", DESKTOP)):
        path = await screenshot(url, ARTIFACTS / f"status-page-{name}.png", size)
        print(f"status page at {name} width: {path}")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_a_title_holding_a_script_shows_as_text(make_harness) -> None:
    harness = await make_harness(policy=status_policy(), STATUS_REFRESH_SECONDS=0)
    incident = await declare_with_services(harness, "<script>alert(1)</script>")
    # As Slack sends what a person typed: `&`, `<` and `>` as entities.
    typed = "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;img src=x onerror=alert(2)&gt;"
    await reply(harness, f"update {incident.id} identified {typed}")
    await reply(harness, f"publish {incident.id}")

    dom = await dump_dom(base_url(harness) + "/status")
    # The browser built no element from them: they are text, escaped again when serialised.
    assert "<script>alert(1)</script>" in _visible_text(dom)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert "<img" not in dom and "<b>" not in dom and "<script" not in dom.lower()
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;img src=x onerror=alert(2)&gt;" in dom


def _visible_text(dom: str) -> str:
    """The DOM's text with its tags removed and entities decoded (what a reader sees)."""
    import html

    body = dom.split("<body>", 1)[-1]
    return html.unescape(re.sub(r"<[^>]+>", " ", body))
