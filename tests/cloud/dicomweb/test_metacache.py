"""The kept metadata (metacache.py): built once per instance version and base URL, bounded, never stale."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from yingyun.cloud.dicomweb.metacache import MetadataCache

from .conftest import Archive


def test_an_entry_is_built_once_and_a_failure_is_not_kept() -> None:
    cache = MetadataCache()
    calls: list[int] = []
    assert cache.get("k", lambda: calls.append(1) or b"[1]") == b"[1]"
    assert cache.get("k", lambda: calls.append(1) or b"[2]") == b"[1]"
    assert calls == [1]

    def fail() -> bytes:
        raise OSError("unreadable")
    with pytest.raises(OSError):
        cache.get("bad", fail)
    assert cache.get("bad", lambda: b"ok") == b"ok"


def test_a_request_meeting_an_entry_being_built_waits_for_it() -> None:
    cache = MetadataCache()
    started, release = threading.Event(), threading.Event()
    builds: list[str] = []

    def slow() -> bytes:
        builds.append("slow")
        started.set()
        release.wait(5)
        return b"slow"
    t = threading.Thread(target=cache.get, args=("k", slow))
    t.start()
    started.wait(5)
    got: list[bytes] = []
    waiter = threading.Thread(target=lambda: got.append(cache.get("k", lambda: builds.append("again") or b"x")))
    waiter.start()
    time.sleep(0.1)
    release.set()
    t.join(5)
    waiter.join(5)
    assert got == [b"slow"] and builds == ["slow"]


def test_the_cache_is_bounded_by_bytes_least_recently_used_out() -> None:
    cache = MetadataCache(max_bytes=8 * 100)
    for n in range(20):
        cache.get(n, lambda: b"x" * 90)
    cache.get(15, lambda: b"rebuilt")  # used again: kept
    cache.get("new", lambda: b"y" * 90)
    assert cache.get(15, lambda: b"rebuilt") == b"x" * 90
    assert cache.get(0, lambda: b"rebuilt") == b"rebuilt"  # the oldest went
    assert cache.get("huge", lambda: b"z" * 500) == b"z" * 500
    assert cache.get("huge", lambda: b"again") == b"again"  # an entry over an eighth of the bound is not kept


def test_metadata_answers_are_kept_per_version_and_base_url(archive: Archive) -> None:
    st = archive.studies["zhang"].study_uid
    first = archive.get(f"/studies/{st}/metadata")
    again = archive.get(f"/studies/{st}/metadata")
    assert first.status_code == again.status_code == 200
    assert first.content == again.content and len(first.json()) == 6
    # Asked by another name of the server: its own URLs, never another host's kept ones.
    other = httpx.get(archive.dw.replace("127.0.0.1", "localhost") + f"/studies/{st}/metadata",
                      headers=archive.bearer("ops-all"), timeout=30)
    assert other.status_code == 200 and len(other.json()) == 6
    uris = [v["BulkDataURI"] for inst in other.json() for v in inst.values() if "BulkDataURI" in v]
    assert uris and all(u.startswith(archive.dw.replace("127.0.0.1", "localhost")) for u in uris)
