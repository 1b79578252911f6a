"""Link records: the QR code's link per hospital + study, its revocation, and lookups by token or study."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, Row, select, update

from ..core.crypto import Vault
from ..core.errors import Invalid, NotFound
from ..core.links import mint_token, token_hash
from ..storage import schema as s
from ..storage.upsert import insert_ignore


def qr_slot(hospital_id: str, study_id: str) -> str:
    return f"qr\x1f{hospital_id}\x1f{study_id}"


def get_or_create_qr_token(conn: Connection, vault: Vault, *, hospital_id: str, study_id: str,
                           created_by: str | None) -> str:
    """The study's live QR token: the same on every reprint until revoked."""
    lk = s.links
    slot = qr_slot(hospital_id, study_id)
    row = conn.execute(select(lk.c.token_enc).where(lk.c.slot == slot)).first()
    if row is None:
        token = mint_token()
        pk = insert_ignore(
            conn,
            lk,
            {"token_hash": token_hash(token), "token_enc": vault.encrypt(token), "kind": "qr",
             "hospital_id": hospital_id, "study_id": study_id, "slot": slot, "created_by": created_by,
             "created_at": time.time()},
            keys=["slot"],
            returning=lk.c.pk,
        ).scalar()
        if pk is not None:
            return token
        row = conn.execute(select(lk.c.token_enc).where(lk.c.slot == slot)).first()
    live: str | None = None if row is None else vault.decrypt(row.token_enc)
    if live is None:  # lost the insert, then the winner was revoked: no live token to hand out
        raise RuntimeError("the study's QR link was revoked while it was being fetched")
    return live


def revoke_qr(conn: Connection, *, hospital_id: str, study_id: str) -> bool:
    lk = s.links
    res = conn.execute(
        update(lk).where(lk.c.slot == qr_slot(hospital_id, study_id)).values(slot=None, revoked_at=time.time())
    )
    return res.rowcount > 0


def locate_study(conn: Connection, *, hospital_id: str | None, study_id: str | None = None,
                 study_uid: str | None = None) -> Row[Any]:
    """The live study of that studyId or Study Instance UID; `hospital_id` only needed when
    several hospitals have one (an operator names a study as the exam card or the images do)."""
    st = s.studies
    q = select(st).where(st.c.deleted.is_(False))
    q = q.where(st.c.study_id == study_id) if study_id is not None else q.where(st.c.study_uid == study_uid)
    if hospital_id is not None:
        q = q.where(st.c.hospital_id == hospital_id)
    rows = conn.execute(q.order_by(st.c.hospital_id).limit(10)).all()
    named = f"study {study_id or study_uid!r}" + (f" in hospital {hospital_id}" if hospital_id else "")
    if not rows:
        raise NotFound(f"no {named}", subject="study")
    if len(rows) > 1:
        raise Invalid(f"{named} is in several hospitals ({', '.join(r.hospital_id for r in rows)}): "
                      "name one with --hospital", subject="study", field="hospital")
    return rows[0]


def find_link(conn: Connection, token: str) -> Row[Any] | None:
    lk = s.links
    return conn.execute(select(lk).where(lk.c.token_hash == token_hash(token))).first()
