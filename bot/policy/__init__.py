"""The policy file: severity matrix, escalation, roles and service catalog.

Loaded into pydantic models (bot.policy.models) from YAML (bot.policy.loading). Every error
names its place in the file (`severities.P1.ack_within: invalid duration '30 minutes'`),
with the line when known.
"""

from __future__ import annotations

# The catalog is part of the policy: its models are named from here too.
from bot.catalog import (
    AutoRecovery,
    AwsTarget,
    Band,
    EcsTarget,
    HttpCheck,
    KubernetesTarget,
    PostgresTarget,
    RedisTarget,
    Service,
    Thresholds,
)
from bot.models import Severity
from bot.policy.calendar import Calendar
from bot.policy.loading import (
    MAX_POLICY_BYTES,
    MAX_POLICY_DEPTH,
    MAX_POLICY_VALUES,
    default_policy_text,
    load_policy,
    parse_policy,
)
from bot.policy.models import (
    Drills,
    EscalationLevel,
    NotifyTarget,
    Policy,
    RemediationRoles,
    RemediationSettings,
    ResponseTimes,
    Reviews,
    Roles,
    SlackChannel,
    SlackTarget,
)

__all__ = [
    "MAX_POLICY_BYTES",
    "MAX_POLICY_DEPTH",
    "MAX_POLICY_VALUES",
    "AutoRecovery",
    "AwsTarget",
    "Band",
    "Calendar",
    "Drills",
    "EcsTarget",
    "EscalationLevel",
    "HttpCheck",
    "KubernetesTarget",
    "NotifyTarget",
    "Policy",
    "PostgresTarget",
    "RedisTarget",
    "RemediationRoles",
    "RemediationSettings",
    "ResponseTimes",
    "Reviews",
    "Roles",
    "Service",
    "Severity",
    "SlackChannel",
    "SlackTarget",
    "Thresholds",
    "default_policy_text",
    "load_policy",
    "parse_policy",
]
