"""Lambda entry point: recognise the event, hand it to its path, log what happened.

The paths (paths/): an SNS alarm notification (the backstop), an EventBridge
sign-in event (the fast path), an API call signed with an access key, AWS saying a
key is exposed, an access key window's follow-up, a test event (`loginwatch
test-alert`). A batch from the retry queue (retry_batch.py) gives each record's
event to the same step.

Every event prints one JSON line (Lambda ships stdout to CloudWatch Logs) and the
invocation returns the same dict, so a synchronous invoke can report it. A path
that needs the event tried again raises; the line is printed first, then the
error is raised again for Lambda to record (and retry the asynchronous invoke).
"""

from __future__ import annotations

import json
import time
from typing import Any

from . import context, retry_batch
from .context import Context, Outcome
from .paths import path_for
from .protocol import TEST_ALERT_MARKER, marked_alarm_reason
from .settings import load_settings
from .slack_delivery import SlackDeliveryError
from .webhook_secret import WebhookNotConfigured

__all__ = [
    "TEST_ALERT_MARKER",
    "SlackDeliveryError",
    "WebhookNotConfigured",
    "lambda_handler",
    "load_settings",
    "marked_alarm_reason",
    "reset_caches",
]

_REASON_LIMIT = 300
reset_caches = context.reset


def lambda_handler(event: Any, lambda_context: Any) -> dict[str, Any]:
    """Lambda handler (``loginwatch_notifier.handler.lambda_handler``)."""
    if retry_batch.recognises(event):
        return retry_batch.handle(event, lambda_context, run_one, emit)
    record, error = run_one(event, lambda_context, None)
    if error is not None:
        raise error
    return record


def run_one(
    event: Any, lambda_context: Any, late_cause: str | None
) -> tuple[dict[str, Any], BaseException | None]:
    """One event through its path: its log record, and the error that failed it."""
    started = time.perf_counter()
    ctx = Context.for_invocation(lambda_context, late_cause=late_cause)
    path = path_for(event)
    try:
        if path is None:
            outcome = Outcome("ignored", reason=_not_ours(event))
        else:
            outcome = path.handle(event, ctx)
    except Exception as error:
        return emit(_failed(error, ctx), started, late_cause), error
    return emit(outcome, started, late_cause), None


def _not_ours(event: Any) -> str:
    if not isinstance(event, dict):
        return "event is not an object"
    return "not an SNS event, an EventBridge event or a retry batch: nothing loginwatch takes"


def _failed(error: BaseException, ctx: Context) -> Outcome:
    reason = context.without_webhooks(f"{type(error).__name__}: {error}")
    status = error.status if isinstance(error, SlackDeliveryError) else ctx.progress.slack_status
    return Outcome(
        "failed",
        ctx.progress.events,
        test_id=ctx.progress.test_id,
        reason=reason[:_REASON_LIMIT],
        slack_status=status,
    )


def emit(outcome: Outcome, started: float, late_cause: str | None) -> dict[str, Any]:
    """Print the event's log line and return it."""
    record: dict[str, Any] = {
        "loginwatch": "notifier",
        "outcome": outcome.outcome,
        "events": outcome.events,
        "slack_status": outcome.slack_status,
        "test_id": outcome.test_id,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        "reason": outcome.reason[:_REASON_LIMIT] if outcome.reason else outcome.reason,
    }
    if outcome.extra:
        record.update({k: v for k, v in outcome.extra.items() if k not in record})
    if late_cause is not None:
        # An alert from the retry or a dead-letter queue: why it is late.
        record["late_cause"] = late_cause
    print(json.dumps(record), flush=True)
    return record
