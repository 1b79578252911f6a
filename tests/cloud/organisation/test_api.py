"""The organisation API (issue 14 item 3): every noun's operations, every code, scopes, and refusals to orphan.

Run on SQLite and PostgreSQL over a real server (tests/cloud/staff/conftest.py: union u1 holds h1 and h2,
h3 is in none; `op` operator, `u1admin` admin of u1, `h1admin` admin of h1, `reader` clinician at h2).
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from yingyun.contract.codes import Code
from yingyun.storage import schema as s


def ok(r: httpx.Response) -> object:
    body = r.json()
    assert r.status_code == 200 and body["code"] == 0, body
    return body.get("data")


def code(r: httpx.Response) -> int:
    body = r.json()
    assert r.status_code == 200, r.text
    return body["code"]


@pytest.fixture
def op(staff_world) -> httpx.Client:
    return staff_world.sign_in("op")[0]


def _equipment(op: httpx.Client) -> None:
    ok(op.post("/api/v1/device-types", json={"id": "ct", "name": "GE Revolution CT", "modality": "CT"}))
    ok(op.post("/api/v1/departments", json={"id": "rad1", "hospitalId": "h1", "name": "放射科"}))
    ok(op.post("/api/v1/devices", json={"id": "ct1", "hospitalId": "h1", "name": "CT-1", "deviceTypeId": "ct",
                                        "departmentId": "rad1"}))


def test_the_operator_creates_reads_changes_and_lists_every_noun(staff_world, op) -> None:
    union = ok(op.post("/api/v1/unions", json={"id": "u2", "name": "联盟二"}))
    assert union == {"id": "u2", "name": "联盟二"}
    hospital = ok(op.post("/api/v1/hospitals", json={"id": "h4", "name": "第四医院", "unionId": "u2"}))
    assert hospital == {"id": "h4", "name": "第四医院", "unionId": "u2", "enabled": True}
    department = ok(op.post("/api/v1/departments", json={"hospitalId": "h4", "name": "放射科"}))
    assert department["hospitalId"] == "h4" and department["id"]  # the id is generated when not given
    dtype = ok(op.post("/api/v1/device-types", json={"name": "GE Revolution CT", "modality": "ct"}))
    assert dtype["modality"] == "CT"
    device = ok(op.post("/api/v1/devices", json={
        "hospitalId": "h4", "name": "CT-1", "deviceTypeId": dtype["id"], "departmentId": department["id"]}))
    assert device["modality"] == "CT" and device["aeTitle"] is None
    doctor = ok(op.post("/api/v1/doctors", json={"doctorId": "d1", "name": "王医生", "hospitalId": "h4",
                                                 "title": "主任医师"}))
    assert doctor == {"doctorId": "d1", "name": "王医生", "hospitalId": "h4", "title": "主任医师", "dept": None}
    user = ok(op.post("/api/v1/users", json={"username": "h4admin", "name": "四院管理员",
                                             "roles": [{"role": "admin", "scope": "hospital:h4"}],
                                             "password": "a long password 4"}))
    assert user["roles"] == [{"role": "admin", "scope": "hospital:h4"}]
    partner = ok(op.post("/api/v1/partners", json={"appId": "ih1", "hospitals": ["h4"]}))
    assert len(partner["token"]) == 32 and partner["hospitals"] == ["h4"]
    assert "token" not in ok(op.get("/api/v1/partners/ih1"))  # shown once
    rotated = ok(op.post("/api/v1/partners/ih1/rotate"))
    assert rotated["token"] != partner["token"] and ok(op.get("/api/v1/partners/ih1"))["liveTokens"] == 2
    pacs = ok(op.post("/api/v1/pacs", json={"aeTitle": "PACS4", "host": "10.0.0.4", "port": 104,
                                            "hospitalId": "h4"}))
    assert pacs == {"aeTitle": "PACS4", "host": "10.0.0.4", "port": 104, "hospitalId": "h4", "deviceId": None}
    gateway = ok(op.post("/api/v1/gateways", json={"id": "gw4", "hospitalId": "h4"}))
    assert len(gateway["key"]) >= 32 and "key" not in ok(op.get("/api/v1/gateways/gw4"))

    assert ok(op.patch("/api/v1/hospitals/h4", json={"name": "第四人民医院"}))["name"] == "第四人民医院"
    assert ok(op.patch(f"/api/v1/devices/{device['id']}", json={"modality": "PT"}))["modality"] == "PT"
    assert ok(op.patch("/api/v1/doctors/d1", json={"dept": "放射科"}))["dept"] == "放射科"
    assert ok(op.patch("/api/v1/users/h4admin", json={"name": "管理员"}))["name"] == "管理员"

    page = ok(op.get("/api/v1/hospitals", params={"limit": 2, "offset": 1}))
    assert page["total"] == 4 and [h["id"] for h in page["items"]] == ["h2", "h3"]
    assert ok(op.get("/api/v1/hospitals", params={"q": "四人民"}))["items"][0]["id"] == "h4"
    assert ok(op.get("/api/v1/devices", params={"hospitalId": "h1"})) == {"items": [], "total": 0}
    for path, total in [("unions", 2), ("departments", 1), ("device-types", 1), ("devices", 1), ("partners", 1),
                        ("pacs", 1), ("gateways", 1)]:
        assert ok(op.get(f"/api/v1/{path}"))["total"] == total, path
    assert ok(op.get("/api/v1/doctors", params={"q": "王"}))["total"] == 1
    assert ok(op.get("/api/v1/users", params={"q": "h4admin"}))["total"] == 1

    # Every change is in the staff audit, with the fields it sent and never their values.
    with staff_world.runtime.db.read() as conn:
        rows = conn.execute(select(s.staff_audit.c.action, s.staff_audit.c.subject_id, s.staff_audit.c.detail)
                            .where(s.staff_audit.c.username == "op")).all()
    actions = {(r.action, r.subject_id) for r in rows}
    assert {("unions.create", "u2"), ("hospitals.update", "h4"), ("users.create", "h4admin"),
            ("partners.rotate", "ih1")} <= actions
    assert not any("password" in (r.detail or "") and "a long password" in (r.detail or "") for r in rows)


def test_a_device_with_an_ae_title_is_a_pacs_peer_while_it_is_enabled(staff_world, op) -> None:
    tenancy = staff_world.runtime.tenancy
    _equipment(op)
    ok(op.patch("/api/v1/devices/ct1", json={"aeTitle": "CT1", "host": "127.0.0.1"}))
    assert ok(op.get("/api/v1/pacs/CT1")) == {"aeTitle": "CT1", "host": "127.0.0.1", "port": 104,
                                              "hospitalId": "h1", "deviceId": "ct1"}
    assert tenancy.pacs()["CT1"].hospital_id == "h1"  # what the DICOM port reads
    # Its registration is the device's: the PACS API may not take it away or over.
    assert code(op.delete("/api/v1/pacs/CT1")) == Code.INVALID_DATA
    assert code(op.post("/api/v1/pacs", json={"aeTitle": "CT1", "host": "h", "port": 104, "hospitalId": "h1"})
                ) == Code.DUPLICATE_DATA
    assert code(op.post("/api/v1/devices", json={"hospitalId": "h1", "name": "CT-2", "deviceTypeId": "ct",
                                                 "aeTitle": "CT1", "host": "10.0.0.2"})) == Code.DUPLICATE_DATA
    ok(op.patch("/api/v1/devices/ct1", json={"enabled": False}))
    assert "CT1" not in tenancy.pacs()
    ok(op.patch("/api/v1/devices/ct1", json={"enabled": True, "aeTitle": "CT1B"}))
    assert set(tenancy.pacs()) == {"CT1B"}
    ok(op.delete("/api/v1/devices/ct1"))
    assert tenancy.pacs() == {}


def test_duplicate_names_answer_their_codes(op) -> None:
    _equipment(op)
    ok(op.post("/api/v1/doctors", json={"doctorId": "d1", "name": "王医生", "hospitalId": "h1"}))
    cases = [
        ("hospitals", {"id": "h9", "name": "第一医院"}, Code.INSTITUTION_NAME_USED),
        ("hospitals", {"id": "h1", "name": "另一家"}, Code.INSTITUTION_NAME_USED),
        ("unions", {"id": "u9", "name": "联盟一"}, Code.UNION_NAME_EXISTS),
        ("departments", {"hospitalId": "h1", "name": "放射科"}, Code.DEPARTMENT_EXISTS),
        ("devices", {"hospitalId": "h1", "name": "CT-1", "deviceTypeId": "ct"}, Code.DEVICE_NAME_EXISTS),
        ("device-types", {"name": "GE Revolution CT"}, Code.DEVICE_TYPE_EXISTS),
        ("doctors", {"doctorId": "d1", "name": "李医生", "hospitalId": "h1"}, Code.DOCTOR_EXISTS),
        ("users", {"username": "reader", "name": "x", "roles": [{"role": "clinician", "scope": "hospital:h1"}]},
         Code.USER_EXISTS),
    ]
    for path, body, expected in cases:
        r = op.post(f"/api/v1/{path}", json=body)
        assert code(r) == expected, (path, r.json())
    # The same name in another hospital is another department, and renaming onto a taken name is refused too.
    ok(op.post("/api/v1/departments", json={"hospitalId": "h2", "name": "放射科"}))
    assert code(op.patch("/api/v1/hospitals/h2", json={"name": "第一医院"})) == Code.INSTITUTION_NAME_USED
    message = op.post("/api/v1/unions", json={"name": "联盟一"}).json()["message"]
    assert message.startswith("医联体名称已存在") and "联盟一" in message


def test_unknown_objects_answer_their_codes(op) -> None:
    _equipment(op)
    for path, expected in [("hospitals", Code.INSTITUTION_NOT_FOUND), ("unions", Code.UNION_NOT_FOUND),
                           ("departments", Code.DEPARTMENT_NOT_FOUND), ("devices", Code.DEVICE_NOT_FOUND),
                           ("device-types", Code.DEVICE_TYPE_NOT_FOUND), ("doctors", Code.DOCTOR_NOT_FOUND),
                           ("users", Code.USER_NOT_FOUND)]:
        for r in (op.get(f"/api/v1/{path}/nope"), op.patch(f"/api/v1/{path}/nope", json={}),
                  op.delete(f"/api/v1/{path}/nope")):
            assert code(r) == expected, (path, r.request.method, r.json())
    # …and when a body names them.
    assert code(op.post("/api/v1/departments", json={"hospitalId": "h9", "name": "x"})) == Code.INSTITUTION_NOT_FOUND
    assert code(op.post("/api/v1/hospitals", json={"name": "新医院", "unionId": "u9"})) == Code.UNION_NOT_FOUND
    assert code(op.post("/api/v1/devices", json={"hospitalId": "h1", "name": "MR-1", "deviceTypeId": "mr"})
                ) == Code.DEVICE_TYPE_NOT_FOUND
    assert code(op.post("/api/v1/devices", json={"hospitalId": "h1", "name": "MR-1", "deviceTypeId": "ct",
                                                 "departmentId": "nope"})) == Code.DEPARTMENT_NOT_FOUND
    assert code(op.post("/api/v1/devices", json={"hospitalId": "h2", "name": "MR-1", "deviceTypeId": "ct",
                                                 "departmentId": "rad1"})) == Code.DEPARTMENT_NOT_FOUND


def test_malformed_and_missing_fields(op) -> None:
    _equipment(op)
    malformed = [
        op.get("/api/v1/hospitals", params={"limit": "ten"}),
        op.get("/api/v1/hospitals", params={"limit": 0}),
        op.get("/api/v1/hospitals", params={"offset": -1}),
        op.post("/api/v1/unions", json={"name": 5}),
        op.post("/api/v1/unions", json={"name": "联盟九", "colour": "red"}),  # an unknown field is not ignored
        op.post("/api/v1/unions", json=["not", "an", "object"]),
        op.post("/api/v1/unions", content=b"{not json", headers={"content-type": "application/json"}),
        op.post("/api/v1/hospitals", json={"id": "a/b", "name": "斜杠医院"}),
        op.patch("/api/v1/hospitals/h1", json={"enabled": "no"}),
        op.post("/api/v1/pacs", json={"aeTitle": "A" * 17, "host": "h", "port": 104, "hospitalId": "h1"}),
        op.post("/api/v1/pacs", json={"aeTitle": "P1", "host": "h", "port": 70000, "hospitalId": "h1"}),
        op.post("/api/v1/device-types", json={"name": "X", "modality": "c-t"}),
        op.patch("/api/v1/departments/rad1", json={"hospitalId": "h2"}),
        op.post("/api/v1/users", json={"username": "x1", "name": "X", "roles": [{"role": "wizard"}]}),
    ]
    for r in malformed:
        assert code(r) == Code.INVALID_FORMAT, (r.request.method, r.request.url, r.json())
    missing = [
        op.post("/api/v1/unions", json={}),
        op.post("/api/v1/hospitals", json={"name": "  "}),
        op.post("/api/v1/departments", json={"name": "超声科"}),
        op.post("/api/v1/devices", json={"hospitalId": "h1", "name": "US-1"}),
        op.post("/api/v1/devices", json={"hospitalId": "h1", "name": "US-1", "deviceTypeId": "ct",
                                         "aeTitle": "US1"}),  # an AE title needs the host it sends from
        op.post("/api/v1/pacs", json={"aeTitle": "P1", "host": "h", "hospitalId": "h1"}),
        op.post("/api/v1/users", json={"username": "x1", "name": "X"}),
        op.patch("/api/v1/unions/u1", json={"name": ""}),
    ]
    for r in missing:
        assert code(r) == Code.REQUIRED_EMPTY, (r.request.method, r.request.url, r.json())
    assert ok(op.get("/api/v1/unions/u1")) == {"id": "u1", "name": "联盟一"}  # nothing half-written


def test_removing_what_still_holds_data_is_refused_with_the_reason(op) -> None:
    _equipment(op)
    r = op.delete("/api/v1/hospitals/h1").json()
    assert r["code"] == Code.INVALID_DATA and "1 department (rad1)" in r["message"] and "1 device (ct1)" in r["message"]
    r = op.delete("/api/v1/device-types/ct").json()
    assert r["code"] == Code.INVALID_DATA and "1 device (ct1)" in r["message"]
    r = op.delete("/api/v1/departments/rad1").json()
    assert r["code"] == Code.INVALID_DATA and "ct1" in r["message"]
    r = op.delete("/api/v1/unions/u1").json()
    assert r["code"] == Code.INVALID_DATA and "h1" in r["message"] and "(u1admin)" in r["message"]
    r = op.delete("/api/v1/hospitals/h2").json()  # no data, but a user's role would be left pointing nowhere
    assert r["code"] == Code.INVALID_DATA and "1 user with a role there (reader)" in r["message"]
    # Disabled instead: nothing is deleted.
    assert ok(op.patch("/api/v1/hospitals/h1", json={"enabled": False}))["enabled"] is False
    assert ok(op.patch("/api/v1/device-types/ct", json={"enabled": False}))["enabled"] is False
    assert ok(op.get("/api/v1/devices/ct1"))["deviceTypeId"] == "ct"
    # Once nothing holds them, they go.
    ok(op.delete("/api/v1/devices/ct1"))
    ok(op.delete("/api/v1/device-types/ct"))
    ok(op.delete("/api/v1/departments/rad1"))
    assert code(op.delete("/api/v1/hospitals/h3")) == 0
    assert code(op.get("/api/v1/hospitals/h3")) == Code.INSTITUTION_NOT_FOUND


def test_a_hospital_admin_sees_and_changes_only_their_hospital(staff_world, op) -> None:
    _equipment(op)
    ok(op.post("/api/v1/departments", json={"id": "rad2", "hospitalId": "h2", "name": "放射科"}))
    h1, _ = staff_world.sign_in("h1admin")
    assert [h["id"] for h in ok(h1.get("/api/v1/hospitals"))["items"]] == ["h1"]
    assert [d["id"] for d in ok(h1.get("/api/v1/departments"))["items"]] == ["rad1"]
    assert ok(h1.get("/api/v1/unions"))["items"] == [{"id": "u1", "name": "联盟一"}]
    assert {u["username"] for u in ok(h1.get("/api/v1/users"))["items"]} == {"h1admin"}
    outside = [
        h1.get("/api/v1/hospitals/h2"),
        h1.get("/api/v1/departments/rad2"),
        h1.patch("/api/v1/hospitals/h2", json={"name": "改名"}),
        h1.post("/api/v1/departments", json={"hospitalId": "h2", "name": "超声科"}),
        h1.delete("/api/v1/departments/rad2"),
        h1.post("/api/v1/device-types", json={"name": "Philips MR", "modality": "MR"}),  # the platform's
        h1.post("/api/v1/unions", json={"name": "联盟九"}),
        h1.post("/api/v1/hospitals", json={"name": "新医院"}),
        h1.patch("/api/v1/hospitals/h1", json={"unionId": None}),  # moving it out of u1 is u1's to decide
        h1.post("/api/v1/users", json={"username": "x2", "name": "X", "roles": [{"role": "clinician",
                                                                                "scope": "hospital:h2"}]}),
        h1.patch("/api/v1/users/reader", json={"name": "改名"}),
        h1.post("/api/v1/partners", json={"appId": "ih9", "hospitals": ["h1"]}),
    ]
    for r in outside:
        assert code(r) == Code.NO_PERMISSION, (r.request.method, r.request.url, r.json())
    # Inside: theirs to manage.
    ok(h1.post("/api/v1/departments", json={"hospitalId": "h1", "name": "超声科"}))
    ok(h1.post("/api/v1/users", json={"username": "h1doc", "name": "一院医生",
                                      "roles": [{"role": "clinician", "scope": "hospital:h1"}]}))
    ok(h1.patch("/api/v1/hospitals/h1", json={"name": "第一人民医院"}))
    ok(h1.post("/api/v1/pacs", json={"aeTitle": "PACS1", "host": "10.0.0.1", "port": 104, "hospitalId": "h1"}))
    assert [p["aeTitle"] for p in ok(op.get("/api/v1/pacs"))["items"]] == ["PACS1"]


def test_a_union_admin_manages_the_unions_hospitals(staff_world) -> None:
    u1, _ = staff_world.sign_in("u1admin")
    assert [h["id"] for h in ok(u1.get("/api/v1/hospitals"))["items"]] == ["h1", "h2"]
    ok(u1.post("/api/v1/hospitals", json={"id": "h5", "name": "第五医院", "unionId": "u1"}))
    ok(u1.patch("/api/v1/unions/u1", json={"name": "第一医联体"}))
    assert code(u1.post("/api/v1/hospitals", json={"name": "第六医院"})) == Code.NO_PERMISSION
    assert code(u1.get("/api/v1/hospitals/h3")) == Code.NO_PERMISSION
    assert code(u1.delete("/api/v1/unions/u1")) == Code.NO_PERMISSION


def test_a_user_who_administers_nothing_gets_20012_on_every_change(staff_world) -> None:
    reader, _ = staff_world.sign_in("reader")
    assert [h["id"] for h in ok(reader.get("/api/v1/hospitals"))["items"]] == ["h2"]  # reading is theirs
    for r in (reader.post("/api/v1/departments", json={"hospitalId": "h2", "name": "超声科"}),
              reader.patch("/api/v1/hospitals/h2", json={"name": "改名"}),
              reader.delete("/api/v1/hospitals/h2"),
              reader.post("/api/v1/unions", json={"name": "联盟九"}),
              reader.post("/api/v1/device-types", json={"name": "X"})):
        assert code(r) == Code.NOT_ADMINISTRATOR, (r.request.method, r.request.url, r.json())


def test_without_a_session_or_the_csrf_header_nothing_is_done(staff_world, op) -> None:
    anonymous = staff_world.client()
    assert code(anonymous.get("/api/v1/hospitals")) == Code.AUTH_EXPIRED
    del op.headers["X-CSRF-Token"]
    assert code(op.post("/api/v1/unions", json={"name": "联盟九"})) == Code.NO_PERMISSION
    assert code(op.delete("/api/v1/hospitals/h3")) == Code.NO_PERMISSION
    assert ok(op.get("/api/v1/unions"))["total"] == 1
    assert ok(op.get("/api/v1/hospitals"))["total"] == 3
