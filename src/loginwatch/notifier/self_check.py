"""The self-check's checks: what can silence loginwatch, read from inside, with the
notifier's own role.

Each check of settings' ``self_check.checks`` (self_check_spec) gives one or more
``Finding``s, each with a stable id (``rule@eu-west-1:loginwatch-console-sign-in``):
fine, broken (what is wrong and how to fix it) or *could not tell* (throttled, timed
out, Slack answered 5xx: one run's doubt is not counted as broken). They run on a
small thread pool, every region at once, within the run's deadline; what has not
answered by then could not tell.

Webhooks are probed without posting: Slack answers an empty payload ``{}`` on a live
webhook with 400 (``no_text``/``invalid_payload``) and posts nothing; a revoked one
with 404 ``no_service``, 403 ``invalid_token``, an archived channel's with 410. The
URL is a secret: only ``mask_webhook`` of it is ever shown.
"""

from __future__ import annotations

import concurrent.futures
import functools
import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .aws_clients import Service
from .calls import (
    CHECKED_ALARMS,
    CLAIMS,
    OWN_FUNCTION,
    QUEUES,
    RULES,
    TOPIC,
    TRAIL,
    Call,
)
from .claims import error_code
from .self_check_spec import Check
from .slack_delivery import mask_webhook
from .webhook_secret import WebhookNotConfigured

CALLS = (
    Call("cloudtrail", "GetTrailStatus", TRAIL),
    Call("events", "DescribeRule", RULES),
    Call("events", "ListTargetsByRule", RULES),
    Call("cloudwatch", "DescribeAlarms", CHECKED_ALARMS),
    Call("sns", "ListSubscriptionsByTopic", TOPIC),
    Call("lambda", "GetFunctionConcurrency", OWN_FUNCTION),
    Call("dynamodb", "DescribeTable", CLAIMS),
    Call("sqs", "GetQueueUrl", QUEUES),
    Call("sqs", "GetQueueAttributes", QUEUES),
)

OK, BROKEN, UNKNOWN = "ok", "broken", "unknown"
WORKERS = 8
ALARMS_PER_CALL = 100  # DescribeAlarms' AlarmNames limit
DELIVERY_WITHIN = timedelta(hours=1)  # the trail's last delivery to CloudWatch Logs
PROBE_TIMEOUT_SECONDS = 5.0
_SUBSCRIPTION_PAGES = 10  # 100 subscriptions each: far beyond a topic of loginwatch's

SETUP_FIX = "run `loginwatch setup`: it re-creates and re-enables what is missing"
# Errors that say the thing is gone (or the role may no longer read it: a changed role is
# as silencing as a deleted rule). Anything else (throttling, 5xx, timeouts): could not tell.
_GONE = frozenset(
    {
        "ResourceNotFoundException",
        "TrailNotFoundException",
        "NotFound",
        "NotFoundException",
        "QueueDoesNotExist",
        "AWS.SimpleQueueService.NonExistentQueue",
        "AccessDenied",
        "AccessDeniedException",
        "AuthorizationError",
        "AuthorizationErrorException",
    }
)
_DENIED = frozenset(
    {"AccessDenied", "AccessDeniedException", "AuthorizationError", "AuthorizationErrorException"}
)
_REVOKED_STATUSES = frozenset({401, 403, 404, 410})

Client = Callable[[Service, str], Any]  # (service, region) → the container's boto3 client
WebhookUrl = Callable[[str], str]  # SSM parameter name → the webhook URL


@dataclass(frozen=True)
class Finding:
    id: str
    status: str  # OK, BROKEN or UNKNOWN
    what: str = ""
    fix: str = ""
    destination: str = ""  # a webhook's: the destination it serves

    @property
    def broken(self) -> bool:
        return self.status == BROKEN


def check_id(check: Check) -> str:
    if check.kind == "webhook":
        return f"webhook@{check.extra['destination']}"
    name = check.name.rsplit(":", 1)[-1] if check.kind == "subscription" else check.name
    return f"{check.kind}@{check.region}:{name}"


def _ok(check: Check) -> Finding:
    return Finding(check_id(check), OK)


def _broken(check: Check, what: str, fix: str = SETUP_FIX) -> Finding:
    return Finding(check_id(check), BROKEN, what, fix)


def _unknown(check: Check, why: str) -> Finding:
    return Finding(check_id(check), UNKNOWN, f"could not tell: {why}")


def _failed(check: Check, error: BaseException, thing: str) -> Finding:
    """An AWS error: gone or denied is broken; anything else could not tell."""
    code = error_code(error)
    if code in _DENIED:
        return _broken(
            check,
            f"the notifier may no longer read {thing} ({code}): its role was changed",
            "run `loginwatch setup`: it restores the notifier's role",
        )
    if code in _GONE:
        return _broken(check, f"{thing} is missing")
    return _unknown(check, f"{thing}: {code or type(error).__name__}")


# ---------------------------------------------------------------- one check per kind
def check_trail(check: Check, client: Client, now: datetime) -> Finding:
    thing = f"the trail {check.name} in {check.region}"
    try:
        status = client("cloudtrail", check.region).get_trail_status(Name=check.name)
    except Exception as error:
        return _failed(check, error, thing)
    if not status.get("IsLogging"):
        stopped = status.get("StopLoggingTime")
        since = f" (stopped {_utc(stopped)})" if isinstance(stopped, datetime) else ""
        return _broken(
            check,
            f"{thing} is not logging{since}: no sign-in reaches loginwatch",
            "run `loginwatch setup`: it starts the trail's logging again",
        )
    if not check.extra.get("logs"):
        return _ok(check)
    delivered = status.get("LatestCloudWatchLogsDeliveryTime")
    delivery_error = status.get("LatestCloudWatchLogsDeliveryError")
    if isinstance(delivered, datetime) and now - delivered <= DELIVERY_WITHIN:
        return _ok(check)
    started = status.get("StartLoggingTime")
    if not delivery_error and isinstance(started, datetime) and now - started <= DELIVERY_WITHIN:
        # Logging started within the hour (a fresh setup, the first check it runs; a trail
        # started again): its first delivery may still be on its way.
        return _ok(check)
    last = f"since {_utc(delivered)}" if isinstance(delivered, datetime) else "at all"
    said = f" (CloudTrail says: {delivery_error})" if delivery_error else ""
    return _broken(
        check,
        f"{thing} has not delivered to CloudWatch Logs {last}{said}: the alarms see nothing",
        "run `loginwatch setup`: it restores the trail's log group and role",
    )


def check_rule(check: Check, client: Client, now: datetime) -> Finding:
    events = client("events", check.region)
    thing = f"the EventBridge rule {check.name} in {check.region}"
    try:
        rule = events.describe_rule(Name=check.name)
        targets = events.list_targets_by_rule(Rule=check.name).get("Targets", [])
    except Exception as error:
        return _failed(check, error, thing)
    state = rule.get("State", "")
    if state not in ("ENABLED", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"):
        return _broken(
            check,
            f"{thing} is {state.lower() or 'not enabled'}: that region's events are not forwarded",
            "run `loginwatch setup`: it enables the rule again",
        )
    if not targets:
        return _broken(
            check,
            f"{thing} has no target: its events go nowhere",
            "run `loginwatch setup`: it puts the rule's target back",
        )
    return _ok(check)


def check_alarms(checks: Sequence[Check], client: Client, now: datetime) -> list[Finding]:
    """Up to 100 alarms of one region in one DescribeAlarms."""
    region = checks[0].region
    try:
        answer = client("cloudwatch", region).describe_alarms(
            AlarmNames=[c.name for c in checks], MaxRecords=ALARMS_PER_CALL
        )
    except Exception as error:
        return [_failed(c, error, f"the alarm {c.name} in {region}") for c in checks]
    found = {
        a["AlarmName"]: a
        for a in (*answer.get("MetricAlarms", []), *answer.get("CompositeAlarms", []))
    }
    findings = []
    for check in checks:
        alarm = found.get(check.name)
        if alarm is None:
            findings.append(_broken(check, f"the alarm {check.name} in {region} is missing"))
        elif not alarm.get("ActionsEnabled"):
            findings.append(
                _broken(
                    check,
                    f"the alarm {check.name} in {region} has its actions disabled: it "
                    "fires without telling anyone",
                    "run `loginwatch setup`: it enables the alarm's actions again",
                )
            )
        else:
            findings.append(_ok(check))
    return findings


def check_subscription(check: Check, client: Client, now: datetime) -> Finding:
    endpoint = check.extra["endpoint"]
    sns = client("sns", check.region)
    thing = f"the topic {check.name.rsplit(':', 1)[-1]}"
    request: dict[str, Any] = {"TopicArn": check.name}
    mine: list[dict[str, Any]] = []
    try:
        for _ in range(_SUBSCRIPTION_PAGES):
            answer = sns.list_subscriptions_by_topic(**request)
            mine += [s for s in answer.get("Subscriptions", []) if s.get("Endpoint") == endpoint]
            if not answer.get("NextToken"):
                break
            request["NextToken"] = answer["NextToken"]
    except Exception as error:
        return _failed(check, error, thing)
    if any(s.get("SubscriptionArn", "").startswith("arn:") for s in mine):
        return _ok(check)
    what = "is not confirmed" if mine else "no longer reaches the notifier (unsubscribed)"
    return _broken(
        check,
        f"{thing}'s subscription of the notifier {what}: alarms post nothing",
        "run `loginwatch setup`: it subscribes the notifier again",
    )


def check_concurrency(check: Check, client: Client, now: datetime) -> Finding:
    thing = f"the function {check.name}"
    try:
        answer = client("lambda", check.region).get_function_concurrency(FunctionName=check.name)
    except Exception as error:
        return _failed(check, error, thing)
    if answer.get("ReservedConcurrentExecutions") == 0:
        return _broken(
            check,
            f"{thing} has its reserved concurrency set to 0: it never runs for an alert",
            "run `loginwatch setup`: it removes the zero concurrency",
        )
    return _ok(check)


def check_table(check: Check, client: Client, now: datetime) -> Finding:
    thing = f"the claims table {check.name}"
    try:
        table = client("dynamodb", check.region).describe_table(TableName=check.name)["Table"]
    except Exception as error:
        return _failed(check, error, thing)
    status = table.get("TableStatus", "")
    # UPDATING answers as ACTIVE does (a setting being changed); anything else does not.
    if status in ("ACTIVE", "UPDATING"):
        return _ok(check)
    return _broken(check, f"{thing} is {status.lower() or 'not active'}")


_queue_urls: dict[tuple[str, str], str] = {}  # (region, name) → URL: the same name in each region
heartbeat_urls: dict[str, str] = {}  # SSM parameter → the dead-man's-switch URL (a secret)


def check_queue(check: Check, client: Client, now: datetime) -> Finding:
    sqs = client("sqs", check.region)
    thing = f"the queue {check.name} in {check.region}"
    key = (check.region, check.name)
    try:
        if key not in _queue_urls:
            _queue_urls[key] = sqs.get_queue_url(QueueName=check.name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(
            QueueUrl=_queue_urls[key],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        ).get("Attributes", {})
    except Exception as error:
        _queue_urls.pop(key, None)
        return _failed(check, error, thing)
    waiting = sum(
        int(attributes.get(a, 0) or 0)
        for a in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
    )
    if not waiting:
        return _ok(check)
    return _broken(
        check,
        f"{waiting} alert(s) wait in {thing}: they were never delivered",
        "run `loginwatch redeliver`: it posts them (then fix what failed: `loginwatch status`)",
    )


def check_webhook(check: Check, webhook_url: WebhookUrl, timeout: float) -> Finding:
    destination = check.extra["destination"]
    found = _webhook_finding(check, webhook_url, timeout)
    return Finding(found.id, found.status, found.what, found.fix, destination)


def _webhook_finding(check: Check, webhook_url: WebhookUrl, timeout: float) -> Finding:
    destination = check.extra["destination"]
    thing = f"the Slack webhook of destination {destination}"
    try:
        url = webhook_url(check.name)
    except WebhookNotConfigured:
        return _broken(
            check,
            f"{thing} is not stored (SSM parameter {check.name} is missing or empty)",
            "set the webhook URL in the config, then run `loginwatch setup`",
        )
    except Exception as error:
        return _failed(check, error, f"{thing}'s SSM parameter")
    status, body = probe_webhook(url, timeout)
    where = mask_webhook(url)
    if status in _REVOKED_STATUSES:
        return _broken(
            check,
            f"{thing} ({where}) was revoked or its channel archived: Slack answers "
            f"{status} {body or 'with no body'}. Its alerts reach nobody",
            "the webhook was revoked: create a new one and set slack.webhook_url (or the "
            "destination's webhook_url), then run `loginwatch setup`",
        )
    if status is not None and (status == 400 or 200 <= status < 300):
        return _ok(check)  # 400 no_text / invalid_payload: a live webhook that posted nothing
    return _unknown(check, f"{thing} ({where}): {body or 'no answer'}")


def probe_webhook(url: str, timeout: float) -> tuple[int | None, str]:
    """POST ``{}``: a live webhook refuses it (400) and posts nothing. (status, reason);
    status None when nothing answered."""
    if not url.startswith(("https://", "http://")):
        return None, "the webhook URL is not an http(s) URL"
    request = urllib.request.Request(
        url,
        data=json.dumps({}).encode(),
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "loginwatch"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(200).decode("utf-8", "replace").strip()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read(200).decode("utf-8", "replace").strip()[:100]
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        reason = getattr(error, "reason", None) or error  # never the URL
        return None, f"connection error: {type(error).__name__}: {reason}"


# ---------------------------------------------------------------- all of them
_SINGLE: dict[str, Callable[[Check, Client, datetime], Finding]] = {
    "trail": check_trail,
    "rule": check_rule,
    "subscription": check_subscription,
    "concurrency": check_concurrency,
    "table": check_table,
    "queue": check_queue,
}
_SERVICE: dict[str, Service] = {
    "trail": "cloudtrail",
    "rule": "events",
    "alarm": "cloudwatch",
    "subscription": "sns",
    "concurrency": "lambda",
    "table": "dynamodb",
    "queue": "sqs",
}


def run_checks(
    checks: Iterable[Check],
    *,
    client: Client,
    webhook_url: WebhookUrl,
    now: datetime,
    seconds: float,
    ssm_region: str,
    workers: int = WORKERS,
) -> list[Finding]:
    """Every check, at most ``seconds`` long; in the checks' order."""
    checks = list(checks)
    # boto3 makes clients unsafely from threads: each is made here, first; using them is safe.
    for check in checks:
        if check.kind in _SERVICE:
            client(_SERVICE[check.kind], check.region)
    if any(c.kind == "webhook" for c in checks):
        client("ssm", ssm_region)
    units: list[tuple[list[Check], Callable[[], list[Finding]]]] = []
    alarms: dict[str, list[Check]] = {}
    for check in checks:
        if check.kind == "alarm":
            alarms.setdefault(check.region, []).append(check)
        elif check.kind == "webhook":
            timeout = min(PROBE_TIMEOUT_SECONDS, max(seconds, 0.1))
            units.append(([check], functools.partial(_webhook_unit, check, webhook_url, timeout)))
        else:
            units.append(([check], functools.partial(_single_unit, check, client, now)))
    for region_checks in alarms.values():
        for start in range(0, len(region_checks), ALARMS_PER_CALL):
            batch = region_checks[start : start + ALARMS_PER_CALL]
            units.append((batch, functools.partial(check_alarms, batch, client, now)))
    found: dict[str, Finding] = {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(workers, len(units))))
    try:
        futures = {pool.submit(work): unit for unit, work in units}
        done, late = concurrent.futures.wait(futures, timeout=max(seconds, 0))
        for future in done:
            error = future.exception()
            if error is None:
                found.update((f.id, f) for f in future.result())
            else:
                for check in futures[future]:
                    found[check_id(check)] = _unknown(check, f"{type(error).__name__}")
        for future in late:
            for check in futures[future]:
                found[check_id(check)] = _unknown(check, "no answer within the run's time")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return [found[check_id(c)] for c in checks if check_id(c) in found]


def _webhook_unit(check: Check, webhook_url: WebhookUrl, timeout: float) -> list[Finding]:
    return [check_webhook(check, webhook_url, timeout)]


def _single_unit(check: Check, client: Client, now: datetime) -> list[Finding]:
    return [_SINGLE[check.kind](check, client, now)]


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def reset() -> None:
    _queue_urls.clear()
    heartbeat_urls.clear()
