"""PagerDuty and Opsgenie, served over HTTP on loopback: what the paging tests talk to.

Written from the providers' published references (PagerDuty's Events API v2 and REST API v2
`/oncalls` and `/users/{id}`; Opsgenie's Alert API and Who-is-on-call API): real paths, real
JSON shapes, the documented status codes. Each checks the payloads it receives and answers a
malformed one as the provider does (PagerDuty 400 "invalid event" with its `errors`; Opsgenie
422 for a semantic error such as an empty message, 400 for a body that is not JSON), a wrong
key with 401 (Opsgenie 401 / 422 too), and injected failures (429 rate limits, 5xx outages)
for as many requests as a test asks. What they accepted is kept in `events` / `requests`,
what they refused in `refused`, and every problem with a request the bot sent in
`violations` (a test ends by asserting it is empty).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

PD_SEVERITIES = {"critical", "error", "warning", "info"}
PD_ACTIONS = {"trigger", "acknowledge", "resolve"}
PD_ACCEPT = "application/vnd.pagerduty+json;version=2"
OG_PRIORITIES = {"P1", "P2", "P3", "P4", "P5"}
OG_RESPONDER_TYPES = {"team", "user", "escalation", "schedule"}


@dataclass
class Answer:
    """An injected answer: `status` for the next `times` requests (Retry-After optional)."""

    status: int
    times: int = 1
    retry_after: int | None = None


class _Double:
    """Serving on loopback, failure injection and waiting, shared by both doubles."""

    name = "double"

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.refused: list[tuple[int, dict[str, Any]]] = []
        self.seen = 0  # requests received, answered or not
        self._inject: deque[Answer] = deque()
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()
        self.url = ""

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application()
        app.add_routes(self.routes())
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def fail_next(self, *answers: Answer) -> None:
        """Answer the next requests with these statuses (a rate limit, an outage...)."""
        self._inject.extend(answers)

    def _injected(self) -> web.Response | None:
        self.seen += 1
        self._changed.set()
        while self._inject and self._inject[0].times <= 0:
            self._inject.popleft()
        if not self._inject:
            return None
        answer = self._inject[0]
        answer.times -= 1
        headers = {"Retry-After": str(answer.retry_after)} if answer.retry_after else {}
        body = self._failure_body(answer.status)
        self.refused.append((answer.status, body))
        return web.json_response(body, status=answer.status, headers=headers)

    def _failure_body(self, status: int) -> dict[str, Any]:
        return {"message": "Internal Server Error" if status >= 500 else "Too many requests"}

    def _refuse(self, status: int, body: dict[str, Any]) -> web.Response:
        self.refused.append((status, body))
        self.violations.append(f"{self.name} {status}: {json.dumps(body)[:300]}")
        self._changed.set()
        return web.json_response(body, status=status)

    async def wait_until(self, check: Any, timeout: float = 10.0, what: str = "") -> None:
        """Wait until `check()` is true; fails the test after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not check():
            remaining = deadline - loop.time()
            assert remaining > 0, f"{self.name}: timed out waiting for {what or check}"
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.2))
            except TimeoutError:
                pass


async def _json_object(request: web.Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.read() or b"null")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


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
