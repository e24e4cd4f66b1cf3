"""EventBridge rules for the fast path: console sign-ins reach the notifier in seconds.

CloudTrail puts each console sign-in on the default event bus of the region
where it was recorded (root: us-east-1; IAM users: several; regional sign-in
endpoints: any). A rule sees only its own region's bus, so there is a rule in
every region: the home one invokes the notifier, the others forward to the home
bus. The alarm chain stays the guaranteed backstop (EventBridge delivery of AWS
service events is best effort).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from .. import operator_policy as perms
from ..errors import AwsError
from ..notifier.protocol import TEST_EVENT_DETAIL_TYPE, TEST_EVENT_SOURCE
from .base import Check, Observed, Resource, absent_on, changed

# AWS writes the detail-type "Sign In" in practice and "Signin" in one guide: match both.
SIGN_IN_DETAIL_TYPES = ("AWS Console Sign In via CloudTrail", "AWS Console Signin via CloudTrail")
TARGET_ID = "loginwatch"
# EventBridge's longest: a day of retries, then the region's dead-letter queue.
RETRY_POLICY = {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}


def event_pattern() -> dict[str, Any]:
    """Every ConsoleLogin, plus loginwatch's own marked test event.

    "Outside the allowlist" cannot be a pattern (`anything-but` cannot wrap
    `cidr`), so the notifier's exact check decides. `aws.*` sources cannot be
    sent with PutEvents, hence a source of our own for `test-alert --via fast-path`.
    """
    return {
        "source": ["aws.signin", TEST_EVENT_SOURCE],
        "detail-type": [*SIGN_IN_DETAIL_TYPES, TEST_EVENT_DETAIL_TYPE],
        "detail": {"eventName": ["ConsoleLogin"]},
    }


class SignInRule(Resource):
    """The home region's rule: its target is the notifier function."""

    kind = "sign-in-rule"
    label = "sign-in rule"
    service = "events"
    sid = "SignInRules"
    removable_by_setup = True
    state = "ENABLED"
    # How a pattern that differs is described in the plan.
    pattern_change = "event pattern: console sign-ins (both detail-type spellings)"

    def pattern(self) -> dict[str, Any]:
        return event_pattern()

    @property
    def name(self) -> str:
        return self.names.sign_in_rule

    @property
    def arn(self) -> str:
        return self.names.rule_arn(self.region)

    def description(self) -> str:
        return f"loginwatch '{self.names.name}': console sign-ins → notifier (fast path)"

    def target(self) -> dict[str, Any]:
        return {"Id": TARGET_ID, "Arn": self.names.function_arn, **self.delivery()}

    def delivery(self) -> dict[str, Any]:
        """Retries, then this region's dead-letter queue: no event is dropped unseen."""
        queue = self.names.queue_arn(self.names.events_dead_letter_queue, self.region)
        return {"RetryPolicy": RETRY_POLICY, "DeadLetterConfig": {"Arn": queue}}

    def watched(self) -> list[dict[str, Any]]:
        return [self.watch("rule")]  # enabled, with its target

    def calls(self) -> list[perms.Grant | None]:
        return [
            # test-alert --via fast-path reads the rules too, to say which link is broken.
            self.grant(
                "Read",
                perms.READ_AND_TEST,
                "DescribeRule",
                "ListTargetsByRule",
                "ListTagsForResource",
            ),
            # ... and puts its marked test event on this region's default bus.
            self.grant(
                "TestAlert",
                perms.ON_TEST,
                "PutEvents",
                sid="PutTestEvent",
                resources=(self.names.event_bus_arn(self.region),),
            ),
            self.grant("Setup", perms.ON_SETUP, "PutRule", "PutTargets", "RemoveTargets"),
            self.grant("Teardown", perms.ON_TEARDOWN, "ListTargetsByRule", "RemoveTargets"),
            self.grant("Teardown", perms.ON_TEARDOWN, "DeleteRule"),
        ]

    @absent_on("ResourceNotFoundException")
    def read(self) -> Observed | None:
        rule = self.client.describe_rule(Name=self.name)
        targets = self.client.list_targets_by_rule(Rule=self.name).get("Targets", [])
        tags = self.client.list_tags_for_resource(ResourceARN=rule["Arn"]).get("Tags", [])
        return {
            "pattern": json.loads(rule.get("EventPattern") or "{}"),
            "state": rule.get("State"),
            "description": rule.get("Description"),
            "targets": [_comparable(t) for t in targets],
            "tags": {t["Key"]: t["Value"] for t in tags},
        }

    def _rule_changes(self, observed: Observed) -> list[str]:
        changes = []
        if observed["pattern"] != self.pattern():
            changes.append(self.pattern_change)
        if observed["state"] != self.state:
            changes.append(changed("state", observed["state"], self.state))
        if observed["description"] != self.description():
            changes.append("description")
        return changes

    def _target_changes(self, observed: Observed) -> list[str]:
        if observed["targets"] == [_comparable(self.target())]:
            return []
        return [f"target: only {self.target()['Arn']}, with retries and a dead-letter queue"]

    def diff(self, observed: Observed) -> list[str]:
        return self._rule_changes(observed) + self._target_changes(observed)

    def _put_rule(self, *, tags: bool) -> None:
        params: dict[str, Any] = {
            "Name": self.name,
            "EventPattern": json.dumps(self.pattern(), separators=(",", ":")),
            "State": self.state,
            "Description": self.description(),
        }
        if tags:  # PutRule on an existing rule leaves its tags as they are
            params["Tags"] = self.d.tag_list()
        with self.aws_call():
            self.client.put_rule(**params)

    def _put_target(self, observed_targets: list[dict[str, Any]]) -> None:
        extra = [t["Id"] for t in observed_targets if t["Id"] != TARGET_ID]
        if extra:
            with self.aws_call():
                self.client.remove_targets(Rule=self.name, Ids=extra)
        with self.aws_call():
            answer = self.client.put_targets(Rule=self.name, Targets=[self.target()])
        if answer.get("FailedEntryCount"):
            entry = answer["FailedEntries"][0]
            raise AwsError(
                f"events:PutTargets on {self.name} in {self.region} failed: "
                f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage')}"
            )

    def create(self) -> None:
        # PutRule and PutTargets both replace: a re-run after a crash simply repeats them.
        self._put_rule(tags=True)
        self._put_target([])

    def update(self, observed: Observed, changes: list[str]) -> None:
        if self._rule_changes(observed):
            self._put_rule(tags=False)
        if self._target_changes(observed):
            self._put_target(observed["targets"])

    def delete(self, observed: Observed) -> str:
        c = self.client
        with self.aws_call():
            with contextlib.suppress(c.exceptions.ResourceNotFoundException):
                ids = [t["Id"] for t in c.list_targets_by_rule(Rule=self.name).get("Targets", [])]
                if ids:
                    c.remove_targets(Rule=self.name, Ids=ids)
        with self.aws_call():
            with contextlib.suppress(c.exceptions.ResourceNotFoundException):
                c.delete_rule(Name=self.name)
        return ""

    def checks(self, observed: Observed) -> list[Check]:
        enabled = observed["state"] == self.state
        reaches = observed["targets"] == [_comparable(self.target())]
        detail = "enabled, targets the notifier" if enabled and reaches else "see the rule's drift"
        return [
            Check(
                "fast path: sign-in rule → notifier",
                enabled and reaches,
                detail,
                repeats_drift=True,
            )
        ]


class ForwardingRule(SignInRule):
    """A rule in another region: forwards sign-ins to the home region's default bus."""

    kind = "forwarding-rule"
    label = "forwarding rule"
    sid = "ForwardingRules"

    def description(self) -> str:
        return f"loginwatch '{self.names.name}': console sign-ins → {self.names.region} bus"

    def target(self) -> dict[str, Any]:
        return {
            "Id": TARGET_ID,
            "Arn": self.names.event_bus_arn(),
            "RoleArn": self.names.role_arn(self.names.forwarding_role),
            **self.delivery(),
        }

    def calls(self) -> list[perms.Grant | None]:
        to_events = perms.pass_role(
            "SetupPassForwardingRoleToEvents",
            self.names.role_arn(self.names.forwarding_role),
            "events.amazonaws.com",
        )
        # The target's RoleArn hands the role to EventBridge.
        hand_over = perms.Grant(
            to_events.sid,
            to_events.resources,
            implied=(("iam:PassRole", perms.ON_SETUP),),
            condition=to_events.condition,
        )
        return [*super().calls(), hand_over]

    def checks(self, observed: Observed) -> list[Check]:
        return []  # its drift says everything; one check per region would drown the table


def _comparable(target: dict[str, Any]) -> dict[str, Any]:
    keys = ("Id", "Arn", "RoleArn", "RetryPolicy", "DeadLetterConfig")
    return {k: target[k] for k in keys if target.get(k)}
