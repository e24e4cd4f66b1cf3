"""What the self-check checks: settings.json's optional ``self_check`` section.

The CLI writes it (one entry per thing ``status``'s "can it fire?" looks at); the
notifier reads it with the rest of the settings and validates it as strictly. Pure
data: no AWS, no I/O, so settings.py can import it without pulling anything in.

    {"checks": [{"check": KIND, "region": str, "name": str, ...extra}, ...],
     "heartbeat_parameter": str,   # "" without a heartbeat URL; else its SSM SecureString
     "weekly_summary": bool}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Each kind of check and the extra keys its entry carries (with their types).
CHECK_EXTRAS: dict[str, dict[str, type]] = {
    "trail": {"logs": bool},  # name: the trail's name or ARN
    "rule": {},  # an EventBridge rule of region
    "alarm": {},  # a CloudWatch alarm of region
    "subscription": {"endpoint": str},  # name: the topic's ARN; endpoint: the function's
    "concurrency": {},  # name: the function
    "table": {},  # name: the claims table
    "queue": {},  # name: a queue whose messages are alerts that were not delivered
    "webhook": {"destination": str},  # name: the SSM parameter holding the URL
}
CHECK_KINDS = tuple(CHECK_EXTRAS)
_KEYS = frozenset(("checks", "heartbeat_parameter", "weekly_summary"))


@dataclass(frozen=True)
class Check:
    kind: str
    region: str
    name: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any) -> Check:
        if not isinstance(data, Mapping):
            raise ValueError("each check must be an object")
        kind = data.get("check")
        if kind not in CHECK_EXTRAS:
            raise ValueError(f"check kind {kind!r} is not one of {CHECK_KINDS}")
        extras = CHECK_EXTRAS[kind]
        wanted = {"check", "region", "name", *extras}
        if set(data) != wanted:
            raise ValueError(
                f"a {kind} check has keys {sorted(wanted)}, not {sorted(map(str, data))}"
            )
        for key in ("region", "name"):
            if not isinstance(data[key], str) or not data[key]:
                raise ValueError(f"a {kind} check's {key} must be a non-empty string")
        for key, kind_type in extras.items():
            value = data[key]
            # bool is an int subclass, and a str is no bool: check the exact type.
            if type(value) is not kind_type or (kind_type is str and not value):
                raise ValueError(f"a {kind} check's {key} must be a {kind_type.__name__}")
        return cls(kind, data["region"], data["name"], {k: data[k] for k in extras})

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.kind, "region": self.region, "name": self.name, **self.extra}


@dataclass(frozen=True)
class SelfCheckSettings:
    checks: tuple[Check, ...]
    heartbeat_parameter: str = ""  # the dead-man's-switch URL's SecureString; "": none
    weekly_summary: bool = False

    @classmethod
    def from_dict(cls, data: Any) -> SelfCheckSettings:
        if not isinstance(data, Mapping) or set(data) != _KEYS:
            keys = sorted(map(str, data)) if isinstance(data, Mapping) else type(data).__name__
            raise ValueError(f"self_check must have keys {sorted(_KEYS)}, not {keys}")
        checks = data["checks"]
        if not isinstance(checks, list | tuple):
            raise ValueError("self_check.checks must be a list")
        if not isinstance(data["heartbeat_parameter"], str):
            raise ValueError("self_check.heartbeat_parameter must be a string")
        if not isinstance(data["weekly_summary"], bool):
            raise ValueError("self_check.weekly_summary must be true or false")
        parsed = tuple(Check.from_dict(c) for c in checks)
        if len({(c.kind, c.region, c.name, tuple(c.extra.items())) for c in parsed}) < len(parsed):
            raise ValueError("self_check.checks lists a check twice")
        return cls(parsed, data["heartbeat_parameter"], data["weekly_summary"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "checks": [c.to_dict() for c in self.checks],
            "heartbeat_parameter": self.heartbeat_parameter,
            "weekly_summary": self.weekly_summary,
        }
