"""Pre-written SQL for hot paths, run on the connection's DBAPI cursor.

SQLAlchemy Core spends more time building and caching a statement than
SQLite spends running it; on the RIS and C-STORE hot paths that overhead
was most of the CPU per request. These statements are plain SQL both
databases accept, written with `:name` parameters (SQLite's style) and
translated once to psycopg's `%(name)s`. They run inside the caller's
SQLAlchemy transaction, on the same connection.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine.interfaces import DBAPICursor

_NAMED = re.compile(r"(?<!:):([A-Za-z_][A-Za-z0-9_]*)")


class Raw:
    def __init__(self, sql: str) -> None:
        self.sqlite = re.sub(r"\{for_update\}", "", sql)
        self.pg = _NAMED.sub(r"%(\1)s", re.sub(r"\{for_update\}", "FOR UPDATE", sql.replace("%", "%%")))

    def execute(self, conn: Connection, params: dict[str, Any] | None = None) -> DBAPICursor:
        dbapi = conn.connection.dbapi_connection
        if dbapi is None:  # only once the connection is closed or invalidated
            raise RuntimeError("the connection has no DBAPI connection")
        cur = dbapi.cursor()
        cur.execute(self.pg if conn.dialect.name == "postgresql" else self.sqlite, params or {})
        return cur

    def one(self, conn: Connection, params: dict[str, Any] | None = None) -> Any:
        cur = self.execute(conn, params)
        try:
            return cur.fetchone()
        finally:
            cur.close()

    def run(self, conn: Connection, params: dict[str, Any] | None = None) -> int:
        cur = self.execute(conn, params)
        try:
            return int(cur.rowcount)
        finally:
            cur.close()


def insert_sql(table: str, columns: list[str], *, conflict: list[str] | None = None,
               returning: str | None = None) -> Raw:
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
    if conflict:
        sql += f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
    if returning:
        sql += f" RETURNING {returning}"
    return Raw(sql)


def update_sql(table: str, columns: list[str], where: str) -> Raw:
    return Raw(f"UPDATE {table} SET {', '.join(f'{c} = :{c}' for c in columns)} WHERE {where}")
