"""The fast path: EventBridge sign-in events, and no sign-in reported twice across paths."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from loginwatch.demo.webhook_catcher import SlackReply
from loginwatch.notifier import aws_clients, context, handler, protocol
from loginwatch.notifier.claims import KEY, POSTED, POSTING, ClaimBusy
from loginwatch.notifier.paths import sign_in as fast_path
from loginwatch.notifier.slack_delivery import SlackDeliveryError
from tests.conftest import load_fixture
from tests.notifier.conftest import (
    CLAIMS_TABLE,
    REGION,
    NotifierWorld,
    alarm_event,
    cloudtrail_record,
    iso,
    iter_texts,
)
from tests.notifier.test_handler import only_log_line, sign_in_sections


def eventbridge_event(
    world: NotifierWorld,
    kind: str,
    seconds_ago: float = 4,
    at: datetime | None = None,
    **overrides: Any,
):
    """The fixture EventBridge event carrying a fixture CloudTrail record as its detail."""
    event = copy.deepcopy(load_fixture("eventbridge/console_signin_event.json"))
    moment = at or (world.now - timedelta(seconds=seconds_ago)).replace(microsecond=0)
    event["detail"] = cloudtrail_record(kind, eventTime=iso(moment), **overrides)
    event["time"] = iso(moment)
    return event, moment


def deliver(event: dict[str, Any]) -> dict[str, Any]:
    return handler.lambda_handler(event, None)


def claim_state(event_id: str) -> str | None:
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=CLAIMS_TABLE, Key={KEY: {"S": event_id}}
    )
    return item.get("Item", {}).get("state", {}).get("S")


def test_outside_sign_in_is_posted_once_saying_it_came_fast(world: NotifierWorld, capsys) -> None:
    event, _ = eventbridge_event(world, "alice", seconds_ago=4)
    result = deliver(event)
    assert result["outcome"] == "posted" and result["slack_status"] == 200
    (request,) = world.slack.requests
    payload = request.json
    (section,) = sign_in_sections(payload)
    assert "`198.51.100.23`" in section and "alice" in section
    context = next(t for t in iter_texts(payload) if "after the sign-in" in t)
    assert "after the sign-in" in context
    seconds = int(context.split("sent ")[1].split(" s ")[0])
    assert 4 <= seconds < 60  # measured from the record's eventTime, not the fixture's
    assert "fast path" in payload["text"]
    assert only_log_line(capsys.readouterr().out) == result
    assert claim_state(event["detail"]["eventID"]) == "posted"


@pytest.mark.parametrize(
    ("kind", "posts"),
    [
        ("alice", 1),  # IPv4, outside
        ("root", 1),  # root, outside
        ("sso", 1),  # federated, outside (no-MFA rules come with issue 13)
        ("hostile", 1),
        ("failure", 0),  # a failed sign-in alone alerts on no path
        ("bob", 0),  # 203.0.113.10: inside
        ("ipv6", 0),  # 2001:db8:85a3::… is not in 2001:db8:1::/48: see below
    ],
)
def test_each_fixture_record_by_the_fast_path(
    world: NotifierWorld, use_settings: Any, kind: str, posts: int
) -> None:
    if kind == "ipv6":  # put the IPv6 source inside the allowlist, written expanded
        use_settings(allowlist=["203.0.113.0/24", "2001:0db8:85a3:0000::/64"])
    deliver(eventbridge_event(world, kind)[0])
    assert len(world.slack.requests) == posts


def test_ipv6_outside_posts_and_escapes_the_user_agent(world: NotifierWorld) -> None:
    deliver(eventbridge_event(world, "ipv6")[0])
    deliver(eventbridge_event(world, "hostile")[0])
    ipv6, hostile = (r.json for r in world.slack.requests)
    assert "2001:db8:85a3::8a2e:370:7334" in sign_in_sections(ipv6)[0]
    raw = "\n".join(iter_texts(hostile))
    assert "<!channel>" not in raw and "&lt;!channel&gt;" in raw
    assert "<https://" not in raw


def test_test_event_posts_a_labelled_test_and_logs_its_id(world: NotifierWorld) -> None:
    event, _ = eventbridge_event(world, "alice")
    event["source"] = protocol.TEST_EVENT_SOURCE
    event["detail-type"] = protocol.TEST_EVENT_DETAIL_TYPE
    event["detail"] = protocol.marked_event_detail("t123-abc", "eu-west-1")
    result = deliver(event)
    assert result["outcome"] == "test-posted" and result["test_id"] == "t123-abc"
    payload = world.slack.requests[0].json
    assert "TEST" in payload["text"] and "fast path: EventBridge (eu-west-1)" in payload["text"]


def test_a_fake_test_event_cannot_pass_for_a_sign_in(world: NotifierWorld) -> None:
    event, _ = eventbridge_event(world, "root")
    event["source"] = protocol.TEST_EVENT_SOURCE  # anyone with PutEvents could send this
    result = deliver(event)
    assert result["outcome"] == "ignored" and world.slack.requests == []


# ---------------------------------------------------------------- no sign-in twice


def test_alarm_window_does_not_list_what_the_fast_path_reported(world: NotifierWorld) -> None:
    fast_event, moment = eventbridge_event(world, "alice", seconds_ago=180)
    deliver(fast_event)
    world.trail.put((moment, fast_event["detail"]))
    other = world.now - timedelta(minutes=2)
    root = cloudtrail_record("root", eventTime=iso(other))
    world.trail.put((other, root))
    result = handler.lambda_handler(alarm_event(state_change_time=world.now), None)
    assert result["outcome"] == "posted" and result["events"] == 1
    alarm_message = world.slack.requests[1].json
    (section,) = sign_in_sections(alarm_message)
    assert "ROOT" in section  # the one the fast path had not seen
    assert any("1 more already reported by the fast path" in t for t in iter_texts(alarm_message))


def test_alarm_posts_nothing_when_the_fast_path_reported_everything(world: NotifierWorld) -> None:
    fast_event, moment = eventbridge_event(world, "alice", seconds_ago=120)
    deliver(fast_event)
    world.trail.put((moment, fast_event["detail"]))
    result = handler.lambda_handler(alarm_event(state_change_time=world.now), None)
    assert result["outcome"] == "already-reported"
    assert len(world.slack.requests) == 1


def _lose_the_claim_race(event: dict[str, Any], state: str) -> Stubber:
    """The notifier's DynamoDB client, answering as AWS does when another run claimed the
    sign-in a moment before this one: its claim comes back with the refusal (ALL_OLD)."""
    event_id = event["detail"]["eventID"]
    stubber = Stubber(aws_clients.client("dynamodb", REGION))
    stubber.add_response("get_item", {})  # not reported yet
    stubber.add_response("update_item", {})  # first in its burst window
    stubber.add_client_error(
        "put_item",
        service_error_code="ConditionalCheckFailedException",
        service_message="The conditional request failed",
        http_status_code=400,
        modeled_fields={
            "Item": {KEY: {"S": event_id}, "state": {"S": state}, "lease_until": {"N": "9"}}
        },
    )
    return stubber


def test_losing_the_race_to_a_run_still_posting_retries_later(world: NotifierWorld) -> None:
    """Two deliveries of one event at once: the loser must neither post nor call it
    reported (the winner may still fail), so it fails for Lambda to retry."""
    event, _ = eventbridge_event(world, "alice")
    with _lose_the_claim_race(event, POSTING) as stubber:
        with pytest.raises(ClaimBusy):
            deliver(event)
        stubber.assert_no_pending_responses()
    assert world.slack.requests == []


def test_losing_the_race_to_a_run_that_posted_is_already_reported(world: NotifierWorld) -> None:
    event, _ = eventbridge_event(world, "alice")
    # No GetItem is queued: the refusal itself says the claim was posted.
    with _lose_the_claim_race(event, POSTED) as stubber:
        assert deliver(event)["outcome"] == "already-reported"
        stubber.assert_no_pending_responses()
    assert world.slack.requests == []


def test_a_failed_post_leaves_the_sign_in_claimable(world: NotifierWorld) -> None:
    event, _ = eventbridge_event(world, "alice")
    event_id = event["detail"]["eventID"]
    world.slack.script(SlackReply(500, "down"), SlackReply(500, "down"), SlackReply(500, "down"))
    with pytest.raises(SlackDeliveryError):
        deliver(event)
    assert claim_state(event_id) is None  # released, not stuck "posting"
    result = deliver(event)  # Lambda's retry of the same event
    assert result["outcome"] == "posted"
    assert claim_state(event_id) == "posted"


def test_a_claim_left_by_a_crashed_run_is_taken_over_after_its_lease(world: NotifierWorld) -> None:
    event, _ = eventbridge_event(world, "alice")
    event_id = event["detail"]["eventID"]
    boto3.client("dynamodb", region_name=REGION).put_item(
        TableName=CLAIMS_TABLE,
        Item={KEY: {"S": event_id}, "state": {"S": POSTING}, "lease_until": {"N": "1"}},
    )
    assert deliver(event)["outcome"] == "posted"


def test_a_live_claim_of_another_run_is_respected(world: NotifierWorld) -> None:
    event, _ = eventbridge_event(world, "alice")
    event_id = event["detail"]["eventID"]
    boto3.client("dynamodb", region_name=REGION).put_item(
        TableName=CLAIMS_TABLE,
        Item={KEY: {"S": event_id}, "state": {"S": POSTING}, "lease_until": {"N": "9999999999"}},
    )
    # Not "reported": that run may still fail. This invocation fails so Lambda retries it.
    with pytest.raises(ClaimBusy):
        deliver(event)
    assert world.slack.requests == []


def test_an_alarm_posts_what_it_holds_and_retries_for_what_another_run_is_posting(
    world: NotifierWorld,
) -> None:
    busy_event, busy_at = eventbridge_event(world, "alice", seconds_ago=200)
    root_at = world.now - timedelta(minutes=2)
    world.trail.put((busy_at, busy_event["detail"]))
    world.trail.put((root_at, cloudtrail_record("root", eventTime=iso(root_at))))
    boto3.client("dynamodb", region_name=REGION).put_item(
        TableName=CLAIMS_TABLE,
        Item={
            KEY: {"S": busy_event["detail"]["eventID"]},
            "state": {"S": POSTING},
            "lease_until": {"N": "9999999999"},
        },
    )
    with pytest.raises(ClaimBusy):
        handler.lambda_handler(alarm_event(state_change_time=world.now), None)
    (posted,) = (r.json for r in world.slack.requests)
    assert "ROOT" in sign_in_sections(posted)[0]  # what it held went out at once
    # The other run finishes; Lambda's retry of the alarm then posts nothing more.
    boto3.client("dynamodb", region_name=REGION).put_item(
        TableName=CLAIMS_TABLE,
        Item={KEY: {"S": busy_event["detail"]["eventID"]}, "state": {"S": POSTED}},
    )
    retry = handler.lambda_handler(alarm_event(state_change_time=world.now), None)
    assert retry["outcome"] == "already-reported" and len(world.slack.requests) == 1


def test_a_sign_in_that_never_came_through_eventbridge_is_reported_by_the_alarm(
    world: NotifierWorld,
) -> None:
    moment = world.now - timedelta(minutes=3)
    world.trail.put((moment, cloudtrail_record("alice", eventTime=iso(moment))))
    result = handler.lambda_handler(alarm_event(state_change_time=world.now), None)
    assert result["outcome"] == "posted" and result["events"] == 1
    assert not any("already reported" in t for t in iter_texts(world.slack.requests[0].json))


# ---------------------------------------------------------------- bursts


def test_a_burst_gets_a_bounded_number_of_messages_and_every_sign_in_counted(
    world: NotifierWorld,
) -> None:
    events = []
    # All in one burst window (the previous one: already over, inside the alarm's window).
    window = fast_path.BURST_WINDOW_SECONDS
    start = datetime.fromtimestamp((int(world.now.timestamp()) // window - 1) * window, UTC)
    for n in range(100):
        event, moment = eventbridge_event(
            world,
            "alice",
            at=start + timedelta(seconds=n // 2),
            eventID=f"burst-{n:03d}",
            sourceIPAddress=f"198.51.100.{n + 1}",
        )
        events.append((event, moment))
    outcomes = [deliver(event)["outcome"] for event, _ in events]
    posted = fast_path.POSTED_PER_WINDOW
    assert outcomes[:posted] == ["posted"] * posted
    assert outcomes[posted] == "burst-notice"
    assert set(outcomes[posted + 1 :]) == {"deferred-to-digest"}
    world.trail.put(*((moment, event["detail"]) for event, moment in events))
    result = handler.lambda_handler(alarm_event(state_change_time=world.now), None)
    assert result["outcome"] == "posted" and result["events"] == 100 - posted
    messages = [r.json for r in world.slack.requests]
    assert len(messages) == posted + 2 <= 10
    digest = messages[-1]
    assert digest["blocks"][0]["text"]["text"].startswith(f":warning: {100 - posted} console")
    assert any(f"{posted} more already reported" in t for t in iter_texts(digest))


def test_without_a_usable_claims_table_both_paths_still_post(world: NotifierWorld) -> None:
    """A repeat beats a miss: DynamoDB throttled, denied or the table deleted."""
    boto3.client("dynamodb", region_name=REGION).delete_table(TableName=CLAIMS_TABLE)
    event, moment = eventbridge_event(world, "alice")
    fast = deliver(event)
    assert fast["outcome"] == "posted" and "without de-duplication" in fast["reason"]
    world.trail.put((moment, event["detail"]))
    alarm = handler.lambda_handler(alarm_event(state_change_time=world.now), None)
    assert alarm["outcome"] == "posted" and "without de-duplication" in alarm["reason"]
    assert len(world.slack.requests) == 2


def _one_window(world: NotifierWorld, count: int) -> list[dict[str, Any]]:
    """``count`` sign-ins from outside, all in one burst window that is already over."""
    window = fast_path.BURST_WINDOW_SECONDS
    start = datetime.fromtimestamp((int(world.now.timestamp()) // window - 1) * window, UTC)
    return [
        eventbridge_event(
            world,
            "alice",
            at=start + timedelta(seconds=n),
            eventID=f"window-{n}",
            sourceIPAddress=f"198.51.100.{n + 1}",
        )[0]
        for n in range(count)
    ]


def test_a_late_or_repeated_delivery_sets_off_no_burst_notice(world: NotifierWorld) -> None:
    """Three fast-path posts, then the alarm's digest reports a fourth sign-in EventBridge
    had not delivered yet. Its late delivery, and a repeated delivery of the first, are
    reported already: no notice about a burst the digest has listed."""
    first, second, third, fourth = _one_window(world, 4)
    assert [deliver(e)["outcome"] for e in (first, second, third)] == ["posted"] * 3
    world.trail.put(
        *((datetime.fromisoformat(e["time"]), e["detail"]) for e in (first, second, third, fourth))
    )
    digest = handler.lambda_handler(alarm_event(state_change_time=world.now), None)
    assert digest["outcome"] == "posted" and digest["events"] == 1
    assert len(world.slack.requests) == 4

    assert deliver(fourth)["outcome"] == "already-reported"  # late
    assert deliver(copy.deepcopy(first))["outcome"] == "already-reported"  # repeated
    assert len(world.slack.requests) == 4


def test_the_burst_notice_goes_out_once_per_window(world: NotifierWorld) -> None:
    events = _one_window(world, 6)
    outcomes = [deliver(e)["outcome"] for e in events[:4]]
    assert outcomes == ["posted", "posted", "posted", "burst-notice"]
    # Repeated deliveries: of the one that set the notice off, and of the first.
    assert deliver(copy.deepcopy(events[3]))["outcome"] == "deferred-to-digest"
    assert deliver(copy.deepcopy(events[0]))["outcome"] == "already-reported"
    assert [deliver(e)["outcome"] for e in events[4:]] == ["deferred-to-digest"] * 2
    notices = [r.json for r in world.slack.requests if "alarm digest" in r.json["text"]]
    assert len(notices) == 1 and len(world.slack.requests) == 4
    assert notices[0]["text"].startswith("4 console sign-ins")


def test_a_claim_lasts_as_long_as_its_run_can_and_no_longer(world: NotifierWorld) -> None:
    """The lease follows the run's real deadline (Lambda's remaining time), so a live claim
    is never taken over and a dead run's claim frees soon after its timeout."""

    class LambdaContext:
        def __init__(self, millis: int) -> None:
            self.millis = millis

        def get_remaining_time_in_millis(self) -> int:
            return self.millis

    for remaining, event_id in ((12_000, "short-run"), (900_000, "long-run")):
        claims = context.Context.for_invocation(LambdaContext(remaining)).claims()
        claims.clock = lambda: 1_000_000.0
        assert claims.claim(event_id)
        item = boto3.client("dynamodb", region_name=REGION).get_item(
            TableName=CLAIMS_TABLE, Key={KEY: {"S": event_id}}
        )["Item"]
        lease = int(item["lease_until"]["N"]) - 1_000_000
        assert remaining / 1000 < lease <= remaining / 1000 + context.LEASE_MARGIN_SECONDS
