"""Prometheus metrics: what an operator graphs and alerts on (served at GET /metrics).

Counters and histograms are module-level, in prometheus-client's default registry, and are
incremented where things happen; the outbox and overdue-reminder gauges are read from the store
at each scrape (several replicas share one store: every replica reports the same values), and
`chatops_store_up` says whether those reads succeeded.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
_LATENESS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)

REQUESTS = Counter(
    "chatops_requests_total",
    "Slack requests by kind (command, action, view, event...) and outcome",
    ["kind", "outcome"],
)
ACK_SECONDS = Histogram(
    "chatops_ack_seconds",
    "From a Slack request's arrival to its acknowledgement",
    ["kind"],
    buckets=_LATENCY,
)
OUTBOX_PENDING = Gauge("chatops_outbox_pending", "Notifications accepted and not yet delivered")
OUTBOX_OLDEST_SECONDS = Gauge(
    "chatops_outbox_oldest_pending_seconds", "Age of the oldest undelivered notification"
)
OUTBOX_EFFECTS = Counter(
    "chatops_outbox_effects_total",
    "Outbox delivery attempts by effect kind and outcome (delivered, retry, failed)",
    ["kind", "outcome"],
)
REMINDERS_FIRED = Counter(
    "chatops_reminders_fired_total", "Escalation and SLA reminders fired", ["kind"]
)
REMINDERS_OVERDUE_SECONDS = Gauge(
    "chatops_reminders_overdue_seconds",
    "How long past its due time the most overdue unfired reminder is (0 when none)",
)
REMINDER_LATENESS = Histogram(
    "chatops_reminder_lateness_seconds",
    "How long after its due time a reminder fired",
    buckets=_LATENESS,
)
SLACK_CALLS = Counter("chatops_slack_calls_total", "Slack Web API calls", ["method"])
SLACK_ERRORS = Counter(
    "chatops_slack_errors_total", "Slack Web API calls that failed", ["method", "error"]
)
SLACK_RATE_LIMITED = Counter(
    "chatops_slack_rate_limited_total",
    "Slack Web API calls answered 429 (rate limited), by method",
    ["method"],
)
SLACK_PACE_WAIT = Histogram(
    "chatops_slack_pace_wait_seconds",
    "How long a Web API call waited for its slot under Slack's limits",
    buckets=_LATENESS,
)
DIAGNOSES = Counter("chatops_diagnoses_total", "Diagnoses run, by worst grade", ["grade"])
CHECK_SECONDS = Histogram(
    "chatops_check_seconds", "Duration of one diagnostic check", ["system"], buckets=_LATENCY
)
REMEDIATIONS = Counter(
    "chatops_remediations_total", "Remediations by action and outcome", ["action", "outcome"]
)
STORE_ERRORS = Counter("chatops_store_errors_total", "Store (database) operations that failed")
STORE_UP = Gauge(
    "chatops_store_up", "1 when the store answered this scrape's reads in time, else 0"
)
REDIS_ERRORS = Counter(
    "chatops_redis_errors_total", "Redis operations that failed, by component", ["component"]
)
REPLICAS_LISTENING = Gauge(
    "chatops_replicas_listening",
    "1 while this process hears the other replicas' signals (Redis pub/sub), else 0",
)
REPLICAS_OUTAGES = Counter(
    "chatops_replicas_outages_total",
    "Times this process stopped hearing the other replicas (Redis pub/sub lost), each outage"
    " counted once however many retries it took",
)

ALERTS_RECEIVED = Counter(
    "chatops_alerts_received_total",
    "Alerts received from monitors, by source (alertmanager, grafana, generic) and outcome"
    " (new, resolved, recorded, ignored, duplicate; refused and unauthorized count posts;"
    " left_out counts alerts of a group a post did not carry: max_alerts, or past 2,000)",
    ["source", "outcome"],
)
ALERTS_DECIDED = Counter(
    "chatops_alerts_decided_total",
    "Recorded alerts decided, by outcome (declared, attached, reopened, stormed, recorded,"
    " cleared)",
    ["outcome"],
)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
