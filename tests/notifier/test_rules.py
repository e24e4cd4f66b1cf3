"""The rules over real-shaped CloudTrail records: pure logic, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from loginwatch.notifier.events import SignIn, parse_sign_in
from loginwatch.notifier.ipmatch import AllowList
from loginwatch.notifier.routing import DEFAULT_DESTINATION, Destination, Routes, mention_markup
from loginwatch.notifier.rules import Rule, RuleSet, find_bursts, highest, in_display_order
from tests.notifier.conftest import cloudtrail_record, iso

OFFICE = AllowList(["203.0.113.0/24"])
ALL_RULES = RuleSet(
    (
        Rule("outside_allowlist", "high"),
        Rule("root_sign_in", "critical"),
        Rule("no_mfa", "medium"),
        Rule("failed_sign_ins", "medium", threshold=3, minutes=5),
    )
)
START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def sign_in(kind: str, **overrides: Any) -> SignIn:
    parsed = parse_sign_in(cloudtrail_record(kind, **overrides))
    assert parsed is not None
    return parsed


def names(rules: tuple[Rule, ...]) -> list[str]:
    return [r.name for r in rules]


def test_root_from_an_allowlisted_ip_is_root_sign_in_only() -> None:
    root = sign_in("root", sourceIPAddress="203.0.113.5")
    assert names(ALL_RULES.matches(root, OFFICE)) == ["root_sign_in"]


def test_an_iam_user_without_mfa_from_the_office_is_no_mfa() -> None:
    alice = sign_in("alice", sourceIPAddress="203.0.113.7")  # MFAUsed: No
    assert names(ALL_RULES.matches(alice, OFFICE)) == ["no_mfa"]


def test_an_sso_sign_in_without_mfa_used_yes_matches_nothing() -> None:
    sso = sign_in("sso", sourceIPAddress="203.0.113.8")  # AssumedRole, MFAUsed: No
    assert ALL_RULES.matches(sso, OFFICE) == ()
    # From outside it is still outside the allowlist, never "without MFA".
    assert names(ALL_RULES.matches(sign_in("sso"), OFFICE)) == ["outside_allowlist"]


def test_a_root_sign_in_from_outside_names_both_rules_root_first_critical() -> None:
    root = sign_in("root")  # 192.0.2.77
    matched = ALL_RULES.matches(root, OFFICE)
    assert names(matched) == ["root_sign_in", "outside_allowlist"]
    assert highest(matched) == "critical"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"additionalEventData": {"MFAUsed": "Yes"}}, []),
        ({"additionalEventData": {"MFAUsed": "YES"}}, []),  # seen in published records
        ({"additionalEventData": None}, ["no_mfa"]),  # no proof of MFA: counts, as for CIS
        ({"responseElements": {"ConsoleLogin": "Failure"}}, []),  # failures make bursts
    ],
)
def test_messy_records_are_judged_as_cis_would(extra: dict[str, Any], expected: list) -> None:
    alice = sign_in("alice", sourceIPAddress="203.0.113.7", **extra)
    assert names(ALL_RULES.matches(alice, OFFICE)) == expected


def test_rules_that_are_off_never_match() -> None:
    only_outside = RuleSet.default()
    assert only_outside.matches(sign_in("root", sourceIPAddress="203.0.113.5"), OFFICE) == ()
    assert only_outside.matches(sign_in("alice", sourceIPAddress="203.0.113.7"), OFFICE) == ()


def failures(*offsets: tuple[float, str, str]) -> list[SignIn]:
    """Failed sign-ins at (minutes after START, source IP, user name)."""
    found = []
    for index, (minutes, ip, user) in enumerate(offsets):
        moment = START + timedelta(minutes=minutes)
        record = cloudtrail_record(
            "failure",
            eventID=f"fail-{index}",
            eventTime=iso(moment),
            sourceIPAddress=ip,
            userIdentity={"type": "IAMUser", "userName": user, "accountId": "111122223333"},
        )
        found.append(parse_sign_in(record))
    return found


def test_four_failures_in_two_minutes_from_one_ip_are_one_burst() -> None:
    tried = failures(
        (0, "192.0.2.200", "alice"),
        (0.5, "192.0.2.200", "bob"),
        (1, "192.0.2.200", "alice"),
        (2, "192.0.2.200", "admin"),
    )
    (burst,) = find_bursts(tried, ALL_RULES.failures)
    assert burst.count == 4
    assert burst.source_ips == ("192.0.2.200",)
    assert burst.user_names == ("alice", "bob", "admin")
    assert (burst.first, burst.last) == (START, START + timedelta(minutes=2))
    assert burst.succeeded == ()


def test_below_the_threshold_or_spread_out_is_no_burst() -> None:
    rule = ALL_RULES.failures
    assert find_bursts(failures((0, "192.0.2.1", "a"), (1, "192.0.2.1", "a")), rule) == []
    spread = failures((0, "192.0.2.1", "a"), (4, "192.0.2.1", "a"), (9.5, "192.0.2.1", "a"))
    assert find_bursts(spread, rule) == []  # never 3 within 5 minutes


def test_a_burst_goes_on_while_failures_keep_coming_and_then_one_succeeds() -> None:
    tried = failures(*[(m, "192.0.2.9", "alice") for m in (0, 1, 2, 6, 10)], (30, "192.0.2.9", "x"))
    alice = sign_in(
        "alice",
        eventTime=iso(START + timedelta(minutes=11)),
        sourceIPAddress="198.51.100.1",  # another address, the same name
    )
    (burst,) = find_bursts([*tried, alice], ALL_RULES.failures)
    assert burst.count == 5  # 0..10 chained; the one at 30 min stands alone
    assert burst.succeeded == (alice,)
    alert = ALL_RULES.alert(alice, OFFICE, [burst])
    assert names(alert.rules) == ["outside_allowlist", "no_mfa", "failed_sign_ins"]
    assert alert.note == "after 5 failed sign-ins within 10 min"


def test_display_order_puts_root_first_then_severity() -> None:
    rules = [
        Rule("no_mfa", "critical"),
        Rule("outside_allowlist", "low"),
        Rule("root_sign_in", "low"),
    ]
    assert names(in_display_order(rules)) == ["root_sign_in", "no_mfa", "outside_allowlist"]


def test_destinations_select_by_severity_or_rule_and_the_default_gets_the_rest() -> None:
    urgent = Destination("urgent", "/p/urgent", severities=("critical",), mention="here")
    mfa = Destination("mfa-tickets", "/p/mfa", rules=("no_mfa",))
    routes = Routes(Destination(DEFAULT_DESTINATION, "/p/default"), (urgent, mfa))

    def where(rules: list[str], severity: str) -> list[str]:
        return [d.name for d in routes.targets(rules, severity)]

    assert where(["root_sign_in", "outside_allowlist"], "critical") == ["urgent"]
    assert where(["no_mfa"], "medium") == ["mfa-tickets"]
    assert where(["outside_allowlist", "no_mfa"], "high") == ["mfa-tickets"]
    assert where(["outside_allowlist"], "high") == ["default"]
    everything = Routes(routes.default, routes.extra, default_gets_all=True)
    assert [d.name for d in everything.targets(["no_mfa"], "medium")] == ["default", "mfa-tickets"]


def test_mentions_are_built_from_the_config_only() -> None:
    assert mention_markup("here") == "<!here>"
    assert mention_markup("channel") == "<!channel>"
    assert mention_markup("S0123ABCD") == "<!subteam^S0123ABCD>"
    assert mention_markup("") == ""
    for bad in ("everyone", "<!here>", "S01|x", "s0123abcd"):
        with pytest.raises(ValueError):
            mention_markup(bad)
