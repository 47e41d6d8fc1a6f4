"""Grading a number against a threshold band, and saying what it was held against."""

from __future__ import annotations

from bot.catalog import Band
from bot.diagnostics.findings import Grade


def grade_above(value: float, band: Band) -> Grade:
    """Higher is worse: CRIT beyond `crit`, WARN beyond `warn`."""
    if band.crit is not None and value > band.crit:
        return Grade.CRIT
    return Grade.WARN if value > band.warn else Grade.OK


def grade_below(value: float, band: Band) -> Grade:
    """Lower is worse (a cache hit ratio)."""
    if band.crit is not None and value < band.crit:
        return Grade.CRIT
    return Grade.WARN if value < band.warn else Grade.OK


def describe_above(band: Band, unit: str = "") -> str:
    text = f"warn > {band.warn:g}{unit}"
    return text + (f", crit > {band.crit:g}{unit}" if band.crit is not None else "")


def describe_below(band: Band, unit: str = "") -> str:
    text = f"warn < {band.warn:g}{unit}"
    return text + (f", crit < {band.crit:g}{unit}" if band.crit is not None else "")


def seconds_words(seconds: float) -> str:
    """Ages as people read them: 45 s, 12 min, 3.5 h."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def size_words(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def grade_at_least(value: float, band: Band) -> Grade:
    """Counts: WARN from `warn` on, CRIT from `crit` on."""
    if band.crit is not None and value >= band.crit:
        return Grade.CRIT
    return Grade.WARN if value >= band.warn else Grade.OK


def describe_at_least(band: Band, unit: str = "") -> str:
    text = f"warn ≥ {band.warn:g}{unit}"
    return text + (f", crit ≥ {band.crit:g}{unit}" if band.crit is not None else "")
