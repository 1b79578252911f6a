"""Partners (appId + token), PACS peers and hospital gateways: who may send to the platform and read from it.

Secrets (a partner's token, a gateway's key) are in an answer once: when created or rotated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from ...core.errors import Conflict, NotFound
from ...storage import schema as s
from ...tenancy import Tenancy
from .nouns import Body, Item, Page, Query, new_id
from .places import hospital_row
from .scope import Actor, outside, reaches_any, require_hospital, require_operator


class Partners:
    path, key = "partners", "appId"

    def __init__(self, tenancy: Tenancy) -> None:
        self.tenancy = tenancy

    def _visible(self, actor: Actor, partner: Item) -> bool:
        if actor.is_operator():
            return True
        unions = actor.union_ids() or frozenset()
        return reaches_any(actor, partner["hospitals"]) or bool(unions & set(partner["unions"]))

    def list(self, actor: Actor, query: Query) -> Page:
        rows = [p for p in self.tenancy.list_partners() if self._visible(actor, p) and query.matches(p["appId"])]
        return query.window(rows)

    def get(self, actor: Actor, key: str) -> Item:
        found = [p for p in self.tenancy.list_partners() if p["appId"] == key]
        if not found:
            raise NotFound(f"no partner {key!r}", subject="partner")
        if not self._visible(actor, found[0]):
            raise outside(f"partner {key}")
        return found[0]

    def create(self, actor: Actor, data: Mapping[str, Any]) -> Item:
        require_operator(actor, "the partners of the platform")
        body = Body(data, "partner", partial=False)
        app_id = body.text("appId", max_len=64) or new_id()
        token = body.text("token", max_len=64)
        fields = self._fields(body)
        enabled = body.flag("enabled")
        body.done()
        if any(p["appId"] == app_id for p in self.tenancy.list_partners()):
            raise Conflict(f"partner {app_id!r} already exists", subject="partner", field="appId")
        _, issued = self.tenancy.add_partner(app_id=app_id, token=token, **fields)
        if enabled is False:
            self.tenancy.set_partner_enabled(app_id=app_id, enabled=False)
        return self.get(actor, app_id) | ({"token": issued} if issued else {})

    @staticmethod
    def _fields(body: Body) -> dict[str, Any]:
        return {"hospitals": body.texts("hospitals") or [], "unions": body.texts("unions") or [],
                "callback_url": body.text("callbackUrl", max_len=2000), "mini_app_id": body.text("miniAppId"),
                "mini_path": body.text("miniPath", max_len=2000)}

    def update(self, actor: Actor, key: str, data: Mapping[str, Any]) -> Item:
        self.get(actor, key)
        require_operator(actor, "the partners of the platform")
        body = Body(data, "partner", partial=True)
        token = body.text("token", max_len=64)  # replaces every live token at once (`rotate` keeps a grace)
        fields = self._fields(body)
        enabled = body.flag("enabled")
        body.done()
        self.tenancy.add_partner(app_id=key, token=token, **fields)
        if enabled is not None:
            self.tenancy.set_partner_enabled(app_id=key, enabled=enabled)
        return self.get(actor, key)

    def rotate(self, actor: Actor, key: str, *, grace_s: float | None = None) -> Item:
        """A new token (shown now, once); the old one keeps working for the grace period."""
        self.get(actor, key)
        require_operator(actor, "the partners of the platform")
        return {"appId": key, "token": self.tenancy.rotate_partner(app_id=key, grace_s=grace_s)}

    def remove(self, actor: Actor, key: str) -> None:
        self.get(actor, key)
        require_operator(actor, "the partners of the platform")
        self.tenancy.remove_partner(app_id=key)


class PacsPeers:
    path, key = "pacs", "aeTitle"

    def __init__(self, tenancy: Tenancy) -> None:
        self.tenancy = tenancy

    def _all(self) -> list[Item]:
        with self.tenancy.db.read() as conn:
            devices = {r.ae_title: r.id for r in conn.execute(select(s.devices.c.ae_title, s.devices.c.id)
                                                              .where(s.devices.c.ae_title.is_not(None)))}
        return [p | {"deviceId": devices.get(p["aeTitle"])} for p in self.tenancy.list_pacs()]

    def list(self, actor: Actor, query: Query) -> Page:
        reach = actor.hospital_ids()
        return query.window([p for p in self._all() if (reach is None or p["hospitalId"] in reach)
                             and query.matches(p["aeTitle"], p["host"], hospital_id=p["hospitalId"])])

    def get(self, actor: Actor, key: str) -> Item:
        found = [p for p in self._all() if p["aeTitle"] == key.strip()]
        if not found:
            raise NotFound(f"no PACS {key!r}", subject="pacs")
        require_hospital(actor, found[0]["hospitalId"], write=False)
        return found[0]

    def create(self, actor: Actor, data: Mapping[str, Any]) -> Item:
        body = Body(data, "PACS", partial=False)
        ae = body.text("aeTitle", required=True, max_len=16)
        host = body.text("host", required=True, max_len=255)
        port = body.integer("port", required=True)
        hospital_id = body.text("hospitalId", required=True, max_len=64)
        body.done()
        assert ae is not None and host is not None and port is not None and hospital_id is not None
        with self.tenancy.db.read() as conn:
            hospital_row(conn, hospital_id)
        require_hospital(actor, hospital_id, write=True)
        self.tenancy.add_pacs(ae_title=ae, host=host, port=port, hospital_id=hospital_id, new=True)
        return self.get(actor, ae)

    def update(self, actor: Actor, key: str, data: Mapping[str, Any]) -> Item:
        current = self.get(actor, key)
        require_hospital(actor, current["hospitalId"], write=True)
        body = Body(data, "PACS", partial=True)
        host = body.text("host", required=True, max_len=255) or current["host"]
        port = body.integer("port", required=True) or current["port"]
        hospital_id = body.text("hospitalId", required=True, max_len=64) or current["hospitalId"]
        body.done()
        require_hospital(actor, hospital_id, write=True)
        self.tenancy.add_pacs(ae_title=current["aeTitle"], host=host, port=port, hospital_id=hospital_id,
                              new=False)
        return self.get(actor, key)

    def remove(self, actor: Actor, key: str) -> None:
        current = self.get(actor, key)
        require_hospital(actor, current["hospitalId"], write=True)
        self.tenancy.remove_pacs(ae_title=current["aeTitle"])


class Gateways:
    path, key = "gateways", "id"

    def __init__(self, tenancy: Tenancy) -> None:
        self.tenancy = tenancy

    def list(self, actor: Actor, query: Query) -> Page:
        reach = actor.hospital_ids()
        return query.window([g for g in self.tenancy.list_gateways()
                             if (reach is None or g["hospitalId"] in reach)
                             and query.matches(g["id"], hospital_id=g["hospitalId"])])

    def get(self, actor: Actor, key: str) -> Item:
        found = [g for g in self.tenancy.list_gateways() if g["id"] == key]
        if not found:
            raise NotFound(f"no gateway {key!r}", subject="gateway")
        require_hospital(actor, found[0]["hospitalId"], write=False)
        return found[0]

    def create(self, actor: Actor, data: Mapping[str, Any]) -> Item:
        body = Body(data, "gateway", partial=False)
        key = body.text("id", max_len=64) or new_id()
        hospital_id = body.text("hospitalId", required=True, max_len=64)
        secret = body.text("key", max_len=256)
        body.done()
        assert hospital_id is not None
        with self.tenancy.db.read() as conn:
            hospital_row(conn, hospital_id)
        require_hospital(actor, hospital_id, write=True)
        if any(g["id"] == key for g in self.tenancy.list_gateways()):
            raise Conflict(f"gateway {key!r} already exists", subject="gateway", field="id")
        _, issued = self.tenancy.add_gateway(gateway_id=key, hospital_id=hospital_id, key=secret)
        return self.get(actor, key) | ({"key": issued} if issued else {})

    def update(self, actor: Actor, key: str, data: Mapping[str, Any]) -> Item:
        current = self.get(actor, key)
        require_hospital(actor, current["hospitalId"], write=True)
        body = Body(data, "gateway", partial=True)
        hospital_id = body.text("hospitalId", required=True, max_len=64) or current["hospitalId"]
        secret = body.text("key", max_len=256)
        body.done()
        require_hospital(actor, hospital_id, write=True)
        self.tenancy.add_gateway(gateway_id=key, hospital_id=hospital_id, key=secret)
        return self.get(actor, key)

    def remove(self, actor: Actor, key: str) -> None:
        current = self.get(actor, key)
        require_hospital(actor, current["hospitalId"], write=True)
        self.tenancy.remove_gateway(gateway_id=key)
