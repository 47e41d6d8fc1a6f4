"""The commands that only read the bot's database: `audit verify`, `audit export`,
`report ID` and `stats`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys

from bot.cli.database import open_existing_store, require_current_schema


async def audit(args: argparse.Namespace) -> int:
    from bot.audit import AuditLog
    from bot.clock import SystemClock
    from bot.incidents import storage as incident_storage
    from bot.incidents.queries import well_formed_id

    # An ID as people type it (inc-...) names the same incident; a malformed one is refused
    # rather than answered with an empty export, which reads as "no entries".
    typed = getattr(args, "incident", None)  # export only
    incident = well_formed_id(typed) if typed else None
    store = await open_existing_store()
    await require_current_schema(store)
    try:
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
        # Closed before the store is, even when the reader stops early (`| head`).
        written = 0
        async with contextlib.aclosing(log.entries(incident_id=incident)) as entries:
            try:
                async for entry in entries:
                    sys.stdout.write(json.dumps(entry.to_json(), ensure_ascii=False) + "\n")
                    written += 1
                sys.stdout.flush()
            except BrokenPipeError:
                # The reader has what it wanted: no traceback, and nothing more to flush at
                # exit (which would raise again). 141 is a shell's status for SIGPIPE.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 141
        if incident is not None and not written:
            # An incident the database does not have exported nothing with status 0: a
            # script kept the empty file as that incident's evidence.
            async with store.transaction() as tx:
                await incident_storage.require(tx, incident)
        return 0
    finally:
        await store.close()


async def reports(args: argparse.Namespace) -> int:
    """`report ID` and `stats`: read-only, straight from the database."""
    from pathlib import Path

    from bot.clock import SystemClock
    from bot.incidents.queries import well_formed_id
    from bot.outbox import OutboxDispatcher
    from bot.permissions import Permissions, StaticDirectory
    from bot.policy import load_policy
    from bot.remediation.history import RemediationRecords
    from bot.reports import markdown
    from bot.reports.service import ReportService
    from bot.settings import StoreSettings, load_settings
    from bot.slack.report_blocks import stats_lines, stats_text

    # A malformed ID is refused before the database is opened, as `audit export` does: it was
    # echoed back whole, 50 KB of it or a terminal's escape sequences.
    incident_id = well_formed_id(args.incident_id) if args.command == "report" else ""
    settings = load_settings(StoreSettings)
    policy = load_policy(settings.CHATOPS_POLICY)
    store = await open_existing_store()
    await require_current_schema(store)
    try:
        clock = SystemClock()
        reports = ReportService(
            store=store,
            clock=clock,
            policy=policy,
            dispatcher=OutboxDispatcher(store, clock),
            # The same report as `/incident report` shares, remediation runs included.
            remediations=RemediationRecords(
                store=store,
                clock=clock,
                policy=policy,
                permissions=Permissions(policy, StaticDirectory()),
            ),
        )
        if args.command == "report":
            print(markdown.render(await reports.report(incident_id)), end="")
            return 0
        figures = await reports.stats(args.days)
        print(stats_text(figures))
        for line in stats_lines(figures):
            print(line)
        if args.chart:
            from bot.reports import chart  # matplotlib (~0.4 s) loads only for a chart

            png = chart.render_png(figures)
            try:
                await asyncio.to_thread(Path(args.chart).write_bytes, png)
            except OSError as exc:  # a typo in the path: said in one line, not a traceback
                print(
                    f"chatops-bot: cannot write the chart to {args.chart}: {exc.strerror or exc}",
                    file=sys.stderr,
                )
                return 1
            print(f"chart written to {args.chart}")
        return 0
    finally:
        await store.close()
