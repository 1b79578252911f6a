"""The status-callback outbox (contract §3.4): record events -> callback jobs.

`CallbackEvents` implements `archive.events.RecordEvents` (and the
stability monitor's `on_stable`): it is called inside the transaction that
accepts a study, a report or a stable image set, and enqueues one callback
job per subscribed partner in that same transaction, so a callback exists
exactly when its record committed.

A partner is subscribed to a hospital when it has a callback URL, is
enabled, and is granted the hospital (directly or through its union).

Each job carries the status at the time of the event (0 study info, 1
report, 2 images stable, 3 report and images) and the report id then
current; the delivery worker builds the signed request when it sends it.
Jobs of one partner and one study are delivered in order (the queue's
`order_key`), so a partner sees 0 -> 1 -> 3, never 3 -> 1.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import Connection, and_, or_, select

from ...contract import callbacks as cb
from ...core.ttl import TtlCache
from ...storage import schema as s
from ...storage.queue import JobQueue

log = logging.getLogger("yingyun.callbacks")

KIND = "callback"


def order_key(app_id: str, hospital_id: str, study_id: str) -> str:
    return f"{app_id}\x1f{hospital_id}\x1f{study_id}"


class Subscribers:
    """hospital id -> appIds to call back, cached for `refresh_s` (admin changes reach us within it)."""

    def __init__(self, *, refresh_s: float = 2.0) -> None:
        self._all: TtlCache[None, dict[str, list[str]]] = TtlCache(refresh_s)

    def of(self, conn: Connection, hospital_id: str) -> list[str]:
        return self._all.get(None, lambda _: load_subscribers(conn)).get(hospital_id, [])


def load_subscribers(conn: Connection) -> dict[str, list[str]]:
    p, g, h = s.partners, s.partner_grants, s.hospitals
    q = (
        select(p.c.app_id, h.c.id)
        .select_from(p.join(g, g.c.app_id == p.c.app_id).join(
            h, or_(and_(g.c.kind == "hospital", g.c.target_id == h.c.id),
                   and_(g.c.kind == "union", g.c.target_id == h.c.union_id))))
        .where(p.c.enabled.is_(True), p.c.callback_url.is_not(None), p.c.callback_url != "")
    )
    out: dict[str, set[str]] = {}
    for app_id, hospital_id in conn.execute(q):
        out.setdefault(hospital_id, set()).add(app_id)
    return {k: sorted(v) for k, v in out.items()}


class CallbackEvents:
    """RecordEvents + on_stable, enqueueing callback jobs in the caller's transaction."""

    def __init__(self, queue: JobQueue, *, subscribers: Subscribers | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.queue = queue
        self.subscribers = subscribers or Subscribers()
        self.clock = clock

    # -- RecordEvents ---------------------------------------------------------

    def study_written(self, conn: Connection, *, hospital_id: str, study_pk: int, action: str) -> None:
        apps = self.subscribers.of(conn, hospital_id)
        if not apps:
            return
        st = s.studies
        row = conn.execute(select(st.c.study_id, st.c.deleted).where(st.c.pk == study_pk)).first()
        if row is None or row.deleted:
            return
        report_id = _latest_report(conn, hospital_id, row.study_id)
        status = cb.status_of(has_report=report_id is not None, has_images=_images_stable(conn, study_pk))
        self._enqueue(conn, apps, hospital_id=hospital_id, study_id=row.study_id, study_pk=study_pk, status=status,
                      report_id=report_id, cause=f"study {action}")

    def report_written(self, conn: Connection, *, hospital_id: str, report_pk: int, study_id: str) -> None:
        apps = self.subscribers.of(conn, hospital_id)
        if not apps:
            return
        st = s.studies
        row = conn.execute(select(st.c.pk, st.c.deleted).where(st.c.hospital_id == hospital_id,
                                                               st.c.study_id == study_id)).first()
        if row is None or row.deleted:
            return  # the study's own arrival will carry the report's status
        status = cb.status_of(has_report=True, has_images=_images_stable(conn, row.pk))
        self._enqueue(conn, apps, hospital_id=hospital_id, study_id=study_id, study_pk=row.pk, status=status,
                      report_id=report_pk, cause="report")

    def study_deleted(self, conn: Connection, *, hospital_id: str, study_id: str) -> None:
        pass  # §3.4 has no status for it; pending callbacks of the study are not sent (see the worker)

    def link_written(self, conn: Connection, *, hospital_id: str, study_id: str) -> None:
        pass

    def reconcile_written(self, conn: Connection, *, hospital_id: str, log_pk: int) -> None:
        pass

    # -- the reading centre (cloud/reading) ------------------------------------------

    def critical_finding(self, conn: Connection, *, hospital_id: str, study_id: str) -> None:
        """A report with a critical finding was submitted: status 1 with "critical": true, at once (before the
        report is final and in `reports`, so its reportId is empty)."""
        apps = self.subscribers.of(conn, hospital_id)
        if not apps:
            return
        st = s.studies
        row = conn.execute(select(st.c.pk, st.c.deleted).where(st.c.hospital_id == hospital_id,
                                                               st.c.study_id == study_id)).first()
        if row is None or row.deleted:
            return
        self._enqueue(conn, apps, hospital_id=hospital_id, study_id=study_id, study_pk=row.pk,
                      status=cb.STATUS_REPORT, report_id=None, cause="critical finding", critical=True)

    # -- StabilityMonitor.on_stable ---------------------------------------------

    def on_stable(self, conn: Connection, hospital_id: str, study_uid: str, generation: int) -> None:
        apps = self.subscribers.of(conn, hospital_id)
        if not apps:
            return
        d, st = s.dicom_studies, s.studies
        row = conn.execute(
            select(st.c.pk, st.c.study_id, st.c.deleted)
            .select_from(d.join(st, st.c.pk == d.c.ris_study_pk))
            .where(d.c.hospital_id == hospital_id, d.c.study_uid == study_uid)
        ).first()
        if row is None or row.deleted:
            return  # images without study information: the study's arrival reports them
        report_id = _latest_report(conn, hospital_id, row.study_id)
        status = cb.status_of(has_report=report_id is not None, has_images=True)
        self._enqueue(conn, apps, hospital_id=hospital_id, study_id=row.study_id, study_pk=row.pk, status=status,
                      report_id=report_id, cause=f"images stable (generation {generation})")

    def _enqueue(self, conn: Connection, apps: list[str], *, hospital_id: str, study_id: str, study_pk: int,
                 status: int, report_id: int | None, cause: str, critical: bool = False) -> None:
        now = self.clock()
        extra = {"critical": True} if critical else {}
        for app_id in apps:
            self.queue.enqueue(conn, kind=KIND, partition=app_id, order_key=order_key(app_id, hospital_id, study_id),
                               now=now, payload={"appId": app_id, "hospitalId": hospital_id, "studyId": study_id,
                                                 "studyPk": study_pk, "status": status,
                                                 "reportId": str(report_id) if report_id is not None else "",
                                                 "cause": cause, **extra})


def _latest_report(conn: Connection, hospital_id: str, study_id: str) -> int | None:
    r = s.reports
    return conn.execute(select(r.c.pk).where(r.c.hospital_id == hospital_id, r.c.study_id == study_id)
                        .order_by(r.c.updated_at.desc(), r.c.pk.desc()).limit(1)).scalar()


def _images_stable(conn: Connection, study_pk: int) -> bool:
    d = s.dicom_studies
    return conn.execute(select(d.c.pk).where(d.c.ris_study_pk == study_pk, d.c.stable.is_(True)).limit(1)).first() \
        is not None
