"""Unions, hospitals and their departments."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from ...contract.codes import Code
from ...core.errors import Conflict, Invalid, NotFound
from ...storage import schema as s
from ...tenancy import Holder, Tenancy, refuse_if_held
from .nouns import Body, Item, Page, Query, new_id, of_hospitals, page_of, searched
from .scope import ADMIN, Actor, outside, require_admin_role, require_hospital, require_operator


def hospital_row(conn: Connection, hospital_id: str) -> Row[Any]:
    row = conn.execute(select(s.hospitals).where(s.hospitals.c.id == hospital_id)).first()
    if row is None:
        raise NotFound(f"no hospital {hospital_id!r}", subject="hospital", field="hospitalId")
    return row


def _visible_unions(conn: Connection, actor: Actor) -> set[str] | None:
    if actor.is_operator():
        return None
    unions = set(actor.union_ids() or ())
    reach = actor.hospital_ids()
    if reach:
        unions |= {u for u in conn.execute(select(s.hospitals.c.union_id).where(s.hospitals.c.id.in_(reach)))
                   .scalars() if u}
    return unions


def _require_union_admin(actor: Actor, union_id: str | None, what: str) -> None:
    """Writing what belongs to a union (or to none): operator, or admin of that union."""
    require_admin_role(actor)
    if actor.is_operator():
        return
    if union_id is None or union_id not in (actor.union_ids(ADMIN) or ()):
        raise outside(what)


class Unions:
    path, key = "unions", "id"

    def __init__(self, tenancy: Tenancy) -> None:
        self.tenancy = tenancy
        self.db = tenancy.db

    @staticmethod
    def _shape(r: Any) -> Item:
        return {"id": r.id, "name": r.name}

    def list(self, actor: Actor, query: Query) -> Page:
        u = s.unions
        with self.db.read() as conn:
            visible = _visible_unions(conn, actor)
            stmt = select(u).where(*searched(query, u.c.id, u.c.name)).order_by(u.c.id)
            if visible is not None:
                stmt = stmt.where(u.c.id.in_(sorted(visible)))
            return page_of(conn, stmt, query, self._shape)

    def get(self, actor: Actor, key: str) -> Item:
        with self.db.read() as conn:
            row = conn.execute(select(s.unions).where(s.unions.c.id == key)).first()
            if row is None:
                raise NotFound(f"no union {key!r}", subject="union")
            visible = _visible_unions(conn, actor)
        if visible is not None and key not in visible:
            raise outside(f"union {key}")
        return self._shape(row)

    def create(self, actor: Actor, data: Mapping[str, Any]) -> Item:
        require_operator(actor, "a new union")
        body = Body(data, "union", partial=False)
        union_id = body.text("id", max_len=64) or new_id()
        name = body.text("name", required=True)
        body.done()
        assert name is not None
        self.tenancy.add_union(union_id=union_id, name=name, new=True)
        return self.get(actor, union_id)

    def update(self, actor: Actor, key: str, data: Mapping[str, Any]) -> Item:
        current = self.get(actor, key)
        _require_union_admin(actor, key, f"union {key}")
        body = Body(data, "union", partial=True)
        name = body.text("name", required=True)
        body.done()
        if name is not None and name != current["name"]:
            self.tenancy.add_union(union_id=key, name=name, new=False)
        return self.get(actor, key)

    def remove(self, actor: Actor, key: str) -> None:
        self.get(actor, key)
        require_operator(actor, f"union {key}")
        self.tenancy.remove_union(union_id=key)


class Hospitals:
    path, key = "hospitals", "id"

    def __init__(self, tenancy: Tenancy) -> None:
        self.tenancy = tenancy
        self.db = tenancy.db

    @staticmethod
    def _shape(r: Any) -> Item:
        return {"id": r.id, "name": r.name, "unionId": r.union_id, "enabled": bool(r.enabled)}

    def list(self, actor: Actor, query: Query) -> Page:
        h = s.hospitals
        stmt = select(h).where(*searched(query, h.c.id, h.c.name)).order_by(h.c.id)
        reach = actor.hospital_ids()
        if reach is not None:
            stmt = stmt.where(h.c.id.in_(sorted(reach)))
        with self.db.read() as conn:
            return page_of(conn, stmt, query, self._shape)

    def get(self, actor: Actor, key: str) -> Item:
        with self.db.read() as conn:
            row = hospital_row(conn, key)
        require_hospital(actor, key, write=False, union_id=row.union_id)
        return self._shape(row)

    def create(self, actor: Actor, data: Mapping[str, Any]) -> Item:
        require_admin_role(actor)
        body = Body(data, "hospital", partial=False)
        hospital_id = body.text("id", max_len=64) or new_id()
        name = body.text("name", required=True)
        union_id = body.text("unionId", max_len=64)
        enabled = body.flag("enabled")
        body.done()
        assert name is not None
        _require_union_admin(actor, union_id, "a hospital outside your unions")
        self.tenancy.add_hospital(hospital_id=hospital_id, name=name, union_id=union_id, new=True)
        if enabled is False:
            self.tenancy.set_hospital_enabled(hospital_id=hospital_id, enabled=False)
        return self.get(actor, hospital_id)

    def update(self, actor: Actor, key: str, data: Mapping[str, Any]) -> Item:
        current = self.get(actor, key)
        require_hospital(actor, key, write=True, union_id=current["unionId"])
        body = Body(data, "hospital", partial=True)
        name = body.text("name", required=True) or current["name"]
        union_id = body.text("unionId", max_len=64) if body.has("unionId") else current["unionId"]
        enabled = body.flag("enabled")
        body.done()
        if union_id != current["unionId"]:
            _require_union_admin(actor, current["unionId"], f"hospital {key}'s union")
            _require_union_admin(actor, union_id, f"union {union_id}")
        if (name, union_id) != (current["name"], current["unionId"]):
            self.tenancy.add_hospital(hospital_id=key, name=name, union_id=union_id, new=False)
        if enabled is not None and enabled != current["enabled"]:
            self.tenancy.set_hospital_enabled(hospital_id=key, enabled=enabled)
        return self.get(actor, key)

    def remove(self, actor: Actor, key: str) -> None:
        current = self.get(actor, key)
        require_hospital(actor, key, write=True, union_id=current["unionId"])
        _require_union_admin(actor, current["unionId"], f"removing hospital {key}")
        self.tenancy.remove_hospital(hospital_id=key)


def _duplicate(subject: str, detail: str, code: Code) -> Conflict:
    return Conflict(detail, subject=subject, field="name", code=code)


class Departments:
    path, key = "departments", "id"

    def __init__(self, tenancy: Tenancy) -> None:
        self.db = tenancy.db

    @staticmethod
    def _shape(r: Any) -> Item:
        return {"id": r.id, "hospitalId": r.hospital_id, "name": r.name, "enabled": bool(r.enabled)}

    def list(self, actor: Actor, query: Query) -> Page:
        d = s.departments
        stmt = select(d).where(*searched(query, d.c.id, d.c.name)).order_by(d.c.hospital_id, d.c.name)
        stmt = of_hospitals(stmt, d.c.hospital_id, actor, query)
        with self.db.read() as conn:
            return page_of(conn, stmt, query, self._shape)

    def _row(self, conn: Connection, key: str) -> Row[Any]:
        row = conn.execute(select(s.departments).where(s.departments.c.id == key)).first()
        if row is None:
            raise NotFound(f"no department {key!r}", subject="department", code=Code.DEPARTMENT_NOT_FOUND)
        return row

    def get(self, actor: Actor, key: str) -> Item:
        with self.db.read() as conn:
            row = self._row(conn, key)
        require_hospital(actor, row.hospital_id, write=False)
        return self._shape(row)

    def create(self, actor: Actor, data: Mapping[str, Any]) -> Item:
        require_admin_role(actor)
        body = Body(data, "department", partial=False)
        key = body.text("id", max_len=64) or new_id()
        hospital_id = body.text("hospitalId", required=True, max_len=64)
        name = body.text("name", required=True)
        enabled = body.flag("enabled")
        body.done()
        assert hospital_id is not None and name is not None
        with self.db.write() as conn:
            hospital_row(conn, hospital_id)
            require_hospital(actor, hospital_id, write=True)
            d = s.departments
            if conn.execute(select(d.c.id).where(d.c.id == key)).first() is not None:
                raise _duplicate("department", f"department {key!r} already exists", Code.DEPARTMENT_EXISTS)
            self._name_unused(conn, hospital_id, name, key)
            now = time.time()
            conn.execute(insert(d).values(id=key, hospital_id=hospital_id, name=name,
                                          enabled=enabled is not False, created_at=now, updated_at=now))
        return self.get(actor, key)

    @staticmethod
    def _name_unused(conn: Connection, hospital_id: str, name: str, key: str) -> None:
        d = s.departments
        other = conn.execute(select(d.c.id).where(d.c.hospital_id == hospital_id, d.c.name == name,
                                                  d.c.id != key)).scalar()
        if other is not None:
            raise _duplicate("department", f"hospital {hospital_id} already has a department named {name!r}",
                             Code.DEPARTMENT_EXISTS)

    def update(self, actor: Actor, key: str, data: Mapping[str, Any]) -> Item:
        body = Body(data, "department", partial=True)
        name = body.text("name", required=True)
        moved_to = body.text("hospitalId", max_len=64)
        enabled = body.flag("enabled")
        body.done()
        with self.db.write() as conn:
            row = self._row(conn, key)
            require_hospital(actor, row.hospital_id, write=True)
            if moved_to is not None and moved_to != row.hospital_id:
                raise Invalid("a department stays in its hospital: add one to the other hospital instead",
                              subject="department", field="hospitalId", code=Code.INVALID_FORMAT)
            values: dict[str, Any] = {}
            if name is not None and name != row.name:
                self._name_unused(conn, row.hospital_id, name, key)
                values["name"] = name
            if enabled is not None:
                values["enabled"] = enabled
            if values:
                conn.execute(update(s.departments).where(s.departments.c.id == key).values(**values,
                                                                                          updated_at=time.time()))
        return self.get(actor, key)

    def remove(self, actor: Actor, key: str) -> None:
        with self.db.write() as conn:
            row = self._row(conn, key)
            require_hospital(actor, row.hospital_id, write=True)
            dev = s.devices
            names = tuple(conn.execute(select(dev.c.id).where(dev.c.department_id == key).order_by(dev.c.id))
                          .scalars())
            refuse_if_held("department", key, [Holder(len(names), "device", "devices", names)])
            conn.execute(delete(s.departments).where(s.departments.c.id == key))
