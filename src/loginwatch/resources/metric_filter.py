"""The metric filter: counts successful console sign-ins from outside the allowlist."""

from __future__ import annotations

import contextlib

from .. import pattern_check
from .. import permissions as perms
from .base import Observed, Resource
from .log_group import log_group_arns


class MetricFilter(Resource):
    kind = "metric-filter"
    label = "metric filter"
    service = "logs"
    sid = "MetricFilter"

    def calls(self) -> list[perms.Grant | None]:
        return [
            self.grant("Read", perms.READ, "DescribeMetricFilters"),
            self.grant("Setup", perms.ON_SETUP, "PutMetricFilter"),
            # AWS's own verdict on the pattern before it is written (no resource-level).
            perms.no_resource_level(perms.ON_SETUP, "logs", "TestMetricFilter"),
            self.grant("Teardown", perms.ON_TEARDOWN, "DeleteMetricFilter"),
        ]

    def policy_arns(self) -> tuple[str, ...]:
        return log_group_arns(self.names, self.log_group, self.region)

    @property
    def name(self) -> str:
        return self.names.metric_filter

    @property
    def log_group(self) -> str:
        return self.d.trail_log_group

    def _transformation(self) -> dict:
        return {
            "metricName": self.names.metric_name,
            "metricNamespace": self.names.metric_namespace,
            "metricValue": "1",
        }

    def read(self) -> Observed | None:
        if not self.log_group:
            return None  # a reused trail without a log group: nothing to look in
        with self.aws_call("logs:DescribeMetricFilters"):
            try:
                found = self.client.describe_metric_filters(
                    logGroupName=self.log_group, filterNamePrefix=self.name
                ).get("metricFilters", [])
            except self.client.exceptions.ResourceNotFoundException:
                return None  # the log group itself is missing
        mine = [f for f in found if f["filterName"] == self.name]
        if not mine:
            return None
        first = mine[0]
        transform = (first.get("metricTransformations") or [{}])[0]
        return {
            "pattern": first.get("filterPattern", ""),
            "transformation": {k: transform.get(k) for k in self._transformation()},
            "copies": len(mine),
        }

    def owned(self, observed: Observed) -> bool:
        # Filters take no tags: ours is the exact derived name publishing our metric.
        return observed["transformation"]["metricNamespace"] == self.names.metric_namespace

    def diff(self, observed: Observed) -> list[str]:
        changes = []
        if observed["pattern"] != self.d.pattern:
            changes.append(_pattern_change(observed["pattern"], self.d.pattern))
        if observed["transformation"] != self._transformation():
            changes.append(
                "metric: value 1 to " + f"{self.names.metric_namespace}/{self.names.metric_name}"
            )
        return changes

    def preflight(self) -> None:
        """Before anything is written: would AWS's evaluation of the pattern miss a
        sign-in from outside the allowlist? Then setup refuses."""
        verdict = pattern_check.verify(self.client, self.d.pattern, self.d.config.allowed)
        if verdict.unavailable:
            self.d.notices.append(
                f"{verdict.unavailable}: the filter pattern was checked by loginwatch's own "
                "evaluator only, not by AWS."
            )
        pattern_check.require_safe(verdict)
        if verdict.over_matched:
            self.d.notices.append(
                f"AWS's test of the filter pattern also counts {len(verdict.over_matched)} "
                "address(es) inside the allowlist (e.g. "
                f"{verdict.over_matched[0]}): harmless, the notifier's exact check "
                "suppresses those alerts."
            )

    def create(self) -> None:
        self._put()

    def update(self, observed: Observed, changes: list[str]) -> None:
        self._put()  # PutMetricFilter replaces the filter of the same name in place

    def _put(self) -> None:
        with self.aws_call("logs:PutMetricFilter"):
            self.client.put_metric_filter(
                logGroupName=self.log_group,
                filterName=self.name,
                filterPattern=self.d.pattern,
                metricTransformations=[self._transformation()],
            )

    def delete(self, observed: Observed) -> str:
        with self.aws_call("logs:DeleteMetricFilter"):
            with contextlib.suppress(self.client.exceptions.ResourceNotFoundException):
                self.client.delete_metric_filter(logGroupName=self.log_group, filterName=self.name)
        return ""


def _pattern_change(old: str, new: str) -> str:
    def ranges(pattern: str) -> int:
        return pattern.count("$.sourceIPAddress !=") + sum(
            part.count("|") for part in pattern.split("%")[1::2]
        )

    return f"filter pattern: {ranges(old)} → {ranges(new)} allowed ranges"
