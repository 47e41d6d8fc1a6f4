"""AWS: ECS running vs desired with its latest events, RDS status, CloudWatch metrics over the
last hour, CloudWatch Logs filtered for ERROR over a window, Auto Scaling capacity."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

from bot.catalog import AwsTarget, Band, CloudWatchMetric, Thresholds
from bot.diagnostics.findings import Check, Finding, Grade
from bot.diagnostics.grading import describe_above, grade_above, seconds_words
from bot.targets.aws import AwsClient
from bot.targets.errors import TargetNotFound

_RDS_OK = {"available"}
_RDS_CRIT = {"failed", "stopped", "stopping", "storage-full", "inaccessible-encryption-credentials"}
_RDS_CRIT |= {"incompatible-network", "incompatible-parameters", "incompatible-restore"}
_LOG_LINES = 20


def checks(target: AwsTarget, thresholds: Thresholds, client: AwsClient) -> list[Check]:
    timeout = target.timeout.seconds * 2 + 2
    found: list[Check] = []
    if target.ecs is not None:
        found.append(Check("aws.ecs", "aws", "ECS service", timeout, lambda: _ecs(target, client)))
    if target.rds is not None:
        found.append(Check("aws.rds", "aws", "RDS instance", timeout, lambda: _rds(target, client)))
    for metric in target.cloudwatch_metrics():
        found.append(
            Check(
                f"aws.cloudwatch {metric.namespace} {metric.name}",
                "aws",
                f"CloudWatch {metric.name}",
                timeout,
                functools.partial(_metric, metric, thresholds, client),
            )
        )
    if target.log_group is not None:
        found.append(
            Check("aws.logs", "aws", "CloudWatch Logs", timeout, lambda: _logs(target, client))
        )
    if target.autoscaling_group is not None:
        found.append(
            Check("aws.autoscaling", "aws", "Auto Scaling", timeout, lambda: _asg(target, client))
        )
    return found


async def _ecs(target: AwsTarget, client: AwsClient) -> list[Finding]:
    assert target.ecs is not None
    cluster, name = target.ecs.cluster, target.ecs.service
    answer = await client.call("ecs", "describe_services", cluster=cluster, services=[name])
    services = answer.get("services") or []
    if not services:
        raise TargetNotFound("aws", f"ECS service {name} not found in cluster {cluster}")
    service = services[0]
    desired, running = int(service.get("desiredCount", 0)), int(service.get("runningCount", 0))
    pending = int(service.get("pendingCount", 0))
    events = service.get("events") or []
    if running >= desired:
        grade = Grade.OK
    else:
        grade = Grade.CRIT if running == 0 else Grade.WARN
    summary = f"{running} of {desired} tasks running, {pending} pending"
    if events:
        summary += f"; latest event: {events[0].get('message', '')[:160]}"
    return [
        Finding(
            "aws.ecs",
            f"ECS {cluster}/{name}",
            grade,
            summary,
            threshold="running = desired",
            evidence=tuple(
                f"{event.get('createdAt', '')}: {event.get('message', '')}" for event in events[:10]
            ),
            facts={"cluster": cluster, "service": name, "desired": desired, "running": running},
        )
    ]


async def _rds(target: AwsTarget, client: AwsClient) -> list[Finding]:
    answer = await client.call("rds", "describe_db_instances", DBInstanceIdentifier=target.rds)
    instance = (answer.get("DBInstances") or [{}])[0]
    status = str(instance.get("DBInstanceStatus", "unknown"))
    grade = Grade.OK if status in _RDS_OK else Grade.CRIT if status in _RDS_CRIT else Grade.WARN
    return [
        Finding(
            "aws.rds",
            f"RDS {target.rds}",
            grade,
            f"{status} ({instance.get('Engine', '?')} {instance.get('EngineVersion', '')},"
            f" {instance.get('DBInstanceClass', '?')})",
            threshold="status available",
            facts={"status": status, "instance": target.rds},
        )
    ]


async def _metric(metric: CloudWatchMetric, t: Thresholds, client: AwsClient) -> list[Finding]:
    now = datetime.now(UTC)
    answer = await client.call(
        "cloudwatch",
        "get_metric_statistics",
        Namespace=metric.namespace,
        MetricName=metric.name,
        Dimensions=[{"Name": k, "Value": v} for k, v in metric.dimensions.items()],
        StartTime=now - timedelta(hours=1),
        EndTime=now,
        Period=60,
        Statistics=[metric.statistic],
    )
    points = sorted(answer.get("Datapoints") or [], key=lambda p: p["Timestamp"])
    band: Band = getattr(t, metric.threshold, t.cpu_pct)
    check = "aws.cpu" if metric.name == "CPUUtilization" else "aws.metric"
    title = f"{metric.namespace} {metric.name}"
    if not points:
        return [
            Finding(
                check,
                title,
                Grade.OK,
                "note: no data points in the last hour",
                threshold=describe_above(band),
                facts={"latest": None},
            )
        ]
    values = [float(p[metric.statistic]) for p in points]
    latest, peak = values[-1], max(values)
    return [
        Finding(
            check,
            title,
            grade_above(latest, band),
            f"{metric.statistic.lower()} {latest:.1f} now, peak {peak:.1f} over the last hour"
            f" ({len(values)} points)",
            threshold=describe_above(band),
            evidence=tuple(
                f"{p['Timestamp']}: {float(p[metric.statistic]):.1f}" for p in points[-15:]
            ),
            facts={"latest": latest, "peak": peak, "metric": metric.name},
        )
    ]


async def _logs(target: AwsTarget, client: AwsClient) -> list[Finding]:
    window = target.log_window.seconds
    start_ms = int((datetime.now(UTC).timestamp() - window) * 1000)
    answer = await client.call(
        "logs",
        "filter_log_events",
        logGroupName=target.log_group,
        filterPattern=target.log_filter,
        startTime=start_ms,
        limit=100,
    )
    events = answer.get("events") or []
    count = len(events)
    more = "+" if answer.get("nextToken") else ""
    summary = (
        f"{count}{more} lines matching {target.log_filter!r} in the last {seconds_words(window)}"
    )
    if events:
        summary += f"; last: {events[-1].get('message', '').strip()[:160]}"
    return [
        Finding(
            "aws.logs",
            f"Logs {target.log_group}",
            Grade.WARN if events else Grade.OK,
            summary,
            threshold=f"any line matching {target.log_filter!r}",
            evidence=tuple(e.get("message", "").strip() for e in events[-_LOG_LINES:]),
            facts={"count": count},
        )
    ]


async def _asg(target: AwsTarget, client: AwsClient) -> list[Finding]:
    name = target.autoscaling_group
    answer = await client.call(
        "autoscaling", "describe_auto_scaling_groups", AutoScalingGroupNames=[name]
    )
    groups = answer.get("AutoScalingGroups") or []
    if not groups:
        raise TargetNotFound("aws", f"Auto Scaling group {name} not found")
    group = groups[0]
    desired = int(group.get("DesiredCapacity", 0))
    in_service = sum(
        1 for i in group.get("Instances", []) if i.get("LifecycleState") == "InService"
    )
    grade = Grade.OK if in_service >= desired else Grade.CRIT if in_service == 0 else Grade.WARN
    return [
        Finding(
            "aws.autoscaling",
            f"Auto Scaling {name}",
            grade,
            f"{in_service} of {desired} in service (min {group.get('MinSize')},"
            f" max {group.get('MaxSize')})",
            threshold="in service = desired",
            facts={
                "group": name,
                "desired": desired,
                "in_service": in_service,
                "max": int(group.get("MaxSize", desired)),
            },
        )
    ]
