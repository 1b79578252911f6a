"""The access audit of patient, doctor and share links.

`AuditLog.record` never blocks a page or an image on a database write: rows
are queued and a background thread inserts them in batches (every
`interval` seconds or `batch` rows), so a viewer prefetching 300 images
costs a handful of commits, not 300. `flush()` writes what is queued now;
`close()` flushes and stops. Rows queued at the moment of a hard crash can
be lost (at most `interval` seconds' worth); a clean shutdown loses none.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from sqlalchemy import Connection, insert, select

from ...core.times import UTC, Zone
from ...storage import schema as s
from ...storage.db import Database

log = logging.getLogger("yingyun.audit")

_UA_MAX = 400


class AuditLog:
    def __init__(self, db: Database, *, interval: float = 0.5, batch: int = 200) -> None:
        self.db = db
        self.interval = interval
        self.batch = batch
        self._q: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._flushed = threading.Condition()
        self._pending = 0

    def start(self) -> AuditLog:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
                self._thread.start()
        return self

    def record(self, *, access: str, link_pk: int | None, link_kind: str | None, hospital_id: str | None,
               study_id: str | None, study_uid: str | None, client_ip: str | None, user_agent: str | None,
               detail: str | None = None, at: float | None = None) -> None:
        row = {"at": at or time.time(), "access": access, "link_pk": link_pk, "link_kind": link_kind,
               "hospital_id": hospital_id,
                   "study_id": study_id, "study_uid": study_uid, "client_ip": (client_ip or None),
                   "user_agent": (user_agent or "")[:_UA_MAX] or None, "detail": detail}
        with self._flushed:
            self._pending += 1
        self._q.put(row)
        if self._thread is None:
            self.start()

    def flush(self, timeout: float = 10.0) -> None:
        """Block until everything recorded so far is committed."""
        deadline = time.monotonic() + timeout
        with self._flushed:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("audit rows not written in time")
                self._flushed.wait(left)

    def close(self) -> None:
        t = self._thread
        if t is not None and t.is_alive():
            self._q.put(None)
            t.join(timeout=15)
        self._thread = None

    def _run(self) -> None:
        stop = False
        while not stop:
            rows: list[dict[str, Any]] = []
            try:
                item = self._q.get(timeout=1.0)
            except queue.Empty:
                continue
            if item is None:
                stop = True
            else:
                rows.append(item)
            deadline = time.monotonic() + self.interval
            while len(rows) < self.batch and not stop:
                try:
                    item = self._q.get(timeout=max(deadline - time.monotonic(), 0.0) if rows else self.interval)
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                else:
                    rows.append(item)
            if stop:  # drain what is left
                while True:
                    try:
                        item = self._q.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        rows.append(item)
            if rows:
                self._write(rows)

    def _write(self, rows: list[dict[str, Any]]) -> None:
        for attempt in range(5):
            try:
                with self.db.write() as conn:
                    conn.execute(insert(s.access_audit), rows)
                break
            except Exception:  # a database hiccup must not lose the trail silently
                log.exception("writing %d audit row(s) failed (attempt %d)", len(rows), attempt + 1)
                time.sleep(0.2 * (attempt + 1))
        with self._flushed:
            self._pending -= len(rows)
            self._flushed.notify_all()


def query(conn: Connection, *, study_uid: str | None = None, link_pk: int | None = None, since: float | None = None,
          zone: Zone = UTC, limit: int | None = None) -> list[dict[str, Any]]:
    """Audit rows at or after `since`, oldest first; `at` is shown in `zone` to the millisecond."""
    a = s.access_audit
    stmt = select(a).order_by(a.c.at, a.c.pk)
    if study_uid:
        stmt = stmt.where(a.c.study_uid == study_uid)
    if link_pk is not None:
        stmt = stmt.where(a.c.link_pk == link_pk)
    if since is not None:
        stmt = stmt.where(a.c.at >= since)
    if limit:
        stmt = stmt.limit(limit)
    return [
        {
            "at": zone.show(r.at, milliseconds=True),
            "link": r.link_pk,
            "linkKind": r.link_kind,
            "hospitalId": r.hospital_id,
            "studyId": r.study_id,
            "studyUid": r.study_uid,
            "access": r.access,
            "detail": r.detail,
            "client": r.client_ip,
            "userAgent": r.user_agent,
        }
        for r in conn.execute(stmt)
    ]
