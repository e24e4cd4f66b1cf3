"""Claim each sign-in once, so neither path (fast or alarm) reports it twice.

A claim is a conditional PutItem on the sign-in's eventID (the pattern AWS Lambda
Powertools' idempotency utility uses). It is a *lease*: a claim in state "posting"
whose lease ran out (its Lambda died mid-post, say at its timeout) may be taken over,
so a crash never turns into a silent drop. The lease lasts as long as the run that
holds it can (its remaining time, plus a margin), so a live claim is never taken over. After Slack accepted the message the claim becomes "posted" and
stays until its TTL; if the post fails the claim is released and the sign-in is
claimable again.

A sign-in whose claim is *busy* (another run holds a live lease) is not counted
as reported: that run may still fail. The caller raises ``ClaimBusy`` after
posting the rest, so Lambda retries the invocation, which then finds it posted
(skip) or free (post).

The same table counts sign-ins per burst window (``count_in_window``) so a
credential-stuffing run cannot flood the channel.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .calls import CLAIMS, Call

# Claims are conditional writes and reads, confirmed in batches; burst windows are updates.
CALLS = tuple(
    Call("dynamodb", operation, CLAIMS)
    for operation in ("PutItem", "GetItem", "BatchWriteItem", "DeleteItem", "UpdateItem")
)

KEY = "eventId"
TTL_ATTRIBUTE = "expires"
POSTING, POSTED = "posting", "posted"
# Without a deadline to follow (a run outside Lambda), a lease lasts this long: longer
# than any run, shorter than Lambda's second retry (about 3 min).
DEFAULT_LEASE_SECONDS = 90
# Reported sign-ins are remembered for a week: far beyond any redelivery or alarm window.
KEEP_SECONDS = 7 * 24 * 3600
_BATCH = 25  # BatchWriteItem's limit
# A burst window remembers at most this many sign-ins (event ids: about 40 bytes each).
BURST_CAP = 100
_MEMBERS = "sign_in_ids"


@dataclass(frozen=True)
class Placement:
    """Where a sign-in stands in its burst window."""

    count: int  # different sign-ins the window holds, this one included
    repeated: bool  # it was there already: a retried or duplicated delivery


class ClaimError(RuntimeError):
    """The claims table could not be read or written (the callers then post anyway)."""


class ClaimBusy(RuntimeError):
    """Another run is posting these sign-ins right now: retry this invocation later."""

    def __init__(self, event_ids: list[str]) -> None:
        super().__init__(
            f"{len(event_ids)} sign-in(s) are being posted by another run "
            f"({', '.join(event_ids[:3])}); retrying so none is lost if that run fails"
        )
        self.event_ids = event_ids


@dataclass
class Claims:
    """Claims made by one invocation, on one table."""

    client: Any
    table: str
    clock: Callable[[], float] = time.time
    # How long a claim of this run holds: the run's remaining time plus a margin.
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    held: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)

    def claim(self, event_id: str) -> bool:
        """True if this invocation now holds the sign-in; False if it was posted already
        or another run is posting it (then it is also listed in ``busy``)."""
        now = int(self.clock())
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    KEY: {"S": event_id},
                    "state": {"S": POSTING},
                    "lease_until": {"N": str(now + self.lease_seconds)},
                    TTL_ATTRIBUTE: {"N": str(now + KEEP_SECONDS)},
                },
                ConditionExpression=(
                    f"attribute_not_exists({KEY}) OR (#state = :posting AND lease_until < :now)"
                ),
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":posting": {"S": POSTING}, ":now": {"N": str(now)}},
                # The claim that stood in the way comes back with the refusal: no second read.
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except Exception as error:
            if error_code(error) == "ConditionalCheckFailedException":
                if self._state_of_refusal(error, event_id) != POSTED:
                    self.busy.append(event_id)
                return False
            raise ClaimError(f"claiming {event_id}: {error}") from error
        self.held.append(event_id)
        return True

    def _state_of_refusal(self, error: BaseException, event_id: str) -> str | None:
        """The state of the claim a conditional write was refused for. DynamoDB returns it
        with the refusal (ALL_OLD); an emulator that does not is asked once more."""
        response = getattr(error, "response", None)
        item = response.get("Item") if isinstance(response, dict) else None
        if isinstance(item, dict):
            return _state(item)
        return self._state(event_id)

    def _state(self, event_id: str) -> str | None:
        try:
            item = self.client.get_item(
                TableName=self.table, Key={KEY: {"S": event_id}}, ConsistentRead=True
            ).get("Item")
        except Exception as error:
            raise ClaimError(f"reading the claim on {event_id}: {error}") from error
        return _state(item or {})

    def reported(self, keys: Iterable[str]) -> bool:
        """Were all these claims posted already? Consistent reads, stopping at the first
        that was not (usually the only one: most messages have one destination). A table
        that cannot be read answers no: a repeat beats a miss."""
        wanted = list(dict.fromkeys(keys))
        try:
            return bool(wanted) and all(self._state(key) == POSTED for key in wanted)
        except ClaimError:
            return False

    def claim_all(self, event_ids: Iterable[str]) -> list[str]:
        """The ids this invocation now holds, in the given order."""
        return [e for e in event_ids if self.claim(e)]

    def confirm(self) -> str | None:
        """Slack accepted the message: every held claim becomes permanent (until its TTL).

        Never raises: the message is out, and failing now would make Lambda post it
        again. A claim left "posting" expires; at worst the sign-in is listed twice.
        Returns what went wrong, for the log line, or None.
        """
        try:
            self._confirm()
        except Exception as error:
            self.held = []
            return f"claims not confirmed (a later run may list them again): {error}"
        return None

    def _confirm(self) -> None:
        now = int(self.clock())
        for start in range(0, len(self.held), _BATCH):
            requests = [
                {
                    "PutRequest": {
                        "Item": {
                            KEY: {"S": event_id},
                            "state": {"S": POSTED},
                            TTL_ATTRIBUTE: {"N": str(now + KEEP_SECONDS)},
                        }
                    }
                }
                for event_id in self.held[start : start + _BATCH]
            ]
            pending: dict[str, Any] = {self.table: requests}
            for attempt in range(5):  # unprocessed items come back under throttling: resend
                answer = self.client.batch_write_item(RequestItems=pending)
                pending = answer.get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(0.05 * 2**attempt)
            if pending:
                raise ClaimError(f"{len(pending[self.table])} claim(s) still unprocessed")
        self.held = []

    def release(self) -> None:
        """The post failed: let the next attempt (or the other path) claim these again."""
        for event_id in self.held:
            try:
                self.client.delete_item(
                    TableName=self.table,
                    Key={KEY: {"S": event_id}},
                    ConditionExpression="#state = :posting",
                    ExpressionAttributeNames={"#state": "state"},
                    ExpressionAttributeValues={":posting": {"S": POSTING}},
                )
            except Exception:  # the lease expires anyway; the post error is what matters
                pass
        self.held = []

    def place_in_window(
        self, window_key: str, window_seconds: int, member: str
    ) -> Placement | None:
        """Add one sign-in (``member``, its event id) to a burst window: how many different
        ones the window holds now, and whether this one was there already; ``None`` once
        the window is past its cap.

        A set rather than a counter: a retry of the same sign-in (Slack was down, the
        retry queue hands it back every few minutes) must not count as a new one.
        """
        member = member or uuid.uuid4().hex  # no eventID: count it, it cannot repeat
        before = self._add_to_window(window_key, window_seconds, member)
        if before is None:
            return None
        return Placement(len(before | {member}), repeated=member in before)

    def add_to_window(self, window_key: str, window_seconds: int, member: str) -> list[str] | None:
        """Add ``member`` to a window's set; every member it holds now (``None`` when the
        window is full: far past any threshold)."""
        member = member or uuid.uuid4().hex
        before = self._add_to_window(window_key, window_seconds, member)
        return None if before is None else sorted(before | {member})

    def _add_to_window(self, window_key: str, window_seconds: int, member: str) -> set[str] | None:
        """The window's members before ``member`` was added (``None``: the window is full)."""
        now = int(self.clock())
        try:
            answer = self._count(window_key, window_seconds, now, member)
        except Exception as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return None
            raise ClaimError(f"counting the burst window: {error}") from error
        return set(answer.get("Attributes", {}).get(_MEMBERS, {}).get("SS", []))

    def _count(self, window_key: str, window_seconds: int, now: int, member: str) -> Any:
        return self.client.update_item(
            TableName=self.table,
            Key={KEY: {"S": window_key}},
            UpdateExpression="ADD #members :member SET #ttl = if_not_exists(#ttl, :expires)",
            # The item stays small whatever the burst: past the cap nobody needs the exact count.
            ConditionExpression=(
                "attribute_not_exists(#members) OR size(#members) < :cap "
                "OR contains(#members, :one)"
            ),
            ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE, "#members": _MEMBERS},
            ExpressionAttributeValues={
                ":member": {"SS": [member]},
                ":one": {"S": member},
                ":cap": {"N": str(BURST_CAP)},
                ":expires": {"N": str(now + window_seconds + 3600)},
            },
            # The set as it was: whether this member was in it tells a repeat from a new one.
            ReturnValues="ALL_OLD",
        )

    def window_members(self, window_key: str) -> list[str]:
        """A window's members, read without adding to it."""
        try:
            item = self.client.get_item(
                TableName=self.table, Key={KEY: {"S": window_key}}, ConsistentRead=True
            ).get("Item")
        except Exception as error:
            raise ClaimError(f"reading the burst window: {error}") from error
        return list((item or {}).get(_MEMBERS, {}).get("SS", []))


class _NoClaims(Claims):
    """Stands in when the table cannot be used: claims nothing, confirms nothing."""

    def __init__(self) -> None:
        super().__init__(client=None, table="")

    def claim(self, event_id: str) -> bool:
        return True

    def confirm(self) -> str | None:
        return None

    def release(self) -> None:
        pass

    def _add_to_window(self, window_key: str, window_seconds: int, member: str) -> set[str] | None:
        return set()

    def window_members(self, window_key: str) -> list[str]:
        return []

    def reported(self, keys: Iterable[str]) -> bool:
        return False


NO_CLAIMS = _NoClaims()


def _state(item: dict[str, Any]) -> str | None:
    state = item.get("state", {}).get("S")
    return state if isinstance(state, str) else None


def error_code(error: BaseException) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
