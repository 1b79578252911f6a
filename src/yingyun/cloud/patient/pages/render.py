"""How the pages answer: templates and words, the message and verification
pages, cookies, and the audit line every view writes."""

from __future__ import annotations

import functools
import hashlib
import math
import secrets
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import Response

from .... import letterheads
from ....core.reportpdf import Letterhead
from ....core.sms import mask_phone
from .. import verify
from ..context import PatientContext
from ..i18n import Translator, pick_language
from ..links import Link, LinkState, Resolved

HERE = Path(__file__).resolve().parent.parent
SID_COOKIE = "yy_sid"
PRE_COOKIE = "yy_pre"
PRE_LIFETIME_S = 86400
MAX_NONCE = 64  # a longer pre-session cookie is not ours: a fresh one replaces it

# state -> (words key, code shown as data-code, HTTP status of the page)
MESSAGES: dict[LinkState, tuple[str, int | None, int]] = {
    LinkState.UNKNOWN: ("invalid", 20022, 404),
    LinkState.REVOKED: ("invalid", 20022, 404),
    LinkState.EXPIRED: ("expired", 20009, 410),
    LinkState.DELETED: ("deleted", None, 410),
    LinkState.SUSPENDED: ("suspended", None, 403),
    LinkState.PENDING: ("pending", None, 200),
}


@functools.cache
def static_files() -> dict[str, tuple[bytes, str, str]]:
    """name -> (bytes, media type, version): read once per process."""
    types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
    out = {}
    for p in sorted((HERE / "static").iterdir()):
        if p.suffix in types:
            data = p.read_bytes()
            out[p.name] = (data, types[p.suffix], hashlib.sha256(data).hexdigest()[:12])
    return out


@functools.cache
def environment(timezone: str) -> Environment:
    """The pages' templates, times shown in `timezone` (one per zone and process)."""
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    static = static_files()
    zone = ZoneInfo(timezone)

    def static_url(name: str) -> str:
        return f"/h5/static/{name}?v={static[name][2]}"

    def localtime(ts: float | None) -> str:
        return datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M") if ts else ""

    env.globals["static"] = static_url
    env.filters["localtime"] = localtime
    return env


def translator(request: Request) -> Translator:
    return Translator(pick_language(request.headers.get("accept-language")))


def page(ctx: PatientContext, name: str, t: Translator, status: int = 200, **kw: Any) -> Response:
    html = environment(ctx.settings.timezone).get_template(name).render(t=t, lang=t.words["html_lang"], **kw)
    resp = Response(html, status_code=status, media_type="text/html; charset=utf-8")
    resp.headers["Vary"] = "Accept-Language, Cookie"
    return resp


def contact(ctx: PatientContext, hospital_id: str | None) -> Letterhead | None:
    """Whom a visitor turned away can ask: the hospital's name and, when configured, its phone."""
    name = ctx.tenancy.hospitals().get(hospital_id, {}).get("name") if hospital_id else None
    if not name or hospital_id is None:
        return None
    with ctx.db.read() as conn:
        return letterheads.letterhead(conn, hospital_id=hospital_id, name=name)


def message(ctx: PatientContext, t: Translator, res: Resolved, status: int | None = None) -> Response:
    """The page of a link that shows nothing (expired, revoked, deleted, not ready, …), naming its hospital."""
    key, code, default_status = MESSAGES[res.state]
    hospital_id = res.link.hospital_id if res.link else getattr(res.study, "hospital_id", None)
    return page(ctx, "message.html", t, status or default_status, title=t(f"{key}_title"),
                text=t(key), state=res.state.value, code=code, contact=contact(ctx, hospital_id))


def locked_page(ctx: PatientContext, t: Translator, until: float) -> Response:
    minutes = max(1, math.ceil((until - time.time()) / 60))
    when = datetime.fromtimestamp(until, ZoneInfo(ctx.settings.timezone)).strftime("%H:%M")
    resp = page(ctx, "message.html", t, 429, title=t("locked_title"),
                text=t("locked", time=when, min=minutes), state="locked", code=20004)
    resp.headers["Retry-After"] = str(max(1, int(until - time.time())))
    return resp


def client(request: Request) -> tuple[str | None, str | None]:
    return request.scope.get("state", {}).get("client_ip"), request.headers.get("user-agent")


def audit(ctx: PatientContext, request: Request, access: str, link: Link | None, study: Any = None,
          uids: list[str] | None = None, detail: str | None = None) -> None:
    ip, ua = client(request)
    uid = (uids[0] if uids else None) or (getattr(study, "study_uid", None) if study is not None else None)
    ctx.audit.record(access=access, link_pk=link.pk if link else None, link_kind=link.kind if link else None,
                     hospital_id=link.hospital_id if link else None, study_id=link.study_id if link else None,
                     study_uid=uid, client_ip=ip, user_agent=ua, detail=detail)


def secure_cookie(ctx: PatientContext, request: Request) -> bool:
    if request.url.scheme == "https":
        return True
    pub = urlsplit(ctx.settings.public_url)
    return pub.scheme == "https" and request.url.hostname == pub.hostname


def set_cookie(ctx: PatientContext, resp: Response, request: Request, link: Link, name: str, value: str,
               max_age: int) -> None:
    """Cookies are the link's own: sent for its base path only, never to script, never cross-site."""
    resp.set_cookie(name, value, max_age=max_age, path=link.base_path, httponly=True, samesite="strict",
                    secure=secure_cookie(ctx, request))


def pre_key(ctx: PatientContext, nonce: str) -> str:
    """The form-token key of a visitor without a session, from their pre-session nonce."""
    return ctx.vault.keyed_hash("film-csrf", nonce)


def pre_nonce(request: Request) -> tuple[str, str | None]:
    """(the visitor's pre-session nonce, the same when it is new and must be set as a cookie, else None)."""
    nonce = request.cookies.get(PRE_COOKIE)
    if not nonce or len(nonce) > MAX_NONCE:
        nonce = secrets.token_urlsafe(24)
        return nonce, nonce
    return nonce, None


def verify_page(ctx: PatientContext, request: Request, t: Translator, link: Link, study: Any, *,
                error: str | None = None, notice: str | None = None, status: int = 200,
                code: int | None = None) -> Response:
    """The verification form of `link` (or the locked page while it is locked)."""
    st = ctx.settings
    with ctx.db.read() as conn:
        until = verify.locked_until(conn, link.pk, time.time())
    if until is not None:
        audit(ctx, request, "locked", link, study)
        return locked_page(ctx, t, until)
    nonce, fresh = pre_nonce(request)
    key = pre_key(ctx, nonce)
    ch = verify.Challenge("password") if link.kind == "share" else verify.challenge_for(ctx.vault, study,
                                                                                        st.verify_method)
    if ch.method == "none":
        resp = page(ctx, "message.html", t, 200, title=t("verify_title"), text=t("cannot_verify"),
                    state="cannot-verify", code=None)
    else:
        resp = page(ctx, "verify.html", t, status, link=link, method=ch.method, error=error, notice=notice,
                    code=code, phone=mask_phone(ch.phone) if ch.phone else None,
                    csrf_verify=verify.form_token(key, link_pk=link.pk, form="verify"),
                    csrf_send=verify.form_token(key, link_pk=link.pk, form="send-code"))
    if fresh:
        set_cookie(ctx, resp, request, link, PRE_COOKIE, fresh, PRE_LIFETIME_S)
    audit(ctx, request, "view-verify", link, study)
    return resp
