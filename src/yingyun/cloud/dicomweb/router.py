"""The /dicomweb routes: QIDO-RS, WADO-RS, STOW-RS (PS3.18), with their auth.

Module-level handlers; their collaborators arrive as dependencies
(`DicomwebCtx`, the authenticated `CallerDep`, the UIDs of the path as
`TargetDep`), and one table (`ROUTES`) puts each handler on the levels it
serves. Everything below the edge (qido, wado, stow, auth) raises
`core.errors`; `DicomwebRoute` answers them with an HTTP status in one place
(`STATUSES`), as `{"detail": ...}`.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.routing import APIRoute
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from ...core.dicom import InvalidInstance
from ...core.errors import (Conflict, Forbidden, Invalid, NotFound, RateLimited, TooLarge, Unauthenticated,
                            Unavailable, YingyunError)
from ...core.render import RenderError, RenderOptions
from ...storage.blobs import BlobNotFound
from ...web.common import from_trusted_proxy, json_response
from ...web.multipart import (BodyTooLarge, MultipartError, Part, RelatedParser, new_boundary, parse_content_type,
                              related_type, write_related)
from . import qido, stow, wado
from .auth import Caller
from .context import DicomwebContext, HospitalScopeGate
from .media import NotAcceptable, UnsupportedMediaType, parse_accept

log = logging.getLogger("yingyun.dicomweb")
PREFIX = "/dicomweb"
DICOM_JSON = "application/dicom+json"
JSON_ACCEPTED = ("*/*", "application/*", "application/dicom+json", "application/json")


class BeyondLimits(YingyunError):
    """A stored instance that cannot be read within the bounds every read keeps (HTTP 422)."""


# The edge's one mapping of the error tree; the first class the error is an instance of wins.
STATUSES: tuple[tuple[type[YingyunError], int], ...] = (
    (NotAcceptable, 406), (UnsupportedMediaType, 415), (TooLarge, 413), (Invalid, 400), (BeyondLimits, 422),
    (Unauthenticated, 401), (Forbidden, 403), (NotFound, 404), (Conflict, 409), (RateLimited, 429),
    (Unavailable, 503),
)
WWW_AUTHENTICATE = 'Bearer realm="yingyun-dicomweb"'


def status_of(exc: YingyunError) -> int:
    return next((status for kind, status in STATUSES if isinstance(exc, kind)), 500)


def error_response(exc: YingyunError) -> Response:
    headers = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    return json_response({"detail": exc.detail}, status=status_of(exc), headers=headers or None)


class DicomwebRoute(APIRoute):
    """Answers the errors of the handlers and their dependencies (authentication included) with `STATUSES`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await inner(request)
            except YingyunError as exc:
                return error_response(exc)

        return handler


# -- dependencies ----------------------------------------------------------------------


async def dicomweb_context(request: Request) -> DicomwebContext:
    """The routes' collaborators, put on the app by `install` (async: no thread hop for an attribute read)."""
    ctx: DicomwebContext = request.app.state.dicomweb
    return ctx


DicomwebCtx = Annotated[DicomwebContext, Depends(dicomweb_context)]


async def caller_of(request: Request, ctx: DicomwebCtx) -> Caller:
    return await ctx.auth(request)


CallerDep = Annotated[Caller, Depends(caller_of)]


@dataclass(frozen=True)
class Target:
    """The UIDs of the path: a study, a series of it, an instance of that."""

    study: str | None = None
    series: str | None = None
    sop: str | None = None


async def target_of(request: Request) -> Target:
    p = request.path_params
    return Target(p.get("study"), p.get("series"), p.get("sop"))


TargetDep = Annotated[Target, Depends(target_of)]


# -- helpers ---------------------------------------------------------------------------

_NOT_QDTEXT = re.compile(r'[^ !#-\[\]-~]')


def _warn_text(text: str) -> str:
    """`text` as the quoted-string of a Warning (RFC 9110 5.6.4): printable ASCII,
    quotes and backslashes escaped, anything else (a line break, a non-ASCII
    character from a request) replaced, so no value can end the header."""
    return _NOT_QDTEXT.sub(lambda m: "\\" + m.group() if m.group() in '"\\' else "?", text)


def _json(body: Any, status: int = 200, warnings: list[str] | None = None) -> Response:
    headers = {}
    if warnings:
        headers["Warning"] = ", ".join(f'299 yingyun "{_warn_text(w)}"' for w in warnings)
    return Response(orjson.dumps(body), status_code=status, media_type=DICOM_JSON, headers=headers)


def _check_json_accept(request: Request) -> None:
    if not any(r.type in JSON_ACCEPTED for r in parse_accept(request.headers.get("accept"))):
        raise NotAcceptable("this resource is application/dicom+json")


def _multipart(parts: Any, inner: str) -> StreamingResponse:
    boundary = new_boundary()
    return StreamingResponse(write_related(parts, boundary), media_type=related_type(boundary, inner))


def _beyond_limits(inst: wado.Inst, e: InvalidInstance) -> BeyondLimits:
    """A stored instance that cannot be read within the bounds every read
    keeps (a deflate bomb stored before ingest refused them): 422, with the
    reason; the instance itself is still retrievable as stored."""
    log.warning("instance %s cannot be served within the limits: %s", inst.sop_uid, e.reason)
    return BeyondLimits(f"this instance cannot be read within the server's limits: {e.reason}")


def _autocommit(conn: Connection) -> Connection:
    """Read-only statements outside a transaction on PostgreSQL: no BEGIN and
    no ROLLBACK round trips around the one query (they dominate a QIDO
    request's latency on a busy database host)."""
    if conn.dialect.name == "postgresql":
        return conn.execution_options(isolation_level="AUTOCOMMIT")
    return conn


def base_url(request: Request, ctx: DicomwebContext) -> str:
    """Absolute /dicomweb URL for RetrieveURL and BulkDataURI, from the request's Host.

    Some clients (requests 2.34) send a Host without the port; when the
    connection came straight to us on a non-default port, that port is
    put back. Behind a trusted proxy the Host is taken as it is."""
    url = str(request.base_url).rstrip("/")
    host = request.headers.get("host", "")
    server = request.scope.get("server")
    scheme = request.url.scheme
    if (server and host and ":" not in host.rsplit("]", 1)[-1]
            and not from_trusted_proxy(request.scope, ctx.trusted_proxies)):
        port = server[1]
        if port and port != {"http": 80, "https": 443}.get(scheme):
            url = f"{scheme}://{host}:{port}{request.scope.get('root_path', '')}"
    return url + PREFIX


def _scope(request: Request, caller: Caller) -> frozenset[str] | None:
    return caller.scope(request.query_params.get("hospitalId"))


def may_view(conn: Connection, ctx: DicomwebContext, caller: Caller, study_uid: str) -> bool:
    """The StudyGate's answer for a staff session's caller, kept a few seconds (`gate_decisions`)."""
    return ctx.gate_decisions.get((caller.name, study_uid), lambda key: ctx.gate.may_view(conn, caller, key[1]))


def _study_scope(conn: Connection, request: Request, ctx: DicomwebContext, caller: Caller,
                 study_uid: str) -> frozenset[str] | None:
    """The hospitals a request about one study looks in: the caller's grant, or for a staff session, wherever
    the study is once the gate lets the caller view it (a study it may not view is not there: 404)."""
    if not caller.session:
        return _scope(request, caller)
    if not may_view(conn, ctx, caller, study_uid):
        raise NotFound("no such study")
    hospital_id = request.query_params.get("hospitalId")
    return None if hospital_id is None else frozenset({hospital_id})


def _resolve(request: Request, ctx: DicomwebContext, caller: Caller, target: Target) -> list[wado.Inst]:
    """The instances a WADO-RS request asks for, the retrieval audited (every WADO path comes here)."""
    assert target.study is not None  # every WADO path names a study
    with ctx.db.read() as conn:
        conn = _autocommit(conn)
        sc = _study_scope(conn, request, ctx, caller, target.study)
        insts = wado.resolve(conn, sc, target.study, target.series, target.sop)
    _audit(request, ctx, caller, insts)
    return insts


def retrieval_kind(path: str) -> str:
    """What a WADO-RS path retrieves: retrieve, metadata, frames, bulkdata, rendered or thumbnail."""
    parts = path.rstrip("/").split("/")
    if parts[-1] in ("metadata", "rendered", "thumbnail"):
        return parts[-1]
    return next((kind for kind in ("frames", "bulkdata") if kind in parts), "retrieve")


def _audit(request: Request, ctx: DicomwebContext, caller: Caller, insts: list[wado.Inst]) -> None:
    """One row per study in the same trail as the patient pages' views (`admin audit`), naming the caller
    (a token's or a partner's name, never a person's) and how many instances were asked for."""
    if ctx.audit is None:
        return
    access = "dicomweb-" + retrieval_kind(request.url.path)
    ip = request.scope.get("state", {}).get("client_ip")
    per_study = Counter((i.hospital_id, i.study_uid) for i in insts)
    for (hospital_id, study_uid), n in per_study.items():
        ctx.audit.record(access=access, link_pk=None, link_kind="dicomweb", hospital_id=hospital_id, study_id=None,
                         study_uid=study_uid, client_ip=ip, user_agent=request.headers.get("user-agent"),
                         detail=f"{caller.name} instances={n}")


# -- QIDO-RS ---------------------------------------------------------------------------


def _search(request: Request, ctx: DicomwebContext, caller: Caller, level: str, target: Target) -> Response:
    _check_json_accept(request)
    q = qido.parse(level, list(request.query_params.multi_items()), study_uid=target.study,
                   series_uid=target.series)
    with ctx.db.read() as conn:
        conn = _autocommit(conn)
        if caller.session:
            rows, more = _session_search(conn, request, ctx, caller, q)
        else:
            rows, more = qido.search(conn, q, _scope(request, caller))
    warnings = list(q.warnings)
    if more and q.limit_capped:
        warnings.append("The number of results exceeded the maximum supported by the server. "
                        "Additional results can be requested.")
    return _json(qido.render(q, rows, base_url(request, ctx)), warnings=warnings)


def _session_search(conn: Connection, request: Request, ctx: DicomwebContext, caller: Caller,
                    q: qido.Query) -> tuple[Sequence[Any], bool]:
    """A staff session's search. Naming its studies (the path, or exact StudyInstanceUIDs, as a viewer does):
    those the gate lets it view, wherever they are. Otherwise: within its hospitals, each study then asked of
    the gate unless the gate is the default one (which is that very rule)."""
    named = q.keys.get("StudyInstanceUID", "")
    if named and not any(c in named for c in "*?"):
        allowed = [uid for uid in named.split("\\") if uid and may_view(conn, ctx, caller, uid)]
        if not allowed:
            return [], False
        q.keys["StudyInstanceUID"] = "\\".join(allowed)
        hospital_id = request.query_params.get("hospitalId")
        scope = None if hospital_id is None else frozenset({hospital_id})
        rows, more = qido.search(conn, q, scope)
        if rows and q.level in ("study", "series"):
            _warm_metadata(request, ctx, allowed, scope)
        return rows, more
    rows, more = qido.search(conn, q, _scope(request, caller))
    if isinstance(ctx.gate, HospitalScopeGate):
        return rows, more
    return [r for r in rows if may_view(conn, ctx, caller, r.study_uid)], more


def search_studies(request: Request, ctx: DicomwebCtx, caller: CallerDep, target: TargetDep) -> Response:
    return _search(request, ctx, caller, "study", target)


def search_series(request: Request, ctx: DicomwebCtx, caller: CallerDep, target: TargetDep) -> Response:
    return _search(request, ctx, caller, "series", target)


def search_instances(request: Request, ctx: DicomwebCtx, caller: CallerDep, target: TargetDep) -> Response:
    return _search(request, ctx, caller, "instance", target)


# -- WADO-RS: instances, metadata, bulk data, frames -------------------------------------


def retrieve(request: Request, ctx: DicomwebCtx, caller: CallerDep, target: TargetDep) -> Response:
    single = target.sop is not None
    ranges = parse_accept(request.headers.get("accept"))
    if not wado.instance_media_options(ranges, single_allowed=single):
        wado.choose_instance_media(ranges, [], single_allowed=single)  # raises the 406
    insts = _resolve(request, ctx, caller, target)
    multipart, syntax = wado.choose_instance_media(ranges, insts, single_allowed=single)
    limit = ctx.store.max_inflated
    if not multipart:
        inst = insts[0]
        ts = syntax or inst.transfer_syntax
        try:
            body = wado.instance_bytes(ctx.blobs, inst, syntax, max_inflated=limit)
        except InvalidInstance as e:
            raise _beyond_limits(inst, e) from e
        return StreamingResponse(body, media_type=f"application/dicom; transfer-syntax={ts}")
    base = base_url(request, ctx)

    def parts() -> Iterator[tuple[dict[str, str], Iterator[bytes]]]:
        for inst in insts:
            ts = syntax or inst.transfer_syntax
            yield ({"Content-Type": f"application/dicom; transfer-syntax={ts}",
                    "Content-Location": wado.instance_url(base, inst)},
                   wado.instance_bytes(ctx.blobs, inst, syntax, max_inflated=limit))
    return _multipart(parts(), "application/dicom")


def instance_metadata(ctx: DicomwebContext, inst: wado.Inst, base: str) -> bytes:
    """One instance's metadata as DICOM JSON bytes, from the cache (metacache.py) or built and kept."""

    def build() -> bytes:
        try:
            return orjson.dumps(wado.metadata(ctx.blobs, inst, base, max_inflated=ctx.store.max_inflated))
        except (BlobNotFound, OSError) as e:
            log.error("metadata: cannot read instance %s: %s", inst.sop_uid, type(e).__name__)
            raise Unavailable("an instance's file cannot be read") from e
        except InvalidInstance as e:
            raise _beyond_limits(inst, e) from e
    return ctx.metadata.get((base, inst.hospital_id, inst.sop_uid, inst.version), build)


def metadata(request: Request, ctx: DicomwebCtx, caller: CallerDep, target: TargetDep) -> Response:
    _check_json_accept(request)
    insts = _resolve(request, ctx, caller, target)
    base = base_url(request, ctx)
    body = b"[" + b",".join(instance_metadata(ctx, inst, base) for inst in insts) + b"]"
    return Response(body, media_type=DICOM_JSON)


def _warm_metadata(request: Request, ctx: DicomwebContext, study_uids: list[str],
                   scope: frozenset[str] | None) -> None:
    """A viewer's first search names its study; its metadata request follows: build it meanwhile."""
    base = base_url(request, ctx)
    for study_uid in study_uids[:4]:
        def work(study_uid: str = study_uid) -> None:
            with ctx.db.read() as conn:
                insts = wado.resolve(_autocommit(conn), scope, study_uid)
            for inst in insts:
                instance_metadata(ctx, inst, base)
        ctx.metadata.warm((base, study_uid), work)


def bulk(ctx: DicomwebCtx, request: Request, caller: CallerDep, target: TargetDep, tag: str) -> Response:
    inst = _resolve(request, ctx, caller, target)[0]
    try:
        data = wado.bulkdata(ctx.blobs, inst, tag, max_inflated=ctx.store.max_inflated)
    except InvalidInstance as e:
        raise _beyond_limits(inst, e) from e
    return _multipart([({"Content-Type": "application/octet-stream"}, data)], "application/octet-stream")


def retrieve_frames(request: Request, ctx: DicomwebCtx, caller: CallerDep, target: TargetDep,
                    frame_list: str) -> Response:
    inst = _resolve(request, ctx, caller, target)[0]
    numbers = wado.parse_frames(frame_list, inst.number_of_frames)
    plan = wado.choose_frame_media(parse_accept(request.headers.get("accept")), inst.transfer_syntax)
    try:
        data = wado.frames(ctx.blobs, inst, numbers, plan, max_inflated=ctx.store.max_inflated)
    except YingyunError:
        raise
    except InvalidInstance as e:
        raise _beyond_limits(inst, e) from e
    except Exception as e:
        log.warning("frames of %s cannot be extracted: %s", inst.sop_uid, type(e).__name__)
        raise NotAcceptable("the frames cannot be delivered in the requested form") from e
    inner = plan.content_type.split(";", 1)[0]
    return _multipart([({"Content-Type": plan.content_type}, [f]) for f in data], inner)


# -- WADO-RS: rendered and thumbnails -----------------------------------------------------


def _render_bytes(ctx: DicomwebContext, inst: wado.Inst, opts: RenderOptions) -> bytes:
    try:
        data: bytes = ctx.cache.get_or_render(("dicomweb", inst.hospital_id, inst.sop_uid, inst.version),
                                              lambda: ctx.blobs.open(inst.blob_key), opts)
    except IndexError:
        raise NotFound(f"no frame {opts.frame + 1}") from None
    except RenderError as e:
        raise NotAcceptable(f"cannot render this instance: {e}") from None
    except ValueError as e:
        raise Invalid(f"cannot render this instance: {e}") from None
    return data


def _rendered_one(request: Request, ctx: DicomwebContext, inst: wado.Inst, frame: int, thumbnail: bool) -> Response:
    opts = wado.render_options(request.query_params, frame, thumbnail=thumbnail,
                               accept=parse_accept(request.headers.get("accept")))
    data = _render_bytes(ctx, inst, opts)
    return Response(data, media_type="image/jpeg" if opts.fmt == "jpeg" else "image/png",
                    headers={"Cache-Control": "private, max-age=3600"})


def _one_frame(request: Request, ctx: DicomwebContext, caller: Caller, target: Target, frame: str, *,
               thumbnail: bool) -> Response:
    inst = _resolve(request, ctx, caller, target)[0]
    n = wado.parse_frames(frame, inst.number_of_frames)
    if len(n) != 1:
        raise Invalid("a thumbnail is of one frame" if thumbnail else "a rendered frame is one frame number")
    return _rendered_one(request, ctx, inst, n[0] - 1, thumbnail)


def rendered_many(request: Request, ctx: DicomwebCtx, caller: CallerDep, target: TargetDep) -> Response:
    """A study or a series rendered: one part per image instance (those that cannot be rendered are left out)."""
    images = [x for x in _resolve(request, ctx, caller, target) if x.kind == "image"]
    if not images:
        raise NotAcceptable("nothing here can be rendered")
    opts = wado.render_options(request.query_params, 0, thumbnail=False,
                               accept=parse_accept(request.headers.get("accept")))
    mtype = "image/jpeg" if opts.fmt == "jpeg" else "image/png"

    def parts() -> Iterator[tuple[dict[str, str], list[bytes]]]:
        for inst in images:
            try:
                data = _render_bytes(ctx, inst, opts)
            except YingyunError:
                continue
            yield {"Content-Type": mtype}, [data]
    return _multipart(parts(), mtype)


def instance_rendered(request: Request, ctx: DicomwebCtx, caller: CallerDep, target: TargetDep) -> Response:
    return _rendered_one(request, ctx, _resolve(request, ctx, caller, target)[0], 0, False)


def frame_rendered(request: Request, ctx: DicomwebCtx, caller: CallerDep, target: TargetDep, frame: str) -> Response:
    return _one_frame(request, ctx, caller, target, frame, thumbnail=False)


def thumbnail(request: Request, ctx: DicomwebCtx, caller: CallerDep, target: TargetDep) -> Response:
    """A study's, a series' (of a representative instance) or an instance's thumbnail."""
    insts = _resolve(request, ctx, caller, target)
    inst = insts[0] if target.sop is not None else wado.representative(insts)
    return _rendered_one(request, ctx, inst, 0, True)


def frame_thumbnail(request: Request, ctx: DicomwebCtx, caller: CallerDep, target: TargetDep, frame: str) -> Response:
    return _one_frame(request, ctx, caller, target, frame, thumbnail=True)


# -- STOW-RS ---------------------------------------------------------------------------


async def store(request: Request, ctx: DicomwebCtx, caller: CallerDep, target: TargetDep) -> Response:
    _check_json_accept(request)
    mtype, params = parse_content_type(request.headers.get("content-type"))
    if mtype != "multipart/related":
        raise UnsupportedMediaType('STOW-RS takes multipart/related; type="application/dicom"')
    inner = (params.get("type") or "application/dicom").lower()
    if inner != "application/dicom":
        raise UnsupportedMediaType(f"parts of type {inner} are not supported: send application/dicom")
    boundary = params.get("boundary")
    if not boundary:
        raise Invalid("the multipart Content-Type has no boundary")
    hospitals = ctx.tenancy.hospitals()
    hospital = caller.store_target(request.query_params.get("hospitalId"), set(hospitals))
    if not hospitals.get(hospital, {}).get("enabled"):
        raise Forbidden(f"hospital {hospital} is disabled: it takes no new instances")
    try:
        parser = RelatedParser(boundary, max_bytes=ctx.max_stow_bytes, spool_dir=ctx.spool_dir)
    except MultipartError as e:
        raise Invalid(str(e)) from e
    base = base_url(request, ctx)
    try:
        async for chunk in request.stream():
            parser.feed(chunk)
        parts: list[Part] = parser.finish()
        outcome = await run_in_threadpool(stow.store_parts, ctx.store, parts, hospital_id=hospital,
                                          study_uid=target.study, base_url=base)
    except BodyTooLarge as e:
        raise TooLarge(str(e)) from e
    except MultipartError as e:
        raise Invalid(str(e)) from e
    finally:
        parser.close()
    status, body = stow.response(outcome, study_uid=target.study, base_url=base)
    log.info("STOW-RS by %s into %s: %d stored, %d failed", caller.name, hospital, len(outcome.stored),
             len(outcome.failed))
    return _json(body, status, warnings=outcome.warnings[:20])


# -- the route table -------------------------------------------------------------------

STUDY = "/studies/{study}"
SERIES = STUDY + "/series/{series}"
INSTANCE = SERIES + "/instances/{sop}"

# (method, path, handler, route name, summary)
ROUTES: tuple[tuple[str, str, Callable[..., Any], str, str], ...] = (
    ("GET", "/studies", search_studies, "search_studies", "QIDO-RS: search for studies"),
    ("GET", "/series", search_series, "search_series", "QIDO-RS: search for series"),
    ("GET", "/instances", search_instances, "search_instances", "QIDO-RS: search for instances"),
    ("GET", STUDY + "/series", search_series, "search_study_series", "QIDO-RS: search for a study's series"),
    ("GET", STUDY + "/instances", search_instances, "search_study_instances",
     "QIDO-RS: search for a study's instances"),
    ("GET", SERIES + "/instances", search_instances, "search_series_instances",
     "QIDO-RS: search for a series' instances"),
    ("GET", STUDY, retrieve, "retrieve_study", "WADO-RS: retrieve a study"),
    ("GET", SERIES, retrieve, "retrieve_series", "WADO-RS: retrieve a series"),
    ("GET", INSTANCE, retrieve, "retrieve_instance", "WADO-RS: retrieve an instance"),
    ("GET", STUDY + "/metadata", metadata, "study_metadata", "WADO-RS: a study's metadata"),
    ("GET", SERIES + "/metadata", metadata, "series_metadata", "WADO-RS: a series' metadata"),
    ("GET", INSTANCE + "/metadata", metadata, "instance_metadata", "WADO-RS: an instance's metadata"),
    ("GET", INSTANCE + "/bulkdata/{tag}", bulk, "bulk", "WADO-RS: bulk data"),
    ("GET", INSTANCE + "/frames/{frame_list}", retrieve_frames, "retrieve_frames", "WADO-RS: frames"),
    ("GET", STUDY + "/rendered", rendered_many, "study_rendered", "WADO-RS: a study rendered"),
    ("GET", SERIES + "/rendered", rendered_many, "series_rendered", "WADO-RS: a series rendered"),
    ("GET", INSTANCE + "/rendered", instance_rendered, "instance_rendered", "WADO-RS: an instance rendered"),
    ("GET", INSTANCE + "/frames/{frame}/rendered", frame_rendered, "frame_rendered", "WADO-RS: a frame rendered"),
    ("GET", STUDY + "/thumbnail", thumbnail, "study_thumbnail", "WADO-RS: a study's thumbnail"),
    ("GET", SERIES + "/thumbnail", thumbnail, "series_thumbnail", "WADO-RS: a series' thumbnail"),
    ("GET", INSTANCE + "/thumbnail", thumbnail, "instance_thumbnail", "WADO-RS: an instance's thumbnail"),
    ("GET", INSTANCE + "/frames/{frame}/thumbnail", frame_thumbnail, "frame_thumbnail",
     "WADO-RS: a frame's thumbnail"),
    ("POST", "/studies", store, "store_studies", "STOW-RS: store instances"),
    ("POST", STUDY, store, "store_study", "STOW-RS: store instances of one study"),
)
UID_PARAMETERS = ("study", "series", "sop")


def _uid_parameters(path: str) -> dict[str, Any] | None:
    """OpenAPI for the UIDs of `path`, which the handlers read through `TargetDep` rather than their signature."""
    names = [n for n in UID_PARAMETERS if "{" + n + "}" in path]
    if not names:
        return None
    return {"parameters": [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names]}


router = APIRouter(prefix=PREFIX, tags=["DICOMweb"], route_class=DicomwebRoute)
for _method, _path, _handler, _name, _summary in ROUTES:
    router.add_api_route(_path, _handler, methods=[_method], name=_name, summary=_summary,
                         openapi_extra=_uid_parameters(_path))


def install(app: FastAPI, ctx: DicomwebContext) -> None:
    """Serve DICOMweb on `app`, over `ctx` (read by the handlers' `DicomwebCtx` dependency)."""
    app.state.dicomweb = ctx
    app.include_router(router)
