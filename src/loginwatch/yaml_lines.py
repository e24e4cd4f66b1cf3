"""YAML with line numbers: every value remembers its line, so a config error can point at it.

PyYAML's safe loader, walked node by node: duplicate keys, merge keys, deep nesting and
alias bombs are refused with the line they are on. ``Reader`` reads the located tree
and records every problem instead of stopping at the first one.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

import yaml

from .errors import ConfigError

ENV_REF_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Located:
    """A YAML value with the line it came from, so errors can point at it."""

    __slots__ = ("line", "value")

    def __init__(self, value: Any, line: int) -> None:
        self.value = value
        self.line = line


class Problems:
    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, line: int | None, key: str, message: str) -> None:
        where = f"{self.path}:{line}" if line else self.path
        self.items.append(f"{where}: {key}: {message}" if key else f"{where}: {message}")


MAX_DEPTH = 32  # a loginwatch config is 3 levels deep; more is a mistake or an attack
MAX_NODES = 50_000  # bounds alias expansion ("billion laughs") as well as plain size


class _Budget:
    def __init__(self) -> None:
        self.nodes = 0


def compose(text: str, path: str) -> Located:
    """Parse YAML into Located nodes, rejecting duplicate keys (PyYAML keeps the last one)."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return Located(None, 1)
            return _to_located(node, loader, path, depth=0, budget=_Budget())
        finally:
            loader.dispose()
    except RecursionError:
        raise ConfigError(
            [f"{path}: the YAML is nested too deeply (or an anchor refers to itself)"], path
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(
            [f"{path}:{line}: not valid YAML: {exc.problem or exc.context}"], path
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"], path) from None


def _to_located(
    node: yaml.Node, loader: yaml.SafeLoader, path: str, *, depth: int, budget: _Budget
) -> Located:
    line = node.start_mark.line + 1
    budget.nodes += 1
    if depth > MAX_DEPTH:
        raise ConfigError(
            [f"{path}:{line}: nested more than {MAX_DEPTH} levels (or an anchor refers to itself)"],
            path,
        )
    if budget.nodes > MAX_NODES:
        raise ConfigError(
            [f"{path}:{line}: the config has more than {MAX_NODES} values (aliases included)"],
            path,
        )
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Located] = {}
        key_lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ConfigError([f"{path}:{line}: YAML merge keys (<<) are not supported"], path)
            key = _to_located(key_node, loader, path, depth=depth + 1, budget=budget).value
            if not isinstance(key, str):
                shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else key_node.id
                raise ConfigError(
                    [f"{path}:{key_node.start_mark.line + 1}: keys must be text, got {shown!r}"],
                    path,
                )
            if key in result:
                raise ConfigError(
                    [
                        f"{path}:{key_node.start_mark.line + 1}: {key}: duplicate key "
                        f"(first at line {key_lines[key]}); keep one of them"
                    ],
                    path,
                )
            key_lines[key] = key_node.start_mark.line + 1
            value = _to_located(value_node, loader, path, depth=depth + 1, budget=budget)
            if isinstance(value_node, (yaml.MappingNode, yaml.SequenceNode)):
                # A section starts on its first child's line; an error about the key
                # (`allowed_ip:` misspelt) belongs on the key's own line.
                value.line = key_lines[key]
            result[key] = value
        return Located(result, line)
    if isinstance(node, yaml.SequenceNode):
        return Located(
            [
                _to_located(item, loader, path, depth=depth + 1, budget=budget)
                for item in node.value
            ],
            line,
        )
    try:
        return Located(loader.construct_object(node, deep=True), line)
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise ConfigError([f"{path}:{line}: cannot read this value: {exc}"], path) from None


# ---------------------------------------------------------------- schema

_TYPE_NAMES = {str: "text", int: "a whole number", list: "a list", dict: "a mapping"}


def type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


class Reader:
    """Walks the located tree, recording problems instead of raising on the first one."""

    def __init__(self, root: Located, problems: Problems, env: Mapping[str, str]) -> None:
        self.root = root
        self.problems = problems
        self.env = env

    def mapping(self, node: Located, key: str, allowed: tuple[str, ...]) -> dict[str, Located]:
        if node.value is None:
            return {}
        if not isinstance(node.value, dict):
            self.problems.add(node.line, key, f"expected a mapping, got {type_name(node.value)}")
            return {}
        for name, child in node.value.items():
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
                hint = f" — did you mean '{close[0]}'?" if close else ""
                valid = ", ".join(allowed)
                path = f"{key}.{name}" if key else name
                self.problems.add(child.line, path, f"unknown key{hint} (valid here: {valid})")
        return node.value

    def text(
        self, parent: dict[str, Located], key: str, path: str, *, required: bool = False
    ) -> tuple[str | None, int | None]:
        node = parent.get(key)
        if node is None or node.value is None:
            if required:
                line = node.line if node else None
                self.problems.add(line, path, "is required")
            return None, node.line if node else None
        if isinstance(node.value, bool) or not isinstance(node.value, (str, int, float)):
            self.problems.add(node.line, path, f"expected text, got {type_name(node.value)}")
            return None, node.line
        return self.interpolate(str(node.value), node.line, path), node.line

    def integer(
        self, parent: dict[str, Located], key: str, path: str, default: int
    ) -> tuple[int, int | None]:
        node = parent.get(key)
        if node is None or node.value is None:
            return default, None
        if isinstance(node.value, bool) or not isinstance(node.value, int):
            self.problems.add(
                node.line, path, f"expected a whole number, got {type_name(node.value)}"
            )
            return default, node.line
        return node.value, node.line

    def interpolate(self, value: str, line: int, path: str) -> str:
        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.env:
                self.problems.add(
                    line, path, f"environment variable {name} is not set (export {name}=...)"
                )
                return ""
            return self.env[name]

        return ENV_REF_RE.sub(substitute, value)
