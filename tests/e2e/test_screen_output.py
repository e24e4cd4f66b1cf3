"""What setup, status and teardown print for the example config fits an 80-column screen:
no line wider than 80, no word broken across lines, one line per kind of resource and
state (a kind in several regions is one line), and summary counts equal to those lines.

The CLI runs in this process against in-process moto (no server, no subprocess). Every
command is rendered twice at once, at 80 and at 1,000 columns: the same words in the same
order at both widths means wrapping only ever happened between words.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console

from tests.support.inprocess import InProcessEmulator

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"
WEBHOOK = "https://hooks.slack.com/services/T000/B000/screenSECRETwebhook"
# The home region and three more: "forwarding rule  3 regions" stands for 19 (same code).
REGIONS = frozenset({"us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"})
WIDTH = 80
# A summary line: symbol, what (with "×4" for four names), where, state or action.
ROW = re.compile(r"^(\S) (\S.*?)\s{2,}(\S+(?: regions)?)\s{2,}(\S.*?)\s*$")
SYMBOLS = set("+~=•·-✓✗")


class Tee:
    """Stands in for ui.out: prints to a narrow and a wide console; spinners on the first."""

    def __init__(self) -> None:
        self.narrow = Console(file=io.StringIO(), width=WIDTH, highlight=False, soft_wrap=False)
        self.wide = Console(file=io.StringIO(), width=1000, highlight=False, soft_wrap=False)

    def print(self, *args: Any, **kwargs: Any) -> None:
        self.narrow.print(*args, **kwargs)
        self.wide.print(*args, **kwargs)

    def rule(self, *args: Any, **kwargs: Any) -> None:
        self.narrow.rule(*args, **kwargs)
        self.wide.rule(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # status(): a spinner, shown on neither
        return getattr(self.narrow, name)

    def take(self) -> tuple[str, str]:
        texts = []
        for console in (self.narrow, self.wide):
            assert isinstance(console.file, io.StringIO)
            texts.append(console.file.getvalue())
            console.file.seek(0)
            console.file.truncate()
        return texts[0], texts[1]


@pytest.fixture
def render(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from loginwatch import ui
    from loginwatch.cli import main
    from loginwatch.resources import base

    monkeypatch.setattr(base, "enabled_regions", lambda aws: REGIONS)
    monkeypatch.setenv("LOGINWATCH_SLACK_WEBHOOK", WEBHOOK)
    tee = Tee()
    monkeypatch.setattr(ui, "out", tee)
    emulator = InProcessEmulator().start()

    def run(*args: str, code: int = 0) -> str:
        with pytest.raises(SystemExit) as exited:
            main(["--config", str(EXAMPLE), *args])
        narrow, wide = tee.take()
        assert exited.value.code == code, narrow
        assert_fits(narrow, wide)
        return narrow

    try:
        yield run
    finally:
        emulator.stop()


def assert_fits(narrow: str, wide: str) -> None:
    for line in narrow.splitlines():
        assert cell_len(line) <= WIDTH, f"wider than {WIDTH}: {line!r}"
    # Wrapping between words only: the same words, in the same order, at both widths.
    assert narrow.split() == wide.split(), "a word was broken (or lost) at 80 columns"


def rows(text: str) -> list[tuple[str, str, str, str]]:
    found = []
    for line in text.splitlines():
        match = ROW.match(line)
        if match and match[1] in SYMBOLS:
            found.append((match[1], match[2], match[3], match[4]))
    return found


def resources_of(found: list[tuple[str, str, str, str]]) -> int:
    """How many resources the rows stand for: "metric filter ×4" in "3 regions" is 12."""
    total = 0
    for _, what, where, _ in found:
        names = int(what.rsplit("×", 1)[1]) if "×" in what else 1
        regions = int(where.split()[0]) if where.endswith(" regions") else 1
        total += names * regions
    return total


def number(pattern: str, text: str) -> int:
    match = re.search(pattern, " ".join(text.split()))
    assert match, f"{pattern!r} not in:\n{text}"
    return int(match[1])


def test_setup_status_teardown_fit_80_columns_with_counts_equal_to_the_lines(
    render: Any,
) -> None:
    plan = render("setup", "--dry-run")
    planned = rows(plan)
    assert planned and {word for *_, word in planned} == {"create"}
    assert number(r"Plan: (\d+) to create", plan) == len(planned)
    assert number(r"to create \((\d+) resources in 4 regions\)", plan) == resources_of(planned)
    assert ("+", "forwarding rule", "3 regions", "create") in planned  # one line, 3 regions
    # one per rule (the example's four sign-in rules, and tamper's two: CIS CloudWatch.5's
    # and its own resources')
    assert ("+", "metric filter ×6", "us-east-1", "create") in planned
    # One line per kind, and five more: the header, the notice of setup's own check before
    # writing (the dry run makes it too; this emulator's answer is not AWS's verdict: two
    # lines at 80 columns), a blank line and the plan's one-line sum.
    assert "Filter pattern not verified by AWS" in " ".join(plan.split())
    assert len(plan.splitlines()) <= len(planned) + 5

    fresh = render("setup")
    created = rows(fresh)
    assert [r[:3] for r in created] == [r[:3] for r in planned]
    assert number(r"Done\. (\d+) created", fresh) == len(created)
    assert number(r"created \((\d+) resources", fresh) == resources_of(created)

    converged = render("setup")
    assert rows(converged) == []  # nothing changed: no line per resource ...
    assert number(r"all (\d+) unchanged", converged) == len(planned)  # ... one for all
    assert number(r"Done\. (\d+) unchanged", converged) == len(planned)
    assert len(converged.splitlines()) <= 6

    status = render("status")
    ok = rows(status)
    assert {word for *_, word in ok} == {"ok"} and len(ok) == len(planned)
    assert number(r"Lines above: (\d+) ok", status) == len(ok)
    assert number(r"ok \((\d+) resources in 4 regions", status) == resources_of(ok)
    # Every check passes but the second voice's, a warning only: the example sets no
    # self_check.email.
    passing = re.search(r"Can it fire\? (\d+) of (\d+) checks pass; not these:", status)
    assert passing and int(passing[1]) == int(passing[2]) - 1, status
    assert "! second voice: none: set self_check.email" in " ".join(status.split())
    # One line per kind, and six more: the header, the totals, the checks' verdict with
    # the second voice's warning (two lines at 80 columns), and "healthy". (27 kinds since
    # tamper and the self-check are on by default: 33 lines, over the 30 this used to hold.)
    assert "healthy" in status and len(status.splitlines()) <= len(ok) + 6

    dry = render("teardown", "--dry-run")
    going, kept = _teardown_rows(dry)
    assert number(r"teardown would remove (\d+)", dry) == len(going)
    assert number(r"remove \d+ \((\d+) resources", dry) == resources_of(going)
    assert number(r"and keep (\d+)", dry) == len(kept) == 2
    # What is kept is named, with why and how to remove it too.
    assert "loginwatch-trail-123456789012-us-east-1" in dry and "--delete-bucket" in dry

    done = render("teardown", "--yes")
    assert _teardown_rows(done) == (going, kept)  # the plan once, not again as it goes
    assert number(r"Removed (\d+)", done) == len(going)
    assert number(r"Removed \d+ \((\d+) resources", done) == resources_of(going)


def _teardown_rows(text: str) -> tuple[list[Any], list[Any]]:
    found = rows(text)
    going = [r for r in found if r[3] == "delete"]
    kept = [r for r in found if r[3] == "keep"]
    assert len(going) + len(kept) == len(found), found
    return going, kept


def test_a_problem_in_one_region_keeps_its_own_line_naming_it(render: Any) -> None:
    import boto3

    render("setup")
    boto3.client("events", region_name="eu-west-1").disable_rule(Name="loginwatch-console-sign-in")
    narrow = render("status", code=1)  # unhealthy
    found = rows(narrow)
    # The two regions that agree share a line; the drifted one is named with its region.
    assert ("✓", "forwarding rule", "2 regions", "ok") in found
    assert ("~", "forwarding rule", "eu-west-1", "drift") in found
    lines = narrow.splitlines()
    below = lines[next(i for i, line in enumerate(lines) if line.endswith("drift")) + 1]
    assert below.startswith("    loginwatch-console-sign-in: state: DISABLED")
    counts = Counter(word for *_, word in found)
    assert number(r"Lines above: (\d+) ok", narrow) == counts["ok"]
    assert number(r"ok, (\d+) drift", narrow) == counts["drift"] == 1
    assert "problem(s)" in narrow and "loginwatch setup" in narrow

    verbose = render("setup", "--dry-run", "--verbose")  # the full listing: every name
    for name in ("loginwatch-cis-root-usage", "loginwatch-unallowed-console-login"):
        assert name in " ".join(verbose.split())
