"""Organization mode through the installed CLI against a moto server with an organization:
an organization trail, a service-managed StackSet with an instance per member account and
region (with the member tamper rules), the central bus admitting the organization only; a
converged re-run writes nothing; a member account is refused before any change; teardown
removes the StackSet."""

from __future__ import annotations

import json
from typing import Any

import boto3

from tests.e2e.test_setup import ACCOUNT, BUCKET, setup_ok
from tests.support.accounts import act_as, act_as_default
from tests.support.cli import ONE_FORWARDING_REGION, Cli

ORG_CONFIG = ONE_FORWARDING_REGION + "organization:\n  enabled: true\n"
STACK_SET = "lwtest-member-forwarding"
REGIONS = ["us-east-1", "us-west-2"]


def organization(aws: Any) -> tuple[str, list[str]]:
    """An organization with two member accounts: its id and theirs."""
    orgs = aws.organizations
    org_id = orgs.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    members = [
        orgs.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"][
            "AccountId"
        ]
        for name in ("production", "staging")
    ]
    return org_id, members


def test_organization_setup_status_refusal_and_teardown(
    cli: Cli, aws: Any, aws_server: Any, monkeypatch: Any
) -> None:
    org_id, members = organization(aws)
    cli.write_config(ORG_CONFIG)
    run = setup_ok(cli)
    assert "Traceback" not in run.stderr

    (trail,) = aws.cloudtrail.describe_trails()["trailList"]
    assert trail["IsOrganizationTrail"] and trail["IsMultiRegionTrail"]
    statements = json.loads(aws.s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]
    write = next(s for s in statements if s["Sid"] == "LoginwatchCloudTrailWrite")
    assert write["Resource"] == [
        f"arn:aws:s3:::{BUCKET}/AWSLogs/{ACCOUNT}/*",
        f"arn:aws:s3:::{BUCKET}/AWSLogs/{org_id}/*",
    ]
    cfn = aws.cloudformation
    # Trusted access for StackSets was off in the new organization: setup turned it on.
    assert cfn.describe_organizations_access()["Status"] == "ENABLED"
    stack_set = cfn.describe_stack_set(StackSetName=STACK_SET)["StackSet"]
    assert stack_set["PermissionModel"] == "SERVICE_MANAGED"
    # tamper is on by default in organization mode: each member watches its own forwarding
    # (its rules, its named forwarding role) and sends it home.
    template = json.loads(stack_set["TemplateBody"])
    assert {"Tamper1", "Tamper2"} <= set(template["Resources"])
    assert template["Resources"]["Tamper2"]["Condition"] == "IamCallsArriveHere"
    home_rules = aws.events.list_rules(NamePrefix="lwtest-tamper-")["Rules"]
    assert home_rules and all(r["State"] == "ENABLED" for r in home_rules)
    # moto also deploys to the management account, which AWS never does: left out here.
    instances = [
        i
        for i in cfn.list_stack_instances(StackSetName=STACK_SET)["Summaries"]
        if i["Account"] != ACCOUNT
    ]
    assert sorted((i["Account"], i["Region"]) for i in instances) == sorted(
        (m, r) for m in members for r in REGIONS
    )
    bus = json.loads(aws.events.describe_event_bus(Name="default")["Policy"])
    (admit,) = [s for s in bus["Statement"] if s["Sid"] == "lwtest-organization"]
    assert admit["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": org_id}}
    assert admit["Action"] == "events:PutEvents"

    # The notifier may name member accounts, and do nothing else in Organizations.
    iam = aws.iam
    (policy_name,) = iam.list_role_policies(RoleName="lwtest-notifier")["PolicyNames"]
    document = iam.get_role_policy(RoleName="lwtest-notifier", PolicyName=policy_name)
    actions = [
        (a, s["Resource"])
        for s in document["PolicyDocument"]["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        if a.startswith("organizations:")
    ]
    assert actions == [
        ("organizations:DescribeAccount", f"arn:aws:organizations::{ACCOUNT}:account/{org_id}/*")
    ]

    again = setup_ok(cli)
    assert again.mutating == [], again.mutating

    status = cli.run("status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    found = {r["kind"]: r for r in json.loads(status.stdout)["resources"]}
    assert found["member-stack-instances"]["organization"] == {
        "member_accounts": 2,
        "instances_current": 4,
        "instances_outdated": 0,
        "instances_failed": 0,
        "not_covered": [],
    }

    # From a member account: refused before any change, naming where to run it.
    act_as(
        monkeypatch,
        boto3.client("sts", region_name="us-east-1", endpoint_url=aws_server.url),
        members[0],
    )
    refused = cli.run("setup")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"management account ({ACCOUNT})" in refused.stderr
    assert "Traceback" not in refused.stderr and refused.mutating == []
    act_as_default(monkeypatch)

    down = cli.run("teardown", "--yes")
    assert down.returncode == 0, down.stdout + down.stderr
    # moto keeps a deleted StackSet listed, with status DELETED, as AWS does for a while.
    left = {s["StackSetName"]: s["Status"] for s in cfn.list_stack_sets()["Summaries"]}
    assert left.get(STACK_SET, "DELETED") == "DELETED"
    bus = json.loads(aws.events.describe_event_bus(Name="default").get("Policy") or "{}")
    assert not [s for s in bus.get("Statement", []) if s["Sid"] == "lwtest-organization"]


def test_reuse_mode_takes_an_organization_trail_and_refuses_one_that_is_not(
    cli: Cli, aws: Any
) -> None:
    from tests.e2e.test_setup import _make_existing_trail

    organization(aws)
    _make_existing_trail(aws)  # an ordinary multi-region trail
    cli.write_config(ORG_CONFIG + "trail:\n  existing: corp-trail\n")
    refused = cli.run("setup", "--dry-run")
    assert refused.returncode == 2 and refused.mutating == []
    assert "it is not an organization trail" in refused.stderr

    aws.cloudtrail.update_trail(Name="corp-trail", IsOrganizationTrail=True)
    plan = cli.run("setup", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "in use" in plan.stdout or "use as is" in plan.stdout
