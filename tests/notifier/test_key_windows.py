"""The key windows' steps are atomic: two deliveries of the same call, interleaved with
a window closing, never leave a call in no window (or a window with no first message),
and a window's item stays small however many calls it counts.

Two KeyWindows (two Lambda runs) are driven step by step against moto: a hook runs the
other run's steps between one run's read and its write, as a real race would.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from loginwatch.notifier.api_calls import ApiCall, parse_api_call
from loginwatch.notifier.claims import ClaimError
from loginwatch.notifier.key_windows import (
    KIND_CAP,
    NOTABLE_CAP,
    OTHER,
    POINTER,
    KeyWindows,
)
from tests.conftest import load_fixture
from tests.notifier.conftest import CLAIMS_TABLE, REGION, NotifierWorld

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def call(event_id: str, at: datetime, name: str = "RunInstances", **detail: Any) -> ApiCall:
    record = copy.deepcopy(load_fixture("eventbridge/api_call_runinstances_access_key.json"))
    record = record["detail"]
    record.update(eventID=event_id, eventTime=at.strftime("%Y-%m-%dT%H:%M:%SZ"), **detail)
    if name != "RunInstances":
        record.update(eventName=name, requestParameters={})
    parsed = parse_api_call(record)
    assert parsed is not None
    return parsed


_WRITES = {"put_item", "update_item", "delete_item", "transact_write_items"}


class Hooked:
    """A DynamoDB client that runs ``hook`` once, before this run's first write (the
    other run's steps, between this run's read and its write, as in a real race)."""

    def __init__(self, client: Any, hook: Callable[[], None]):
        self._client, self._hook = client, hook

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name not in _WRITES:
            return method

        def hooked(**kwargs: Any) -> Any:
            hook, self._hook = self._hook, lambda: None
            hook()
            return method(**kwargs)

        return hooked


@pytest.fixture
def dynamodb(world: NotifierWorld) -> Any:
    return boto3.client("dynamodb", region_name=REGION)


def windows(client: Any) -> KeyWindows:
    return KeyWindows(client, CLAIMS_TABLE, sleep=lambda _: None)


class StrictTransactions:
    """DynamoDB as AWS is about expressions (moto checks it for UpdateItem only): a
    value or name an item's expressions do not use is a ValidationException."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def transact_write_items(self, **params: Any) -> Any:
        for item in params["TransactItems"]:
            (action,) = item.values()
            text = " ".join(action.get(k, "") for k in ("UpdateExpression", "ConditionExpression"))
            used = set(re.findall(r"[:#][A-Za-z0-9_]+", text))
            given = {*action.get("ExpressionAttributeValues", {}),
                     *action.get("ExpressionAttributeNames", {})}  # fmt: skip
            if given - used:
                error = {"Code": "ValidationException", "Message": f"unused {given - used}"}
                raise ClientError({"Error": error}, "TransactWriteItems")
        return self.client.transact_write_items(**params)


def pointer_of(dynamodb: Any, some: ApiCall) -> dict[str, Any]:
    key = {"eventId": {"S": POINTER + some.window_key()}}
    return dynamodb.get_item(TableName=CLAIMS_TABLE, Key=key)["Item"]


def test_a_duplicate_delivery_never_deletes_the_window_the_other_made_current(
    dynamodb: Any,
) -> None:
    """Delivery B of X reads (no window yet); delivery A of X opens W_X and Y joins it;
    then B writes. B must not undo W_X (its first message is out, Y counted in it)."""
    x, y = call("X", T0), call("Y", T0 + timedelta(seconds=5), "ListUsers")
    done: dict[str, Any] = {}

    def a_runs_first() -> None:
        done["a"] = windows(dynamodb).count(x)
        done["y"] = windows(dynamodb).count(y)

    # B's first write comes after A's whole run and Y's.
    b = windows(Hooked(dynamodb, a_runs_first)).count(x)
    assert done["a"].opener and done["y"].state == "counted"
    assert b.window == done["a"].window and b.opener  # a repeat of the first call
    summary = windows(dynamodb).close(done["a"].window)
    assert summary is not None and summary.further == 1  # Y is in it, W_X is there


def test_a_duplicate_racing_a_window_closing_never_drops_calls(dynamodb: Any) -> None:
    """O opens W_O. Delivery A of X (14 min later) reads W_O as current; W_O's follow-up
    closes it; delivery B of X opens W_X. A then writes. Every later call must land in a
    window whose first call is posted and whose follow-up is scheduled: W_X."""
    o = call("O", T0)
    first = windows(dynamodb).count(o)
    x = call("X", T0 + timedelta(minutes=14), "ListUsers")
    done: dict[str, Any] = {}

    def close_and_b() -> None:
        windows(dynamodb).close(first.window)
        done["b"] = windows(dynamodb).count(x)

    a = windows(Hooked(dynamodb, close_and_b)).count(x)
    b = done["b"]
    assert b.opener and b.state == "opened"  # B posts X and schedules W_X's follow-up
    assert a.window == b.window and a.opener  # A sees the same: posted once (claims)
    assert pointer_of(dynamodb, x)["window"]["S"] == b.window
    later = [
        windows(dynamodb).count(call(f"Z{n}", T0 + timedelta(minutes=15 + n))) for n in range(3)
    ]
    assert {c.window for c in later} == {b.window} and not any(c.opener for c in later)
    summary = windows(dynamodb).close(b.window)
    assert summary is not None and summary.further == 3


def test_two_runs_opening_at_once_make_one_window(dynamodb: Any) -> None:
    """Two different calls both find no window; the first to write opens it, the other
    is counted in it (never a second first message)."""
    x, y = call("X", T0), call("Y", T0 + timedelta(seconds=1), "ListUsers")
    done: dict[str, Any] = {}

    def y_first() -> None:
        done["y"] = windows(dynamodb).count(y)

    x_counted = windows(Hooked(dynamodb, y_first)).count(x)
    assert done["y"].opener and not x_counted.opener
    assert x_counted.window == done["y"].window


def test_a_late_call_does_not_move_the_pointer_back(dynamodb: Any) -> None:
    current = windows(dynamodb).count(call("new", T0 + timedelta(minutes=40)))
    old = [
        windows(dynamodb).count(call(f"old-{n}", T0 + timedelta(seconds=n), "ListUsers"))
        for n in range(3)
    ]
    assert old[0].opener and [o.window for o in old[1:]] == [old[0].window] * 2
    assert pointer_of(dynamodb, call("x", T0))["window"]["S"] == current.window
    newer = windows(dynamodb).count(call("new-2", T0 + timedelta(minutes=41), "ListUsers"))
    assert newer.window == current.window and not newer.opener


CALLS = 150


def test_the_window_item_stays_small_and_counts_every_call(dynamodb: Any) -> None:
    """More kinds of call than KIND_CAP and more notable calls than NOTABLE_CAP: the item
    stays bounded while every call is counted."""
    dynamodb = StrictTransactions(dynamodb)  # past the caps, each value is still used
    first = windows(dynamodb).count(call("c-0", T0))
    kinds = KIND_CAP + 20
    assert kinds < (CALLS - 1) * 4 // 5  # every kind is used
    for n in range(1, CALLS):
        at = T0 + timedelta(seconds=n)
        if n % 5 == 0:  # notable: RunInstances
            windows(dynamodb).count(call(f"c-{n}", at, awsRegion=f"region-{n % 50}"))
        else:
            windows(dynamodb).count(call(f"c-{n}", at, f"List{n % kinds}", awsRegion="us-east-1"))
    item = dynamodb.get_item(TableName=CLAIMS_TABLE, Key={"eventId": {"S": first.window}})["Item"]
    assert len(json.dumps(item)) < 8_000  # was ~90 KB at 1,000 calls: each write ~90 WCU
    summary = windows(dynamodb).close(first.window)
    further = CALLS - 1
    assert summary is not None and summary.further == further
    assert sum(n for _, n in summary.kinds) == further and len(summary.kinds) == KIND_CAP + 1
    assert summary.kinds[-1][0] == OTHER and sum(n for _, n in summary.regions) == further
    assert len(summary.calls) == NOTABLE_CAP
    notable = further // 5  # every fifth call after the first: past NOTABLE_CAP
    assert notable > NOTABLE_CAP and summary.notable_more == notable - NOTABLE_CAP


def test_a_throttled_table_is_a_claim_error_not_a_silent_post(dynamodb: Any) -> None:
    class Throttled:
        def __getattr__(self, name: str) -> Any:
            if name != "transact_write_items":
                return getattr(dynamodb, name)

            def refuse(**_: Any) -> Any:
                error = {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}
                raise ClientError({"Error": error}, "TransactWriteItems")

            return refuse

    with pytest.raises(ClaimError):
        windows(Throttled()).count(call("X", T0))
