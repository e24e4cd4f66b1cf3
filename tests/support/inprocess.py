"""Drive the engine in this process against the emulator, with hooks on every API call."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import boto3

from loginwatch import engine
from loginwatch.aws import Aws, CallRecorder, connect, is_read
from loginwatch.config import Config, SelfCheck, parse_config
from tests.support.cli import BASE_CONFIG, WEBHOOK


class InProcessEmulator:
    """moto in this process (no HTTP), patched to behave like AWS as the server is."""

    def __init__(self) -> None:
        from moto import mock_aws

        from loginwatch.demo.emulator import match_aws

        match_aws()
        self._mock = mock_aws()

    def start(self) -> InProcessEmulator:
        self._mock.start()
        self._aws: Aws | None = None
        return self

    @property
    def aws(self) -> Aws:
        """One connection for the whole test: its clients outlive reset()."""
        if self._aws is None:
            self._aws = connect(None, "us-east-1", sleep=lambda _: None)
        return self._aws

    def reset(self) -> None:
        """Forget every resource (a new mock starts from nothing)."""
        self._mock.stop()
        self._mock.start()

    def stop(self) -> None:
        self._mock.stop()


class Clients:
    """boto3 clients (us-east-1 unless named) to read back what loginwatch did.

    Each is made once: making a client costs more than most emulated calls.
    """

    def __init__(self) -> None:
        self._made: dict[tuple[str, str], Any] = {}

    def in_region(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._made:
            self._made[key] = boto3.client(service, region_name=region)
        return self._made[key]

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        return self.in_region(service.rstrip("_"), "us-east-1")


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


def load_without_self_check(text: str = BASE_CONFIG) -> Config:
    """For Stubber tests, which answer no read: with the self-check on, building a
    deployment reads the enabled regions (its settings name every region's rules)."""
    return dataclasses.replace(load(text), self_check=SelfCheck(enabled=False))


def connect_recording(
    recorder: CallRecorder, region: str = "us-east-1", *, reuse: Aws | None = None
) -> Aws:
    """Connected, recording into ``recorder``; ``reuse`` keeps another run's clients
    (creating a client for each service in 20 regions costs more than a setup)."""
    aws = reuse or connect(None, region, sleep=lambda _: None)
    aws.recorder = recorder
    return aws


def run_setup(
    config: Config, recorder: CallRecorder | None = None, *, reuse: Aws | None = None
) -> list[engine.StepResult]:
    aws = connect_recording(recorder or CallRecorder(), reuse=reuse)
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


class Attributing(SilentProgress):
    """Progress that remembers which resource's step is in flight."""

    def __init__(self) -> None:
        self.current: Any = None

    def checking(self, resource: Any) -> None:
        self.current = None  # reads come first, before any step

    def start(self, resource: Any) -> None:
        self.current = resource


class AttributingRecorder(CallRecorder):
    """Records, for every mutating call, the resource whose step made it."""

    def __init__(self, progress: Attributing) -> None:
        super().__init__()
        self.progress = progress
        self.made_by: list[Any] = []

    def __call__(self, model: Any, **kwargs: Any) -> None:
        super().__call__(model, **kwargs)
        if not is_read(model.name):
            self.made_by.append(self.progress.current)


def _code(resource: Any) -> tuple[str, ...]:
    """The code a resource's steps run: its create, update and delete functions."""
    return tuple(
        getattr(type(resource), step).__qualname__ for step in ("create", "update", "delete")
    )


def first_of_each_kind(resources: list[Any]) -> list[int]:
    """1-based positions of the first resource of each kind of code: a kind in 17 regions
    is one interruption point, not 17 (each region runs the same code), and so are kinds
    that share their create, update and delete (the four roles, the three queues, the
    two log groups, the three invoke permissions: one policy or name apart)."""
    seen: set[tuple[str, ...]] = set()
    positions = []
    for position, resource in enumerate(resources, start=1):
        if resource is not None and _code(resource) not in seen:
            seen.add(_code(resource))
            positions.append(position)
    return positions


def mutating_steps_to_interrupt(config: Config, reuse: Aws | None = None) -> list[int]:
    """Every mutating call of a fresh setup (1-based) made by the first resource of a kind
    of code, but a call that resource made already (a loop over its rules runs the same
    lines again)."""
    progress = Attributing()
    recorder = AttributingRecorder(progress)
    aws = connect_recording(recorder, reuse=reuse)
    engine.apply(engine.build_deployment(config, aws), progress)
    first_calls = first_of_each_kind(recorder.made_by)
    firsts = {recorder.made_by[i - 1].key for i in first_calls}
    steps, made = [], set()
    for position, (resource, call) in enumerate(
        zip(recorder.made_by, recorder.mutating, strict=True), start=1
    ):
        if resource is not None and resource.key in firsts and (resource.key, call) not in made:
            made.add((resource.key, call))
            steps.append(position)
    return steps
