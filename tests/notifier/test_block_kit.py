"""Messages Slack takes, whatever the input (issue 20, item 3).

Every message kind slack_message.py builds, with the largest inputs each field can
carry, is validated with slack_sdk's Block Kit models plus the limits they do not
check (tests/notifier/block_kit.py). Then the final guard, ``fit_to_slack``, on its
own: it cuts what is over a limit and leaves everything else alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loginwatch.notifier import handler
from loginwatch.notifier.events import AlarmWindow, SignIn, parse_sign_in
from loginwatch.notifier.rules import Alert, Burst, Rule
from loginwatch.notifier.self_check_message import (
    WeekSeen,
    build_self_check_message,
    build_weekly_summary,
)
from loginwatch.notifier.self_check_state import Problem
from loginwatch.notifier.slack_message import (
    CHAIN,
    MAX_LISTED,
    SLACK_LIMITS,
    build_alert_message,
    build_burst_message,
    build_empty_window_message,
    build_failure_burst_message,
    build_test_message,
    fit_to_slack,
    slack_length,
)
from tests.notifier.block_kit import assert_slack_takes, problems
from tests.notifier.conftest import (
    ALARM_NAME,
    NotifierWorld,
    alarm_event,
    cloudtrail_record,
    iso,
    iter_texts,
)

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
RULES = (
    Rule("root_sign_in", "critical"),
    Rule("outside_allowlist", "high"),
    Rule("no_mfa", "medium"),
    Rule("failed_sign_ins", "medium", threshold=3, minutes=5),
)
FAILED = RULES[3]
MENTIONS = ("", "here", "channel", "SABCDEF123")
SNAPSHOT = Path(__file__).parents[1] / "snapshots" / "slack_payload_typical.json"

# The largest inputs a field can carry, each its own way of growing a message:
# escaping (x5 for "&"), length, characters that count twice (UTF-16), markup that
# must stay inert, lines, right-to-left and combining marks.
HOSTILE = {
    "ampersands": "&" * 5_000,
    "long": "x" * 20_000,
    "emoji": "😀" * 5_000,
    "markup": "<!channel> <@U123> <https://evil.example|click> &amp; *b* _i_ ~s~ `c` " * 200,
    "lines": "line\n" * 3_000,
    "unicode": ("\u202eévil\u0301\u200d👩‍👩‍👧" + "日本語") * 800,
}


def hostile_sign_in(value: str, index: int = 0, **changes: Any) -> SignIn:
    """A sign-in with every attacker-influenced field set to ``value``."""
    base = SignIn(
        event_id=f"{value[:2000]}-{index}",
        event_time=T0 + timedelta(seconds=index),
        identity_type="AssumedRole",
        user_name=f"{value}{index}",
        role_name=value,
        arn=f"arn:aws:sts::1:assumed-role/{value}/{value}",
        source_ip=f"{value}{index}",
        mfa_used="No",
        success=True,
        error_message=value,
        region=value,
        user_agent=value,
        account_id=value,
    )
    return replace(base, **changes)


def typical_sign_in(kind: str, index: int = 0, **overrides: Any) -> SignIn:
    parsed = parse_sign_in(cloudtrail_record(kind, eventID=f"evt-{index:03d}", **overrides))
    assert parsed is not None
    return parsed


def all_rules(sign_in: SignIn, note: str = "") -> Alert:
    return Alert(sign_in, RULES, note)


# ------------------------------------------------------------------ the validator


def test_the_validator_sees_what_slack_refuses() -> None:
    """Each limit the tests rely on is one the validator reports."""
    ok = build_test_message(test_id="t-1", account_id="111122223333", alarm_name="a")
    assert problems(ok) == []
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3_001}}
    header = {"type": "header", "text": {"type": "plain_text", "text": "😀" * 76}}
    too_many = {"text": "t", "blocks": [{"type": "divider"}] * 51}
    fields = {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2_001}] * 11}
    context = {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}
    button = {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "s"},
        "accessory": {
            "type": "button",
            "text": {"type": "plain_text", "text": "b" * 76},
            "url": "https://x.example/" + "u" * 3_000,
            "action_id": "a" * 256,
        },
    }
    unknown = {"type": "section", "text": {"type": "mrkdwn", "text": "s"}, "colour": "red"}
    bare = {"type": "section", "text": {"type": "mrkdwn", "text": "a & b <!channel> <x>"}}
    for block, expected in [
        (section, "section text of 3001"),
        (header, "header of 152"),  # an emoji beyond the BMP counts two
        (fields, "11 fields"),
        (fields, "field of 2001"),
        (context, "11 context elements"),
        (button, "button text over 75"),
        (button, "url of"),
        (button, "action_id over 255"),
        (unknown, "slack_sdk reads it differently"),
        (bare, "a bare '&'"),
        (bare, "a raw '<'"),
    ]:
        found = "\n".join(problems({"text": "t", "blocks": [block]}))
        assert expected in found, (expected, found)
    assert "51 blocks > 50" in "\n".join(problems(too_many))
    assert "top-level text of 40001" in "\n".join(
        problems({"text": "t" * 40_001, "blocks": [section]})
    )
    long = {"type": "section", "text": {"type": "mrkdwn", "text": "y" * 2_900}}
    assert "block text of 11600 in all" in "\n".join(problems({"text": "t", "blocks": [long] * 4}))


def test_the_typical_snapshot_payload_is_valid() -> None:
    assert_slack_takes(json.loads(SNAPSHOT.read_text(encoding="utf-8")))


# ------------------------------------------------------------ every message kind


def typical_messages() -> dict[str, dict[str, Any]]:
    kinds = ("alice", "bob", "root", "failure", "sso", "ipv6", "hostile")
    sign_ins = [typical_sign_in(kind, n) for n, kind in enumerate(kinds)]
    failures = tuple(
        typical_sign_in("failure", n, sourceIPAddress=f"192.0.2.{n}") for n in range(4)
    )
    burst = Burst(FAILED, failures, (sign_ins[0],))
    window = AlarmWindow(T0, T0 + timedelta(minutes=11))
    return {
        "alert": build_alert_message(sign_ins, account_id="111122223333", alarm_name=ALARM_NAME),
        "alert-rules": build_alert_message(
            [all_rules(s, "after 4 failed sign-ins within 2 min") for s in sign_ins],
            account_id="111122223333",
            alarm_name=ALARM_NAME,
            already_reported=2,
            late="delayed 63 min: Slack was unavailable",
            mention="here",
            account_names={"111122223333": "production"},
        ),
        "alert-fast": build_alert_message(
            sign_ins[:1], account_id="111122223333", alarm_name="", fast_path_seconds=4.2
        ),
        "burst-notice": build_burst_message(
            account_id="111122223333", count=4, window_minutes=10, mention="channel"
        ),
        "failure-burst": build_failure_burst_message(
            burst, via="fast path (EventBridge)", allowed=lambda ip: ip.endswith(".1")
        ),
        "empty-window": build_empty_window_message(
            account_id="111122223333",
            alarm_name=ALARM_NAME,
            window=window,
            region="us-east-1",
            log_group="/loginwatch/cloudtrail",
        ),
        "test": build_test_message(
            test_id="lw-test-1", account_id="111122223333", alarm_name=ALARM_NAME
        ),
        **self_check_messages("loginwatch", sign_ins),
    }


def self_check_messages(value: str, sign_ins: list[SignIn]) -> dict[str, dict[str, Any]]:
    """The self-check's: broken (new and old problems, some recovered), recovered, the
    weekly summary."""
    since = "2026-12-01T10:00:00Z"
    problems = [
        Problem(f"rule@eu-west-{n}:{value}", f"the rule {value} is disabled", since, value)
        for n in range(3)
    ]
    return {
        "self-check-broken": build_self_check_message(
            deployment=value,
            problems=problems[1:],
            new_ids={problems[1].id},
            cleared=problems[:1],
            now=T0,
            mention="here",
            requested_by="test-alert",
        ),
        "self-check-recovered": build_self_check_message(
            deployment=value, problems=[], new_ids=set(), cleared=problems, now=T0
        ),
        "weekly-summary": build_weekly_summary(
            WeekSeen("2026-W49", 168, 167, sign_ins, True, 4, frozenset({sign_ins[0].source_ip})),
            deployment=value,
            mention="channel",
        ),
    }


@pytest.mark.parametrize("kind", list(typical_messages()))
def test_typical_messages_are_valid_and_the_guard_leaves_them_alone(kind: str) -> None:
    payload = typical_messages()[kind]
    assert_slack_takes(payload)
    assert fit_to_slack(payload) == payload


def hostile_alert_messages(value: str) -> list[dict[str, Any]]:
    """The digest at its largest: 300 sign-ins (10 listed) with every rule, a note,
    root first, late, a mention, named accounts; and the fast path's single one."""
    sign_ins = [
        hostile_sign_in(value, n, identity_type="Root" if n == 0 else "IAMUser") for n in range(300)
    ]
    alerts = [all_rules(s, note=value) for s in sign_ins]
    names = {value: value, "111122223333": value}
    common: dict[str, Any] = {"account_id": value, "alarm_name": value, "account_names": names}
    return [
        build_alert_message(
            alerts,
            **common,
            already_reported=10**9,
            late=value,
            mention="channel",
        ),
        build_alert_message(alerts, **common, already_firing=True, mention="SABCDEF123"),
        build_alert_message(alerts[:1], **common, fast_path_seconds=10**9, late=value),
        build_alert_message(
            [replace(s, identity_type=value, success=False) for s in sign_ins[:MAX_LISTED]],
            **common,
        ),
    ]


def hostile_failure_bursts(value: str) -> list[dict[str, Any]]:
    failures = tuple(
        hostile_sign_in(value, n, success=False, identity_type="IAMUser") for n in range(100)
    )
    successes = tuple(hostile_sign_in(value, n) for n in range(100))
    return [
        build_failure_burst_message(
            Burst(FAILED, failures, successes),
            via=value,
            allowed=lambda ip: len(ip) % 2 == 0,
            mention=mention,
            late=value,
            account_names={value: value},
        )
        for mention in MENTIONS
    ]


def hostile_others(value: str) -> list[dict[str, Any]]:
    window = AlarmWindow(T0, T0 + timedelta(days=400))
    empty = [
        build_empty_window_message(
            account_id=value,
            alarm_name=value,
            window=window,
            region=value,
            log_group=value,
            rule=rule,
            mention=mention,
        )
        for rule in ("outside_allowlist", "root_sign_in", "no_mfa", "failed_sign_ins", value)
        for mention in ("", "channel")
    ]
    notices = [
        build_burst_message(account_id=value, count=10**12, window_minutes=10**9, mention=m)
        for m in MENTIONS
    ]
    tests = [
        build_test_message(
            test_id=value,
            account_id=value,
            alarm_name=value,
            path=value,
            destination=value,
            rule=value,
        ),
        build_test_message(test_id=value, account_id=value, alarm_name=value, path=CHAIN),
    ]
    return empty + notices + tests + self_check_hostile(value)


def self_check_hostile(value: str) -> list[dict[str, Any]]:
    """A hostile name or what-line, 60 problems, and a week of 300 sign-ins from it."""
    problems = [Problem(f"{value}{n}", value, value, value) for n in range(60)]
    sign_ins = [hostile_sign_in(value, n) for n in range(300)]
    seen = WeekSeen(value, 10**9, 0, sign_ins, False, None, frozenset({value}))
    return [
        *self_check_messages(value, sign_ins).values(),
        build_self_check_message(
            deployment=value,
            problems=problems,
            new_ids={p.id for p in problems},
            cleared=problems,
            now=T0,
            mention="channel",
        ),
        build_weekly_summary(seen, deployment=value),
    ]


BUILDS: dict[str, Callable[[str], list[dict[str, Any]]]] = {
    "alert": hostile_alert_messages,
    "failure-burst": hostile_failure_bursts,
    "others": hostile_others,
}


@pytest.mark.parametrize("value", list(HOSTILE), ids=list(HOSTILE))
@pytest.mark.parametrize("kind", list(BUILDS))
def test_every_message_kind_with_the_largest_inputs_is_one_slack_takes(
    kind: str, value: str
) -> None:
    for payload in BUILDS[kind](HOSTILE[value]):
        assert_slack_takes(payload)
        assert fit_to_slack(payload) == payload  # the guard ran: a second pass has nothing to do


def test_a_line_break_in_an_event_value_cannot_forge_a_line() -> None:
    forged = "Mozilla\n*Source IP:* `203.0.113.10` (allowlisted)\r\n\u2028*MFA used:* Yes"
    sign_in = typical_sign_in(
        "alice", userAgent=forged, userIdentity={"type": "IAMUser", "userName": "a\nb"}
    )
    payload = build_alert_message([sign_in], account_id="1", alarm_name="a")
    section = payload["blocks"][-1]["text"]["text"]
    lines = section.split("\n")
    assert [line.split(":*")[0] for line in lines[1:]] == ["*Source IP", "*MFA used", "*User agent"]
    assert "*IAM user* `a b`" in section


def test_hostile_text_stays_inert_after_the_guard() -> None:
    """Mentions and links typed into a user agent or a user name reach Slack escaped,
    however the guard cut them; the destination's own mention still works."""
    (payload, *_) = hostile_alert_messages(HOSTILE["markup"])
    for text in iter_texts(payload):
        assert "<!channel> <@U123>" not in text
        assert "<https://" not in text
    assert payload["text"].startswith("<!channel> ")
    assert payload["blocks"][1]["elements"][0]["text"].startswith("<!channel> · ")


def test_a_huge_digest_keeps_its_shape() -> None:
    """Cut to fit, the digest still says what it is: root first, ten sign-ins with
    their labels, and how many more there are."""
    (payload, *_) = hostile_alert_messages(HOSTILE["ampersands"])
    blocks = payload["blocks"]
    assert blocks[0]["type"] == "header" and "ROOT account sign-in" in blocks[0]["text"]["text"]
    sections = [
        b["text"]["text"] for b in blocks if "Source IP" in b.get("text", {}).get("text", "")
    ]
    assert len(sections) == MAX_LISTED
    for section in sections:
        for label in ("*Rules:*", "*Source IP:*", "*MFA used:*", "*User agent:*"):
            assert label in section
    assert blocks[-1]["elements"][0]["text"] == "…and 290 more not shown."


# --------------------------------------------------------- the failure burst lists


def burst_lines(payload: dict[str, Any]) -> dict[str, str]:
    body = payload["blocks"][2]["text"]["text"]
    return {line.split(":*", 1)[0].split("*")[-1]: line for line in body.split("\n")}


def test_a_burst_says_how_many_ips_names_and_successes_it_does_not_list() -> None:
    failures = tuple(
        typical_sign_in(
            "failure",
            n,
            sourceIPAddress=f"198.51.100.{n}",
            userIdentity={"type": "IAMUser", "userName": f"user{n}"},
        )
        for n in range(100)
    )
    successes = tuple(
        typical_sign_in("alice", 100 + n, userIdentity={"type": "IAMUser", "userName": f"in{n}"})
        for n in range(30)
    )
    payload = build_failure_burst_message(
        Burst(FAILED, failures, successes), via="fast path", allowed=lambda ip: False
    )
    lines = burst_lines(payload)
    assert lines["Source IPs"].endswith(
        "`198.51.100.9` (documentation range (RFC 5737)) and 90 more"
    )
    assert lines["User names tried"].endswith("`user9` and 90 more")
    assert lines["Then signed in successfully"].endswith("and 20 more")
    assert "in9 from" in lines["Then signed in successfully"]
    assert_slack_takes(payload)


def test_a_burst_of_up_to_ten_lists_them_all_without_more() -> None:
    failures = tuple(
        typical_sign_in("failure", n, sourceIPAddress=f"198.51.100.{n}") for n in range(10)
    )
    payload = build_failure_burst_message(
        Burst(FAILED, failures, ()), via="fast path", allowed=lambda ip: ip.endswith(".3")
    )
    lines = burst_lines(payload)
    assert lines["Source IPs"].endswith("`198.51.100.9` (documentation range (RFC 5737))")
    assert "`198.51.100.3` (documentation range (RFC 5737)) (allowlisted)" in lines["Source IPs"]
    assert lines["User names tried"] == "*User names tried:* `alice`"
    assert "more" not in payload["blocks"][2]["text"]["text"]


@pytest.mark.parametrize("value", list(HOSTILE), ids=list(HOSTILE))
def test_long_entries_list_fewer_and_count_every_one_not_shown(value: str) -> None:
    """Entries too long for ten on a line: fewer are listed, and the count adds up."""
    failures = tuple(hostile_sign_in(HOSTILE[value], n, success=False) for n in range(100))
    payload = build_failure_burst_message(
        Burst(FAILED, failures, failures[:0]), via="v", allowed=lambda ip: True
    )
    for label in ("Source IPs", "User names tried"):
        line = burst_lines(payload)[label]
        shown = line.count("`") // 2
        more = re.search(r" and (\d+) more$", line)
        assert more and 1 <= shown <= MAX_LISTED and shown + int(more.group(1)) == 100, line
        assert slack_length(line) < 800


# ------------------------------------------------------------------- the guard


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def message(*blocks: dict[str, Any], text: str = "fallback") -> dict[str, Any]:
    return {"text": text, "blocks": list(blocks), "unfurl_links": False, "unfurl_media": False}


def fitted_text(payload: dict[str, Any], index: int = 0) -> str:
    return fit_to_slack(payload)["blocks"][index]["text"]["text"]


def test_the_guard_does_not_modify_its_argument() -> None:
    payload = message(section("x" * 5_000))
    before = json.dumps(payload)
    fit_to_slack(payload)
    assert json.dumps(payload) == before


def test_a_cut_never_splits_an_entity() -> None:
    for offset in range(6):
        text = "a" * (2_990 + offset) + "&amp;" * 20
        cut = fitted_text(message(section(text)))
        assert slack_length(cut) <= 3_000 and cut.endswith("…")
        assert re.fullmatch(r"a+(&amp;)*…", cut), cut[-20:]


def test_a_cut_never_splits_the_mention() -> None:
    text = "a" * 2_993 + "<!channel> and more"
    cut = fitted_text(message(section(text)))
    assert cut == "a" * 2_993 + "…"


def test_a_cut_closes_the_code_span_it_opened() -> None:
    cut = fitted_text(message(section("*User agent:* `" + "u" * 5_000 + "`")))
    assert cut.endswith("…`") and cut.count("`") == 2 and slack_length(cut) <= 3_000


def test_a_text_of_several_lines_cuts_its_longest_lines_first() -> None:
    lines = ["*Who:* alice", "*Source IP:* `" + "1" * 4_000 + "`", "*Agent:* `" + "a" * 4_000 + "`"]
    cut = fitted_text(message(section("\n".join(lines)))).split("\n")
    assert cut[0] == "*Who:* alice"
    assert cut[1].startswith("*Source IP:* `1") and cut[1].endswith("…`")
    assert cut[2].startswith("*Agent:* `a") and cut[2].endswith("…`")
    assert sum(map(slack_length, cut)) + 2 <= 3_000


def test_a_header_a_button_and_the_top_level_text_are_cut_to_their_limits() -> None:
    button = {
        "type": "button",
        "text": {"type": "plain_text", "text": "b" * 100, "emoji": True},
        "url": "https://example.com/",
        "action_id": "a" * 300,
    }
    payload = message(
        {"type": "header", "text": {"type": "plain_text", "text": "😀" * 200, "emoji": True}},
        {**section("s"), "accessory": button},
        text="t" * 50_000,
    )
    fitted = fit_to_slack(payload)
    assert_slack_takes(fitted)
    assert slack_length(fitted["blocks"][0]["text"]["text"]) <= 150
    assert fitted["blocks"][1]["accessory"]["text"]["text"] == "b" * 73 + "…"
    assert len(fitted["blocks"][1]["accessory"]["action_id"]) == 255
    assert len(fitted["text"]) == 40_000 - 1


def test_a_button_whose_url_is_too_long_is_left_out() -> None:
    button = {
        "type": "button",
        "text": {"type": "plain_text", "text": "Open"},
        "url": "https://example.com/" + "e" * 3_000,
        "action_id": "open",
    }
    fitted = fit_to_slack(message({**section("s"), "accessory": button}))
    assert fitted["blocks"] == [section("s")]


def test_more_than_fifty_blocks_keep_the_footer_last_and_say_so() -> None:
    blocks = [b for n in range(40) for b in ({"type": "divider"}, section(f"sign-in {n}"))]
    footer = {"type": "context", "elements": [{"type": "mrkdwn", "text": "…and 30 more"}]}
    fitted = fit_to_slack(message(*blocks, footer))
    assert_slack_takes(fitted)
    assert len(fitted["blocks"]) == SLACK_LIMITS.blocks
    assert fitted["blocks"][-1] == footer
    assert "did not fit" in fitted["blocks"][-2]["elements"][0]["text"]
    assert fitted["blocks"][-3]["type"] == "section"  # no divider left dangling


def test_fields_and_context_elements_are_capped() -> None:
    fields = {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2_500}] * 12}
    context = {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 12}
    fitted = fit_to_slack(message(fields, context))
    assert_slack_takes(fitted)
    assert len(fitted["blocks"][0]["fields"]) == 10
    assert len(fitted["blocks"][1]["elements"]) == 10


def test_the_blocks_text_in_all_stays_within_the_budget() -> None:
    payload = message(*(section(f"*Label {n}:* " + "v" * 2_900) for n in range(20)))
    fitted = fit_to_slack(payload)
    assert_slack_takes(fitted)
    texts = [b["text"]["text"] for b in fitted["blocks"]]
    assert sum(map(slack_length, texts)) <= SLACK_LIMITS.blocks_text
    assert all(t.startswith(f"*Label {n}:* v") for n, t in enumerate(texts))


# ------------------------------------------------------------- property-based

_ALPHABET = st.sampled_from(
    [
        *"&<>*_~`!@|:;\n #x1",
        "😀",
        "👩\u200d👩\u200d👧",
        "é",
        "\u0301",
        "\u202e",
        "日",
        "&amp;",
        "<!channel>",
    ]
)
hostile_text = st.lists(_ALPHABET, max_size=3_000).map("".join)
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(value=hostile_text, count=st.integers(1, 40), mention=st.sampled_from(MENTIONS))
def test_any_digest_is_one_slack_takes(value: str, count: int, mention: str) -> None:
    sign_ins = [hostile_sign_in(value, n, success=n % 3 != 0) for n in range(count)]
    payload = build_alert_message(
        [all_rules(s, value) for s in sign_ins],
        account_id=value,
        alarm_name=value,
        late=value or None,
        mention=mention,
        account_names={value: value},
    )
    assert_slack_takes(payload)


@PROPERTY
@given(
    ips=st.lists(hostile_text, min_size=1, max_size=120),
    names=st.lists(hostile_text, max_size=120),
    succeeded=st.integers(0, 40),
)
def test_any_failure_burst_is_one_slack_takes_and_counts_what_it_leaves_out(
    ips: list[str], names: list[str], succeeded: int
) -> None:
    failures = tuple(
        hostile_sign_in(
            "v", n, success=False, source_ip=ip, user_name=names[n % len(names)] if names else ""
        )
        for n, ip in enumerate(ips)
    )
    burst = Burst(FAILED, failures, tuple(hostile_sign_in("w", n) for n in range(succeeded)))
    payload = build_failure_burst_message(burst, via="fast path", allowed=lambda ip: "1" in ip)
    assert_slack_takes(payload)
    lines = burst_lines(payload)
    for label, listed in (("Source IPs", burst.source_ips), ("User names tried", burst.user_names)):
        assert _shown_and_more(lines[label]) == len(listed), lines[label]


def _shown_and_more(line: str) -> int:
    """How many entries a burst's line stands for: those shown and "and N more"."""
    if line.endswith(":* _unknown_"):
        return 0
    more = re.search(r" and (\d+) more$", line)
    return line.count("`") // 2 + (int(more.group(1)) if more else 0)


_text_object = st.builds(
    lambda kind, text: {"type": kind, "text": text},
    st.sampled_from(["mrkdwn", "plain_text"]),
    hostile_text.filter(lambda t: t.strip()).map(
        lambda t: t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    ),
)
_block = st.one_of(
    st.just({"type": "divider"}),
    st.builds(lambda t: {"type": "section", "text": {**t, "type": "mrkdwn"}}, _text_object),
    st.builds(
        lambda fs: {"type": "section", "fields": fs},
        st.lists(_text_object, min_size=1, max_size=14),
    ),
    st.builds(
        lambda es: {"type": "context", "elements": es},
        st.lists(_text_object, min_size=1, max_size=14),
    ),
    st.builds(lambda t: {"type": "header", "text": {**t, "type": "plain_text"}}, _text_object),
)


@PROPERTY
@given(
    blocks=st.lists(_block, min_size=1, max_size=70),
    text=hostile_text.filter(lambda t: t.strip()).map(lambda t: t * 20),
)
def test_the_guard_fits_any_payload_and_a_second_pass_changes_nothing(
    blocks: list[dict[str, Any]], text: str
) -> None:
    payload = message(
        *blocks, text=text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    )
    fitted = fit_to_slack(payload)
    assert_slack_takes(fitted)
    assert fit_to_slack(fitted) == fitted


# ----------------------------------------------- through the handler, to the stub


def test_what_reaches_slack_from_a_hostile_trail_is_valid(
    world: NotifierWorld, use_settings: Any
) -> None:
    """The alarm path end to end: 60 hostile failures (a burst) and 15 hostile sign-ins
    from outside the allowlist; each message the Slack stub receives is valid."""
    use_settings(
        rules=[rule.to_dict() for rule in RULES],
        alarms={ALARM_NAME: "outside_allowlist"},
    )
    value = HOSTILE["markup"][:1_500] + "😀" * 200
    records = []
    for n in range(75):
        moment = world.at(4 - n * 0.03).replace(microsecond=0)
        kind = "failure" if n < 60 else "alice"
        records.append(
            (
                moment,
                cloudtrail_record(
                    kind,
                    eventID=f"evt-{n:03d}",
                    eventTime=iso(moment),
                    sourceIPAddress=f"{value}{n % 30}",
                    userAgent=value,
                    userIdentity={"type": "IAMUser", "userName": f"{value}{n}", "arn": value},
                    errorMessage=value,
                ),
            )
        )
    world.trail.put(*records)
    handler.lambda_handler(alarm_event(state_change_time=world.now), None)
    payloads = [request.json for request in world.slack.requests]
    assert len(payloads) == 2  # the digest and the burst
    for payload in payloads:
        assert_slack_takes(payload)
    burst = next(p for p in payloads if "failed console sign-ins" in p["text"])
    ips = burst_lines(burst)["Source IPs"]
    more = re.search(r" and (\d+) more$", ips)
    assert more and ips.count("`") // 2 + int(more.group(1)) == 30
