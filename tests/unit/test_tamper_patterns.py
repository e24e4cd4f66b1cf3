"""The tamper rule's patterns, with real-shaped CloudTrail events and a matcher faithful to
Event Ruler: every watched change to loginwatch's resource matches (by name and by ARN),
the same change to another resource does not, trail changes always do; the notifier's
decision (notifier/tamper.parse_tamper) agrees with the patterns on every event."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from loginwatch import cis_patterns
from loginwatch.errors import UsageError
from loginwatch.names import Names
from loginwatch.notifier import tamper
from loginwatch.notifier.protocol import TEST_EVENT_SOURCE
from loginwatch.tamper_patterns import (
    CIS_TRAIL_CHANGES,
    member_tamper_patterns,
    own_for,
    own_resources_filter,
    pattern_json,
    tamper_patterns,
)
from tests.conftest import load_fixture
from tests.support.event_ruler import matches
from tests.support.logs_filter import counts

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
STACK_UUID = "2f1e0d9c-8b7a-4c6d-9e5f-4a3b2c1d0e9f"
MEMBER = "444455556666"

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
    # A member account's stack of the StackSet (StackSet-<StackSet name>-<uuid>).
    (
        "cloudformation",
        "DeleteStack",
        {"stackName": f"StackSet-lwtest-member-forwarding-{STACK_UUID}"},
        {"stackName": f"StackSet-guardrails-{STACK_UUID}"},
    ),
    (
        "cloudformation",
        "UpdateStack",
        {"stackName": f"StackSet-lwtest-member-forwarding-{STACK_UUID}"},
        {"stackName": "lwtest-member-forwarding"},  # not how StackSets name a stack
    ),
    (
        "cloudformation",
        "ExecuteChangeSet",
        {"changeSetName": "c1", "stackName": f"StackSet-lwtest-member-forwarding-{STACK_UUID}"},
        {"changeSetName": "c1", "stackName": "app"},
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
    (
        "cloudformation",
        "DeleteStack",
        {
            "stackName": f"arn:aws:cloudformation:eu-west-1:{MEMBER}:stack/"
            f"StackSet-lwtest-member-forwarding-{STACK_UUID}/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"
        },
    ),
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
    assert OWN.stack_set == NAMES.stack_set
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
        NAMES.member_forwarding_role("ap-southeast-2"),
        NAMES.tamper_rule(0),
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


# ---------------------------------------------------------------- organization mode

HOME = Names(name="loginwatch", region="us-east-1", account=ACCOUNT, partition="aws")
# Organization mode: the notifier's too (setup writes the home account in its settings).
HOME_OWN = own_for(HOME, organization=True)
REGIONAL, US_EAST_1 = member_tamper_patterns(HOME)


def member_event(fixture: str, **detail: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_fixture(f"eventbridge/{fixture}.json"))
    event["detail"].update(detail)
    return event


def admin_delete_rule(**detail: Any) -> dict[str, Any]:
    """A member account's admin deletes its forwarding rule (forwarded as it was)."""
    return member_event("api_call_member_deleterule", **detail)


def on_member_rule(patterns: list[dict[str, Any]], event: dict[str, Any]) -> bool:
    return any(matches(p, event) for p in patterns)


def test_a_member_admins_delete_rule_is_forwarded_home_and_critical() -> None:
    event = admin_delete_rule()
    assert on_member_rule(REGIONAL, event)  # the member's own tamper rule forwards it
    assert not on_member_rule(US_EAST_1, event)
    # Forwarded to the home bus it keeps its account; the home tamper rule takes it.
    assert event["account"] == MEMBER
    assert on_member_rule(tamper_patterns(HOME), event)
    change = tamper.parse_tamper(event["detail"], HOME_OWN)
    assert change is not None and change.member and not change.maintenance
    assert change.account_id == MEMBER and change.principal == "MemberAdmin/bob"
    assert change.resources == ("loginwatch-console-sign-in",)


def test_the_same_call_on_another_rule_is_not_forwarded() -> None:
    event = admin_delete_rule(requestParameters={"name": "nightly-backup"})
    assert not on_member_rule(REGIONAL + US_EAST_1, event)
    assert tamper.parse_tamper(event["detail"], HOME_OWN) is None


def test_a_members_forwarding_role_and_leaving_the_organization_are_watched_in_us_east_1() -> None:
    role = HOME.member_forwarding_role("eu-west-1")
    iam = admin_delete_rule(
        eventSource="iam.amazonaws.com",
        eventName="DeleteRolePolicy",
        awsRegion="us-east-1",
        requestParameters={"roleName": role, "policyName": "PutEventsOnTheCentralBus"},
    )
    iam["source"] = "aws.iam"
    leave = admin_delete_rule(
        eventSource="organizations.amazonaws.com", eventName="LeaveOrganization"
    )
    leave["source"] = "aws.organizations"
    for event in (iam, leave):
        assert on_member_rule(US_EAST_1, event) and not on_member_rule(REGIONAL, event)
        assert on_member_rule(tamper_patterns(HOME), event)
        change = tamper.parse_tamper(event["detail"], HOME_OWN)
        assert change is not None and change.member and not change.maintenance
    other_role = copy.deepcopy(iam)
    other_role["detail"]["requestParameters"]["roleName"] = "OrganizationAccountAccessRole"
    assert not on_member_rule(US_EAST_1, other_role)


def test_member_patterns_come_from_the_one_list_of_watches() -> None:
    """Every call a member watch names reaches a member rule; no home-only watch does."""
    samples = {
        "events": {"name": "loginwatch-tamper-1", "rule": "loginwatch-tamper-1"},
        "iam": {"roleName": "loginwatch-member-forward-eu-west-1"},
        "organizations": {},
        "cloudformation": {"stackName": f"StackSet-loginwatch-member-forwarding-{STACK_UUID}"},
    }
    member_calls = {(w.service, c) for w in tamper.member_watches() for c in w.calls}
    for watch in tamper.WATCHES:
        service = watch.service.split(".")[0]
        for call in watch.calls:
            request = samples.get(service, {"name": "loginwatch-x", "functionName": FN})
            event = api_event(service, call, dict(request))
            hit = on_member_rule(REGIONAL + US_EAST_1, event)
            assert hit == ((watch.service, call) in member_calls), (service, call)


@pytest.mark.parametrize("name", ["lw", "a" * 24])
def test_member_patterns_are_valid_and_few(name: str) -> None:
    names = Names(name=name, region="eu-west-1", account=ACCOUNT, partition="aws")
    regional, global_ = member_tamper_patterns(names)
    assert (len(regional), len(global_)) == (1, 1)
    for pattern in regional + global_:
        assert len(pattern_json(pattern)) <= 2048
        matches(pattern, {})  # valid for the matcher (raises where AWS would refuse)


def test_a_stack_set_execution_in_a_member_is_maintenance_and_nothing_else_is() -> None:
    record = load_fixture("eventbridge/api_call_member_stackset_putrule.json")["detail"]
    change = tamper.parse_tamper(record, HOME_OWN)
    assert change is not None and change.member
    assert change.command == tamper.STACK_SET_COMMAND and change.maintenance
    # One run per member account, whatever session StackSets took.
    assert change.run_arn.endswith(":assumed-role/stacksets-exec-899a82a2cb437e970934262f85c7628a")
    # A role of that name in another account (a session acting across accounts) is not it.
    forged = copy.deepcopy(record)
    forged["userIdentity"]["arn"] = forged["userIdentity"]["arn"].replace(MEMBER, "999988887777")
    assert not tamper.parse_tamper(forged, HOME_OWN).maintenance  # type: ignore[union-attr]
    # A member admin's user agent saying loginwatch's setup marks nothing there.
    admin = load_fixture("eventbridge/api_call_putrule_setup.json")["detail"]
    admin = {**admin, "recipientAccountId": MEMBER}
    faked = tamper.parse_tamper(admin, HOME_OWN)
    assert faked is not None and faked.member and not faked.maintenance
    # In the home account the user agent still marks setup; a stacksets-exec session does
    # not (StackSets never deploy to the management account).
    setup = load_fixture("eventbridge/api_call_putrule_setup.json")["detail"]
    assert tamper.parse_tamper(setup, HOME_OWN).maintenance  # type: ignore[union-attr]
    at_home = {**record, "recipientAccountId": ACCOUNT}
    at_home["userIdentity"] = {
        **record["userIdentity"],
        "arn": record["userIdentity"]["arn"].replace(MEMBER, ACCOUNT),
    }
    assert not tamper.parse_tamper(at_home, HOME_OWN).maintenance  # type: ignore[union-attr]
    # A StackSet's execution never calls DisableRule: critical even from that role.
    disable = {**record, "eventName": "DisableRule"}
    assert not tamper.parse_tamper(disable, HOME_OWN).maintenance  # type: ignore[union-attr]


# ---------------------------------------------------------------- the backstop's filter


@pytest.mark.parametrize("missing_unequal", [False, True])
def test_the_backstop_no_longer_counts_a_members_stack_set_deployment(
    missing_unequal: bool,
) -> None:
    """The organization trail's log group holds every member's records: the StackSet's
    own PutRule there is not counted; a member admin's DeleteRule, and the same PutRule by
    anyone else, are. Whichever way CloudWatch Logs reads ``!=`` on a missing field."""
    own_filter = own_resources_filter(HOME, organization=True)
    stack_set = load_fixture("eventbridge/api_call_member_stackset_putrule.json")["detail"]
    assert not counts(own_filter, stack_set, missing_unequal=missing_unequal)
    admin = load_fixture("eventbridge/api_call_member_deleterule.json")["detail"]
    assert counts(own_filter, admin, missing_unequal=missing_unequal)
    by_admin = {**stack_set, "userIdentity": admin["userIdentity"]}
    assert counts(own_filter, by_admin, missing_unequal=missing_unequal)
    # An AWS service's own call has no arn: still counted.
    by_service = {**stack_set, "userIdentity": {"type": "AWSService", "invokedBy": "x.aws"}}
    assert counts(own_filter, by_service, missing_unequal=missing_unequal)
    # Without organization mode there are no members and no StackSet: a session of a
    # role named like its execution role is anyone's, and counted.
    assert counts(own_resources_filter(HOME), stack_set, missing_unequal=missing_unequal)


@pytest.mark.parametrize("missing_unequal", [False, True])
@pytest.mark.parametrize(("service", "name", "ours", "theirs"), CASES, ids=[c[1] for c in CASES])
def test_the_backstop_counts_each_change_and_not_the_stack_sets_own(
    service: str,
    name: str,
    ours: dict[str, Any],
    theirs: dict[str, Any] | None,
    missing_unequal: bool,
) -> None:
    record = api_event(service, name, ours)["detail"]
    own = own_for(NAMES, organization=True)
    listed_later = any(
        isinstance(v, list) and not tamper.owns(kind, v[0], own)
        for f, kind in tamper.watch_for(record["eventSource"], name).fields  # type: ignore[union-attr]
        for v in [ours.get(f)]
    )
    counted = [counts(f, record, missing_unequal=missing_unequal) for f in tamper.log_filters(own)]
    if not listed_later:  # a filter reads a list's first element only
        assert any(counted), name
    # The StackSet's execution in a member account: the same call, never counted by the
    # organization's own-resources filter (CloudWatch.5's counts trail changes by anyone).
    stack_set = load_fixture("eventbridge/api_call_member_stackset_putrule.json")["detail"]
    by_stack_set = {**record, "userIdentity": stack_set["userIdentity"]}
    by_stack_set["recipientAccountId"] = stack_set["recipientAccountId"]
    in_org = own_resources_filter(NAMES, organization=True)
    assert not counts(in_org, by_stack_set, missing_unequal=missing_unequal)
    # The same session's name at home, or without organization mode, is nobody's
    # deployment (StackSets never deploy to the home account): counted as anyone's is.
    at_home = {**by_stack_set, "recipientAccountId": ACCOUNT}
    alone = own_resources_filter(NAMES)
    for pattern, change in ((in_org, at_home), (alone, by_stack_set)):
        expected = counts(pattern, record, missing_unequal=missing_unequal)
        assert counts(pattern, change, missing_unequal=missing_unequal) == expected, name


def test_the_alarm_path_reads_with_the_filter_setup_wrote() -> None:
    """The notifier rebuilds the filter from its own names (its account from its ARN, or
    none): the same text as the CLI's, so the window it reads is what the alarm counted."""

    for organization in (False, True):
        cli_side = own_resources_filter(HOME, organization=organization)
        # The notifier's names: settings.name and trail_log_group, and in organization
        # mode settings.organization_home (no region or partition).
        notifier_side = tamper.Own(
            HOME.name,
            HOME.trail_log_group,
            account=ACCOUNT if organization else "",
            organization=organization,
        )
        assert tamper.log_filters(notifier_side) == (CIS_TRAIL_CHANGES, cli_side)


def test_a_members_own_trails_and_other_resources_are_not_loginwatchs() -> None:
    """The organization trail's log group holds the members' records, and a member's own
    trail changes there are the member's business (the organization trail can be changed
    from the management account only, where it is watched): only the in_members watches
    are loginwatch's in a member account."""
    selectors = {"trailName": "team-data-events", "eventSelectors": []}
    for service, name, request in (
        ("cloudtrail", "PutEventSelectors", selectors),
        ("cloudtrail", "StopLogging", {"name": "team-trail"}),
        ("lambda", "DeleteFunction20150331", {"functionName": "loginwatch-notifier"}),
    ):
        at_home = api_event(service, name, request, recipientAccountId=ACCOUNT)["detail"]
        assert tamper.parse_tamper(at_home, HOME_OWN) is not None, name
        in_member = api_event(service, name, request, recipientAccountId=MEMBER)["detail"]
        assert tamper.parse_tamper(in_member, HOME_OWN) is None, name
    # What can silence a member's forwarding still counts there.
    rule = api_event(
        "events", "DeleteRule", {"name": "loginwatch-tamper-1"}, recipientAccountId=MEMBER
    )
    change = tamper.parse_tamper(rule["detail"], HOME_OWN)
    assert change is not None and change.member and not change.maintenance


def test_a_name_and_log_group_too_long_for_any_filter_are_a_config_error() -> None:
    """A reused trail's log group may have 512 characters: with the longest name in
    organization mode no filter fits, and setup says what to change (no traceback)."""
    names = Names(name="a" * 24, region="us-east-1", account=ACCOUNT, partition="aws")
    group = "/reused/" + "g" * 300
    with pytest.raises(UsageError) as refused:
        own_resources_filter(names, group, organization=True)
    assert "more than CloudWatch Logs' 1024" in str(refused.value)
    assert "shorter `name`" in " ".join(refused.value.lines())
    assert len(own_resources_filter(names, group)) <= 1024  # alone, it still fits
