"""The IAM policy an operator needs to run loginwatch commands: pure, no I/O.

Nothing here knows which resources exist. Each resource declares its own calls
(``Resource.grants()``: which API operations each phase makes, on which ARNs),
and this module only turns those declarations into a policy:

- ``iam_actions`` maps an API operation to the IAM actions AWS checks for it.
  Most are ``<prefix>:<Operation>``; ``API_TO_IAM`` lists the exceptions (S3's
  IAM names, actions implied by a request such as ``iam:PassRole`` or
  tag-on-create permissions, Lambda's ``Invoke``).
- ``operator_policy`` assembles statements: keeps what the chosen commands need,
  merges the same statement declared by several resources (two log groups, a
  rule in 17 regions), orders them by command, and ``compact`` merges further to
  fit IAM's 6,144-character managed-policy limit.

``Resource: "*"`` is used only for actions that have no resource type in AWS's Service
Authorization Reference (AWS denies such an action when it is scoped to an ARN):
``ReadOnlyNoResourceLevel`` (``no_resource_level``) holds the reads among them, such as
``ec2:DescribeRegions`` and ``sts:GetCallerIdentity``; each write among them has a
statement of its own that says what it is, narrowed by the condition keys the action
supports where it has any (``unscoped_write``: ``lambda:CreateEventSourceMapping`` only for
our function, ``organizations:EnableAWSServiceAccess`` only for CloudTrail).
tests/unit/test_iam_catalogue.py holds every statement against that reference.

tests/unit/test_permissions.py runs the real engine against the emulator and
checks every API call it makes against the policy built here.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

VERSION = "2012-10-17"

SETUP = "setup"
STATUS = "status"
TEARDOWN = "teardown"
TEST_ALERT = "test-alert"
REDELIVER = "redeliver"
REVIEW = "review"
COMMANDS = (SETUP, STATUS, TEARDOWN, TEST_ALERT, REDELIVER, REVIEW)
ALL = "all"

# Which commands run each phase of a resource: every command reads the state first.
READ = frozenset({SETUP, STATUS, TEARDOWN})
READ_AND_TEST = READ | {TEST_ALERT}
ON_SETUP = frozenset({SETUP})
ON_TEARDOWN = frozenset({TEARDOWN})
ON_TEST = frozenset({TEST_ALERT})
ON_REDELIVER = frozenset({REDELIVER})
# review reads the history: the trail log group (Logs Insights), CloudTrail LookupEvents.
ON_REVIEW = frozenset({REVIEW})
EVERY_COMMAND = frozenset(COMMANDS)

NO_RESOURCE_LEVEL_SID = "ReadOnlyNoResourceLevel"
MANAGED_POLICY_LIMIT = 6144  # characters of an IAM managed policy, white space not counted

Operation = tuple[str, str]  # (botocore service name, API operation name)
Policy = dict[str, Any]

# API operation → IAM actions AWS authorises it with, where that is not simply
# "<prefix>:<Operation>": S3's IAM names differ from its API names, one call can
# need several actions (tags passed at creation, a role handed to a service), and
# Lambda's Invoke is lambda:InvokeFunction.
API_TO_IAM: Mapping[Operation, tuple[str, ...]] = {
    # ---------------------------------------------------------------- S3
    ("s3", "CreateBucket"): ("s3:CreateBucket", "s3:PutBucketOwnershipControls"),
    ("s3", "ListObjectsV2"): ("s3:ListBucket",),
    ("s3", "GetPublicAccessBlock"): ("s3:GetBucketPublicAccessBlock",),
    ("s3", "PutPublicAccessBlock"): ("s3:PutBucketPublicAccessBlock",),
    ("s3", "GetBucketEncryption"): ("s3:GetEncryptionConfiguration",),
    ("s3", "PutBucketEncryption"): ("s3:PutEncryptionConfiguration",),
    ("s3", "ListObjectVersions"): ("s3:ListBucketVersions",),
    ("s3", "DeleteObjects"): ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    # ---------------------------------------------------------------- CloudTrail
    # CloudWatchLogsRoleArn hands the role to CloudTrail: iam:PassRole.
    ("cloudtrail", "CreateTrail"): ("cloudtrail:CreateTrail", "cloudtrail:AddTags", "iam:PassRole"),
    ("cloudtrail", "UpdateTrail"): ("cloudtrail:UpdateTrail", "iam:PassRole"),
    # ---------------------------------------------------------------- DynamoDB
    # No IAM action of its own: each item is authorised as the action it performs
    # (the notifier's key windows put and update items in one transaction).
    ("dynamodb", "TransactWriteItems"): ("dynamodb:PutItem", "dynamodb:UpdateItem"),
    # ---------------------------------------------------------------- CloudWatch Logs
    # "To assign tags when you create a log group, you must have either the
    # logs:TagResource or logs:TagLogGroup permission" (CreateLogGroup API doc).
    ("logs", "CreateLogGroup"): ("logs:CreateLogGroup", "logs:TagResource"),
    # ---------------------------------------------------------------- tags at creation
    ("iam", "CreateRole"): ("iam:CreateRole", "iam:TagRole"),
    ("sns", "CreateTopic"): ("sns:CreateTopic", "sns:TagResource"),
    ("cloudwatch", "PutMetricAlarm"): ("cloudwatch:PutMetricAlarm", "cloudwatch:TagResource"),
    ("ssm", "PutParameter"): ("ssm:PutParameter", "ssm:AddTagsToResource"),
    ("events", "PutRule"): ("events:PutRule", "events:TagResource"),
    # Tags on create are authorised as cloudformation:TagResource too.
    ("cloudformation", "CreateStackSet"): (
        "cloudformation:CreateStackSet",
        "cloudformation:TagResource",
    ),
    ("dynamodb", "CreateTable"): ("dynamodb:CreateTable", "dynamodb:TagResource"),
    ("sqs", "CreateQueue"): ("sqs:CreateQueue", "sqs:TagQueue"),
    # ---------------------------------------------------------------- roles handed over
    # Role hands the execution role to Lambda: iam:PassRole.
    ("lambda", "CreateFunction"): ("lambda:CreateFunction", "lambda:TagResource", "iam:PassRole"),
    ("lambda", "UpdateFunctionConfiguration"): (
        "lambda:UpdateFunctionConfiguration",
        "iam:PassRole",
    ),
    ("lambda", "Invoke"): ("lambda:InvokeFunction",),
    # Target.RoleArn hands the scheduler role to EventBridge Scheduler: iam:PassRole.
    ("scheduler", "CreateSchedule"): ("scheduler:CreateSchedule", "iam:PassRole"),
    ("scheduler", "UpdateSchedule"): ("scheduler:UpdateSchedule", "iam:PassRole"),
    # SQS's batch calls are authorised as their single-message action.
    ("sqs", "ChangeMessageVisibilityBatch"): ("sqs:ChangeMessageVisibility",),
}


def iam_actions(operation: Operation) -> tuple[str, ...]:
    """The IAM actions AWS checks for one API operation."""
    if operation in API_TO_IAM:
        return API_TO_IAM[operation]
    service, name = operation
    return (f"{service}:{name}",)  # botocore's service names are IAM's prefixes here


# ---------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Route:
    """Where an implied action goes when its resource is not the grant's own
    (iam:PassRole on the role, s3:DeleteObject on the bucket's objects)."""

    sid: str
    resources: tuple[str, ...]
    condition: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Grant:
    """API operations the commands make on one set of ARNs → one statement.

    A resource returns these from ``grants()``; several resources may declare
    the same ``sid`` (both log groups, a rule per region): the statements merge.
    """

    sid: str
    resources: tuple[str, ...]
    operations: tuple[tuple[Operation, frozenset[str]], ...] = ()
    # IAM actions no loginwatch call names but AWS checks (KMS behind SSM).
    implied: tuple[tuple[str, frozenset[str]], ...] = ()
    condition: Mapping[str, Any] | None = None
    routes: Mapping[str, Route] = field(default_factory=dict)


class Declares(Protocol):
    def grants(self) -> list[Grant]: ...


def ops(commands: frozenset[str], service: str, *operations: str) -> tuple:
    """``operations`` of ``service``, made by ``commands``: for ``Grant.operations``."""
    return tuple(((service, op), commands) for op in operations)


# Operations named like reads, and AWS's verdict on a pattern (logs:TestMetricFilter).
_READ_PREFIXES = ("Get", "List", "Describe", "Lookup", "Filter", "Test")


def no_resource_level(commands: frozenset[str], service: str, *operations: str) -> Grant:
    """Reads AWS does not authorise per resource (no resource type): Resource "*"."""
    writes = [op for op in operations if not op.startswith(_READ_PREFIXES)]
    assert not writes, f"{writes} change something: declare them with unscoped_write()"
    return Grant(NO_RESOURCE_LEVEL_SID, ("*",), ops(commands, service, *operations))


def unscoped_write(
    sid: str,
    commands: frozenset[str],
    service: str,
    *operations: str,
    condition: Mapping[str, Any] | None = None,
    routes: Mapping[str, Route] | None = None,
) -> Grant:
    """Writes that have no resource type in AWS's catalogue: AWS authorises them only on
    Resource "*". ``condition``: the action's own condition keys, where it has any, narrow
    it to what loginwatch does. ``sid`` says what the statement holds."""
    return Grant(
        sid, ("*",), ops(commands, service, *operations), condition=condition, routes=routes or {}
    )


def pass_role(sid: str, role_arn: str, to_service: str) -> Route:
    return Route(sid, (role_arn,), {"StringEquals": {"iam:PassedToService": to_service}})


def kms_grant(
    sid: str,
    key: str | None,
    action: str,
    commands: frozenset[str],
    *,
    partition: str,
    region: str,
    account: str,
    via_service: str,
) -> Grant | None:
    """A service (SSM) encrypts and decrypts with the caller's KMS permissions.

    Only a customer-managed key needs a grant (aws/ssm lets every principal in the
    account use it through SSM). An alias cannot be used as a KMS key's Resource:
    the key is then any key of that account and region that carries the alias.
    """
    if not key:
        return None
    condition: dict[str, Any] = {
        "StringEquals": {"kms:ViaService": f"{via_service}.{region}.amazonaws.com"}
    }
    prefix = f"arn:{partition}:kms:{region}:{account}:"
    if key.startswith("arn:") and ":alias/" in key:
        prefix, alias = key.split(":alias/", 1)
        resource = f"{prefix}:key/*"
        condition["ForAnyValue:StringEquals"] = {"kms:ResourceAliases": f"alias/{alias}"}
    elif key.startswith("arn:"):
        resource = key
    elif key.startswith("alias/"):
        resource = f"{prefix}key/*"
        condition["ForAnyValue:StringEquals"] = {"kms:ResourceAliases": key}
    else:
        resource = f"{prefix}key/{key}"
    return Grant(sid, (resource,), implied=((action, commands),), condition=condition)


# Every command first asks STS who it is (the account id goes into every ARN).
CONNECT = no_resource_level(EVERY_COMMAND, "sts", "GetCallerIdentity")

# ---------------------------------------------------------------- public API


def parse_commands(commands: Iterable[str]) -> frozenset[str]:
    """``all`` means every command; anything unknown is a ValueError naming the valid ones."""
    wanted: set[str] = set()
    for command in commands:
        if command == ALL:
            wanted.update(COMMANDS)
        elif command in COMMANDS:
            wanted.add(command)
        else:
            valid = ", ".join((*COMMANDS, ALL))
            raise ValueError(f"unknown command '{command}' (valid: {valid})")
    if not wanted:
        raise ValueError("no command given")
    return frozenset(wanted)


def all_grants(resources: Iterable[Declares]) -> list[Grant]:
    """What every command needs to connect (not about any resource), then each resource's."""
    return [CONNECT, *(g for r in resources for g in r.grants())]


def operator_policy(
    resources: Iterable[Declares], commands: Iterable[str], *, compact: bool = False
) -> Policy:
    """The identity policy that lets an operator run ``commands`` on these resources.

    Statements come grouped by command: ``ReadOnlyNoResourceLevel``, then
    ``Read*`` (setup, status, teardown and test-alert all read), ``Setup*``,
    ``Teardown*`` and ``TestAlert*``.

    ``compact`` merges statements on the same resources (one per resource, Sid
    without the command prefix). It grants exactly the same, in fewer characters:
    the policy for ``all`` exceeds the 6,144 characters of a managed policy otherwise.
    """
    wanted = parse_commands(commands)
    statements: list[dict[str, Any]] = []
    for grant in all_grants(resources):
        statements.extend(_statements(grant, wanted))
    statements = _merge_same_sid(statements)
    if compact:
        statements = _merge_same_resources(statements)
        if policy_size({"Version": VERSION, "Statement": statements}) > MANAGED_POLICY_LIMIT:
            # Sids are optional: they go before the policy stops fitting.
            statements = [{k: v for k, v in s.items() if k != "Sid"} for s in statements]
    sids = [s["Sid"] for s in statements if "Sid" in s]
    assert len(sids) == len(set(sids)), f"duplicate Sids: {sids}"
    return {"Version": VERSION, "Statement": statements}


def policy_size(policy: Policy) -> int:
    """Characters as IAM counts them for its limits: white space left out."""
    return len("".join(json.dumps(policy).split()))


def operations_for(resources: Iterable[Declares], commands: Iterable[str]) -> set[Operation]:
    """Every API operation the commands may call on these resources."""
    wanted = parse_commands(commands)
    return {
        op
        for grant in all_grants(resources)
        for op, needed_by in grant.operations
        if needed_by & wanted
    }


def actions_for(resources: Iterable[Declares], commands: Iterable[str]) -> set[str]:
    """Every IAM action in the policy for ``commands``."""
    policy = operator_policy(list(resources), commands)
    return {a for s in policy["Statement"] for a in _as_list(s["Action"])}


# ---------------------------------------------------------------- assembly


def _statements(grant: Grant, wanted: frozenset[str]) -> list[dict[str, Any]]:
    own: list[str] = []
    routed: dict[str, tuple[Route, list[str]]] = {}
    actions = [a for op, cmds in grant.operations if cmds & wanted for a in iam_actions(op)]
    actions += [a for a, cmds in grant.implied if cmds & wanted]
    for action in actions:
        route = grant.routes.get(action)
        if route is None:
            if action not in own:
                own.append(action)
        else:
            bucket = routed.setdefault(route.sid, (route, []))[1]
            if action not in bucket:
                bucket.append(action)
    statements = []
    if own:
        statements.append(_statement(grant.sid, own, grant.resources, grant.condition))
    for route, routed_actions in routed.values():
        statements.append(_statement(route.sid, routed_actions, route.resources, route.condition))
    return statements


def _statement(
    sid: str, actions: list[str], resources: tuple[str, ...], condition: Mapping[str, Any] | None
) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": actions,
        "Resource": list(resources),
    }
    if condition:
        statement["Condition"] = {k: dict(v) for k, v in condition.items()}
    return statement


_COMMAND_PREFIXES = ("TestAlert", "Setup", "Teardown", "Read")
_ORDER = (NO_RESOURCE_LEVEL_SID, "Read", "Setup", "Teardown", "TestAlert")


def _rank(sid: str) -> int:
    return next(i for i, prefix in enumerate(_ORDER) if sid.startswith(prefix) or i == 4)


def _merge_same_sid(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One statement per Sid where resources declared the same thing.

    First the actions on the same ARNs are joined (a resource and the permission
    that lives on it), then the same actions on different ARNs (both roles, a
    rule in every region). What still differs keeps the Sid with a number.
    """

    def key(s: dict[str, Any], *parts: str) -> str:
        return json.dumps([s["Sid"], s.get("Condition"), *(sorted(s[p]) for p in parts)])

    def join(items: list[dict[str, Any]], same: str, grow: str) -> list[dict[str, Any]]:
        merged: dict[str, dict[str, Any]] = {}
        for s in items:
            k = key(s, same)
            if k not in merged:
                merged[k] = {**s, same: list(s[same]), grow: list(s[grow])}
            else:
                merged[k][grow].extend(x for x in s[grow] if x not in merged[k][grow])
        return list(merged.values())

    joined = join(join(statements, "Resource", "Action"), "Action", "Resource")
    joined.sort(key=lambda s: _rank(s["Sid"]))  # stable: declaration order within a group
    result = []
    used: dict[str, int] = {}
    for statement in joined:
        sid = statement["Sid"]
        used[sid] = used.get(sid, 0) + 1
        if used[sid] > 1:
            sid = f"{sid}{used[sid]}"
        result.append(_tidy({**statement, "Sid": sid}))
    return result


def _merge_same_resources(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Exactly the same (action, resource) pairs, in fewer characters: what another
    statement already grants is left out, then statements on the same resources and
    statements of the same actions are joined."""
    merged_resources = _join_same_resources(_without_repeats(statements))
    return [_without_covered(s) for s in _join_same_actions(merged_resources)]


def _without_covered(statement: dict[str, Any]) -> dict[str, Any]:
    """An ARN another ARN of the same statement matches adds nothing (the home region's
    rule beside the rule in every region ``*``): left out, the grant is the same."""
    resources = _as_list(statement["Resource"])
    kept = [
        r for r in resources if not any(o != r and fnmatch.fnmatchcase(r, o) for o in resources)
    ]
    return _tidy({**statement, "Resource": kept})


def _without_repeats(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop an action from a statement when other unconditional statements already
    grant it on every one of its resources (setup's removal copies of teardown's)."""
    current: list[dict[str, Any] | None] = list(statements)
    for i, statement in enumerate(statements):
        others: dict[str, set[str]] = {}
        for j, other in enumerate(current):
            if j == i or other is None or other.get("Condition"):
                continue
            for action in _as_list(other["Action"]):
                others.setdefault(action, set()).update(_as_list(other["Resource"]))
        resources = set(_as_list(statement["Resource"]))
        actions = [
            a for a in _as_list(statement["Action"]) if not resources <= others.get(a, set())
        ]
        current[i] = {**statement, "Action": actions} if actions else None
    return [s for s in current if s is not None]


def _join_same_actions(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for statement in statements:
        key = json.dumps(
            [sorted(_as_list(statement["Action"])), statement.get("Condition")], sort_keys=True
        )
        if key not in merged:
            merged[key] = {**statement, "Resource": _as_list(statement["Resource"])}
            continue
        resources = merged[key]["Resource"]
        resources.extend(r for r in _as_list(statement["Resource"]) if r not in resources)
    return [_tidy(s) for s in merged.values()]


def _join_same_resources(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for statement in statements:
        # The read-only statement stays read-only: a write on "*" keeps its own statement.
        read_only = statement["Sid"] == NO_RESOURCE_LEVEL_SID
        key = json.dumps(
            [sorted(_as_list(statement["Resource"])), statement.get("Condition"), read_only],
            sort_keys=True,
        )
        if key not in merged:
            merged[key] = {**statement, "Action": _as_list(statement["Action"])}
            continue
        actions = merged[key]["Action"]
        actions.extend(a for a in _as_list(statement["Action"]) if a not in actions)
    result = []
    used: set[str] = set()
    for statement in merged.values():
        sid = statement["Sid"]
        if sid != NO_RESOURCE_LEVEL_SID:
            sid = next((sid[len(p) :] for p in _COMMAND_PREFIXES if sid.startswith(p)), sid)
        while sid in used:
            sid += "2"
        used.add(sid)
        result.append(_tidy({**statement, "Sid": sid}))
    return result


# The same resource in this many regions or more is written once, with "*" for the region.
REGION_WILDCARD_FROM = 4


def _collapse_regions(resources: list[str]) -> list[str]:
    """``arn:aws:events:<r>:123:rule/x`` for many ``<r>`` → ``arn:aws:events:*:123:rule/x``.

    Still only our own name in our own account: a rule in 17 regions would otherwise
    take 17 ARNs in every statement about it, and push the policy past IAM's size limit.
    """
    by_shape: dict[tuple[str, ...], list[str]] = {}
    for arn in resources:
        parts = arn.split(":", 5)
        if len(parts) == 6 and parts[3] and parts[3] != "*":
            by_shape.setdefault((*parts[:3], *parts[4:]), []).append(arn)
    collapsed: list[str] = []
    for arn in resources:
        parts = arn.split(":", 5)
        shape = (*parts[:3], *parts[4:]) if len(parts) == 6 else ()
        if len(by_shape.get(shape, [])) >= REGION_WILDCARD_FROM:
            arn = ":".join([*parts[:3], "*", *parts[4:]])
        if arn not in collapsed:
            collapsed.append(arn)
    return collapsed


def _tidy(statement: dict[str, Any]) -> dict[str, Any]:
    """A single action or resource is written as a string, as IAM shows it."""
    actions = _as_list(statement["Action"])
    resources = _collapse_regions(_as_list(statement["Resource"]))
    return {
        **statement,
        "Action": actions[0] if len(actions) == 1 else actions,
        "Resource": resources[0] if len(resources) == 1 else resources,
    }


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)
