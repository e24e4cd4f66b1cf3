"""A rule's metric filter on the trail's log group.

outside_allowlist's counts successful console sign-ins from outside the
allowlist (its pattern is compiled from it); the others are the CIS patterns
(cis_patterns.py), exactly, so Security Hub's checks pass.
"""

from __future__ import annotations

import contextlib

from .. import operator_policy as perms
from .. import pattern_check
from ..api_call_patterns import QUARANTINE_FILTER
from ..cis_patterns import RULE_PATTERNS
from ..errors import UsageError
from ..names import RULE_RESOURCES, filter_rule
from ..pattern_check import api_call_record
from .base import Deployment, Observed, Resource
from .log_group import log_group_arns

OUTSIDE = "outside_allowlist"
KEY_CALLS = "access_key_outside_allowlist"
EXPOSED = "credentials_exposed"
OWN_RESOURCES = "tamper_own_resources"
# The filters compiled from the allowlist (the others are fixed text).
COMPILED = (OUTSIDE, KEY_CALLS)
# CloudWatch Logs quotas per log group (not adjustable).
MAX_FILTERS = 100
MAX_REGEX_FILTERS = 5  # metric and subscription filters together


class MetricFilter(Resource):
    kind = "metric-filter"
    label = "metric filter"
    service = "logs"
    sid = "MetricFilter"
    # A rule turned off: setup removes its filter (and alarm), nothing else.
    removable_by_setup = True

    def __init__(self, deployment: Deployment, rule: str = OUTSIDE, *, wanted: bool = True) -> None:
        super().__init__(deployment, wanted=wanted)
        self.rule = rule

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.rule}@{self.region}"

    @property
    def pattern(self) -> str:
        return pattern_for(self.d, self.rule)

    def calls(self) -> list[perms.Grant | None]:
        return [
            self.grant("Read", perms.READ, "DescribeMetricFilters"),
            self.grant("Setup", perms.ON_SETUP, "PutMetricFilter"),
            # AWS's own verdict on the pattern before it is written (no resource-level).
            perms.no_resource_level(perms.ON_SETUP, "logs", "TestMetricFilter"),
            self.grant("Teardown", perms.ON_TEARDOWN, "DeleteMetricFilter"),
        ]

    def policy_arns(self) -> tuple[str, ...]:
        # The metric filter APIs are authorised on ARN:* (the bare ARN is for tagging).
        return log_group_arns(self.names, self.log_group, self.region)[1:]

    @property
    def name(self) -> str:
        return self.names.rule_filter(self.rule)

    @property
    def log_group(self) -> str:
        return self.d.trail_log_group

    def _transformation(self) -> dict:
        return {
            "metricName": self.names.rule_metric(self.rule),
            "metricNamespace": self.names.metric_namespace,
            "metricValue": "1",
        }

    def read(self) -> Observed | None:
        if not self.log_group:
            return None  # a reused trail without a log group: nothing to look in
        with self.aws_call():
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
        if observed["pattern"] != self.pattern:
            if self.rule in COMPILED:
                changes.append(_pattern_change(observed["pattern"], self.pattern))
            elif self.rule == EXPOSED:
                changes.append("filter pattern: AWS's quarantine policy attached")
            elif self.rule == OWN_RESOURCES:
                changes.append("filter pattern: changes to loginwatch's own resources")
            else:
                changes.append(f"filter pattern: not the CIS one for {self.rule}")
        if observed["transformation"] != self._transformation():
            metric = self.names.rule_metric(self.rule)
            changes.append(f"metric: value 1 to {self.names.metric_namespace}/{metric}")
        return changes

    def preflight(self) -> None:
        """Before anything is written: would AWS's evaluation of the pattern miss a
        sign-in from outside the allowlist? Then setup refuses. (The CIS patterns are
        fixed text: nothing of the config goes into them.)"""
        self._check_quotas()
        if self.rule not in COMPILED:
            return
        record = pattern_check.sign_in_record if self.rule == OUTSIDE else api_call_record
        verdict = pattern_check.verify(self.client, self.pattern, self.d.config.allowed, record)
        if verdict.unavailable:
            self.d.notices.append(
                f"Filter pattern not verified by AWS: {verdict.unavailable} (checked by "
                "loginwatch's own evaluator only)."
            )
        pattern_check.require_safe(verdict)
        if verdict.over_matched:
            self.d.notices.append(
                f"AWS's test of the filter pattern also counts {len(verdict.over_matched)} "
                "address(es) inside the allowlist (e.g. "
                f"{verdict.over_matched[0]}): harmless, the notifier's exact check "
                "suppresses those alerts."
            )

    def _check_quotas(self) -> None:
        """A reused trail's log group is the user's: refuse, before anything is written,
        to go past CloudWatch Logs' per-group quotas (100 metric filters; 5 whose
        pattern has a regex). Our own log group holds only our filters."""
        if not self.d.config.reuses_trail:
            return
        if self.d.log_group_filters is None:
            pages = self.client.get_paginator("describe_metric_filters").paginate(
                logGroupName=self.log_group
            )
            with self.aws_call():
                self.d.log_group_filters = {
                    f["filterName"]: f.get("filterPattern", "")
                    for page in pages
                    for f in page.get("metricFilters", [])
                }
        ours = {
            self.names.rule_filter(f)
            for f in RULE_RESOURCES
            if self.d.config.rules.get(filter_rule(f)) is not None
        }
        others = {n: p for n, p in self.d.log_group_filters.items() if n not in ours}
        if len(others) + len(ours) > MAX_FILTERS:
            raise UsageError(
                f"The log group {self.log_group} has {len(others)} metric filters of its own; "
                f"loginwatch's {len(ours)} would pass CloudWatch Logs' limit of {MAX_FILTERS}.",
                "Remove unused filters from it, or turn rules off in the config.",
            )
        compiled = [pattern_for(self.d, r) for r in COMPILED if self.d.config.rules.get(r)]
        regex = sum("%" in p for p in [*others.values(), *compiled])
        if regex > MAX_REGEX_FILTERS:
            raise UsageError(
                f"The log group {self.log_group} would have {regex} filters whose pattern uses a "
                f"regex; CloudWatch Logs allows {MAX_REGEX_FILTERS} per log group.",
                "Remove a regex filter from it, or make the allowlist's IPv4 prefixes "
                "octet-aligned (/8, /16, /24, /32) so its pattern needs no regex.",
            )

    def create(self) -> None:
        self._put()

    def update(self, observed: Observed, changes: list[str]) -> None:
        self._put()  # PutMetricFilter replaces the filter of the same name in place

    def _put(self) -> None:
        with self.aws_call():
            self.client.put_metric_filter(
                logGroupName=self.log_group,
                filterName=self.name,
                filterPattern=self.pattern,
                metricTransformations=[self._transformation()],
            )

    def delete(self, observed: Observed) -> str:
        with self.aws_call():
            with contextlib.suppress(self.client.exceptions.ResourceNotFoundException):
                self.client.delete_metric_filter(logGroupName=self.log_group, filterName=self.name)
        return ""


def pattern_for(deployment: Deployment, rule: str) -> str:
    """A rule's filter pattern: compiled from the allowlist, AWS's quarantine, or CIS."""
    if rule == OUTSIDE:
        return deployment.pattern
    if rule == KEY_CALLS:
        return deployment.api_call_filter
    if rule == EXPOSED:
        return QUARANTINE_FILTER
    if rule == OWN_RESOURCES:
        from ..tamper_patterns import own_resources_filter

        return own_resources_filter(
            deployment.names,
            deployment.trail_log_group,
            organization=deployment.config.organization.enabled,
        )
    return RULE_PATTERNS[rule]


def _pattern_change(old: str, new: str) -> str:
    def ranges(pattern: str) -> int:
        return pattern.count("$.sourceIPAddress !=") + sum(
            part.count("|") for part in pattern.split("%")[1::2]
        )

    return f"filter pattern: {ranges(old)} → {ranges(new)} allowed ranges"
