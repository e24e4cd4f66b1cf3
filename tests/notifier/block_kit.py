"""Does Slack take this payload? Block Kit validation for the notifier's messages.

``assert_slack_takes(payload)`` parses every block with slack_sdk's Block Kit
models (a test dependency only: the Lambda package stays stdlib + boto3) and
checks the limits those models do not: at most 50 blocks, fields of at most
2,000 characters, every text object 1 to 3,000 characters, the top-level text
at most 40,000, the whole message's block text within the notifier's budget.

Lengths are counted in UTF-16 code units (an emoji outside the BMP counts 2),
the stricter of the ways a "character" can be counted, as the guard does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from slack_sdk.models.blocks import Block

from loginwatch.notifier.slack_message import SLACK_LIMITS, slack_length

PAYLOAD_KEYS = {"text", "blocks", "unfurl_links", "unfurl_media"}
# An "&" that is not one of the three entities Slack decodes: a cut inside "&amp;"
# (or an unescaped value) would leave one.
_BARE_AMPERSAND = re.compile(r"&(?!amp;|lt;|gt;)")
# The only markup the notifier writes with a raw "<": the destination's mention.
_MENTION = re.compile(r"<!(?:here|channel|subteam\^S[A-Z0-9]{6,20})>")


def text_objects(node: Any) -> Iterator[Mapping[str, Any]]:
    """Every text object (``{"type": "mrkdwn"|"plain_text", "text": ...}``) in a block."""
    if isinstance(node, Mapping):
        if node.get("type") in ("mrkdwn", "plain_text") and "text" in node:
            yield node
        else:
            for value in node.values():
                yield from text_objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from text_objects(item)


def problems(payload: Mapping[str, Any]) -> list[str]:
    """What Slack would refuse (or mangle) in ``payload``; [] when it takes it."""
    found: list[str] = []
    limits = SLACK_LIMITS
    if set(payload) - PAYLOAD_KEYS:
        found.append(f"unexpected top-level keys {sorted(set(payload) - PAYLOAD_KEYS)}")
    text = payload.get("text")
    if not isinstance(text, str) or not text.strip():
        found.append("no top-level text (the notification and fallback text)")
    elif slack_length(text) > limits.message_text:
        found.append(f"top-level text of {slack_length(text)} > {limits.message_text}")
    else:
        found += _markup_problems("top-level text", text)
    blocks = payload.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        return [*found, "no blocks"]
    if len(blocks) > limits.blocks:
        found.append(f"{len(blocks)} blocks > {limits.blocks}")
    action_ids: list[str] = []
    total = 0
    for index, block in enumerate(blocks):
        where = f"block {index} ({block.get('type')})"
        found += _sdk_problems(where, block)
        for obj in text_objects(block):
            size = slack_length(obj["text"])
            total += size
            if not obj["text"].strip():
                found.append(f"{where}: empty text")
            if size > limits.text:
                found.append(f"{where}: text of {size} > {limits.text}")
            if obj["type"] == "mrkdwn":
                found += _markup_problems(where, obj["text"])
        if block.get("type") == "header":
            size = slack_length(block["text"]["text"])
            if size > limits.header:
                found.append(f"{where}: header of {size} > {limits.header}")
        if block.get("type") == "section":
            size = slack_length(block.get("text", {}).get("text", ""))
            if size > limits.section:
                found.append(f"{where}: section text of {size} > {limits.section}")
            fields = block.get("fields") or []
            if len(fields) > limits.fields:
                found.append(f"{where}: {len(fields)} fields > {limits.fields}")
            for field in fields:
                if slack_length(field["text"]) > limits.field:
                    found.append(f"{where}: field of {slack_length(field['text'])}")
        if block.get("type") == "context" and len(block["elements"]) > limits.context_elements:
            found.append(f"{where}: {len(block['elements'])} context elements")
        accessory = block.get("accessory")
        if isinstance(accessory, Mapping):
            found += _button_problems(where, accessory)
            action_ids.append(accessory.get("action_id", ""))
    if len(set(action_ids)) < len(action_ids):
        found.append(f"repeated action_id in {action_ids}")
    if total > limits.blocks_text:
        found.append(f"block text of {total} in all > {limits.blocks_text}")
    return found


def _sdk_problems(where: str, block: Mapping[str, Any]) -> list[str]:
    """slack_sdk's own model: the block parses, validates (nested elements too, through
    to_dict) and comes back unchanged, so no key was unknown to it."""
    try:
        parsed = Block.parse(dict(block))
        if parsed is None:
            return [f"{where}: slack_sdk does not know this block"]
        parsed.validate_json()
        again = parsed.to_dict()
    except Exception as error:  # SlackObjectFormationError, or a TypeError for a bad key
        return [f"{where}: slack_sdk: {type(error).__name__}: {error}"]
    if again != block:
        return [f"{where}: slack_sdk reads it differently: {again!r}"]
    return []


def _button_problems(where: str, button: Mapping[str, Any]) -> list[str]:
    limits = SLACK_LIMITS
    found = []
    if slack_length(button.get("text", {}).get("text", "")) > limits.button_text:
        found.append(f"{where}: button text over {limits.button_text}")
    url = button.get("url", "")
    if len(url) > limits.url:
        found.append(f"{where}: url of {len(url)} > {limits.url}")
    if not re.fullmatch(r"https://[!#$%&'()*+,\-./0-9:;=?@A-Z_a-z~]+", url):
        found.append(f"{where}: url {url[:80]!r} is not a plain https URL")
    if len(button.get("action_id", "")) > limits.action_id:
        found.append(f"{where}: action_id over {limits.action_id}")
    return found


def _markup_problems(where: str, text: str) -> list[str]:
    """Event values are escaped: no bare "&", no "<" or ">" but the mention's."""
    found = []
    if _BARE_AMPERSAND.search(text):
        at = _BARE_AMPERSAND.search(text)
        assert at is not None
        found.append(f"{where}: a bare '&' at {at.start()}: {text[at.start() : at.start() + 8]!r}")
    rest = _MENTION.sub("", text)
    if "<" in rest or ">" in rest:
        found.append(f"{where}: a raw '<' or '>' outside the mention")
    return found


def assert_slack_takes(payload: Mapping[str, Any]) -> None:
    found = problems(payload)
    assert not found, "\n".join(found)
