"""End-to-end fixtures: one moto server per session (reset per test) and the CLI runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from loginwatch.emulator import Emulator
from tests.support.cli import Cli


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    server = Emulator().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws_server(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    emulator.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.url)
    return emulator


@pytest.fixture
def cli(aws_server: Emulator, tmp_path: Path) -> Cli:
    return Cli(endpoint=aws_server.url, workdir=tmp_path)


@pytest.fixture
def aws(aws_server: Emulator) -> Any:
    """boto3 clients against the emulator, to read back what the CLI did."""

    class Clients:
        def __getattr__(self, service: str) -> Any:
            return boto3.client(service.rstrip("_"), region_name="us-east-1")

    return Clients()
