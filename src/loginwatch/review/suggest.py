"""Which networks to add to the allowlist, and which ``except`` entries: pure, no I/O.

A suggestion is a network that *would have alerted* (outside the allowlist) for
sign-ins that look like the team's own. What counts as the team's own, and why:
- successful sign-ins only, and never root's: a network seen only in failures is
  someone guessing, and root should alert wherever it signs in from;
- at least ``MIN_SIGN_INS`` of them on at least ``MIN_DAYS`` different days: a network
  seen once (or in one sitting) is no habit, and could be an intruder's one visit;
- with MFA, at least ``MIN_MFA_SHARE`` of them (an IAM user's ``MFAUsed: Yes``; a
  federated or SSO sign-in's MFA happens at the identity provider and is never
  recorded, so it counts): one colleague without MFA does not make the office foreign,
  and the no_mfa rule is there for that colleague;
- none of them after a burst of failed sign-ins, and no more failures than successes
  from the network: what first fails and then gets in is what failed_sign_ins is for.
Networks are grouped to IPv4 /24 and IPv6 /48, and narrowed to the smallest prefix
holding every address seen (an IPv6 address no narrower than its /64, which privacy
addresses rotate within): the evidence never widens what it shows.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..notifier.api_calls import out_of_scope, parse_api_call
from ..notifier.ipmatch import AllowList, parse_ip
from ..notifier.rules import KeyException
from .judge import Verdict, group_network, principal_of

MIN_SIGN_INS = 2
MIN_DAYS = 2
MIN_MFA_SHARE = 0.9
IPV6_NARROWEST = 64
# A key used from more networks than this is not pinned to a list: the evidence is shown
# and the choice (`from: anywhere`, or moving the job to a role) left to a person.
MAX_EXCEPT_NETWORKS = 5
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Suggestion:
    """A network worth adding to allowed_ips, with the evidence for it."""

    network: str
    sign_ins: int
    users: tuple[str, ...]
    addresses: tuple[str, ...]
    days: int  # first to last sign-in, in days (at least 1)
    first: datetime
    last: datetime
    with_mfa: int = -1  # how many used MFA (-1: all of them)

    @property
    def evidence(self) -> str:
        users = f"{len(self.users)} user" + ("" if len(self.users) == 1 else "s")
        days = f"{self.days} day" + ("" if self.days == 1 else "s")
        mfa = "all" if self.with_mfa in (-1, self.sign_ins) else f"{self.with_mfa}"
        return f"{self.sign_ins} successful sign-ins by {users} over {days}, {mfa} with MFA"

    @property
    def text(self) -> str:
        return f"{self.network}: {self.evidence}"

    def label(self, today: str) -> str:
        """The allowlist entry's label: where it came from and why."""
        return f"review {today}: {self.evidence}"

    def to_json(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "evidence": self.evidence,
            "sign_ins": self.sign_ins,
            "users": list(self.users),
            "addresses": list(self.addresses),
            "days": self.days,
            "with_mfa": self.sign_ins if self.with_mfa == -1 else self.with_mfa,
            "first_seen": self.first.isoformat(),
            "last_seen": self.last.isoformat(),
        }


@dataclass(frozen=True)
class NotSuggested:
    """A network that would have alerted and is not suggested: why not."""

    network: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"network": self.network, "reason": self.reason}


def team_mfa(verdict: Verdict) -> bool:
    """MFA, as far as the record can show: an IAM user's Yes; a federated or SSO
    sign-in (MFA at the identity provider, never recorded)."""
    s = verdict.sign_in
    if s.identity_type == "IAMUser":
        return (s.mfa_used or "").capitalize() == "Yes"
    return s.identity_type in ("AssumedRole", "FederatedUser", "SAMLUser", "WebIdentityUser")


def covering_network(addresses: Iterable[str], widest: Network) -> Network:
    """The smallest network holding every address, never wider than ``widest`` (IPv6:
    never narrower than a /64)."""
    parsed = [parse_ip(a) for a in addresses]
    found = [a for a in parsed if a is not None]
    if not found:
        return widest
    floor = found[0].max_prefixlen if found[0].version == 4 else IPV6_NARROWEST
    for prefix in range(floor, widest.prefixlen - 1, -1):
        network = ipaddress.ip_network(f"{found[0]}/{prefix}", strict=False)
        if all(a in network for a in found):
            return network
    return widest


def suggest_networks(
    verdicts: Sequence[Verdict],
) -> tuple[list[Suggestion], list[NotSuggested]]:
    """Networks to add, most sign-ins first; and the others that alerted, with why not."""
    by_network: dict[Network, list[Verdict]] = {}
    for verdict in verdicts:
        network = group_network(verdict.sign_in.source_ip)
        if network is not None and not verdict.allowlisted:
            by_network.setdefault(network, []).append(verdict)
    suggestions, skipped = [], []
    for network, seen in by_network.items():
        reason = _why_not(seen)
        if reason is not None:
            if any(v.alerted for v in seen):  # only what would have alerted is worth a word
                skipped.append(NotSuggested(str(network), reason))
            continue
        team = [v for v in seen if v.sign_in.success and not v.sign_in.is_root]
        times = sorted(v.sign_in.event_time for v in team)
        addresses = tuple(sorted({v.sign_in.source_ip for v in team}))
        span = (times[-1] - times[0]).total_seconds() / 86400
        suggestions.append(
            Suggestion(
                network=str(covering_network(addresses, network)),
                sign_ins=len(team),
                users=tuple(sorted({principal_of(v.sign_in) for v in team})),
                addresses=addresses,
                days=max(1, round(span)),
                first=times[0],
                last=times[-1],
                with_mfa=sum(1 for v in team if team_mfa(v)),
            )
        )
    suggestions.sort(key=lambda s: (-s.sign_ins, s.network))
    skipped.sort(key=lambda s: s.network)
    return suggestions, skipped


def _why_not(seen: Sequence[Verdict]) -> str | None:
    """Why a network's sign-ins do not look like the team's own; None if they do. The
    most telling reason first: a way in after a burst of failures says more than MFA."""
    successes = [v for v in seen if v.sign_in.success]
    failures = len(seen) - len(successes)
    team = [v for v in successes if not v.sign_in.is_root]
    if not successes:
        return f"only failed sign-ins ({failures})"
    if not team:
        return "only root signed in from it (root alerts from anywhere)"
    if any("failed_sign_ins" in v.rules for v in seen):
        return "sign-ins after a burst of failed sign-ins"
    without = sum(1 for v in team if not team_mfa(v))
    if without > len(team) * (1 - MIN_MFA_SHARE):
        return f"{without} of {len(team)} sign-ins without MFA"
    if len(team) < MIN_SIGN_INS:
        return "a single successful sign-in"
    days = {v.sign_in.event_time.date() for v in team}
    if len(days) < MIN_DAYS:
        return f"{len(team)} sign-ins, all on one day"
    if failures > len(successes):
        return f"more failed sign-ins ({failures}) than successful ones ({len(successes)})"
    return None


# ---------------------------------------------------------------- access keys


@dataclass
class KeyUse:
    """One long-term key's calls from one address (a row of the Logs Insights query)."""

    key: str  # masked
    user: str
    arn: str
    identity_type: str
    ip: str
    calls: int
    first: datetime | None
    last: datetime | None
    # Why the rule would stay quiet (notifier/api_calls.out_of_scope); None: it alerts.
    quiet_because: str | None

    @property
    def alerted(self) -> bool:
        return self.quiet_because is None

    @property
    def network(self) -> str:
        network = group_network(self.ip)
        return str(network) if network else self.ip

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "user": self.user,
            "arn": self.arn,
            "identity_type": self.identity_type,
            "ip": self.ip,
            "network": self.network,
            "calls": self.calls,
            "first_seen": self.first.isoformat() if self.first else None,
            "last_seen": self.last.isoformat() if self.last else None,
            "would_alert": self.alerted,
            "quiet_because": self.quiet_because,
        }


def judge_key_use(
    row: Mapping[str, Any], allowlist: AllowList, exceptions: Sequence[KeyException]
) -> KeyUse:
    """A query row through the notifier's own parsing and decision (api_calls.py): the
    record is rebuilt from the fields the row was grouped by, which are all the decision
    reads."""
    record = {
        "eventName": "ApiCall",
        "eventType": row.get("kind") or "AwsApiCall",
        "sourceIPAddress": row.get("ip") or "",
        "userIdentity": {
            "type": row.get("type") or "",
            "userName": row.get("user") or "",
            "arn": row.get("arn") or "",
            "accessKeyId": row.get("key") or "",
            **({"invokedBy": row["invokedBy"]} if row.get("invokedBy") else {}),
        },
    }
    call = parse_api_call(record)
    assert call is not None  # the record above always has a name and an identity
    return KeyUse(
        key=call.masked_key,
        user=call.user_name or ("root" if call.is_root else call.arn),
        arn=call.arn,
        identity_type=call.identity_type,
        ip=call.source_ip,
        calls=int(row.get("calls") or 0),
        first=row.get("first"),
        last=row.get("last"),
        quiet_because=out_of_scope(call, allowlist, exceptions),
    )


@dataclass(frozen=True)
class ExceptSuggestion:
    """An ``except`` entry for access_key_outside_allowlist: a user whose key is used
    from elsewhere by design (CI), with the evidence."""

    user: str
    networks: tuple[str, ...]
    calls: int
    days: int
    keys: tuple[str, ...] = field(default=())
    # More networks than MAX_EXCEPT_NETWORKS: shown, not pinned (networks lists a few).
    too_many: bool = False

    @property
    def evidence(self) -> str:
        nets = f"{len(self.networks)} network" + ("" if len(self.networks) == 1 else "s")
        return (
            f"{self.calls} calls with {len(self.keys)} key(s) from {nets} over {self.days} day(s)"
        )

    def entry(self) -> dict[str, Any]:
        return {"user": self.user, "from": list(self.networks)}

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "from": list(self.networks),
            "evidence": self.evidence,
            "calls": self.calls,
            "keys": list(self.keys),
            "too_many_networks": self.too_many,
        }


def suggest_exceptions(uses: Sequence[KeyUse]) -> list[ExceptSuggestion]:
    """Per IAM user whose long-term key calls would alert: the networks they came from,
    if the use is a habit (on ``MIN_DAYS`` days at least). Root is never excepted (no
    ``except`` entry covers it), nor a federated session (its name is the caller's pick)."""
    by_user: dict[str, list[KeyUse]] = {}
    for use in uses:
        if use.alerted and use.identity_type == "IAMUser" and use.user:
            by_user.setdefault(use.user, []).append(use)
    found = []
    for user, rows in by_user.items():
        firsts = [r.first for r in rows if r.first]
        lasts = [r.last for r in rows if r.last]
        days = round((max(lasts) - min(firsts)).total_seconds() / 86400) if firsts and lasts else 0
        if days + 1 < MIN_DAYS:
            continue
        networks = sorted({r.network for r in rows}, key=lambda n: -sum(
            r.calls for r in rows if r.network == n))  # fmt: skip
        found.append(
            ExceptSuggestion(
                user=user,
                networks=tuple(networks[:MAX_EXCEPT_NETWORKS]),
                calls=sum(r.calls for r in rows),
                days=max(1, days),
                keys=tuple(sorted({r.key for r in rows})),
                too_many=len(networks) > MAX_EXCEPT_NETWORKS,
            )
        )
    return sorted(found, key=lambda s: -s.calls)
