"""Assembling the paging service from the policy's paging settings and the environment: the
pagers it names (PagerDuty, Opsgenie), their keys and webhook secrets, each masked once read."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from bot.clock import Clock
from bot.errors import ConfigError
from bot.incidents.changes import IncidentChanges
from bot.incidents.service import IncidentService
from bot.paging.http import Breaker
from bot.paging.opsgenie import OpsgeniePager
from bot.paging.pagerduty import PagerDutyPager
from bot.paging.ports import Pager, PersonDirectory
from bot.paging.service import PagingService
from bot.policy import Policy
from bot.policy.paging import OPSGENIE, PAGERDUTY
from bot.redact import register_secret
from bot.store import Store


def build_paging(
    *,
    policy: Policy,
    store: Store,
    clock: Clock,
    changes: IncidentChanges,
    incidents: IncidentService,
    people: PersonDirectory | None,
    env: Mapping[str, str],
) -> PagingService | None:
    """The paging service of `policy.paging`, its secrets read from `env` (None: no paging).

    A secret's variable that is unset stops start-up with ConfigError naming it. Every secret
    read is registered for redaction, so it is masked wherever it could surface.
    """
    config = policy.paging
    if not config.configured():
        return None
    # Every secret the settings name is masked from now on, before any is checked: start-up
    # may stop on one that is missing after others were read.
    for name in config.secret_env_names():
        if value := env.get(name):
            register_secret(value)
            if value.strip():
                register_secret(value.strip())

    def secret(name: str | None, *, required: bool) -> str | None:
        if not name:
            return None
        # Trimmed: a Secret made from a file (`echo key > f`) ends in a newline, which no
        # key, token or signing secret holds (PagerDuty refused the key, aiohttp the header).
        value = (env.get(name) or "").strip() or None
        if value is None and required:
            raise ConfigError(f"{name} is not set (named by the policy's paging settings)")
        return value

    holder: list[PagingService] = []

    async def session() -> aiohttp.ClientSession:
        return await holder[0].session()

    pagers: dict[str, Pager] = {}
    secrets: dict[str, str] = {}
    timeout = config.timeout_seconds
    breaker = Breaker()  # one view of which provider hosts answer, shared by every call
    if config.pagerduty is not None:
        pd = config.pagerduty
        pagers[PAGERDUTY] = PagerDutyPager(
            pd,
            routing_key=secret(pd.routing_key_env, required=True) or "",
            api_key=secret(pd.api_key_env, required=True),
            session=session,
            timeout=timeout,
            breaker=breaker,
        )
        hook = secret(pd.webhook_secret_env, required=True)
        if hook:
            secrets[PAGERDUTY] = hook
    if config.opsgenie is not None:
        og = config.opsgenie
        pagers[OPSGENIE] = OpsgeniePager(
            og,
            api_key=secret(og.api_key_env, required=True) or "",
            session=session,
            timeout=timeout,
            breaker=breaker,
        )
        hook = secret(og.webhook_secret_env, required=True)
        if hook:
            secrets[OPSGENIE] = hook
    service = PagingService(
        config=config,
        policy=policy,
        store=store,
        clock=clock,
        changes=changes,
        incidents=incidents,
        pagers=pagers,
        people=people,
        webhook_secrets=secrets,
    )
    holder.append(service)
    return service
