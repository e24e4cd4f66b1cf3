"""The SNS → Lambda subscription: exactly one, on our topic, to our function."""

from __future__ import annotations

from typing import Any

from .. import operator_policy as perms
from .base import Check, Observed, Resource, absent_on

PENDING = "PendingConfirmation"


class Subscription(Resource):
    kind = "subscription"
    label = "SNS subscription"
    service = "sns"
    owner_kind = "topic"
    sid = "Topic"  # IAM authorises subscription calls on the topic

    def calls(self) -> list[perms.Grant | None]:
        return [
            # test-alert reads it too, to say whether the topic reaches the function.
            self.grant("Read", perms.READ_AND_TEST, "ListSubscriptionsByTopic"),
            # Unsubscribe on setup only when duplicate subscriptions exist.
            self.grant("Setup", perms.ON_SETUP, "Subscribe", "Unsubscribe"),
            self.grant("Teardown", perms.ON_TEARDOWN, "Unsubscribe"),
        ]

    def policy_arns(self) -> tuple[str, ...]:
        return (self.names.topics_arn,)

    @property
    def name(self) -> str:
        return f"{self.names.topic} → {self.names.function}"

    @property
    def arn(self) -> str:
        return getattr(self, "_arn", "")

    @absent_on("NotFound", "NotFoundException")
    def read(self) -> Observed | None:
        paginator = self.client.get_paginator("list_subscriptions_by_topic")
        mine = [
            s["SubscriptionArn"]
            for page in paginator.paginate(TopicArn=self.names.topic_arn)
            for s in page.get("Subscriptions", [])
            if s.get("Protocol") == "lambda" and s.get("Endpoint") == self.names.function_arn
        ]
        if not mine:
            return None
        self._arn = mine[0]
        return {"arns": mine}

    def owned(self, observed: Observed) -> bool:
        return True  # lives on our own (tagged) topic and points at our function

    def diff(self, observed: Observed) -> list[str]:
        count = len(observed["arns"])
        return [f"subscriptions: {count} → 1 (duplicates removed)"] if count > 1 else []

    def create(self) -> None:
        with self.aws_call():
            # Subscribe is idempotent for the same topic, protocol and endpoint.
            self._arn = self.client.subscribe(
                TopicArn=self.names.topic_arn,
                Protocol="lambda",
                Endpoint=self.names.function_arn,
                ReturnSubscriptionArn=True,
            )["SubscriptionArn"]

    def update(self, observed: Observed, changes: list[str]) -> None:
        with self.aws_call():
            for arn in observed["arns"][1:]:
                if arn != PENDING:
                    self.client.unsubscribe(SubscriptionArn=arn)

    def delete(self, observed: Observed) -> str:
        with self.aws_call():
            for arn in observed["arns"]:
                if arn != PENDING:
                    self.client.unsubscribe(SubscriptionArn=arn)
        return ""

    def watched(self) -> list[dict[str, Any]]:
        # Confirmed, to the function (a filter policy or a new endpoint would silence it).
        return [self.watch("subscription", self.names.topic_arn, endpoint=self.names.function_arn)]

    def checks(self, observed: Observed) -> list[Check]:
        confirmed = PENDING not in observed["arns"]
        detail = "confirmed" if confirmed else "the subscription is pending confirmation"
        return [Check("subscription confirmed", confirmed, detail)]
