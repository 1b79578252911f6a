"""A hospital's letterhead: the contact phone and logo its reports carry and its patients' error pages show.

The name is the hospital's own (tenancy); the rest is optional and set with
`yingyun admin letterhead set`. Read by the patient pages (the report PDF,
the expired / revoked / deleted / not-ready pages) and by whatever prints a
report later (remote reading).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, select

from .core.errors import Invalid, NotFound
from .core.reportpdf import Letterhead, check_logo
from .storage import schema as s
from .storage.db import Database
from .storage.upsert import upsert
from .tenancy import Tenancy

# A desk's number as people write it: 0571-87654321, +86 571 8765 4321, 400-800-1234 转 2.
CONTACT_PHONE = re.compile(r"[0-9+][0-9 ()\-+转#]{2,31}")


def letterhead(conn: Connection, *, hospital_id: str, name: str) -> Letterhead:
    """The letterhead of `hospital_id`, whose display name is `name` (just the name when nothing is configured)."""
    t = s.hospital_letterheads
    row = conn.execute(select(t.c.contact_phone, t.c.logo).where(t.c.hospital_id == hospital_id)).first()
    if row is None:
        return Letterhead(hospital=name)
    return Letterhead(hospital=name, contact_phone=row.contact_phone, logo=bytes(row.logo) if row.logo else None)


def set_letterhead(db: Database, tenancy: Tenancy, *, hospital_id: str, contact_phone: str | None = None,
                   clear_contact_phone: bool = False, logo: bytes | None = None, clear_logo: bool = False) -> bool:
    """Set what is given (and clear what is asked); True when the hospital had no letterhead yet."""
    if hospital_id not in tenancy.hospitals():
        raise NotFound(f"no hospital {hospital_id!r}", subject="hospital")
    values: dict[str, Any] = {}
    if contact_phone is not None:
        phone = contact_phone.strip()
        if not CONTACT_PHONE.fullmatch(phone):
            raise Invalid(f"contact phone {phone!r}: digits, spaces, + - ( ) only, 3-32 characters",
                          subject="letterhead", field="contact-phone")
        values["contact_phone"] = phone
    elif clear_contact_phone:
        values["contact_phone"] = None
    if logo is not None:
        values["logo"] = check_logo(logo)
    elif clear_logo:
        values["logo"] = None
    with db.write() as conn:
        return upsert(conn, s.hospital_letterheads, {"hospital_id": hospital_id}, values)


def describe(db: Database, tenancy: Tenancy, *, hospital_id: str) -> dict[str, Any]:
    """What `admin letterhead show` prints."""
    h = tenancy.hospitals().get(hospital_id)
    if h is None:
        raise NotFound(f"no hospital {hospital_id!r}", subject="hospital")
    with db.read() as conn:
        head = letterhead(conn, hospital_id=hospital_id, name=h["name"])
    return {"hospital": hospital_id, "name": head.hospital, "contactPhone": head.contact_phone,
            "logoBytes": len(head.logo) if head.logo else 0}
