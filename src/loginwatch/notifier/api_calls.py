"""API calls signed with an access key, and AWS saying a key is exposed: parse and decide.

Pure functions over CloudTrail records and AWS Health events: no I/O, no clock. The
fast path (paths/api_call.py, an EventBridge event's ``detail``) and the alarm path
(a log event's JSON) parse with the same code, so a call is in or out of scope for
the same reasons whichever path sees it.

In scope (``out_of_scope`` returns ``None``): ``userIdentity.type`` IAMUser, Root or
FederatedUser, signed with a long-term key (``AKIA…``), temporary credentials minted
from one (``ASIA…`` on those types) or no key id at all (CloudTrail may leave it out);
not made by an AWS service on the user's behalf (no ``invokedBy``, and a source that
is an IP address, not ``AWS Internal`` or a service's DNS name); not a console session;
from outside ``allowed_ips`` (exactly: an EventBridge ``cidr`` pattern may let an IPv6
range match an IPv4 address) and outside the principal's ``except`` networks.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from .events import mapping as _mapping
from .events import parse_event_time as _parse_time
from .events import text as _text
from .ipmatch import AllowList, parse_ip
from .protocol import API_CALL_DETAIL_TYPE as API_CALL_DETAIL_TYPE
from .protocol import HEALTH_DETAIL_TYPE as HEALTH_DETAIL_TYPE
from .rules import KeyException

HEALTH_SOURCE = "aws.health"
QUARANTINE_POLICY_PREFIX = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantine"
# Signed with a long-term key (AKIA…) or temporary credentials minted from one
# (GetSessionToken, GetFederationToken: ASIA…); a role session (AssumedRole) is not.
IN_SCOPE_TYPES = ("IAMUser", "Root", "FederatedUser")
KEY_PREFIXES = ("AKIA", "ASIA")
# Money or persistence: named in the first message and in the follow-up.
NOTABLE_CALLS = (
    "RunInstances",
    "CreateUser",
    "CreateAccessKey",
    "CreateLoginProfile",
    "AttachUserPolicy",
    "PutUserPolicy",
    "StopLogging",
    "DeleteTrail",
)
# The alarm path's reading of the trail's log group when settings.json carries no
# compiled filter (the allowlist, the principals' exceptions and the rest are
# re-checked exactly here): calls signed by a user's key, not by a service on its
# behalf. And AWS's quarantine policy attached (the backstop's metric filter too).
KEY_CALL_FILTER = (
    '{ ($.eventType = "AwsApiCall") && (($.userIdentity.type = "IAMUser") || '
    '($.userIdentity.type = "Root") || ($.userIdentity.type = "FederatedUser")) && '
    "($.userIdentity.invokedBy NOT EXISTS) }"
)
QUARANTINE_FILTER = (
    '{ ($.eventSource = "iam.amazonaws.com") && ($.eventName = "AttachUserPolicy") '
    f'&& ($.requestParameters.policyArn = "{QUARANTINE_POLICY_PREFIX}*") }}'
)
_FIELD_LIMIT = 128  # a value taken into a claims item or a note: keep it small
_KEY_ID_RE = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{12,124}\b")
_KEY_ID_ONLY = re.compile(r"(?:AKIA|ASIA)[A-Z0-9]{12,124}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ApiCall:
    """The parts of a CloudTrail API-call record that decide and that a message shows."""

    event_id: str
    event_time: datetime
    identity_type: str
    # The IAM user ("" for root); a federated user's session name, which whoever called
    # GetFederationToken chose: shown, never matched against ``except``.
    user_name: str
    arn: str
    access_key_id: str  # "" when CloudTrail recorded none
    source_ip: str
    region: str
    event_name: str
    event_source: str
    user_agent: str
    invoked_by: str
    console_session: bool
    account_id: str
    event_type: str
    error_code: str
    # A federated user's session: the IAM user whose key minted it (GetFederationToken).
    issuer_name: str = ""
    issuer_arn: str = ""
    notable: str = ""  # "RunInstances 12 × m5.8xlarge" for a notable call, else ""

    @property
    def is_root(self) -> bool:
        return self.identity_type == "Root"

    @property
    def who(self) -> str:
        """The principal, as a message names it."""
        if self.is_root:
            return "ROOT account"
        who = self.user_name or self.arn or self.identity_type
        if self.identity_type == "FederatedUser" and (self.issuer_name or self.issuer_arn):
            return f"{who} (issued by IAM user {self.issuer_name or self.issuer_arn})"
        return who

    @property
    def masked_key(self) -> str:
        return mask_key(self.access_key_id)

    def window_key(self) -> str:
        """Account, key and source address: one message (and one follow-up) per each.
        The key id is hashed: the claims table never holds it whole."""
        return f"{self.account_id}#{key_digest(self.access_key_id, self.arn)}#{self.source_ip}"


@dataclass(frozen=True)
class KeyExposure:
    """AWS Health says a key is exposed (detail.service RISK), or AWS quarantined a user."""

    dedupe_key: str  # the Health event's ARN (else EventBridge's id), or the eventID
    kind: str  # "health" or "quarantine"
    account_id: str
    event_type_code: str  # AWS_RISK_CREDENTIALS_EXPOSED…, or "AttachUserPolicy"
    key_ids: tuple[str, ...]  # affected entities that are key ids (masked when shown)
    user_name: str
    description: str  # AWS's own words (Health), or what was attached (quarantine)
    region: str
    time: datetime | None
    policy_arn: str = ""
    event_id: str = ""  # quarantine: the CloudTrail record's id (for its console link)
    entities: tuple[str, ...] = ()  # other affected entities (a user's ARN…), shown as is


# ---------------------------------------------------------------- helpers


def mask_key(key_id: str) -> str:
    """``AKIA…MPLE``: the prefix and the last four characters, never the whole id."""
    key_id = key_id.strip()
    if not key_id:
        return "no key id recorded"
    if len(key_id) < 12:
        return key_id[:4] + "…"
    return f"{key_id[:4]}…{key_id[-4:]}"


def mask_key_ids(text: str) -> str:
    """Every access key id in ``text`` masked (AWS's Health text names the key whole)."""
    return _KEY_ID_RE.sub(lambda match: mask_key(match.group(0)), text)


def is_key_id(value: str) -> bool:
    """An access key id (``AKIA…``/``ASIA…``), not an ARN or a user name."""
    return _KEY_ID_ONLY.fullmatch(value.strip()) is not None


def key_digest(key_id: str, arn: str = "") -> str:
    """A short stable stand-in for a key id (or, without one, the principal's ARN)."""
    basis = key_id or f"nokey:{arn}"
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:16]


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _instances(request: Mapping[str, Any]) -> str:
    """ "12 × m5.8xlarge" from RunInstances' request (a count range when min ≠ max)."""
    items = _mapping(request.get("instancesSet")).get("items")
    low = high = 0
    for item in items if isinstance(items, list) else []:
        item = _mapping(item)
        least, most = _count(item.get("minCount")), _count(item.get("maxCount"))
        low += least if least is not None else (most or 1)
        high += most if most is not None else (least or 1)
    instance_type = _text(request.get("instanceType"))
    if not instance_type:
        template = _mapping(request.get("launchTemplate"))
        name = _text(template.get("launchTemplateName") or template.get("launchTemplateId"))
        instance_type = f"launch template {name}" if name else "instances"
    if not high:
        return instance_type
    count = str(high) if low in (0, high) else f"{low}–{high}"
    return f"{count} × {instance_type}"


def notable_detail(event_name: str, request: Mapping[str, Any]) -> str:
    """What a notable call did, in a few words; "" for any other call."""
    if event_name not in NOTABLE_CALLS:
        return ""
    user = _text(request.get("userName"))
    if event_name == "RunInstances":
        detail = _instances(request)
    elif event_name in ("CreateUser", "CreateLoginProfile"):
        detail = f"user {user}" if user else ""
    elif event_name == "CreateAccessKey":
        detail = f"for user {user}" if user else "for the caller"
    elif event_name == "AttachUserPolicy":
        policy = _text(request.get("policyArn")).rsplit("/", 1)[-1]
        detail = f"{policy} to user {user}" if user else policy
    elif event_name == "PutUserPolicy":
        policy = _text(request.get("policyName"))
        detail = f"{policy} on user {user}" if user else policy
    else:  # StopLogging, DeleteTrail
        detail = "trail " + _text(request.get("name")).rsplit("/", 1)[-1]
    return " ".join(f"{event_name} {detail}".split())[:_FIELD_LIMIT]


# ---------------------------------------------------------------- API calls


def parse_api_call(record: Mapping[str, Any], log_timestamp_ms: Any = None) -> ApiCall | None:
    """An ApiCall from a CloudTrail record, or None if the record is not an API call."""
    event_name = _text(record.get("eventName"))
    if not event_name or not isinstance(record.get("userIdentity"), Mapping):
        return None
    identity = _mapping(record.get("userIdentity"))
    identity_type = _text(identity.get("type"))
    arn = _text(identity.get("arn"))
    user_name = _text(identity.get("userName"))
    if not user_name and identity_type == "FederatedUser":
        user_name = arn.rsplit("/", 1)[-1] if "/" in arn else ""
    elif not user_name and identity_type == "IAMUser" and "/" in arn:
        user_name = arn.rsplit("/", 1)[-1]
    issuer = _mapping(_mapping(identity.get("sessionContext")).get("sessionIssuer"))
    console = _truthy(record.get("sessionCredentialFromConsole")) or _truthy(
        identity.get("sessionCredentialFromConsole")
    )
    return ApiCall(
        event_id=_text(record.get("eventID")),
        event_time=_parse_time(record.get("eventTime"), log_timestamp_ms),
        identity_type=identity_type,
        user_name=user_name,
        arn=arn,
        access_key_id=_text(identity.get("accessKeyId")).strip(),
        source_ip=_text(record.get("sourceIPAddress")).strip(),
        region=_text(record.get("awsRegion")),
        event_name=event_name,
        event_source=_text(record.get("eventSource")),
        user_agent=_text(record.get("userAgent")),
        invoked_by=_text(identity.get("invokedBy")),
        console_session=console,
        account_id=_text(record.get("recipientAccountId")) or _text(identity.get("accountId")),
        event_type=_text(record.get("eventType")),
        error_code=_text(record.get("errorCode")),
        issuer_name=_text(issuer.get("userName")) if issuer.get("type") == "IAMUser" else "",
        issuer_arn=_text(issuer.get("arn")) if issuer.get("type") == "IAMUser" else "",
        notable=notable_detail(event_name, _mapping(record.get("requestParameters"))),
    )


def out_of_scope(
    call: ApiCall, allowlist: AllowList, exceptions: Sequence[KeyException] = ()
) -> str | None:
    """Why ``access_key_outside_allowlist`` does not alert for this call; None if it does."""
    if call.event_type and call.event_type != "AwsApiCall":
        return f"a {call.event_type} record, not an API call"
    if call.identity_type not in IN_SCOPE_TYPES:
        return f"signed by {call.identity_type or 'an unknown identity'}, not a user's key"
    key = call.access_key_id
    if key and not key.startswith(KEY_PREFIXES):
        return "signed with neither a long-term key nor credentials minted from one"
    if call.invoked_by:
        return "made by an AWS service on the user's behalf"
    if parse_ip(call.source_ip) is None:
        return "the source is not an IP address (an AWS service)"
    if call.console_session:
        return "a console session (console sign-ins have their own rules)"
    if allowlist.contains(call.source_ip):
        return "from the allowlist"
    for exception in exceptions:
        if not _covers(exception, call):
            continue
        if exception.anywhere:
            return f"{exception.principal} may use its keys from anywhere"
        if AllowList(exception.networks).contains(call.source_ip):
            return f"from a network {exception.principal} may use its keys from"
    return None


def _covers(exception: KeyException, call: ApiCall) -> bool:
    """An IAM user's call: that user. A federated user's: only the IAM user whose key
    minted the session (sessionContext.sessionIssuer of type IAMUser), never the session
    name, which whoever holds a key picks (``get-federation-token --name ci-deployer``).
    The root user is no IAM user: no ``except`` entry covers it."""
    if call.identity_type == "IAMUser":
        return exception.covers(call.user_name, call.arn)
    if call.identity_type == "FederatedUser":
        return bool(call.issuer_name or call.issuer_arn) and exception.covers(
            call.issuer_name, call.issuer_arn
        )
    return False


def api_calls_from_log_events(log_events: Iterable[Mapping[str, Any]]) -> list[ApiCall]:
    """Every API call among log events (CloudTrail records as JSON), oldest first."""
    calls = (parse_api_call(record, timestamp) for record, timestamp in log_records(log_events))
    return one_per_event([c for c in calls if c is not None], lambda c: (c.event_time, c.event_id))


T = TypeVar("T")


def one_per_event(items: Iterable[T], order: Callable[[T], tuple[datetime, str]]) -> list[T]:
    """One of each eventID (a log group may hold a record twice), those without one all
    kept, oldest first: ``order`` gives an item's (time, eventID)."""
    found: dict[str, T] = {}
    loose: list[T] = []
    for item in items:
        event_id = order(item)[1]
        if event_id:
            found.setdefault(event_id, item)
        else:
            loose.append(item)
    return sorted([*found.values(), *loose], key=order)


def log_records(
    log_events: Iterable[Mapping[str, Any]],
) -> Iterable[tuple[Mapping[str, Any], Any]]:
    """(CloudTrail record, timestamp) of every log event whose message is one."""
    for log_event in log_events:
        try:
            record = json.loads(log_event.get("message", ""))
        except (TypeError, ValueError):
            continue
        if isinstance(record, Mapping):
            yield record, log_event.get("timestamp")


# ---------------------------------------------------------------- exposed keys


def is_quarantine_record(record: Mapping[str, Any]) -> bool:
    """AWS attaching its quarantine policy to a user (AttachUserPolicy)."""
    policy = _text(_mapping(record.get("requestParameters")).get("policyArn"))
    return record.get("eventName") == "AttachUserPolicy" and policy.startswith(
        QUARANTINE_POLICY_PREFIX
    )


def is_health_risk(event: Mapping[str, Any]) -> bool:
    detail = _mapping(event.get("detail"))
    return event.get("source") == HEALTH_SOURCE and detail.get("service") == "RISK"


_USER_IN_TEXT = re.compile(r"IAM User ([\w+=,.@-]{1,64})")


def parse_health_exposure(event: Mapping[str, Any]) -> KeyExposure | None:
    """The exposure an AWS Health RISK event reports (any event type code), or None."""
    if not is_health_risk(event):
        return None
    detail = _mapping(event.get("detail"))
    # De-duplicated by the event's ARN (the same in both of Health's regions); without
    # one, by EventBridge's id (then each region's copy may post: better than none).
    dedupe = _text(detail.get("eventArn"))
    if not dedupe:
        fallback = (
            _text(event.get("id"))
            or hashlib.sha256(
                json.dumps(detail, sort_keys=True, default=str).encode("utf-8")
            ).hexdigest()[:32]
        )
        dedupe = f"event:{fallback}"
    entities = detail.get("affectedEntities")
    values = tuple(
        dict.fromkeys(
            value.strip()
            for entity in (entities if isinstance(entities, list) else [])
            if (value := _text(_mapping(entity).get("entityValue"))).strip()
        )
    )
    keys = tuple(v for v in values if is_key_id(v))
    descriptions = [
        _mapping(d) for d in detail.get("eventDescription") or [] if isinstance(d, Mapping)
    ]
    english = next((d for d in descriptions if d.get("language") == "en_US"), None)
    text = _text((english or (descriptions[0] if descriptions else {})).get("latestDescription"))
    user = _USER_IN_TEXT.search(text)
    return KeyExposure(
        dedupe_key=dedupe,
        kind="health",
        account_id=_text(detail.get("affectedAccount")) or _text(event.get("account")),
        event_type_code=_text(detail.get("eventTypeCode")),
        key_ids=keys,
        user_name=user.group(1).rstrip(",.") if user else "",
        description=text,
        region=_text(event.get("region")),
        time=_parse_health_time(detail.get("startTime")) or _parse_time_or_none(event.get("time")),
        entities=tuple(v for v in values if not is_key_id(v)),
    )


def parse_quarantine(record: Mapping[str, Any], log_timestamp_ms: Any = None) -> KeyExposure | None:
    """AWS's quarantine policy attached to a user (the CloudTrail record), or None."""
    if not is_quarantine_record(record):
        return None
    request = _mapping(record.get("requestParameters"))
    event_id = _text(record.get("eventID"))
    identity = _mapping(record.get("userIdentity"))
    return KeyExposure(
        dedupe_key=event_id or key_digest("", _text(record.get("eventTime"))),
        kind="quarantine",
        account_id=_text(record.get("recipientAccountId")) or _text(identity.get("accountId")),
        event_type_code="AttachUserPolicy",
        key_ids=(),
        user_name=_text(request.get("userName")),
        description="",
        region=_text(record.get("awsRegion")),
        time=_parse_time(record.get("eventTime"), log_timestamp_ms),
        policy_arn=_text(request.get("policyArn")),
        event_id=event_id,
    )


def quarantines_from_log_events(log_events: Iterable[Mapping[str, Any]]) -> list[KeyExposure]:
    found: dict[str, KeyExposure] = {}
    for record, timestamp in log_records(log_events):
        exposure = parse_quarantine(record, timestamp)
        if exposure is not None:
            found.setdefault(exposure.dedupe_key, exposure)
    return list(found.values())


def _parse_time_or_none(value: Any) -> datetime | None:
    moment = _parse_time(value)
    return None if moment == _EPOCH else moment


def _parse_health_time(value: Any) -> datetime | None:
    """Health's ``Fri, 20 Nov 2026 10:10:55 GMT`` (or ISO 8601)."""
    if not isinstance(value, str):
        return None
    try:
        return parsedate_to_datetime(value).astimezone(UTC)
    except (TypeError, ValueError, IndexError):
        return _parse_time_or_none(value)
