"""An endpoint that lacks an operation (stock moto, LocalStack): recognised in one place
(aws.translate_errors), said in one plain line, never its HTML, never retried."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from unittest.mock import ANY

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from loginwatch import pattern_check
from loginwatch.alert_drill import cannot_run, invoke_notifier
from loginwatch.aws import translate_errors
from loginwatch.errors import AwsError, EndpointLacksOperation
from loginwatch.names import Names
from tests.support.inprocess import load, offline_aws

HTML_500 = (
    b"<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n"
    b"<h1>Internal Server Error</h1>\n"
)
NETWORKS = load(
    "region: us-east-1\nname: lwtest\nallowed_ips: [203.0.113.10]\n"
    "slack: {webhook_url: 'https://hooks.slack.com/services/T0/B0/x'}\n"
).allowed


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        ("UnknownOperationException", 400, "not here"),
        ("InvalidAction", 400, "The action TestMetricFilter is not valid"),
        # LocalStack: an operation or a service it does not emulate
        ("InternalFailure", 501, "API action 'TestMetricFilter' for service 'logs' not yet "
         "implemented or pro feature"),
        ("InternalFailure", 500, "The API for service 'cloudtrail' is either not included in "
         "your current license plan or has not yet been emulated by LocalStack."),
    ],
)  # fmt: skip
def test_an_endpoint_without_the_operation_is_not_verified(
    code: str, status: int, message: str
) -> None:
    logs = offline_aws().client("logs")
    with Stubber(logs) as stub:
        stub.add_client_error("test_metric_filter", code, message, status)
        verdict = pattern_check.verify(logs, "{ $.a = 1 }", NETWORKS)
    assert verdict.unavailable == "the endpoint does not implement TestMetricFilter"
    assert verdict.safe and verdict.checked == 0


def test_aws_failing_inside_is_an_error_not_a_missing_operation() -> None:
    logs = offline_aws().client("logs")
    with Stubber(logs) as stub:
        stub.add_client_error("test_metric_filter", "InternalFailure", "oops", 500)
        with pytest.raises(AwsError) as raised:
            pattern_check.verify(logs, "{ $.a = 1 }", NETWORKS)
    assert not isinstance(raised.value, EndpointLacksOperation)


class _Endpoint(BaseHTTPRequestHandler):
    """Answers every request as it was told: status, content type, body; counts them."""

    answer: tuple[int, str, bytes] = (500, "text/html", HTML_500)
    requests = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).requests += 1
        status, content_type, body = self.answer
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Endpoint]]:
    handler = type("Handler", (_Endpoint,), {"requests": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def test_an_html_500_is_one_plain_line_and_is_not_retried(endpoint: type[_Endpoint]) -> None:
    logs = offline_aws().client("logs")
    with pytest.raises(EndpointLacksOperation) as raised:
        with translate_errors():
            logs.test_metric_filter(filterPattern="{ $.a = 1 }", logEventMessages=["{}"])
    assert endpoint.requests == 1  # botocore's standard mode would try 11 times
    assert raised.value.lines() == [
        "The endpoint cannot answer logs:TestMetricFilter "
        "(HTTP 500, an HTML error page instead of an AWS answer)."
    ]
    verdict = pattern_check.verify(logs, "{ $.a = 1 }", NETWORKS)
    assert verdict.unavailable.startswith("the endpoint cannot answer TestMetricFilter (HTTP 500")


def test_an_html_page_is_never_printed_whatever_the_status(endpoint: type[_Endpoint]) -> None:
    endpoint.answer = (403, "text/html", HTML_500)
    with pytest.raises(AwsError) as raised:
        with translate_errors():
            offline_aws().client("logs").describe_log_groups()
    assert "<" not in str(raised.value.lines())


def test_an_answer_botocore_cannot_parse_is_a_missing_operation(
    endpoint: type[_Endpoint],
) -> None:
    endpoint.answer = (200, "text/xml", b"<not-an-aws-answer")
    with pytest.raises(EndpointLacksOperation, match="sns:ListTopics"):
        with translate_errors():
            offline_aws().client("sns").list_topics()


NAMES = Names.for_config(load(
    "region: us-east-1\nname: lwtest\nallowed_ips: [203.0.113.10]\n"
    "slack: {webhook_url: 'https://hooks.slack.com/services/T0/B0/x'}\n"
), "123456789012", "aws")  # fmt: skip


def _payload(raw: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(raw), len(raw))


def test_a_function_error_that_is_not_json_is_text() -> None:
    aws = offline_aws()
    raw = b"error running docker: Error while fetching server API version"
    with Stubber(aws.client("lambda")) as stub:
        stub.add_response(
            "invoke", {"StatusCode": 200, "FunctionError": "Handled", "Payload": _payload(raw)}
        )
        answer = invoke_notifier(aws, NAMES, {})
    assert answer.error == raw.decode()


def test_a_function_that_cannot_run_is_said_before_any_wait() -> None:
    aws = offline_aws()
    lam = aws.client("lambda")
    expected = {"FunctionName": "lwtest-notifier", "InvocationType": "DryRun", "Payload": ANY}
    with Stubber(lam) as stub:
        # AWS: the dry run checks, runs nothing, and answers 204.
        stub.add_response("invoke", {"StatusCode": 204}, expected)
        assert cannot_run(aws, NAMES, "alarm", "t1") is None
        # An emulator without Docker runs it, and it fails.
        stub.add_response(
            "invoke",
            {"StatusCode": 204, "FunctionError": "Handled", "Payload": _payload(b"")},
            expected,
        )
        result = cannot_run(aws, NAMES, "alarm", "t1")
    assert result is not None and not result.delivered
    assert result.detail.startswith("the notifier function cannot run on this endpoint")
    assert json.dumps(result.detail)  # plain text
