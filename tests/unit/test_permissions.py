"""The operator policy is derived from what the engine really calls, not copied by hand.

The real engine runs in-process against the emulator (setup twice, setup after
drift, setup after a config change, status, teardown with --delete-bucket and
--delete-trail-logs). Every API call is recorded per command with its
parameters, then checked three ways against ``loginwatch.permissions``:
- the operation is declared for that command (and every declared operation is
  seen, except a short documented list of paths the emulator cannot reach);
- each IAM action it maps to is in ``actions_for(EXAMPLE_CONFIG, [command])``;
- the policy for that command allows the action *on the resource the call
  targets* (a small evaluator: Allow statements, IAM wildcards, PassRole's
  iam:PassedToService condition).
"""

from __future__ import annotations

import fnmatch
import io
import json
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from loginwatch import attached_policies as policies
from loginwatch import engine
from loginwatch import operator_policy as permissions
from loginwatch.alert_drill import Clock, via_alarm, via_fast_path, via_lambda
from loginwatch.aws import Aws, CallRecorder, is_read
from loginwatch.cli import _fast_path_test_region
from loginwatch.config import Config, KmsKeys, parse_config
from loginwatch.names import Names
from loginwatch.notifier.protocol import HEARTBEAT_NAMESPACE
from loginwatch.operator_policy import (
    API_TO_IAM,
    COMMANDS,
    MANAGED_POLICY_LIMIT,
    NO_RESOURCE_LEVEL_SID,
    REDELIVER,
    REVIEW,
    SETUP,
    STATUS,
    TEARDOWN,
    TEST_ALERT,
    iam_actions,
    parse_commands,
    policy_size,
)
from loginwatch.review.run import review as run_review
from tests.support.cli import BASE_CONFIG, ONE_FORWARDING_REGION
from tests.support.inprocess import SilentProgress, load

SERVICES = (
    "sts", "s3", "cloudtrail", "logs", "iam", "sns", "cloudwatch", "ssm", "lambda", "sqs",
)  # fmt: skip
CHANGED_WEBHOOK = "https://hooks.slack.com/services/T000/B000/changedSECRETwebhook"

# Declared operations the emulator run cannot reach, and why. Anything else
# declared but never called is a needless grant and fails the test.
ALL_RULES = """
rules:
  root_sign_in: {}
  no_mfa: {}
  failed_sign_ins: {threshold: 3, minutes: 5}
"""
# The second voice (its creation runs setup's first self-check) and a schedule changed.
SECOND_VOICE = """
self_check:
  schedule: rate(2 hours)
  email: security@example.com
"""
URGENT_DESTINATION = """\
  destinations:
    - name: urgent
      webhook_url: http://127.0.0.1:9/urgent
      severities: [critical]
"""


def with_destination(config_text: str) -> str:
    """The config with a second Slack destination under `slack:`."""
    webhook = "  webhook_url: ${LW_WEBHOOK}\n"
    assert webhook in config_text
    return config_text.replace(webhook, webhook + URGENT_DESTINATION)


NOT_EXERCISED = {
    # (sns Unsubscribe is exercised: the second voice's email subscription is removed.)
    SETUP: {("s3", "ListObjectsV2")},  # only for a bucket left untagged by an interrupted run
    STATUS: {("s3", "ListObjectsV2")},
    TEARDOWN: {("s3", "ListObjectsV2")},
}


# ---------------------------------------------------------------- recording


@dataclass
class Call:
    service: str
    operation: str
    params: dict[str, Any]
    region: str = "us-east-1"


@dataclass
class Recording:
    """Per command: aws.recorder's (service, operation) list, and every call's parameters."""

    aws: Aws
    calls: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    detailed: dict[str, list[Call]] = field(default_factory=lambda: defaultdict(list))
    current: str | None = None

    def __post_init__(self) -> None:
        # Every client the engine gets, in any region, now or later, reports its parameters.
        hooked: set[int] = set()
        original = self.aws.client

        def client(service: str, region: str | None = None) -> Any:
            made = original(service, region)
            if id(made) not in hooked:
                hooked.add(id(made))
                made.meta.events.register("before-parameter-build.*.*", self._parameters)
            return made

        self.aws.client = client  # type: ignore[method-assign]
        for service in SERVICES:
            self.aws.client(service)

    def _parameters(self, params: dict[str, Any], model: Any, **kwargs: Any) -> None:
        if self.current is not None:
            region = kwargs["context"].get("client_region") or self.aws.region
            call = Call(model.service_model.service_name, model.name, dict(params), region)
            self.detailed[self.current].append(call)

    @contextmanager
    def command(self, command: str) -> Iterator[None]:
        self.aws.recorder = CallRecorder()
        self.current = command
        try:
            self.aws.client("sts").get_caller_identity()  # every command connects first
            yield
        finally:
            self.calls[command].extend(self.aws.recorder.calls)
            self.current = None


def _raw(aws: Aws, service: str) -> Any:
    """A client outside loginwatch's recorder, for making drift behind its back."""
    return aws.session.client(service, region_name=aws.region)


def _drift(aws: Aws, names: Names) -> None:
    """Change resources behind loginwatch's back so setup's update paths run."""
    trail = _raw(aws, "cloudtrail")
    trail.stop_logging(Name=names.trail)
    trail.update_trail(Name=names.trail, IncludeGlobalServiceEvents=False)
    trail.put_event_selectors(
        TrailName=names.trail,
        EventSelectors=[{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}],
    )
    iam = _raw(aws, "iam")
    other_trust = policies.trust_policy("ec2.amazonaws.com", names, source_account=False)
    iam.update_assume_role_policy(
        RoleName=names.notifier_role, PolicyDocument=json.dumps(other_trust)
    )
    iam.delete_role_policy(RoleName=names.trail_role, PolicyName="loginwatch")
    _raw(aws, "sns").set_topic_attributes(
        TopicArn=names.topic_arn,
        AttributeName="Policy",
        AttributeValue=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )
    _raw(aws, "logs").put_retention_policy(logGroupName=names.notifier_log_group, retentionInDays=7)
    _raw(aws, "cloudwatch").put_metric_alarm(
        AlarmName=names.alarm,
        MetricName=names.metric_name,
        Namespace=names.metric_namespace,
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=5.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    lam = _raw(aws, "lambda")
    lam.update_function_configuration(FunctionName=names.function, MemorySize=256)
    lam.remove_permission(FunctionName=names.function, StatementId=names.permission_sid)
    lam.add_permission(
        FunctionName=names.function,
        StatementId=names.permission_sid,
        Action="lambda:InvokeFunction",
        Principal="sns.amazonaws.com",
        SourceArn=f"arn:aws:sns:{names.region}:{names.account}:someone-elses-topic",
    )
    _raw(aws, "s3").delete_public_access_block(Bucket=names.bucket)
    _raw(aws, "events").put_targets(
        Rule=names.sign_in_rule,
        Targets=[{"Id": "someone-else", "Arn": f"arn:aws:sqs:us-east-1:{names.account}:q"}],
    )
    _raw(aws, "dynamodb").update_table(
        TableName=names.claims_table,
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
    )
    sqs = _raw(aws, "sqs")
    retry = sqs.get_queue_url(QueueName=names.retry_queue)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=retry, Attributes={"VisibilityTimeout": "30"})
    lam.put_function_event_invoke_config(FunctionName=names.function, MaximumRetryAttempts=0)
    (mapping,) = lam.list_event_source_mappings(FunctionName=names.function)["EventSourceMappings"]
    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)


def _apply(config: Any, aws: Aws) -> list[engine.StepResult]:
    return engine.apply(engine.build_deployment(config, aws), SilentProgress())


class _Body(io.BytesIO):
    """An HTTP body botocore can both stream and read (Invoke's payload is streamed)."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def _test_alert(recording: Recording, config: Any, aws: Aws) -> None:
    """Both AWS routes of test-alert, as the CLI runs them (connect, then the route)."""
    names = Names.for_config(config, aws.account_id, aws.partition)
    answer = json.dumps({"outcome": "test-posted", "test_id": "t-perm", "slack_status": 200})

    def invoked(request: Any, **_: Any) -> AWSResponse:
        # The emulator runs functions in Docker: answer Invoke as the notifier would.
        return AWSResponse(request.url, 200, {}, _Body(answer.encode()))

    lam = aws.client("lambda")
    lam.meta.events.register("before-send.lambda.Invoke", invoked)
    try:
        with recording.command(TEST_ALERT):
            assert via_lambda(aws, names, "t-perm").delivered
        with recording.command(TEST_ALERT):
            # Nothing delivers in the emulator: time out at once, so diagnose() runs too.
            drill = engine.drill_deployment(config, aws)
            result = via_alarm(drill, "t-perm", timeout=0, clock=Clock(sleep=lambda _: None))
        assert not result.delivered and result.diagnosis
        with recording.command(TEST_ALERT):
            # The emulator's EventBridge invokes no target: nothing arrives, diagnose() runs.
            region = _fast_path_test_region(config, aws)
            result = via_fast_path(
                drill, "t-perm", region=region, timeout=0, clock=Clock(sleep=lambda _: None)
            )
        assert not result.delivered and result.diagnosis
    finally:
        lam.meta.events.unregister("before-send.lambda.Invoke", invoked)


def _redeliver(recording: Recording, config: Any, aws: Aws) -> None:
    """An undelivered alert in the final queue and in another region's events queue:
    listed, then handed to the notifier (Invoke answered as the notifier would)."""
    from loginwatch.redeliver import lambda_invoker, redeliver

    names = Names.for_config(config, aws.account_id, aws.partition)
    other = _fast_path_test_region(config, aws)
    for queue, region in (
        (names.final_queue, names.region),
        (names.events_dead_letter_queue, other),
    ):
        sqs = aws.session.client("sqs", region_name=region)
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"detail-type": "x", "detail": {}}))

    def invoked(request: Any, **_: Any) -> AWSResponse:
        (record,) = json.loads(request.body)["Records"]
        answer = {"batchItemFailures": [], "results": [
            {"itemIdentifier": record["messageId"], "outcome": "ignored"}
        ]}  # fmt: skip
        return AWSResponse(request.url, 200, {}, _Body(json.dumps(answer).encode()))

    lam = aws.client("lambda")
    lam.meta.events.register("before-send.lambda.Invoke", invoked)
    try:
        with recording.command(REDELIVER):
            # Building it reads the enabled regions (the self-check's settings name them).
            deployment = engine.build_deployment(config, aws, strict=False)
            listed = redeliver(deployment, lambda_invoker(aws, names), dry_run=True)
        with recording.command(REDELIVER):
            done = redeliver(deployment, lambda_invoker(aws, names))
    finally:
        lam.meta.events.unregister("before-send.lambda.Invoke", invoked)
    assert len(listed) == 2 and [i.delivered for i in done] == [True, True]


def _status_and_teardown(recording: Recording, config: Any, aws: Aws) -> None:
    with recording.command(STATUS):
        report = engine.status(engine.build_deployment(config, aws, strict=False))
    assert not [r for r in report.resources if r.state == "missing"], report.problems
    _test_alert(recording, config, aws)
    _redeliver(recording, config, aws)
    with recording.command(REVIEW):  # the history (none planted: each region read once)
        run_review(config, aws, days=7, sleep=lambda _: None)
    if config.existing_trail is None:  # what CloudTrail would have delivered: emptied by teardown
        bucket = Names.for_config(config, aws.account_id, aws.partition).bucket
        s3 = _raw(aws, "s3")
        # The emulator applies the TLS-only Deny without its condition: lift it meanwhile.
        policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
        s3.delete_bucket_policy(Bucket=bucket)
        for day in ("01", "02"):
            key = f"AWSLogs/{aws.account_id}/CloudTrail/us-east-1/2025/01/{day}/events.json.gz"
            s3.put_object(Bucket=bucket, Key=key, Body=b"{}")
        s3.put_bucket_policy(Bucket=bucket, Policy=policy)
    with recording.command(TEARDOWN):
        deployment = engine.build_deployment(config, aws, strict=False)
        items = engine.teardown_plan(deployment, delete_bucket=True, delete_trail_logs=True)
        engine.teardown(items, lambda _: None)
    assert all(i.action in ("delete", "keep") or not i.resource.wanted for i in items)


# ---------------------------------------------------------------- checking


def _arn(names: Names, service: str, resource: str, region: str | None = None) -> str:
    return f"arn:{names.partition}:{service}:{region or names.region}:{names.account}:{resource}"


def _log_group(names: Names, params: dict[str, Any], action: str) -> str:
    if "resourceArn" in params:  # the tagging APIs take the bare log-group ARN
        return params["resourceArn"]
    arn = names.log_group_arn(params["logGroupName"])
    # CreateLogGroup's tags are checked on the bare ARN, every other action on ARN:*.
    return arn if action == "logs:TagResource" else f"{arn}:*"


_queried: list[str] = []  # the log groups of review's Logs Insights queries, in order


def targets(names: Names, call: Call, action: str) -> list[tuple[str, str | None]]:
    """The (resource ARN, service the role is passed to) an IAM action is checked on."""
    p, service = call.params, call.service
    if action == "iam:PassRole":
        if service == "cloudtrail":
            return [(p["CloudWatchLogsRoleArn"], "cloudtrail.amazonaws.com")]
        if service == "events":
            return [(t["RoleArn"], "events.amazonaws.com") for t in p["Targets"] if "RoleArn" in t]
        if service == "scheduler":
            return [(p["Target"]["RoleArn"], "scheduler.amazonaws.com")]
        return [(p["Role"], "lambda.amazonaws.com")]
    if action in ("s3:DeleteObject", "s3:DeleteObjectVersion"):
        return [(f"{names.bucket_arn}/{o['Key']}", None) for o in p["Delete"]["Objects"]]
    if (service, call.operation) in NO_RESOURCE_LEVEL:
        return [("*", None)]
    if (service, call.operation) == ("cloudformation", "CreateStackSet"):
        if action == "cloudformation:TagResource":  # tags are authorised on the StackSet
            return [(_arn(names, service, f"stackset/{p['StackSetName']}:new", call.region), None)]
        tags = {t["Key"]: t["Value"] for t in p.get("Tags", [])}
        return [("*", {f"aws:RequestTag/{k}": v for k, v in tags.items()})]
    if (service, call.operation) == ("organizations", "ListAccountsForParent"):
        parent = p["ParentId"]
        kind = "root" if parent.startswith("r-") else "ou"
        org = _raw_org_id(names)
        return [
            (f"arn:{names.partition}:organizations::{names.account}:{kind}/{org}/{parent}", None)
        ]
    if service == "s3":
        return [(f"arn:{names.partition}:s3:::{p['Bucket']}", None)]
    if service == "cloudtrail":
        ids = p.get("ResourceIdList") or [p.get("Name") or p["TrailName"]]
        return [
            (i if i.startswith("arn:") else _arn(names, service, f"trail/{i}"), None) for i in ids
        ]
    if service == "logs":
        if call.operation == "StartQuery":
            _queried.append(p["logGroupName"])
        if call.operation == "GetQueryResults":
            # Authorised on the queried log group (AWS's catalogue): the request names only
            # the query, so the group is the one the StartQuery before it named.
            return [(_log_group(names, {"logGroupName": _queried[-1]}, action), None)]
        return [(_log_group(names, p, action), None)]
    if service == "iam":
        return [(names.role_arn(p["RoleName"]), None)]
    if service == "sns":
        if "SubscriptionArn" in p:
            return [(p["SubscriptionArn"].rsplit(":", 1)[0], None)]
        arn = p.get("TopicArn") or p.get("ResourceArn") or _arn(names, "sns", p["Name"])
        return [(arn, None)]
    if service == "cloudwatch":
        if "ResourceARN" in p:
            return [(p["ResourceARN"], None)]
        alarms = p.get("AlarmNames") or [p["AlarmName"]]
        return [(_arn(names, service, f"alarm:{a}"), None) for a in alarms]
    if service == "ssm":
        name = p.get("Name") or p["ResourceId"]
        return [(_arn(names, service, f"parameter{name}"), None)]
    if service == "lambda":
        if call.operation == "CreateEventSourceMapping":
            # No resource type: "*", on the condition of our function.
            return [("*", {"lambda:FunctionArn": names.function_arn})]
        if call.operation.endswith("EventSourceMapping"):
            # Generated ids: the policy names every mapping, on the condition of our function.
            mapping = _arn(names, service, f"event-source-mapping:{p.get('UUID', 'new')}")
            return [(mapping, {"lambda:FunctionArn": names.function_arn})]
        fn = p["FunctionName"]
        return [(fn if fn.startswith("arn:") else _arn(names, service, f"function:{fn}"), None)]
    if service == "sqs":
        if "QueueUrl" in p:  # https://sqs.<region>.amazonaws.com/<account>/<name>
            account, queue = p["QueueUrl"].rstrip("/").split("/")[-2:]
            return [(f"arn:{names.partition}:sqs:{call.region}:{account}:{queue}", None)]
        return [(_arn(names, service, p["QueueName"], call.region), None)]
    if service == "cloudformation":
        return [(_arn(names, service, f"stackset/{p['StackSetName']}:id", call.region), None)]
    if service == "events":
        if "ResourceARN" in p:
            return [(p["ResourceARN"], None)]
        if call.operation in ("PutPermission", "RemovePermission"):
            return [("*", None)]  # no resource type (AWS's catalogue)
        if call.operation == "DescribeEventBus":
            bus = p.get("Name") or p.get("EventBusName") or "default"
            return [(_arn(names, service, f"event-bus/{bus}", call.region), None)]
        if call.operation == "PutEvents":
            buses = {e.get("EventBusName", "default") for e in p["Entries"]}
            return [(_arn(names, service, f"event-bus/{b}", call.region), None) for b in buses]
        rule = p.get("Name") or p["Rule"]
        return [(_arn(names, service, f"rule/{rule}", call.region), None)]
    if service == "scheduler":
        group = p.get("GroupName", "default")
        return [(_arn(names, service, f"schedule/{group}/{p['Name']}", call.region), None)]
    if service == "dynamodb":
        if "ResourceArn" in p:
            return [(p["ResourceArn"], None)]
        return [(_arn(names, service, f"table/{p['TableName']}", call.region), None)]
    raise AssertionError(f"no resource rule for {service}:{call.operation}")


NO_RESOURCE_LEVEL = {
    ("sts", "GetCallerIdentity"),
    ("cloudtrail", "LookupEvents"),
    ("ec2", "DescribeRegions"),
    ("logs", "DescribeLogGroups"),
    ("cloudtrail", "DescribeTrails"),
    ("cloudwatch", "GetMetricStatistics"),
    ("lambda", "ListEventSourceMappings"),
    ("logs", "TestMetricFilter"),
    ("ssm", "DescribeParameters"),
    ("events", "ListRules"),  # the access-key rules, listed by name prefix
    ("organizations", "DescribeOrganization"),
    ("organizations", "ListRoots"),
    ("organizations", "ListDelegatedAdministrators"),
    ("organizations", "ListAccounts"),
    ("cloudformation", "DescribeOrganizationsAccess"),
    ("cloudformation", "ActivateOrganizationsAccess"),
}


def _raw_org_id(names: Names) -> str:
    """The emulator's organization id (ListAccountsForParent is granted on its root and OUs)."""
    import boto3

    return str(
        boto3.client("organizations", region_name=names.region).describe_organization()[
            "Organization"
        ]["Id"]
    )


def as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value)


def allows(
    policy: dict[str, Any], action: str, resource: str, context: str | dict[str, str] | None
) -> bool:
    """Does an Allow statement cover the request? (No Deny is ever generated.)

    ``context``: the service a role is passed to, or the request's condition keys."""
    if isinstance(context, str) or context is None:
        context = {"iam:PassedToService": context} if context else {}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        if action not in as_list(statement["Action"]):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in as_list(statement["Resource"])):
            continue
        condition = statement.get("Condition")
        if condition is None:
            return True
        if set(condition) == {"StringEquals"} and all(
            context.get(key) == value for key, value in condition["StringEquals"].items()
        ):
            return True
    return False


# Request parameters that make AWS check a second action (documented in each API
# reference): tags at creation need the service's tagging action, a role handed to
# a service needs iam:PassRole, an Object Ownership header s3:PutBucketOwnershipControls.
TAG_PARAMETERS = ("Tags", "tags", "TagsList")
ROLE_PARAMETERS = ("Role", "CloudWatchLogsRoleArn")


def required_actions(call: Call) -> list[str]:
    """What IAM checks for the call: its mapped actions, and PassRole for a target's role."""
    actions = list(iam_actions((call.service, call.operation)))
    if _implied_pass_role(call) and any("RoleArn" in t for t in call.params.get("Targets") or []):
        actions.append("iam:PassRole")
    return actions


def _implied_pass_role(call: Call) -> bool:
    """EventBridge targets hand their role over: declared as an implied iam:PassRole."""
    return call.service == "events" and call.operation == "PutTargets"


def implied_problems(command: str, call: Call) -> list[str]:
    op = (call.service, call.operation)
    mapped = iam_actions(op)
    problems = []
    if any(call.params.get(p) for p in TAG_PARAMETERS) and not any(
        "Tag" in a.split(":")[1] and a.split(":")[0] == call.service for a in mapped
    ):
        problems.append(f"{command}: {op} passes tags but maps to no tagging action")
    passes_role = any(call.params.get(p) for p in ROLE_PARAMETERS) or any(
        "RoleArn" in t for t in call.params.get("Targets") or [] if isinstance(t, dict)
    )
    if passes_role and "iam:PassRole" not in mapped and not _implied_pass_role(call):
        problems.append(f"{command}: {op} passes a role but does not map to iam:PassRole")
    if call.params.get("ObjectOwnership") and "s3:PutBucketOwnershipControls" not in mapped:
        problems.append(f"{command}: {op} sets Object Ownership without its permission")
    return problems


# ---------------------------------------------------------------- the policy, as the CLI builds it

ACCOUNT = "123456789012"


def example_config(name: str = "loginwatch", kms: KmsKeys | None = None, **changes: Any) -> Config:
    config = load(BASE_CONFIG.replace("name: lwtest", f"name: {name}"))
    return replace(config, kms=kms or KmsKeys(), **changes)


def deployment_of(config: Config, trail_log_group: str | None = None) -> Any:
    return engine.offline_deployment(config, ACCOUNT, trail_log_group=trail_log_group)


def operator_policy(
    config: Config, commands: Any, *, compact: bool = False, trail_log_group: str | None = None
) -> dict[str, Any]:
    """What `loginwatch permissions --account` prints: derived from resources_for alone."""
    resources = engine.resources_for(deployment_of(config, trail_log_group))
    return permissions.operator_policy(resources, commands, compact=compact)


def actions_for(config: Config, commands: Any, trail_log_group: str | None = None) -> set[str]:
    policy = operator_policy(config, commands, trail_log_group=trail_log_group)
    return {a for s in policy["Statement"] for a in as_list(s["Action"])}


def operations_for(
    config: Config, commands: Any, trail_log_group: str | None = None
) -> set[tuple[str, str]]:
    resources = engine.resources_for(deployment_of(config, trail_log_group))
    return permissions.operations_for(resources, commands)


def unmet(
    recording: Recording,
    config: Config,
    names: Names,
    command: str,
    trail_log_group: str | None = None,
) -> list[str]:
    """Every recorded call of ``command`` the policy would not allow, as readable lines."""
    problems = []
    declared = operations_for(config, [command], trail_log_group)
    granted = actions_for(config, [command], trail_log_group)
    for compact in (False, True):
        policy = operator_policy(
            config, [command], compact=compact, trail_log_group=trail_log_group
        )
        for call in recording.detailed[command]:
            op = (call.service, call.operation)
            problems.extend(implied_problems(command, call))
            if op not in declared:
                problems.append(f"{command}: {op} is called but not declared by any resource")
            for action in required_actions(call):
                if action not in granted:
                    problems.append(f"{command}: {action} (for {op}) not in actions_for")
                for resource, passed_to in targets(names, call, action):
                    if not allows(policy, action, resource, passed_to):
                        problems.append(
                            f"{command}{' (compact)' if compact else ''}: "
                            f"{action} on {resource} not allowed (for {op})"
                        )
    return sorted(set(problems))


# ---------------------------------------------------------------- the runs


def test_every_call_of_setup_status_teardown_is_granted(aws_mocked: Aws) -> None:
    aws = aws_mocked
    recording = Recording(aws)
    config = load()
    names = Names.for_config(config, aws.account_id, aws.partition)

    with recording.command(SETUP):
        first = _apply(config, aws)
        again = _apply(config, aws)
    # "none": the rules this config leaves off have nothing to remove.
    assert {r.action for r in first} == {"create", "none"}
    assert {r.action for r in again} == {"unchanged", "none"}

    _drift(aws, names)
    with recording.command(SETUP):
        repaired = _apply(config, aws)
    updated = {r.resource.kind for r in repaired if r.action == "update"}
    assert updated >= {"bucket", "trail-role", "trail", "topic", "alarm", "notifier-role"}
    assert updated >= {"notifier-log-group", "function", "invoke-permission"}
    assert updated >= {"sign-in-rule", "claims-table"}
    assert updated >= {"retry-queue", "failure-destination", "retry-mapping"}

    # Every rule on, and a second Slack destination: their filters, alarms and parameter.
    moved = BASE_CONFIG.replace("203.0.113.10", "203.0.113.99")
    changed_text = with_destination(moved) + ALL_RULES + SECOND_VOICE
    changed = parse_config(changed_text, "test.yaml", {"LW_WEBHOOK": CHANGED_WEBHOOK})
    with recording.command(SETUP):
        reconfigured = _apply(changed, aws)
    updated = {r.resource.kind for r in reconfigured if r.action == "update"}
    assert updated == {"metric-filter", "webhook-parameter", "function", "schedule"}
    created = {r.resource.kind for r in reconfigured if r.action == "create"}
    assert created == {
        "metric-filter",
        "alarm",
        "destination-parameter",
        "second-voice-topic",
        "email-subscription",
        "errors-alarm",
        "heartbeat-alarm",
    }

    # Rules, the destination and the fast path turned off: setup removes what they made,
    # then they are turned back on.
    fast_off = parse_config(
        moved + "fast_path:\n  enabled: false\nself_check:\n  enabled: false\n",
        "test.yaml",
        {"LW_WEBHOOK": CHANGED_WEBHOOK},
    )
    with recording.command(SETUP):
        removed = _apply(fast_off, aws)
        _apply(changed, aws)
    assert {r.resource.kind for r in removed if r.action == "remove"} == {
        "events-dead-letter-queue",
        "events-permission",
        "sign-in-rule",
        "forwarding-role",
        "forwarding-rule",
        # tamper's rules (on by default) go with the fast path; its backstop stays.
        "watch-rules",
        "watch-rules-permission",
        "metric-filter",
        "alarm",
        "destination-parameter",
        # the self-check off: its schedule and role, and the second voice
        "schedule",
        "scheduler-role",
        "second-voice-topic",
        "email-subscription",
        "errors-alarm",
        "heartbeat-alarm",
    }

    _status_and_teardown(recording, changed, aws)

    for command in COMMANDS:
        assert recording.calls[command], command
        # the parameter hook saw exactly what aws.recorder saw (status reads concurrently)
        assert sorted((c.service, c.operation) for c in recording.detailed[command]) == sorted(
            recording.calls[command]
        )
        assert unmet(recording, changed, names, command) == []
        seen = set(recording.calls[command])
        declared = operations_for(changed, [command])
        assert declared - seen == NOT_EXERCISED.get(command, set()), command
    assert all(is_read(op) for _, op in recording.calls[STATUS])


def test_organization_mode_calls_are_granted(aws_mocked: Aws) -> None:
    """The organization trail, the central bus policy, the StackSet and its instances."""
    aws = aws_mocked
    orgs = _raw(aws, "organizations")
    orgs.create_organization(FeatureSet="ALL")
    orgs.create_account(AccountName="production", Email="prod@example.com")
    # One forwarding region stands for all (each runs the same code): the StackSet's
    # instances and the home account's rules in 20 regions would only cost time.
    config = load(ONE_FORWARDING_REGION + "organization:\n  enabled: true\n")
    names = Names.for_config(config, aws.account_id, aws.partition)
    recording = Recording(aws)
    with recording.command(SETUP):
        first = _apply(config, aws)
        again = _apply(config, aws)
    created = {r.resource.kind for r in first if r.action == "create"}
    org_kinds = {"organization-bus-policy", "member-stack-set", "member-stack-instances"}
    assert org_kinds <= created
    assert {r.action for r in again} == {"unchanged", "none"}
    # The fast path off: setup removes the StackSet (its instances first) and the bus
    # statement, in list order; then back on.
    off = load(BASE_CONFIG + "organization:\n  enabled: true\nfast_path:\n  enabled: false\n")
    with recording.command(SETUP):
        removed = _apply(off, aws)
        _apply(config, aws)
    assert org_kinds <= {r.resource.kind for r in removed if r.action == "remove"}
    _status_and_teardown(recording, config, aws)
    for command in COMMANDS:
        assert unmet(recording, config, names, command) == [], command


def test_reused_trail_calls_are_granted(aws_mocked: Aws) -> None:
    """Reuse mode: no bucket, trail or trail role of our own; the filter sits on their group."""
    aws = aws_mocked
    owner = load()  # makes the trail that the second config reuses
    _apply(owner, aws)
    owner_names = Names.for_config(owner, aws.account_id, aws.partition)
    reuse_text = BASE_CONFIG.replace("name: lwtest", "name: lwreuse") + (
        f"trail:\n  existing: {owner_names.trail}\n"
    )
    config = load(reuse_text)
    names = Names.for_config(config, aws.account_id, aws.partition)
    recording = Recording(aws)

    with recording.command(SETUP):
        results = _apply(config, aws)
        _apply(config, aws)
    assert results[0].action == "in use"
    _status_and_teardown(recording, config, aws)

    group = owner_names.trail_log_group
    for command in COMMANDS:
        assert unmet(recording, config, names, command, group) == []
        declared = operations_for(config, [command], group)  # once, not once per call
        for call in recording.calls[command]:
            assert call in declared
    policy = json.dumps(operator_policy(config, ["all"], trail_log_group=group))
    assert owner_names.bucket not in policy and owner_names.trail_role not in policy
    assert f"log-group:{owner_names.trail_log_group}" in policy
    # their trail is read, never changed
    trail_statements = [
        s
        for s in operator_policy(config, ["all"], trail_log_group=group)["Statement"]
        if "cloudtrail" in str(s)
    ]
    assert {a for s in trail_statements for a in as_list(s["Action"])} >= {
        "cloudtrail:GetTrail",
        "cloudtrail:GetTrailStatus",
    }
    assert all(
        a.startswith(("cloudtrail:Get", "cloudtrail:Lookup"))
        or a == "cloudtrail:DescribeTrails"
        or ":" not in a
        for s in trail_statements
        for a in as_list(s["Action"])
        if a.startswith("cloudtrail:")
    )


# ---------------------------------------------------------------- the policy's shape

EXAMPLE_CONFIG = example_config()
EXAMPLE = Names.for_config(EXAMPLE_CONFIG, ACCOUNT)
REUSING = example_config(existing_trail="org-trail")


def resources(policy: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s.get("Sid", ""), r) for s in policy["Statement"] for r in as_list(s["Resource"])]


def allowed_wildcard(names: Names, resource: str) -> bool:
    """The only `*`s AWS leaves us: ARN suffixes inside one named resource."""
    log_groups = (names.trail_log_group, names.notifier_log_group)
    return resource in {
        f"{names.bucket_arn}/*",
        f"{names.bucket_arn}/AWSLogs/{names.account}/*",
        *(f"{names.log_group_arn(g)}:*" for g in log_groups),
        *(f"{names.log_group_arn(g)}:log-stream:*" for g in log_groups),
        # our one rule name, in every region the fast path covers, and its queue
        names.rule_arn("*"),
        names.queue_arn(names.events_dead_letter_queue, "*"),
        # the retry mapping's id is generated (granted on the condition of our function)
        names.event_source_mappings_arn,
        # the rules' alarms (one prefix), both topics (one prefix) and every parameter
        # of ours (its own path: the webhooks, the heartbeat URL)
        names.rule_alarms_arn,
        names.topics_arn,
        names.queues_arn,
        names.parameters_arn,
        names.destination_parameter_arn("*"),
        # every EventBridge rule of ours (the access-key rules' number follows the allowlist)
        names.rules_arn("*"),
    }


@pytest.mark.parametrize("compact", [False, True])
@pytest.mark.parametrize("command", [*COMMANDS, "all"])
def test_every_resource_is_scoped_to_the_config(command: str, compact: bool) -> None:
    policy = operator_policy(EXAMPLE_CONFIG, [command], compact=compact)
    assert policy["Version"] == "2012-10-17"
    sids = [s.get("Sid") for s in policy["Statement"]]
    if command == "all" and compact:
        # Too big with them: the compact policy leaves out the (optional) Sids.
        assert sids == [None] * len(sids)
    else:
        assert len(sids) == len(set(sids)) and all(sid and sid.isalnum() for sid in sids)
    for statement in policy["Statement"]:
        for resource in as_list(statement["Resource"]):
            if resource == "*":
                # the reads AWS cannot scope, and the one write AWS authorises only on "*"
                # (no resource type: test_iam_catalogue.py), narrowed to our function
                actions = as_list(statement["Action"])
                if all(is_read(a.split(":")[1]) for a in actions):
                    assert "Condition" not in statement
                else:
                    assert actions == ["lambda:CreateEventSourceMapping"], statement
                    assert statement["Condition"] == {
                        "StringEquals": {"lambda:FunctionArn": EXAMPLE.function_arn}
                    }
                continue
            if resource == EXAMPLE.event_bus_arn("*"):
                # the account's own buses, test events only
                assert statement["Action"] == "events:PutEvents"
                continue
            if resource == EXAMPLE.event_source_mappings_arn:
                # generated ids: scoped by the function they invoke instead
                assert statement["Condition"] == {
                    "StringEquals": {"lambda:FunctionArn": EXAMPLE.function_arn}
                }
                continue
            assert EXAMPLE.name in resource, (statement, resource)
            assert EXAMPLE.account in resource or resource.startswith(EXAMPLE.bucket_arn)
            assert "*" not in resource or allowed_wildcard(EXAMPLE, resource), resource
    for statement in policy["Statement"]:
        assert all("*" not in a and a.count(":") == 1 for a in as_list(statement["Action"])), (
            statement
        )


def test_the_no_resource_statement_is_minimal_and_read_only() -> None:
    policy = operator_policy(EXAMPLE_CONFIG, ["all"])
    star = [s for s in policy["Statement"] if "*" in as_list(s["Resource"])]
    # The write AWS authorises only on "*" has a statement of its own, with its condition.
    assert [s["Sid"] for s in star] == [NO_RESOURCE_LEVEL_SID, "SetupCreateRetryMapping"]
    assert star[1]["Condition"] == {"StringEquals": {"lambda:FunctionArn": EXAMPLE.function_arn}}
    actions = set(as_list(star[0]["Action"]))
    assert actions == {
        "sts:GetCallerIdentity",
        "logs:DescribeLogGroups",
        "cloudtrail:DescribeTrails",
        "cloudwatch:GetMetricStatistics",
        "ec2:DescribeRegions",  # which regions the fast path covers
        "lambda:ListEventSourceMappings",  # the retry mapping has a generated id
        "logs:TestMetricFilter",  # AWS's verdict on the pattern before setup writes it
        "ssm:DescribeParameters",  # which destinations' webhooks an earlier setup stored
        "events:ListRules",  # the access-key rules: their number follows the allowlist
        "cloudtrail:LookupEvents",  # review: the sign-in history (no resource type)
    }
    assert all(is_read(a.split(":")[1]) for a in actions)
    assert "Condition" not in star[0]


def test_status_is_read_only() -> None:
    for compact in (False, True):
        policy = operator_policy(EXAMPLE_CONFIG, [STATUS], compact=compact)
        actions = {a for s in policy["Statement"] for a in as_list(s["Action"])}
        assert actions == actions_for(EXAMPLE_CONFIG, [STATUS])
        writes = {
            a
            for a in actions
            if not a.split(":")[1].startswith(("Get", "List", "Describe", "Filter"))
        }
        assert writes == set()
    assert all(
        s["Sid"].startswith("Read") for s in operator_policy(EXAMPLE_CONFIG, [STATUS])["Statement"]
    )


def test_commands_are_grouped_by_sid_prefix() -> None:
    prefixes = {SETUP: "Setup", TEARDOWN: "Teardown", TEST_ALERT: "TestAlert"}
    everything = operator_policy(EXAMPLE_CONFIG, ["all"])["Statement"]
    for command, prefix in prefixes.items():
        alone = {s["Sid"] for s in operator_policy(EXAMPLE_CONFIG, [command])["Statement"]}
        assert {s["Sid"] for s in everything if s["Sid"].startswith(prefix)} <= alone
        assert all(sid.startswith((prefix, "Read")) for sid in alone)
    # "all" is the union of the four commands
    union = set().union(*(actions_for(EXAMPLE_CONFIG, [c]) for c in COMMANDS))
    assert (
        actions_for(EXAMPLE_CONFIG, ["all"]) == union == actions_for(EXAMPLE_CONFIG, list(COMMANDS))
    )


def test_test_alert_gets_exactly_what_it_calls() -> None:
    assert actions_for(EXAMPLE_CONFIG, [TEST_ALERT]) == {
        "sts:GetCallerIdentity",
        # --via fast-path: pick a region, put the test event, check the path's links
        "ec2:DescribeRegions",
        "events:PutEvents",
        "events:DescribeRule",
        "events:ListTargetsByRule",
        "events:ListTagsForResource",  # the diagnosis reads each link as status does
        "iam:GetRole",
        "iam:GetRolePolicy",
        "cloudwatch:SetAlarmState",
        "cloudwatch:GetMetricStatistics",
        "logs:FilterLogEvents",
        "lambda:InvokeFunction",
        "lambda:GetPolicy",
        "sns:ListSubscriptionsByTopic",
    }
    policy = operator_policy(EXAMPLE_CONFIG, [TEST_ALERT])
    assert allows(
        policy,
        "logs:FilterLogEvents",
        f"{EXAMPLE.log_group_arn(EXAMPLE.notifier_log_group)}:*",
        None,
    )
    assert not allows(
        policy, "logs:FilterLogEvents", f"{EXAMPLE.log_group_arn(EXAMPLE.trail_log_group)}:*", None
    )
    assert allows(policy, "cloudwatch:SetAlarmState", EXAMPLE.alarm_arn, None)
    assert allows(policy, "lambda:InvokeFunction", EXAMPLE.function_arn, None)
    # test-alert works from names alone: it never reads a reused trail
    policy = operator_policy(REUSING, [TEST_ALERT], trail_log_group="/org/trail")
    assert "cloudtrail" not in json.dumps(policy)


def test_pass_role_is_scoped_to_our_roles_and_their_services() -> None:
    policy = operator_policy(EXAMPLE_CONFIG, [SETUP])
    trail_role = EXAMPLE.role_arn(EXAMPLE.trail_role)
    notifier_role = EXAMPLE.role_arn(EXAMPLE.notifier_role)
    assert allows(policy, "iam:PassRole", trail_role, "cloudtrail.amazonaws.com")
    assert allows(policy, "iam:PassRole", notifier_role, "lambda.amazonaws.com")
    assert not allows(policy, "iam:PassRole", trail_role, "lambda.amazonaws.com")
    assert not allows(policy, "iam:PassRole", notifier_role, "ec2.amazonaws.com")
    forward_role = EXAMPLE.role_arn(EXAMPLE.forwarding_role)
    assert allows(policy, "iam:PassRole", forward_role, "events.amazonaws.com")
    assert not allows(policy, "iam:PassRole", forward_role, "lambda.amazonaws.com")
    scheduler_role = EXAMPLE.role_arn(EXAMPLE.scheduler_role)
    assert allows(policy, "iam:PassRole", scheduler_role, "scheduler.amazonaws.com")
    assert not allows(policy, "iam:PassRole", scheduler_role, "lambda.amazonaws.com")
    passes = [s for s in policy["Statement"] if "iam:PassRole" in as_list(s["Action"])]
    assert len(passes) == 4 and all(as_list(s["Action"]) == ["iam:PassRole"] for s in passes)
    assert "iam:PassRole" not in actions_for(EXAMPLE_CONFIG, [STATUS, TEARDOWN, TEST_ALERT])


def test_kms_keys_add_only_ssm_scoped_key_use() -> None:
    key_id = "1234abcd-12ab-34cd-56ef-1234567890ab"
    for key, resource in [
        (key_id, f"arn:aws:kms:us-east-1:123456789012:key/{key_id}"),
        (
            f"arn:aws:kms:eu-west-1:210987654321:key/{key_id}",
            f"arn:aws:kms:eu-west-1:210987654321:key/{key_id}",
        ),
        ("alias/webhook", "arn:aws:kms:us-east-1:123456789012:key/*"),
        (
            "arn:aws:kms:us-east-1:123456789012:alias/webhook",
            "arn:aws:kms:us-east-1:123456789012:key/*",
        ),
    ]:
        kms = example_config(kms=KmsKeys(parameter=key))
        statements = operator_policy(kms, ["all"])["Statement"]
        mine = {s["Sid"]: s for s in statements if s["Sid"].endswith("WebhookKey")}
        assert set(mine) == {"ReadWebhookKey", "SetupWebhookKey"}
        assert mine["ReadWebhookKey"]["Action"] == "kms:Decrypt"
        assert mine["SetupWebhookKey"]["Action"] == "kms:Encrypt"
        for statement in mine.values():
            assert statement["Resource"] == resource
            condition = statement["Condition"]
            assert condition["StringEquals"] == {"kms:ViaService": "ssm.us-east-1.amazonaws.com"}
            if "alias/" in key:  # an alias ARN cannot be a key's Resource: match by alias
                assert condition["ForAnyValue:StringEquals"] == {
                    "kms:ResourceAliases": "alias/webhook"
                }
        status_actions = actions_for(kms, [STATUS])
        assert "kms:Decrypt" in status_actions and "kms:Encrypt" not in status_actions
    with_log_key = actions_for(example_config(kms=KmsKeys(log_group="alias/logs")), [SETUP])
    assert "logs:AssociateKmsKey" in with_log_key
    assert "logs:AssociateKmsKey" not in actions_for(EXAMPLE_CONFIG, [SETUP])
    # topic and bucket keys are used by AWS services, not by the operator
    other_keys = example_config(kms=KmsKeys(topic="alias/t", bucket="alias/b"))
    assert actions_for(other_keys, ["all"]) == actions_for(EXAMPLE_CONFIG, ["all"])


def test_compact_grants_the_same_in_fewer_characters() -> None:
    full = operator_policy(EXAMPLE_CONFIG, ["all"])
    compact = operator_policy(EXAMPLE_CONFIG, ["all"], compact=True)

    def pairs(policy: dict[str, Any]) -> set[tuple[str, str, str]]:
        return {
            (a, r, json.dumps(s.get("Condition"), sort_keys=True))
            for s in policy["Statement"]
            for a in as_list(s["Action"])
            for r in as_list(s["Resource"])
        }

    def covered(by: dict[str, Any], pair: tuple[str, str, str]) -> bool:
        # An ARN a wildcard ARN of the same statement matches is left out of compact.
        return any(
            a == pair[0] and c == pair[2] and fnmatch.fnmatchcase(pair[1], r)
            for a, r, c in pairs(by)
        )

    assert all(covered(compact, p) for p in pairs(full))
    assert all(covered(full, p) for p in pairs(compact))
    assert pairs(compact) <= pairs(full)
    # IAM's managed-policy limit is 6,144 characters, whitespace not counted. Every
    # command together no longer fits for the example config (the self-check, the
    # second voice and review): setup's policy and the others' each do (the CLI says so).
    assert policy_size(compact) > MANAGED_POLICY_LIMIT
    rest = [c for c in COMMANDS if c != SETUP]
    for part in ([SETUP], rest):
        assert policy_size(operator_policy(EXAMPLE_CONFIG, part, compact=True)) < 6144


def test_bad_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError, match="unknown command 'deploy'"):
        operator_policy(EXAMPLE_CONFIG, ["deploy"])
    with pytest.raises(ValueError, match="no command"):
        operator_policy(EXAMPLE_CONFIG, [])
    with pytest.raises(ValueError, match="log group"):
        operator_policy(REUSING, [SETUP])
    by_arn = operator_policy(
        REUSING,
        [SETUP],
        trail_log_group="arn:aws:logs:us-east-1:123456789012:log-group:/org/trail:*",
    )
    assert by_arn == operator_policy(REUSING, [SETUP], trail_log_group="/org/trail")
    assert parse_commands(["all", "status"]) == set(COMMANDS)


def test_api_to_iam_names_real_operations() -> None:
    import botocore.session

    session = botocore.session.get_session()
    for service, operation in API_TO_IAM:
        assert operation in session.get_service_model(service).operation_names, (service, operation)
    declared = operations_for(
        example_config(kms=KmsKeys(log_group="alias/x", parameter="alias/y")), ["all"]
    )
    for op in declared:  # every operation a resource declares is a real one
        assert op[1] in session.get_service_model(op[0]).operation_names, op


# ---------------------------------------------------------------- the roles loginwatch creates


def test_created_roles_have_no_wildcard_actions_or_bare_star_resources() -> None:
    names = EXAMPLE
    documents = [
        policies.trail_role_policy(names, names.trail_log_group),
        policies.notifier_role_policy(names, names.trail_log_group, None),
        policies.notifier_role_policy(
            names, names.trail_log_group, "arn:aws:kms:us-east-1:123456789012:key/abc"
        ),
        policies.scheduler_role_policy(names),
    ]
    for document in documents:
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            for action in as_list(statement["Action"]):
                assert "*" not in action, statement
            if statement["Resource"] == "*":
                # PutMetricData has no resource type: "*", only in loginwatch's namespace.
                assert statement["Action"] == "cloudwatch:PutMetricData", statement
                assert statement["Condition"] == {
                    "StringEquals": {"cloudwatch:namespace": HEARTBEAT_NAMESPACE}
                }
                continue
            for resource in as_list(statement["Resource"]):
                assert names.account in resource, statement
                assert "*" not in resource or allowed_wildcard(names, resource), statement
