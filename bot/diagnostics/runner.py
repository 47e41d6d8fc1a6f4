"""Run checks concurrently, each within its own timeout; a failure becomes a CRIT finding.

A hung target costs its own timeout and nothing more: the others finish on their own time,
and the report waits only for the slowest check (bounded by the largest timeout).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import replace

from bot import metrics
from bot.diagnostics.findings import Check, CheckRun, Finding, Grade
from bot.redact import redact_text
from bot.targets.errors import TargetError, TargetMisconfigured
from bot.text import without_forbidden

log = logging.getLogger(__name__)

# A terminal's escape sequences (colours, cursor moves), as apps write them into their logs.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


async def run_checks(checks: Sequence[Check]) -> list[CheckRun]:
    """Every check's findings, in the order the checks were given."""
    return list(await asyncio.gather(*(_run_one(check) for check in checks)))


async def _run_one(check: Check) -> CheckRun:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(check.timeout):
            findings = await check.run()
    except TimeoutError:
        findings = [_failed(check, f"no answer within {check.timeout:g} s (timed out)")]
    except TargetMisconfigured as exc:
        # The catalog entry itself is wrong: nothing was reached, and retrying will not help.
        findings = [_failed(check, f"misconfigured in the catalog: {exc.detail}")]
    except TargetError as exc:
        findings = [_failed(check, f"unreachable: {exc.detail}")]
    except Exception as exc:  # a probe bug must not cost the other findings
        log.exception("diagnostic check %s failed", check.name)
        findings = [_failed(check, f"check failed: {type(exc).__name__}: {redact_text(str(exc))}")]
    seconds = time.perf_counter() - started
    metrics.CHECK_SECONDS.labels(check.system).observe(seconds)
    return CheckRun(check.name, check.system, seconds, tuple(_readable(f) for f in findings))


def _readable(finding: Finding) -> Finding:
    """What a system returned (log lines, events, statements, bodies) as a reader may see it:
    colour codes and control characters (a NUL, a bell, a right-to-left override) left out,
    for Slack, the console and the CLI's terminal alike."""

    def clean(text: str) -> str:
        return without_forbidden(_ANSI.sub("", text))

    return replace(
        finding,
        title=clean(finding.title),
        summary=clean(finding.summary),
        evidence=tuple(clean(line) for line in finding.evidence),
    )


def _failed(check: Check, summary: str) -> Finding:
    return Finding(
        check.name.split(" ")[0], check.title, Grade.CRIT, summary[:300], facts={"failed": True}
    )
