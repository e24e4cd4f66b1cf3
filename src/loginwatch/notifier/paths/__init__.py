"""Every kind of event the notifier takes: one module each, with the same protocol.

    recognises(event) -> bool           is this event of my kind?
    handle(event, ctx) -> Outcome       decide, deliver through dispatch, say what happened

``handler`` hands an event to the first path in ``PATHS`` that recognises it, with a
``Context`` built once for the invocation. A path raises when the event must be tried
again (Slack failed, another run holds a claim): Lambda's retries, then the retry
queue, bring it back. Adding a kind of event is one module and one line below.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..context import Context, Outcome
from . import (
    alarm,
    api_call,
    drill_event,
    key_exposed,
    key_follow_up,
    self_check,
    sign_in,
    tamper,
)


class Path(Protocol):
    def recognises(self, event: Any) -> bool: ...

    def handle(self, event: Any, ctx: Context) -> Outcome: ...


PATHS: list[Path] = [
    drill_event,  # `loginwatch test-alert --via fast-path`
    self_check,  # EventBridge Scheduler (or `loginwatch test-alert --via self-check`)
    # Before sign_in, which takes any EventBridge event (and ignores what is no sign-in).
    key_exposed,  # EventBridge: AWS Health says a key is exposed, or AWS quarantined a user
    # Before api_call and key_follow_up: a watched change may also be an access key's
    # call (tamper hands it on), and a maintenance window's follow-up shares their marker.
    tamper,  # EventBridge: a change that can switch loginwatch off; its maintenance runs
    api_call,  # EventBridge: an access key used from outside the allowlist
    key_follow_up,  # the retry queue: the follow-up of an access key's window
    sign_in,  # EventBridge: a console sign-in, seconds after it
    alarm,  # SNS: a CloudWatch alarm, the backstop
]


def path_for(event: Any) -> Path | None:
    return next((path for path in PATHS if path.recognises(event)), None)
