"""The StackSet's template, as each member account gets it: it parses, its rule catches
real-shaped sign-in events (both detail-type spellings) and nothing else, its only target
is the central bus, and the central bus admits the organization alone."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from moto.events.models import EventPattern

from loginwatch.engine import offline_deployment
from loginwatch.organization import OrgInfo
from loginwatch.resources.stack_set import OrganizationBusPolicy, member_template
from tests.conftest import load_fixture
from tests.support.cli import BASE_CONFIG
from tests.support.inprocess import load

MANAGEMENT = "123456789012"
ORG = OrgInfo("o-abc123def4", MANAGEMENT, "r-ab12", MANAGEMENT)


@pytest.fixture
def deployment() -> Any:
    d = offline_deployment(load(BASE_CONFIG + "organization:\n  enabled: true\n"), MANAGEMENT)
    d.organization = ORG
    return d


def sign_in_event(**changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_fixture("eventbridge/console_signin_event.json"))
    event.update(changes)
    return event


def test_the_template_parses_and_forwards_sign_ins_to_the_central_bus(deployment: Any) -> None:
    template = json.loads(json.dumps(member_template(deployment)))  # JSON all the way
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"
    resources = template["Resources"]
    assert {r["Type"] for r in resources.values()} == {"AWS::IAM::Role", "AWS::Events::Rule"}
    rule = resources["SignInRule"]["Properties"]
    central = f"arn:aws:events:us-east-1:{MANAGEMENT}:event-bus/default"
    (target,) = rule["Targets"]
    assert target["Arn"] == central
    assert target["RoleArn"] == {"Fn::GetAtt": ["ForwardRole", "Arn"]}
    (statement,) = resources["ForwardRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ]
    assert statement == {"Effect": "Allow", "Action": "events:PutEvents", "Resource": central}

    pattern = EventPattern.load(json.dumps(rule["EventPattern"]))
    assert pattern.matches_event(sign_in_event())
    assert pattern.matches_event(
        sign_in_event(**{"detail-type": "AWS Console Signin via CloudTrail"})
    )
    not_a_sign_in = sign_in_event()
    not_a_sign_in["detail"] = {**not_a_sign_in["detail"], "eventName": "CreateUser"}
    assert not pattern.matches_event(not_a_sign_in)
    assert not pattern.matches_event(sign_in_event(source="aws.iam"))


def test_the_central_bus_admits_the_organization_only(deployment: Any) -> None:
    policy = OrganizationBusPolicy(deployment)
    assert policy._condition() == {
        "Type": "StringEquals",
        "Key": "aws:PrincipalOrgID",
        "Value": "o-abc123def4",
    }
    anyone = {"Sid": "lwtest-organization", "Action": "events:PutEvents", "Principal": "*"}
    assert policy.diff({"statement": anyone}) == ["admits: anyone → organization o-abc123def4"]
    ours = {**anyone, "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc123def4"}}}
    assert policy.diff({"statement": ours}) == []


def test_trusted_access_off_is_turned_on_by_the_management_account_only(deployment: Any) -> None:
    import boto3
    from botocore.stub import Stubber

    from loginwatch.errors import LoginwatchError
    from loginwatch.resources.stack_set import MemberStackSet

    client = boto3.client("cloudformation", region_name="us-east-1")
    stack_set = MemberStackSet(deployment)
    stack_set.__dict__["client"] = client  # the cached client, answered by Stubber
    with Stubber(client) as stub:
        stub.add_response(
            "describe_organizations_access", {"Status": "DISABLED"}, {"CallAs": "SELF"}
        )
        stub.add_response("activate_organizations_access", {}, {})
        stack_set._trusted_access()
        stub.assert_no_pending_responses()
    deployment.organization = OrgInfo("o-abc123def4", "999999999999", "", MANAGEMENT, True)
    with Stubber(client) as stub:
        stub.add_response(
            "describe_organizations_access", {"Status": "DISABLED"}, {"CallAs": "DELEGATED_ADMIN"}
        )
        with pytest.raises(LoginwatchError, match="only the management account can turn it on"):
            stack_set._trusted_access()


KEY_RULES = """\
rules:
  access_key_outside_allowlist: {enabled: true}
  credentials_exposed: {enabled: true}
"""


def test_the_access_key_rules_travel_with_the_template_and_change_nothing_when_off(
    deployment: Any,
) -> None:
    from loginwatch.api_call_patterns import KEY_EXPOSED_PATTERN, event_patterns
    from loginwatch.resources.stack_set import _template_body
    from loginwatch.resources.watch_rules import API_CALLS_STATE

    off = _template_body(deployment)
    config = BASE_CONFIG + "organization:\n  enabled: true\n" + KEY_RULES
    keyed = offline_deployment(load(config), MANAGEMENT)
    keyed.organization = ORG
    template = json.loads(_template_body(keyed))
    resources = template["Resources"]
    central = f"arn:aws:events:us-east-1:{MANAGEMENT}:event-bus/default"
    api = [resources[k]["Properties"] for k in sorted(resources) if k.startswith("KeyApiCalls")]
    assert [r["EventPattern"] for r in api] == event_patterns(keyed.config.allowed)
    assert {r["State"] for r in api} == {API_CALLS_STATE}
    exposed = resources["KeyExposed"]
    assert exposed["Properties"]["EventPattern"] == KEY_EXPOSED_PATTERN
    # Only where AWS sends its reports: us-east-1, and us-west-2 as its backup.
    condition = template["Conditions"][exposed["Condition"]]
    assert condition == {
        "Fn::Or": [
            {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]},
            {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-west-2"]},
        ]
    }
    for rule in [*api, exposed["Properties"]]:
        (target,) = rule["Targets"]
        assert target["Arn"] == central
    # The rules off: the template is what it was before they existed (no redeploy): the
    # role, the sign-in rule, tamper's rules (on by default) and their condition only.
    assert set(json.loads(off)["Resources"]) == {"ForwardRole", "SignInRule", "Tamper1", "Tamper2"}
    assert set(json.loads(off)["Conditions"]) == {"IamCallsArriveHere"}


def test_a_template_cloudformation_would_refuse_is_said_before_anything_is_written() -> None:
    from loginwatch.errors import UsageError
    from loginwatch.resources.stack_set import TEMPLATE_BODY_LIMIT, MemberStackSet, _template_body

    # 200 scattered single addresses: many access-key rules per region.
    scattered = "".join(f"  - 10.{i}.{i * 7 % 250}.{i * 3 % 250 + 1}\n" for i in range(200))
    config = (
        BASE_CONFIG.replace("  - 203.0.113.10\n", scattered)
        + "organization:\n  enabled: true\n"
        + KEY_RULES
    )
    d = offline_deployment(load(config), MANAGEMENT)
    d.organization = ORG
    assert len(_template_body(d).encode()) > TEMPLATE_BODY_LIMIT
    with pytest.raises(UsageError, match="over CloudFormation's 51,200"):
        MemberStackSet(d).preflight()


TAMPER_OFF = "rules:\n  tamper: {enabled: false}\n"


def deployment_with(extra: str, partition: str = "aws", region: str = "us-east-1") -> Any:
    base = BASE_CONFIG.replace("region: us-east-1", f"region: {region}")
    d = offline_deployment(
        load(base + "organization:\n  enabled: true\n" + extra), MANAGEMENT, partition=partition
    )
    d.organization = ORG
    return d


def test_members_watch_their_own_forwarding_and_send_it_home(deployment: Any) -> None:
    from loginwatch.notifier.tamper import parse_tamper
    from loginwatch.resources.stack_set import CAPABILITIES, MemberStackInstances, _template_body
    from loginwatch.tamper_patterns import own_for, tamper_patterns
    from tests.support.event_ruler import matches

    template = json.loads(_template_body(deployment))
    resources = template["Resources"]
    central = f"arn:aws:events:us-east-1:{MANAGEMENT}:event-bus/default"
    everywhere, us_east_1 = resources["Tamper1"], resources["Tamper2"]
    assert "Condition" not in everywhere
    # IAM's and Organizations' calls arrive in us-east-1 only: that rule is there only.
    assert us_east_1["Condition"] == "IamCallsArriveHere"
    assert template["Conditions"]["IamCallsArriveHere"] == {
        "Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]
    }
    for rule in (everywhere, us_east_1):
        properties = rule["Properties"]
        assert properties["State"] == "ENABLED"
        assert properties["Name"].startswith("lwtest-tamper-")
        (target,) = properties["Targets"]
        assert target == {
            "Id": "central-bus",
            "Arn": central,
            "RoleArn": {"Fn::GetAtt": ["ForwardRole", "Arn"]},
        }
    # The forwarding role is named, so the tamper rules know it: CloudFormation then wants
    # CAPABILITY_NAMED_IAM (CAPABILITY_IAM alone refuses a named role).
    role = resources["ForwardRole"]["Properties"]["RoleName"]
    assert role == {"Fn::Sub": "lwtest-member-forward-${AWS::Region}"}
    assert CAPABILITIES == ["CAPABILITY_NAMED_IAM"]

    # A member admin deleting the member's sign-in rule: its tamper rule forwards it, the
    # home tamper rule takes it, the notifier names the member account.
    event = copy.deepcopy(load_fixture("eventbridge/api_call_member_deleterule.json"))
    event["detail"]["requestParameters"]["name"] = "lwtest-console-sign-in"
    assert matches(everywhere["Properties"]["EventPattern"], event)
    assert not matches(us_east_1["Properties"]["EventPattern"], event)
    assert any(matches(p, event) for p in tamper_patterns(deployment.names))
    change = parse_tamper(event["detail"], own_for(deployment.names, organization=True))
    assert change is not None and change.member and change.account_id == "444455556666"
    # A change to the role as CloudFormation names it, in the region its stack is in.
    iam = copy.deepcopy(event)
    iam["source"] = "aws.iam"
    iam["detail"].update(
        eventSource="iam.amazonaws.com",
        eventName="PutRolePolicy",
        requestParameters={"roleName": "lwtest-member-forward-eu-west-1"},
    )
    assert matches(us_east_1["Properties"]["EventPattern"], iam)
    assert any(matches(p, iam) for p in tamper_patterns(deployment.names))

    # The member regions include us-east-1 even when the fast path lists others.
    listed = "fast_path:\n  regions: [eu-west-2]\n"
    narrow = deployment_with(listed, region="eu-west-1")
    assert MemberStackInstances(narrow).regions() == ["eu-west-1", "eu-west-2", "us-east-1"]
    no_tamper = deployment_with(listed + TAMPER_OFF, region="eu-west-1")
    assert MemberStackInstances(no_tamper).regions() == ["eu-west-1", "eu-west-2"]


def test_tamper_off_leaves_no_tamper_rule_and_another_partition_its_own_region() -> None:
    from loginwatch.resources.stack_set import _template_body

    off = json.loads(_template_body(deployment_with(TAMPER_OFF)))
    assert set(off["Resources"]) == {"ForwardRole", "SignInRule"}
    assert "Conditions" not in off
    china = json.loads(_template_body(deployment_with("", "aws-cn", "cn-north-1")))
    assert {k for k in china["Resources"] if k.startswith("Tamper")} == {"Tamper1", "Tamper2"}
    # IAM's calls arrive in cn-north-1 there: the IAM rule is made in that region only.
    assert "Condition" not in china["Resources"]["Tamper1"]
    assert china["Resources"]["Tamper2"]["Condition"] == "IamCallsArriveHere"
    assert china["Conditions"]["IamCallsArriveHere"] == {
        "Fn::Equals": [{"Ref": "AWS::Region"}, "cn-north-1"]
    }


def test_the_template_with_every_rule_fits_with_room() -> None:
    from loginwatch.resources.stack_set import TEMPLATE_BODY_LIMIT, MemberStackSet, _template_body

    d = deployment_with(KEY_RULES)
    size = len(_template_body(d).encode())
    assert size < TEMPLATE_BODY_LIMIT // 4, size
    MemberStackSet(d).preflight()  # says nothing
