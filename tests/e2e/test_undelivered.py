"""Undelivered alerts through the installed CLI: status sees them, teardown will not drop them
silently, and redeliver posts them once and empties the queues.

The emulator runs no Lambda, so `redeliver`'s one AWS-only step, Invoke, is the
notifier's handler run in this process (against the same emulator and a Slack
stand-in); the Invoke transport itself is pinned with Stubber in
tests/unit/test_redeliver.py.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from loginwatch import engine
from loginwatch.aws import connect
from loginwatch.demo.webhook_catcher import SlackStub
from loginwatch.notifier import handler
from loginwatch.notifier import settings as notifier_settings
from loginwatch.redeliver import RedeliveryFailed, redeliver
from tests.conftest import load_fixture
from tests.support.cli import BASE_CONFIG, Cli
from tests.support.inprocess import load

CONFIG = BASE_CONFIG + "fast_path:\n  regions: [us-west-2]\n"
OUTSIDE = "192.0.2.77"  # the fixture's address is inside the test config's VPN range


def queue_url(region: str, name: str) -> str:
    return boto3.client("sqs", region_name=region).get_queue_url(QueueName=name)["QueueUrl"]


def failed_sign_in(user: str, minutes_ago: int) -> dict[str, Any]:
    """An OnFailure record for a fast-path sign-in whose delivery failed."""
    record = json.loads(
        load_fixture("sqs/lambda_event_sqs_onfailure_record.json")["Records"][0]["body"]
    )
    event = copy.deepcopy(record["requestPayload"])
    moment = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    event["detail"].update(
        eventTime=moment,
        eventID=f"00000000-0000-4000-8000-{minutes_ago:012d}",
        sourceIPAddress=OUTSIDE,
        userIdentity={**event["detail"]["userIdentity"], "userName": user},
    )
    record["requestPayload"] = event
    return record


def queue(region: str, name: str, body: dict[str, Any]) -> None:
    boto3.client("sqs", region_name=region).send_message(
        QueueUrl=queue_url(region, name), MessageBody=json.dumps(body)
    )


def status(cli: Cli) -> tuple[int, dict[str, Any]]:
    run = cli.run("status", "--json")
    return run.returncode, json.loads(run.stdout)


@pytest.fixture
def local_notifier(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slack_server: SlackStub
) -> Any:
    """After setup: Invoke, as Lambda would run the deployed notifier: its settings, the
    webhook from SSM (pointed at the Slack stand-in), a FunctionError when it raises."""

    def start() -> tuple[Any, Any]:
        cli.write_config(CONFIG)
        run = cli.run("setup")
        assert run.returncode == 0, run.stderr
        return _local(tmp_path, monkeypatch, slack_server)

    return start


def _local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slack_server: SlackStub) -> Any:
    config = load(CONFIG)
    aws = connect(None, "us-east-1")
    deployment = engine.build_deployment(config, aws)
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(
            engine.notifier_settings(config, deployment.names, deployment.trail_log_group).to_dict()
        )
    )
    monkeypatch.setattr(notifier_settings, "SETTINGS_FILE", path)
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/lwtest/slack-webhook-url",
        Value=slack_server.url,
        Type="SecureString",
        Overwrite=True,
    )
    handler.reset_caches()

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        try:
            return handler.lambda_handler(event, None)
        except Exception as error:
            raise RedeliveryFailed(f"the notifier failed: {error}") from error

    return deployment, invoke


@pytest.mark.in_process
def test_queued_alerts_are_reported_kept_and_redelivered_once(
    cli: Cli, local_notifier: Any, slack_server: SlackStub
) -> None:
    deployment, invoke = local_notifier()
    queue("us-east-1", "lwtest-notifier-retry", failed_sign_in("alice", 20))
    queue("us-east-1", "lwtest-notifier-undelivered", failed_sign_in("mallory", 5 * 24 * 60))
    event = load_fixture("eventbridge/console_signin_event.json")
    event["detail"]["sourceIPAddress"] = OUTSIDE
    queue("us-west-2", "lwtest-events-undelivered", event)  # EventBridge gave up on it
    boto3.client("cloudwatch", region_name="us-east-1").put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": "lwtest-notifier-undelivered"}],
                "Value": 7200.0,
                "Unit": "Seconds",
                # A minute ago, as SQS's metrics arrive (moto counts none from the
                # very second status asks in).
                "Timestamp": datetime.now(UTC) - timedelta(minutes=1),
            }
        ],
    )

    code, report = status(cli)
    assert code == 1 and report["healthy"] is False
    assert report["undelivered"] == {
        "waiting_for_retry": 1,
        "dead_letter": 2,
        "oldest_dead_letter_age_seconds": 7200.0,
    }
    by_kind = {(r["kind"], r["region"]): r for r in report["resources"]}
    assert by_kind[("final-queue", "us-east-1")]["messages"] == 1
    assert by_kind[("events-dead-letter-queue", "us-west-2")]["messages"] == 1
    human = cli.run("status")
    assert "loginwatch redeliver" in human.stdout and "the oldest 2 h old" in human.stdout

    listed = cli.run("redeliver", "--dry-run")
    assert listed.returncode == 0 and ("sqs", "DeleteMessage") not in listed.calls
    assert "3 undelivered alert(s)" in listed.stdout
    assert f"sign-in by mallory from {OUTSIDE}" in listed.stdout

    refused = cli.run("teardown", "--yes")
    assert refused.returncode == 2 and refused.mutating == []
    assert "3 alert(s) Slack never received are still queued" in refused.stderr
    assert "--discard-undelivered" in refused.stderr

    done = redeliver(deployment, invoke)
    assert sorted(i.outcome for i in done) == ["posted", "posted", "posted"]
    texts = sorted(r.json["text"] for r in slack_server.requests)
    assert len(texts) == 3 and all(t.startswith("[delayed ") for t in texts)
    assert any("delayed 5.0 days: Slack was unavailable" in t for t in texts)
    assert any("EventBridge could not deliver it" in t for t in texts)
    assert redeliver(deployment, invoke) == []  # emptied; nothing is posted twice

    _, report = status(cli)  # (unhealthy only for the webhook pointed at the stand-in)
    assert report["undelivered"]["dead_letter"] == report["undelivered"]["waiting_for_retry"] == 0
    assert all(c["ok"] for c in report["checks"] if "undelivered" in c["name"])
    assert cli.run("teardown", "--yes").returncode == 0


@pytest.mark.in_process
def test_a_failing_notifier_leaves_the_alert_queued(
    cli: Cli, local_notifier: Any, slack_server: SlackStub
) -> None:
    from loginwatch.demo.webhook_catcher import SlackReply

    deployment, invoke = local_notifier()
    queue("us-east-1", "lwtest-notifier-undelivered", failed_sign_in("mallory", 90))
    slack_server.default_reply = SlackReply(status=500, body="still down")
    (item,) = redeliver(deployment, invoke)
    assert item.outcome == "failed" and not item.delivered
    # still there, and visible again for the next try
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = queue_url("us-east-1", "lwtest-notifier-undelivered")
    assert len(sqs.receive_message(QueueUrl=url, VisibilityTimeout=0).get("Messages", [])) == 1
    discarded = cli.run("teardown", "--yes", "--discard-undelivered")
    assert discarded.returncode == 0, discarded.stderr
    assert "1 undelivered alert(s) deleted with it" in discarded.stdout
