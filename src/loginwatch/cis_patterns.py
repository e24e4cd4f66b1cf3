"""The CIS AWS Foundations filter patterns, character for character.

Security Hub's controls pass only with "the exact metric filters prescribed by
CIS … Additional fields or terms cannot be added", so these are copied from the
Security Hub user guide (cloudwatch-controls), not composed:

- CloudWatch.1, root user use (CIS 1.2 3.3, 1.4 4.3, 3.0 4.3);
- CloudWatch.3, console sign-in without MFA (CIS 1.2 3.2): Security Hub gives the
  variant CIS 1.4 and 3.0 (4.2) recommend "to reduce false positives in case
  Single Sign-On (SSO) is used": IAM users' successful sign-ins only;
- CloudWatch.6, console authentication failures (CIS 1.2 3.6, 1.4 4.6).

They over-count on purpose (any root API call; every failure): the notifier's
exact rules (notifier/rules.py) decide what is worth a message.
"""

from __future__ import annotations

ROOT_USAGE = (
    '{$.userIdentity.type="Root" && $.userIdentity.invokedBy NOT EXISTS '
    '&& $.eventType !="AwsServiceEvent"}'
)
SIGN_IN_WITHOUT_MFA = (
    '{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") '
    '&& ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }'
)
AUTHENTICATION_FAILURES = '{($.eventName=ConsoleLogin) && ($.errorMessage="Failed authentication")}'

# CloudWatch.5, CloudTrail configuration changes (CIS 1.2 3.5, 1.4 4.5, 3.0 4.5).
TRAIL_CHANGES = (
    "{($.eventName=CreateTrail) || ($.eventName=UpdateTrail) || ($.eventName=DeleteTrail) || "
    "($.eventName=StartLogging) || ($.eventName=StopLogging)}"
)

# Rule → its CIS pattern (outside_allowlist's is compiled from the allowlist).
RULE_PATTERNS = {
    "root_sign_in": ROOT_USAGE,
    "no_mfa": SIGN_IN_WITHOUT_MFA,
    "failed_sign_ins": AUTHENTICATION_FAILURES,
    "tamper": TRAIL_CHANGES,
}
