"""`loginwatch test-alert`: prove the chain works, and say which link is broken when it does not.

Four routes, from most to least complete:
- fast-path: put a marked test event on the default bus of a region other than the
          home one → forwarding rule → home bus → home rule → Lambda → Slack; wait
          until the notifier logs the delivery.
- alarm:  set the alarm to ALARM with a marked reason → CloudWatch → SNS → Lambda →
          Slack; wait until the notifier logs the delivery; set the alarm back to OK.
- lambda: invoke the function synchronously with a synthetic alarm notification.
- slack:  post a labelled message straight from this machine (no AWS needed).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .aws import Aws, translate_errors
from .config import Config
from .engine import NOT_OURS, REGION_NOT_ENABLED, is_unavailable, read_all, resources_for
from .names import Names
from .notifier.dispatch import post_test
from .notifier.ipmatch import AllowList, address_outside
from .notifier.protocol import (
    TEST_EVENT_SOURCE,
    marked_alarm_reason,
    marked_test_event,
)
from .notifier.routing import Destination
from .notifier.rules import Rule
from .notifier.slack_delivery import SlackDeliveryError, post_to_slack
from .notifier.slack_message import build_test_message
from .resources.base import Deployment, Observed, Resource
from .resources.function import count_errors
from .resources.permission import EventsInvokePermission, InvokePermission
from .resources.role import ForwardingRole
from .resources.sign_in_rule import ForwardingRule, SignInRule
from .resources.subscription import Subscription

POLL_SECONDS = 3.0
NOT_SET_UP = "Run `loginwatch setup` first (`loginwatch status` shows what is missing)."


def new_test_id() -> str:
    return f"t{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(3)}"


@dataclass
class DrillResult:
    route: str
    test_id: str
    delivered: bool
    seconds: float = 0.0
    slack_status: int | None = None
    detail: str = ""
    diagnosis: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- --via slack


def via_slack(
    config: Config, test_id: str, *, account: str = "", rule: str | None = None
) -> DrillResult:
    """Post to the default webhook, or, for ``rule``, to every destination its alerts go to:
    the notifier's own test delivery (dispatch.post_test), posting from this machine."""
    from .summary import config_routes

    webhooks = {"default": config.webhook_url} | {
        d.name: d.webhook_url for d in config.destinations
    }
    assert None not in webhooks.values(), "load the config with need_webhook=True"
    alarm = Names.for_config(config, account or "0" * 12).rule_alarm(rule or "outside_allowlist")
    trying: list[str] = []

    def post(destination: Destination, payload: dict[str, Any]) -> int:
        trying[:] = [destination.name]
        return post_to_slack(webhooks[destination.name] or "", payload).status

    def message(destination: Destination, tested: Rule | None) -> dict[str, Any]:
        return build_test_message(
            test_id=test_id,
            account_id=account,
            alarm_name=alarm,
            path="this machine → Slack webhook (AWS not involved)",
            destination=destination.name,
            rule=tested.name if tested else None,
        )

    started = time.perf_counter()
    try:
        status, posted = post_test(config_routes(config), config.rules, rule, post, message)
    except SlackDeliveryError as exc:
        seconds = time.perf_counter() - started
        detail = f"destination {trying[0]}: {exc}"
        return DrillResult("slack", test_id, False, seconds, exc.status, detail)
    detail = f"Slack accepted the message ({', '.join(posted)})"
    return DrillResult("slack", test_id, True, time.perf_counter() - started, status, detail)


# ---------------------------------------------------------------- --via lambda


def synthetic_alarm_event(
    names: Names,
    test_id: str | None = None,
    now: datetime | None = None,
    *,
    reason: str | None = None,
    period: int = 60,
    evaluation_periods: int = 1,
    rule: str | None = None,
) -> dict[str, Any]:
    """The event Lambda receives when SNS delivers our alarm's ALARM notification.

    With a test id, the state reason carries the test-alert marker; the demo
    passes the reason CloudWatch itself would write for a threshold crossing.
    """
    moment = now or datetime.now(UTC)
    alarm = rule or "outside_allowlist"
    message = {
        "AlarmName": names.rule_alarm(alarm),
        "AWSAccountId": names.account,
        "NewStateValue": "ALARM",
        "OldStateValue": "OK",
        "NewStateReason": marked_alarm_reason(test_id, rule) if test_id else (reason or ""),
        "StateChangeTime": moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        "Region": names.region,
        "AlarmArn": names.rule_alarm_arn(alarm),
        "Trigger": {
            "MetricName": names.rule_metric(alarm),
            "Namespace": names.metric_namespace,
            "Statistic": "SUM",
            "Period": period,
            "EvaluationPeriods": evaluation_periods,
            "Threshold": 1.0,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        },
    }
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{names.topic_arn}:loginwatch",
                "Sns": {
                    "Type": "Notification",
                    "TopicArn": names.topic_arn,
                    "Subject": f'ALARM: "{names.rule_alarm(alarm)}"',
                    "Message": json.dumps(message),
                    "Timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                },
            }
        ]
    }


@dataclass(frozen=True)
class NotifierAnswer:
    """What a synchronous invoke of the notifier returned."""

    body: Any  # the JSON it returned (None if not JSON)
    error: str | None  # its error message, when the function failed
    log_tail: str  # the end of its log (LogType=Tail)


def invoke_notifier(aws: Aws, names: Names, event: Any, *, dry_run: bool = False) -> NotifierAnswer:
    """Invoke the notifier synchronously with ``event`` (test-alert, redeliver); with
    ``dry_run``, Lambda only checks the function and the permission (it runs nothing)."""
    how = {"InvocationType": "DryRun"}
    if not dry_run:
        how = {"InvocationType": "RequestResponse", "LogType": "Tail"}
    with translate_errors(names.function, missing=NOT_SET_UP):
        response = aws.client("lambda").invoke(
            FunctionName=names.function, Payload=json.dumps(event).encode(), **how
        )
    raw = response["Payload"].read() if response.get("Payload") else b""
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        body = None
    tail = base64.b64decode(response.get("LogResult", "")).decode("utf-8", "replace")
    error = None
    if response.get("FunctionError"):
        error = _function_error(body, raw)
    return NotifierAnswer(body, error, tail)


def _function_error(body: Any, raw: bytes) -> str:
    """The function's error as text: its errorMessage, or the start of what it answered."""
    if isinstance(body, dict) and body.get("errorMessage"):
        return str(body["errorMessage"])
    text = raw.decode("utf-8", "replace").strip() or "no error message"
    return text if len(text) <= 300 else text[:300] + " …"


def cannot_run(aws: Aws, names: Names, route: str, test_id: str) -> DrillResult | None:
    """Before waiting for a delivery: can the function run at all here? Lambda's DryRun
    invoke checks the function and the permission to invoke it without running it (AWS);
    an emulator that cannot run functions (moto without Docker) tries, and answers the
    function's error. Then no test alert can arrive, and waiting for one would only
    end in a time-out: the result says why at once. None: nothing against it."""
    started = time.perf_counter()
    answer = invoke_notifier(aws, names, {}, dry_run=True)
    if answer.error is None:
        return None
    return DrillResult(
        route,
        test_id,
        False,
        time.perf_counter() - started,
        None,
        "the notifier function cannot run on this endpoint, so no test alert can arrive "
        f"(a dry-run invoke failed: {answer.error})",
    )


def via_lambda(aws: Aws, names: Names, test_id: str, rule: str | None = None) -> DrillResult:
    started = time.perf_counter()
    answer = invoke_notifier(aws, names, synthetic_alarm_event(names, test_id, rule=rule))
    seconds = time.perf_counter() - started
    body = answer.body
    if answer.error is not None:
        status = _slack_status_from_logs(answer.log_tail)
        return DrillResult(
            "lambda", test_id, False, seconds, status, f"the function failed: {answer.error}"
        )
    if not isinstance(body, dict):
        return DrillResult(
            "lambda", test_id, False, seconds, None, "the function returned no result"
        )
    delivered = body.get("outcome") == "test-posted" and body.get("test_id") == test_id
    detail = f"notifier outcome: {body.get('outcome')}" + (
        f" ({body.get('reason')})" if body.get("reason") else ""
    )
    return DrillResult("lambda", test_id, delivered, seconds, body.get("slack_status"), detail)


def via_self_check(aws: Aws, names: Names) -> DrillResult:
    """Run the notifier's self-check now (synchronously) and report its verdict: healthy
    is "delivered"; each problem it found is a finding, with its fix."""
    from .notifier.protocol import SELF_CHECK_EVENT

    started = time.perf_counter()
    answer = invoke_notifier(aws, names, {**SELF_CHECK_EVENT, "requested_by": "test-alert"})
    seconds = time.perf_counter() - started
    if answer.error is not None:
        return DrillResult(
            "self-check", "", False, seconds, None, f"the function failed: {answer.error}"
        )
    body = answer.body if isinstance(answer.body, dict) else {}
    verdict = str(body.get("verdict") or "no verdict")
    problems = [p for p in body.get("problems") or [] if isinstance(p, dict)]
    detail = f"{body.get('checked', 0)} checks: {verdict}"
    if body.get("posted"):
        detail += " (the change was posted to Slack)"
    findings = [
        f"{p.get('what', '?')}" + (f" — {p['fix']}" if p.get("fix") else "") for p in problems
    ]
    return DrillResult(
        "self-check",
        "",
        verdict == "healthy",
        seconds,
        body.get("slack_status"),
        detail,
        findings,
    )


def _slack_status_from_logs(text: str) -> int | None:
    for record in _notifier_records(text.splitlines()):
        if record.get("slack_status") is not None:
            return int(record["slack_status"])
    return None


def _notifier_records(lines: Any) -> list[dict[str, Any]]:
    records = []
    for line in lines:
        start = line.find("{")
        if start < 0:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("loginwatch") == "notifier":
            records.append(record)
    return records


# ---------------------------------------------------------------- --via alarm


@dataclass
class Clock:
    """Time and waiting, injectable so tests never sleep."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def via_alarm(
    deployment: Deployment,
    test_id: str,
    *,
    timeout: float,
    clock: Clock | None = None,
    on_wait: Callable[[float], None] | None = None,
    rule: str | None = None,
) -> DrillResult:
    """Fire the real alarm (``rule``'s, or outside_allowlist's), wait for the notifier's log
    line with our test id, reset the alarm."""
    aws, names = deployment.live_aws, deployment.names
    clock = clock or Clock()
    cloudwatch = aws.client("cloudwatch")
    logs = aws.client("logs")
    since = datetime.now(UTC) - timedelta(minutes=1)
    started = clock.now()
    alarm = names.rule_alarm(rule or "outside_allowlist")
    with translate_errors(f"the alarm {alarm}", missing=NOT_SET_UP):
        cloudwatch.set_alarm_state(
            AlarmName=alarm, StateValue="ALARM", StateReason=marked_alarm_reason(test_id, rule)
        )
    try:
        return _wait_for_delivery(
            "alarm",
            logs,
            names,
            test_id,
            since,
            started,
            timeout=timeout,
            clock=clock,
            on_wait=on_wait,
            diagnose=lambda: diagnose(deployment, since),
        )
    finally:
        # Back to OK, so a real sign-in right after this still causes a transition (alarm
        # actions only run on state changes).
        with translate_errors(alarm):
            cloudwatch.set_alarm_state(
                AlarmName=alarm,
                StateValue="OK",
                StateReason=f"loginwatch test-alert {test_id} done",
            )


def _wait_for_delivery(
    route: str,
    logs: Any,
    names: Names,
    test_id: str,
    since: datetime,
    started: float,
    *,
    timeout: float,
    clock: Clock,
    on_wait: Callable[[float], None] | None,
    diagnose: Callable[[], list[str]],
) -> DrillResult:
    """Poll the notifier's log for the line carrying ``test_id``; diagnose on time-out."""
    while True:
        record = _find_delivery(logs, names, test_id, since)
        elapsed = clock.now() - started
        if record is not None:
            delivered = record.get("outcome") == "test-posted"
            detail = f"notifier outcome: {record.get('outcome')}" + (
                f" ({record.get('reason')})" if record.get("reason") else ""
            )
            return DrillResult(
                route, test_id, delivered, elapsed, record.get("slack_status"), detail
            )
        if elapsed >= timeout:
            return DrillResult(
                route,
                test_id,
                False,
                elapsed,
                None,
                f"no delivery seen within {timeout:.0f} s",
                diagnose(),
            )
        if on_wait:
            on_wait(elapsed)
        clock.sleep(POLL_SECONDS)


# ---------------------------------------------------------------- --via fast-path


def via_fast_path(
    deployment: Deployment,
    test_id: str,
    *,
    region: str,
    timeout: float,
    clock: Clock | None = None,
    on_wait: Callable[[float], None] | None = None,
    rule: str | None = None,
) -> DrillResult:
    """Put a marked test event on ``region``'s default bus and wait for the notifier."""
    aws, names = deployment.live_aws, deployment.names
    clock = clock or Clock()
    since = datetime.now(UTC) - timedelta(minutes=1)
    started = clock.now()
    events = aws.client("events", region)
    detail_type, detail = test_event(deployment, test_id, region, rule)
    with translate_errors(f"the default event bus in {region}"):
        answer = events.put_events(
            Entries=[
                {
                    "Source": TEST_EVENT_SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                    "EventBusName": "default",
                }
            ]
        )
    if answer.get("FailedEntryCount"):
        entry: dict[str, Any] = next(
            (e for e in answer.get("Entries", []) if e.get("ErrorCode")), {}
        )
        return DrillResult(
            "fast-path",
            test_id,
            False,
            clock.now() - started,
            None,
            f"EventBridge refused the test event: {entry.get('ErrorCode')}: "
            f"{entry.get('ErrorMessage')}",
        )
    return _wait_for_delivery(
        "fast-path",
        aws.client("logs"),
        names,
        test_id,
        since,
        started,
        timeout=timeout,
        clock=clock,
        on_wait=on_wait,
        diagnose=lambda: diagnose_fast_path(deployment, region, since),
    )


def test_event(
    deployment: Deployment, test_id: str, region: str, rule: str | None
) -> tuple[str, dict[str, Any]]:
    """The marked event a rule's fast path takes (protocol.marked_test_event): a sign-in,
    or for the access-key rules an API call from an address outside the allowlist or an
    AWS Health report, shaped so the real rules' patterns match it."""
    allowlist = AllowList([str(e.network) for e in deployment.config.allowed])
    detail_type, detail = marked_test_event(
        test_id, region, rule, address_outside(allowlist), deployment.names.account
    )
    return detail_type, dict(detail)


# ---------------------------------------------------------------- diagnosis

# How each route's findings name the fix, as they always have.
FIX_ALARM = "(run `loginwatch setup`)"
FIX_FAST_PATH = "(run setup)"
NOT_ASKED = "the config does not ask for it here (fast path off, or the region not listed)"


@dataclass(frozen=True)
class Link:
    """One link a test alert crosses, judged by the resource that describes it."""

    kind: str  # the resource kind, in engine.resources_for, that describes the link
    region: str
    where: str  # how a finding names the link
    missing: str  # what the resource's absence means; "{name}" is its name


def _judge(deployment: Deployment, links: list[Link], fix: str) -> list[str]:
    """Read each link's resource from the engine's one list, and say, in the order the
    alert travels, what is missing, differs from what setup makes, or fails its checks."""
    chain = resources_for(deployment)
    found = [
        next((r for r in chain if r.kind == link.kind and r.region == link.region), None)
        for link in links
    ]
    wanted = [r for r in found if r is not None and r.wanted]
    readings = iter(read_all(deployment, wanted, concurrency=1))  # in the order of ``wanted``
    findings: list[str] = []
    for link, resource in zip(links, found, strict=True):
        if resource is None or not resource.wanted:
            findings.append(f"{link.where}: {NOT_ASKED}.")
        else:
            findings += _link_findings(link, resource, next(readings), fix)
    return findings


def _link_findings(
    link: Link, resource: Resource, observed: Observed | None, fix: str
) -> list[str]:
    if is_unavailable(observed):
        return [f"{link.where}: {REGION_NOT_ENABLED}."]
    if observed is None:
        return [f"{link.where}: {link.missing.format(name=resource.name)} {fix}."]
    if not resource.owned(observed) and not resource.adoptable(observed):
        return [f"{link.where}: {resource.name} {NOT_OURS}, so setup leaves it alone."]
    changes = resource.diff(observed)
    findings = [f"{link.where}: {'; '.join(changes)} {fix}."] if changes else []
    # A check that repeats the drift would only say the line above again.
    return findings + [
        f"{link.where}: {check.detail}."
        for check in resource.checks(observed)
        if not check.ok and not check.repeats_drift
    ]


def diagnose_fast_path(deployment: Deployment, region: str, since: datetime) -> list[str]:
    """Check each link of the fast path, in the order the event travels."""
    names = deployment.names
    home = names.region
    links: list[Link] = []
    if region != home:
        links += [
            Link(
                ForwardingRule.kind, region, f"forwarding rule ({region})", "{name} does not exist"
            ),
            Link(
                ForwardingRole.kind,
                home,
                "forwarding role",
                "{name} does not exist, so EventBridge cannot put events on the home bus",
            ),
        ]
    links += [
        Link(SignInRule.kind, home, f"home rule ({home})", "{name} does not exist"),
        Link(
            EventsInvokePermission.kind,
            home,
            "EventBridge → Lambda",
            "EventBridge is not allowed to invoke the notifier",
        ),
    ]
    findings = _judge(deployment, links, FIX_FAST_PATH)
    findings += _function_and_slack_findings(deployment.live_aws, names, since)
    if not findings:
        findings.append(
            "Every link looks configured. EventBridge delivery is best effort and usually "
            "takes seconds; try again, or `loginwatch test-alert --via lambda`."
        )
    return findings


def _function_and_slack_findings(aws: Any, names: Names, since: datetime) -> list[str]:
    findings = []
    now = datetime.now(UTC)
    errors = count_errors(aws, names.function, since - timedelta(minutes=5), now, period=60)
    if errors:
        findings.append(
            f"Lambda: the notifier failed {errors} time(s) just now; see its log group."
        )
    failed = _recent_failures(aws.client("logs"), names, since)
    if failed:
        status = failed[-1].get("slack_status")
        reason = failed[-1].get("reason") or ""
        findings.append(f"Lambda → Slack: the webhook answered {status}: {reason}".rstrip(": "))
    return findings


def _find_delivery(logs: Any, names: Names, test_id: str, since: datetime) -> dict[str, Any] | None:
    with translate_errors(names.notifier_log_group):
        try:
            found = logs.filter_log_events(
                logGroupName=names.notifier_log_group,
                startTime=int(since.timestamp() * 1000),
                filterPattern=f'"{test_id}"',
            )
        except logs.exceptions.ResourceNotFoundException:
            return None  # the function has not logged anything yet
    records = _notifier_records(e.get("message", "") for e in found.get("events", []))
    mine = [r for r in records if r.get("test_id") == test_id]
    return mine[-1] if mine else None


def diagnose(deployment: Deployment, since: datetime) -> list[str]:
    """Check each link of the chain and say which one most likely broke, in order."""
    home = deployment.names.region
    links = [
        Link(
            Subscription.kind,
            home,
            "SNS → Lambda",
            "the topic has no subscription for the notifier",
        ),
        Link(
            InvokePermission.kind, home, "SNS → Lambda", "SNS is not allowed to invoke the notifier"
        ),
    ]
    findings = _judge(deployment, links, FIX_ALARM)
    findings += _function_and_slack_findings(deployment.live_aws, deployment.names, since)
    if not findings:
        findings.append(
            "Every link looks configured. CloudWatch → SNS may be slow, or the topic's KMS key "
            "may not let CloudWatch use it; try `loginwatch test-alert --via lambda`."
        )
    return findings


def _recent_failures(logs: Any, names: Names, since: datetime) -> list[dict[str, Any]]:
    with translate_errors(names.notifier_log_group):
        try:
            found = logs.filter_log_events(
                logGroupName=names.notifier_log_group,
                startTime=int(since.timestamp() * 1000),
                filterPattern='{ $.outcome = "failed" }',
            )
        except logs.exceptions.ResourceNotFoundException:
            return []
    return [
        r
        for r in _notifier_records(e.get("message", "") for e in found.get("events", []))
        if r.get("outcome") == "failed"
    ]
