"""`loginwatch validate` through click's runner: summary, --ip verdicts, --json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from loginwatch.cli import cli

WEBHOOK = "https://hooks.slack.com/services/T000/B000/abcdefghijklmnop"
EXAMPLE = str(Path(__file__).parents[2] / "config.example.yaml")


def run(*args: str):
    return CliRunner().invoke(cli, list(args), env={"LOGINWATCH_SLACK_WEBHOOK": WEBHOOK})


def test_validate_example_human_output() -> None:
    result = run("validate", "--config", EXAMPLE, "--ip", "8.8.8.8", "--ip", "203.0.113.10")
    assert result.exit_code == 0, result.output
    assert "8.8.8.8: a console sign-in from here would alert" in result.output
    # Allowed by the allowlist; the example's other rules still watch what it cannot.
    assert "203.0.113.10: in the allowlist; other rules still apply" in result.output
    assert "root: root_sign_in (critical) → default" in result.output
    assert "IAM user with MFA: outside_allowlist (high) → default" in result.output
    assert "/1024" in result.output
    assert WEBHOOK not in result.output and "…mnop" in result.output


def test_validate_json_schema() -> None:
    result = run(
        "validate", "--config", EXAMPLE, "--json", "--ip", "2001:db8:1::1", "--ip", "192.0.2.1"
    )
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert set(data) >= {
        "region",
        "name",
        "allowlist",
        "pattern",
        "pattern_length",
        "exact",
        "warnings",
        "ips",
    }
    assert data["pattern_length"] == len(data["pattern"])
    assert [(v["ip"], v["alerts"]) for v in data["ips"]] == [
        ("2001:db8:1::1", False),
        ("192.0.2.1", True),
    ]
    inside = {t["kind"]: t["rules"] for t in data["ips"][0]["triggers"]}
    assert inside == {
        "IAM user with MFA": [],
        "IAM user without MFA": ["no_mfa"],
        "root": ["root_sign_in"],
        "SSO / federated": [],
    }
    outside = {t["kind"]: (t["rules"], t["severity"]) for t in data["ips"][1]["triggers"]}
    assert outside["root"] == (["root_sign_in", "outside_allowlist"], "critical")
    assert [r["name"] for r in data["rules"]] == [
        "outside_allowlist",
        "root_sign_in",
        "no_mfa",
        "failed_sign_ins",
        "tamper",
    ]
    assert data["exact"] is False  # the example has an IPv6 prefix
    assert data["fast_path"] == {"enabled": True, "regions": "all"}
    assert WEBHOOK not in result.stdout


def test_validate_shows_the_fast_path_settings(tmp_path: Any) -> None:
    text = Path(EXAMPLE).read_text().replace("  regions: all", "  regions: [eu-west-1, us-west-2]")
    listed = tmp_path / "listed.yaml"
    listed.write_text(text)
    human = run("validate", "--config", str(listed))
    assert "fast path" in human.output and "on: eu-west-1, us-west-2" in human.output
    off = tmp_path / "off.yaml"
    off.write_text(text.replace("  enabled: true", "  enabled: false"))
    data = json.loads(run("validate", "--config", str(off), "--json").stdout)
    assert data["fast_path"] == {"enabled": False, "regions": ["eu-west-1", "us-west-2"]}
    typo = tmp_path / "typo.yaml"
    typo.write_text(text.replace("eu-west-1", "eu-wset-1"))
    bad = run("validate", "--config", str(typo))
    assert getattr(bad.exception, "exit_code", None) == 2  # a ConfigError: main() exits 2
    assert "fast_path.regions[0]: 'eu-wset-1' is not an AWS region — did you mean 'eu-west-1'?" in (
        str(bad.exception)
    )


def test_config_option_after_the_command_and_before() -> None:
    assert run("--config", EXAMPLE, "validate").exit_code == 0
    assert run("validate", "--config", EXAMPLE).exit_code == 0


def test_bad_ip_argument_is_a_usage_error() -> None:
    result = run("validate", "--config", EXAMPLE, "--ip", "999.1.1.1")
    assert result.exit_code == 2 and "not an IPv4 or IPv6 address" in result.output


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    for command in ("setup", "status", "teardown", "test-alert", "validate"):
        assert command in result.output


KEY_RULES = """\
region: us-east-1
allowed_ips: [203.0.113.0/24]
slack: {webhook_url: https://hooks.slack.com/services/T000/B000/abcdefghijklmnop}
rules:
  access_key_outside_allowlist:
    enabled: true
    severity: high
    except:
      - user: ci-deployer
        from: [192.0.2.0/24]
"""


def test_validate_ip_says_whether_a_key_used_from_there_alerts(tmp_path: Path) -> None:
    """For a user's key in general and for the user in `except`: the notifier's own
    decision (api_calls.out_of_scope), and how many rules per region the rule needs."""
    config = tmp_path / "loginwatch.yaml"
    config.write_text(KEY_RULES)
    result = run("validate", "--config", str(config), "--json", "--ip", "192.0.2.9",
                 "--ip", "198.51.100.1", "--ip", "203.0.113.5")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    verdicts = {
        v["ip"]: {k["principal"]: k["alerts"] for k in v["access_keys"]} for v in data["ips"]
    }
    assert verdicts == {
        # ci-deployer's CIDR: its key may be used there; anyone else's alerts.
        "192.0.2.9": {"an IAM user's key": True, "ci-deployer": False},
        "198.51.100.1": {"an IAM user's key": True, "ci-deployer": True},
        "203.0.113.5": {"an IAM user's key": False, "ci-deployer": False},  # the allowlist
    }
    assert data["access_key_rules"].startswith("2 rules per region (IPv4: 1, IPv6: 1")
    human = run("validate", "--config", str(config), "--ip", "192.0.2.9")
    assert "API call with ci-deployer's key: no alert" in " ".join(human.output.split())
    assert "API call with an IAM user's key: alerts (high) → default" in human.output
