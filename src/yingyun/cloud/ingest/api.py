"""POST /sync/v1/* — records and instances forwarded by hospital gateways.

Idempotent: an event id applied once is answered "duplicate" afterwards, so
the gateway's at-least-once delivery becomes exactly-once here. Records are
re-parsed with the vendor's field rules and written by the same archive
writers the gateway used, with the gateway's receipt time.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request
from sqlalchemy import Connection, select
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...archive import records
from ...archive.instances import InstanceStore
from ...archive.part10 import store_part10
from ...contract import gateway_api as g
from ...contract import sync as proto
from ...contract.envelope import ContractError
from ...contract.params import parse
from ...core.crypto import Vault
from ...storage import schema as s
from ...storage.groupcommit import GroupCommit
from ...storage.rawsql import insert_sql
from ...tenancy import Tenancy
from ...web.multipart import MultipartError, Part, RelatedParser, boundary_of

log = logging.getLogger("yingyun.sync")

RECORDS_LIMIT = 64 * 2**20
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sync-ingest")
INSTANCES_LIMIT = 256 * 2**20


@dataclass
class IngestContext:
    tenancy: Tenancy
    vault: Vault
    writer: GroupCommit
    store: InstanceStore
    events: Any  # RecordEvents of the cloud (status callbacks)


def _json(body: dict, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


_MARK = insert_sql("sync_applied", ["event_id", "gateway_id", "kind", "applied_at"], conflict=["event_id"], returning="event_id")


def apply_record(conn: Connection, ctx: IngestContext, *, gateway_id: str, hospital_id: str, record: dict) -> str:
    """Apply one record unless its event id was applied before; returns applied | duplicate."""
    event_id, kind = str(record["eventId"]), record["kind"]
    if _MARK.one(conn, {"event_id": event_id, "gateway_id": gateway_id, "kind": kind, "applied_at": time.time()}) is None:
        return proto.DUPLICATE
    body, at, source = record["body"], float(record.get("receivedAt") or time.time()), record.get("source")
    if kind == proto.STUDY:
        w = records.upsert_study(conn, ctx.vault, hospital_id=hospital_id, record=parse(g.STUDY_FIELDS, body),
                                 source=source, received_at=at)
        ctx.events.study_written(conn, hospital_id=hospital_id, study_pk=w.pk, action=w.action)
    elif kind == proto.REPORT:
        rec = parse(g.REPORT_FIELDS, body)
        pk, _ = records.upsert_report(conn, ctx.vault, hospital_id=hospital_id, record=rec, source=source, received_at=at)
        ctx.events.report_written(conn, hospital_id=hospital_id, report_pk=pk, study_id=rec.values[g.STUDY_ID])
    elif kind == proto.DELETE:
        rec = parse(g.DELETE_FIELDS, body)
        if records.delete_study(conn, ctx.vault, hospital_id=hospital_id, record=rec, source=source, received_at=at):
            ctx.events.study_deleted(conn, hospital_id=hospital_id, study_id=rec.values[g.STUDY_ID])
    elif kind == proto.RECONCILE:
        rec = parse(g.RECONCILE_FIELDS, body)
        records.add_reconcile_log(conn, ctx.vault, hospital_id=hospital_id, kind="study", entries=[rec], raw=body,
                                  source=source, received_at=at)
    elif kind == proto.RECONCILE_RANGE:
        head = parse(g.RANGE_FIELDS, body)
        entries = [parse(g.STUDY_LOG_FIELDS, e, where=f"{g.STUDY_LIST}[{i}]") for i, e in enumerate(body[g.STUDY_LIST])]
        records.add_reconcile_log(conn, ctx.vault, hospital_id=hospital_id, kind="range", entries=entries, raw=body,
                                  source=source, start_time=head.values[g.START_TIME], end_time=head.values[g.END_TIME],
                                  received_at=at)
    elif kind == proto.LINK:
        _apply_link(conn, hospital_id=hospital_id, body=body, source=source, at=at)
    else:
        raise ValueError(f"unknown record kind {kind!r}")
    return proto.APPLIED


def _apply_link(conn: Connection, *, hospital_id: str, body: dict, source: str | None, at: float) -> None:
    from sqlalchemy import update

    from ...archive.links import qr_slot

    l = s.links
    token_hash = str(body["tokenHash"])
    if len(token_hash) != 64:
        raise ValueError("tokenHash must be a SHA-256 hex digest")
    existing = conn.execute(select(l.c.pk, l.c.revoked_at).where(l.c.token_hash == token_hash)).first()
    if existing is None:
        conn.execute(l.insert().values(
            token_hash=token_hash, token_enc=None, kind="qr", hospital_id=hospital_id, study_id=str(body["studyId"]),
            slot=None if body.get("revokedAt") else qr_slot(hospital_id, str(body["studyId"])), created_by=source,
            created_at=at, expires_at=body.get("expiresAt"), revoked_at=body.get("revokedAt")))
    elif body.get("revokedAt") and existing.revoked_at is None:
        # The cloud is the authority on revocation: a revoke sticks, an un-revoke never arrives this way.
        conn.execute(update(l).where(l.c.pk == existing.pk).values(revoked_at=body["revokedAt"], slot=None))


def router(ctx: IngestContext) -> APIRouter:
    r = APIRouter(tags=["Gateway sync (ours)"], include_in_schema=True)

    async def authenticate(request: Request, limit: int) -> tuple[str, str, bytes] | Response:
        gateway_id = request.headers.get(proto.H_GATEWAY, "")
        gw = ctx.tenancy.gateway(gateway_id) if gateway_id else None
        if gw is None:
            return _json({"error": "unknown gateway"}, 401)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return _json({"error": f"body over the {limit // 2**20} MiB limit"}, 413)
        body = await request.body()
        if len(body) > limit:
            return _json({"error": f"body over the {limit // 2**20} MiB limit"}, 413)
        problem = proto.verify(key=gw[1], gateway_id=gateway_id, timestamp=request.headers.get(proto.H_TIMESTAMP),
                               signature=request.headers.get(proto.H_SIGNATURE), body=body)
        if problem:
            return _json({"error": problem}, 401)
        return gateway_id, gw[0], body

    @r.post(proto.PATH_HELLO, summary="Check a gateway's credentials")
    async def hello(request: Request):
        auth = await authenticate(request, 2**16)
        if isinstance(auth, Response):
            return auth
        return _json({"gatewayId": auth[0], "hospitalId": auth[1]})

    @r.post(proto.PATH_RECORDS, summary="Records forwarded by a gateway")
    async def post_records(request: Request):
        auth = await authenticate(request, RECORDS_LIMIT)
        if isinstance(auth, Response):
            return auth
        gateway_id, hospital_id, body = auth
        try:
            items = orjson.loads(body)["records"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            items = None
        if not (isinstance(items, list) and all(isinstance(i, dict) and "eventId" in i and "kind" in i for i in items)):
            return _json({"error": "expected {\"records\": [{eventId, kind, body, ...}]}"}, 400)
        results = []
        for item in items:  # one at a time: records of a study must apply in order
            try:
                status = await ctx.writer.run_async(
                    lambda conn, item=item: apply_record(conn, ctx, gateway_id=gateway_id, hospital_id=hospital_id, record=item))
                results.append({"eventId": item["eventId"], "status": status})
            except (ContractError, ValueError, KeyError, TypeError) as e:
                detail = e.message if isinstance(e, ContractError) else str(e)
                log.warning("sync record %s from %s rejected: %s", item.get("kind"), gateway_id, type(e).__name__)
                results.append({"eventId": item["eventId"], "status": proto.REJECTED, "error": detail})
            except Exception:
                log.exception("sync record from %s could not be stored", gateway_id)
                return _json({"error": "the cloud could not store the records; retry later", "results": results}, 503)
        return _json({"results": results})

    @r.post(proto.PATH_INSTANCES, summary="Instances forwarded by a gateway (multipart/related DICOM)")
    async def post_instances(request: Request):
        auth = await authenticate(request, INSTANCES_LIMIT)
        if isinstance(auth, Response):
            return auth
        gateway_id, hospital_id, body = auth
        try:
            parser = RelatedParser(boundary_of(request.headers.get("content-type")), max_bytes=INSTANCES_LIMIT)
        except MultipartError as e:
            return _json({"error": str(e)}, 400)

        def store_one(part: Part) -> dict:
            result = store_part10(ctx.store, hospital_id=hospital_id, data=part.content(), source_ae=None)
            status = (proto.DUPLICATE if result.outcome == "duplicate" else proto.APPLIED) if result.status == 0 \
                else proto.REJECTED
            item = {"eventId": part.headers.get("content-id", "").strip("<>"), "status": status}
            if result.status != 0:
                item["error"] = f"0x{result.status:04X} {result.reason}"
            return item

        def store_all(parts: list[Part]) -> list[dict]:
            # Side by side, like a PACS's parallel associations: file fsyncs
            # overlap and the index rows share group commits.
            return list(_POOL.map(store_one, parts))

        try:
            try:
                parser.feed(body)
                parts = parser.finish()
            except MultipartError as e:
                return _json({"error": str(e)}, 400)
            results = await run_in_threadpool(store_all, parts)
        finally:
            parser.close()
        if any(i["status"] == proto.REJECTED and i["error"].startswith(("0xA700", "0x0110")) for i in results):
            # out of resources or the index failed: not the data's fault, the gateway must retry
            return _json({"error": "the cloud could not store every instance; retry later", "results": results}, 503)
        return _json({"results": results})

    return r
