"""Run the installed `loginwatch` console script against a moto server, recording API calls."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from loginwatch.aws import SplitsCalls

WEBHOOK = "https://hooks.slack.com/services/T000/B000/e2eSECRETwebhook"
# Regions the emulator reports as enabled (the aws partition's, as AWS would): the
# fast path forwards from each one that is not the home region.
EMULATED_REGIONS = (
    "af-south-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1",
    "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ca-central-1", "eu-central-1",
    "eu-north-1", "eu-south-1", "eu-west-1", "eu-west-2", "eu-west-3", "sa-east-1",
    "us-east-1", "us-east-2", "us-west-1", "us-west-2",
)  # fmt: skip
FORWARDING_REGIONS = tuple(r for r in EMULATED_REGIONS if r != "us-east-1")
# For a test about every region: the emulator reports them all enabled (see aws_server;
# other tests get two).
every_region = pytest.mark.enabled_regions(*EMULATED_REGIONS)
BASE_CONFIG = """\
region: us-east-1
name: lwtest
allowed_ips:
  - 203.0.113.10
  - cidr: 198.51.100.0/24
    label: VPN
slack:
  webhook_url: ${LW_WEBHOOK}
tags:
  team: security
"""


# The config a test gets unless it says otherwise: the fast path forwards from one other
# region, which stands for all of them (each runs the same code); the 18 others are only
# read, as left-overs would be. Tests about every region write BASE_CONFIG.
ONE_FORWARDING_REGION = BASE_CONFIG + "fast_path:\n  regions: [us-west-2]\n"


def loginwatch_executable() -> str:
    script = Path(sys.executable).parent / "loginwatch"
    assert script.exists(), "install the package first (pip install -e '.[test]')"
    return str(script)


@dataclass
class Run(SplitsCalls):
    returncode: int
    stdout: str
    stderr: str
    calls: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Cli:
    """The real CLI in a subprocess: what a user runs, with AWS_ENDPOINT_URL at the emulator."""

    endpoint: str
    workdir: Path
    webhook: str = WEBHOOK
    config_text: str = ONE_FORWARDING_REGION

    @property
    def config_path(self) -> Path:
        return self.workdir / "loginwatch.yaml"

    def write_config(self, text: str | None = None) -> None:
        self.config_text = text if text is not None else self.config_text
        self.config_path.write_text(self.config_text)

    def run(self, *args: str, stdin: str | None = None) -> Run:
        if not self.config_path.exists():
            self.write_config()
        log = self.workdir / "calls.jsonl"
        log.unlink(missing_ok=True)
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": self.endpoint,
            "LW_WEBHOOK": self.webhook,
            "LOGINWATCH_CALL_LOG": str(log),
            "COLUMNS": "200",
        }
        proc = subprocess.run(
            [loginwatch_executable(), "--config", str(self.config_path), *args],
            capture_output=True,
            text=True,
            env=env,
            input=stdin,
            timeout=120,
            cwd=self.workdir,
        )
        calls = (
            [tuple(json.loads(line)) for line in log.read_text().splitlines()]
            if log.exists()
            else []
        )
        return Run(proc.returncode, proc.stdout, proc.stderr, calls)  # type: ignore[arg-type]


@dataclass
class InProcessCli(Cli):
    """The same CLI (its `main`: argument parsing, every message, every exit code) called
    in this process against in-process moto: no interpreter start, no imports, no HTTP.
    A command costs about a third of the installed script's, so a test about what the
    commands do to resources uses this; what only the installed script over HTTP can
    show (the console script, concurrent reads, signals, a stock server) keeps `Cli`."""

    def run(self, *args: str, stdin: str | None = None) -> Run:
        from loginwatch import cli, ui

        if not self.config_path.exists():
            self.write_config()
        log = self.workdir / "calls.jsonl"
        log.unlink(missing_ok=True)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.ExitStack() as stack:
            patch = stack.enter_context(pytest.MonkeyPatch.context())
            patch.setenv("LW_WEBHOOK", self.webhook)
            patch.setenv("LOGINWATCH_CALL_LOG", str(log))
            patch.setattr(sys, "stdin", io.StringIO(stdin or ""))
            for console in (ui.out, ui.err):  # as COLUMNS=200 makes them in a subprocess
                patch.setattr(console, "_width", 200)
            patch.chdir(self.workdir)
            stack.enter_context(contextlib.redirect_stdout(out))
            stack.enter_context(contextlib.redirect_stderr(err))
            try:
                cli.main(["--config", str(self.config_path), *args])
                code = 0
            except SystemExit as exited:
                code = exited.code if isinstance(exited.code, int) else 1
        calls = (
            [tuple(json.loads(line)) for line in log.read_text().splitlines()]
            if log.exists()
            else []
        )
        return Run(code, out.getvalue(), err.getvalue(), calls)  # type: ignore[arg-type]
