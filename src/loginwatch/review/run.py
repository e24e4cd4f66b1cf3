"""`loginwatch review`: read the history, judge it with the notifier's rules, suggest.

The order: names and the trail's log group (engine.review_deployment), the enabled
regions, then the sign-ins — one Logs Insights query when the log group holds the
whole window, else LookupEvents in every enabled region — judged (judge.py) and
turned into suggestions (suggest.py); then, where the log group exists, the
long-term-key API calls. Nothing here prints: render.py shows what ``Review`` holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .. import engine
from ..aws import Aws
from ..config import Config
from ..errors import UsageError
from ..notifier.settings import Settings
from ..resources import base
from . import history
from .history import Coverage, LookupProgress, Window
from .judge import PrincipalRow, Verdict, judge, principal_rows
from .limiter import RateLimiter
from .location import where
from .suggest import (
    ExceptSuggestion,
    KeyUse,
    NotSuggested,
    Suggestion,
    judge_key_use,
    suggest_exceptions,
    suggest_networks,
)

MAX_DAYS = 90  # what LookupEvents keeps
SOURCES = ("auto", "logs", "lookup")
NO_LOG_GROUP_KEYS = (
    "API calls signed with long-term keys were not reviewed: the trail has no CloudWatch "
    "Logs group to query, and LookupEvents (50 events a request, 2 requests a second per "
    "region) cannot scan every API call of {days} days in reasonable time. `loginwatch "
    "setup` creates the trail's log group (or name, in trail.existing, a trail that "
    "already delivers to CloudWatch Logs); its history starts then."
)


@dataclass
class KeyReview:
    """The access-key part: rows per key, user and address; suggested except entries."""

    reviewed: bool
    note: str = ""
    uses: list[KeyUse] = field(default_factory=list)
    suggestions: list[ExceptSuggestion] = field(default_factory=list)
    rule_on: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "reviewed": self.reviewed,
            "note": self.note or None,
            "rule_enabled": self.rule_on,
            "rows": [u.to_json() for u in self.uses],
            "suggested_except": [s.to_json() for s in self.suggestions],
        }


@dataclass
class Review:
    window: Window
    source: str  # "logs" or "lookup"
    source_text: str  # which, said in words (and why not the other)
    log_group: str
    regions: list[str]
    requests: dict[str, int]
    verdicts: list[Verdict]
    rows: list[PrincipalRow]
    suggestions: list[Suggestion]
    not_suggested: list[NotSuggested]
    keys: KeyReview
    queries: int = 0
    truncated: bool = False
    seconds: float = 0.0

    @property
    def alerted(self) -> int:
        return sum(1 for v in self.verdicts if v.alerted)

    def to_json(self) -> dict[str, Any]:
        return {
            "window": {
                "start": self.window.start.isoformat(),
                "end": self.window.end.isoformat(),
                "days": self.window.days,
            },
            "source": self.source,
            "source_text": self.source_text,
            "log_group": self.log_group or None,
            "regions": self.regions,
            "requests": self.requests,
            "logs_insights_queries": self.queries,
            "truncated": self.truncated,
            "sign_ins": len(self.verdicts),
            "would_have_alerted": self.alerted,
            "principals": [r.to_json() for r in self.rows],
            "sign_in_verdicts": [v.to_json() for v in self.verdicts],
            "suggestions": [s.to_json() for s in self.suggestions],
            "not_suggested": [n.to_json() for n in self.not_suggested],
            "access_keys": self.keys.to_json(),
        }


def review(
    config: Config,
    aws: Aws,
    *,
    days: int = 30,
    source: str = "auto",
    progress: LookupProgress | None = None,
    on_source: Callable[[str, list[str]], None] | None = None,
    now: datetime | None = None,
    limiter_for: Callable[[str], RateLimiter] = lambda _region: RateLimiter(),
    sleep: Callable[[float], None] = time.sleep,
) -> Review:
    """The whole review. ``on_source(source, regions)`` is told the source before the
    reading starts (the CLI starts its progress bar then)."""
    if source not in SOURCES:
        raise UsageError(f"--source {source}: give one of {', '.join(SOURCES)}.")
    if not 1 <= days <= MAX_DAYS:
        raise UsageError(f"--days {days}: CloudTrail keeps {MAX_DAYS} days; give 1 to {MAX_DAYS}.")
    started = time.monotonic()
    window = Window.last_days(days, now or datetime.now(UTC))
    deployment = engine.review_deployment(config, aws)
    group = deployment.trail_log_group
    settings: Settings = engine.notifier_settings(config, deployment.names, group or "-")
    logs = aws.client("logs")
    # Read even with --source lookup: the access-key review needs to know the group.
    coverage = history.log_group_coverage(logs, group, window)
    if source == "logs" and not coverage.covers:
        raise UsageError(
            f"--source logs: {coverage.reason}.",
            "Leave --source out to read CloudTrail LookupEvents instead.",
        )
    regions: list[str] = []
    requests: dict[str, int] = {}
    stats = history.QueryStats()
    if coverage.covers and source != "lookup":
        used = "logs"
        text = f"one Logs Insights query on {group} (it holds the whole window)"
        if on_source is not None:
            on_source(used, [])
        sign_ins = history.insights_sign_ins(logs, group, window, sleep=sleep, stats=stats)
    else:
        used = "lookup"
        regions = sorted(base.enabled_regions(aws) | {config.region})
        why = f" ({coverage.reason})" if coverage.reason and source != "lookup" else ""
        why = " (--source lookup)" if source == "lookup" else why
        text = f"CloudTrail LookupEvents in {len(regions)} enabled regions{why}"
        if on_source is not None:
            on_source(used, regions)
        found = history.lookup_sign_ins(
            aws, regions, window, progress=progress, limiter_for=limiter_for
        )
        sign_ins, requests = found.sign_ins, found.requests
    verdicts = judge(sign_ins, settings)
    rows = principal_rows(verdicts)
    labels = {str(e.network): e.label for e in config.allowed if e.label}
    for row in rows:
        for address in row.addresses.values():
            address.location = where(address.ip, labels)  # location.py: the one call site
    suggestions, not_suggested = suggest_networks(verdicts)
    keys = _review_keys(config, settings, logs, group, coverage, window, sleep)
    return Review(
        window=window,
        source=used,
        source_text=text,
        log_group=group if coverage.exists else "",
        regions=regions,
        requests=requests,
        verdicts=verdicts,
        rows=rows,
        suggestions=suggestions,
        not_suggested=not_suggested,
        keys=keys,
        queries=stats.queries,
        truncated=stats.truncated,
        seconds=time.monotonic() - started,
    )


def _review_keys(
    config: Config,
    settings: Settings,
    logs: Any,
    group: str,
    coverage: Coverage,
    window: Window,
    sleep: Callable[[float], None],
) -> KeyReview:
    rule = settings.rules.get("access_key_outside_allowlist")
    if not coverage.exists:
        return KeyReview(
            False, NO_LOG_GROUP_KEYS.format(days=window.days), rule_on=rule is not None
        )
    found = history.key_calls(logs, group, window, sleep=sleep)
    if not found.evaluated:
        return KeyReview(
            False,
            f"The endpoint ran the Logs Insights query on {group} without evaluating it "
            "(an emulator): no access-key rows to show.",
            rule_on=rule is not None,
        )
    exceptions = rule.exceptions if rule is not None else ()
    allowlist = settings.allow_list()
    uses = [judge_key_use(row, allowlist, exceptions) for row in found.rows]
    uses.sort(key=lambda u: (u.user, u.key, -u.calls))
    note = "" if coverage.covers else f"Only what the log group holds: {coverage.reason}."
    if found.truncated:
        note += " The query returned its limit of 10,000 rows: some were left out."
    return KeyReview(True, note.strip(), uses, suggest_exceptions(uses), rule_on=rule is not None)
