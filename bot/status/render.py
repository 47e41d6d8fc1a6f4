"""The status document as HTML, JSON and Atom. Jinja2 autoescapes the HTML and the feed, so
whatever a person typed (a title like `<script>`) shows as text; the page needs no script.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

from bot.status.models import ComponentState, StatusDocument

if TYPE_CHECKING:
    from jinja2 import Environment

FEED_ID = "urn:chatops-bot:status"


def _when(value: datetime) -> str:
    """A time every reader reads the same way, without a script: UTC, in words."""
    return value.astimezone(UTC).strftime("%d %b %Y, %H:%M UTC").lstrip("0")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@cache
def _env() -> Environment:
    # Jinja2 is imported on the first render: a process whose status page is never asked
    # for does not hold it (about 3 MB; bench/README.md, memory).
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("bot.status", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "atom"), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["iso"] = _iso
    return env


def render_html(doc: StatusDocument) -> str:
    return _env().get_template("status.html").render(doc=doc)


def render_atom(doc: StatusDocument, *, epoch: datetime) -> str:
    """One entry per incident shown (its updates in its content), newest change first.
    `epoch` stands for `updated` when nothing was ever published (Atom requires one)."""
    incidents = sorted(
        [*doc.open_incidents, *doc.resolved_incidents],
        key=lambda incident: incident.updated_at,
        reverse=True,
    )
    feed = _env().get_template("feed.atom")
    return feed.render(
        doc=doc, incidents=incidents, feed_id=FEED_ID, updated=doc.updated_at or epoch
    )


def render_json(doc: StatusDocument) -> str:
    """The document itself: every field is public by construction (bot.status.models)."""
    data = doc.model_dump(mode="json")
    data["state_label"] = doc.state.label
    for component in data["components"]:
        component["state_label"] = ComponentState(component["state"]).label
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
