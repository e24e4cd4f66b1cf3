"""The alarm path, the guaranteed backstop: a CloudWatch alarm via SNS → the sign-ins in
the trail's log group → one message per destination.

OK → ALARM reports the sign-ins that set the alarm off. ALARM → OK reports the
ones that arrived while it was already in ALARM: alarm actions run only on state
transitions, so those (say, an attacker signing in while the alarm is in ALARM
for a colleague the over-matching filter pattern caught) cause no notification
of their own. Each sign-in is claimed once (claims.py), so whichever path comes
second does not list it again.

The alarms of the access-key rules are a backstop too: their window's API calls (or
AWS's quarantine of a user) are read from the trail's log group and go through the
fast path's own step (paths/api_call.report_calls, paths/key_exposed.report_exposures),
so a call the fast path counted is skipped and one it missed is counted or posted.
The tamper alarms (CIS CloudWatch.5's trail changes, loginwatch's own resources) read
their window with both backstop filters (notifier/tamper.log_filters) and go through
paths/tamper.report_changes: a change the fast path posted is not posted again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..alarm_event import AlarmNotification, Ignored, parse_event
from ..alarm_history import find_episode_start
from ..api_calls import (
    KEY_CALL_FILTER,
    QUARANTINE_FILTER,
    api_calls_from_log_events,
    quarantines_from_log_events,
)
from ..context import Context, Outcome
from ..dispatch import Payload, Sent, post_test, send_sign_ins
from ..events import (
    AlarmWindow,
    SignIn,
    alarm_window,
    episode_window,
    fetch_log_events,
    first_ingested_after,
    sign_ins_from_log_events,
    unique_newest_first,
)
from ..ipmatch import AllowList
from ..protocol import find_test_id, find_test_rule
from ..routing import Destination
from ..rules import (
    KEY_RULE_NAMES,
    RULE_PHRASES,
    TAMPER_RULE,
    Alert,
    Burst,
    Rule,
    find_bursts,
)
from ..slack_message import build_alert_message, build_empty_window_message, build_test_message
from ..tamper import log_filters, tamper_events_from_log_events
from . import api_call, key_exposed
from . import tamper as tamper_path

_REASON_LIMIT = 300


def recognises(event: Any) -> bool:
    """An SNS delivery (the alarm's topic); parse_event says why one is not an alarm's."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    return (
        isinstance(records, list)
        and bool(records)
        and isinstance(records[0], Mapping)
        and records[0].get("EventSource") == "aws:sns"
    )


def handle(event: Any, ctx: Context) -> Outcome:
    notice = parse_event(event)
    if isinstance(notice, Ignored):
        return Outcome("ignored", reason=notice.reason)
    rule = ctx.settings.alarm_rules.get(notice.alarm_name)
    if rule is None:
        # The topic is loginwatch's; an unrelated alarm wired to it is not a sign-in.
        return Outcome("ignored", reason=f"alarm {notice.alarm_name!r} is not loginwatch's")
    if rule in KEY_RULE_NAMES or rule == TAMPER_RULE:
        return _key_alarm(notice, rule, ctx)
    if notice.new_state == "OK" and notice.old_state == "ALARM":
        return _report_rest_of_episode(notice, rule, ctx)
    if notice.new_state != "ALARM":
        came_from = f" (from {notice.old_state})" if notice.old_state else ""
        return Outcome(
            "ignored",
            reason=f"alarm state is {notice.new_state}{came_from}, not ALARM or ALARM → OK",
        )
    test_id = find_test_id(notice.state_reason)
    if test_id is not None:
        return _post_test(notice, test_id, ctx)

    # Read the secret first: a missing webhook should fail before any log query.
    ctx.webhook_url()
    window = alarm_window(notice, ctx.settings.lookback_minutes)
    all_sign_ins = _sign_ins(ctx, window)
    alerts, bursts = _evaluate(all_sign_ins, all_sign_ins, rule, ctx)
    if alerts or bursts:
        late = ctx.late_note(notice.state_change_time)
        return _post_unreported(ctx, notice, alerts, bursts, already_firing=False, late=late)
    quiet = _why_quiet(rule, all_sign_ins, ctx.allowlist)
    if quiet is not None:
        # The filter pattern over-counts by design (an approximate allowlist, the CIS
        # patterns): the exact check is the final word, so nobody is paged for nothing.
        return Outcome(quiet[0], reason=quiet[1])
    return _post_empty_window(notice, rule, window, ctx)


def _post_empty_window(
    notice: AlarmNotification, rule: str, window: AlarmWindow, ctx: Context
) -> Outcome:
    """Delivery lag or a hand-set alarm state: say so rather than stay silent."""
    rule_of = ctx.rules.get(rule)
    severity = rule_of.severity if rule_of else "low"
    status = None
    targets = ctx.routes.targets((rule,), severity, notice.account_id)
    for left, destination in zip(range(len(targets), 0, -1), targets, strict=True):
        payload = build_empty_window_message(
            account_id=notice.account_id,
            alarm_name=notice.alarm_name,
            window=window,
            region=ctx.settings.region,
            log_group=ctx.settings.trail_log_group,
            rule=rule,
            mention=destination.mention,
        )
        status = ctx.post(destination, payload, share=left)
    return Outcome(
        "posted-empty-window",
        reason=f"nothing for rule {rule} in the alarm window",
        slack_status=status,
    )


def _key_alarm(notice: AlarmNotification, rule: str, ctx: Context) -> Outcome:
    """An access-key or tamper rule's alarm: the calls (quarantines, changes) of its
    window, through the fast path's step. ALARM → OK reads the whole episode: what was
    counted or posted is skipped."""
    lookback = ctx.settings.lookback_minutes
    episode = notice.new_state == "OK" and notice.old_state == "ALARM"
    if episode:
        start = find_episode_start(ctx.client("cloudwatch"), notice, lookback)
        window = episode_window(notice, start.time, lookback)
    elif notice.new_state != "ALARM":
        return Outcome("ignored", reason=f"alarm state is {notice.new_state}, not ALARM")
    else:
        test_id = find_test_id(notice.state_reason)
        if test_id is not None:
            return _post_test(notice, test_id, ctx)
        ctx.webhook_url()  # a missing webhook fails before any log query
        window = alarm_window(notice, lookback)
    logs, group = ctx.client("logs"), ctx.settings.trail_log_group
    via = f"alarm {notice.alarm_name}"
    if rule == api_call.RULE:
        # The backstop's own filter (calls from outside the allowlist) when setup wrote
        # it into settings.json; else every call signed with a user's key.
        pattern = ctx.settings.key_call_filter or KEY_CALL_FILTER
        calls = api_calls_from_log_events(fetch_log_events(logs, group, window, pattern=pattern))
        if calls:
            return api_call.report_calls(calls, ctx, via=via, post_uncounted=True)
    elif rule == TAMPER_RULE:
        own = tamper_path.own_names(ctx)
        # Both filters, whichever alarm fired: a change counted by one is as much a change.
        found = [
            log_event
            for pattern in log_filters(own)
            for log_event in fetch_log_events(logs, group, window, pattern=pattern)
        ]
        changes = tamper_events_from_log_events(found, own)
        if changes:
            return tamper_path.report_changes(changes, ctx, via=via, post_uncounted=True)
        if found and not episode:
            # The filters over-count (CreateTrail, StartLogging, another group's filter):
            # the exact check is the final word, so nobody is paged for nothing.
            return Outcome(
                "ignored",
                reason=f"{len(found)} log event(s) in the window, none a change that can "
                "switch loginwatch off",
            )
    else:
        found = fetch_log_events(logs, group, window, pattern=QUARANTINE_FILTER)
        quarantined = quarantines_from_log_events(found)
        if quarantined:
            return key_exposed.report_exposures(quarantined, ctx, via=via)
    if episode:
        return Outcome("ignored", reason=f"alarm back to OK; nothing further for {rule}")
    return _post_empty_window(notice, rule, window, ctx)


def _sign_ins(ctx: Context, window: AlarmWindow) -> list[SignIn]:
    """Every console sign-in the trail's log group holds for the window."""
    logs = ctx.client("logs")
    return sign_ins_from_log_events(fetch_log_events(logs, ctx.settings.trail_log_group, window))


def _post_test(notice: AlarmNotification, test_id: str, ctx: Context) -> Outcome:
    def message(destination: Destination, rule: Rule | None) -> Payload:
        return build_test_message(
            test_id=test_id,
            account_id=notice.account_id,
            alarm_name=notice.alarm_name,
            destination=destination.name,
            rule=rule.name if rule else None,
        )

    ctx.progress.test_id = test_id
    tested = find_test_rule(notice.state_reason)
    status, _ = post_test(ctx.routes, ctx.rules, tested, ctx.post, message)
    return Outcome("test-posted", test_id=test_id, slack_status=status)


def _evaluate(
    candidates: list[SignIn], everything: list[SignIn], alarm_rule: str, ctx: Context
) -> tuple[list[Alert], list[Burst]]:
    """Every rule over the sign-ins of a window: the alerts among ``candidates`` (newest
    first, one per eventID) and the bursts of failures among ``everything``."""
    rules, allowlist = ctx.rules, ctx.allowlist
    bursts = find_bursts(everything, rules.failures) if rules.failures else []
    in_bursts = {event_id for b in bursts for event_id in b.event_ids}
    outside = rules.get("outside_allowlist")
    alerts: list[Alert] = []
    for sign_in in unique_newest_first(candidates):
        alert = rules.alert(sign_in, allowlist, bursts)
        # The allowlist alarm's digest lists failures from outside too, as context.
        if (
            alert is None
            and outside is not None
            and alarm_rule == outside.name
            and not sign_in.success
            and sign_in.event_id not in in_bursts
            and not allowlist.contains(sign_in.source_ip)
        ):
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


def _report_rest_of_episode(notice: AlarmNotification, rule: str, ctx: Context) -> Outcome:
    """ALARM → OK: post the sign-ins the rules alert for that arrived while the alarm was
    already in ALARM, if there were any.

    A test-alert episode is handled like any other: its ALARM-time run posted the
    test message without reading the logs, and real sign-ins may have come meanwhile.
    The test id is deliberately not logged here: `loginwatch test-alert` looks for
    its id in the notifier's log lines and takes the newest as the delivery result.
    """
    lookback = ctx.settings.lookback_minutes
    start = find_episode_start(ctx.client("cloudwatch"), notice, lookback)
    window = episode_window(notice, start.time, lookback)
    all_sign_ins = _sign_ins(ctx, window)
    # The ALARM-time run queried the logs right at the episode start, so whatever was
    # ingested by then was already reported (or rightly suppressed). Its query ran a few
    # seconds after the start, so an event ingested in between is reported twice: a
    # duplicate is better than a miss. A test's ALARM-time run did not read the logs at
    # all, so nothing in its window has been seen. Bursts are counted over the whole
    # episode: their claims tell what was reported.
    unseen = all_sign_ins if start.test_alert else first_ingested_after(all_sign_ins, start.time)
    alerts, bursts = _evaluate(unseen, all_sign_ins, rule, ctx)
    if not alerts and not bursts:
        what = RULE_PHRASES["outside_allowlist"] if rule == "outside_allowlist" else f"for {rule}"
        return Outcome(
            "ignored", reason=f"alarm back to OK; no further sign-ins {what} ({start.note})"
        )
    late = ctx.late_note(notice.state_change_time)
    outcome = _post_unreported(ctx, notice, alerts, bursts, already_firing=True, late=late)
    if outcome.outcome == "posted-during-alarm":
        return Outcome(outcome.outcome, outcome.events, None, start.note, outcome.slack_status)
    return outcome


def _post_unreported(
    ctx: Context,
    notice: AlarmNotification,
    alerts: list[Alert],
    bursts: list[Burst],
    *,
    already_firing: bool,
    late: str | None,
) -> Outcome:
    """Claim, post what no other run reported (per destination), confirm or release.

    A window whose successful sign-ins were all reported already (by the fast
    path, or an earlier delivery of this alarm) posts nothing: the failures left
    are context, not an alert, so their claims are released for a later message.
    """
    names = ctx.account_names(
        {a.sign_in.account_id for a in alerts} | {b.account_id for b in bursts}
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

    sent = send_sign_ins(
        alerts,
        bursts,
        ctx,
        alert_payload=alert_payload,
        via=f"alarm {notice.alarm_name}",
        late=late,
        account_names=names,
    )
    if sent.messages or not sent.failed:
        ctx.progress.events = sent.events
    sent.raise_if_incomplete()
    return _outcome(sent, alerts, bursts, ctx, already_firing)


def _outcome(
    sent: Sent, alerts: list[Alert], bursts: list[Burst], ctx: Context, already_firing: bool
) -> Outcome:
    reason = "; ".join(sent.notes)[:_REASON_LIMIT] if sent.notes else None
    if sent.messages:
        outcome = "posted-during-alarm" if already_firing else "posted"
        return Outcome(outcome, sent.events, reason=reason, slack_status=sent.slack_status)
    said = [f"{sent.already} sign-in(s) in the window were reported already"] if alerts else []
    if bursts:
        said.append(f"{len(bursts)} burst(s) of failed sign-ins were reported already")
    if sent.absorbed:
        said.append(f"{sent.absorbed} failure(s) joined a burst reported earlier")
    return Outcome(
        "already-reported", sent.events, reason="; ".join(said), slack_status=sent.slack_status
    )
