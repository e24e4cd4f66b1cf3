"""Config validation: every rule names the file, line and key path, and exits 2 from the CLI."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from loginwatch.cli import cli, main
from loginwatch.config import load_config, mask_webhook, parse_config
from loginwatch.errors import ConfigError

WEBHOOK = "https://hooks.slack.com/services/T000/B000/abcdefghijklmnop"
GOOD = f"""\
region: eu-west-1
name: acme
allowed_ips:
  - 203.0.113.10
  - cidr: 198.51.100.0/24
    label: VPN
slack:
  webhook_url: {WEBHOOK}
"""


def parse(text: str, env: dict[str, str] | None = None):
    return parse_config(textwrap.dedent(text), "lw.yaml", env or {})


def test_good_config_loads_into_frozen_typed_objects() -> None:
    config = parse(GOOD)
    assert config.region == "eu-west-1" and config.name == "acme"
    assert [str(e.network) for e in config.allowed] == ["203.0.113.10/32", "198.51.100.0/24"]
    assert config.allowed[1].label == "VPN"
    assert config.retention_days == 365 and config.alarm_period_seconds == 60
    assert config.alarm_evaluation_periods == 1 and not config.reuses_trail
    with pytest.raises(AttributeError):
        config.region = "us-east-1"  # type: ignore[misc]
    assert WEBHOOK not in repr(config)


def test_env_interpolation_reads_the_webhook_from_the_environment() -> None:
    text = GOOD.replace(WEBHOOK, "${HOOK}")
    assert parse(text, {"HOOK": WEBHOOK}).webhook_url == WEBHOOK


def test_example_config_is_valid() -> None:
    example = Path(__file__).parents[2] / "config.example.yaml"
    config = load_config(example, env={"LOGINWATCH_SLACK_WEBHOOK": WEBHOOK})
    assert config.name == "loginwatch" and len(config.allowed) == 3


def test_mask_shows_host_and_last_four_only() -> None:
    assert mask_webhook(WEBHOOK) == "https://hooks.slack.com/…mnop"


BROKEN = [
    # (description, replace-from, replace-to, expected line, expected fragments)
    ("unknown key with typo", "name: acme", "nmae: acme", 2, ["nmae", "did you mean 'name'"]),
    ("region not a region", "eu-west-1", "eu-west-1a", 1, ["region", "not an AWS region"]),
    ("region typo", "eu-west-1", "eu-wset-1", 1, ["region", "did you mean 'eu-west-1'"]),
    ("bad name", "name: acme", "name: Acme_Corp", 2, ["name", "lowercase"]),
    ("invalid ip", "203.0.113.10", "203.0.113.300", 4, ["allowed_ips[0]", "not an IP"]),
    (
        "host bits",
        "198.51.100.0/24",
        "198.51.100.7/24",
        5,
        ["allowed_ips[1].cidr", "198.51.100.0/24"],
    ),
    ("ip wrong type", "  - 203.0.113.10", "  - [1, 2]", 4, ["allowed_ips[0]", "got a list"]),
    (
        "empty allowlist",
        "allowed_ips:\n  - 203.0.113.10\n  - cidr: 198.51.100.0/24\n    label: VPN",
        "allowed_ips: []",
        3,
        ["allowed_ips", "empty"],
    ),
    (
        "http webhook",
        WEBHOOK,
        "http://hooks.slack.com/services/x",
        8,
        ["slack.webhook_url", "https://"],
    ),
    ("not a url", WEBHOOK, "hooks.slack.com/x", 8, ["slack.webhook_url", "https://"]),
    (
        "retention",
        "label: VPN",
        "label: VPN\nlog_group:\n  retention_days: 366",
        8,
        ["log_group.retention_days", "366", "400"],
    ),
    (
        "retention wrong type",
        "label: VPN",
        "label: VPN\nlog_group:\n  retention_days: year",
        8,
        ["log_group.retention_days", "whole number"],
    ),
    (
        "alarm period",
        "label: VPN",
        "label: VPN\nalarm:\n  period_seconds: 45",
        8,
        ["alarm.period_seconds", "45"],
    ),
    (
        "alarm window",
        "label: VPN",
        "label: VPN\nalarm:\n  period_seconds: 3600\n  evaluation_periods: 25",
        9,
        ["alarm.evaluation_periods", "one day"],
    ),
    (
        "aws managed sns key",
        "label: VPN",
        "label: VPN\nkms:\n  topic: alias/aws/sns",
        8,
        ["kms.topic", "silently dropped"],
    ),
    ("bad kms key", "label: VPN", "label: VPN\nkms:\n  bucket: not a key!", 8, ["kms.bucket"]),
    (
        "duplicate key",
        "name: acme",
        "name: acme\nname: other",
        3,
        ["name", "duplicate key", "line 2"],
    ),
    ("tags not mapping", "label: VPN", "label: VPN\ntags: [a, b]", 7, ["tags", "mapping"]),
    ("reserved tag", "label: VPN", "label: VPN\ntags:\n  managed-by: me", 8, ["tags.managed-by"]),
    ("bad yaml", "name: acme", "name: [acme", 3, ["not valid YAML"]),
    (
        "unknown nested key",
        "label: VPN",
        "label: VPN\ntrail:\n  existnig: main",
        8,
        ["trail.existnig", "did you mean 'existing'"],
    ),
    (
        "bucket with reuse",
        "label: VPN",
        "label: VPN\ntrail:\n  existing: main\n  bucket: my-bucket",
        9,
        ["trail.bucket", "cannot be combined"],
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "line", "fragments"),
    [case[1:] for case in BROKEN],
    ids=[case[0] for case in BROKEN],
)
def test_broken_config_exits_2_naming_line_and_key(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    old: str,
    new: str,
    line: int,
    fragments: list[str],
) -> None:
    assert old in GOOD
    path = tmp_path / "lw.yaml"
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", "--config", str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"lw.yaml:{line}" in err, err
    for fragment in fragments:
        assert fragment in " ".join(err.split()), err
    assert "Traceback" not in err
    assert "abcdefghijklmnop" not in err  # the webhook is never echoed


def test_unset_webhook_variable_is_one_line_for_setup_and_no_problem_for_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lw.yaml"
    path.write_text(GOOD.replace(WEBHOOK, "${NOPE_NOT_SET}", 1))
    with pytest.raises(SystemExit) as exit_info:
        main(["setup", "--config", str(path)])  # fails on the config, before any AWS call
    assert exit_info.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err  # one cause, one line
    assert "lw.yaml:8" in err[0] and "NOPE_NOT_SET is not set" in err[0]
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", "--config", str(path)])
    assert exit_info.value.code == 0
    assert "not given" in capsys.readouterr().out


def test_a_section_key_is_reported_on_its_own_line() -> None:
    text = GOOD.replace("allowed_ips:", "allowed_ip:", 1)
    line = GOOD.splitlines().index("allowed_ips:") + 1
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert f"lw.yaml:{line}: allowed_ip: unknown key" in str(info.value), info.value


def test_parameter_key_must_be_a_key_not_an_alias() -> None:
    with pytest.raises(ConfigError, match="IAM cannot grant by alias"):
        parse(GOOD + "kms:\n  parameter: alias/webhooks\n")
    with pytest.raises(ConfigError, match="CloudWatch Logs accepts only the key ARN"):
        parse(GOOD + "kms:\n  log_group: 1234abcd-12ab-34cd-56ef-1234567890ab\n")
    with pytest.raises(ConfigError, match="compares with it"):
        parse(GOOD + "kms:\n  bucket: alias/trail\n")
    assert parse(GOOD + "kms:\n  topic: alias/alerts\n").kms.topic == "alias/alerts"
    arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert parse(GOOD + f"kms:\n  parameter: {arn}\n").kms.parameter == arn


def test_all_problems_are_reported_at_once() -> None:
    text = GOOD.replace("eu-west-1", "nowhere").replace("203.0.113.10", "nope")
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert len(info.value.problems) == 2


def test_missing_required_keys() -> None:
    with pytest.raises(ConfigError) as info:
        parse("name: acme\n")
    text = "\n".join(info.value.problems)
    assert "region: is required" in text and "allowed_ips" in text and "slack.webhook_url" in text


def test_non_slack_https_host_is_a_warning_and_loopback_http_is_accepted() -> None:
    config = parse(GOOD.replace(WEBHOOK, "https://example.com/hook/123456"))
    assert any("not hooks.slack.com" in w for w in config.warnings)
    assert parse(GOOD.replace(WEBHOOK, "http://127.0.0.1:8080/hook")).warnings == ()


def test_missing_file_says_how_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config\.example\.yaml"):
        load_config(tmp_path / "absent.yaml")


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "env.yaml"
    path.write_text(GOOD)
    monkeypatch.setenv("LOGINWATCH_CONFIG", str(path))
    result = CliRunner().invoke(cli, ["validate", "--json"])
    assert result.exit_code == 0, result.output
