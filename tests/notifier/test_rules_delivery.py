"""Every rule on, two Slack channels: what reaches which, on both paths, and only once.

The default channel and an "urgent" destination (critical, mentions @here) are two
local Slack stand-ins; the notifier reads each webhook from its own SecureString.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from loginwatch.demo.webhook_catcher import SlackReply, SlackStub
from loginwatch.notifier import handler, settings
from loginwatch.notifier.slack_delivery import SlackDeliveryError
from tests.notifier.conftest import (
    ACCOUNT_ID,
    ALARM_NAME,
    NotifierWorld,
    alarm_event,
    cloudtrail_record,
    iso,
    iter_texts,
)
from tests.notifier.test_fast_path import claim_state, eventbridge_event

ROOT_ALARM = "loginwatch-cis-root-usage"
MFA_ALARM = "loginwatch-cis-console-sign-in-without-mfa"
FAILED_ALARM = "loginwatch-cis-console-sign-in-failures"
URGENT_PARAMETER = "/loginwatch/slack-destinations/urgent"
RULES = [
    {"name": "outside_allowlist", "severity": "high"},
    {"name": "root_sign_in", "severity": "critical"},
    {"name": "no_mfa", "severity": "medium"},
    {"name": "failed_sign_ins", "severity": "medium", "threshold": 3, "minutes": 5},
]
URGENT = {
    "name": "urgent",
    "parameter": URGENT_PARAMETER,
    "severities": ["critical"],
    "rules": [],
    "mention": "here",
}


@pytest.fixture
def urgent(world: NotifierWorld, use_settings: Any) -> Iterator[SlackStub]:
    """The second channel, and settings with every rule on (as the CLI writes them)."""
    stub = SlackStub().start()
    world.ssm.put_parameter(Name=URGENT_PARAMETER, Value=stub.url, Type="SecureString")
    use_settings(
        rules=RULES,
        alarms={
            ALARM_NAME: "outside_allowlist",
            ROOT_ALARM: "root_sign_in",
            MFA_ALARM: "no_mfa",
            FAILED_ALARM: "failed_sign_ins",
        },
        destinations=[URGENT],
    )
    try:
        yield stub
    finally:
        stub.stop()


def fast(world: NotifierWorld, kind: str, seconds_ago: float = 4, **overrides: Any) -> dict:
    event, _ = eventbridge_event(world, kind, seconds_ago=seconds_ago, **overrides)
    return handler.lambda_handler(event, None)


def alarm(world: NotifierWorld, name: str, **extra: Any) -> dict:
    event = alarm_event(state_change_time=world.now, AlarmName=name, **extra)
    return handler.lambda_handler(event, None)


def put(world: NotifierWorld, minutes_before: float, kind: str, **overrides: Any) -> None:
    moment = world.at(minutes_before).replace(microsecond=0)
    world.trail.put((moment, cloudtrail_record(kind, eventTime=iso(moment), **overrides)))


def lead(payload: dict[str, Any]) -> str:
    """The first line under the header: mention, severity, rules."""
    return payload["blocks"][1]["elements"][0]["text"].split("\n")[0]


def mentions(payload: dict[str, Any]) -> list[str]:
    return [t for t in iter_texts(payload) if "<!" in t]


def test_root_from_outside_is_one_critical_message_naming_both_rules_to_urgent_only(
    world: NotifierWorld, urgent: SlackStub
) -> None:
    result = fast(world, "root")
    assert result["outcome"] == "posted"
    assert world.slack.requests == []  # a destination selects it: not the default's
    (request,) = urgent.requests
    payload = request.json
    assert payload["blocks"][0]["text"]["text"].startswith(":rotating_light: ROOT account sign-in")
    assert (
        lead(payload)
        == "<!here> · :rotating_light: *CRITICAL* · `root_sign_in`, `outside_allowlist`"
    )
    assert payload["text"].startswith("<!here> ROOT account sign-in! [CRITICAL]")
    # The mention is on the first line only (and in the notification text).
    assert mentions(payload) == [payload["text"], payload["blocks"][1]["elements"][0]["text"]]
    # The alarm path, minutes later, finds it reported: both alarms fire, nothing more.
    put(world, 1, "root")
    assert alarm(world, ROOT_ALARM)["outcome"] == "already-reported"
    assert alarm(world, ALARM_NAME)["outcome"] == "already-reported"
    assert len(urgent.requests) == 1 and world.slack.requests == []


def test_root_from_the_office_is_root_sign_in_only(world: NotifierWorld, urgent: SlackStub) -> None:
    fast(world, "root", sourceIPAddress="203.0.113.5")
    (request,) = urgent.requests
    assert "`root_sign_in`" in lead(request.json)
    assert "outside_allowlist" not in str(request.json)


def test_an_iam_user_without_mfa_at_the_office_is_no_mfa_to_the_default_without_mention(
    world: NotifierWorld, urgent: SlackStub
) -> None:
    result = fast(world, "alice", sourceIPAddress="203.0.113.7")
    assert result["outcome"] == "posted"
    assert urgent.requests == []
    (request,) = world.slack.requests
    payload = request.json
    assert lead(payload) == ":large_orange_diamond: *MEDIUM* · `no_mfa`"
    assert "by an IAM user without MFA" in payload["blocks"][0]["text"]["text"]
    assert mentions(payload) == []


def test_an_sso_sign_in_without_mfa_posts_nothing_on_either_path(
    world: NotifierWorld, urgent: SlackStub
) -> None:
    assert fast(world, "sso", sourceIPAddress="203.0.113.8")["outcome"] == "ignored-allowed"
    put(world, 2, "sso", sourceIPAddress="203.0.113.8")
    # The CIS no-MFA pattern may count it (older versions of it do): the notifier does not.
    result = alarm(world, MFA_ALARM)
    assert result["outcome"] == "suppressed-mfa"
    assert world.slack.requests == [] and urgent.requests == []


def failure(world: NotifierWorld, seconds_before: float, index: int, user: str) -> Any:
    moment = (world.now - timedelta(seconds=seconds_before)).replace(microsecond=0)
    return dict(
        eventID=f"burst-{index}",
        userIdentity={"type": "IAMUser", "userName": user, "accountId": ACCOUNT_ID},
    ), moment


def test_four_failures_in_two_minutes_from_one_ip_make_one_message_on_both_paths(
    world: NotifierWorld, urgent: SlackStub
) -> None:
    outcomes = []
    for index, (ago, user) in enumerate(
        [(130, "alice"), (100, "bob"), (60, "alice"), (10, "root")]
    ):
        overrides, moment = failure(world, ago, index, user)
        event, _ = eventbridge_event(world, "failure", at=moment, **overrides)
        outcomes.append(handler.lambda_handler(event, None)["outcome"])
        world.trail.put((moment, cloudtrail_record("failure", eventTime=iso(moment), **overrides)))
    assert outcomes == ["ignored", "ignored", "posted-burst", "burst-continues"]
    (request,) = world.slack.requests  # medium: the default channel
    payload = request.json
    assert (
        payload["blocks"][0]["text"]["text"] == ":no_entry: 3 failed console sign-ins within 5 min"
    )
    body = payload["blocks"][2]["text"]["text"]
    assert "`192.0.2.200`" in body and "`alice`, `bob`" in body
    assert "No successful sign-in" in body
    assert "`failed_sign_ins`" in lead(payload)
    # The alarm path sees all four in its window: the burst was reported, so nothing more.
    result = alarm(world, FAILED_ALARM)
    assert result["outcome"] == "already-reported"
    assert result["reason"] == "1 burst(s) of failed sign-ins were reported already"
    assert len(world.slack.requests) == 1 and urgent.requests == []


def test_the_alarm_path_alone_reports_the_whole_burst_and_who_then_got_in(
    world: NotifierWorld, urgent: SlackStub
) -> None:
    for index, ago in enumerate([240, 200, 170, 150]):
        overrides, moment = failure(world, ago, index, "alice")
        world.trail.put((moment, cloudtrail_record("failure", eventTime=iso(moment), **overrides)))
    put(world, 2, "alice", sourceIPAddress="203.0.113.7")  # alice gets in, at the office

    result = alarm(world, FAILED_ALARM)

    assert result["outcome"] == "posted"
    # Both medium, so the default channel: the sign-in first, then the burst it ended.
    signed_in, burst = world.slack.requests
    body = burst.json["blocks"][2]["text"]["text"]
    assert "*Failed sign-ins:* 4" in body
    assert "Then signed in successfully:* alice" in body
    assert "`failed_sign_ins`" in lead(signed_in.json) and "`no_mfa`" in lead(signed_in.json)
    assert "after 4 failed sign-ins" in str(signed_in.json)
    # Again (another alarm, a retry): nothing twice.
    assert alarm(world, MFA_ALARM)["outcome"] == "already-reported"
    assert len(world.slack.requests) == 2 and urgent.requests == []


def test_default_gets_all_copies_everything_to_the_default_without_the_mention(
    world: NotifierWorld, urgent: SlackStub, use_settings: Any
) -> None:
    settings = handler.load_settings().to_dict()
    use_settings(**{**settings, "default_gets": "all"})
    handler.reset_caches()
    fast(world, "root")
    (to_urgent,) = urgent.requests
    (to_default,) = world.slack.requests
    assert mentions(to_urgent.json) and mentions(to_default.json) == []


def test_a_failing_channel_is_retried_alone_and_the_other_is_not_posted_twice(
    world: NotifierWorld, urgent: SlackStub, use_settings: Any
) -> None:
    settings = handler.load_settings().to_dict()
    use_settings(**{**settings, "default_gets": "all"})
    handler.reset_caches()
    urgent.script(SlackReply(status=404, body="channel_not_found"))
    event, _ = eventbridge_event(world, "root")
    with pytest.raises(SlackDeliveryError):
        handler.lambda_handler(event, None)  # Lambda retries the invocation
    assert len(world.slack.requests) == 1 and len(urgent.requests) == 1
    assert handler.lambda_handler(event, None)["outcome"] == "posted"
    assert len(world.slack.requests) == 1  # the default took it the first time
    assert [r.status for r in urgent.requests] == [404, 200]


def test_test_alert_for_a_rule_goes_where_that_rule_goes(
    world: NotifierWorld, urgent: SlackStub
) -> None:
    from loginwatch.notifier.protocol import marked_alarm_reason

    result = alarm(world, ROOT_ALARM, NewStateReason=marked_alarm_reason("t1-abc", "root_sign_in"))
    assert result["outcome"] == "test-posted" and result["test_id"] == "t1-abc"
    (request,) = urgent.requests
    assert "rule `root_sign_in` reach this channel (destination `urgent`)" in str(request.json)
    assert world.slack.requests == []


def test_a_failed_root_sign_in_is_not_reported_as_root_activity(
    world: NotifierWorld, urgent: SlackStub
) -> None:
    put(world, 2, "failure", userIdentity={"type": "Root", "accountId": ACCOUNT_ID})
    result = alarm(world, ROOT_ALARM)  # the CIS root filter counts it
    assert result["outcome"] == "root-failed"
    assert world.slack.requests == [] and urgent.requests == []


def test_a_test_event_naming_no_rule_of_ours_is_a_plain_test(
    world: NotifierWorld, urgent: SlackStub
) -> None:
    from loginwatch.notifier.protocol import TEST_EVENT_DETAIL_TYPE, TEST_EVENT_SOURCE

    for bogus in ({"a": 1}, "<!channel> everything", "root_sign_in"):
        event = {
            "source": TEST_EVENT_SOURCE,
            "detail-type": TEST_EVENT_DETAIL_TYPE,
            "account": ACCOUNT_ID,
            "detail": {"loginwatchTestId": "t1-abc", "loginwatchTestRule": bogus},
        }
        assert handler.lambda_handler(event, None)["outcome"] == "test-posted"
    # Only the real rule's test went where that rule goes; the others to the default.
    assert len(urgent.requests) == 1 and len(world.slack.requests) == 2
    assert not any("<!channel>" in r.body.decode() for r in world.slack.requests)


def test_a_new_kind_of_event_needs_one_module_and_one_line(
    world: NotifierWorld, urgent: SlackStub, use_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Delivery, claims and routing come with the shape: a critical made-up event goes to
    the default channel (it gets all) and to `urgent` (which takes critical), once each,
    and a failed channel is retried alone."""
    from loginwatch.notifier import paths
    from tests.notifier import made_up_path

    written = json.loads(settings.SETTINGS_FILE.read_text())
    use_settings(**{**written, "default_gets": "all"})
    monkeypatch.setattr(paths, "PATHS", [made_up_path, *paths.PATHS])  # the one line
    event = {"source": made_up_path.SOURCE, "account": "111122223333"}
    event["detail"] = {"id": "x1", "severity": "critical"}

    urgent.script(SlackReply(404, "no_service"))  # `urgent` fails, the default takes it
    with pytest.raises(SlackDeliveryError):
        handler.lambda_handler(event, None)
    assert [r.json["text"] for r in world.slack.requests] == ["made-up thing x1 for default"]
    result = handler.lambda_handler(event, None)  # Lambda's retry: only `urgent` again
    assert result["outcome"] == "posted"
    assert len(world.slack.requests) == 1
    assert [r.json["text"] for r in urgent.requests if r.status == 200] == [
        "made-up thing x1 for urgent"
    ]
    assert handler.lambda_handler(event, None)["outcome"] == "already-reported"
    assert len(world.slack.requests) == 1 and len(urgent.requests) == 2

    low = {**event, "detail": {"id": "x2", "severity": "low"}}
    assert handler.lambda_handler(low, None)["outcome"] == "posted"
    assert world.slack.requests[-1].json["text"] == "made-up thing x2 for default"
    assert len(urgent.requests) == 2  # routing: `urgent` takes critical only
    monkeypatch.setattr(paths, "PATHS", paths.PATHS[1:])
    assert handler.lambda_handler(low, None)["outcome"] == "ignored"  # unregistered: not taken


def test_three_hanging_channels_fit_in_the_functions_timeout(
    world: NotifierWorld, urgent: SlackStub, use_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every webhook hangs until its timeout. One after another at 5 s an attempt, three
    tries each, they would take 45 s and Lambda would kill the run at 30 s (its claims
    left "posting"); the run shares its time between them and ends before its deadline."""
    from loginwatch.notifier import context, slack_delivery

    third = {**URGENT, "name": "third", "parameter": "/loginwatch/slack-destinations/third"}
    world.ssm.put_parameter(Name=third["parameter"], Value=urgent.url, Type="SecureString")
    written = json.loads(settings.SETTINGS_FILE.read_text())
    use_settings(**{**written, "destinations": [URGENT, third], "default_gets": "all"})

    clock = {"now": 1000.0}
    attempts: list[float] = []

    def hang(url: str, data: bytes, timeout: float) -> Any:
        attempts.append(timeout)
        clock["now"] += timeout
        raise TimeoutError("timed out")

    def wait(seconds: float) -> None:
        clock["now"] += seconds

    monkeypatch.setattr(context, "_clock", lambda: clock["now"])
    monkeypatch.setattr(slack_delivery, "_send", hang)
    monkeypatch.setattr(slack_delivery, "_sleep", wait)

    event, _ = eventbridge_event(world, "root")
    with pytest.raises(SlackDeliveryError):
        handler.lambda_handler(event, None)  # critical: every channel takes it
    used = clock["now"] - 1000.0
    assert used <= context.FUNCTION_TIMEOUT_SECONDS - context.END_RESERVE_SECONDS
    assert len(attempts) >= 3  # each channel was tried
    # Nothing was posted, so nothing stays claimed: Lambda's retry tries all three again.
    event_id = event["detail"]["eventID"]
    for key in (event_id, f"{event_id}#urgent", f"{event_id}#third"):
        assert claim_state(key) is None
