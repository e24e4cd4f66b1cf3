"""What every path is given, built once per invocation from the container's caches.

A warm Lambda container keeps, across invocations: the settings (settings.json in the
package), each destination's webhook URL (one SSM read per container), the boto3
clients (aws_clients) and the accounts' names (account_names). A ``Context`` puts
them together with this invocation's deadline, so every path decides, claims and
posts the same way (dispatch.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import account_names, aws_clients, ip_location, self_check
from .claims import Claims
from .ipmatch import AllowList
from .redelivery import lateness
from .routing import Destination, Routes
from .rules import RuleSet
from .settings import Settings, load_settings
from .slack_delivery import mask_webhook, post_to_slack
from .webhook_secret import read_webhook_url

# The function's timeout (resources/function.py deploys it): the deadline of a run that
# has no Lambda context to ask (a local invoke, the demo, the tests).
FUNCTION_TIMEOUT_SECONDS = 30
# Kept free at the end of a run: writing the log line and releasing claims.
END_RESERVE_SECONDS = 2.0
# A post is not started with less time than this left: Lambda's retry posts it instead.
MIN_POST_SECONDS = 2.0
# A claim outlives the run that holds it by this much, so a live claim is never taken over.
LEASE_MARGIN_SECONDS = 10

Payload = dict[str, Any]

_clock: Callable[[], float] = time.monotonic
_settings: tuple[Settings, AllowList] | None = None
_webhook_urls: dict[str, str] = {}  # SSM parameter name → webhook URL
_queue_urls: dict[str, str] = {}  # SQS queue name → URL


def reset() -> None:
    """Forget settings, webhook and queue URLs, clients and account names (a cold start)."""
    global _settings
    _settings = None
    _webhook_urls.clear()
    _queue_urls.clear()
    account_names.reset()
    aws_clients.reset()
    self_check.reset()


def cached_settings() -> tuple[Settings, AllowList]:
    global _settings
    if _settings is None:
        settings = load_settings()
        _settings = (settings, settings.allow_list())
        ip_location.use_labels(settings.allowlist_labels or {})
    return _settings


def queue_url(sqs: Any, name: str) -> str:
    if name not in _queue_urls:
        _queue_urls[name] = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return _queue_urls[name]


def without_webhooks(text: str) -> str:
    """Belt and braces: no message we build holds a webhook URL, but a library's might."""
    for url in _webhook_urls.values():
        text = text.replace(url, mask_webhook(url))
    return text


class OutOfTime(RuntimeError):
    """Too little of the run is left to post: the claims are released for Lambda's retry."""


@dataclass
class Progress:
    """What a run was about, kept as it goes, for the log line of a run that then fails."""

    events: int = 0
    test_id: str | None = None
    slack_status: int | None = None


@dataclass(frozen=True)
class Outcome:
    """What a path did with an event: the invocation's log line and return value."""

    outcome: str
    events: int = 0
    test_id: str | None = None
    reason: str | None = None
    slack_status: int | None = None
    # More of what happened, added to the log line and the returned dict (the self-check's
    # verdict and problems, which `loginwatch test-alert --via self-check` prints).
    extra: Mapping[str, Any] | None = None


@dataclass
class Context:
    """One invocation's view of the notifier's world. Settings are read on first use, so
    an event no path takes never needs them."""

    deadline: float  # on ``monotonic``: when this run must have finished
    late_cause: str | None = None  # an alert from the retry queue: why it is late
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    monotonic: Callable[[], float] = time.monotonic
    progress: Progress = field(default_factory=Progress)

    @classmethod
    def for_invocation(cls, lambda_context: Any, *, late_cause: str | None = None) -> Context:
        """The deadline is the function's own (``get_remaining_time_in_millis``)."""
        remaining = getattr(lambda_context, "get_remaining_time_in_millis", None)
        seconds = remaining() / 1000 if callable(remaining) else FUNCTION_TIMEOUT_SECONDS
        clock = _clock  # looked up now: tests replace it
        return cls(deadline=clock() + seconds, late_cause=late_cause, monotonic=clock)

    # ------------------------------------------------------------ settings
    @property
    def settings(self) -> Settings:
        return cached_settings()[0]

    @property
    def allowlist(self) -> AllowList:
        return cached_settings()[1]

    @property
    def rules(self) -> RuleSet:
        return self.settings.rules

    @property
    def routes(self) -> Routes:
        return self.settings.routes()

    # ------------------------------------------------------------ AWS and time
    def client(self, service: aws_clients.Service) -> Any:
        return aws_clients.client(service, self.settings.region)

    def remaining_seconds(self) -> float:
        return self.deadline - self.monotonic()

    def claims(self) -> Claims:
        """This run's claims: each holds as long as the run can, plus a margin."""
        lease = math.ceil(max(self.remaining_seconds(), 0)) + LEASE_MARGIN_SECONDS
        return Claims(self.client("dynamodb"), self.settings.claims_table, lease_seconds=lease)

    def late_note(self, since: datetime) -> str | None:
        """For an alert from the retry queue: how late it is and why."""
        if self.late_cause is None:
            return None
        return lateness(self.late_cause, since, self.now())

    def account_names(self, account_ids: Iterable[str]) -> dict[str, str]:
        """Accounts' names for the message (organization mode), else none."""
        if not self.settings.account_names:
            return {}
        return account_names.names_of(account_ids, lambda: self.client("organizations"))

    # ------------------------------------------------------------ Slack
    def webhook_url(self, parameter: str | None = None) -> str:
        """A destination's webhook URL (the default one without ``parameter``)."""
        name = parameter or self.settings.webhook_parameter
        if name not in _webhook_urls:
            _webhook_urls[name] = read_webhook_url(self.client("ssm"), name, self.settings.region)
        return _webhook_urls[name]

    def post(self, destination: Destination, payload: Payload, *, share: int = 1) -> int:
        """Post to one destination; Slack's HTTP status. It may take a ``share``-th of what
        is left of the run (the rest is for the destinations after it), so a run never
        outlasts the function's timeout, whatever number of channels fail."""
        url = self.webhook_url(destination.parameter)
        now = self.monotonic()
        left = self.deadline - END_RESERVE_SECONDS - now
        if left < MIN_POST_SECONDS:
            raise OutOfTime(f"no time left in this run to post to {destination.name}")
        deadline = now + max(left / max(share, 1), MIN_POST_SECONDS)
        return post_to_slack(url, payload, deadline=deadline, clock=self.monotonic).status
