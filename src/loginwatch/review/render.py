"""What `review` shows: the reading's progress, per-principal rows, suggestions, keys.

Everything goes through ui.py's consoles (stdout for the report, stderr for progress),
so ``--json`` keeps stdout for the one JSON object and the bar never lands in a pipe.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import ui
from .run import Review
from .suggest import Suggestion

_ADDRESSES_SHOWN = 4


class LookupBar:
    """A progress bar over the regions LookupEvents reads (stderr; silent if not a tty)."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("regions · {task.fields[found]} sign-ins · {task.fields[pages]} requests"),
            TimeElapsedColumn(),
            console=ui.err,
            transient=True,
        )
        self._task = self._progress.add_task(
            "LookupEvents", total=1, found=0, pages=0, visible=False
        )
        self._lock = threading.Lock()
        self._found = 0
        self._pages = 0

    def start(self, source: str, regions: list[str]) -> None:
        if source == "lookup":
            self._progress.update(self._task, total=len(regions), visible=True)
            self._progress.start()
        else:
            ui.err.print("[dim]Querying the trail's log group (Logs Insights) …[/]")

    def page(self, region: str, events: int) -> None:
        with self._lock:
            self._found += events
            self._pages += 1
            self._progress.update(self._task, found=self._found, pages=self._pages)

    def region_done(self, region: str) -> None:
        self._progress.advance(self._task)

    def __enter__(self) -> LookupBar:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()


def render(result: Review) -> None:
    out = ui.out
    w = result.window
    out.print(
        f"Console sign-ins {w.start:%Y-%m-%d} → {w.end:%Y-%m-%d} ({w.days} days), "
        f"read from {escape(result.source_text)}."
    )
    if result.truncated:
        ui.warn("a minute of the window held more than 10,000 sign-ins: some were left out.")
    if not result.verdicts:
        out.print("No console sign-ins in the window.")
    else:
        _principals(result)
        out.print(
            f"{len(result.verdicts)} sign-in(s) by {len(result.rows)} principal(s); "
            f"[bold]{result.alerted}[/] would have alerted with the current config."
        )
    _suggestions(result.suggestions)
    if result.not_suggested:
        out.print("\n[bold]Alerted, not suggested[/]")
        for item in result.not_suggested:
            out.print(f"  {item.network}: {escape(item.reason)}")
    _keys(result)


def _principals(result: Review) -> None:
    """One line per principal, then one per address it signed in from (with where it is)."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("principal / address", overflow="fold")
    table.add_column("sign-ins", justify="right")
    table.add_column("alerted", justify="right")
    table.add_column("MFA")
    table.add_column("seen", no_wrap=True)
    table.add_column("where / rules", overflow="fold")
    accounts = len({row.account for row in result.rows}) > 1  # organization mode
    for row in result.rows:
        failed = f" ({row.failures} failed)" if row.failures else ""
        where = f" [dim]in {row.account}[/]" if accounts else ""
        rules = ", ".join(f"{k} {v}" for k, v in row.rules.items())
        table.add_row(
            f"[bold]{escape(row.principal)}[/] [dim]{escape(row.identity_type)}[/]{where}",
            f"{row.sign_ins}{failed}",
            f"[red]{row.alerted}[/]" if row.alerted else "0",
            row.mfa,
            _span(row.first_seen, row.last_seen),
            f"[dim]{escape(rules)}[/]",
        )
        shown = list(row.addresses.values())[:_ADDRESSES_SHOWN]
        for address in shown:
            mark = " [green]✓[/]" if address.allowlisted else ""
            table.add_row(
                f"  {escape(address.ip)}{mark}",
                str(address.sign_ins),
                str(address.alerted),
                "",
                "",
                escape(address.location),
            )
        more = len(row.addresses) - len(shown)
        if more > 0:
            table.add_row(f"  [dim]… {more} more ({len(row.networks)} networks in all)[/]")
    ui.out.print(table)


def _span(first: datetime | None, last: datetime | None) -> str:
    """ "2026-11-12 → 12-06": the year once when both are in it."""
    if first is None or last is None:
        return "—"
    end = last.strftime("%m-%d" if last.year == first.year else "%Y-%m-%d")
    return f"{first:%Y-%m-%d} → {end}"


def _suggestions(suggestions: Sequence[Suggestion]) -> None:
    if not suggestions:
        ui.out.print("\nNo network to suggest: none looks like the team's own and alerted.")
        return
    ui.out.print("\n[bold]Suggested for allowed_ips[/] (`--write` adds them, asking first)")
    for suggestion in suggestions:
        ui.out.print(f"  {escape(suggestion.text)}")


def _keys(result: Review) -> None:
    keys = result.keys
    ui.out.print("\n[bold]API calls signed with long-term keys[/] (access_key_outside_allowlist"
                 + ("" if keys.rule_on else ", off in this config") + ")")  # fmt: skip
    if keys.note:
        ui.out.print(f"  {escape(keys.note)}")
    if not keys.reviewed:
        return
    if not keys.uses:
        ui.out.print("  None in the window.")
        return
    table = Table(pad_edge=False)
    for column in ("user", "key", "address", "calls", "would alert"):
        table.add_column(column, justify="right" if column == "calls" else "left")
    for use in keys.uses:
        verdict = "[red]yes[/]" if use.alerted else f"[dim]no: {escape(use.quiet_because or '')}[/]"
        table.add_row(escape(use.user), use.key, escape(use.ip), str(use.calls), verdict)
    ui.out.print(table)
    if keys.suggestions:
        ui.out.print("  Suggested `except` entries (rules.access_key_outside_allowlist.except):")
        for s in keys.suggestions:
            nets = ", ".join(s.networks)
            extra = (
                " (and more networks: consider whether `from: anywhere` is by design)"
                if s.too_many
                else ""
            )
            ui.out.print(
                f"    - {{user: {escape(s.user)}, from: [{nets}]}}  # {escape(s.evidence)}{extra}"
            )
