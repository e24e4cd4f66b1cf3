"""AWS behaviour moto does not emulate, pinned with botocore's Stubber and AWS's real error codes."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from loginwatch.engine import build_deployment
from loginwatch.errors import AwsError
from loginwatch.resources.function import Function
from loginwatch.resources.trail import Trail
from tests.support.faults import FaultInjector
from tests.support.inprocess import load, load_without_self_check, offline_aws

ROLE_NOT_READY = "The role defined for the function cannot be assumed by Lambda."


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def deployment(sleeps: list[float]) -> Any:
    from loginwatch import engine

    aws = offline_aws(sleeps)
    # build_deployment makes no AWS call for a config that creates its own trail.
    return engine.build_deployment(load_without_self_check(), aws)


def test_create_function_retries_while_the_new_role_propagates(
    deployment: Any, sleeps: list[float]
) -> None:
    function = Function(deployment)
    with Stubber(function.client) as stub:
        for _ in range(2):
            stub.add_client_error(
                "create_function", "InvalidParameterValueException", ROLE_NOT_READY, 400
            )
        stub.add_response(
            "create_function",
            {"FunctionName": "lwtest-notifier"},
            {
                "FunctionName": "lwtest-notifier",
                "Code": {"ZipFile": ANY},
                "Architectures": ["arm64"],
                "Tags": ANY,
                "Runtime": ANY,
                "Role": ANY,
                "Handler": ANY,
                "MemorySize": 128,
                "Timeout": 30,
                "Description": ANY,
            },
        )
        stub.add_response(
            "get_function",
            {"Configuration": {"State": "Active"}},
            {"FunctionName": "lwtest-notifier"},
        )
        function.create()
        stub.assert_no_pending_responses()
    assert sleeps == [2.0, 4.0]  # bounded exponential backoff, through the injectable sleep


def test_other_invalid_parameter_errors_are_not_retried(
    deployment: Any, sleeps: list[float]
) -> None:
    function = Function(deployment)
    with Stubber(function.client) as stub:
        stub.add_client_error(
            "create_function",
            "InvalidParameterValueException",
            "Unzipped size must be smaller",
            400,
        )
        with pytest.raises(AwsError, match="lambda:CreateFunction on lwtest-notifier failed"):
            function.create()
    assert sleeps == []


def test_role_propagation_retries_are_bounded(deployment: Any, sleeps: list[float]) -> None:
    function = Function(deployment)
    with Stubber(function.client) as stub:
        for _ in range(8):
            stub.add_client_error(
                "create_function", "InvalidParameterValueException", ROLE_NOT_READY, 400
            )
        with pytest.raises(AwsError, match="cannot be assumed by Lambda"):
            function.create()
    assert len(sleeps) == 7 and max(sleeps) == 15.0


def _stub_trail_lookup(stub: Stubber) -> None:
    stub.add_response("describe_trails", {"trailList": []}, {"includeShadowTrails": True})


@pytest.mark.parametrize(
    "code", ["InvalidCloudWatchLogsRoleArnException", "InvalidCloudWatchLogsLogGroupArnException"]
)
def test_create_trail_retries_iam_propagation_errors(
    deployment: Any, sleeps: list[float], code: str
) -> None:
    trail = Trail(deployment)
    with Stubber(trail.client) as stub:
        _stub_trail_lookup(stub)
        stub.add_client_error(
            "create_trail",
            code,
            "Access denied. Verify in IAM that the role has adequate permissions.",
            400,
        )
        stub.add_response("create_trail", {"Name": "lwtest-trail"})
        stub.add_response("put_event_selectors", {})
        stub.add_response("start_logging", {})
        trail.create()
        stub.assert_no_pending_responses()
    assert sleeps == [2.0]


def test_trail_already_exists_is_configured_instead(deployment: Any, sleeps: list[float]) -> None:
    # AWS (unlike moto) refuses CreateTrail for an existing name: an interrupted run made it.
    trail = Trail(deployment)
    with Stubber(trail.client) as stub:
        _stub_trail_lookup(stub)
        stub.add_client_error(
            "create_trail", "TrailAlreadyExistsException", "Trail lwtest-trail already exists", 400
        )
        stub.add_response("update_trail", {"Name": "lwtest-trail"})
        stub.add_response("put_event_selectors", {})
        stub.add_response("start_logging", {})
        trail.create()
        stub.assert_no_pending_responses()


def test_access_denied_names_the_action_the_resource_and_the_fix(deployment: Any) -> None:
    trail = Trail(deployment)
    with Stubber(trail.client) as stub:
        _stub_trail_lookup(stub)
        stub.add_client_error(
            "create_trail",
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: cloudtrail:CreateTrail",
            400,
        )
        with pytest.raises(AwsError) as info:
            trail.create()
    assert info.value.lines() == [
        "Access denied: cloudtrail:CreateTrail on lwtest-trail.",
        "Grant cloudtrail:CreateTrail to the identity running loginwatch "
        "(`loginwatch permissions` prints the full policy).",
    ]
    assert info.value.exit_code == 1


def test_trail_not_found_on_delete_is_already_done(deployment: Any) -> None:
    trail = Trail(deployment)
    with Stubber(trail.client) as stub:
        stub.add_client_error("delete_trail", "TrailNotFoundException", "Unknown trail", 400)
        assert trail.delete({"logging": False}) == ""
        stub.assert_no_pending_responses()


def test_throttling_is_ridden_out_by_the_standard_retry_mode(
    aws_server_inprocess: Any, retry_sleeps: list[float]
) -> None:
    """Ten throttling answers in a row, then success: the caller never sees them.

    botocore's defaults give up after 2 (standard) or 4 (legacy) retries, so this
    passes only with loginwatch's own retry budget on its clients.
    """
    aws = aws_server_inprocess
    faults = FaultInjector(rate=0.0)
    faults.script = ["throttle"] * 10
    logs = faults.attach(aws.client("logs"))
    result = logs.describe_log_groups()
    assert result["ResponseMetadata"]["RetryAttempts"] == 10
    assert faults.injected["throttle"] == 10
    assert len(retry_sleeps) == 10  # each retry backed off (recorded, not slept)


def test_exhausted_throttling_is_a_clear_error(
    aws_server_inprocess: Any, retry_sleeps: list[float]
) -> None:
    aws = aws_server_inprocess
    faults = FaultInjector(rate=0.0)
    faults.script = ["throttle"] * 11  # the first attempt and all 10 retries
    faults.attach(aws.client("cloudtrail"))
    deployment = build_deployment(load(), aws)
    with pytest.raises(AwsError, match="ThrottlingException"):
        Trail(deployment).read()


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("ExpiredToken", "Your AWS credentials have expired."),
        ("ExpiredTokenException", "Your AWS credentials have expired."),
        ("InvalidClientTokenId", "AWS rejected the credentials (InvalidClientTokenId)."),
        ("SignatureDoesNotMatch", "AWS rejected the credentials (SignatureDoesNotMatch)."),
    ],
)
def test_credential_errors_are_exit_2_with_how_to_fix(
    code: str, fragment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loginwatch.aws import connect
    from loginwatch.errors import CredentialsError

    sts = boto3.client("sts", region_name="us-east-1")
    monkeypatch.setattr(boto3.Session, "client", lambda self, *args, **kwargs: sts)
    with Stubber(sts) as stub:
        stub.add_client_error("get_caller_identity", code, "The security token is invalid", 403)
        with pytest.raises(CredentialsError) as info:
            connect(None, "us-east-1")
    assert info.value.exit_code == 2
    assert info.value.lines()[0] == fragment
    assert len(info.value.lines()) == 2  # and one line on how to fix it
