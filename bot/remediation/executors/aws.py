"""AWS: ECS desired count and forced deployments, Auto Scaling desired capacity (boto3)."""

from __future__ import annotations

from typing import Any

from bot.catalog import AwsTarget
from bot.remediation.actions import DesiredParams, Params
from bot.remediation.plans import NotApplicable, Outcome, Preview, Target, unreached
from bot.targets.aws import AwsClient
from bot.targets.errors import TargetError

# After a change AWS accepted: the change stands, whatever the read back says.
_UNREAD = "could not be read back: check it"


def _catalog(target: Target) -> AwsTarget:
    if target.entry.aws is None:
        raise NotApplicable(f"The catalog names no AWS resources for '{target.service}'.")
    aws = target.entry.aws
    if target.spec.name.startswith("ecs.") and aws.ecs is None:
        raise NotApplicable(f"The catalog names no ECS service for '{target.service}'.")
    if target.spec.name.startswith("autoscaling.") and not aws.autoscaling_group:
        raise NotApplicable(f"The catalog names no Auto Scaling group for '{target.service}'.")
    return aws


async def _ecs_service(client: AwsClient, aws: AwsTarget) -> dict[str, Any]:
    assert aws.ecs is not None
    answer = await client.call(
        "ecs", "describe_services", cluster=aws.ecs.cluster, services=[aws.ecs.service]
    )
    services = answer.get("services") or []
    if not services:
        raise NotApplicable(f"ECS service {aws.ecs.cluster}/{aws.ecs.service} does not exist.")
    service: dict[str, Any] = services[0]
    return service


async def _group(client: AwsClient, aws: AwsTarget) -> dict[str, Any]:
    answer = await client.call(
        "autoscaling", "describe_auto_scaling_groups", AutoScalingGroupNames=[aws.autoscaling_group]
    )
    groups = answer.get("AutoScalingGroups") or []
    if not groups:
        raise NotApplicable(f"Auto Scaling group {aws.autoscaling_group} does not exist.")
    group: dict[str, Any] = groups[0]
    return group


def _task_name(arn: str) -> str:
    """`family:revision` of a task definition's ARN (the ARN itself if it has no such end)."""
    return arn.rsplit("/", 1)[-1] or "-"


def _ecs_state(service: dict[str, Any]) -> str:
    deployments = service.get("deployments") or []
    primary: dict[str, Any] = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
    return (
        f"desired {service.get('desiredCount')}, running {service.get('runningCount')},"
        f" {len(deployments)} deployment(s), primary {primary.get('id', '-')}"
    )


class AwsExecutor:
    async def preview(self, target: Target, params: Params) -> Preview:
        aws = _catalog(target)
        client = AwsClient(aws)
        action = target.spec.name
        if action.startswith("ecs."):
            assert aws.ecs is not None
            where = f"ECS service {aws.ecs.cluster}/{aws.ecs.service}"
            service = await _ecs_service(client, aws)
            desired = int(service.get("desiredCount", 0))
            if action == "ecs.force_new_deployment":
                ids = [d.get("id") for d in service.get("deployments") or []]
                task = str(service.get("taskDefinition") or "")
                return Preview(
                    f"force a new deployment of {where} with task definition"
                    f" {_task_name(task)} ({_ecs_state(service)})",
                    {"deployments": ids, "desired": desired, "task_definition": task},
                )
            assert isinstance(params, DesiredParams)
            if params.desired == desired:
                raise NotApplicable(f"{where} already wants {desired} tasks.")
            return Preview(
                f"set {where} desired count from {desired} to {params.desired}"
                f" (running {service.get('runningCount')})",
                {"from": desired, "to": params.desired},
            )
        assert isinstance(params, DesiredParams)
        group = await _group(client, aws)
        low, high, now = group["MinSize"], group["MaxSize"], group["DesiredCapacity"]
        if not low <= params.desired <= high:
            raise NotApplicable(
                f"{params.desired} is outside group {aws.autoscaling_group}'s bounds"
                f" ({low} to {high})."
            )
        if params.desired == now:
            raise NotApplicable(f"Group {aws.autoscaling_group} already wants {now}.")
        return Preview(
            f"set Auto Scaling group {aws.autoscaling_group} desired capacity from {now} to"
            f" {params.desired} (min {low}, max {high})",
            {"from": now, "to": params.desired},
        )

    async def execute(self, target: Target, params: Params, preview: Preview) -> Outcome:
        aws = _catalog(target)
        client = AwsClient(aws)
        action = target.spec.name
        if action.startswith("ecs."):
            assert aws.ecs is not None
            ids = {"cluster": aws.ecs.cluster, "service": aws.ecs.service}
            try:
                service = await _ecs_service(client, aws)
            except TargetError as exc:  # nothing sent yet
                return unreached(exc)
            if action == "ecs.force_new_deployment":
                # A deploy since the preview: forcing now would roll out tasks never approved.
                seen, task = preview.facts.get("task_definition"), service.get("taskDefinition")
                if seen and task != seen:
                    return Outcome(
                        False,
                        "nothing changed",
                        _ecs_state(service),
                        drift=f"the task definition moved from {_task_name(seen)} to"
                        f" {_task_name(str(task or ''))} since the preview",
                    )
                await client.call("ecs", "update_service", **ids, forceNewDeployment=True)
                try:
                    after = await _ecs_service(client, aws)
                except (TargetError, NotApplicable):
                    return Outcome(True, "forced a new deployment", f"the service {_UNREAD}")
                new = [
                    d.get("id")
                    for d in after.get("deployments") or []
                    if d.get("id") not in preview.facts["deployments"]
                ]
                return Outcome(
                    bool(new),
                    f"forced a new deployment ({', '.join(map(str, new)) or 'none started'})",
                    _ecs_state(after),
                    facts={"new_deployments": new},
                )
            desired = int(service.get("desiredCount", 0))
            if desired != preview.facts["from"]:
                return Outcome(
                    False,
                    "nothing changed",
                    _ecs_state(service),
                    drift=f"desired count moved from {preview.facts['from']} to {desired}",
                )
            await client.call("ecs", "update_service", **ids, desiredCount=preview.facts["to"])
            changed = f"desired count {desired} -> {preview.facts['to']}"
            try:
                after = await _ecs_service(client, aws)
            except (TargetError, NotApplicable):
                return Outcome(True, changed, f"the service {_UNREAD}")
            return Outcome(
                after.get("desiredCount") == preview.facts["to"],
                changed,
                _ecs_state(after),
                facts={"desired": after.get("desiredCount")},
            )
        try:
            group = await _group(client, aws)
        except TargetError as exc:  # nothing sent yet
            return unreached(exc)
        if group["DesiredCapacity"] != preview.facts["from"]:
            return Outcome(
                False,
                "nothing changed",
                f"desired capacity {group['DesiredCapacity']}",
                drift=f"desired capacity moved from {preview.facts['from']} to"
                f" {group['DesiredCapacity']}",
            )
        await client.call(
            "autoscaling",
            "set_desired_capacity",
            AutoScalingGroupName=aws.autoscaling_group,
            DesiredCapacity=preview.facts["to"],
            HonorCooldown=False,
        )
        changed = f"desired capacity {preview.facts['from']} -> {preview.facts['to']}"
        try:
            after = await _group(client, aws)
        except (TargetError, NotApplicable):
            return Outcome(True, changed, f"group {aws.autoscaling_group} {_UNREAD}")
        return Outcome(
            after["DesiredCapacity"] == preview.facts["to"],
            changed,
            f"group {aws.autoscaling_group}: desired {after['DesiredCapacity']},"
            f" {len(after.get('Instances') or [])} instances",
            facts={"desired": after["DesiredCapacity"]},
        )
