"""The durable ingest path for DICOM instances (C-STORE, import, STOW).

Guarantee of `InstanceStore.store`: when it returns a success, the file is
on disk (fsynced, under its final key) and its index row is committed.
Files are written first and rows second, so a crash can leave a file
without a row (never acknowledged; the re-send rewrites the same key) but
never a row without its file. A re-sent instance with the same bytes
changes nothing; a changed re-send is stored as a new version and the
superseded copy is kept and recorded until purge.

Index rows are committed through GroupCommit: the associations of a busy
PACS share one transaction and one fsync of the database log instead of
paying one each.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import Connection, and_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..core.dicom import InstanceInfo, InvalidInstance, build_file_meta, read_dataset_info
from ..storage import schema as s
from ..storage.blobs import BlobStore, instance_key
from ..storage.db import Database
from ..storage.groupcommit import GroupCommit
from .records import find_ris_study_for_dicom

log = logging.getLogger("yingyun.ingest")

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
PROCESSING_FAILURE = 0x0110
CANNOT_UNDERSTAND = 0xC210


@dataclass(frozen=True)
class StoreResult:
    status: int
    outcome: str  # stored | duplicate | replaced | refused
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


def _insert_ignore(conn: Connection, table, values: dict, keys: list[str]) -> int | None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
    return conn.execute(stmt.returning(table.c.pk)).scalar()


def meta_length(head: bytes) -> int:
    """Length of preamble + file meta of a Part-10 file we wrote."""
    (group_len,) = struct.unpack_from("<I", head, 140)
    return 144 + group_len


class InstanceStore:
    def __init__(self, db: Database, blobs: BlobStore, *, min_free_bytes: int = 0,
                 on_new_instance: Callable[[Connection, str, str], None] | None = None,
                 batch_max: int = 256) -> None:
        self.db = db
        self.blobs = blobs
        self.min_free_bytes = min_free_bytes
        self.on_new_instance = on_new_instance
        self.writer = GroupCommit(db, max_batch=batch_max, name="index-writer")

    # -- capacity -------------------------------------------------------------

    def has_room(self, incoming: int = 0) -> bool:
        free = self.blobs.free_bytes()
        return free is None or free - incoming > self.min_free_bytes

    # -- the store path -------------------------------------------------------

    def store(self, *, hospital_id: str, data: bytes | memoryview | BinaryIO, transfer_syntax_uid: str,
              sop_class_uid: str | None = None, sop_instance_uid: str | None = None,
              source_ae: str | None = None) -> StoreResult:
        try:
            info = read_dataset_info(data, transfer_syntax_uid, expected_sop_class_uid=sop_class_uid,
                                     expected_sop_instance_uid=sop_instance_uid)
        except InvalidInstance as e:
            return StoreResult(e.status, "refused", e.reason)
        if info.dataset_offset:
            data = _skip(data, info.dataset_offset)
        try:
            key = instance_key(hospital_id, info.study_uid, info.series_uid, info.sop_instance_uid)
        except ValueError as e:
            return StoreResult(CANNOT_UNDERSTAND, "refused", f"unusable identifiers: {e}")
        if not self.has_room(_size_of(data)):
            return StoreResult(OUT_OF_RESOURCES, "refused", "storage is nearly full")
        existing = self._existing(hospital_id, info.sop_instance_uid)
        meta = build_file_meta(sop_class_uid=info.sop_class_uid, sop_instance_uid=info.sop_instance_uid,
                               transfer_syntax_uid=info.transfer_syntax_uid, source_ae=source_ae)
        replace_version = old = None
        if existing is not None:
            if self._same_bytes(existing.blob_key, data):
                return StoreResult(SUCCESS, "duplicate", study_uid=info.study_uid)
            replace_version = existing.version + 1
            old = (existing.blob_key, existing.size, existing.version)
            key = instance_key(hospital_id, info.study_uid, info.series_uid, info.sop_instance_uid,
                               version=str(replace_version))
        try:
            size = self.blobs.put(key, data, prefix=meta)
        except OSError as e:
            log.error("blob write failed for %s: %s", info.sop_instance_uid, e.strerror or type(e).__name__)
            return StoreResult(OUT_OF_RESOURCES, "refused", "could not write the file")
        pending = _Pending(hospital_id, info, key, size, source_ae, time.time(), replace_version, old)
        try:
            return self.writer.run(lambda conn: self._index(conn, pending))
        except Exception as e:  # the index write failed: nothing acknowledged
            log.error("index write failed for %s: %s", info.sop_instance_uid, type(e).__name__)
            return StoreResult(PROCESSING_FAILURE, "refused", "index write failed")

    def _existing(self, hospital_id: str, sop_uid: str):
        i = s.instances
        with self.db.read() as conn:
            return conn.execute(
                select(i.c.blob_key, i.c.size, i.c.version).where(i.c.hospital_id == hospital_id, i.c.sop_uid == sop_uid)
            ).first()

    def _same_bytes(self, blob_key: str, data) -> bool:
        try:
            with self.blobs.open(blob_key) as f:
                head = f.read(144)
                f.seek(meta_length(head))
                stored = f.read()
        except (KeyError, OSError, struct.error):
            return False
        if isinstance(data, (bytes, bytearray, memoryview)):
            return stored == bytes(data)
        pos = data.tell()
        try:
            return stored == data.read()
        finally:
            data.seek(pos)

    def close(self) -> None:
        self.writer.close()

    def _index(self, conn: Connection, p: _Pending) -> StoreResult:
        info, i = p.info, s.instances
        values = dict(
            hospital_id=p.hospital_id, study_uid=info.study_uid, series_uid=info.series_uid,
            sop_uid=info.sop_instance_uid, sop_class_uid=info.sop_class_uid, transfer_syntax=info.transfer_syntax_uid,
            kind=info.kind, blob_key=p.blob_key, size=p.size, instance_number=info.instance_number,
            number_of_frames=info.number_of_frames, rows=info.rows, columns=info.columns, source_ae=p.source_ae,
            received_at=p.received_at,
        )
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
                if (current.kind, current.series_uid, current.study_uid) != (info.kind, info.series_uid, info.study_uid):
                    self._uncount(conn, p.hospital_id, current)
                    self._count(conn, p, new_instance=True)
                else:
                    self._touch_study(conn, p)
                return StoreResult(SUCCESS, "replaced", study_uid=info.study_uid)
        pk = _insert_ignore(conn, i, dict(values, version=1), ["hospital_id", "sop_uid"])
        if pk is None:
            # The same instance arrived on another association in this instant.
            return StoreResult(SUCCESS, "duplicate", study_uid=info.study_uid)
        self._count(conn, p, new_instance=True)
        return StoreResult(SUCCESS, "stored", study_uid=info.study_uid)

    def _count(self, conn: Connection, p: _Pending, *, new_instance: bool) -> None:
        info, now = p.info, p.received_at
        se, d = s.series, s.dicom_studies
        new_series = _insert_ignore(conn, se, dict(
            hospital_id=p.hospital_id, study_uid=info.study_uid, series_uid=info.series_uid, modality=info.modality or None,
            series_number=info.series_number, description=info.series_description or None, body_part=info.body_part or None,
            series_date=info.series_date or None, series_time=info.series_time or None, n_instances=0,
        ), ["hospital_id", "series_uid"]) is not None
        conn.execute(update(se).where(se.c.hospital_id == p.hospital_id, se.c.series_uid == info.series_uid)
                     .values(n_instances=se.c.n_instances + 1))
        created = _insert_ignore(conn, d, dict(
            hospital_id=p.hospital_id, study_uid=info.study_uid, patient_id=info.patient_id or None,
            patient_name=info.patient_name or None, patient_name_raw=info.patient_name_raw or None,
            patient_birth_date=info.patient_birth_date or None, patient_sex=info.patient_sex or None,
            study_date=info.study_date or None, study_time=info.study_time or None,
            study_description=info.study_description or None, accession_number=info.accession_number or None,
            referring_physician=info.referring_physician or None, modalities="", n_series=0, n_images=0, n_sr=0,
            n_pdf=0, n_documents=0, size_bytes=0, first_instance_at=now, last_instance_at=now, stable=False,
            stable_generation=0,
        ), ["hospital_id", "study_uid"])
        row = conn.execute(select(d.c.pk, d.c.modalities, d.c.ris_study_pk)
                           .where(d.c.hospital_id == p.hospital_id, d.c.study_uid == info.study_uid)).one()
        counter = {"image": d.c.n_images, "sr": d.c.n_sr, "pdf": d.c.n_pdf}.get(info.kind, d.c.n_documents)
        changes = {counter.key: counter + 1, "size_bytes": d.c.size_bytes + p.size, "last_instance_at": now,
                   "stable": False}
        if new_series:
            changes["n_series"] = d.c.n_series + 1
        modalities = row.modalities.split("\\") if row.modalities else []
        if info.modality and info.modality not in modalities:
            changes["modalities"] = "\\".join(modalities + [info.modality])
        if row.ris_study_pk is None:
            ris_pk = find_ris_study_for_dicom(conn, hospital_id=p.hospital_id, study_uid=info.study_uid,
                                              accession_number=info.accession_number or None)
            if ris_pk is not None:
                changes["ris_study_pk"] = ris_pk
        conn.execute(update(d).where(d.c.pk == row.pk).values(**changes))
        if self.on_new_instance is not None:
            self.on_new_instance(conn, p.hospital_id, info.study_uid)

    def _uncount(self, conn: Connection, hospital_id: str, current) -> None:
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


def _size_of(data) -> int:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return len(data)
    try:
        pos = data.tell()
        end = data.seek(0, 2)
        data.seek(pos)
        return end - pos
    except (OSError, AttributeError):
        return 0


def _skip(data, offset: int):
    if isinstance(data, (bytes, bytearray)):
        return memoryview(data)[offset:]
    if isinstance(data, memoryview):
        return data[offset:]
    data.seek(offset, 1)
    return data
