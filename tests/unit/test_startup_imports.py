"""A command imports only what it uses: `--help` loads click, not the config, rich or boto3.

Pins the property, not the time (bench/startup.py measures that). Each case runs the
CLI's entry point in a fresh interpreter and lists the modules it loaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from loginwatch.config import DEFAULT_CONFIG_FILE

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
from loginwatch.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("\\n-----modules-----")
print("\\n".join(sorted(sys.modules)))
"""

AWS = ("boto3", "botocore", "loginwatch.aws", "loginwatch.engine", "loginwatch.resources")
# What `--help` never needs: the config (and YAML), the notifier, rich, HTTP, AWS.
NOT_FOR_HELP = (
    *AWS,
    "rich",
    "yaml",
    "http.client",
    "urllib.request",
    "loginwatch.config",
    "loginwatch.ui",
    "loginwatch.summary",
    "loginwatch.notifier",
    "loginwatch.notifier.slack_delivery",
    "loginwatch.demo",
)


def loaded_modules(*args: str, cwd: Path) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOGINWATCH_"))}
    env["LOGINWATCH_SLACK_WEBHOOK"] = "https://hooks.slack.com/services/T000/B000/startupXXXX"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    output, _, modules = done.stdout.partition("\n-----modules-----\n")
    assert output.strip(), done.stderr  # the command did run
    return set(modules.split())


def loaded_of(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


def test_importing_the_cli_loads_click_only() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, loginwatch.cli; print('\\n'.join(sys.modules))"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert loaded_of(set(done.stdout.split()), NOT_FOR_HELP) == []


@pytest.mark.parametrize(
    "args", [("--help",), ("--version",), ("status", "--help"), ("setup", "--help")]
)
def test_help_loads_no_config_rich_or_aws(args: tuple[str, ...], tmp_path: Path) -> None:
    assert loaded_of(loaded_modules(*args, cwd=tmp_path), NOT_FOR_HELP) == []


def test_validate_loads_the_config_and_rich_not_aws(tmp_path: Path) -> None:
    (tmp_path / DEFAULT_CONFIG_FILE).write_text((ROOT / "config.example.yaml").read_text())
    modules = loaded_modules("validate", cwd=tmp_path)
    assert {"loginwatch.config", "rich"} <= modules
    assert loaded_of(modules, ("boto3", "loginwatch.aws", "loginwatch.engine")) == []


def test_known_regions_read_without_botocore_are_botocores_own() -> None:
    """config.known_regions reads botocore's endpoint data file instead of importing
    botocore (0.3 s of start-up): the answer must be the one botocore's session gives."""
    import botocore.session

    from loginwatch.config import known_regions

    session = botocore.session.get_session()
    expected = {
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("cloudtrail", partition_name=partition)
    }
    assert set(known_regions()) == expected and "us-east-1" in expected
