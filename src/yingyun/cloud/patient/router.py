"""The cloud-film pages: /h5/{s|p|d|share}/{token}[/...].

Server-rendered (Jinja2), readable without JavaScript except the image
viewer; every /h5 response carries a strict CSP (no inline script),
no-referrer and nosniff (SECURITY_HEADERS, installed by serve for the whole
prefix), and pages are `no-store`. A QR link shows nothing of the study
until the visitor is verified; a verified visitor gets an HttpOnly,
SameSite=Strict session cookie whose path is the link's own base path, so
it is sent for that link's pages only. Every page view, image and download
is audited (audit.py).
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response, StreamingResponse

from ...contract.codes import Code
from ...core.render import PRESETS, RenderError, RenderOptions, preset_names
from ...core.sms import SmsError
from . import files, links, study as study_svc, verify
from .context import PatientContext
from .i18n import Translator, pick_language
from .links import Link, LinkState

log = logging.getLogger("yingyun.film")

HERE = Path(__file__).parent
SID_COOKIE = "yy_sid"
PRE_COOKIE = "yy_pre"
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; object-src 'self'; "
       "frame-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# On every /h5 response, whatever route (or none) answered it: serve installs
# web.common.SecurityHeaders with this table. Cache-Control is the routes' own.
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}
PREFIX = "/h5"
VIEW_OPTS = dict(fmt="jpeg", quality=90, viewport=(1024, 1024))
THUMB_OPTS = dict(fmt="jpeg", quality=80, viewport=(160, 160))
SHARE_DAYS = (1, 7, 30)


class _H5Route(APIRoute):
    """Pages and their images are not stored by any cache unless the route says otherwise."""

    def get_route_handler(self) -> Callable:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            response = await inner(request)
            if "cache-control" not in response.headers:
                response.headers["Cache-Control"] = "no-store"
            return response

        return handler


@dataclass
class Access:
    """A request that may see the study."""

    link: Link
    study: Any
    uids: list[str]
    session: Any
    t: Translator
    csrf_key: str
    new_pre: str | None  # a pre-session nonce to set as a cookie


def router(ctx: PatientContext) -> APIRouter:
    r = APIRouter(route_class=_H5Route, include_in_schema=False)
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    static = _load_static(HERE / "static")
    env.globals["static"] = lambda name: f"/h5/static/{name}?v={static[name][2]}"
    zone = ZoneInfo(ctx.settings.timezone)
    env.filters["localtime"] = lambda ts: datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M") if ts else ""
    st = ctx.settings

    # -- helpers ------------------------------------------------------------

    def t_for(request: Request) -> Translator:
        return Translator(pick_language(request.headers.get("accept-language")))

    def client(request: Request) -> tuple[str | None, str | None]:
        return request.scope.get("state", {}).get("client_ip"), request.headers.get("user-agent")

    def audit(request: Request, access: str, link: Link | None, study=None, uids: list[str] | None = None,
              detail: str | None = None) -> None:
        ip, ua = client(request)
        uid = (uids[0] if uids else None) or (getattr(study, "study_uid", None) if study is not None else None)
        ctx.audit.record(access=access, link_pk=link.pk if link else None, link_kind=link.kind if link else None,
                         hospital_id=link.hospital_id if link else None, study_id=link.study_id if link else None,
                         study_uid=uid, client_ip=ip, user_agent=ua, detail=detail)

    def page(name: str, t: Translator, status: int = 200, **kw) -> Response:
        html = env.get_template(name).render(t=t, lang=t.words["html_lang"], **kw)
        resp = Response(html, status_code=status, media_type="text/html; charset=utf-8")
        resp.headers["Vary"] = "Accept-Language, Cookie"
        return resp

    def secure_cookie(request: Request) -> bool:
        if request.url.scheme == "https":
            return True
        pub = urlsplit(st.public_url)
        return pub.scheme == "https" and request.url.hostname == pub.hostname

    def set_cookie(resp: Response, request: Request, link: Link, name: str, value: str, max_age: int) -> None:
        resp.set_cookie(name, value, max_age=max_age, path=link.base_path, httponly=True, samesite="strict",
                        secure=secure_cookie(request))

    def message(t: Translator, state: LinkState, status: int | None = None) -> Response:
        key, code, default_status = {
            LinkState.UNKNOWN: ("invalid", 20022, 404),
            LinkState.REVOKED: ("invalid", 20022, 404),
            LinkState.EXPIRED: ("expired", 20009, 410),
            LinkState.DELETED: ("deleted", None, 410),
            LinkState.SUSPENDED: ("suspended", None, 403),
            LinkState.PENDING: ("pending", None, 200),
        }[state]
        return page("message.html", t, status or default_status, title=t(f"{key}_title"), text=t(key), state=state.value,
                    code=code)

    def locked_page(t: Translator, until: float) -> Response:
        minutes = max(1, math.ceil((until - time.time()) / 60))
        when = datetime.fromtimestamp(until, zone).strftime("%H:%M")
        resp = page("message.html", t, 429, title=t("locked_title"), text=t("locked", time=when, min=minutes),
                    state="locked", code=20004)
        resp.headers["Retry-After"] = str(max(1, int(until - time.time())))
        return resp

    def pre_key(nonce: str) -> str:
        return ctx.vault.keyed_hash("film-csrf", nonce)

    def gate(request: Request, kind: str, token: str, *, for_page: bool) -> Access | Response:
        """Who may see what: an Access, or the page/response that says no."""
        t = t_for(request)
        now = time.time()
        with ctx.db.read() as conn:
            res = links.resolve(conn, path_kind=kind, token=token, now=now)
            link = res.link
            if res.state is not LinkState.OK:
                if for_page:
                    audit(request, f"denied-{res.state.value}", link, res.study)
                    return message(t, res.state)
                return Response(status_code=404 if res.state in (LinkState.UNKNOWN, LinkState.REVOKED)
                                else 403 if res.state is LinkState.SUSPENDED else 410)
            session = verify.find_session(conn, sid=request.cookies.get(SID_COOKIE), link_pk=link.pk, now=now)
            uids = study_svc.study_uids(conn, res.study)
        needs_session = link.needs_verification or (link.kind == "share" and link.password_hash)
        if needs_session and session is None:
            if not for_page:
                return Response(status_code=403)
            return verify_page(request, t, link, res.study)
        new_pre = None
        if session is not None:
            key = session.csrf_key
        else:
            nonce = request.cookies.get(PRE_COOKIE)
            if not nonce or len(nonce) > 64:
                nonce = new_pre = secrets.token_urlsafe(24)
            key = pre_key(nonce)
        return Access(link=link, study=res.study, uids=uids, session=session, t=t, csrf_key=key, new_pre=new_pre)

    def finish(resp: Response, request: Request, acc: Access) -> Response:
        if acc.new_pre:
            set_cookie(resp, request, acc.link, PRE_COOKIE, acc.new_pre, 86400)
        return resp

    def verify_page(request: Request, t: Translator, link: Link, study, *, error: str | None = None,
                    notice: str | None = None, status: int = 200, code: int | None = None) -> Response:
        now = time.time()
        with ctx.db.read() as conn:
            until = verify.locked_until(conn, link.pk, now)
        if until is not None:
            audit(request, "locked", link, study)
            return locked_page(t, until)
        nonce = request.cookies.get(PRE_COOKIE)
        fresh = None
        if not nonce or len(nonce) > 64:
            nonce = fresh = secrets.token_urlsafe(24)
        key = pre_key(nonce)
        if link.kind == "share":
            ch = verify.Challenge("password")
        else:
            ch = verify.challenge_for(ctx.vault, study, st.verify_method)
        if ch.method == "none":
            resp = page("message.html", t, 200, title=t("verify_title"), text=t("cannot_verify"), state="cannot-verify",
                        code=None)
        else:
            from ...core.sms import mask_phone

            resp = page("verify.html", t, status, link=link, method=ch.method, error=error, notice=notice, code=code,
                        phone=mask_phone(ch.phone) if ch.phone else None,
                        csrf_verify=verify.form_token(key, link_pk=link.pk, form="verify"),
                        csrf_send=verify.form_token(key, link_pk=link.pk, form="send-code"))
        if fresh:
            set_cookie(resp, request, link, PRE_COOKIE, fresh, 86400)
        audit(request, "view-verify", link, study)
        return resp

    # -- static files -------------------------------------------------------------

    @r.get("/h5/static/{name}")
    def static_file(name: str) -> Response:
        item = static.get(name)
        if item is None:
            return Response(status_code=404)
        data, media, _ = item
        return Response(data, media_type=media, headers={"Cache-Control": "public, max-age=31536000, immutable"})

    # -- landing / report ---------------------------------------------------------

    @r.get("/h5/{kind}/{token}")
    def landing(request: Request, kind: str, token: str) -> Response:
        acc = gate(request, kind, token, for_page=True)
        if isinstance(acc, Response):
            return acc
        with ctx.db.read() as conn:
            rep = study_svc.latest_report(conn, acc.study)
            pdfs = study_svc.pdf_instances(conn, hospital_id=acc.link.hospital_id, uids=acc.uids)
            stack = study_svc.image_stack(conn, hospital_id=acc.link.hospital_id, uids=acc.uids)
        audit(request, "view-report", acc.link, acc.study, acc.uids)
        n_images = sum(len(s.frames) for s in stack)
        return finish(page("report.html", acc.t, link=acc.link, info=_report_info(ctx, acc), report=rep, pdf=bool(pdfs),
                           n_images=n_images), request, acc)

    # -- verification ---------------------------------------------------------------

    @r.post("/h5/{kind}/{token}/verify")
    async def verify_post(request: Request, kind: str, token: str) -> Response:
        form = await request.form()
        answer = str(form.get("answer") or "")[:64]
        csrf = str(form.get("csrf") or "")
        return await run_in_threadpool(_verify, request, kind, token, answer, csrf)

    def _verify(request: Request, kind: str, token: str, answer: str, csrf: str) -> Response:
        t = t_for(request)
        now = time.time()
        with ctx.db.read() as conn:
            res = links.resolve(conn, path_kind=kind, token=token, now=now)
        link = res.link
        if res.state is not LinkState.OK:
            return message(t, res.state)
        if not (link.needs_verification or (link.kind == "share" and link.password_hash)):
            return RedirectResponse(link.base_path, status_code=303)
        nonce = request.cookies.get(PRE_COOKIE)
        if not nonce or not verify.check_form_token(pre_key(nonce), csrf, link_pk=link.pk, form="verify"):
            audit(request, "csrf-refused", link, res.study)
            return verify_page(request, t, link, res.study, error=t("form_expired"), status=403)
        if link.kind == "share":
            ch = verify.Challenge("password")
        else:
            ch = verify.challenge_for(ctx.vault, res.study, st.verify_method)
        if ch.method == "none":
            return verify_page(request, t, link, res.study)
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
                    result = verify.check_code(conn, ctx.vault, link_pk=link.pk, answer=answer, now=now)
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
        if outcome == "ok":
            audit(request, "verify-ok", link, res.study)
            resp = RedirectResponse(link.base_path, status_code=303)
            set_cookie(resp, request, link, SID_COOKIE, sid, int(st.session_lifetime_s))
            return resp
        if outcome in ("locked", "locked-now"):
            audit(request, "verify-locked" if outcome == "locked-now" else "locked", link, res.study)
            with ctx.db.read() as conn:
                until = verify.locked_until(conn, link.pk, time.time()) or now + st.verify_lock_s
            return locked_page(t, until)
        if outcome == "expired":
            audit(request, "verify-expired-code", link, res.study)
            return verify_page(request, t, link, res.study, error=t("code_expired"), status=400,
                               code=int(Code.VERIFICATION_CODE_EXPIRED))
        if outcome == "none":
            return verify_page(request, t, link, res.study, error=t("no_code"), status=400,
                               code=int(Code.WRONG_VERIFICATION_CODE))
        audit(request, "verify-failed", link, res.study, detail=f"remaining={failure.remaining}")
        key = "wrong_password" if ch.method == "password" else "wrong_code" if ch.method == "sms" else "wrong_answer"
        code = Code.SHARE_PASSWORD if ch.method == "password" else Code.WRONG_VERIFICATION_CODE
        return verify_page(request, t, link, res.study, error=t(key, n=failure.remaining), status=400, code=int(code))

    @r.post("/h5/{kind}/{token}/send-code")
    async def send_code(request: Request, kind: str, token: str) -> Response:
        form = await request.form()
        return await run_in_threadpool(_send_code, request, kind, token, str(form.get("csrf") or ""))

    def _send_code(request: Request, kind: str, token: str, csrf: str) -> Response:
        t = t_for(request)
        now = time.time()
        with ctx.db.read() as conn:
            res = links.resolve(conn, path_kind=kind, token=token, now=now)
        link = res.link
        if res.state is not LinkState.OK:
            return message(t, res.state)
        ch = verify.challenge_for(ctx.vault, res.study, st.verify_method) if link.needs_verification else None
        if ch is None or ch.method != "sms":
            return RedirectResponse(link.base_path, status_code=303)
        nonce = request.cookies.get(PRE_COOKIE)
        if not nonce or not verify.check_form_token(pre_key(nonce), csrf, link_pk=link.pk, form="send-code"):
            return verify_page(request, t, link, res.study, error=t("form_expired"), status=403)
        try:
            with ctx.db.write() as conn:
                if verify.locked_until(conn, link.pk, now) is not None:
                    return verify_page(request, t, link, res.study)
                code = verify.issue_code(conn, ctx.vault, link_pk=link.pk, now=now, ttl_s=st.sms_code_lifetime_s,
                                         daily_limit=st.sms_daily_limit, resend_s=st.sms_resend_s, tz=st.timezone)
                ctx.sms.send(phone=ch.phone, code=code, ttl_s=int(st.sms_code_lifetime_s))
        except verify.DailyLimit:
            audit(request, "code-daily-limit", link, res.study)
            return verify_page(request, t, link, res.study, error=t("daily_limit"), status=429,
                               code=int(Code.DAILY_CODE_LIMIT))
        except verify.TooSoon as e:
            return verify_page(request, t, link, res.study, error=t("too_soon", s=math.ceil(e.wait_s)), status=429)
        except SmsError:
            audit(request, "code-send-failed", link, res.study)
            return verify_page(request, t, link, res.study, error=t("sms_failed"), status=502)
        audit(request, "code-sent", link, res.study)
        return verify_page(request, t, link, res.study, notice=t("code_sent"))

    # -- viewer -----------------------------------------------------------------------

    @r.get("/h5/{kind}/{token}/viewer")
    def viewer(request: Request, kind: str, token: str) -> Response:
        acc = gate(request, kind, token, for_page=True)
        if isinstance(acc, Response):
            return acc
        with ctx.db.read() as conn:
            stack = study_svc.image_stack(conn, hospital_id=acc.link.hospital_id, uids=acc.uids)
        audit(request, "view-viewer", acc.link, acc.study, acc.uids)
        base = acc.link.base_path
        manifest = {
            "base": base,
            "series": [
                {
                    "index": s.index,
                    "description": s.description,
                    "number": s.number,
                    "modality": s.modality or (acc.study.modality or "").upper(),
                    "presets": preset_names(s.modality or acc.study.modality),
                    "presetWindows": PRESETS.get((s.modality or acc.study.modality or "").upper(), {}),
                    "thumb": _img_url(base, s.frames[len(s.frames) // 2], thumb=True) if s.frames else None,
                    "frames": [[f.pk, f.version, f.frame, f.number] for f in s.frames],
                }
                for s in stack
            ],
            "labels": {k: acc.t(k) for k in ("preset_default", "preset_lung", "preset_mediastinum", "preset_bone",
                                                "preset_brain", "preset_abdomen", "preset_liver", "series")},
        }
        first = _img_url(base, stack[0].frames[0]) if stack and stack[0].frames else None
        return finish(page("viewer.html", acc.t, link=acc.link, stack=stack, first=first,
                           manifest=orjson.dumps(manifest).decode().replace("</", "<\\/"),
                           presets=preset_names(stack[0].modality or acc.study.modality) if stack else []),
                      request, acc)

    @r.get("/h5/{kind}/{token}/img/{pk}/{version}/{frame}.jpg")
    def image(request: Request, kind: str, token: str, pk: int, version: int, frame: int, p: str | None = None,
              w: str | None = None, s: str | None = None) -> Response:
        acc = gate(request, kind, token, for_page=False)
        if isinstance(acc, Response):
            return acc
        with ctx.db.read() as conn:
            inst = study_svc.instance_for(conn, hospital_id=acc.link.hospital_id, uids=acc.uids, pk=pk)
        if inst is None or inst.kind != "image":
            return Response(status_code=404)
        thumb = s == "thumb"
        try:
            opts = _render_opts(frame, p, w, thumb)
        except ValueError:
            return Response(status_code=400)
        try:
            data = ctx.cache.get_or_render(("film", inst.hospital_id, inst.sop_uid, inst.version),
                                           lambda: ctx.blobs.open(inst.blob_key), opts)
        except (ValueError, IndexError):
            return Response(status_code=400)
        except RenderError as e:
            log.warning("cannot render instance pk=%d frame=%d: %s", pk, frame, e)
            return Response(status_code=422)
        audit(request, "thumbnail" if thumb else "image", acc.link, acc.study, acc.uids,
              detail=f"{pk}/{frame}" + (f" p={p}" if p else "") + (f" w={w}" if w else ""))
        etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag, "Cache-Control": "private, max-age=86400"})
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400", "ETag": etag})

    @r.get("/h5/{kind}/{token}/info/{pk}/{frame}.json")
    def info(request: Request, kind: str, token: str, pk: int, frame: int) -> Response:
        acc = gate(request, kind, token, for_page=False)
        if isinstance(acc, Response):
            return acc
        with ctx.db.read() as conn:
            inst = study_svc.instance_for(conn, hospital_id=acc.link.hospital_id, uids=acc.uids, pk=pk)
        if inst is None:
            return Response(status_code=404)
        from ...core.render import describe

        try:
            with ctx.blobs.open(inst.blob_key) as f:
                d = describe(f, frame, max_inflated=ctx.settings.max_inflated_bytes)
        except RenderError:
            return Response(status_code=422)
        keep = ("rows", "columns", "frames", "modality", "window", "rescale_slope", "rescale_intercept",
                "bits_stored", "slice_thickness", "slice_location", "instance_number", "series_description",
                "pixel_spacing", "lossy", "photometric")
        return Response(orjson.dumps({k: d.get(k) for k in keep}), media_type="application/json",
                        headers={"Cache-Control": "private, max-age=86400"})

    # -- PDF report ---------------------------------------------------------------------

    @r.get("/h5/{kind}/{token}/report.pdf")
    def hospital_pdf(request: Request, kind: str, token: str, download: int = 0) -> Response:
        acc = gate(request, kind, token, for_page=False)
        if isinstance(acc, Response):
            return acc
        with ctx.db.read() as conn:
            pdfs = study_svc.pdf_instances(conn, hospital_id=acc.link.hospital_id, uids=acc.uids)
        data = _extract_pdf(ctx, pdfs[0]) if pdfs else None
        if data is None:
            return Response(status_code=404)
        audit(request, "download-report" if download else "view-pdf", acc.link, acc.study, acc.uids)
        disp = "attachment" if download else "inline"
        return Response(data, media_type="application/pdf",
                        headers={"Content-Disposition": f'{disp}; filename="report.pdf"',
                                 "Content-Security-Policy": "default-src 'none'; frame-ancestors 'self'",
                                 "X-Frame-Options": "SAMEORIGIN", "Cache-Control": "private, no-store"})

    # -- downloads ---------------------------------------------------------------------

    @r.get("/h5/{kind}/{token}/download")
    def download_page(request: Request, kind: str, token: str) -> Response:
        acc = gate(request, kind, token, for_page=True)
        if isinstance(acc, Response):
            return acc
        with ctx.db.read() as conn:
            stack = study_svc.image_stack(conn, hospital_id=acc.link.hospital_id, uids=acc.uids)
        audit(request, "view-download", acc.link, acc.study, acc.uids)
        return finish(page("download.html", acc.t, link=acc.link, n_images=sum(len(s.frames) for s in stack),
                           csrf=verify.form_token(acc.csrf_key, link_pk=acc.link.pk, form="prepare")), request, acc)

    @r.get("/h5/{kind}/{token}/download/report.pdf")
    def download_report(request: Request, kind: str, token: str) -> Response:
        acc = gate(request, kind, token, for_page=True)
        if isinstance(acc, Response):
            return acc
        with ctx.db.read() as conn:
            pdfs = study_svc.pdf_instances(conn, hospital_id=acc.link.hospital_id, uids=acc.uids)
            rep = study_svc.latest_report(conn, acc.study)
        data = _extract_pdf(ctx, pdfs[0]) if pdfs else None
        if data is None:
            if rep is None:
                return page("message.html", acc.t, 404, title=acc.t("report"), text=acc.t("not_ready"), state="not-ready",
                            code=None)
            data = _text_report_pdf(ctx, acc, rep)
        audit(request, "download-report", acc.link, acc.study, acc.uids)
        return Response(data, media_type="application/pdf",
                        headers={"Content-Disposition": 'attachment; filename="report.pdf"',
                                 "Cache-Control": "private, no-store"})

    def _jpeg_members(acc: Access) -> tuple[list[files.ZipMember], list[tuple[str, Any, RenderOptions]]]:
        with ctx.db.read() as conn:
            stack = study_svc.image_stack(conn, hospital_id=acc.link.hospital_id, uids=acc.uids)
            rows = {r.pk: r for r in study_svc.dicom_instances(conn, hospital_id=acc.link.hospital_id, uids=acc.uids)}
        members, jobs = [], []
        entries = []
        for s in stack:
            for n, f in enumerate(s.frames, start=1):
                inst = rows.get(f.pk)
                if inst is None:
                    continue
                opts = RenderOptions(frame=f.frame, **VIEW_OPTS)
                name = f"images/series{s.index + 1:02d}/{n:04d}.jpg"
                key = ("film", acc.link.hospital_id, inst.sop_uid, f.version)
                jobs.append((key, inst, opts))
                entries.append((s, name))
                cached = ctx.cache.get(key, opts)

                def opener(key=key, inst=inst, opts=opts):
                    return ctx.cache.get_or_render(key, lambda: ctx.blobs.open(inst.blob_key), opts)

                members.append(files.ZipMember(name, len(cached) if cached is not None else -1, opener))
        index = _zip_index_html(acc, stack, entries).encode("utf-8")
        members.append(files.ZipMember("index.html", len(index), lambda: index))
        return members, jobs

    @r.post("/h5/{kind}/{token}/download/prepare")
    def download_prepare(request: Request, kind: str, token: str) -> Response:
        acc = gate(request, kind, token, for_page=False)
        if isinstance(acc, Response):
            return acc
        if not verify.check_form_token(acc.csrf_key, request.headers.get("x-csrf-token"), link_pk=acc.link.pk,
                                       form="prepare"):
            return Response(status_code=403)
        _members, jobs = _jpeg_members(acc)
        for key, inst, opts in jobs:
            ctx.prepare_pool.submit(_render_quiet, ctx, key, inst, opts)
        return Response(orjson.dumps({"total": len(jobs)}), media_type="application/json")

    @r.get("/h5/{kind}/{token}/download/status")
    def download_status(request: Request, kind: str, token: str) -> Response:
        acc = gate(request, kind, token, for_page=False)
        if isinstance(acc, Response):
            return acc
        members, _ = _jpeg_members(acc)
        images = members[:-1]
        done = sum(1 for m in images if m.size >= 0)
        return Response(orjson.dumps({"done": done, "total": len(images)}), media_type="application/json")

    @r.get("/h5/{kind}/{token}/download/images.zip")
    def download_images(request: Request, kind: str, token: str) -> Response:
        acc = gate(request, kind, token, for_page=True)
        if isinstance(acc, Response):
            return acc
        members, _ = _jpeg_members(acc)
        audit(request, "download-images", acc.link, acc.study, acc.uids, detail=f"{len(members) - 1} images")
        headers = {"Content-Disposition": 'attachment; filename="images.zip"', "Cache-Control": "private, no-store"}
        if all(m.size >= 0 for m in members):
            headers["Content-Length"] = str(files.zip_size(members))
        else:
            for m in members:
                m.size = -1
        return StreamingResponse(_iterate(files.zip_stream(members, check=False) if "Content-Length" not in headers
                                          else files.zip_stream(members)),
                                 media_type="application/zip", headers=headers)

    @r.get("/h5/{kind}/{token}/download/dicom.zip")
    def download_dicom(request: Request, kind: str, token: str) -> Response:
        acc = gate(request, kind, token, for_page=True)
        if isinstance(acc, Response):
            return acc
        if not acc.link.dicom_download:
            return Response(status_code=403)
        with ctx.db.read() as conn:
            rows = study_svc.dicom_instances(conn, hospital_id=acc.link.hospital_id, uids=acc.uids)
        series_no: dict[str, int] = {}
        counters: dict[str, int] = {}
        members = []
        for row in rows:
            sn = series_no.setdefault(row.series_uid, len(series_no) + 1)
            counters[row.series_uid] = counters.get(row.series_uid, 0) + 1
            members.append(files.ZipMember(f"DICOM/S{sn:03d}/I{counters[row.series_uid]:05d}.dcm", row.size,
                                           lambda key=row.blob_key: ctx.blobs.open(key)))
        size = files.zip_size(members)
        if size > files.ZIP_LIMIT:
            return Response("study too large for one archive", status_code=413)
        audit(request, "download-dicom", acc.link, acc.study, acc.uids, detail=f"{len(members)} files")
        return StreamingResponse(_iterate(files.zip_stream(members)), media_type="application/zip",
                                 headers={"Content-Disposition": 'attachment; filename="dicom.zip"',
                                          "Content-Length": str(size), "Cache-Control": "private, no-store"})

    # -- shares --------------------------------------------------------------------------

    @r.get("/h5/{kind}/{token}/shares")
    def shares_page(request: Request, kind: str, token: str) -> Response:
        acc = gate(request, kind, token, for_page=True)
        if isinstance(acc, Response):
            return acc
        if not acc.link.can_share:
            return RedirectResponse(acc.link.base_path, status_code=303)
        return finish(_shares(request, acc), request, acc)

    def _shares(request: Request, acc: Access, *, status: int = 200, error: str | None = None) -> Response:
        with ctx.db.read() as conn:
            items = links.list_shares(conn, ctx.vault, parent_pk=acc.link.pk, now=time.time())
        for it in items:
            it["url"] = st.public_url + it["path"] if it["path"] else None
            it["csrf"] = verify.form_token(acc.csrf_key, link_pk=acc.link.pk, form=f"revoke-{it['pk']}")
        audit(request, "view-shares", acc.link, acc.study, acc.uids)
        return page("shares.html", acc.t, status, link=acc.link, shares=items, days=SHARE_DAYS, error=error,
                    csrf=verify.form_token(acc.csrf_key, link_pk=acc.link.pk, form="share"))

    @r.post("/h5/{kind}/{token}/shares")
    async def share_create(request: Request, kind: str, token: str) -> Response:
        form = await request.form()
        return await run_in_threadpool(_share_create, request, kind, token, dict(form))

    def _share_create(request: Request, kind: str, token: str, form: dict) -> Response:
        acc = gate(request, kind, token, for_page=True)
        if isinstance(acc, Response):
            return acc
        if not acc.link.can_share:
            return Response(status_code=403)
        if not verify.check_form_token(acc.csrf_key, str(form.get("csrf") or ""), link_pk=acc.link.pk, form="share"):
            return _shares(request, acc, status=403, error=acc.t("form_expired"))
        try:
            days = int(str(form.get("days") or "7"))
        except ValueError:
            days = 7
        if days not in SHARE_DAYS:
            days = 7
        password = str(form.get("password") or "").strip()[:64] or None
        now = time.time()
        with ctx.db.write() as conn:
            links.create_share(conn, ctx.vault, parent=acc.link, now=now, lifetime_s=days * 86400.0, password=password)
        audit(request, "share-created", acc.link, acc.study, acc.uids, detail=f"days={days} password={bool(password)}")
        return RedirectResponse(acc.link.base_path + "/shares", status_code=303)

    @r.post("/h5/{kind}/{token}/shares/{share_pk}/revoke")
    async def share_revoke(request: Request, kind: str, token: str, share_pk: int) -> Response:
        form = await request.form()
        return await run_in_threadpool(_share_revoke, request, kind, token, share_pk, str(form.get("csrf") or ""))

    def _share_revoke(request: Request, kind: str, token: str, share_pk: int, csrf: str) -> Response:
        acc = gate(request, kind, token, for_page=True)
        if isinstance(acc, Response):
            return acc
        if not verify.check_form_token(acc.csrf_key, csrf, link_pk=acc.link.pk, form=f"revoke-{share_pk}"):
            return _shares(request, acc, status=403, error=acc.t("form_expired"))
        with ctx.db.write() as conn:
            done = links.revoke_share(conn, parent_pk=acc.link.pk, share_pk=share_pk, now=time.time())
        if done:
            audit(request, "share-revoked", acc.link, acc.study, acc.uids, detail=f"share={share_pk}")
        return RedirectResponse(acc.link.base_path + "/shares", status_code=303)

    return r


# -- helpers outside the closure --------------------------------------------------------


def _iterate(gen):
    # StreamingResponse runs a sync iterator in a thread pool: blob reads and
    # renders never block the event loop.
    yield from gen


def _render_quiet(ctx: PatientContext, key, inst, opts: RenderOptions) -> None:
    try:
        ctx.cache.get_or_render(key, lambda: ctx.blobs.open(inst.blob_key), opts)
    except Exception as e:  # one broken image must not stop the others
        log.warning("prepare: cannot render instance pk=%d: %s", inst.pk, type(e).__name__)


def _img_url(base: str, f: "study_svc.Frame", *, thumb: bool = False) -> str:
    return f"{base}/img/{f.pk}/{f.version}/{f.frame}.jpg" + ("?s=thumb" if thumb else "")


def _render_opts(frame: int, preset: str | None, window: str | None, thumb: bool) -> RenderOptions:
    base = THUMB_OPTS if thumb else VIEW_OPTS
    win = None
    if window:
        c, _, wd = window.partition(",")
        win = (float(c), float(wd))
    return RenderOptions(frame=frame, preset=preset or None, window=win, **base)


def _extract_pdf(ctx: PatientContext, inst) -> bytes | None:
    from pydicom import dcmread

    try:
        with ctx.blobs.open(inst.blob_key) as f:
            ds = dcmread(f)
        data = bytes(ds.EncapsulatedDocument)
    except Exception as e:
        log.warning("cannot read encapsulated PDF pk=%d: %s", inst.pk, type(e).__name__)
        return None
    # An odd-length document carries one pad byte after %%EOF; harmless.
    return data if data.startswith(b"%PDF") else None


def _report_info(ctx: PatientContext, acc: Access) -> dict:
    study = acc.study
    t = acc.t
    det = study_svc.details(study)
    hospital = ctx.tenancy.hospitals().get(study.hospital_id, {}).get("name") or study.hospital_id
    sex = t(f"sex_{study.patient_sex}") if study.patient_sex in ("M", "F", "O") else ""
    age = ""
    if det.get("patientAge") not in (None, ""):
        unit = det.get("patientAgeUnit") if det.get("patientAgeUnit") in ("Y", "M", "D") else "Y"
        age = t(f"age_{unit}", n=det.get("patientAge"))
    return {
        "hospital": hospital,
        "name": study_svc.mask_name(study.patient_name),
        "sex": sex,
        "age": age,
        "exam_item": study.study_desc or "",
        "body_part": study.body_part or "",
        "modality": study.modality or "",
        "exam_time": study.study_date or "",
    }


def _text_report_pdf(ctx: PatientContext, acc: Access, rep) -> bytes:
    t = acc.t
    info = _report_info(ctx, acc)
    head = "  ".join(f"{t(label)}: {info[k]}" for label, k in (("patient", "name"), ("sex", "sex"), ("age", "age"))
                     if info[k])
    exam = "  ".join(f"{t(k)}: {info[k]}" for k in ("modality", "body_part", "exam_item", "exam_time") if info[k])
    signed = "  ".join(x for x in (
        f"{t('report_doctor')}: {rep.report_doctor}" if rep.report_doctor else "",
        f"{t('report_time')}: {rep.report_time}" if rep.report_time else "",
        f"{t('audit_doctor')}: {rep.audit_doctor}" if rep.audit_doctor else "",
        f"{t('audit_time')}: {rep.audit_time}" if rep.audit_time else "") if x)
    return files.report_pdf(f"{info['hospital']} {t('report')}", [
        ("", head), ("", exam), (t("findings"), rep.image_description or ""), (t("conclusion"), rep.conclusion or ""),
        ("", signed), ("", t("footer")),
    ])


def _zip_index_html(acc: Access, stack, entries) -> str:
    from html import escape

    t = acc.t
    parts = [f"<!doctype html><html lang=\"{t.words['html_lang']}\"><meta charset=\"utf-8\">"
             "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
             f"<title>{escape(t('app'))}</title><style>body{{background:#000;color:#ddd;font:14px sans-serif;margin:0}}"
             "h2{padding:8px;margin:0;background:#222}img{display:block;max-width:100%;margin:0 auto 4px}</style><body>"]
    current = None
    for s, name in entries:
        if s is not current:
            current = s
            parts.append(f"<h2>{escape(t('series'))} {s.index + 1} {escape(s.description or '')} ({len(s.frames)})</h2>")
        parts.append(f"<img loading=\"lazy\" src=\"{escape(name)}\" alt=\"{escape(name)}\">")
    parts.append("</body></html>")
    return "".join(parts)


def _load_static(folder: Path) -> dict[str, tuple[bytes, str, str]]:
    types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
    out = {}
    for p in sorted(folder.iterdir()):
        if p.suffix in types:
            data = p.read_bytes()
            out[p.name] = (data, types[p.suffix], hashlib.sha256(data).hexdigest()[:12])
    return out
