"""The reading worklist (`GET /api/v1/worklist`) and a study's priors (`GET /api/v1/studies/{uid}/priors`).

A caller's worklist holds the stable studies of the hospitals routed to the reading centres where the caller is
a radiologist, a reviewer or an admin (every centre for an operator), as `routes.shares_of` says. Each study's
state is computed here from its `reading_reports` row: `unread` (no report yet), `drafting` (a draft, or locked
by someone), `submitted`, `returned`, `final` (an amendment in progress still counts as final). Emergency
studies (`studyCategory` emergency) come first, then by waiting time (oldest stable first); final ones last.
`priors` counts the patient's other studies in the union, matched by the keyed identity hashes. Patient names
are shown (the readers' job) and never logged; each read is audited with counts only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, and_, case, false, func, literal, or_, select

from ...core.errors import Forbidden, Invalid
from ...storage import schema as s
from ..staff.audit import record_action
from ..staff.edge import ADMIN, RADIOLOGIST, REVIEWER, Caller
from . import access as ac
from . import routes as rt
from .context import ReadingContext

STATES = ("unread", "drafting", "submitted", "returned", "final")
MAX_LIMIT = 200
# studies.details is orjson's compact JSON: the category reads as this text in it.
_EMERGENCY = '%"studyCategory":"emergency"%'
_AGE_UNITS = {"Y": "岁", "M": "月", "W": "周", "D": "天"}

d, st, rr = s.dicom_studies, s.studies, s.reading_reports


@dataclass(frozen=True)
class Filters:
    state: str | None = None
    modality: str | None = None
    hospital_id: str | None = None
    date_from: str | None = None  # yyyymmdd
    date_to: str | None = None
    q: str | None = None
    limit: int = 50
    offset: int = 0


def _day(value: str | None, name: str) -> str | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value).strftime("%Y%m%d")
    except ValueError:
        raise Invalid(f"{name} is a date: yyyy-MM-dd", field=name) from None


def filters(*, state: str | None, modality: str | None, hospital_id: str | None, date_from: str | None,
            date_to: str | None, q: str | None, limit: str | None, offset: str | None) -> Filters:
    if state and state not in STATES:
        raise Invalid(f"state is one of {', '.join(STATES)}", field="state")

    def whole(text: str | None, name: str, default: int, low: int, high: int) -> int:
        if text is None or text == "":
            return default
        if not re.fullmatch(r"\d+", text) or not low <= int(text) <= high:
            raise Invalid(f"{name} is a whole number from {low} to {high}", field=name)
        return int(text)

    return Filters(state=state or None, modality=rt.normal_modality(modality), hospital_id=hospital_id or None,
                   date_from=_day(date_from, "from"), date_to=_day(date_to, "to"), q=(q or "").strip() or None,
                   limit=whole(limit, "limit", 50, 1, MAX_LIMIT), offset=whole(offset, "offset", 0, 0, 10**9))


def _modality_is(m: str) -> ColumnElement[bool]:
    routed = func.coalesce(st.c.modality, d.c.modalities)
    return or_(func.upper(routed) == m, func.upper(routed).startswith(m + "\\", autoescape=True))


def _share_clause(share: rt.Share) -> ColumnElement[bool]:
    clause: ColumnElement[bool] = d.c.hospital_id == share.hospital_id
    if share.modalities is not None:
        clause = and_(clause, or_(*(_modality_is(m) for m in sorted(share.modalities))))
    if share.exclude:
        clause = and_(clause, *(~_modality_is(m) for m in sorted(share.exclude)))
    return clause


def state_expr(now: float, lock_s: float) -> ColumnElement[str]:
    cutoff = now - lock_s
    live = and_(rr.c.locked_by.is_not(None), or_(rr.c.locked_at > cutoff, rr.c.lock_saved_at > cutoff))
    return case(
        (rr.c.pk.is_(None), literal("unread")),
        (rr.c.state == "submitted", literal("submitted")),
        (rr.c.state == "final", literal("final")),
        (live, literal("drafting")),
        (rr.c.state == "returned", literal("returned")),
        (rr.c.state == "amending", literal("final")),
        (rr.c.version == 0, literal("unread")),
        else_=literal("drafting"))


def centres_of(caller: Caller) -> frozenset[str] | None:
    """The reading centres whose worklist the caller reads (None: every one); 20008 for a caller of none."""
    if caller.hospital_ids(ADMIN) is None:
        return None
    centres = caller.hospital_ids(RADIOLOGIST, REVIEWER) or frozenset()
    centres = centres | (caller.hospital_ids(ADMIN) or frozenset())
    if not centres:
        raise Forbidden(f"user {caller.username} reads for no reading centre")
    return centres


def worklist(ctx: ReadingContext, *, caller: Caller, f: Filters) -> dict[str, Any]:
    centres = centres_of(caller)
    now = ctx.clock()
    hospitals = ctx.tenancy.hospitals()
    with ctx.db.read() as conn:
        routes = rt.all_routes(conn)
        shares = rt.shares_of(routes, centres, sorted(hospitals), lambda h: ctx.local.of(conn, h))
        page = _page(conn, ctx, shares, f, now)
    if f.hospital_id is not None and f.hospital_id not in hospitals:
        page["items"] = []
    with ctx.db.write() as conn:
        record_action(conn, username=caller.username, action="reading.worklist", subject_kind="worklist",
                      subject_id=None, detail={"items": len(page["items"]), "total": page["total"]}, at=now)
    return page


def _page(conn: Connection, ctx: ReadingContext, shares: list[rt.Share], f: Filters, now: float) -> dict[str, Any]:
    state = state_expr(now, ctx.lock_s)
    emergency = st.c.details.like(_EMERGENCY)
    joined = d.outerjoin(st, and_(st.c.pk == d.c.ris_study_pk, st.c.deleted.is_(False))).outerjoin(
        rr, and_(rr.c.hospital_id == d.c.hospital_id, rr.c.study_uid == d.c.study_uid))
    where: list[ColumnElement[bool]] = [d.c.stable.is_(True),
                                        or_(*(_share_clause(x) for x in shares)) if shares else false()]
    if f.hospital_id:
        where.append(d.c.hospital_id == f.hospital_id)
    if f.modality:
        where.append(_modality_is(f.modality))
    if f.date_from:
        where.append(d.c.study_date >= f.date_from)
    if f.date_to:
        where.append(d.c.study_date <= f.date_to)
    if f.q:
        like = f"%{f.q}%"
        where.append(or_(st.c.patient_name.ilike(like), d.c.patient_name.ilike(like), st.c.study_id.ilike(like),
                         st.c.access_number.ilike(like), d.c.accession_number.ilike(like),
                         d.c.patient_id.ilike(like), d.c.study_uid == f.q))
    counts = dict.fromkeys(STATES, 0)
    for name, n in conn.execute(select(state, func.count()).select_from(joined).where(*where).group_by(state)):
        counts[name] = n
    if f.state:
        where.append(state == f.state)
    total = counts[f.state] if f.state else sum(counts.values())
    rank = case((state == "final", 2), (emergency, 0), else_=1)
    rows = conn.execute(
        select(d.c.hospital_id, d.c.study_uid, d.c.accession_number, d.c.patient_name, d.c.patient_sex,
               d.c.patient_birth_date, d.c.study_date, d.c.study_description, d.c.modalities, d.c.stable_at,
               st.c.pk.label("ris_pk"), st.c.study_id, st.c.access_number, st.c.patient_name.label("ris_name"),
               st.c.patient_sex.label("ris_sex"), st.c.modality, st.c.body_part, st.c.study_desc,
               st.c.study_date.label("ris_date"), st.c.details, st.c.id_card_hash, st.c.phone_hash,
               state.label("state"), rr.c.locked_by, rr.c.locked_name, rr.c.first_final_at)
        .select_from(joined).where(*where).order_by(rank, d.c.stable_at, d.c.pk)
        .limit(f.limit).offset(f.offset)).all()
    hospitals = ctx.tenancy.hospitals()
    priors = prior_counts(conn, hospitals, rows)
    return {"items": [_item(row, hospitals, priors, now) for row in rows], "total": total, "counts": counts}


def _age(details: dict[str, Any], birth: str | None, study_date: str | None) -> str | None:
    age, unit = details.get("patientAge"), details.get("patientAgeUnit")
    if age not in (None, ""):
        return f"{age}{_AGE_UNITS.get(str(unit or 'Y').upper(), '')}"
    if birth and study_date and len(birth) == 8 and len(study_date) >= 8 and birth.isdigit():
        years = int(study_date[:4]) - int(birth[:4]) - ((study_date[4:8]) < birth[4:8])
        return f"{years}岁" if years >= 0 else None
    return None


def _item(row: Any, hospitals: dict[str, dict[str, Any]], priors: dict[tuple[str, str], int],
          now: float) -> dict[str, Any]:
    details = orjson.loads(row.details) if row.details else {}
    dicom_date = row.study_date
    shown_date = row.ris_date or (f"{dicom_date[:4]}-{dicom_date[4:6]}-{dicom_date[6:8]}"
                                  if dicom_date and len(dicom_date) == 8 else dicom_date)
    until = row.first_final_at if row.state == "final" and row.first_final_at else now
    return {
        "studyUid": row.study_uid, "studyId": row.study_id,
        "accessNumber": row.access_number or row.accession_number, "hospitalId": row.hospital_id,
        "hospitalName": hospitals.get(row.hospital_id, {}).get("name"),
        "patientName": row.ris_name or row.patient_name, "patientSex": row.ris_sex or row.patient_sex,
        "patientAge": _age(details, row.patient_birth_date, dicom_date),
        "modality": rt.study_modality(row.modality, row.modalities), "bodyPart": row.body_part,
        "studyDesc": row.study_desc or row.study_description, "studyDate": shown_date,
        "category": "emergency" if details.get("studyCategory") == "emergency" else "normal",
        "state": row.state, "lockedBy": row.locked_name if row.state == "drafting" and row.locked_by else None,
        "waitingMinutes": max(0, math.floor((until - (row.stable_at or until)) / 60)),
        "priors": priors.get((row.hospital_id, row.study_uid), 0),
    }


def union_hospitals(hospitals: dict[str, dict[str, Any]], hospital_id: str) -> list[str]:
    """The hospitals whose studies are a patient's priors for a study of `hospital_id`: its union's, or itself."""
    union = hospitals.get(hospital_id, {}).get("unionId")
    if union is None:
        return [hospital_id]
    return sorted(h for h, v in hospitals.items() if v.get("unionId") == union)


def _matches(conn: Connection, id_hashes: set[str], phone_hashes: set[str]) -> Sequence[Any]:
    conds = []
    if id_hashes:
        conds.append(st.c.id_card_hash.in_(sorted(id_hashes)))
    if phone_hashes:
        conds.append(st.c.phone_hash.in_(sorted(phone_hashes)))
    if not conds:
        return []
    return conn.execute(select(st.c.pk, st.c.hospital_id, st.c.study_id, st.c.study_uid, st.c.modality,
                               st.c.study_date, st.c.study_desc, st.c.id_card_hash, st.c.phone_hash)
                        .where(or_(*conds), st.c.deleted.is_(False))).all()


def _same_patient(a: Any, b: Any) -> bool:
    return bool((a.id_card_hash and a.id_card_hash == b.id_card_hash)
                or (a.phone_hash and a.phone_hash == b.phone_hash))


def prior_counts(conn: Connection, hospitals: dict[str, dict[str, Any]],
                 rows: Sequence[Any]) -> dict[tuple[str, str], int]:
    found = _matches(conn, {x.id_card_hash for x in rows if x.id_card_hash},
                     {x.phone_hash for x in rows if x.phone_hash})
    out = {}
    for row in rows:
        if row.ris_pk is None:
            continue
        union = set(union_hospitals(hospitals, row.hospital_id))
        out[(row.hospital_id, row.study_uid)] = sum(
            1 for m in found if m.pk != row.ris_pk and m.hospital_id in union and _same_patient(m, row))
    return out


def priors(ctx: ReadingContext, *, caller: Caller, study_uid: str) -> dict[str, Any]:
    """The patient's other studies in the union with their final reports (`reports`), newest first; audited."""
    with ctx.db.write() as conn:
        study, _ = ac.find(conn, caller=caller, study_uid=study_uid, local=ctx.local)
        items: list[dict[str, Any]] = []
        if study.ris_pk is not None:
            me = conn.execute(select(st.c.pk, st.c.id_card_hash, st.c.phone_hash).where(st.c.pk == study.ris_pk)).one()
            hospitals = ctx.tenancy.hospitals()
            union = set(union_hospitals(hospitals, study.hospital_id))
            found = [m for m in _matches(conn, {me.id_card_hash} - {None}, {me.phone_hash} - {None})
                     if m.pk != me.pk and m.hospital_id in union and _same_patient(m, me)]
            found.sort(key=lambda m: (m.study_date or "", m.pk), reverse=True)
            for m in found:
                items.append({"studyUid": m.study_uid, "studyId": m.study_id, "hospitalId": m.hospital_id,
                              "hospitalName": hospitals.get(m.hospital_id, {}).get("name"), "modality": m.modality,
                              "studyDate": m.study_date, "studyDesc": m.study_desc,
                              "report": _report_of(conn, m.hospital_id, m.study_id)})
        record_action(conn, username=caller.username, action="reading.priors", subject_kind="study",
                      subject_id=study.study_uid, hospital_id=study.hospital_id, study_uid=study.study_uid,
                      detail={"count": len(items)}, at=ctx.clock())
        return {"items": items}


def _report_of(conn: Connection, hospital_id: str, study_id: str) -> dict[str, Any] | None:
    rep = s.reports
    row = conn.execute(select(rep.c.report_number, rep.c.image_description, rep.c.conclusion, rep.c.report_doctor,
                              rep.c.report_time, rep.c.audit_doctor, rep.c.audit_time)
                       .where(rep.c.hospital_id == hospital_id, rep.c.study_id == study_id)
                       .order_by(rep.c.updated_at.desc(), rep.c.pk.desc()).limit(1)).first()
    if row is None:
        return None
    return {"reportNumber": row.report_number, "imageDescription": row.image_description,
            "conclusion": row.conclusion, "reportDoctor": row.report_doctor, "reportTime": row.report_time,
            "auditDoctor": row.audit_doctor, "auditTime": row.audit_time}
