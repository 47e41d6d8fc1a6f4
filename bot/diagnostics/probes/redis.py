"""Redis: PING, memory against maxmemory and the eviction policy, hit ratio, evictions,
connected and blocked clients (INFO; all read-only)."""

from __future__ import annotations

import time
from typing import Any

from bot.catalog import RedisTarget, Thresholds
from bot.diagnostics.findings import Check, Finding, Grade
from bot.diagnostics.grading import (
    describe_above,
    describe_at_least,
    describe_below,
    grade_above,
    grade_at_least,
    grade_below,
    size_words,
)
from bot.targets.redis import RedisClient


def checks(target: RedisTarget, thresholds: Thresholds, client: RedisClient) -> list[Check]:
    async def run() -> list[Finding]:
        async with client.session() as session:
            started = time.perf_counter()
            await session.ping()
            ping_ms = (time.perf_counter() - started) * 1000
            info = await session.info()
        return _grade(info, ping_ms, thresholds)

    return [Check("redis", "redis", "Redis", target.timeout.seconds + 1, run)]


def _grade(info: dict[str, Any], ping_ms: float, t: Thresholds) -> list[Finding]:
    findings = [
        Finding(
            "redis.ping",
            "PING",
            Grade.OK,
            f"PONG in {ping_ms:.1f} ms (Redis {info.get('redis_version', '?')})",
        )
    ]
    used = int(info.get("used_memory", 0))
    peak = int(info.get("used_memory_peak", 0))
    maximum = int(info.get("maxmemory", 0))
    policy = str(info.get("maxmemory_policy", "noeviction"))
    if maximum:
        pct = 100.0 * used / maximum
        findings.append(
            Finding(
                "redis.memory",
                "Memory",
                grade_above(pct, t.memory_pct),
                f"{size_words(used)} of {size_words(maximum)} ({pct:.0f} %), peak"
                f" {size_words(peak)}, policy {policy}",
                threshold=describe_above(t.memory_pct, " % of maxmemory"),
                facts={"pct": pct, "policy": policy, "used": used, "max": maximum},
            )
        )
    else:
        findings.append(
            Finding(
                "redis.memory",
                "Memory",
                Grade.OK,
                f"{size_words(used)} used, peak {size_words(peak)}, no maxmemory limit"
                f" (policy {policy})",
                facts={"pct": None, "policy": policy, "used": used, "max": 0},
            )
        )
    hits, misses = int(info.get("keyspace_hits", 0)), int(info.get("keyspace_misses", 0))
    if hits + misses:
        ratio = 100.0 * hits / (hits + misses)
        findings.append(
            Finding(
                "redis.hit_ratio",
                "Cache hit ratio",
                grade_below(ratio, t.cache_hit_ratio_pct),
                f"{ratio:.1f} % ({hits} hits, {misses} misses)",
                threshold=describe_below(t.cache_hit_ratio_pct, " %"),
                facts={"ratio_pct": ratio, "hits": hits, "misses": misses},
            )
        )
    else:
        findings.append(Finding("redis.hit_ratio", "Cache hit ratio", Grade.OK, "no lookups yet"))
    evicted = int(info.get("evicted_keys", 0))
    findings.append(
        Finding(
            "redis.evictions",
            "Evicted keys",
            grade_at_least(evicted, t.evicted_keys),
            f"{evicted} keys evicted since start (policy {policy})",
            threshold=describe_at_least(t.evicted_keys, " keys"),
            facts={"evicted": evicted, "policy": policy},
        )
    )
    connected, blocked = int(info.get("connected_clients", 0)), int(info.get("blocked_clients", 0))
    findings.append(
        Finding(
            "redis.clients",
            "Clients",
            grade_at_least(blocked, t.blocked_clients),
            f"{connected} connected, {blocked} blocked",
            threshold="blocked: " + describe_at_least(t.blocked_clients),
            facts={"connected": connected, "blocked": blocked},
        )
    )
    return findings
