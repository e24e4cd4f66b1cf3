"""A test-only evaluator for the CloudWatch Logs JSON filter patterns loginwatch's tamper
backstop writes (notifier/tamper.own_changes_filter): ``{ … }`` around terms joined by
``&&`` and ``||`` with parentheses; a term is ``$.a.b[0] = "text"`` or ``!=`` (``*`` in
the text matches any run of characters), ``$.a IS FALSE`` or ``$.a NOT EXISTS``.

moto stores filter patterns without evaluating them, and demo/filter_eval.py reads only
``&&`` of ``=``/``!=`` terms. AWS's documentation does not say whether ``!=`` matches a
field the event lacks: ``missing_unequal`` picks either reading, so a test can hold a
pattern to both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

_TOKEN = re.compile(
    r'\s*(?:(?P<op>&&|\|\||\(|\)|!=|=)|(?P<kw>IS FALSE|NOT EXISTS)|"(?P<text>[^"]*)"'
    r"|(?P<sel>\$(?:\.[A-Za-z0-9_]+(?:\[\d+\])?)+)|(?P<word>[^\s()\"]+))"
)
_MISSING = object()

Match = Callable[[Any], bool]


def _tokens(pattern: str) -> list[tuple[str, str]]:
    text = pattern.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise ValueError("not a JSON filter pattern")
    body, found, at = text[1:-1], [], 0
    while body[at:].strip():
        token = _TOKEN.match(body, at)
        if token is None:
            raise ValueError(f"cannot read {body[at : at + 30]!r}")
        kind = token.lastgroup or ""
        found.append((kind, token.group(kind)))
        at = token.end()
    return found


def _lookup(event: Any, selector: str) -> Any:
    for part in re.findall(r"\.([A-Za-z0-9_]+)(?:\[(\d+)\])?", selector):
        name, index = part
        if not isinstance(event, dict) or name not in event:
            return _MISSING
        event = event[name]
        if index:
            if not isinstance(event, list) or len(event) <= int(index):
                return _MISSING
            event = event[int(index)]
    return event


def _wildcard(text: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(p) for p in text.split("*")) + "$", re.DOTALL)


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], missing_unequal: bool) -> None:
        self.tokens, self.at, self.missing_unequal = tokens, 0, missing_unequal

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.tokens[self.at]
        if value is not None and token[1] != value:
            raise ValueError(f"expected {value!r}, got {token[1]!r}")
        self.at += 1
        return token

    def peek(self) -> str | None:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else None

    def expression(self) -> Match:
        parts = [self.conjunction()]
        while self.peek() == "||":
            self.take()
            parts.append(self.conjunction())
        return lambda event: any(p(event) for p in parts)

    def conjunction(self) -> Match:
        parts = [self.atom()]
        while self.peek() == "&&":
            self.take()
            parts.append(self.atom())
        return lambda event: all(p(event) for p in parts)

    def atom(self) -> Match:
        if self.peek() == "(":
            self.take("(")
            inner = self.expression()
            self.take(")")
            return inner
        kind, selector = self.take()
        if kind != "sel":
            raise ValueError(f"expected a selector, got {selector!r}")
        kind, op = self.take()
        if op == "IS FALSE":
            return lambda event: _lookup(event, selector) is False
        if op == "NOT EXISTS":
            return lambda event: _lookup(event, selector) is _MISSING
        _, literal = self.take()
        wanted = _wildcard(literal)
        unequal = op == "!="
        missing = self.missing_unequal

        def term(event: Any) -> bool:
            value = _lookup(event, selector)
            if value is _MISSING:
                return unequal and missing
            hit = isinstance(value, str) and wanted.match(value) is not None
            return hit != unequal

        return term


def counts(pattern: str, record: dict[str, Any] | str, *, missing_unequal: bool = False) -> bool:
    """Whether a metric filter with ``pattern`` counts this log event (a CloudTrail record)."""
    event = json.loads(record) if isinstance(record, str) else record
    parser = _Parser(_tokens(pattern), missing_unequal)
    match = parser.expression()
    if parser.at != len(parser.tokens):
        raise ValueError(f"left over: {parser.tokens[parser.at :]}")
    return match(event)
