"""Operators' listings: every study, RIS-known or DICOM-only, with what arrived."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, func, select

from ..storage import schema as s


def received(d_row: Any, n_reports: int) -> dict[str, int]:
    """What arrived of a study; `d_row` is its dicom_studies row (or a sum of several), or None."""
    return {
        "series": d_row.n_series if d_row else 0,
        "images": d_row.n_images if d_row else 0,
        "sr": d_row.n_sr if d_row else 0,
        "pdf": d_row.n_pdf if d_row else 0,
        "reports": n_reports,
    }


def list_studies(conn: Connection, *, hospital_id: str | None = None) -> list[dict[str, Any]]:
    st, d, r = s.studies, s.dicom_studies, s.reports
    report_counts = {
        (row.hospital_id, row.study_id): row.n
        for row in conn.execute(select(r.c.hospital_id, r.c.study_id, func.count().label("n"))
                                .group_by(r.c.hospital_id, r.c.study_id))
    }
    dicom_by_ris: dict[int, list[Row[Any]]] = {}
    dicom_only: list[Row[Any]] = []
    q = select(d)
    if hospital_id:
        q = q.where(d.c.hospital_id == hospital_id)
    for row in conn.execute(q.order_by(d.c.pk)):
        if row.ris_study_pk is None:
            dicom_only.append(row)
        else:
            dicom_by_ris.setdefault(row.ris_study_pk, []).append(row)
    out = []
    q = select(st)
    if hospital_id:
        q = q.where(st.c.hospital_id == hospital_id)
    for row in conn.execute(q.order_by(st.c.pk)):
        linked = dicom_by_ris.get(row.pk, [])
        dicom: Row[Any] | _Sum | None = linked[0] if len(linked) == 1 else _merge(linked)
        out.append({
            "hospitalId": row.hospital_id,
            "studyId": row.study_id,
            "accessNumber": row.access_number or (dicom.accession_number if dicom else "") or "",
            "studyUid": row.study_uid or (dicom.study_uid if dicom else "") or "",
            "patientId": row.patient_id or "",
            "patientName": row.patient_name or "",
            "status": row.status or "",
            "deleted": bool(row.deleted),
            "warnings": json.loads(row.warnings or "[]"),
            "received": received(dicom, report_counts.get((row.hospital_id, row.study_id), 0)),
        })
    for only in dicom_only:
        out.append({
            "hospitalId": only.hospital_id,
            "studyId": "",
            "accessNumber": only.accession_number or "",
            "studyUid": only.study_uid,
            "patientId": only.patient_id or "",
            "patientName": only.patient_name or "",
            "status": "",
            "deleted": False,
            "warnings": [],
            "received": received(only, 0),
        })
    return out


class _Sum:
    """Several DICOM studies linked to one RIS study, added up."""

    def __init__(self, rows: Sequence[Row[Any]]) -> None:
        first = rows[0]
        self.accession_number = first.accession_number
        self.study_uid = first.study_uid
        self.n_series = sum(r.n_series for r in rows)
        self.n_images = sum(r.n_images for r in rows)
        self.n_sr = sum(r.n_sr for r in rows)
        self.n_pdf = sum(r.n_pdf for r in rows)


def _merge(rows: Sequence[Row[Any]]) -> _Sum | None:
    return _Sum(rows) if rows else None
