"""A running cloud with the reading viewer, one hospital's small CT study and two staff users (SQLite: the
session and gate rules are run on both databases in tests/cloud/dicomweb/test_session.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from yingyun.cloud import viewer
from yingyun.cloud.staff import accounts
from yingyun.core.dicom import read_file_info
from yingyun.runtime import Runtime
from yingyun.settings import Settings
from yingyun.storage.db import default_sqlite_url

from ...support.dicom_data import StudySpec, make_study
from ...support.servers import ServerThread

PASSWORD = "correct horse battery"


@dataclass
class ViewerWorld:
    url: str
    runtime: Runtime
    study: str  # h1's study
    other: str  # h3's study


def store(runtime: Runtime, hospital: str, files) -> None:
    for p in files:
        data = p.read_bytes()
        info = read_file_info(data)
        assert runtime.instances.store(hospital_id=hospital, data=memoryview(data)[info.dataset_offset:],
                                       transfer_syntax_uid=info.transfer_syntax_uid).outcome == "stored"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    if viewer.find_build() is None:
        pytest.fail("OHIF's build is not installed: run `make assets`")
    from yingyun.serve import create_app

    root = tmp_path_factory.mktemp("viewer")
    settings = Settings(data_dir=root / "data", database_url=default_sqlite_url(root / "data"))
    rt = Runtime.open(settings, create_keys=True, migrate=True)
    rt.tenancy.add_hospital(hospital_id="h1", name="第一医院")
    rt.tenancy.add_hospital(hospital_id="h3", name="第三医院")
    with rt.db.write() as conn:
        for username, role in [("rad1", "radiologist:hospital:h1"), ("rad3", "radiologist:hospital:h3")]:
            accounts.add_user(conn, vault=rt.vault, username=username, name="读片医生",
                              roles=[accounts.parse_role(role)], password=PASSWORD)
    mine = StudySpec(patient_name="Viewer^Test=看^图", patient_id="PVIEW", accession="AVIEW")
    theirs = StudySpec(patient_name="Other^Hospital", patient_id="POTHER", accession="AOTHER")
    store(rt, "h1", make_study(root / "h1", mine, series=1, per_series=3))
    store(rt, "h3", make_study(root / "h3", theirs, series=1, per_series=1))
    server = ServerThread(create_app(rt)).start()
    yield ViewerWorld(server.url, rt, mine.study_uid, theirs.study_uid)
    server.stop()
    rt.close()
