"""AWS's own verdict on the filter pattern (TestMetricFilter), which the emulator lacks:
pinned with Stubber, agreeing and disagreeing, and setup refusing before it writes."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from loginwatch import engine, pattern_check
from loginwatch.allowlist import compile_pattern
from loginwatch.aws import CallRecorder
from loginwatch.errors import UsageError
from tests.support.inprocess import SilentProgress, connect_recording, load, offline_aws

NETWORKS = [ipaddress.ip_network("203.0.113.8/30"), ipaddress.ip_network("2001:db8:ab00::/56")]


def logs_client() -> Any:
    return boto3.client("logs", region_name="us-east-1")


def test_samples_are_every_edge_and_its_outside_neighbour_in_every_form() -> None:
    found = {s.address: s.inside for s in pattern_check.samples(NETWORKS)}
    assert found["203.0.113.8"] and found["203.0.113.11"]
    assert not found["203.0.113.7"] and not found["203.0.113.12"]
    assert found["2001:db8:ab00::"] and found["2001:0db8:ab00:0000:0000:0000:0000:0000"]
    assert found["2001:db8:ab00:ff:ffff:ffff:ffff:ffff"]
    assert not found["2001:db8:ab00:100::"]  # just past the /56
    assert not found["2001:db8:aaff:ffff:ffff:ffff:ffff:ffff"]  # just before it
    assert "2001:0db8:ab00:0100:0000:0000:0000:0000" in found  # written out in full too


def answer_matching(messages: list[str], predicate: Any) -> dict[str, Any]:
    """What TestMetricFilter answers: the 1-based numbers of the messages that match."""
    return {
        "matches": [
            {"eventNumber": n, "eventMessage": m, "extractedValues": {}}
            for n, m in enumerate(messages, start=1)
            if predicate(json.loads(m)["sourceIPAddress"])
        ]
    }


def stubbed(verdict_for: Any) -> tuple[Any, Stubber]:
    logs = logs_client()
    stubber = Stubber(logs)
    checks = pattern_check.samples(NETWORKS)
    messages = [pattern_check.sign_in_record(s.address) for s in checks]
    pattern = compile_pattern(NETWORKS).pattern
    stubber.add_response(
        "test_metric_filter",
        answer_matching(messages, verdict_for),
        {"filterPattern": pattern, "logEventMessages": messages},
    )
    stubber.activate()
    return logs, stubber


def test_aws_agreeing_is_safe_and_names_any_over_match() -> None:
    inside = {s.address for s in pattern_check.samples(NETWORKS) if s.inside}
    over = "2001:0db8:ab00:0000:0000:0000:0000:0000"  # AWS counts the written-out form
    logs, stubber = stubbed(lambda ip: ip not in inside or ip == over)
    verdict = pattern_check.verify(logs, compile_pattern(NETWORKS).pattern, NETWORKS)
    stubber.assert_no_pending_responses()
    assert verdict.safe and verdict.missed == [] and verdict.over_matched == [over]
    assert verdict.checked == len(pattern_check.samples(NETWORKS))
    pattern_check.require_safe(verdict)  # does not raise


def test_aws_disagreeing_is_refused_naming_the_address() -> None:
    inside = {s.address for s in pattern_check.samples(NETWORKS) if s.inside}
    missed = "203.0.113.12"
    logs, _ = stubbed(lambda ip: ip not in inside and ip != missed)
    verdict = pattern_check.verify(logs, compile_pattern(NETWORKS).pattern, NETWORKS)
    assert verdict.missed == [missed] and not verdict.safe
    with pytest.raises(UsageError, match=r"sign-in from 203\.0\.113\.12, which is outside"):
        pattern_check.require_safe(verdict)


def test_an_endpoint_without_the_api_is_said_not_refused() -> None:
    logs = logs_client()
    stubber = Stubber(logs)
    stubber.add_client_error(
        "test_metric_filter", "UnknownOperationException", "not here", 400, expected_params=None
    )
    stubber.activate()
    verdict = pattern_check.verify(logs, "{ $.a = 1 }", NETWORKS)
    assert verdict.unavailable == "the endpoint does not implement TestMetricFilter"
    assert verdict.safe and verdict.checked == 0


def test_a_denied_test_is_a_clear_error() -> None:
    logs = offline_aws().client("logs")  # loginwatch's own client: the action has its service
    stubber = Stubber(logs)
    stubber.add_client_error(
        "test_metric_filter", "AccessDeniedException", "not allowed", 400, expected_params=None
    )
    stubber.activate()
    with pytest.raises(Exception, match="logs:TestMetricFilter") as raised:
        pattern_check.verify(logs, "{ $.a = 1 }", NETWORKS)
    assert "Traceback" not in str(raised.value)


def test_large_allowlists_go_in_batches_of_fifty() -> None:
    networks = [ipaddress.ip_network(f"10.{i}.0.0/16") for i in range(0, 80, 2)]
    logs = logs_client()
    stubber = Stubber(logs)
    total = len(pattern_check.samples(networks))
    for _batch in range(0, total, pattern_check.BATCH):
        stubber.add_response("test_metric_filter", {"matches": []})
    stubber.activate()
    verdict = pattern_check.verify(logs, compile_pattern(networks).pattern, networks)
    stubber.assert_no_pending_responses()
    assert total > pattern_check.BATCH and verdict.checked == total
    assert len(verdict.missed) == sum(1 for s in pattern_check.samples(networks) if not s.inside)


def test_setup_refuses_before_writing_anything_when_aws_would_miss_a_sign_in(
    emulator_inprocess: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    missed = pattern_check.Verdict(checked=8, missed=["198.51.99.255"])
    monkeypatch.setattr(
        pattern_check, "verify", lambda logs, pattern, networks, record=None: missed
    )
    recorder = CallRecorder()
    aws = connect_recording(recorder, reuse=emulator_inprocess.aws)
    with pytest.raises(UsageError, match=r"198\.51\.99\.255"):
        engine.apply(engine.build_deployment(load(), aws), SilentProgress())
    assert recorder.mutating == []  # nothing half-made


def test_in_the_emulator_setup_says_aws_did_not_check_and_carries_on(
    emulator_inprocess: Any,
) -> None:
    aws = connect_recording(CallRecorder(), reuse=emulator_inprocess.aws)
    deployment = engine.build_deployment(load(), aws)
    results = engine.apply(deployment, SilentProgress())
    # "none": the rules this config leaves off have nothing to remove.
    assert {r.action for r in results} == {"create", "none"}
    (notice,) = [n for n in deployment.notices if "TestMetricFilter" in n]
    assert notice.startswith(
        "Filter pattern not verified by AWS: the endpoint does not implement TestMetricFilter"
    )
