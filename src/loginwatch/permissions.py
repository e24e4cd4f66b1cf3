"""The IAM policy an operator needs to run loginwatch commands: pure, no I/O.

Built from one declaration: for each resource loginwatch touches, which API
operations each command makes on it. ``API_TO_IAM`` turns an operation into
the IAM actions AWS checks for it (including the extra ones a request implies,
such as ``iam:PassRole`` or tag-on-create permissions), and every statement is
scoped to the config's derived names. The only ``Resource: "*"`` statement is
``ReadOnlyNoResourceLevel``: read-only actions for which AWS offers no
resource-level permissions. Other wildcards are ARN suffixes AWS requires:
``<log-group ARN>:*`` (the form most CloudWatch Logs actions are authorised
on), the trail bucket's objects (``<bucket ARN>/*``, emptied by teardown
--delete-bucket), and, for a KMS key named by alias, ``key/*`` narrowed by a
``kms:ResourceAliases`` condition.

tests/unit/test_permissions.py runs the real engine against the emulator and
checks every API call it makes against this module.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import KmsKeys
from .names import Names

VERSION = "2012-10-17"

SETUP = "setup"
STATUS = "status"
TEARDOWN = "teardown"
TEST_ALERT = "test-alert"
COMMANDS = (SETUP, STATUS, TEARDOWN, TEST_ALERT)
ALL = "all"

NO_RESOURCE_LEVEL_SID = "ReadOnlyNoResourceLevel"

Operation = tuple[str, str]  # (botocore service name, API operation name)
Policy = dict[str, Any]

# API operation → IAM actions AWS authorises it with. Most are "<prefix>:<Operation>";
# the table exists for the exceptions: S3's IAM names differ from its API names,
# one call can need several actions (tags passed at creation, a role handed to a
# service), and Lambda's Invoke is lambda:InvokeFunction.
API_TO_IAM: Mapping[Operation, tuple[str, ...]] = {
    ("sts", "GetCallerIdentity"): ("sts:GetCallerIdentity",),
    # ---------------------------------------------------------------- S3
    ("s3", "CreateBucket"): ("s3:CreateBucket", "s3:PutBucketOwnershipControls"),
    ("s3", "GetBucketTagging"): ("s3:GetBucketTagging",),
    ("s3", "PutBucketTagging"): ("s3:PutBucketTagging",),
    ("s3", "ListObjectsV2"): ("s3:ListBucket",),
    ("s3", "GetBucketPolicy"): ("s3:GetBucketPolicy",),
    ("s3", "PutBucketPolicy"): ("s3:PutBucketPolicy",),
    ("s3", "DeleteBucketPolicy"): ("s3:DeleteBucketPolicy",),
    ("s3", "GetPublicAccessBlock"): ("s3:GetBucketPublicAccessBlock",),
    ("s3", "PutPublicAccessBlock"): ("s3:PutBucketPublicAccessBlock",),
    ("s3", "GetBucketEncryption"): ("s3:GetEncryptionConfiguration",),
    ("s3", "PutBucketEncryption"): ("s3:PutEncryptionConfiguration",),
    ("s3", "ListObjectVersions"): ("s3:ListBucketVersions",),
    ("s3", "DeleteObjects"): ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    ("s3", "DeleteBucket"): ("s3:DeleteBucket",),
    # ---------------------------------------------------------------- CloudTrail
    ("cloudtrail", "DescribeTrails"): ("cloudtrail:DescribeTrails",),
    ("cloudtrail", "GetTrail"): ("cloudtrail:GetTrail",),
    ("cloudtrail", "GetTrailStatus"): ("cloudtrail:GetTrailStatus",),
    ("cloudtrail", "GetEventSelectors"): ("cloudtrail:GetEventSelectors",),
    ("cloudtrail", "ListTags"): ("cloudtrail:ListTags",),
    # CloudWatchLogsRoleArn hands the role to CloudTrail: iam:PassRole.
    ("cloudtrail", "CreateTrail"): ("cloudtrail:CreateTrail", "cloudtrail:AddTags", "iam:PassRole"),
    ("cloudtrail", "UpdateTrail"): ("cloudtrail:UpdateTrail", "iam:PassRole"),
    ("cloudtrail", "PutEventSelectors"): ("cloudtrail:PutEventSelectors",),
    ("cloudtrail", "StartLogging"): ("cloudtrail:StartLogging",),
    ("cloudtrail", "StopLogging"): ("cloudtrail:StopLogging",),
    ("cloudtrail", "DeleteTrail"): ("cloudtrail:DeleteTrail",),
    # ---------------------------------------------------------------- CloudWatch Logs
    ("logs", "DescribeLogGroups"): ("logs:DescribeLogGroups",),
    ("logs", "ListTagsForResource"): ("logs:ListTagsForResource",),
    # "To assign tags when you create a log group, you must have either the
    # logs:TagResource or logs:TagLogGroup permission" (CreateLogGroup API doc).
    ("logs", "CreateLogGroup"): ("logs:CreateLogGroup", "logs:TagResource"),
    ("logs", "PutRetentionPolicy"): ("logs:PutRetentionPolicy",),
    ("logs", "AssociateKmsKey"): ("logs:AssociateKmsKey",),
    ("logs", "DeleteLogGroup"): ("logs:DeleteLogGroup",),
    ("logs", "DescribeMetricFilters"): ("logs:DescribeMetricFilters",),
    ("logs", "PutMetricFilter"): ("logs:PutMetricFilter",),
    ("logs", "DeleteMetricFilter"): ("logs:DeleteMetricFilter",),
    ("logs", "FilterLogEvents"): ("logs:FilterLogEvents",),
    # ---------------------------------------------------------------- IAM
    ("iam", "GetRole"): ("iam:GetRole",),
    ("iam", "GetRolePolicy"): ("iam:GetRolePolicy",),
    ("iam", "CreateRole"): ("iam:CreateRole", "iam:TagRole"),
    ("iam", "PutRolePolicy"): ("iam:PutRolePolicy",),
    ("iam", "UpdateAssumeRolePolicy"): ("iam:UpdateAssumeRolePolicy",),
    ("iam", "DeleteRolePolicy"): ("iam:DeleteRolePolicy",),
    ("iam", "DeleteRole"): ("iam:DeleteRole",),
    # ---------------------------------------------------------------- SNS
    ("sns", "CreateTopic"): ("sns:CreateTopic", "sns:TagResource"),
    ("sns", "GetTopicAttributes"): ("sns:GetTopicAttributes",),
    ("sns", "SetTopicAttributes"): ("sns:SetTopicAttributes",),
    ("sns", "ListTagsForResource"): ("sns:ListTagsForResource",),
    ("sns", "DeleteTopic"): ("sns:DeleteTopic",),
    ("sns", "Subscribe"): ("sns:Subscribe",),
    ("sns", "Unsubscribe"): ("sns:Unsubscribe",),
    ("sns", "ListSubscriptionsByTopic"): ("sns:ListSubscriptionsByTopic",),
    # ---------------------------------------------------------------- CloudWatch
    ("cloudwatch", "DescribeAlarms"): ("cloudwatch:DescribeAlarms",),
    ("cloudwatch", "ListTagsForResource"): ("cloudwatch:ListTagsForResource",),
    ("cloudwatch", "PutMetricAlarm"): ("cloudwatch:PutMetricAlarm", "cloudwatch:TagResource"),
    ("cloudwatch", "DeleteAlarms"): ("cloudwatch:DeleteAlarms",),
    ("cloudwatch", "SetAlarmState"): ("cloudwatch:SetAlarmState",),
    ("cloudwatch", "GetMetricStatistics"): ("cloudwatch:GetMetricStatistics",),
    # ---------------------------------------------------------------- SSM
    ("ssm", "GetParameter"): ("ssm:GetParameter",),
    ("ssm", "ListTagsForResource"): ("ssm:ListTagsForResource",),
    ("ssm", "PutParameter"): ("ssm:PutParameter", "ssm:AddTagsToResource"),
    ("ssm", "DeleteParameter"): ("ssm:DeleteParameter",),
    # ---------------------------------------------------------------- Lambda
    ("lambda", "GetFunction"): ("lambda:GetFunction",),  # also every waiter poll
    ("lambda", "GetPolicy"): ("lambda:GetPolicy",),
    # Role hands the execution role to Lambda: iam:PassRole.
    ("lambda", "CreateFunction"): ("lambda:CreateFunction", "lambda:TagResource", "iam:PassRole"),
    ("lambda", "UpdateFunctionConfiguration"): (
        "lambda:UpdateFunctionConfiguration",
        "iam:PassRole",
    ),
    ("lambda", "UpdateFunctionCode"): ("lambda:UpdateFunctionCode",),
    ("lambda", "AddPermission"): ("lambda:AddPermission",),
    ("lambda", "RemovePermission"): ("lambda:RemovePermission",),
    ("lambda", "DeleteFunction"): ("lambda:DeleteFunction",),
    ("lambda", "Invoke"): ("lambda:InvokeFunction",),
}

_READ = frozenset({SETUP, STATUS, TEARDOWN})  # every command that reads the resources' state
_READ_AND_TEST = _READ | {TEST_ALERT}
_SETUP = frozenset({SETUP})
_TEARDOWN = frozenset({TEARDOWN})
_TEST = frozenset({TEST_ALERT})
_ALL = frozenset(COMMANDS)


@dataclass(frozen=True)
class _Route:
    """Where an implied action goes when its resource is not the grant's own."""

    sid: str
    resources: tuple[str, ...]
    condition: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class _Grant:
    """API operations the commands make on one set of resources → one statement."""

    sid: str
    resources: tuple[str, ...]
    operations: tuple[tuple[Operation, frozenset[str]], ...] = ()
    # IAM actions no loginwatch call names but AWS checks (KMS behind SSM).
    implied: tuple[tuple[str, frozenset[str]], ...] = ()
    condition: Mapping[str, Any] | None = None
    routes: Mapping[str, _Route] = field(default_factory=dict)


def _ops(commands: frozenset[str], service: str, *operations: str) -> tuple:
    return tuple(((service, op), commands) for op in operations)


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


def operator_policy(
    names: Names,
    commands: Iterable[str],
    *,
    kms: KmsKeys | None = None,
    reuse_log_group: str | None = None,
    compact: bool = False,
) -> Policy:
    """The identity policy that lets an operator run ``commands`` for one config.

    In reuse mode (``names.reused_trail`` set) ``reuse_log_group`` must name the
    reused trail's CloudWatch Logs group (a name or its ARN): the metric filter
    lives there. Statements come grouped by command: ``ReadOnlyNoResourceLevel``,
    then ``Read*`` (setup, status, teardown and test-alert all read), ``Setup*``,
    ``Teardown*`` and ``TestAlert*``.

    ``compact`` merges statements on the same resources (one per resource, Sid
    without the command prefix). It grants exactly the same, in fewer characters:
    the policy for ``all`` exceeds the 6,144 characters of a managed policy otherwise.
    """
    wanted = parse_commands(commands)
    statements: list[dict[str, Any]] = []
    for grant in _grants(names, kms or KmsKeys(), _trail_log_group(names, reuse_log_group)):
        statements.extend(_statements(grant, wanted))
    if compact:
        statements = _merge_same_resources(statements)
    sids = [s["Sid"] for s in statements]
    assert len(sids) == len(set(sids)), f"duplicate Sids: {sids}"
    return {"Version": VERSION, "Statement": statements}


def operations_for(
    commands: Iterable[str], *, reuse_trail: bool = False, kms: KmsKeys | None = None
) -> set[Operation]:
    """Every API operation the commands may call (declared once, in ``_grants``)."""
    wanted = parse_commands(commands)
    return {
        op
        for grant in _grants(_example_names(reuse_trail), kms or KmsKeys(), "/example/trail")
        for op, needed_by in grant.operations
        if needed_by & wanted
    }


def actions_for(
    commands: Iterable[str], *, reuse_trail: bool = False, kms: KmsKeys | None = None
) -> set[str]:
    """Every IAM action in the policy for ``commands`` (new-trail mode unless reuse_trail)."""
    names = _example_names(reuse_trail)
    log_group = "/example/trail" if reuse_trail else None
    policy = operator_policy(names, commands, kms=kms, reuse_log_group=log_group)
    return {a for s in policy["Statement"] for a in _as_list(s["Action"])}


# ---------------------------------------------------------------- the declaration


def _grants(names: Names, kms: KmsKeys, trail_log_group: str) -> list[_Grant]:
    """Every resource loginwatch touches, and which command calls what on it."""
    new_trail = names.reused_trail is None
    bucket = (names.bucket_arn,)
    objects = (f"{names.bucket_arn}/*",)
    trail = (names.trail_arn,)
    trail_group = _log_group_arns(names, trail_log_group)
    notifier_group = _log_group_arns(names, names.notifier_log_group)
    own_groups = (trail_group if new_trail else ()) + notifier_group
    roles = (
        (names.role_arn(names.trail_role),) if new_trail else ()
    ) + (names.role_arn(names.notifier_role),)  # fmt: skip
    topic = (names.topic_arn,)
    alarm = (names.alarm_arn,)
    parameter = (names.parameter_arn,)
    function = (names.function_arn,)
    pass_trail_role = _Route(
        "SetupPassTrailRoleToCloudTrail",
        (names.role_arn(names.trail_role),),
        {"StringEquals": {"iam:PassedToService": "cloudtrail.amazonaws.com"}},
    )
    pass_notifier_role = _Route(
        "SetupPassNotifierRoleToLambda",
        (names.role_arn(names.notifier_role),),
        {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}},
    )
    empty_bucket = _Route("TeardownTrailBucketObjects", objects)

    grants = [
        _Grant(
            NO_RESOURCE_LEVEL_SID,
            ("*",),
            _ops(_ALL, "sts", "GetCallerIdentity")
            + _ops(_READ, "logs", "DescribeLogGroups")
            + (_ops(_SETUP, "cloudtrail", "DescribeTrails") if new_trail else ())
            + _ops(frozenset({STATUS, TEST_ALERT}), "cloudwatch", "GetMetricStatistics"),
        ),
        # ------------------------------------------------------------ reads
        _Grant(
            "ReadTrailBucket",
            bucket,
            _ops(
                _READ,
                "s3",
                "GetBucketTagging",
                "ListObjectsV2",  # only for a bucket left untagged by an interrupted run
                "GetBucketPolicy",
                "GetPublicAccessBlock",
                "GetBucketEncryption",
            ),
        )
        if new_trail
        else None,
        _Grant(
            "ReadTrail",
            trail,
            _ops(_READ, "cloudtrail", "GetTrail", "GetTrailStatus", "GetEventSelectors")
            + (_ops(_READ, "cloudtrail", "ListTags") if new_trail else ()),
        ),
        _Grant("ReadLogGroups", own_groups, _ops(_READ, "logs", "ListTagsForResource")),
        _Grant("ReadMetricFilter", trail_group, _ops(_READ, "logs", "DescribeMetricFilters")),
        _Grant("ReadRoles", roles, _ops(_READ, "iam", "GetRole", "GetRolePolicy")),
        _Grant(
            "ReadTopic",
            topic,
            _ops(_READ, "sns", "GetTopicAttributes", "ListTagsForResource")
            + _ops(_READ_AND_TEST, "sns", "ListSubscriptionsByTopic"),
        ),
        _Grant(
            "ReadAlarm",
            alarm,
            _ops(_READ, "cloudwatch", "DescribeAlarms", "ListTagsForResource"),
        ),
        _Grant(
            "ReadWebhookParameter",
            parameter,
            _ops(_READ, "ssm", "GetParameter", "ListTagsForResource"),
        ),
        _kms_grant("ReadWebhookKey", names, kms.parameter, "kms:Decrypt", _READ),
        _Grant(
            "ReadFunction",
            function,
            _ops(_READ, "lambda", "GetFunction") + _ops(_READ_AND_TEST, "lambda", "GetPolicy"),
        ),
        # ------------------------------------------------------------ setup
        _Grant(
            "SetupTrailBucket",
            bucket,
            _ops(
                _SETUP,
                "s3",
                "CreateBucket",
                "PutBucketTagging",
                "PutPublicAccessBlock",
                "PutBucketEncryption",
                "PutBucketPolicy",
            ),
        )
        if new_trail
        else None,
        _Grant(
            "SetupLogGroups",
            own_groups,
            _ops(_SETUP, "logs", "CreateLogGroup", "PutRetentionPolicy"),
        ),
        _Grant("SetupTrailLogGroupKey", trail_group, _ops(_SETUP, "logs", "AssociateKmsKey"))
        if new_trail and kms.log_group
        else None,
        _Grant(
            "SetupRoles",
            roles,
            _ops(_SETUP, "iam", "CreateRole", "PutRolePolicy", "UpdateAssumeRolePolicy"),
        ),
        _Grant(
            "SetupTrail",
            trail,
            _ops(
                _SETUP,
                "cloudtrail",
                "CreateTrail",
                "UpdateTrail",
                "PutEventSelectors",
                "StartLogging",
            ),
            routes={"iam:PassRole": pass_trail_role},
        )
        if new_trail
        else None,
        _Grant("SetupMetricFilter", trail_group, _ops(_SETUP, "logs", "PutMetricFilter")),
        _Grant(
            "SetupTopic",
            topic,
            _ops(_SETUP, "sns", "CreateTopic", "SetTopicAttributes", "Subscribe", "Unsubscribe"),
        ),
        _Grant("SetupAlarm", alarm, _ops(_SETUP, "cloudwatch", "PutMetricAlarm")),
        _Grant("SetupWebhookParameter", parameter, _ops(_SETUP, "ssm", "PutParameter")),
        _kms_grant("SetupWebhookKey", names, kms.parameter, "kms:Encrypt", _SETUP),
        _Grant(
            "SetupFunction",
            function,
            _ops(
                _SETUP,
                "lambda",
                "CreateFunction",
                "UpdateFunctionConfiguration",
                "UpdateFunctionCode",
                "AddPermission",
                "RemovePermission",
            ),
            routes={"iam:PassRole": pass_notifier_role},
        ),
        # ------------------------------------------------------------ teardown
        _Grant("TeardownTopic", topic, _ops(_TEARDOWN, "sns", "Unsubscribe", "DeleteTopic")),
        _Grant(
            "TeardownFunction",
            function,
            _ops(_TEARDOWN, "lambda", "RemovePermission", "DeleteFunction"),
        ),
        _Grant("TeardownLogGroups", own_groups, _ops(_TEARDOWN, "logs", "DeleteLogGroup")),
        _Grant("TeardownRoles", roles, _ops(_TEARDOWN, "iam", "DeleteRolePolicy", "DeleteRole")),
        _Grant("TeardownWebhookParameter", parameter, _ops(_TEARDOWN, "ssm", "DeleteParameter")),
        _Grant("TeardownAlarm", alarm, _ops(_TEARDOWN, "cloudwatch", "DeleteAlarms")),
        _Grant("TeardownMetricFilter", trail_group, _ops(_TEARDOWN, "logs", "DeleteMetricFilter")),
        _Grant("TeardownTrail", trail, _ops(_TEARDOWN, "cloudtrail", "StopLogging", "DeleteTrail"))
        if new_trail
        else None,
        _Grant(
            "TeardownTrailBucket",
            bucket,
            _ops(
                _TEARDOWN,
                "s3",
                "DeleteBucketPolicy",
                "ListObjectVersions",
                "DeleteObjects",
                "DeleteBucket",
            ),
            routes={"s3:DeleteObject": empty_bucket, "s3:DeleteObjectVersion": empty_bucket},
        )
        if new_trail
        else None,
        # ------------------------------------------------------------ test-alert
        _Grant("TestAlertSetAlarmState", alarm, _ops(_TEST, "cloudwatch", "SetAlarmState")),
        _Grant("TestAlertInvokeFunction", function, _ops(_TEST, "lambda", "Invoke")),
        _Grant("TestAlertReadNotifierLogs", notifier_group, _ops(_TEST, "logs", "FilterLogEvents")),
    ]
    return [g for g in grants if g is not None]


# ---------------------------------------------------------------- building blocks


def _statements(grant: _Grant, wanted: frozenset[str]) -> list[dict[str, Any]]:
    own: list[str] = []
    routed: dict[str, tuple[_Route, list[str]]] = {}
    actions = [a for op, cmds in grant.operations if cmds & wanted for a in API_TO_IAM[op]]
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
        "Action": actions[0] if len(actions) == 1 else list(actions),
        "Resource": resources[0] if len(resources) == 1 else list(resources),
    }
    if condition:
        statement["Condition"] = {k: dict(v) for k, v in condition.items()}
    return statement


_COMMAND_PREFIXES = ("TestAlert", "Setup", "Teardown", "Read")


def _merge_same_resources(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for statement in statements:
        key = json.dumps([statement["Resource"], statement.get("Condition")], sort_keys=True)
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
        actions = statement["Action"]
        result.append(
            {**statement, "Sid": sid, "Action": actions[0] if len(actions) == 1 else actions}
        )
    return result


def _log_group_arns(names: Names, log_group: str) -> tuple[str, ...]:
    # Both forms AWS uses: the bare ARN (tagging APIs) and ARN:* (every other action).
    arn = names.log_group_arn(log_group)
    return (arn, f"{arn}:*")


def _trail_log_group(names: Names, reuse_log_group: str | None) -> str:
    if names.reused_trail is None:
        if reuse_log_group is not None:
            raise ValueError("reuse_log_group is only for a config that reuses a trail")
        return names.trail_log_group
    if not reuse_log_group:
        raise ValueError(
            f"trail '{names.reused_trail}' is reused: pass reuse_log_group, the CloudWatch Logs "
            "group it delivers to (its CloudWatchLogsLogGroupArn), where the metric filter lives"
        )
    if ":log-group:" in reuse_log_group:  # an ARN, as CloudTrail reports it
        return reuse_log_group.split(":log-group:")[1].removesuffix(":*")
    return reuse_log_group


def _kms_grant(
    sid: str, names: Names, key: str | None, action: str, commands: frozenset[str]
) -> _Grant | None:
    """SSM encrypts and decrypts a SecureString with the caller's KMS permissions.

    Only a customer-managed key needs a grant (aws/ssm lets every principal in the
    account use it through SSM). An alias cannot be used as a KMS key's Resource:
    the key is then any key of that account and region that carries the alias.
    """
    if not key:
        return None
    condition: dict[str, Any] = {
        "StringEquals": {"kms:ViaService": f"ssm.{names.region}.amazonaws.com"}
    }
    prefix = f"arn:{names.partition}:kms:{names.region}:{names.account}:"
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
    return _Grant(sid, (resource,), implied=((action, commands),), condition=condition)


def _example_names(reuse_trail: bool) -> Names:
    return Names(
        name="example",
        region="us-east-1",
        account="123456789012",
        partition="aws",
        reused_trail="example-existing-trail" if reuse_trail else None,
    )


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)
