"""boto3 clients, created lazily and kept for the life of the Lambda container.

boto3 is imported on first use, not at module import: importing it costs far
more than the rest of the notifier, and ignored events never need it.
"""

from __future__ import annotations

from typing import Any, Literal

# The AWS services the notifier calls: boto3's type stubs know each one's client by name.
Service = Literal[
    "cloudtrail",
    "cloudwatch",
    "dynamodb",
    "events",
    "lambda",
    "logs",
    "organizations",
    "sns",
    "sqs",
    "ssm",
]

_clients: dict[tuple[str, str], Any] = {}


def _make_client(service: Service, region: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=5,
        read_timeout=10,
        retries={"mode": "standard", "max_attempts": 3},
        user_agent_extra="loginwatch-notifier",
    )
    return boto3.client(service, region_name=region, config=config)


def client(service: Service, region: str) -> Any:
    """The container's client for ``service`` in ``region``, created on first use."""
    key = (service, region)
    if key not in _clients:
        _clients[key] = _make_client(service, region)
    return _clients[key]


def reset() -> None:
    """Forget every client (tests; a fresh container starts empty anyway)."""
    _clients.clear()
