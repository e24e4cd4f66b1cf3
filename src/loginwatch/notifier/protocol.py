"""What the CLI and the notifier agree on for test alerts.

``loginwatch test-alert`` sets the alarm to ALARM with a state reason built by
``marked_alarm_reason``; the notifier recognises it with ``find_test_id`` and posts
a labelled test message instead of querying the logs.
"""

from __future__ import annotations

import re

TEST_ALERT_MARKER = "loginwatch test-alert"
TEST_ID_PATTERN = r"[A-Za-z0-9-]+"

_TEST_ID_RE = re.compile(rf"\A{TEST_ID_PATTERN}\Z")
_MARKER_RE = re.compile(rf"{re.escape(TEST_ALERT_MARKER)} ({TEST_ID_PATTERN})")
_RULE_RE = re.compile(rf"{re.escape(TEST_ALERT_MARKER)} {TEST_ID_PATTERN} for rule ([a-z_]+)")


def marked_alarm_reason(test_id: str, rule: str | None = None) -> str:
    """The alarm StateReason that marks a test alert with ``test_id`` (and, for
    ``test-alert --rule``, the rule whose route it tests)."""
    if not _TEST_ID_RE.match(test_id):
        raise ValueError(f"test id {test_id!r} must match {TEST_ID_PATTERN}")
    if rule is not None and not re.fullmatch(r"[a-z_]+", rule):
        raise ValueError(f"rule {rule!r} is not a rule name")
    return f"{TEST_ALERT_MARKER} {test_id}" + (f" for rule {rule}" if rule else "")


def find_test_id(state_reason: str) -> str | None:
    """The test id if ``state_reason`` carries the test-alert marker, else None."""
    match = _MARKER_RE.search(state_reason)
    return match.group(1) if match else None


def find_test_rule(state_reason: str) -> str | None:
    """The rule a test alert is for, if it names one."""
    match = _RULE_RE.search(state_reason)
    return match.group(1) if match else None


# ---------------------------------------------------------------- fast path test events
# EventBridge reserves aws.* sources (PutEvents cannot send one), so `test-alert
# --via fast-path` sends an event of loginwatch's own that the rules also match.
TEST_EVENT_SOURCE = "loginwatch-test"
TEST_EVENT_DETAIL_TYPE = "loginwatch test sign-in"


def marked_event_detail(test_id: str, region: str, rule: str | None = None) -> dict[str, str]:
    """The detail of a fast-path test event: shaped like a sign-in, marked as a test."""
    if not _TEST_ID_RE.match(test_id):
        raise ValueError(f"test id {test_id!r} must match {TEST_ID_PATTERN}")
    detail = {"eventName": "ConsoleLogin", "loginwatchTestId": test_id, "awsRegion": region}
    if rule:
        detail["loginwatchTestRule"] = rule
    return detail


# ---------------------------------------------------------------- access-key test events
# `test-alert --rule access_key_outside_allowlist` / `--rule credentials_exposed` put an
# event of loginwatch's own source shaped like the real one (an API call from outside
# the allowlist, an AWS Health RISK event), so the rules forward it by the same pattern.
# The real events' detail types (EventBridge patterns, notifier paths and test events).
API_CALL_DETAIL_TYPE = "AWS API Call via CloudTrail"
HEALTH_DETAIL_TYPE = "AWS Health Event"
TEST_API_CALL_DETAIL_TYPE = API_CALL_DETAIL_TYPE
TEST_HEALTH_DETAIL_TYPE = HEALTH_DETAIL_TYPE
TEST_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"  # AWS's documentation example: no real key
# `test-alert --rule tamper`: a StopLogging of a trail by this name (no such trail is
# touched: the event is loginwatch's own, never CloudTrail's).
TEST_TRAIL_NAME = "loginwatch-test"

# The retry queue carries, besides failed invokes, the follow-up of an access key's
# window: a message of this shape, delayed until the window ends (paths/key_follow_up.py).
FOLLOW_UP_MARKER = "loginwatchFollowUp"


def marked_test_event(
    test_id: str, region: str, rule: str | None, source_ip: str, account: str = ""
) -> tuple[str, dict[str, object]]:
    """(detail-type, detail) of a fast-path test event for ``rule``: a sign-in for the
    sign-in rules, an API call from ``source_ip`` (an address outside the allowlist, which
    the caller picks, e.g. ``ipmatch.address_outside``) for access_key_outside_allowlist,
    an AWS Health RISK event for credentials_exposed, a CloudTrail ``StopLogging`` for
    tamper. Each carries loginwatchTestId and loginwatchTestRule: the notifier posts a
    labelled test, never an alert."""
    if not _TEST_ID_RE.match(test_id):
        raise ValueError(f"test id {test_id!r} must match {TEST_ID_PATTERN}")
    marks: dict[str, object] = {"loginwatchTestId": test_id}
    if rule:
        marks["loginwatchTestRule"] = rule
    # An IAM user's key, from outside the allowlist: what both API-call rules expect.
    caller = {
        "eventVersion": "1.10",
        "userIdentity": {
            "type": "IAMUser",
            "accountId": account,
            "arn": f"arn:aws:iam::{account}:user/loginwatch-test",
            "accessKeyId": TEST_ACCESS_KEY_ID,
            "userName": "loginwatch-test",
        },
    }
    if rule == "access_key_outside_allowlist":
        return TEST_API_CALL_DETAIL_TYPE, {
            **caller,
            "eventSource": "sts.amazonaws.com",
            "eventName": "GetCallerIdentity",
            "awsRegion": region,
            "sourceIPAddress": source_ip,
            "userAgent": "loginwatch test-alert",
            "eventID": test_id,
            "eventType": "AwsApiCall",
            "recipientAccountId": account,
            **marks,
        }
    if rule == "tamper":
        return TEST_API_CALL_DETAIL_TYPE, {
            **caller,
            "eventSource": "cloudtrail.amazonaws.com",
            "eventName": "StopLogging",
            "awsRegion": region,
            "sourceIPAddress": source_ip,
            "userAgent": "loginwatch test-alert",
            "requestParameters": {"name": TEST_TRAIL_NAME},
            "responseElements": None,
            "eventID": test_id,
            "readOnly": False,
            "eventType": "AwsApiCall",
            # As a console session's call: the access-key rule's patterns (which skip
            # console sessions) do not forward it too, so the test posts once.
            "sessionCredentialFromConsole": "true",
            "recipientAccountId": account,
            **marks,
        }
    if rule == "credentials_exposed":
        return TEST_HEALTH_DETAIL_TYPE, {
            "eventArn": f"arn:aws:health:global::event/RISK/LOGINWATCH_TEST/{test_id}",
            "service": "RISK",
            "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED",
            "eventTypeCategory": "issue",
            "affectedEntities": [{"entityValue": TEST_ACCESS_KEY_ID}],
            "eventDescription": [
                {"language": "en_US", "latestDescription": "loginwatch test-alert: no key."}
            ],
            "awsRegion": region,
            **marks,
        }
    return TEST_EVENT_DETAIL_TYPE, dict(marked_event_detail(test_id, region, rule))


# ---------------------------------------------------------------- the self-check
# EventBridge Scheduler invokes the notifier with this event; `loginwatch test-alert --via
# self-check` invokes it synchronously with ``"requested_by": "test-alert"`` added.
SELF_CHECK_EVENT = {"loginwatch": "self-check"}
SELF_CHECK_REQUESTED_BY = "test-alert"
# Each run publishes this metric (1: every check passed, 0: not), the second voice's
# alarm watches it (TreatMissingData: breaching: no run is as bad as a broken one).
HEARTBEAT_NAMESPACE = "Loginwatch"
HEARTBEAT_METRIC = "SelfCheckHealthy"
HEARTBEAT_DIMENSION = "Deployment"  # its value: the deployment's name (settings.name)
# The last run's verdict, in the claims table (``status`` reads checked_at and verdict).
SELF_CHECK_STATE_KEY = "self-check#state"


# ---------------------------------------------------------------- loginwatch's own calls
# Every boto3 client of the CLI says who it is in its user agent (botocore's
# user_agent_extra): the notifier shows loginwatch's own changes as maintenance. A user
# agent can be forged, so that never hides a change: it only changes how it is posted.
OWN_USER_AGENT_PREFIX = "loginwatch/"


def own_user_agent(version: str, command: str = "") -> str:
    """``loginwatch/0.1.0 (setup)``: what the CLI's clients add to their user agent."""
    return f"{OWN_USER_AGENT_PREFIX}{version}" + (f" ({command})" if command else "")


_OWN_RE = re.compile(rf"(?:^|\s){re.escape(OWN_USER_AGENT_PREFIX)}([0-9][^\s]*) \(([a-z-]+)\)")


def own_command(user_agent: str) -> str | None:
    """The loginwatch command a user agent names (``setup``, ``teardown``…), if any."""
    match = _OWN_RE.search(user_agent or "")
    return match.group(2) if match else None


# ---------------------------------------------------------------- the self-check
# What EventBridge Scheduler invokes the notifier with (resources/self_check.py); setup's
# first check and `test-alert --via self-check` add "requested_by".
SELF_CHECK_EVENT = {"loginwatch": "self-check"}
# The claims table's item holding the last check's state: `status` reads it.
SELF_CHECK_STATE_KEY = "self-check#state"
# The heartbeat each check publishes (1 healthy, 0 broken); the second voice's alarm
# watches it (missing data: breaching).
HEARTBEAT_NAMESPACE = "Loginwatch"
HEARTBEAT_METRIC = "SelfCheckHealthy"
HEARTBEAT_DIMENSION = "Deployment"
