"""`redeliver`'s one AWS-only step, the synchronous Invoke of the notifier, pinned with
Stubber (the emulator runs no Lambda): an answer, a function error, a missing function."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from loginwatch.errors import LoginwatchError
from loginwatch.names import Names
from loginwatch.redeliver import RedeliveryFailed, lambda_invoker
from tests.support.inprocess import load, offline_aws

EVENT = {"Records": [{"messageId": "m-1", "eventSource": "aws:sqs"}], "loginwatchRedeliver": True}


def stubbed_invoke(response: dict[str, Any] | None = None, error: str | None = None) -> Any:
    aws = offline_aws()
    names = Names.for_config(load(), aws.account_id)
    client = aws.client("lambda")
    stubber = Stubber(client)
    expected = {
        "FunctionName": names.function,
        "InvocationType": "RequestResponse",
        "LogType": "Tail",
        "Payload": json.dumps(EVENT).encode(),
    }
    if error:
        stubber.add_client_error(
            "invoke", error, "Function not found", 404, expected_params=expected
        )
    else:
        stubber.add_response("invoke", response, expected)
    stubber.activate()
    return lambda_invoker(aws, names)


def body(data: Any) -> StreamingBody:
    raw = json.dumps(data).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def test_the_notifiers_answer_is_returned() -> None:
    answer = {"batchItemFailures": [], "results": [{"itemIdentifier": "m-1", "outcome": "posted"}]}
    invoke = stubbed_invoke({"StatusCode": 200, "Payload": body(answer)})
    assert invoke(EVENT) == answer


def test_a_function_error_is_a_failed_redelivery_with_its_message() -> None:
    failure = {"errorType": "SettingsError", "errorMessage": "settings.json is missing"}
    invoke = stubbed_invoke(
        {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": body(failure)}
    )
    with pytest.raises(RedeliveryFailed, match=r"settings\.json is missing"):
        invoke(EVENT)


def test_a_missing_function_says_to_run_setup() -> None:
    invoke = stubbed_invoke(error="ResourceNotFoundException")
    with pytest.raises(LoginwatchError) as raised:
        invoke(EVENT)
    assert "loginwatch setup" in " ".join(raised.value.lines())


def test_queued_access_key_messages_are_described_without_the_key() -> None:
    from loginwatch.redeliver import describe, lambda_record
    from tests.conftest import load_fixture

    def queued(event: dict[str, Any]) -> dict[str, Any]:
        message = {"MessageId": "m1", "ReceiptHandle": "r1", "Body": json.dumps(event)}
        return lambda_record(message, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")

    follow_up = {"loginwatchFollowUp": "111122223333#abc#198.51.100.23#e1", "opened": 1795169645}
    assert describe(queued(follow_up)) == (
        "access-key follow-up (calls counted after the first, from 2026-11-20 10:14 UTC)"
    )
    call = load_fixture("eventbridge/api_call_runinstances_access_key.json")
    line = describe(queued(call))
    assert line == (
        "RunInstances by deploy-bot with key AKIA…MPLE from 198.51.100.23 at 2026-11-20 10:14 UTC"
    )
    assert "AKIAIOSFODNN7EXAMPLE" not in line
