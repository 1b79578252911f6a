"""How long studies are kept, and the purge that ends them.

Two things end a study for good, and nothing else does:

* a soft-deleted study (the RIS's /ris/study/delete) is purged once it has
  been deleted for `--purge-deleted-days` (30);
* a hospital's retention rule (`admin retention set`) makes a study due once
  it is older than the years its patient class is kept: inpatient when the
  RIS record has an `inpatientNum`, outpatient with a `clinicNum`, other
  otherwise (a `healthScreenNum`, or nothing); a class with no years is kept.
  Due studies are listed (`admin retention due`) and purged only with
  `--apply`.

A study under a legal hold (`admin hold add --study-uid`) is never purged,
whichever the reason. A purge removes the study's blobs and every index row
of it (RIS study and versions, reports, links and their sessions, DICOM
study, series, instances, superseded copies, blob digests), clears the render
cache, and leaves a tombstone (`purge_tombstones`: hospital, studyId, study
UID, when deleted, when purged, by what rule) for the audit; the page-view
audit (`access_audit`) is kept. The index rows go in one transaction and the
blobs after it, so a crash between leaves only files nothing refers to.

Each side of a split deployment runs the same purge over what it holds: a
delete reaches the cloud as a record (gateway/outbox.py), so both sides
count the same days from their own `deleted_at`. A gateway's retention purge
and its legal holds reach the cloud the same way (`RetentionEvents`): the
cloud purges the study with its own tombstone, unless it holds it, and keeps
the gateway's hold as its own (`origin`: that gateway alone lifts it).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, and_, delete, func, insert, or_, select

from ..contract import gateway_api as g
from ..core.errors import Invalid, NotFound
from ..core.worker import PeriodicWorker
from ..storage import blobjournal
from ..storage.blobs import BlobStore
from ..storage.db import Database
from ..storage.schema import (
    blob_digests,
    dicom_studies,
    instances,
    legal_holds,
    links,
    purge_tombstones,
    reports,
    retention_rules,
    series,
    studies,
    study_versions,
    superseded_instances,
)
from ..storage.upsert import upsert

log = logging.getLogger("yingyun.retention")

INPATIENT, OUTPATIENT, OTHER = "inpatient", "outpatient", "other"
DELETED, RETENTION = "deleted", "retention"
DAY = 86400.0


# -- rules and holds ---------------------------------------------------------------


def set_rule(db: Database, *, hospital_id: str, outpatient_years: int, inpatient_years: int,
             other_years: int | None) -> None:
    for name, years in (("--outpatient-years", outpatient_years), ("--inpatient-years", inpatient_years),
                        ("--other-years", other_years)):
        if years is not None and years < 1:
            raise Invalid(f"{name} is a number of years, at least 1", field=name)
    with db.write() as conn:
        upsert(conn, retention_rules, {"hospital_id": hospital_id},
               {"outpatient_years": outpatient_years, "inpatient_years": inpatient_years,
                "other_years": other_years})


def rules(conn: Connection) -> list[dict[str, Any]]:
    r = retention_rules.c
    return [{"hospitalId": row.hospital_id, "outpatientYears": row.outpatient_years,
             "inpatientYears": row.inpatient_years, "otherYears": row.other_years}
            for row in conn.execute(select(retention_rules).order_by(r.hospital_id))]


class RetentionEvents(Protocol):
    """What a gateway's purges and holds trigger in their own transaction: their forwarding to the cloud
    (gateway/outbox.py), so the cloud purges and holds alike."""

    def study_purged(self, conn: Connection, *, hospital_id: str, tombstone_pk: int) -> None: ...

    def hold_changed(self, conn: Connection, *, study_uid: str, reason: str, held: bool) -> None: ...


def add_hold(db: Database, *, study_uid: str, reason: str, events: RetentionEvents | None = None) -> bool:
    """Hold the study (False: it was held already, the first reason stays)."""
    if not study_uid.strip() or not reason.strip():
        raise Invalid("a hold needs --study-uid and --reason", field="reason" if study_uid.strip() else "study_uid")
    with db.write() as conn:
        added = hold(conn, study_uid=study_uid, reason=reason)
        if added and events is not None:
            events.hold_changed(conn, study_uid=study_uid, reason=reason, held=True)
        return added


def remove_hold(db: Database, *, study_uid: str, events: RetentionEvents | None = None) -> None:
    with db.write() as conn:
        reason = conn.execute(select(legal_holds.c.reason).where(legal_holds.c.study_uid == study_uid)).scalar()
        if reason is None or not lift(conn, study_uid=study_uid):
            raise NotFound(f"no legal hold on study {study_uid}", subject="hold")
        if events is not None:
            events.hold_changed(conn, study_uid=study_uid, reason=reason, held=False)


def hold(conn: Connection, *, study_uid: str, reason: str, origin: str | None = None) -> bool:
    """Hold the study in `conn` (False: held already). `origin`: the gateway it came from (None: made here)."""
    if conn.execute(select(legal_holds.c.pk).where(legal_holds.c.study_uid == study_uid)).first() is not None:
        return False
    conn.execute(insert(legal_holds).values(study_uid=study_uid, reason=reason, created_at=time.time(),
                                            origin=origin))
    return True


def lift(conn: Connection, *, study_uid: str, origin: str | None = None) -> bool:
    """Lift the hold in `conn`; with `origin`, only a hold that gateway made (one made here stays)."""
    h = legal_holds.c
    where = h.study_uid == study_uid
    if origin is not None:
        where = and_(where, h.origin == origin)
    return bool(conn.execute(delete(legal_holds).where(where)).rowcount)


def holds(conn: Connection) -> list[dict[str, Any]]:
    return [{"studyUid": r.study_uid, "reason": r.reason, "since": r.created_at, "origin": r.origin}
            for r in conn.execute(select(legal_holds).order_by(legal_holds.c.created_at))]


# -- what is due -------------------------------------------------------------------


@dataclass
class Due:
    hospital_id: str
    study_id: str | None  # None: images with no RIS record (class other)
    study_uid: str | None
    patient_class: str
    years: int
    since: float  # what the years count from: the study date, else when the RIS sent it
    due_at: float
    held: bool

    def as_json(self) -> dict[str, Any]:
        return {"hospitalId": self.hospital_id, "studyId": self.study_id, "studyUid": self.study_uid,
                "patientClass": self.patient_class, "years": self.years, "dueAt": self.due_at, "held": self.held}


def patient_class(details: str) -> str:
    values = json.loads(details or "{}")
    if values.get(g.INPATIENT_NUM):
        return INPATIENT
    if values.get(g.CLINIC_NUM):
        return OUTPATIENT
    return OTHER


def due(conn: Connection, *, now: float, hospital_id: str | None = None) -> list[Due]:
    """The studies whose hospital's rule has run out (held ones too, marked so: they are not purged)."""
    st = studies.c
    by_hospital = {r["hospitalId"]: r for r in rules(conn)}
    if hospital_id is not None:
        by_hospital = {k: v for k, v in by_hospital.items() if k == hospital_id}
    if not by_hospital:
        return []
    held = set(conn.execute(select(legal_holds.c.study_uid)).scalars())
    out = []
    rows = conn.execute(select(st.hospital_id, st.study_id, st.study_uid, st.study_date, st.details, st.created_at)
                        .where(st.hospital_id.in_(list(by_hospital))).order_by(st.hospital_id, st.pk))
    for row in rows:
        rule = by_hospital[row.hospital_id]
        cls = patient_class(row.details)
        years = {INPATIENT: rule["inpatientYears"], OUTPATIENT: rule["outpatientYears"]}.get(cls, rule["otherYears"])
        if years is None:
            continue
        since = _study_time(row.study_date, row.created_at)
        until = _plus_years(since, years)
        if until <= now:
            out.append(Due(row.hospital_id, row.study_id, row.study_uid, cls, years, since, until,
                           row.study_uid in held))
    # Images that came with no RIS record (C-STORE or import alone) have no patient class: the other class's years.
    ds = dicom_studies.c
    with_record = select(st.pk).where(st.hospital_id == ds.hospital_id, st.study_uid == ds.study_uid).exists()
    images_only = conn.execute(select(ds.hospital_id, ds.study_uid, ds.study_date, ds.first_instance_at).where(
        ds.hospital_id.in_(list(by_hospital)), ds.ris_study_pk.is_(None), ~with_record).order_by(ds.pk))
    for img in images_only:
        years = by_hospital[img.hospital_id]["otherYears"]
        if years is None:
            continue
        date = img.study_date or ""
        since = _study_time(f"{date[:4]}-{date[4:6]}-{date[6:8]}" if len(date) == 8 else None, img.first_instance_at)
        until = _plus_years(since, years)
        if until <= now:
            out.append(Due(img.hospital_id, None, img.study_uid, OTHER, years, since, until, img.study_uid in held))
    return out


def _study_time(study_date: str | None, created_at: float) -> float:
    try:
        day = dt.date.fromisoformat((study_date or "")[:10])
    except ValueError:
        return created_at
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


def _plus_years(at: float, years: int) -> float:
    t = dt.datetime.fromtimestamp(at, dt.UTC)
    try:
        return t.replace(year=t.year + years).timestamp()
    except ValueError:  # 29 February into a year without one
        return t.replace(year=t.year + years, day=28).timestamp()


# -- the purge -------------------------------------------------------------------


class Unforwarded(Protocol):
    def __call__(self, conn: Connection, *, hospital_id: str, study_id: str | None, blob_keys: list[str]) -> bool: ...


StudyKey = str | tuple[None, str]  # a RIS studyId, or (None, Study Instance UID) for images alone


@dataclass
class Purged:
    hospital_id: str
    study_id: str | None
    study_uid: str | None
    instances: int
    bytes: int
    blob_keys: list[str]  # removed once the rows' transaction is committed


class Held(Exception):
    """The study is under a legal hold: nothing purges it."""


class Purger:
    """Purges studies: their rows in one transaction, their blobs after, the render cache cleared."""

    def __init__(self, db: Database, blobs: BlobStore, *, clear_render_cache: Callable[[], object] | None = None,
                 unforwarded: Unforwarded | None = None, events: RetentionEvents | None = None,
                 now: Callable[[], float] = time.time) -> None:
        """`unforwarded`: on a gateway, whether the cloud has yet to get something of a study (gateway/outbox.py);
        such a study waits for the next purge. `events`: on a gateway, what forwards a retention purge to the
        cloud (a deleted study's purge is not forwarded: each side counts its own days)."""
        self.db, self.blobs, self.now = db, blobs, now
        self.clear_render_cache = clear_render_cache
        self.unforwarded = unforwarded
        self.events = events

    def purge_deleted(self, *, days: float) -> list[Purged]:
        """Every study soft-deleted more than `days` ago and not held."""
        st = studies.c
        cutoff = self.now() - days * DAY
        with self.db.read() as conn:
            rows = conn.execute(select(st.hospital_id, st.study_id).where(st.deleted.is_(True),
                                                                          st.deleted_at < cutoff)).all()
        return self._purge_all(((r.hospital_id, r.study_id) for r in rows), DELETED, f"purge-deleted-days={days:g}")

    def purge_due(self, items: Iterable[Due]) -> list[Purged]:
        done = []
        for item in items:
            if not item.held:
                key: StudyKey = item.study_id if item.study_id is not None else (None, item.study_uid or "")
                done += self._purge_all([(item.hospital_id, key)], RETENTION,
                                        f"{item.patient_class}-years={item.years}")
        return done

    def _purge_all(self, keys: Iterable[tuple[str, StudyKey]], reason: str, rule: str) -> list[Purged]:
        done = []
        for hospital_id, study_id in keys:
            with self.db.write() as conn:
                try:
                    purged = self.purge_rows(conn, hospital_id, study_id, reason, rule)
                except Held:
                    purged = None
            if purged is not None:
                log.info("purged a study of hospital %s (%s, %s): %d instances", hospital_id, reason, rule,
                         purged.instances)
                self.after_commit([purged])
                done.append(purged)
        if done and self.clear_render_cache is not None:
            self.clear_render_cache()
        return done

    def after_commit(self, done: list[Purged], *, clear: bool = False) -> None:
        """The purged studies' blobs, once their rows are gone (a crash before leaves only files nothing refers
        to); with `clear`, the render cache too."""
        for purged in done:
            for blob_key in purged.blob_keys:
                self.blobs.delete(blob_key)
        if clear and done and self.clear_render_cache is not None:
            self.clear_render_cache()

    def purge_rows(self, conn: Connection, hospital_id: str, key: StudyKey, reason: str, rule: str,
                   ) -> Purged | None:
        """Every index row of the study in `conn`, and its tombstone; its blobs are for `forget_blobs` after the
        commit. `key`: the RIS studyId, or (None, Study Instance UID) for images with no RIS record. None: no
        such study, or one the cloud has yet to get; Held: under a legal hold."""
        st, ds, i = studies.c, dicom_studies.c, instances.c
        if isinstance(key, str):
            study = conn.execute(select(st.pk, st.study_id, st.study_uid, st.deleted_at).where(
                st.hospital_id == hospital_id, st.study_id == key)).first()
            if study is None:
                return None
            study_id, study_pk, study_uid, deleted_at = key, study.pk, study.study_uid, study.deleted_at
        else:
            study_id, study_pk, study_uid, deleted_at = None, None, key[1], None
        uids = set(conn.execute(select(ds.study_uid).where(ds.hospital_id == hospital_id, or_(
            ds.ris_study_pk == study_pk, ds.study_uid == study_uid))).scalars())
        if study_uid:
            uids.add(study_uid)
        if study_pk is None and not uids:
            return None
        if uids and conn.execute(select(legal_holds.c.pk).where(legal_holds.c.study_uid.in_(uids))).first():
            raise Held(study_uid or "")
        in_study = and_(i.hospital_id == hospital_id, i.study_uid.in_(uids))
        rows = conn.execute(select(i.sop_uid, i.blob_key, i.size).where(in_study)).all()
        sops = [r.sop_uid for r in rows]
        sup = superseded_instances.c
        old = conn.execute(select(sup.blob_key).where(sup.hospital_id == hospital_id, sup.sop_uid.in_(sops))
                           ).scalars().all() if sops else []
        keys = [r.blob_key for r in rows] + list(old)
        size = sum(r.size for r in rows)
        if self.unforwarded is not None and self.unforwarded(conn, hospital_id=hospital_id, study_id=study_id,
                                                             blob_keys=keys):
            log.info("a study of hospital %s is not purged yet: the cloud has yet to get part of it", hospital_id)
            return None
        if sops:
            conn.execute(delete(superseded_instances).where(sup.hospital_id == hospital_id, sup.sop_uid.in_(sops)))
        if keys:
            conn.execute(delete(blob_digests).where(blob_digests.c.blob_key.in_(keys)))
            blobjournal.forget(conn, keys)
        conn.execute(delete(instances).where(in_study))
        conn.execute(delete(series).where(series.c.hospital_id == hospital_id, series.c.study_uid.in_(uids)))
        conn.execute(delete(dicom_studies).where(ds.hospital_id == hospital_id, or_(
            ds.study_uid.in_(uids), ds.ris_study_pk == study_pk)))
        if study_id is not None:
            # Versions, sessions, guards and codes go with their rows (ON DELETE CASCADE); the page-view
            # audit has no key to them and stays.
            conn.execute(delete(reports).where(reports.c.hospital_id == hospital_id,
                                               reports.c.study_id == study_id))
            conn.execute(delete(links).where(links.c.hospital_id == hospital_id, links.c.study_id == study_id))
            conn.execute(delete(study_versions).where(study_versions.c.study_pk == study_pk))
            conn.execute(delete(studies).where(st.pk == study_pk))
        tombstone = conn.execute(insert(purge_tombstones).values(
            hospital_id=hospital_id, study_id=study_id, study_uid=study_uid or next(iter(uids), None),
            deleted_at=deleted_at, purged_at=self.now(), reason=reason, rule=rule, instances=len(rows),
            bytes=size)).inserted_primary_key
        if self.events is not None and reason == RETENTION and tombstone is not None:
            self.events.study_purged(conn, hospital_id=hospital_id, tombstone_pk=int(tombstone[0]))
        return Purged(hospital_id, study_id, study_uid, len(rows), size, keys)


def tombstones(conn: Connection, *, hospital_id: str | None = None) -> list[dict[str, Any]]:
    t = purge_tombstones.c
    query = select(purge_tombstones).order_by(t.pk)
    if hospital_id is not None:
        query = query.where(t.hospital_id == hospital_id)
    return [{"hospitalId": r.hospital_id, "studyId": r.study_id, "studyUid": r.study_uid, "deletedAt": r.deleted_at,
             "purgedAt": r.purged_at, "reason": r.reason, "rule": r.rule, "instances": r.instances,
             "bytes": r.bytes} for r in conn.execute(query)]


def count_held(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(legal_holds)).scalar_one())


class DeletedPurgeWorker:
    """Purges soft-deleted studies past their days, once an hour (first an hour after start)."""

    def __init__(self, purger: Purger, *, days: float, interval_s: float = 3600.0) -> None:
        self.purger, self.days = purger, days
        self._worker = PeriodicWorker("purge-deleted", self._step, interval_s=interval_s, log=log, first_wait=True)

    def start(self) -> DeletedPurgeWorker:
        self._worker.start()
        return self

    def stop(self) -> None:
        self._worker.stop()

    def _step(self) -> None:
        self.purger.purge_deleted(days=self.days)
