"""One-time SMS codes per phone and purpose: issue, check, the daily limit and the attempt lock.

A code is 6 digits, kept only as a keyed hash of (purpose, phone, code), valid
`ttl_s` and usable once. The records and the lock live in the database
(`phone_codes`, `phone_guards`), so they hold for every browser and every
server process. Contract codes, carried by the errors raised here:

* 20001 wrong code (`WrongCode`; also when no code was sent),
* 20002 expired code (`CodeExpired`; not counted as a wrong guess),
* 20003 the phone's daily send limit for that purpose (`DailyLimit`),
* 20004 `attempt_limit` wrong codes locked the phone for `lock_s` (`PhoneLocked`).

Two levels. `PhoneCodes` is the service for a phone that signs someone in
(the patient archive, staff SMS login): it owns its transactions, so a wrong
code is counted even though the caller sees an exception, and it sends
through `core.sms.SmsSender`. `issue_code` / `check_code` are the store alone,
inside the caller's transaction, for callers that keep their own lock (a QR
link's verification locks the link, not the phone: `cloud/patient/verify.py`).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, func, insert, select, update

from .contract.codes import Code
from .core.crypto import Vault, normalise_phone
from .core.errors import Invalid, RateLimited, Unauthenticated, Unavailable
from .core.sms import SmsError, SmsSender
from .settings import Settings
from .storage import schema as s
from .storage.db import Database
from .storage.upsert import insert_ignore

__all__ = [
    "CodeExpired",
    "CodePolicy",
    "DailyLimit",
    "PhoneCodes",
    "PhoneLocked",
    "TooSoon",
    "WrongCode",
    "check_code",
    "issue_code",
]

Outcome = Literal["ok", "expired", "wrong", "none"]


# -- the errors (each carries its contract code) ---------------------------------


class WrongCode(Unauthenticated):
    """The code does not match (or none was sent); `remaining` attempts before the lock, when counted."""

    def __init__(self, remaining: int | None = None) -> None:
        super().__init__("wrong verification code", subject="verification code",
                         code=Code.WRONG_VERIFICATION_CODE)
        self.remaining = remaining


class CodeExpired(Unauthenticated):
    def __init__(self) -> None:
        super().__init__("the verification code has expired; ask for a new one", subject="verification code",
                         code=Code.VERIFICATION_CODE_EXPIRED)


class DailyLimit(RateLimited):
    """Today's codes are used up (20003)."""

    def __init__(self) -> None:
        super().__init__("today's verification codes are used up", subject="verification code",
                         code=Code.DAILY_CODE_LIMIT)


class TooSoon(RateLimited):
    """A code was sent less than the resend interval ago: `wait_s` (= `retry_after`) until the next."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"wait {wait_s:.0f} s", subject="verification code", retry_after=wait_s)
        self.wait_s = wait_s


class PhoneLocked(RateLimited):
    """Too many wrong codes: the phone is locked until `until` (20004)."""

    def __init__(self, until: float, now: float) -> None:
        super().__init__("too many wrong codes; this phone is locked for a while", subject="verification code",
                         code=Code.ATTEMPT_LIMIT, retry_after=max(0.0, until - now))
        self.until = until


# -- the policy -------------------------------------------------------------------


@dataclass(frozen=True)
class CodePolicy:
    ttl_s: float = 5 * 60.0
    daily_limit: int = 10
    resend_s: float = 60.0
    attempt_limit: int = 5
    lock_s: float = 15 * 60.0
    tz: str = "Asia/Shanghai"

    @classmethod
    def from_settings(cls, st: Settings) -> CodePolicy:
        return cls(ttl_s=st.sms_code_lifetime_s, daily_limit=st.sms_daily_limit, resend_s=st.sms_resend_s,
                   attempt_limit=st.verify_attempt_limit, lock_s=st.verify_lock_s, tz=st.timezone)


# -- the store (inside the caller's transaction) ------------------------------------


def _local_midnight(now: float, tz: str) -> float:
    local = datetime.fromtimestamp(now, ZoneInfo(tz))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def _phone_key(vault: Vault, phone: str) -> str:
    key = vault.phone_hash(phone)
    if key is None or len(normalise_phone(phone)) < 7:
        raise Invalid("a phone number is needed", subject="phone", field="phone")
    return key


def _code_hash(vault: Vault, purpose: str, phone_key: str, code: str) -> str:
    return vault.keyed_hash("smscode", f"{purpose}:{phone_key}:{code}")


def issue_code(conn: Connection, vault: Vault, *, purpose: str, phone: str, now: float, policy: CodePolicy) -> str:
    """A fresh 6-digit code recorded for (purpose, phone); the caller sends it in
    the same transaction, so a failed send rolls the record back and does not
    count against the daily limit. Raises DailyLimit, TooSoon."""
    key = _phone_key(vault, phone)
    _guard(conn, purpose, key, now)  # serialises concurrent sends to one phone
    c = s.phone_codes
    mine = (c.c.purpose == purpose) & (c.c.phone_hash == key)
    since = _local_midnight(now, policy.tz)
    conn.execute(delete(c).where(mine, c.c.created_at < since - 86400))  # yesterday's and older: no longer needed
    sent_today = conn.execute(select(func.count()).where(mine, c.c.created_at >= since)).scalar_one()
    if sent_today >= policy.daily_limit:
        raise DailyLimit()
    last = conn.execute(select(func.max(c.c.created_at)).where(mine)).scalar()
    if last is not None and now - last < policy.resend_s:
        raise TooSoon(policy.resend_s - (now - last))
    code = f"{secrets.randbelow(10**6):06d}"
    conn.execute(insert(c).values(purpose=purpose, phone_hash=key, code_hash=_code_hash(vault, purpose, key, code),
                                  created_at=now, expires_at=now + policy.ttl_s))
    return code


def check_code(conn: Connection, vault: Vault, *, purpose: str, phone: str, answer: str, now: float) -> Outcome:
    """"ok" (and the code is used up), "expired", "wrong" or "none" (no unused code was sent)."""
    key = _phone_key(vault, phone)
    c = s.phone_codes
    rows = conn.execute(
        select(c).where(c.c.purpose == purpose, c.c.phone_hash == key, c.c.used_at.is_(None))
        .order_by(c.c.created_at.desc()).limit(5)
    ).all()
    if not rows:
        return "none"
    given = "".join(answer.split())
    digest = _code_hash(vault, purpose, key, given) if given.isdigit() and len(given) == 6 else None
    for r in rows:
        if digest is not None and hmac.compare_digest(r.code_hash, digest):
            if now >= r.expires_at:
                return "expired"
            conn.execute(update(c).where(c.c.pk == r.pk).values(used_at=now))
            return "ok"
    if all(now >= r.expires_at for r in rows):
        return "expired"
    return "wrong"


def _guard(conn: Connection, purpose: str, key: str, now: float) -> tuple[int, float | None]:
    g = s.phone_guards
    insert_ignore(conn, g, {"purpose": purpose, "phone_hash": key, "failures": 0, "updated_at": now},
                  keys=["purpose", "phone_hash"])
    row = conn.execute(select(g.c.failures, g.c.locked_until)
                       .where(g.c.purpose == purpose, g.c.phone_hash == key).with_for_update()).one()
    return int(row.failures), row.locked_until


# -- the service ----------------------------------------------------------------------


class PhoneCodes:
    """Codes that sign a phone in, with the phone's own lock; see the module docstring."""

    def __init__(self, db: Database, vault: Vault, sms: SmsSender, policy: CodePolicy,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.vault = vault
        self.sms = sms
        self.policy = policy
        self.clock = clock

    def send(self, *, phone: str, purpose: str) -> None:
        """Issue a code and hand it to the SMS sender. Raises PhoneLocked, DailyLimit,
        TooSoon, Invalid (no phone number), Unavailable (the sender failed: nothing recorded)."""
        now = self.clock()
        try:
            with self.db.write() as conn:
                self._refuse_if_locked(conn, purpose, phone, now)
                code = issue_code(conn, self.vault, purpose=purpose, phone=phone, now=now, policy=self.policy)
                self.sms.send(phone=phone, code=code, ttl_s=int(self.policy.ttl_s))
        except SmsError as e:
            raise Unavailable("the SMS could not be sent; try again", subject="sms") from e

    def check(self, *, phone: str, purpose: str, code: str) -> None:
        """Return when `code` is right (it is used up); otherwise raise WrongCode,
        CodeExpired or PhoneLocked — after the failure is committed."""
        now = self.clock()
        error: WrongCode | CodeExpired | PhoneLocked | None = None
        with self.db.write() as conn:
            key = self._refuse_if_locked(conn, purpose, phone, now)
            outcome = check_code(conn, self.vault, purpose=purpose, phone=phone, answer=code, now=now)
            g = s.phone_guards
            mine = (g.c.purpose == purpose) & (g.c.phone_hash == key)
            if outcome == "ok":
                conn.execute(update(g).where(mine).values(failures=0, locked_until=None, updated_at=now))
            elif outcome == "expired":
                error = CodeExpired()
            elif outcome == "none":
                error = WrongCode()
            else:
                failures, _ = _guard(conn, purpose, key, now)
                failures += 1
                if failures >= self.policy.attempt_limit:
                    until = now + self.policy.lock_s
                    conn.execute(update(g).where(mine).values(failures=0, locked_until=until, updated_at=now))
                    error = PhoneLocked(until, now)
                else:
                    conn.execute(update(g).where(mine).values(failures=failures, updated_at=now))
                    error = WrongCode(self.policy.attempt_limit - failures)
        if error is not None:
            raise error

    def locked_until(self, *, phone: str, purpose: str) -> float | None:
        now = self.clock()
        key = _phone_key(self.vault, phone)
        g = s.phone_guards
        with self.db.read() as conn:
            until = conn.execute(select(g.c.locked_until)
                                 .where(g.c.purpose == purpose, g.c.phone_hash == key)).scalar()
        return until if until is not None and until > now else None

    def _refuse_if_locked(self, conn: Connection, purpose: str, phone: str, now: float) -> str:
        key = _phone_key(self.vault, phone)
        _, until = _guard(conn, purpose, key, now)
        if until is not None and until > now:
            raise PhoneLocked(until, now)
        return key
