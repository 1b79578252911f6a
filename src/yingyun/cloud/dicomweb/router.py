"""The /dicomweb routes: QIDO-RS, WADO-RS, STOW-RS (PS3.18), with their auth."""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterator

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from ...core.dicom import InvalidInstance
from ...core.render import RenderError
from ...storage.blobs import BlobNotFound
from ...web.multipart import (BodyTooLarge, MultipartError, RelatedParser, new_boundary, parse_content_type,
                              related_type, write_related)
from . import qido, stow, wado
from .auth import Caller, DicomwebHTTPError
from .context import DicomwebContext
from .media import parse_accept

log = logging.getLogger("yingyun.dicomweb")
PREFIX = "/dicomweb"
DICOM_JSON = "application/dicom+json"


_NOT_QDTEXT = re.compile(r'[^ !#-\[\]-~]')


def _warn_text(text: str) -> str:
    """`text` as the quoted-string of a Warning (RFC 9110 5.6.4): printable ASCII,
    quotes and backslashes escaped, anything else (a line break, a non-ASCII
    character from a request) replaced, so no value can end the header."""
    return _NOT_QDTEXT.sub(lambda m: "\\" + m.group() if m.group() in '"\\' else "?", text)


def _json(body, status: int = 200, warnings: list[str] | None = None) -> Response:
    headers = {}
    if warnings:
        headers["Warning"] = ", ".join(f'299 yingyun "{_warn_text(w)}"' for w in warnings)
    return Response(orjson.dumps(body), status_code=status, media_type=DICOM_JSON, headers=headers)


def _check_json_accept(request: Request) -> None:
    for r in parse_accept(request.headers.get("accept")):
        if r.type in ("*/*", "application/*", "application/dicom+json", "application/json"):
            return
    raise DicomwebHTTPError(406, "this resource is application/dicom+json")


def _multipart(parts, inner: str) -> StreamingResponse:
    boundary = new_boundary()
    return StreamingResponse(write_related(parts, boundary), media_type=related_type(boundary, inner))


def _beyond_limits(inst: wado.Inst, e: InvalidInstance) -> DicomwebHTTPError:
    """A stored instance that cannot be read within the bounds every read
    keeps (a deflate bomb stored before ingest refused them): 422, with the
    reason; the instance itself is still retrievable as stored."""
    log.warning("instance %s cannot be served within the limits: %s", inst.sop_uid, e.reason)
    return DicomwebHTTPError(422, f"this instance cannot be read within the server's limits: {e.reason}")


def _autocommit(conn):
    """Read-only statements outside a transaction on PostgreSQL: no BEGIN and
    no ROLLBACK round trips around the one query (they dominate a QIDO
    request's latency on a busy database host)."""
    if conn.dialect.name == "postgresql":
        return conn.execution_options(isolation_level="AUTOCOMMIT")
    return conn


def router(ctx: DicomwebContext) -> APIRouter:
    r = APIRouter(prefix=PREFIX, tags=["DICOMweb"])

    async def caller_of(request: Request) -> Caller:
        return await ctx.auth(request)

    def base(request: Request) -> str:
        """Absolute /dicomweb URL for RetrieveURL and BulkDataURI, from the request's Host.

        Some clients (requests 2.34) send a Host without the port; when the
        connection came straight to us on a non-default port, that port is
        put back. Behind a trusted proxy the Host is taken as it is."""
        url = str(request.base_url).rstrip("/")
        host = request.headers.get("host", "")
        server = request.scope.get("server")
        scheme = request.url.scheme
        if server and host and ":" not in host.rsplit("]", 1)[-1] and not _via_proxy(request):
            port = server[1]
            if port and port != {"http": 80, "https": 443}.get(scheme):
                url = f"{scheme}://{host}:{port}{request.scope.get('root_path', '')}"
        return url + PREFIX

    def _via_proxy(request: Request) -> bool:
        peer = (request.scope.get("client") or ("", 0))[0]
        trusted = ctx.trusted_proxies
        if not trusted or not peer:
            return False
        try:
            return any(ipaddress.ip_address(peer) in net for net in trusted)
        except ValueError:
            return False

    def scope(request: Request, caller: Caller):
        return caller.scope(request.query_params.get("hospitalId"))

    # -- QIDO-RS --------------------------------------------------------------

    def search(request: Request, caller: Caller, level: str, study: str | None = None,
               series: str | None = None) -> Response:
        _check_json_accept(request)
        sc = scope(request, caller)
        q = qido.parse(level, list(request.query_params.multi_items()), study_uid=study, series_uid=series)
        with ctx.db.read() as conn:
            rows, more = qido.search(_autocommit(conn), q, sc)
        warnings = list(q.warnings)
        if more and q.limit_capped:
            warnings.append("The number of results exceeded the maximum supported by the server. "
                            "Additional results can be requested.")
        return _json(qido.render(q, rows, base(request)), warnings=warnings)

    @r.get("/studies", summary="QIDO-RS: search for studies")
    def search_studies(request: Request, caller: Caller = Depends(caller_of)) -> Response:
        return search(request, caller, "study")

    @r.get("/series", summary="QIDO-RS: search for series")
    def search_series(request: Request, caller: Caller = Depends(caller_of)) -> Response:
        return search(request, caller, "series")

    @r.get("/instances", summary="QIDO-RS: search for instances")
    def search_instances(request: Request, caller: Caller = Depends(caller_of)) -> Response:
        return search(request, caller, "instance")

    @r.get("/studies/{study}/series", summary="QIDO-RS: search for a study's series")
    def search_study_series(request: Request, study: str, caller: Caller = Depends(caller_of)) -> Response:
        return search(request, caller, "series", study)

    @r.get("/studies/{study}/instances", summary="QIDO-RS: search for a study's instances")
    def search_study_instances(request: Request, study: str, caller: Caller = Depends(caller_of)) -> Response:
        return search(request, caller, "instance", study)

    @r.get("/studies/{study}/series/{series}/instances", summary="QIDO-RS: search for a series' instances")
    def search_series_instances(request: Request, study: str, series: str,
                                caller: Caller = Depends(caller_of)) -> Response:
        return search(request, caller, "instance", study, series)

    # -- WADO-RS: instances ---------------------------------------------------

    def resolve(request: Request, caller: Caller, study: str, series: str | None = None,
                sop: str | None = None) -> list[wado.Inst]:
        sc = scope(request, caller)
        with ctx.db.read() as conn:
            return wado.resolve(_autocommit(conn), sc, study, series, sop)

    def retrieve(request: Request, caller: Caller, study: str, series: str | None = None,
                 sop: str | None = None) -> Response:
        ranges = parse_accept(request.headers.get("accept"))
        if not wado.instance_media_options(ranges, single_allowed=sop is not None):
            wado.choose_instance_media(ranges, [], single_allowed=sop is not None)  # raises the 406
        insts = resolve(request, caller, study, series, sop)
        multipart, target = wado.choose_instance_media(ranges, insts, single_allowed=sop is not None)
        limit = ctx.store.max_inflated
        if not multipart:
            inst = insts[0]
            ts = target or inst.transfer_syntax
            try:
                body = wado.instance_bytes(ctx.blobs, inst, target, max_inflated=limit)
            except InvalidInstance as e:
                raise _beyond_limits(inst, e) from e
            return StreamingResponse(body, media_type=f"application/dicom; transfer-syntax={ts}")

        def parts():
            for inst in insts:
                ts = target or inst.transfer_syntax
                yield ({"Content-Type": f"application/dicom; transfer-syntax={ts}",
                        "Content-Location": wado.instance_url(base(request), inst)},
                       wado.instance_bytes(ctx.blobs, inst, target, max_inflated=limit))
        return _multipart(parts(), "application/dicom")

    @r.get("/studies/{study}", summary="WADO-RS: retrieve a study")
    def retrieve_study(request: Request, study: str, caller: Caller = Depends(caller_of)) -> Response:
        return retrieve(request, caller, study)

    @r.get("/studies/{study}/series/{series}", summary="WADO-RS: retrieve a series")
    def retrieve_series(request: Request, study: str, series: str, caller: Caller = Depends(caller_of)) -> Response:
        return retrieve(request, caller, study, series)

    @r.get("/studies/{study}/series/{series}/instances/{sop}", summary="WADO-RS: retrieve an instance")
    def retrieve_instance(request: Request, study: str, series: str, sop: str,
                          caller: Caller = Depends(caller_of)) -> Response:
        return retrieve(request, caller, study, series, sop)

    # -- WADO-RS: metadata and bulk data -----------------------------------------

    def metadata(request: Request, caller: Caller, study: str, series: str | None = None,
                 sop: str | None = None) -> Response:
        _check_json_accept(request)
        insts = resolve(request, caller, study, series, sop)
        b = base(request)
        out = []
        for inst in insts:
            try:
                out.append(wado.metadata(ctx.blobs, inst, b, max_inflated=ctx.store.max_inflated))
            except (BlobNotFound, OSError) as e:
                log.error("metadata: cannot read instance %s: %s", inst.sop_uid, type(e).__name__)
                raise DicomwebHTTPError(503, "an instance's file cannot be read") from e
            except InvalidInstance as e:
                raise _beyond_limits(inst, e) from e
        return _json(out)

    @r.get("/studies/{study}/metadata", summary="WADO-RS: a study's metadata")
    def study_metadata(request: Request, study: str, caller: Caller = Depends(caller_of)) -> Response:
        return metadata(request, caller, study)

    @r.get("/studies/{study}/series/{series}/metadata", summary="WADO-RS: a series' metadata")
    def series_metadata(request: Request, study: str, series: str, caller: Caller = Depends(caller_of)) -> Response:
        return metadata(request, caller, study, series)

    @r.get("/studies/{study}/series/{series}/instances/{sop}/metadata", summary="WADO-RS: an instance's metadata")
    def instance_metadata(request: Request, study: str, series: str, sop: str,
                          caller: Caller = Depends(caller_of)) -> Response:
        return metadata(request, caller, study, series, sop)

    @r.get("/studies/{study}/series/{series}/instances/{sop}/bulkdata/{tag}", summary="WADO-RS: bulk data")
    def bulk(request: Request, study: str, series: str, sop: str, tag: str,
             caller: Caller = Depends(caller_of)) -> Response:
        inst = resolve(request, caller, study, series, sop)[0]
        try:
            data = wado.bulkdata(ctx.blobs, inst, tag, max_inflated=ctx.store.max_inflated)
        except InvalidInstance as e:
            raise _beyond_limits(inst, e) from e
        return _multipart([({"Content-Type": "application/octet-stream"}, data)], "application/octet-stream")

    # -- WADO-RS: frames ------------------------------------------------------

    @r.get("/studies/{study}/series/{series}/instances/{sop}/frames/{frame_list}", summary="WADO-RS: frames")
    def retrieve_frames(request: Request, study: str, series: str, sop: str, frame_list: str,
                        caller: Caller = Depends(caller_of)) -> Response:
        inst = resolve(request, caller, study, series, sop)[0]
        numbers = wado.parse_frames(frame_list, inst.number_of_frames)
        plan = wado.choose_frame_media(parse_accept(request.headers.get("accept")), inst.transfer_syntax)
        try:
            data = wado.frames(ctx.blobs, inst, numbers, plan, max_inflated=ctx.store.max_inflated)
        except DicomwebHTTPError:
            raise
        except InvalidInstance as e:
            raise _beyond_limits(inst, e) from e
        except Exception as e:
            log.warning("frames of %s cannot be extracted: %s", inst.sop_uid, type(e).__name__)
            raise DicomwebHTTPError(406, "the frames cannot be delivered in the requested form") from e
        inner = plan.content_type.split(";", 1)[0]
        return _multipart([({"Content-Type": plan.content_type}, [f]) for f in data], inner)

    # -- WADO-RS: rendered and thumbnails -----------------------------------

    def rendered_one(request: Request, inst: wado.Inst, frame: int, thumbnail: bool) -> Response:
        opts = wado.render_options(request.query_params, frame, thumbnail=thumbnail,
                                   accept=parse_accept(request.headers.get("accept")))
        data = render_bytes(inst, opts)
        return Response(data, media_type="image/jpeg" if opts.fmt == "jpeg" else "image/png",
                        headers={"Cache-Control": "private, max-age=3600"})

    def render_bytes(inst: wado.Inst, opts) -> bytes:
        try:
            return ctx.cache.get_or_render(("dicomweb", inst.hospital_id, inst.sop_uid, inst.version),
                                           lambda: ctx.blobs.open(inst.blob_key), opts)
        except IndexError:
            raise DicomwebHTTPError(404, f"no frame {opts.frame + 1}") from None
        except (RenderError, ValueError) as e:
            raise DicomwebHTTPError(406 if isinstance(e, RenderError) else 400,
                                    f"cannot render this instance: {e}") from None

    def rendered_many(request: Request, insts: list[wado.Inst]) -> Response:
        images = [x for x in insts if x.kind == "image"]
        if not images:
            raise DicomwebHTTPError(406, "nothing here can be rendered")
        opts = wado.render_options(request.query_params, 0, thumbnail=False,
                                   accept=parse_accept(request.headers.get("accept")))
        mtype = "image/jpeg" if opts.fmt == "jpeg" else "image/png"

        def parts() -> Iterator:
            for inst in images:
                try:
                    data = render_bytes(inst, opts)
                except DicomwebHTTPError:
                    continue
                yield {"Content-Type": mtype}, [data]
        return _multipart(parts(), mtype)

    @r.get("/studies/{study}/rendered", summary="WADO-RS: a study rendered")
    def study_rendered(request: Request, study: str, caller: Caller = Depends(caller_of)) -> Response:
        return rendered_many(request, resolve(request, caller, study))

    @r.get("/studies/{study}/series/{series}/rendered", summary="WADO-RS: a series rendered")
    def series_rendered(request: Request, study: str, series: str, caller: Caller = Depends(caller_of)) -> Response:
        return rendered_many(request, resolve(request, caller, study, series))

    @r.get("/studies/{study}/series/{series}/instances/{sop}/rendered", summary="WADO-RS: an instance rendered")
    def instance_rendered(request: Request, study: str, series: str, sop: str,
                          caller: Caller = Depends(caller_of)) -> Response:
        return rendered_one(request, resolve(request, caller, study, series, sop)[0], 0, False)

    def one_frame_rendered(request: Request, caller: Caller, study: str, series: str, sop: str, frame: str, *,
                           thumbnail: bool) -> Response:
        inst = resolve(request, caller, study, series, sop)[0]
        n = wado.parse_frames(frame, inst.number_of_frames)
        if len(n) != 1:
            raise DicomwebHTTPError(400, "a thumbnail is of one frame" if thumbnail else
                                    "a rendered frame is one frame number")
        return rendered_one(request, inst, n[0] - 1, thumbnail)

    @r.get("/studies/{study}/series/{series}/instances/{sop}/frames/{frame}/rendered",
           summary="WADO-RS: a frame rendered")
    def frame_rendered(request: Request, study: str, series: str, sop: str, frame: str,
                       caller: Caller = Depends(caller_of)) -> Response:
        return one_frame_rendered(request, caller, study, series, sop, frame, thumbnail=False)

    @r.get("/studies/{study}/thumbnail", summary="WADO-RS: a study's thumbnail")
    def study_thumbnail(request: Request, study: str, caller: Caller = Depends(caller_of)) -> Response:
        return rendered_one(request, wado.representative(resolve(request, caller, study)), 0, True)

    @r.get("/studies/{study}/series/{series}/thumbnail", summary="WADO-RS: a series' thumbnail")
    def series_thumbnail(request: Request, study: str, series: str, caller: Caller = Depends(caller_of)) -> Response:
        return rendered_one(request, wado.representative(resolve(request, caller, study, series)), 0, True)

    @r.get("/studies/{study}/series/{series}/instances/{sop}/thumbnail", summary="WADO-RS: an instance's thumbnail")
    def instance_thumbnail(request: Request, study: str, series: str, sop: str,
                           caller: Caller = Depends(caller_of)) -> Response:
        return rendered_one(request, resolve(request, caller, study, series, sop)[0], 0, True)

    @r.get("/studies/{study}/series/{series}/instances/{sop}/frames/{frame}/thumbnail",
           summary="WADO-RS: a frame's thumbnail")
    def frame_thumbnail(request: Request, study: str, series: str, sop: str, frame: str,
                        caller: Caller = Depends(caller_of)) -> Response:
        return one_frame_rendered(request, caller, study, series, sop, frame, thumbnail=True)

    # -- STOW-RS --------------------------------------------------------------

    async def store(request: Request, caller: Caller, study: str | None) -> Response:
        _check_json_accept(request)
        mtype, params = parse_content_type(request.headers.get("content-type"))
        if mtype != "multipart/related":
            raise DicomwebHTTPError(415, 'STOW-RS takes multipart/related; type="application/dicom"')
        inner = (params.get("type") or "application/dicom").lower()
        if inner != "application/dicom":
            raise DicomwebHTTPError(415, f"parts of type {inner} are not supported: send application/dicom")
        boundary = params.get("boundary")
        if not boundary:
            raise DicomwebHTTPError(400, "the multipart Content-Type has no boundary")
        hospitals = ctx.tenancy.hospitals()
        hospital = caller.store_target(request.query_params.get("hospitalId"), set(hospitals))
        if not hospitals.get(hospital, {}).get("enabled"):
            raise DicomwebHTTPError(403, f"hospital {hospital} is disabled: it takes no new instances")
        try:
            parser = RelatedParser(boundary, max_bytes=ctx.max_stow_bytes, spool_dir=ctx.spool_dir)
        except MultipartError as e:
            raise DicomwebHTTPError(400, str(e)) from e
        try:
            async for chunk in request.stream():
                parser.feed(chunk)
            parts = parser.finish()
            outcome = await run_in_threadpool(stow.store_parts, ctx.store, parts, hospital_id=hospital,
                                              study_uid=study, base_url=base(request))
        except BodyTooLarge as e:
            raise DicomwebHTTPError(413, str(e)) from e
        except MultipartError as e:
            raise DicomwebHTTPError(400, str(e)) from e
        finally:
            parser.close()
        status, body = stow.response(outcome, study_uid=study, base_url=base(request))
        log.info("STOW-RS by %s into %s: %d stored, %d failed", caller.name, hospital, len(outcome.stored),
                 len(outcome.failed))
        return _json(body, status, warnings=outcome.warnings[:20])

    @r.post("/studies", summary="STOW-RS: store instances")
    async def store_studies(request: Request, caller: Caller = Depends(caller_of)) -> Response:
        return await store(request, caller, None)

    @r.post("/studies/{study}", summary="STOW-RS: store instances of one study")
    async def store_study(request: Request, study: str, caller: Caller = Depends(caller_of)) -> Response:
        return await store(request, caller, study)

    return r
