"""Shares: a verified patient's links for a doctor (list, create, revoke)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .. import links, verify
from ..context import PatientContext
from .access import Access, H5Route, PageAccess, PatientCtx, finish, gate
from .render import audit, page

SHARE_DAYS = (1, 7, 30)
DEFAULT_DAYS = 7
MAX_PASSWORD = 64

router = APIRouter(route_class=H5Route)


@router.get("/h5/{kind}/{token}/shares")
def shares_page(request: Request, ctx: PatientCtx, acc: PageAccess) -> Response:
    if not acc.link.can_share:
        return RedirectResponse(acc.link.base_path, status_code=303)
    return finish(ctx, _shares(ctx, request, acc), request, acc)


def _shares(ctx: PatientContext, request: Request, acc: Access, *, status: int = 200,
            error: str | None = None) -> Response:
    with ctx.db.read() as conn:
        items = links.list_shares(conn, ctx.vault, parent_pk=acc.link.pk, now=time.time())
    for it in items:
        it["url"] = ctx.settings.public_url + it["path"] if it["path"] else None
        it["csrf"] = verify.form_token(acc.csrf_key, link_pk=acc.link.pk, form=f"revoke-{it['pk']}")
    audit(ctx, request, "view-shares", acc.link, acc.study, acc.uids)
    return page(ctx, "shares.html", acc.t, status, link=acc.link, shares=items, days=SHARE_DAYS, error=error,
                csrf=verify.form_token(acc.csrf_key, link_pk=acc.link.pk, form="share"))


@router.post("/h5/{kind}/{token}/shares")
async def share_create(request: Request, ctx: PatientCtx, acc: PageAccess) -> Response:
    form = await request.form()
    return await run_in_threadpool(_share_create, ctx, request, acc, dict(form))


def _share_create(ctx: PatientContext, request: Request, acc: Access, form: dict[str, Any]) -> Response:
    if not acc.link.can_share:
        return Response(status_code=403)
    if not verify.check_form_token(acc.csrf_key, str(form.get("csrf") or ""), link_pk=acc.link.pk, form="share"):
        return _shares(ctx, request, acc, status=403, error=acc.t("form_expired"))
    try:
        days = int(str(form.get("days") or DEFAULT_DAYS))
    except ValueError:
        days = DEFAULT_DAYS
    if days not in SHARE_DAYS:
        days = DEFAULT_DAYS
    password = str(form.get("password") or "").strip()[:MAX_PASSWORD] or None
    with ctx.db.write() as conn:
        links.create_share(conn, ctx.vault, parent=acc.link, now=time.time(), lifetime_s=days * 86400.0,
                           password=password)
    audit(ctx, request, "share-created", acc.link, acc.study, acc.uids, detail=f"days={days} password={bool(password)}")
    return RedirectResponse(acc.link.base_path + "/shares", status_code=303)


def revoke_access(request: Request, ctx: PatientCtx, kind: str, token: str, share_pk: int) -> Access:
    # `share_pk` is declared here so a malformed one is a 422 before the gate runs.
    return gate(ctx, request, kind, token, page=True)


@router.post("/h5/{kind}/{token}/shares/{share_pk}/revoke")
async def share_revoke(request: Request, ctx: PatientCtx, acc: Annotated[Access, Depends(revoke_access)],
                       share_pk: int) -> Response:
    form = await request.form()
    return await run_in_threadpool(_share_revoke, ctx, request, acc, share_pk, str(form.get("csrf") or ""))


def _share_revoke(ctx: PatientContext, request: Request, acc: Access, share_pk: int, csrf: str) -> Response:
    if not verify.check_form_token(acc.csrf_key, csrf, link_pk=acc.link.pk, form=f"revoke-{share_pk}"):
        return _shares(ctx, request, acc, status=403, error=acc.t("form_expired"))
    with ctx.db.write() as conn:
        done = links.revoke_share(conn, parent_pk=acc.link.pk, share_pk=share_pk, now=time.time())
    if done:
        audit(ctx, request, "share-revoked", acc.link, acc.study, acc.uids, detail=f"share={share_pk}")
    return RedirectResponse(acc.link.base_path + "/shares", status_code=303)
