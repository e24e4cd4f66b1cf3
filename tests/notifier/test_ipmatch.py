"""Exact allowlist membership, including IPv6 and IPv4-mapped addresses."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loginwatch.notifier.ipmatch import AllowList

ALLOW = AllowList(["203.0.113.0/24", "198.51.100.7", "2001:db8:1::/48"])


@pytest.mark.parametrize(
    ("ip", "allowed"),
    [
        ("203.0.113.0", True),
        ("203.0.113.255", True),
        ("203.0.114.0", False),
        ("198.51.100.7", True),
        ("198.51.100.8", False),
        ("2001:db8:1::1", True),
        ("2001:DB8:1:FFFF::1", True),
        ("2001:db8:2::1", False),
        ("::ffff:203.0.113.9", True),  # IPv4-mapped IPv6 is the IPv4 address
        ("::ffff:192.0.2.1", False),
        (" 203.0.113.5 ", True),
        ("AWS Internal", False),  # CloudTrail writes non-addresses sometimes
        ("signin.amazonaws.com", False),
        ("", False),
        ("203.0.113.300", False),
        ("203.0.113.0/24", False),  # a range is not an address
    ],
)
def test_membership(ip: str, allowed: bool) -> None:
    assert ALLOW.contains(ip) is allowed
    assert (ip in ALLOW) is allowed


def test_ipv4_mapped_range_in_allowlist_covers_plain_ipv4() -> None:
    allow = AllowList(["::ffff:192.0.2.0/120"])
    assert allow.contains("192.0.2.55")
    assert allow.contains("::ffff:192.0.2.55")
    assert not allow.contains("192.0.3.1")


def test_empty_allowlist_allows_nothing() -> None:
    assert not AllowList([]).contains("203.0.113.1")


def test_invalid_entry_is_named() -> None:
    with pytest.raises(ValueError, match="'not-a-cidr'"):
        AllowList(["203.0.113.0/24", "not-a-cidr"])


networks = st.one_of(
    st.builds(
        lambda a, p: ipaddress.IPv4Network((a, p), strict=False),
        st.ip_addresses(v=4),
        st.integers(0, 32),
    ),
    st.builds(
        lambda a, p: ipaddress.IPv6Network((a, p), strict=False),
        st.ip_addresses(v=6),
        st.integers(0, 128),
    ),
)


def reference_contains(nets: list, address) -> bool:
    """The same rule spelled out with ipaddress alone: mapped IPv6 counts as IPv4."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for net in nets:
        mapped = net.network_address.ipv4_mapped if net.version == 6 else None
        if mapped is not None and net.prefixlen >= 96:
            net = ipaddress.IPv4Network((mapped, net.prefixlen - 96))
        if net.version == address.version and address in net:
            return True
    return False


@given(st.lists(networks, max_size=4), st.ip_addresses())
def test_matches_ipaddress_reference(nets: list, address) -> None:
    allow = AllowList([str(n) for n in nets])
    assert allow.contains(str(address)) is reference_contains(nets, address)


@given(st.ip_addresses(v=4))
def test_mapped_and_plain_ipv4_agree(address) -> None:
    allow = AllowList(["10.0.0.0/8", "192.168.0.0/16"])
    assert allow.contains(str(address)) is allow.contains(f"::ffff:{address}")


@given(st.lists(networks, min_size=1, max_size=4), st.data())
def test_addresses_inside_an_entry(nets: list, data: st.DataObject) -> None:
    net = data.draw(st.sampled_from(nets))
    address = net.network_address + data.draw(st.integers(0, net.num_addresses - 1))
    allow = AllowList([str(n) for n in nets])
    assert allow.contains(str(address)) is reference_contains(nets, address)
    if address.version == 4 or address.ipv4_mapped is None:
        assert allow.contains(str(address))
