"""`GET /api/v1/stats`, `/api/v1/audit`, `/api/v1/discrepancies` (issue 14 item 4) and `/api/v1/damaged-objects`
(issue 18 item 5: what the scrub found missing or corrupt and could not repair).

Each is for auditors (and those whose role covers an auditor's: admins and
operators), over the hospitals the caller's roles reach: a `hospitalId` or
`unionId` outside them is refused (20008), one that does not exist is
20016 / 20023. Dates are `yyyy-MM-dd` days of the configured zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from ...archive.reconcile import discrepancies
from ...contract.codes import Code
from ...core.errors import Invalid, NotFound
from ...core.times import Zone
from ...storage import schema as s
from ...storage.db import Database
from ..staff.edge import AUDITOR, Caller, CallerDep, StaffRoute
from .service import StatsService, day_start
from .trail import TrailQuery, read_trail

router = APIRouter(prefix="/api/v1", tags=["Operations statistics and audit"], route_class=StaffRoute)

MAX_LIMIT = 500


def _query(name: str, description: str, *, required: bool = False, kind: str = "string",
           fmt: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind, **({"format": fmt} if fmt else {})}
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


# The handlers read their query by hand (to answer 20030 / 20031 in the envelope): the document names it.
SCOPE_PARAMS = [_query("hospitalId", "only this hospital (20016 unknown, 20008 outside the caller's scope)"),
                _query("unionId", "only this union's hospitals (20023 unknown)")]
STATS_PARAMS = [_query("from", "first day, yyyy-MM-dd in the configured zone", required=True, fmt="date"),
                _query("to", "last day (inclusive), at most 366 days after from", required=True, fmt="date"),
                *SCOPE_PARAMS]
AUDIT_PARAMS = [_query("from", "first day, yyyy-MM-dd", fmt="date"), _query("to", "last day (inclusive)", fmt="date"),
                _query("kind", "staff, patient, or one action (user.add, view, ...)"),
                _query("studyUid", "one study's rows"), _query("username", "one staff user's actions"),
                _query("limit", f"at most {MAX_LIMIT} (default 50)", kind="integer"),
                _query("offset", "rows to skip", kind="integer"), *SCOPE_PARAMS]


@dataclass(frozen=True)
class StatsContext:
    db: Database
    zone: Zone
    stats: StatsService


async def _context(request: Request) -> StatsContext:
    ctx: StatsContext = request.app.state.stats
    return ctx


StatsCtx = Annotated[StatsContext, Depends(_context)]


def day_param(text: str | None, *, name: str) -> date:
    """A `yyyy-MM-dd` query parameter: 20031 when missing, 20030 when malformed."""
    if not text:
        raise Invalid(f"{name} is required (yyyy-MM-dd)", field=name, code=Code.REQUIRED_EMPTY)
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{name} is not a date in the form yyyy-MM-dd", field=name, code=Code.INVALID_FORMAT) from None


def int_param(text: str | None, *, name: str, default: int, maximum: int | None = None) -> int:
    if text is None or text == "":
        return default
    if not text.isdigit() or (maximum is not None and int(text) > maximum):
        bound = f" from 0 to {maximum}" if maximum is not None else ""
        raise Invalid(f"{name} must be a whole number{bound}", field=name, code=Code.INVALID_FORMAT)
    return int(text)


def scope(conn: Any, caller: Caller, *, hospital_id: str | None, union_id: str | None) -> frozenset[str] | None:
    """The hospitals to report: the caller's (an auditor's reach), narrowed to one hospital or one union."""
    caller.require(AUDITOR)
    reach = caller.hospital_ids(AUDITOR)
    h = s.hospitals
    if hospital_id:
        if conn.execute(select(h.c.id).where(h.c.id == hospital_id)).first() is None:
            raise NotFound(f"no hospital {hospital_id}", subject="hospital", field="hospitalId")
        caller.require(AUDITOR, hospital_id=hospital_id)
        reach = frozenset({hospital_id})
    if union_id:
        if conn.execute(select(s.unions.c.id).where(s.unions.c.id == union_id)).first() is None:
            raise NotFound(f"no union {union_id}", subject="union", field="unionId")
        members = frozenset(conn.execute(select(h.c.id).where(h.c.union_id == union_id)).scalars())
        if reach is not None and not (members & reach):
            caller.require(AUDITOR, union_id=union_id)  # refuses: nothing of the union is in reach
        reach = members if reach is None else members & reach
    return reach


@router.get("/stats", summary="Per day and hospital: studies, images, instances, bytes, reports, visits; gauges",
            openapi_extra={"parameters": STATS_PARAMS})
async def stats(caller: CallerDep, ctx: StatsCtx, request: Request) -> dict[str, Any]:
    q = request.query_params
    first, last = day_param(q.get("from"), name="from"), day_param(q.get("to"), name="to")

    def answer() -> dict[str, Any]:
        with ctx.db.read() as conn:
            hospitals = scope(conn, caller, hospital_id=q.get("hospitalId"), union_id=q.get("unionId"))
        return {"from": first.isoformat(), "to": last.isoformat(), "timezone": ctx.zone.name,
                "days": ctx.stats.daily(first=first, last=last, hospitals=hospitals),
                "gauges": ctx.stats.gauges(hospitals=hospitals)}

    return await run_in_threadpool(answer)


@router.get("/audit", summary="The audit trail: staff actions and patient-page access, newest first",
            openapi_extra={"parameters": AUDIT_PARAMS})
async def audit(caller: CallerDep, ctx: StatsCtx, request: Request) -> dict[str, Any]:
    q = request.query_params
    since = until = None
    if q.get("from"):
        since = day_start(day_param(q.get("from"), name="from"), ctx.zone)
    if q.get("to"):
        until = day_start(day_param(q.get("to"), name="to") + timedelta(days=1), ctx.zone)
    limit = int_param(q.get("limit"), name="limit", default=50, maximum=MAX_LIMIT)
    offset = int_param(q.get("offset"), name="offset", default=0)

    def answer() -> dict[str, Any]:
        with ctx.db.read() as conn:
            hospitals = scope(conn, caller, hospital_id=q.get("hospitalId"), union_id=q.get("unionId"))
            return read_trail(conn, TrailQuery(since=since, until=until, kind=q.get("kind") or None,
                                               study_uid=q.get("studyUid") or None,
                                               username=q.get("username") or None, hospitals=hospitals,
                                               limit=limit, offset=offset), zone=ctx.zone)

    return await run_in_threadpool(answer)


@router.get("/discrepancies", summary="Open reconciliation discrepancies (what the RIS logged against what arrived)",
            openapi_extra={"parameters": SCOPE_PARAMS})
async def open_discrepancies(caller: CallerDep, ctx: StatsCtx, request: Request) -> dict[str, Any]:
    q = request.query_params

    def answer() -> dict[str, Any]:
        with ctx.db.read() as conn:
            hospitals = scope(conn, caller, hospital_id=q.get("hospitalId"), union_id=q.get("unionId"))
            items = [d for d in discrepancies(conn, zone=ctx.zone) if hospitals is None or d["hospitalId"] in hospitals]
        return {"items": items, "total": len(items)}

    return await run_in_threadpool(answer)


@router.get("/damaged-objects", summary="Stored objects the scrub found missing or corrupt and could not repair",
            openapi_extra={"parameters": SCOPE_PARAMS})
async def damaged_objects(caller: CallerDep, ctx: StatsCtx, request: Request) -> dict[str, Any]:
    q = request.query_params

    def answer() -> dict[str, Any]:
        d, i = s.blob_digests.c, s.instances.c
        with ctx.db.read() as conn:
            hospitals = scope(conn, caller, hospital_id=q.get("hospitalId"), union_id=q.get("unionId"))
            query = (select(d.blob_key, d.state, d.checked_at, i.hospital_id, i.study_uid)
                     .join(s.instances, i.blob_key == d.blob_key).where(d.state != "ok"))
            if hospitals is not None:
                query = query.where(i.hospital_id.in_(sorted(hospitals)))
            rows = conn.execute(query.order_by(i.hospital_id, d.blob_key)).all()
        items = [{"hospitalId": r.hospital_id, "studyUid": r.study_uid, "blobKey": r.blob_key, "state": r.state,
                  "checkedAt": ctx.zone.show(r.checked_at)} for r in rows]
        return {"items": items, "total": len(items)}

    return await run_in_threadpool(answer)
