"""A path for a made-up kind of event, written as a new path would be: this module and
one line in ``paths.PATHS`` (the test adds that line), nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loginwatch.notifier.context import Context, Outcome
from loginwatch.notifier.dispatch import Notice, Payload, deliver
from loginwatch.notifier.routing import Destination

SOURCE = "example.made-up"


def recognises(event: Any) -> bool:
    return isinstance(event, Mapping) and event.get("source") == SOURCE


def handle(event: Mapping[str, Any], ctx: Context) -> Outcome:
    detail = event["detail"]

    def compose(destination: Destination) -> Payload:
        return {"text": f"made-up thing {detail['id']} for {destination.name}"}

    notice = Notice(
        keys=(f"made-up#{detail['id']}",),
        rule_names=("root_sign_in",),
        severity=detail["severity"],
        account_id=str(event.get("account", "")),
        compose=compose,
    )
    sent = deliver([notice], ctx)
    sent.raise_if_incomplete()
    if not sent.messages:
        return Outcome("already-reported", 1)
    return Outcome("posted", sent.events, slack_status=sent.slack_status)
