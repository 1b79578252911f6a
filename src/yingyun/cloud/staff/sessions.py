"""Staff sessions: signing in (password, optional TOTP; or phone + SMS code), the live session, signing out.

The cookie holds a random token; the database keeps only its keyed hash, and
the CSRF token is derived from it (a second keyed hash), so neither can be
read back from the index. A session dies when idle longer than
`SessionPolicy.idle_s` or older than `absolute_s` (20005), when its user
signs in elsewhere (20007, unless concurrent sessions are allowed), is
disabled or gets a new password. Failed sign-ins are counted on the user's
row in one UPDATE, so `attempt_limit` failures within `attempt_window_s`
lock the account for `lock_s` (20004) whichever client or process they came
from. One message for an unknown username and a wrong password (20006),
and the same Argon2 cost for both.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pyotp
from sqlalchemy import Row, case, insert, select, update

from ...contract.codes import Code
from ...core.crypto import normalise_phone
from ...core.errors import Forbidden, Invalid, Unauthenticated
from ...storage import schema as s
from . import accounts
from .audit import record_action
from .context import StaffContext
from .edge import Caller, Role

MAX_TOKEN = 128
SMS_PURPOSE = "staff"  # phonecodes' purpose: a staff sign-in code is not a patient archive's
WRONG = "wrong username or password"


@dataclass(frozen=True)
class Opened:
    """A session just opened: the cookie's token (set it, then forget it) and its user."""

    token: str
    caller: Caller


def _sid(ctx: StaffContext, token: str) -> str:
    return ctx.vault.keyed_hash("staff-session", token)


def _csrf(ctx: StaffContext, token: str) -> str:
    return ctx.vault.keyed_hash("staff-csrf", token)


def _caller(ctx: StaffContext, token: str, username: str, name: str, roles: tuple[Role, ...]) -> Caller:
    unions = {h: v.get("unionId") for h, v in ctx.tenancy.hospitals().items()}
    return Caller(username=username, name=name, roles=roles, csrf_token=_csrf(ctx, token),
                  session_key=_sid(ctx, token), hospital_unions=unions)


def resolve(ctx: StaffContext, token: str | None) -> Caller:
    """The caller of a live session, else Unauthenticated: 20005 (none, unknown, ended, expired), 20007 (ended
    by a sign-in elsewhere)."""
    if not token or len(token) > MAX_TOKEN:
        raise Unauthenticated("not signed in: sign in first", subject="session", code=Code.AUTH_EXPIRED)
    now, policy, sid = ctx.clock(), ctx.policy, _sid(ctx, token)
    ss, u = s.staff_sessions, s.users
    with ctx.db.read() as conn:
        row = conn.execute(select(ss, u.c.name, u.c.enabled).join(u, u.c.username == ss.c.username)
                           .where(ss.c.sid_hash == sid)).first()
        if row is None:
            raise Unauthenticated("the session is unknown: sign in again", subject="session",
                                  code=Code.AUTH_EXPIRED)
        if row.ended_at is not None:
            if row.end_reason == "replaced":
                raise Unauthenticated("signed in on another device since: sign in again to continue here",
                                      subject="session", code=Code.LOGGED_IN_ELSEWHERE)
            if row.end_reason == "disabled":
                raise Unauthenticated(f"user {row.username} is disabled", subject="session",
                                      code=Code.USER_DISABLED)
            raise Unauthenticated("the session has ended: sign in again", subject="session",
                                  code=Code.AUTH_EXPIRED)
        if not row.enabled:
            raise Unauthenticated(f"user {row.username} is disabled", subject="session", code=Code.USER_DISABLED)
        if now - row.last_seen_at > policy.idle_s:
            raise Unauthenticated(f"the session was idle more than {policy.idle_s / 60:g} minutes: sign in again",
                                  subject="session", code=Code.AUTH_EXPIRED)
        if now - row.created_at > policy.absolute_s:
            raise Unauthenticated(f"the session is older than {policy.absolute_s / 3600:g} hours: sign in again",
                                  subject="session", code=Code.AUTH_EXPIRED)
        roles = accounts.roles_of(conn, row.username)
    if now - row.last_seen_at >= policy.touch_every_s:
        with ctx.db.write() as conn:
            conn.execute(update(ss).where(ss.c.sid_hash == sid, ss.c.ended_at.is_(None)).values(last_seen_at=now))
    return _caller(ctx, token, row.username, row.name, roles)


def resolve_cached(ctx: StaffContext, token: str | None) -> Caller:
    """`resolve`, its live answers kept for `ctx.resolved`'s few seconds (refusals are not kept): for the
    viewer's many image requests, where a session ended elsewhere may still read for those seconds."""
    if not token or len(token) > MAX_TOKEN:
        return resolve(ctx, token)
    return ctx.resolved.get(_sid(ctx, token), lambda _sid: resolve(ctx, token))


def sign_in(ctx: StaffContext, *, username: str, password: str, otp: str | None = None) -> Opened:
    """Open a session for `username` by password (module docstring for the refusals)."""
    now = ctx.clock()
    u = s.users
    with ctx.db.read() as conn:
        row = conn.execute(select(u).where(u.c.username == username)).first()
    if row is not None and row.locked_until is not None and row.locked_until > now:
        raise _locked(row.locked_until - now)
    if not accounts.verify_password(row.password_hash if row is not None else None, password) or row is None:
        raise _failed(ctx, username if row is not None else None, now, WRONG)
    roles = _admit(ctx, row, otp, now)
    return _open(ctx, username=username, name=row.name, roles=roles, now=now, how="password",
                 new_hash=accounts.rehashed(row.password_hash, password))


def _user_by_phone(ctx: StaffContext, phone: str) -> Row[Any]:
    if not normalise_phone(phone):
        raise Invalid("phone must be a phone number", field="phone", code=Code.INVALID_FORMAT)
    u = s.users
    with ctx.db.read() as conn:
        row = conn.execute(select(u).where(u.c.phone_hash == ctx.vault.phone_hash(phone))).first()
    if row is None:
        raise Unauthenticated("no user is bound to this phone number", subject="phone", field="phone",
                              code=Code.NO_BOUND_PHONE)
    return row


def send_sms_code(ctx: StaffContext, *, phone: str) -> None:
    """Send a sign-in code to the phone bound to a user: 20011 when none is, 20010 for a disabled user, 20004
    while the account or the phone is locked, 20003 past the day's limit."""
    now = ctx.clock()
    row = _user_by_phone(ctx, phone)
    if not row.enabled:
        raise Unauthenticated(f"user {row.username} is disabled", subject="user", code=Code.USER_DISABLED)
    if row.locked_until is not None and row.locked_until > now:
        raise _locked(row.locked_until - now)
    ctx.codes.send(phone=phone, purpose=SMS_PURPOSE)


def sign_in_sms(ctx: StaffContext, *, phone: str, code: str, otp: str | None = None) -> Opened:
    """Open a session for the user bound to `phone` with the code sent to it: 20001 wrong, 20002 expired, 20004
    after `attempt_limit` wrong codes (the phone is locked, phonecodes.py)."""
    now = ctx.clock()
    row = _user_by_phone(ctx, phone)
    if row.locked_until is not None and row.locked_until > now:
        raise _locked(row.locked_until - now)
    ctx.codes.check(phone=phone, purpose=SMS_PURPOSE, code=code)
    roles = _admit(ctx, row, otp, now)
    return _open(ctx, username=row.username, name=row.name, roles=roles, now=now, how="sms")


def _admit(ctx: StaffContext, row: Row[Any], otp: str | None, now: float) -> tuple[Role, ...]:
    """The roles of a user whose first factor is proven, once it may sign in: enabled, and its second factor
    (a TOTP it enrolled; one an operator must have under --require-totp-for-operators)."""
    username = row.username
    if not row.enabled:
        raise Unauthenticated(f"user {username} is disabled", subject="user", code=Code.USER_DISABLED)
    secret = ctx.vault.decrypt(row.totp_enc) if row.totp_enc is not None else None
    with ctx.db.read() as conn:
        roles = accounts.roles_of(conn, username)
    if secret is not None:
        if not otp:
            raise Unauthenticated("a one-time password (otp) is required for this user", subject="otp",
                                  field="otp", code=Code.AUTH_FAILED)
        if not pyotp.TOTP(secret).verify(otp.strip(), valid_window=1):
            raise _failed(ctx, username, now, "wrong one-time password")
    elif ctx.policy.require_totp_for_operators and accounts.is_operator(roles):
        raise Forbidden(f"operators sign in with two factors here: enrol a TOTP for {username} first",
                        subject="otp", code=Code.AUTH_FAILED)
    return roles


def _locked(remaining_s: float) -> Unauthenticated:
    minutes = max(1, round(remaining_s / 60))
    return Unauthenticated(f"too many failed sign-ins: the account is locked for {minutes} more minute(s)",
                           subject="user", code=Code.ATTEMPT_LIMIT)


def _failed(ctx: StaffContext, username: str | None, now: float, detail: str) -> Unauthenticated:
    """Count a failure on a known user's row (one UPDATE, atomic on both databases); the failure that reaches
    the limit locks the account and says so."""
    if username is None:
        return Unauthenticated(WRONG, subject="user", code=Code.AUTH_FAILED)
    policy, u = ctx.policy, s.users
    fresh = u.c.failures_since.is_(None) | (u.c.failures_since < now - policy.attempt_window_s)
    with ctx.db.write() as conn:
        conn.execute(update(u).where(u.c.username == username).values(
            failures=case((fresh, 1), else_=u.c.failures + 1),
            failures_since=case((fresh, now), else_=u.c.failures_since)))
        failures = conn.execute(select(u.c.failures).where(u.c.username == username)).scalar_one()
        locked = failures >= policy.attempt_limit
        if locked:
            conn.execute(update(u).where(u.c.username == username).values(
                failures=0, failures_since=None, locked_until=now + policy.lock_s))
        record_action(conn, username=username, action="session.refused", subject_kind="user", subject_id=username,
                      detail={"failures": int(failures), "locked": locked}, at=now)
    if locked:
        return _locked(policy.lock_s)
    return Unauthenticated(detail, subject="user", code=Code.AUTH_FAILED)


def _open(ctx: StaffContext, *, username: str, name: str, roles: tuple[Role, ...], now: float, how: str,
          new_hash: str | None = None) -> Opened:
    token = secrets.token_urlsafe(32)
    sid = _sid(ctx, token)
    u = s.users
    with ctx.db.write() as conn:
        values: dict[str, object] = {"failures": 0, "failures_since": None, "locked_until": None}
        if new_hash is not None:
            values["password_hash"] = new_hash
        conn.execute(update(u).where(u.c.username == username).values(**values))
        if not ctx.policy.allow_concurrent:
            accounts.end_sessions(conn, username=username, reason="replaced", now=now)
        conn.execute(insert(s.staff_sessions).values(sid_hash=sid, username=username, created_at=now,
                                                     last_seen_at=now))
        record_action(conn, username=username, action="session.open", subject_kind="session", subject_id=None,
                      detail={"method": how}, at=now)
    return Opened(token, _caller(ctx, token, username, name, roles))


def sign_out(ctx: StaffContext, caller: Caller) -> None:
    now = ctx.clock()
    ss = s.staff_sessions
    with ctx.db.write() as conn:
        conn.execute(update(ss).where(ss.c.sid_hash == caller.session_key, ss.c.ended_at.is_(None))
                     .values(ended_at=now, end_reason="signed-out"))
        record_action(conn, username=caller.username, action="session.close", subject_kind="session",
                      subject_id=None, at=now)
    ctx.resolved.invalidate(caller.session_key)  # once the end is committed, so no reload finds it live

