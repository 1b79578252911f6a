"""The knowledge base of report phrases over HTTP (issue 15 item 5): every code 60001-60006 in its situation,
personal and centre-wide folders, soft deletion, the audit trail; on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from yingyun.contract.codes import Code
from yingyun.storage import schema as s

from .conftest import code, ok


def test_a_radiologist_files_phrases_in_personal_folders(world, as_user) -> None:
    rad1 = as_user("rad1")
    lung = ok(rad1.post("/api/v1/kb/folders", json={"name": "肺部"}))
    assert lung == {"id": lung["id"], "name": "肺部", "parentId": None, "shared": False, "hospitalId": None,
                    "depth": 1}
    nodule = ok(rad1.post("/api/v1/kb/folders", json={"name": "结节", "parentId": lung["id"]}))
    assert nodule["parentId"] == lung["id"] and nodule["depth"] == 2
    text = ok(rad1.post("/api/v1/kb/texts", json={"folderId": nodule["id"], "title": "磨玻璃结节",
                                                  "body": "右肺上叶见磨玻璃密度结节，\n边界清。"}))
    assert text == {"id": text["id"], "folderId": nodule["id"], "title": "磨玻璃结节",
                    "body": "右肺上叶见磨玻璃密度结节，\n边界清。", "hospitalId": None}
    tree = ok(rad1.get("/api/v1/kb/tree"))
    assert tree["shared"] == []
    [top] = tree["personal"]
    assert top["name"] == "肺部" and top["texts"] == [] and [f["name"] for f in top["folders"]] == ["结节"]
    assert top["folders"][0]["texts"] == [text]

    edited = ok(rad1.put(f"/api/v1/kb/texts/{text['id']}", json={"body": "左肺下叶见实性结节。"}))
    assert edited["body"] == "左肺下叶见实性结节。" and edited["title"] == "磨玻璃结节"
    assert ok(rad1.put(f"/api/v1/kb/folders/{nodule['id']}", json={"name": "肺结节"}))["name"] == "肺结节"

    # Nobody else sees them, not even the operator; for them they are not there.
    for other in ("rad2", "rev1", "op"):
        client = as_user(other)
        assert ok(client.get("/api/v1/kb/tree"))["personal"] == [], other
        assert code(client.put(f"/api/v1/kb/folders/{lung['id']}", json={"name": "x"})) == Code.DATA_NOT_FOUND
        assert code(client.put(f"/api/v1/kb/texts/{text['id']}", json={"body": "x"})) == Code.DATA_NOT_FOUND
        assert code(client.post("/api/v1/kb/texts", json={"folderId": lung["id"], "title": "t", "body": "b"})
                    ) == Code.DATA_NOT_FOUND
        assert code(client.delete(f"/api/v1/kb/texts/{text['id']}")) == Code.KB_DELETE_FAILED
        assert code(client.delete(f"/api/v1/kb/folders/{nodule['id']}")) == Code.KB_DELETE_FAILED
    # A clinician writes no reports: no knowledge base.
    assert code(as_user("reader").get("/api/v1/kb/tree")) == Code.NO_PERMISSION
    assert code(as_user("reader").post("/api/v1/kb/folders", json={"name": "x"})) == Code.NO_PERMISSION

    with world.runtime.db.read() as conn:
        actions = [r.action for r in conn.execute(select(s.staff_audit.c.action).where(
            s.staff_audit.c.username == "rad1", s.staff_audit.c.subject_kind.like("kb-%")).order_by(
            s.staff_audit.c.pk))]
    assert actions == ["kb-folders.create", "kb-folders.create", "kb-texts.create", "kb-texts.update",
                       "kb-folders.update"]


def test_names_titles_and_levels_answer_their_codes(world, as_user) -> None:
    rad1 = as_user("rad1")
    top = ok(rad1.post("/api/v1/kb/folders", json={"name": "胸部"}))
    for empty in ({}, {"name": ""}, {"name": "   "}, {"name": None}):
        assert code(rad1.post("/api/v1/kb/folders", json=empty)) == Code.FOLDER_OR_TITLE_EMPTY, empty
    assert code(rad1.put(f"/api/v1/kb/folders/{top['id']}", json={"name": " "})) == Code.FOLDER_OR_TITLE_EMPTY
    # 60002: a name already used in the same folder (also at the top level); another folder may use it.
    assert code(rad1.post("/api/v1/kb/folders", json={"name": "胸部"})) == Code.FOLDER_EXISTS
    level2 = ok(rad1.post("/api/v1/kb/folders", json={"name": "胸部", "parentId": top["id"]}))
    assert code(rad1.post("/api/v1/kb/folders", json={"name": "胸部", "parentId": top["id"]})) == Code.FOLDER_EXISTS
    other = ok(rad1.post("/api/v1/kb/folders", json={"name": "腹部"}))
    assert code(rad1.put(f"/api/v1/kb/folders/{other['id']}", json={"name": "胸部"})) == Code.FOLDER_EXISTS
    # 60006: three levels at most.
    level3 = ok(rad1.post("/api/v1/kb/folders", json={"name": "三", "parentId": level2["id"]}))
    assert level3["depth"] == 3
    assert code(rad1.post("/api/v1/kb/folders", json={"name": "四", "parentId": level3["id"]})) == Code.NESTING_LIMIT
    # 60003 and 60004 for texts.
    ok(rad1.post("/api/v1/kb/texts", json={"folderId": level3["id"], "title": "正常", "body": "未见异常。"}))
    assert code(rad1.post("/api/v1/kb/texts", json={"folderId": level3["id"], "title": "正常", "body": "x"})
                ) == Code.TEXT_TITLE_EXISTS
    ok(rad1.post("/api/v1/kb/texts", json={"folderId": level2["id"], "title": "正常", "body": "另一个文件夹"}))
    for empty in ("", "  ", None):
        assert code(rad1.post("/api/v1/kb/texts", json={"folderId": level3["id"], "title": empty, "body": "x"})
                    ) == Code.FOLDER_OR_TITLE_EMPTY
    assert code(rad1.post("/api/v1/kb/texts", json={"folderId": level3["id"], "body": "x"})
                ) == Code.FOLDER_OR_TITLE_EMPTY
    second = ok(rad1.post("/api/v1/kb/texts", json={"folderId": level3["id"], "title": "异常", "body": "y"}))
    assert code(rad1.put(f"/api/v1/kb/texts/{second['id']}", json={"title": "正常"})) == Code.TEXT_TITLE_EXISTS
    assert code(rad1.put(f"/api/v1/kb/texts/{second['id']}", json={"title": ""})) == Code.FOLDER_OR_TITLE_EMPTY
    # Malformed input: its own codes, and nothing written.
    assert code(rad1.post("/api/v1/kb/texts", json={"folderId": level3["id"], "title": "t"})) == Code.REQUIRED_EMPTY
    assert code(rad1.post("/api/v1/kb/texts", json={"folderId": "x", "title": "t", "body": "b"})
                ) == Code.INVALID_FORMAT
    assert code(rad1.post("/api/v1/kb/folders", json={"name": "x", "colour": 1})) == Code.INVALID_FORMAT
    assert code(rad1.post("/api/v1/kb/folders", json={"name": "x", "parentId": 999999})) == Code.DATA_NOT_FOUND
    with world.runtime.db.read() as conn:
        assert len(conn.execute(select(s.kb_folders)).all()) == 4
        assert len(conn.execute(select(s.kb_texts)).all()) == 3


def test_deleting_is_soft_refused_for_a_folder_with_content_and_said_twice(world, as_user) -> None:
    rad1 = as_user("rad1")
    top = ok(rad1.post("/api/v1/kb/folders", json={"name": "胸部"}))
    sub = ok(rad1.post("/api/v1/kb/folders", json={"name": "肺", "parentId": top["id"]}))
    text = ok(rad1.post("/api/v1/kb/texts", json={"folderId": sub["id"], "title": "正常", "body": "未见异常。"}))

    refused = rad1.delete(f"/api/v1/kb/folders/{top['id']}").json()
    assert refused["code"] == Code.KB_DELETE_FAILED and "1 folder" in refused["message"]
    refused = rad1.delete(f"/api/v1/kb/folders/{sub['id']}").json()
    assert refused["code"] == Code.KB_DELETE_FAILED and "1 text" in refused["message"]

    ok(rad1.delete(f"/api/v1/kb/texts/{text['id']}"))
    assert code(rad1.delete(f"/api/v1/kb/texts/{text['id']}")) == Code.MODULE_DELETED
    assert code(rad1.put(f"/api/v1/kb/texts/{text['id']}", json={"body": "x"})) == Code.MODULE_DELETED
    ok(rad1.delete(f"/api/v1/kb/folders/{sub['id']}"))
    assert code(rad1.delete(f"/api/v1/kb/folders/{sub['id']}")) == Code.MODULE_DELETED
    assert code(rad1.put(f"/api/v1/kb/folders/{sub['id']}", json={"name": "x"})) == Code.MODULE_DELETED
    assert code(rad1.post("/api/v1/kb/folders", json={"name": "x", "parentId": sub["id"]})) == Code.MODULE_DELETED
    assert code(rad1.post("/api/v1/kb/texts", json={"folderId": sub["id"], "title": "t", "body": "b"})
                ) == Code.MODULE_DELETED
    for missing in ("999999", "abc"):
        assert code(rad1.delete(f"/api/v1/kb/folders/{missing}")) == Code.KB_DELETE_FAILED
        assert code(rad1.delete(f"/api/v1/kb/texts/{missing}")) == Code.KB_DELETE_FAILED
    assert ok(rad1.get("/api/v1/kb/tree"))["personal"][0]["folders"] == []
    # A deleted name is free again; the deleted row stays, marked.
    again = ok(rad1.post("/api/v1/kb/folders", json={"name": "肺", "parentId": top["id"]}))
    assert again["id"] != sub["id"]
    with world.runtime.db.read() as conn:
        kept = conn.execute(select(s.kb_folders).where(s.kb_folders.c.id == sub["id"])).one()
        assert kept.name == "肺" and kept.deleted_by == "rad1" and kept.deleted_at is not None
        assert conn.execute(select(s.kb_texts.c.deleted_at).where(s.kb_texts.c.id == text["id"])).scalar()


def test_a_centres_shared_folders_are_written_by_its_reviewers_and_read_by_its_radiologists(world, as_user) -> None:
    rev1, rad1 = as_user("rev1"), as_user("rad1")
    shared = ok(rev1.post("/api/v1/kb/folders", json={"name": "科室常用", "shared": True}))
    assert shared["shared"] is True and shared["hospitalId"] == "h1"
    sub = ok(rev1.post("/api/v1/kb/folders", json={"name": "胸部", "parentId": shared["id"]}))
    assert sub["shared"] is True and sub["hospitalId"] == "h1"
    text = ok(rev1.post("/api/v1/kb/texts", json={"folderId": sub["id"], "title": "正常胸片",
                                                  "body": "心肺膈未见异常。"}))
    # A personal folder of the same name does not collide with the centre's.
    ok(rev1.post("/api/v1/kb/folders", json={"name": "科室常用"}))
    assert code(as_user("h1admin").post("/api/v1/kb/folders", json={"name": "科室常用", "shared": True,
                                                                     "hospitalId": "h1"})) == Code.FOLDER_EXISTS

    tree = ok(rad1.get("/api/v1/kb/tree"))
    assert [f["name"] for f in tree["shared"]] == ["科室常用"] and tree["shared"][0]["folders"][0]["texts"] == [text]
    assert ok(rad1.get("/api/v1/kb/tree", params={"hospitalId": "h1"}))["shared"] == tree["shared"]
    # The centre's radiologist reads, never writes.
    assert code(rad1.post("/api/v1/kb/folders", json={"name": "x", "shared": True})) == Code.NO_PERMISSION
    assert code(rad1.post("/api/v1/kb/folders", json={"name": "x", "parentId": shared["id"]})) == Code.NO_PERMISSION
    assert code(rad1.post("/api/v1/kb/texts", json={"folderId": sub["id"], "title": "t", "body": "b"})
                ) == Code.NO_PERMISSION
    assert code(rad1.put(f"/api/v1/kb/texts/{text['id']}", json={"body": "x"})) == Code.NO_PERMISSION
    assert code(rad1.delete(f"/api/v1/kb/texts/{text['id']}")) == Code.NO_PERMISSION
    assert code(rad1.put(f"/api/v1/kb/folders/{sub['id']}", json={"name": "x"})) == Code.NO_PERMISSION
    # A sub-folder is its parent's kind.
    assert code(rev1.post("/api/v1/kb/folders", json={"name": "y", "parentId": shared["id"], "shared": False})
                ) == Code.INVALID_FORMAT
    # Other centres' staff see none of it.
    for other in ("rad2", "rev3"):
        assert ok(as_user(other).get("/api/v1/kb/tree"))["shared"] == [], other
        assert code(as_user(other).get("/api/v1/kb/tree", params={"hospitalId": "h1"})) == Code.NO_PERMISSION
        assert code(as_user(other).delete(f"/api/v1/kb/texts/{text['id']}")) == Code.KB_DELETE_FAILED
    # The operator sees every centre's and manages them.
    assert [f["name"] for f in ok(as_user("op").get("/api/v1/kb/tree"))["shared"]] == ["科室常用"]
    ok(as_user("op").delete(f"/api/v1/kb/texts/{text['id']}"))
    ok(as_user("h1admin").delete(f"/api/v1/kb/folders/{sub['id']}"))
    with world.runtime.db.read() as conn:
        rows = conn.execute(select(s.staff_audit.c.username, s.staff_audit.c.action, s.staff_audit.c.hospital_id)
                            .where(s.staff_audit.c.action.like("kb-%.delete")).order_by(s.staff_audit.c.pk)).all()
    assert [tuple(r) for r in rows] == [("op", "kb-texts.delete", "h1"), ("h1admin", "kb-folders.delete", "h1")]
