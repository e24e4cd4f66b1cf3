"""The self-check: EventBridge Scheduler's ``{"loginwatch": "self-check"}`` (or `loginwatch
test-alert --via self-check`'s, with ``"requested_by": "test-alert"``).

Each run checks what can silence loginwatch (self_check.py), compares it with the last
run's state (self_check_state.py) and posts only what changed: new problems (every
current one listed, critical) or recovery (low). The state is written before posting,
on the condition that no other run wrote it since this one read it: of two overlapping
runs one posts. A post that fails puts the old problems back, so the next run posts
the change again (a repeat beats a miss). A destination whose webhook is what broke is
left out; if that leaves nobody, the heartbeat (0) and its alarm speak instead.

After every run: the heartbeat metric (1 healthy, 0 not) and, healthy with a heartbeat
URL, a ping of the dead-man's switch. Once an ISO week (``weekly_summary``), the first
run after Monday 00:00 UTC posts what the week before saw.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from .. import aws_clients
from ..calls import HEARTBEAT, HEARTBEAT_URL, OWN_LOG_EVENTS, Call
from ..claims import ClaimError
from ..context import Context, Outcome
from ..dispatch import Notice, Sent, deliver
from ..events import CONSOLE_LOGIN_FILTER, sign_ins_from_log_events, unique_newest_first
from ..protocol import (
    HEARTBEAT_DIMENSION,
    HEARTBEAT_METRIC,
    HEARTBEAT_NAMESPACE,
    SELF_CHECK_EVENT,
)
from ..routing import Destination
from ..self_check import UNKNOWN, Finding, heartbeat_urls, run_checks
from ..self_check_message import WeekSeen, build_self_check_message, build_weekly_summary
from ..self_check_spec import SelfCheckSettings
from ..self_check_state import (
    Problem,
    State,
    iso,
    iso_week,
    read_state,
    write_state,
)

CALLS = (
    Call("cloudwatch", "PutMetricData", HEARTBEAT),
    Call("ssm", "GetParameter", HEARTBEAT_URL),
    Call("logs", "FilterLogEvents", OWN_LOG_EVENTS),
)

RULE = "self_check"  # how its messages are routed (no rule of that name selects them)
# Of the run's time, the checks take at most this much; the rest is for posting.
CHECK_SECONDS = 15.0
POST_RESERVE_SECONDS = 12.0
PING_TIMEOUT_SECONDS = 5.0
SUMMARY_PAGES = 10  # FilterLogEvents pages (10,000 events each) per log group and summary
# The notifier's own log lines that posted an alert: one per invocation, JSON.
POSTED_FILTER = '{ ($.loginwatch = "notifier") && ($.outcome = "posted") }'

# Tests replace this: the ping's GET.
_urlopen: Callable[..., Any] = urllib.request.urlopen


def recognises(event: Any) -> bool:
    return isinstance(event, Mapping) and event.get("loginwatch") == SELF_CHECK_EVENT["loginwatch"]


def handle(event: Mapping[str, Any], ctx: Context) -> Outcome:
    spec = ctx.settings.self_check
    if spec is None:
        return Outcome("ignored", reason="the self-check is off (settings have no self_check)")
    requested_by = event.get("requested_by")
    return run(spec, ctx, requested_by if isinstance(requested_by, str) else None)


def run(spec: SelfCheckSettings, ctx: Context, requested_by: str | None) -> Outcome:
    now = ctx.now()
    notes: list[str] = []
    table, dynamodb = ctx.settings.claims_table, ctx.client("dynamodb")
    try:
        previous: State | None = read_state(dynamodb, table)
    except ClaimError as error:
        previous = None
        notes.append(f"state not read ({error}): a broken verdict is posted on every run")
    seconds = min(CHECK_SECONDS, ctx.remaining_seconds() - POST_RESERVE_SECONDS)
    findings = run_checks(
        spec.checks,
        client=aws_clients.client,
        webhook_url=ctx.webhook_url,
        now=now,
        seconds=seconds,
        ssm_region=ctx.settings.region,
    )
    before = previous or State()
    problems = current_problems(findings, before, now)
    ids = {p.id for p in problems}
    new_ids = ids - before.problem_ids()
    cleared = [p for p in before.problems if p.id not in ids]
    week = iso_week(now)
    summary_due = bool(spec.weekly_summary and before.recorded and before.last_summary != week)
    state = before.after_run(now, problems)
    state = replace(
        state, last_summary=week if summary_due or not before.last_summary else before.last_summary
    )
    won = False
    if previous is not None:
        try:
            won = write_state(dynamodb, table, state, previous)
        except ClaimError as error:
            previous = None
            notes.append(f"state not recorded ({error})")
        else:
            if not won:
                notes.append("another run recorded the state meanwhile: it posts any change")
    skipped = sorted({f.destination for f in findings if f.broken and f.destination})
    if skipped:
        notes.append(f"not posted to {', '.join(skipped)}: its webhook is broken")
    change = bool(new_ids or cleared) if previous is not None else bool(problems)
    sent = Sent()
    if change and (won or previous is None):
        severity = "critical" if problems and (new_ids or previous is None) else "low"
        _deliver_change(ctx, problems, new_ids, cleared, now, severity, skipped, requested_by, sent)
    summary_posted = False
    if summary_due and won:
        summary_posted = _deliver_summary(ctx, state, now, skipped, sent, notes)
    if sent.failed:
        notes.append("; ".join(f"{name}: {type(e).__name__}: {e}" for name, e in sent.failed))
        if won:
            _roll_back(dynamodb, table, state, before, summary_due, notes)
    healthy = not problems
    heartbeat = _heartbeat(ctx, healthy, notes)
    if healthy and spec.heartbeat_parameter:
        _ping(ctx, spec.heartbeat_parameter, notes)
    unknown = [{"id": f.id, "what": f.what} for f in findings if f.status == UNKNOWN]
    return Outcome(
        "posted" if sent.messages else "checked",
        len(problems),
        reason="; ".join(notes) or None,
        slack_status=sent.slack_status,
        extra={
            "verdict": state.verdict,
            "problems": [p.to_dict() for p in problems],
            "checked": len(findings),
            "could_not_tell": unknown,
            "new": sorted(new_ids),
            "recovered": [p.id for p in cleared],
            "posted": bool(sent.messages),
            "summary_posted": summary_posted,
            "heartbeat": heartbeat,
            "checked_at": state.checked_at,
            **({"requested_by": requested_by} if requested_by else {}),
        },
    )


def current_problems(findings: Sequence[Finding], before: State, now: datetime) -> list[Problem]:
    """What is broken now: each broken finding (since when it was first seen), and a
    problem of the last run that this run could not tell about (one doubt is no fix)."""
    known = {p.id: p for p in before.problems}
    problems = []
    for finding in findings:
        if finding.broken:
            since = known[finding.id].since if finding.id in known else iso(now)
            problems.append(Problem(finding.id, finding.what, since, finding.fix))
        elif finding.status == UNKNOWN and finding.id in known:
            problems.append(known[finding.id])
    return problems


def _open_destinations(wanted: Sequence[Destination], skipped: Sequence[str]) -> tuple[str, ...]:
    return tuple(d.name for d in wanted if d.name not in skipped)


def _deliver_change(
    ctx: Context,
    problems: Sequence[Problem],
    new_ids: set[str],
    cleared: Sequence[Problem],
    now: datetime,
    severity: str,
    skipped: Sequence[str],
    requested_by: str | None,
    sent: Sent,
) -> None:
    def compose(destination: Destination) -> dict[str, Any]:
        return build_self_check_message(
            deployment=ctx.settings.name,
            problems=problems,
            new_ids=new_ids,
            cleared=cleared,
            now=now,
            mention=destination.mention if severity == "critical" else "",
            requested_by=requested_by,
        )

    # Every destination: whatever each one watches, it cannot if loginwatch is broken.
    where = _open_destinations(ctx.routes.all, skipped)
    _merge(sent, deliver([Notice((), (RULE,), severity, "", compose, destinations=where)], ctx))


def _deliver_summary(
    ctx: Context, state: State, now: datetime, skipped: Sequence[str], sent: Sent, notes: list[str]
) -> bool:
    monday = (now - timedelta(days=now.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    start = monday - timedelta(days=7)
    seen = week_seen(ctx, state, start, monday, notes)

    def compose(destination: Destination) -> dict[str, Any]:
        return build_weekly_summary(seen, deployment=ctx.settings.name)

    where = _open_destinations(ctx.routes.targets((RULE,), "low"), skipped)
    if not where:
        return False
    summary = deliver([Notice((), (RULE,), "low", "", compose, destinations=where)], ctx)
    _merge(sent, summary)
    return bool(summary.messages)


def week_seen(
    ctx: Context, state: State, start: datetime, end: datetime, notes: list[str]
) -> WeekSeen:
    """The week from ``start`` to ``end``: the self-check's counts (the state keeps the
    week before's), the console sign-ins from the trail's log group (the same
    FilterLogEvents the alarm path reads, filtered to ConsoleLogin by CloudWatch, so a
    week costs a few pages) and the alerts posted, from the notifier's own log lines
    (small: one line per invocation)."""
    week = iso_week(start)
    runs, healthy = (
        (state.previous_runs, state.previous_healthy_runs)
        if state.previous_week == week
        else (0, 0)
    )
    logs = ctx.client("logs")
    window = (int(start.timestamp() * 1000), int(end.timestamp() * 1000))
    try:
        events, complete = _filter(
            ctx, logs, ctx.settings.trail_log_group, CONSOLE_LOGIN_FILTER, window
        )
    except Exception as error:
        notes.append(f"the week's sign-ins were not read: {type(error).__name__}")
        events, complete = [], False
    sign_ins = unique_newest_first(sign_ins_from_log_events(events))
    alerts: int | None = None
    own = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
    if own:
        try:
            lines, _ = _filter(ctx, logs, own, POSTED_FILTER, window)
            alerts = sum(1 for line in lines if _is_alert_line(line.get("message", "")))
        except Exception as error:
            notes.append(f"the week's alerts were not counted: {type(error).__name__}")
    outside = frozenset(s.source_ip for s in sign_ins if not ctx.allowlist.contains(s.source_ip))
    return WeekSeen(week, runs, healthy, sign_ins, complete, alerts, outside)


def _is_alert_line(message: str) -> bool:
    """A posted alert's line; the self-check's own posts (they carry a verdict) are not."""
    try:
        record = json.loads(message)
    except (TypeError, ValueError):
        return False
    return isinstance(record, dict) and "verdict" not in record


def _filter(
    ctx: Context, logs: Any, group: str, pattern: str, window: tuple[int, int]
) -> tuple[list[dict[str, Any]], bool]:
    """Matching events of ``group`` in ``window``; False when it stopped early (the page
    cap, or too little of the run left)."""
    request: dict[str, Any] = {
        "logGroupName": group,
        "startTime": window[0],
        "endTime": window[1],
        "filterPattern": pattern,
    }
    found: list[dict[str, Any]] = []
    for _ in range(SUMMARY_PAGES):
        if ctx.remaining_seconds() < POST_RESERVE_SECONDS:
            return found, False
        answer = logs.filter_log_events(**request)
        found.extend(answer.get("events", []))
        if not answer.get("nextToken"):
            return found, True
        request["nextToken"] = answer["nextToken"]
    return found, False


def _merge(into: Sent, sent: Sent) -> None:
    into.messages += sent.messages
    into.slack_status = sent.slack_status if sent.slack_status is not None else into.slack_status
    into.failed.extend(sent.failed)
    into.notes.extend(sent.notes)


def _roll_back(
    dynamodb: Any, table: str, state: State, before: State, summary_due: bool, notes: list[str]
) -> None:
    """A post failed: the state says the last problems again (and the summary is not
    done), so the next run posts the change again."""
    undone = replace(
        state,
        problems=before.problems,
        last_summary=before.last_summary if summary_due else state.last_summary,
    )
    try:
        if write_state(dynamodb, table, undone, state):
            notes.append("the next run posts it again")
    except ClaimError as error:
        notes.append(f"not undone ({error})")


def _heartbeat(ctx: Context, healthy: bool, notes: list[str]) -> bool:
    try:
        ctx.client("cloudwatch").put_metric_data(
            Namespace=HEARTBEAT_NAMESPACE,
            MetricData=[
                {
                    "MetricName": HEARTBEAT_METRIC,
                    "Dimensions": [{"Name": HEARTBEAT_DIMENSION, "Value": ctx.settings.name}],
                    "Value": 1.0 if healthy else 0.0,
                    "Unit": "Count",
                }
            ],
        )
    except Exception as error:
        notes.append(f"heartbeat not published ({type(error).__name__}): its alarm will say so")
        return False
    return True


def _ping(ctx: Context, parameter: str, notes: list[str]) -> None:
    """GET the dead-man's switch. The URL is a secret: never in a note."""
    try:
        if parameter not in heartbeat_urls:
            answer = ctx.client("ssm").get_parameter(Name=parameter, WithDecryption=True)
            heartbeat_urls[parameter] = answer["Parameter"]["Value"].strip()
        url = heartbeat_urls[parameter]
        if not url.startswith(("https://", "http://")):
            raise ValueError("the heartbeat URL is not an http(s) URL")
        timeout = max(min(PING_TIMEOUT_SECONDS, ctx.remaining_seconds() - 1), 0.5)
        request = urllib.request.Request(url, headers={"User-Agent": "loginwatch"})
        with _urlopen(request, timeout=timeout) as response:
            response.read(256)
    except Exception as error:
        reason = getattr(error, "reason", None) or getattr(error, "code", None) or ""
        notes.append(f"heartbeat ping failed: {type(error).__name__} {reason}".rstrip())
