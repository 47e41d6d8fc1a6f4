"""`chatops-bot`: run | console | check-config | diagnose | migrate | report | stats |
audit verify | export."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from bot.cli import reading
from bot.cli.database import ever_migrated, open_store, refuse_another_version
from bot.errors import (
    ChatOpsError,
    ConfigError,
    StoreBusy,
    StoreUnavailable,
)
from bot.logs import setup_logging
from bot.text import decimal

EXIT_CONFIG = 2
# The database could not be reached (or had no free connection): nothing was checked. Not 1,
# which `audit verify` exits for a broken chain and `diagnose` for a warning: a script read a
# database outage as tampering, or as a service's warning.
EXIT_UNAVAILABLE = 5


def _port(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535: one out of range ended in a traceback."""
    port = decimal(text, digits=6)  # digits 0-9 only: int() also took '８０８０' and '80_80'
    if port is None:
        raise argparse.ArgumentTypeError(f"not a number: {text[:20]!r} (digits 0-9 only)")
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0-65535)")
    return port


def _days(text: str) -> int:
    """`stats --days`, 1 to 366: a usage error like any other (exit 2, before the database is
    opened), not the statistics' refusal, which exited 1 as if the database had failed."""
    from bot.reports.service import MAX_STATS_DAYS

    days = decimal(text, digits=6)
    if days is None:
        raise argparse.ArgumentTypeError(f"not a number: {text[:20]!r} (digits 0-9 only)")
    if not 1 <= days <= MAX_STATS_DAYS:
        raise argparse.ArgumentTypeError(f"give a number of days from 1 to {MAX_STATS_DAYS}")
    return days


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatops-bot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="serve Slack over HTTP (and Socket Mode with an app token)",
        description="Serve Slack over HTTP (and Socket Mode with an app token). SIGTERM, SIGINT"
        " and SIGHUP stop it cleanly, exit status 0. SIGHUP reloads nothing: the policy"
        " (CHATOPS_POLICY) is read at start-up only; restart the bot to apply a change.",
    )
    run.add_argument("--host", default="0.0.0.0")
    run.add_argument("--port", type=_port, default=3000)
    console = sub.add_parser("console", help="the bot in your terminal: no Slack workspace needed")
    console.add_argument(
        "--fresh", action="store_true", help="start from an empty console database"
    )
    check = sub.add_parser("check-config", help="validate a policy file")
    check.add_argument("path", nargs="?", help="policy file (default: CHATOPS_POLICY or built-in)")
    diagnose = sub.add_parser(
        "diagnose", help="run a catalogued service's read-only checks and print the grades"
    )
    diagnose.add_argument("service", help="a service from the policy's `services:`")
    # default=[]: without it argparse names `checks` as required when the service is missing.
    diagnose.add_argument(
        "checks", nargs="*", default=[], help="only these checks (postgres, aws.ecs...)"
    )
    diagnose.add_argument("--brief", action="store_true", help="leave out the evidence")
    sub.add_parser("migrate", help="apply pending database migrations")
    report = sub.add_parser("report", help="print an incident's post-incident report (Markdown)")
    report.add_argument("incident_id", metavar="ID")
    stats = sub.add_parser("stats", help="MTTA, MTTR, MTTD and target breaches per severity")
    stats.add_argument(
        "--days", type=_days, default=30, help="the last N days, 1 to 366 (default 30)"
    )
    stats.add_argument("--chart", metavar="PNG", help="also write the chart to this file")
    audit = sub.add_parser("audit", help="verify or export the audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    audit_sub.add_parser("verify", help="check the hash chain; report the first broken entry")
    export = audit_sub.add_parser("export", help="write the log as JSON lines to stdout")
    export.add_argument("--incident", help="only entries of this incident")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # LOG_FORMAT=json for a log collector; text (the default) for a person.
    setup_logging("json" if os.environ.get("LOG_FORMAT", "").lower() == "json" else "text")
    try:
        if args.command == "run":
            return _event_loop_runner()(_dispatch(args))
        return asyncio.run(_dispatch(args))
    except ConfigError as exc:
        print(f"chatops-bot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (StoreUnavailable, StoreBusy) as exc:
        print(f"chatops-bot: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE if args.command in ("audit", "diagnose") else 1
    except ChatOpsError as exc:
        print(f"chatops-bot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into a reader that stopped early (`chatops-bot console | head`): no
        # traceback, and nothing more to flush at exit (which would raise again). 141 is a
        # shell's status for SIGPIPE.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _event_loop_runner() -> Callable[[Coroutine[Any, Any, int]], int]:
    """uvloop's run for the server (less CPU per request and per round trip), asyncio's
    where uvloop is not installed (Windows)."""
    try:
        import uvloop
    except ModuleNotFoundError:
        return asyncio.run
    return uvloop.run


async def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        return await _run(args.host, args.port)
    if args.command == "console":
        try:
            from bot.console.running import run_console
        except ModuleNotFoundError as exc:  # the image leaves the console and its extra out
            raise ConfigError(
                f"the console is not installed here ({exc.name} is missing); "
                "install it with: pip install 'chatops-bot[console]' from a checkout"
            ) from None
        return await run_console(fresh=args.fresh)
    if args.command == "check-config":
        return _check_config(args.path)
    if args.command == "diagnose":
        return await _diagnose(args)
    if args.command == "migrate":
        return await _migrate()
    if args.command == "audit":
        return await reading.audit(args)
    if args.command in ("report", "stats"):
        return await reading.reports(args)
    raise AssertionError(args.command)


async def _run(host: str, port: int) -> int:
    from bot.runtime import create_bot, serve_forever
    from bot.settings import Settings, load_settings

    settings = load_settings(Settings)
    bot = create_bot(settings)
    await serve_forever(bot, host, port)
    return 0


def _counted(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _check_config(path: str | None) -> int:
    from bot.policy import load_policy
    from bot.settings import StoreSettings, load_settings

    if path is None:
        configured = load_settings(StoreSettings).CHATOPS_POLICY
        path = str(configured) if configured is not None else None
    try:
        policy = load_policy(path)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(line, file=sys.stderr)
        return 1
    for place in policy.roles.nobody_approves():
        print(f"warning: {place} is empty: nobody may approve those remediations")
    levels = sum(len(v) for v in policy.escalation.values())
    counts = [
        _counted(len(policy.severities), "severity", "severities"),
        _counted(levels, "escalation level", "escalation levels"),
        _counted(len(policy.services), "service", "services"),
    ]
    print(f"{path or '<built-in policy>'}: OK ({', '.join(counts)})")
    return 0


# Exit status of `diagnose`: 0 all OK, 1 a warning, 3 something critical (2 is a config error,
# or a service or check the catalog does not have).
DIAGNOSE_EXIT = {"OK": 0, "WARN": 1, "CRIT": 3}
DIAGNOSE_RUNNING = 4  # the same run is under way elsewhere (REDIS_URL): nothing was run


async def _diagnose(args: argparse.Namespace) -> int:
    import getpass

    from bot.clock import SystemClock
    from bot.coordination import create_coordinator
    from bot.diagnostics.plan import split_words
    from bot.diagnostics.runs import CLI_ACTOR_PREFIX, DiagnosisRunning
    from bot.diagnostics.service import DiagnosticsService
    from bot.diagnostics.text import already_running, render
    from bot.errors import NotFound, UsageError
    from bot.models import Actor
    from bot.permissions import Permissions, StaticDirectory
    from bot.policy import load_policy
    from bot.settings import StoreSettings, load_settings
    from bot.store import migrate

    settings = load_settings(StoreSettings)
    policy = load_policy(settings.CHATOPS_POLICY)
    # With the bot's REDIS_URL, a run shares the bot's one-run-per-service hold: never beside
    # a run of the same checks started in Slack (the system checked may be overloaded).
    coordinator = create_coordinator(settings.REDIS_URL) if settings.REDIS_URL else None
    store = await open_store()
    try:
        # The run is recorded, so a new database gets the schema; one a bot already uses is
        # never migrated from a terminal (the bot on it is older: it broke, then refused to
        # start), and one a newer bot migrated exited 1, which is WARN.
        if await ever_migrated(store):
            await refuse_another_version(store, "diagnose would record its run there")
        else:
            await migrate(store)
        service = DiagnosticsService(
            policy=policy,
            store=store,
            clock=SystemClock(),
            # The terminal is trusted like the deployment itself: the run is audited by name.
            permissions=Permissions(
                policy.model_copy(update={"roles": type(policy.roles)()}), StaticDirectory()
            ),
            coordinator=coordinator,
        )
        login = getpass.getuser()
        actor = Actor(user_id=CLI_ACTOR_PREFIX + login, user_name=login)
        name, *checks = split_words([args.service, *args.checks]) or [""]
        diagnosis = await service.diagnose(name, actor, checks=checks, via="cli")
    except DiagnosisRunning as exc:
        print(f"chatops-bot: {already_running(exc.running)}", file=sys.stderr)
        return DIAGNOSE_RUNNING
    except (NotFound, UsageError) as exc:
        # A mistyped service or check exited 1, which is WARN: a script read a typo as a
        # warning of the service forever.
        print(f"chatops-bot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        await store.close()
        if coordinator is not None:
            await coordinator.close()
    sys.stdout.write(render(diagnosis.report, evidence=not args.brief))
    return DIAGNOSE_EXIT[diagnosis.report.grade.name]


async def _migrate() -> int:
    from bot.store import migrate

    store = await open_store()
    try:
        applied = await migrate(store)
    finally:
        await store.close()
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0
