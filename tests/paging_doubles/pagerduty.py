"""PagerDuty's Events API v2 and REST API v2 (on-calls, users), as documented."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.paging_doubles.base import _Double, _json_object

PD_SEVERITIES = {"critical", "error", "warning", "info"}
PD_ACTIONS = {"trigger", "acknowledge", "resolve"}
PD_ACCEPT = "application/vnd.pagerduty+json;version=2"


# -- PagerDuty ------------------------------------------------------------------------------


@dataclass
class PdUser:
    id: str
    name: str
    email: str


@dataclass
class PdOnCall:
    user: PdUser
    schedule: str | None = None
    escalation_policy: str = "PEP0001"
    level: int = 1


@dataclass
class PdIncident:
    dedup_key: str
    status: str = "triggered"
    triggers: int = 1
    log: list[str] = field(default_factory=list)


class PagerDutyDouble(_Double):
    """Events API v2 (`POST /v2/enqueue`) and REST API v2 (`GET /oncalls`, `/users/{id}`)."""

    name = "PagerDuty"

    def __init__(self, *, routing_key: str, api_key: str) -> None:
        super().__init__()
        self.routing_key = routing_key
        self.api_key = api_key
        self.events: list[dict[str, Any]] = []  # accepted (202), in order
        self.incidents: dict[str, PdIncident] = {}
        self.users: dict[str, PdUser] = {}
        self.oncalls: list[PdOnCall] = []
        self.rest_calls: list[str] = []

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v2/enqueue", self._enqueue),
            web.get("/oncalls", self._oncalls),
            web.get("/users/{id}", self._user),
        ]

    def add_user(self, user_id: str, name: str, email: str) -> PdUser:
        self.users[user_id] = PdUser(user_id, name, email)
        return self.users[user_id]

    def _failure_body(self, status: int) -> dict[str, Any]:
        if status == 429:
            return {
                "status": "throttle event",
                "message": "Requests for this service are"
                " arriving too quickly. Please retry later.",
            }
        return {"status": "error", "message": "Internal Server Error"}

    def actions(self, dedup_key: str | None = None) -> list[str]:
        """The accepted events' actions (for one dedup key), in order."""
        return [
            e["event_action"]
            for e in self.events
            if dedup_key is None or e.get("dedup_key") == dedup_key
        ]

    @staticmethod
    def _event_errors(body: dict[str, Any]) -> list[str]:
        errors: list[str] = []
        key = body.get("routing_key")
        if not isinstance(key, str) or len(key) != 32:
            errors.append("'routing_key' must be a 32 character string")
        action = body.get("event_action")
        if action not in PD_ACTIONS:
            errors.append("'event_action' must be one of trigger, acknowledge, resolve")
        dedup = body.get("dedup_key")
        if dedup is not None and (not isinstance(dedup, str) or not 0 < len(dedup) <= 255):
            errors.append("'dedup_key' must be a string of at most 255 characters")
        if action in ("acknowledge", "resolve") and not dedup:
            errors.append("'dedup_key' is required for acknowledge and resolve events")
        if action == "trigger":
            payload = body.get("payload")
            if not isinstance(payload, dict):
                errors.append("'payload' is required for trigger events")
            else:
                summary = payload.get("summary")
                if not isinstance(summary, str) or not 0 < len(summary) <= 1024:
                    errors.append("'payload.summary' must be 1 to 1024 characters")
                if not isinstance(payload.get("source"), str) or not payload["source"]:
                    errors.append("'payload.source' is required")
                if payload.get("severity") not in PD_SEVERITIES:
                    errors.append("'payload.severity' must be critical, error, warning or info")
                for name in ("component", "group", "class", "timestamp"):
                    if name in payload and not isinstance(payload[name], str):
                        errors.append(f"'payload.{name}' must be a string")
                details = payload.get("custom_details")
                if details is not None and not isinstance(details, dict):
                    errors.append("'payload.custom_details' must be an object")
        for link in body.get("links") or []:
            if not isinstance(link, dict) or not isinstance(link.get("href"), str):
                errors.append("each of 'links' needs an 'href'")
        known = {
            "routing_key",
            "event_action",
            "dedup_key",
            "payload",
            "links",
            "images",
            "client",
            "client_url",
        }
        errors += [f"unknown field '{name}'" for name in body if name not in known]
        return errors

    async def _enqueue(self, request: web.Request) -> web.Response:
        injected = self._injected()
        if injected is not None:
            return injected
        body = await _json_object(request)
        if body is None:
            return self._refuse(
                400,
                {
                    "status": "invalid event",
                    "message": "Event object is invalid",
                    "errors": ["the body is not a JSON object"],
                },
            )
        errors = self._event_errors(body)
        if not errors and body["routing_key"] != self.routing_key:
            errors = ["Invalid routing key"]
        if errors:
            return self._refuse(
                400,
                {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
            )
        dedup = body.get("dedup_key") or uuid.uuid4().hex
        self.events.append(body)
        self._apply(body["event_action"], dedup)
        self._changed.set()
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": dedup}, status=202
        )

    def _apply(self, action: str, dedup: str) -> None:
        incident = self.incidents.get(dedup)
        if action == "trigger":
            if incident is None or incident.status == "resolved":
                self.incidents[dedup] = PdIncident(dedup)
            else:
                incident.triggers += 1  # de-duplicated into the open incident
        elif incident is not None and incident.status != "resolved":
            # Acknowledging an acknowledged incident, or an unknown key, changes nothing.
            incident.status = "acknowledged" if action == "acknowledge" else "resolved"
        if incident is not None:
            incident.log.append(action)

    def _rest_auth(self, request: web.Request) -> web.Response | None:
        self.rest_calls.append(request.path_qs)
        if request.headers.get("Authorization") != f"Token token={self.api_key}":
            return self._refuse(401, {"error": {"message": "Unauthorized", "code": 2006}})
        if request.headers.get("Accept") != PD_ACCEPT:
            self.violations.append(
                f"PagerDuty REST call without the v2 Accept header: {request.path}"
            )
        return None

    def _user_object(self, user: PdUser) -> dict[str, Any]:
        return {
            "id": user.id,
            "type": "user",
            "summary": user.name,
            "name": user.name,
            "email": user.email,
            "self": f"{self.url}/users/{user.id}",
            "html_url": f"https://example.pagerduty.com/users/{user.id}",
        }

    def _reference(self, user: PdUser) -> dict[str, Any]:
        return {
            "id": user.id,
            "type": "user_reference",
            "summary": user.name,
            "self": f"{self.url}/users/{user.id}",
        }

    async def _oncalls(self, request: web.Request) -> web.Response:
        injected = self._injected()
        if injected is not None:
            return injected
        refused = self._rest_auth(request)
        if refused is not None:
            return refused
        query = request.query
        schedules = query.getall("schedule_ids[]", [])
        policies = query.getall("escalation_policy_ids[]", [])
        full_users = "users" in query.getall("include[]", [])
        found = [
            oncall
            for oncall in self.oncalls
            if (not schedules or oncall.schedule in schedules)
            and (not policies or oncall.escalation_policy in policies)
        ]
        rows = [
            {
                "user": self._user_object(o.user) if full_users else self._reference(o.user),
                "schedule": (
                    {"id": o.schedule, "type": "schedule_reference"} if o.schedule else None
                ),
                "escalation_policy": {
                    "id": o.escalation_policy,
                    "type": "escalation_policy_reference",
                },
                "escalation_level": o.level,
                "start": "2026-01-01T00:00:00Z",
                "end": "2026-12-31T00:00:00Z",
            }
            for o in found
        ]
        return web.json_response(
            {"oncalls": rows, "limit": 25, "offset": 0, "more": False, "total": None}
        )

    async def _user(self, request: web.Request) -> web.Response:
        injected = self._injected()
        if injected is not None:
            return injected
        refused = self._rest_auth(request)
        if refused is not None:
            return refused
        user = self.users.get(request.match_info["id"])
        if user is None:
            return web.json_response({"error": {"message": "Not Found", "code": 2100}}, status=404)
        return web.json_response({"user": self._user_object(user)})

    def webhook(self, event_type: str, dedup_key: str, agent: PdUser | None) -> dict[str, Any]:
        """A V3 webhook body as PagerDuty sends it for an incident event."""
        return {
            "event": {
                "id": uuid.uuid4().hex,
                "event_type": event_type,
                "resource_type": "incident",
                "occurred_at": "2026-11-27T14:05:00.000Z",
                "agent": self._reference(agent) if agent else None,
                "client": None,
                "data": {
                    "id": "Q" + dedup_key[-6:].replace("-", ""),
                    "type": "incident",
                    "self": f"{self.url}/incidents/Q1",
                    "html_url": "https://example.pagerduty.com/incidents/Q1",
                    "number": 1,
                    "status": "acknowledged",
                    "incident_key": dedup_key,
                    "created_at": "2026-11-27T14:00:00Z",
                    "title": "an incident",
                    "urgency": "high",
                },
            }
        }
