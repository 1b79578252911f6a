"""Departments, device types and devices of the hospitals (cloud/organisation/).

Names are unique where the vendor's codes say so: a department's and a
device's within their hospital (20019, 20020), a device type's on the whole
platform (20021). A device with an AE title is also a row of `pacs` (it may
send C-STORE); `devices.ae_title` says which.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Integer, String, Table, UniqueConstraint, true

from .base import ID, TEXT, metadata

departments = Table(
    "departments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("hospital_id", ID, nullable=False),
    Column("name", TEXT, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True, server_default=true()),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("hospital_id", "name"),
)

device_types = Table(
    "device_types",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", TEXT, nullable=False, unique=True),
    Column("modality", String(16), nullable=True),  # what its devices are, unless a device says otherwise
    Column("enabled", Boolean, nullable=False, default=True, server_default=true()),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

devices = Table(
    "devices",
    metadata,
    Column("id", ID, primary_key=True),
    Column("hospital_id", ID, nullable=False),
    Column("name", TEXT, nullable=False),
    Column("device_type_id", ID, nullable=False, index=True),
    Column("modality", String(16), nullable=False),
    Column("department_id", ID, nullable=True, index=True),
    Column("ae_title", String(16), nullable=True, unique=True),
    Column("host", TEXT, nullable=True),
    Column("port", Integer, nullable=True),
    Column("enabled", Boolean, nullable=False, default=True, server_default=true()),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("hospital_id", "name"),
)
