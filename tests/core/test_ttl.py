"""TtlCache: values expire after their TTL, and the cache stays bounded."""

from __future__ import annotations

import threading

from yingyun.core.ttl import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_values_are_loaded_again_once_expired() -> None:
    clock, loads = Clock(), []
    cache: TtlCache[str, int] = TtlCache(30.0, clock=clock)

    def load(key: str) -> int:
        loads.append(key)
        return len(loads)

    assert cache.get("a", load) == 1
    clock.now += 29.9
    assert cache.get("a", load) == 1
    clock.now += 0.2
    assert cache.get("a", load) == 2
    assert cache.get("b", load) == 3
    cache.invalidate("a")
    assert cache.get("a", load) == 4 and cache.get("b", load) == 3
    cache.invalidate()
    assert cache.get("b", load) == 5


def test_the_cache_is_bounded() -> None:
    cache: TtlCache[int, int] = TtlCache(60.0, max_entries=3, clock=Clock())
    loads: list[int] = []
    for key in range(10):
        cache.get(key, lambda k: loads.append(k) or k)
    assert len(cache._entries) <= 3
    assert cache.get(9, lambda k: -1) == 9


def test_concurrent_gets_are_safe() -> None:
    cache: TtlCache[int, int] = TtlCache(60.0, max_entries=50)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(2000):
                assert cache.get((i + offset) % 80, lambda k: k * 2) == ((i + offset) % 80) * 2
        except BaseException as exc:  # carried back to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_peek_answers_from_what_is_kept_and_never_loads() -> None:
    clock = Clock()
    cache: TtlCache[str, int | None] = TtlCache(2.0, clock=clock)
    assert cache.peek("a") == (False, None)
    cache.get("a", lambda k: None)  # a cached "nobody" is a hit too
    assert cache.peek("a") == (True, None)
    cache.get("b", lambda k: 7)
    assert cache.peek("b") == (True, 7)
    clock.now += 2.0
    assert cache.peek("b") == (False, None)
