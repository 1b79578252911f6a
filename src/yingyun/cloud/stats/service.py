"""Operations statistics (运营统计): what arrived per local day and hospital, and the gauges of now.

Everything is counted on the day it arrived at this platform (the index's own
`created_at` / `received_at` / `first_instance_at`, in the configured zone),
so a day that has ended no longer changes: the first request that reads a
closed day sums it once into `stats_daily`, and later ones read those rows
(30 days of 20 hospitals are a few thousand rows, whatever the instance
count), once per process: a closed day is kept in memory after.
The current day, and a day that ended less than `grace_s` ago (a transaction
that took its time stamp before midnight may commit after it), are open: the
measures that add up over time (images, instances, bytes, reports) are summed
once per process up to `grace_s` ago and only the tail since is read again;
registrations and visits (distinct patients, which do not add up) are counted
for the whole day on each request, by range scans of the arrival-time indexes.

A day's figures per hospital, each also per modality:

- `studies`: studies registered by the RIS (or HL7), deleted ones included —
  they were registered that day;
- `studiesWithImages`: studies whose first instance arrived that day;
- `instances` and `bytes`: instances stored that day;
- `reports`: reports received that day;
- `patientVisits`: distinct patients (the hospital's patient ID) among the
  studies registered that day — what per-visit contracts bill.

The modality of a study or report is the RIS's; that of an instance its
series'. Modality `*` is the hospital's day as a whole (a patient seen for a
CT and an MR is one visit).
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, ColumnElement, and_, func, literal, select, tuple_

from ...archive.reconcile import discrepancies
from ...contract.sync import OutboxReport
from ...core.errors import Invalid
from ...core.times import Zone
from ...storage import schema as s
from ...storage.db import Database
from ...storage.upsert import insert_ignore

__all__ = ["ALL", "MEASURES", "MAX_DAYS", "Figures", "StatsService", "day_start"]

ALL = "*"  # the modality of a hospital's whole day
UNKNOWN = "unknown"  # no modality was given
MAX_DAYS = 366
CLOSED_KEPT = 2 * MAX_DAYS  # closed days kept in memory (a few hundred small rows each)
CALLBACK_KIND = "callback"  # cloud/callbacks/events.KIND: the partners' status callbacks in the job queue
PENDING, PARKED = "pending", "parked"
LOCAL = "local"  # the gauges' name for this process's own outbox (serve mode)
# Wire name -> stats_daily column.
MEASURES = {"studies": "studies", "studiesWithImages": "studies_with_images", "instances": "instances",
            "bytes": "bytes", "reports": "reports", "patientVisits": "visits"}


def day_start(d: date, zone: Zone) -> float:
    """Unix seconds of the local midnight that starts `d` in `zone`."""
    return datetime(d.year, d.month, d.day, tzinfo=zone.tz).timestamp()


# One hospital's day for one modality (or all): the six measures in MEASURES' order.
Figures = list[int]
STUDIES, WITH_IMAGES, INSTANCES, BYTES, REPORTS, VISITS = range(len(MEASURES))
NAMES = tuple(MEASURES)
COLUMNS = tuple(MEASURES.values())
# (hospital_id, modality) -> Figures
DayFigures = dict[tuple[str, str], Figures]


class _Day:
    def __init__(self) -> None:
        self.figures: DayFigures = {}

    def at(self, hospital_id: str, modality: str | None) -> Figures:
        key = (hospital_id, (modality or "").strip().upper()[:16] or UNKNOWN)
        fig = self.figures.get(key)
        if fig is None:
            fig = self.figures[key] = [0] * len(MEASURES)
        return fig


class StatsService:
    """The statistics and gauges of `GET /api/v1/stats`, for the hospitals a caller may see.

    `hospitals` is the set of hospital ids to report (None: every hospital, the
    operator's view). `data_dir` is where free disk is measured. `local_outbox`, in
    `serve` mode, reads this process's own outbox (the gateway side of the same database),
    shown to operators as the gateway "local"; a cloud learns each gateway's from its reports."""

    def __init__(self, db: Database, *, zone: Zone, data_dir: Path, clock: Callable[[], float] = time.time,
                 grace_s: float = 300.0, local_outbox: Callable[[], OutboxReport] | None = None) -> None:
        self.db = db
        self.local_outbox = local_outbox
        self.zone = zone
        self.data_dir = data_dir
        self.clock = clock
        self.grace_s = grace_s
        # The open day's additive measures summed so far: (day, up to when, figures of every hospital).
        self._lock = threading.Lock()
        self._partial: tuple[date | None, float, DayFigures] = (None, 0.0, {})
        self._closed: dict[date, DayFigures] = {}  # closed days never change: kept once read

    # -- per day ---------------------------------------------------------------

    def daily(self, *, first: date, last: date, hospitals: frozenset[str] | None) -> list[dict[str, Any]]:
        """Rows `{date, hospitalId, <measures>, byModality: {CT: {<measures>}}}` of the days
        first..last (inclusive) that have something, by date then hospital."""
        if last < first:
            raise Invalid("to is before from", field="to")
        if (last - first).days + 1 > MAX_DAYS:
            raise Invalid(f"at most {MAX_DAYS} days at once", field="to")
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        now = self.clock()
        closed = [d for d in days if self._bounds(d)[1] + self.grace_s <= now]
        # Closed days of every hospital: from this process's memory, else their rollup rows, else summed now.
        with self._lock:
            figures: dict[date, DayFigures] = {d: self._closed[d] for d in closed if d in self._closed}
        stored = self._stored([d for d in closed if d not in figures])
        for d in closed:
            if d not in figures:
                if d not in stored:
                    stored[d] = self.sum_day(d, None)
                    self._store(d, stored[d], now)
                figures[d] = stored[d]
        if stored:
            with self._lock:
                if len(self._closed) + len(stored) > CLOSED_KEPT:
                    self._closed.clear()
                self._closed.update(stored)
        for d in days:
            if d not in figures:
                figures[d] = self._open_day(d, hospitals, now)
        out: list[dict[str, Any]] = []
        for d in days:
            per_hospital: dict[str, dict[str, Any]] = {}
            day = d.isoformat()
            for (hospital_id, modality), fig in sorted(figures[d].items()):
                if hospitals is not None and hospital_id not in hospitals:
                    continue
                row = per_hospital.get(hospital_id)
                if row is None:
                    row = per_hospital[hospital_id] = {"date": day, "hospitalId": hospital_id,
                                                       **dict.fromkeys(NAMES, 0), "byModality": {}}
                if modality == ALL:
                    row.update(zip(NAMES, fig, strict=True))
                else:
                    row["byModality"][modality] = dict(zip(NAMES, fig, strict=True))
            out.extend(per_hospital[h] for h in sorted(per_hospital))
        return out

    def _bounds(self, d: date) -> tuple[float, float]:
        return day_start(d, self.zone), day_start(d + timedelta(days=1), self.zone)

    def _stored(self, days: list[date]) -> dict[date, DayFigures]:
        if not days:
            return {}
        names = [d.isoformat() for d in days]
        sd, st = s.stats_days, s.stats_daily
        out: dict[date, DayFigures] = {}
        with self.db.read() as conn:
            for (day,) in conn.execute(select(sd.c.day).where(sd.c.zone == self.zone.name, sd.c.day.in_(names))):
                out[date.fromisoformat(day)] = {}
            q = select(st.c.day, st.c.hospital_id, st.c.modality, *(st.c[c] for c in COLUMNS)).where(
                st.c.zone == self.zone.name, st.c.day.in_(names))
            by_name = {d.isoformat(): d for d in out}
            for day, hospital_id, modality, *fig in conn.execute(q):
                d = by_name.get(day)
                if d is not None:  # a day's rows and its stats_days row are written in one transaction
                    out[d][(hospital_id, modality)] = fig
        return out

    def _store(self, d: date, figures: DayFigures, now: float) -> None:
        with self.db.write() as conn:
            # Two requests may sum the same closed day at once: the first one's rows stay.
            if insert_ignore(conn, s.stats_days, {"zone": self.zone.name, "day": d.isoformat(),
                                                  "computed_at": now}).rowcount == 0:
                return
            rows = [{"zone": self.zone.name, "day": d.isoformat(), "hospital_id": h, "modality": m,
                     **dict(zip(COLUMNS, fig, strict=True))} for (h, m), fig in figures.items()]
            if rows:
                conn.execute(s.stats_daily.insert(), rows)

    def _open_day(self, d: date, hospitals: frozenset[str] | None, now: float) -> DayFigures:
        """A day still open (today): registrations and visits live (distinct patients do not add up), the
        additive measures from what this process summed up to `now - grace_s`, plus the tail since."""
        t0, t1 = self._bounds(d)
        settled = min(now - self.grace_s, t1)
        with self._lock:
            day_of, upto, summed = self._partial
        if day_of != d:
            upto, summed = t0, {}
        day = _Day()
        with self.db.read() as conn:
            if settled > upto:
                more = _Day()
                _add_arrivals(more, conn, upto, settled, None)
                summed = _merged(summed, more.figures)
                upto = settled
                with self._lock:
                    self._partial = (d, upto, summed)
            _add_registrations(day, conn, t0, t1, hospitals)
            _add_arrivals(day, conn, upto, t1, hospitals)
        for (hospital_id, modality), fig in summed.items():
            if hospitals is None or hospital_id in hospitals:
                mine = day.at(hospital_id, modality)
                for i in (WITH_IMAGES, INSTANCES, BYTES, REPORTS):
                    mine[i] += fig[i]
        return day.figures

    def sum_day(self, d: date, hospitals: frozenset[str] | None) -> DayFigures:
        """Everything of day `d`, summed from the index."""
        t0, t1 = self._bounds(d)
        day = _Day()
        with self.db.read() as conn:
            _add_registrations(day, conn, t0, t1, hospitals)
            _add_arrivals(day, conn, t0, t1, hospitals)
        return day.figures

    # -- now -------------------------------------------------------------------

    def gauges(self, *, hospitals: frozenset[str] | None) -> dict[str, Any]:
        """The current state: each gateway's last delivery and backlog, each partner's callback
        queue, open reconciliation discrepancies per hospital, and free disk."""
        now = self.clock()
        with self.db.read() as conn:
            gateways = _gateways(conn, hospitals, self.zone, now)
        if self.local_outbox is not None and hospitals is None:  # one outbox for every hospital: operators'
            report = self.local_outbox()
            last = report["lastSuccessAt"]
            gateways.insert(0, {"gatewayId": LOCAL, "hospitalId": None, "lastSuccessAt": self.zone.show_optional(last),
                                "secondsSinceLastSuccess": None if last is None else round(now - last, 3),
                                "backlog": _backlog(report, reported_at=now, previous=None, zone=self.zone,
                                                    now=now)})
        with self.db.read() as conn:
            callbacks = _callbacks(conn, hospitals)
            open_: dict[str, int] = defaultdict(int)
            for item in discrepancies(conn, zone=self.zone):
                if hospitals is None or item["hospitalId"] in hospitals:
                    open_[item["hospitalId"]] += 1
        usage = shutil.disk_usage(self.data_dir)
        return {
            "gateways": gateways,
            "callbacks": callbacks,
            "discrepancies": [{"hospitalId": h, "open": n} for h, n in sorted(open_.items())],
            "disk": {"freeBytes": usage.free, "totalBytes": usage.total},
        }


def _add_registrations(day: _Day, conn: Connection, t0: float, t1: float, hospitals: frozenset[str] | None) -> None:
    """Studies registered in [t0, t1) and the distinct patients among them."""
    for hospital_id, modality, n, visits in _studies(conn, t0, t1, hospitals):
        fig = day.at(hospital_id, modality)
        fig[STUDIES] += n
        fig[VISITS] += visits
    for hospital_id, n, visits in _studies_total(conn, t0, t1, hospitals):
        fig = day.at(hospital_id, ALL)
        fig[STUDIES], fig[VISITS] = n, visits


def _add_arrivals(day: _Day, conn: Connection, t0: float, t1: float, hospitals: frozenset[str] | None) -> None:
    """What arrived in [t0, t1) and adds up across intervals: studies' first images, instances, bytes, reports."""
    for hospital_id, modalities in _with_images(conn, t0, t1, hospitals):
        day.at(hospital_id, ALL)[WITH_IMAGES] += 1
        for modality in set((modalities or "").split("\\")):
            day.at(hospital_id, modality)[WITH_IMAGES] += 1
    for hospital_id, modality, n, size in _instances(conn, t0, t1, hospitals):
        for fig in (day.at(hospital_id, modality), day.at(hospital_id, ALL)):
            fig[INSTANCES] += n
            fig[BYTES] += int(size or 0)
    for hospital_id, modality, n in _reports(conn, t0, t1, hospitals):
        day.at(hospital_id, modality)[REPORTS] += n
        day.at(hospital_id, ALL)[REPORTS] += n


def _merged(a: DayFigures, b: DayFigures) -> DayFigures:
    out = {k: list(v) for k, v in a.items()}
    for k, v in b.items():
        mine = out.setdefault(k, [0] * len(MEASURES))
        for i, n in enumerate(v):
            mine[i] += n
    return out


def _in(column: ColumnElement[Any], hospitals: frozenset[str] | None) -> ColumnElement[bool]:
    return literal(True) if hospitals is None else column.in_(sorted(hospitals))


def _studies(conn: Connection, t0: float, t1: float, hospitals: frozenset[str] | None) -> Iterator[Any]:
    st = s.studies
    patient = func.count(st.c.patient_id.distinct())
    yield from conn.execute(select(st.c.hospital_id, st.c.modality, func.count(), patient)
                            .where(st.c.created_at >= t0, st.c.created_at < t1, _in(st.c.hospital_id, hospitals))
                            .group_by(st.c.hospital_id, st.c.modality))


def _studies_total(conn: Connection, t0: float, t1: float, hospitals: frozenset[str] | None) -> Iterator[Any]:
    st = s.studies
    yield from conn.execute(select(st.c.hospital_id, func.count(), func.count(st.c.patient_id.distinct()))
                            .where(st.c.created_at >= t0, st.c.created_at < t1, _in(st.c.hospital_id, hospitals))
                            .group_by(st.c.hospital_id))


def _with_images(conn: Connection, t0: float, t1: float, hospitals: frozenset[str] | None) -> Iterator[Any]:
    ds = s.dicom_studies
    yield from conn.execute(select(ds.c.hospital_id, ds.c.modalities)
                            .where(ds.c.first_instance_at >= t0, ds.c.first_instance_at < t1,
                                   _in(ds.c.hospital_id, hospitals)))


def _instances(conn: Connection, t0: float, t1: float, hospitals: frozenset[str] | None) -> Iterator[Any]:
    i, se = s.instances, s.series
    yield from conn.execute(
        select(i.c.hospital_id, se.c.modality, func.count(), func.sum(i.c.size))
        .select_from(i.outerjoin(se, and_(se.c.hospital_id == i.c.hospital_id, se.c.series_uid == i.c.series_uid)))
        .where(i.c.received_at >= t0, i.c.received_at < t1, _in(i.c.hospital_id, hospitals))
        .group_by(i.c.hospital_id, se.c.modality))


def _reports(conn: Connection, t0: float, t1: float, hospitals: frozenset[str] | None) -> Iterator[Any]:
    r, st = s.reports, s.studies
    yield from conn.execute(
        select(r.c.hospital_id, st.c.modality, func.count())
        .select_from(r.outerjoin(st, and_(st.c.hospital_id == r.c.hospital_id, st.c.study_id == r.c.study_id)))
        .where(r.c.created_at >= t0, r.c.created_at < t1, _in(r.c.hospital_id, hospitals))
        .group_by(r.c.hospital_id, st.c.modality))


def _gateways(conn: Connection, hospitals: frozenset[str] | None, zone: Zone, now: float) -> list[dict[str, Any]]:
    """Each registered gateway, when the cloud last applied something it sent, and its backlog
    as of its last report (PATH_OUTBOX: the outbox itself is in the gateway's database)."""
    g, a, go = s.gateways, s.sync_applied, s.gateway_outbox
    last = (select(func.max(a.c.applied_at)).where(a.c.gateway_id == g.c.id).scalar_subquery())
    out = []
    for r in conn.execute(select(g.c.id, g.c.hospital_id, last.label("last"), go)
                          .select_from(g.outerjoin(go, go.c.gateway_id == g.c.id))
                          .where(_in(g.c.hospital_id, hospitals)).order_by(g.c.id)):
        backlog = None
        if r.reported_at is not None:
            report: OutboxReport = {"pendingRecords": r.pending_records, "pendingInstances": r.pending_instances,
                                    "pendingBytes": r.pending_bytes, "parked": r.parked,
                                    "oldestPendingSeconds": r.oldest_pending_s, "lastSuccessAt": r.last_success_at}
            backlog = _backlog(report, reported_at=r.reported_at, previous=r.previous_pending, zone=zone, now=now)
        out.append({"gatewayId": r.id, "hospitalId": r.hospital_id, "lastSuccessAt": zone.show_optional(r.last),
                    "secondsSinceLastSuccess": None if r.last is None else round(now - r.last, 3),
                    "backlog": backlog})
    return out


def _backlog(report: OutboxReport, *, reported_at: float, previous: int | None, zone: Zone,
             now: float) -> dict[str, Any]:
    """A gateway's backlog as the gauges show it; `growing` when it holds more than at the report before."""
    pending = report["pendingRecords"] + report["pendingInstances"]
    return {"pending": pending, "pendingRecords": report["pendingRecords"],
            "pendingInstances": report["pendingInstances"], "pendingBytes": report["pendingBytes"],
            "parked": report["parked"], "oldestPendingSeconds": report["oldestPendingSeconds"],
            "previousPending": previous, "growing": previous is not None and pending > previous,
            "gatewayLastSuccessAt": zone.show_optional(report["lastSuccessAt"]),
            "reportedAt": zone.show(reported_at), "secondsSinceReport": round(max(0.0, now - reported_at), 3)}


def _callbacks(conn: Connection, hospitals: frozenset[str] | None) -> list[dict[str, Any]]:
    """Pending and parked status callbacks per partner (the queue's partition is the appId).
    A scoped caller sees the partners granted one of its hospitals or their unions."""
    j = s.jobs
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {PENDING: 0, PARKED: 0})
    for partner, state, n in conn.execute(
            select(j.c.partition, j.c.state, func.count())
            .where(j.c.kind == CALLBACK_KIND, j.c.state.in_([PENDING, PARKED]))
            .group_by(j.c.partition, j.c.state)):
        counts[partner or ""][state] = n
    if hospitals is not None:
        visible = _partners_of(conn, hospitals)
        counts = defaultdict(lambda: {PENDING: 0, PARKED: 0}, {k: v for k, v in counts.items() if k in visible})
    return [{"partnerId": p, "pending": c[PENDING], "parked": c[PARKED]} for p, c in sorted(counts.items())]


def _partners_of(conn: Connection, hospitals: Iterable[str]) -> set[str]:
    h, pg = s.hospitals, s.partner_grants
    ids = sorted(hospitals)
    unions = [u for (u,) in conn.execute(select(h.c.union_id).where(h.c.id.in_(ids), h.c.union_id.is_not(None)))]
    grants = [("hospital", i) for i in ids] + [("union", u) for u in unions]
    if not grants:
        return set()
    return {a for (a,) in conn.execute(select(pg.c.app_id).where(tuple_(pg.c.kind, pg.c.target_id).in_(grants)))}
