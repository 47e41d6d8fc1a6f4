"""Run checks concurrently, each within its own timeout; a failure becomes a CRIT finding.

A hung target costs its own timeout and nothing more: the others finish on their own time,
and the report waits only for the slowest check (bounded by the largest timeout).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from bot import metrics
from bot.diagnostics.findings import Check, CheckRun, Finding, Grade
from bot.redact import redact_text
from bot.targets.errors import TargetError, TargetMisconfigured

log = logging.getLogger(__name__)


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
    return CheckRun(check.name, check.system, seconds, tuple(findings))


def _failed(check: Check, summary: str) -> Finding:
    return Finding(
        check.name.split(" ")[0], check.title, Grade.CRIT, summary[:300], facts={"failed": True}
    )
