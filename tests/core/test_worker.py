"""PeriodicWorker: steps again and again, waits as told, survives a failing step, wakes and stops at once."""

from __future__ import annotations

import logging
import threading

import pytest

from yingyun.core.worker import PeriodicWorker

log = logging.getLogger("test.worker")


class Steps:
    """A step that reports each call and then does what the test scripted for it."""

    def __init__(self, *script: object) -> None:
        self.script = list(script)
        self.calls = 0
        self.called = threading.Semaphore(0)

    def __call__(self) -> float | None:
        self.calls += 1
        action = self.script.pop(0) if self.script else None
        self.called.release()
        if isinstance(action, BaseException):
            raise action
        return action  # type: ignore[return-value]

    def wait_for(self, n: int) -> None:
        for _ in range(n):
            assert self.called.acquire(timeout=30), f"step not called {n} times"


def test_a_step_that_asks_for_more_runs_again_and_then_waits_its_interval() -> None:
    steps = Steps(0, 0, None)
    worker = PeriodicWorker("w", steps, interval_s=3600, log=log)
    worker.start()
    worker.start()  # one thread, whatever the calls
    steps.wait_for(3)  # 0, 0: at once; None: the hour-long interval...
    worker.wake()  # ...which wake() ends
    steps.wait_for(1)
    worker.stop()
    assert steps.calls == 4
    assert [t for t in threading.enumerate() if t.name == "w"] == []


def test_a_failing_step_is_logged_and_the_worker_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    steps = Steps(RuntimeError("disk on fire"), 0)
    worker = PeriodicWorker("sweeper", steps, interval_s=0.01, log=log)
    with caplog.at_level(logging.ERROR, logger="test.worker"):
        worker.start()
        steps.wait_for(3)
        worker.stop()
    failures = [r for r in caplog.records if r.getMessage() == "sweeper failed; retrying"]
    assert len(failures) == 1 and failures[0].exc_info is not None


def test_stop_ends_a_long_wait_and_first_wait_delays_the_first_step() -> None:
    steps = Steps()
    worker = PeriodicWorker("idle", steps, interval_s=3600, log=log, first_wait=True)
    worker.start()
    worker.stop(timeout=30)
    assert steps.calls == 0 and worker.stopping
    assert [t for t in threading.enumerate() if t.name == "idle"] == []


def test_wait_inside_a_step_returns_true_once_stopping() -> None:
    seen: list[bool] = []
    waiting = threading.Event()
    worker: PeriodicWorker

    def step() -> float | None:
        waiting.set()
        seen.append(worker.wait(3600))  # ended by stop
        return None

    worker = PeriodicWorker("inner", step, interval_s=3600, log=log)
    worker.start()
    assert waiting.wait(30)
    worker.stop(timeout=30)
    assert seen == [True]
    assert [t for t in threading.enumerate() if t.name == "inner"] == []
