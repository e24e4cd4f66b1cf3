"""The SNS topic the alarm notifies; only our alarm may publish to it."""

from __future__ import annotations

import json

from .. import attached_policies as policies
from .. import operator_policy as perms
from .base import Check, Observed, Resource, absent_on, changed, tags_from_list


class Topic(Resource):
    kind = "topic"
    label = "SNS topic"
    service = "sns"
    sid = "Topic"

    def calls(self) -> list[perms.Grant | None]:
        return [
            self.grant("Read", perms.READ, "GetTopicAttributes", "ListTagsForResource"),
            self.grant("Setup", perms.ON_SETUP, "CreateTopic", "SetTopicAttributes"),
            self.grant("Teardown", perms.ON_TEARDOWN, "DeleteTopic"),
        ]

    @property
    def name(self) -> str:
        return self.names.topic

    @property
    def arn(self) -> str:
        return self.names.topic_arn

    def policy_arns(self) -> tuple[str, ...]:
        return (self.names.topics_arn,)  # both topics: one ARN (names.topics_arn)

    @absent_on("NotFound", "NotFoundException")
    def read(self) -> Observed | None:
        attrs = self.client.get_topic_attributes(TopicArn=self.arn)["Attributes"]
        tags = self.client.list_tags_for_resource(ResourceArn=self.arn)["Tags"]
        return {
            "policy": attrs.get("Policy"),
            "kms": attrs.get("KmsMasterKeyId") or None,
            "tags": tags_from_list(tags),
        }

    def policy(self) -> policies.Policy:
        return policies.topic_policy(self.names)

    def diff(self, observed: Observed) -> list[str]:
        changes = []
        if policies.normalize(observed["policy"]) != policies.normalize(self.policy()):
            changes.append("topic policy: only loginwatch's alarms may publish")
        if observed["kms"] != self.d.config.kms.topic:
            changes.append(
                changed("KMS key", observed["kms"] or "none", self.d.config.kms.topic or "none")
            )
        return changes

    def create(self) -> None:
        attributes = {"Policy": json.dumps(self.policy())}
        if self.d.config.kms.topic:
            attributes["KmsMasterKeyId"] = self.d.config.kms.topic
        with self.aws_call():
            # CreateTopic is idempotent for the same name and attributes.
            self.client.create_topic(Name=self.name, Attributes=attributes, Tags=self.d.tag_list())

    def update(self, observed: Observed, changes: list[str]) -> None:
        c = self.client
        wanted = self.policy()
        if policies.normalize(observed["policy"]) != policies.normalize(wanted):
            with self.aws_call():
                c.set_topic_attributes(
                    TopicArn=self.arn, AttributeName="Policy", AttributeValue=json.dumps(wanted)
                )
        if observed["kms"] != self.d.config.kms.topic:
            with self.aws_call():
                c.set_topic_attributes(
                    TopicArn=self.arn,
                    AttributeName="KmsMasterKeyId",
                    AttributeValue=self.d.config.kms.topic or "",
                )

    def delete(self, observed: Observed) -> str:
        with self.aws_call():
            self.client.delete_topic(TopicArn=self.arn)  # idempotent in SNS
        return ""

    def checks(self, observed: Observed) -> list[Check]:
        kms = observed.get("kms") or ""
        broken = "alias/aws/sns" in kms
        detail = "AWS-managed key alias/aws/sns drops alarm notifications" if broken else "ok"
        return [Check("topic accepts alarm notifications", not broken, detail)]
