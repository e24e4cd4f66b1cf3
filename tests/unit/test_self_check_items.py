"""What the self-check verifies comes from the one list of resources: each wanted
resource's own items, in its region, packed into the notifier's settings.json."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from loginwatch.engine import offline_deployment
from loginwatch.notifier_package import PACKAGE_NAME
from tests.support.cli import BASE_CONFIG
from tests.support.inprocess import load

ACCOUNT = "123456789012"
REGIONS = "fast_path:\n  regions: [us-west-2, eu-west-1]\n"
DESTINATION = (
    "  destinations:\n    - name: urgent\n      webhook_url: ${LW_WEBHOOK}\n"
    "      severities: [critical]\n"
)


def packed_settings(text: str) -> dict[str, Any]:
    deployment = offline_deployment(load(text), ACCOUNT)
    with zipfile.ZipFile(io.BytesIO(deployment.package)) as package:
        return json.loads(package.read(f"{PACKAGE_NAME}/settings.json"))


def items(text: str) -> set[tuple[str, str, str]]:
    return {
        (i["check"], i["region"], i["name"]) for i in packed_settings(text)["self_check"]["checks"]
    }


def test_every_link_of_the_chain_in_every_region_is_checked() -> None:
    text = (
        BASE_CONFIG.replace(
            "slack:\n  webhook_url: ${LW_WEBHOOK}\n",
            "slack:\n  webhook_url: ${LW_WEBHOOK}\n" + DESTINATION,
        )
        + REGIONS
    )
    found = items(text)
    home = "us-east-1"
    trail = f"arn:aws:cloudtrail:{home}:{ACCOUNT}:trail/lwtest-trail"
    expected = {
        ("trail", home, trail),
        ("alarm", home, "lwtest-unallowed-console-login"),
        ("alarm", home, "lwtest-cis-trail-changes"),  # tamper, on by default
        ("alarm", home, "lwtest-tamper-own-resources"),
        ("subscription", home, f"arn:aws:sns:{home}:{ACCOUNT}:lwtest-alerts"),
        ("concurrency", home, "lwtest-notifier"),
        ("table", home, "lwtest-claims"),
        ("queue", home, "lwtest-notifier-undelivered"),
        ("webhook", home, "/lwtest/slack-webhook-url"),
        ("webhook", home, "/lwtest/slack-destinations/urgent"),
        ("rule", home, "lwtest-console-sign-in"),
    }
    for region in (home, "us-west-2", "eu-west-1"):
        expected |= {
            ("rule", region, "lwtest-tamper-1"),
            ("queue", region, "lwtest-events-undelivered"),
        }
        if region != home:
            expected.add(("rule", region, "lwtest-console-sign-in"))
    assert expected <= found
    # Nothing of a region the fast path does not cover, nor the retry queue (alerts
    # there are being retried, not lost), nor a dropped destination.
    assert {region for _, region, _ in found} == {home, "us-west-2", "eu-west-1"}
    assert not any(name == "lwtest-notifier-retry" for _, _, name in found)
    settings = packed_settings(text)["self_check"]
    assert (settings["heartbeat_parameter"], settings["weekly_summary"]) == ("", True)
    subscription = next(i for i in settings["checks"] if i["check"] == "subscription")
    assert subscription["endpoint"] == f"arn:aws:lambda:{home}:{ACCOUNT}:function:lwtest-notifier"
    webhook = next(i for i in settings["checks"] if i["name"].endswith("/urgent"))
    assert webhook["destination"] == "urgent"


def test_rules_turned_on_or_off_are_checked_or_not() -> None:
    off = items(BASE_CONFIG + REGIONS + "rules:\n  tamper: false\n")
    assert not any(name.startswith("lwtest-tamper") for _, _, name in off)
    keys = items(BASE_CONFIG + REGIONS + "rules:\n  access_key_outside_allowlist: {}\n")
    assert ("rule", "eu-west-1", "lwtest-key-api-calls-1") in keys
    assert ("alarm", "us-east-1", "lwtest-key-api-calls-outside") in keys


def test_the_heartbeat_url_is_named_by_its_parameter_never_by_value() -> None:
    text = BASE_CONFIG + "self_check:\n  heartbeat_url: https://hc-ping.com/secret-uuid\n"
    settings = packed_settings(text)
    assert settings["self_check"]["heartbeat_parameter"] == "/lwtest/heartbeat-url"
    assert "secret-uuid" not in json.dumps(settings)


def test_off_means_no_self_check_in_the_settings() -> None:
    assert "self_check" not in packed_settings(BASE_CONFIG + "self_check:\n  enabled: false\n")
