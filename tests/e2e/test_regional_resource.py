"""A resource kind that lives in another region, added here and in resources_for only.

The kind below (an SQS queue in eu-west-1) is unknown to everything in
src/loginwatch: it declares its calls like every real kind, and setup, status,
teardown and `permissions` pick it up through ``engine.resources_for``.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import boto3
import pytest

from loginwatch import engine
from loginwatch import operator_policy as perms
from loginwatch.cli import main
from loginwatch.resources.base import Observed, Resource, absent_on, has_our_tags
from tests.support.cli import BASE_CONFIG, WEBHOOK
from tests.support.inprocess import SilentProgress, load

OTHER_REGION = "eu-west-1"
NOT_ENABLED = "ap-east-1"  # opt-in region the emulator reports as not opted in


class RegionalQueue(Resource):
    kind = "test-queue"
    label = "test queue"
    service = "sqs"
    sid = "TestQueue"

    @property
    def name(self) -> str:
        return f"{self.names.name}-test-queue"

    @property
    def arn(self) -> str:
        return f"arn:aws:sqs:{self.region}:{self.names.account}:{self.name}"

    def calls(self) -> list[perms.Grant | None]:
        return [
            self.grant("Read", perms.READ, "GetQueueUrl", "ListQueueTags"),
            self.grant("Setup", perms.ON_SETUP, "CreateQueue"),
            self.grant("Teardown", perms.ON_TEARDOWN, "GetQueueUrl", "DeleteQueue"),
        ]

    @absent_on("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")
    def read(self) -> Observed | None:
        url = self.client.get_queue_url(QueueName=self.name)["QueueUrl"]
        return {"url": url, "tags": self.client.list_queue_tags(QueueUrl=url).get("Tags", {})}

    def diff(self, observed: Observed) -> list[str]:
        return []

    def create(self) -> None:
        self.client.create_queue(QueueName=self.name, tags=self.d.tags)

    def update(self, observed: Observed, changes: list[str]) -> None:
        raise AssertionError("never drifts")

    def delete(self, observed: Observed) -> str:
        with contextlib.suppress(self.client.exceptions.QueueDoesNotExist):
            url = self.client.get_queue_url(QueueName=self.name)["QueueUrl"]
            self.client.delete_queue(QueueUrl=url)
        return ""


@pytest.fixture
def with_regional_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    original = engine.resources_for

    def resources_for(deployment: Any, *, wanted_only: bool = False) -> list[Resource]:
        return [
            *original(deployment, wanted_only=wanted_only),
            RegionalQueue(deployment, region=OTHER_REGION),
            RegionalQueue(deployment, region=NOT_ENABLED),
        ]

    monkeypatch.setattr(engine, "resources_for", resources_for)


def queues(region: str) -> list[str]:
    sqs = boto3.client("sqs", region_name=region)
    return sqs.list_queues(QueueNamePrefix="lwtest-test").get("QueueUrls", [])


@pytest.mark.enabled_regions("us-east-1", "us-west-2", OTHER_REGION)
def test_a_kind_in_another_region_is_set_up_reported_torn_down_and_permitted(
    aws_mocked: Any,
    with_regional_kind: None,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    aws = aws_mocked
    config = load()
    results = engine.apply(engine.build_deployment(config, aws), SilentProgress())
    by_key = {r.resource.key: r.action for r in results}
    assert by_key[f"test-queue@{OTHER_REGION}"] == "create"
    assert by_key[f"test-queue@{NOT_ENABLED}"] == "unavailable"
    (url,) = queues(OTHER_REGION)
    assert url.endswith("/lwtest-test-queue") and queues("us-east-1") == []
    queue_tags = boto3.client("sqs", region_name=OTHER_REGION).list_queue_tags(QueueUrl=url)
    assert has_our_tags(queue_tags["Tags"], "lwtest")
    # the client that made it was the eu-west-1 one, cached beside the home region's
    assert ("sqs", OTHER_REGION) in aws._clients and ("sqs", "us-east-1") in aws._clients

    again = engine.apply(engine.build_deployment(config, aws), SilentProgress())
    assert {r.action for r in again} <= {"unchanged", "unavailable", "none"}

    path = tmp_path / "lw.yaml"
    path.write_text(BASE_CONFIG)
    monkeypatch.setenv("LW_WEBHOOK", WEBHOOK)
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(path), "status", "--json"])
    assert exit_info.value.code == 0
    report = json.loads(capsys.readouterr().out)
    assert all("region" in r for r in report["resources"])
    mine = {r["region"]: r for r in report["resources"] if r["kind"] == "test-queue"}
    assert mine[OTHER_REGION]["state"] == "ok"
    assert mine[OTHER_REGION]["arn"] == f"arn:aws:sqs:{OTHER_REGION}:123456789012:lwtest-test-queue"
    assert mine[NOT_ENABLED]["state"] == "unavailable"  # reported, not an error
    assert report["healthy"] is True

    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(path), "permissions", "--for", "all", "--account", "123456789012"])
    assert exit_info.value.code == 0
    policy = json.loads(capsys.readouterr().out)
    regional = f"arn:aws:sqs:{OTHER_REGION}:123456789012:lwtest-test-queue"
    granted = {
        (action, resource)
        for s in policy["Statement"]
        for action in perms._as_list(s["Action"])
        for resource in perms._as_list(s["Resource"])
    }
    assert ("sqs:CreateQueue", regional) in granted  # through API_TO_IAM: tags at creation
    assert ("sqs:TagQueue", regional) in granted
    assert ("sqs:DeleteQueue", regional) in granted
    assert ("ec2:DescribeRegions", "*") in granted  # how the engine knows what is enabled

    items = engine.teardown_plan(
        engine.build_deployment(config, aws, strict=False),
        delete_bucket=True,
        delete_trail_logs=True,
    )
    actions = {i.resource.key: i.action for i in items}
    assert actions[f"test-queue@{OTHER_REGION}"] == "delete"
    assert actions[f"test-queue@{NOT_ENABLED}"] == "absent"
    assert items[0].resource.key == f"test-queue@{NOT_ENABLED}"  # reverse order
    engine.teardown(items, lambda _: None)
    assert queues(OTHER_REGION) == []
