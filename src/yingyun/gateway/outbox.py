"""The gateway's outbox: what it accepts is queued for the cloud in the same transaction.

Kept apart from the forwarding worker (gateway/sync.py) so the DICOM receive
path imports nothing of HTTP. Jobs carry only references (a version row, a
link row, a blob key): raw payloads with their identity fields stay
encrypted in the index, never in the queue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, func, select

from ..contract import sync as proto
from ..storage import schema as s
from ..storage.db import Database
from ..settings import Settings
from ..storage.queue import SqlJobQueue

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

    def instance_stored(self, conn: Connection, *, hospital_id: str, sop_uid: str, blob_key: str, size: int) -> None:
        self._enqueue(conn, {"kind": INSTANCE, "blobKey": blob_key, "size": size, "sopUid": sop_uid}, None)


def instance_hook(settings: Settings, db: Database) -> Callable[..., None] | None:
    """What a stored instance triggers in its own transaction: on a gateway, its forwarding."""
    if settings.role == "gateway":
        return SyncEvents(SqlJobQueue(db)).instance_stored
    return None
