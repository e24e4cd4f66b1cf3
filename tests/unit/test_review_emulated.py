"""`review` against the emulator in this process: LookupEvents as AWS documents it, every
enabled region read within its rate limit, and the Logs Insights source."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from loginwatch.config import parse_config
from loginwatch.demo import emulator
from loginwatch.review import history
from loginwatch.review.limiter import RateLimiter
from loginwatch.review.run import review
from tests.conftest import TWO_REGIONS
from tests.support import sign_ins as planted
from tests.support.inprocess import InProcessEmulator

NOW = datetime.now(UTC).replace(microsecond=0)
CONFIG = """\
region: us-east-1
name: lwreview
allowed_ips:
  - 100.64.1.1
rules:
  outside_allowlist: {enabled: true}
  root_sign_in: {enabled: true}
  no_mfa: {enabled: true}
  failed_sign_ins: {enabled: true, threshold: 3, minutes: 5}
slack:
  webhook_url: https://hooks.slack.com/services/T000/B000/xyz
"""


@pytest.fixture
def planted_history(emulator_inprocess: InProcessEmulator) -> Iterator[InProcessEmulator]:
    emulator.forget_events()
    emulator.plant_events(planted.team_history(NOW))
    try:
        yield emulator_inprocess
    finally:
        emulator.forget_events()


def _lookup(region: str = "us-east-1", **params: Any) -> dict[str, Any]:
    return boto3.client("cloudtrail", region_name=region).lookup_events(**params)


def test_lookup_events_pages_and_filters_as_aws_documents(
    planted_history: InProcessEmulator,
) -> None:
    by_name = [{"AttributeKey": "EventName", "AttributeValue": "ConsoleLogin"}]
    here = [r for r in planted.team_history(NOW) if r["awsRegion"] == "us-east-1"]
    seen: list[dict[str, Any]] = []
    request: dict[str, Any] = {"LookupAttributes": by_name, "MaxResults": 50}
    pages = 0
    while True:
        page = _lookup(**request)
        pages += 1
        assert len(page["Events"]) <= 50
        seen += page["Events"]
        if "NextToken" not in page:
            break
        request["NextToken"] = page["NextToken"]
    assert len(seen) == len(here) and pages == -(-len(here) // 50)
    times = [e["EventTime"] for e in seen]
    assert times == sorted(times, reverse=True)  # newest first
    assert json.loads(seen[0]["CloudTrailEvent"])["eventName"] == "ConsoleLogin"
    # The time range bounds eventTime; another attribute filters.
    recent = _lookup(StartTime=NOW - timedelta(days=2), EndTime=NOW, LookupAttributes=by_name)
    assert recent["Events"] and all(
        e["EventTime"] >= NOW - timedelta(days=2) for e in recent["Events"]
    )
    none = _lookup(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "X"}])
    assert none["Events"] == []
    # What AWS refuses.
    for params, code in (
        ({"MaxResults": 51}, "InvalidMaxResultsException"),
        ({"LookupAttributes": by_name * 2}, "InvalidLookupAttributesException"),
        ({"StartTime": NOW, "EndTime": NOW - timedelta(days=1)}, "InvalidTimeRangeException"),
        ({"NextToken": "forged.50"}, "InvalidNextTokenException"),
    ):
        with pytest.raises(ClientError) as caught:
            _lookup(**params)
        assert caught.value.response["Error"]["Code"] == code


class RegionClock:
    """A fake clock per region: the limiter's sleeps move it, nothing really sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sent: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_review_reads_every_enabled_region_within_its_rate_limit(
    planted_history: InProcessEmulator,
) -> None:
    clocks: dict[str, RegionClock] = {}

    def limiter_for(region: str) -> RateLimiter:
        clock = clocks.setdefault(region, RegionClock())
        limiter = RateLimiter(clock=clock.clock, sleep=clock.sleep)
        acquire = limiter.acquire

        def recorded() -> float:
            clock.sent.append(acquire())
            clock.now += 0.05  # each request takes a little time
            return clock.sent[-1]

        limiter.acquire = recorded  # type: ignore[method-assign]
        return limiter

    config = parse_config(CONFIG, "loginwatch.yaml", {})
    result = review(config, planted_history.aws, days=30, now=NOW, limiter_for=limiter_for)
    assert result.source == "lookup" and "does not exist" in result.source_text
    assert sorted(clocks) == sorted(TWO_REGIONS) == result.regions
    for region, clock in clocks.items():
        assert len(clock.sent) == result.requests[region]
        # Never a third request within one second of the request two before it.
        assert all(b - a >= 1.0 for a, b in zip(clock.sent, clock.sent[2:], strict=False)), region
    assert result.requests["us-east-1"] >= 3  # enough pages for the limiter to hold one
    assert len(result.verdicts) == len(planted.team_history(NOW))
    assert {s.network for s in result.suggestions} == {
        "192.0.2.0/24", "198.51.100.7/32", "2001:db8:77:1::/64",
    }  # fmt: skip
    assert "LookupEvents cannot" not in result.keys.note and not result.keys.reviewed
    assert "no CloudWatch Logs group" in result.keys.note
    data = result.to_json()
    assert data["source"] == "lookup" and data["requests"] == result.requests
    assert len(data["sign_in_verdicts"]) == len(result.verdicts)


def test_review_queries_the_log_group_when_it_holds_the_window(
    planted_history: InProcessEmulator,
) -> None:
    """One Logs Insights query instead of LookupEvents (moto's Insights ignores the filter;
    the notifier's parser keeps only the sign-ins)."""
    logs = boto3.client("logs", region_name="us-east-1")
    group = "/lwreview/cloudtrail"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="123456789012_CloudTrail_us-east-1")
    delivered = NOW - timedelta(days=9)  # moto keeps what AWS would (14 days at most)
    records = [r for r in planted.team_history(NOW) if r["eventTime"] >= delivered.isoformat()[:19]]
    other = {"eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances"}
    events = [{"timestamp": int(delivered.timestamp() * 1000), "message": json.dumps(other)}]
    for record in records:
        at = datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00"))
        events.append({"timestamp": int(at.timestamp() * 1000) + 1, "message": json.dumps(record)})
    events.sort(key=lambda e: e["timestamp"])
    logs.put_log_events(
        logGroupName=group, logStreamName="123456789012_CloudTrail_us-east-1", logEvents=events
    )
    emulator.forget_events()  # LookupEvents would find nothing now: the log group must
    config = parse_config(CONFIG, "loginwatch.yaml", {})
    result = review(config, planted_history.aws, days=7, now=NOW, sleep=lambda _: None)
    assert result.source == "logs" and result.queries == 1 and not result.requests
    in_window = [r for r in records if r["eventTime"] >= (NOW - timedelta(days=7)).isoformat()[:19]]
    assert len(result.verdicts) == len(in_window)
    assert result.keys.note.startswith("The endpoint ran the Logs Insights query")
    # A window the group does not reach back to: LookupEvents, saying why.
    older = review(config, planted_history.aws, days=30, now=NOW, sleep=lambda _: None)
    assert older.source == "lookup" and "holds events only since" in older.source_text


def test_insights_splits_a_full_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """10,000 rows back (Insights' limit): asked again in halves, until under the limit."""
    monkeypatch.setattr(history, "QUERY_ROW_LIMIT", 4)
    records = [planted.record(NOW - timedelta(hours=h)) for h in range(1, 11)]

    class Logs:
        def __init__(self) -> None:
            self.windows: list[tuple[int, int]] = []

        def start_query(self, **p: Any) -> dict[str, str]:
            self.windows.append((p["startTime"], p["endTime"]))
            return {"queryId": str(len(self.windows) - 1)}

        def get_query_results(self, queryId: str) -> dict[str, Any]:
            start, end = self.windows[int(queryId)]
            rows = [
                [{"field": "@message", "value": json.dumps(r)}]
                for r in records
                if start
                <= datetime.fromisoformat(r["eventTime"].replace("Z", "+00:00")).timestamp()
                <= end
            ][:4]
            return {"status": "Complete", "results": rows}

    logs = Logs()
    stats = history.QueryStats()
    found = history.insights_sign_ins(
        logs, "/g", history.Window.last_days(1, NOW), sleep=lambda _: None, stats=stats
    )
    assert sorted(s.event_id for s in found) == sorted(r["eventID"] for r in records)
    assert stats.queries > 1 and not stats.truncated


def test_key_calls_reads_the_querys_counts_and_knows_an_unevaluated_query() -> None:
    """Insights answers `stats` rows as strings; moto answers the raw events instead."""

    class Logs:
        def __init__(self, rows: list[list[dict[str, str]]]) -> None:
            self.rows = rows
            self.query = ""

        def start_query(self, **p: Any) -> dict[str, str]:
            self.query = p["queryString"]
            return {"queryId": "q"}

        def get_query_results(self, queryId: str) -> dict[str, Any]:
            return {"status": "Complete", "results": self.rows}

    row = {"key": "AKIAEXAMPLEKEY00001", "type": "IAMUser", "user": "ci", "ip": "198.51.100.20",
           "kind": "AwsApiCall", "calls": "1200", "first": "2026-11-01 10:00:00.000",
           "last": "2026-12-01 09:30:00.000"}  # fmt: skip
    logs = Logs([[{"field": k, "value": v} for k, v in row.items()]])
    found = history.key_calls(logs, "/g", history.Window.last_days(30, NOW), sleep=lambda _: None)
    assert "stats count(*)" in logs.query and "like /^AKIA/" in logs.query
    assert found.evaluated and found.rows[0]["calls"] == 1200
    assert found.rows[0]["first"] == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    raw = Logs([[{"field": "@ptr", "value": "x"}]])
    assert not history.key_calls(raw, "/g", history.Window.last_days(30, NOW)).evaluated
