"""Device types (the platform's catalogue) and the devices of the hospitals.

A device with an AE title may send C-STORE: it is also a row of `pacs`, written in the same transaction,
so the DICOM port accepts it exactly while the device is enabled and says so.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from ...contract.codes import Code
from ...core.errors import Conflict, Invalid, NotFound
from ...storage import schema as s
from ...tenancy import Holder, Tenancy, check_ae_title, check_port, refuse_if_held, register_pacs
from .nouns import Body, Item, Page, Query, new_id, of_hospitals, page_of, searched
from .places import hospital_row
from .scope import Actor, require_hospital, require_operator

MODALITY = re.compile(r"[A-Z0-9_ ]{1,16}")
DICOM_PORT = 104  # where a modality listens unless told otherwise


def _modality(value: str | None) -> str | None:
    if value is None:
        return None
    modality = value.upper()
    if not MODALITY.fullmatch(modality):
        raise Invalid("modality is 1-16 of A-Z 0-9 _ (a DICOM modality such as CT)", field="modality",
                      code=Code.INVALID_FORMAT)
    return modality


class DeviceTypes:
    path, key = "device-types", "id"

    def __init__(self, tenancy: Tenancy) -> None:
        self.db = tenancy.db

    @staticmethod
    def _shape(r: Any) -> Item:
        return {"id": r.id, "name": r.name, "modality": r.modality, "enabled": bool(r.enabled)}

    def list(self, actor: Actor, query: Query) -> Page:
        t = s.device_types
        stmt = select(t).where(*searched(query, t.c.id, t.c.name)).order_by(t.c.name)
        with self.db.read() as conn:
            return page_of(conn, stmt, query, self._shape)

    @staticmethod
    def row(conn: Connection, key: str) -> Row[Any]:
        row = conn.execute(select(s.device_types).where(s.device_types.c.id == key)).first()
        if row is None:
            raise NotFound(f"no device type {key!r}", subject="device type", field="deviceTypeId",
                           code=Code.DEVICE_TYPE_NOT_FOUND)
        return row

    def get(self, actor: Actor, key: str) -> Item:
        with self.db.read() as conn:
            return self._shape(self.row(conn, key))

    @staticmethod
    def _name_unused(conn: Connection, name: str, key: str) -> None:
        t = s.device_types
        other = conn.execute(select(t.c.id).where(t.c.name == name, t.c.id != key)).scalar()
        if other is not None:
            raise Conflict(f"device type {other!r} is already named {name!r}", subject="device type",
                           field="name", code=Code.DEVICE_TYPE_EXISTS)

    def create(self, actor: Actor, data: Mapping[str, Any]) -> Item:
        require_operator(actor, "the device types of the platform")
        body = Body(data, "device type", partial=False)
        key = body.text("id", max_len=64) or new_id()
        name = body.text("name", required=True)
        modality = _modality(body.text("modality", max_len=16))
        enabled = body.flag("enabled")
        body.done()
        assert name is not None
        with self.db.write() as conn:
            t = s.device_types
            if conn.execute(select(t.c.id).where(t.c.id == key)).first() is not None:
                raise Conflict(f"device type {key!r} already exists", subject="device type", field="id",
                               code=Code.DEVICE_TYPE_EXISTS)
            self._name_unused(conn, name, key)
            now = time.time()
            conn.execute(insert(t).values(id=key, name=name, modality=modality, enabled=enabled is not False,
                                          created_at=now, updated_at=now))
        return self.get(actor, key)

    def update(self, actor: Actor, key: str, data: Mapping[str, Any]) -> Item:
        self.get(actor, key)
        require_operator(actor, "the device types of the platform")
        body = Body(data, "device type", partial=True)
        name = body.text("name", required=True)
        values: dict[str, Any] = {}
        if body.has("modality"):
            values["modality"] = _modality(body.text("modality", max_len=16))
        enabled = body.flag("enabled")
        body.done()
        with self.db.write() as conn:
            if name is not None:
                self._name_unused(conn, name, key)
                values["name"] = name
            if enabled is not None:
                values["enabled"] = enabled
            if values:
                conn.execute(update(s.device_types).where(s.device_types.c.id == key)
                             .values(**values, updated_at=time.time()))
        return self.get(actor, key)

    def remove(self, actor: Actor, key: str) -> None:
        self.get(actor, key)
        require_operator(actor, "the device types of the platform")
        with self.db.write() as conn:
            dev = s.devices
            names = tuple(conn.execute(select(dev.c.id).where(dev.c.device_type_id == key).order_by(dev.c.id))
                          .scalars())
            refuse_if_held("device type", key, [Holder(len(names), "device", "devices", names)])
            conn.execute(delete(s.device_types).where(s.device_types.c.id == key))


class Devices:
    path, key = "devices", "id"

    def __init__(self, tenancy: Tenancy) -> None:
        self.tenancy = tenancy
        self.db = tenancy.db

    @staticmethod
    def _shape(r: Any) -> Item:
        return {"id": r.id, "hospitalId": r.hospital_id, "name": r.name, "deviceTypeId": r.device_type_id,
                "modality": r.modality, "departmentId": r.department_id, "aeTitle": r.ae_title, "host": r.host,
                "port": r.port, "enabled": bool(r.enabled)}

    def list(self, actor: Actor, query: Query) -> Page:
        d = s.devices
        stmt = (select(d).where(*searched(query, d.c.id, d.c.name, d.c.ae_title))
                .order_by(d.c.hospital_id, d.c.name))
        stmt = of_hospitals(stmt, d.c.hospital_id, actor, query)
        with self.db.read() as conn:
            return page_of(conn, stmt, query, self._shape)

    @staticmethod
    def _row(conn: Connection, key: str) -> Row[Any]:
        row = conn.execute(select(s.devices).where(s.devices.c.id == key)).first()
        if row is None:
            raise NotFound(f"no device {key!r}", subject="device", code=Code.DEVICE_NOT_FOUND)
        return row

    def get(self, actor: Actor, key: str) -> Item:
        with self.db.read() as conn:
            row = self._row(conn, key)
        require_hospital(actor, row.hospital_id, write=False)
        return self._shape(row)

    def create(self, actor: Actor, data: Mapping[str, Any]) -> Item:
        body = Body(data, "device", partial=False)
        key = body.text("id", max_len=64) or new_id()
        hospital_id = body.text("hospitalId", required=True, max_len=64)
        fields = self._fields(body)
        body.done()
        assert hospital_id is not None
        with self.db.write() as conn:
            hospital_row(conn, hospital_id)
            require_hospital(actor, hospital_id, write=True)
            if conn.execute(select(s.devices.c.id).where(s.devices.c.id == key)).first() is not None:
                raise Conflict(f"device {key!r} already exists", subject="device", field="id",
                               code=Code.DEVICE_NAME_EXISTS)
            values = self._checked(conn, hospital_id, key, {"enabled": True, "port": None, "host": None,
                                                            "ae_title": None, "department_id": None,
                                                            "modality": None} | fields)
            now = time.time()
            conn.execute(insert(s.devices).values(id=key, hospital_id=hospital_id, **values, created_at=now,
                                                  updated_at=now))
            self._register(conn, None, values, hospital_id)
        self.tenancy.pacs_changed()
        return self.get(actor, key)

    def update(self, actor: Actor, key: str, data: Mapping[str, Any]) -> Item:
        body = Body(data, "device", partial=True)
        moved_to = body.text("hospitalId", max_len=64)
        fields = self._fields(body)
        body.done()
        with self.db.write() as conn:
            row = self._row(conn, key)
            require_hospital(actor, row.hospital_id, write=True)
            if moved_to is not None and moved_to != row.hospital_id:
                raise Invalid("a device stays in its hospital: add it to the other hospital instead",
                              subject="device", field="hospitalId", code=Code.INVALID_FORMAT)
            current = {c: getattr(row, c) for c in ("name", "device_type_id", "modality", "department_id",
                                                    "ae_title", "host", "port", "enabled")}
            values = self._checked(conn, row.hospital_id, key, current | fields)
            conn.execute(update(s.devices).where(s.devices.c.id == key).values(**values, updated_at=time.time()))
            self._register(conn, row.ae_title, values, row.hospital_id)
        self.tenancy.pacs_changed()
        return self.get(actor, key)

    def remove(self, actor: Actor, key: str) -> None:
        """Remove a device (and its PACS registration); what it sent stays with its hospital."""
        with self.db.write() as conn:
            row = self._row(conn, key)
            require_hospital(actor, row.hospital_id, write=True)
            if row.ae_title:
                conn.execute(delete(s.pacs).where(s.pacs.c.ae_title == row.ae_title))
            conn.execute(delete(s.devices).where(s.devices.c.id == key))
        self.tenancy.pacs_changed()

    @staticmethod
    def _fields(body: Body) -> dict[str, Any]:
        """The columns the body sets (a PATCH sets only those it names; `null` clears an optional one)."""
        out: dict[str, Any] = {}
        for name, column in (("name", "name"), ("deviceTypeId", "device_type_id")):
            value = body.text(name, required=True, max_len=200 if name == "name" else 64)
            if value is not None:
                out[column] = value
        for name, column, max_len in (("departmentId", "department_id", 64), ("aeTitle", "ae_title", 16),
                                      ("host", "host", 255), ("modality", "modality", 16)):
            if body.has(name):
                out[column] = body.text(name, max_len=max_len)
        if body.has("port"):
            out["port"] = body.integer("port")
        enabled = body.flag("enabled")
        if enabled is not None:
            out["enabled"] = enabled
        return out

    def _checked(self, conn: Connection, hospital_id: str, key: str, values: dict[str, Any]) -> dict[str, Any]:
        """The row's values once every rule holds: name free in the hospital, type and department known, an
        AE title well formed, with a host, and not another's."""
        d = s.devices
        other = conn.execute(select(d.c.id).where(d.c.hospital_id == hospital_id, d.c.name == values["name"],
                                                  d.c.id != key)).scalar()
        if other is not None:
            raise Conflict(f"hospital {hospital_id} already has a device named {values['name']!r}",
                           subject="device", field="name", code=Code.DEVICE_NAME_EXISTS)
        device_type = DeviceTypes.row(conn, values["device_type_id"])
        values["modality"] = _modality(values.get("modality")) or device_type.modality
        if not values["modality"]:
            raise Invalid(f"modality is required (device type {device_type.id} names none)", subject="device",
                          field="modality", code=Code.REQUIRED_EMPTY)
        department = values.get("department_id")
        if department is not None:
            dep = s.departments
            if conn.execute(select(dep.c.id).where(dep.c.id == department, dep.c.hospital_id == hospital_id)
                            ).first() is None:
                raise NotFound(f"no department {department!r} in hospital {hospital_id}", subject="department",
                               field="departmentId", code=Code.DEPARTMENT_NOT_FOUND)
        if values.get("ae_title") is not None:
            ae = values["ae_title"] = check_ae_title(values["ae_title"])
            if not values.get("host"):
                raise Invalid("host is required with an AE title (C-STORE is accepted from that host only)",
                              subject="device", field="host", code=Code.REQUIRED_EMPTY)
            values["port"] = values.get("port") or DICOM_PORT
            check_port(values["port"])
            holder = conn.execute(select(d.c.id).where(d.c.ae_title == ae, d.c.id != key)).scalar()
            pacs = conn.execute(select(s.pacs.c.ae_title).where(s.pacs.c.ae_title == ae)).first()
            own = conn.execute(select(d.c.id).where(d.c.id == key, d.c.ae_title == ae)).first()
            if holder is not None or (pacs is not None and own is None):
                raise Conflict(f"AE title {ae} is already registered" + (f" by device {holder}" if holder else
                                                                          " as a PACS"),
                               subject="device", field="aeTitle", code=Code.DUPLICATE_DATA)
        return values

    @staticmethod
    def _register(conn: Connection, old_ae: str | None, values: dict[str, Any], hospital_id: str) -> None:
        """Keep the device's PACS row what the device says: there while it is enabled with an AE title."""
        if old_ae:
            conn.execute(delete(s.pacs).where(s.pacs.c.ae_title == old_ae))
        if values.get("ae_title") and values.get("enabled"):
            register_pacs(conn, ae_title=values["ae_title"], host=values["host"], port=values["port"],
                          hospital_id=hospital_id)
