"""The links behind the patient pages: resolving a token, partner links, shares.

URL shapes (docs/api.md, "Cloud film pages"):

=================  ======  ===========================================
path               kind    who and how
=================  ======  ===========================================
/h5/s/{token}      qr      the exam card's QR code; needs verification
/h5/p/{token}      partner internet hospital, patient (usage 0/1); no verification
/h5/d/{token}      doctor  internet hospital, doctor (usage 2); no verification
/h5/share/{token}  share   made by a verified patient; optional password
=================  ======  ===========================================

Every page of a link lives under its base path (``/viewer``, ``/img/...``),
so nothing but the token identifies anything in a URL.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ...core.crypto import Vault
from ...core.links import is_token, mint_token, token_hash
from ...storage import schema as s

PATH_KIND = {"s": "qr", "p": "partner", "d": "doctor", "share": "share"}
KIND_PATH = {v: k for k, v in PATH_KIND.items()}


class LinkState(enum.Enum):
    OK = "ok"
    UNKNOWN = "unknown"  # no such token, or opened under the wrong path (20022)
    REVOKED = "revoked"  # 20022: scan again
    EXPIRED = "expired"  # 20009
    DELETED = "deleted"  # the study was deleted by the hospital
    SUSPENDED = "suspended"  # the operator disabled the hospital (nothing is deleted)
    PENDING = "pending"  # reserved at registration; the study has not arrived


@dataclass(frozen=True)
class Link:
    pk: int
    kind: str
    token: str
    hospital_id: str
    study_id: str
    parent_pk: int | None
    password_hash: str | None
    expires_at: float | None
    created_at: float
    scope: str | None = None  # a share of the images or the report only (SHARE_SCOPES)

    @property
    def base_path(self) -> str:
        return f"/h5/{KIND_PATH[self.kind]}/{self.token}"

    @property
    def needs_verification(self) -> bool:
        return self.kind == "qr"

    @property
    def can_share(self) -> bool:
        return self.kind in ("qr", "partner")

    @property
    def dicom_download(self) -> bool:
        return self.kind == "doctor"


@dataclass
class Resolved:
    state: LinkState
    link: Link | None = None
    study: Any = None  # the `studies` row when the study exists


def resolve(conn: Connection, *, path_kind: str, token: str, now: float) -> Resolved:
    kind = PATH_KIND.get(path_kind)
    if kind is None or not is_token(token):
        return Resolved(LinkState.UNKNOWN)
    lk = s.links
    row = conn.execute(select(lk).where(lk.c.token_hash == token_hash(token))).first()
    if row is None or row.kind != kind:
        return Resolved(LinkState.UNKNOWN)
    link = Link(pk=row.pk, kind=row.kind, token=token, hospital_id=row.hospital_id, study_id=row.study_id,
                parent_pk=row.parent_pk, password_hash=row.password_hash, expires_at=row.expires_at,
                created_at=row.created_at, scope=row.share_scope)
    if row.revoked_at is not None:
        return Resolved(LinkState.REVOKED, link)
    if row.expires_at is not None and now >= row.expires_at:
        return Resolved(LinkState.EXPIRED, link)
    if row.parent_pk is not None:
        parent = conn.execute(select(lk.c.revoked_at, lk.c.expires_at).where(lk.c.pk == row.parent_pk)).first()
        if parent is None or parent.revoked_at is not None:
            return Resolved(LinkState.REVOKED, link)
        if parent.expires_at is not None and now >= parent.expires_at:
            return Resolved(LinkState.EXPIRED, link)
    if not conn.execute(select(s.hospitals.c.enabled).where(s.hospitals.c.id == row.hospital_id)).scalar():
        return Resolved(LinkState.SUSPENDED, link)
    st = s.studies
    study = conn.execute(
        select(st).where(st.c.hospital_id == row.hospital_id, st.c.study_id == row.study_id)
    ).first()
    if study is None:
        return Resolved(LinkState.PENDING, link)
    if study.deleted:
        return Resolved(LinkState.DELETED, link, study)
    return Resolved(LinkState.OK, link, study)


# -- partner and doctor links (contract §3.1) --------------------------------


def mint_partner_link(conn: Connection, vault: Vault, *, hospital_id: str, study_id: str, doctor: bool, now: float,
                      lifetime: float, created_by: str | None = None) -> str:
    """A fresh link for an internet-hospital partner; returns its URL path.

    `doctor` (usage 2) gives a doctor link (``/h5/d/...``: DICOM download,
    audited as a doctor's), else a patient link (``/h5/p/...``). Neither
    asks for verification: the partner already knows who it hands it to.
    The report page is the path itself (`h5Url`); the images are
    `viewer_path(path)` (`h5DetailUrl`). Lifetimes per contract §3.1:
    settings.partner_link_lifetime_s (7 days) and doctor_link_lifetime_s (24 h).
    """
    if lifetime <= 0:
        raise ValueError("lifetime must be > 0")
    token = mint_token()
    kind = "doctor" if doctor else "partner"
    conn.execute(
        insert(s.links).values(
            token_hash=token_hash(token), token_enc=vault.encrypt(token), kind=kind, hospital_id=hospital_id,
            study_id=study_id, created_by=created_by, created_at=now, expires_at=now + lifetime,
        )
    )
    return f"/h5/{KIND_PATH[kind]}/{token}"


def viewer_path(path: str) -> str:
    return path.rstrip("/") + "/viewer"


# -- shares ------------------------------------------------------------------

_SCRYPT = (2**14, 8, 1)


def hash_password(password: str) -> str:
    n, r, p = _SCRYPT
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def check_password(stored: str | None, password: str) -> bool:
    if not stored:
        return False
    try:
        algo, n, r, p, salt, digest = stored.split("$")
        if algo != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(bytes.fromhex(digest)))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(got.hex(), digest)


SHARE_SCOPES = ("images", "report")


def create_share(conn: Connection, vault: Vault, *, parent: Link, now: float, lifetime_s: float,
                 password: str | None, created_by: str | None = None, scope: str | None = None) -> str:
    """A share of `parent`'s study; returns the token. Shares of shares are not made.
    `created_by`: who made it, when not the parent link's visitor (the patient archive's account)."""
    if not parent.can_share:
        raise ValueError("this link cannot make shares")
    if scope is not None and scope not in SHARE_SCOPES:
        raise ValueError(f"a share's scope is one of {SHARE_SCOPES}")
    token = mint_token()
    conn.execute(
        insert(s.links).values(
            token_hash=token_hash(token), token_enc=vault.encrypt(token), kind="share", hospital_id=parent.hospital_id,
            study_id=parent.study_id, parent_pk=parent.pk, password_hash=hash_password(password) if password else None,
            created_by=created_by or f"link:{parent.pk}", created_at=now, expires_at=now + lifetime_s,
            share_scope=scope,
        )
    )
    return token


def list_shares(conn: Connection, vault: Vault, *, parent_pk: int, now: float) -> list[dict[str, Any]]:
    lk = s.links
    rows = conn.execute(
        select(lk).where(lk.c.parent_pk == parent_pk, lk.c.kind == "share")
        .order_by(lk.c.created_at.desc(), lk.c.pk.desc())
    )
    out = []
    for r in rows:
        expired = r.expires_at is not None and now >= r.expires_at
        state = "revoked" if r.revoked_at is not None else "expired" if expired else "live"
        token = vault.decrypt(r.token_enc) if r.token_enc is not None else None
        out.append({"pk": r.pk, "path": f"/h5/share/{token}" if token else None, "created_at": r.created_at,
                    "expires_at": r.expires_at, "has_password": r.password_hash is not None, "state": state})
    return out


def revoke_share(conn: Connection, *, parent_pk: int, share_pk: int, now: float) -> bool:
    lk = s.links
    res = conn.execute(
        update(lk).where(lk.c.pk == share_pk, lk.c.parent_pk == parent_pk, lk.c.kind == "share",
                         lk.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return res.rowcount > 0
