"""Engines for the index: SQLite (WAL, synchronous=FULL) or PostgreSQL.

Guarantee: a transaction committed through `Database.write()` is durable
when the commit returns (SQLite fsyncs its WAL on every commit with
synchronous=FULL; PostgreSQL's default synchronous_commit does the same).
On SQLite, write transactions start with BEGIN IMMEDIATE, so concurrent
writers queue on the database lock instead of failing half-way with
"database is locked" when a read lock cannot be upgraded; and before that
they take a thread lock and an flock on a file beside the database, because
SQLite's own busy handler waits by sleeping (up to 100 ms a try), which
turns contention into long latency tails. A blocked flock wakes at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, Integer, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine.interfaces import DBAPIConnection

    from .rawsql import Raw

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_RAW_IDLE_MAX = 16  # SQLite connections read_one keeps between calls
_PG_MIGRATION_LOCK = 0x59494E47  # "YING": advisory lock id held while migrating


def default_sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{Path(data_dir).resolve() / 'yingyun.db'}"


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None in memory or on PostgreSQL)."""
    if not normalise_url(url).startswith("sqlite"):
        return None
    db = make_url(url).database
    return Path(db) if db and db != ":memory:" else None


def normalise_url(url: str) -> str:
    # Operators write postgresql://; we speak psycopg 3.
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_engine(url: str, *, immediate: bool | None) -> Engine:
    """immediate=None: no BEGIN of ours; the caller opens and ends transactions."""
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Made here, owner-only, before SQLite would make it 0644: its -wal and
        # -shm files take the database file's mode, whatever the umask. Only when
        # missing (O_EXCL): closing any descriptor of a database file drops every
        # POSIX lock this process holds on it, so opening an existing one beside
        # live SQLite connections (a second engine in one process) corrupts it.
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        except FileExistsError:
            pass
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, pool_size=8, max_overflow=24,
                           hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    if immediate is not None:
        @event.listens_for(engine, "begin")
        def _on_begin(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """The index database: one engine for writes, one for reads (the same on PostgreSQL)."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self._write_lock = threading.Lock()
        self._lock_fd: int | None = None
        self._raw_idle: list[sqlite3.Connection] = []  # see read_one
        self._raw_lock = threading.Lock()
        self._write_conn: Connection | None = None  # SQLite: the one connection writes go through
        if self.is_sqlite:
            self.writer = _sqlite_engine(self.url, immediate=None)
            self.reader = _sqlite_engine(self.url, immediate=False)
            db = make_url(self.url).database
            if db and db != ":memory:":
                self._lock_fd = os.open(db + ".write-lock", os.O_RDWR | os.O_CREAT, 0o600)
        else:
            self.writer = create_engine(self.url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True,
                                        hide_parameters=True)
            self.reader = self.writer

    @property
    def dialect(self) -> str:
        return "sqlite" if self.is_sqlite else "postgresql"

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        if not self.is_sqlite:
            with self.writer.begin() as conn:
                yield conn
            return
        # SQLite takes one writer at a time anyway, so every write goes through one
        # connection kept open, in transactions opened and ended here: SQLAlchemy's
        # check-out, begin, commit and check-in cost more than a small transaction.
        with self._write_lock:
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                if self._write_conn is None:
                    self._write_conn = self.writer.connect().execution_options(isolation_level="AUTOCOMMIT")
                conn = self._write_conn
                dbapi = conn.connection.dbapi_connection
                if dbapi is None:  # SQLAlchemy detached it (invalidated): nothing to write through
                    raise RuntimeError("the SQLite write connection has no database connection")
                dbapi.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    dbapi.execute("COMMIT")  # durable on return: synchronous=FULL
                except BaseException:
                    self._settle_failed(conn, dbapi)
                    raise
                else:
                    conn.commit()  # SQLAlchemy's own bookkeeping; the database is committed above
            finally:
                if self._lock_fd is not None:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _settle_failed(self, conn: Connection, dbapi: DBAPIConnection) -> None:
        try:
            if dbapi.in_transaction:
                dbapi.execute("ROLLBACK")
            conn.rollback()
        except Exception:  # noqa: BLE001 - a connection in doubt is not used again
            self._write_conn = None
            conn.invalidate()

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with self.reader.connect() as conn:
            yield conn

    def read_one(self, raw: Raw, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """One row of a pre-written read, for paths that run it per received instance.

        On SQLite it runs on a raw connection kept aside for this (autocommit:
        each statement its own read snapshot), skipping the pool's check-out,
        check-in and reset, which cost more than the query."""
        row: tuple[Any, ...] | None  # a DB-API row: the drivers' fetchone is untyped
        if not self.is_sqlite:
            with self.read() as conn:
                row = raw.one(conn, params)
                return row
        with self._raw_lock:
            dbapi = self._raw_idle.pop() if self._raw_idle else None
        if dbapi is None:
            database = make_url(self.url).database
            if database is None:  # what sqlite3.connect(None) raises
                raise TypeError("read_one needs a SQLite database file, the URL names none")
            dbapi = sqlite3.connect(database, timeout=60, isolation_level=None, check_same_thread=False)
        try:
            cur = dbapi.execute(raw.sqlite, params)
            try:
                row = cur.fetchone()
                return row
            finally:
                cur.close()
        finally:
            with self._raw_lock:
                if len(self._raw_idle) < _RAW_IDLE_MAX:
                    self._raw_idle.append(dbapi)
                    dbapi = None
            if dbapi is not None:
                dbapi.close()

    def dispose(self) -> None:
        with self._write_lock:
            if self._write_conn is not None:
                self._write_conn.close()
                self._write_conn = None
        with self._raw_lock:
            idle, self._raw_idle = self._raw_idle, []
        for dbapi in idle:
            dbapi.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()

    # -- migrations ---------------------------------------------------------

    def revision(self) -> str | None:
        """The schema revision the database is at (None: never migrated)."""
        from alembic.runtime.migration import MigrationContext

        with self.read() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def migrate(self) -> None:
        """Bring the schema to head, safely when several processes start at once."""
        from alembic import command

        cfg = _alembic_config()
        if self.is_sqlite:
            with _file_lock(self._sqlite_lock_path()):
                engine = create_engine(self.url, poolclass=NullPool)
                try:
                    with engine.begin() as conn:
                        cfg.attributes["connection"] = conn
                        command.upgrade(cfg, "head")
                finally:
                    engine.dispose()
        else:
            engine = create_engine(self.url, poolclass=NullPool)
            try:
                with engine.connect() as lock_conn:
                    lock_conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                    lock_conn.commit()
                    try:
                        with engine.begin() as conn:
                            cfg.attributes["connection"] = conn
                            command.upgrade(cfg, "head")
                    finally:
                        lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                        lock_conn.commit()
            finally:
                engine.dispose()

    def schema_drift(self) -> list[Any]:
        """What Alembic's autogenerate finds between the database and
        `storage.schema` (empty when the migrations built exactly the declared
        tables, columns, types, indexes and constraints)."""
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        from .schema import metadata

        with self.read() as conn, warnings.catch_warnings():
            # SQLite cannot reflect expression indexes; the only ones are PostgreSQL's (schema/dicomweb.py).
            warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based index",
                                    UserWarning)
            context = MigrationContext.configure(conn, opts=comparison_options(self.dialect))
            return list(compare_metadata(context, metadata))

    def _sqlite_lock_path(self) -> Path:
        db = make_url(self.url).database or "memory"
        return Path(db + ".migrate-lock") if db != ":memory:" else Path(os.devnull)


def _alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def comparison_options(dialect: str) -> dict[str, Any]:
    """How autogenerate compares this schema (migrations/env.py, Database.schema_drift):
    SQLite stores INTEGER and BIGINT alike (1 to 8 bytes), so they are not a
    difference there (migration 0010 widens them on PostgreSQL only)."""

    def compare_type(_context: Any, _inspected_column: Any, _metadata_column: Any, inspected_type: Any,
                     metadata_type: Any) -> bool | None:
        if dialect == "sqlite" and isinstance(inspected_type, Integer) and isinstance(metadata_type, Integer):
            return False
        return None  # Alembic's own comparison

    return {"compare_type": compare_type}


def head_revision() -> str:
    """The schema revision this program expects (its newest migration)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def is_behind(revision: str) -> bool:
    """Whether `revision` is one of this program's migrations before its head
    (False for the head itself and for revisions this program does not know)."""
    from alembic.script import ScriptDirectory

    head = head_revision()
    script = ScriptDirectory.from_config(_alembic_config())
    return revision != head and any(rev.revision == revision for rev in script.walk_revisions(base="base", head=head))


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    if str(path) == os.devnull:
        yield
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
