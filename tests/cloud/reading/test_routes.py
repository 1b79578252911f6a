"""Reading routes over HTTP and from the command line: who manages them, the most specific one wins, and a
hospital that reports locally is read in the cloud only when routed."""

from __future__ import annotations

import json

from yingyun.contract.codes import Code

from ...test_cli import cli
from .conftest import code, ok


def test_who_manages_routes_and_the_codes(world) -> None:
    op, u1, rad, admin = world.sign_in("op"), world.sign_in("u1admin"), world.sign_in("rad"), world.sign_in("h2admin")
    routes = ok(op.get("/api/v1/reading-routes"))
    assert routes["total"] == 1 and routes["items"][0]["fromHospitalId"] == "h1"
    ct = ok(u1.post("/api/v1/reading-routes", json={"fromHospitalId": "h3", "toHospitalId": "h2", "modality": "ct"}))
    assert ct["modality"] == "CT" and ct["createdBy"] == "u1admin"
    assert code(u1.post("/api/v1/reading-routes", json={"fromHospitalId": "h3", "toHospitalId": "h2",
                                                        "modality": "CT"})) == Code.DUPLICATE_DATA
    assert code(rad.post("/api/v1/reading-routes", json={"fromHospitalId": "h3", "toHospitalId": "h2"})) == \
        Code.NOT_ADMINISTRATOR
    # An admin of the centre alone does not route another hospital's studies to it.
    assert code(admin.post("/api/v1/reading-routes", json={"fromHospitalId": "h3", "toHospitalId": "h2"})) == \
        Code.NO_PERMISSION
    assert code(op.post("/api/v1/reading-routes", json={"fromHospitalId": "h404", "toHospitalId": "h2"})) == \
        Code.INSTITUTION_NOT_FOUND
    assert code(op.post("/api/v1/reading-routes", json={"toHospitalId": "h2"})) == Code.REQUIRED_EMPTY
    assert code(op.post("/api/v1/reading-routes", json={"fromHospitalId": "h3", "toHospitalId": "h2",
                                                        "modality": "C T"})) == Code.INVALID_FORMAT
    assert {r["id"] for r in ok(admin.get("/api/v1/reading-routes"))["items"]} == {
        r["id"] for r in ok(op.get("/api/v1/reading-routes"))["items"]}  # both go to h2
    assert code(op.delete("/api/v1/reading-routes/rr-404")) == Code.DATA_NOT_FOUND
    ok(u1.delete(f"/api/v1/reading-routes/{ct['id']}"))
    assert ok(op.get("/api/v1/reading-routes"))["total"] == 1


def test_the_most_specific_route_wins(world) -> None:
    op = world.sign_in("op")
    world.runtime.tenancy.add_hospital(hospital_id="h4", name="第四医院", union_id="u1")
    ok(op.post("/api/v1/reading-routes", json={"fromHospitalId": "h1", "toHospitalId": "h4", "modality": "MR"}))
    ct, mr = world.study("S-CT", modality="CT"), world.study("S-MR", modality="MR")
    rad = world.sign_in("rad")
    assert [i["studyUid"] for i in ok(rad.get("/api/v1/worklist"))["items"]] == [ct]
    assert code(rad.post(f"/api/v1/studies/{mr}/lock")) == Code.STUDY_NO_PERMISSION
    assert {i["studyUid"] for i in ok(op.get("/api/v1/worklist"))["items"]} == {ct, mr}


def test_a_hospital_reporting_locally_is_read_only_where_routed(world) -> None:
    # h3 has no route: it reads its own studies until its RIS sends a report.
    from yingyun.cloud.staff import accounts

    from .conftest import PASSWORD

    with world.runtime.db.write() as conn:
        accounts.add_user(conn, vault=world.runtime.vault, username="rad3", name="三院放射",
                          roles=[accounts.parse_role("radiologist:hospital:h3")], password=PASSWORD)
    uid = world.study("T1", hospital="h3")
    rad3 = world.sign_in("rad3")
    assert [i["studyUid"] for i in ok(rad3.get("/api/v1/worklist"))["items"]] == [uid]
    assert world.extra[0].post("/ris/report/add", {
        "reportNumber": "L1", "studyId": "T0", "accessNumber": "A-T0", "imageDescription": "本地",
        "conclusion": "本地报告"})["code"] == 0
    world.app.state.reading.local = type(world.app.state.reading.local)(refresh_s=0)
    assert ok(rad3.get("/api/v1/worklist"))["total"] == 0
    op = world.sign_in("op")
    ok(op.post("/api/v1/reading-routes", json={"fromHospitalId": "h3", "toHospitalId": "h2"}))
    assert uid in [i["studyUid"] for i in ok(world.sign_in("rad").get("/api/v1/worklist"))["items"]]


def test_the_command_line_adds_lists_and_removes_routes(runtime, settings) -> None:
    cli(settings, "hospital", "add", "--id", "h1", "--name", "一院")
    cli(settings, "hospital", "add", "--id", "r1", "--name", "阅片中心")
    out = cli(settings, "reading-route", "add", "--from-hospital", "h1", "--to-hospital", "r1", "--modality", "CT")
    assert out.stdout.startswith("reading route rr-") and out.stdout.endswith("h1 -> r1 (CT)\n")
    rows = json.loads(cli(settings, "reading-route", "list", "--json").stdout)
    assert [(r["fromHospitalId"], r["toHospitalId"], r["modality"], r["createdBy"]) for r in rows] == [
        ("h1", "r1", "CT", "(cli)")]
    again = cli(settings, "reading-route", "add", "--from-hospital", "h1", "--to-hospital", "r1", "--modality", "ct",
                check=False)
    assert again.returncode != 0 and "already has a route for CT" in again.stderr
    missing = cli(settings, "reading-route", "add", "--from-hospital", "h9", "--to-hospital", "r1", check=False)
    assert missing.returncode != 0 and "h9" in missing.stderr
    cli(settings, "reading-route", "remove", "--id", rows[0]["id"])
    assert json.loads(cli(settings, "reading-route", "list", "--json").stdout) == []
