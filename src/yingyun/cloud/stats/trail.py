"""The audit trail as auditors read it (`GET /api/v1/audit`): staff actions and patient-page access, together.

Two tables feed it: `staff_audit` (every console and API action of a staff
user, cloud/staff/audit.py) and `access_audit` (who opened a patient link,
cloud/patient/audit.py). Both read as one list, newest first, with the same
fields; `kind` is "staff" or "patient" (or one action, e.g. "user.add" or
"view"). A scoped caller sees the rows of its hospitals only: a staff action
that names no hospital (a platform operation) is the operators'. Neither
table carries names, phone or ID numbers, so neither does this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, String, cast, func, literal, null, select, union_all

from ...core.times import Zone
from ...storage import schema as s

STAFF, PATIENT = "staff", "patient"


@dataclass(frozen=True)
class TrailQuery:
    since: float | None = None
    until: float | None = None
    kind: str | None = None
    study_uid: str | None = None
    username: str | None = None
    hospitals: frozenset[str] | None = None  # None: every hospital, and platform actions
    limit: int = 50
    offset: int = 0


def read_trail(conn: Connection, q: TrailQuery, *, zone: Zone) -> dict[str, Any]:
    """`{"items": [...], "total": N}` of the rows matching `q`, newest first."""
    a, p = s.staff_audit, s.access_audit
    staff = select(a.c.at, literal(STAFF).label("kind"), a.c.username, a.c.action, a.c.subject_kind,
                   a.c.subject_id, a.c.hospital_id, cast(a.c.study_uid, String).label("study_uid"), a.c.detail,
                   a.c.pk)
    patient = select(p.c.at, literal(PATIENT).label("kind"), cast(null(), String).label("username"),
                     p.c.access.label("action"), p.c.link_kind.label("subject_kind"),
                     p.c.study_id.label("subject_id"), p.c.hospital_id, cast(p.c.study_uid, String).label("study_uid"),
                     p.c.detail, p.c.pk)
    parts = []
    for family, table, sel in ((STAFF, a, staff), (PATIENT, p, patient)):
        if q.kind not in (None, "", family) and q.kind in (STAFF, PATIENT):
            continue
        if q.username and family == PATIENT:
            continue  # patients are not users
        action = a.c.action if family == STAFF else p.c.access
        conds = []
        if q.since is not None:
            conds.append(table.c.at >= q.since)
        if q.until is not None:
            conds.append(table.c.at < q.until)
        if q.kind and q.kind not in (STAFF, PATIENT):
            conds.append(action == q.kind)
        if q.study_uid:
            conds.append(table.c.study_uid == q.study_uid)
        if q.username:
            conds.append(a.c.username == q.username)
        if q.hospitals is not None:
            conds.append(table.c.hospital_id.in_(sorted(q.hospitals)))
        parts.append(sel.where(*conds))
    if not parts:
        return {"items": [], "total": 0}
    rows = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    total = conn.execute(select(func.count()).select_from(rows)).scalar_one()
    page = conn.execute(select(rows).order_by(rows.c.at.desc(), rows.c.kind, rows.c.pk.desc())
                        .limit(q.limit).offset(q.offset)).all()
    items = [{"at": zone.show(r.at), "kind": r.kind, "username": r.username, "action": r.action,
              "subject": f"{r.subject_kind}:{r.subject_id}" if r.subject_id else r.subject_kind,
              "hospitalId": r.hospital_id, "studyUid": r.study_uid, "detail": _detail(r.detail)} for r in page]
    return {"items": items, "total": total}


def _detail(text: str | None) -> Any:
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
