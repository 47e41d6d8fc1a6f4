"""Start and stop the whole bot: services, the Slack app, HTTP and Socket Mode."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import build_app, build_client
from bot.clock import Clock
from bot.coordination import create_coordinator
from bot.errors import ConfigError
from bot.policy import Policy, load_policy
from bot.redact import register_secret
from bot.server import build_web_app
from bot.services import Services, build_services
from bot.serving import GuardedServer, RequestLimits, raise_open_files_limit
from bot.settings import Settings
from bot.slack.acks import AckGate
from bot.slack.alert_blocks import SlackAlertNotifier
from bot.slack.auth import SlackAuth
from bot.slack.client import PacedWebClient
from bot.slack.diagnosis_notifier import SlackDiagnosisNotifier
from bot.slack.drill_notifier import SlackDrillNotifier
from bot.slack.limits import SlackLimits
from bot.slack.notifier import SlackDirectory, SlackNotifier
from bot.slack.pace import LocalPacer, Pacer, RedisPacer
from bot.slack.remediation_notifier import SlackRemediationNotifier
from bot.slack.report_publisher import SlackReportPublisher
from bot.store import create_store
from bot.targets import libraries as client_libraries

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

log = logging.getLogger(__name__)
# The garbage collector's threshold for its youngest generation once started (see run()).
_GC_GEN0 = 10_000

# How long a stop waits for work Slack was already answered 200 for (a declaration queued for
# the database): inside the Deployment's grace period with the outbox's and remediations'.
ACKED_WORK_SECONDS = 10.0


@dataclass
class Bot:
    """A running bot: its services, its Slack app and how Slack reaches it."""

    settings: Settings
    services: Services
    app: AsyncApp
    client: AsyncWebClient
    server: GuardedServer | None = None
    socket_handler: AsyncSocketModeHandler | None = None
    port: int | None = None
    pacer: Pacer | None = None
    auth: SlackAuth | None = None
    ack_gate: AckGate = field(default_factory=AckGate)

    async def start(self, host: str = "0.0.0.0", port: int = 3000) -> None:
        """Serve HTTP (events and /healthz); connect Socket Mode too when an app token is set.

        The catalog's client libraries are loaded meanwhile, before Slack's first request:
        their import must not be spent out of a check's or a remediation's timeout."""
        web_app = build_web_app(
            self.app,
            self.services,
            signing_secret=self.settings.SLACK_SIGNING_SECRET,
            slack_check=self.auth.check if self.auth is not None else None,
            gate=self.ack_gate,
        )
        open_files = raise_open_files_limit()
        server = GuardedServer(web_app, request_limits(self.settings), open_files)
        # The port first: taken, the process exits 2 having started nothing (the outbox,
        # reminders and Socket Mode started first sent to Slack before that exit).
        server.bind(host, port)
        self.server, self.port = server, server.port
        if isinstance(self.client, PacedWebClient):
            self.client.keep_connections()
        await asyncio.gather(
            self.services.start(), client_libraries.load(self.services.policy.services)
        )
        await server.start()
        log.info(
            "open files: up to %d; HTTP connections: up to %d",
            open_files,
            self.server.guard.cap,
        )
        if self.settings.SLACK_APP_TOKEN:
            # Imported here: an HTTP-mode process never loads the Socket Mode client.
            from bot.slack.socket_mode import TrackedSocketModeHandler

            app_client = AsyncWebClient(
                token=self.settings.SLACK_APP_TOKEN, base_url=self.settings.SLACK_API_URL
            )
            self.socket_handler = TrackedSocketModeHandler(
                self.app,
                app_token=self.settings.SLACK_APP_TOKEN,
                web_client=app_client,
                gate=self.ack_gate,
            )
            # The client's own first call, made here: it retried a token Slack refuses for
            # ever, a pod that looked ready and never received an event.
            self.socket_handler.client.wss_uri = await _socket_mode_url(app_client)
            await self.socket_handler.connect_async()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated
            log.info("connected to Slack over Socket Mode")
        log.info(
            "listening on http://%s:%s (POST /slack/events; GET /livez /readyz /metrics)",
            host,
            self.port,
        )
        loop = type(asyncio.get_running_loop())
        log.info("event loop: %s.%s", loop.__module__, loop.__qualname__)

    async def stop(self) -> None:
        if self.socket_handler is not None:
            await self.socket_handler.close_async()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated
        if self.server is not None:
            await self.server.stop()
        # Slack has its 200 for these: their work is done before the store closes.
        cut_short = await self.ack_gate.finish(timeout=ACKED_WORK_SECONDS)
        if cut_short:
            log.warning(
                "stopping: %d acknowledged request(s) still unfinished after %g s were cut short",
                cut_short,
                ACKED_WORK_SECONDS,
            )
        await self.services.close()
        if isinstance(self.client, PacedWebClient):
            await self.client.close_connections()
        if isinstance(self.pacer, RedisPacer):
            await self.pacer.close()


async def _socket_mode_url(app_client: AsyncWebClient) -> str | None:
    """A Socket Mode URL from apps.connections.open; ConfigError when Slack refuses the app
    token, None when Slack cannot be asked now (the Socket Mode client asks again, and keeps
    retrying while Slack is away)."""
    try:
        response = await app_client.apps_connections_open(app_token=app_client.token or "")
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "unknown error")
        if error == "ratelimited":
            return None
        raise ConfigError(
            f"SLACK_APP_TOKEN was refused by Slack ({error[:60]}): use the app-level token"
            " (xapp-...) with the connections:write scope of this app, or unset it to serve"
            " Slack over HTTP"
        ) from None
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        log.warning("Socket Mode: Slack not reached yet (%s), retrying", type(exc).__name__)
        return None
    url = response.get("url")
    return url if isinstance(url, str) else None


def request_limits(settings: Settings) -> RequestLimits:
    return RequestLimits(
        max_connections=settings.HTTP_MAX_CONNECTIONS,
        idle_seconds=settings.HTTP_IDLE_SECONDS,
        header_seconds=settings.HTTP_HEADER_SECONDS,
        body_seconds=settings.HTTP_BODY_SECONDS,
        max_header_bytes=settings.HTTP_MAX_HEADER_BYTES,
        max_headers=settings.HTTP_MAX_HEADERS,
        max_body_bytes=settings.HTTP_MAX_BODY_BYTES,
    )


def create_bot(
    settings: Settings, *, policy: Policy | None = None, clock: Clock | None = None
) -> Bot:
    policy = policy or load_policy(settings.CHATOPS_POLICY)
    # Slack's secrets are masked in whatever is redacted (errors, logs, the timeline), as
    # paging's and the alerts token are: a signing secret has no shape a pattern could know.
    for secret in (
        settings.SLACK_SIGNING_SECRET,
        settings.SLACK_BOT_TOKEN,
        settings.SLACK_APP_TOKEN,
    ):
        register_secret(secret or "")
    # One pacer for the workspace, in Redis when replicas share one.
    pacer: Pacer = RedisPacer(settings.REDIS_URL) if settings.REDIS_URL else LocalPacer()
    client = build_client(
        settings.SLACK_BOT_TOKEN,
        settings.SLACK_API_URL,
        pacer=pacer,
        limits=SlackLimits(scale=settings.SLACK_PACE_SCALE),
    )
    services = build_services(
        policy=policy,
        store=create_store(
            settings.DATABASE_URL,
            pool_size=settings.DATABASE_POOL_SIZE,
            queue_timeout=settings.DATABASE_QUEUE_SECONDS,
            prepare=settings.DATABASE_PREPARE,
        ),
        coordinator=create_coordinator(settings.REDIS_URL),
        notifier=SlackNotifier(client),
        remediation_notifier=SlackRemediationNotifier(client),
        diagnosis_notifier=SlackDiagnosisNotifier(client),
        drill_notifier=SlackDrillNotifier(client),
        alert_notifier=SlackAlertNotifier(
            client, silence_seconds=policy.alerts.silence_for.seconds
        ),
        directory=SlackDirectory(client),
        people=SlackDirectory(client),
        clock=clock,
        escalation_sweep_interval=settings.ESCALATION_SWEEP_SECONDS,
        publisher=SlackReportPublisher(client),
        dedup_retention=settings.DEDUP_RETENTION_SECONDS,
        home_viewer_window=timedelta(days=settings.HOME_VIEWER_DAYS),
        status_refresh_interval=settings.STATUS_REFRESH_SECONDS,
    )
    auth = SlackAuth(client)
    app = build_app(services, client=client, auth=auth)
    return Bot(settings=settings, services=services, app=app, client=client, pacer=pacer, auth=auth)


# The signals that stop the bot cleanly. SIGHUP, which Prometheus and Alertmanager take as
# "reload the configuration", is a stop like SIGTERM: the policy cannot be swapped in a
# running bot (its services each keep it, and what they built from it, from start-up), and
# unhandled, SIGHUP killed the process mid-request (Windows has none).
_STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    signal.Signals[name] for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name)
)


def _stop_reason(received: list[signal.Signals]) -> str:
    """The signal that stopped the bot, for its log line: SIGHUP says it reloads nothing."""
    if not received:
        return ""
    if received[0].name == "SIGHUP":
        return (
            " (SIGHUP: a stop, as SIGTERM; the policy is read only at start-up, so nothing"
            " is reloaded: start the bot again to apply a changed policy)"
        )
    return f" ({received[0].name})"


async def serve_forever(bot: Bot, host: str, port: int) -> None:
    """Serve until SIGTERM, SIGINT or SIGHUP, then stop cleanly (exit status 0, outbox
    kept). SIGHUP reloads nothing: it stops the bot exactly as SIGTERM does."""
    stop = asyncio.Event()
    received: list[signal.Signals] = []
    loop = asyncio.get_running_loop()

    def stop_on(signum: signal.Signals) -> None:
        received.append(signum)
        stop.set()

    # Containers stop with SIGTERM: without a handler the process dies mid-request and
    # skips closing the store. Installed before start-up, which may wait on Slack for long
    # (Socket Mode while Slack is away): a stop then came as a kill, deliveries cut short.
    handled: list[signal.Signals] = []
    for signum in _STOP_SIGNALS:
        if signum.name == "SIGHUP" and signal.getsignal(signum) is signal.SIG_IGN:
            # Started ignoring it (`nohup`: a closed terminal must not stop the bot). Only
            # SIGHUP: SIGTERM and SIGINT stop the bot cleanly however it was started.
            continue
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop_on, signum)
            handled.append(signum)
    try:
        starting = asyncio.ensure_future(bot.start(host, port))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait((starting, stopping), return_when=asyncio.FIRST_COMPLETED)
            if not starting.done():
                log.info("stopping: signal received during start-up%s", _stop_reason(received))
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
            else:
                starting.result()  # start-up's error, if any
        except BaseException:
            # Half started (the database down, the port taken): what did start is closed, or
            # the exit reports an unclosed Slack client session after the real error.
            stopping.cancel()
            with contextlib.suppress(Exception):
                await bot.stop()
            raise
        if stop.is_set():
            await bot.stop()
            return
        # What start-up built (modules, the policy, the app) lives as long as the process:
        # kept out of every later collection, a full one scans only what requests left, not
        # all of it (it stalled a burst of acks for tens of ms: bench/README.md,
        # ack_latency.py).
        gc.collect()
        gc.freeze()
        # The youngest generation collected every 10,000 allocations, not Python's 700: the
        # collections cost about 0.2 ms a declaration (bench/README.md, "Item 1, 6 December");
        # memory.py showed no growth for it (item 5's 100 MB after 10,000 incidents).
        gc.set_threshold(_GC_GEN0, *gc.get_threshold()[1:])
        try:
            await stopping
            log.info("stopping: signal received%s", _stop_reason(received))
        finally:
            await bot.stop()
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
