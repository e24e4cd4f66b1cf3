"""Lambda entry point: a sign-in alert → one Slack message.

Two paths feed it. The fast path: an EventBridge sign-in event, seconds after
the sign-in (fast_path.py). The alarm path, the guaranteed backstop: a
CloudWatch alarm via SNS → look up the sign-ins in the trail's log group.
Each sign-in is claimed once (claims.py), so whichever path comes second does
not list it again.

OK → ALARM reports the sign-ins that set the alarm off. ALARM → OK reports the
ones that arrived while it was already in ALARM: alarm actions run only on state
transitions, so those (say, an attacker signing in while the alarm is in ALARM
for a colleague the over-matching filter pattern caught) cause no notification
of their own.

Every invocation prints one JSON line (Lambda ships stdout to CloudWatch Logs)
and returns the same dict, so a synchronous invoke can report it. A batch from
the retry queue (redelivery.py) prints one line per alert and returns the
``batchItemFailures`` the event source mapping reads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import account_names, aws_clients, fast_path, redelivery
from .alarm_event import AlarmNotification, Ignored, parse_event
from .alarm_history import find_episode_start
from .claims import Claims
from .dispatch import Composer, Payload, burst_report, send
from .events import (
    SignIn,
    alarm_window,
    episode_window,
    fetch_log_events,
    first_ingested_after,
    sign_ins_from_log_events,
    unique_newest_first,
)
from .ipmatch import AllowList
from .protocol import TEST_ALERT_MARKER, find_test_id, find_test_rule, marked_alarm_reason
from .routing import Destination
from .rules import RULE_PHRASES, Alert, Burst, find_bursts
from .settings import Settings, load_settings
from .slack_delivery import SlackDeliveryError, mask_webhook, post_to_slack
from .slack_message import (
    build_alert_message,
    build_empty_window_message,
    build_test_message,
)
from .webhook_secret import WebhookNotConfigured, read_webhook_url

__all__ = [
    "TEST_ALERT_MARKER",
    "SlackDeliveryError",
    "WebhookNotConfigured",
    "lambda_handler",
    "marked_alarm_reason",
    "reset_caches",
]

_REASON_LIMIT = 300

# Container-lifetime caches: a warm Lambda reuses them across invocations.
_settings: tuple[Settings, AllowList] | None = None
# SSM parameter name → webhook URL, one per destination.
_webhook_urls: dict[str, str] = {}


def reset_caches() -> None:
    """Forget settings, the webhook URLs and boto3 clients (as a cold start would)."""
    global _settings
    _settings = None
    _webhook_urls.clear()
    account_names.reset()
    aws_clients.reset()


def _get_settings() -> tuple[Settings, AllowList]:
    global _settings
    if _settings is None:
        settings = load_settings()
        _settings = (settings, settings.allow_list())
    return _settings


def _get_webhook_url(settings: Settings, parameter: str | None = None) -> str:
    name = parameter or settings.webhook_parameter
    if name not in _webhook_urls:
        ssm = aws_clients.client("ssm", settings.region)
        _webhook_urls[name] = read_webhook_url(ssm, name, settings.region)
    return _webhook_urls[name]


@dataclass
class _Run:
    """What this invocation did; becomes the log line and the return value."""

    outcome: str = "failed"
    events: int = 0
    slack_status: int | None = None
    test_id: str | None = None
    reason: str | None = None
    # Set for an alert from the retry or a dead-letter queue: why it is late.
    late_cause: str | None = None

    def as_record(self, duration_ms: float) -> dict[str, Any]:
        record = {
            "loginwatch": "notifier",
            "outcome": self.outcome,
            "events": self.events,
            "slack_status": self.slack_status,
            "test_id": self.test_id,
            "duration_ms": duration_ms,
            "reason": self.reason,
        }
        if self.late_cause is not None:
            record["late_cause"] = self.late_cause
        return record


def _post_to(settings: Settings, destination: Destination, payload: Payload) -> int:
    return post_to_slack(_get_webhook_url(settings, destination.parameter), payload).status


def _names(settings: Settings, account_ids: Any) -> dict[str, str]:
    """Accounts' names for the message (organization mode), else none."""
    if not settings.account_names:
        return {}
    return account_names.names_of(
        account_ids, lambda: aws_clients.client("organizations", settings.region)
    )


def _claims(settings: Settings) -> Claims:
    return Claims(aws_clients.client("dynamodb", settings.region), settings.claims_table)


def _late_note(run: _Run, since: datetime) -> str | None:
    if run.late_cause is None:
        return None
    return redelivery.lateness(run.late_cause, since, datetime.now(UTC))


def _process(event: Any, run: _Run) -> None:
    if fast_path.is_eventbridge_event(event):
        _process_fast_path(event, run)
        return
    notice = parse_event(event)
    if isinstance(notice, Ignored):
        run.outcome, run.reason = "ignored", notice.reason
        return
    settings, allowlist = _get_settings()
    rule = settings.alarm_rules.get(notice.alarm_name)
    if rule is None:
        # The topic is loginwatch's; an unrelated alarm wired to it is not a sign-in.
        run.outcome, run.reason = "ignored", f"alarm {notice.alarm_name!r} is not loginwatch's"
        return
    if notice.new_state == "OK" and notice.old_state == "ALARM":
        _report_rest_of_episode(notice, rule, settings, allowlist, run)
        return
    if notice.new_state != "ALARM":
        came_from = f" (from {notice.old_state})" if notice.old_state else ""
        run.outcome = "ignored"
        run.reason = f"alarm state is {notice.new_state}{came_from}, not ALARM or ALARM → OK"
        return

    test_id = find_test_id(notice.state_reason)
    if test_id is not None:
        run.test_id = test_id
        tested = find_test_rule(notice.state_reason)
        for destination in fast_path.test_targets(settings.rules, settings.routes(), tested):
            payload = build_test_message(
                test_id=test_id,
                account_id=notice.account_id,
                alarm_name=notice.alarm_name,
                destination=destination.name,
                rule=tested,
            )
            run.slack_status = _post_to(settings, destination, payload)
        run.outcome = "test-posted"
        return

    # Read the secret first: a missing webhook should fail before any log query.
    _get_webhook_url(settings)
    window = alarm_window(notice, settings.lookback_minutes)
    logs = aws_clients.client("logs", settings.region)
    all_sign_ins = sign_ins_from_log_events(
        fetch_log_events(logs, settings.trail_log_group, window)
    )
    alerts, bursts = _evaluate(all_sign_ins, all_sign_ins, rule, settings, allowlist)
    if alerts or bursts:
        late = _late_note(run, notice.state_change_time)
        _post_unreported(settings, notice, alerts, bursts, run, already_firing=False, late=late)
        return
    quiet = _why_quiet(rule, all_sign_ins, allowlist)
    if quiet is not None:
        # The filter pattern over-counts by design (an approximate allowlist, the CIS
        # patterns): the exact check is the final word, so nobody is paged for nothing.
        run.outcome, run.reason = quiet
        return
    # Delivery lag or a hand-set alarm state: say so rather than stay silent.
    rule_of = settings.rules.get(rule)
    severity = rule_of.severity if rule_of else "low"
    for destination in settings.routes().targets((rule,), severity, notice.account_id):
        payload = build_empty_window_message(
            account_id=notice.account_id,
            alarm_name=notice.alarm_name,
            window=window,
            region=settings.region,
            log_group=settings.trail_log_group,
            rule=rule,
            mention=destination.mention,
        )
        run.slack_status = _post_to(settings, destination, payload)
    run.outcome = "posted-empty-window"
    run.reason = f"nothing for rule {rule} in the alarm window"


def _evaluate(
    candidates: list[SignIn],
    everything: list[SignIn],
    alarm_rule: str,
    settings: Settings,
    allowlist: AllowList,
) -> tuple[list[Alert], list[Burst]]:
    """Every rule over the sign-ins of a window: the alerts among ``candidates`` (newest
    first, one per eventID) and the bursts of failures among ``everything``."""
    rules = settings.rules
    bursts = find_bursts(everything, rules.failures) if rules.failures else []
    in_bursts = {event_id for b in bursts for event_id in b.event_ids}
    outside = rules.get("outside_allowlist")
    alerts: list[Alert] = []
    for sign_in in unique_newest_first(candidates):
        alert = rules.alert(sign_in, allowlist, bursts)
        # The allowlist alarm's digest lists failures from outside too, as context.
        context = (
            outside is not None
            and alarm_rule == outside.name
            and not sign_in.success
            and sign_in.event_id not in in_bursts
            and not allowlist.contains(sign_in.source_ip)
        )
        if alert is None and context:
            alert = Alert(sign_in, (outside,))
        if alert is not None:
            alerts.append(alert)
    return alerts, bursts


def _why_quiet(rule: str, sign_ins: list[SignIn], allowlist: AllowList) -> tuple[str, str] | None:
    """(outcome, reason) when the window explains the alarm without an alert, else None."""
    successes = [s for s in sign_ins if s.success]
    if rule == "outside_allowlist":
        allowed = [s for s in successes if allowlist.contains(s.source_ip)]
        if allowed:
            return "suppressed-allowed", (
                f"{len(allowed)} sign-in(s) in the window, all from the allowlist"
            )
    elif rule == "no_mfa" and successes:
        return "suppressed-mfa", (
            f"{len(successes)} sign-in(s) in the window, none by an IAM user without MFA "
            "(SSO and federated sign-ins record MFA at the identity provider)"
        )
    elif rule == "root_sign_in":
        failed = [s for s in sign_ins if s.is_root and not s.success]
        if failed and not any(s.is_root for s in successes):
            # The CIS root filter counts a failed root sign-in too: not a root sign-in.
            return "root-failed", (
                f"{len(failed)} failed root sign-in(s) in the window; "
                "failed_sign_ins reports bursts of failures"
            )
    elif rule == "failed_sign_ins":
        failures = [s for s in sign_ins if not s.success]
        if failures:
            return "below-threshold", (
                f"{len(failures)} failed sign-in(s) in the window, not a burst"
            )
    return None


def _report_rest_of_episode(
    notice: AlarmNotification, rule: str, settings: Settings, allowlist: AllowList, run: _Run
) -> None:
    """ALARM → OK: post the sign-ins the rules alert for that arrived while the alarm was
    already in ALARM, if there were any.

    A test-alert episode is handled like any other: its ALARM-time run posted the
    test message without reading the logs, and real sign-ins may have come meanwhile.
    The test id is deliberately not logged here: `loginwatch test-alert` looks for
    its id in the notifier's log lines and takes the newest as the delivery result.
    """
    cloudwatch = aws_clients.client("cloudwatch", settings.region)
    start = find_episode_start(cloudwatch, notice, settings.lookback_minutes)
    window = episode_window(notice, start.time, settings.lookback_minutes)
    logs = aws_clients.client("logs", settings.region)
    all_sign_ins = sign_ins_from_log_events(
        fetch_log_events(logs, settings.trail_log_group, window)
    )
    # The ALARM-time run queried the logs right at the episode start, so whatever was
    # ingested by then was already reported (or rightly suppressed). Its query ran a few
    # seconds after the start, so an event ingested in between is reported twice: a
    # duplicate is better than a miss. A test's ALARM-time run did not read the logs at
    # all, so nothing in its window has been seen. Bursts are counted over the whole
    # episode: their claims tell what was reported.
    unseen = all_sign_ins if start.test_alert else first_ingested_after(all_sign_ins, start.time)
    alerts, bursts = _evaluate(unseen, all_sign_ins, rule, settings, allowlist)
    if not alerts and not bursts:
        run.outcome = "ignored"
        what = RULE_PHRASES["outside_allowlist"] if rule == "outside_allowlist" else f"for {rule}"
        run.reason = f"alarm back to OK; no further sign-ins {what} ({start.note})"
        return
    late = _late_note(run, notice.state_change_time)
    _post_unreported(settings, notice, alerts, bursts, run, already_firing=True, late=late)
    if run.outcome == "posted-during-alarm":
        run.reason = start.note


def _post_unreported(
    settings: Settings,
    notice: AlarmNotification,
    alerts: list[Alert],
    bursts: list[Burst],
    run: _Run,
    *,
    already_firing: bool,
    late: str | None = None,
) -> None:
    """Claim, post what no other run reported (per destination), confirm or release.

    A window whose successful sign-ins were all reported already (by the fast
    path, or an earlier delivery of this alarm) posts nothing: the failures left
    are context, not an alert, so their claims are released for a later message.
    """
    _, allowlist = _get_settings()
    # Counted before posting, so a failed run's log line says how many it was about.
    run.events = len(alerts) + sum(b.count for b in bursts)

    names = _names(
        settings,
        {a.sign_in.account_id for a in alerts} | {b.account_id for b in bursts},
    )

    def alert_payload(destination: Destination, fresh: Any, already: int) -> Payload:
        return build_alert_message(
            fresh,
            account_id=notice.account_id,
            alarm_name=notice.alarm_name,
            already_firing=already_firing,
            already_reported=already,
            late=late,
            mention=destination.mention,
            account_names=names,
        )

    sent = send(
        alerts,
        bursts,
        routes=settings.routes(),
        claims=lambda: _claims(settings),
        post=lambda destination, payload: _post_to(settings, destination, payload),
        compose=Composer(
            alert_payload,
            burst_report(
                via=f"alarm {notice.alarm_name}",
                allowed=allowlist.contains,
                late=late,
                account_names=names,
            ),
        ),
    )
    if sent.messages or not sent.failed:
        run.events = sent.events
    run.slack_status = sent.slack_status
    if sent.notes:
        run.reason = "; ".join(sent.notes)[:_REASON_LIMIT]
    if sent.messages:
        run.outcome = "posted-during-alarm" if already_firing else "posted"
    elif not sent.failed and not sent.busy:
        run.outcome = "already-reported"
        said = [f"{sent.already} sign-in(s) in the window were reported already"] if alerts else []
        if bursts:
            said.append(f"{len(bursts)} burst(s) of failed sign-ins were reported already")
        if sent.absorbed:
            said.append(f"{sent.absorbed} failure(s) joined a burst reported earlier")
        run.reason = "; ".join(said)
    sent.raise_if_incomplete()


def _process_fast_path(event: Any, run: _Run) -> None:
    settings, allowlist = _get_settings()
    context = fast_path.Context(
        allowlist=allowlist,
        rules=settings.rules,
        routes=settings.routes(),
        alarm_name=settings.alarm_name,
        claims=lambda: _claims(settings),
        post=lambda destination, payload: _post_to(settings, destination, payload),
        account_names=lambda ids: _names(settings, ids),
    )
    result = fast_path.handle(event, context, late_cause=run.late_cause)
    run.outcome, run.events = result.outcome, result.events
    run.test_id, run.reason = result.test_id, result.reason
    run.slack_status = result.slack_status


def _failure_reason(error: BaseException) -> str:
    reason = f"{type(error).__name__}: {error}"
    # Belt and braces: no message we build contains the webhook, but a library's might.
    for url in _webhook_urls.values():
        reason = reason.replace(url, mask_webhook(url))
    return reason[:_REASON_LIMIT]


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda handler (``loginwatch_notifier.handler.lambda_handler``)."""
    if redelivery.is_sqs_batch(event):
        return _process_batch(event, context)
    started = time.perf_counter()
    run = _Run()
    try:
        _process(event, run)
    except Exception as error:
        run.outcome = "failed"
        run.reason = _failure_reason(error)
        if isinstance(error, SlackDeliveryError):
            run.slack_status = error.status
        _emit(run, started)
        raise  # let Lambda record the failure (and retry the async invoke)
    return _emit(run, started)


# Below this, a record is left for the next try rather than started: one post with its
# Slack retries may take 15 s, and the function times out at 30 s.
_TIME_NEEDED_MS = 12_000
_queue_urls: dict[str, str] = {}


def _process_batch(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Alerts from the retry queue (or, via `loginwatch redeliver`, the dead-letter
    queues): each is processed as its original event was, and reported on its own."""
    settings, _ = _get_settings()
    failures: list[str] = []
    results: list[dict[str, Any]] = []
    hold_back: str | None = None
    for record in event["Records"]:
        started = time.perf_counter()
        run = _Run()
        message_id = str(record.get("messageId", ""))
        if hold_back is None and _out_of_time(context):
            hold_back = "left for the next try: too little time left in this run"
        if hold_back is not None:
            run.outcome, run.reason = "deferred", hold_back
            failures.append(message_id)
            _retry_later(settings, record)
            results.append({"itemIdentifier": message_id, **_emit(run, started)})
            continue
        try:
            undelivered = redelivery.unwrap(record)
            run.late_cause = undelivered.cause
            _process(undelivered.event, run)
        except Exception as error:
            run.outcome = "failed"
            run.reason = _failure_reason(error)
            if isinstance(error, SlackDeliveryError):
                run.slack_status = error.status
                # Slack is still failing: do not try the rest of the batch now.
                hold_back = "left for the next try: Slack is still failing"
            failures.append(message_id)
            _retry_later(settings, record)
        results.append({"itemIdentifier": message_id, **_emit(run, started)})
    answer: dict[str, Any] = {"batchItemFailures": [{"itemIdentifier": m} for m in failures]}
    if event.get(redelivery.REDELIVER_MARKER):
        # Only for `loginwatch redeliver`: the retry mapping reads batchItemFailures alone.
        answer["results"] = results
    return answer


def _out_of_time(context: Any) -> bool:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return callable(remaining) and remaining() < _TIME_NEEDED_MS


def _retry_later(settings: Settings, record: Mapping[str, Any]) -> None:
    """Hide a failed record from the retry queue for its backoff. Best effort: if this
    fails, the queue's visibility timeout (the longest backoff) applies instead."""
    name = redelivery.queue_name(record)
    receipt = record.get("receiptHandle")
    if name != settings.retry_queue or not receipt:
        return  # a dead-letter queue's message, handed over by `loginwatch redeliver`
    sqs = aws_clients.client("sqs", settings.region)
    try:
        if name not in _queue_urls:
            _queue_urls[name] = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.change_message_visibility(
            QueueUrl=_queue_urls[name],
            ReceiptHandle=receipt,
            VisibilityTimeout=redelivery.backoff_seconds(redelivery.receive_count(record)),
        )
    except Exception as error:
        print(json.dumps({"loginwatch": "notifier", "backoff_not_set": str(error)[:200]}))


def _emit(run: _Run, started: float) -> dict[str, Any]:
    record = run.as_record(round((time.perf_counter() - started) * 1000, 1))
    print(json.dumps(record), flush=True)
    return record
