"""The webhook URL appears nowhere in full: not in any output, plan, log line or function config."""

from __future__ import annotations

import json
from typing import Any

from tests.support.cli import WEBHOOK, Cli

SECRET_PART = WEBHOOK.rsplit("/", 1)[1]  # the token: the part that makes it a secret


def assert_clean(text: str, where: str) -> None:
    assert WEBHOOK not in text, f"webhook in full in {where}"
    assert SECRET_PART not in text, f"webhook token in {where}"


def test_no_command_prints_the_webhook(cli: Cli, aws: Any) -> None:
    commands = [
        ["validate"], ["validate", "--json"], ["--debug", "validate"],
        # (--debug prints what the plain command does, and more.)
        ["setup", "--dry-run"], ["--debug", "setup"],
        ["status", "--json"], ["--debug", "status"],
        ["teardown", "--dry-run"],
    ]  # fmt: skip
    for args in commands:
        run = cli.run(*args)
        assert run.returncode == 0, (args, run.stderr)
        assert_clean(run.stdout + run.stderr, " ".join(args))

    # Error paths with --debug (tracebacks shown): still clean.
    aws.sns.delete_topic(TopicArn="arn:aws:sns:us-east-1:123456789012:lwtest-alerts")
    aws.sns.create_topic(Name="lwtest-alerts")  # an untagged look-alike: setup refuses
    failed = cli.run("--debug", "setup")
    assert failed.returncode == 2 and "Traceback" in failed.stderr
    assert_clean(failed.stdout + failed.stderr, "--debug setup error")

    # The function's configuration (environment included) and its package settings.
    function = aws.lambda_.get_function(FunctionName="lwtest-notifier")
    assert_clean(json.dumps(function["Configuration"], default=str), "function configuration")
    assert not (function["Configuration"].get("Environment") or {}).get("Variables")
    # The only place it lives: the SecureString parameter.
    param = aws.ssm.get_parameter(Name="/lwtest/slack-webhook-url", WithDecryption=True)
    assert param["Parameter"]["Type"] == "SecureString" and param["Parameter"]["Value"] == WEBHOOK


def test_the_deployed_package_does_not_contain_the_webhook() -> None:
    from loginwatch.engine import notifier_settings
    from loginwatch.names import Names
    from loginwatch.notifier_package import build_zip
    from tests.support.inprocess import load

    config = load()
    names = Names.for_config(config, "123456789012")
    package = build_zip(notifier_settings(config, names, names.trail_log_group).to_dict())
    assert SECRET_PART.encode() not in package
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        for name in archive.namelist():
            assert SECRET_PART not in archive.read(name).decode("utf-8", "replace"), name
