"""Group commit: many callers' writes in one transaction and one log fsync.

Guarantee: `run(fn)` returns only after the transaction containing `fn`'s
writes has committed durably; if `fn` raises, the exception is raised to its
caller and its writes are not committed, while the others in the batch still
commit (the batch's transaction is rolled back and run again without it, so
every fn must be safe to run twice: its effects are database writes). One writer thread per process
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
log = logging.getLogger("yingyun.db")


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
        self._queues: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(self.writers)]
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self._closed = False
        self._next = 0

    def submit(self, fn: Callable[[Connection], T], *, key: str | None = None) -> "Future[T]":
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
        fut: Future = Future()
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

    def _loop(self, q: queue.SimpleQueue) -> None:
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

    def _commit(self, batch: list[tuple[Callable[[Connection], Any], Future]]) -> None:
        pending = list(batch)
        while pending:
            results: list[Any] = []
            current: Future | None = None
            try:
                with self.db.write() as conn:
                    for fn, current in pending:
                        results.append(fn(conn))
                    current = None
            except BaseException as e:  # noqa: BLE001 - handed to the callers
                if current is None or not isinstance(e, Exception):
                    # The transaction itself failed (or we are interrupted): nobody's write is durable.
                    if len(pending) > 1:
                        log.error("group commit of %d writes failed: %s", len(pending), type(e).__name__)
                    for _, fut in pending:
                        fut.set_exception(e)
                    if not isinstance(e, Exception):
                        raise
                    return
                # That write failed, and the transaction with it: the others go again
                # without it (cheaper than a savepoint, a round trip each, around every write).
                current.set_exception(e)
                pending = [item for item in pending if item[1] is not current]
                continue
            for (_, fut), value in zip(pending, results):
                fut.set_result(value)
            return
