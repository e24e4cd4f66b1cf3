"""boto3 session and clients, retries, call recording, and AWS errors → plain messages."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import boto3
import botocore.exceptions
import botocore.parsers
from botocore.config import Config as BotoConfig

from . import __version__
from .errors import AwsError, CredentialsError, EndpointLacksOperation, LoginwatchError
from .notifier.protocol import own_user_agent
from .operator_policy import Operation, iam_actions

# botocore's standard mode retries throttling, 5xx and connection errors with
# jittered backoff. In the Config dict max_attempts counts retries: 10 retries
# (11 attempts) ride out a busy account without hanging forever.
RETRY_ATTEMPTS = 10
CALL_LOG_ENV = "LOGINWATCH_CALL_LOG"  # tests and bench/ record every API call here
READ_PREFIXES = ("Get", "List", "Describe", "Head", "Lookup", "Filter", "Test")

T = TypeVar("T")

# The AWS services loginwatch calls: boto3's type stubs know each one's client by name.
Service = Literal[
    "cloudformation",
    "cloudtrail",
    "cloudwatch",
    "dynamodb",
    "ec2",
    "events",
    "iam",
    "lambda",
    "logs",
    "organizations",
    "s3",
    "scheduler",
    "sns",
    "sqs",
    "ssm",
    "sts",
]


def is_read(operation: str) -> bool:
    return operation.startswith(READ_PREFIXES)


class SplitsCalls:
    """Mixin for anything with ``calls``: the mutating ones and the reads."""

    calls: list[tuple[str, str]]

    @property
    def mutating(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if not is_read(c[1])]

    @property
    def reads(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if is_read(c[1])]


@dataclass
class CallRecorder(SplitsCalls):
    """Counts API calls (service, operation), thread-safe; optionally appends them to a file."""

    calls: list[tuple[str, str]] = field(default_factory=list)
    path: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, model: Any, **_: Any) -> None:
        service = model.service_model.service_name
        with self._lock:
            self.calls.append((service, model.name))
            if self.path:
                with open(self.path, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps([service, model.name]) + "\n")


@dataclass
class Aws:
    """One account, a home region, and clients for any region: one cached client per
    service and region, all with the same retry settings (boto3 clients are thread-safe)."""

    session: boto3.Session
    region: str
    account_id: str
    partition: str
    recorder: CallRecorder
    sleep: Callable[[float], None] = time.sleep
    # The CLI command this session serves ("setup"), for the clients' user agent.
    command: str = ""
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, service: Service, region: str | None = None) -> Any:
        """The client for ``service`` in ``region`` (default: the home region)."""
        key = (service, region or self.region)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self.new_client(service, key[1])
            return self._clients[key]

    def new_client(
        self,
        service: Service,
        region: str,
        *,
        attempts: int = RETRY_ATTEMPTS + 1,
        connect_timeout: int = 10,
        read_timeout: int = 60,
    ) -> Any:
        """A client with loginwatch's settings and hooks (uncached: ``client`` caches)."""
        client = self.session.client(
            service,
            region_name=region,
            config=BotoConfig(
                retries={"mode": "standard", "total_max_attempts": attempts},
                # Says which command made the change: the notifier posts loginwatch's
                # own changes to its resources as maintenance (notifier/protocol.py).
                user_agent_extra=own_user_agent(__version__, self.command),
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
            ),
        )
        client.meta.events.register("before-parameter-build.*.*", _note_call)
        # First, so that its "no retry" wins over the standard retry handler's.
        # (botocore's stubs type handlers as returning None; needs-retry's answer.)
        client.meta.events.register_first(
            f"needs-retry.{client.meta.service_model.service_id.hyphenize()}",
            _no_retry_on_error_page,  # type: ignore[arg-type]
        )
        client.meta.events.register("before-call.*.*", self._record)
        return client

    def _record(self, model: Any, **kwargs: Any) -> None:
        self.recorder(model, **kwargs)


# The API call each thread made last (or has in flight): an error names the IAM action
# AWS checked for the call that failed, not one typed beside it. Noted when botocore
# starts a call, before it validates the parameters, so that no error of a call can
# be blamed on the one before it. A waiter's WaiterError names no operation: the call
# it failed on is the last one its thread made.
_calls = threading.local()


def _note_call(model: Any, **_: Any) -> None:
    _calls.last = (model.service_model.service_name, model.name)


def failed_call_actions(operation_name: str | None = None) -> tuple[str, ...]:
    """The IAM actions AWS checks for the call that just failed on this thread, its own
    first; ``operation_name`` is botocore's name for it, when the error carries one."""
    last: Operation | None = getattr(_calls, "last", None)
    if last is not None and operation_name in (None, last[1]):
        return iam_actions(last)
    # A client loginwatch did not make (no call noted): the operation, without its service.
    return (operation_name or "the AWS call",)


def connect(
    profile: str | None,
    region: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    command: str = "",
) -> Aws:
    """Open a session and learn the account id; credential problems become CredentialsError.
    ``command`` (the CLI's, e.g. "setup") goes into every client's user agent."""
    recorder = CallRecorder(path=os.environ.get(CALL_LOG_ENV))
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
        _share_model_loader(session)
    except botocore.exceptions.ProfileNotFound:
        raise CredentialsError(
            f"AWS profile '{profile}' does not exist.",
            "List profiles with `aws configure list-profiles`, or drop --profile / AWS_PROFILE.",
        ) from None
    aws = Aws(session=session, region=region, account_id="", partition="aws", recorder=recorder)
    aws.sleep = sleep
    aws.command = command
    identity = _first_call(aws)
    aws.account_id = identity["Account"]
    aws.partition = identity["Arn"].split(":")[1]
    return aws


# The first call says within seconds whether the endpoint answers at all: the standard
# retries (10 of them, 10 s connect timeout each) would spend half a minute in silence.
FIRST_CALL_CONNECT_TIMEOUT = 3
FIRST_CALL_ATTEMPTS = 2  # one retry: a single dropped connection is not "unreachable"


def _first_call(aws: Aws) -> Any:
    """sts:GetCallerIdentity with a short connect timeout and one retry; an endpoint that
    does not answer is named at once (later calls have the patient settings)."""
    client = aws.new_client(
        "sts",
        aws.region,
        attempts=FIRST_CALL_ATTEMPTS,
        connect_timeout=FIRST_CALL_CONNECT_TIMEOUT,
        read_timeout=20,
    )
    with translate_errors():
        try:
            return client.get_caller_identity()
        except botocore.exceptions.EndpointConnectionError:  # connect timeouts too
            endpoint = client.meta.endpoint_url
            where = "AWS_ENDPOINT_URL" if os.environ.get("AWS_ENDPOINT_URL") else aws.region
            raise AwsError(
                f"Cannot reach the AWS endpoint {endpoint} ({where}): no connection "
                f"after {FIRST_CALL_ATTEMPTS} tries.",
                "Check the network, the region name, and AWS_ENDPOINT_URL if you set it.",
            ) from None


_shared_loader: Any = None


def _share_model_loader(session: boto3.Session) -> None:
    """One service-model loader per process. A new session would parse every service's
    JSON model again (tens of ms a client); the demo and the tests connect many times."""
    global _shared_loader
    botocore_session = session._session
    if _shared_loader is None:
        _shared_loader = botocore_session.get_component("data_loader")
    else:
        botocore_session.register_component("data_loader", _shared_loader)


def call(aws: Aws, service: Service, operation: str, **params: Any) -> Any:
    """One AWS call with errors translated; use for calls whose errors are all fatal."""
    with translate_errors(params.get("Name", "")):
        return getattr(aws.client(service), operation)(**params)


def error_code(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def error_message(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Message", ""))
    return str(exc)


# How an endpoint that lacks an operation answers instead of doing it: AWS's own
# InvalidAction / UnknownOperationException; emulators' NotImplemented, HTTP 501 and
# words (LocalStack: "not yet implemented or pro feature", "not included in your license
# plan"); a stock moto server's HTML 500 page (not an AWS answer at all); and an answer
# botocore cannot parse.
UNIMPLEMENTED = {
    "InvalidAction",
    "UnknownOperation",
    "UnknownOperationException",
    "NotImplemented",
    "NotImplementedException",
}
UNIMPLEMENTED_WORDS = (
    "not yet implemented",
    "has not been implemented",
    "not been emulated",
    "not included in your",
    "pro feature",
)


def _is_error_page(body: str | bytes) -> bool:
    """An HTML page (a web server's error page), where AWS answers JSON or XML."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    start = text.lstrip()[:15].lower()
    return start.startswith(("<!doctype html", "<html"))


def _no_retry_on_error_page(response: Any = None, **_: Any) -> bool | None:
    """botocore's standard mode retries any 500 ten times (half a minute of backoff); an
    HTML page is no AWS error that may pass, so no retry (None: the usual decision)."""
    if response is None:
        return None
    http = response[0]
    if http.status_code >= 500 and _is_error_page(http.content):
        return False
    return None


def lacks_operation(exc: BaseException) -> bool:
    """Does this error say the endpoint does not implement the call (an emulator)?"""
    if isinstance(exc, botocore.parsers.ResponseParserError):  # not an AWS answer
        return True
    if not isinstance(exc, botocore.exceptions.ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    message = error_message(exc)
    return (
        error_code(exc) in UNIMPLEMENTED
        or status == 501
        or any(words in message.lower() for words in UNIMPLEMENTED_WORDS)
        or (status >= 500 and _is_error_page(message))
    )


def _lacking(exc: BaseException) -> EndpointLacksOperation:
    operation = getattr(exc, "operation_name", None)
    last: Operation | None = getattr(_calls, "last", None)
    if operation is None and last is not None:
        operation = last[1]
    answer = ""
    if isinstance(exc, botocore.parsers.ResponseParserError):
        answer = "an answer that is not AWS's format"
    elif isinstance(exc, botocore.exceptions.ClientError) and _is_error_page(error_message(exc)):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        answer = f"HTTP {status}, an HTML error page instead of an AWS answer"
    return EndpointLacksOperation(
        operation or "the AWS call", failed_call_actions(operation)[0], answer
    )


ACCESS_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "AuthorizationErrorException",
    "InsufficientPermissionsException",
}
EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}
BAD_CREDENTIALS = {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"}


NOT_FOUND = {
    "ResourceNotFound",
    "ResourceNotFoundException",
    "NoSuchEntity",
    "NotFound",
    "ParameterNotFound",
    "TrailNotFoundException",
}


# How AWS names the action it denied: "User: arn:... is not authorized to perform:
# lambda:CreateFunction on resource: ..." (SQS's and some others' messages name none).
NOT_AUTHORIZED = re.compile(r"not authorized to perform:?\s*([A-Za-z0-9-]+:[A-Za-z0-9*]+)")


def _named_by_aws(message: str, actions: tuple[str, ...]) -> str:
    """The action AWS's message says it denied, spelled as IAM spells it, or ""."""
    found = NOT_AUTHORIZED.search(message)
    if not found:
        return ""
    named = found.group(1)
    return next((a for a in actions if a.lower() == named.lower()), named)


def _and(items: tuple[str, ...]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _fail(
    code: str, message: str, actions: tuple[str, ...], resource: str, missing: str
) -> LoginwatchError:
    """The error for an AWS error answer to the call AWS authorises with ``actions``."""
    action, target = actions[0], f" on {resource}" if resource else ""
    if code in EXPIRED:
        return CredentialsError(
            "Your AWS credentials have expired.",
            "Refresh them (`aws sso login`, or new temporary keys) and try again.",
        )
    if code in BAD_CREDENTIALS:
        return CredentialsError(
            f"AWS rejected the credentials ({code}).",
            "Check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile, and that the "
            "region is enabled for the account.",
        )
    if missing and code in NOT_FOUND:
        return AwsError(f"{resource or 'A resource'} does not exist ({action}).", missing)
    if code in ACCESS_DENIED:
        # AWS's message usually names what it denied (iam:PassRole for CreateFunction);
        # when it does not, every action the call needs is a suspect.
        named = _named_by_aws(message, actions)
        grant = (named,) if named else actions
        needs = f" needs {named}" if named and named != action else ""
        return AwsError(
            f"Access denied: {action}{target}{needs}.",
            f"Grant {_and(grant)} to the identity running loginwatch "
            "(`loginwatch permissions` prints the full policy).",
        )
    if _is_error_page(message):  # never print a web server's HTML page
        message = "the endpoint answered an HTML page, not an AWS answer"
    return AwsError(f"{action}{target} failed: {code}: {message}")


@contextmanager
def translate_errors(resource: str = "", *, missing: str = "") -> Iterator[None]:
    """Turn botocore errors into one or two lines naming the action, resource and fix.

    The action is the IAM action AWS checks for the call that failed (see
    ``failed_call_actions``), whichever call of the block it was.
    ``missing``: the fix to give when the resource does not exist (for commands that
    need what setup makes), instead of AWS's own words ("An unspecified service error").
    """
    target = f" on {resource}" if resource else ""
    try:
        yield
    except botocore.exceptions.NoCredentialsError:
        raise CredentialsError(
            "No AWS credentials found.",
            "Set AWS_PROFILE (or pass --profile), run `aws sso login`, or export "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.",
        ) from None
    except (
        botocore.exceptions.TokenRetrievalError,
        botocore.exceptions.SSOTokenLoadError,
        botocore.exceptions.UnauthorizedSSOTokenError,
    ):
        raise CredentialsError(
            "Your AWS SSO session has expired or was never started.",
            "Run `aws sso login` (with --profile if you use one) and try again.",
        ) from None
    except botocore.exceptions.EndpointConnectionError as exc:
        raise AwsError(
            f"Cannot reach AWS for {failed_call_actions()[0]}: {exc}",
            "Check the network, the region name, and AWS_ENDPOINT_URL if you set it.",
        ) from None
    except botocore.exceptions.ClientError as exc:
        if lacks_operation(exc):
            raise _lacking(exc) from None
        actions = failed_call_actions(exc.operation_name)
        raise _fail(error_code(exc), error_message(exc), actions, resource, missing) from None
    except botocore.exceptions.WaiterError as exc:
        # An error answer to the waiter's own call (AccessDenied on its polling GetFunction)
        # is that call's error; a timeout or a failure state is the waiter's.
        error = (exc.last_response or {}).get("Error") or {}
        actions = failed_call_actions()
        if error.get("Code"):
            raise _fail(
                str(error["Code"]), str(error.get("Message", "")), actions, resource, missing
            ) from None
        raise AwsError(f"{actions[0]}{target} failed: {exc}") from None
    except botocore.parsers.ResponseParserError as exc:
        raise _lacking(exc) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise AwsError(f"{failed_call_actions()[0]}{target} failed: {exc}") from None


def retry_while(
    aws: Aws,
    func: Callable[[], T],
    *,
    codes: set[str],
    message_contains: str = "",
    attempts: int = 8,
    first_delay: float = 2.0,
    max_delay: float = 15.0,
) -> T:
    """Retry a call that fails while IAM changes propagate (bounded, exponential backoff).

    A role used seconds after creation is not yet assumable by Lambda or
    CloudTrail; AWS says so with these specific errors, which settle within
    about a minute. Anything else is raised at once.
    """
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return func()
        except botocore.exceptions.ClientError as exc:
            retryable = error_code(exc) in codes and message_contains in error_message(exc)
            if not retryable or attempt == attempts:
                raise
            aws.sleep(delay)
            delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable")
