"""`loginwatch test-alert --via fast-path`: a marked test event → a labelled test message.

EventBridge reserves ``aws.*`` sources, so the test event has loginwatch's own
source (protocol.TEST_EVENT_SOURCE), which every sign-in rule also matches. It
travels the real fast path (forwarding rule → home bus → home rule → Lambda) and
is posted where the tested rule's alerts would go (dispatch.post_test).

`test-alert --rule access_key_outside_allowlist` sends one shaped like an API call from
outside the allowlist (detail-type ``AWS API Call via CloudTrail``), `--rule
credentials_exposed` one shaped like an AWS Health event, `--rule tamper` a CloudTrail
``StopLogging`` (forwarded by the tamper rules): the same source, so they come here too,
never to the paths of real calls and Health events (which take ``aws.*`` sources only),
and are posted as labelled tests routed as that rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..context import Context, Outcome
from ..dispatch import Payload, post_test
from ..protocol import (
    TEST_API_CALL_DETAIL_TYPE,
    TEST_EVENT_SOURCE,
    TEST_HEALTH_DETAIL_TYPE,
    TEST_ID_PATTERN,
)
from ..routing import Destination
from ..rules import TAMPER_RULE, Rule
from ..slack_message import build_test_message

_TEST_ID_RE = re.compile(rf"\A{TEST_ID_PATTERN}\Z")
# What each kind of test event stands for, as the message names its path.
_KINDS = {
    TEST_API_CALL_DETAIL_TYPE: "API-call path",
    TEST_HEALTH_DETAIL_TYPE: "AWS Health path",
}


def recognises(event: Any) -> bool:
    return (
        isinstance(event, Mapping)
        and event.get("source") == TEST_EVENT_SOURCE
        and "detail" in event
    )


def handle(event: Mapping[str, Any], ctx: Context) -> Outcome:
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        return Outcome("ignored", reason="EventBridge event without a detail object")
    test_id = detail.get("loginwatchTestId")
    if not isinstance(test_id, str) or not _TEST_ID_RE.match(test_id):
        return Outcome("ignored", reason="test event without a valid test id")
    origin = str(detail.get("awsRegion") or event.get("region") or "?")
    kind = _KINDS.get(str(event.get("detail-type")), "fast path")
    if detail.get("loginwatchTestRule") == TAMPER_RULE:
        kind = "tamper path"  # an API call too, forwarded by the tamper rules

    def message(destination: Destination, rule: Rule | None) -> Payload:
        return build_test_message(
            test_id=test_id,
            account_id=str(event.get("account", "")),
            alarm_name=ctx.settings.alarm_name,
            path=f"{kind}: EventBridge ({origin}) → Lambda → Slack",
            destination=destination.name,
            rule=rule.name if rule else None,
        )

    ctx.progress.test_id = test_id
    # Only an enabled rule's name is taken from the event (anyone who may put events on
    # the bus may send one); anything else tests the default route.
    status, _ = post_test(
        ctx.routes, ctx.rules, detail.get("loginwatchTestRule"), ctx.post, message
    )
    return Outcome("test-posted", test_id=test_id, slack_status=status)
