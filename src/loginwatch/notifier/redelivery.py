"""Alerts that failed once are kept in SQS and retried until Slack takes them.

Lambda retries a failing asynchronous invoke (SNS, EventBridge) twice, over
about three minutes, then hands an ``OnFailure`` record to the retry queue: the
original event (``requestPayload``) and why it failed (``responsePayload``).
An event source mapping gives batches of those records back to the notifier,
which processes each original event as it would have, marked as late.

A record that fails again is reported in ``batchItemFailures`` (the others of
its batch are done) and hidden for a growing backoff: 1, 2, 4 … minutes, then
hourly. The queue's own visibility timeout is the longest backoff, so a run
that dies without saying anything waits that long. After ``MAX_RECEIVES``
receives (at least ``RETRY_AT_LEAST_SECONDS``) SQS moves the record to the
final queue, where ``loginwatch status`` reports it and ``loginwatch
redeliver`` posts it once the cause is fixed.

EventBridge's own dead-letter queues hold events EventBridge could not hand
over at all (24 hours of retries); their messages are the events themselves.
``unwrap`` reads both shapes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .protocol import FOLLOW_UP_MARKER

BACKOFF_FIRST_SECONDS = 60
# The retry queue's visibility timeout, and the longest wait between two tries.
BACKOFF_MAX_SECONDS = 3600
RETRY_AT_LEAST_SECONDS = 4 * 24 * 3600
# `loginwatch redeliver` marks its batches so the answer also says what became of each.
REDELIVER_MARKER = "loginwatchRedeliver"


def backoff_seconds(receive_count: int) -> int:
    """How long a record stays hidden after its ``receive_count``-th try failed."""
    exponent = max(receive_count - 1, 0)
    if exponent >= 16:  # far beyond the cap; keeps the power small
        return BACKOFF_MAX_SECONDS
    return min(BACKOFF_FIRST_SECONDS * 2**exponent, BACKOFF_MAX_SECONDS)


def receives_to_cover(seconds: int) -> int:
    """The fewest tries whose backoffs add up to ``seconds``: the queue's maxReceiveCount."""
    total, receives = 0, 0
    while total < seconds:
        receives += 1
        total += backoff_seconds(receives)
    return receives


MAX_RECEIVES = receives_to_cover(RETRY_AT_LEAST_SECONDS)


@dataclass(frozen=True)
class Undelivered:
    """One queued alert: the event the notifier first got, and why it was not delivered."""

    event: Any
    cause: str


class UnreadableRecord(ValueError):
    """A queue message that is neither an OnFailure record nor an event."""


def is_sqs_batch(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, Mapping) else None
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, Mapping) and r.get("eventSource") == "aws:sqs" for r in records)
    )


def unwrap(record: Mapping[str, Any]) -> Undelivered:
    """The original event of an SQS record, from the retry queue or a dead-letter queue."""
    try:
        body = json.loads(record.get("body") or "")
    except (TypeError, ValueError):
        raise UnreadableRecord("the message body is not JSON") from None
    if not isinstance(body, Mapping):
        raise UnreadableRecord("the message body is not a JSON object")
    if "requestPayload" in body and isinstance(body.get("requestContext"), Mapping):
        return Undelivered(body["requestPayload"], _lambda_cause(body))
    if FOLLOW_UP_MARKER in body:
        return Undelivered(body, "")  # not a failed alert: an access key window's follow-up
    if "detail-type" in body and "detail" in body:
        attributes = record.get("messageAttributes") or {}
        code = (attributes.get("ERROR_CODE") or {}).get("stringValue") or "an error"
        return Undelivered(body, f"EventBridge could not deliver it ({code})")
    raise UnreadableRecord("the message is neither a Lambda OnFailure record nor an event")


def _lambda_cause(record: Mapping[str, Any]) -> str:
    """Why Lambda gave up on the invoke, in words for the Slack message."""
    if record["requestContext"].get("condition") == "EventAgeExceeded":
        return "the notifier could not run in time (throttled)"
    response = record.get("responsePayload")
    response = response if isinstance(response, Mapping) else {}
    error_type = str(response.get("errorType") or "")
    message = str(response.get("errorMessage") or "")
    if error_type == "SlackDeliveryError":
        return "Slack was unavailable"
    if error_type == "WebhookNotConfigured":
        return "the Slack webhook could not be read"
    if error_type == "ClaimBusy":
        return "another delivery of it was in progress"
    if error_type == "OutOfTime":
        return "the notifier ran out of time (Slack answered slowly)"
    if "Task timed out" in message:
        return "the notifier timed out"
    return f"the notifier failed ({error_type or 'an error'})"


def lateness(cause: str, since: datetime, now: datetime) -> str:
    """The note a late alert carries: "delayed 63 min: Slack was unavailable"."""
    minutes = max(1, round((now - since).total_seconds() / 60))
    if minutes >= 48 * 60:
        return f"delayed {minutes / (24 * 60):.1f} days: {cause}"
    return f"delayed {minutes} min: {cause}"


def receive_count(record: Mapping[str, Any]) -> int:
    try:
        return int((record.get("attributes") or {}).get("ApproximateReceiveCount", 1))
    except (TypeError, ValueError):
        return 1


def queue_name(record: Mapping[str, Any]) -> str:
    """arn:aws:sqs:<region>:<account>:<name> → <name>."""
    return str(record.get("eventSourceARN") or "").rsplit(":", 1)[-1]
