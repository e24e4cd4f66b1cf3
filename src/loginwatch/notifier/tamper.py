"""Changes that can switch loginwatch off: which calls, on which resources, and whether one
is loginwatch's own maintenance. Pure: no I/O, no clock.

``WATCHES`` is the one list of watched calls: the EventBridge patterns of the ``tamper``
rule (loginwatch/tamper_patterns.py), the backstop's metric filter and this module's
decision are all built from it, so the fast path and the notifier agree on what a
tamper event is.

A call is a tamper event when its service and name are watched and the resource its
request names is loginwatch's (``Own``), *whichever way the request names it*: Lambda
takes a function's name, its name with a qualifier, its full or partial ARN (even
``<account>:<name>``); DynamoDB a table's name or ARN; SSM a parameter's name or ARN.
Trail changes (any trail: the one feeding loginwatch may be a reused one) and leaving
the organization are watched whatever they name.

Lambda records its calls with the API version: ``DeleteFunction20150331``,
``UpdateFunctionCode20150331v2``. The pattern matches the name and the name followed by
``20…``; here the suffix is stripped (``call_name``) before the exact comparison.

loginwatch's own changes: every client of the CLI adds ``loginwatch/<version> (<command>)``
to its user agent (notifier/protocol.own_user_agent). A change whose user agent says
``setup`` or ``teardown`` is *maintenance*: still reported (a user agent can be forged),
once per run, at low severity. A call loginwatch never makes (``NEVER_OWN``) is critical
whatever its user agent says.

Organization mode: every member account runs the StackSet's stack (stack_set.py), whose
rules forward the member's changes to its own loginwatch resources (``Watch.in_members``)
to the home bus. loginwatch's CLI never runs in a member account (setup runs from the
management account only), so there a user agent marks nothing: the only maintenance is
the StackSet's own execution (``stack_set_execution``); every other change is critical,
naming the member account.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .api_calls import ApiCall, log_records, one_per_event, parse_api_call
from .protocol import own_command

RULE = "tamper"
# Commands whose changes to loginwatch's resources are maintenance.
MAINTENANCE_COMMANDS = ("setup", "teardown")
# Calls loginwatch itself never makes: with loginwatch's user agent, the agent is forged.
NEVER_OWN = frozenset(
    {
        "LeaveOrganization",
        "PutFunctionConcurrency",
        "DisableAlarmActions",
        "DisableRule",
        "PurgeQueue",
    }
)

# How a request's value is compared with loginwatch's names (``owns``).
ANY = "any"  # every value: no narrowing (trails, the organization)
PREFIXED = "prefixed"  # "<name>-…": rules, alarms, metric filters, StackSets
ROLE = "role"  # "<name>-…", case-insensitive (IAM names are)
FUNCTION = "function"  # the notifier: name, name:qualifier, full or partial ARN
TABLE = "table"  # the claims table: name or ARN
LOG_GROUP = "log-group"  # the trail's log group and the notifier's, exactly
TOPIC = "topic"  # an SNS topic or subscription ARN whose topic is "<name>-…"
PARAMETER = "parameter"  # "/<name>/…", or its ARN
QUEUE = "queue"  # a queue URL whose queue is "<name>-…"
# A member account's stack of loginwatch's StackSet: "StackSet-<StackSet name>-<uuid>"
# (how service-managed StackSets name their stacks), by name or stack id (its ARN).
MEMBER_STACK = "member-stack"

# What a maintenance run is, besides the CLI's commands: the StackSet's own execution in
# a member account (one token: the run's scope splits on spaces).
STACK_SET_COMMAND = "StackSet"
# Service-managed StackSets act in each member account through a role named
# "stacksets-exec-…" (AWS CloudFormation user guide, stacksets-custom-execution-role),
# which the management account's StackSets service-linked role assumes
# (CloudFormationStackSetsOrgAdminServiceRolePolicy allows sts:AssumeRole on
# arn:aws:iam::*:role/stacksets-exec-* and nothing else). CloudFormation then makes the
# stack's calls with that session (invokedBy cloudformation.amazonaws.com).
STACK_SET_EXEC_ROLE = "stacksets-exec-"
_STACK_SET_SESSION = re.compile(
    r"^arn:aws[a-z-]*:sts::(\d{12}):assumed-role/" + STACK_SET_EXEC_ROLE + r"[^/]+/[^/]+$"
)

_LAMBDA_SOURCE = "lambda.amazonaws.com"
_LAMBDA_VERSION = re.compile(r"20\d{6}(?:v\d+)?$")
_FIELD_LIMIT = 256


@dataclass(frozen=True)
class Watch:
    """Calls of one service that name loginwatch's resource the same way: every
    ``(requestParameters field, kind)`` must name one of loginwatch's (an ``ANY`` field
    is only shown)."""

    service: str  # the record's eventSource
    calls: tuple[str, ...]  # event names (Lambda's without the version suffix)
    fields: tuple[tuple[str, str], ...] = ()
    # Also watched in every member account (organization mode): these calls can silence
    # a member's forwarding (its rules, its forwarding role, its stack, the organization).
    in_members: bool = False

    @property
    def versioned(self) -> bool:
        return self.service == _LAMBDA_SOURCE

    @property
    def narrowed(self) -> tuple[tuple[str, str], ...]:
        return tuple((f, kind) for f, kind in self.fields if kind != ANY)


_IAM_ROLE_CALLS = (
    "DeleteRole",
    "PutRolePolicy",
    "DeleteRolePolicy",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "UpdateAssumeRolePolicy",
    "PutRolePermissionsBoundary",
    "DeleteRolePermissionsBoundary",
    "UpdateRole",
)

WATCHES: tuple[Watch, ...] = (
    # The trail that feeds loginwatch, whichever it is: always.
    Watch(
        "cloudtrail.amazonaws.com", ("StopLogging", "DeleteTrail", "UpdateTrail"), (("name", ANY),)
    ),
    Watch("cloudtrail.amazonaws.com", ("PutEventSelectors",), (("trailName", ANY),)),
    Watch("organizations.amazonaws.com", ("LeaveOrganization",), in_members=True),
    # The fast path's rules (names take no ARN form), a member account's too.
    Watch(
        "events.amazonaws.com",
        ("DeleteRule", "DisableRule", "PutRule"),
        (("name", PREFIXED),),
        in_members=True,
    ),
    Watch(
        "events.amazonaws.com",
        ("RemoveTargets", "PutTargets"),
        (("rule", PREFIXED),),
        in_members=True,
    ),
    # The notifier (PutFunctionConcurrency 0 silences it without deleting it).
    Watch(
        _LAMBDA_SOURCE,
        (
            "DeleteFunction",
            "PutFunctionConcurrency",
            "UpdateFunctionCode",
            "UpdateFunctionConfiguration",
            "RemovePermission",
        ),
        (("functionName", FUNCTION),),
    ),
    # The backstop: alarms (alarmNames is a list: any of loginwatch's), filters, log groups.
    Watch(
        "monitoring.amazonaws.com",
        ("DeleteAlarms", "DisableAlarmActions"),
        (("alarmNames", PREFIXED),),
    ),
    Watch("monitoring.amazonaws.com", ("PutMetricAlarm",), (("alarmName", PREFIXED),)),
    Watch(
        "logs.amazonaws.com",
        ("DeleteLogGroup", "PutRetentionPolicy"),
        (("logGroupName", LOG_GROUP),),
    ),
    # A reused trail's log group holds others' filters too: only loginwatch's count.
    Watch(
        "logs.amazonaws.com",
        ("DeleteMetricFilter", "PutMetricFilter"),
        (("logGroupName", LOG_GROUP), ("filterName", PREFIXED)),
    ),
    # The alarms' topic: its subscription (a filter policy can drop every alarm), itself.
    Watch("sns.amazonaws.com", ("DeleteTopic", "SetTopicAttributes"), (("topicArn", TOPIC),)),
    Watch(
        "sns.amazonaws.com",
        ("Unsubscribe", "SetSubscriptionAttributes"),
        (("subscriptionArn", TOPIC),),
    ),
    # The webhooks (PutParameter can point them at someone else's channel).
    Watch("ssm.amazonaws.com", ("DeleteParameter", "PutParameter"), (("name", PARAMETER),)),
    Watch("ssm.amazonaws.com", ("DeleteParameters",), (("names", PARAMETER),)),
    Watch("dynamodb.amazonaws.com", ("DeleteTable",), (("tableName", TABLE),)),
    Watch("sqs.amazonaws.com", ("DeleteQueue", "PurgeQueue"), (("queueUrl", QUEUE),)),
    # The self-check's schedule (UpdateSchedule can disable it). CloudTrail records the
    # schedule's name as requestParameters.name (the API's path parameter, lower-cased
    # as for its other calls; not seen in a real record yet).
    Watch("scheduler.amazonaws.com", ("DeleteSchedule", "UpdateSchedule"), (("name", PREFIXED),)),
    # IAM: us-east-1 only. A member account's forwarding role is "<name>-member-forward-…".
    Watch("iam.amazonaws.com", _IAM_ROLE_CALLS, (("roleName", ROLE),), in_members=True),
    Watch(
        "cloudformation.amazonaws.com",
        ("DeleteStackSet", "DeleteStackInstances", "UpdateStackSet"),
        (("stackSetName", PREFIXED),),
    ),
    # A member account's own stack of the StackSet: deleting or changing it removes the
    # member's rules (ExecuteChangeSet only when its request names the stack).
    Watch(
        "cloudformation.amazonaws.com",
        ("DeleteStack", "UpdateStack", "ExecuteChangeSet"),
        (("stackName", MEMBER_STACK),),
        in_members=True,
    ),
)
# IAM's and Organizations' calls arrive in us-east-1 only (in the aws partition).
US_EAST_1_ONLY = frozenset({"iam.amazonaws.com", "organizations.amazonaws.com"})


def member_watches() -> tuple[Watch, ...]:
    """The watches a member account's rules carry (the home rules carry every one)."""
    return tuple(w for w in WATCHES if w.in_members)


@dataclass(frozen=True)
class Own:
    """loginwatch's names, as the notifier knows them (settings: name, trail log group).
    ``partition``, ``region`` and ``account`` narrow the event patterns' ARN prefixes
    (the CLI knows them); the notifier's check reads ARNs by their parts."""

    name: str
    trail_log_group: str
    partition: str = "aws"
    region: str = ""
    # The home account (loginwatch's own); in organization mode a change recorded in
    # another account is a member account's. "" when not known: no change is then taken
    # for a member's.
    account: str = ""
    # Organization mode (settings.organization_home): member accounts' records reach the
    # trail's log group and, through their own tamper rules, the home bus.
    organization: bool = False

    @property
    def prefix(self) -> str:
        """Every rule, alarm, filter, role, topic, queue and StackSet: ``<name>-…``."""
        return f"{self.name}-"

    @property
    def function(self) -> str:
        return f"{self.name}-notifier"

    @property
    def claims_table(self) -> str:
        return f"{self.name}-claims"

    @property
    def parameter_path(self) -> str:
        return f"/{self.name}/"

    @property
    def notifier_log_group(self) -> str:
        return f"/aws/lambda/{self.function}"

    @property
    def stack_set(self) -> str:
        return f"{self.name}-member-forwarding"

    @property
    def member_stack_prefix(self) -> str:
        """How service-managed StackSets name a member's stack: StackSet-<name>-<uuid>."""
        return f"StackSet-{self.stack_set}-"

    @property
    def log_groups(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.trail_log_group, self.notifier_log_group)))


def owns(kind: str, value: Any, own: Own) -> bool:
    """Does this request value name one of loginwatch's resources (``kind`` says how)?"""
    if kind == ANY:
        return True
    if not isinstance(value, str) or not value:
        return False
    if kind == PREFIXED:
        return value.startswith(own.prefix)
    if kind == ROLE:
        return value.lower().startswith(own.prefix.lower())
    if kind == FUNCTION:
        fn = own.function
        # Lambda reads (arn:…:lambda:)(region:)(account:)(function:)name(:qualifier): a
        # function name has no colon, so loginwatch's is the last part or the one before.
        return (
            value == fn
            or value.startswith(f"{fn}:")
            or value.endswith(f":{fn}")
            or f":{fn}:" in value
        )
    if kind == TABLE:
        return value == own.claims_table or value.endswith(f":table/{own.claims_table}")
    if kind == LOG_GROUP:
        return value in own.log_groups
    if kind == TOPIC:
        parts = value.split(":")
        return (
            len(parts) >= 6
            and parts[0] == "arn"
            and parts[2] == "sns"
            and parts[5].startswith(own.prefix)
        )
    if kind == PARAMETER:
        return value.startswith(own.parameter_path) or (
            value.startswith("arn:") and f":parameter{own.parameter_path}" in value
        )
    if kind == QUEUE:
        return "/" in value and value.rstrip("/").rsplit("/", 1)[-1].startswith(own.prefix)
    if kind == MEMBER_STACK:
        # A name, or a stack id: arn:…:cloudformation:<region>:<account>:stack/<name>/<id>.
        stack = own.member_stack_prefix
        return value.startswith(stack) or f":stack/{stack}" in value
    raise ValueError(f"unknown kind {kind!r}")


def call_name(event_source: str, event_name: str) -> str:
    """The call as the API names it: Lambda's version suffix (``20150331``, ``20150331v2``)
    taken off."""
    if event_source == _LAMBDA_SOURCE:
        return _LAMBDA_VERSION.sub("", event_name) or event_name
    return event_name


def watch_for(event_source: str, event_name: str) -> Watch | None:
    name = call_name(event_source, event_name)
    return next((w for w in WATCHES if w.service == event_source and name in w.calls), None)


def is_watched_call(record: Mapping[str, Any]) -> bool:
    """A watched call, whatever resource it names (no names needed: recognising a path)."""
    source, name = record.get("eventSource"), record.get("eventName")
    return isinstance(source, str) and isinstance(name, str) and watch_for(source, name) is not None


def _values(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _resources(watch: Watch, request: Mapping[str, Any], own: Own) -> tuple[str, ...] | None:
    """The resources the call names (loginwatch's, for a narrowed field); None when a
    narrowed field names none of loginwatch's."""
    shown: list[str] = []
    for field, kind in watch.fields:
        values = _values(request.get(field))
        mine = [v for v in values if owns(kind, v, own)]
        if kind != ANY and not mine:
            return None
        shown.extend(str(v)[:_FIELD_LIMIT] for v in mine if isinstance(v, str) and v)
    return tuple(dict.fromkeys(shown))


@dataclass(frozen=True)
class TamperEvent:
    """A change that can switch loginwatch off, as a message tells it."""

    call: ApiCall  # who, key, address, user agent, region, time, error
    name: str  # the call without Lambda's version suffix ("DeleteFunction")
    resources: tuple[str, ...]  # what it named ("" for the organization)
    # "setup"/"teardown" when the user agent says loginwatch made it (home account);
    # STACK_SET_COMMAND for the StackSet's own execution in a member account.
    command: str | None
    member: bool = False  # made in a member account (organization mode)

    @property
    def event_id(self) -> str:
        return self.call.event_id

    @property
    def account_id(self) -> str:
        return self.call.account_id

    @property
    def time(self) -> datetime:
        return self.call.event_time

    @property
    def maintenance(self) -> bool:
        """loginwatch's own setup or teardown (by its user agent), or the StackSet's
        execution in a member account, of a call it makes."""
        return self.command is not None and self.name not in NEVER_OWN

    @property
    def forged(self) -> bool:
        """loginwatch's user agent on a call loginwatch never makes."""
        return self.command in MAINTENANCE_COMMANDS and self.name in NEVER_OWN

    @property
    def principal(self) -> str:
        """Who, as a message names them: an assumed role as ``role/session``."""
        call = self.call
        if ":assumed-role/" in call.arn and not call.user_name:
            return call.arn.split(":assumed-role/", 1)[1]
        # A federated session is named with the IAM user that issued it: its own name is
        # whatever GetFederationToken was given.
        return call.who or "unknown principal"

    @property
    def run_arn(self) -> str:
        """Whose run a maintenance change belongs to: the principal, or for the StackSet's
        execution its role (StackSets may take a session per region and operation: one
        run per member account, not per session)."""
        arn = self.call.arn
        if self.command == STACK_SET_COMMAND and ":assumed-role/" in arn:
            return arn.rsplit("/", 1)[0]
        return arn

    @property
    def resource_text(self) -> str:
        return ", ".join(self.resources) if self.resources else "the account"


def maintenance_command(user_agent: str) -> str | None:
    """``setup`` or ``teardown`` when the user agent carries loginwatch's own mark."""
    command = own_command(user_agent)
    return command if command in MAINTENANCE_COMMANDS else None


def stack_set_execution(record: Mapping[str, Any]) -> bool:
    """Made by the StackSet's execution role in the account it belongs to: a session of
    a role named ``stacksets-exec-…`` of the very account the change was made in.

    Why the role and not the user agent: a member admin sets any user agent, but cannot
    act as that role unless they first change IAM roles named ``stacksets-exec-…`` (its
    trust admits only the management account's StackSets service-linked role), and
    loginwatch's calls on its own stack are watched. It is not proof: such an admin
    could create a role of that name, or rewrite the real one's trust, and an SCP that
    denies IAM changes to ``role/stacksets-exec-*`` closes that. So these changes are
    shown, once per run at low severity, never hidden (as setup's are)."""
    identity = record.get("userIdentity")
    if not isinstance(identity, Mapping) or identity.get("type") != "AssumedRole":
        return False
    found = _STACK_SET_SESSION.match(str(identity.get("arn") or ""))
    account = record.get("recipientAccountId") or identity.get("accountId")
    return found is not None and found.group(1) == account


def _command(record: Mapping[str, Any], call: ApiCall, member: bool) -> str | None:
    """What maintenance made the change, if any. In a member account loginwatch's CLI never
    runs (setup runs from the management account): its user agent there marks nothing."""
    if member:
        return STACK_SET_COMMAND if stack_set_execution(record) else None
    return maintenance_command(call.user_agent)


def parse_tamper(
    record: Mapping[str, Any], own: Own, log_timestamp_ms: Any = None
) -> TamperEvent | None:
    """The tamper event a CloudTrail record is for this deployment, or None."""
    source, event_name = record.get("eventSource"), record.get("eventName")
    if not isinstance(source, str) or not isinstance(event_name, str):
        return None
    watch = watch_for(source, event_name)
    if watch is None:
        return None
    request = record.get("requestParameters")
    resources = _resources(watch, request if isinstance(request, Mapping) else {}, own)
    if resources is None:
        return None
    call = parse_api_call(record, log_timestamp_ms)
    if call is None:
        return None
    member = own.organization and bool(own.account) and call.account_id not in ("", own.account)
    if member and not watch.in_members:
        # A member's own trails, topics, functions…: not loginwatch's (its resources
        # there are the in_members watches'); the organization trail is the home's.
        return None
    return TamperEvent(
        call=call,
        name=call_name(source, event_name),
        resources=resources,
        command=_command(record, call, member),
        member=member,
    )


def tamper_events_from_log_events(
    log_events: Iterable[Mapping[str, Any]], own: Own
) -> list[TamperEvent]:
    """Every tamper event among log events (the trail's records as JSON), oldest first,
    one per eventID: the alarm path's reading of the backstop's window."""
    events = (parse_tamper(record, own, at) for record, at in log_records(log_events))
    return one_per_event([e for e in events if e is not None], lambda e: (e.time, e.event_id))


# ---------------------------------------------------------------- the backstop's filters

# Security Hub CloudWatch.5 (CIS 1.2 3.5, 1.4 4.5), character for character (the same
# text as loginwatch/cis_patterns.TRAIL_CHANGES, which the notifier package cannot import).
TRAIL_CHANGES_FILTER = (
    "{($.eventName=CreateTrail) || ($.eventName=UpdateTrail) || ($.eventName=DeleteTrail) || "
    "($.eventName=StartLogging) || ($.eventName=StopLogging)}"
)
FILTER_LIMIT = 1024  # CloudWatch Logs' limit on a filter pattern


# Organization mode: the StackSet's execution in a member account (stack_set_execution)
# is not counted, so the organization trail's log group, which holds every member's
# records, does not alarm on each deployment; the fast path shows those changes as
# maintenance. The home account's records always count (StackSets never deploy there:
# a stacksets-exec-… session at home is someone's own role). A call without an arn (an
# AWS service's own call) counts whichever way CloudWatch Logs compares a missing field.
NOT_STACK_SET_EXECUTION = (
    f'$.userIdentity.arn NOT EXISTS || $.userIdentity.arn != "*/{STACK_SET_EXEC_ROLE}*"'
)


def _counted_principals(own: Own) -> str:
    """The filter's clause on who made the change: everyone but outside organization
    mode; there, anyone at home, and anyone but the StackSet's execution in a member."""
    if not own.organization:
        return ""
    home = f'$.recipientAccountId = "{own.account}" || ' if own.account else ""
    return f"({home}{NOT_STACK_SET_EXECUTION}) && "


def own_changes_filter(own: Own) -> str:
    """A CloudWatch Logs filter pattern counting write calls (``readOnly`` false: the
    notifier's own reads, GetParameter and FilterLogEvents among them, never count) whose
    request names one of loginwatch's resources, plus ``PutEventSelectors`` (CloudWatch.5
    misses it) and ``LeaveOrganization``; in organization mode, not by the StackSet's
    execution in a member (``_counted_principals``). Narrowed as far as the syntax allows: string
    wildcards, and a list's first element only (``alarmNames[0]``, ``names[0]``); IAM's
    case-insensitive role names are compared as written. It over-counts (the notifier's
    ``parse_tamper`` decides) and leaves to the fast path what it cannot say. The
    notifier rebuilds the same text from its settings (``log_filters``). Within ``FILTER_LIMIT`` characters: when a long name (or a reused trail's
    long log group) does not fit every term, the first of ``_DROPPABLE`` go first."""
    p, fn = own.prefix, own.function
    terms = {
        "trail selectors": '$.eventName="PutEventSelectors"',
        "rules": f'$.requestParameters.name="{p}*"',
        "targets": f'$.requestParameters.rule="{p}*"',
        "function": f'$.requestParameters.functionName="*{fn}*"',
        "alarm": f'$.requestParameters.alarmName="{p}*"',
        "alarms": f'$.requestParameters.alarmNames[0]="{p}*"',
        "trail log group": f'$.requestParameters.logGroupName="{own.trail_log_group}"',
        "notifier log group": f'$.requestParameters.logGroupName="*{fn}"',
        "topic": f'$.requestParameters.topicArn="*:{p}*"',
        "subscription": f'$.requestParameters.subscriptionArn="*:{p}*"',
        "parameter": f'$.requestParameters.name="*/{own.name}/*"',
        "table": f'$.requestParameters.tableName="*{own.claims_table}"',
        "queue": f'$.requestParameters.queueUrl="*/{p}*"',
        "role": f'$.requestParameters.roleName="{p}*"',
        "stack set": f'$.requestParameters.stackSetName="{p}*"',
        "organization": '$.eventName="LeaveOrganization"',
        "parameters": f'$.requestParameters.names[0]="*/{own.name}/*"',
        "member stack": f'$.requestParameters.stackName="*StackSet-{p}*"',
    }
    if own.trail_log_group == own.notifier_log_group:
        del terms["trail log group"]
    if not own.organization:  # no member accounts, no stacks of the StackSet
        del terms["member stack"]
    head = "{$.readOnly IS FALSE && " + _counted_principals(own) + "("
    for left_out in (None, *_DROPPABLE):
        terms.pop(left_out or "", None)
        pattern = head + " || ".join(terms.values()) + ")}"
        if len(pattern) <= FILTER_LIMIT:
            return pattern
    # A reused trail's log group name can be 512 characters: no room for it.
    raise ValueError(
        f"the filter for loginwatch's own resources would be {len(pattern)} characters, "
        f"more than CloudWatch Logs' {FILTER_LIMIT}"
    )


# Left out of the filter, in this order, only when a long name leaves no room (the fast
# path still watches them): the rarest calls first. A member's DeleteStack goes before
# LeaveOrganization: the member's rules still forward it when it is made, while a member
# that has left may no longer put events on the organization's bus. Last, for the
# longest names with a reused trail's long log group: the StackSet's own calls (made in
# the home account, where the fast path's rules are loginwatch's own) and the notifier's
# log group (its loss costs the notifier's logs, not its alerts).
_DROPPABLE = (
    "parameters",
    "member stack",
    "organization",
    "alarms",
    "subscription",
    "stack set",
    "notifier log group",
)


def log_filters(own: Own) -> tuple[str, str]:
    """The patterns the alarm path reads the backstop's window with (the trail's changes,
    then loginwatch's own resources): ``tamper_events_from_log_events`` decides."""
    return TRAIL_CHANGES_FILTER, own_changes_filter(own)


def describe_calls(events: Sequence[TamperEvent]) -> list[str]:
    """``PutRule lwtest-console-sign-in`` per event, for logs and messages."""
    return [f"{e.name} {e.resource_text}" for e in events]
