"""Real memory measurements for the large-instance tests.

`traced_peak` is tracemalloc over this process (an in-process server thread
included): the peak of what Python allocated while the block ran, above what
was allocated when it began. `PeakRss` is a child process's peak resident set
(VmHWM), reset before the measured work through /proc/PID/clear_refs.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

MiB = 2**20


@dataclass
class Peak:
    bytes: int = 0

    @property
    def mib(self) -> float:
        return self.bytes / MiB


@contextmanager
def traced_peak() -> Iterator[Peak]:
    peak = Peak()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        yield peak
        peak.bytes = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()


def _status(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(name)


@dataclass
class PeakRss:
    """How far a process's resident set rose above where it stood at `reset`."""

    pid: int
    base: int = field(default=0)

    def reset(self) -> PeakRss:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # 5: reset the peak RSS to the current RSS
        self.base = _status(self.pid, "VmRSS")
        return self

    def rise(self) -> int:
        return _status(self.pid, "VmHWM") - self.base
