"""Finding the start of the ALARM episode, and which sign-ins arrived after it. Pure logic."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from loginwatch.notifier import protocol
from loginwatch.notifier.alarm_event import AlarmNotification, parse_event
from loginwatch.notifier.alarm_history import fallback_start, start_from_history
from loginwatch.notifier.events import (
    SignIn,
    episode_window,
    first_ingested_after,
    parse_sign_in,
    sign_ins_from_log_events,
)
from tests.notifier.conftest import alarm_event, cloudtrail_record, history_item

OK_TIME = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def minutes_before(minutes: float) -> datetime:
    return OK_TIME - timedelta(minutes=minutes)


def ok_notice(**trigger: int) -> AlarmNotification:
    notice = parse_event(alarm_event(state="OK", OldStateValue="ALARM"))
    assert isinstance(notice, AlarmNotification)
    return dataclasses.replace(notice, state_change_time=OK_TIME, **trigger)


def test_old_state_is_parsed() -> None:
    assert ok_notice().old_state == "ALARM"
    assert parse_event(alarm_event()).old_state == "OK"
    assert parse_event(alarm_event(OldStateValue=None)).old_state == ""


def test_newest_alarm_item_starts_the_episode() -> None:
    items = [
        history_item(minutes_before(55), "ALARM"),
        history_item(OK_TIME, "OK", old_state="ALARM"),
        history_item(minutes_before(7), "ALARM"),  # order does not matter
        history_item(minutes_before(50), "OK", old_state="ALARM"),
        history_item(minutes_before(60), "INSUFFICIENT_DATA"),
    ]
    start = start_from_history(items, OK_TIME)
    assert start is not None
    assert start.time == minutes_before(7)
    assert start.from_history and not start.test_alert
    assert start.note == "alarm in ALARM since 2026-11-20 09:23:00 UTC"


def test_items_after_the_ok_time_or_unreadable_are_skipped() -> None:
    later = history_item(OK_TIME + timedelta(seconds=5), "ALARM")
    broken = {**history_item(minutes_before(2), "ALARM"), "HistoryData": "not json"}
    no_data = {
        k: v for k, v in history_item(minutes_before(3), "ALARM").items() if k != "HistoryData"
    }
    not_a_date = {**history_item(minutes_before(4), "ALARM"), "Timestamp": "yesterday"}
    naive = history_item(minutes_before(9).replace(tzinfo=None), "ALARM")
    start = start_from_history([later, broken, no_data, not_a_date, naive], OK_TIME)
    assert start is not None and start.time == minutes_before(9)
    assert start_from_history([later, broken], OK_TIME) is None
    assert start_from_history([], OK_TIME) is None


def test_test_alert_episode_is_recognised() -> None:
    reason = protocol.marked_alarm_reason("t-1")
    start = start_from_history([history_item(minutes_before(2), "ALARM", reason=reason)], OK_TIME)
    assert start is not None and start.test_alert
    assert "test-alert episode" in start.note
    assert "t-1" not in start.note


@pytest.mark.parametrize(
    ("period", "evaluation_periods", "lookback", "minutes"),
    [(60, 1, 10, 15), (60, 1, 0, 15), (300, 3, 10, 25), (60, 5, 14, 19)],
)
def test_fallback_start_is_at_least_fifteen_minutes(
    period: int, evaluation_periods: int, lookback: int, minutes: int
) -> None:
    notice = ok_notice(period_seconds=period, evaluation_periods=evaluation_periods)
    assert fallback_start(notice, lookback) == minutes_before(minutes)


def test_episode_window_runs_from_before_the_start_to_after_ok() -> None:
    window = episode_window(ok_notice(), minutes_before(20), 10)
    assert window.start == minutes_before(31)
    assert window.end == OK_TIME + timedelta(minutes=1)


def sign_in(event_id: str, ingested: datetime | None) -> SignIn:
    parsed = parse_sign_in(cloudtrail_record("alice", eventID=event_id))
    assert parsed is not None
    return dataclasses.replace(parsed, ingested_at=ingested)


def test_ingestion_time_is_carried_from_the_log_event() -> None:
    (parsed,) = sign_ins_from_log_events(
        [
            {
                "timestamp": 1,
                "ingestionTime": 1_794_994_200_123,
                "message": json.dumps(cloudtrail_record("alice")),
            }
        ]
    )
    assert parsed.ingested_at == datetime(2026, 11, 18, 9, 30, 0, 123000, tzinfo=UTC)
    assert parse_sign_in(cloudtrail_record("alice")).ingested_at is None


def test_only_sign_ins_first_ingested_after_the_start_are_kept() -> None:
    start = minutes_before(5)
    kept = first_ingested_after(
        [
            sign_in("before", minutes_before(6)),
            sign_in("at-start", start),
            sign_in("after", minutes_before(4)),
            sign_in("redelivered", minutes_before(6)),
            sign_in("redelivered", minutes_before(1)),
            sign_in("unknown", None),  # kept: a repeat is better than a miss
            sign_in("", minutes_before(1)),
        ],
        start,
    )
    assert [s.event_id for s in kept] == ["after", "unknown", ""]
