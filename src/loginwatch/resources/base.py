"""The one protocol every AWS resource kind follows.

read() → observed state or None · diff(observed) → what differs · create() ·
update(observed, changes) · delete(observed) · grants() → the API calls those
phases make and the ARNs they target. setup, status, teardown, --dry-run and
`permissions` are all built from these, so a resource is described once.

A resource instance lives in one region (the home region unless it says
otherwise) and gets its clients for that region.
"""

from __future__ import annotations

import dataclasses
import functools
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import botocore.exceptions

from .. import operator_policy as perms
from ..aws import Aws, Service, error_code, translate_errors
from ..config import Config
from ..names import MANAGED_BY, NAME_TAG, Names

Observed = dict[str, Any]


@dataclass(frozen=True)
class Check:
    """A health check beyond existence, for `status` (is the chain able to fire?)."""

    name: str
    ok: bool
    detail: str
    warning_only: bool = False
    # Shown, but not counted as a problem of its own: the resource's drift already says it.
    repeats_drift: bool = False


@dataclass
class Deployment:
    """Everything a resource needs: config, names, AWS access, and derived artefacts."""

    config: Config
    # None only for an offline deployment (`permissions --account`): nothing is read.
    aws: Aws | None
    names: Names
    pattern: str
    package: bytes
    package_sha256: str
    # In reuse mode the trail's log group is learned from the trail at runtime.
    trail_log_group: str = ""
    notices: list[str] = field(default_factory=list)
    # Reads made while building the deployment, handed to the plan so nothing is read twice.
    prefetched: dict[str, Observed | None] = field(default_factory=dict)
    # Regions enabled for the account: None until first needed (see regions_enabled).
    enabled_regions: frozenset[str] | None = None
    # Slack destinations an earlier setup stored a webhook for: None until first needed.
    stored_destinations: list[str] | None = None
    # A reused trail's log group: every metric filter on it (name → pattern), for quotas.
    log_group_filters: dict[str, str] | None = None
    # Organization mode: the organization, read before anything is planned.
    organization: Any = None
    # access_key_outside_allowlist: its metric filter and EventBridge patterns (the
    # allowlist's complement, as many patterns as its size needs).
    api_call_filter: str = ""
    api_call_patterns: list[dict[str, Any]] = field(default_factory=list)
    # tamper: its EventBridge patterns (loginwatch's own resources, the trail).
    tamper_patterns: list[dict[str, Any]] = field(default_factory=list)

    def regions_enabled(self) -> frozenset[str]:
        """Regions this account may use, asked once (opt-in regions are off until enabled)."""
        if self.enabled_regions is None:
            self.enabled_regions = enabled_regions(self.live_aws)
        return self.enabled_regions

    @property
    def other_regions(self) -> list[str]:
        """Every region but the home one that the account (may) use, in a stable order."""
        return sorted(self.regions_enabled() - {self.names.region})

    def region_enabled(self, region: str) -> bool:
        return region == self.names.region or region in self.regions_enabled()

    @property
    def live_aws(self) -> Aws:
        if self.aws is None:
            raise AssertionError("an offline deployment makes no AWS calls")
        return self.aws

    @property
    def tags(self) -> dict[str, str]:
        return {**self.config.tags, MANAGED_BY[0]: MANAGED_BY[1], NAME_TAG: self.names.name}

    def tag_list(self, key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
        return [{key: k, value: v} for k, v in sorted(self.tags.items())]


def enabled_regions(aws: Aws) -> frozenset[str]:
    """Regions this account may use, asked from EC2 in the home region (one call).

    Only the partition's own regions count: a region of another partition (GovCloud,
    China) is another account altogether, whatever an emulator may list.
    """
    with translate_errors():
        found = aws.client("ec2").describe_regions(AllRegions=True)["Regions"]
    enabled = {
        r["RegionName"]
        for r in found
        if r.get("OptInStatus", "opt-in-not-required") != "not-opted-in"
    }
    # The connection's own botocore session: its endpoint data is loaded already (a new
    # session would load it again: a tenth of a second of every command).
    known = aws.session.get_available_regions("events", partition_name=aws.partition)
    return frozenset(enabled & set(known))


@functools.lru_cache(maxsize=4)
def partition_regions(partition: str) -> frozenset[str]:
    """Every EventBridge region botocore knows in the partition: what "all" may mean."""
    import botocore.session

    session = botocore.session.get_session()
    return frozenset(session.get_available_regions("events", partition_name=partition))


class Resource(ABC):
    kind: ClassVar[str]
    label: ClassVar[str]  # what the user reads, e.g. "S3 bucket"
    service: ClassVar[Service]
    # False for things loginwatch uses but never changes (a reused trail).
    managed: ClassVar[bool] = True
    # Audit data: teardown keeps the resource unless asked; this says why and how.
    keeps_data: ClassVar[str] = ""
    # Takes no tags: it is loginwatch's when the resource of this kind it lives on is.
    owner_kind: ClassVar[str | None] = None
    # The stem of this kind's policy statement ids ("Read<sid>", "Setup<sid>", ...).
    sid: ClassVar[str] = ""
    # The config can stop asking for it (fast path off, a region dropped): setup deletes it.
    removable_by_setup: ClassVar[bool] = False

    def __init__(
        self, deployment: Deployment, region: str | None = None, *, wanted: bool = True
    ) -> None:
        self.d = deployment
        self.region = region or deployment.names.region
        # False: the config no longer asks for it (fast path off, a region dropped);
        # setup removes what an earlier run made, status reports it until then.
        self.wanted = wanted

    @property
    def key(self) -> str:
        """Identity within a deployment: one kind may live in several regions."""
        return f"{self.kind}@{self.region}"

    @property
    def in_home_region(self) -> bool:
        return self.region == self.names.region

    # ------------------------------------------------------------ identity
    @property
    @abstractmethod
    def name(self) -> str: ...

    @property
    def arn(self) -> str:
        return ""

    @property
    def names(self) -> Names:
        return self.d.names

    @property
    def aws(self) -> Aws:
        return self.d.live_aws

    @cached_property
    def client(self) -> Any:
        return self.aws.client(self.service, self.region)

    # ------------------------------------------------------------ permissions
    def calls(self) -> list[perms.Grant | None]:
        """The API operations each phase makes and the ARNs they target: read (every
        command), create/update (setup), delete (teardown), test-alert's own calls.
        Each kind declares its own; `loginwatch permissions` is built from them."""
        return []

    def grants(self) -> list[perms.Grant]:
        found = [g for g in self.calls() if g is not None]
        if self.removable_by_setup:
            # setup removes it when the config stops asking for it: teardown's calls, on setup.
            found += [_on_setup(g) for g in found if g.sid.startswith("Teardown")]
        if not self.in_home_region:
            # The engine asks once which regions are enabled before touching another one.
            found.append(
                perms.no_resource_level(
                    perms.READ_AND_TEST | perms.ON_REDELIVER, "ec2", "DescribeRegions"
                )
            )
        return found

    def policy_arns(self) -> tuple[str, ...]:
        """The ARNs IAM authorises this resource's own calls on."""
        return (self.arn,)

    def grant(
        self,
        phase: str,
        commands: frozenset[str],
        *operations: str,
        service: str | None = None,
        sid: str | None = None,
        resources: tuple[str, ...] | None = None,
        routes: dict[str, perms.Route] | None = None,
    ) -> perms.Grant:
        """One statement: ``phase`` is its Sid prefix (Read, Setup, Teardown, TestAlert)."""
        return perms.Grant(
            f"{phase}{sid or self.sid}",
            resources if resources is not None else self.policy_arns(),
            perms.ops(commands, service or self.service, *operations),
            routes=routes or {},
        )

    # ------------------------------------------------------------ protocol
    @abstractmethod
    def read(self) -> Observed | None:
        """Current state as loginwatch compares it, or None when the resource is absent."""

    @abstractmethod
    def diff(self, observed: Observed) -> list[str]:
        """Human-readable differences between observed and desired; empty when in sync."""

    @abstractmethod
    def create(self) -> None: ...

    @abstractmethod
    def update(self, observed: Observed, changes: list[str]) -> None: ...

    @abstractmethod
    def delete(self, observed: Observed) -> str:
        """Remove it; return a short note for the user (or "")."""

    def adopt(self, observed: Observed | None) -> None:
        """Learn from a reading another instance of this resource made (read() does it
        itself); most resources need nothing from it."""
        return None

    def owned(self, observed: Observed) -> bool:
        """Did loginwatch make this? Default: our two tags, with our name."""
        return has_our_tags(observed.get("tags", {}), self.names.name)

    def adoptable(self, observed: Observed) -> bool:
        """May setup change it although owned() is False? Only where a resource says why."""
        return False

    def cleanable(self, observed: Observed) -> bool:
        """Not ours, but carries something setup added that teardown should take back."""
        return False

    def clean(self, observed: Observed) -> str:
        """Take back what setup added to a resource it does not own; return a note."""
        raise NotImplementedError

    def checks(self, observed: Observed) -> list[Check]:
        """Extra health checks for `status`; most resources have none."""
        return []

    def preflight(self) -> None:
        """Checks that must pass before setup changes anything, for a resource it will
        create or update (raise to refuse); most resources have none."""
        return None

    def undelivered(self, observed: Observed) -> int:
        """Alerts this resource holds that nobody has received (a queue's messages)."""
        return 0

    def facts(self, observed: Observed) -> dict[str, Any]:
        """Figures `status --json` reports for it, read after checks(); most have none."""
        return {}

    def watched(self) -> list[dict[str, Any]]:
        """What the notifier's self-check verifies of it from inside, as items of
        settings.json's ``self_check.checks`` (notifier/self_check.py); most have none."""
        return []

    def watch(self, check: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
        """One self-check item: its kind, region and name, and what else it needs."""
        return {"check": check, "region": self.region, "name": name or self.name, **extra}

    # ------------------------------------------------------------ helpers
    @contextmanager
    def aws_call(self) -> Iterator[None]:
        """AWS errors → one or two lines naming the failed call's IAM action and this."""
        with translate_errors(self.name):
            yield


def _on_setup(grant: perms.Grant) -> perms.Grant:
    """A teardown statement, made again for setup's removal of what is no longer wanted."""
    return dataclasses.replace(
        grant,
        sid="SetupRemove" + grant.sid.removeprefix("Teardown"),
        operations=tuple((op, perms.ON_SETUP) for op, _ in grant.operations),
        implied=tuple((action, perms.ON_SETUP) for action, _ in grant.implied),
    )


def has_our_tags(tags: Mapping[str, str], name: str) -> bool:
    return tags.get(MANAGED_BY[0]) == MANAGED_BY[1] and tags.get(NAME_TAG) == name


def tags_from_list(
    items: list[dict[str, str]] | None, key: str = "Key", value: str = "Value"
) -> dict[str, str]:
    return {item[key]: item[value] for item in items or []}


def absent_on(*codes: str) -> Any:
    """Decorator for read(): these error codes mean "the resource does not exist"."""

    def wrap(func: Any) -> Any:
        def inner(self: Resource) -> Observed | None:
            try:
                return func(self)
            except botocore.exceptions.ClientError as exc:
                if error_code(exc) in codes:
                    return None
                with self.aws_call():
                    raise

        inner.__name__ = func.__name__
        inner.__doc__ = func.__doc__
        return inner

    return wrap


def changed(label: str, old: Any, new: Any) -> str:
    return f"{label}: {old} → {new}"
