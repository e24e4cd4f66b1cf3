"""The access-key rules through the installed CLI: EventBridge rules in each region with
the read-only opt-in, their targets and queues, the backstop filters and alarms; a
converged re-run writes nothing; a rule turned off is removed; teardown removes all.

One forwarding region (us-west-2) stands for every region, as in the other e2e tests;
us-west-2 is also AWS Health's backup region, so credentials_exposed's rule is there.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from loginwatch.api_call_patterns import KEY_EXPOSED_PATTERN, QUARANTINE_FILTER, event_patterns
from loginwatch.cis_patterns import TRAIL_CHANGES
from loginwatch.config import parse_config
from loginwatch.names import Names
from loginwatch.resources.watch_rules import API_CALLS_STATE
from loginwatch.tamper_patterns import tamper_patterns
from tests.e2e.test_rules_setup import LOG_GROUP, alarms, filters
from tests.e2e.test_setup import setup_ok
from tests.support.cli import ONE_FORWARDING_REGION, Cli
from tests.support.inprocess import load

ACCOUNT = "123456789012"
KEY_RULES = """\
rules:
  outside_allowlist: {enabled: true}
  access_key_outside_allowlist:
    enabled: true
    severity: high
    except:
      - user: ci-deployer
        from: [192.0.2.0/24]
  credentials_exposed: {enabled: true, severity: critical}
  tamper: {enabled: true}
"""
HOME_TARGET = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:lwtest-notifier"
HOME_BUS = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default"
FORWARD_ROLE = f"arn:aws:iam::{ACCOUNT}:role/lwtest-events-forward"


def key_rules(aws: Any, region: str) -> dict[str, dict[str, Any]]:
    events = aws.in_region("events", region)
    listed = events.list_rules(NamePrefix="lwtest-key-")["Rules"]
    found = {}
    for rule in listed:
        targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        found[rule["Name"]] = {**rule, "Targets": targets}
    return found


def tamper_rules(aws: Any, region: str) -> dict[str, dict[str, Any]]:
    events = aws.in_region("events", region)
    return {r["Name"]: r for r in events.list_rules(NamePrefix="lwtest-tamper-")["Rules"]}


@pytest.mark.in_process
def test_access_key_rules_converge_turn_off_and_tear_down(cli: Cli, aws: Any) -> None:
    cli.write_config(ONE_FORWARDING_REGION + KEY_RULES)
    first = setup_ok(cli)
    assert "Traceback" not in first.stderr

    # Home: the API-call rule(s) (read-only calls opted in) and the exposure rule → notifier.
    home = key_rules(aws, "us-east-1")
    api = {n: r for n, r in home.items() if n.startswith("lwtest-key-api-calls-")}
    assert api and all(r["State"] == API_CALLS_STATE for r in api.values())
    assert home["lwtest-key-exposed"]["State"] == "ENABLED"
    assert json.loads(home["lwtest-key-exposed"]["EventPattern"]) == KEY_EXPOSED_PATTERN
    for rule in home.values():
        (target,) = rule["Targets"]
        assert target["Arn"] == HOME_TARGET
        assert target["DeadLetterConfig"]["Arn"].endswith(":lwtest-events-undelivered")
    # What setup sent is what the patterns say: the IPv4 complement as cidr values, and
    # one rule for every IPv6 address (re-checked by the notifier).
    sent = [json.loads(r["EventPattern"]) for _, r in sorted(api.items())]
    assert sent == event_patterns(
        parse_config(cli.config_text, "x", {}, need_webhook=False).allowed
    )
    assert sent[-1]["detail"]["sourceIPAddress"] == [{"wildcard": "*:*"}]

    # us-west-2: the same API-call rules and the exposure rule, forwarding to the home bus.
    west = key_rules(aws, "us-west-2")
    assert set(west) == set(home)
    for rule in west.values():
        (target,) = rule["Targets"]
        assert target["Arn"] == HOME_BUS and target["RoleArn"] == FORWARD_ROLE
    # A region outside the fast path (and not one Health reports in) gets none.
    assert key_rules(aws, "eu-west-1") == {}

    # tamper: its rules beside them, in the same regions (IAM's calls
    # arrive in us-east-1), and its two backstop filters: CIS CloudWatch.5 exactly, and
    # one for loginwatch's own resources.
    tamper = tamper_patterns(Names.for_config(load(cli.config_text), ACCOUNT))
    for region in ("us-east-1", "us-west-2"):
        found = tamper_rules(aws, region)
        assert [json.loads(found[n]["EventPattern"]) for n in sorted(found)] == tamper
        assert {r["State"] for r in found.values()} == {"ENABLED"}
    assert tamper_rules(aws, "eu-west-1") == {}
    assert filters(aws)["lwtest-cis-trail-changes"]["filterPattern"] == TRAIL_CHANGES
    assert "lwtest-notifier" in filters(aws)["lwtest-tamper-own-resources"]["filterPattern"]
    assert {"lwtest-cis-trail-changes", "lwtest-tamper-own-resources"} <= set(alarms(aws))

    # EventBridge may invoke the notifier from our rules only.
    policy = json.loads(aws.lambda_.get_policy(FunctionName="lwtest-notifier")["Policy"])
    conditions = [s["Condition"]["ArnLike"]["AWS:SourceArn"] for s in policy["Statement"]]
    assert f"arn:aws:events:us-east-1:{ACCOUNT}:rule/lwtest-*" in conditions

    # The backstop: a metric filter and alarm per rule on the trail's log group.
    found = filters(aws)
    assert found["lwtest-key-quarantined"]["filterPattern"] == QUARANTINE_FILTER
    assert "AwsApiCall" in found["lwtest-key-api-calls-outside"]["filterPattern"]
    assert {"lwtest-key-api-calls-outside", "lwtest-key-quarantined"} <= set(alarms(aws))

    # Converged: nothing is written.
    again = setup_ok(cli)
    assert again.mutating == [], again.mutating
    status = cli.run("status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    states = {(r["kind"], r["region"]): r["state"] for r in json.loads(status.stdout)["resources"]}
    assert states[("watch-rules", "us-east-1")] == "ok"
    assert states[("watch-rules", "us-west-2")] == "ok"

    # access_key_outside_allowlist off: its rules, filter and alarm go; the exposure stays.
    cli.write_config(
        ONE_FORWARDING_REGION + KEY_RULES.replace("    enabled: true\n", "    enabled: false\n", 1)
    )
    setup_ok(cli)
    assert set(key_rules(aws, "us-east-1")) == {"lwtest-key-exposed"}
    assert set(key_rules(aws, "us-west-2")) == {"lwtest-key-exposed"}
    assert "lwtest-key-api-calls-outside" not in filters(aws)
    assert "lwtest-key-api-calls-outside" not in alarms(aws)

    # tamper off: its rules, filters and alarms go.
    cli.write_config(cli.config_text.replace("tamper: {enabled: true}", "tamper: {enabled: false}"))
    setup_ok(cli)
    assert tamper_rules(aws, "us-east-1") == {} and tamper_rules(aws, "us-west-2") == {}
    assert not {"lwtest-cis-trail-changes", "lwtest-tamper-own-resources"} & set(alarms(aws))

    # Teardown removes the rest; the trail's log group (audit data) stays.
    down = cli.run("teardown", "--yes")
    assert down.returncode == 0, down.stdout + down.stderr
    assert key_rules(aws, "us-east-1") == {} and key_rules(aws, "us-west-2") == {}
    groups = aws.logs.describe_log_groups(logGroupNamePrefix=LOG_GROUP)["logGroups"]
    assert [g["logGroupName"] for g in groups] == [LOG_GROUP]


def test_test_alert_events_travel_the_access_key_rules_to_the_notifier(
    aws_mocked: Any,
) -> None:
    """`test-alert --rule … --via fast-path`: the marked event of each access-key rule is
    put in us-west-2 and reaches the notifier through that rule's forwarding and home
    rules (the emulator records what EventBridge hands to Lambda)."""
    from loginwatch import engine
    from loginwatch.alert_drill import Clock, via_fast_path
    from loginwatch.demo import emulator
    from loginwatch.notifier import protocol
    from tests.support.inprocess import SilentProgress, load

    config = load(ONE_FORWARDING_REGION + KEY_RULES)
    engine.apply(engine.build_deployment(config, aws_mocked), SilentProgress())
    drill = engine.drill_deployment(config, aws_mocked)
    no_wait = Clock(sleep=lambda _: None)
    kinds = {
        "access_key_outside_allowlist": "AWS API Call via CloudTrail",
        "credentials_exposed": "AWS Health Event",
    }
    for rule, detail_type in kinds.items():
        emulator.LAMBDA_DELIVERIES.clear()
        via_fast_path(drill, "t1-key", region="us-west-2", timeout=0, clock=no_wait, rule=rule)
        ((function, event),) = emulator.LAMBDA_DELIVERIES  # once: no other rule took it
        assert function == HOME_TARGET
        assert event["source"] == protocol.TEST_EVENT_SOURCE
        assert event["detail-type"] == detail_type
        assert event["detail"]["loginwatchTestRule"] == rule
