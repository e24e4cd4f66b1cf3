"""AWS says an access key is exposed: an AWS Health RISK event, or AWS attaching its
quarantine policy to a user. Each is posted at once, at credentials_exposed's severity.

AWS Health sends global events from us-east-1 and again from us-west-2 (its backup
region): the message is claimed by the event's ARN (``health#<eventArn>``), so the
second copy finds it posted. Every RISK event counts, whatever its type code: AWS's
list of codes is not complete. The quarantine (``AttachUserPolicy`` of
``AWSCompromisedKeyQuarantine…``) is claimed by its eventID (``quarantine#<id>``);
the alarm path's backstop reads it from the trail's log group and gives it here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..api_calls import (
    HEALTH_DETAIL_TYPE,
    HEALTH_SOURCE,
    KeyExposure,
    is_quarantine_record,
    parse_health_exposure,
    parse_quarantine,
)
from ..context import Context, Outcome
from ..dispatch import Notice, Payload, deliver
from ..routing import Destination
from ..rules import Rule
from ..slack_message import build_key_exposed_message
from . import api_call

RULE = "credentials_exposed"
HEALTH, QUARANTINE = "health#", "quarantine#"


def recognises(event: Any) -> bool:
    if not isinstance(event, Mapping) or not isinstance(event.get("detail"), Mapping):
        return False
    if event.get("source") == HEALTH_SOURCE:
        return event.get("detail-type") == HEALTH_DETAIL_TYPE
    return api_call.recognises(event) and is_quarantine_record(event["detail"])


def handle(event: Mapping[str, Any], ctx: Context) -> Outcome:
    rule = ctx.rules.get(RULE)
    if event.get("source") != HEALTH_SOURCE:
        if rule is None:  # an AttachUserPolicy like any other
            return api_call.handle(event, ctx)
        exposure = parse_quarantine(event["detail"])
        via = "fast path (EventBridge)"
    else:
        if rule is None:
            return Outcome("ignored", reason=f"an AWS Health event ({RULE} is off)")
        exposure = parse_health_exposure(event)
        via = f"AWS Health ({event.get('region') or '?'})"
    if exposure is None:
        why = "no RISK event" if event.get("source") == HEALTH_SOURCE else "no quarantine"
        return Outcome("ignored", reason=f"an event that is {why}")
    return report_exposures([exposure], ctx, via=via)


def report_exposures(exposures: Sequence[KeyExposure], ctx: Context, *, via: str) -> Outcome:
    rule = ctx.rules.get(RULE)
    if rule is None:
        return Outcome("ignored", reason=f"{RULE} is off")
    if not exposures:
        return Outcome("ignored", reason="no exposed key")
    sent = deliver([_notice(e, rule, ctx, via) for e in exposures], ctx)
    sent.raise_if_incomplete()
    reason = "; ".join(sent.notes) or None
    if not sent.messages:
        return Outcome(
            "already-reported",
            len(exposures),
            reason="posted already ("
            + (
                "the same event from AWS Health's other region"
                if exposures[0].kind == "health"
                else "an earlier delivery"
            )
            + ")",
        )
    return Outcome("posted", len(exposures), reason=reason, slack_status=sent.slack_status)


def _notice(exposure: KeyExposure, rule: Rule, ctx: Context, via: str) -> Notice:
    names = ctx.account_names([exposure.account_id] if exposure.account_id else [])
    late = ctx.late_note(exposure.time) if exposure.time else None

    def compose(destination: Destination) -> Payload:
        return build_key_exposed_message(
            exposure,
            rule=rule,
            via=via,
            late=late,
            mention=destination.mention,
            account_names=names,
        )

    prefix = HEALTH if exposure.kind == "health" else QUARANTINE
    return Notice(
        (prefix + exposure.dedupe_key,), (rule.name,), rule.severity, exposure.account_id, compose
    )
