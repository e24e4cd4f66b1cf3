"""An AccessDenied names the IAM action AWS checked for the call that failed.

The action comes from the failed operation itself (botocore's operation name, through
``operator_policy.iam_actions``), not from a string typed beside the call: each test
here denies exactly one call inside a block that makes several, with Stubber, and
AWS's real error codes. The denial messages name no action (as SQS's and many
others' do not), so the name cannot come from AWS's own words.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import botocore.exceptions
import pytest
from botocore.stub import Stubber

from loginwatch import alert_drill, engine
from loginwatch.aws import translate_errors
from loginwatch.errors import AwsError
from loginwatch.names import Names
from loginwatch.resources.bucket import TrailBucket
from loginwatch.resources.claims_table import ClaimsTable
from loginwatch.resources.function import Function
from loginwatch.resources.queue import RetryQueue
from loginwatch.resources.sign_in_rule import SignInRule
from loginwatch.resources.trail import Trail
from tests.support.inprocess import load, load_without_self_check, offline_aws

NAMES = Names(name="lwtest", region="us-east-1", account="123456789012", partition="aws")
DENIED = "Access denied."  # no action named: the message must not depend on AWS's words
FIX = " to the identity running loginwatch (`loginwatch permissions` prints the full policy)."


@pytest.fixture
def deployment() -> Any:
    # build_deployment makes no AWS call for a config that creates its own trail.
    return engine.build_deployment(load_without_self_check(), offline_aws())


def denied_lines(action: str, resource: str) -> list[str]:
    return [f"Access denied: {action} on {resource}.", f"Grant {action}{FIX}"]


def raised(func: Any, *args: Any) -> AwsError:
    with pytest.raises(AwsError) as info:
        func(*args)
    assert info.value.exit_code == 1
    return info.value


# ---------------------------------------------------------------- the seven call sites


def test_alert_drill_rule_targets_denied_names_list_targets_by_rule() -> None:
    """test-alert's fast-path diagnosis reads the home rule, then its targets."""
    deployment = engine.drill_deployment(load(), offline_aws())
    deployment.enabled_regions = frozenset({NAMES.region})  # no other region's rule to read
    with Stubber(deployment.live_aws.client("events")) as stub:
        stub.add_response(
            "describe_rule",
            {"Name": NAMES.sign_in_rule, "Arn": "arn:aws:events:::rule/x", "State": "ENABLED"},
        )
        stub.add_client_error("list_targets_by_rule", "AccessDeniedException", DENIED, 400)
        error = raised(alert_drill.diagnose_fast_path, deployment, NAMES.region, datetime.now(UTC))
    assert error.lines() == denied_lines("events:ListTargetsByRule", NAMES.sign_in_rule)


def test_sign_in_rule_delete_listing_targets_denied_names_list_targets_by_rule(
    deployment: Any,
) -> None:
    rule = SignInRule(deployment)
    with Stubber(rule.client) as stub:
        stub.add_client_error("list_targets_by_rule", "AccessDeniedException", DENIED, 400)
        error = raised(rule.delete, {})
    assert error.lines() == denied_lines("events:ListTargetsByRule", rule.name)


@pytest.mark.parametrize(
    ("denied_call", "action"),
    [("get_queue_url", "sqs:GetQueueUrl"), ("set_queue_attributes", "sqs:SetQueueAttributes")],
)
def test_queue_create_settling_an_existing_queue_denied_names_the_settling_call(
    deployment: Any, denied_call: str, action: str
) -> None:
    queue = RetryQueue(deployment)
    url = f"https://sqs.us-east-1.amazonaws.com/123456789012/{queue.name}"
    with Stubber(queue.client) as stub:
        stub.add_client_error("create_queue", "QueueAlreadyExists", "different attributes", 400)
        if denied_call == "set_queue_attributes":
            stub.add_response("get_queue_url", {"QueueUrl": url})
        stub.add_client_error(denied_call, "AccessDenied", DENIED, 403)
        error = raised(queue.create)
    assert error.lines() == denied_lines(action, queue.name)


def test_function_create_waiter_denied_names_get_function(deployment: Any) -> None:
    function = Function(deployment)
    with Stubber(function.client) as stub:
        stub.add_response("create_function", {"FunctionName": function.name})
        stub.add_client_error("get_function", "AccessDeniedException", DENIED, 403)
        error = raised(function.create)
    assert error.lines() == denied_lines("lambda:GetFunction", function.name)


def _observed(function: Function, *, config: bool, code: bool) -> dict[str, Any]:
    settings = function.desired()
    return {
        "settings": {**settings, "MemorySize": 256} if config else settings,
        "architectures": ["arm64"],
        "sha256": "stale" if code else function.d.package_sha256,
        "environment": {},
    }


def test_function_config_update_waiter_denied_names_get_function(deployment: Any) -> None:
    function = Function(deployment)
    with Stubber(function.client) as stub:
        stub.add_response("update_function_configuration", {"FunctionName": function.name})
        stub.add_client_error("get_function", "AccessDeniedException", DENIED, 403)
        error = raised(function.update, _observed(function, config=True, code=False), [])
    assert error.lines() == denied_lines("lambda:GetFunction", function.name)


def test_function_code_update_waiter_denied_names_get_function(deployment: Any) -> None:
    function = Function(deployment)
    with Stubber(function.client) as stub:
        stub.add_response("update_function_code", {"FunctionName": function.name})
        stub.add_client_error("get_function", "AccessDeniedException", DENIED, 403)
        error = raised(function.update, _observed(function, config=False, code=True), [])
    assert error.lines() == denied_lines("lambda:GetFunction", function.name)


def test_claims_table_create_waiter_denied_names_describe_table(deployment: Any) -> None:
    table = ClaimsTable(deployment)
    with Stubber(table.client) as stub:
        stub.add_response("create_table", {"TableDescription": {"TableName": table.name}})
        stub.add_client_error("describe_table", "AccessDeniedException", DENIED, 400)
        error = raised(table.create)
    assert error.lines() == denied_lines("dynamodb:DescribeTable", table.name)


# ---------------------------------------------------------------- two more the issue missed


def test_trail_create_configuring_an_existing_trail_denied_names_update_trail(
    deployment: Any,
) -> None:
    trail = Trail(deployment)
    with Stubber(trail.client) as stub:
        stub.add_response("describe_trails", {"trailList": []})
        stub.add_client_error("create_trail", "TrailAlreadyExistsException", "exists", 400)
        stub.add_client_error("update_trail", "AccessDeniedException", DENIED, 400)
        error = raised(trail.create)
    # UpdateTrail hands CloudTrail the log role: iam:PassRole is as likely the refusal.
    assert error.lines() == [
        f"Access denied: cloudtrail:UpdateTrail on {trail.name}.",
        f"Grant cloudtrail:UpdateTrail and iam:PassRole{FIX}",
    ]


def test_bucket_delete_listing_versions_denied_names_list_bucket_versions(
    deployment: Any,
) -> None:
    bucket = TrailBucket(deployment)
    with Stubber(bucket.client) as stub:
        stub.add_response("delete_bucket_policy", {})
        stub.add_client_error("list_object_versions", "AccessDenied", DENIED, 403)
        error = raised(bucket.delete, {})
    assert error.lines() == denied_lines("s3:ListBucketVersions", bucket.name)


# ---------------------------------------------------------------- how the action is named


def test_the_operation_itself_is_named_when_it_is_denied(deployment: Any) -> None:
    """The block's first call, denied: its own action (what the typed strings got right)."""
    table = ClaimsTable(deployment)
    with Stubber(table.client) as stub:
        stub.add_client_error("create_table", "AccessDeniedException", DENIED, 400)
        error = raised(table.create)
    assert error.lines() == [
        f"Access denied: dynamodb:CreateTable on {table.name}.",
        f"Grant dynamodb:CreateTable and dynamodb:TagResource{FIX}",
    ]


def test_a_call_needing_several_actions_names_them_all(deployment: Any) -> None:
    function = Function(deployment)
    with Stubber(function.client) as stub:
        stub.add_client_error("create_function", "AccessDeniedException", DENIED, 403)
        error = raised(function.create)
    assert error.lines() == [
        f"Access denied: lambda:CreateFunction on {function.name}.",
        f"Grant lambda:CreateFunction, lambda:TagResource and iam:PassRole{FIX}",
    ]


def test_the_action_aws_names_in_its_message_wins(deployment: Any) -> None:
    function = Function(deployment)
    message = (
        "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: iam:PassRole "
        "on resource: arn:aws:iam::123456789012:role/lwtest-notifier because no "
        "identity-based policy allows the iam:PassRole action"
    )
    with Stubber(function.client) as stub:
        stub.add_client_error("create_function", "AccessDeniedException", message, 403)
        error = raised(function.create)
    assert error.lines() == [
        f"Access denied: lambda:CreateFunction on {function.name} needs iam:PassRole.",
        f"Grant iam:PassRole{FIX}",
    ]


def test_an_action_aws_names_in_lower_case_is_given_as_iam_spells_it(deployment: Any) -> None:
    queue = RetryQueue(deployment)
    message = "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: sqs:tagqueue"
    with Stubber(queue.client) as stub:
        stub.add_client_error("create_queue", "AccessDenied", message, 403)
        error = raised(queue.create)
    assert error.lines()[1] == f"Grant sqs:TagQueue{FIX}"


def test_a_waiter_timing_out_names_its_operation_and_is_not_a_denial(deployment: Any) -> None:
    table = ClaimsTable(deployment)
    with Stubber(table.client) as stub:
        stub.add_response("create_table", {"TableDescription": {"TableName": table.name}})
        stub.add_response("describe_table", {"Table": {"TableStatus": "CREATING"}})
        with pytest.raises(AwsError) as info, translate_errors(table.name):
            table.client.create_table(
                TableName=table.name,
                AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
            )
            table.client.get_waiter("table_exists").wait(
                TableName=table.name, WaiterConfig={"Delay": 0, "MaxAttempts": 1}
            )
    (line,) = info.value.lines()
    assert line.startswith(f"dynamodb:DescribeTable on {table.name} failed: Waiter TableExists")


def test_without_a_recorded_call_the_operation_name_is_still_given() -> None:
    """A client made outside loginwatch's factory: no service known, the operation is."""
    error = botocore.exceptions.ClientError(
        {"Error": {"Code": "AccessDenied", "Message": DENIED}}, "PurgeQueue"
    )
    with pytest.raises(AwsError) as info, translate_errors("q"):
        raise error
    assert info.value.lines()[0] == "Access denied: PurgeQueue on q."


def test_a_call_refused_before_it_is_sent_is_not_blamed_on_the_one_before(
    deployment: Any,
) -> None:
    table = ClaimsTable(deployment)
    with Stubber(table.client) as stub:
        stub.add_response("describe_table", {"Table": {"TableStatus": "ACTIVE"}})
        stub.add_response("delete_table", {})  # never sent
        with pytest.raises(AwsError) as info, translate_errors(table.name):
            table.client.describe_table(TableName=table.name)
            table.client.delete_table(TableName=7)  # botocore refuses it: ParamValidationError
    assert info.value.lines()[0].startswith(f"dynamodb:DeleteTable on {table.name} failed:")
