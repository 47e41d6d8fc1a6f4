"""Throwaway Prometheus and Alertmanager servers for tests (Debian's `prometheus` and
`prometheus-alertmanager`; scripts/test installs them).

Each runs on free loopback ports with its files in a fresh temporary folder, started here,
never as the packages' services; ``stop()`` kills it and removes the folder. A missing binary
or a server that never gets ready raises ServerUnavailable: the tests that need one fail, they
are not skipped. Nothing here depends on pytest.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

from tests.servers import LOOPBACK, PORT_ATTEMPTS, ServerUnavailable, free_port

PROMETHEUS_BIN = "/usr/bin/prometheus"
ALERTMANAGER_BIN = "/usr/bin/prometheus-alertmanager"
START_TIMEOUT_S = 60.0


class _Server:
    binary = ""
    name = ""

    def __init__(self) -> None:
        self.port = 0  # a free one, picked at start()
        self.folder: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def _arguments(self, folder: Path) -> list[str]:
        raise NotImplementedError

    def start(self) -> Self:
        if shutil.which(self.binary) is None:
            raise ServerUnavailable(f"{self.binary} is missing (apt-get install {self.name})")
        self.folder = Path(tempfile.mkdtemp(prefix=f"chatops-{self.name}-"))
        # Another process may take a free port picked here before the server binds it: the
        # server then exits, and another port is tried. (No port is ever given beforehand: a
        # Prometheus started first learns its Alertmanager's afterwards, `send_alerts_to`.)
        for _ in range(PORT_ATTEMPTS):
            self.port = free_port()
            if self._run(self.folder):
                return self
            if self.process is not None and self.process.poll() is None:
                break  # a hang, not a port clash: do not try again
        output = (self.folder / "server.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise ServerUnavailable(f"{self.name} did not start:\n{output}")

    def _run(self, folder: Path) -> bool:
        """Run the server on `self.port`; whether it got ready (False: it exited, or hangs)."""
        with (folder / "server.log").open("ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                [self.binary, *self._arguments(folder)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=folder,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as response:
            return json.loads(response.read())

    def log(self) -> str:
        if self.folder is None:
            return ""
        return (self.folder / "server.log").read_text(errors="replace")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class AlertmanagerServer(_Server):
    """Alertmanager with `config` (YAML text), no cluster, its data in a temporary folder."""

    binary = ALERTMANAGER_BIN
    name = "prometheus-alertmanager"

    def __init__(self, config: str = "") -> None:
        super().__init__()
        self.config = config or ("route: {receiver: none}\nreceivers: [{name: none}]\n")

    def _arguments(self, folder: Path) -> list[str]:
        (folder / "alertmanager.yml").write_text(self.config)
        return [
            f"--config.file={folder / 'alertmanager.yml'}",
            f"--storage.path={folder / 'data'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--cluster.listen-address=",  # no gossip: one instance, no port of its own
            "--log.level=info",
        ]

    def silences(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get_json("/api/v2/silences")
        return result

    def alerts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get_json("/api/v2/alerts")
        return result


# Where a Prometheus finds its Alertmanagers: a config with this `alerting` section (a line of
# YAML) reads them from ALERTMANAGERS_FILE in its folder, written by `send_alerts_to` once the
# Alertmanager has started (on whichever port it got), and read again by Prometheus as it
# changes. A port picked for it before Prometheus started could not be tried again once another
# process had taken it.
ALERTMANAGERS_FILE = "alertmanagers.json"
ALERTING_FROM_FILE = (
    f"alerting: {{alertmanagers: [{{file_sd_configs: [{{files: [{ALERTMANAGERS_FILE}]}}]}}]}}"
)


class PrometheusServer(_Server):
    """Prometheus with `config` (YAML text) and rule files, its TSDB in a temporary folder."""

    binary = PROMETHEUS_BIN
    name = "prometheus"

    def __init__(self, config: str, rules: dict[str, str] | None = None) -> None:
        super().__init__()
        self.config = config
        self.rules = rules or {}

    def send_alerts_to(self, alertmanager: AlertmanagerServer) -> None:
        """Point a config with ALERTING_FROM_FILE at `alertmanager` (started): Prometheus
        sees the file change at once, then sends at its next discovery update (every 5 s)."""
        assert self.folder is not None, "start() first"
        targets = [{"targets": [f"{LOOPBACK}:{alertmanager.port}"]}]
        written = self.folder / f".{ALERTMANAGERS_FILE}.new"
        written.write_text(json.dumps(targets))
        written.replace(self.folder / ALERTMANAGERS_FILE)  # whole, never half-written

    def _arguments(self, folder: Path) -> list[str]:
        for name, text in self.rules.items():
            (folder / name).write_text(text)
        (folder / ALERTMANAGERS_FILE).write_text("[]")  # none until send_alerts_to
        (folder / "prometheus.yml").write_text(self.config)
        return [
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--log.level=info",
        ]

    @classmethod
    def scraping(
        cls, scrape: list[dict[str, Any]], rule_groups: list[dict[str, Any]] | None = None
    ) -> PrometheusServer:
        """Scraping `scrape` (its `scrape_configs`) and evaluating the alerting rule
        `rule_groups`, both every 200 ms (a test waits for the first of each)."""
        config: dict[str, Any] = {
            "global": {"scrape_interval": "200ms", "evaluation_interval": "200ms"},
            "scrape_configs": scrape,
        }
        rules = {}
        if rule_groups:
            config["rule_files"] = ["rules.yml"]
            rules["rules.yml"] = yaml.safe_dump({"groups": rule_groups})
        return cls(yaml.safe_dump(config), rules)

    def query(self, expr: str) -> list[dict[str, Any]]:
        from urllib.parse import quote

        answer = self.get_json(f"/api/v1/query?query={quote(expr)}")
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result


@contextmanager
def serving_text(routes: dict[str, Callable[[], str]]) -> Iterator[int]:
    """An HTTP server on a free loopback port answering GET `path` with `routes[path]()`
    (text/plain; JSON when it starts with "{"), from a thread of its own: a scrape answered by
    the test's event loop times out whenever the code under test holds the loop, and the
    target reads as down (seen in CI). Yields the port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            answer = routes.get(self.path)
            if answer is None:
                self.send_error(404)
                return
            body = answer().encode()
            kind = "application/json" if body.startswith(b"{") else "text/plain"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
