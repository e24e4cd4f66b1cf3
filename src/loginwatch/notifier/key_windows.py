"""One message per access key and source address, not one per call: the claims table
counts an intruder's calls in sliding 15-minute windows.

Three kinds of item, in the claims table (key ``eventId``, TTL ``expires``):

``keyuse#<account>#<key digest>#<address>``  the pointer: which window is current
    (``window``) and when its first call was made (``opened``, epoch seconds).
``keywin#<account>#<key digest>#<address>#<first call's eventID>``  a window: its
    first call (``opener``), ``state`` (open → closed when its follow-up is taken),
    the calls counted in it (``calls``, a string set of "eventID|name|region|notable")
    and, past ``WINDOW_CAP`` of them, a bare ``overflow`` count.
``apicall#<eventID>``  a counted call: the window it was counted in. A retried or
    duplicated delivery finds it and is neither posted nor counted again, whichever
    window is current by then (the alarm path reads calls minutes later).

A window is opened by a call that finds no current window, or one whose first call
is 15 minutes or more from its own (event time, so the alarm path's late reading
lands in the right window; not fixed clock buckets), or one already closed. Its
item is written first, then the pointer is switched to it with a compare-and-set,
so two runs never both open one: the loser counts its call in the winner's window.
The key id is hashed (``api_calls.key_digest``): the table never holds it whole.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .api_calls import ApiCall
from .calls import CLAIMS, Call
from .claims import KEY, TTL_ATTRIBUTE, ClaimError

CALLS = tuple(
    Call("dynamodb", operation, CLAIMS)
    for operation in ("BatchGetItem", "GetItem", "PutItem", "UpdateItem", "DeleteItem")
)

WINDOW_SECONDS = 15 * 60
# A window lists at most this many calls (about 80 bytes each); notable ones up to
# NOTABLE_CAP more, so a RunInstances after a thousand List calls is still named.
# Beyond, calls are only counted (``overflow``), their kinds not kept.
WINDOW_CAP = 1000
NOTABLE_CAP = 200
# Windows and counted calls are remembered a day: far beyond any redelivery, and
# long enough for the alarm path's episode reading (an episode of a day falls back).
KEEP_SECONDS = 24 * 3600
POINTER, WINDOW, COUNTED = "keyuse#", "keywin#", "apicall#"
OPEN, CLOSED = "open", "closed"
_PART = 128  # each part of a listed call
_ATTEMPTS = 4  # compare-and-set rounds before giving up (another run keeps winning)


@dataclass(frozen=True)
class Counted:
    """What counting one call did."""

    state: str  # "opened", "counted", "overflow", "repeat"
    window: str  # the window's item key
    opened: datetime  # the window's first call
    opener: bool  # this call opened the window (its first message is this call's)


@dataclass(frozen=True)
class Listed:
    """One call a window counted."""

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
    calls: tuple[Listed, ...]  # every counted call but the first, oldest id order
    overflow: int  # further calls counted past the cap (kinds not kept)
    state: str

    @property
    def further(self) -> int:
        return len(self.calls) + self.overflow


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


@dataclass
class KeyWindows:
    client: Any
    table: str
    clock: Callable[[], float] = time.time

    # ------------------------------------------------------------ counting
    def count(self, call: ApiCall) -> Counted:
        """Count one in-scope call in its window (opening one if need be)."""
        event_id = call.event_id or uuid.uuid4().hex  # no id: count it, it cannot repeat
        scope = call.window_key()
        pointer_key, counted_key = POINTER + scope, COUNTED + event_id
        member = _member(call, event_id)
        moment = _epoch(call.event_time)
        for _ in range(_ATTEMPTS):
            pointer, counted = self._read_both(pointer_key, counted_key)
            if counted is not None:
                return self._seen(counted, event_id)
            current = _s(pointer, "window")
            opened = _n(pointer, "opened")
            if current and abs(moment - opened) < WINDOW_SECONDS:
                result = self._join(current, opened, member, event_id, call)
                if result is not None:
                    return result
            window = f"{WINDOW}{scope}#{event_id}"
            if self._open(window, pointer_key, current, call, member, moment):
                return self._after_mark(window, moment, event_id, opener=True)
        raise ClaimError(f"could not count {event_id}: its window kept changing")

    def _seen(self, counted: dict[str, Any], event_id: str) -> Counted:
        window = _s(counted, "window")
        opener = window.endswith(f"#{event_id}")
        state = "opened" if opener else "repeat"
        return Counted(state, window, _when(_n(counted, "opened")), opener)

    def _join(
        self, window: str, opened: int, member: str, event_id: str, call: ApiCall
    ) -> Counted | None:
        """Add the call to the current window; None when that window is closed or gone."""
        opener = window.endswith(f"#{event_id}")  # its own window (a retry after a crash)
        cap = WINDOW_CAP + (NOTABLE_CAP if call.notable else 0)
        try:
            self.client.update_item(
                TableName=self.table,
                Key={KEY: {"S": window}},
                UpdateExpression="ADD calls :member",
                ConditionExpression=(
                    "#state = :open AND (size(calls) < :cap OR contains(calls, :one))"
                ),
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":member": {"SS": [member]},
                    ":one": {"S": member},
                    ":open": {"S": OPEN},
                    ":cap": {"N": str(cap)},
                },
            )
        except Exception as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise ClaimError(f"counting in {window}: {error}") from error
            item = self._get(window)
            if item is None or _s(item, "state") != OPEN:
                return None  # closed (its follow-up was taken) or expired: open a new one
            # Full: count it without listing it, once (the counted item says so).
            marked = self._after_mark(window, opened, event_id, opener=False)
            if marked.state == "counted":
                self._overflow(window)
                return Counted("overflow", window, marked.opened, False)
            return marked
        return self._after_mark(window, opened, event_id, opener=opener, member=member)

    def _after_mark(
        self, window: str, opened: int, event_id: str, *, opener: bool, member: str = ""
    ) -> Counted:
        """Record the call as counted in ``window``. If another delivery of it was counted
        in another window meanwhile, take it out of this one again."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    KEY: {"S": COUNTED + event_id},
                    "window": {"S": window},
                    "opened": {"N": str(opened)},
                    TTL_ATTRIBUTE: {"N": str(int(self.clock()) + KEEP_SECONDS)},
                },
                ConditionExpression=f"attribute_not_exists({KEY})",
            )
        except Exception as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise ClaimError(f"recording {event_id} as counted: {error}") from error
            earlier = self._get(COUNTED + event_id) or {}
            if _s(earlier, "window") not in ("", window) and member:
                self._forget(window, member)
            return (
                self._seen(earlier, event_id)
                if earlier
                else self._seen({"window": {"S": window}, "opened": {"N": str(opened)}}, event_id)
            )
        return Counted("opened" if opener else "counted", window, _when(opened), opener)

    def _open(
        self,
        window: str,
        pointer_key: str,
        current: str,
        call: ApiCall,
        member: str,
        moment: int,
    ) -> bool:
        """Write a new window, then make it current; False if another run switched first."""
        expires = {"N": str(int(self.clock()) + KEEP_SECONDS)}
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    KEY: {"S": window},
                    "state": {"S": OPEN},
                    "opened": {"N": str(moment)},
                    "opener": {"S": call.event_id or window.rsplit("#", 1)[-1]},
                    "calls": {"SS": [member]},
                    "account": {"S": call.account_id or "-"},
                    "who": {"S": (call.who or "-")[:_PART]},
                    "identity": {"S": call.identity_type or "-"},
                    "key": {"S": call.masked_key},
                    "ip": {"S": call.source_ip[:_PART] or "-"},
                    TTL_ATTRIBUTE: expires,
                },
                ConditionExpression=f"attribute_not_exists({KEY})",
            )
        except Exception as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise ClaimError(f"opening {window}: {error}") from error
            # Written by an earlier delivery of this call that died before the switch.
        condition = "attribute_not_exists(#window)" if not current else "#window = :current"
        values = {":current": {"S": current}} if current else {}
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    KEY: {"S": pointer_key},
                    "window": {"S": window},
                    "opened": {"N": str(moment)},
                    TTL_ATTRIBUTE: expires,
                },
                ConditionExpression=condition,
                ExpressionAttributeNames={"#window": "window"},
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        except Exception as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise ClaimError(f"switching to {window}: {error}") from error
            self._delete(window)  # nobody points at it: another run's window is current
            return False
        return True

    # ------------------------------------------------------------ the follow-up
    def close(self, window: str) -> WindowSummary | None:
        """Take a window's follow-up: no call is added to it from now on (they open the
        next one). Closing again (a retried follow-up) reads it as it was closed."""
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
            if _code(error) == "ConditionalCheckFailedException":
                return None  # expired long ago
            raise ClaimError(f"closing {window}: {error}") from error
        return _summary(window, answer.get("Attributes") or {})

    def read(self, window: str) -> WindowSummary | None:
        item = self._get(window)
        return None if item is None else _summary(window, item)

    # ------------------------------------------------------------ DynamoDB
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

    def _overflow(self, window: str) -> None:
        try:
            self.client.update_item(
                TableName=self.table,
                Key={KEY: {"S": window}},
                UpdateExpression="ADD overflow :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        except Exception as error:
            raise ClaimError(f"counting past the cap in {window}: {error}") from error

    def _forget(self, window: str, member: str) -> None:
        try:
            self.client.update_item(
                TableName=self.table,
                Key={KEY: {"S": window}},
                UpdateExpression="DELETE calls :member",
                ExpressionAttributeValues={":member": {"SS": [member]}},
            )
        except Exception:  # at worst the follow-up counts one call twice
            pass

    def _delete(self, key: str) -> None:
        try:
            self.client.delete_item(TableName=self.table, Key={KEY: {"S": key}})
        except Exception:  # it expires anyway
            pass


def _summary(window: str, item: dict[str, Any]) -> WindowSummary:
    opener = _s(item, "opener")
    members = item.get("calls", {}).get("SS", [])
    listed = tuple(
        sorted(
            (entry for m in members if (entry := _listed(m)).event_id != opener),
            key=lambda e: e.event_id,
        )
    )
    return WindowSummary(
        window=window,
        opener=opener,
        opened=_when(_n(item, "opened")),
        account_id=_s(item, "account").strip("-"),
        who=_s(item, "who"),
        identity_type=_s(item, "identity").strip("-"),
        masked_key=_s(item, "key"),
        source_ip=_s(item, "ip"),
        calls=listed,
        overflow=_n(item, "overflow"),
        state=_s(item, "state"),
    )


def _s(item: dict[str, Any] | None, name: str) -> str:
    value = (item or {}).get(name, {}).get("S")
    return value if isinstance(value, str) else ""


def _n(item: dict[str, Any] | None, name: str) -> int:
    value = (item or {}).get(name, {}).get("N")
    try:
        return int(value) if isinstance(value, str) else 0
    except ValueError:
        return 0


def _code(error: BaseException) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
