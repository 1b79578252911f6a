"""Migration 0012 makes every doctor that exists before it a user (issue 14 item 1), on both databases."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, insert, select
from sqlalchemy.pool import NullPool

from yingyun.storage import schema as s
from yingyun.storage.db import _alembic_config, default_sqlite_url, normalise_url


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_existing_doctors_become_users_without_a_password(dialect, tmp_path, request) -> None:
    url = (default_sqlite_url(tmp_path) if dialect == "sqlite"
           else request.getfixturevalue("pg_server").create_database())
    cfg = _alembic_config()
    before = ScriptDirectory.from_config(cfg).get_revision("0012").down_revision
    engine = create_engine(normalise_url(url), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, before)
            conn.execute(insert(s.hospitals).values(id="h1", name="第一医院", enabled=True, created_at=0, updated_at=0))
            conn.execute(insert(s.doctors).values(id="d1", name="王医生", hospital_id="h1", created_at=0,
                                                  updated_at=0))
            command.upgrade(cfg, "0012")
            user = conn.execute(select(s.users)).one()
            roles = conn.execute(select(s.user_roles)).all()
    finally:
        engine.dispose()
    assert (user.username, user.name, user.password_hash, user.enabled) == ("d1", "王医生", None, True)
    assert [(r.username, r.role, r.scope_kind, r.scope_id) for r in roles] == [("d1", "clinician", "hospital", "h1")]
