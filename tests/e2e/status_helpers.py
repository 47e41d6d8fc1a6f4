"""Helpers for the status page tests: a policy with components, an incident declared with
services, and GETs against the bot's own HTTP server."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDict

from bot.incidents.schemas import DeclareIncident
from bot.models import Actor, Incident
from bot.policy import Policy
from tests.e2e.incident_helpers import policy_with
from tests.harness import BotHarness

ATOM = "{http://www.w3.org/2005/Atom}"


def status_policy(**changes: Any) -> Policy:
    """Two catalog services; the page lists "Checkout" (checkout) and payments by name."""
    services = {
        "checkout": {"http": [{"url": "http://127.0.0.1:9/health"}]},
        "payments": {"http": [{"url": "http://127.0.0.1:9/health"}]},
    }
    components = [{"name": "Checkout", "services": ["checkout"]}, "payments"]
    return policy_with(services=services, status_page=components, **changes)


async def declare_with_services(
    harness: BotHarness,
    title: str,
    *,
    severity: str = "P1",
    services: tuple[str, ...] = ("checkout",),
    impact: str = "",
) -> Incident:
    """Declared through the service (the typed command names no services); the rest of
    each test drives the bot through Slack."""
    incident = await harness.services.incidents.declare(
        DeclareIncident(severity=severity, title=title, services=services, impact=impact),
        Actor("U0ALICE"),
    )
    await harness.settle()
    return incident


@dataclass
class Got:
    status: int
    headers: CIMultiDict[str]  # case-insensitive, as HTTP headers are
    text: str


def base_url(harness: BotHarness) -> str:
    return f"http://127.0.0.1:{harness.bot.port}"


async def get(harness: BotHarness, path: str, **headers: str) -> Got:
    async with (
        aiohttp.ClientSession() as session,
        session.get(base_url(harness) + path, headers=headers) as response,
    ):
        return Got(response.status, CIMultiDict(response.headers), await response.text())


def atom_entries(feed_text: str) -> list[ET.Element]:
    """The feed's entries, after checking it is Atom with the elements Atom requires."""
    root = ET.fromstring(feed_text)
    assert root.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated"):
        element = root.find(f"{ATOM}{name}")
        assert element is not None and (element.text or "").strip(), f"feed/{name}"
    assert root.find(f"{ATOM}author/{ATOM}name") is not None  # required without entry authors
    entries = root.findall(f"{ATOM}entry")
    for entry in entries:
        for name in ("id", "title", "updated"):
            element = entry.find(f"{ATOM}{name}")
            assert element is not None and (element.text or "").strip(), f"entry/{name}"
    return entries
