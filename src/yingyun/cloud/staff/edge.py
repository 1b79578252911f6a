"""The `/api/v1` edge every staff router is built on: who is calling (`CallerDep`), what they may do
(`Caller.require`), and the route class (`StaffRoute`).

`StaffRoute` is `web.vendor.VendorRoute` on the API family: the handler
returns its `data`, the route answers `{code, message, data}` with HTTP 200,
and whatever a service raises (`core.errors`) is rendered once, there. Its
answers are never cached (`Cache-Control: no-store`): they are one user's.

`CallerDep` resolves the session cookie to a live `Caller` — or refuses with
20005 (no session, idle 30 minutes, older than 12 hours) or 20007 (ended by
a sign-in elsewhere) — and, on POST/PUT/PATCH/DELETE, checks the
`X-CSRF-Token` header against the session's token (20008 when it is missing
or wrong): a page of another site can send the cookie, never the header. So
every state-changing route that takes a `CallerDep` is CSRF-checked; the two
that open a session (`POST /api/v1/session`, `/session/sms-code`) have none
to check against.

Roles and scopes (issue 14 item 1): `operator` (the platform), `admin` (a
union or a hospital), `radiologist`, `reviewer` and `clinician` (a
hospital), `auditor` (a union or a hospital). A role held covers another
where its holder may do that one's work too, in the same scope (`COVERS`):
an operator or an admin reads studies and the audit trail like a clinician
and an auditor, and administers; signing reports (radiologist, reviewer)
is nobody's but theirs. A union scope reaches every hospital of the union.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...contract.codes import Code
from ...core.errors import Forbidden
from ...web.vendor import VendorRoute
from .context import StaffContext

ScopeKind = Literal["platform", "union", "hospital"]

OPERATOR, ADMIN, RADIOLOGIST, REVIEWER, CLINICIAN, AUDITOR = (
    "operator", "admin", "radiologist", "reviewer", "clinician", "auditor")
ROLES = (OPERATOR, ADMIN, RADIOLOGIST, REVIEWER, CLINICIAN, AUDITOR)
# The scopes each role may be given.
SCOPES: Mapping[str, tuple[ScopeKind, ...]] = {
    OPERATOR: ("platform",), ADMIN: ("union", "hospital"), RADIOLOGIST: ("hospital",),
    REVIEWER: ("hospital",), CLINICIAN: ("hospital",), AUDITOR: ("union", "hospital"),
}
# Which required roles a held role satisfies (module docstring).
COVERS: Mapping[str, frozenset[str]] = {
    OPERATOR: frozenset({OPERATOR, ADMIN, CLINICIAN, AUDITOR}),
    ADMIN: frozenset({ADMIN, CLINICIAN, AUDITOR}),
    RADIOLOGIST: frozenset({RADIOLOGIST, CLINICIAN}),
    REVIEWER: frozenset({REVIEWER, CLINICIAN}),
    CLINICIAN: frozenset({CLINICIAN}),
    AUDITOR: frozenset({AUDITOR}),
}

SESSION_COOKIE = "yy_staff"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Role:
    """One role a user holds, in its scope: the platform (scope_id None), one union or one hospital."""

    role: str
    scope_kind: ScopeKind
    scope_id: str | None

    @property
    def scope(self) -> str | None:
        """As the API and the CLI spell it: "union:ID", "hospital:ID", or None for the platform."""
        return None if self.scope_kind == "platform" else f"{self.scope_kind}:{self.scope_id}"

    def as_json(self) -> dict[str, str | None]:
        return {"role": self.role, "scope": self.scope}


@dataclass(frozen=True)
class Caller:
    """The signed-in staff user of a request."""

    username: str
    name: str
    roles: tuple[Role, ...]
    csrf_token: str = field(default="", repr=False)
    session_key: str = field(default="", repr=False)  # the session's row (its cookie's hash)
    # hospital id -> its union id (or None), as the caller was resolved: expands union scopes.
    hospital_unions: Mapping[str, str | None] = field(default_factory=dict, repr=False)

    def is_operator(self) -> bool:
        return any(r.role == OPERATOR for r in self.roles)

    def _holding(self, roles: tuple[str, ...]) -> list[Role]:
        return [r for r in self.roles if not roles or COVERS.get(r.role, frozenset()) & set(roles)]

    def hospital_ids(self, *roles: str) -> frozenset[str] | None:
        """The hospitals the caller's roles (those covering any of `roles`; every role when none is named)
        reach, unions expanded; None: every hospital (a platform role)."""
        out: set[str] = set()
        for r in self._holding(roles):
            if r.scope_kind == "platform":
                return None
            if r.scope_kind == "hospital":
                assert r.scope_id is not None
                out.add(r.scope_id)
            else:
                out.update(h for h, u in self.hospital_unions.items() if u == r.scope_id)
        return frozenset(out)

    def union_ids(self, *roles: str) -> frozenset[str] | None:
        """The unions the caller's roles reach as a whole (a hospital scope reaches none); None: every union."""
        out: set[str] = set()
        for r in self._holding(roles):
            if r.scope_kind == "platform":
                return None
            if r.scope_kind == "union":
                assert r.scope_id is not None
                out.add(r.scope_id)
        return frozenset(out)

    def may(self, role: str, *, hospital_id: str | None = None, union_id: str | None = None) -> bool:
        """Whether `require` would pass."""
        try:
            self.require(role, hospital_id=hospital_id, union_id=union_id)
        except Forbidden:
            return False
        return True

    def require(self, role: str, *, hospital_id: str | None = None, union_id: str | None = None) -> None:
        """Pass when a role of the caller covers `role` in a scope that reaches `hospital_id` (or `union_id`;
        with neither, anywhere); else Forbidden: 20012 when no role of the caller covers an admin's work at all,
        20008 otherwise (outside the caller's scope, or a role it does not hold)."""
        held = self._holding((role,))
        if not held:
            code = Code.NOT_ADMINISTRATOR if role in (ADMIN, OPERATOR) else Code.NO_PERMISSION
            raise Forbidden(f"user {self.username} is not {_article(role)} {role}", subject="user", code=code)
        if hospital_id is None and union_id is None:
            return
        for r in held:
            if r.scope_kind == "platform":
                return
            if hospital_id is not None and (
                    (r.scope_kind == "hospital" and r.scope_id == hospital_id)
                    or (r.scope_kind == "union" and self.hospital_unions.get(hospital_id) == r.scope_id)):
                return
            if hospital_id is None and r.scope_kind == "union" and r.scope_id == union_id:
                return
        where = f"hospital {hospital_id}" if hospital_id is not None else f"union {union_id}"
        raise Forbidden(f"{where} is outside the scope of user {self.username}", subject="user",
                        code=Code.NO_PERMISSION)

    def require_admin(self, *, hospital_id: str | None = None, union_id: str | None = None) -> None:
        """An administrator's operation on `hospital_id` / `union_id` (20012 for a non-admin, 20008 outside)."""
        self.require(ADMIN, hospital_id=hospital_id, union_id=union_id)

    def require_operator(self) -> None:
        """A platform operation (20012 for anyone else)."""
        self.require(OPERATOR)

    def as_json(self) -> dict[str, Any]:
        return {"username": self.username, "name": self.name, "roles": [r.as_json() for r in self.roles]}


def _article(role: str) -> str:
    return "an" if role[:1] in "aeiou" else "a"


def staff_context(request: Request) -> StaffContext:
    ctx: StaffContext = request.app.state.staff
    return ctx


async def _staff_context(request: Request) -> StaffContext:
    return staff_context(request)  # async: no thread hop for an attribute read


StaffCtx = Annotated[StaffContext, Depends(_staff_context)]


async def current_caller(request: Request, ctx: StaffCtx) -> Caller:
    """The live session's user (20005 / 20007 otherwise), CSRF-checked on state-changing methods."""
    from . import sessions

    caller = await run_in_threadpool(sessions.resolve, ctx, request.cookies.get(SESSION_COOKIE))
    if request.method in UNSAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent.encode(), caller.csrf_token.encode()):
            raise Forbidden(f"the {CSRF_HEADER} header is missing or is not this session's", subject="csrf",
                            code=Code.NO_PERMISSION)
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]


class StaffRoute(VendorRoute):
    """An `/api/v1/*` operation (module docstring): VendorRoute's envelope, answers never cached."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            response = await handle(request)
            response.headers["Cache-Control"] = "no-store"
            return response

        return route_handler
