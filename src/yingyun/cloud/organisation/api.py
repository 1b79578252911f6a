"""`/api/v1/{unions,hospitals,departments,device-types,devices,doctors,users,partners,pacs,gateways}`.

The same five operations on every noun: `GET /api/v1/<noun>?q=&limit=&offset=[&hospitalId=]` ->
`{"items": [...], "total": N}`, `POST` (the new object; a secret — a partner's `token`, a gateway's
`key`, a user's `totpUri` — appears in this answer only), `GET|PATCH|DELETE /api/v1/<noun>/{key}`; plus
`POST /api/v1/partners/{appId}/rotate` (a new token, once). Each call runs as the session's user
(`CallerDep`: the session, and the CSRF header on writes) under that user's scope, and every change is
recorded in the staff audit trail with the names of the fields it sent (never their values).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from ...contract.codes import Code
from ...core.errors import Invalid
from ..staff.api import object_body
from ..staff.audit import record_action
from ..staff.edge import Caller, CallerDep, StaffRoute
from .nouns import DEFAULT_LIMIT, Item, Noun, Query
from .service import Organisation

OBJECT_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}}


def organisation(request: Request) -> Organisation:
    org: Organisation = request.app.state.organisation
    return org


def _whole(name: str, text: str | None, default: int | None) -> int | None:
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise Invalid(f"{name} must be a whole number", field=name, code=Code.INVALID_FORMAT) from None


def query_of(q: str | None, limit: str | None, offset: str | None, hospital_id: str | None) -> Query:
    return Query(q=q or None, limit=_whole("limit", limit, DEFAULT_LIMIT), offset=_whole("offset", offset, 0) or 0,
                 hospital_id=hospital_id or None)


async def _audited(request: Request, caller: Caller, noun: Noun, verb: str, key: str | None,
                   change: Callable[[], Item | None], fields: Mapping[str, Any] | None = None) -> Item | None:
    """Run `change` off the event loop, then record it (who, what, which fields) in the staff audit."""
    result = await run_in_threadpool(change)

    def record() -> None:
        subject = (result or {}).get(noun.key, key)
        hospital = (result or {}).get("hospitalId")
        with organisation(request).db.write() as conn:
            record_action(conn, username=caller.username, action=f"{noun.path}.{verb}", subject_kind=noun.path,
                          subject_id=subject, hospital_id=hospital if isinstance(hospital, str) else None,
                          detail={"fields": sorted(fields)} if fields else None)

    await run_in_threadpool(record)
    return result


def _routes(router: APIRouter, path: str, key: str) -> None:
    """The five routes of one noun (its service looked up per request: the app carries the one built)."""
    tag: list[str | Enum] = [path]

    def noun_of(request: Request) -> Noun:
        return organisation(request).nouns[path]

    async def list_(request: Request, caller: CallerDep, q: str | None = None, limit: str | None = None,
                    offset: str | None = None, hospitalId: str | None = None) -> dict[str, Any]:  # noqa: N803
        query = query_of(q, limit, offset, hospitalId)
        page = await run_in_threadpool(noun_of(request).list, caller, query)
        return page.json()

    async def create(request: Request, caller: CallerDep) -> Item | None:
        body = await object_body(request)
        noun = noun_of(request)
        return await _audited(request, caller, noun, "create", None, lambda: noun.create(caller, body), body)

    async def get(request: Request, caller: CallerDep, key: str) -> Item:
        return await run_in_threadpool(noun_of(request).get, caller, key)

    async def patch(request: Request, caller: CallerDep, key: str) -> Item | None:
        body = await object_body(request)
        noun = noun_of(request)
        return await _audited(request, caller, noun, "update", key, lambda: noun.update(caller, key, body), body)

    async def delete(request: Request, caller: CallerDep, key: str) -> None:
        noun = noun_of(request)

        def remove() -> None:
            noun.remove(caller, key)

        await _audited(request, caller, noun, "remove", key, remove)

    one = f"/{path}/{{key}}"
    router.add_api_route(f"/{path}", list_, methods=["GET"], tags=tag, summary=f"List {path}: items and total")
    router.add_api_route(f"/{path}", create, methods=["POST"], tags=tag, summary=f"Create one of the {path}",
                         openapi_extra=OBJECT_BODY)
    router.add_api_route(one, get, methods=["GET"], tags=tag, summary=f"One of the {path}, by its {key}")
    router.add_api_route(one, patch, methods=["PATCH"], tags=tag, summary="Change the fields sent",
                         openapi_extra=OBJECT_BODY)
    router.add_api_route(one, delete, methods=["DELETE"], tags=tag,
                         summary="Remove it (refused with the reason while something still holds it)")


def build_router(paths: Mapping[str, str]) -> APIRouter:
    router = APIRouter(prefix="/api/v1", route_class=StaffRoute)
    for path, key in paths.items():
        _routes(router, path, key)

    async def rotate(request: Request, caller: CallerDep, key: str) -> Item | None:
        partners = organisation(request).partners
        return await _audited(request, caller, partners, "rotate", key, lambda: partners.rotate(caller, key))

    router.add_api_route("/partners/{key}/rotate", rotate, methods=["POST"], tags=["partners"],
                         summary="A new token (shown once); the old one works for the grace period")
    return router


def install_routes(app: FastAPI, org: Organisation) -> None:
    app.state.organisation = org
    app.include_router(build_router({path: noun.key for path, noun in org.nouns.items()}))

