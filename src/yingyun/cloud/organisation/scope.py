"""Who is acting, and what their roles reach.

`Actor` is the part of `cloud.staff.edge.Caller` this layer reads, so the command line can act as the
platform (`PLATFORM`) without a session; its `hospital_ids`/`union_ids` count the roles that cover the one
asked, so `hospital_ids(ADMIN)` is where the actor administers. Reading needs any role over the hospital;
writing needs `admin` over it (or over its union) or `operator`; a platform-wide object (a union created or
removed, a device type, a partner) needs `operator`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from ...contract.codes import Code
from ...core.errors import Forbidden

OPERATOR, ADMIN = "operator", "admin"


class RoleLike(Protocol):
    @property
    def role(self) -> str: ...

    @property
    def scope_kind(self) -> str: ...

    @property
    def scope_id(self) -> str | None: ...


class Actor(Protocol):
    @property
    def username(self) -> str: ...

    @property
    def roles(self) -> tuple[RoleLike, ...]: ...

    def is_operator(self) -> bool: ...

    def hospital_ids(self, *roles: str) -> frozenset[str] | None: ...

    def union_ids(self, *roles: str) -> frozenset[str] | None: ...


@dataclass(frozen=True)
class _PlatformRole:
    role: str = OPERATOR
    scope_kind: str = "platform"
    scope_id: str | None = None


@dataclass(frozen=True)
class Platform:
    """The operator at the command line: reaches everything (the server's own files are its credential)."""

    username: str = "(cli)"
    roles: tuple[RoleLike, ...] = (_PlatformRole(),)

    def is_operator(self) -> bool:
        return True

    def hospital_ids(self, *roles: str) -> frozenset[str] | None:
        return None

    def union_ids(self, *roles: str) -> frozenset[str] | None:
        return None


PLATFORM = Platform()


def outside(what: str) -> Forbidden:
    return Forbidden(f"{what} is outside your scope", code=Code.NO_PERMISSION)


def administers_anything(actor: Actor) -> bool:
    return actor.is_operator() or any(r.role == ADMIN for r in actor.roles)


def require_admin_role(actor: Actor) -> None:
    """20012 for a user who administers nothing (checked before the scope, which would say 20008)."""
    if not administers_anything(actor):
        raise Forbidden(f"user {actor.username} is not an administrator", code=Code.NOT_ADMINISTRATOR)


def require_operator(actor: Actor, what: str) -> None:
    require_admin_role(actor)
    if not actor.is_operator():
        raise outside(what)


def require_hospital(actor: Actor, hospital_id: str, *, write: bool, union_id: str | None = None) -> None:
    """Refuse unless the actor may read (any role) or write (admin) what belongs to `hospital_id`; `union_id`,
    the hospital's union, counts too (a hospital added to a union after the caller's session was resolved)."""
    if write:
        require_admin_role(actor)
    if actor.is_operator():
        return
    roles = (ADMIN,) if write else ()
    reach = actor.hospital_ids(*roles)
    if reach is not None and hospital_id not in reach and not (union_id and union_id in (actor.union_ids(*roles)
                                                                                          or ())):
        raise outside(f"hospital {hospital_id}")


def reaches_any(actor: Actor, hospital_ids: Iterable[str]) -> bool:
    reach = actor.hospital_ids()
    return reach is None or any(h in reach for h in hospital_ids)
