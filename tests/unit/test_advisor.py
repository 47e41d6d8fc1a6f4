"""The advisor acts on exactly what a finding flagged (issue 15): thresholds in seconds, the
named pids less those remediation would refuse, nothing offered that would change nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.catalog import Service
from bot.diagnostics.advisor import advise, describe
from bot.diagnostics.findings import CheckRun, Finding, Grade, Report, Suggestion
from bot.errors import UsageError
from bot.remediation import actions
from bot.slack.diagnosis_blocks import summary_blocks

PG = Service.model_validate({"postgres": {"dsn_env": "X"}})


def _finding(check: str, grade: Grade, **facts: object) -> Finding:
    return Finding(check, check, grade, "summary", facts=facts)


def test_seconds_thresholds_are_kept_and_the_named_pids_carried() -> None:
    findings = [
        _finding("postgres.idle_in_transaction", Grade.WARN, pids=[11, 12, 13], over_s=2.0),
        _finding("postgres.long_queries", Grade.WARN, pids=[21], over_s=2.0),
    ]
    fixes = {s.action: s for s in advise("shop", PG, findings)}
    idle = fixes["postgres.terminate_idle_in_transaction"]
    assert idle.params == {"older_than_s": 2, "pids": [11, 12, 13]}
    assert idle.label == "End 3 sessions idle in transaction > 2 s"
    assert fixes["postgres.terminate_long_queries"].params == {"older_than_s": 2, "pids": [21]}
    assert describe("shop", PG, idle.action, dict(idle.params)) == (
        "terminate sessions idle in transaction over 2 s on shop's database (pids 11, 12, 13)"
    )


def test_backends_remediation_would_refuse_get_no_button() -> None:
    findings = [
        _finding(
            "postgres.idle_in_transaction",
            Grade.WARN,
            pids=[11, 12],
            over_s=300,
            left_alone=[[11, "superuser"], [12, "superuser"]],
        ),
        _finding(
            "postgres.blocking", Grade.CRIT, blocking_pids=[31], left_alone=[[31, "superuser"]]
        ),
        _finding("postgres.long_queries", Grade.WARN, pids=[21, 22], left_alone=[[22, "database"]]),
    ]
    fixes = advise("shop", PG, findings)
    assert [(s.action, s.params) for s in fixes] == [
        ("postgres.terminate_long_queries", {"older_than_s": 300, "pids": [21]})
    ]


def test_connections_near_the_limit_without_idle_sessions_offer_nothing_to_end() -> None:
    crowded = _finding("postgres.connections", Grade.CRIT, pct=99.0)
    quiet = _finding("postgres.idle", Grade.OK)
    assert advise("shop", PG, [crowded, quiet]) == []
    idle = _finding("postgres.idle", Grade.WARN, pids=[41, 42], over_s=90.5)
    [fix] = advise("shop", PG, [crowded, idle])
    assert fix.params == {"older_than_s": 90, "pids": [41, 42]}


def test_pids_can_be_typed_and_are_checked() -> None:
    spec = actions.spec_for("postgres.terminate_idle_in_transaction")
    typed = actions.parse_words(spec, ["older_than=2", "pids=11,12"])
    assert typed.model_dump() == {"older_than_s": 2, "pids": (11, 12)}
    with pytest.raises(UsageError, match="pids"):
        actions.parse_words(spec, ["older_than=2", "pids=11;DROP"])
    with pytest.raises(UsageError, match="pid"):
        actions.from_button(spec, {"older_than_s": 2, "pids": [0]})


K8S = Service.model_validate(
    {"kubernetes": {"namespace": "shop", "deployments": ["search"], "max_replicas": 6}}
)


def _oom_loop(limit: str = "256Mi") -> Finding:
    container = {
        "name": "app",
        "restarts": 9,
        "last_reason": "OOMKilled",
        "exit_code": 137,
        "memory_limit": limit,
        "memory_request": "128Mi",
    }
    loop = {
        "pod": "search-abc-1",
        "reason": "CrashLoopBackOff",
        "deployment": "search",
        "containers": [container],
        "oom_killed": ["app"],
    }
    return _finding("kubernetes.pods", Grade.CRIT, crashloops=[loop], failing=[loop])


def test_an_oom_crash_loop_follows_the_memory_path_not_a_restart() -> None:
    rollout = _finding(
        "kubernetes.rollout",
        Grade.CRIT,
        deployment="search",
        desired=2,
        ready=0,
        updated=1,  # a rollout in progress: rolling back may help, after the memory path
        revision=3,
        previous_revision=2,
    )
    fixes = advise("search", K8S, [_oom_loop(), rollout])
    assert [s.action for s in fixes] == [
        "advice.raise_memory_limit",
        "kubernetes.scale",
        "kubernetes.rollback",
    ]
    assert fixes[0].params == {"deployment": "search", "container": "app", "limit": "256Mi"}
    assert fixes[1].params == {"deployment": "search", "replicas": 3}


def test_the_raise_memory_button_is_said_again_from_the_catalog_and_checked() -> None:
    said = describe(
        "search",
        K8S,
        "advice.raise_memory_limit",
        {"deployment": "search", "container": "app", "limit": "256Mi"},
    )
    assert said == (
        "by hand: raise the memory limit of container app in deployment shop/search above"
        " 256Mi in its manifest and roll it out; nothing to run"
    )
    forged = {"deployment": "search", "container": "<!here>", "limit": "1Gi; rm -rf"}
    assert describe("search", K8S, "advice.raise_memory_limit", forged) == (
        "by hand: raise the memory limit of deployment shop/search in its manifest and roll it"
        " out; nothing to run"
    )
    other = {"deployment": "checkout", "container": "app", "limit": "1Gi"}
    assert describe("search", K8S, "advice.raise_memory_limit", other) is None
    # The action that was suggested before, and never existed, is not suggested any more.
    memory = _finding("kubernetes.memory", Grade.CRIT, pct=97.0, deployment="search", limit_mib=256)
    rollout = _finding("kubernetes.rollout", Grade.OK, deployment="search", desired=4, updated=4)
    suggested = advise("search", K8S, [memory, rollout])
    assert [s.action for s in suggested] == ["advice.raise_memory_limit", "kubernetes.scale"]
    assert suggested[1].params["replicas"] == 6  # from the 4 read, within the maximum


def test_no_scale_out_is_offered_from_a_replica_count_never_read() -> None:
    # The deployment could not be read (its check answered 500): the catalog's minimum, 2,
    # stood in for its 8 replicas, and "Scale search to 3" would have scaled it in. The
    # failed check's CRIT offered "Restart None" too.
    memory = _finding("kubernetes.memory", Grade.CRIT, pct=97.0, deployment="search", limit_mib=256)
    unread = _finding("kubernetes.rollout", Grade.CRIT)
    suggested = advise("search", K8S, [memory, unread])
    assert [s.action for s in suggested] == ["advice.raise_memory_limit"]


def test_an_oom_kill_of_any_crash_looping_pod_follows_the_memory_path() -> None:
    # Two pods of search crash-looping, only the second killed at its memory limit: the
    # advisor read the first alone and offered Restart, while automatic recovery, seeing the
    # OOMKilled pod, restarts nothing and pages at once.
    [oom] = _oom_loop().facts["crashloops"]
    plain = {
        "pod": "search-abc-0",
        "reason": "CrashLoopBackOff",
        "deployment": "search",
        "containers": [{"name": "app", "restarts": 9, "last_reason": "Error", "exit_code": 1}],
        "oom_killed": [],
    }
    pods = _finding("kubernetes.pods", Grade.CRIT, crashloops=[plain, oom], failing=[plain, oom])
    rollout = _finding(
        "kubernetes.rollout", Grade.CRIT, deployment="search", desired=2, ready=0, updated=2
    )
    fixes = advise("search", K8S, [pods, rollout])
    assert [s.action for s in fixes] == ["advice.raise_memory_limit", "kubernetes.scale"]


def test_pods_can_be_typed_one_or_several_and_an_older_buttons_pod_is_the_same_change() -> None:
    spec = actions.spec_for("kubernetes.delete_pod")
    older_button = actions.from_button(spec, {"deployment": "search", "pod": "search-abc-1"})
    assert older_button == actions.parse_words(spec, ["pods=search-abc-1"])
    assert older_button == actions.parse_words(spec, ["pod=search-abc-1"])
    several = actions.parse_words(spec, ["search-abc-2,search-abc-1"])
    assert several.model_dump() == {"pods": ("search-abc-1", "search-abc-2")}  # one order
    with pytest.raises(UsageError, match="at most 25"):
        actions.parse_words(spec, ["pods=" + ",".join(f"p{n}" for n in range(26))])
    with pytest.raises(UsageError, match="'Bad_Pod' is not a pod name"):
        actions.parse_words(spec, ["pods=search-abc-1,Bad_Pod"])


def test_a_suggestion_button_is_never_posted_with_its_value_cut() -> None:
    # Slack keeps 2,000 characters of a button's value: a longer one was cut to broken JSON,
    # and its click requested nothing. Such a button is left out; its line still says it.
    fits = Suggestion("kubernetes.scale", "Scale search to 6", "scale", "slow", "k", {"n": 6})
    huge = Suggestion("kubernetes.delete_pod", "Replace", "delete", "loop", "k", {"x": "p" * 2000})
    run = CheckRun(name="kubernetes", system="kubernetes", seconds=1.0, findings=())
    report = Report("search", datetime(2026, 12, 6, tzinfo=UTC), 1.0, (run,), (fits, huge))
    blocks = summary_blocks(report, actor="U0ALICE")
    [buttons] = [b["elements"] for b in blocks if b["type"] == "actions"]
    assert [b["text"]["text"] for b in buttons] == ["Scale search to 6"]
    assert "Replace" in str(blocks)
    report = Report("search", datetime(2026, 12, 6, tzinfo=UTC), 1.0, (run,), (huge,))
    assert not [b for b in summary_blocks(report, actor="U0ALICE") if b["type"] == "actions"]
