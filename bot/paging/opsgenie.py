"""Opsgenie: the Alert API for pages, the Who-is-on-call API for the schedule.

`Authorization: GenieKey <key>`. The incident's ID is the alert's `alias`: Opsgenie keeps one
open alert per alias, so a retried create adds nothing, and acknowledge/close address the
alert by it (`identifierType=alias`). Alert requests are processed asynchronously: 202.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp

from bot.paging.http import Breaker, call, path_segment
from bot.paging.ports import OPSGENIE_PRIORITY, Alert
from bot.policy.paging import OPSGENIE, PROVIDER_ID, OpsgenieConfig

SessionSource = Callable[[], Awaitable[aiohttp.ClientSession]]
_SOURCE = "chatops-bot"


class OpsgeniePager:
    """The Pager port on Opsgenie."""

    provider = OPSGENIE

    def __init__(
        self,
        config: OpsgenieConfig,
        *,
        api_key: str,
        session: SessionSource,
        timeout: float = 10.0,
        breaker: Breaker | None = None,
    ) -> None:
        self.config = config
        self._api_key = api_key
        self._session = session
        self.timeout = timeout
        self.breaker = breaker

    async def _call(self, method: str, path: str, body: Any = None, params: Any = None) -> Any:
        return await call(
            await self._session(),
            OPSGENIE,
            method,
            f"{self.config.api_url}{path}",
            headers={"Authorization": f"GenieKey {self._api_key}"},
            json_body=body,
            params=params,
            timeout=self.timeout,
            breaker=self.breaker,
        )

    async def trigger(self, alert: Alert) -> None:
        body: dict[str, Any] = {
            "message": alert.summary[:130],
            "alias": alert.incident_id,
            "description": f"{alert.summary}\n{alert.link}"[:15000],
            "priority": OPSGENIE_PRIORITY[alert.severity],
            "source": _SOURCE,
            "tags": [alert.severity.value, "chatops"],
            "details": {"incident": alert.incident_id, "link": alert.link, **alert.details},
            "entity": alert.incident_id,
        }
        if self.config.team:
            body["responders"] = [{"type": "team", "name": self.config.team}]
        await self._call("POST", "/v2/alerts", body)

    async def _act(self, incident_id: str, action: str) -> None:
        alias = path_segment(OPSGENIE, incident_id, PROVIDER_ID, "alert alias")
        await self._call(
            "POST",
            f"/v2/alerts/{alias}/{action}",
            {"source": _SOURCE, "note": f"{action} in Slack ({incident_id})"},
            {"identifierType": "alias"},
        )

    async def acknowledge(self, incident_id: str) -> None:
        await self._act(incident_id, "acknowledge")

    async def resolve(self, incident_id: str) -> None:
        await self._act(incident_id, "close")

    async def oncall_emails(self) -> list[str] | None:
        """Usernames (e-mail addresses) of whoever is on call now on the schedule."""
        if not self.config.schedule:
            return None
        body = await self._call(
            "GET",
            f"/v2/schedules/{quote(self.config.schedule, safe='')}/on-calls",
            params={"scheduleIdentifierType": "name", "flat": "true"},
        )
        recipients = (body.get("data") or {}).get("onCallRecipients") or []
        return [str(item) for item in recipients if isinstance(item, str)]
