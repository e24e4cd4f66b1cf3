"""A boundary nobody can climb: `permissions --boundary`, and the operator policy with
config iam.permissions_boundary (issue 20, item 2). The end-to-end run is in
tests/e2e/test_permissions_boundary.py."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from loginwatch import engine
from loginwatch import operator_policy as permissions
from loginwatch.config import ConfigError, parse_config
from loginwatch.resources.role import Role, boundary_policy
from loginwatch.resources.stack_set import member_template
from tests.support.cli import BASE_CONFIG
from tests.support.inprocess import WEBHOOK, load
from tests.unit.test_iam_catalogue import ACCOUNT, BOUNDARY, configs, deployment_of, with_boundary

ROLE_CHANGES = {
    "iam:CreateRole",
    "iam:PutRolePolicy",
    "iam:UpdateAssumeRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:DeleteRolePolicy",
    "iam:DeleteRole",
}
NEVER = {"iam:DeleteRolePermissionsBoundary", "iam:AttachRolePolicy", "iam:DetachRolePolicy"}


def as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value)


def resources_of(label: str) -> list[Any]:
    return engine.resources_for(deployment_of(configs()[label]))


def statements_with(policy: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in policy["Statement"] if action in as_list(s["Action"])]


@pytest.mark.parametrize(
    "label", ["boundary", "organization+boundary", "organization+kms+boundary"]
)
def test_the_boundary_is_exactly_the_union_of_the_roles_policies(label: str) -> None:
    resources = resources_of(label)
    boundary = boundary_policy(resources)
    roles = [r for r in resources if isinstance(r, Role)]
    assert {r.kind for r in roles} >= {"trail-role", "notifier-role", "forwarding-role"}
    own = [s for r in roles for s in r.inline()["Statement"]]
    assert all(s in boundary["Statement"] for s in own)
    assert all(s in own for s in boundary["Statement"])
    sids = [s["Sid"] for s in boundary["Statement"]]
    assert len(sids) == len(set(sids))
    if label.startswith("organization"):
        # the member accounts' forwarding role: the home forwarding role's one statement
        template = member_template(deployment_of(configs()[label]))
        role = template["Resources"]["ForwardRole"]["Properties"]
        (member,) = role["Policies"][0]["PolicyDocument"]["Statement"]
        assert any({**s, "Sid": None} == {**member, "Sid": None} for s in boundary["Statement"])
        assert role["PermissionsBoundary"] == {
            "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/loginwatch-boundary"
        }
    assert permissions.policy_size(boundary) < permissions.MANAGED_POLICY_LIMIT


def test_without_a_boundary_the_template_and_policy_are_as_before() -> None:
    template = member_template(deployment_of(configs()["organization"]))
    assert "PermissionsBoundary" not in template["Resources"]["ForwardRole"]["Properties"]
    policy = permissions.operator_policy(resources_of("plain"), ["all"])
    assert "iam:PermissionsBoundary" not in str(policy)


@pytest.mark.parametrize("compact", [False, True])
@pytest.mark.parametrize("label", ["boundary", "organization+boundary"])
def test_roles_are_made_and_changed_only_with_the_boundary(label: str, compact: bool) -> None:
    policy = permissions.operator_policy(resources_of(label), ["all"], compact=compact)
    names = deployment_of(configs()[label]).names
    roles = {
        names.role_arn(n)
        for n in (
            names.trail_role,
            names.notifier_role,
            names.forwarding_role,
            names.scheduler_role,
        )
    }
    for action in ROLE_CHANGES:
        found = statements_with(policy, action)
        assert found, action
        for statement in found:
            assert statement["Condition"] == {
                "StringEquals": {"iam:PermissionsBoundary": BOUNDARY}
            }, (action, statement)
            assert set(as_list(statement["Resource"])) <= roles, statement
    for action in NEVER:
        assert not statements_with(policy, action), action
    # tagging has no such condition key: our roles, and nothing else
    for statement in statements_with(policy, "iam:TagRole"):
        assert set(as_list(statement["Resource"])) <= roles


def test_with_a_boundary_setup_fits_a_managed_policy() -> None:
    """`--for all --compact` no longer fits with the boundary's conditions (the CLI says
    so, and to split by --for); setup alone does."""
    resources = resources_of("boundary")
    for command in ("setup", "status", "teardown", "test-alert", "redeliver"):
        policy = permissions.operator_policy(resources, [command], compact=True)
        assert permissions.policy_size(policy) <= permissions.MANAGED_POLICY_LIMIT, command


# ---------------------------------------------------------------- cloudsplaining's scan

# What runs code as one of loginwatch's roles: closed by the boundary those roles carry.
LAMBDA_PATHS = {
    "PassExistingRoleToNewLambdaThenInvoke",
    "PassExistingRoleToNewLambdaThenAddPermission",
    "EditExistingLambdaFunctionWithRole",
    "UpdateAndInvokeLambdaFunction",
    "UpdateLambdaFunctionAndAddPermission",
}
# Organization mode only: a service-managed StackSet runs with AWS's own role in every
# member account; UpdateStackSet cannot be conditioned on the template (README).
LEFT_OPEN = {"PassRoleToUpdateCloudFormationStackSet"}


def escalations(policy: dict[str, Any]) -> list[dict[str, Any]]:
    from cloudsplaining.scan.policy_document import PolicyDocument

    # -aR: count actions scoped to ARNs too (the default only looks at Resource "*").
    return list(
        PolicyDocument(policy, flag_resource_arn_statements=True).allows_privilege_escalation
    )


def closing_condition(policy: dict[str, Any], names: Any, path: dict[str, Any]) -> str | None:
    """Which condition closes a path, or None."""
    actions = {a.lower() for a in path["actions"]}
    bounded = {"StringEquals": {"iam:PermissionsBoundary": BOUNDARY}}
    role_actions = {a for a in ROLE_CHANGES if a.lower() in actions}
    if role_actions and all(
        s.get("Condition") == bounded for a in role_actions for s in statements_with(policy, a)
    ):
        return "iam:PermissionsBoundary"
    if path["type"] in LAMBDA_PATHS:
        lambda_actions = [a for a in path["actions"] if a.startswith("lambda:")]
        ours = {names.function_arn}
        function_only = all(
            set(as_list(s["Resource"])) <= ours
            for a in lambda_actions
            for s in statements_with(policy, _cased(policy, a))
        )
        passes = statements_with(policy, "iam:PassRole")
        roles_passed_to_their_service = all(
            "iam:PassedToService" in s.get("Condition", {}).get("StringEquals", {}) for s in passes
        )
        # …and those roles are made and changed only with the boundary (above)
        roles_bounded = all(
            s.get("Condition") == bounded
            for a in ("iam:CreateRole", "iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy")
            for s in statements_with(policy, a)
        )
        if function_only and roles_passed_to_their_service and roles_bounded:
            return "iam:PassedToService and iam:PermissionsBoundary"
    return None


def _cased(policy: dict[str, Any], lowered: str) -> str:
    for statement in policy["Statement"]:
        for action in as_list(statement["Action"]):
            if action.lower() == lowered:
                return str(action)
    return lowered


@pytest.mark.parametrize("label", ["boundary", "organization+boundary"])
def test_cloudsplaining_finds_no_escalation_a_condition_does_not_close(label: str) -> None:
    pytest.importorskip("cloudsplaining")
    names = deployment_of(configs()[label]).names
    for command in ("setup", "all"):
        policy = permissions.operator_policy(resources_of(label), [command])
        found = escalations(policy)
        assert {p["type"] for p in found} >= {
            "PutRolePolicyThenUpdateAssumeRolePolicy",
            "PutRolePolicy",
        }, found  # the scan does see the role changes: they are conditioned, not absent
        open_paths = {p["type"] for p in found if closing_condition(policy, names, p) is None}
        expected = LEFT_OPEN if label.startswith("organization") else set()
        assert open_paths == expected, (command, open_paths)


def test_without_a_boundary_the_scan_finds_the_climb() -> None:
    """What the boundary closes: on the plain policy the same paths are open."""
    pytest.importorskip("cloudsplaining")
    policy = permissions.operator_policy(resources_of("plain"), ["setup"])
    names = deployment_of(configs()["plain"]).names
    open_paths = {
        p["type"] for p in escalations(policy) if closing_condition(policy, names, p) is None
    }
    assert "PutRolePolicyThenUpdateAssumeRolePolicy" in open_paths


# ---------------------------------------------------------------- config


def test_config_takes_a_policy_arn() -> None:
    config = load(BASE_CONFIG + f"iam:\n  permissions_boundary: {BOUNDARY}\n")
    assert config.iam.permissions_boundary == BOUNDARY
    assert load().iam.permissions_boundary is None


@pytest.mark.parametrize(
    "value",
    [
        f"arn:aws:iam::{ACCOUNT}:role/loginwatch-boundary",
        "loginwatch-boundary",
        "arn:aws:iam::aws:policy/PowerUserAccess",
    ],
)
def test_config_rejects_anything_else(value: str) -> None:
    text = BASE_CONFIG + f"iam:\n  permissions_boundary: {value}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "test.yaml", {"LW_WEBHOOK": WEBHOOK})
    (line,) = caught.value.problems
    assert line.startswith("test.yaml:12: iam.permissions_boundary:"), line
    assert "loginwatch permissions --boundary" in line


def test_setup_refuses_another_accounts_boundary() -> None:
    from loginwatch.errors import UsageError
    from loginwatch.resources.role import NotifierRole

    config = replace(
        with_boundary(load()),
        iam=replace(load().iam, permissions_boundary="arn:aws:iam::210987654321:policy/b"),
    )
    role = NotifierRole(deployment_of(config))
    with pytest.raises(UsageError, match="not a policy of this account"):
        role.preflight()
