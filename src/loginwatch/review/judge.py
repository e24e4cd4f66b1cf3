"""Every sign-in of the history through the notifier's own rules and routes: pure, no I/O.

Nothing here decides what alerts. ``RuleSet.alert`` (notifier/rules.py) decides, over
the bursts ``find_bursts`` finds in the whole history, exactly as the alarm path does
over its window, and ``Routes.targets`` (notifier/routing.py) says which channels would
have heard; the settings are the ones ``setup`` would pack into the notifier
(engine.notifier_settings), so the verdicts are the notifier's for the current config.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..notifier.events import SignIn, unique_newest_first
from ..notifier.ipmatch import parse_ip
from ..notifier.rules import Alert, Burst, find_bursts
from ..notifier.settings import Settings

IPV4_GROUP = 24
IPV6_GROUP = 48


@dataclass(frozen=True)
class Verdict:
    """One sign-in and what the notifier would have done with it."""

    sign_in: SignIn
    # The rules it would have set off ("" severity and () when none).
    rules: tuple[str, ...] = ()
    severity: str = ""
    destinations: tuple[str, ...] = ()
    allowlisted: bool = False
    in_burst: bool = False  # a failure counted in a failed_sign_ins burst

    @property
    def alerted(self) -> bool:
        return bool(self.rules)

    def to_json(self) -> dict[str, Any]:
        s = self.sign_in
        return {
            "event_id": s.event_id,
            "time": s.event_time.isoformat(),
            "principal": principal_of(s),
            "identity_type": s.identity_type,
            "source_ip": s.source_ip,
            "network": str(group_network(s.source_ip) or ""),
            "region": s.region,
            "account": s.account_id,
            "success": s.success,
            "mfa": s.mfa_used or "Unknown",
            "allowlisted": self.allowlisted,
            "rules": list(self.rules),
            "severity": self.severity or None,
            "destinations": list(self.destinations),
        }


def principal_of(sign_in: SignIn) -> str:
    """Who signed in, as a row names it: root, an IAM user, role/session."""
    if sign_in.is_root:
        return "root"
    if sign_in.role_name:
        return f"{sign_in.role_name}/{sign_in.user_name}"
    return sign_in.user_name or sign_in.arn or sign_in.identity_type


def group_network(ip: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The network an address is grouped under: its IPv4 /24 or IPv6 /48 (None for
    what is no address, such as "AWS Internal")."""
    address = parse_ip(ip)
    if address is None:
        return None
    prefix = IPV4_GROUP if address.version == 4 else IPV6_GROUP
    return ipaddress.ip_network(f"{address}/{prefix}", strict=False)


def judge(sign_ins: Iterable[SignIn], settings: Settings) -> list[Verdict]:
    """One verdict per sign-in (one per eventID), newest first."""
    ordered = unique_newest_first(sign_ins)
    rules, allowlist, routes = settings.rules, settings.allow_list(), settings.routes()
    failures = rules.failures
    bursts: list[Burst] = find_bursts(ordered, failures) if failures else []
    in_burst = {event_id: burst for burst in bursts for event_id in burst.event_ids}
    verdicts = []
    for sign_in in ordered:
        allowed = allowlist.contains(sign_in.source_ip)
        alert: Alert | None = rules.alert(sign_in, allowlist, bursts)
        burst = in_burst.get(sign_in.event_id) if not sign_in.success else None
        if alert is not None:
            names, severity = alert.rule_names, alert.severity
        elif burst is not None:  # reported as one burst message, this failure in it
            names, severity = (burst.rule.name,), burst.rule.severity
        else:
            verdicts.append(Verdict(sign_in, allowlisted=allowed))
            continue
        targets = routes.targets(names, severity, sign_in.account_id)
        verdicts.append(
            Verdict(
                sign_in,
                rules=names,
                severity=severity,
                destinations=tuple(d.name for d in targets),
                allowlisted=allowed,
                in_burst=burst is not None,
            )
        )
    return verdicts


@dataclass
class AddressRow:
    """One address a principal signed in from."""

    ip: str
    network: str
    sign_ins: int = 0
    failures: int = 0
    alerted: int = 0
    allowlisted: bool = False
    location: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "ip": self.ip,
            "network": self.network,
            "sign_ins": self.sign_ins,
            "failures": self.failures,
            "alerted": self.alerted,
            "allowlisted": self.allowlisted,
            "location": self.location or None,
        }


@dataclass
class PrincipalRow:
    """Per principal: how many sign-ins, from where, when, with MFA, how many alerted."""

    principal: str
    identity_type: str
    # Organization mode: the trail's log group holds every member account's sign-ins,
    # and "alice" in one account is not "alice" in another.
    account: str = ""
    sign_ins: int = 0
    failures: int = 0
    alerted: int = 0
    mfa_yes: int = 0
    mfa_no: int = 0
    mfa_unknown: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    addresses: dict[str, AddressRow] = field(default_factory=dict)
    rules: dict[str, int] = field(default_factory=dict)

    @property
    def networks(self) -> list[str]:
        return sorted({a.network for a in self.addresses.values() if a.network})

    @property
    def mfa(self) -> str:
        """ "all", "none", "some" or "n/a" (no successful sign-in), over successful ones."""
        total = self.mfa_yes + self.mfa_no + self.mfa_unknown
        if total == 0:
            return "n/a"
        if self.mfa_yes == total:
            return "all"
        return "none" if self.mfa_yes == 0 else "some"

    def to_json(self) -> dict[str, Any]:
        return {
            "principal": self.principal,
            "identity_type": self.identity_type,
            "account": self.account,
            "sign_ins": self.sign_ins,
            "failures": self.failures,
            "would_have_alerted": self.alerted,
            "rules": dict(self.rules),
            "mfa": {"yes": self.mfa_yes, "no": self.mfa_no, "unknown": self.mfa_unknown},
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "networks": self.networks,
            "addresses": [a.to_json() for a in self.addresses.values()],
        }


def principal_rows(verdicts: Sequence[Verdict]) -> list[PrincipalRow]:
    """One row per principal, most sign-ins first (root first: the one to look at)."""
    rows: dict[tuple[str, str], PrincipalRow] = {}
    for verdict in verdicts:
        s = verdict.sign_in
        name = principal_of(s)
        row = rows.setdefault(
            (s.account_id, name), PrincipalRow(name, s.identity_type, s.account_id)
        )
        row.sign_ins += 1
        row.failures += 0 if s.success else 1
        row.alerted += 1 if verdict.alerted else 0
        for rule in verdict.rules:
            row.rules[rule] = row.rules.get(rule, 0) + 1
        if s.success:
            mfa = (s.mfa_used or "").capitalize()
            if mfa == "Yes":
                row.mfa_yes += 1
            elif mfa == "No":
                row.mfa_no += 1
            else:
                row.mfa_unknown += 1
        row.first_seen = min(row.first_seen or s.event_time, s.event_time)
        row.last_seen = max(row.last_seen or s.event_time, s.event_time)
        network = group_network(s.source_ip)
        address = row.addresses.setdefault(
            s.source_ip,
            AddressRow(
                s.source_ip, str(network) if network else "", allowlisted=verdict.allowlisted
            ),
        )
        address.sign_ins += 1
        address.failures += 0 if s.success else 1
        address.alerted += 1 if verdict.alerted else 0
    for row in rows.values():
        row.addresses = dict(
            sorted(row.addresses.items(), key=lambda item: (-item[1].sign_ins, item[0]))
        )
    return sorted(
        rows.values(), key=lambda r: (r.principal != "root", -r.sign_ins, r.principal, r.account)
    )
