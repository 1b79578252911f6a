"""Medical unions, hospitals, partners (appId + token) and PACS peers.

Admin commands write these rows directly in the database the server uses;
a running server sees the change within `refresh_s` (the registry caches
lookups that briefly, so authentication costs no query on the hot path).
"""

from __future__ import annotations

import re
import secrets
import string
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, and_, delete, insert, select, update

from .contract.signing import validate_token
from .core.crypto import Vault
from .storage import schema as s
from .storage.db import Database

TOKEN_ALPHABET = string.ascii_letters + string.digits


class NotFound(LookupError):
    pass


class Invalid(ValueError):
    pass


def generate_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(32))


@dataclass(frozen=True)
class Partner:
    app_id: str
    enabled: bool
    tokens: tuple[str, ...]  # live tokens, newest first
    hospitals: frozenset[str]
    unions: frozenset[str]
    callback_url: str | None
    mini_app_id: str | None
    mini_path: str | None

    @property
    def token(self) -> str:
        return self.tokens[0]


@dataclass(frozen=True)
class Pacs:
    ae_title: str
    host: str
    port: int
    hospital_id: str


def _upsert(conn: Connection, table, key: dict, values: dict) -> bool:
    """Insert or update by key; True when created. Callers hold the write lock."""
    cond = and_(*(table.c[k] == v for k, v in key.items()))
    exists = conn.execute(select(*[table.c[k] for k in key]).where(cond)).first() is not None
    now = time.time()
    if exists:
        conn.execute(update(table).where(cond).values(**values, updated_at=now))
    else:
        conn.execute(insert(table).values(**key, **values, created_at=now, updated_at=now))
    return not exists


class Tenancy:
    """Service functions over the tenancy tables; keyword-only so ids cannot be swapped."""

    def __init__(self, db: Database, vault: Vault, *, token_grace_s: float = 86400.0, refresh_s: float = 2.0) -> None:
        self.db = db
        self.vault = vault
        self.token_grace_s = token_grace_s
        self.refresh_s = refresh_s
        self._cache: dict[str, tuple[float, Partner | None]] = {}
        self._pacs_cache: tuple[float, dict[str, Pacs]] | None = None
        self._hospital_cache: tuple[float, dict[str, dict]] | None = None
        self._lock = threading.Lock()
        self._gateway_cache: dict[str, tuple[float, tuple[str, str] | None]] = {}

    # -- unions and hospitals ----------------------------------------------

    def add_union(self, *, union_id: str, name: str) -> bool:
        _check_id(union_id, "union id")
        with self.db.write() as conn:
            return _upsert(conn, s.unions, {"id": union_id}, {"name": name})

    def remove_union(self, *, union_id: str) -> None:
        with self.db.write() as conn:
            if conn.execute(delete(s.unions).where(s.unions.c.id == union_id)).rowcount == 0:
                raise NotFound(f"no union {union_id!r}")
            conn.execute(update(s.hospitals).where(s.hospitals.c.union_id == union_id).values(union_id=None))

    def list_unions(self) -> list[dict]:
        with self.db.read() as conn:
            return [{"id": r.id, "name": r.name} for r in conn.execute(select(s.unions).order_by(s.unions.c.id))]

    def add_hospital(self, *, hospital_id: str, name: str, union_id: str | None = None) -> bool:
        _check_id(hospital_id, "hospital id")
        with self.db.write() as conn:
            if union_id and conn.execute(select(s.unions.c.id).where(s.unions.c.id == union_id)).first() is None:
                raise NotFound(f"no union {union_id!r}: add it first")
            return _upsert(conn, s.hospitals, {"id": hospital_id}, {"name": name, "union_id": union_id})

    def remove_hospital(self, *, hospital_id: str) -> None:
        with self.db.write() as conn:
            if conn.execute(delete(s.hospitals).where(s.hospitals.c.id == hospital_id)).rowcount == 0:
                raise NotFound(f"no hospital {hospital_id!r}")
            conn.execute(
                delete(s.partner_grants).where(
                    s.partner_grants.c.kind == "hospital", s.partner_grants.c.target_id == hospital_id
                )
            )

    def list_hospitals(self) -> list[dict]:
        with self.db.read() as conn:
            rows = conn.execute(select(s.hospitals).order_by(s.hospitals.c.id))
            return [{"id": r.id, "name": r.name, "unionId": r.union_id} for r in rows]

    def hospitals(self) -> dict[str, dict]:
        """Cached id -> {name, unionId}."""
        now = time.monotonic()
        cached = self._hospital_cache
        if cached and now - cached[0] < self.refresh_s:
            return cached[1]
        data = {h["id"]: h for h in self.list_hospitals()}
        self._hospital_cache = (now, data)
        return data

    # -- partners -----------------------------------------------------------

    def add_partner(
        self,
        *,
        app_id: str,
        token: str | None = None,
        hospitals: Iterable[str] = (),
        unions: Iterable[str] = (),
        callback_url: str | None = None,
        mini_app_id: str | None = None,
        mini_path: str | None = None,
    ) -> tuple[bool, str | None]:
        """Create or update a partner. Returns (created, token issued now or None)."""
        _check_id(app_id, "appId")
        if token is not None:
            try:
                validate_token(token)
            except ValueError as e:
                raise Invalid(str(e)) from e
        hospitals, unions = list(dict.fromkeys(hospitals)), list(dict.fromkeys(unions))
        with self.db.write() as conn:
            for hid in hospitals:
                if conn.execute(select(s.hospitals.c.id).where(s.hospitals.c.id == hid)).first() is None:
                    raise NotFound(f"no hospital {hid!r}: add it first")
            for uid in unions:
                if conn.execute(select(s.unions.c.id).where(s.unions.c.id == uid)).first() is None:
                    raise NotFound(f"no union {uid!r}: add it first")
            values: dict = {}
            existing = conn.execute(select(s.partners).where(s.partners.c.app_id == app_id)).first()
            for col, val in (("callback_url", callback_url), ("mini_app_id", mini_app_id), ("mini_path", mini_path)):
                if val is not None or existing is None:
                    values[col] = val or None
            if existing is None:
                values["enabled"] = True
            created = _upsert(conn, s.partners, {"app_id": app_id}, values)
            issued: str | None = None
            if created or token is not None:
                issued = token or generate_token()
                if not created:
                    # An explicit token replaces the old ones at once.
                    conn.execute(delete(s.partner_tokens).where(s.partner_tokens.c.app_id == app_id))
                conn.execute(
                    insert(s.partner_tokens).values(
                        app_id=app_id, token_enc=self.vault.encrypt(issued), created_at=time.time(), expires_at=None
                    )
                )
            if hospitals or unions or created:
                conn.execute(delete(s.partner_grants).where(s.partner_grants.c.app_id == app_id))
                rows = [{"app_id": app_id, "kind": "hospital", "target_id": h} for h in hospitals]
                rows += [{"app_id": app_id, "kind": "union", "target_id": u} for u in unions]
                if rows:
                    conn.execute(insert(s.partner_grants), rows)
        self._forget(app_id)
        return created, (issued if token is None else None)

    def set_partner_enabled(self, *, app_id: str, enabled: bool) -> None:
        with self.db.write() as conn:
            res = conn.execute(
                update(s.partners).where(s.partners.c.app_id == app_id).values(enabled=enabled, updated_at=time.time())
            )
            if res.rowcount == 0:
                raise NotFound(f"no partner {app_id!r}")
        self._forget(app_id)

    def rotate_partner(self, *, app_id: str, grace_s: float | None = None) -> str:
        grace = self.token_grace_s if grace_s is None else grace_s
        now = time.time()
        token = generate_token()
        with self.db.write() as conn:
            if conn.execute(select(s.partners.c.app_id).where(s.partners.c.app_id == app_id)).first() is None:
                raise NotFound(f"no partner {app_id!r}")
            conn.execute(
                update(s.partner_tokens)
                .where(s.partner_tokens.c.app_id == app_id)
                .where((s.partner_tokens.c.expires_at.is_(None)) | (s.partner_tokens.c.expires_at > now + grace))
                .values(expires_at=now + grace)
            )
            conn.execute(
                insert(s.partner_tokens).values(
                    app_id=app_id, token_enc=self.vault.encrypt(token), created_at=now, expires_at=None
                )
            )
        self._forget(app_id)
        return token

    def remove_partner(self, *, app_id: str) -> None:
        with self.db.write() as conn:
            conn.execute(delete(s.partner_tokens).where(s.partner_tokens.c.app_id == app_id))
            conn.execute(delete(s.partner_grants).where(s.partner_grants.c.app_id == app_id))
            if conn.execute(delete(s.partners).where(s.partners.c.app_id == app_id)).rowcount == 0:
                raise NotFound(f"no partner {app_id!r}")
        self._forget(app_id)

    def _load_partner(self, conn: Connection, app_id: str) -> Partner | None:
        row = conn.execute(select(s.partners).where(s.partners.c.app_id == app_id)).first()
        if row is None:
            return None
        now = time.time()
        tokens = [
            self.vault.decrypt(t.token_enc)
            for t in conn.execute(
                select(s.partner_tokens)
                .where(s.partner_tokens.c.app_id == app_id)
                .where((s.partner_tokens.c.expires_at.is_(None)) | (s.partner_tokens.c.expires_at > now))
                .order_by(s.partner_tokens.c.pk.desc())
            )
        ]
        grants = conn.execute(select(s.partner_grants).where(s.partner_grants.c.app_id == app_id)).all()
        return Partner(
            app_id=row.app_id,
            enabled=bool(row.enabled),
            tokens=tuple(t for t in tokens if t),
            hospitals=frozenset(g.target_id for g in grants if g.kind == "hospital"),
            unions=frozenset(g.target_id for g in grants if g.kind == "union"),
            callback_url=row.callback_url,
            mini_app_id=row.mini_app_id,
            mini_path=row.mini_path,
        )

    def cached_partner(self, app_id: str) -> tuple[bool, Partner | None]:
        """(hit, partner) from the cache alone, so the hot path need not leave the event loop."""
        hit = self._cache.get(app_id)
        if hit and time.monotonic() - hit[0] < self.refresh_s:
            return True, hit[1]
        return False, None

    def partner(self, app_id: str) -> Partner | None:
        """The partner as the server sees it now (cached for refresh_s)."""
        now = time.monotonic()
        hit = self._cache.get(app_id)
        if hit and now - hit[0] < self.refresh_s:
            return hit[1]
        with self.db.read() as conn:
            partner = self._load_partner(conn, app_id)
        with self._lock:
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[app_id] = (now, partner)
        return partner

    def list_partners(self) -> list[dict]:
        with self.db.read() as conn:
            ids = [r.app_id for r in conn.execute(select(s.partners.c.app_id).order_by(s.partners.c.app_id))]
            out = []
            for app_id in ids:
                p = self._load_partner(conn, app_id)
                assert p is not None
                out.append(
                    {
                        "appId": p.app_id,
                        "enabled": p.enabled,
                        "hospitals": sorted(p.hospitals),
                        "unions": sorted(p.unions),
                        "callbackUrl": p.callback_url,
                        "miniAppId": p.mini_app_id,
                        "miniPath": p.mini_path,
                        "liveTokens": len(p.tokens),
                    }
                )
            return out

    def _forget(self, app_id: str) -> None:
        with self._lock:
            self._cache.pop(app_id, None)

    # -- gateways (cloud side of a split deployment) ------------------------------

    def add_gateway(self, *, gateway_id: str, hospital_id: str, key: str | None = None) -> tuple[bool, str | None]:
        """Register a hospital gateway; returns (created, key generated now or None)."""
        _check_id(gateway_id, "gateway id")
        if key is not None and (len(key) < 32 or not key.isascii() or not key.isprintable()):
            raise Invalid("a gateway key is at least 32 printable ASCII characters")
        issued = None if key is not None else generate_token()
        with self.db.write() as conn:
            if conn.execute(select(s.hospitals.c.id).where(s.hospitals.c.id == hospital_id)).first() is None:
                raise NotFound(f"no hospital {hospital_id!r}: add it first")
            values = {"hospital_id": hospital_id}
            exists = conn.execute(select(s.gateways.c.id).where(s.gateways.c.id == gateway_id)).first() is not None
            if key is not None or not exists:
                values["key_enc"] = self.vault.encrypt(key or issued)
            else:
                issued = None  # an update without --key keeps the key
            created = _upsert(conn, s.gateways, {"id": gateway_id}, values)
        self._gateway_cache.pop(gateway_id, None)
        return created, issued

    def remove_gateway(self, *, gateway_id: str) -> None:
        with self.db.write() as conn:
            if conn.execute(delete(s.gateways).where(s.gateways.c.id == gateway_id)).rowcount == 0:
                raise NotFound(f"no gateway {gateway_id!r}")
        self._gateway_cache.pop(gateway_id, None)

    def list_gateways(self) -> list[dict]:
        with self.db.read() as conn:
            rows = conn.execute(select(s.gateways.c.id, s.gateways.c.hospital_id).order_by(s.gateways.c.id))
            return [{"id": r.id, "hospitalId": r.hospital_id} for r in rows]

    def gateway(self, gateway_id: str) -> tuple[str, str] | None:
        """(hospital_id, key) of a registered gateway, cached for refresh_s."""
        now = time.monotonic()
        hit = self._gateway_cache.get(gateway_id)
        if hit and now - hit[0] < self.refresh_s:
            return hit[1]
        with self.db.read() as conn:
            row = conn.execute(select(s.gateways).where(s.gateways.c.id == gateway_id)).first()
        value = (row.hospital_id, self.vault.decrypt(row.key_enc)) if row else None
        self._gateway_cache[gateway_id] = (now, value)
        return value

    # -- PACS peers ---------------------------------------------------------

    def add_pacs(self, *, ae_title: str, host: str, port: int, hospital_id: str) -> bool:
        ae = ae_title.strip()
        if not ae or len(ae) > 16 or not ae.isascii() or "\\" in ae:
            raise Invalid("an AE title is 1-16 ASCII characters without backslash")
        if not 0 < port < 65536:
            raise Invalid("port must be 1-65535")
        with self.db.write() as conn:
            if conn.execute(select(s.hospitals.c.id).where(s.hospitals.c.id == hospital_id)).first() is None:
                raise NotFound(f"no hospital {hospital_id!r}: add it first")
            created = _upsert(conn, s.pacs, {"ae_title": ae}, {"host": host, "port": port, "hospital_id": hospital_id})
        self._pacs_cache = None
        return created

    def remove_pacs(self, *, ae_title: str) -> None:
        with self.db.write() as conn:
            if conn.execute(delete(s.pacs).where(s.pacs.c.ae_title == ae_title.strip())).rowcount == 0:
                raise NotFound(f"no PACS {ae_title!r}")
        self._pacs_cache = None

    def list_pacs(self) -> list[dict]:
        with self.db.read() as conn:
            rows = conn.execute(select(s.pacs).order_by(s.pacs.c.ae_title))
            return [{"aeTitle": r.ae_title, "host": r.host, "port": r.port, "hospitalId": r.hospital_id} for r in rows]

    def pacs(self) -> dict[str, Pacs]:
        now = time.monotonic()
        cached = self._pacs_cache
        if cached and now - cached[0] < self.refresh_s:
            return cached[1]
        data = {p["aeTitle"]: Pacs(p["aeTitle"], p["host"], p["port"], p["hospitalId"]) for p in self.list_pacs()}
        self._pacs_cache = (now, data)
        return data


SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _check_id(value: str, what: str) -> None:
    if what in ("hospital id", "union id", "gateway id") and not SAFE_ID.fullmatch(value or ""):
        raise Invalid(f"{what} must be 1-64 of A-Z a-z 0-9 . _ - (it names folders in the archive)")
    if not value or len(value) > 64 or not value.isprintable() or "/" in value or value.strip() != value:
        raise Invalid(f"{what} must be 1-64 printable characters, no '/' or surrounding spaces")
