"""The fast path's notifier: time from an EventBridge sign-in event to Slack's 200, and a burst.

    python bench/fast_path.py            # from the repo root, with the test extras installed

Prints numbers; asserts nothing. Runs **the deployed zip** (built exactly as
`loginwatch setup` builds it) against moto in-process for SSM and DynamoDB and
a local Slack stand-in on 127.0.0.1:

1. Cold and warm: a fresh interpreter imports the handler from the unpacked zip
   and handles one event (cold: imports, boto3 clients, the SSM read); then the
   same container handles more events (warm). moto answers in-process, so AWS
   round trips are not in these numbers: on AWS add one SSM read (cold only) and
   two DynamoDB writes, typically a few ms each inside a region.
2. Burst: 100 outside sign-ins within one minute delivered one after another,
   with a Slack stand-in that takes one message per second and answers 429 with
   Retry-After otherwise; then the alarm fires and the notifier digests the rest.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

COLD_RUNS = 7
WARM_RUNS = 30


def _settings() -> dict:
    """settings.json exactly as setup writes it, for a config named bench (so this
    script never drifts from what the notifier expects)."""
    from loginwatch.config import parse_config
    from loginwatch.engine import notifier_settings
    from loginwatch.names import Names

    config = parse_config(
        "region: us-east-1\nname: bench\nallowed_ips: [203.0.113.0/24]\n"
        "slack: {webhook_url: 'https://hooks.slack.com/services/T/B/bench'}\n",
        "bench.yaml",
        {},
    )
    names = Names.for_config(config, "123456789012")
    return notifier_settings(config, names, names.trail_log_group).to_dict()


SETTINGS = _settings()

# Runs in a fresh interpreter: moto, the Slack stand-in, then the handler from the zip.
PROBE = r"""
import json, sys, time, copy
started = time.perf_counter()
sys.path.insert(0, sys.argv[1])          # the unpacked deployment zip
sys.path.insert(0, sys.argv[2])          # loginwatch (for the Slack stand-in) and tests
from moto import mock_aws
import boto3
from loginwatch.demo.webhook_catcher import SlackStub
mock = mock_aws(); mock.start()
slack = SlackStub().start()
boto3.client("ssm", region_name="us-east-1").put_parameter(
    Name="/bench/slack-webhook-url", Value=slack.url, Type="SecureString")
boto3.client("dynamodb", region_name="us-east-1").create_table(
    TableName="bench-claims", BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": "eventId", "AttributeType": "S"}],
    KeySchema=[{"AttributeName": "eventId", "KeyType": "HASH"}])
event = json.loads(sys.argv[3])
setup_ms = (time.perf_counter() - started) * 1000

def one(n):
    e = copy.deepcopy(event)
    e["detail"]["eventID"] = f"bench-{n}"
    e["detail"]["sourceIPAddress"] = f"198.51.100.{n % 250 + 1}"
    e["detail"]["recipientAccountId"] = f"{n:012d}"  # its own burst window: always posted
    t = time.perf_counter()
    result = handler.lambda_handler(e, None)
    assert result["slack_status"] == 200, result
    return (time.perf_counter() - t) * 1000

t = time.perf_counter()
from loginwatch_notifier import handler
import_ms = (time.perf_counter() - t) * 1000
cold = import_ms + one(0)
warm = [one(n) for n in range(1, int(sys.argv[4]) + 1)]
print(json.dumps({"cold": cold, "import": import_ms, "warm": warm}))
slack.stop(); mock.stop()
"""


def deployed_zip_dir(settings: dict | None = None) -> str:
    """The notifier zip setup would deploy (with these settings), unpacked."""
    from loginwatch.notifier_package import build_zip

    target = tempfile.mkdtemp(prefix="lw-zip-")
    zipfile.ZipFile(BytesIO(build_zip(settings or SETTINGS))).extractall(target)
    return target


def fresh_event(fixture: str = "eventbridge/console_signin_event.json") -> dict:
    """An EventBridge event from tests/fixtures, timed now."""
    from tests.conftest import load_fixture

    event = load_fixture(fixture)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    event["detail"]["eventTime"] = event["time"] = now
    return event


def sign_in_event() -> dict:
    return fresh_event()


def cold_and_warm() -> None:
    zip_dir, event = deployed_zip_dir(), sign_in_event()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "AWS_DEFAULT_REGION": "us-east-1"}
    env.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"})
    env.pop("AWS_ENDPOINT_URL", None)
    colds, imports, warms = [], [], []
    for _ in range(COLD_RUNS):
        done = subprocess.run(
            [sys.executable, "-c", PROBE, zip_dir, str(ROOT / "src"), json.dumps(event),
             str(WARM_RUNS)],
            env=env, capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        if done.returncode:
            raise SystemExit(f"the probe failed:\n{done.stderr}")
        data = json.loads(done.stdout.strip().splitlines()[-1])
        colds.append(data["cold"])
        imports.append(data["import"])
        warms.extend(data["warm"])
    print("EventBridge sign-in event → Slack's 200, the deployed zip, moto in-process:")
    print(
        f"  cold start  median {statistics.median(colds):6.1f} ms  (of which handler import "
        f"{statistics.median(imports):.1f} ms; {COLD_RUNS} fresh interpreters)"
    )
    warms.sort()
    p95 = warms[int(len(warms) * 0.95) - 1]
    print(
        f"  warm        median {statistics.median(warms):6.1f} ms  p95 {p95:.1f} ms  "
        f"({len(warms)} events)"
    )


def burst() -> None:
    from datetime import UTC, datetime, timedelta

    import boto3
    from moto import mock_aws

    from loginwatch.demo.webhook_catcher import SlackReply, SlackStub
    from loginwatch.notifier import handler, settings, slack_delivery
    from loginwatch.notifier.paths import sign_in as fast_path
    from tests.notifier.conftest import (
        ALARM_NAME,
        CLAIMS_TABLE,
        LOG_GROUP,
        Trail,
        alarm_event,
        cloudtrail_record,
        create_claims_table,
        iso,
    )

    slack = SlackStub().start()
    last = [0.0]
    rejected = [0]
    accepted: list[dict] = []

    def one_per_second() -> SlackReply:
        now = time.monotonic()
        if now - last[0] < 1.0:
            rejected[0] += 1
            return SlackReply(429, "rate_limited", {"Retry-After": "1"})
        last[0] = now
        accepted.append(slack.requests[-1].json)  # called right after the request is logged
        return SlackReply(200, "ok")

    slack.responder = one_per_second
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    slack_delivery._sleep = sleep
    with mock_aws(), tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "settings.json"
        path.write_text(
            json.dumps(
                {
                    **SETTINGS,
                    "claims_table": CLAIMS_TABLE,
                    "trail_log_group": LOG_GROUP,
                    "alarm_name": ALARM_NAME,
                    "alarms": {ALARM_NAME: "outside_allowlist"},
                }
            )
        )
        settings.SETTINGS_FILE = path
        handler.reset_caches()
        boto3.client("ssm", region_name="us-east-1").put_parameter(
            Name=SETTINGS["webhook_parameter"], Value=slack.url, Type="SecureString"
        )
        create_claims_table(boto3.client("dynamodb", region_name="us-east-1"))
        trail = Trail(boto3.client("logs", region_name="us-east-1"))
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=60)
        records = []
        outcomes: dict[str, int] = {}
        began = time.perf_counter()
        for n in range(100):
            moment = start + timedelta(seconds=n * 0.6)
            record = cloudtrail_record(
                "alice",
                eventTime=iso(moment),
                eventID=f"burst-{n:03d}",
                sourceIPAddress=f"198.51.100.{n + 1}",
            )
            records.append((moment, record))
            event = {**sign_in_event(), "detail": record}
            with contextlib.redirect_stdout(io.StringIO()):  # the handler's log lines
                outcome = handler.lambda_handler(event, None)["outcome"]
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        fast_seconds = time.perf_counter() - began
        trail.put(*records)
        with contextlib.redirect_stdout(io.StringIO()):
            alarm = handler.lambda_handler(alarm_event(state_change_time=datetime.now(UTC)), None)
        total = time.perf_counter() - began
    slack.stop()
    delivered = len(accepted)
    # Each alert's header starts with its count (":warning: 97 console sign-ins …"); the
    # burst notice counts nothing itself: its sign-in is listed in the digest.
    counted = sum(
        int(p["blocks"][0]["text"]["text"].split()[1])
        for p in accepted
        if "within" not in p["blocks"][0]["text"]["text"]
    )
    print(
        "\nburst: 100 outside sign-ins in one minute (fast path, then the alarm digest), "
        "Slack taking 1 message/s:"
    )
    print(f"  fast path outcomes      {dict(sorted(outcomes.items()))}")
    print(f"  alarm digest            outcome {alarm['outcome']}, {alarm['events']} sign-ins")
    print(f"  messages Slack accepted {delivered}  (budget per window: "
          f"{fast_path.POSTED_PER_WINDOW} posts + 1 burst notice, then the digest)")  # fmt: skip
    print(f"  sign-ins counted in them {counted} of 100")
    print(f"  HTTP 429s ridden out    {rejected[0]}  (waited {sum(slept):.1f} s on Retry-After)")
    print(f"  wall time               {fast_seconds:.1f} s fast path, {total:.1f} s with digest")
    windows = outcomes.get("burst-notice", 0)
    print(
        f"  burst windows touched   {windows} (windows are {fast_path.BURST_WINDOW_SECONDS} s of "
        "sign-in time; a minute can straddle two)"
    )


if __name__ == "__main__":
    cold_and_warm()
    burst()
