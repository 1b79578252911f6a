"""What the gateway's handlers need, handed over by the composition root."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Connection

from ..core.crypto import Vault
from ..settings import Settings
from ..storage.db import Database
from ..storage.groupcommit import GroupCommit
from ..tenancy import Tenancy


class RecordEvents(Protocol):
    """Called inside the accepting transaction, so follow-up work (callbacks,
    forwarding to the cloud) is enqueued atomically with the record."""

    def study_written(self, conn: Connection, *, hospital_id: str, study_pk: int, action: str) -> None: ...
    def report_written(self, conn: Connection, *, hospital_id: str, report_pk: int, study_id: str) -> None: ...
    def study_deleted(self, conn: Connection, *, hospital_id: str, study_id: str) -> None: ...
    def link_written(self, conn: Connection, *, hospital_id: str, study_id: str) -> None: ...
    def reconcile_written(self, conn: Connection, *, hospital_id: str, log_pk: int) -> None: ...


class NoEvents:
    """`yingyun serve` with nothing subscribed yet."""

    def study_written(self, conn, *, hospital_id, study_pk, action):  # type: ignore[no-untyped-def]
        pass

    def report_written(self, conn, *, hospital_id, report_pk, study_id):  # type: ignore[no-untyped-def]
        pass

    def study_deleted(self, conn, *, hospital_id, study_id):  # type: ignore[no-untyped-def]
        pass

    def link_written(self, conn, *, hospital_id, study_id):  # type: ignore[no-untyped-def]
        pass

    def reconcile_written(self, conn, *, hospital_id, log_pk):  # type: ignore[no-untyped-def]
        pass


class Fanout:
    """Several subscribers (callbacks, sync) behind one RecordEvents; each
    gets the events it has a method for."""

    def __init__(self, *targets: object) -> None:
        self.targets = targets

    def _emit(self, name: str, conn: Connection, **kw: object) -> None:
        for t in self.targets:
            method = getattr(t, name, None)
            if method is not None:
                method(conn, **kw)

    def study_written(self, conn, **kw):  # type: ignore[no-untyped-def]
        self._emit("study_written", conn, **kw)

    def report_written(self, conn, **kw):  # type: ignore[no-untyped-def]
        self._emit("report_written", conn, **kw)

    def study_deleted(self, conn, **kw):  # type: ignore[no-untyped-def]
        self._emit("study_deleted", conn, **kw)

    def link_written(self, conn, **kw):  # type: ignore[no-untyped-def]
        self._emit("link_written", conn, **kw)

    def reconcile_written(self, conn, **kw):  # type: ignore[no-untyped-def]
        self._emit("reconcile_written", conn, **kw)


@dataclass
class GatewayContext:
    settings: Settings
    db: Database
    vault: Vault
    tenancy: Tenancy
    writer: GroupCommit
    events: RecordEvents = field(default_factory=NoEvents)
