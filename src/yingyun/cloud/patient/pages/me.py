"""The patient's own archive: /h5/me — sign in by phone, real name, family members, my studies, shares.

The session cookie (`yy_me`, path /h5/me) is HttpOnly, SameSite=Lax (so the
archive opens from a link in a chat), Secure under TLS, and lasts 30 days
only when "stay signed in" is ticked (else it is the browser's session, and
the server ends it after `session_lifetime_s`). Every POST carries a form
token of the session (or of the pre-session nonce before sign-in).

Opening a study from the archive makes a session on the study's own QR link
(the same one the exam card carries), so the report page and the viewer open
without asking for the phone digits again and are audited as they always are.
Plain forms and links only (no features WeChat's browser lacks); the one
script (me.js) only adds the copy button.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from sqlalchemy import Connection, select, update
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .... import phonecodes
from ....archive import links as link_store
from ....contract.hospital_api import fill_mini_path
from ....core.errors import Conflict, Invalid, NotFound, RateLimited, Unavailable, YingyunError
from ....core.links import qr_png
from ....storage import schema as s
from .. import archive, links, verify
from ..context import PatientContext
from ..i18n import Translator
from ..links import Link, LinkState
from .access import H5Route, PatientCtx
from .me_words import me_translator
from .render import PRE_COOKIE, PRE_LIFETIME_S, SID_COOKIE, audit, client, page, pre_key, pre_nonce, secure_cookie

ME = "/h5/me"
ME_COOKIE = "yy_me"
PURPOSE = "archive"  # the phonecodes purpose of the archive's sign-in codes
SHARE_HOURS = (1, 24, 72, 168, 720)  # 1 hour – 30 days
FORM_PK = 0  # form tokens of the archive are not a link's


@dataclass
class Me:
    session: archive.Session | None
    t: Translator
    csrf_key: str
    new_pre: str | None

    def token(self, form: str) -> str:
        return verify.form_token(self.csrf_key, link_pk=FORM_PK, form=form)

    def checks(self, form: str, given: Any) -> bool:
        return verify.check_form_token(self.csrf_key, str(given or ""), link_pk=FORM_PK, form=form)


def _me(ctx: PatientContext, request: Request, conn: Connection | None = None) -> Me:
    """The visitor; `conn`: a read the caller goes on with (one connection less per page)."""
    if conn is None:
        with ctx.db.read() as own:
            sess = archive.find_session(own, ctx.vault, sid=request.cookies.get(ME_COOKIE), now=time.time())
    else:
        sess = archive.find_session(conn, ctx.vault, sid=request.cookies.get(ME_COOKIE), now=time.time())
    if sess is not None:
        return Me(sess, me_translator(request), sess.csrf_key, None)
    nonce, fresh = pre_nonce(request)
    return Me(None, me_translator(request), pre_key(ctx, nonce), fresh)


def _page(ctx: PatientContext, request: Request, me: Me, name: str, status: int = 200, **kw: Any) -> Response:
    resp = page(ctx, name, me.t, status, me=me, **kw)
    if me.new_pre:
        resp.set_cookie(PRE_COOKIE, me.new_pre, max_age=PRE_LIFETIME_S, path=ME, httponly=True, samesite="lax",
                        secure=secure_cookie(ctx, request))
    return resp


def mini_links(conn: Connection, people: list[archive.PersonStudies]) -> dict[int, str]:
    """study pk -> "open in the mini program" URL, for studies of a hospital whose partner set
    --mini-app-id (WeChat's plain URL scheme: a link, no JS-SDK, so it works in WeChat's browser)."""
    cards = [c for p in people for c in p.studies]
    if not cards:
        return {}
    pa, g, h = s.partners, s.partner_grants, s.hospitals
    rows = conn.execute(
        select(h.c.id, pa.c.mini_app_id, pa.c.mini_path)
        .join(g, ((g.c.kind == "hospital") & (g.c.target_id == h.c.id))
              | ((g.c.kind == "union") & (g.c.target_id == h.c.union_id)))
        .join(pa, pa.c.app_id == g.c.app_id)
        .where(h.c.id.in_({c.hospital_id for c in cards}), pa.c.enabled.is_(True), pa.c.mini_app_id.is_not(None))
        .order_by(pa.c.app_id)
    ).all()
    mini: dict[str, tuple[str, str | None]] = {}
    for r in rows:
        mini.setdefault(r.id, (r.mini_app_id, r.mini_path))
    out = {}
    for c in cards:
        if c.hospital_id in mini:
            app_id, template = mini[c.hospital_id]
            path, _, query = fill_mini_path(template, report_id="", study_id=c.study_id,
                                            hospital_id=c.hospital_id).partition("?")
            out[c.pk] = "weixin://dl/business/?" + urlencode({"appid": app_id, "path": path, "query": query})
    return out


def _error(me: Me, e: YingyunError) -> tuple[str, int | None, int]:
    """(words, contract code, HTTP status) of a refusal of the archive."""
    t = me.t
    code = int(e.code) if e.code is not None else None
    if isinstance(e, phonecodes.PhoneLocked):
        return t("me_locked", min=max(1, math.ceil((e.retry_after or 0) / 60))), code, 429
    if isinstance(e, phonecodes.WrongCode):
        return (t("wrong_code", n=e.remaining) if e.remaining is not None else t("no_code")), code, 400
    if isinstance(e, phonecodes.CodeExpired):
        return t("code_expired"), code, 400
    if isinstance(e, phonecodes.DailyLimit):
        return t("daily_limit"), code, 429
    if isinstance(e, phonecodes.TooSoon):
        return t("too_soon", s=math.ceil(e.wait_s)), None, 429
    if isinstance(e, Unavailable):
        return t("sms_failed"), None, 502
    status = 429 if isinstance(e, RateLimited) else 409 if isinstance(e, Conflict) else 404 if isinstance(
        e, NotFound) else 400
    if code is not None:
        return t(f"err_{code}", n=archive.MAX_MEMBERS), code, status
    if isinstance(e, Conflict):
        return t("err_member_dup"), None, status
    if isinstance(e, Invalid) and e.field == "phone":
        return t("me_bad_phone"), None, 400
    return e.detail, None, 400


class SignedOut(Exception):
    """No live archive session: `MeRoute` sends the visitor to the sign-in page."""


def _signed_in(ctx: PatientContext, request: Request, conn: Connection | None = None) -> tuple[Me, archive.Session]:
    me = _me(ctx, request, conn)
    if me.session is None:
        raise SignedOut()
    return me, me.session


class MeRoute(H5Route):
    """The archive's pages: a request without a live session goes to the sign-in page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await inner(request)
            except SignedOut:
                return RedirectResponse(ME, status_code=303, headers={"Cache-Control": "no-store"})

        return handler


router = APIRouter(route_class=MeRoute)


def _set_me_cookie(ctx: PatientContext, request: Request, resp: Response, sid: str, persistent: bool) -> None:
    resp.set_cookie(ME_COOKIE, sid, max_age=int(archive.STAY_SIGNED_IN_S) if persistent else None, path=ME,
                    httponly=True, samesite="lax", secure=secure_cookie(ctx, request))


def _audit_me(ctx: PatientContext, request: Request, access: str, detail: str | None = None) -> None:
    ip, ua = client(request)
    ctx.audit.record(access=access, link_pk=None, link_kind="archive", hospital_id=None, study_id=None,
                     study_uid=None, client_ip=ip, user_agent=ua, detail=detail)


# -- sign-in -------------------------------------------------------------------------------


def _signin_page(ctx: PatientContext, request: Request, me: Me, *, phone: str = "", error: str | None = None,
                 notice: str | None = None, code: int | None = None, status: int = 200) -> Response:
    return _page(ctx, request, me, "me_signin.html", status, phone=phone, error=error, notice=notice, code=code,
                 csrf_send=me.token("send-code"), csrf_signin=me.token("sign-in"))


@router.get(ME)
def me_home(request: Request, ctx: PatientCtx) -> Response:
    me = _me(ctx, request)
    if me.session is not None:
        return RedirectResponse(ME + "/studies", status_code=303)
    return _signin_page(ctx, request, me)


@router.post(ME + "/send-code")
async def me_send_code(request: Request, ctx: PatientCtx) -> Response:
    form = dict(await request.form())
    return await run_in_threadpool(_send_code, ctx, request, form)


def _send_code(ctx: PatientContext, request: Request, form: dict[str, Any]) -> Response:
    me = _me(ctx, request)
    phone = str(form.get("phone") or "")[:32]
    if not me.checks("send-code", form.get("csrf")):
        return _signin_page(ctx, request, me, phone=phone, error=me.t("form_expired"), status=403)
    try:
        ctx.codes.send(phone=phone, purpose=PURPOSE)
    except YingyunError as e:
        words, code, status = _error(me, e)
        _audit_me(ctx, request, "archive-code-refused", detail=f"code={code}")
        return _signin_page(ctx, request, me, phone=phone, error=words, code=code, status=status)
    _audit_me(ctx, request, "archive-code-sent")
    return _signin_page(ctx, request, me, phone=phone, notice=me.t("code_sent"))


@router.post(ME + "/sign-in")
async def me_sign_in(request: Request, ctx: PatientCtx) -> Response:
    form = dict(await request.form())
    return await run_in_threadpool(_sign_in, ctx, request, form)


def _sign_in(ctx: PatientContext, request: Request, form: dict[str, Any]) -> Response:
    me = _me(ctx, request)
    phone = str(form.get("phone") or "")[:32]
    if not me.checks("sign-in", form.get("csrf")):
        return _signin_page(ctx, request, me, phone=phone, error=me.t("form_expired"), status=403)
    persistent = form.get("remember") == "1"
    try:
        ctx.codes.check(phone=phone, purpose=PURPOSE, code=str(form.get("code") or "")[:16])
    except YingyunError as e:
        words, code, status = _error(me, e)
        _audit_me(ctx, request, "archive-sign-in-refused", detail=f"code={code}")
        return _signin_page(ctx, request, me, phone=phone, error=words, code=code, status=status)
    now = time.time()
    with ctx.db.write() as conn:
        account_pk = archive.account_for_phone(conn, ctx.vault, phone=phone, now=now)
        sid = archive.create_session(conn, account_pk=account_pk, persistent=persistent,
                                     lifetime_s=ctx.settings.session_lifetime_s, now=now)
        verified = conn.execute(select(s.patient_accounts.c.verified_at)
                                .where(s.patient_accounts.c.pk == account_pk)).scalar() is not None
    _audit_me(ctx, request, "archive-sign-in", detail=f"account={account_pk} persistent={persistent}")
    resp = RedirectResponse(ME + ("/studies" if verified else "/verify"), status_code=303)
    _set_me_cookie(ctx, request, resp, sid, persistent)
    return resp


@router.post(ME + "/sign-out")
async def me_sign_out(request: Request, ctx: PatientCtx) -> Response:
    form = dict(await request.form())
    return await run_in_threadpool(_sign_out, ctx, request, form)


def _sign_out(ctx: PatientContext, request: Request, form: dict[str, Any]) -> Response:
    me = _me(ctx, request)
    if me.session is not None and me.checks("sign-out", form.get("csrf")):
        with ctx.db.write() as conn:
            archive.end_session(conn, session_pk=me.session.pk, now=time.time())
    resp = RedirectResponse(ME, status_code=303)
    resp.delete_cookie(ME_COOKIE, path=ME)
    return resp


# -- real-name verification ---------------------------------------------------------------------


def _verify_page(ctx: PatientContext, request: Request, me: Me, *, error: str | None = None,
                 code: int | None = None, status: int = 200) -> Response:
    return _page(ctx, request, me, "me_verify.html", status, error=error, code=code, csrf=me.token("verify"))


@router.get(ME + "/verify")
def me_verify_page(request: Request, ctx: PatientCtx) -> Response:
    me, sess = _signed_in(ctx, request)
    return _verify_page(ctx, request, me)


@router.post(ME + "/verify")
async def me_verify(request: Request, ctx: PatientCtx) -> Response:
    form = dict(await request.form())
    return await run_in_threadpool(_verify, ctx, request, form)


def _verify(ctx: PatientContext, request: Request, form: dict[str, Any]) -> Response:
    me, sess = _signed_in(ctx, request)
    if not me.checks("verify", form.get("csrf")):
        return _verify_page(ctx, request, me, error=me.t("form_expired"), status=403)
    try:
        with ctx.db.write() as conn:
            archive.verify_identity(conn, ctx.vault, account_pk=sess.account.pk,
                                    name=str(form.get("name") or "")[:64], id_card=str(form.get("id_card") or "")[:32],
                                    now=time.time())
    except YingyunError as e:
        words, code, status = _error(me, e)
        _audit_me(ctx, request, "archive-verify-refused", detail=f"code={code}")
        return _verify_page(ctx, request, me, error=words, code=code, status=status)
    _audit_me(ctx, request, "archive-verified", detail=f"account={sess.account.pk}")
    return RedirectResponse(ME + "/studies", status_code=303)


# -- my studies ---------------------------------------------------------------------------------


@router.get(ME + "/studies")
def me_studies(request: Request, ctx: PatientCtx) -> Response:
    with ctx.db.read() as conn:
        me, sess = _signed_in(ctx, request, conn)
        people = archive.my_studies(conn, ctx.vault, sess.account)
        mini = mini_links(conn, people)
    _audit_me(ctx, request, "archive-view-studies", detail=f"account={sess.account.pk}")
    return _page(ctx, request, me, "me_studies.html", people=people, account=sess.account, mini=mini,
                 hours=SHARE_HOURS, csrf_share=me.token("share"), csrf_out=me.token("sign-out"))


def _qr_link(conn: Connection, ctx: PatientContext, study: Any) -> Link:
    """The study's live QR link (made when it has none yet: the exam card may not have been printed)."""
    token = link_store.get_or_create_qr_token(conn, ctx.vault, hospital_id=study.hospital_id,
                                              study_id=study.study_id, created_by="archive")
    res = links.resolve(conn, path_kind="s", token=token, now=time.time())
    if res.link is None or res.state is not LinkState.OK:
        raise NotFound("the study cannot be opened now", subject="study")
    return res.link


@router.get(ME + "/studies/{study_pk}/open")
def me_open(request: Request, ctx: PatientCtx, study_pk: int) -> Response:
    me, sess = _signed_in(ctx, request)
    now = time.time()
    try:
        with ctx.db.write() as conn:
            study = archive.owned_study(conn, ctx.vault, sess.account, study_pk)
            link = _qr_link(conn, ctx, study)
            sid = verify.create_session(conn, link_pk=link.pk, now=now, lifetime_s=ctx.settings.session_lifetime_s)
    except NotFound:
        return RedirectResponse(ME + "/studies", status_code=303)
    audit(ctx, request, "archive-open", link, study, detail=f"account={sess.account.pk}")
    resp = RedirectResponse(link.base_path, status_code=303)
    resp.set_cookie(SID_COOKIE, sid, max_age=int(ctx.settings.session_lifetime_s), path=link.base_path,
                    httponly=True, samesite="strict", secure=secure_cookie(ctx, request))
    return resp


# -- family members -------------------------------------------------------------------------------


def _members_page(ctx: PatientContext, request: Request, me: Me, *, error: str | None = None,
                  code: int | None = None, status: int = 200) -> Response:
    assert me.session is not None
    with ctx.db.read() as conn:
        people = archive.members(conn, ctx.vault, account_pk=me.session.account.pk)
    return _page(ctx, request, me, "me_members.html", status, members=people, error=error, code=code,
                 relationships=archive.RELATIONSHIPS, max_members=archive.MAX_MEMBERS,
                 max_scans=archive.MAX_SCANS_PER_DAY, csrf_add=me.token("member-add"),
                 csrf_scan=me.token("member-scan"), csrf_remove={m.pk: me.token(f"member-remove-{m.pk}")
                                                                 for m in people})


@router.get(ME + "/members")
def me_members(request: Request, ctx: PatientCtx) -> Response:
    me, sess = _signed_in(ctx, request)
    return _members_page(ctx, request, me)


@router.post(ME + "/members")
async def me_member_add(request: Request, ctx: PatientCtx) -> Response:
    form = dict(await request.form())
    return await run_in_threadpool(_member_add, ctx, request, form)


def _member_add(ctx: PatientContext, request: Request, form: dict[str, Any]) -> Response:
    me, sess = _signed_in(ctx, request)
    if not me.checks("member-add", form.get("csrf")):
        return _members_page(ctx, request, me, error=me.t("form_expired"), status=403)
    try:
        with ctx.db.write() as conn:
            pk = archive.add_member(conn, ctx.vault, account_pk=sess.account.pk,
                                    name=str(form.get("name") or "")[:64],
                                    id_card=str(form.get("id_card") or "")[:32],
                                    relationship=str(form.get("relationship") or ""), now=time.time())
    except YingyunError as e:
        words, code, status = _error(me, e)
        _audit_me(ctx, request, "archive-member-refused", detail=f"code={code}")
        return _members_page(ctx, request, me, error=words, code=code, status=status)
    _audit_me(ctx, request, "archive-member-added", detail=f"account={sess.account.pk} member={pk}")
    return RedirectResponse(ME + "/members", status_code=303)


@router.post(ME + "/members/scan")
async def me_member_scan(request: Request, ctx: PatientCtx) -> Response:
    form = dict(await request.form())
    return await run_in_threadpool(_member_scan, ctx, request, form)


def _scanned_token(text: str) -> str:
    """The token of an exam card's QR code, from its URL as scanned (or the token alone)."""
    path = urlsplit(text.strip()).path.rstrip("/")
    return path.rsplit("/", 1)[-1] if "/h5/s/" in path else text.strip()


def _member_scan(ctx: PatientContext, request: Request, form: dict[str, Any]) -> Response:
    me, sess = _signed_in(ctx, request)
    if not me.checks("member-scan", form.get("csrf")):
        return _members_page(ctx, request, me, error=me.t("form_expired"), status=403)
    account_pk = sess.account.pk
    now = time.time()
    try:
        # Counted first, in its own transaction: a wrong answer uses up one of the day's binds,
        # so the last four digits cannot be guessed through this form.
        with ctx.db.write() as conn:
            archive.count_scan(conn, account_pk=account_pk, now=now, tz=ctx.settings.timezone)
        with ctx.db.read() as conn:
            res = links.resolve(conn, path_kind="s", token=_scanned_token(str(form.get("qr") or "")[:512]), now=now)
        ch = verify.challenge_for(ctx.vault, res.study, "last4") if res.state is LinkState.OK else None
        if ch is None or not verify.answer_matches(ch, str(form.get("answer") or "")[:8]):
            raise NotFound("no such exam card, or the wrong digits", subject="scan")
        name, id_card = archive.identity_of_study(ctx.vault, res.study)
        with ctx.db.write() as conn:
            pk = archive.add_member(conn, ctx.vault, account_pk=account_pk, name=name, id_card=id_card,
                                    relationship=str(form.get("relationship") or "other"), now=now)
    except NotFound:
        _audit_me(ctx, request, "archive-scan-refused")
        return _members_page(ctx, request, me, error=me.t("err_scan_wrong"), status=400)
    except YingyunError as e:
        words, code, status = _error(me, e)
        _audit_me(ctx, request, "archive-scan-refused", detail=f"code={code}")
        return _members_page(ctx, request, me, error=words, code=code, status=status)
    _audit_me(ctx, request, "archive-member-added", detail=f"account={account_pk} member={pk} by=scan")
    return RedirectResponse(ME + "/members", status_code=303)


@router.post(ME + "/members/{member_pk}/remove")
async def me_member_remove(request: Request, ctx: PatientCtx, member_pk: int) -> Response:
    form = dict(await request.form())
    return await run_in_threadpool(_member_remove, ctx, request, member_pk, form)


def _member_remove(ctx: PatientContext, request: Request, member_pk: int, form: dict[str, Any]) -> Response:
    me, sess = _signed_in(ctx, request)
    if not me.checks(f"member-remove-{member_pk}", form.get("csrf")):
        return _members_page(ctx, request, me, error=me.t("form_expired"), status=403)
    try:
        with ctx.db.write() as conn:
            archive.remove_member(conn, account_pk=sess.account.pk, member_pk=member_pk)
    except YingyunError as e:
        words, code, status = _error(me, e)
        return _members_page(ctx, request, me, error=words, code=code, status=status)
    _audit_me(ctx, request, "archive-member-removed", detail=f"account={sess.account.pk} member={member_pk}")
    return RedirectResponse(ME + "/members", status_code=303)


# -- shares and who looked --------------------------------------------------------------------------


def _creator(account_pk: int) -> str:
    return f"archive:{account_pk}"


@router.post(ME + "/shares")
async def me_share(request: Request, ctx: PatientCtx) -> Response:
    form = await request.form()
    fields = {"csrf": form.get("csrf"), "hours": form.get("hours"), "password": form.get("password"),
              "scope": form.get("scope"), "study": form.getlist("study")}
    return await run_in_threadpool(_share, ctx, request, fields)


def _share(ctx: PatientContext, request: Request, form: dict[str, Any]) -> Response:
    me, sess = _signed_in(ctx, request)
    if not me.checks("share", form.get("csrf")):
        return RedirectResponse(ME + "/studies", status_code=303)
    try:
        hours = int(str(form.get("hours") or "24"))
        picked = [int(str(v)) for v in form.get("study") or []][:20]
    except ValueError:
        return RedirectResponse(ME + "/studies", status_code=303)
    if hours not in SHARE_HOURS or not picked:
        return RedirectResponse(ME + "/studies", status_code=303)
    password = str(form.get("password") or "")[:64] or None
    scope = str(form.get("scope") or "") or None
    if scope is not None and scope not in links.SHARE_SCOPES:
        return RedirectResponse(ME + "/studies", status_code=303)
    now = time.time()
    made = []
    try:
        with ctx.db.write() as conn:
            for study_pk in picked:
                study = archive.owned_study(conn, ctx.vault, sess.account, study_pk)
                parent = _qr_link(conn, ctx, study)
                token = links.create_share(conn, ctx.vault, parent=parent, now=now, lifetime_s=hours * 3600.0,
                                           password=password, created_by=_creator(sess.account.pk),
                                           scope=scope)
                made.append((study, parent, token))
    except NotFound:
        return RedirectResponse(ME + "/studies", status_code=303)
    base = ctx.settings.public_url
    shown = []
    for study, parent, token in made:
        url = f"{base}/h5/share/{token}"
        audit(ctx, request, "share-created", parent, study,
              detail=f"hours={hours} password={bool(password)} scope={scope or 'all'} by=archive")
        shown.append({"url": url, "qr": "data:image/png;base64," + base64.b64encode(qr_png(url)).decode("ascii"),
                      "exam": study.study_desc or study.body_part or "", "date": (study.study_date or "")[:10]})
    return _page(ctx, request, me, "me_share_made.html", shares=shown, expires_at=now + hours * 3600.0)


def _my_shares(conn: Connection, ctx: PatientContext, account_pk: int, now: float) -> list[dict[str, Any]]:
    lk, st = s.links, s.studies
    rows = conn.execute(
        select(lk.c.pk, lk.c.token_enc, lk.c.expires_at, lk.c.created_at, lk.c.password_hash, st.c.study_desc,
               st.c.body_part, st.c.study_date)
        .join(st, (st.c.hospital_id == lk.c.hospital_id) & (st.c.study_id == lk.c.study_id))
        .where(lk.c.kind == "share", lk.c.created_by == _creator(account_pk), lk.c.revoked_at.is_(None),
               lk.c.expires_at > now)
        .order_by(lk.c.created_at.desc(), lk.c.pk.desc())
    ).all()
    return [{"pk": r.pk, "url": f"{ctx.settings.public_url}/h5/share/{ctx.vault.decrypt(r.token_enc)}",
             "expires_at": r.expires_at, "created_at": r.created_at, "has_password": r.password_hash is not None,
             "exam": r.study_desc or r.body_part or "", "date": (r.study_date or "")[:10]} for r in rows]


@router.get(ME + "/shares")
def me_shares(request: Request, ctx: PatientCtx) -> Response:
    me, sess = _signed_in(ctx, request)
    with ctx.db.read() as conn:
        items = _my_shares(conn, ctx, sess.account.pk, time.time())
    return _page(ctx, request, me, "me_shares.html", shares=items,
                 csrf_revoke={i["pk"]: me.token(f"share-revoke-{i['pk']}") for i in items})


@router.post(ME + "/shares/{share_pk}/revoke")
async def me_share_revoke(request: Request, ctx: PatientCtx, share_pk: int) -> Response:
    form = dict(await request.form())
    return await run_in_threadpool(_share_revoke, ctx, request, share_pk, form)


def _share_revoke(ctx: PatientContext, request: Request, share_pk: int, form: dict[str, Any]) -> Response:
    me, sess = _signed_in(ctx, request)
    if me.checks(f"share-revoke-{share_pk}", form.get("csrf")):
        lk = s.links
        with ctx.db.write() as conn:
            done = conn.execute(update(lk).where(lk.c.pk == share_pk, lk.c.kind == "share",
                                                 lk.c.created_by == _creator(sess.account.pk),
                                                 lk.c.revoked_at.is_(None)).values(revoked_at=time.time())).rowcount
        if done:
            _audit_me(ctx, request, "share-revoked", detail=f"share={share_pk} by=archive")
    return RedirectResponse(ME + "/shares", status_code=303)


# What a row of the access trail says the visitor did ("view-report" …), for the patient's eyes.
LOOKED = {"view-report": "me_access_report", "view-viewer": "me_access_images", "download-report": "me_access_download",
          "download-images": "me_access_download", "download-dicom": "me_access_download"}


@router.get(ME + "/studies/{study_pk}/access")
def me_access(request: Request, ctx: PatientCtx, study_pk: int) -> Response:
    me, sess = _signed_in(ctx, request)
    aa, lk = s.access_audit, s.links
    try:
        with ctx.db.read() as conn:
            study = archive.owned_study(conn, ctx.vault, sess.account, study_pk)
            rows = conn.execute(
                select(aa.c.at, aa.c.access, aa.c.link_kind, lk.c.created_at.label("link_created"),
                       lk.c.created_by)
                .outerjoin(lk, lk.c.pk == aa.c.link_pk)
                .where(aa.c.hospital_id == study.hospital_id, aa.c.study_id == study.study_id,
                       aa.c.access.in_(list(LOOKED)))
                .order_by(aa.c.at.desc()).limit(200)
            ).all()
    except NotFound:
        return RedirectResponse(ME + "/studies", status_code=303)
    t = me.t
    entries = []
    for r in rows:
        if r.link_kind == "share":
            who = t("me_via_share", time=_local(ctx, r.link_created))
        else:
            who = t({"qr": "me_via_qr", "partner": "me_via_partner", "doctor": "me_via_doctor"}.get(
                r.link_kind or "", "me_via_doctor"))
        entries.append({"at": r.at, "what": t(LOOKED[r.access]), "who": who})
    return _page(ctx, request, me, "me_access.html", entries=entries,
                 exam=study.study_desc or study.body_part or "", date=(study.study_date or "")[:10])


def _local(ctx: PatientContext, ts: float | None) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(ctx.settings.timezone)).strftime("%Y-%m-%d %H:%M") if ts else ""
