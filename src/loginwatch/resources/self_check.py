"""The self-check and the second voice (config ``self_check``).

EventBridge Scheduler invokes the notifier on ``self_check.schedule`` (through a role
of its own); the notifier checks the chain from inside and posts when its state
changes (notifier/paths/self_check.py). Each run publishes a heartbeat metric.

The second voice, when ``self_check.email`` is set: two alarms that notify a topic
whose only subscriber is that address, so AWS itself sends the mail when the notifier
cannot speak: the heartbeat alarm (no healthy check for two intervals; missing data is
breaching, so checks that stop running page too) and one on the notifier's Errors.
A fresh install stays quiet: the heartbeat alarm is made last, after setup has run a
first check (``HeartbeatAlarm.create``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import botocore.exceptions

from .. import attached_policies as policies
from .. import operator_policy as perms
from ..aws import error_code
from ..notifier.protocol import (
    HEARTBEAT_DIMENSION,
    HEARTBEAT_METRIC,
    HEARTBEAT_NAMESPACE,
    SELF_CHECK_EVENT,
    SELF_CHECK_STATE_KEY,
)
from .alarm import Alarm
from .base import Check, Deployment, Observed, Resource, absent_on, changed
from .parameter import WebhookParameter
from .role import Role
from .subscription import PENDING
from .topic import Topic

# Scheduler retries a failed invoke; an hour-old check is stale (the next one is due).
SCHEDULE_RETRY = {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}
# Errors in two of the last three 5-minute periods: a notifier that keeps failing, not
# one retried Slack hiccup (a failed post raises, for Lambda's retry, and counts).
ERRORS_PERIOD, ERRORS_EVALUATIONS, ERRORS_TO_ALARM = 300, 3, 2
# No healthy check in two intervals: one late run (a cold start across an hour's edge)
# leaves one period empty, not two.
HEARTBEAT_EVALUATIONS = 2


def self_check_on(deployment: Deployment) -> bool:
    return deployment.config.self_check.enabled


def second_voice_on(deployment: Deployment) -> bool:
    check = deployment.config.self_check
    return check.enabled and check.email is not None


class SchedulerRole(Role):
    """Assumed by EventBridge Scheduler to invoke the notifier, and nothing else."""

    kind = "scheduler-role"
    label = "scheduler role"
    removable_by_setup = True
    trusted_service = "scheduler.amazonaws.com"
    scope_to_account = True

    @property
    def name(self) -> str:
        return self.names.scheduler_role

    def inline(self) -> policies.Policy:
        return policies.scheduler_role_policy(self.names)


class HeartbeatParameter(WebhookParameter):
    """self_check.heartbeat_url: a dead-man's-switch URL is a secret like a webhook (who
    has it can fake the pings), so it lives in a SecureString, never in settings."""

    kind = "heartbeat-parameter"
    label = "heartbeat URL parameter"
    sid = "HeartbeatParameter"
    removable_by_setup = True

    @property
    def name(self) -> str:
        return self.names.heartbeat_parameter

    @property
    def arn(self) -> str:
        return self.names.heartbeat_parameter_arn

    @property
    def webhook_url(self) -> str | None:
        return self.d.config.self_check.heartbeat_url

    @property
    def description(self) -> str:
        return f"Heartbeat URL of loginwatch '{self.names.name}' (pinged after each healthy check)"

    def watched(self) -> list[dict[str, Any]]:
        return []  # a URL to ping, not a webhook to probe


class SelfCheckSchedule(Resource):
    """The schedule that invokes the notifier's self-check. Schedules take no tags: one
    is loginwatch's when it invokes loginwatch's function."""

    kind = "schedule"
    label = "self-check schedule"
    service = "scheduler"
    sid = "Schedule"
    removable_by_setup = True

    @property
    def name(self) -> str:
        return self.names.schedule

    @property
    def arn(self) -> str:
        return self.names.schedule_arn

    def calls(self) -> list[perms.Grant | None]:
        to_scheduler = perms.pass_role(
            "SetupPassSchedulerRole",
            self.names.role_arn(self.names.scheduler_role),
            "scheduler.amazonaws.com",
        )
        return [
            self.grant("Read", perms.READ, "GetSchedule"),
            self.grant(
                "Setup",
                perms.ON_SETUP,
                "CreateSchedule",
                "UpdateSchedule",
                routes={"iam:PassRole": to_scheduler},
            ),
            self.grant("Teardown", perms.ON_TEARDOWN, "DeleteSchedule"),
            # status shows the last check's time and verdict (the notifier's state item).
            self.grant(
                "Read",
                frozenset({perms.STATUS}),
                "GetItem",
                service="dynamodb",
                sid="SelfCheckState",
                resources=(self.names.claims_table_arn,),
            ),
        ]

    def desired(self) -> dict[str, Any]:
        return {
            "ScheduleExpression": self.d.config.self_check.schedule,
            "State": "ENABLED",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": {
                "Arn": self.names.function_arn,
                "RoleArn": self.names.role_arn(self.names.scheduler_role),
                "Input": json.dumps(SELF_CHECK_EVENT, sort_keys=True),
                "RetryPolicy": SCHEDULE_RETRY,
            },
            "Description": f"loginwatch '{self.names.name}': the notifier's self-check",
        }

    @absent_on("ResourceNotFoundException")
    def read(self) -> Observed | None:
        found = self.client.get_schedule(Name=self.name)
        target = found.get("Target") or {}
        observed: Observed = {
            "ScheduleExpression": found.get("ScheduleExpression"),
            "State": found.get("State"),
            "FlexibleTimeWindow": {"Mode": (found.get("FlexibleTimeWindow") or {}).get("Mode")},
            "Target": {
                "Arn": target.get("Arn"),
                "RoleArn": target.get("RoleArn"),
                "Input": target.get("Input"),
                "RetryPolicy": target.get("RetryPolicy"),
            },
            "Description": found.get("Description"),
        }
        return observed

    def _last_check(self) -> dict[str, Any] | None:
        """The notifier's record of its last self-check (None: none yet). Read by status
        only (from checks()), not by every plan."""
        table = self.aws.client("dynamodb", self.names.region)
        try:
            item = table.get_item(
                TableName=self.names.claims_table,
                Key={"eventId": {"S": SELF_CHECK_STATE_KEY}},
                ConsistentRead=True,
            ).get("Item")
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            # The table gone or unreadable: its own row says so; this one names the cause.
            return {"unreadable": error_code(exc) or type(exc).__name__}
        if not item:
            return None
        return {
            "checked_at": item.get("checked_at", {}).get("S", ""),
            "verdict": item.get("verdict", {}).get("S", ""),
            "problems": len(item.get("problems", {}).get("L", [])),
        }

    def owned(self, observed: Observed) -> bool:
        return bool(observed["Target"].get("Arn") == self.names.function_arn)

    def diff(self, observed: Observed) -> list[str]:
        want = self.desired()
        have = {k: observed.get(k) for k in want}
        target: dict[str, Any] = have["Target"] or {}
        if _input(target) == _input(want["Target"]):  # the same JSON, spaced otherwise
            have["Target"] = {**target, "Input": want["Target"]["Input"]}
        return [changed(k, have.get(k), v) for k, v in want.items() if have.get(k) != v]

    def create(self) -> None:
        with self.aws_call():
            try:
                self.client.create_schedule(Name=self.name, **self.desired())
            except self.client.exceptions.ConflictException:
                # Made by an interrupted earlier run (it invokes our function: ours).
                self.client.update_schedule(Name=self.name, **self.desired())

    def update(self, observed: Observed, changes: list[str]) -> None:
        with self.aws_call():
            # UpdateSchedule replaces the whole definition.
            self.client.update_schedule(Name=self.name, **self.desired())

    def delete(self, observed: Observed) -> str:
        with self.aws_call():
            try:
                self.client.delete_schedule(Name=self.name)
            except self.client.exceptions.ResourceNotFoundException:
                pass
        return ""

    def checks(self, observed: Observed) -> list[Check]:
        on = observed.get("State") == "ENABLED"
        self._state_item = self._last_check()
        found = [
            Check("self-check schedule enabled", on, "enabled" if on else "disabled"),
            self._last_check_check(self._state_item),
        ]
        if self.d.config.self_check.email is None:
            found.append(
                Check(
                    "second voice",
                    False,
                    "none: set self_check.email, so AWS can mail you when the notifier "
                    "itself is what broke",
                    warning_only=True,
                )
            )
        return found

    def _last_check_check(self, item: dict[str, Any] | None) -> Check:
        name = "last self-check"
        if item is None:
            return Check(name, True, "none yet", warning_only=True)
        if "unreadable" in item:
            detail = f"could not read it from the claims table ({item['unreadable']})"
            return Check(name, False, detail, warning_only=True)
        checked = _parse_time(item["checked_at"])
        when = f"{checked:%Y-%m-%d %H:%M} UTC" if checked else item["checked_at"] or "unknown"
        if item["verdict"] != "healthy":
            detail = f"{item['verdict']} at {when}: {item['problems']} problem(s)"
            return Check(name, False, detail)
        interval = self.d.config.self_check.interval_seconds
        if checked and (datetime.now(UTC) - checked).total_seconds() > HEARTBEAT_EVALUATIONS * (
            interval
        ):
            return Check(name, False, f"healthy at {when}, and none since: is it running?")
        return Check(name, True, f"healthy at {when}")

    def facts(self, observed: Observed) -> dict[str, Any]:
        # Read after checks(), which read the notifier's record.
        return {"last_self_check": getattr(self, "_state_item", None)}


def _input(target: dict[str, Any]) -> Any:
    try:
        return json.loads(target.get("Input") or "null")
    except ValueError:
        return target.get("Input")


def _parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class SecondVoiceTopic(Topic):
    """The second voice's topic: only the heartbeat and Errors alarms may publish."""

    kind = "second-voice-topic"
    label = "second-voice topic"
    sid = "SecondVoiceTopic"
    removable_by_setup = True

    @property
    def name(self) -> str:
        return self.names.second_voice_topic

    @property
    def arn(self) -> str:
        return self.names.second_voice_topic_arn

    def policy(self) -> policies.Policy:
        return policies.second_voice_topic_policy(self.names)

    def checks(self, observed: Observed) -> list[Check]:
        return []  # the email subscription's check says whether the voice is heard


class EmailSubscription(Resource):
    """self_check.email on the second voice's topic. AWS mails the address a link to
    confirm, once; until then the subscription is pending and nothing is delivered."""

    kind = "email-subscription"
    label = "email subscription"
    service = "sns"
    owner_kind = "second-voice-topic"
    sid = "SecondVoiceTopic"
    removable_by_setup = True

    def calls(self) -> list[perms.Grant | None]:
        return [
            self.grant("Read", perms.READ, "ListSubscriptionsByTopic"),
            self.grant("Setup", perms.ON_SETUP, "Subscribe", "Unsubscribe"),
            self.grant("Teardown", perms.ON_TEARDOWN, "Unsubscribe"),
        ]

    def policy_arns(self) -> tuple[str, ...]:
        return (self.names.topics_arn,)

    @property
    def email(self) -> str:
        return self.d.config.self_check.email or ""

    @property
    def name(self) -> str:
        return f"{self.names.second_voice_topic} → {self.email or 'email'}"

    @absent_on("NotFound", "NotFoundException")
    def read(self) -> Observed | None:
        paginator = self.client.get_paginator("list_subscriptions_by_topic")
        found = [
            (s["SubscriptionArn"], s.get("Endpoint", ""))
            for page in paginator.paginate(TopicArn=self.names.second_voice_topic_arn)
            for s in page.get("Subscriptions", [])
            if s.get("Protocol") == "email"
        ]
        if not found:
            return None
        return {
            "mine": [arn for arn, endpoint in found if endpoint.lower() == self.email.lower()],
            "others": [arn for arn, endpoint in found if endpoint.lower() != self.email.lower()],
        }

    def owned(self, observed: Observed) -> bool:
        return True  # lives on our own (tagged) topic

    def diff(self, observed: Observed) -> list[str]:
        changes = []
        if not observed["mine"] and self.email:
            changes.append(f"email: → {self.email}")
        if observed["others"]:
            changes.append(f"other addresses removed: {len(observed['others'])}")
        return changes

    def create(self) -> None:
        with self.aws_call():
            # Subscribe is idempotent for the same topic, protocol and endpoint.
            self.client.subscribe(
                TopicArn=self.names.second_voice_topic_arn, Protocol="email", Endpoint=self.email
            )
        self.d.notices.append(
            f"AWS has mailed {self.email} a link to confirm the second voice's subscription: "
            "until it is opened, no mail is sent (`loginwatch status` shows whether it is)."
        )

    def update(self, observed: Observed, changes: list[str]) -> None:
        self._unsubscribe(observed["others"])
        if not observed["mine"]:
            self.create()

    def delete(self, observed: Observed) -> str:
        self._unsubscribe([*observed["mine"], *observed["others"]])
        return ""

    def _unsubscribe(self, arns: list[str]) -> None:
        # A pending subscription has no ARN to unsubscribe: AWS drops it after 3 days.
        with self.aws_call():
            for arn in arns:
                if arn != PENDING:
                    self.client.unsubscribe(SubscriptionArn=arn)

    def checks(self, observed: Observed) -> list[Check]:
        mine = observed["mine"]
        confirmed = bool(mine) and PENDING not in mine
        detail = (
            f"{self.email}: confirmed"
            if confirmed
            else f"{self.email}: pending — open the link AWS mailed to confirm it"
        )
        return [Check("second voice confirmed", confirmed, detail, warning_only=True)]


class SecondVoiceAlarm(Alarm):
    """An alarm of the second voice: it notifies only the email topic."""

    removable_by_setup = True
    what = ""

    def __init__(self, deployment: Deployment, *, wanted: bool = True) -> None:
        super().__init__(deployment, self.kind, wanted=wanted)

    @property
    def key(self) -> str:
        return f"{self.kind}@{self.region}"

    @property
    def arn(self) -> str:
        return self.names.alarm_arn_of(self.name)

    def policy_arns(self) -> tuple[str, ...]:
        return (self.names.rule_alarms_arn,)  # one ARN for every alarm, as the rules'

    def calls(self) -> list[perms.Grant | None]:
        # test-alert sets no state on these: they are AWS's to raise.
        return [g for g in super().calls() if g is not None and "SetAlarmState" not in g.sid]

    def metric(self) -> dict[str, Any]:
        raise NotImplementedError

    def desired(self) -> dict[str, Any]:
        topic = [self.names.second_voice_topic_arn]
        return {
            "AlarmDescription": f"{self.what} (loginwatch '{self.names.name}', the second "
            "voice). Managed by loginwatch: change it with `loginwatch setup`, not by hand.",
            "ActionsEnabled": True,
            "AlarmActions": topic,
            "OKActions": topic,
            "InsufficientDataActions": [],
            **self.metric(),
        }

    def checks(self, observed: Observed) -> list[Check]:
        actions = observed["settings"].get("ActionsEnabled")
        state = observed.get("state") or "INSUFFICIENT_DATA"
        return [
            Check(f"{self.label} actions enabled", bool(actions), "enabled" if actions else "off"),
            Check(
                f"{self.label} state",
                state != "ALARM",
                state if state != "ALARM" else f"ALARM: {observed.get('state_reason') or ''}",
                warning_only=True,
            ),
        ]


class NotifierErrorsAlarm(SecondVoiceAlarm):
    kind = "errors-alarm"
    label = "notifier errors alarm"
    what = "The notifier keeps failing"

    @property
    def name(self) -> str:
        return self.names.errors_alarm

    def metric(self) -> dict[str, Any]:
        return {
            "MetricName": "Errors",
            "Namespace": "AWS/Lambda",
            "Dimensions": [{"Name": "FunctionName", "Value": self.names.function}],
            "Statistic": "Sum",
            "Period": ERRORS_PERIOD,
            "EvaluationPeriods": ERRORS_EVALUATIONS,
            "DatapointsToAlarm": ERRORS_TO_ALARM,
            "Threshold": 1.0,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
        }


class HeartbeatAlarm(SecondVoiceAlarm):
    """No healthy self-check for two intervals: missing data is breaching, so a schedule
    deleted, a role broken or a function gone pages as surely as a failed check."""

    kind = "heartbeat-alarm"
    label = "heartbeat alarm"
    what = "No healthy self-check"

    def calls(self) -> list[perms.Grant | None]:
        # A fresh alarm waits for setup's first check: setup invokes the notifier once.
        first_check = self.grant(
            "Setup",
            perms.ON_SETUP,
            "Invoke",
            service="lambda",
            sid="FirstSelfCheck",
            resources=(self.names.function_arn,),
        )
        return [*super().calls(), first_check]

    @property
    def name(self) -> str:
        return self.names.heartbeat_alarm

    def metric(self) -> dict[str, Any]:
        return {
            "MetricName": HEARTBEAT_METRIC,
            "Namespace": HEARTBEAT_NAMESPACE,
            "Dimensions": [{"Name": HEARTBEAT_DIMENSION, "Value": self.names.name}],
            "Statistic": "Maximum",
            "Period": self.d.config.self_check.interval_seconds,
            "EvaluationPeriods": HEARTBEAT_EVALUATIONS,
            "DatapointsToAlarm": HEARTBEAT_EVALUATIONS,
            "Threshold": 1.0,
            "ComparisonOperator": "LessThanThreshold",
            "TreatMissingData": "breaching",
        }

    def create(self) -> None:
        # Missing data counts as breaching: made before any check ran, the alarm would
        # mail at once. The first check runs now, so a fresh install is quiet.
        self.run_first_check()
        super().create()

    def run_first_check(self) -> None:
        from ..alert_drill import invoke_notifier

        event = {**SELF_CHECK_EVENT, "requested_by": "setup"}
        try:
            answer = invoke_notifier(self.aws, self.names, event)
        except Exception as exc:  # the alarm is made all the same: it is the second voice
            problem = str(exc).splitlines()[0]
        else:
            body = answer.body if isinstance(answer.body, dict) else {}
            if answer.error is None and body.get("verdict") == "healthy":
                return
            problem = answer.error or f"it found {body.get('verdict') or 'no verdict'}"
        self.d.notices.append(
            f"The first self-check did not pass ({problem}): until one does, the heartbeat "
            f"alarm will mail {self.d.config.self_check.email}."
        )
