"""Slack down for a while: the alert waits in the retry queue and is posted once, marked late.

What Lambda does around the notifier is played here as AWS documents it (moto
runs neither destinations nor event source mappings): after its retries, an
OnFailure record with the original event goes to the retry queue; the mapping
receives a batch, invokes the handler, and deletes what it did not report as
failed. The queue is moto's SQS, so visibility and receive counts are real.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from loginwatch.demo.webhook_catcher import SlackReply
from loginwatch.notifier import handler, redelivery
from loginwatch.notifier.claims import Claims
from loginwatch.notifier.slack_delivery import SlackDeliveryError
from loginwatch.redeliver import lambda_record
from tests.conftest import load_fixture
from tests.notifier.conftest import (
    ACCOUNT_ID,
    CLAIMS_TABLE,
    REGION,
    RETRY_QUEUE,
    NotifierWorld,
    alarm_event,
    cloudtrail_record,
    iter_texts,
)
from tests.notifier.test_fast_path import eventbridge_event

QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{RETRY_QUEUE}"
FIXTURE = "sqs/lambda_event_sqs_onfailure_record.json"

# ---------------------------------------------------------------- the schedule, pure


def test_retries_span_at_least_four_days_even_if_every_run_dies() -> None:
    waits = [redelivery.backoff_seconds(n) for n in range(1, redelivery.MAX_RECEIVES + 1)]
    assert waits[:3] == [60, 120, 240]  # soon at first: most outages are short
    assert max(waits) == redelivery.BACKOFF_MAX_SECONDS == 3600
    assert sum(waits) >= redelivery.RETRY_AT_LEAST_SECONDS
    assert sum(waits[:-1]) < redelivery.RETRY_AT_LEAST_SECONDS  # no more tries than needed
    # A run that dies sets no backoff: the queue's visibility timeout (the longest) applies.
    assert redelivery.MAX_RECEIVES * redelivery.BACKOFF_MAX_SECONDS >= 4 * 86400
    assert redelivery.backoff_seconds(10_000) == 3600


def test_lateness_is_said_in_minutes_then_days() -> None:
    start = datetime(2026, 11, 20, 9, 15, tzinfo=UTC)
    note = redelivery.lateness("Slack was unavailable", start, start + timedelta(minutes=63))
    assert note == "delayed 63 min: Slack was unavailable"
    assert redelivery.lateness("x", start, start + timedelta(seconds=5)) == "delayed 1 min: x"
    assert redelivery.lateness("x", start, start + timedelta(days=3)) == "delayed 3.0 days: x"


def test_the_fixture_record_unwraps_to_its_event_and_cause() -> None:
    (record,) = load_fixture(FIXTURE)["Records"]
    undelivered = redelivery.unwrap(record)
    assert undelivered.cause == "Slack was unavailable"
    assert undelivered.event["detail"]["eventID"] == "3a1f5b2c-8d4e-4f6a-9b7c-0e1d2f3a4b5c"
    assert redelivery.queue_name(record) == "loginwatch-notifier-retry"
    assert redelivery.receive_count(record) == 1


@pytest.mark.parametrize(
    ("response", "condition", "cause"),
    [
        ({"errorType": "WebhookNotConfigured"}, "RetriesExhausted", "webhook could not be read"),
        ({"errorMessage": "Task timed out after 30.03 seconds"}, "RetriesExhausted", "timed out"),
        ({"errorType": "KeyError"}, "RetriesExhausted", "the notifier failed (KeyError)"),
        ({"errorType": "OutOfTime"}, "RetriesExhausted", "ran out of time"),
        (None, "EventAgeExceeded", "could not run in time"),
    ],
)
def test_each_failure_is_named_in_words(
    response: dict[str, Any] | None, condition: str, cause: str
) -> None:
    (record,) = copy.deepcopy(load_fixture(FIXTURE))["Records"]
    body = json.loads(record["body"])
    body["requestContext"]["condition"] = condition
    body["responsePayload"] = response
    record["body"] = json.dumps(body)
    assert cause in redelivery.unwrap(record).cause


def test_an_eventbridge_dead_letter_message_is_the_event_itself() -> None:
    event = load_fixture("eventbridge/console_signin_event.json")
    record = {
        "body": json.dumps(event),
        "messageAttributes": {"ERROR_CODE": {"stringValue": "NO_PERMISSIONS"}},
    }
    undelivered = redelivery.unwrap(record)
    assert undelivered.event == event
    assert undelivered.cause == "EventBridge could not deliver it (NO_PERMISSIONS)"
    for body in ("not json", "[1, 2]", json.dumps({"some": "thing"})):
        with pytest.raises(redelivery.UnreadableRecord):
            redelivery.unwrap({"body": body})


# ---------------------------------------------------------------- Lambda and SQS, as AWS runs them


class RetryQueue:
    """moto's SQS queue standing in for the retry queue, driven as Lambda drives it."""

    def __init__(self) -> None:
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.url = self.sqs.create_queue(
            QueueName=RETRY_QUEUE, Attributes={"VisibilityTimeout": "3600"}
        )["QueueUrl"]
        self.received: list[str] = []  # receipt handles of the last poll

    def lambda_gives_up(self, event: dict[str, Any], error: Exception) -> None:
        """After its two retries, Lambda sends the OnFailure record (shape of the fixture)."""
        record = json.loads(load_fixture(FIXTURE)["Records"][0]["body"])
        record["requestPayload"] = event
        record["responsePayload"] = {
            "errorType": type(error).__name__,
            "errorMessage": str(error),
        }
        self.sqs.send_message(QueueUrl=self.url, MessageBody=json.dumps(record))

    def poll(self) -> dict[str, Any]:
        """One run of the event source mapping: receive a batch, invoke, delete the rest."""
        messages = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        assert messages, "nothing visible in the retry queue"
        self.received = [m["ReceiptHandle"] for m in messages]
        event = {"Records": [lambda_record(m, QUEUE_ARN, REGION) for m in messages]}
        answer = handler.lambda_handler(event, None)
        failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return answer

    def counts(self) -> tuple[int, int]:
        """(visible, hidden for their backoff)."""
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["All"])[
            "Attributes"
        ]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )

    def backoff_elapses(self) -> None:
        """Time passes: every hidden message is visible again (as after its backoff)."""
        hidden = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, VisibilityTimeout=0
        )
        assert "Messages" not in hidden  # they really were hidden
        for receipt in self.received:
            self.sqs.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=receipt, VisibilityTimeout=0
            )


@pytest.fixture
def retry_queue(world: NotifierWorld) -> RetryQueue:
    return RetryQueue()


def accepted(world: NotifierWorld) -> list[dict[str, Any]]:
    """Messages Slack answered 200 to (the stub records every attempt)."""
    return [r.json for r in world.slack.requests if r.status == 200]


def test_slack_down_then_back_posts_the_alert_once_marked_late(
    world: NotifierWorld, retry_queue: RetryQueue
) -> None:
    world.slack.default_reply = SlackReply(status=503, body="unavailable")
    event, moment = eventbridge_event(world, "alice", seconds_ago=63 * 60)
    for _ in range(3):  # the first invoke and Lambda's two retries
        with pytest.raises(SlackDeliveryError) as failure:
            handler.lambda_handler(event, None)
    retry_queue.lambda_gives_up(event, failure.value)

    # The mapping's first try: Slack is still down; the record is hidden for its backoff.
    answer = retry_queue.poll()
    assert len(answer["batchItemFailures"]) == 1
    assert retry_queue.counts() == (0, 1)
    assert accepted(world) == []

    world.slack.default_reply = SlackReply()  # Slack is back
    retry_queue.backoff_elapses()
    assert retry_queue.poll() == {"batchItemFailures": []}
    assert retry_queue.counts() == (0, 0)  # delivered: the mapping deleted it

    (payload,) = accepted(world)
    assert payload["text"].startswith("[delayed 6")  # 63 min (and the seconds of the test)
    assert "Slack was unavailable" in payload["text"]
    assert any("delayed 6" in t and ":hourglass:" in t for t in iter_texts(payload))
    assert any(moment.strftime("%H:%M") in t for t in iter_texts(payload))  # when it happened

    # The alarm path (its notification retried too) finds it reported: still one message.
    world.trail.put((moment, event["detail"]))
    notification = alarm_event(state_change_time=moment + timedelta(minutes=1))
    assert handler.lambda_handler(notification, None)["outcome"] == "already-reported"
    assert len(accepted(world)) == 1


def test_a_bad_record_does_not_hold_back_the_rest_of_its_batch(
    world: NotifierWorld, retry_queue: RetryQueue
) -> None:
    event, _ = eventbridge_event(world, "root", seconds_ago=600)
    retry_queue.sqs.send_message(QueueUrl=retry_queue.url, MessageBody="{not json")
    retry_queue.lambda_gives_up(
        event, SlackDeliveryError("Slack answered 503", status=503, attempts=3)
    )
    answer = retry_queue.poll()
    (failed,) = answer["batchItemFailures"]
    assert retry_queue.counts() == (0, 1)  # the bad one, hidden for its backoff
    (payload,) = accepted(world)
    assert "ROOT" in payload["text"] and "delayed 10 min" in payload["text"]
    bad = retry_queue.sqs.receive_message(QueueUrl=retry_queue.url, VisibilityTimeout=0)
    assert "Messages" not in bad  # the failure is the unreadable message, still queued
    assert failed["itemIdentifier"] != ""


def test_while_slack_fails_the_rest_of_the_batch_waits_untried(
    world: NotifierWorld, retry_queue: RetryQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    world.slack.default_reply = SlackReply(status=503, body="unavailable")
    for kind in ("alice", "root", "sso"):
        event, _ = eventbridge_event(world, kind, seconds_ago=120)
        retry_queue.lambda_gives_up(
            event, SlackDeliveryError("Slack answered 503", status=503, attempts=3)
        )
    capsys.readouterr()
    answer = retry_queue.poll()
    assert len(answer["batchItemFailures"]) == 3 and retry_queue.counts() == (0, 3)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "outcome" in line]
    assert [line["outcome"] for line in lines] == ["failed", "deferred", "deferred"]
    assert len(world.slack.requests) == 3  # one alert's three attempts; nothing for the others
    assert lines[0]["late_cause"] == "Slack was unavailable"


def test_an_alarm_notification_that_failed_is_reported_from_its_window_later(
    world: NotifierWorld, retry_queue: RetryQueue
) -> None:
    moment = world.at(minutes_before=2)
    world.trail.put((moment, cloudtrail_record("alice", eventTime=moment.strftime("%FT%TZ"))))
    notification = alarm_event(state_change_time=world.at(minutes_before=30))
    world.trail.put(
        (world.at(30.5), cloudtrail_record("root", eventTime=world.at(30.5).strftime("%FT%TZ")))
    )
    retry_queue.lambda_gives_up(
        notification, SlackDeliveryError("Slack answered 500", status=500, attempts=3)
    )
    assert retry_queue.poll() == {"batchItemFailures": []}
    (payload,) = accepted(world)
    assert "delayed 30 min: Slack was unavailable" in payload["text"]
    assert "ROOT" in payload["text"]  # the sign-in of the alarm's own window, 30 min ago


def test_a_retried_sign_in_counts_once_in_its_burst_window(world: NotifierWorld) -> None:
    claims = Claims(boto3.client("dynamodb", region_name=REGION), CLAIMS_TABLE)
    counts = [claims.place_in_window("burst#w", 300, "same-event").count for _ in range(5)]
    assert counts == [1, 1, 1, 1, 1]
    assert claims.place_in_window("burst#w", 300, "another").count == 2
