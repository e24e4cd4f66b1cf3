"""IAM roles: CloudTrail → CloudWatch Logs, and the notifier's execution role."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from typing import ClassVar

from .. import attached_policies as policies
from .. import operator_policy as perms
from ..errors import UsageError
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

    @property
    def boundary(self) -> str | None:
        """The permissions boundary every role gets (config iam.permissions_boundary)."""
        return self.d.config.iam.permissions_boundary

    def calls(self) -> list[perms.Grant | None]:
        boundary = self.boundary
        if boundary is None:
            return [
                self.grant("Read", perms.READ, "GetRole", "GetRolePolicy"),
                self.grant(
                    "Setup", perms.ON_SETUP, "CreateRole", "PutRolePolicy", "UpdateAssumeRolePolicy"
                ),
                self.grant("Teardown", perms.ON_TEARDOWN, "DeleteRolePolicy", "DeleteRole"),
            ]
        # With a boundary, every call that makes or changes a role (or deletes one) is
        # allowed only on a role that has exactly that boundary (iam:PermissionsBoundary),
        # and setting a boundary only to it: whoever runs setup can never give a role
        # more than the boundary allows. Nothing removes a boundary.
        bounded = {"StringEquals": {"iam:PermissionsBoundary": boundary}}
        tags = perms.Route("SetupTagRoles", self.policy_arns())  # no such condition key
        return [
            self.grant("Read", perms.READ, "GetRole", "GetRolePolicy"),
            perms.Grant(
                "SetupRolesWithBoundary",
                self.policy_arns(),
                perms.ops(
                    perms.ON_SETUP,
                    "iam",
                    "CreateRole",
                    "PutRolePolicy",
                    "UpdateAssumeRolePolicy",
                    "PutRolePermissionsBoundary",
                ),
                condition=bounded,
                routes={"iam:TagRole": tags},
            ),
            perms.Grant(
                "TeardownRolesWithBoundary",
                self.policy_arns(),
                perms.ops(perms.ON_TEARDOWN, "iam", "DeleteRolePolicy", "DeleteRole"),
                condition=bounded,
            ),
        ]

    def preflight(self) -> None:
        boundary = self.boundary
        if boundary is None:
            return
        _, partition, _, _, account, _ = boundary.split(":", 5)
        if (partition, account) != (self.names.partition, self.names.account):
            raise UsageError(
                f"iam.permissions_boundary {boundary} is not a policy of this account "
                f"({self.names.account}, partition {self.names.partition}).",
                "A role's permissions boundary must be a managed policy of its own account: "
                "create the policy `loginwatch permissions --boundary` prints here.",
            )

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
            "boundary": (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
            "tags": tags_from_list(role.get("Tags")),
        }

    def _boundary_differs(self, observed: Observed) -> bool:
        # No boundary asked for: one an administrator set is left as it is.
        return self.boundary is not None and observed.get("boundary") != self.boundary

    def diff(self, observed: Observed) -> list[str]:
        changes = []
        if self._boundary_differs(observed):
            changes.append(
                f"permissions boundary: {observed.get('boundary') or 'none'} → {self.boundary}"
            )
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
                bounded = {"PermissionsBoundary": self.boundary} if self.boundary else {}
                self.client.create_role(
                    RoleName=self.name,
                    AssumeRolePolicyDocument=json.dumps(self.trust()),
                    Description=f"loginwatch {self.names.name}: {self.label}",
                    Tags=self.d.tag_list(),
                    **bounded,
                )
            except self.client.exceptions.EntityAlreadyExistsException:
                # Made by an interrupted run (we checked ownership before planning).
                self._put_boundary()
                self._put_trust()
        self._put_inline()

    def update(self, observed: Observed, changes: list[str]) -> None:
        # The boundary first: with one configured, the operator may change a role
        # only once it has that boundary.
        if self._boundary_differs(observed):
            self._put_boundary()
        if policies.normalize(observed["trust"]) != policies.normalize(self.trust()):
            self._put_trust()
        if observed["inline"] is None or policies.normalize(
            observed["inline"]
        ) != policies.normalize(self.inline()):
            self._put_inline()

    def _put_boundary(self) -> None:
        if self.boundary is None:
            return
        with self.aws_call():
            self.client.put_role_permissions_boundary(
                RoleName=self.name, PermissionsBoundary=self.boundary
            )

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


def boundary_policy(resources: Iterable[Resource]) -> policies.Policy:
    """The permissions boundary for loginwatch's roles: exactly the union of what each
    role loginwatch makes may do (their inline policies, each statement scoped as in
    the role's own policy). The member accounts' forwarding role (the StackSet's
    template) has the home forwarding role's policy."""
    return policies.boundary_policy(
        r.inline() for r in resources if isinstance(r, Role) and r.wanted
    )
