"""Every rule on, through the installed CLI: one CIS filter and alarm per rule, a second
Slack destination in its own SecureString; a converged re-run writes nothing; a rule
turned off loses its filter and alarm and nothing else."""

from __future__ import annotations

import json
from typing import Any

import pytest

from loginwatch.cis_patterns import (
    AUTHENTICATION_FAILURES,
    ROOT_USAGE,
    SIGN_IN_WITHOUT_MFA,
    TRAIL_CHANGES,
)
from tests.e2e.test_setup import TOPIC_ARN, setup_ok
from tests.support import prowler_checks
from tests.support.cli import ONE_FORWARDING_REGION, Cli

URGENT = "http://127.0.0.1:9/urgent-webhook-secret"
RULES = """\
rules:
  outside_allowlist: {enabled: true, severity: high}
  root_sign_in: {enabled: true, severity: critical}
  no_mfa: {enabled: true, severity: medium}
  failed_sign_ins: {enabled: true, severity: medium, threshold: 3, minutes: 5}
  tamper: {enabled: true, severity: critical}
"""
# A filter and alarm per rule; tamper has two (CIS CloudWatch.5's, and its own resources').
FILTERS = 6
DESTINATION = """\
  destinations:
    - name: urgent
      webhook_url: ${LW_URGENT}
      severities: [critical]
      mention: here
"""
LOG_GROUP = "/lwtest/cloudtrail"


def all_rules_config(rules: str = RULES) -> str:
    webhook = "  webhook_url: ${LW_WEBHOOK}\n"
    return ONE_FORWARDING_REGION.replace(webhook, webhook + DESTINATION) + rules


def filters(aws: Any) -> dict[str, dict[str, Any]]:
    found = aws.logs.describe_metric_filters(logGroupName=LOG_GROUP)["metricFilters"]
    return {f["filterName"]: f for f in found}


def alarms(aws: Any) -> dict[str, dict[str, Any]]:
    return {a["AlarmName"]: a for a in aws.cloudwatch.describe_alarms()["MetricAlarms"]}


@pytest.mark.in_process
def test_all_rules_converge_and_a_rule_turned_off_removes_only_its_filter_and_alarm(
    cli: Cli, aws: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("LW_URGENT", URGENT)
    cli.write_config(all_rules_config())
    first = setup_ok(cli)
    assert "Traceback" not in first.stderr

    # The CIS patterns, character for character, each publishing its own metric ...
    found = filters(aws)
    assert found["lwtest-cis-root-usage"]["filterPattern"] == ROOT_USAGE
    assert found["lwtest-cis-console-sign-in-without-mfa"]["filterPattern"] == SIGN_IN_WITHOUT_MFA
    assert found["lwtest-cis-console-sign-in-failures"]["filterPattern"] == AUTHENTICATION_FAILURES
    assert found["lwtest-cis-trail-changes"]["filterPattern"] == TRAIL_CHANGES
    assert len(found) == FILTERS
    metrics = {f["metricTransformations"][0]["metricName"] for f in found.values()}
    assert len(metrics) == FILTERS
    # ... each with an alarm on that metric, on the one topic (which has the notifier).
    by_metric = {a["MetricName"]: a for a in alarms(aws).values()}
    assert set(by_metric) == metrics
    assert all(a["AlarmActions"] == [TOPIC_ARN] for a in by_metric.values())
    subscriptions = aws.sns.list_subscriptions_by_topic(TopicArn=TOPIC_ARN)["Subscriptions"]
    assert [s["Protocol"] for s in subscriptions] == ["lambda"]
    # Prowler's three checks, as its code decides them, on what setup made.
    trails = aws.cloudtrail.describe_trails()["trailList"]
    groups = [t["CloudWatchLogsLogGroupArn"].split(":")[6] for t in trails]
    assert all(t["IsMultiRegionTrail"] for t in trails)
    for check, regexes in prowler_checks.CHECKS.items():
        assert prowler_checks.check_passes(regexes, groups, found.values(), by_metric.values()), (
            check
        )

    # The second destination's webhook: its own SecureString, never in the function.
    parameter = aws.ssm.get_parameter(
        Name="/lwtest/slack-destinations/urgent", WithDecryption=True
    )["Parameter"]
    assert parameter["Type"] == "SecureString" and parameter["Value"] == URGENT
    function = aws.lambda_.get_function(FunctionName="lwtest-notifier")
    assert URGENT not in json.dumps(function, default=str)
    assert URGENT not in first.stdout + first.stderr

    again = setup_ok(cli)
    assert again.mutating == [], again.mutating
    status = cli.run("status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    kinds = [(r["kind"], r["state"]) for r in json.loads(status.stdout)["resources"]]
    assert kinds.count(("metric-filter", "ok")) == FILTERS
    assert kinds.count(("alarm", "ok")) == FILTERS
    assert ("destination-parameter", "ok") in kinds

    # no_mfa off: its filter and alarm go; the notifier learns it (its code); nothing else.
    cli.write_config(
        all_rules_config(RULES.replace("no_mfa: {enabled: true", "no_mfa: {enabled: false"))
    )
    off = setup_ok(cli)
    assert sorted(set(off.mutating)) == [
        ("cloudwatch", "DeleteAlarms"),
        ("lambda", "UpdateFunctionCode"),
        ("logs", "DeleteMetricFilter"),
    ], off.mutating
    assert "lwtest-cis-console-sign-in-without-mfa" not in filters(aws)
    assert "lwtest-cis-console-sign-in-without-mfa" not in alarms(aws)
    assert len(filters(aws)) == FILTERS - 1 and len(alarms(aws)) == FILTERS - 1
