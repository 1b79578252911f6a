"""Who is calling DICOMweb, and which hospitals they may see.

Three kinds of credentials:
- a partner's signature headers (contract §1.1: appId, timestamp,
  signature); the partner sees its granted hospitals plus every hospital of
  its granted unions;
- `Authorization: Bearer <token>` for operator tools, the token issued by
  `yingyun admin token add` for listed hospitals or all of them;
- a signed-in staff user's session cookie (the reading viewer on this
  origin), through the `StaffSessions` protocol serve adapts cloud/staff to:
  for reading only (GET), never STOW-RS (a cookie goes with a forged
  cross-site POST; a token header does not). What such a caller may see is
  decided per study by the context's `StudyGate`.

Failures are `core.errors` (the edge, router.py, answers them with the
HTTP statuses of PS3.18 and contract §1.2): no or bad credentials
Unauthenticated (401, with `WWW-Authenticate: Bearer`), a disabled partner
or a hospital outside the grant Forbidden (403).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ...contract import signing
from ...contract.envelope import ContractError
from ...core.errors import Forbidden, Invalid, NotFound, Unauthenticated
from ...tenancy import Tenancy
from .tokens import TokenRegistry


@dataclass(frozen=True)
class Caller:
    name: str  # "partner:<appId>", "token:<name>" or "user:<username>"
    hospitals: frozenset[str] | None  # None: every hospital
    # A staff session's caller: its hospitals are the default gate's answer, and the StudyGate decides.
    session: bool = False
    user: object | None = None  # the staff caller as StaffSessions resolved it, for a gate that needs its roles

    def scope(self, hospital_id: str | None) -> frozenset[str] | None:
        """The hospitals a request may see, narrowed by ?hospitalId= when given."""
        if hospital_id is None:
            return self.hospitals
        if self.hospitals is not None and hospital_id not in self.hospitals:
            raise Forbidden(f"hospital {hospital_id!r} is not granted to this caller")
        return frozenset({hospital_id})

    def store_target(self, hospital_id: str | None, known: set[str]) -> str:
        """The one hospital a STOW-RS request stores into."""
        if hospital_id is not None:
            self.scope(hospital_id)
            if hospital_id not in known:
                raise NotFound(f"no hospital {hospital_id!r}")
            return hospital_id
        if self.hospitals is not None and len(self.hospitals) == 1:
            return next(iter(self.hospitals))
        raise Invalid("this caller is granted several hospitals: name the one to store into with ?hospitalId=")


class StaffSessions(Protocol):
    """Staff sessions as DICOMweb sees them (cloud/staff adapted by serve)."""

    cookie: str  # the session cookie's name

    def resolve(self, token: str) -> Caller:
        """The caller of a live session (cached briefly), else Unauthenticated."""
        ...


READ_METHODS = frozenset({"GET", "HEAD"})


class Authenticator:
    def __init__(self, tenancy: Tenancy, tokens: TokenRegistry, *, window_s: float,
                 sessions: StaffSessions | None = None) -> None:
        self.tenancy = tenancy
        self.tokens = tokens
        self.window_s = window_s
        self.sessions = sessions

    async def __call__(self, request: Request) -> Caller:
        authz = request.headers.get("authorization")
        if authz is not None:
            scheme, _, value = authz.strip().partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise Unauthenticated("Authorization must be 'Bearer <token>'")
            grant = await run_in_threadpool(self.tokens.lookup, value.strip())
            if grant is None:
                raise Unauthenticated("unknown or revoked token")
            return Caller(f"token:{grant.name}", None if grant.all_hospitals else grant.hospitals)
        app_id = request.headers.get(signing.H_APP_ID)
        cookie = request.cookies.get(self.sessions.cookie) if self.sessions is not None else None
        if (app_id is None or not app_id.strip()) and cookie and self.sessions is not None:
            if request.method not in READ_METHODS:
                raise Forbidden("a session cookie reads only: store with a token or the partner signature")
            return await run_in_threadpool(self.sessions.resolve, cookie)
        if app_id is None or not app_id.strip():
            raise Unauthenticated("credentials required: a bearer token or the partner signature headers")
        app_id = app_id.strip()
        hit, partner = self.tenancy.cached_partner(app_id)
        if not hit:
            partner = await run_in_threadpool(self.tenancy.partner, app_id)
        if partner is None:
            raise Unauthenticated("unknown appId")
        try:
            signing.verify(app_id=app_id, timestamp=request.headers.get(signing.H_TIMESTAMP),
                           signature=request.headers.get(signing.H_SIGNATURE), tokens=partner.tokens,
                           now=time.time(), window_s=self.window_s)
        except ContractError as e:
            raise Unauthenticated(e.detail or "invalid signature") from e
        if not partner.enabled:
            raise Forbidden(f"partner {app_id} is disabled")
        hospitals = set(partner.hospitals)
        if partner.unions:
            hospitals.update(hid for hid, h in self.tenancy.hospitals().items() if h.get("unionId") in partner.unions)
        return Caller(f"partner:{app_id}", frozenset(hospitals))

