"""Issue 21 through the installed CLI: commands that never write the webhook run without
it, mistakes fail fast and plainly, status tells the truth after teardown, and the small
things (a declined prompt, --help, completion, test-alert --via slack) say what they mean."""

from __future__ import annotations

import json
import os
import pty
import socket
import subprocess
import time

import pytest

from loginwatch.demo.webhook_catcher import SlackStub
from tests.support.cli import ONE_FORWARDING_REGION, Cli, loginwatch_executable

# As most teams write it: the secret comes from the environment, which only setup needs.
SECRET_FROM_ENV = ONE_FORWARDING_REGION.replace("${LW_WEBHOOK}", "${LOGINWATCH_SLACK_WEBHOOK}")


def answer_on_a_terminal(cli: Cli, answer: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with a terminal on stdin (so it may ask) and type ``answer``."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [loginwatch_executable(), "--config", str(cli.config_path), *args],
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "AWS_ENDPOINT_URL": cli.endpoint, "COLUMNS": "200"},
            cwd=cli.workdir,
        )
        os.write(master, answer.encode() + b"\n")
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(slave)
        os.close(master)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_what_does_not_write_the_webhook_runs_without_it(cli: Cli) -> None:
    """status and teardown without it: test_status_teardown's teardown test."""
    cli.write_config(SECRET_FROM_ENV)  # LOGINWATCH_SLACK_WEBHOOK is not set
    permissions = cli.run("permissions", "--for", "teardown")
    assert permissions.returncode == 0, permissions.stderr
    assert json.loads(permissions.stdout)["Statement"]
    redeliver = cli.run("redeliver", "--dry-run")
    assert redeliver.returncode == 0, redeliver.stderr
    assert "No undelivered alerts" in redeliver.stdout
    # setup writes it: it needs it, and says so in one line, before any AWS call.
    refused = cli.run("setup")
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert refused.returncode == 2 and refused.calls == [], refused.stderr
    assert len(lines) == 1 and "LOGINWATCH_SLACK_WEBHOOK is not set" in lines[0], lines


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_wrong_region_flag_and_an_unreachable_endpoint_fail_fast_and_plainly(cli: Cli) -> None:
    typo = cli.run("--region", "us-east-9", "status")
    assert typo.returncode == 2 and typo.calls == [], typo.stderr
    assert "--region: 'us-east-9' is not an AWS region — did you mean 'us-east-2'?" in typo.stderr

    validate = cli.run("--region", "eu-west-1", "validate", "--json")
    assert validate.returncode == 0 and json.loads(validate.stdout)["region"] == "eu-west-1"

    nowhere = Cli(endpoint=f"http://127.0.0.1:{_closed_port()}", workdir=cli.workdir)
    started = time.monotonic()
    run = nowhere.run("status")
    assert time.monotonic() - started < 10
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert f"Cannot reach the AWS endpoint {nowhere.endpoint} (AWS_ENDPOINT_URL)" in run.stderr


def test_help_completion_and_a_test_post_say_what_they_mean(
    cli: Cli, slack_server: SlackStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    help_text = cli.run("--help").stdout
    commands = help_text.split("Commands:")[1]
    assert "..." not in commands and "(idempotent)." in " ".join(commands.split())

    cli.webhook = slack_server.url
    posted = cli.run("test-alert", "--via", "slack")
    assert posted.returncode == 0, posted.stderr
    (request,) = slack_server.requests
    assert "unknown" not in json.dumps(request.json) and "account" not in request.json["text"]

    monkeypatch.setenv("_LOGINWATCH_COMPLETE", "bash_source")
    completion = cli.run()
    assert completion.returncode == 0 and "_LOGINWATCH_COMPLETE=bash_complete" in completion.stdout
