"""Who may read and write the templates of a reading centre or of a union, and whose a new one is.

A reading centre is a hospital. Its admins and reviewers write its body parts, exam items and shared
knowledge-base folders; its radiologists read them; operators do everything. What belongs to a whole
union is written by the union's admins (and operators) and read by whoever reads the templates of one
of its hospitals. Body parts and exam items are refused with 20008 outside those roles (20012 is the
organisation's "not an administrator", which a reviewer's work is not).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, select

from ...contract.codes import Code
from ...core.errors import Forbidden, Invalid, NotFound
from ...storage import schema as s
from ..staff.edge import ADMIN, RADIOLOGIST, REVIEWER, Caller

ScopeKind = Literal["hospital", "union"]
READERS = (RADIOLOGIST, REVIEWER, ADMIN)
WRITERS = (REVIEWER, ADMIN)


@dataclass(frozen=True)
class Owner:
    """A reading centre (kind "hospital") or a union, as the rows of `storage.schema.templates` name it."""

    kind: ScopeKind
    id: str

    def json(self) -> dict[str, str | None]:
        return {"hospitalId": self.id if self.kind == "hospital" else None,
                "unionId": self.id if self.kind == "union" else None}

    def __str__(self) -> str:
        return f"{'reading centre' if self.kind == 'hospital' else 'union'} {self.id}"


def union_of(conn: Connection, hospital_id: str) -> str | None:
    union: str | None = conn.execute(select(s.hospitals.c.union_id).where(s.hospitals.c.id == hospital_id)
                                     ).scalar()
    return union


def may_read(conn: Connection, caller: Caller, owner: Owner) -> bool:
    if owner.kind == "hospital":
        return any(caller.may(role, hospital_id=owner.id) for role in READERS)
    if caller.may(ADMIN, union_id=owner.id):
        return True
    reach = caller.hospital_ids(*READERS)
    return reach is None or any(union_of(conn, h) == owner.id for h in sorted(reach))


def may_write(caller: Caller, owner: Owner) -> bool:
    if owner.kind == "hospital":
        return any(caller.may(role, hospital_id=owner.id) for role in WRITERS)
    return caller.may(ADMIN, union_id=owner.id)


def require_read(conn: Connection, caller: Caller, owner: Owner) -> None:
    if not may_read(conn, caller, owner):
        raise Forbidden(f"the templates of {owner} are outside your scope", code=Code.NO_PERMISSION)


def require_write(conn: Connection, caller: Caller, owner: Owner) -> None:
    """20008 unless the caller writes `owner`'s templates (module docstring)."""
    if not may_write(caller, owner):
        if may_read(conn, caller, owner):
            raise Forbidden(f"you may only read the templates of {owner}: its admins and reviewers write them",
                            code=Code.NO_PERMISSION)
        raise Forbidden(f"the templates of {owner} are outside your scope", code=Code.NO_PERMISSION)


def readable_owners(conn: Connection, caller: Caller) -> tuple[set[str], set[str]] | None:
    """(centres, unions) whose templates the caller reads; None: all of them (an operator)."""
    reach = caller.hospital_ids(*READERS)
    if reach is None:
        return None
    unions = {u for h in sorted(reach) if (u := union_of(conn, h)) is not None}
    unions |= caller.union_ids(ADMIN) or set()
    return set(reach), unions


def owner_for_new(conn: Connection, caller: Caller, hospital_id: str | None, union_id: str | None) -> Owner:
    """Whose a new row is: the `hospitalId` or `unionId` sent, else the one centre the caller writes for
    (20031 when it writes for several, 20008 when for none); then checked writable."""
    if hospital_id is not None and union_id is not None:
        raise Invalid("send hospitalId (a reading centre's) or unionId (the whole union's), not both",
                      field="unionId", code=Code.INVALID_FORMAT)
    if union_id is not None:
        if conn.execute(select(s.unions.c.id).where(s.unions.c.id == union_id)).first() is None:
            raise NotFound(f"no union {union_id!r}", subject="union", field="unionId", code=Code.UNION_NOT_FOUND)
        owner = Owner("union", union_id)
    else:
        if hospital_id is None:
            reach = caller.hospital_ids(*WRITERS)
            if reach == frozenset():
                raise Forbidden(f"user {caller.username} writes the templates of no reading centre",
                                code=Code.NO_PERMISSION)
            if reach is None or len(reach) != 1:
                raise Invalid("hospitalId (the reading centre) or unionId is required", field="hospitalId",
                              code=Code.REQUIRED_EMPTY)
            (hospital_id,) = reach
        if conn.execute(select(s.hospitals.c.id).where(s.hospitals.c.id == hospital_id)).first() is None:
            raise NotFound(f"no hospital {hospital_id!r}", subject="hospital", field="hospitalId",
                           code=Code.INSTITUTION_NOT_FOUND)
        owner = Owner("hospital", hospital_id)
    require_write(conn, caller, owner)
    return owner
