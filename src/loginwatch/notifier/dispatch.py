"""Alerts and bursts → one message per destination, each claimed and posted on its own.

Claims are per destination and per message (routing.Destination.claim_key): when
one channel's webhook fails, only that channel's message is released for the
retry, and the channels that took theirs are not posted to twice. A burst is
claimed through its failures' ids (``burst#<eventID>``): a burst whose failures
were partly reported already goes on from an earlier message, so its new
failures are taken into that one quietly instead of posted again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .claims import NO_CLAIMS, ClaimBusy, ClaimError, Claims
from .routing import Destination, Routes
from .rules import Alert, Burst
from .slack_message import build_failure_burst_message

Payload = dict[str, Any]
BURST_KEY = "burst#"


@dataclass
class Sent:
    """What one dispatch did, for the invocation's log line."""

    messages: int = 0
    posted_ids: set[str] = field(default_factory=set)
    already: int = 0  # alerts every destination had been sent already
    absorbed: int = 0  # failures taken into a burst reported earlier
    slack_status: int | None = None
    notes: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)
    failed: list[tuple[str, BaseException]] = field(default_factory=list)

    @property
    def events(self) -> int:
        return len(self.posted_ids)

    def raise_if_incomplete(self) -> None:
        """A destination that failed (Lambda retries; claims make the retry post only
        there), or sign-ins another run is posting (retry: posted or free by then)."""
        if self.failed:
            raise self.failed[0][1]
        if self.busy:
            raise ClaimBusy(self.busy)


@dataclass(frozen=True)
class Composer:
    """Builds the payloads; each gets the destination (for its mention)."""

    alerts: Callable[[Destination, Sequence[Alert], int], Payload]
    burst: Callable[[Destination, Burst], Payload]


def burst_report(
    *,
    via: str,
    allowed: Callable[[str], bool],
    late: str | None,
    account_names: Mapping[str, str] | None = None,
) -> Callable[[Destination, Burst], Payload]:
    """The burst message for a destination, the same on both paths but for ``via``."""

    def compose(destination: Destination, burst: Burst) -> Payload:
        return build_failure_burst_message(
            burst,
            via=via,
            allowed=allowed,
            mention=destination.mention,
            late=late,
            account_names=account_names,
        )

    return compose


def send(
    alerts: Sequence[Alert],
    bursts: Sequence[Burst],
    *,
    routes: Routes,
    claims: Callable[[], Claims],
    post: Callable[[Destination, Payload], int | None],
    compose: Composer,
) -> Sent:
    sent = Sent()
    for destination in routes.all:
        mine = [
            a
            for a in alerts
            if destination in routes.targets(a.rule_names, a.severity, a.sign_in.account_id)
        ]
        if mine:
            _send_alerts(destination, mine, claims, post, compose, sent)
        for burst in bursts:
            rule = burst.rule
            if destination in routes.targets((rule.name,), rule.severity, burst.account_id):
                _send_burst(destination, burst, claims, post, compose, sent)
    busy = {key.split("#")[0] for key in sent.busy}
    ids = {a.sign_in.event_id for a in alerts if a.sign_in.event_id}
    sent.already = len(ids - sent.posted_ids - busy)
    return sent


def _claim(
    destination: Destination, keys: Sequence[str], claims: Callable[[], Claims], sent: Sent
) -> tuple[Claims, set[str]]:
    """Claim ``keys`` for one message; the ids now held (all, if the table is unusable)."""
    held_by = claims()
    try:
        wanted = [destination.claim_key(k) for k in keys]
        held = set(held_by.claim_all(wanted))
    except ClaimError as error:
        # No table to ask (throttled, deleted, denied): a repeat beats a miss, so post.
        held_by.release()
        sent.notes.append(f"posted without de-duplication: {error}")
        return NO_CLAIMS, {destination.claim_key(k) for k in keys}
    sent.busy.extend(held_by.busy)
    return held_by, held


def _send_alerts(
    destination: Destination,
    alerts: Sequence[Alert],
    claims: Callable[[], Claims],
    post: Callable[[Destination, Payload], int | None],
    compose: Composer,
    sent: Sent,
) -> None:
    keyed = [a.sign_in.event_id for a in alerts if a.sign_in.event_id]
    held_by, held = _claim(destination, keyed, claims, sent)
    fresh = [
        a
        for a in alerts
        if not a.sign_in.event_id or destination.claim_key(a.sign_in.event_id) in held
    ]
    busy = len([k for k in keyed if destination.claim_key(k) in held_by.busy])
    already = len(alerts) - len(fresh) - busy
    # Failures listed for context only, their successes reported already: not an alert.
    if not fresh or (already and not any(a.sign_in.success for a in fresh)):
        held_by.release()
        return
    if _post(destination, compose.alerts(destination, fresh, already), held_by, post, sent):
        sent.posted_ids.update(a.sign_in.event_id for a in fresh)


def _send_burst(
    destination: Destination,
    burst: Burst,
    claims: Callable[[], Claims],
    post: Callable[[Destination, Payload], int | None],
    compose: Composer,
    sent: Sent,
) -> None:
    keys = [BURST_KEY + event_id for event_id in burst.event_ids]
    held_by, held = _claim(destination, keys, claims, sent)
    if len(held) < len(keys):
        if held_by.busy:  # another run is posting (part of) this burst: retry later
            held_by.release()
            return
        # Part of it was reported: the burst goes on. Its new failures join that message.
        sent.absorbed += len(held)
        note = held_by.confirm()
        if note:
            sent.notes.append(note)
        return
    if _post(destination, compose.burst(destination, burst), held_by, post, sent):
        sent.posted_ids.update(burst.event_ids)


def _post(
    destination: Destination,
    payload: Payload,
    held_by: Claims,
    post: Callable[[Destination, Payload], int | None],
    sent: Sent,
) -> bool:
    try:
        sent.slack_status = post(destination, payload)
    except Exception as error:
        held_by.release()  # claimable again: the retry posts it
        sent.failed.append((destination.name, error))
        return False
    sent.messages += 1
    note = held_by.confirm()
    if note:
        sent.notes.append(note)
    return True
