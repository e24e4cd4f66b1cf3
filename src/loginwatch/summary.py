"""What `validate` reports about a config: pure data, rendered by ui.py or as JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .allowlist import CompiledPattern, collapse, compile_pattern, is_allowed
from .api_call_patterns import describe
from .config import Config, IPNetwork
from .notifier.api_calls import ApiCall, out_of_scope
from .notifier.events import SignIn
from .notifier.ipmatch import AllowList
from .notifier.routing import DEFAULT_DESTINATION, Destination, Routes
from .notifier.rules import Rule, highest

KEY_RULE = "access_key_outside_allowlist"
# The kinds of successful sign-in `validate --ip` reports on: identity type and MFA.
SAMPLE_SIGN_INS = {
    "IAM user with MFA": ("IAMUser", "Yes"),
    "IAM user without MFA": ("IAMUser", "No"),
    "root": ("Root", "Yes"),
    "SSO / federated": ("AssumedRole", "No"),
}


@dataclass(frozen=True)
class Trigger:
    """What a kind of sign-in from one address would set off."""

    kind: str
    rules: tuple[Rule, ...]
    destinations: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rules": [r.name for r in self.rules],
            "severity": highest(self.rules) if self.rules else None,
            "destinations": list(self.destinations),
        }


@dataclass(frozen=True)
class KeyVerdict:
    """Would an API call signed with this principal's access key, from one address, set
    off access_key_outside_allowlist? The notifier's own decision (api_calls.py)."""

    principal: str  # "an IAM user's key" or an `except` entry's user
    alerts: bool
    reason: str  # why not, or where the alert goes
    destinations: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "principal": self.principal,
            "alerts": self.alerts,
            "reason": self.reason,
            "destinations": list(self.destinations),
        }


@dataclass(frozen=True)
class IpVerdict:
    ip: str
    alerts: bool  # outside the allowlist: any successful sign-in from here alerts
    triggers: tuple[Trigger, ...] = ()
    keys: tuple[KeyVerdict, ...] = ()  # access_key_outside_allowlist on: per principal


@dataclass(frozen=True)
class RuleRoute:
    rule: Rule
    destinations: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {**self.rule.to_dict(), "destinations": list(self.destinations)}


@dataclass(frozen=True)
class ConfigSummary:
    config: Config
    compiled: CompiledPattern
    allowlist: tuple[str, ...]
    ips: tuple[IpVerdict, ...]
    routes: tuple[RuleRoute, ...] = ()
    # access_key_outside_allowlist on: how many EventBridge rules per region it needs.
    key_rules: str = ""

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.config.warnings + self.compiled.notes

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.config.region,
            "name": self.config.name,
            "allowlist": list(self.allowlist),
            "pattern": self.compiled.pattern,
            "pattern_length": self.compiled.length,
            "exact": self.compiled.exact,
            "warnings": list(self.warnings),
            "webhook": self.config.masked_webhook,
            "fast_path": {
                "enabled": self.config.fast_path.enabled,
                "regions": "all"
                if self.config.fast_path.regions is None
                else list(self.config.fast_path.regions),
            },
            "rules": [r.to_json() for r in self.routes],
            "destinations": [
                {"name": d.name, "webhook": d.masked_webhook, "mention": d.mention or None}
                for d in self.config.destinations
            ],
            "default_gets": self.config.default_gets,
            "organization": {
                "enabled": self.config.organization.enabled,
                "accounts": "all"
                if self.config.organization.accounts is None
                else list(self.config.organization.accounts),
                "account_names": self.config.organization.account_names,
            },
            "ips": [
                {
                    "ip": v.ip,
                    "alerts": v.alerts,
                    "triggers": [t.to_json() for t in v.triggers],
                    "access_keys": [k.to_json() for k in v.keys],
                }
                for v in self.ips
            ],
            "access_key_rules": self.key_rules or None,
        }


def summarize(config: Config, ips: tuple[str, ...] = ()) -> ConfigSummary:
    networks = collapse(config.allowed)
    routes = config_routes(config)
    verdicts = tuple(_verdict(config, ip, networks, routes) for ip in ips)
    return ConfigSummary(
        config=config,
        compiled=compile_pattern(networks),
        allowlist=tuple(str(n) for n in networks),
        ips=verdicts,
        routes=tuple(
            RuleRoute(rule, _names(routes.targets((rule.name,), rule.severity)))
            for rule in config.rules.rules
        ),
        key_rules=describe(config.allowed) if config.rules.get(KEY_RULE) else "",
    )


def config_routes(config: Config) -> Routes:
    """The notifier's routing, from the config (the webhooks' parameters do not matter)."""
    extra = tuple(d.routed(d.name) for d in config.destinations)
    return Routes(Destination(DEFAULT_DESTINATION, ""), extra, config.default_gets == "all")


def _names(destinations: tuple[Destination, ...]) -> tuple[str, ...]:
    return tuple(d.name for d in destinations)


def _verdict(config: Config, ip: str, networks: list[IPNetwork], routes: Routes) -> IpVerdict:
    # A successful sign-in alerts exactly when the notifier's exact check says
    # the address is outside the allowlist (the pattern may over-match, never under).
    # Which rules each kind of sign-in sets off is the notifier's own decision (rules.py).
    allowlist = AllowList([str(n) for n in networks])
    triggers = []
    for kind, (identity, mfa) in SAMPLE_SIGN_INS.items():
        matched = config.rules.matches(_sample(ip, identity, mfa), allowlist)
        where = routes.targets([r.name for r in matched], highest(matched)) if matched else ()
        triggers.append(Trigger(kind, matched, _names(where)))
    return IpVerdict(
        ip=ip,
        alerts=not is_allowed(ip, networks),
        triggers=tuple(triggers),
        keys=_key_verdicts(config, ip, allowlist, routes),
    )


def _key_verdicts(
    config: Config, ip: str, allowlist: AllowList, routes: Routes
) -> tuple[KeyVerdict, ...]:
    """For a user's key in general, and for each `except` entry's user."""
    rule = config.rules.get(KEY_RULE)
    if rule is None:
        return ()
    where = _names(routes.targets((rule.name,), rule.severity))
    found = []
    # A name no IAM user can have (a space): never one of the `except` entries.
    principals = [("an IAM user's key", "any user", "")]
    for exception in rule.exceptions:
        arn = exception.principal if exception.principal.startswith("arn:") else ""
        name = arn.rsplit("/", 1)[-1] if arn else exception.principal
        principals.append((exception.principal, name, arn))
    for label, name, arn in principals:
        call = _sample_call(ip, name, arn)
        why = out_of_scope(call, allowlist, rule.exceptions)
        reason = why or f"alerts ({rule.severity}) → {', '.join(where)}"
        found.append(KeyVerdict(label, why is None, reason, where if why is None else ()))
    return tuple(found)


def _sample_call(ip: str, user_name: str, arn: str) -> ApiCall:
    return ApiCall(
        event_id="validate",
        event_time=datetime.now(UTC),
        identity_type="IAMUser",
        user_name=user_name,
        arn=arn or f"arn:aws:iam::000000000000:user/{user_name}",
        access_key_id="AKIAVALIDATEEXAMPLE0",
        source_ip=ip,
        region="",
        event_name="GetCallerIdentity",
        event_source="sts.amazonaws.com",
        user_agent="",
        invoked_by="",
        console_session=False,
        account_id="",
        event_type="AwsApiCall",
        error_code="",
    )


def _sample(ip: str, identity: str, mfa: str) -> SignIn:
    arn = "arn:aws:sts::000000000000:assumed-role/Role/user" if identity == "AssumedRole" else ""
    return SignIn(
        event_id="validate",
        event_time=datetime.now(UTC),
        identity_type=identity,
        user_name="" if identity == "Root" else "user",
        role_name="",
        arn=arn,
        source_ip=ip,
        mfa_used=mfa,
        success=True,
        error_message="",
        region="",
        user_agent="",
        account_id="",
    )
