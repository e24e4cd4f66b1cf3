"""The CIS filter patterns are Security Hub's, character for character, and Prowler's
checks accept them."""

from __future__ import annotations

import pytest

from loginwatch.cis_patterns import (
    AUTHENTICATION_FAILURES,
    ROOT_USAGE,
    RULE_PATTERNS,
    SIGN_IN_WITHOUT_MFA,
    TRAIL_CHANGES,
)
from tests.support import prowler_checks

# Copied from the AWS Security Hub user guide (cloudwatch-controls): "This control fails
# if the exact metric filters prescribed by CIS are not used."
SECURITY_HUB = {
    "CloudWatch.1": '{$.userIdentity.type="Root" && $.userIdentity.invokedBy NOT EXISTS && '
    '$.eventType !="AwsServiceEvent"}',
    "CloudWatch.3": '{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != '
    '"Yes") && ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = '
    '"Success") }',
    "CloudWatch.6": '{($.eventName=ConsoleLogin) && ($.errorMessage="Failed authentication")}',
    "CloudWatch.5": "{($.eventName=CreateTrail) || ($.eventName=UpdateTrail) || "
    "($.eventName=DeleteTrail) || ($.eventName=StartLogging) || ($.eventName=StopLogging)}",
}


def test_the_patterns_are_security_hubs_character_for_character() -> None:
    assert SECURITY_HUB["CloudWatch.1"] == ROOT_USAGE
    assert SECURITY_HUB["CloudWatch.3"] == SIGN_IN_WITHOUT_MFA
    assert SECURITY_HUB["CloudWatch.6"] == AUTHENTICATION_FAILURES
    assert SECURITY_HUB["CloudWatch.5"] == TRAIL_CHANGES
    assert RULE_PATTERNS == {
        "root_sign_in": ROOT_USAGE,
        "no_mfa": SIGN_IN_WITHOUT_MFA,
        "failed_sign_ins": AUTHENTICATION_FAILURES,
        "tamper": TRAIL_CHANGES,
    }


@pytest.mark.parametrize(
    ("check", "pattern"),
    [
        ("cloudwatch_log_metric_filter_root_usage", ROOT_USAGE),
        ("cloudwatch_log_metric_filter_sign_in_without_mfa", SIGN_IN_WITHOUT_MFA),
        ("cloudwatch_log_metric_filter_authentication_failures", AUTHENTICATION_FAILURES),
    ],
)
def test_prowlers_checks_accept_them(check: str, pattern: str) -> None:
    assert prowler_checks.pattern_passes(pattern, prowler_checks.CHECKS[check])


def test_prowlers_checks_are_not_satisfied_by_anything() -> None:
    """The regexes really discriminate: a reordered root pattern or a pattern for another
    event fails (so the test above could fail)."""
    reordered = '{$.eventType !="AwsServiceEvent" && $.userIdentity.type="Root"}'
    assert not prowler_checks.pattern_passes(reordered, prowler_checks.ROOT_USAGE)
    for regexes in prowler_checks.CHECKS.values():
        assert not prowler_checks.pattern_passes('{ $.eventName = "CreateUser" }', regexes)
