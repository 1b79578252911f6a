"""Accepting what a hospital's RIS sends: the one path of `/ris/*` and of `/sync/v1/records`.

Each `accept_*` writes the record (`archive.records`) and tells the record's
subscribers (`archive.events.RecordEvents`) in the caller's transaction, so
a record and the work it causes (a status callback, forwarding to the cloud)
commit together. The gateway accepts what the RIS sent it; the cloud accepts
the same records again when a gateway forwards them, with the gateway's
receipt time (`received_at`).
"""

from __future__ import annotations

from sqlalchemy import Connection

from ..contract import gateway_api as g
from ..contract.params import Record
from ..core.crypto import Vault
from . import records
from .events import RecordEvents


def accept_study(conn: Connection, *, vault: Vault, hospital_id: str, record: Record, source: str | None,
                 events: RecordEvents, received_at: float | None = None) -> records.StudyWrite:
    w = records.upsert_study(conn, vault, hospital_id=hospital_id, record=record, source=source,
                             received_at=received_at)
    events.study_written(conn, hospital_id=hospital_id, study_pk=w.pk, action=w.action)
    return w


def accept_report(conn: Connection, *, vault: Vault, hospital_id: str, record: Record, source: str | None,
                  events: RecordEvents, received_at: float | None = None) -> tuple[int, int]:
    """(report pk, version)."""
    pk, version = records.upsert_report(conn, vault, hospital_id=hospital_id, record=record, source=source,
                                        received_at=received_at)
    events.report_written(conn, hospital_id=hospital_id, report_pk=pk, study_id=record.values[g.STUDY_ID])
    return pk, version


def accept_delete(conn: Connection, *, vault: Vault, hospital_id: str, record: Record, source: str | None,
                  events: RecordEvents, received_at: float | None = None) -> bool:
    """False when the study was deleted already (nothing changed, nobody told)."""
    changed = records.delete_study(conn, vault, hospital_id=hospital_id, record=record, source=source,
                                   received_at=received_at)
    if changed:
        events.study_deleted(conn, hospital_id=hospital_id, study_id=record.values[g.STUDY_ID])
    return changed


def accept_reconcile(conn: Connection, *, vault: Vault, hospital_id: str, record: Record, source: str | None,
                     events: RecordEvents, received_at: float | None = None) -> int:
    """One study's reconciliation log (§2.6); returns the log's pk."""
    log_pk = records.add_reconcile_log(conn, vault, hospital_id=hospital_id, kind="study", entries=[record],
                                       raw=record.raw, source=source, received_at=received_at)
    events.reconcile_written(conn, hospital_id=hospital_id, log_pk=log_pk)
    return log_pk


def accept_range(conn: Connection, *, vault: Vault, hospital_id: str, head: Record, entries: list[Record],
                 source: str | None, events: RecordEvents, received_at: float | None = None) -> int:
    """The studies uploaded in a period (§2.7); returns the log's pk."""
    log_pk = records.add_reconcile_log(conn, vault, hospital_id=hospital_id, kind="range", entries=entries,
                                       raw=head.raw, source=source, start_time=head.values[g.START_TIME],
                                       end_time=head.values[g.END_TIME], received_at=received_at)
    events.reconcile_written(conn, hospital_id=hospital_id, log_pk=log_pk)
    return log_pk
