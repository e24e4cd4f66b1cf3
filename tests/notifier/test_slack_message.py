"""Pure payload building: escaping of every event value, shortening, links."""

from __future__ import annotations

from loginwatch.notifier.events import parse_sign_in
from loginwatch.notifier.slack_message import (
    build_alert_message,
    build_test_message,
    escape,
    log_group_url,
    shorten,
)
from tests.notifier.conftest import cloudtrail_record, iter_texts


def test_escape_ampersand_first() -> None:
    assert escape("<&>") == "&lt;&amp;&gt;"
    assert escape("&lt;") == "&amp;lt;"  # a literal entity stays literal


def test_every_event_value_is_escaped() -> None:
    evil = "<!here> <@U123> <https://x.example|y> &"
    record = cloudtrail_record(
        "sso",
        sourceIPAddress=evil,
        awsRegion=evil,
        errorMessage=evil,
        recipientAccountId=evil,
        responseElements={"ConsoleLogin": "Failure"},
        userIdentity={
            "type": "AssumedRole",
            "arn": f"arn:aws:sts::1:assumed-role/{evil}/{evil}",
        },
    )
    sign_in = parse_sign_in(record)
    payload = build_alert_message([sign_in], account_id=evil, alarm_name=evil)
    texts = list(iter_texts(payload))
    assert len(texts) >= 4
    for text in texts:
        assert "<" not in text and ">" not in text
    assert any("&lt;!here&gt; &lt;@U123&gt; &lt;https://x.example|y&gt; &amp;" in t for t in texts)
    button = next(b["accessory"] for b in payload["blocks"] if "accessory" in b)
    assert "<" not in button["url"] and "|" not in button["url"] and " " not in button["url"]


def test_long_values_are_cut_before_escaping() -> None:
    user_agent = "a" * 78 + "<b>"  # the cut must not leave half an entity behind
    sign_in = parse_sign_in(cloudtrail_record("alice", userAgent=user_agent))
    payload = build_alert_message([sign_in], account_id="1", alarm_name="a")
    section = payload["blocks"][-1]["text"]["text"]
    assert "`" + "a" * 78 + "&lt;…`" in section


def test_backticks_cannot_close_the_code_span() -> None:
    sign_in = parse_sign_in(cloudtrail_record("alice", userAgent="x` *bold* `y"))
    section = build_alert_message([sign_in], account_id="1", alarm_name="a")["blocks"][-1]
    assert "`x' *bold* 'y`" in section["text"]["text"]


def test_unknown_identity_type_uses_arn_tail() -> None:
    record = cloudtrail_record(
        "alice",
        userIdentity={"type": "IdentityCenterUser", "arn": "arn:aws:identitystore::1:user/u-1"},
    )
    section = build_alert_message([parse_sign_in(record)], account_id="1", alarm_name="a")
    assert "*IdentityCenterUser* `u-1`" in section["blocks"][-1]["text"]["text"]


def test_no_mfa_success_is_flagged_but_failure_is_not() -> None:
    ok = parse_sign_in(cloudtrail_record("alice"))
    failed = parse_sign_in(cloudtrail_record("failure"))
    blocks = build_alert_message([ok, failed], account_id="1", alarm_name="a")["blocks"]
    sections = [b["text"]["text"] for b in blocks if "accessory" in b]
    assert "*MFA used:* No :warning:" in sections[0]
    assert "*MFA used:* No   " in sections[1]


def test_test_message_is_labelled() -> None:
    payload = build_test_message(test_id="abc-1", account_id="1", alarm_name="a")
    assert payload["text"].startswith("[TEST]")
    assert "TEST" in payload["blocks"][0]["text"]["text"]


def test_log_group_url_uses_cloudwatch_encoding() -> None:
    assert log_group_url("eu-west-1", "/aws/x y").endswith("log-group/$252Faws$252Fx$2520y")


def test_shorten() -> None:
    assert shorten("abc", 3) == "abc"
    assert shorten("abcd", 3) == "ab…"


def test_already_firing_message_says_so_and_lists_the_same_sections() -> None:
    sign_ins = [parse_sign_in(cloudtrail_record(kind)) for kind in ("alice", "failure")]
    fresh = build_alert_message(sign_ins, account_id="111122223333", alarm_name="a")
    late = build_alert_message(
        sign_ins, account_id="111122223333", alarm_name="a", already_firing=True
    )
    assert fresh["blocks"][0]["text"]["text"] == (
        ":warning: 1 console sign-in from outside the allowlist (and 1 failed attempt)"
    )
    assert late["blocks"][0]["text"]["text"] == (
        ":warning: 1 more console sign-in from outside the allowlist (and 1 failed attempt) "
        "while the alarm was already firing"
    )
    assert late["text"].startswith(
        "1 more console sign-in from outside the allowlist (and 1 failed attempt) while the alarm was already firing "
    )
    assert "returned to OK" in late["blocks"][1]["elements"][0]["text"]
    assert late["blocks"][2:] == fresh["blocks"][2:]
