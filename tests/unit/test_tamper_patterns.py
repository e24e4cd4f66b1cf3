"""The tamper rule's patterns, with real-shaped CloudTrail events and a matcher faithful to
Event Ruler: every watched change to loginwatch's resource matches (by name and by ARN),
the same change to another resource does not, trail changes always do; the notifier's
decision (notifier/tamper.parse_tamper) agrees with the patterns on every event."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from loginwatch import cis_patterns
from loginwatch.names import Names
from loginwatch.notifier import tamper
from loginwatch.notifier.protocol import TEST_EVENT_SOURCE
from loginwatch.tamper_patterns import (
    CIS_TRAIL_CHANGES,
    own_for,
    own_resources_filter,
    pattern_json,
    tamper_patterns,
)
from tests.conftest import load_fixture
from tests.support.event_ruler import matches

ACCOUNT = "111122223333"
NAMES = Names(name="lwtest", region="us-east-1", account=ACCOUNT, partition="aws")
PATTERNS = tamper_patterns(NAMES)
OWN = own_for(NAMES)
FN = "lwtest-notifier"
FN_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{FN}"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:lwtest-alerts"
OTHER_TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:billing-alerts"
SUBSCRIPTION = f"{TOPIC}:0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
QUEUE = f"https://sqs.eu-west-1.amazonaws.com/{ACCOUNT}/lwtest-events-undelivered"
TABLE_ARN = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/lwtest-claims"
PARAMETER_ARN = f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/lwtest/slack-webhook-url"

# (eventSource, eventName as CloudTrail records it, requestParameters naming loginwatch's
# resource, … naming another one or None when the call is watched whatever it names).
Case = tuple[str, str, dict[str, Any], dict[str, Any] | None]
CASES: list[Case] = [
    (
        "cloudtrail",
        "StopLogging",
        {"name": f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/x"},
        None,
    ),
    ("cloudtrail", "DeleteTrail", {"name": "any-trail"}, None),
    ("cloudtrail", "UpdateTrail", {"name": "org-trail", "cloudWatchLogsLogGroupArn": ""}, None),
    ("cloudtrail", "PutEventSelectors", {"trailName": "org-trail"}, None),
    ("organizations", "LeaveOrganization", {}, None),
    ("events", "DeleteRule", {"name": "lwtest-console-sign-in"}, {"name": "ci-nightly"}),
    ("events", "DisableRule", {"name": "lwtest-key-api-calls-1"}, {"name": "ci-nightly"}),
    ("events", "PutRule", {"name": "lwtest-tamper-1", "state": "DISABLED"}, {"name": "other"}),
    ("events", "RemoveTargets", {"rule": "lwtest-key-exposed", "ids": ["1"]}, {"rule": "x"}),
    ("events", "PutTargets", {"rule": "lwtest-console-sign-in"}, {"rule": "lwtestx-rule"}),
    ("lambda", "DeleteFunction20150331", {"functionName": FN}, {"functionName": "billing"}),
    (
        "lambda",
        "PutFunctionConcurrency20171031",
        {"functionName": FN_ARN, "reservedConcurrentExecutions": 0},
        {"functionName": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{FN}-copy"},
    ),
    ("lambda", "UpdateFunctionCode20150331v2", {"functionName": FN}, {"functionName": "x"}),
    (
        "lambda",
        "UpdateFunctionConfiguration20150331v2",
        {"functionName": f"{ACCOUNT}:function:{FN}"},
        {"functionName": f"{ACCOUNT}:function:billing"},
    ),
    (
        "lambda",
        "RemovePermission20150331v2",
        {"functionName": FN, "statementId": "lwtest-sns-invoke"},
        {"functionName": "billing", "statementId": "lwtest-sns-invoke"},
    ),
    (
        "monitoring",
        "DeleteAlarms",
        {"alarmNames": ["cpu-high", "lwtest-unallowed-console-login"]},
        {"alarmNames": ["cpu-high"]},
    ),
    (
        "monitoring",
        "DisableAlarmActions",
        {"alarmNames": ["lwtest-cis-trail-changes"]},
        {"alarmNames": ["disk-full"]},
    ),
    ("monitoring", "PutMetricAlarm", {"alarmName": "lwtest-cis-root-usage"}, {"alarmName": "x"}),
    ("logs", "DeleteLogGroup", {"logGroupName": "/lwtest/cloudtrail"}, {"logGroupName": "/app"}),
    (
        "logs",
        "PutRetentionPolicy",
        {"logGroupName": f"/aws/lambda/{FN}", "retentionInDays": 1},
        {"logGroupName": "/aws/lambda/billing", "retentionInDays": 1},
    ),
    (
        "logs",
        "DeleteMetricFilter",
        {"logGroupName": "/lwtest/cloudtrail", "filterName": "lwtest-unallowed-console-login"},
        {"logGroupName": "/lwtest/cloudtrail", "filterName": "someone-elses-filter"},
    ),
    (
        "logs",
        "PutMetricFilter",
        {"logGroupName": "/lwtest/cloudtrail", "filterName": "lwtest-cis-root-usage"},
        {"logGroupName": "/app", "filterName": "lwtest-cis-root-usage"},
    ),
    ("sns", "DeleteTopic", {"topicArn": TOPIC}, {"topicArn": OTHER_TOPIC}),
    (
        "sns",
        "SetTopicAttributes",
        {"topicArn": TOPIC, "attributeName": "Policy"},
        {"topicArn": OTHER_TOPIC, "attributeName": "Policy"},
    ),
    (
        "sns",
        "Unsubscribe",
        {"subscriptionArn": SUBSCRIPTION},
        {"subscriptionArn": f"{OTHER_TOPIC}:1"},
    ),
    (
        "sns",
        "SetSubscriptionAttributes",
        {"subscriptionArn": SUBSCRIPTION, "attributeName": "FilterPolicy"},
        {"subscriptionArn": f"{OTHER_TOPIC}:1", "attributeName": "FilterPolicy"},
    ),
    ("ssm", "DeleteParameter", {"name": "/lwtest/slack-webhook-url"}, {"name": "/app/db-url"}),
    (
        "ssm",
        "PutParameter",
        {"name": "/lwtest/slack-destinations/oncall", "type": "SecureString", "overwrite": True},
        {"name": "/lwtestx/slack-webhook-url", "type": "SecureString"},
    ),
    (
        "ssm",
        "DeleteParameters",
        {"names": ["/app/a", "/lwtest/slack-webhook-url"]},
        {"names": ["/a"]},
    ),
    ("dynamodb", "DeleteTable", {"tableName": "lwtest-claims"}, {"tableName": "orders"}),
    (
        "scheduler",
        "UpdateSchedule",
        {"name": "lwtest-self-check", "groupName": "default", "state": "DISABLED"},
        {"name": "nightly-report", "groupName": "default", "state": "DISABLED"},
    ),
    ("scheduler", "DeleteSchedule", {"name": "lwtest-self-check"}, {"name": "nightly-report"}),
    ("sqs", "DeleteQueue", {"queueUrl": QUEUE}, {"queueUrl": QUEUE.replace("lwtest-", "jobs-")}),
    ("sqs", "PurgeQueue", {"queueUrl": QUEUE}, {"queueUrl": QUEUE.replace("lwtest-", "jobs-")}),
    *[
        ("iam", call, {"roleName": "lwtest-notifier"}, {"roleName": "AdminRole"})
        for call in tamper._IAM_ROLE_CALLS
    ],
    (
        "cloudformation",
        "DeleteStackSet",
        {"stackSetName": "lwtest-member-forwarding"},
        {"stackSetName": "guardrails"},
    ),
    (
        "cloudformation",
        "DeleteStackInstances",
        {"stackSetName": "lwtest-member-forwarding:8f1e…", "retainStacks": False},
        {"stackSetName": "guardrails", "retainStacks": False},
    ),
    (
        "cloudformation",
        "UpdateStackSet",
        {"stackSetName": "lwtest-member-forwarding"},
        {"stackSetName": "x"},
    ),
]
# Other ways to name loginwatch's resource, each a change the same call could make.
BY_ARN: list[tuple[str, str, dict[str, Any]]] = [
    ("lambda", "DeleteFunction20150331", {"functionName": FN_ARN}),
    ("lambda", "DeleteFunction20150331", {"functionName": f"{ACCOUNT}:function:{FN}"}),
    ("lambda", "DeleteFunction20150331", {"functionName": f"{ACCOUNT}:{FN}"}),
    ("lambda", "DeleteFunction20150331", {"functionName": f"{FN}:1"}),
    ("lambda", "DeleteFunction20150331", {"functionName": f"{FN_ARN}:$LATEST"}),
    ("lambda", "DeleteFunction20150331", {"functionName": f"{ACCOUNT}:function:{FN}:live"}),
    ("lambda", "DeleteFunction", {"functionName": FN}),  # recorded without a version
    ("dynamodb", "DeleteTable", {"tableName": TABLE_ARN}),
    ("ssm", "DeleteParameter", {"name": PARAMETER_ARN}),
    ("ssm", "PutParameter", {"name": PARAMETER_ARN, "overwrite": True}),
    (
        "sqs",
        "DeleteQueue",
        {"queueUrl": f"https://queue.amazonaws.com/{ACCOUNT}/lwtest-notifier-retry"},
    ),
    ("iam", "DeleteRolePolicy", {"roleName": "LWTEST-NOTIFIER"}),  # IAM names ignore case
]
# Look-alikes: watched names on other calls, or another function's version.
NOT_WATCHED: list[tuple[str, str, dict[str, Any]]] = [
    ("lambda", "DeleteFunctionConcurrency20171031", {"functionName": FN}),
    ("lambda", "GetFunction20150331v2", {"functionName": FN}),
    ("lambda", "DeleteFunction20150331", {"functionName": f"{FN}x"}),
    ("lambda", "DeleteFunction20150331", {"functionName": f"x{FN}"}),
    ("events", "DescribeRule", {"name": "lwtest-console-sign-in"}),
    ("dynamodb", "DeleteTable", {"tableName": "lwtest-claims-old"}),
    ("iam", "GetRole", {"roleName": "lwtest-notifier"}),
    ("ssm", "GetParameter", {"name": "/lwtest/slack-webhook-url"}),
    ("timestream", "DeleteTable", {"tableName": "lwtest-claims"}),
]


def api_event(service: str, name: str, request: dict[str, Any], **detail: Any) -> dict[str, Any]:
    """The StopLogging fixture turned into another call."""
    event = copy.deepcopy(load_fixture("eventbridge/api_call_stoplogging.json"))
    event["source"] = f"aws.{service}"
    record = event["detail"]
    record.update(eventSource=f"{service}.amazonaws.com", eventName=name, requestParameters=request)
    record.update(detail)
    return event


def forwarded(event: dict[str, Any]) -> bool:
    return any(matches(p, event) for p in PATTERNS)


def decided(event: dict[str, Any]) -> bool:
    return tamper.parse_tamper(event["detail"], OWN) is not None


@pytest.mark.parametrize(("service", "name", "ours", "theirs"), CASES, ids=[c[1] for c in CASES])
def test_a_change_to_loginwatchs_resource_matches_and_anothers_does_not(
    service: str, name: str, ours: dict[str, Any], theirs: dict[str, Any] | None
) -> None:
    event = api_event(service, name, ours)
    assert forwarded(event)
    assert decided(event)  # the notifier agrees: it is loginwatch's
    if theirs is not None:
        other = api_event(service, name, theirs)
        assert not forwarded(other)
        assert not decided(other)


@pytest.mark.parametrize(("service", "name", "request_"), BY_ARN, ids=lambda v: str(v)[:40])
def test_every_way_of_naming_the_resource_matches(
    service: str, name: str, request_: dict[str, Any]
) -> None:
    event = api_event(service, name, request_)
    assert forwarded(event)
    assert decided(event)


@pytest.mark.parametrize(("service", "name", "request_"), NOT_WATCHED, ids=lambda v: str(v)[:40])
def test_look_alikes_are_not_tamper_events(
    service: str, name: str, request_: dict[str, Any]
) -> None:
    event = api_event(service, name, request_)
    assert not decided(event)
    if service != "lambda" or "Delete" not in name or "Concurrency" in name:
        assert not forwarded(event)


def test_every_watched_call_has_a_case() -> None:
    covered = {
        (f"{s}.amazonaws.com", tamper.call_name(f"{s}.amazonaws.com", n)) for s, n, _, _ in CASES
    }
    watched = {(w.service, call) for w in tamper.WATCHES for call in w.calls}
    assert watched == covered


def test_trail_changes_match_whatever_trail_and_whoever() -> None:
    for name in ("StopLogging", "DeleteTrail", "UpdateTrail"):
        event = api_event("cloudtrail", name, {"name": "someone-elses-trail"})
        assert forwarded(event)
    assert forwarded(api_event("cloudtrail", "StartLogging", {"name": "t"})) is False


def test_a_reused_trails_log_group_is_watched() -> None:
    reused = tamper_patterns(NAMES, "/org/cloudtrail")
    event = api_event("logs", "DeleteLogGroup", {"logGroupName": "/org/cloudtrail"})
    assert any(matches(p, event) for p in reused)
    assert not forwarded(event)  # not with the default log group


def test_the_test_event_source_matches_too_and_other_sources_do_not() -> None:
    event = api_event("cloudtrail", "StopLogging", {"name": "loginwatch-test"})
    event["source"] = TEST_EVENT_SOURCE
    assert forwarded(event)
    event["source"] = "custom.app"
    assert not forwarded(event)
    event["source"] = "aws.cloudtrail"
    event["detail-type"] = "AWS Console Sign In via CloudTrail"
    assert not forwarded(event)


@pytest.mark.parametrize("name", ["lw", "lwtest", "loginwatch", "a" * 24])
def test_patterns_fit_the_quota_in_as_few_rules_as_it_takes(name: str) -> None:
    names = Names(name=name, region="ap-southeast-2", account=ACCOUNT, partition="aws-cn")
    patterns = tamper_patterns(names, "/aws/cloudtrail/" + "g" * 100)
    # Two rules for a short name; the longest name and a long log group take a third.
    assert 1 <= len(patterns) <= (2 if len(name) <= 10 else 3)
    for pattern in patterns:
        assert len(pattern_json(pattern)) <= 2048
        matches(pattern, {})  # valid for the matcher (raises where AWS would refuse)


def test_cis_trail_changes_is_security_hubs_cloudwatch_5_exactly() -> None:
    # awsdocs/aws-security-hub-user-guide, doc_source/cloudwatch-controls.md, CloudWatch.5.
    guide = (
        "{($.eventName=CreateTrail) || ($.eventName=UpdateTrail) || ($.eventName=DeleteTrail) "
        "|| ($.eventName=StartLogging) || ($.eventName=StopLogging)}"
    )
    assert CIS_TRAIL_CHANGES == guide == cis_patterns.TRAIL_CHANGES
    assert guide == tamper.TRAIL_CHANGES_FILTER  # the notifier's copy, for its log reading


@pytest.mark.parametrize("name", ["lw", "lwtest", "a" * 24])
def test_own_resources_filter_fits_and_names_loginwatchs_resources(name: str) -> None:
    names = Names(name=name, region="us-east-1", account=ACCOUNT, partition="aws")
    for group in (None, "/aws/cloudtrail/" + "g" * 200):
        pattern = own_resources_filter(names, group)
        assert len(pattern) <= 1024
        assert pattern.startswith("{$.readOnly IS FALSE && (") and pattern.endswith(")}")
        assert f'$.requestParameters.functionName="*{name}-notifier*"' in pattern
        assert f'$.requestParameters.roleName="{name}-*"' in pattern
        assert '$.eventName="PutEventSelectors"' in pattern
        assert pattern.count("(") == pattern.count(")")
    assert tamper.log_filters(own_for(NAMES))[1] == own_resources_filter(NAMES)


def test_own_matches_the_names_the_cli_gives_its_resources() -> None:
    assert OWN.function == NAMES.function
    assert OWN.claims_table == NAMES.claims_table
    assert OWN.notifier_log_group == NAMES.notifier_log_group
    assert OWN.log_groups == (NAMES.trail_log_group, NAMES.notifier_log_group)
    assert NAMES.parameter.startswith(OWN.parameter_path)
    assert NAMES.destination_parameter("x").startswith(OWN.parameter_path)
    for named in (
        NAMES.sign_in_rule,
        NAMES.api_call_rule(0),
        NAMES.key_exposed_rule,
        NAMES.topic,
        NAMES.retry_queue,
        NAMES.final_queue,
        NAMES.events_dead_letter_queue,
        NAMES.notifier_role,
        NAMES.trail_role,
        NAMES.forwarding_role,
        NAMES.stack_set,
        NAMES.alarm,
        NAMES.rule_filter("root_sign_in"),
    ):
        assert named.startswith(OWN.prefix), named


def test_lambda_version_suffixes_come_off() -> None:
    source = "lambda.amazonaws.com"
    assert tamper.call_name(source, "DeleteFunction20150331") == "DeleteFunction"
    assert tamper.call_name(source, "UpdateFunctionCode20150331v2") == "UpdateFunctionCode"
    assert tamper.call_name(source, "PutFunctionConcurrency20171031") == "PutFunctionConcurrency"
    assert tamper.call_name("sns.amazonaws.com", "DeleteTopic") == "DeleteTopic"
