"""API calls and wall time of `setup` (fresh and converged) and `status` against a local moto server.

    python bench/setup_calls.py

Prints numbers; asserts nothing. Runs the real engine in this process against
the emulator over HTTP (the same path as AWS_ENDPOINT_URL), attributing every
API call to the resource being settled.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loginwatch import engine
from loginwatch.aws import CallRecorder, connect, is_read
from loginwatch.config import parse_config
from loginwatch.demo.emulator import Emulator
from tests.support.faults import FaultInjector, attach_to_every_client

CONFIG = """\
region: us-east-1
name: bench
allowed_ips: [203.0.113.10, 198.51.100.0/24, "2001:db8:1::/48"]
slack: {webhook_url: "https://hooks.slack.com/services/T000/B000/benchbenchbench"}
"""


_reading = threading.local()  # the resource a reading thread is reading


def _attributed_read(original: Any) -> Any:
    def read(deployment: Any, resource: Any) -> Any:
        _reading.resource = resource
        try:
            return original(deployment, resource)
        finally:
            _reading.resource = None

    return read


engine._read = _attributed_read(engine._read)  # reads run concurrently: attribute per thread


class AttributingRecorder(CallRecorder):
    """Counts calls per resource kind (the one being read, or whose step is in flight)."""

    def __init__(self) -> None:
        super().__init__()
        self.current: Any = None
        self.by_kind: dict[str, Counter[str]] = defaultdict(Counter)
        self.instances: dict[str, set[str]] = defaultdict(set)

    def __call__(self, model: Any, **kwargs: Any) -> None:
        super().__call__(model, **kwargs)
        resource = getattr(_reading, "resource", None) or self.current
        kind = resource.kind if resource is not None else "-"
        if resource is not None:
            self.instances[kind].add(resource.key)
        self.by_kind[kind]["read" if is_read(model.name) else "mutating"] += 1


class Progress:
    def __init__(self, recorder: AttributingRecorder) -> None:
        self.recorder = recorder

    def checking(self, resource: Any) -> None:
        pass  # the reads that follow are attributed by the reading thread

    def start(self, resource: Any) -> None:
        self.recorder.current = resource

    def done(self, result: Any) -> None:
        self.recorder.current = None


def run_setup(config: Any, faults: Any = None) -> tuple[AttributingRecorder, float]:
    recorder = AttributingRecorder()
    started = time.perf_counter()
    aws = connect(None, config.region)
    aws.recorder = recorder
    if faults is not None:
        attach_to_every_client(aws, faults)
    engine.apply(engine.build_deployment(config, aws), Progress(recorder))
    return recorder, time.perf_counter() - started


def add_latency(aws: Any, seconds: float) -> None:
    """Stand-in for the network round trip to AWS (tens of ms), which a loopback emulator lacks."""
    original = aws.client

    def client(service: str, region: str | None = None) -> Any:
        made = original(service, region)
        if not getattr(made, "_bench_latency", False):
            made.meta.events.register("before-send", lambda **_: time.sleep(seconds))
            made._bench_latency = True
        return made

    aws.client = client


def run_status(config: Any, concurrency: int, latency: float = 0.0) -> tuple[CallRecorder, float]:
    recorder = CallRecorder()
    started = time.perf_counter()
    aws = connect(None, config.region)
    aws.recorder = recorder
    if latency:
        add_latency(aws, latency)
    report = engine.status(
        engine.build_deployment(config, aws, strict=False), concurrency=concurrency
    )
    assert report.healthy, report.problems
    return recorder, time.perf_counter() - started


def line(label: str, recorder: CallRecorder, seconds: float) -> None:
    print(
        f"{label:<28} {len(recorder.calls):>5} calls  {len(recorder.mutating):>4} mutating"
        f"  {len(recorder.reads):>4} reads  {seconds * 1000:>8.0f} ms"
    )


def main() -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    emulator = Emulator().start()
    os.environ["AWS_ENDPOINT_URL"] = emulator.url
    config = parse_config(CONFIG, "bench.yaml", {})
    try:
        fresh, fresh_s = run_setup(config)
        again, again_s = run_setup(config)
        print("setup against a local moto server (wall time includes the emulator)")
        line("fresh setup", fresh, fresh_s)
        line("converged re-run", again, again_s)
        print("\nconverged re-run, per resource (reads / mutating, per instance):")
        for kind, counts in again.by_kind.items():
            n = len(again.instances[kind]) or 1
            where = f"  ×{n} (one per region)" if n > 1 else ""
            per_one = f"{counts['read'] / n:g} / {counts['mutating'] / n:g}"
            print(f"  {kind:<20} {per_one:>7}{where}")
        instances = sum(len(keys) for keys in again.instances.values())
        reads = sum(c["read"] for k, c in again.by_kind.items() if k != "-")
        print(f"  {instances} resources, average reads per resource: {reads / instances:.2f}")
        print("  (- is the deployment's own read: which regions are enabled, ec2:DescribeRegions)")
        print("\nunder 20 % injected faults (throttling, 500, 503, dropped and lost answers;")
        print("botocore's real jittered backoff, so wall time includes its sleeps):")
        emulator.reset()
        faults = FaultInjector(rate=0.2, seed=11)
        faulty, faulty_s = run_setup(config, faults)
        line("fresh setup, 20 % faults", faulty, faulty_s)
        print(
            f"  {faults.attempts} HTTP attempts, {sum(faults.injected.values())} failed: {dict(faults.injected)}"
        )
        again_faults = FaultInjector(rate=0.2, seed=12)
        faulty_again, faulty_again_s = run_setup(config, again_faults)
        line("converged re-run, 20 % faults", faulty_again, faulty_again_s)
        print(
            f"  {again_faults.attempts} HTTP attempts, {sum(again_faults.injected.values())} failed"
        )

        print("\nstatus on the converged setup (best of 3):")
        for latency in (0.0, 0.05):
            for workers in (8, 1):
                label = f"{'concurrent (8)' if workers > 1 else 'sequential'}, +{latency * 1000:.0f} ms/call"
                best = None
                for _ in range(3):
                    result = run_status(config, workers, latency)
                    best = result if best is None or result[1] < best[1] else best
                assert best is not None
                line(label, *best)
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
