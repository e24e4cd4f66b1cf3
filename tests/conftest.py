"""Shared fixtures: fake credentials, in-process moto, a moto server, a Slack stand-in."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from loginwatch.demo.webhook_catcher import SlackStub
from tests.support.inprocess import InProcessEmulator

# The end-to-end tests run the installed CLI as a subprocess about a hundred times: let
# Python keep the compiled modules of src/ (in __pycache__, ignored by git) instead of
# compiling all of them again in every run. Some environments (this sandbox, CI images)
# set PYTHONDONTWRITEBYTECODE, which halves a short command's start-up.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

FIXTURES = Path(__file__).parent / "fixtures"
TWO_REGIONS = frozenset({"us-east-1", "us-west-2"})


def load_fixture(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text())


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "enabled_regions(*regions): the regions the emulator (aws_server) reports as enabled, "
        "for a test about more than TWO_REGIONS",
    )
    config.addinivalue_line(
        "markers",
        "in_process: the end-to-end test's `cli` runs the CLI's main in this process against "
        "in-process moto (tests/support/cli.InProcessCli), not the installed script over HTTP",
    )


@pytest.fixture(scope="session", autouse=True)
def lighter_moto() -> Iterator[None]:
    """Two things moto does that loginwatch never uses, and that cost CPU in every test:
    - an RSA private key for every KMS key, symmetric ones too (for Sign and Verify):
      0.1 s each time setup creates the claims table (its SSE key). One key per key
      spec, made once, serves every test;
    - 1,366 AMIs, each with a volume and a snapshot, loaded into EC2 after every reset
      (0.2-0.3 s), for the first DescribeRegions of every test against the emulator.
      moto's own setting turns that off (the demo run by test_demo inherits it too).
    """
    import functools

    from moto.kms import models as kms_models

    original = kms_models.generate_private_key
    kms_models.generate_private_key = functools.cache(original)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        try:
            yield
        finally:
            kms_models.generate_private_key = original


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test runs with fake credentials and nothing from the developer's machine.

    AWS_ENDPOINT_URL is removed because mock_aws does not intercept requests
    that are sent to an explicit endpoint.
    """
    for key in list(os.environ):
        if key.startswith("AWS_") or key.startswith("LOGINWATCH_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))


@pytest.fixture
def moto_inprocess() -> Iterator[None]:
    """In-process moto: every boto3 call in the test hits the emulator."""
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def two_regions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The account has two regions enabled, home and one more: for tests that run setup
    many times (every interruption point, faults), where one other region stands for
    all (each runs the same code) and reading 18 more regions' left-overs only costs time.
    """
    from loginwatch.resources import base

    monkeypatch.setattr(base, "enabled_regions", lambda aws: TWO_REGIONS)


@pytest.fixture(scope="session", autouse=True)
def reads_one_at_a_time() -> Iterator[None]:
    """The engine, called in this process, reads one resource at a time: the emulator it
    talks to (moto, in-process or its server's thread) answers in this process, under the
    GIL, so reading threads only add switching (about a fifth of those tests' time). The
    installed CLI the end-to-end tests run reads concurrently, as a user's does."""
    from loginwatch import engine

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "READ_CONCURRENCY", 1)
        yield


@pytest.fixture
def emulator_inprocess(two_regions: None) -> Iterator[InProcessEmulator]:
    """For tests that run setup dozens of times: no HTTP round trip per call."""
    emulator = InProcessEmulator().start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def slack_server() -> Iterator[SlackStub]:
    stub = SlackStub().start()
    try:
        yield stub
    finally:
        stub.stop()


@pytest.fixture(scope="session")
def emulator_session() -> Iterator[Any]:
    from loginwatch.demo.emulator import Emulator

    server = Emulator().start()
    try:
        yield server
    finally:
        server.stop()


def report_enabled_regions(monkeypatch: pytest.MonkeyPatch, regions: Iterable[str]) -> None:
    """The emulator's ec2 DescribeRegions reports only ``regions`` as enabled, the others
    as not opted in (see tests/support/regions.py)."""
    from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend

    from tests.support.regions import enabled_only

    monkeypatch.setattr(RegionsAndZonesBackend, "regions", enabled_only(regions))


@pytest.fixture
def aws_server(
    emulator_session: Any, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Any:
    """The session's emulator, reset, with AWS_ENDPOINT_URL pointing at it.

    The account has two regions enabled (TWO_REGIONS), as for the in-process tests: every
    run reads each enabled region for left-overs, and one other region stands for all.
    A test about more regions says which: ``@pytest.mark.enabled_regions(*regions)``.
    """
    emulator_session.reset()
    marker = request.node.get_closest_marker("enabled_regions")
    report_enabled_regions(monkeypatch, marker.args if marker else TWO_REGIONS)
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator_session.url)
    return emulator_session


@pytest.fixture
def moto_like_aws(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[None]:
    """In-process moto with the emulator's patches (where moto differs from AWS), its
    DescribeRegions reporting TWO_REGIONS enabled (or an ``enabled_regions`` marker's),
    as aws_server does, without HTTP: each call costs a fraction of a server round trip."""
    from moto import mock_aws

    from loginwatch.demo.emulator import forget_events, match_aws

    match_aws()
    forget_events()  # as the server's reset does: no planted history from an earlier test
    marker = request.node.get_closest_marker("enabled_regions")
    with mock_aws():
        report_enabled_regions(monkeypatch, marker.args if marker else TWO_REGIONS)
        yield


@pytest.fixture
def aws_mocked(moto_like_aws: None) -> Any:
    """An Aws (loginwatch's client factory) connected to moto_like_aws."""
    from loginwatch.aws import connect

    return connect(None, "us-east-1", sleep=lambda _: None)


@pytest.fixture
def aws_server_inprocess(aws_server: Any) -> Any:
    """An Aws (loginwatch's client factory) connected to a freshly reset emulator."""
    from loginwatch.aws import connect

    return connect(None, "us-east-1", sleep=lambda _: None)


@pytest.fixture
def retry_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retry backoff, recorded instead of slept, so fault tests run at full speed."""
    import types

    import botocore.endpoint

    slept: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=slept.append))
    return slept
