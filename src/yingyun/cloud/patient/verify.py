"""Proving who you are on a QR link: the answer, the per-link lock, SMS codes, sessions.

The lock lives in the database (`link_guards`), so it holds for every
browser and every server process: `limit` wrong answers lock the link for
`lock_s`, doubling on each repeat (15, 30, 60 min...); a correct answer
resets it. Contract codes: 20001 wrong answer or code, 20002 expired code,
20003 daily send limit, 20004 locked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from ...core.crypto import Vault, normalise_id_card, normalise_phone
from ...core.links import token_hash
from ...storage import schema as s
from ...storage.upsert import insert_ignore

MAX_LOCK_S = 7 * 86400.0


# -- what the visitor must know ----------------------------------------------


@dataclass(frozen=True)
class Challenge:
    method: str  # "phone4" | "id4" | "sms" | "none"
    phone: str | None = None  # for sms only; never rendered
    expected: str | None = None  # for phone4 / id4


def identity(vault: Vault, study: Row[Any] | None) -> dict[str, Any]:
    if study is None or study.identity_enc is None:
        return {}
    try:
        data = json.loads(vault.decrypt(study.identity_enc) or "{}")
    except (ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def challenge_for(vault: Vault, study: Row[Any] | None, method: str) -> Challenge:
    ident = identity(vault, study)
    phone = normalise_phone(ident.get("phoneNum") if isinstance(ident.get("phoneNum"), str) else None)
    if len(phone) >= 7:
        if method == "sms":
            return Challenge("sms", phone=phone)
        return Challenge("phone4", expected=phone[-4:])
    id_card = normalise_id_card(ident.get("idCardNum") if isinstance(ident.get("idCardNum"), str) else None)
    if len(id_card) >= 4:
        return Challenge("id4", expected=id_card[-4:])
    return Challenge("none")


def answer_matches(challenge: Challenge, answer: str) -> bool:
    if challenge.expected is None:
        return False
    given = "".join(answer.split()).upper()
    return hmac.compare_digest(given.encode(), challenge.expected.upper().encode())


# -- the per-link lock ---------------------------------------------------------


def _guard_row(conn: Connection, link_pk: int, now: float) -> Row[Any] | None:
    g = s.link_guards
    insert_ignore(conn, g, {"link_pk": link_pk, "failures": 0, "lock_level": 0, "updated_at": now}, keys=["link_pk"])
    return conn.execute(select(g).where(g.c.link_pk == link_pk).with_for_update()).first()


def locked_until(conn: Connection, link_pk: int, now: float) -> float | None:
    g = s.link_guards
    until = conn.execute(select(g.c.locked_until).where(g.c.link_pk == link_pk)).scalar()
    return until if until is not None and until > now else None


@dataclass(frozen=True)
class Failure:
    locked_until: float | None  # set when this failure locked the link
    remaining: int  # attempts left before the lock


def register_failure(conn: Connection, link_pk: int, now: float, *, limit: int, lock_s: float) -> Failure:
    """Count a wrong answer (inside the caller's write transaction)."""
    row = _guard_row(conn, link_pk, now)
    if row is None:  # the guard row just made is gone (the link was deleted meanwhile)
        raise RuntimeError("the link's guard row vanished while counting a failure")
    g = s.link_guards
    if row.locked_until is not None and row.locked_until > now:
        return Failure(row.locked_until, 0)
    failures = row.failures + 1
    if failures >= limit:
        level = row.lock_level + 1
        until = now + min(lock_s * 2 ** (level - 1), MAX_LOCK_S)
        conn.execute(update(g).where(g.c.link_pk == link_pk).values(failures=0, lock_level=level, locked_until=until,
                                                                     updated_at=now))
        return Failure(until, 0)
    conn.execute(update(g).where(g.c.link_pk == link_pk).values(failures=failures, updated_at=now))
    return Failure(None, limit - failures)


def register_success(conn: Connection, link_pk: int, now: float) -> None:
    g = s.link_guards
    conn.execute(update(g).where(g.c.link_pk == link_pk).values(failures=0, lock_level=0, locked_until=None,
                                                                updated_at=now))


# -- SMS codes ------------------------------------------------------------------
# A link's code is a yingyun.phonecodes code of purpose "link:<pk>" sent to the
# study's phone: the store is shared, the lock stays the link's (above).


def code_purpose(link_pk: int) -> str:
    return f"link:{link_pk}"


# -- sessions ---------------------------------------------------------------------


def create_session(conn: Connection, *, link_pk: int, now: float, lifetime_s: float) -> str:
    sid = secrets.token_urlsafe(32)
    conn.execute(insert(s.link_sessions).values(sid_hash=token_hash(sid), link_pk=link_pk,
                                                csrf_key=secrets.token_hex(32), created_at=now,
                                                expires_at=now + lifetime_s))
    return sid


def find_session(conn: Connection, *, sid: str | None, link_pk: int, now: float) -> Row[Any] | None:
    if not sid or len(sid) > 100:
        return None
    ls = s.link_sessions
    row = conn.execute(select(ls).where(ls.c.sid_hash == token_hash(sid))).first()
    if row is None or row.link_pk != link_pk or row.revoked_at is not None or now >= row.expires_at:
        return None
    return row


def purge_sessions(conn: Connection, *, now: float) -> int:
    ls = s.link_sessions
    return conn.execute(ls.delete().where(ls.c.expires_at < now - 86400)).rowcount


# -- CSRF ---------------------------------------------------------------------------


def form_token(key: str, *, link_pk: int, form: str) -> str:
    return hmac.new(key.encode(), f"{link_pk}:{form}".encode(), hashlib.sha256).hexdigest()


def check_form_token(key: str | None, given: str | None, *, link_pk: int, form: str) -> bool:
    if not key or not given:
        return False
    return hmac.compare_digest(form_token(key, link_pk=link_pk, form=form), given)
