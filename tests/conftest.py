from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from yingyun.runtime import Runtime
from yingyun.settings import Settings
from yingyun.storage.db import Database, default_sqlite_url

from .support.partners import PartnerClient
from .support.pg import PostgresServer
from .support.servers import ServerThread

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def pg_server():
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite database at the schema's head, migrated once per xdist worker."""
    folder = tmp_path_factory.mktemp("sqlite-template")
    db = Database(default_sqlite_url(folder))
    try:
        db.migrate()
    finally:
        db.dispose()
    return folder / "yingyun.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A database of the test's own, already at the schema's head: a copy of one migrated
    once per worker (running every migration cost each test one to two seconds)."""
    if request.param == "postgresql":
        return request.getfixturevalue("pg_server").create_database(migrated=True)
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    copy = data / "yingyun.db"
    os.close(os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # owner-only, as Database makes it
    template = request.getfixturevalue("sqlite_template")
    with closing(sqlite3.connect(template)) as src, closing(sqlite3.connect(copy)) as dst:
        src.backup(dst)
    return default_sqlite_url(data)


@pytest.fixture
def settings(tmp_path, database_url) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, public_url="https://film.example.test")


@pytest.fixture
def runtime(settings):
    rt = Runtime.open(settings, create_keys=True, migrate=True)
    yield rt
    rt.close()


@pytest.fixture
def tenant(runtime):
    t = runtime.tenancy
    t.add_union(union_id="u1", name="联盟一")
    t.add_hospital(hospital_id="h1", name="第一医院", union_id="u1")
    _, token = t.add_partner(app_id="ris-h1", hospitals=["h1"])
    return {"hospital": "h1", "app_id": "ris-h1", "token": token}


@pytest.fixture
def app_server(runtime):
    from yingyun.serve import create_app

    s = ServerThread(create_app(runtime)).start()
    yield s
    s.stop()


@pytest.fixture
def ris(app_server, tenant):
    client = PartnerClient(app_server.url, tenant["app_id"], tenant["token"])
    yield client
    client.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def large_files_dropped(tmp_path):
    """For tests that write hundreds of MiB of DICOM: those files go when the test ends
    (pytest keeps the temporary folders of the last three runs)."""
    yield tmp_path
    for path in tmp_path.rglob("*.dcm"):
        if path.is_file() and path.stat().st_size > 2**20:
            path.unlink()
