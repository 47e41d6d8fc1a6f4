"""The statistics chart: incidents per week by severity (grouped bars) with the weekly
median MTTR beside it. matplotlib's Agg backend: no display, safe in a server process."""

from __future__ import annotations

import io
import logging

import matplotlib

matplotlib.use("Agg")  # before pyplot: never try to open a window
# Its first run in a fresh home builds a font cache and says so at INFO: noise in our logs.
logging.getLogger("matplotlib").setLevel(logging.WARNING)

from matplotlib.figure import Figure  # noqa: E402

from bot.durations import humanize_seconds  # noqa: E402
from bot.models import Severity  # noqa: E402
from bot.reports.models import Stats  # noqa: E402

# Colour never carries meaning alone: each severity also has its label in the legend.
COLOURS = {
    Severity.P0: "#8b1a1a",
    Severity.P1: "#d9534f",
    Severity.P2: "#f0ad4e",
    Severity.P3: "#5bc0de",
}


def week_labels(stats: Stats) -> list[str]:
    return [week.start.strftime("%d %b") for week in stats.weeks]


def build_figure(stats: Stats) -> Figure:
    """The figure: left, one group of bars per week (one bar per severity); right, MTTR."""
    figure = Figure(figsize=(11, 4.5), dpi=100)
    counts_axes, mttr_axes = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    labels = week_labels(stats)
    positions = list(range(len(labels)))
    width = 0.8 / len(Severity)
    for number, severity in enumerate(Severity):
        offsets = [p - 0.4 + width * (number + 0.5) for p in positions]
        heights = [week.counts.get(severity, 0) for week in stats.weeks]
        counts_axes.bar(
            offsets, heights, width, label=severity.value, color=COLOURS[severity], gid=severity
        )
    counts_axes.set_xticks(positions, labels, rotation=45, ha="right")
    counts_axes.set_title(f"Incidents per week (last {stats.days} days)")
    counts_axes.set_ylabel("incidents")
    counts_axes.yaxis.get_major_locator().set_params(integer=True)
    counts_axes.legend(title="severity")
    hours = [(w.mttr_median or 0) / 3600 for w in stats.weeks]
    mttr_axes.bar(positions, hours, 0.6, color="#555555", gid="mttr")
    # Each bar says its figure: a median of 0 s and a week with nothing resolved both draw
    # no bar, and an on-call reading the chart must tell them apart.
    for position, height, week in zip(positions, hours, stats.weeks, strict=True):
        if week.mttr_median is not None:
            said = humanize_seconds(week.mttr_median)
        elif week.total:
            said = "none resolved"
        else:
            continue  # no incidents that week: the left chart shows it
        mttr_axes.annotate(
            said,
            (position, height),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            rotation=90,
            fontsize=8,
            gid="mttr_label",
        )
    mttr_axes.set_ylim(0, max(hours, default=0) * 1.4 or 1)  # room for the words above
    mttr_axes.set_xticks(positions, labels, rotation=45, ha="right")
    mttr_axes.set_title("Median time to resolve per week")
    mttr_axes.set_ylabel("hours")
    figure.tight_layout()
    return figure


def render_png(stats: Stats) -> bytes:
    """The chart as PNG bytes."""
    buffer = io.BytesIO()
    build_figure(stats).savefig(buffer, format="png")
    return buffer.getvalue()
