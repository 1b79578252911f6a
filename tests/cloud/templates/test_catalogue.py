"""Body parts and exam items over HTTP (issue 15 item 5), and the template a new report starts from.

On SQLite and PostgreSQL over a real server (conftest.py: h1 the reading centre in union u1).
"""

from __future__ import annotations

import threading

import orjson
from sqlalchemy import select

from yingyun.cloud.templates import template_for
from yingyun.contract.codes import Code
from yingyun.storage import schema as s

from .conftest import code, ok


def test_a_reviewer_manages_the_centres_body_parts_and_a_radiologist_reads_them(world, as_user) -> None:
    rev1, rad1 = as_user("rev1"), as_user("rad1")
    chest = ok(rev1.post("/api/v1/body-parts", json={"name": "胸部", "modality": "ct"}))
    assert chest == {"id": chest["id"], "name": "胸部", "modality": "CT", "hospitalId": "h1", "unionId": None}
    head = ok(rev1.post("/api/v1/body-parts", json={"name": "颅脑"}))
    assert head["modality"] is None and head["hospitalId"] == "h1"  # the reviewer's one centre, by default
    # The same name for another modality is another body part.
    assert ok(rev1.post("/api/v1/body-parts", json={"name": "胸部", "modality": "DX"}))["modality"] == "DX"

    listed = ok(rad1.get("/api/v1/body-parts", params={"hospitalId": "h1"}))
    assert listed["total"] == 3 and {p["name"] for p in listed["items"]} == {"胸部", "颅脑"}
    assert ok(rad1.get("/api/v1/body-parts", params={"modality": "CT"}))["total"] == 2  # CT's and the any-modality
    assert ok(rad1.get(f"/api/v1/body-parts/{chest['id']}")) == chest

    renamed = ok(rev1.put(f"/api/v1/body-parts/{head['id']}", json={"name": "头颅"}))
    assert renamed["name"] == "头颅" and ok(rad1.get(f"/api/v1/body-parts/{head['id']}"))["name"] == "头颅"
    ok(rev1.delete(f"/api/v1/body-parts/{head['id']}"))
    assert code(rad1.get(f"/api/v1/body-parts/{head['id']}")) == Code.BODY_PART_NOT_FOUND

    with world.runtime.db.read() as conn:
        a = s.staff_audit
        rows = conn.execute(select(a).where(a.c.username == "rev1", a.c.subject_kind == "body-part")
                            .order_by(a.c.pk)).all()
    assert [(r.action, r.subject_kind, r.hospital_id) for r in rows] == [
        ("body-parts.create", "body-part", "h1"), ("body-parts.create", "body-part", "h1"),
        ("body-parts.create", "body-part", "h1"), ("body-parts.update", "body-part", "h1"),
        ("body-parts.remove", "body-part", "h1")]
    assert orjson.loads(rows[0].detail) == {"fields": ["modality", "name"]}


def test_body_part_codes(world, as_user) -> None:
    rev1 = as_user("rev1")
    chest = ok(rev1.post("/api/v1/body-parts", json={"name": "胸部", "modality": "CT"}))
    ok(rev1.post("/api/v1/body-parts", json={"name": "腹部", "modality": "CT"}))
    assert code(rev1.post("/api/v1/body-parts", json={"name": " 胸部 ", "modality": "CT"})) == Code.BODY_PART_EXISTS
    assert code(rev1.put(f"/api/v1/body-parts/{chest['id']}", json={"name": "腹部"})) == Code.BODY_PART_EXISTS
    for missing in ("999999", "abc"):
        assert code(rev1.get(f"/api/v1/body-parts/{missing}")) == Code.BODY_PART_NOT_FOUND
        assert code(rev1.put(f"/api/v1/body-parts/{missing}", json={"name": "x"})) == Code.BODY_PART_NOT_FOUND
        assert code(rev1.delete(f"/api/v1/body-parts/{missing}")) == Code.BODY_PART_NOT_FOUND
    assert code(rev1.post("/api/v1/body-parts", json={})) == Code.REQUIRED_EMPTY
    assert code(rev1.post("/api/v1/body-parts", json={"name": "x", "modality": "C T!"})) == Code.INVALID_FORMAT
    assert code(rev1.post("/api/v1/body-parts", json={"name": "x", "colour": "red"})) == Code.INVALID_FORMAT
    assert code(rev1.post("/api/v1/body-parts", json={"name": "x", "hospitalId": "nowhere"})
                ) == Code.INSTITUTION_NOT_FOUND
    # Nothing half-written: the refusals left two rows.
    with world.runtime.db.read() as conn:
        assert len(conn.execute(select(s.body_parts)).all()) == 2


def test_who_may_read_and_write_a_centres_templates(world, as_user) -> None:
    rev1 = as_user("rev1")
    chest = ok(rev1.post("/api/v1/body-parts", json={"name": "胸部", "modality": "CT"}))
    one = f"/api/v1/body-parts/{chest['id']}"
    # The centre's radiologist reads but never writes.
    assert code(as_user("rad1").post("/api/v1/body-parts", json={"name": "腹部"})) == Code.NO_PERMISSION
    assert code(as_user("rad1").put(one, json={"name": "腹部"})) == Code.NO_PERMISSION
    assert code(as_user("rad1").delete(one)) == Code.NO_PERMISSION
    # Another centre's reviewer, another hospital's radiologist and a clinician neither read nor write.
    for other in ("rev3", "rad2", "reader"):
        assert code(as_user(other).get(one)) == Code.NO_PERMISSION, other
        assert code(as_user(other).get("/api/v1/body-parts", params={"hospitalId": "h1"})) == Code.NO_PERMISSION
        assert ok(as_user(other).get("/api/v1/body-parts"))["total"] == 0, other
        assert code(as_user(other).put(one, json={"name": "腹部"})) == Code.NO_PERMISSION
    assert code(as_user("rev3").post("/api/v1/body-parts", json={"name": "腹部", "hospitalId": "h1"})
                ) == Code.NO_PERMISSION
    # The centre's admin, its union's admin and the operator write; a clinician has no centre to default to.
    for writer in ("h1admin", "u1admin", "op"):
        made = ok(as_user(writer).post("/api/v1/body-parts", json={"name": f"腹部-{writer}", "hospitalId": "h1"}))
        assert made["hospitalId"] == "h1"
    assert code(as_user("op").post("/api/v1/body-parts", json={"name": "腹部"})) == Code.REQUIRED_EMPTY
    assert ok(as_user("op").get("/api/v1/body-parts"))["total"] == 4


def test_union_wide_body_parts_are_the_union_admins_and_read_by_its_centres(world, as_user) -> None:
    u1admin = as_user("u1admin")
    shared = ok(u1admin.post("/api/v1/body-parts", json={"name": "脊柱", "unionId": "u1"}))
    assert shared["unionId"] == "u1" and shared["hospitalId"] is None
    assert code(u1admin.post("/api/v1/body-parts", json={"name": "脊柱", "unionId": "u1"})) == Code.BODY_PART_EXISTS
    assert code(u1admin.post("/api/v1/body-parts", json={"name": "x", "unionId": "u9"})) == Code.UNION_NOT_FOUND
    assert code(as_user("rev1").post("/api/v1/body-parts", json={"name": "x", "unionId": "u1"})) == Code.NO_PERMISSION
    assert code(as_user("rev1").delete(f"/api/v1/body-parts/{shared['id']}")) == Code.NO_PERMISSION
    # Read by the centres of u1, not by h3's.
    assert [p["name"] for p in ok(as_user("rad1").get("/api/v1/body-parts", params={"hospitalId": "h1"}))["items"]
            ] == ["脊柱"]
    assert ok(as_user("rad2").get("/api/v1/body-parts"))["total"] == 1
    assert code(as_user("rev3").get(f"/api/v1/body-parts/{shared['id']}")) == Code.NO_PERMISSION
    assert code(u1admin.post("/api/v1/body-parts", json={"name": "x", "unionId": "u1", "hospitalId": "h1"})
                ) == Code.INVALID_FORMAT


def test_exam_items_and_their_codes(world, as_user) -> None:
    rev1 = as_user("rev1")
    chest = ok(rev1.post("/api/v1/body-parts", json={"name": "胸部", "modality": "CT"}))
    item = ok(rev1.post("/api/v1/exam-items", json={
        "name": "胸部CT平扫", "bodyPartId": chest["id"], "templateDescription": "双肺纹理清晰。\n纵隔居中。",
        "templateConclusion": "胸部CT平扫未见异常。"}))
    assert item == {"id": item["id"], "name": "胸部CT平扫", "bodyPartId": chest["id"], "bodyPart": "胸部",
                    "modality": "CT", "templateDescription": "双肺纹理清晰。\n纵隔居中。",
                    "templateConclusion": "胸部CT平扫未见异常。", "hospitalId": "h1", "unionId": None}
    assert code(rev1.post("/api/v1/exam-items", json={"name": "胸部CT平扫", "bodyPartId": chest["id"]})
                ) == Code.EXAM_ITEM_EXISTS
    assert code(rev1.post("/api/v1/exam-items", json={"name": "x", "bodyPartId": 999999})) == Code.BODY_PART_NOT_FOUND
    assert code(rev1.post("/api/v1/exam-items", json={"name": "x", "bodyPartId": chest["id"], "modality": "MR"})
                ) == Code.INVALID_FORMAT  # a CT body part
    # Another centre's body part is unknown to h1's exam items.
    h3_part = ok(as_user("rev3").post("/api/v1/body-parts", json={"name": "胸部", "modality": "CT"}))
    assert code(rev1.post("/api/v1/exam-items", json={"name": "x", "bodyPartId": h3_part["id"]})
                ) == Code.BODY_PART_NOT_FOUND
    assert code(rev1.put(f"/api/v1/exam-items/{item['id']}", json={"bodyPartId": h3_part["id"]})
                ) == Code.BODY_PART_NOT_FOUND
    # A body part no exam item names may go; this one is named.
    assert code(rev1.delete(f"/api/v1/body-parts/{chest['id']}")) == Code.INVALID_DATA

    changed = ok(rev1.put(f"/api/v1/exam-items/{item['id']}", json={"templateConclusion": "未见明显异常。"}))
    assert changed["templateConclusion"] == "未见明显异常。" and changed["templateDescription"].startswith("双肺")
    second = ok(rev1.post("/api/v1/exam-items", json={"name": "胸部CT增强", "bodyPartId": chest["id"]}))
    assert code(rev1.put(f"/api/v1/exam-items/{second['id']}", json={"name": "胸部CT平扫"})) == Code.EXAM_ITEM_EXISTS
    assert ok(as_user("rad1").get("/api/v1/exam-items", params={"bodyPartId": chest["id"]}))["total"] == 2
    assert code(as_user("rad1").put(f"/api/v1/exam-items/{item['id']}", json={"name": "y"})) == Code.NO_PERMISSION
    assert code(as_user("rad2").get(f"/api/v1/exam-items/{item['id']}")) == Code.NO_PERMISSION

    ok(rev1.delete(f"/api/v1/exam-items/{second['id']}"))
    for missing in (str(second["id"]), "abc"):
        assert code(rev1.get(f"/api/v1/exam-items/{missing}")) == Code.EXAM_ITEM_NOT_FOUND
        assert code(rev1.put(f"/api/v1/exam-items/{missing}", json={"name": "z"})) == Code.EXAM_ITEM_NOT_FOUND
        assert code(rev1.delete(f"/api/v1/exam-items/{missing}")) == Code.EXAM_ITEM_NOT_FOUND
    with world.runtime.db.read() as conn:
        actions = [r.action for r in conn.execute(select(s.staff_audit.c.action).where(
            s.staff_audit.c.subject_kind == "exam-item").order_by(s.staff_audit.c.pk))]
    assert actions == ["exam-items.create", "exam-items.update", "exam-items.create", "exam-items.remove"]


def test_two_writers_racing_for_one_name_get_one_body_part(world, as_user) -> None:
    clients = [as_user("rev1"), as_user("h1admin"), as_user("u1admin"), as_user("op")]
    barrier = threading.Barrier(len(clients))
    codes: list[int] = []

    def create(client) -> None:
        barrier.wait()
        codes.append(code(client.post("/api/v1/body-parts", json={"name": "胸部", "hospitalId": "h1"})))

    threads = [threading.Thread(target=create, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [0] + [Code.BODY_PART_EXISTS] * 3
    with world.runtime.db.read() as conn:
        assert len(conn.execute(select(s.body_parts)).all()) == 1
        assert len(conn.execute(select(s.staff_audit).where(s.staff_audit.c.subject_kind == "body-part")).all()) == 1


def test_a_new_report_starts_from_the_centres_exam_item_else_its_unions(world, as_user) -> None:
    rev1, u1admin = as_user("rev1"), as_user("u1admin")
    chest = ok(rev1.post("/api/v1/body-parts", json={"name": "胸部", "modality": "CT"}))
    ok(rev1.post("/api/v1/exam-items", json={"name": "胸部CT平扫", "bodyPartId": chest["id"],
                                             "templateDescription": "h1 平扫所见", "templateConclusion": "h1 平扫"}))
    ok(rev1.post("/api/v1/exam-items", json={"name": "胸部CT增强", "bodyPartId": chest["id"],
                                             "templateDescription": "h1 增强所见", "templateConclusion": "h1 增强"}))
    spine = ok(u1admin.post("/api/v1/body-parts", json={"name": "腰椎", "unionId": "u1"}))
    ok(u1admin.post("/api/v1/exam-items", json={"name": "腰椎MR平扫", "bodyPartId": spine["id"], "modality": "MR",
                                                "unionId": "u1", "templateDescription": "u1 腰椎所见",
                                                "templateConclusion": "u1 腰椎"}))
    u1chest = ok(u1admin.post("/api/v1/body-parts", json={"name": "胸部", "unionId": "u1"}))
    ok(u1admin.post("/api/v1/exam-items", json={"name": "胸部CT平扫", "bodyPartId": u1chest["id"], "modality": "CT",
                                                "unionId": "u1", "templateDescription": "u1 胸部所见",
                                                "templateConclusion": "u1 胸部"}))
    # A centre's item may name its union's body part.
    ok(rev1.post("/api/v1/exam-items", json={"name": "腰椎DR", "bodyPartId": spine["id"], "modality": "DX",
                                             "templateDescription": "h1 腰椎DR", "templateConclusion": "-"}))

    with world.runtime.db.read() as conn:
        def tpl(centre: str = "h1", **study: str | None) -> tuple[str, str] | None:
            args: dict[str, str | None] = {"modality": None, "body_part": None, "study_desc": None} | study
            return template_for(conn, centre_id=centre, **args)  # type: ignore[arg-type]

        # By name (the study description, spacing and case aside); the centre's own wins over the union's.
        assert tpl(modality="CT", body_part="CHEST", study_desc=" 胸部ct增强") == ("h1 增强所见", "h1 增强")
        assert tpl(modality="CT", study_desc="胸部CT平扫") == ("h1 平扫所见", "h1 平扫")
        assert tpl("h2", modality="CT", study_desc="胸部CT平扫") == ("u1 胸部所见", "u1 胸部")
        # Else by body part and modality: DICOM's code, English and Chinese are one part; the oldest item.
        assert tpl(modality="CT", body_part="CHEST", study_desc="Thorax routine") == ("h1 平扫所见", "h1 平扫")
        assert tpl(modality="CT", body_part="Chest") == ("h1 平扫所见", "h1 平扫")
        assert tpl(modality="MR", body_part="LSPINE") == ("u1 腰椎所见", "u1 腰椎")  # the union's, h1 has no MR
        assert tpl(modality="DX", body_part="腰椎") == ("h1 腰椎DR", "-")
        # The modality must match; nothing matching is None; h3 (no union) has nothing.
        assert tpl(modality="MR", body_part="CHEST", study_desc="胸部CT平扫") is None
        assert tpl(modality="US", body_part="ABDOMEN", study_desc="腹部彩超") is None
        assert tpl("h3", modality="CT", body_part="CHEST", study_desc="胸部CT平扫") is None
        assert tpl(modality=None, body_part=None, study_desc=None) is None
