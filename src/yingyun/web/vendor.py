"""The vendor's JSON edges, `/ris/*`, `/thirdparty/*` and `/api/v1/*` (contract §1): one route class for all.

Every call there is answered with HTTP 200 and the outcome in the envelope's
`code` (§1.2). `VendorRoute` is where that happens, once for both families:
a handler returns its `data` and the route wraps it in the success envelope;
whatever it raises is rendered here — a `ContractError` as it is, an error of
`core.errors` under the code `vendor_code` maps it to, any other exception as
code 1 with the request id that the log line repeats (never a traceback). The
route's dependencies (the families' own: who signed, its limits, the body read
under the route's limit, see `json_body`) run inside it, so what they raise is
rendered the same way. Services never spell a vendor code: this module does.

The third family, `/api/v1/*` (the staff API and the console's data), answers
in the same envelope; its route class (`cloud.staff.edge.StaffRoute`) adds
the staff session and its CSRF check on top of `VendorRoute`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ..contract.codes import Code
from ..contract.envelope import ContractError, envelope, message_for, ok
from ..core import errors
from ..core.logging import quoted, redact_path
from .common import json_response

log = logging.getLogger("yingyun.http")

RIS, THIRDPARTY, API = "ris", "thirdparty", "api"


def vendor_family(path: str) -> str | None:
    """RIS, THIRDPARTY or API for a vendor path, else None."""
    if path.startswith("/ris/"):
        return RIS
    if path.startswith("/thirdparty/"):
        return THIRDPARTY
    if path.startswith("/api/v1/") or path == "/api/v1":
        return API
    return None


def malformed_code(path: str) -> Code:
    """What a body that cannot be read is, by family: §2's parameter error, §3's and the API's format error."""
    return Code.PARAM_ERROR if vendor_family(path) in (RIS, None) else Code.INVALID_FORMAT


# What a service's refusal reads as, per kind and subject; the first match wins
# (a kind's subclasses are listed before it). A `code` on the error overrides.
_BY_SUBJECT: tuple[tuple[type[errors.YingyunError], str, Code], ...] = (
    (errors.TooLarge, "experts", Code.TOO_MANY_EXPERTS),
    (errors.NotFound, "hospital", Code.INSTITUTION_NOT_FOUND),
    (errors.NotFound, "union", Code.UNION_NOT_FOUND),
    (errors.NotFound, "doctor", Code.DOCTOR_NOT_FOUND),
    (errors.NotFound, "report", Code.REPORT_NOT_FOUND),
    (errors.NotFound, "user", Code.USER_NOT_FOUND),
    (errors.NotFound, "department", Code.DEPARTMENT_NOT_FOUND),
    (errors.NotFound, "device", Code.DEVICE_NOT_FOUND),
    (errors.NotFound, "device type", Code.DEVICE_TYPE_NOT_FOUND),
    (errors.Conflict, "doctor", Code.DOCTOR_EXISTS),
    (errors.Conflict, "user", Code.USER_EXISTS),
    (errors.Forbidden, "study", Code.STUDY_NO_PERMISSION),
    # Remote reading (cloud/reading): the report's lock, its version and its state.
    (errors.Conflict, "report", Code.REPORT_EXISTS),
    (errors.Conflict, "report version", Code.REPORT_MODIFIED),
    (errors.Conflict, "report state", Code.REPORT_UPDATE_FAILED),
    (errors.Conflict, "lock", Code.REPORT_LOCKED),
    (errors.Forbidden, "lock", Code.REPORT_UNLOCK_FAILED),
    (errors.Unavailable, "new report", Code.REPORT_CREATE_FAILED),
    (errors.Unavailable, "report", Code.REPORT_UPDATE_FAILED),
    (errors.Conflict, "reading route", Code.DUPLICATE_DATA),
)
_BY_KIND: tuple[tuple[type[errors.YingyunError], Code], ...] = (
    (errors.NotFound, Code.DATA_NOT_FOUND),
    (errors.Conflict, Code.INVALID_DATA),
    (errors.Forbidden, Code.NO_PERMISSION),
    (errors.Unauthenticated, Code.AUTH_FAILED),
    (errors.RateLimited, Code.FETCH_LIMIT),
)


def vendor_code(exc: errors.YingyunError, family: str) -> Code:
    """The envelope code of a refusal on `family`'s paths (RIS, THIRDPARTY or API)."""
    if exc.code is not None:
        return exc.code
    if isinstance(exc, errors.NotFound) and exc.subject == "study":
        # §2 answers "no such data" for a study; §3 (and the API) has its own "study not found".
        return Code.DATA_NOT_FOUND if family == RIS else Code.STUDY_NOT_FOUND
    for kind, subject, code in _BY_SUBJECT:
        if isinstance(exc, kind) and exc.subject == subject:
            return code
    if isinstance(exc, errors.Invalid):
        return Code.PARAM_ERROR if family == RIS else Code.INVALID_FORMAT
    for kind, code in _BY_KIND:
        if isinstance(exc, kind):
            return code
    return Code.INTERNAL_ERROR  # Unavailable, and a kind added to the tree without a row here


def vendor_message(exc: errors.YingyunError, family: str) -> str:
    """The envelope's `message` for `exc` (the sync ingest's and the CLI's answers say it too)."""
    return message_for(vendor_code(exc, family), exc.detail)


def _answer(request: Request, code: Code, detail: str = "", data: Any = None) -> Response:
    request.scope.setdefault("state", {})["code"] = int(code)
    return json_response(ok(data) if code == Code.SUCCESS else envelope(code, detail))


def _fault(request: Request, exc: BaseException, where: str) -> Response:
    rid = request.scope.get("state", {}).get("request_id", "-")
    family = vendor_family(request.url.path)
    logger = logging.getLogger(f"yingyun.{family}") if family else log
    logger.error("unexpected fault %s in %s on %s %s (request %s)", type(exc).__name__, where, request.method,
                 quoted(redact_path(request.url.path)), rid, exc_info=exc)
    return _answer(request, Code.INTERNAL_ERROR, f"internal error, request id {rid}")


def refusal(request: Request, exc: Exception) -> Response:
    """The envelope of what a vendor call raised."""
    if isinstance(exc, ContractError):
        return _answer(request, exc.code, exc.detail)
    if isinstance(exc, errors.YingyunError):
        return _answer(request, vendor_code(exc, vendor_family(request.url.path) or RIS), exc.detail)
    return _fault(request, exc, "a handler")


_ENVELOPED = "__vendor_enveloped__"


def _enveloped(endpoint: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Awaitable[Response]]:
    """The endpoint answering its data in the success envelope (FastAPI reads the signature through `wraps`)."""
    if getattr(endpoint, _ENVELOPED, False):  # include_router rebuilds the route from its endpoint
        return endpoint

    @functools.wraps(endpoint)
    async def answer(*args: Any, **kwargs: Any) -> Response:
        result = await endpoint(*args, **kwargs)
        # A handler that must set a header (the staff session's cookie) answers its envelope itself.
        return result if isinstance(result, Response) else json_response(ok(result))

    setattr(answer, _ENVELOPED, True)
    return answer


class VendorRoute(APIRoute):
    """A `/ris/*`, `/thirdparty/*` or `/api/v1/*` operation: its handler (a coroutine) returns the envelope's
    `data`."""

    def __init__(self, path: str, endpoint: Callable[..., Coroutine[Any, Any, Any]], **kwargs: Any) -> None:
        super().__init__(path, _enveloped(endpoint), **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                response = await handle(request)
            except StarletteHTTPException:
                raise  # the app's handler says those (install_vendor_error_handlers)
            except Exception as exc:  # every other fault becomes an envelope (module docstring)
                return refusal(request, exc)
            request.scope.setdefault("state", {})["code"] = int(Code.SUCCESS)
            return response

        return route_handler


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (before reading it all) anything over `limit`."""
    code = malformed_code(request.scope["path"])
    human = f"{limit // 2**20} MiB" if limit >= 2**20 else f"{limit} bytes"
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise ContractError(code, f"body exceeds the {human} limit of this endpoint")
        except ValueError:
            raise ContractError(code, "Content-Length is not a number") from None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ContractError(code, f"body exceeds the {human} limit of this endpoint")
            chunks.append(chunk)
    except ClientDisconnect:
        # Gone, or cut off by the server for a stalled body (web.protocol): nobody reads the answer.
        raise ContractError(code, "the client went away before the whole body arrived") from None
    return b"".join(chunks)


def parse_json(body: bytes, path: str) -> Any:
    code = malformed_code(path)
    if not body.strip():
        raise ContractError(code, "empty body: expected a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise ContractError(code, "body is not valid UTF-8") from e
        raise ContractError(code, f"malformed JSON: {e.msg} at position {e.pos}") from e


async def json_body(request: Request, limit: int) -> Any:
    """The body as JSON, read under `limit` (call it once the caller is authenticated: nothing is read before)."""
    return parse_json(await read_body(request, limit), request.scope["path"])


def install_vendor_error_handlers(app: FastAPI, *,
                                  is_vendor: Callable[[str], bool] = lambda p: vendor_family(p) is not None) -> None:
    """What no route answers: HTTP errors (404, 405) on vendor paths -> the envelope with HTTP 200; any fault
    that escapes a route (a middleware's) -> the envelope on vendor paths, JSON with HTTP 500 elsewhere."""

    async def on_contract_error(request: Request, exc: Exception) -> Response:
        return refusal(request, exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        path = request.url.path
        if is_vendor(path):
            detail = (
                f"no such endpoint: {request.method} {path}" if exc.status_code == 404
                else f"method {request.method} not allowed on {path}" if exc.status_code == 405
                else str(exc.detail)
            )
            return _answer(request, malformed_code(path), detail)
        return json_response({"detail": exc.detail}, status=exc.status_code, headers=getattr(exc, "headers", None))

    async def on_fault(request: Request, exc: Exception) -> Response:
        if is_vendor(request.url.path):
            return _fault(request, exc, "the app")
        rid = request.scope.get("state", {}).get("request_id", "-")
        log.error("unexpected fault %s on %s %s", type(exc).__name__, request.method,
                  quoted(redact_path(request.url.path)), exc_info=exc)
        return json_response({"detail": f"internal error, request id {rid}"}, status=500)

    app.add_exception_handler(ContractError, on_contract_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_fault)
