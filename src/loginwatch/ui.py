"""Rich rendering: everything the user sees goes through here."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .summary import ConfigSummary

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False)


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
        else:
            out.print(f"[green]✓ {verdict.ip}[/]: allowed, no alert")
