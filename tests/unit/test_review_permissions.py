"""`loginwatch permissions --for review` grants every call review makes, and no more:
its own trail (log group resource) and a reused one (the trail resource names the group)."""

from __future__ import annotations

import boto3

from loginwatch.names import Names
from loginwatch.operator_policy import REVIEW
from loginwatch.review.run import review
from tests.support.cli import BASE_CONFIG
from tests.support.inprocess import InProcessEmulator, load
from tests.unit.test_permissions import Recording, operations_for, unmet

NOT_ASKED = ("ec2", "DescribeRegions")  # two_regions answers it (tests/conftest.py)


def _review_recorded(config, aws):  # type: ignore[no-untyped-def]
    recording = Recording(aws)
    with recording.command(REVIEW):
        review(config, aws, days=7, sleep=lambda _: None)
    return recording


def test_review_calls_are_granted_with_our_trail(emulator_inprocess: InProcessEmulator) -> None:
    aws = emulator_inprocess.aws
    config = load()
    names = Names.for_config(config, aws.account_id, aws.partition)
    boto3.client("logs", region_name="us-east-1").create_log_group(
        logGroupName=names.trail_log_group
    )
    recording = _review_recorded(config, aws)
    assert unmet(recording, config, names, REVIEW) == []
    seen = set(recording.calls[REVIEW])
    # Nothing granted that review never calls (the fixture answers which regions are
    # enabled without asking EC2: that one call is not made here).
    assert operations_for(config, [REVIEW]) - seen == {NOT_ASKED}
    assert ("logs", "StartQuery") in seen and ("cloudtrail", "LookupEvents") in seen


def test_review_calls_are_granted_with_a_reused_trail(
    emulator_inprocess: InProcessEmulator,
) -> None:
    aws = emulator_inprocess.aws
    group = "/org/trail-logs"
    logs = boto3.client("logs", region_name="us-east-1")
    logs.create_log_group(logGroupName=group)
    arn = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["arn"]
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="org-trail-bucket")
    boto3.client("cloudtrail", region_name="us-east-1").create_trail(
        Name="org-trail",
        S3BucketName="org-trail-bucket",
        IsMultiRegionTrail=True,
        CloudWatchLogsLogGroupArn=arn if arn.endswith(":*") else f"{arn}:*",
        CloudWatchLogsRoleArn=f"arn:aws:iam::{aws.account_id}:role/trail-to-logs",
    )
    config = load(BASE_CONFIG + "trail:\n  existing: org-trail\n")
    names = Names.for_config(config, aws.account_id, aws.partition)
    recording = _review_recorded(config, aws)
    assert unmet(recording, config, names, REVIEW, group) == []
    seen = set(recording.calls[REVIEW])
    assert ("logs", "StartQuery") in seen and ("cloudtrail", "GetTrail") in seen
    assert operations_for(config, [REVIEW], group) - seen == {NOT_ASKED}
