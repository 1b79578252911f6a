"""`/api/v1/body-parts`, `/api/v1/exam-items` and `/api/v1/kb/{folders,texts,tree}` (issue 15 item 5).

Every call runs as the session's user (`CallerDep`: the session, and the CSRF header on writes). A write
and its row in the staff audit trail (the names of the fields sent, never their text) commit in one
transaction; two writers racing to the same name on PostgreSQL meet the unique constraint, and the loser
is answered the duplicate's code with nothing written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from ...contract.codes import Code
from ...core.errors import Conflict, Invalid
from ..staff.api import object_body
from ..staff.audit import record_action
from ..staff.edge import Caller, CallerDep, StaffRoute
from . import catalogue, kb
from .context import TemplatesContext

router = APIRouter(prefix="/api/v1", route_class=StaffRoute)
Item = dict[str, Any]
OBJECT_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}}


def context(request: Request) -> TemplatesContext:
    ctx: TemplatesContext = request.app.state.templates
    return ctx


def _read(request: Request, read: Callable[[Connection], Any]) -> Any:
    with context(request).db.read() as conn:
        return read(conn)


def _write(request: Request, caller: Caller, action: str, subject_kind: str,
           change: Callable[[Connection, float], Item],
           *, fields: Mapping[str, Any] | None = None, race: Code) -> Item:
    """Run `change` and record it, in one transaction (module docstring)."""
    ctx = context(request)
    try:
        with ctx.db.write() as conn:
            result = change(conn, ctx.clock())
            hospital = result.get("hospitalId")
            record_action(conn, username=caller.username, action=action, subject_kind=subject_kind,
                          subject_id=str(result["id"]), hospital_id=hospital if isinstance(hospital, str) else None,
                          detail={"fields": sorted(fields)} if fields else None)
    except IntegrityError as exc:
        raise Conflict("the same name was written by someone else at the same moment", code=race) from exc
    return result


def _whole(name: str, text: str | None) -> int | None:
    if text is None or text == "":
        return None
    if not text.isdigit():
        raise Invalid(f"{name} must be a whole number", field=name, code=Code.INVALID_FORMAT)
    return int(text)


# ---- body parts -----------------------------------------------------------------------------------------

@router.get("/body-parts", tags=["Templates"], summary="Body parts the caller reads (a centre's and its union's)")
async def list_body_parts(request: Request, caller: CallerDep, hospitalId: str | None = None,  # noqa: N803
                          modality: str | None = None) -> dict[str, Any]:
    return await run_in_threadpool(_read, request, lambda conn: catalogue.list_body_parts(
        conn, caller=caller, hospital_id=hospitalId or None, modality=modality or None))


@router.get("/body-parts/{key}", tags=["Templates"], summary="One body part")
async def get_body_part(request: Request, caller: CallerDep, key: str) -> Item:
    return await run_in_threadpool(_read, request, lambda conn: catalogue.get_body_part(conn, caller=caller, key=key))


@router.post("/body-parts", tags=["Templates"], summary="Add a body part (30012 when its name is taken)",
             openapi_extra=OBJECT_BODY)
async def create_body_part(request: Request, caller: CallerDep) -> Item:
    body = await object_body(request)
    return await run_in_threadpool(
        _write, request, caller, "body-parts.create", "body-part",
        lambda conn, now: catalogue.create_body_part(conn, caller=caller, data=body, now=now),
        fields=body, race=Code.BODY_PART_EXISTS)


@router.put("/body-parts/{key}", tags=["Templates"], summary="Rename a body part or change its modality",
            openapi_extra=OBJECT_BODY)
async def update_body_part(request: Request, caller: CallerDep, key: str) -> Item:
    body = await object_body(request)
    return await run_in_threadpool(
        _write, request, caller, "body-parts.update", "body-part",
        lambda conn, now: catalogue.update_body_part(conn, caller=caller, key=key, data=body, now=now),
        fields=body, race=Code.BODY_PART_EXISTS)


@router.delete("/body-parts/{key}", tags=["Templates"], summary="Remove a body part no exam item names")
async def remove_body_part(request: Request, caller: CallerDep, key: str) -> None:
    await run_in_threadpool(_write, request, caller, "body-parts.remove", "body-part",
                            lambda conn, now: catalogue.remove_body_part(conn, caller=caller, key=key),
                            race=Code.BODY_PART_NOT_FOUND)


# ---- exam items -----------------------------------------------------------------------------------------

@router.get("/exam-items", tags=["Templates"], summary="Exam items the caller reads, with their templates")
async def list_exam_items(request: Request, caller: CallerDep, hospitalId: str | None = None,  # noqa: N803
                          modality: str | None = None, bodyPartId: str | None = None) -> dict[str, Any]:  # noqa: N803
    part = _whole("bodyPartId", bodyPartId)
    return await run_in_threadpool(_read, request, lambda conn: catalogue.list_exam_items(
        conn, caller=caller, hospital_id=hospitalId or None, modality=modality or None, body_part_id=part))


@router.get("/exam-items/{key}", tags=["Templates"], summary="One exam item")
async def get_exam_item(request: Request, caller: CallerDep, key: str) -> Item:
    return await run_in_threadpool(_read, request, lambda conn: catalogue.get_exam_item(conn, caller=caller, key=key))


@router.post("/exam-items", tags=["Templates"], summary="Add an exam item (30014 when its name is taken)",
             openapi_extra=OBJECT_BODY)
async def create_exam_item(request: Request, caller: CallerDep) -> Item:
    body = await object_body(request)
    return await run_in_threadpool(
        _write, request, caller, "exam-items.create", "exam-item",
        lambda conn, now: catalogue.create_exam_item(conn, caller=caller, data=body, now=now),
        fields=body, race=Code.EXAM_ITEM_EXISTS)


@router.put("/exam-items/{key}", tags=["Templates"], summary="Change an exam item or its template",
            openapi_extra=OBJECT_BODY)
async def update_exam_item(request: Request, caller: CallerDep, key: str) -> Item:
    body = await object_body(request)
    return await run_in_threadpool(
        _write, request, caller, "exam-items.update", "exam-item",
        lambda conn, now: catalogue.update_exam_item(conn, caller=caller, key=key, data=body, now=now),
        fields=body, race=Code.EXAM_ITEM_EXISTS)


@router.delete("/exam-items/{key}", tags=["Templates"], summary="Remove an exam item")
async def remove_exam_item(request: Request, caller: CallerDep, key: str) -> None:
    await run_in_threadpool(_write, request, caller, "exam-items.remove", "exam-item",
                            lambda conn, now: catalogue.remove_exam_item(conn, caller=caller, key=key),
                            race=Code.EXAM_ITEM_NOT_FOUND)


# ---- the knowledge base ---------------------------------------------------------------------------------

@router.get("/kb/tree", tags=["Knowledge base"], summary="The caller's personal and shared folders with their texts")
async def kb_tree(request: Request, caller: CallerDep, hospitalId: str | None = None) -> dict[str, Any]:  # noqa: N803
    return await run_in_threadpool(_read, request, lambda conn: kb.tree(conn, caller=caller,
                                                                        hospital_id=hospitalId or None))


@router.post("/kb/folders", tags=["Knowledge base"], summary="Add a folder (personal, or shared by a centre)",
             openapi_extra=OBJECT_BODY)
async def create_folder(request: Request, caller: CallerDep) -> Item:
    body = await object_body(request)
    return await run_in_threadpool(_write, request, caller, "kb-folders.create", "kb-folder",
                                   lambda conn, now: kb.create_folder(conn, caller=caller, data=body, now=now),
                                   fields=body, race=Code.FOLDER_EXISTS)


@router.put("/kb/folders/{key}", tags=["Knowledge base"], summary="Rename a folder", openapi_extra=OBJECT_BODY)
async def rename_folder(request: Request, caller: CallerDep, key: str) -> Item:
    body = await object_body(request)
    return await run_in_threadpool(_write, request, caller, "kb-folders.update", "kb-folder",
                                   lambda conn, now: kb.rename_folder(conn, caller=caller, key=key, data=body, now=now),
                                   fields=body, race=Code.FOLDER_EXISTS)


@router.delete("/kb/folders/{key}", tags=["Knowledge base"], summary="Delete an empty folder")
async def delete_folder(request: Request, caller: CallerDep, key: str) -> None:
    await run_in_threadpool(_write, request, caller, "kb-folders.delete", "kb-folder",
                            lambda conn, now: kb.delete_folder(conn, caller=caller, key=key, now=now),
                            race=Code.KB_DELETE_FAILED)


@router.post("/kb/texts", tags=["Knowledge base"], summary="Add a text to a folder", openapi_extra=OBJECT_BODY)
async def create_text(request: Request, caller: CallerDep) -> Item:
    body = await object_body(request)
    return await run_in_threadpool(_write, request, caller, "kb-texts.create", "kb-text",
                                   lambda conn, now: kb.create_text(conn, caller=caller, data=body, now=now),
                                   fields=body, race=Code.TEXT_TITLE_EXISTS)


@router.put("/kb/texts/{key}", tags=["Knowledge base"], summary="Change a text's title or body",
            openapi_extra=OBJECT_BODY)
async def edit_text(request: Request, caller: CallerDep, key: str) -> Item:
    body = await object_body(request)
    return await run_in_threadpool(_write, request, caller, "kb-texts.update", "kb-text",
                                   lambda conn, now: kb.edit_text(conn, caller=caller, key=key, data=body, now=now),
                                   fields=body, race=Code.TEXT_TITLE_EXISTS)


@router.delete("/kb/texts/{key}", tags=["Knowledge base"], summary="Delete a text")
async def delete_text(request: Request, caller: CallerDep, key: str) -> None:
    await run_in_threadpool(_write, request, caller, "kb-texts.delete", "kb-text",
                            lambda conn, now: kb.delete_text(conn, caller=caller, key=key, now=now),
                            race=Code.KB_DELETE_FAILED)
