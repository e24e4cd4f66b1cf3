"""`review`'s judging and suggestions (pure): the notifier's verdicts, rows, networks.

No AWS here: the planted history (tests/support/sign_ins.py) is parsed by the notifier's
own parser and judged with the settings setup would pack for the config.
"""

from __future__ import annotations

import types
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from loginwatch.config import parse_config
from loginwatch.engine import notifier_settings
from loginwatch.errors import UsageError
from loginwatch.names import Names
from loginwatch.notifier.events import parse_sign_in
from loginwatch.notifier.paths import alarm as alarm_path
from loginwatch.notifier.rules import KeyException
from loginwatch.review import config_edit
from loginwatch.review.judge import judge, principal_rows
from loginwatch.review.limiter import RateLimiter
from loginwatch.review.suggest import (
    covering_network,
    judge_key_use,
    suggest_exceptions,
    suggest_networks,
)
from tests.support import sign_ins as planted

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
CONFIG = """\
region: us-east-1
name: lwreview
# The team's own networks.
allowed_ips:
  - 100.64.1.1              # erin's fixed line
rules:
  outside_allowlist: {enabled: true, severity: high}
  root_sign_in: {enabled: true, severity: critical}
  no_mfa: {enabled: true, severity: medium}
  failed_sign_ins: {enabled: true, severity: medium, threshold: 3, minutes: 5}
slack:
  webhook_url: https://hooks.slack.com/services/T000/B000/xyz
  destinations:
    - name: urgent
      webhook_url: https://hooks.slack.com/services/T000/B000/urgent
      severities: [critical]
"""


def settings(text: str = CONFIG):  # type: ignore[no-untyped-def]
    config = parse_config(text, "loginwatch.yaml", {})
    return notifier_settings(config, Names.for_config(config, planted.ACCOUNT), "/lw/trail")


def history():  # type: ignore[no-untyped-def]
    return [s for r in planted.team_history(NOW) if (s := parse_sign_in(r)) is not None]


def test_verdicts_are_the_notifiers_for_the_same_records() -> None:
    """The alarm path's own evaluation (paths/alarm.py) over the same sign-ins, and its
    routing, give exactly review's rules and destinations for every sign-in."""
    s = settings()
    sign_ins = history()
    verdicts = {v.sign_in.event_id: v for v in judge(sign_ins, s)}
    ctx = types.SimpleNamespace(rules=s.rules, allowlist=s.allow_list())
    alerts, bursts = alarm_path._evaluate(sign_ins, sign_ins, "root_sign_in", ctx)  # type: ignore[arg-type]
    by_id = {a.sign_in.event_id: a for a in alerts}
    burst_ids = {i for b in bursts for i in b.event_ids}
    routes = s.routes()
    assert len(verdicts) == len(sign_ins)
    for event_id, verdict in verdicts.items():
        alert = by_id.get(event_id)
        if alert is not None:
            assert verdict.rules == alert.rule_names
            assert verdict.severity == alert.severity
            targets = routes.targets(alert.rule_names, alert.severity, planted.ACCOUNT)
            assert verdict.destinations == tuple(d.name for d in targets)
        elif event_id in burst_ids:
            assert verdict.rules == ("failed_sign_ins",) and verdict.in_burst
        else:
            assert not verdict.alerted, verdict
    # What the planted history holds: root alerts go to the urgent channel (the default
    # gets what no destination claims); the
    # intruder's way in after the burst names failed_sign_ins; SSO is no no-MFA alert.
    root = [v for v in verdicts.values() if v.sign_in.is_root]
    assert root and all(v.destinations == ("urgent",) for v in root)
    intruder = [v for v in verdicts.values() if v.sign_in.source_ip == planted.ATTACKER]
    assert any("failed_sign_ins" in v.rules and "no_mfa" in v.rules for v in intruder)
    sso = [v for v in verdicts.values() if v.sign_in.identity_type == "AssumedRole"]
    assert sso and all(v.rules == ("outside_allowlist",) for v in sso)
    erin = [v for v in verdicts.values() if v.sign_in.user_name == "erin"]
    assert erin and all(v.allowlisted and not v.alerted for v in erin)


def test_rows_per_principal() -> None:
    rows = {r.principal: r for r in principal_rows(judge(history(), settings()))}
    assert next(iter(rows)) == "root"  # root first: the one to look at
    alice = rows["alice"]
    assert alice.sign_ins == 28 + 2 and alice.failures == 2
    assert alice.mfa == "all" and alice.mfa_yes == 28
    assert alice.alerted == 28  # outside the allowlist every time; failures alone do not
    assert alice.rules == {"outside_allowlist": 28}
    assert set(alice.addresses) == {*planted.OFFICE, "198.18.0.250"}
    assert alice.networks == ["192.0.2.0/24", "198.18.0.0/24"]
    assert alice.first_seen is not None and alice.last_seen is not None
    assert (alice.last_seen - alice.first_seen).days >= 26
    dave = rows["dave"]
    assert dave.failures == 4 and dave.mfa == "some"
    assert dave.addresses[planted.ATTACKER].sign_ins == 6
    erin = rows["erin"]
    assert erin.alerted == 0 and erin.addresses[planted.ALLOWED].allowlisted
    sso = rows["AWSReservedSSO_Admin_0123/carol"]
    assert sso.identity_type == "AssumedRole" and sso.networks == ["2001:db8:77::/48"]
    json_row = alice.to_json()
    assert json_row["would_have_alerted"] == 28 and json_row["mfa"]["yes"] == 28


def test_the_teams_three_networks_are_suggested_not_the_intruders() -> None:
    suggestions, skipped = suggest_networks(judge(history(), settings()))
    assert {s.network for s in suggestions} == {
        "192.0.2.0/24",  # three addresses across the /24
        "198.51.100.7/32",  # only ever one address: no wider than the evidence
        "2001:db8:77:1::/64",  # IPv6: the /64 privacy addresses rotate in
    }
    office = suggestions[0]
    assert office.text == (
        "192.0.2.0/24: 112 successful sign-ins by 4 users over 27 days, all with MFA"
    )
    assert office.label("2026-12-06").startswith("review 2026-12-06: 112 successful sign-ins")
    why = {s.network: s.reason for s in skipped}
    assert why["203.0.113.0/24"] == "sign-ins after a burst of failed sign-ins"
    # Never suggested: only failures, only root, only once (not even listed when it
    # never alerted, as failures below the burst threshold do not).
    assert "198.18.0.0/24" not in {s.network for s in suggestions}
    assert why["198.18.5.0/24"].startswith("only root")
    assert why["198.18.9.0/24"] == "a single successful sign-in"


def test_an_intruder_on_several_days_is_still_not_suggested() -> None:
    """A stolen password (no failures first) used on several days: still no MFA."""
    records = planted.team_history(NOW)
    records += [planted.record(NOW - timedelta(days=d), user="bob", ip="203.0.113.77", mfa="No")
                for d in (2, 4, 7)]  # fmt: skip
    sign_ins = [s for r in records if (s := parse_sign_in(r)) is not None]
    suggestions, skipped = suggest_networks(judge(sign_ins, settings()))
    assert "203.0.113" not in " ".join(s.network for s in suggestions)
    assert {s.network: s.reason for s in skipped}["203.0.113.0/24"] == (
        "sign-ins after a burst of failed sign-ins"  # the first intruder's, same /24
    )
    records = [r for r in records if r["sourceIPAddress"] != planted.ATTACKER]
    sign_ins = [s for r in records if (s := parse_sign_in(r)) is not None]
    _, skipped = suggest_networks(judge(sign_ins, settings()))
    assert {s.network: s.reason for s in skipped}["203.0.113.0/24"] == (
        "3 of 3 sign-ins without MFA"
    )


def test_covering_network_never_wider_than_the_group() -> None:
    import ipaddress

    v4 = ipaddress.ip_network("192.0.2.0/24")
    assert str(covering_network(["192.0.2.10", "192.0.2.11"], v4)) == "192.0.2.10/31"
    assert str(covering_network(["192.0.2.1", "192.0.2.254"], v4)) == "192.0.2.0/24"
    v6 = ipaddress.ip_network("2001:db8:1::/48")
    assert str(covering_network(["2001:db8:1::1"], v6)) == "2001:db8:1::/64"
    assert str(covering_network(["2001:db8:1::1", "2001:db8:1:ff::1"], v6)) == "2001:db8:1::/56"


# ---------------------------------------------------------------- access keys


def _row(
    user: str, ip: str, calls: int, first_day: int, last_day: int, key: str = "AKIAEXAMPLEKEY00001"
):  # type: ignore[no-untyped-def]
    return {
        "key": key, "type": "IAMUser", "user": user, "arn": f"arn:aws:iam::{planted.ACCOUNT}:user/{user}",
        "ip": ip, "invokedBy": "", "kind": "AwsApiCall", "calls": calls,
        "first": NOW - timedelta(days=first_day), "last": NOW - timedelta(days=last_day),
    }  # fmt: skip


def test_key_rows_are_judged_by_the_notifiers_rule_and_except_suggested() -> None:
    allowlist = settings().allow_list()
    exceptions = (KeyException("deployer", ("192.0.2.0/24",)),)
    rows = [
        _row("ci", "198.51.100.20", 900, 40, 1),
        _row("ci", "198.51.100.21", 300, 30, 2),
        _row("deployer", "192.0.2.9", 50, 10, 1),  # its except entry covers it
        _row("laptop", "100.64.1.1", 12, 5, 1),  # the allowlist covers it
        _row("once", "203.0.113.5", 3, 1, 1),  # one day: no habit
    ]
    uses = [judge_key_use(r, allowlist, exceptions) for r in rows]
    assert [u.alerted for u in uses] == [True, True, False, False, True]
    assert uses[2].quiet_because == "from a network deployer may use its keys from"
    assert uses[3].quiet_because == "from the allowlist"
    assert uses[0].key.startswith("AKIA") and "EXAMPLEKEY00001" not in uses[0].key  # masked
    suggested = suggest_exceptions(uses)
    assert [s.entry() for s in suggested] == [{"user": "ci", "from": ["198.51.100.0/24"]}]
    assert suggested[0].evidence == "1200 calls with 1 key(s) from 1 network over 39 day(s)"


# ---------------------------------------------------------------- the rate limiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_limiter_lets_no_second_hold_more_than_two_requests() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, 1.0, clock=clock, sleep=clock.sleep)
    times = []
    for n in range(9):
        times.append(limiter.acquire())
        clock.now += 0.1 if n % 3 else 0.0  # bursts and gaps
    assert all(b - a >= 1.0 for a, b in zip(times, times[2:], strict=False))
    assert clock.slept and times[0] == 1000.0 and times[1] == 1000.0
    # Counted from when each answer came: a slow answer holds the next-but-one back.
    slow = RateLimiter(2, 1.0, clock=clock, sleep=clock.sleep)
    sent = []
    for _ in range(3):
        with slow.request():
            sent.append(clock.now)
            clock.now += 0.4  # the request takes 0.4 s
    assert sent[2] - (sent[0] + 0.4) >= 1.0
    # Idle long enough, and the next two go at once again.
    clock.now += 5
    start = clock.now
    assert limiter.acquire() == start and limiter.acquire() == start


# ---------------------------------------------------------------- --write


def test_write_keeps_the_files_comments_and_layout(tmp_path: Path) -> None:
    suggestions, _ = suggest_networks(judge(history(), settings()))
    entries = config_edit.chosen(suggestions, ["198.51.100.7/32", "192.0.2.0/24"], "2026-12-06")
    edited = config_edit.add_allowlist_entries(CONFIG, entries, "loginwatch.yaml")
    before, after = CONFIG.splitlines(), edited.splitlines()
    assert [line for line in after if line not in before] == [
        "  - cidr: 198.51.100.7/32",
        '    label: "review 2026-12-06: 9 successful sign-ins by 1 user over 24 days, all with MFA"',
        "  - cidr: 192.0.2.0/24",
        '    label: "review 2026-12-06: 112 successful sign-ins by 4 users over 27 days, all with MFA"',
    ]
    assert [line for line in after if line in before] == before  # nothing else moved
    assert after.index("  - cidr: 198.51.100.7/32") == before.index("rules:")  # in the list
    path = tmp_path / "loginwatch.yaml"
    path.write_text(CONFIG)
    config_edit.write_checked(str(path), edited)
    loaded = parse_config(path.read_text(), str(path), {})
    assert [str(e.network) for e in loaded.allowed][1:] == ["198.51.100.7/32", "192.0.2.0/24"]
    assert loaded.allowed[1].label and "9 successful sign-ins" in loaded.allowed[1].label
    with pytest.raises(UsageError, match="not among the suggestions"):
        config_edit.chosen(suggestions, ["10.0.0.0/8"], "2026-12-06")
