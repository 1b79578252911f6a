"""The internet-hospital API (/thirdparty/*, contract §3) and our consultation API.

Each call: authenticate (signature, before the body is read; the `{appId}`
in the path must be the signer's), spend one of the partner's rate-limit
permits (90003 when none is left), read and check the body (20031 / 20030 /
100001 for identity fields that do not decrypt), then answer from the index.
`GET` with the same fields as query parameters is accepted on the §3 paths.
The envelope and every refusal are rendered by `web.vendor.VendorRoute`; the
handlers' collaborators come from the app's `HospitalApiContext`
(`app.state.hospital_api`, filled by the composition root).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from ...contract import hospital_api as hc
from ...contract.codes import Code
from ...contract.envelope import ContractError
from ...tenancy import Partner
from ...web.auth import authenticate
from ...web.vendor import VendorRoute, json_body
from ..consultations import pages
from ..consultations import service as consult
from . import patients as pt
from .context import HospitalApiContext

router = APIRouter(tags=["Internet hospital (thirdparty)"], route_class=VendorRoute)


def hospital_api_context(request: Request) -> HospitalApiContext:
    ctx: HospitalApiContext = request.app.state.hospital_api
    return ctx


Ctx = Annotated[HospitalApiContext, Depends(hospital_api_context)]


async def caller(request: Request, ctx: Ctx) -> Partner:
    """The signing partner, whose appId the path names, with a permit of its rate limit spent."""
    partner = await authenticate(request, ctx.tenancy, window_s=ctx.settings.signature_window_s)
    if request.path_params.get("appId") != partner.app_id:
        raise ContractError(Code.INVALID_SIGNATURE, "the appId in the path is not the appId header")
    if not await run_in_threadpool(ctx.limiter.allow, partner.app_id):
        raise ContractError(Code.FETCH_LIMIT, f"partner {partner.app_id} exceeded its request rate; retry later")
    return partner


Caller = Annotated[Partner, Depends(caller)]

# Each operation's fields (`_add` fills it): the table `fields` reads the matched route's from.
_PARAMS: dict[str, tuple[hc.Param, ...]] = {}


async def fields(request: Request, partner: Caller) -> dict[str, Any]:
    """The operation's fields, checked: a POST's JSON body (read once the caller is known), a GET's query."""
    path: str = request.scope["route"].path
    raw: Any = dict(request.query_params) if request.method == "GET" else await json_body(request, hc.BODY_LIMIT)
    return hc.parse(_PARAMS[path], raw, tokens=partner.tokens)


Fields = Annotated[dict[str, Any], Depends(fields)]


def _openapi(params: tuple[hc.Param, ...], *, get: bool) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": "appId", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "the partner's appId; must equal the appId header"},
        {"name": "appId", "in": "header", "required": True, "schema": {"type": "string"}},
        {"name": "timestamp", "in": "header", "required": True, "schema": {"type": "string"},
         "description": "milliseconds since the Unix epoch"},
        {"name": "signature", "in": "header", "required": True, "schema": {"type": "string"},
         "description": "hex HMAC-SHA256(token, appId + timestamp)"},
    ]
    schema = hc.request_schema(params)
    if get:  # the same fields as query parameters
        parameters += [{"name": name, "in": "query", "required": name in schema["required"], "schema": prop}
                       for name, prop in schema["properties"].items()]
        return {"parameters": parameters}
    return {"parameters": parameters,
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _add(path: str, handler: Callable[..., Coroutine[Any, Any, Any]], params: tuple[hc.Param, ...], *, name: str,
         summary: str, description: str = "", methods: tuple[str, ...] = ("POST",)) -> None:
    _PARAMS[path] = params
    for method in methods:
        router.add_api_route(path, handler, methods=[method], name=name, summary=summary, description=description,
                             operation_id=f"{name}_{method.lower()}",
                             openapi_extra=_openapi(params, get=method == "GET"))


# -- §3.1 patientStudies --------------------------------------------------------


def _studies(ctx: HospitalApiContext, partner: Partner, q: dict[str, Any]) -> list[dict[str, Any]]:
    settings = ctx.settings
    hospitals = ctx.tenancy.hospitals()
    grant = pt.check_scope(partner, hospitals, hospital_id=q[hc.HOSPITAL_ID], union_id=q[hc.UNION_ID])
    scope = pt.hospitals_for_flag(q[hc.DATA_FLAG], grant=grant, hospitals=hospitals,
                                  hospital_id=q[hc.HOSPITAL_ID], union_id=q[hc.UNION_ID])
    patient = pt.Patient.of(ctx.vault, id_num=q[hc.ID_NUM], phone=q[hc.PHONE_NUM], name=q.get(hc.PATIENT_NAME))
    doctor = q[hc.USAGE] == hc.USAGE_DOCTOR
    lifetime = settings.doctor_link_lifetime_s if doctor else settings.partner_link_lifetime_s
    t = ctx.clock()
    with ctx.db.read() as conn:  # one statement: studies, reports, DICOM, and links to reuse
        views = pt.find_studies(conn, patient, hospitals=scope, begin=q[hc.STUDY_DATE_BEGIN],
                                end=q[hc.STUDY_DATE_END], study_type=q[hc.STUDY_TYPE],
                                link=pt.LinkAsk(partner.app_id, doctor, t, lifetime))
    links = {(v.hospital_id, v.study_id): pt.link_path(ctx.vault, v.reusable_link, doctor=doctor)
             for v in views if v.reusable_link is not None}
    missing = [(v.hospital_id, v.study_id) for v in views if (v.hospital_id, v.study_id) not in links]
    if missing:
        links.update(ctx.writer.run(lambda conn: pt.mint_links(
            conn, ctx.vault, app_id=partner.app_id, doctor=doctor, keys=missing, now=t, lifetime=lifetime)))
    return [_study(v, links[(v.hospital_id, v.study_id)], partner, settings.public_url) for v in views]


async def patient_studies(ctx: Ctx, partner: Caller, q: Fields) -> list[dict[str, Any]]:
    return await run_in_threadpool(_studies, ctx, partner, q)


_add(hc.PATH_PATIENT_STUDIES, patient_studies, hc.PATIENT_STUDIES_PARAMS, name="patient_studies",
     summary="A patient's studies (§3.1)", methods=("POST", "GET"),
     description="The caller's patient's studies in the hospitals `dataFlag` selects within the partner's "
                 "grant, newest first. Links are patient links (7 days) for usage 0/1, doctor links (24 h) for "
                 "usage 2. Each Study also carries `hospitalId`, which `patientReportUrl` needs.")

# -- §3.3 patientReportUrl ------------------------------------------------------


def _report_url(ctx: HospitalApiContext, partner: Partner, q: dict[str, Any]) -> dict[str, str]:
    settings = ctx.settings
    hospitals = ctx.tenancy.hospitals()
    pt.check_scope(partner, hospitals, hospital_id=q[hc.HOSPITAL_ID], union_id=None)
    patient = pt.Patient.of(ctx.vault, id_num=q[hc.ID_NUM], phone=q[hc.PHONE_NUM], name=None)
    t = ctx.clock()
    lifetime = settings.partner_link_lifetime_s
    with ctx.db.read() as conn:
        report = pt.report_row(conn, report_id=q[hc.REPORT_ID], hospital_id=q[hc.HOSPITAL_ID])
        if report is None:
            raise ContractError(Code.REPORT_NOT_FOUND, f"no report {q[hc.REPORT_ID]!r} in hospital "
                                                       f"{q[hc.HOSPITAL_ID]!r}")
        found = pt.study_view(conn, hospital_id=report.hospital_id, study_id=report.study_id)
        if found is None:
            raise ContractError(Code.STUDY_NOT_FOUND, f"the study of report {q[hc.REPORT_ID]} has not arrived")
        row, view = found
        if row.deleted:
            raise ContractError(Code.REPORT_NOT_FOUND, f"no report {q[hc.REPORT_ID]!r}: its study was deleted")
        if not patient.owns(id_card_hash=row.id_card_hash, phone_hash=row.phone_hash,
                            patient_name=row.patient_name):
            raise ContractError(Code.STUDY_NO_PERMISSION, f"report {q[hc.REPORT_ID]} is not this patient's")
        links = pt.reusable_links(conn, ctx.vault, app_id=partner.app_id, doctor=False, studies=[view], now=t,
                                  lifetime=lifetime)
    key = (view.hospital_id, view.study_id)
    if key not in links:
        links.update(ctx.writer.run(lambda conn: pt.mint_links(
            conn, ctx.vault, app_id=partner.app_id, doctor=False, keys=[key], now=t, lifetime=lifetime)))
    h5, detail = pt.urls(settings.public_url, links[key])
    return {hc.S_H5_URL: h5, hc.S_H5_DETAIL_URL: detail, hc.S_STUDY_ID: view.study_id}


async def patient_report_url(ctx: Ctx, partner: Caller, q: Fields) -> dict[str, str]:
    return await run_in_threadpool(_report_url, ctx, partner, q)


_add(hc.PATH_PATIENT_REPORT_URL, patient_report_url, hc.PATIENT_REPORT_URL_PARAMS, name="patient_report_url",
     summary="Report URL by reportId (§3.3)", methods=("POST", "GET"),
     description="Unknown report: 30003; a report of another patient: 30009.")

# -- §3.2 patientConsultations -------------------------------------------------------


def _consultations_page(ctx: HospitalApiContext, partner: Partner, q: dict[str, Any]) -> dict[str, str]:
    hospitals = ctx.tenancy.hospitals()
    grant = pt.check_scope(partner, hospitals, hospital_id=q[hc.HOSPITAL_ID], union_id=q[hc.UNION_ID])
    patient = pt.Patient.of(ctx.vault, id_num=q[hc.ID_NUM], phone=q[hc.PHONE_NUMBER], name=q.get(hc.PATIENT_NAME))
    t = ctx.clock()
    path = ctx.writer.run(lambda conn: pages.mint(conn, app_id=partner.app_id, patient=patient, hospitals=grant,
                                                  now=t, lifetime=ctx.settings.partner_link_lifetime_s))
    return {hc.S_H5_URL: ctx.settings.public_url.rstrip("/") + path}


async def patient_consultations(ctx: Ctx, partner: Caller, q: Fields) -> dict[str, str]:
    return await run_in_threadpool(_consultations_page, ctx, partner, q)


_add(hc.PATH_PATIENT_CONSULTATIONS, patient_consultations, hc.PATIENT_CONSULTATIONS_PARAMS,
     name="patient_consultations", summary="The patient's consultation page (§3.2)", methods=("POST", "GET"),
     description="`data.h5Url` opens a page listing the patient's remote consultations (status, experts, "
                 "time, conclusion) in the partner's hospitals; it expires like partner links (7 days).")

# -- our consultation API ------------------------------------------------------------


async def actor(ctx: Ctx, partner: Caller) -> consult.Actor:
    """The partner acting on consultations, limited to the hospitals granted to it."""
    hospitals = await run_in_threadpool(ctx.tenancy.hospitals)
    return consult.Actor(partner.app_id, pt.granted_hospitals(partner, hospitals))


ActorDep = Annotated[consult.Actor, Depends(actor)]


async def _read(ctx: HospitalApiContext, fn: Callable[[Connection], Any]) -> Any:
    def read() -> Any:
        with ctx.db.read() as conn:
            return fn(conn)
    return await run_in_threadpool(read)


async def _fetch(ctx: HospitalApiContext, a: consult.Actor, cid: str) -> dict[str, Any]:
    got: dict[str, Any] = await _read(ctx, lambda conn: consult.get(conn, actor=a, consultation_id=cid))
    return got


async def c_create(ctx: Ctx, a: ActorDep, q: Fields) -> dict[str, Any]:
    cid = await ctx.writer.run_async(lambda conn: consult.create(
        conn, actor=a, studies=q[hc.C_STUDIES], expert_ids=q.get(hc.C_EXPERTS, []),
        requesting_doctor_id=q.get(hc.C_REQUESTER), purpose=q.get(hc.C_PURPOSE),
        scheduled_at=q.get(hc.C_SCHEDULED_AT), meeting_url=q.get(hc.C_MEETING_URL),
        max_experts=ctx.config.max_experts, now=ctx.clock()))
    return await _fetch(ctx, a, cid)


async def c_get(ctx: Ctx, a: ActorDep, q: Fields) -> dict[str, Any]:
    return await _fetch(ctx, a, q[hc.C_ID])


async def c_list(ctx: Ctx, a: ActorDep, q: Fields) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await _read(ctx, lambda conn: consult.list_consultations(
        conn, actor=a, hospital_id=q.get(hc.HOSPITAL_ID), status=q.get(hc.C_STATUS)))
    return found


async def c_update(ctx: Ctx, a: ActorDep, q: Fields) -> dict[str, Any]:
    await ctx.writer.run_async(lambda conn: consult.update_consultation(
        conn, actor=a, consultation_id=q[hc.C_ID], expert_ids=q.get(hc.C_EXPERTS), purpose=q.get(hc.C_PURPOSE),
        scheduled_at=q.get(hc.C_SCHEDULED_AT), meeting_url=q.get(hc.C_MEETING_URL),
        max_experts=ctx.config.max_experts, now=ctx.clock()))
    return await _fetch(ctx, a, q[hc.C_ID])


async def c_start(ctx: Ctx, a: ActorDep, q: Fields) -> dict[str, Any]:
    await ctx.writer.run_async(lambda conn: consult.start(conn, actor=a, consultation_id=q[hc.C_ID], now=ctx.clock()))
    return await _fetch(ctx, a, q[hc.C_ID])


async def c_cancel(ctx: Ctx, a: ActorDep, q: Fields) -> dict[str, Any]:
    await ctx.writer.run_async(lambda conn: consult.cancel(conn, actor=a, consultation_id=q[hc.C_ID],
                                                           now=ctx.clock()))
    return await _fetch(ctx, a, q[hc.C_ID])


async def c_conclude(ctx: Ctx, a: ActorDep, q: Fields) -> dict[str, Any]:
    await ctx.writer.run_async(lambda conn: consult.conclude(conn, actor=a, consultation_id=q[hc.C_ID],
                                                             doctor_id=q[hc.C_DOCTOR_ID],
                                                             conclusion=q[hc.C_CONCLUSION], now=ctx.clock()))
    return await _fetch(ctx, a, q[hc.C_ID])


def _verb(verb: str) -> str:
    return hc.PATH_CONSULTATION.replace("{verb}", verb)


_add(_verb("create"), c_create, hc.CONSULTATION_CREATE_PARAMS, name="consultation_create",
     summary="Request a consultation about a patient's studies",
     description="All studies must be of one patient and of hospitals granted to the partner. Giving "
                 "`scheduledAt` makes it scheduled at once. Unknown doctor: 20028; too many experts: 40011.")
_add(_verb("get"), c_get, hc.CONSULTATION_ID_PARAMS, name="consultation_get", summary="One consultation")
_add(_verb("list"), c_list, hc.CONSULTATION_LIST_PARAMS, name="consultation_list",
     summary="Consultations of the partner's hospitals, newest first")
_add(_verb("update"), c_update, hc.CONSULTATION_UPDATE_PARAMS, name="consultation_update",
     summary="Edit or schedule a consultation",
     description="Only before it starts (40008 after). A `scheduledAt` makes it scheduled.")
_add(_verb("start"), c_start, hc.CONSULTATION_ID_PARAMS, name="consultation_start",
     summary="The consultation begins (then it can no longer be edited or cancelled)")
_add(_verb("cancel"), c_cancel, hc.CONSULTATION_ID_PARAMS, name="consultation_cancel",
     summary="Cancel a consultation that has not started (40009 after)")
_add(_verb("conclude"), c_conclude, hc.CONSULTATION_CONCLUDE_PARAMS, name="consultation_conclude",
     summary="An invited expert submits the conclusion, which is then locked (40010 on a second one)")


async def d_add(ctx: Ctx, a: ActorDep, q: Fields) -> dict[str, Any]:
    if q[hc.HOSPITAL_ID] not in (a.grant or set()):
        raise ContractError(Code.NO_PERMISSION, f"hospitalId {q[hc.HOSPITAL_ID]!r} is not granted to this partner")
    await ctx.writer.run_async(lambda conn: consult.add_doctor(
        conn, doctor_id=q[hc.C_DOCTOR_ID], name=q[hc.C_NAME], hospital_id=q[hc.HOSPITAL_ID], title=q.get(hc.C_TITLE),
        dept=q.get(hc.C_DEPT), now=ctx.clock()))
    return {hc.C_DOCTOR_ID: q[hc.C_DOCTOR_ID]}


async def d_list(ctx: Ctx, a: ActorDep, q: Fields) -> list[dict[str, Any]]:
    scope = a.grant or set()
    if q.get(hc.HOSPITAL_ID):
        if q[hc.HOSPITAL_ID] not in scope:
            raise ContractError(Code.NO_PERMISSION, f"hospitalId {q[hc.HOSPITAL_ID]!r} is not granted")
        scope = {q[hc.HOSPITAL_ID]}
    found: list[dict[str, Any]] = await _read(ctx, lambda conn: consult.list_doctors(conn, hospitals=scope))
    return found


_add(hc.PATH_DOCTOR.replace("{verb}", "add"), d_add, hc.DOCTOR_ADD_PARAMS, name="doctor_add",
     summary="Register a doctor of a granted hospital (20027 if the id exists)")
_add(hc.PATH_DOCTOR.replace("{verb}", "list"), d_list, hc.DOCTOR_LIST_PARAMS, name="doctor_list",
     summary="Doctors of the partner's hospitals")

def _study(v: pt.StudyView, path: str, partner: Partner, public_url: str) -> dict[str, Any]:
    h5, detail = pt.urls(public_url, path)
    d = v.details
    return {
        hc.S_HIS_ID: v.his_id or "",
        hc.S_REPORT_ID: v.report_id,
        hc.S_STUDY_TYPE: v.study_type,
        hc.S_STUDY_DATE: v.study_date,
        hc.S_STUDY_ID: v.study_id,
        hc.S_BODY_PART: v.body_part or "",
        hc.S_STUDY_NAME: v.study_name or "",
        **{f: str(d.get(f) or "") for f in hc.RIS_APPLY_FIELDS},
        hc.S_UNI_APP_ID: partner.mini_app_id or "",
        hc.S_UNI_PATH: hc.fill_mini_path(partner.mini_path, report_id=v.report_id, study_id=v.study_id,
                                         hospital_id=v.hospital_id),
        hc.S_H5_URL: h5,
        hc.S_H5_DETAIL_URL: detail,
        hc.HOSPITAL_ID: v.hospital_id,
    }
