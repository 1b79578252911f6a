"""The staff world (tests/cloud/staff) with readers of the reading page, and a study of h1 with its report."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ...support.partners import PartnerClient
from ..staff.conftest import add_users, staff_world  # noqa: F401  (a fixture, used by name)

STUDY_UID = "1.2.826.0.1.3680043.10.15.7.1"
STUDY = {"patientId": "PID-0042", "patientName": "张三丰", "patientSex": "M", "patientAge": "45",
         "patientAgeUnit": "Y", "studyId": "S15", "accessNumber": "ACC-1507", "modality": "CT", "bodyPart": "胸部",
         "studyDesc": "胸部CT平扫", "studyDate": "2026-11-20 09:30:00", "studyUid": STUDY_UID, "examDept": "放射科",
         "inpatientNum": "ZY-778899", "clinicNum": "MZ-112233"}
REPORT = {"reportNumber": "R-S15", "studyId": "S15", "accessNumber": "ACC-1507",
          "imageDescription": "双肺纹理清晰，未见明确实质性病变。", "conclusion": "胸部CT平扫未见明显异常。",
          "reportDoctor": "李医生", "reportTime": "2026-11-20 10:00:00", "auditDoctor": "王主任",
          "auditTime": "2026-11-20 10:30:00"}


@dataclass
class Sent:
    world: object
    ris: PartnerClient


@pytest.fixture
def sent(staff_world):  # noqa: F811  (the fixture imported above)
    """h1's RIS sent STUDY and its REPORT; `rad1` is a radiologist of h1, `rev1` a reviewer of h1, `h3doc` a
    clinician of h3 (outside u1)."""
    rt = staff_world.runtime
    add_users(rt, [("rad1", "读片医生", ["radiologist:hospital:h1"]), ("rev1", "审核医生", ["reviewer:hospital:h1"]),
                   ("h3doc", "三院临床", ["clinician:hospital:h3"])])
    _, token = rt.tenancy.add_partner(app_id="ris-h1", hospitals=["h1"])
    ris = PartnerClient(staff_world.url, "ris-h1", token)
    assert ris.post("/ris/study/add", STUDY)["code"] == 0
    assert ris.post("/ris/report/add", REPORT)["code"] == 0
    yield Sent(staff_world, ris)
    ris.close()
