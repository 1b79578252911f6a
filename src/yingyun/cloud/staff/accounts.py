"""Staff users: who they are, their roles in their scopes, their password and second factor.

Service functions over `users` and `user_roles`, keyword-only, taking the
caller's connection (the CLI and the `/api/v1/users` routes share them).
Passwords are kept only as Argon2id hashes (argon2-cffi's RFC 9106 profile)
and must be at least `MIN_PASSWORD` characters and not the username; they
are never logged nor shown. A phone is encrypted and found by its keyed hash.
A doctor (`admin doctor …`, the consultations) is a user with a doctor
profile: the `doctors` row of the same id (`ensure_doctor_user`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, insert, select, update

from ...core.crypto import Vault
from ...core.errors import Conflict, Invalid, NotFound
from ...core.sms import mask_phone
from ...storage import schema as s
from .edge import OPERATOR, ROLES, SCOPES, Role

MIN_PASSWORD = 10
TOTP_ISSUER = "Yingyun"
_hasher = PasswordHasher()
# Verified against when the user is unknown or has no password, so that a wrong username costs what a wrong
# password costs (no timing tells which usernames exist).
_UNUSABLE = _hasher.hash("not a password of anyone's")


def hash_password(password: str, *, username: str) -> str:
    check_strength(password, username=username)
    return _hasher.hash(password)


def check_strength(password: str, *, username: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"a password is at least {MIN_PASSWORD} characters", subject="password", field="password")
    if password.strip().casefold() == username.strip().casefold():
        raise Invalid("a password may not be the username", subject="password", field="password")


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches the Argon2 hash `stored` (None: nobody's password matches, at the same cost)."""
    try:
        return _hasher.verify(stored or _UNUSABLE, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def rehashed(stored: str, password: str) -> str | None:
    """A new hash of the (just verified) `password` when `stored` was made with older Argon2 parameters, else
    None: the hashes follow argon2-cffi's profile as it is raised, one sign-in at a time."""
    return _hasher.hash(password) if _hasher.check_needs_rehash(stored) else None


def check_username(username: str) -> None:
    if (not username or len(username) > 64 or not username.isprintable() or username.strip() != username
            or any(c in username for c in "/:")):
        raise Invalid("a username is 1-64 printable characters, no '/', ':' or surrounding spaces",
                      subject="user", field="username")


def parse_role(text: str) -> Role:
    """ROLE[:SCOPE] as the CLI and the API write it: SCOPE is union:ID or hospital:ID; operator takes none."""
    role, _, scope = text.strip().partition(":")
    if role not in ROLES:
        raise Invalid(f"unknown role {role!r}: one of {', '.join(ROLES)}", subject="role", field="roles")
    kinds = SCOPES[role]
    if not scope:
        if "platform" not in kinds:
            raise Invalid(f"role {role} needs a scope: {' or '.join(k + ':ID' for k in kinds)}",
                          subject="role", field="roles")
        return Role(role, "platform", None)
    kind, _, target = scope.partition(":")
    if kind not in kinds or not target:
        allowed = "none" if kinds == ("platform",) else " or ".join(k + ":ID" for k in kinds)
        raise Invalid(f"role {role} takes scope {allowed}, not {scope!r}", subject="role", field="roles")
    return Role(role, "union" if kind == "union" else "hospital", target)


def _check_scopes(conn: Connection, roles: Iterable[Role]) -> None:
    for r in roles:
        if r.scope_kind == "hospital":
            if conn.execute(select(s.hospitals.c.id).where(s.hospitals.c.id == r.scope_id)).first() is None:
                raise NotFound(f"no hospital {r.scope_id!r}", subject="hospital")
        elif r.scope_kind == "union":
            if conn.execute(select(s.unions.c.id).where(s.unions.c.id == r.scope_id)).first() is None:
                raise NotFound(f"no union {r.scope_id!r}", subject="union")


def _exists(conn: Connection, username: str) -> bool:
    return conn.execute(select(s.users.c.username).where(s.users.c.username == username)).first() is not None


def _must_exist(conn: Connection, username: str) -> None:
    if not _exists(conn, username):
        raise NotFound(f"no user {username!r}", subject="user")


def add_user(conn: Connection, *, vault: Vault, username: str, name: str, roles: Iterable[Role],
             phone: str | None = None, password: str | None = None, totp: bool = False,
             now: float | None = None) -> str | None:
    """Create a user (20013 when the username exists). Returns the TOTP provisioning URI when `totp` (shown once:
    the secret is kept encrypted, never shown again), else None."""
    now = time.time() if now is None else now
    check_username(username)
    if not name.strip():
        raise Invalid("a user needs a name", subject="user", field="name")
    roles = list(dict.fromkeys(roles))
    if not roles:
        raise Invalid("a user needs at least one role", subject="user", field="roles")
    pw_hash = hash_password(password, username=username) if password is not None else None
    _check_scopes(conn, roles)
    if _exists(conn, username):
        raise Conflict(f"user {username!r} already exists", subject="user")
    phone_hash = _check_phone(conn, vault, phone, username=None)
    secret = pyotp.random_base32() if totp else None
    conn.execute(insert(s.users).values(
        username=username, name=name.strip(), phone_enc=vault.encrypt(phone) if phone_hash else None,
        phone_hash=phone_hash, password_hash=pw_hash, totp_enc=vault.encrypt(secret), enabled=True, failures=0,
        created_at=now, updated_at=now))
    _set_roles(conn, username, roles)
    return provisioning_uri(secret, username=username) if secret else None


def provisioning_uri(secret: str, *, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER)


def _check_phone(conn: Connection, vault: Vault, phone: str | None, *, username: str | None) -> str | None:
    """The keyed hash of `phone` (None for none), refused when it is another user's (it signs in by SMS)."""
    if phone is None or not phone.strip():
        return None
    digits = "".join(c for c in phone if c.isdigit())
    if len(digits) < 7 or len(digits) > 15:
        raise Invalid("a phone number is 7-15 digits", subject="user", field="phone")
    h = vault.phone_hash(phone)
    other = conn.execute(select(s.users.c.username).where(s.users.c.phone_hash == h)).scalar_one_or_none()
    if other is not None and other != username:
        raise Conflict("that phone number is bound to another user", subject="user", field="phone")
    return h


def _set_roles(conn: Connection, username: str, roles: list[Role]) -> None:
    conn.execute(delete(s.user_roles).where(s.user_roles.c.username == username))
    conn.execute(insert(s.user_roles), [{"username": username, "role": r.role, "scope_kind": r.scope_kind,
                                         "scope_id": r.scope_id or ""} for r in roles])


def update_user(conn: Connection, *, vault: Vault, username: str, name: str | None = None,
                roles: Iterable[Role] | None = None, phone: str | None = None, now: float | None = None) -> None:
    """Change a user's name, roles (all of them, replaced) or phone ("" unbinds it); None leaves one as it is."""
    now = time.time() if now is None else now
    _must_exist(conn, username)
    values: dict[str, Any] = {"updated_at": now}
    if name is not None:
        if not name.strip():
            raise Invalid("a user needs a name", subject="user", field="name")
        values["name"] = name.strip()
    if phone is not None:
        h = _check_phone(conn, vault, phone, username=username)
        values.update(phone_hash=h, phone_enc=vault.encrypt(phone) if h else None)
    if roles is not None:
        roles = list(dict.fromkeys(roles))
        if not roles:
            raise Invalid("a user needs at least one role", subject="user", field="roles")
        _check_scopes(conn, roles)
        _set_roles(conn, username, roles)
    conn.execute(update(s.users).where(s.users.c.username == username).values(**values))


def roles_of(conn: Connection, username: str) -> tuple[Role, ...]:
    r = s.user_roles
    rows = conn.execute(select(r.c.role, r.c.scope_kind, r.c.scope_id).where(r.c.username == username)
                        .order_by(r.c.role, r.c.scope_kind, r.c.scope_id))
    return tuple(Role(row.role, row.scope_kind, row.scope_id or None) for row in rows)


def _view(conn: Connection, vault: Vault, row: Any, now: float) -> dict[str, Any]:
    doctor = conn.execute(select(s.doctors).where(s.doctors.c.id == row.username)).first()
    return {
        "username": row.username,
        "name": row.name,
        "phone": mask_phone(vault.decrypt(row.phone_enc)) if row.phone_enc is not None else None,
        "roles": [r.as_json() for r in roles_of(conn, row.username)],
        "enabled": bool(row.enabled),
        "totp": row.totp_enc is not None,
        "hasPassword": row.password_hash is not None,
        "locked": bool(row.locked_until and row.locked_until > now),
        "doctor": None if doctor is None else {"doctorId": doctor.id, "hospitalId": doctor.hospital_id,
                                               "title": doctor.title, "dept": doctor.dept},
    }


def get_user(conn: Connection, *, vault: Vault, username: str, now: float | None = None) -> dict[str, Any]:
    row = conn.execute(select(s.users).where(s.users.c.username == username)).first()
    if row is None:
        raise NotFound(f"no user {username!r}", subject="user")
    return _view(conn, vault, row, time.time() if now is None else now)


def list_users(conn: Connection, *, vault: Vault, hospitals: frozenset[str] | None = None,
               unions: frozenset[str] | None = None, now: float | None = None) -> list[dict[str, Any]]:
    """Every user, or (with `hospitals`/`unions`) those holding a role in one of them."""
    now = time.time() if now is None else now
    q = select(s.users).order_by(s.users.c.username)
    if hospitals is not None or unions is not None:
        r = s.user_roles
        inside = ((r.c.scope_kind == "hospital") & r.c.scope_id.in_(sorted(hospitals or ()))) | (
            (r.c.scope_kind == "union") & r.c.scope_id.in_(sorted(unions or ())))
        q = q.where(s.users.c.username.in_(select(r.c.username).where(inside)))
    return [_view(conn, vault, row, now) for row in conn.execute(q)]


def set_enabled(conn: Connection, *, username: str, enabled: bool, now: float | None = None) -> None:
    """Disable (its sessions end at once: their next request gets 20005) or enable a user; nothing is deleted."""
    now = time.time() if now is None else now
    _must_exist(conn, username)
    conn.execute(update(s.users).where(s.users.c.username == username).values(enabled=enabled, updated_at=now))
    if not enabled:
        end_sessions(conn, username=username, reason="disabled", now=now)


def end_sessions(conn: Connection, *, username: str, reason: str, now: float, keep: str | None = None) -> None:
    ss = s.staff_sessions
    q = update(ss).where(ss.c.username == username, ss.c.ended_at.is_(None))
    if keep is not None:
        q = q.where(ss.c.sid_hash != keep)
    conn.execute(q.values(ended_at=now, end_reason=reason))


def reset_password(conn: Connection, *, username: str, password: str, now: float | None = None) -> None:
    """Set a new password; the lockout is lifted and every session of the user ends."""
    now = time.time() if now is None else now
    _must_exist(conn, username)
    pw_hash = hash_password(password, username=username)
    conn.execute(update(s.users).where(s.users.c.username == username).values(
        password_hash=pw_hash, failures=0, failures_since=None, locked_until=None, updated_at=now))
    end_sessions(conn, username=username, reason="signed-out", now=now)


def enrol_totp(conn: Connection, *, vault: Vault, username: str, now: float | None = None) -> str:
    """A new TOTP secret for the user, replacing any older one; returns its provisioning URI (shown once)."""
    now = time.time() if now is None else now
    _must_exist(conn, username)
    secret = pyotp.random_base32()
    conn.execute(update(s.users).where(s.users.c.username == username).values(
        totp_enc=vault.encrypt(secret), updated_at=now))
    return provisioning_uri(secret, username=username)


def remove_user(conn: Connection, *, username: str) -> None:
    """Remove a user (its roles and sessions go with it; the audit trail keeps its name). A user with a doctor
    profile that a consultation names is refused (InUse, naming them): disable it instead."""
    from ..consultations import service as consult

    _must_exist(conn, username)
    if conn.execute(select(s.doctors.c.id).where(s.doctors.c.id == username)).first() is not None:
        consult.remove_doctor(conn, doctor_id=username)
    conn.execute(delete(s.staff_sessions).where(s.staff_sessions.c.username == username))
    conn.execute(delete(s.user_roles).where(s.user_roles.c.username == username))
    conn.execute(delete(s.users).where(s.users.c.username == username))


def ensure_doctor_user(conn: Connection, *, doctor_id: str, name: str, hospital_id: str,
                       now: float | None = None) -> bool:
    """The user a doctor profile belongs to: created (True) with no password and the read-only clinician role
    at the doctor's hospital, unless a user of that name exists (False; it is left as it is)."""
    now = time.time() if now is None else now
    if _exists(conn, doctor_id):
        return False
    conn.execute(insert(s.users).values(username=doctor_id, name=name, enabled=True, failures=0, created_at=now,
                                        updated_at=now))
    _set_roles(conn, doctor_id, [Role("clinician", "hospital", hospital_id)])
    return True


def is_operator(roles: Iterable[Role]) -> bool:
    return any(r.role == OPERATOR for r in roles)
