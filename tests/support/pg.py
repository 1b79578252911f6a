"""A throwaway PostgreSQL server for the tests, started with initdb/pg_ctl.

PostgreSQL refuses to run as root, so as root it runs as the `postgres`
user (runuser). Each test that wants a database gets a fresh one: empty, or
already at the schema's head. Those are copies of a template migrated once
per server, so once per xdist worker (as warehouse's tests migrate once per
worker): CREATE DATABASE ... TEMPLATE copies a few MiB, where running every
migration costs each test about a second.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

from .net import free_port

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin")


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for d in PG_BIN_CANDIDATES:
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    raise RuntimeError(f"{name} not found: install PostgreSQL (make test does)")


class PostgresServer:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="yingyun-pg-"))
        self.datadir = self.root / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        os.chmod(self.root, 0o700)
        self._template: str | None = None
        self._template_lock = threading.Lock()

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> PostgresServer:
        self._run(_pg_bin("initdb"), "-D", str(self.datadir), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync")
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._run(_pg_bin("pg_ctl"), "-D", str(self.datadir), "-o", opts, "-l", str(self.root / "log"), "-w", "start")
        return self

    def stop(self) -> None:
        try:
            self._run(_pg_bin("pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, *, migrated: bool = False) -> str:
        """A new database: empty, or (`migrated`) with the schema at head and no rows but Alembic's."""
        template = self._migrated_template() if migrated else None
        return self.url(self._create(template))

    def _create(self, template: str | None) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return name

    def _migrated_template(self) -> str:
        from yingyun.storage.db import Database

        with self._template_lock:
            if self._template is None:
                name = self._create(None)
                db = Database(self.url(name))
                try:
                    db.migrate()
                finally:
                    db.dispose()  # a template with a connection open cannot be copied
                self._template = name
            return self._template
