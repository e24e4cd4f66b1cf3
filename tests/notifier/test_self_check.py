"""The self-check (paths/self_check.py): checks what can silence loginwatch, posts only
what changed, publishes its heartbeat, pings the dead-man's switch, sums up the week.

moto plays the account (trail, rules in two regions, alarm, topic, function, table,
queue), the Slack stub the webhook; botocore's Stubber answers what moto lacks (the
trail's delivery to CloudWatch Logs). The notifier's wall clock is set per run."""

from __future__ import annotations

import json
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest

from loginwatch.demo.webhook_catcher import SlackReply
from loginwatch.notifier import aws_clients, context, handler, self_check
from loginwatch.notifier.claims import KEY
from loginwatch.notifier.paths import path_for
from loginwatch.notifier.paths import self_check as self_check_path
from loginwatch.notifier.protocol import (
    HEARTBEAT_DIMENSION,
    HEARTBEAT_METRIC,
    HEARTBEAT_NAMESPACE,
    SELF_CHECK_EVENT,
    SELF_CHECK_STATE_KEY,
)
from loginwatch.notifier.self_check_message import (
    WeekSeen,
    build_self_check_message,
    build_weekly_summary,
)
from loginwatch.notifier.self_check_spec import Check
from loginwatch.notifier.self_check_state import Problem, State, iso_week, write_state
from loginwatch.notifier.settings import Settings, SettingsError
from tests.notifier.block_kit import assert_slack_takes
from tests.notifier.conftest import (
    ACCOUNT_ID,
    BASE_SETTINGS,
    CLAIMS_TABLE,
    REGION,
    WEBHOOK_PARAMETER,
    NotifierWorld,
    cloudtrail_record,
    iso,
    test_client,
)

OTHER_REGION = "eu-west-1"
TRAIL = "loginwatch-trail"
RULE = "loginwatch-console-sign-in"
ALARM = "loginwatch-unallowed-console-login"
FUNCTION = "loginwatch-notifier"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{FUNCTION}"
QUEUE = "loginwatch-notifier-undelivered"
HEARTBEAT_PARAMETER = "/loginwatch/heartbeat-url"
HEARTBEAT_URL = "https://hc-ping.example/0b1c2d3e-secret"
OWN_LOG_GROUP = f"/aws/lambda/{FUNCTION}"
# The last Sunday evening, and the Monday after it: two ISO weeks, recent enough for the
# emulator's logs (it refuses events older than 14 days).
_THIS_MONDAY = (datetime.now(UTC) - timedelta(days=datetime.now(UTC).weekday())).replace(
    hour=0, minute=0, second=0, microsecond=0
)
SUNDAY = _THIS_MONDAY - timedelta(hours=2)
MONDAY = _THIS_MONDAY + timedelta(hours=1)
SATURDAY = SUNDAY - timedelta(days=1)


def checks(topic_arn: str, **trail: Any) -> list[dict[str, Any]]:
    return [
        {"check": "trail", "region": REGION, "name": TRAIL, "logs": False, **trail},
        {"check": "rule", "region": REGION, "name": RULE},
        {"check": "rule", "region": OTHER_REGION, "name": RULE},
        {"check": "alarm", "region": REGION, "name": ALARM},
        {"check": "subscription", "region": REGION, "name": topic_arn, "endpoint": FUNCTION_ARN},
        {"check": "concurrency", "region": REGION, "name": FUNCTION},
        {"check": "table", "region": REGION, "name": CLAIMS_TABLE},
        {"check": "queue", "region": REGION, "name": QUEUE},
        {"check": "webhook", "region": REGION, "name": WEBHOOK_PARAMETER, "destination": "default"},
    ]


@dataclass
class Account:
    world: NotifierWorld
    topic_arn: str
    clock: dict[str, datetime | None]
    metrics: list[dict[str, Any]]
    pings: list[str]

    def run(self, at: datetime = SUNDAY, **event: Any) -> dict[str, Any]:
        """One self-check, the notifier's wall clock reading ``at``."""
        self.clock["now"] = at
        try:
            return handler.lambda_handler({**SELF_CHECK_EVENT, **event}, None)
        finally:
            self.clock["now"] = None

    def messages(self) -> list[dict[str, Any]]:
        """What was posted (a probe's ``{}`` has no text: nothing is posted)."""
        return [r.json for r in self.world.slack.requests if r.json.get("text")]

    def state(self) -> dict[str, Any]:
        return test_client("dynamodb").get_item(
            TableName=CLAIMS_TABLE, Key={KEY: {"S": SELF_CHECK_STATE_KEY}}
        )["Item"]


def texts(payload: dict[str, Any]) -> str:
    return json.dumps(payload)


@pytest.fixture
def account(
    world: NotifierWorld, use_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Account]:
    test_client("s3").create_bucket(Bucket="loginwatch-trail-bucket")
    trail = test_client("cloudtrail")
    trail.create_trail(Name=TRAIL, S3BucketName="loginwatch-trail-bucket", IsMultiRegionTrail=True)
    trail.start_logging(Name=TRAIL)
    for region in (REGION, OTHER_REGION):
        events = aws_clients_for_tests("events", region)
        events.put_rule(Name=RULE, EventPattern=json.dumps({"source": ["aws.signin"]}))
        events.put_targets(Rule=RULE, Targets=[{"Id": "notifier", "Arn": FUNCTION_ARN}])
    test_client("cloudwatch").put_metric_alarm(
        AlarmName=ALARM,
        MetricName="UnallowedConsoleLogin",
        Namespace="LoginWatch/loginwatch",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        ActionsEnabled=True,
    )
    topic_arn = test_client("sns").create_topic(Name="loginwatch-alerts")["TopicArn"]
    test_client("sns").subscribe(TopicArn=topic_arn, Protocol="lambda", Endpoint=FUNCTION_ARN)
    role = test_client("iam").create_role(
        RoleName="loginwatch-notifier", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    test_client("lambda").create_function(
        FunctionName=FUNCTION,
        Runtime="python3.12",
        Role=role,
        Handler="loginwatch_notifier.handler.lambda_handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )
    test_client("sqs").create_queue(QueueName=QUEUE)
    use_settings(
        self_check={
            "checks": checks(topic_arn),
            "heartbeat_parameter": "",
            "weekly_summary": False,
        }
    )
    clock: dict[str, datetime | None] = {"now": None}
    made = context.Context.for_invocation

    def at_clock(lambda_context: Any, *, late_cause: str | None = None) -> Any:
        ctx = made(lambda_context, late_cause=late_cause)
        moment = clock["now"]
        if moment is not None:  # a self-check's run; other events keep the real clock
            ctx.now = lambda: moment
        return ctx

    monkeypatch.setattr(context.Context, "for_invocation", at_clock)
    metrics: list[dict[str, Any]] = []
    watch = aws_clients.client("cloudwatch", REGION)
    watch.meta.events.register(
        "provide-client-params.cloudwatch.PutMetricData",
        lambda params, **_: metrics.append(params),
    )
    pings: list[str] = []

    class Answer:
        def __enter__(self) -> Answer:
            return self

        def __exit__(self, *exc: Any) -> None:
            pass

        def read(self, size: int = -1) -> bytes:
            return b"OK"

    def urlopen(request: Any, timeout: float) -> Answer:
        assert timeout <= 5
        pings.append(request.full_url)
        return Answer()

    monkeypatch.setattr(self_check_path, "_urlopen", urlopen)
    yield Account(world, topic_arn, clock, metrics, pings)


def forget_settings() -> None:
    """Read settings.json again (and nothing else: the recorded clients stay)."""
    context._settings = None


def aws_clients_for_tests(service: str, region: str) -> Any:
    import boto3

    return boto3.client(service, region_name=region)  # type: ignore[call-overload]


def heartbeat_values(account: Account) -> list[float]:
    values = []
    for params in account.metrics:
        assert params["Namespace"] == HEARTBEAT_NAMESPACE
        (datum,) = params["MetricData"]
        assert datum["MetricName"] == HEARTBEAT_METRIC
        assert datum["Dimensions"] == [{"Name": HEARTBEAT_DIMENSION, "Value": "loginwatch"}]
        assert datum["Unit"] == "Count"
        values.append(datum["Value"])
    return values


def every_self_check_call(account: Account, use_settings: Any, **settings: Any) -> None:
    """Runs that make each call the self-check declares: every check, the heartbeat and
    its URL, a week's summary (the trail's log group and the notifier's own)."""
    test_client("ssm").put_parameter(
        Name=HEARTBEAT_PARAMETER, Value=HEARTBEAT_URL, Type="SecureString"
    )
    use_settings(
        **settings,
        self_check={
            "checks": checks(account.topic_arn),
            "heartbeat_parameter": HEARTBEAT_PARAMETER,
            "weekly_summary": True,
        },
    )
    forget_settings()
    test_client("logs").create_log_group(logGroupName=OWN_LOG_GROUP)
    with mock.patch.dict("os.environ", {"AWS_LAMBDA_LOG_GROUP_NAME": OWN_LOG_GROUP}):
        assert account.run(SUNDAY)["heartbeat"] is True
        assert account.run(MONDAY)["summary_posted"] is True
    assert account.pings


# ---------------------------------------------------------------- the event and the settings
def test_the_schedules_event_and_test_alerts_take_the_self_check_path() -> None:
    assert path_for(SELF_CHECK_EVENT) is self_check_path
    assert path_for({**SELF_CHECK_EVENT, "requested_by": "test-alert"}) is self_check_path
    assert path_for({"loginwatch": "something-else"}) is not self_check_path


def test_settings_without_self_check_still_read_and_a_wrong_one_is_refused() -> None:
    assert Settings.from_dict(BASE_SETTINGS).self_check is None
    good = {
        "checks": checks("arn:aws:sns:us-east-1:111122223333:loginwatch-alerts"),
        "heartbeat_parameter": HEARTBEAT_PARAMETER,
        "weekly_summary": True,
    }
    settings = Settings.from_dict({**BASE_SETTINGS, "self_check": good})
    assert settings.self_check is not None and len(settings.self_check.checks) == 9
    assert Settings.from_dict(settings.to_dict()) == settings
    bad_checks = [
        {"check": "trail", "region": REGION, "name": TRAIL},  # no "logs"
        {"check": "trail", "region": REGION, "name": TRAIL, "logs": "yes"},
        {"check": "volcano", "region": REGION, "name": "x"},
        {"check": "rule", "region": "", "name": RULE},
        {"check": "rule", "region": REGION, "name": RULE, "extra": 1},
    ]
    for bad in bad_checks:
        with pytest.raises(SettingsError, match="self_check"):
            Settings.from_dict({**BASE_SETTINGS, "self_check": {**good, "checks": [bad]}})
    for key, value in (("weekly_summary", "yes"), ("heartbeat_parameter", None)):
        with pytest.raises(SettingsError, match="self_check"):
            Settings.from_dict({**BASE_SETTINGS, "self_check": {**good, key: value}})
    with pytest.raises(SettingsError, match="self_check"):
        Settings.from_dict({**BASE_SETTINGS, "self_check": {"checks": []}})


def test_without_self_check_settings_the_event_is_ignored(
    world: NotifierWorld,
) -> None:
    answer = handler.lambda_handler(SELF_CHECK_EVENT, None)
    assert answer["outcome"] == "ignored"
    assert not world.slack.requests


# ---------------------------------------------------------------- state changes
def test_a_stopped_trail_posts_once_then_nothing_then_recovered(account: Account) -> None:
    first = account.run(SATURDAY)
    assert first["verdict"] == "healthy" and first["problems"] == [] and first["checked"] == 9
    assert first["posted"] is False and not account.messages()

    test_client("cloudtrail").stop_logging(Name=TRAIL)
    broken = account.run(SATURDAY + timedelta(hours=1))
    assert broken["verdict"] == "broken" and broken["posted"] is True
    (problem,) = broken["problems"]
    assert problem["id"] == f"trail@{REGION}:{TRAIL}"
    assert "not logging" in problem["what"] and "loginwatch setup" in problem["fix"]
    assert problem["since"] == iso(SATURDAY + timedelta(hours=1))
    (message,) = account.messages()
    assert_slack_takes(message)
    assert "[CRITICAL]" in message["text"] and TRAIL in texts(message)
    assert "loginwatch setup" in texts(message)

    again = account.run(SATURDAY + timedelta(hours=2))
    assert again["verdict"] == "broken" and again["posted"] is False
    assert again["problems"][0]["since"] == problem["since"]  # since the first run saw it
    assert len(account.messages()) == 1

    test_client("cloudtrail").start_logging(Name=TRAIL)
    repaired = account.run(SATURDAY + timedelta(hours=3, minutes=30))
    assert repaired["verdict"] == "healthy" and repaired["posted"] is True
    assert repaired["recovered"] == [problem["id"]]
    recovered = account.messages()[-1]
    assert_slack_takes(recovered)
    assert "recovered" in recovered["text"] and "[LOW]" in recovered["text"]
    assert "2 h 30 min" in texts(recovered)
    assert len(account.messages()) == 2
    assert heartbeat_values(account) == [1.0, 0.0, 0.0, 1.0]

    state = account.state()
    assert state["verdict"] == {"S": "healthy"}
    assert state["checked_at"] == {"S": iso(SATURDAY + timedelta(hours=3, minutes=30))}
    assert state["problems"] == {"L": []}
    assert state["runs"] == {"N": "4"} and state["healthy_runs"] == {"N": "2"}
    assert state["week"] == {"S": iso_week(SATURDAY)} and "expires" not in state


@pytest.mark.parametrize(
    ("status", "body"), [(404, "no_service"), (403, "invalid_token"), (410, "channel_is_archived")]
)
def test_a_revoked_webhook_is_detected_without_posting(
    account: Account, status: int, body: str
) -> None:
    account.world.slack.responder = lambda: SlackReply(status, body)
    answer = account.run()
    assert answer["verdict"] == "broken"
    (problem,) = answer["problems"]
    assert problem["id"] == "webhook@default" and body in problem["what"]
    assert "create a new one" in problem["fix"]
    assert answer["posted"] is False and "webhook is broken" in answer["reason"]
    assert account.world.slack.requests  # it was probed...
    assert not account.messages()  # ...with {} only: nothing was posted
    assert all(r.json == {} for r in account.world.slack.requests)
    assert account.world.slack.url not in json.dumps(answer)  # the URL is a secret
    assert heartbeat_values(account) == [0.0]


def test_a_webhook_slack_cannot_answer_for_is_not_counted_broken(account: Account) -> None:
    account.world.slack.responder = lambda: SlackReply(503, "service_unavailable")
    answer = account.run()
    assert answer["verdict"] == "healthy"
    assert [u["id"] for u in answer["could_not_tell"]] == ["webhook@default"]


def test_a_live_webhook_answering_400_no_text_is_fine(account: Account) -> None:
    account.world.slack.responder = lambda: SlackReply(400, "no_text")
    assert account.run()["verdict"] == "healthy"


def test_zero_concurrency_and_a_rule_disabled_in_another_region_are_detected(
    account: Account,
) -> None:
    test_client("lambda").put_function_concurrency(
        FunctionName=FUNCTION, ReservedConcurrentExecutions=0
    )
    aws_clients_for_tests("events", OTHER_REGION).disable_rule(Name=RULE)
    answer = account.run()
    ids = {p["id"] for p in answer["problems"]}
    assert ids == {f"concurrency@{REGION}:{FUNCTION}", f"rule@{OTHER_REGION}:{RULE}"}
    (message,) = account.messages()
    assert OTHER_REGION in texts(message) and "concurrency" in texts(message)


def test_a_missing_rule_alarm_actions_subscription_and_waiting_alerts(account: Account) -> None:
    events = aws_clients_for_tests("events", OTHER_REGION)
    events.remove_targets(Rule=RULE, Ids=["notifier"])
    events.delete_rule(Name=RULE)
    test_client("cloudwatch").disable_alarm_actions(AlarmNames=[ALARM])
    sns = test_client("sns")
    for sub in sns.list_subscriptions_by_topic(TopicArn=account.topic_arn)["Subscriptions"]:
        sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
    sqs = test_client("sqs")
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"], MessageBody="{}")
    answer = account.run()
    by_id = {p["id"]: p for p in answer["problems"]}
    assert set(by_id) == {
        f"rule@{OTHER_REGION}:{RULE}",
        f"alarm@{REGION}:{ALARM}",
        f"subscription@{REGION}:loginwatch-alerts",
        f"queue@{REGION}:{QUEUE}",
    }
    assert "missing" in by_id[f"rule@{OTHER_REGION}:{RULE}"]["what"]
    assert "1 alert(s) wait" in by_id[f"queue@{REGION}:{QUEUE}"]["what"]
    assert "loginwatch redeliver" in by_id[f"queue@{REGION}:{QUEUE}"]["fix"]
    (message,) = account.messages()
    assert_slack_takes(message)


def test_a_test_alert_run_reports_its_verdict(account: Account) -> None:
    answer = account.run(requested_by="test-alert")
    assert answer["verdict"] == "healthy" and answer["requested_by"] == "test-alert"
    assert answer["checked_at"] == iso(SUNDAY)


def test_of_two_overlapping_runs_only_one_records_the_change(account: Account) -> None:
    account.run()
    table = test_client("dynamodb")
    stale = State()  # what a second run read before the first one wrote
    assert not write_state(table, CLAIMS_TABLE, State(checked_at="x"), stale)
    # Another run records its state between this run's read and write: this one posts nothing.
    test_client("cloudtrail").stop_logging(Name=TRAIL)
    real_read = self_check_path.read_state

    def read_then_overtaken(client: Any, name: str) -> State:
        seen = real_read(client, name)
        write_state(client, name, seen.after_run(SUNDAY + timedelta(minutes=30), []), seen)
        return seen

    with mock.patch.object(self_check_path, "read_state", read_then_overtaken):
        answer = account.run(SUNDAY + timedelta(hours=1))
    assert answer["verdict"] == "broken" and answer["posted"] is False
    assert "another run" in answer["reason"]
    assert not account.messages()


def test_a_failed_post_is_posted_again_by_the_next_run(account: Account) -> None:
    account.run()
    test_client("cloudtrail").stop_logging(Name=TRAIL)
    # The probe answers 400 (alive); the message meets a Slack that is down.
    account.world.slack.script(SlackReply(400, "no_text"), *[SlackReply(500, "down")] * 3)
    failed = account.run(SUNDAY + timedelta(hours=1))
    assert failed["posted"] is False and "posts it again" in failed["reason"]
    again = account.run(SUNDAY + timedelta(hours=2))
    assert again["posted"] is True and again["new"] == [f"trail@{REGION}:{TRAIL}"]


# ---------------------------------------------------------------- heartbeat and ping
def test_the_heartbeat_url_is_pinged_only_when_healthy(account: Account, use_settings: Any) -> None:
    test_client("ssm").put_parameter(
        Name=HEARTBEAT_PARAMETER, Value=HEARTBEAT_URL, Type="SecureString"
    )
    use_settings(
        self_check={
            "checks": checks(account.topic_arn),
            "heartbeat_parameter": HEARTBEAT_PARAMETER,
            "weekly_summary": False,
        }
    )
    forget_settings()
    assert account.run()["verdict"] == "healthy"
    assert account.pings == [HEARTBEAT_URL]
    test_client("cloudtrail").stop_logging(Name=TRAIL)
    assert account.run(SUNDAY + timedelta(hours=1))["verdict"] == "broken"
    assert account.pings == [HEARTBEAT_URL]  # no ping while broken
    test_client("cloudtrail").start_logging(Name=TRAIL)

    def down(request: Any, timeout: float) -> Any:
        raise urllib.error.URLError("connection refused")

    with mock.patch.object(self_check_path, "_urlopen", down):
        answer = account.run(SUNDAY + timedelta(hours=2))
    assert answer["verdict"] == "healthy" and answer["outcome"] == "posted"  # recovered
    assert "heartbeat ping failed" in answer["reason"]
    assert HEARTBEAT_URL not in json.dumps(answer)
    assert heartbeat_values(account) == [1.0, 0.0, 1.0]


# ---------------------------------------------------------------- the trail's delivery
def _trail_status(**status: Any) -> tuple[Any, Any]:
    from botocore.stub import Stubber

    client = aws_clients_for_tests("cloudtrail", REGION)
    stubber = Stubber(client)
    stubber.add_response("get_trail_status", {"IsLogging": True, **status}, {"Name": TRAIL})
    stubber.activate()
    return client, stubber


@pytest.mark.parametrize(
    ("delivered_ago", "error", "broken"),
    [(timedelta(minutes=20), None, False), (timedelta(hours=3), "AccessDenied", True)],
)
def test_a_trail_that_stopped_delivering_to_cloudwatch_logs_is_broken(
    delivered_ago: timedelta, error: str | None, broken: bool
) -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    status: dict[str, Any] = {"LatestCloudWatchLogsDeliveryTime": now - delivered_ago}
    if error:
        status["LatestCloudWatchLogsDeliveryError"] = error
    client, stubber = _trail_status(**status)
    check = Check("trail", REGION, TRAIL, {"logs": True})
    finding = self_check.check_trail(check, lambda service, region: client, now)
    stubber.assert_no_pending_responses()
    assert finding.broken is broken
    if broken:
        assert "has not delivered to CloudWatch Logs since" in finding.what
        assert "AccessDenied" in finding.what


@pytest.mark.parametrize(
    ("started_ago", "broken"), [(timedelta(minutes=2), False), (timedelta(hours=2), True)]
)
def test_a_trail_started_within_the_hour_need_not_have_delivered_yet(
    started_ago: timedelta, broken: bool
) -> None:
    """A fresh setup runs its first check at once: the new trail has delivered nothing."""
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    client, stubber = _trail_status(StartLoggingTime=now - started_ago)
    check = Check("trail", REGION, TRAIL, {"logs": True})
    finding = self_check.check_trail(check, lambda service, region: client, now)
    stubber.assert_no_pending_responses()
    assert finding.broken is broken
    if broken:
        assert "has not delivered to CloudWatch Logs at all" in finding.what


def test_a_throttled_check_could_not_tell_and_keeps_the_last_verdict() -> None:
    from botocore.stub import Stubber

    client = aws_clients_for_tests("lambda", REGION)
    stubber = Stubber(client)
    stubber.add_client_error(
        "get_function_concurrency", "TooManyRequestsException", http_status_code=429
    )
    stubber.activate()
    check = Check("concurrency", REGION, FUNCTION)
    finding = self_check.check_concurrency(check, lambda service, region: client, SUNDAY)
    assert finding.status == self_check.UNKNOWN
    known = Problem(finding.id, "reserved concurrency 0", iso(SUNDAY), "setup")
    kept = self_check_path.current_problems([finding], State(problems=(known,)), MONDAY)
    assert kept == [known]


# ---------------------------------------------------------------- the weekly summary
def test_the_weekly_summary_is_posted_once_a_week(
    account: Account, use_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_settings(
        self_check={
            "checks": checks(account.topic_arn),
            "heartbeat_parameter": "",
            "weekly_summary": True,
        }
    )
    forget_settings()
    monkeypatch.setenv("AWS_LAMBDA_LOG_GROUP_NAME", OWN_LOG_GROUP)
    logs = test_client("logs")
    logs.create_log_group(logGroupName=OWN_LOG_GROUP)
    logs.create_log_stream(logGroupName=OWN_LOG_GROUP, logStreamName="s")
    tuesday = SUNDAY - timedelta(days=5)
    posted = {"loginwatch": "notifier", "outcome": "posted", "events": 1}
    logs.put_log_events(
        logGroupName=OWN_LOG_GROUP,
        logStreamName="s",
        logEvents=[{"timestamp": int(tuesday.timestamp() * 1000), "message": json.dumps(posted)}],
    )
    sign_ins = [
        (tuesday, cloudtrail_record("alice", eventTime=iso(tuesday), eventID="a-1")),
        (tuesday + timedelta(hours=1), cloudtrail_record("bob", eventID="b-1")),
    ]
    account.world.trail.put(*sign_ins)

    account.run(SUNDAY)  # the first run ever: no summary (no week seen yet)
    account.run(SUNDAY + timedelta(hours=1))
    assert not account.messages()
    monday = account.run(MONDAY)
    assert monday["summary_posted"] is True
    (summary,) = account.messages()
    assert_slack_takes(summary)
    body = texts(summary)
    assert iso_week(SUNDAY) in summary["text"]
    assert "2 self-check run(s), every check passed" in body
    assert "*Console sign-ins:* 2" in body and "*Alerts posted:* 1" in body
    for _, record in sign_ins:
        assert record["sourceIPAddress"] in body
    later = account.run(MONDAY + timedelta(hours=1))
    assert later["summary_posted"] is False and len(account.messages()) == 1
    state = account.state()
    assert state["last_summary"] == {"S": iso_week(MONDAY)}
    assert state["week"] == {"S": iso_week(MONDAY)} and state["runs"] == {"N": "2"}


# ---------------------------------------------------------------- messages
def test_the_messages_are_ones_slack_takes() -> None:
    problems = [
        Problem(f"rule@r-{n}:x", f"the rule <x> & {n} is disabled", iso(SUNDAY), "run setup")
        for n in range(60)
    ]
    broken = build_self_check_message(
        deployment="loginwatch",
        problems=problems,
        new_ids={problems[0].id},
        cleared=problems[:3],
        now=MONDAY,
        mention="here",
        requested_by="test-alert",
    )
    assert_slack_takes(broken)
    assert "<!here>" in str(broken["text"])
    recovered = build_self_check_message(
        deployment="lw", problems=[], new_ids=set(), cleared=problems, now=MONDAY
    )
    assert_slack_takes(recovered)
    seen = WeekSeen(iso_week(SUNDAY), 168, 160, [], False, None, frozenset())
    assert_slack_takes(build_weekly_summary(seen, deployment="lw", mention="channel"))
