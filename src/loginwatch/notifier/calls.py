"""The AWS calls the notifier makes, declared beside the code that makes them.

Each module that calls AWS lists its calls in ``CALLS``; the notifier role's policy
(attached_policies.notifier_role_policy) is built from them, so the role allows
exactly what the code calls and nothing else. A call names what it targets by a
symbol that the CLI side resolves to ARNs. ``BY_LAMBDA`` lists what Lambda itself
does with the role, which no module here calls.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

# What a call targets (attached_policies resolves each to ARNs).
WEBHOOKS = "webhooks"  # every destination's SSM SecureString
TRAIL_LOGS = "trail-logs"  # the trail's log group
ALARMS = "alarms"  # loginwatch's alarms
CLAIMS = "claims"  # the claims table
RETRY_QUEUE = "retry-queue"  # the retry queue
MEMBER_ACCOUNTS = "member-accounts"  # the organization's accounts
OWN_LOGS = "own-logs"  # the function's own log group
# The self-check (self_check.py) reads what can silence loginwatch, where it lives:
TRAIL = "trail"  # the trail
RULES = "rules"  # loginwatch's EventBridge rules, in every region of the fast path
CHECKED_ALARMS = "checked-alarms"  # every alarm of the deployment (``<name>-…``)
TOPIC = "topic"  # the alarms' topic
OWN_FUNCTION = "own-function"  # the notifier itself
QUEUES = "queues"  # where undelivered alerts wait (the home region's, each region's)
HEARTBEAT = "heartbeat"  # the heartbeat metric (PutMetricData: no resource, a namespace)
HEARTBEAT_URL = "heartbeat-url"  # the dead-man's-switch URL's SSM SecureString
OWN_LOG_EVENTS = "own-log-events"  # the function's own log lines (the weekly summary)


@dataclass(frozen=True)
class Call:
    service: str  # botocore's service name
    operation: str  # the API operation
    target: str


# Lambda writes the function's log, hands a failed invoke to the retry queue (its
# OnFailure destination) and polls that queue (the event source mapping), all with
# the function's role.
BY_LAMBDA = (
    Call("logs", "CreateLogStream", OWN_LOGS),
    Call("logs", "PutLogEvents", OWN_LOGS),
    Call("sqs", "SendMessage", RETRY_QUEUE),
    Call("sqs", "ReceiveMessage", RETRY_QUEUE),
    Call("sqs", "DeleteMessage", RETRY_QUEUE),
    Call("sqs", "GetQueueAttributes", RETRY_QUEUE),
)


def declared() -> tuple[Call, ...]:
    """Every call the package's modules declare, found by walking the package (the CLI
    asks; the Lambda never does)."""
    package = importlib.import_module(__name__.rpartition(".")[0])
    found: list[Call] = []
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        found.extend(getattr(importlib.import_module(info.name), "CALLS", ()))
    return tuple(dict.fromkeys(found))
