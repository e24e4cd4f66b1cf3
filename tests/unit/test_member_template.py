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
    # The rules off: the template is what it was before they existed (no redeploy).
    assert set(json.loads(off)["Resources"]) == {"ForwardRole", "SignInRule"}
    assert "Conditions" not in json.loads(off)


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
