"""What follows an accepted record: the `RecordEvents` a record's writer calls.

Called inside the accepting transaction, so follow-up work (status callbacks
to partners, forwarding to the cloud) is enqueued atomically with the record.
The gateway's outbox (`gateway.outbox.SyncEvents`) and the cloud's callbacks
(`cloud.callbacks.events.CallbackEvents`) implement it; `archive.accept`
calls it.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Connection


class RecordEvents(Protocol):
    def study_written(self, conn: Connection, *, hospital_id: str, study_pk: int, action: str) -> None: ...
    def report_written(self, conn: Connection, *, hospital_id: str, report_pk: int, study_id: str) -> None: ...
    def study_deleted(self, conn: Connection, *, hospital_id: str, study_id: str) -> None: ...
    def link_written(self, conn: Connection, *, hospital_id: str, study_id: str) -> None: ...
    def reconcile_written(self, conn: Connection, *, hospital_id: str, log_pk: int) -> None: ...


class NoEvents:
    """Nothing subscribed."""

    def study_written(self, conn: Connection, *, hospital_id: str, study_pk: int, action: str) -> None:
        pass

    def report_written(self, conn: Connection, *, hospital_id: str, report_pk: int, study_id: str) -> None:
        pass

    def study_deleted(self, conn: Connection, *, hospital_id: str, study_id: str) -> None:
        pass

    def link_written(self, conn: Connection, *, hospital_id: str, study_id: str) -> None:
        pass

    def reconcile_written(self, conn: Connection, *, hospital_id: str, log_pk: int) -> None:
        pass


class Fanout:
    """Several subscribers (callbacks, sync) behind one RecordEvents, called in order."""

    def __init__(self, *targets: RecordEvents) -> None:
        self.targets = targets

    def study_written(self, conn: Connection, *, hospital_id: str, study_pk: int, action: str) -> None:
        for t in self.targets:
            t.study_written(conn, hospital_id=hospital_id, study_pk=study_pk, action=action)

    def report_written(self, conn: Connection, *, hospital_id: str, report_pk: int, study_id: str) -> None:
        for t in self.targets:
            t.report_written(conn, hospital_id=hospital_id, report_pk=report_pk, study_id=study_id)

    def study_deleted(self, conn: Connection, *, hospital_id: str, study_id: str) -> None:
        for t in self.targets:
            t.study_deleted(conn, hospital_id=hospital_id, study_id=study_id)

    def link_written(self, conn: Connection, *, hospital_id: str, study_id: str) -> None:
        for t in self.targets:
            t.link_written(conn, hospital_id=hospital_id, study_id=study_id)

    def reconcile_written(self, conn: Connection, *, hospital_id: str, log_pk: int) -> None:
        for t in self.targets:
            t.reconcile_written(conn, hospital_id=hospital_id, log_pk=log_pk)
