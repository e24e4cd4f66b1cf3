"""A test-only matcher for EventBridge event patterns, faithful to Event Ruler for what
loginwatch uses.

EventBridge is built on AWS's open-source Event Ruler (github.com/aws/event-ruler);
moto's matcher accepts patterns AWS rejects and its TestEventPattern is a stub. This
follows Event Ruler's README and source (CIDR.java, ByteMachine.java,
JsonRuleCompiler.java, input/WildcardParser.java):

- A pattern is an object; a leaf is a non-empty array of conditions, any of which may
  match any of the event's values there (an array in the event: any element).
- Conditions: a string, number, true/false/null (exact; numbers compare as numbers);
  ``{"prefix": s}``, ``{"suffix": s}`` (string values); ``{"exists": bool}``;
  ``{"cidr": "a/n"}``; ``{"wildcard": s}``;
  ``{"anything-but": v | [v…] | {"prefix"|"suffix"|"wildcard": s | [s…]}}``.
- ``wildcard`` (README, "Wildcard matching"; WildcardParser): string values only, the
  whole value; ``*`` matches any run of characters, none included; ``\\*`` is a
  literal star and ``\\\\`` a literal backslash. Rejected: a value that is not a
  string, two unescaped stars in a row ("Consecutive wildcard characters"), and a
  backslash before anything but a star or a backslash ("Invalid escape character").
  Not modelled: EventBridge's limit on a rule's wildcard complexity (Event Ruler's
  MachineComplexityEvaluator; loginwatch's one wildcard, ``*:*``, is far below it).
- ``exists`` looks at leaves only: a field whose value is an object has no leaf there,
  so ``exists: false`` matches it and ``exists: true`` does not (README, "Exists
  matching"). An empty array has no leaf either.
- ``"$or": [{…}, {…}, …]`` (two or more objects) at any level: any branch, AND the
  rest of that object.
- IP addresses, as Event Ruler does them: an address in the event (IPv4 dotted quad, or
  text that looks like IPv6; an IPv4-mapped IPv6 address counts as IPv4) becomes its
  bytes in upper-case hex, 8 digits or 32. A ``cidr`` becomes the hex range of its first
  and last address, and a *plain string that is an address* becomes the one-address
  range [x, x+1) (so it matches every text form of that address). A value matches a
  range as soon as the digits read prove it inside (ByteMachine.addRangePattern's
  trie), which is exact within a family and lets the families cross: an IPv4 range
  matches an IPv6 address whose first 32 bits it holds; an IPv6 range shorter than /32
  matches the IPv4 addresses strictly inside its first 32 bits (``::/0`` matches every
  IPv4 address but 0.0.0.0 and 255.255.255.255; ``2000::/3`` matches 32.1.2.3 but not
  32.0.0.0). A value that is not an address ("AWS Internal", a DNS name) never matches
  a range. A wildcard reads the value's text, never its hex digits: ``*:*`` matches
  every IPv6 address (an IPv4-mapped one too) and no dotted IPv4 address.

Rejected with ValueError, as AWS rejects them: ``anything-but`` wrapping ``cidr``; a
cidr of /32 (IPv4) or /128 (IPv6) or a malformed one; a pattern whose compact JSON is
longer than ``limit``; a leaf that is not a non-empty array; an unknown operator.
``{"prefix"|"suffix": {"equals-ignore-case": s}}`` is modelled for ASCII text (compared in
lower case). Valid in AWS but not modelled here (NotImplementedError): ``numeric``,
``equals-ignore-case`` (alone, or inside ``anything-but``).

Simplified: Event Ruler requires fields matched inside one array of objects to come
from the same element; here each field is matched on its own.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

DEFAULT_LIMIT = 2048

_IPV4_TEXT = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")  # Constants.IPv4_REGEX
_IPV6_TEXT = re.compile(r"[0-9a-fA-F:]*:[0-9a-fA-F:]*")  # Constants.IPv6_REGEX
_NOT_MODELLED = {"numeric", "equals-ignore-case"}


def matches(
    pattern: dict[str, Any], event: dict[str, Any], *, limit: int | None = DEFAULT_LIMIT
) -> bool:
    """Whether EventBridge would deliver ``event`` to a rule with ``pattern``."""
    return Pattern(pattern, limit=limit).matches(event)


def validate(pattern: dict[str, Any], *, limit: int | None = DEFAULT_LIMIT) -> None:
    """Raise ValueError where AWS would refuse the pattern."""
    Pattern(pattern, limit=limit)


class Pattern:
    """A compiled pattern: its alternatives, each a list of (path, conditions)."""

    def __init__(self, pattern: dict[str, Any], *, limit: int | None = DEFAULT_LIMIT) -> None:
        if not isinstance(pattern, dict) or not pattern:
            raise ValueError("an event pattern is a non-empty JSON object")
        size = len(json.dumps(pattern, separators=(",", ":")))
        if limit is not None and size > limit:
            raise ValueError(f"the pattern is {size} characters, more than the limit of {limit}")
        self.alternatives = _compile(pattern, ())

    def matches(self, event: dict[str, Any]) -> bool:
        return any(
            all(_leaf_matches(conditions, _leaves(event, path)) for path, conditions in alt)
            for alt in self.alternatives
        )


# ---------------------------------------------------------------- compiling


Alternative = list[tuple[tuple[str, ...], list["Condition"]]]


def _compile(node: dict[str, Any], path: tuple[str, ...]) -> list[Alternative]:
    alternatives: list[Alternative] = [[]]
    for key, value in node.items():
        if key == "$or":
            if not (
                isinstance(value, list)
                and len(value) >= 2
                and all(isinstance(b, dict) for b in value)
            ):
                # Event Ruler would read it as a field named "$or"; no pattern of ours means that.
                raise ValueError('"$or" takes an array of two or more objects')
            branches = [alt for branch in value for alt in _compile(branch, path)]
        elif isinstance(value, dict):
            if not value:
                raise ValueError(f"{'.'.join((*path, key))}: an empty object")
            branches = _compile(value, (*path, key))
        elif isinstance(value, list):
            if not value:
                raise ValueError(f"{'.'.join((*path, key))}: an empty array matches nothing")
            branches = [[((*path, key), [_condition(c) for c in value])]]
        else:
            raise ValueError(f"{'.'.join((*path, key))}: a match value must be in an array")
        alternatives = [a + b for a in alternatives for b in branches]
    return alternatives


@dataclass(frozen=True)
class Condition:
    # exact, prefix, suffix, wildcard, exists, range, anything-but,
    # anything-but-prefix/suffix/wildcard
    kind: str
    value: Any = None
    range: _Range | None = None


def _condition(raw: Any) -> Condition:
    if isinstance(raw, str):
        as_range = _address_range(raw)
        return Condition("range", range=as_range) if as_range else Condition("exact", raw)
    if raw is None or isinstance(raw, (bool, int, float)):
        return Condition("exact", raw)
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ValueError(f"{raw!r}: a condition is a value or an object with one operator")
    ((op, arg),) = raw.items()
    if op in ("prefix", "suffix"):
        if isinstance(arg, dict):
            # README, "Prefix/Suffix matching while ignoring case": {"prefix":
            # {"equals-ignore-case": s}}. Modelled for ASCII text (IAM names), by lower case.
            if list(arg) == ["equals-ignore-case"] and isinstance(arg["equals-ignore-case"], str):
                return Condition(f"{op}-ignore-case", arg["equals-ignore-case"].lower())
            raise NotImplementedError(f"{op} with {next(iter(arg), '')} is not modelled")
        if not isinstance(arg, str):
            raise ValueError(f"{op} takes a string")
        return Condition(op, arg)
    if op == "exists":
        if not isinstance(arg, bool):
            raise ValueError("exists takes true or false")
        return Condition("exists", arg)
    if op == "cidr":
        if not isinstance(arg, str):
            raise ValueError("cidr takes a string")
        return Condition("range", range=_cidr_range(arg))
    if op == "wildcard":
        if not isinstance(arg, str):
            raise ValueError("wildcard match pattern must be a string")
        return Condition("wildcard", _wildcard(arg))
    if op == "anything-but":
        return _anything_but(arg)
    if op in _NOT_MODELLED:
        raise NotImplementedError(f"{op} is valid in EventBridge but not modelled here")
    raise ValueError(f"unknown operator {op!r}")


def _anything_but(arg: Any) -> Condition:
    if isinstance(arg, dict):
        if len(arg) != 1:
            raise ValueError("anything-but takes one operator")
        ((op, inner),) = arg.items()
        if op in ("prefix", "suffix"):
            values = inner if isinstance(inner, list) else [inner]
            if not values or not all(isinstance(v, str) for v in values):
                raise ValueError(f"anything-but {op} takes a string or an array of strings")
            return Condition(f"anything-but-{op}", tuple(values))
        if op == "wildcard":
            values = inner if isinstance(inner, list) else [inner]
            if not values or not all(isinstance(v, str) for v in values):
                raise ValueError("anything-but wildcard takes a string or an array of strings")
            return Condition("anything-but-wildcard", tuple(_wildcard(v) for v in values))
        if op in _NOT_MODELLED:
            raise NotImplementedError(f"anything-but {op} is not modelled here")
        # JsonRuleCompiler: "Unsupported anything-but pattern: cidr" (and any other).
        raise ValueError(f"unsupported anything-but pattern: {op}")
    values = arg if isinstance(arg, list) else [arg]
    if not values or not all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in values
    ):
        raise ValueError("anything-but takes strings or numbers")
    return Condition("anything-but", tuple(values))


def _wildcard(text: str) -> re.Pattern[str]:
    """WildcardParser's reading of a wildcard value, as a regular expression matching the
    whole of a string."""
    parts: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "*":
            if text[i + 1 : i + 2] == "*":
                raise ValueError(f"Consecutive wildcard characters at pos {i}")
            parts.append(".*")
        elif char == "\\":
            following = text[i + 1 : i + 2]
            if following not in ("*", "\\"):
                raise ValueError(f"Invalid escape character at pos {i}")
            parts.append(re.escape(following))
            i += 1
        else:
            parts.append(re.escape(char))
        i += 1
    return re.compile("".join(parts), re.DOTALL)


# ---------------------------------------------------------------- addresses as hex ranges


@dataclass(frozen=True)
class _Range:
    bottom: str
    top: str
    open_bottom: bool
    open_top: bool
    fork: int = field(init=False, compare=False)  # the first digit where bottom and top differ

    def __post_init__(self) -> None:
        fork = next(i for i in range(len(self.bottom)) if self.bottom[i] != self.top[i])
        object.__setattr__(self, "fork", fork)

    def contains(self, digits: str) -> bool:
        """ByteMachine's range walk: match as soon as the digits read prove the value
        inside; dead as soon as they prove it outside or the value runs out."""
        bottom, top, last, fork = self.bottom, self.top, len(self.bottom) - 1, self.fork
        if len(digits) == len(bottom):
            # A value of the range's own length: the walk accepts exactly [bottom, top]
            # (less the open ends), and fixed-width upper-case hex compares as numbers.
            return (bottom < digits or (bottom == digits and not self.open_bottom)) and (
                digits < top or (digits == top and not self.open_top)
            )
        if len(digits) <= fork or digits[:fork] != bottom[:fork]:
            return False
        d = digits[fork]
        if fork == last:
            return (d > bottom[fork] or (d == bottom[fork] and not self.open_bottom)) and (
                d < top[fork] or (d == top[fork] and not self.open_top)
            )
        if bottom[fork] < d < top[fork]:
            return True
        if d not in (bottom[fork], top[fork]):
            return False
        on_bottom = d == bottom[fork]
        for j in range(fork + 1, len(bottom)):
            if j >= len(digits):
                return False
            d = digits[j]
            edge = bottom[j] if on_bottom else top[j]
            if j == last:
                is_open = self.open_bottom if on_bottom else self.open_top
                return (d > edge if on_bottom else d < edge) or (d == edge and not is_open)
            if (d > edge) if on_bottom else (d < edge):
                return True
            if d != edge:
                return False
        return False  # pragma: no cover - the last offset always decides


@lru_cache(maxsize=4096)
def address_digits(text: str) -> str | None:
    """An event value as Event Ruler compares it with ranges: upper-case hex of its bytes
    (8 digits for IPv4, 32 for IPv6), or None when it is not an IP address."""
    if not (_IPV4_TEXT.fullmatch(text) or _IPV6_TEXT.fullmatch(text)):
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # Java's InetAddress returns an Inet4Address
    return address.packed.hex().upper()


def _address_range(text: str) -> _Range | None:
    """A plain pattern string that is an address: the range of that one address."""
    digits = address_digits(text)
    if digits is None:
        return None
    last = digits[-1]
    if last == "F":
        return _Range(digits[:-1] + "E", digits, open_bottom=True, open_top=False)
    bumped = "A" if last == "9" else chr(ord(last) + 1)
    return _Range(digits, digits[:-1] + bumped, open_bottom=False, open_top=True)


def _cidr_range(text: str) -> _Range:
    address, slash, bits = text.partition("/")
    if not slash or not bits.isdigit():
        raise ValueError(f"malformed CIDR {text!r}")
    digits = address_digits(address)
    if digits is None:
        raise ValueError(f"malformed CIDR {text!r}")
    width = len(digits) * 4
    prefix = int(bits)
    if prefix >= width:  # CIDR.java: "IPv4 mask bits must be < 32", "IPv6 … < 128"
        raise ValueError(f"{text}: {'IPv4' if width == 32 else 'IPv6'} mask bits must be < {width}")
    value = int(digits, 16)
    host = (1 << (width - prefix)) - 1
    low, high = value & ~host, value | host
    return _Range(
        format(low, f"0{len(digits)}X"),
        format(high, f"0{len(digits)}X"),
        open_bottom=False,
        open_top=False,
    )


# ---------------------------------------------------------------- matching


def _leaves(node: Any, path: tuple[str, ...]) -> list[Any] | None:
    """The leaf values at ``path`` (arrays flattened), or None when there are none."""
    current = [node]
    for key in path:
        following: list[Any] = []
        for item in _flatten(current):
            if isinstance(item, dict) and key in item:
                following.append(item[key])
        current = following
    leaves = [v for v in _flatten(current) if not isinstance(v, dict)]
    return leaves or None


def _flatten(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if isinstance(value, list):
            out += _flatten(value)
        else:
            out.append(value)
    return out


def _leaf_matches(conditions: list[Condition], leaves: list[Any] | None) -> bool:
    if leaves is None:
        return any(c.kind == "exists" and c.value is False for c in conditions)
    digits = [address_digits(v) for v in leaves if isinstance(v, str)]
    digits = [d for d in digits if d is not None]
    for condition in conditions:
        kind = condition.kind
        if kind == "exists":
            if condition.value:
                return True
        elif kind == "range":
            assert condition.range is not None
            if any(condition.range.contains(d) for d in digits):
                return True
        elif any(_value_matches(condition, v) for v in leaves):
            return True
    return False


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return type(a) is type(b) and a == b


def _value_matches(condition: Condition, value: Any) -> bool:
    kind = condition.kind
    if kind == "exact":
        return _same(condition.value, value)
    if kind == "range":
        digits = address_digits(value) if isinstance(value, str) else None
        return (
            digits is not None and condition.range is not None and condition.range.contains(digits)
        )
    if kind == "prefix":
        return isinstance(value, str) and value.startswith(condition.value)
    if kind == "suffix":
        return isinstance(value, str) and value.endswith(condition.value)
    if kind == "prefix-ignore-case":
        return isinstance(value, str) and value.lower().startswith(condition.value)
    if kind == "suffix-ignore-case":
        return isinstance(value, str) and value.lower().endswith(condition.value)
    if kind == "wildcard":
        return isinstance(value, str) and condition.value.fullmatch(value) is not None
    if kind == "anything-but":
        return not any(_same(excluded, value) for excluded in condition.value)
    if kind == "anything-but-prefix":
        return isinstance(value, str) and not any(value.startswith(p) for p in condition.value)
    if kind == "anything-but-suffix":
        return isinstance(value, str) and not any(value.endswith(s) for s in condition.value)
    if kind == "anything-but-wildcard":
        return isinstance(value, str) and not any(w.fullmatch(value) for w in condition.value)
    raise AssertionError(kind)  # pragma: no cover
