"""`status` and `teardown` through the installed CLI against a moto server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.test_setup import BUCKET, TOPIC_ARN, setup_ok
from tests.support.cli import BASE_CONFIG, FORWARDING_REGIONS, WEBHOOK, Cli

# tamper is on by default: two more filters and alarms (CIS CloudWatch.5's, its own
# resources'), the watch rules in every region and their invoke permission. The
# self-check is on by default: the scheduler role and the schedule (no second voice:
# BASE_CONFIG sets no self_check.email).
KINDS = [
    "bucket", "trail-log-group", "trail-role", "trail", *(["metric-filter"] * 3), "topic",
    *(["alarm"] * 3), "webhook-parameter", "claims-table", "notifier-role", "scheduler-role",
    "final-queue", "retry-queue", "notifier-log-group", "function", "failure-destination",
    "retry-mapping", "invoke-permission", "subscription", "events-permission",
    "watch-rules-permission", *(["events-dead-letter-queue"] * (1 + len(FORWARDING_REGIONS))),
    "sign-in-rule", "forwarding-role", *(["forwarding-rule"] * len(FORWARDING_REGIONS)),
    *(["watch-rules"] * (1 + len(FORWARDING_REGIONS))), "schedule",
]  # fmt: skip
# In every other region: a forwarding rule, its dead-letter queue, tamper's watch rules.
REGIONAL_KINDS = {"forwarding-rule", "events-dead-letter-queue", "watch-rules"}


def status_json(cli: Cli) -> tuple[int, dict[str, Any]]:
    run = cli.run("status", "--json")
    assert run.mutating == [], run.mutating  # status never modifies anything
    return run.returncode, json.loads(run.stdout)


def assert_status_healthy_with_every_kind_in_every_region(cli: Cli) -> None:
    """After a fresh setup of BASE_CONFIG in every region (test_setup's fresh setup runs
    this: one setup of every region serves both)."""
    code, report = status_json(cli)
    assert code == 0 and report["healthy"] is True
    assert [r["kind"] for r in report["resources"]] == KINDS
    forwarding = [r["region"] for r in report["resources"] if r["kind"] == "forwarding-rule"]
    assert sorted(forwarding) == sorted(FORWARDING_REGIONS)
    assert {r["region"] for r in report["resources"] if r["kind"] not in REGIONAL_KINDS} == {
        "us-east-1"
    }
    assert report["undelivered"] == {
        "waiting_for_retry": 0,
        "dead_letter": 0,
        "oldest_dead_letter_age_seconds": None,
    }
    assert all(r["state"] == "ok" for r in report["resources"])
    assert report["account"] == "123456789012" and report["region"] == "us-east-1"
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["trail is logging"]["ok"] and checks["subscription confirmed"]["ok"]
    assert checks["trail delivers to CloudWatch Logs"]["detail"] == "last delivery: unknown"
    # The self-check (on by default): scheduled, none run yet (the emulator cannot run the
    # function), and no second voice without self_check.email: a warning, not a problem.
    assert checks["self-check schedule enabled"]["ok"]
    assert (checks["last self-check"]["detail"], checks["last self-check"]["ok"]) == (
        "none yet",
        True,
    )
    assert checks["second voice"]["weight"] == "warning"
    assert WEBHOOK not in json.dumps(report)


@pytest.mark.in_process
def test_broken_chain_is_named_then_repaired_by_setup(cli: Cli, aws: Any) -> None:
    setup_ok(cli)
    (sub,) = aws.sns.list_subscriptions_by_topic(TopicArn=TOPIC_ARN)["Subscriptions"]
    aws.sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
    aws.logs.put_metric_filter(
        logGroupName="/lwtest/cloudtrail",
        filterName="lwtest-unallowed-console-login",
        filterPattern='{ $.eventName = "ConsoleLogin" }',
        metricTransformations=[
            {
                "metricName": "UnallowedConsoleLogin",
                "metricNamespace": "LoginWatch/lwtest",
                "metricValue": "1",
            }
        ],
    )
    aws.cloudtrail.stop_logging(Name="lwtest-trail")
    aws.lambda_.remove_permission(FunctionName="lwtest-notifier", StatementId="lwtest-sns-invoke")
    aws.logs.put_retention_policy(logGroupName="/aws/lambda/lwtest-notifier", retentionInDays=7)
    aws.ssm.put_parameter(
        Name="/lwtest/slack-webhook-url",
        Value="https://hooks.slack.com/x/y/zzzz",
        Type="SecureString",
        Overwrite=True,
    )

    code, report = status_json(cli)
    assert code == 1 and report["healthy"] is False
    states = {r["kind"]: r for r in report["resources"] if r["kind"] != "metric-filter"}
    assert states["subscription"]["state"] == "missing"
    assert states["invoke-permission"]["state"] == "missing"
    # The one filter changed drifts; tamper's two (on by default) beside it do not.
    filters = {r["name"]: r for r in report["resources"] if r["kind"] == "metric-filter"}
    assert {name: r["state"] for name, r in filters.items()} == {
        "lwtest-unallowed-console-login": "drift",
        "lwtest-cis-trail-changes": "ok",
        "lwtest-tamper-own-resources": "ok",
    }
    assert "filter pattern" in filters["lwtest-unallowed-console-login"]["details"][0]
    assert (
        states["trail"]["state"] == "drift"
        and "logging: stopped → started" in states["trail"]["details"]
    )
    assert states["notifier-log-group"]["details"] == ["retention days: 7 → 365"]
    assert states["webhook-parameter"]["details"] == [
        "webhook value differs from the config (value not shown)"
    ]
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["trail is logging"]["ok"] is False
    # Countable: the stopped trail's check repeats its drift, counted once, as said below.
    assert checks["trail is logging"]["weight"] == "repeats-drift"
    assert report["problems"] == 6 and report["problems_setup_cannot_repair"] == 0
    assert (
        sum(c["weight"] == "problem" for c in report["checks"])
        + sum(r["state"] in ("missing", "drift") for r in report["resources"])
        == report["problems"]
    )

    human = cli.run("status")
    assert human.returncode == 1
    # 6 broken resources, each counted once: the stopped trail's "trail is logging"
    # check repeats its drift and is shown, not counted again.
    assert "6 problem(s)" in human.stdout and "loginwatch setup" in human.stdout
    assert "zzzz" not in human.stdout + human.stderr

    repair = setup_ok(cli)
    # Exactly the 6 broken links: the 2 missing made again, the 4 drifted put back.
    assert "Done. 2 created, 4 updated, " in repair.stdout, repair.stdout
    assert sorted(repair.mutating) == [
        ("cloudtrail", "StartLogging"),
        ("lambda", "AddPermission"),
        ("logs", "PutMetricFilter"),
        ("logs", "PutRetentionPolicy"),
        ("sns", "Subscribe"),
        ("ssm", "PutParameter"),
    ]
    code, report = status_json(cli)
    assert code == 0 and report["healthy"], report


def test_status_config_problem_exits_2(cli: Cli) -> None:
    cli.write_config(BASE_CONFIG.replace("us-east-1", "mars-1"))
    run = cli.run("status", "--json")
    assert run.returncode == 2 and run.calls == []  # no AWS call before the config is valid


def _resource_counts(aws: Any) -> dict[str, Any]:
    return {
        "trails": [t["Name"] for t in aws.cloudtrail.describe_trails()["trailList"]],
        "topics": sorted(t["TopicArn"].rsplit(":", 1)[1] for t in aws.sns.list_topics()["Topics"]),
        "alarms": sorted(a["AlarmName"] for a in aws.cloudwatch.describe_alarms()["MetricAlarms"]),
        "roles": sorted(r["RoleName"] for r in aws.iam.list_roles()["Roles"]),
        "functions": [f["FunctionName"] for f in aws.lambda_.list_functions()["Functions"]],
        "parameters": [p["Name"] for p in aws.ssm.describe_parameters()["Parameters"]],
        "log groups": sorted(
            g["logGroupName"] for g in aws.logs.describe_log_groups()["logGroups"]
        ),
        "buckets": [b["Name"] for b in aws.s3.list_buckets()["Buckets"]],
        "schedules": [s["Name"] for s in aws.scheduler.list_schedules()["Schedules"]],
        "rules": sorted(
            r["Name"]
            for region in ("us-east-1", "us-west-2")
            for r in aws.in_region("events", region).list_rules()["Rules"]
        ),
    }


def _write_log_file_versions(s3: Any) -> None:
    """What CloudTrail delivers, versioned: 2 versions of a log file, and a deleted file
    (a delete marker): 4 object versions in all."""
    # moto applies the TLS-only Deny without its condition, so write objects with the policy lifted.
    policy = s3.get_bucket_policy(Bucket=BUCKET)["Policy"]
    s3.delete_bucket_policy(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    key = "AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/27/log.json.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"v1")
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"v2")
    s3.put_object(Bucket=BUCKET, Key="other.json.gz", Body=b"x")
    s3.delete_object(Bucket=BUCKET, Key="other.json.gz")  # leaves a delete marker
    s3.put_bucket_policy(Bucket=BUCKET, Policy=policy)


def _make_look_alikes(aws: Any) -> None:
    aws.sns.create_topic(Name="lwtest-alerts-old")
    aws.cloudwatch.put_metric_alarm(
        AlarmName="lwtest-unallowed-console-login-copy",
        MetricName="m",
        Namespace="n",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    aws.iam.create_role(RoleName="lwtest-notifier-v2", AssumeRolePolicyDocument="{}")


def test_teardown_removes_only_what_setup_made_and_keeps_the_audit_logs(cli: Cli, aws: Any) -> None:
    """Declined, refused without a terminal or --yes, a dry run: nothing changes. Then only
    what setup made goes and the audit logs (every version) stay; they go when asked.
    (One setup serves it all: each CLI run costs more than the rest of the test.)"""
    from tests.e2e.test_plain_answers import SECRET_FROM_ENV, answer_on_a_terminal

    setup_ok(cli)
    _make_look_alikes(aws)
    _write_log_file_versions(aws.s3)
    # From here on the webhook's variable is not set: only setup needs it.
    cli.write_config(SECRET_FROM_ENV)
    code, report = status_json(cli)
    assert code == 0 and report["healthy"] and report["problems"] == 0, report
    assert report["webhook_compared"] is False
    declined = answer_on_a_terminal(cli, "n", "teardown")  # an answer, not a failure
    assert declined.returncode == 0 and "Nothing was changed" in declined.stdout, declined
    # Without a terminal or --yes it refuses, and a dry run changes nothing.
    refused = cli.run("teardown", stdin="")
    assert refused.returncode == 2 and "--yes" in refused.stderr and refused.mutating == []
    dry = cli.run("teardown", "--dry-run")
    assert (
        dry.returncode == 0
        and dry.mutating == []
        and "delete" in dry.stdout
        and "keep" in dry.stdout
    )
    # One line per kind (the dead-letter queue of 2 regions is one): 21 lines, 22 resources;
    # and since tamper and the self-check are on by default, 4 lines and 9 resources more:
    # the filters and alarms (2 each, on their kinds' lines), the watch rules of 2 regions,
    # their invoke permission, the scheduler role, the schedule.
    assert "Dry run: teardown would remove 25 (31 resources in 2 regions) and keep 2. " in (
        " ".join(dry.stdout.split())
    )
    assert aws.lambda_.list_functions()["Functions"]

    run = cli.run("teardown", "--yes")
    assert run.returncode == 0, run.stderr
    # 11 of the alarm chain, claims table, 2 queues, destination and mapping, 2 rule
    # resources + role + queue, and the one forwarding region's rule and its queue: 21 lines (the queue of 2 regions is one)
    # + tamper's and the self-check's 4 (9 resources), as in the dry run above
    assert "Removed 25 (31 resources in 2 regions)" in run.stdout
    assert ("cloudtrail", "StopLogging") in run.calls
    stop, delete = (
        run.calls.index(("cloudtrail", "StopLogging")),
        run.calls.index(("cloudtrail", "DeleteTrail")),
    )
    assert stop < delete
    assert _resource_counts(aws) == {
        "trails": [],
        "topics": ["lwtest-alerts-old"],
        "alarms": ["lwtest-unallowed-console-login-copy"],
        "roles": ["lwtest-notifier-v2"],
        "functions": [],
        "parameters": [],
        "log groups": ["/lwtest/cloudtrail"],  # the CloudTrail copy is kept by default
        "buckets": [BUCKET],  # the original CloudTrail log files are kept by default
        "schedules": [],
        "rules": [],
    }
    versions = aws.s3.list_object_versions(Bucket=BUCKET)
    assert (
        len(versions["Versions"]) + len(versions["DeleteMarkers"]) == 4
    )  # the audit record is intact
    again = cli.run("teardown", "--yes")
    assert again.returncode == 0 and "Nothing left to remove" in again.stdout
    assert again.mutating == []

    # Not set up: said so, with what teardown kept and how to remove it (no problem list).
    after = cli.run("status")
    assert after.returncode == 1, after.stderr
    out = " ".join(after.stdout.split())
    assert "Not set up for loginwatch 'lwtest'" in out and "no alert can fire" in out
    assert f"S3 bucket {BUCKET}: holds the original CloudTrail log files" in out
    assert "trail log group /lwtest/cloudtrail: holds a copy of CloudTrail events" in out
    assert "loginwatch teardown --yes --delete-bucket --delete-trail-logs" in out
    assert "problem(s)" not in out and "Can it fire?" not in out

    # Asked to: the bucket emptied of every version and removed, the CloudTrail copy too.
    run = cli.run("teardown", "--yes", "--delete-bucket", "--delete-trail-logs")
    assert run.returncode == 0, run.stderr
    assert "4 object version(s) and delete marker(s) removed" in run.stdout
    assert aws.s3.list_buckets()["Buckets"] == []
    assert aws.logs.describe_log_groups()["logGroups"] == []


@pytest.mark.in_process
def test_teardown_leaves_an_untagged_resource_with_our_exact_name_alone(cli: Cli, aws: Any) -> None:
    aws.sns.create_topic(Name="lwtest-alerts")  # not made by loginwatch
    run = cli.run("teardown", "--yes")
    assert run.returncode == 0
    assert "not created by loginwatch" in run.stdout
    assert aws.sns.get_topic_attributes(TopicArn=TOPIC_ARN)["Attributes"]["TopicArn"] == TOPIC_ARN
    assert run.mutating == []


@pytest.mark.in_process
def test_status_says_what_setup_cannot_repair(cli: Cli, aws: Any) -> None:
    from tests.e2e.test_setup import REUSE_CONFIG, _make_existing_trail

    _make_existing_trail(aws)
    cli.write_config(REUSE_CONFIG)
    setup_ok(cli)
    aws.cloudtrail.stop_logging(Name="corp-trail")  # someone stops the team's own trail
    run = cli.run("status")
    assert run.returncode == 1
    assert "1 problem(s) setup cannot repair" in run.stdout
    assert "reused trail is usable: logging is stopped" in run.stdout
    assert "run loginwatch setup to repair" not in run.stdout


@pytest.mark.in_process
def test_first_run_before_setup_says_to_run_setup(cli: Cli) -> None:
    human = cli.run("status")
    assert human.returncode == 1
    assert "Nothing is set up yet" in human.stdout and "loginwatch setup" in human.stdout
    assert "problem(s)" not in human.stdout and "Can it fire?" not in human.stdout
    code, report = status_json(cli)
    assert code == 1 and report["nothing_set_up"] is True and report["healthy"] is False
    assert {r["state"] for r in report["resources"]} == {"missing"}  # every resource listed

    for via in ("alarm", "lambda"):
        alert = cli.run("test-alert", "--via", via, "--timeout", "5")
        assert alert.returncode == 1, alert.stdout + alert.stderr
        lines = [line for line in alert.stderr.splitlines() if line.strip()]
        assert len(lines) == 2, alert.stderr  # what is missing, and what to do
        assert "does not exist" in lines[0] and "lwtest" in lines[0]
        assert "Run `loginwatch setup` first" in lines[1]
        assert "unspecified" not in alert.stderr and "Traceback" not in alert.stderr

    setup_ok(cli)
    code, report = status_json(cli)
    assert code == 0 and report["nothing_set_up"] is False
