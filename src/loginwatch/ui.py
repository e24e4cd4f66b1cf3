"""Rich rendering: everything the user sees goes through here."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
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
    from .engine import StatusReport, StepResult, TeardownItem
    from .pattern_check import Verdict
    from .redeliver import Redelivered
    from .resources.base import Resource
    from .summary import RuleRoute, Trigger

out = Console(highlight=False, soft_wrap=True)  # lines are not hard-wrapped: easier to grep
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


class StepPrinter:
    """One line per resource as it is settled, with a spinner on the step in flight.

    Resources outside the home region (one kind in many regions) are held back
    while they agree, and printed as one line per kind.
    """

    def __init__(self, *, dry_run: bool = False) -> None:
        self.dry_run = dry_run
        self._status: Status | None = None
        self._lines = _RegionalLines(self._print, lambda r: (r.resource.kind, r.action, r.changes))

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
        self._lines.add(result)

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


def setup_summary(results: list[StepResult], dry_run: bool) -> None:
    counts: dict[str, int] = {}
    for result in results:
        counts[result.action] = counts.get(result.action, 0) + 1
    parts = [
        f"{counts[a]} {a if dry_run else _ACTION_STYLE[a][2]}" for a in _ACTION_STYLE if a in counts
    ]
    if dry_run:
        out.print(f"\nPlan: {', '.join(parts)}. Nothing was changed (--dry-run).")
        return
    out.print(f"\n[bold green]Done.[/] {', '.join(parts)}.")
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


def render_status(report: StatusReport) -> None:
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
    table = Table(title=f"loginwatch '{names.name}' in {names.region} (home region)")
    table.add_column("resource")
    table.add_column("region", overflow="fold")
    table.add_column("name", overflow="fold")
    table.add_column("state")
    table.add_column("details", overflow="fold")
    groups = group_by_kind(
        report.resources, lambda r: r.resource, lambda r: (r.state, r.details, r.resource.name)
    )
    for group in groups:
        item = group[0]
        style = _STATE_STYLE[item.state]
        table.add_row(
            item.resource.label,
            escape(regions_text([g.resource.region for g in group])),
            escape(item.resource.name),
            f"[{style}]{item.state}[/]",
            escape("; ".join(item.details)),
        )
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


# ---------------------------------------------------------------- teardown


def render_teardown_plan(items: list[TeardownItem]) -> None:
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
    if not any(i.action in ("delete", "clean") for i in items):
        out.print("Nothing left to remove.")


def teardown_dry_run_summary(items: list[TeardownItem]) -> None:
    """The one line a dry run ends with: what a real run would do, and that it did nothing."""
    removed = sum(1 for i in items if i.action == "delete")
    cleaned = sum(1 for i in items if i.action == "clean")
    kept = sum(1 for i in items if i.action == "keep")
    parts = [f"remove {removed} resource(s)"]
    if cleaned:
        parts.append(f"clean {cleaned}")
    parts.append(f"keep {kept}")
    out.print(f"[bold]Dry run: teardown would {', '.join(parts)}.[/] Nothing was changed.")


class TeardownPrinter:
    """One line per removed resource; one kind removed in many regions is one line."""

    def __init__(self) -> None:
        self._lines = _RegionalLines(self._print, lambda i: (i.resource.kind, i.action, i.note))

    def done(self, item: TeardownItem) -> None:
        self._lines.add(item)

    def stop(self) -> None:
        self._lines.flush()

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


def render_test_alert(result: DrillResult) -> None:
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
    out.print("Emulated in this demo:")
    for item in emulated:
        out.print(f"  • {escape(item)}")
    out.print(
        "Everything else is the real loginwatch: config, filter pattern, setup, status, notifier.\n"
    )


def demo_step(number: str, title: str) -> None:
    out.print()
    out.rule(f"[bold cyan]{escape(number)}[/]  {escape(title)}", align="left")


def demo_sign_ins(sign_ins: list[SignInScenario], counted: list[SignInScenario]) -> None:
    table = Table(show_edge=False)
    table.add_column("who")
    table.add_column("source IP")
    table.add_column("result")
    table.add_column("allowlist")
    table.add_column("metric filter")
    for s in sign_ins:
        outcome = s.record["responseElements"]["ConsoleLogin"]
        hit = s in counted
        table.add_row(
            escape(s.who),
            s.ip,
            outcome,
            "[green]inside[/]" if s.allowed else "[red]outside[/]",
            "[red]counted[/]" if hit else "[dim]not counted[/]",
        )
    out.print(table)
    out.print(
        f"The metric filter counted {len(counted)} successful sign-in(s) from outside the allowlist "
        "(failed sign-ins are not counted, but the notifier lists them for context)."
    )


def demo_fast_path(region: str, home: str, log_line: dict[str, Any]) -> None:
    out.print(
        f"CloudTrail put the sign-in on {region}'s default bus; the forwarding rule there sent "
        f"it to {home}'s bus, whose rule invoked the notifier (the deployed zip, run here)."
    )
    out.print(f"Its log line: [dim]{escape(json.dumps(log_line))}[/]")


def demo_notifier(sha: str, log_line: dict[str, Any]) -> None:
    out.print(
        f"Ran the deployed notifier package (CodeSha256 {sha[:16]}…) with the alarm's SNS event."
    )
    out.print(f"Its log line: [dim]{escape(json.dumps(log_line))}[/]")


def demo_raw(payload: dict[str, Any]) -> None:
    out.print("\n----- raw Slack payload -----")
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
    out.print(f"  AWS_ENDPOINT_URL={endpoint} {exports} loginwatch status --config {config_path}")
    out.print("Press Ctrl-C to stop (the emulator and everything in it go away).")


def demo_outro(emulated: tuple[str, ...]) -> None:
    out.print()
    out.rule("[bold]What you saw[/]")
    out.print("The real setup created the chain; a real account needs only your config:")
    out.print("  . .venv/bin/activate                      # the venv loginwatch is installed in")
    out.print("  cp config.example.yaml loginwatch.yaml   # edit allowed_ips and the webhook")
    out.print("  loginwatch setup && loginwatch test-alert")
    out.print("[dim]Emulated here: " + escape("; ".join(emulated)) + "[/]")


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
