"""Write-ahead copies of small blobs, durable with the index commit.

Why: acknowledging a small DICOM instance the plain way costs three flushes
one after the other (the file's fdatasync, its folder's fsync, the index
commit), and on a small instance those waits are most of the time spent.
With the journal the bytes go into the same transaction as the instance's
index row, so one log fsync (shared by a group commit) makes both durable;
the file itself is written without a flush and visible at once. A flusher
thread then makes the files durable in batches (one syncfs(2) for hundreds,
see LocalFiles.sync_puts) and only after that deletes their rows.

What still holds: when a store is acknowledged its bytes survive a crash or
a power cut (in the journal until the file is durable); the journal row is
deleted only after its file is. After a crash, `recover` writes whatever
rows remain out again, durably and in the order they were journaled, before
the process stores anything (InstanceStore runs it when it opens), so files
torn or lost by a power cut come back before they are read. `recover` is
safe to run in several processes at once and next to a live journal: it
writes the same bytes under the same key.

Only bytes-like blobs up to `MAX_BYTES` are journaled: a CT slice of 512 KB
would double the log traffic for little gain (one flush among large writes).
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Connection, delete, select

from .blobs import BlobStore, LocalFiles
from .db import Database
from .rawsql import Raw
from .schema import blob_journal

log = logging.getLogger("yingyun.blobs")

MAX_BYTES = 128 * 1024
FLUSH_INTERVAL_S = 0.2  # how long a written file waits for others to share its flush
RECOVER_CHUNK = 200  # rows read at a time by recover (bounded memory)
DELETE_CHUNK = 1000  # rows deleted per statement
RETRY_S = 5.0  # after a failed flush (EIO, say): the rows stay, the files are tried again

_INSERT = Raw("INSERT INTO blob_journal (blob_key, data, written_at) VALUES (:key, :data, :at) RETURNING pk")


class BlobJournal:
    def __init__(self, db: Database, blobs: LocalFiles, *, max_bytes: int = MAX_BYTES,
                 flush_interval_s: float = FLUSH_INTERVAL_S) -> None:
        self.db = db
        self.blobs = blobs
        self.max_bytes = max_bytes
        self.flush_interval_s = flush_interval_s
        self._cond = threading.Condition()
        self._written: list[tuple[int, str]] = []  # (journal pk, key) of files not flushed yet
        self._thread: threading.Thread | None = None
        self._closed = False

    def takes(self, data: object, size: int) -> bool:
        return size <= self.max_bytes and isinstance(data, (bytes, bytearray, memoryview))

    def record(self, conn: Connection, key: str, prefix: bytes, data: bytes | bytearray | memoryview) -> int:
        """In the transaction that indexes the blob: keep its bytes (prefix + data)
        until its file is durable. Returns the row's pk, for `written`."""
        row = _INSERT.one(conn, {"key": key, "data": bytes(prefix) + bytes(data), "at": time.time()})
        return int(row[0])

    def written(self, pk: int, key: str) -> None:
        """The transaction holding row `pk` committed: flush the file soon, then drop the row."""
        with self._cond:
            if self._closed:
                raise RuntimeError("blob journal is closed")
            self._written.append((pk, key))
            if len(self._written) == 1:
                self._cond.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="blob-journal", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Flush what is pending (a clean stop leaves the journal empty)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=60)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._written and not self._closed:
                    self._cond.wait()
                if not self._written:
                    return  # closed, everything flushed
                if not self._closed:
                    self._cond.wait(self.flush_interval_s)  # let files written meanwhile share the flush
                batch, self._written = self._written, []
                closing = self._closed
            if self._flush(batch):
                continue
            with self._cond:
                self._written[:0] = batch
                if closing:
                    return  # the rows stay for recover()
                self._cond.wait(RETRY_S)

    def _flush(self, batch: list[tuple[int, str]]) -> bool:
        try:
            self.blobs.sync_puts(key for _pk, key in batch)
        except OSError as e:
            log.error("blob journal: flushing %d files failed (%s); their bytes stay journaled",
                      len(batch), e.strerror or type(e).__name__)
            return False
        try:
            _delete(self.db, [pk for pk, _key in batch])
        except Exception as e:  # noqa: BLE001 - the rows only cost space; recover() drops them later
            log.error("blob journal: dropping %d flushed rows failed: %s", len(batch), type(e).__name__)
        return True


def recover(db: Database, blobs: BlobStore) -> int:
    """Write every journaled blob out durably and drop its row; returns how many."""
    done = 0
    after = 0
    while True:
        j = blob_journal
        with db.read() as conn:
            rows = conn.execute(select(j.c.pk, j.c.blob_key, j.c.data).where(j.c.pk > after)
                                .order_by(j.c.pk).limit(RECOVER_CHUNK)).all()
        if not rows:
            break
        for _pk, key, data in rows:
            blobs.put(key, bytes(data))
        _delete(db, [pk for pk, _key, _data in rows])
        done += len(rows)
        after = rows[-1][0]
    if done:
        log.warning("blob journal: rewrote %d files that were not durable yet when the last run stopped", done)
    return done


def forget(conn: Connection, keys: list[str]) -> None:
    """Drop journal rows of blobs being deleted, so a later recover() cannot bring them back."""
    if keys:
        conn.execute(delete(blob_journal).where(blob_journal.c.blob_key.in_(keys)))


def _delete(db: Database, pks: list[int]) -> None:
    # Chunked: after a long run of failed flushes a batch can outgrow the databases'
    # limit on parameters in one statement.
    with db.write() as conn:
        for i in range(0, len(pks), DELETE_CHUNK):
            conn.execute(delete(blob_journal).where(blob_journal.c.pk.in_(pks[i:i + DELETE_CHUNK])))
