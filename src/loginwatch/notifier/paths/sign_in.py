"""The fast path: one EventBridge sign-in event → (maybe) one Slack message, in seconds.

The CloudTrail record is the event's ``detail``. The same rules as the alarm
path's decide (rules.py); a sign-in that matches one is claimed (so the alarm
path, minutes later, does not list it again) and posted to the destinations its
severity and rules select. A failed sign-in is added to its account's failure
window in the claims table; when the window holds a burst, the burst is posted
once (dispatch.py).

Bursts: a credential-stuffing run can bring a hundred sign-ins a minute. Per
``BURST_WINDOW_SECONDS`` window of sign-in time, the first ``POSTED_PER_WINDOW``
sign-ins not yet reported are posted one by one, the next one gets a single
"this is a burst" notice (claimed once per window and destination), and the rest
are left unclaimed: the alarm path lists them all in one digest a few minutes
later. So the channel gets a bounded number of messages, every sign-in is counted
in one of them, and none is dropped. A sign-in the alarm path reported already, or
a repeated delivery of one the window holds, is never counted again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ..claims import ClaimError, Claims, Placement
from ..context import Context, Outcome
from ..dispatch import Notice, Payload, Sent, deliver, send_sign_ins
from ..events import SignIn, parse_sign_in
from ..protocol import TEST_EVENT_SOURCE
from ..routing import Destination
from ..rules import Alert, Burst, Rule, find_bursts
from ..slack_message import build_alert_message, build_burst_message

BURST_WINDOW_SECONDS = 300
POSTED_PER_WINDOW = 3
FAILURE_WINDOW = "failed-window#"
BURST_NOTICE = "burst-notice#"
_FIELD_LIMIT = 64  # a failure window member holds IP and user name: keep it small


def recognises(event: Any) -> bool:
    """An EventBridge event (a sign-in, or anything else the rules forward), not a test."""
    return (
        isinstance(event, Mapping)
        and "detail-type" in event
        and "detail" in event
        and event.get("source") != TEST_EVENT_SOURCE
    )


def handle(event: Mapping[str, Any], ctx: Context) -> Outcome:
    """Decide about one EventBridge event and post what it deserves."""
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        return Outcome("ignored", reason="EventBridge event without a detail object")
    sign_in = parse_sign_in(detail)
    if sign_in is None:
        return Outcome("ignored", reason="not a console sign-in")
    moment = ctx.now()
    late = ctx.late_note(sign_in.event_time)
    table = ctx.claims()
    failed_rule = ctx.rules.failures
    bursts: list[Burst] = []
    if failed_rule is not None:
        try:
            bursts = _failure_bursts(sign_in, failed_rule, table)
        except ClaimError:
            pass  # no window to count in: the alarm path counts from the logs
        except _WindowFull:
            return Outcome("burst-continues", 1, reason="its failure window is full")
    if not sign_in.success:
        return _report_failure(sign_in, bursts, ctx, late)
    alert = ctx.rules.alert(sign_in, ctx.allowlist, bursts)
    if alert is None:
        if ctx.allowlist.contains(sign_in.source_ip):
            return Outcome("ignored-allowed", reason="sign-in from the allowlist, no rule matched")
        return Outcome("ignored", reason="sign-in matched no enabled rule")
    return _report(alert, ctx, table, moment, late)


class _WindowFull(Exception):
    """A failure window holds BURST_CAP failures: its burst was reported long ago."""


def _member(sign_in: SignIn) -> str:
    """One failure in its window: time, id, IP and name (what a burst report shows)."""
    ip, name = sign_in.source_ip[:_FIELD_LIMIT], sign_in.user_name[:_FIELD_LIMIT]
    who = "root" if sign_in.is_root else name
    return "|".join((str(int(sign_in.event_time.timestamp())), sign_in.event_id, ip, who))


def _from_member(member: str, account_id: str) -> SignIn | None:
    parts = member.split("|", 3)
    if len(parts) != 4 or not parts[0].isdigit():
        return None
    seconds, event_id, ip, who = parts
    return SignIn(
        event_id=event_id,
        event_time=datetime.fromtimestamp(int(seconds), tz=UTC),
        identity_type="Root" if who == "root" else "IAMUser",
        user_name="" if who == "root" else who,
        role_name="",
        arn="",
        source_ip=ip,
        mfa_used="Unknown",
        success=False,
        error_message="",
        region="",
        user_agent="",
        account_id=account_id,
    )


def _failure_bursts(sign_in: SignIn, rule: Rule, table: Claims) -> list[Burst]:
    """The bursts around this sign-in, from its account's failure windows (the window of
    its time and the one before, so a burst across their boundary is seen whole).
    A failure is added to its window; a success only reads them."""
    seconds = rule.minutes * 60
    window = int(sign_in.event_time.timestamp()) // seconds
    keys = [f"{FAILURE_WINDOW}{sign_in.account_id}#{w}" for w in (window - 1, window)]
    if sign_in.success:
        members = [m for key in keys for m in table.window_members(key)]
    else:
        added = table.add_to_window(keys[1], seconds, _member(sign_in))
        if added is None:
            raise _WindowFull
        members = table.window_members(keys[0]) + added
    failures = [f for m in members if (f := _from_member(m, sign_in.account_id))]
    return find_bursts([*failures, sign_in] if sign_in.success else failures, rule)


def _report_failure(
    sign_in: SignIn, bursts: list[Burst], ctx: Context, late: str | None
) -> Outcome:
    if ctx.rules.failures is None:
        return Outcome("ignored", reason="failed sign-in (failed_sign_ins is off)")
    mine = [b for b in bursts if sign_in.event_id in b.event_ids]
    if not mine:
        return Outcome("ignored", reason="failed sign-in, below the failed_sign_ins threshold")
    sent = _send([], mine, ctx, late, fast_path_seconds=None)
    sent.raise_if_incomplete()
    if sent.messages:
        return Outcome(
            "posted-burst", sent.events, reason=_notes(sent), slack_status=sent.slack_status
        )
    return Outcome("burst-continues", 1, reason="a burst reported already goes on")


def _report(alert: Alert, ctx: Context, table: Claims, now: datetime, late: str | None) -> Outcome:
    sign_in = alert.sign_in
    targets = ctx.routes.targets(alert.rule_names, alert.severity, sign_in.account_id)
    if sign_in.event_id and table.reported(d.claim_key(sign_in.event_id) for d in targets):
        # Reported already (by the alarm path, or an earlier delivery): not counted again.
        return Outcome("already-reported", 1, reason=f"{sign_in.event_id} was reported already")
    window = int(sign_in.event_time.timestamp()) // BURST_WINDOW_SECONDS
    try:
        # Counted by event id, so a retry or a duplicate delivery is not counted twice.
        placed = table.place_in_window(
            f"burst#{sign_in.account_id}#{window}", BURST_WINDOW_SECONDS, sign_in.event_id
        )
    except ClaimError:
        placed = Placement(1, repeated=False)  # cannot count: post it (a repeat beats a miss)
    position = placed.count if placed is not None else POSTED_PER_WINDOW + 2
    if alert.severity == "critical" or alert.rule_names == ("failed_sign_ins",):
        # Never left to a digest: a critical one must not wait behind colleagues' sign-ins,
        # and a success after a burst of failures is in no alarm's window.
        position = 1
    if position <= POSTED_PER_WINDOW:
        seconds = max(0.0, (now - sign_in.event_time).total_seconds())
        sent = _send([alert], [], ctx, late, fast_path_seconds=seconds)
        sent.raise_if_incomplete()
        if not sent.messages:
            return Outcome("already-reported", 1, reason=f"{sign_in.event_id} was reported already")
        return Outcome("posted", 1, reason=_notes(sent), slack_status=sent.slack_status)
    if position > POSTED_PER_WINDOW + 1 or (placed is not None and placed.repeated):
        # A repeated delivery in a burst window (its notice, if any, went out when it first
        # came) is left to the digest like the rest: the digest lists what nobody posted.
        return Outcome("deferred-to-digest", 1, reason=f"burst: sign-in {position} of its window")
    return _burst_notice(alert, ctx, f"{sign_in.account_id}#{window}", position)


def _burst_notice(alert: Alert, ctx: Context, window: str, count: int) -> Outcome:
    """The one "this is a burst" message of a window, claimed per destination."""
    account = alert.sign_in.account_id

    def compose(destination: Destination) -> Payload:
        return build_burst_message(
            account_id=account,
            count=count,
            window_minutes=BURST_WINDOW_SECONDS // 60,
            mention=destination.mention,
        )

    notice = Notice((BURST_NOTICE + window,), alert.rule_names, alert.severity, account, compose)
    sent = deliver([notice], ctx)
    sent.raise_if_incomplete()
    if not sent.messages:
        return Outcome("deferred-to-digest", 1, reason="the burst notice went out already")
    return Outcome(
        "burst-notice",
        1,
        reason="further sign-ins go to the alarm digest",
        slack_status=sent.slack_status,
    )


def _send(
    alerts: list[Alert],
    bursts: list[Burst],
    ctx: Context,
    late: str | None,
    *,
    fast_path_seconds: float | None,
) -> Sent:
    names = ctx.account_names(
        {a.sign_in.account_id for a in alerts} | {b.account_id for b in bursts}
    )

    def alert_payload(destination: Destination, fresh: Sequence[Alert], already: int) -> Payload:
        return build_alert_message(
            fresh,
            account_id=fresh[0].sign_in.account_id,
            alarm_name="",
            fast_path_seconds=fast_path_seconds,
            late=late,
            mention=destination.mention,
            account_names=names,
        )

    return send_sign_ins(
        alerts,
        bursts,
        ctx,
        alert_payload=alert_payload,
        via="fast path (EventBridge)",
        late=late,
        account_names=names,
    )


def _notes(sent: Sent) -> str | None:
    return "; ".join(sent.notes) or None
