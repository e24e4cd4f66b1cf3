"""The Slack payload for a typical alert, pinned in tests/snapshots/.

Regenerate after an intended change with: UPDATE_SNAPSHOTS=1 pytest tests/notifier
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from loginwatch.notifier import handler
from tests.notifier.conftest import NotifierWorld, alarm_event, cloudtrail_record

SNAPSHOT = Path(__file__).parents[1] / "snapshots" / "slack_payload_typical.json"


def test_typical_alert_payload_matches_snapshot(world: NotifierWorld, use_settings) -> None:
    use_settings(allowlist=["203.0.113.0/24"])
    # Records keep their fixture eventTime (so the payload is fixed); their log
    # timestamps sit inside the alarm window around "now".
    world.trail.put(
        (world.at(6), cloudtrail_record("alice")),  # 198.51.100.23, no MFA
        (world.at(5), cloudtrail_record("bob")),  # 203.0.113.10, allowed
        (world.at(4), cloudtrail_record("root")),  # 192.0.2.77
    )
    handler.lambda_handler(alarm_event(state_change_time=world.now), None)
    (request,) = world.slack.requests
    actual = json.dumps(request.json, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(actual, encoding="utf-8")
    assert SNAPSHOT.exists(), f"{SNAPSHOT} is missing; run with UPDATE_SNAPSHOTS=1"
    assert actual == SNAPSHOT.read_text(encoding="utf-8")
