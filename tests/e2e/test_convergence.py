"""Interrupted after any mutating call, a re-run converges with exactly one of everything."""

from __future__ import annotations

import json
from typing import Any

import pytest

from loginwatch.aws import CallRecorder
from loginwatch.names import Names
from loginwatch.tamper_patterns import tamper_patterns
from tests.conftest import TWO_REGIONS
from tests.support.cli import ONE_FORWARDING_REGION
from tests.support.inprocess import (
    Clients,
    Crash,
    FailingRecorder,
    InProcessEmulator,
    load,
    mutating_steps_to_interrupt,
    run_setup,
)

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:lwtest-alerts"


def inventory(aws: Any) -> dict[str, int]:
    """Counts of everything that must exist exactly once after a converged setup."""
    policy = json.loads(aws.lambda_.get_policy(FunctionName="lwtest-notifier")["Policy"])
    statements = [s for s in policy["Statement"] if s["Sid"] == "lwtest-sns-invoke"]
    from_rule = [s for s in policy["Statement"] if s["Sid"] == "lwtest-events-invoke"]
    from_watch_rules = [s for s in policy["Statement"] if s["Sid"] == "lwtest-watch-rules-invoke"]
    rules = {
        region: aws.in_region("events", region).list_rules().get("Rules", [])
        for region in TWO_REGIONS
    }
    queues = [
        url
        for region in TWO_REGIONS
        for url in aws.in_region("sqs", region).list_queues().get("QueueUrls", [])
    ]
    mappings = aws.lambda_.list_event_source_mappings()["EventSourceMappings"]
    return {
        "rules": sum(len(found) for found in rules.values()),
        "rules with one target": sum(
            len(
                aws.in_region("events", region)
                .list_targets_by_rule(Rule=rule["Name"])
                .get("Targets", [])
            )
            == 1
            for region, found in rules.items()
            for rule in found
        ),
        "rule permission statements": len(from_rule),
        "watch rules permission statements": len(from_watch_rules),
        "schedules": len(aws.scheduler.list_schedules()["Schedules"]),
        "tables": len(aws.dynamodb.list_tables()["TableNames"]),
        "trails": len(aws.cloudtrail.describe_trails()["trailList"]),
        "filters": len(
            aws.logs.describe_metric_filters(logGroupName="/lwtest/cloudtrail")["metricFilters"]
        ),
        "subscriptions": len(
            aws.sns.list_subscriptions_by_topic(TopicArn=TOPIC_ARN)["Subscriptions"]
        ),
        "permission statements": len(statements),
        "topics": len(aws.sns.list_topics()["Topics"]),
        "alarms": len(aws.cloudwatch.describe_alarms()["MetricAlarms"]),
        "functions": len(aws.lambda_.list_functions()["Functions"]),
        "buckets": len(aws.s3.list_buckets()["Buckets"]),
        "roles": len(aws.iam.list_roles()["Roles"]),
        "parameters": len(aws.ssm.describe_parameters()["Parameters"]),
        "queues": len(queues),
        "retry mappings": len(mappings),
        "failure destinations": len(
            aws.lambda_.list_function_event_invoke_configs(FunctionName="lwtest-notifier")[
                "FunctionEventInvokeConfigs"
            ]
        ),
    }


# tamper is on by default: its watch rules (one per pattern) in each of the two regions.
TAMPER_RULES = len(tamper_patterns(Names.for_config(load(ONE_FORWARDING_REGION), "123456789012")))
ONE_OF_EACH = {
    # the home rule and the one forwarding rule (ONE_FORWARDING_REGION), and tamper's
    "rules": 2 + 2 * TAMPER_RULES,
    "rules with one target": 2 + 2 * TAMPER_RULES,
    "rule permission statements": 1,
    "watch rules permission statements": 1,
    "schedules": 1,  # the self-check's (on by default)
    "tables": 1,
    "trails": 1,
    "filters": 3,  # outside_allowlist's, and tamper's two (CIS CloudWatch.5, own resources)
    "subscriptions": 1,
    "permission statements": 1,
    "topics": 1,  # no second voice: self_check.email is not set
    "alarms": 3,  # one per filter
    "functions": 1,
    "buckets": 1,
    "roles": 4,  # trail → logs, notifier, forwarding, scheduler
    "parameters": 1,
    "queues": 4,  # retry, final, and an events dead-letter queue in each of the two regions
    "retry mappings": 1,
    "failure destinations": 1,
}


def test_every_interruption_point_converges(emulator_inprocess: InProcessEmulator) -> None:
    """A crash before each mutating call of each resource kind (one region stands for all:
    a kind in 17 regions runs the same code 17 times)."""
    aws = Clients()
    shared = emulator_inprocess.aws
    config = load(ONE_FORWARDING_REGION)  # parsed once (frozen): each run builds its own plan
    steps = mutating_steps_to_interrupt(config, reuse=shared)
    assert len(steps) >= 20  # sanity: the whole chain was built
    for fail_at in steps:
        emulator_inprocess.reset()
        with pytest.raises(Crash):
            run_setup(config, FailingRecorder(fail_at=fail_at), reuse=shared)
        run_setup(config, reuse=shared)  # the re-run finishes the job
        assert inventory(aws) == ONE_OF_EACH, f"after a crash before mutating call {fail_at}"
        again = CallRecorder()
        run_setup(config, again, reuse=shared)
        assert again.mutating == [], f"not converged after crash at {fail_at}: {again.mutating}"
