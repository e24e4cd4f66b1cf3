"""A permissions boundary on every role (config iam.permissions_boundary), through the
installed CLI against a moto server: the administrator creates the policy
`permissions --boundary` prints, setup attaches it, status names a role without it.
(moto does not enforce boundaries: tests/unit/test_permissions_boundary.py holds the
operator policy's conditions and cloudsplaining's scan.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.test_setup import setup_ok
from tests.support.cli import ONE_FORWARDING_REGION, Cli

ACCOUNT = "123456789012"
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/loginwatch/loginwatch-boundary"
ROLES = (
    "lwtest-cloudtrail-to-logs",
    "lwtest-notifier",
    "lwtest-events-forward",
    "lwtest-scheduler",  # the self-check's (on by default)
)
WITH_BOUNDARY = ONE_FORWARDING_REGION + f"iam:\n  permissions_boundary: {BOUNDARY}\n"


@pytest.mark.in_process
def test_setup_attaches_the_boundary_to_every_role_and_status_names_one_without(
    cli: Cli, aws: Any
) -> None:
    cli.write_config(WITH_BOUNDARY)
    printed = cli.run("permissions", "--boundary", "--account", ACCOUNT)
    assert printed.returncode == 0, printed.stderr
    boundary = json.loads(printed.stdout)
    # What the administrator does once: create the policy it printed.
    aws.iam.create_policy(
        PolicyName="loginwatch-boundary", Path="/loginwatch/", PolicyDocument=json.dumps(boundary)
    )
    operator = json.loads(cli.run("permissions", "--for", "setup", "--account", ACCOUNT).stdout)
    conditions = [
        s.get("Condition") for s in operator["Statement"] if "iam:CreateRole" in s["Action"]
    ]
    assert conditions == [{"StringEquals": {"iam:PermissionsBoundary": BOUNDARY}}]

    setup_ok(cli)
    roles = [r for r in aws.iam.list_roles()["Roles"] if r["RoleName"].startswith("lwtest-")]
    assert sorted(r["RoleName"] for r in roles) == sorted(ROLES)
    for name in ROLES:
        role = aws.iam.get_role(RoleName=name)["Role"]
        assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == BOUNDARY, name

    # Someone takes the boundary off one role: status names it, setup puts it back.
    aws.iam.delete_role_permissions_boundary(RoleName="lwtest-notifier")
    run = cli.run("status", "--json")
    assert run.returncode == 1
    report = json.loads(run.stdout)
    drifted = {r["kind"]: r for r in report["resources"] if r["state"] != "ok"}
    assert list(drifted) == ["notifier-role"], drifted
    assert drifted["notifier-role"]["details"] == [f"permissions boundary: none → {BOUNDARY}"]
    human = cli.run("status")
    assert "lwtest-notifier" in human.stdout and "permissions boundary" in human.stdout

    setup_ok(cli)
    role = aws.iam.get_role(RoleName="lwtest-notifier")["Role"]
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == BOUNDARY
    assert cli.run("status", "--json").returncode == 0


@pytest.mark.in_process
def test_roles_made_before_the_boundary_get_it_on_the_next_setup(cli: Cli, aws: Any) -> None:
    setup_ok(cli)  # no boundary configured
    assert "PermissionsBoundary" not in aws.iam.get_role(RoleName="lwtest-notifier")["Role"]
    cli.write_config(WITH_BOUNDARY)
    aws.iam.create_policy(
        PolicyName="loginwatch-boundary",
        Path="/loginwatch/",
        PolicyDocument=cli.run("permissions", "--boundary", "--account", ACCOUNT).stdout,
    )
    assert cli.run("status").returncode == 1  # every role: no boundary yet
    setup_ok(cli)
    for name in ROLES:
        role = aws.iam.get_role(RoleName=name)["Role"]
        assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == BOUNDARY, name
