"""Operators' listings: every study, RIS-known or DICOM-only, with what arrived."""

from __future__ import annotations

import json

from sqlalchemy import Connection, func, select

from ..storage import schema as s


def received(d_row, n_reports: int) -> dict:
    return {
        "series": d_row.n_series if d_row else 0,
        "images": d_row.n_images if d_row else 0,
        "sr": d_row.n_sr if d_row else 0,
        "pdf": d_row.n_pdf if d_row else 0,
        "reports": n_reports,
    }


def list_studies(conn: Connection, *, hospital_id: str | None = None) -> list[dict]:
    st, d, r = s.studies, s.dicom_studies, s.reports
    report_counts = {
        (row.hospital_id, row.study_id): row.n
        for row in conn.execute(select(r.c.hospital_id, r.c.study_id, func.count().label("n")).group_by(r.c.hospital_id, r.c.study_id))
    }
    dicom_by_ris: dict[int, list] = {}
    dicom_only = []
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
        dicom = linked[0] if len(linked) == 1 else _merge(linked)
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
    for dicom in dicom_only:
        out.append({
            "hospitalId": dicom.hospital_id,
            "studyId": "",
            "accessNumber": dicom.accession_number or "",
            "studyUid": dicom.study_uid,
            "patientId": dicom.patient_id or "",
            "patientName": dicom.patient_name or "",
            "status": "",
            "deleted": False,
            "warnings": [],
            "received": received(dicom, 0),
        })
    return out


class _Sum:
    def __init__(self, rows) -> None:
        first = rows[0]
        self.accession_number = first.accession_number
        self.study_uid = first.study_uid
        for key in ("n_series", "n_images", "n_sr", "n_pdf"):
            setattr(self, key, sum(getattr(r, key) for r in rows))


def _merge(rows):
    return _Sum(rows) if rows else None
