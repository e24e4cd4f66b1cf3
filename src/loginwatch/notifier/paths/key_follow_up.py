"""The follow-up of an access key's window: how many more calls, of which kinds, where.

Scheduled by the window's first call (paths/api_call.py) as a message on the retry
queue, delayed until the window has ended; the queue's event source mapping brings
it back (retry_batch.py hands each record's body to its path). Taking it closes the
window (key_windows.KeyWindows.close): a later call of the same key and address
opens the next window and is posted. The message is claimed per destination
(``keyfollow#<window>``), so a follow-up scheduled twice, or retried after Slack
failed, is posted once. A window with no further calls posts nothing.

A follow-up early (before the window and its grace have ended: SQS delays 15 min
at most) is sent again, as it came. One that finds its window gone (windows are kept
longer than the queues keep a message, so only a far-late one) posts what it knows
(the key, who, the address, when the window opened) and that the count is lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..context import Context, Outcome
from ..dispatch import Notice, Payload, deliver
from ..key_windows import KEEP_SECONDS, WINDOW, WINDOW_SECONDS, KeyWindows, WindowSummary
from ..protocol import FOLLOW_UP_MARKER
from ..redelivery import lateness
from ..routing import Destination
from ..slack_message import build_key_follow_up_message
from .api_call import RULE, follow_up_due, schedule_follow_up

FOLLOW_UP = "keyfollow#"
# A follow-up posted this much after its window ended says how late it is.
_LATE_SECONDS = 5 * 60
_KEY_LIMIT = 1024


def recognises(event: Any) -> bool:
    return isinstance(event, Mapping) and FOLLOW_UP_MARKER in event


def follow_up_window(event: Mapping[str, Any], prefix: str) -> tuple[str, int] | None:
    """(window, opened) of a follow-up message whose window starts with ``prefix``."""
    window, opened = event.get(FOLLOW_UP_MARKER), event.get("opened")
    if (
        not isinstance(window, str)
        or not window.startswith(prefix)
        or len(window) > _KEY_LIMIT
        or isinstance(opened, bool)
        or not isinstance(opened, int)
    ):
        return None
    return window, opened


def handle(event: Mapping[str, Any], ctx: Context) -> Outcome:
    found = follow_up_window(event, WINDOW)
    if found is None:
        return Outcome("ignored", reason="a follow-up message without a window")
    window, opened = found
    rule = ctx.rules.get(RULE)
    if rule is None:
        return Outcome("ignored", reason=f"a key window's follow-up ({RULE} is off)")
    now = ctx.now().timestamp()
    end = follow_up_due(opened)
    if now < end:
        # Early (SQS delays 15 min at most; the first call was handled before it was made,
        # by the clock here): wait again rather than close a window calls still join, or
        # may join within the grace (a call made just before the end, on its way).
        schedule_follow_up(ctx, window, opened, event)
        return Outcome("follow-up-rescheduled", reason="its window has not ended yet")
    summary = KeyWindows(ctx.client("dynamodb"), ctx.settings.claims_table).close(window)
    gone = summary is None
    if summary is None:
        summary = _what_is_known(window, opened, event)
    elif not summary.further:
        return Outcome("follow-up-quiet", 1, reason="no further calls in the window")
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
            gone_after_days=KEEP_SECONDS // 86400 if gone else None,
        )

    notice = Notice((FOLLOW_UP + window,), (rule.name,), rule.severity, summary.account_id, compose)
    sent = deliver([notice], ctx)
    sent.raise_if_incomplete()
    counted = max(summary.further, 0)
    ctx.progress.events = counted
    if not sent.messages:
        return Outcome("already-reported", counted, reason="the follow-up went out already")
    return Outcome(
        "posted-follow-up-lost" if gone else "posted-follow-up",
        counted,
        reason="; ".join(sent.notes) or None,
        slack_status=sent.slack_status,
    )


def _what_is_known(window: str, opened: int, event: Mapping[str, Any]) -> WindowSummary:
    """A gone window, from its key (``keywin#<account>#<key digest>#<address>#<eventID>``)
    and what its follow-up message carries: no count (``further`` -1)."""
    account, _, rest = window.removeprefix(WINDOW).partition("#")
    _, _, rest = rest.partition("#")
    address, _, opener = rest.rpartition("#")

    def text(name: str, limit: int = 128) -> str:
        value = event.get(name)
        return value[:limit] if isinstance(value, str) else ""

    return WindowSummary(
        window=window,
        opener=opener,
        opened=datetime.fromtimestamp(opened, tz=UTC),
        account_id=account[:32],
        who=text("who"),
        identity_type=text("identity", 32),
        masked_key=text("key", 32) or "an access key",
        source_ip=address[:128] or "?",
        calls=(),
        further=-1,
        state="gone",
    )
