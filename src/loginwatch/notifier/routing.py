"""Which Slack channels a message goes to, by its severity and rules.

Each destination's webhook lives in its own SSM SecureString; the default one
(``slack.webhook_url``) gets what no other destination selects, or everything
with ``slack.default_gets: all``. A mention is built only from the config's own
values (here, channel or a user group id), never from event data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .rules import RULE_NAMES, SEVERITIES, Rule, RuleSet

DEFAULT_DESTINATION = "default"
DESTINATION_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
# Slack user group ids: "S" and upper-case letters and digits.
USER_GROUP_RE = re.compile(r"^S[A-Z0-9]{6,20}$")
MENTIONS = ("here", "channel")


def mention_markup(mention: str) -> str:
    """``<!here>``, ``<!channel>`` or ``<!subteam^ID>``; "" for none."""
    if not mention:
        return ""
    if mention in MENTIONS:
        return f"<!{mention}>"
    if USER_GROUP_RE.match(mention):
        return f"<!subteam^{mention}>"
    raise ValueError(f"mention {mention!r} is not here, channel or a user group id")


@dataclass(frozen=True)
class Destination:
    name: str
    parameter: str  # the SSM SecureString holding its webhook URL
    severities: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    mention: str = ""
    # Organization mode: only these accounts' messages (then by severity/rule, if listed).
    accounts: tuple[str, ...] = ()

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_DESTINATION

    def selects(self, rule_names: Iterable[str], severity: str, account: str = "") -> bool:
        """A listed severity or a listed rule selects a message (either is enough);
        listed accounts narrow it to theirs."""
        if self.accounts and account not in self.accounts:
            return False
        if not self.severities and not self.rules:
            return bool(self.accounts)
        return severity in self.severities or any(r in self.rules for r in rule_names)

    def claim_key(self, key: str) -> str:
        """Claims are per destination: a channel that failed is retried alone, and the
        ones that took the message are not posted to twice. The default keeps the bare
        key, as claims were made before there were destinations."""
        return key if self.is_default else f"{key}#{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "parameter": self.parameter,
            "severities": list(self.severities),
            "rules": list(self.rules),
            "mention": self.mention,
            "accounts": list(self.accounts),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Destination:
        name, parameter = data.get("name"), data.get("parameter")
        if not isinstance(name, str) or not DESTINATION_NAME_RE.match(name):
            raise ValueError(f"destination name {name!r} is not valid")
        if not isinstance(parameter, str) or not parameter:
            raise ValueError(f"destination {name}: no parameter")
        severities = tuple(data.get("severities", ()))
        rules = tuple(data.get("rules", ()))
        if not set(severities) <= set(SEVERITIES) or not set(rules) <= set(RULE_NAMES):
            raise ValueError(f"destination {name}: unknown severity or rule")
        mention = data.get("mention", "")
        mention_markup(mention)  # raises for anything else
        accounts = tuple(data.get("accounts", ()))
        if not all(isinstance(a, str) and a.isdigit() and len(a) == 12 for a in accounts):
            raise ValueError(f"destination {name}: accounts must be 12-digit ids")
        return cls(name, parameter, severities, rules, mention, accounts)


@dataclass(frozen=True)
class Routes:
    default: Destination
    extra: tuple[Destination, ...] = ()
    default_gets_all: bool = False

    @property
    def all(self) -> tuple[Destination, ...]:
        return (self.default, *self.extra)

    def targets(
        self, rule_names: Sequence[str], severity: str, account: str = ""
    ) -> tuple[Destination, ...]:
        """The destinations of one message, the default first when it gets it."""
        picked = tuple(d for d in self.extra if d.selects(rule_names, severity, account))
        if not picked or self.default_gets_all:
            return (self.default, *picked)
        return picked

    def for_test(
        self, rules: RuleSet, rule_name: Any
    ) -> tuple[Rule | None, tuple[Destination, ...]]:
        """A test of one enabled rule goes where that rule's alerts go; any other test (no
        rule, or a name that is no enabled rule's) goes to the default destination."""
        rule = rules.get(rule_name) if isinstance(rule_name, str) else None
        if rule is None:
            return None, (self.default,)
        return rule, self.targets((rule.name,), rule.severity)
