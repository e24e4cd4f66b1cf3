"""The self-check and the second voice through the installed CLI: the schedule, its role
and target, the heartbeat and Errors alarms on a topic whose only subscriber is the
email address, the heartbeat URL's parameter; converged, reported, torn down. tamper
is on by default: its rules and backstop come with a config that does not name it."""

from __future__ import annotations

import json
from typing import Any

from loginwatch.cis_patterns import TRAIL_CHANGES
from loginwatch.notifier.protocol import (
    HEARTBEAT_DIMENSION,
    HEARTBEAT_METRIC,
    HEARTBEAT_NAMESPACE,
    SELF_CHECK_EVENT,
)
from tests.e2e.test_setup import setup_ok
from tests.support.cli import ONE_FORWARDING_REGION, Cli

ACCOUNT = "123456789012"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:lwtest-notifier"
VOICE_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:lwtest-second-voice"
PING = "https://hc-ping.com/e2e-secret-uuid"
SELF_CHECK = (
    "self_check:\n  schedule: rate(30 minutes)\n  email: sec@example.com\n"
    "  heartbeat_url: ${LW_WEBHOOK}-ping\n"
)


def alarm(aws: Any, name: str) -> dict[str, Any]:
    (found,) = aws.cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return found


def rule_names(aws: Any, region: str) -> set[str]:
    events = aws.in_region("events", region)
    return {r["Name"] for r in events.list_rules(NamePrefix="lwtest-tamper-")["Rules"]}


def test_self_check_and_second_voice_are_set_up_reported_and_torn_down(cli: Cli, aws: Any) -> None:
    cli.write_config(ONE_FORWARDING_REGION + SELF_CHECK)
    first = setup_ok(cli)
    # The emulator cannot run the function: setup says the first check did not pass,
    # and makes the heartbeat alarm all the same (it is the second voice).
    assert "The first self-check did not pass" in first.stdout, first.stdout
    assert "AWS has mailed sec@example.com a link to confirm" in first.stdout
    invoked = [c for c in first.calls if c == ("lambda", "Invoke")]
    assert len(invoked) == 1  # setup's first check, before the heartbeat alarm
    made = [op for op in first.mutating if op[1] in ("PutMetricAlarm", "Invoke")]
    assert made[-2:] == [("lambda", "Invoke"), ("cloudwatch", "PutMetricAlarm")]

    # The schedule invokes the notifier, through its own role, with the self-check event.
    schedule = aws.scheduler.get_schedule(Name="lwtest-self-check")
    assert schedule["ScheduleExpression"] == "rate(30 minutes)" and schedule["State"] == "ENABLED"
    target = schedule["Target"]
    assert target["Arn"] == FUNCTION_ARN
    assert target["RoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/lwtest-scheduler"
    assert json.loads(target["Input"]) == SELF_CHECK_EVENT
    role = aws.iam.get_role(RoleName="lwtest-scheduler")["Role"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    policy = aws.iam.get_role_policy(RoleName="lwtest-scheduler", PolicyName="loginwatch")
    (allowed,) = policy["PolicyDocument"]["Statement"]
    assert (allowed["Action"], allowed["Resource"]) == ("lambda:InvokeFunction", FUNCTION_ARN)

    # The second voice: missing heartbeats are breaching; both alarms notify only the
    # email topic, whose only subscriber is the address.
    heartbeat = alarm(aws, "lwtest-self-check-heartbeat")
    assert heartbeat["TreatMissingData"] == "breaching"
    assert (heartbeat["Namespace"], heartbeat["MetricName"]) == (
        HEARTBEAT_NAMESPACE,
        HEARTBEAT_METRIC,
    )
    assert heartbeat["Dimensions"] == [{"Name": HEARTBEAT_DIMENSION, "Value": "lwtest"}]
    assert (heartbeat["Period"], heartbeat["EvaluationPeriods"]) == (1800, 2)
    assert heartbeat["ComparisonOperator"] == "LessThanThreshold"
    errors = alarm(aws, "lwtest-notifier-errors")
    assert errors["Namespace"] == "AWS/Lambda" and errors["MetricName"] == "Errors"
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": "lwtest-notifier"}]
    for found in (heartbeat, errors):
        assert found["AlarmActions"] == found["OKActions"] == [VOICE_ARN]
    subscriptions = aws.sns.list_subscriptions_by_topic(TopicArn=VOICE_ARN)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", "sec@example.com")]
    topic = json.loads(aws.sns.get_topic_attributes(TopicArn=VOICE_ARN)["Attributes"]["Policy"])
    sources = topic["Statement"][0]["Condition"]["ArnLike"]["aws:SourceArn"]
    assert sorted(sources) == sorted([heartbeat["AlarmArn"], errors["AlarmArn"]])
    # The heartbeat URL is a SecureString, like the webhook.
    parameter = aws.ssm.get_parameter(Name="/lwtest/heartbeat-url", WithDecryption=True)
    assert parameter["Parameter"]["Type"] == "SecureString"
    assert parameter["Parameter"]["Value"] == cli.webhook + "-ping"

    # tamper, on without being named: its rules at home and in the forwarding region,
    # CIS CloudWatch.5's filter exactly.
    assert rule_names(aws, "us-east-1") and rule_names(aws, "us-west-2")
    (cis,) = aws.logs.describe_metric_filters(filterNamePrefix="lwtest-cis-trail-changes")[
        "metricFilters"
    ]
    assert cis["filterPattern"] == TRAIL_CHANGES

    # Converged: nothing is written, and no check is run again.
    again = setup_ok(cli)
    assert again.mutating == [], again.mutating

    status = cli.run("status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    report = json.loads(status.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["self-check schedule enabled"]["ok"]
    assert checks["last self-check"]["detail"] == "none yet"
    assert "second voice" not in checks  # an address is set
    kinds = {r["kind"] for r in report["resources"]}
    assert {
        "schedule",
        "scheduler-role",
        "heartbeat-parameter",
        "second-voice-topic",
        "email-subscription",
        "errors-alarm",
        "heartbeat-alarm",
    } <= kinds
    assert PING not in status.stdout and cli.webhook not in status.stdout

    # test-alert --via self-check runs one now; the emulator cannot run it, and says so.
    drill = cli.run("test-alert", "--via", "self-check")
    assert drill.returncode == 1
    assert "Self-check" in drill.stdout and "the function failed" in drill.stdout

    down = cli.run("teardown", "--yes")
    assert down.returncode == 0, down.stdout + down.stderr
    assert aws.scheduler.list_schedules()["Schedules"] == []
    assert not aws.cloudwatch.describe_alarms(AlarmNamePrefix="lwtest-")["MetricAlarms"]
    topics = [t["TopicArn"] for t in aws.sns.list_topics()["Topics"]]
    assert VOICE_ARN not in topics
    roles = {r["RoleName"] for r in aws.iam.list_roles()["Roles"]}
    assert "lwtest-scheduler" not in roles
    assert rule_names(aws, "us-east-1") == rule_names(aws, "us-west-2") == set()
