"""The README's "Use it on a real account" block, run as written, on a fresh venv.

The block is read from README.md and run by bash in a copy of this clone (what a user
has after `git clone`), with the developer's venv off PATH: `python3 -m venv .venv`,
`pip install .` from the package index (or whatever pip is configured with), then each
`loginwatch` line. Only the environment differs from a user's: AWS_ENDPOINT_URL at the
emulator, fake credentials, and the one placeholder the block asks the user to fill in
(the webhook) pointing at a local Slack stand-in. The emulator cannot run the notifier
(moto without Docker), so the two test-alert lines say so and exit 1; every other line
exits 0.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from loginwatch.demo.emulator import Emulator
from loginwatch.demo.webhook_catcher import SlackStub

ROOT = Path(__file__).resolve().parents[2]
HEADING = "## Use it on a real account"
PLACEHOLDER = "https://hooks.slack.com/services/..."
# What a clone holds that `pip install .` and the block read.
CLONE_FILES = ("pyproject.toml", "README.md", "config.example.yaml", "src")


def readme_block(heading: str = HEADING) -> str:
    """The first fenced block under ``heading``, as written."""
    text = (ROOT / "README.md").read_text()
    section = text.split(heading + "\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"^```(?:sh|bash|console)?\n(.*?)^```", section, re.M | re.S)
    assert match, f"no fenced block under {heading!r} in README.md"
    return match.group(1)


def fresh_clone(target: Path) -> Path:
    target.mkdir()
    for name in CLONE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        else:
            shutil.copy2(source, target / name)
    return target


def user_environment(tmp_path: Path, endpoint: str) -> dict[str, str]:
    """This process's environment without its venv, plus the emulator's endpoint.
    `python3` is this interpreter's base Python (3.11+), as on a user's machine."""
    here = {str(Path(sys.executable).parent)}
    if os.environ.get("VIRTUAL_ENV"):
        here.add(str(Path(os.environ["VIRTUAL_ENV"]) / "bin"))
    shims = tmp_path / "shims"
    shims.mkdir()
    base = getattr(sys, "_base_executable", sys.executable)
    (shims / "python3").write_text(f'#!/bin/sh\nexec "{base}" "$@"\n')
    (shims / "python3").chmod(0o755)
    path = [str(shims)] + [
        p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p not in here
    ]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "LOGINWATCH_CONFIG")
    }
    env.update(PATH=os.pathsep.join(path), AWS_ENDPOINT_URL=endpoint, COLUMNS="200")
    return env


def test_the_readme_install_and_first_run_work_as_written(
    aws_server: Emulator, slack_server: SlackStub, aws: Any, tmp_path: Path
) -> None:
    block = readme_block()
    assert block.count(PLACEHOLDER) == 1, block
    script = block.replace(PLACEHOLDER, slack_server.url)  # the one blank a user fills in
    clone = fresh_clone(tmp_path / "clone")
    # Wrapped, not changed: each failing line is reported with its exit code, and at
    # the end, which loginwatch ran.
    wrapped = (
        "trap 'echo \"::failed $? :: $BASH_COMMAND\" >&2' ERR\n"
        + script
        + 'echo "::loginwatch is $(command -v loginwatch)"\n'
    )
    try:
        run = subprocess.run(
            ["bash", "--noprofile", "--norc", "-c", wrapped],
            capture_output=True, text=True, cwd=clone, timeout=600,
            env=user_environment(tmp_path, aws_server.url),
        )  # fmt: skip
    finally:
        shutil.rmtree(clone / ".venv", ignore_errors=True)  # ~100 MB; pytest keeps tmp dirs
    out = run.stdout + run.stderr
    text = " ".join(out.split())
    assert "command not found" not in out, out
    assert f"::loginwatch is {clone}/.venv/bin/loginwatch" in out, out

    failed = re.findall(r"^::failed (\d+) :: (.*)$", run.stderr, re.M)
    # The emulator runs no Lambda function: each test-alert says so at once and exits 1.
    assert [cmd for _, cmd in failed] == [
        "loginwatch test-alert",
        "loginwatch test-alert --via fast-path",
    ], out
    assert all(code == "1" for code, _ in failed), out
    assert text.count("the notifier function cannot run on this endpoint") == 2, out

    policy = json.loads((clone / "policy.json").read_text())
    assert policy["Statement"], policy
    assert (clone / "loginwatch.yaml").read_text() == (ROOT / "config.example.yaml").read_text()
    # setup made the chain: the trail, the function, an alarm per rule the example turns on.
    assert aws.cloudtrail.get_trail_status(Name="loginwatch-trail")["IsLogging"]
    assert aws.lambda_.get_function(FunctionName="loginwatch-notifier")
    alarms = aws.cloudwatch.describe_alarms(AlarmNamePrefix="loginwatch-")["MetricAlarms"]
    assert len(alarms) >= 4, [a["AlarmName"] for a in alarms]
    assert slack_server.requests == []  # nothing posted from this machine
