"""The SSM SecureString that holds the Slack webhook: the only place the secret lives."""

from __future__ import annotations

import contextlib

from .. import permissions as perms
from .base import Observed, Resource, absent_on, tags_from_list


class WebhookParameter(Resource):
    kind = "webhook-parameter"
    label = "webhook parameter"
    service = "ssm"
    sid = "WebhookParameter"

    def calls(self) -> list[perms.Grant | None]:
        names = self.names
        where = {"partition": names.partition, "region": self.region, "account": names.account}
        key = self.d.config.kms.parameter
        return [
            self.grant("Read", perms.READ, "GetParameter", "ListTagsForResource"),
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

    @absent_on("ParameterNotFound")
    def read(self) -> Observed | None:
        param = self.client.get_parameter(Name=self.name, WithDecryption=True)["Parameter"]
        tags = self.client.list_tags_for_resource(ResourceType="Parameter", ResourceId=self.name)
        return {
            "type": param.get("Type"),
            # Compared, never shown: the observed value does not leave this object.
            "matches": param.get("Value") == self.d.config.webhook_url,
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
        params = {
            "Name": self.name,
            "Value": self.d.config.webhook_url,
            "Type": "SecureString",
            "Description": f"Slack webhook for loginwatch '{self.names.name}'",
        }
        if self.d.config.kms.parameter:
            params["KeyId"] = self.d.config.kms.parameter
        with self.aws_call("ssm:PutParameter"):
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
        with self.aws_call("ssm:DeleteParameter"):
            with contextlib.suppress(self.client.exceptions.ParameterNotFound):
                self.client.delete_parameter(Name=self.name)
        return ""
