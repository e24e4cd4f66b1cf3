"""Lambda resource policy statements: our topic, and our home sign-in rule, may invoke
the notifier (each scoped to its one source ARN)."""

from __future__ import annotations

import contextlib
import json
from typing import ClassVar

from .. import operator_policy as perms
from .base import Observed, Resource, absent_on


class InvokePermission(Resource):
    kind = "invoke-permission"
    label = "invoke permission"
    service = "lambda"
    owner_kind = "function"
    sid = "Function"  # a statement in the function's resource policy: IAM checks the function

    def calls(self) -> list[perms.Grant | None]:
        return [
            # test-alert reads the policy too, to say whether the topic may invoke.
            self.grant("Read", perms.READ_AND_TEST, "GetPolicy"),
            self.grant("Setup", perms.ON_SETUP, "AddPermission", "RemovePermission"),
            self.grant("Teardown", perms.ON_TEARDOWN, "RemovePermission"),
        ]

    def policy_arns(self) -> tuple[str, ...]:
        return (self.names.function_arn,)

    principal: ClassVar[str] = "sns.amazonaws.com"

    @property
    def name(self) -> str:
        return self.names.permission_sid

    @property
    def source_arn(self) -> str:
        return self.names.topic_arn

    @property
    def source_label(self) -> str:
        return f"topic {self.names.topic}"

    @absent_on("ResourceNotFoundException")
    def read(self) -> Observed | None:
        policy = json.loads(self.client.get_policy(FunctionName=self.names.function)["Policy"])
        for statement in policy.get("Statement", []):
            if statement.get("Sid") == self.name:
                condition = statement.get("Condition", {})
                return {
                    "principal": (statement.get("Principal") or {}).get("Service"),
                    "source_arn": condition.get("ArnLike", {}).get("AWS:SourceArn"),
                }
        return None

    def owned(self, observed: Observed) -> bool:
        return True  # exact derived statement id on our own (tagged) function

    def diff(self, observed: Observed) -> list[str]:
        changes = []
        if observed["principal"] != self.principal:
            changes.append(f"principal: {self.principal}")
        if observed["source_arn"] != self.source_arn:
            changes.append(f"source: only {self.source_label}")
        return changes

    def create(self) -> None:
        with self.aws_call():
            try:
                self.client.add_permission(
                    FunctionName=self.names.function,
                    StatementId=self.name,
                    Action="lambda:InvokeFunction",
                    Principal=self.principal,
                    SourceArn=self.source_arn,
                    SourceAccount=self.names.account,
                )
            except self.client.exceptions.ResourceConflictException:
                pass  # the same statement id exists: added by an interrupted run

    def update(self, observed: Observed, changes: list[str]) -> None:
        self.delete(observed)
        self.create()

    def delete(self, observed: Observed) -> str:
        with self.aws_call():
            with contextlib.suppress(self.client.exceptions.ResourceNotFoundException):
                self.client.remove_permission(
                    FunctionName=self.names.function, StatementId=self.name
                )
        return ""


class EventsInvokePermission(InvokePermission):
    """EventBridge may invoke the notifier, from the home sign-in rule only."""

    kind = "events-permission"
    label = "rule invoke permission"
    removable_by_setup = True
    principal = "events.amazonaws.com"

    @property
    def name(self) -> str:
        return self.names.events_permission_sid

    @property
    def source_arn(self) -> str:
        return self.names.rule_arn()

    @property
    def source_label(self) -> str:
        return f"rule {self.names.sign_in_rule}"


class WatchRulesInvokePermission(EventsInvokePermission):
    """EventBridge may invoke the notifier from the home region's watch rules
    (``<name>-key-…``, ``<name>-tamper-…``: how many follows the config)."""

    kind = "watch-rules-permission"
    label = "watch rules invoke permission"

    @property
    def name(self) -> str:
        return self.names.watch_rules_permission_sid

    @property
    def source_arn(self) -> str:
        return self.names.rules_arn()

    @property
    def source_label(self) -> str:
        return f"rules {self.names.name}-*"
