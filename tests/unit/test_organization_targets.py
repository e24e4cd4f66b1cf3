"""Which member accounts the fast path reaches: every account, or listed OUs and accounts
(never the management account: StackSets do not deploy there, its own rules cover it)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from loginwatch import engine
from loginwatch.aws import connect
from loginwatch.demo.emulator import match_aws
from loginwatch.errors import UsageError
from loginwatch.organization import covered_accounts
from loginwatch.resources.stack_set import MemberStackInstances
from tests.support.accounts import act_as, act_as_default
from tests.support.cli import BASE_CONFIG
from tests.support.inprocess import load


@pytest.fixture
def org(moto_inprocess: None) -> dict[str, Any]:
    match_aws()  # CloudTrail's delegated administrator, as AWS has it
    orgs = boto3.client("organizations", region_name="us-east-1")
    orgs.create_organization(FeatureSet="ALL")
    root = orgs.list_roots()["Roots"][0]["Id"]
    unit = orgs.create_organizational_unit(ParentId=root, Name="prod")["OrganizationalUnit"]["Id"]
    ids = {}
    for name in ("production", "sandbox"):
        ids[name] = orgs.create_account(AccountName=name, Email=f"{name}@example.com")[
            "CreateAccountStatus"
        ]["AccountId"]
    orgs.move_account(AccountId=ids["production"], SourceParentId=root, DestinationParentId=unit)
    return {"root": root, "unit": unit, **ids}


def deployment(accounts: str) -> Any:
    config = load(BASE_CONFIG + f"organization:\n  enabled: true\n  accounts: {accounts}\n")
    return engine.build_deployment(config, connect(None, "us-east-1"))


def test_all_is_the_root_and_every_member(org: dict[str, Any]) -> None:
    d = deployment("all")
    assert MemberStackInstances(d).targets() == {"OrganizationalUnitIds": [org["root"]]}
    assert covered_accounts(d.live_aws, d.organization, None) == sorted(
        [org["production"], org["sandbox"]]
    )


def test_an_ou_covers_its_accounts_and_an_account_id_narrows_the_root(
    org: dict[str, Any],
) -> None:
    d = deployment(f"[{org['unit']}]")
    assert MemberStackInstances(d).targets() == {"OrganizationalUnitIds": [org["unit"]]}
    assert covered_accounts(d.live_aws, d.organization, (org["unit"],)) == [org["production"]]
    one = deployment(f"['{org['sandbox']}']")
    assert MemberStackInstances(one).targets() == {
        "OrganizationalUnitIds": [org["root"]],
        "Accounts": [org["sandbox"]],
        "AccountFilterType": "INTERSECTION",
    }


def test_outside_an_organization_setup_says_so(moto_inprocess: None) -> None:
    with pytest.raises(UsageError, match="is not in an AWS Organization"):
        deployment("all")


def test_ous_and_accounts_together_are_their_union(org: dict[str, Any]) -> None:
    d = deployment(f"[{org['unit']}, '{org['sandbox']}']")
    assert MemberStackInstances(d).targets() == {
        "OrganizationalUnitIds": [org["unit"]],
        "Accounts": [org["sandbox"]],
        "AccountFilterType": "UNION",
    }
    assert covered_accounts(d.live_aws, d.organization, (org["unit"], org["sandbox"])) == sorted(
        [org["production"], org["sandbox"]]
    )


def test_a_delegated_administrator_and_a_member_are_refused(
    org: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    orgs = boto3.client("organizations", region_name="us-east-1")
    orgs.enable_aws_service_access(ServicePrincipal="cloudtrail.amazonaws.com")
    orgs.register_delegated_administrator(
        AccountId=org["production"], ServicePrincipal="cloudtrail.amazonaws.com"
    )
    for account, says in (
        (org["production"], "delegated administrator"),
        (org["sandbox"], "is a member"),
    ):
        act_as(monkeypatch, boto3.client("sts", region_name="us-east-1"), account)
        with pytest.raises(UsageError, match=says) as raised:
            deployment("all")
        assert "Nothing was changed" in str(raised.value)
        act_as_default(monkeypatch)
