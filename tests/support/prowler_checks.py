"""What Prowler's CIS sign-in checks look for, read from its source (prowler-cloud/prowler,
prowler/providers/aws/services/cloudwatch/): a metric filter on a trail's log group whose
pattern matches the check's regex (re.search, DOTALL, the pattern as stored), and an
alarm on that filter's metric. Both the order-independent regexes of 5.30+ and the
fixed-order ones before them, so either release passes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

ROOT_USAGE = [
    r"\$\.userIdentity\.type\s*=\s*.?Root.+\$\.userIdentity\.invokedBy NOT EXISTS.+"
    r"\$\.eventType\s*!=\s*.?AwsServiceEvent.?",
]
SIGN_IN_WITHOUT_MFA = [
    r"(?=.*\$\.eventName\s*=\s*.?ConsoleLogin\b)(?=.*\$\.additionalEventData\.MFAUsed\s*!=\s*.?Yes)",
    r"\$\.eventName\s*=\s*.?ConsoleLogin.+\$\.additionalEventData\.MFAUsed\s*!=\s*.?Yes.?",
]
AUTHENTICATION_FAILURES = [
    r"(?=.*\$\.eventName\s*=\s*.?ConsoleLogin\b)(?=.*\$\.errorMessage\s*=\s*.?Failed\ authentication)",
    r"\$\.eventName\s*=\s*.?ConsoleLogin.+\$\.errorMessage\s*=\s*.?Failed authentication.?",
]
CHECKS = {
    "cloudwatch_log_metric_filter_root_usage": ROOT_USAGE,
    "cloudwatch_log_metric_filter_sign_in_without_mfa": SIGN_IN_WITHOUT_MFA,
    "cloudwatch_log_metric_filter_authentication_failures": AUTHENTICATION_FAILURES,
}


def pattern_passes(pattern: str, regexes: Iterable[str]) -> bool:
    return all(re.search(regex, pattern, flags=re.DOTALL) for regex in regexes)


def check_passes(
    regexes: Iterable[str],
    trail_log_groups: Iterable[str],
    filters: Iterable[Mapping[str, Any]],
    alarms: Iterable[Mapping[str, Any]],
) -> bool:
    """Prowler's check_cloudwatch_log_metric_filter: a matching filter on a trail's log
    group, and an alarm whose metric is the filter's."""
    groups = set(trail_log_groups)
    alarm_metrics = {a.get("MetricName") for a in alarms}
    wanted = list(regexes)
    return any(
        f["logGroupName"] in groups
        and pattern_passes(f.get("filterPattern", ""), wanted)
        and f["metricTransformations"][0]["metricName"] in alarm_metrics
        for f in filters
    )
