"""A throwaway Prometheus server for tests: Debian's `prometheus` binary on a free loopback
port, its data in a fresh temporary folder, scraping and evaluating every second.

Nothing here depends on pytest: ``with PrometheusServer(scrape=[...]) as prom: ...`` works
in a script too. ``stop()`` ends the process and removes the folder.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

LOOPBACK = "127.0.0.1"
PROMETHEUS_BINARY = "/usr/bin/prometheus"
START_TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


class PrometheusServer:
    """Prometheus scraping `scrape` (its `scrape_configs`) every second and evaluating the
    alerting rule `groups` every second."""

    def __init__(
        self, scrape: list[dict[str, Any]], rule_groups: list[dict[str, Any]] | None = None
    ) -> None:
        self.scrape = scrape
        self.rule_groups = rule_groups or []
        self.port = 0
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Self:
        binary = shutil.which("prometheus") or PROMETHEUS_BINARY
        if not Path(binary).is_file():
            raise RuntimeError("prometheus is not installed (scripts/_bootstrap.sh installs it)")
        self._dir = Path(tempfile.mkdtemp(prefix="chatops-prometheus-"))
        config: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": self.scrape,
        }
        if self.rule_groups:
            (self._dir / "rules.yml").write_text(yaml.safe_dump({"groups": self.rule_groups}))
            config["rule_files"] = [str(self._dir / "rules.yml")]
        (self._dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = _free_port()
        log = (self._dir / "prometheus.log").open("wb")
        self._process = subprocess.Popen(
            [
                binary,
                f"--config.file={self._dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self._dir / 'data'}",
                f"--web.listen-address={LOOPBACK}:{self.port}",
                "--web.enable-lifecycle",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._ready():
            if self._process.poll() is not None or time.monotonic() > deadline:
                output = (self._dir / "prometheus.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"prometheus did not start:\n{output}")
            time.sleep(0.05)
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector of `expr` (for waiting on what the server has seen)."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as response:
            answer = json.loads(response.read())
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
