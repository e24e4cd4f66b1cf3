"""`loginwatch demo`: the whole job with no AWS account and no network.

What is real: loginwatch's config loader, pattern compiler, setup/status/teardown
engine and the notifier package `setup` deploys (loaded from that very zip).
What is emulated: the AWS APIs (moto's server, on loopback, in this process),
CloudTrail putting a sign-in on EventBridge (the demo puts it on eu-west-1's
bus itself; the real forwarding and home rules then carry it), the CloudWatch
metric filter and alarm evaluation (done here with loginwatch's own
filter-pattern evaluator), SNS and EventBridge delivery to Lambda (the packaged
handler is called in-process), and Slack (a local webhook catcher).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .. import engine
from ..alert_drill import synthetic_alarm_event
from ..aws import connect
from ..config import load_config
from ..notifier_package import code_sha256, load_handler_from_zip
from . import emulator as emulation
from . import filter_eval
from .emulator import Emulator
from .webhook_catcher import SlackStub

DEMO_CONFIG = """\
# Written by `loginwatch demo`: points at a local AWS emulator and webhook catcher.
region: us-east-1
name: demo
allowed_ips:
  - cidr: 203.0.113.0/24
    label: office
  - cidr: 2001:db8:1::/48
    label: office IPv6
slack:
  webhook_url: {webhook}
"""

EMULATED = (
    "AWS APIs: moto's server on 127.0.0.1, in this process (no account, no network)",
    "CloudWatch metric filter and alarm evaluation: loginwatch's own filter-pattern evaluator",
    "CloudTrail → EventBridge: the demo puts the sign-in on eu-west-1's default bus itself "
    "(AWS reserves aws.* sources); setup's forwarding and home rules carry it from there",
    "SNS and EventBridge → Lambda delivery: the notifier zip that setup deployed, run in "
    "this process",
    "Slack: a local webhook catcher on 127.0.0.1",
)
DEMO_ENV = {
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


FAST_REGION = "eu-west-1"  # alice signs in through eu-west-1's sign-in endpoint


@dataclass(frozen=True)
class SignInScenario:
    who: str
    ip: str
    allowed: bool
    record: dict[str, Any]


def _record(
    n: int,
    *,
    ip: str,
    identity: dict[str, Any],
    mfa: str = "No",
    outcome: str = "Success",
    region: str = "us-east-1",
    agent: str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0",
    when: datetime,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {"accountId": "123456789012", **identity},
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "awsRegion": region,
        "sourceIPAddress": ip,
        "userAgent": agent,
        "requestParameters": None,
        "responseElements": {"ConsoleLogin": outcome},
        "additionalEventData": {"MobileVersion": "No", "MFAUsed": mfa},
        "eventID": f"d0d0d0d0-0000-4000-8000-{n:012d}",
        "eventType": "AwsConsoleSignIn",
        "recipientAccountId": "123456789012",
    }
    if outcome != "Success":
        record["errorMessage"] = "Failed authentication"
    return record


def scenario(now: datetime) -> list[SignInScenario]:
    """A morning in the account: two colleagues at the office, four sign-ins that are not."""

    def user(name: str) -> dict[str, Any]:
        return {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::123456789012:user/{name}",
            "userName": name,
        }

    def at(minutes: float) -> datetime:
        return now - timedelta(minutes=minutes)

    root = {"type": "Root", "arn": "arn:aws:iam::123456789012:root"}
    return [
        SignInScenario("bob (office)", "203.0.113.10", True,
                       _record(1, ip="203.0.113.10", identity=user("bob"), mfa="Yes", region="us-east-2", when=at(6))),
        SignInScenario("carol (office IPv6)", "2001:db8:1::42", True,
                       _record(2, ip="2001:db8:1::42", identity=user("carol"), mfa="Yes", when=at(5))),
        SignInScenario("alice (café)", "198.51.100.23", False,
                       _record(3, ip="198.51.100.23", identity=user("alice"), region=FAST_REGION,
                               when=at(0.05))),  # three seconds ago: the fast path hears first
        SignInScenario("root", "192.0.2.77", False,
                       _record(4, ip="192.0.2.77", identity=root, mfa="Yes", when=at(3))),
        SignInScenario("alice (wrong password)", "192.0.2.200", False,
                       _record(5, ip="192.0.2.200", identity=user("alice"), outcome="Failure", when=at(2.5))),
        SignInScenario("mallory (odd agent)", "198.51.100.66", False,
                       _record(6, ip="198.51.100.66", identity=user("mallory"),
                               agent="<!channel> <https://evil.example/|click me> & *bold*", when=at(2))),
    ]  # fmt: skip


@contextlib.contextmanager
def isolated_environment(endpoint: str) -> Any:
    """Point every boto3 client at the emulator and away from any real credentials."""
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith("AWS_"):
            del os.environ[key]
    os.environ.update(DEMO_ENV)
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run(ui: Any, *, keep: bool, raw: bool) -> dict[str, Any]:
    """Run the demo; returns the Slack payload the notifier produced."""
    ui.demo_intro(EMULATED)
    emulator = Emulator().start()
    slack = SlackStub().start()
    workdir = Path(tempfile.mkdtemp(prefix="loginwatch-demo-"))
    config_path = workdir / "loginwatch.yaml"
    config_path.write_text(DEMO_CONFIG.format(webhook=slack.url))
    try:
        with isolated_environment(emulator.url):
            return _run(ui, emulator, slack, config_path, keep=keep, raw=raw)
    finally:
        slack.stop()
        emulator.stop()


class _Collect:
    """Setup's progress, kept for the condensed account of it (no line per resource)."""

    def __init__(self) -> None:
        self.results: list[Any] = []

    def checking(self, resource: Any) -> None:
        pass

    def start(self, resource: Any) -> None:
        pass

    def done(self, result: Any) -> None:
        self.results.append(result)


def _run(
    ui: Any, emulator: Emulator, slack: SlackStub, config_path: Path, *, keep: bool, raw: bool
) -> dict[str, Any]:
    config = load_config(config_path)
    aws = connect(None, config.region)
    with ui.demo_working("Setting up loginwatch in the emulated account …"):
        deployment = engine.build_deployment(config, aws)
        planned = _Collect()
        engine.plan(deployment, planned)
        applied = _Collect()
        engine.apply(deployment, applied)
        report = engine.status(deployment)

    now = datetime.now(UTC).replace(microsecond=0)
    sign_ins = scenario(now)
    alice = next(s for s in sign_ins if s.record["awsRegion"] == FAST_REGION)
    with ui.demo_working(f"alice signs in from a café through {FAST_REGION} …"):
        delivered = _sign_in_on_eventbridge(aws, alice.record)
        fast_log = _invoke_packaged_notifier(deployment.package, delivered)
        fast = _newest(slack)

    with ui.demo_working("Minutes later: CloudTrail delivers six sign-ins; the alarm fires …"):
        _deliver(aws, deployment.trail_log_group, sign_ins)
        counted = [s for s in sign_ins if filter_eval.matches(deployment.pattern, s.record)]
        reason = (
            f"Threshold Crossed: 1 out of the last 1 datapoints [{float(len(counted))}] was "
            "greater than or equal to the threshold (1.0)."
        )
        cloudwatch = aws.client("cloudwatch")
        cloudwatch.put_metric_data(
            Namespace=deployment.names.metric_namespace,
            MetricData=[{"MetricName": deployment.names.metric_name, "Value": float(len(counted))}],
        )
        cloudwatch.set_alarm_state(
            AlarmName=deployment.names.alarm, StateValue="ALARM", StateReason=reason
        )
        deployed = aws.client("lambda").get_function(FunctionName=deployment.names.function)
        deployed_sha = deployed["Configuration"]["CodeSha256"]
        if deployed_sha != code_sha256(deployment.package):
            raise RuntimeError("the deployed notifier does not match the package")  # cannot happen
        alarm_log = _invoke_packaged_notifier(
            deployment.package, synthetic_alarm_event(deployment.names, reason=reason, now=now)
        )
        digest = _newest(slack)

    # First what a user sees: the two Slack messages.
    ui.demo_step("Slack", "What your channel received")
    ui.demo_message(f"1 of 2, seconds after alice's sign-in: the fast path ({FAST_REGION})")
    ui.render_slack(fast)
    if raw:
        ui.demo_raw(fast)
    ui.demo_message("2 of 2, minutes later: the alarm's digest")
    ui.render_slack(digest)
    if raw:
        ui.demo_raw(digest)

    listed = _listed(digest)
    ui.demo_step("Why", "The six sign-ins, and which message each is in")
    ui.demo_sign_ins(sign_ins, counted, fast=alice, listed=listed)
    ui.demo_reconcile(sign_ins, counted, fast=alice, listed=listed)

    ui.demo_step("How", "What ran (the real loginwatch; AWS emulated)")
    ui.demo_how(
        planned=planned.results,
        applied=applied.results,
        report=report,
        notices=deployment.notices,
        fast=(FAST_REGION, deployment.names.region, fast_log),
        alarm=(deployment.names.alarm, deployed_sha, alarm_log),
    )

    if keep:
        ui.demo_keep(emulator.url, config_path, DEMO_ENV)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()  # until Ctrl-C: the emulator lives in this process
    else:
        items = engine.teardown_plan(deployment, delete_bucket=True, delete_trail_logs=True)
        removed: list[Any] = []
        engine.teardown(items, removed.append)
        ui.demo_teardown(items)
    ui.demo_outro(EMULATED)
    return digest


def _newest(slack: SlackStub) -> dict[str, Any]:
    if not slack.requests:
        raise RuntimeError("the notifier posted nothing")
    return slack.requests[-1].json


def _listed(payload: dict[str, Any]) -> set[str]:
    """The eventIDs a message lists (each sign-in's CloudTrail button names its event)."""
    text = json.dumps(payload)
    return {eid for eid in _EVENT_ID.findall(text)}


_EVENT_ID = re.compile(r"d0d0d0d0-0000-4000-8000-\d{12}")


def _sign_in_on_eventbridge(aws: Any, record: dict[str, Any]) -> dict[str, Any]:
    """Put the record on its region's bus as CloudTrail would; return what the home rule
    invoked the notifier with (the emulator records EventBridge → Lambda deliveries)."""
    emulation.LAMBDA_DELIVERIES.clear()
    aws.client("events", record["awsRegion"]).put_events(
        Entries=[
            {
                "Source": "aws.signin",
                "DetailType": "AWS Console Sign In via CloudTrail",
                "Detail": json.dumps(record),
                "EventBusName": "default",
            }
        ]
    )
    if not emulation.LAMBDA_DELIVERIES:
        raise RuntimeError("the fast path's rules did not deliver the sign-in")
    return emulation.LAMBDA_DELIVERIES[-1][1]


def _deliver(aws: Any, log_group: str, sign_ins: list[SignInScenario]) -> None:
    """Write the records as CloudTrail does: one JSON event per log event, oldest first."""
    logs = aws.client("logs")
    stream = "123456789012_CloudTrail_us-east-1"
    logs.create_log_stream(logGroupName=log_group, logStreamName=stream)
    events = [
        {"timestamp": _epoch_ms(s), "message": json.dumps(s.record)}
        for s in sorted(sign_ins, key=_epoch_ms)
    ]
    logs.put_log_events(logGroupName=log_group, logStreamName=stream, logEvents=events)


def _epoch_ms(sign_in: SignInScenario) -> int:
    """The record's eventTime in milliseconds since the epoch, as Logs wants it."""
    when = datetime.strptime(sign_in.record["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
    return int(when.replace(tzinfo=UTC).timestamp() * 1000)


def _invoke_packaged_notifier(package: bytes, event: dict[str, Any]) -> dict[str, Any]:
    """Load the handler from the deployed zip and run it; return its structured log line."""
    with tempfile.TemporaryDirectory(prefix="loginwatch-notifier-") as tmp:
        handler = load_handler_from_zip(package, tmp)
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured):
            result = handler.lambda_handler(event, None)
    lines = [line for line in captured.getvalue().splitlines() if line.strip()]
    return json.loads(lines[-1]) if lines else result
