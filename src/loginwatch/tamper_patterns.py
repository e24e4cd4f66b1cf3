"""The ``tamper`` rule's EventBridge patterns and its backstop's filter patterns. Pure.

Built from the one list of watched calls (notifier/tamper.WATCHES), so the patterns,
the metric filter and the notifier's decision agree. Each narrowed field is matched
whichever way a request can name loginwatch's resource (notifier/tamper.owns): a
function by name, ``name:qualifier``, full or partial ARN (any value ending
``:<function>``, or holding ``:<function>:``); the claims table by name or ARN; a
parameter by name or ARN; a queue by its URL; a topic or subscription by ARN; IAM role
names without regard to case (IAM's are case-insensitive). Trail changes and
``LeaveOrganization`` are matched whatever they name.

These are write calls: the rule's state ``ENABLED`` delivers them (read-only calls would
need ``ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS``). Patterns go to a rule in every
region the fast path covers (IAM's calls arrive in us-east-1 only), forwarded home.

Organization mode: each member account's stack carries ``member_tamper_patterns`` (the
watches marked ``in_members``: its rules, its forwarding role, its stack, leaving the
organization), forwarded to the home bus, where the home rules' patterns (every watch)
take them too: the kinds member watches use name no account.

A rule never sees its own deletion or disabling reliably (EventBridge says a deleted rule
"might continue to match" for a short while, no more): the backstop's filters see it.
"""

from __future__ import annotations

import json
from typing import Any

from .cis_patterns import TRAIL_CHANGES
from .errors import UsageError
from .names import Names
from .notifier.protocol import TEST_EVENT_SOURCE
from .notifier.tamper import (
    ANY,
    FUNCTION,
    LOG_GROUP,
    MEMBER_STACK,
    PARAMETER,
    PREFIXED,
    QUEUE,
    ROLE,
    TABLE,
    TOPIC,
    US_EAST_1_ONLY,
    WATCHES,
    Own,
    Watch,
    member_watches,
    own_changes_filter,
)

DEFAULT_PATTERN_LIMIT = 2048  # EventBridge's default event pattern size quota
API_CALL_DETAIL_TYPE = "AWS API Call via CloudTrail"
# Security Hub CloudWatch.5, exactly as the Security Hub user guide gives it (CIS 1.2 3.5,
# 1.4 4.5): "Additional fields or terms cannot be added". It misses PutEventSelectors,
# which own_resources_filter counts.
CIS_TRAIL_CHANGES = TRAIL_CHANGES


def own_for(names: Names, trail_log_group: str | None = None, *, organization: bool = False) -> Own:
    """loginwatch's names as the notifier derives them, with the account for ARNs. A
    reused trail's log group is not ``names.trail_log_group``: pass the deployment's."""
    return Own(
        name=names.name,
        trail_log_group=trail_log_group or names.trail_log_group,
        partition=names.partition,
        region=names.region,
        account=names.account,
        organization=organization,
    )


def _values(kind: str, own: Own) -> list[Any]:
    """The pattern values matching ``kind``'s field when it names loginwatch's resource."""
    p = own.prefix
    if kind == PREFIXED:
        return [{"prefix": p}]
    if kind == ROLE:
        return [{"prefix": {"equals-ignore-case": p}}]
    if kind == FUNCTION:
        fn = own.function
        return [fn, {"prefix": f"{fn}:"}, {"suffix": f":{fn}"}, {"wildcard": f"*:{fn}:*"}]
    if kind == TABLE:
        return [own.claims_table, {"suffix": f":table/{own.claims_table}"}]
    if kind == LOG_GROUP:
        return list(own.log_groups)
    if kind == TOPIC:
        # A topic's ARN is always whole (SNS takes no name); subscriptions extend it.
        return [{"prefix": f"arn:{own.partition}:sns:{own.region}:{own.account}:{p}"}]
    if kind == PARAMETER:
        arn = f"arn:{own.partition}:ssm:{own.region}:{own.account}:parameter{own.parameter_path}"
        return [{"prefix": own.parameter_path}, {"prefix": arn}]
    if kind == QUEUE:
        # Any host (regional, legacy, VPC endpoint): the path names account and queue.
        return [{"wildcard": f"*/{own.account}/{p}*"}]
    if kind == MEMBER_STACK:
        # By name, or by stack id (arn:…:stack/<name>/<id>) in whichever member account.
        stack = own.member_stack_prefix
        return [{"prefix": stack}, {"wildcard": f"*:stack/{stack}*"}]
    raise ValueError(f"unknown kind {kind!r}")


def _event_names(watch: Watch) -> list[Any]:
    if not watch.versioned:
        return list(watch.calls)
    # DeleteFunction20150331, UpdateFunctionCode20150331v2: the name, and the name + "20…".
    return [v for call in watch.calls for v in (call, {"prefix": f"{call}20"})]


def watch_block(watch: Watch, own: Own) -> dict[str, Any]:
    """The part of ``detail`` one group of calls matches."""
    block: dict[str, Any] = {"eventSource": [watch.service], "eventName": _event_names(watch)}
    narrowed = watch.narrowed
    if narrowed:
        block["requestParameters"] = {f: _values(kind, own) for f, kind in narrowed}
    return block


def service_blocks(own: Own, watches: tuple[Watch, ...] = WATCHES) -> list[dict[str, Any]]:
    """One block per service: its groups of calls as ``$or`` branches (one eventSource)."""
    by_service: dict[str, list[dict[str, Any]]] = {}
    for watch in watches:
        by_service.setdefault(watch.service, []).append(watch_block(watch, own))
    blocks = []
    for service, group in by_service.items():
        if len(group) == 1:
            blocks.append(group[0])
            continue
        branches = [{k: v for k, v in b.items() if k != "eventSource"} for b in group]
        blocks.append({"eventSource": [service], "$or": branches})
    return blocks


def _pattern(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    detail = blocks[0] if len(blocks) == 1 else {"$or": blocks}
    return {
        "detail-type": [API_CALL_DETAIL_TYPE],
        # aws.* for CloudTrail's events; `test-alert --rule tamper` sends loginwatch's own.
        "source": [{"prefix": "aws."}, TEST_EVENT_SOURCE],
        "detail": detail,
    }


def pattern_json(pattern: dict[str, Any]) -> str:
    """The pattern as setup sends it (compact JSON); its length is what the quota counts."""
    return json.dumps(pattern, separators=(",", ":"))


def _packed(blocks: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The blocks in as few patterns of at most ``limit`` characters as first fit, largest
    first, finds (one rule per pattern and region)."""
    bins: list[list[dict[str, Any]]] = []
    for block in sorted(blocks, key=lambda b: -len(pattern_json(b))):
        for held in bins:
            if len(pattern_json(_pattern([*held, block]))) <= limit:
                held.append(block)
                break
        else:
            if len(pattern_json(_pattern([block]))) > limit:
                raise ValueError(f"a pattern limit of {limit} cannot hold {block['eventName']}")
            bins.append([block])
    return [_pattern(b) for b in bins]


def tamper_patterns(
    names: Names,
    trail_log_group: str | None = None,
    *,
    limit: int = DEFAULT_PATTERN_LIMIT,
) -> list[dict[str, Any]]:
    """The ``tamper`` rule's patterns, as few as fit in ``limit`` characters each (one
    rule per pattern and region, blocks packed largest first: two or three, as the name
    and log group's lengths make them)."""
    return _packed(service_blocks(own_for(names, trail_log_group)), limit)


def member_tamper_patterns(
    names: Names, *, limit: int = DEFAULT_PATTERN_LIMIT
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A member account's ``tamper`` patterns: those for every region, then those for
    the calls that arrive in us-east-1 only (IAM, Organizations; their rule takes a
    template Condition). Both from the one list of watches (``in_members``)."""
    own = own_for(names)
    watches = member_watches()
    regional = tuple(w for w in watches if w.service not in US_EAST_1_ONLY)
    global_ = tuple(w for w in watches if w.service in US_EAST_1_ONLY)
    return (
        _packed(service_blocks(own, regional), limit),
        _packed(service_blocks(own, global_), limit),
    )


def own_resources_filter(
    names: Names, trail_log_group: str | None = None, *, organization: bool = False
) -> str:
    """The metric filter counting changes to loginwatch's own resources (≤ 1,024
    characters; see notifier/tamper.own_changes_filter). A name and a reused trail's log
    group too long for any filter are the config's to change: said as such."""
    try:
        return own_changes_filter(own_for(names, trail_log_group, organization=organization))
    except ValueError as too_long:
        raise UsageError(
            f"rules.tamper: {too_long} (with `name` {names.name!r} and the trail's log "
            f"group of {len(trail_log_group or names.trail_log_group)} characters).",
            "Choose a shorter `name`, or turn tamper off with `tamper: {enabled: false}`.",
        ) from None


__all__ = [
    "ANY",
    "CIS_TRAIL_CHANGES",
    "member_tamper_patterns",
    "own_for",
    "own_resources_filter",
    "pattern_json",
    "tamper_patterns",
    "watch_block",
]
