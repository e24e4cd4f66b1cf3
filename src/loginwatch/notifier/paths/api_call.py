"""An access key used from outside the allowlist: one message per key and address.

EventBridge forwards API calls (``AWS API Call via CloudTrail``, an ``aws.*`` source:
PutEvents cannot fake one) whose source address is outside the allowlist as the event
pattern can say it (``cidr``, which is not exact: an IPv6 range may match an IPv4
address). The exact decision is made here (api_calls.out_of_scope), then the call is
counted in its key's window (key_windows.py):

- the window's first call is posted at once, claimed by its eventID per destination
  (``keycall#<eventID>``), and the window's follow-up is scheduled: a message on the
  retry queue, delayed until the window ends (SQS allows 15 min, the window's length);
- every further call of the same account, key and address within 15 minutes of the
  first is counted, not posted; the follow-up (paths/key_follow_up.py) tells them.

The alarm path's backstop gives the calls it reads in the trail's log group to
``report_calls`` too: a call already counted is skipped, one the fast path missed
is counted (or opens its window and is posted).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..api_calls import API_CALL_DETAIL_TYPE, ApiCall, out_of_scope, parse_api_call
from ..calls import RETRY_QUEUE, Call
from ..claims import ClaimError
from ..context import Context, Outcome, queue_url
from ..dispatch import Notice, Payload, deliver
from ..key_windows import WINDOW_SECONDS, Counted, KeyWindows
from ..protocol import FOLLOW_UP_MARKER
from ..routing import Destination
from ..rules import Rule
from ..slack_message import build_key_call_message

# The follow-up is scheduled on the retry queue (its event source mapping brings it back).
CALLS = (
    Call("sqs", "GetQueueUrl", RETRY_QUEUE),
    Call("sqs", "SendMessage", RETRY_QUEUE),
)

RULE = "access_key_outside_allowlist"
FIRST_CALL = "keycall#"
# The follow-up runs this long after the window's end: a call made just before the end
# has time to reach the fast path and be counted.
FOLLOW_UP_GRACE_SECONDS = 60
SQS_MAX_DELAY_SECONDS = 900
# The alarm path stops counting with this much of the run left, to post what it found:
# the ALARM → OK run reads the episode again, and counted calls are skipped then.
_RESERVE_SECONDS = 8.0


def recognises(event: Any) -> bool:
    """A real API call: EventBridge reserves ``aws.*`` sources, so a test event (or any
    event of another source) is never taken for one."""
    return (
        isinstance(event, Mapping)
        and event.get("detail-type") == API_CALL_DETAIL_TYPE
        and isinstance(event.get("source"), str)
        and event["source"].startswith("aws.")
        and "detail" in event
    )


def handle(event: Mapping[str, Any], ctx: Context) -> Outcome:
    if ctx.rules.get(RULE) is None:
        return Outcome("ignored", reason=f"an API call ({RULE} is off)")
    detail = event.get("detail")
    call = parse_api_call(detail) if isinstance(detail, Mapping) else None
    if call is None:
        return Outcome("ignored", reason="EventBridge event without a CloudTrail API call")
    return report_calls([call], ctx, via="fast path (EventBridge)")


def report_calls(calls: Sequence[ApiCall], ctx: Context, *, via: str) -> Outcome:
    """Decide, count and post: each window's first call posted, the rest counted."""
    rule = ctx.rules.get(RULE)
    if rule is None:
        return Outcome("ignored", reason=f"{RULE} is off")
    scoped: list[ApiCall] = []
    quiet: dict[str, int] = {}
    for call in calls:
        why = out_of_scope(call, ctx.allowlist, rule.exceptions)
        if why is None:
            scoped.append(call)
        else:
            quiet[why] = quiet.get(why, 0) + 1
    if not scoped:
        reason = "; ".join(
            f"{n} call(s): {why}" if len(calls) > 1 else why for why, n in quiet.items()
        )
        allowed = set(quiet) == {"from the allowlist"}
        return Outcome(
            "ignored-allowed" if allowed else "ignored", len(calls), reason=reason or None
        )
    windows = KeyWindows(ctx.client("dynamodb"), ctx.settings.claims_table)
    firsts: list[tuple[ApiCall, Counted | None]] = []
    counted = repeats = left = 0
    for call in scoped:
        if len(scoped) > 1 and ctx.remaining_seconds() < _RESERVE_SECONDS:
            left += 1
            continue
        try:
            result: Counted | None = windows.count(call)
        except ClaimError:
            result = None  # no table to count in: post it (a repeat beats a miss)
        if result is None or result.opener:
            firsts.append((call, result))
        elif result.state == "repeat":
            repeats += 1
        else:
            counted += 1
    fresh = [(c, r) for c, r in firsts if not _posted_already(c, r, rule, ctx)]
    repeats += len(firsts) - len(fresh)
    firsts = fresh
    for _, result in firsts:
        if result is not None:
            schedule_follow_up(ctx, result.window, int(result.opened.timestamp()))
    notes = _notes(counted, repeats, left, quiet)
    if not firsts:
        return Outcome(
            "counted" if counted else "already-reported", len(scoped), reason=notes or None
        )
    sent = deliver([_notice(call, rule, ctx, via) for call, _ in firsts], ctx)
    sent.raise_if_incomplete()
    ctx.progress.events = len(scoped)
    said = "; ".join(filter(None, [*sent.notes, notes])) or None
    if not sent.messages:
        return Outcome("already-reported", len(scoped), reason=said)
    return Outcome("posted", len(scoped), reason=said, slack_status=sent.slack_status)


def _posted_already(call: ApiCall, result: Counted | None, rule: Rule, ctx: Context) -> bool:
    """A repeated delivery of a window's first call, whose message every destination has:
    nothing to post, nothing to schedule (its first delivery scheduled the follow-up)."""
    if result is None or result.state != "opened" or not call.event_id:
        return False
    targets = ctx.routes.targets((RULE,), rule.severity, call.account_id)
    return ctx.claims().reported(d.claim_key(FIRST_CALL + call.event_id) for d in targets)


def _notes(counted: int, repeats: int, left: int, quiet: Mapping[str, int]) -> str:
    said = []
    if counted:
        said.append(f"{counted} call(s) counted for their window's follow-up")
    if repeats:
        said.append(f"{repeats} call(s) counted already")
    if left:
        said.append(f"{left} call(s) left for the alarm's next reading (out of time)")
    said.extend(f"{n} call(s) not in scope: {why}" for why, n in quiet.items())
    return "; ".join(said)


def _notice(call: ApiCall, rule: Rule, ctx: Context, via: str) -> Notice:
    names = ctx.account_names([call.account_id] if call.account_id else [])
    late = ctx.late_note(call.event_time)

    def compose(destination: Destination) -> Payload:
        return build_key_call_message(
            call,
            rule=rule,
            window_minutes=WINDOW_SECONDS // 60,
            via=via,
            late=late,
            mention=destination.mention,
            account_names=names,
        )

    keys = (FIRST_CALL + call.event_id,) if call.event_id else ()
    return Notice(keys, (rule.name,), rule.severity, call.account_id, compose)


def follow_up_body(window: str, opened: int) -> dict[str, Any]:
    return {FOLLOW_UP_MARKER: window, "opened": opened}


def schedule_follow_up(ctx: Context, window: str, opened: int) -> None:
    """The follow-up of ``window`` on the retry queue, delayed until the window has ended.
    Sent each time the window's first call is handled (at least once); the follow-up is
    claimed per destination, so it is posted once however many times it arrives."""
    due = opened + WINDOW_SECONDS + FOLLOW_UP_GRACE_SECONDS
    delay = math.ceil(due - ctx.now().timestamp())
    sqs = ctx.client("sqs")
    sqs.send_message(
        QueueUrl=queue_url(sqs, ctx.settings.retry_queue),
        MessageBody=json.dumps(follow_up_body(window, opened)),
        DelaySeconds=min(max(delay, 0), SQS_MAX_DELAY_SECONDS),
    )
