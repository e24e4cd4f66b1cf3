"""Acting as another account of an organization in the emulator: assume its
OrganizationAccountAccessRole (moto maps the credentials to that account)."""

from __future__ import annotations

from typing import Any

import pytest

SESSION_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def act_as(monkeypatch: pytest.MonkeyPatch, sts: Any, account: str) -> None:
    """Every AWS client made from now on (this process or a CLI it starts) is ``account``."""
    credentials = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
        RoleSessionName="loginwatch-test",
    )["Credentials"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", credentials["SessionToken"])


def act_as_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Back to the test credentials (the emulator's default account)."""
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
