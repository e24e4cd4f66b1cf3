"""The self-check's memory: one item in the claims table, written only by a run that
read the one before it.

    eventId       "self-check#state" (no TTL attribute: it stays)
    checked_at    ISO 8601 UTC of the last run       (``loginwatch status`` shows it)
    verdict       "healthy" | "broken"               (``loginwatch status`` shows it)
    problems      [{id, what, since, fix}]           what was broken at the last run
    runs, healthy_runs, week                         this ISO week's runs ("2026-W49")
    previous_week, previous_runs, previous_healthy_runs   the week before's, for its summary
    last_summary  ISO week of the last weekly summary

A run writes it on the condition that ``checked_at`` is still what it read: of two
overlapping runs only one records (and so posts) a change; the other posts nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from .claims import KEY, ClaimError, error_code
from .protocol import SELF_CHECK_STATE_KEY

HEALTHY, BROKEN = "healthy", "broken"


@dataclass(frozen=True)
class Problem:
    id: str
    what: str
    since: str  # ISO 8601 UTC: the first run that saw it
    fix: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "what": self.what, "since": self.since, "fix": self.fix}


@dataclass(frozen=True)
class State:
    checked_at: str = ""  # "": no run recorded yet
    verdict: str = ""
    problems: tuple[Problem, ...] = ()
    runs: int = 0
    healthy_runs: int = 0
    week: str = ""
    previous_week: str = ""
    previous_runs: int = 0
    previous_healthy_runs: int = 0
    last_summary: str = ""

    @property
    def recorded(self) -> bool:
        return bool(self.checked_at)

    def problem_ids(self) -> set[str]:
        return {p.id for p in self.problems}

    def after_run(self, now: datetime, problems: Sequence[Problem]) -> State:
        """This state with one more run, at ``now``, that found ``problems``."""
        healthy = not problems
        week = iso_week(now)
        counts = replace(self)
        if self.week != week:  # a new week: the one before is kept for its summary
            counts = replace(
                self,
                previous_week=self.week,
                previous_runs=self.runs,
                previous_healthy_runs=self.healthy_runs,
                runs=0,
                healthy_runs=0,
                week=week,
            )
        return replace(
            counts,
            checked_at=iso(now),
            verdict=HEALTHY if healthy else BROKEN,
            problems=tuple(problems),
            runs=counts.runs + 1,
            healthy_runs=counts.healthy_runs + (1 if healthy else 0),
        )


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def iso_week(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def read_state(dynamodb: Any, table: str) -> State:
    try:
        item = dynamodb.get_item(
            TableName=table, Key={KEY: {"S": SELF_CHECK_STATE_KEY}}, ConsistentRead=True
        ).get("Item")
    except Exception as error:
        raise ClaimError(f"reading the self-check's state: {error}") from error
    return from_item(item or {})


def write_state(dynamodb: Any, table: str, state: State, expected: State) -> bool:
    """Record ``state`` if the stored one is still ``expected``; False when another run
    recorded one in between (it posts what changed; this run does not)."""
    condition = "checked_at = :expected" if expected.recorded else f"attribute_not_exists({KEY})"
    values = {":expected": {"S": expected.checked_at}} if expected.recorded else None
    request: dict[str, Any] = {
        "TableName": table,
        "Item": to_item(state),
        "ConditionExpression": condition,
    }
    if values:
        request["ExpressionAttributeValues"] = values
    try:
        dynamodb.put_item(**request)
    except Exception as error:
        if error_code(error) == "ConditionalCheckFailedException":
            return False
        raise ClaimError(f"recording the self-check's state: {error}") from error
    return True


def to_item(state: State) -> dict[str, Any]:
    return {
        KEY: {"S": SELF_CHECK_STATE_KEY},
        "checked_at": {"S": state.checked_at},
        "verdict": {"S": state.verdict},
        "problems": {
            "L": [{"M": {k: {"S": v} for k, v in p.to_dict().items()}} for p in state.problems]
        },
        "runs": {"N": str(state.runs)},
        "healthy_runs": {"N": str(state.healthy_runs)},
        "week": {"S": state.week},
        "previous_week": {"S": state.previous_week},
        "previous_runs": {"N": str(state.previous_runs)},
        "previous_healthy_runs": {"N": str(state.previous_healthy_runs)},
        "last_summary": {"S": state.last_summary},
    }


def from_item(item: Mapping[str, Any]) -> State:
    def text(key: str) -> str:
        value = item.get(key, {}).get("S")
        return value if isinstance(value, str) else ""

    def number(key: str) -> int:
        try:
            return int(item.get(key, {}).get("N", "0"))
        except (TypeError, ValueError):
            return 0

    problems = []
    for entry in item.get("problems", {}).get("L", []):
        fields = entry.get("M", {}) if isinstance(entry, Mapping) else {}
        values = {k: fields.get(k, {}).get("S", "") for k in ("id", "what", "since", "fix")}
        if values["id"]:
            problems.append(Problem(**values))
    return State(
        checked_at=text("checked_at"),
        verdict=text("verdict"),
        problems=tuple(problems),
        runs=number("runs"),
        healthy_runs=number("healthy_runs"),
        week=text("week"),
        previous_week=text("previous_week"),
        previous_runs=number("previous_runs"),
        previous_healthy_runs=number("previous_healthy_runs"),
        last_summary=text("last_summary"),
    )
