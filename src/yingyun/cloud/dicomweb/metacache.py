"""Each instance's WADO-RS metadata, serialised once and kept: a viewer's series metadata is then a join.

OHIF opens a study by asking the metadata of each series (300 instances for
a CT): built from the files that is a read and a parse per instance, kept
it is none. An entry is keyed by the instance's hospital, SOP Instance UID
and version (a re-stored instance is a new version, so nothing stale is
ever served) and by the base URL its BulkDataURIs name. Bounded by bytes,
least recently used out first. `warm` builds a study's entries ahead, in
one background thread, when a viewer's first search names the study; a
request meeting an entry still being built waits for it rather than
building it twice.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger("yingyun.dicomweb")


class MetadataCache:
    def __init__(self, *, max_bytes: int = 64 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._size = 0
        self._building: dict[Hashable, Future[bytes]] = {}
        self._warmer: ThreadPoolExecutor | None = None
        self._warming: set[Hashable] = set()

    def get(self, key: Hashable, build: Callable[[], bytes]) -> bytes:
        """The entry for `key`, built by `build` (its exceptions raised, nothing kept) when there is none."""
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                return hit
            pending = self._building.get(key)
            if pending is None:
                mine: Future[bytes] = Future()
                self._building[key] = mine
        if pending is not None:
            return pending.result()
        try:
            value = build()
        except BaseException as e:
            with self._lock:
                self._building.pop(key, None)
            mine.set_exception(e)
            raise
        with self._lock:
            self._building.pop(key, None)
            if len(value) <= self.max_bytes // 8:
                self._entries[key] = value
                self._size += len(value)
                while self._size > self.max_bytes:
                    _, old = self._entries.popitem(last=False)
                    self._size -= len(old)
        mine.set_result(value)
        return value

    def warm(self, study_key: Hashable, work: Callable[[], None]) -> None:
        """Run `work` (which fills entries through `get`) in the background, once at a time per study."""
        with self._lock:
            if study_key in self._warming:
                return
            self._warming.add(study_key)
            if self._warmer is None:
                self._warmer = ThreadPoolExecutor(1, thread_name_prefix="dicomweb-metadata")
            warmer = self._warmer

        def run() -> None:
            try:
                work()
            except Exception as e:  # the request that wants it builds it again and answers the error
                log.info("metadata warm-up stopped: %s", type(e).__name__)
            finally:
                with self._lock:
                    self._warming.discard(study_key)
        warmer.submit(run)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._size = 0

    def close(self) -> None:
        with self._lock:
            warmer, self._warmer = self._warmer, None
        if warmer is not None:
            warmer.shutdown(wait=True, cancel_futures=True)
