"""Organization mode's fast path: a forwarding rule in every member account and region.

An organization trail puts member accounts' events in the central log group, not on
the management account's event bus, so each member account needs its own rules.
A service-managed StackSet with automatic deployment puts them there, including in
accounts created later (nobody runs loginwatch again). Each member rule forwards
sign-ins to the central (home) default bus, whose policy admits the organization
only (``aws:PrincipalOrgID``); the home rule sends them to the notifier.

With ``tamper`` on, each member also watches its own loginwatch resources (its rules,
its forwarding role, its stack, leaving the organization: tamper_patterns'
``member_tamper_patterns``) and forwards those changes the same way; the home tamper
rule takes them to the notifier, which names the member account.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from typing import Any

import botocore.exceptions

from .. import attached_policies as policies
from .. import operator_policy as perms
from ..api_call_patterns import KEY_EXPOSED_PATTERN
from ..aws import error_code
from ..errors import LoginwatchError, UsageError
from ..names import NAME_TAG
from ..notifier.rules import TAMPER_RULE
from ..organization import OrgInfo, covered_accounts
from ..tamper_patterns import member_tamper_patterns
from .base import Check, Deployment, Observed, Resource, absent_on, tags_from_list
from .role import ForwardingRole
from .sign_in_rule import event_pattern
from .watch_rules import API_CALLS_STATE, KEY_EXPOSED_REGIONS

# The forwarding role has a name of its own (names.member_forwarding_role, so that the
# tamper rules know it), which CloudFormation accepts only with CAPABILITY_NAMED_IAM (it
# includes CAPABILITY_IAM). Acknowledging it needs no permission of its own.
CAPABILITIES = ["CAPABILITY_NAMED_IAM"]
# Where a member's exposure reports arrive (AWS Health; IAM's calls).
KEY_EXPOSED_CONDITION = "AwsReportsExposedKeysHere"
# Where a member's IAM and Organizations calls arrive: each partition's one region.
GLOBAL_CALLS_CONDITION = "IamCallsArriveHere"
GLOBAL_CALLS_REGION = {"aws": "us-east-1", "aws-cn": "cn-north-1", "aws-us-gov": "us-gov-west-1"}
AUTO_DEPLOYMENT = {"Enabled": True, "RetainStacksOnAccountRemoval": False}
# Every account and region at once; a failure in one does not stop the others.
PREFERENCES = {
    "RegionConcurrencyType": "PARALLEL",
    "FailureTolerancePercentage": 100,
    "MaxConcurrentPercentage": 100,
}
OPERATION_TIMEOUT_SECONDS = 1800
POLL_SECONDS = 5.0
DONE = {"SUCCEEDED", "FAILED", "STOPPED"}
# What an endpoint without an operation answers (an emulator, an old partition).
UNKNOWN_OPERATION = {"UnknownOperationException", "InvalidAction", "NotImplemented"}


def member_template(deployment: Deployment) -> dict[str, Any]:
    """What each member account gets, in each region: the sign-in rule and its role."""
    names = deployment.names
    central = names.event_bus_arn(names.region)
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": (
            f"loginwatch '{names.name}': console sign-ins → the default event bus of "
            f"{names.account} in {names.region}. Managed by loginwatch from that account."
        ),
        "Resources": {
            "ForwardRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": {"Fn::Sub": names.member_forwarding_role("${AWS::Region}")},
                    "Description": f"loginwatch '{names.name}': EventBridge puts sign-ins on {central}",
                    # The home forwarding role's documents. Its trust keeps no
                    # aws:SourceAccount guard here: the home role's names the home account,
                    # and the template has never had one (a change redeploys every stack).
                    "AssumeRolePolicyDocument": policies.trust_policy(
                        ForwardingRole.trusted_service, names, source_account=False
                    ),
                    "Policies": [
                        {
                            "PolicyName": "PutEventsOnTheCentralBus",
                            "PolicyDocument": policies.forwarding_role_policy(names, sid=None),
                        }
                    ],
                    "Tags": deployment.tag_list(),
                    **_member_boundary(deployment),
                },
            },
            "SignInRule": _member_rule(
                names.sign_in_rule,
                f"loginwatch '{names.name}': console sign-ins → {central}",
                "ENABLED",
                event_pattern(),
                central,
            ),
            **_member_key_rules(deployment),
            **_member_tamper_rules(deployment),
        },
        **_member_conditions(deployment),
    }


def _member_rule(
    name: str, description: str, state: str, pattern: dict[str, Any], central: str
) -> dict[str, Any]:
    return {
        "Type": "AWS::Events::Rule",
        "Properties": {
            "Name": name,
            "Description": description,
            "State": state,
            "EventPattern": pattern,
            "Targets": [
                {
                    "Id": "central-bus",
                    "Arn": central,
                    "RoleArn": {"Fn::GetAtt": ["ForwardRole", "Arn"]},
                }
            ],
        },
    }


def _member_key_rules(deployment: Deployment) -> dict[str, Any]:
    """The access-key rules, as in the home account's regions (key_rules.py): API calls
    from outside the allowlist everywhere, AWS's exposure reports where AWS sends them.
    Nothing when both rules are off: the template of earlier setups stays as it was."""
    names, rules = deployment.names, deployment.config.rules
    central = names.event_bus_arn(names.region)
    found: dict[str, Any] = {}
    if rules.get("access_key_outside_allowlist") is not None:
        count = len(deployment.api_call_patterns)
        for index, pattern in enumerate(deployment.api_call_patterns):
            found[f"KeyApiCalls{index + 1}"] = _member_rule(
                names.api_call_rule(index),
                f"loginwatch '{names.name}': API calls with access keys from outside the "
                f"allowlist ({index + 1} of {count}) → {central}",
                API_CALLS_STATE,
                pattern,
                central,
            )
    if rules.get("credentials_exposed") is not None:
        rule = _member_rule(
            names.key_exposed_rule,
            f"loginwatch '{names.name}': AWS reports an access key exposed → {central}",
            "ENABLED",
            KEY_EXPOSED_PATTERN,
            central,
        )
        found["KeyExposed"] = {**rule, "Condition": KEY_EXPOSED_CONDITION}
    return found


def _member_tamper_rules(deployment: Deployment) -> dict[str, Any]:
    """tamper's rules in a member account: changes to the member's own loginwatch
    resources, forwarded home like sign-ins (the home tamper rule takes them). Those
    for IAM's and Organizations' calls only where those arrive. Nothing when tamper is
    off: the template stays as it was."""
    names = deployment.names
    if deployment.config.rules.get(TAMPER_RULE) is None:
        return {}
    central = names.event_bus_arn(names.region)
    regional, global_ = member_tamper_patterns(names)
    found: dict[str, Any] = {}
    for index, pattern in enumerate([*regional, *global_]):
        rule = _member_rule(
            names.tamper_rule(index),
            f"loginwatch '{names.name}': changes that can switch this account's forwarding "
            f"off ({index + 1} of {len(regional) + len(global_)}) → {central}",
            "ENABLED",  # write calls: no read-only opt-in needed
            pattern,
            central,
        )
        if index < len(regional):
            found[f"Tamper{index + 1}"] = rule
        elif _global_calls_region(deployment):
            found[f"Tamper{index + 1}"] = {**rule, "Condition": GLOBAL_CALLS_CONDITION}
        else:  # another partition: wherever its IAM calls arrive, the rule is there
            found[f"Tamper{index + 1}"] = rule
    return found


def _global_calls_region(deployment: Deployment) -> str | None:
    return GLOBAL_CALLS_REGION.get(deployment.names.partition)


def _member_conditions(deployment: Deployment) -> dict[str, Any]:
    conditions: dict[str, Any] = {}
    if deployment.config.rules.get("credentials_exposed") is not None:
        regions = [{"Fn::Equals": [{"Ref": "AWS::Region"}, r]} for r in KEY_EXPOSED_REGIONS]
        conditions[KEY_EXPOSED_CONDITION] = {"Fn::Or": regions}
    region = _global_calls_region(deployment)
    if deployment.config.rules.get(TAMPER_RULE) is not None and region:
        conditions[GLOBAL_CALLS_CONDITION] = {"Fn::Equals": [{"Ref": "AWS::Region"}, region]}
    return {"Conditions": conditions} if conditions else {}


def _member_boundary(deployment: Deployment) -> dict[str, Any]:
    """The forwarding role's permissions boundary in a member account: the configured
    policy's path and name, in that account (a boundary is a policy of the role's own
    account). Nothing at all without one: the template of earlier setups stays as it was."""
    boundary = deployment.config.iam.permissions_boundary
    if boundary is None:
        return {}
    policy = boundary.split(":", 5)[5]  # policy/[path/]name
    arn = f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:{policy}"
    return {"PermissionsBoundary": {"Fn::Sub": arn}}


# CloudFormation's limit for a TemplateBody (bytes).
TEMPLATE_BODY_LIMIT = 51_200


def _template_body(deployment: Deployment) -> str:
    # Compact: a long allowlist's access-key rules fill the template (diff compares the
    # parsed template, so the spacing never counts as a change).
    return json.dumps(member_template(deployment), separators=(",", ":"), sort_keys=True)


def require_template_fits(deployment: Deployment) -> None:
    """A template CloudFormation would refuse is said before anything is written."""
    size = len(_template_body(deployment).encode("utf-8"))
    if size > TEMPLATE_BODY_LIMIT:
        rules = len(deployment.api_call_patterns)
        raise UsageError(
            f"The member accounts' template would be {size:,} bytes, over CloudFormation's "
            f"{TEMPLATE_BODY_LIMIT:,}: the allowlist needs {rules} access-key rules per region.",
            "Merge allowlist entries into fewer, wider CIDRs (`loginwatch validate` shows "
            "the rule count), or turn access_key_outside_allowlist off for organization mode.",
        )


def _org(deployment: Deployment) -> OrgInfo:
    info = deployment.organization
    if info is None:
        raise AssertionError("organization mode without the organization read")
    return info


class OrganizationBusPolicy(Resource):
    """The home default bus admits events from the organization's accounts only."""

    kind = "organization-bus-policy"
    label = "central bus policy"
    service = "events"
    sid = "OrganizationBusPolicy"
    removable_by_setup = True

    def calls(self) -> list[perms.Grant | None]:
        # PutPermission and RemovePermission have no resource type, nor condition keys:
        # AWS authorises them only on "*" (they change the account's default bus).
        return [
            self.grant("Read", perms.READ, "DescribeEventBus"),
            perms.unscoped_write(
                "SetupOrganizationBusPolicy", perms.ON_SETUP, "events", "PutPermission"
            ),
            perms.unscoped_write(
                "TeardownOrganizationBusPolicy", perms.ON_TEARDOWN, "events", "RemovePermission"
            ),
        ]

    @property
    def name(self) -> str:
        return self.names.bus_policy_sid

    @property
    def arn(self) -> str:
        return self.names.event_bus_arn(self.region)

    def _condition(self) -> dict[str, str]:
        return {"Type": "StringEquals", "Key": "aws:PrincipalOrgID", "Value": _org(self.d).id}

    def read(self) -> Observed | None:
        with self.aws_call():
            bus = self.client.describe_event_bus(Name="default")
        policy = json.loads(bus.get("Policy") or "{}")
        mine = [s for s in policy.get("Statement", []) if s.get("Sid") == self.name]
        return {"statement": mine[0]} if mine else None

    def owned(self, observed: Observed) -> bool:
        return True  # our name is its statement id: nothing else writes it

    def diff(self, observed: Observed) -> list[str]:
        statement = observed["statement"]
        condition = statement.get("Condition", {}).get("StringEquals", {})
        changes = []
        if condition.get("aws:PrincipalOrgID") != _org(self.d).id:
            changes.append(f"admits: {condition or 'anyone'} → organization {_org(self.d).id}")
        if statement.get("Action") != "events:PutEvents":
            changes.append(f"action: {statement.get('Action')} → events:PutEvents")
        return changes

    def create(self) -> None:
        with self.aws_call():
            self.client.put_permission(
                EventBusName="default",
                Action="events:PutEvents",
                Principal="*",
                StatementId=self.name,
                Condition=self._condition(),
            )

    def update(self, observed: Observed, changes: list[str]) -> None:
        self.create()  # PutPermission replaces the statement of the same id

    def delete(self, observed: Observed) -> str:
        with self.aws_call():
            with contextlib.suppress(self.client.exceptions.ResourceNotFoundException):
                self.client.remove_permission(EventBusName="default", StatementId=self.name)
        return ""


class MemberStackSet(Resource):
    """The StackSet itself: the template, service-managed, deploying automatically."""

    kind = "member-stack-set"
    label = "member StackSet"
    service = "cloudformation"
    sid = "MemberStackSet"
    removable_by_setup = True

    def calls(self) -> list[perms.Grant | None]:
        # CreateStackSet has no resource type: "*", for a StackSet tagged as ours; its
        # tags (cloudformation:TagResource) are authorised on the StackSet itself.
        tags_on_ours = perms.Route("SetupMemberStackSet", (self.arn,))
        return [
            self.grant("Read", perms.READ, "DescribeStackSet"),
            perms.unscoped_write(
                "SetupCreateMemberStackSet",
                perms.ON_SETUP,
                "cloudformation",
                "CreateStackSet",
                condition={"StringEquals": {f"aws:RequestTag/{NAME_TAG}": self.names.name}},
                routes={"cloudformation:TagResource": tags_on_ours},
            ),
            self.grant("Setup", perms.ON_SETUP, "UpdateStackSet"),
            # Trusted access for StackSets, once per organization (no resource type).
            perms.no_resource_level(
                perms.ON_SETUP, "cloudformation", "DescribeOrganizationsAccess"
            ),
            perms.unscoped_write(
                "SetupStackSetsTrustedAccess",
                perms.ON_SETUP,
                "cloudformation",
                "ActivateOrganizationsAccess",
            ),
            self.grant("Setup", perms.ON_SETUP | perms.ON_TEARDOWN, "DescribeStackSetOperation"),
            self.grant("Teardown", perms.ON_TEARDOWN, "DeleteStackSet"),
        ]

    @property
    def name(self) -> str:
        return self.names.stack_set

    @property
    def arn(self) -> str:
        return self.names.stack_set_arn

    @absent_on("StackSetNotFoundException")
    def read(self) -> Observed | None:
        found = self.client.describe_stack_set(StackSetName=self.name, CallAs=_org(self.d).call_as)[
            "StackSet"
        ]
        if found.get("Status") == "DELETED":
            return None
        return {
            "template": json.loads(found.get("TemplateBody") or "{}"),
            "permission_model": found.get("PermissionModel"),
            "auto_deployment": found.get("AutoDeployment") or {},
            "status": found.get("Status"),
            "tags": tags_from_list(found.get("Tags")),
        }

    def preflight(self) -> None:
        require_template_fits(self.d)

    def diff(self, observed: Observed) -> list[str]:
        changes = []
        if observed["template"] != json.loads(_template_body(self.d)):
            changes.append("template: the member accounts' forwarding and tamper rules")
        if observed["permission_model"] not in (None, "SERVICE_MANAGED"):
            changes.append(f"permission model: {observed['permission_model']} → SERVICE_MANAGED")
        auto = observed["auto_deployment"]
        if auto and not auto.get("Enabled"):
            changes.append("automatic deployment: off → on")
        return changes

    def create(self) -> None:
        self._trusted_access()
        with self.aws_call():
            try:
                self.client.create_stack_set(
                    StackSetName=self.name,
                    Description=f"loginwatch '{self.names.name}': forwarding and tamper rules",
                    TemplateBody=_template_body(self.d),
                    Capabilities=CAPABILITIES,
                    PermissionModel="SERVICE_MANAGED",
                    AutoDeployment=AUTO_DEPLOYMENT,
                    CallAs=_org(self.d).call_as,
                    Tags=self.d.tag_list(),
                )
            except botocore.exceptions.ClientError as exc:
                if error_code(exc) != "NameAlreadyExistsException":
                    raise
                self.update({}, [])  # an interrupted earlier run made it

    def _trusted_access(self) -> None:
        """Service-managed StackSets need CloudFormation's trusted access to the
        organization, turned on once per organization (from the management account)."""
        call_as = _org(self.d).call_as
        try:
            status = self.client.describe_organizations_access(CallAs=call_as).get("Status")
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) not in UNKNOWN_OPERATION:
                with self.aws_call():
                    raise
            self.d.notices.append(
                "Could not ask whether CloudFormation's trusted access to the organization "
                "is on (this endpoint lacks DescribeOrganizationsAccess); assuming it is."
            )
            return
        if status == "ENABLED":
            return
        if not _org(self.d).is_management:
            raise LoginwatchError(
                "CloudFormation's trusted access to the organization is off, and only the "
                "management account can turn it on.",
                "From the management account run `aws cloudformation "
                "activate-organizations-access`, then re-run `loginwatch setup`.",
            )
        with self.aws_call():
            self.client.activate_organizations_access()

    def update(self, observed: Observed, changes: list[str]) -> None:
        with self.aws_call():
            answer = self.client.update_stack_set(
                StackSetName=self.name,
                TemplateBody=_template_body(self.d),
                Capabilities=CAPABILITIES,
                PermissionModel="SERVICE_MANAGED",
                AutoDeployment=AUTO_DEPLOYMENT,
                OperationPreferences=PREFERENCES,
                CallAs=_org(self.d).call_as,
            )
        wait_for_operation(self, answer["OperationId"], "updating the member accounts")

    def delete(self, observed: Observed) -> str:
        # Setup removes in list order (the StackSet before its instances), teardown in
        # reverse: either way a StackSet is deleted only once it is empty.
        instances = MemberStackInstances(self.d)
        left = instances.read()
        if left and left["instances"]:
            instances.delete(left)
        with self.aws_call():
            with contextlib.suppress(self.client.exceptions.StackSetNotFoundException):
                self.client.delete_stack_set(StackSetName=self.name, CallAs=_org(self.d).call_as)
        return ""


class MemberStackInstances(Resource):
    """The StackSet's instances: every covered member account, in every fast-path region."""

    kind = "member-stack-instances"
    label = "member accounts' rules"
    service = "cloudformation"
    sid = "MemberStackInstances"
    owner_kind = "member-stack-set"
    removable_by_setup = True

    def calls(self) -> list[perms.Grant | None]:
        orgs = perms.READ
        # Operations and the instance list are authorised on the StackSet alone; the
        # instance changes on the StackSet and its targets (AWS's catalogue).
        on_stack_set = (self.names.stack_set_arn,)
        sid = MemberStackSet.sid
        operations = ("DescribeStackSetOperation", "ListStackSetOperationResults")
        return [
            self.grant("Read", perms.READ, "ListStackInstances", resources=on_stack_set, sid=sid),
            perms.no_resource_level(orgs, "organizations", "ListAccounts"),
            perms.Grant(
                "ReadOrganizationUnits",
                self._parents(),
                perms.ops(orgs, "organizations", "ListAccountsForParent"),
            ),
            self.grant("Setup", perms.ON_SETUP, "CreateStackInstances", "UpdateStackInstances"),
            self.grant("Setup", perms.ON_SETUP, *operations, resources=on_stack_set, sid=sid),
            self.grant("Teardown", perms.ON_TEARDOWN, "DeleteStackInstances"),
            self.grant("Teardown", perms.ON_TEARDOWN, *operations, resources=on_stack_set, sid=sid),
        ]

    def _parents(self) -> tuple[str, ...]:
        """The organization's root and OUs, whose accounts the StackSet covers."""
        info = _org(self.d)
        base = f"arn:{self.names.partition}:organizations::{info.management_account}"
        return (f"{base}:root/{info.id}/r-*", f"{base}:ou/{info.id}/ou-*")

    @property
    def name(self) -> str:
        return self.names.stack_set

    @property
    def arn(self) -> str:
        return self.names.stack_set_arn

    def policy_arns(self) -> tuple[str, ...]:
        # Stack instance calls are authorised on the StackSet and its targets.
        target = self.names.stack_set_arn.replace(":stackset/", ":stackset-target/")
        return (self.names.stack_set_arn, target)

    def regions(self) -> list[str]:
        """Every region the fast path covers, the home one too (a member account has no
        home rule of its own: its home region forwards like the others), and with tamper
        on the region where members' IAM and Organizations calls arrive (as at home)."""
        listed = self.d.config.fast_path.regions
        regions = self.d.regions_enabled() if listed is None else set(listed)
        region = _global_calls_region(self.d)
        if self.d.config.rules.get(TAMPER_RULE) is not None and region:
            regions = regions | {region}
        return sorted(regions | {self.names.region})

    @staticmethod
    def _ours(observed: Observed) -> list[dict[str, Any]]:
        """Instances in the covered accounts (StackSets never deploy to the management
        account; an emulator may)."""
        covered = set(observed["covered"])
        return [i for i in observed["instances"] if i.get("Account") in covered]

    def targets(self) -> dict[str, Any]:
        info = _org(self.d)
        wanted = self.d.config.organization.accounts
        units = [t for t in wanted or () if not t.isdigit()]
        accounts = [t for t in wanted or () if t.isdigit()]
        if wanted is None:
            return {"OrganizationalUnitIds": [info.root_id]}
        if accounts and not units:
            # Single accounts: the whole organization, narrowed to them.
            return {
                "OrganizationalUnitIds": [info.root_id],
                "Accounts": accounts,
                "AccountFilterType": "INTERSECTION",
            }
        if accounts:  # OUs, and single accounts outside them
            return {
                "OrganizationalUnitIds": units,
                "Accounts": accounts,
                "AccountFilterType": "UNION",
            }
        return {"OrganizationalUnitIds": units}

    def read(self) -> Observed | None:
        with self.aws_call():
            try:
                pages = self.client.get_paginator("list_stack_instances").paginate(
                    StackSetName=self.name, CallAs=_org(self.d).call_as
                )
                instances = [s for page in pages for s in page.get("Summaries", [])]
            except self.client.exceptions.StackSetNotFoundException:
                return None
        covered = covered_accounts(self.aws, _org(self.d), self.d.config.organization.accounts)
        if not instances:
            return None if not covered else {"instances": [], "covered": covered}
        return {"instances": instances, "covered": covered}

    def owned(self, observed: Observed) -> bool:
        return True  # they belong to our StackSet (owner_kind), which carries our tags

    def _missing(self, observed: Observed) -> list[tuple[str, str]]:
        have = {(i["Account"], i["Region"]) for i in observed["instances"]}
        return [(a, r) for a in observed["covered"] for r in self.regions() if (a, r) not in have]

    def diff(self, observed: Observed) -> list[str]:
        changes = []
        missing = self._missing(observed)
        if missing:
            accounts = sorted({a for a, _ in missing})
            changes.append(
                f"{len(missing)} account/region(s) without the rule ({', '.join(accounts[:5])}"
                + (" …" if len(accounts) > 5 else "")
                + ")"
            )
        states = Counter(i.get("Status") for i in self._ours(observed))
        if states.get("OUTDATED") or states.get("INOPERABLE"):
            changes.append(
                f"instances outdated: {states.get('OUTDATED', 0)}, failed: "
                f"{states.get('INOPERABLE', 0)}"
            )
        return changes

    def create(self) -> None:
        self._deploy()

    def update(self, observed: Observed, changes: list[str]) -> None:
        if self._missing(observed):
            self._deploy()
        stale = [i for i in self._ours(observed) if i.get("Status") in ("OUTDATED", "INOPERABLE")]
        if stale:
            # Existing instances are not redeployed by CreateStackInstances.
            with self.aws_call():
                answer = self.client.update_stack_instances(
                    StackSetName=self.name,
                    DeploymentTargets=self.targets(),
                    Regions=sorted({i["Region"] for i in stale}),
                    OperationPreferences=PREFERENCES,
                    CallAs=_org(self.d).call_as,
                )
            wait_for_operation(self, answer["OperationId"], "updating the member accounts")

    def _deploy(self) -> None:
        with self.aws_call():
            answer = self.client.create_stack_instances(
                StackSetName=self.name,
                DeploymentTargets=self.targets(),
                Regions=self.regions(),
                OperationPreferences=PREFERENCES,
                CallAs=_org(self.d).call_as,
            )
        wait_for_operation(self, answer["OperationId"], "deploying to the member accounts")

    def delete(self, observed: Observed) -> str:
        regions = sorted({i["Region"] for i in observed["instances"]}) or self.regions()
        with self.aws_call():
            try:
                answer = self.client.delete_stack_instances(
                    StackSetName=self.name,
                    DeploymentTargets=self.targets(),
                    Regions=regions,
                    RetainStacks=False,
                    OperationPreferences=PREFERENCES,
                    CallAs=_org(self.d).call_as,
                )
            except self.client.exceptions.StackSetNotFoundException:
                return ""
        wait_for_operation(self, answer["OperationId"], "removing the member accounts' rules")
        return f"{len(observed['instances'])} instance(s) removed"

    def checks(self, observed: Observed) -> list[Check]:
        states = Counter(i.get("Status") for i in self._ours(observed))
        missing = sorted({a for a, _ in self._missing(observed)})
        covered = observed["covered"]
        detail = (
            f"{len(covered)} member account(s), {len(self.regions())} region(s): "
            f"{states.get('CURRENT', 0)} current, {states.get('OUTDATED', 0)} outdated, "
            f"{states.get('INOPERABLE', 0)} failed"
        )
        checks = [Check("organization fast path", not states.get("INOPERABLE"), detail)]
        checks.append(
            Check(
                "member accounts covered",
                not missing,
                "all" if not missing else f"not covered: {', '.join(missing)}",
                repeats_drift=True,
            )
        )
        return checks

    def facts(self, observed: Observed) -> dict[str, Any]:
        states = Counter(i.get("Status") for i in self._ours(observed))
        return {
            "organization": {
                "member_accounts": len(observed["covered"]),
                "instances_current": states.get("CURRENT", 0),
                "instances_outdated": states.get("OUTDATED", 0),
                "instances_failed": states.get("INOPERABLE", 0),
                "not_covered": sorted({a for a, _ in self._missing(observed)}),
            }
        }


def wait_for_operation(resource: Resource, operation_id: str, doing: str) -> None:
    """Wait for a StackSet operation; a failure names each account and region plainly."""
    client = resource.client
    name = resource.names.stack_set
    call_as = _org(resource.d).call_as
    deadline = time.monotonic() + OPERATION_TIMEOUT_SECONDS
    while True:
        with resource.aws_call():
            status = client.describe_stack_set_operation(
                StackSetName=name, OperationId=operation_id, CallAs=call_as
            )["StackSetOperation"]["Status"]
        if status in DONE:
            break
        if time.monotonic() > deadline:
            raise LoginwatchError(
                f"The StackSet operation {operation_id} ({doing}) is still {status} after "
                f"{OPERATION_TIMEOUT_SECONDS // 60} minutes.",
                "Re-run `loginwatch setup` later: it picks up where this one stopped.",
            )
        resource.aws.sleep(POLL_SECONDS)
    with resource.aws_call():
        pages = client.get_paginator("list_stack_set_operation_results").paginate(
            StackSetName=name, OperationId=operation_id, CallAs=call_as
        )
        results = [r for page in pages for r in page.get("Summaries", [])]
    failed = [r for r in results if r.get("Status") not in ("SUCCEEDED", None)]
    if status != "SUCCEEDED" or failed:
        lines = [
            f"  {r.get('Account')} {r.get('Region')}: {r.get('StatusReason') or r.get('Status')}"
            for r in failed
        ]
        raise LoginwatchError(
            f"The StackSet {name} failed {doing} in {len(failed)} account/region(s):\n"
            + "\n".join(lines[:20])
            + ("\n  …" if len(lines) > 20 else ""),
            "Fix what each line says (a region not enabled in that account, a name already "
            "taken), then re-run `loginwatch setup`.",
        )
