"""`loginwatch review` over every enabled region and 10,000 sign-ins, against the emulator.

    python bench/review.py              # from the repo root, with the test extras installed
    python bench/review.py --even       # the sign-ins spread evenly over the regions

Prints numbers; asserts nothing. The emulator (loginwatch's moto server, in this
process) reports 20 regions enabled and throttles LookupEvents as AWS does (2 requests
a second per region, ThrottlingException beyond), so a throttled request would show.

1. LookupEvents: 10,000 sign-ins over 30 days. By default they land where console
   sign-ins do (DESIGN: the global endpoint records them in us-east-1, us-east-2,
   eu-north-1 or ap-southeast-2; a few regional ones elsewhere): the busiest region's
   pages at 2 a second set the wall time, whatever the concurrency.
2. Logs Insights: the same number of sign-ins in the trail's log group (7 days, the
   most moto keeps put_log_events for); one query (more if a query comes back full).
Both judge every sign-in with the notifier's rules and build the suggestions.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

SIGN_INS = 10_000
CONFIG = """\
region: us-east-1
name: bench
allowed_ips: [100.64.0.0/16]
rules:
  outside_allowlist: {enabled: true}
  root_sign_in: {enabled: true}
  no_mfa: {enabled: true}
  failed_sign_ins: {enabled: true, threshold: 3, minutes: 5}
slack:
  webhook_url: https://hooks.slack.com/services/T000/B000/bench
"""
GLOBAL_ENDPOINT = {"us-east-1": 0.55, "us-east-2": 0.15, "eu-north-1": 0.1, "ap-southeast-2": 0.1}


def _history(now: datetime, days: int, regions: list[str], even: bool) -> list[dict]:
    from tests.support.sign_ins import record

    rng = random.Random(24)
    users = [f"user{n:02d}" for n in range(40)]
    networks = [f"192.0.2.{n}" for n in range(1, 60)] + [f"198.51.100.{n}" for n in range(1, 9)]
    weights = [GLOBAL_ENDPOINT.get(r, 0.1 / (len(regions) - len(GLOBAL_ENDPOINT))) for r in regions]
    found = []
    careless = set(users[-2:])  # two users never set up MFA
    for _ in range(SIGN_INS):
        user = rng.choice(users)
        when = now - timedelta(seconds=rng.uniform(60, days * 86400 - 3600))
        region = rng.choice(regions) if even else rng.choices(regions, weights)[0]
        success = rng.random() > 0.05
        found.append(record(when, user=user, ip=rng.choice(networks), region=region,
                            success=success, mfa="No" if user in careless else "Yes"))  # fmt: skip
    return found


def main() -> None:
    even = "--even" in sys.argv
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="us-east-1", MOTO_EC2_LOAD_DEFAULT_AMIS="false")  # fmt: skip
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(key, None)
    logging.disable(logging.WARNING)
    from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend

    from loginwatch.aws import connect
    from loginwatch.config import parse_config
    from loginwatch.demo import emulator
    from loginwatch.review.run import review
    from tests.support.cli import EMULATED_REGIONS
    from tests.support.regions import enabled_only

    RegionsAndZonesBackend.regions = enabled_only(EMULATED_REGIONS)  # type: ignore[misc]
    server = emulator.Emulator().start()
    os.environ["AWS_ENDPOINT_URL"] = server.url
    emulator.LOOKUP_RATE_LIMIT = 2
    try:
        config = parse_config(CONFIG, "bench.yaml", {})
        aws = connect(None, "us-east-1")
        now = datetime.now(UTC)
        regions = sorted(EMULATED_REGIONS)

        history = _history(now, 30, regions, even)
        emulator.plant_events(history)
        per_region = Counter(r["awsRegion"] for r in history)
        started = time.monotonic()
        result = review(config, aws, days=30, now=now)
        wall = time.monotonic() - started
        busiest, most = per_region.most_common(1)[0]
        print(f"LookupEvents, {len(regions)} enabled regions, {SIGN_INS} sign-ins over 30 days"
              f" ({'even' if even else 'as the global sign-in endpoint spreads them'})")  # fmt: skip
        print(
            f"  wall time          {wall:6.1f} s   (the busiest region, {busiest}: {most} "
            f"sign-ins = {-(-most // 50)} pages; at 2 a second ≥ {(-(-most // 50) - 2) / 2:.1f} s)"
        )
        print(f"  requests           {sum(result.requests.values())} in all; per region: "
              + ", ".join(f"{r} {n}" for r, n in sorted(result.requests.items(), key=lambda x: -x[1])[:6])
              + ", …")  # fmt: skip
        print(f"  throttled          {len(emulator.LOOKUP_THROTTLED)}")
        print(
            f"  judged             {len(result.verdicts)} sign-ins, {result.alerted} would have "
            f"alerted, {len(result.rows)} principals, {len(result.suggestions)} suggestions"
        )
        emulator.forget_events()

        import boto3

        logs = boto3.client("logs", region_name="us-east-1")
        group = "/bench/cloudtrail"
        stream = "123456789012_CloudTrail_us-east-1"
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        first = now - timedelta(days=8)
        recent = _history(now, 7, regions, even)
        events = [{"timestamp": int(first.timestamp() * 1000), "message": "{}"}]
        for r in recent:
            at = datetime.fromisoformat(r["eventTime"].replace("Z", "+00:00"))
            events.append({"timestamp": int(at.timestamp() * 1000), "message": json.dumps(r)})
        events.sort(key=lambda e: e["timestamp"])
        for n in range(0, len(events), 5000):
            logs.put_log_events(
                logGroupName=group, logStreamName=stream, logEvents=events[n : n + 5000]
            )
        existing = CONFIG.replace("name: bench", "name: bench\ntrail:\n  existing: bench-trail")
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="bench-trail")
        arn = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["arn"]
        boto3.client("cloudtrail", region_name="us-east-1").create_trail(
            Name="bench-trail", S3BucketName="bench-trail", IsMultiRegionTrail=True,
            CloudWatchLogsLogGroupArn=arn if arn.endswith(":*") else f"{arn}:*",
            CloudWatchLogsRoleArn="arn:aws:iam::123456789012:role/bench",
        )  # fmt: skip
        started = time.monotonic()
        result = review(parse_config(existing, "bench.yaml", {}), aws, days=7, now=now,
                        sleep=lambda _: None)  # fmt: skip
        wall = time.monotonic() - started
        print(f"Logs Insights, {SIGN_INS} sign-ins over 7 days in the trail's log group")
        print(
            f"  wall time          {wall:6.1f} s   ({result.queries} queries; source: "
            f"{result.source}; moto answers at once, AWS takes seconds per query)"
        )
        print(
            f"  judged             {len(result.verdicts)} sign-ins, {result.alerted} would have "
            f"alerted, {len(result.suggestions)} suggestions"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
