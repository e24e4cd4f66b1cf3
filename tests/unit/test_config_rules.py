"""`rules` and `slack.destinations`: what they turn on, and a clear error for each mistake."""

from __future__ import annotations

import pytest

from loginwatch.config import parse_config
from loginwatch.errors import ConfigError
from tests.unit.test_config import GOOD, WEBHOOK

URGENT = "https://hooks.slack.com/services/T000/B001/urgentsecretvalue"


def parse(extra: str, slack_extra: str = "", env: dict[str, str] | None = None):
    webhook = f"  webhook_url: {WEBHOOK}\n"
    text = GOOD.replace(webhook, webhook + slack_extra) + extra
    return parse_config(text, "lw.yaml", env or {})


def problems(extra: str, slack_extra: str = "") -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse(extra, slack_extra)
    return raised.value.problems


def enabled(config) -> dict[str, str]:
    return {r.name: r.severity for r in config.rules.rules}


def test_without_rules_the_allowlist_and_tamper_rules_are_on() -> None:
    assert enabled(parse("")) == {"outside_allowlist": "high", "tamper": "critical"}
    assert enabled(parse("rules:\n  tamper: {enabled: false}\n")) == {"outside_allowlist": "high"}


def test_a_listed_rule_is_on_with_its_default_severity_unless_turned_off() -> None:
    config = parse(
        "rules:\n  root_sign_in: {}\n  no_mfa: true\n  failed_sign_ins: {threshold: 5}\n"
        "  outside_allowlist: {enabled: false}\n  tamper: false\n"
    )
    assert enabled(config) == {
        "root_sign_in": "critical",
        "no_mfa": "medium",
        "failed_sign_ins": "medium",
    }
    failed = config.rules.failures
    assert (failed.threshold, failed.minutes) == (5, 5)


def test_each_rule_mistake_is_named_with_its_line() -> None:
    found = problems(
        "rules:\n"
        "  root_signin: {}\n"
        "  no_mfa: {severity: urgent}\n"
        "  failed_sign_ins: {threshold: 0, minutes: 90, enabled: yes-please}\n"
    )
    text = "\n".join(found)
    assert "lw.yaml:10: rules.root_signin: unknown key — did you mean 'root_sign_in'?" in text
    assert "lw.yaml:11: rules.no_mfa.severity: 'urgent' is not one of critical, high" in text
    assert "rules.failed_sign_ins.threshold: 0 is out of range (1-50)" in text
    assert "rules.failed_sign_ins.minutes: 90 is out of range (1-60)" in text
    assert "rules.failed_sign_ins.enabled: expected true or false" in text


def test_every_rule_off_is_refused() -> None:
    (problem,) = problems("rules:\n  outside_allowlist: false\n  tamper: false\n")
    assert "every rule is turned off" in problem


def test_destinations_load_with_their_own_webhook_never_shown() -> None:
    config = parse(
        "rules:\n  root_sign_in: {}\n",
        "  destinations:\n"
        "    - name: urgent\n"
        "      webhook_url: ${URGENT}\n"
        "      severities: [critical]\n"
        "      rules: [root_sign_in]\n"
        "      mention: S0123ABCD\n"
        "  default_gets: all\n",
        env={"URGENT": URGENT},
    )
    (urgent,) = config.destinations
    assert (urgent.name, urgent.severities, urgent.rules) == (
        "urgent",
        ("critical",),
        ("root_sign_in",),
    )
    assert urgent.mention == "S0123ABCD" and config.default_gets == "all"
    assert URGENT not in repr(config) and urgent.masked_webhook.endswith("…alue")


def test_each_destination_mistake_is_named() -> None:
    found = problems(
        "",
        "  default_gets: some\n"
        "  destinations:\n"
        "    - name: default\n"
        f"      webhook_url: {URGENT}\n"
        "      severities: [critcal]\n"
        "    - name: pager\n"
        "      webhook_url: http://example.com/hook\n"
        "      rules: [root_sign_in]\n"
        "      mention: everyone\n"
        "    - name: pager\n"
        f"      webhook_url: {URGENT}\n",
    )
    text = "\n".join(found)
    assert "slack.default_gets: 'some' is not valid" in text
    assert "slack.destinations[0].name: 'default' is not valid" in text
    assert "'critcal' is not one of critical, high, medium, low — did you mean 'critical'?" in text
    assert "slack.destinations[1].webhook_url: must be an https:// URL" in text
    assert "slack.destinations[1].mention: 'everyone' is not valid" in text
    assert "slack.destinations[2].name: 'pager' is used twice" in text
    assert "slack.destinations[2]: selects nothing" in text
    assert URGENT not in text


def test_a_destination_nothing_can_reach_is_a_warning() -> None:
    config = parse(
        "",
        f"  destinations:\n    - name: mfa\n      webhook_url: {URGENT}\n      rules: [no_mfa]\n",
    )
    assert any("rule(s) no_mfa are off" in w for w in config.warnings)
    assert any("receives nothing" in w for w in config.warnings)


def test_organization_and_account_destinations() -> None:
    config = parse(
        "organization:\n  enabled: true\n  accounts: [ou-ab12-abcdefgh, '111122223333']\n",
        f"  destinations:\n    - name: production\n      webhook_url: {URGENT}\n"
        "      accounts: ['111122223333']\n",
    )
    org = config.organization
    assert org.enabled and org.account_names
    assert (org.units, org.account_ids) == (("ou-ab12-abcdefgh",), ("111122223333",))
    assert config.destinations[0].accounts == ("111122223333",)
    # tamper is on by default in organization mode too (members watch their own
    # forwarding), without a word.
    assert config.rules.get("tamper") is not None
    assert config.warnings == ()

    off = parse(
        "",
        f"  destinations:\n    - name: p\n      webhook_url: {URGENT}\n      accounts: ['111122223333']\n",
    )
    assert any("organization.enabled: true" in w for w in off.warnings)


def test_tamper_may_be_listed_in_organization_mode_and_says_what_the_fast_path_off_costs() -> None:
    org = "organization:\n  enabled: true\n"
    listed = parse(org + "rules:\n  tamper: {enabled: true, severity: high}\n")
    assert enabled(listed) == {"outside_allowlist": "high", "tamper": "high"}
    assert listed.warnings == ()
    off = parse(org + "fast_path:\n  enabled: false\n")
    assert off.rules.get("tamper") is not None
    assert any(w.startswith("rules.tamper: the fast path is off") for w in off.warnings)
    # Turned off, nothing is said; outside organization mode neither.
    quiet = parse(org + "fast_path:\n  enabled: false\nrules:\n  tamper: false\n")
    assert not any("rules.tamper" in w for w in quiet.warnings)
    alone = parse("fast_path:\n  enabled: false\n")
    assert not any("rules.tamper" in w for w in alone.warnings)


def test_organization_mistakes_are_named() -> None:
    found = "\n".join(
        problems("organization:\n  enabled: maybe\n  accounts: [ou-x, 12345]\n  names: true\n")
    )
    assert "organization.enabled: expected true or false" in found
    assert "'ou-x' is neither an OU id" in found and "12345 is neither" in found
    assert "organization.names: unknown key" in found
