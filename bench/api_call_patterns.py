"""The access-key rule's patterns: rules per region, pattern sizes, metric filter length.

    python bench/api_call_patterns.py            # from the repo root

Prints numbers; asserts nothing. For allowlists of 1, 5 and 20 entries (IPv4 and
IPv6 mixed, some single addresses): how many EventBridge rules per region the
allowlist's complement needs under the default 2,048-character pattern quota (and
under 4,096, the most it can be raised to), per family; the largest pattern; the
metric filter's length (of 1,024) and how many entries it had to leave out; and,
with the test suite's Event Ruler model, of sampled calls from *inside* the
allowlist, the share some rule still forwards across regions, per family. IPv4: 0 %
(the IPv4 rules hold only the complement, and the IPv6 rule, a wildcard on the
colon, never matches a dotted address). IPv6: 100 % (one rule forwards every IPv6
call and the notifier re-checks it; an IPv4 block may match it too, Event Ruler
comparing addresses as hex digits, by its first 32 bits).
"""

from __future__ import annotations

import ipaddress
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from loginwatch import api_call_patterns as acp  # noqa: E402
from loginwatch.allowlist import collapse  # noqa: E402
from tests.support.event_ruler import Pattern  # noqa: E402

SAMPLES = 2000


def allowlist(count: int) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Offices (/24–/28), VPN and CI addresses (single), IPv6 sites (/48, /56, /64, /128)."""
    rng = random.Random(count)
    out: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for i in range(count):
        if i % 3 == 2:
            prefix = rng.choice([48, 56, 64, 128])
            address = ipaddress.IPv6Address((0x2 << 125) | rng.getrandbits(125))  # 2000::/3
            out.append(ipaddress.IPv6Network(f"{address}/{prefix}", strict=False))
        else:
            prefix = rng.choice([32, 32, 28, 27, 24])
            address = ipaddress.IPv4Address(rng.getrandbits(32))
            out.append(ipaddress.IPv4Network(f"{address}/{prefix}", strict=False))
    return out


def event(ip: str) -> dict:
    return {
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ec2",
        "detail": {
            "userIdentity": {"type": "IAMUser", "accessKeyId": "AKIAIOSFODNN7EXAMPLE"},
            "sourceIPAddress": ip,
        },
    }


def inside_forwarded(allowed: list, patterns: list[dict]) -> tuple[str, str]:
    """Of sampled calls from inside the allowlist, the share any rule forwards, per family."""
    rng = random.Random(0)
    rules = [Pattern(p) for p in patterns]
    results = []
    for version in (4, 6):
        mine = [n for n in collapse(allowed) if n.version == version]
        if not mine:
            results.append("no entries")
            continue
        forwarded = 0
        for _ in range(SAMPLES):
            network = rng.choice(mine)
            ip = str(network[rng.randrange(network.num_addresses)])
            forwarded += any(rule.matches(event(ip)) for rule in rules)
        results.append(f"{forwarded / SAMPLES:.0%}")
    return results[0], results[1]


def main() -> None:
    print(
        f"{'entries':>7}  {'rules/region':>12}  {'IPv4':>4}  {'IPv6':>4}  "
        f"{'largest':>13}  {'@4096':>5}  {'filter':>11}  {'left out':>8}  "
        f"{'inside v4 fwd':>13}  {'inside v6 fwd':>13}  {'ms':>6}"
    )
    for count in (1, 5, 20):
        allowed = allowlist(count)
        started = time.perf_counter()
        v4, v6 = acp.patterns_by_family(allowed)
        elapsed = (time.perf_counter() - started) * 1000
        largest = max(len(acp.pattern_json(p)) for p in v4 + v6)
        raised = acp.rules_needed(allowed, limit=4096)
        backstop = acp.api_call_filter(allowed)
        v4_fwd, v6_fwd = inside_forwarded(allowed, v4 + v6)
        print(
            f"{count:>7}  {len(v4) + len(v6):>12}  {len(v4):>4}  {len(v6):>4}  "
            f"{largest:>6,} / 2,048  {raised:>5}  {backstop.length:>5,} / 1,024  "
            f"{len(backstop.not_expressed):>8}  {v4_fwd:>13}  {v6_fwd:>13}  {elapsed:>6.1f}"
        )
        print(f"         {acp.describe(allowed)}")
    print(
        f"\nquarantine filter: {len(acp.QUARANTINE_FILTER)} characters; "
        f"credentials_exposed pattern: {len(acp.pattern_json(acp.KEY_EXPOSED_PATTERN))} characters"
    )


if __name__ == "__main__":
    main()
