"""deploy/prometheus/: the bot's own alerting rules pass `promtool check rules` and their unit
tests (`promtool test rules`), every rule is tested firing and not firing, and they read only
metrics the bot exports. The example policies' PromQL parses too."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import Counter, Gauge, Histogram

from bot import metrics
from bot.policy import load_policy

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "chatops-bot-rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "chatops-bot-rules.test.yml"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    assert Path(promtool).is_file(), "promtool missing: scripts/_bootstrap.sh installs prometheus"
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_rules_pass_promtool_check() -> None:
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


def test_the_rules_pass_their_unit_tests() -> None:
    result = _promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_cover_the_bots_health() -> None:
    names = {rule["alert"] for rule in _rules()}
    assert {
        "ChatopsBotDown",
        "ChatopsOutboxBacklog",
        "ChatopsOutboxStale",
        "ChatopsSlackRateLimited",
        "ChatopsStoreUnavailable",
        "ChatopsRemindersLate",
    } <= names
    for rule in _rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_every_rule_is_tested_firing_and_not_firing() -> None:
    cases = [
        case
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
    ]
    for rule in _rules():
        mine = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case["exp_alerts"] for case in mine), f"{rule['alert']} never seen firing"
        assert any(not case["exp_alerts"] for case in mine), f"{rule['alert']} never seen quiet"


def test_the_rules_read_metrics_the_bot_exports() -> None:
    exported = {
        m.describe()[0].name
        for m in vars(metrics).values()
        if isinstance(m, Counter | Gauge | Histogram)
    }
    read = {
        re.sub(r"_(bucket|count|sum|total)$", "", name)
        for rule in _rules()
        for name in re.findall(r"chatops_[a-z_]+", rule["expr"])
    }
    assert read and read <= exported, read - exported


def test_the_example_policies_prometheus_queries_parse(tmp_path: Path) -> None:
    rules = [
        {"record": f"check:{name}:{query.name}", "expr": query.expr}
        for path in [ROOT / "chatops.example.yml", *sorted((ROOT / "examples").glob("*.yml"))]
        for name, service in load_policy(path).services.items()
        if service.prometheus is not None
        for query in service.prometheus.queries
    ]
    assert rules, "examples/shop.yml shows the runbook's thresholds as queries"
    as_rules = tmp_path / "queries.yml"
    as_rules.write_text(yaml.safe_dump({"groups": [{"name": "examples", "rules": rules}]}))
    result = _promtool("check", "rules", str(as_rules))
    assert result.returncode == 0, result.stdout + result.stderr
