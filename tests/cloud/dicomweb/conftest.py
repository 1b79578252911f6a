"""A running Yingyun with a small multi-hospital archive, shared by a test module.

Hospitals h1 and h2 are in union u1, h3 in union u2. Studies:
  zhang  (h1) Zhang^Sanfeng=张^三丰, PID1, 2026-11-20 09:30, CT: 2 series x 3 images
  wang   (h1) Wang^XiaoDong=王^小東, PID2, 2026-10-05 14:00, MR: 1 series x 2 images + 1 SR
  li     (h2) Li^Si=李^四,          PID3, 2025-01-01 08:00, CR: 1 series x 1 image
  zhao   (h3) Zhao^Liu=赵^六,       PID4, 2026-11-21 10:00, CT: 1 series x 1 image
  gone   (h1) Deleted^Patient,      PID5, a study the RIS deleted (linked by studyUid)
Callers: partner ris-h1 (h1), partner union-u1 (union u1), partner off (disabled, h1),
bearer tokens ops-h1 (h1), ops-all (every hospital), ops-h2h3 (h2 and h3).
Every module gets it on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from yingyun.archive.instances import InstanceStore
from yingyun.cloud.dicomweb import TokenRegistry
from yingyun.contract.signing import signed_headers
from yingyun.core.dicom import read_file_info
from yingyun.runtime import Runtime
from yingyun.serve import create_app
from yingyun.settings import Settings
from yingyun.storage.db import default_sqlite_url

from ...support.dicom_data import StudySpec, make, make_study, uid
from ...support.partners import PartnerClient
from ...support.servers import ServerThread

VIEWER_ORIGIN = "http://viewer.example.test"


@dataclass
class Archive:
    url: str  # server root
    runtime: Runtime
    tokens: dict[str, str]
    partners: dict[str, str]  # appId -> token
    studies: dict[str, StudySpec]
    files: dict[str, list[Path]]
    hospital_of: dict[str, str]
    extra: dict = field(default_factory=dict)

    @property
    def dw(self) -> str:
        return self.url + "/dicomweb"

    def bearer(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def signed(self, app_id: str) -> dict[str, str]:
        return signed_headers(app_id, self.partners[app_id])

    def get(self, path: str, who: str = "ops-all", **kw) -> httpx.Response:
        headers = {**self.bearer(who), **kw.pop("headers", {})}
        return httpx.get(self.dw + path, headers=headers, timeout=30, **kw)


def _store_files(store: InstanceStore, hospital: str, paths: list[Path]) -> None:
    for p in paths:
        data = p.read_bytes()
        info = read_file_info(data)
        res = store.store(hospital_id=hospital, data=memoryview(data)[info.dataset_offset:],
                          transfer_syntax_uid=info.transfer_syntax_uid, sop_class_uid=info.sop_class_uid,
                          sop_instance_uid=info.sop_instance_uid, source_ae="PACS1")
        assert res.outcome == "stored", res


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def archive(request, tmp_path_factory) -> Archive:
    root = tmp_path_factory.mktemp("dicomweb")
    if request.param == "sqlite":
        url = default_sqlite_url(root / "data")
    else:
        url = request.getfixturevalue("pg_server").create_database(migrated=True)
    settings = Settings(data_dir=root / "data", database_url=url, public_url="https://film.example.test",
                        cors_origins=[VIEWER_ORIGIN])
    rt = Runtime.open(settings, create_keys=True, migrate=True)
    t = rt.tenancy
    t.add_union(union_id="u1", name="联盟一")
    t.add_union(union_id="u2", name="联盟二")
    t.add_hospital(hospital_id="h1", name="第一医院", union_id="u1")
    t.add_hospital(hospital_id="h2", name="第二医院", union_id="u1")
    t.add_hospital(hospital_id="h3", name="第三医院", union_id="u2")
    partners = {}
    partners["ris-h1"] = t.add_partner(app_id="ris-h1", hospitals=["h1"])[1]
    partners["union-u1"] = t.add_partner(app_id="union-u1", unions=["u1"])[1]
    partners["off"] = t.add_partner(app_id="off", hospitals=["h1"])[1]
    t.set_partner_enabled(app_id="off", enabled=False)
    reg = TokenRegistry(rt.db)
    tokens = {"ops-h1": reg.add(name="ops-h1", hospitals=["h1"]),
              "ops-all": reg.add(name="ops-all", all_hospitals=True),
              "ops-h2h3": reg.add(name="ops-h2h3", hospitals=["h2", "h3"])}
    specs = {
        "zhang": StudySpec(accession="ACC1", patient_id="PID1", patient_name="Zhang^Sanfeng=张^三丰",
                           study_date="20261120", study_time="093000", modality="CT"),
        "wang": StudySpec(accession="ACC2", patient_id="PID2", patient_name="Wang^XiaoDong=王^小東",
                          study_date="20261005", study_time="140000", modality="MR"),
        "li": StudySpec(accession="ACC3", patient_id="PID3", patient_name="Li^Si=李^四", study_date="20250101",
                        study_time="080000", modality="CR"),
        "zhao": StudySpec(accession="ACC4", patient_id="PID4", patient_name="Zhao^Liu=赵^六", study_date="20261121",
                          study_time="100000", modality="CT"),
        "gone": StudySpec(accession="ACC5", patient_id="PID5", patient_name="Deleted^Patient", study_date="20261122",
                          study_time="110000", modality="CT"),
    }
    hospital_of = {"zhang": "h1", "wang": "h1", "li": "h2", "zhao": "h3", "gone": "h1"}
    files = {
        "zhang": make_study(root / "f" / "zhang", specs["zhang"], series=2, per_series=3),
        "wang": make_study(root / "f" / "wang", specs["wang"], series=1, per_series=2, sr=1),
        "li": make_study(root / "f" / "li", specs["li"], series=1, per_series=1),
        "zhao": make_study(root / "f" / "zhao", specs["zhao"], series=1, per_series=1),
        "gone": make_study(root / "f" / "gone", specs["gone"], series=1, per_series=1),
    }
    app = create_app(rt)
    server = ServerThread(app).start()
    # The RIS registers "gone" and then deletes it: its images must vanish from DICOMweb.
    ris = PartnerClient(server.url, "ris-h1", partners["ris-h1"])
    body = {"patientId": "PID5", "patientName": "Deleted Patient", "patientSex": "M", "studyId": "S-GONE",
            "accessNumber": "ACC5", "modality": "CT", "studyUid": specs["gone"].study_uid}
    assert ris.post("/ris/study/add", body)["code"] == 0
    for name, paths in files.items():
        _store_files(rt.instances, hospital_of[name], paths)
    assert ris.post("/ris/study/delete", {"patientId": "PID5", "studyId": "S-GONE", "accessNumber": "ACC5",
                                          "studyUid": specs["gone"].study_uid})["code"] == 0
    ris.close()
    yield Archive(url=server.url, runtime=rt, tokens=tokens, partners=partners, studies=specs, files=files,
                  hospital_of=hospital_of, extra={"app": app})
    server.stop()
    rt.close()


__all__ = ["Archive", "VIEWER_ORIGIN", "make", "uid"]
