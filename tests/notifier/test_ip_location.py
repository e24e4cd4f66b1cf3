"""Where an address is: country and owner from the packed table, special ranges by
name, an allowlist entry's label; and alerts on both paths saying it."""

from __future__ import annotations

import pytest

from loginwatch import ip_location_data
from loginwatch.notifier import ip_location
from loginwatch.notifier.events import parse_sign_in
from loginwatch.notifier.slack_message import build_alert_message, sign_in_block
from tests.notifier.block_kit import assert_slack_takes
from tests.notifier.conftest import cloudtrail_record


@pytest.mark.parametrize(
    ("address", "country", "owner"),
    [
        ("80.152.1.1", "🇩🇪 Germany", "AS3320 Deutsche Telekom AG"),
        ("8.8.8.8", "🇺🇸 United States", "AS15169 Google"),
        ("2003:de::1", "🇩🇪 Germany", "AS3320 Deutsche Telekom AG"),
        ("2001:4860:4860::8888", "🇺🇸 United States", "AS15169 Google"),
        ("::ffff:80.152.1.1", "🇩🇪 Germany", "AS3320"),
    ],
)
def test_public_addresses_are_named_with_country_and_owner(
    address: str, country: str, owner: str
) -> None:
    described = ip_location.describe(address)
    assert described.startswith(f"{country} · {owner}")


@pytest.mark.parametrize(
    ("address", "said"),
    [
        ("10.1.2.3", "private network (RFC 1918)"),
        ("172.16.0.9", "private network (RFC 1918)"),
        ("192.168.1.1", "private network (RFC 1918)"),
        ("192.0.2.7", "documentation range (RFC 5737)"),
        ("198.51.100.23", "documentation range (RFC 5737)"),
        ("203.0.113.9", "documentation range (RFC 5737)"),
        ("2001:db8::1", "documentation range (RFC 3849)"),
        ("100.64.0.1", "carrier-grade NAT (RFC 6598)"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("AWS Internal", "AWS internal"),
        ("cloudformation.amazonaws.com", "AWS internal"),
        ("not an address", "not an IP address"),
    ],
)
def test_special_ranges_say_what_they_are(address: str, said: str) -> None:
    assert ip_location.describe(address) == said


def test_an_allowlisted_address_shows_its_entrys_label_the_most_specific_first() -> None:
    labels = {"80.152.0.0/14": "Office", "80.152.1.0/24": "VPN"}
    assert ip_location.describe("80.152.1.1", labels) == "allowlist: VPN"
    assert ip_location.describe("80.153.0.1", labels) == "allowlist: Office"
    assert ip_location.describe("10.0.0.1", {"10.0.0.0/8": "HQ"}) == "allowlist: HQ"
    assert ip_location.describe("8.8.8.8", labels).startswith("🇺🇸")


def test_flags_are_regional_indicators() -> None:
    assert ip_location.flag("de") == "🇩🇪"
    assert ip_location.flag("") == ""
    assert ip_location.country_name("GB") == "United Kingdom"


def test_the_table_is_the_same_bytes_each_time_it_is_converted() -> None:
    first = ip_location_data.table_bytes()
    assert first.startswith(ip_location.MAGIC)
    assert ip_location.Table(first).built == ip_location_data.source_date()


def _sign_in(ip: str):  # type: ignore[no-untyped-def]
    record = cloudtrail_record("alice")
    record["sourceIPAddress"] = ip
    sign_in = parse_sign_in(record)
    assert sign_in is not None
    return sign_in


@pytest.mark.parametrize("fast_path_seconds", [2.5, None])  # fast path, alarm backstop
def test_an_alert_on_either_path_says_where_the_address_is(
    fast_path_seconds: float | None,
) -> None:
    payload = build_alert_message(
        [_sign_in("80.152.1.1")],
        account_id="111122223333",
        alarm_name="loginwatch-unallowed-console-login",
        fast_path_seconds=fast_path_seconds,
    )
    text = str(payload)
    assert "🇩🇪 Germany · AS3320 Deutsche Telekom AG" in text
    assert_slack_takes(payload)


def test_a_sign_in_block_names_a_labelled_allowlist_entry() -> None:
    ip_location.use_labels({"80.152.1.0/24": "VPN"})
    try:
        block = sign_in_block(_sign_in("80.152.1.1"), 0)
    finally:
        ip_location.use_labels({})
    assert "(allowlist: VPN)" in block["text"]["text"]
