"""`loginwatch redeliver`: post the alerts the retries gave up on, once the cause is fixed.

Every queue of undelivered alerts is read: the final queue (where the retry
queue gives up), each region's events dead-letter queue, and the retry queue
itself (what waits there for its next try is posted now). Each message is handed to
the notifier function as the one record of an SQS batch, exactly as the retry
mapping hands it over, so it is processed, de-duplicated (a sign-in already
reported is not posted again) and marked late the same way. A message is
deleted only after the notifier says Slack accepted it (or that it was reported
already); one it fails on stays, visible again when this run ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .alert_drill import invoke_notifier
from .aws import Aws
from .engine import is_unavailable, read_all, resources_for
from .names import Names
from .notifier.alarm_event import Ignored, parse_event
from .notifier.api_calls import API_CALL_DETAIL_TYPE, parse_api_call
from .notifier.events import parse_sign_in
from .notifier.protocol import FOLLOW_UP_MARKER
from .notifier.redelivery import REDELIVER_MARKER, UnreadableRecord, unwrap
from .notifier.slack_message import who_plain
from .resources.base import Deployment
from .resources.queue import REDELIVER_VISIBILITY_SECONDS, Queue

# Invoke(event) → the notifier's answer, or raises RedeliveryFailed.
Invoker = Callable[[dict[str, Any]], dict[str, Any]]
# The notifier's outcomes for a record it did not finish: the message stays.
NOT_DONE = ("failed", "deferred", "listed")


class RedeliveryFailed(Exception):
    """The notifier failed as a whole (it raised, or answered nothing readable)."""


@dataclass
class Redelivered:
    queue: Queue
    message_id: str
    summary: str  # what the alert is about, in a line
    outcome: str  # the notifier's outcome, or "listed" for --dry-run
    reason: str = ""

    @property
    def delivered(self) -> bool:
        """Done with: posted, reported already, or nothing to post (as the retry mapping
        would have deleted it)."""
        return self.outcome not in NOT_DONE


def undelivered_queues(deployment: Deployment) -> list[Queue]:
    """Every queue of the deployment that holds alerts Slack has not taken."""
    return [r for r in resources_for(deployment) if isinstance(r, Queue)]


def redeliver(
    deployment: Deployment,
    invoke: Invoker,
    *,
    dry_run: bool = False,
    on_item: Callable[[Redelivered], None] = lambda _: None,
) -> list[Redelivered]:
    queues = undelivered_queues(deployment)
    done: list[Redelivered] = []
    for queue, observed in zip(queues, read_all(deployment, queues), strict=True):
        if observed is None or is_unavailable(observed) or not observed["messages"]:
            continue
        held: list[str] = []  # receipt handles to make visible again at the end
        try:
            for message in _receive_all(queue, observed["url"], observed["messages"]):
                item = _one(queue, observed["url"], message, invoke, dry_run)
                # A failed retry-queue record keeps the backoff the notifier gave it.
                if dry_run or (not item.delivered and queue.dead_letter):
                    held.append(message["ReceiptHandle"])
                done.append(item)
                on_item(item)
        finally:
            _release(queue, observed["url"], held)
    return done


def _receive_all(queue: Queue, url: str, expected: int) -> Iterator[dict[str, Any]]:
    """Every message (``expected``: how many the queue reported), once: each stays
    hidden while this run works, so none repeats."""
    seen: set[str] = set()
    empty = 0
    # Short polling samples SQS's servers: an empty answer is proof only when long polled.
    while len(seen) < expected and empty < 2:
        with queue.aws_call():
            found = queue.client.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=REDELIVER_VISIBILITY_SECONDS,
                WaitTimeSeconds=1 if empty else 0,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        fresh = [m for m in found if m["MessageId"] not in seen]
        empty = 0 if fresh else empty + 1
        for message in fresh:
            seen.add(message["MessageId"])
            yield message


def _one(
    queue: Queue, url: str, message: dict[str, Any], invoke: Invoker, dry_run: bool
) -> Redelivered:
    record = lambda_record(message, queue.arn, queue.region)
    summary = describe(record)
    if dry_run:
        return Redelivered(queue, message["MessageId"], summary, "listed")
    try:
        answer = invoke({"Records": [record], REDELIVER_MARKER: True})
    except RedeliveryFailed as error:
        return Redelivered(queue, message["MessageId"], summary, "failed", str(error))
    result: dict[str, Any] = next(
        (r for r in answer.get("results", []) if r.get("itemIdentifier") == message["MessageId"]),
        {},
    )
    failed = {f.get("itemIdentifier") for f in answer.get("batchItemFailures", [])}
    outcome = "failed" if message["MessageId"] in failed else str(result.get("outcome", "failed"))
    item = Redelivered(queue, message["MessageId"], summary, outcome, result.get("reason") or "")
    if item.delivered:
        with queue.aws_call():
            queue.client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return item


def _release(queue: Queue, url: str, receipts: list[str]) -> None:
    for start in range(0, len(receipts), 10):
        entries = [
            {"Id": str(i), "ReceiptHandle": r, "VisibilityTimeout": 0}
            for i, r in enumerate(receipts[start : start + 10])
        ]
        with queue.aws_call():
            queue.client.change_message_visibility_batch(QueueUrl=url, Entries=entries)


def lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS message (as ReceiveMessage returns it) as Lambda's event source mapping
    hands it to a function."""
    attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "dataType": value.get("DataType", "String"),
        }
        for name, value in (message.get("MessageAttributes") or {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": message.get("Attributes") or {},
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def describe(record: dict[str, Any]) -> str:
    """One line about a queued alert: whose sign-in, or which alarm notification."""
    try:
        undelivered = unwrap(record)
    except UnreadableRecord as error:
        return f"unreadable message ({error})"
    event = undelivered.event
    if isinstance(event, dict) and FOLLOW_UP_MARKER in event:
        opened = event.get("opened")
        when = "?"
        if isinstance(opened, int | float) and not isinstance(opened, bool):
            with contextlib.suppress(OverflowError, OSError, ValueError):  # a corrupt record
                when = datetime.fromtimestamp(opened, UTC).strftime("%Y-%m-%d %H:%M UTC")
        what = (
            "maintenance" if str(event.get(FOLLOW_UP_MARKER)).startswith("maint") else "access-key"
        )
        return f"{what} follow-up (calls counted after the first, from {when})"
    if isinstance(event, dict) and isinstance(event.get("detail"), dict):
        sign_in = parse_sign_in(event["detail"])
        if sign_in is not None:
            when = sign_in.event_time.strftime("%Y-%m-%d %H:%M UTC")
            return f"sign-in by {who_plain(sign_in)} from {sign_in.source_ip} at {when}"
        call = parse_api_call(event["detail"])
        if call is not None and event.get("detail-type") == API_CALL_DETAIL_TYPE:
            when = call.event_time.strftime("%Y-%m-%d %H:%M UTC")
            return (
                f"{call.event_name} by {call.who} with key {call.masked_key} from "
                f"{call.source_ip} at {when}"
            )
        return f"event {event.get('detail-type', '?')}"
    notice = parse_event(event)
    if isinstance(notice, Ignored):
        return f"notification ({notice.reason})"
    when = notice.state_change_time.strftime("%Y-%m-%d %H:%M UTC")
    return f"alarm {notice.alarm_name} → {notice.new_state} at {when}"


def lambda_invoker(aws: Aws, names: Names) -> Invoker:
    """Invoke the notifier synchronously, as the retry mapping would."""

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        answer = invoke_notifier(aws, names, event)
        if answer.error is not None:
            raise RedeliveryFailed(
                f"the notifier failed: {answer.error} {answer.log_tail[-300:]}".strip()
            )
        if not isinstance(answer.body, dict):
            raise RedeliveryFailed("the notifier returned no result")
        return answer.body

    return invoke
