"""The follow-up of an access key's window: how many more calls, of which kinds, where.

Scheduled by the window's first call (paths/api_call.py) as a message on the retry
queue, delayed until the window has ended; the queue's event source mapping brings
it back (retry_batch.py hands each record's body to its path). Taking it closes the
window (key_windows.KeyWindows.close): a later call of the same key and address
opens the next window and is posted. The message is claimed per destination
(``keyfollow#<window>``), so a follow-up scheduled twice, or retried after Slack
failed, is posted once. A window with no further calls posts nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..context import Context, Outcome
from ..dispatch import Notice, Payload, deliver
from ..key_windows import WINDOW, WINDOW_SECONDS, KeyWindows
from ..protocol import FOLLOW_UP_MARKER
from ..redelivery import lateness
from ..routing import Destination
from ..slack_message import build_key_follow_up_message
from .api_call import FOLLOW_UP_GRACE_SECONDS, RULE, schedule_follow_up

FOLLOW_UP = "keyfollow#"
# A follow-up posted this much after its window ended says how late it is.
_LATE_SECONDS = 5 * 60
_KEY_LIMIT = 1024


def recognises(event: Any) -> bool:
    return isinstance(event, Mapping) and FOLLOW_UP_MARKER in event


def handle(event: Mapping[str, Any], ctx: Context) -> Outcome:
    window, opened = event.get(FOLLOW_UP_MARKER), event.get("opened")
    if (
        not isinstance(window, str)
        or not window.startswith(WINDOW)
        or len(window) > _KEY_LIMIT
        or isinstance(opened, bool)
        or not isinstance(opened, int)
    ):
        return Outcome("ignored", reason="a follow-up message without a window")
    rule = ctx.rules.get(RULE)
    if rule is None:
        return Outcome("ignored", reason=f"a key window's follow-up ({RULE} is off)")
    now = ctx.now().timestamp()
    if now < opened + WINDOW_SECONDS:
        # Early (SQS delays 15 min at most; the first call was handled before it was made,
        # by the clock here): wait again rather than close a window calls still join.
        schedule_follow_up(ctx, window, opened)
        return Outcome("follow-up-rescheduled", reason="its window has not ended yet")
    summary = KeyWindows(ctx.client("dynamodb"), ctx.settings.claims_table).close(window)
    if summary is None:
        return Outcome("ignored", reason="the window is gone (expired)")
    if not summary.further:
        return Outcome("follow-up-quiet", 1, reason="no further calls in the window")
    end = opened + WINDOW_SECONDS + FOLLOW_UP_GRACE_SECONDS
    late = None
    if now - end > _LATE_SECONDS:
        ended = datetime.fromtimestamp(end, tz=UTC)
        late = lateness("the follow-up could not be posted sooner", ended, ctx.now())
    names = ctx.account_names([summary.account_id] if summary.account_id else [])

    def compose(destination: Destination) -> Payload:
        return build_key_follow_up_message(
            summary,
            rule=rule,
            window_minutes=WINDOW_SECONDS // 60,
            late=late,
            mention=destination.mention,
            account_names=names,
        )

    notice = Notice((FOLLOW_UP + window,), (rule.name,), rule.severity, summary.account_id, compose)
    sent = deliver([notice], ctx)
    sent.raise_if_incomplete()
    ctx.progress.events = summary.further
    if not sent.messages:
        return Outcome("already-reported", summary.further, reason="the follow-up went out already")
    return Outcome(
        "posted-follow-up",
        summary.further,
        reason="; ".join(sent.notes) or None,
        slack_status=sent.slack_status,
    )
