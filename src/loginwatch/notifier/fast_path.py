"""The fast path: one EventBridge sign-in event → (maybe) one Slack message, in seconds.

The CloudTrail record is the event's ``detail``. It is re-checked exactly
against the allowlist; a successful sign-in from outside it is claimed (so the
alarm path, minutes later, does not list it again) and posted.

Bursts: a credential-stuffing run can bring a hundred sign-ins a minute. Per
``BURST_WINDOW_SECONDS`` window of sign-in time, the first ``POSTED_PER_WINDOW``
are posted one by one, the next one gets a single "this is a burst" notice, and
the rest are left unclaimed: the alarm path lists them all in one digest a few
minutes later. So the channel gets a bounded number of messages, every sign-in
is counted in one of them, and none is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .claims import NO_CLAIMS, ClaimBusy, ClaimError, Claims
from .events import SignIn, parse_sign_in
from .ipmatch import AllowList
from .protocol import TEST_EVENT_SOURCE, TEST_ID_PATTERN
from .redelivery import lateness
from .slack_message import build_alert_message, build_burst_message, build_test_message

BURST_WINDOW_SECONDS = 300
POSTED_PER_WINDOW = 3
_TEST_ID_RE = re.compile(rf"\A{TEST_ID_PATTERN}\Z")


@dataclass(frozen=True)
class Outcome:
    outcome: str
    events: int = 0
    test_id: str | None = None
    reason: str | None = None


def is_eventbridge_event(event: Any) -> bool:
    return isinstance(event, Mapping) and "detail-type" in event and "detail" in event


def handle(
    event: Mapping[str, Any],
    *,
    allowlist: AllowList,
    alarm_name: str,
    claims: Callable[[], Claims],
    post: Callable[[dict[str, Any]], None],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    late_cause: str | None = None,
) -> Outcome:
    """Decide about one EventBridge event and post what it deserves.

    ``late_cause``: the event comes from the retry queue, after delivery failed
    for this reason; the message then says how late it is and why.
    """
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        return Outcome("ignored", reason="EventBridge event without a detail object")
    if event.get("source") == TEST_EVENT_SOURCE:
        return _test(event, detail, alarm_name, post)
    sign_in = parse_sign_in(detail)
    if sign_in is None:
        return Outcome("ignored", reason="not a console sign-in")
    if allowlist.contains(sign_in.source_ip):
        return Outcome("ignored-allowed", reason="sign-in from the allowlist")
    if not sign_in.success:
        # Failures alone do not alert (nor does the alarm); they are listed for context.
        return Outcome("ignored", reason="failed sign-in from outside the allowlist")
    moment = now()
    late = lateness(late_cause, sign_in.event_time, moment) if late_cause else None
    try:
        return _report(sign_in, claims(), post, moment, late)
    except ClaimError as error:
        # The table cannot be used: a repeat (the alarm may list it again) beats a miss.
        outcome = _report(sign_in, NO_CLAIMS, post, moment, late)
        return Outcome(outcome.outcome, outcome.events, reason=f"not de-duplicated: {error}")


def _test(
    event: Mapping[str, Any],
    detail: Mapping[str, Any],
    alarm_name: str,
    post: Callable[[dict[str, Any]], None],
) -> Outcome:
    test_id = detail.get("loginwatchTestId")
    if not isinstance(test_id, str) or not _TEST_ID_RE.match(test_id):
        return Outcome("ignored", reason="test event without a valid test id")
    origin = detail.get("awsRegion") or event.get("region") or "?"
    payload = build_test_message(
        test_id=test_id,
        account_id=str(event.get("account", "")),
        alarm_name=alarm_name,
        path=f"fast path: EventBridge ({origin}) → Lambda → Slack",
    )
    post(payload)
    return Outcome("test-posted", test_id=test_id)


def _report(
    sign_in: SignIn,
    claims: Claims,
    post: Callable[[dict[str, Any]], None],
    now: datetime,
    late: str | None,
) -> Outcome:
    if sign_in.event_id and not claims.claim(sign_in.event_id):
        if claims.busy:  # another run is posting it: only its success makes it reported
            raise ClaimBusy(claims.busy)
        return Outcome("already-reported", 1, reason=f"{sign_in.event_id} was reported already")
    # Counted by event id, so a retry or a duplicate delivery is not counted twice.
    window = int(sign_in.event_time.timestamp()) // BURST_WINDOW_SECONDS
    count = claims.count_in_window(
        f"burst#{sign_in.account_id}#{window}", BURST_WINDOW_SECONDS, sign_in.event_id
    )
    if count > POSTED_PER_WINDOW:
        claims.release()  # unclaimed: the alarm's digest lists it
    if count > POSTED_PER_WINDOW + 1:
        return Outcome("deferred-to-digest", 1, reason=f"burst: sign-in {count} of its window")
    if count == POSTED_PER_WINDOW + 1:
        post(
            build_burst_message(
                account_id=sign_in.account_id,
                count=count,
                window_minutes=BURST_WINDOW_SECONDS // 60,
            )
        )
        return Outcome("burst-notice", 1, reason="further sign-ins go to the alarm digest")
    seconds = max(0.0, (now - sign_in.event_time).total_seconds())
    payload = build_alert_message(
        [sign_in],
        account_id=sign_in.account_id,
        alarm_name="",
        fast_path_seconds=seconds,
        late=late,
    )
    try:
        post(payload)
    except BaseException:
        claims.release()  # claimable again: the retry (or the alarm path) reports it
        raise
    return Outcome("posted", 1, reason=claims.confirm())
