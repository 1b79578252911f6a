"""Reconciliation (contract §2.6–2.7): what the hospital says it sent vs what arrived.

Discrepancies are evaluated against current holdings every time they are
asked for, so one clears by itself when the missing data arrives; the logs
themselves are kept (reconcile_logs / reconcile_entries) as the record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Row, func, select

from ..core.times import UTC, Zone
from ..storage import schema as s


def _holdings(conn: Connection, hospital_id: str, study_id: str | None,
              study_uid: str | None) -> tuple[bool, dict[str, int], Row[Any] | None, Sequence[Row[Any]]]:
    """(held, received counts, the RIS study's row, its DICOM studies' rows) for a study named by the hospital."""
    st, d, r = s.studies, s.dicom_studies, s.reports
    ris = None
    if study_id:
        ris = conn.execute(select(st).where(st.c.hospital_id == hospital_id, st.c.study_id == study_id)).first()
    dicoms: Sequence[Row[Any]] = []
    if ris is not None:
        dicoms = conn.execute(select(d).where(d.c.ris_study_pk == ris.pk)).all()
    if not dicoms and study_uid:
        dicoms = conn.execute(select(d).where(d.c.hospital_id == hospital_id, d.c.study_uid == study_uid)).all()
    n_reports = 0
    if study_id:
        n_reports = conn.execute(select(func.count()).where(r.c.hospital_id == hospital_id,
                                                            r.c.study_id == study_id)).scalar_one()
    received = {
        "series": sum(x.n_series for x in dicoms),
        "images": sum(x.n_images for x in dicoms),
        "reports": n_reports + sum(x.n_sr for x in dicoms),
        "pdf": sum(x.n_pdf for x in dicoms),
    }
    held = (ris is not None and not ris.deleted) or (ris is None and bool(dicoms))
    return held, received, ris, dicoms


@dataclass(frozen=True)
class Shortfall:
    """A listed study with fewer images here than the hospital's newest log about it says (`missing`/`mismatch`):
    what reconciliation that heals (gateway/heal.py) retrieves for. `entry_pk` is that log entry's."""

    hospital_id: str
    study_id: str
    study_uid: str
    access_number: str
    expected_images: int
    received_images: int
    entry_pk: int


def shortfalls(conn: Connection, *, hospital_id: str | None = None, study_id: str | None = None) -> list[Shortfall]:
    """Every open `missing` or `mismatch` discrepancy that expects more images than were received."""
    out = []
    for row, uid, found in _listed(conn, since=None, hospital_id=hospital_id, study_id=study_id, zone=UTC):
        if found["expected"]["images"] > found["received"]["images"]:
            out.append(Shortfall(found["hospitalId"], found["studyId"], uid, found["accessNumber"],
                                 found["expected"]["images"], found["received"]["images"], row.pk))
    return out


def discrepancies(conn: Connection, *, since: float | None = None, hospital_id: str | None = None,
                  zone: Zone = UTC) -> list[dict[str, Any]]:
    """Open discrepancies of the logs received since `since`; `loggedAt` is when the log came, shown in `zone`.

    A listed study that the gateway tried to heal (gateway/heal.py) carries `heal`: what its PACS was asked,
    what was retrieved, and, once `final`, the SOP Instance UIDs the PACS does not have."""
    heals = {(h["hospitalId"], h["studyId"]): h for h in heal_records(conn, hospital_id=hospital_id, zone=zone)}
    out: list[dict[str, Any]] = []
    for _, _, found in _listed(conn, since=since, hospital_id=hospital_id, study_id=None, zone=zone):
        heal = heals.get((found["hospitalId"], found["studyId"]))
        if heal is not None and heal["state"] != "healed":
            found["heal"] = heal
        out.append(found)
    out.extend(_unlisted(conn, since=since, hospital_id=hospital_id, zone=zone))
    return out


def heal_records(conn: Connection, *, hospital_id: str | None = None, study_id: str | None = None,
                 zone: Zone = UTC) -> list[dict[str, Any]]:
    """What each study's last heal asked of its PACS and found (storage/schema/heal.py), as shown to operators."""
    h = s.heal_studies
    q = select(h)
    if hospital_id:
        q = q.where(h.c.hospital_id == hospital_id)
    if study_id is not None:
        q = q.where(h.c.study_id == study_id)
    return [heal_record(row, zone) for row in conn.execute(q.order_by(h.c.pk))]


def heal_record(row: Row[Any], zone: Zone = UTC) -> dict[str, Any]:
    missing = orjson.loads(row.missing_uids or "[]")
    return {"hospitalId": row.hospital_id, "studyId": row.study_id, "studyUid": row.study_uid or "",
            "state": row.state, "final": row.state == "final", "pacs": row.pacs_ae or "",
            "retrieve": row.retrieve or "",
            "expected": row.expected, "listedByPacs": row.listed, "asked": row.asked, "retrieved": row.retrieved,
            "retrievedTotal": row.retrieved_total, "missingSopInstanceUids": missing, "unlisted": row.unlisted,
            "attempts": row.attempts, "detail": row.detail, "attemptedAt": zone.show(row.attempted_at)}


def _listed(conn: Connection, *, since: float | None, hospital_id: str | None, study_id: str | None,
            zone: Zone) -> list[tuple[Row[Any], str, dict[str, Any]]]:
    """The open discrepancies of listed studies, each with the newest log entry about it and the study's
    Instance UID as known here (the log's, else the registration's, else the images')."""
    e, lg = s.reconcile_entries, s.reconcile_logs
    q = select(e, lg.c.kind, lg.c.received_at).join(lg, lg.c.pk == e.c.log_pk)
    if since is not None:
        q = q.where(lg.c.received_at >= since)
    if hospital_id:
        q = q.where(e.c.hospital_id == hospital_id)
    if study_id is not None:
        q = q.where(e.c.study_id == study_id)
    latest: dict[tuple[str, str], Row[Any]] = {}
    for row in conn.execute(q.order_by(e.c.pk)):
        latest[(row.hospital_id, row.study_id)] = row  # the newest log about a study wins
    out: list[tuple[Row[Any], str, dict[str, Any]]] = []
    for (hid, study_id_), row in latest.items():
        held, received, ris, dicoms = _holdings(conn, hid, study_id_, row.study_uid)
        expected = {"series": row.expected_series, "images": row.expected_images,
                    "reports": row.expected_reports, "pdf": row.expected_pdf}
        if expected == received and held:
            continue
        # Missing: the platform has nothing of the study, not even a registration's
        # images or reports (README); mismatch: something arrived, the counts differ.
        kind = "missing" if not held or not any(received.values()) else "mismatch"
        uid = row.study_uid or (ris.study_uid if ris is not None and ris.study_uid else "") or \
            (dicoms[0].study_uid if dicoms else "")
        out.append((row, uid, {"kind": kind, "hospitalId": hid, "studyId": study_id_,
                               "accessNumber": row.access_number or "", "studyUid": row.study_uid or "",
                               "expected": expected, "received": received, "loggedAt": zone.show(row.received_at)}))
    return out


def _dicom_datetime(date: str | None, time_: str | None) -> str | None:
    if not date or len(date) != 8 or not date.isdigit():
        return None
    t = (time_ or "000000").split(".")[0].ljust(6, "0")[:6]
    return f"{date[:4]}-{date[4:6]}-{date[6:]} {t[:2]}:{t[2:4]}:{t[4:6]}"


def _unlisted(conn: Connection, *, since: float | None, hospital_id: str | None,
              zone: Zone) -> list[dict[str, Any]]:
    lg, e, st, d = s.reconcile_logs, s.reconcile_entries, s.studies, s.dicom_studies
    q = select(lg).where(lg.c.kind == "range")
    if since is not None:
        q = q.where(lg.c.received_at >= since)
    if hospital_id:
        q = q.where(lg.c.hospital_id == hospital_id)
    logs = conn.execute(q.order_by(lg.c.pk)).all()
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    listed_later: set[tuple[str, str]] = set()
    for log_row in reversed(logs):
        listed_ids = set(conn.execute(select(e.c.study_id).where(e.c.log_pk == log_row.pk)).scalars())
        listed_uids = set(conn.execute(select(e.c.study_uid).where(e.c.log_pk == log_row.pk)).scalars())
        hid = log_row.hospital_id
        ris_rows = conn.execute(
            select(st).where(st.c.hospital_id == hid, st.c.deleted.is_(False),
                             st.c.study_date >= log_row.start_time, st.c.study_date <= log_row.end_time)
        ).all()
        for ris in ris_rows:
            if ris.study_id in listed_ids or (hid, ris.study_id) in listed_later:
                continue
            held, received, _, dicoms = _holdings(conn, hid, ris.study_id, ris.study_uid)
            uid = ris.study_uid or (dicoms[0].study_uid if dicoms else "")
            found.setdefault((hid, ris.study_id, uid), {
                "kind": "unlisted", "hospitalId": hid, "studyId": ris.study_id, "accessNumber": ris.access_number or "",
                "studyUid": uid or "", "expected": {"series": 0, "images": 0, "reports": 0, "pdf": 0},
                "received": received, "loggedAt": zone.show(log_row.received_at)})
        for dicom in conn.execute(select(d).where(d.c.hospital_id == hid, d.c.ris_study_pk.is_(None))).all():
            when = _dicom_datetime(dicom.study_date, dicom.study_time)
            if when is None or not (log_row.start_time <= when <= log_row.end_time):
                continue
            if dicom.study_uid in listed_uids or (hid, dicom.study_uid) in listed_later:
                continue
            found.setdefault((hid, "", dicom.study_uid), {
                "kind": "unlisted", "hospitalId": hid, "studyId": "", "accessNumber": dicom.accession_number or "",
                "studyUid": dicom.study_uid, "expected": {"series": 0, "images": 0, "reports": 0, "pdf": 0},
                "received": {"series": dicom.n_series, "images": dicom.n_images, "reports": dicom.n_sr,
                             "pdf": dicom.n_pdf},
                "loggedAt": zone.show(log_row.received_at)})
        listed_later |= {(hid, x) for x in listed_ids} | {(hid, x) for x in listed_uids if x}
    return list(found.values())
