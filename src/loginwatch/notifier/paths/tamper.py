"""A change that can switch loginwatch off: posted at once, critical; loginwatch's own
setup and teardown: posted as low-severity maintenance, when a run starts and after it.

EventBridge forwards the watched calls (``AWS API Call via CloudTrail``, an ``aws.*``
source, from every region; IAM's from us-east-1) by the ``tamper`` rule's patterns
(loginwatch/tamper_patterns.py). ``recognises`` takes every watched call by service and
name alone; ``handle`` decides with loginwatch's names (notifier/tamper.parse_tamper):

- not loginwatch's own: one message per call, at ``tamper``'s severity (critical by
  default), claimed per destination by its eventID (``tamper#<eventID>``), so a repeated
  delivery, the other rule's delivery of the same event or the alarm path's later
  reading never posts it twice;
- loginwatch's own (its user agent says ``setup`` or ``teardown``; a user agent can be
  forged, so these are shown, never hidden): counted per account, principal, command
  and source address in a window of the claims table (key_windows.KeyWindows under
  prefixes of its own). The run's first change opens the window and schedules the
  window's follow-up on the retry queue, delayed until the window and its grace have
  ended (paths/api_call.follow_up_due; one taken earlier waits again); the follow-up
  posts the one message ("setup by alice from 203.0.113.10 changed 12 resources").
  A run longer than the window (15 min, measured from its first change) opens a second
  window and so posts a second message, for its later changes.
  A run's first change is also posted at once, low severity ("setup by alice … is
  changing loginwatch's resources", claimed per window): a forged user agent must not
  keep a change quiet until a follow-up its author could stop by deleting the queue or
  replacing the function. Teardown removes the queue as it goes, so its follow-up tells
  the count only if the queue outlived the run.
  A change the claims table cannot count (throttled, say) is never posted on its own by
  the fast path: a setup makes dozens of changes, so that would flood the channel. The
  run raises after posting the rest, and Lambda retries it. The alarm path, which reads
  many changes at once, posts at most one message per run for such changes, saying how
  many could not be counted.

Organization mode: a member account's changes arrive forwarded by its own tamper rules
(stack_set.py) and, on the alarm path, from the organization trail. A change made by
the StackSet's execution role in that member (notifier/tamper.stack_set_execution) is
maintenance as above ("StackSet deployment by stacksets-exec-…", one run per member
account); every other change there is critical, naming the account. The function's
own account (its ARN) says which account is home.

A watched call may also be an access key used from outside the allowlist: whichever of
the two rules delivered the event, it comes here (the first path that recognises it), so
it is handed on to paths/api_call.py as well, which decides for its own rule.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..calls import RETRY_QUEUE, Call
from ..claims import ClaimError
from ..context import Context, Outcome, queue_url
from ..dispatch import Notice, Payload, Sent, deliver
from ..key_windows import Counted, KeyWindows
from ..protocol import FOLLOW_UP_MARKER
from ..routing import Destination
from ..rules import Rule
from ..slack_message import build_maintenance_message, build_tamper_message
from ..tamper import RULE, Own, TamperEvent, is_watched_call, parse_tamper
from . import api_call
from .api_call import follow_up_due
from .key_follow_up import follow_up_window

CALLS = (
    Call("sqs", "GetQueueUrl", RETRY_QUEUE),
    Call("sqs", "SendMessage", RETRY_QUEUE),
)

TAMPER = "tamper#"  # a critical message, per eventID
MAINTENANCE_STARTED = "maint#"  # teardown's first change, per window
MAINTENANCE_FOLLOW_UP = "maintfollow#"  # the run's one message, per window
# The alarm path's one message for a run's changes the table could not count, per run
# and first change.
MAINTENANCE_UNCOUNTED = "maintuncounted#"
# The maintenance windows' items in the claims table (see key_windows.py for the kinds).
POINTER, WINDOW, COUNTED = "maintuse#", "maintwin#", "maintcall#"
MAINTENANCE_SEVERITY = "low"
SQS_MAX_DELAY_SECONDS = 900
_FIRST_LIMIT = 300


def own_names(ctx: Context) -> Own:
    """loginwatch's names, and in organization mode its home account: a change recorded in
    another account is a member account's, where only the StackSet's execution is
    maintenance (settings.organization_home, written by setup)."""
    home = ctx.settings.organization_home
    return Own(
        ctx.settings.name, ctx.settings.trail_log_group, account=home, organization=bool(home)
    )


def recognises(event: Any) -> bool:
    """A watched API call (``aws.*`` source: never a test event), or the follow-up of a
    maintenance window (it shares the retry queue's follow-up marker with key windows)."""
    if not isinstance(event, Mapping):
        return False
    window = event.get(FOLLOW_UP_MARKER)
    if isinstance(window, str):
        return window.startswith(WINDOW)
    detail = event.get("detail")
    return api_call.recognises(event) and isinstance(detail, Mapping) and is_watched_call(detail)


def handle(event: Mapping[str, Any], ctx: Context) -> Outcome:
    if FOLLOW_UP_MARKER in event:
        return handle_follow_up(event, ctx)
    change = None
    if ctx.rules.get(RULE) is not None:
        change = parse_tamper(event["detail"], own_names(ctx))
    failed: Exception | None = None
    tampered = None
    try:
        tampered = report_changes([change], ctx, via="fast path (EventBridge)") if change else None
    except Exception as error:
        failed = error  # raised once the access-key rule has decided too
    keyed = api_call.handle(event, ctx)  # the access-key rule decides for itself
    if failed is not None:
        raise failed
    if tampered is None:
        why = f"{RULE} is off" if ctx.rules.get(RULE) is None else "not loginwatch's resource"
        reason = f"not a tamper event ({why}); access key: {keyed.reason or keyed.outcome}"
        return dataclasses.replace(keyed, reason=reason)
    if keyed.outcome.startswith("ignored"):
        return tampered
    said = "; ".join(filter(None, [tampered.reason, f"access key: {keyed.outcome}", keyed.reason]))
    return dataclasses.replace(
        tampered, reason=said, slack_status=tampered.slack_status or keyed.slack_status
    )


def report_changes(
    changes: Sequence[TamperEvent], ctx: Context, *, via: str, post_uncounted: bool = False
) -> Outcome:
    """Post the changes that are not loginwatch's own; count its own in their run's window.
    The alarm path's backstop gives the changes it reads in the trail's log group here
    too (notifier/tamper.tamper_events_from_log_events): what was posted is skipped.
    ``post_uncounted`` (the alarm path): own changes the table could not count are posted,
    one message per run; otherwise the run raises for a retry, after posting the rest."""
    rule = ctx.rules.get(RULE)
    if rule is None:
        return Outcome("ignored", reason=f"{RULE} is off")
    if not changes:
        return Outcome("ignored", reason="no change to loginwatch's resources")
    alarming = [c for c in changes if not c.maintenance]
    maintenance = [c for c in changes if c.maintenance]
    notices = [_tamper_notice(c, rule, ctx, via) for c in alarming]
    counted = 0
    openers: list[tuple[TamperEvent, Counted]] = []
    uncounted: dict[str, list[TamperEvent]] = {}
    not_counted: ClaimError | None = None
    for change in maintenance:
        try:
            result = _windows(ctx).count(_counted_call(change))
        except ClaimError as error:
            not_counted = not_counted or error
            uncounted.setdefault(_run_scope(_counted_call(change)), []).append(change)
            continue
        counted += 1
        if result.opener:
            openers.append((change, result))
            # Every run's first change at once: a forged user agent must never keep a
            # change quiet until a follow-up its author could stop (delete the queue,
            # replace the function); teardown removes the queue itself as it goes.
            notices.append(_maintenance_notice(change, rule, ctx, key=result.window))
    if uncounted and post_uncounted:
        notices += [_uncounted_notice(group, rule, ctx) for group in uncounted.values()]
    sent = deliver(notices, ctx) if notices else Sent()
    # After posting: the follow-up of every window whose first change this run handled.
    unscheduled = _schedule_all(ctx, openers)
    ctx.progress.events = len(changes)
    sent.raise_if_incomplete()
    if unscheduled is not None:
        raise unscheduled
    left = sum(map(len, uncounted.values()))
    if not_counted is not None and not post_uncounted:
        raise ClaimError(
            f"{left} change(s) by loginwatch's own setup/teardown could not be counted "
            f"(retried, never posted one by one): {not_counted}"
        )
    notes = list(sent.notes)
    if counted:
        notes.append(f"{counted} change(s) by loginwatch's own setup/teardown counted")
    if left:
        notes.append(f"{left} change(s) by loginwatch's own setup/teardown not counted")
    reason = "; ".join(notes) or None
    if sent.messages:
        return Outcome("posted", len(changes), reason=reason, slack_status=sent.slack_status)
    if counted and not alarming:
        return Outcome("maintenance-counted", len(changes), reason=reason)
    return Outcome("already-reported", len(changes), reason=reason)


def _tamper_notice(change: TamperEvent, rule: Rule, ctx: Context, via: str) -> Notice:
    names = ctx.account_names([change.account_id] if change.account_id else [])
    late = ctx.late_note(change.time)

    def compose(destination: Destination) -> Payload:
        return build_tamper_message(
            change, rule=rule, via=via, late=late, mention=destination.mention, account_names=names
        )

    keys = (TAMPER + change.event_id,) if change.event_id else ()
    return Notice(keys, (rule.name,), rule.severity, change.account_id, compose)


# ---------------------------------------------------------------- maintenance runs


def _run_scope(call: Any) -> str:
    """One run: account, principal (hashed: the table holds no ARN), command, address."""
    command = call.notable.split(" ", 1)[0]
    who = hashlib.sha256((call.arn or call.identity_type).encode("utf-8")).hexdigest()[:16]
    return f"{call.account_id}#{who}#{command}#{call.source_ip}"


def _windows(ctx: Context) -> KeyWindows:
    return KeyWindows(
        ctx.client("dynamodb"),
        ctx.settings.claims_table,
        pointer_prefix=POINTER,
        window_prefix=WINDOW,
        counted_prefix=COUNTED,
        scope=_run_scope,
    )


def _counted_call(change: TamperEvent) -> Any:
    """The change as a window lists it: the call's name, its resource in the ``notable``
    slot (led by the command, which the run's scope reads), the principal as shown, and
    whose run it is (``run_arn``: the StackSet's role, whatever its session)."""
    resource = change.resource_text
    return dataclasses.replace(
        change.call,
        event_name=change.name,
        notable=f"{change.command} {resource}",
        user_name=change.principal,
        arn=change.run_arn,
    )


def _schedule_all(ctx: Context, openers: Sequence[tuple[TamperEvent, Counted]]) -> Exception | None:
    """Schedule each window's follow-up (again, for a repeated first change: the follow-up
    is claimed, so it posts once); the first error, if any (raised after posting)."""
    failed: Exception | None = None
    for change, result in openers:
        first = f"{change.name} {change.resource_text}"[:_FIRST_LIMIT]
        try:
            schedule_follow_up(ctx, result.window, int(result.opened.timestamp()), change, first)
        except Exception as error:
            failed = failed or error
    return failed


def _uncounted_notice(group: Sequence[TamperEvent], rule: Rule, ctx: Context) -> Notice:
    """One message for a run's changes the table could not count (the alarm path)."""
    first = group[0]
    regions = sorted({c.call.region or "?" for c in group})
    note = (
        f"The claims table could not count changes just now: these {len(group)} change(s) "
        f"({', '.join(regions[:10])}) are in no run's message."
    )
    keys = (MAINTENANCE_UNCOUNTED + first.event_id,) if first.event_id else ()
    return _maintenance(group, rule, ctx, keys, not_counted=note)


def _maintenance_notice(change: TamperEvent, rule: Rule, ctx: Context, *, key: str) -> Notice:
    """A run's first change, posted at once."""
    keys = (MAINTENANCE_STARTED + key,) if key else ()
    return _maintenance([change], rule, ctx, keys, started_only=True)


def _maintenance(
    group: Sequence[TamperEvent],
    rule: Rule,
    ctx: Context,
    keys: tuple[str, ...],
    *,
    started_only: bool = False,
    not_counted: str | None = None,
) -> Notice:
    """A low-severity maintenance message about ``group`` (changes of one run)."""
    first = group[0]
    names = ctx.account_names([first.account_id] if first.account_id else [])

    def compose(destination: Destination) -> Payload:
        return build_maintenance_message(
            command=first.command or "?",
            who=first.principal,
            source_ip=first.call.source_ip,
            user_agent=first.call.user_agent,
            account_id=first.account_id,
            started=first.time,
            changes=len(group),
            calls=[f"{c.name} {c.resource_text}" for c in group],
            rule=rule,
            started_only=started_only,
            mention=destination.mention,
            account_names=names,
            not_counted=not_counted,
        )

    return Notice(keys, (rule.name,), MAINTENANCE_SEVERITY, first.account_id, compose)


def follow_up_body(window: str, opened: int, change: TamperEvent, first: str) -> dict[str, Any]:
    return {
        FOLLOW_UP_MARKER: window,
        "opened": opened,
        "command": change.command or "",
        "first": first,
        "userAgent": change.call.user_agent[:_FIRST_LIMIT],
    }


def schedule_follow_up(
    ctx: Context, window: str, opened: int, change: TamperEvent, first: str
) -> None:
    """The window's follow-up on the retry queue, delayed until the window has ended
    (claimed per destination when posted: scheduling it twice posts it once)."""
    _send_follow_up(ctx, follow_up_body(window, opened, change, first), opened)


def _send_follow_up(ctx: Context, body: Mapping[str, Any], opened: int) -> None:
    """Delayed until the window and its grace have ended (api_call.follow_up_due): a
    change made just before the window's end has time to arrive and be counted."""
    delay = math.ceil(follow_up_due(opened) - ctx.now().timestamp())
    sqs = ctx.client("sqs")
    sqs.send_message(
        QueueUrl=queue_url(sqs, ctx.settings.retry_queue),
        MessageBody=json.dumps(dict(body)),
        DelaySeconds=min(max(delay, 0), SQS_MAX_DELAY_SECONDS),
    )


def handle_follow_up(event: Mapping[str, Any], ctx: Context) -> Outcome:
    """A maintenance window has ended: close it, post its one message."""
    found = follow_up_window(event, WINDOW)
    if found is None:
        return Outcome("ignored", reason="a follow-up message without a maintenance window")
    window, opened = found
    rule = ctx.rules.get(RULE)
    if rule is None:
        return Outcome("ignored", reason=f"a maintenance window's follow-up ({RULE} is off)")
    if ctx.now().timestamp() < follow_up_due(opened):
        # Early (SQS delays 15 min at most), or within the grace: wait again rather than
        # close a window a change made just before its end may still join.
        _send_follow_up(ctx, event, opened)
        return Outcome("follow-up-rescheduled", reason="its window has not ended yet")
    summary = _windows(ctx).close(window)
    if summary is None:
        return Outcome("ignored", reason="the maintenance window is gone (expired)")
    first = str(event.get("first") or "")[:_FIRST_LIMIT]
    command = str(event.get("command") or "?")[:32]
    calls = [first, *(f"{c.event_name} {c.notable.split(' ', 1)[-1]}" for c in summary.calls)]
    changes = 1 + summary.further
    names = ctx.account_names([summary.account_id] if summary.account_id else [])

    def compose(destination: Destination) -> Payload:
        return build_maintenance_message(
            command=command,
            who=summary.who,
            source_ip=summary.source_ip,
            user_agent=str(event.get("userAgent") or "")[:_FIRST_LIMIT],
            account_id=summary.account_id,
            started=summary.opened,
            changes=changes,
            calls=calls,
            overflow=summary.overflow,
            rule=rule,
            mention=destination.mention,
            account_names=names,
        )

    notice = Notice(
        (MAINTENANCE_FOLLOW_UP + window,),
        (rule.name,),
        MAINTENANCE_SEVERITY,
        summary.account_id,
        compose,
    )
    sent = deliver([notice], ctx)
    sent.raise_if_incomplete()
    ctx.progress.events = changes
    if not sent.messages:
        return Outcome(
            "already-reported", changes, reason="the maintenance message went out already"
        )
    return Outcome(
        "posted-maintenance",
        changes,
        reason="; ".join(sent.notes) or None,
        slack_status=sent.slack_status,
    )
