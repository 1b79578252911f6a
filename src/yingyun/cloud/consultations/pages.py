"""The links of the patient's consultation page (contract §3.2 `h5Url`): `/h5/consultations/{token}`.

The token names one patient (by the keyed hashes of their identity, never
in clear) as one partner sees them: the consultations listed are those that
touch a study of a hospital granted to that partner when the link was made.
The link expires like the partner's study links (7 days by default). The
page itself is one of the film pages (`cloud/patient/pages/consultations.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, insert, select

from ...core.links import is_token, mint_token, token_hash
from ...storage.schema import consultation_links
from . import service

if TYPE_CHECKING:  # hospital_api imports this module (to mint the links)
    from ..hospital_api.patients import Patient

PATH = "/h5/consultations/{token}"


def mint(conn: Connection, *, app_id: str, patient: Patient, hospitals: set[str], now: float, lifetime: float) -> str:
    token = mint_token()
    conn.execute(insert(consultation_links).values(
        token_hash=token_hash(token), app_id=app_id, id_card_hash=patient.id_card_hash, phone_hash=patient.phone_hash,
        patient_name=patient.name, hospitals=orjson.dumps(sorted(hospitals)).decode(), created_at=now,
        expires_at=now + lifetime))
    return PATH.format(token=token)


def resolve(conn: Connection, token: str, *, now: float) -> tuple[str, list[dict[str, Any]] | None]:
    """("ok", consultations) | ("unknown", None) | ("expired", None)."""
    if not is_token(token):
        return "unknown", None
    row = conn.execute(select(consultation_links).where(consultation_links.c.token_hash == token_hash(token))).first()
    if row is None:
        return "unknown", None
    if now >= row.expires_at:
        return "expired", None
    return "ok", service.for_patient(conn, id_card_hash=row.id_card_hash, phone_hash=row.phone_hash,
                                     patient_name=row.patient_name, hospitals=orjson.loads(row.hospitals))
