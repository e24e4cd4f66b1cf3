"""CloudWatch Logs groups: the trail's copy of events, and the notifier's own logs."""

from __future__ import annotations

import contextlib
from typing import ClassVar

from .. import operator_policy as perms
from ..names import Names
from .base import Observed, Resource, changed


class LogGroup(Resource):
    service = "logs"
    sid = "LogGroups"
    retention_attr: ClassVar[str]
    kms_attr: ClassVar[str | None] = None

    def calls(self) -> list[perms.Grant | None]:
        return [
            perms.no_resource_level(perms.READ, "logs", "DescribeLogGroups"),
            self.grant("Read", perms.READ, "ListTagsForResource"),
            self.grant("Setup", perms.ON_SETUP, "CreateLogGroup", "PutRetentionPolicy"),
            self.grant("Setup", perms.ON_SETUP, "AssociateKmsKey", sid=f"{self.sid_stem}Key")
            if self.kms_key
            else None,
            self.grant("Teardown", perms.ON_TEARDOWN, "DeleteLogGroup"),
        ]

    @property
    def sid_stem(self) -> str:
        return "".join(part.capitalize() for part in self.kind.split("-"))

    def policy_arns(self) -> tuple[str, ...]:
        return log_group_arns(self.names, self.name, self.region)

    @property
    def retention(self) -> int:
        return int(getattr(self.d.config, self.retention_attr))

    @property
    def kms_key(self) -> str | None:
        return getattr(self.d.config.kms, self.kms_attr) if self.kms_attr else None

    @property
    def arn(self) -> str:
        return self.names.log_group_arn(self.name)

    def read(self) -> Observed | None:
        with self.aws_call():
            groups = self.client.describe_log_groups(logGroupNamePrefix=self.name, limit=50)
        group = next(
            (g for g in groups.get("logGroups", []) if g["logGroupName"] == self.name), None
        )
        if group is None:
            return None
        with self.aws_call():
            tags = self.client.list_tags_for_resource(resourceArn=self.arn)["tags"]
        return {
            "retention": group.get("retentionInDays"),
            "kms": group.get("kmsKeyId"),
            "stored_bytes": group.get("storedBytes"),
            "tags": tags,
        }

    def diff(self, observed: Observed) -> list[str]:
        changes = []
        if observed["retention"] != self.retention:
            old = observed["retention"] or "never expire"
            changes.append(changed("retention days", old, self.retention))
        if self.kms_key and not _same_key(observed.get("kms"), self.kms_key):
            changes.append(changed("KMS key", observed.get("kms") or "none", self.kms_key))
        return changes

    def create(self) -> None:
        params: dict = {"logGroupName": self.name, "tags": self.d.tags}
        if self.kms_key:
            params["kmsKeyId"] = self.kms_key
        with self.aws_call():
            try:
                self.client.create_log_group(**params)
            except self.client.exceptions.ResourceAlreadyExistsException:
                pass  # made by an interrupted earlier run; settle its properties below
        self._put_retention()

    def update(self, observed: Observed, changes: list[str]) -> None:
        if observed["retention"] != self.retention:
            self._put_retention()
        if self.kms_key and not _same_key(observed.get("kms"), self.kms_key):
            with self.aws_call():
                self.client.associate_kms_key(logGroupName=self.name, kmsKeyId=self.kms_key)

    def _put_retention(self) -> None:
        with self.aws_call():
            self.client.put_retention_policy(logGroupName=self.name, retentionInDays=self.retention)

    def delete(self, observed: Observed) -> str:
        with self.aws_call():
            with contextlib.suppress(self.client.exceptions.ResourceNotFoundException):
                self.client.delete_log_group(logGroupName=self.name)
        return ""


def log_group_arns(names: Names, log_group: str, region: str | None = None) -> tuple[str, ...]:
    """Both forms IAM checks: the bare ARN (tagging APIs) and ARN:* (every other action)."""
    arn = names.log_group_arn(log_group, region)
    return (arn, f"{arn}:*")


def review_grants(names: Names, log_group: str) -> list[perms.Grant | None]:
    """`review`'s reads of the trail's log group: does it hold the window (its streams'
    first events), and the Logs Insights queries (GetQueryResults is authorised on the
    queried log group too, AWS's catalogue says)."""
    return [
        perms.no_resource_level(perms.ON_REVIEW, "logs", "DescribeLogGroups"),
        perms.Grant(
            "ReviewTrailLogs",
            log_group_arns(names, log_group),
            perms.ops(
                perms.ON_REVIEW, "logs", "DescribeLogStreams", "StartQuery", "GetQueryResults"
            ),
        )
        if log_group
        else None,
    ]


def _same_key(observed: str | None, wanted: str) -> bool:
    # CloudWatch reports the key ARN; the config may hold an id, ARN or alias.
    if not observed:
        return False
    return observed == wanted or observed.endswith(wanted.split("/")[-1])


class TrailLogGroup(LogGroup):
    kind = "trail-log-group"
    label = "trail log group"
    retention_attr = "retention_days"
    kms_attr = "log_group"
    keeps_data = "holds a copy of CloudTrail events (--delete-trail-logs removes it)"

    def calls(self) -> list[perms.Grant | None]:
        return [*super().calls(), *review_grants(self.names, self.name)]

    @property
    def name(self) -> str:
        return self.names.trail_log_group


class NotifierLogGroup(LogGroup):
    kind = "notifier-log-group"
    label = "notifier log group"
    retention_attr = "notifier_retention_days"

    def calls(self) -> list[perms.Grant | None]:
        # test-alert reads the notifier's log lines to see the delivery; FilterLogEvents
        # is authorised on ARN:* only (no tagging API needs the bare ARN here).
        test = self.grant(
            "TestAlert",
            perms.ON_TEST,
            "FilterLogEvents",
            sid="ReadNotifierLogs",
            resources=self.policy_arns()[1:],
        )
        return [*super().calls(), test]

    @property
    def name(self) -> str:
        return self.names.notifier_log_group
