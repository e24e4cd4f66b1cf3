"""`self_check`: on by default, a rate schedule the heartbeat alarm can follow, the
second voice's address, and a heartbeat URL kept as secret as the webhook."""

from __future__ import annotations

import pytest

from loginwatch.config import parse_config, schedule_interval
from loginwatch.errors import ConfigError
from tests.unit.test_config import GOOD

PING = "https://hc-ping.com/5b1d0c1e-secret-uuid"


def parse(extra: str, env: dict[str, str] | None = None, *, need_webhook: bool = True):
    return parse_config(GOOD + extra, "lw.yaml", env or {}, need_webhook=need_webhook)


def problems(extra: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse(extra)
    return raised.value.problems


def test_on_by_default_every_hour_with_no_second_voice() -> None:
    check = parse("").self_check
    assert (check.enabled, check.schedule, check.interval_seconds) == (True, "rate(1 hour)", 3600)
    assert (check.email, check.heartbeat_url, check.heartbeat, check.weekly_summary) == (
        None,
        None,
        False,
        True,
    )


def test_every_key_is_read() -> None:
    check = parse(
        "self_check:\n  schedule: rate(30 minutes)\n  email: sec@example.com\n"
        "  heartbeat_url: ${PING}\n  weekly_summary: false\n",
        {"PING": PING},
    ).self_check
    assert check.interval_seconds == 1800
    assert (check.email, check.heartbeat_url, check.heartbeat) == ("sec@example.com", PING, True)
    assert check.weekly_summary is False


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 hour)", 3600),
        ("rate(5 minutes)", 300),
        ("rate(1 day)", 86400),
        ("rate(2 hours)", 7200),
        ("rate(1 hours)", None),  # Scheduler wants the singular for 1
        ("rate(2 hour)", None),
        ("cron(0 * * * ? *)", None),
        ("at(2026-12-06T10:00:00)", None),
        ("rate(0 minutes)", 0),
    ],
)
def test_schedule_interval(expression: str, seconds: int | None) -> None:
    assert schedule_interval(expression) == seconds


@pytest.mark.parametrize(
    ("schedule", "says"),
    [
        ("cron(0 * * * ? *)", "is not a rate expression"),
        ("rate(1 minute)", "out of range"),
        ("rate(2 days)", "out of range"),
    ],
)
def test_a_schedule_the_heartbeat_cannot_follow_is_refused(schedule: str, says: str) -> None:
    (problem,) = problems(f"self_check:\n  schedule: {schedule}\n")
    assert "self_check.schedule" in problem and says in problem


def test_mistakes_are_named_with_their_line_and_the_url_is_never_shown() -> None:
    found = problems(
        "self_check:\n  enabled: yes please\n  email: not-an-address\n"
        "  heartbeat_url: http://hc-ping.com/secret-uuid\n  schedul: rate(1 hour)\n"
    )
    text = "\n".join(found)
    assert "self_check.enabled: expected true or false" in text
    assert "'not-an-address' is not an email address" in text
    assert "self_check.heartbeat_url: must be an https:// URL (value not shown)" in text
    assert "did you mean 'schedule'" in text
    assert "secret-uuid" not in text


def test_an_unset_heartbeat_variable_stops_only_the_commands_that_write_it() -> None:
    extra = "self_check:\n  heartbeat_url: ${PING}\n"
    (problem,) = problems(extra)
    assert "environment variable PING is not set" in problem
    check = parse(extra, need_webhook=False).self_check
    assert check.heartbeat and check.heartbeat_url is None  # known to exist, not read
