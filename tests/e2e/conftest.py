"""End-to-end fixtures: the CLI runner and boto3 clients to read back what it did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loginwatch.demo.emulator import Emulator
from tests.support.cli import Cli
from tests.support.inprocess import Clients


@pytest.fixture
def cli(aws_server: Emulator, tmp_path: Path) -> Cli:
    return Cli(endpoint=aws_server.url, workdir=tmp_path)


@pytest.fixture
def aws(aws_server: Emulator) -> Any:
    """boto3 clients against the emulator, to read back what the CLI did."""

    return Clients()
