"""The hospital gateway JSON API (/ris/*, contract §2).

Each call: authenticate (signature, before the body is read), read the body
under the route's limit, apply the A/B/C rules, then write in one
transaction. A partner that sends RIS data must be granted exactly one
hospital: what it sends belongs to that hospital, and while that hospital
is disabled every call is code 20010.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.concurrency import run_in_threadpool

from ..archive import links as link_store
from ..archive import records
from ..contract import gateway_api as g
from ..contract.codes import Code
from ..contract.envelope import ContractError, envelope, ok
from ..contract.params import parse
from ..core.links import qr_png, study_url
from ..core.logging import quoted
from ..web.auth import SIGNATURE_SCHEMES, SIGNED, authenticate
from ..web.common import json_response, parse_json, read_body
from .context import GatewayContext

log = logging.getLogger("yingyun.ris")


def router(ctx: GatewayContext) -> APIRouter:
    r = APIRouter(tags=["Hospital gateway (RIS)"])

    async def handle(request: Request, limit: int, route: "Route"):
        partner = await authenticate(request, ctx.tenancy, window_s=ctx.settings.signature_window_s)
        if len(partner.hospitals) != 1:
            raise ContractError(
                Code.NO_PERMISSION,
                f"partner {partner.app_id} must be granted exactly one hospital to send RIS data "
                f"(it has {len(partner.hospitals)})",
            )
        (hospital_id,) = partner.hospitals
        hospitals = ctx.tenancy.cached_hospitals() or await run_in_threadpool(ctx.tenancy.hospitals)
        if not hospitals.get(hospital_id, {}).get("enabled"):
            # The partner acts for its hospital: when the operator disables the hospital, so is the partner.
            raise ContractError(Code.USER_DISABLED, f"hospital {hospital_id} is disabled: it takes no data")
        body = parse_json(await read_body(request, limit), request.scope["path"])
        prepared = route.prepare(body)
        key = route.key(hospital_id, prepared) if route.key else None
        data = await ctx.writer.run_async(lambda conn: route.write(conn, hospital_id, partner.app_id, prepared), key=key)
        if isinstance(data, _Committed):
            log.info(data.message, *data.args)
            data = None
        if route.finish is not None:
            data = await run_in_threadpool(route.finish, data)
        request.scope["state"]["code"] = 0
        return json_response(ok(data))

    def study_write(conn, hospital_id: str, source: str, record) -> "_Committed":
        w = records.upsert_study(conn, ctx.vault, hospital_id=hospital_id, record=record, source=source)
        ctx.events.study_written(conn, hospital_id=hospital_id, study_pk=w.pk, action=w.action)
        return _Committed("study %s hospital=%s studyId=%s v%d warnings=%d", (
            w.action, hospital_id, quoted(record.values[g.STUDY_ID]), w.version, len(record.warnings)))

    def report_write(conn, hospital_id: str, source: str, record) -> "_Committed":
        pk, version = records.upsert_report(conn, ctx.vault, hospital_id=hospital_id, record=record, source=source)
        ctx.events.report_written(conn, hospital_id=hospital_id, report_pk=pk, study_id=record.values[g.STUDY_ID])
        return _Committed("report hospital=%s reportNumber=%s v%d", (hospital_id, quoted(record.values[g.REPORT_NUMBER]), version))

    def qr_write(conn, hospital_id: str, source: str, record) -> str:
        study_id = record.values[g.STUDY_ID]
        row = records.study_row(conn, hospital_id=hospital_id, study_id=study_id)
        if row is not None and row.deleted:
            raise ContractError(Code.DATA_NOT_FOUND, f"study {study_id!r} was deleted")
        token = link_store.get_or_create_qr_token(conn, ctx.vault, hospital_id=hospital_id, study_id=study_id,
                                                  created_by=source)
        ctx.events.link_written(conn, hospital_id=hospital_id, study_id=study_id)
        return study_url(ctx.settings.public_url, token)

    def qr_finish(url: str) -> dict:
        # PNG encoding is CPU work: done after the commit, off the event loop.
        return {g.QR_IMAGE: base64.b64encode(qr_png(url)).decode("ascii"), g.QR_URL: url}

    def delete_write(conn, hospital_id: str, source: str, record) -> "_Committed":
        changed = records.delete_study(conn, ctx.vault, hospital_id=hospital_id, record=record, source=source)
        if changed:
            ctx.events.study_deleted(conn, hospital_id=hospital_id, study_id=record.values[g.STUDY_ID])
        return _Committed("study delete hospital=%s studyId=%s changed=%s", (hospital_id, quoted(record.values[g.STUDY_ID]), changed))

    def reconcile_write(conn, hospital_id: str, source: str, record) -> None:
        log_pk = records.add_reconcile_log(conn, ctx.vault, hospital_id=hospital_id, kind="study", entries=[record],
                                           raw=record.raw, source=source)
        ctx.events.reconcile_written(conn, hospital_id=hospital_id, log_pk=log_pk)

    def range_prepare(body: Any):
        head = parse(g.RANGE_FIELDS, body)
        study_list = body.get(g.STUDY_LIST)
        if study_list is None:
            raise ContractError(Code.PARAM_ERROR, f"missing required field(s): {g.STUDY_LIST}")
        if not isinstance(study_list, list):
            raise ContractError(Code.PARAM_ERROR, f"{g.STUDY_LIST} must be an array of StudyLog")
        entries = [parse(g.STUDY_LOG_FIELDS, item, where=f"{g.STUDY_LIST}[{i}]") for i, item in enumerate(study_list)]
        return head, entries

    def range_write(conn, hospital_id: str, source: str, prepared) -> None:
        head, entries = prepared
        log_pk = records.add_reconcile_log(conn, ctx.vault, hospital_id=hospital_id, kind="range", entries=entries,
                                           raw=head.raw, source=source, start_time=head.values[g.START_TIME],
                                           end_time=head.values[g.END_TIME])
        ctx.events.reconcile_written(conn, hospital_id=hospital_id, log_pk=log_pk)

    def fields(table):
        return lambda body: parse(table, body)

    def by_study(hospital_id: str, record) -> str:
        return f"{hospital_id}/{record.values[g.STUDY_ID]}"

    routes = [
        Route(g.PATH_STUDY_ADD, g.RECORD_BODY_LIMIT, fields(g.STUDY_FIELDS), study_write, None, "study_add",
              "Study information (upsert by hospital + studyId)", by_study),
        Route(g.PATH_REPORT_ADD, g.RECORD_BODY_LIMIT, fields(g.REPORT_FIELDS), report_write, None, "report_add",
              "Report (upsert by hospital + reportNumber)", by_study),
        Route(g.PATH_STUDY_QR, g.RECORD_BODY_LIMIT, fields(g.QR_FIELDS), qr_write, qr_finish, "get_study_qr",
              "Cloud-film QR code for a study", by_study),
        Route(g.PATH_STUDY_DELETE, g.RECORD_BODY_LIMIT, fields(g.DELETE_FIELDS), delete_write, None, "study_delete",
              "Soft-delete a study", by_study),
        Route(g.PATH_RECONCILE, g.RECORD_BODY_LIMIT, fields(g.RECONCILE_FIELDS), reconcile_write, None, "reconcile",
              "Per-study reconciliation log"),
        Route(g.PATH_RECONCILE_RANGE, g.RANGE_BODY_LIMIT, range_prepare, range_write, None, "reconcile_range",
              "Studies uploaded in a period"),
    ]
    for route in routes:
        # The body is read by hand (signature first), so FastAPI is told its model, not given it.
        r.add_api_route(route.path, _endpoint(handle, route.limit, route), methods=["POST"], summary=route.summary,
                        name=route.name, response_model=g.QrEnvelope if route.path == g.PATH_STUDY_QR else g.Envelope,
                        openapi_extra=_signed_openapi(g.REQUEST_MODELS[route.path]))
    return r


@dataclass(frozen=True)
class _Committed:
    """What a write returns to have a line logged once its transaction committed: the
    log record is made on the request's side, not inside the group commit, where
    formatting it lengthened every batch (answer data: none)."""
    message: str
    args: tuple


@dataclass(frozen=True)
class Route:
    path: str
    limit: int
    prepare: Callable[[Any], Any]  # A/B/C rules, before any database work
    write: Callable[..., Any]  # runs inside the group-committed transaction
    finish: Callable[[Any], Any] | None  # after the commit (e.g. drawing the QR code)
    name: str
    summary: str
    key: Callable[[str, Any], str] | None = None  # writes with one key are never concurrent


def _endpoint(handle, limit: int, route: Route):
    async def endpoint(request: Request):
        try:
            return await handle(request, limit, route)
        except ContractError:
            raise
        except Exception:
            # Rendered here, not by the server-error middleware, so the
            # vendor's clients get HTTP 200 with code 1 and the request id.
            rid = request.scope.get("state", {}).get("request_id", "-")
            log.exception("unexpected fault in %s (request %s)", route.name, rid)
            request.scope["state"]["code"] = int(Code.INTERNAL_ERROR)
            return json_response(envelope(Code.INTERNAL_ERROR, f"internal error, request id {rid}"))

    endpoint.__name__ = route.name
    return endpoint


def _signed_openapi(body: type[BaseModel]) -> dict:
    return {
        "security": [SIGNED],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{body.__name__}"}}}},
    }


def openapi_components() -> dict[str, dict[str, Any]]:
    """What the /ris/* operations name by $ref: their body models and the signature headers."""
    _, defs = models_json_schema([(m, "validation") for m in g.REQUEST_MODELS.values()],
                                 ref_template="#/components/schemas/{model}")
    return {"schemas": defs["$defs"], "securitySchemes": SIGNATURE_SCHEMES}
