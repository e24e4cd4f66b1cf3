"""The notifier's settings: ``settings.json`` packed next to these modules by the CLI.

Settings travel inside the deployment zip instead of Lambda environment
variables so the function's configuration is exactly what ``CodeSha256`` covers,
and so nothing secret-looking ever sits in the environment (the webhook URL
itself lives in SSM).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .ipmatch import AllowList
from .routing import DEFAULT_DESTINATION, Destination, Routes
from .rules import Rule, RuleSet
from .self_check_spec import SelfCheckSettings

# Looked up at call time (not bound as a default argument) so tests can point it
# at a temporary file.
SETTINGS_FILE = Path(__file__).parent / "settings.json"

_STRING_KEYS = (
    "name",
    "region",
    "webhook_parameter",
    "trail_log_group",
    "alarm_name",
    "claims_table",
    "retry_queue",
)
_ALL_KEYS = frozenset(
    (*_STRING_KEYS, "allowlist", "lookback_minutes", "rules", "alarms", "destinations",
     "default_gets", "account_names")
)  # fmt: skip
# May be left out (settings.json written before it existed reads the same).
_OPTIONAL_KEYS = frozenset(
    ("key_call_filter", "self_check", "allowlist_labels", "organization_home")
)
DEFAULT_GETS = ("unclaimed", "all")


class SettingsError(ValueError):
    """settings.json is missing or does not match the schema the CLI writes."""


@dataclass(frozen=True)
class Settings:
    name: str
    region: str
    webhook_parameter: str
    trail_log_group: str
    allowlist: tuple[str, ...]
    lookback_minutes: int
    alarm_name: str
    claims_table: str
    retry_queue: str
    rules: RuleSet = field(default_factory=RuleSet.default)
    # Every rule's alarm name → its rule (the outside_allowlist one is alarm_name).
    alarms: Mapping[str, str] | None = None
    # Extra Slack destinations; the default one reads webhook_parameter.
    destinations: tuple[Destination, ...] = ()
    default_gets: str = "unclaimed"
    # Organization mode: name each sign-in's account (organizations:DescribeAccount).
    account_names: bool = False
    # Organization mode: the home (management) account, where loginwatch runs; a tamper
    # event of another account is a member's. "": not in organization mode.
    organization_home: str = ""
    # access_key_outside_allowlist's backstop: the filter pattern of its metric filter
    # (api_call_patterns.api_call_filter, compiled by the CLI), so the alarm path reads
    # only calls from outside the allowlist. "": every call signed with a user's key.
    key_call_filter: str = ""
    # What the scheduled self-check checks (self_check_spec); None: no self-check.
    self_check: SelfCheckSettings | None = None
    # The labels of allowlist entries (config allowed_ips {cidr, label}): CIDR → label,
    # shown where an alert's address falls inside one (ip_location.describe).
    allowlist_labels: Mapping[str, str] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Settings:
        """Validate strictly: the CLI and the notifier ship together, so any
        mismatch is a bug that should fail loudly at packing time, not at 3 a.m."""
        if not isinstance(data, Mapping):
            raise SettingsError("settings must be a JSON object")
        missing = sorted(_ALL_KEYS - data.keys())
        unknown = sorted(set(data.keys()) - _ALL_KEYS - _OPTIONAL_KEYS)
        if missing or unknown:
            raise SettingsError(f"settings keys mismatch: missing {missing}, unknown {unknown}")
        for key in _STRING_KEYS:
            if not isinstance(data[key], str) or not data[key]:
                raise SettingsError(f"settings.{key} must be a non-empty string")
        allowlist = data["allowlist"]
        if not isinstance(allowlist, list | tuple) or not all(
            isinstance(entry, str) for entry in allowlist
        ):
            raise SettingsError("settings.allowlist must be a list of CIDR strings")
        try:
            AllowList(allowlist)
        except ValueError as exc:
            raise SettingsError(f"settings.allowlist: {exc}") from None
        lookback = data["lookback_minutes"]
        # bool is an int subclass; `true` is not a number of minutes.
        if isinstance(lookback, bool) or not isinstance(lookback, int) or lookback < 0:
            raise SettingsError("settings.lookback_minutes must be a non-negative integer")
        try:
            rules = RuleSet(tuple(Rule.from_dict(r) for r in data["rules"]))
            destinations = tuple(Destination.from_dict(d) for d in data["destinations"])
        except (TypeError, ValueError, AttributeError) as exc:
            raise SettingsError(f"settings rules/destinations: {exc}") from None
        alarms = data["alarms"]
        if not isinstance(alarms, Mapping) or not all(
            isinstance(k, str) and rules.get(v) for k, v in alarms.items()
        ):
            raise SettingsError("settings.alarms must map alarm names to enabled rules")
        if data["default_gets"] not in DEFAULT_GETS:
            raise SettingsError(f"settings.default_gets must be one of {DEFAULT_GETS}")
        if not isinstance(data["account_names"], bool):
            raise SettingsError("settings.account_names must be true or false")
        key_call_filter = data.get("key_call_filter", "")
        if not isinstance(key_call_filter, str) or len(key_call_filter) > 1024:
            raise SettingsError("settings.key_call_filter must be a filter pattern (a string)")
        try:
            self_check = (
                SelfCheckSettings.from_dict(data["self_check"]) if "self_check" in data else None
            )
        except ValueError as exc:
            raise SettingsError(f"settings.self_check: {exc}") from None
        home = data.get("organization_home", "")
        if not isinstance(home, str) or not (home == "" or (len(home) == 12 and home.isdigit())):
            raise SettingsError("settings.organization_home must be an account id or empty")
        labels = data.get("allowlist_labels", {})
        if not isinstance(labels, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise SettingsError("settings.allowlist_labels must map CIDR strings to labels")
        return cls(
            name=data["name"],
            region=data["region"],
            webhook_parameter=data["webhook_parameter"],
            trail_log_group=data["trail_log_group"],
            allowlist=tuple(allowlist),
            lookback_minutes=lookback,
            alarm_name=data["alarm_name"],
            claims_table=data["claims_table"],
            retry_queue=data["retry_queue"],
            rules=rules,
            alarms=dict(alarms),
            destinations=destinations,
            default_gets=data["default_gets"],
            account_names=data["account_names"],
            key_call_filter=key_call_filter,
            self_check=self_check,
            allowlist_labels=dict(labels) or None,
            organization_home=home,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of settings.json (``from_dict`` round-trips it)."""
        return {
            "name": self.name,
            "region": self.region,
            "webhook_parameter": self.webhook_parameter,
            "trail_log_group": self.trail_log_group,
            "allowlist": list(self.allowlist),
            "lookback_minutes": self.lookback_minutes,
            "alarm_name": self.alarm_name,
            "claims_table": self.claims_table,
            "retry_queue": self.retry_queue,
            "rules": [r.to_dict() for r in self.rules.rules],
            "alarms": dict(self.alarm_rules),
            "destinations": [d.to_dict() for d in self.destinations],
            "default_gets": self.default_gets,
            "account_names": self.account_names,
            **({"key_call_filter": self.key_call_filter} if self.key_call_filter else {}),
            **({"self_check": self.self_check.to_dict()} if self.self_check else {}),
            **({"allowlist_labels": dict(self.allowlist_labels)} if self.allowlist_labels else {}),
            **({"organization_home": self.organization_home} if self.organization_home else {}),
        }

    @property
    def alarm_rules(self) -> Mapping[str, str]:
        """Alarm name → the rule it watches for."""
        return self.alarms if self.alarms is not None else {self.alarm_name: "outside_allowlist"}

    def routes(self) -> Routes:
        default = Destination(DEFAULT_DESTINATION, self.webhook_parameter)
        return Routes(default, self.destinations, self.default_gets == "all")

    def allow_list(self) -> AllowList:
        return AllowList(self.allowlist)


def load_settings(path: Path | None = None) -> Settings:
    """Read settings.json from the package directory (or ``path``)."""
    target = path if path is not None else SETTINGS_FILE
    try:
        raw = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(
            f"{target.name} is missing from the notifier package; re-run `loginwatch setup`"
        ) from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{target.name} is not valid JSON: {exc}") from None
    return Settings.from_dict(data)
