"""YAML config → frozen, typed ``Config``.

Every problem names the file, the line, the key path and what would be valid,
and all problems are reported at once so a user fixes the file in one pass.
Nothing here does I/O beyond reading the file and the environment.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigError, UsageError
from .notifier.routing import (
    DEFAULT_DESTINATION,
    DESTINATION_NAME_RE,
    MENTIONS,
    USER_GROUP_RE,
    Destination,
)
from .notifier.rules import (
    ANYWHERE,
    DEFAULT_MINUTES,
    DEFAULT_SEVERITY,
    DEFAULT_THRESHOLD,
    KEY_RULE_NAMES,
    ON_BY_DEFAULT,
    RULE_NAMES,
    SEVERITIES,
    TAMPER_RULE,
    KeyException,
    Rule,
    RuleSet,
)
from .notifier.slack_delivery import mask_webhook as notifier_mask
from .yaml_lines import ENV_REF_RE, Located, Problems, Reader, compose, type_name

DEFAULT_CONFIG_FILE = "loginwatch.yaml"
CONFIG_ENV_VAR = "LOGINWATCH_CONFIG"

# CloudWatch Logs PutRetentionPolicy accepts exactly these values.
RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
    2557, 2922, 3288, 3653,
)  # fmt: skip
# PutMetricAlarm: 10, 20, 30 (high resolution) or any multiple of 60.
HIGH_RESOLUTION_PERIODS = (10, 20, 30)
MAX_ALARM_WINDOW_SECONDS = 86_400  # period × evaluation periods may not exceed one day
MAX_ALLOWLIST_ENTRIES = 1000

REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
# name prefixes every resource; the bucket name (63 chars) is the tightest fit.
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{1,22}[a-z0-9]$")
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
TRAIL_NAME_RE = re.compile(
    r"^(arn:aws[a-z-]*:cloudtrail:[a-z0-9-]+:\d{12}:trail/)?[A-Za-z0-9._-]{3,128}$"
)
KMS_KEY_RE = re.compile(
    r"^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[A-Za-z0-9/_-]+"
    r"|alias/[A-Za-z0-9/_-]+|(mrk-)?[0-9a-f]{8}-?[0-9a-f-]{27,}|mrk-[0-9a-f]{32})$"
)
TAG_KEY_RE = re.compile(r"^[\w .:/=+\-@]{1,128}$", re.UNICODE)
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
SLACK_HOST = "hooks.slack.com"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AllowedEntry:
    network: IPNetwork
    label: str | None = None


@dataclass(frozen=True)
class KmsKeys:
    log_group: str | None = None
    topic: str | None = None
    parameter: str | None = None
    bucket: str | None = None


@dataclass(frozen=True)
class IamSettings:
    """How setup makes its IAM roles."""

    # A managed policy's ARN: attached as the permissions boundary of every role setup
    # creates, so an operator allowed to create them (with only this boundary) cannot
    # climb past what loginwatch's roles do. `loginwatch permissions --boundary` prints it.
    permissions_boundary: str | None = None


@dataclass(frozen=True)
class FastPath:
    """EventBridge rules that hear of a sign-in in seconds (the alarm stays the backstop)."""

    enabled: bool = True
    # None: every region enabled for the account (read from it at run time).
    regions: tuple[str, ...] | None = None

    @property
    def describe(self) -> str:
        if not self.enabled:
            return "off (alarm path only, about 5 minutes)"
        where = "every enabled region" if self.regions is None else ", ".join(self.regions)
        return f"on: {where}"


@dataclass(frozen=True)
class SlackDestination:
    """An extra Slack channel: gets the messages its severities and/or rules select."""

    name: str
    # secret, like Config.webhook_url; None when not given (see Config.webhook_url)
    webhook_url: str | None = field(repr=False)
    severities: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    mention: str = ""
    accounts: tuple[str, ...] = ()  # only these accounts' messages (organization mode)

    @property
    def masked_webhook(self) -> str:
        return mask_webhook(self.webhook_url)

    def routed(self, parameter: str) -> Destination:
        """The notifier's view of it: where its webhook is stored, and what it selects."""
        return Destination(
            self.name, parameter, self.severities, self.rules, self.mention, self.accounts
        )


@dataclass(frozen=True)
class Organization:
    """One setup for a whole AWS Organization: an organization trail, and the fast
    path's forwarding rules in every member account by a service-managed StackSet."""

    enabled: bool = False
    # None: every account ("all"); else OU ids (ou-…, r-…) and/or account ids.
    accounts: tuple[str, ...] | None = None
    account_names: bool = True

    @property
    def units(self) -> tuple[str, ...]:
        return tuple(a for a in self.accounts or () if not ACCOUNT_ID_RE.match(a))

    @property
    def account_ids(self) -> tuple[str, ...]:
        return tuple(a for a in self.accounts or () if ACCOUNT_ID_RE.match(a))


@dataclass(frozen=True)
class SelfCheck:
    """The notifier checks the chain on a schedule; a second voice (email) when it cannot."""

    enabled: bool = True
    schedule: str = "rate(1 hour)"
    # The second voice: AWS mails it when the checks stop or the notifier fails. None: no
    # second voice (status warns).
    email: str | None = None
    # A dead-man's-switch URL pinged after each healthy check. Secret, like the webhook:
    # stored in SSM, never printed. None with heartbeat True: its variable is not set.
    heartbeat_url: str | None = field(default=None, repr=False)
    heartbeat: bool = False
    weekly_summary: bool = True

    @property
    def interval_seconds(self) -> int:
        """The schedule's interval (a validated ``rate(...)``)."""
        return schedule_interval(self.schedule) or 3600


ACCOUNT_ID_RE = re.compile(r"^\d{12}$")
OU_ID_RE = re.compile(r"^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$")
MAX_DESTINATIONS = 10
MAX_FAILURE_THRESHOLD = 50  # a failure window remembers 100 failures (claims.BURST_CAP)
MAX_FAILURE_MINUTES = 60


@dataclass(frozen=True)
class Config:
    path: str
    region: str
    name: str
    allowed: tuple[AllowedEntry, ...]
    # Secret: never printed, see mask_webhook(). None when the command does not write it
    # (status, teardown, …) and the environment variable it names is not set.
    webhook_url: str | None = field(repr=False)
    existing_trail: str | None = None
    bucket: str | None = None
    retention_days: int = 365
    notifier_retention_days: int = 365
    alarm_period_seconds: int = 60
    alarm_evaluation_periods: int = 1
    lookback_minutes: int = 10
    kms: KmsKeys = KmsKeys()
    tags: Mapping[str, str] = field(default_factory=dict)
    fast_path: FastPath = FastPath()
    # The enabled rules (only outside_allowlist unless the config says otherwise).
    rules: RuleSet = field(default_factory=RuleSet.default)
    destinations: tuple[SlackDestination, ...] = ()
    default_gets: str = "unclaimed"  # or "all"
    organization: Organization = Organization()
    iam: IamSettings = IamSettings()
    self_check: SelfCheck = SelfCheck()
    warnings: tuple[str, ...] = ()

    @property
    def masked_webhook(self) -> str:
        return mask_webhook(self.webhook_url)

    @property
    def reuses_trail(self) -> bool:
        return self.existing_trail is not None


NOT_GIVEN = "not given (its environment variable is not set)"


def mask_webhook(url: str | None) -> str:
    """Scheme, host and the last 4 characters: enough to tell webhooks apart."""
    if url is None:
        return NOT_GIVEN
    try:
        scheme = urlsplit(url).scheme
        return f"{scheme}://{notifier_mask(url)}" if len(url) > 12 else "…"
    except ValueError:  # e.g. a broken IPv6 host: say nothing about it
        return "…"


TOP_KEYS = (
    "region", "name", "allowed_ips", "slack", "trail", "log_group", "alarm", "notifier",
    "kms", "tags", "fast_path", "rules", "organization", "iam", "self_check",
)  # fmt: skip


def load_config(
    path: str | Path, env: Mapping[str, str] | None = None, *, need_webhook: bool = True
) -> Config:
    """Read and validate the config file; raise ConfigError listing every problem.

    need_webhook=False (commands that never write the webhook: status, teardown, …):
    a webhook whose environment variable is not set is not a problem; it is None."""
    path_str = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [
                f"{path_str}: config file not found — copy config.example.yaml to "
                f"{DEFAULT_CONFIG_FILE}, or pass --config PATH"
            ],
            path_str,
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path_str}: cannot read the config file: {exc}"], path_str) from None
    env = os.environ if env is None else env
    return parse_config(text, path_str, env, need_webhook=need_webhook)


def parse_config(
    text: str, path: str, env: Mapping[str, str], *, need_webhook: bool = True
) -> Config:
    problems = Problems(path)
    root = compose(text, path)
    if root.value is None:
        raise ConfigError([f"{path}: the config is empty — start from config.example.yaml"], path)
    reader = Reader(root, problems, env)
    if not isinstance(root.value, dict):
        raise ConfigError(
            [
                f"{path}:{root.line}: the config must be a mapping of keys, got {type_name(root.value)}"
            ],
            path,
        )
    top = reader.mapping(root, "", TOP_KEYS)
    warnings: list[str] = []

    region = _region(reader, top, warnings)
    name = _name(reader, top)
    allowed = _allowlist(reader, top, warnings)
    webhook, destinations, default_gets = _slack(reader, top, warnings, need_webhook)
    existing, bucket = _trail(reader, top)
    retention = _retention(reader, top)
    period, evaluations = _alarm(reader, top)
    lookback, notifier_retention = _notifier(reader, top)
    kms = _kms(reader, top)
    tags = _tags(reader, top)
    fast_path = _fast_path(reader, top, warnings)
    rules = _rules(reader, top)
    _check_routes(rules, destinations, warnings)
    _check_key_rules_reach(rules, fast_path, region, warnings)
    organization = _organization(reader, top)
    _check_tamper_scope(rules, organization, fast_path, warnings)
    iam = _iam(reader, top)
    self_check = _self_check(reader, top, warnings, need_webhook)
    if not organization.enabled and any(d.accounts for d in destinations):
        warnings.append(
            "slack.destinations: `accounts` selects member accounts' sign-ins, which arrive "
            "only with organization.enabled: true"
        )

    if problems.items:
        raise ConfigError(problems.items, path)
    assert region and name  # guaranteed when no problems were recorded
    return Config(
        path=path,
        region=region,
        name=name,
        allowed=tuple(allowed),
        webhook_url=webhook,
        existing_trail=existing,
        bucket=bucket,
        retention_days=retention,
        notifier_retention_days=notifier_retention,
        alarm_period_seconds=period,
        alarm_evaluation_periods=evaluations,
        lookback_minutes=lookback,
        kms=kms,
        tags=tags,
        fast_path=fast_path,
        rules=rules,
        destinations=tuple(destinations),
        default_gets=default_gets,
        organization=organization,
        iam=iam,
        self_check=self_check,
        warnings=tuple(warnings),
    )


def _region(reader: Reader, top: dict[str, Located], warnings: list[str]) -> str | None:
    region, line = reader.text(top, "region", "region", required=True)
    if region is None:
        return None
    return _check_region(reader, region, line, "region", warnings)


def _check_region(
    reader: Reader, region: str, line: int | None, path: str, warnings: list[str]
) -> str | None:
    if not REGION_RE.match(region):
        close = difflib.get_close_matches(region, known_regions(), n=1, cutoff=0.6)
        hint = f" — did you mean '{close[0]}'?" if close else " (for example us-east-1, eu-west-1)"
        reader.problems.add(line, path, f"'{region}' is not an AWS region name{hint}")
        return None
    known = known_regions()
    if region not in known:
        close = difflib.get_close_matches(region, known, n=1, cutoff=0.8)
        if close:  # a typo of a real region is far likelier than a region newer than botocore
            reader.problems.add(
                line, path, f"'{region}' is not an AWS region — did you mean '{close[0]}'?"
            )
            return None
        warnings.append(
            f"{path}: region '{region}' is not known to this botocore; check the spelling"
        )
    return region


def check_region_option(region: str, option: str = "--region") -> tuple[str, ...]:
    """The --region flag, checked as the config's region is (before any AWS call);
    returns the warnings (a region unknown to this botocore); raises ConfigError."""
    problems = Problems(option)
    warnings: list[str] = []
    _check_region(Reader(Located(None, 0), problems, {}), region, None, "", warnings)
    if problems.items:
        raise UsageError(problems.items[0])
    return tuple(f"{option}{warning}" for warning in warnings)


def _fast_path(reader: Reader, top: dict[str, Located], warnings: list[str]) -> FastPath:
    node = top.get("fast_path", Located(None, 0))
    fields = reader.mapping(node, "fast_path", ("enabled", "regions"))
    enabled_node = fields.get("enabled")
    enabled = True
    if enabled_node is not None and enabled_node.value is not None:
        if not isinstance(enabled_node.value, bool):
            reader.problems.add(
                enabled_node.line,
                "fast_path.enabled",
                f"expected true or false, got {type_name(enabled_node.value)}",
            )
        else:
            enabled = enabled_node.value
    regions_node = fields.get("regions")
    if regions_node is None or regions_node.value is None or regions_node.value == "all":
        return FastPath(enabled=enabled)
    if not isinstance(regions_node.value, list) or not regions_node.value:
        reader.problems.add(
            regions_node.line,
            "fast_path.regions",
            "expected `all` or a list of region names (e.g. [us-east-1, eu-west-1])",
        )
        return FastPath(enabled=enabled)
    regions: list[str] = []
    for index, item in enumerate(regions_node.value):
        path = f"fast_path.regions[{index}]"
        if not isinstance(item.value, str):
            reader.problems.add(
                item.line, path, f"expected a region name, got {type_name(item.value)}"
            )
            continue
        region = _check_region(reader, item.value, item.line, path, warnings)
        if region is not None and region not in regions:
            regions.append(region)
    return FastPath(enabled=enabled, regions=tuple(regions))


@functools.lru_cache(maxsize=1)
def known_regions() -> tuple[str, ...]:
    """The regions of every partition where CloudTrail has an endpoint, as botocore's
    Session.get_available_regions("cloudtrail") lists them, read from botocore's
    endpoints.json without importing botocore (its session costs ~0.3 s of start-up)."""
    import importlib.util
    import json

    spec = importlib.util.find_spec("botocore")
    data = Path(spec.origin).parent / "data" / "endpoints.json" if spec and spec.origin else None
    if data is None or not data.is_file():  # a botocore laid out otherwise
        import botocore.session

        session = botocore.session.get_session()
        found: set[str] = set()
        for partition in session.get_available_partitions():
            found.update(session.get_available_regions("cloudtrail", partition_name=partition))
        return tuple(sorted(found))
    regions: set[str] = set()
    for partition in json.loads(data.read_text())["partitions"]:
        endpoints = partition["services"].get("cloudtrail", {}).get("endpoints", {})
        regions.update(name for name in endpoints if name in partition["regions"])
    return tuple(sorted(regions))


def _name(reader: Reader, top: dict[str, Located]) -> str | None:
    node = top.get("name")
    if node is None:
        return "loginwatch"
    name, line = reader.text(top, "name", "name", required=True)
    if name is None:
        return None
    if not NAME_RE.match(name) or "--" in name:
        reader.problems.add(
            line,
            "name",
            f"'{name}' is not valid: use 3-24 lowercase letters, digits and single hyphens, "
            "starting with a letter (it prefixes S3 bucket and other resource names)",
        )
        return None
    return name


def _allowlist(reader: Reader, top: dict[str, Located], warnings: list[str]) -> list[AllowedEntry]:
    node = top.get("allowed_ips")
    problems = reader.problems
    if node is None or node.value is None:
        problems.add(
            node.line if node else None,
            "allowed_ips",
            "is required: list the IPs/CIDRs your team signs in from (e.g. - 203.0.113.10)",
        )
        return []
    if not isinstance(node.value, list):
        problems.add(node.line, "allowed_ips", f"expected a list, got {type_name(node.value)}")
        return []
    if not node.value:
        problems.add(
            node.line,
            "allowed_ips",
            "is empty: with no allowed IPs every console sign-in would alert; list at least one",
        )
        return []
    if len(node.value) > MAX_ALLOWLIST_ENTRIES:
        problems.add(
            node.line,
            "allowed_ips",
            f"has {len(node.value)} entries; at most {MAX_ALLOWLIST_ENTRIES} are supported",
        )
        return []
    entries: list[AllowedEntry] = []
    for index, item in enumerate(node.value):
        path = f"allowed_ips[{index}]"
        label: str | None = None
        line: int | None = item.line
        if isinstance(item.value, dict):
            fields = reader.mapping(item, path, ("cidr", "label"))
            path = f"{path}.cidr"
            raw, line = reader.text(fields, "cidr", path, required=True)
            label, _ = reader.text(fields, "label", f"allowed_ips[{index}].label")
        elif isinstance(item.value, str):
            raw = reader.interpolate(item.value, item.line, path)
        else:
            problems.add(
                item.line,
                path,
                f"expected an IP/CIDR or {{cidr: ..., label: ...}}, got {type_name(item.value)}",
            )
            continue
        if raw is None:
            continue
        network = _parse_network(raw.strip(), line, path, problems)
        if network is None:
            continue
        if network.prefixlen == 0:
            warnings.append(
                f"{path}: {network} allows every IPv{network.version} address; "
                f"only IPv{6 if network.version == 4 else 4} sign-ins can alert"
            )
        entries.append(AllowedEntry(network=network, label=label))
    return entries


def _parse_network(raw: str, line: int | None, path: str, problems: Problems) -> IPNetwork | None:
    if "%" in raw:  # CloudTrail never reports a zone index such as fe80::1%eth0
        problems.add(line, path, f"'{raw}' has an IPv6 zone index (%...); remove it")
        return None
    try:
        return ipaddress.ip_network(raw, strict=True)
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(raw, strict=False)
    except ValueError:
        problems.add(
            line, path, f"'{raw}' is not an IP address or CIDR (e.g. 203.0.113.10, 2001:db8::/48)"
        )
        return None
    problems.add(line, path, f"'{raw}' has host bits set — did you mean {loose}?")
    return None


SLACK_KEYS = ("webhook_url", "destinations", "default_gets")
DESTINATION_KEYS = ("name", "webhook_url", "severities", "rules", "mention", "accounts")


def _webhook(
    reader: Reader,
    fields: dict[str, Located],
    path: str,
    warnings: list[str],
    need_webhook: bool,
) -> tuple[str | None, bool]:
    """The webhook and whether it was read; (None, True): not needed and its environment
    variable is not set, so the command goes on without it."""
    node = fields.get("webhook_url")
    if (
        not need_webhook
        and node is not None
        and isinstance(node.value, str)
        and any(name not in reader.env for name in ENV_REF_RE.findall(node.value))
    ):
        return None, True
    before = len(reader.problems.items)
    url, line = reader.text(fields, "webhook_url", path, required=True)
    if len(reader.problems.items) > before:  # one cause, one line (an unset variable)
        return None, False
    return _check_webhook(reader, url, line, path, warnings), url is not None


def _slack(
    reader: Reader, top: dict[str, Located], warnings: list[str], need_webhook: bool = True
) -> tuple[str | None, list[SlackDestination], str]:
    slack = reader.mapping(top.get("slack", Located(None, 0)), "slack", SLACK_KEYS)
    if "slack" not in top:
        reader.problems.add(None, "slack.webhook_url", "is required (a Slack incoming webhook URL)")
        return None, [], "unclaimed"
    webhook, _ = _webhook(reader, slack, "slack.webhook_url", warnings, need_webhook)
    gets, gline = reader.text(slack, "default_gets", "slack.default_gets")
    if gets is not None and gets not in ("all", "unclaimed"):
        reader.problems.add(
            gline,
            "slack.default_gets",
            f"'{gets}' is not valid: use `all` (the default channel gets every message) or "
            "`unclaimed` (only what no destination selects; the default)",
        )
    destinations = _destinations(reader, slack, warnings, need_webhook)
    return webhook, destinations, gets or "unclaimed"


def _destinations(
    reader: Reader, slack: dict[str, Located], warnings: list[str], need_webhook: bool
) -> list[SlackDestination]:
    node = slack.get("destinations")
    if node is None or node.value is None:
        return []
    if not isinstance(node.value, list):
        reader.problems.add(
            node.line, "slack.destinations", f"expected a list, got {type_name(node.value)}"
        )
        return []
    if len(node.value) > MAX_DESTINATIONS:
        reader.problems.add(
            node.line, "slack.destinations", f"at most {MAX_DESTINATIONS} destinations"
        )
        return []
    found: list[SlackDestination] = []
    seen: set[str] = set()
    for index, item in enumerate(node.value):
        path = f"slack.destinations[{index}]"
        fields = reader.mapping(item, path, DESTINATION_KEYS)
        if not isinstance(item.value, dict):
            continue
        name, nline = reader.text(fields, "name", f"{path}.name", required=True)
        if name is not None:
            if not DESTINATION_NAME_RE.match(name) or name == DEFAULT_DESTINATION:
                reader.problems.add(
                    nline,
                    f"{path}.name",
                    f"'{name}' is not valid: 1-31 lowercase letters, digits and hyphens "
                    f"(not '{DEFAULT_DESTINATION}': that is slack.webhook_url)",
                )
                name = None
            elif name in seen:
                reader.problems.add(nline, f"{path}.name", f"'{name}' is used twice")
                name = None
            else:
                seen.add(name)
        url, read = _webhook(reader, fields, f"{path}.webhook_url", warnings, need_webhook)
        severities = _choices(reader, fields, "severities", path, SEVERITIES)
        rules = _choices(reader, fields, "rules", path, RULE_NAMES)
        accounts = _account_ids(reader, fields.get("accounts"), f"{path}.accounts")
        if not ({"severities", "rules", "accounts"} & fields.keys()):
            reader.problems.add(
                item.line,
                path,
                "selects nothing: give `severities` (e.g. [critical]), `rules` "
                "(e.g. [root_sign_in]) and/or `accounts` (e.g. ['111122223333'])",
            )
        mention, mline = reader.text(fields, "mention", f"{path}.mention")
        if mention is not None and mention not in MENTIONS and not USER_GROUP_RE.match(mention):
            reader.problems.add(
                mline,
                f"{path}.mention",
                f"'{mention}' is not valid: use here, channel or a Slack user group id "
                "(S followed by letters and digits, e.g. S0123ABCD)",
            )
            mention = None
        if name is not None and read:
            found.append(SlackDestination(name, url, severities, rules, mention or "", accounts))
    return found


def _choices(
    reader: Reader,
    fields: dict[str, Located],
    key: str,
    path: str,
    allowed: tuple[str, ...],
) -> tuple[str, ...]:
    node = fields.get(key)
    if node is None or node.value is None:
        return ()
    items = node.value if isinstance(node.value, list) else [node]
    chosen: list[str] = []
    for item in items:
        value = item.value
        if not isinstance(value, str) or value not in allowed:
            close = difflib.get_close_matches(str(value), allowed, n=1, cutoff=0.6)
            hint = f" — did you mean '{close[0]}'?" if close else ""
            reader.problems.add(
                item.line,
                f"{path}.{key}",
                f"'{value}' is not one of {', '.join(allowed)}{hint}",
            )
        elif value not in chosen:
            chosen.append(value)
    return tuple(chosen)


def _check_webhook(
    reader: Reader, url: str | None, line: int | None, path: str, warnings: list[str]
) -> str | None:
    if url is None:
        return None
    if not url.strip():
        reader.problems.add(line, path, "is empty (is the environment variable set?)")
        return None
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        _ = parts.port  # raises for a port that is not a number in 0-65535
    except ValueError:
        reader.problems.add(line, path, "is not a valid URL")
        return None
    # Never echo the URL itself: it is the secret. Name the host only.
    if parts.scheme == "https" and host:
        if host != SLACK_HOST:
            warnings.append(
                f"{path}: host is {host}, not {SLACK_HOST}; make sure it is a Slack "
                "incoming webhook"
            )
        return url
    if parts.scheme == "http" and (host in LOOPBACK_HOSTS or host.startswith("127.")):
        return url
    reader.problems.add(
        line,
        path,
        "must be an https:// URL (https://hooks.slack.com/services/...); "
        "plain http:// is accepted only for a loopback host in local tests",
    )
    return None


def _account_ids(reader: Reader, node: Located | None, path: str) -> tuple[str, ...]:
    if node is None or node.value is None:
        return ()
    if not isinstance(node.value, list):
        reader.problems.add(node.line, path, "expected a list of 12-digit account ids")
        return ()
    found: list[str] = []
    for item in node.value:
        value = str(item.value) if isinstance(item.value, (str, int)) else None
        if value is None or not ACCOUNT_ID_RE.match(value):
            reader.problems.add(
                item.line,
                path,
                f"{item.value!r} is not an AWS account id (12 digits; quote it so a leading "
                "zero is kept)",
            )
        elif value not in found:
            found.append(value)
    return tuple(found)


ORGANIZATION_KEYS = ("enabled", "accounts", "account_names")


def _organization(reader: Reader, top: dict[str, Located]) -> Organization:
    node = top.get("organization", Located(None, 0))
    fields = reader.mapping(node, "organization", ORGANIZATION_KEYS)
    flags = {}
    for key, default in (("enabled", False), ("account_names", True)):
        flag = fields.get(key)
        flags[key] = default
        if flag is not None and flag.value is not None:
            if isinstance(flag.value, bool):
                flags[key] = flag.value
            else:
                reader.problems.add(
                    flag.line,
                    f"organization.{key}",
                    f"expected true or false, got {type_name(flag.value)}",
                )
    listed = fields.get("accounts")
    if listed is None or listed.value is None or listed.value == "all":
        return Organization(flags["enabled"], None, flags["account_names"])
    if not isinstance(listed.value, list) or not listed.value:
        reader.problems.add(
            listed.line,
            "organization.accounts",
            "expected `all` or a list of OU ids (ou-…, r-…) and/or 12-digit account ids",
        )
        return Organization(flags["enabled"], None, flags["account_names"])
    targets: list[str] = []
    for item in listed.value:
        value = str(item.value) if isinstance(item.value, (str, int)) else ""
        if not (ACCOUNT_ID_RE.match(value) or OU_ID_RE.match(value)):
            reader.problems.add(
                item.line,
                "organization.accounts",
                f"{item.value!r} is neither an OU id (ou-abcd-12345678, or the root r-abcd) "
                "nor a 12-digit account id",
            )
        elif value not in targets:
            targets.append(value)
    return Organization(flags["enabled"], tuple(targets), flags["account_names"])


RULE_KEYS = ("enabled", "severity")
FAILED_RULE_KEYS = (*RULE_KEYS, "threshold", "minutes")
KEY_RULE_KEYS = (*RULE_KEYS, "except")
EXCEPT_KEYS = ("user", "from")
RULE_KEYS_BY_NAME = {
    "failed_sign_ins": FAILED_RULE_KEYS,
    "access_key_outside_allowlist": KEY_RULE_KEYS,
}
# An IAM user's name, or its ARN (any partition; a path is allowed).
IAM_USER_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
IAM_USER_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:user/([\w+=,.@/-]{1,512})$")


def _rules(reader: Reader, top: dict[str, Located]) -> RuleSet:
    node = top.get("rules", Located(None, 0))
    listed = reader.mapping(node, "rules", RULE_NAMES)
    enabled: list[Rule] = []
    for name in RULE_NAMES:
        path = f"rules.{name}"
        entry = listed.get(name)
        # Listing a rule turns it on; outside_allowlist (today's behaviour) and tamper
        # (nobody switches loginwatch off unseen) are on unless off.
        on = entry is not None or name in ON_BY_DEFAULT
        keys = RULE_KEYS_BY_NAME.get(name, RULE_KEYS)
        fields: dict[str, Located] = {}
        if entry is not None and isinstance(entry.value, bool):
            on = entry.value  # `root_sign_in: true` as short for {enabled: true}
        elif entry is not None:
            if entry.value is not None and not isinstance(entry.value, dict):
                reader.problems.add(
                    entry.line,
                    path,
                    f"expected true/false or a mapping such as {{enabled: true, severity: "
                    f"{DEFAULT_SEVERITY[name]}}}, got {type_name(entry.value)}",
                )
                continue
            fields = reader.mapping(entry, path, keys)
        flag = fields.get("enabled")
        if flag is not None and flag.value is not None:
            if isinstance(flag.value, bool):
                on = flag.value
            else:
                reader.problems.add(
                    flag.line,
                    f"{path}.enabled",
                    f"expected true or false, got {type_name(flag.value)}",
                )
        severity, sline = reader.text(fields, "severity", f"{path}.severity")
        if severity is None:
            severity = DEFAULT_SEVERITY[name]
        elif severity not in SEVERITIES:
            reader.problems.add(
                sline, f"{path}.severity", f"'{severity}' is not one of {', '.join(SEVERITIES)}"
            )
            severity = DEFAULT_SEVERITY[name]
        threshold = minutes = 0
        if name == "failed_sign_ins":
            threshold, tline = reader.integer(
                fields, "threshold", f"{path}.threshold", DEFAULT_THRESHOLD
            )
            if not 1 <= threshold <= MAX_FAILURE_THRESHOLD:
                reader.problems.add(
                    tline,
                    f"{path}.threshold",
                    f"{threshold} is out of range (1-{MAX_FAILURE_THRESHOLD})",
                )
            minutes, mline = reader.integer(fields, "minutes", f"{path}.minutes", DEFAULT_MINUTES)
            if not 1 <= minutes <= MAX_FAILURE_MINUTES:
                reader.problems.add(
                    mline, f"{path}.minutes", f"{minutes} is out of range (1-{MAX_FAILURE_MINUTES})"
                )
        exceptions: tuple[KeyException, ...] = ()
        if "except" in fields:
            exceptions = _key_exceptions(reader, fields["except"], f"{path}.except")
        if on:
            enabled.append(Rule(name, severity, threshold, minutes, exceptions))
    if not enabled and node.value is not None:
        reader.problems.add(
            node.line, "rules", "every rule is turned off: nothing would ever alert; enable one"
        )
    return RuleSet(tuple(enabled))


def _key_exceptions(reader: Reader, node: Located, path: str) -> tuple[KeyException, ...]:
    """`except: [{user: ci-deployer, from: [192.0.2.0/24]}]` — or `from: anywhere`."""
    problems = reader.problems
    if node.value is None:
        return ()
    if not isinstance(node.value, list):
        problems.add(
            node.line, path, f"expected a list of {{user, from}}, got {type_name(node.value)}"
        )
        return ()
    found: list[KeyException] = []
    for index, item in enumerate(node.value):
        where = f"{path}[{index}]"
        if not isinstance(item.value, dict):
            problems.add(
                item.line,
                where,
                f"expected {{user: NAME, from: [CIDR, ...]}}, got {type_name(item.value)}",
            )
            continue
        fields = reader.mapping(item, where, EXCEPT_KEYS)
        user, uline = reader.text(fields, "user", f"{where}.user", required=True)
        if user is not None and not (IAM_USER_NAME_RE.match(user) or IAM_USER_ARN_RE.match(user)):
            problems.add(
                uline,
                f"{where}.user",
                f"'{user}' is not an IAM user name or an IAM user's ARN "
                "(arn:aws:iam::123456789012:user/NAME); roles' sessions are never in scope",
            )
            user = None
        origin = fields.get("from")
        if origin is None or origin.value is None:
            problems.add(
                origin.line if origin else item.line,
                f"{where}.from",
                f"is required: the CIDRs its keys may be used from, or {ANYWHERE}",
            )
            continue
        if origin.value == ANYWHERE:
            if user is not None:
                found.append(KeyException(user, (), anywhere=True))
            continue
        if not isinstance(origin.value, list) or not origin.value:
            problems.add(
                origin.line,
                f"{where}.from",
                f"expected a list of CIDRs or '{ANYWHERE}', got {type_name(origin.value)}",
            )
            continue
        networks: list[str] = []
        for n, entry in enumerate(origin.value):
            if not isinstance(entry.value, str):
                problems.add(
                    entry.line,
                    f"{where}.from[{n}]",
                    f"expected an IP/CIDR, got {type_name(entry.value)}",
                )
                continue
            raw = reader.interpolate(entry.value, entry.line, f"{where}.from[{n}]")
            network = _parse_network(raw.strip(), entry.line, f"{where}.from[{n}]", problems)
            if network is not None:
                networks.append(str(network))
        if user is not None and networks:
            found.append(KeyException(user, tuple(networks)))
    return tuple(found)


def _check_tamper_scope(
    rules: RuleSet, organization: Organization, fast_path: FastPath, warnings: list[str]
) -> None:
    """In organization mode the member accounts watch their own loginwatch resources
    through the fast path's StackSet: without it, only the alarm backstop (the
    organization trail's log group) hears of a change there."""
    if organization.enabled and not fast_path.enabled and rules.get(TAMPER_RULE) is not None:
        warnings.append(
            "rules.tamper: the fast path is off, so member accounts get no tamper rules; "
            "only the alarm backstop hears of changes to their forwarding"
        )


def _check_key_rules_reach(
    rules: RuleSet, fast_path: FastPath, region: str | None, warnings: list[str]
) -> None:
    """The access-key rules hear through the fast path: say what a config leaves unheard."""
    on = [r.name for r in rules.rules if r.name in KEY_RULE_NAMES]
    if on and not fast_path.enabled:
        never = (
            " (AWS Health's exposure reports reach no alarm: they are never heard)"
            if "credentials_exposed" in on
            else ""
        )
        warnings.append(
            f"rules {', '.join(on)}: the fast path is off, so only the alarm backstop hears "
            f"them{never}"
        )
        return
    listed = fast_path.regions
    if (
        "access_key_outside_allowlist" in on
        and listed is not None
        and "us-east-1" not in {*listed, region}
    ):
        warnings.append(
            "rules.access_key_outside_allowlist: fast_path.regions lacks us-east-1, where "
            "IAM and Organizations calls (CreateUser, CreateAccessKey…) arrive; only the "
            "alarm backstop hears those"
        )


def _check_routes(
    rules: RuleSet, destinations: list[SlackDestination], warnings: list[str]
) -> None:
    """A destination that can never receive anything is a mistake worth a word."""
    live = {r.name for r in rules.rules}
    severities = {r.severity for r in rules.rules}
    for destination in destinations:
        off = [r for r in destination.rules if r not in live]
        if off:
            warnings.append(
                f"slack.destinations '{destination.name}': rule(s) {', '.join(off)} are off"
            )
        selects_by_account = (
            destination.accounts and not destination.rules and not destination.severities
        )
        if selects_by_account:
            continue  # every message of those accounts
        if not (set(destination.rules) & live) and not (set(destination.severities) & severities):
            warnings.append(
                f"slack.destinations '{destination.name}': no enabled rule has the severities "
                "or names it selects, so it receives nothing"
            )


def _trail(reader: Reader, top: dict[str, Located]) -> tuple[str | None, str | None]:
    trail = reader.mapping(top.get("trail", Located(None, 0)), "trail", ("existing", "bucket"))
    existing, line = reader.text(trail, "existing", "trail.existing")
    if existing is not None and not TRAIL_NAME_RE.match(existing):
        reader.problems.add(line, "trail.existing", f"'{existing}' is not a trail name or ARN")
    bucket, bline = reader.text(trail, "bucket", "trail.bucket")
    if bucket is not None and (not BUCKET_RE.match(bucket) or ".." in bucket):
        reader.problems.add(bline, "trail.bucket", f"'{bucket}' is not a valid S3 bucket name")
    if existing is not None and bucket is not None:
        reader.problems.add(
            bline,
            "trail.bucket",
            "cannot be combined with trail.existing: a reused trail keeps its own bucket",
        )
    return existing, bucket


def _check_retention(reader: Reader, value: int, line: int | None, path: str) -> None:
    if value not in RETENTION_DAYS:
        above = [d for d in RETENTION_DAYS if d >= value]
        hint = f" — the nearest is {above[0]}" if above else ""
        reader.problems.add(
            line,
            path,
            f"{value} is not a retention CloudWatch Logs accepts{hint} "
            f"(valid: {', '.join(map(str, RETENTION_DAYS))})",
        )


def _retention(reader: Reader, top: dict[str, Located]) -> int:
    group = reader.mapping(top.get("log_group", Located(None, 0)), "log_group", ("retention_days",))
    retention, line = reader.integer(group, "retention_days", "log_group.retention_days", 365)
    _check_retention(reader, retention, line, "log_group.retention_days")
    return retention


def _notifier(reader: Reader, top: dict[str, Located]) -> tuple[int, int]:
    keys = ("lookback_minutes", "log_retention_days")
    notifier = reader.mapping(top.get("notifier", Located(None, 0)), "notifier", keys)
    lookback, line = reader.integer(notifier, "lookback_minutes", "notifier.lookback_minutes", 10)
    if not 0 <= lookback <= 120:
        reader.problems.add(
            line, "notifier.lookback_minutes", f"{lookback} is out of range (0-120)"
        )
    # 365: Prowler fails log groups kept for less (cloudwatch_log_group_retention_policy_specific_days_enabled).
    days, dline = reader.integer(notifier, "log_retention_days", "notifier.log_retention_days", 365)
    _check_retention(reader, days, dline, "notifier.log_retention_days")
    return lookback, days


def _alarm(reader: Reader, top: dict[str, Located]) -> tuple[int, int]:
    alarm = reader.mapping(
        top.get("alarm", Located(None, 0)), "alarm", ("period_seconds", "evaluation_periods")
    )
    period, line = reader.integer(alarm, "period_seconds", "alarm.period_seconds", 60)
    if period not in HIGH_RESOLUTION_PERIODS and (period <= 0 or period % 60):
        reader.problems.add(
            line,
            "alarm.period_seconds",
            f"{period} is not an alarm period CloudWatch accepts: use 10, 20, 30 or a multiple of 60",
        )
    evaluations, eline = reader.integer(alarm, "evaluation_periods", "alarm.evaluation_periods", 1)
    if evaluations < 1:
        reader.problems.add(eline, "alarm.evaluation_periods", "must be at least 1")
    elif period > 0 and period * evaluations > MAX_ALARM_WINDOW_SECONDS:
        reader.problems.add(
            eline,
            "alarm.evaluation_periods",
            f"period × evaluation periods is {period * evaluations} s; CloudWatch allows at most "
            f"{MAX_ALARM_WINDOW_SECONDS} s (one day)",
        )
    return period, evaluations


KMS_KEYS = ("log_group", "topic", "parameter", "bucket")
KEY_ARN_RE = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
# Where the key must be given as its ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), and why.
KEY_ARN_ONLY = {
    "log_group": "must be a key ARN: CloudWatch Logs accepts only the key ARN",
    "bucket": "must be a key ARN: S3 and CloudTrail report the key ARN, so loginwatch "
    "compares with it (an alias or id would look changed on every run)",
    "parameter": "must be a key ARN: the notifier's role is granted kms:Decrypt on the key, "
    "and IAM cannot grant by alias",
}


def _kms(reader: Reader, top: dict[str, Located]) -> KmsKeys:
    kms = reader.mapping(top.get("kms", Located(None, 0)), "kms", KMS_KEYS)
    values: dict[str, str | None] = {}
    for key in KMS_KEYS:
        value, line = reader.text(kms, key, f"kms.{key}")
        if value is not None and not KMS_KEY_RE.match(value):
            reader.problems.add(
                line,
                f"kms.{key}",
                f"'{value}' is not a KMS key id, key ARN, alias ARN or alias/NAME",
            )
            value = None
        if key in KEY_ARN_ONLY and value is not None and not KEY_ARN_RE.match(value):
            reader.problems.add(line, f"kms.{key}", f"'{value}' {KEY_ARN_ONLY[key]}")
            value = None
        if key == "topic" and value is not None and re.search(r"alias/aws/", value):
            reader.problems.add(
                line,
                "kms.topic",
                f"{value} is an AWS-managed key: CloudWatch cannot use it, so alarm "
                "notifications would be silently dropped. Use a customer-managed key whose "
                "policy allows cloudwatch.amazonaws.com, or leave kms.topic unset",
            )
            value = None
        values[key] = value
    return KmsKeys(**values)


IAM_KEYS = ("permissions_boundary",)
# A customer-managed policy of an account: arn:PARTITION:iam::ACCOUNT:policy/[PATH/]NAME
BOUNDARY_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:iam::\d{12}:policy/([\w+=,.@-]+/)*[\w+=,.@-]{1,128}$"
)


def _iam(reader: Reader, top: dict[str, Located]) -> IamSettings:
    iam = reader.mapping(top.get("iam", Located(None, 0)), "iam", IAM_KEYS)
    boundary, line = reader.text(iam, "permissions_boundary", "iam.permissions_boundary")
    if boundary is not None and not BOUNDARY_ARN_RE.match(boundary):
        reader.problems.add(
            line,
            "iam.permissions_boundary",
            f"'{boundary}' is not a managed policy ARN of an account — write "
            "arn:aws:iam::ACCOUNT:policy/NAME (the policy `loginwatch permissions --boundary` "
            "prints, created in this account), or leave it unset",
        )
        boundary = None
    return IamSettings(permissions_boundary=boundary)


def _tags(reader: Reader, top: dict[str, Located]) -> dict[str, str]:
    node = top.get("tags")
    if node is None or node.value is None:
        return {}
    if not isinstance(node.value, dict):
        reader.problems.add(node.line, "tags", f"expected a mapping, got {type_name(node.value)}")
        return {}
    tags: dict[str, str] = {}
    for key, value_node in node.value.items():
        path = f"tags.{key}"
        if not TAG_KEY_RE.match(key) or key.lower().startswith("aws:"):
            reader.problems.add(
                value_node.line, path, "is not a valid tag key (1-128 characters, not aws:)"
            )
            continue
        if key in RESERVED_TAGS:
            reader.problems.add(value_node.line, path, "is set by loginwatch itself; remove it")
            continue
        value, _ = reader.text(node.value, key, path)
        if value is None:
            reader.problems.add(value_node.line, path, "needs a value")
            continue
        if len(value) > 256:
            reader.problems.add(value_node.line, path, "is longer than 256 characters")
            continue
        tags[key] = value
    if len(tags) > 40:
        reader.problems.add(node.line, "tags", "at most 40 tags (loginwatch adds 2 of its own)")
    return tags


RESERVED_TAGS = ("managed-by", "loginwatch:name")

SELF_CHECK_KEYS = ("enabled", "schedule", "email", "heartbeat_url", "weekly_summary")
# EventBridge Scheduler's rate expression: a whole number and a unit (singular for 1).
RATE_RE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
# The heartbeat alarm's period is the interval: CloudWatch takes periods up to a day; a
# check more often than every 5 minutes costs invocations and tells nothing more.
MIN_CHECK_SECONDS, MAX_CHECK_SECONDS = 300, 86400
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def schedule_interval(expression: str) -> int | None:
    """Seconds between checks of a ``rate(...)`` expression; None if it is not one."""
    match = RATE_RE.match(expression.strip())
    if match is None:
        return None
    count, unit = int(match.group(1)), match.group(2)
    if (count == 1) != (not unit.endswith("s")):  # rate(1 hour), rate(2 hours)
        return None
    return count * _UNIT_SECONDS[unit.rstrip("s")]


def _flag(reader: Reader, fields: dict[str, Located], key: str, path: str, default: bool) -> bool:
    node = fields.get(key)
    if node is None or node.value is None:
        return default
    if not isinstance(node.value, bool):
        reader.problems.add(node.line, path, f"expected true or false, got {type_name(node.value)}")
        return default
    return node.value


def _self_check(
    reader: Reader, top: dict[str, Located], warnings: list[str], need_webhook: bool
) -> SelfCheck:
    node = top.get("self_check", Located(None, 0))
    fields = reader.mapping(node, "self_check", SELF_CHECK_KEYS)
    enabled = _flag(reader, fields, "enabled", "self_check.enabled", True)
    weekly = _flag(reader, fields, "weekly_summary", "self_check.weekly_summary", True)
    schedule, line = reader.text(fields, "schedule", "self_check.schedule")
    schedule = (schedule or "rate(1 hour)").strip()
    interval = schedule_interval(schedule)
    if interval is None:
        reader.problems.add(
            line,
            "self_check.schedule",
            f"'{schedule}' is not a rate expression such as rate(1 hour) or rate(30 minutes) "
            "(the heartbeat alarm needs a fixed interval, so cron() and at() are not taken)",
        )
    elif not MIN_CHECK_SECONDS <= interval <= MAX_CHECK_SECONDS:
        reader.problems.add(
            line,
            "self_check.schedule",
            f"{schedule} is out of range: check between every 5 minutes and once a day",
        )
    email, eline = reader.text(fields, "email", "self_check.email")
    if email is not None and not EMAIL_RE.match(email.strip()):
        reader.problems.add(
            eline, "self_check.email", f"'{email}' is not an email address (name@example.com)"
        )
        email = None
    url_node = fields.get("heartbeat_url")
    heartbeat = url_node is not None and url_node.value is not None
    url: str | None = None
    if heartbeat:
        assert url_node is not None
        unset = isinstance(url_node.value, str) and any(
            name not in reader.env for name in ENV_REF_RE.findall(url_node.value)
        )
        if not (unset and not need_webhook):
            before = len(reader.problems.items)
            url, uline = reader.text(fields, "heartbeat_url", "self_check.heartbeat_url")
            if len(reader.problems.items) > before:  # one cause, one line (an unset variable)
                url = None
            elif url is not None and not re.match(r"^https://[^\s/]+", url):
                reader.problems.add(
                    uline, "self_check.heartbeat_url", "must be an https:// URL (value not shown)"
                )
                url = None
    if not enabled and (email or heartbeat):
        warnings.append(
            "self_check: email and heartbeat_url take effect only with self_check.enabled"
        )
    return SelfCheck(
        enabled=enabled,
        schedule=schedule,
        email=email.strip() if email else None,
        heartbeat_url=url,
        heartbeat=heartbeat,
        weekly_summary=weekly,
    )


def resolve_config_path(explicit: str | None) -> str:
    """--config beats LOGINWATCH_CONFIG beats ./loginwatch.yaml."""
    return explicit or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_FILE
