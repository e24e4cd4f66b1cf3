"""Build Slack Block Kit payloads. Pure functions: no I/O, no clock.

Every value that comes from a CloudTrail record is attacker-influenced (the
user agent is whatever the browser sent; user names are typed at the sign-in
page), so it goes through ``escape`` before it reaches mrkdwn or plain_text.
Links are carried in button ``url`` fields, never as ``<url|text>`` markup, so
no text field of a payload ever needs a raw ``<``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec
from urllib.parse import quote

from . import ip_location
from .api_calls import ApiCall, KeyExposure, mask_key, mask_key_ids
from .events import AlarmWindow, SignIn
from .key_windows import WindowSummary
from .routing import mention_markup
from .rules import (
    KEY_RULE_NAMES,
    RULE_PHRASES,
    TAMPER_RULE,
    Alert,
    Burst,
    Rule,
    highest,
    in_display_order,
)
from .tamper import STACK_SET_COMMAND, TamperEvent

MAX_LISTED = 10
USER_AGENT_LIMIT = 80
_VALUE_LIMIT = 200  # names and ARNs are short in practice; keep a crafted one from bloating
_HEADER_LIMIT = 150  # Slack's limit for header blocks
# A burst lists its IPs, names and successes one line each, each line within this many
# characters (as many entries as fit, then "and N more"): its section stays under 3,000.
_LIST_LINE = 700
_LIST_VALUE_LIMIT = 100  # one entry of such a list, escaped


@dataclass(frozen=True)
class SlackLimits:
    """What Slack takes in one message (Block Kit reference; DESIGN.md, "Slack webhook
    answers"). Past any of them a webhook answers 400 (``invalid_blocks``), which no
    retry can change, so ``fit_to_slack`` keeps every payload within them."""

    blocks: int = 50
    message_text: int = 40_000  # the top-level text (Slack cuts it beyond)
    text: int = 3_000  # any text object
    section: int = 3_000
    header: int = 150
    fields: int = 10
    field: int = 2_000
    context_elements: int = 10
    button_text: int = 75
    url: int = 3_000
    action_id: int = 255
    block_id: int = 255
    # Not in the reference, but Slack refuses blocks whose text adds up to about 12,000
    # characters or more (``msg_blocks_too_long``; slackapi/bolt-js#2509, #2867; the
    # markdown block documents 12,000 in all). Kept well under; a digest of ten typical
    # sign-ins uses about 5,000.
    blocks_text: int = 10_000


SLACK_LIMITS = SlackLimits()


def slack_length(text: str) -> int:
    """``text``'s length in UTF-16 code units: an emoji beyond the BMP counts two. The
    stricter of the ways Slack's limits could count a "character"."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


_IDENTITY_LABELS = {"IAMUser": "IAM user", "AssumedRole": "Assumed role", "Root": "ROOT account"}
_SSO_MFA_NOTE = "federated/SSO sign-ins always report No; MFA happens at the identity provider"


def escape(text: str) -> str:
    """Escape the three characters Slack treats as control characters in text.

    ``&`` first, so the entities introduced for ``<`` and ``>`` are not re-escaped.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def shorten(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Line breaks (and other control characters) in an event value would let it start a line
# of its own in the message, one that could pass for a real "*Source IP:*" line.
_ONE_LINE = {code: " " for code in (*range(0x20), 0x7F, 0x85, 0x2028, 0x2029)}


def _value(text: str, limit: int = _VALUE_LIMIT) -> str:
    """An event value on one line, shortened *before* escaping so an entity is never cut
    in half."""
    return escape(shorten(text.translate(_ONE_LINE), limit))


def _code(text: str, limit: int = _VALUE_LIMIT) -> str:
    """An event value as inline code; a backtick in it would end the span early."""
    inner = _value(text.replace("`", "'"), limit)
    return f"`{inner}`"


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def cloudtrail_event_url(region: str, event_id: str) -> str:
    region_q = quote(region, safe="")
    return (
        f"https://{region_q}.console.aws.amazon.com/cloudtrailv2/home"
        f"?region={region_q}#/events/{quote(event_id, safe='')}"
    )


def log_group_url(region: str, log_group: str) -> str:
    # The CloudWatch console double-encodes the name and writes "%" as "$": "/" → "$252F".
    encoded = quote(quote(log_group, safe=""), safe="").replace("%", "$")
    region_q = quote(region, safe="")
    return (
        f"https://{region_q}.console.aws.amazon.com/cloudwatch/home"
        f"?region={region_q}#logsV2:log-groups/log-group/{encoded}"
    )


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": _plain(shorten(text, _HEADER_LIMIT))}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(text)]}


def _link_button(label: str, url: str, action_id: str) -> dict[str, Any]:
    return {"type": "button", "text": _plain(label), "url": url, "action_id": action_id}


_P = ParamSpec("_P")


def _fitted(build: Callable[_P, dict[str, Any]]) -> Callable[_P, dict[str, Any]]:
    """A message builder whose every payload passes ``fit_to_slack`` on its way out."""

    @functools.wraps(build)
    def fitted(*args: _P.args, **kwargs: _P.kwargs) -> dict[str, Any]:
        return fit_to_slack(build(*args, **kwargs))

    return fitted


def describe_who(sign_in: SignIn) -> str:
    """Identity type and name as mrkdwn; the root account is made impossible to miss."""
    if sign_in.is_root:
        return ":rotating_light: *ROOT account*"
    label = _IDENTITY_LABELS.get(sign_in.identity_type) or _value(sign_in.identity_type)
    name = _code(sign_in.user_name) if sign_in.user_name else "_unknown_"
    if sign_in.identity_type == "AssumedRole":
        who = f"*{label}* session {name}"
        if sign_in.role_name:
            who += f" (role {_code(sign_in.role_name)})"
        return who
    return f"*{label}* {name}"


def who_plain(sign_in: SignIn) -> str:
    if sign_in.is_root:
        return "ROOT account"
    return _value(sign_in.user_name or sign_in.identity_type)


def _outcome(sign_in: SignIn) -> str:
    if sign_in.success:
        return ":white_check_mark: Success"
    detail = f" — {_value(sign_in.error_message)}" if sign_in.error_message else ""
    return f":x: *Failure*{detail}"


def _mfa(sign_in: SignIn) -> str:
    if sign_in.identity_type == "AssumedRole":
        return f"{sign_in.mfa_used} _({_SSO_MFA_NOTE})_"
    if sign_in.mfa_used == "No" and sign_in.success:
        return "No :warning:"  # a password alone got in
    return sign_in.mfa_used


_SEVERITY_EMOJI = {
    "critical": ":rotating_light:",
    "high": ":warning:",
    "medium": ":large_orange_diamond:",
    "low": ":information_source:",
}


def _as_alert(item: SignIn | Alert) -> Alert:
    return item if isinstance(item, Alert) else Alert(item, ())


def _rules_line(alert: Alert) -> str:
    if not alert.sign_in.success and not alert.note:
        # The allowlist alarm's digest lists failures from outside as context: no rule
        # alerts on a failed sign-in by itself (failed_sign_ins counts bursts).
        return "*Rules:* none — a failed attempt, listed as context"
    rules = " · ".join(f"`{r.name}` ({r.severity})" for r in alert.rules)
    note = f" — {escape(alert.note)}" if alert.note else ""
    return f"*Rules:* {rules}{note}"


def where(source_ip: str) -> str:
    """Where an address is (ip_location.describe: country and owner, a special range, an
    allowlist entry's label), escaped for mrkdwn."""
    return escape(ip_location.describe(source_ip))


def account_text(account_id: str, names: Mapping[str, str] | None = None) -> str:
    """``111122223333 (production)``: the id, and its name from Organizations if known."""
    name = (names or {}).get(account_id)
    shown = _value(account_id) or "unknown"
    return f"{shown} ({_value(name)})" if name else shown


def sign_in_block(
    item: SignIn | Alert, index: int, account_names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    alert = _as_alert(item)
    sign_in = alert.sign_in
    lines = [f"{describe_who(sign_in)} · {_outcome(sign_in)}"]
    if alert.rules:
        lines.append(_rules_line(alert))
    lines += [
        f"*Source IP:* {_code(sign_in.source_ip)} ({where(sign_in.source_ip)})"
        f"   *Time:* {_utc(sign_in.event_time)}",
        f"*MFA used:* {_mfa(sign_in)}   *Region:* {_value(sign_in.region) or '_unknown_'}"
        f"   *Account:* {account_text(sign_in.account_id, account_names)}",
        f"*User agent:* {_code(sign_in.user_agent, USER_AGENT_LIMIT)}",
    ]
    block: dict[str, Any] = {"type": "section", "text": _mrkdwn("\n".join(lines))}
    if sign_in.event_id and sign_in.region:
        block["accessory"] = _link_button(
            "Open in CloudTrail",
            cloudtrail_event_url(sign_in.region, sign_in.event_id),
            f"cloudtrail-event-{index}",
        )
    return block


def _headline_phrase(alerts: Sequence[Alert]) -> str:
    """What the sign-ins have in common: one rule's phrase, or that several matched."""
    names = {r.name for a in alerts for r in a.rules} - {"root_sign_in"}
    if not alerts or not any(a.rules for a in alerts):
        return RULE_PHRASES["outside_allowlist"]
    if len(names) == 1:
        return RULE_PHRASES[names.pop()]
    return "that match loginwatch rules" if names else "by the ROOT account"


def _lead(alerts: Sequence[Alert], mention: str) -> str:
    """The first line under the header: the mention (if the destination has one), the
    severity and the rules, root first."""
    rules = in_display_order({r for a in alerts for r in a.rules})
    parts = [mention_markup(mention)] if mention else []
    if rules:
        severity = highest(rules)
        parts.append(f"{_SEVERITY_EMOJI[severity]} *{severity.upper()}*")
        parts.append(", ".join(f"`{r.name}`" for r in rules))
    return " · ".join(parts)


@_fitted
def build_alert_message(
    sign_ins: Sequence[SignIn | Alert],
    *,
    account_id: str,
    alarm_name: str,
    already_firing: bool = False,
    fast_path_seconds: float | None = None,
    already_reported: int = 0,
    late: str | None = None,
    mention: str = "",
    account_names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One message for every sign-in from outside the allowlist (``sign_ins`` is
    already newest first), listing at most MAX_LISTED.

    ``already_firing``: these sign-ins arrived while the alarm was already in
    ALARM (so they caused no notification of their own) and are reported when it
    returned to OK; the header says so, so nobody reads them as a fresh alarm.
    ``fast_path_seconds``: it came by the fast path (EventBridge), this many
    seconds after the sign-in. ``already_reported``: sign-ins of the alarm's
    window left out because the fast path reported them already. ``late``: it was
    kept in the retry queue while delivery failed ("delayed 63 min: Slack was
    unavailable"); the message says so first, so nobody reads it as happening now.
    Each ``Alert`` names the rules its sign-in matched; the first line under the
    header gives the highest severity and every rule (``mention``, from the
    destination's config, goes at its start). A root sign-in is always said first.
    """
    alerts = [_as_alert(item) for item in sign_ins]
    events = [a.sign_in for a in alerts]
    total = len(events)
    roots = sum(1 for s in events if s.is_root)
    # Failed attempts listed as context are counted apart: "2 sign-ins" beside a filter
    # that counted 2 successful ones must not read as 3.
    context_only = sum(1 for a in alerts if not a.sign_in.success and not a.note)
    counted = total - context_only if context_only < total else total
    kind = "console sign-in" if counted == 1 else "console sign-ins"
    count = f"{counted} more" if already_firing else str(counted)
    headline = f"{count} {kind} {_headline_phrase(alerts)}"
    if context_only and counted != total:
        headline += f" (and {context_only} failed attempt{'s' if context_only > 1 else ''})"
    when = ""
    if already_firing:
        headline += " while the alarm was already firing"
        when = " · reported as the alarm returned to OK"
    # The sign-ins' own account (an organization trail brings every member's), if one.
    accounts = {s.account_id for s in events if s.account_id}
    account = account_text(accounts.pop() if len(accounts) == 1 else account_id, account_names)
    alarm = escape(alarm_name)
    if fast_path_seconds is not None:
        context = (
            f"Account *{account}* · fast path (EventBridge) · sent "
            f"{_seconds(fast_path_seconds)} after the sign-in · times in UTC"
        )
    else:
        context = f"Account *{account}* · Alarm *{alarm}*{when} · newest first, times in UTC"
    if already_reported:
        context += f" · {already_reported} more already reported by the fast path"
    if late:
        context = f":hourglass: *{escape(late)}* · {context}"
    lead = _lead(alerts, mention)
    if lead:
        context = f"{lead}\n{context}"
    root_first = "ROOT account sign-in · " if roots else ""
    blocks: list[dict[str, Any]] = [
        _header(f"{':rotating_light:' if roots else ':warning:'} {root_first}{headline}"),
        _context(context),
    ]
    if roots:
        blocks.append(
            {
                "type": "section",
                "text": _mrkdwn(
                    ":rotating_light: *Includes a ROOT account sign-in.* "
                    "The root user should almost never be used — check this now."
                ),
            }
        )
    for index, alert in enumerate(alerts[:MAX_LISTED]):
        blocks.append({"type": "divider"})
        blocks.append(sign_in_block(alert, index, account_names))
    if total > MAX_LISTED:
        blocks.append(_context(f"…and {total - MAX_LISTED} more not shown."))
    listed = ", ".join(f"{who_plain(s)} from {_value(s.source_ip)}" for s in events[:MAX_LISTED])
    more = f" …and {total - MAX_LISTED} more" if total > MAX_LISTED else ""
    root_note = "ROOT account sign-in! " if roots else ""
    via = "fast path" if fast_path_seconds is not None else f"alarm {alarm}"
    rules = in_display_order({r for a in alerts for r in a.rules})
    severity = f"[{highest(rules).upper()}] " if rules else ""
    text = f"{root_note}{severity}{headline} in account {account} ({via}): {listed}{more}"
    if late:
        text = f"[{escape(late)}] {text}"
    if mention:
        text = f"{mention_markup(mention)} {text}"
    return {"text": text, "blocks": blocks, "unfurl_links": False, "unfurl_media": False}


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.0f} min"


@_fitted
def build_burst_message(
    *, account_id: str, count: int, window_minutes: int, mention: str = ""
) -> dict[str, Any]:
    """Sent once per burst window when sign-ins keep coming: the rest follow as one digest."""
    account = escape(account_id) or "unknown"
    headline = f"{count} console sign-ins that match loginwatch rules within {window_minutes} min"
    lead = f"{mention_markup(mention)} " if mention else ""
    body = (
        ":rotating_light: *This looks like a burst* (credential stuffing, or a script). "
        "To keep the channel readable, the fast path stops posting each one: every further "
        "sign-in is listed in the alarm's digest within minutes."
    )
    return {
        "text": f"{lead}{headline} in account {account}: more are listed in the alarm digest",
        "blocks": [
            _header(f":rotating_light: {headline}"),
            _context(f"{lead}Account *{account}* · fast path (EventBridge)"),
            {"type": "section", "text": _mrkdwn(body)},
        ],
        "unfurl_links": False,
        "unfurl_media": False,
    }


def _list_value(text: str, limit: int = _LIST_VALUE_LIMIT) -> str:
    """An event value escaped and at most ``limit`` characters long: cut between the
    value's characters, so an entity is never cut in half."""
    text = text.translate(_ONE_LINE)
    escaped = escape(text)
    if slack_length(escaped) <= limit:
        return escaped
    kept: list[str] = []
    size = 0
    for char in text:
        piece = escape(char)
        size += slack_length(piece)
        if size > limit - 1:
            break
        kept.append(piece)
    return "".join(kept) + "…"


def _list_code(text: str) -> str:
    inner = _list_value(text.replace("`", "'"))
    return f"`{inner}`"


def _list_who(sign_in: SignIn) -> str:
    if sign_in.is_root:
        return "ROOT account"
    return _list_value((sign_in.user_name or sign_in.identity_type).replace("`", "'"))


def _listing(entries: Sequence[str], total: int, line: int = _LIST_LINE) -> str:
    """The first ``entries`` (of ``total``) that fit in ``line`` characters, one at least,
    then "and N more" for every one not shown: a long list never goes silent."""
    shown: list[str] = []
    used = 0
    for entry in entries:
        used += slack_length(entry) + (2 if shown else 0)
        if shown and used > line:
            break
        shown.append(entry)
    more = total - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


@_fitted
def build_failure_burst_message(
    burst: Burst,
    *,
    via: str,
    allowed: Callable[[str], bool],
    mention: str = "",
    late: str | None = None,
    account_names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``failed_sign_ins``: the burst, not each attempt. Who was tried, from where, how
    often, first and last time, and whether one of them then got in."""
    rule = burst.rule
    account = account_text(burst.account_id, account_names)
    span = f"{_utc(burst.first)} → {_utc(burst.last)}"
    ips = _listing(
        [
            f"{_list_code(ip)} ({_list_value(ip_location.describe(ip))})"
            + (" (allowlisted)" if allowed(ip) else "")
            for ip in burst.source_ips[:MAX_LISTED]
        ],
        len(burst.source_ips),
    )
    users = _listing([_list_code(u) for u in burst.user_names[:MAX_LISTED]], len(burst.user_names))
    headline = f"{burst.count} failed console sign-ins within {rule.minutes} min"
    lead = _lead([Alert(burst.failures[0], (rule,))], mention)
    context = f"{lead}\nAccount *{account}* · {escape(via)} · times in UTC"
    if late:
        context = f":hourglass: *{escape(late)}* · {context}"
    lines = [
        f"*Failed sign-ins:* {burst.count} (threshold {rule.threshold} within {rule.minutes} min)",
        f"*First:* {_utc(burst.first)}   *Last:* {_utc(burst.last)}",
        f"*Source IPs:* {ips or '_unknown_'}",
        f"*User names tried:* {users or '_unknown_'}",
    ]
    if burst.succeeded:
        got_in = _listing(
            [
                f"{_list_who(s)} from {_list_code(s.source_ip)} at {_utc(s.event_time)}"
                for s in burst.succeeded[:MAX_LISTED]
            ],
            len(burst.succeeded),
        )
        lines.append(f":rotating_light: *Then signed in successfully:* {got_in}")
    else:
        lines.append("No successful sign-in from these IPs or names followed (so far).")
    text = f"[{rule.severity.upper()}] {headline} in account {account} ({span})"
    if burst.succeeded:
        text += " — then one of them signed in"
    if late:
        text = f"[{escape(late)}] {text}"
    if mention:
        text = f"{mention_markup(mention)} {text}"
    return {
        "text": text,
        "blocks": [
            _header(f":no_entry: {headline}"),
            _context(context),
            {"type": "section", "text": _mrkdwn("\n".join(lines))},
        ],
        "unfurl_links": False,
        "unfurl_media": False,
    }


# What an alarm counts, for the message when its window holds none of it.
_EMPTY_WINDOW = {
    "outside_allowlist": "no console sign-ins from outside the allowlist were found",
    "root_sign_in": "no root console sign-in was found. Its filter counts every use of the "
    "root user, so this may be root credentials used outside the console (access keys)",
    "no_mfa": "no console sign-in without MFA was found",
    "failed_sign_ins": "no failed console sign-ins were found",
    "access_key_outside_allowlist": "no API call signed with an access key from outside the "
    "allowlist was found",
    "credentials_exposed": "no AWS quarantine policy attached to a user was found",
    "tamper": "no change that can switch loginwatch off (to the trail, or to loginwatch's "
    "own resources) was found",
}


@_fitted
def build_empty_window_message(
    *,
    account_id: str,
    alarm_name: str,
    window: AlarmWindow,
    region: str,
    log_group: str,
    rule: str = "outside_allowlist",
    mention: str = "",
) -> dict[str, Any]:
    """The alarm fired but the window holds nothing its rule alerts for."""
    account = escape(account_id) or "unknown"
    alarm = escape(alarm_name)
    span = f"{_utc(window.start)} and {_utc(window.end)}"
    found = _EMPTY_WINDOW.get(rule, _EMPTY_WINDOW["outside_allowlist"])
    text = (
        f"Alarm *{alarm}* in account *{account}* fired, but {found} between {span}. "
        "CloudTrail can take longer than usual to deliver events, or the alarm state was "
        f"set by hand. Check the trail log group `{escape(log_group)}`."
    )
    if mention:
        text = f"{mention_markup(mention)} {text}"
    block = {
        "type": "section",
        "text": _mrkdwn(f":grey_question: {text}"),
        "accessory": _link_button("Open log group", log_group_url(region, log_group), "log-group"),
    }
    return {"text": text, "blocks": [block], "unfurl_links": False, "unfurl_media": False}


CHAIN = "alarm → SNS → Lambda → Slack"


@_fitted
def build_test_message(
    *,
    test_id: str,
    account_id: str,
    alarm_name: str,
    path: str = CHAIN,
    destination: str = "",
    rule: str | None = None,
) -> dict[str, Any]:
    """A clearly labelled test, so nobody mistakes it for a real sign-in alert.

    ``path`` names what the test proves: the whole chain (from the notifier), or
    only the webhook (``loginwatch test-alert --via slack`` posts directly).
    """
    # `--via slack` makes no AWS call, so it knows no account: it names none.
    where = f" in account *{escape(account_id)}*" if account_id else ""
    alarm = escape(alarm_name)
    test = escape(test_id)
    route = escape(path)
    reaches = ""
    nothing = "Nobody signed in; there is nothing to do."
    if rule in KEY_RULE_NAMES:
        nothing = "No access key was used or exposed; there is nothing to do."
    elif rule == TAMPER_RULE:
        nothing = (
            "No change was made to the trail or to loginwatch's resources; there is nothing to do."
        )
    if rule:
        reaches = f" Alerts of rule `{escape(rule)}` reach this channel"
        reaches += f" (destination `{escape(destination)}`)." if destination else "."
    body = (
        f"This is a *test* sent by `loginwatch test-alert` (test id `{test}`). "
        f"The path {route} works for alarm *{alarm}* "
        f"{where}.{reaches} {nothing}"
    )
    return {
        "text": f"[TEST] loginwatch test alert {test}: {route} works",
        "blocks": [
            _header(":test_tube: TEST — loginwatch test alert"),
            {"type": "section", "text": _mrkdwn(body)},
        ],
        "unfurl_links": False,
        "unfurl_media": False,
    }


# ------------------------------------------------------------------ access keys

_KEY_IDENTITY_LABELS = {"IAMUser": "IAM user", "FederatedUser": "Federated user"}
_KEY_LIST_LINE = 1_500  # the follow-up's lists of kinds, regions and notable calls


def _key_lead(rule: Rule, mention: str) -> str:
    parts = [mention_markup(mention)] if mention else []
    parts.append(f"{_SEVERITY_EMOJI.get(rule.severity, '')} *{rule.severity.upper()}*".strip())
    parts.append(f"`{rule.name}`")
    return " · ".join(parts)


def _key_who(identity_type: str, who: str) -> str:
    if identity_type == "Root":
        return ":rotating_light: *ROOT account*"
    label = _KEY_IDENTITY_LABELS.get(identity_type) or _value(identity_type or "principal")
    return f"*{label}* {_code(who)}" if who else f"*{label}* _unknown_"


def _with_mention(text: str, mention: str, late: str | None) -> str:
    if late:
        text = f"[{escape(late)}] {text}"
    return f"{mention_markup(mention)} {text}" if mention else text


def _key_named(masked: str) -> str:
    """How a headline names the key: ``access key AKIA…MPLE``, or that none was recorded."""
    return f"access key {masked}" if masked.startswith(("AKIA", "ASIA")) else "an access key"


def _key_context(rule: Rule, mention: str, account: str, via: str, late: str | None) -> str:
    context = f"{_key_lead(rule, mention)}\nAccount *{account}* · {escape(via)} · times in UTC"
    return f":hourglass: *{escape(late)}* · {context}" if late else context


@_fitted
def build_key_call_message(
    call: ApiCall,
    *,
    rule: Rule,
    window_minutes: int,
    via: str,
    late: str | None = None,
    mention: str = "",
    account_names: Mapping[str, str] | None = None,
    not_counted: str | None = None,
) -> dict[str, Any]:
    """The first call of an access key from an address outside the allowlist: who, which
    key (masked), from where, in which region, when, what call. Further calls of the same
    key and address are counted for ``window_minutes`` and told in one follow-up
    (``not_counted``: why they could not be, said instead)."""
    account = account_text(call.account_id, account_names)
    what = f"{call.notable}" if call.notable else call.event_name
    if call.access_key_id:
        headline = f"Access key {call.masked_key} used from outside the allowlist: {what}"
        shown_key = f"`{escape(call.masked_key)}`"
    else:
        headline = f"A call from outside the allowlist, no access key id recorded: {what}"
        shown_key = "_none recorded_"
    error = f" — failed: {_value(call.error_code)}" if call.error_code else ""
    lines = [
        _key_who(call.identity_type, call.who),
        f"*Access key:* {shown_key}   *Source IP:* {_code(call.source_ip)}"
        f" ({where(call.source_ip)})",
        f"*Call:* {_code(call.event_name)} on {_code(call.event_source or '?')}{error}",
        f"*Region:* {_value(call.region) or '_unknown_'}   *Time:* {_utc(call.event_time)}"
        f"   *Account:* {account}",
    ]
    if call.notable:
        lines.append(f":moneybag: *Notable call:* {_value(call.notable)}")
    lines.append(f"*User agent:* {_code(call.user_agent, USER_AGENT_LIMIT)}")
    section: dict[str, Any] = {"type": "section", "text": _mrkdwn("\n".join(lines))}
    if call.event_id and call.region:
        section["accessory"] = _link_button(
            "Open in CloudTrail", cloudtrail_event_url(call.region, call.event_id), "key-call"
        )
    footer = (
        escape(not_counted)
        if not_counted
        else (
            f"Further calls with this key from this address within {window_minutes} min of this "
            "one are counted, not posted: one follow-up says how many, of which kinds and where."
        )
    )
    notable = f" Notable: {_value(call.notable)}." if call.notable else ""
    text = (
        f"[{rule.severity.upper()}] {_value(headline)}, by {_value(call.who)} from "
        f"{_value(call.source_ip)} in {_value(call.region) or '?'}, account {account}.{notable}"
    )
    return {
        "text": _with_mention(text, mention, late),
        "blocks": [
            _header(f":key: {_value(headline, _HEADER_LIMIT)}"),
            _context(_key_context(rule, mention, account, via, late)),
            section,
            _context(footer),
        ],
        "unfurl_links": False,
        "unfurl_media": False,
    }


def _tally(values: Sequence[str]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _tallied(values: Sequence[str], code: bool = False) -> str:
    tally = _tally(values)
    shown = [
        (_list_code(value) if code else _list_value(value or "?")) + (f" ×{n}" if n > 1 else "")
        for value, n in tally
    ]
    return _listing(shown, len(tally), _KEY_LIST_LINE)


@_fitted
def build_key_follow_up_message(
    summary: WindowSummary,
    *,
    rule: Rule,
    window_minutes: int,
    late: str | None = None,
    mention: str = "",
    account_names: Mapping[str, str] | None = None,
    gone_after_days: int | None = None,
) -> dict[str, Any]:
    """The one follow-up of a key's window: how many more calls, of which kinds, in which
    regions, and every notable one (money, persistence, tampering) by name.
    ``gone_after_days``: the window's count expired before its follow-up was taken; say
    so, with what is known (the key, who, the address, when the window opened)."""
    account = account_text(summary.account_id, account_names)
    count = summary.further
    noun = "call" if count == 1 else "calls"
    key = _key_named(summary.masked_key)
    if gone_after_days is not None:
        headline = f"Follow-up of {key} from {summary.source_ip}: its count is lost"
    else:
        headline = (
            f"{count} more {noun} with {key} from {summary.source_ip} within {window_minutes} min"
        )
    notables = [f"{c.notable} ({c.region or '?'})" for c in summary.calls if c.notable]
    notable_kinds = list(dict.fromkeys(c.event_name for c in summary.calls if c.notable))
    shown_key = (
        f"`{escape(summary.masked_key)}`"
        if summary.masked_key.startswith(("AKIA", "ASIA"))
        else "_none recorded_"
    )
    lines = [
        f"{_key_who(summary.identity_type, summary.who)} · *Access key:* "
        f"{shown_key} · *Source IP:* {_code(summary.source_ip)} ({where(summary.source_ip)})",
        f"*First call:* {_utc(summary.opened)} (posted then) · *Account:* {account}",
    ]
    if gone_after_days is not None:
        lines.append(
            f"This follow-up came too late: the window's count is kept {gone_after_days} days "
            "and has expired, so how many further calls were made is unknown. Look them up in "
            "CloudTrail Event history (filtered by the access key) in every region."
        )
    else:
        lines.append(f"*Calls:* {_counted_tally(summary.kinds, code=True) or '_none listed_'}")
        lines.append(f"*Regions:* {_counted_tally(summary.regions) or '_none listed_'}")
    if notables:
        kinds = ", ".join(f"`{_list_value(k)}`" for k in notable_kinds)
        lines.append(f":moneybag: *Notable calls ({kinds}):* {_tallied(notables)}")
    if summary.notable_more:
        lines.append(
            f"…and {summary.notable_more} more notable calls past the first "
            f"{len(notables)} listed (counted above by kind)."
        )
    named = f" Notable: {', '.join(_value(k) for k in notable_kinds)}." if notable_kinds else ""
    tally = _counted_tally(summary.kinds, markup=False)
    text = f"[{rule.severity.upper()}] {_value(headline)}, account {account}" + (
        f": {tally}.{named}" if tally else f".{named}"
    )
    return {
        "text": _with_mention(text, mention, late),
        "blocks": [
            _header(f":key: {_value(headline, _HEADER_LIMIT)}"),
            _context(_key_context(rule, mention, account, "follow-up", late)),
            {"type": "section", "text": _mrkdwn("\n".join(lines))},
        ],
        "unfurl_links": False,
        "unfurl_media": False,
    }


def _counted_tally(
    counts: Sequence[tuple[str, int]], code: bool = False, markup: bool = True
) -> str:
    """``RunInstances ×12, ListUsers ×3`` from a window's counters (already ordered)."""
    if not markup:
        return ", ".join(
            _value(name) + (f" ×{n}" if n > 1 else "") for name, n in counts[:MAX_LISTED]
        ) + (f" and {len(counts) - MAX_LISTED} more kinds" if len(counts) > MAX_LISTED else "")
    shown = [
        (_list_code(name) if code else _list_value(name or "?")) + (f" ×{n}" if n > 1 else "")
        for name, n in counts
    ]
    return _listing(shown, len(counts), _KEY_LIST_LINE)


_NEXT_STEPS = (
    "*What to do now:*\n"
    "1. *Deactivate the key* (IAM → Users → {user} → Security credentials → Deactivate), "
    "then delete it and give whatever used it a new one.\n"
    "2. *Check `RunInstances` in every region* (and Lambda, spot requests) for what you did "
    "not launch: CloudTrail Event history, filtered by the access key, in each region. "
    "Terminate it.\n"
    "3. Look for persistence: `CreateUser`, `CreateAccessKey`, `CreateLoginProfile`, "
    "`AttachUserPolicy`/`PutUserPolicy`. Leave AWS's quarantine policy attached until done."
)


@_fitted
def build_key_exposed_message(
    exposure: KeyExposure,
    *,
    rule: Rule,
    via: str,
    late: str | None = None,
    mention: str = "",
    account_names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """AWS says a key is exposed (AWS Health, RISK), or attached its quarantine policy to
    a user: which key and user, what AWS says, and what to do next."""
    account = account_text(exposure.account_id, account_names)
    keys = ", ".join(f"`{escape(mask_key(k))}`" for k in exposure.key_ids[:MAX_LISTED])
    others = ", ".join(_code(mask_key_ids(e)) for e in exposure.entities[:MAX_LISTED])
    user = exposure.user_name
    if exposure.kind == "quarantine":
        policy = exposure.policy_arn.rsplit("/", 1)[-1]
        headline = f"AWS quarantined IAM user {user or '?'}: one of its access keys is exposed"
        lines = [
            f"*User:* {_code(user) if user else '_unknown_'}   *Policy attached:* {_code(policy)}",
            f"*Region:* {_value(exposure.region) or '_unknown_'}   *Time:* "
            f"{_utc(exposure.time) if exposure.time else '_unknown_'}   *Account:* {account}",
            "AWS attaches this policy when it finds one of the user's access keys published "
            "(a public repository, say); the AWS Health event names the key.",
        ]
        said = f"{policy} attached to {user or '?'}"
    else:
        shown = keys or "_not named_"
        headline = (
            f"AWS reports access key {mask_key(exposure.key_ids[0])} exposed"
            if exposure.key_ids
            else "AWS reports an access key exposed"
        )
        description = mask_key_ids(exposure.description)
        lines = [
            f"*Access key:* {shown}   *User:* {_code(user) if user else '_see below_'}",
            f"*AWS Health event:* {_code(exposure.event_type_code or '?')}   *Time:* "
            f"{_utc(exposure.time) if exposure.time else '_unknown_'}   *Account:* {account}",
            f"*What AWS says:* {_value(description, 1_500) or '_no description_'}",
        ]
        if others:
            lines.insert(1, f"*Also affected:* {others}")
        said = f"{exposure.event_type_code}: {mask_key_ids(exposure.description)[:300]}"
    steps = _NEXT_STEPS.format(user=_value(user) if user else "the user")
    blocks: list[dict[str, Any]] = [
        _header(f":rotating_light: {_value(headline, _HEADER_LIMIT)}"),
        _context(_key_context(rule, mention, account, via, late)),
        {"type": "section", "text": _mrkdwn("\n".join(lines))},
        {"type": "section", "text": _mrkdwn(steps)},
    ]
    if exposure.event_id and exposure.region:
        blocks[2]["accessory"] = _link_button(
            "Open in CloudTrail",
            cloudtrail_event_url(exposure.region, exposure.event_id),
            "quarantine",
        )
    text = f"[{rule.severity.upper()}] {escape(headline)} (account {account}): {escape(said)}"
    return {
        "text": _with_mention(text.translate(_ONE_LINE), mention, late),
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }


# ------------------------------------------------------------------ tampering

_TAMPER_STEPS = (
    "*What to do now:*\n"
    "1. If nobody on your team made this change, treat the principal as compromised: "
    "deactivate its access key (or revoke the role's sessions) first.\n"
    "2. Run `loginwatch status` to see what still works, then `loginwatch setup` to repair "
    "the chain (it restores rules, function, alarms, topic and trail settings).\n"
    "3. Look in CloudTrail for what else this principal did from this address."
)


def _tamper_who(change: TamperEvent) -> str:
    call = change.call
    if call.is_root:
        return ":rotating_light: *ROOT account*"
    label = _IDENTITY_LABELS.get(call.identity_type) or _KEY_IDENTITY_LABELS.get(call.identity_type)
    label = label or _value(call.identity_type or "principal")
    return f"*{label}* {_code(change.principal)}"


@_fitted
def build_tamper_message(
    change: TamperEvent,
    *,
    rule: Rule,
    via: str,
    late: str | None = None,
    mention: str = "",
    account_names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A change that can switch loginwatch off: who (principal, key masked, address, user
    agent) did what to which resource, in which region, when; and what to do."""
    call = change.call
    account = account_text(change.account_id, account_names)
    headline = f"loginwatch tampered with: {change.name} on {change.resource_text}"
    outcome = f" — *refused:* {_value(call.error_code)} (an attempt)" if call.error_code else ""
    lines = [
        _tamper_who(change),
        f"*Access key:* `{escape(call.masked_key)}`   *Source IP:* {_code(call.source_ip)}"
        f" ({where(call.source_ip)})",
        f"*Call:* {_code(change.name)} on {_code(call.event_source or '?')}{outcome}",
        f"*Resource:* {_code(change.resource_text, 400)}",
        f"*Region:* {_value(call.region) or '_unknown_'}   *Time:* {_utc(change.time)}"
        f"   *Account:* {account}",
        f"*User agent:* {_code(call.user_agent, USER_AGENT_LIMIT)}",
    ]
    if call.invoked_by:
        lines.append(f"*Made by an AWS service on its behalf:* {_code(call.invoked_by)}")
    if change.forged:
        lines.append(
            ":warning: Its user agent says loginwatch made it, but loginwatch never makes "
            "this call: the user agent is forged."
        )
    section: dict[str, Any] = {"type": "section", "text": _mrkdwn("\n".join(lines))}
    if change.event_id and call.region:
        section["accessory"] = _link_button(
            "Open in CloudTrail", cloudtrail_event_url(call.region, change.event_id), "tamper"
        )
    text = (
        f"[{rule.severity.upper()}] {_value(headline)} by {_value(change.principal)} "
        f"(key {escape(call.masked_key)}) from {_value(call.source_ip)} in "
        f"{_value(call.region) or '?'}, account {account}."
    )
    return {
        "text": _with_mention(text, mention, late),
        "blocks": [
            _header(f":rotating_light: {_value(headline, _HEADER_LIMIT)}"),
            _context(_key_context(rule, mention, account, via, late)),
            section,
            {"type": "section", "text": _mrkdwn(_TAMPER_STEPS)},
        ],
        "unfurl_links": False,
        "unfurl_media": False,
    }


@_fitted
def build_maintenance_message(
    *,
    command: str,
    who: str,
    source_ip: str,
    user_agent: str,
    account_id: str,
    started: datetime,
    changes: int,
    calls: Sequence[str],
    rule: Rule,
    overflow: int = 0,
    started_only: bool = False,
    mention: str = "",
    account_names: Mapping[str, str] | None = None,
    not_counted: str | None = None,
) -> dict[str, Any]:
    """loginwatch's own setup or teardown changed its resources: one low-severity message
    per run ("setup by alice from 203.0.113.10 changed 12 resources"). Shown, not hidden:
    the user agent that marks it can be forged. ``command`` STACK_SET_COMMAND: the
    StackSet's execution role in a member account ("StackSet deployment by …"). ``started_only``: a run's first change,
    posted at once (a forged agent must not wait for a follow-up its author could stop). ``not_counted``: what
    the claims table could not count (the alarm path's one message for them)."""
    account = account_text(account_id, account_names)
    noun = "resource" if changes == 1 else "resources"
    stack_set = command == STACK_SET_COMMAND
    doing = "StackSet deployment" if stack_set else command
    if started_only:
        headline = f"{doing} by {who} from {source_ip} is changing loginwatch's resources"
    else:
        headline = f"{doing} by {who} from {source_ip} changed {changes} {noun}"
    lead = [mention_markup(mention)] if mention else []
    lead += [f"{_SEVERITY_EMOJI['low']} *MAINTENANCE*", f"`{rule.name}`"]
    listed = _tallied([c for c in calls if c], code=True) or "_none listed_"
    lines = [
        f"*Who:* {_code(who)}   *Source IP:* {_code(source_ip)} ({where(source_ip)})"
        f"   *Account:* {account}",
        f"*Started:* {_utc(started)}   *Changes:* {changes}"
        + (f" (and {overflow} more counted, not listed)" if overflow else ""),
        f"*Calls:* {listed}",
        f"*User agent:* {_code(user_agent, USER_AGENT_LIMIT)}",
    ]
    if not_counted:
        lines.append(_value(not_counted, 500))
    footer = (
        "Its user agent says loginwatch's own `"
        + escape(command)
        + "` made these changes. A user agent can be forged: if nobody on your team ran it, "
        "run `loginwatch status`, then `loginwatch setup` to repair, and treat the "
        "principal as compromised."
    )
    if stack_set:
        footer = (
            "CloudFormation StackSets' own execution role (stacksets-exec-…) made these "
            f"changes in member account {account}: the StackSet deploying loginwatch's "
            "member template (`loginwatch setup`, or an account joining the organization). "
            "It is shown, not hidden: if nobody ran setup and no account joined, check the "
            "StackSet's operations and who can change IAM roles named stacksets-exec-* in "
            "that account."
        )
        if started_only:
            footer = "A summary of the run follows when it is over. " + footer
    elif started_only and command == "teardown":
        footer = (
            "Teardown removes the rules, the function and the queue as it goes: what it did "
            "after this may not be reported. " + footer
        )
    elif started_only:
        footer = "A summary of the run follows when it is over. " + footer
    text = f"[MAINTENANCE] {_value(headline)} (account {account})."
    return {
        "text": _with_mention(text, mention, None),
        "blocks": [
            _header(f":wrench: {_value(headline, _HEADER_LIMIT)}"),
            _context(" · ".join(lead)),
            {"type": "section", "text": _mrkdwn("\n".join(lines))},
            _context(footer),
        ],
        "unfurl_links": False,
        "unfurl_media": False,
    }


# ------------------------------------------------------------------ the final guard


def fit_to_slack(payload: Mapping[str, Any], limits: SlackLimits = SLACK_LIMITS) -> dict[str, Any]:
    """``payload`` within every limit Slack checks (``SlackLimits``), whatever went into it.

    Slack answers a payload past a limit with a 400, the same on every retry, so the
    alert would never arrive. Every builder's payload passes through here
    (``_fitted``); one already within the limits comes back unchanged. Pure: the
    argument is not modified.

    - Text over its limit is cut and marked "…": in a text of several lines, the
      longest lines are cut first, so every line keeps its label; a cut is never
      made inside an entity (``&amp;``) or the mention markup, and closes a code
      span it opened.
    - Past 50 blocks, the last ones are left out and a context block says so; a
      context block that ends the message (its footer) stays last.
    - Fields and context elements past 10 are left out; a button whose URL is too
      long is left out (a shortened URL would be a wrong one).
    - When the blocks' text adds up to more than ``limits.blocks_text``, the
      longest texts are cut to an equal share.
    """
    fitted = copy.deepcopy(dict(payload))
    text = fitted.get("text")
    if isinstance(text, str):
        fitted["text"] = _fit_text(text, limits.message_text)
    blocks = fitted.get("blocks")
    if isinstance(blocks, list):
        blocks = [_fit_block(block, limits) for block in _fit_count(blocks, limits)]
        objects = [obj for block in blocks for obj in _text_objects(block)]
        sizes = [slack_length(obj["text"]) for obj in objects]
        if sum(sizes) > limits.blocks_text:
            share = _level(sizes, limits.blocks_text)
            for obj, size in zip(objects, sizes, strict=True):
                if size > share:
                    obj["text"] = _fit_text(obj["text"], share)
        fitted["blocks"] = blocks
    return fitted


def _fit_count(blocks: list[Any], limits: SlackLimits) -> list[Any]:
    if len(blocks) <= limits.blocks:
        return blocks
    last = blocks[-1]
    footer = [last] if isinstance(last, Mapping) and last.get("type") == "context" else []
    kept = blocks[: limits.blocks - 1 - len(footer)]
    while kept and isinstance(kept[-1], Mapping) and kept[-1].get("type") == "divider":
        kept.pop()
    return [*kept, _context("…the rest did not fit in one Slack message."), *footer]


def _fit_block(block: Any, limits: SlackLimits) -> Any:
    if not isinstance(block, dict):
        return block
    kind = block.get("type")
    if isinstance(block.get("block_id"), str):
        block["block_id"] = block["block_id"][: limits.block_id]
    if kind == "header":
        _fit_object(block.get("text"), limits.header)
    elif kind == "section":
        _fit_object(block.get("text"), limits.section)
        fields = block.get("fields")
        if isinstance(fields, list):
            del fields[limits.fields :]
            for field in fields:
                _fit_object(field, limits.field)
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and not _fit_element(accessory, limits):
            del block["accessory"]
    elif kind == "context":
        elements = block.get("elements")
        if isinstance(elements, list):
            del elements[limits.context_elements :]
            for element in elements:
                _fit_object(element, limits.text)
    for obj in _text_objects(block):  # any other text: the limit of every text object
        obj["text"] = _fit_text(obj["text"], limits.text)
    return block


def _fit_element(element: dict[str, Any], limits: SlackLimits) -> bool:
    """Fit a button (or any element with text, url, action_id); False: leave it out."""
    url = element.get("url")
    if isinstance(url, str) and len(url) > limits.url:
        return False
    if isinstance(element.get("action_id"), str):
        element["action_id"] = element["action_id"][: limits.action_id]
    if element.get("type") == "button":
        _fit_object(element.get("text"), limits.button_text)
    return True


def _fit_object(obj: Any, limit: int) -> None:
    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        obj["text"] = _fit_text(obj["text"], limit)


def _text_objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every text object (mrkdwn or plain_text) under ``node``."""
    if isinstance(node, dict):
        if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
            yield node
            return
        for value in node.values():
            yield from _text_objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from _text_objects(item)


_MIN_LINE = 24  # below this, cutting each line says less than cutting the text's end


def _fit_text(text: str, limit: int) -> str:
    """``text`` in at most ``limit``: a text of several lines keeps every line (the
    longest cut first), unless that would leave each too short to read."""
    if slack_length(text) <= limit:
        return text
    lines = text.split("\n")
    if len(lines) > 1:
        share = _level([slack_length(line) for line in lines], limit - (len(lines) - 1))
        if share >= _MIN_LINE:
            return "\n".join(_cut(line, share) for line in lines)
    return _cut(text, limit)


def _cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit``, a cut marked "…": never inside an entity or
    ``<...>`` markup, and a code span the cut leaves open is closed."""
    if slack_length(text) <= limit:
        return text
    room = max(limit - 2, 0)  # the ellipsis, and perhaps a closing backtick
    kept = text[:room]
    while slack_length(kept) > room:
        kept = kept[: len(kept) - (slack_length(kept) - room)]
    for opening, closing in (("&", ";"), ("<", ">")):
        at = kept.rfind(opening)
        if at >= 0 and closing not in kept[at:]:
            kept = kept[:at]
    return kept + "…" + ("`" if kept.count("`") % 2 else "")


def _level(sizes: Sequence[int], budget: int) -> int:
    """The largest share such that ``sizes``, each cut to it, add up to ``budget`` or less."""
    ordered = sorted(sizes)
    left = budget
    for index, size in enumerate(ordered):
        share = left // (len(ordered) - index)
        if size > share:
            return max(share, 0)
        left -= size
    return ordered[-1] if ordered else budget
