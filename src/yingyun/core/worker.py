"""A background thread that does one step of work again and again: ``PeriodicWorker``.

Every long-running helper of a server (the stability sweep, the spool purge,
the sync sender, the callback dispatcher) is one loop around a step, and
they share what is easy to get subtly wrong:

* ``start()`` starts one daemon thread (a second call does nothing);
  ``stop()`` asks it to end, wakes it from any wait and joins it within a
  timeout; ``wake()`` ends the current wait early (work has arrived).
* ``step()`` returns how long to wait before the next step: 0 for at once
  (there may be more), ``None`` for the worker's ``interval_s``.
* One failure policy, log and continue: an exception from a step is
  logged with its traceback as "<name> failed; retrying" and the next step
  comes after ``interval_s``. A worker never dies of one bad pass.
* A step that must wait inside (for an answer, a back-off) uses
  ``wait(seconds)``, which returns True as soon as the worker is stopping.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["PeriodicWorker"]


class PeriodicWorker:
    def __init__(self, name: str, step: Callable[[], float | None], *, interval_s: float, log: logging.Logger,
                 first_wait: bool = False) -> None:
        """`first_wait`: wait `interval_s` before the first step too (a sweep that has nothing to do at start)."""
        self.name = name
        self.interval_s = interval_s
        self._step = step
        self._log = log
        self._first_wait = first_wait
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the loop to end after its current step, and wait for it at most `timeout` seconds."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=timeout)

    def wake(self) -> None:
        """End the current wait between steps now."""
        self._wake.set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds` (less when woken or stopped); True when the worker is stopping."""
        if seconds > 0 and not self._stopping.is_set():
            self._wake.wait(seconds)
            self._wake.clear()
        return self._stopping.is_set()

    def _run(self) -> None:
        if self._first_wait and self.wait(self.interval_s):
            return
        while not self._stopping.is_set():
            try:
                pause = self._step()
            except Exception:
                self._log.exception("%s failed; retrying", self.name)
                pause = None
            if self.wait(self.interval_s if pause is None else pause):
                return
