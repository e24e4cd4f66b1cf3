"""The deployment zip: deterministic, self-contained, and runnable as Lambda would run it."""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from loginwatch import notifier_package
from loginwatch.notifier.settings import Settings, SettingsError
from tests.notifier.conftest import BASE_SETTINGS, NotifierWorld, alarm_event, cloudtrail_record

EXPECTED_MODULES = {
    "__init__.py",
    "account_names.py",
    "alarm_event.py",
    "alarm_history.py",
    "api_calls.py",
    "aws_clients.py",
    "calls.py",
    "claims.py",
    "context.py",
    "dispatch.py",
    "events.py",
    "handler.py",
    "ip_location.py",
    "ipmatch.py",
    "key_windows.py",
    "protocol.py",
    "paths/__init__.py",
    "paths/alarm.py",
    "paths/api_call.py",
    "paths/drill_event.py",
    "paths/key_exposed.py",
    "paths/key_follow_up.py",
    "paths/self_check.py",
    "paths/sign_in.py",
    "paths/tamper.py",
    "redelivery.py",
    "retry_batch.py",
    "routing.py",
    "rules.py",
    "self_check.py",
    "self_check_message.py",
    "self_check_spec.py",
    "self_check_state.py",
    "settings.py",
    "slack_delivery.py",
    "slack_message.py",
    "tamper.py",
    "webhook_secret.py",
}


def entries(zip_bytes: bytes) -> list[zipfile.ZipInfo]:
    return zipfile.ZipFile(io.BytesIO(zip_bytes)).infolist()


def test_build_is_byte_identical() -> None:
    first = notifier_package.build_zip(BASE_SETTINGS)
    second = notifier_package.build_zip(dict(reversed(list(BASE_SETTINGS.items()))))
    assert first == second
    assert notifier_package.code_sha256(first) == notifier_package.code_sha256(second)


def test_different_settings_give_different_bytes() -> None:
    one = notifier_package.build_zip(BASE_SETTINGS)
    other = notifier_package.build_zip({**BASE_SETTINGS, "allowlist": ["192.0.2.0/24"]})
    assert one != other


def test_entries_are_sorted_fixed_and_complete() -> None:
    infos = entries(notifier_package.build_zip(BASE_SETTINGS))
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {n.removeprefix("loginwatch_notifier/") for n in names} == EXPECTED_MODULES | {
        "settings.json",
        "ip_location.bin",
    }
    source_dir = notifier_package.notifier_source_dir()
    assert {p.relative_to(source_dir).as_posix() for p in source_dir.rglob("*.py")} == (
        EXPECTED_MODULES
    )
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.external_attr == 0o644 << 16
        assert info.create_system == 3
        assert info.compress_type == zipfile.ZIP_STORED
        assert info.extra == b""
        assert "__pycache__" not in info.filename


def test_settings_json_is_sorted_and_indented() -> None:
    archive = zipfile.ZipFile(io.BytesIO(notifier_package.build_zip(BASE_SETTINGS)))
    text = archive.read("loginwatch_notifier/settings.json").decode()
    assert text.strip() == json.dumps(BASE_SETTINGS, sort_keys=True, indent=2)


def test_invalid_settings_fail_at_packing_time() -> None:
    with pytest.raises(SettingsError, match="alarm_name"):
        notifier_package.build_zip({k: v for k, v in BASE_SETTINGS.items() if k != "alarm_name"})


def test_the_organizations_home_account_is_a_setting_only_in_organization_mode() -> None:
    """Setup writes the home account in organization mode (a tamper event of another
    account is a member's); a settings.json without it reads as before."""
    home = {**BASE_SETTINGS, "organization_home": "111122223333"}
    assert Settings.from_dict(home).organization_home == "111122223333"
    assert Settings.from_dict(home).to_dict() == home
    assert Settings.from_dict(BASE_SETTINGS).organization_home == ""
    assert "organization_home" not in Settings.from_dict(BASE_SETTINGS).to_dict()
    with pytest.raises(SettingsError, match="organization_home"):
        Settings.from_dict({**BASE_SETTINGS, "organization_home": "not-an-account"})


def test_code_sha256_is_lambdas_format() -> None:
    data = notifier_package.build_zip(BASE_SETTINGS)
    digest = base64.b64decode(notifier_package.code_sha256(data))
    assert digest == hashlib.sha256(data).digest()
    assert notifier_package.HANDLER == "loginwatch_notifier.handler.lambda_handler"
    assert notifier_package.RUNTIME == "python3.12"


def test_zip_modules_import_only_stdlib_boto3_and_each_other() -> None:
    archive = zipfile.ZipFile(io.BytesIO(notifier_package.build_zip(BASE_SETTINGS)))
    allowed_top = set(sys.stdlib_module_names) | {"boto3", "botocore"}
    for name in archive.namelist():
        if not name.endswith(".py"):
            continue
        source = archive.read(name).decode()
        assert "loginwatch." not in source.replace("loginwatch_notifier.", "")  # no path refs
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                assert top != "loginwatch", f"{name} imports {module}"
                assert top in allowed_top, f"{name} imports non-stdlib {module}"


def test_zip_imports_standalone_without_loginwatch_or_boto3(tmp_path: Path) -> None:
    """As Lambda does: only the extracted zip on the path (-S: no site-packages)."""
    zipfile.ZipFile(io.BytesIO(notifier_package.build_zip(BASE_SETTINGS))).extractall(tmp_path)
    script = (
        "import json, sys\n"
        "import loginwatch_notifier.handler as h\n"
        "result = h.lambda_handler({}, None)\n"
        "assert result['outcome'] == 'ignored', result\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('loginwatch', 'boto3'))\n"
        "assert not bad, bad\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-S", "-c", script], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outcome"] == "ignored"


def test_handler_from_zip_runs_end_to_end(world: NotifierWorld, tmp_path: Path) -> None:
    settings = {**BASE_SETTINGS, "allowlist": ["198.51.100.0/24"]}
    module = notifier_package.load_handler_from_zip(notifier_package.build_zip(settings), tmp_path)
    assert module.__name__ == "loginwatch_notifier.handler"
    assert Path(module.__file__).is_relative_to(tmp_path)
    when = world.at(3).replace(microsecond=0)
    world.trail.put(
        (when, cloudtrail_record("alice")),  # 198.51.100.23: allowed by *these* settings
        (when, cloudtrail_record("root")),
    )
    result = module.lambda_handler(alarm_event(state_change_time=world.now), None)
    assert result["outcome"] == "posted" and result["events"] == 1
    (request,) = world.slack.requests
    assert "ROOT account" in request.json["text"]
    assert "alice" not in json.dumps(request.json)


def test_repeated_loads_use_their_own_settings(tmp_path: Path) -> None:
    first = notifier_package.load_handler_from_zip(
        notifier_package.build_zip(
            {**BASE_SETTINGS, "alarm_name": "first", "alarms": {"first": "outside_allowlist"}}
        ),
        tmp_path,
    )
    second = notifier_package.load_handler_from_zip(
        notifier_package.build_zip(
            {**BASE_SETTINGS, "alarm_name": "second", "alarms": {"second": "outside_allowlist"}}
        ),
        tmp_path,
    )
    assert first is not second
    assert sys.modules["loginwatch_notifier.handler"] is second
    assert first.context.cached_settings()[0].alarm_name == "first"
    assert second.context.cached_settings()[0].alarm_name == "second"
    # An alarm with the second name is not the first handler's alarm, and vice versa.
    ignored = first.lambda_handler(alarm_event(AlarmName="second", state="OK"), None)
    assert "'second' is not loginwatch's" in ignored["reason"]
    ok = second.lambda_handler(alarm_event(AlarmName="second", state="OK"), None)
    assert "state is OK" in ok["reason"]
