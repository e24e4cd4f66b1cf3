"""Organization mode: which organization this is, and whether setup may run from here.

Only the management account or CloudTrail's delegated administrator can create an
organization trail, and service-managed StackSets are run from the management
account (or a StackSets delegated administrator, `CallAs=DELEGATED_ADMIN`). Read
once per command, before anything is planned, so a run from the wrong account
stops before it changes anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import botocore.exceptions

from .aws import Aws, error_code, translate_errors
from .errors import UsageError

CLOUDTRAIL_PRINCIPAL = "cloudtrail.amazonaws.com"


@dataclass(frozen=True)
class OrgInfo:
    id: str  # o-…
    management_account: str
    root_id: str  # r-…, "" when this account may not list the roots
    # This account: the management account, a delegated administrator, or neither.
    account: str
    delegated_admin: bool = False

    @property
    def is_management(self) -> bool:
        return self.account == self.management_account

    @property
    def may_set_up(self) -> bool:
        return self.is_management or self.delegated_admin

    @property
    def call_as(self) -> str:
        """StackSets' CallAs for this account."""
        return "SELF" if self.is_management else "DELEGATED_ADMIN"


def read_organization(aws: Aws) -> OrgInfo:
    client = aws.client("organizations")
    with translate_errors():
        try:
            org = client.describe_organization()["Organization"]
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) == "AWSOrganizationsNotInUseException":
                raise UsageError(
                    f"Account {aws.account_id} is not in an AWS Organization, but the config "
                    "has organization.enabled: true.",
                    "Set organization.enabled: false to watch this account alone.",
                ) from None
            raise
    info = OrgInfo(org["Id"], org["MasterAccountId"], "", aws.account_id)
    if not info.is_management:
        info = OrgInfo(info.id, info.management_account, "", aws.account_id, _delegated(aws))
    if info.may_set_up:
        with translate_errors():
            roots = client.list_roots().get("Roots", [])
        info = OrgInfo(
            info.id,
            info.management_account,
            roots[0]["Id"] if roots else "",
            info.account,
            info.delegated_admin,
        )
    return info


def _delegated(aws: Aws) -> bool:
    """Is this account CloudTrail's delegated administrator? A plain member may not ask."""
    client = aws.client("organizations")
    try:
        found = client.list_delegated_administrators(ServicePrincipal=CLOUDTRAIL_PRINCIPAL)
    except botocore.exceptions.ClientError:
        return False  # AccessDenied: a member account that is not one
    return any(a.get("Id") == aws.account_id for a in found.get("DelegatedAdministrators", []))


def require_setup_account(info: OrgInfo) -> None:
    if info.is_management:
        return
    if info.delegated_admin:
        # Its organization trail would be owned by the management account (and named,
        # and admitted to the bucket, as such), and StackSets need their own delegation.
        raise UsageError(
            f"Account {info.account} is CloudTrail's delegated administrator for {info.id}; "
            "loginwatch's organization mode runs from the management account only for now. "
            "Nothing was changed.",
            f"Run `loginwatch setup` with credentials for account {info.management_account}.",
        )
    raise UsageError(
        f"Account {info.account} is a member of organization {info.id}: only its management "
        f"account ({info.management_account}) or CloudTrail's delegated administrator can "
        "create the organization trail. Nothing was changed.",
        f"Run `loginwatch setup` with credentials for account {info.management_account}.",
    )


def covered_accounts(aws: Aws, info: OrgInfo, targets: tuple[str, ...] | None) -> list[str]:
    """The member accounts the fast path should reach (the management account has its own
    rules; StackSets never deploy to it): every active account, or those of the listed
    OUs (their direct accounts) and the listed account ids."""
    client = aws.client("organizations")
    found: list[str] = []
    if targets is None:
        with translate_errors():
            for page in client.get_paginator("list_accounts").paginate():
                found += [a["Id"] for a in page["Accounts"] if a.get("Status") == "ACTIVE"]
    else:
        for target in targets:
            if target.isdigit():
                found.append(target)
                continue
            with translate_errors(target):
                for page in client.get_paginator("list_accounts_for_parent").paginate(
                    ParentId=target
                ):
                    found += [a["Id"] for a in page["Accounts"] if a.get("Status") == "ACTIVE"]
    return sorted(set(found) - {info.management_account})
