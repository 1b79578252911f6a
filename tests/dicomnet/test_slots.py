"""AssociationSlots: one limit for every process sharing a folder; a dead process's slots come back."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import pytest

from yingyun.dicomnet.slots import AssociationSlots

HOLDER = """
import sys, time
from yingyun.dicomnet.slots import AssociationSlots
slots = AssociationSlots(int(sys.argv[2]), folder=sys.argv[1])
taken = [slots.acquire() for _ in range(int(sys.argv[3]))]
print(" ".join(map(str, taken)), flush=True)
time.sleep(600)
"""


def test_the_limit_is_shared_across_processes_and_a_dead_holder_frees_its_slots(tmp_path):
    folder = tmp_path / "slots"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), "4", "3"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().split() == ["0", "1", "2"]
        slots = AssociationSlots(4, folder=folder)
        assert slots.acquire() == 3 and slots.acquire() is None
        holder.send_signal(signal.SIGKILL)  # no cleanup runs: the kernel drops its locks
        holder.wait(timeout=30)
        assert sorted(slots.acquire() for _ in range(3)) == [0, 1, 2]
        assert slots.acquire() is None and slots.held() == 4
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        holder.stdout.close()


def test_two_holders_in_one_process_never_share_a_slot(tmp_path):
    a, b = AssociationSlots(2, folder=tmp_path), AssociationSlots(2, folder=tmp_path)
    assert a.acquire() == 0 and b.acquire() == 1
    assert a.acquire() is None and b.acquire() is None
    a.release(0)
    assert b.acquire() == 0


def test_concurrent_acquires_never_exceed_the_limit(tmp_path):
    slots = AssociationSlots(5, folder=tmp_path)
    got: list[int | None] = []
    lock = threading.Lock()

    def take() -> None:
        slot = slots.acquire()
        with lock:
            got.append(slot)

    threads = [threading.Thread(target=take) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(s for s in got if s is not None) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("shared", [False, True], ids=["in-process", "folder"])
def test_reserved_slots_only_for_the_trusted(tmp_path, shared):
    slots = AssociationSlots(3, reserved=1, folder=tmp_path if shared else None)
    asked: list[str] = []

    def stranger() -> bool:
        asked.append("stranger")
        return False

    assert [slots.acquire(trusted=stranger) for _ in range(3)] == [0, 1, None]
    assert asked == ["stranger"]  # asked only once the others were full
    assert slots.acquire(trusted=lambda: True) == 2
    assert slots.acquire(trusted=lambda: True) is None


def test_bad_limits():
    with pytest.raises(ValueError):
        AssociationSlots(0)
    with pytest.raises(ValueError):
        AssociationSlots(2, reserved=2)
