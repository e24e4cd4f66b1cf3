"""Notifier test fixtures: settings, moto-backed trail log group and SSM secret, alarm events."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from loginwatch.demo.webhook_catcher import SlackStub
from loginwatch.notifier import aws_clients, handler, settings, slack_delivery
from tests.conftest import load_fixture

REGION = "us-east-1"
LOG_GROUP = "/loginwatch/cloudtrail"
WEBHOOK_PARAMETER = "/loginwatch/slack-webhook-url"
ALARM_NAME = "loginwatch-unallowed-console-login"
ACCOUNT_ID = "111122223333"
CLAIMS_TABLE = "loginwatch-claims"
RETRY_QUEUE = "loginwatch-notifier-retry"


@pytest.fixture(autouse=True, scope="session")
def _ip_location_table() -> None:
    """Messages built in-process say where an address is: the table converted from the
    installed database (inside the zip it is packed beside the modules)."""
    from loginwatch import ip_location_data

    ip_location_data.use_installed()


BASE_SETTINGS: dict[str, Any] = {
    "name": "loginwatch",
    "region": REGION,
    "webhook_parameter": WEBHOOK_PARAMETER,
    "trail_log_group": LOG_GROUP,
    "allowlist": ["203.0.113.0/24", "2001:db8:1::/48"],
    "lookback_minutes": 10,
    "alarm_name": ALARM_NAME,
    "claims_table": CLAIMS_TABLE,
    "retry_queue": RETRY_QUEUE,
    # Before rules: outside_allowlist alone, one destination (what the CLI writes then).
    "rules": [{"name": "outside_allowlist", "severity": "high"}],
    "alarms": {ALARM_NAME: "outside_allowlist"},
    "destinations": [],
    "default_gets": "unclaimed",
    "account_names": False,
}

FIXTURE_NAMES = {
    "alice": "console_login_iam_user_success_no_mfa.json",
    "bob": "console_login_iam_user_success_mfa.json",
    "root": "console_login_root_success.json",
    "failure": "console_login_iam_user_failure.json",
    "sso": "console_login_assumed_role_sso.json",
    "ipv6": "console_login_iam_user_ipv6.json",
    "hostile": "console_login_hostile_user_agent.json",
}


def cloudtrail_record(kind: str, **overrides: Any) -> dict[str, Any]:
    """A fixture ConsoleLogin record with top-level keys overridden."""
    record = load_fixture(f"cloudtrail/{FIXTURE_NAMES[kind]}")
    record.update(overrides)
    return record


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def alarm_event(
    *,
    state: str = "ALARM",
    reason: str | None = None,
    state_change_time: datetime | None = None,
    **alarm_overrides: Any,
) -> dict[str, Any]:
    """The fixture SNS event with the inner alarm JSON edited."""
    event = copy.deepcopy(load_fixture("sns/lambda_event_cloudwatch_alarm.json"))
    alarm = json.loads(event["Records"][0]["Sns"]["Message"])
    alarm["NewStateValue"] = state
    if reason is not None:
        alarm["NewStateReason"] = reason
    if state_change_time is not None:
        millis = f"{state_change_time.microsecond // 1000:03d}"
        alarm["StateChangeTime"] = state_change_time.strftime(f"%Y-%m-%dT%H:%M:%S.{millis}+0000")
    alarm.update(alarm_overrides)
    event["Records"][0]["Sns"]["Message"] = json.dumps(alarm)
    return event


@pytest.fixture(autouse=True)
def fresh_notifier() -> Iterator[None]:
    """Each test starts like a cold Lambda container."""
    handler.reset_caches()
    yield
    handler.reset_caches()


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry back-off is recorded, never slept."""
    recorded: list[float] = []
    monkeypatch.setattr(slack_delivery, "_sleep", recorded.append)
    return recorded


@pytest.fixture
def use_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Write settings.json (BASE_SETTINGS + overrides) and point the notifier at it."""

    def write(**overrides: Any) -> dict[str, Any]:
        data = {**BASE_SETTINGS, **overrides}
        if "alarm_name" in overrides and "alarms" not in overrides:
            data["alarms"] = {overrides["alarm_name"]: "outside_allowlist"}
        path = tmp_path / "settings.json"
        path.write_text(json.dumps(data))
        monkeypatch.setattr(settings, "SETTINGS_FILE", path)
        return data

    write()
    return write


@dataclass
class ClientCounter:
    """Counts boto3 clients created by the notifier and the API calls they make."""

    created: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)


@pytest.fixture
def client_counter(monkeypatch: pytest.MonkeyPatch) -> ClientCounter:
    counter = ClientCounter()
    real_make = aws_clients._make_client

    def counting_make(service: str, region: str) -> Any:
        counter.created.append(service)
        made = real_make(service, region)
        made.meta.events.register(
            "before-call.*.*",
            lambda model, **_: counter.calls.append(f"{service}:{model.name}"),
        )
        return made

    monkeypatch.setattr(aws_clients, "_make_client", counting_make)
    return counter


class Trail:
    """A moto log group that receives CloudTrail records like the real trail would."""

    def __init__(self, logs: Any) -> None:
        self.logs = logs
        self.stream = "111122223333_CloudTrail_us-east-1"
        logs.create_log_group(logGroupName=LOG_GROUP)
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=self.stream)

    def put(
        self, *records: tuple[datetime, dict[str, Any]], ingested_at: datetime | None = None
    ) -> None:
        """Put (log timestamp, record) pairs; PutLogEvents wants them in time order.

        moto stamps ``ingestionTime`` with the real clock; ``ingested_at`` sets it
        instead, so a test can place an event's arrival before an alarm started.
        """
        events = [
            {"timestamp": int(moment.timestamp() * 1000), "message": json.dumps(record)}
            for moment, record in sorted(records, key=lambda pair: pair[0])
        ]
        clock = contextlib.nullcontext()
        if ingested_at is not None:
            naive_utc = ingested_at.astimezone(UTC).replace(tzinfo=None)  # as moto's utcnow()
            clock = mock.patch("moto.logs.models.utcnow", return_value=naive_utc)
        with clock:
            response = self.logs.put_log_events(
                logGroupName=LOG_GROUP, logStreamName=self.stream, logEvents=events
            )
        assert "rejectedLogEventsInfo" not in response, response


@dataclass
class NotifierWorld:
    trail: Trail
    ssm: Any
    slack: SlackStub
    now: datetime  # use as the alarm's StateChangeTime

    def at(self, minutes_before: float) -> datetime:
        return self.now - timedelta(minutes=minutes_before)


_test_clients: dict[str, Any] = {}


def test_client(service: str) -> Any:
    """The tests' own client for ``service`` (not the notifier's), made once per worker:
    making a client costs about 0.1 s, and moto intercepts it in every test alike."""
    if service not in _test_clients:
        import boto3

        _test_clients[service] = boto3.client(service, region_name=REGION)
    return _test_clients[service]


test_client.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
def world(moto_inprocess: None, slack_server: SlackStub, use_settings: Any) -> NotifierWorld:
    """moto log group + SSM SecureString webhook + Slack stub + settings.json."""

    logs, ssm = test_client("logs"), test_client("ssm")
    ssm.put_parameter(
        Name=WEBHOOK_PARAMETER, Value=slack_server.url, Type="SecureString", Overwrite=True
    )
    create_claims_table(test_client("dynamodb"))
    now = datetime.now(UTC).replace(microsecond=123000)
    return NotifierWorld(trail=Trail(logs), ssm=ssm, slack=slack_server, now=now)


def forget_claims() -> None:
    """Empty the claims table: the next run sees every sign-in as never reported."""

    from loginwatch.notifier.claims import KEY

    dynamodb = test_client("dynamodb")
    for item in dynamodb.scan(TableName=CLAIMS_TABLE).get("Items", []):
        dynamodb.delete_item(TableName=CLAIMS_TABLE, Key={KEY: item[KEY]})


def create_claims_table(dynamodb: Any) -> None:
    """The table setup creates (same key), in the emulator."""
    from loginwatch.notifier.claims import KEY

    dynamodb.create_table(
        TableName=CLAIMS_TABLE,
        AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )


def iter_texts(payload: Any) -> Iterator[str]:
    """Every string under a "text" key anywhere in a Slack payload."""
    if isinstance(payload, dict):
        for key, value in payload.items():
            if key == "text" and isinstance(value, str):
                yield value
            else:
                yield from iter_texts(value)
    elif isinstance(payload, list):
        for item in payload:
            yield from iter_texts(item)


def history_item(
    moment: datetime, new_state: str, *, old_state: str = "OK", reason: str = "Threshold Crossed"
) -> dict[str, Any]:
    """A DescribeAlarmHistory StateUpdate item, shaped as CloudWatch returns it."""
    data = {
        "version": "1.0",
        "oldState": {"stateValue": old_state, "stateReason": "earlier"},
        "newState": {"stateValue": new_state, "stateReason": reason},
    }
    return {
        "AlarmName": ALARM_NAME,
        "AlarmType": "MetricAlarm",
        "Timestamp": moment,
        "HistoryItemType": "StateUpdate",
        "HistorySummary": f"Alarm updated from {old_state} to {new_state}",
        "HistoryData": json.dumps(data),
    }


class AlarmHistory:
    """DescribeAlarmHistory answers for the notifier's cached CloudWatch client.

    moto does not implement DescribeAlarmHistory, so botocore's Stubber answers
    instead, and checks the request the notifier sends.
    """

    def __init__(self) -> None:
        from botocore.stub import Stubber

        self.client = aws_clients.client("cloudwatch", REGION)
        self.stubber = Stubber(self.client)
        self.stubber.activate()

    @staticmethod
    def expected_request(ok_time: datetime) -> dict[str, Any]:
        return {
            "AlarmName": ALARM_NAME,
            "HistoryItemType": "StateUpdate",
            "StartDate": ok_time - timedelta(days=1),
            "EndDate": ok_time,
            "ScanBy": "TimestampDescending",
            "MaxRecords": 10,
        }

    def answer(self, ok_time: datetime, *items: dict[str, Any]) -> None:
        self.stubber.add_response(
            "describe_alarm_history",
            {"AlarmHistoryItems": list(items)},
            self.expected_request(ok_time),
        )

    def fail(self, ok_time: datetime, code: str, message: str = "denied") -> None:
        self.stubber.add_client_error(
            "describe_alarm_history",
            service_error_code=code,
            service_message=message,
            http_status_code=403,
            expected_params=self.expected_request(ok_time),
        )


@pytest.fixture
def alarm_history(moto_inprocess: None) -> Iterator[AlarmHistory]:
    history = AlarmHistory()
    yield history
    history.stubber.assert_no_pending_responses()
    history.stubber.deactivate()
