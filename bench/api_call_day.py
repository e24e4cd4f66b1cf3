"""What access_key_outside_allowlist costs: a synthetic day of one million API calls.

    python bench/api_call_day.py        # from the repo root, with the test extras installed

Prints numbers; asserts nothing. Builds the rules exactly as `loginwatch setup` does
(api_call_patterns.event_patterns) for the example allowlist, then runs a synthetic
day through them with the test suite's Event Ruler matcher (tests/support/event_ruler.py,
faithful to AWS's semantics, cross-family quirk included) and the notifier's own scope
check (notifier/api_calls.py):

- the mix: 1,000,000 management calls, 90 % read-only, 1 % from outside the allowlist;
  55 % signed by role sessions (SSO, instance profiles, Lambda: out of scope), 30 % by
  IAM users' keys, 10 % by AWS services on a user's behalf, 5 % from console sessions;
  half in the home region, half spread over four others; 2 % from IPv6 addresses.
- forwarded: events a non-home region's rule matches and sends to the home bus (each
  billed as a custom event, $1.00 per million);
- invocations: events the home region's rules hand to the notifier (its own, and the
  forwarded ones); Lambda bills $0.20 per million requests plus duration.

A sample of SAMPLE calls stands for the day (scaled by 1,000,000 / SAMPLE).
"""

from __future__ import annotations

import ipaddress
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from loginwatch.api_call_patterns import event_patterns  # noqa: E402
from loginwatch.config import load_config  # noqa: E402
from loginwatch.notifier.api_calls import out_of_scope, parse_api_call  # noqa: E402
from loginwatch.notifier.ipmatch import AllowList  # noqa: E402
from tests.support.event_ruler import Pattern  # noqa: E402

DAY = 1_000_000
SAMPLE = 20_000
HOME = "us-east-1"
OTHER_REGIONS = ("us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2")
CUSTOM_EVENT_PRICE = 1.00 / 1_000_000
LAMBDA_REQUEST_PRICE = 0.20 / 1_000_000
LAMBDA_GB_SECOND = 0.0000166667
NOTIFIER_MB = 256
NOTIFIER_SECONDS = 0.05  # a warm API-call event: bench/api_call_notifier.py


def _address(rng: random.Random, inside: list[Any], outside: bool, ipv6: bool) -> str:
    if not outside:
        network = rng.choice([n for n in inside if (n.version == 6) == ipv6] or inside)
        return str(network[rng.randrange(network.num_addresses)])
    while True:
        if ipv6:
            candidate = ipaddress.IPv6Address(rng.getrandbits(128) | (0x2 << 124))
        else:
            candidate = ipaddress.IPv4Address(rng.getrandbits(32))
        if not any(candidate in n for n in inside if n.version == candidate.version):
            return str(candidate)


def _call(rng: random.Random, inside: list[Any]) -> dict[str, Any]:
    """One CloudTrail API-call event as EventBridge carries it."""
    region = HOME if rng.random() < 0.5 else rng.choice(OTHER_REGIONS)
    read_only = rng.random() < 0.90
    outside = rng.random() < 0.01
    ipv6 = rng.random() < 0.02
    kind = rng.random()
    identity: dict[str, Any]
    detail: dict[str, Any] = {}
    source_ip = _address(rng, inside, outside, ipv6)
    if kind < 0.55:
        identity = {"type": "AssumedRole", "accessKeyId": "ASIAEXAMPLEROLE00000"}
    elif kind < 0.85:
        identity = {"type": "IAMUser", "userName": f"user{rng.randrange(20)}",
                    "accessKeyId": f"AKIAEXAMPLE{rng.randrange(40):09d}"}  # fmt: skip
    elif kind < 0.95:
        identity = {
            "type": "IAMUser",
            "userName": "svc",
            "invokedBy": "cloudformation.amazonaws.com",
        }
        source_ip = "cloudformation.amazonaws.com"
    else:
        identity = {
            "type": "IAMUser",
            "userName": "console-user",
            "accessKeyId": "ASIACONSOLE000000000",
        }
        detail["sessionCredentialFromConsole"] = "true"
    detail.update(
        eventID=f"{rng.getrandbits(64):016x}",
        eventTime="2026-12-06T10:00:00Z",
        eventName="DescribeInstances" if read_only else "RunInstances",
        eventSource="ec2.amazonaws.com",
        eventType="AwsApiCall",
        awsRegion=region,
        sourceIPAddress=source_ip,
        userIdentity=identity,
        readOnly=read_only,
    )
    return {
        "source": "aws.ec2",
        "detail-type": "AWS API Call via CloudTrail",
        "region": region,
        "detail": detail,
    }


def main() -> None:
    config = load_config(str(ROOT / "config.example.yaml"), env={}, need_webhook=False)
    inside = [e.network for e in config.allowed]
    started = time.perf_counter()
    patterns = [Pattern(p) for p in event_patterns(config.allowed)]
    allowlist = AllowList([str(n) for n in inside])
    rng = random.Random(20261206)
    forwarded = invocations = alerts = matched_inside = 0
    for _ in range(SAMPLE):
        event = _call(rng, inside)
        # Each rule that matches sends its own copy (an IPv6 address may match two).
        copies = sum(p.matches(event) for p in patterns)
        if not copies:
            continue
        call = parse_api_call(event["detail"])
        assert call is not None
        if event["region"] != HOME:
            forwarded += copies
        invocations += copies
        if out_of_scope(call, allowlist) is None:
            alerts += 1
        else:
            matched_inside += 1
    scale = DAY / SAMPLE
    day_forwarded, day_invocations = forwarded * scale, invocations * scale
    lambda_cost = day_invocations * (
        LAMBDA_REQUEST_PRICE + NOTIFIER_SECONDS * NOTIFIER_MB / 1024 * LAMBDA_GB_SECOND
    )
    print(
        f"allowlist: {len(inside)} entries (config.example.yaml); rules per region: {len(patterns)}"
    )
    print(f"synthetic day: {DAY:,} API calls ({SAMPLE:,} sampled, × {scale:,.0f})")
    print(f"  forwarded across regions:   {day_forwarded:>10,.0f}  "
          f"(${day_forwarded * CUSTOM_EVENT_PRICE:.4f}/day as custom events)")  # fmt: skip
    print(f"  notifier invocations:       {day_invocations:>10,.0f}  "
          f"(${lambda_cost:.4f}/day in Lambda requests and duration)")  # fmt: skip
    print(f"  calls that alert:           {alerts * scale:>10,.0f}  (in scope, outside: one "
          "message per key and address per 15 minutes)")  # fmt: skip
    print(f"  calls re-checked, no alert: {matched_inside * scale:>10,.0f}  "
          "(IPv6 calls, forwarded whole; an IPv6 call may arrive twice)")  # fmt: skip
    month = 30 * (day_forwarded * CUSTOM_EVENT_PRICE + lambda_cost)
    print(f"  ≈ ${month:.2f} a month; EventBridge's own matching of AWS events is free")
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
