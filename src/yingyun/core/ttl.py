"""A small thread-safe cache whose entries expire (the one for every lookup that may change).

``TtlCache.get(key, load)`` returns the value loaded for ``key`` within the
last ``ttl_s`` seconds, or calls ``load(key)`` (outside the lock: two threads
may load one key at once, and the later value wins) and keeps its result.
``peek(key)`` answers from what is kept alone, for a caller that must not
block (an event loop) and loads elsewhere when it misses. A whole-table
cache is one key (``None``).
At ``max_entries`` the cache is emptied rather than grown: a bound on
memory, and whatever is still wanted is loaded again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["TtlCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, ttl_s: float, *, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_s < 0 or max_entries < 1:
            raise ValueError("ttl_s >= 0 and max_entries >= 1")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K, load: Callable[[K], V]) -> V:
        now = self._clock()
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        value = load(key)
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (now, value)
        return value

    def peek(self, key: K) -> tuple[bool, V | None]:
        """(True, value) when ``key`` holds a value younger than ``ttl_s``, else (False, None); never loads."""
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and self._clock() - hit[0] < self.ttl_s:
            return True, hit[1]
        return False, None

    def invalidate(self, key: K | None = None) -> None:
        """Forget ``key``, or everything."""
        with self._lock:
            if key is None:
                self._entries.clear()
            else:
                self._entries.pop(key, None)
