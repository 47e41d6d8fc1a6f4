"""Opsgenie's Alert API and Who-is-on-call API, as documented."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.paging_doubles.base import _Double, _json_object

OG_PRIORITIES = {"P1", "P2", "P3", "P4", "P5"}
OG_RESPONDER_TYPES = {"team", "user", "escalation", "schedule"}


# -- Opsgenie -------------------------------------------------------------------------------


@dataclass
class OgAlert:
    alias: str
    message: str
    priority: str
    status: str = "open"
    acknowledged: bool = False
    count: int = 1
    log: list[str] = field(default_factory=list)


class OpsgenieDouble(_Double):
    """Alert API (`/v2/alerts`, acknowledge, close) and `GET /v2/schedules/{id}/on-calls`."""

    name = "Opsgenie"

    def __init__(self, *, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.requests: list[tuple[str, dict[str, Any]]] = []  # accepted (202): (action, body)
        self.alerts: dict[str, OgAlert] = {}
        self.schedules: dict[str, list[str]] = {}  # name -> on-call usernames (e-mails)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v2/alerts", self._create),
            web.post("/v2/alerts/{identifier}/{action}", self._act),
            web.get("/v2/schedules/{identifier}/on-calls", self._oncalls),
        ]

    def actions(self, alias: str | None = None) -> list[str]:
        return [
            action for action, body in self.requests if alias is None or body.get("alias") == alias
        ]

    def _accepted(self) -> web.Response:
        self._changed.set()
        return web.json_response(
            {"result": "Request will be processed", "took": 0.011, "requestId": str(uuid.uuid4())},
            status=202,
        )

    def _auth(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"GenieKey {self.api_key}":
            return self._refuse(
                401, {"message": "Could not authenticate", "took": 0.0, "requestId": "x"}
            )
        return None

    def _semantic(self, message: str) -> web.Response:
        return self._refuse(422, {"message": message, "took": 0.001, "requestId": "x"})

    async def _create(self, request: web.Request) -> web.Response:
        injected = self._injected()
        if injected is not None:
            return injected
        refused = self._auth(request)
        if refused is not None:
            return refused
        body = await _json_object(request)
        if body is None:
            return self._refuse(
                400, {"message": "Could not parse the body", "took": 0.0, "requestId": "x"}
            )
        message = body.get("message")
        if not isinstance(message, str) or not message.strip():
            return self._semantic("Message can not be empty.")
        if len(message) > 130:
            return self._semantic("Message can not be longer than 130 characters.")
        alias = body.get("alias")
        if alias is not None and (not isinstance(alias, str) or len(alias) > 512):
            return self._semantic("Alias can not be longer than 512 characters.")
        if len(str(body.get("description") or "")) > 15000:
            return self._semantic("Description can not be longer than 15000 characters.")
        if "priority" in body and body["priority"] not in OG_PRIORITIES:
            return self._semantic("Priority should be one of [P1, P2, P3, P4, P5]")
        for responder in body.get("responders") or []:
            if not isinstance(responder, dict) or responder.get("type") not in OG_RESPONDER_TYPES:
                return self._semantic(
                    "Responder type should be one of team, user, escalation, schedule"
                )
            if not any(responder.get(k) for k in ("id", "name", "username")):
                return self._semantic("Responder must have id, name or username")
        details = body.get("details") or {}
        if not isinstance(details, dict) or not all(isinstance(v, str) for v in details.values()):
            return self._semantic("Details should be a map of strings")
        tags = body.get("tags") or []
        if not isinstance(tags, list) or len(tags) > 20:
            return self._semantic("Tags should be a list of at most 20")
        key = alias or uuid.uuid4().hex
        existing = self.alerts.get(key)
        if existing is not None and existing.status == "open":
            existing.count += 1  # one open alert per alias: de-duplicated
            existing.log.append("create")
        else:
            self.alerts[key] = OgAlert(key, message, body.get("priority", "P3"), log=["create"])
        self.requests.append(("create", body))
        return self._accepted()

    async def _act(self, request: web.Request) -> web.Response:
        injected = self._injected()
        if injected is not None:
            return injected
        refused = self._auth(request)
        if refused is not None:
            return refused
        action = request.match_info["action"]
        if action not in ("acknowledge", "close"):
            return self._refuse(
                404, {"message": f"unknown action {action}", "took": 0.0, "requestId": "x"}
            )
        kind = request.query.get("identifierType", "id")
        if kind not in ("id", "tiny", "alias"):
            return self._semantic("identifierType should be one of id, tiny, alias")
        body = await _json_object(request) if await request.read() else {}
        if body is None:
            return self._refuse(
                400, {"message": "Could not parse the body", "took": 0.0, "requestId": "x"}
            )
        for name, limit in (("user", 100), ("source", 100), ("note", 25000)):
            if len(str(body.get(name) or "")) > limit:
                return self._semantic(f"{name} can not be longer than {limit} characters.")
        identifier = request.match_info["identifier"]
        alert = self.alerts.get(identifier) if kind == "alias" else None
        if alert is not None and alert.status == "open":
            # Processed asynchronously: an unknown alert is a failed request, still a 202.
            if action == "acknowledge":
                alert.acknowledged = True
            else:
                alert.status = "closed"
            alert.log.append(action)
        self.requests.append((action, {**body, "alias": identifier}))
        return self._accepted()

    async def _oncalls(self, request: web.Request) -> web.Response:
        injected = self._injected()
        if injected is not None:
            return injected
        refused = self._auth(request)
        if refused is not None:
            return refused
        name = request.match_info["identifier"]
        if (
            request.query.get("scheduleIdentifierType", "id") != "name"
            or name not in self.schedules
        ):
            return web.json_response(
                {
                    "message": f"No schedule exists with identifier [{name}]",
                    "took": 0.0,
                    "requestId": "x",
                },
                status=404,
            )
        recipients = self.schedules[name]
        data: dict[str, Any] = {"_parent": {"id": "sched-1", "name": name, "enabled": True}}
        if request.query.get("flat") == "true":
            data["onCallRecipients"] = list(recipients)
        else:
            data["onCallParticipants"] = [
                {"id": f"u{n}", "name": email, "type": "user"} for n, email in enumerate(recipients)
            ]
        return web.json_response({"data": data, "took": 0.01, "requestId": "x"})

    @staticmethod
    def webhook(action: str, alias: str, username: str) -> dict[str, Any]:
        """An outgoing webhook body as Opsgenie's Webhook integration sends it."""
        return {
            "action": action,
            "alert": {
                "alertId": "a" + uuid.uuid4().hex[:12],
                "message": "an incident",
                "tags": [],
                "tinyId": "7",
                "entity": alias,
                "alias": alias,
                "createdAt": 1795000000000,
                "updatedAt": 1795000060000,
                "username": username,
                "userId": "u-jane",
                "description": "",
            },
            "source": {"name": "", "type": "web"},
            "integrationName": "Webhook",
            "integrationId": "int-1",
            "integrationType": "Webhook",
        }
