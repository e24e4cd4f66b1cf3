"""Tamper alerts: a change that can switch loginwatch off is posted at once, critical, once;
loginwatch's own setup and teardown are posted once per run as maintenance.

Real-shaped EventBridge events (tests/fixtures/eventbridge/api_call_stoplogging.json,
api_call_putrule_setup.json) go through the handler against moto (DynamoDB claims, SQS
retry queue) and a Slack stand-in; ``due_follow_ups`` lets the maintenance window end.
"""

from __future__ import annotations

import copy
import ipaddress
import json
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest

from loginwatch.notifier import handler, protocol
from loginwatch.notifier.api_calls import mask_key
from loginwatch.notifier.claims import ClaimError
from loginwatch.notifier.ipmatch import AllowList, address_outside
from loginwatch.notifier.key_windows import WINDOW_SECONDS, KeyWindows
from loginwatch.notifier.paths import PATHS, api_call, drill_event, key_follow_up, tamper
from loginwatch.notifier.tamper import Own, parse_tamper
from tests.conftest import load_fixture
from tests.notifier.conftest import (
    ACCOUNT_ID,
    ALARM_NAME,
    NotifierWorld,
    alarm_event,
    iso,
    iter_texts,
)
from tests.notifier.test_access_keys import due_follow_ups, queued
from tests.notifier.test_redelivery import RetryQueue

OUTSIDER_KEY = "AKIAI44QH8DHBEXAMPLE"
SETUP_AGENT = "Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 Botocore/1.35.0 loginwatch/0.1.0 (setup)"
TEARDOWN_AGENT = SETUP_AGENT.replace("(setup)", "(teardown)")
RULES = [
    {"name": "outside_allowlist", "severity": "high"},
    {"name": "tamper", "severity": "critical"},
]
# The backstop's two alarms (names.RULE_RESOURCES: CIS CloudWatch.5's, loginwatch's own).
CIS_ALARM = "loginwatch-cis-trail-changes"
OWN_ALARM = "loginwatch-tamper-own-resources"
ALARMS = {ALARM_NAME: "outside_allowlist", CIS_ALARM: "tamper", OWN_ALARM: "tamper"}


@pytest.fixture
def queue(world: NotifierWorld, use_settings: Any) -> RetryQueue:
    use_settings(rules=RULES, alarms=ALARMS)
    return RetryQueue()


def stop_logging(at: datetime, event_id: str = "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f") -> dict:
    event = copy.deepcopy(load_fixture("eventbridge/api_call_stoplogging.json"))
    event["detail"].update(eventTime=iso(at), eventID=event_id)
    return event


def own_change(at: datetime, index: int, agent: str = SETUP_AGENT) -> dict[str, Any]:
    """One change of a loginwatch run (the PutRule fixture, varied per index)."""
    event = copy.deepcopy(load_fixture("eventbridge/api_call_putrule_setup.json"))
    record = event["detail"]
    record.update(eventTime=iso(at), eventID=f"0000{index:04d}-run", userAgent=agent)
    kinds = [
        ("events.amazonaws.com", "PutRule", {"name": f"loginwatch-console-sign-in-{index}"}),
        ("events.amazonaws.com", "PutTargets", {"rule": "loginwatch-console-sign-in"}),
        ("monitoring.amazonaws.com", "PutMetricAlarm", {"alarmName": "loginwatch-cis-root"}),
        ("ssm.amazonaws.com", "PutParameter", {"name": "/loginwatch/slack-webhook-url"}),
        (
            "lambda.amazonaws.com",
            "UpdateFunctionCode20150331v2",
            {"functionName": "loginwatch-notifier"},
        ),
        ("iam.amazonaws.com", "PutRolePolicy", {"roleName": "loginwatch-notifier"}),
    ]
    source, name, request = kinds[index % len(kinds)]
    record.update(eventSource=source, eventName=name, requestParameters=request)
    event["source"] = "aws." + source.split(".")[0]
    return event


def texts(payload: dict[str, Any]) -> str:
    return "\n".join(iter_texts(payload))


def deliver(event: dict[str, Any]) -> dict[str, Any]:
    return handler.lambda_handler(event, None)


def test_the_path_comes_before_the_access_key_paths() -> None:
    assert PATHS.index(tamper) < PATHS.index(api_call) < PATHS.index(key_follow_up)
    event = load_fixture("eventbridge/api_call_stoplogging.json")
    assert tamper.recognises(event)
    assert not tamper.recognises(load_fixture("eventbridge/api_call_runinstances_access_key.json"))


def test_stop_logging_by_an_outsider_posts_one_critical_message(
    world: NotifierWorld, queue: RetryQueue
) -> None:
    event = stop_logging(world.at(1))
    answer = deliver(event)
    assert answer["outcome"] == "posted", answer
    (request,) = world.slack.requests
    said = texts(request.json)
    assert "CRITICAL" in said
    assert "mallory" in said  # the principal
    assert mask_key(OUTSIDER_KEY) in said and OUTSIDER_KEY not in said  # the key, masked
    assert "192.0.2.77" in said  # the address
    assert "StopLogging" in said and "us-east-1" in said
    assert "loginwatch status" in said and "loginwatch setup" in said
    # A duplicate delivery (the other rule's, or EventBridge's at-least-once): no second post.
    again = deliver(copy.deepcopy(event))
    assert again["outcome"] == "already-reported", again
    assert len(world.slack.requests) == 1


def test_an_attacker_controlled_user_agent_is_escaped(
    world: NotifierWorld, queue: RetryQueue
) -> None:
    event = stop_logging(world.at(1))
    event["detail"]["userAgent"] = "<!channel> <https://evil.example|click>"
    deliver(event)
    (request,) = world.slack.requests
    said = texts(request.json)
    assert "<!channel>" not in said and "&lt;!channel&gt;" in said


def test_a_change_to_another_rule_is_not_a_tamper_event(
    world: NotifierWorld, queue: RetryQueue
) -> None:
    event = own_change(world.at(1), 0, agent="aws-cli/2.15")
    event["detail"]["requestParameters"] = {"name": "ci-nightly"}
    answer = deliver(event)
    assert answer["outcome"].startswith("ignored"), answer
    assert world.slack.requests == []


def test_the_tamper_rule_off_posts_nothing(world: NotifierWorld, use_settings: Any) -> None:
    use_settings(rules=[{"name": "outside_allowlist", "severity": "high"}])
    answer = deliver(stop_logging(world.at(1)))
    assert answer["outcome"].startswith("ignored"), answer
    assert world.slack.requests == []


def test_a_setup_run_is_said_as_it_starts_and_summed_up_after_the_window(
    world: NotifierWorld, queue: RetryQueue
) -> None:
    start = world.now - timedelta(minutes=20)
    for index in range(30):
        answer = deliver(own_change(start + timedelta(seconds=5 * index), index))
        assert answer["outcome"] == ("posted" if index == 0 else "maintenance-counted"), answer
    deliver(own_change(start, 0))  # a repeated delivery of the first change
    # The first change at once, low severity (a forged agent is never kept quiet until a
    # follow-up its author could stop); the repeat posts nothing more.
    (started,) = world.slack.requests
    said = texts(started.json)
    assert "setup by AdminRole/alice from 203.0.113.10 is changing" in said
    assert "MAINTENANCE" in said and "CRITICAL" not in said
    # The repeated first change scheduled the follow-up again: claimed, it posts once.
    answers = due_follow_ups(queue, now=world.now)
    assert len(answers) == 2 and all(a["batchItemFailures"] == [] for a in answers)
    _, request = world.slack.requests
    said = texts(request.json)
    assert "setup by AdminRole/alice from 203.0.113.10 changed 30 resources" in said
    assert "MAINTENANCE" in said and "CRITICAL" not in said
    assert "PutRule" in said and "UpdateFunctionCode" in said


def test_teardowns_own_changes_are_posted_at_once_as_maintenance(
    world: NotifierWorld, queue: RetryQueue
) -> None:
    start = world.now - timedelta(minutes=2)
    for index in range(8):
        deliver(own_change(start + timedelta(seconds=index), index, agent=TEARDOWN_AGENT))
    (request,) = world.slack.requests  # the first change, at once; the rest counted
    said = texts(request.json)
    assert "teardown by AdminRole/alice from 203.0.113.10 is changing" in said
    assert "MAINTENANCE" in said and "CRITICAL" not in said


def test_a_forged_loginwatch_agent_on_a_call_it_never_makes_is_critical(
    world: NotifierWorld, queue: RetryQueue
) -> None:
    event = own_change(world.at(1), 4)  # UpdateFunctionCode, now PutFunctionConcurrency 0
    event["detail"]["eventName"] = "PutFunctionConcurrency20171031"
    event["detail"]["requestParameters"] = {
        "functionName": f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:loginwatch-notifier",
        "reservedConcurrentExecutions": 0,
    }
    answer = deliver(event)
    assert answer["outcome"] == "posted", answer
    (request,) = world.slack.requests
    said = texts(request.json)
    assert "CRITICAL" in said and "forged" in said and "PutFunctionConcurrency" in said


def test_parse_tamper_describes_the_change() -> None:
    record = load_fixture("eventbridge/api_call_putrule_setup.json")["detail"]
    change = parse_tamper(record, Own("loginwatch", "/loginwatch/cloudtrail"))
    assert change is not None
    assert change.name == "PutRule"
    assert change.resources == ("loginwatch-console-sign-in",)
    assert change.command == "setup" and change.maintenance
    assert change.principal == "AdminRole/alice"
    assert parse_tamper(record, Own("other", "/other/cloudtrail")) is None


# ---------------------------------------------------------------- the alarm backstop


def tamper_alarm(world: NotifierWorld, name: str = CIS_ALARM, **overrides: Any) -> dict:
    return alarm_event(state_change_time=world.now, AlarmName=name, **overrides)


def test_the_cis_alarm_posts_a_stop_logging_the_fast_path_missed(
    world: NotifierWorld, queue: RetryQueue
) -> None:
    at = world.now.replace(microsecond=0) - timedelta(minutes=3)
    world.trail.put((at, stop_logging(at)["detail"]))
    answer = deliver(tamper_alarm(world))
    assert answer["outcome"] == "posted", answer
    (request,) = world.slack.requests
    said = texts(request.json)
    assert "CRITICAL" in said and "StopLogging" in said and "mallory" in said
    assert "192.0.2.77" in said and mask_key(OUTSIDER_KEY) in said
    assert f"alarm {CIS_ALARM}" in said  # how it came
    # SNS again, or the other alarm over the same window: claimed, not posted again.
    assert deliver(tamper_alarm(world))["outcome"] == "already-reported"
    assert deliver(tamper_alarm(world, OWN_ALARM))["outcome"] == "already-reported"
    assert len(world.slack.requests) == 1


def test_the_cis_alarm_does_not_repeat_what_the_fast_path_posted(
    world: NotifierWorld, queue: RetryQueue
) -> None:
    at = world.now.replace(microsecond=0) - timedelta(minutes=3)
    event = stop_logging(at)
    assert deliver(event)["outcome"] == "posted"  # the fast path, seconds after the call
    world.trail.put((at, event["detail"]))
    answer = deliver(tamper_alarm(world))
    assert answer["outcome"] == "already-reported", answer
    assert len(world.slack.requests) == 1


def test_a_tamper_alarm_with_nothing_in_its_window_says_so(
    world: NotifierWorld, queue: RetryQueue
) -> None:
    answer = deliver(tamper_alarm(world, OWN_ALARM))
    assert answer["outcome"] == "posted-empty-window", answer
    said = texts(world.slack.requests[0].json)
    assert "no change that can switch loginwatch off" in said and OWN_ALARM in said


def test_a_tamper_alarm_over_changes_that_are_not_tampering_posts_nothing(
    world: NotifierWorld, queue: RetryQueue
) -> None:
    at = world.now.replace(microsecond=0) - timedelta(minutes=3)
    start = stop_logging(at)["detail"]
    start["eventName"] = "StartLogging"  # CloudWatch.5 counts it; it switches nothing off
    world.trail.put((at, start))
    answer = deliver(tamper_alarm(world))
    assert answer["outcome"] == "ignored", answer
    assert "none a change that can switch loginwatch off" in answer["reason"]
    assert world.slack.requests == []


def test_a_tamper_alarm_test_alert_says_no_change_was_made(
    world: NotifierWorld, queue: RetryQueue
) -> None:
    reason = protocol.marked_alarm_reason("t-tamper-alarm", "tamper")
    answer = deliver(tamper_alarm(world, NewStateReason=reason))
    assert answer["outcome"] == "test-posted", answer
    said = texts(world.slack.requests[0].json)
    assert "TEST" in said and "No change was made" in said and "tamper" in said


# ---------------------------------------------------------------- review findings


def test_a_maintenance_follow_up_waits_for_the_grace_after_the_window(
    world: NotifierWorld, queue: RetryQueue
) -> None:
    """A change made just before the window ends reaches the notifier within the grace:
    a follow-up taken in the grace would close the window without it."""
    opened = world.now.replace(microsecond=0) - timedelta(minutes=20)
    deliver(own_change(opened, 0))
    deliver(own_change(opened + timedelta(seconds=10), 1))
    grace = api_call.FOLLOW_UP_GRACE_SECONDS
    in_grace = opened + timedelta(seconds=WINDOW_SECONDS + grace // 2)
    (answer,) = due_follow_ups(queue, now=in_grace)
    (started,) = world.slack.requests  # the run's first change only, at once
    assert answer["batchItemFailures"] == [] and "is changing" in texts(started.json)
    assert len(queued()) == 1  # waits again
    # The change made in the window's last second, arriving now: still counted.
    last = own_change(opened + timedelta(seconds=WINDOW_SECONDS - 1), 2)
    assert deliver(last)["outcome"] == "maintenance-counted"
    after = opened + timedelta(seconds=WINDOW_SECONDS + grace + 1)
    due_follow_ups(queue, now=after)
    _, request = world.slack.requests
    assert "changed 3 resources" in texts(request.json)


def test_a_table_that_cannot_count_never_floods_the_channel(
    world: NotifierWorld, queue: RetryQueue
) -> None:
    at = world.now.replace(microsecond=0) - timedelta(minutes=4)
    events = [own_change(at + timedelta(seconds=n), n) for n in range(30)]
    with mock.patch.object(KeyWindows, "count", side_effect=ClaimError("throttled")):
        for event in events:  # the fast path: each raises for Lambda's retry, none posts
            with pytest.raises(ClaimError):
                deliver(event)
        assert world.slack.requests == []
        # The alarm path reads them all at once: one message for the run.
        world.trail.put(*[(at + timedelta(seconds=n), e["detail"]) for n, e in enumerate(events)])
        answer = deliver(tamper_alarm(world, OWN_ALARM))
        assert answer["outcome"] == "posted", answer
        assert deliver(tamper_alarm(world, OWN_ALARM))["outcome"] == "already-reported"
    (request,) = world.slack.requests
    said = texts(request.json)
    assert "setup by AdminRole/alice from 203.0.113.10 changed 30 resources" in said
    assert "could not count" in said and "MAINTENANCE" in said and "CRITICAL" not in said


def test_a_critical_change_is_posted_even_when_the_table_cannot_count(
    world: NotifierWorld, queue: RetryQueue
) -> None:
    with mock.patch.object(KeyWindows, "count", side_effect=ClaimError("throttled")):
        assert deliver(stop_logging(world.at(1)))["outcome"] == "posted"  # nothing to count
    assert len(world.slack.requests) == 1


def test_teardowns_first_message_does_not_wait_on_the_queue(
    world: NotifierWorld, queue: RetryQueue
) -> None:
    first = own_change(world.at(1), 0, agent=TEARDOWN_AGENT)
    with mock.patch.object(tamper, "schedule_follow_up", side_effect=RuntimeError("sqs down")):
        with pytest.raises(RuntimeError, match="sqs down"):
            deliver(first)  # posted, then raised: Lambda retries it
    assert len(world.slack.requests) == 1 and queued() == []
    assert deliver(copy.deepcopy(first))["outcome"] == "maintenance-counted"  # the retry
    assert len(world.slack.requests) == 1 and len(queued()) == 1  # posted once, scheduled


# ---------------------------------------------------------------- test-alert --rule tamper


def tamper_test_event(test_id: str = "t-tamper-1") -> dict[str, Any]:
    ip = address_outside(AllowList(["203.0.113.0/24"]))
    detail_type, detail = protocol.marked_test_event(test_id, "eu-west-1", "tamper", ip, ACCOUNT_ID)
    return {
        "version": "0",
        "id": "1",
        "detail-type": detail_type,
        "source": protocol.TEST_EVENT_SOURCE,
        "account": ACCOUNT_ID,
        "time": "2026-11-20T10:12:41Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": detail,
    }


def test_the_tamper_test_event_is_forwarded_by_the_tamper_rules_only() -> None:
    from loginwatch.api_call_patterns import event_patterns
    from loginwatch.names import Names
    from loginwatch.tamper_patterns import tamper_patterns
    from tests.support.event_ruler import matches

    event = tamper_test_event()
    detail = event["detail"]
    assert detail["eventSource"] == "cloudtrail.amazonaws.com"
    assert detail["eventName"] == "StopLogging"
    assert detail["requestParameters"] == {"name": "loginwatch-test"}
    assert detail["loginwatchTestId"] == "t-tamper-1" and detail["loginwatchTestRule"] == "tamper"
    names = Names(name="loginwatch", region="us-east-1", account=ACCOUNT_ID, partition="aws")
    assert any(matches(p, event) for p in tamper_patterns(names))
    # The access-key rule's patterns leave it (a console session's call): one test message.
    allowed = [ipaddress.ip_network("203.0.113.0/24")]
    assert not any(matches(p, event) for p in event_patterns(allowed))


def test_the_tamper_test_event_posts_a_labelled_test(
    world: NotifierWorld, queue: RetryQueue
) -> None:
    event = tamper_test_event()
    assert PATHS[0] is drill_event and drill_event.recognises(event)
    assert not tamper.recognises(event)  # never taken for a real StopLogging
    answer = deliver(event)
    assert answer["outcome"] == "test-posted" and answer["test_id"] == "t-tamper-1", answer
    (request,) = world.slack.requests
    said = texts(request.json)
    assert "TEST" in said and "`tamper`" in said and "No change was made" in said
    assert "tamper path" in said and "CRITICAL" not in said
    assert queued() == []  # a test opens no window


def test_slack_takes_the_tamper_and_maintenance_messages_whatever_went_into_them() -> None:
    """slack_sdk's Block Kit models parse them, however hostile the event's text."""
    from loginwatch.notifier.rules import Rule
    from loginwatch.notifier.slack_message import (
        build_maintenance_message,
        build_tamper_message,
    )
    from tests.notifier.block_kit import assert_slack_takes

    hostile = "<!channel> & `x` *y*\n" * 40
    record = copy.deepcopy(load_fixture("eventbridge/api_call_stoplogging.json")["detail"])
    record["userAgent"] = hostile
    record["userIdentity"]["userName"] = hostile
    record["requestParameters"]["name"] = hostile
    change = parse_tamper(record, Own("loginwatch", "/loginwatch/cloudtrail"))
    assert change is not None
    rule = Rule("tamper", "critical")
    payloads = [
        build_tamper_message(change, rule=rule, via="fast path", late="delayed: x", mention="here"),
        *(
            build_maintenance_message(
                command="setup",
                who=hostile,
                source_ip=hostile,
                user_agent=hostile,
                account_id="111122223333",
                started=datetime(2026, 11, 20),
                changes=300,
                calls=[hostile[:40] + str(n) for n in range(300)],
                rule=rule,
                overflow=7,
                started_only=started,
                mention="channel",
                not_counted=hostile,
            )
            for started in (True, False)
        ),
    ]
    for payload in payloads:
        assert_slack_takes(payload)
        assert "<!channel> &" not in json.dumps(payload)


# ---------------------------------------------------------------- organization mode

MEMBER = "444455556666"
HOME_CONTEXT = SimpleNamespace(
    invoked_function_arn=f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:loginwatch-notifier"
)


@pytest.fixture
def org_queue(world: NotifierWorld, use_settings: Any) -> RetryQueue:
    """Organization mode: setup tells the notifier which account is home (a member's
    event is another's)."""
    use_settings(rules=RULES, alarms=ALARMS, organization_home=ACCOUNT_ID)
    return RetryQueue()


def deliver_at_home(event: dict[str, Any]) -> dict[str, Any]:
    return handler.lambda_handler(event, HOME_CONTEXT)


def stack_set_change(at: datetime, index: int, session: str = "0e3b2c1d") -> dict[str, Any]:
    """One change of a StackSet deployment in a member account (varied per index)."""
    event = copy.deepcopy(load_fixture("eventbridge/api_call_member_stackset_putrule.json"))
    record = event["detail"]
    record.update(eventTime=iso(at), eventID=f"0000{index:04d}-stackset")
    identity = record["userIdentity"]
    identity["arn"] = identity["arn"].rsplit("/", 1)[0] + f"/{session}"
    kinds = [
        ("events.amazonaws.com", "PutRule", {"name": f"loginwatch-tamper-{index}"}),
        ("events.amazonaws.com", "PutTargets", {"rule": "loginwatch-console-sign-in"}),
        (
            "iam.amazonaws.com",
            "PutRolePolicy",
            {"roleName": "loginwatch-member-forward-eu-west-1", "policyName": "p"},
        ),
    ]
    source, name, request = kinds[index % len(kinds)]
    record.update(eventSource=source, eventName=name, requestParameters=request)
    event["source"] = "aws." + source.split(".")[0]
    return event


def test_a_stack_set_deployment_in_a_member_is_one_maintenance_run(
    world: NotifierWorld, org_queue: RetryQueue
) -> None:
    start = world.now - timedelta(minutes=20)
    for index in range(10):
        # StackSets may take a session per region and operation: still one run.
        session = "0e3b2c1d" if index < 5 else "7a6b5c4d"
        event = stack_set_change(start + timedelta(seconds=3 * index), index, session)
        answer = deliver_at_home(event)
        assert answer["outcome"] == ("posted" if index == 0 else "maintenance-counted"), answer
    (started,) = world.slack.requests  # one message while it runs, low severity
    said = texts(started.json)
    assert "StackSet deployment by stacksets-exec-" in said and "is changing" in said
    assert MEMBER in said and "MAINTENANCE" in said and "CRITICAL" not in said
    (answer,) = due_follow_ups(org_queue, now=world.now)
    assert answer["batchItemFailures"] == []
    _, summary = world.slack.requests
    said = texts(summary.json)
    assert "StackSet deployment by stacksets-exec-" in said and "changed 10 resources" in said
    assert MEMBER in said and "MAINTENANCE" in said and "CRITICAL" not in said


def test_a_member_admins_delete_rule_is_critical_and_names_the_account(
    world: NotifierWorld, org_queue: RetryQueue
) -> None:
    event = copy.deepcopy(load_fixture("eventbridge/api_call_member_deleterule.json"))
    event["detail"]["eventTime"] = iso(world.at(1))
    answer = deliver_at_home(event)
    assert answer["outcome"] == "posted", answer
    (request,) = world.slack.requests
    said = texts(request.json)
    assert "CRITICAL" in said and "DeleteRule" in said and "loginwatch-console-sign-in" in said
    assert f"account {MEMBER}" in said  # the member account, not the home one
    assert "MemberAdmin/bob" in said  # the principal
    assert mask_key("ASIAEXAMPLEMEMBERKEY") in said and "ASIAEXAMPLEMEMBERKEY" not in said
    assert "192.0.2.200" in said  # the address
    assert deliver_at_home(copy.deepcopy(event))["outcome"] == "already-reported"
    assert len(world.slack.requests) == 1


def test_loginwatchs_user_agent_in_a_member_account_marks_nothing(
    world: NotifierWorld, org_queue: RetryQueue
) -> None:
    """setup never runs in a member account: its user agent there is someone else's."""
    event = own_change(world.at(1), 0)
    event["account"] = event["detail"]["recipientAccountId"] = MEMBER
    answer = deliver_at_home(event)
    assert answer["outcome"] == "posted", answer
    said = texts(world.slack.requests[0].json)
    assert "CRITICAL" in said and "MAINTENANCE" not in said and MEMBER in said
    # At home the same call is setup's maintenance, as before.
    home = own_change(world.at(1), 1)
    assert deliver_at_home(home)["outcome"] == "posted"
    assert "MAINTENANCE" in texts(world.slack.requests[1].json)


def test_the_alarm_path_shows_a_members_change_and_reads_no_stack_set_deployment_as_one(
    world: NotifierWorld, org_queue: RetryQueue
) -> None:
    """The organization trail's log group holds the member's records: a member admin's
    DeleteRule is critical there too; the StackSet's own changes, if an emulator hands
    them over despite the filter, are maintenance, never critical."""
    at = world.now.replace(microsecond=0) - timedelta(minutes=3)
    admin = load_fixture("eventbridge/api_call_member_deleterule.json")["detail"]
    admin = {**admin, "eventTime": iso(at)}
    deployment = stack_set_change(at, 0)["detail"]
    world.trail.put((at, admin), (at, deployment))
    answer = handler.lambda_handler(tamper_alarm(world, OWN_ALARM), HOME_CONTEXT)
    assert answer["outcome"] == "posted", answer
    said = [texts(r.json) for r in world.slack.requests]
    critical = [s for s in said if "CRITICAL" in s]
    assert len(critical) == 1 and "DeleteRule" in critical[0] and MEMBER in critical[0]
    assert all("stacksets-exec" not in s for s in critical)
