"""An in-process AWS emulator (moto's server) for the demo and the tests.

moto is laxer than AWS in a few places loginwatch relies on; ``match_aws()``
makes it behave as AWS documents, so code written for AWS is exercised as is:
- PutMetricFilter with an existing name replaces the filter (moto adds a copy);
- CreateTrail with an existing name raises TrailAlreadyExistsException;
- DeleteTrail of a missing trail raises TrailNotFoundException;
- GetQueueAttributes reports a queue's RedriveAllowPolicy (moto keeps it, unreported);
- PutFunctionEventInvokeConfig replaces the configuration (moto keeps the first);
- AddPermission with a statement id already in the policy raises
  ResourceConflictException (moto adds a second statement with the same id);
- TestMetricFilter, which moto lacks, answers as an endpoint without the operation
  does (a 400 UnknownOperationException), not with a 500 that botocore retries.
- CloudTrail LookupEvents, which moto lacks (a stock server answers an HTML 500), is
  emulated as AWS documents it (see ``_patch_lookup_events``) over the events a test or
  the bench plants with ``plant_events``.
And two places where moto stops short. An SQS event source mapping makes moto invoke
the function at once, in Docker: here nothing polls (the messages stay queued, as
if Lambda had not polled yet) and the batch is recorded in ``SQS_POLLS``. And: an EventBridge rule whose target is a Lambda
function raises NotImplementedError inside PutEvents. Here the event is recorded
in ``LAMBDA_DELIVERIES`` instead (what EventBridge would have invoked the function
with), so the fast path's forwarding can be followed end to end and the demo or a
test can hand the event to the notifier.
Needs the optional extra: ``pip install 'loginwatch[demo]'``.
"""

from __future__ import annotations

import json
import logging
import socket
import urllib.request
from typing import Any

from ..errors import UsageError

_patched = False
# (function ARN, event) for every Lambda target an EventBridge rule matched, in order.
LAMBDA_DELIVERIES: list[tuple[str, dict[str, Any]]] = []
# (function ARN, queue ARN) each time moto would have had an event source mapping poll.
SQS_POLLS: list[tuple[str, str]] = []
# CloudTrail's event history, per (account, region): the records LookupEvents answers
# from (plant_events), and when each LookupEvents request came (region, monotonic time).
PLANTED_EVENTS: dict[tuple[str, str], list[dict[str, Any]]] = {}
LOOKUP_REQUESTS: list[tuple[str, float]] = []
# AWS throttles LookupEvents above 2 requests per second per account and region; set to
# a number to have the emulator do the same (ThrottlingException), None not to.
LOOKUP_RATE_LIMIT: int | None = None
LOOKUP_THROTTLED: list[tuple[str, float]] = []


def _require_moto() -> None:
    try:
        import moto.server  # noqa: F401
    except ImportError:
        raise UsageError(
            "The AWS emulator (moto) is not installed.",
            "Install it with: pip install 'loginwatch[demo]'",
        ) from None


def match_aws() -> None:
    """Patch moto's backends where they differ from AWS (idempotent)."""
    global _patched
    if _patched:
        return
    _require_moto()
    from moto.cloudtrail import models as trail_models
    from moto.cloudtrail.exceptions import TrailNotFoundException
    from moto.core.exceptions import JsonRESTError
    from moto.logs import models as logs_models

    class TrailAlreadyExistsException(JsonRESTError):
        code = 400

        def __init__(self, name: str) -> None:
            super().__init__(
                "TrailAlreadyExistsException", f"Trail {name} already exists for customer"
            )

    original_put = logs_models.LogsBackend.put_metric_filter

    def put_metric_filter(
        self: Any,
        filter_name: str,
        filter_pattern: str,
        log_group_name: str,
        metric_transformations: Any,
    ) -> None:
        self.filters.delete_filter(filter_name, log_group_name)
        original_put(self, filter_name, filter_pattern, log_group_name, metric_transformations)

    original_create = trail_models.CloudTrailBackend.create_trail

    def create_trail(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        if name in self.trails:
            raise TrailAlreadyExistsException(name)
        return original_create(self, name, *args, **kwargs)

    def delete_trail(self: Any, name: str) -> None:
        trail = self.get_trail(name)  # raises TrailNotFoundException like AWS
        if trail.trail_name not in self.trails:
            raise TrailNotFoundException(account_id=self.account_id, name=name)
        del self.trails[trail.trail_name]

    from moto.events import models as events_models

    original_send = events_models.Rule.send_to_targets

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        to_lambda = [t for t in self.targets if ":lambda:" in t["Arn"]]
        if to_lambda and self.event_pattern.matches_event(original_event):
            for target in to_lambda:
                LAMBDA_DELIVERIES.append((target["Arn"], dict(original_event)))
        others = [t for t in self.targets if ":lambda:" not in t["Arn"]]
        if len(others) == len(self.targets):
            original_send(self, original_event, transform_input)
            return
        kept, self.targets = self.targets, others
        try:
            original_send(self, original_event, transform_input)
        finally:
            self.targets = kept

    _patch_sqs_and_lambda()
    _patch_logs()
    _patch_lookup_events()
    _patch_stack_sets()
    # CloudTrail takes a delegated administrator on AWS; moto's list lacks it.
    from moto.organizations import models as org_models

    supported = org_models.FakeDelegatedAdministrator.SUPPORTED_SERVICES
    if "cloudtrail.amazonaws.com" not in supported:
        supported.append("cloudtrail.amazonaws.com")
    events_models.Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]
    logs_models.LogsBackend.put_metric_filter = put_metric_filter  # type: ignore[method-assign]
    trail_models.CloudTrailBackend.create_trail = create_trail  # type: ignore[method-assign]
    trail_models.CloudTrailBackend.delete_trail = delete_trail  # type: ignore[method-assign]
    _route_without_rereading()  # last: after every response class is patched
    _patched = True


def _route_without_rereading() -> None:
    """Two things moto redoes for every request, though their answer never changes while
    it runs; done once, a request costs about a third less CPU (its server's) or a
    tenth (in process):
    - its server lists moto's package directory (a stat per entry, ~170) twice, to route;
    - it lists the response class's methods (inspect.getmembers) to find the action's.
    The methods are listed after match_aws has patched its own into those classes."""
    import functools

    from moto import backends
    from moto.core import responses

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]
    method_names = responses.method_names_from_class
    listed = functools.cache(lambda cls: frozenset(method_names(cls)))
    responses.method_names_from_class = listed  # type: ignore[assignment]


def _patch_stack_sets() -> None:
    """A service-managed StackSet never deploys to the organization's management account
    ("even if the management account is in your organization or in an OU"); moto does,
    and its stack there would overwrite the management account's own rules."""
    from moto.cloudformation import models as cf_models

    original = cf_models.StackInstances.create_instances

    def create_instances(
        self: Any,
        accounts: Any,
        regions: Any,
        parameters: Any,
        deployment_targets: Any,
        permission_model: str,
    ) -> Any:
        backend = self.org_backend
        if permission_model != "SERVICE_MANAGED" or backend.org is None:
            return original(
                self, accounts, regions, parameters, deployment_targets, permission_model
            )
        management = backend.org.master_account_id
        kept = backend.accounts
        backend.accounts = [a for a in kept if a.id != management]
        try:
            return original(
                self, accounts, regions, parameters, deployment_targets, permission_model
            )
        finally:
            backend.accounts = kept

    # DeleteStackInstances with DeploymentTargets (how a service-managed StackSet names
    # them) removes the targets' instances on AWS; moto reads only Accounts and removes none.
    original_delete = cf_models.StackSet.delete_stack_instances

    def delete_stack_instances(self: Any, accounts: list[str], regions: list[str]) -> Any:
        if not accounts and self.permission_model == "SERVICE_MANAGED":
            accounts = sorted({i.account_id for i in self.instances.stack_instances})
        return original_delete(self, accounts, regions)

    # Trusted access for StackSets: off until the management account turns it on (moto
    # lacks both calls and answers them with a server error).
    from moto.cloudformation import responses as cf_responses
    from moto.core.responses import ActionResult, EmptyResult

    access: dict[str, str] = {}

    def describe_organizations_access(self: Any) -> Any:
        return ActionResult({"Status": access.get(self.current_account, "DISABLED")})

    def activate_organizations_access(self: Any) -> Any:
        access[self.current_account] = "ENABLED"
        return EmptyResult()

    response = cf_responses.CloudFormationResponse
    response.describe_organizations_access = describe_organizations_access  # type: ignore[attr-defined]
    response.activate_organizations_access = activate_organizations_access  # type: ignore[attr-defined]
    cf_models.StackInstances.create_instances = create_instances  # type: ignore[method-assign]
    cf_models.StackSet.delete_stack_instances = delete_stack_instances  # type: ignore[method-assign]


def _patch_logs() -> None:
    from moto.core.exceptions import JsonRESTError
    from moto.logs import responses

    def test_metric_filter(self: Any) -> str:
        raise JsonRESTError("UnknownOperationException", "TestMetricFilter is not emulated")

    responses.LogsResponse.test_metric_filter = test_metric_filter  # type: ignore[attr-defined]


def plant_events(
    records: list[dict[str, Any]], *, region: str | None = None, account: str = "123456789012"
) -> None:
    """Add CloudTrail records to the event history LookupEvents answers from, each in
    its own ``awsRegion`` (or ``region``). 123456789012 is moto's default account."""
    for record in records:
        where = region or str(record.get("awsRegion") or "us-east-1")
        PLANTED_EVENTS.setdefault((account, where), []).append(record)


def forget_events() -> None:
    PLANTED_EVENTS.clear()
    LOOKUP_REQUESTS.clear()
    LOOKUP_THROTTLED.clear()


# LookupEvents' attribute keys and the record field each one matches.
_LOOKUP_KEYS = {
    "EventId": lambda r: r.get("eventID"),
    "EventName": lambda r: r.get("eventName"),
    "ReadOnly": lambda r: str(r.get("readOnly", "false")).lower(),
    "Username": lambda r: (r.get("userIdentity") or {}).get("userName"),
    "EventSource": lambda r: r.get("eventSource"),
    "AccessKeyId": lambda r: (r.get("userIdentity") or {}).get("accessKeyId"),
    "ResourceType": lambda r: None,
    "ResourceName": lambda r: None,
}


def _patch_lookup_events() -> None:
    """LookupEvents as CloudTrail documents it: newest first; MaxResults 1-50 (default
    50); at most one LookupAttributes entry; StartTime/EndTime bound eventTime (no later
    than EndTime, StartTime not after it); NextToken continues exactly the same query
    and is refused for any other."""
    import hashlib
    import time
    from datetime import UTC, datetime

    from moto.cloudtrail import responses as trail_responses
    from moto.core.exceptions import JsonRESTError

    def fail(code: str, message: str) -> JsonRESTError:
        error = JsonRESTError(code, message)
        return error

    def seconds(value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, int | float):
            return float(value)
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()

    def event_seconds(record: dict[str, Any]) -> float:
        text = str(record.get("eventTime") or "1970-01-01T00:00:00Z")
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()

    def lookup_events(self: Any) -> str:
        now = time.monotonic()
        region = self.region
        if LOOKUP_RATE_LIMIT is not None:
            recent = [t for r, t in LOOKUP_REQUESTS if r == region and now - t < 1.0]
            if len(recent) >= LOOKUP_RATE_LIMIT:
                LOOKUP_THROTTLED.append((region, now))
                raise fail("ThrottlingException", "Rate exceeded")
        LOOKUP_REQUESTS.append((region, now))
        attributes = self._get_param("LookupAttributes") or []
        if len(attributes) > 1:
            raise fail(
                "InvalidLookupAttributesException",
                "You cannot use more than one lookup attribute in a single request.",
            )
        limit = self._get_param("MaxResults")
        limit = 50 if limit is None else int(limit)
        if not 1 <= limit <= 50:
            raise fail("InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
        start, end = seconds(self._get_param("StartTime")), seconds(self._get_param("EndTime"))
        if start is not None and end is not None and start > end:
            raise fail("InvalidTimeRangeException", "StartTime must be before EndTime.")
        query = json.dumps([attributes, start, end], sort_keys=True)
        digest = hashlib.sha256(query.encode()).hexdigest()[:16]
        offset = 0
        token = self._get_param("NextToken")
        if token:
            stamp, _, position = str(token).partition(".")
            if stamp != digest or not position.isdigit():
                raise fail("InvalidNextTokenException", "Invalid NextToken.")
            offset = int(position)
        records = PLANTED_EVENTS.get((self.current_account, region), [])
        matching = []
        for record in records:
            at = event_seconds(record)
            if (start is not None and at < start) or (end is not None and at > end):
                continue
            if attributes:
                key, value = attributes[0].get("AttributeKey"), attributes[0].get("AttributeValue")
                field = _LOOKUP_KEYS.get(key)
                if field is None:
                    raise fail("InvalidLookupAttributesException", f"Unknown key {key}.")
                if field(record) != value:
                    continue
            matching.append((at, record))
        matching.sort(key=lambda item: item[0], reverse=True)
        page = matching[offset : offset + limit]
        answer: dict[str, Any] = {
            "Events": [
                {
                    "EventId": r.get("eventID"),
                    "EventName": r.get("eventName"),
                    "ReadOnly": str(r.get("readOnly", "false")).lower(),
                    "EventTime": at,
                    "EventSource": r.get("eventSource"),
                    "Username": (r.get("userIdentity") or {}).get("userName"),
                    "Resources": [],
                    "CloudTrailEvent": json.dumps(r),
                }
                for at, r in page
            ]
        }
        if offset + limit < len(matching):
            answer["NextToken"] = f"{digest}.{offset + limit}"
        return json.dumps(answer)

    trail_responses.CloudTrailResponse.lookup_events = lookup_events  # type: ignore[attr-defined]


def _patch_sqs_and_lambda() -> None:
    from moto.awslambda import models as lambda_models
    from moto.sqs import models as sqs_models

    queue_attributes = sqs_models.Queue.attributes.fget  # type: ignore[attr-defined]

    def attributes(self: Any) -> dict[str, Any]:
        found = queue_attributes(self)
        allow = getattr(self, "redrive_allow_policy", None)
        if allow:
            found["RedriveAllowPolicy"] = allow if isinstance(allow, str) else json.dumps(allow)
        return found

    from moto.awslambda import policy as lambda_policy
    from moto.awslambda.exceptions import LambdaClientError

    class StatementExists(LambdaClientError):
        code = 409

        def __init__(self, sid: str) -> None:
            super().__init__(
                "ResourceConflictException", f"The statement id ({sid}) provided already exists."
            )

    add_statement = lambda_policy.Policy.add_statement

    def add_unique_statement(self: Any, raw: str, qualifier: str | None = None) -> Any:
        sid = json.loads(raw).get("StatementId") or json.loads(raw).get("Sid")
        if sid and any(s.get("Sid") == sid for s in self.statements):
            raise StatementExists(sid)
        return add_statement(self, raw, qualifier)

    put_config = lambda_models.LambdaBackend.put_function_event_invoke_config

    def put_function_event_invoke_config(self: Any, function_name: str, config: Any) -> Any:
        self.get_function(function_name).event_invoke_config = []
        return put_config(self, function_name, config)

    create_mapping = lambda_models.LambdaBackend.create_event_source_mapping

    def create_unique_mapping(self: Any, spec: dict[str, Any]) -> Any:
        # AWS refuses a second mapping of one queue to one function (moto adds it): a
        # create whose answer was lost and is retried must find ResourceConflictException.
        function = self.get_function(spec.get("FunctionName", ""))
        for mapping in self._event_source_mappings.values():
            if (
                mapping.event_source_arn == spec.get("EventSourceArn")
                and mapping.function_arn == function.function_arn
            ):
                raise LambdaClientError(
                    "ResourceConflictException",
                    f"An event source mapping with SQS arn ({mapping.event_source_arn}) and "
                    f"function ({function.function_name}) already exists. Please update or "
                    f"delete the existing mapping with UUID {mapping.uuid}",
                )
        return create_mapping(self, spec)

    def send_sqs_batch(self: Any, function_arn: str, messages: Any, queue_arn: str) -> bool:
        SQS_POLLS.append((function_arn, queue_arn))
        return False  # not processed: the messages become visible again, still queued

    sqs_models.Queue.attributes = property(attributes)  # type: ignore[method-assign,assignment]
    lambda_models.LambdaBackend.put_function_event_invoke_config = (  # type: ignore[method-assign]
        put_function_event_invoke_config
    )
    lambda_models.LambdaBackend.send_sqs_batch = send_sqs_batch  # type: ignore[method-assign]
    lambda_models.LambdaBackend.create_event_source_mapping = (  # type: ignore[method-assign]
        create_unique_mapping
    )
    lambda_policy.Policy.add_statement = add_unique_statement  # type: ignore[method-assign]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Emulator:
    """moto's server on a free loopback port, in a background thread of this process."""

    def __init__(self) -> None:
        match_aws()
        # werkzeug logs every request at INFO; the demo and the tests only want problems.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Emulator:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def reset(self) -> None:
        """Forget every resource (moto's reset API) and every planted event."""
        forget_events()
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass
