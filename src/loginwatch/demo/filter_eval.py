"""Evaluate the subset of CloudWatch Logs JSON filter patterns that loginwatch generates.

moto stores filter patterns without evaluating JSON ones, so the tests and the
no-account demo use this to decide what the real metric filter would count.
Supported: ``{ term && term ... }`` where a term is ``($.a.b = "text")`` or
``!=``, the text may contain ``*`` wildcards, or the value is ``%regex%``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_TERM_RE = re.compile(r'^\((\$(?:\.[A-Za-z0-9_]+)+) (=|!=) (?:"([^"]*)"|%([^%]*)%)\)$')


@dataclass(frozen=True)
class _Term:
    path: tuple[str, ...]
    negated: bool
    matcher: re.Pattern[str]


@lru_cache(maxsize=64)
def parse(pattern: str) -> tuple[_Term, ...]:
    text = pattern.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise ValueError("not a JSON filter pattern")
    terms = []
    for raw in text[1:-1].strip().split(" && "):
        match = _TERM_RE.match(raw.strip())
        if not match:
            raise ValueError(f"unsupported term: {raw!r}")
        path, op, literal, regex = match.groups()
        if literal is not None:
            # Only * is special in a quoted value: it matches any run of characters.
            body = ".*".join(re.escape(part) for part in literal.split("*"))
            matcher = re.compile(f"^{body}$", re.DOTALL)
        else:
            matcher = re.compile(regex)  # CloudWatch regex terms search, like re.search
        terms.append(_Term(tuple(path.split(".")[1:]), op == "!=", matcher))
    return tuple(terms)


def _lookup(event: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(event, dict) or key not in event:
            return None
        event = event[key]
    return event


def matches(pattern: str, event: dict[str, Any] | str) -> bool:
    """True when the pattern would count this log event."""
    if isinstance(event, str):
        try:
            event = json.loads(event)
        except ValueError:
            return False
    for term in parse(pattern):
        value = _lookup(event, term.path)
        hit = isinstance(value, str) and term.matcher.search(value) is not None
        if hit == term.negated:
            return False
    return True
