"""The knowledge base of report phrases: folders (at most three levels) of titled texts.

A folder is **personal** (its creator's: nobody else sees it, operators included) or **shared** by a
reading centre (read by the centre's radiologists, written by its admins and reviewers and by operators);
a sub-folder is its parent's kind. Codes: an empty name or title 60004, a name already used in the same
folder 60002, a title already used in the folder 60003, a fourth level 60006; deleting a folder that still
holds something is refused with 60001 naming what, deleting what is already deleted 60005 (deletion is
soft), deleting what cannot be found 60001. Writing into or renaming what is deleted is 60005 too; a folder
that is not there (or not the caller's to see) is 100004 elsewhere.

Functions run in the caller's transaction, like `catalogue`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Row, func, insert, or_, select, update

from ...contract.codes import Code
from ...core.errors import Conflict, Forbidden, Gone, Invalid, NotFound
from ...storage import schema as s
from ..staff.edge import Caller
from .access import READERS, Owner, owner_for_new, readable_owners, require_read, require_write

Item = dict[str, Any]
MAX_DEPTH = 3
NAME_MAX, TITLE_MAX, BODY_MAX = 100, 200, 20_000


def _personal(caller: Caller) -> str:
    return f"user:{caller.username}"


def _centre(owner: str) -> Owner | None:
    kind, _, ident = owner.partition(":")
    return Owner("hospital", ident) if kind == "hospital" else None


def _require_kb_user(caller: Caller) -> None:
    if not any(caller.may(role) for role in READERS):
        raise Forbidden(f"user {caller.username} writes no reports: the knowledge base is the readers'",
                        code=Code.NO_PERMISSION)


def _label(value: Any, name: str, limit: int) -> str:
    """A folder's name or a text's title: 60004 when missing or blank."""
    if value is None or (isinstance(value, str) and not value.strip()):
        what = "folder name" if name == "name" else "text title"
        raise Invalid(f"the {what} is empty", field=name, code=Code.FOLDER_OR_TITLE_EMPTY)
    if not isinstance(value, str) or len(value.strip()) > limit or not value.strip().isprintable():
        raise Invalid(f"{name} must be one line of at most {limit} printable characters", field=name,
                      code=Code.INVALID_FORMAT)
    return value.strip()


def _phrase(value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise Invalid("body is required", field="body", code=Code.REQUIRED_EMPTY)
    if not isinstance(value, str) or len(value) > BODY_MAX:
        raise Invalid(f"body must be a text of at most {BODY_MAX} characters", field="body",
                      code=Code.INVALID_FORMAT)
    return value


def _object(data: Mapping[str, Any], allowed: set[str], subject: str) -> Mapping[str, Any]:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise Invalid(f"unknown field(s) for a {subject}: {', '.join(unknown)}", field=unknown[0],
                      code=Code.INVALID_FORMAT)
    return data


def _whole(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{name} must be a whole number", field=name, code=Code.INVALID_FORMAT)
    return value


# ---- folders --------------------------------------------------------------------------------------------

def _folder_json(r: Any) -> Item:
    centre = _centre(r.owner)
    return {"id": r.id, "name": r.name, "parentId": r.parent_key or None, "shared": bool(r.shared),
            "hospitalId": centre.id if centre else None, "depth": r.depth}


def _visible(conn: Connection, caller: Caller, owner: str) -> bool:
    centre = _centre(owner)
    if centre is None:
        return owner == _personal(caller)
    try:
        require_read(conn, caller, centre)
    except Forbidden:
        return False
    return True


def _folder(conn: Connection, caller: Caller, key: Any, *, code: Code = Code.DATA_NOT_FOUND,
            field: str = "id") -> Row[Any]:
    """The folder `key` names, if the caller sees it (deleted or not); else NotFound under `code`."""
    row = None
    if isinstance(key, int) and not isinstance(key, bool) or isinstance(key, str) and key.isdigit():
        row = conn.execute(select(s.kb_folders).where(s.kb_folders.c.id == int(key))).first()
    if row is None or not _visible(conn, caller, row.owner):
        raise NotFound(f"no folder {key}", subject="folder", field=field, code=code)
    return row


def _writable(conn: Connection, caller: Caller, row: Any) -> None:
    centre = _centre(row.owner)
    if centre is not None:
        require_write(conn, caller, centre)


def _live(row: Any, what: str) -> None:
    if row.deleted_at is not None:
        raise Gone(f"{what} {row.id} is deleted", subject="folder", code=Code.MODULE_DELETED)


def _name_free(conn: Connection, owner: str, parent: int, name: str, key: int | None) -> None:
    f = s.kb_folders
    other = conn.execute(select(f.c.id).where(f.c.owner == owner, f.c.parent_key == parent, f.c.live_name == name,
                                              f.c.id != (key or 0))).scalar()
    if other is not None:
        where = f"folder {parent}" if parent else "the top level"
        raise Conflict(f"{where} already has a folder named {name!r} (id {other})", subject="folder",
                       field="name", code=Code.FOLDER_EXISTS)


def create_folder(conn: Connection, *, caller: Caller, data: Mapping[str, Any], now: float) -> Item:
    data = _object(data, {"name", "parentId", "shared", "hospitalId"}, "folder")
    _require_kb_user(caller)
    name = _label(data.get("name"), "name", NAME_MAX)
    shared = data.get("shared")
    if shared is not None and not isinstance(shared, bool):
        raise Invalid("shared must be true or false", field="shared", code=Code.INVALID_FORMAT)
    hospital_id = data.get("hospitalId")
    if hospital_id is not None and not isinstance(hospital_id, str):
        raise Invalid("hospitalId must be a text", field="hospitalId", code=Code.INVALID_FORMAT)
    if data.get("parentId") is not None:
        parent = _folder(conn, caller, _whole(data["parentId"], "parentId"), field="parentId")
        _live(parent, "folder")
        _writable(conn, caller, parent)
        if (shared is not None and shared != bool(parent.shared)) or (
                hospital_id is not None and _centre(parent.owner) != Owner("hospital", hospital_id)):
            raise Invalid(f"a sub-folder is its parent's: folder {parent.id} is "
                          + ("shared" if parent.shared else "personal"), field="shared", code=Code.INVALID_FORMAT)
        if parent.depth >= MAX_DEPTH:
            raise Invalid(f"folders nest at most {MAX_DEPTH} levels: folder {parent.id} is on level {parent.depth}",
                          field="parentId", code=Code.NESTING_LIMIT)
        owner, parent_key, depth, is_shared = parent.owner, parent.id, parent.depth + 1, bool(parent.shared)
    elif shared:
        centre = owner_for_new(conn, caller, hospital_id, None)
        owner, parent_key, depth, is_shared = f"hospital:{centre.id}", 0, 1, True
    else:
        if hospital_id is not None:
            raise Invalid("hospitalId is for a shared folder (\"shared\": true)", field="hospitalId",
                          code=Code.INVALID_FORMAT)
        owner, parent_key, depth, is_shared = _personal(caller), 0, 1, False
    _name_free(conn, owner, parent_key, name, None)
    key = conn.execute(insert(s.kb_folders).values(
        owner=owner, shared=is_shared, parent_key=parent_key, depth=depth, name=name, live_name=name,
        created_by=caller.username, created_at=now, updated_at=now).returning(s.kb_folders.c.id)).scalar_one()
    return _folder_json(_folder(conn, caller, key))


def rename_folder(conn: Connection, *, caller: Caller, key: str, data: Mapping[str, Any], now: float) -> Item:
    data = _object(data, {"name"}, "folder")
    row = _folder(conn, caller, key)
    _live(row, "folder")
    _writable(conn, caller, row)
    name = _label(data.get("name"), "name", NAME_MAX)
    _name_free(conn, row.owner, row.parent_key, name, row.id)
    conn.execute(update(s.kb_folders).where(s.kb_folders.c.id == row.id)
                 .values(name=name, live_name=name, updated_at=now))
    return _folder_json(_folder(conn, caller, row.id))


def delete_folder(conn: Connection, *, caller: Caller, key: str, now: float) -> Item:
    row = _folder(conn, caller, key, code=Code.KB_DELETE_FAILED)
    _live(row, "folder")
    _writable(conn, caller, row)
    f, t = s.kb_folders, s.kb_texts
    folders = conn.execute(select(func.count()).where(f.c.parent_key == row.id, f.c.deleted_at.is_(None))
                           ).scalar_one()
    texts = conn.execute(select(func.count()).where(t.c.folder_id == row.id, t.c.deleted_at.is_(None))).scalar_one()
    if folders or texts:
        held = [f"{n} {word}{'s' if n != 1 else ''}" for n, word in ((folders, "folder"), (texts, "text")) if n]
        raise Conflict(f"folder {row.id} still holds {' and '.join(held)}: delete those first", subject="folder",
                       code=Code.KB_DELETE_FAILED)
    conn.execute(update(f).where(f.c.id == row.id, f.c.deleted_at.is_(None))
                 .values(deleted_at=now, deleted_by=caller.username, live_name=None, updated_at=now))
    return _folder_json(row)


# ---- texts ----------------------------------------------------------------------------------------------

def _text_json(r: Any, folder: Any) -> Item:
    centre = _centre(folder.owner)
    return {"id": r.id, "folderId": r.folder_id, "title": r.title, "body": r.body,
            "hospitalId": centre.id if centre else None}


def _text(conn: Connection, caller: Caller, key: str, *, code: Code = Code.DATA_NOT_FOUND) -> tuple[Row[Any], Row[Any]]:
    """The text `key` names and its folder, if the caller sees them; else NotFound under `code`."""
    row = conn.execute(select(s.kb_texts).where(s.kb_texts.c.id == int(key))).first() if key.isdigit() else None
    if row is None:
        raise NotFound(f"no text {key}", subject="text", code=code)
    try:
        folder = _folder(conn, caller, row.folder_id, code=code)
    except NotFound:
        raise NotFound(f"no text {key}", subject="text", code=code) from None
    return row, folder


def _title_free(conn: Connection, folder: int, title: str, key: int | None) -> None:
    t = s.kb_texts
    other = conn.execute(select(t.c.id).where(t.c.folder_id == folder, t.c.live_title == title,
                                              t.c.id != (key or 0))).scalar()
    if other is not None:
        raise Conflict(f"folder {folder} already has a text titled {title!r} (id {other})", subject="text",
                       field="title", code=Code.TEXT_TITLE_EXISTS)


def create_text(conn: Connection, *, caller: Caller, data: Mapping[str, Any], now: float) -> Item:
    data = _object(data, {"folderId", "title", "body"}, "text")
    if data.get("folderId") is None:
        raise Invalid("folderId is required", field="folderId", code=Code.REQUIRED_EMPTY)
    folder = _folder(conn, caller, _whole(data["folderId"], "folderId"), field="folderId")
    _live(folder, "folder")
    _writable(conn, caller, folder)
    title = _label(data.get("title"), "title", TITLE_MAX)
    body = _phrase(data.get("body"))
    _title_free(conn, folder.id, title, None)
    key = conn.execute(insert(s.kb_texts).values(
        folder_id=folder.id, title=title, live_title=title, body=body, created_by=caller.username,
        created_at=now, updated_at=now).returning(s.kb_texts.c.id)).scalar_one()
    return _text_json(*_text(conn, caller, str(key)))


def edit_text(conn: Connection, *, caller: Caller, key: str, data: Mapping[str, Any], now: float) -> Item:
    data = _object(data, {"title", "body"}, "text")
    row, folder = _text(conn, caller, key)
    _live(row, "text")
    _writable(conn, caller, folder)
    title = _label(data["title"], "title", TITLE_MAX) if "title" in data else row.title
    body = _phrase(data["body"]) if "body" in data else row.body
    _title_free(conn, folder.id, title, row.id)
    conn.execute(update(s.kb_texts).where(s.kb_texts.c.id == row.id)
                 .values(title=title, live_title=title, body=body, updated_at=now))
    return _text_json(*_text(conn, caller, key))


def delete_text(conn: Connection, *, caller: Caller, key: str, now: float) -> Item:
    row, folder = _text(conn, caller, key, code=Code.KB_DELETE_FAILED)
    _live(row, "text")
    _writable(conn, caller, folder)
    t = s.kb_texts
    conn.execute(update(t).where(t.c.id == row.id, t.c.deleted_at.is_(None))
                 .values(deleted_at=now, deleted_by=caller.username, live_title=None, updated_at=now))
    return _text_json(row, folder)


# ---- the tree -------------------------------------------------------------------------------------------

def tree(conn: Connection, *, caller: Caller, hospital_id: str | None = None) -> dict[str, list[Item]]:
    """The caller's live folders and texts: `personal` (theirs) and `shared` (their centres', or only
    `hospital_id`'s), each a list of top-level folders with their `folders` and `texts` inside."""
    f, t = s.kb_folders, s.kb_texts
    _require_kb_user(caller)
    if hospital_id is not None:
        require_read(conn, caller, Owner("hospital", hospital_id))
        shared: Any = f.c.owner == f"hospital:{hospital_id}"
    else:
        reach = readable_owners(conn, caller)
        shared = f.c.shared.is_(True) if reach is None else f.c.owner.in_(sorted(f"hospital:{h}" for h in reach[0]))
    folders = conn.execute(select(f).where(or_(f.c.owner == _personal(caller), shared), f.c.deleted_at.is_(None))
                           .order_by(f.c.depth, f.c.name, f.c.id)).all()
    nodes: dict[int, Item] = {r.id: _folder_json(r) | {"folders": [], "texts": []} for r in folders}
    rows = {r.id: r for r in folders}
    if nodes:
        for text in conn.execute(select(t).where(t.c.folder_id.in_(sorted(nodes)), t.c.deleted_at.is_(None))
                                 .order_by(t.c.title, t.c.id)).all():
            nodes[text.folder_id]["texts"].append(_text_json(text, rows[text.folder_id]))
    out: dict[str, list[Item]] = {"personal": [], "shared": []}
    for r in folders:
        node = nodes[r.id]
        if r.parent_key:
            if r.parent_key in nodes:  # a live folder under a deleted one cannot be: deleting needs it empty
                nodes[r.parent_key]["folders"].append(node)
        else:
            out["shared" if r.shared else "personal"].append(node)
    return out
