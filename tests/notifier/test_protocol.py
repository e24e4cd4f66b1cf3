"""The test-alert marker shared by `loginwatch test-alert` and the notifier."""

from __future__ import annotations

import pytest

from loginwatch.notifier import handler, protocol


def test_reason_round_trips() -> None:
    reason = protocol.marked_alarm_reason("20261120-abc")
    assert reason == "loginwatch test-alert 20261120-abc"
    assert protocol.find_test_id(reason) == "20261120-abc"
    assert protocol.find_test_id(f"Manually set: {reason} (by alice)") == "20261120-abc"
    assert handler.TEST_ALERT_MARKER == protocol.TEST_ALERT_MARKER


@pytest.mark.parametrize("bad", ["", "has space", "semi;colon", "ünï"])
def test_reason_rejects_bad_ids(bad: str) -> None:
    with pytest.raises(ValueError):
        protocol.marked_alarm_reason(bad)


def test_ordinary_reasons_are_not_tests() -> None:
    assert protocol.find_test_id("Threshold Crossed: 1 out of the last 1 datapoints") is None
    assert protocol.find_test_id("loginwatch test-alert") is None
