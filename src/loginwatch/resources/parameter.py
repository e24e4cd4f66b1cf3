"""The SSM SecureStrings that hold the Slack webhooks: the only place the secrets live.

One for the default channel (slack.webhook_url) and one per extra destination
(slack.destinations), under their own path so setup finds and removes the ones
a config no longer names.
"""

from __future__ import annotations

import contextlib
from typing import Any

from .. import operator_policy as perms
from ..aws import translate_errors
from ..errors import UsageError
from ..notifier.routing import DEFAULT_DESTINATION
from .base import Deployment, Observed, Resource, absent_on, tags_from_list


class WebhookParameter(Resource):
    kind = "webhook-parameter"
    label = "webhook parameter"
    service = "ssm"
    sid = "WebhookParameter"

    def watched(self) -> list[dict[str, Any]]:
        # The webhook still exists (Slack answers a revoked one 404/403; probed unposted).
        return [
            self.watch("webhook", destination=getattr(self, "destination", DEFAULT_DESTINATION))
        ]

    def calls(self) -> list[perms.Grant | None]:
        names = self.names
        where = {"partition": names.partition, "region": self.region, "account": names.account}
        key = self.d.config.kms.parameter
        return [
            self.grant("Read", perms.READ, "GetParameter", "ListTagsForResource"),
            # Every command looks for the destinations an earlier setup stored
            # (stored_destinations): names only, and IAM cannot scope it.
            perms.no_resource_level(perms.READ | perms.ON_REDELIVER, "ssm", "DescribeParameters")
            if self.kind == WebhookParameter.kind
            else None,
            perms.kms_grant(
                "ReadWebhookKey", key, "kms:Decrypt", perms.READ, via_service="ssm", **where
            ),
            self.grant("Setup", perms.ON_SETUP, "PutParameter"),
            perms.kms_grant(
                "SetupWebhookKey", key, "kms:Encrypt", perms.ON_SETUP, via_service="ssm", **where
            ),
            self.grant("Teardown", perms.ON_TEARDOWN, "DeleteParameter"),
        ]

    @property
    def name(self) -> str:
        return self.names.parameter

    @property
    def arn(self) -> str:
        return self.names.parameter_arn

    def policy_arns(self) -> tuple[str, ...]:
        # Every parameter under loginwatch's own path in one ARN: the policy stays within
        # IAM's size limit, and a parameter of another name is outside the path.
        return (self.names.parameters_arn,)

    @property
    def webhook_url(self) -> str | None:
        """None when the command was not given it (status, teardown): not compared."""
        return self.d.config.webhook_url

    @property
    def description(self) -> str:
        return f"Slack webhook for loginwatch '{self.names.name}'"

    @absent_on("ParameterNotFound")
    def read(self) -> Observed | None:
        param = self.client.get_parameter(Name=self.name, WithDecryption=True)["Parameter"]
        tags = self.client.list_tags_for_resource(ResourceType="Parameter", ResourceId=self.name)
        return {
            "type": param.get("Type"),
            # Compared, never shown: the observed value does not leave this object.
            "matches": self.webhook_url is None or param.get("Value") == self.webhook_url,
            "tags": tags_from_list(tags.get("TagList")),
        }

    def diff(self, observed: Observed) -> list[str]:
        changes = []
        if observed["type"] != "SecureString":
            changes.append(f"type: {observed['type']} → SecureString")
        if not observed["matches"]:
            changes.append("webhook value differs from the config (value not shown)")
        return changes

    def _put(self, overwrite: bool) -> None:
        if self.webhook_url is None:  # only setup writes it, and setup needs it
            raise UsageError(f"{self.label} {self.name}: the webhook was not given.")
        params = {
            "Name": self.name,
            "Value": self.webhook_url,
            "Type": "SecureString",
            "Description": self.description,
        }
        if self.d.config.kms.parameter:
            params["KeyId"] = self.d.config.kms.parameter
        with self.aws_call():
            if not overwrite:
                try:
                    self.client.put_parameter(**params, Tags=self.d.tag_list())
                    return
                except self.client.exceptions.ParameterAlreadyExists:
                    pass  # created by an interrupted earlier run: overwrite below
            self.client.put_parameter(**params, Overwrite=True)  # keeps the tags

    def create(self) -> None:
        self._put(overwrite=False)

    def update(self, observed: Observed, changes: list[str]) -> None:
        self._put(overwrite=True)

    def delete(self, observed: Observed) -> str:
        with self.aws_call():
            with contextlib.suppress(self.client.exceptions.ParameterNotFound):
                self.client.delete_parameter(Name=self.name)
        return ""


class DestinationParameter(WebhookParameter):
    """An extra Slack destination's webhook. Listed for every destination the config
    names and every one an earlier setup stored (found under the path), so one the
    config dropped is removed."""

    kind = "destination-parameter"
    label = "destination webhook parameter"
    sid = "DestinationParameter"
    removable_by_setup = True

    def __init__(self, deployment: Deployment, destination: str, *, wanted: bool = True) -> None:
        super().__init__(deployment, wanted=wanted)
        self.destination = destination

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.destination}@{self.region}"

    @property
    def name(self) -> str:
        return self.names.destination_parameter(self.destination)

    @property
    def arn(self) -> str:
        return self.names.destination_parameter_arn(self.destination)

    @property
    def webhook_url(self) -> str | None:
        found = next((d for d in self.d.config.destinations if d.name == self.destination), None)
        return found.webhook_url if found else ""

    @property
    def description(self) -> str:
        return (
            f"Slack webhook of destination '{self.destination}' for loginwatch '{self.names.name}'"
        )


def stored_destinations(deployment: Deployment) -> list[str]:
    """The destinations whose webhook an earlier setup stored (names only, no values)."""
    ssm = deployment.live_aws.client("ssm")
    path = deployment.names.destinations_path
    found: list[str] = []
    with translate_errors(path):
        for page in ssm.get_paginator("describe_parameters").paginate(
            ParameterFilters=[{"Key": "Path", "Option": "OneLevel", "Values": [path]}]
        ):
            found += [p["Name"].rsplit("/", 1)[-1] for p in page.get("Parameters", [])]
    return sorted(found)
