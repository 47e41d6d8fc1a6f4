"""Prometheus: the catalog's queries graded against their levels, the service's scrape
targets (`up{<selector>}`: any at 0 is down) and its firing alerts
(`ALERTS{alertstate="firing", <selector>}`).

Grading:
- a query: its worst series against `{warn, crit}` (higher is worse unless `lower_is_worse`);
  no series, or NaN (0/0 with no traffic), is WARN: nothing confirms the service is well.
- targets: none matching the selector is WARN (the selector is probably wrong), some down
  WARN, all down CRIT.
- alerts: any firing is WARN, CRIT when one has `severity` critical, page, P0 or P1.
The queries run concurrently; when every one fails (Prometheus unreachable, hung, refusing)
the whole check fails (one CRIT, like every other system), while a query that fails alone (one
Prometheus rejects, or times out on its side) is that query's CRIT.
Evidence lists at most `MAX_LINES` series, each clipped, so the thread stays within Slack's
limits whatever a query returns.
"""

from __future__ import annotations

from typing import Any

from bot.catalog import PrometheusQuery, PrometheusTarget
from bot.diagnostics.findings import Check, Finding, Grade
from bot.diagnostics.grading import describe_above, describe_below, grade_above, grade_below
from bot.targets.errors import TargetError
from bot.targets.prometheus import PrometheusClient, Sample

MAX_LINES = 10
_LABELS_SHOWN = 200
_CRITICAL_SEVERITIES = frozenset({"critical", "page", "p0", "p1"})


def checks(target: PrometheusTarget, service: str, client: PrometheusClient) -> list[Check]:
    matchers = target.matchers(service)

    async def run() -> list[Finding]:
        exprs = [
            f"up{{{matchers}}}",
            f'ALERTS{{alertstate="firing", {matchers}}}',
            *(query.expr for query in target.queries),
        ]
        answers = await client.query_many(exprs)
        failures = [a for a in answers if isinstance(a, TargetError)]
        if len(failures) == len(answers):
            raise failures[0]  # Prometheus itself is down: one CRIT for the whole check
        up, alerts, *values = answers
        findings = [_targets(up, matchers), _alerts(alerts, matchers)]
        findings += [_query(q, v) for q, v in zip(target.queries, values, strict=True)]
        return findings

    return [Check("prometheus", "prometheus", "Prometheus", target.timeout.seconds + 1, run)]


def _labels(sample: Sample, drop: frozenset[str] = frozenset()) -> str:
    shown = ", ".join(
        f'{key}="{value}"' for key, value in sorted(sample.labels.items()) if key not in drop
    )
    return "{" + (shown if len(shown) <= _LABELS_SHOWN else shown[:_LABELS_SHOWN] + "…") + "}"


def _lines(lines: list[str]) -> tuple[str, ...]:
    if len(lines) <= MAX_LINES:
        return tuple(lines)
    return (*lines[:MAX_LINES], f"… and {len(lines) - MAX_LINES} more")


def _failed(check: str, title: str, exc: TargetError) -> Finding:
    return Finding(
        check, title, Grade.CRIT, f"query failed: {exc.detail}"[:300], facts={"failed": True}
    )


def _targets(answer: list[Sample] | TargetError, matchers: str) -> Finding:
    check, title = "prometheus.targets", "Scrape targets"
    if isinstance(answer, TargetError):
        return _failed(check, title, answer)
    down = [s for s in answer if s.value == 0]
    threshold = "every target up (up == 1)"
    facts: dict[str, Any] = {
        "total": len(answer),
        "down": [_labels(s, frozenset({"__name__"})) for s in down],
    }
    if not answer:
        return Finding(
            check, title, Grade.WARN, f"no scrape targets match {{{matchers}}}"[:300], threshold
        )
    if not down:
        return Finding(check, title, Grade.OK, f"{len(answer)} up", threshold, facts=facts)
    grade = Grade.CRIT if len(down) == len(answer) else Grade.WARN
    first = down[0].labels.get("instance", "?")
    return Finding(
        check,
        title,
        grade,
        f"{len(down)} of {len(answer)} down (first: {first})"[:300],
        threshold,
        evidence=_lines([f"down: {label}" for label in facts["down"]]),
        facts=facts,
    )


def _alerts(answer: list[Sample] | TargetError, matchers: str) -> Finding:
    check, title = "prometheus.alerts", "Alerts firing"
    if isinstance(answer, TargetError):
        return _failed(check, title, answer)
    threshold = "no alert firing"
    if not answer:
        return Finding(check, title, Grade.OK, "none firing", threshold, facts={"firing": []})
    names = sorted({s.labels.get("alertname", "?") for s in answer})
    critical = [s for s in answer if s.labels.get("severity", "").lower() in _CRITICAL_SEVERITIES]
    drop = frozenset({"__name__", "alertstate", "alertname"})
    lines = [f"{s.labels.get('alertname', '?')} {_labels(s, drop)}" for s in answer]
    return Finding(
        check,
        title,
        Grade.CRIT if critical else Grade.WARN,
        f"{len(answer)} firing: {', '.join(names)}"[:300],
        threshold,
        evidence=_lines(lines),
        facts={"firing": names, "critical": len(critical)},
    )


def _query(query: PrometheusQuery, answer: list[Sample] | TargetError) -> Finding:
    check, title = f"prometheus.{query.name}", query.name
    if isinstance(answer, TargetError):
        return _failed(check, title, answer)
    band, unit = query.band, query.unit
    unit_text = f" {unit}" if unit else ""
    if query.lower_is_worse:
        threshold, grade_of = describe_below(band, unit_text), grade_below
    else:
        threshold, grade_of = describe_above(band, unit_text), grade_above
    numbers = [s for s in answer if s.is_number]
    if not numbers:
        return Finding(
            check,
            title,
            Grade.WARN,
            "no data (the query returned no series)" if not answer else "no data (NaN)",
            threshold,
            facts={"value": None, "series": len(answer)},
        )
    worst = (min if query.lower_is_worse else max)(numbers, key=lambda s: s.value)
    where = f" at {_labels(worst, frozenset({'__name__'}))}" if len(numbers) > 1 else ""
    ordered = sorted(numbers, key=lambda s: s.value, reverse=not query.lower_is_worse)
    return Finding(
        check,
        title,
        grade_of(worst.value, band),
        f"{worst.value:.4g}{unit_text}{where}"[:300],
        threshold,
        evidence=_lines([f"{s.value:.4g}{unit_text} {_labels(s)}" for s in ordered])
        if len(numbers) > 1
        else (),
        facts={"value": worst.value, "series": len(answer)},
    )
