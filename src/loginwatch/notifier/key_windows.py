"""One message per access key and source address, not one per call: the claims table
counts an intruder's calls in sliding 15-minute windows.

Three kinds of item, in the claims table (key ``eventId``, TTL ``expires``):

``keyuse#<account>#<key digest>#<address>``  the pointer: which window is current
    (``window``) and when its first call was made (``opened``, epoch seconds); and
    ``late``/``late_opened``, the window of calls older than the current one (the
    alarm path reads calls minutes late): the pointer never moves back.
``keywin#<account>#<key digest>#<address>#<first call's eventID>``  a window: its
    first call (``opener``), ``state`` (open → closed when its follow-up is taken),
    how many further calls it counted (``count``), how many of each kind (``kinds``,
    a map of at most ``KIND_CAP`` call names, the rest under ``OTHER``) and in each
    region (``regions``, likewise), and the first ``NOTABLE_CAP`` notable calls
    (``notable``, a list; ``notable_more`` counts the rest). The item stays small
    (a few KB at most) whatever an intruder does: each write costs a few WCU.
``apicall#<eventID>``  a counted call: the window it was counted in. A retried or
    duplicated delivery finds it and is neither posted nor counted again, whichever
    window is current by then.

Each step is one DynamoDB transaction (TransactWriteItems), so no run ever sees a
half-made step of another:

- open: put the window (it must not exist), switch the pointer (only from the window
  this run read: a compare-and-set) and put ``apicall#<eventID>`` (it must not exist);
- join: count the call in the window (only while it is open) and put
  ``apicall#<eventID>`` (it must not exist).

A cancelled transaction wrote nothing: the run reads again and decides again. A
window is opened by a call that finds no current window, one whose first call is 15
minutes or more from its own (event time, so the alarm path's late reading lands in
the right window; not fixed clock buckets), or one already closed. Nothing is ever
deleted: the TTL removes what nothing points at any more.
The key id is hashed (``api_calls.key_digest``): the table never holds it whole.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .api_calls import ApiCall
from .calls import CLAIMS, Call
from .claims import KEY, TTL_ATTRIBUTE, ClaimError, error_code

# TransactWriteItems is authorised as the PutItem and UpdateItem it is made of.
CALLS = tuple(
    Call("dynamodb", operation, CLAIMS)
    for operation in ("BatchGetItem", "GetItem", "TransactWriteItems", "UpdateItem")
)

WINDOW_SECONDS = 15 * 60
# What a window keeps, bounded: call names and regions counted by name up to these
# caps (past them, under OTHER), and the first NOTABLE_CAP notable calls listed.
KIND_CAP = 40
REGION_CAP = 40
NOTABLE_CAP = 25
OTHER = "(other)"
# Windows and counted calls are kept longer than a follow-up can wait: the retry
# queue and the final queue keep a message 14 days (resources/queue.py), from when
# it was first sent; a day more for the follow-up sent on a late first call's retry.
KEEP_SECONDS = 15 * 24 * 3600
POINTER, WINDOW, COUNTED = "keyuse#", "keywin#", "apicall#"
OPEN, CLOSED = "open", "closed"
_PART = 128  # each part of a listed call, a kind's or a region's name
_ATTEMPTS = 6  # read-and-write rounds before giving up (other runs keep winning)
_RETRY = object()  # a cancelled transaction: read again, decide again


@dataclass(frozen=True)
class Counted:
    """What counting one call did."""

    state: str  # "opened", "counted", "repeat"
    window: str  # the window's item key
    opened: datetime  # the window's first call
    opener: bool  # this call opened the window (its first message is this call's)


@dataclass(frozen=True)
class Listed:
    """One notable call a window listed."""

    event_id: str
    event_name: str
    region: str
    notable: str


@dataclass(frozen=True)
class WindowSummary:
    """A window, as its follow-up tells it."""

    window: str
    opener: str
    opened: datetime
    account_id: str
    who: str
    identity_type: str
    masked_key: str
    source_ip: str
    calls: tuple[Listed, ...]  # the notable calls listed (at most NOTABLE_CAP), in order
    further: int  # calls counted after the first
    state: str
    kinds: tuple[tuple[str, int], ...] = ()  # call name → calls, most first
    regions: tuple[tuple[str, int], ...] = ()  # region → calls, most first
    notable_more: int = 0  # notable calls past NOTABLE_CAP (counted, not listed)

    @property
    def overflow(self) -> int:
        """Further calls not listed one by one."""
        return max(self.further - len(self.calls), 0)


def _member(call: ApiCall, event_id: str) -> str:
    parts = (event_id, call.event_name, call.region, call.notable)
    return "|".join(p.replace("|", "/")[:_PART] for p in parts)


def _listed(member: str) -> Listed:
    parts = [*member.split("|", 3), "", "", ""][:4]
    return Listed(*parts)


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _when(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


@dataclass(frozen=True)
class _Slot:
    """Which of the pointer's two windows a call belongs to."""

    window: str  # the pointer's attribute naming the window
    opened: str  # … and its first call's time


_CURRENT, _LATE = _Slot("window", "opened"), _Slot("late", "late_opened")


@dataclass
class KeyWindows:
    client: Any
    table: str
    clock: Callable[[], float] = time.time
    # The items' prefixes and what one window covers (an access key's calls from one
    # address): paths/tamper.py counts loginwatch's own maintenance runs with the same
    # mechanism under prefixes of its own, so neither ever reads the other's items.
    pointer_prefix: str = POINTER
    window_prefix: str = WINDOW
    counted_prefix: str = COUNTED
    scope: Callable[[ApiCall], str] = ApiCall.window_key
    sleep: Callable[[float], None] = time.sleep

    # ------------------------------------------------------------ counting
    def count(self, call: ApiCall) -> Counted:
        """Count one in-scope call in its window (opening one if need be)."""
        event_id = call.event_id or uuid.uuid4().hex  # no id: count it, it cannot repeat
        scope = self.scope(call)
        pointer_key, counted_key = self.pointer_prefix + scope, self.counted_prefix + event_id
        moment = _epoch(call.event_time)
        for attempt in range(_ATTEMPTS):
            if attempt:
                self.sleep(random.uniform(0.02, 0.1) * attempt)  # another run won: back off
            pointer, counted = self._read_both(pointer_key, counted_key)
            if counted is not None:
                return self._seen(counted, event_id)
            slot = _slot_for(pointer, moment)
            current, opened = _s(pointer, slot.window), _n(pointer, slot.opened)
            if current and abs(moment - opened) < WINDOW_SECONDS:
                joined = self._join(current, opened, call, event_id, counted_key)
                if joined is _RETRY:
                    continue
                if isinstance(joined, Counted):
                    return joined
                # closed (its follow-up was taken): this call opens the next window
            window = f"{self.window_prefix}{scope}#{event_id}"
            if self._open(window, pointer_key, slot, current, call, event_id, counted_key):
                return Counted("opened", window, _when(moment), True)
        raise ClaimError(f"could not count {event_id}: its window kept changing")

    def _seen(self, counted: dict[str, Any], event_id: str) -> Counted:
        window = _s(counted, "window")
        opener = window.endswith(f"#{event_id}")
        state = "opened" if opener else "repeat"
        return Counted(state, window, _when(_n(counted, "opened")), opener)

    def _join(
        self, window: str, opened: int, call: ApiCall, event_id: str, counted_key: str
    ) -> Counted | object | None:
        """Count the call in ``window`` and mark it counted, in one transaction. A
        Counted; None when the window is closed or gone; _RETRY to read again."""
        kind = (call.event_name or "?")[:_PART]
        region = (call.region or "?")[:_PART]
        listed, more = bool(call.notable), False
        for _ in range(2):  # the second time with what the window's caps leave
            member = _member(call, event_id) if listed else ""
            update = _join_update(kind, region, member, more=more)
            try:
                self._transact(
                    {"Update": {"TableName": self.table, "Key": {KEY: {"S": window}}, **update}},
                    self._mark(counted_key, window, opened),
                )
            except _Cancelled as cancelled:
                if cancelled.failed(1) or not cancelled.failed(0):
                    return _RETRY  # counted meanwhile, or another run's transaction
                item = cancelled.item(0) or self._get(window)
                if item is None or _s(item, "state") != OPEN:
                    return None
                # Open, so a cap stood in the way: count under what the caps leave.
                kinds = item.get("kinds", {}).get("M", {})
                regions = item.get("regions", {}).get("M", {})
                if kind not in kinds and len(kinds) >= KIND_CAP:
                    kind = OTHER
                if region not in regions and len(regions) >= REGION_CAP:
                    region = OTHER
                if listed and len(item.get("notable", {}).get("L", [])) >= NOTABLE_CAP:
                    listed, more = False, True
                continue
            opener = window.endswith(f"#{event_id}")
            return Counted("opened" if opener else "counted", window, _when(opened), opener)
        return _RETRY

    def _open(
        self,
        window: str,
        pointer_key: str,
        slot: _Slot,
        current: str,
        call: ApiCall,
        event_id: str,
        counted_key: str,
    ) -> bool:
        """Write a new window, make it the slot's window and mark the call counted, in one
        transaction; False if another run changed the slot first (nothing written)."""
        moment = _epoch(call.event_time)
        expires = {"N": str(int(self.clock()) + KEEP_SECONDS)}
        item = {
            KEY: {"S": window},
            "state": {"S": OPEN},
            "opened": {"N": str(moment)},
            "opener": {"S": event_id},
            "account": {"S": call.account_id or "-"},
            "who": {"S": (call.who or "-")[:_PART]},
            "identity": {"S": call.identity_type or "-"},
            "key": {"S": call.masked_key},
            "ip": {"S": call.source_ip[:_PART] or "-"},
            "count": {"N": "0"},
            "kinds": {"M": {}},
            "regions": {"M": {}},
            "notable": {"L": []},
            "notable_more": {"N": "0"},
            TTL_ATTRIBUTE: expires,
        }
        names = {"#window": slot.window, "#opened": slot.opened}
        values: dict[str, Any] = {":window": {"S": window}, ":opened": {"N": str(moment)}}
        if current:
            condition = "#window = :current"
            values[":current"] = {"S": current}
        else:
            condition = "attribute_not_exists(#window)"
        assignments = "#window = :window, #opened = :opened"
        if slot is _CURRENT:  # the pointer lives as long as its current window
            assignments += ", #expires = :expires"
            names["#expires"] = TTL_ATTRIBUTE
            values[":expires"] = expires
        switch = {
            "TableName": self.table,
            "Key": {KEY: {"S": pointer_key}},
            "UpdateExpression": f"SET {assignments}",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        try:
            self._transact(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": item,
                        "ConditionExpression": f"attribute_not_exists({KEY})",
                    }
                },
                {"Update": switch},
                self._mark(counted_key, window, moment),
            )
        except _Cancelled:
            return False
        return True

    def _mark(self, counted_key: str, window: str, opened: int) -> dict[str, Any]:
        """The transaction's part that records the call as counted (once only)."""
        return {
            "Put": {
                "TableName": self.table,
                "Item": {
                    KEY: {"S": counted_key},
                    "window": {"S": window},
                    "opened": {"N": str(opened)},
                    TTL_ATTRIBUTE: {"N": str(int(self.clock()) + KEEP_SECONDS)},
                },
                "ConditionExpression": f"attribute_not_exists({KEY})",
            }
        }

    # ------------------------------------------------------------ the follow-up
    def close(self, window: str) -> WindowSummary | None:
        """Take a window's follow-up: no call is added to it from now on (they open the
        next one). Closing again (a retried follow-up) reads it as it was closed. None
        when the window is gone (kept KEEP_SECONDS)."""
        try:
            answer = self.client.update_item(
                TableName=self.table,
                Key={KEY: {"S": window}},
                UpdateExpression="SET #state = :closed",
                ConditionExpression=f"attribute_exists({KEY})",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":closed": {"S": CLOSED}},
                ReturnValues="ALL_NEW",
            )
        except Exception as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return None
            raise ClaimError(f"closing {window}: {error}") from error
        return _summary(window, answer.get("Attributes") or {})

    def read(self, window: str) -> WindowSummary | None:
        item = self._get(window)
        return None if item is None else _summary(window, item)

    # ------------------------------------------------------------ DynamoDB
    def _transact(self, *items: dict[str, Any]) -> None:
        """One TransactWriteItems; _Cancelled when a condition failed or another
        transaction got in the way (nothing was written), ClaimError otherwise."""
        try:
            self.client.transact_write_items(TransactItems=list(items))
        except Exception as error:
            if error_code(error) == "TransactionCanceledException":
                cancelled = _Cancelled(error)
                if cancelled.retryable:
                    raise cancelled from error
            raise ClaimError(f"counting a call: {error}") from error

    def _read_both(
        self, pointer_key: str, counted_key: str
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        keys = [{KEY: {"S": pointer_key}}, {KEY: {"S": counted_key}}]
        request: dict[str, Any] = {self.table: {"Keys": keys, "ConsistentRead": True}}
        found: dict[str, dict[str, Any]] = {}
        try:
            for _ in range(5):  # unprocessed keys come back under throttling: ask again
                answer = self.client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table, []):
                    found[_s(item, KEY)] = item
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
        except Exception as error:
            raise ClaimError(f"reading the key window: {error}") from error
        if request:
            raise ClaimError("reading the key window: keys still unprocessed")
        return found.get(pointer_key), found.get(counted_key)

    def _get(self, key: str) -> dict[str, Any] | None:
        try:
            item = self.client.get_item(
                TableName=self.table, Key={KEY: {"S": key}}, ConsistentRead=True
            ).get("Item")
        except Exception as error:
            raise ClaimError(f"reading {key}: {error}") from error
        return item if isinstance(item, dict) else None


class _Cancelled(Exception):
    """A transaction DynamoDB cancelled: which of its parts failed their condition."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        response = getattr(error, "response", None)
        reasons = response.get("CancellationReasons") if isinstance(response, dict) else None
        self.reasons: list[dict[str, Any]] = [
            r if isinstance(r, dict) else {} for r in (reasons or [])
        ]

    @property
    def retryable(self) -> bool:
        """Only conditions and conflicts: throttling or a missing table is a ClaimError."""
        codes = {str(r.get("Code") or "None") for r in self.reasons}
        return bool(self.reasons) and codes <= {
            "None",
            "ConditionalCheckFailed",
            "TransactionConflict",
        }

    def failed(self, index: int) -> bool:
        return index < len(self.reasons) and self.reasons[index].get("Code") == (
            "ConditionalCheckFailed"
        )

    def item(self, index: int) -> dict[str, Any] | None:
        item = self.reasons[index].get("Item") if index < len(self.reasons) else None
        return item if isinstance(item, dict) else None


def _slot_for(pointer: dict[str, Any] | None, moment: int) -> _Slot:
    """The current window's slot, unless the call was made a window's length or more
    before the current window's first call: then the late slot (never move back)."""
    current, opened = _s(pointer, "window"), _n(pointer, "opened")
    return _LATE if current and moment <= opened - WINDOW_SECONDS else _CURRENT


def _join_update(kind: str, region: str, member: str, *, more: bool) -> dict[str, Any]:
    """The window's part of a join: count it, by kind and region (each within its cap
    unless counted under OTHER), list it (``member``: a notable call, while the list has
    room) or count it as a notable call not listed (``more``)."""
    names = {"#state": "state", "#count": "count", "#k": kind, "#r": region}
    # DynamoDB refuses a value the expressions do not use (ValidationException): each
    # cap goes in with its condition only.
    values: dict[str, Any] = {":one": {"N": "1"}, ":zero": {"N": "0"}, ":open": {"S": OPEN}}
    sets = [
        "kinds.#k = if_not_exists(kinds.#k, :zero) + :one",
        "regions.#r = if_not_exists(regions.#r, :zero) + :one",
    ]
    adds = ["#count :one"]
    conditions = ["#state = :open"]
    if kind != OTHER:
        values[":kcap"] = {"N": str(KIND_CAP)}
        conditions.append("(attribute_exists(kinds.#k) OR size(kinds) < :kcap)")
    if region != OTHER:
        values[":rcap"] = {"N": str(REGION_CAP)}
        conditions.append("(attribute_exists(regions.#r) OR size(regions) < :rcap)")
    if member:
        sets.append("notable = list_append(notable, :member)")
        values[":member"] = {"L": [{"S": member}]}
        values[":ncap"] = {"N": str(NOTABLE_CAP)}
        conditions.append("size(notable) < :ncap")
    if more:
        adds.append("notable_more :one")
    return {
        "UpdateExpression": f"SET {', '.join(sets)} ADD {', '.join(adds)}",
        "ConditionExpression": " AND ".join(conditions),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def _summary(window: str, item: dict[str, Any]) -> WindowSummary:
    members = item.get("notable", {}).get("L", [])
    listed = tuple(_listed(m.get("S", "")) for m in members if isinstance(m, dict))
    return WindowSummary(
        window=window,
        opener=_s(item, "opener"),
        opened=_when(_n(item, "opened")),
        account_id=_s(item, "account").strip("-"),
        who=_s(item, "who"),
        identity_type=_s(item, "identity").strip("-"),
        masked_key=_s(item, "key"),
        source_ip=_s(item, "ip"),
        calls=listed,
        further=_n(item, "count"),
        state=_s(item, "state"),
        kinds=_tally(item, "kinds"),
        regions=_tally(item, "regions"),
        notable_more=_n(item, "notable_more"),
    )


def _tally(item: dict[str, Any], name: str) -> tuple[tuple[str, int], ...]:
    counts = {k: _n({"v": v}, "v") for k, v in (item.get(name, {}).get("M") or {}).items()}
    return tuple(sorted(counts.items(), key=lambda kv: (kv[0] == OTHER, -kv[1], kv[0])))


def _s(item: dict[str, Any] | None, name: str) -> str:
    value = (item or {}).get(name, {}).get("S")
    return value if isinstance(value, str) else ""


def _n(item: dict[str, Any] | None, name: str) -> int:
    value = (item or {}).get(name, {}).get("N")
    try:
        return int(value) if isinstance(value, str) else 0
    except ValueError:
        return 0
