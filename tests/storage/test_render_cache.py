"""Tests for yingyun.storage.render_cache: rendered frames on disk, keyed by
object, version and options; evicted under a cap; rendered once under
concurrent misses."""

from __future__ import annotations

import io
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from yingyun.core.render import DEFAULT_PRESET, RenderError, RenderOptions, render
from yingyun.storage.render_cache import RenderCache

from ..core.test_render import PNG, data


def _counting_opener(source: object) -> tuple[Callable[[], object], list[int]]:
    calls: list[int] = []

    def opener() -> object:
        calls.append(1)
        return source

    return opener, calls


def test_cache_hit_identical_and_fast(tmp_path: Path) -> None:
    cache = RenderCache(tmp_path / "c", max_bytes=10 * 1024**2)
    opener, calls = _counting_opener(data("693_J2KI.dcm"))  # 512x512
    opts = RenderOptions(quality=90)
    first = cache.get_or_render(("1.2.3", "etag-1"), opener, opts)
    assert first == render(data("693_J2KI.dcm"), opts)
    times = []
    for _ in range(50):
        t0 = time.perf_counter()
        again = cache.get_or_render(("1.2.3", "etag-1"), opener, opts)
        times.append(time.perf_counter() - t0)
        assert again == first
    assert len(calls) == 1
    assert statistics.median(times) < 0.005
    assert cache.get(("1.2.3", "etag-1"), opts) == first


def test_cache_key_covers_version_and_options(tmp_path: Path) -> None:
    cache = RenderCache(tmp_path / "c", max_bytes=10 * 1024**2)
    opener, calls = _counting_opener(data("CT_small.dcm"))
    a = cache.get_or_render(("uid", "v1"), opener, RenderOptions(preset="lung"))
    b = cache.get_or_render(("uid", "v1"), opener, RenderOptions(preset="bone"))
    cache.get_or_render(("uid", "v2"), opener, RenderOptions(preset="lung"))
    cache.get_or_render(("uid", "v1"), opener, RenderOptions(preset="lung", viewport=(64, 64)))
    cache.get_or_render(("uid", "v1"), opener, RenderOptions(preset="lung", fmt="png"))
    assert a != b and len(calls) == 5
    cache.get_or_render(("uid", "v1"), opener, RenderOptions(preset="lung"))
    assert len(calls) == 5
    with pytest.raises(TypeError):
        cache.get_or_render((object(),), opener, RenderOptions())


def _folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_cache_eviction_keeps_folder_under_cap(tmp_path: Path) -> None:
    root = tmp_path / "c"
    cap = 60_000
    cache = RenderCache(root, max_bytes=cap, touch_interval=0.0)
    opener, _ = _counting_opener(data("CT_small.dcm"))
    keep = ("hot", "v1")
    cache.get_or_render(keep, opener, PNG)
    for i in range(40):
        cache.get_or_render((f"uid{i}", "v1"), opener, RenderOptions(window=(float(i * 10), 400.0), fmt="png"))
        cache.get_or_render(keep, opener, PNG)  # hit: keeps it recently used
        assert _folder_bytes(root) <= cap
    assert cache.get(("uid0", "v1"), RenderOptions(window=(0.0, 400.0), fmt="png")) is None
    assert cache.get(keep, PNG) is not None
    assert cache.get(("uid39", "v1"), RenderOptions(window=(390.0, 400.0), fmt="png")) is not None
    assert cache.size_bytes() == _folder_bytes(root)


def test_cache_picks_up_existing_folder(tmp_path: Path) -> None:
    root = tmp_path / "c"
    cache = RenderCache(root, max_bytes=10 * 1024**2)
    opener, calls = _counting_opener(data("CT_small.dcm"))
    blob = cache.get_or_render(("uid", "v1"), opener, RenderOptions())
    reopened = RenderCache(root, max_bytes=10 * 1024**2)
    assert reopened.size_bytes() == len(blob)
    assert reopened.get_or_render(("uid", "v1"), opener, RenderOptions()) == blob
    assert len(calls) == 1


def test_cache_concurrent_same_key_renders_once(tmp_path: Path) -> None:
    cache = RenderCache(tmp_path / "c", max_bytes=10 * 1024**2)
    calls: list[int] = []
    gate = threading.Barrier(8)

    def slow_opener() -> object:
        calls.append(1)
        time.sleep(0.2)  # long enough for every thread to pile up on the miss
        return data("CT_small.dcm")

    results: list[bytes] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            gate.wait()
            results.append(cache.get_or_render(("uid", "v1"), slow_opener, RenderOptions()))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(calls) == 1
    assert len(results) == 8 and len(set(results)) == 1


def test_cache_concurrent_mixed_keys_under_eviction(tmp_path: Path) -> None:
    root = tmp_path / "c"
    cache = RenderCache(root, max_bytes=40_000)
    names = ["CT_small.dcm", "MR_small.dcm", "SC_rgb_rle.dcm", "rtdose.dcm"]
    expected = {(n, p): render(data(n), RenderOptions(preset=p)) for n in names for p in (None, DEFAULT_PRESET)}
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for _ in range(30):
                name = names[int(rng.integers(len(names)))]
                preset = (None, DEFAULT_PRESET)[int(rng.integers(2))]
                got = cache.get_or_render((name, "v1"), lambda name=name: data(name), RenderOptions(preset=preset))
                assert got == expected[(name, preset)]
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert not list(root.rglob("*.tmp"))
    assert _folder_bytes(root) <= 40_000


def test_cache_errors_propagate_and_are_not_cached(tmp_path: Path) -> None:
    cache = RenderCache(tmp_path / "c", max_bytes=10 * 1024**2)
    opener, calls = _counting_opener(b"not dicom at all")
    for _ in range(2):
        with pytest.raises(RenderError):
            cache.get_or_render(("bad", "v1"), opener, RenderOptions())
    assert len(calls) == 2
    assert not [p for p in (tmp_path / "c").rglob("*") if p.is_file()]


def test_cache_closes_file_objects_from_opener(tmp_path: Path) -> None:
    cache = RenderCache(tmp_path / "c", max_bytes=10 * 1024**2)
    opened: list[io.BufferedReader] = []

    def opener() -> object:
        f = open(data("CT_small.dcm"), "rb")
        opened.append(f)
        return f

    cache.get_or_render(("uid", "v1"), opener, RenderOptions())
    assert opened and opened[0].closed
