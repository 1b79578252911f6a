"""A reading world over a real server (uvicorn on loopback), on SQLite and PostgreSQL.

Union u1 holds h1 and h3 (sending hospitals) and h2 (the reading centre); h9 is in no union. h1's studies are
routed to h2 (`ROUTE`); h3 has no route. Users (password `PASSWORD`): `rad`, `rad2` radiologists at h2, `rev`,
`rev2` reviewers at h2, `h2admin` admin of h2, `clin` clinician at h1, `rad9` radiologist at h9, `op` operator.
RIS partner `ris-h1` sends h1's studies; partner `ih` (granted u1) has a callback URL, so callbacks are queued.
The reading clock is the test's (`world.clock.advance`): a lock expires without waiting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import pytest
from pydicom.uid import ExplicitVRLittleEndian

from yingyun.archive.stability import StabilityMonitor
from yingyun.cloud.staff import accounts
from yingyun.cloud.staff.edge import CSRF_HEADER
from yingyun.dicomnet.status import Status

from ...support.dicom_peers import dataset_bytes, make_instance
from ...support.partners import PartnerClient
from ...support.servers import ServerThread
from ..hospital_api.conftest import FakeClock

PASSWORD = "correct horse battery"
ID_CARD = "11010519491231002X"
PHONE = "13800138000"
USERS = [("op", "运维", ["operator"]), ("rad", "王放射", ["radiologist:hospital:h2"]),
         ("rad2", "李放射", ["radiologist:hospital:h2"]), ("rev", "赵审核", ["reviewer:hospital:h2"]),
         ("rev2", "钱审核", ["reviewer:hospital:h2"]), ("h2admin", "二院管理员", ["admin:hospital:h2"]),
         ("clin", "一院临床", ["clinician:hospital:h1"]), ("rad9", "九院放射", ["radiologist:hospital:h9"]),
         ("u1admin", "联盟管理员", ["admin:union:u1"])]


def ok(r: httpx.Response):
    body = r.json()
    assert r.status_code == 200 and body["code"] == 0, body
    return body.get("data")


def code(r: httpx.Response) -> int:
    assert r.status_code == 200, r.text
    return r.json()["code"]


@dataclass
class World:
    url: str
    clock: FakeClock
    app: object
    runtime: object
    tmp_path: object
    ris: PartnerClient
    clients: list[httpx.Client] = field(default_factory=list)
    n: int = 0

    def sign_in(self, username: str) -> httpx.Client:
        c = httpx.Client(base_url=self.url, timeout=30)
        self.clients.append(c)
        body = c.post("/api/v1/session", json={"username": username, "password": PASSWORD}).json()
        assert body["code"] == 0, body
        c.headers[CSRF_HEADER] = body["data"]["csrfToken"]
        return c

    def client_like(self, other: httpx.Client) -> httpx.Client:
        """Another client with `other`'s session cookie and CSRF header (a second tab)."""
        c = httpx.Client(base_url=self.url, timeout=30, cookies=other.cookies, headers=other.headers)
        self.clients.append(c)
        return c

    def study(self, study_id: str, *, hospital: str = "h1", category: str | None = None, modality: str = "CT",
              id_card: str | None = ID_CARD, phone: str | None = PHONE, name: str = "张三丰",
              ris: bool = True) -> str:
        """A study sent by the hospital's RIS (unless `ris` is False) with two images, made stable; its UID."""
        self.n += 1
        uid = f"1.2.826.0.1.3680043.10.1404.77.{self.n}"
        if ris:
            body = {"patientId": "P-" + study_id, "patientName": name, "patientSex": "M", "studyId": study_id,
                    "accessNumber": "A-" + study_id, "modality": modality, "studyDate": "2026-11-20 09:30:00",
                    "studyDesc": "胸部CT平扫", "bodyPart": "胸部", "studyUid": uid, "patientAge": "56",
                    "patientAgeUnit": "Y"}
            if category:
                body["studyCategory"] = category
            if id_card:
                body["idCardNum"] = id_card
            if phone:
                body["phoneNum"] = phone
            client = self.ris if hospital == "h1" else self.partner_for(hospital)
            assert client.post("/ris/study/add", body)["code"] == 0
        series = f"{uid}.1"
        for i in range(2):
            path = self.tmp_path / f"{uid}-{i}.dcm"
            make_instance(path, index=i, study_uid=uid, series_uid=series)
            result = self.runtime.instances.store(hospital_id=hospital, data=dataset_bytes(path),
                                                  transfer_syntax_uid=ExplicitVRLittleEndian)
            assert result.status == Status.SUCCESS, result
        StabilityMonitor(self.runtime.db, stable_seconds=0,
                         on_stable=self.app.state.hospital_api.events.on_stable).run_once()
        return uid

    def partner_for(self, hospital: str) -> PartnerClient:
        _, token = self.runtime.tenancy.add_partner(app_id=f"ris-{hospital}", hospitals=[hospital])
        if token is None:
            raise AssertionError("partner exists")
        c = PartnerClient(self.url, f"ris-{hospital}", token)
        self.extra.append(c)
        return c

    extra: list[PartnerClient] = field(default_factory=list)


@pytest.fixture
def world(runtime, tmp_path):
    from yingyun.serve import create_app

    t = runtime.tenancy
    t.add_union(union_id="u1", name="联盟一")
    t.add_hospital(hospital_id="h1", name="第一医院", union_id="u1")
    t.add_hospital(hospital_id="h2", name="阅片中心", union_id="u1")
    t.add_hospital(hospital_id="h3", name="第三医院", union_id="u1")
    t.add_hospital(hospital_id="h9", name="第九医院")
    _, token = t.add_partner(app_id="ris-h1", hospitals=["h1"])
    t.add_partner(app_id="ih", unions=["u1"], callback_url="http://127.0.0.1:9/callback")
    with runtime.db.write() as conn:
        for username, name, roles in USERS:
            accounts.add_user(conn, vault=runtime.vault, username=username, name=name,
                              roles=[accounts.parse_role(r) for r in roles], password=PASSWORD)
    app = create_app(runtime)
    clock = FakeClock()
    app.state.reading.clock = clock
    server = ServerThread(app).start()
    assert token is not None
    w = World(server.url, clock, app, runtime, tmp_path, PartnerClient(server.url, "ris-h1", token))
    op = w.sign_in("op")
    ok(op.post("/api/v1/reading-routes", json={"fromHospitalId": "h1", "toHospitalId": "h2"}))
    yield w
    for c in w.clients:
        c.close()
    for p in [w.ris, *w.extra]:
        p.close()
    server.stop()
