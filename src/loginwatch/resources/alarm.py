"""A rule's CloudWatch alarm: Sum ≥ 1 of its metric → notify the topic (on entering
ALARM and on returning to OK). One per enabled rule, all on the same topic.

Threshold 1 for every rule, failed_sign_ins too: a burst is "threshold failures
within minutes" of sign-in time, which no fixed alarm period measures exactly
(a burst across two periods would be missed), so the notifier counts it from
the log events themselves.
"""

from __future__ import annotations

from typing import Any

from .. import operator_policy as perms
from .base import Check, Deployment, Observed, Resource, changed, tags_from_list

WHAT = {
    "outside_allowlist": "Console sign-in from outside the allowlist",
    "root_sign_in": "Root user activity (CIS CloudWatch.1)",
    "no_mfa": "Console sign-in without MFA (CIS CloudWatch.3)",
    "failed_sign_ins": "Console authentication failures (CIS CloudWatch.6)",
    "access_key_outside_allowlist": "API calls signed with an access key from outside the allowlist",
    "credentials_exposed": "AWS attached its quarantine policy to a user with an exposed key",
    "tamper": "CloudTrail configuration changes (CIS CloudWatch.5)",
    "tamper_own_resources": "Changes to loginwatch's own resources",
}
DESCRIPTION = (
    "{what} (loginwatch '{name}'). "
    "Managed by loginwatch: change it with `loginwatch setup`, not by hand."
)


class Alarm(Resource):
    kind = "alarm"
    label = "CloudWatch alarm"
    service = "cloudwatch"
    sid = "Alarm"
    # A rule turned off: setup removes its alarm (and filter), nothing else.
    removable_by_setup = True

    def __init__(
        self, deployment: Deployment, rule: str = "outside_allowlist", *, wanted: bool = True
    ) -> None:
        super().__init__(deployment, wanted=wanted)
        self.rule = rule

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.rule}@{self.region}"

    def calls(self) -> list[perms.Grant | None]:
        return [
            self.grant("Read", perms.READ, "DescribeAlarms", "ListTagsForResource"),
            self.grant("Setup", perms.ON_SETUP, "PutMetricAlarm"),
            self.grant("Teardown", perms.ON_TEARDOWN, "DeleteAlarms"),
            # test-alert fires the alarm with a marked reason, then sets it back to OK.
            self.grant("TestAlert", perms.ON_TEST, "SetAlarmState", sid="SetAlarmState"),
        ]

    @property
    def name(self) -> str:
        return self.names.rule_alarm(self.rule)

    @property
    def arn(self) -> str:
        return self.names.rule_alarm_arn(self.rule)

    def policy_arns(self) -> tuple[str, ...]:
        # The other rules' alarms in one ARN: the policy stays within IAM's size limit.
        if self.rule == "outside_allowlist":
            return (self.arn,)
        return (self.names.rule_alarms_arn,)

    def desired(self) -> dict[str, Any]:
        config = self.d.config
        return {
            "AlarmDescription": DESCRIPTION.format(what=WHAT[self.rule], name=self.names.name),
            "ActionsEnabled": True,
            "AlarmActions": [self.names.topic_arn],
            # ALARM → OK too: the notifier then reports sign-ins that arrived while the alarm
            # was already in ALARM (actions run only on transitions, so those caused none).
            "OKActions": [self.names.topic_arn],
            "InsufficientDataActions": [],
            "MetricName": self.names.rule_metric(self.rule),
            "Namespace": self.names.metric_namespace,
            "Statistic": "Sum",
            "Period": config.alarm_period_seconds,
            "EvaluationPeriods": config.alarm_evaluation_periods,
            "DatapointsToAlarm": 1,
            "Threshold": 1.0,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
        }

    def read(self) -> Observed | None:
        with self.aws_call():
            found = self.client.describe_alarms(AlarmNames=[self.name], AlarmTypes=["MetricAlarm"])
        alarms = found.get("MetricAlarms", [])
        if not alarms:
            return None
        alarm = alarms[0]
        with self.aws_call():
            tags = self.client.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]
        return {
            "settings": {k: alarm.get(k) for k in self.desired()},
            "state": alarm.get("StateValue"),
            "state_reason": alarm.get("StateReason"),
            "state_updated": alarm.get("StateUpdatedTimestamp"),
            "tags": tags_from_list(tags),
        }

    def diff(self, observed: Observed) -> list[str]:
        current = observed["settings"]
        want = self.desired()
        # DatapointsToAlarm is omitted by some endpoints when it equals EvaluationPeriods.
        if current.get("DatapointsToAlarm") is None:
            current = {**current, "DatapointsToAlarm": current.get("EvaluationPeriods")}
        return [changed(k, current.get(k), v) for k, v in want.items() if current.get(k) != v]

    def create(self) -> None:
        with self.aws_call():
            self.client.put_metric_alarm(
                AlarmName=self.name, Tags=self.d.tag_list(), **self.desired()
            )

    def update(self, observed: Observed, changes: list[str]) -> None:
        with self.aws_call():
            # PutMetricAlarm replaces the whole definition (tags are kept).
            self.client.put_metric_alarm(AlarmName=self.name, **self.desired())

    def delete(self, observed: Observed) -> str:
        with self.aws_call():
            self.client.delete_alarms(AlarmNames=[self.name])
        return ""

    def watched(self) -> list[dict[str, Any]]:
        return [self.watch("alarm")]  # its actions enabled

    def checks(self, observed: Observed) -> list[Check]:
        updated = observed.get("state_updated")
        when = f" since {updated:%Y-%m-%d %H:%M} UTC" if hasattr(updated, "strftime") else ""
        state = observed.get("state")
        # ALARM is a healthy state (it fired); only a disabled action breaks the chain.
        actions = observed["settings"].get("ActionsEnabled")
        rule = "" if self.rule == "outside_allowlist" else f" ({self.rule})"
        return [
            Check(f"alarm state{rule}", True, f"{state}{when}"),
            Check(
                f"alarm actions enabled{rule}",
                bool(actions),
                "enabled" if actions else "disabled",
            ),
        ]
