"""The allowlist: exact membership, and its compilation to a CloudWatch Logs filter pattern.

The pattern lists allowed networks as exclusions (``$.sourceIPAddress != ...``).
That fixes the one rule that matters: an exclusion term may only ever match
addresses *inside* the allowlist. A term that is too narrow makes the pattern
over-match (the alarm fires, the notifier's exact re-check drops the event); a
term that is too broad would silently miss an intruder, so none is emitted.

CloudWatch limits: 1024 characters, at most 2 regex terms, regex without
grouping parentheses, string wildcards (``*``) but no CIDR operator.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .config import AllowedEntry, IPNetwork
from .notifier.ipmatch import AllowList

MAX_PATTERN_LENGTH = 1024
MAX_REGEX_TERMS = 2
# A non-octet-aligned IPv4 range is written as this many wildcards at most
# before a regex (which covers any range in a few alternatives) is cheaper.
MAX_WILDCARDS_PER_NETWORK = 4
# Same for IPv6 ranges that are not on a 16-bit (hextet) boundary.
MAX_IPV6_BLOCKS = 4

FIELD = "$.sourceIPAddress"
BASE_TERMS = (
    '($.eventSource = "signin.amazonaws.com")',
    '($.eventName = "ConsoleLogin")',
    '($.responseElements.ConsoleLogin = "Success")',
)


class PatternError(ValueError):
    """The allowlist cannot be expressed in a filter pattern at all."""


def collapse(entries: Iterable[AllowedEntry | IPNetwork]) -> list[IPNetwork]:
    """Merge overlapping and adjacent entries; IPv4 first, each family sorted."""
    networks = [e.network if isinstance(e, AllowedEntry) else e for e in entries]
    v4 = [n for n in networks if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in networks if isinstance(n, ipaddress.IPv6Network)]
    return [*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6)]


def is_allowed(ip: str, networks: Sequence[IPNetwork]) -> bool:
    """Exact membership, the same rule the notifier applies to every event."""
    return AllowList([str(n) for n in networks]).contains(ip)


# ---------------------------------------------------------------- terms per network


DECIMAL = "0123456789"
HEX = "0123456789abcdef"


def decimal_range_regex(lo: int, hi: int) -> list[str]:
    """Regex alternatives (no groups) matching exactly the decimal numbers lo..hi, 0 ≤ lo ≤ hi.

    Numbers are written without leading zeros, as in a dotted-quad IPv4 address.
    """
    return range_regex(lo, hi, DECIMAL)


def range_regex(lo: int, hi: int, alphabet: str) -> list[str]:
    """Alternatives matching exactly lo..hi written in this base without leading zeros.

    Base 16 with lowercase digits is how an IPv6 hextet is written.
    """
    base = len(alphabet)

    def text(n: int) -> str:
        digits = ""
        while True:
            n, rest = divmod(n, base)
            digits = alphabet[rest] + digits
            if n == 0:
                return digits

    pieces: list[str] = []
    for width in range(1, len(text(hi)) + 1):
        start = max(lo, 0 if width == 1 else base ** (width - 1))
        end = min(hi, base**width - 1)
        if start <= end:
            pieces.extend(_same_width_range(text(start), text(end), alphabet))
    return pieces


def _char_class(first: str, last: str, alphabet: str) -> str:
    """A character class for the digits first..last; never spans non-digits (':' sits between)."""
    chars = alphabet[alphabet.index(first) : alphabet.index(last) + 1]
    if len(chars) == 1:
        return chars
    runs: list[str] = []
    for group in (DECIMAL, "abcdef"):
        part = [c for c in chars if c in group]
        if part:
            runs.append(f"{part[0]}-{part[-1]}" if len(part) > 2 else "".join(part))
    return f"[{''.join(runs)}]"


def _same_width_range(lo: str, hi: str, alphabet: str) -> list[str]:
    """Alternatives for equal-length digit strings lo..hi (both inclusive)."""
    top, bottom = alphabet[-1], alphabet[0]
    if len(lo) == 1:
        return [_char_class(lo, hi, alphabet)]
    if lo[0] == hi[0]:
        return [lo[0] + rest for rest in _same_width_range(lo[1:], hi[1:], alphabet)]
    width = len(lo) - 1
    out: list[str] = []
    first, last = alphabet.index(lo[0]), alphabet.index(hi[0])
    if lo[1:] != bottom * width:  # partial first block
        out += [lo[0] + rest for rest in _same_width_range(lo[1:], top * width, alphabet)]
        first += 1
    tail_partial = hi[1:] != top * width
    if tail_partial:
        last -= 1
    if first <= last:  # full middle blocks: a digit class followed by any digits
        any_digit = _char_class(bottom, top, alphabet)
        out.append(_char_class(alphabet[first], alphabet[last], alphabet) + any_digit * width)
    if tail_partial:
        out += [hi[0] + rest for rest in _same_width_range(bottom * width, hi[1:], alphabet)]
    return out


@dataclass(frozen=True)
class _Expression:
    """How one allowed network is written: wildcard/exact terms or regex alternatives."""

    network: IPNetwork
    strings: tuple[str, ...] = ()
    regexes: tuple[str, ...] = ()
    exact: bool = True

    @property
    def cost(self) -> int:
        return sum(len(_string_term(s)) + 4 for s in self.strings) + sum(
            len(r) + 1 for r in self.regexes
        )


def _ipv4_expression(network: ipaddress.IPv4Network) -> _Expression:
    octets = str(network.network_address).split(".")
    if network.prefixlen % 8 == 0 and network.prefixlen > 0:
        kept = network.prefixlen // 8
        text = ".".join(octets[:kept]) + ("" if kept == 4 else ".*")
        return _Expression(network, strings=(text,))
    aligned = (network.prefixlen // 8 + 1) * 8
    if network.prefixlen > 0 and 2 ** (aligned - network.prefixlen) <= MAX_WILDCARDS_PER_NETWORK:
        parts = [_ipv4_expression(sub).strings[0] for sub in network.subnets(new_prefix=aligned)]
        return _Expression(network, strings=tuple(parts))
    fixed = network.prefixlen // 8
    head = "^" + "".join(f"{o}\\." for o in octets[:fixed])
    lo = int(octets[fixed])
    hi = lo + 2 ** (8 - network.prefixlen % 8) - 1
    end = "$" if fixed == 3 else "\\."
    return _Expression(
        network, regexes=tuple(head + alt + end for alt in decimal_range_regex(lo, hi))
    )


def _ipv6_expression(network: ipaddress.IPv6Network) -> _Expression | None:
    # CloudTrail writes IPv6 in its own text form; the compressed form ("::") and
    # letter case may differ from ours, so IPv6 terms can only under-exclude
    # (over-match) — never exact, never a miss.
    if network.prefixlen == 128:
        return _Expression(network, strings=(str(network.network_address),), exact=False)
    if network.prefixlen == 0:
        return None
    if network.prefixlen % 16 == 0:
        whole = network.network_address.exploded.split(":")[: network.prefixlen // 16]
        text = ":".join(format(int(h, 16), "x") for h in whole) + ":*"
        return _Expression(network, strings=(text,), exact=False)
    aligned = (network.prefixlen // 16 + 1) * 16
    if 2 ** (aligned - network.prefixlen) <= MAX_IPV6_BLOCKS:
        parts = [_ipv6_expression(sub) for sub in network.subnets(new_prefix=aligned)]
        return _Expression(network, strings=tuple(p.strings[0] for p in parts if p), exact=False)
    # e.g. a /56: the whole hextets as text, then the partial hextet's range in hex.
    # ":" is written \x3A: AWS's pages disagree on whether ":" may appear in %regex%,
    # and both versions document \xhh.
    fixed = network.prefixlen // 16
    hextets = [int(h, 16) for h in network.network_address.exploded.split(":")]
    head = "^" + "".join(f"{h:x}{COLON}" for h in hextets[:fixed])
    lo = hextets[fixed]
    hi = lo + 2 ** (16 - network.prefixlen % 16) - 1
    end = "$" if fixed == 7 else COLON
    alternatives = tuple(head + alt + end for alt in range_regex(lo, hi, HEX))
    if lo == 0 and 0 < fixed < 7:
        # The partial hextet is 0 and written as "::" ("2001:db8:ab00::1" in ab00::/56).
        # Not for a range of the first hextet (::/3): "::" would also exclude IPv4-mapped
        # text (::ffff:198.51.100.7), which the notifier judges as the IPv4 address.
        alternatives += (head + COLON,)
    return _Expression(network, regexes=alternatives, exact=False)


COLON = "\\x3A"  # ":" inside a %regex% term


def _string_term(text: str) -> str:
    return f'({FIELD} != "{text}")'


# ---------------------------------------------------------------- the compiler


@dataclass(frozen=True)
class CompiledPattern:
    pattern: str
    # True: matches exactly the successful sign-ins from outside the allowlist, addresses
    # written as CloudTrail writes them (an IPv4-mapped IPv6 text form over-matches).
    exact: bool
    expressed: tuple[IPNetwork, ...]  # networks the pattern excludes
    not_expressed: tuple[IPNetwork, ...]  # allowed, but still matched (notifier filters them)
    notes: tuple[str, ...]

    @property
    def length(self) -> int:
        return len(self.pattern)


def compile_pattern(
    entries: Iterable[AllowedEntry | IPNetwork], *, base_terms: Sequence[str] = BASE_TERMS
) -> CompiledPattern:
    """Filter pattern matching successful ConsoleLogin events from outside the allowlist.

    ``base_terms`` select the events (default: successful console sign-ins); the
    allowlist's exclusions are added to them.
    """
    networks = collapse(entries)
    if not networks:
        raise PatternError("the allowlist is empty")
    expressions: list[_Expression] = []
    not_expressed: list[IPNetwork] = []
    for network in networks:
        expr = (
            _ipv4_expression(network)
            if isinstance(network, ipaddress.IPv4Network)
            else _ipv6_expression(network)
        )
        if expr is None:
            not_expressed.append(network)
        else:
            expressions.append(expr)

    # Drop the least valuable expressions (smallest share of their family's
    # address space) until the pattern fits. Dropping only ever over-matches.
    expressions.sort(key=lambda e: (-_share(e.network), e.cost))
    while expressions:
        pattern = _assemble(expressions, base_terms=base_terms)
        if pattern is not None:
            break
        not_expressed.append(expressions.pop().network)
    else:
        # Nothing fits: count every successful sign-in. Over-matching is safe (the
        # notifier's exact check keeps allowed sign-ins out of Slack); missing is not.
        pattern = _assemble([], base_terms=base_terms)
        assert pattern is not None  # the base terms alone are far inside every limit

    notes: list[str] = []
    if not expressions:
        notes.append(
            "no allowed network could be written into the filter pattern: the alarm fires on "
            "every successful console sign-in, and the notifier's exact check keeps allowed "
            "ones out of Slack"
        )
    elif not_expressed:
        notes.append(
            f"{len(not_expressed)} allowed network(s) are not in the pattern "
            f"({', '.join(map(str, sorted(not_expressed, key=str)[:5]))}"
            f"{', …' if len(not_expressed) > 5 else ''}): sign-ins from them fire the alarm, "
            "and the notifier's exact check keeps them out of Slack"
        )
    if any(not e.exact for e in expressions):
        notes.append(
            "IPv6 entries are matched by text prefix; an address written differently by "
            "CloudTrail may fire the alarm, and the notifier's exact check keeps it out of Slack"
        )
    exact = not not_expressed and all(e.exact for e in expressions)
    return CompiledPattern(
        pattern=pattern,
        exact=exact,
        expressed=tuple(e.network for e in expressions),
        not_expressed=tuple(sorted(not_expressed, key=lambda n: (n.version, n))),
        notes=tuple(notes),
    )


def _share(network: IPNetwork) -> float:
    return network.num_addresses / (2**network.max_prefixlen)


def _assemble(
    expressions: Sequence[_Expression], *, base_terms: Sequence[str] = BASE_TERMS
) -> str | None:
    """The pattern for these expressions, or None when it breaks a CloudWatch limit."""
    terms = list(base_terms)
    terms += [_string_term(s) for e in expressions for s in e.strings]
    alternatives = [r for e in expressions for r in e.regexes]
    # Split alternatives over at most two regex terms of similar length; a
    # network's alternatives may straddle both (each term is an independent !=).
    if alternatives:
        half = (len(alternatives) + 1) // 2 if len(alternatives) > 1 else 1
        groups = [alternatives[:half], alternatives[half:]]
        terms += [f"({FIELD} != %{'|'.join(g)}%)" for g in groups if g]
        if len([g for g in groups if g]) > MAX_REGEX_TERMS:
            return None
    pattern = "{ " + " && ".join(terms) + " }"
    return pattern if len(pattern) <= MAX_PATTERN_LENGTH else None
