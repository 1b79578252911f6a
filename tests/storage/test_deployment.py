"""The keys' fingerprint in the database (storage/deployment.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import delete, select

from yingyun.core.crypto import Keys
from yingyun.runtime import OpenRefused, Runtime
from yingyun.settings import Settings
from yingyun.storage import deployment
from yingyun.storage import schema as s


def other_keys() -> Keys:
    return Keys(os.urandom(32), os.urandom(32))


def test_the_first_keys_are_recorded_and_others_refused(runtime):
    with runtime.db.read() as conn:
        fingerprint = deployment.fact(conn, deployment.KEY_FINGERPRINT)  # recorded by the fixture's open
    assert fingerprint is not None
    with pytest.raises(deployment.KeysMismatch, match="data key and hash key differ"):
        deployment.check_keys(runtime.db, other_keys())
    with runtime.db.read() as conn:
        assert deployment.fact(conn, deployment.KEY_FINGERPRINT) == fingerprint


def test_the_fingerprint_names_the_key_that_differs():
    a = Keys.generate()
    assert a.fingerprint() == Keys(a.data_key, a.hash_key).fingerprint()
    assert a.data_key.hex() not in a.fingerprint() and a.hash_key.hex() not in a.fingerprint()
    half = Keys(a.data_key, os.urandom(32)).fingerprint()
    assert half.split(":")[0] == a.fingerprint().split(":")[0] and half != a.fingerprint()


def forget_fingerprint(runtime) -> None:
    """As a database written before fingerprints were kept."""
    with runtime.db.write() as conn:
        conn.execute(delete(s.deployment))


def test_a_database_from_before_fingerprints_is_checked_against_its_data(runtime, tenant):
    from yingyun.core.crypto import load_keys

    keys = load_keys(runtime.settings.data_dir)
    runtime.tenancy.add_gateway(gateway_id="gw1", hospital_id="h1", key="k" * 40)
    forget_fingerprint(runtime)
    with pytest.raises(deployment.KeysMismatch, match="data key differs"):
        deployment.check_keys(runtime.db, other_keys())
    with runtime.db.read() as conn:
        assert deployment.fact(conn, deployment.KEY_FINGERPRINT) is None  # refused keys are never recorded
    deployment.check_keys(runtime.db, keys)
    with runtime.db.read() as conn:
        assert deployment.fact(conn, deployment.KEY_FINGERPRINT) == keys.fingerprint()


def test_the_hash_key_is_checked_against_a_stored_identity(runtime, ris):
    from yingyun.core.crypto import load_keys

    keys = load_keys(runtime.settings.data_dir)
    assert ris.post("/ris/study/add", {"patientId": "P1", "patientName": "张三", "patientSex": "M", "studyId": "S1",
                                       "accessNumber": "A1", "modality": "CT", "phoneNum": "13800138000"})["code"] == 0
    with runtime.db.read() as conn:
        assert conn.execute(select(s.studies.c.phone_hash)).scalar() is not None
    forget_fingerprint(runtime)
    with pytest.raises(deployment.KeysMismatch, match="^hash key differs"):
        deployment.check_keys(runtime.db, Keys(keys.data_key, os.urandom(32)))
    deployment.check_keys(runtime.db, keys)


def test_every_process_that_opens_the_database_checks_the_keys(runtime, monkeypatch):
    """Receivers and HTTP workers open like admin commands: other keys are refused at once."""
    monkeypatch.setenv("YINGYUN_DATA_KEY", os.urandom(32).hex())
    monkeypatch.setenv("YINGYUN_HASH_KEY", os.urandom(32).hex())
    settings = Settings(data_dir=runtime.settings.data_dir, database_url=runtime.settings.database_url)
    with pytest.raises(OpenRefused, match="do not match the database"):
        Runtime.open(settings, create_keys=False, migrate=False)
    with pytest.raises(OpenRefused, match="do not match the database"):
        Runtime.open(settings, create_keys=True, migrate=True)
