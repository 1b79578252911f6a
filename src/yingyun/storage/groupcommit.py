"""Group commit: many callers' writes in one transaction and one log fsync.

Guarantee: `run(fn)` returns only after the transaction containing `fn`'s
writes has committed durably; if `fn` raises, the exception is raised to its
caller and its writes are not committed, while the others in the batch still
commit (see `commit_together`, which InstanceStore's receive path shares). One writer thread per process
takes whatever is queued (up to `max_batch`), so under load each commit
carries many requests and when idle each request commits alone at once.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy import Connection

from .db import Database

T = TypeVar("T")
W = TypeVar("W")
log = logging.getLogger("yingyun.db")


# A write waiting for its batch: the function and the future its caller waits on.
_Item = tuple[Callable[[Connection], Any], Future[Any]]


class GroupCommit:
    """`writers` > 1 (PostgreSQL only: SQLite has one writer at a time) runs
    several batches at once to hide the database's round trips; work with the
    same `key` always goes to the same writer, so writes about one record
    never race each other or deadlock across batches."""

    def __init__(self, db: Database, *, max_batch: int = 128, name: str = "group-commit", writers: int = 1) -> None:
        self.db = db
        self.max_batch = max_batch
        self.name = name
        self.writers = 1 if db.is_sqlite else max(1, writers)
        self._queues: list[queue.SimpleQueue[_Item | None]] = [queue.SimpleQueue() for _ in range(self.writers)]
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self._closed = False
        self._next = 0

    def submit(self, fn: Callable[[Connection], T], *, key: str | None = None) -> Future[T]:
        if self._closed:
            raise RuntimeError("group commit is closed")
        if not self._threads:
            with self._start_lock:
                if not self._threads:
                    for i, q in enumerate(self._queues):
                        t = threading.Thread(target=self._loop, args=(q,), name=f"{self.name}-{i}", daemon=True)
                        t.start()
                        self._threads.append(t)
        if key is None:
            self._next = (self._next + 1) % self.writers
            index = self._next
        else:
            index = zlib.crc32(key.encode()) % self.writers
        fut: Future[Any] = Future()
        self._queues[index].put((fn, fut))
        return fut

    def run(self, fn: Callable[[Connection], T], *, key: str | None = None) -> T:
        return self.submit(fn, key=key).result()

    async def run_async(self, fn: Callable[[Connection], T], *, key: str | None = None) -> T:
        return await asyncio.wrap_future(self.submit(fn, key=key))

    def close(self) -> None:
        self._closed = True
        for q in self._queues:
            q.put(None)
        for t in self._threads:
            t.join(timeout=30)

    def _loop(self, q: queue.SimpleQueue[_Item | None]) -> None:
        while True:
            first = q.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Item]) -> None:
        def settle(item: _Item, ok: bool, value: Any) -> None:
            item[1].set_result(value) if ok else item[1].set_exception(value)

        commit_together(self.db, lambda: batch, lambda item, conn: item[0](conn), settle)


def commit_together(db: Database, take: Callable[[], list[W]], apply: Callable[[W, Connection], Any],
                    settle: Callable[[W, bool, Any], None]) -> None:
    """Apply the writes `take()` hands out (called once, inside the first transaction, so
    with the write lock held) in one transaction, and `settle(write, ok, result or error)`
    each once that transaction is durable or has failed.

    A write that raises fails alone: the transaction is rolled back and the others are
    applied again without it (every write must be safe to apply twice: its effects are
    database writes), which costs less than a savepoint, a round trip on PostgreSQL,
    around every write. A transaction that fails by itself (BEGIN, COMMIT) fails every
    write in it; an interruption fails them too and is raised.
    """
    writes: list[W] | None = None
    pending: list[W] = []
    try:
        while True:
            current: W | None = None
            results: list[Any] = []
            try:
                with db.write() as conn:
                    if writes is None:
                        writes = take()
                        pending = list(writes)
                    for current in pending:
                        results.append(apply(current, conn))
                    current = None
            except Exception as e:  # noqa: BLE001 - handed to the writers' callers
                if writes is None:
                    writes = take()
                    pending = list(writes)
                if current is None:
                    if len(pending) > 1:
                        log.error("group commit of %d writes failed: %s", len(pending), type(e).__name__)
                    for w in pending:
                        settle(w, False, e)
                    return
                settle(current, False, e)
                pending = [w for w in pending if w is not current]
                if not pending:
                    return
                continue
            for w, value in zip(pending, results, strict=True):  # one result per write applied
                settle(w, True, value)
            return
    except BaseException as e:  # interrupted: nobody's write is known durable
        for w in pending:
            settle(w, False, e)
        raise
