"""Find the console sign-ins behind an alarm: window, log query, parse, exact re-check.

Alarm actions run only on state transitions, so one notification can stand for
several sign-ins; we therefore look up *every* sign-in in the alarm's window
rather than assuming one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .alarm_event import AlarmNotification
from .calls import TRAIL_LOGS, Call

CALLS = (Call("logs", "FilterLogEvents", TRAIL_LOGS),)

# Every console sign-in; the allowlist is applied exactly in Python afterwards
# because the alarm's own filter pattern can only approximate CIDR ranges.
CONSOLE_LOGIN_FILTER = (
    '{ ($.eventSource = "signin.amazonaws.com") && ($.eventName = "ConsoleLogin") }'
)

# A safety net against a pathological log group: 10,000 events per page already.
_MAX_PAGES = 50


@dataclass(frozen=True)
class AlarmWindow:
    start: datetime
    end: datetime

    @property
    def start_ms(self) -> int:
        return _epoch_ms(self.start)

    @property
    def end_ms(self) -> int:
        return _epoch_ms(self.end)


@dataclass(frozen=True)
class SignIn:
    """The parts of a CloudTrail ConsoleLogin record the Slack message shows."""

    event_id: str
    event_time: datetime
    identity_type: str
    user_name: str  # IAM user name, role session name, "" for root
    role_name: str  # for AssumedRole; "" otherwise
    arn: str
    source_ip: str
    mfa_used: str  # "Yes", "No" or "Unknown"
    success: bool
    error_message: str
    region: str
    user_agent: str
    account_id: str
    # When CloudWatch Logs received the record (filter_log_events' ingestionTime);
    # None if unknown. Not shown in Slack: it tells which run could have seen the event.
    ingested_at: datetime | None = None

    @property
    def is_root(self) -> bool:
        return self.identity_type == "Root"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_ms(moment: datetime) -> int:
    # Integer arithmetic: float timestamps can round 123 ms down to 122.
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def evaluated_span(alarm: AlarmNotification) -> timedelta:
    """The stretch of metric data one alarm evaluation looks at."""
    return timedelta(seconds=alarm.period_seconds * alarm.evaluation_periods)


def alarm_window(alarm: AlarmNotification, lookback_minutes: int) -> AlarmWindow:
    """From the start of the evaluated periods (minus slack for delivery lag) to
    one minute after the state change."""
    return episode_window(alarm, alarm.state_change_time, lookback_minutes)


def episode_window(
    alarm: AlarmNotification, alarm_start: datetime, lookback_minutes: int
) -> AlarmWindow:
    """From the evaluated periods before ``alarm_start`` (minus slack for delivery lag)
    to one minute after this notification's state change.

    For an ALARM notification ``alarm_start`` is its own state change, which gives
    ``alarm_window``; for ALARM → OK it is when the episode began, so the window
    covers every sign-in that could have kept the alarm in ALARM.
    """
    start = alarm_start - evaluated_span(alarm) - timedelta(minutes=lookback_minutes)
    end = alarm.state_change_time + timedelta(minutes=1)
    return AlarmWindow(start=start, end=end)


def fetch_log_events(
    logs_client: Any,
    log_group: str,
    window: AlarmWindow,
    *,
    page_limit: int | None = None,
    pattern: str = CONSOLE_LOGIN_FILTER,
) -> list[dict[str, Any]]:
    """All log events matching ``pattern`` (console sign-ins unless told) in the window,
    following nextToken.

    AWS may return empty pages that still carry a nextToken while it searches;
    keep going until the token disappears.
    """
    request: dict[str, Any] = {
        "logGroupName": log_group,
        "startTime": window.start_ms,
        "endTime": window.end_ms,
        "filterPattern": pattern,
    }
    if page_limit is not None:
        request["limit"] = page_limit
    events: list[dict[str, Any]] = []
    for _ in range(_MAX_PAGES):
        response = logs_client.filter_log_events(**request)
        events.extend(response.get("events", []))
        token = response.get("nextToken")
        if not token:
            break
        request["nextToken"] = token
    return events


def text(value: Any) -> str:
    """A record's string field, or "" (CloudTrail fields may be absent or of another type)."""
    return value if isinstance(value, str) else ""


def mapping(value: Any) -> Mapping[str, Any]:
    """A record's object field, or {}."""
    return value if isinstance(value, Mapping) else {}


def parse_event_time(value: Any, fallback_ms: Any = None) -> datetime:
    """A record's eventTime, else the log event's timestamp (ms), else the epoch."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            pass
    if isinstance(fallback_ms, int | float) and not isinstance(fallback_ms, bool):
        return _EPOCH + timedelta(milliseconds=int(fallback_ms))
    return _EPOCH


def _parse_epoch_ms(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return _EPOCH + timedelta(milliseconds=int(value))


def parse_sign_in(
    record: Mapping[str, Any], log_timestamp_ms: Any = None, ingestion_time_ms: Any = None
) -> SignIn | None:
    """A SignIn from a CloudTrail record, or None if it is not a ConsoleLogin.

    The log query already asks for ConsoleLogin only, but the check is repeated
    so correctness never depends on the filter being evaluated.
    """
    if (
        record.get("eventSource") != "signin.amazonaws.com"
        or record.get("eventName") != "ConsoleLogin"
    ):
        return None
    identity = mapping(record.get("userIdentity"))
    identity_type = text(identity.get("type")) or "Unknown"
    arn = text(identity.get("arn"))
    user_name = text(identity.get("userName"))
    role_name = ""
    if identity_type == "AssumedRole":
        # arn:aws:sts::<account>:assumed-role/<role name>/<session name>
        parts = arn.split("/")
        if len(parts) >= 3:
            role_name, user_name = parts[-2], parts[-1]
    elif not user_name and arn and identity_type != "Root":
        user_name = arn.rsplit("/", 1)[-1]
    if not user_name and identity_type != "Root":
        user_name = text(identity.get("principalId"))
    outcome = text(mapping(record.get("responseElements")).get("ConsoleLogin"))
    # "YES" is seen in published records: compare without case.
    mfa = text(mapping(record.get("additionalEventData")).get("MFAUsed")).strip().capitalize()
    return SignIn(
        event_id=text(record.get("eventID")),
        event_time=parse_event_time(record.get("eventTime"), log_timestamp_ms),
        identity_type=identity_type,
        user_name=user_name,
        role_name=role_name,
        arn=arn,
        source_ip=text(record.get("sourceIPAddress")),
        mfa_used=mfa if mfa in ("Yes", "No") else "Unknown",
        success=outcome == "Success",
        error_message=text(record.get("errorMessage")),
        region=text(record.get("awsRegion")),
        user_agent=text(record.get("userAgent")),
        account_id=text(record.get("recipientAccountId")) or text(identity.get("accountId")),
        ingested_at=_parse_epoch_ms(ingestion_time_ms),
    )


def sign_ins_from_log_events(log_events: Iterable[Mapping[str, Any]]) -> list[SignIn]:
    """Parse log event messages as CloudTrail records; skip anything that is not one."""
    sign_ins: list[SignIn] = []
    for log_event in log_events:
        try:
            record = json.loads(log_event.get("message", ""))
        except (TypeError, json.JSONDecodeError):
            continue
        if not isinstance(record, Mapping):
            continue
        sign_in = parse_sign_in(record, log_event.get("timestamp"), log_event.get("ingestionTime"))
        if sign_in is not None:
            sign_ins.append(sign_in)
    return sign_ins


def unique_newest_first(sign_ins: Iterable[SignIn]) -> list[SignIn]:
    """One per eventID, newest first.

    CloudTrail can deliver the same event more than once, and a trail can share
    a log group with another trail, hence the de-duplication.
    """
    seen: set[str] = set()
    kept: list[SignIn] = []
    for sign_in in sign_ins:
        # Records without an eventID should not exist; keep them rather than merge them.
        if sign_in.event_id:
            if sign_in.event_id in seen:
                continue
            seen.add(sign_in.event_id)
        kept.append(sign_in)
    return sorted(kept, key=lambda s: (s.event_time, s.event_id), reverse=True)


def first_ingested_after(sign_ins: Iterable[SignIn], moment: datetime) -> list[SignIn]:
    """Sign-ins that reached CloudWatch Logs only after ``moment``.

    An eventID with *any* copy ingested at or before ``moment`` was already
    visible then (CloudTrail may redeliver an event later), so it is left out.
    A sign-in whose ingestion time is unknown is kept: repeating one is better
    than missing one.
    """
    listed = list(sign_ins)
    seen_before = {
        s.event_id
        for s in listed
        if s.event_id and s.ingested_at is not None and s.ingested_at <= moment
    }
    return [
        s
        for s in listed
        if (s.ingested_at is None or s.ingested_at > moment) and s.event_id not in seen_before
    ]
