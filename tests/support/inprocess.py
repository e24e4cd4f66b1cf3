"""Drive the engine in this process against the emulator, with hooks on every API call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3

from loginwatch import engine
from loginwatch.aws import Aws, CallRecorder, connect, is_read
from loginwatch.config import Config, parse_config
from tests.support.cli import BASE_CONFIG, WEBHOOK


class Crash(Exception):
    """Stands in for a laptop lid closing: the process stops right before a call."""


class FailingRecorder(CallRecorder):
    """Records calls; raises Crash instead of making the k-th mutating call."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__()
        self.fail_at = fail_at
        self.hook: Callable[[str, str], None] | None = None

    def __call__(self, model: Any, **kwargs: Any) -> None:
        service, operation = model.service_model.service_name, model.name
        if self.hook:
            self.hook(service, operation)
        failing = not is_read(operation) and self.fail_at is not None
        if failing and len(self.mutating) + 1 == self.fail_at:
            raise Crash(f"{service}:{operation}")
        super().__call__(model, **kwargs)


class SilentProgress:
    def checking(self, resource: Any) -> None:
        pass

    def start(self, resource: Any) -> None:
        pass

    def done(self, result: Any) -> None:
        pass


def load(text: str = BASE_CONFIG) -> Config:
    return parse_config(text, "test.yaml", {"LW_WEBHOOK": WEBHOOK})


def connect_recording(recorder: CallRecorder, region: str = "us-east-1") -> Aws:
    aws = connect(None, region, sleep=lambda _: None)
    aws.recorder = recorder
    return aws


def run_setup(config: Config, recorder: CallRecorder | None = None) -> list[engine.StepResult]:
    aws = connect_recording(recorder or CallRecorder())
    return engine.apply(engine.build_deployment(config, aws), SilentProgress())


def offline_aws(sleeps: list[float] | None = None) -> Aws:
    """An Aws for Stubber tests: no credentials lookup, no STS call, recorded sleeps."""
    recorded = sleeps if sleeps is not None else []
    return Aws(
        session=boto3.Session(region_name="us-east-1"),
        region="us-east-1",
        account_id="123456789012",
        partition="aws",
        recorder=CallRecorder(),
        sleep=recorded.append,
    )
