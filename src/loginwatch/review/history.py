"""Reading the history: console sign-ins and long-term-key API calls. The only I/O of review.

Two sources of sign-ins, as the DESIGN notes' "History" says:
- CloudTrail ``LookupEvents``: 90 days of management events per region, 50 a page,
  2 requests per second per account and region, one lookup attribute per call
  (EventName=ConsoleLogin). Each region is read by its own thread behind its own
  limiter, so 17 regions take as long as the busiest one.
- CloudWatch Logs Insights on the trail's log group, when the group exists and holds
  the whole window: one query for every region (a multi-region trail's copy), at most
  10,000 rows a query, so a window with more is split in halves and asked again.
Scanning *every* API call is out of LookupEvents' reach (millions of calls at 100
events a second), so the access-key review reads only the log group, aggregated by
the query itself (count per key, user and address).

Each record is parsed by the notifier's own parser (notifier/events.parse_sign_in), and
the ConsoleLogin check is repeated there: an endpoint that does not evaluate a query's
filter (moto's Insights does not) gives the same sign-ins.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ..aws import Aws, translate_errors
from ..errors import AwsError, EndpointLacksOperation
from ..notifier.events import SignIn, parse_sign_in
from .limiter import RateLimiter

PAGE_SIZE = 50  # LookupEvents' MaxResults: 1-50
QUERY_ROW_LIMIT = 10_000  # Logs Insights returns at most 10,000 rows a query
QUERY_POLL_SECONDS = 1.0
QUERY_TIMEOUT_SECONDS = 15 * 60  # Insights itself gives up after 60 minutes
# No Insights window is split below this: a minute with 10,000 sign-ins is an attack.
SMALLEST_SPLIT = timedelta(minutes=1)
MAX_LOOKUP_THREADS = 32

SIGN_IN_QUERY = (
    "fields @timestamp, @message"
    ' | filter eventSource = "signin.amazonaws.com" and eventName = "ConsoleLogin"'
    f" | sort @timestamp desc | limit {QUERY_ROW_LIMIT}"
)
# Calls signed with a long-term key, counted per key, principal, address (and the fields
# the notifier's decision reads: identity type, invokedBy, event type).
KEY_QUERY = (
    "fields userIdentity.accessKeyId as key, userIdentity.type as type,"
    " userIdentity.userName as user, userIdentity.arn as arn, sourceIPAddress as ip,"
    " userIdentity.invokedBy as invokedBy, eventType as kind"
    " | filter key like /^AKIA/"
    " | stats count(*) as calls, min(@timestamp) as first, max(@timestamp) as last"
    " by key, type, user, arn, ip, invokedBy, kind"
    f" | limit {QUERY_ROW_LIMIT}"
)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @classmethod
    def last_days(cls, days: int, now: datetime) -> Window:
        return cls(now - timedelta(days=days), now)

    @property
    def days(self) -> int:
        return round((self.end - self.start).total_seconds() / 86400)

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment <= self.end


class LookupProgress(Protocol):
    def page(self, region: str, events: int) -> None: ...  # one page read, with its events
    def region_done(self, region: str) -> None: ...


@dataclass
class LookupResult:
    sign_ins: list[SignIn] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)  # per region
    waited: dict[str, float] = field(default_factory=dict)  # seconds held by the limiter


def lookup_sign_ins(
    aws: Aws,
    regions: Sequence[str],
    window: Window,
    *,
    progress: LookupProgress | None = None,
    limiter_for: Callable[[str], RateLimiter] = lambda _region: RateLimiter(),
) -> LookupResult:
    """Every ConsoleLogin LookupEvents has in ``regions`` within ``window``."""
    result = LookupResult()
    lock = threading.Lock()
    stop = threading.Event()  # one region's error stops the others' next request

    def read(region: str) -> None:
        client = aws.client("cloudtrail", region)
        limiter = limiter_for(region)
        request: dict[str, Any] = {
            "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "ConsoleLogin"}],
            "StartTime": window.start,
            "EndTime": window.end,
            "MaxResults": PAGE_SIZE,
        }
        found: list[SignIn] = []
        requests = 0
        while not stop.is_set():
            requests += 1
            with limiter.request(), translate_errors(f"CloudTrail in {region}"):
                response = client.lookup_events(**request)
            page = [s for e in response.get("Events", []) if (s := _from_lookup(e, region))]
            found.extend(page)
            if progress is not None:
                progress.page(region, len(page))
            token = response.get("NextToken")
            if not token:
                break
            request["NextToken"] = token
        with lock:
            result.sign_ins.extend(found)
            result.requests[region] = requests
            result.waited[region] = limiter.waited
        if progress is not None:
            progress.region_done(region)

    workers = max(1, min(MAX_LOOKUP_THREADS, len(regions)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lookup") as pool:
        futures = [pool.submit(read, region) for region in regions]
        try:
            for future in futures:
                future.result()
        except EndpointLacksOperation as exc:
            stop.set()
            raise AwsError(
                f"{exc.message} So the sign-in history cannot be read with LookupEvents.",
                "The endpoint (an emulator, as AWS_ENDPOINT_URL says?) lacks CloudTrail "
                "LookupEvents; where the trail's log group holds the window, "
                "`--source logs` reads that instead.",
            ) from None
        except BaseException:
            stop.set()
            raise
    return result


def _from_lookup(event: Mapping[str, Any], region: str) -> SignIn | None:
    """The sign-in in one LookupEvents event (its CloudTrailEvent is the whole record)."""
    raw = event.get("CloudTrailEvent")
    try:
        record = json.loads(raw) if isinstance(raw, str) else None
    except json.JSONDecodeError:
        return None
    if not isinstance(record, Mapping):
        return None
    record = dict(record)
    record.setdefault("awsRegion", region)
    return parse_sign_in(record)


# ---------------------------------------------------------------- the trail's log group


@dataclass(frozen=True)
class Coverage:
    """Whether the trail's log group exists and holds the whole window, and why not."""

    exists: bool
    covers: bool
    reason: str = ""
    earliest: datetime | None = None


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _from_ms(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    return None


def log_group_coverage(logs: Any, group: str, window: Window) -> Coverage:
    """Does ``group`` exist, keep events long enough, and reach back to the window's start?

    Its earliest event is the first event of its oldest stream (CloudTrail writes one
    stream per account and region, so one page of streams is normally all of them);
    without streams, its creation time."""
    if not group:
        return Coverage(False, False, "the trail delivers to no CloudWatch Logs group")
    with translate_errors(f"log group {group}"):
        listed = logs.describe_log_groups(logGroupNamePrefix=group, limit=50)
    found = next((g for g in listed.get("logGroups", []) if g["logGroupName"] == group), None)
    if found is None:
        return Coverage(False, False, f"the trail's log group {group} does not exist")
    retention = found.get("retentionInDays")
    if retention and retention < window.days:
        return Coverage(True, False, f"{group} keeps events {retention} days, fewer than asked")
    with translate_errors(f"log group {group}"):
        streams = logs.describe_log_streams(logGroupName=group, limit=50).get("logStreams", [])
    firsts = [t for s in streams if (t := _from_ms(s.get("firstEventTimestamp")))]
    earliest = min(firsts) if firsts else _from_ms(found.get("creationTime"))
    if earliest is None or earliest > window.start:
        since = earliest.date().isoformat() if earliest else "an unknown date"
        return Coverage(True, False, f"{group} holds events only since {since}", earliest)
    return Coverage(True, True, "", earliest)


@dataclass
class QueryStats:
    queries: int = 0
    truncated: bool = False  # a window of one minute still had 10,000 rows


def run_query(
    logs: Any,
    group: str,
    window: Window,
    query: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    stats: QueryStats | None = None,
) -> list[dict[str, str]]:
    """One Logs Insights query's rows (field → value), polled until it completes."""
    with translate_errors(f"log group {group}"):
        query_id = logs.start_query(
            logGroupName=group,
            startTime=int(window.start.timestamp()),
            endTime=int(window.end.timestamp()) + 1,
            queryString=query,
            limit=QUERY_ROW_LIMIT,
        )["queryId"]
    if stats is not None:
        stats.queries += 1
    deadline = clock() + QUERY_TIMEOUT_SECONDS
    while True:
        with translate_errors(f"log group {group}"):
            answer = logs.get_query_results(queryId=query_id)
        status = answer.get("status")
        if status == "Complete":
            return [
                {f["field"]: f.get("value", "") for f in row if "field" in f}
                for row in answer.get("results", [])
            ]
        if status in ("Failed", "Cancelled", "Timeout", "Unknown"):
            raise AwsError(
                f"The Logs Insights query on {group} ended {status}.",
                "Re-run the command; `--source lookup` reads CloudTrail LookupEvents instead.",
            )
        if clock() > deadline:
            # Not stopped (logs:StopQuery would be one more permission): Insights ends
            # it after 60 minutes on its own.
            raise AwsError(
                f"The Logs Insights query on {group} did not finish in "
                f"{QUERY_TIMEOUT_SECONDS // 60} minutes.",
                "Re-run with fewer --days, or `--source lookup`.",
            )
        sleep(QUERY_POLL_SECONDS)


def insights_sign_ins(
    logs: Any,
    group: str,
    window: Window,
    *,
    sleep: Callable[[float], None] = time.sleep,
    stats: QueryStats | None = None,
) -> list[SignIn]:
    """Every sign-in in the log group within the window: one query, or halves of it when
    a query comes back full (10,000 rows)."""
    stats = stats if stats is not None else QueryStats()
    rows = run_query(logs, group, window, SIGN_IN_QUERY, sleep=sleep, stats=stats)
    if len(rows) >= QUERY_ROW_LIMIT:
        if window.end - window.start > SMALLEST_SPLIT:
            middle = window.start + (window.end - window.start) / 2
            halves = [
                *insights_sign_ins(
                    logs, group, Window(window.start, middle), sleep=sleep, stats=stats
                ),
                *insights_sign_ins(
                    logs, group, Window(middle, window.end), sleep=sleep, stats=stats
                ),
            ]
            return _once_each(halves)
        stats.truncated = True
    found = []
    for row in rows:
        try:
            record = json.loads(row.get("@message", ""))
        except json.JSONDecodeError:
            continue
        sign_in = parse_sign_in(record) if isinstance(record, Mapping) else None
        # Log event times are delivery times: keep the sign-ins that happened in it.
        if sign_in is not None and window.holds(sign_in.event_time):
            found.append(sign_in)
    return _once_each(found)


def _once_each(sign_ins: list[SignIn]) -> list[SignIn]:
    """Halves share their boundary second (Insights' end time is inclusive): once each."""
    return list({s.event_id or str(id(s)): s for s in sign_ins}.values())


@dataclass
class KeyRows:
    rows: list[dict[str, Any]]
    # The endpoint ran the query without evaluating it (no `calls` field: an emulator).
    evaluated: bool = True
    truncated: bool = False


_INSIGHTS_TIME = "%Y-%m-%d %H:%M:%S.%f"


def _insights_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.strptime(value, _INSIGHTS_TIME).replace(tzinfo=UTC)
    except ValueError:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            return None


def key_calls(
    logs: Any, group: str, window: Window, *, sleep: Callable[[float], None] = time.sleep
) -> KeyRows:
    """Calls signed with long-term keys, per key, principal and address, counted by the
    query itself (every call of the window would be far more than 10,000 rows)."""
    rows = run_query(logs, group, window, KEY_QUERY, sleep=sleep)
    if rows and not any("calls" in r for r in rows):
        return KeyRows([], evaluated=False)
    parsed = []
    for row in rows:
        try:
            calls = int(float(row.get("calls", "0")))
        except ValueError:
            calls = 0
        parsed.append(
            {**row, "calls": calls, "first": _insights_time(row.get("first")),
             "last": _insights_time(row.get("last"))}
        )  # fmt: skip
    return KeyRows(parsed, truncated=len(rows) >= QUERY_ROW_LIMIT)
