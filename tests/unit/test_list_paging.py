"""`/incident list [open|all] [page N]`: the page is read from the text (issue 7.4)."""

from __future__ import annotations

import pytest

from bot.errors import UsageError
from bot.incidents.parsing import parse_list
from bot.incidents.schemas import ListIncidents
from bot.models import IncidentPage


@pytest.mark.parametrize(
    ("text", "open_only", "page"),
    [
        ("", True, 1),
        ("all", False, 1),
        ("all page 2", False, 2),
        ("ALL Page 3", False, 3),
        ("page 4", True, 4),
        ("open page 5", True, 5),
    ],
)
def test_list_pages(text: str, open_only: bool, page: int) -> None:
    command = parse_list(text)
    assert (command.open_only, command.page) == (open_only, page)


@pytest.mark.parametrize("text", ["all page 0", "all page two", "all page 99999999", "page -1"])
def test_bad_pages_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="page"):
        parse_list(text)


def test_a_page_knows_what_comes_after_it() -> None:
    page = IncidentPage(incidents=(), total=101, page=2, page_size=50, open_only=False)
    assert (page.pages, page.after) == (3, 1)
    assert IncidentPage((), 0, 1, 50, True).pages == 1
    assert ListIncidents().page == 1
