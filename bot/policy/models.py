"""The policy's shape: severities, escalation, roles, reviews, remediation settings, drills,
and the parts other modules hold (catalog, paging, alerts, status page, calendar), validated
as one pydantic model. Reading it from YAML is bot.policy.loading's."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.catalog import Service, check_service_names
from bot.durations import Duration
from bot.models import Severity
from bot.policy.actions import ACTION_NAMES, RISK_LEVELS
from bot.policy.alerts import AlertsConfig
from bot.policy.calendar import Calendar
from bot.policy.paging import PROVIDERS, PagingConfig
from bot.policy.status_page import StatusComponent, check_components
from bot.schema import Strict
from bot.slack_ids import is_channel_id, is_group_id, is_user_id


def _slack_target(value: str) -> str:
    if not (is_user_id(value) or is_group_id(value)):
        raise ValueError(f"'{value}' is not a Slack user (U...) or user group (S...) ID")
    return value


def _slack_channel(value: str) -> str:
    if not is_channel_id(value):
        raise ValueError(f"'{value}' is not a Slack channel ID (C...)")
    return value


def _notify_target(value: str) -> str:
    if value in PROVIDERS:
        return value
    if not (is_user_id(value) or is_group_id(value)):
        raise ValueError(
            f"'{value}' is not a Slack user (U...), user group (S...) or paging service"
            f" ({', '.join(PROVIDERS)})"
        )
    return value


SlackTarget = Annotated[str, AfterValidator(_slack_target)]
# Who an escalation level pages: Slack users and groups, or a paging service (`paging:`).
NotifyTarget = Annotated[str, AfterValidator(_notify_target)]
SlackChannel = Annotated[str, AfterValidator(_slack_channel)]


class ResponseTimes(Strict):
    """One row of the severity matrix: the response times its incidents are held to (what
    the runbook calls targets; "targets" in this code base are the catalog's clients)."""

    ack_within: Duration
    resolve_within: Duration
    update_every: Duration | None = None


class EscalationLevel(Strict):
    """Who is paged, counted from declaration, while the incident is unacknowledged."""

    after: Duration
    notify: list[NotifyTarget] = Field(min_length=1)

    @property
    def slack_targets(self) -> list[str]:
        """The level's Slack users and user groups (not its paging services)."""
        return [target for target in self.notify if target not in PROVIDERS]

    @property
    def providers(self) -> list[str]:
        """The paging services the level names (pagerduty, opsgenie)."""
        return [target for target in self.notify if target in PROVIDERS]


class Reviews(Strict):
    """Post-incident reviews, counted from the resolution (the runbook: 24 h and 1 week)."""

    preliminary_within: Duration = Duration(seconds=24 * 3600)
    formal_within: Duration = Duration(seconds=7 * 86400)
    # An open action item is reminded to its owner when due, then at this cadence.
    action_items_every: Duration = Duration(business_days=1)

    @field_validator("action_items_every")
    @classmethod
    def _repeats_later(cls, value: Duration) -> Duration:
        # 0 planned each next reminder for the moment it fired: the owner was messaged at
        # every sweep (5 s) for as long as the item stayed open.
        if value.is_zero:
            raise ValueError("must be longer than 0 (like 1bd or 1w)")
        return value


class RemediationRoles(Strict):
    """Who may request and approve one action, or every action of one risk level; a list
    left out falls back to the risk level's, then to `roles`."""

    requesters: list[SlackTarget] | None = None
    approvers: list[SlackTarget] | None = None


class Roles(Strict):
    """Who may do what. An empty list means everyone, except for approvers: nobody."""

    declarers: list[SlackTarget] = Field(default_factory=list)
    responders: list[SlackTarget] = Field(default_factory=list)
    # Who may request a remediation; left out: the responders.
    requesters: list[SlackTarget] | None = None
    approvers: list[SlackTarget] = Field(default_factory=list)
    # Who may publish an incident and its updates on the status page; left out: responders.
    publishers: list[SlackTarget] | None = None
    high_risk_approvals: int = Field(default=2, ge=1, le=5)
    # Per action ("kubernetes.scale") or per risk level ("high"): requesters and approvers.
    remediation: dict[str, RemediationRoles] = Field(default_factory=dict)

    @field_validator("remediation")
    @classmethod
    def _known_keys(cls, value: dict[str, RemediationRoles]) -> dict[str, RemediationRoles]:
        for key in value:
            if key not in ACTION_NAMES and key not in RISK_LEVELS:
                raise ValueError(
                    f"'{key[:60]}' is neither an action ({', '.join(ACTION_NAMES)}) nor a risk"
                    f" level ({', '.join(RISK_LEVELS)})"
                )
        return value

    def nobody_approves(self) -> list[str]:
        """Where an empty approvers list leaves nobody able to approve (for check-config)."""
        found = ["roles.approvers"] if not self.approvers else []
        for key, roles in self.remediation.items():
            if roles.approvers is not None and not roles.approvers:
                found.append(f"roles.remediation.{key}.approvers")
        return found


class RemediationSettings(Strict):
    """How long a request waits for approval, how long an execution may take, and how long
    past that timeout a run still open counts as abandoned by a dead process."""

    expire_after: Duration = Duration(seconds=15 * 60)
    timeout: Duration = Duration(seconds=60)
    watch_grace: Duration = Duration(seconds=10)

    @field_validator("expire_after", "timeout", "watch_grace")
    @classmethod
    def _clock_time(cls, value: Duration, info: ValidationInfo) -> Duration:
        if value.business_days or value.seconds <= 0:
            raise ValueError("must be a positive clock duration (like 90, 15m)")
        if info.field_name == "watch_grace" and value.seconds > 3600:  # told within the hour
            raise ValueError("must be at most 1h")
        return value


class Drills(Strict):
    """`drills:`: practice incidents (`/incident drill`). They page the real escalation
    chain in Slack; PagerDuty and Opsgenie only when `page_providers` says so (without
    it a drill sends them no request at all, not even who is on call)."""

    page_providers: bool = False


class Policy(Strict):
    """The whole policy file."""

    announce_channel: SlackChannel
    war_room_severities: list[Severity] = Field(default_factory=lambda: [Severity.P0, Severity.P1])
    reaction_to_timeline: str = "pushpin"
    calendar: Calendar = Calendar()
    severities: dict[Severity, ResponseTimes]
    escalation: dict[Severity, list[EscalationLevel]] = Field(default_factory=dict)
    reviews: Reviews = Reviews()
    roles: Roles = Roles()
    remediation: RemediationSettings = RemediationSettings()
    services: dict[str, Service] = Field(default_factory=dict)
    paging: PagingConfig = PagingConfig()
    drills: Drills = Drills()
    # The public status page's components; left out: one per catalog service.
    status_page: list[StatusComponent] = Field(default_factory=list)
    alerts: AlertsConfig = AlertsConfig()

    @field_validator("severities")
    @classmethod
    def _all_severities(cls, value: dict[Severity, ResponseTimes]) -> dict[Severity, ResponseTimes]:
        missing = [s.value for s in Severity if s not in value]
        if missing:
            raise ValueError(f"missing severities: {', '.join(missing)}")
        return value

    @field_validator("services")
    @classmethod
    def _service_names(cls, value: dict[str, Service]) -> dict[str, Service]:
        return check_service_names(value)

    @field_validator("escalation")
    @classmethod
    def _levels_in_order(
        cls, value: dict[Severity, list[EscalationLevel]]
    ) -> dict[Severity, list[EscalationLevel]]:
        for severity, levels in value.items():
            delays = [level.after for level in levels]
            if any(d.business_days for d in delays):
                raise ValueError(f"{severity}: escalation delays must be in clock time, not bd")
            if [d.seconds for d in delays] != sorted(d.seconds for d in delays):
                raise ValueError(f"{severity}: levels must be listed in order of 'after'")
        return value

    @model_validator(mode="after")
    def _paging_configured(self) -> Policy:
        configured = self.paging.configured()
        for severity, levels in self.escalation.items():
            for number, level in enumerate(levels, start=1):
                for provider in level.providers:
                    if provider not in configured:
                        raise ValueError(
                            f"escalation.{severity}.{number - 1}.notify: '{provider}' is named"
                            f" but paging.{provider} is not configured"
                        )
        return self

    @model_validator(mode="after")
    def _status_components(self) -> Policy:
        check_components(self.status_page, set(self.services))
        return self

    def status_components(self) -> list[StatusComponent]:
        """The status page's components: `status_page`, or one per catalog service."""
        return self.status_page or [StatusComponent(name=name) for name in sorted(self.services)]

    @model_validator(mode="after")
    def _reaction_name(self) -> Policy:
        if not re.fullmatch(r"[a-z0-9_+\-]+", self.reaction_to_timeline):
            raise ValueError(
                f"reaction_to_timeline: '{self.reaction_to_timeline}' is not an emoji name"
            )
        return self

    def response_times(self, severity: Severity) -> ResponseTimes:
        return self.severities[severity]

    def levels(self, severity: Severity) -> list[EscalationLevel]:
        return self.escalation.get(severity, [])

    def has_war_room(self, severity: Severity) -> bool:
        return severity in self.war_room_severities

    def announced_page(self, severity: Severity) -> tuple[str, ...]:
        """Whom the first level pages at declaration when that page goes to the announcement
        channel (no war room): the announcement carries it, one message instead of two.
        Empty when the first level waits, or when the incident gets a war room."""
        levels = self.levels(severity)
        if not levels or self.has_war_room(severity):
            return ()
        first = levels[0]
        return tuple(first.notify) if first.after.as_timedelta().total_seconds() <= 0 else ()
