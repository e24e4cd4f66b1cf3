"""Against a stock moto server (`python -m moto.server`, none of loginwatch's patches):
every command goes as far as that emulator goes, and says what it could not check.

Stock moto answers an operation it lacks (TestMetricFilter) with an HTML 500 page and
cannot run a Lambda function without Docker. No command may print that page, retry
it for half a minute, or wait for a delivery that cannot come.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import ONE_FORWARDING_REGION, Cli, Run

STARTUP_SECONDS = 30


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def stock_moto() -> Iterator[str]:
    """A stock moto server in its own process (it never imports loginwatch), one per
    module; its URL once it answers."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _answers(url):
            assert server.poll() is None, "the moto server exited at start"
            assert time.monotonic() < deadline, f"no answer from moto at {url}"
            time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def stock_cli(url: str, workdir: Path, name: str) -> Cli:
    text = ONE_FORWARDING_REGION.replace("name: lwtest", f"name: {name}")
    return Cli(endpoint=url, workdir=workdir, config_text=text)


def plain(run: Run) -> str:
    """Its output, after checking it holds no traceback, no HTML and no bytes literal."""
    both = run.stdout + run.stderr
    assert "Traceback" not in both, both
    assert "<html" not in both.lower() and "<!doctype" not in both.lower(), both
    # A bytes literal (b'…' or b"…"), not a word or an id ending in b before a quote.
    assert not re.search(r"(?<![\w-])b['\"]", both), both
    return " ".join(both.split())  # rich wraps long lines


def test_setup_status_teardown_go_as_far_as_stock_moto_goes(
    stock_moto: str, tmp_path: Path
) -> None:
    cli = stock_cli(stock_moto, tmp_path, "lwstock")

    started = time.monotonic()
    setup = cli.run("setup")
    text = plain(setup)
    assert setup.returncode == 0, text
    assert "Filter pattern not verified by AWS: the endpoint cannot answer TestMetricFilter" in text
    assert "metric filter" in text and "created" in text
    # The HTML 500 is not retried (botocore's standard mode would, for half a minute).
    assert time.monotonic() - started < 25

    status = cli.run("status", "--json")
    plain(status)
    report = json.loads(status.stdout)
    assert report["nothing_set_up"] is False
    not_ok = [r for r in report["resources"] if r["state"] != "ok"]
    # Stock moto keeps a queue's RedriveAllowPolicy but never reports it (the only drift).
    assert all(
        r["kind"] == "final-queue"
        and r["details"] == ["redrive allowed: from the retry queue only"]
        for r in not_ok
    ), not_ok
    assert status.returncode == (1 if not_ok else 0)
    # Every check passes but one warning: no second voice without self_check.email (the
    # self-check is on by default).
    failed = [(c["name"], c["weight"]) for c in report["checks"] if not c["ok"]]
    assert failed == [("second voice", "warning")], report["checks"]

    # Stock moto cannot run the function (no Docker): said at once, not after a wait.
    started = time.monotonic()
    alert = cli.run("test-alert", "--timeout", "60")
    text = plain(alert)
    assert alert.returncode == 1
    assert "the notifier function cannot run on this endpoint" in text
    assert time.monotonic() - started < 30
    direct = cli.run("test-alert", "--via", "lambda")
    text = plain(direct)  # the function's error as text, never b"…"
    assert direct.returncode == 1 and "the function failed:" in text

    teardown = cli.run("teardown", "--yes")
    text = plain(teardown)
    assert teardown.returncode == 0, text
    assert "Removed" in text

    after = cli.run("status", "--json")
    plain(after)
    gone = json.loads(after.stdout)["resources"]
    assert {r["kind"] for r in gone if r["state"] != "missing"} <= {"bucket", "trail-log-group"}


def test_validate_aws_says_the_pattern_was_not_verified(stock_moto: str, tmp_path: Path) -> None:
    cli = stock_cli(stock_moto, tmp_path, "lwvalidate")
    run = cli.run("validate", "--aws")
    text = plain(run)
    assert run.returncode == 0, text
    assert "not verified" in text and "TestMetricFilter" in text

    as_json = cli.run("validate", "--aws", "--json")
    plain(as_json)
    assert as_json.returncode == 0
    verdict = json.loads(as_json.stdout)["aws_verdict"]
    assert verdict["checked"] == 0 and verdict["missed"] == []
    assert "TestMetricFilter" in verdict["unavailable"]


def test_review_says_the_endpoint_lacks_lookup_events(stock_moto: str, tmp_path: Path) -> None:
    """Stock moto answers LookupEvents with an HTML 500: one clear error, not retried."""
    cli = stock_cli(stock_moto, tmp_path, "lwreview")
    started = time.monotonic()
    run = cli.run("review")
    text = plain(run)
    assert run.returncode == 1, text
    assert "The endpoint cannot answer cloudtrail:LookupEvents" in text
    assert "--source logs" in text
    assert time.monotonic() - started < 20
