"""`loginwatch test-alert`: --via slack for real over HTTP; lambda and alarm pinned by Stubber."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from loginwatch.alert_drill import Clock, via_alarm, via_lambda
from loginwatch.cli import main
from loginwatch.demo.webhook_catcher import SlackReply, SlackStub
from loginwatch.engine import drill_deployment
from loginwatch.names import Names
from loginwatch.resources.base import Deployment
from tests.support.inprocess import load, offline_aws

NAMES = Names(name="lwtest", region="us-east-1", account="123456789012", partition="aws")
CONFIG = """\
region: us-east-1
name: lwtest
allowed_ips: [203.0.113.10]
slack:
  webhook_url: {url}
"""


def drill(aws: Any, *regions: str) -> Deployment:
    """What the CLI hands the alarm and fast-path drills (lwtest in us-east-1, as NAMES),
    with the account's enabled regions given rather than asked of EC2."""
    deployment = drill_deployment(load(), aws)
    deployment.enabled_regions = frozenset({"us-east-1", *regions})
    return deployment


def write_config(tmp_path: Path, url: str) -> str:
    path = tmp_path / "lw.yaml"
    path.write_text(CONFIG.format(url=url))
    return str(path)


def run_cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(args)
    return int(info.value.code or 0)


def test_via_slack_posts_a_labelled_test_from_this_machine(
    tmp_path: Path, slack_server: SlackStub, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, slack_server.url)
    assert run_cli(["test-alert", "--via", "slack", "--config", config]) == 0
    (request,) = slack_server.requests
    assert request.json["text"].startswith("[TEST] loginwatch test alert t")
    assert "AWS not involved" in request.json["text"]
    out = capsys.readouterr().out
    out = " ".join(out.split())  # wrapped at the terminal's width, between words
    assert "Delivered" in out and "Slack answered 200" in out
    assert slack_server.url not in out  # the webhook is never printed in full


def test_via_slack_reports_a_dead_webhook_and_exits_1(
    tmp_path: Path, slack_server: SlackStub, capsys: pytest.CaptureFixture[str]
) -> None:
    slack_server.script(SlackReply(status=404, body="no_service"))
    config = write_config(tmp_path, slack_server.url)
    assert run_cli(["test-alert", "--via", "slack", "--config", config]) == 1
    out = capsys.readouterr().out
    assert "Not delivered" in out and "404" in out and slack_server.url not in out


def _payload(data: Any) -> StreamingBody:
    raw = json.dumps(data).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def test_via_lambda_reports_the_handlers_answer() -> None:
    aws = offline_aws()
    client = aws.client("lambda")
    with Stubber(client) as stub:
        stub.add_response(
            "invoke",
            {
                "StatusCode": 200,
                "Payload": _payload(
                    {
                        "loginwatch": "notifier",
                        "outcome": "test-posted",
                        "test_id": "t1-abc",
                        "slack_status": 200,
                    }
                ),
            },
            {
                "FunctionName": "lwtest-notifier",
                "InvocationType": "RequestResponse",
                "LogType": "Tail",
                "Payload": ANY,
            },
        )
        result = via_lambda(aws, NAMES, "t1-abc")
    assert result.delivered and result.slack_status == 200


def test_via_lambda_function_error_is_not_delivered_and_says_why() -> None:
    aws = offline_aws()
    client = aws.client("lambda")
    import base64

    tail = base64.b64encode(
        b'{"loginwatch": "notifier", "outcome": "failed", "slack_status": 410}\n'
    ).decode()
    with Stubber(client) as stub:
        stub.add_response(
            "invoke",
            {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "LogResult": tail,
                "Payload": _payload({"errorMessage": "Slack refused the message (410)"}),
            },
            {
                "FunctionName": "lwtest-notifier",
                "InvocationType": "RequestResponse",
                "LogType": "Tail",
                "Payload": ANY,
            },
        )
        result = via_lambda(aws, NAMES, "t1-abc")
    assert not result.delivered and result.slack_status == 410
    assert "Slack refused the message (410)" in result.detail


class FakeClock(Clock):
    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []
        super().__init__(now=lambda: self.t, sleep=self._sleep)

    def _sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def _log_event(record: dict[str, Any]) -> dict[str, Any]:
    return {"message": json.dumps(record), "timestamp": 0, "logStreamName": "s", "eventId": "1"}


def test_via_alarm_waits_for_the_notifier_and_resets_the_alarm() -> None:
    aws = offline_aws()
    cw, logs = aws.client("cloudwatch"), aws.client("logs")
    clock = FakeClock()
    record = {
        "loginwatch": "notifier",
        "outcome": "test-posted",
        "test_id": "t1-abc",
        "slack_status": 200,
    }
    with Stubber(cw) as cw_stub, Stubber(logs) as logs_stub:
        cw_stub.add_response(
            "set_alarm_state",
            {},
            {
                "AlarmName": NAMES.alarm,
                "StateValue": "ALARM",
                "StateReason": "loginwatch test-alert t1-abc",
            },
        )
        logs_stub.add_response(
            "filter_log_events",
            {"events": []},
            {
                "logGroupName": NAMES.notifier_log_group,
                "startTime": ANY,
                "filterPattern": '"t1-abc"',
            },
        )
        logs_stub.add_response(
            "filter_log_events",
            {"events": [_log_event(record)]},
            {
                "logGroupName": NAMES.notifier_log_group,
                "startTime": ANY,
                "filterPattern": '"t1-abc"',
            },
        )
        cw_stub.add_response(
            "set_alarm_state",
            {},
            {"AlarmName": NAMES.alarm, "StateValue": "OK", "StateReason": ANY},
        )
        result = via_alarm(drill(aws), "t1-abc", timeout=90, clock=clock)
        cw_stub.assert_no_pending_responses()
    assert result.delivered and result.slack_status == 200 and result.seconds == 3.0
    assert clock.slept == [3.0]


def test_via_alarm_timeout_diagnoses_the_broken_link() -> None:
    aws = offline_aws()
    cw, logs, sns, lam = (aws.client(s) for s in ("cloudwatch", "logs", "sns", "lambda"))
    clock = FakeClock()
    failed = {
        "loginwatch": "notifier",
        "outcome": "failed",
        "slack_status": 404,
        "reason": "SlackDeliveryError: webhook revoked",
    }
    with (
        Stubber(cw) as cw_stub,
        Stubber(logs) as logs_stub,
        Stubber(sns) as sns_stub,
        Stubber(lam) as lam_stub,
    ):
        cw_stub.add_response("set_alarm_state", {}, None)
        for _ in range(4):  # t = 0, 3, 6, 9 → timeout at 9 s
            logs_stub.add_response("filter_log_events", {"events": []}, None)
        sns_stub.add_response(
            "list_subscriptions_by_topic", {"Subscriptions": []}, {"TopicArn": NAMES.topic_arn}
        )
        lam_stub.add_client_error(
            "get_policy", "ResourceNotFoundException", "No policy is associated", 404
        )
        cw_stub.add_response("get_metric_statistics", {"Datapoints": [{"Sum": 2.0}]}, None)
        logs_stub.add_response("filter_log_events", {"events": [_log_event(failed)]}, None)
        cw_stub.add_response(
            "set_alarm_state",
            {},
            {"AlarmName": NAMES.alarm, "StateValue": "OK", "StateReason": ANY},
        )
        result = via_alarm(drill(aws), "t1-abc", timeout=9, clock=clock)
        cw_stub.assert_no_pending_responses()
    assert not result.delivered and "no delivery seen within 9 s" in result.detail
    text = "\n".join(result.diagnosis)
    assert "no subscription for the notifier" in text
    assert "SNS is not allowed to invoke the notifier" in text
    assert "failed 2 time(s)" in text
    assert "webhook answered 404" in text


def test_synthetic_event_is_what_the_notifier_recognises_as_a_test() -> None:
    from loginwatch.alert_drill import synthetic_alarm_event
    from loginwatch.notifier.alarm_event import parse_event
    from loginwatch.notifier.protocol import find_test_id

    notice = parse_event(synthetic_alarm_event(NAMES, "t9-xyz", datetime(2026, 11, 27, tzinfo=UTC)))
    assert notice.alarm_name == NAMES.alarm and notice.new_state == "ALARM"
    assert find_test_id(notice.state_reason) == "t9-xyz"


def test_via_fast_path_puts_a_marked_event_and_reports_the_notifiers_delivery() -> None:
    from loginwatch.alert_drill import via_fast_path
    from loginwatch.notifier import protocol

    aws = offline_aws()
    events, logs = aws.client("events", "eu-west-1"), aws.client("logs")
    line = json.dumps(
        {"loginwatch": "notifier", "outcome": "test-posted", "test_id": "t9", "slack_status": 200}
    )
    with Stubber(events) as bus, Stubber(logs) as log:
        bus.add_response(
            "put_events",
            {"FailedEntryCount": 0, "Entries": [{"EventId": "e1"}]},
            {
                "Entries": [
                    {
                        "Source": protocol.TEST_EVENT_SOURCE,
                        "DetailType": protocol.TEST_EVENT_DETAIL_TYPE,
                        "Detail": json.dumps(protocol.marked_event_detail("t9", "eu-west-1")),
                        "EventBusName": "default",
                    }
                ]
            },
        )
        log.add_response(
            "filter_log_events",
            {"events": [{"message": line}]},
            {
                "logGroupName": NAMES.notifier_log_group,
                "startTime": ANY,
                "filterPattern": '"t9"',
            },
        )
        result = via_fast_path(
            drill(aws, "eu-west-1"),
            "t9",
            region="eu-west-1",
            timeout=30,
            clock=Clock(sleep=lambda _: None),
        )
    assert result.delivered and result.route == "fast-path" and result.slack_status == 200


def test_via_fast_path_says_when_eventbridge_refuses_the_event() -> None:
    from loginwatch.alert_drill import via_fast_path

    aws = offline_aws()
    events = aws.client("events", "eu-west-1")
    with Stubber(events) as bus:
        bus.add_response(
            "put_events",
            {
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "AccessDeniedException", "ErrorMessage": "no"}],
            },
        )
        result = via_fast_path(drill(aws, "eu-west-1"), "t9", region="eu-west-1", timeout=30)
    assert not result.delivered
    assert result.detail == "EventBridge refused the test event: AccessDeniedException: no"


def test_fast_path_test_is_refused_when_the_fast_path_is_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from loginwatch import aws as aws_module

    monkeypatch.setattr(aws_module, "connect", lambda *a, **k: offline_aws())
    path = tmp_path / "lw.yaml"
    path.write_text(
        CONFIG.format(url="https://hooks.slack.com/services/T/B/x" * 1)
        + "fast_path:\n  enabled: false\n"
    )
    assert run_cli(["test-alert", "--via", "fast-path", "--config", str(path)]) == 2
    assert "The fast path is off" in capsys.readouterr().err


RULES_CONFIG = (
    CONFIG
    + """\
  destinations:
    - name: urgent
      webhook_url: {urgent}
      severities: [critical]
      mention: here
rules:
  root_sign_in: {{}}
"""
)


def test_via_slack_for_a_rule_posts_to_the_channels_that_rule_goes_to(
    tmp_path: Path, slack_server: SlackStub
) -> None:
    urgent = SlackStub().start()
    try:
        path = tmp_path / "lw.yaml"
        path.write_text(RULES_CONFIG.format(url=slack_server.url, urgent=urgent.url))
        args = ["test-alert", "--via", "slack", "--config", str(path)]
        assert run_cli([*args, "--rule", "root_sign_in"]) == 0
        (request,) = urgent.requests
        assert (
            "rule `root_sign_in` reach this channel (destination `urgent`)" in request.body.decode()
        )
        assert slack_server.requests == []
        assert run_cli(args) == 0  # without --rule: the default channel
        assert len(slack_server.requests) == 1 and len(urgent.requests) == 1
    finally:
        urgent.stop()


def test_a_rule_that_is_off_cannot_be_tested(
    tmp_path: Path, slack_server: SlackStub, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, slack_server.url)
    assert run_cli(["test-alert", "--via", "slack", "--rule", "no_mfa", "--config", config]) == 2
    err = capsys.readouterr().err
    assert "The rule no_mfa is off" in err and "rules.no_mfa.enabled: true" in err
    assert "Traceback" not in err and slack_server.requests == []


def test_via_alarm_for_a_rule_fires_that_rules_alarm() -> None:
    aws = offline_aws()
    cw, logs = aws.client("cloudwatch"), aws.client("logs")
    record = {"loginwatch": "notifier", "outcome": "test-posted", "test_id": "t1-abc"}
    alarm = "lwtest-cis-root-usage"
    with Stubber(cw) as cw_stub, Stubber(logs) as logs_stub:
        cw_stub.add_response(
            "set_alarm_state",
            {},
            {
                "AlarmName": alarm,
                "StateValue": "ALARM",
                "StateReason": "loginwatch test-alert t1-abc for rule root_sign_in",
            },
        )
        logs_stub.add_response("filter_log_events", {"events": [_log_event(record)]}, None)
        cw_stub.add_response(
            "set_alarm_state", {}, {"AlarmName": alarm, "StateValue": "OK", "StateReason": ANY}
        )
        result = via_alarm(drill(aws), "t1-abc", timeout=90, clock=FakeClock(), rule="root_sign_in")
        cw_stub.assert_no_pending_responses()
    assert result.delivered


# ---------------------------------------------------------------- diagnosis, link by link


def _lambda_policy(*statements: tuple[str, str, str]) -> dict[str, Any]:
    """GetPolicy's answer: (statement id, service principal, source ARN) for each."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"Service": principal},
                "Action": "lambda:InvokeFunction",
                "Resource": NAMES.function_arn,
                "Condition": {"ArnLike": {"AWS:SourceArn": source}},
            }
            for sid, principal, source in statements
        ],
    }
    return {"Policy": json.dumps(policy)}


def _subscription(arn: str, endpoint: str = NAMES.function_arn) -> dict[str, str]:
    return {
        "SubscriptionArn": arn,
        "Owner": NAMES.account,
        "Protocol": "lambda",
        "Endpoint": endpoint,
        "TopicArn": NAMES.topic_arn,
    }


def _quiet_function(cw_stub: Stubber, logs_stub: Stubber) -> None:
    """No Lambda errors and no failed Slack delivery: only the resources' findings remain."""
    cw_stub.add_response("get_metric_statistics", {"Datapoints": []}, None)
    logs_stub.add_response("filter_log_events", {"events": []}, None)


def _alarm_diagnosis(subscription_pages: list[dict[str, Any]]) -> list[str]:
    from loginwatch.alert_drill import diagnose

    aws = offline_aws()
    sns, lam, cw, logs = (aws.client(s) for s in ("sns", "lambda", "cloudwatch", "logs"))
    with (
        Stubber(sns) as sns_stub,
        Stubber(lam) as lam_stub,
        Stubber(cw) as cw_stub,
        Stubber(logs) as logs_stub,
    ):
        for page in subscription_pages:
            sns_stub.add_response("list_subscriptions_by_topic", page, None)
        lam_stub.add_response(
            "get_policy",
            _lambda_policy((NAMES.permission_sid, "sns.amazonaws.com", NAMES.topic_arn)),
            {"FunctionName": NAMES.function},
        )
        _quiet_function(cw_stub, logs_stub)
        findings = diagnose(drill(aws), datetime.now(UTC))
        sns_stub.assert_no_pending_responses()
    return findings


def test_the_alarm_diagnosis_sees_the_subscription_on_a_later_page() -> None:
    others = [
        _subscription(f"{NAMES.topic_arn}:other-{i}", f"mail{i}@example.com") for i in range(3)
    ]
    findings = _alarm_diagnosis(
        [
            {"Subscriptions": others, "NextToken": "page-2"},
            {"Subscriptions": [_subscription(f"{NAMES.topic_arn}:loginwatch")]},
        ]
    )
    assert findings == [
        "Every link looks configured. CloudWatch → SNS may be slow, or the topic's KMS key "
        "may not let CloudWatch use it; try `loginwatch test-alert --via lambda`."
    ]


def test_a_pending_subscription_is_reported_once_by_the_subscriptions_own_check() -> None:
    from loginwatch.resources.subscription import PENDING

    findings = _alarm_diagnosis([{"Subscriptions": [_subscription(PENDING)]}])
    assert findings == ["SNS → Lambda: the subscription is pending confirmation."]


def test_the_fast_path_diagnosis_judges_each_link_by_its_resource_in_travel_order() -> None:
    """A disabled forwarding rule and a forwarding role without its policy: each named by
    the resource's own diff; the home rule and the invoke permission are fine."""
    from loginwatch.alert_drill import diagnose_fast_path
    from loginwatch.resources.role import ForwardingRole
    from loginwatch.resources.sign_in_rule import ForwardingRule, SignInRule, event_pattern

    aws = offline_aws()
    deployment = drill(aws, "eu-west-1")
    tags = deployment.tag_list()

    def rule_answers(stub: Stubber, rule: SignInRule, state: str) -> None:
        stub.add_response(
            "describe_rule",
            {
                "Name": rule.name,
                "Arn": rule.arn,
                "EventPattern": json.dumps(event_pattern()),
                "State": state,
                "Description": rule.description(),
            },
            {"Name": rule.name},
        )
        stub.add_response("list_targets_by_rule", {"Targets": [rule.target()]}, None)
        stub.add_response("list_tags_for_resource", {"Tags": tags}, None)

    role = ForwardingRole(deployment)
    with (
        Stubber(aws.client("events", "eu-west-1")) as there,
        Stubber(aws.client("iam")) as iam,
        Stubber(aws.client("events")) as home,
        Stubber(aws.client("lambda")) as lam,
        Stubber(aws.client("cloudwatch")) as cw,
        Stubber(aws.client("logs")) as logs,
    ):
        rule_answers(there, ForwardingRule(deployment, "eu-west-1"), "DISABLED")
        iam.add_response(
            "get_role",
            {
                "Role": {
                    "Path": "/",
                    "RoleName": role.name,
                    "RoleId": "AROAEXAMPLE000000000",
                    "Arn": role.arn,
                    "CreateDate": datetime(2026, 1, 1, tzinfo=UTC),
                    "AssumeRolePolicyDocument": json.dumps(role.trust()),
                    "Tags": tags,
                }
            },
            {"RoleName": role.name},
        )
        iam.add_client_error("get_role_policy", "NoSuchEntity", "no inline policy", 404)
        rule_answers(home, SignInRule(deployment), "ENABLED")
        lam.add_response(
            "get_policy",
            _lambda_policy((NAMES.events_permission_sid, "events.amazonaws.com", NAMES.rule_arn())),
        )
        _quiet_function(cw, logs)
        findings = diagnose_fast_path(deployment, "eu-west-1", datetime.now(UTC))
        for stub in (there, iam, home, lam):
            stub.assert_no_pending_responses()
    assert findings == [
        "forwarding rule (eu-west-1): state: DISABLED → ENABLED (run setup).",
        "forwarding role: permissions policy: missing (run setup).",
    ]
