"""The notifier's role allows exactly what the notifier calls: each path is run for real
(moto, a Slack stand-in, Stubber where moto lacks an API), every AWS call it makes is
recorded, and the role's policy, built from the calls each module declares, is held
against them both ways."""

from __future__ import annotations

import fnmatch
from datetime import timedelta
from typing import Any

import pytest

from loginwatch.attached_policies import notifier_role_policy
from loginwatch.demo.webhook_catcher import SlackReply
from loginwatch.names import Names
from loginwatch.notifier import calls, handler
from loginwatch.operator_policy import iam_actions
from tests.conftest import load_fixture
from tests.notifier.conftest import (
    ACCOUNT_ID,
    CLAIMS_TABLE,
    LOG_GROUP,
    REGION,
    RETRY_QUEUE,
    WEBHOOK_PARAMETER,
    AlarmHistory,
    NotifierWorld,
    alarm_event,
    cloudtrail_record,
    history_item,
    iso,
)
from tests.notifier.test_access_keys import KEY_RULES, api_event
from tests.notifier.test_fast_path import eventbridge_event
from tests.notifier.test_organization import member_sign_in
from tests.notifier.test_redelivery import RetryQueue
from tests.notifier.test_rules_delivery import RULES
from tests.notifier.test_self_check import Account, every_self_check_call
from tests.notifier.test_self_check import account as account

NAMES = Names(name="loginwatch", region=REGION, account=ACCOUNT_ID, partition="aws")
MANAGEMENT, ORG_ID = ACCOUNT_ID, "o-exampleorgid"

# What each recorded call acted on, as an ARN (the tests' settings use these names).
TOUCHED = {
    "ssm": f"arn:aws:ssm:{REGION}:{ACCOUNT_ID}:parameter{WEBHOOK_PARAMETER}",
    "logs": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{LOG_GROUP}:*",
    "cloudwatch": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:loginwatch-unallowed-console-login",
    "dynamodb": f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{CLAIMS_TABLE}",
    "sqs": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{RETRY_QUEUE}",
    # The self-check's: the trail, a rule of another region, the topic, the function.
    "cloudtrail": f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:trail/loginwatch-trail",
    "events": f"arn:aws:events:eu-west-1:{ACCOUNT_ID}:rule/loginwatch-console-sign-in",
    "sns": f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:loginwatch-alerts",
    "lambda": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:loginwatch-notifier",
}


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _granted(policy: dict[str, Any], action: str, arn: str) -> bool:
    return any(
        action in _as_list(s["Action"])
        and any(fnmatch.fnmatchcase(arn, r) for r in _as_list(s["Resource"]))
        for s in policy["Statement"]
    )


@pytest.fixture
def every_path(
    world: NotifierWorld,
    use_settings: Any,
    production: str,
    client_counter: Any,
    alarm_history: AlarmHistory,  # after client_counter: its client is counted too
    account: Account,
) -> set[tuple[str, str]]:
    """Run every path once, the ways that reach each of its AWS calls; the calls made."""
    use_settings(rules=[*RULES, *KEY_RULES[1:]], account_names=True)
    queue = RetryQueue()
    # Fast path: a member account's sign-in (its name is looked up), with failure windows.
    assert handler.lambda_handler(member_sign_in(world, production), None)["outcome"] == "posted"
    for n in range(3):  # a burst of failures, reported once
        failure, _ = eventbridge_event(world, "failure", seconds_ago=30 - n, eventID=f"f-{n}")
        handler.lambda_handler(failure, None)
    # Alarm path, ALARM: the trail's log group; a failed post releases its claims.
    moment = world.now - timedelta(minutes=3)
    world.trail.put((moment, cloudtrail_record("root", eventTime=iso(moment))))
    world.slack.script(SlackReply(404, "no_service"))
    with pytest.raises(handler.SlackDeliveryError):
        handler.lambda_handler(alarm_event(state_change_time=world.now), None)
    # Alarm path, ALARM → OK: the alarm's history.
    ok_at = world.now + timedelta(minutes=5)
    alarm_history.answer(ok_at, history_item(world.now, "ALARM"))
    handler.lambda_handler(
        alarm_event(state="OK", OldStateValue="ALARM", state_change_time=ok_at), None
    )
    # Access keys: a call from outside opens its window (its follow-up scheduled on the
    # retry queue); AWS Health says a key is exposed.
    key_call = api_event(world.now.replace(microsecond=0) - timedelta(seconds=5), "key-call")
    assert handler.lambda_handler(key_call, None)["outcome"] == "posted"
    health = load_fixture("eventbridge/health_risk_credentials_exposed.json")
    assert handler.lambda_handler(health, None)["outcome"] == "posted"
    # Retry batch: a record that fails again is hidden for its backoff.
    event, _ = eventbridge_event(world, "alice", eventID="retried")
    queue.lambda_gives_up(event, handler.SlackDeliveryError("down", status=500, attempts=3))
    world.slack.script(*[SlackReply(500, "down")] * 3)
    assert queue.poll()["batchItemFailures"]
    # The self-check: every check, its heartbeat and URL, a week's summary. CloudWatch's
    # client is the Stubber's here: it answers the alarm check and the heartbeat.
    for _ in range(2):
        alarm_history.stubber.add_response(
            "describe_alarms",
            {"MetricAlarms": [{"AlarmName": "loginwatch-unallowed-console-login",
                               "ActionsEnabled": True}]},
        )  # fmt: skip
        alarm_history.stubber.add_response("put_metric_data", {})
    every_self_check_call(account, use_settings, rules=[*RULES, *KEY_RULES[1:]])
    return {tuple(call.split(":", 1)) for call in client_counter.calls}  # type: ignore[misc]


@pytest.fixture
def production(world: NotifierWorld) -> str:
    import boto3

    organizations = boto3.client("organizations", region_name=REGION)
    organizations.create_organization(FeatureSet="ALL")
    created = organizations.create_account(AccountName="production", Email="prod@example.com")
    return created["CreateAccountStatus"]["AccountId"]


def test_the_role_allows_every_call_the_notifier_makes_and_nothing_else(
    every_path: set[tuple[str, str]],
) -> None:
    declared = {(c.service, c.operation) for c in calls.declared()}
    assert every_path == declared  # no call undeclared, no declaration never called

    policy = notifier_role_policy(NAMES, LOG_GROUP, None, organization=(MANAGEMENT, ORG_ID))
    for service, operation in every_path:
        arn = TOUCHED.get(
            service, f"arn:aws:organizations::{MANAGEMENT}:account/{ORG_ID}/111111111111"
        )
        for action in iam_actions((service, operation)):
            assert _granted(policy, action, arn), f"{action} on {arn} is not granted"

    wanted = {
        a
        for c in (*calls.declared(), *calls.BY_LAMBDA)
        for a in iam_actions((c.service, c.operation))
    }
    granted = {a for s in policy["Statement"] for a in _as_list(s["Action"])}
    assert granted == wanted


def test_what_lambda_does_with_the_role_is_granted_on_the_functions_own_things() -> None:
    policy = notifier_role_policy(NAMES, LOG_GROUP, None)
    own_logs = (
        f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:/aws/lambda/loginwatch-notifier:log-stream:x"
    )
    assert _granted(policy, "logs:PutLogEvents", own_logs)
    assert _granted(policy, "sqs:SendMessage", TOUCHED["sqs"])
    assert not _granted(policy, "sqs:SendMessage", TOUCHED["sqs"].replace(RETRY_QUEUE, "other"))
    # Without organization mode, no Organizations call at all.
    assert not any("organizations:" in str(s["Action"]) for s in policy["Statement"])


def test_the_self_checks_grants_are_narrow() -> None:
    policy = notifier_role_policy(NAMES, LOG_GROUP, None)
    own_log = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:/aws/lambda/loginwatch-notifier:*"
    assert _granted(policy, "logs:FilterLogEvents", own_log)
    assert _granted(policy, "ssm:GetParameter", NAMES.heartbeat_parameter_arn)
    rule = "arn:aws:events:ap-southeast-2:{}:rule/{}"
    assert _granted(policy, "events:DescribeRule", rule.format(ACCOUNT_ID, "loginwatch-tamper-1"))
    assert not _granted(policy, "events:DescribeRule", rule.format(ACCOUNT_ID, "other-rule"))
    dlq = f"arn:aws:sqs:ap-southeast-2:{ACCOUNT_ID}:loginwatch-events-undelivered"
    assert _granted(policy, "sqs:GetQueueAttributes", dlq)
    assert not _granted(policy, "sqs:GetQueueAttributes", dlq.replace("loginwatch-", "other-"))
    (heartbeat,) = [s for s in policy["Statement"] if s["Action"] == "cloudwatch:PutMetricData"]
    assert heartbeat["Resource"] == "*"
    assert heartbeat["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Loginwatch"}}
