"""settings.json schema: exactly the keys the CLI writes, validated strictly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loginwatch.notifier.settings import Settings, SettingsError, load_settings
from tests.notifier.conftest import BASE_SETTINGS


def test_round_trip() -> None:
    settings = Settings.from_dict(BASE_SETTINGS)
    assert settings.to_dict() == BASE_SETTINGS
    assert settings.allowlist == ("203.0.113.0/24", "2001:db8:1::/48")
    with pytest.raises(AttributeError):
        settings.region = "eu-west-1"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"extra": 1}, "unknown \\['extra'\\]"),
        ({"lookback_minutes": True}, "lookback_minutes"),
        ({"lookback_minutes": -1}, "lookback_minutes"),
        ({"allowlist": "203.0.113.0/24"}, "allowlist"),
        ({"allowlist": ["bogus"]}, "'bogus'"),
        ({"region": ""}, "region"),
    ],
)
def test_invalid_settings_are_rejected(change: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_dict({**BASE_SETTINGS, **change})


def test_missing_key_is_named() -> None:
    data = {k: v for k, v in BASE_SETTINGS.items() if k != "alarm_name"}
    with pytest.raises(SettingsError, match="missing \\['alarm_name'\\]"):
        Settings.from_dict(data)


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(BASE_SETTINGS))
    assert load_settings(path).alarm_name == BASE_SETTINGS["alarm_name"]
    with pytest.raises(SettingsError, match="missing"):
        load_settings(tmp_path / "nope.json")
