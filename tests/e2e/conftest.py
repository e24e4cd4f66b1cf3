"""End-to-end fixtures: the CLI runner and boto3 clients to read back what it did.

A test runs the installed `loginwatch` script against the moto server over HTTP, unless
it is marked ``in_process``: then the same CLI (``main``) runs in this process against
in-process moto, at about a third of the cost a command. Tests about what commands do
to resources are marked; what only the installed script over HTTP shows (the console
script itself, its concurrent reads, signals, exit codes from a real process, a stock
server) is not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Cli, InProcessCli
from tests.support.inprocess import Clients


def in_process(request: pytest.FixtureRequest) -> bool:
    return request.node.get_closest_marker("in_process") is not None


@pytest.fixture
def emulated(request: pytest.FixtureRequest) -> str:
    """The emulator a test's CLI and clients talk to; its endpoint ("" in process).
    Either way the account has the regions of an ``enabled_regions`` marker enabled,
    or TWO_REGIONS."""
    if in_process(request):
        request.getfixturevalue("moto_like_aws")
        return ""
    return str(request.getfixturevalue("aws_server").url)


@pytest.fixture
def cli(emulated: str, request: pytest.FixtureRequest, tmp_path: Path) -> Cli:
    if in_process(request):
        return InProcessCli(endpoint=emulated, workdir=tmp_path)
    return Cli(endpoint=emulated, workdir=tmp_path)


@pytest.fixture
def aws(emulated: str) -> Any:
    """boto3 clients against the emulator, to read back what the CLI did."""

    return Clients()
