"""The gateway's outbox: what it accepts is queued for the cloud in the same transaction.

Kept apart from the forwarding worker (gateway/sync.py) so the DICOM receive
path imports nothing of HTTP. Jobs carry only references (a version row, a
link row, a blob key): raw payloads with their identity fields stay
encrypted in the index, never in the queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import Connection, and_, func, or_, select

from ..archive.scrub import read_digest
from ..contract import sync as proto
from ..storage import schema as s
from ..storage.blobs import BlobStore
from ..storage.db import Database
from ..settings import Settings
from ..storage.queue import DELIVERED, PARKED, PENDING, SqlJobQueue

KIND = "sync"
# A job's payload kind: a record kind of the protocol (contract/sync.py), or an instance.
INSTANCE = "instance"


class SyncEvents:
    """RecordEvents of a gateway: every accepted record is queued for the cloud."""

    def __init__(self, queue: SqlJobQueue) -> None:
        self.queue = queue

    def _enqueue(self, conn: Connection, payload: dict[str, Any], order_key: str | None) -> None:
        self.queue.enqueue(conn, kind=KIND, payload=payload, order_key=order_key)

    def study_written(self, conn: Connection, *, hospital_id: str, study_pk: int, action: str) -> None:
        self._version(conn, proto.STUDY, hospital_id, study_pk)

    def study_deleted(self, conn: Connection, *, hospital_id: str, study_id: str) -> None:
        st = s.studies
        pk = conn.execute(select(st.c.pk).where(st.c.hospital_id == hospital_id,
                                                st.c.study_id == study_id)).scalar_one()
        self._version(conn, proto.DELETE, hospital_id, pk)

    def _version(self, conn: Connection, kind: str, hospital_id: str, study_pk: int) -> None:
        v = s.study_versions
        version_pk = conn.execute(select(func.max(v.c.pk)).where(v.c.study_pk == study_pk)).scalar_one()
        study_id = conn.execute(select(s.studies.c.study_id).where(s.studies.c.pk == study_pk)).scalar_one()
        self._enqueue(conn, {"kind": kind, "versionPk": version_pk}, f"{hospital_id}/{study_id}")

    def report_written(self, conn: Connection, *, hospital_id: str, report_pk: int, study_id: str) -> None:
        v = s.report_versions
        version_pk = conn.execute(select(func.max(v.c.pk)).where(v.c.report_pk == report_pk)).scalar_one()
        self._enqueue(conn, {"kind": proto.REPORT, "versionPk": version_pk}, f"{hospital_id}/{study_id}")

    def link_written(self, conn: Connection, *, hospital_id: str, study_id: str) -> None:
        from ..archive.links import qr_slot

        pk = conn.execute(select(s.links.c.pk).where(s.links.c.slot == qr_slot(hospital_id, study_id))).scalar()
        if pk is not None:
            self._enqueue(conn, {"kind": proto.LINK, "linkPk": pk}, f"{hospital_id}/{study_id}")

    def reconcile_written(self, conn: Connection, *, hospital_id: str, log_pk: int) -> None:
        self._enqueue(conn, {"kind": proto.RECONCILE, "logPk": log_pk}, None)

    def study_purged(self, conn: Connection, *, hospital_id: str, tombstone_pk: int) -> None:
        """A retention purge (archive/retention.py): after the study's other records, and before anything the RIS
        sends again under its studyId, so the cloud never purges a study made anew."""
        t = s.purge_tombstones.c
        row = conn.execute(select(t.study_id, t.study_uid).where(t.pk == tombstone_pk)).one()
        key = f"{hospital_id}/{row.study_id}" if row.study_id is not None else f"{hospital_id}/uid/{row.study_uid}"
        self._enqueue(conn, {"kind": proto.PURGE, "tombstonePk": tombstone_pk}, key)

    def hold_changed(self, conn: Connection, *, study_uid: str, reason: str, held: bool) -> None:
        # The hold row is gone once lifted, so the job carries the hold itself (a study UID and a reason, no
        # patient data); one study's holds and lifts arrive in order.
        self._enqueue(conn, {"kind": proto.HOLD, "studyUid": study_uid, "reason": reason, "held": held},
                      f"hold/{study_uid}")

    def instance_stored(self, conn: Connection, *, hospital_id: str, sop_uid: str, blob_key: str, size: int) -> None:
        self._enqueue(conn, {"kind": INSTANCE, "blobKey": blob_key, "size": size, "sopUid": sop_uid}, None)


def resend_wanted(db: Database, blobs: BlobStore, queue: SqlJobQueue, sop_uids: list[str]) -> int:
    """Queue again the instances the cloud asks for (its copy is damaged: contract/sync.py OutboxAnswer) that
    this gateway still holds intact and has not queued already; how many were queued. One the spool purge
    freed, or whose copy here is damaged too, cannot help: the cloud keeps it flagged."""
    if not sop_uids:
        return 0
    i, d = s.instances.c, s.blob_digests.c
    with db.read() as conn:
        rows = conn.execute(
            select(i.sop_uid, i.blob_key, i.size, i.hospital_id, d.sha256)
            .select_from(s.instances.outerjoin(s.blob_digests, d.blob_key == i.blob_key))
            .where(i.sop_uid.in_(sop_uids))
        ).all()
    held = [r for r in rows if r.sha256 and _intact(blobs, r.blob_key, r.sha256)]
    if not held:
        return 0
    queued = 0
    with db.write() as conn:
        for r in held:
            if unforwarded(conn, hospital_id=r.hospital_id, study_id=None, blob_keys=[r.blob_key]):
                continue  # on its way already
            queue.enqueue(conn, kind=KIND, payload={"kind": INSTANCE, "blobKey": r.blob_key, "size": r.size,
                                                    "sopUid": r.sop_uid})
            queued += 1
    return queued


def _intact(blobs: BlobStore, key: str, sha256: str) -> bool:
    """Whether the object under `key` is still what was received (its recorded digest): a damaged copy sent
    to the cloud would only be stored there as a changed version; one freed by the spool purge is gone."""
    found = read_digest(blobs, key)
    return found is not None and found[0] == sha256


def unforwarded(conn: Connection, *, hospital_id: str, study_id: str | None, blob_keys: list[str]) -> bool:
    """Whether the cloud has yet to get something of this study: a record (by its order key) or an instance (its
    blob key) still queued. A purge waits for it: the jobs refer to rows and blobs the purge would remove, and the
    cloud must learn of the delete before the gateway forgets the study."""
    j = s.jobs.c
    waiting = and_(j.kind == KIND, j.state != DELIVERED)
    if study_id is not None and conn.execute(
            select(j.pk).where(waiting, j.order_key == f"{hospital_id}/{study_id}").limit(1)).first() is not None:
        return True
    for i in range(0, len(blob_keys), 100):  # instance jobs carry their blob key in the payload
        chunk = blob_keys[i:i + 100]
        if conn.execute(select(j.pk).where(waiting, j.order_key.is_(None),
                                           or_(*[j.payload.contains(k) for k in chunk])).limit(1)).first():
            return True
    return False


def outbox_counts(conn: Connection) -> tuple[int, int, int, float | None, int, float | None]:
    """The outbox as it stands: pending records, instances and their bytes, when the oldest
    pending job was queued, parked jobs, and when a job was last delivered."""
    j = s.jobs
    pending = conn.execute(select(j.c.payload, j.c.created_at).where(j.c.kind == KIND, j.c.state == PENDING)).all()
    parked = conn.execute(select(func.count()).where(j.c.kind == KIND, j.c.state == PARKED)).scalar_one()
    last_ok = conn.execute(select(func.max(j.c.finished_at)).where(j.c.kind == KIND, j.c.state == DELIVERED)).scalar()
    records = instances = size = 0
    oldest = None
    for payload, created in pending:
        p = orjson.loads(payload)
        if p["kind"] == INSTANCE:
            instances += 1
            size += int(p.get("size", 0))
        else:
            records += 1
        oldest = created if oldest is None else min(oldest, created)
    return records, instances, size, oldest, parked, last_ok


def outbox_report(db: Database, *, now: float | None = None) -> proto.OutboxReport:
    """What the gateway tells the cloud of its backlog (PATH_OUTBOX)."""
    now = time.time() if now is None else now
    with db.read() as conn:
        records, instances, size, oldest, parked, last_ok = outbox_counts(conn)
    return {"pendingRecords": records, "pendingInstances": instances, "pendingBytes": size, "parked": parked,
            "oldestPendingSeconds": round(max(0.0, now - oldest), 3) if oldest is not None else 0.0,
            "lastSuccessAt": last_ok}


def instance_hook(settings: Settings, db: Database) -> Callable[..., None] | None:
    """What a stored instance triggers in its own transaction: on a gateway, its forwarding."""
    if settings.role == "gateway":
        return SyncEvents(SqlJobQueue(db)).instance_stored
    return None
