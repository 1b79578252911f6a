"""Who may see what: the gate every page of a link passes, as a dependency.

`PageAccess` and `ResourceAccess` resolve the link of `/h5/{kind}/{token}/…`
and the visitor's session, and give an `Access`, or raise a `Refusal`:
`LinkGone` (unknown, revoked, expired, deleted), `LinkOnHold` (pending,
suspended), `NeedsVerification` (no session where one is needed). `H5Route`
renders a refusal in one place: for a page, the message page or the
verification form (audited); for a page's resource (an image, JSON, the
hospital's PDF), a bare status.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ....core.errors import Forbidden, Gone, Unauthenticated, Unavailable, YingyunError
from .. import links, study as study_svc, verify
from ..context import PatientContext
from ..i18n import Translator
from ..links import Link, LinkState, Resolved
from .me_words import qr_replaced
from .render import (PRE_COOKIE, PRE_LIFETIME_S, SID_COOKIE, audit, message, pre_key, pre_nonce, set_cookie,
                     translator, verify_page)

# What a page's resource (not a page) answers for a link it may not open.
RESOURCE_STATUS = {LinkState.UNKNOWN: 404, LinkState.REVOKED: 404, LinkState.SUSPENDED: 403}
RESOURCE_STATUS_ELSE = 410
NOT_VERIFIED_STATUS = 403


def context_of(request: Request) -> PatientContext:
    """The pages' collaborators, put on the app by `pages.install`."""
    ctx: PatientContext = request.app.state.film
    return ctx


async def patient_context(request: Request) -> PatientContext:
    return context_of(request)  # async: no thread hop for an attribute read


PatientCtx = Annotated[PatientContext, Depends(patient_context)]


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


class Refusal(YingyunError):
    """The gate says no; `H5Route` renders it. `page`: the request was for a page (else a page's resource)."""

    def __init__(self, detail: str, *, resolved: Resolved, page: bool) -> None:
        super().__init__(detail, subject="link")
        self.resolved = resolved
        self.page = page


class LinkGone(Refusal, Gone):
    """The link cannot be opened any more, or never could: unknown, revoked, expired, or its study deleted."""


class LinkOnHold(Refusal, Unavailable):
    """The link is good but shows nothing for now: the study has not arrived, or the hospital is suspended."""


class NeedsVerification(Refusal, Unauthenticated):
    """The visitor has not proven who they are (or the share's password) on this link."""


class OutOfScope(Refusal, Forbidden):
    """A share of the images only (or the report only) asked for the other part."""


def part_asked(rest: str) -> str | None:
    """Which part of the study a path under a link's base path shows: "report", "images", or None (neither)."""
    if rest in ("", "/", "/report.pdf", "/download/report.pdf"):
        return "report"
    if rest == "/viewer" or rest.startswith(("/img/", "/info/", "/download/images", "/download/dicom",
                                             "/download/prepare", "/download/status")):
        return "images"
    return None


def refusal(resolved: Resolved, *, page: bool) -> Refusal:
    """The refusal of a link in a state other than OK."""
    state = resolved.state
    kind = LinkOnHold if state in (LinkState.PENDING, LinkState.SUSPENDED) else LinkGone
    return kind(f"link {state.value}", resolved=resolved, page=page)


def gate(ctx: PatientContext, request: Request, kind: str, token: str, *, page: bool) -> Access:
    now = time.time()
    with ctx.db.read() as conn:
        res = links.resolve(conn, path_kind=kind, token=token, now=now)
        if res.state is not LinkState.OK:
            raise refusal(res, page=page)
        link = res.link
        assert link is not None
        session = verify.find_session(conn, sid=request.cookies.get(SID_COOKIE), link_pk=link.pk, now=now)
        uids = study_svc.study_uids(conn, res.study)
    needs_session = link.needs_verification or (link.kind == "share" and link.password_hash)
    if needs_session and session is None:
        raise NeedsVerification("verification needed", resolved=res, page=page)
    if link.scope is not None and part_asked(request.url.path[len(link.base_path):]) not in (None, link.scope):
        raise OutOfScope(f"this share holds the {link.scope} only", resolved=res, page=page)
    new_pre = None
    if session is not None:
        key = session.csrf_key
    else:
        nonce, new_pre = pre_nonce(request)
        key = pre_key(ctx, nonce)
    return Access(link=link, study=res.study, uids=uids, session=session, t=translator(request), csrf_key=key,
                  new_pre=new_pre)


def page_access(request: Request, ctx: PatientCtx, kind: str, token: str) -> Access:
    return gate(ctx, request, kind, token, page=True)


def resource_access(request: Request, ctx: PatientCtx, kind: str, token: str) -> Access:
    return gate(ctx, request, kind, token, page=False)


PageAccess = Annotated[Access, Depends(page_access)]
ResourceAccess = Annotated[Access, Depends(resource_access)]


def finish(ctx: PatientContext, resp: Response, request: Request, acc: Access) -> Response:
    """`resp`, with the new pre-session cookie when the gate made one."""
    if acc.new_pre:
        set_cookie(ctx, resp, request, acc.link, PRE_COOKIE, acc.new_pre, PRE_LIFETIME_S)
    return resp


def refused(request: Request, exc: Refusal) -> Response:
    """The one rendering of a refusal (module docstring)."""
    res = exc.resolved
    if isinstance(exc, OutOfScope):
        # The page of the part the share holds instead; a resource of the other part is refused.
        assert res.link is not None
        if not exc.page:
            return Response(status_code=NOT_VERIFIED_STATUS)
        return RedirectResponse(res.link.base_path + ("/viewer" if res.link.scope == "images" else ""), status_code=303)
    if not exc.page:
        if isinstance(exc, NeedsVerification):
            return Response(status_code=NOT_VERIFIED_STATUS)
        return Response(status_code=RESOURCE_STATUS.get(res.state, RESOURCE_STATUS_ELSE))
    ctx = context_of(request)
    t = translator(request)
    if isinstance(exc, NeedsVerification):
        assert res.link is not None
        return verify_page(ctx, request, t, res.link, res.study)
    audit(ctx, request, f"denied-{res.state.value}", res.link, res.study)
    if res.state is LinkState.REVOKED and res.link is not None and res.link.kind == "qr":
        return qr_replaced(ctx, request)  # `admin qr revoke`: the card was reissued
    return message(ctx, t, res)


class H5Route(APIRoute):
    """Renders the gate's refusals; pages and their images are not stored by any
    cache unless the route says otherwise."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await inner(request)
            except Refusal as exc:
                response = await run_in_threadpool(refused, request, exc)
            if "cache-control" not in response.headers:
                response.headers["Cache-Control"] = "no-store"
            return response

        return handler
