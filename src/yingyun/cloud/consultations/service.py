"""Doctors and remote consultations (会诊): the state machine and its refusals.

::

    requested --schedule--> scheduled --start--> in_progress --conclude--> concluded
        |                      |   ^ (re-schedule)
        +------cancel----------+---> cancelled

* requested/scheduled: may be edited (experts, purpose, time, meeting URL);
  giving a time makes it scheduled. Once started it cannot be edited (40008)
  nor cancelled (40009).
* The experts' conclusion is submitted once, by an invited expert, and is
  then locked (40010).
* At most `max_experts` experts are invited (40011); each must be a known
  doctor (20028). Adding a doctor whose id exists: 20027 (the operator's
  CLI updates instead). A doctor a consultation names (requester, expert,
  concluding expert) is not removed: the record keeps who took part.

Every function is keyword-only and runs in the caller's transaction.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, Select, delete, insert, select, update

from ...contract import hospital_api as hc
from ...contract.codes import Code
from ...core.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge
from ...storage import schema as s
from ...storage.schema import consultation_experts, consultation_studies, consultations, doctors
from ...tenancy import Holder, refuse_if_held
from ..staff.accounts import ensure_doctor_user

REQUESTED, SCHEDULED, IN_PROGRESS, CONCLUDED, CANCELLED = hc.CONSULTATION_STATES
OPEN = (REQUESTED, SCHEDULED)


# -- doctors ------------------------------------------------------------------------


def add_doctor(conn: Connection, *, doctor_id: str, name: str, hospital_id: str, title: str | None = None,
               dept: str | None = None, update_existing: bool = False, now: float | None = None) -> bool:
    """Create a doctor (True), or update one when `update_existing` (False); else 20027."""
    now = time.time() if now is None else now
    if not doctor_id or len(doctor_id) > 64 or not doctor_id.isprintable() or doctor_id.strip() != doctor_id:
        raise Invalid("doctorId must be 1-64 printable characters", subject="doctor", field="doctorId")
    if conn.execute(select(s.hospitals.c.id).where(s.hospitals.c.id == hospital_id)).first() is None:
        raise NotFound(f"no hospital {hospital_id!r}", subject="hospital")
    existing = conn.execute(select(doctors.c.id).where(doctors.c.id == doctor_id)).first()
    if existing is not None:
        if not update_existing:
            raise Conflict(f"doctor {doctor_id!r} already exists", subject="doctor")
        conn.execute(update(doctors).where(doctors.c.id == doctor_id).values(
            name=name, hospital_id=hospital_id, title=title, dept=dept, updated_at=now))
        return False
    conn.execute(insert(doctors).values(id=doctor_id, name=name, hospital_id=hospital_id, title=title, dept=dept,
                                        created_at=now, updated_at=now))
    # A doctor is a staff user with a doctor profile (this row): the user of the same id.
    ensure_doctor_user(conn, doctor_id=doctor_id, name=name, hospital_id=hospital_id, now=now)
    return True


def remove_doctor(conn: Connection, *, doctor_id: str) -> None:
    """Remove a doctor no consultation names (their record keeps who took part); else InUse."""
    if conn.execute(select(doctors.c.id).where(doctors.c.id == doctor_id)).first() is None:
        raise NotFound(f"no doctor {doctor_id!r}", subject="doctor")
    c = consultations
    ce = consultation_experts
    named = c.c.pk.in_(select(ce.c.consultation_pk).where(ce.c.doctor_id == doctor_id))
    ids = conn.execute(select(c.c.public_id).where(
        (c.c.requesting_doctor_id == doctor_id) | (c.c.concluded_by == doctor_id) | named
    ).order_by(c.c.pk)).scalars().all()
    refuse_if_held("doctor", doctor_id, [Holder(len(ids), "consultation", "consultations", tuple(ids))])
    conn.execute(delete(doctors).where(doctors.c.id == doctor_id))


def list_doctors(conn: Connection, *, hospitals: Iterable[str] | None = None) -> list[dict[str, Any]]:
    q = select(doctors).order_by(doctors.c.id)
    if hospitals is not None:
        q = q.where(doctors.c.hospital_id.in_(sorted(set(hospitals))))
    return [{"doctorId": r.id, "name": r.name, "hospitalId": r.hospital_id, "title": r.title, "dept": r.dept}
            for r in conn.execute(q)]


def _doctors(conn: Connection, ids: list[str]) -> dict[str, Any]:
    if not ids:
        return {}
    return {r.id: r for r in conn.execute(select(doctors).where(doctors.c.id.in_(ids)))}


def _check_experts(conn: Connection, expert_ids: list[str], *, max_experts: int,
                   allowed_hospitals: set[str] | None) -> None:
    if len(expert_ids) > max_experts:
        raise TooLarge(f"{len(expert_ids)} experts invited; the limit is {max_experts}", subject="experts",
                       field=hc.C_EXPERTS, limit=max_experts)
    found = _doctors(conn, expert_ids)
    missing = [d for d in expert_ids if d not in found]
    if missing:
        raise NotFound("no such doctor(s): " + ", ".join(missing), subject="doctor")
    if allowed_hospitals is not None:
        outside = [d for d in expert_ids if found[d].hospital_id not in allowed_hospitals]
        if outside:
            raise Forbidden("doctor(s) of hospitals not granted to this partner: " + ", ".join(outside),
                            subject="doctor")


# -- consultations ------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who acts: a partner (limited to its grant) or the operator (None grant)."""

    name: str
    grant: set[str] | None


def create(conn: Connection, *, actor: Actor, studies: list[tuple[str, str]], expert_ids: list[str],
           requesting_doctor_id: str | None, purpose: str | None, scheduled_at: str | None,
           meeting_url: str | None, max_experts: int, now: float | None = None) -> str:
    """A consultation about one patient's studies; returns its id."""
    now = time.time() if now is None else now
    st = s.studies
    if actor.grant is not None:
        outside = sorted({h for h, _ in studies if h not in actor.grant})
        if outside:
            raise Forbidden("hospital(s) not granted to this partner: " + ", ".join(outside), subject="hospital")
    rows = []
    for hospital_id, study_id in studies:
        row = conn.execute(select(st.c.id_card_hash, st.c.phone_hash, st.c.patient_name, st.c.deleted).where(
            st.c.hospital_id == hospital_id, st.c.study_id == study_id)).first()
        if row is None or row.deleted:
            raise NotFound(f"no study {study_id!r} in hospital {hospital_id!r}", subject="study")
        rows.append(row)
    first = rows[0]
    for row in rows[1:]:
        same = (row.id_card_hash == first.id_card_hash if first.id_card_hash or row.id_card_hash
                else row.phone_hash is not None and row.phone_hash == first.phone_hash)
        if not same:
            raise Invalid("studies: all studies of a consultation must be of one patient", field=hc.C_STUDIES)
    if first.id_card_hash is None and first.phone_hash is None:
        raise Invalid("studies: the patient has neither ID card nor phone number on record", field=hc.C_STUDIES)
    _check_experts(conn, expert_ids, max_experts=max_experts, allowed_hospitals=actor.grant)
    if requesting_doctor_id and requesting_doctor_id not in _doctors(conn, [requesting_doctor_id]):
        raise NotFound(f"no doctor {requesting_doctor_id!r}", subject="doctor")
    public_id = secrets.token_hex(8)
    pk = conn.execute(insert(consultations).values(
        public_id=public_id, hospital_id=studies[0][0], id_card_hash=first.id_card_hash,
        phone_hash=first.phone_hash if first.id_card_hash is None else None, patient_name=first.patient_name,
        status=SCHEDULED if scheduled_at else REQUESTED, requesting_doctor_id=requesting_doctor_id or None,
        purpose=purpose or None, scheduled_at=scheduled_at or None, meeting_url=meeting_url or None,
        created_by=actor.name, created_at=now, updated_at=now,
    ).returning(consultations.c.pk)).scalar_one()
    conn.execute(insert(consultation_studies), [{"consultation_pk": pk, "hospital_id": h, "study_id": sid}
                                                for h, sid in studies])
    if expert_ids:
        conn.execute(insert(consultation_experts), [{"consultation_pk": pk, "doctor_id": d, "position": i}
                                                    for i, d in enumerate(expert_ids)])
    return public_id


def _load(conn: Connection, *, actor: Actor, consultation_id: str, lock: bool = False) -> Row[Any]:
    q = select(consultations).where(consultations.c.public_id == consultation_id)
    if lock:
        q = q.with_for_update()
    row = conn.execute(q).first()
    if row is None:
        raise NotFound(f"no consultation {consultation_id!r}", subject="consultation")
    if actor.grant is not None:
        hospitals = {row.hospital_id} | {h for (h,) in conn.execute(select(consultation_studies.c.hospital_id).where(
            consultation_studies.c.consultation_pk == row.pk))}
        if not hospitals <= actor.grant:
            raise Forbidden(f"consultation {consultation_id!r} concerns hospital(s) not granted: "
                            + ", ".join(sorted(hospitals - actor.grant)), subject="consultation")
    return row


def _outside(hospitals: Iterable[str]) -> Select[Any]:
    """Consultations with a study of a hospital not in `hospitals` (a partner sees only whole ones)."""
    cs = consultation_studies
    return select(cs.c.consultation_pk).where(cs.c.hospital_id.not_in(sorted(set(hospitals))))


def update_consultation(conn: Connection, *, actor: Actor, consultation_id: str, expert_ids: list[str] | None,
                        purpose: str | None, scheduled_at: str | None, meeting_url: str | None, max_experts: int,
                        now: float | None = None) -> None:
    now = time.time() if now is None else now
    row = _load(conn, actor=actor, consultation_id=consultation_id, lock=True)
    if row.status in (IN_PROGRESS, CONCLUDED):
        raise Conflict(f"consultation {consultation_id} is {row.status}", subject="consultation",
                       code=Code.MEETING_STARTED_NO_UPDATE)
    if row.status == CANCELLED:
        raise Conflict(f"consultation {consultation_id} was cancelled", subject="consultation")
    values: dict[str, Any] = {"updated_at": now}
    if purpose is not None:
        values["purpose"] = purpose or None
    if meeting_url is not None:
        values["meeting_url"] = meeting_url or None
    if scheduled_at:
        values.update(scheduled_at=scheduled_at, status=SCHEDULED)
    if expert_ids is not None:
        _check_experts(conn, expert_ids, max_experts=max_experts, allowed_hospitals=actor.grant)
        conn.execute(delete(consultation_experts).where(consultation_experts.c.consultation_pk == row.pk))
        if expert_ids:
            conn.execute(insert(consultation_experts), [{"consultation_pk": row.pk, "doctor_id": d, "position": i}
                                                        for i, d in enumerate(expert_ids)])
    conn.execute(update(consultations).where(consultations.c.pk == row.pk).values(**values))


def start(conn: Connection, *, actor: Actor, consultation_id: str, now: float | None = None) -> None:
    now = time.time() if now is None else now
    row = _load(conn, actor=actor, consultation_id=consultation_id, lock=True)
    if row.status == IN_PROGRESS:
        return
    if row.status not in OPEN:
        raise Conflict(f"consultation {consultation_id} is {row.status}: it cannot start", subject="consultation")
    conn.execute(update(consultations).where(consultations.c.pk == row.pk).values(
        status=IN_PROGRESS, started_at=now, updated_at=now))


def cancel(conn: Connection, *, actor: Actor, consultation_id: str, now: float | None = None) -> None:
    now = time.time() if now is None else now
    row = _load(conn, actor=actor, consultation_id=consultation_id, lock=True)
    if row.status == CANCELLED:
        return
    if row.status not in OPEN:
        raise Conflict(f"consultation {consultation_id} is {row.status}", subject="consultation",
                       code=Code.MEETING_STARTED_NO_CANCEL)
    conn.execute(update(consultations).where(consultations.c.pk == row.pk).values(
        status=CANCELLED, cancelled_at=now, updated_at=now))


def conclude(conn: Connection, *, actor: Actor, consultation_id: str, doctor_id: str, conclusion: str,
             now: float | None = None) -> None:
    now = time.time() if now is None else now
    row = _load(conn, actor=actor, consultation_id=consultation_id, lock=True)
    if row.status == CONCLUDED:
        raise _locked(consultation_id)
    if row.status != IN_PROGRESS:
        raise Conflict(f"consultation {consultation_id} is {row.status}: conclude it once it is in progress",
                       subject="consultation")
    experts = {r.doctor_id for r in conn.execute(select(consultation_experts.c.doctor_id).where(
        consultation_experts.c.consultation_pk == row.pk))}
    if doctor_id not in experts:
        if doctor_id not in _doctors(conn, [doctor_id]):
            raise NotFound(f"no doctor {doctor_id!r}", subject="doctor")
        raise Forbidden(f"doctor {doctor_id!r} is not an invited expert", subject="doctor")
    res = conn.execute(update(consultations).where(consultations.c.pk == row.pk,
                                                   consultations.c.status == IN_PROGRESS).values(
        status=CONCLUDED, conclusion=conclusion, concluded_by=doctor_id, concluded_at=now, updated_at=now))
    if res.rowcount == 0:  # concluded by someone else meanwhile
        raise _locked(consultation_id)


def _locked(consultation_id: str) -> Conflict:
    return Conflict(f"consultation {consultation_id}: the conclusion is locked", subject="consultation",
                    code=Code.SUMMARY_LOCK_FAILED)


def describe(conn: Connection, rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    """Consultations as the API and the CLI show them."""
    if not rows:
        return []
    pks = [r.pk for r in rows]
    studies: dict[int, list[dict[str, Any]]] = {}
    for r in conn.execute(select(consultation_studies).where(consultation_studies.c.consultation_pk.in_(pks))
                          .order_by(consultation_studies.c.hospital_id, consultation_studies.c.study_id)):
        studies.setdefault(r.consultation_pk, []).append({hc.HOSPITAL_ID: r.hospital_id, hc.S_STUDY_ID: r.study_id})
    experts: dict[int, list[str]] = {}
    for r in conn.execute(select(consultation_experts).where(consultation_experts.c.consultation_pk.in_(pks))
                          .order_by(consultation_experts.c.position)):
        experts.setdefault(r.consultation_pk, []).append(r.doctor_id)
    names = {d.id: d for d in _doctors(conn, sorted({d for ids in experts.values() for d in ids}
                                                     | {r.requesting_doctor_id for r in rows if r.requesting_doctor_id}
                                                     | {r.concluded_by for r in rows if r.concluded_by})).values()}
    out = []
    for r in rows:
        out.append({
            hc.C_ID: r.public_id,
            hc.HOSPITAL_ID: r.hospital_id,
            hc.C_STATUS: r.status,
            hc.C_STUDIES: studies.get(r.pk, []),
            "experts": [{hc.C_DOCTOR_ID: d, hc.C_NAME: names[d].name if d in names else None,
                         hc.HOSPITAL_ID: names[d].hospital_id if d in names else None}
                        for d in experts.get(r.pk, [])],
            hc.C_REQUESTER: r.requesting_doctor_id,
            hc.C_PURPOSE: r.purpose,
            hc.C_SCHEDULED_AT: r.scheduled_at,
            hc.C_MEETING_URL: r.meeting_url,
            hc.C_CONCLUSION: r.conclusion,
            "concludedBy": r.concluded_by,
            "patientName": r.patient_name,
            "createdBy": r.created_by,
            "createdAt": r.created_at,
            "updatedAt": r.updated_at,
        })
    return out


def get(conn: Connection, *, actor: Actor, consultation_id: str) -> dict[str, Any]:
    return describe(conn, [_load(conn, actor=actor, consultation_id=consultation_id)])[0]


def list_consultations(conn: Connection, *, actor: Actor, hospital_id: str | None = None,
                       status: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    c = consultations
    q = select(c).order_by(c.c.created_at.desc(), c.c.pk.desc()).limit(limit)
    if actor.grant is not None:
        q = q.where(c.c.hospital_id.in_(sorted(actor.grant)), c.c.pk.not_in(_outside(actor.grant)))
    if hospital_id:
        q = q.where(c.c.hospital_id == hospital_id)
    if status:
        if status not in hc.CONSULTATION_STATES:
            raise Invalid("status must be one of " + ", ".join(hc.CONSULTATION_STATES), field=hc.C_STATUS)
        q = q.where(c.c.status == status)
    return describe(conn, conn.execute(q).all())


def for_patient(conn: Connection, *, id_card_hash: str | None, phone_hash: str | None, patient_name: str | None,
                hospitals: Iterable[str]) -> list[dict[str, Any]]:
    """A patient's consultations whose studies are all of `hospitals` (their page)."""
    from ..hospital_api.patients import Patient

    patient = Patient(id_card_hash, phone_hash, patient_name)
    cond = patient.condition(consultations)
    if cond is None:
        return []
    hospitals = sorted(set(hospitals))
    cs = consultation_studies
    touching = select(cs.c.consultation_pk).where(cs.c.hospital_id.in_(hospitals))
    rows = [r for r in conn.execute(select(consultations).where(cond, consultations.c.pk.in_(touching),
                                                                consultations.c.pk.not_in(_outside(hospitals)))
                                    .order_by(consultations.c.created_at.desc()))
            if patient.owns(id_card_hash=r.id_card_hash, phone_hash=r.phone_hash, patient_name=r.patient_name)]
    return describe(conn, rows)
