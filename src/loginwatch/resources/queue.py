"""SQS queues that keep alerts nobody has heard of yet, until Slack takes them.

- The retry queue (home region): the notifier's OnFailure destination, and the
  source of its retry mapping. Its visibility timeout is the longest backoff;
  after ``MAX_RECEIVES`` tries (at least four days) SQS moves a record on to:
- the final queue (home region): nothing retries it; `status` turns unhealthy
  and `loginwatch redeliver` posts it once the cause is fixed.
- an events dead-letter queue in every region with a sign-in rule: EventBridge
  puts an event there after 24 hours of failing to hand it over (a target's
  dead-letter queue must be in its rule's region).

All are encrypted with SQS-managed keys (SSE-SQS: neither EventBridge nor Lambda
needs a key policy), tagged, keep messages 14 days (the most SQS allows), and
let only their producer write.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import attached_policies as policies
from .. import operator_policy as perms
from ..aws import error_code
from ..errors import AwsError
from ..notifier.redelivery import BACKOFF_MAX_SECONDS, MAX_RECEIVES
from .base import Check, Deployment, Observed, Resource, absent_on

RETENTION_SECONDS = 14 * 24 * 3600  # SQS's maximum
# While `loginwatch redeliver` posts a dead-letter message, nobody else sees it.
REDELIVER_VISIBILITY_SECONDS = 300
MISSING = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")
DELETED_RECENTLY = ("AWS.SimpleQueueService.QueueDeletedRecently", "QueueDeletedRecently")
_JSON_ATTRIBUTES = ("Policy", "RedrivePolicy", "RedriveAllowPolicy")
_COUNTS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


class Queue(Resource):
    service = "sqs"
    sid = "Queues"
    # A dead-letter queue: what it holds is an alert nothing will retry by itself.
    dead_letter = True

    @property
    def arn(self) -> str:
        return self.names.queue_arn(self.name, self.region)

    def policy_arns(self) -> tuple[str, ...]:
        # Every queue of ours in one ARN (names.queues_arn), as for the alarms and topics.
        return (self.names.queues_arn,)

    def attributes(self) -> dict[str, str]:
        """The attributes loginwatch sets, as SQS reports them (strings)."""
        return {
            "SqsManagedSseEnabled": "true",
            "MessageRetentionPeriod": str(RETENTION_SECONDS),
            "VisibilityTimeout": str(REDELIVER_VISIBILITY_SECONDS),
        }

    def watched(self) -> list[dict[str, Any]]:
        # A dead-letter queue holds alerts nobody received: none may wait there.
        return [self.watch("queue")] if self.dead_letter else []

    def calls(self) -> list[perms.Grant | None]:
        # redeliver reads the queues first, as every command reads its resources.
        reads = perms.READ | perms.ON_REDELIVER
        return [
            self.grant("Read", reads, "GetQueueUrl", "GetQueueAttributes", "ListQueueTags"),
            self.grant("Setup", perms.ON_SETUP, "CreateQueue", "SetQueueAttributes"),
            self.grant("Teardown", perms.ON_TEARDOWN, "DeleteQueue"),
            # status asks CloudWatch how old the oldest queued alert is.
            perms.no_resource_level(frozenset({perms.STATUS}), "cloudwatch", "GetMetricStatistics"),
            self.grant(
                "Redeliver",
                perms.ON_REDELIVER,
                "ReceiveMessage",
                "ChangeMessageVisibilityBatch",
                "DeleteMessage",
            ),
        ]

    @absent_on(*MISSING)
    def read(self) -> Observed | None:
        url = self.client.get_queue_url(QueueName=self.name)["QueueUrl"]
        found = self.client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
        attributes = found.get("Attributes", {})
        tags = self.client.list_queue_tags(QueueUrl=url).get("Tags", {})
        return {
            "url": url,
            "attributes": attributes,
            "tags": tags,
            "messages": sum(int(attributes.get(key, 0)) for key in _COUNTS),
        }

    def diff(self, observed: Observed) -> list[str]:
        return [_describe(key) for key in self._changed(observed)]

    def _changed(self, observed: Observed) -> dict[str, str]:
        current = observed["attributes"]
        return {
            key: value
            for key, value in self.attributes().items()
            if not _same(key, current.get(key), value)
        }

    def create(self) -> None:
        c = self.client
        with self.aws_call():
            try:
                c.create_queue(QueueName=self.name, Attributes=self.attributes(), tags=self.d.tags)
            except c.exceptions.ClientError as exc:
                code = error_code(exc)
                if code in DELETED_RECENTLY:
                    raise AwsError(
                        f"SQS will not re-create the queue {self.name} in {self.region} within "
                        "60 seconds of its deletion.",
                        "Wait a minute, then re-run `loginwatch setup`.",
                    ) from None
                if code != "QueueAlreadyExists":
                    raise
                # An interrupted run made it with other attributes: settle them.
                url = c.get_queue_url(QueueName=self.name)["QueueUrl"]
                c.set_queue_attributes(QueueUrl=url, Attributes=self.attributes())

    def update(self, observed: Observed, changes: list[str]) -> None:
        with self.aws_call():
            self.client.set_queue_attributes(
                QueueUrl=observed["url"], Attributes=self._changed(observed)
            )

    def delete(self, observed: Observed) -> str:
        with self.aws_call():
            with contextlib.suppress(self.client.exceptions.QueueDoesNotExist):
                self.client.delete_queue(QueueUrl=observed["url"])
        held = observed["messages"]
        return f"{held} undelivered alert(s) deleted with it" if held else ""

    def undelivered(self, observed: Observed) -> int:
        return int(observed["messages"])

    def facts(self, observed: Observed) -> dict[str, Any]:
        return {
            "messages": observed["messages"],
            "dead_letter": self.dead_letter,
            "oldest_age_seconds": observed.get("oldest_age_seconds"),
        }

    def checks(self, observed: Observed) -> list[Check]:
        held = observed["messages"]
        if not held:
            if not self.in_home_region:
                return []  # an empty queue in each of 17 regions would drown the table
            return [Check(f"undelivered alerts ({self.name})", True, "none")]
        age = self._oldest_age()
        observed["oldest_age_seconds"] = age
        oldest = f", the oldest {_age(age)} old" if age is not None else ""
        if not self.dead_letter:
            return [
                Check(
                    f"alerts waiting for a retry ({self.name})",
                    False,
                    f"{held} waiting{oldest}: Slack or the notifier is failing; "
                    "they are retried for 4 days (the notifier's log says why)",
                    warning_only=True,
                )
            ]
        return [
            Check(
                f"undelivered alerts ({self.name}, {self.region})",
                False,
                f"{held} not delivered{oldest}: fix the cause (the notifier's log says it), "
                "then run `loginwatch redeliver`; SQS deletes them 14 days after they "
                "first failed",
            )
        ]

    def _oldest_age(self) -> float | None:
        """ApproximateAgeOfOldestMessage, the most recent minute CloudWatch has."""
        now = datetime.now(UTC)
        with self.aws_call():
            stats = self.aws.client("cloudwatch", self.region).get_metric_statistics(
                Namespace="AWS/SQS",
                MetricName="ApproximateAgeOfOldestMessage",
                Dimensions=[{"Name": "QueueName", "Value": self.name}],
                StartTime=now - timedelta(minutes=15),
                EndTime=now,
                Period=60,
                Statistics=["Maximum"],
            )
        points = sorted(stats.get("Datapoints", []), key=lambda p: p["Timestamp"])
        return float(points[-1]["Maximum"]) if points else None


class FinalQueue(Queue):
    """The retry queue's dead-letter queue: alerts that failed for days."""

    kind = "final-queue"
    label = "undelivered queue"

    @property
    def name(self) -> str:
        return self.names.final_queue

    def attributes(self) -> dict[str, str]:
        # Only the retry queue may move messages here (SQS's own redrive, no SendMessage).
        retry = self.names.queue_arn(self.names.retry_queue)
        allow = {"redrivePermission": "byQueue", "sourceQueueArns": [retry]}
        return {**super().attributes(), "RedriveAllowPolicy": json.dumps(allow)}


class RetryQueue(Queue):
    """The notifier's OnFailure destination; its retry mapping hands records back."""

    kind = "retry-queue"
    label = "retry queue"
    dead_letter = False

    @property
    def name(self) -> str:
        return self.names.retry_queue

    def attributes(self) -> dict[str, str]:
        redrive = {
            "deadLetterTargetArn": self.names.queue_arn(self.names.final_queue),
            "maxReceiveCount": MAX_RECEIVES,
        }
        return {
            **super().attributes(),
            # A run that dies without setting a backoff waits the longest one.
            "VisibilityTimeout": str(BACKOFF_MAX_SECONDS),
            "RedrivePolicy": json.dumps(redrive),
            "Policy": json.dumps(policies.retry_queue_policy(self.names)),
        }


class EventsDeadLetterQueue(Queue):
    """Where a region's sign-in rule puts events it could not deliver for 24 hours."""

    kind = "events-dead-letter-queue"
    label = "events dead-letter queue"
    removable_by_setup = True

    @property
    def name(self) -> str:
        return self.names.events_dead_letter_queue

    def __init__(
        self,
        deployment: Deployment,
        region: str | None = None,
        *,
        wanted: bool = True,
        watch_rules: bool = False,
    ) -> None:
        super().__init__(deployment, region, wanted=wanted)
        self.watch_rules = watch_rules  # the region's watch rules use it too

    def attributes(self) -> dict[str, str]:
        policy = policies.events_dead_letter_policy(
            self.names, self.region, watch_rules=self.watch_rules
        )
        return {**super().attributes(), "Policy": json.dumps(policy)}


def _same(key: str, current: str | None, wanted: str) -> bool:
    if key not in _JSON_ATTRIBUTES:
        return current == wanted
    if not current:
        return False
    # SQS may write numbers as strings ("maxReceiveCount": "101") and reorder keys.
    return policies.normalize(_numbers(json.loads(current))) == policies.normalize(
        _numbers(json.loads(wanted))
    )


def _numbers(value: Any) -> Any:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


_LABELS = {
    "SqsManagedSseEnabled": "encryption: SSE-SQS",
    "MessageRetentionPeriod": "retention: 14 days",
    "VisibilityTimeout": "visibility timeout",
    "RedrivePolicy": f"redrive: to the undelivered queue after {MAX_RECEIVES} tries",
    "RedriveAllowPolicy": "redrive allowed: from the retry queue only",
    "Policy": "queue policy: its producer only",
}


def _describe(key: str) -> str:
    return _LABELS.get(key, key)


def _age(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.1f} days"
