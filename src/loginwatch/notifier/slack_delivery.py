"""POST a payload to a Slack incoming webhook, retrying only what can succeed later.

The webhook URL is a bearer secret: it never appears in an exception message or
a log line. ``mask_webhook`` gives a safe way to mention it.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

TIMEOUT_SECONDS = 5.0
MAX_ATTEMPTS = 3
RETRY_AFTER_CAP_SECONDS = 5.0
_BACKOFF_BASE_SECONDS = 0.5
# An attempt with less time than this left is not started.
MIN_ATTEMPT_SECONDS = 1.0

# Bodies Slack sends when the webhook itself is dead or wrong; retrying cannot help.
# https://api.slack.com/messaging/webhooks#handling_errors
REVOKED_WEBHOOK_ERRORS = frozenset(
    {
        "invalid_token",
        "no_service",
        "channel_not_found",
        "no_team",
        "team_disabled",
        "action_prohibited",
    }
)

# Tests replace this so retries do not really wait.
_sleep: Callable[[float], None] = time.sleep


class SlackDeliveryError(Exception):
    """Slack did not accept the message. ``status`` is the last HTTP status (or None)."""

    def __init__(self, message: str, *, status: int | None, attempts: int) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts


@dataclass(frozen=True)
class SlackResponse:
    status: int
    body: str
    attempts: int


def mask_webhook(url: str) -> str:
    """``hooks.slack.com/…AbCd``: enough to tell webhooks apart, useless to an attacker."""
    parts = urlsplit(url)
    return f"{parts.hostname or '?'}/…{url[-4:]}"


class _Headers(Protocol):
    """A reply's headers: http.client's message (case-insensitive) or a plain mapping."""

    def get(self, name: str, /) -> str | None: ...


def _retry_after_seconds(headers: _Headers | None, attempt: int) -> float:
    """Honour Slack's Retry-After (seconds), capped so a Lambda never sleeps long."""
    raw = (headers or {}).get("Retry-After")
    try:
        wanted = float(raw) if raw is not None else None
    except ValueError:
        wanted = None
    if wanted is None or wanted < 0:
        wanted = _backoff_seconds(attempt)
    return min(wanted, RETRY_AFTER_CAP_SECONDS)


def _backoff_seconds(attempt: int) -> float:
    return _BACKOFF_BASE_SECONDS * (2 ** (attempt - 1))


def _send(url: str, data: bytes, timeout: float) -> tuple[int, str, _Headers]:
    """One POST. Returns (status, body, headers) for any HTTP answer, 2xx or not."""
    request = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "loginwatch"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(2048).decode("utf-8", "replace"), response.headers
    except urllib.error.HTTPError as error:
        with error:
            body = error.read(2048).decode("utf-8", "replace")
        return error.code, body, error.headers


def post_to_slack(
    url: str,
    payload: Mapping[str, Any],
    *,
    timeout: float = TIMEOUT_SECONDS,
    max_attempts: int = MAX_ATTEMPTS,
    sleep: Callable[[float], None] | None = None,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SlackResponse:
    """POST ``payload`` as JSON; retry 429, 5xx and connection errors with backoff.

    Raises SlackDeliveryError at once for a dead or wrong webhook (404, 410, or a
    400/403 naming a revoked-webhook error) and for other 4xx answers (a payload
    Slack rejects will not improve on retry), and after ``max_attempts`` otherwise.
    ``deadline`` (on ``clock``): no attempt or wait runs past it, so a run with several
    failing channels still ends before its function times out.
    """
    if urlsplit(url).scheme not in ("https", "http"):
        # Refuse file:// and friends that urllib would happily open.
        raise SlackDeliveryError(
            "the Slack webhook URL is not an http(s) URL", status=None, attempts=0
        )
    do_sleep = sleep if sleep is not None else _sleep
    data = json.dumps(payload).encode("utf-8")
    where = mask_webhook(url)
    status: int | None = None
    problem = ""
    made = 0
    for attempt in range(1, max_attempts + 1):
        headers: _Headers | None = None
        budget = timeout if deadline is None else min(timeout, deadline - clock())
        if budget < MIN_ATTEMPT_SECONDS:
            problem = problem or "no time left for an attempt"
            break
        made = attempt
        try:
            status, body, headers = _send(url, data, budget)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            # URLError.reason never contains the URL; keep only the class and reason.
            reason = getattr(error, "reason", None) or error
            status, problem = None, f"connection error: {type(error).__name__}: {reason}"
        else:
            if 200 <= status < 300:
                return SlackResponse(status=status, body=body, attempts=attempt)
            slack_error = body.strip()
            if status in (404, 410) or (
                status in (400, 403) and slack_error in REVOKED_WEBHOOK_ERRORS
            ):
                raise SlackDeliveryError(
                    f"Slack rejected the webhook {where} (HTTP {status}: "
                    f"{slack_error[:100] or 'no body'}): it was revoked or is wrong. "
                    "Store a working webhook URL and re-run `loginwatch setup`.",
                    status=status,
                    attempts=attempt,
                )
            if status != 429 and status < 500:
                raise SlackDeliveryError(
                    f"Slack refused the message at {where} (HTTP {status}: "
                    f"{slack_error[:100] or 'no body'})",
                    status=status,
                    attempts=attempt,
                )
            problem = f"HTTP {status}: {slack_error[:100] or 'no body'}"
        if attempt < max_attempts:
            wait = _retry_after_seconds(headers, attempt) if status == 429 else None
            wait = _backoff_seconds(attempt) if wait is None else wait
            if deadline is not None and clock() + wait + MIN_ATTEMPT_SECONDS > deadline:
                break  # no time to wait and try again: Lambda's retry will
            do_sleep(wait)
    raise SlackDeliveryError(
        f"Slack did not accept the message at {where} after {made} attempt(s) ({problem})",
        status=status,
        attempts=made,
    )
