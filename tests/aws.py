"""moto's server, run as a separate process, for tests that speak to AWS over real HTTP.

The bot finds it the way it would find any endpoint: through boto3's standard chain
(AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID...), which the `aws_env` fixture sets. `seed_*` helpers
create the resources the diagnostics read; remediation tests can reuse them.
"""

from __future__ import annotations

import contextlib
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import boto3

from tests.servers import LOOPBACK, ServerUnavailable

REGION = "eu-west-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


_RUNNING_ON = re.compile(rb"Running on http://[^\s:]+:(\d+)")


def _read_banner(proc: subprocess.Popen[bytes], banner: queue.Queue[int | None]) -> None:
    """Hand over the port in moto's banner, then keep reading its output so that a full pipe
    never blocks the server."""
    assert proc.stderr is not None
    told = False
    for line in proc.stderr:
        if not told and (match := _RUNNING_ON.search(line)):
            banner.put(int(match[1]))
            told = True
    if not told:
        banner.put(None)


class MotoServer:
    """`python -m moto.server` on a free loopback port; `reset()` empties every service."""

    def __init__(self) -> None:
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise ServerUnavailable("moto server is not running")
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Self:
        """Start on port 0 and read the port moto was given from its banner: no free port
        picked beforehand and raced for."""
        moto_server = Path(sys.executable).with_name("moto_server")
        command = [str(moto_server)] if moto_server.exists() else [sys.executable, "-m", "moto"]
        self._proc = subprocess.Popen(
            [*command, "-H", LOOPBACK, "-p", "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        banner: queue.Queue[int | None] = queue.Queue()
        threading.Thread(target=_read_banner, args=(self._proc, banner), daemon=True).start()
        try:
            self.port = banner.get(timeout=60)
        except queue.Empty:
            self.port = None
        if self.port is None:
            code = self._proc.poll()
            self.stop()
            raise ServerUnavailable(f"moto server did not start within 60 s (exit {code})")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1):
                    return self
            time.sleep(0.1)
        self.stop()
        raise ServerUnavailable("moto server did not answer within 60 s")

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        # Killed, not terminated: moto keeps everything in memory, and on SIGTERM it exits
        # through the interpreter's whole shutdown (0.7 s with a little state, more after a
        # full run), which leaves nothing behind that a kill does not.
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)
        self._proc = None
        self.port = None

    def client(self, service: str) -> Any:
        """A boto3 client on this server (for seeding; the bot builds its own)."""
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def seed_ecs_service(moto: MotoServer, *, cluster: str, service: str, desired: int) -> None:
    """An ECS service wanting `desired` tasks with no container instance to run them on."""
    ecs = moto.client("ecs")
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(
        family=service,
        containerDefinitions=[{"name": "app", "image": "nginx", "memory": 128}],
    )
    ecs.create_service(
        cluster=cluster, serviceName=service, taskDefinition=service, desiredCount=desired
    )


def seed_rds_instance(moto: MotoServer, identifier: str) -> None:
    moto.client("rds").create_db_instance(
        DBInstanceIdentifier=identifier,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="admin",
        MasterUserPassword="not-a-real-password",
        AllocatedStorage=20,
    )


def seed_cpu(
    moto: MotoServer,
    *,
    namespace: str,
    dimensions: dict[str, str],
    values: list[float],
    name: str = "CPUUtilization",
) -> None:
    """Data points, one a minute, ending now."""
    now = datetime.now(UTC)
    data = [
        {
            "MetricName": name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            "Timestamp": now - timedelta(minutes=len(values) - index),
            "Value": value,
            "Unit": "Percent",
        }
        for index, value in enumerate(values)
    ]
    moto.client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=data)


def seed_log_events(moto: MotoServer, group: str, lines: list[str]) -> None:
    logs = moto.client("logs")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="app/1")
    now_ms = int(time.time() * 1000)
    events = [
        {"timestamp": now_ms - (len(lines) - index) * 1000, "message": line}
        for index, line in enumerate(lines)
    ]
    logs.put_log_events(logGroupName=group, logStreamName="app/1", logEvents=events)


def seed_autoscaling_group(moto: MotoServer, name: str, *, desired: int) -> None:
    ec2 = moto.client("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    autoscaling = moto.client("autoscaling")
    autoscaling.create_launch_configuration(
        LaunchConfigurationName=f"{name}-lc", ImageId=image, InstanceType="t3.micro"
    )
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchConfigurationName=f"{name}-lc",
        MinSize=0,
        MaxSize=10,
        DesiredCapacity=desired,
        AvailabilityZones=zones[:1],
    )


class FaultyAws:
    """A loopback proxy in front of moto's server that answers one operation (the
    X-Amz-Target's or the form's Action) with a 500 once another operation has gone through:
    a change that commits and then cannot be read back. Everything else is passed on."""

    def __init__(self, upstream: str, *, fail: str, after: str) -> None:
        self.upstream, self.fail, self.after = upstream.rstrip("/"), fail, after
        self.failed = 0
        self._passed = False
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _operation(self, headers: Any, body: bytes) -> str:
        target = str(headers.get("X-Amz-Target") or "")
        if target:
            return target.rsplit(".", 1)[-1]
        found = re.search(rb"(?:^|&)Action=(\w+)", body)
        return found.group(1).decode() if found else ""

    def start(self) -> Self:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in two writes: Nagle's algorithm held the body for the
            # client's delayed ACK, 40 ms an answer on a kept-alive connection.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = proxy._operation(self.headers, body)
                if proxy._passed and operation == proxy.fail:
                    proxy.failed += 1
                    self._answer(500, "application/x-amz-json-1.1", b'{"__type":"InternalFailure"}')
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                forwarded = urllib.request.Request(
                    proxy.upstream + self.path, data=body, headers=headers, method="POST"
                )
                try:
                    with urllib.request.urlopen(forwarded, timeout=30) as answer:
                        status, data = answer.status, answer.read()
                        kind = answer.headers.get("Content-Type", "application/json")
                except urllib.error.HTTPError as exc:
                    status, data = exc.code, exc.read()
                    kind = exc.headers.get("Content-Type", "application/json")
                if operation == proxy.after and status < 300:
                    proxy._passed = True
                self._answer(status, kind, data)

            def _answer(self, status: int, kind: str, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        # shutdown() waits for the loop to look at its flag, every poll_interval (0.5 s by
        # default).
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
