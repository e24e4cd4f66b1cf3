"""IAM roles: CloudTrail → CloudWatch Logs, and the notifier's execution role."""

from __future__ import annotations

import contextlib
import json
from typing import ClassVar

from .. import attached_policies as policies
from .. import operator_policy as perms
from .base import Observed, Resource, absent_on, tags_from_list

INLINE_POLICY = "loginwatch"


class Role(Resource):
    service = "iam"
    sid = "Roles"
    trusted_service: ClassVar[str]
    scope_to_account: ClassVar[bool]

    @property
    def arn(self) -> str:
        return self.names.role_arn(self.name)

    def calls(self) -> list[perms.Grant | None]:
        return [
            self.grant("Read", perms.READ, "GetRole", "GetRolePolicy"),
            self.grant(
                "Setup", perms.ON_SETUP, "CreateRole", "PutRolePolicy", "UpdateAssumeRolePolicy"
            ),
            self.grant("Teardown", perms.ON_TEARDOWN, "DeleteRolePolicy", "DeleteRole"),
        ]

    def trust(self) -> policies.Policy:
        return policies.trust_policy(
            self.trusted_service, self.names, source_account=self.scope_to_account
        )

    def inline(self) -> policies.Policy:
        raise NotImplementedError

    @absent_on("NoSuchEntity")
    def read(self) -> Observed | None:
        role = self.client.get_role(RoleName=self.name)["Role"]
        try:
            doc = self.client.get_role_policy(RoleName=self.name, PolicyName=INLINE_POLICY)
            inline = doc["PolicyDocument"]
        except self.client.exceptions.NoSuchEntityException:
            inline = None
        return {
            "trust": role["AssumeRolePolicyDocument"],
            "inline": inline,
            "tags": tags_from_list(role.get("Tags")),
        }

    def diff(self, observed: Observed) -> list[str]:
        changes = []
        if policies.normalize(observed["trust"]) != policies.normalize(self.trust()):
            changes.append(f"trust policy: only {self.trusted_service} may assume it")
        if observed["inline"] is None:
            changes.append("permissions policy: missing")
        elif policies.normalize(observed["inline"]) != policies.normalize(self.inline()):
            changes.append("permissions policy: differs from the least-privilege policy")
        return changes

    def create(self) -> None:
        with self.aws_call():
            try:
                self.client.create_role(
                    RoleName=self.name,
                    AssumeRolePolicyDocument=json.dumps(self.trust()),
                    Description=f"loginwatch {self.names.name}: {self.label}",
                    Tags=self.d.tag_list(),
                )
            except self.client.exceptions.EntityAlreadyExistsException:
                # Made by an interrupted run (we checked ownership before planning).
                self._put_trust()
        self._put_inline()

    def update(self, observed: Observed, changes: list[str]) -> None:
        if policies.normalize(observed["trust"]) != policies.normalize(self.trust()):
            self._put_trust()
        if observed["inline"] is None or policies.normalize(
            observed["inline"]
        ) != policies.normalize(self.inline()):
            self._put_inline()

    def _put_trust(self) -> None:
        with self.aws_call():
            self.client.update_assume_role_policy(
                RoleName=self.name, PolicyDocument=json.dumps(self.trust())
            )

    def _put_inline(self) -> None:
        with self.aws_call():
            self.client.put_role_policy(
                RoleName=self.name,
                PolicyName=INLINE_POLICY,
                PolicyDocument=json.dumps(self.inline()),
            )

    def delete(self, observed: Observed) -> str:
        c = self.client
        with self.aws_call():
            with contextlib.suppress(c.exceptions.NoSuchEntityException):
                c.delete_role_policy(RoleName=self.name, PolicyName=INLINE_POLICY)
        with self.aws_call():
            with contextlib.suppress(c.exceptions.NoSuchEntityException):
                c.delete_role(RoleName=self.name)
        return ""


class TrailRole(Role):
    kind = "trail-role"
    label = "CloudTrail → Logs role"
    trusted_service = "cloudtrail.amazonaws.com"
    scope_to_account = True

    @property
    def name(self) -> str:
        return self.names.trail_role

    def inline(self) -> policies.Policy:
        return policies.trail_role_policy(self.names, self.names.trail_log_group)


class NotifierRole(Role):
    kind = "notifier-role"
    label = "notifier role"
    trusted_service = "lambda.amazonaws.com"
    scope_to_account = False  # Lambda's service principal does not send aws:SourceAccount

    @property
    def name(self) -> str:
        return self.names.notifier_role

    def inline(self) -> policies.Policy:
        org = self.d.organization
        naming = self.d.config.organization.enabled and self.d.config.organization.account_names
        return policies.notifier_role_policy(
            self.names,
            self.d.trail_log_group,
            self._parameter_key_arn(),
            (org.management_account, org.id) if naming and org else None,
        )

    def _parameter_key_arn(self) -> str | None:
        key = self.d.config.kms.parameter
        if not key:
            return None  # the AWS-managed aws/ssm key needs no grant: SSM decrypts for us
        if key.startswith("arn:"):
            return key
        # The config loader rejects aliases here: IAM cannot grant kms:Decrypt by alias.
        return f"arn:{self.names.partition}:kms:{self.names.region}:{self.names.account}:key/{key}"


class ForwardingRole(Role):
    """Assumed by EventBridge to put other regions' sign-ins on the home region's bus."""

    kind = "forwarding-role"
    label = "forwarding role"
    removable_by_setup = True
    trusted_service = "events.amazonaws.com"
    scope_to_account = True

    @property
    def name(self) -> str:
        return self.names.forwarding_role

    def calls(self) -> list[perms.Grant | None]:
        # test-alert --via fast-path reads the role too (trust and policy) when nothing arrives.
        test = self.grant("Read", perms.READ_AND_TEST, "GetRole", "GetRolePolicy")
        return [*super().calls(), test]

    def inline(self) -> policies.Policy:
        return policies.forwarding_role_policy(self.names)
