from __future__ import annotations

from pathlib import Path

import pytest

from bot.durations import Duration, humanize_seconds
from bot.errors import ConfigError
from bot.models import Severity
from bot.policy import load_policy, parse_policy

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """\
announce_channel: C0123ANNOUNCE
severities:
  P0: {ack_within: 15m, resolve_within: 2h, update_every: 30m}
  P1: {ack_within: 30m, resolve_within: 4h, update_every: 1h}
  P2: {ack_within: 2h, resolve_within: 24h, update_every: 4h}
  P3: {ack_within: 1bd, resolve_within: 1w}
"""


@pytest.mark.parametrize(
    ("text", "seconds", "business_days"),
    [
        (90, 90, 0),
        ("90", 90, 0),
        ("15m", 900, 0),
        ("2h", 7200, 0),
        ("1d", 86400, 0),
        ("1w", 604800, 0),
        ("1bd", 0, 1),
        ("2.5s", 2.5, 0),
        (" 3 H ", 10800, 0),
    ],
)
def test_durations(text: object, seconds: float, business_days: int) -> None:
    duration = Duration.parse(text)
    assert duration.seconds == seconds and duration.business_days == business_days


@pytest.mark.parametrize("text", ["30 minutes", "-5", -5, "1.5bd", "", "m", True, None])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        Duration.parse(text)


def test_humanize() -> None:
    assert humanize_seconds(45) == "45 s"
    assert humanize_seconds(5400) == "1 h 30 min"
    assert humanize_seconds(90000) == "1 d 1 h"


def test_built_in_policy_is_the_runbook() -> None:
    policy = load_policy(None)
    p1 = policy.response_times(Severity.P1)
    assert (p1.ack_within.seconds, p1.resolve_within.seconds, p1.update_every.seconds) == (
        1800,
        14400,
        3600,
    )
    assert policy.response_times(Severity.P3).ack_within == Duration(business_days=1)
    assert policy.response_times(Severity.P3).update_every is None
    assert [level.after.seconds for level in policy.levels(Severity.P0)] == [0, 1800, 3600]
    assert policy.war_room_severities == [Severity.P0, Severity.P1]


def test_example_policy_file_is_valid() -> None:
    policy = load_policy(ROOT / "chatops.example.yml")
    assert "checkout" in policy.services
    assert policy.services["checkout"].postgres is not None


def test_plain_seconds_everywhere() -> None:
    policy = parse_policy(MINIMAL.replace("15m", "5").replace("30m, resolve", "3, resolve"))
    assert policy.response_times(Severity.P0).ack_within.seconds == 5
    assert policy.response_times(Severity.P1).ack_within.seconds == 3


def test_errors_name_file_line_and_path(tmp_path: Path) -> None:
    path = tmp_path / "chatops.yml"
    path.write_text(
        MINIMAL.replace("ack_within: 30m", "ack_within: 30 minutes")
        + "escalation:\n  P1:\n    - {after: 0, notify: [bob]}\nbogus: 1\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    lines = str(caught.value).splitlines()
    assert f"{path}:4: severities.P1.ack_within: invalid duration '30 minutes'" in lines[0]
    assert any(
        "escalation.P1.0.notify.0" in line and "'bob' is not a Slack user" in line for line in lines
    )
    assert any(line.endswith("bogus: unknown setting") for line in lines)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("announce_channel: C0123ANNOUNCE", "announce_channel: not-a-channel"),
        ("P3: {ack_within: 1bd, resolve_within: 1w}\n", ""),
    ],
)
def test_invalid_values(change: str, message: str) -> None:
    with pytest.raises(ConfigError):
        parse_policy(MINIMAL.replace(change, message))


def test_levels_must_be_in_order_and_calendar_checked() -> None:
    text = MINIMAL + (
        "escalation:\n  P1:\n    - {after: 30m, notify: [U0LEAD]}\n"
        "    - {after: 0, notify: [U0A]}\n"
        "calendar: {timezone: Mars/Olympus, working_hours: '17:00-09:00'}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_policy(text, source="p.yml")
    message = str(caught.value)
    assert "in order of 'after'" in message
    assert "unknown time zone 'Mars/Olympus'" in message
    assert "start must be before end" in message


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"p.yml:2: invalid YAML"):
        parse_policy("a: 1\n  b: [\n", source="p.yml")
    with pytest.raises(ConfigError, match="cannot read policy file"):
        load_policy(tmp_path / "missing.yml")


def test_a_binary_file_is_refused_with_its_first_bad_byte(tmp_path: Path) -> None:
    """A policy saved in another encoding, or not a text file at all: no traceback."""
    path = tmp_path / "policy.yml"
    path.write_bytes(b"\x00\xff\xfe garbage")
    with pytest.raises(ConfigError, match=r"policy.yml: not a text file .*0xff at offset 1"):
        load_policy(path)


def test_aliases_that_repeat_one_another_are_refused_before_validation() -> None:
    """A few lines of anchors and aliases standing for 9**9 values ("billion laughs") are
    refused at once: validating them ran for minutes."""
    text = "a: &a [x, x, x, x, x, x, x, x, x]\n"
    previous = "a"
    for n in range(1, 9):
        text += f"b{n}: &b{n} [{', '.join([f'*{previous}'] * 9)}]\n"
        previous = f"b{n}"
    with pytest.raises(ConfigError, match=r"p.yml: the policy expands to more than 100,000"):
        parse_policy(text, source="p.yml")


def test_a_file_larger_than_a_policy_may_be_is_refused_before_it_is_parsed(
    tmp_path: Path,
) -> None:
    """12 MB of YAML took 100 s and 1.3 GB (past the Deployment's memory limit) to be
    refused; a valid policy padded past the cap loaded. Refused unread, with the cap named."""
    path = tmp_path / "policy.yml"
    cap = 512 * 1024  # the README's figure
    path.write_text(MINIMAL + "# " + "x" * cap + "\n")
    with pytest.raises(ConfigError, match=r"policy.yml: larger than a policy may be \(512 KiB\)"):
        load_policy(path)
    with pytest.raises(ConfigError, match=r"p.yml: larger than a policy may be"):
        parse_policy(path.read_text(), source="p.yml")
    path.write_text(MINIMAL + "# " + "x" * (cap - len(MINIMAL) - 3) + "\n")
    assert load_policy(path).severities  # up to the cap still loads


@pytest.mark.parametrize("value", [".inf", ".nan", "99999999999999w", "999999bd", "367d"])
def test_a_duration_longer_than_a_year_is_refused(value: str) -> None:
    """`.inf`, `.nan` or `99999999999999w` loaded (check-config said OK), then every
    declaration failed: its deadline lay past year 9999."""
    text = MINIMAL.replace("P0: {ack_within: 15m,", f"P0: {{ack_within: {value},")
    with pytest.raises(ConfigError) as caught:
        parse_policy(text, source="p.yml")
    assert str(caught.value).startswith("p.yml:3: severities.P0.ack_within: invalid duration")
    assert str(caught.value).endswith(": at most 366d")


def test_action_items_are_not_reminded_every_0_seconds() -> None:
    """`action_items_every: 0` loaded, and each next reminder was due the moment the last
    fired: the owner was messaged at every sweep while the item stayed open."""
    with pytest.raises(ConfigError) as caught:
        parse_policy(MINIMAL + "reviews: {action_items_every: 0}\n", source="p.yml")
    assert str(caught.value) == (
        "p.yml:7: reviews.action_items_every: must be longer than 0 (like 1bd or 1w)"
    )


def test_a_duration_of_a_year_still_loads() -> None:
    text = MINIMAL.replace("P0: {ack_within: 15m,", "P0: {ack_within: 366bd,")
    policy = parse_policy(text.replace("resolve_within: 2h,", "resolve_within: 366d,", 1))
    assert policy.severities[Severity.P0].ack_within == Duration(business_days=366)
    assert policy.severities[Severity.P0].resolve_within == Duration(seconds=366 * 86400)


def test_a_setting_given_twice_is_refused_naming_both_lines() -> None:
    """YAML keeps the last of two equal keys: a second `roles:` at the end of the file
    replaced the first (everyone a responder, nobody an approver) and the file loaded."""
    text = MINIMAL + "roles:\n  approvers: [U0LEAD]\nroles:\n  declarers: []\n"
    first = len(MINIMAL.splitlines()) + 1
    with pytest.raises(ConfigError) as caught:
        parse_policy(text, source="p.yml")
    assert str(caught.value) == (
        f"p.yml:{first + 2}: invalid YAML: 'roles' is set twice in one mapping (first at line"
        f" {first}): YAML would keep only the last"
    )
    with pytest.raises(ConfigError, match=r"'P1' is set twice"):
        parse_policy(MINIMAL.replace("severities:\n", "severities:\n  P1: {ack_within: 1m}\n"))


def test_a_merge_key_may_still_be_overridden() -> None:
    text = MINIMAL.replace("P0: {", "P0: &fast {").replace(
        "P1: {ack_within: 30m, resolve_within: 4h, update_every: 1h}",
        "P1: {<<: *fast, ack_within: 30m}",
    )
    policy = parse_policy(text)
    assert policy.severities[Severity.P1].ack_within == Duration(seconds=1800)
    assert (
        policy.severities[Severity.P1].resolve_within
        == policy.severities[Severity.P0].resolve_within
    )


def test_an_alias_inside_its_own_value_is_refused() -> None:
    """`a: &a [*a]` is a list that contains itself: it ended in a RecursionError."""
    with pytest.raises(ConfigError, match=r"p.yml: a YAML alias refers to a value that contains"):
        parse_policy("a: &a [1, *a]\n", source="p.yml")


def test_anchors_used_a_few_times_still_load() -> None:
    """Aliases are fine in a policy of ordinary size (a roles list reused, say)."""
    text = MINIMAL.replace("P0: {", "P0: &fast {").replace(
        "P1: {ack_within: 30m, resolve_within: 4h, update_every: 1h}", "P1: *fast"
    )
    policy = parse_policy(text)
    assert policy.severities[Severity.P1] == policy.severities[Severity.P0]


def test_nesting_thousands_deep_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"p.yml: .*nested"):
        parse_policy("a: " + "[" * 3000 + "]" * 3000 + "\n", source="p.yml")
