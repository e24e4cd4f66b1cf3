"""ALARM → OK: report the sign-ins that arrived while the alarm was already in ALARM.

Alarm actions run only on state transitions, so a sign-in whose datapoint lands
while the alarm is in ALARM causes no notification of its own. The ALARM → OK
notification looks again: it finds when the episode began (alarm history,
stubbed: moto does not implement DescribeAlarmHistory) and lists the sign-ins
from outside the allowlist that CloudWatch Logs ingested after that.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from loginwatch.notifier import handler, protocol
from tests.notifier.conftest import (
    AlarmHistory,
    NotifierWorld,
    alarm_event,
    cloudtrail_record,
    forget_claims,
    history_item,
    iso,
    iter_texts,
)
from tests.notifier.test_handler import only_log_line, sign_in_sections

ALARM_STARTED = 4  # minutes before the OK transition (world.now)


def put(
    world: NotifierWorld,
    minutes_before: float,
    kind: str,
    *,
    ingested_minutes_before: float | None = None,
    **overrides: Any,
) -> None:
    """A fixture record stamped `minutes_before` now, ingested then (default: really now)."""
    moment = world.at(minutes_before).replace(microsecond=0)
    ingested = None if ingested_minutes_before is None else world.at(ingested_minutes_before)
    record = cloudtrail_record(kind, eventTime=iso(moment), **overrides)
    world.trail.put((moment, record), ingested_at=ingested)


def invoke_ok(world: NotifierWorld, *, old_state: str = "ALARM", **alarm: Any) -> dict[str, Any]:
    event = alarm_event(state="OK", state_change_time=world.now, OldStateValue=old_state, **alarm)
    return handler.lambda_handler(event, None)


def episode(history: AlarmHistory, world: NotifierWorld, *, reason: str = "Threshold") -> None:
    """History of one episode: OK → ALARM ALARM_STARTED minutes ago, ALARM → OK now."""
    history.answer(
        world.now,
        history_item(world.now, "OK", old_state="ALARM"),
        history_item(world.at(ALARM_STARTED), "ALARM", reason=reason),
        history_item(world.at(50), "OK", old_state="ALARM"),  # an earlier episode
        history_item(world.at(55), "ALARM"),
    )


def reported_ips(payload: dict[str, Any]) -> list[str]:
    return [s.split("*Source IP:* `", 1)[1].split("`", 1)[0] for s in sign_in_sections(payload)]


def test_sign_in_during_the_alarm_is_reported_on_ok(
    world: NotifierWorld, client_counter, alarm_history: AlarmHistory, capsys
) -> None:
    episode(alarm_history, world)
    # Set the alarm off; reported by the ALARM-time run (ingested before the episode began).
    put(world, 6, "alice", ingested_minutes_before=5)
    # Arrived while the alarm was already in ALARM.
    put(world, 2, "root")  # 192.0.2.77, outside
    put(world, 1, "bob")  # 203.0.113.10, inside the allowlist
    # CloudTrail redelivered an event the ALARM-time run had already seen.
    put(world, 5, "failure", ingested_minutes_before=4.5)
    put(world, 5, "failure")

    result = invoke_ok(world)

    (request,) = world.slack.requests
    payload = request.json
    assert reported_ips(payload) == ["192.0.2.77"]
    header = payload["blocks"][0]["text"]["text"]
    assert header == (
        ":rotating_light: ROOT account sign-in · 1 more console sign-in from outside the "
        "allowlist while the alarm was already firing"
    )
    assert "while the alarm was already firing" in payload["text"]
    assert any("returned to OK" in text for text in iter_texts(payload))
    assert result["outcome"] == "posted-during-alarm"
    assert result["events"] == 1
    assert result["slack_status"] == 200
    assert result["test_id"] is None
    since = world.at(ALARM_STARTED).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert result["reason"] == f"alarm in ALARM since {since}"
    assert only_log_line(capsys.readouterr().out) == result
    assert client_counter.calls == [
        "cloudwatch:DescribeAlarmHistory",
        "logs:FilterLogEvents",
        "dynamodb:PutItem",  # claims the sign-in, so no other run lists it again
        "ssm:GetParameter",
        "dynamodb:BatchWriteItem",  # Slack took it: the claim is confirmed
    ]


def test_ok_message_header_differs_from_the_alarm_message(
    world: NotifierWorld, alarm_history: AlarmHistory
) -> None:
    put(world, 2, "alice", ingested_minutes_before=1)
    episode(alarm_history, world)
    invoke_ok(world)
    forget_claims()  # the same sign-in again, as if nothing had reported it
    handler.lambda_handler(alarm_event(state_change_time=world.now), None)  # OK → ALARM
    on_ok, on_alarm = (r.json for r in world.slack.requests)
    assert on_alarm["blocks"][0]["text"]["text"] == (
        ":warning: 1 console sign-in from outside the allowlist"
    )
    assert on_ok["blocks"][0]["text"]["text"] == (
        ":warning: 1 more console sign-in from outside the allowlist "
        "while the alarm was already firing"
    )
    assert sign_in_sections(on_ok) == sign_in_sections(on_alarm)


def test_several_late_sign_ins_are_counted_as_more(
    world: NotifierWorld, alarm_history: AlarmHistory
) -> None:
    episode(alarm_history, world)
    for n in range(3):
        put(world, 1 + n, "alice", eventID=f"late-{n}", sourceIPAddress=f"198.51.100.{n + 1}")
    result = invoke_ok(world)
    payload = world.slack.requests[0].json
    assert payload["blocks"][0]["text"]["text"].startswith(":warning: 3 more console sign-ins ")
    assert reported_ips(payload) == ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
    assert result["events"] == 3


def test_only_allowed_or_already_seen_sign_ins_post_nothing(
    world: NotifierWorld, client_counter, alarm_history: AlarmHistory, capsys
) -> None:
    episode(alarm_history, world)
    put(world, 6, "alice", ingested_minutes_before=5)  # seen by the ALARM-time run
    put(world, 4.5, "root", ingested_minutes_before=ALARM_STARTED)  # ingested at the start
    put(world, 2, "bob")  # allowed, arrived during the episode
    put(world, 1, "ipv6", sourceIPAddress="2001:db8:1:ffff::1")  # allowed IPv6

    result = invoke_ok(world)

    assert world.slack.requests == []
    assert result["outcome"] == "ignored"
    assert result["events"] == 0
    assert result["reason"].startswith(
        "alarm back to OK; no further sign-ins from outside the allowlist (alarm in ALARM since "
    )
    assert only_log_line(capsys.readouterr().out) == result
    assert "ssm" not in client_counter.created  # nothing to post, no secret read


def test_window_reaches_back_from_the_alarm_start(
    world: NotifierWorld, alarm_history: AlarmHistory
) -> None:
    # Window: alarm start − 60 s × 1 − 10 min lookback … OK time + 1 min.
    episode(alarm_history, world)
    put(world, ALARM_STARTED + 10.9, "alice", eventID="inside-start")
    put(world, ALARM_STARTED + 11.2, "root", eventID="before-start")
    put(world, -0.9, "failure", eventID="inside-end")
    put(world, -1.2, "sso", eventID="after-end")
    invoke_ok(world)
    urls = [
        b["accessory"]["url"] for b in world.slack.requests[0].json["blocks"] if "accessory" in b
    ]
    assert [url.rsplit("/", 1)[-1] for url in urls] == ["inside-end", "inside-start"]


def test_empty_history_falls_back_to_a_window_before_the_ok_time(
    world: NotifierWorld, alarm_history: AlarmHistory
) -> None:
    # No ALARM item (history expired, or only other items): assume the alarm started
    # max(15 min, 60 s × 1 + 10 min) = 15 min before OK.
    alarm_history.answer(world.now, history_item(world.now, "OK", old_state="ALARM"))
    put(world, 17, "alice", eventID="before-fallback", ingested_minutes_before=16)
    put(world, 15, "root", eventID="after-fallback", ingested_minutes_before=14)

    result = invoke_ok(world)

    (request,) = world.slack.requests
    urls = [b["accessory"]["url"] for b in request.json["blocks"] if "accessory" in b]
    assert [url.rsplit("/", 1)[-1] for url in urls] == ["after-fallback"]
    assert result["outcome"] == "posted-during-alarm"
    start = world.at(15).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert result["reason"] == (
        f"no ALARM start in the alarm history; assumed the alarm started {start} (OK time − 15 min)"
    )


def test_fallback_grows_with_period_and_evaluation_periods(
    world: NotifierWorld, alarm_history: AlarmHistory
) -> None:
    alarm_history.answer(world.now)
    trigger = json.loads(alarm_event()["Records"][0]["Sns"]["Message"])["Trigger"]
    trigger.update(Period=300, EvaluationPeriods=3)
    result = invoke_ok(world, Trigger=trigger)
    assert result["outcome"] == "ignored"
    assert "no ALARM start in the alarm history" in result["reason"]
    assert "(OK time − 25 min)" in result["reason"]  # 5 min × 3 + 10 min lookback


def test_unreadable_history_falls_back_and_says_why(
    world: NotifierWorld, alarm_history: AlarmHistory
) -> None:
    # A role without cloudwatch:DescribeAlarmHistory (an older setup): report on a
    # rough window rather than fail and report nothing.
    alarm_history.fail(world.now, "AccessDenied")
    put(world, 3, "alice")
    result = invoke_ok(world)
    assert result["outcome"] == "posted-during-alarm"
    assert result["reason"].startswith(
        "the alarm history could not be read (AccessDenied); assumed the alarm started "
    )
    assert len(world.slack.requests) == 1


def test_test_alert_episode_reports_real_sign_ins_on_ok(
    world: NotifierWorld, alarm_history: AlarmHistory, capsys
) -> None:
    # The test's ALARM-time run posted the test message without reading the logs, so a
    # real sign-in ingested just before the test began was never looked at either.
    episode(alarm_history, world, reason=protocol.marked_alarm_reason("t-20261120-abc"))
    put(world, 6, "alice", ingested_minutes_before=5)
    put(world, 2, "root")
    put(world, 1, "bob")  # allowed

    result = invoke_ok(world, NewStateReason="loginwatch test-alert t-20261120-abc done")

    (request,) = world.slack.requests
    assert reported_ips(request.json) == ["192.0.2.77", "198.51.100.23"]
    assert "TEST" not in request.json["blocks"][0]["text"]["text"]
    assert result["outcome"] == "posted-during-alarm"
    assert "test-alert episode" in result["reason"]
    # `loginwatch test-alert` takes the newest log line carrying its id as the delivery
    # result: the OK run must not carry it.
    assert result["test_id"] is None
    assert "t-20261120-abc" not in capsys.readouterr().out


def test_quiet_test_alert_episode_posts_nothing_on_ok(
    world: NotifierWorld, alarm_history: AlarmHistory
) -> None:
    episode(alarm_history, world, reason=protocol.marked_alarm_reason("t-quiet"))
    put(world, 2, "bob")  # allowed
    result = invoke_ok(world)
    assert world.slack.requests == []
    assert result["outcome"] == "ignored"


@pytest.mark.parametrize(
    ("old_state", "new_state"),
    [
        ("INSUFFICIENT_DATA", "OK"),
        ("OK", "OK"),
        ("", "OK"),  # OldStateValue missing
        ("ALARM", "INSUFFICIENT_DATA"),
        ("OK", "INSUFFICIENT_DATA"),
    ],
)
def test_other_transitions_post_nothing_and_call_nothing(
    world: NotifierWorld, client_counter, capsys, old_state: str, new_state: str
) -> None:
    put(world, 2, "alice")
    event = alarm_event(state=new_state, state_change_time=world.now)
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    if old_state:
        message["OldStateValue"] = old_state
    else:
        del message["OldStateValue"]
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)

    result = handler.lambda_handler(event, None)

    assert world.slack.requests == []
    assert client_counter.created == []
    assert result["outcome"] == "ignored"
    assert new_state in result["reason"]
    assert only_log_line(capsys.readouterr().out) == result
