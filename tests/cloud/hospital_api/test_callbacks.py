"""Status callbacks (§3.4) to a real partner receiver: signed, encrypted, ordered, durable."""

from __future__ import annotations

import dataclasses
import io
import json
import time

import httpx
import pytest

from yingyun.archive.importer import run_import
from yingyun.archive.stability import StabilityMonitor
from yingyun.cloud.callbacks.events import KIND
from yingyun.serve import callback_dispatcher

from ...support.dicom_data import StudySpec, make_study
from .conftest import cli, ID_P, IH_TOKEN, PHONE_P, Receiver, enc, ok, query, report, study



def images(runtime, tmp_path, hospital: str, study_uid: str, *, n: int = 2, tag: str = "a") -> None:
    spec = StudySpec(study_uid=study_uid, accession="A-" + tag)
    folder = tmp_path / f"dicom-{tag}"
    make_study(folder, spec, series=1, per_series=n)
    summary = run_import(runtime.instances, spool_dir=runtime.settings.spool_dir,
                         hospital_id=hospital, paths=[str(folder)], out=io.StringIO())
    assert not summary["failed"], summary


def stabilise(runtime, hctx) -> int:
    return StabilityMonitor(runtime.db, stable_seconds=0.0, on_stable=hctx.events.on_stable).run_once()


def test_status_0_1_3_signed_and_encrypted(ris, ih, receiver, dispatcher, runtime, hctx, tmp_path, server):
    uid = "1.2.826.0.1.3680043.10.1404.77.1"
    ok(ris["h1"].post("/ris/study/add", study("S1", studyUid=uid)))
    dispatcher.drain()
    ok(ris["h1"].post("/ris/report/add", report("S1")))
    dispatcher.drain()
    images(runtime, tmp_path, "h1", uid)
    assert stabilise(runtime, hctx) == 1
    dispatcher.drain()
    assert receiver.statuses() == [("S1", 0), ("S1", 1), ("S1", 3)]
    assert receiver.rejected == []  # every delivery carried a valid signature
    first, _, last = receiver.received
    assert first.identity == {"phoneNum": PHONE_P, "idNum": ID_P}  # encrypted with the partner's own token
    assert len({d.event_id for d in receiver.received}) == 3
    body = last.body
    assert {k: body[k] for k in ("patientId", "hospitalId", "hisId", "studyType", "studyDate", "studyId", "bodyPart",
                                 "studyName")} == {
        "patientId": "P-S1", "hospitalId": "h1", "hisId": "HIS-S1", "studyType": 0,
        "studyDate": "2026-11-20 09:30:00", "studyId": "S1", "bodyPart": "胸部", "studyName": "胸部CT平扫"}
    assert first.body["reportId"] == "" and last.body["reportId"].isdigit()
    # The report id is the one patientStudies gives; the links open.
    listed = ok(ih.post("/thirdparty/patientStudies/ih", query(dataFlag=1)))
    assert listed[0]["reportId"] == last.body["reportId"]
    assert httpx.get(body["h5Url"]).status_code == 200
    assert httpx.get(body["h5DetailUrl"]).status_code == 200
    # More images later: images are stable again -> 3 again; a study update re-sends its current status.
    images(runtime, tmp_path, "h1", uid, n=1, tag="b")
    assert stabilise(runtime, hctx) == 1
    ok(ris["h1"].post("/ris/study/add", study("S1", studyUid=uid, bodyPart="胸腹部")))
    dispatcher.drain()
    assert receiver.statuses()[3:] == [("S1", 3), ("S1", 3)]
    assert receiver.received[-1].body["bodyPart"] == "胸腹部"
    # Images stable before the report: 2, then 3 when the report comes.
    uid2 = "1.2.826.0.1.3680043.10.1404.77.2"
    ok(ris["h2"].post("/ris/study/add", study("S2", studyUid=uid2)))
    images(runtime, tmp_path, "h2", uid2, tag="c")
    stabilise(runtime, hctx)
    ok(ris["h2"].post("/ris/report/add", report("S2")))
    dispatcher.drain()
    assert [s for sid, s in receiver.statuses() if sid == "S2"] == [0, 2, 3]
    # The CLI shows every delivery.
    rows = json.loads(cli(runtime.settings, "callbacks", "--json").stdout)
    assert len(rows) == 8 and {r["state"] for r in rows} == {"delivered"}
    assert set(rows[0]) >= {"id", "eventId", "appId", "studyId", "status", "state", "attempts", "lastError",
                            "nextAttemptAt"}
    assert [r["status"] for r in rows if r["studyId"] == "S1"] == [0, 1, 3, 3, 3]


def test_only_subscribed_partners_get_callbacks(ris, receiver, dispatcher, runtime):
    # A second partner with its own receiver, granted h3 only.
    other = Receiver("ih3", "ih3-token-0123456789abcdefghijkl").up()
    try:
        runtime.tenancy.add_partner(app_id="ih3", token=other.token, hospitals=["h3"], callback_url=other.url)
        ok(ris["h1"].post("/ris/study/add", study("S1")))
        ok(ris["h3"].post("/ris/study/add", study("S3")))
        dispatcher.drain()
        assert sorted(receiver.statuses()) == [("S1", 0), ("S3", 0)]  # ih: u1 and h3
        assert other.statuses() == [("S3", 0)]  # ih3: h3 only
        assert other.received[0].identity["idNum"] == ID_P  # under ih3's own token
        assert other.rejected == [] and receiver.rejected == []
    finally:
        other.down()


def test_partner_down_then_back(ris, receiver, dispatcher, clock, hctx, runtime):
    receiver.mode = "http500"
    ok(ris["h1"].post("/ris/study/add", study("S1")))
    ok(ris["h1"].post("/ris/report/add", report("S1")))
    dispatcher.drain()
    # Only the first event is tried: the second waits behind it (order per study).
    assert len(receiver.attempts) == 1 and receiver.received == []
    first_event = receiver.attempts[0]
    pending = hctx.queue.list(kind=KIND, failed=True)
    assert [(j.payload["status"], j.attempts, j.last_error) for j in pending] == [(0, 1, "HTTP 500")]
    # The endpoint goes away entirely: connection refused, retried later.
    receiver.down()
    clock.advance(40)
    dispatcher.drain()
    assert hctx.queue.list(kind=KIND, failed=True)[0].attempts == 2
    assert "Connect" in hctx.queue.list(kind=KIND, failed=True)[0].last_error
    # Not due yet: nothing is tried before the backoff ends.
    dispatcher.drain()
    assert hctx.queue.list(kind=KIND, failed=True)[0].attempts == 2
    # It comes back; once the backoff has passed, 0 then 1 arrive, in order, 0 with its original eventId.
    receiver.mode = "ok"
    receiver.up()
    clock.advance(3600)
    dispatcher.drain()
    assert receiver.statuses() == [("S1", 0), ("S1", 1)]
    assert receiver.received[0].event_id == first_event
    assert [j.state for j in hctx.queue.list(kind=KIND)] == ["delivered", "delivered"]
    # Later events flow at once.
    ok(ris["h1"].post("/ris/study/add", study("S1", bodyPart="头颅")))
    dispatcher.drain()
    assert receiver.statuses()[-1] == ("S1", 1)


def test_parked_after_a_day_then_replayed(ris, receiver, clock, hctx, runtime):
    # Backoff capped at 6 h here (1 h by default), so a simulated day takes few rounds.
    dispatcher = callback_dispatcher(hctx)
    dispatcher.config = dataclasses.replace(dispatcher.config, retry_max_s=6 * 3600)
    receiver.mode = "code1"
    ok(ris["h1"].post("/ris/study/add", study("S1")))
    ok(ris["h2"].post("/ris/study/add", study("S2")))
    dispatcher.drain()
    elapsed = 0.0
    while hctx.queue.counts(kind=KIND)["parked"] < 2:
        step = min(30 * 2 ** len(receiver.attempts) / 2, 6.2 * 3600)
        clock.advance(step)
        elapsed += step
        dispatcher.drain()
        assert elapsed < 40 * 3600
    assert elapsed >= 24 * 3600  # retried for at least 24 hours
    jobs = hctx.queue.list(kind=KIND)
    assert {j.state for j in jobs} == {"parked"} and all(j.attempts > 5 for j in jobs)
    failed = json.loads(cli(runtime.settings, "callbacks", "--json", "--failed").stdout)
    assert {r["studyId"] for r in failed} == {"S1", "S2"}
    assert failed[0]["state"] == "parked" and failed[0]["lastError"].endswith("code 1: partner busy")
    assert failed[0]["nextAttemptAt"] is None
    # Replay one, then all.
    receiver.mode = "ok"
    assert "1 delivery" in cli(runtime.settings, "callbacks", "replay", "--id", str(failed[0]["id"])).stdout
    clock.advance(301)  # the partner's rest after its last failure (at most 5 min)
    dispatcher.drain()
    assert receiver.statuses() == [(failed[0]["studyId"], 0)]
    assert receiver.received[0].event_id == failed[0]["eventId"]
    cli(runtime.settings, "callbacks", "replay", "--all-parked")
    dispatcher.drain()
    assert sorted(receiver.statuses()) == [("S1", 0), ("S2", 0)]
    assert json.loads(cli(runtime.settings, "callbacks", "--json", "--failed").stdout) == []
    dispatcher.stop()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # dispatcher logic; the queue runs on both
def test_slow_partner_blocks_neither_ingest_nor_others(ris, receiver, hctx, runtime):
    fast = Receiver("ih4", "ih4-token-0123456789abcdefghijkl").up()
    receiver.mode, receiver.slow_s = "slow", 8.0  # hangs 8 s; we give up after 4 s
    try:
        runtime.tenancy.add_partner(app_id="ih4", token=fast.token, hospitals=["h1"], callback_url=fast.url)
        dispatcher = callback_dispatcher(hctx)
        dispatcher.config = dataclasses.replace(dispatcher.config, timeout_s=4.0)
        dispatcher.http.timeout = httpx.Timeout(4.0)
        dispatcher.start()
        try:
            t0 = time.perf_counter()
            for i in range(12):
                ok(ris["h1"].post("/ris/study/add", study(f"S{i}")))
            assert time.perf_counter() - t0 < 4.0  # all of ingest, while the slow partner hangs
            deadline = time.time() + 10
            while len(fast.received) < 12 and time.time() < deadline:
                time.sleep(0.02)
            # The fast partner has everything while the slow one's requests are still hanging.
            assert len(fast.received) == 12
            assert receiver.attempts and receiver.received == [] and not hctx.queue.list(kind=KIND, failed=True)
            assert len(receiver.attempts) <= hctx.config.delivery.per_partner  # its own slots, no more
            # Then its requests time out and are retried later.
            deadline = time.time() + 10
            while not (failing := hctx.queue.list(kind=KIND, failed=True)) and time.time() < deadline:
                time.sleep(0.05)
            assert failing and all(j.payload["appId"] == "ih" for j in failing)
            assert all("timed out" in (j.last_error or "") for j in failing)
        finally:
            dispatcher.stop()
    finally:
        fast.down()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # dispatcher logic; the queue runs on both
def test_deleted_study_callbacks_are_not_sent(ris, receiver, dispatcher, hctx):
    receiver.mode = "http500"
    ok(ris["h1"].post("/ris/study/add", study("S1")))
    dispatcher.drain()
    s1 = study("S1")
    ok(ris["h1"].post("/ris/study/delete", {"patientId": s1["patientId"], "studyId": "S1",
                                           "accessNumber": s1["accessNumber"], "studyUid": "1.2"}))
    receiver.mode = "ok"
    hctx.clock.advance(3600)
    dispatcher.drain()
    assert receiver.received == []
    assert [j.state for j in hctx.queue.list(kind=KIND)] == ["delivered"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # dispatcher logic; the queue runs on both
def test_identity_uses_current_token_after_rotation(ris, receiver, dispatcher, runtime):
    new = runtime.tenancy.rotate_partner(app_id="ih", grace_s=3600)
    receiver.token = new
    ok(ris["h1"].post("/ris/study/add", study("S1")))
    dispatcher.drain()
    assert receiver.rejected == [] and receiver.received[0].identity["idNum"] == ID_P
    assert enc(ID_P, IH_TOKEN) != enc(ID_P, new)
