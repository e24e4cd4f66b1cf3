"""An access key used from outside the allowlist: one message per key and address.

EventBridge forwards API calls (``AWS API Call via CloudTrail``, an ``aws.*`` source:
PutEvents cannot fake one) whose source address is outside the allowlist as the event
pattern can say it (``cidr``, which is not exact: an IPv6 range may match an IPv4
address). The exact decision is made here (api_calls.out_of_scope), then the call is
counted in its key's window (key_windows.py):

- the window's first call is posted at once, claimed by its eventID per destination
  (``keycall#<eventID>``); then the window's follow-up is scheduled: a message on the
  retry queue, delayed until the window and its grace have ended (SQS allows 15 min).
  It is scheduled again by every later delivery of the first call (the follow-up is
  claimed per destination: ``keyfollow#<window>``), and a run that posted but could
  not schedule raises, so Lambda's retry schedules it;
- every further call of the same account, key and address within 15 minutes of the
  first is counted, not posted; the follow-up (paths/key_follow_up.py) tells them.

A call the claims table cannot count (throttled, say) is never posted on its own by
the fast path: the run raises after posting the rest, and Lambda retries it. The
alarm path, which reads many calls at once, posts at most one message per key and
address for such calls, saying how many could not be counted.

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


def report_calls(
    calls: Sequence[ApiCall], ctx: Context, *, via: str, post_uncounted: bool = False
) -> Outcome:
    """Decide, count and post: each window's first call posted, the rest counted.
    ``post_uncounted`` (the alarm path): calls the table could not count are posted,
    one message per key and address; otherwise the run raises for a retry."""
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
    openers: list[tuple[ApiCall, Counted]] = []
    uncounted: dict[str, list[ApiCall]] = {}
    not_counted: ClaimError | None = None
    counted = repeats = left = 0
    for call in scoped:
        if len(scoped) > 1 and ctx.remaining_seconds() < _RESERVE_SECONDS:
            left += 1
            continue
        try:
            result = windows.count(call)
        except ClaimError as error:
            not_counted = not_counted or error
            uncounted.setdefault(call.window_key(), []).append(call)
            continue
        if result.opener:
            openers.append((call, result))
        elif result.state == "repeat":
            repeats += 1
        else:
            counted += 1
    fresh = [(c, r) for c, r in openers if not _posted_already(c, r, rule, ctx)]
    repeats += len(openers) - len(fresh)
    notices = [_notice(call, rule, ctx, via) for call, _ in fresh]
    if uncounted and post_uncounted:
        notices += [
            _notice(group[0], rule, ctx, via, uncounted=group) for group in uncounted.values()
        ]
    notes = _notes(counted, repeats, left, quiet, sum(map(len, uncounted.values())))
    sent = deliver(notices, ctx) if notices else None
    # After posting: the follow-up of every window whose first call this run handled.
    unscheduled = _schedule_all(ctx, openers)
    ctx.progress.events = len(scoped)
    if sent is not None:
        sent.raise_if_incomplete()
    if unscheduled is not None:
        raise unscheduled
    if not_counted is not None and not post_uncounted:
        raise ClaimError(
            f"{sum(map(len, uncounted.values()))} call(s) could not be counted "
            f"(retried, never posted one by one): {not_counted}"
        )
    if sent is None:
        return Outcome(
            "counted" if counted else "already-reported", len(scoped), reason=notes or None
        )
    said = "; ".join(filter(None, [*sent.notes, notes])) or None
    if not sent.messages:
        return Outcome("already-reported", len(scoped), reason=said)
    return Outcome("posted", len(scoped), reason=said, slack_status=sent.slack_status)


def _schedule_all(ctx: Context, openers: Sequence[tuple[ApiCall, Counted]]) -> Exception | None:
    """Schedule each window's follow-up; the first error, if any (raised after posting)."""
    failed: Exception | None = None
    for call, result in openers:
        try:
            schedule_follow_up(ctx, result.window, int(result.opened.timestamp()), call)
        except Exception as error:
            failed = failed or error
    return failed


def _posted_already(call: ApiCall, result: Counted, rule: Rule, ctx: Context) -> bool:
    """A repeated delivery of a window's first call, whose message every destination has:
    nothing to post (its follow-up is scheduled again all the same)."""
    if result.state != "opened" or not call.event_id:
        return False
    targets = ctx.routes.targets((RULE,), rule.severity, call.account_id)
    try:
        return ctx.claims().reported(d.claim_key(FIRST_CALL + call.event_id) for d in targets)
    except ClaimError:
        return False  # the claims then decide, or it is posted again: a repeat beats a miss


def _notes(
    counted: int, repeats: int, left: int, quiet: Mapping[str, int], uncounted: int = 0
) -> str:
    said = []
    if uncounted:
        said.append(f"{uncounted} call(s) the claims table could not count")
    if counted:
        said.append(f"{counted} call(s) counted for their window's follow-up")
    if repeats:
        said.append(f"{repeats} call(s) counted already")
    if left:
        said.append(f"{left} call(s) left for the alarm's next reading (out of time)")
    said.extend(f"{n} call(s) not in scope: {why}" for why, n in quiet.items())
    return "; ".join(said)


def _notice(
    call: ApiCall, rule: Rule, ctx: Context, via: str, *, uncounted: Sequence[ApiCall] = ()
) -> Notice:
    """The first call's message; ``uncounted``: the calls of this key and address the
    table could not count (``call`` first), said in the message instead of a follow-up."""
    names = ctx.account_names([call.account_id] if call.account_id else [])
    late = ctx.late_note(call.event_time)
    regions = sorted({c.region or "?" for c in uncounted})
    not_counted = (
        f"The claims table could not count calls just now: {len(uncounted)} call(s) with this "
        f"key from this address ({', '.join(regions[:10])}) are in no follow-up."
        if uncounted
        else None
    )

    def compose(destination: Destination) -> Payload:
        return build_key_call_message(
            call,
            rule=rule,
            window_minutes=WINDOW_SECONDS // 60,
            via=via,
            late=late,
            mention=destination.mention,
            account_names=names,
            not_counted=not_counted,
        )

    keys = (FIRST_CALL + call.event_id,) if call.event_id else ()
    return Notice(keys, (rule.name,), rule.severity, call.account_id, compose)


def follow_up_body(window: str, opened: int, call: ApiCall | None = None) -> dict[str, Any]:
    """The follow-up's message: the window, and (should the window be gone by the time
    it is taken) what its first message said of the key and who used it."""
    body: dict[str, Any] = {FOLLOW_UP_MARKER: window, "opened": opened}
    if call is not None:
        body.update(key=call.masked_key, who=call.who[:128], identity=call.identity_type[:32])
    return body


def follow_up_due(opened: int) -> int:
    """When a window's follow-up may be taken: the window has ended, and its grace."""
    return opened + WINDOW_SECONDS + FOLLOW_UP_GRACE_SECONDS


def schedule_follow_up(
    ctx: Context, window: str, opened: int, call: ApiCall | Mapping[str, Any] | None = None
) -> None:
    """The follow-up of ``window`` on the retry queue, delayed until it is due.
    Sent each time the window's first call is handled (at least once); the follow-up is
    claimed per destination, so it is posted once however many times it arrives."""
    delay = math.ceil(follow_up_due(opened) - ctx.now().timestamp())
    sqs = ctx.client("sqs")
    sqs.send_message(
        QueueUrl=queue_url(sqs, ctx.settings.retry_queue),
        MessageBody=json.dumps(
            follow_up_body(window, opened, call)
            if call is None or isinstance(call, ApiCall)
            else dict(call)  # a follow-up early: sent again as it came
        ),
        DelaySeconds=min(max(delay, 0), SQS_MAX_DELAY_SECONDS),
    )
