"""C-FIND over the index (Study Root: STUDY, SERIES, IMAGE levels).

DICOM matching (PS3.4 C.2.2.2): single value, wildcards `*` and `?`,
ranges for dates and times, lists of UIDs, universal matching for empty
keys. Person names match case-insensitively against every component group
(alphabetic, ideographic, phonetic) and the displayed name, so `王*`
finds `Wang^XiaoDong=王^小東`. Deleted studies are never found. Answers
are encoded in UTF-8 (ISO_IR 192).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydicom.dataset import Dataset
from sqlalchemy import Connection, func, select

from ..core.dicom import display_person_name
from ..core.errors import Invalid
from ..storage import schema as s

STUDY_KEYS = {
    "StudyInstanceUID": "study_uid", "PatientName": "patient_name_raw", "PatientID": "patient_id",
    "PatientBirthDate": "patient_birth_date", "PatientSex": "patient_sex", "StudyDate": "study_date",
    "StudyTime": "study_time", "AccessionNumber": "accession_number", "StudyDescription": "study_description",
    "ReferringPhysicianName": "referring_physician", "ModalitiesInStudy": "modalities",
}
SERIES_KEYS = {"SeriesInstanceUID": "series_uid", "Modality": "modality", "SeriesNumber": "series_number",
               "SeriesDescription": "description", "BodyPartExamined": "body_part", "SeriesDate": "series_date",
               "SeriesTime": "series_time"}
IMAGE_KEYS = {"SOPInstanceUID": "sop_uid", "SOPClassUID": "sop_class_uid", "InstanceNumber": "instance_number",
              "NumberOfFrames": "number_of_frames", "Rows": "rows", "Columns": "columns"}
RANGE_KEYS = {"StudyDate", "StudyTime", "PatientBirthDate", "SeriesDate", "SeriesTime",
              # the worklist's (gateway/worklist.py)
              "ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime"}
UID_KEYS = {"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"}


class QueryError(Invalid):
    """The identifier cannot be answered (the DICOM port answers 0xA900)."""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or value.__class__.__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def _wild(pattern: str, value: str, *, fold: bool) -> bool:
    if fold:
        pattern, value = pattern.casefold(), value.casefold()
    if "*" not in pattern and "?" not in pattern:
        return pattern == value
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, flags=re.S) is not None


def _range(pattern: str, value: str) -> bool:
    if not value:
        return False
    if "-" not in pattern:
        prefix = len(pattern) < len(value) and pattern.isdigit() and "." not in pattern
        return value.startswith(pattern) if prefix else value == pattern
    lo, hi = pattern.split("-", 1)
    v = value.split(".")[0]
    if lo and v < lo.split(".")[0]:
        return False
    if hi and v[: len(hi.split(".")[0])] > hi.split(".")[0]:
        return False
    return True


def _person(pattern: str, raw: str) -> bool:
    if not raw:
        return False
    candidates = [raw, display_person_name(raw)] + [g for g in raw.split("=") if g]
    candidates += [g.replace("^", "") for g in raw.split("=") if g]
    candidates += [g.replace("^", " ").strip() for g in raw.split("=") if g]
    pats = [p for p in pattern.split("=") if p] or [pattern]
    return any(_wild(p, c, fold=True) for p in pats for c in candidates)


def matches(keyword: str, pattern: str, value: Any) -> bool:
    if pattern in ("", "*"):
        return True
    text = "" if value is None else str(value)
    if keyword in UID_KEYS:
        return text in pattern.split("\\")
    if keyword in RANGE_KEYS:
        return _range(pattern, text)
    if keyword == "PatientName" or keyword == "ReferringPhysicianName":
        return _person(pattern, text)
    if keyword == "ModalitiesInStudy":
        wanted = pattern.split("\\")
        return any(_wild(w, m, fold=False) for w in wanted for m in text.split("\\"))
    if keyword in ("Modality",) and "\\" in pattern:
        return text in pattern.split("\\")
    return _wild(pattern, text, fold=False)


def _keys(identifier: Dataset) -> dict[str, str]:
    out = {}
    for elem in identifier:
        kw = elem.keyword
        if kw and kw not in ("QueryRetrieveLevel", "SpecificCharacterSet"):
            out[kw] = _text(elem.value)
    return out


def find(conn: Connection, identifier: Dataset, *, hospital_ids: set[str]) -> Iterator[Dataset]:
    level = str(identifier.get("QueryRetrieveLevel", "")).strip().upper()
    if level not in ("STUDY", "SERIES", "IMAGE"):
        raise QueryError(f"unsupported QueryRetrieveLevel {level!r}")
    keys = _keys(identifier)
    d, st = s.dicom_studies, s.studies
    q = (select(d, st.c.deleted.label("ris_deleted"))
         .join(st, st.c.pk == d.c.ris_study_pk, isouter=True)
         .where(d.c.hospital_id.in_(sorted(hospital_ids))))
    uids = keys.get("StudyInstanceUID", "")
    if uids:
        q = q.where(d.c.study_uid.in_(uids.split("\\")))
    acc = keys.get("AccessionNumber", "")
    if acc and "*" not in acc and "?" not in acc:
        q = q.where(d.c.accession_number == acc)
    pid = keys.get("PatientID", "")
    if pid and "*" not in pid and "?" not in pid:
        q = q.where(d.c.patient_id == pid)
    for study in conn.execute(q.order_by(d.c.pk)):
        if study.ris_deleted:
            continue
        if not all(matches(kw, pat, getattr(study, col)) for kw, pat in keys.items() if (col := STUDY_KEYS.get(kw))):
            continue
        if level == "STUDY":
            yield _answer(identifier, keys, level, study=study, counts=_study_counts(conn, study))
            continue
        yield from _series_level(conn, identifier, keys, level, study)


def _study_counts(conn: Connection, study: Any) -> dict[str, int]:
    i = s.instances
    n_inst = conn.execute(select(func.count()).where(i.c.hospital_id == study.hospital_id,
                                                     i.c.study_uid == study.study_uid)).scalar_one()
    return {"NumberOfStudyRelatedSeries": study.n_series, "NumberOfStudyRelatedInstances": n_inst}


def _series_level(conn: Connection, identifier: Dataset, keys: dict[str, str], level: str,
                  study: Any) -> Iterator[Dataset]:
    se, i = s.series, s.instances
    rows = conn.execute(select(se).where(se.c.hospital_id == study.hospital_id, se.c.study_uid == study.study_uid)
                        .order_by(se.c.series_number, se.c.pk)).all()
    for series in rows:
        if not all(matches(kw, pat, getattr(series, col)) for kw, pat in keys.items() if (col := SERIES_KEYS.get(kw))):
            continue
        if level == "SERIES":
            yield _answer(identifier, keys, level, study=study, series=series,
                          counts={"NumberOfSeriesRelatedInstances": series.n_instances})
            continue
        inst_rows = conn.execute(select(i).where(i.c.hospital_id == study.hospital_id,
                                                 i.c.series_uid == series.series_uid)
                                 .order_by(i.c.instance_number, i.c.pk)).all()
        for inst in inst_rows:
            if all(matches(kw, pat, getattr(inst, col)) for kw, pat in keys.items() if (col := IMAGE_KEYS.get(kw))):
                yield _answer(identifier, keys, level, study=study, series=series, instance=inst)


def _answer(identifier: Dataset, keys: dict[str, str], level: str, *, study: Any, series: Any = None,
            instance: Any = None, counts: dict[str, int] | None = None) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.QueryRetrieveLevel = level
    values: dict[str, Any] = {}
    for kw, col in STUDY_KEYS.items():
        values[kw] = getattr(study, col)
    if series is not None:
        for kw, col in SERIES_KEYS.items():
            values[kw] = getattr(series, col)
    if instance is not None:
        for kw, col in IMAGE_KEYS.items():
            values[kw] = getattr(instance, col)
    values.update(counts or {})
    wanted = set(keys) | {"StudyInstanceUID"}
    if level in ("SERIES", "IMAGE"):
        wanted.add("SeriesInstanceUID")
    if level == "IMAGE":
        wanted.add("SOPInstanceUID")
    for elem in identifier:
        if elem.keyword in ("QueryRetrieveLevel", "SpecificCharacterSet") or not elem.keyword:
            continue
        wanted.add(elem.keyword)
    for kw in sorted(wanted):
        value = values.get(kw)
        try:
            if kw == "ModalitiesInStudy":
                setattr(ds, kw, [m for m in (value or "").split("\\") if m])
            else:
                setattr(ds, kw, "" if value is None else value)
        except (TypeError, ValueError):
            setattr(ds, kw, None)
    return ds
