"""The hospital gateway JSON API (/ris/*, contract §2).

Each call: authenticate (signature, before the body is read), read the body
under the route's limit, apply the A/B/C rules, then write in one
transaction (`archive.accept`, which the cloud's sync ingest uses too). A
partner that sends RIS data must be granted exactly one hospital: what it
sends belongs to that hospital, and while that hospital is disabled every
call is code 20010. The envelope and every refusal are rendered by
`web.vendor.VendorRoute`; the handlers' collaborators come from the app's
`GatewayContext` (`app.state.gateway`, filled by the composition root).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from ..archive import accept
from ..archive import links as link_store
from ..archive import records
from ..contract import gateway_api as g
from ..contract.codes import Code
from ..contract.envelope import ContractError
from ..contract.params import Record, parse
from ..core.links import qr_png, study_url
from ..core.logging import quoted
from ..web.auth import SIGNATURE_SCHEMES, SIGNED, authenticate
from ..web.vendor import VendorRoute, json_body
from .context import GatewayContext

log = logging.getLogger("yingyun.ris")

router = APIRouter(tags=["Hospital gateway (RIS)"], route_class=VendorRoute)


def gateway_context(request: Request) -> GatewayContext:
    ctx: GatewayContext = request.app.state.gateway
    return ctx


Ctx = Annotated[GatewayContext, Depends(gateway_context)]


@dataclass(frozen=True)
class Sender:
    """Who sends RIS data (the signing partner's appId) and for which hospital."""

    app_id: str
    hospital_id: str


async def sender(request: Request, ctx: Ctx) -> Sender:
    partner = await authenticate(request, ctx.tenancy, window_s=ctx.settings.signature_window_s)
    if len(partner.hospitals) != 1:
        raise ContractError(
            Code.NO_PERMISSION,
            f"partner {partner.app_id} must be granted exactly one hospital to send RIS data "
            f"(it has {len(partner.hospitals)})",
        )
    (hospital_id,) = partner.hospitals
    hospitals = ctx.tenancy.cached_hospitals()
    if hospitals is None:  # stale: looked up off the event loop
        hospitals = await run_in_threadpool(ctx.tenancy.hospitals)
    if not hospitals.get(hospital_id, {}).get("enabled"):
        # The partner acts for its hospital: when the operator disables the hospital, so is the partner.
        raise ContractError(Code.USER_DISABLED, f"hospital {hospital_id} is disabled: it takes no data")
    return Sender(partner.app_id, hospital_id)


SenderDep = Annotated[Sender, Depends(sender)]


# The body is read once the sender is known (the dependency on it orders them).
async def record_body(request: Request, _: SenderDep) -> Any:
    return await json_body(request, g.RECORD_BODY_LIMIT)


async def range_body(request: Request, _: SenderDep) -> Any:
    return await json_body(request, g.RANGE_BODY_LIMIT)


RecordBody = Annotated[Any, Depends(record_body)]
RangeBody = Annotated[Any, Depends(range_body)]


@dataclass(frozen=True)
class _Committed:
    """What a write returns to have a line logged once its transaction committed: the
    log record is made on the request's side, not inside the group commit, where
    formatting it lengthened every batch."""
    message: str
    args: tuple[object, ...]


async def _write(ctx: GatewayContext, write: Callable[[Connection], Any], *, key: str | None = None) -> Any:
    """`write` in the group-committed transaction (writes with one key are never concurrent)."""
    done = await ctx.writer.run_async(write, key=key)
    if isinstance(done, _Committed):
        log.info(done.message, *done.args)
        return None
    return done


def _by_study(s: Sender, record: Record) -> str:
    return f"{s.hospital_id}/{record.values[g.STUDY_ID]}"


def _signed_openapi(body: type[BaseModel]) -> dict[str, Any]:
    return {
        "security": [SIGNED],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{body.__name__}"}}}},
    }


def _route(path: str, name: str, summary: str) -> dict[str, Any]:
    # The body is read by hand (signature first), so FastAPI is told its model, not given it.
    return {"path": path, "name": name, "summary": summary,
            "response_model": g.QrEnvelope if path == g.PATH_STUDY_QR else g.Envelope,
            "openapi_extra": _signed_openapi(g.REQUEST_MODELS[path])}


@router.post(**_route(g.PATH_STUDY_ADD, "study_add", "Study information (upsert by hospital + studyId)"))
async def study_add(ctx: Ctx, s: SenderDep, body: RecordBody) -> None:
    record = parse(g.STUDY_FIELDS, body)

    def write(conn: Connection) -> _Committed:
        w = accept.accept_study(conn, vault=ctx.vault, hospital_id=s.hospital_id, record=record, source=s.app_id,
                                events=ctx.events)
        return _Committed("study %s hospital=%s studyId=%s v%d warnings=%d", (
            w.action, s.hospital_id, quoted(record.values[g.STUDY_ID]), w.version, len(record.warnings)))

    await _write(ctx, write, key=_by_study(s, record))


@router.post(**_route(g.PATH_REPORT_ADD, "report_add", "Report (upsert by hospital + reportNumber)"))
async def report_add(ctx: Ctx, s: SenderDep, body: RecordBody) -> None:
    record = parse(g.REPORT_FIELDS, body)

    def write(conn: Connection) -> _Committed:
        _, version = accept.accept_report(conn, vault=ctx.vault, hospital_id=s.hospital_id, record=record,
                                          source=s.app_id, events=ctx.events)
        return _Committed("report hospital=%s reportNumber=%s v%d", (
            s.hospital_id, quoted(record.values[g.REPORT_NUMBER]), version))

    await _write(ctx, write, key=_by_study(s, record))


@router.post(**_route(g.PATH_STUDY_QR, "get_study_qr", "Cloud-film QR code for a study"))
async def get_study_qr(ctx: Ctx, s: SenderDep, body: RecordBody) -> dict[str, str]:
    record = parse(g.QR_FIELDS, body)
    study_id = record.values[g.STUDY_ID]

    def write(conn: Connection) -> str:
        row = records.study_row(conn, hospital_id=s.hospital_id, study_id=study_id)
        if row is not None and row.deleted:
            raise ContractError(Code.DATA_NOT_FOUND, f"study {study_id!r} was deleted")
        token = link_store.get_or_create_qr_token(conn, ctx.vault, hospital_id=s.hospital_id, study_id=study_id,
                                                  created_by=s.app_id)
        ctx.events.link_written(conn, hospital_id=s.hospital_id, study_id=study_id)
        return study_url(ctx.settings.public_url, token)

    url: str = await _write(ctx, write, key=_by_study(s, record))
    # PNG encoding is CPU work: done after the commit, off the event loop.
    return await run_in_threadpool(_qr_answer, url)


def _qr_answer(url: str) -> dict[str, str]:
    return {g.QR_IMAGE: base64.b64encode(qr_png(url)).decode("ascii"), g.QR_URL: url}


@router.post(**_route(g.PATH_STUDY_DELETE, "study_delete", "Soft-delete a study"))
async def study_delete(ctx: Ctx, s: SenderDep, body: RecordBody) -> None:
    record = parse(g.DELETE_FIELDS, body)

    def write(conn: Connection) -> _Committed:
        changed = accept.accept_delete(conn, vault=ctx.vault, hospital_id=s.hospital_id, record=record,
                                       source=s.app_id, events=ctx.events)
        return _Committed("study delete hospital=%s studyId=%s changed=%s", (
            s.hospital_id, quoted(record.values[g.STUDY_ID]), changed))

    await _write(ctx, write, key=_by_study(s, record))


@router.post(**_route(g.PATH_RECONCILE, "reconcile", "Per-study reconciliation log"))
async def reconcile(ctx: Ctx, s: SenderDep, body: RecordBody) -> None:
    record = parse(g.RECONCILE_FIELDS, body)
    await _write(ctx, lambda conn: accept.accept_reconcile(
        conn, vault=ctx.vault, hospital_id=s.hospital_id, record=record, source=s.app_id, events=ctx.events))


@router.post(**_route(g.PATH_RECONCILE_RANGE, "reconcile_range", "Studies uploaded in a period"))
async def reconcile_range(ctx: Ctx, s: SenderDep, body: RangeBody) -> None:
    head, entries = g.parse_range(body)
    await _write(ctx, lambda conn: accept.accept_range(
        conn, vault=ctx.vault, hospital_id=s.hospital_id, head=head, entries=entries, source=s.app_id,
        events=ctx.events))


def openapi_components() -> dict[str, dict[str, Any]]:
    """What the /ris/* operations name by $ref: their body models and the signature headers."""
    _, defs = models_json_schema([(m, "validation") for m in g.REQUEST_MODELS.values()],
                                 ref_template="#/components/schemas/{model}")
    return {"schemas": defs["$defs"], "securitySchemes": SIGNATURE_SCHEMES}
