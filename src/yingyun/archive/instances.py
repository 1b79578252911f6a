"""The durable ingest path for DICOM instances (C-STORE, import, STOW).

Guarantee of `InstanceStore.store`: when it returns a success, the
instance's bytes are durable and its index row is committed. Files are
written first and rows second, so a crash can leave a file without a row
(never acknowledged; the re-send rewrites the same key) but never a row
without its bytes. On a local folder, small instances are not flushed file
by file: their bytes ride in the index transaction (storage/blobjournal.py)
and the files are flushed in batches afterwards, so one log fsync makes an
instance durable instead of three flushes in a row; larger ones are
fsynced, under their final key, before the row is written. A re-sent
instance with the same bytes changes nothing (it is compared with the
stored copy a piece at a time, so a large one costs no more memory than a
small one); a changed re-send is stored as a new version and the
superseded copy is kept and recorded until purge.

The SHA-256 of each stored object (file meta + dataset) is computed while
its bytes are written (a stream is hashed as the blob store reads it) and
recorded in `blob_digests` in the index transaction, so the scrub
(archive/scrub.py) compares an object with what was received, not with its
own first reading.

Index rows are group-committed (`_IndexCommitter`): the associations of a
busy PACS share one transaction and one fsync of the database log instead
of paying one each, and a lone association commits on its own thread.
The statements of the per-instance path are pre-written SQL on the DBAPI
cursor (storage/rawsql.py): through SQLAlchemy Core they cost more CPU than
SQLite spent running them.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from sqlalchemy import Connection, Row, and_, select, update

from ..core.dicom import DEFAULT_MAX_INFLATED, InstanceInfo, InvalidInstance, build_file_meta, read_dataset_info
from ..dicomnet.status import Status
from ..storage import schema as s
from ..storage.blobjournal import BlobJournal, recover
from ..storage.blobs import BlobStore, LocalFiles
from ..storage.db import Database
from ..storage.groupcommit import commit_together
from ..storage.rawsql import Raw
from .layout import instance_key

log = logging.getLogger("yingyun.ingest")


@dataclass(frozen=True)
class StoreResult:
    status: int
    outcome: str  # stored | duplicate | replaced | repaired | refused
    reason: str = ""
    study_uid: str = ""


@dataclass
class _Pending:
    hospital_id: str
    info: InstanceInfo
    blob_key: str
    size: int
    source_ae: str | None
    received_at: float
    replace_version: int | None  # set when this is a changed re-send
    old: tuple[str, int, int] | None  # (blob_key, size, version) being superseded
    journaled: tuple[bytes, Any] | None = None  # (file meta, dataset) kept in the blob journal
    journal_pk: int = 0
    sha256: str = ""  # of the object as written: file meta + dataset


class _IndexCommitter:
    """Group commit of index writes, led by the callers themselves.

    `run(fn)` returns once the transaction holding `fn`'s writes has
    committed durably; a fn that raises fails alone (`commit_together`).
    Whoever finds no commit under way leads: it takes the database write lock first and only then drains
    the queue, so everything that arrived while it waited for the lock
    (held by another receiver process, say) rides in the same transaction
    and the same log fsync; the others wait for it to finish. A lone
    association commits on its own thread, with no hand-off to a writer
    thread and back (two wake-ups that, on a loaded machine, each wait for
    a core).
    """

    def __init__(self, db: Database, *, max_batch: int = 256) -> None:
        self.db = db
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._leading = False

    def run(self, fn: Callable[[Connection], StoreResult]) -> StoreResult:
        job = _Job(fn)
        with self._cond:
            self._queue.append(job)
            while self._leading and not job.done:
                self._cond.wait()
            if not job.done:
                self._leading = True
        if not job.done:
            try:
                while not job.done:  # more than max_batch queued: lead again
                    self._commit_queued()
            finally:
                with self._cond:
                    self._leading = False
                    self._cond.notify_all()
        if job.error is not None:
            raise job.error
        if job.result is None:  # commit_together settles every job it takes: never reached
            raise RuntimeError("the write queue finished a job without its result")
        return job.result

    def _commit_queued(self) -> None:
        batch: list[_Job] = []

        def take() -> list[_Job]:  # once the write lock is ours
            with self._cond:
                while self._queue and len(batch) < self.max_batch:
                    batch.append(self._queue.popleft())
            return batch

        def settle(job: _Job, ok: bool, value: Any) -> None:
            job.result, job.error = (value, None) if ok else (None, value)

        try:
            commit_together(self.db, take, lambda job, conn: job.fn(conn), settle)
        finally:
            with self._cond:
                for job in batch:
                    job.done = True
                self._cond.notify_all()

    def close(self) -> None:
        pass


class _Job:
    __slots__ = ("fn", "result", "error", "done")

    def __init__(self, fn: Callable[[Connection], StoreResult]) -> None:
        self.fn = fn
        self.result: StoreResult | None = None
        self.error: BaseException | None = None
        self.done = False


def meta_length(head: bytes) -> int:
    """Length of preamble + file meta of a Part-10 file we wrote."""
    group_len: int = struct.unpack_from("<I", head, 140)[0]
    return 144 + group_len


FREE_SPACE_TTL_S = 0.25  # how long InstanceStore.has_room trusts the last statfs


class InstanceStore:
    def __init__(self, db: Database, blobs: BlobStore, *, min_free_bytes: int = 0,
                 on_instance: Callable[..., None] | None = None,
                 batch_max: int = 256, max_inflated: int = DEFAULT_MAX_INFLATED) -> None:
        self.db = db
        self.blobs = blobs
        self.min_free_bytes = min_free_bytes
        # Every path in (C-STORE, STOW, sync, import) is validated here, so a
        # deflate bomb is refused the same way whoever sends it.
        self.max_inflated = max_inflated
        # Called for every new or replaced copy, in the transaction that indexes it
        # (a gateway queues the copy for the cloud): on_instance(conn, hospital_id=,
        # sop_uid=, blob_key=, size=).
        self.on_instance = on_instance
        self.writer = _IndexCommitter(db, max_batch=batch_max)
        self.journal: BlobJournal | None = None
        # The fast paths of a store whose objects are files here: its free space, and
        # puts made durable in batches (the journal holds the bytes meanwhile).
        self._local = blobs if isinstance(blobs, LocalFiles) else None
        if self._local is not None and self._local.fsync:
            recover(db, blobs)  # before anything is stored or read: files a crash left torn come back
            self.journal = BlobJournal(db, self._local)
        self._free: tuple[int | None, float, int] = (None, float("-inf"), 0)  # free bytes, when asked, written since

    # -- capacity -------------------------------------------------------------

    def has_room(self, incoming: int = 0) -> bool:
        # The file system is asked at most every FREE_SPACE_TTL_S (a statfs per
        # instance shows in the CPU profile); what was written since counts too.
        now = time.monotonic()
        free, asked_at, written = self._free
        if now - asked_at > FREE_SPACE_TTL_S:
            free, written = (self._local.free_bytes() if self._local is not None else None), 0
            self._free = (free, now, 0)
        return free is None or free - written - incoming > self.min_free_bytes

    def _wrote(self, size: int) -> None:
        free, asked_at, written = self._free
        self._free = (free, asked_at, written + size)

    # -- the store path -------------------------------------------------------

    def store(self, *, hospital_id: str, data: bytes | memoryview | BinaryIO, transfer_syntax_uid: str,
              sop_class_uid: str | None = None, sop_instance_uid: str | None = None,
              source_ae: str | None = None) -> StoreResult:
        try:
            info = read_dataset_info(data, transfer_syntax_uid, expected_sop_class_uid=sop_class_uid,
                                     expected_sop_instance_uid=sop_instance_uid, max_inflated=self.max_inflated)
        except InvalidInstance as e:
            return StoreResult(e.status, "refused", e.reason)
        return self.store_parsed(hospital_id=hospital_id, data=data, info=info, source_ae=source_ae)

    def store_parsed(self, *, hospital_id: str, data: bytes | bytearray | memoryview | BinaryIO, info: InstanceInfo,
                     source_ae: str | None = None) -> StoreResult:
        """`store` of data already read by core.dicom (`info` is what was read from
        `data`; its dataset starts at info.dataset_offset): not parsed again."""
        if info.dataset_offset:
            data = _skip(data, info.dataset_offset)
        try:
            key = instance_key(hospital_id, info.study_uid, info.series_uid, info.sop_instance_uid)
        except ValueError as e:
            return StoreResult(Status.CANNOT_DECODE_DATA_SET, "refused", f"unusable identifiers: {e}")
        incoming = _size_of(data)
        if not self.has_room(incoming):
            return StoreResult(Status.OUT_OF_RESOURCES, "refused", "storage is nearly full")
        existing = self._existing(hospital_id, info.sop_instance_uid)
        meta = build_file_meta(sop_class_uid=info.sop_class_uid, sop_instance_uid=info.sop_instance_uid,
                               transfer_syntax_uid=info.transfer_syntax_uid, source_ae=source_ae)
        replace_version = old = None
        if existing is not None:
            old_key, old_size, old_version = existing
            if self._same_bytes(old_key, old_size, data, incoming):
                return StoreResult(Status.SUCCESS, "duplicate", study_uid=info.study_uid)
            if self._repairs(old_key, meta, data, hospital_id):
                return StoreResult(Status.SUCCESS, "repaired", study_uid=info.study_uid)
            replace_version = old_version + 1
            old = (old_key, old_size, old_version)
            key = instance_key(hospital_id, info.study_uid, info.series_uid, info.sop_instance_uid,
                               version=str(replace_version))
        journal = self.journal if self.journal is not None and self.journal.takes(data, incoming) else None
        digest = hashlib.sha256(meta)
        body: bytes | bytearray | memoryview | BinaryIO
        if isinstance(data, (bytes, bytearray, memoryview)):
            digest.update(data)
            body = data
        else:
            body = cast(BinaryIO, _Digesting(data, digest))
        try:
            if journal is not None:
                size = journal.blobs.put_unsynced(key, body, prefix=meta)
            else:
                size = self.blobs.put(key, body, prefix=meta)
        except OSError as e:
            log.error("blob write failed for %s: %s", info.sop_instance_uid, e.strerror or type(e).__name__)
            return StoreResult(Status.OUT_OF_RESOURCES, "refused", "could not write the file")
        self._wrote(size)
        pending = _Pending(hospital_id, info, key, size, source_ae, time.time(), replace_version, old,
                           journaled=(meta, data) if journal is not None else None, sha256=digest.hexdigest())
        try:
            result = self.writer.run(lambda conn: self._index(conn, pending))
        except Exception as e:  # the index write failed: nothing acknowledged
            log.error("index write failed for %s: %s", info.sop_instance_uid, type(e).__name__)
            return StoreResult(Status.PROCESSING_FAILURE, "refused", "index write failed")
        if journal is not None:
            journal.written(pending.journal_pk, key)
        return result

    def _existing(self, hospital_id: str, sop_uid: str) -> tuple[Any, ...] | None:
        return self.db.read_one(_SELECT_EXISTING, {"hospital_id": hospital_id, "sop_uid": sop_uid})

    def _repairs(self, blob_key: str, meta: bytes, data: bytes | bytearray | memoryview | BinaryIO,
                 hospital_id: str) -> bool:
        """Put a re-sent copy back under the key of an object the scrub found damaged, when it hashes to the
        digest recorded at ingest: the same instance again mends it, it is not a new version (a gateway
        re-sends from its spool what the cloud asks for: gateway/outbox.py)."""
        damaged = self.db.read_one(_SELECT_DAMAGED, {"blob_key": blob_key})
        if damaged is None:
            return False
        want, want_size = damaged
        digest = hashlib.sha256(meta)
        if isinstance(data, (bytes, bytearray, memoryview)):
            digest.update(data)
            size = len(meta) + len(data)
        else:
            pos = data.tell()
            size = len(meta)
            while chunk := data.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
            data.seek(pos)
        if size != want_size or digest.hexdigest() != want:
            return False  # not what was received either: a changed re-send, stored as a new version
        self.blobs.put(blob_key, data, prefix=meta)
        with self.db.write() as conn:
            conn.execute(update(s.blob_digests).where(s.blob_digests.c.blob_key == blob_key)
                         .values(state="ok", checked_at=time.time()))
        log.warning("a damaged object of hospital %s mended by a re-sent copy", hospital_id)
        return True

    def _same_bytes(self, blob_key: str, blob_size: int, data: bytes | bytearray | memoryview | BinaryIO,
                    size: int) -> bool:
        """Whether the stored copy's dataset is `data` (`size` bytes from its position),
        compared a chunk at a time: a re-sent 1 GiB instance costs two chunks of memory."""
        try:
            with self.blobs.open(blob_key) as f:
                start = meta_length(f.read(144))
                if blob_size - start != size:
                    return False
                f.seek(start)
                if isinstance(data, (bytes, bytearray, memoryview)):
                    with memoryview(data) as view:
                        return _equal_to(f, lambda pos, n: view[pos:pos + n], size)
                pos = data.tell()
                try:
                    return _equal_to(f, lambda _pos, n: data.read(n), size)
                finally:
                    data.seek(pos)
        except (KeyError, OSError, struct.error):
            return False

    def close(self) -> None:
        self.writer.close()
        if self.journal is not None:
            self.journal.close()

    def _announce(self, conn: Connection, p: _Pending) -> None:
        if self.on_instance is not None:
            self.on_instance(conn, hospital_id=p.hospital_id, sop_uid=p.info.sop_instance_uid, blob_key=p.blob_key,
                             size=p.size)

    def _index(self, conn: Connection, p: _Pending) -> StoreResult:
        info, i = p.info, s.instances
        if p.journaled is not None:  # set only when self.journal took it
            if self.journal is None:
                raise RuntimeError("a journaled write reached an InstanceStore without a blob journal")
            p.journal_pk = self.journal.record(conn, p.blob_key, *p.journaled)
        values = {
            "hospital_id": p.hospital_id, "study_uid": info.study_uid, "series_uid": info.series_uid,
            "sop_uid": info.sop_instance_uid, "sop_class_uid": info.sop_class_uid,
            "transfer_syntax": info.transfer_syntax_uid,
            "kind": info.kind, "blob_key": p.blob_key, "size": p.size, "instance_number": info.instance_number,
            "number_of_frames": info.number_of_frames, "rows": info.rows, "columns": info.columns,
            "source_ae": p.source_ae,
            "received_at": p.received_at,
        }
        _RECORD_DIGEST.run(conn, {"blob_key": p.blob_key, "sha256": p.sha256, "size": p.size, "at": p.received_at})
        if p.replace_version is not None:
            current = conn.execute(
                select(i.c.pk, i.c.blob_key, i.c.size, i.c.version, i.c.kind, i.c.series_uid, i.c.study_uid)
                .where(i.c.hospital_id == p.hospital_id, i.c.sop_uid == info.sop_instance_uid)
            ).first()
            if current is not None:
                conn.execute(s.superseded_instances.insert().values(
                    hospital_id=p.hospital_id, sop_uid=info.sop_instance_uid, blob_key=current.blob_key,
                    size=current.size, version=current.version, superseded_at=p.received_at))
                conn.execute(update(i).where(i.c.pk == current.pk).values(**values, version=current.version + 1))
                if (current.kind, current.series_uid, current.study_uid) != (info.kind, info.series_uid,
                                                                             info.study_uid):
                    self._uncount(conn, p.hospital_id, current)
                    self._count(conn, p, new_instance=True)
                else:
                    self._touch_study(conn, p)
                self._announce(conn, p)
                return StoreResult(Status.SUCCESS, "replaced", study_uid=info.study_uid)
        pk = _INSERT_INSTANCE.one(conn, dict(values, version=1))
        if pk is None:
            # The same instance arrived on another association in this instant.
            return StoreResult(Status.SUCCESS, "duplicate", study_uid=info.study_uid)
        self._count(conn, p, new_instance=True)
        self._announce(conn, p)
        return StoreResult(Status.SUCCESS, "stored", study_uid=info.study_uid)

    def _count(self, conn: Connection, p: _Pending, *, new_instance: bool) -> None:
        """Count a new instance into its series and study (pre-written SQL:
        this runs once per received instance)."""
        info, now, h = p.info, p.received_at, p.hospital_id
        key = {"hospital_id": h, "series_uid": info.series_uid}
        new_series = _INSERT_SERIES.one(conn, dict(
            key, study_uid=info.study_uid, modality=info.modality or None, series_number=info.series_number,
            description=info.series_description or None, body_part=info.body_part or None,
            series_date=info.series_date or None, series_time=info.series_time or None)) is not None
        if not new_series:
            _BUMP_SERIES.run(conn, key)
        counter = _COUNTER.get(info.kind, "n_documents")
        study = {"hospital_id": h, "study_uid": info.study_uid}
        row = _BUMP_STUDY[counter].one(conn, dict(study, size=p.size, now=now, new_series=int(new_series),
                                                  stable=False))
        created = row is None
        if row is None:
            counts = dict.fromkeys(_COUNTER_COLUMNS, 0)
            counts[counter] = 1
            row = _INSERT_STUDY.one(conn, dict(
                study, **counts, patient_id=info.patient_id or None, patient_name=info.patient_name or None,
                patient_name_raw=info.patient_name_raw or None, patient_birth_date=info.patient_birth_date or None,
                patient_sex=info.patient_sex or None, study_date=info.study_date or None,
                study_time=info.study_time or None, study_description=info.study_description or None,
                accession_number=info.accession_number or None, referring_physician=info.referring_physician or None,
                modalities=info.modality or "", n_series=1 if new_series else 0, size_bytes=p.size,
                first_instance_at=now, last_instance_at=now, stable=False, stable_generation=0))
            if row is None:  # created by another connection since our update: count into it
                row = _BUMP_STUDY[counter].one(conn, dict(study, size=p.size, now=now, new_series=int(new_series),
                                                          stable=False))
        study_pk, modalities, ris_study_pk = row
        if info.modality:
            have = modalities.split("\\") if modalities else []
            if info.modality not in have:
                _SET_MODALITIES.run(conn, {"pk": study_pk, "modalities": "\\".join(have + [info.modality])})
        # A RIS study arriving later links the DICOM study itself (records.upsert_study), so
        # on SQLite, where writers take turns, looking the RIS study up when the DICOM study
        # or a series of it is new is enough: doing it for every instance was two queries
        # inside the write lock. On PostgreSQL the two transactions can run side by side and
        # miss each other, so every instance looks again until the link is made.
        if ris_study_pk is None and (created or new_series or conn.dialect.name != "sqlite"):
            ris_pk = _find_ris_study(conn, h, info.study_uid, info.accession_number or None)
            if ris_pk is not None:
                _SET_RIS_STUDY.run(conn, {"pk": study_pk, "ris_study_pk": ris_pk})

    def _uncount(self, conn: Connection, hospital_id: str, current: Row[*tuple[Any, ...]]) -> None:
        se, d = s.series, s.dicom_studies
        conn.execute(update(se).where(se.c.hospital_id == hospital_id, se.c.series_uid == current.series_uid)
                     .values(n_instances=se.c.n_instances - 1))
        counter = {"image": d.c.n_images, "sr": d.c.n_sr, "pdf": d.c.n_pdf}.get(current.kind, d.c.n_documents)
        conn.execute(update(d).where(d.c.hospital_id == hospital_id, d.c.study_uid == current.study_uid)
                     .values({counter.key: counter - 1}))

    def _touch_study(self, conn: Connection, p: _Pending) -> None:
        d = s.dicom_studies
        conn.execute(update(d).where(and_(d.c.hospital_id == p.hospital_id, d.c.study_uid == p.info.study_uid))
                     .values(last_instance_at=p.received_at, stable=False))


# -- pre-written SQL of the hot path (see storage/rawsql.py) -------------------

_INSTANCE_COLUMNS = ["hospital_id", "study_uid", "series_uid", "sop_uid", "sop_class_uid", "transfer_syntax", "kind",
                     "blob_key", "size", "instance_number", "number_of_frames", "rows", "columns", "source_ae",
                     "received_at", "version"]


def _q(column: str) -> str:
    return f'"{column}"' if column in ("rows", "columns") else column


_SELECT_DAMAGED = Raw("SELECT sha256, size FROM blob_digests "
                      "WHERE blob_key = :blob_key AND state IN ('missing', 'corrupt') AND sha256 <> ''")
_SELECT_EXISTING = Raw("SELECT blob_key, size, version FROM instances "
                       "WHERE hospital_id = :hospital_id AND sop_uid = :sop_uid")
_INSERT_INSTANCE = Raw(
    f"INSERT INTO instances ({', '.join(_q(c) for c in _INSTANCE_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _INSTANCE_COLUMNS)}) "
    "ON CONFLICT (hospital_id, sop_uid) DO NOTHING RETURNING pk")
# A re-sent key (a crash before its row, or a race of two associations) keeps the digest of the bytes written last.
_RECORD_DIGEST = Raw(
    "INSERT INTO blob_digests (blob_key, sha256, size, recorded_at, checked_at, state) "
    "VALUES (:blob_key, :sha256, :size, :at, :at, 'ok') "
    "ON CONFLICT (blob_key) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size, "
    "recorded_at = excluded.recorded_at, state = 'ok'")
_SERIES_COLUMNS = ["hospital_id", "study_uid", "series_uid", "modality", "series_number", "description", "body_part",
                   "series_date", "series_time"]
_INSERT_SERIES = Raw(
    f"INSERT INTO series ({', '.join(_SERIES_COLUMNS)}, n_instances) "
    f"VALUES ({', '.join(':' + c for c in _SERIES_COLUMNS)}, 1) "
    "ON CONFLICT (hospital_id, series_uid) DO NOTHING RETURNING pk")
_BUMP_SERIES = Raw("UPDATE series SET n_instances = n_instances + 1 "
                   "WHERE hospital_id = :hospital_id AND series_uid = :series_uid")
_COUNTER = {"image": "n_images", "sr": "n_sr", "pdf": "n_pdf"}
_COUNTER_COLUMNS = ["n_images", "n_sr", "n_pdf", "n_documents"]
_BUMP_STUDY = {
    c: Raw(f"UPDATE dicom_studies SET {c} = {c} + 1, size_bytes = size_bytes + :size, last_instance_at = :now, "
           "stable = :stable, n_series = n_series + :new_series "
           "WHERE hospital_id = :hospital_id AND study_uid = :study_uid RETURNING pk, modalities, ris_study_pk")
    for c in _COUNTER_COLUMNS
}
_STUDY_COLUMNS = ["hospital_id", "study_uid", "patient_id", "patient_name", "patient_name_raw", "patient_birth_date",
                  "patient_sex", "study_date", "study_time", "study_description", "accession_number",
                  "referring_physician", "modalities", "n_series", *_COUNTER_COLUMNS, "size_bytes", "first_instance_at",
                  "last_instance_at", "stable", "stable_generation"]
_INSERT_STUDY = Raw(
    f"INSERT INTO dicom_studies ({', '.join(_STUDY_COLUMNS)}) VALUES ({', '.join(':' + c for c in _STUDY_COLUMNS)}) "
    "ON CONFLICT (hospital_id, study_uid) DO NOTHING RETURNING pk, modalities, ris_study_pk")
_SET_MODALITIES = Raw("UPDATE dicom_studies SET modalities = :modalities WHERE pk = :pk")
_SET_RIS_STUDY = Raw("UPDATE dicom_studies SET ris_study_pk = :ris_study_pk WHERE pk = :pk")
# The DICOM side of linking (records.upsert_study does the RIS side): by Study Instance UID, else accession number.
_RIS_BY_UID = Raw("SELECT pk FROM studies WHERE hospital_id = :hospital_id AND study_uid = :study_uid "
                  "ORDER BY pk DESC LIMIT 1")
_RIS_BY_ACCESSION = Raw("SELECT pk FROM studies WHERE hospital_id = :hospital_id AND access_number = :acc "
                        "AND (study_uid IS NULL OR study_uid = :study_uid) ORDER BY pk DESC LIMIT 1")


def _find_ris_study(conn: Connection, hospital_id: str, study_uid: str, accession_number: str | None) -> int | None:
    row = _RIS_BY_UID.one(conn, {"hospital_id": hospital_id, "study_uid": study_uid})
    if row is None and accession_number:
        row = _RIS_BY_ACCESSION.one(conn, {"hospital_id": hospital_id, "study_uid": study_uid, "acc": accession_number})
    return None if row is None else row[0]


_COMPARE_CHUNK = 2**20


def _equal_to(f: BinaryIO, incoming: Callable[[int, int], bytes | memoryview], size: int) -> bool:
    """Whether the next `size` bytes of `f` equal `incoming(position, n)`, read piecewise."""
    pos = 0
    while pos < size:
        n = min(_COMPARE_CHUNK, size - pos)
        stored = f.read(n)
        if len(stored) != n or stored != incoming(pos, n):
            return False
        pos += n
    return True


def _size_of(data: bytes | bytearray | memoryview | BinaryIO) -> int:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return len(data)
    try:
        pos = data.tell()
        end = data.seek(0, 2)
        data.seek(pos)
        return end - pos
    except (OSError, AttributeError):
        return 0


def _skip(data: bytes | bytearray | memoryview | BinaryIO, offset: int) -> memoryview | BinaryIO:
    if isinstance(data, (bytes, bytearray)):
        return memoryview(data)[offset:]
    if isinstance(data, memoryview):
        return data[offset:]
    data.seek(offset, 1)
    return data


class _Digesting:
    """A stream whose bytes are hashed as the blob store reads them (one pass over a large instance)."""

    def __init__(self, f: BinaryIO, digest: Any) -> None:
        self.f, self.digest = f, digest

    def read(self, n: int = -1) -> bytes:
        chunk = self.f.read(n)
        self.digest.update(chunk)
        return chunk

    def readinto(self, buf: memoryview) -> int:
        readinto = getattr(self.f, "readinto", None)
        if readinto is None:
            chunk = self.f.read(len(buf))
            n = len(chunk)
            buf[:n] = chunk
        else:
            n = readinto(buf) or 0
        self.digest.update(buf[:n])
        return n
