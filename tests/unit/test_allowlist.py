"""The allowlist compiler: never miss a sign-in from outside; exact when it says so."""

from __future__ import annotations

import ipaddress
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from loginwatch.allowlist import (
    MAX_PATTERN_LENGTH,
    PatternError,
    collapse,
    compile_pattern,
    decimal_range_regex,
    is_allowed,
)
from loginwatch.demo import filter_eval
from tests.conftest import load_fixture

REGEX_TERM_LIMIT = 2


def sign_in(ip: str, outcome: str = "Success") -> dict:
    event = load_fixture("cloudtrail/console_login_iam_user_success_no_mfa.json")
    event["sourceIPAddress"] = ip
    event["responseElements"]["ConsoleLogin"] = outcome
    return event


def nets(*cidrs: str) -> list:
    return [ipaddress.ip_network(c) for c in cidrs]


def check_limits(pattern: str) -> None:
    assert len(pattern) <= MAX_PATTERN_LENGTH
    assert pattern.count("%") // 2 <= REGEX_TERM_LIMIT
    # CloudWatch regex has no grouping parentheses: only the term wrappers may use them.
    for term in pattern.strip("{} ").split(" && "):
        assert term.startswith("(") and term.endswith(")")
        assert "(" not in term[1:-1] and ")" not in term[1:-1]


def test_octet_aligned_prefixes_become_wildcards_and_are_exact() -> None:
    compiled = compile_pattern(nets("203.0.113.10/32", "198.51.100.0/24", "10.0.0.0/8"))
    assert '($.sourceIPAddress != "198.51.100.*")' in compiled.pattern
    assert '($.sourceIPAddress != "203.0.113.10")' in compiled.pattern
    assert '($.sourceIPAddress != "10.*")' in compiled.pattern
    assert compiled.exact and not compiled.notes
    check_limits(compiled.pattern)


def test_pattern_counts_only_successful_console_logins() -> None:
    pattern = compile_pattern(nets("203.0.113.0/24")).pattern
    assert filter_eval.matches(pattern, sign_in("192.0.2.1"))
    assert not filter_eval.matches(pattern, sign_in("192.0.2.1", "Failure"))
    assert not filter_eval.matches(pattern, sign_in("203.0.113.9"))
    other = sign_in("192.0.2.1") | {"eventName": "GetCallerIdentity"}
    assert not filter_eval.matches(pattern, other)


def test_fixtures_outside_allowlist_match_and_inside_do_not() -> None:
    pattern = compile_pattern(nets("203.0.113.0/24")).pattern
    for name in ("iam_user_success_no_mfa", "root_success", "assumed_role_sso", "iam_user_ipv6"):
        assert filter_eval.matches(pattern, load_fixture(f"cloudtrail/console_login_{name}.json"))
    assert not filter_eval.matches(
        pattern, load_fixture("cloudtrail/console_login_iam_user_success_mfa.json")
    )


def test_non_aligned_prefix_uses_regex_without_groups() -> None:
    compiled = compile_pattern(nets("192.0.2.64/26", "10.16.0.0/12"))
    check_limits(compiled.pattern)
    assert compiled.exact
    for ip, allowed in [
        ("192.0.2.64", True),
        ("192.0.2.127", True),
        ("192.0.2.63", False),
        ("192.0.2.128", False),
        ("10.16.0.1", True),
        ("10.31.255.255", True),
        ("10.32.0.0", False),
        ("10.15.0.0", False),
        ("10.160.0.1", False),
    ]:
        assert filter_eval.matches(compiled.pattern, sign_in(ip)) is not allowed, ip


def test_ipv6_prefix_is_reported_as_over_matching() -> None:
    compiled = compile_pattern(nets("2001:db8:1::/48"))
    assert not compiled.exact and compiled.notes
    assert not filter_eval.matches(compiled.pattern, sign_in("2001:db8:1::5"))
    assert filter_eval.matches(compiled.pattern, sign_in("2001:db8:2::5"))


def test_overlapping_entries_are_collapsed() -> None:
    assert [str(n) for n in collapse(nets("10.0.0.0/24", "10.0.0.5/32", "10.0.1.0/24"))] == [
        "10.0.0.0/23"
    ]


def test_too_long_allowlist_drops_entries_and_says_so() -> None:
    many = [ipaddress.ip_network(f"198.51.{i}.{j}/32") for i in range(4) for j in range(0, 250, 2)]
    compiled = compile_pattern(many)
    check_limits(compiled.pattern)
    assert not compiled.exact and compiled.not_expressed
    assert "not in the pattern" in compiled.notes[0]


def test_ipv6_prefix_off_a_hextet_boundary_uses_a_hex_range_regex() -> None:
    compiled = compile_pattern(nets("2001:db8:9200::/56", "2001:db8::/33"))
    check_limits(compiled.pattern)
    # a /56: hextet 4 is 0..ff; ":" written \x3A, which every version of AWS's docs allows
    assert r"^2001\x3Adb8\x3A9200\x3A[0-9a-f]\x3A" in compiled.pattern
    assert ":" not in "".join(compiled.pattern.split("%")[1::2])  # no bare ":" in a regex
    # the zero-compressed form of hextet 4 = 0 is excluded too (2001:db8:9200::1)
    for ip, allowed in [("2001:db8:9200::1", True), ("2001:db8:9200::", True),
                        ("2001:db8:9200:ff::1", True), ("2001:db8:9200:5::", True),
                        ("2001:db8:9200:100::1", False), ("2001:db8:9201:5::1", False),
                        ("2001:db8:7fff::1", True), ("2001:db8:8000::1", False)]:  # fmt: skip
        assert filter_eval.matches(compiled.pattern, sign_in(ip)) is not allowed, ip


def test_allowlist_that_cannot_be_expressed_counts_every_sign_in_and_says_so() -> None:
    compiled = compile_pattern(nets("::/0"))
    assert compiled.expressed == () and not compiled.exact
    assert "fires on every successful console sign-in" in compiled.notes[0]
    assert filter_eval.matches(compiled.pattern, sign_in("2001:db8::1"))
    with pytest.raises(PatternError):
        compile_pattern([])


@pytest.mark.parametrize(
    ("lo", "hi"),
    [(0, 0xFF), (0x1200, 0x12FF), (0x8000, 0xFFFF), (0, 0x7FFF), (0xA0, 0xAF), (0x9F0, 0xA0F)],
)
def test_hex_range_regex_matches_exactly(lo: int, hi: int) -> None:
    import re

    from loginwatch.allowlist import HEX, range_regex

    regex = re.compile("^(?:" + "|".join(range_regex(lo, hi, HEX)) + ")$")
    for n in [*range(max(0, lo - 300), min(0xFFFF, hi + 300) + 1, 7), lo, hi, lo - 1, hi + 1]:
        if 0 <= n <= 0xFFFF:
            assert bool(regex.match(format(n, "x"))) is (lo <= n <= hi), hex(n)
    assert not regex.match("0" + format(lo, "x"))  # leading zeros are not the canonical form
    assert ":" not in "".join(range_regex(lo, hi, HEX))


@pytest.mark.parametrize(("lo", "hi"), [(0, 255), (0, 0), (7, 7), (16, 31), (100, 199), (9, 10)])
def test_decimal_range_regex_matches_exactly(lo: int, hi: int) -> None:
    import re

    regex = re.compile("^(?:" + "|".join(decimal_range_regex(lo, hi)) + ")$")
    assert [n for n in range(300) if regex.match(str(n))] == list(range(lo, hi + 1))


# ------------------------------------------------------------ properties

ipv4_networks = st.builds(
    lambda addr, prefix: ipaddress.ip_network(
        f"{ipaddress.IPv4Address(addr)}/{prefix}", strict=False
    ),
    st.integers(0, 2**32 - 1),
    st.integers(1, 32),
)
ipv6_networks = st.builds(
    lambda addr, prefix: ipaddress.ip_network(
        f"{ipaddress.IPv6Address(addr)}/{prefix}", strict=False
    ),
    st.integers(0, 2**128 - 1),
    st.sampled_from([3, 16, 29, 32, 47, 48, 52, 56, 60, 64, 100, 127, 128]),
)
allowlists = st.lists(
    st.one_of(ipv4_networks, ipv4_networks, ipv6_networks), min_size=1, max_size=40
)


def _ipv4_mapped(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    return isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None


def _sample_ips(networks: list, draw_ints: list[int]) -> list[str]:
    """IPs near and inside the allowlist's edges, plus random ones: where mistakes hide."""
    ips: list[str] = []
    for network in networks:
        first, last = int(network.network_address), int(network.broadcast_address)
        top = 2**network.max_prefixlen - 1
        for value in (first, last, first - 1, last + 1, (first + last) // 2):
            if 0 <= value <= top:
                ips.append(
                    str(
                        ipaddress.ip_address(value)
                        if network.version == 4
                        else ipaddress.IPv6Address(value)
                    )
                )
    for value in draw_ints:
        ips.append(str(ipaddress.IPv4Address(value % 2**32)))
        ips.append(str(ipaddress.IPv6Address(value)))
    return ips


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(allowlists, st.lists(st.integers(0, 2**128 - 1), max_size=10))
# Found by Hypothesis: ::ffff:128.0.0.1 is in ::/3 as written, outside 0.0.0.0/1 unmapped;
# ::ffff:0:0 is 0.0.0.0, allowed, and matched by an IPv4-only (exact) pattern.
@example([ipaddress.ip_network("::/3"), ipaddress.ip_network("0.0.0.0/1")], [2**128 - 1])
@example([ipaddress.ip_network("0.0.0.0/1")], [281_470_681_743_360])
def test_pattern_never_misses_and_is_exact_when_it_says_so(
    networks: list, randoms: list[int]
) -> None:
    compiled = compile_pattern(networks)
    check_limits(compiled.pattern)
    collapsed = collapse(networks)
    for ip in _sample_ips(collapsed, randoms):
        event = sign_in(ip)
        hit = filter_eval.matches(compiled.pattern, event)
        if not is_allowed(ip, collapsed):
            assert hit, f"pattern misses {ip} outside the allowlist"
        elif compiled.exact and not _ipv4_mapped(ip):
            # Exact for addresses as CloudTrail writes them; an IPv4 address written as
            # IPv4-mapped IPv6 text over-matches (never misses), and the notifier drops it.
            assert not hit, f"exact pattern matches allowed {ip}"
        elif any(ipaddress.ip_address(ip) in n for n in compiled.expressed):
            assert not hit or ipaddress.ip_address(ip).version == 6


@settings(max_examples=50, deadline=None)
@given(
    st.lists(ipv4_networks, min_size=1, max_size=20),
    st.lists(st.integers(0, 2**32 - 1), max_size=20),
)
def test_ipv4_only_allowlists_that_fit_are_exact(networks: list, randoms: list[int]) -> None:
    compiled = compile_pattern(networks)
    if compiled.not_expressed:
        return
    assert compiled.exact
    collapsed = collapse(networks)
    for value in randoms:
        ip = str(ipaddress.IPv4Address(value))
        assert filter_eval.matches(compiled.pattern, json.dumps(sign_in(ip))) is not is_allowed(
            ip, collapsed
        )
