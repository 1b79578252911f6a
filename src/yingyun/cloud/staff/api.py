"""The session API: `POST|GET|DELETE /api/v1/session` and `POST /api/v1/session/sms-code` (issue 14 item 2).

`POST /api/v1/session` takes `{"username", "password"}` (plus `"otp"` for a
user with TOTP) or `{"phone", "smsCode"}`, and answers `data: {"csrfToken",
"user": {"username", "name", "roles": [{"role", "scope"}]}}` with the
session cookie (HttpOnly, SameSite=Strict, Secure under TLS). `GET` answers
the same `data` for the current session, `DELETE` ends it. Every other
state-changing `/api/v1` request sends the `csrfToken` back as
`X-CSRF-Token` (edge.py).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...contract.codes import Code
from ...contract.envelope import ok
from ...core.errors import Invalid
from ...web.common import json_response
from ...web.vendor import json_body
from . import sessions
from .edge import SESSION_COOKIE, Caller, CallerDep, StaffCtx, StaffRoute

router = APIRouter(prefix="/api/v1", tags=["Staff sessions"], route_class=StaffRoute)

BODY_LIMIT = 16 * 1024


def session_data(caller: Caller) -> dict[str, Any]:
    return {"csrfToken": caller.csrf_token, "user": caller.as_json()}


def text_field(body: dict[str, Any], name: str) -> str:
    """A required string field of the body: 20031 when missing or empty, 20030 when not a string."""
    value = body.get(name)
    if value is None or value == "":
        raise Invalid(f"{name} is required", field=name, code=Code.REQUIRED_EMPTY)
    if not isinstance(value, str):
        raise Invalid(f"{name} must be a string", field=name, code=Code.INVALID_FORMAT)
    return value


async def object_body(request: Request) -> dict[str, Any]:
    body = await json_body(request, BODY_LIMIT)
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object", code=Code.INVALID_FORMAT)
    return body


def _secure(request: Request, public_url: str) -> bool:
    if request.url.scheme == "https":
        return True
    pub = urlsplit(public_url)
    return pub.scheme == "https" and request.url.hostname == pub.hostname


@router.post("/session", summary="Sign in: username + password (+ otp), or phone + smsCode")
async def open_session(request: Request, ctx: StaffCtx) -> Response:
    body = await object_body(request)
    otp = body.get("otp")
    if otp is not None and not isinstance(otp, str):
        raise Invalid("otp must be a string", field="otp", code=Code.INVALID_FORMAT)
    if "phone" in body or "smsCode" in body:
        phone, code = text_field(body, "phone"), text_field(body, "smsCode")
        opened = await run_in_threadpool(sessions.sign_in_sms, ctx, phone=phone, code=code, otp=otp)
    else:
        username, password = text_field(body, "username"), text_field(body, "password")
        opened = await run_in_threadpool(sessions.sign_in, ctx, username=username, password=password, otp=otp)
    resp = json_response(ok(session_data(opened.caller)))
    resp.set_cookie(SESSION_COOKIE, opened.token, path="/", httponly=True, samesite="strict",
                    secure=_secure(request, ctx.public_url))
    return resp


@router.get("/session", summary="The current session: its CSRF token and user")
async def current_session(caller: CallerDep) -> dict[str, Any]:
    return session_data(caller)


@router.delete("/session", summary="Sign out")
async def close_session(request: Request, ctx: StaffCtx, caller: CallerDep) -> Response:
    await run_in_threadpool(sessions.sign_out, ctx, caller)
    resp = json_response(ok())
    resp.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                       secure=_secure(request, ctx.public_url))
    return resp



@router.post("/session/sms-code", summary="Send a sign-in code to the phone bound to a user")
async def send_sms_code(request: Request, ctx: StaffCtx) -> None:
    body = await object_body(request)
    await run_in_threadpool(sessions.send_sms_code, ctx, phone=text_field(body, "phone"))
