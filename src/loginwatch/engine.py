"""Order, plan, apply, status and teardown over the resource descriptions.

The CLI calls these and renders what they report; nothing here prints.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from . import api_call_patterns
from .allowlist import collapse, compile_pattern
from .aws import Aws
from .config import Config
from .errors import EXIT_INTERRUPTED, EndpointLacksOperation, LoginwatchError, UsageError
from .names import RULE_RESOURCES, Names, filter_rule
from .notifier.rules import TAMPER_RULE
from .notifier.settings import Settings
from .notifier_package import build_zip, code_sha256
from .organization import OrgInfo, read_organization, require_setup_account
from .resources.alarm import Alarm
from .resources.base import (
    Check,
    Deployment,
    Observed,
    Resource,
    partition_regions,
)
from .resources.bucket import TrailBucket
from .resources.claims_table import ClaimsTable
from .resources.function import Function
from .resources.log_group import NotifierLogGroup, TrailLogGroup
from .resources.metric_filter import MetricFilter
from .resources.parameter import DestinationParameter, WebhookParameter, stored_destinations
from .resources.permission import (
    EventsInvokePermission,
    InvokePermission,
    WatchRulesInvokePermission,
)
from .resources.queue import EventsDeadLetterQueue, FinalQueue, RetryQueue
from .resources.retry_wiring import FailureDestination, RetryMapping
from .resources.role import ForwardingRole, NotifierRole, TrailRole
from .resources.self_check import (
    EmailSubscription,
    HeartbeatAlarm,
    HeartbeatParameter,
    NotifierErrorsAlarm,
    SchedulerRole,
    SecondVoiceTopic,
    SelfCheckSchedule,
    second_voice_on,
    self_check_on,
)
from .resources.sign_in_rule import ForwardingRule, SignInRule
from .resources.stack_set import MemberStackInstances, MemberStackSet, OrganizationBusPolicy
from .resources.subscription import Subscription
from .resources.topic import Topic
from .resources.trail import ReusedTrail, Trail
from .resources.watch_rules import KEY_EXPOSED_REGIONS, WatchRules
from .tamper_patterns import tamper_patterns

Action = Literal["create", "update", "unchanged", "in use", "unavailable", "remove", "none"]
REGION_NOT_ENABLED = "region not enabled for this account"
NOT_WANTED = "no longer in the config (rule or fast path off, region or destination not listed): setup removes it"
READ_CONCURRENCY = 8


class Interrupted(LoginwatchError):
    exit_code = EXIT_INTERRUPTED


# ---------------------------------------------------------------- deployment


def notifier_settings(config: Config, names: Names, trail_log_group: str) -> Settings:
    """What the notifier is told, in the one type it reads (notifier/settings.py)."""
    return Settings(
        name=names.name,
        region=names.region,
        webhook_parameter=names.parameter,
        trail_log_group=trail_log_group,
        allowlist=tuple(str(n) for n in collapse(config.allowed)),
        allowlist_labels={str(e.network): e.label for e in config.allowed if e.label} or None,
        lookback_minutes=config.lookback_minutes,
        alarm_name=names.alarm,
        claims_table=names.claims_table,
        retry_queue=names.retry_queue,
        rules=config.rules,
        alarms=names.alarm_rules([rule.name for rule in config.rules.rules]),
        destinations=tuple(
            d.routed(names.destination_parameter(d.name)) for d in config.destinations
        ),
        default_gets=config.default_gets,
        account_names=config.organization.enabled and config.organization.account_names,
        organization_home=names.account if config.organization.enabled else "",
        # The alarm backstop reads only calls from outside the allowlist (as its filter).
        key_call_filter=(
            api_call_patterns.api_call_filter(config.allowed).pattern
            if config.rules.get("access_key_outside_allowlist") is not None
            else ""
        ),
    )


def build_deployment(config: Config, aws: Aws, *, strict: bool = True) -> Deployment:
    """Derive names, pattern and package; in reuse mode, check the trail and learn its log group.

    strict (setup): an unusable reused trail is an error. status and teardown
    only need to find things, so they carry on and report it. The trail read
    here is handed to the plan, which does not read it again.
    """
    deployment = _deployment(config, aws, Names.for_config(config, aws.account_id, aws.partition))
    if config.organization.enabled:
        # Before anything is planned: from a member account, setup stops here.
        deployment.organization = read_organization(aws)
        if strict:
            require_setup_account(deployment.organization)
    if config.reuses_trail:
        reused = ReusedTrail(deployment)
        observed = reused.read()
        if strict:
            reused.require_usable(observed)
        deployment.prefetched[reused.key] = observed
        deployment.trail_log_group = reused.log_group_name(observed) if observed else ""
    return _with_package(deployment)


def offline_deployment(
    config: Config, account: str, *, partition: str = "aws", trail_log_group: str | None = None
) -> Deployment:
    """A deployment that makes no AWS call: for `permissions --account`, which only needs
    the resources' names. A reused trail's log group must then be given."""
    deployment = _deployment(config, None, Names.for_config(config, account, partition))
    # Which regions the account has enabled is unknown offline: grant for every one.
    deployment.enabled_regions = partition_regions(partition)
    if config.organization.enabled:  # unknown offline too: names are all permissions need
        deployment.organization = OrgInfo("o-*", account, "r-*", account)
    if config.reuses_trail:
        if not trail_log_group:
            raise ValueError("a config that reuses a trail needs that trail's log group")
        if ":log-group:" in trail_log_group:  # an ARN, as CloudTrail reports it
            trail_log_group = trail_log_group.split(":log-group:")[1].removesuffix(":*")
        deployment.trail_log_group = trail_log_group
    return _with_package(deployment)


def drill_deployment(config: Config, aws: Aws) -> Deployment:
    """A deployment for `test-alert`, which makes no read of its own.

    Its diagnosis judges a few links through their resources (resources_for); it needs
    no notifier package, organization, reused trail's log group or stored destinations,
    and the test-alert policy grants none of those reads.
    """
    deployment = _deployment(config, aws, Names.for_config(config, aws.account_id, aws.partition))
    deployment.stored_destinations = []  # their parameters are no link of a test alert
    return _with_tamper_patterns(deployment)


def review_deployment(config: Config, aws: Aws) -> Deployment:
    """A deployment for `review` (review/run.py): names, and a reused trail's log group,
    read but not judged (an unusable trail still has a history to review). No package,
    organization or stored destinations: review reads none of them."""
    deployment = _deployment(config, aws, Names.for_config(config, aws.account_id, aws.partition))
    if config.reuses_trail:
        reused = ReusedTrail(deployment)
        observed = reused.read()
        deployment.trail_log_group = reused.log_group_name(observed) if observed else ""
    return deployment


def _deployment(config: Config, aws: Aws | None, names: Names) -> Deployment:
    deployment = Deployment(
        config=config,
        aws=aws,
        names=names,
        pattern=compile_pattern(config.allowed).pattern,
        package=b"",
        package_sha256="",
        trail_log_group=names.trail_log_group,
    )
    if config.rules.get("access_key_outside_allowlist") is not None:
        deployment.api_call_filter = api_call_patterns.api_call_filter(config.allowed).pattern
        deployment.api_call_patterns = api_call_patterns.event_patterns(config.allowed)
    return deployment


def _with_tamper_patterns(deployment: Deployment) -> Deployment:
    """tamper's patterns name the trail's log group, known only once a reused trail
    has been read."""
    if deployment.config.rules.get(TAMPER_RULE) is not None:
        deployment.tamper_patterns = tamper_patterns(
            deployment.names, deployment.trail_log_group or None
        )
    return deployment


def _with_package(deployment: Deployment) -> Deployment:
    _with_tamper_patterns(deployment)
    settings = notifier_settings(deployment.config, deployment.names, deployment.trail_log_group)
    data = settings.to_dict()
    self_check = self_check_settings(deployment)
    if self_check is not None:
        data["self_check"] = self_check
    deployment.package = build_zip(data)
    deployment.package_sha256 = code_sha256(deployment.package)
    return deployment


def self_check_settings(deployment: Deployment) -> dict[str, Any] | None:
    """What the notifier's self-check verifies: each wanted resource's own items (one
    list of resources, as for setup, status and teardown). None: the self-check is off."""
    check = deployment.config.self_check
    if not check.enabled:
        return None
    resources = resources_for(deployment, wanted_only=True)
    return {
        "checks": [item for r in resources if r.wanted for item in r.watched()],
        "heartbeat_parameter": deployment.names.heartbeat_parameter if check.heartbeat else "",
        "weekly_summary": check.weekly_summary,
    }


def resources_for(deployment: Deployment, *, wanted_only: bool = False) -> list[Resource]:
    """Every resource, in dependency order (teardown walks it backwards). wanted_only:
    without the destinations an earlier setup stored and the config dropped (nothing
    is read to find them), for what describes the wanted chain only."""
    if deployment.config.reuses_trail:
        trail_side: list[Resource] = [ReusedTrail(deployment)]
    else:
        trail_side = [
            TrailBucket(deployment),
            TrailLogGroup(deployment),
            TrailRole(deployment),
            Trail(deployment),
        ]
    # Every rule is listed, on or off: a rule turned off has its filter and alarm removed.
    # One filter and alarm per rule (tamper has two), on or off: see names.RULE_RESOURCES.
    rule_on = {f: deployment.config.rules.get(filter_rule(f)) is not None for f in RULE_RESOURCES}
    heartbeat = deployment.config.self_check.heartbeat
    return [
        *trail_side,
        *(MetricFilter(deployment, rule, wanted=on) for rule, on in rule_on.items()),
        Topic(deployment),
        *(Alarm(deployment, rule, wanted=on) for rule, on in rule_on.items()),
        WebhookParameter(deployment),
        *destination_parameters(deployment, wanted_only=wanted_only),
        HeartbeatParameter(deployment, wanted=self_check_on(deployment) and heartbeat),
        ClaimsTable(deployment),
        NotifierRole(deployment),
        SchedulerRole(deployment, wanted=self_check_on(deployment)),
        # After the role: the retry queue's policy names it as the only producer.
        FinalQueue(deployment),
        RetryQueue(deployment),
        NotifierLogGroup(deployment),
        Function(deployment),
        FailureDestination(deployment),
        RetryMapping(deployment),
        InvokePermission(deployment),
        Subscription(deployment),
        *fast_path_resources(deployment),
        *organization_resources(deployment),
        *self_check_resources(deployment),
    ]


def self_check_resources(deployment: Deployment) -> list[Resource]:
    """The schedule, then the second voice; the heartbeat alarm last: its creation runs
    the first check, which needs everything else in place (a fresh install stays quiet)."""
    voice = second_voice_on(deployment)
    return [
        SelfCheckSchedule(deployment, wanted=self_check_on(deployment)),
        SecondVoiceTopic(deployment, wanted=voice),
        EmailSubscription(deployment, wanted=voice),
        NotifierErrorsAlarm(deployment, wanted=voice),
        HeartbeatAlarm(deployment, wanted=voice),
    ]


def organization_resources(deployment: Deployment) -> list[Resource]:
    """Organization mode: the central bus admits the organization, then the StackSet puts
    a forwarding rule in every covered member account and region."""
    if not deployment.config.organization.enabled:
        return []
    on = deployment.config.fast_path.enabled
    return [
        OrganizationBusPolicy(deployment, wanted=on),
        MemberStackSet(deployment, wanted=on),
        MemberStackInstances(deployment, wanted=on),
    ]


def destination_parameters(deployment: Deployment, *, wanted_only: bool = False) -> list[Resource]:
    """One per destination the config names, and one per destination an earlier setup
    stored that the config no longer names (setup removes those)."""
    named = [d.name for d in deployment.config.destinations]
    if wanted_only:
        return [DestinationParameter(deployment, d) for d in named]
    if deployment.stored_destinations is None:
        online = deployment.aws is not None
        deployment.stored_destinations = stored_destinations(deployment) if online else []
    dropped = [d for d in deployment.stored_destinations if d not in named]
    return [
        *(DestinationParameter(deployment, d) for d in named),
        *(DestinationParameter(deployment, d, wanted=False) for d in dropped),
    ]


def fast_path_resources(deployment: Deployment) -> list[Resource]:
    """The home rule and, in every other region asked for, a rule forwarding to it.

    Every enabled region is listed even when the config names fewer (or turns
    the fast path off): what an earlier setup made there is found and removed.
    """
    fast = deployment.config.fast_path
    home = deployment.names.region
    others = deployment.other_regions
    wanted = set(others) if fast.regions is None else set(fast.regions) - {home}
    regions = sorted(set(others) | wanted)
    here = {region: fast.enabled and region in wanted for region in regions}
    watches = watch_rules(deployment, [home, *regions], {home} | wanted)
    forwarded = any(w.wanted for w in watches if not w.in_home_region)
    at_home = watches[0]
    return [
        EventsInvokePermission(deployment, wanted=fast.enabled),
        WatchRulesInvokePermission(deployment, wanted=at_home.wanted),
        # Each rule's dead-letter queue comes first: it must be in the rule's own region.
        EventsDeadLetterQueue(deployment, wanted=fast.enabled, watch_rules=at_home.wanted),
        *(
            EventsDeadLetterQueue(deployment, r, wanted=here[r] or w.wanted, watch_rules=w.wanted)
            for r, w in zip(regions, watches[1:], strict=True)
        ),
        SignInRule(deployment, wanted=fast.enabled),
        ForwardingRole(deployment, wanted=fast.enabled and (bool(wanted) or forwarded)),
        *(ForwardingRule(deployment, r, wanted=here[r]) for r in regions),
        *watches,
    ]


def watch_rules(
    deployment: Deployment, regions: list[str], fast_regions: set[str]
) -> list[WatchRules]:
    """The watch rules' EventBridge side, one resource per region (home first).

    API calls from outside the allowlist: every region of the fast path. AWS's exposure
    reports: where AWS sends them (us-east-1, us-west-2 as backup) and home, which takes
    what they forward. Tampering: every region of the fast path, and us-east-1, where
    IAM's calls arrive. Every region is listed, rules on or off: what an earlier setup
    made is removed.
    """
    config = deployment.config
    on = config.fast_path.enabled
    calls = on and config.rules.get("access_key_outside_allowlist") is not None
    exposed = on and config.rules.get("credentials_exposed") is not None
    tamper = on and config.rules.get(TAMPER_RULE) is not None
    home = deployment.names.region
    # Another partition's Health events and IAM calls arrive in its own regions: home
    # takes them there (its partition's global region is not known here).
    aws = deployment.names.partition == "aws"
    sources = set(KEY_EXPOSED_REGIONS) if aws else set()
    iam = {"us-east-1"} if aws else set()
    return [
        WatchRules(
            deployment,
            region,
            api_calls=calls and region in fast_regions,
            key_exposed=exposed and (region == home or region in sources),
            tamper=tamper and (region in fast_regions or region in iam),
        )
        for region in regions
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


# Read before anything is judged: a resource in a region the account has not enabled.
_UNAVAILABLE: Observed = {"__unavailable__": True}


def is_unavailable(observed: Observed | None) -> bool:
    """The reading of a resource in a region the account has not enabled."""
    return observed is _UNAVAILABLE


def _read(deployment: Deployment, resource: Resource) -> Observed | None:
    if not deployment.region_enabled(resource.region):
        return _UNAVAILABLE
    if resource.key in deployment.prefetched:
        observed = deployment.prefetched.pop(resource.key)
        resource.adopt(observed)
        return observed
    return resource.read()


def read_all(
    deployment: Deployment, resources: Sequence[Resource], *, concurrency: int | None = None
) -> list[Observed | None]:
    """Read every resource, concurrently (reads are independent), in the given order."""
    concurrency = READ_CONCURRENCY if concurrency is None else concurrency
    if any(not r.in_home_region for r in resources):
        deployment.regions_enabled()  # asked here, once, rather than from the reading threads
    if concurrency <= 1:
        return [_read(deployment, r) for r in resources]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(lambda r: _read(deployment, r), resources))


def plan_step(resource: Resource, observed: Observed | None) -> tuple[Action, list[str]]:
    if observed is _UNAVAILABLE:
        return "unavailable", [REGION_NOT_ENABLED]
    if not resource.wanted:
        # Only what loginwatch made is removed; anything else with the name is left alone.
        ours = observed is not None and resource.owned(observed)
        return ("remove", [NOT_WANTED]) if ours else ("none", [])
    if not resource.managed:
        return "in use", []
    if observed is None:
        return "create", []
    _require_ours(resource, observed)
    changes = resource.diff(observed)
    return ("update" if changes else "unchanged"), changes


def _plan_all(
    deployment: Deployment, progress: Progress
) -> list[tuple[Resource, Action, Observed | None, list[str]]]:
    resources = resources_for(deployment)
    for resource in resources:
        progress.checking(resource)
    planned = []
    # Judged in order, after every read: a resource we may not touch stops the run here.
    for resource, observed in zip(resources, read_all(deployment, resources), strict=True):
        action, changes = plan_step(resource, observed)
        planned.append((resource, action, observed, changes))
    return planned


Planned = list[tuple[Resource, Action, Observed | None, list[str]]]


def _preflight(planned: Planned) -> None:
    """Before anything is written: each resource setup would create or update checks
    what AWS would refuse (e.g. AWS's own test of the filter pattern, a rule name in
    the way). Reads only, so the dry run makes them too."""
    for resource, action, _, _ in planned:
        if action in ("create", "update"):
            resource.preflight()


def plan(deployment: Deployment, progress: Progress) -> list[StepResult]:
    """What setup would do, with reads only (for --dry-run). The checks setup makes
    before writing run too (they only read): what setup would refuse, the dry run
    refuses with the same words, and their notices are said."""
    planned = _plan_all(deployment, progress)
    _preflight(planned)
    results = []
    for resource, action, _, changes in planned:
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
    planned = _plan_all(deployment, progress)
    _preflight(planned)
    results: list[StepResult] = []
    with safe_points() as stop:
        for resource, action, observed, changes in planned:
            progress.start(resource)
            if action == "create":
                resource.create()
            elif action == "update":
                assert observed is not None
                resource.update(observed, changes)
            elif action == "remove":
                assert observed is not None
                resource.delete(observed)
            result = StepResult(resource, action, tuple(changes))
            progress.done(result)
            results.append(result)
            _stop_if_requested(stop, "setup", f"the {resource.label}")
    return results


# ---------------------------------------------------------------- status

State = Literal["ok", "missing", "drift", "unmanaged", "unavailable"]
NOT_OURS = "exists but was not created by loginwatch"


@dataclass
class ResourceStatus:
    resource: Resource
    state: State
    details: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        found = {
            "kind": self.resource.kind,
            "name": self.resource.name,
            "region": self.resource.region,
            "arn": self.resource.arn,
            "state": self.state,
            "details": self.details,
        }
        return {**found, **self.facts}


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
        found += [f"{c.name}: {c.detail}" for c in self.checks if _counts(c)]
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
            if _counts(c)
        ]
        return found

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def nothing_set_up(self) -> bool:
        """Not one resource loginwatch manages exists: a first run, before setup, or after
        teardown, which keeps the trail's logs by design (``kept`` names them)."""
        managed = [
            r
            for r in self.resources
            if r.resource.managed and r.state != "unavailable" and not r.resource.keeps_data
        ]
        return bool(managed) and all(r.state == "missing" for r in managed)

    @property
    def kept(self) -> list[ResourceStatus]:
        """When nothing is set up: what an earlier teardown kept (the trail's logs)."""
        if not self.nothing_set_up:
            return []
        return [r for r in self.resources if r.resource.keeps_data and r.state != "missing"]

    def to_json(self) -> dict[str, Any]:
        names = self.deployment.names
        return {
            "healthy": self.healthy,
            "nothing_set_up": self.nothing_set_up,
            "problems": len(self.problems),
            "problems_setup_cannot_repair": len(self.beyond_setup),
            "name": names.name,
            "region": names.region,
            "account": names.account,
            "webhook_compared": self.deployment.config.webhook_url is not None,
            "undelivered": self.undelivered(),
            "resources": [r.to_json() for r in self.resources],
            "checks": [
                {"name": c.name, "ok": c.ok, "weight": check_weight(c), "detail": c.detail}
                for c in self.checks
            ],
            "kept": [
                {
                    "kind": r.resource.kind,
                    "name": r.resource.name,
                    "region": r.resource.region,
                    "why": r.resource.keeps_data,
                }
                for r in self.kept
            ],
        }

    def undelivered(self) -> dict[str, Any]:
        """Alerts Slack has not taken yet: waiting for a retry, or in a dead-letter queue."""
        queued = [r.facts for r in self.resources if "messages" in r.facts]
        dead = [f for f in queued if f["dead_letter"]]
        ages = [f["oldest_age_seconds"] for f in dead if f.get("oldest_age_seconds") is not None]
        return {
            "waiting_for_retry": sum(f["messages"] for f in queued if not f["dead_letter"]),
            "dead_letter": sum(f["messages"] for f in dead),
            "oldest_dead_letter_age_seconds": max(ages) if ages else None,
        }


CheckWeight = Literal["none", "problem", "warning", "repeats-drift"]


def check_weight(check: Check) -> CheckWeight:
    """How a check counts: a passed one not at all; a failed one is a problem of its own
    (``problems``), a warning, or repeats its resource's drift (counted there, once)."""
    if check.ok:
        return "none"
    if check.warning_only:
        return "warning"
    if check.repeats_drift:
        return "repeats-drift"
    return "problem"


def _counts(check: Check) -> bool:
    """A failed check is a problem of its own unless it only warns or repeats a drift."""
    return check_weight(check) == "problem"


def _checks(resource: Resource, observed: Observed) -> list[Check]:
    """The resource's health checks; on an endpoint that lacks a call they make (an
    emulator), one line saying they were not verified, instead of an error."""
    try:
        return resource.checks(observed)
    except EndpointLacksOperation as exc:
        not_verified = f"not verified: {exc.reason}"
        return [Check(f"{resource.label} checks", False, not_verified, warning_only=True)]


def _status_of(resource: Resource, observed: Observed | None) -> ResourceStatus | None:
    """None for something the config does not ask for and that is not there."""
    if observed is _UNAVAILABLE:
        if not resource.wanted:
            return None
        return ResourceStatus(resource, "unavailable", [REGION_NOT_ENABLED])
    if not resource.wanted:
        if observed is None or not resource.owned(observed):
            return None
        return ResourceStatus(resource, "drift", [NOT_WANTED])
    if not resource.managed:
        if observed is None:
            return ResourceStatus(resource, "missing", [f"{resource.name} not found"])
        return ResourceStatus(resource, "unmanaged", [], _checks(resource, observed))
    if observed is None:
        return ResourceStatus(resource, "missing")
    if not resource.owned(observed) and not resource.adoptable(observed):
        return ResourceStatus(resource, "drift", [NOT_OURS])
    changes = resource.diff(observed)
    checks = _checks(resource, observed)
    state: State = "drift" if changes else "ok"
    return ResourceStatus(resource, state, changes, checks, resource.facts(observed))


def status(deployment: Deployment, *, concurrency: int | None = None) -> StatusReport:
    """Read every resource (concurrently: they are independent reads) and judge the chain.

    The judging runs concurrently too: some checks read more (the function's error count).
    """
    concurrency = READ_CONCURRENCY if concurrency is None else concurrency
    resources = resources_for(deployment)
    observed = read_all(deployment, resources, concurrency=concurrency)
    pairs = list(zip(resources, observed, strict=True))
    if concurrency <= 1:
        results = [_status_of(r, o) for r, o in pairs]
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            results = list(pool.map(lambda pair: _status_of(*pair), pairs))
    return StatusReport(deployment, [r for r in results if r is not None])


# ---------------------------------------------------------------- teardown

TeardownAction = Literal["delete", "clean", "keep", "absent"]


@dataclass
class TeardownItem:
    resource: Resource
    action: TeardownAction
    reason: str = ""
    observed: Observed | None = None
    note: str = ""

    @property
    def undelivered(self) -> int:
        """Alerts nobody received that deleting this would drop (a queue's messages)."""
        if self.action != "delete" or self.observed is None:
            return 0
        return self.resource.undelivered(self.observed)


def teardown_plan(
    deployment: Deployment, *, delete_bucket: bool, delete_trail_logs: bool
) -> list[TeardownItem]:
    """What teardown would remove and keep, newest resource first. Reads only."""
    release = {"bucket": delete_bucket, "trail-log-group": delete_trail_logs}
    resources = resources_for(deployment)
    observed = read_all(deployment, resources)
    seen = {r.key: (r, o) for r, o in zip(resources, observed, strict=True)}
    return [
        _teardown_item(r, seen[r.key][1], seen, release.get(r.kind, False))
        for r in reversed(resources)
    ]


def _owner(
    resource: Resource, seen: dict[str, tuple[Resource, Observed | None]]
) -> tuple[Resource, Observed | None] | None:
    """The resource this one lives on: in its own region, else in the home region."""
    if not resource.owner_kind:
        return None
    home = resource.names.region
    return seen.get(f"{resource.owner_kind}@{resource.region}") or seen.get(
        f"{resource.owner_kind}@{home}"
    )


def _teardown_item(
    resource: Resource,
    observed: Observed | None,
    seen: dict[str, tuple[Resource, Observed | None]],
    release_data: bool,
) -> TeardownItem:
    if observed is _UNAVAILABLE:
        return TeardownItem(resource, "absent", REGION_NOT_ENABLED)
    if not resource.managed:
        return TeardownItem(resource, "keep", "reused, not managed by loginwatch", observed)
    if observed is None:
        return TeardownItem(resource, "absent")
    owner_of = _owner(resource, seen)
    if owner_of is not None:
        owner, owner_state = owner_of
        if (
            owner_state is not None
            and owner_state is not _UNAVAILABLE
            and not owner.owned(owner_state)
        ):
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
