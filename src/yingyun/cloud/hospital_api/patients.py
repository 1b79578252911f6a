"""Who a partner may see, which studies are the caller's patient's, and their links.

Scope (contract §3.1): a partner sees only the hospitals it is granted,
directly or through a granted union; a hospitalId or unionId outside that
is 20008, and every dataFlag is applied within the grant.

Matching: a study is the patient's when its ID card number equals the given
one (normalised: the check character x/X folded); a study without an ID card
number matches on the phone number, and on the name too when one is given.
Both go through the keyed hashes of core.crypto (indexed columns): no row is
ever decrypted to find a patient.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Row, Select, and_, or_, select

from ...contract import hospital_api as hc
from ...core.crypto import Vault
from ...core.errors import Forbidden
from ...storage import schema as s
from ...tenancy import Partner
from ..patient.links import mint_partner_link, viewer_path


@dataclass(frozen=True)
class Patient:
    id_card_hash: str | None
    phone_hash: str | None
    name: str | None

    @classmethod
    def of(cls, vault: Vault, *, id_num: str, phone: str | None, name: str | None) -> Patient:
        return cls(vault.id_card_hash(id_num), vault.phone_hash(phone), normalise_name(name) or None)

    def owns(self, *, id_card_hash: str | None, phone_hash: str | None, patient_name: str | None) -> bool:
        if id_card_hash is not None:
            return self.id_card_hash is not None and id_card_hash == self.id_card_hash
        if phone_hash is None or self.phone_hash is None or phone_hash != self.phone_hash:
            return False
        return self.name is None or normalise_name(patient_name) == self.name

    def condition(self, table: Any) -> Any:
        """SQL condition on a table with id_card_hash/phone_hash columns (narrowing; `owns` decides)."""
        parts = []
        if self.id_card_hash:
            parts.append(table.c.id_card_hash == self.id_card_hash)
        if self.phone_hash:
            parts.append(and_(table.c.id_card_hash.is_(None), table.c.phone_hash == self.phone_hash))
        return or_(*parts) if parts else None


def normalise_name(name: str | None) -> str:
    text = unicodedata.normalize("NFKC", name or "")
    return re.sub(r"[\s^·.]+", "", text).casefold()


# -- scope ------------------------------------------------------------------------


def granted_hospitals(partner: Partner, hospitals: dict[str, dict[str, Any]]) -> set[str]:
    grant = {h for h in partner.hospitals if h in hospitals}
    grant |= {hid for hid, h in hospitals.items() if h.get("unionId") and h["unionId"] in partner.unions}
    return grant


def check_scope(partner: Partner, hospitals: dict[str, dict[str, Any]], *, hospital_id: str,
                union_id: str | None) -> set[str]:
    """The partner's grant, after checking that the hospital (and union) named are in it."""
    grant = granted_hospitals(partner, hospitals)
    if hospital_id not in grant:
        raise Forbidden(f"hospitalId {hospital_id!r} is not granted to partner {partner.app_id}", subject="hospital",
                        field=hc.HOSPITAL_ID)
    if union_id is not None:
        unions = set(partner.unions) | {hospitals[h]["unionId"] for h in grant if hospitals[h].get("unionId")}
        if union_id not in unions:
            raise Forbidden(f"unionId {union_id!r} is not granted to partner {partner.app_id}", subject="union",
                            field=hc.UNION_ID)
    return grant


def hospitals_for_flag(flag: int, *, grant: set[str], hospitals: dict[str, dict[str, Any]], hospital_id: str,
                       union_id: str) -> set[str]:
    in_union = {h for h in grant if hospitals[h].get("unionId") == union_id}
    if flag == hc.FLAG_ALL:
        return set(grant)
    if flag == hc.FLAG_HOSPITAL:
        return {hospital_id} & grant
    if flag == hc.FLAG_NOT_HOSPITAL:
        return grant - {hospital_id}
    if flag == hc.FLAG_UNION:
        return in_union
    if flag == hc.FLAG_NOT_UNION:
        return grant - in_union
    raise ValueError(flag)


# -- studies ------------------------------------------------------------------------

STUDY_COLUMNS = (s.studies.c.pk, s.studies.c.hospital_id, s.studies.c.study_id, s.studies.c.patient_id,
               s.studies.c.patient_name, s.studies.c.modality, s.studies.c.body_part, s.studies.c.study_desc,
               s.studies.c.study_date, s.studies.c.his_num, s.studies.c.id_card_hash, s.studies.c.phone_hash,
               s.studies.c.details)


@dataclass
class StudyView:
    pk: int
    hospital_id: str
    study_id: str
    patient_id: str | None
    study_date: str
    study_type: int
    body_part: str | None
    study_name: str | None
    his_id: str | None
    details: dict[str, Any]
    report_id: str
    reusable_link: bytes | None = None  # encrypted token of a young link of the asking partner (see `LinkAsk`)


@dataclass(frozen=True)
class LinkAsk:
    """Which partner's young links to fetch along with the studies (one query for both)."""

    app_id: str
    doctor: bool
    now: float
    lifetime: float

    @property
    def kind(self) -> str:
        return "doctor" if self.doctor else "partner"


def _dicom_date(value: str | None) -> str:
    if value and re.fullmatch(r"\d{8}", value):
        return f"{value[:4]}-{value[4:6]}-{value[6:]} 00:00:00"
    return ""


def enriched(where: Any, *, extra: tuple[Any, ...] = (), link: LinkAsk | None = None) -> Select[Any]:
    """Studies with their DICOM modalities and date, latest report and (optionally) a reusable link,
    in one statement: every round trip counts on the hot path."""
    st, d, r, lk = s.studies, s.dicom_studies, s.reports, s.links
    def first_dicom(col: Any) -> Any:
        return select(col).where(d.c.ris_study_pk == st.c.pk).order_by(d.c.pk).limit(1).scalar_subquery()

    cols = [
        *STUDY_COLUMNS, *extra,
        first_dicom(d.c.modalities).label("dicom_modalities"),
        first_dicom(d.c.study_date).label("dicom_date"),
        select(r.c.pk).where(r.c.hospital_id == st.c.hospital_id, r.c.study_id == st.c.study_id)
        .order_by(r.c.updated_at.desc(), r.c.pk.desc()).limit(1).scalar_subquery().label("report_pk"),
    ]
    if link is not None:
        cols.append(
            select(lk.c.token_enc).where(
                lk.c.hospital_id == st.c.hospital_id, lk.c.study_id == st.c.study_id, lk.c.kind == link.kind,
                lk.c.created_by == link.app_id, lk.c.revoked_at.is_(None),
                lk.c.created_at >= link.now - link.lifetime / 7, lk.c.expires_at > link.now,
            ).order_by(lk.c.created_at.desc()).limit(1).scalar_subquery().label("link_token_enc"))
    return select(*cols).where(where)


def view_of(row: Row[Any]) -> StudyView:
    """The StudyView of a row of `enriched`."""
    return StudyView(
        pk=row.pk, hospital_id=row.hospital_id, study_id=row.study_id, patient_id=row.patient_id,
        study_date=row.study_date or _dicom_date(row.dicom_date),
        study_type=hc.study_type_of(row.modality or row.dicom_modalities or ""),
        body_part=row.body_part, study_name=row.study_desc, his_id=row.his_num,
        details=orjson.loads(row.details or "{}"),
        report_id=str(row.report_pk) if row.report_pk is not None else "",
        reusable_link=getattr(row, "link_token_enc", None),
    )


def find_studies(conn: Connection, patient: Patient, *, hospitals: Iterable[str], begin: str | None = None,
                 end: str | None = None, study_type: int | None = None,
                 link: LinkAsk | None = None) -> list[StudyView]:
    """The patient's live studies in `hospitals`, newest first, with their latest report."""
    hospitals = sorted(set(hospitals))
    cond = patient.condition(s.studies)
    if not hospitals or cond is None:
        return []
    st = s.studies
    rows = conn.execute(enriched(and_(cond, st.c.hospital_id.in_(hospitals), st.c.deleted.is_(False)), link=link))
    out = [view_of(r) for r in rows
           if patient.owns(id_card_hash=r.id_card_hash, phone_hash=r.phone_hash, patient_name=r.patient_name)]
    out = [v for v in out if (begin is None or v.study_date >= begin) and (end is None or v.study_date <= end)
           and (study_type is None or v.study_type == study_type)]
    out.sort(key=lambda v: (v.study_date, v.pk), reverse=True)
    return out


def study_view(conn: Connection, *, hospital_id: str, study_id: str) -> tuple[Row[Any], StudyView] | None:
    """(row, view) of one study, or None; the row carries the match columns and `deleted`."""
    st = s.studies
    row = conn.execute(enriched(and_(st.c.hospital_id == hospital_id, st.c.study_id == study_id),
                                extra=(st.c.deleted,))).first()
    if row is None:
        return None
    return row, view_of(row)


def report_row(conn: Connection, *, report_id: str, hospital_id: str) -> Row[*tuple[Any, ...]] | None:
    if not re.fullmatch(r"\d{1,18}", report_id):
        return None
    r = s.reports
    return conn.execute(select(r.c.pk, r.c.hospital_id, r.c.study_id).where(
        r.c.pk == int(report_id), r.c.hospital_id == hospital_id)).first()


# -- links --------------------------------------------------------------------------


def reusable_links(conn: Connection, vault: Vault, *, app_id: str, doctor: bool, studies: list[StudyView],
                   now: float, lifetime: float) -> dict[tuple[str, str], str]:
    """Live links this partner got lately for these studies, reused rather than minting anew.

    A link is reused while it is young (less than a seventh of its lifetime
    old), so what a partner is handed always has most of its lifetime left
    and the links table does not grow with every call.
    """
    if not studies:
        return {}
    lk = s.links
    kind = "doctor" if doctor else "partner"
    rows = conn.execute(select(lk.c.token_enc, lk.c.hospital_id, lk.c.study_id).where(
        lk.c.kind == kind, lk.c.created_by == app_id, lk.c.revoked_at.is_(None),
        lk.c.study_id.in_(sorted({v.study_id for v in studies})),
        lk.c.hospital_id.in_(sorted({v.hospital_id for v in studies})),
        lk.c.created_at >= now - lifetime / 7, lk.c.expires_at > now,
    ).order_by(lk.c.created_at))
    out: dict[tuple[str, str], str] = {}
    for row in rows:
        token = vault.decrypt(row.token_enc)
        if token:
            out[(row.hospital_id, row.study_id)] = f"/h5/{'d' if doctor else 'p'}/{token}"
    return out


def link_path(vault: Vault, token_enc: bytes, *, doctor: bool) -> str:
    return f"/h5/{'d' if doctor else 'p'}/{vault.decrypt(token_enc)}"


def mint_links(conn: Connection, vault: Vault, *, app_id: str, doctor: bool, keys: list[tuple[str, str]],
               now: float, lifetime: float) -> dict[tuple[str, str], str]:
    return {key: mint_partner_link(conn, vault, hospital_id=key[0], study_id=key[1], doctor=doctor, now=now,
                                   lifetime=lifetime, created_by=app_id)
            for key in keys}


def urls(public_url: str, path: str) -> tuple[str, str]:
    """(h5Url, h5DetailUrl) of a link path."""
    base = public_url.rstrip("/")
    return base + path, base + viewer_path(path)
