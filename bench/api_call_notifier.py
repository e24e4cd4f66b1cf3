"""The notifier's time per API-call event (access_key_outside_allowlist), warm and cold.

    python bench/api_call_notifier.py      # from the repo root, with the test extras installed

Prints numbers; asserts nothing. Runs **the deployed zip** (built as `loginwatch setup`
builds it, with the access-key rule on) in fresh interpreters against moto in-process
(DynamoDB for the claims and key windows, SQS for the follow-up, SSM for the webhook)
and a local Slack stand-in, as bench/fast_path.py does for sign-ins:

- cold: a fresh interpreter imports the handler and handles one call that opens a
  window (imports, boto3 clients, the SSM read, the follow-up scheduled, Slack's 200);
- warm, first call: a new key and address each time (window opened, posted, follow-up
  scheduled): what the channel hears at once;
- warm, further call: the same key and address (counted in its window, not posted):
  what an intruder's hundreds of calls a minute cost each.

moto answers in-process, so AWS round trips are not in these numbers: on AWS add, for
a further call, one BatchGetItem, one UpdateItem and one PutItem (a few ms each inside
a region); for a first call also two PutItems, one SendMessage and the claim's writes.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from fast_path import deployed_zip_dir, fresh_event  # noqa: E402  (the same zip and events)

COLD_RUNS = 7
WARM_RUNS = 30


def _settings() -> dict:
    """bench/fast_path.py's settings.json (as setup writes it), the access-key rule on."""
    from bench.fast_path import SETTINGS

    rules = [r for r in SETTINGS["rules"] if r["name"] != "access_key_outside_allowlist"]
    rules.append({"name": "access_key_outside_allowlist", "severity": "high", "except": []})
    return {**SETTINGS, "rules": rules}


PROBE = r"""
import json, sys, time, copy
sys.path.insert(0, sys.argv[1])          # the unpacked deployment zip
sys.path.insert(0, sys.argv[2])          # loginwatch (for the Slack stand-in)
from moto import mock_aws
import boto3
from loginwatch.demo.webhook_catcher import SlackStub
settings = json.loads(sys.argv[5])
mock = mock_aws(); mock.start()
slack = SlackStub().start()
boto3.client("ssm", region_name="us-east-1").put_parameter(
    Name=settings["webhook_parameter"], Value=slack.url, Type="SecureString")
boto3.client("dynamodb", region_name="us-east-1").create_table(
    TableName=settings["claims_table"], BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": "eventId", "AttributeType": "S"}],
    KeySchema=[{"AttributeName": "eventId", "KeyType": "HASH"}])
boto3.client("sqs", region_name="us-east-1").create_queue(QueueName=settings["retry_queue"])
event = json.loads(sys.argv[3])

def one(n, ip, expect):
    e = copy.deepcopy(event)
    e["detail"]["eventID"] = f"bench-{n}"
    e["detail"]["sourceIPAddress"] = ip
    e["detail"]["eventName"] = "RunInstances" if expect == "posted" else "DescribeInstances"
    t = time.perf_counter()
    result = handler.lambda_handler(e, None)
    assert result["outcome"] == expect, result
    return (time.perf_counter() - t) * 1000

t = time.perf_counter()
from loginwatch_notifier import handler
import_ms = (time.perf_counter() - t) * 1000
runs = int(sys.argv[4])
cold = import_ms + one(0, "198.51.100.1", "posted")
first = [one(n, f"198.51.100.{n % 250 + 2}", "posted") for n in range(1, runs + 1)]
further = [one(1000 + n, "198.51.100.3", "counted") for n in range(runs)]  # n=1 opened it
print(json.dumps({"cold": cold, "import": import_ms, "first": first, "further": further}))
slack.stop(); mock.stop()
"""


def api_call_event() -> dict:
    return fresh_event("eventbridge/api_call_runinstances_access_key.json")


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(int(len(ordered) * 0.95) - 1, 0)]


def main() -> None:
    settings = _settings()
    zip_dir, event = deployed_zip_dir(settings), api_call_event()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "AWS_DEFAULT_REGION": "us-east-1"}
    env.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"})
    env.pop("AWS_ENDPOINT_URL", None)
    colds, imports, firsts, further = [], [], [], []
    for _ in range(COLD_RUNS):
        done = subprocess.run(
            [sys.executable, "-c", PROBE, zip_dir, str(ROOT / "src"), json.dumps(event),
             str(WARM_RUNS), json.dumps(settings)],
            env=env, capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        if done.returncode:
            raise SystemExit(f"the probe failed:\n{done.stderr}")
        data = json.loads(done.stdout.strip().splitlines()[-1])
        colds.append(data["cold"])
        imports.append(data["import"])
        firsts.extend(data["first"])
        further.extend(data["further"])
    print("EventBridge API-call event (access key from outside the allowlist), the deployed zip,")
    print("moto in-process:")
    print(
        f"  cold start     median {statistics.median(colds):6.1f} ms  (of which handler import "
        f"{statistics.median(imports):.1f} ms; {COLD_RUNS} fresh interpreters; posted)"
    )
    print(
        f"  warm, first    median {statistics.median(firsts):6.1f} ms  p95 {_p95(firsts):.1f} ms  "
        f"(window opened, follow-up scheduled, Slack's 200; {len(firsts)} events)"
    )
    print(
        f"  warm, further  median {statistics.median(further):6.1f} ms  p95 {_p95(further):.1f} ms  "
        f"(counted in its window, not posted; {len(further)} events)"
    )


if __name__ == "__main__":
    main()
