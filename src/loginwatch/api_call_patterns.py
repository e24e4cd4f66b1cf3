"""Patterns for API calls signed with a long-term key, and for AWS reporting a key exposed.

Pure logic, no AWS calls: the EventBridge event patterns of the rules
``access_key_outside_allowlist`` and ``credentials_exposed``, and the CloudWatch
Logs filter patterns of their alarm backstops.

**Outside the allowlist as an event pattern.** ``anything-but`` cannot wrap
``cidr`` (Event Ruler accepts only ``prefix``, ``suffix``, ``wildcard`` and
``equals-ignore-case`` inside it), so "outside" is written, for IPv4, as the
allowlist's complement: the fewest CIDR blocks covering every IPv4 address not
allowed. A block of one address is a plain string (Event Ruler rejects ``/32``
and reads an address-shaped string as that one address, whatever its text form).
The values are spread over as many patterns (rules) as the pattern-size quota
needs.

**IPv6: one rule for every IPv6 call.** Event Ruler compares an address as hex
digits (8 for IPv4, 32 for IPv6) against a CIDR's digit range and matches as soon
as the digits read prove the value inside, so the families cross: an IPv6 block
shorter than /32 matches the IPv4 addresses whose 32 bits fall strictly inside
its first 32 bits (``::/0`` matches every IPv4 address but 0.0.0.0 and
255.255.255.255). The IPv6 complement written as cidrs would forward nearly every
in-scope IPv4 call, allowed ones included. So the IPv6 side is one pattern whose
``sourceIPAddress`` is ``{"wildcard": "*:*"}``: every address written with a
colon (all IPv6, IPv4-mapped ones included; never a dotted IPv4 address, "AWS
Internal" or a DNS name). It is there unless the allowlist holds ``::/0``.

What this forwards (the notifier re-checks every address exactly):

- an IPv4 call from inside the allowlist: never (the IPv4 values cover only the
  IPv4 complement, and no IPv6 cidr remains to cross over);
- an IPv4 call from outside: by exactly one IPv4 rule;
- an IPv6 call, inside the allowlist or not: always, by the IPv6 rule, and
  possibly a second time by an IPv4 rule, as an IPv4 block also matches an IPv6
  address whose first 32 bits it holds (the notifier's claims absorb the
  duplicate).

``tests/support/event_ruler.py`` models Event Ruler's comparison, the wildcard
included.
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from .allowlist import CompiledPattern, collapse, compile_pattern
from .config import AllowedEntry, IPNetwork

# The event shapes, the identity types in scope and AWS's quarantine policy are the
# notifier's (notifier/api_calls.py, notifier/protocol.py): defined once, there.
from .notifier.api_calls import HEALTH_SOURCE
from .notifier.api_calls import IN_SCOPE_TYPES as IN_SCOPE_IDENTITY_TYPES
from .notifier.api_calls import QUARANTINE_FILTER as QUARANTINE_FILTER
from .notifier.api_calls import QUARANTINE_POLICY_PREFIX as QUARANTINE_POLICY_PREFIX
from .notifier.protocol import API_CALL_DETAIL_TYPE as API_CALL_DETAIL_TYPE
from .notifier.protocol import HEALTH_DETAIL_TYPE as HEALTH_DETAIL_TYPE
from .notifier.protocol import TEST_EVENT_SOURCE

DEFAULT_PATTERN_LIMIT = 2048  # EventBridge's default event pattern size quota (raisable)

Value = str | dict[str, str]  # one sourceIPAddress value: an address, {"cidr": …}, {"wildcard": …}

# Every sourceIPAddress written with a colon: all IPv6 addresses and no IPv4 one
# (Event Ruler's wildcard: ``*`` matches any characters, none included; only strings).
IPV6_VALUE: dict[str, str] = {"wildcard": "*:*"}
IPV6_NOTE = "every IPv6 call, re-checked by the notifier"


def pattern_json(pattern: dict[str, Any]) -> str:
    """The pattern as setup sends it (compact JSON); its length is what the quota counts."""
    return json.dumps(pattern, separators=(",", ":"))


# ---------------------------------------------------------------- the complement


def complement(
    networks: Iterable[AllowedEntry | IPNetwork],
) -> tuple[list[IPv4Network], list[IPv6Network]]:
    """The fewest CIDR blocks covering every address outside the allowlist, per family."""
    merged = collapse(networks)
    v4 = [n for n in merged if isinstance(n, IPv4Network)]
    v6 = [n for n in merged if isinstance(n, IPv6Network)]
    return (
        _gaps(v4, IPv4Network("0.0.0.0/0")),
        _gaps(v6, IPv6Network("::/0")),
    )


def _gaps(allowed: Sequence[IPNetwork], space: IPNetwork) -> list[Any]:
    """``space`` minus ``allowed`` (collapsed, sorted, disjoint) as minimal CIDR blocks."""
    out: list[IPNetwork] = []
    cursor = int(space.network_address)
    end = int(space.broadcast_address)
    make = type(space.network_address)
    for network in allowed:
        first, last = int(network.network_address), int(network.broadcast_address)
        if first > cursor:
            out += ipaddress.summarize_address_range(make(cursor), make(first - 1))
        cursor = max(cursor, last + 1)
    if cursor <= end:
        out += ipaddress.summarize_address_range(make(cursor), make(end))
    return out


def source_value(network: IPNetwork) -> Value:
    """How one block is written: a plain address for a single one (no /32, /128), else cidr."""
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return {"cidr": str(network)}


# ---------------------------------------------------------------- event patterns


def api_call_pattern(values: Sequence[Value]) -> dict[str, Any]:
    """The rule's pattern with these ``sourceIPAddress`` values."""
    return {
        "detail-type": [API_CALL_DETAIL_TYPE],
        # aws.* for CloudTrail's events; loginwatch's own test events cannot use aws.*.
        "source": [{"prefix": "aws."}, TEST_EVENT_SOURCE],
        "detail": {
            "userIdentity": {
                "type": list(IN_SCOPE_IDENTITY_TYPES),
                # made by an AWS service on the user's behalf
                "invokedBy": [{"exists": False}],
            },
            # CloudTrail writes it (as "true") only for calls from a console session
            "sessionCredentialFromConsole": [{"exists": False}],
            "sourceIPAddress": list(values),
        },
    }


def patterns_by_family(
    allowed: Iterable[AllowedEntry | IPNetwork], *, limit: int = DEFAULT_PATTERN_LIMIT
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(IPv4 patterns, IPv6 patterns). IPv4: the family's complement packed into the
    fewest patterns of at most ``limit`` characters, none when the allowlist holds
    0.0.0.0/0. IPv6: one pattern matching every IPv6 address (``IPV6_VALUE``), none
    when the allowlist holds ::/0."""
    v4, v6 = complement(allowed)
    return (
        _pack([source_value(n) for n in v4], limit),
        _pack([dict(IPV6_VALUE)] if v6 else [], limit),
    )


def event_patterns(
    allowed: Iterable[AllowedEntry | IPNetwork], *, limit: int = DEFAULT_PATTERN_LIMIT
) -> list[dict[str, Any]]:
    """Patterns (one per rule and region) matching in-scope API calls from outside the
    allowlist over IPv4 and every in-scope IPv6 call: IPv4 ones first, then the IPv6
    one; each ``len(pattern_json(p)) <= limit``."""
    v4, v6 = patterns_by_family(allowed, limit=limit)
    return v4 + v6


def _pack(values: list[Value], limit: int) -> list[dict[str, Any]]:
    if not values:
        return []
    empty = len(pattern_json(api_call_pattern([])))  # the pattern with "sourceIPAddress":[]
    room = limit - empty
    sizes = [len(json.dumps(v, separators=(",", ":"))) for v in values]
    # Every value but a pattern's first costs one more character: its comma.
    if max(sizes) > room:
        raise ValueError(
            f"a pattern limit of {limit} characters cannot hold even one address range "
            f"(the rest of the pattern takes {empty})"
        )
    bins = _in_order(sizes, room)
    if len(bins) > _lower_bound(sizes, room):
        decreasing = _first_fit_decreasing(sizes, room)
        if len(decreasing) < len(bins):
            bins = sorted(decreasing, key=min)
    return [api_call_pattern([values[i] for i in sorted(b)]) for b in bins]


def _lower_bound(sizes: list[int], room: int) -> int:
    # n patterns hold at most n * (room + 1) characters of values (commas included).
    return math.ceil((sum(sizes) + len(sizes)) / (room + 1))


def _in_order(sizes: list[int], room: int) -> list[list[int]]:
    bins: list[list[int]] = []
    used = room + 1
    for i, size in enumerate(sizes):
        cost = size + (1 if bins and bins[-1] else 0)
        if used + cost > room:
            bins.append([i])
            used = size
        else:
            bins[-1].append(i)
            used += cost
    return bins


def _first_fit_decreasing(sizes: list[int], room: int) -> list[list[int]]:
    bins: list[list[int]] = []
    used: list[int] = []
    for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        for b, total in enumerate(used):
            if total + 1 + sizes[i] <= room:
                bins[b].append(i)
                used[b] += 1 + sizes[i]
                break
        else:
            bins.append([i])
            used.append(sizes[i])
    return bins


def rules_needed(
    allowed: Iterable[AllowedEntry | IPNetwork], limit: int = DEFAULT_PATTERN_LIMIT
) -> int:
    """How many rules per region ``access_key_outside_allowlist`` needs."""
    return len(event_patterns(allowed, limit=limit))


def describe(
    allowed: Iterable[AllowedEntry | IPNetwork], limit: int = DEFAULT_PATTERN_LIMIT
) -> str:
    """One line for ``validate``: rules per region, per family, and the largest pattern."""
    v4, v6 = patterns_by_family(allowed, limit=limit)
    count = len(v4) + len(v6)
    if not count:
        return "no rule needed: the allowlist covers every address"
    largest = max(len(pattern_json(p)) for p in v4 + v6)
    ipv6 = f"IPv6: {len(v6)}" + (f" — {IPV6_NOTE}" if v6 else "")
    return (
        f"{count} rule{'s' if count != 1 else ''} per region "
        f"(IPv4: {len(v4)}, {ipv6}), "
        f"largest pattern {largest:,} of {limit:,} characters"
    )


# ---------------------------------------------------------------- AWS says a key is exposed

KEY_EXPOSED_PATTERN: dict[str, Any] = {
    "$or": [
        # AWS Health's RISK service: match the service, not a list of event codes
        # (real exposures have arrived under codes not in AWS's list).
        {
            "source": [HEALTH_SOURCE],
            "detail-type": [HEALTH_DETAIL_TYPE],
            "detail": {"service": ["RISK"]},
        },
        # AWS attaching its quarantine policy to the key's user.
        {
            "source": ["aws.iam"],
            "detail-type": [API_CALL_DETAIL_TYPE],
            "detail": {
                "eventName": ["AttachUserPolicy"],
                "requestParameters": {"policyArn": [{"prefix": QUARANTINE_POLICY_PREFIX}]},
            },
        },
        # `test-alert --rule credentials_exposed`: loginwatch's own marked event.
        {"source": [TEST_EVENT_SOURCE], "detail-type": [HEALTH_DETAIL_TYPE]},
    ]
}


# ---------------------------------------------------------------- the alarm backstops

API_CALL_FILTER_TERMS = (
    '($.eventType = "AwsApiCall")',
    '($.userIdentity.type = "IAMUser" || $.userIdentity.type = "Root" '
    '|| $.userIdentity.type = "FederatedUser")',
    "($.userIdentity.invokedBy NOT EXISTS)",
    "($.sessionCredentialFromConsole NOT EXISTS)",
    '($.sourceIPAddress != "AWS Internal")',
    '($.sourceIPAddress != "*.amazonaws.com")',
)


def api_call_filter(allowed: Iterable[AllowedEntry | IPNetwork]) -> CompiledPattern:
    """The metric filter counting in-scope API calls from outside the allowlist (entries
    that do not fit in 1,024 characters are left out: it over-counts, never misses)."""
    return compile_pattern(allowed, base_terms=API_CALL_FILTER_TERMS)
