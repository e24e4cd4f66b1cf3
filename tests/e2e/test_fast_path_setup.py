"""The fast path's resources through the installed CLI, read back with boto3 in every region."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest
from moto.events.models import EventPattern

from loginwatch.names import Names
from loginwatch.notifier import protocol
from loginwatch.resources.sign_in_rule import SIGN_IN_DETAIL_TYPES, event_pattern
from loginwatch.tamper_patterns import tamper_patterns
from tests.conftest import load_fixture
from tests.support.cli import BASE_CONFIG, EMULATED_REGIONS, FORWARDING_REGIONS, Cli, every_region
from tests.support.inprocess import load

ACCOUNT = "123456789012"
RULE = "lwtest-console-sign-in"
HOME_BUS = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:lwtest-notifier"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/lwtest-events-forward"
# tamper (on by default) is on the fast path too: its rules, one per pattern, beside the
# sign-in rule in every region of the fast path.
_NAMES = Names.for_config(load(BASE_CONFIG), ACCOUNT)
TAMPER_RULES = sorted(_NAMES.tamper_rule(i) for i in range(len(tamper_patterns(_NAMES))))


def rules_by_region(aws: Any) -> dict[str, list[dict[str, Any]]]:
    found = {}
    for region in EMULATED_REGIONS:
        events = aws.in_region("events", region)
        rules = events.list_rules().get("Rules", [])
        if rules:
            found[region] = [
                {**rule, "Targets": events.list_targets_by_rule(Rule=rule["Name"])["Targets"]}
                for rule in rules
            ]
    return found


def dead_letter_queue_regions(aws: Any) -> list[str]:
    """Where a rule's events dead-letter queue exists."""
    return [
        region
        for region in EMULATED_REGIONS
        if aws.in_region("sqs", region)
        .list_queues(QueueNamePrefix="lwtest-events")
        .get("QueueUrls")
    ]


def setup_with(cli: Cli, extra: str = "") -> Any:
    cli.write_config(BASE_CONFIG + extra)
    run = cli.run("setup")
    assert run.returncode == 0, run.stderr + run.stdout
    return run


@pytest.mark.in_process
def test_rules_roles_and_permission_follow_the_config(cli: Cli, aws: Any) -> None:
    """One region listed, then the fast path off and on again (two regions enabled: the
    other one stands for all; the next test is about every region)."""
    # One region listed: the home rule and exactly one forwarding rule.
    setup_with(cli, "fast_path:\n  regions: [us-west-2]\n")
    rules = rules_by_region(aws)
    assert sorted(rules) == ["us-east-1", "us-west-2"]
    (home,) = [r for r in rules["us-east-1"] if not r["Name"].startswith("lwtest-tamper-")]
    assert home["Name"] == RULE and home["State"] == "ENABLED"
    assert json.loads(home["EventPattern"]) == event_pattern()
    assert [(t["Id"], t["Arn"]) for t in home["Targets"]] == [("loginwatch", FUNCTION_ARN)]
    (forward,) = [r for r in rules["us-west-2"] if not r["Name"].startswith("lwtest-tamper-")]
    # tamper's rules beside it, in both regions, each with one target like the sign-in rule's
    for region, target_arn in (("us-east-1", FUNCTION_ARN), ("us-west-2", HOME_BUS)):
        tamper = [r for r in rules[region] if r["Name"].startswith("lwtest-tamper-")]
        assert sorted(r["Name"] for r in tamper) == TAMPER_RULES
        assert [[t["Arn"] for t in r["Targets"]] for r in tamper] == [[target_arn]] * len(tamper)
    (target,) = forward["Targets"]
    assert target["Arn"] == HOME_BUS and target["RoleArn"] == ROLE_ARN
    # Each rule's dead-letter queue, in the rule's own region (EventBridge requires it).
    assert target["DeadLetterConfig"]["Arn"].startswith(f"arn:aws:sqs:us-west-2:{ACCOUNT}:")
    assert dead_letter_queue_regions(aws) == ["us-east-1", "us-west-2"]
    assert json.loads(forward["EventPattern"]) == event_pattern()

    role = aws.iam.get_role(RoleName="lwtest-events-forward")["Role"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    inline = aws.iam.get_role_policy(RoleName="lwtest-events-forward", PolicyName="loginwatch")
    (allowed,) = inline["PolicyDocument"]["Statement"]
    assert allowed["Action"] == "events:PutEvents" and allowed["Resource"] == HOME_BUS

    policy = json.loads(aws.lambda_.get_policy(FunctionName="lwtest-notifier")["Policy"])
    (from_rule,) = [s for s in policy["Statement"] if s["Sid"] == "lwtest-events-invoke"]
    assert from_rule["Principal"] == {"Service": "events.amazonaws.com"}
    assert from_rule["Condition"]["ArnLike"]["AWS:SourceArn"] == home["Arn"]
    (from_watch,) = [s for s in policy["Statement"] if s["Sid"] == "lwtest-watch-rules-invoke"]
    assert from_watch["Principal"] == {"Service": "events.amazonaws.com"}
    assert from_watch["Condition"]["ArnLike"]["AWS:SourceArn"] == _NAMES.rules_arn()

    # Off: every fast-path resource goes; status is healthy without them.
    setup_with(cli, "fast_path:\n  enabled: false\n")
    assert rules_by_region(aws) == {}
    assert dead_letter_queue_regions(aws) == []
    assert "lwtest-events-forward" not in [r["RoleName"] for r in aws.iam.list_roles()["Roles"]]
    policy = json.loads(aws.lambda_.get_policy(FunctionName="lwtest-notifier")["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["lwtest-sns-invoke"]
    status = cli.run("status", "--json")
    assert status.returncode == 0, status.stdout
    kinds = {r["kind"] for r in json.loads(status.stdout)["resources"]}
    fast_kinds = {
        "sign-in-rule",
        "forwarding-rule",
        "forwarding-role",
        "events-permission",
        "watch-rules",
        "watch-rules-permission",
    }
    assert not kinds & (fast_kinds | {"events-dead-letter-queue"})
    assert setup_with(cli, "fast_path:\n  enabled: false\n").mutating == []

    # On again (`all`: here, the one other enabled region): all of it comes back.
    setup_with(cli)
    assert sorted(rules_by_region(aws)) == ["us-east-1", "us-west-2"]
    assert "lwtest-events-forward" in [r["RoleName"] for r in aws.iam.list_roles()["Roles"]]


@pytest.mark.in_process
@every_region
def test_rules_follow_the_config_in_every_region(cli: Cli, aws: Any) -> None:
    # `all` (the default): every other enabled region forwards. (That a second run writes
    # nothing is test_setup's, in two regions: each region runs the same code.)
    setup_with(cli)
    assert sorted(rules_by_region(aws)) == sorted(EMULATED_REGIONS)

    # Back to one region: the 18 others are removed, and only those.
    narrowed = setup_with(cli, "fast_path:\n  regions: [us-west-2]\n")
    assert sorted(rules_by_region(aws)) == ["us-east-1", "us-west-2"]
    # one line per kind (rule, dead-letter queue, tamper's watch rules) for the 18 regions
    assert narrowed.stdout.count("  removed") == 3
    assert f"{len(FORWARDING_REGIONS) - 1} regions" in narrowed.stdout
    assert dead_letter_queue_regions(aws) == ["us-east-1", "us-west-2"]

    # Teardown removes the rest (it reads every enabled region for what is left).
    run = cli.run("teardown", "--yes")
    assert run.returncode == 0, run.stderr
    assert rules_by_region(aws) == {}
    assert aws.dynamodb.list_tables()["TableNames"] == []


@pytest.mark.in_process
@pytest.mark.enabled_regions("us-east-1", "eu-west-1", "us-west-2")
def test_a_stopped_rule_in_one_region_is_drift_that_setup_repairs(cli: Cli) -> None:
    setup_with(cli, "fast_path:\n  regions: [eu-west-1, us-west-2]\n")
    boto3.client("events", region_name="eu-west-1").disable_rule(Name=RULE)
    status = cli.run("status", "--json")
    assert status.returncode == 1
    report = json.loads(status.stdout)
    (broken,) = [r for r in report["resources"] if r["state"] != "ok"]
    assert (broken["kind"], broken["region"]) == ("forwarding-rule", "eu-west-1")
    assert broken["details"] == ["state: DISABLED → ENABLED"]
    human = cli.run("status")
    assert "1 problem(s)" in human.stdout
    setup_with(cli, "fast_path:\n  regions: [eu-west-1, us-west-2]\n")
    assert cli.run("status").returncode == 0


# ---------------------------------------------------------------- the pattern, on real shapes


def matches(event: dict[str, Any]) -> bool:
    """moto's own matcher (TestEventPattern is a stub); the pattern uses only plain
    value lists, which every EventBridge matcher treats alike."""
    return EventPattern.load(json.dumps(event_pattern())).matches_event(event)


@pytest.mark.parametrize("detail_type", SIGN_IN_DETAIL_TYPES)
def test_pattern_matches_real_sign_in_events_both_spellings(detail_type: str) -> None:
    event = copy.deepcopy(load_fixture("eventbridge/console_signin_event.json"))
    event["detail-type"] = detail_type
    assert matches(event)
    for kind in ("root_success", "iam_user_failure", "assumed_role_sso", "iam_user_ipv6"):
        event["detail"] = load_fixture(f"cloudtrail/console_login_{kind}.json")
        assert matches(event), kind


def test_pattern_matches_the_test_event_and_nothing_else() -> None:
    event = copy.deepcopy(load_fixture("eventbridge/console_signin_event.json"))
    test_event = {
        **event,
        "source": protocol.TEST_EVENT_SOURCE,
        "detail-type": protocol.TEST_EVENT_DETAIL_TYPE,
        "detail": protocol.marked_event_detail("t1-abc", "eu-west-1"),
    }
    assert matches(test_event)
    assert not matches({**event, "detail": {**event["detail"], "eventName": "CheckMfa"}})
    assert not matches({**event, "source": "aws.s3"})
    assert not matches({**event, "detail-type": "AWS API Call via CloudTrail"})
    # only features every EventBridge matcher accepts: plain lists of strings
    for values in (event_pattern()["source"], event_pattern()["detail-type"]):
        assert all(isinstance(v, str) for v in values)
    assert "anything-but" not in json.dumps(event_pattern())


# ---------------------------------------------------------------- test-alert --via fast-path


def test_test_event_travels_the_forwarding_rule_to_the_notifier_and_breaks_are_named(
    aws_mocked: Any,
) -> None:
    from loginwatch import engine
    from loginwatch.alert_drill import Clock, via_fast_path
    from loginwatch.demo import emulator
    from tests.support.inprocess import SilentProgress, load

    aws = aws_mocked
    config = load(BASE_CONFIG + "fast_path:\n  regions: [us-west-2]\n")
    engine.apply(engine.build_deployment(config, aws), SilentProgress())
    no_wait = Clock(sleep=lambda _: None)
    emulator.LAMBDA_DELIVERIES.clear()

    drill = engine.drill_deployment(config, aws)
    result = via_fast_path(drill, "t1-fast", region="us-west-2", timeout=0, clock=no_wait)
    # us-west-2's rule forwarded it to the home bus, whose rule invoked the notifier:
    ((function, event),) = emulator.LAMBDA_DELIVERIES
    assert function == FUNCTION_ARN
    assert event["source"] == protocol.TEST_EVENT_SOURCE
    assert event["detail"]["loginwatchTestId"] == "t1-fast"
    # the emulator runs no function, so nothing logs a delivery: every link checks out
    assert not result.delivered
    assert result.diagnosis == [
        "Every link looks configured. EventBridge delivery is best effort and usually "
        "takes seconds; try again, or `loginwatch test-alert --via lambda`."
    ]

    emulator.LAMBDA_DELIVERIES.clear()
    boto3.client("events", region_name="us-west-2").disable_rule(Name=RULE)
    aws.client("lambda").remove_permission(
        FunctionName="lwtest-notifier", StatementId="lwtest-events-invoke"
    )
    broken = via_fast_path(drill, "t2-fast", region="us-west-2", timeout=0, clock=no_wait)
    # (moto still forwards through a DISABLED rule; AWS would not. The diagnosis is the point.)
    assert broken.diagnosis == [
        "forwarding rule (us-west-2): state: DISABLED → ENABLED (run setup).",
        "EventBridge → Lambda: EventBridge is not allowed to invoke the notifier (run setup).",
    ]
