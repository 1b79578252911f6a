"""Body parts and exam items of a reading centre or a union, and the template a new report starts from.

Each function runs in the caller's transaction (`conn`), so the router records the change in the staff
audit trail in the same commit. A body part's name is unique within its owner and modality (30012), an
exam item's too (30014); unknown ids answer 30013 and 30015. An exam item's body part is one of its own
owner's or, for a centre's item, one of its union's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, func, insert, or_, select, update

from ...contract.codes import Code
from ...core.bodyparts import body_part_zh
from ...core.errors import Conflict, Invalid, NotFound
from ...storage import schema as s
from ...tenancy import Holder, refuse_if_held
from ..organisation.nouns import Body
from ..staff.edge import Caller
from .access import Owner, owner_for_new, readable_owners, require_read, require_write, union_of

Item = dict[str, Any]
MODALITY = re.compile(r"[A-Z0-9_]{1,16}")
TEMPLATE_MAX = 20_000  # characters of a template's description or conclusion


def _modality(value: str | None) -> str:
    """The modality as kept: upper case, '' for none."""
    if value is None:
        return ""
    modality = value.strip().upper()
    if not MODALITY.fullmatch(modality):
        raise Invalid("modality is 1-16 of A-Z 0-9 _ (a DICOM modality such as CT)", field="modality",
                      code=Code.INVALID_FORMAT)
    return modality


def _owner(row: Any) -> Owner:
    return Owner(row.scope_kind, row.scope_id)


def _of_owner(table: Any, owner: Owner) -> Any:
    return and_(table.c.scope_kind == owner.kind, table.c.scope_id == owner.id)


def _readable(conn: Connection, caller: Caller, table: Any, hospital_id: str | None) -> list[Any]:
    """The WHERE clauses of the rows the caller reads (of one centre and its union, with `hospital_id`)."""
    if hospital_id is not None:
        centre = Owner("hospital", hospital_id)
        require_read(conn, caller, centre)
        union = union_of(conn, hospital_id)
        mine = [_of_owner(table, centre)] + ([_of_owner(table, Owner("union", union))] if union else [])
        return [or_(*mine)]
    reach = readable_owners(conn, caller)
    if reach is None:
        return []
    centres, unions = reach
    return [or_(and_(table.c.scope_kind == "hospital", table.c.scope_id.in_(sorted(centres))),
                and_(table.c.scope_kind == "union", table.c.scope_id.in_(sorted(unions))))]


def _owner_fields(body: Body) -> tuple[str | None, str | None]:
    return body.text("hospitalId", max_len=64), body.text("unionId", max_len=64)


def _unmoved(body: Body, owner: Owner) -> None:
    hospital_id, union_id = _owner_fields(body)
    sent = Owner("hospital", hospital_id) if hospital_id else Owner("union", union_id) if union_id else None
    if sent is not None and sent != owner:
        raise Invalid(f"it belongs to {owner}: create it there instead of moving it", field="hospitalId",
                      code=Code.INVALID_FORMAT)


def _multiline(body: Body, name: str) -> str | None:
    value = body.value(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > TEMPLATE_MAX:
        raise Invalid(f"{name} must be a text of at most {TEMPLATE_MAX} characters", field=name,
                      code=Code.INVALID_FORMAT)
    return value


# ---- body parts -----------------------------------------------------------------------------------------

def _part_json(r: Any) -> Item:
    return {"id": r.id, "name": r.name, "modality": r.modality or None, **_owner(r).json()}


def _part_row(conn: Connection, key: int | str) -> Row[Any]:
    row = None
    if isinstance(key, int) or key.isdigit():
        row = conn.execute(select(s.body_parts).where(s.body_parts.c.id == int(key))).first()
    if row is None:
        raise NotFound(f"no body part {key}", subject="body part", field="bodyPartId", code=Code.BODY_PART_NOT_FOUND)
    return row


def _part_name_free(conn: Connection, owner: Owner, name: str, modality: str, key: int | None) -> None:
    t = s.body_parts
    other = conn.execute(select(t.c.id).where(_of_owner(t, owner), t.c.name == name, t.c.modality == modality,
                                              t.c.id != (key or 0))).scalar()
    if other is not None:
        on = f" for {modality}" if modality else ""
        raise Conflict(f"{owner} already has body part {name!r}{on} (id {other})", subject="body part",
                       field="name", code=Code.BODY_PART_EXISTS)


def list_body_parts(conn: Connection, *, caller: Caller, hospital_id: str | None = None,
                    modality: str | None = None) -> dict[str, Any]:
    t = s.body_parts
    where = _readable(conn, caller, t, hospital_id)
    if modality:
        where.append(t.c.modality.in_(["", _modality(modality)]))
    rows = conn.execute(select(t).where(*where).order_by(t.c.scope_kind, t.c.scope_id, t.c.name, t.c.modality)
                        ).all()
    return {"items": [_part_json(r) for r in rows], "total": len(rows)}


def get_body_part(conn: Connection, *, caller: Caller, key: str) -> Item:
    row = _part_row(conn, key)
    require_read(conn, caller, _owner(row))
    return _part_json(row)


def create_body_part(conn: Connection, *, caller: Caller, data: Mapping[str, Any], now: float) -> Item:
    body = Body(data, "body part", partial=False)
    name = body.text("name", required=True, max_len=100)
    modality = _modality(body.text("modality", max_len=16))
    hospital_id, union_id = _owner_fields(body)
    body.done()
    assert name is not None
    owner = owner_for_new(conn, caller, hospital_id, union_id)
    _part_name_free(conn, owner, name, modality, None)
    key = conn.execute(insert(s.body_parts).values(
        scope_kind=owner.kind, scope_id=owner.id, name=name, modality=modality, created_by=caller.username,
        created_at=now, updated_at=now).returning(s.body_parts.c.id)).scalar_one()
    return _part_json(_part_row(conn, key))


def update_body_part(conn: Connection, *, caller: Caller, key: str, data: Mapping[str, Any], now: float) -> Item:
    row = _part_row(conn, key)
    owner = _owner(row)
    require_write(conn, caller, owner)
    body = Body(data, "body part", partial=True)
    name = body.text("name", required=True, max_len=100) or row.name
    modality = _modality(body.text("modality", max_len=16)) if body.has("modality") else row.modality
    _unmoved(body, owner)
    body.done()
    _part_name_free(conn, owner, name, modality, row.id)
    conn.execute(update(s.body_parts).where(s.body_parts.c.id == row.id)
                 .values(name=name, modality=modality, updated_at=now))
    return _part_json(_part_row(conn, row.id))


def remove_body_part(conn: Connection, *, caller: Caller, key: str) -> Item:
    """Remove a body part no exam item names (refused with those items' names otherwise)."""
    row = _part_row(conn, key)
    owner = _owner(row)
    require_write(conn, caller, owner)
    e = s.exam_items
    names = tuple(conn.execute(select(e.c.name).where(e.c.body_part_id == row.id).order_by(e.c.name)).scalars())
    refuse_if_held("body part", str(row.id), [Holder(len(names), "exam item", "exam items", names)])
    conn.execute(delete(s.body_parts).where(s.body_parts.c.id == row.id))
    return _part_json(row)


# ---- exam items -----------------------------------------------------------------------------------------

def _item_json(r: Any) -> Item:
    return {"id": r.id, "name": r.name, "bodyPartId": r.body_part_id, "bodyPart": r.body_part,
            "modality": r.modality, "templateDescription": r.template_description,
            "templateConclusion": r.template_conclusion, **_owner(r).json()}


def _items_select() -> Any:
    e, b = s.exam_items, s.body_parts
    return select(e, b.c.name.label("body_part")).select_from(e.join(b, b.c.id == e.c.body_part_id))


def _item_row(conn: Connection, key: int | str) -> Row[Any]:
    row = None
    if isinstance(key, int) or key.isdigit():
        row = conn.execute(_items_select().where(s.exam_items.c.id == int(key))).first()
    if row is None:
        raise NotFound(f"no exam item {key}", subject="exam item", code=Code.EXAM_ITEM_NOT_FOUND)
    return row


def _item_body_part(conn: Connection, owner: Owner, key: int) -> Row[Any]:
    """The body part an item of `owner` may name: its owner's own, or its centre's union's (else 30013)."""
    part = _part_row(conn, key)
    allowed = {owner} | ({Owner("union", u)} if owner.kind == "hospital" and (u := union_of(conn, owner.id))
                         else set())
    if _owner(part) not in allowed:
        raise NotFound(f"no body part {key} for the exam items of {owner}", subject="body part",
                       field="bodyPartId", code=Code.BODY_PART_NOT_FOUND)
    return part


def _item_modality(part: Row[Any], sent: str | None) -> str:
    modality = _modality(sent) if sent is not None else part.modality
    if not modality:
        raise Invalid(f"modality is required (body part {part.id} names none)", field="modality",
                      code=Code.REQUIRED_EMPTY)
    if part.modality and modality != part.modality:
        raise Invalid(f"body part {part.id} is a {part.modality} body part, not {modality}", field="modality",
                      code=Code.INVALID_FORMAT)
    return modality


def _item_name_free(conn: Connection, owner: Owner, name: str, modality: str, key: int | None) -> None:
    e = s.exam_items
    other = conn.execute(select(e.c.id).where(_of_owner(e, owner), e.c.name == name, e.c.modality == modality,
                                              e.c.id != (key or 0))).scalar()
    if other is not None:
        raise Conflict(f"{owner} already has exam item {name!r} for {modality} (id {other})", subject="exam item",
                       field="name", code=Code.EXAM_ITEM_EXISTS)


def list_exam_items(conn: Connection, *, caller: Caller, hospital_id: str | None = None,
                    modality: str | None = None, body_part_id: int | None = None) -> dict[str, Any]:
    e = s.exam_items
    where = _readable(conn, caller, e, hospital_id)
    if modality:
        where.append(e.c.modality == _modality(modality))
    if body_part_id is not None:
        where.append(e.c.body_part_id == body_part_id)
    rows = conn.execute(_items_select().where(*where).order_by(e.c.scope_kind, e.c.scope_id, e.c.name,
                                                               e.c.modality)).all()
    return {"items": [_item_json(r) for r in rows], "total": len(rows)}


def get_exam_item(conn: Connection, *, caller: Caller, key: str) -> Item:
    row = _item_row(conn, key)
    require_read(conn, caller, _owner(row))
    return _item_json(row)


def create_exam_item(conn: Connection, *, caller: Caller, data: Mapping[str, Any], now: float) -> Item:
    body = Body(data, "exam item", partial=False)
    name = body.text("name", required=True, max_len=200)
    part_id = body.integer("bodyPartId", required=True)
    sent_modality = body.text("modality", max_len=16)
    description = _multiline(body, "templateDescription") or ""
    conclusion = _multiline(body, "templateConclusion") or ""
    hospital_id, union_id = _owner_fields(body)
    body.done()
    assert name is not None and part_id is not None
    owner = owner_for_new(conn, caller, hospital_id, union_id)
    part = _item_body_part(conn, owner, part_id)
    modality = _item_modality(part, sent_modality)
    _item_name_free(conn, owner, name, modality, None)
    key = conn.execute(insert(s.exam_items).values(
        scope_kind=owner.kind, scope_id=owner.id, name=name, body_part_id=part.id, modality=modality,
        template_description=description, template_conclusion=conclusion, created_by=caller.username,
        created_at=now, updated_at=now).returning(s.exam_items.c.id)).scalar_one()
    return _item_json(_item_row(conn, key))


def update_exam_item(conn: Connection, *, caller: Caller, key: str, data: Mapping[str, Any], now: float) -> Item:
    row = _item_row(conn, key)
    owner = _owner(row)
    require_write(conn, caller, owner)
    body = Body(data, "exam item", partial=True)
    name = body.text("name", required=True, max_len=200) or row.name
    part_id = body.integer("bodyPartId", required=True) or row.body_part_id
    sent_modality = body.text("modality", max_len=16) if body.has("modality") else row.modality
    description = _multiline(body, "templateDescription")
    conclusion = _multiline(body, "templateConclusion")
    _unmoved(body, owner)
    body.done()
    part = _item_body_part(conn, owner, part_id)
    modality = _item_modality(part, sent_modality)
    _item_name_free(conn, owner, name, modality, row.id)
    conn.execute(update(s.exam_items).where(s.exam_items.c.id == row.id).values(
        name=name, body_part_id=part.id, modality=modality, updated_at=now,
        template_description=row.template_description if description is None else description,
        template_conclusion=row.template_conclusion if conclusion is None else conclusion))
    return _item_json(_item_row(conn, row.id))


def remove_exam_item(conn: Connection, *, caller: Caller, key: str) -> Item:
    row = _item_row(conn, key)
    owner = _owner(row)
    require_write(conn, caller, owner)
    conn.execute(delete(s.exam_items).where(s.exam_items.c.id == row.id))
    return _item_json(row)


# ---- the template of a new report -----------------------------------------------------------------------

def _same_text(a: str | None, b: str | None) -> bool:
    def norm(t: str | None) -> str:
        return " ".join((t or "").split()).casefold()

    return bool(norm(a)) and norm(a) == norm(b)


def _same_part(name: str, body_part: str | None) -> bool:
    """A body part's name matches the study's Body Part Examined as written, or in Chinese (core.bodyparts:
    "CHEST", "Chest" and "胸部" are one part)."""
    if not body_part or not body_part.strip():
        return False
    return _same_text(name, body_part) or _same_text(body_part_zh(name), body_part_zh(body_part))


def template_for(conn: Connection, *, centre_id: str, modality: str | None, body_part: str | None,
                 study_desc: str | None) -> tuple[str, str] | None:
    """The (description, conclusion) a new report of a study read at `centre_id` starts from, or None.

    The centre's own exam items are looked at first, its union's only when none of the centre's matches:
    within each, the item named as the study's description, else the (oldest) item of the study's body
    part. With a modality, only items of that modality match."""
    e = s.exam_items
    union = union_of(conn, centre_id)
    owners = [Owner("hospital", centre_id)] + ([Owner("union", union)] if union else [])
    stmt = _items_select().where(or_(*(_of_owner(e, o) for o in owners)))
    kind = (modality or "").strip().upper()
    if kind:
        stmt = stmt.where(func.upper(e.c.modality) == kind)
    rows = conn.execute(stmt.order_by(e.c.id)).all()
    for owner in owners:
        mine = [r for r in rows if _owner(r) == owner]
        found = next((r for r in mine if _same_text(r.name, study_desc)), None) \
            or next((r for r in mine if _same_part(r.body_part, body_part)), None)
        if found is not None:
            return found.template_description, found.template_conclusion
    return None
