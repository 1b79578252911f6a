"""The modality worklist (MWL C-FIND, Modality Worklist Information Model - FIND) over the RIS's studies.

A study is on the worklist of its hospital while it is registered (by the
JSON API or an HL7 order), not deleted, and no image of it has arrived (no
DICOM study is linked to it yet): it leaves when its images come or it is
cancelled. What a modality reads:

| attribute | from the study |
|---|---|
| PatientName, PatientID, PatientBirthDate, PatientSex | patientName, patientId, patientBirthday, patientSex |
| AccessionNumber, StudyInstanceUID | accessNumber, studyUid (empty until the RIS gives one) |
| RequestedProcedureID, RequestedProcedureDescription | studyId, studyDesc |
| ScheduledProcedureStepSequence: Modality | modality |
| … ScheduledStationAETitle | equipment (IPC-9 of an OMI^O23) |
| … ScheduledProcedureStepStartDate / StartTime | appointDate, else studyDate |
| … ScheduledProcedureStepID, ScheduledProcedureStepDescription | studyId, studyDesc |

Matching is the archive's (archive/query.py: wildcards, date and time
ranges, Chinese names), on the top-level keys and on those of the first
Scheduled Procedure Step item; a key the study has no value for matches
only universally (an empty key). Answers are UTF-8 (ISO_IR 192) and carry
the keys asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from sqlalchemy import Connection, exists, select

from ..archive.query import matches
from ..storage import schema as s

SPS = "ScheduledProcedureStepSequence"


def _wall(text: str | None) -> tuple[str, str]:
    """'yyyy-MM-dd HH:mm:ss' as DICOM (DA, TM); ("", "") when absent."""
    if not text or len(text) < 10:
        return "", ""
    date = text[:10].replace("-", "")
    time = text[11:19].replace(":", "") if len(text) >= 19 else ""
    return date, time


def _values(study: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(top-level attributes, scheduled procedure step attributes) of a study."""
    details = orjson.loads(study.details or "{}")
    date, time = _wall(details.get("appointDate") or study.study_date)
    top = {
        "PatientName": study.patient_name, "PatientID": study.patient_id,
        "PatientBirthDate": (details.get("patientBirthday") or "").replace("-", ""), "PatientSex": study.patient_sex,
        "AccessionNumber": study.access_number, "StudyInstanceUID": study.study_uid,
        "RequestedProcedureID": study.study_id, "RequestedProcedureDescription": study.study_desc,
    }
    step = {
        "Modality": study.modality, "ScheduledStationAETitle": details.get("equipment"),
        "ScheduledProcedureStepStartDate": date, "ScheduledProcedureStepStartTime": time,
        "ScheduledProcedureStepID": study.study_id, "ScheduledProcedureStepDescription": study.study_desc,
    }
    return top, step


def _keys(ds: Dataset) -> dict[str, str]:
    out = {}
    for elem in ds:
        if elem.keyword and elem.keyword != "SpecificCharacterSet" and elem.VR != "SQ":
            value = elem.value
            out[elem.keyword] = "" if value is None else str(value)
    return out


def find(conn: Connection, identifier: Dataset, *, hospital_id: str) -> Iterator[Dataset]:
    top_keys = _keys(identifier)
    sps_items = identifier.get(SPS) or []
    step_keys = _keys(sps_items[0]) if sps_items else {}
    st, d = s.studies, s.dicom_studies
    q = select(st).where(st.c.hospital_id == hospital_id, st.c.deleted.is_(False),
                         ~exists().where(d.c.ris_study_pk == st.c.pk))
    for keyword, column in (("AccessionNumber", st.c.access_number), ("PatientID", st.c.patient_id)):
        value = top_keys.get(keyword, "")
        if value and "*" not in value and "?" not in value:
            q = q.where(column == value)
    for study in conn.execute(q.order_by(st.c.pk)):
        top, step = _values(study)
        if all(matches(kw, pattern, top.get(kw)) for kw, pattern in top_keys.items()) and \
                all(matches(kw, pattern, step.get(kw)) for kw, pattern in step_keys.items()):
            yield _answer(identifier, top, step)


def _put(ds: Dataset, keyword: str, value: Any) -> None:
    try:
        setattr(ds, keyword, "" if value is None else value)
    except (TypeError, ValueError):
        setattr(ds, keyword, None)


def _answer(identifier: Dataset, top: dict[str, Any], step: dict[str, Any]) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    for elem in identifier:
        kw = elem.keyword
        if not kw or kw == "SpecificCharacterSet":
            continue
        if kw == SPS:
            asked = identifier.get(SPS) or []
            item = Dataset()
            for sub in (asked[0] if asked else Dataset()):
                if sub.keyword:
                    _put(item, sub.keyword, step.get(sub.keyword))
            ds.ScheduledProcedureStepSequence = Sequence([item])
            continue
        _put(ds, kw, top.get(kw))
    return ds
