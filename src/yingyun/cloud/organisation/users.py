"""Staff users and their roles (cloud/staff/accounts runs them; this is their scope and their JSON).

An admin sees the users holding a role inside their scope, and may give, change or take away only roles
inside it: a user who also holds a role elsewhere is changed or removed by someone whose scope covers both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...contract.codes import Code
from ...core.errors import Invalid
from ...tenancy import Tenancy
from ..staff import accounts
from ..staff.edge import Role
from .nouns import Body, Item, Page, Query
from .scope import ADMIN, Actor, outside, require_admin_role


def _reaches(actor: Actor, role: Mapping[str, Any], *, write: bool) -> bool:
    """Whether `role` ({"role", "scope"}) is inside what the actor sees (or, `write`, administers)."""
    if actor.is_operator():
        return True
    scope = role.get("scope") or ""
    kind, _, key = scope.partition(":")
    wanted = (ADMIN,) if write else ()
    if kind == "hospital":
        return key in (actor.hospital_ids(*wanted) or ())
    if kind == "union":
        return key in (actor.union_ids(*wanted) or ())
    return False  # a platform role: the operator's


def _given_roles(actor: Actor, body: Body) -> list[Role] | None:
    """The roles the body gives (None: a PATCH keeps them), each inside what the actor administers."""
    value = body.value("roles")
    if value is None and body.partial:
        return None
    if not value:
        raise Invalid("roles is required", subject="user", field="roles", code=Code.REQUIRED_EMPTY)
    if not isinstance(value, list) or not all(isinstance(v, (Mapping, str)) for v in value):
        raise Invalid('roles must be a list of {"role", "scope"}', subject="user", field="roles",
                      code=Code.INVALID_FORMAT)
    roles = []
    for v in value:
        spelt = v if isinstance(v, str) else f"{v.get('role')}" + (f":{v['scope']}" if v.get("scope") else "")
        role = accounts.parse_role(spelt)
        if not _reaches(actor, {"scope": role.scope}, write=True):
            raise outside(f"role {spelt}")
        roles.append(role)
    return roles


class Users:
    path, key = "users", "username"

    def __init__(self, tenancy: Tenancy) -> None:
        self.db = tenancy.db
        self.vault = tenancy.vault

    def list(self, actor: Actor, query: Query) -> Page:
        with self.db.read() as conn:
            rows = accounts.list_users(conn, vault=self.vault, hospitals=actor.hospital_ids(),
                                       unions=actor.union_ids())
        return query.window([u for u in rows if query.matches(u["username"], u["name"])])

    def get(self, actor: Actor, key: str) -> Item:
        with self.db.read() as conn:
            user = accounts.get_user(conn, vault=self.vault, username=key)
        if not any(_reaches(actor, r, write=False) for r in user["roles"]):
            raise outside(f"user {key}")
        return user

    def create(self, actor: Actor, data: Mapping[str, Any]) -> Item:
        require_admin_role(actor)
        body = Body(data, "user", partial=False)
        username = body.text("username", required=True, max_len=64)
        name = body.text("name", required=True)
        roles = _given_roles(actor, body)
        phone = body.text("phone", max_len=32)
        password = body.text("password", max_len=1024)
        totp = body.flag("totp")
        body.done()
        assert username is not None and name is not None and roles is not None
        with self.db.write() as conn:
            uri = accounts.add_user(conn, vault=self.vault, username=username, name=name, roles=roles, phone=phone,
                                    password=password, totp=bool(totp))
        return self.get(actor, username) | ({"totpUri": uri} if uri else {})

    def _require_all(self, actor: Actor, user: Item) -> None:
        require_admin_role(actor)
        beyond = [r for r in user["roles"] if not _reaches(actor, r, write=True)]
        if beyond:
            raise outside(f"user {user['username']} (who also holds {beyond[0]['role']} "
                          f"{beyond[0]['scope'] or 'on the platform'})")

    def update(self, actor: Actor, key: str, data: Mapping[str, Any]) -> Item:
        self._require_all(actor, self.get(actor, key))
        body = Body(data, "user", partial=True)
        name = body.text("name", required=True)
        roles = _given_roles(actor, body)
        phone = body.text("phone", max_len=32) if body.has("phone") else None
        if body.has("phone") and phone is None:
            phone = ""  # null unbinds the phone
        password = body.text("password", required=True, max_len=1024)
        enabled = body.flag("enabled")
        body.done()
        with self.db.write() as conn:
            accounts.update_user(conn, vault=self.vault, username=key, name=name, roles=roles, phone=phone)
            if password is not None:
                accounts.reset_password(conn, username=key, password=password)
            if enabled is not None:
                accounts.set_enabled(conn, username=key, enabled=enabled)
        return self.get(actor, key)

    def remove(self, actor: Actor, key: str) -> None:
        self._require_all(actor, self.get(actor, key))
        with self.db.write() as conn:
            accounts.remove_user(conn, username=key)
