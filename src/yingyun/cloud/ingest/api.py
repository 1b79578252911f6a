"""POST /sync/v1/* — records and instances forwarded by hospital gateways.

Idempotent: an event id applied once is answered "duplicate" afterwards, so
the gateway's at-least-once delivery becomes exactly-once here. Records are
re-parsed with the vendor's field rules and accepted by the path `/ris/*`
takes (`archive.accept`), with the gateway's receipt time. A request refused
as a whole raises `Refused` (its HTTP status and words), which `SyncRoute`
answers; the handlers' collaborators come from `app.state.ingest`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.routing import APIRoute
from sqlalchemy import Connection, select
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...archive import accept
from ...archive.downlink import offer_down
from ...archive.events import RecordEvents
from ...archive.instances import InstanceStore, meta_length
from ...archive.part10 import store_part10
from ...archive.scrub import damaged_instances
from ...archive.retention import RETENTION, Held, Purged, Purger, StudyKey, hold, lift
from ...contract import gateway_api as g
from ...contract import sync as proto
from ...contract.envelope import ContractError
from ...contract.params import parse
from ...core.crypto import Vault
from ...dicomnet.status import Status
from ...core.errors import YingyunError
from ...storage import schema as s
from ...storage.blobs import BlobNotFound
from ...storage.groupcommit import GroupCommit
from ...storage.rawsql import insert_sql
from ...tenancy import Tenancy
from ...web.multipart import BodyTooLarge, MultipartError, Part, RelatedParser, boundary_of
from ...web.vendor import RIS, vendor_message

log = logging.getLogger("yingyun.sync")

RECORDS_LIMIT = 64 * 2**20
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sync-ingest")
# A body that does not declare its digest is signed only at its end, so it is
# spooled unauthenticated: gateways of before H_CONTENT_SHA256 keep their old limit.
LEGACY_INSTANCES_LIMIT = 256 * 2**20
# Refusals that are not the data's fault (out of resources, the index write
# failed): the gateway must send the instance again later.
_RETRY_LATER = frozenset({Status.OUT_OF_RESOURCES, Status.PROCESSING_FAILURE})


@dataclass
class IngestContext:
    tenancy: Tenancy
    vault: Vault
    writer: GroupCommit
    store: InstanceStore
    events: RecordEvents  # the cloud's (status callbacks)
    max_instance_bytes: int = 4 * 2**30  # the largest instance batch a gateway may upload
    spool_dir: Path | None = None  # where parts too large for memory wait to be stored
    purger: Purger | None = None  # applies the gateways' retention purges


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


_MARK = insert_sql("sync_applied", ["event_id", "gateway_id", "kind", "applied_at"], conflict=["event_id"],
                   returning="event_id")


def apply_record(conn: Connection, ctx: IngestContext, *, gateway_id: str, hospital_id: str,
                 record: proto.Record, purged: list[Purged]) -> proto.ItemStatus:
    """Apply one record unless its event id was applied before; returns applied | duplicate. A study it purges
    is added to `purged`, whose blobs go once the transaction is committed."""
    event_id, kind = record["eventId"], record["kind"]
    mark = {"event_id": event_id, "gateway_id": gateway_id, "kind": kind, "applied_at": time.time()}
    if _MARK.one(conn, mark) is None:
        return proto.DUPLICATE
    body, at, source = record["body"], float(record.get("receivedAt") or time.time()), record.get("source")
    v = ctx.vault
    if kind == proto.STUDY:
        accept.accept_study(conn, vault=v, hospital_id=hospital_id, record=parse(g.STUDY_FIELDS, body), source=source,
                            events=ctx.events, received_at=at)
    elif kind == proto.REPORT:
        accept.accept_report(conn, vault=v, hospital_id=hospital_id, record=parse(g.REPORT_FIELDS, body),
                             source=source, events=ctx.events, received_at=at)
    elif kind == proto.DELETE:
        accept.accept_delete(conn, vault=v, hospital_id=hospital_id, record=parse(g.DELETE_FIELDS, body),
                             source=source, events=ctx.events, received_at=at)
    elif kind == proto.RECONCILE:
        accept.accept_reconcile(conn, vault=v, hospital_id=hospital_id, record=parse(g.RECONCILE_FIELDS, body),
                                source=source, events=ctx.events, received_at=at)
    elif kind == proto.RECONCILE_RANGE:
        head, entries = g.parse_range(body)
        accept.accept_range(conn, vault=v, hospital_id=hospital_id, head=head, entries=entries, source=source,
                            events=ctx.events, received_at=at)
    elif kind == proto.LINK:
        _apply_link(conn, hospital_id=hospital_id, body=body, source=source, at=at)
    elif kind == proto.PURGE:
        done = _apply_purge(conn, ctx, gateway_id=gateway_id, hospital_id=hospital_id, body=body)
        if done is not None:
            purged.append(done)
    elif kind == proto.HOLD:
        if bool(body["held"]):
            hold(conn, study_uid=str(body["studyUid"]), reason=str(body["reason"]), origin=gateway_id)
        else:
            lift(conn, study_uid=str(body["studyUid"]), origin=gateway_id)
    else:
        raise ValueError(f"unknown record kind {kind!r}")
    return proto.APPLIED


def _apply_one(conn: Connection, *, ctx: IngestContext, gateway_id: str, hospital_id: str,
               record: proto.Record, purged: list[Purged]) -> proto.ItemStatus:
    return apply_record(conn, ctx, gateway_id=gateway_id, hospital_id=hospital_id, record=record, purged=purged)


def _apply_purge(conn: Connection, ctx: IngestContext, *, gateway_id: str, hospital_id: str,
                 body: dict[str, Any]) -> Purged | None:
    """The gateway's retention purge, here too (None: the cloud has no such study, or purged it already). A
    study the cloud holds is refused: the gateway parks the purge, for an operator to see."""
    if ctx.purger is None:
        raise ValueError("this cloud does not apply purges")
    if body.get("reason") != RETENTION:
        raise ValueError(f"a purge's reason is {RETENTION!r}")
    study_id, study_uid = body.get("studyId"), body.get("studyUid")
    key: StudyKey = str(study_id) if study_id is not None else (None, str(study_uid or ""))
    try:
        return ctx.purger.purge_rows(conn, hospital_id, key, RETENTION, f"{body['rule']} (gateway {gateway_id})")
    except Held:
        raise ValueError(f"study {study_uid} is under a legal hold at the cloud: not purged there") from None


def _apply_link(conn: Connection, *, hospital_id: str, body: dict[str, Any], source: str | None, at: float) -> None:
    from sqlalchemy import update

    from ...archive.links import qr_slot

    lk = s.links
    token_hash = str(body["tokenHash"])
    if len(token_hash) != 64:
        raise ValueError("tokenHash must be a SHA-256 hex digest")
    existing = conn.execute(select(lk.c.pk, lk.c.revoked_at).where(lk.c.token_hash == token_hash)).first()
    if existing is None:
        conn.execute(lk.insert().values(
            token_hash=token_hash, token_enc=None, kind="qr", hospital_id=hospital_id, study_id=str(body["studyId"]),
            slot=None if body.get("revokedAt") else qr_slot(hospital_id, str(body["studyId"])), created_by=source,
            created_at=at, expires_at=body.get("expiresAt"), revoked_at=body.get("revokedAt")))
    elif body.get("revokedAt") and existing.revoked_at is None:
        # The cloud is the authority on revocation: a revoke sticks, an un-revoke never arrives this way.
        conn.execute(update(lk).where(lk.c.pk == existing.pk).values(revoked_at=body["revokedAt"], slot=None))


class Refused(Exception):
    """A request the ingest refuses as a whole: `error` with an HTTP status (and the items done before)."""

    def __init__(self, error: str, status: int, *, results: list[proto.ItemResult] | None = None,
                 limit: int | None = None) -> None:
        super().__init__(error)
        self.error, self.status, self.results, self.limit = error, status, results, limit

    def response(self) -> Response:
        body: proto.Refusal = {"error": self.error}
        if self.results is not None:
            body["results"] = self.results
        if self.limit is not None:
            body["limitBytes"] = self.limit
        return _json(body, self.status)


def _too_large(limit: int) -> Refused:
    return Refused(f"body over the {limit / 2**20:g} MiB limit", 413, limit=limit)


class SyncRoute(APIRoute):
    """A /sync/v1/* operation: what it (or a dependency) refuses with `Refused` is answered as such."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handle(request)
            except Refused as refused:
                return refused.response()

        return route_handler


router = APIRouter(tags=["Gateway sync (ours)"], include_in_schema=True, route_class=SyncRoute)


def ingest_context(request: Request) -> IngestContext:
    ctx: IngestContext = request.app.state.ingest
    return ctx


Ctx = Annotated[IngestContext, Depends(ingest_context)]


class Gateway:
    """The registered gateway a request claims to come from, and its signature check."""

    def __init__(self, request: Request, gateway_id: str, found: tuple[str, str]) -> None:
        self.request = request
        self.id = gateway_id
        self.hospital_id, self._key = found

    def problem(self, digest: str) -> str | None:
        h = self.request.headers
        return proto.verify(key=self._key, gateway_id=self.id, timestamp=h.get(proto.H_TIMESTAMP),
                            signature=h.get(proto.H_SIGNATURE), digest=digest)


async def gateway(request: Request, ctx: Ctx) -> Gateway:
    """The registered gateway the request names (its signature is checked with the body: `problem`)."""
    gateway_id = request.headers.get(proto.H_GATEWAY, "")
    found = ctx.tenancy.gateway(gateway_id) if gateway_id else None
    if found is None:
        raise Refused("unknown gateway", 401)
    return Gateway(request, gateway_id, found)


GatewayDep = Annotated[Gateway, Depends(gateway)]


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    return int(value) if value and value.isdigit() else None


async def _signed_body(request: Request, gw: Gateway, limit: int) -> bytes:
    """A small body read whole (never past `limit`), once its signature holds."""
    declared = _declared_length(request)
    if declared is not None and declared > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    problem = gw.problem(proto.body_digest(body))
    if problem:
        raise Refused(problem, 401)
    return bytes(body)


@router.post(proto.PATH_HELLO, summary="Check a gateway's credentials")
async def hello(request: Request, gw: GatewayDep) -> Response:
    await _signed_body(request, gw, 2**16)
    return _json({"gatewayId": gw.id, "hospitalId": gw.hospital_id})


def keep_outbox_report(conn: Connection, *, gateway_id: str, report: proto.OutboxReport, at: float) -> None:
    """The gateway's latest report, and the pending count of the one before it (is the backlog growing?)."""
    go = s.gateway_outbox
    before = conn.execute(select(go.c.pending_records, go.c.pending_instances, go.c.reported_at)
                          .where(go.c.gateway_id == gateway_id)).first()
    values = {"reported_at": at, "pending_records": report["pendingRecords"],
              "pending_instances": report["pendingInstances"], "pending_bytes": report["pendingBytes"],
              "parked": report["parked"], "oldest_pending_s": report["oldestPendingSeconds"],
              "last_success_at": report["lastSuccessAt"],
              "previous_pending": None if before is None else before.pending_records + before.pending_instances,
              "previous_reported_at": None if before is None else before.reported_at}
    if before is None:
        conn.execute(go.insert().values(gateway_id=gateway_id, **values))
    else:
        conn.execute(go.update().where(go.c.gateway_id == gateway_id).values(**values))


@router.post(proto.PATH_OUTBOX, summary="A gateway's report of its own backlog")
async def post_outbox(request: Request, ctx: Ctx, gw: GatewayDep) -> Response:
    body = await _signed_body(request, gw, 2**16)
    try:
        report = proto.outbox_report_of(orjson.loads(body))
    except ValueError as e:
        raise Refused(str(e), 400) from e
    try:
        await ctx.writer.run_async(functools.partial(keep_outbox_report, gateway_id=gw.id, report=report,
                                                     at=time.time()))
    except Exception:
        log.exception("the outbox report of %s could not be stored", gw.id)
        raise Refused("the cloud could not store the report; retry later", 503) from None
    answer: proto.OutboxAnswer = {"gatewayId": gw.id}
    wanted = await run_in_threadpool(_wanted, ctx.store, gw.hospital_id)
    if wanted:
        answer["wanted"] = wanted
    return _json(answer)


def _wanted(store: InstanceStore, hospital_id: str) -> list[str]:
    with store.db.read() as conn:
        return damaged_instances(conn, hospital_id=hospital_id, limit=proto.WANTED_LIMIT)


@router.post(proto.PATH_BLOB, summary="A copy of one of the gateway's hospital's instances (scrub repair)")
async def post_blob(request: Request, ctx: Ctx, gw: GatewayDep) -> Response:
    body = await _signed_body(request, gw, 2**16)
    try:
        uid = orjson.loads(body).get("sopInstanceUid")
    except (ValueError, AttributeError):
        uid = None
    if not isinstance(uid, str) or not uid:
        raise Refused("a JSON body with sopInstanceUid", 400)
    dataset = await run_in_threadpool(_dataset_of, ctx.store, gw.hospital_id, uid)
    if dataset is None:
        raise Refused("no such instance of this gateway's hospital", 404)
    return Response(dataset, media_type="application/octet-stream")


def _dataset_of(store: InstanceStore, hospital_id: str, sop_uid: str) -> bytes | None:
    i = s.instances.c
    with store.db.read() as conn:
        key = conn.execute(select(i.blob_key).where(i.hospital_id == hospital_id, i.sop_uid == sop_uid)).scalar()
    if key is None:
        return None
    try:
        with store.blobs.open(key) as f:
            data = f.read()
    except (BlobNotFound, FileNotFoundError):
        return None
    return data[meta_length(data[:144]):]


@router.post(proto.PATH_DOWN, summary="Final reports for the gateway's hospital, and its acknowledgements")
async def post_down(request: Request, ctx: Ctx, gw: GatewayDep) -> Response:
    """Acknowledged ids are settled before the next batch is chosen, in one transaction: a report is offered
    until the gateway says it holds it, so it is delivered once whatever fails on either side."""
    body = await _signed_body(request, gw, 2**20)
    try:
        ack = proto.down_request_of(orjson.loads(body))
    except ValueError as e:
        raise Refused(str(e), 400) from e
    try:
        reports = await ctx.writer.run_async(functools.partial(
            _offer_down, vault=ctx.vault, hospital_id=gw.hospital_id, ack=ack))
    except Exception:
        log.exception("the reports for %s could not be read", gw.id)
        raise Refused("the cloud could not answer; retry later", 503) from None
    answer: proto.DownAnswer = {"hospitalId": gw.hospital_id, "reports": reports}
    return _json(answer)


def _offer_down(conn: Connection, *, vault: Vault, hospital_id: str, ack: list[str]) -> list[proto.DownReport]:
    return offer_down(conn, vault, hospital_id=hospital_id, ack=ack, now=time.time())


@router.post(proto.PATH_RECORDS, summary="Records forwarded by a gateway")
async def post_records(request: Request, ctx: Ctx, gw: GatewayDep) -> Response:
    body = await _signed_body(request, gw, RECORDS_LIMIT)
    try:
        items = proto.records_of(orjson.loads(body))
    except ValueError as e:  # orjson's decode errors are ValueErrors
        raise Refused(str(e), 400) from e
    results: list[proto.ItemResult] = []
    purged: list[Purged] = []
    try:
        await _apply_all(ctx, gw, items, results, purged)
    finally:
        if purged and ctx.purger is not None:
            await run_in_threadpool(ctx.purger.after_commit, purged, clear=True)
    answer: proto.Results = {"results": results}
    return _json(answer)


async def _apply_all(ctx: IngestContext, gw: Gateway, items: list[proto.Record], results: list[proto.ItemResult],
                     purged: list[Purged]) -> None:
    for item in items:  # one at a time: records of a study must apply in order
        done: list[Purged] = []
        try:
            status = await ctx.writer.run_async(functools.partial(
                _apply_one, ctx=ctx, gateway_id=gw.id, hospital_id=gw.hospital_id, record=item, purged=done))
            purged.extend(done)  # committed
            results.append({"eventId": item["eventId"], "status": status})
        except (ContractError, YingyunError, ValueError, KeyError, TypeError) as e:
            detail = (e.message if isinstance(e, ContractError) else vendor_message(e, RIS)
                      if isinstance(e, YingyunError) else str(e))
            log.warning("sync record %s from %s rejected: %s", item.get("kind"), gw.id, type(e).__name__)
            results.append({"eventId": item["eventId"], "status": proto.REJECTED, "error": detail})
        except Exception:
            log.exception("sync record from %s could not be stored", gw.id)
            raise Refused("the cloud could not store the records; retry later", 503, results=results) from None


@router.post(proto.PATH_INSTANCES, summary="Instances forwarded by a gateway (multipart/related DICOM)")
async def post_instances(request: Request, ctx: Ctx, gw: GatewayDep) -> Response:
    """Streamed in: parts are spooled (web/multipart.py) while the body's digest is
    computed, and stored once the body proved to be the one the gateway signed. With
    the digest declared up front, the signature is checked before anything is read."""
    declared_digest = request.headers.get(proto.H_CONTENT_SHA256, "").strip().lower() or None
    limit = ctx.max_instance_bytes if declared_digest else LEGACY_INSTANCES_LIMIT
    length = _declared_length(request)
    if length is not None and length > limit:
        raise _too_large(limit)
    if declared_digest is not None and (problem := gw.problem(declared_digest)):
        raise Refused(problem, 401)
    try:
        parser = RelatedParser(boundary_of(request.headers.get("content-type")), max_bytes=limit,
                               spool_dir=ctx.spool_dir)
    except MultipartError as e:
        raise Refused(str(e), 400) from e
    try:
        digest = hashlib.sha256()
        try:
            async for chunk in request.stream():
                digest.update(chunk)
                parser.feed(chunk)
            if declared_digest is not None and digest.hexdigest() != declared_digest:
                raise Refused("the body does not match its declared SHA-256", 400)
            if declared_digest is None and (problem := gw.problem(digest.hexdigest())):
                raise Refused(problem, 401)
            parts = parser.finish()
        except BodyTooLarge:
            raise _too_large(limit) from None
        except MultipartError as e:
            raise Refused(str(e), 400) from e
        stored = await run_in_threadpool(_store_all, ctx.store, parts, gw.hospital_id)
    finally:
        parser.close()
    results = [item for item, _ in stored]
    if any(status in _RETRY_LATER for _, status in stored):
        raise Refused("the cloud could not store every instance; retry later", 503, results=results)
    answer: proto.Results = {"results": results}
    return _json(answer)


def _store_all(store: InstanceStore, parts: list[Part], hospital_id: str) -> list[tuple[proto.ItemResult, int]]:
    """Each part's result for the gateway, with the DIMSE status it was stored or refused with."""
    def store_one(part: Part) -> tuple[proto.ItemResult, int]:
        result = store_part10(store, hospital_id=hospital_id, data=part.content(), source_ae=None)
        status = (proto.DUPLICATE if result.outcome == "duplicate" else proto.APPLIED) \
            if result.status == Status.SUCCESS else proto.REJECTED
        item: proto.ItemResult = {"eventId": part.headers.get("content-id", "").strip("<>"), "status": status}
        if result.status != Status.SUCCESS:
            item["error"] = f"0x{result.status:04X} {result.reason}"
        part.close()  # its memory or its spool file, as soon as it is stored
        return item, result.status

    # Side by side, like a PACS's parallel associations: file fsyncs
    # overlap and the index rows share group commits.
    return list(_POOL.map(store_one, parts))
