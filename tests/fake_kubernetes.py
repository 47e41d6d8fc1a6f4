"""A small Kubernetes API server for tests: the real REST paths, JSON shapes and status codes
for the few resources the bot reads and changes, served over HTTP on loopback.

No API server can be installed on these machines, so the real `kubernetes` client is pointed
at this one through a kubeconfig (`write_kubeconfig`). It serves:

  GET    /version
  GET    /api/v1/namespaces/{ns}/pods[?labelSelector=]          PodList
  GET    /api/v1/namespaces/{ns}/pods/{name}                    Pod
  DELETE /api/v1/namespaces/{ns}/pods/{name}                    Pod (removed)
  GET    /api/v1/namespaces/{ns}/pods/{name}/log?container=&previous=&tailLines=   text/plain
  GET    /api/v1/namespaces/{ns}/events[?fieldSelector=type=Warning]               EventList
  GET    /api/v1/nodes                                          NodeList
  GET    /apis/apps/v1/namespaces/{ns}/deployments[?labelSelector=]                DeploymentList
  GET    /apis/apps/v1/namespaces/{ns}/deployments/{name}       Deployment
  PATCH  /apis/apps/v1/namespaces/{ns}/deployments/{name}       merge / strategic merge patch
  GET    /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale Scale
  PATCH  /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale Scale
  GET    /apis/apps/v1/namespaces/{ns}/replicasets[?labelSelector=]                ReplicaSetList

Writes are recorded as Kubernetes itself records them: a change of the deployment's spec
bumps `metadata.generation`; a change of its pod template is a new revision, as the
deployment controller makes it: the ReplicaSet for that template (an existing one when the
template is an old one again, as after `rollout undo`) gets the next
`deployment.kubernetes.io/revision`, and so does the deployment. PATCH accepts merge and
strategic merge patches (a JSON object) and JSON patches (a list of operations). DELETE of a
pod honours `preconditions.uid` (409 Conflict when it differs). A pod made with `owner=` (its
ReplicaSet) carries that set's labels and a controller ownerReference, and an event made with
`about=` names its object's kind, name and UID, as the controllers and the kubelet write them.
  GET    /apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods      PodMetricsList (when enabled)
  GET    /apis/metrics.k8s.io/v1beta1/nodes                     NodeMetricsList (when enabled)

Anything else answers 404 with a `Status` object, as the real server does. Every request is
recorded (`requests`), so a test can prove what was, and was not, touched. `hang_paths` makes
matching requests (a path, or `"METHOD /path"`) wait without answering (until the server
stops), for timeout tests;
`fail` answers a `"METHOD /path"` with that error status (429, 500...), changing nothing;
`fail_reason` gives such an answer's status line a reason phrase of the test's choosing.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

Obj = dict[str, Any]


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> datetime:
    return datetime.now(UTC)


def _meta(name: str, namespace: str | None, labels: dict[str, str] | None = None) -> Obj:
    meta: Obj = {
        "name": name,
        "uid": f"uid-{namespace or 'cluster'}-{name}",
        "resourceVersion": "1",
        "creationTimestamp": rfc3339(_now() - timedelta(hours=1)),
        "labels": dict(labels or {}),
    }
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def pod(
    name: str,
    *,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    container: str = "app",
    phase: str = "Running",
    ready: bool = True,
    restarts: int = 0,
    waiting_reason: str | None = None,
    waiting_message: str = "",
    last_exit_code: int | None = None,
    last_reason: str = "Error",
    node: str = "node-1",
    limits: dict[str, str] | None = None,
    requests: dict[str, str] | None = None,
    owner: Obj | None = None,
    unschedulable: str | None = None,
) -> Obj:
    """A Pod as the API returns it; `waiting_reason="CrashLoopBackOff"` for a crash loop, with
    `last_exit_code=137, last_reason="OOMKilled"` for one killed at its memory limit.

    `unschedulable` is the scheduler's message for a pod no node can take yet (waiting for
    the cluster autoscaler): Pending, on no node, no container started, and the condition
    `PodScheduled=False` with reason `Unschedulable`, as the scheduler writes it.

    `owner` is the ReplicaSet that made it (ClusterState.replica_set_of): the pod then carries
    its labels (pod-template-hash included) and a controller ownerReference, as the
    ReplicaSet controller writes them."""
    state: Obj
    if waiting_reason:
        state = {"waiting": {"reason": waiting_reason, "message": waiting_message}}
    else:
        state = {"running": {"startedAt": rfc3339(_now() - timedelta(minutes=30))}}
    status: Obj = {
        "name": container,
        "image": f"registry.example/{container}:1.0",
        "imageID": "",
        "ready": ready,
        "restartCount": restarts,
        "started": ready,
        "state": state,
    }
    if last_exit_code is not None:
        status["lastState"] = {
            "terminated": {
                "exitCode": last_exit_code,
                "reason": last_reason,
                "startedAt": rfc3339(_now() - timedelta(minutes=2)),
                "finishedAt": rfc3339(_now() - timedelta(minutes=1)),
            }
        }
    resources: Obj = {"limits": dict(limits or {})}
    if requests:
        resources["requests"] = dict(requests)
    metadata = _meta(name, namespace, labels)
    if owner is not None:
        metadata["labels"] = {**owner["spec"]["template"]["metadata"]["labels"], **(labels or {})}
        metadata["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    if unschedulable is not None:
        return {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": metadata,
            "spec": {
                "containers": [
                    {
                        "name": container,
                        "image": f"registry.example/{container}:1.0",
                        "resources": resources,
                    }
                ]
            },
            "status": {
                "phase": "Pending",
                "qosClass": "Burstable",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": unschedulable,
                        "lastTransitionTime": rfc3339(_now() - timedelta(minutes=3)),
                    }
                ],
            },
        }
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": metadata,
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": container,
                    "image": f"registry.example/{container}:1.0",
                    "resources": resources,
                }
            ],
        },
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [status],
        },
    }


def deployment(
    name: str,
    *,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    replicas: int = 3,
    ready: int = 3,
    updated: int | None = None,
    available: int | None = None,
    revision: int = 1,
) -> Obj:
    labels = labels or {"app": name}
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": _meta(name, namespace, labels)
        | {
            "generation": 1,
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": [{"name": "app", "image": f"registry.example/{name}:1"}]},
            },
        },
        "status": {
            "observedGeneration": 1,
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": replicas if updated is None else updated,
            "availableReplicas": ready if available is None else available,
            "unavailableReplicas": max(0, replicas - ready),
        },
    }


def event(
    name: str,
    *,
    namespace: str = "default",
    reason: str,
    message: str,
    kind: str = "Pod",
    object_name: str = "",
    type_: str = "Warning",
    count: int = 1,
    age: timedelta = timedelta(minutes=2),
    about: Obj | None = None,
) -> Obj:
    """An Event (core/v1); `about` is the object it involves (its kind, name and UID)."""
    at = rfc3339(_now() - age)
    involved: Obj = {
        "kind": kind,
        "name": object_name,
        "namespace": namespace,
        "apiVersion": "apps/v1" if kind in ("Deployment", "ReplicaSet") else "v1",
    }
    if about is not None:
        involved |= {
            "kind": about["kind"],
            "name": about["metadata"]["name"],
            "uid": about["metadata"]["uid"],
            "apiVersion": about["apiVersion"],
            "resourceVersion": about["metadata"]["resourceVersion"],
        }
    return {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": _meta(name, namespace),
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": type_,
        "count": count,
        "firstTimestamp": at,
        "lastTimestamp": at,
        "source": {"component": "kubelet"},
    }


def node(name: str, *, conditions: dict[str, str] | None = None) -> Obj:
    """A Node; `conditions` maps type -> status ({"MemoryPressure": "True"})."""
    states = {"Ready": "True", "MemoryPressure": "False", "DiskPressure": "False"}
    states.update(conditions or {})
    beat = rfc3339(_now() - timedelta(seconds=30))
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": _meta(name, None, {"kubernetes.io/hostname": name}),
        "status": {
            "conditions": [
                {
                    "type": kind,
                    "status": status,
                    "reason": f"Kubelet{kind}" if status == "True" else f"KubeletNo{kind}",
                    "message": f"{kind} is {status}",
                    "lastHeartbeatTime": beat,
                    "lastTransitionTime": beat,
                }
                for kind, status in states.items()
            ]
        },
    }


def _matches_labels(labels: dict[str, str], selector: str | None) -> bool:
    if not selector:
        return True
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip().lstrip("="):
            return False
    return True


def _field(obj: Obj, path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _matches_fields(obj: Obj, selector: str | None) -> bool:
    if not selector:
        return True
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if str(_field(obj, key.strip())) != value.strip().lstrip("="):
            return False
    return True


def _merge(into: Obj, patch: Obj) -> None:
    for key, value in patch.items():
        if value is None:
            into.pop(key, None)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any = None


@dataclass
class ClusterState:
    """What the fake cluster holds; tests put objects in before (or while) the bot reads."""

    pods: dict[tuple[str, str], Obj] = field(default_factory=dict)
    deployments: dict[tuple[str, str], Obj] = field(default_factory=dict)
    replica_sets: dict[tuple[str, str], Obj] = field(default_factory=dict)
    events: list[Obj] = field(default_factory=list)
    nodes: dict[str, Obj] = field(default_factory=dict)
    # (namespace, pod, container, previous) -> log text
    logs: dict[tuple[str, str, str, bool], str] = field(default_factory=dict)
    pod_metrics: dict[str, list[Obj]] | None = None  # None: metrics API not installed
    node_metrics: list[Obj] | None = None

    def add(self, obj: Obj) -> Obj:
        kind, meta = obj["kind"], obj["metadata"]
        if kind == "Pod":
            self.pods[(meta["namespace"], meta["name"])] = obj
        elif kind == "Deployment":
            self.deployments[(meta["namespace"], meta["name"])] = obj
            _roll_out(self, obj)
        elif kind == "ReplicaSet":
            self.replica_sets[(meta["namespace"], meta["name"])] = obj
        elif kind == "Event":
            self.events.append(obj)
        elif kind == "Node":
            self.nodes[meta["name"]] = obj
        else:
            raise ValueError(f"the fake cluster holds no {kind}")
        return obj

    def new_revision(self, namespace: str, deployment_name: str, image: str) -> Obj:
        """The deployment's container image changed (`kubectl set image`): a new revision,
        its ReplicaSet made by the deployment controller; the old one stays, to roll back."""
        found = self.deployments[(namespace, deployment_name)]
        found["spec"]["template"]["spec"]["containers"][0]["image"] = image
        found["metadata"]["generation"] = int(found["metadata"]["generation"]) + 1
        _roll_out(self, found)
        return found

    def replica_set_of(self, namespace: str, deployment_name: str) -> Obj:
        """The deployment's current ReplicaSet (its newest revision), whose pods it owns."""
        owner_uid = self.deployments[(namespace, deployment_name)]["metadata"]["uid"]
        owned = [
            rs
            for (ns, _), rs in self.replica_sets.items()
            if ns == namespace
            and any(r.get("uid") == owner_uid for r in rs["metadata"].get("ownerReferences", []))
        ]
        return max(owned, key=_revision_of)

    def set_log(
        self, namespace: str, pod_name: str, text: str, *, container: str = "app", previous=False
    ) -> None:
        self.logs[(namespace, pod_name, container, previous)] = text


def _template_hash(template: Obj) -> str:
    plain = copy.deepcopy(template)
    (plain.get("metadata") or {}).get("labels", {}).pop("pod-template-hash", None)
    digest = hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()
    return digest[:10]


_REVISION = "deployment.kubernetes.io/revision"


def _revision_of(obj: Obj) -> int:
    return int((obj["metadata"].get("annotations") or {}).get(_REVISION, "0"))


def _roll_out(state: ClusterState, deployment: Obj) -> None:
    """What the deployment controller does for the current template: find or create its
    ReplicaSet; a template that is not the newest revision becomes the next revision."""
    meta = deployment["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    template = deployment["spec"]["template"]
    digest = _template_hash(template)
    owned = [
        rs
        for (ns, _), rs in state.replica_sets.items()
        if ns == namespace
        and any(ref.get("uid") == meta["uid"] for ref in rs["metadata"].get("ownerReferences", []))
    ]
    newest = max((_revision_of(rs) for rs in owned), default=0)
    found = next((rs for rs in owned if rs["metadata"]["name"] == f"{name}-{digest}"), None)
    if found is None:
        revision = max(newest + 1, _revision_of(deployment) or 1)
        labels = dict(template.get("metadata", {}).get("labels") or {})
        labels["pod-template-hash"] = digest
        rs_template = copy.deepcopy(template)
        rs_template.setdefault("metadata", {})["labels"] = labels
        found = {
            "kind": "ReplicaSet",
            "apiVersion": "apps/v1",
            "metadata": _meta(f"{name}-{digest}", namespace, labels)
            | {
                "annotations": {_REVISION: str(revision)},
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": name,
                        "uid": meta["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "replicas": deployment["spec"]["replicas"],
                "selector": {"matchLabels": labels},
                "template": rs_template,
            },
            "status": {"replicas": 0},
        }
        state.replica_sets[(namespace, found["metadata"]["name"])] = found
    elif _revision_of(found) < newest:
        found["metadata"]["annotations"][_REVISION] = str(newest + 1)  # an old one, again
    meta.setdefault("annotations", {})[_REVISION] = str(_revision_of(found))


def _json_patch(into: Obj, operations: list[Obj]) -> None:
    for operation in operations:
        path = [p.replace("~1", "/").replace("~0", "~") for p in operation["path"].split("/")[1:]]
        parent: Any = into
        for part in path[:-1]:
            parent = parent[part]
        if operation["op"] in ("replace", "add"):
            parent[path[-1]] = copy.deepcopy(operation["value"])
        elif operation["op"] == "remove":
            del parent[path[-1]]
        else:
            raise KeyError(f"JSON patch op {operation['op']}")


def _status(code: int, reason: str, message: str) -> Obj:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class FakeKubernetes:
    """The server: `start()`, point a kubeconfig at `url`, `stop()`."""

    def __init__(self) -> None:
        self.state = ClusterState()
        self.requests: list[Recorded] = []
        self.hang_paths: set[str] = set()
        self.fail: dict[str, int] = {}
        self.fail_reason: dict[str, str] = {}
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeKubernetes:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The headers and the body leave in two writes: with Nagle's algorithm on, the
            # body waited for the client's delayed ACK of the headers, 40 ms a request on a
            # kept-alive connection (2.5 s of a test that restarts a deployment a few times).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def _handle(self) -> None:
                fake._dispatch(self)

            do_GET = do_PATCH = do_DELETE = do_PUT = do_POST = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # shutdown() waits for the loop to look at its flag, every poll_interval (0.5 s by
        # default: 0.25 s on average at every test's end).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def write_kubeconfig(self, path: Path, *, context: str = "test") -> Path:
        """A kubeconfig whose `context` points at this server (token auth, plain HTTP)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "bot", "user": {"token": "fake-token-not-a-secret"}}],
            "contexts": [{"name": context, "context": {"cluster": "fake", "user": "bot"}}],
            "current-context": context,
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def paths_requested(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests]

    # -- routing --------------------------------------------------------------------------

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        query = parse_qs(url.query)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        with self._lock:
            self.requests.append(Recorded(handler.command, url.path, query, body))
        if url.path in self.hang_paths or f"{handler.command} {url.path}" in self.hang_paths:
            self._release.wait(timeout=120)
            return
        try:
            failing = self.fail.get(f"{handler.command} {url.path}")
            reason = self.fail_reason.get(f"{handler.command} {url.path}")
            if failing is not None:
                status, payload = failing, _status(failing, "InternalError", "injected failure")
            else:
                status, payload = self._route(handler.command, url.path, query, body)
        except KeyError as exc:
            status, payload = 404, _status(404, "NotFound", f"{exc.args[0]} not found")
        if isinstance(payload, str):
            data, content_type = payload.encode(), "text/plain"
        else:
            data, content_type = json.dumps(payload).encode(), "application/json"
        handler.send_response(status, reason if failing is not None else None)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Obj | str]:
        q = {key: values[0] for key, values in query.items()}
        parts = path.strip("/").split("/")
        state = self.state
        if parts == ["version"]:
            return 200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0-fake"}
        if parts[:2] == ["api", "v1"] and parts[2:3] == ["nodes"] and len(parts) == 3:
            return 200, self._list("NodeList", "v1", list(state.nodes.values()), q)
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) >= 5:
            namespace, resource, rest = parts[3], parts[4], parts[5:]
            if resource == "pods":
                return self._pods(method, namespace, rest, q, body)
            if resource == "events" and not rest:
                items = [e for e in state.events if e["metadata"]["namespace"] == namespace]
                return 200, self._list("EventList", "v1", items, q)
        if parts[:4] == ["apis", "apps", "v1", "namespaces"] and len(parts) >= 6:
            namespace, resource, rest = parts[4], parts[5], parts[6:]
            if resource == "deployments":
                return self._deployments(method, namespace, rest, q, body)
            if resource == "replicasets" and not rest:
                items = [rs for (ns, _), rs in state.replica_sets.items() if ns == namespace]
                return 200, self._list("ReplicaSetList", "apps/v1", items, q)
        if parts[:3] == ["apis", "metrics.k8s.io", "v1beta1"]:
            return self._metrics(parts[3:])
        return 404, _status(404, "NotFound", f"the server could not find {path}")

    def _list(self, kind: str, api_version: str, items: list[Obj], q: dict[str, str]) -> Obj:
        selected = [
            item
            for item in items
            if _matches_labels(item["metadata"].get("labels") or {}, q.get("labelSelector"))
            and _matches_fields(item, q.get("fieldSelector"))
        ]
        return {
            "kind": kind,
            "apiVersion": api_version,
            "metadata": {"resourceVersion": "1"},
            "items": selected,
        }

    def _pods(
        self, method: str, namespace: str, rest: list[str], q: dict[str, str], body: Any = None
    ) -> tuple[int, Obj | str]:
        state = self.state
        if not rest:
            items = [p for (ns, _), p in state.pods.items() if ns == namespace]
            return 200, self._list("PodList", "v1", items, q)
        name = rest[0]
        found = state.pods.get((namespace, name))
        if found is None:
            return 404, _status(404, "NotFound", f'pods "{name}" not found')
        if rest[1:] == ["log"]:
            container = q.get("container") or found["spec"]["containers"][0]["name"]
            previous = q.get("previous") in ("true", "True", "1")
            text = state.logs.get((namespace, name, container, previous))
            if text is None:
                which = "previous terminated container" if previous else "container"
                message = f'{which} "{container}" in pod "{name}" not found'
                return 400, _status(400, "BadRequest", message)
            lines = text.splitlines()
            if "tailLines" in q:
                lines = lines[-int(q["tailLines"]) :]
            return 200, "\n".join(lines) + ("\n" if lines else "")
        if method == "DELETE" and not rest[1:]:
            wanted_uid = ((body or {}).get("preconditions") or {}).get("uid")
            if wanted_uid and wanted_uid != found["metadata"]["uid"]:
                message = (
                    f"Precondition failed: UID in precondition: {wanted_uid}, UID in object"
                    f" meta: {found['metadata']['uid']}"
                )
                return 409, _status(409, "Conflict", message)
            del state.pods[(namespace, name)]
            return 200, found
        return 200, found

    def _deployments(
        self, method: str, namespace: str, rest: list[str], q: dict[str, str], body: Any
    ) -> tuple[int, Obj | str]:
        state = self.state
        if not rest:
            items = [d for (ns, _), d in state.deployments.items() if ns == namespace]
            return 200, self._list("DeploymentList", "apps/v1", items, q)
        name = rest[0]
        found = state.deployments.get((namespace, name))
        if found is None:
            return 404, _status(404, "NotFound", f'deployments.apps "{name}" not found')
        if rest[1:] == ["scale"]:
            if method == "PATCH" and isinstance(body, dict):
                replicas = (body.get("spec") or {}).get("replicas")
                if replicas is not None and int(replicas) != found["spec"]["replicas"]:
                    found["spec"]["replicas"] = int(replicas)
                    found["metadata"]["generation"] = int(found["metadata"]["generation"]) + 1
            return 200, {
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"replicas": found["spec"]["replicas"]},
                "status": {"replicas": found["status"]["replicas"]},
            }
        if method == "PATCH" and isinstance(body, dict | list):
            before = copy.deepcopy(found["spec"])
            if isinstance(body, list):
                _json_patch(found, body)
            else:
                _merge(found, body)
            if found["spec"] != before:
                found["metadata"]["generation"] = int(found["metadata"].get("generation", 1)) + 1
            if found["spec"]["template"] != before["template"]:
                _roll_out(state, found)
        return 200, found

    def _metrics(self, rest: list[str]) -> tuple[int, Obj]:
        state = self.state
        missing = _status(404, "NotFound", "the server could not find the requested resource")
        if rest == ["nodes"]:
            if state.node_metrics is None:
                return 404, missing
            return 200, {"kind": "NodeMetricsList", "items": state.node_metrics}
        if len(rest) == 3 and rest[0] == "namespaces" and rest[2] == "pods":
            if state.pod_metrics is None:
                return 404, missing
            items = state.pod_metrics.get(rest[1], [])
            return 200, {
                "kind": "PodMetricsList",
                "apiVersion": "metrics.k8s.io/v1beta1",
                "items": items,
            }
        return 404, missing


def pod_metrics(name: str, *, namespace: str, cpu: str, memory: str, container="app") -> Obj:
    """One PodMetrics item ("250m" CPU, "200Mi" memory)."""
    return {
        "metadata": {"name": name, "namespace": namespace},
        "timestamp": rfc3339(_now()),
        "window": "30s",
        "containers": [{"name": container, "usage": {"cpu": cpu, "memory": memory}}],
    }
