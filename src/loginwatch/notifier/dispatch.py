"""The one delivery step every path uses: compose, claim, post, confirm or release.

Claims are per destination and per message (routing.Destination.claim_key): when
one channel's webhook fails, only that channel's message is released for the
retry, and the channels that took theirs are not posted to twice. A burst is
claimed through its failures' ids (``burst#<eventID>``): a burst whose failures
were partly reported already goes on from an earlier message, so its new
failures are taken into that one quietly instead of posted again.

Three shapes of delivery, all through ``Context.post`` (which keeps every post
within the run's deadline):
- ``send``: sign-in alerts (one message per destination lists them all) and bursts;
- ``deliver``: one message per ``Notice``, claimed by the notice's keys;
- ``post_test``: a labelled test message where a rule's alerts would go.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .claims import NO_CLAIMS, ClaimBusy, ClaimError, Claims
from .routing import Destination, Routes
from .rules import Alert, Burst, Rule, RuleSet
from .slack_message import build_failure_burst_message

if TYPE_CHECKING:
    from .context import Context

Payload = dict[str, Any]
Post = Callable[[Destination, Payload], int | None]
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


def send(alerts: Sequence[Alert], bursts: Sequence[Burst], ctx: Context, compose: Composer) -> Sent:
    """Sign-in alerts and bursts of failures to every destination that takes them."""
    ctx.progress.events = len(alerts) + sum(b.count for b in bursts)
    routes = ctx.routes
    sent = Sent()
    plan: list[tuple[Destination, list[Alert], list[Burst]]] = []
    for destination in routes.all:
        mine = [
            a
            for a in alerts
            if destination in routes.targets(a.rule_names, a.severity, a.sign_in.account_id)
        ]
        theirs = [
            b
            for b in bursts
            if destination in routes.targets((b.rule.name,), b.rule.severity, b.account_id)
        ]
        if mine or theirs:
            plan.append((destination, mine, theirs))
    for index, (destination, mine, theirs) in enumerate(plan):
        post = _sharing_time(ctx, len(plan) - index)
        if mine:
            _send_alerts(destination, mine, ctx.claims, post, compose, sent)
        for burst in theirs:
            _send_burst(destination, burst, ctx.claims, post, compose, sent)
    busy = {key.split("#")[0] for key in sent.busy}
    ids = {a.sign_in.event_id for a in alerts if a.sign_in.event_id}
    sent.already = len(ids - sent.posted_ids - busy)
    ctx.progress.slack_status = sent.slack_status
    return sent


def send_sign_ins(
    alerts: Sequence[Alert],
    bursts: Sequence[Burst],
    ctx: Context,
    *,
    alert_payload: Callable[[Destination, Sequence[Alert], int], Payload],
    via: str,
    late: str | None,
    account_names: Mapping[str, str],
) -> Sent:
    """``send`` with the burst message both paths share (``via`` names the path)."""
    report = burst_report(
        via=via, allowed=ctx.allowlist.contains, late=late, account_names=account_names
    )
    return send(alerts, bursts, ctx, Composer(alert_payload, report))


@dataclass(frozen=True)
class Notice:
    """One message a path wants delivered: claimed by ``keys`` (each destination its own
    claims; no keys: not claimed) and routed by its rules, severity and account."""

    keys: tuple[str, ...]
    rule_names: tuple[str, ...]
    severity: str
    account_id: str
    compose: Callable[[Destination], Payload]
    # Exactly these destinations (by name), whatever the routes say; None: by the routes.
    destinations: tuple[str, ...] | None = None

    def goes_to(self, destination: Destination, routes: Routes) -> bool:
        if self.destinations is not None:
            return destination.name in self.destinations
        return destination in routes.targets(self.rule_names, self.severity, self.account_id)


def deliver(notices: Sequence[Notice], ctx: Context) -> Sent:
    """Each notice to every destination that takes it, once: a destination whose claims
    on a notice were posted already is skipped; one whose claims another run holds is
    left for Lambda's retry (``Sent.raise_if_incomplete``)."""
    ctx.progress.events = len(notices)
    routes = ctx.routes
    sent = Sent()
    plan = [
        (destination, notice)
        for destination in routes.all
        for notice in notices
        if notice.goes_to(destination, routes)
    ]
    for index, (destination, notice) in enumerate(plan):
        post = _sharing_time(ctx, len(plan) - index)
        held_by, held = _claim(destination, notice.keys, ctx.claims, sent)
        if len(held) < len(notice.keys):
            if not held_by.busy:
                sent.already += 1
            held_by.release()
            continue
        if _post(destination, notice.compose(destination), held_by, post, sent):
            sent.posted_ids.update(notice.keys)
    ctx.progress.slack_status = sent.slack_status
    return sent


def post_test(
    routes: Routes,
    rules: RuleSet,
    rule_name: Any,
    post: Post,
    message: Callable[[Destination, Rule | None], Payload],
) -> tuple[int | None, list[str]]:
    """A labelled test message to every destination a test of ``rule_name`` goes to
    (routing.Routes.for_test); Slack's last status and the destinations posted to.
    Raises at the first that fails. Tests are not claimed: each one is new."""
    rule, targets = routes.for_test(rules, rule_name)
    status: int | None = None
    posted: list[str] = []
    for destination in targets:
        status = post(destination, message(destination, rule))
        posted.append(destination.name)
    return status, posted


def _sharing_time(ctx: Context, left: int) -> Post:
    """Posts that share what is left of the run with the ``left`` destinations still to
    go, so one failing channel cannot use up the time of the ones after it."""

    def post(destination: Destination, payload: Payload) -> int | None:
        return ctx.post(destination, payload, share=left)

    return post


def _claim(
    destination: Destination, keys: Sequence[str], claims: Callable[[], Claims], sent: Sent
) -> tuple[Claims, set[str]]:
    """Claim ``keys`` for one message; the ids now held (all, if the table is unusable)."""
    if not keys:
        return NO_CLAIMS, set()
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
    post: Post,
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
    post: Post,
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
    post: Post,
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
