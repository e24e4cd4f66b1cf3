"""A reused trail's log group is the user's: setup refuses, before writing anything, to
go past CloudWatch Logs' per-group quotas (100 metric filters, 5 with a regex)."""

from __future__ import annotations

from typing import Any

import pytest

from loginwatch import engine
from loginwatch.aws import CallRecorder
from loginwatch.errors import UsageError
from tests.e2e.test_setup import REUSE_CONFIG, _make_existing_trail
from tests.support.inprocess import Clients, SilentProgress, connect_recording, load

ALL_RULES = "rules:\n  root_sign_in: {}\n  no_mfa: {}\n  failed_sign_ins: {}\n"


def fill(count: int, pattern: str = '{ $.eventName = "X" }') -> None:
    logs = Clients().logs
    for index in range(count):
        logs.put_metric_filter(
            logGroupName="corp/cloudtrail",
            filterName=f"corp-{index}-{len(pattern)}",
            filterPattern=pattern,
            metricTransformations=[
                {"metricName": f"M{index}", "metricNamespace": "Corp", "metricValue": "1"}
            ],
        )


def setup(text: str, emulator: Any) -> CallRecorder:
    recorder = CallRecorder()
    aws = connect_recording(recorder, reuse=emulator.aws)
    engine.apply(engine.build_deployment(load(text), aws), SilentProgress())
    return recorder


def test_past_100_filters_setup_refuses_and_changes_nothing(emulator_inprocess: Any) -> None:
    _make_existing_trail(Clients())
    fill(97)
    recorder = CallRecorder()
    aws = connect_recording(recorder, reuse=emulator_inprocess.aws)
    # Four sign-in rules' filters and tamper's two (on by default).
    with pytest.raises(UsageError, match="has 97 metric filters of its own; loginwatch's 6"):
        engine.apply(engine.build_deployment(load(REUSE_CONFIG + ALL_RULES), aws), SilentProgress())
    assert recorder.mutating == []
    # With three filters it fits (97 + 3 = 100): setup goes ahead.
    three = REUSE_CONFIG + "rules:\n  root_sign_in: {}\n  no_mfa: {}\n  tamper: false\n"
    assert setup(three, emulator_inprocess).mutating


def test_a_sixth_regex_filter_is_refused(emulator_inprocess: Any) -> None:
    _make_existing_trail(Clients())
    fill(5, "{ $.sourceIPAddress = %^10\\.% }")
    # 192.0.2.0/25 is not octet-aligned: the allowlist's pattern needs a regex.
    text = REUSE_CONFIG.replace("  - 203.0.113.10\n", "  - 192.0.2.0/25\n")
    recorder = CallRecorder()
    aws = connect_recording(recorder, reuse=emulator_inprocess.aws)
    with pytest.raises(UsageError, match="would have 6 filters whose pattern uses a regex"):
        engine.apply(engine.build_deployment(load(text), aws), SilentProgress())
    assert recorder.mutating == []
