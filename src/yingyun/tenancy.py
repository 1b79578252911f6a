"""Medical unions, hospitals, partners (appId + token) and PACS peers.

Admin commands write these rows directly in the database the server uses;
a running server sees the change within `refresh_s` (the registry caches
lookups that briefly, so authentication costs no query on the hot path).

Removing never orphans data: a union, hospital or partner that something
still refers to (studies, images, grants, PACS, records it sent …) is
refused with `InUse`, which names what holds it; a hospital or a partner is
disabled instead, which deletes nothing. PACS peers, gateways and DICOMweb
tokens are access grants: removing one withdraws access, and what it sent
stays with its hospital.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, delete, func, insert, select, update

from .contract.codes import Code
from .contract.signing import validate_token
from .core.crypto import Vault
# Invalid and NotFound are the tree's: named here too, as the CLI and older callers import them from tenancy.
from .core.errors import Conflict
from .core.errors import Invalid as Invalid
from .core.errors import NotFound as NotFound
from .core.ttl import TtlCache
from .storage import schema as s
from .storage.db import Database
from .storage.upsert import upsert

TOKEN_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Holder:
    """Something that still refers to what was to be removed: how many, of what, and (some of) their names."""

    count: int
    singular: str
    plural: str
    names: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.count} {self.singular if self.count == 1 else self.plural}"
        if self.names:
            shown = ", ".join(self.names[:5]) + (", …" if len(self.names) > 5 else "")
            text += f" ({shown})"
        return text


class InUse(Conflict):
    """A removal refused because something still holds data of it or depends on it; nothing was changed.

    `subject` is the kind of thing ("hospital"), `key` its id, `holders` what holds it."""

    def __init__(self, subject: str, key: str, holders: list[Holder]) -> None:
        parts = [str(h) for h in holders]
        listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        super().__init__(f"{subject} {key} has {listed}", subject=subject)
        self.key = key
        self.holders = holders


def refuse_if_held(subject: str, key: str, holders: list[Holder]) -> None:
    held = [h for h in holders if h.count]
    if held:
        raise InUse(subject, key, held)


def _count(conn: Connection, table: Table, *where: ColumnElement[bool]) -> int:
    return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def _named(conn: Connection, column: ColumnElement[str], singular: str, plural: str,
           *where: ColumnElement[bool]) -> Holder:
    names = tuple(dict.fromkeys(conn.execute(select(column).where(*where).order_by(column)).scalars()))
    return Holder(len(names), singular, plural, names)


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


class Tenancy:
    """Service functions over the tenancy tables; keyword-only so ids cannot be swapped."""

    def __init__(self, db: Database, vault: Vault, *, token_grace_s: float = 86400.0, refresh_s: float = 2.0) -> None:
        self.db = db
        self.vault = vault
        self.token_grace_s = token_grace_s
        self._partners: TtlCache[str, Partner | None] = TtlCache(refresh_s)
        self._pacs: TtlCache[None, dict[str, Pacs]] = TtlCache(refresh_s)
        self._hospitals: TtlCache[None, dict[str, dict[str, Any]]] = TtlCache(refresh_s)
        self._gateways: TtlCache[str, tuple[str, str] | None] = TtlCache(refresh_s)

    # -- unions and hospitals ----------------------------------------------

    def add_union(self, *, union_id: str, name: str, new: bool | None = None) -> bool:
        """Create a union or rename it (True when created); `new` True refuses one that exists, False one that
        does not. Two unions never share a name (20018)."""
        _check_id(union_id, "union id")
        name = _check_name(name, "union")
        with self.db.write() as conn:
            _expect(conn, s.unions, union_id, new, "union", Code.UNION_NAME_EXISTS)
            _name_unused(conn, s.unions, name, union_id, "union", Code.UNION_NAME_EXISTS)
            return upsert(conn, s.unions, {"id": union_id}, {"name": name})

    def remove_union(self, *, union_id: str) -> None:
        """Remove a union that no hospital belongs to and no partner is granted; else InUse."""
        with self.db.write() as conn:
            if conn.execute(select(s.unions.c.id).where(s.unions.c.id == union_id)).first() is None:
                raise NotFound(f"no union {union_id!r}", subject="union")
            g = s.partner_grants
            refuse_if_held("union", union_id, [
                _named(conn, s.hospitals.c.id, "hospital", "hospitals", s.hospitals.c.union_id == union_id),
                _named(conn, g.c.app_id, "partner grant", "partner grants", g.c.kind == "union",
                       g.c.target_id == union_id),
                _named(conn, s.user_roles.c.username, "user with a role there", "users with a role there",
                       s.user_roles.c.scope_kind == "union", s.user_roles.c.scope_id == union_id),
            ])
            conn.execute(delete(s.unions).where(s.unions.c.id == union_id))

    def list_unions(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            return [{"id": r.id, "name": r.name} for r in conn.execute(select(s.unions).order_by(s.unions.c.id))]

    def add_hospital(self, *, hospital_id: str, name: str, union_id: str | None = None,
                     new: bool | None = None) -> bool:
        """Create a hospital or change its name and union (True when created); `new` as for `add_union`.
        Two hospitals never share a name (20015): patients and partners tell them apart by it."""
        _check_id(hospital_id, "hospital id")
        name = _check_name(name, "hospital")
        with self.db.write() as conn:
            _expect(conn, s.hospitals, hospital_id, new, "hospital", Code.INSTITUTION_NAME_USED)
            if union_id and conn.execute(select(s.unions.c.id).where(s.unions.c.id == union_id)).first() is None:
                raise NotFound(f"no union {union_id!r}: add it first", subject="union")
            _name_unused(conn, s.hospitals, name, hospital_id, "hospital", Code.INSTITUTION_NAME_USED)
            created = upsert(conn, s.hospitals, {"id": hospital_id}, {"name": name, "union_id": union_id})
        self._hospitals.invalidate()
        return created

    def remove_hospital(self, *, hospital_id: str) -> None:
        """Remove a hospital that holds no data and that nothing refers to; else InUse (disable it instead)."""
        with self.db.write() as conn:
            if conn.execute(select(s.hospitals.c.id).where(s.hospitals.c.id == hospital_id)).first() is None:
                raise NotFound(f"no hospital {hospital_id!r}", subject="hospital")
            refuse_if_held("hospital", hospital_id, _hospital_holders(conn, hospital_id))
            conn.execute(delete(s.hospitals).where(s.hospitals.c.id == hospital_id))
        self._hospitals.invalidate()

    def set_hospital_enabled(self, *, hospital_id: str, enabled: bool) -> None:
        """A disabled hospital takes no data (RIS 20010, C-STORE and STOW refused) and its patient pages say
        so; everything it holds is kept, and enabling it again restores it all."""
        with self.db.write() as conn:
            res = conn.execute(update(s.hospitals).where(s.hospitals.c.id == hospital_id)
                               .values(enabled=enabled, updated_at=time.time()))
            if res.rowcount == 0:
                raise NotFound(f"no hospital {hospital_id!r}", subject="hospital")
        self._hospitals.invalidate()

    def list_hospitals(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(select(s.hospitals).order_by(s.hospitals.c.id))
            return [{"id": r.id, "name": r.name, "unionId": r.union_id, "enabled": bool(r.enabled)} for r in rows]

    def hospitals(self) -> dict[str, dict[str, Any]]:
        """Cached id -> {name, unionId, enabled}."""
        return self._hospitals.get(None, lambda _: {h["id"]: h for h in self.list_hospitals()})

    def cached_hospitals(self) -> dict[str, dict[str, Any]] | None:
        """The hospitals from the cache alone (None when stale), so the hot path need not leave the event loop."""
        return self._hospitals.peek(None)[1]

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
                    raise NotFound(f"no hospital {hid!r}: add it first", subject="hospital")
            for uid in unions:
                if conn.execute(select(s.unions.c.id).where(s.unions.c.id == uid)).first() is None:
                    raise NotFound(f"no union {uid!r}: add it first", subject="union")
            values: dict[str, Any] = {}
            existing = conn.execute(select(s.partners).where(s.partners.c.app_id == app_id)).first()
            for col, val in (("callback_url", callback_url), ("mini_app_id", mini_app_id), ("mini_path", mini_path)):
                if val is not None or existing is None:
                    values[col] = val or None
            if existing is None:
                values["enabled"] = True
            created = upsert(conn, s.partners, {"app_id": app_id}, values)
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
                raise NotFound(f"no partner {app_id!r}", subject="partner")
        self._forget(app_id)

    def rotate_partner(self, *, app_id: str, grace_s: float | None = None) -> str:
        grace = self.token_grace_s if grace_s is None else grace_s
        now = time.time()
        token = generate_token()
        with self.db.write() as conn:
            if conn.execute(select(s.partners.c.app_id).where(s.partners.c.app_id == app_id)).first() is None:
                raise NotFound(f"no partner {app_id!r}", subject="partner")
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
        """Remove a partner nothing refers to (its grants and tokens go with it); else InUse (disable it)."""
        with self.db.write() as conn:
            if conn.execute(select(s.partners.c.app_id).where(s.partners.c.app_id == app_id)).first() is None:
                raise NotFound(f"no partner {app_id!r}", subject="partner")
            refuse_if_held("partner", app_id, _partner_holders(conn, app_id))
            conn.execute(delete(s.partner_tokens).where(s.partner_tokens.c.app_id == app_id))
            conn.execute(delete(s.partner_grants).where(s.partner_grants.c.app_id == app_id))
            conn.execute(delete(s.partners).where(s.partners.c.app_id == app_id))
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
        return self._partners.peek(app_id)

    def partner(self, app_id: str) -> Partner | None:
        """The partner as the server sees it now (cached for refresh_s)."""
        return self._partners.get(app_id, self._read_partner)

    def _read_partner(self, app_id: str) -> Partner | None:
        with self.db.read() as conn:
            return self._load_partner(conn, app_id)

    def list_partners(self) -> list[dict[str, Any]]:
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
        self._partners.invalidate(app_id)

    # -- gateways (cloud side of a split deployment) ------------------------------

    def add_gateway(self, *, gateway_id: str, hospital_id: str, key: str | None = None) -> tuple[bool, str | None]:
        """Register a hospital gateway; returns (created, key generated now or None)."""
        _check_id(gateway_id, "gateway id")
        if key is not None and (len(key) < 32 or not key.isascii() or not key.isprintable()):
            raise Invalid("a gateway key is at least 32 printable ASCII characters", subject="gateway", field="key")
        issued = None if key is not None else generate_token()
        with self.db.write() as conn:
            if conn.execute(select(s.hospitals.c.id).where(s.hospitals.c.id == hospital_id)).first() is None:
                raise NotFound(f"no hospital {hospital_id!r}: add it first", subject="hospital")
            values: dict[str, str | bytes | None] = {"hospital_id": hospital_id}
            exists = conn.execute(select(s.gateways.c.id).where(s.gateways.c.id == gateway_id)).first() is not None
            if key is not None or not exists:
                values["key_enc"] = self.vault.encrypt(key or issued)
            else:
                issued = None  # an update without --key keeps the key
            created = upsert(conn, s.gateways, {"id": gateway_id}, values)
        self._gateways.invalidate(gateway_id)
        return created, issued

    def remove_gateway(self, *, gateway_id: str) -> None:
        with self.db.write() as conn:
            if conn.execute(delete(s.gateways).where(s.gateways.c.id == gateway_id)).rowcount == 0:
                raise NotFound(f"no gateway {gateway_id!r}", subject="gateway")
        self._gateways.invalidate(gateway_id)

    def list_gateways(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(select(s.gateways.c.id, s.gateways.c.hospital_id).order_by(s.gateways.c.id))
            return [{"id": r.id, "hospitalId": r.hospital_id} for r in rows]

    def gateway(self, gateway_id: str) -> tuple[str, str] | None:
        """(hospital_id, key) of a registered gateway, cached for refresh_s."""
        return self._gateways.get(gateway_id, self._read_gateway)

    def _read_gateway(self, gateway_id: str) -> tuple[str, str] | None:
        with self.db.read() as conn:
            row = conn.execute(select(s.gateways).where(s.gateways.c.id == gateway_id)).first()
        return (row.hospital_id, self.vault.decrypt(row.key_enc)) if row else None

    # -- PACS peers ---------------------------------------------------------

    def add_pacs(self, *, ae_title: str, host: str, port: int, hospital_id: str, new: bool | None = None) -> bool:
        """Register a PACS or change it (True when created); `new` as for `add_union`. The AE title of a device
        (cloud/organisation) is changed through the device."""
        ae = check_ae_title(ae_title)
        check_port(port)
        with self.db.write() as conn:
            if conn.execute(select(s.hospitals.c.id).where(s.hospitals.c.id == hospital_id)).first() is None:
                raise NotFound(f"no hospital {hospital_id!r}: add it first", subject="hospital")
            device = _device_sending_as(conn, ae)
            if device is not None:
                raise Conflict(f"AE title {ae} is device {device}'s: change the device instead", subject="pacs",
                               field="aeTitle", code=Code.DUPLICATE_DATA)
            _expect(conn, s.pacs, ae, new, "pacs", Code.DUPLICATE_DATA, column_name="ae_title")
            created = register_pacs(conn, ae_title=ae, host=host, port=port, hospital_id=hospital_id)
        self.pacs_changed()
        return created

    def remove_pacs(self, *, ae_title: str) -> None:
        """Stop accepting a PACS; a device's AE title is refused (InUse: remove or change the device)."""
        ae = ae_title.strip()
        with self.db.write() as conn:
            device = _device_sending_as(conn, ae)
            if device is not None:
                refuse_if_held("PACS", ae, [Holder(1, "device", "devices", (device,))])
            if conn.execute(delete(s.pacs).where(s.pacs.c.ae_title == ae)).rowcount == 0:
                raise NotFound(f"no PACS {ae_title!r}", subject="pacs")
        self.pacs_changed()

    def pacs_changed(self) -> None:
        """Forget the cached PACS (after a device's AE title was written in the caller's transaction)."""
        self._pacs.invalidate()

    def list_pacs(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(select(s.pacs).order_by(s.pacs.c.ae_title))
            return [{"aeTitle": r.ae_title, "host": r.host, "port": r.port, "hospitalId": r.hospital_id} for r in rows]

    def pacs(self) -> dict[str, Pacs]:
        return self._pacs.get(None, lambda _: {p["aeTitle"]: Pacs(p["aeTitle"], p["host"], p["port"], p["hospitalId"])
                                               for p in self.list_pacs()})


def _hospital_holders(conn: Connection, hospital_id: str) -> list[Holder]:
    """What refers to a hospital: its data, the grants, peers and accounts that point at it."""
    h = hospital_id
    consultations, doctors = s.consultations, s.doctors
    tokens, token_grants = s.dicomweb_tokens, s.dicomweb_token_grants
    g = s.partner_grants
    return [
        Holder(_count(conn, s.studies, s.studies.c.hospital_id == h), "study", "studies"),
        Holder(_count(conn, s.instances, s.instances.c.hospital_id == h), "DICOM instance", "DICOM instances"),
        Holder(_count(conn, s.reports, s.reports.c.hospital_id == h), "report", "reports"),
        Holder(_count(conn, s.reconcile_logs, s.reconcile_logs.c.hospital_id == h), "reconciliation log",
               "reconciliation logs"),
        Holder(_count(conn, consultations, consultations.c.hospital_id == h), "consultation", "consultations"),
        _named(conn, g.c.app_id, "partner grant", "partner grants", g.c.kind == "hospital", g.c.target_id == h),
        _named(conn, s.pacs.c.ae_title, "PACS", "PACS", s.pacs.c.hospital_id == h),
        _named(conn, s.gateways.c.id, "gateway", "gateways", s.gateways.c.hospital_id == h),
        _named(conn, doctors.c.id, "doctor", "doctors", doctors.c.hospital_id == h),
        _named(conn, s.departments.c.id, "department", "departments", s.departments.c.hospital_id == h),
        _named(conn, s.devices.c.id, "device", "devices", s.devices.c.hospital_id == h),
        _named(conn, s.user_roles.c.username, "user with a role there", "users with a role there",
               s.user_roles.c.scope_kind == "hospital", s.user_roles.c.scope_id == h),
        _named(conn, tokens.c.name, "DICOMweb token", "DICOMweb tokens", tokens.c.revoked_at.is_(None),
               tokens.c.pk.in_(select(token_grants.c.token_pk).where(token_grants.c.hospital_id == h))),
    ]


def _partner_holders(conn: Connection, app_id: str) -> list[Holder]:
    """What refers to a partner: the records it sent (their history names it), what it asked for."""
    from .cloud.callbacks.events import KIND as CALLBACK
    from .storage.queue import PENDING

    consultations, jobs = s.consultations, s.jobs

    sent = (_count(conn, s.study_versions, s.study_versions.c.source == app_id)
            + _count(conn, s.report_versions, s.report_versions.c.source == app_id)
            + _count(conn, s.reconcile_logs, s.reconcile_logs.c.source == app_id))
    return [
        Holder(sent, "record it sent", "records it sent"),
        Holder(_count(conn, consultations, consultations.c.created_by == app_id), "consultation it requested",
               "consultations it requested"),
        Holder(_count(conn, jobs, jobs.c.kind == CALLBACK, jobs.c.partition == app_id, jobs.c.state == PENDING),
               "undelivered callback", "undelivered callbacks"),
    ]


def register_pacs(conn: Connection, *, ae_title: str, host: str, port: int, hospital_id: str) -> bool:
    """Write a PACS row in the caller's transaction (True when created); call `Tenancy.pacs_changed` after."""
    return upsert(conn, s.pacs, {"ae_title": ae_title}, {"host": host, "port": port, "hospital_id": hospital_id})


def _device_sending_as(conn: Connection, ae_title: str) -> str | None:
    return conn.execute(select(s.devices.c.id).where(s.devices.c.ae_title == ae_title)).scalar()


def check_ae_title(ae_title: str) -> str:
    """The AE title without its padding; Invalid unless 1-16 ASCII characters without backslash."""
    ae = ae_title.strip()
    if not ae or len(ae) > 16 or not ae.isascii() or not ae.isprintable() or "\\" in ae:
        raise Invalid("an AE title is 1-16 ASCII characters without backslash", subject="pacs", field="aeTitle")
    return ae


def check_port(port: int) -> None:
    if not 0 < port < 65536:
        raise Invalid("port must be 1-65535", subject="pacs", field="port")


def _check_name(name: str, subject: str) -> str:
    text = name.strip() if isinstance(name, str) else ""
    if not text:
        raise Invalid(f"the {subject}'s name is empty", subject=subject, field="name", code=Code.REQUIRED_EMPTY)
    if len(text) > 200 or not text.isprintable():
        raise Invalid(f"the {subject}'s name must be 1-200 printable characters", subject=subject, field="name")
    return text


def _expect(conn: Connection, table: Table, key_value: str, new: bool | None, subject: str, exists_code: Code, *,
            column_name: str = "id") -> None:
    """Refuse a create of what exists (`new` True: Conflict with `exists_code`) or a change of what does not."""
    if new is None:
        return
    column = table.c[column_name]
    there = conn.execute(select(column).where(column == key_value)).first() is not None
    if new and there:
        raise Conflict(f"{subject} {key_value!r} already exists", subject=subject, field="id", code=exists_code)
    if not new and not there:
        raise NotFound(f"no {subject} {key_value!r}", subject=subject)


def _name_unused(conn: Connection, table: Table, name: str, own_id: str, subject: str, code: Code) -> None:
    other = conn.execute(select(table.c.id).where(table.c.name == name, table.c.id != own_id)).scalar()
    if other is not None:
        raise Conflict(f"{subject} {other!r} is already named {name!r}", subject=subject, field="name", code=code)


SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _check_id(value: str, what: str) -> None:
    if what in ("hospital id", "union id", "gateway id") and not SAFE_ID.fullmatch(value or ""):
        raise Invalid(f"{what} must be 1-64 of A-Z a-z 0-9 . _ - (it names folders in the archive)")
    if not value or len(value) > 64 or not value.isprintable() or "/" in value or value.strip() != value:
        raise Invalid(f"{what} must be 1-64 printable characters, no '/' or surrounding spaces")
