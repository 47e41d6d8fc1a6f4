"""War-room channel names obey Slack's rules (bot.incidents.naming)."""

from __future__ import annotations

import pytest

from bot.console.workspace.state import channel_name_error
from bot.incidents.naming import CHANNEL_NAME_MAX, slugify, war_room_name

ID = "INC-20261127-001"


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Checkout API returns 502", "checkout-api-returns-502"),
        ("Checkout API: 502s (EU)!", "checkout-api-502s-eu"),
        ("  --Payments -- down__now  ", "payments-down-now"),
        ("Café déjà vu", "cafe-deja-vu"),
        ("Straße gesperrt", "straße-gesperrt"),
        ("決済が停止", "決済が停止"),
        ("!!!", ""),
        ("DB CPU 95%", "db-cpu-95"),
    ],
)
def test_slugify(title: str, slug: str) -> None:
    assert slugify(title) == slug


def test_name_is_the_incident_id_and_the_slug() -> None:
    assert war_room_name(ID, "Checkout API returns 502") == (
        "inc-20261127-001-checkout-api-returns-502"
    )
    assert war_room_name(ID, "???") == "inc-20261127-001"


def test_taken_names_get_a_suffix() -> None:
    assert war_room_name(ID, "Checkout down", attempt=2) == "inc-20261127-001-checkout-down-2"
    assert war_room_name(ID, "Checkout down", attempt=9).endswith("-9")


@pytest.mark.parametrize("attempt", [1, 2, 9])
def test_long_titles_are_cut_to_80_characters_keeping_the_id(attempt: int) -> None:
    title = "Checkout and payments API gateway returns intermittent 502 errors " * 3
    name = war_room_name(ID, title, attempt=attempt)
    assert len(name) <= CHANNEL_NAME_MAX
    assert name.startswith("inc-20261127-001-checkout-and-payments")
    assert not name.rstrip("-0123456789").endswith("-")
    if attempt > 1:
        assert name.endswith(f"-{attempt}")
    assert channel_name_error(name) is None


@pytest.mark.parametrize(
    "title",
    [
        "Ünïcödé ÉVERYWHERE",
        "a" * 200,
        "x-" * 100,
        "Emoji 🔥 fire 🔥",
        "tab\tand\nnewline",
        "İstanbul",
    ],
)
def test_every_name_is_one_slack_accepts(title: str) -> None:
    for attempt in (1, 2):
        name = war_room_name(ID, title, attempt=attempt)
        assert channel_name_error(name) is None, name
        assert name == name.lower() and len(name) <= CHANNEL_NAME_MAX
