"""Every refusal of the reading API in its situation, and the races: two readers for one lock, two saves on one
version (real threads, real HTTP), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

from sqlalchemy import select

from yingyun.contract.codes import Code
from yingyun.storage import schema as s

from .conftest import code, ok


def draft(client, uid: str, version: int = 0, conclusion: str = "未见异常") -> dict:
    return ok(client.put(f"/api/v1/studies/{uid}/report", json={"imageDescription": "所见", "conclusion": conclusion,
                                                                 "version": version}))


def test_unknown_study_30008_and_no_report_30003(world) -> None:
    uid = world.study("S1")
    rad = world.sign_in("rad")
    assert code(rad.get("/api/v1/studies/1.2.3.404/report")) == Code.STUDY_NOT_FOUND
    assert code(rad.post("/api/v1/studies/1.2.3.404/lock")) == Code.STUDY_NOT_FOUND
    assert code(rad.get(f"/api/v1/studies/{uid}/report")) == Code.REPORT_NOT_FOUND
    # The clinician of the sending hospital: no final report yet is none for them.
    ok(rad.post(f"/api/v1/studies/{uid}/lock"))
    draft(rad, uid)
    assert code(world.sign_in("clin").get(f"/api/v1/studies/{uid}/report")) == Code.REPORT_NOT_FOUND


def test_outsiders_get_30009(world) -> None:
    uid = world.study("S1")
    for username in ("rad9", "clin"):
        c = world.sign_in(username)
        assert code(c.post(f"/api/v1/studies/{uid}/lock")) == Code.STUDY_NO_PERMISSION
        assert code(c.put(f"/api/v1/studies/{uid}/report", json={"conclusion": "x", "version": 0})) == \
            Code.STUDY_NO_PERMISSION
    rad9 = world.sign_in("rad9")
    assert code(rad9.get(f"/api/v1/studies/{uid}/report")) == Code.STUDY_NO_PERMISSION
    assert code(rad9.get(f"/api/v1/studies/{uid}/priors")) == Code.STUDY_NO_PERMISSION
    assert ok(rad9.get("/api/v1/worklist"))["total"] == 0  # h9 reads for nobody routed to it
    assert code(world.sign_in("clin").get("/api/v1/worklist")) == Code.NO_PERMISSION


def test_a_second_reader_gets_30010_naming_the_holder_and_the_holder_renews(world) -> None:
    uid = world.study("S1")
    rad, rad2 = world.sign_in("rad"), world.sign_in("rad2")
    first = ok(rad.post(f"/api/v1/studies/{uid}/lock"))
    refused = rad2.post(f"/api/v1/studies/{uid}/lock").json()
    assert refused["code"] == Code.REPORT_LOCKED and "王放射" in refused["message"]
    assert first["lockedAt"][:10] in refused["message"]
    world.clock.advance(60)
    again = ok(rad.post(f"/api/v1/studies/{uid}/lock"))
    assert again["lockedAt"] > first["lockedAt"]
    assert code(rad2.put(f"/api/v1/studies/{uid}/report", json={"conclusion": "x", "version": 0})) == \
        Code.REPORT_LOCKED


def test_a_lock_ends_30_minutes_after_the_last_save(world) -> None:
    uid = world.study("S1")
    rad, rad2 = world.sign_in("rad"), world.sign_in("rad2")
    ok(rad.post(f"/api/v1/studies/{uid}/lock"))
    world.clock.advance(20 * 60)
    draft(rad, uid)  # a save keeps it
    world.clock.advance(20 * 60)
    assert code(rad2.post(f"/api/v1/studies/{uid}/lock")) == Code.REPORT_LOCKED
    world.clock.advance(11 * 60)
    assert ok(rad2.post(f"/api/v1/studies/{uid}/lock"))["lockedBy"] == "rad2"
    # The old holder's save is now refused: the lock is someone else's.
    assert code(rad.put(f"/api/v1/studies/{uid}/report", json={"conclusion": "x", "version": 1})) == \
        Code.REPORT_LOCKED


def test_someone_elses_lock_30011_except_the_centres_admin_audited(world) -> None:
    uid = world.study("S1")
    rad, rad2, admin = world.sign_in("rad"), world.sign_in("rad2"), world.sign_in("h2admin")
    ok(rad.post(f"/api/v1/studies/{uid}/lock"))
    assert code(rad2.delete(f"/api/v1/studies/{uid}/lock")) == Code.REPORT_UNLOCK_FAILED
    assert code(world.sign_in("u1admin").post(f"/api/v1/studies/{uid}/lock")) == Code.STUDY_NO_PERMISSION
    ok(admin.delete(f"/api/v1/studies/{uid}/lock"))
    with world.runtime.db.read() as conn:
        rows = conn.execute(select(s.staff_audit.c.username, s.staff_audit.c.detail)
                            .where(s.staff_audit.c.action == "reading.unlock.override")).all()
    assert [(r.username, r.detail) for r in rows] == [("h2admin", '{"holder":"rad"}')]
    assert ok(rad2.post(f"/api/v1/studies/{uid}/lock"))["lockedBy"] == "rad2"
    ok(rad2.delete(f"/api/v1/studies/{uid}/lock"))  # one's own
    assert ok(rad.post(f"/api/v1/studies/{uid}/lock"))["lockedBy"] == "rad"


def test_a_stale_version_30006_overwrites_nothing(world) -> None:
    uid = world.study("S1")
    rad = world.sign_in("rad")
    ok(rad.post(f"/api/v1/studies/{uid}/lock"))
    draft(rad, uid, 0, "第一版")
    draft(rad, uid, 1, "第二版")
    stale = rad.put(f"/api/v1/studies/{uid}/report", json={"conclusion": "旧页面", "version": 1}).json()
    assert stale["code"] == Code.REPORT_MODIFIED
    assert code(rad.put(f"/api/v1/studies/{uid}/report", json={"conclusion": "新报告", "version": 0})) == \
        Code.REPORT_MODIFIED
    report = ok(rad.get(f"/api/v1/studies/{uid}/report"))
    assert report["conclusion"] == "第二版" and report["version"] == 2


def test_a_new_report_where_one_is_final_30004(world) -> None:
    uid = world.study("S1")
    rad, rev = world.sign_in("rad"), world.sign_in("rev")
    ok(rad.post(f"/api/v1/studies/{uid}/lock"))
    draft(rad, uid)
    ok(rad.post(f"/api/v1/studies/{uid}/report/submit"))
    ok(rev.post(f"/api/v1/studies/{uid}/report/approve"))
    assert code(rad.put(f"/api/v1/studies/{uid}/report", json={"conclusion": "x", "version": 0})) == \
        Code.REPORT_EXISTS
    assert code(rad.post(f"/api/v1/studies/{uid}/lock")) == Code.REPORT_EXISTS


def test_steps_out_of_order_30007_and_the_author_never_approves(world) -> None:
    uid = world.study("S1")
    rad, rev = world.sign_in("rad"), world.sign_in("rev")
    assert code(rev.post(f"/api/v1/studies/{uid}/report/approve")) == Code.REPORT_NOT_FOUND
    ok(rad.post(f"/api/v1/studies/{uid}/lock"))
    assert code(rad.post(f"/api/v1/studies/{uid}/report/submit")) == Code.REPORT_UPDATE_FAILED  # nothing saved
    draft(rad, uid)
    assert code(rev.post(f"/api/v1/studies/{uid}/report/approve")) == Code.REPORT_UPDATE_FAILED  # not submitted
    assert code(rev.post(f"/api/v1/studies/{uid}/report/submit")) == Code.NO_PERMISSION  # a reviewer
    ok(rad.post(f"/api/v1/studies/{uid}/report/submit"))
    assert code(rad.post(f"/api/v1/studies/{uid}/report/submit")) == Code.REPORT_UPDATE_FAILED
    assert code(rev.post(f"/api/v1/studies/{uid}/report/return", json={})) == Code.REQUIRED_EMPTY
    assert code(rad.put(f"/api/v1/studies/{uid}/report", json={"conclusion": 3, "version": 2})) == \
        Code.INVALID_FORMAT
    assert code(rad.post(f"/api/v1/studies/{uid}/report/amend")) == Code.REPORT_UPDATE_FAILED


def test_a_reviewer_who_wrote_it_does_not_approve_it(world) -> None:
    # A user who is both radiologist and reviewer at the centre.
    from yingyun.cloud.staff import accounts

    from .conftest import PASSWORD

    with world.runtime.db.write() as conn:
        accounts.add_user(conn, vault=world.runtime.vault, username="both", name="两者",
                          roles=[accounts.parse_role("radiologist:hospital:h2"),
                                 accounts.parse_role("reviewer:hospital:h2")], password=PASSWORD)
    uid = world.study("S1")
    both = world.sign_in("both")
    ok(both.post(f"/api/v1/studies/{uid}/lock"))
    draft(both, uid)
    ok(both.post(f"/api/v1/studies/{uid}/report/submit"))
    assert code(both.post(f"/api/v1/studies/{uid}/report/approve")) == Code.NO_PERMISSION
    ok(world.sign_in("rev").post(f"/api/v1/studies/{uid}/report/approve"))


def _race(calls) -> list[dict]:
    """Run the calls at once (a barrier, real threads), each over its own HTTP client; their answers."""
    barrier = threading.Barrier(len(calls))
    answers: list[dict | None] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        answers[i] = calls[i]().json()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(a is not None for a in answers)
    return answers  # type: ignore[return-value]


def test_two_readers_racing_for_a_lock_one_wins(world) -> None:
    for n in range(3):
        uid = world.study(f"R{n}")
        rad, rad2 = world.sign_in("rad"), world.sign_in("rad2")
        answers = _race([lambda c=rad, u=uid: c.post(f"/api/v1/studies/{u}/lock"),
                         lambda c=rad2, u=uid: c.post(f"/api/v1/studies/{u}/lock")])
        assert sorted(a["code"] for a in answers) == [0, Code.REPORT_LOCKED], answers
        winner = next(a for a in answers if a["code"] == 0)["data"]["lockedBy"]
        with world.runtime.db.read() as conn:
            held = conn.execute(select(s.reading_reports.c.locked_by)
                                .where(s.reading_reports.c.study_uid == uid)).scalar_one()
        assert held == winner


def test_two_saves_racing_on_one_version_one_wins(world) -> None:
    uid = world.study("S1")
    # Two tabs of one browser: one session (a second sign-in would end the first), two connections.
    tab1 = world.sign_in("rad")
    tab2 = world.client_like(tab1)
    ok(tab1.post(f"/api/v1/studies/{uid}/lock"))
    draft(tab1, uid, 0, "起草")
    answers = _race([lambda: tab1.put(f"/api/v1/studies/{uid}/report", json={"conclusion": "甲", "version": 1}),
                     lambda: tab2.put(f"/api/v1/studies/{uid}/report", json={"conclusion": "乙", "version": 1})])
    assert sorted(a["code"] for a in answers) == [0, Code.REPORT_MODIFIED], answers
    won = next(a for a in answers if a["code"] == 0)
    assert won["data"] == {"version": 2}
    report = ok(tab1.get(f"/api/v1/studies/{uid}/report"))
    assert report["version"] == 2 and report["conclusion"] in ("甲", "乙")
