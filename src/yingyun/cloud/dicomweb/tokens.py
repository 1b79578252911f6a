"""Operator bearer tokens for DICOMweb tools (viewers, AI pipelines, scripts).

A token is 32 random bytes, base64url (43 characters), prefixed `yyw_` so a
leaked one is recognisable in logs and secret scanners. Only its SHA-256 is
stored; `add` returns the token once. Lookups are cached for `refresh_s`, so
a revocation by the CLI reaches a running server within that time.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update

from ...core.ttl import TtlCache
from ...storage import schema as s
from ...storage.db import Database
from ...storage.schema import dicomweb_token_grants as grants
from ...storage.schema import dicomweb_tokens as tokens

PREFIX = "yyw_"


class TokenError(ValueError):
    """A token command cannot be done (unknown hospital, duplicate or unknown name)."""


@dataclass(frozen=True)
class TokenGrant:
    name: str
    all_hospitals: bool
    hospitals: frozenset[str]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


class TokenRegistry:
    def __init__(self, db: Database, *, refresh_s: float = 2.0) -> None:
        self.db = db
        self._grants: TtlCache[str, TokenGrant | None] = TtlCache(refresh_s)  # by token hash

    def add(self, *, name: str, hospitals: list[str] | None = None, all_hospitals: bool = False) -> str:
        name = (name or "").strip()
        if not name or len(name) > 128 or not name.isprintable():
            raise TokenError("a token name is 1-128 printable characters")
        hospitals = list(dict.fromkeys(hospitals or []))
        if all_hospitals == bool(hospitals):
            raise TokenError("give either --all-hospitals or one or more --hospital")
        token = new_token()
        now = time.time()
        with self.db.write() as conn:
            live = conn.execute(select(tokens.c.pk).where(tokens.c.name == name, tokens.c.revoked_at.is_(None))).first()
            if live is not None:
                raise TokenError(f"a live token named {name!r} exists: revoke it first")
            for hid in hospitals:
                if conn.execute(select(s.hospitals.c.id).where(s.hospitals.c.id == hid)).first() is None:
                    raise TokenError(f"no hospital {hid!r}: add it first")
            pk = conn.execute(insert(tokens).values(name=name, token_hash=token_hash(token),
                                                    all_hospitals=all_hospitals,
                                                    created_at=now).returning(tokens.c.pk)).scalar_one()
            if hospitals:
                conn.execute(insert(grants), [{"token_pk": pk, "hospital_id": h} for h in hospitals])
        return token

    def revoke(self, *, name: str) -> None:
        with self.db.write() as conn:
            res = conn.execute(update(tokens).where(tokens.c.name == name, tokens.c.revoked_at.is_(None))
                               .values(revoked_at=time.time()))
            if res.rowcount == 0:
                raise TokenError(f"no live token named {name!r}")
        self._grants.invalidate()

    def list(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(select(tokens).order_by(tokens.c.name, tokens.c.pk)).all()
            by_token: dict[int, list[str]] = {}
            for g in conn.execute(select(grants).order_by(grants.c.hospital_id)):
                by_token.setdefault(g.token_pk, []).append(g.hospital_id)
        return [{"name": r.name, "allHospitals": bool(r.all_hospitals), "hospitals": by_token.get(r.pk, []),
                 "createdAt": r.created_at, "revokedAt": r.revoked_at, "live": r.revoked_at is None} for r in rows]

    def lookup(self, token: str) -> TokenGrant | None:
        """The grant of a live token, or None (cached for refresh_s)."""
        return self._grants.get(token_hash(token), self._read_grant)

    def _read_grant(self, digest: str) -> TokenGrant | None:
        with self.db.read() as conn:
            live = select(tokens).where(tokens.c.token_hash == digest, tokens.c.revoked_at.is_(None))
            row = conn.execute(live).first()
            if row is None:
                return None
            hs = frozenset(g.hospital_id for g in conn.execute(select(grants.c.hospital_id)
                                                                  .where(grants.c.token_pk == row.pk)))
        return TokenGrant(name=row.name, all_hospitals=bool(row.all_hospitals), hospitals=hs)
