"""The self-check's Slack messages: broken, recovered, and the weekly summary.

Pure: built from the self-check's problems and the week's counts, no I/O. Every text
is escaped for Slack, and each payload passes ``fit_to_slack`` on its way out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from .events import SignIn
from .routing import mention_markup
from .self_check_state import Problem, parse_iso
from .slack_message import escape, fit_to_slack, shorten

MAX_PROBLEMS_LISTED = 40  # one section each: within Slack's 50 blocks with the rest
MAX_ADDRESSES_LISTED = 15
_TEXT_LIMIT = 600


def _text(value: str, limit: int = _TEXT_LIMIT) -> str:
    """One line of our own wording or a resource name: shortened, then escaped."""
    return escape(shorten(" ".join(value.split()), limit))


def _plain(text: str) -> dict[str, object]:
    return {"type": "plain_text", "text": shorten(text, 150), "emoji": True}


def _section(text: str) -> dict[str, object]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict[str, object]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _when(iso_text: str) -> str:
    moment = parse_iso(iso_text)
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else (_text(iso_text) or "?")


def lasted(since: str, until: datetime) -> str:
    start = parse_iso(since)
    if start is None:
        return "for an unknown time"
    minutes = max(int((until - start).total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{mins} min"] if mins or not parts else []
    return "for " + " ".join(parts)


def _lead(mention: str, text: str) -> str:
    markup = mention_markup(mention)
    return f"{markup} {text}" if markup else text


def build_self_check_message(
    *,
    deployment: str,
    problems: Sequence[Problem],
    new_ids: set[str],
    cleared: Sequence[Problem],
    now: datetime,
    mention: str = "",
    requested_by: str | None = None,
) -> dict[str, object]:
    """What changed since the last self-check: every current problem (what, since when,
    how to fix; the new ones marked) and what recovered (and how long it lasted)."""
    by = " (run by `loginwatch test-alert`)" if requested_by else ""
    if new_ids:
        severity, icon = "critical", ":rotating_light:"
        headline = f"loginwatch is broken: {len(problems)} problem(s) found by its self-check"
    elif problems:
        severity, icon = "low", ":large_yellow_circle:"
        headline = f"loginwatch partly recovered: {len(cleared)} fixed, {len(problems)} left"
    else:
        severity, icon = "low", ":white_check_mark:"
        headline = "loginwatch recovered: every self-check passes again"
    blocks: list[dict[str, object]] = [
        {"type": "header", "text": _plain(f"{icon} {headline}")},
        _context(
            _lead(
                mention,
                f"*{severity.upper()}* · self-check of `{_text(deployment, 100)}` at "
                f"{now.strftime('%Y-%m-%d %H:%M UTC')}{by}",
            )
        ),
    ]
    shown = list(problems)[:MAX_PROBLEMS_LISTED]
    for problem in shown:
        mark = ":new: " if problem.id in new_ids else ""
        blocks.append(
            _section(
                f"{mark}*{_text(problem.what)}*\n"
                f"_Since {_when(problem.since)}_ · `{_text(problem.id, 150)}`\n"
                f"*Fix:* {_text(problem.fix)}"
            )
        )
    if len(problems) > len(shown):
        blocks.append(_context(f"…and {len(problems) - len(shown)} more problem(s) not listed."))
    if cleared:
        lines = [
            f":white_check_mark: {_text(p.what, 300)} — fixed, broken {lasted(p.since, now)} "
            f"(since {_when(p.since)})"
            for p in cleared
        ]
        blocks.append(_section("*Recovered:*\n" + "\n".join(lines)))
    blocks.append(
        _context("Until it is fixed, alerts may not reach you. `loginwatch status` shows more.")
        if problems
        else _context("loginwatch can alert again. `loginwatch status` shows the details.")
    )
    text = f"[{severity.upper()}] {_text(headline)}"
    if problems:
        text += ": " + "; ".join(_text(p.what, 200) for p in shown[:3])
    return fit_to_slack(
        {
            "text": _lead(mention, text),
            "blocks": blocks,
            "unfurl_links": False,
            "unfurl_media": False,
        }
    )


@dataclass(frozen=True)
class WeekSeen:
    """What the weekly summary says about one ISO week."""

    week: str
    runs: int
    healthy_runs: int
    sign_ins: Sequence[SignIn]
    sign_ins_complete: bool  # False: the log search stopped early (a lower bound)
    alerts_posted: int | None  # messages the notifier posted; None: not known
    outside: frozenset[str]  # the sign-ins' addresses outside the allowlist


def build_weekly_summary(
    seen: WeekSeen, *, deployment: str, mention: str = ""
) -> dict[str, object]:
    """The week: the self-check's runs and how many passed, the sign-ins and alerts and
    the addresses they came from."""
    if not seen.runs:
        checks = ":warning: the self-check did not run at all this week"
    elif seen.healthy_runs == seen.runs:
        checks = f":white_check_mark: {seen.runs} self-check run(s), every check passed each time"
    else:
        checks = (
            f":warning: {seen.runs} self-check run(s), {seen.runs - seen.healthy_runs} of them "
            "found a problem"
        )
    at_least = "" if seen.sign_ins_complete else "at least "
    successes = sum(1 for s in seen.sign_ins if s.success)
    sign_in_line = (
        f"*Console sign-ins:* {at_least}{len(seen.sign_ins)} "
        f"({successes} succeeded, {len(seen.sign_ins) - successes} failed)"
    )
    alerts = (
        "*Alerts posted:* not counted (the notifier's log could not be read)"
        if seen.alerts_posted is None
        else f"*Alerts posted:* {seen.alerts_posted}"
    )
    by_address: dict[str, list[SignIn]] = {}
    for sign_in in seen.sign_ins:
        by_address.setdefault(sign_in.source_ip or "?", []).append(sign_in)
    ranked = sorted(by_address.items(), key=lambda item: (-len(item[1]), item[0]))
    lines = []
    for address, sign_ins in ranked[:MAX_ADDRESSES_LISTED]:
        who = sorted({s.user_name or s.arn.rsplit("/", 1)[-1] or "root" for s in sign_ins})
        names = ", ".join(_text(w, 60) for w in who[:5]) + (" …" if len(who) > 5 else "")
        flag = " :warning: outside the allowlist" if address in seen.outside else ""
        lines.append(f"`{_text(address, 60)}` — {len(sign_ins)} sign-in(s): {names}{flag}")
    if len(ranked) > MAX_ADDRESSES_LISTED:
        lines.append(f"…and {len(ranked) - MAX_ADDRESSES_LISTED} more address(es)")
    blocks: list[dict[str, object]] = [
        {
            "type": "header",
            "text": _plain(f":bar_chart: loginwatch: the week {shorten(seen.week, 20)}"),
        },
        _context(_lead(mention, f"Weekly summary of `{_text(deployment, 100)}`")),
        _section(f"{checks}\n{sign_in_line}\n{alerts}"),
    ]
    if lines:
        blocks.append(_section("*Addresses:*\n" + "\n".join(lines)))
    text = (
        f"loginwatch weekly summary {_text(seen.week, 20)}: {seen.runs} self-check run(s), "
        f"{seen.healthy_runs} healthy; {at_least}{len(seen.sign_ins)} sign-in(s) from "
        f"{len(by_address)} address(es)"
    )
    return fit_to_slack(
        {
            "text": _lead(mention, text),
            "blocks": blocks,
            "unfurl_links": False,
            "unfurl_media": False,
        }
    )
