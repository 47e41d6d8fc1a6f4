"""Redis: CONFIG SET maxmemory-policy on the catalogued Redis."""

from __future__ import annotations

from bot.catalog import RedisTarget
from bot.remediation.actions import Params, RedisPolicyParams
from bot.remediation.plans import NotApplicable, Outcome, Preview, Target, unreached
from bot.targets.errors import TargetError
from bot.targets.redis import RedisClient


def _catalog(target: Target) -> RedisTarget:
    if target.entry.redis is None:
        raise NotApplicable(f"The catalog names no Redis for '{target.service}'.")
    return target.entry.redis


class RedisExecutor:
    async def preview(self, target: Target, params: Params) -> Preview:
        assert isinstance(params, RedisPolicyParams)
        async with RedisClient(_catalog(target)).session() as session:
            current = (await session.config_get("maxmemory-policy")).get("maxmemory-policy", "?")
        if current == params.policy:
            raise NotApplicable(f"{target.service}'s Redis already uses {current}.")
        return Preview(
            f"set maxmemory-policy of {target.service}'s Redis from {current} to {params.policy}",
            {"from": current, "to": params.policy},
        )

    async def execute(self, target: Target, params: Params, preview: Preview) -> Outcome:
        # The entry may have lost its Redis since the request (a restart with a new policy).
        async with RedisClient(_catalog(target)).session() as session:
            try:
                current = (await session.config_get("maxmemory-policy")).get(
                    "maxmemory-policy", "?"
                )
            except TargetError as exc:  # before anything was sent
                return unreached(exc)
            if current != preview.facts["from"]:
                return Outcome(
                    False,
                    "nothing changed",
                    f"maxmemory-policy is {current}",
                    drift=f"the policy moved from {preview.facts['from']} to {current}",
                )
            await session.config_set("maxmemory-policy", str(preview.facts["to"]))
            changed = f"set maxmemory-policy {current} -> {preview.facts['to']}"
            try:
                after = (await session.config_get("maxmemory-policy")).get("maxmemory-policy", "?")
            except TargetError:
                # Redis said OK to the change: that stands, whatever the read back says.
                return Outcome(True, changed, "maxmemory-policy could not be read back: check it")
        return Outcome(
            after == preview.facts["to"],
            changed,
            f"maxmemory-policy is {after}",
            facts={"policy": after},
        )
