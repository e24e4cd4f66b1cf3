"""The DynamoDB table where each sign-in is claimed once, so no path reports it twice.

Both the fast path and the alarm path claim a sign-in's eventID with a
conditional write before posting and release it if the post fails (AWS Lambda
Powertools' idempotency utility works the same way). On-demand billing: a few
writes per sign-in cost nothing noticeable; items expire through TTL.
"""

from __future__ import annotations

import contextlib
from typing import Any

from .. import operator_policy as perms
from ..notifier.claims import KEY, TTL_ATTRIBUTE
from .base import Observed, Resource, absent_on, changed, tags_from_list

WAIT = {"Delay": 2, "MaxAttempts": 60}


class ClaimsTable(Resource):
    kind = "claims-table"
    label = "claims table"
    service = "dynamodb"
    sid = "ClaimsTable"

    @property
    def name(self) -> str:
        return self.names.claims_table

    @property
    def arn(self) -> str:
        return self.names.claims_table_arn

    def watched(self) -> list[dict[str, Any]]:
        return [self.watch("table")]  # it answers

    def calls(self) -> list[perms.Grant | None]:
        return [
            self.grant(
                "Read", perms.READ, "DescribeTable", "DescribeTimeToLive", "ListTagsOfResource"
            ),
            self.grant("Setup", perms.ON_SETUP, "CreateTable", "UpdateTimeToLive", "UpdateTable"),
            self.grant("Teardown", perms.ON_TEARDOWN, "DeleteTable"),
        ]

    @absent_on("ResourceNotFoundException")
    def read(self) -> Observed | None:
        table = self.client.describe_table(TableName=self.name)["Table"]
        ttl = self.client.describe_time_to_live(TableName=self.name)["TimeToLiveDescription"]
        tags = self.client.list_tags_of_resource(ResourceArn=table["TableArn"]).get("Tags", [])
        return {
            "key": [(k["AttributeName"], k["KeyType"]) for k in table.get("KeySchema", [])],
            "billing": (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED"),
            "status": table.get("TableStatus"),
            "ttl": ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
            and ttl.get("AttributeName") == TTL_ATTRIBUTE,
            "tags": tags_from_list(tags),
        }

    def diff(self, observed: Observed) -> list[str]:
        changes = []
        if observed["key"] != [(KEY, "HASH")]:
            # A key cannot change in place; say so rather than pretend setup can fix it.
            changes.append(f"key schema: must be {KEY} (delete the table and re-run setup)")
        if observed["billing"] != "PAY_PER_REQUEST":
            changes.append(changed("billing", observed["billing"], "PAY_PER_REQUEST"))
        if not observed["ttl"]:
            changes.append(f"time to live: on {TTL_ATTRIBUTE}")
        return changes

    def create(self) -> None:
        c = self.client
        with self.aws_call():
            try:
                c.create_table(
                    TableName=self.name,
                    AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
                    BillingMode="PAY_PER_REQUEST",
                    # KMS with the AWS managed key aws/dynamodb (auditors flag the default
                    # AWS-owned key); no key policy to write, a few KMS requests per sign-in.
                    SSESpecification={"Enabled": True},
                    Tags=self.d.tag_list(),
                )
            except c.exceptions.ResourceInUseException:
                pass  # made by an interrupted earlier run
            c.get_waiter("table_exists").wait(TableName=self.name, WaiterConfig=WAIT)
        self._enable_ttl()

    def _enable_ttl(self) -> None:
        with self.aws_call():
            try:
                self.client.update_time_to_live(
                    TableName=self.name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
                )
            except self.client.exceptions.ClientError as exc:
                # "TimeToLive is already enabled": an interrupted run got this far.
                if "already enabled" not in str(exc):
                    raise

    def update(self, observed: Observed, changes: list[str]) -> None:
        if observed["status"] != "ACTIVE":
            # A run stopped right after CreateTable: the table is still being made.
            with self.aws_call():
                self.client.get_waiter("table_exists").wait(TableName=self.name, WaiterConfig=WAIT)
        if observed["billing"] != "PAY_PER_REQUEST":
            with self.aws_call():
                self.client.update_table(TableName=self.name, BillingMode="PAY_PER_REQUEST")
        if not observed["ttl"]:
            self._enable_ttl()

    def delete(self, observed: Observed) -> str:
        with self.aws_call():
            with contextlib.suppress(self.client.exceptions.ResourceNotFoundException):
                self.client.delete_table(TableName=self.name)
        return ""
