"""How failed alerts reach the retry queue, and come back to the notifier from it.

- The failure destination (the function's event invoke configuration): after
  Lambda's own two retries, an asynchronous invoke (SNS, EventBridge) that still
  fails goes to the retry queue as an OnFailure record, instead of being dropped.
- The retry mapping (an event source mapping): Lambda polls the retry queue and
  hands the notifier batches; the notifier reports each failure on its own
  (``ReportBatchItemFailures``) and sets its backoff.

Both live on the notifier function (no tags of their own): they are loginwatch's
when the function is.
"""

from __future__ import annotations

import contextlib
from typing import Any

from .. import operator_policy as perms
from ..aws import retry_while
from .base import Check, Observed, Resource, absent_on, changed

# Lambda checks the execution role before it accepts a destination or a mapping; a
# policy written seconds ago may not be visible to it yet.
ROLE_NOT_READY = "does not have permissions to call"
# Async invokes retried by Lambda itself before the OnFailure destination: the most it
# allows, for a Slack hiccup of a minute or two.
MAXIMUM_RETRY_ATTEMPTS = 2
# An event Lambda could not even start (throttled) goes to the retry queue after an
# hour, where `status` sees it, rather than waiting out Lambda's 6-hour default unseen.
MAXIMUM_EVENT_AGE_SECONDS = 3600
# Records per notifier run: each may post once; the run stops early when time runs low.
BATCH_SIZE = 5
# After an outage, retries reach Slack two runs at a time (its webhooks take ~1 msg/s).
MAXIMUM_CONCURRENCY = 2


class FailureDestination(Resource):
    kind = "failure-destination"
    label = "failure destination"
    service = "lambda"
    owner_kind = "function"
    sid = "Function"  # configuration of the function: IAM checks the function's ARN

    @property
    def name(self) -> str:
        return f"{self.names.function} → {self.names.retry_queue}"

    def policy_arns(self) -> tuple[str, ...]:
        return (self.names.function_arn,)

    def calls(self) -> list[perms.Grant | None]:
        return [
            self.grant("Read", perms.READ, "GetFunctionEventInvokeConfig"),
            self.grant("Setup", perms.ON_SETUP, "PutFunctionEventInvokeConfig"),
            self.grant("Teardown", perms.ON_TEARDOWN, "DeleteFunctionEventInvokeConfig"),
        ]

    def desired(self) -> dict[str, Any]:
        return {
            "retries": MAXIMUM_RETRY_ATTEMPTS,
            "max_age": MAXIMUM_EVENT_AGE_SECONDS,
            "on_failure": self.names.queue_arn(self.names.retry_queue),
            "on_success": None,
        }

    @absent_on("ResourceNotFoundException")
    def read(self) -> Observed | None:
        found = self.client.get_function_event_invoke_config(FunctionName=self.names.function)
        destinations = found.get("DestinationConfig") or {}
        return {
            "retries": found.get("MaximumRetryAttempts"),
            "max_age": found.get("MaximumEventAgeInSeconds"),
            "on_failure": (destinations.get("OnFailure") or {}).get("Destination"),
            "on_success": (destinations.get("OnSuccess") or {}).get("Destination"),
        }

    def owned(self, observed: Observed) -> bool:
        return True  # the configuration of our own (tagged) function

    def diff(self, observed: Observed) -> list[str]:
        labels = {
            "retries": "retries by Lambda",
            "max_age": "maximum event age (s)",
            "on_failure": "on failure",
            "on_success": "on success",
        }
        return _field_changes(observed, self.desired(), labels)

    def _put(self) -> None:
        c = self.client
        with self.aws_call():
            retry_while(
                self.aws,
                lambda: c.put_function_event_invoke_config(
                    FunctionName=self.names.function,
                    MaximumRetryAttempts=MAXIMUM_RETRY_ATTEMPTS,
                    MaximumEventAgeInSeconds=MAXIMUM_EVENT_AGE_SECONDS,
                    # Put replaces the whole configuration: no OnSuccess is left behind.
                    DestinationConfig={
                        "OnFailure": {"Destination": self.names.queue_arn(self.names.retry_queue)}
                    },
                ),
                codes={"InvalidParameterValueException"},
                message_contains=ROLE_NOT_READY,
            )

    def create(self) -> None:
        self._put()

    def update(self, observed: Observed, changes: list[str]) -> None:
        self._put()

    def delete(self, observed: Observed) -> str:
        with self.aws_call():
            with contextlib.suppress(self.client.exceptions.ResourceNotFoundException):
                self.client.delete_function_event_invoke_config(FunctionName=self.names.function)
        return ""

    def checks(self, observed: Observed) -> list[Check]:
        ok = observed.get("on_failure") == self.desired()["on_failure"]
        detail = f"to {self.names.retry_queue}" if ok else "see its drift"
        return [Check("failed deliveries are kept", ok, detail, repeats_drift=True)]


class RetryMapping(Resource):
    kind = "retry-mapping"
    label = "retry mapping"
    service = "lambda"
    owner_kind = "function"
    sid = "RetryMapping"

    @property
    def name(self) -> str:
        return f"{self.names.retry_queue} → {self.names.function}"

    @property
    def queue_arn(self) -> str:
        return self.names.queue_arn(self.names.retry_queue)

    def calls(self) -> list[perms.Grant | None]:
        # Mappings have generated ids: IAM scopes them by the function they invoke.
        ours = {"StringEquals": {"lambda:FunctionArn": self.names.function_arn}}
        mappings = (self.names.event_source_mappings_arn,)
        return [
            perms.no_resource_level(perms.READ, "lambda", "ListEventSourceMappings"),
            # CreateEventSourceMapping has no resource type (AWS's catalogue): "*" only,
            # narrowed to mappings that invoke our function.
            perms.unscoped_write(
                "SetupCreateRetryMapping",
                perms.ON_SETUP,
                "lambda",
                "CreateEventSourceMapping",
                condition=ours,
            ),
            perms.Grant(
                "SetupRetryMapping",
                mappings,
                perms.ops(perms.ON_SETUP, "lambda", "UpdateEventSourceMapping"),
                condition=ours,
            ),
            perms.Grant(
                "TeardownRetryMapping",
                mappings,
                perms.ops(perms.ON_TEARDOWN, "lambda", "DeleteEventSourceMapping"),
                condition=ours,
            ),
        ]

    def desired(self) -> dict[str, Any]:
        return {
            "batch_size": BATCH_SIZE,
            "window": 0,
            "report_failures": ["ReportBatchItemFailures"],
            "concurrency": MAXIMUM_CONCURRENCY,
            "enabled": True,
        }

    def read(self) -> Observed | None:
        with self.aws_call():
            pages = self.client.get_paginator("list_event_source_mappings").paginate(
                EventSourceArn=self.queue_arn, FunctionName=self.names.function
            )
            found = [m for page in pages for m in page.get("EventSourceMappings", [])]
        if not found:
            return None
        mapping = found[0]
        return {
            "uuid": mapping["UUID"],
            "batch_size": mapping.get("BatchSize"),
            "window": mapping.get("MaximumBatchingWindowInSeconds") or 0,
            "report_failures": mapping.get("FunctionResponseTypes") or [],
            "concurrency": (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency"),
            # Creating, Updating and Enabling all end Enabled; Disabled is a change.
            "enabled": mapping.get("State") not in ("Disabled", "Disabling"),
        }

    def owned(self, observed: Observed) -> bool:
        return True  # between our queue and our (tagged) function

    def diff(self, observed: Observed) -> list[str]:
        labels = {
            "batch_size": "batch size",
            "window": "batching window (s)",
            "report_failures": "reports failures per message",
            "concurrency": "maximum concurrency",
            "enabled": "enabled",
        }
        return _field_changes(observed, self.desired(), labels)

    def _settings(self) -> dict[str, Any]:
        return {
            "BatchSize": BATCH_SIZE,
            "MaximumBatchingWindowInSeconds": 0,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": MAXIMUM_CONCURRENCY},
            "Enabled": True,
        }

    def create(self) -> None:
        c = self.client

        def attempt() -> None:
            try:
                c.create_event_source_mapping(
                    EventSourceArn=self.queue_arn,
                    FunctionName=self.names.function,
                    **self._settings(),
                )
            except c.exceptions.ResourceConflictException:
                pass  # an interrupted run made it; the next setup settles it

        with self.aws_call():
            retry_while(
                self.aws,
                attempt,
                codes={"InvalidParameterValueException"},
                message_contains=ROLE_NOT_READY,
            )

    def update(self, observed: Observed, changes: list[str]) -> None:
        c = self.client
        with self.aws_call():
            # A mapping still being created or updated refuses changes for a few seconds.
            retry_while(
                self.aws,
                lambda: c.update_event_source_mapping(
                    UUID=observed["uuid"], FunctionName=self.names.function, **self._settings()
                ),
                codes={"ResourceInUseException"},
            )

    def delete(self, observed: Observed) -> str:
        c = self.client
        with self.aws_call():
            with contextlib.suppress(c.exceptions.ResourceNotFoundException):
                retry_while(
                    self.aws,
                    lambda: c.delete_event_source_mapping(UUID=observed["uuid"]),
                    codes={"ResourceInUseException"},
                )
        return ""

    def checks(self, observed: Observed) -> list[Check]:
        ok = observed["enabled"] and observed["report_failures"] == ["ReportBatchItemFailures"]
        detail = "enabled, failures reported per alert" if ok else "see its drift"
        return [Check("failed deliveries are retried", ok, detail, repeats_drift=True)]


def _field_changes(
    observed: Observed, desired: dict[str, Any], labels: dict[str, str]
) -> list[str]:
    return [
        changed(labels[key], observed.get(key), value)
        for key, value in desired.items()
        if observed.get(key) != value
    ]
