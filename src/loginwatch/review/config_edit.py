"""`review --write`: add allowlist entries to the config file, keeping its comments and layout.

PyYAML drops comments. ruamel.yaml's round trip keeps them but still rewrites other
lines (``existing: null`` becomes ``existing:``), and a config file is the user's: a
tool that quietly reformats it loses their trust. So ruamel only *reads* the file —
where ``allowed_ips`` is and how its items are indented — and the new entries are
inserted as text right after its last item; every other byte stays as it was. The
result is parsed again and must hold the old items followed by the new ones.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError


@dataclass(frozen=True)
class NewEntry:
    cidr: str
    label: str


def _load(text: str) -> Any:
    from ruamel.yaml import YAML

    return YAML().load(text)  # round-trip mode: nodes know their line and column


_ITEM = re.compile(r"^(?P<indent>[ \t]*)-[ \t]")


def add_allowlist_entries(text: str, entries: Sequence[NewEntry], path: str = "") -> str:
    """The config text with ``entries`` appended to allowed_ips, every other line as it was."""
    data = _load(text)
    listed = data.get("allowed_ips") if isinstance(data, dict) else None
    by_hand = "; ".join(f"{{cidr: {e.cidr}, label: {json.dumps(e.label)}}}" for e in entries)
    if not isinstance(listed, list) or not listed or listed.fa.flow_style():  # type: ignore[attr-defined]
        raise UsageError(
            f"{path}: allowed_ips is not a block list (`- …` lines); nothing was written.",
            f"Add these to allowed_ips by hand: {by_hand}",
        )
    lines = text.splitlines(keepends=True)
    first_item = listed.lc.item(0)[0]  # type: ignore[attr-defined]
    match = _ITEM.match(lines[first_item])
    if match is None:
        raise UsageError(f"{path}: cannot read how allowed_ips is indented; nothing was written.",
                         f"Add these to allowed_ips by hand: {by_hand}")  # fmt: skip
    indent = match.group("indent")
    end = _after_last_item(data, lines, listed.lc.item(len(listed) - 1)[0])  # type: ignore[attr-defined]
    newline = "\r\n" if lines[0].endswith("\r\n") else "\n"
    added = "".join(
        f"{indent}- cidr: {e.cidr}{newline}{indent}  label: {json.dumps(e.label)}{newline}"
        for e in entries
    )
    before = "".join(lines[:end])
    if before and not before.endswith(("\n", "\r")):
        before += newline
    edited = before + added + "".join(lines[end:])
    _check(edited, [*listed], entries, path)
    return edited


def _after_last_item(data: Any, lines: list[str], last_item: int) -> int:
    """The index of the line after the last item's last line: before the next top-level
    key (and the blank and comment lines above it, which belong to that key)."""
    following = [
        data.lc.key(k)[0] for k in data if data.lc.key(k)[0] > last_item
    ]  # top-level keys below the list
    end = min(following) if following else len(lines)
    while end > last_item + 1 and _blank_or_comment(lines[end - 1]):
        end -= 1
    return end


def _blank_or_comment(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _check(edited: str, old: list[Any], entries: Sequence[NewEntry], path: str) -> None:
    listed = _load(edited).get("allowed_ips")
    new = [{"cidr": e.cidr, "label": e.label} for e in entries]
    if list(listed[: len(old)]) != old or [dict(i) for i in listed[len(old) :]] != new:
        raise UsageError(f"{path}: could not add to allowed_ips safely; nothing was written.")


def unified_diff(before: str, after: str, path: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=path,
            tofile=f"{path} (with the suggestions)",
        )
    )


def chosen(suggestions: Sequence[Any], networks: Sequence[str], today: str) -> list[NewEntry]:
    """The suggestions to write (all, or those ``networks`` names), each labelled with
    its evidence. Naming a network that was not suggested is an error, not a silent skip."""
    known = {s.network: s for s in suggestions}
    unknown = [n for n in networks if n not in known]
    if unknown:
        raise UsageError(
            f"--network {', '.join(unknown)}: not among the suggestions "
            f"({', '.join(known) or 'there are none'}).",
            "Name a suggested network as shown, or add other networks to allowed_ips by hand.",
        )
    picked = [known[n] for n in dict.fromkeys(networks)] if networks else list(suggestions)
    return [NewEntry(s.network, s.label(today)) for s in picked]


def write_checked(path: str, text: str) -> None:
    """Write ``text`` to ``path`` only if it loads as a valid config; atomically (a
    crash leaves the old file or the new one, never half of one)."""
    import os
    import tempfile
    from pathlib import Path

    from ..config import load_config

    target = Path(path)
    handle, temp = tempfile.mkstemp(prefix=".loginwatch-review-", suffix=".yaml", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        load_config(temp, need_webhook=False)  # a ConfigError leaves the file untouched
        os.chmod(temp, target.stat().st_mode & 0o777)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
