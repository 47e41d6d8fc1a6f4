"""War-room channel names: `inc-YYYYMMDD-NNN-<slug of the title>`, within Slack's rules.

Slack accepts lowercase letters, digits, hyphens and underscores, at most 80 characters, and
answers `name_taken` for a name in use (archived channels included); the caller then tries
`war_room_name(..., attempt=2)`, `3`, ... which end in `-2`, `-3`, ...
"""

from __future__ import annotations

import unicodedata

CHANNEL_NAME_MAX = 80
# Enough tries for a title reused all day; beyond that a person should pick the name.
MAX_ATTEMPTS = 9


def slugify(text: str) -> str:
    """`Checkout API: 502s (EU)` -> `checkout-api-502s-eu`; accents dropped, other scripts kept.

    Anything that is not a lowercase letter or digit becomes one hyphen; no hyphen at either
    end. May be empty (a title of punctuation only).
    """
    # NFKD splits "é" into "e" + a combining accent; accents on Latin letters are dropped,
    # other marks (the voicing mark of "が") are kept and recomposed at the end.
    decomposed = unicodedata.normalize("NFKD", text.lower())
    kept: list[str] = []
    for char in decomposed:
        if unicodedata.combining(char):
            if kept and kept[-1] != "-" and not kept[-1].isascii():
                kept.append(char)
            continue
        # Uppercase survivors (a lower() that changed nothing) are not allowed either.
        if char.isalnum() and char == char.lower():
            kept.append(char)
        elif kept and kept[-1] != "-":
            kept.append("-")
    recomposed = unicodedata.normalize("NFC", "".join(kept))
    # A mark with no precomposed form left would make the name invalid: drop it.
    return "".join(c for c in recomposed if not unicodedata.combining(c)).strip("-")


DRILL_PREFIX = "drill-"


def war_room_name(incident_id: str, title: str, *, attempt: int = 1, drill: bool = False) -> str:
    """The channel name for an incident's war room; `attempt` > 1 adds `-<attempt>`, and a
    drill's room starts `drill-` (`drill-inc-...`), so nobody takes it for a real one.

    The incident ID part always survives whole; the title slug is cut (at a hyphen when one
    is near) so that the whole name, suffix included, fits in 80 characters.
    """
    prefix = (DRILL_PREFIX if drill else "") + incident_id.lower()
    suffix = f"-{attempt}" if attempt > 1 else ""
    room = CHANNEL_NAME_MAX - len(prefix) - len(suffix) - 1  # 1 for the joining hyphen
    slug = slugify(title)
    if len(slug) > room:
        cut = slug[:room]
        # Prefer a whole word when cutting loses less than a third of the space.
        hyphen = cut.rfind("-")
        slug = cut[:hyphen] if hyphen > room * 2 // 3 else cut
        slug = slug.strip("-")
    name = f"{prefix}-{slug}" if slug else prefix
    return (name + suffix)[:CHANNEL_NAME_MAX]
