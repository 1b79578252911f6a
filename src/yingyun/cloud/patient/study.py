"""What the pages show of a study: the report, the image stack, PDF reports."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row, or_, select

from ...storage import schema as s


def display_name(name: str | None) -> str:
    """The name as people write it: Zhang^Sanfeng=张^三丰 -> 张三丰, Zhang^San -> ZhangSan."""
    if not name:
        return ""
    text = name.split("=")[-1] if "=" in name else name  # DICOM PN groups: keep the ideographic one
    return text.replace("^", "").strip() or name.strip()


def mask_name(name: str | None) -> str:
    """张三丰 -> 张*丰, 张三 -> 张*, Zhang^San -> Z*******n."""
    text = display_name(name)
    if len(text) <= 1:
        return text
    if len(text) == 2:
        return text[0] + "*"
    return text[0] + "*" * (len(text) - 2) + text[-1]


def study_uids(conn: Connection, study: Row[Any]) -> list[str]:
    d = s.dicom_studies
    conds = [d.c.ris_study_pk == study.pk]
    if study.study_uid:
        conds.append(d.c.study_uid == study.study_uid)
    rows = conn.execute(select(d.c.study_uid).where(d.c.hospital_id == study.hospital_id,
                                                    or_(*conds))).scalars().all()
    uids = list(dict.fromkeys(rows))
    return uids


def latest_report(conn: Connection, study: Row[Any]) -> Row[Any] | None:
    r = s.reports
    return conn.execute(
        select(r).where(r.c.hospital_id == study.hospital_id, r.c.study_id == study.study_id)
        .order_by(r.c.updated_at.desc(), r.c.pk.desc()).limit(1)
    ).first()


def details(study: Row[Any]) -> dict[str, Any]:
    try:
        d = json.loads(study.details or "{}")
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


@dataclass
class Frame:
    pk: int
    version: int
    frame: int
    number: int | None
    rows: int | None
    columns: int | None


@dataclass
class Series:
    index: int
    uid: str
    number: int | None
    description: str
    modality: str
    frames: list[Frame] = field(default_factory=list)


def image_stack(conn: Connection, *, hospital_id: str, uids: list[str]) -> list[Series]:
    """Image series in display order; a multi-frame instance contributes one entry per frame."""
    if not uids:
        return []
    i, se = s.instances, s.series
    rows = conn.execute(
        select(i.c.pk, i.c.version, i.c.series_uid, i.c.instance_number, i.c.number_of_frames, i.c.rows, i.c.columns,
               se.c.series_number, se.c.description, se.c.modality)
        .select_from(i.outerjoin(se, (se.c.hospital_id == i.c.hospital_id) & (se.c.series_uid == i.c.series_uid)))
        .where(i.c.hospital_id == hospital_id, i.c.study_uid.in_(uids), i.c.kind == "image")
        .order_by(se.c.series_number, i.c.series_uid, i.c.instance_number, i.c.pk)
    ).all()
    out: dict[str, Series] = {}
    for r in rows:
        ser = out.get(r.series_uid)
        if ser is None:
            ser = out[r.series_uid] = Series(index=len(out), uid=r.series_uid, number=r.series_number,
                                             description=r.description or "", modality=(r.modality or "").upper())
        for f in range(max(r.number_of_frames or 1, 1)):
            ser.frames.append(Frame(r.pk, r.version, f, r.instance_number, r.rows, r.columns))
    return list(out.values())


def instance_for(conn: Connection, *, hospital_id: str, uids: list[str], pk: int) -> Row[Any] | None:
    """The instance row if it belongs to the study (else None: never serve another study's image)."""
    if not uids:
        return None
    i = s.instances
    return conn.execute(
        select(i).where(i.c.pk == pk, i.c.hospital_id == hospital_id, i.c.study_uid.in_(uids))
    ).first()


def pdf_instances(conn: Connection, *, hospital_id: str, uids: list[str]) -> Sequence[Row[Any]]:
    if not uids:
        return []
    i = s.instances
    return conn.execute(
        select(i).where(i.c.hospital_id == hospital_id, i.c.study_uid.in_(uids), i.c.kind == "pdf")
        .order_by(i.c.received_at.desc(), i.c.pk.desc())
    ).all()


def dicom_instances(conn: Connection, *, hospital_id: str,
                    uids: list[str]) -> Sequence[Row[Any, Any, Any, Any, Any, Any]]:
    if not uids:
        return []
    i = s.instances
    return conn.execute(
        select(i.c.pk, i.c.blob_key, i.c.size, i.c.series_uid, i.c.sop_uid, i.c.kind)
        .where(i.c.hospital_id == hospital_id, i.c.study_uid.in_(uids))
        .order_by(i.c.series_uid, i.c.instance_number, i.c.pk)
    ).all()
