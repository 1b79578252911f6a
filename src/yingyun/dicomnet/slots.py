"""Association slots: one limit on concurrent associations, shared by every receiver process.

``AssociationSlots(limit, reserved=..., folder=...)`` hands out at most
``limit`` slots at once. With a ``folder``, slot *i* is the file
``folder/i`` held with ``flock(LOCK_EX | LOCK_NB)`` for as long as an
association uses it. That is what makes the limit one limit for every
process given the same folder, and keeps it right when one dies:

* a flock belongs to the open file description, so two holders never share
  a slot, whether they are threads of one process or different processes
  (POSIX record locks would be per process: a second thread would get a
  slot its process already holds);
* the kernel drops a process's flocks with its files, so the slots of a
  receiver that was killed come back at once, with nothing to clean up.

Without a folder the slots are counted in this process only. The last
``reserved`` of the ``limit`` slots are kept for peers the caller vouches for
(``acquire(trusted=...)``: registered PACS hosts), so that connections from
anywhere else, which need no sign-in to hold a slot while they dawdle, can
never take them all.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable

__all__ = ["AssociationSlots"]


class AssociationSlots:
    def __init__(self, limit: int, *, reserved: int = 0, folder: str | os.PathLike[str] | None = None) -> None:
        if limit < 1 or not 0 <= reserved < limit:
            raise ValueError("limit >= 1 and 0 <= reserved < limit")
        self.limit = limit
        self.reserved = reserved
        self._folder = os.fspath(folder) if folder is not None else None
        if self._folder is not None:
            os.makedirs(self._folder, mode=0o700, exist_ok=True)
        self._lock = threading.Lock()
        self._held: dict[int, int | None] = {}  # slot -> its locked file (None without a folder)

    def acquire(self, *, trusted: Callable[[], bool] | None = None) -> int | None:
        """A free slot, or None. The reserved slots are tried only when the
        others are taken and ``trusted()`` says the peer may have one (it is
        called only then, so a lookup behind it costs nothing on a quiet
        server)."""
        general = self.limit - self.reserved
        with self._lock:
            slot = self._take(range(general))
        if slot is None and self.reserved and trusted is not None and trusted():
            with self._lock:
                slot = self._take(range(general, self.limit))
        return slot

    def _take(self, candidates: range) -> int | None:
        for i in candidates:
            if i in self._held:
                continue
            if self._folder is None:
                self._held[i] = None
                return i
            fd = os.open(os.path.join(self._folder, str(i)), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # another process holds it
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                raise
            self._held[i] = fd
            return i
        return None

    def release(self, slot: int) -> None:
        with self._lock:
            fd = self._held.pop(slot)
        if fd is not None:
            os.close(fd)  # closing the only descriptor of the file description drops the flock

    def held(self) -> int:
        """Slots held by this object (this process's associations)."""
        with self._lock:
            return len(self._held)
