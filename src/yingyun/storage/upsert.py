"""Writes that may meet an existing row, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, CursorResult, Table, and_, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(conn: Connection, table: Table, values: Mapping[str, Any], *, keys: Sequence[str] | None = None,
                  returning: ColumnElement[Any] | None = None) -> CursorResult[Any]:
    """INSERT ... ON CONFLICT (keys) DO NOTHING (any unique key when `keys` is None).

    The result's rowcount is 0 when the row was there; with `returning`, its
    scalar() is the new row's value, None when the row was there."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
    return conn.execute(stmt if returning is None else stmt.returning(returning))


def upsert(conn: Connection, table: Table, key: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    """Insert or update the row with `key`, stamping created_at/updated_at; True when created.
    Callers hold the write lock (Database.write)."""
    cond = and_(*(table.c[k] == v for k, v in key.items()))
    exists = conn.execute(select(*[table.c[k] for k in key]).where(cond)).first() is not None
    now = time.time()
    if exists:
        conn.execute(update(table).where(cond).values(**values, updated_at=now))
    else:
        conn.execute(insert(table).values(**key, **values, created_at=now, updated_at=now))
    return not exists
