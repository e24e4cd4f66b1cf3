"""IAM, bucket and topic policy documents: pure functions, least privilege, no wildcards.

Every ``Resource`` is scoped to one named thing. The only ``*`` that appears is
inside an ARN where AWS gives no narrower form: log streams inside one log
group (CloudTrail and Lambda create stream names we cannot know in advance)
and object keys under the bucket's ``AWSLogs/<account>/`` prefix.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .names import Names
from .notifier import calls as notifier_calls
from .notifier.protocol import HEARTBEAT_NAMESPACE
from .operator_policy import iam_actions

VERSION = "2012-10-17"
SID_PREFIX = "Loginwatch"
TRAIL_ACL_SID = "LoginwatchCloudTrailAclCheck"
TRAIL_WRITE_SID = "LoginwatchCloudTrailWrite"
DENY_INSECURE_SID = "LoginwatchDenyInsecureTransport"
TOPIC_PUBLISH_SID = "LoginwatchAllowAlarmPublish"
QUEUE_PRODUCER_SID = "LoginwatchProducer"
QUEUE_ONLY_PRODUCER_SID = "LoginwatchOnlyTheProducer"
FORWARDING_SID = "ForwardSignInsToHomeBus"

Policy = dict[str, Any]


def bucket_statements(names: Names, org_id: str | None = None) -> list[dict[str, Any]]:
    """CloudTrail's documented bucket policy, scoped to our trail, plus TLS-only access.
    An organization trail also writes every member's logs under AWSLogs/<org id>/."""
    source = {"aws:SourceArn": names.trail_arn}
    prefixes = [f"{names.bucket_arn}/AWSLogs/{names.account}/*"]
    if org_id:
        prefixes.append(f"{names.bucket_arn}/AWSLogs/{org_id}/*")
    return [
        {
            "Sid": TRAIL_ACL_SID,
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:GetBucketAcl",
            "Resource": names.bucket_arn,
            "Condition": {"StringEquals": source},
        },
        {
            "Sid": TRAIL_WRITE_SID,
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": prefixes[0] if len(prefixes) == 1 else prefixes,
            "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", **source}},
        },
        {
            "Sid": DENY_INSECURE_SID,
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [names.bucket_arn, f"{names.bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ]


def _statements(policy: Policy | None) -> list[dict[str, Any]]:
    statement = (policy or {}).get("Statement", [])
    return [statement] if isinstance(statement, dict) else list(statement)  # both are valid


def merge_bucket_policy(existing: Policy | None, names: Names, org_id: str | None = None) -> Policy:
    """Our statements replace earlier versions of themselves; everything else is kept as is."""
    ours = bucket_statements(names, org_id)
    our_sids = {s["Sid"] for s in ours}
    kept = [s for s in _statements(existing) if s.get("Sid") not in our_sids]
    return {"Version": VERSION, **(existing or {}), "Statement": [*kept, *ours]}


def has_our_statements(existing: Policy | None) -> bool:
    return any(str(s.get("Sid", "")).startswith(SID_PREFIX) for s in _statements(existing))


def without_our_statements(existing: Policy) -> Policy:
    kept = [s for s in _statements(existing) if not str(s.get("Sid", "")).startswith(SID_PREFIX)]
    return {**existing, "Statement": kept}


def topic_policy(names: Names) -> Policy:
    """Only our alarms may publish. CloudWatch sets aws:SourceArn to the alarm ARN."""
    # Every rule's alarm, on or off: turning a rule on changes no policy.
    return _alarms_publish(names.topic_arn, names.every_alarm_arn, names.account)


def second_voice_topic_policy(names: Names) -> Policy:
    """Only the second voice's two alarms may publish to its topic."""
    alarms = [names.alarm_arn_of(names.heartbeat_alarm), names.alarm_arn_of(names.errors_alarm)]
    return _alarms_publish(names.second_voice_topic_arn, alarms, names.account)


def _alarms_publish(topic_arn: str, alarm_arns: list[str], account: str) -> Policy:
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": TOPIC_PUBLISH_SID,
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {
                    "ArnLike": {"aws:SourceArn": alarm_arns},
                    "StringEquals": {"aws:SourceAccount": account},
                },
            }
        ],
    }


def scheduler_role_policy(names: Names) -> Policy:
    """EventBridge Scheduler → the notifier: invoke that one function only."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "RunSelfCheck",
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": names.function_arn,
            }
        ],
    }


def trust_policy(service: str, names: Names, *, source_account: bool) -> Policy:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if source_account:  # confused-deputy guard: only this account's trails may use the role
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": names.account}}
    return {"Version": VERSION, "Statement": [statement]}


def trail_role_policy(names: Names, log_group: str) -> Policy:
    """CloudTrail → CloudWatch Logs: create streams and put events in one log group only."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "WriteTrailEvents",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                # Stream names are chosen by CloudTrail: the stream part must be a wildcard.
                "Resource": f"{names.log_group_arn(log_group)}:log-stream:*",
            }
        ],
    }


# The notifier role's statements, one per thing its calls target (notifier/calls.py).
_NOTIFIER_SIDS = {
    notifier_calls.OWN_LOGS: "WriteOwnLogs",
    notifier_calls.WEBHOOKS: "ReadWebhook",
    notifier_calls.TRAIL_LOGS: "ReadSignInEvents",
    notifier_calls.ALARMS: "ReadAlarmHistory",
    notifier_calls.CLAIMS: "ClaimSignIns",
    notifier_calls.RETRY_QUEUE: "RetryUndeliveredAlerts",
    notifier_calls.MEMBER_ACCOUNTS: "NameMemberAccounts",
    # The self-check reads what can silence loginwatch, and publishes its heartbeat.
    notifier_calls.TRAIL: "SelfCheckTrail",
    notifier_calls.RULES: "SelfCheckRules",
    notifier_calls.CHECKED_ALARMS: "SelfCheckAlarms",
    notifier_calls.TOPIC: "SelfCheckSubscription",
    notifier_calls.OWN_FUNCTION: "SelfCheckConcurrency",
    notifier_calls.QUEUES: "SelfCheckUndeliveredAlerts",
    notifier_calls.HEARTBEAT: "PublishHeartbeat",
    notifier_calls.HEARTBEAT_URL: "ReadHeartbeatUrl",
    notifier_calls.OWN_LOG_EVENTS: "ReadOwnLogLines",
}
# PutMetricData has no resource: "*", narrowed to the heartbeat's namespace.
_NOTIFIER_CONDITIONS = {
    notifier_calls.HEARTBEAT: {"StringEquals": {"cloudwatch:namespace": HEARTBEAT_NAMESPACE}},
}


def notifier_role_policy(
    names: Names,
    trail_log_group: str,
    parameter_key_arn: str | None,
    organization: tuple[str, str] | None = None,
) -> Policy:
    """Exactly what the notifier calls (each module's ``CALLS``) and what Lambda does with
    its role (``BY_LAMBDA``), each on the ARNs it targets. ``organization``: (management
    account, organization id) when the notifier names member accounts."""
    arns: dict[str, list[str]] = {
        # Lambda names its streams per container: the stream part must be a wildcard.
        notifier_calls.OWN_LOGS: [f"{names.log_group_arn(names.notifier_log_group)}:log-stream:*"],
        # The default webhook and every destination's (named by setup, not by events).
        notifier_calls.WEBHOOKS: [names.parameter_arn, names.destination_parameter_arn("*")],
        # FilterLogEvents is authorised on the log-group ARN with the :* suffix.
        notifier_calls.TRAIL_LOGS: [f"{names.log_group_arn(trail_log_group)}:*"],
        notifier_calls.ALARMS: names.every_alarm_arn,
        notifier_calls.CLAIMS: [names.claims_table_arn],
        notifier_calls.RETRY_QUEUE: [names.queue_arn(names.retry_queue)],
        notifier_calls.MEMBER_ACCOUNTS: [],
        notifier_calls.TRAIL: [names.trail_arn],
        # Each fast-path region has the rules (names share ``<name>-``).
        notifier_calls.RULES: [names.rules_arn("*")],
        # Every alarm of the deployment, the second voice's among them (``<name>-…``).
        notifier_calls.CHECKED_ALARMS: [names.rule_alarms_arn],
        notifier_calls.TOPIC: [names.topic_arn],
        notifier_calls.OWN_FUNCTION: [names.function_arn],
        # The home region's retry and final queues; each region's events dead-letter queue.
        notifier_calls.QUEUES: [
            names.queue_arn(names.retry_queue),
            names.queue_arn(names.final_queue),
            names.queue_arn(names.events_dead_letter_queue, "*"),
        ],
        notifier_calls.HEARTBEAT: ["*"],
        notifier_calls.HEARTBEAT_URL: [names.heartbeat_parameter_arn],
        # FilterLogEvents is authorised on the log-group ARN with the :* suffix.
        notifier_calls.OWN_LOG_EVENTS: [f"{names.log_group_arn(names.notifier_log_group)}:*"],
    }
    if organization:
        management, org_id = organization
        arns[notifier_calls.MEMBER_ACCOUNTS] = [
            f"arn:{names.partition}:organizations::{management}:account/{org_id}/*"
        ]
    calls = (*notifier_calls.declared(), *notifier_calls.BY_LAMBDA)
    statements: list[dict[str, Any]] = []
    for target, sid in _NOTIFIER_SIDS.items():
        actions = sorted(
            {a for c in calls if c.target == target for a in iam_actions((c.service, c.operation))}
        )
        if actions and arns[target]:
            statement: dict[str, Any] = {
                "Sid": sid,
                "Effect": "Allow",
                "Action": actions[0] if len(actions) == 1 else actions,
                "Resource": arns[target][0] if len(arns[target]) == 1 else arns[target],
            }
            if target in _NOTIFIER_CONDITIONS:
                statement["Condition"] = _NOTIFIER_CONDITIONS[target]
            statements.append(statement)
    if parameter_key_arn:
        # GetParameter WithDecryption on a customer-managed key: KMS checks the role too.
        statements.append(
            {
                "Sid": "DecryptWebhook",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": parameter_key_arn,
                "Condition": {
                    "StringEquals": {"kms:ViaService": f"ssm.{names.region}.amazonaws.com"}
                },
            }
        )
    return {"Version": VERSION, "Statement": statements}


def normalize(policy: Policy | str | None) -> Any:
    """Canonical form for comparing policies: AWS reorders keys and wraps single values."""
    import json
    import urllib.parse

    if policy is None:
        return None
    if isinstance(policy, str):
        text = policy
        if text.startswith("%7B") or text.startswith("%7b"):  # IAM returns URL-encoded JSON
            text = urllib.parse.unquote(text)
        policy = json.loads(text)
    return _canon(policy)


def _canon(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canon(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        items = [_canon(v) for v in value]
        if len(items) == 1:
            return items[0]
        import json

        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return value


def forwarding_role_policy(names: Names, *, sid: str | None = FORWARDING_SID) -> Policy:
    """What EventBridge may do with a forwarding role: put events on the home bus only.

    One document for the home account's forwarding role and the member accounts' (the
    StackSet template). The template's statement has never had a Sid (``sid=None``):
    any change to the template redeploys every member account's stack.
    """
    statement = {"Effect": "Allow", "Action": "events:PutEvents", "Resource": names.event_bus_arn()}
    return {"Version": VERSION, "Statement": [{"Sid": sid, **statement} if sid else statement]}


def boundary_policy(documents: Iterable[Policy]) -> Policy:
    """One policy allowing exactly what any of ``documents`` allows: their statements,
    each once (a Sid two documents share is numbered)."""
    statements: list[dict[str, Any]] = []
    for document in documents:
        for statement in _statements(document):
            if statement not in statements:
                statements.append(statement)
    used: dict[str, int] = {}
    numbered = []
    for statement in statements:
        sid = statement.get("Sid")
        if sid:
            used[sid] = used.get(sid, 0) + 1
            if used[sid] > 1:
                statement = {**statement, "Sid": f"{sid}{used[sid]}"}
        numbered.append(statement)
    return {"Version": VERSION, "Statement": numbered}


def producer_only_queue_policy(
    queue_arn: str, allow: dict[str, Any], sole_producer: dict[str, Any]
) -> Policy:
    """A queue only its producer may write to: the allow, and a deny for everyone else.

    ``allow`` names the producer's principal (and condition); ``sole_producer`` is
    the condition that is true for every request *not* from it. Only SendMessage is
    denied: whoever may read the queue in IAM still can (redeliver, an admin).
    """
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": QUEUE_PRODUCER_SID,
                "Effect": "Allow",
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                **allow,
            },
            {
                "Sid": QUEUE_ONLY_PRODUCER_SID,
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": sole_producer,
            },
        ],
    }


def retry_queue_policy(names: Names) -> Policy:
    """The notifier's role (Lambda's OnFailure destination writes with it) and nobody else."""
    role = names.role_arn(names.notifier_role)
    return producer_only_queue_policy(
        names.queue_arn(names.retry_queue),
        {"Principal": {"AWS": role}},
        {"ArnNotEquals": {"aws:PrincipalArn": role}},
    )


def events_dead_letter_policy(names: Names, region: str, *, watch_rules: bool = False) -> Policy:
    """EventBridge, for this region's sign-in rule only (and nobody else); with watch
    rules in the region, for every rule of ours (``<name>-*``: how many follows the
    config). Without them the policy is exactly what it was before they existed."""
    if not watch_rules:
        rule = {"aws:SourceArn": names.rule_arn(region)}
        return producer_only_queue_policy(
            names.queue_arn(names.events_dead_letter_queue, region),
            {"Principal": {"Service": "events.amazonaws.com"}, "Condition": {"ArnEquals": rule}},
            {"ArnNotEquals": rule},
        )
    rules = {"aws:SourceArn": names.rules_arn(region)}
    return producer_only_queue_policy(
        names.queue_arn(names.events_dead_letter_queue, region),
        {"Principal": {"Service": "events.amazonaws.com"}, "Condition": {"ArnLike": rules}},
        {"ArnNotLike": rules},
    )
