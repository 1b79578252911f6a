"""The patient's own archive: an account per phone, real-name verification, family members, "my studies".

Matching is by keyed hashes only (`studies.id_card_hash`, `studies.phone_hash`),
never by decrypting every row: a verified person's studies are those with
their ID number, plus those registered with their phone and no ID number;
until verified, only the latter. A member's studies are those with the
member's ID number. A name is checked against the names the hospitals
recorded on the few studies that carry the ID number being checked.

Contract codes (raised as core.errors with `code=`): 50001 more than
MAX_MEMBERS members, 50002 someone else's or an unknown member, 50003 a
malformed ID number (18 characters, GB 11643 check character), 50004 more
than MAX_SCANS_PER_DAY members bound by scanning an exam card today, 50006
the name does not match what the hospitals recorded with that ID number.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row, delete, func, insert, or_, select, update

from ...contract.codes import Code
from ...core.crypto import Vault, normalise_id_card, normalise_phone
from ...core.links import token_hash
from ...core.errors import Conflict, Invalid, NotFound, RateLimited
from ...storage import schema as s
from ...storage.upsert import insert_ignore
from .study import mask_name

MAX_MEMBERS = 10
MAX_SCANS_PER_DAY = 5
STAY_SIGNED_IN_S = 30 * 86400.0
RELATIONSHIPS = ("parent", "child", "spouse", "sibling", "other")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_card_well_formed(value: str) -> bool:
    """An 18-character resident ID number whose last character is its GB 11643 check character."""
    v = normalise_id_card(value)
    if len(v) != 18 or not v[:17].isdigit():
        return False
    return _ID_CHECK[sum(int(c) * w for c, w in zip(v[:17], _ID_WEIGHTS, strict=True)) % 11] == v[17]


def _fold_name(name: str | None) -> str:
    text = (name or "").split("=")[-1]  # DICOM PN groups: the ideographic one
    return "".join(text.replace("^", "").split()).lower()


def _clean_name(name: str) -> str:
    return " ".join(name.split()) if name.isascii() else "".join(name.split())


def _identity(vault: Vault, blob: bytes | None) -> dict[str, Any]:
    if blob is None:
        return {}
    try:
        data = json.loads(vault.decrypt(blob) or "{}")
    except (ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def name_matches_records(conn: Connection, *, id_card_hash: str, name: str) -> bool:
    """False only when a hospital recorded this ID number with a name and none of them is `name`."""
    st = s.studies
    names = conn.execute(select(st.c.patient_name).where(st.c.id_card_hash == id_card_hash,
                                                         st.c.patient_name.is_not(None)).limit(50)).scalars()
    recorded = {_fold_name(n) for n in names if n.strip()}
    return not recorded or _fold_name(name) in recorded


def _checked_identity(conn: Connection, vault: Vault, name: str, id_card: str, *, code_wrong: Code) -> str:
    if not name.strip():
        raise Invalid("the name is missing", subject="member", field="name", code=code_wrong)
    if not id_card_well_formed(id_card):
        raise Invalid("the ID card number is not well-formed", subject="member", field="idCard", code=code_wrong)
    id_hash = vault.id_card_hash(id_card)
    assert id_hash is not None  # well-formed, so not empty
    if not name_matches_records(conn, id_card_hash=id_hash, name=name):
        raise Conflict("the name does not match the ID card number", subject="member", field="name",
                       code=Code.MEMBER_ID_MISMATCH)
    return id_hash


# -- accounts and sessions -----------------------------------------------------------


@dataclass(frozen=True)
class Account:
    pk: int
    phone_hash: str
    id_card_hash: str | None
    verified: bool
    name: str | None  # the verified name, for the page only

    @property
    def masked_name(self) -> str:
        return mask_name(self.name)


def account_for_phone(conn: Connection, vault: Vault, *, phone: str, now: float) -> int:
    """The account of `phone` (made on its first sign-in)."""
    key = vault.phone_hash(phone)
    if key is None:
        raise Invalid("a phone number is needed", subject="phone", field="phone")
    a = s.patient_accounts
    insert_ignore(conn, a, {"phone_hash": key, "phone_enc": vault.encrypt(normalise_phone(phone)), "created_at": now},
                  keys=["phone_hash"])
    pk: int = conn.execute(select(a.c.pk).where(a.c.phone_hash == key)).scalar_one()
    return pk


def create_session(conn: Connection, *, account_pk: int, persistent: bool, lifetime_s: float, now: float) -> str:
    sid = secrets.token_urlsafe(32)
    ps = s.patient_sessions
    conn.execute(insert(ps).values(sid_hash=token_hash(sid), account_pk=account_pk, csrf_key=secrets.token_hex(32),
                                   persistent=persistent, created_at=now,
                                   expires_at=now + (STAY_SIGNED_IN_S if persistent else lifetime_s)))
    conn.execute(delete(ps).where(ps.c.expires_at < now - 86400))
    return sid


@dataclass(frozen=True)
class Session:
    pk: int
    csrf_key: str
    account: Account


def find_session(conn: Connection, vault: Vault, *, sid: str | None, now: float) -> Session | None:
    if not sid or len(sid) > 100:
        return None
    ps, a = s.patient_sessions, s.patient_accounts
    row = conn.execute(select(ps.c.pk, ps.c.csrf_key, ps.c.expires_at, ps.c.revoked_at, ps.c.account_pk,
                              a.c.phone_hash, a.c.id_card_hash, a.c.identity_enc, a.c.verified_at)
                       .join(a, a.c.pk == ps.c.account_pk).where(ps.c.sid_hash == token_hash(sid))).first()
    if row is None or row.revoked_at is not None or now >= row.expires_at:
        return None
    name = _identity(vault, row.identity_enc).get("name")
    account = Account(pk=row.account_pk, phone_hash=row.phone_hash,
                      id_card_hash=row.id_card_hash, verified=row.verified_at is not None,
                      name=name if isinstance(name, str) else None)
    return Session(pk=row.pk, csrf_key=row.csrf_key, account=account)


def end_session(conn: Connection, *, session_pk: int, now: float) -> None:
    ps = s.patient_sessions
    conn.execute(update(ps).where(ps.c.pk == session_pk).values(revoked_at=now))


def verify_identity(conn: Connection, vault: Vault, *, account_pk: int, name: str, id_card: str, now: float) -> None:
    """Real-name verification of the account holder (50003 malformed, 50006 mismatch)."""
    id_hash = _checked_identity(conn, vault, name, id_card, code_wrong=Code.MEMBER_ID_WRONG)
    a = s.patient_accounts
    ident = json.dumps({"name": _clean_name(name), "idCard": normalise_id_card(id_card)}, ensure_ascii=False)
    conn.execute(update(a).where(a.c.pk == account_pk).values(id_card_hash=id_hash, identity_enc=vault.encrypt(ident),
                                                              verified_at=now))


# -- family members -------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    pk: int
    name: str
    relationship: str
    id_card_hash: str

    @property
    def masked_name(self) -> str:
        return mask_name(self.name)


def members(conn: Connection, vault: Vault, *, account_pk: int) -> list[Member]:
    m = s.patient_members
    out = []
    for r in conn.execute(select(m).where(m.c.account_pk == account_pk).order_by(m.c.created_at, m.c.pk)):
        ident = _identity(vault, r.identity_enc)
        out.append(Member(pk=r.pk, name=str(ident.get("name") or ""), relationship=str(ident.get("relationship") or ""),
                          id_card_hash=r.id_card_hash))
    return out


def add_member(conn: Connection, vault: Vault, *, account_pk: int, name: str, id_card: str, relationship: str,
               now: float) -> int:
    """A new member of the account (50001 limit, 50003 malformed ID, 50006 mismatch)."""
    if relationship not in RELATIONSHIPS:
        raise Invalid(f"the relationship is one of {', '.join(RELATIONSHIPS)}", subject="member",
                      field="relationship")
    a, m = s.patient_accounts, s.patient_members
    conn.execute(select(a.c.pk).where(a.c.pk == account_pk).with_for_update())  # serialises adds of one account
    count = conn.execute(select(func.count()).where(m.c.account_pk == account_pk)).scalar_one()
    if count >= MAX_MEMBERS:
        raise Conflict(f"at most {MAX_MEMBERS} members", subject="member", code=Code.MEMBER_LIMIT)
    id_hash = _checked_identity(conn, vault, name, id_card, code_wrong=Code.MEMBER_ID_WRONG)
    own = conn.execute(select(a.c.id_card_hash).where(a.c.pk == account_pk)).scalar()
    if own == id_hash:
        raise Conflict("that is the account holder", subject="member", field="idCard", code=Code.MEMBER_ID_WRONG)
    ident = json.dumps({"name": _clean_name(name), "idCard": normalise_id_card(id_card), "relationship": relationship},
                       ensure_ascii=False)
    pk = insert_ignore(conn, m, {"account_pk": account_pk, "id_card_hash": id_hash,
                                 "identity_enc": vault.encrypt(ident), "created_at": now},
                       keys=["account_pk", "id_card_hash"], returning=m.c.pk).scalar()
    if pk is None:
        raise Conflict("this person is already a member", subject="member", field="idCard")
    return int(pk)


def remove_member(conn: Connection, *, account_pk: int, member_pk: int) -> None:
    """Access ends with the row: "my studies" reads the members on every request (50002 when not the account's)."""
    m = s.patient_members
    res = conn.execute(delete(m).where(m.c.pk == member_pk, m.c.account_pk == account_pk))
    if res.rowcount == 0:
        raise NotFound("no such member of this account", subject="member", code=Code.MEMBER_NO_PERMISSION)


def count_scan(conn: Connection, *, account_pk: int, now: float, tz: str) -> None:
    """Record one bind-by-scan, refusing the sixth of the (local) day with 50004."""
    local = datetime.fromtimestamp(now, ZoneInfo(tz))
    since = local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    sc = s.member_scans
    conn.execute(select(s.patient_accounts.c.pk).where(s.patient_accounts.c.pk == account_pk).with_for_update())
    today = conn.execute(select(func.count()).where(sc.c.account_pk == account_pk, sc.c.at >= since)).scalar_one()
    if today >= MAX_SCANS_PER_DAY:
        raise RateLimited(f"at most {MAX_SCANS_PER_DAY} members bound by scanning a day", subject="member",
                          code=Code.MEMBER_SCAN_LIMIT)
    conn.execute(delete(sc).where(sc.c.account_pk == account_pk, sc.c.at < since - 86400))
    conn.execute(insert(sc).values(account_pk=account_pk, at=now))


def identity_of_study(vault: Vault, study: Row[Any]) -> tuple[str, str]:
    """(name, ID number) a hospital recorded on a study, either '' when absent."""
    id_card = _identity(vault, study.identity_enc).get("idCardNum")
    return (study.patient_name or "", id_card if isinstance(id_card, str) else "")


# -- my studies ------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyCard:
    pk: int
    hospital_id: str
    study_id: str
    study_uid: str | None
    hospital: str
    exam: str
    modality: str
    date: str
    report_ready: bool


@dataclass(frozen=True)
class PersonStudies:
    person: str  # "self" or the member's pk as text
    name: str  # masked
    relationship: str
    studies: list[StudyCard]


def _conditions(account: Account) -> list[Any]:
    st = s.studies
    by_phone = (st.c.phone_hash == account.phone_hash) & st.c.id_card_hash.is_(None)
    if account.verified and account.id_card_hash:
        return [by_phone, st.c.id_card_hash == account.id_card_hash]
    return [by_phone]


def my_studies(conn: Connection, vault: Vault, account: Account) -> list[PersonStudies]:
    """Every live study of the account holder and each member, newest first, grouped by person."""
    st, h, r = s.studies, s.hospitals, s.reports
    people = members(conn, vault, account_pk=account.pk)
    by_member = {m.id_card_hash: m for m in people}
    conds = _conditions(account)
    if by_member:
        conds.append(st.c.id_card_hash.in_(list(by_member)))
    report = (select(func.count()).where(r.c.hospital_id == st.c.hospital_id, r.c.study_id == st.c.study_id)
              .correlate(st).scalar_subquery())
    rows = conn.execute(
        select(st.c.pk, st.c.hospital_id, st.c.study_id, st.c.study_uid, st.c.modality, st.c.body_part,
               st.c.study_desc, st.c.study_date, st.c.id_card_hash, st.c.created_at,
               h.c.name.label("hospital"), report.label("reports"))
        .join(h, h.c.id == st.c.hospital_id)
        .where(or_(*conds), st.c.deleted.is_(False), h.c.enabled.is_(True))
        .order_by(st.c.study_date.desc(), st.c.created_at.desc(), st.c.pk.desc())
    ).all()
    groups: dict[str, list[StudyCard]] = {"self": []}
    for m in people:
        groups[str(m.pk)] = []
    for row in rows:
        member = by_member.get(row.id_card_hash) if row.id_card_hash != account.id_card_hash else None
        card = StudyCard(pk=row.pk, hospital_id=row.hospital_id, study_id=row.study_id, study_uid=row.study_uid,
                         hospital=row.hospital,
                         exam=row.study_desc or row.body_part or "", modality=row.modality or "",
                         date=(row.study_date or "")[:10], report_ready=bool(row.reports))
        groups["self" if member is None else str(member.pk)].append(card)
    out = [PersonStudies("self", account.masked_name, "self", groups["self"])]
    out.extend(PersonStudies(str(m.pk), m.masked_name, m.relationship, groups[str(m.pk)]) for m in people)
    return out


def owned_study(conn: Connection, vault: Vault, account: Account, study_pk: int) -> Row[Any]:
    """The study `study_pk` when it is the account's or a member's (else NotFound: no existence leak)."""
    st = s.studies
    conds = _conditions(account)
    hashes = [m.id_card_hash for m in members(conn, vault, account_pk=account.pk)]
    if hashes:
        conds.append(st.c.id_card_hash.in_(hashes))
    row = conn.execute(select(st).where(st.c.pk == study_pk, st.c.deleted.is_(False), or_(*conds))).first()
    if row is None:
        raise NotFound("no such study in this archive", subject="study")
    return row
