"""`loginwatch setup` through the installed CLI against a moto server, read back with boto3."""

from __future__ import annotations

import json
from typing import Any

import pytest

from loginwatch.allowlist import compile_pattern
from loginwatch.cis_patterns import TRAIL_CHANGES
from loginwatch.config import parse_config
from loginwatch.names import Names
from loginwatch.notifier_package import code_sha256
from loginwatch.operator_policy import COMMANDS
from tests.support.cli import BASE_CONFIG, FORWARDING_REGIONS, WEBHOOK, Cli, every_region

ACCOUNT = "123456789012"
BUCKET = f"lwtest-trail-{ACCOUNT}-us-east-1"
TRAIL_ARN = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/lwtest-trail"
TOPIC_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:lwtest-alerts"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:lwtest-notifier"
RULE_ARN = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/lwtest-console-sign-in"
RETRY_QUEUE_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:lwtest-notifier-retry"
RULES_ARN = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/lwtest-*"
FINAL_QUEUE_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:lwtest-notifier-undelivered"
# Lines setup prints: one per home resource, one per kind in the 19 other regions. 33:
# tamper (on by default) adds two filters, two alarms, the watch rules (home, and the 19
# others), their invoke permission; the self-check (on by default) its role and schedule.
LINES = 33
# The backstop filters on the trail's log group: outside_allowlist's, and tamper's two.
FILTERS = [
    "lwtest-cis-trail-changes",
    "lwtest-tamper-own-resources",
    "lwtest-unallowed-console-login",
]
OUR_TAGS = {"managed-by": "loginwatch", "loginwatch:name": "lwtest", "team": "security"}


def tags(items: list[dict[str, str]]) -> dict[str, str]:
    return {i["Key"]: i["Value"] for i in items}


def expected_pattern(config_text: str) -> str:
    config = parse_config(config_text, "x.yaml", {"LW_WEBHOOK": WEBHOOK})
    return compile_pattern(config.allowed).pattern


def setup_ok(cli: Cli, *args: str) -> Any:
    run = cli.run("setup", *args)
    assert run.returncode == 0, run.stderr + run.stdout
    return run


@every_region
def test_fresh_setup_creates_every_resource_as_specified(cli: Cli, aws: Any) -> None:
    cli.write_config(BASE_CONFIG)  # every region
    run = setup_ok(cli, "--verbose")
    # one line per resource; the forwarding rules (and their queues) of 19 regions on one
    assert run.stdout.count("  created") == LINES, run.stdout
    assert f"{len(FORWARDING_REGIONS)} regions (" in run.stdout
    assert "loginwatch test-alert" in run.stdout

    s3 = aws.s3
    pab = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert all(pab.values()) and len(pab) == 4
    rule = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    statements = {
        s["Sid"]: s for s in json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]
    }
    acl = statements["LoginwatchCloudTrailAclCheck"]
    assert acl["Condition"]["StringEquals"]["aws:SourceArn"] == TRAIL_ARN
    write = statements["LoginwatchCloudTrailWrite"]
    assert write["Resource"] == f"arn:aws:s3:::{BUCKET}/AWSLogs/{ACCOUNT}/*"
    assert write["Condition"]["StringEquals"]["s3:x-amz-acl"] == "bucket-owner-full-control"
    deny = statements["LoginwatchDenyInsecureTransport"]
    assert deny["Effect"] == "Deny" and deny["Condition"]["Bool"]["aws:SecureTransport"] == "false"
    assert tags(s3.get_bucket_tagging(Bucket=BUCKET)["TagSet"]) == OUR_TAGS

    logs = aws.logs
    group = logs.describe_log_groups(logGroupNamePrefix="/lwtest/cloudtrail")["logGroups"][0]
    assert group["retentionInDays"] == 365
    notifier_group = logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/lwtest-notifier")[
        "logGroups"
    ][0]
    assert notifier_group["retentionInDays"] == 365  # Prowler fails anything under 365

    iam = aws.iam
    trail_role = iam.get_role(RoleName="lwtest-cloudtrail-to-logs")["Role"]
    trust = trail_role["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT
    inline = iam.get_role_policy(RoleName="lwtest-cloudtrail-to-logs", PolicyName="loginwatch")
    (statement,) = inline["PolicyDocument"]["Statement"]
    assert sorted(statement["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statement["Resource"].startswith(
        f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/lwtest/cloudtrail:"
    )

    trail = aws.cloudtrail.get_trail(Name="lwtest-trail")["Trail"]
    assert trail["IsMultiRegionTrail"] and trail["IncludeGlobalServiceEvents"]
    assert trail["LogFileValidationEnabled"] and trail["S3BucketName"] == BUCKET
    assert trail["CloudWatchLogsLogGroupArn"].endswith("log-group:/lwtest/cloudtrail:*")
    assert aws.cloudtrail.get_trail_status(Name="lwtest-trail")["IsLogging"]
    selectors = aws.cloudtrail.get_event_selectors(TrailName="lwtest-trail")["EventSelectors"]
    assert selectors[0]["ReadWriteType"] == "All" and selectors[0]["IncludeManagementEvents"]

    found = logs.describe_metric_filters(logGroupName="/lwtest/cloudtrail")["metricFilters"]
    assert sorted(f["filterName"] for f in found) == FILTERS
    by_name = {f["filterName"]: f for f in found}
    metric_filter = by_name["lwtest-unallowed-console-login"]
    assert metric_filter["filterPattern"] == expected_pattern(BASE_CONFIG)
    assert metric_filter["metricTransformations"][0]["metricNamespace"] == "LoginWatch/lwtest"
    # tamper's backstop: Security Hub CloudWatch.5's pattern, exactly.
    assert by_name["lwtest-cis-trail-changes"]["filterPattern"] == TRAIL_CHANGES

    topic = aws.sns.get_topic_attributes(TopicArn=TOPIC_ARN)["Attributes"]
    (publish,) = json.loads(topic["Policy"])["Statement"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    # Every rule's alarm, on or off (turning a rule on or off changes no policy).
    assert [a.rsplit(":", 1)[1] for a in publish["Condition"]["ArnLike"]["aws:SourceArn"]] == [
        "lwtest-unallowed-console-login",
        "lwtest-cis-root-usage",
        "lwtest-cis-console-sign-in-without-mfa",
        "lwtest-cis-console-sign-in-failures",
        "lwtest-key-api-calls-outside",
        "lwtest-key-quarantined",
        "lwtest-cis-trail-changes",
        "lwtest-tamper-own-resources",
    ]

    (alarm,) = aws.cloudwatch.describe_alarms(AlarmNames=["lwtest-unallowed-console-login"])[
        "MetricAlarms"
    ]
    assert alarm["Statistic"] == "Sum" and alarm["Threshold"] == 1.0 and alarm["Period"] == 60
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching" and alarm["AlarmActions"] == [TOPIC_ARN]
    assert alarm["OKActions"] == [TOPIC_ARN]  # the notifier reports sign-ins made during ALARM
    assert "loginwatch" in alarm["AlarmDescription"]

    param = aws.ssm.get_parameter(Name="/lwtest/slack-webhook-url", WithDecryption=True)[
        "Parameter"
    ]
    assert param["Type"] == "SecureString" and param["Value"] == WEBHOOK

    notifier_policy = iam.get_role_policy(RoleName="lwtest-notifier", PolicyName="loginwatch")
    actions = sorted(
        a
        for s in notifier_policy["PolicyDocument"]["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    )
    # The self-check (on by default) reads, from inside, what `status` reads: "self-check"
    # marks its actions (an action twice: the self-check's statement and another's).
    assert actions == [
        "cloudtrail:GetTrailStatus",  # self-check: the trail is logging
        "cloudwatch:DescribeAlarmHistory",  # when did this ALARM episode start (see notifier)
        "cloudwatch:DescribeAlarms",  # self-check: alarm actions enabled
        "cloudwatch:PutMetricData",  # self-check: the heartbeat metric
        "dynamodb:BatchGetItem",  # access-key windows: a call's marker and its window at once
        "dynamodb:BatchWriteItem",  # claims: no sign-in reported twice
        "dynamodb:DeleteItem",
        "dynamodb:DescribeTable",  # self-check: the claims table answers
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "events:DescribeRule",  # self-check: every region's rules enabled and targeted
        "events:ListTargetsByRule",
        "lambda:GetFunctionConcurrency",  # self-check: not throttled to 0
        "logs:CreateLogStream",
        "logs:FilterLogEvents",
        "logs:FilterLogEvents",  # self-check: its own log lines
        "logs:PutLogEvents",
        "sns:ListSubscriptionsByTopic",  # self-check: the subscription is confirmed
        "sqs:ChangeMessageVisibility",  # the retry queue: destination, mapping, backoff
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueAttributes",  # self-check: no alert waits in a dead-letter queue
        "sqs:GetQueueUrl",
        "sqs:GetQueueUrl",  # self-check
        "sqs:ReceiveMessage",
        "sqs:SendMessage",
        "ssm:GetParameter",
        "ssm:GetParameter",  # self-check: the heartbeat URL's parameter
    ]

    function = aws.lambda_.get_function(FunctionName="lwtest-notifier")
    config = function["Configuration"]
    assert config["Architectures"] == ["arm64"] and config["Runtime"] == "python3.12"
    assert not (config.get("Environment") or {}).get("Variables")
    assert function["Tags"] == OUR_TAGS
    policy = json.loads(aws.lambda_.get_policy(FunctionName="lwtest-notifier")["Policy"])
    invoke, from_rule, from_watch_rules = policy["Statement"]
    assert invoke["Principal"] == {"Service": "sns.amazonaws.com"}
    assert invoke["Condition"]["ArnLike"]["AWS:SourceArn"] == TOPIC_ARN
    assert from_rule["Principal"] == {"Service": "events.amazonaws.com"}
    assert from_rule["Condition"]["ArnLike"]["AWS:SourceArn"] == RULE_ARN
    assert from_watch_rules["Sid"] == "lwtest-watch-rules-invoke"  # tamper's rules
    assert from_watch_rules["Principal"] == {"Service": "events.amazonaws.com"}
    assert from_watch_rules["Condition"]["ArnLike"]["AWS:SourceArn"] == RULES_ARN
    # The self-check's schedule invokes the notifier through its own role.
    schedule = aws.scheduler.get_schedule(Name="lwtest-self-check")
    assert schedule["ScheduleExpression"] == "rate(1 hour)" and schedule["State"] == "ENABLED"
    assert schedule["Target"]["Arn"] == FUNCTION_ARN
    assert schedule["Target"]["RoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/lwtest-scheduler"
    scheduler_role = iam.get_role(RoleName="lwtest-scheduler")["Role"]
    (trust,) = scheduler_role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    subs = aws.sns.list_subscriptions_by_topic(TopicArn=TOPIC_ARN)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subs] == [("lambda", FUNCTION_ARN)]
    assert_failed_deliveries_are_kept(aws)
    # The secret is nowhere in what the user saw.
    assert WEBHOOK not in run.stdout + run.stderr

    # status after that setup: healthy, every kind in every region (test_status_teardown).
    from tests.e2e.test_status_teardown import (
        assert_status_healthy_with_every_kind_in_every_region,
    )

    assert_status_healthy_with_every_kind_in_every_region(cli)


def assert_failed_deliveries_are_kept(aws: Any) -> None:
    """The OnFailure destination, the retry queue and its mapping, the final queue, and
    a dead-letter queue on every rule's target, in the rule's own region."""
    from loginwatch.notifier.redelivery import MAX_RECEIVES, RETRY_AT_LEAST_SECONDS, backoff_seconds

    invoke = aws.lambda_.get_function_event_invoke_config(FunctionName="lwtest-notifier")
    assert invoke["MaximumRetryAttempts"] == 2 and invoke["MaximumEventAgeInSeconds"] == 3600
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == RETRY_QUEUE_ARN

    sqs = aws.sqs
    retry_url = sqs.get_queue_url(QueueName="lwtest-notifier-retry")["QueueUrl"]
    retry = sqs.get_queue_attributes(QueueUrl=retry_url, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(retry["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == FINAL_QUEUE_ARN
    assert int(redrive["maxReceiveCount"]) == MAX_RECEIVES
    tries = sum(backoff_seconds(n) for n in range(1, MAX_RECEIVES + 1))
    assert tries >= RETRY_AT_LEAST_SECONDS  # retried for at least four days
    assert retry["VisibilityTimeout"] == "3600" and retry["SqsManagedSseEnabled"] == "true"
    assert retry["MessageRetentionPeriod"] == str(14 * 24 * 3600)
    allow, deny = json.loads(retry["Policy"])["Statement"]
    role = f"arn:aws:iam::{ACCOUNT}:role/lwtest-notifier"
    assert allow["Principal"] == {"AWS": role} and allow["Action"] == "sqs:SendMessage"
    assert deny["Effect"] == "Deny" and deny["Condition"] == {
        "ArnNotEquals": {"aws:PrincipalArn": role}
    }
    assert sqs.list_queue_tags(QueueUrl=retry_url)["Tags"] == OUR_TAGS

    final_url = sqs.get_queue_url(QueueName="lwtest-notifier-undelivered")["QueueUrl"]
    final = sqs.get_queue_attributes(QueueUrl=final_url, AttributeNames=["All"])["Attributes"]
    assert json.loads(final["RedriveAllowPolicy"]) == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [RETRY_QUEUE_ARN],
    }
    assert final["SqsManagedSseEnabled"] == "true"

    (mapping,) = aws.lambda_.list_event_source_mappings(
        EventSourceArn=RETRY_QUEUE_ARN, FunctionName="lwtest-notifier"
    )["EventSourceMappings"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == 5 and mapping["State"] == "Enabled"

    for region, rule in (("us-east-1", aws.events), ("eu-west-3", None)):
        events = rule or aws.in_region("events", region)
        (target,) = events.list_targets_by_rule(Rule="lwtest-console-sign-in")["Targets"]
        queue = f"arn:aws:sqs:{region}:{ACCOUNT}:lwtest-events-undelivered"
        assert target["DeadLetterConfig"] == {"Arn": queue}
        assert target["RetryPolicy"] == {
            "MaximumRetryAttempts": 185,
            "MaximumEventAgeInSeconds": 86400,
        }
        regional = aws.in_region("sqs", region)
        url = regional.get_queue_url(QueueName="lwtest-events-undelivered")["QueueUrl"]
        policy = regional.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
        allow, _ = json.loads(policy["Attributes"]["Policy"])["Statement"]
        assert allow["Principal"] == {"Service": "events.amazonaws.com"}
        # The region's rules of ours: the sign-in rule, and tamper's (on by default).
        assert allow["Condition"] == {
            "ArnLike": {"aws:SourceArn": f"arn:aws:events:{region}:{ACCOUNT}:rule/lwtest-*"}
        }


def test_second_run_changes_nothing_and_makes_no_mutating_call(cli: Cli, aws: Any) -> None:
    setup_ok(cli)
    assert_package_hash_is_what_lambda_reports(aws, cli.config_text)  # one run less
    run = setup_ok(cli, "--verbose")
    assert run.mutating == [], run.mutating
    assert run.stdout.count("  unchanged") == LINES
    assert "created" not in run.stdout and "updated" not in run.stdout
    # On the same setup: a new webhook (and nothing else) changes only its parameter.
    _webhook_change_updates_only_the_parameter(cli, aws)


@pytest.mark.in_process
@every_region
def test_dry_run_makes_no_mutating_call(cli: Cli, aws: Any) -> None:
    cli.write_config(BASE_CONFIG)  # every region
    run = setup_ok(cli, "--dry-run")
    # home: 22, and 8 since tamper and the self-check are on by default (two filters, two
    # alarms, the watch rules, their invoke permission, the scheduler role, the schedule)
    # per other region: a forwarding rule, its dead-letter queue, and tamper's watch rules
    home, per_region = 22 + 8, 3
    creates = home + per_region * len(FORWARDING_REGIONS)
    regions = len(FORWARDING_REGIONS) + 1  # each resource counted once per region
    assert run.mutating == [] and f"({creates} resources in {regions} regions)" in run.stdout
    assert aws.cloudtrail.describe_trails()["trailList"] == []


@pytest.mark.in_process
def test_allowlist_change_updates_only_the_filter_and_the_notifier_code(cli: Cli, aws: Any) -> None:
    setup_ok(cli)
    before = aws.lambda_.get_function(FunctionName="lwtest-notifier")["Configuration"]["CodeSha256"]
    new_config = cli.config_text.replace(
        "  - 203.0.113.10\n", "  - 203.0.113.10\n  - 192.0.2.0/24\n"
    )
    cli.write_config(new_config)
    run = setup_ok(cli)
    assert sorted(set(run.mutating)) == [
        ("lambda", "UpdateFunctionCode"),
        ("logs", "PutMetricFilter"),
    ]
    assert "filter pattern: 2 → 3 allowed ranges" in run.stdout
    found = aws.logs.describe_metric_filters(logGroupName="/lwtest/cloudtrail")["metricFilters"]
    assert sorted(f["filterName"] for f in found) == FILTERS
    (metric_filter,) = [f for f in found if f["filterName"] == "lwtest-unallowed-console-login"]
    assert metric_filter["filterPattern"] == expected_pattern(new_config)
    after = aws.lambda_.get_function(FunctionName="lwtest-notifier")["Configuration"]["CodeSha256"]
    assert after != before
    assert setup_ok(cli).mutating == []


def _webhook_change_updates_only_the_parameter(cli: Cli, aws: Any) -> None:
    cli.webhook = WEBHOOK.replace("e2eSECRET", "rotatedSECRET")
    run = setup_ok(cli)
    assert run.mutating == [("ssm", "PutParameter")]
    assert "webhook value differs" in run.stdout and "rotatedSECRET" not in run.stdout
    value = aws.ssm.get_parameter(Name="/lwtest/slack-webhook-url", WithDecryption=True)[
        "Parameter"
    ]["Value"]
    assert value == cli.webhook


def assert_package_hash_is_what_lambda_reports(aws: Any, config_text: str) -> None:
    from loginwatch.aws import connect
    from loginwatch.engine import build_deployment, notifier_settings, self_check_settings
    from loginwatch.names import Names
    from loginwatch.notifier_package import build_zip

    config = parse_config(config_text, "x.yaml", {"LW_WEBHOOK": WEBHOOK})
    names = Names.for_config(config, ACCOUNT)
    settings = notifier_settings(config, names, names.trail_log_group).to_dict()
    # The self-check's part (on by default) lists what it checks: the wanted resources,
    # in the regions the emulator reports enabled.
    deployment = build_deployment(config, connect(None, "us-east-1", sleep=lambda _: None))
    settings["self_check"] = self_check_settings(deployment)
    deployed = aws.lambda_.get_function(FunctionName="lwtest-notifier")["Configuration"][
        "CodeSha256"
    ]
    assert deployed == code_sha256(build_zip(settings))


def _make_existing_trail(aws: Any, *, multi_region: bool = True, log_group: bool = True) -> None:
    aws.s3.create_bucket(Bucket="corp-audit-trail-bucket")
    params: dict[str, Any] = {
        "Name": "corp-trail",
        "S3BucketName": "corp-audit-trail-bucket",
        "IsMultiRegionTrail": multi_region,
        "IncludeGlobalServiceEvents": True,
    }
    if log_group:
        aws.logs.create_log_group(logGroupName="corp/cloudtrail")
        aws.iam.create_role(RoleName="corp-trail-role", AssumeRolePolicyDocument="{}")
        params["CloudWatchLogsLogGroupArn"] = (
            f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:corp/cloudtrail:*"
        )
        params["CloudWatchLogsRoleArn"] = f"arn:aws:iam::{ACCOUNT}:role/corp-trail-role"
    aws.cloudtrail.create_trail(**params)
    # AWS reports a new trail's default selector; moto reports none, so set it as AWS would.
    aws.cloudtrail.put_event_selectors(
        TrailName="corp-trail",
        EventSelectors=[{"ReadWriteType": "All", "IncludeManagementEvents": True}],
    )
    aws.cloudtrail.start_logging(Name="corp-trail")


def _trail_snapshot(aws: Any) -> Any:
    ct = aws.cloudtrail
    status = ct.get_trail_status(Name="corp-trail")
    return (
        ct.get_trail(Name="corp-trail")["Trail"],
        status["IsLogging"],
        ct.get_event_selectors(TrailName="corp-trail")["EventSelectors"],
        ct.list_tags(ResourceIdList=[ct.get_trail(Name="corp-trail")["Trail"]["TrailARN"]])[
            "ResourceTagList"
        ],
    )


REUSE_CONFIG = BASE_CONFIG + "trail:\n  existing: corp-trail\n"


@pytest.mark.in_process
def test_reuse_mode_leaves_the_existing_trail_exactly_as_it_was(cli: Cli, aws: Any) -> None:
    _make_existing_trail(aws)
    before = _trail_snapshot(aws)
    cli.write_config(REUSE_CONFIG)
    run = setup_ok(cli)
    assert "in use, not managed" in run.stdout
    assert _trail_snapshot(aws) == before
    assert not any(service == "cloudtrail" for service, _ in run.mutating)
    names = [t["Name"] for t in aws.cloudtrail.describe_trails()["trailList"]]
    assert names == ["corp-trail"]  # no second trail
    buckets = [b["Name"] for b in aws.s3.list_buckets()["Buckets"]]
    assert buckets == ["corp-audit-trail-bucket"]  # no loginwatch bucket
    found = aws.logs.describe_metric_filters(logGroupName="corp/cloudtrail")["metricFilters"]
    assert sorted(f["filterName"] for f in found) == FILTERS  # on the reused trail's group
    assert setup_ok(cli).mutating == []
    status = cli.run("status", "--json")
    report = json.loads(status.stdout)
    (trail,) = [r for r in report["resources"] if r["kind"] == "trail"]
    assert trail["state"] == "unmanaged" and trail["name"] == "corp-trail"
    assert status.returncode == 0 and report["healthy"]
    teardown = cli.run("teardown", "--yes")
    assert teardown.returncode == 0 and "reused, not managed by loginwatch" in teardown.stdout
    assert _trail_snapshot(aws) == before


@pytest.mark.in_process
def test_reuse_mode_says_exactly_what_is_missing(cli: Cli, aws: Any) -> None:
    _make_existing_trail(aws, multi_region=False, log_group=False)
    cli.write_config(REUSE_CONFIG)
    run = cli.run("setup")
    assert run.returncode == 2
    assert (
        "not multi-region" in run.stderr and "does not deliver to a CloudWatch Logs" in run.stderr
    )
    assert run.mutating == [] and "Traceback" not in run.stderr


@pytest.mark.in_process
def test_new_trail_with_an_existing_multi_region_trail_prints_the_cost_notice(
    cli: Cli, aws: Any
) -> None:
    _make_existing_trail(aws)
    run = setup_ok(cli)
    assert "Reusing it" in run.stdout and "corp-trail" in run.stdout


@pytest.mark.in_process
def test_untagged_look_alike_is_never_modified(cli: Cli, aws: Any) -> None:
    aws.sns.create_topic(Name="lwtest-alerts")  # someone else's topic with our name
    run = cli.run("setup")
    assert run.returncode == 2
    assert (
        "SNS topic 'lwtest-alerts' already exists but was not created by loginwatch" in run.stderr
    )
    attrs = aws.sns.get_topic_attributes(TopicArn=TOPIC_ARN)["Attributes"]
    assert "LoginwatchAllowAlarmPublish" not in attrs["Policy"]


@pytest.mark.in_process
def test_a_rule_name_in_the_way_is_refused_by_the_dry_run_as_by_setup(cli: Cli, aws: Any) -> None:
    """What setup would refuse before writing (here: someone else's EventBridge rule with
    the name of a tamper rule in the forwarding region), the dry run refuses the same way."""
    taken = Names.for_config(parse_config(cli.config_text, "x.yaml", {"LW_WEBHOOK": WEBHOOK}),
                             ACCOUNT).tamper_rule(0)  # fmt: skip
    aws.in_region("events", "us-west-2").put_rule(Name=taken, ScheduleExpression="rate(1 day)")
    dry, real = cli.run("setup", "--dry-run"), cli.run("setup")
    for run in (dry, real):
        assert run.returncode == 2, run.stdout + run.stderr
        assert f"EventBridge rule {taken} in us-west-2 already exists but was not created by " \
            "loginwatch" in run.stderr  # fmt: skip
        assert run.mutating == []
    assert dry.stderr == real.stderr
    assert aws.cloudtrail.describe_trails()["trailList"] == []


@pytest.mark.in_process
def test_explicit_user_bucket_gets_its_policy_merged_not_replaced(cli: Cli, aws: Any) -> None:
    aws.s3.create_bucket(Bucket="team-existing-bucket")
    theirs = {
        "Sid": "TheirStatement",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::team-existing-bucket/*",
    }
    aws.s3.put_bucket_policy(
        Bucket="team-existing-bucket",
        Policy=json.dumps({"Version": "2012-10-17", "Id": "TheirPolicy", "Statement": theirs}),
    )
    cli.write_config(BASE_CONFIG + "trail:\n  bucket: team-existing-bucket\n")
    setup_ok(cli)
    policy = json.loads(aws.s3.get_bucket_policy(Bucket="team-existing-bucket")["Policy"])
    sids = {s["Sid"] for s in policy["Statement"]}
    assert {
        "TheirStatement",
        "LoginwatchCloudTrailWrite",
        "LoginwatchDenyInsecureTransport",
    } <= sids
    assert (
        aws.cloudtrail.get_trail(Name="lwtest-trail")["Trail"]["S3BucketName"]
        == "team-existing-bucket"
    )
    assert policy.get("Id") == "TheirPolicy"  # their policy's other keys survive the merge
    assert setup_ok(cli).mutating == []

    teardown = cli.run("teardown", "--yes", "--delete-bucket")
    assert teardown.returncode == 0 and "loginwatch's policy statements removed" in teardown.stdout
    after = json.loads(aws.s3.get_bucket_policy(Bucket="team-existing-bucket")["Policy"])
    assert [s["Sid"] for s in after["Statement"]] == ["TheirStatement"]  # theirs, untouched
    assert "team-existing-bucket" in [b["Name"] for b in aws.s3.list_buckets()["Buckets"]]


def test_missing_credentials_exit_2_with_how_to_fix(cli: Cli, monkeypatch: Any) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    run = cli.run("setup")
    assert run.returncode == 2
    assert "No AWS credentials found" in run.stderr and "aws sso login" in run.stderr
    assert "Traceback" not in run.stderr


def test_profile_that_does_not_exist(cli: Cli) -> None:
    run = cli.run("--profile", "nope", "setup")
    assert run.returncode == 2 and "AWS profile 'nope' does not exist" in run.stderr


@pytest.mark.in_process
def test_permissions_command_prints_a_policy_scoped_to_this_config(cli: Cli, aws: Any) -> None:
    run = cli.run("permissions", "--for", "all")
    assert run.returncode == 0, run.stderr
    policy = json.loads(run.stdout)
    resources = [
        r
        for s in policy["Statement"]
        for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    ]
    assert any("lwtest-notifier" in r for r in resources)
    assert "--compact" in run.stderr  # the full policy is over IAM's managed-policy size
    assert run.mutating == []
    # Every command together is over the limit even compact: it names the split that fits,
    # and each half does fit.
    compact = cli.run("permissions", "--compact")
    assert compact.returncode == 0 and "Attach two instead: --for setup (" in compact.stderr
    for half in (["--for", "setup"], [f"--for={c}" for c in COMMANDS if c != "setup"]):
        part = cli.run("permissions", "--compact", *half)
        assert part.returncode == 0 and part.stderr == "", part.stderr
    _make_existing_trail(aws)
    cli.write_config(REUSE_CONFIG)
    reuse = json.loads(cli.run("permissions", "--for", "setup").stdout)
    text = json.dumps(reuse)
    assert "corp/cloudtrail" in text and "lwtest-trail" not in text


@pytest.mark.in_process
def test_reused_trail_that_records_no_write_events_is_refused(cli: Cli, aws: Any) -> None:
    _make_existing_trail(aws)
    aws.cloudtrail.put_event_selectors(
        TrailName="corp-trail",
        EventSelectors=[{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True}],
    )
    cli.write_config(REUSE_CONFIG)
    run = cli.run("setup")
    assert run.returncode == 2 and run.mutating == []
    assert "do not record write management events, where ConsoleLogin is" in run.stderr
