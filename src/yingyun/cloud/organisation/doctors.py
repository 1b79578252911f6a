"""Doctors: they request consultations and are invited as experts (cloud/consultations runs what they do)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from ...core.errors import NotFound
from ...storage import schema as s
from ...tenancy import Tenancy
from ..consultations import service as consultations
from .nouns import Body, Item, Page, Query, new_id, of_hospitals, page_of, searched
from .scope import Actor, require_admin_role, require_hospital

FIELDS = (("title", "title"), ("dept", "dept"))


class Doctors:
    path, key = "doctors", "doctorId"

    def __init__(self, tenancy: Tenancy) -> None:
        self.db = tenancy.db

    @staticmethod
    def _shape(r: Any) -> Item:
        return {"doctorId": r.id, "name": r.name, "hospitalId": r.hospital_id, "title": r.title, "dept": r.dept}

    def list(self, actor: Actor, query: Query) -> Page:
        d = s.doctors
        stmt = select(d).where(*searched(query, d.c.id, d.c.name)).order_by(d.c.id)
        stmt = of_hospitals(stmt, d.c.hospital_id, actor, query)
        with self.db.read() as conn:
            return page_of(conn, stmt, query, self._shape)

    def get(self, actor: Actor, key: str) -> Item:
        with self.db.read() as conn:
            row = conn.execute(select(s.doctors).where(s.doctors.c.id == key)).first()
        if row is None:
            raise NotFound(f"no doctor {key!r}", subject="doctor")
        require_hospital(actor, row.hospital_id, write=False)
        return self._shape(row)

    def create(self, actor: Actor, data: Mapping[str, Any]) -> Item:
        return self._save(actor, data, None)

    def update(self, actor: Actor, key: str, data: Mapping[str, Any]) -> Item:
        return self._save(actor, data, self.get(actor, key))

    def _save(self, actor: Actor, data: Mapping[str, Any], current: Item | None) -> Item:
        """Create (`current` None) or change a doctor: add_doctor's rules (20027, 20016) under the scope's."""
        require_admin_role(actor)
        body = Body(data, "doctor", partial=current is not None)
        key = current["doctorId"] if current else body.text("doctorId", max_len=64) or new_id()
        name = body.text("name", required=True) or (current or {}).get("name")
        hospital_id = body.text("hospitalId", required=True, max_len=64) or (current or {}).get("hospitalId")
        extra = {f: body.text(k) if body.has(k) or current is None else current[k] for k, f in FIELDS}
        body.done()
        assert name is not None and hospital_id is not None
        if current is not None:
            require_hospital(actor, current["hospitalId"], write=True)
        with self.db.write() as conn:
            if conn.execute(select(s.hospitals.c.id).where(s.hospitals.c.id == hospital_id)).first() is None:
                raise NotFound(f"no hospital {hospital_id!r}", subject="hospital", field="hospitalId")
            require_hospital(actor, hospital_id, write=True)
            consultations.add_doctor(conn, doctor_id=key, name=name, hospital_id=hospital_id,
                                     title=extra["title"], dept=extra["dept"],
                                     update_existing=current is not None)
        return self.get(actor, key)

    def remove(self, actor: Actor, key: str) -> None:
        current = self.get(actor, key)
        require_hospital(actor, current["hospitalId"], write=True)
        with self.db.write() as conn:
            consultations.remove_doctor(conn, doctor_id=key)
