"""deploy/ and the Dockerfile, checked statically: no cluster or container engine runs here."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram

from bot import metrics
from bot.clock import SystemClock
from bot.models import Severity
from bot.outbox.dispatcher import OutboxDispatcher
from bot.policy import parse_policy
from bot.runtime import ACKED_WORK_SECONDS
from bot.services import REMEDIATION_STOP_SECONDS
from bot.settings import StoreSettings
from bot.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.30.0"


def _documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in _documents() if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


@pytest.mark.parametrize("doc", _documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_is_valid_against_kubernetes_schemas(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_deployment_runs_two_replicas_with_probes_the_bot_serves() -> None:
    deployment = _one("Deployment")
    assert deployment["spec"]["replicas"] == 2
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    # Not /readyz: a shared dependency down made every replica unready at once
    # (tests/e2e/test_deploy_probes.py).
    assert container["readinessProbe"]["httpGet"]["path"] == "/livez"
    server = (ROOT / "bot" / "server.py").read_text()
    for path in ("/livez", "/readyz", "/metrics"):
        assert f'add_get("{path}"' in server
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "chatops-bot"
    pdb = _one("PodDisruptionBudget")
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    assert pdb["spec"]["minAvailable"] == 1
    assert _one("Job")["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]


def test_a_rollout_keeps_the_old_pod_listening_and_gives_its_stop_time() -> None:
    """A pod stopped at once closed its port while the Service still sent it requests: a
    slash command sent then is lost (Slack does not retry it). The preStop hook keeps it
    listening 5 s; the grace period covers that and the whole of the bot's stop."""
    spec = _one("Deployment")["spec"]["template"]["spec"]
    [container] = spec["containers"]
    assert container["lifecycle"]["preStop"] == {"exec": {"command": ["sleep", "5"]}}
    # The image has `sleep` (Debian's coreutils), or the hook fails and the pod stops at once.
    final_stage = re.findall(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), re.M)[-1]
    assert re.fullmatch(r"python:3\.\d+-slim(-bookworm)?", final_stage), final_stage
    deliveries = OutboxDispatcher(SqliteStore("sqlite://"), SystemClock()).delivery_limit
    bot_stop = ACKED_WORK_SECONDS + REMEDIATION_STOP_SECONDS + deliveries
    assert spec["terminationGracePeriodSeconds"] >= 5 + bot_stop + 1, bot_stop


def test_the_readme_gives_a_docker_container_the_time_its_stop_takes() -> None:
    """`docker stop` kills after 10 s while the bot's stop takes up to 44 s: a notification
    cut short was sent twice, a declaration acknowledged before the stop lost. Every way the
    README runs the image under Docker grants the whole stop."""
    deliveries = OutboxDispatcher(SqliteStore("sqlite://"), SystemClock()).delivery_limit
    bot_stop = ACKED_WORK_SECONDS + REMEDIATION_STOP_SECONDS + deliveries
    readme = (ROOT / "README.md").read_text()
    grants = [
        *re.findall(r"docker run --stop-timeout (\d+)", readme),
        *re.findall(r"docker stop -t (\d+)", readme),
        *re.findall(r"stop_grace_period: (\d+)s", readme),
    ]
    assert len(grants) == 3, grants
    assert all(int(seconds) >= bot_stop + 1 for seconds in grants), (grants, bot_stop)
    assert f"up to {bot_stop:g} s" in readme


def test_the_configmaps_policy_is_one_the_bot_accepts() -> None:
    # The bot exits 2 at start-up on a policy it refuses: the manifests' example must pass.
    policy = parse_policy(
        _one("ConfigMap", "chatops-bot-policy")["data"]["policy.yml"], source="policy.yml"
    )
    assert policy.levels(Severity.P1), "the example pages nobody"
    assert set(policy.services) == {"checkout"}


def test_the_readme_builds_the_image_the_manifests_run() -> None:
    """The README pushed registry.example.com/chatops-bot:0.2.0 while both manifests pulled
    ghcr.io/example/chatops-bot:0.1.0: followed as written, the pods never started."""
    readme = (ROOT / "README.md").read_text()
    [built] = re.findall(r"docker build -t (\S+) \.", readme.split("### In a cluster", 1)[1])
    [container] = _one("Deployment")["spec"]["template"]["spec"]["containers"]
    [job] = _one("Job")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == job["image"] == built


def _environment(container: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """Each variable a container starts with and where its value comes from: ("value", v)
    or ("secret", name, key), the Secrets' keys read from config.yaml for `envFrom`."""
    env: dict[str, tuple[str, ...]] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"secretRef"}, source  # a ConfigMap's keys: read them here too
        name = source["secretRef"]["name"]
        secret = _one("Secret", name)
        for key in {**secret.get("data", {}), **secret.get("stringData", {})}:
            env[key] = ("secret", name, key)
    for variable in container.get("env", []):  # after envFrom: these win, as in Kubernetes
        if "value" in variable:
            env[variable["name"]] = ("value", str(variable["value"]))
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            env[variable["name"]] = ("secret", ref["name"], ref["key"])
    return env


def test_the_migrate_job_reaches_the_database_as_the_deployment_does() -> None:
    """The Deployment and the migrate Job each list their environment. DATABASE_PREPARE=off
    was set on the pods behind a transaction-pooling PgBouncer, and the Job, which goes
    through the same PgBouncer, ran with prepared statements. Every variable both set has
    one value, every database setting of either is the other's, and DATABASE_PREPARE is
    spelled out in both, where an operator behind PgBouncer looks for it."""
    [bot] = _one("Deployment")["spec"]["template"]["spec"]["containers"]
    [migrate] = _one("Job")["spec"]["template"]["spec"]["containers"]
    bot_env, job_env = _environment(bot), _environment(migrate)
    assert "DATABASE_PREPARE" in bot_env and "DATABASE_PREPARE" in job_env
    shared = bot_env.keys() & job_env.keys()
    assert {name: bot_env[name] for name in shared} == {name: job_env[name] for name in shared}
    # What `chatops-bot migrate` reads to reach the database (bot.cli._open_store).
    database = {name for name in StoreSettings.model_fields if name.startswith("DATABASE_")}
    assert database >= {"DATABASE_URL", "DATABASE_PREPARE"}
    for name in sorted(database):
        assert bot_env.get(name) == job_env.get(name), name


def test_a_database_prepare_the_secret_holds_reaches_the_bot_and_the_migrate_job() -> None:
    """Operators behind a transaction-pooling PgBouncer set DATABASE_PREPARE=off where the
    bot's settings live, the Secret the Deployment reads whole (envFrom). A literal
    `DATABASE_PREPARE: "on"` in a manifest's `env` wins over the Secret's in Kubernetes: applied
    on upgrade, it turned prepared statements back on behind PgBouncer (work failing with
    `prepared statement "_pg3_0" does not exist`). Both read the Secret's key, optional, as
    a Secret made before the key was named lacks it (unset: on)."""
    for container in (
        *_one("Deployment")["spec"]["template"]["spec"]["containers"],
        *_one("Job")["spec"]["template"]["spec"]["containers"],
    ):
        assert _environment(container)["DATABASE_PREPARE"] == (
            "secret",
            "chatops-bot",
            "DATABASE_PREPARE",
        ), container["name"]
        for variable in container.get("env", []):
            if variable["name"] == "DATABASE_PREPARE":
                assert variable["valueFrom"]["secretKeyRef"].get("optional") is True


def _rights(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_rbac_grants_only_what_the_catalog_uses() -> None:
    workloads = _rights(_one("ClusterRole", "chatops-bot-workloads"))
    writes = {r for r in workloads if r[2] not in ("get", "list", "watch")}
    # Patch and scale deployments, delete pods (kubernetes.delete_pod): nothing else writes.
    assert writes == {
        ("apps", "deployments", "patch"),
        ("apps", "deployments/scale", "patch"),
        ("", "pods", "delete"),
    }
    assert not any("*" in part for right in workloads for part in right)
    assert not any(resource == "secrets" for _, resource, _ in workloads)
    assert _rights(_one("ClusterRole", "chatops-bot-nodes")) == {
        ("", "nodes", "get"),
        ("", "nodes", "list"),
        ("metrics.k8s.io", "nodes", "get"),
        ("metrics.k8s.io", "nodes", "list"),
    }
    # Workload rights only in the catalog's namespaces, through a RoleBinding.
    assert _one("RoleBinding")["roleRef"]["name"] == "chatops-bot-workloads"
    assert _one("ClusterRoleBinding")["roleRef"]["name"] == "chatops-bot-nodes"


def test_the_dashboard_graphs_metrics_the_bot_exports() -> None:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    exported = {
        m.describe()[0].name
        for m in vars(metrics).values()
        if isinstance(m, Counter | Gauge | Histogram)
    }
    used = {
        re.sub(r"_(bucket|count|sum|total)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"chatops_[a-z_]+", target["expr"])
    }
    assert used and used <= exported, used - exported
    assert exported <= used, f"not on the dashboard: {exported - used}"


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(ROOT / ".venv" / "bin" / "hadolint")
    result = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
