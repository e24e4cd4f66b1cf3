"""Alarm parsing, window arithmetic, paginated log fetch, record parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from loginwatch.notifier.alarm_event import (
    AlarmNotification,
    Ignored,
    parse_event,
    parse_state_change_time,
)
from loginwatch.notifier.events import (
    CONSOLE_LOGIN_FILTER,
    AlarmWindow,
    alarm_window,
    fetch_log_events,
    parse_sign_in,
)
from tests.notifier.conftest import LOG_GROUP, REGION, Trail, alarm_event, cloudtrail_record


def test_fixture_alarm_is_parsed() -> None:
    notice = parse_event(alarm_event())
    assert isinstance(notice, AlarmNotification)
    assert notice.alarm_name == "loginwatch-unallowed-console-login"
    assert notice.account_id == "111122223333"
    assert notice.new_state == "ALARM"
    assert notice.state_change_time == datetime(2026, 11, 20, 9, 21, 30, 123000, tzinfo=UTC)
    assert (notice.period_seconds, notice.evaluation_periods) == (60, 1)


def test_state_change_time_formats() -> None:
    expected = datetime(2026, 11, 20, 9, 21, 30, tzinfo=UTC)
    assert parse_state_change_time("2026-11-20T09:21:30.000+0000") == expected
    assert parse_state_change_time("2026-11-20T09:21:30+0000") == expected
    assert parse_state_change_time("2026-11-20T10:21:30.000+0100") == expected
    assert parse_state_change_time("2026-11-20T09:21:30Z") == expected


def test_alarm_without_state_change_time_is_ignored() -> None:
    notice = parse_event(alarm_event(StateChangeTime="yesterday"))
    assert isinstance(notice, Ignored)
    assert "StateChangeTime" in notice.reason


def test_window_from_fixture_alarm() -> None:
    notice = parse_event(alarm_event())
    window = alarm_window(notice, lookback_minutes=10)
    assert window.start == datetime(2026, 11, 20, 9, 10, 30, 123000, tzinfo=UTC)
    assert window.end == datetime(2026, 11, 20, 9, 22, 30, 123000, tzinfo=UTC)
    assert window.start_ms == 1795165830123
    assert window.end_ms == window.start_ms + 12 * 60 * 1000


def test_window_uses_period_times_evaluation_periods() -> None:
    trigger = {"Period": 300, "EvaluationPeriods": 3}
    notice = parse_event(alarm_event(Trigger=trigger))
    window = alarm_window(notice, lookback_minutes=5)
    assert notice.state_change_time - window.start == timedelta(minutes=20)


def test_fetch_follows_next_token_in_moto(moto_inprocess: None) -> None:
    trail = Trail(boto3.client("logs", region_name=REGION))
    now = datetime.now(UTC).replace(microsecond=0)
    trail.put(
        *[
            (now - timedelta(minutes=n), cloudtrail_record("alice", eventID=f"e{n}"))
            for n in range(1, 6)
        ]
    )
    window = AlarmWindow(now - timedelta(minutes=30), now)
    logs = boto3.client("logs", region_name=REGION)
    events = fetch_log_events(logs, LOG_GROUP, window, page_limit=2)
    assert len(events) == 5


class ScriptedLogs:
    """filter_log_events answers in pages, as AWS does (including empty pages)."""

    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages
        self.requests: list[dict[str, Any]] = []

    def filter_log_events(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        return self.pages[len(self.requests) - 1]


def test_fetch_keeps_going_through_empty_pages() -> None:
    logs = ScriptedLogs(
        [
            {"events": [], "nextToken": "t1"},
            {"events": [{"message": "a"}], "nextToken": "t2"},
            {"events": [{"message": "b"}]},
        ]
    )
    window = AlarmWindow(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 5, tzinfo=UTC))
    events = fetch_log_events(logs, "/lg", window)
    assert [e["message"] for e in events] == ["a", "b"]
    assert [r.get("nextToken") for r in logs.requests] == [None, "t1", "t2"]
    first = logs.requests[0]
    assert first["filterPattern"] == CONSOLE_LOGIN_FILTER
    assert first["logGroupName"] == "/lg"
    assert (first["startTime"], first["endTime"]) == (window.start_ms, window.end_ms)


def test_parse_sign_in_fields() -> None:
    sso = parse_sign_in(cloudtrail_record("sso"))
    assert sso is not None
    assert (sso.identity_type, sso.user_name) == ("AssumedRole", "carol@example.com")
    assert sso.role_name == "AWSReservedSSO_AdministratorAccess_0123456789abcdef"
    root = parse_sign_in(cloudtrail_record("root"))
    assert root is not None and root.is_root and root.mfa_used == "Yes"
    failure = parse_sign_in(cloudtrail_record("failure"))
    assert failure is not None
    assert not failure.success and failure.error_message == "Failed authentication"
    assert failure.user_name == "alice"  # this record has no ARN, only userName
    assert parse_sign_in(cloudtrail_record("alice", eventName="AssumeRole")) is None
