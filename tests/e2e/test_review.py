"""`loginwatch review` through the installed CLI against the emulator: every enabled
region read within LookupEvents' rate limit, the rows and suggestions in --json, and
--write adding the chosen network while keeping the file's comments."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from loginwatch.demo import emulator
from tests.support import sign_ins as planted
from tests.support.cli import EMULATED_REGIONS, Cli, every_region

CONFIG = """\
# Our loginwatch config (the review must keep this comment).
region: us-east-1
name: lwreview
allowed_ips:
  - 100.64.1.1   # erin's line
  # more to come
slack:
  webhook_url: ${LW_WEBHOOK}   # from the environment
rules:
  outside_allowlist: {enabled: true}
  no_mfa: {enabled: true}
  failed_sign_ins: {enabled: true, threshold: 3, minutes: 5}
"""


@every_region
def test_review_every_region_suggests_and_writes(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    # The emulator throttles as AWS does (2 a second per region): none may be throttled.
    monkeypatch.setattr(emulator, "LOOKUP_RATE_LIMIT", 2)
    emulator.plant_events(planted.team_history(datetime.now(UTC)))
    cli.write_config(CONFIG)

    run = cli.run("review", "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["source"] == "lookup" and sorted(report["regions"]) == sorted(EMULATED_REGIONS)
    assert set(report["requests"]) == set(EMULATED_REGIONS)
    assert report["requests"]["us-east-1"] >= 3  # several pages: the limiter had to hold
    assert emulator.LOOKUP_THROTTLED == []
    for region in EMULATED_REGIONS:
        times = [t for r, t in emulator.LOOKUP_REQUESTS if r == region]
        assert len(times) == report["requests"][region]
        assert all(b - a >= 0.99 for a, b in zip(times, times[2:], strict=False)), region
    rows = {r["principal"]: r for r in report["principals"]}
    assert rows["alice"]["sign_ins"] == 30 and rows["alice"]["would_have_alerted"] == 28
    assert rows["erin"]["would_have_alerted"] == 0
    assert {s["network"] for s in report["suggestions"]} == {
        "192.0.2.0/24", "198.51.100.7/32", "2001:db8:77:1::/64",
    }  # fmt: skip
    assert "LookupEvents" in report["access_keys"]["note"]

    # A shorter window (one page a region) for the two runs that follow.
    write = cli.run("review", "--days", "6", "--write", "--network", "192.0.2.0/24", "--yes")
    assert write.returncode == 0, write.stderr
    assert "Suggested for allowed_ips" in write.stdout and "+  - cidr: 192.0.2.0/24" in write.stderr
    text = cli.config_path.read_text()
    assert text.startswith("# Our loginwatch config (the review must keep this comment).\n")
    assert "  - 100.64.1.1   # erin's line\n  - cidr: 192.0.2.0/24\n" in text
    assert "  # more to come\n" in text and "${LW_WEBHOOK}   # from the environment" in text
    assert "198.51.100.7" not in text  # only the network chosen
