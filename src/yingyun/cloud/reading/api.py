"""`/api/v1/reading-routes`, `/api/v1/worklist`, `/api/v1/studies/{studyUid}/{lock,report,priors}` and
`/api/v1/critical-findings` (issue 15): each runs as the session's user (`CallerDep`, CSRF-checked on writes),
off the event loop, through the services of this package."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from ...contract.codes import Code
from ...core.errors import Invalid
from ...web.vendor import parse_json, read_body
from ..staff.api import BODY_LIMIT, object_body, text_field
from ..staff.audit import record_action
from ..staff.edge import CallerDep, StaffRoute
from . import reports, routes, worklist
from .context import ReadingContext

router = APIRouter(prefix="/api/v1", route_class=StaffRoute, tags=["Remote reading"])


def reading(request: Request) -> ReadingContext:
    ctx: ReadingContext = request.app.state.reading
    return ctx


@router.get("/reading-routes", summary="The reading routes from or to the caller's hospitals")
async def list_routes(request: Request, caller: CallerDep) -> dict[str, Any]:
    ctx = reading(request)

    def run() -> list[routes.Route]:
        with ctx.db.read() as conn:
            return routes.list_routes(conn, caller=caller)

    found = await run_in_threadpool(run)
    return {"items": [x.as_json() for x in found], "total": len(found)}


@router.post("/reading-routes", summary="Route a hospital's studies (of one modality, or all) to a reading centre")
async def add_route(request: Request, caller: CallerDep) -> dict[str, Any]:
    ctx = reading(request)
    body = await object_body(request)
    unknown = set(body) - {"fromHospitalId", "toHospitalId", "modality"}
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}", code=Code.INVALID_FORMAT)
    src, dst = text_field(body, "fromHospitalId"), text_field(body, "toHospitalId")

    def run() -> routes.Route:
        with ctx.db.write() as conn:
            route = routes.add_route(conn, caller=caller, from_hospital_id=src, to_hospital_id=dst,
                                     modality=body.get("modality"), now=ctx.clock())
            record_action(conn, username=caller.username, action="reading-routes.create",
                          subject_kind="reading-routes", subject_id=route.id, hospital_id=src,
                          detail={"fields": sorted(body)})
            return route

    return (await run_in_threadpool(run)).as_json()


@router.delete("/reading-routes/{route_id}", summary="Remove a reading route")
async def remove_route(request: Request, caller: CallerDep, route_id: str) -> None:
    ctx = reading(request)

    def run() -> None:
        with ctx.db.write() as conn:
            route = routes.remove_route(conn, caller=caller, route_id=route_id)
            record_action(conn, username=caller.username, action="reading-routes.remove",
                          subject_kind="reading-routes", subject_id=route.id, hospital_id=route.from_hospital_id)

    await run_in_threadpool(run)


@router.get("/worklist", summary="The reading worklist: items, total and counts per state")
async def get_worklist(request: Request, caller: CallerDep, state: str | None = None, modality: str | None = None,
                       hospitalId: str | None = None, limit: str | None = None,  # noqa: N803
                       offset: str | None = None, q: str | None = None) -> dict[str, Any]:
    params = request.query_params
    f = worklist.filters(state=state, modality=modality, hospital_id=hospitalId, date_from=params.get("from"),
                         date_to=params.get("to"), q=q, limit=limit, offset=offset)
    return await run_in_threadpool(lambda: worklist.worklist(reading(request), caller=caller, f=f))


@router.get("/studies/{study_uid}/priors", summary="The patient's other studies in the union, with their reports")
async def get_priors(request: Request, caller: CallerDep, study_uid: str) -> dict[str, Any]:
    return await run_in_threadpool(lambda: worklist.priors(reading(request), caller=caller, study_uid=study_uid))


@router.post("/studies/{study_uid}/lock", summary="Take (or renew) the study's lock")
async def take_lock(request: Request, caller: CallerDep, study_uid: str) -> dict[str, Any]:
    return await run_in_threadpool(lambda: reports.lock(reading(request), caller=caller, study_uid=study_uid))


@router.delete("/studies/{study_uid}/lock", summary="Release the study's lock")
async def release_lock(request: Request, caller: CallerDep, study_uid: str) -> None:
    await run_in_threadpool(lambda: reports.unlock(reading(request), caller=caller, study_uid=study_uid))


@router.get("/studies/{study_uid}/report", summary="The study's report and its kept revisions")
async def get_report(request: Request, caller: CallerDep, study_uid: str) -> dict[str, Any]:
    return await run_in_threadpool(lambda: reports.get_report(reading(request), caller=caller, study_uid=study_uid))


@router.put("/studies/{study_uid}/report", summary="Save the draft (the lock holder, over the version it read)")
async def save_report(request: Request, caller: CallerDep, study_uid: str) -> dict[str, Any]:
    body = await object_body(request)
    return await run_in_threadpool(lambda: reports.save(reading(request), caller=caller, study_uid=study_uid,
                                                        body=body))


async def _optional_body(request: Request) -> dict[str, Any]:
    raw = await read_body(request, BODY_LIMIT)
    if not raw.strip():
        return {}
    body = parse_json(raw, request.url.path)
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object", code=Code.INVALID_FORMAT)
    return body


@router.post("/studies/{study_uid}/report/submit", summary="Sign the report as its radiologist: awaiting review")
async def submit_report(request: Request, caller: CallerDep, study_uid: str) -> dict[str, Any]:
    body = await _optional_body(request)
    critical = body.get("critical")
    if critical is not None and not isinstance(critical, bool):
        raise Invalid("critical is true or false", field="critical", code=Code.INVALID_FORMAT)
    return await run_in_threadpool(lambda: reports.submit(reading(request), caller=caller, study_uid=study_uid,
                                                          critical=critical))


@router.post("/studies/{study_uid}/report/approve", summary="Approve the report (a reviewer not its author): final")
async def approve_report(request: Request, caller: CallerDep, study_uid: str) -> dict[str, Any]:
    return await run_in_threadpool(lambda: reports.approve(reading(request), caller=caller, study_uid=study_uid))


@router.post("/studies/{study_uid}/report/return", summary="Send the report back to its author with a comment")
async def return_report(request: Request, caller: CallerDep, study_uid: str) -> dict[str, Any]:
    comment = text_field(await object_body(request), "comment")
    return await run_in_threadpool(lambda: reports.return_report(reading(request), caller=caller,
                                                                 study_uid=study_uid, comment=comment))


@router.post("/studies/{study_uid}/report/amend", summary="Amend a final report (kept and shown until approved)")
async def amend_report(request: Request, caller: CallerDep, study_uid: str) -> dict[str, Any]:
    return await run_in_threadpool(lambda: reports.amend(reading(request), caller=caller, study_uid=study_uid))


@router.get("/critical-findings", summary="Critical findings (危急值) of the caller's hospitals, newest first")
async def critical_findings(request: Request, caller: CallerDep, limit: str | None = None,
                            offset: str | None = None) -> dict[str, Any]:
    f = worklist.filters(state=None, modality=None, hospital_id=None, date_from=None, date_to=None, q=None,
                         limit=limit, offset=offset)
    return await run_in_threadpool(lambda: reports.critical_findings(reading(request), caller=caller, limit=f.limit,
                                                                     offset=f.offset))
