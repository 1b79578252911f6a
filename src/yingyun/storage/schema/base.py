"""The shared metadata (its naming convention names every constraint and index) and column types."""

from __future__ import annotations

from sqlalchemy import MetaData, String, Text

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

ID = String(64)
UID = String(64)
TEXT = Text
