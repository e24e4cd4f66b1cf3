"""A batch from the retry queue (or, through `loginwatch redeliver`, a dead-letter
queue): each record's original event goes through its own path again, marked late.

This is the one event shape that wraps others, so it is not a path of its own:
``handle`` unwraps each record (redelivery.unwrap) and gives its event to
``run_one`` (the handler's per-event step), then answers with the
``batchItemFailures`` the event source mapping reads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from . import aws_clients, redelivery
from .calls import RETRY_QUEUE, Call
from .context import FUNCTION_TIMEOUT_SECONDS, Outcome, cached_settings, queue_url
from .slack_delivery import SlackDeliveryError

# Each failed record is hidden from the retry queue for its backoff.
CALLS = (
    Call("sqs", "GetQueueUrl", RETRY_QUEUE),
    Call("sqs", "ChangeMessageVisibility", RETRY_QUEUE),
)

# Below this much time left, a record is left for the next try rather than started:
# one post with its Slack retries may take 15 s.
TIME_NEEDED_SECONDS = 12.0

# One event, processed: its log record, and the error that failed it (or None).
RunOne = Callable[[Any, Any, str | None], tuple[dict[str, Any], BaseException | None]]
Emit = Callable[[Outcome, float, str | None], dict[str, Any]]


def recognises(event: Any) -> bool:
    return redelivery.is_sqs_batch(event)


def handle(
    event: Mapping[str, Any], lambda_context: Any, run_one: RunOne, emit: Emit
) -> dict[str, Any]:
    """Each record processed as its original event was, and reported on its own."""
    failures: list[str] = []
    results: list[dict[str, Any]] = []
    hold_back: str | None = None
    for record in event["Records"]:
        message_id = str(record.get("messageId", ""))
        if hold_back is None and _out_of_time(lambda_context):
            hold_back = "left for the next try: too little time left in this run"
        if hold_back is not None:
            failures.append(message_id)
            _retry_later(record)
            logged = emit(Outcome("deferred", reason=hold_back), time.perf_counter(), None)
            results.append({"itemIdentifier": message_id, **logged})
            continue
        failed: BaseException | None
        try:
            undelivered = redelivery.unwrap(record)
        except redelivery.UnreadableRecord as error:
            logged, failed = _unreadable(error, emit), error
        else:
            # A scheduled follow-up has no cause: it is on time, not a late alert.
            cause = undelivered.cause or None
            logged, failed = run_one(undelivered.event, lambda_context, cause)
        if failed is not None:
            if isinstance(failed, SlackDeliveryError):
                # Slack is still failing: do not try the rest of the batch now.
                hold_back = "left for the next try: Slack is still failing"
            failures.append(message_id)
            _retry_later(record)
        results.append({"itemIdentifier": message_id, **logged})
    answer: dict[str, Any] = {"batchItemFailures": [{"itemIdentifier": m} for m in failures]}
    if event.get(redelivery.REDELIVER_MARKER):
        # Only for `loginwatch redeliver`: the retry mapping reads batchItemFailures alone.
        answer["results"] = results
    return answer


def _unreadable(error: BaseException, emit: Emit) -> dict[str, Any]:
    return emit(
        Outcome("failed", reason=f"{type(error).__name__}: {error}"), time.perf_counter(), None
    )


def _out_of_time(lambda_context: Any) -> bool:
    remaining = getattr(lambda_context, "get_remaining_time_in_millis", None)
    seconds = remaining() / 1000 if callable(remaining) else FUNCTION_TIMEOUT_SECONDS
    return seconds < TIME_NEEDED_SECONDS


def _retry_later(record: Mapping[str, Any]) -> None:
    """Hide a failed record from the retry queue for its backoff. Best effort: if this
    fails, the queue's visibility timeout (the longest backoff) applies instead."""
    settings, _ = cached_settings()
    name = redelivery.queue_name(record)
    receipt = record.get("receiptHandle")
    if name != settings.retry_queue or not receipt:
        return  # a dead-letter queue's message, handed over by `loginwatch redeliver`
    sqs = aws_clients.client("sqs", settings.region)
    try:
        sqs.change_message_visibility(
            QueueUrl=queue_url(sqs, name),
            ReceiptHandle=receipt,
            VisibilityTimeout=redelivery.backoff_seconds(redelivery.receive_count(record)),
        )
    except Exception as error:
        print(json.dumps({"loginwatch": "notifier", "backoff_not_set": str(error)[:200]}))
