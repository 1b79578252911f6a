"""The hospital gateway JSON API (/ris/*, contract §2).

Each call: authenticate (signature, before the body is read), read the body
under the route's limit, apply the A/B/C rules, then write in one
transaction. A partner that sends RIS data must be granted exactly one
hospital: what it sends belongs to that hospital.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from ..archive import links as link_store
from ..archive import records
from ..contract import gateway_api as g
from ..contract.codes import Code
from ..contract.envelope import ContractError, envelope, ok
from ..contract.params import parse
from ..core.links import qr_png, study_url
from ..web.auth import authenticate
from ..web.common import json_response, parse_json, read_body
from .context import GatewayContext

log = logging.getLogger("yingyun.ris")


def router(ctx: GatewayContext) -> APIRouter:
    r = APIRouter(tags=["Hospital gateway (RIS)"])

    async def handle(request: Request, limit: int, work: Callable[[str, str, Any], Any]):
        partner = await authenticate(request, ctx.tenancy, window_s=ctx.settings.signature_window_s)
        if len(partner.hospitals) != 1:
            raise ContractError(
                Code.NO_PERMISSION,
                f"partner {partner.app_id} must be granted exactly one hospital to send RIS data "
                f"(it has {len(partner.hospitals)})",
            )
        (hospital_id,) = partner.hospitals
        body = parse_json(await read_body(request, limit), request.url.path)
        data = await run_in_threadpool(work, hospital_id, partner.app_id, body)
        request.scope["state"]["code"] = 0
        return json_response(ok(data))

    def study_add(hospital_id: str, source: str, body: Any) -> None:
        record = parse(g.STUDY_FIELDS, body)
        with ctx.db.write() as conn:
            w = records.upsert_study(conn, ctx.vault, hospital_id=hospital_id, record=record, source=source)
            ctx.events.study_written(conn, hospital_id=hospital_id, study_pk=w.pk, action=w.action)
        log.info("study %s hospital=%s studyId=%s v%d warnings=%d", w.action, hospital_id,
                 record.values["studyId"], w.version, len(record.warnings))

    def report_add(hospital_id: str, source: str, body: Any) -> None:
        record = parse(g.REPORT_FIELDS, body)
        with ctx.db.write() as conn:
            pk, version = records.upsert_report(conn, ctx.vault, hospital_id=hospital_id, record=record, source=source)
            ctx.events.report_written(conn, hospital_id=hospital_id, report_pk=pk, study_id=record.values["studyId"])
        log.info("report hospital=%s reportNumber=%s v%d", hospital_id, record.values["reportNumber"], version)

    def study_qr(hospital_id: str, source: str, body: Any) -> dict:
        record = parse(g.QR_FIELDS, body)
        study_id = record.values["studyId"]
        with ctx.db.write() as conn:
            row = records.study_row(conn, hospital_id=hospital_id, study_id=study_id)
            if row is not None and row.deleted:
                raise ContractError(Code.DATA_NOT_FOUND, f"study {study_id!r} was deleted")
            token = link_store.get_or_create_qr_token(conn, ctx.vault, hospital_id=hospital_id, study_id=study_id,
                                                      created_by=source)
            ctx.events.link_written(conn, hospital_id=hospital_id, study_id=study_id)
        url = study_url(ctx.settings.public_url, token)
        return {g.QR_IMAGE: base64.b64encode(qr_png(url)).decode("ascii"), g.QR_URL: url}

    def study_delete(hospital_id: str, source: str, body: Any) -> None:
        record = parse(g.DELETE_FIELDS, body)
        with ctx.db.write() as conn:
            changed = records.delete_study(conn, ctx.vault, hospital_id=hospital_id, record=record, source=source)
            if changed:
                ctx.events.study_deleted(conn, hospital_id=hospital_id, study_id=record.values["studyId"])
        log.info("study delete hospital=%s studyId=%s changed=%s", hospital_id, record.values["studyId"], changed)

    def reconcile(hospital_id: str, source: str, body: Any) -> None:
        record = parse(g.RECONCILE_FIELDS, body)
        with ctx.db.write() as conn:
            records.add_reconcile_log(conn, ctx.vault, hospital_id=hospital_id, kind="study", entries=[record],
                                      raw=body, source=source)

    def reconcile_range(hospital_id: str, source: str, body: Any) -> None:
        head = parse(g.RANGE_FIELDS, body)
        study_list = body.get("studyList")
        if study_list is None:
            raise ContractError(Code.PARAM_ERROR, "missing required field(s): studyList")
        if not isinstance(study_list, list):
            raise ContractError(Code.PARAM_ERROR, "studyList must be an array of StudyLog")
        entries = [parse(g.STUDY_LOG_FIELDS, item, where=f"studyList[{i}]") for i, item in enumerate(study_list)]
        with ctx.db.write() as conn:
            records.add_reconcile_log(conn, ctx.vault, hospital_id=hospital_id, kind="range", entries=entries, raw=body,
                                      source=source, start_time=head.values["startTime"], end_time=head.values["endTime"])

    routes = [
        (g.PATH_STUDY_ADD, g.RECORD_BODY_LIMIT, study_add, "Study information (upsert by hospital + studyId)"),
        (g.PATH_REPORT_ADD, g.RECORD_BODY_LIMIT, report_add, "Report (upsert by hospital + reportNumber)"),
        (g.PATH_STUDY_QR, g.RECORD_BODY_LIMIT, study_qr, "Cloud-film QR code for a study"),
        (g.PATH_STUDY_DELETE, g.RECORD_BODY_LIMIT, study_delete, "Soft-delete a study"),
        (g.PATH_RECONCILE, g.RECORD_BODY_LIMIT, reconcile, "Per-study reconciliation log"),
        (g.PATH_RECONCILE_RANGE, g.RANGE_BODY_LIMIT, reconcile_range, "Studies uploaded in a period"),
    ]
    for path, limit, work, summary in routes:
        r.add_api_route(path, _endpoint(handle, limit, work), methods=["POST"], summary=summary, name=work.__name__,
                        openapi_extra=_signed_openapi())
    return r


def _endpoint(handle, limit: int, work):
    async def endpoint(request: Request):
        try:
            return await handle(request, limit, work)
        except ContractError:
            raise
        except Exception:
            # Rendered here, not by the server-error middleware, so the
            # vendor's clients get HTTP 200 with code 1 and the request id.
            rid = request.scope.get("state", {}).get("request_id", "-")
            log.exception("unexpected fault in %s (request %s)", work.__name__, rid)
            request.scope["state"]["code"] = int(Code.INTERNAL_ERROR)
            return json_response(envelope(Code.INTERNAL_ERROR, f"internal error, request id {rid}"))

    endpoint.__name__ = work.__name__
    return endpoint


def _signed_openapi() -> dict:
    return {
        "parameters": [
            {"name": "appId", "in": "header", "required": True, "schema": {"type": "string"}},
            {"name": "timestamp", "in": "header", "required": True, "schema": {"type": "string"},
             "description": "milliseconds since the Unix epoch"},
            {"name": "signature", "in": "header", "required": True, "schema": {"type": "string"},
             "description": "hex HMAC-SHA256(token, appId + timestamp)"},
        ],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
    }
