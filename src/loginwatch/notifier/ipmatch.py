"""Exact allowlist membership for IPv4 and IPv6 addresses.

The CloudWatch metric filter can only approximate CIDR ranges with string
wildcards, so it may over-match; this module is the exact check. The CLI imports
``AllowList`` too, so it stays pure: standard library only, no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# ::ffff:0:0/96 — IPv6 addresses that carry an IPv4 address (RFC 4291 §2.5.5.2).
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _unmap_network(network: IPNetwork) -> IPNetwork:
    """Turn an IPv4-mapped IPv6 range into the IPv4 range it stands for."""
    if (
        isinstance(network, ipaddress.IPv6Network)
        and network.prefixlen >= 96
        and network.network_address in _IPV4_MAPPED
    ):
        mapped = network.network_address.ipv4_mapped
        assert mapped is not None  # guaranteed by the membership test above
        return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


def parse_ip(text: str) -> IPAddress | None:
    """Parse a source IP; IPv4-mapped IPv6 becomes IPv4. None if it is not an IP.

    CloudTrail's ``sourceIPAddress`` is not always an address (for example
    ``"AWS Internal"`` or a service host name); those are never allowed.
    """
    candidate = text.strip()
    # A zone index (fe80::1%eth0) names an interface, not part of the address.
    candidate = candidate.split("%", 1)[0]
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class AllowList:
    """A set of CIDR ranges answering "is this IP allowed?" exactly.

    Entries may be CIDRs (``203.0.113.0/24``, ``2001:db8::/32``) or single
    addresses (``203.0.113.10``). Host bits are ignored (``203.0.113.10/24`` means
    ``203.0.113.0/24``): validating the user's spelling is the config loader's job.
    An entry that is not an IP range raises ``ValueError`` naming it.
    """

    __slots__ = ("_v4", "_v6", "cidrs")

    def __init__(self, cidrs: Iterable[str]) -> None:
        self.cidrs: tuple[str, ...] = tuple(cidrs)
        v4: list[ipaddress.IPv4Network] = []
        v6: list[ipaddress.IPv6Network] = []
        for entry in self.cidrs:
            try:
                network = _unmap_network(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError as exc:
                raise ValueError(f"allowlist entry {entry!r} is not an IP address or CIDR") from exc
            if isinstance(network, ipaddress.IPv4Network):
                v4.append(network)
            else:
                v6.append(network)
        self._v4 = tuple(v4)
        self._v6 = tuple(v6)

    def contains(self, ip: str) -> bool:
        """True only if ``ip`` parses as an address inside one of the ranges."""
        address = parse_ip(ip)
        if address is None:
            return False
        if isinstance(address, ipaddress.IPv4Address):
            return any(address in network for network in self._v4)
        return any(address in network for network in self._v6)

    def __contains__(self, ip: object) -> bool:
        return isinstance(ip, str) and self.contains(ip)

    def __repr__(self) -> str:
        return f"AllowList({list(self.cidrs)!r})"


# Documentation ranges first (RFC 5737, RFC 3849): a test event from one looks like no one.
_CANDIDATES = ("192.0.2.1", "198.51.100.1", "203.0.113.1", "2001:db8::1", "100.64.0.1")


def address_outside(allowlist: AllowList) -> str:
    """An address outside ``allowlist`` (for a test event that must look like an intruder)."""
    for candidate in _CANDIDATES:
        if not allowlist.contains(candidate):
            return candidate
    for first in range(1, 224):  # an allowlist of every documentation range: keep looking
        candidate = f"{first}.0.0.1"
        if not allowlist.contains(candidate):
            return candidate
    for first in range(0x2000, 0x4000, 0x100):
        candidate = f"{first:x}::1"
        if not allowlist.contains(candidate):
            return candidate
    raise ValueError("the allowlist covers every address loginwatch would try")
