"""Ask AWS itself whether the compiled filter pattern catches every sign-in it must.

moto does not evaluate filter patterns, and AWS's documentation of the regex
syntax disagrees with itself. CloudWatch Logs' ``TestMetricFilter`` runs a
pattern against sample events on the real service. Before setup writes the
metric filter (and on `validate --aws`), the pattern is run against synthetic
successful sign-ins: for every allowlist entry its first and last address and
the addresses just outside it, IPv6 both compressed and fully written out.

A sign-in from outside the allowlist that AWS would not count is a sign-in
nobody hears of: setup refuses and names the address. One from inside that AWS
counts is only over-matching (the notifier's exact check suppresses it): told,
not refused.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .allowlist import AllowedEntry, IPNetwork, collapse, is_allowed
from .aws import translate_errors
from .errors import EndpointLacksOperation, UsageError

BATCH = 50  # TestMetricFilter takes at most 50 log event messages


@dataclass(frozen=True)
class Sample:
    address: str
    inside: bool  # in the allowlist: must not alert


@dataclass
class Verdict:
    checked: int = 0
    missed: list[str] = field(default_factory=list)  # outside, AWS would not count them
    over_matched: list[str] = field(default_factory=list)  # inside, AWS would count them
    unavailable: str = ""  # why AWS could not be asked: "the endpoint does not implement …"

    @property
    def safe(self) -> bool:
        return not self.missed


def samples(networks: Iterable[AllowedEntry | IPNetwork]) -> list[Sample]:
    """Every entry's edges and the addresses just beyond them, in every written form."""
    merged = collapse(networks)
    found: dict[str, Sample] = {}
    for network in merged:
        first, last = network[0], network[-1]
        edges = [first, last]
        if int(first) > 0:
            edges.append(first - 1)
        if int(last) < 2**network.max_prefixlen - 1:
            edges.append(last + 1)
        for address in edges:
            for form in _written_forms(address):
                found.setdefault(form, Sample(form, is_allowed(form, merged)))
    return list(found.values())


def _written_forms(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[str]:
    forms = [str(address)]
    if address.version == 6 and address.exploded != str(address):
        forms.append(address.exploded)
    return forms


def sign_in_record(address: str) -> str:
    """A successful console sign-in from ``address``, as CloudTrail writes it to Logs."""
    return json.dumps(
        {
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "userName": "loginwatch-pattern-check"},
            "eventSource": "signin.amazonaws.com",
            "eventName": "ConsoleLogin",
            "awsRegion": "us-east-1",
            "sourceIPAddress": address,
            "responseElements": {"ConsoleLogin": "Success"},
            "additionalEventData": {"MFAUsed": "Yes"},
            "eventType": "AwsConsoleSignIn",
        }
    )


def api_call_record(address: str) -> str:
    """An API call signed with a long-term access key from ``address``, as CloudTrail
    writes it to Logs (access_key_outside_allowlist's filter)."""
    return json.dumps(
        {
            "eventVersion": "1.10",
            "userIdentity": {
                "type": "IAMUser",
                "userName": "loginwatch-pattern-check",
                "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
            },
            "eventSource": "ec2.amazonaws.com",
            "eventName": "RunInstances",
            "awsRegion": "us-east-1",
            "sourceIPAddress": address,
            "eventType": "AwsApiCall",
            "readOnly": False,
        }
    )


def verify(
    logs: Any,
    pattern: str,
    networks: Iterable[AllowedEntry | IPNetwork],
    record: Callable[[str], str] = sign_in_record,
) -> Verdict:
    """AWS's verdict on ``pattern`` for every sample (a few TestMetricFilter calls);
    ``record`` writes the event the pattern must count, from a given address."""
    checks = samples(networks)
    verdict = Verdict()
    for start in range(0, len(checks), BATCH):
        batch = checks[start : start + BATCH]
        try:
            with translate_errors():
                answer = logs.test_metric_filter(
                    filterPattern=pattern,
                    logEventMessages=[record(s.address) for s in batch],
                )
        except EndpointLacksOperation as exc:  # an emulator (stock moto, LocalStack)
            verdict.unavailable = exc.reason
            return verdict
        # eventNumber counts the messages of this call from 1.
        counted = {m.get("eventNumber") for m in answer.get("matches", [])}
        for number, sample in enumerate(batch, start=1):
            hit = number in counted
            if not sample.inside and not hit:
                verdict.missed.append(sample.address)
            elif sample.inside and hit:
                verdict.over_matched.append(sample.address)
        verdict.checked += len(batch)
    return verdict


def require_safe(verdict: Verdict) -> None:
    """Refuse a pattern that would miss a sign-in from outside the allowlist."""
    if verdict.safe:
        return
    shown = ", ".join(verdict.missed[:5]) + (" …" if len(verdict.missed) > 5 else "")
    raise UsageError(
        f"AWS's own test of the filter pattern (TestMetricFilter) would not alert on a "
        f"sign-in from {shown}, which is outside the allowlist. The metric filter was "
        "not written.",
        "Please report this with `loginwatch validate --aws --json`; meanwhile write the "
        "allowlist entry around that address differently (for example as separate /32 or "
        "/128 entries).",
    )
