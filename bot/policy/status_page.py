"""`status_page:` in the policy: the components the public status page lists.

Each entry is a component's public name and the catalog services behind it; a bare name is
a component of that one service. Left out, the page lists every catalog service by name.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from bot.schema import Strict

NAME_MAX = 80


class StatusComponent(Strict):
    """One component: `name` as the public reads it, `services` the catalog entries whose
    incidents change its state (left empty: the service called `name`)."""

    name: str = Field(min_length=1, max_length=NAME_MAX)
    services: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @property
    def covers(self) -> frozenset[str]:
        """The services whose open incidents set this component's state."""
        return frozenset(self.services or (self.name,))


def check_components(
    components: list[StatusComponent], services: set[str] | frozenset[str]
) -> list[StatusComponent]:
    """Refuse a component twice, or one covering a service the catalog does not have (a
    bare name covers the service of that name)."""
    seen: set[str] = set()
    for number, component in enumerate(components):
        if component.name in seen:
            raise ValueError(f"status_page.{number}: '{component.name}' is listed twice")
        seen.add(component.name)
        unknown = [name for name in component.covers if name not in services]
        if unknown:
            raise ValueError(
                f"status_page.{number}: '{sorted(unknown)[0][:60]}' is not in services"
            )
    return components
