"""The CloudTrail trail: multi-region, so sign-ins logged in any region are seen.

Root sign-ins land in us-east-1 and IAM users signing in through the global
endpoint can land in us-east-2, eu-north-1 or ap-southeast-2: a single-region
trail silently misses them.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import operator_policy as perms
from ..aws import retry_while
from ..errors import UsageError
from .base import Check, Observed, Resource, absent_on, changed, tags_from_list
from .log_group import review_grants

# Errors CloudTrail returns while a new role or log group is not yet usable (IAM propagation).
PROPAGATION_ERRORS = {
    "InvalidCloudWatchLogsLogGroupArnException",
    "InvalidCloudWatchLogsRoleArnException",
}
MANAGEMENT_EVENTS = [{"ReadWriteType": "All", "IncludeManagementEvents": True}]
STALE_AFTER = timedelta(hours=24)


def _age(moment: Any) -> timedelta | None:
    if not isinstance(moment, datetime):
        return None
    return datetime.now(UTC) - moment.astimezone(UTC)


def _delivery_check(status: dict[str, Any]) -> Check:
    """When did CloudWatch Logs last receive from the trail? Not every API reports it."""
    delivered = status.get("LatestCloudWatchLogsDeliveryTime")
    error = status.get("LatestCloudWatchLogsDeliveryError")
    if error:
        return Check("trail delivers to CloudWatch Logs", False, f"delivery error: {error}")
    age = _age(delivered)
    if age is None:
        return Check("trail delivers to CloudWatch Logs", True, "last delivery: unknown", True)
    hours = age.total_seconds() / 3600
    detail = f"last delivery {hours:.1f} h ago ({delivered:%Y-%m-%d %H:%M} UTC)"
    return Check("trail delivers to CloudWatch Logs", age < STALE_AFTER, detail, True)


def read_trail(client: Any, name: str) -> Observed:
    """What both a managed and a reused trail are judged on: settings, status, selectors."""
    trail = client.get_trail(Name=name)["Trail"]
    status = client.get_trail_status(Name=name)
    selectors = client.get_event_selectors(TrailName=name)
    return {
        "trail": trail,
        "logging": bool(status.get("IsLogging")),
        "status": status,
        "selectors": selectors.get("EventSelectors"),
        "advanced_selectors": selectors.get("AdvancedEventSelectors"),
    }


CLOUDTRAIL = "cloudtrail.amazonaws.com"
# review: the sign-in history of every enabled region (LookupEvents has no resource type).
REVIEW_LOOKUP = (
    perms.no_resource_level(perms.ON_REVIEW, "cloudtrail", "LookupEvents"),
    perms.no_resource_level(perms.ON_REVIEW, "ec2", "DescribeRegions"),
)
# The role CloudTrail makes for an organization trail (iam:CreateServiceLinkedRole).
CLOUDTRAIL_SERVICE_LINKED_ROLE = f"aws-service-role/{CLOUDTRAIL}/AWSServiceRoleForCloudTrail"


class Trail(Resource):
    kind = "trail"
    label = "CloudTrail trail"
    service = "cloudtrail"
    sid = "Trail"

    def watched(self) -> list[dict[str, Any]]:
        # Logging, and delivering to CloudWatch Logs (the backstop reads it there).
        return [self.watch("trail", self.arn or self.name, logs=True)]

    def calls(self) -> list[perms.Grant | None]:
        to_cloudtrail = perms.pass_role(
            "SetupPassTrailRoleToCloudTrail",
            self.names.role_arn(self.names.trail_role),
            "cloudtrail.amazonaws.com",
        )
        return [
            perms.no_resource_level(perms.ON_SETUP, "cloudtrail", "DescribeTrails"),
            self.grant(
                "Read", perms.READ, "GetTrail", "GetTrailStatus", "GetEventSelectors", "ListTags"
            ),
            self.grant(
                "Setup",
                perms.ON_SETUP,
                "CreateTrail",
                "UpdateTrail",
                "PutEventSelectors",
                "StartLogging",
                routes={"iam:PassRole": to_cloudtrail},
            ),
            self.grant("Teardown", perms.ON_TEARDOWN, "StopLogging", "DeleteTrail"),
            *REVIEW_LOOKUP,
            *(self._organization_calls() if self.d.config.organization.enabled else []),
        ]

    def _organization_calls(self) -> list[perms.Grant | None]:
        """What CloudTrail needs of the caller to make an organization trail: it enables
        its trusted access and service-linked role (AWS's "prepare" page)."""
        # Every command that builds the deployment reads the organization first.
        read = perms.READ | perms.ON_REDELIVER
        return [
            perms.no_resource_level(read, "organizations", "DescribeOrganization"),
            perms.no_resource_level(read, "organizations", "ListRoots"),
            perms.no_resource_level(read, "organizations", "ListDelegatedAdministrators"),
            perms.no_resource_level(
                perms.ON_SETUP, "organizations", "ListAWSServiceAccessForOrganization"
            ),
            # No resource type: "*", for CloudTrail's trusted access only.
            perms.unscoped_write(
                "SetupCloudTrailTrustedAccess",
                perms.ON_SETUP,
                "organizations",
                "EnableAWSServiceAccess",
                condition={"StringEquals": {"organizations:ServicePrincipal": CLOUDTRAIL}},
            ),
            perms.Grant(
                "SetupCloudTrailServiceLinkedRole",
                (self.names.role_arn(CLOUDTRAIL_SERVICE_LINKED_ROLE),),
                perms.ops(perms.ON_SETUP, "iam", "CreateServiceLinkedRole"),
                condition={"StringEquals": {"iam:AWSServiceName": CLOUDTRAIL}},
            ),
        ]

    @property
    def name(self) -> str:
        return self.names.trail

    @property
    def arn(self) -> str:
        return self.names.trail_arn

    def _log_group_arn(self) -> str:
        # CloudTrail wants the log-group ARN with its ":*" suffix.
        return f"{self.names.log_group_arn(self.names.trail_log_group)}:*"

    @absent_on("TrailNotFoundException")
    def read(self) -> Observed | None:
        observed = read_trail(self.client, self.name)
        tags = self.client.list_tags(ResourceIdList=[observed["trail"]["TrailARN"]])
        tag_list = tags["ResourceTagList"]
        return {**observed, "tags": tags_from_list(tag_list[0].get("TagsList") if tag_list else [])}

    def _settings_diff(self, trail: dict[str, Any]) -> list[str]:
        want = {
            "S3BucketName": self.names.bucket,
            "IsMultiRegionTrail": True,
            "IncludeGlobalServiceEvents": True,
            "LogFileValidationEnabled": True,
            "CloudWatchLogsLogGroupArn": self._log_group_arn(),
            "CloudWatchLogsRoleArn": self.names.role_arn(self.names.trail_role),
        }
        if self.organization_trail or trail.get("IsOrganizationTrail"):
            # Organization mode turned off: the trail goes back to this account alone (the
            # bucket policy no longer admits the organization's prefix).
            want["IsOrganizationTrail"] = self.organization_trail
        changes = [changed(k, trail.get(k), v) for k, v in want.items() if trail.get(k) != v]
        key = self.d.config.kms.bucket
        if key and not (trail.get("KmsKeyId") or "").endswith(key.split("/")[-1]):
            changes.append(changed("KmsKeyId", trail.get("KmsKeyId"), key))
        return changes

    def _selectors_ok(self, observed: Observed) -> bool:
        if observed.get("advanced_selectors"):
            return False
        selectors = observed.get("selectors") or []
        return any(
            s.get("IncludeManagementEvents") and s.get("ReadWriteType") == "All" for s in selectors
        )

    def diff(self, observed: Observed) -> list[str]:
        changes = self._settings_diff(observed["trail"])
        if not self._selectors_ok(observed):
            changes.append("event selectors: management events, read and write")
        if not observed["logging"]:
            changes.append("logging: stopped → started")
        return changes

    def _settings(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "Name": self.name,
            "S3BucketName": self.names.bucket,
            "IsMultiRegionTrail": True,
            "IncludeGlobalServiceEvents": True,
            "EnableLogFileValidation": True,
            "CloudWatchLogsLogGroupArn": self._log_group_arn(),
            "CloudWatchLogsRoleArn": self.names.role_arn(self.names.trail_role),
        }
        if self.d.config.kms.bucket:
            params["KmsKeyId"] = self.d.config.kms.bucket
        if self.organization_trail:
            # Every member account's events, into the same log group (streams o-<id>_…).
            params["IsOrganizationTrail"] = True
        return params

    @property
    def organization_trail(self) -> bool:
        return self.d.config.organization.enabled

    def create(self) -> None:
        c = self.client
        self._notice_existing_trails()

        def attempt() -> None:
            try:
                c.create_trail(**self._settings(), TagsList=self.d.tag_list())
            except c.exceptions.TrailAlreadyExistsException:
                # An interrupted run created it between our read and now: configure it.
                c.update_trail(**self._settings())

        with self.aws_call():
            retry_while(self.aws, attempt, codes=PROPAGATION_ERRORS)
        with self.aws_call():
            c.put_event_selectors(TrailName=self.name, EventSelectors=MANAGEMENT_EVENTS)
        with self.aws_call():
            c.start_logging(Name=self.name)

    def update(self, observed: Observed, changes: list[str]) -> None:
        c = self.client
        if self._settings_diff(observed["trail"]):
            settings = self._settings()
            if observed["trail"].get("IsOrganizationTrail") and not self.organization_trail:
                settings["IsOrganizationTrail"] = False
            with self.aws_call():
                retry_while(self.aws, lambda: c.update_trail(**settings), codes=PROPAGATION_ERRORS)
        if not self._selectors_ok(observed):
            with self.aws_call():
                c.put_event_selectors(TrailName=self.name, EventSelectors=MANAGEMENT_EVENTS)
        if not observed["logging"]:
            with self.aws_call():
                c.start_logging(Name=self.name)

    def delete(self, observed: Observed) -> str:
        c = self.client
        # Stop first so no half-delivered batch is left in a state the user cannot explain.
        with self.aws_call():
            if observed.get("logging"):
                c.stop_logging(Name=self.name)
        with self.aws_call():
            with contextlib.suppress(c.exceptions.TrailNotFoundException):
                c.delete_trail(Name=self.name)
        return ""

    def checks(self, observed: Observed) -> list[Check]:
        trail = observed["trail"]
        return [
            Check(
                "trail is logging",
                observed["logging"],
                "logging" if observed["logging"] else "stopped",
                repeats_drift=True,  # diff() already says "logging: stopped → started"
            ),
            Check(
                "trail is multi-region",
                bool(trail.get("IsMultiRegionTrail")),
                "all regions"
                if trail.get("IsMultiRegionTrail")
                else f"only {trail.get('HomeRegion')}",
            ),
            _delivery_check(observed["status"]),
            *(
                [
                    Check(
                        "organization trail",
                        bool(trail.get("IsOrganizationTrail")),
                        "every member account's events"
                        if trail.get("IsOrganizationTrail")
                        else "this account only",
                        repeats_drift=True,
                    )
                ]
                if self.organization_trail
                else []
            ),
        ]

    def _notice_existing_trails(self) -> None:
        """A second trail recording management events is billed; reuse may be cheaper."""
        with self.aws_call():
            trails = self.client.describe_trails(includeShadowTrails=True).get("trailList", [])
        for trail in trails:
            if trail.get("IsMultiRegionTrail") and trail.get("CloudWatchLogsLogGroupArn"):
                self.d.notices.append(
                    f"The account already has multi-region trail '{trail['Name']}' delivering to "
                    "CloudWatch Logs. Reusing it (trail: {existing: "
                    f"{trail['Name']}}} in the config) avoids paying for a second copy of "
                    "management events."
                )
                return


def records_sign_ins(
    selectors: list[dict[str, Any]] | None, advanced: list[dict[str, Any]] | None
) -> bool:
    """Does a trail with these selectors record ConsoleLogin (a write management event)?"""
    if advanced:
        return any(_advanced_records_sign_ins(s.get("FieldSelectors", [])) for s in advanced)
    if selectors is None:
        return True  # a trail with no selectors at all records all management events
    return any(
        s.get("IncludeManagementEvents", True)
        and s.get("ReadWriteType", "All") in ("All", "WriteOnly")
        for s in selectors
    )


def _advanced_records_sign_ins(fields: list[dict[str, Any]]) -> bool:
    by_name = {f.get("Field"): f for f in fields}
    category = by_name.get("eventCategory", {})
    if "Management" not in category.get("Equals", []):
        return False
    read_only = by_name.get("readOnly")
    if read_only and "true" in read_only.get("Equals", []):
        return False
    source = by_name.get("eventSource")
    if source:
        if source.get("Equals") and "signin.amazonaws.com" not in source["Equals"]:
            return False
        if "signin.amazonaws.com" in source.get("NotEquals", []):
            return False
    return True


class ReusedTrail(Resource):
    """A trail the user already has: checked, used, never modified or deleted."""

    kind = "trail"
    label = "CloudTrail trail (reused)"
    service = "cloudtrail"
    managed = False
    sid = "Trail"

    def watched(self) -> list[dict[str, Any]]:
        # Logging, and delivering to CloudWatch Logs (the backstop reads it there).
        return [self.watch("trail", self.arn or self.name, logs=True)]

    def calls(self) -> list[perms.Grant | None]:
        # Read, never changed: no other trail permission at all. review reads it too, for
        # its log group, which it queries (ours has its own resource, TrailLogGroup); and
        # so does every command that builds the notifier's settings (redeliver too).
        read = perms.READ | perms.ON_REVIEW | perms.ON_REDELIVER
        return [
            self.grant("Read", read, "GetTrail", "GetTrailStatus", "GetEventSelectors"),
            *REVIEW_LOOKUP,
            *review_grants(self.names, self.d.trail_log_group),
        ]

    @property
    def name(self) -> str:
        return self.names.trail

    @property
    def arn(self) -> str:
        return self.observed_arn or self.names.trail_arn

    observed_arn: str | None = None

    @absent_on("TrailNotFoundException")
    def read(self) -> Observed | None:
        observed = read_trail(self.client, self.name)
        self.adopt(observed)
        return observed

    def adopt(self, observed: Observed | None) -> None:
        if observed is not None:
            self.observed_arn = observed["trail"].get("TrailARN")

    def problems(self, observed: Observed | None) -> list[str]:
        """What makes this trail unusable for loginwatch, in words the user can act on."""
        if observed is None:
            return [f"trail '{self.name}' does not exist in {self.names.region}"]
        trail = observed["trail"]
        problems = []
        if not trail.get("IsMultiRegionTrail"):
            problems.append(
                "it is not multi-region (sign-ins logged in other regions would be missed)"
            )
        if not trail.get("IncludeGlobalServiceEvents"):
            problems.append("it does not include global service events")
        if self.d.config.organization.enabled and not trail.get("IsOrganizationTrail"):
            problems.append(
                "it is not an organization trail (organization.enabled: member accounts' "
                "sign-ins would never reach its log group)"
            )
        if not observed["logging"]:
            problems.append("logging is stopped")
        if not records_sign_ins(observed.get("selectors"), observed.get("advanced_selectors")):
            problems.append(
                "its event selectors do not record write management events, where ConsoleLogin is"
            )
        arn = trail.get("CloudWatchLogsLogGroupArn")
        if not arn:
            problems.append("it does not deliver to a CloudWatch Logs log group")
        elif arn.split(":")[4] != self.names.account:
            problems.append(f"its log group is in another account ({arn.split(':')[4]})")
        elif arn.split(":")[3] != self.names.region:
            problems.append(
                f"its log group is in {arn.split(':')[3]}; set region: {arn.split(':')[3]} in the config"
            )
        return problems

    def log_group_name(self, observed: Observed) -> str:
        # arn:aws:logs:REGION:ACCOUNT:log-group:NAME:*
        arn = observed["trail"].get("CloudWatchLogsLogGroupArn") or ""
        return arn.split(":log-group:")[1].removesuffix(":*") if ":log-group:" in arn else ""

    def require_usable(self, observed: Observed | None) -> None:
        problems = self.problems(observed)
        if problems:
            raise UsageError(
                f"Cannot reuse trail '{self.name}': " + "; ".join(problems) + ".",
                "Fix the trail, or remove trail.existing from the config to let loginwatch create one.",
            )

    def diff(self, observed: Observed) -> list[str]:
        return []  # never changed by loginwatch

    def owned(self, observed: Observed) -> bool:
        return False

    def create(self) -> None:
        raise AssertionError("a reused trail is never created")

    def update(self, observed: Observed, changes: list[str]) -> None:
        raise AssertionError("a reused trail is never modified")

    def delete(self, observed: Observed) -> str:
        raise AssertionError("a reused trail is never deleted")

    def checks(self, observed: Observed) -> list[Check]:
        problems = self.problems(observed)
        checks = [Check("reused trail is usable", not problems, "; ".join(problems) or "ok")]
        return [*checks, _delivery_check(observed["status"])]
