"""Locks and reports: `reading_reports`, one row per study being read, from its first lock to its final version.

States: `drafting` (saved by the lock holder), `submitted` (a radiologist signed it: awaiting review),
`returned` (the reviewer sent it back with a comment), `final` (a reviewer who is not its author approved it),
`amending` (a final report being changed: the final one is kept in `reading_revisions` and in `reports`, and is
what the sending hospital reads, until the amendment is approved). Every step bumps `version`, so an editor
holding an older one is refused (30006) instead of overwriting; every step is recorded in the staff audit.

A lock is live while its holder has taken or saved within `lock_s` (30 minutes); taking it again renews it.
Approving writes the report into `reports` (`archive.accept.accept_report`, source "cloud") so the patient pages,
the partner API, status callbacks and reconciliation see it, then calls `ReadingContext.report_published` in the
same transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Row, insert, or_, select, update
from sqlalchemy.exc import DBAPIError

from ...archive.accept import accept_report
from ...contract import gateway_api as g
from ...contract.params import parse
from ...core.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from ...storage import schema as s
from ...storage.upsert import insert_ignore
from ..staff.audit import record_action
from ..staff.edge import RADIOLOGIST, REVIEWER, Caller
from . import access as ac
from . import routes as rt
from .context import ReadingContext

DRAFTING, SUBMITTED, RETURNED, FINAL, AMENDING = "drafting", "submitted", "returned", "final", "amending"
EDITABLE = (DRAFTING, RETURNED, AMENDING)
MAX_TEXT = 20_000

r = s.reading_reports


def _row(conn: Connection, study: ac.Study, *, for_update: bool = False) -> Row[Any] | None:
    q = select(r).where(r.c.hospital_id == study.hospital_id, r.c.study_uid == study.study_uid)
    return conn.execute(q.with_for_update() if for_update else q).first()


def _live(row: Row[Any], ctx: ReadingContext, now: float) -> bool:
    if row.locked_by is None:
        return False
    last = max(row.locked_at or 0.0, row.lock_saved_at or 0.0)
    return last > now - ctx.lock_s


def _locked_elsewhere(row: Row[Any], ctx: ReadingContext, caller: Caller, now: float) -> Conflict:
    return Conflict(f"the study is locked by {row.locked_name or row.locked_by} since "
                    f"{ctx.zone.show(row.locked_at or now)}", subject="lock")


def _audit(conn: Connection, caller: Caller, study: ac.Study, action: str, now: float,
           detail: Mapping[str, Any] | None = None) -> None:
    record_action(conn, username=caller.username, action=f"reading.{action}", subject_kind="study",
                  subject_id=study.study_uid, hospital_id=study.hospital_id, study_uid=study.study_uid,
                  detail=detail, at=now)


def starting_text(conn: Connection, ctx: ReadingContext, study: ac.Study) -> tuple[str | None, str | None]:
    """What a new report starts with: the templates' text for the study (cloud/templates, wired by serve.py as
    `ReadingContext.template_for`), else nothing."""
    if ctx.template_for is None or study.centre_id is None:
        return None, None
    found = ctx.template_for(conn, centre_id=study.centre_id, modality=study.modality, body_part=study.body_part,
                             study_desc=study.study_desc)
    return (None, None) if found is None else found


def _require_reader(caller: Caller, study: ac.Study, acc: ac.Access, *roles: str) -> None:
    """30009 unless the caller reads for the study's centre; 20008 when this step is another role's (a radiologist
    approving)."""
    if not acc.report or study.centre_id is None:
        raise Forbidden(f"user {caller.username} may not report study {study.study_uid}", subject="study")
    if roles and not any(caller.may(role, hospital_id=study.centre_id) for role in roles):
        raise Forbidden(f"this step is a {' or '.join(roles)}'s", subject="user")


def _lock_view(ctx: ReadingContext, row: Mapping[str, Any]) -> dict[str, Any]:
    return {"lockedBy": row["locked_by"], "lockedName": row["locked_name"],
            "lockedAt": ctx.zone.show_optional(row["locked_at"]),
            "expiresAt": ctx.zone.show_optional(max(row["locked_at"] or 0, row["lock_saved_at"] or 0) + ctx.lock_s)}


def _take(conn: Connection, ctx: ReadingContext, caller: Caller, study: ac.Study, now: float) -> dict[str, Any]:
    """Lock the study for the caller (its row made first when it has none), or raise 30010 naming the holder. The
    row is read FOR UPDATE before it is decided, so of two readers racing the second sees the first's lock."""
    if _row(conn, study) is None:
        assert study.centre_id is not None
        description, conclusion = starting_text(conn, ctx, study)
        insert_ignore(conn, r, {
            "study_uid": study.study_uid, "hospital_id": study.hospital_id, "centre_id": study.centre_id,
            "report_number": f"YY{secrets.token_hex(8).upper()}", "state": DRAFTING, "version": 0,
            "image_description": description, "conclusion": conclusion, "critical": False, "returned_count": 0,
            "amended_count": 0, "created_at": now, "updated_at": now}, keys=["hospital_id", "study_uid"])
    row = _row(conn, study, for_update=True)
    assert row is not None
    if row.locked_by not in (None, caller.username) and _live(row, ctx, now):
        raise _locked_elsewhere(row, ctx, caller, now)
    mine = {"locked_by": caller.username, "locked_name": caller.name, "locked_at": now, "lock_saved_at": now}
    conn.execute(update(r).where(r.c.pk == row.pk).values(**mine))
    return _lock_view(ctx, mine)


def lock(ctx: ReadingContext, *, caller: Caller, study_uid: str) -> dict[str, Any]:
    """POST …/lock: take (or renew) the lock; 30010 while another reader holds it."""
    with ctx.db.write() as conn:
        now = ctx.clock()
        study, acc = ac.find(conn, caller=caller, study_uid=study_uid, local=ctx.local)
        _require_reader(caller, study, acc)
        row = _row(conn, study)
        if row is not None and row.state == FINAL:
            raise Conflict("the report is final: amend it to change it", subject="report")
        view = _take(conn, ctx, caller, study, now)
        _audit(conn, caller, study, "lock", now)
        return view


def unlock(ctx: ReadingContext, *, caller: Caller, study_uid: str) -> None:
    """DELETE …/lock: release the caller's lock; another's only by an admin of the reading centre (audited as an
    override), else 30011."""
    with ctx.db.write() as conn:
        now = ctx.clock()
        study, acc = ac.find(conn, caller=caller, study_uid=study_uid, local=ctx.local)
        row = _row(conn, study, for_update=True)
        if row is None or not _live(row, ctx, now):
            return
        override = row.locked_by != caller.username
        if override and not acc.unlock_any:
            raise Forbidden(f"the lock is {row.locked_name or row.locked_by}'s: only they or an admin of the "
                            f"reading centre may end it", subject="lock")
        if not override:
            _require_reader(caller, study, acc)
        _release(conn, row.pk)
        _audit(conn, caller, study, "unlock.override" if override else "unlock", now,
               {"holder": row.locked_by} if override else None)


def _release(conn: Connection, pk: int) -> None:
    conn.execute(update(r).where(r.c.pk == pk).values(locked_by=None, locked_name=None, locked_at=None,
                                                      lock_saved_at=None))


# -- the report ----------------------------------------------------------------------------------------------------

def _revisions(conn: Connection, ctx: ReadingContext, pk: int, *, final_only: bool) -> list[dict[str, Any]]:
    v = s.reading_revisions
    q = select(v).where(v.c.reading_pk == pk).order_by(v.c.pk)
    if final_only:
        q = q.where(v.c.kind == FINAL)
    return [{"kind": x.kind, "version": x.version, "at": ctx.zone.show(x.at), "by": x.actor_name or x.actor,
             "comment": x.comment, "imageDescription": x.image_description, "conclusion": x.conclusion,
             "critical": bool(x.critical)} for x in conn.execute(q)]


def _view(conn: Connection, ctx: ReadingContext, row: Row[Any], *, final_only: bool, now: float) -> dict[str, Any]:
    revisions = _revisions(conn, ctx, row.pk, final_only=final_only)
    out: dict[str, Any] = {
        "reportNumber": row.report_number, "imageDescription": row.image_description, "conclusion": row.conclusion,
        "critical": bool(row.critical), "state": row.state, "version": row.version,
        "reportDoctor": row.report_doctor, "reportTime": ctx.zone.show_optional(row.report_time),
        "auditDoctor": row.audit_doctor, "auditTime": ctx.zone.show_optional(row.audit_time),
        "returnComment": row.return_comment,
        "lockedBy": row.locked_by if _live(row, ctx, now) else None,
        "lockedName": row.locked_name if _live(row, ctx, now) else None,
        "revisions": revisions,
    }
    if final_only and row.state != FINAL:
        kept = next((x for x in reversed(revisions) if x["kind"] == FINAL), None)
        if kept is None:
            raise NotFound(f"study {row.study_uid} has no final report yet", subject="report")
        # While an amendment is drafted the sending hospital reads the final report as it was approved.
        out.update(imageDescription=kept["imageDescription"], conclusion=kept["conclusion"],
                   critical=kept["critical"], state=FINAL, returnComment=None, lockedBy=None, lockedName=None)
    return out


def get_report(ctx: ReadingContext, *, caller: Caller, study_uid: str) -> dict[str, Any]:
    """GET …/report: 30008 for an unknown study, 30003 while it has none (or, for the sending hospital, no final
    one yet)."""
    with ctx.db.write() as conn:  # the read is audited in the same transaction
        now = ctx.clock()
        study, acc = ac.find(conn, caller=caller, study_uid=study_uid, local=ctx.local)
        row = _row(conn, study)
        if row is None:
            raise NotFound(f"study {study_uid} has no report", subject="report")
        view = _view(conn, ctx, row, final_only=not acc.read_all, now=now)
        _audit(conn, caller, study, "report.read", now)
        return view


def _text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid(f"{name} must be a string", field=name)
    if len(value) > MAX_TEXT or "\x00" in value:
        raise Invalid(f"{name} is at most {MAX_TEXT} characters, without NUL", field=name)
    return value


def check_draft(body: Mapping[str, Any]) -> tuple[str, str, bool | None, int]:
    """(imageDescription, conclusion, critical or None when not sent, version) of a PUT body."""
    version = body.get("version")
    if version is None:
        raise Invalid("version is required (0 for a new report)", field="version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise Invalid("version is a whole number", field="version")
    critical = body.get("critical")
    if critical is not None and not isinstance(critical, bool):
        raise Invalid("critical is true or false", field="critical")
    unknown = set(body) - {"imageDescription", "conclusion", "critical", "version"}
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    return (_text(body.get("imageDescription"), "imageDescription"), _text(body.get("conclusion"), "conclusion"),
            critical, version)


def save(ctx: ReadingContext, *, caller: Caller, study_uid: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """PUT …/report: save the draft; only the lock holder, and only over the version it read (30006 otherwise,
    nothing written). A final report is not drafted over (30004): amend it."""
    description, conclusion, critical, version = check_draft(body)
    try:
        with ctx.db.write() as conn:
            return _save(conn, ctx, caller, study_uid, description, conclusion, critical, version)
    except DBAPIError as exc:
        raise Unavailable("the report could not be saved", subject="new report" if version == 0 else "report") \
            from exc


def _save(conn: Connection, ctx: ReadingContext, caller: Caller, study_uid: str, description: str, conclusion: str,
          critical: bool | None, version: int) -> dict[str, Any]:
    now = ctx.clock()
    study, acc = ac.find(conn, caller=caller, study_uid=study_uid, local=ctx.local)
    _require_reader(caller, study, acc)
    row = _row(conn, study)
    if row is not None and row.state == FINAL:
        raise Conflict(f"study {study_uid} has a final report: amend it to change it", subject="report")
    if row is None or not _live(row, ctx, now) or row.locked_by != caller.username:
        if row is not None and _live(row, ctx, now):
            raise _locked_elsewhere(row, ctx, caller, now)
        raise Conflict("take the lock first (POST …/lock): only its holder saves", subject="lock")
    if row.state == SUBMITTED and not caller.may(REVIEWER, hospital_id=study.centre_id):
        raise Conflict("the report is submitted: only a reviewer changes it now", subject="report state")
    values: dict[str, Any] = {"image_description": description, "conclusion": conclusion, "version": version + 1,
                              "lock_saved_at": now, "updated_at": now}
    if critical is not None:
        values["critical"] = critical
    if row.state == RETURNED:
        values["state"] = DRAFTING
    done = conn.execute(update(r).where(r.c.pk == row.pk, r.c.version == version,
                                        r.c.locked_by == caller.username).values(**values))
    if not done.rowcount:
        raise Conflict(f"the report was modified by someone else (version {row.version}, not {version})",
                       subject="report version")
    _audit(conn, caller, study, "report.save", now, {"version": version + 1})
    return {"version": version + 1}


def _begin(conn: Connection, ctx: ReadingContext, caller: Caller, study_uid: str, roles: tuple[str, ...],
           states: tuple[str, ...], step: str) -> tuple[ac.Study, Row[Any], float]:
    now = ctx.clock()
    study, acc = ac.find(conn, caller=caller, study_uid=study_uid, local=ctx.local)
    _require_reader(caller, study, acc, *roles)
    row = _row(conn, study, for_update=True)
    if row is None:
        raise NotFound(f"study {study_uid} has no report", subject="report")
    if row.state not in states:
        raise Conflict(f"a {row.state} report cannot be {step}", subject="report state")
    if _live(row, ctx, now) and row.locked_by != caller.username:
        raise _locked_elsewhere(row, ctx, caller, now)
    return study, row, now


def _revision(conn: Connection, row: Row[Any], caller: Caller, kind: str, version: int, now: float, *,
              comment: str | None = None, content: Mapping[str, Any] | None = None) -> None:
    c = content or {}
    conn.execute(insert(s.reading_revisions).values(
        reading_pk=row.pk, version=version, kind=kind, at=now, actor=caller.username, actor_name=caller.name,
        comment=comment, image_description=c.get("image_description", row.image_description),
        conclusion=c.get("conclusion", row.conclusion), critical=bool(c.get("critical", row.critical))))


_UNLOCKED = {"locked_by": None, "locked_name": None, "locked_at": None, "lock_saved_at": None}


def submit(ctx: ReadingContext, *, caller: Caller, study_uid: str, critical: bool | None = None) -> dict[str, Any]:
    """POST …/report/submit (a radiologist of the centre): signed as theirs, awaiting review, the lock released.
    A critical finding (`critical`, sent here or saved with the draft) is told at once: a status callback to the
    hospital's partners with "critical": true, and an entry in `GET /api/v1/critical-findings`."""
    with ctx.db.write() as conn:
        study, row, now = _begin(conn, ctx, caller, study_uid, (RADIOLOGIST,), EDITABLE, "submitted")
        if not (row.conclusion or "").strip():
            raise Conflict("a report is submitted with a conclusion: save one first", subject="report state")
        is_critical = bool(row.critical) if critical is None else critical
        version = row.version + 1
        conn.execute(update(r).where(r.c.pk == row.pk).values(
            state=SUBMITTED, version=version, critical=is_critical, report_doctor_id=caller.username,
            report_doctor=caller.name, report_time=now, return_comment=None, updated_at=now,
            first_submitted_at=row.first_submitted_at if row.first_submitted_at is not None else now, **_UNLOCKED))
        _revision(conn, row, caller, SUBMITTED, version, now, content={"critical": is_critical})
        _audit(conn, caller, study, "report.submit", now, {"version": version, "critical": is_critical})
        if is_critical:
            _critical(conn, ctx, caller, study, row.pk, now)
        return {"version": version, "state": SUBMITTED}


def _critical(conn: Connection, ctx: ReadingContext, caller: Caller, study: ac.Study, pk: int, now: float) -> None:
    assert study.centre_id is not None
    conn.execute(insert(s.reading_critical).values(reading_pk=pk, hospital_id=study.hospital_id,
                                                   centre_id=study.centre_id, study_uid=study.study_uid,
                                                   reported_by=caller.username, at=now))
    if ctx.callbacks is not None and study.study_id is not None:
        ctx.callbacks.critical_finding(conn, hospital_id=study.hospital_id, study_id=study.study_id)


def approve(ctx: ReadingContext, *, caller: Caller, study_uid: str) -> dict[str, Any]:
    """POST …/report/approve (a reviewer of the centre who is not the author): final, written into `reports`."""
    with ctx.db.write() as conn:
        study, row, now = _begin(conn, ctx, caller, study_uid, (REVIEWER,), (SUBMITTED,), "approved")
        if row.report_doctor_id == caller.username:
            raise Forbidden(f"user {caller.username} wrote this report: another reviewer approves it", subject="user")
        version = row.version + 1
        conn.execute(update(r).where(r.c.pk == row.pk).values(
            state=FINAL, version=version, audit_doctor_id=caller.username, audit_doctor=caller.name, audit_time=now,
            updated_at=now, first_final_at=row.first_final_at if row.first_final_at is not None else now,
            **_UNLOCKED))
        _revision(conn, row, caller, FINAL, version, now)
        final = _row(conn, study)
        assert final is not None
        publish(conn, ctx, study, final)
        _audit(conn, caller, study, "report.approve", now, {"version": version})
        return {"version": version, "state": FINAL}


def publish(conn: Connection, ctx: ReadingContext, study: ac.Study, row: Row[Any]) -> None:
    """The final report into `reports` under the vendor's field names, then `report_published`."""
    study_id = study.study_id or study.access_number or study.study_uid
    def wall(ts: float | None) -> str | None:  # `reports` keeps the hospital's wall time, as the RIS sends it
        return None if ts is None else ctx.zone.show(ts)[:19].replace("T", " ")

    columns = {"access_number": study.access_number or study_id, "image_description": row.image_description or "",
               "conclusion": row.conclusion or "", "report_time": wall(row.report_time),
               "report_doctor": row.report_doctor, "audit_time": wall(row.audit_time),
               "audit_doctor": row.audit_doctor}
    body = {name: columns[col] for name, col in g.REPORT_COLUMNS.items() if columns.get(col) is not None}
    body.update({g.REPORT_NUMBER: row.report_number, g.STUDY_ID: study_id})
    record = parse(g.REPORT_FIELDS, body, where="report")
    accept_report(conn, vault=ctx.vault, hospital_id=study.hospital_id, record=record, source=rt.CLOUD_SOURCE,
                  events=ctx.events)
    ctx.report_published(conn, study.study_uid)


def return_report(ctx: ReadingContext, *, caller: Caller, study_uid: str, comment: str) -> dict[str, Any]:
    """POST …/report/return (a reviewer of the centre): back to its author with `comment`."""
    with ctx.db.write() as conn:
        study, row, now = _begin(conn, ctx, caller, study_uid, (REVIEWER,), (SUBMITTED,), "returned")
        version = row.version + 1
        conn.execute(update(r).where(r.c.pk == row.pk).values(
            state=RETURNED, version=version, return_comment=comment, returned_count=row.returned_count + 1,
            updated_at=now, **_UNLOCKED))
        _revision(conn, row, caller, RETURNED, version, now, comment=comment)
        _audit(conn, caller, study, "report.return", now, {"version": version})
        return {"version": version, "state": RETURNED}


def amend(ctx: ReadingContext, *, caller: Caller, study_uid: str) -> dict[str, Any]:
    """POST …/report/amend (a radiologist of the centre) after final: a new revision, drafted under the caller's
    lock; the final one stays what the hospital reads until the amendment is approved."""
    with ctx.db.write() as conn:
        study, row, now = _begin(conn, ctx, caller, study_uid, (RADIOLOGIST,), (FINAL,), "amended")
        version = row.version + 1
        conn.execute(update(r).where(r.c.pk == row.pk).values(
            state=AMENDING, version=version, amended_count=row.amended_count + 1, audit_doctor_id=None,
            audit_doctor=None, audit_time=None, updated_at=now, locked_by=caller.username, locked_name=caller.name,
            locked_at=now, lock_saved_at=now))
        _revision(conn, row, caller, "amend", version, now)
        _audit(conn, caller, study, "report.amend", now, {"version": version})
        return {"version": version, "state": AMENDING}


def critical_findings(ctx: ReadingContext, *, caller: Caller, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """GET /api/v1/critical-findings: the critical findings of the hospitals (sending or reading) in the caller's
    scope, newest first; the read is audited."""
    c, rr = s.reading_critical, s.reading_reports
    q = select(c.c.pk, c.c.hospital_id, c.c.centre_id, c.c.study_uid, c.c.reported_by, c.c.at, rr.c.report_number,
               rr.c.state, rr.c.conclusion).select_from(c.join(rr, rr.c.pk == c.c.reading_pk))
    reach = caller.hospital_ids()
    if reach is not None:
        q = q.where(or_(c.c.hospital_id.in_(sorted(reach)), c.c.centre_id.in_(sorted(reach))))
    with ctx.db.write() as conn:
        rows = conn.execute(q.order_by(c.c.at.desc(), c.c.pk.desc()).limit(limit).offset(offset)).all()
        record_action(conn, username=caller.username, action="reading.critical.list", subject_kind="critical",
                      subject_id=None, detail={"count": len(rows)}, at=ctx.clock())
    hospitals = ctx.tenancy.hospitals()
    return {"items": [{"id": x.pk, "hospitalId": x.hospital_id,
                       "hospitalName": hospitals.get(x.hospital_id, {}).get("name"), "centreId": x.centre_id,
                       "studyUid": x.study_uid, "reportNumber": x.report_number, "state": x.state,
                       "conclusion": x.conclusion, "reportedBy": x.reported_by, "at": ctx.zone.show(x.at)}
                      for x in rows]}
