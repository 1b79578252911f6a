"""The scrub: every stored instance's blob re-read and compared with its digest, at a bounded rate.

What it checks, per instance row: the blob is there, has the size indexed,
and has the SHA-256 recorded at ingest (`blob_digests`, written by
archive/instances.py while the bytes are stored; an object older than that
is given the digest of its first reading, so its damage is found from the
second reading on: the size check catches a truncated object at once). What it finds is kept in
`blob_digests.state` (missing | corrupt; ok again once repaired) and counted in
`scrub_state`, which `scrub_figures` reads for /metrics (metrics/state.py).

A damaged object is repaired when a `RepairSource` holds a copy whose digest
is the recorded one (a backup folder made by `yingyun backup`, or on a gateway
the cloud's copy); otherwise it stays flagged. On the cloud, a flagged object
is also asked back from its hospital's gateway (`damaged_instances`, in the
answer to the gateway's outbox report), which sends it again while its spool
still holds it, and the ingest puts it back under its key
(archive/instances.py). On a gateway, an instance older than the spool days whose
file is gone was freed by the spool purge after the cloud acknowledged it:
that is not damage.

The rate is a ceiling in bytes per second of reading, held by sleeping
after each chunk for as long as the reading ran ahead of it, so the scrub
never takes more of the disk than its share (`--scrub-rate-mb`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from sqlalchemy import Connection, func, select, update

from ..core.worker import PeriodicWorker
from ..storage.blobs import BlobNotFound, BlobStore
from ..storage.db import Database
from ..storage.schema import blob_digests, instances, scrub_state
from ..storage.upsert import insert_ignore

log = logging.getLogger("yingyun.scrub")

CHUNK = 1 << 20
BATCH = 200  # instance rows per step
OK, MISSING, CORRUPT = "ok", "missing", "corrupt"
STATE_ID = 1


class RepairSource(Protocol):
    """Somewhere else a copy of a blob may be."""

    def open(self, key: str) -> BinaryIO | None:
        """The copy's bytes, or None when it has none."""
        ...


class BackupCopies:
    """The blobs of a backup folder made by `yingyun backup` (storage/backup.py)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def open(self, key: str) -> BinaryIO | None:
        path = self.folder / "blobs" / key
        return open(path, "rb") if path.is_file() else None


@dataclass
class Finding:
    key: str
    hospital_id: str
    study_uid: str
    problem: str  # missing | corrupt
    repaired: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"blobKey": self.key, "hospitalId": self.hospital_id, "studyUid": self.study_uid,
                "problem": self.problem, "repaired": self.repaired}


@dataclass
class ScrubReport:
    checked: int = 0
    bytes: int = 0
    findings: list[Finding] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"checked": self.checked, "bytes": self.bytes,
                "missing": [f.as_json() for f in self.findings if f.problem == MISSING],
                "corrupt": [f.as_json() for f in self.findings if f.problem == CORRUPT]}


class Throttle:
    """At most `rate` bytes per second over the throttle's life (0: no limit)."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Any] = time.sleep) -> None:
        self.rate, self.clock, self.sleep = rate, clock, sleep
        self.started = clock()
        self.done = 0

    def took(self, n: int) -> None:
        if self.rate <= 0:
            return
        self.done += n
        ahead = self.done / self.rate - (self.clock() - self.started)
        if ahead > 0:
            self.sleep(ahead)


class Scrubber:
    def __init__(self, db: Database, blobs: BlobStore, *, rate_bytes: float, repair: RepairSource | None = None,
                 spooled_before: Callable[[], float] | None = None, batch: int = BATCH) -> None:
        """`spooled_before`: on a gateway, the time before which a forwarded file may have been freed."""
        self.db, self.blobs, self.repair = db, blobs, repair
        self.throttle = Throttle(rate_bytes)
        self.spooled_before = spooled_before
        self.batch = batch

    def check_all(self, *, since: float | None = None) -> ScrubReport:
        """Read every instance (received at or after `since`) now, as `admin verify` does."""
        report = ScrubReport()
        last = 0
        while True:
            rows = self._rows(last, since)
            if not rows:
                return report
            self._check(rows, report)
            last = rows[-1].pk

    def step(self) -> float | None:
        """One batch of the background pass; records where it got to. Returns 0 while the pass goes on."""
        with self.db.write() as conn:
            insert_ignore(conn, scrub_state, {"id": STATE_ID, "last_pk": 0, "checked": 0, "checked_bytes": 0,
                                              "errors": 0, "passes": 0}, keys=["id"])
            state = conn.execute(select(scrub_state).where(scrub_state.c.id == STATE_ID)).one()
        rows = self._rows(state.last_pk, None)
        now = time.time()
        if not rows:
            with self.db.write() as conn:
                conn.execute(update(scrub_state).where(scrub_state.c.id == STATE_ID).values(
                    last_pk=0, checked=0, checked_bytes=0, passes=scrub_state.c.passes + 1, last_pass_at=now,
                    pass_started_at=None))
            log.info("scrub: pass complete (%d objects, %d errors so far)", state.checked, state.errors)
            return None
        report = ScrubReport()
        self._check(rows, report)
        with self.db.write() as conn:
            conn.execute(update(scrub_state).where(scrub_state.c.id == STATE_ID).values(
                last_pk=rows[-1].pk, checked=scrub_state.c.checked + report.checked,
                checked_bytes=scrub_state.c.checked_bytes + report.bytes,
                errors=scrub_state.c.errors + sum(not f.repaired for f in report.findings),
                pass_started_at=state.pass_started_at or now))
        return 0.0

    # -- one batch --------------------------------------------------------------

    def _rows(self, after: int, since: float | None) -> list[Any]:
        i = instances.c
        query = select(i.pk, i.blob_key, i.size, i.hospital_id, i.study_uid, i.received_at).where(i.pk > after)
        if since is not None:
            query = query.where(i.received_at >= since)
        with self.db.read() as conn:
            return list(conn.execute(query.order_by(i.pk).limit(self.batch)))

    def _check(self, rows: list[Any], report: ScrubReport) -> None:
        keys = [r.blob_key for r in rows]
        with self.db.read() as conn:
            known = {r.blob_key: r for r in conn.execute(select(blob_digests).where(blob_digests.c.blob_key.in_(keys)))}
        spooled_before = self.spooled_before() if self.spooled_before is not None else None
        results: list[tuple[str, Any, str | None, int, str]] = []
        for row in rows:
            recorded = known.get(row.blob_key)
            digest, size = self._read(row.blob_key)
            report.checked += 1
            report.bytes += size or 0
            if digest is None and spooled_before is not None and row.received_at < spooled_before:
                continue  # freed by the spool purge once the cloud had it
            want = recorded.sha256 if recorded is not None and recorded.sha256 else None
            if digest is None:
                problem: str | None = MISSING
            elif size != row.size or (want is not None and digest != want):
                problem = CORRUPT
            else:
                problem = None
            if problem is not None and want is not None and self._repair(row.blob_key, want, row.size):
                report.findings.append(Finding(row.blob_key, row.hospital_id, row.study_uid, problem, repaired=True))
                log.warning("scrub: a %s object of hospital %s repaired from a copy", problem, row.hospital_id)
                problem, digest = None, want
            elif problem is not None:
                report.findings.append(Finding(row.blob_key, row.hospital_id, row.study_uid, problem))
                log.error("scrub: a %s object of hospital %s (no copy to repair it from)", problem, row.hospital_id)
            results.append((row.blob_key, recorded, want or (digest if problem is None else None), row.size,
                            problem or OK))
        self._record(results)

    def _read(self, key: str) -> tuple[str | None, int | None]:
        found = read_digest(self.blobs, key, took=self.throttle.took)
        return found if found is not None else (None, None)

    def _repair(self, key: str, want: str, size: int) -> bool:
        source = self.repair.open(key) if self.repair is not None else None
        if source is None:
            return False
        with source:
            data = source.read()
        if len(data) != size or hashlib.sha256(data).hexdigest() != want:
            return False  # the copy is not what was received either
        self.blobs.put(key, data)
        return True

    def _record(self, results: list[tuple[str, Any, str | None, int, str]]) -> None:
        """Keep each object's digest (the first one read) and what this reading found, in one transaction."""
        now = time.time()
        with self.db.write() as conn:
            for key, recorded, digest, size, state in results:
                if recorded is None:
                    insert_ignore(conn, blob_digests, {"blob_key": key, "sha256": digest or "", "size": size,
                                                       "recorded_at": now, "checked_at": now, "state": state},
                                  keys=["blob_key"])
                else:
                    values: dict[str, Any] = {"checked_at": now, "state": state}
                    if not recorded.sha256 and digest:
                        values.update(sha256=digest, recorded_at=now)  # missing at its first reading, back since
                    conn.execute(update(blob_digests).where(blob_digests.c.blob_key == key).values(**values))


class ScrubWorker:
    """The background scrub: a pass in batches, then `interval_s` of rest; the first batch a minute after start."""

    IDLE_S = 60.0

    def __init__(self, scrubber: Scrubber, *, interval_s: float) -> None:
        self.scrubber, self.interval_s = scrubber, interval_s
        self._worker = PeriodicWorker("scrub", self._step, interval_s=self.IDLE_S, log=log, first_wait=True)

    def start(self) -> ScrubWorker:
        self._worker.start()
        return self

    def stop(self) -> None:
        self._worker.stop()

    def _step(self) -> float | None:
        with self.scrubber.db.read() as conn:
            state = conn.execute(select(scrub_state).where(scrub_state.c.id == STATE_ID)).first()
        if state is not None and state.pass_started_at is None and state.last_pass_at is not None:
            rest = float(state.last_pass_at) + self.interval_s - time.time()
            if rest > 0:
                return min(rest, self.IDLE_S)
        return self.scrubber.step()


def read_digest(blobs: BlobStore, key: str, *, took: Callable[[int], Any] | None = None) -> tuple[str, int] | None:
    """The SHA-256 (hex) and size of the object under `key`, read a chunk at a time (`took` is told each
    chunk's length: the scrub's throttle); None when it is missing."""
    digest = hashlib.sha256()
    size = 0
    try:
        with blobs.open(key) as f:
            for chunk in _chunks(f):
                digest.update(chunk)
                size += len(chunk)
                if took is not None:
                    took(len(chunk))
    except (BlobNotFound, FileNotFoundError):
        return None
    return digest.hexdigest(), size


def damaged_instances(conn: Connection, *, hospital_id: str, limit: int) -> list[str]:
    """SOP Instance UIDs of a hospital whose stored object the scrub found missing or corrupt, oldest finding
    first: what the cloud asks the hospital's gateway to send again (docs/sync.md, PATH_OUTBOX)."""
    d, i = blob_digests.c, instances.c
    return list(conn.execute(
        select(i.sop_uid).select_from(blob_digests.join(instances, i.blob_key == d.blob_key))
        .where(d.state.in_((MISSING, CORRUPT)), d.sha256 != "", i.hospital_id == hospital_id)
        .order_by(d.checked_at).limit(limit)).scalars())


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    while chunk := f.read(CHUNK):
        yield chunk


def scrub_figures(conn: Connection) -> dict[str, float]:
    """For /metrics: the scrub's progress and errors, and the last successful backup (0: never)."""
    from ..storage.schema import backup_runs

    state = conn.execute(select(scrub_state).where(scrub_state.c.id == STATE_ID)).first()
    total = conn.execute(select(func.count()).select_from(instances)).scalar_one()
    damaged = conn.execute(select(func.count()).select_from(blob_digests).where(blob_digests.c.state != OK)
                           ).scalar_one()
    last_backup = conn.execute(select(func.max(backup_runs.c.finished_at)).where(backup_runs.c.ok == 1)).scalar()
    return {
        "scrub_checked_objects": float(state.checked if state else 0),
        "scrub_checked_bytes": float(state.checked_bytes if state else 0),
        "scrub_pass_progress": float(state.checked) / total if state and total else 0.0,
        "scrub_passes_total": float(state.passes if state else 0),
        "scrub_errors_total": float(state.errors if state else 0),
        "scrub_damaged_objects": float(damaged),
        "scrub_last_pass_timestamp": float(state.last_pass_at or 0) if state else 0.0,
        "backup_last_success_timestamp": float(last_backup or 0),
    }
