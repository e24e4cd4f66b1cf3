"""Organization mode in the notifier: a member account's sign-in names that account (id and
name from Organizations), a failed lookup still posts with the id, and a destination that
selects an account gets that account's sign-ins only."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from loginwatch.demo.webhook_catcher import SlackStub
from loginwatch.notifier import aws_clients, handler
from tests.notifier.conftest import REGION, NotifierWorld, iter_texts
from tests.notifier.test_fast_path import eventbridge_event
from tests.notifier.test_handler import sign_in_sections

PRODUCTION_PARAMETER = "/loginwatch/slack-destinations/production"


@pytest.fixture
def production(world: NotifierWorld, use_settings: Any) -> str:
    """An organization with a member account named "production"; its id."""
    organizations = boto3.client("organizations", region_name=REGION)
    organizations.create_organization(FeatureSet="ALL")
    created = organizations.create_account(AccountName="production", Email="prod@example.com")
    use_settings(account_names=True)
    return created["CreateAccountStatus"]["AccountId"]


def member_sign_in(world: NotifierWorld, account: str) -> dict[str, Any]:
    identity = {
        "type": "IAMUser",
        "userName": "mallory",
        "accountId": account,
        "arn": f"arn:aws:iam::{account}:user/mallory",
        "principalId": "AIDAEXAMPLE",
    }
    event, _ = eventbridge_event(world, "alice", recipientAccountId=account, userIdentity=identity)
    event["account"] = account
    return event


def test_a_member_accounts_sign_in_names_its_account(world: NotifierWorld, production: str) -> None:
    result = handler.lambda_handler(member_sign_in(world, production), None)
    assert result["outcome"] == "posted"
    payload = world.slack.requests[0].json
    (section,) = sign_in_sections(payload)
    assert f"*Account:* {production} (production)" in section
    assert any(f"Account *{production} (production)*" in t for t in iter_texts(payload))


def test_a_failed_name_lookup_still_posts_with_the_id_alone(
    world: NotifierWorld, production: str, capsys: Any
) -> None:
    organizations = aws_clients.client("organizations", REGION)
    with Stubber(organizations) as stub:
        stub.add_client_error(
            "describe_account",
            service_error_code="AccessDeniedException",
            service_message="not authorized to perform: organizations:DescribeAccount",
            http_status_code=400,
            expected_params={"AccountId": production},
        )
        result = handler.lambda_handler(member_sign_in(world, production), None)
    assert result["outcome"] == "posted" and result["slack_status"] == 200
    (section,) = sign_in_sections(world.slack.requests[0].json)
    assert f"*Account:* {production}\n" in section
    assert "(production)" not in section
    assert '"account_name_unavailable": "AccessDeniedException"' in capsys.readouterr().out


def test_a_destination_for_one_account_gets_that_accounts_sign_ins_only(
    world: NotifierWorld, production: str, use_settings: Any
) -> None:
    team = SlackStub().start()
    try:
        world.ssm.put_parameter(Name=PRODUCTION_PARAMETER, Value=team.url, Type="SecureString")
        destination = {
            "name": "production",
            "parameter": PRODUCTION_PARAMETER,
            "accounts": [production],
        }
        use_settings(account_names=True, destinations=[destination])
        handler.reset_caches()
        handler.lambda_handler(member_sign_in(world, production), None)  # production's
        event, _ = eventbridge_event(world, "root")  # the management account's own
        handler.lambda_handler(event, None)
        (to_team,) = team.requests
        assert f"{production} (production)" in str(to_team.json)
        (to_default,) = world.slack.requests
        assert "ROOT account" in to_default.json["text"] and production not in str(to_default.json)
    finally:
        team.stop()
