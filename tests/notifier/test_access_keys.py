"""Access keys: API calls from outside the allowlist (one message per key and address, and
one follow-up), AWS saying a key is exposed, the alarm backstop, and test events.

Real-shaped EventBridge events (tests/fixtures/eventbridge/api_call_*.json, health_*.json)
go through the handler against moto (DynamoDB claims, SQS retry queue, Logs) and a Slack
stand-in. The follow-up waits on the retry queue with DelaySeconds; ``due_follow_ups``
makes the delayed messages visible (time passing) and hands them over as the queue's
event source mapping does.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import boto3
import pytest

from loginwatch.demo.webhook_catcher import SlackReply
from loginwatch.notifier import api_calls, context, handler, protocol
from loginwatch.notifier.api_calls import mask_key, parse_api_call
from loginwatch.notifier.claims import ClaimError
from loginwatch.notifier.ipmatch import AllowList, address_outside
from loginwatch.notifier.key_windows import WINDOW_SECONDS, KeyWindows
from loginwatch.notifier.paths import PATHS, api_call, key_exposed, sign_in
from loginwatch.notifier.slack_delivery import SlackDeliveryError
from loginwatch.redeliver import lambda_record
from tests.conftest import load_fixture
from tests.notifier.conftest import (
    ACCOUNT_ID,
    ALARM_NAME,
    CLAIMS_TABLE,
    REGION,
    RETRY_QUEUE,
    NotifierWorld,
    alarm_event,
    iso,
    iter_texts,
)
from tests.notifier.test_redelivery import QUEUE_ARN, RetryQueue

KEY = "AKIAIOSFODNN7EXAMPLE"
OTHER_KEY = "AKIAJ7QH8DHBEXAMPQRS"
KEY_ALARM = "loginwatch-access-key-outside-allowlist"
EXPOSED_ALARM = "loginwatch-credentials-exposed"
KEY_RULES = [
    {"name": "outside_allowlist", "severity": "high"},
    {
        "name": "access_key_outside_allowlist",
        "severity": "high",
        "except": [
            {"user": "ci-deployer", "from": ["192.0.2.0/24"]},
            {"user": f"arn:aws:iam::{ACCOUNT_ID}:user/roamer", "from": "anywhere"},
        ],
    },
    {"name": "credentials_exposed", "severity": "critical"},
]
ALARMS = {
    ALARM_NAME: "outside_allowlist",
    KEY_ALARM: "access_key_outside_allowlist",
    EXPOSED_ALARM: "credentials_exposed",
}
NOTABLE: dict[str, dict[str, Any]] = {
    "CreateUser": {"userName": "backdoor"},
    "CreateAccessKey": {"userName": "backdoor"},
    "CreateLoginProfile": {"userName": "backdoor", "passwordResetRequired": False},
    "AttachUserPolicy": {
        "userName": "backdoor",
        "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess",
    },
    "PutUserPolicy": {"userName": "backdoor", "policyName": "all", "policyDocument": "{}"},
    "StopLogging": {"name": f"arn:aws:cloudtrail:us-east-1:{ACCOUNT_ID}:trail/loginwatch"},
    "DeleteTrail": {"name": "loginwatch"},
    "RunInstances": {
        "instancesSet": {"items": [{"imageId": "ami-1", "minCount": 4, "maxCount": 8}]},
        "instanceType": "p4d.24xlarge",
    },
}


@pytest.fixture
def keys(world: NotifierWorld, use_settings: Any) -> RetryQueue:
    """The access-key rules on, and the retry queue the follow-ups wait in."""
    use_settings(rules=KEY_RULES, alarms=ALARMS)
    return RetryQueue()


def api_event(
    at: datetime,
    event_id: str,
    *,
    name: str = "RunInstances",
    ip: str = "198.51.100.23",
    key: str = KEY,
    region: str = "ap-south-1",
    request: dict[str, Any] | None = None,
    **detail: Any,
) -> dict[str, Any]:
    """The RunInstances fixture event, turned into another call where asked."""
    event = copy.deepcopy(load_fixture("eventbridge/api_call_runinstances_access_key.json"))
    record = event["detail"]
    record.update(eventTime=iso(at), eventID=event_id, sourceIPAddress=ip, awsRegion=region)
    record["userIdentity"]["accessKeyId"] = key
    if name != "RunInstances":
        record["eventName"] = name
        record["requestParameters"] = request or {}
        record["responseElements"] = None
    elif request is not None:
        record["requestParameters"] = request
    for field, value in detail.items():
        if field == "userIdentity":
            record["userIdentity"].update(value)
        else:
            record[field] = value
    event.update(time=iso(at), region=region)
    return event


def deliver(event: dict[str, Any]) -> dict[str, Any]:
    return handler.lambda_handler(event, None)


def queued() -> list[Any]:
    """The retry queue's messages as moto holds them, delayed ones too."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    return list(sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues[RETRY_QUEUE]._messages)


def due_follow_ups(queue: RetryQueue, now: datetime | None = None) -> list[dict[str, Any]]:
    """Time passes: every delayed follow-up becomes visible and the queue's mapping hands
    them over (one batch each, as they are due at different times), the notifier's clock
    reading ``now`` if given. Their answers."""
    for message in queued():
        message.delayed_until = 0
    with contextlib.ExitStack() as stack:
        if now is not None:
            made = context.Context.for_invocation

            def at_now(lambda_context: Any, *, late_cause: str | None = None) -> Any:
                ctx = made(lambda_context, late_cause=late_cause)
                ctx.now = lambda: now
                return ctx

            stack.enter_context(mock.patch.object(context.Context, "for_invocation", at_now))
        return _hand_over(queue)


def _hand_over(queue: RetryQueue) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    while True:
        messages = queue.sqs.receive_message(
            QueueUrl=queue.url, MaxNumberOfMessages=1, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return answers
        (message,) = messages
        queue.received = [message["ReceiptHandle"]]
        answer = handler.lambda_handler(
            {"Records": [lambda_record(dict(message), QUEUE_ARN, REGION)]}, None
        )
        answers.append(answer)
        if not answer["batchItemFailures"]:
            queue.sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"])


def texts(payload: dict[str, Any]) -> str:
    return "\n".join(iter_texts(payload))


def quarter_crossing(world: NotifierWorld) -> datetime:
    """A first call 10 min before a quarter-hour boundary, its window over by now."""
    back = world.now - timedelta(minutes=32)
    boundary = back.replace(minute=back.minute - back.minute % 15, second=0, microsecond=0)
    return boundary + timedelta(minutes=15) - timedelta(minutes=10)


# ---------------------------------------------------------------- pure parts


def test_the_key_is_never_shown_whole() -> None:
    assert mask_key(KEY) == "AKIA…MPLE"
    assert mask_key("ASIAY34FZKBOKMUTVV7A") == "ASIA…VV7A"
    assert mask_key("") == "no key id recorded"
    text = f"the AWS Access Key {KEY}, belonging to IAM User deploy-bot"
    assert (
        api_calls.mask_key_ids(text)
        == "the AWS Access Key AKIA…MPLE, belonging to IAM User deploy-bot"
    )


def test_notable_calls_say_what_they_did() -> None:
    fixture = load_fixture("eventbridge/api_call_runinstances_access_key.json")["detail"]
    call = parse_api_call(fixture)
    assert call is not None and call.notable == "RunInstances 12 × m5.8xlarge"
    said = {name: api_calls.notable_detail(name, request) for name, request in NOTABLE.items()}
    assert said["RunInstances"] == "RunInstances 4–8 × p4d.24xlarge"
    assert said["AttachUserPolicy"] == "AttachUserPolicy AdministratorAccess to user backdoor"
    assert said["StopLogging"] == "StopLogging trail loginwatch"
    assert api_calls.notable_detail("DescribeInstances", {}) == ""
    stop = parse_api_call(load_fixture("eventbridge/api_call_stoplogging.json")["detail"])
    assert stop is not None and stop.notable == "StopLogging trail loginwatch-trail"


def test_paths_take_key_events_before_the_sign_in_path() -> None:
    assert PATHS.index(api_call) < PATHS.index(sign_in)
    assert PATHS.index(key_exposed) < PATHS.index(api_call)
    event = api_event(datetime.now(UTC), "x")
    assert api_call.recognises(event)
    event["source"] = "my.app"  # anyone may put such an event on the bus
    assert not api_call.recognises(event)


def test_a_test_event_address_is_outside_the_allowlist() -> None:
    allowlist = AllowList(["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"])
    assert not allowlist.contains(address_outside(allowlist))


# ---------------------------------------------------------------- one message per key


def test_the_first_call_posts_at_once_and_schedules_its_follow_up(
    world: NotifierWorld, keys: RetryQueue
) -> None:
    at = world.now.replace(microsecond=0) - timedelta(seconds=5)
    before = time.time()
    result = deliver(api_event(at, "call-1"))
    after = time.time()
    assert result["outcome"] == "posted" and result["slack_status"] == 200
    (request,) = world.slack.requests
    said = texts(request.json)
    assert KEY not in json.dumps(request.json)  # never whole
    for part in ("AKIA…MPLE", "198.51.100.23", "ap-south-1", "deploy-bot", "RunInstances"):
        assert part in said
    assert "12 × m5.8xlarge" in said and "HIGH" in said
    (message,) = queued()
    body = json.loads(message.body)
    assert body[protocol.FOLLOW_UP_MARKER].startswith("keywin#") and KEY not in message.body
    # Delayed as long as SQS allows: the window and its grace end later (the follow-up
    # then waits again: test_the_follow_up_waits_for_the_grace_after_the_window).
    assert WINDOW_SECONDS + api_call.FOLLOW_UP_GRACE_SECONDS - 5 > api_call.SQS_MAX_DELAY_SECONDS
    due = message.delayed_until / 1000
    wanted = api_call.SQS_MAX_DELAY_SECONDS
    assert before + wanted - 1 <= due <= after + wanted + 1


def test_200_calls_in_15_minutes_give_two_messages_naming_every_notable_call(
    world: NotifierWorld, keys: RetryQueue
) -> None:
    first = quarter_crossing(world)
    regions = ("ap-south-1", "us-east-1", "eu-west-1")
    notable = list(NOTABLE)
    for n in range(200):
        at = first + timedelta(seconds=n * 4.4)  # 200 calls in 14.6 min, across a quarter hour
        if n == 0:
            event = api_event(at, "call-0")  # RunInstances: 12 × m5.8xlarge
        elif n % 20 == 0:
            name = notable[n // 20 % len(notable)]
            event = api_event(at, f"call-{n}", name=name, request=NOTABLE[name], region="us-east-1")
        else:
            event = api_event(at, f"call-{n}", name="DescribeInstances", region=regions[n % 3])
        outcome = deliver(event)["outcome"]
        assert outcome == ("posted" if n == 0 else "counted"), (n, outcome)
        if n % 50 == 7:  # EventBridge delivers some twice: never counted twice
            assert deliver(event)["outcome"] == "already-reported"
    assert len(world.slack.requests) == 1
    assert [a["batchItemFailures"] for a in due_follow_ups(keys)] == [[]]
    first_message, follow_up = (texts(r.json) for r in world.slack.requests)
    assert "RunInstances" in first_message and "12 × m5.8xlarge" in first_message
    assert "199 more calls with access key AKIA…MPLE from 198.51.100.23" in follow_up
    for name in NOTABLE:  # every notable call by name, here or in the first message
        assert name in follow_up, name
    assert "4–8 × p4d.24xlarge" in follow_up and "AdministratorAccess" in follow_up
    assert "DescribeInstances" in follow_up and "×190" in follow_up
    assert all(region in follow_up for region in regions)
    assert KEY not in json.dumps([r.json for r in world.slack.requests])
    # The follow-up arriving again (scheduled at least once) posts nothing more.
    assert due_follow_ups(keys) == []
    deliver(api_event(first + timedelta(seconds=5), "call-1", name="DescribeInstances"))
    assert len(world.slack.requests) == 2


def test_two_keys_give_four_messages(world: NotifierWorld, keys: RetryQueue) -> None:
    first = quarter_crossing(world)
    for n in range(20):
        at = first + timedelta(seconds=n * 30)
        key = (KEY, OTHER_KEY)[n % 2]
        deliver(api_event(at, f"call-{n}", name="ListBuckets", key=key, region="us-east-1"))
    assert len(world.slack.requests) == 2
    due_follow_ups(keys)
    assert len(world.slack.requests) == 4
    said = [texts(r.json) for r in world.slack.requests]
    assert sum("9 more calls with access key AKIA…MPLE" in s for s in said) == 1
    assert sum("9 more calls with access key AKIA…PQRS" in s for s in said) == 1
    assert any("AKIA…MPLE" in s and "ListBuckets" in s for s in said)


def test_a_new_window_opens_15_minutes_after_the_first_call(
    world: NotifierWorld, keys: RetryQueue
) -> None:
    first = world.now.replace(microsecond=0) - timedelta(minutes=40)
    for n, minutes in enumerate((0, 5, 14.9, 15, 16, 31)):
        deliver(api_event(first + timedelta(minutes=minutes), f"c-{n}", name="ListUsers"))
    # Windows opened at 0, 15 and 31 min: three first calls; two follow-ups say something.
    assert len(world.slack.requests) == 3
    due_follow_ups(keys)
    said = [texts(r.json) for r in world.slack.requests[3:]]
    counts = sorted(re.search(r"(\d+) more calls? with", s).group(1) for s in said)  # type: ignore[union-attr]
    assert counts == ["1", "2"]


def test_another_address_is_another_window(world: NotifierWorld, keys: RetryQueue) -> None:
    at = world.now.replace(microsecond=0) - timedelta(seconds=30)
    deliver(api_event(at, "a"))
    deliver(api_event(at, "b", ip="2001:db8:ffff::9"))
    assert len(world.slack.requests) == 2


def test_a_follow_up_with_nothing_further_posts_nothing(
    world: NotifierWorld, keys: RetryQueue
) -> None:
    deliver(api_event(world.now.replace(microsecond=0) - timedelta(minutes=20), "alone"))
    (answer,) = due_follow_ups(keys)
    assert answer["batchItemFailures"] == [] and len(world.slack.requests) == 1


def test_an_early_follow_up_waits_again(world: NotifierWorld, keys: RetryQueue, capsys) -> None:
    at = world.now.replace(microsecond=0) - timedelta(seconds=10)
    deliver(api_event(at, "a"))
    deliver(api_event(at + timedelta(seconds=1), "b", name="ListUsers"))
    capsys.readouterr()
    due_follow_ups(keys)  # handed over before its time (a clock behind, say)
    assert '"outcome": "follow-up-rescheduled"' in capsys.readouterr().out
    assert len(world.slack.requests) == 1 and len(queued()) == 1


# ---------------------------------------------------------------- in scope or not


@pytest.mark.parametrize(
    ("change", "posts"),
    [
        ({}, 1),
        ({"ip": "203.0.113.40"}, 0),  # inside the allowlist
        ({"ip": "::ffff:203.0.113.40"}, 0),  # the same, IPv4-mapped
        ({"userIdentity": {"invokedBy": "cloudformation.amazonaws.com"}}, 0),
        ({"ip": "AWS Internal"}, 0),
        ({"ip": "cloudformation.amazonaws.com"}, 0),
        ({"sessionCredentialFromConsole": "true"}, 0),
        ({"userIdentity": {"type": "AssumedRole", "accessKeyId": "ASIAY34FZKBOKMUTVV7A"}}, 0),
        ({"userIdentity": {"type": "AWSService"}}, 0),
        ({"userIdentity": {"accessKeyId": "ASIAY34FZKBOKMUTVV7A"}}, 1),  # GetSessionToken
        ({"userIdentity": {"accessKeyId": ""}}, 1),  # CloudTrail may leave it empty
        ({"identity": "root"}, 1),
        ({"identity": "federated"}, 1),
        ({"eventType": "AwsServiceEvent"}, 0),
    ],
)
def test_what_is_in_scope(
    world: NotifierWorld, keys: RetryQueue, change: dict[str, Any], posts: int
) -> None:
    change = copy.deepcopy(change)
    ip = change.pop("ip", "198.51.100.23")
    shape = change.pop("identity", None)
    at = world.now.replace(microsecond=0) - timedelta(seconds=5)
    event = api_event(at, "one", ip=ip, **change)
    if shape == "root":
        event["detail"]["userIdentity"] = ROOT_IDENTITY
    elif shape == "federated":
        event["detail"]["userIdentity"] = federated_identity("ci-deployer", issuer="deploy-bot")
    result = deliver(event)
    assert len(world.slack.requests) == posts, result


def test_an_ipv4_address_an_ipv6_cidr_let_through_is_checked_exactly(
    world: NotifierWorld, use_settings: Any, keys: RetryQueue
) -> None:
    # Event Ruler lets 2000::/3 match 32.1.2.3: the allowlist's IPv6 range is no IPv4 one.
    use_settings(rules=KEY_RULES, alarms=ALARMS, allowlist=["2000::/3", "203.0.113.0/24"])
    at = world.now.replace(microsecond=0) - timedelta(seconds=5)
    assert deliver(api_event(at, "v4", ip="32.1.2.3"))["outcome"] == "posted"
    assert deliver(api_event(at, "v6", ip="2001:db8::7"))["outcome"] == "ignored-allowed"


@pytest.mark.parametrize(
    ("user", "ip", "posts"),
    [
        ("ci-deployer", "192.0.2.10", 0),  # its except CIDR
        ("ci-deployer", "198.51.100.23", 1),  # elsewhere
        ("roamer", "198.51.100.23", 0),  # by ARN, from anywhere
        ("deploy-bot", "192.0.2.10", 1),  # another user's except is not its own
    ],
)
def test_a_principals_except_networks(
    world: NotifierWorld, keys: RetryQueue, user: str, ip: str, posts: int
) -> None:
    at = world.now.replace(microsecond=0) - timedelta(seconds=5)
    identity = {"userName": user, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/{user}"}
    deliver(api_event(at, "one", ip=ip, userIdentity=identity))
    assert len(world.slack.requests) == posts


# Real-shaped userIdentity elements (CloudTrail userIdentity reference): a federated
# user's session is named by whoever called GetFederationToken; the IAM user whose key
# minted it is sessionContext.sessionIssuer. The root user has no userName.
ROOT_IDENTITY = {
    "type": "Root",
    "principalId": ACCOUNT_ID,
    "arn": f"arn:aws:iam::{ACCOUNT_ID}:root",
    "accountId": ACCOUNT_ID,
    "accessKeyId": KEY,
}


def federated_identity(session: str, *, issuer: str) -> dict[str, Any]:
    return {
        "type": "FederatedUser",
        "principalId": f"{ACCOUNT_ID}:{session}",
        "arn": f"arn:aws:sts::{ACCOUNT_ID}:federated-user/{session}",
        "accountId": ACCOUNT_ID,
        "accessKeyId": "ASIAY34FZKBOKMUTVV7A",
        "sessionContext": {
            "sessionIssuer": {
                "type": "IAMUser",
                "principalId": "AIDAEXAMPLEPRINCIPAL1",
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/{issuer}",
                "accountId": ACCOUNT_ID,
                "userName": issuer,
            },
            "attributes": {"creationDate": "2026-11-20T10:00:00Z", "mfaAuthenticated": "false"},
        },
    }


@pytest.mark.parametrize(
    ("session", "issuer", "ip", "posts"),
    [
        # A leaked key's holder names the session after an excepted user: still an alert.
        ("ci-deployer", "deploy-bot", "192.0.2.10", 1),
        ("ci-deployer", "deploy-bot", "198.51.100.23", 1),
        # A session minted by the excepted user's own key, from its CIDR: none.
        ("anything", "ci-deployer", "192.0.2.10", 0),
        ("anything", "ci-deployer", "198.51.100.23", 1),
        ("roamer", "deploy-bot", "198.51.100.23", 1),  # by ARN: the issuer's, not the session's
        ("x", "roamer", "198.51.100.23", 0),
    ],
)
def test_a_federated_users_except_is_its_issuers_never_its_session_name(
    world: NotifierWorld, keys: RetryQueue, session: str, issuer: str, ip: str, posts: int
) -> None:
    at = world.now.replace(microsecond=0) - timedelta(seconds=5)
    event = api_event(at, "one", ip=ip)
    event["detail"]["userIdentity"] = federated_identity(session, issuer=issuer)
    result = deliver(event)
    assert len(world.slack.requests) == posts, result
    if posts:
        assert f"issued by IAM user {issuer}" in texts(world.slack.requests[0].json)


def test_no_except_entry_covers_the_root_user(world: NotifierWorld, use_settings: Any) -> None:
    rules = copy.deepcopy(KEY_RULES)
    rules[1]["except"].append({"user": f"arn:aws:iam::{ACCOUNT_ID}:root", "from": "anywhere"})
    use_settings(rules=rules, alarms=ALARMS)
    RetryQueue()
    event = api_event(world.now.replace(microsecond=0) - timedelta(seconds=5), "one")
    event["detail"]["userIdentity"] = ROOT_IDENTITY
    assert deliver(event)["outcome"] == "posted"
    assert "ROOT account" in texts(world.slack.requests[0].json)


def test_the_rule_off_ignores_calls(world: NotifierWorld) -> None:
    at = world.now.replace(microsecond=0) - timedelta(seconds=5)
    assert deliver(api_event(at, "one"))["outcome"] == "ignored"
    health = load_fixture("eventbridge/health_risk_credentials_exposed.json")
    assert deliver(health)["outcome"] == "ignored"
    assert world.slack.requests == []


def test_a_hostile_user_name_and_agent_are_escaped(world: NotifierWorld, keys: RetryQueue) -> None:
    at = world.now.replace(microsecond=0) - timedelta(seconds=5)
    identity = {"userName": "<!channel> *x*\n*Source IP:* `1.2.3.4`"}
    deliver(api_event(at, "one", userIdentity=identity, userAgent="<https://evil|click> <!here>"))
    said = texts(world.slack.requests[0].json)
    assert "<!channel>" not in said and "<!here>" not in said and "<https://" not in said
    assert "&lt;!channel&gt;" in said


# ---------------------------------------------------------------- never twice


def test_a_duplicated_or_retried_delivery_never_posts_twice(
    world: NotifierWorld, keys: RetryQueue
) -> None:
    at = world.now.replace(microsecond=0) - timedelta(minutes=20)
    world.slack.script(*[SlackReply(500, "down")] * 3)
    with pytest.raises(SlackDeliveryError):
        deliver(api_event(at, "first"))  # Lambda retries it
    assert deliver(api_event(at, "first"))["outcome"] == "posted"
    assert deliver(api_event(at, "first"))["outcome"] == "already-reported"
    second = api_event(at + timedelta(seconds=3), "second", name="ListUsers")
    assert [deliver(second)["outcome"] for _ in range(3)] == ["counted", *["already-reported"] * 2]
    assert len(queued()) >= 2  # scheduled by both deliveries of the first call: at least once
    due_follow_ups(keys)
    posted = [texts(r.json) for r in world.slack.requests if r.status == 200]
    assert len(posted) == 2 and "1 more call with access key" in posted[1]


def test_a_follow_up_slack_refused_is_retried_from_the_queue(
    world: NotifierWorld, keys: RetryQueue
) -> None:
    at = world.now.replace(microsecond=0) - timedelta(minutes=20)
    deliver(api_event(at, "first"))
    deliver(api_event(at + timedelta(seconds=3), "second", name="ListUsers"))
    world.slack.script(*[SlackReply(500, "down")] * 3)
    (answer,) = due_follow_ups(keys)
    assert answer["batchItemFailures"]  # hidden for its backoff, then tried again
    keys.backoff_elapses()
    keys.poll()
    assert sum(r.status == 200 for r in world.slack.requests) == 2


# ---------------------------------------------------------------- AWS says: exposed


def test_the_same_health_event_from_both_regions_gives_one_message(
    world: NotifierWorld, keys: RetryQueue
) -> None:
    east = load_fixture("eventbridge/health_risk_credentials_exposed.json")
    west = load_fixture("eventbridge/health_risk_credentials_exposed_us_west_2.json")
    assert deliver(east)["outcome"] == "posted"
    assert deliver(west)["outcome"] == "already-reported"
    (request,) = world.slack.requests
    said = texts(request.json)
    assert KEY not in json.dumps(request.json)
    for part in ("AKIA…MPLE", "deploy-bot", "AWS_RISK_CREDENTIALS_EXPOSED", "CRITICAL"):
        assert part in said
    assert "publicly available online" in said  # what AWS says
    assert "Deactivate the key" in said and "RunInstances" in said and "every region" in said


def test_any_risk_event_type_counts(world: NotifierWorld, keys: RetryQueue) -> None:
    event = load_fixture("eventbridge/health_risk_credentials_exposed.json")
    event["detail"]["eventTypeCode"] = "AWS_RISK_IAM_QUARANTINE"
    event["detail"]["eventArn"] += "-other"
    assert deliver(event)["outcome"] == "posted"
    event["detail"]["service"] = "EC2"  # not a RISK event
    event["detail"]["eventArn"] += "-ec2"
    assert deliver(event)["outcome"] == "ignored"


def test_the_quarantine_attachment_gives_one_message(
    world: NotifierWorld, keys: RetryQueue
) -> None:
    event = load_fixture("eventbridge/api_call_quarantine_attach.json")
    assert deliver(event)["outcome"] == "posted"
    assert deliver(event)["outcome"] == "already-reported"
    (request,) = world.slack.requests
    said = texts(request.json)
    assert "AWS quarantined IAM user deploy-bot" in said
    assert "AWSCompromisedKeyQuarantineV3" in said and "Deactivate the key" in said


# ---------------------------------------------------------------- the alarm backstop


def key_alarm_event(world: NotifierWorld, name: str = KEY_ALARM, **overrides: Any) -> dict:
    return alarm_event(state_change_time=world.now, AlarmName=name, **overrides)


def test_the_alarm_posts_a_call_the_fast_path_missed_and_not_one_it_reported(
    world: NotifierWorld, keys: RetryQueue
) -> None:
    at = world.now.replace(microsecond=0) - timedelta(minutes=4)
    seen = api_event(at, "seen")
    same_window = api_event(at + timedelta(seconds=20), "missed-1", name="CreateUser",
                            request=NOTABLE["CreateUser"])  # fmt: skip
    other_address = api_event(at + timedelta(seconds=40), "missed-2", ip="198.51.100.99")
    allowed = api_event(at, "inside", ip="203.0.113.5")
    assert deliver(seen)["outcome"] == "posted"  # the fast path saw this one only
    world.trail.put(*[(at, e["detail"]) for e in (seen, same_window, other_address, allowed)])
    result = deliver(key_alarm_event(world))
    assert result["outcome"] == "posted", result
    assert len(world.slack.requests) == 2
    assert "198.51.100.99" in texts(world.slack.requests[1].json)
    assert deliver(key_alarm_event(world))["outcome"] == "already-reported"  # SNS again
    assert len(world.slack.requests) == 2
    due_follow_ups(keys, now=world.now + timedelta(minutes=20))  # both windows over
    (follow_up,) = [texts(r.json) for r in world.slack.requests[2:]]
    assert "1 more call" in follow_up and "CreateUser" in follow_up


def test_the_exposed_alarm_reads_the_quarantine_from_the_trail(
    world: NotifierWorld, keys: RetryQueue
) -> None:
    record = load_fixture("eventbridge/api_call_quarantine_attach.json")["detail"]
    record["eventTime"] = iso(world.now - timedelta(minutes=3))
    world.trail.put((world.now - timedelta(minutes=3), record))
    assert deliver(key_alarm_event(world, EXPOSED_ALARM))["outcome"] == "posted"
    event = load_fixture("eventbridge/api_call_quarantine_attach.json")
    assert deliver(event)["outcome"] == "already-reported"  # the fast path, later
    assert len(world.slack.requests) == 1


def test_an_alarm_with_nothing_in_its_window_says_so(
    world: NotifierWorld, keys: RetryQueue
) -> None:
    assert deliver(key_alarm_event(world))["outcome"] == "posted-empty-window"
    assert "no API call signed with an access key" in texts(world.slack.requests[0].json)


# ---------------------------------------------------------------- test events


@pytest.mark.parametrize("rule", ["access_key_outside_allowlist", "credentials_exposed"])
def test_test_events_post_a_labelled_test_routed_as_their_rule(
    world: NotifierWorld, keys: RetryQueue, rule: str
) -> None:
    ip = address_outside(AllowList(["203.0.113.0/24"]))
    detail_type, detail = protocol.marked_test_event("t-key-1", "eu-west-1", rule, ip, ACCOUNT_ID)
    event = {
        "version": "0",
        "id": "1",
        "detail-type": detail_type,
        "source": protocol.TEST_EVENT_SOURCE,
        "account": ACCOUNT_ID,
        "time": iso(world.now),
        "region": "eu-west-1",
        "resources": [],
        "detail": detail,
    }
    result = deliver(event)
    assert result["outcome"] == "test-posted" and result["test_id"] == "t-key-1"
    said = texts(world.slack.requests[0].json)
    assert "TEST" in said and rule in said and "No access key was used" in said
    assert queued() == []  # a test opens no window


# ---------------------------------------------------------------- Slack takes them


def test_slack_takes_the_four_messages_whatever_went_into_them() -> None:
    from loginwatch.notifier.api_calls import KeyExposure
    from loginwatch.notifier.key_windows import Listed, WindowSummary
    from loginwatch.notifier.rules import Rule
    from loginwatch.notifier.slack_message import (
        build_key_call_message,
        build_key_exposed_message,
        build_key_follow_up_message,
    )
    from tests.notifier.block_kit import assert_slack_takes

    hostile = "<!channel> & `x` *y*\n" * 40
    rule = Rule("access_key_outside_allowlist", "high")
    exposed = Rule("credentials_exposed", "critical")
    record = load_fixture("eventbridge/api_call_runinstances_access_key.json")["detail"]
    record["userIdentity"]["userName"] = hostile
    record["userAgent"] = hostile
    record["requestParameters"]["instanceType"] = hostile
    call = parse_api_call(record)
    assert call is not None
    listed = tuple(
        Listed(f"e-{n}", hostile[:60] if n % 7 else "RunInstances", f"region-{n % 30}",
               f"RunInstances {n} × {hostile[:50]}" if n % 3 == 0 else "")
        for n in range(1200)
    )  # fmt: skip
    summary = WindowSummary(
        "keywin#x", "e-0", datetime(2026, 11, 20, tzinfo=UTC), ACCOUNT_ID, hostile,
        "IAMUser", "AKIA…MPLE", "198.51.100.23", listed, 5000, "closed",
    )  # fmt: skip
    health = KeyExposure(
        "arn", "health", ACCOUNT_ID, "AWS_RISK_CREDENTIALS_EXPOSED", (KEY,) * 20, "deploy-bot",
        hostile * 5 + KEY, "us-east-1", None,
    )  # fmt: skip
    quarantine = KeyExposure(
        "id", "quarantine", ACCOUNT_ID, "AttachUserPolicy", (), hostile, "", "us-east-1",
        datetime(2026, 11, 20, tzinfo=UTC), policy_arn=api_calls.QUARANTINE_POLICY_PREFIX,
        event_id="e",
    )  # fmt: skip
    payloads = [
        build_key_call_message(call, rule=rule, window_minutes=15, via="fast path",
                               late="delayed 3 min: x", mention="here"),
        build_key_follow_up_message(summary, rule=rule, window_minutes=15, mention="channel"),
        build_key_exposed_message(health, rule=exposed, via="AWS Health (us-east-1)"),
        build_key_exposed_message(quarantine, rule=exposed, via="alarm x"),
    ]  # fmt: skip
    for payload in payloads:
        assert_slack_takes(payload)
        said = json.dumps(payload)
        assert KEY not in said and "<!channel> &" not in said


# ---------------------------------------------------------------- review findings


def test_the_follow_up_waits_for_the_grace_after_the_window(
    world: NotifierWorld, keys: RetryQueue
) -> None:
    """A call made just before the window ends reaches the notifier within the grace:
    a follow-up taken in the grace would close the window without it."""
    opened = world.now.replace(microsecond=0) - timedelta(minutes=20)
    deliver(api_event(opened, "first"))
    deliver(api_event(opened + timedelta(seconds=10), "second", name="ListUsers"))
    in_grace = opened + timedelta(seconds=WINDOW_SECONDS + api_call.FOLLOW_UP_GRACE_SECONDS // 2)
    (answer,) = due_follow_ups(keys, now=in_grace)
    assert answer["batchItemFailures"] == [] and len(world.slack.requests) == 1
    assert len(queued()) == 1  # waits again
    # The call made in the window's last second, arriving now: still counted.
    last = api_event(opened + timedelta(seconds=WINDOW_SECONDS - 1), "last", name="ListUsers")
    assert deliver(last)["outcome"] == "counted"
    after = opened + timedelta(seconds=WINDOW_SECONDS + api_call.FOLLOW_UP_GRACE_SECONDS + 1)
    due_follow_ups(keys, now=after)
    assert "2 more calls with access key AKIA…MPLE" in texts(world.slack.requests[1].json)


def test_the_first_message_does_not_wait_on_the_queue(
    world: NotifierWorld, keys: RetryQueue
) -> None:
    at = world.now.replace(microsecond=0) - timedelta(seconds=5)
    with mock.patch.object(api_call, "schedule_follow_up", side_effect=RuntimeError("sqs down")):
        with pytest.raises(RuntimeError, match="sqs down"):
            deliver(api_event(at, "first"))  # posted, then raised: Lambda retries it
    assert len(world.slack.requests) == 1 and queued() == []
    assert deliver(api_event(at, "first"))["outcome"] == "already-reported"
    assert len(world.slack.requests) == 1 and len(queued()) == 1  # scheduled by the retry


def test_a_table_that_cannot_count_never_floods_the_channel(
    world: NotifierWorld, keys: RetryQueue
) -> None:
    at = world.now.replace(microsecond=0) - timedelta(minutes=4)
    events = [api_event(at + timedelta(seconds=n), f"c-{n}", name="ListUsers") for n in range(30)]
    with mock.patch.object(KeyWindows, "count", side_effect=ClaimError("throttled")):
        for event in events:  # the fast path: each raises for Lambda's retry, none posts
            with pytest.raises(ClaimError):
                deliver(event)
        assert world.slack.requests == []
        # The alarm path reads them all at once: one message for the key and address.
        world.trail.put(*[(at, e["detail"]) for e in events])
        assert deliver(key_alarm_event(world))["outcome"] == "posted"
    (request,) = world.slack.requests
    assert "30 call(s) with this key from this address" in texts(request.json)


def test_a_follow_up_whose_window_is_gone_says_what_it_knows(
    world: NotifierWorld, keys: RetryQueue
) -> None:
    at = world.now.replace(microsecond=0) - timedelta(minutes=20)
    deliver(api_event(at, "first"))
    body = json.loads(queued()[0].body)
    boto3.client("dynamodb", region_name=REGION).delete_item(
        TableName=CLAIMS_TABLE, Key={"eventId": {"S": body[protocol.FOLLOW_UP_MARKER]}}
    )  # expired (a follow-up far late)
    (answer,) = due_follow_ups(keys)
    assert answer["batchItemFailures"] == []
    said = texts(world.slack.requests[1].json)
    assert "its count is lost" in said and "AKIA…MPLE" in said and "198.51.100.23" in said
    assert "deploy-bot" in said


def test_a_health_event_without_its_arn_is_posted_once(
    world: NotifierWorld, keys: RetryQueue
) -> None:
    event = load_fixture("eventbridge/health_risk_credentials_exposed.json")
    del event["detail"]["eventArn"]
    event["detail"]["affectedEntities"].append(
        {"entityValue": f"arn:aws:iam::{ACCOUNT_ID}:user/deploy-bot"}
    )
    assert deliver(event)["outcome"] == "posted"
    assert deliver(event)["outcome"] == "already-reported"  # by EventBridge's id
    said = texts(world.slack.requests[0].json)
    assert f"arn:aws:iam::{ACCOUNT_ID}:user/deploy-bot" in said and "AKIA…MPLE" in said
    event["detail"]["service"] = "EC2"
    event["id"] = "other"
    assert deliver(event)["reason"] == "an event that is no RISK event"


def test_a_call_without_a_key_id_reads_well(world: NotifierWorld, keys: RetryQueue) -> None:
    at = world.now.replace(microsecond=0) - timedelta(seconds=5)
    deliver(api_event(at, "one", userIdentity={"accessKeyId": ""}))
    said = texts(world.slack.requests[0].json)
    assert "no key id recorded used" not in said
    assert "no access key id recorded" in said
