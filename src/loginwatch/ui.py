"""Rich rendering: everything the user sees goes through here."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .summary import ConfigSummary

if TYPE_CHECKING:
    from pathlib import Path

    from rich.status import Status

    from .alert_drill import DrillResult
    from .demo.run import SignInScenario
    from .engine import ResourceStatus, StatusReport, StepResult, TeardownItem
    from .pattern_check import Verdict
    from .redeliver import Redelivered
    from .resources.base import Resource
    from .summary import RuleRoute, Trigger

# Wrapped at the terminal's width, between words (at 80 columns no word is broken);
# what must stay copyable on one line (a command, the pattern) is printed soft_wrap=True.
out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # no hard wraps: paths stay copyable


def print_json(data: Any) -> None:
    # Plain print, not rich: scripts parse this, and rich would wrap long lines.
    print(json.dumps(data, indent=2, sort_keys=False, default=str))


def error(lines: list[str]) -> None:
    first, *rest = lines
    err.print(f"[bold red]Error:[/] {escape(first)}")
    for line in rest:
        err.print(f"  {escape(line)}")


def warn(message: str) -> None:
    err.print(f"[yellow]Warning:[/] {escape(message)}")


def render_summary(summary: ConfigSummary) -> None:
    config = summary.config
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("config", escape(config.path))
    table.add_row("region", config.region)
    table.add_row("name", config.name)
    table.add_row("webhook", escape(config.masked_webhook))
    labels = {str(e.network): e.label for e in config.allowed if e.label}
    allow = [f"{n}  [dim]{escape(labels[n])}[/]" if n in labels else n for n in summary.allowlist]
    table.add_row(f"allowlist ({len(summary.allowlist)})", "\n".join(allow))
    trail = f"reuse {config.existing_trail}" if config.existing_trail else "create a new trail"
    table.add_row("trail", escape(trail))
    table.add_row("fast path", escape(config.fast_path.describe))
    table.add_row("rules", "\n".join(_route_line(r) for r in summary.routes))
    org = config.organization
    if org.enabled:
        reach = "every account" if org.accounts is None else ", ".join(org.accounts)
        names = ", accounts named" if org.account_names else ""
        table.add_row("organization", escape(f"on: fast path in {reach}{names}"))
    for destination in config.destinations:
        mention = f", mentions @{destination.mention}" if destination.mention else ""
        table.add_row(
            f"destination {escape(destination.name)}",
            escape(f"{destination.masked_webhook}{mention}"),
        )
    if config.destinations:
        table.add_row(
            "default channel",
            "gets every message"
            if config.default_gets == "all"
            else "gets what no destination selects",
        )
    compiled = summary.compiled
    exact = "[green]exact[/]" if compiled.exact else "[yellow]over-matches (notifier re-checks)[/]"
    table.add_row("pattern", f"{compiled.length}/1024 characters, {exact}")
    if summary.key_rules:
        table.add_row("access-key rules", escape(summary.key_rules))
    out.print(table)
    out.print(escape(compiled.pattern), style="dim", soft_wrap=True)
    for warning in summary.warnings:
        warn(warning)
    for verdict in summary.ips:
        if verdict.alerts:
            out.print(f"[red]✗ {verdict.ip}[/]: a console sign-in from here would alert")
        elif any(t.rules for t in verdict.triggers):
            out.print(f"[green]✓ {verdict.ip}[/]: in the allowlist; other rules still apply")
        else:
            out.print(f"[green]✓ {verdict.ip}[/]: allowed, no alert")
        for trigger in verdict.triggers:
            out.print(f"    {escape(trigger.kind)}: {escape(_trigger_line(trigger))}")
        for key in verdict.keys:
            said = key.reason if key.alerts else f"no alert: {key.reason}"
            out.print(f"    API call with {escape(_key_owner(key.principal))}: {escape(said)}")


def _key_owner(principal: str) -> str:
    return principal if principal.startswith("an ") else f"{principal}'s key"


def _route_line(route: RuleRoute) -> str:
    rule = route.rule
    extra = f", {rule.threshold} within {rule.minutes} min" if rule.threshold else ""
    return escape(f"{rule.name} ({rule.severity}{extra}) → {', '.join(route.destinations)}")


def _trigger_line(trigger: Trigger) -> str:
    if not trigger.rules:
        return "no alert"
    from .notifier.rules import highest

    names = ", ".join(r.name for r in trigger.rules)
    return f"{names} ({highest(trigger.rules)}) → {', '.join(trigger.destinations)}"


def render_verdict(verdict: Verdict) -> None:
    """What AWS's own evaluation of the pattern (TestMetricFilter) said."""
    if verdict.unavailable:
        warn(f"Filter pattern not verified by AWS: {verdict.unavailable}.")
        return
    if verdict.safe:
        out.print(
            f"[green]✓ AWS agrees[/]: every one of {verdict.checked} sample sign-ins from "
            "outside the allowlist would alert (TestMetricFilter)."
        )
    for address in verdict.over_matched:
        out.print(f"[yellow]! {address}[/]: inside the allowlist, yet AWS counts it (harmless)")


# ---------------------------------------------------------------- setup progress

_ACTION_STYLE = {
    "create": ("+", "green", "created"),
    "update": ("~", "yellow", "updated"),
    "unchanged": ("=", "dim", "unchanged"),
    "in use": ("•", "cyan", "in use, not managed"),
    "unavailable": ("·", "dim", "skipped"),
    "remove": ("-", "red", "removed"),
}
_PLAN_WORD = {
    "create": "create",
    "update": "update",
    "unchanged": "unchanged",
    "in use": "use as is",
    "unavailable": "skip",
    "remove": "remove",
}


def regions_text(regions: list[str]) -> str:
    """One region by name; several as a count with the first few, for one compact line."""
    if len(regions) == 1:
        return regions[0]
    regions = sorted(regions)
    shown = ", ".join(regions[:3]) + (", …" if len(regions) > 3 else "")
    return f"{len(regions)} regions ({shown})"


T = TypeVar("T")


class _OfResource(Protocol):
    @property
    def resource(self) -> Resource: ...


R = TypeVar("R", bound=_OfResource)


def group_by_kind(
    items: Sequence[T], resource_of: Callable[[T], Resource], same: Callable[[T], object]
) -> list[list[T]]:
    """Consecutive items of one kind that agree (same(item) equal) form one group:
    "the same kind in 17 regions" reads as one line when nothing differs."""
    groups: list[list[T]] = []
    for item in items:
        previous = groups[-1][-1] if groups else None
        if (
            previous is not None
            and resource_of(previous).kind == resource_of(item).kind
            # One kind, several names (a filter per rule): each its own line.
            and resource_of(previous).name == resource_of(item).name
            and same(previous) == same(item)
        ):
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def _resource_line(
    style: str, symbol: str, group: Sequence[T], resource_of: Callable[[T], Resource]
) -> str:
    first = resource_of(group[0])
    where = regions_text([resource_of(i).region for i in group])
    return f"[{style}]{symbol} {first.label:<24}[/] {escape(first.name)}  [dim]{escape(where)}[/]"


class _RegionalLines(Generic[R]):
    """Prints results as they come; those outside the home region are held while they
    agree (same ``same(item)``) and printed as one line for the kind."""

    def __init__(self, print_group: Callable[[list[R]], None], same: Callable[[R], object]):
        self._print = print_group
        self._same = same
        self._held: list[R] = []

    def add(self, item: R) -> None:
        if self._held and self._same(self._held[0]) != self._same(item):
            self.flush()
        if item.resource.in_home_region:
            self.flush()
            self._print([item])
        else:
            self._held.append(item)

    def flush(self) -> None:
        if self._held:
            self._print(self._held)
            self._held = []


# The screen-sized view (the default): one line per kind of resource and state,
# whatever its regions ("forwarding rule  19 regions  ok"); --verbose lists by name.


@dataclass(frozen=True)
class Row:
    """One line of the summary view: resources of one kind that agree."""

    symbol: str
    style: str
    label: str
    regions: tuple[str, ...]
    word: str
    names: tuple[str, ...]
    details: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return self.regions[0] if len(self.regions) == 1 else f"{len(self.regions)} regions"

    @property
    def what(self) -> str:
        return self.label if len(self.names) == 1 else f"{self.label} ×{len(self.names)}"


def make_rows(
    items: Sequence[T],
    resource_of: Callable[[T], Resource],
    agree: Callable[[T], tuple[object, ...]],
    describe: Callable[[T], tuple[str, str, str, tuple[str, ...]]],
    *,
    by_name: Callable[[T], bool] = lambda _: False,
) -> list[tuple[Row, int]]:
    """Group items of one kind that ``agree`` (in their order of first appearance) into
    rows; ``describe(first)`` gives (symbol, style, word, details). A row of items that
    ``by_name`` (a problem) never merges names: each problem is named on its own line.
    Returns each row with the number of resources it stands for."""
    groups: dict[tuple[object, ...], list[T]] = {}
    for item in items:
        resource = resource_of(item)
        name = resource.name if by_name(item) else ""
        groups.setdefault((resource.label, name, *agree(item)), []).append(item)
    rows = []
    for group in groups.values():
        symbol, style, word, details = describe(group[0])
        resources = [resource_of(i) for i in group]
        row = Row(
            symbol,
            style,
            resources[0].label,
            tuple(sorted({r.region for r in resources})),
            word,
            tuple(dict.fromkeys(r.name for r in resources)),
            details,
        )
        rows.append((row, len(group)))
    return rows


def print_rows(rows: Sequence[Row], *, name_them: Callable[[Row], bool] = lambda _: False) -> None:
    """Rows in aligned columns, each on one line at 80 columns; a row's details (and, for
    a problem, its names and every region) on indented lines below it."""
    from rich.padding import Padding

    what_width = min(max((len(r.what) for r in rows), default=0), 34)
    where_width = max((len(r.where) for r in rows), default=0)
    for row in rows:
        out.print(
            f"[{row.style}]{row.symbol} {escape(row.what.ljust(what_width))}[/]  "
            f"{escape(row.where.ljust(where_width))}  [{row.style}]{escape(row.word)}[/]"
        )
        lines = list(row.details)
        if name_them(row):
            where = f" in {', '.join(row.regions)}" if len(row.regions) > 1 else ""
            named = ", ".join(row.names) + where
            lines = [f"{named}: {'; '.join(row.details)}" if row.details else named]
        for line in lines:
            out.print(Padding(f"[yellow]{escape(line)}[/]", (0, 0, 0, 4), expand=False))


def resource_total(resources: Sequence[Resource]) -> str:
    """'66 resources in 20 regions': what the lines stand for, each region counted."""
    regions = {r.region for r in resources}
    where = f" in {len(regions)} regions" if len(regions) > 1 else ""
    return f"{len(resources)} resource{'s' if len(resources) != 1 else ''}{where}"


class StepPrinter:
    """Setup's progress. By default a spinner while it works, then the summary: one line
    per kind and outcome, whatever its regions; what is unchanged is one line in all.

    verbose: one line per resource as it is settled; resources outside the home region
    (one kind in many regions) are held back while they agree, and printed as one line.
    """

    def __init__(self, *, dry_run: bool = False, verbose: bool = False) -> None:
        self.dry_run = dry_run
        self.verbose = verbose
        self._status: Status | None = None
        self._lines = _RegionalLines(self._print, lambda r: (r.resource.kind, r.action, r.changes))
        self._results: list[StepResult] = []

    def checking(self, resource: Resource) -> None:
        self._spin(f"Checking {resource.label} {escape(resource.name)} …")

    def start(self, resource: Resource) -> None:
        verb = "Checking" if self.dry_run else "Settling"
        self._spin(f"{verb} {resource.label} {escape(resource.name)} …")

    def _spin(self, text: str) -> None:
        if self._status is None:
            self._status = out.status(text)
            self._status.start()
        else:
            self._status.update(text)

    def done(self, result: StepResult) -> None:
        self._stop_spinner()
        if result.action == "none":
            return  # not asked for and not there: nothing to say
        if self.verbose:
            self._lines.add(result)
        else:
            self._results.append(result)

    def _print(self, group: list[StepResult]) -> None:
        first = group[0]
        symbol, style, word = _ACTION_STYLE[first.action]
        if self.dry_run:
            word = _PLAN_WORD[first.action]
        line = _resource_line(style, symbol, group, lambda r: r.resource)
        out.print(f"{line}  [{style}]{word}[/]")
        for change in first.changes:
            out.print(f"    [yellow]{escape(change)}[/]")

    def _stop_spinner(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def stop(self) -> None:
        self._stop_spinner()
        self._lines.flush()
        if not self.verbose:
            self._summary_lines()

    def _summary_lines(self) -> None:
        rows = setup_rows(self._results, self.dry_run)
        shown = [row for row, _ in rows if row.word != self._word("unchanged")]
        print_rows(shown)
        same = [row for row, _ in rows if row.word == self._word("unchanged")]
        if same:
            symbol, style, _ = _ACTION_STYLE["unchanged"]
            every = "all " if not shown else ""
            out.print(
                f"[{style}]{symbol} {every}{len(same)} {self._word('unchanged')}[/] "
                "[dim](--verbose lists them)[/]"
            )

    def _word(self, action: str) -> str:
        return _PLAN_WORD[action] if self.dry_run else _ACTION_STYLE[action][2]


def setup_rows(results: Sequence[StepResult], dry_run: bool) -> list[tuple[Row, int]]:
    """Setup's results as summary rows: one per kind, outcome and change."""

    def describe(result: StepResult) -> tuple[str, str, str, tuple[str, ...]]:
        symbol, style, word = _ACTION_STYLE[result.action]
        return symbol, style, _PLAN_WORD[result.action] if dry_run else word, result.changes

    shown = [r for r in results if r.action != "none"]
    return make_rows(shown, lambda r: r.resource, lambda r: (r.action, r.changes), describe)


def setup_counts(results: Sequence[StepResult], dry_run: bool) -> tuple[str, str]:
    """('23 created, 2 updated', '66 resources in 20 regions'): the summary's lines by
    outcome, and the resources they stand for."""
    shown = [r for r in results if r.action != "none"]
    counts: dict[str, int] = {}
    for row, _ in setup_rows(shown, dry_run):
        counts[row.word] = counts.get(row.word, 0) + 1
    words = [_PLAN_WORD[a] if dry_run else _ACTION_STYLE[a][2] for a in _ACTION_STYLE]
    parts = ", ".join(
        f"{counts[w]} {'to ' + w if dry_run and w != 'unchanged' else w}"
        for w in words
        if w in counts
    )
    return parts, resource_total([r.resource for r in shown])


def setup_summary(results: list[StepResult], dry_run: bool) -> None:
    """The closing line. Its counts are the summary's lines, one per kind and outcome
    (a kind in 19 regions is one), followed by how many resources they stand for."""
    parts, total = setup_counts(results, dry_run)
    if dry_run:
        out.print(f"\nPlan: {parts or 'nothing'} ({total}). Dry run: nothing was changed.")
        return
    out.print(f"\n[bold green]Done.[/] {parts or 'Nothing to do'} ({total}).")
    out.print("Next: [bold]loginwatch test-alert[/] sends a test message through the whole chain.")


# ---------------------------------------------------------------- status

_STATE_STYLE = {
    "ok": "green",
    "missing": "red",
    "drift": "yellow",
    "unmanaged": "cyan",
    "unavailable": "dim",
}


# The teardown flag that removes what it keeps by default (resources' keeps_data).
_REMOVE_FLAG = {"bucket": "--delete-bucket", "trail-log-group": "--delete-trail-logs"}


def render_status(report: StatusReport, *, verbose: bool = False) -> None:
    names = report.deployment.names
    if report.nothing_set_up:
        kept = report.kept
        state = "Not set up" if kept else "Nothing is set up yet"
        out.print(
            f"[bold]{state}[/] for loginwatch '{escape(names.name)}' in account "
            f"{names.account}, region {names.region}: no alert can fire."
        )
        if kept:
            out.print("Kept by teardown (audit logs, by design):")
            for item in kept:
                resource = item.resource
                out.print(f"  • {resource.label} {escape(resource.name)}: {resource.keeps_data}")
            flags = " ".join(sorted({_REMOVE_FLAG.get(i.resource.kind, "") for i in kept} - {""}))
            out.print(
                f"To remove them too: [bold]loginwatch teardown --yes {flags}[/]. To set up "
                "again: [bold]loginwatch setup[/]."
            )
            return
        out.print(
            "Run [bold]loginwatch setup[/] to create it ([bold]loginwatch setup --dry-run[/] "
            "shows the plan first)."
        )
        return
    if verbose:
        _status_tables(report)
    else:
        _status_summary(report)
    problems = report.problems
    if not problems:
        out.print("[bold green]healthy[/]")
        return
    yours = report.beyond_setup
    fixable = len(problems) - len(yours)
    if fixable:
        out.print(f"[bold red]{fixable} problem(s)[/] — run [bold]loginwatch setup[/] to repair")
    if yours:
        out.print(f"[bold red]{len(yours)} problem(s) setup cannot repair[/] — fix by hand:")
        for problem in yours:
            out.print(f"  • {escape(problem)}")


_STATE_SYMBOL = {"ok": "✓", "missing": "✗", "drift": "~", "unmanaged": "•", "unavailable": "·"}
_CHECK_MARK = {"problem": "[red]✗[/]", "warning": "[yellow]![/]", "repeats-drift": "[yellow]~[/]"}


def status_rows(report: StatusReport) -> list[tuple[Row, int]]:
    """One row per kind and state; a resource that is not ok keeps its own row (its name
    and every region it is in are said), one that is ok shares its kind's row."""

    def describe(item: ResourceStatus) -> tuple[str, str, str, tuple[str, ...]]:
        style = _STATE_STYLE[item.state]
        return _STATE_SYMBOL[item.state], style, item.state, tuple(item.details)

    return make_rows(
        report.resources,
        lambda r: r.resource,
        lambda r: (r.state, tuple(r.details)),
        describe,
        by_name=lambda r: r.state not in ("ok", "unavailable"),
    )


def _status_summary(report: StatusReport) -> None:
    """The screen-sized status: a line per kind and state, then only the checks that
    did not pass (the passed ones counted)."""
    from .engine import check_weight

    names = report.deployment.names
    out.print(
        f"[bold]loginwatch '{escape(names.name)}'[/] in account {names.account}, "
        f"home region {names.region}"
    )
    rows = [row for row, _ in status_rows(report)]
    print_rows(rows, name_them=lambda row: row.word not in ("ok", "unavailable"))
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.word] = counts.get(row.word, 0) + 1
    states = ", ".join(f"{counts[s]} {s}" for s in _STATE_STYLE if s in counts)
    total = resource_total([r.resource for r in report.resources])
    out.print(f"[dim]Lines above: {states} ({total}; --verbose names each).[/]")
    checks = report.checks
    failed = [c for c in checks if not c.ok]
    passed = len(checks) - len(failed)
    if not checks:
        out.print("[bold]Can it fire?[/] nothing to check: none of its links is there")
    elif not failed:
        out.print(f"[bold]Can it fire?[/] [green]✓ all {len(checks)} checks pass[/]")
    else:
        out.print(f"[bold]Can it fire?[/] {passed} of {len(checks)} checks pass; not these:")
        for check in failed:
            mark = _CHECK_MARK[check_weight(check)]
            out.print(f"  {mark} {escape(check.name)}: {escape(check.detail)}")


def _status_tables(report: StatusReport) -> None:
    """--verbose: every resource by name and region, and every check."""
    names = report.deployment.names
    table = Table(title=f"loginwatch '{names.name}' in {names.region} (home region)")
    table.add_column("resource")
    table.add_column("region", overflow="fold")
    table.add_column("name", overflow="fold")
    table.add_column("state")
    has_details = any(r.details for r in report.resources)
    if has_details:  # an empty column only takes the names' room
        table.add_column("details", overflow="fold")
    groups = group_by_kind(
        report.resources, lambda r: r.resource, lambda r: (r.state, r.details, r.resource.name)
    )
    for group in groups:
        item = group[0]
        style = _STATE_STYLE[item.state]
        cells = [
            item.resource.label,
            escape(regions_text([g.resource.region for g in group])),
            escape(item.resource.name),
            f"[{style}]{item.state}[/]",
        ]
        if has_details:
            cells.append(escape("; ".join(item.details)))
        table.add_row(*cells)
    out.print(table)
    checks = Table(title="Can it fire?")
    checks.add_column("check")
    checks.add_column("")
    checks.add_column("detail", overflow="fold")
    for check in report.checks:
        mark = (
            "[green]✓[/]" if check.ok else ("[yellow]![/]" if check.warning_only else "[red]✗[/]")
        )
        checks.add_row(check.name, mark, escape(check.detail))
    out.print(checks)


# ---------------------------------------------------------------- teardown


_TEARDOWN_STYLE = {"delete": ("-", "red"), "clean": ("~", "yellow"), "keep": ("•", "cyan")}


def teardown_rows(items: Sequence[TeardownItem]) -> list[tuple[Row, int]]:
    """What teardown removes, cleans and keeps: one row per kind and action (and reason)."""

    def describe(item: TeardownItem) -> tuple[str, str, str, tuple[str, ...]]:
        symbol, style = _TEARDOWN_STYLE[item.action]
        return symbol, style, item.action, (item.reason,) if item.reason else ()

    shown = [i for i in items if i.action in _TEARDOWN_STYLE]
    return make_rows(
        shown,
        lambda i: i.resource,
        lambda i: (i.action, i.reason),
        describe,
        by_name=lambda i: i.action != "delete",
    )


def render_teardown_plan(items: list[TeardownItem], *, verbose: bool = False) -> None:
    if verbose:
        _teardown_listing(items)
    else:
        rows = [row for row, _ in teardown_rows(items)]
        print_rows(rows, name_them=lambda row: row.word != "delete")
    if not any(i.action in ("delete", "clean") for i in items):
        out.print("Nothing left to remove.")


def _teardown_listing(items: list[TeardownItem]) -> None:
    shown = [i for i in items if i.action in ("delete", "clean", "keep")]
    for group in group_by_kind(shown, lambda i: i.resource, lambda i: (i.action, i.reason)):
        item = group[0]
        if item.action == "delete":
            line = _resource_line("red", "-", group, lambda i: i.resource)
            out.print(f"{line}  [red]delete[/]")
        elif item.action == "clean":
            line = _resource_line("yellow", "~", group, lambda i: i.resource)
            out.print(f"{line}  [yellow]clean[/]: {escape(item.reason)}")
        else:
            line = _resource_line("cyan", "•", group, lambda i: i.resource)
            out.print(f"{line}  [cyan]keep[/]: {escape(item.reason)}")


def _teardown_counts(items: Sequence[TeardownItem]) -> str:
    """'remove 23 (64 resources in 20 regions), keep 2': the plan's lines by action, and
    the resources the removed ones stand for."""
    rows: dict[str, int] = {}
    for row, _ in teardown_rows(items):
        rows[row.word] = rows.get(row.word, 0) + 1
    going = [i.resource for i in items if i.action == "delete"]
    parts = [f"remove {rows.get('delete', 0)} ({resource_total(going)})"]
    if rows.get("clean"):
        parts.append(f"clean {rows['clean']}")
    parts.append(f"keep {rows.get('keep', 0)}")
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def teardown_dry_run_summary(items: list[TeardownItem]) -> None:
    """The one line a dry run ends with: what a real run would do, and that it did nothing.
    Its counts are the plan's lines (a kind in 19 regions is one)."""
    out.print(f"[bold]Dry run: teardown would {_teardown_counts(items)}.[/] Nothing was changed.")


def teardown_done(items: Sequence[TeardownItem]) -> None:
    """After a teardown: the lines of the plan it carried out, and what they stand for."""
    going = [i for i in items if i.action in ("delete", "clean")]
    rows = [row for row, _ in teardown_rows(going)]
    out.print(f"[bold]Removed {len(rows)}[/] ({resource_total([i.resource for i in going])}).")


class TeardownPrinter:
    """Teardown's progress: by default a spinner (the plan above lists what goes);
    verbose, one line per removed resource, one kind in many regions on one line."""

    def __init__(self, *, verbose: bool = False) -> None:
        self.verbose = verbose
        self._lines = _RegionalLines(self._print, lambda i: (i.resource.kind, i.action, i.note))
        self._status: Status | None = None
        self._noted: list[TeardownItem] = []

    def done(self, item: TeardownItem) -> None:
        if self.verbose:
            self._lines.add(item)
            return
        if item.note:  # what removing it took (a bucket's objects, queued alerts): said
            self._noted.append(item)
        resource = item.resource
        text = f"Removed {resource.label} {escape(resource.name)} ({resource.region}) …"
        if self._status is None:
            self._status = out.status(text)
            self._status.start()
        else:
            self._status.update(text)

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        self._lines.flush()
        for item in self._noted:
            resource = item.resource
            out.print(f"  {resource.label} {escape(resource.name)}: {escape(item.note)}")

    @staticmethod
    def _print(group: list[TeardownItem]) -> None:
        item = group[0]
        note = f" ({escape(item.note)})" if item.note else ""
        verb = "cleaned" if item.action == "clean" else "deleted"
        line = _resource_line("red", "-", group, lambda i: i.resource)
        out.print(f"{line}  {verb}{note}")


# ---------------------------------------------------------------- redeliver


def redelivered(item: Redelivered) -> None:
    where = f"{item.queue.name} ({item.queue.region})"
    if item.outcome == "listed":
        out.print(f"[cyan]•[/] {escape(item.summary)}  [dim]{escape(where)}[/]")
        return
    reason = f": {escape(item.reason)}" if item.reason else ""
    if item.delivered:
        out.print(f"[green]✓[/] {escape(item.summary)}  {escape(item.outcome)}{reason}")
    else:
        out.print(f"[red]✗[/] {escape(item.summary)}  [red]{escape(item.outcome)}[/]{reason}")


def redeliver_summary(items: list[Redelivered], dry_run: bool) -> None:
    if not items:
        out.print("No undelivered alerts: every dead-letter queue is empty.")
        return
    if dry_run:
        out.print(
            f"[bold]{len(items)} undelivered alert(s).[/] Fix the cause (the notifier's log "
            "says it), then run [bold]loginwatch redeliver[/] to post them."
        )
        return
    done = sum(1 for i in items if i.delivered)
    out.print(f"[bold]{done} of {len(items)} alert(s) delivered and removed from their queue.[/]")
    if done < len(items):
        out.print(
            f"[bold red]{len(items) - done} still undelivered[/] — they stay queued; "
            "check `loginwatch status` and the notifier's log, then re-run."
        )


def notice(message: str) -> None:
    out.print(f"[cyan]Notice:[/] {escape(message)}")


def render_self_check(result: DrillResult) -> None:
    if result.delivered:
        out.print(
            f"[bold green]✓ Self-check healthy[/] in {result.seconds:.1f} s: {escape(result.detail)}"
        )
        return
    out.print(f"[bold red]✗ Self-check[/] in {result.seconds:.1f} s: {escape(result.detail)}")
    for finding in result.diagnosis:
        out.print(f"  [yellow]•[/] {escape(finding)}")


def render_test_alert(result: DrillResult) -> None:
    if result.route == "self-check":
        render_self_check(result)
        return
    route = {
        "alarm": "alarm → SNS → Lambda → Slack",
        "fast-path": "EventBridge fast path → Lambda → Slack",
        "lambda": "Lambda → Slack",
        "slack": "Slack webhook",
    }[result.route]
    slack = f", Slack answered {result.slack_status}" if result.slack_status is not None else ""
    if result.delivered:
        out.print(
            f"[bold green]✓ Delivered[/] test {result.test_id} via {route} in {result.seconds:.1f} s{slack}."
        )
        if result.detail:
            out.print(f"  {escape(result.detail)}")
        return
    out.print(
        f"[bold red]✗ Not delivered[/] test {result.test_id} via {route}{slack}: {escape(result.detail)}"
    )
    for finding in result.diagnosis:
        out.print(f"  [yellow]•[/] {escape(finding)}")


# ---------------------------------------------------------------- demo


def demo_intro(emulated: tuple[str, ...]) -> None:
    out.rule("[bold]loginwatch demo[/] — the whole job, no AWS account, no network")
    out.print(
        "loginwatch is set up in an emulated AWS account; then six people sign in to the "
        "console. First what reached Slack, then why, then how (what is emulated: at the end)."
    )


@contextlib.contextmanager
def demo_working(text: str) -> Iterator[None]:
    """A spinner while the demo works (nothing printed when not on a terminal)."""
    with out.status(escape(text)):
        yield


def demo_step(number: str, title: str) -> None:
    out.print()
    out.rule(f"[bold cyan]{escape(number)}[/]  {escape(title)}", align="left")


def demo_message(caption: str) -> None:
    out.print(f"[bold]Message {escape(caption)}[/]")


def _in_slack(s: SignInScenario, fast: SignInScenario, listed: set[str]) -> str:
    event_id = s.record["eventID"]
    if s is fast:
        return "message 1"
    if event_id in listed:
        return (
            "message 2"
            if s.record["responseElements"]["ConsoleLogin"] == "Success"
            else ("message 2, as context")
        )
    return "[dim]—[/]"


def demo_sign_ins(
    sign_ins: list[SignInScenario],
    counted: list[SignInScenario],
    *,
    fast: SignInScenario,
    listed: set[str],
) -> None:
    table = Table(show_edge=False)
    table.add_column("who")
    table.add_column("source IP")
    table.add_column("result")
    table.add_column("allowlist")
    table.add_column("filter")
    table.add_column("in Slack")
    for s in sign_ins:
        table.add_row(
            escape(s.who),
            s.ip,
            s.record["responseElements"]["ConsoleLogin"],
            "[green]inside[/]" if s.allowed else "[red]outside[/]",
            "[red]counted[/]" if s in counted else "[dim]no[/]",
            _in_slack(s, fast, listed),
        )
    out.print(table)


def _whos(sign_ins: Sequence[SignInScenario]) -> str:
    return ", ".join(escape(s.who) for s in sign_ins)


def demo_reconcile(
    sign_ins: list[SignInScenario],
    counted: list[SignInScenario],
    *,
    fast: SignInScenario,
    listed: set[str],
) -> None:
    """How the counts fit together: the filter's, the two messages' and the digest's
    "more already reported by the fast path"."""
    outside = [s for s in sign_ins if not s.allowed]
    failed = [s for s in outside if s.record["responseElements"]["ConsoleLogin"] != "Success"]
    in_digest = [s for s in outside if s.record["eventID"] in listed]
    context = [s for s in in_digest if s in failed]
    out.print(
        f"{len(outside)} sign-ins came from outside the allowlist. The metric filter "
        f"counted the {len(counted)} successful ones ({_whos(counted)}); a failed sign-in "
        "is never counted. The fast path reported "
        f"{escape(fast.who)} within seconds (message 1), so the alarm's digest lists "
        f"{len(in_digest)}: the other {len(in_digest) - len(context)} the filter counted "
        f"and, as context, {_whos(context)} — and says the {len(outside) - len(in_digest)} "
        "more was already reported by the fast path."
    )
    if context:
        out.print(
            "[dim]The failed attempt matches no rule ('Rules: none'): outside_allowlist "
            "alerts on successful sign-ins only, and a failed one never sends a message of "
            "its own (the failed_sign_ins rule reports bursts of them).[/]"
        )


def demo_how(
    *,
    planned: Sequence[StepResult],
    applied: Sequence[StepResult],
    report: StatusReport,
    notices: Sequence[str],
    fast: tuple[str, str, dict[str, Any]],
    alarm: tuple[str, str, dict[str, Any]],
) -> None:
    """What ran, one line each, in the words the commands themselves use."""
    plan_parts, plan_total = setup_counts(planned, True)
    done_parts, done_total = setup_counts(applied, False)
    rows = [row for row, _ in status_rows(report)]
    ok = sum(1 for row in rows if row.word == "ok")
    checks = report.checks
    passed = sum(1 for c in checks if c.ok)
    health = "healthy" if report.healthy else f"{len(report.problems)} problem(s)"
    region, home, fast_log = fast
    _, sha, alarm_log = alarm
    lines = [
        ("setup --dry-run", f"Plan: {plan_parts} ({plan_total})."),
        ("setup", f"Done. {done_parts} ({done_total})."),
        ("status", f"{health}: {ok} of {len(rows)} ok, {passed} of {len(checks)} checks pass."),
        (
            "fast path",
            f"{region}'s default bus → forwarding rule → {home}'s bus → sign-in rule → "
            f"notifier: {_posted(fast_log)}",
        ),
        (
            "alarm path",
            f"metric filter → alarm → SNS → notifier (the deployed zip, {sha[:8]}…): "
            f"{_posted(alarm_log)}",
        ),
    ]
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for command, text in lines:
        table.add_row(escape(command), escape(text))
    out.print(table)
    for message in notices:
        out.print(f"[dim]Notice: {escape(message)}[/]")
    out.print(
        "[dim]`loginwatch setup`, `status` and `teardown` print these summaries; "
        "--verbose lists every resource.[/]"
    )


def _posted(log_line: dict[str, Any]) -> str:
    events = log_line.get("events")
    status = log_line.get("slack_status")
    return f"{log_line.get('outcome', '?')} {events} sign-in(s), Slack answered {status}."


def demo_teardown(items: Sequence[TeardownItem]) -> None:
    going = [i for i in items if i.action in ("delete", "clean")]
    rows = [row for row, _ in teardown_rows(going)]
    out.print(
        f"[bold]teardown[/] (the demo's bucket and logs too): removed {len(rows)} "
        f"({resource_total([i.resource for i in going])})."
    )


def demo_raw(payload: dict[str, Any]) -> None:
    out.print("----- raw Slack payload -----")
    print(json.dumps(payload, indent=2, ensure_ascii=False))
    out.print("----- end of raw Slack payload -----")


def demo_keep(endpoint: str, config_path: Path, env: dict[str, str]) -> None:
    exports = " ".join(
        f"{k}={v}"
        for k, v in env.items()
        if k.startswith("AWS_ACCESS") or k.startswith("AWS_SECRET")
    )
    out.print(
        "\n[bold]Kept running.[/] The emulator lives in this process; from another terminal try:"
    )
    out.print(
        f"  AWS_ENDPOINT_URL={endpoint} {exports} loginwatch status --config {config_path}",
        soft_wrap=True,  # one line, to copy
    )
    out.print("Press Ctrl-C to stop (the emulator and everything in it go away).")


def demo_outro(emulated: tuple[str, ...]) -> None:
    out.print()
    out.rule("[bold]Next[/]")
    out.print("A real account needs only your config:")
    out.print("  . .venv/bin/activate                     # the venv loginwatch is installed in")
    out.print("  cp config.example.yaml loginwatch.yaml  # edit allowed_ips and the webhook")
    out.print("  loginwatch setup && loginwatch test-alert")
    out.print("[dim]Emulated here: " + escape("; ".join(emulated)) + ".[/]")


def _mrkdwn(text: str) -> str:
    """Slack mrkdwn → rich markup, for reading in a terminal (display only)."""
    import html
    import re

    shown = escape(html.unescape(text))
    shown = re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", r"[bold]\1[/bold]", shown)
    shown = re.sub(r"(?<![\w_])_([^_\n]+)_(?![\w_])", r"[italic]\1[/italic]", shown)
    return re.sub(r"`([^`\n]+)`", r"[cyan]\1[/cyan]", shown)


def render_slack(payload: dict[str, Any]) -> None:
    """Show a Block Kit message roughly as Slack would."""
    from rich.panel import Panel

    lines: list[str] = []
    for block in payload.get("blocks", []):
        kind = block.get("type")
        if kind == "header":
            lines.append(f"[bold]{escape(block['text']['text'])}[/]")
        elif kind == "divider":
            lines.append("[dim]" + "─" * 60 + "[/]")
        elif kind == "section":
            if block.get("text"):
                lines.append(_mrkdwn(block["text"]["text"]))
            for item in block.get("fields", []):
                lines.append("  " + _mrkdwn(item["text"]))
            button = block.get("accessory")
            if button and button.get("type") == "button":
                lines.append(
                    f"  [blue]\\[{escape(button['text']['text'])}][/] [dim]{escape(button.get('url', ''))}[/]"
                )
        elif kind == "context":
            lines.append(
                "[dim]"
                + "  ".join(_mrkdwn(e.get("text", "")) for e in block.get("elements", []))
                + "[/]"
            )
        elif kind == "actions":
            for element in block.get("elements", []):
                lines.append(
                    f"  [blue]\\[{escape(element['text']['text'])}][/] [dim]{escape(element.get('url', ''))}[/]"
                )
    out.print(
        Panel(
            "\n".join(lines) or escape(payload.get("text", "")),
            title="#security (Slack)",
            expand=False,
        ),
        soft_wrap=False,  # wrap inside the panel on narrow terminals instead of cropping
    )
    out.print(f"[dim]Notification text: {escape(payload.get('text', ''))}[/]")
