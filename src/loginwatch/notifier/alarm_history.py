"""When did the ALARM episode that just ended begin? The alarm history says.

Alarm actions run only on state transitions: while the alarm stays in ALARM, a
further sign-in from outside the allowlist triggers nothing. The ALARM → OK
notification is the first chance to look again, and what counts as *new* then
depends on when the episode began — which the OK notification does not carry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .alarm_event import AlarmNotification
from .calls import ALARMS, Call
from .events import evaluated_span
from .protocol import find_test_id

# On ALARM → OK: when did the episode begin?
CALLS = (Call("cloudwatch", "DescribeAlarmHistory", ALARMS),)

# An episode longer than this needs sign-ins every period for a day; the fallback covers it.
HISTORY_SPAN = timedelta(days=1)
# ALARM → OK is the newest item; the ALARM item that began the episode comes right before it.
HISTORY_RECORDS = 10
# Without a start from the history, assume at least this much of the episode is unseen.
FALLBACK_MINIMUM = timedelta(minutes=15)


@dataclass(frozen=True)
class EpisodeStart:
    time: datetime  # timezone-aware, UTC
    from_history: bool
    test_alert: bool  # the ALARM state carried the `loginwatch test-alert` marker
    note: str  # how the start was found, for the log line


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def start_from_history(
    items: Iterable[Mapping[str, Any]], ok_time: datetime
) -> EpisodeStart | None:
    """The newest StateUpdate item (at or before ``ok_time``) that entered ALARM, if any."""
    best: tuple[datetime, Mapping[str, Any]] | None = None
    for item in items:
        timestamp = item.get("Timestamp")
        if not isinstance(timestamp, datetime) or _utc(timestamp) > ok_time:
            continue
        try:
            data = json.loads(item.get("HistoryData") or "")
        except (TypeError, json.JSONDecodeError):
            continue
        new_state = data.get("newState") if isinstance(data, Mapping) else None
        if not isinstance(new_state, Mapping) or new_state.get("stateValue") != "ALARM":
            continue
        if best is None or _utc(timestamp) > best[0]:
            best = (_utc(timestamp), new_state)
    if best is None:
        return None
    moment, new_state = best
    reason = new_state.get("stateReason")
    is_test = isinstance(reason, str) and find_test_id(reason) is not None
    return EpisodeStart(
        time=moment,
        from_history=True,
        test_alert=is_test,
        note=f"alarm in ALARM since {_when(moment)}"
        + (" (a test-alert episode)" if is_test else ""),
    )


def fallback_start(alarm: AlarmNotification, lookback_minutes: int) -> datetime:
    """A guess when the history has no answer: the span one ALARM-time run would have
    looked back over, and never less than FALLBACK_MINIMUM."""
    span = max(FALLBACK_MINIMUM, evaluated_span(alarm) + timedelta(minutes=lookback_minutes))
    return alarm.state_change_time - span


def find_episode_start(
    cloudwatch: Any, alarm: AlarmNotification, lookback_minutes: int
) -> EpisodeStart:
    """When the ALARM episode ending with ``alarm`` (an ALARM → OK notification) began.

    If the history has no ALARM item, or cannot be read (the role is missing
    cloudwatch:DescribeAlarmHistory, say), fall back to ``fallback_start`` rather
    than fail: a rough window still reports the sign-ins, a failed run reports none.
    """
    ok_time = alarm.state_change_time
    try:
        response = cloudwatch.describe_alarm_history(
            AlarmName=alarm.alarm_name,
            HistoryItemType="StateUpdate",
            StartDate=ok_time - HISTORY_SPAN,
            EndDate=ok_time,
            ScanBy="TimestampDescending",
            MaxRecords=HISTORY_RECORDS,
        )
    except cloudwatch.exceptions.ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        why = f"the alarm history could not be read ({code})"
    else:
        found = start_from_history(response.get("AlarmHistoryItems", []), ok_time)
        if found is not None:
            return found
        why = "no ALARM start in the alarm history"
    start = fallback_start(alarm, lookback_minutes)
    minutes = (ok_time - start) // timedelta(seconds=1) / 60
    return EpisodeStart(
        time=start,
        from_history=False,
        test_alert=False,
        note=f"{why}; assumed the alarm started {_when(start)} (OK time − {minutes:g} min)",
    )
