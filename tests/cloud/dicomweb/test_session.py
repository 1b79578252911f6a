"""DICOMweb with a staff session cookie (the reading viewer's way in, issue 15 item 6): reads only, each study
decided by the StudyGate, the session resolved without a database round trip per request."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import event

from yingyun.cloud.dicomweb import Caller, HospitalScopeGate
from yingyun.cloud.patient import audit as audit_mod
from yingyun.cloud.staff import accounts
from yingyun.cloud.staff.edge import CSRF_HEADER, SESSION_COOKIE

from ...support.dicom_data import StudySpec, make, uid
from .conftest import Archive

PASSWORD = "correct horse battery"
DICOM_JSON = {"Accept": "application/dicom+json"}


@pytest.fixture(scope="module")
def users(archive: Archive) -> Archive:
    with archive.runtime.db.write() as conn:
        for username, roles in [("rad1", ["radiologist:hospital:h1"]), ("u1clin", ["clinician:hospital:h2"]),
                                ("aud1", ["auditor:hospital:h1"]), ("out1", ["clinician:hospital:h3"])]:
            accounts.add_user(conn, vault=archive.runtime.vault, username=username, name="读片" + username,
                              roles=[accounts.parse_role(r) for r in roles], password=PASSWORD)
    return archive


@contextlib.contextmanager
def signed_in(archive: Archive, username: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=archive.url, timeout=30) as c:
        body = c.post("/api/v1/session", json={"username": username, "password": PASSWORD}).json()
        assert body["code"] == 0, body
        c.headers[CSRF_HEADER] = body["data"]["csrfToken"]
        assert c.cookies.get(SESSION_COOKIE)
        yield c


def test_a_staff_session_reads_the_studies_of_its_hospitals(users: Archive) -> None:
    zhang, zhao = users.studies["zhang"].study_uid, users.studies["zhao"].study_uid
    with signed_in(users, "rad1") as c:
        found = c.get("/dicomweb/studies", params={"StudyInstanceUID": zhang}, headers=DICOM_JSON)
        assert found.status_code == 200 and len(found.json()) == 1
        meta = c.get(f"/dicomweb/studies/{zhang}/metadata", headers=DICOM_JSON)
        assert meta.status_code == 200 and len(meta.json()) == 6
        assert c.get(f"/dicomweb/studies/{zhang}/series", headers=DICOM_JSON).status_code == 200
        # All its hospital's visible studies, and nothing of another hospital's, nor the deleted one.
        listed = {s["0020000D"]["Value"][0] for s in c.get("/dicomweb/studies", headers=DICOM_JSON).json()}
        assert listed == {zhang, users.studies["wang"].study_uid}
        # Another hospital's study (h3): not there, whichever way it is asked for.
        assert c.get(f"/dicomweb/studies/{zhao}/metadata", headers=DICOM_JSON).status_code == 404
        assert c.get(f"/dicomweb/studies/{zhao}/series", headers=DICOM_JSON).json() == []
        assert c.get("/dicomweb/studies", params={"StudyInstanceUID": zhao}, headers=DICOM_JSON).json() == []
        both = c.get("/dicomweb/studies", params={"StudyInstanceUID": f"{zhang},{zhao}"}, headers=DICOM_JSON)
        assert [s["0020000D"]["Value"][0] for s in both.json()] == [zhang]
        gone = users.studies["gone"].study_uid
        assert c.get(f"/dicomweb/studies/{gone}/metadata", headers=DICOM_JSON).status_code == 404


def test_roles_that_read_no_images_see_nothing(users: Archive) -> None:
    zhang = users.studies["zhang"].study_uid
    with signed_in(users, "aud1") as c:  # an auditor of h1 reads the audit trail, not images
        assert c.get(f"/dicomweb/studies/{zhang}/metadata", headers=DICOM_JSON).status_code == 404
        assert c.get("/dicomweb/studies", headers=DICOM_JSON).json() == []
    with signed_in(users, "out1") as c:  # a clinician of h3 sees h3's study only
        assert c.get(f"/dicomweb/studies/{zhang}/metadata", headers=DICOM_JSON).status_code == 404
        listed = [s["0020000D"]["Value"][0] for s in c.get("/dicomweb/studies", headers=DICOM_JSON).json()]
        assert listed == [users.studies["zhao"].study_uid]


def test_no_store_with_a_cookie(users: Archive, tmp_path) -> None:
    ds_path = tmp_path / "new.dcm"
    make(ds_path, StudySpec(patient_id="PNEW", accession="ANEW"), series_uid=uid())
    data = ds_path.read_bytes()
    boundary = "yyboundary"
    body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data
            + f"\r\n--{boundary}--\r\n".encode())
    ctype = f'multipart/related; type="application/dicom"; boundary={boundary}'
    with signed_in(users, "rad1") as c:  # even with the session's CSRF header: a cookie never stores
        r = c.post("/dicomweb/studies", content=body, headers={"Content-Type": ctype, **DICOM_JSON})
        assert r.status_code == 403, r.text
    with users.runtime.db.read() as conn:
        n = conn.exec_driver_sql("SELECT count(*) FROM instances WHERE hospital_id = 'h1'").scalar_one()
    assert n == 6 + 3 + 1  # zhang, wang (with its SR), gone: what the archive was given, nothing more


def test_no_cookie_or_a_dead_one_is_401(users: Archive) -> None:
    zhang = users.studies["zhang"].study_uid
    r = httpx.get(f"{users.dw}/studies/{zhang}/metadata", cookies={SESSION_COOKIE: "not-a-session"}, timeout=30)
    assert r.status_code == 401
    with signed_in(users, "rad1") as c:
        assert c.get(f"/dicomweb/studies/{zhang}/metadata", headers=DICOM_JSON).status_code == 200
        cookie = c.cookies.get(SESSION_COOKIE)
        assert c.delete("/api/v1/session").json()["code"] == 0
    # Signed out in this process: the briefly kept session is forgotten at once.
    r = httpx.get(f"{users.dw}/studies/{zhang}/metadata", cookies={SESSION_COOKIE: cookie}, timeout=30)
    assert r.status_code == 401


def test_the_session_is_not_read_from_the_database_per_request(users: Archive) -> None:
    zhang = users.studies["zhang"].study_uid
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        if "staff_sessions" in statement:
            seen.append(statement)

    engines = {users.runtime.db.reader, users.runtime.db.writer}
    with signed_in(users, "rad1") as c:
        for engine in engines:
            event.listen(engine, "before_cursor_execute", count)
        try:
            for _ in range(30):
                assert c.get(f"/dicomweb/studies/{zhang}/metadata", headers=DICOM_JSON).status_code == 200
        finally:
            for engine in engines:
                event.remove(engine, "before_cursor_execute", count)
    assert 1 <= len(seen) <= 2, seen  # one resolution (and perhaps one more past the few seconds it is kept)


def test_a_session_retrieval_is_audited_under_its_user(users: Archive) -> None:
    zhang = users.studies["zhang"].study_uid
    with signed_in(users, "rad1") as c:
        assert c.get(f"/dicomweb/studies/{zhang}/metadata", headers=DICOM_JSON).status_code == 200
    deadline = time.monotonic() + 20
    rows: list[dict] = []
    while time.monotonic() < deadline:
        with users.runtime.db.read() as conn:
            rows = [r for r in audit_mod.query(conn, study_uid=zhang)
                    if r["linkKind"] == "dicomweb" and (r["detail"] or "").startswith("user:rad1")]
        if rows:
            break
        time.sleep(0.05)
    assert rows and rows[0]["access"] == "dicomweb-metadata" and rows[0]["detail"] == "user:rad1 instances=6"


class OnlyStudy:
    """A gate of another rule (as the reading routes' will be): one named study, for one user, whatever its
    hospital."""

    def __init__(self, username: str, study_uid: str) -> None:
        self.username, self.study_uid = username, study_uid
        self.asked: list[str] = []

    def may_view(self, conn, caller: Caller, study_uid: str) -> bool:
        self.asked.append(study_uid)
        return caller.name == f"user:{self.username}" and study_uid == self.study_uid


def test_the_gate_decides_each_study(users: Archive) -> None:
    zhang, zhao = users.studies["zhang"].study_uid, users.studies["zhao"].study_uid
    dw = users.extra["app"].state.dicomweb  # the context the server's routes read
    gate = OnlyStudy("u1clin", zhao)  # a clinician of h2 reading h3's study (routed to it, say)
    old = dw.gate
    dw.gate = gate
    dw.gate_decisions.invalidate()
    try:
        with signed_in(users, "u1clin") as c:
            for _ in range(5):
                assert c.get(f"/dicomweb/studies/{zhao}/metadata", headers=DICOM_JSON).status_code == 200
            assert gate.asked.count(zhao) == 1  # decisions are kept a few seconds
            assert c.get("/dicomweb/studies", params={"StudyInstanceUID": zhao}, headers=DICOM_JSON).json()
            assert c.get(f"/dicomweb/studies/{zhang}/metadata", headers=DICOM_JSON).status_code == 404
            # Its own hospital's study (li, h2) is refused too: this gate allows one study only.
            li = users.studies["li"].study_uid
            assert c.get(f"/dicomweb/studies/{li}/metadata", headers=DICOM_JSON).status_code == 404
            assert c.get("/dicomweb/studies", headers=DICOM_JSON).json() == []
    finally:
        dw.gate = old
        dw.gate_decisions.invalidate()


def test_the_default_gate_is_the_hospital_scope(users: Archive) -> None:
    gate = HospitalScopeGate()
    zhang = users.studies["zhang"].study_uid
    with users.runtime.db.read() as conn:
        assert gate.may_view(conn, Caller("user:x", frozenset({"h1"}), session=True), zhang)
        assert not gate.may_view(conn, Caller("user:x", frozenset({"h2", "h3"}), session=True), zhang)
        assert gate.may_view(conn, Caller("user:op", None, session=True), zhang)
        assert not gate.may_view(conn, Caller("user:x", frozenset({"h1"}), session=True),
                                 users.studies["gone"].study_uid)
