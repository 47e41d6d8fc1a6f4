"""`chatops-bot`: run | console | check-config | migrate | audit verify | audit export."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence

from bot.errors import ChatOpsError, ConfigError

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatops-bot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="serve Slack over HTTP (and Socket Mode with an app token)")
    run.add_argument("--host", default="0.0.0.0")
    run.add_argument("--port", type=int, default=3000)
    console = sub.add_parser("console", help="the bot in your terminal: no Slack workspace needed")
    console.add_argument(
        "--fresh", action="store_true", help="start from an empty console database"
    )
    check = sub.add_parser("check-config", help="validate a policy file")
    check.add_argument("path", nargs="?", help="policy file (default: CHATOPS_POLICY or built-in)")
    sub.add_parser("migrate", help="apply pending database migrations")
    audit = sub.add_parser("audit", help="verify or export the audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    audit_sub.add_parser("verify", help="check the hash chain; report the first broken entry")
    export = audit_sub.add_parser("export", help="write the log as JSON lines to stdout")
    export.add_argument("--incident", help="only entries of this incident")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return asyncio.run(_dispatch(args))
    except ConfigError as exc:
        print(f"chatops-bot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ChatOpsError as exc:
        print(f"chatops-bot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


async def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        return await _run(args.host, args.port)
    if args.command == "console":
        from bot.console import run_console

        return await run_console(fresh=args.fresh)
    if args.command == "check-config":
        return _check_config(args.path)
    if args.command == "migrate":
        return await _migrate()
    if args.command == "audit":
        return await _audit(args)
    raise AssertionError(args.command)


async def _run(host: str, port: int) -> int:
    from bot.runtime import create_bot, serve_forever
    from bot.settings import Settings, load_settings

    settings = load_settings(Settings)
    bot = create_bot(settings)
    await serve_forever(bot, host, port)
    return 0


def _check_config(path: str | None) -> int:
    from bot.policy import load_policy
    from bot.settings import StoreSettings, load_settings

    if path is None:
        path = load_settings(StoreSettings).CHATOPS_POLICY
    try:
        policy = load_policy(path)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(line, file=sys.stderr)
        return 1
    print(
        f"{path or '<built-in policy>'}: OK ({len(policy.severities)} severities, "
        f"{sum(len(v) for v in policy.escalation.values())} escalation levels, "
        f"{len(policy.services)} services)"
    )
    return 0


async def _open_store():  # type: ignore[no-untyped-def]
    from bot.settings import StoreSettings, load_settings
    from bot.store import create_store

    settings = load_settings(StoreSettings)
    store = create_store(
        settings.DATABASE_URL,
        pool_size=settings.DATABASE_POOL_SIZE,
        queue_timeout=settings.DATABASE_QUEUE_SECONDS,
    )
    await store.open()
    return store


async def _migrate() -> int:
    from bot.store import migrate

    store = await _open_store()
    try:
        applied = await migrate(store)
    finally:
        await store.close()
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


async def _audit(args: argparse.Namespace) -> int:
    from bot.audit import AuditLog
    from bot.clock import SystemClock
    from bot.store import migrate

    store = await _open_store()
    try:
        await migrate(store)
        log = AuditLog(store, SystemClock())
        if args.audit_command == "verify":
            result = await log.verify()
            if result.ok:
                print(f"audit log OK: {result.checked} entries verified")
                return 0
            print(
                f"audit log BROKEN at entry {result.first_broken_seq}: {result.reason} "
                f"({result.checked} entries verified before it)"
            )
            return 1
        async for entry in log.entries(incident_id=args.incident):
            sys.stdout.write(json.dumps(entry.to_json(), ensure_ascii=False) + "\n")
        return 0
    finally:
        await store.close()
