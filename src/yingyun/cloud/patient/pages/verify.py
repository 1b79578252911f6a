"""Verification: the answer to a link's challenge, and the SMS code sent on request.

These two handlers resolve the link themselves rather than through the gate:
they are what a visitor without a session may do."""

from __future__ import annotations

import math
import time

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .... import phonecodes
from ....contract.codes import Code
from ....core.sms import SmsError
from .. import links, verify
from ..context import PatientContext
from ..links import LinkState
from .access import H5Route, PatientCtx
from .render import PRE_COOKIE, SID_COOKIE, audit, locked_page, message, pre_key, set_cookie, translator, verify_page

router = APIRouter(route_class=H5Route)


@router.post("/h5/{kind}/{token}/verify")
async def verify_post(request: Request, ctx: PatientCtx, kind: str, token: str) -> Response:
    form = await request.form()
    answer = str(form.get("answer") or "")[:64]
    csrf = str(form.get("csrf") or "")
    return await run_in_threadpool(_verify, ctx, request, kind, token, answer, csrf)


def _verify(ctx: PatientContext, request: Request, kind: str, token: str, answer: str, csrf: str) -> Response:
    st = ctx.settings
    t = translator(request)
    now = time.time()
    with ctx.db.read() as conn:
        res = links.resolve(conn, path_kind=kind, token=token, now=now)
    link = res.link
    if res.state is not LinkState.OK or link is None:
        return message(ctx, t, res.state)
    if not (link.needs_verification or (link.kind == "share" and link.password_hash)):
        return RedirectResponse(link.base_path, status_code=303)
    nonce = request.cookies.get(PRE_COOKIE)
    if not nonce or not verify.check_form_token(pre_key(ctx, nonce), csrf, link_pk=link.pk, form="verify"):
        audit(ctx, request, "csrf-refused", link, res.study)
        return verify_page(ctx, request, t, link, res.study, error=t("form_expired"), status=403)
    if link.kind == "share":
        ch = verify.Challenge("password")
    else:
        ch = verify.challenge_for(ctx.vault, res.study, st.verify_method)
    if ch.method == "none":
        return verify_page(ctx, request, t, link, res.study)
    outcome, failure, sid = "", None, None
    with ctx.db.write() as conn:
        until = verify.locked_until(conn, link.pk, now)
        if until is not None:
            outcome = "locked"
        else:
            if ch.method == "password":
                ok = links.check_password(link.password_hash, answer)
                result = "ok" if ok else "wrong"
            elif ch.method == "sms":
                assert ch.phone is not None  # an sms challenge always carries the phone
                result = phonecodes.check_code(conn, ctx.vault, purpose=verify.code_purpose(link.pk),
                                               phone=ch.phone, answer=answer, now=now)
            else:
                result = "ok" if verify.answer_matches(ch, answer) else "wrong"
            if result == "ok":
                verify.register_success(conn, link.pk, now)
                sid = verify.create_session(conn, link_pk=link.pk, now=now, lifetime_s=st.session_lifetime_s)
                verify.purge_sessions(conn, now=now)
                outcome = "ok"
            elif result in ("expired", "none"):
                outcome = result
            else:
                failure = verify.register_failure(conn, link.pk, now, limit=st.verify_attempt_limit,
                                                  lock_s=st.verify_lock_s)
                outcome = "locked-now" if failure.locked_until else "wrong"
    if outcome == "ok" and sid is not None:
        audit(ctx, request, "verify-ok", link, res.study)
        resp = RedirectResponse(link.base_path, status_code=303)
        set_cookie(ctx, resp, request, link, SID_COOKIE, sid, int(st.session_lifetime_s))
        return resp
    if outcome in ("locked", "locked-now"):
        audit(ctx, request, "verify-locked" if outcome == "locked-now" else "locked", link, res.study)
        with ctx.db.read() as conn:
            until = verify.locked_until(conn, link.pk, time.time()) or now + st.verify_lock_s
        return locked_page(ctx, t, until)
    if outcome == "expired":
        audit(ctx, request, "verify-expired-code", link, res.study)
        return verify_page(ctx, request, t, link, res.study, error=t("code_expired"), status=400,
                           code=int(Code.VERIFICATION_CODE_EXPIRED))
    if outcome == "none":
        return verify_page(ctx, request, t, link, res.study, error=t("no_code"), status=400,
                           code=int(Code.WRONG_VERIFICATION_CODE))
    assert failure is not None
    audit(ctx, request, "verify-failed", link, res.study, detail=f"remaining={failure.remaining}")
    key = "wrong_password" if ch.method == "password" else "wrong_code" if ch.method == "sms" else "wrong_answer"
    code = Code.SHARE_PASSWORD if ch.method == "password" else Code.WRONG_VERIFICATION_CODE
    return verify_page(ctx, request, t, link, res.study, error=t(key, n=failure.remaining), status=400,
                       code=int(code))


@router.post("/h5/{kind}/{token}/send-code")
async def send_code(request: Request, ctx: PatientCtx, kind: str, token: str) -> Response:
    form = await request.form()
    return await run_in_threadpool(_send_code, ctx, request, kind, token, str(form.get("csrf") or ""))


def _send_code(ctx: PatientContext, request: Request, kind: str, token: str, csrf: str) -> Response:
    st = ctx.settings
    t = translator(request)
    now = time.time()
    with ctx.db.read() as conn:
        res = links.resolve(conn, path_kind=kind, token=token, now=now)
    link = res.link
    if res.state is not LinkState.OK or link is None:
        return message(ctx, t, res.state)
    ch = verify.challenge_for(ctx.vault, res.study, st.verify_method) if link.needs_verification else None
    if ch is None or ch.method != "sms" or ch.phone is None:
        return RedirectResponse(link.base_path, status_code=303)
    nonce = request.cookies.get(PRE_COOKIE)
    if not nonce or not verify.check_form_token(pre_key(ctx, nonce), csrf, link_pk=link.pk, form="send-code"):
        return verify_page(ctx, request, t, link, res.study, error=t("form_expired"), status=403)
    try:
        with ctx.db.write() as conn:
            if verify.locked_until(conn, link.pk, now) is not None:
                return verify_page(ctx, request, t, link, res.study)
            code = phonecodes.issue_code(conn, ctx.vault, purpose=verify.code_purpose(link.pk), phone=ch.phone,
                                         now=now, policy=phonecodes.CodePolicy.from_settings(st))
            ctx.sms.send(phone=ch.phone, code=code, ttl_s=int(st.sms_code_lifetime_s))
    except phonecodes.DailyLimit:
        audit(ctx, request, "code-daily-limit", link, res.study)
        return verify_page(ctx, request, t, link, res.study, error=t("daily_limit"), status=429,
                           code=int(Code.DAILY_CODE_LIMIT))
    except phonecodes.TooSoon as e:
        return verify_page(ctx, request, t, link, res.study, error=t("too_soon", s=math.ceil(e.wait_s)), status=429)
    except SmsError:
        audit(ctx, request, "code-send-failed", link, res.study)
        return verify_page(ctx, request, t, link, res.study, error=t("sms_failed"), status=502)
    audit(ctx, request, "code-sent", link, res.study)
    return verify_page(ctx, request, t, link, res.study, notice=t("code_sent"))

