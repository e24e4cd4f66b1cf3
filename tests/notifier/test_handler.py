"""The real handler, end to end: SNS alarm event → moto Logs/SSM → Slack stub."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest

from loginwatch.demo.webhook_catcher import SlackReply
from loginwatch.notifier import handler, protocol
from loginwatch.notifier.slack_delivery import SlackDeliveryError
from loginwatch.notifier.webhook_secret import WebhookNotConfigured
from tests.notifier.conftest import (
    ACCOUNT_ID,
    ALARM_NAME,
    WEBHOOK_PARAMETER,
    NotifierWorld,
    alarm_event,
    cloudtrail_record,
    iso,
    iter_texts,
)

LOG_KEYS = {"loginwatch", "outcome", "events", "slack_status", "test_id", "duration_ms", "reason"}


def sign_in_sections(payload: dict[str, Any]) -> list[str]:
    """The mrkdwn of each per-sign-in section (the ones with a CloudTrail button)."""
    return [
        block["text"]["text"]
        for block in payload["blocks"]
        if block["type"] == "section"
        and "accessory" in block
        and "cloudtrail" in block["accessory"]["url"]
    ]


def put_at(world: NotifierWorld, minutes_before: float, kind: str, **overrides: Any) -> None:
    """Put a fixture record whose eventTime and log timestamp are `minutes_before` now."""
    moment = world.at(minutes_before).replace(microsecond=0)
    world.trail.put((moment, cloudtrail_record(kind, eventTime=iso(moment), **overrides)))


def invoke(world: NotifierWorld, **alarm: Any) -> dict[str, Any]:
    return handler.lambda_handler(alarm_event(state_change_time=world.now, **alarm), None)


def only_log_line(captured: str) -> dict[str, Any]:
    lines = [line for line in captured.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return json.loads(lines[0])


def test_several_sign_ins_make_one_message_newest_first(world: NotifierWorld) -> None:
    put_at(world, 8, "alice")  # outside
    put_at(world, 6, "bob")  # 203.0.113.10 — inside the allowlist
    put_at(world, 4, "root")  # outside
    put_at(world, 2, "failure")  # outside, failed
    # The same eventID delivered twice (CloudTrail may redeliver): listed once.
    put_at(world, 8, "alice")

    result = invoke(world)

    assert len(world.slack.requests) == 1
    payload = world.slack.requests[0].json
    sections = sign_in_sections(payload)
    assert len(sections) == 3
    # Newest first: failure (2 min ago), root (4), alice (8).
    assert "`alice`" in sections[0] and "Failure" in sections[0]
    assert "ROOT account" in sections[1]
    assert "`alice`" in sections[2] and "Success" in sections[2]
    assert not any("bob" in text or "203.0.113.10" in text for text in iter_texts(payload))
    # The failure is listed as context, not counted as a sign-in, nor said to match a
    # rule (outside_allowlist alerts on successful sign-ins; failed_sign_ins on bursts).
    assert payload["blocks"][0]["text"]["text"].endswith(
        "2 console sign-ins from outside the allowlist (and 1 failed attempt)"
    )
    assert "*Rules:* none — a failed attempt, listed as context" in sections[0]
    assert "outside_allowlist" not in sections[0]
    assert result["outcome"] == "posted"
    assert result["events"] == 3
    assert result["slack_status"] == 200


def test_failed_sign_in_shows_error_message(world: NotifierWorld) -> None:
    put_at(world, 3, "failure")
    invoke(world)
    (section,) = sign_in_sections(world.slack.requests[0].json)
    assert ":x: *Failure* — Failed authentication" in section
    assert "`192.0.2.200`" in section


def test_root_sign_in_stands_out(world: NotifierWorld) -> None:
    put_at(world, 3, "root")
    invoke(world)
    payload = world.slack.requests[0].json
    assert payload["blocks"][0]["text"]["text"].startswith(":rotating_light:")
    assert any("Includes a ROOT account sign-in" in text for text in iter_texts(payload))
    (section,) = sign_in_sections(payload)
    assert section.startswith(":rotating_light: *ROOT account*")
    assert "ROOT account" in payload["text"]


def test_sso_sign_in_shows_session_name_and_mfa_note(world: NotifierWorld) -> None:
    put_at(world, 3, "sso")
    invoke(world)
    (section,) = sign_in_sections(world.slack.requests[0].json)
    assert "*Assumed role* session `carol@example.com`" in section
    assert "AWSReservedSSO_AdministratorAccess_0123456789abcdef" in section
    assert "MFA used:* No _(federated/SSO" in section
    assert "identity provider" in section
    assert "*Region:* eu-north-1" in section


def test_sign_in_shows_all_details_and_cloudtrail_link(world: NotifierWorld) -> None:
    put_at(world, 3, "alice")
    invoke(world)
    payload = world.slack.requests[0].json
    (block,) = [b for b in payload["blocks"] if "accessory" in b]
    text = block["text"]["text"]
    moment = world.at(3).replace(microsecond=0)
    assert "*IAM user* `alice`" in text
    assert "`198.51.100.23`" in text
    assert moment.strftime("%Y-%m-%d %H:%M:%S UTC") in text
    assert "*MFA used:* No" in text
    assert "*Account:* 111122223333" in text
    # The user agent (102 chars) is cut to 80 with an ellipsis.
    user_agent = re.search(r"\*User agent:\* `([^`]*)`", text).group(1)
    assert len(user_agent) == 80 and user_agent.endswith("…")
    assert block["accessory"]["url"] == (
        "https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1"
        "#/events/0b1f6a2e-1111-4c1e-9d7a-000000000001"
    )
    assert payload["text"]  # notification fallback present
    assert ACCOUNT_ID in payload["text"] and ALARM_NAME in payload["text"]


@pytest.mark.parametrize(
    ("source_ip", "listed"),
    [
        ("2001:db8:85a3::8a2e:370:7334", True),  # outside 2001:db8:1::/48
        ("2001:db8:1:ffff::1", False),  # inside 2001:db8:1::/48
        ("::ffff:203.0.113.9", False),  # IPv4-mapped, inside 203.0.113.0/24
        ("::ffff:198.51.100.9", True),  # IPv4-mapped, outside
    ],
)
def test_ipv6_sign_ins_are_checked_exactly(
    world: NotifierWorld, source_ip: str, listed: bool
) -> None:
    put_at(world, 3, "ipv6", sourceIPAddress=source_ip)
    result = invoke(world)
    if listed:
        assert result["outcome"] == "posted"
        (section,) = sign_in_sections(world.slack.requests[0].json)
        assert f"`{source_ip}`" in section
    else:
        assert result["outcome"] == "suppressed-allowed"
        assert world.slack.requests == []


def test_hostile_user_agent_cannot_inject_mentions_or_links(world: NotifierWorld) -> None:
    put_at(world, 3, "hostile")
    invoke(world)
    payload = world.slack.requests[0].json
    texts = list(iter_texts(payload))
    assert texts
    for text in texts:
        assert "<!channel>" not in text
        assert "<https://" not in text
        assert "<" not in text and ">" not in text
    (section,) = sign_in_sections(payload)
    assert "&lt;!channel&gt; &lt;https://evil.example/|click me&gt; &amp; *bold*" in section


def test_more_than_ten_sign_ins_lists_ten_and_counts_the_rest(world: NotifierWorld) -> None:
    for n in range(13):
        put_at(
            world,
            1 + n * 0.5,
            "alice",
            eventID=f"evt-{n:02d}",
            sourceIPAddress=f"198.51.100.{n + 1}",
        )
    result = invoke(world)
    payload = world.slack.requests[0].json
    sections = sign_in_sections(payload)
    assert len(sections) == 10
    # Newest first: evt-00 (1 min ago) .. evt-09.
    ips = [re.search(r"Source IP:\* `([^`]*)`", s).group(1) for s in sections]
    assert ips == [f"198.51.100.{n + 1}" for n in range(10)]
    assert any(text == "…and 3 more not shown." for text in iter_texts(payload))
    assert "13 console sign-ins" in payload["blocks"][0]["text"]["text"]
    assert "…and 3 more" in payload["text"]
    assert result["events"] == 13
    assert len(payload["blocks"]) <= 50  # Slack's limit


def test_window_bounds_are_respected(world: NotifierWorld) -> None:
    # Window: StateChangeTime − 60 s × 1 − 10 min … StateChangeTime + 1 min.
    put_at(world, 10.9, "alice", eventID="inside-start")
    put_at(world, 11.2, "root", eventID="before-start")
    put_at(world, -0.9, "failure", eventID="inside-end")
    put_at(world, -1.2, "sso", eventID="after-end")
    invoke(world)
    urls = [
        b["accessory"]["url"] for b in world.slack.requests[0].json["blocks"] if "accessory" in b
    ]
    assert [url.rsplit("/", 1)[-1] for url in urls] == ["inside-end", "inside-start"]


def test_window_grows_with_period_and_evaluation_periods(world: NotifierWorld) -> None:
    put_at(world, 24, "alice")  # only inside with 5 min × 3 periods + 10 min lookback
    trigger = json.loads(alarm_event()["Records"][0]["Sns"]["Message"])["Trigger"]
    trigger.update(Period=300, EvaluationPeriods=3)
    result = invoke(world, Trigger=trigger)
    assert result["outcome"] == "posted"


def test_records_that_are_not_console_logins_are_ignored(world: NotifierWorld) -> None:
    # If the filter pattern is not evaluated (moto) or over-matches, the exact check holds.
    put_at(world, 3, "alice", eventName="GetSigninToken", eventID="other-event")
    world.trail.put((world.at(2), {"not": "cloudtrail"}))
    world.trail.logs.put_log_events(
        logGroupName="/loginwatch/cloudtrail",
        logStreamName=world.trail.stream,
        logEvents=[{"timestamp": int(world.at(1).timestamp() * 1000), "message": "not json"}],
    )
    result = invoke(world)
    assert result["outcome"] == "posted-empty-window"


def test_empty_window_posts_a_plain_explanation(world: NotifierWorld, capsys) -> None:
    # Nothing in the window at all: delivery lag, or an alarm set by hand.
    result = invoke(world)
    payload = world.slack.requests[0].json
    assert "no console sign-ins from outside the allowlist" in payload["text"]
    start = (world.now - timedelta(minutes=11)).strftime("%Y-%m-%d %H:%M:%S UTC")
    end = (world.now + timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert f"between {start} and {end}" in payload["text"]
    (block,) = payload["blocks"]
    assert block["accessory"]["url"] == (
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
        "#logsV2:log-groups/log-group/$252Floginwatch$252Fcloudtrail"
    )
    assert result["outcome"] == "posted-empty-window"
    assert result["events"] == 0
    assert only_log_line(capsys.readouterr().out)["outcome"] == "posted-empty-window"


def test_test_alert_posts_labelled_message_without_log_query(
    world: NotifierWorld, client_counter, capsys
) -> None:
    put_at(world, 3, "alice")  # must not be listed: a test alert does not query logs
    reason = protocol.marked_alarm_reason("t-20261120-abc")
    result = invoke(world, reason=reason)
    (request,) = world.slack.requests
    payload = request.json
    assert "TEST" in payload["blocks"][0]["text"]["text"]
    assert "t-20261120-abc" in payload["text"]
    assert not any("alice" in text for text in iter_texts(payload))
    assert client_counter.created == ["ssm"]
    assert result["outcome"] == "test-posted"
    assert result["test_id"] == "t-20261120-abc"
    line = only_log_line(capsys.readouterr().out)
    assert line["test_id"] == "t-20261120-abc"


# OK and INSUFFICIENT_DATA transitions: see test_alarm_ok.py.


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({}, "not an SNS event"),
        ({"Records": [{"EventSource": "aws:sqs", "body": "{}"}]}, "not an SNS event"),
        (
            {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "hello"}}]},
            "not JSON",
        ),
        (
            {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": '{"AlarmName": "x"}'}}]},
            "no NewStateValue",
        ),
        ("just a string", "not an object"),
    ],
)
def test_messages_that_are_not_alarm_notifications_are_ignored(
    slack_server, client_counter, capsys, event: Any, reason: str
) -> None:
    result = handler.lambda_handler(event, None)
    assert slack_server.requests == []
    assert client_counter.created == []
    assert result["outcome"] == "ignored"
    assert reason in result["reason"]
    assert only_log_line(capsys.readouterr().out) == result


def test_other_alarms_on_the_topic_are_ignored(world: NotifierWorld) -> None:
    put_at(world, 3, "alice")
    result = invoke(world, AlarmName="someone-elses-alarm")
    assert result["outcome"] == "ignored"
    assert world.slack.requests == []


def test_log_line_has_exactly_the_documented_fields(world: NotifierWorld, capsys) -> None:
    put_at(world, 3, "alice")
    result = invoke(world)
    line = only_log_line(capsys.readouterr().out)
    assert set(line) == LOG_KEYS
    assert line == result
    assert line["loginwatch"] == "notifier"
    assert line["outcome"] == "posted"
    assert line["events"] == 1
    assert line["slack_status"] == 200
    assert line["test_id"] is None
    assert line["reason"] is None
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0


def test_slack_server_error_is_retried(world: NotifierWorld, sleeps: list[float]) -> None:
    put_at(world, 3, "alice")
    world.slack.script(SlackReply(500, "oops"), SlackReply(200, "ok"))
    result = invoke(world)
    assert len(world.slack.requests) == 2
    assert world.slack.requests[0].body == world.slack.requests[1].body
    assert len(sleeps) == 1
    assert result["slack_status"] == 200


def test_revoked_webhook_fails_clearly_without_leaking_it(world: NotifierWorld, capsys) -> None:
    put_at(world, 3, "alice")
    world.slack.script(SlackReply(404, "no_service"))
    with pytest.raises(SlackDeliveryError) as raised:
        invoke(world)
    assert len(world.slack.requests) == 1
    assert "revoked or is wrong" in str(raised.value)
    line = only_log_line(capsys.readouterr().out)
    assert line["outcome"] == "failed"
    assert line["slack_status"] == 404
    assert line["events"] == 1
    assert "SlackDeliveryError" in line["reason"]
    secret = world.slack.url.split("/services/", 1)[1]
    assert secret not in str(raised.value)
    assert secret not in json.dumps(line)


def test_missing_ssm_parameter_names_it_and_the_fix(
    moto_inprocess, slack_server, use_settings, capsys
) -> None:
    with pytest.raises(WebhookNotConfigured) as raised:
        handler.lambda_handler(alarm_event(), None)
    message = str(raised.value)
    assert WEBHOOK_PARAMETER in message
    assert "loginwatch setup" in message
    line = only_log_line(capsys.readouterr().out)
    assert line["outcome"] == "failed"
    assert WEBHOOK_PARAMETER in line["reason"]
    assert slack_server.requests == []


def test_clients_and_webhook_are_cached_for_the_container(
    world: NotifierWorld, client_counter
) -> None:
    put_at(world, 3, "alice")
    invoke(world)
    invoke(world, reason=protocol.marked_alarm_reason("again"))
    put_at(world, 2, "alice", eventID="a-second-sign-in")
    invoke(world)
    assert len(world.slack.requests) == 3
    assert client_counter.created.count("ssm") == 1
    assert client_counter.created.count("logs") == 1
    assert client_counter.calls.count("ssm:GetParameter") == 1
    assert client_counter.calls.count("logs:FilterLogEvents") == 2


def test_webhook_never_appears_in_stdout(world: NotifierWorld, capsys) -> None:
    put_at(world, 3, "hostile")
    world.slack.script(SlackReply(500, "x"), SlackReply(200, "ok"))
    invoke(world)
    invoke(world, reason=protocol.marked_alarm_reason("leak-check"))
    invoke(world, state="OK")
    world.slack.script(SlackReply(403, "invalid_token"))
    put_at(world, 2, "hostile", eventID="another-sign-in")
    with pytest.raises(SlackDeliveryError):
        invoke(world)
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 4
    assert world.slack.url not in out
    assert world.slack.url.split("/services/", 1)[1] not in out
    assert "XXXXXXXXXXXXXXXXXXXXXXXX" not in out


def test_alarm_on_allowed_sign_ins_only_is_suppressed(world: NotifierWorld, capsys) -> None:
    # An over-matching pattern (IPv6 text form, entries beyond 1024 characters) can fire
    # the alarm on a colleague at the office: the exact check keeps Slack quiet.
    put_at(world, 3, "bob")  # 203.0.113.10 — inside the allowlist
    result = invoke(world)
    assert world.slack.requests == []
    assert result["outcome"] == "suppressed-allowed"
    assert "all from the allowlist" in only_log_line(capsys.readouterr().out)["reason"]
