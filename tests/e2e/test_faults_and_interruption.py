"""Under 20 % injected faults, and interrupted by Ctrl-C at every step, loginwatch converges."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from loginwatch import engine
from loginwatch.aws import CallRecorder, connect
from loginwatch.errors import EXIT_INTERRUPTED
from tests.e2e.test_convergence import ONE_OF_EACH, inventory
from tests.support.cli import ONE_FORWARDING_REGION
from tests.support.faults import FaultInjector, attach_to_every_client
from tests.support.inprocess import (
    Clients,
    InProcessEmulator,
    SilentProgress,
    connect_recording,
    first_of_each_kind,
    load,
    run_setup,
)

KEPT = {"bucket", "trail-log-group"}


def faulty_aws(injector: FaultInjector) -> Any:
    aws = connect(None, "us-east-1", sleep=lambda _: None)
    attach_to_every_client(aws, injector)
    return aws


# Two seeds: each run meets faults on different calls of every phase (a third added
# time, not cases: the fault points of a seed are spread over the whole run).
@pytest.mark.parametrize("seed", [1, 2])
def test_setup_status_teardown_converge_under_20_percent_faults(
    aws_server: Any, aws: Any, retry_sleeps: list[float], seed: int, two_regions: None
) -> None:
    injector = FaultInjector(rate=0.2, seed=seed)
    deployment = engine.build_deployment(load(ONE_FORWARDING_REGION), faulty_aws(injector))
    engine.apply(deployment, SilentProgress())
    assert inventory(aws) == ONE_OF_EACH

    report = engine.status(
        engine.build_deployment(load(ONE_FORWARDING_REGION), faulty_aws(injector), strict=False)
    )
    assert report.healthy, report.problems

    clean = CallRecorder()
    run_setup(load(ONE_FORWARDING_REGION), clean)
    assert clean.mutating == []  # nothing half-done, nothing duplicated

    teardown_deployment = engine.build_deployment(
        load(ONE_FORWARDING_REGION), faulty_aws(injector), strict=False
    )
    items = engine.teardown_plan(teardown_deployment, delete_bucket=False, delete_trail_logs=False)
    engine.teardown(items, lambda item: None)
    remaining = engine.teardown_plan(
        engine.build_deployment(
            load(ONE_FORWARDING_REGION), faulty_aws(FaultInjector(rate=0)), strict=False
        ),
        delete_bucket=False,
        delete_trail_logs=False,
    )
    assert {i.resource.kind for i in remaining if i.action != "absent"} == KEPT
    assert sum(injector.injected.values()) >= 10, injector.injected  # faults really happened
    assert len(injector.injected) >= 3, injector.injected  # several kinds of fault, not one


class InterruptAt:
    """Progress that presses Ctrl-C (a real SIGINT to this process) when step k finishes."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.done_count = 0

    def checking(self, resource: Any) -> None:
        pass

    def start(self, resource: Any) -> None:
        pass

    def done(self, result: Any) -> None:
        self.done_count += 1
        if self.done_count == self.k:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_during_setup_stops_at_a_safe_point_at_every_step(
    emulator_inprocess: InProcessEmulator,
) -> None:
    """After every step of the first resource of each kind (the same kind in another
    region runs the same code)."""
    aws, shared = Clients(), emulator_inprocess.aws
    config = load(ONE_FORWARDING_REGION)  # parsed once (frozen): each run builds its own plan
    # Whatever this process had (a test worker may start with SIGINT ignored) comes back.
    before = signal.getsignal(signal.SIGINT)
    resources = engine.resources_for(engine.build_deployment(config, shared))
    for k in first_of_each_kind(resources):
        emulator_inprocess.reset()
        deployment = engine.build_deployment(
            config, connect_recording(CallRecorder(), reuse=shared)
        )
        with pytest.raises(engine.Interrupted) as info:
            engine.apply(deployment, InterruptAt(k))
        assert info.value.exit_code == EXIT_INTERRUPTED
        assert "Re-run `loginwatch setup` to finish the job." in info.value.lines()
        run_setup(config, reuse=shared)
        # Exactly one of everything: the re-run finished the job (that a third run then
        # writes nothing is test_convergence's, after a crash before every call).
        assert inventory(aws) == ONE_OF_EACH, f"after Ctrl-C at step {k}"
    assert signal.getsignal(signal.SIGINT) is before  # handler restored


def _teardown_plan(aws: Any, config: Any) -> list[Any]:
    deployment = engine.build_deployment(config, aws, strict=False)
    return engine.teardown_plan(deployment, delete_bucket=True, delete_trail_logs=True)


def test_ctrl_c_during_teardown_stops_at_a_safe_point_at_every_step(
    emulator_inprocess: InProcessEmulator,
) -> None:
    shared = emulator_inprocess.aws
    config = load(ONE_FORWARDING_REGION)  # parsed once (frozen): each run builds its own plan
    run_setup(config, reuse=shared)
    deleted_in_order = [i.resource for i in _teardown_plan(shared, config) if i.action == "delete"]
    for k in first_of_each_kind(deleted_in_order):
        emulator_inprocess.reset()
        run_setup(config, reuse=shared)
        deleted: list[str] = []

        def press_ctrl_c_at_k(item: Any, k: int = k, deleted: list[str] = deleted) -> None:
            deleted.append(item.resource.kind)
            if len(deleted) == k:
                os.kill(os.getpid(), signal.SIGINT)

        with pytest.raises(engine.Interrupted) as info:
            engine.teardown(_teardown_plan(shared, config), press_ctrl_c_at_k)
        assert "Re-run `loginwatch teardown` to finish the job." in info.value.lines()
        assert len(deleted) == k  # stopped right after the step in flight
        # the re-run finishes the job
        engine.teardown(_teardown_plan(shared, config), lambda item: None)
        plan = _teardown_plan(shared, config)
        assert all(i.action == "absent" for i in plan), f"after Ctrl-C at step {k}"


def test_ctrl_c_through_the_cli_exits_130_with_the_rerun_hint(
    aws_server: Any,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from loginwatch import ui
    from loginwatch.cli import main
    from tests.support.cli import BASE_CONFIG, WEBHOOK

    config = tmp_path / "lw.yaml"
    config.write_text(BASE_CONFIG)
    monkeypatch.setenv("LW_WEBHOOK", WEBHOOK)
    original = ui.StepPrinter.done

    def done_then_ctrl_c(self: Any, result: Any) -> None:
        original(self, result)
        if result.resource.kind == "trail":
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(ui.StepPrinter, "done", done_then_ctrl_c)
    with pytest.raises(SystemExit) as info:
        main(["--config", str(config), "setup"])
    assert info.value.code == 130
    captured = capsys.readouterr()
    assert "Interrupted after the CloudTrail trail" in captured.err
    assert "Re-run `loginwatch setup` to finish the job." in captured.err
    assert "metric filter" not in captured.out  # stopped before the next step
