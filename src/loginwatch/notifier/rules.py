"""Which rules a sign-in matches, at what severity, and the bursts of failed sign-ins.

Pure functions over parsed sign-ins: no I/O, no clock. Both paths (the fast
path's single event, the alarm path's window of log events) call the same
code, so a sign-in alerts for the same rules whichever path sees it first.

The metric filters for ``root_sign_in`` and ``no_mfa`` are the CIS patterns,
character for character (Security Hub checks them), and they over-count: the
root filter counts every root API call, the no-MFA one every SSO and federated
sign-in (their MFA happens at the identity provider and is never recorded).
The exact decision is made here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .events import SignIn, unique_newest_first
from .ipmatch import AllowList

# Most urgent first: a message takes the highest severity of the rules it matched.
SEVERITIES = ("critical", "high", "medium", "low")
# The order rules are listed in (the config's); a root sign-in is always named first.
SIGN_IN_RULE_NAMES = ("outside_allowlist", "root_sign_in", "no_mfa", "failed_sign_ins")
# Access keys: API calls signed with a long-term key from outside the allowlist, and AWS
# reporting a key exposed (AWS Health, its quarantine policy). Off unless listed.
KEY_RULE_NAMES = ("access_key_outside_allowlist", "credentials_exposed")
# A change that can switch loginwatch off (its own resources, the trail that feeds it).
TAMPER_RULE = "tamper"
RULE_NAMES = (*SIGN_IN_RULE_NAMES, *KEY_RULE_NAMES, TAMPER_RULE)
# On unless the config turns them off, even without a rules section: nobody switches
# loginwatch off unseen.
ON_BY_DEFAULT = ("outside_allowlist", TAMPER_RULE)
DEFAULT_SEVERITY = {
    "outside_allowlist": "high",
    "root_sign_in": "critical",
    "no_mfa": "medium",
    "failed_sign_ins": "medium",
    "access_key_outside_allowlist": "high",
    "credentials_exposed": "critical",
    "tamper": "critical",
}
DEFAULT_THRESHOLD = 3
DEFAULT_MINUTES = 5
# What each rule means, as a message says it.
RULE_PHRASES = {
    "outside_allowlist": "from outside the allowlist",
    "root_sign_in": "by the ROOT account",
    "no_mfa": "by an IAM user without MFA",
    "failed_sign_ins": "after repeated failed sign-ins",
    "access_key_outside_allowlist": "an access key used from outside the allowlist",
    "credentials_exposed": "AWS reports an access key exposed",
    "tamper": "a change that can switch loginwatch off",
}
_DISPLAY_ORDER = (
    "root_sign_in",
    "tamper",
    "credentials_exposed",
    "outside_allowlist",
    "access_key_outside_allowlist",
    "no_mfa",
    "failed_sign_ins",
)
ANYWHERE = "anywhere"


@dataclass(frozen=True)
class KeyException:
    """access_key_outside_allowlist's `except` entry: a principal whose keys may be used
    from these networks (or from anywhere) without an alert."""

    principal: str  # an IAM user name, or an IAM user's ARN (arn:…:user/…)
    networks: tuple[str, ...] = ()  # CIDRs; empty with anywhere=True
    anywhere: bool = False

    def covers(self, user_name: str, arn: str) -> bool:
        """Is this the principal? By ARN when the entry is one, else by user name."""
        if self.principal.startswith("arn:"):
            return bool(arn) and arn == self.principal
        return bool(user_name) and user_name == self.principal

    def to_dict(self) -> dict[str, Any]:
        return {"user": self.principal, "from": ANYWHERE if self.anywhere else list(self.networks)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KeyException:
        principal, networks = data.get("user"), data.get("from")
        if not isinstance(principal, str) or not principal:
            raise ValueError("an except entry needs a user")
        if networks == ANYWHERE:
            return cls(principal, (), anywhere=True)
        if not isinstance(networks, list) or not all(isinstance(n, str) for n in networks):
            raise ValueError(f"except {principal}: `from` must be CIDRs or {ANYWHERE!r}")
        return cls(principal, tuple(networks))


@dataclass(frozen=True)
class Rule:
    name: str
    severity: str
    # failed_sign_ins only: this many failures within `minutes` make a burst.
    threshold: int = 0
    minutes: int = 0
    # access_key_outside_allowlist only: principals whose keys may be used from elsewhere.
    exceptions: tuple[KeyException, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"name": self.name, "severity": self.severity}
        if self.name == "failed_sign_ins":
            found.update(threshold=self.threshold, minutes=self.minutes)
        if self.name == "access_key_outside_allowlist":
            found["except"] = [e.to_dict() for e in self.exceptions]
        return found

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        """Strict: settings.json is written by the CLI; anything odd is a packing bug."""
        name, severity = data.get("name"), data.get("severity")
        if name not in RULE_NAMES:
            raise ValueError(f"unknown rule {name!r}")
        if severity not in SEVERITIES:
            raise ValueError(f"rule {name}: unknown severity {severity!r}")
        threshold, minutes = data.get("threshold", 0), data.get("minutes", 0)
        if name == "failed_sign_ins" and not (_positive(threshold) and _positive(minutes)):
            raise ValueError("rule failed_sign_ins needs a positive threshold and minutes")
        listed = data.get("except", [])
        if not isinstance(listed, list):
            raise ValueError(f"rule {name}: except must be a list")
        exceptions = tuple(KeyException.from_dict(e) for e in listed)
        return cls(name, severity, int(threshold), int(minutes), exceptions)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.severity})"


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def highest(rules: Iterable[Rule]) -> str:
    """The most urgent severity among ``rules`` ("low" for none)."""
    found = [r.severity for r in rules]
    return min(found, key=severity_rank) if found else SEVERITIES[-1]


def in_display_order(rules: Iterable[Rule]) -> tuple[Rule, ...]:
    """Root first, then by severity, then in the config's order."""
    return tuple(
        sorted(rules, key=lambda r: (r.name != "root_sign_in", severity_rank(r.severity),
                                     _DISPLAY_ORDER.index(r.name)))
    )  # fmt: skip


def without_mfa(sign_in: SignIn) -> bool:
    """An IAM user's successful password sign-in that did not use MFA.

    "Unknown" (no additionalEventData) counts, as it does for the CIS pattern
    (MFAUsed != "Yes"): a record that cannot show MFA is not proof of it. Federated,
    SSO and assumed-role sign-ins are not IAM users': their MFA happens at the identity
    provider, and CloudTrail records "No" for them.
    """
    return sign_in.success and sign_in.identity_type == "IAMUser" and sign_in.mfa_used != "Yes"


@dataclass(frozen=True)
class Alert:
    """One sign-in and every rule it matched."""

    sign_in: SignIn
    rules: tuple[Rule, ...]
    # Said next to the sign-in, e.g. "after 4 failed sign-ins within 2 min".
    note: str = ""

    @property
    def severity(self) -> str:
        return highest(self.rules)

    @property
    def rule_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.rules)


@dataclass(frozen=True)
class Burst:
    """Failed sign-ins close together in one account: reported once, as one message."""

    rule: Rule
    failures: tuple[SignIn, ...]  # oldest first
    # Successful sign-ins that followed from one of the burst's IPs or user names.
    succeeded: tuple[SignIn, ...] = ()

    @property
    def count(self) -> int:
        return len(self.failures)

    @property
    def first(self) -> datetime:
        return self.failures[0].event_time

    @property
    def last(self) -> datetime:
        return self.failures[-1].event_time

    @property
    def account_id(self) -> str:
        return self.failures[0].account_id

    @property
    def source_ips(self) -> tuple[str, ...]:
        return _distinct(s.source_ip for s in self.failures)

    @property
    def user_names(self) -> tuple[str, ...]:
        return _distinct(s.user_name or ("root" if s.is_root else "") for s in self.failures)

    @property
    def event_ids(self) -> tuple[str, ...]:
        return tuple(s.event_id for s in self.failures if s.event_id)

    def follows(self, sign_in: SignIn) -> bool:
        """Did this successful sign-in come from the burst's IPs or names, soon after it?"""
        if not sign_in.success or sign_in.account_id != self.account_id:
            return False
        soon = self.last + timedelta(minutes=self.rule.minutes)
        if not self.first <= sign_in.event_time <= soon:
            return False
        name = sign_in.user_name or ("root" if sign_in.is_root else "")
        return sign_in.source_ip in self.source_ips or (bool(name) and name in self.user_names)

    @property
    def note(self) -> str:
        span = _span(self.last - self.first)
        return f"after {self.count} failed sign-ins within {span}"


def _distinct(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _span(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    return f"{seconds} s" if seconds < 120 else f"{round(seconds / 60)} min"


@dataclass(frozen=True)
class RuleSet:
    """The enabled rules."""

    rules: tuple[Rule, ...] = field(default_factory=tuple)

    @classmethod
    def default(cls) -> RuleSet:
        return cls(tuple(Rule(name, DEFAULT_SEVERITY[name]) for name in ON_BY_DEFAULT))

    def get(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)

    @property
    def failures(self) -> Rule | None:
        return self.get("failed_sign_ins")

    def matches(
        self, sign_in: SignIn, allowlist: AllowList, bursts: Sequence[Burst] = ()
    ) -> tuple[Rule, ...]:
        """The rules a sign-in matches, root first. Failed sign-ins match none on their
        own: they count towards a burst (``find_bursts``)."""
        if not sign_in.success:
            return ()
        found = []
        outside = self.get("outside_allowlist")
        if outside and not allowlist.contains(sign_in.source_ip):
            found.append(outside)
        root = self.get("root_sign_in")
        if root and sign_in.is_root:
            found.append(root)
        no_mfa = self.get("no_mfa")
        if no_mfa and without_mfa(sign_in):
            found.append(no_mfa)
        failed = self.failures
        if failed and any(b.follows(sign_in) for b in bursts):
            found.append(failed)  # a burst of failures, then a way in: the one to look at
        return in_display_order(found)

    def alert(
        self, sign_in: SignIn, allowlist: AllowList, bursts: Sequence[Burst] = ()
    ) -> Alert | None:
        matched = self.matches(sign_in, allowlist, bursts)
        if not matched:
            return None
        after = next((b for b in bursts if b.follows(sign_in)), None)
        return Alert(sign_in, matched, after.note if after and self.failures in matched else "")


def find_bursts(sign_ins: Iterable[SignIn], rule: Rule) -> list[Burst]:
    """Failed sign-ins at least ``rule.threshold`` strong within ``rule.minutes``, per
    account; a burst goes on while each failure comes within ``minutes`` of the one
    before. Successful sign-ins that followed are attached (``Burst.succeeded``).

    Every source IP and user name counts together: credential stuffing tries many
    names from one address, password spraying one name from many.
    """
    window = timedelta(minutes=rule.minutes)
    failures: dict[str, list[SignIn]] = {}
    successes: list[SignIn] = []
    for sign_in in unique_newest_first(sign_ins):
        if sign_in.success:
            successes.append(sign_in)
        else:
            failures.setdefault(sign_in.account_id, []).append(sign_in)
    bursts = []
    for account_failures in failures.values():
        ordered = sorted(account_failures, key=lambda s: (s.event_time, s.event_id))
        start = 0
        while start < len(ordered):
            end = start
            while (
                end + 1 < len(ordered)
                and ordered[end + 1].event_time - ordered[start].event_time <= window
            ):
                end += 1
            if end - start + 1 < rule.threshold:
                start += 1
                continue
            while (
                end + 1 < len(ordered)
                and ordered[end + 1].event_time - ordered[end].event_time <= window
            ):
                end += 1
            burst = Burst(rule, tuple(ordered[start : end + 1]))
            followed = tuple(s for s in successes if burst.follows(s))
            bursts.append(Burst(rule, burst.failures, followed))
            start = end + 1
    return sorted(bursts, key=lambda b: b.first)
