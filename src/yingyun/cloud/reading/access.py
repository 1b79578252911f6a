"""The one access rule of remote reading, and the study it is asked about.

Radiologists and reviewers of the reading centre a study is routed to (`routes.centre_of`) may see it, lock it
and report it; an admin of that centre may see it and end someone else's lock (audited); clinicians of the
sending hospital (and whoever covers a clinician there: its admins, the operator) may read its final report,
never lock or write; anyone else is refused with 30009 (`Forbidden`, subject "study").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from ...core.errors import Forbidden, NotFound
from ...storage import schema as s
from ..staff.edge import ADMIN, CLINICIAN, RADIOLOGIST, REVIEWER, Caller
from . import routes as rt


@dataclass(frozen=True)
class Study:
    """A stable or arriving DICOM study as reading sees it, with its RIS record when there is one."""

    hospital_id: str
    study_uid: str
    centre_id: str | None
    modality: str | None
    ris_pk: int | None
    study_id: str | None
    access_number: str | None
    body_part: str | None
    study_desc: str | None
    stable_at: float | None


@dataclass(frozen=True)
class Access:
    report: bool  # may lock, save, submit, approve, return, amend (by role, each checked by the step)
    read_all: bool  # may read the report in every state (else the final one only)
    unlock_any: bool  # may end someone else's lock


def access(caller: Caller, study: Study) -> Access:
    centre = study.centre_id
    if centre is not None:
        reader = caller.may(RADIOLOGIST, hospital_id=centre) or caller.may(REVIEWER, hospital_id=centre)
        admin = caller.may(ADMIN, hospital_id=centre)
        if reader or admin:
            return Access(report=reader, read_all=True, unlock_any=admin)
    if caller.may(CLINICIAN, hospital_id=study.hospital_id):
        return Access(report=False, read_all=False, unlock_any=False)
    raise Forbidden(f"user {caller.username} may not read study {study.study_uid}", subject="study")


def _study(row: Any, centre: str | None) -> Study:
    return Study(row.hospital_id, row.study_uid, centre, rt.study_modality(row.ris_modality, row.modalities),
                 row.ris_pk, row.study_id, row.access_number or row.accession_number, row.body_part,
                 row.study_desc or row.study_description, row.stable_at)


def studies_named(conn: Connection, study_uid: str, *, local: rt.LocalReporting) -> list[Study]:
    d, st = s.dicom_studies, s.studies
    rows = conn.execute(
        select(d.c.hospital_id, d.c.study_uid, d.c.modalities, d.c.accession_number, d.c.study_description,
               d.c.stable_at, st.c.pk.label("ris_pk"), st.c.modality.label("ris_modality"), st.c.study_id,
               st.c.access_number, st.c.body_part, st.c.study_desc)
        .select_from(d.outerjoin(st, (st.c.pk == d.c.ris_study_pk) & st.c.deleted.is_(False)))
        .where(d.c.study_uid == study_uid).order_by(d.c.pk)).all()
    if not rows:
        return []
    routes = rt.all_routes(conn)
    out = []
    for row in rows:
        modality = rt.study_modality(row.ris_modality, row.modalities)
        out.append(_study(row, rt.centre_of(routes, hospital_id=row.hospital_id, modality=modality,
                                            local=local.of(conn, row.hospital_id))))
    return out


def find(conn: Connection, *, caller: Caller, study_uid: str, local: rt.LocalReporting) -> tuple[Study, Access]:
    """The study of that UID the caller may read (30008 when there is none, 30009 when it is another's), and
    what the caller may do with it."""
    found = studies_named(conn, study_uid, local=local)
    if not found:
        raise NotFound(f"no study {study_uid}", subject="study")
    refusal: Forbidden | None = None
    for study in found:
        try:
            return study, access(caller, study)
        except Forbidden as exc:
            refusal = exc
    assert refusal is not None
    raise refusal
