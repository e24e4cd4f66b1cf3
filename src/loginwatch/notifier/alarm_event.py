"""Turn the Lambda event (an SNS-delivered CloudWatch alarm) into a typed notice.

Anything that is not a CloudWatch alarm notification is reported as an
``Ignored`` reason rather than an exception: Lambda retries failed async
invocations, and retrying a message we can never understand only adds noise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# Used when Trigger is absent (e.g. a composite alarm): one one-minute period.
_DEFAULT_PERIOD_SECONDS = 60
_DEFAULT_EVALUATION_PERIODS = 1


@dataclass(frozen=True)
class AlarmNotification:
    alarm_name: str
    account_id: str
    new_state: str
    old_state: str  # "" when the notification does not say
    state_reason: str
    state_change_time: datetime  # timezone-aware, UTC
    period_seconds: int
    evaluation_periods: int


@dataclass(frozen=True)
class Ignored:
    reason: str


def parse_state_change_time(text: str) -> datetime:
    """Parse CloudWatch's ``2026-11-20T09:21:30.123+0000`` (fraction optional)."""
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(text, fmt).astimezone(UTC)
        except ValueError:
            continue
    # Fall back to ISO 8601 ("Z" suffix and friends).
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _positive_int(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return default
    return int(value)


def parse_event(event: Any) -> AlarmNotification | Ignored:
    """Extract the alarm notification from an SNS Lambda event, or say why not."""
    if not isinstance(event, Mapping):
        return Ignored("event is not an object")
    records = event.get("Records")
    if not isinstance(records, list) or not records or not isinstance(records[0], Mapping):
        return Ignored("not an SNS event (no Records)")
    record = records[0]  # SNS always delivers exactly one record per invocation
    sns = record.get("Sns")
    if record.get("EventSource") != "aws:sns" or not isinstance(sns, Mapping):
        return Ignored("not an SNS event")
    message = sns.get("Message")
    if not isinstance(message, str):
        return Ignored("SNS message has no body")
    try:
        alarm = json.loads(message)
    except json.JSONDecodeError:
        return Ignored("SNS message is not JSON")
    if not isinstance(alarm, Mapping) or not isinstance(alarm.get("NewStateValue"), str):
        return Ignored("not a CloudWatch alarm notification (no NewStateValue)")
    raw_time = alarm.get("StateChangeTime")
    try:
        if not isinstance(raw_time, str):
            raise TypeError("StateChangeTime is not a string")
        state_change_time = parse_state_change_time(raw_time)
    except (TypeError, ValueError):
        return Ignored("alarm notification has no valid StateChangeTime")
    old_state = alarm.get("OldStateValue")
    trigger = alarm.get("Trigger")
    trigger = trigger if isinstance(trigger, Mapping) else {}
    return AlarmNotification(
        alarm_name=str(alarm.get("AlarmName") or ""),
        account_id=str(alarm.get("AWSAccountId") or ""),
        new_state=alarm["NewStateValue"],
        old_state=old_state if isinstance(old_state, str) else "",
        state_reason=str(alarm.get("NewStateReason") or ""),
        state_change_time=state_change_time,
        period_seconds=_positive_int(trigger.get("Period"), _DEFAULT_PERIOD_SECONDS),
        evaluation_periods=_positive_int(
            trigger.get("EvaluationPeriods"), _DEFAULT_EVALUATION_PERIODS
        ),
    )
