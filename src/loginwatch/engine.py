"""Order, plan, apply, status and teardown over the resource descriptions.

The CLI calls these and renders what they report; nothing here prints.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from .allowlist import collapse, compile_pattern
from .aws import Aws
from .config import Config
from .errors import EXIT_INTERRUPTED, LoginwatchError, UsageError
from .names import Names
from .notifier_package import build_zip, code_sha256
from .resources.alarm import Alarm
from .resources.base import Check, Deployment, Observed, Resource
from .resources.bucket import TrailBucket
from .resources.function import Function
from .resources.log_group import NotifierLogGroup, TrailLogGroup
from .resources.metric_filter import MetricFilter
from .resources.parameter import WebhookParameter
from .resources.permission import InvokePermission
from .resources.role import NotifierRole, TrailRole
from .resources.subscription import Subscription
from .resources.topic import Topic
from .resources.trail import ReusedTrail, Trail

Action = Literal["create", "update", "unchanged", "in use"]


class Interrupted(LoginwatchError):
    exit_code = EXIT_INTERRUPTED


# ---------------------------------------------------------------- deployment


def notifier_settings(
    config: Config, names: Names, trail_log_group: str, pattern: str
) -> dict[str, Any]:
    return {
        "name": names.name,
        "region": names.region,
        "webhook_parameter": names.parameter,
        "trail_log_group": trail_log_group,
        "allowlist": [str(n) for n in collapse(config.allowed)],
        "filter_pattern": pattern,
        "lookback_minutes": config.lookback_minutes,
        "alarm_name": names.alarm,
    }


def build_deployment(config: Config, aws: Aws, *, strict: bool = True) -> Deployment:
    """Derive names, pattern and package; in reuse mode, check the trail and learn its log group.

    strict (setup): an unusable reused trail is an error. status and teardown
    only need to find things, so they carry on and report it.
    """
    names = Names.for_config(config, aws.account_id, aws.partition)
    compiled = compile_pattern(config.allowed)
    deployment = Deployment(
        config=config,
        aws=aws,
        names=names,
        pattern=compiled.pattern,
        package=b"",
        package_sha256="",
        trail_log_group=names.trail_log_group,
    )
    if config.reuses_trail:
        reused = ReusedTrail(deployment)
        observed = reused.read()
        if strict:
            reused.require_usable(observed)
        deployment.trail_log_group = reused.log_group_name(observed) if observed else ""
    settings = notifier_settings(config, names, deployment.trail_log_group, compiled.pattern)
    deployment.package = build_zip(settings)
    deployment.package_sha256 = code_sha256(deployment.package)
    return deployment


def resources_for(deployment: Deployment) -> list[Resource]:
    """Every resource, in dependency order (teardown walks it backwards)."""
    if deployment.config.reuses_trail:
        trail_side: list[Resource] = [ReusedTrail(deployment)]
    else:
        trail_side = [
            TrailBucket(deployment),
            TrailLogGroup(deployment),
            TrailRole(deployment),
            Trail(deployment),
        ]
    return [
        *trail_side,
        MetricFilter(deployment),
        Topic(deployment),
        Alarm(deployment),
        WebhookParameter(deployment),
        NotifierRole(deployment),
        NotifierLogGroup(deployment),
        Function(deployment),
        InvokePermission(deployment),
        Subscription(deployment),
    ]


# ---------------------------------------------------------------- interruption


class _StopFlag:
    """First Ctrl-C asks to stop at the next safe point; a second one stops at once."""

    def __init__(self) -> None:
        self.requested = False

    def handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


@contextmanager
def safe_points() -> Iterator[_StopFlag]:
    flag = _StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag  # signals only reach the main thread; nothing to install
        return
    previous = signal.signal(signal.SIGINT, flag.handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _stop_if_requested(flag: _StopFlag, command: str, done: str) -> None:
    if flag.requested:
        raise Interrupted(
            f"Interrupted after {done}; every step so far is complete.",
            f"Re-run `loginwatch {command}` to finish the job.",
        )


# ---------------------------------------------------------------- setup


@dataclass(frozen=True)
class StepResult:
    resource: Resource
    action: Action
    changes: tuple[str, ...] = ()


class Progress(Protocol):
    def checking(self, resource: Resource) -> None: ...  # reading it (before any change)
    def start(self, resource: Resource) -> None: ...  # settling it
    def done(self, result: StepResult) -> None: ...


def _require_ours(resource: Resource, observed: Observed) -> None:
    if resource.owned(observed) or resource.adoptable(observed):
        return
    raise UsageError(
        f"{resource.label} '{resource.name}' already exists but was not created by loginwatch "
        "(it lacks the managed-by=loginwatch tags), so loginwatch will not change it.",
        "Choose another `name` in the config, or delete/rename that resource yourself.",
    )


def plan_step(resource: Resource) -> tuple[Action, Observed | None, list[str]]:
    if not resource.managed:
        return "in use", resource.read(), []
    observed = resource.read()
    if observed is None:
        return "create", None, []
    _require_ours(resource, observed)
    changes = resource.diff(observed)
    return ("update" if changes else "unchanged"), observed, changes


def plan(deployment: Deployment, progress: Progress) -> list[StepResult]:
    """What setup would do, with reads only (for --dry-run)."""
    results = []
    for resource in resources_for(deployment):
        progress.start(resource)
        action, _, changes = plan_step(resource)
        result = StepResult(resource, action, tuple(changes))
        progress.done(result)
        results.append(result)
    return results


def apply(deployment: Deployment, progress: Progress) -> list[StepResult]:
    """Check every resource, then create or update each in order; stop cleanly on Ctrl-C.

    All reads (and the ownership checks) come first, so a resource loginwatch may
    not touch stops the run before anything is changed. Acting on state read a
    moment earlier is safe: every create tolerates "already exists" (an earlier,
    interrupted run), and the next run re-reads everything.
    """
    resources = resources_for(deployment)
    planned = []
    for resource in resources:
        progress.checking(resource)
        planned.append(plan_step(resource))
    results: list[StepResult] = []
    with safe_points() as stop:
        for resource, (action, observed, changes) in zip(resources, planned, strict=True):
            progress.start(resource)
            if action == "create":
                resource.create()
            elif action == "update":
                assert observed is not None
                resource.update(observed, changes)
            result = StepResult(resource, action, tuple(changes))
            progress.done(result)
            results.append(result)
            _stop_if_requested(stop, "setup", f"the {resource.label}")
    return results


# ---------------------------------------------------------------- status

State = Literal["ok", "missing", "drift", "unmanaged"]
NOT_OURS = "exists but was not created by loginwatch"


@dataclass
class ResourceStatus:
    resource: Resource
    state: State
    details: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.resource.kind,
            "name": self.resource.name,
            "arn": self.resource.arn,
            "state": self.state,
            "details": self.details,
        }


@dataclass
class StatusReport:
    deployment: Deployment
    resources: list[ResourceStatus]

    @property
    def checks(self) -> list[Check]:
        return [c for r in self.resources for c in r.checks]

    @property
    def problems(self) -> list[str]:
        found = [
            f"{r.resource.label}: {r.state}" + (f" ({'; '.join(r.details)})" if r.details else "")
            for r in self.resources
            if r.state in ("missing", "drift")
        ]
        found += [f"{c.name}: {c.detail}" for c in self.checks if not c.ok and not c.warning_only]
        return found

    @property
    def beyond_setup(self) -> list[str]:
        """Problems `setup` cannot repair: a reused trail, or a look-alike it may not touch."""
        found = [
            f"{r.resource.label} '{r.resource.name}': {'; '.join(r.details)}"
            for r in self.resources
            if (r.state == "drift" and r.details == [NOT_OURS])
            or (r.state == "missing" and not r.resource.managed)
        ]
        found += [
            f"{c.name}: {c.detail}"
            for r in self.resources
            if not r.resource.managed
            for c in r.checks
            if not c.ok and not c.warning_only
        ]
        return found

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        names = self.deployment.names
        return {
            "healthy": self.healthy,
            "name": names.name,
            "region": names.region,
            "account": names.account,
            "resources": [r.to_json() for r in self.resources],
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


def _status_of(resource: Resource) -> ResourceStatus:
    observed = resource.read()
    if not resource.managed:
        if observed is None:
            return ResourceStatus(resource, "missing", [f"{resource.name} not found"])
        return ResourceStatus(resource, "unmanaged", [], resource.checks(observed))
    if observed is None:
        return ResourceStatus(resource, "missing")
    if not resource.owned(observed) and not resource.adoptable(observed):
        return ResourceStatus(resource, "drift", [NOT_OURS])
    changes = resource.diff(observed)
    return ResourceStatus(
        resource, "drift" if changes else "ok", changes, resource.checks(observed)
    )


def status(deployment: Deployment, *, concurrency: int = 8) -> StatusReport:
    """Read every resource (concurrently: they are independent reads) and judge the chain."""
    resources = resources_for(deployment)
    if concurrency <= 1:
        results = [_status_of(r) for r in resources]
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            results = list(pool.map(_status_of, resources))
    return StatusReport(deployment, results)


# ---------------------------------------------------------------- teardown

TeardownAction = Literal["delete", "clean", "keep", "absent"]


@dataclass
class TeardownItem:
    resource: Resource
    action: TeardownAction
    reason: str = ""
    observed: Observed | None = None
    note: str = ""


def teardown_plan(
    deployment: Deployment, *, delete_bucket: bool, delete_trail_logs: bool
) -> list[TeardownItem]:
    """What teardown would remove and keep, newest resource first. Reads only."""
    release = {"bucket": delete_bucket, "trail-log-group": delete_trail_logs}
    resources = resources_for(deployment)
    seen = {r.kind: (r, r.read()) for r in resources}
    return [
        _teardown_item(r, seen[r.kind][1], seen, release.get(r.kind, False))
        for r in reversed(resources)
    ]


def _teardown_item(
    resource: Resource,
    observed: Observed | None,
    seen: dict[str, tuple[Resource, Observed | None]],
    release_data: bool,
) -> TeardownItem:
    if not resource.managed:
        return TeardownItem(resource, "keep", "reused, not managed by loginwatch", observed)
    if observed is None:
        return TeardownItem(resource, "absent")
    if resource.owner_kind:
        owner, owner_state = seen[resource.owner_kind]
        if owner_state is not None and not owner.owned(owner_state):
            reason = f"its {owner.label} was not created by loginwatch"
            return TeardownItem(resource, "keep", reason, observed)
    if not resource.owned(observed):
        if resource.cleanable(observed):
            # e.g. the user's own bucket, named in the config: kept, our statements taken back.
            reason = "not created by loginwatch: kept, loginwatch's additions removed"
            return TeardownItem(resource, "clean", reason, observed)
        return TeardownItem(resource, "keep", "not created by loginwatch", observed)
    if resource.keeps_data and not release_data:
        return TeardownItem(resource, "keep", resource.keeps_data, observed)
    return TeardownItem(resource, "delete", "", observed)


def teardown(items: list[TeardownItem], on_done: Callable[[TeardownItem], None]) -> None:
    """Delete the planned items in order, re-reading each first (it may be gone already)."""
    with safe_points() as stop:
        for item in items:
            if item.action not in ("delete", "clean"):
                continue
            current = item.resource.read()
            if current is not None:
                resource = item.resource
                item.note = (
                    resource.clean(current) if item.action == "clean" else resource.delete(current)
                )
            on_done(item)
            _stop_if_requested(stop, "teardown", f"removing the {item.resource.label}")
