"""Slack delivery over a real socket to the Slack stub: retries, give-ups, secrecy."""

from __future__ import annotations

import socket

import pytest

from loginwatch.demo.webhook_catcher import SlackReply, SlackStub
from loginwatch.notifier import slack_delivery
from loginwatch.notifier.slack_delivery import SlackDeliveryError, mask_webhook, post_to_slack

PAYLOAD = {"text": "hello", "blocks": []}
SECRET = "XXXXXXXXXXXXXXXXXXXXXXXX"


def test_posts_json_once_on_success(slack_server: SlackStub, sleeps: list[float]) -> None:
    response = post_to_slack(slack_server.url, PAYLOAD)
    assert response.status == 200 and response.attempts == 1
    (request,) = slack_server.requests
    assert request.json == PAYLOAD
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.path.endswith(SECRET)
    assert sleeps == []


def test_server_error_then_success_is_retried(slack_server: SlackStub, sleeps: list[float]) -> None:
    slack_server.script(SlackReply(500, "internal_error"), SlackReply(200, "ok"))
    response = post_to_slack(slack_server.url, PAYLOAD)
    assert response.attempts == 2
    assert len(slack_server.requests) == 2
    assert sleeps == [0.5]


def test_rate_limit_honours_retry_after(slack_server: SlackStub, sleeps: list[float]) -> None:
    slack_server.script(SlackReply(429, "rate_limited", {"Retry-After": "3"}))
    post_to_slack(slack_server.url, PAYLOAD)
    assert sleeps == [3.0]
    assert len(slack_server.requests) == 2


def test_retry_after_is_capped(slack_server: SlackStub, sleeps: list[float]) -> None:
    slack_server.script(SlackReply(429, "rate_limited", {"Retry-After": "120"}))
    post_to_slack(slack_server.url, PAYLOAD)
    assert sleeps == [slack_delivery.RETRY_AFTER_CAP_SECONDS]


def test_gives_up_after_three_attempts(slack_server: SlackStub, sleeps: list[float]) -> None:
    slack_server.script(*[SlackReply(503, "unavailable")] * 3)
    with pytest.raises(SlackDeliveryError) as raised:
        post_to_slack(slack_server.url, PAYLOAD)
    assert raised.value.status == 503
    assert raised.value.attempts == 3
    assert len(slack_server.requests) == 3
    assert sleeps == [0.5, 1.0]
    assert SECRET not in str(raised.value)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, "no_service"),
        (410, "channel_is_archived"),
        (403, "invalid_token"),
        (400, "invalid_token"),
        (404, ""),
        (403, "action_prohibited"),
        (400, "no_team"),
        (404, "team_disabled"),
        (400, "channel_not_found"),
    ],
)
def test_dead_webhook_is_not_retried(
    slack_server: SlackStub, sleeps: list[float], status: int, body: str
) -> None:
    slack_server.script(SlackReply(status, body))
    with pytest.raises(SlackDeliveryError) as raised:
        post_to_slack(slack_server.url, PAYLOAD)
    assert len(slack_server.requests) == 1
    assert sleeps == []
    assert raised.value.status == status
    message = str(raised.value)
    assert "revoked or is wrong" in message and "loginwatch setup" in message
    assert SECRET not in message and "/services/" not in message
    assert "127.0.0.1/…XXXX" in message  # masked: host and last four characters


def test_other_client_errors_are_not_retried(slack_server: SlackStub) -> None:
    slack_server.script(SlackReply(400, "invalid_blocks"))
    with pytest.raises(SlackDeliveryError, match="invalid_blocks") as raised:
        post_to_slack(slack_server.url, PAYLOAD)
    assert "revoked" not in str(raised.value)
    assert len(slack_server.requests) == 1


def test_connection_errors_are_retried_then_reported(sleeps: list[float]) -> None:
    with socket.socket() as sock:  # a port that is certainly closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/services/T000/B000/{SECRET}"
    with pytest.raises(SlackDeliveryError, match="connection error") as raised:
        post_to_slack(url, PAYLOAD, timeout=1)
    assert raised.value.status is None
    assert sleeps == [0.5, 1.0]
    assert SECRET not in str(raised.value)


def test_non_http_urls_are_refused(tmp_path) -> None:
    target = tmp_path / "x"
    with pytest.raises(SlackDeliveryError, match="not an http"):
        post_to_slack(f"file://{target}", PAYLOAD)


def test_mask_keeps_host_and_last_four() -> None:
    masked = mask_webhook("https://hooks.slack.com/services/T1/B2/abcdefghijWXYZ")
    assert masked == "hooks.slack.com/…WXYZ"
