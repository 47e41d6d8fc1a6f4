"""What a new user meets in their first hour with `scripts/demo`, typed as they typed it.

Each test here reproduces a defect found by following README.md in the console.
"""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp

from bot.reports.forms import ACTION_ROWS
from tests.console_driver import Session


async def test_the_banner_says_where_the_status_page_is_and_it_serves_what_was_published(
    tmp_path: Path,
) -> None:
    async with Session(tmp_path) as session:
        banner = session.out.getvalue()
        found = re.search(r"http://127\.0\.0\.1:\d+/status\b", banner)
        assert found, banner  # `/incident publish` says "on the public status page": where?
        mark = session.type("/incident declare P2 Search is slow")
        await session.wait_for("Declared INC-", since=mark)
        bot = session.console.bot
        assert bot is not None
        [incident] = await bot.services.incidents.list()
        mark = session.type(f"/incident publish {incident.id}")
        await session.wait_for("on the public status page now", since=mark)
        async with aiohttp.ClientSession() as http, http.get(found.group(0)) as response:
            assert response.status == 200
            assert "Search is slow" in await response.text()


async def test_a_second_session_finds_the_war_rooms_and_cards_of_the_first(
    tmp_path: Path,
) -> None:
    """README: the database outlives a session (each piped `scripts/demo` is one); the
    pretend workspace did not: the war room was gone (`:in` refused it), the card's edits
    failed with message_not_found and the notices landed in a channel shown by its ID."""
    async with Session(tmp_path) as first:
        mark = first.type("/incident declare P1 Checkout API returns 502")
        out = await first.wait_for("pinned msg", since=mark)
        [room] = re.findall(r"(#inc-\d{8}-001-checkout-api-returns-502) created", out)
    async with Session(tmp_path) as second:
        mark = second.type(f":in {room}")
        out = await second.wait_for(">", since=mark)
        assert "you are now in " + room in out, out
        banner = second.out.getvalue()[:mark]
        assert "earlier session" in banner and room in banner, banner
        mark = second.type("/incident ack")
        out = await second.wait_for("Acknowledged by", since=mark)
        out = await second.wait_for("edited", since=mark)
        assert f"{room} · chatops-bot" in out, out
        assert "message_not_found" not in out and "#c0" not in out.lower(), out
        assert "Acknowledged: @U0YOU" in out, out  # the restored card was edited in place
        mark = second.type(":channels")
        out = await second.wait_for("<- you are here", since=mark)
        [listed] = [line for line in out.splitlines() if line.startswith(room + " (")]
        assert "1 pinned" in listed, out


async def test_diagnose_and_remediate_without_a_catalog_say_where_one_is_written(
    tmp_path: Path,
) -> None:
    """The demo's built-in policy has no services: `/diagnose checkout` (the help's own
    example) answered "Services: none (add them under `services:`)" and `/remediate` "Services:
    none.", never saying in which file, nor that examples/shop.yml is one."""
    async with Session(tmp_path) as session:
        for line in (
            "/diagnose",
            "/diagnose checkout",
            "/remediate kubernetes.scale checkout replicas=6",
        ):
            mark = session.type(line)
            out = await session.wait_for("only you", since=mark)
            out = await session.wait_for(")", since=mark)
            assert "CHATOPS_POLICY" in out and "examples/shop.yml" in out, (line, out)


async def test_the_report_names_the_war_room_it_opened(tmp_path: Path) -> None:
    """The report is a Markdown file, read outside Slack: its timeline said "War room
    #C0SBX965274241 opened", an ID nobody knows, though the row keeps the channel's name."""
    async with Session(tmp_path) as session:
        mark = session.type("/incident declare P1 Checkout API returns 502")
        out = await session.wait_for("pinned msg", since=mark)
        [room] = re.findall(r"#(inc-\d{8}-001-checkout-api-returns-502) created", out)
        mark = session.type(f":in #{room}", "/incident report")
        await session.wait_for("uploaded Post-incident report", since=mark)
        mark = session.type(":file")
        out = await session.wait_for("saved to", since=mark)
        assert f"| War room #{room} opened |" in out, out
        assert not re.search(r"#C0[A-Z0-9]+", out), out


async def test_a_person_typed_as_a_mention_is_taken_by_as_and_by_a_user_picker(
    tmp_path: Path,
) -> None:
    """README teaches people as `@U0BOB`; `:as @U0BOB` and an Owner field answered `@U0BOB`
    were refused ("not a user ID such as U0BOB") and the field asked again."""
    async with Session(tmp_path) as session:
        mark = session.type(":as @U0BOB")
        out = await session.wait_for(">", since=mark)
        assert "you are now U0BOB" in out, out
        mark = session.type(":as U0YOU", "/incident declare P2 Search is slow")
        await session.wait_for("Declared INC-", since=mark)
        bot = session.console.bot
        assert bot is not None
        [incident] = await bot.services.incidents.list()
        mark = session.type(f"/incident resolve {incident.id} Restarted")
        await session.wait_for("is resolved", since=mark)
        # Six text fields left empty, the impact's start and detection too, then one item.
        answers = [""] * 8 + ["Add a canary stage", "@U0BOB", "2026-12-20"]
        rest = [""] * 3 * (ACTION_ROWS - 1)  # the other rows left empty
        mark = session.type(f"/incident postmortem {incident.id}", *answers, *rest)
        out = await session.wait_for("saved and 1 action item", since=mark)
        assert "is not a user ID" not in out, out
        [item] = (await bot.services.postmortems.action_items(incident.id))[1]
        assert item.owner == "U0BOB", item


async def test_a_refusal_quotes_a_channel_or_here_as_typed_not_as_slack_markup(
    tmp_path: Path,
) -> None:
    """`/incident assign commander #general` was answered "'<#C0GENERAL|general>' is not a
    mention of a person", `@here` as "'<!here>'", and `/oncall @here` as "'<!HERE>' is not a
    severity": Slack's markup, not what the person typed."""
    async with Session(tmp_path) as session:
        mark = session.type("/incident declare P2 Search is slow")
        await session.wait_for("Declared INC-", since=mark)
        bot = session.console.bot
        assert bot is not None
        [incident] = await bot.services.incidents.list()
        for line, quoted in (
            (f"/incident assign commander #general {incident.id}", "'#general'"),
            (f"/incident assign commander @here {incident.id}", "'@here'"),
            ("/oncall @here", "'@here'"),
        ):
            mark = session.type(line)
            out = await session.wait_for("Usage:", since=mark)
            assert quoted in out, (line, out)
            assert "<#" not in out and "<!" not in out and "not as a mention" not in out, out
        mark = session.type(f"/incident assign commander @U0BOB {incident.id}")
        await session.wait_for("is now Commander", since=mark)


async def test_running_the_war_room_set_up_again_shows_no_slack_errors(tmp_path: Path) -> None:
    """`/incident warroom` on a war room that is fine printed "! Slack answered
    conversations.invite: already_in_channel" (twice) and "pins.add: already_pinned": answers
    the bot takes as done, shown to the person as failures."""
    async with Session(tmp_path) as session:
        mark = session.type("/incident declare P1 Checkout API returns 502")
        await session.wait_for("pinned msg", since=mark)
        bot = session.console.bot
        assert bot is not None
        [incident] = await bot.services.incidents.list()
        mark = session.type(f"/incident warroom {incident.id}", ":channels")
        out = await session.wait_for("<- you are here", since=mark)
        assert "Running the set-up" in out, out
        assert "Slack answered" not in out, out


async def test_a_draft_report_does_not_call_a_target_still_ahead_met(tmp_path: Path) -> None:
    """The report of an open, unacknowledged incident said "Acknowledged | — (target ...: met)"
    and "End (resolved) | — (target ...: met)": nothing was met yet, the targets lay ahead."""
    async with Session(tmp_path) as session:
        mark = session.type("/incident declare P2 Search is slow")
        await session.wait_for("Declared INC-", since=mark)
        bot = session.console.bot
        assert bot is not None
        [incident] = await bot.services.incidents.list()
        mark = session.type(f"/incident report {incident.id}")
        await session.wait_for("uploaded Post-incident report", since=mark)
        mark = session.type(":file")
        out = await session.wait_for("saved to", since=mark)
        [acknowledged] = [line for line in out.splitlines() if line.startswith("| Acknowledged |")]
        [ended] = [line for line in out.splitlines() if line.startswith("| End (resolved) |")]
        for line in (acknowledged, ended):
            assert "met)" not in line and ": not yet due)" in line, line


async def test_react_twice_sends_one_reaction_and_another_persons_dm_is_out_of_reach(
    tmp_path: Path,
) -> None:
    """`:react 5 pushpin` typed twice sent reaction_added twice (Slack sends it once: the same
    reaction is yours already); and anyone could react to the page in the on-call's DM."""
    async with Session(tmp_path) as session:
        mark = session.type("/incident declare P1 Checkout API returns 502")
        out = await session.wait_for("DM to @U0ONCALL · chatops-bot · msg", since=mark)
        [room] = re.findall(r"(#inc-\d{8}-001-checkout-api-returns-502) created", out)
        [dm] = re.findall(r"DM to @U0ONCALL · chatops-bot · msg (\d+)", out)
        mark = session.type(f":in {room}", "The error rate doubled at 03:00")
        out = await session.wait_for("you said msg", since=mark)
        [said] = re.findall(r"you said msg (\d+)", out)
        mark = session.type(f":react {said} pushpin")
        await session.wait_for("you reacted", since=mark)
        sent = session.console.requests_sent
        mark = session.type(f":react {said} pushpin", f":react {dm} eyes")
        out = await session.wait_for("U0ONCALL", since=mark)
        assert "already reacted" in out and out.count("you reacted") == 0, out
        assert "DM to @U0ONCALL" in out, out
        assert session.console.requests_sent == sent, out


async def test_a_button_in_someone_elses_dm_cannot_be_pressed(tmp_path: Path) -> None:
    """The page's Acknowledge in the on-call's DM was pressed by anyone (`5` as U0YOU
    acknowledged "DM to @U0ONCALL"): Slack shows a DM only to its two parties."""
    async with Session(tmp_path) as session:
        mark = session.type("/incident declare P2 Search is slow")
        out = await session.wait_for("DM to @U0ONCALL · chatops-bot · msg", since=mark)
        dm = out[out.index("DM to @U0ONCALL · chatops-bot") :]
        [number] = re.findall(r"\[(\d+)\] Acknowledge", dm)
        sent = session.console.requests_sent
        mark = session.type(number, ":channels")
        out = await session.wait_for("<- you are here", since=mark)
        assert "only @U0ONCALL sees (:as U0ONCALL to press it)" in out, out
        assert session.console.requests_sent == sent
        mark = session.type(":as U0ONCALL", number)
        await session.wait_for("You acknowledged", since=mark)


async def test_a_huge_answer_to_a_form_field_is_quoted_short_in_its_refusal(
    tmp_path: Path,
) -> None:
    """100,000 characters pasted at a choice printed all 100,000 again in "'zzz...' is not one
    of the choices (1-4)"."""
    async with Session(tmp_path) as session:
        mark = session.type("/incident declare", "API down", "z" * 100_000)
        out = await session.wait_for("is not one of the choices", since=mark)
        [refusal] = [line for line in out.splitlines() if "is not one of the choices" in line]
        assert len(refusal) < 120 and "…" in refusal, refusal[:200]
        session.type(":cancel")
        await session.wait_for("nothing was submitted", since=mark)
