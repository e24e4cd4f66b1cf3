"""The notifier Lambda: code compared by CodeSha256, configuration field by field."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import operator_policy as perms
from ..aws import retry_while, translate_errors
from ..notifier.context import FUNCTION_TIMEOUT_SECONDS
from ..notifier_package import HANDLER, RUNTIME
from .base import Check, Observed, Resource, absent_on, changed

# Lambda says this while a new role's trust policy has not propagated yet.
ROLE_NOT_READY = "cannot be assumed by Lambda"
WAIT = {"Delay": 2, "MaxAttempts": 90}


class Function(Resource):
    kind = "function"
    label = "notifier function"
    service = "lambda"
    sid = "Function"

    def watched(self) -> list[dict[str, Any]]:
        return [self.watch("concurrency")]  # reserved concurrency 0 silences it

    def calls(self) -> list[perms.Grant | None]:
        to_lambda = perms.pass_role(
            "SetupPassNotifierRoleToLambda",
            self.names.role_arn(self.names.notifier_role),
            "lambda.amazonaws.com",
        )
        return [
            # status counts the function's errors; test-alert too, when nothing arrives.
            perms.no_resource_level(
                frozenset({perms.STATUS, perms.TEST_ALERT}), "cloudwatch", "GetMetricStatistics"
            ),
            self.grant("Read", perms.READ, "GetFunction"),  # also every waiter poll
            self.grant(
                "Setup",
                perms.ON_SETUP,
                "CreateFunction",
                "UpdateFunctionConfiguration",
                "UpdateFunctionCode",
                routes={"iam:PassRole": to_lambda},
            ),
            self.grant("Teardown", perms.ON_TEARDOWN, "DeleteFunction"),
            self.grant("TestAlert", perms.ON_TEST, "Invoke", sid="InvokeFunction"),
            # redeliver hands each undelivered alert to the notifier, as its retries do.
            self.grant("Redeliver", perms.ON_REDELIVER, "Invoke", sid="InvokeFunction"),
        ]

    @property
    def name(self) -> str:
        return self.names.function

    @property
    def arn(self) -> str:
        return self.names.function_arn

    def desired(self) -> dict[str, Any]:
        return {
            "Runtime": RUNTIME,
            "Role": self.names.role_arn(self.names.notifier_role),
            "Handler": HANDLER,
            "MemorySize": 128,  # the handler reads a few log events and posts one message
            # The notifier keeps every run inside it (notifier/context.py shares it out).
            "Timeout": FUNCTION_TIMEOUT_SECONDS,
            "Description": f"loginwatch '{self.names.name}': posts console sign-in alerts to Slack",
        }

    @absent_on("ResourceNotFoundException")
    def read(self) -> Observed | None:
        found = self.client.get_function(FunctionName=self.name)
        config = found["Configuration"]
        return {
            "settings": {k: config.get(k) for k in self.desired()},
            "architectures": config.get("Architectures") or ["x86_64"],
            "sha256": config.get("CodeSha256"),
            "environment": (config.get("Environment") or {}).get("Variables") or {},
            "state": config.get("State"),
            "last_update": config.get("LastUpdateStatus"),
            "tags": found.get("Tags") or {},
        }

    def _config_changes(self, observed: Observed) -> list[str]:
        current = observed["settings"]
        changes = [
            changed(k, current.get(k), v) for k, v in self.desired().items() if current.get(k) != v
        ]
        if observed["environment"]:
            # Settings travel inside the package; the webhook lives only in SSM.
            changes.append("environment variables: removed (settings live in the package)")
        return changes

    def _code_changes(self, observed: Observed) -> list[str]:
        changes = []
        if observed["sha256"] != self.d.package_sha256:
            changes.append("code: out of date (notifier or its settings changed)")
        if observed["architectures"] != ["arm64"]:
            changes.append(changed("architecture", observed["architectures"][0], "arm64"))
        return changes

    def diff(self, observed: Observed) -> list[str]:
        return self._config_changes(observed) + self._code_changes(observed)

    def create(self) -> None:
        c = self.client

        def attempt() -> None:
            try:
                c.create_function(
                    FunctionName=self.name,
                    Code={"ZipFile": self.d.package},
                    Architectures=["arm64"],
                    Tags=self.d.tags,
                    **self.desired(),
                )
            except c.exceptions.ResourceConflictException:
                pass  # created by an interrupted earlier run; the next setup settles it

        with self.aws_call():
            retry_while(
                self.aws,
                attempt,
                codes={"InvalidParameterValueException"},
                message_contains=ROLE_NOT_READY,
            )
            c.get_waiter("function_active_v2").wait(FunctionName=self.name, WaiterConfig=WAIT)

    def update(self, observed: Observed, changes: list[str]) -> None:
        c = self.client
        if self._config_changes(observed):
            with self.aws_call():
                retry_while(
                    self.aws,
                    lambda: c.update_function_configuration(
                        FunctionName=self.name, Environment={"Variables": {}}, **self.desired()
                    ),
                    codes={"InvalidParameterValueException"},
                    message_contains=ROLE_NOT_READY,
                )
                # A second update before the first settles fails with ResourceConflictException.
                c.get_waiter("function_updated_v2").wait(FunctionName=self.name, WaiterConfig=WAIT)
        if self._code_changes(observed):
            with self.aws_call():
                c.update_function_code(
                    FunctionName=self.name, ZipFile=self.d.package, Architectures=["arm64"]
                )
                c.get_waiter("function_updated_v2").wait(FunctionName=self.name, WaiterConfig=WAIT)

    def delete(self, observed: Observed) -> str:
        with self.aws_call():
            with contextlib.suppress(self.client.exceptions.ResourceNotFoundException):
                self.client.delete_function(FunctionName=self.name)
        return ""

    def checks(self, observed: Observed) -> list[Check]:
        state, update = observed.get("state"), observed.get("last_update")
        ready = state in (None, "Active") and update in (None, "Successful")
        return [
            Check("function is active", ready, f"state {state}, last update {update}"),
            self._error_check(),
        ]

    def _error_check(self) -> Check:
        now = datetime.now(UTC)
        errors = count_errors(self.aws, self.name, now - timedelta(hours=24), now, period=86400)
        return Check("notifier errors (24 h)", errors == 0, f"{errors} error(s)")


def count_errors(aws: Any, function: str, start: datetime, end: datetime, *, period: int) -> int:
    """Invocation errors Lambda counted for the function between start and end."""
    with translate_errors(function):
        stats = aws.client("cloudwatch").get_metric_statistics(
            Namespace="AWS/Lambda",
            MetricName="Errors",
            Dimensions=[{"Name": "FunctionName", "Value": function}],
            StartTime=start,
            EndTime=end,
            Period=period,
            Statistics=["Sum"],
        )
    return int(sum(p.get("Sum", 0) for p in stats.get("Datapoints", [])))
