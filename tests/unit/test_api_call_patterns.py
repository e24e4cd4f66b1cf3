"""Patterns for API calls signed with a long-term key from outside the allowlist, and for
AWS reporting a key exposed: checked with a matcher faithful to Event Ruler (EventBridge)."""

from __future__ import annotations

import copy
import ipaddress
import json
import random
import re
from typing import Any

import pytest

from loginwatch import api_call_patterns as acp
from loginwatch.allowlist import BASE_TERMS, MAX_PATTERN_LENGTH, collapse, compile_pattern
from loginwatch.config import AllowedEntry
from loginwatch.notifier.protocol import TEST_EVENT_SOURCE
from tests.conftest import load_fixture
from tests.support import event_ruler
from tests.support.event_ruler import Pattern, matches, validate

LIMIT = acp.DEFAULT_PATTERN_LIMIT


def nets(*cidrs: str) -> list[Any]:
    return [ipaddress.ip_network(c, strict=False) for c in cidrs]


# ================================================================ the matcher itself


def ev(value: Any) -> dict[str, Any]:
    return {"detail": {"a": value}}


def leaf(*conditions: Any) -> dict[str, Any]:
    return {"detail": {"a": list(conditions)}}


class TestMatcher:
    def test_exact_values_and_event_arrays(self) -> None:
        assert matches(leaf("x"), ev("x"))
        assert not matches(leaf("x"), ev("y"))
        assert matches(leaf("x", "y"), ev("y"))
        assert matches(leaf("x"), ev(["w", "x"]))  # an array in the event: any element
        assert matches(leaf(5), ev(5.0)) and not matches(leaf(5), ev("5"))
        assert matches(leaf(True), ev(True)) and not matches(leaf(True), ev("true"))
        assert matches(leaf(None), ev(None))
        assert not matches(leaf("x"), {"detail": {}})

    def test_prefix_and_suffix(self) -> None:
        assert matches(leaf({"prefix": "aws."}), ev("aws.ec2"))
        assert not matches(leaf({"prefix": "aws."}), ev("loginwatch-test"))
        assert matches(leaf({"suffix": ".png"}), ev("a.png"))
        assert not matches(leaf({"prefix": "5"}), ev(55))  # strings only

    def test_exists_on_leaves_only(self) -> None:
        assert matches(leaf({"exists": False}), {"detail": {}})
        assert matches(leaf({"exists": False}), {})  # parent absent too
        assert not matches(leaf({"exists": False}), ev("x"))
        assert matches(leaf({"exists": True}), ev("x"))
        assert not matches(leaf({"exists": True}), {"detail": {}})
        # Event Ruler's README: exists works on leaf nodes; an object is not one.
        assert matches(leaf({"exists": False}), ev({"nested": 1}))
        assert not matches(leaf({"exists": True}), ev({"nested": 1}))
        assert matches(leaf({"exists": False}), ev([]))

    def test_anything_but(self) -> None:
        assert matches(leaf({"anything-but": "x"}), ev("y"))
        assert not matches(leaf({"anything-but": ["x", "y"]}), ev("y"))
        assert not matches(leaf({"anything-but": "x"}), {"detail": {}})  # needs a value
        assert matches(leaf({"anything-but": {"prefix": "us-"}}), ev("eu-west-1"))
        assert not matches(leaf({"anything-but": {"prefix": "us-"}}), ev("us-east-1"))
        assert not matches(leaf({"anything-but": {"suffix": ".png"}}), ev("a.png"))

    def test_wildcard(self) -> None:
        # Event Ruler's README, "Wildcard matching": the whole value, "*" any run of
        # characters (none included), strings only.
        assert matches(leaf({"wildcard": "dir/*.png"}), ev("dir/a.png"))
        assert matches(leaf({"wildcard": "dir/*.png"}), ev("dir/.png"))
        assert not matches(leaf({"wildcard": "dir/*.png"}), ev("xdir/a.png"))
        assert not matches(leaf({"wildcard": "dir/*.png"}), ev("dir/a.png.gz"))
        assert matches(leaf({"wildcard": "*"}), ev(""))
        assert not matches(leaf({"wildcard": "*"}), ev(5))
        assert not matches(leaf({"wildcard": "*"}), {"detail": {}})
        # "\\*" a literal star, "\\\\" a literal backslash; other characters are themselves.
        assert matches(leaf({"wildcard": "a\\*b"}), ev("a*b"))
        assert not matches(leaf({"wildcard": "a\\*b"}), ev("axb"))
        assert matches(leaf({"wildcard": "a\\\\*"}), ev("a\\b"))
        assert matches(leaf({"wildcard": "a.c?"}), ev("a.c?")) and not matches(
            leaf({"wildcard": "a.c?"}), ev("abc")
        )
        assert matches(leaf({"wildcard": "\\**"}), ev("*x"))  # literal star, then a wildcard

    def test_wildcard_reads_the_text_of_an_address(self) -> None:
        # Every address written with a colon, never a dotted IPv4 address (nor its hex).
        colon = leaf({"wildcard": "*:*"})
        for ip in ("2001:db8::1", "::", "::1", "FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF"):
            assert matches(colon, ev(ip)), ip
        assert matches(colon, ev("::ffff:203.0.113.77"))  # IPv4-mapped: written with colons
        for value in (
            "0.0.0.0",
            "203.0.113.77",
            "255.255.255.255",
            "AWS Internal",
            "ec2.amazonaws.com",
        ):
            assert not matches(colon, ev(value)), value

    def test_anything_but_wildcard(self) -> None:
        pattern = leaf({"anything-but": {"wildcard": ["*/lib/*", "*/bin/*"]}})
        assert matches(pattern, ev("/etc/tool"))
        assert not matches(pattern, ev("/usr/lib/x"))
        assert matches(leaf({"anything-but": {"wildcard": "*/lib/*"}}), ev("/usr/bin/x"))

    def test_or_and_nesting(self) -> None:
        pattern = {
            "source": ["s"],
            "$or": [{"detail": {"a": ["1"]}}, {"detail": {"b": {"c": ["2"]}}}],
        }
        assert matches(pattern, {"source": "s", "detail": {"a": "1"}})
        assert matches(pattern, {"source": "s", "detail": {"b": {"c": "2"}}})
        assert not matches(pattern, {"source": "t", "detail": {"a": "1"}})
        assert not matches(pattern, {"source": "s", "detail": {"b": {"c": "3"}}})

    def test_cidr_within_each_family(self) -> None:
        assert matches(leaf({"cidr": "10.0.0.0/24"}), ev("10.0.0.0"))
        assert matches(leaf({"cidr": "10.0.0.0/24"}), ev("10.0.0.255"))
        assert not matches(leaf({"cidr": "10.0.0.0/24"}), ev("10.0.1.0"))
        assert not matches(leaf({"cidr": "10.0.0.0/24"}), ev("9.255.255.255"))
        assert matches(leaf({"cidr": "2001:db8::/32"}), ev("2001:DB8:0:0:0:0:0:1"))
        assert not matches(leaf({"cidr": "2001:db8::/32"}), ev("2001:db9::"))
        assert matches(leaf({"cidr": "0.0.0.0/0"}), ev("0.0.0.0"))

    @pytest.mark.parametrize(
        "value", ["AWS Internal", "cloudformation.amazonaws.com", "", "08:23", "1.2.3", 16909060]
    )
    def test_cidr_never_matches_what_is_not_an_address(self, value: Any) -> None:
        assert not matches(leaf({"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}), ev(value))

    def test_a_plain_address_is_that_one_address_in_any_text_form(self) -> None:
        assert matches(leaf("2001:db8::1"), ev("2001:0DB8:0000::0001"))
        assert not matches(leaf("2001:db8::1"), ev("2001:db8::2"))
        assert matches(leaf("10.0.0.15"), ev("10.0.0.15")) and not matches(
            leaf("10.0.0.15"), ev("10.0.0.16")
        )

    def test_families_cross_as_event_ruler_compares_hex_digits(self) -> None:
        # An IPv6 block shorter than /32 matches IPv4 addresses strictly inside it.
        assert matches(leaf({"cidr": "::/0"}), ev("1.2.3.4"))
        assert matches(leaf({"cidr": "::/0"}), ev("203.0.113.5"))
        assert not matches(leaf({"cidr": "::/0"}), ev("0.0.0.0"))
        assert not matches(leaf({"cidr": "::/0"}), ev("255.255.255.255"))
        assert matches(leaf({"cidr": "2000::/3"}), ev("32.1.2.3"))
        assert not matches(leaf({"cidr": "2000::/3"}), ev("32.0.0.0"))
        assert not matches(leaf({"cidr": "2001:db8::/32"}), ev("32.1.13.184"))  # /32: never
        # An IPv4 block (or address) matches IPv6 addresses whose first 32 bits it holds.
        assert matches(leaf({"cidr": "32.0.0.0/8"}), ev("2001:db8::1"))
        assert matches(leaf("32.1.13.184"), ev("2001:db8::1"))
        # An IPv4-mapped IPv6 address is the IPv4 address (Java's InetAddress).
        assert matches(leaf({"cidr": "198.51.100.0/24"}), ev("::ffff:c633:6407"))

    @pytest.mark.parametrize(
        "pattern",
        [
            leaf({"anything-but": {"cidr": "10.0.0.0/8"}}),
            leaf({"cidr": "10.0.0.1/32"}),
            leaf({"cidr": "2001:db8::1/128"}),
            leaf({"cidr": "10.0.0.0/33"}),
            leaf({"cidr": "AWS Internal/8"}),
            leaf({"cidr": "10.0.0.0"}),
            leaf(),
            {"detail": {"a": "x"}},
            leaf({"bogus": 1}),
            {"$or": [{"a": ["1"]}]},
            leaf({"wildcard": "a**b"}),  # "Consecutive wildcard characters"
            leaf({"wildcard": "a\\b"}),  # "Invalid escape character": only \\* and \\\\
            leaf({"wildcard": "a\\"}),
            leaf({"wildcard": 5}),
            leaf({"wildcard": ["*"]}),
            leaf({"anything-but": {"wildcard": "**"}}),
        ],
    )
    def test_rejects_what_aws_rejects(self, pattern: dict[str, Any]) -> None:
        with pytest.raises(ValueError):
            validate(pattern)

    def test_rejects_a_pattern_over_the_limit(self) -> None:
        pattern = leaf("x" * 100)
        size = len(acp.pattern_json(pattern))
        validate(pattern, limit=size)
        with pytest.raises(ValueError, match="limit"):
            validate(pattern, limit=size - 1)

    @pytest.mark.parametrize(
        "condition",
        [
            {"numeric": [">", 0]},
            {"equals-ignore-case": "x"},
            # {"prefix": {"equals-ignore-case": …}} is modelled (tamper's IAM role names).
            {"anything-but": {"equals-ignore-case": "x"}},
        ],
    )
    def test_refuses_to_guess_what_it_does_not_model(self, condition: dict[str, Any]) -> None:
        with pytest.raises(NotImplementedError):
            validate(leaf(condition))


# ================================================================ events


BASE_EVENT = load_fixture("eventbridge/api_call_runinstances_access_key.json")


def api_call(
    ip: str = "198.51.100.23",
    *,
    identity_type: str = "IAMUser",
    key: str | None = "AKIAIOSFODNN7EXAMPLE",
    invoked_by: str | None = None,
    console: bool = False,
    source: str = "aws.ec2",
) -> dict[str, Any]:
    event = copy.deepcopy(BASE_EVENT)
    event["source"] = source
    detail = event["detail"]
    detail["sourceIPAddress"] = ip
    identity = detail["userIdentity"]
    identity["type"] = identity_type
    if key is None:
        identity.pop("accessKeyId")
    else:
        identity["accessKeyId"] = key
    if invoked_by:
        identity["invokedBy"] = invoked_by
    if console:
        detail["sessionCredentialFromConsole"] = "true"
    return event


def from_address(ip: str) -> dict[str, Any]:
    """The fixture's call from ``ip`` (a cheap copy, for sampling many addresses)."""
    return {**BASE_EVENT, "detail": {**BASE_EVENT["detail"], "sourceIPAddress": ip}}


def assumed_role_call(ip: str) -> dict[str, Any]:
    event = api_call(ip, identity_type="AssumedRole", key="ASIAY34FZKBOKMUTVV7A")
    event["detail"]["userIdentity"].update(
        arn="arn:aws:sts::111122223333:assumed-role/deployer/session",
        sessionContext={
            "sessionIssuer": {"type": "Role", "userName": "deployer"},
            "attributes": {"mfaAuthenticated": "false", "creationDate": "2026-11-20T10:00:00Z"},
        },
    )
    return event


def compiled(allowed: list[Any]) -> list[tuple[int, Pattern]]:
    """Each pattern with its family, checked as AWS would check it."""
    return [(family(p), Pattern(p, limit=LIMIT)) for p in acp.event_patterns(allowed)]


def hits(patterns: list[tuple[int, Pattern]], event: dict[str, Any]) -> int:
    """How many patterns of the address's own family match (an IPv4 rule may match an
    IPv6 address too, as Event Ruler compares hex digits: see the cross-family tests)."""
    try:
        version = ipaddress.ip_address(event["detail"]["sourceIPAddress"]).version
    except ValueError:
        version = None
    return sum(p.matches(event) for v, p in patterns if version in (None, v))


def ipv6_rule(patterns: list[tuple[int, Pattern]]) -> Pattern:
    (rule,) = [p for v, p in patterns if v == 6]
    return rule


def forwarded(patterns: list[tuple[int, Pattern]], event: dict[str, Any]) -> bool:
    """Whether any of the rules forwards the event at all."""
    return any(p.matches(event) for _, p in patterns)


ALLOWED = nets("203.0.113.0/24", "192.0.2.10/32", "2001:db8:1234::/48")


class TestWhatTheRuleForwards:
    @pytest.fixture
    def patterns(self) -> list[tuple[int, Pattern]]:
        return compiled(ALLOWED)

    def test_the_fixture_is_a_key_call_from_outside(
        self, patterns: list[tuple[int, Pattern]]
    ) -> None:
        assert hits(patterns, BASE_EVENT) == 1

    @pytest.mark.parametrize("ip", ["203.0.113.0", "203.0.113.77", "203.0.113.255", "192.0.2.10"])
    def test_ipv4_not_from_inside_by_any_rule(
        self, patterns: list[tuple[int, Pattern]], ip: str
    ) -> None:
        # What the cost requirement rests on: an allowed IPv4 call stays in its region.
        assert not forwarded(patterns, api_call(ip))

    @pytest.mark.parametrize("ip", ["203.0.112.255", "203.0.114.0", "192.0.2.9", "192.0.2.11"])
    def test_ipv4_just_outside(self, patterns: list[tuple[int, Pattern]], ip: str) -> None:
        assert hits(patterns, api_call(ip)) == 1
        assert not ipv6_rule(patterns).matches(api_call(ip))

    @pytest.mark.parametrize(
        "event",
        [
            api_call("198.51.100.23", invoked_by="autoscaling.amazonaws.com"),
            api_call("AWS Internal"),
            api_call("AWS Internal", invoked_by="AWS Internal"),
            api_call("cloudformation.amazonaws.com", invoked_by="cloudformation.amazonaws.com"),
            api_call("cloudformation.amazonaws.com"),
        ],
        ids=["invokedBy", "AWS Internal", "AWS Internal+invokedBy", "service+invokedBy", "service"],
    )
    def test_not_made_by_an_aws_service(
        self, patterns: list[tuple[int, Pattern]], event: dict
    ) -> None:
        assert not forwarded(patterns, event)

    def test_not_a_console_session(self, patterns: list[tuple[int, Pattern]]) -> None:
        assert not forwarded(patterns, api_call(console=True))
        assert not forwarded(patterns, api_call(key="ASIAEXAMPLECONSOLE01", console=True))

    def test_not_a_role_session(self, patterns: list[tuple[int, Pattern]]) -> None:
        assert not forwarded(patterns, assumed_role_call("198.51.100.23"))
        assert not forwarded(patterns, api_call(identity_type="AWSService", key=None))

    @pytest.mark.parametrize(
        "event",
        [
            api_call(key="ASIAEXAMPLESESSION01"),  # GetSessionToken credentials
            api_call(key=""),
            api_call(key=None),
            api_call(identity_type="Root"),
            api_call(identity_type="FederatedUser", key="ASIAEXAMPLEFEDERATED"),
            api_call(source="aws.iam"),
            api_call(source="aws.sts"),
        ],
        ids=["ASIA on IAMUser", "empty key", "no key", "Root", "FederatedUser", "iam", "sts"],
    )
    def test_in_scope_whatever_the_key(
        self, patterns: list[tuple[int, Pattern]], event: dict
    ) -> None:
        assert hits(patterns, event) == 1

    @pytest.mark.parametrize(
        "ip",
        [
            "2001:db8:1234::1",  # inside
            "2001:DB8:1234:FFFF:FFFF:FFFF:FFFF:FFFF",  # inside
            "2001:db8:1234::",  # inside
            "2001:db8:1235::",
            "2001:db8:1233:ffff:ffff:ffff:ffff:ffff",
            "2600:1f18::7",
            "::",
            "::ffff:203.0.113.77",  # IPv4-mapped: written with colons, so forwarded
        ],
    )
    def test_every_ipv6_call_is_forwarded_by_the_ipv6_rule(
        self, patterns: list[tuple[int, Pattern]], ip: str
    ) -> None:
        assert ipv6_rule(patterns).matches(api_call(ip))  # the notifier re-checks it

    def test_loginwatch_test_event_travels_the_rule(
        self, patterns: list[tuple[int, Pattern]]
    ) -> None:
        assert hits(patterns, api_call(source=TEST_EVENT_SOURCE)) == 1
        assert not forwarded(patterns, api_call(source="somebody.else"))

    def test_only_api_calls(self, patterns: list[tuple[int, Pattern]]) -> None:
        event = api_call()
        event["detail-type"] = "AWS Console Sign In via CloudTrail"
        assert not forwarded(patterns, event)


# ================================================================ allowlists of 1, 5, 20


def family(pattern: dict[str, Any]) -> int:
    versions = set()
    for value in pattern["detail"]["sourceIPAddress"]:
        if value == acp.IPV6_VALUE:
            versions.add(6)
            continue
        text = value["cidr"] if isinstance(value, dict) else value
        versions.add(ipaddress.ip_network(text).version)
    assert len(versions) == 1, "IPv4 and IPv6 values share a pattern"
    return versions.pop()


def allowlist_of(count: int) -> list[AllowedEntry]:
    """``count`` entries, IPv4 and IPv6 mixed, some single addresses (seeded: repeatable)."""
    rng = random.Random(count)
    entries = []
    for i in range(count):
        if i % 3 == 2:
            prefix = rng.choice([128, 128, 64, 56, 48, 47, 33, 20])
            address = ipaddress.IPv6Address(rng.getrandbits(128))
            network = ipaddress.IPv6Network(f"{address}/{prefix}", strict=False)
        else:
            prefix = rng.choice([32, 32, 30, 29, 28, 24, 22, 20, 17, 12])
            address = ipaddress.IPv4Address(rng.getrandbits(32))
            network = ipaddress.IPv4Network(f"{address}/{prefix}", strict=False)
        entries.append(AllowedEntry(network=network, label=f"entry {i}"))
    return entries


def samples(allowed: list[Any], rng: random.Random, per_family: int) -> set[str]:
    """Every entry's first and last address and those just beyond; every gap's edges;
    the ends of each family; and random addresses."""
    out: set[str] = {"0.0.0.0", "255.255.255.255", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}
    v4, v6 = acp.complement(allowed)
    for network in [*collapse(allowed), *v4, *v6]:
        first, last = int(network[0]), int(network[-1])
        make = type(network.network_address)
        for n in (first - 1, first, last, last + 1):
            if 0 <= n < 2**network.max_prefixlen:
                out.add(str(make(n)))
    for _ in range(per_family):
        out.add(str(ipaddress.IPv4Address(rng.getrandbits(32))))
        out.add(str(ipaddress.IPv6Address(rng.getrandbits(128))))
    # Addresses inside entries (not only at their edges).
    for network in collapse(allowed):
        for _ in range(5):
            out.add(str(network[rng.randrange(network.num_addresses)]))
    return out


def inside(ip: str, allowed: list[Any]) -> bool:
    address = ipaddress.ip_address(ip)
    return any(address in n for n in collapse(allowed) if n.version == address.version)


@pytest.mark.parametrize("count", [1, 5, 20])
class TestAllowlists:
    def test_every_pattern_fits_and_keeps_to_one_family(self, count: int) -> None:
        allowed = allowlist_of(count)
        for pattern in acp.event_patterns(allowed):
            validate(pattern, limit=LIMIT)  # <= 2,048 characters, no /32, no /128
            if family(pattern) == 4:
                for value in pattern["detail"]["sourceIPAddress"]:
                    if isinstance(value, dict):
                        net = ipaddress.IPv4Network(value["cidr"])
                        assert net.prefixlen < net.max_prefixlen
                    else:
                        ipaddress.IPv4Address(value)
        v6 = acp.patterns_by_family(allowed)[1]
        assert [p["detail"]["sourceIPAddress"] for p in v6] == [[{"wildcard": "*:*"}]]

    def test_what_each_sampled_address_sets_off(self, count: int) -> None:
        """Outside (both families, edges): forwarded. IPv4 inside: by no rule at all.
        IPv4 outside: by exactly one IPv4 rule. IPv6: by the IPv6 rule, inside or not."""
        allowed = allowlist_of(count)
        patterns = compiled(allowed)
        v4_rules = [p for v, p in patterns if v == 4]
        v6_rule = ipv6_rule(patterns)
        rng = random.Random(1000 + count)
        seen = {(4, True): 0, (4, False): 0, (6, True): 0, (6, False): 0}
        for ip in sorted(samples(allowed, rng, per_family=100)):
            event = from_address(ip)
            version = ipaddress.ip_address(ip).version
            is_inside = inside(ip, allowed)
            seen[version, is_inside] += 1
            by_v4 = sum(p.matches(event) for p in v4_rules)
            if version == 4:
                assert not v6_rule.matches(event), ip
                assert by_v4 == (0 if is_inside else 1), ip
            else:
                assert v6_rule.matches(event), ip
                assert by_v4 <= 1, ip  # an IPv4 block holding its first 32 bits: a duplicate
            if not is_inside:
                assert forwarded(patterns, event), ip
        has_v6 = any(n.version == 6 for n in collapse(allowed))
        assert seen[4, True] >= 1 and min(seen[4, False], seen[6, False]) >= 100, seen
        assert seen[6, True] >= has_v6, seen

    @pytest.mark.parametrize(
        "value", ["AWS Internal", "cloudformation.amazonaws.com", "ec2.amazonaws.com", ""]
    )
    def test_what_is_not_an_address_sets_off_nothing(self, count: int, value: str) -> None:
        assert not forwarded(compiled(allowlist_of(count)), from_address(value))

    def test_ipv6_text_forms_do_not_matter(self, count: int) -> None:
        allowed = allowlist_of(count)
        patterns = compiled(allowed)
        rng = random.Random(7)
        for ip in [s for s in samples(allowed, rng, per_family=20) if ":" in s][:60]:
            exploded = ipaddress.ip_address(ip).exploded.upper()
            for _, p in patterns:
                assert p.matches(from_address(ip)) == p.matches(from_address(exploded)), ip

    def test_sizes(self, count: int, capsys: pytest.CaptureFixture[str]) -> None:
        allowed = allowlist_of(count)
        v4, v6 = acp.patterns_by_family(allowed)
        sizes = [len(acp.pattern_json(p)) for p in v4 + v6]
        print(f"{count} entries: {acp.describe(allowed)}; sizes {sizes}")
        assert acp.rules_needed(allowed) == len(v4) + len(v6) == len(sizes)
        assert all(0 < s <= LIMIT for s in sizes)
        assert len(v6) == 1
        assert re.fullmatch(
            r"\d+ rules per region \(IPv4: \d+, IPv6: 1 — every IPv6 call, re-checked by "
            r"the notifier\), largest pattern [\d,]+ of 2,048 characters",
            acp.describe(allowed),
        )


# ================================================================ the complement and packing


class TestComplement:
    @pytest.mark.parametrize("count", [0, 1, 5, 20])
    def test_complement_and_allowlist_tile_each_family(self, count: int) -> None:
        allowed = allowlist_of(count)
        v4, v6 = acp.complement(allowed)
        for version, blocks in ((4, v4), (6, v6)):
            mine = [n for n in collapse(allowed) if n.version == version]
            space = 2 ** (32 if version == 4 else 128)
            assert sum(n.num_addresses for n in mine + blocks) == space
            assert list(ipaddress.collapse_addresses(mine + blocks)) == [
                ipaddress.ip_network("0.0.0.0/0" if version == 4 else "::/0")
            ]

    def test_entries_or_networks(self) -> None:
        as_entries = [AllowedEntry(network=n) for n in ALLOWED]
        assert acp.complement(as_entries) == acp.complement(ALLOWED)

    def test_a_single_address_is_a_plain_string(self) -> None:
        v4_values = acp.event_patterns(nets("10.0.0.1/32"))[0]["detail"]["sourceIPAddress"]
        assert "10.0.0.0" in v4_values
        assert all(isinstance(v, str) or not v["cidr"].endswith("/32") for v in v4_values)

    def test_a_family_entirely_allowed_gets_no_pattern(self) -> None:
        v4, v6 = acp.patterns_by_family(nets("0.0.0.0/0", "2001:db8::/32"))
        assert v4 == [] and len(v6) == 1
        assert acp.describe(nets("0.0.0.0/0", "2001:db8::/32")) == (
            "1 rule per region (IPv4: 0, IPv6: 1 — every IPv6 call, re-checked by the "
            f"notifier), largest pattern {len(acp.pattern_json(v6[0]))} of 2,048 characters"
        )
        v4, v6 = acp.patterns_by_family(nets("10.0.0.0/8", "::/0"))
        assert len(v4) == 1 and v6 == []
        assert acp.describe(nets("10.0.0.0/8", "::/0")).startswith(
            "1 rule per region (IPv4: 1, IPv6: 0), largest pattern"
        )
        assert acp.event_patterns(nets("0.0.0.0/0", "::/0")) == []
        assert acp.rules_needed(nets("0.0.0.0/0", "::/0")) == 0
        assert acp.describe(nets("0.0.0.0/0", "::/0")).startswith("no rule")

    def test_an_empty_allowlist_forwards_everything(self) -> None:
        patterns = acp.event_patterns([])
        assert [p["detail"]["sourceIPAddress"] for p in patterns] == [
            [{"cidr": "0.0.0.0/0"}],
            [{"wildcard": "*:*"}],
        ]

    def test_the_pattern_shape(self) -> None:
        (pattern,) = acp.patterns_by_family(nets("0.0.0.0/1", "::/0"))[0]
        assert pattern == {
            "detail-type": ["AWS API Call via CloudTrail"],
            "source": [{"prefix": "aws."}, TEST_EVENT_SOURCE],
            "detail": {
                "userIdentity": {
                    "type": ["IAMUser", "Root", "FederatedUser"],
                    "invokedBy": [{"exists": False}],
                },
                "sessionCredentialFromConsole": [{"exists": False}],
                "sourceIPAddress": [{"cidr": "128.0.0.0/1"}],
            },
        }

    @pytest.mark.parametrize("limit", [500, 700, 1024, 2048, 4096])
    def test_packing_uses_as_few_patterns_as_the_values_allow(self, limit: int) -> None:
        allowed = allowlist_of(20)
        v4_blocks = acp.complement(allowed)[0]
        v4, v6 = acp.patterns_by_family(allowed, limit=limit)
        assert v6 == [acp.api_call_pattern([acp.IPV6_VALUE])]
        for blocks, patterns in ((v4_blocks, v4),):
            values = [acp.source_value(n) for n in blocks]
            packed = [v for p in patterns for v in p["detail"]["sourceIPAddress"]]
            assert sorted(map(json.dumps, packed)) == sorted(map(json.dumps, values))
            for p in patterns:
                validate(p, limit=limit)
            room = limit - len(acp.pattern_json(acp.api_call_pattern([])))
            chars = sum(len(json.dumps(v, separators=(",", ":"))) + 1 for v in values)
            bound = -(-chars // (room + 1))  # no packing can do better
            assert len(patterns) <= bound + bound // 20 + 1
            # and no two patterns could be one
            sizes = [
                len(acp.pattern_json(p)) - len(acp.pattern_json(acp.api_call_pattern([])))
                for p in patterns
            ]
            assert all(x + y + 1 > room for i, x in enumerate(sizes) for y in sizes[i + 1 :])

    def test_a_limit_too_small_for_one_value(self) -> None:
        with pytest.raises(ValueError, match="cannot hold"):
            acp.event_patterns(ALLOWED, limit=240)
        with pytest.raises(ValueError, match="cannot hold"):  # not even the IPv6 wildcard
            acp.event_patterns(nets("0.0.0.0/0"), limit=270)


# ================================================================ AWS says a key is exposed


HEALTH_EVENT = load_fixture("eventbridge/health_risk_credentials_exposed.json")


def health(service: str = "RISK", code: str = "AWS_RISK_CREDENTIALS_EXPOSED") -> dict:
    event = copy.deepcopy(HEALTH_EVENT)
    event["detail"]["service"] = service
    event["detail"]["eventTypeCode"] = code
    return event


def attach_user_policy(policy_arn: str) -> dict:
    event = api_call("AWS Internal", identity_type="AWSService", key=None, source="aws.iam")
    detail = event["detail"]
    detail.update(
        eventSource="iam.amazonaws.com",
        eventName="AttachUserPolicy",
        awsRegion="us-east-1",
        requestParameters={"userName": "deploy-bot", "policyArn": policy_arn},
        responseElements=None,
    )
    return event


class TestKeyExposed:
    def test_valid_for_aws(self) -> None:
        validate(acp.KEY_EXPOSED_PATTERN, limit=LIMIT)

    @pytest.mark.parametrize(
        "code",
        [
            "AWS_RISK_CREDENTIALS_EXPOSED",
            "AWS_RISK_CREDENTIALS_EXPOSURE_SUSPECTED",
            "AWS_RISK_IAM_QUARANTINE",
            "AWS_RISK_SOMETHING_AWS_HAS_NOT_LISTED",
        ],
    )
    def test_any_risk_event(self, code: str) -> None:
        assert matches(acp.KEY_EXPOSED_PATTERN, health(code=code))

    def test_not_other_health_events(self) -> None:
        assert not matches(acp.KEY_EXPOSED_PATTERN, health(service="EC2", code="AWS_EC2_X"))

    @pytest.mark.parametrize(
        "arn",
        [
            "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantine",
            "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3",
        ],
    )
    def test_aws_attaching_its_quarantine_policy(self, arn: str) -> None:
        assert matches(acp.KEY_EXPOSED_PATTERN, attach_user_policy(arn))

    def test_not_other_policies(self) -> None:
        event = attach_user_policy("arn:aws:iam::aws:policy/AdministratorAccess")
        assert not matches(acp.KEY_EXPOSED_PATTERN, event)
        event = attach_user_policy("arn:aws:iam::111122223333:policy/AWSCompromisedKeyQuarantine")
        assert not matches(acp.KEY_EXPOSED_PATTERN, event)

    def test_loginwatch_test_event(self) -> None:
        event = health()
        event["source"] = TEST_EVENT_SOURCE
        assert matches(acp.KEY_EXPOSED_PATTERN, event)
        event["detail-type"] = "AWS API Call via CloudTrail"
        assert not matches(acp.KEY_EXPOSED_PATTERN, event)


# ================================================================ the alarm backstops


class TestFilters:
    @pytest.mark.parametrize("count", [1, 5, 20])
    def test_api_call_filter(self, count: int) -> None:
        allowed = allowlist_of(count)
        compiled_filter = acp.api_call_filter(allowed)
        assert compiled_filter.length <= MAX_PATTERN_LENGTH
        text = compiled_filter.pattern
        assert text.startswith("{ " + " && ".join(acp.API_CALL_FILTER_TERMS))
        assert "ConsoleLogin" not in text
        expressed = set(compiled_filter.expressed) | set(compiled_filter.not_expressed)
        assert expressed == set(collapse(allowed))

    def test_terms(self) -> None:
        assert acp.API_CALL_FILTER_TERMS == (
            '($.eventType = "AwsApiCall")',
            '($.userIdentity.type = "IAMUser" || $.userIdentity.type = "Root" '
            '|| $.userIdentity.type = "FederatedUser")',
            "($.userIdentity.invokedBy NOT EXISTS)",
            "($.sessionCredentialFromConsole NOT EXISTS)",
            '($.sourceIPAddress != "AWS Internal")',
            '($.sourceIPAddress != "*.amazonaws.com")',
        )

    def test_sign_in_filter_unchanged(self) -> None:
        allowed = allowlist_of(5)
        assert compile_pattern(allowed) == compile_pattern(allowed, base_terms=BASE_TERMS)
        assert compile_pattern(allowed).pattern.startswith("{ " + " && ".join(BASE_TERMS))

    def test_quarantine_filter(self) -> None:
        assert acp.QUARANTINE_FILTER == (
            '{ ($.eventSource = "iam.amazonaws.com") && ($.eventName = "AttachUserPolicy") '
            "&& ($.requestParameters.policyArn = "
            '"arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantine*") }'
        )


# ================================================================ what crosses families


def test_only_ipv6_calls_cross_families() -> None:
    """Event Ruler's hex comparison lets an IPv4 block match an IPv6 address (the
    notifier re-checks exactly, its claims absorb the duplicate); the IPv6 rule is a
    wildcard on the text, so nothing carries an allowed IPv4 call out of its region."""
    patterns = {family(p): Pattern(p) for p in acp.event_patterns(ALLOWED)}
    allowed_v4_call = api_call("203.0.113.77")
    assert not patterns[4].matches(allowed_v4_call)
    assert not patterns[6].matches(allowed_v4_call)
    # With the IPv6 complement as cidrs, ::/3 … 8000::/1 would have forwarded it:
    v6_cidrs = [acp.source_value(n) for n in acp.complement(ALLOWED)[1]]
    assert Pattern(acp.api_call_pattern(v6_cidrs)).matches(allowed_v4_call)
    allowed_v6_call = api_call("2001:db8:1234::1")
    assert patterns[6].matches(allowed_v6_call)  # every IPv6 call
    assert patterns[4].matches(allowed_v6_call)  # 32.1.13.184 (2001:0db8) is outside


def test_module_docstring_names_the_quirk() -> None:
    assert "::/0" in (event_ruler.__doc__ or "") and "::/0" in (acp.__doc__ or "")
    assert "*:*" in (event_ruler.__doc__ or "") and "*:*" in (acp.__doc__ or "")
