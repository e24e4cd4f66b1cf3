"""Read the Slack webhook URL from SSM Parameter Store (SecureString).

It lives in SSM rather than a Lambda environment variable because secret
scanners (and auditors) flag webhook URLs in function configuration.
"""

from __future__ import annotations

from typing import Any

from .calls import WEBHOOKS, Call

CALLS = (Call("ssm", "GetParameter", WEBHOOKS),)


class WebhookNotConfigured(Exception):
    """The SSM parameter holding the webhook URL is missing or empty."""


def read_webhook_url(ssm_client: Any, parameter_name: str, region: str) -> str:
    try:
        response = ssm_client.get_parameter(Name=parameter_name, WithDecryption=True)
    except ssm_client.exceptions.ParameterNotFound:
        raise WebhookNotConfigured(
            f"SSM parameter {parameter_name!r} was not found in {region}; it should hold the "
            "Slack webhook URL. Re-run `loginwatch setup` to store it."
        ) from None
    value = response.get("Parameter", {}).get("Value", "").strip()
    if not value:
        raise WebhookNotConfigured(
            f"SSM parameter {parameter_name!r} in {region} is empty. "
            "Re-run `loginwatch setup` to store the Slack webhook URL."
        )
    return value
