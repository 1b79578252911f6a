"""Final reports to the hospital's RIS without the hop (`serve`): a real HTTP RIS that checks the vendor's
signature, a real MLLP engine; exactly once, also after being down; parked after 24 h, replayed.

The reports are made final the way the reading core does it: `accept_report` (source "cloud") and then
`queue_report_down` in the same transaction. The worker is driven pass by pass with a clock the test moves.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from yingyun.archive.accept import accept_report, accept_study
from yingyun.archive.downlink import KIND_OUT, queue_report_down
from yingyun.archive.events import NoEvents
from yingyun.contract import gateway_api as g
from yingyun.contract.params import parse
from yingyun.core.errors import NotFound
from yingyun.gateway.delivery import DeliveryConfig, ReportDelivery, delivery_rows, parse_hl7_to
from yingyun.gateway.hl7 import mapping
from yingyun.gateway.hl7.message import Message
from yingyun.storage import schema as s
from yingyun.storage.queue import DELIVERED, PARKED, SqlJobQueue

from ..support.ris_peers import MllpReceiver, RisReceiver

YINGYUN = str(Path(sys.executable).parent / "yingyun")
UID = "1.2.826.0.1.3680043.10.1.1"
STUDY = {"patientId": "P1", "patientName": "张三丰", "patientSex": "M", "studyId": "S1", "accessNumber": "A1",
         "modality": "CT", "phoneNum": "13800138000", "studyUid": UID}
REPORT = {"reportNumber": "R1", "studyId": "S1", "accessNumber": "A1",
          "imageDescription": "肝脏形态正常。\n胆囊未见异常。", "conclusion": "未见明显异常",
          "reportDoctor": "李医生", "reportTime": "2026-12-01 10:00:00",
          "auditDoctor": "王主任", "auditTime": "2026-12-01 11:30:00"}


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def make_final(rt, report=REPORT, *, study=STUDY, register=True) -> None:
    """A report signed off in the cloud, as the reading core writes it."""
    with rt.db.write() as conn:
        if register:
            accept_study(conn, vault=rt.vault, hospital_id="h1", record=parse(g.STUDY_FIELDS, study),
                         source="ris-h1", events=NoEvents())
        accept_report(conn, vault=rt.vault, hospital_id="h1", record=parse(g.REPORT_FIELDS, report), source="cloud",
                      events=NoEvents())
        queue_report_down(conn, study_uid=study["studyUid"])


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def receiver(tenant):
    r = RisReceiver(tenant["app_id"], tenant["token"])
    yield r
    r.down()


def delivery(runtime, clock, **config) -> ReportDelivery:
    return ReportDelivery(db=runtime.db, vault=runtime.vault, tenancy=runtime.tenancy, clock=clock,
                          config=DeliveryConfig(**config))


def drain(worker: ReportDelivery, passes: int = 10) -> None:
    for _ in range(passes):
        if not worker.run_once():
            return


def test_the_ris_gets_the_signed_report_once(runtime, tenant, receiver, clock):
    receiver.up()
    worker = delivery(runtime, clock, ris_url=receiver.url)
    try:
        make_final(runtime)
        drain(worker)
        drain(worker)
    finally:
        worker.stop()
    assert receiver.bad_signatures == []
    assert len(receiver.accepted) == 1 and len(receiver.attempts) == 1
    body = receiver.accepted[0].body
    assert body == {**{k: REPORT.get(k, "") for k in ("reportNumber", "studyId", "accessNumber", "imageDescription",
                                                      "conclusion", "reportTime", "reportDoctor", "auditTime",
                                                      "auditDoctor", "printTime", "printDoctor")},
                    "studyUid": UID, "status": "final"}
    assert "张三丰" not in json.dumps(body, ensure_ascii=False)  # the report carries no patient identity
    (row,) = delivery_rows(runtime.db, show=str)
    assert row["channel"] == "ris" and row["state"] == DELIVERED and row["attempts"] == 1
    assert row["eventId"] == receiver.accepted[0].event_id


def test_down_then_back_exactly_one_accepted_delivery(runtime, tenant, receiver, clock):
    worker = delivery(runtime, clock, ris_url=receiver.url)
    try:
        make_final(runtime)
        drain(worker)  # nobody listens: connection refused
        (row,) = delivery_rows(runtime.db, show=str)
        assert row["state"] == "pending" and row["attempts"] == 1 and "Connect" in row["lastError"]
        receiver.mode = "http500"
        receiver.up()
        clock.offset += 60
        drain(worker)
        receiver.mode = "code1"
        clock.offset += 600
        drain(worker)
        assert receiver.accepted == [] and len(receiver.attempts) == 2
        receiver.mode = "ok"
        clock.offset += 3600
        drain(worker)
        clock.offset += 3600
        drain(worker)
    finally:
        worker.stop()
    assert len(receiver.accepted) == 1
    assert len(set(receiver.attempts)) == 1  # every attempt carried the same eventId
    (row,) = delivery_rows(runtime.db, show=str)
    assert row["state"] == DELIVERED and row["attempts"] == 4


def test_parked_after_24_hours_then_replayed(runtime, tenant, receiver, clock, settings):
    receiver.mode = "code1"
    receiver.up()
    worker = delivery(runtime, clock, ris_url=receiver.url)
    try:
        make_final(runtime)
        drain(worker)
        for _ in range(30):  # an hour at a time, past the day
            clock.offset += 3600
            drain(worker)
        (row,) = delivery_rows(runtime.db, show=str)
        assert row["state"] == PARKED and row["lastError"] == "code 1: RIS busy"
        attempts = len(receiver.attempts)
        clock.offset += 7 * 86400
        drain(worker)
        assert len(receiver.attempts) == attempts  # parked: never tried again by itself
        listed = json.loads(admin(settings, "ris-deliveries", "--json"))
        assert [(d["channel"], d["state"]) for d in listed] == [("ris", "parked")]
        assert "张三丰" not in json.dumps(listed, ensure_ascii=False) and "P1" not in json.dumps(listed)
        receiver.mode = "ok"
        assert "1 delivery(ies) queued again" in admin(settings, "ris-deliveries", "replay", "--all-parked")
        clock.offset = 0.0  # the replay starts a new cycle now
        drain(worker)
    finally:
        worker.stop()
    assert len(receiver.accepted) == 1
    (row,) = delivery_rows(runtime.db, show=str)
    assert row["state"] == DELIVERED


def admin(settings, *args: str) -> str:
    return subprocess.run([YINGYUN, "admin", *args, "--data-dir", str(settings.data_dir), "--database-url",
                           settings.database_url], check=True, capture_output=True, text=True, timeout=60).stdout


def test_an_amended_report_is_a_new_delivery_in_order(runtime, tenant, receiver, clock):
    receiver.up()
    worker = delivery(runtime, clock, ris_url=receiver.url)
    try:
        make_final(runtime)
        make_final(runtime, dict(REPORT, conclusion="修正：左肾小结石"), register=False)
        drain(worker)
        drain(worker)
    finally:
        worker.stop()
    assert [d.body["conclusion"] for d in receiver.accepted] == ["未见明显异常", "修正：左肾小结石"]
    assert len({d.event_id for d in receiver.accepted}) == 2


def test_a_study_without_a_report_is_refused(runtime, tenant):
    with pytest.raises(NotFound), runtime.db.write() as conn:
        accept_study(conn, vault=runtime.vault, hospital_id="h1", record=parse(g.STUDY_FIELDS, STUDY),
                     source="ris-h1", events=NoEvents())
        queue_report_down(conn, study_uid=UID)
    with runtime.db.read() as conn:  # nothing half-written: the study's transaction rolled back with it
        assert conn.execute(select(func.count()).select_from(s.studies)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(s.jobs)).scalar() == 0


def test_the_hospitals_own_url_wins_over_the_default(runtime, tenant, receiver, clock, settings):
    receiver.up()
    out = admin(settings, "hospital", "ris-report-url", "--id", "h1", "--url", receiver.url)
    assert "h1" in out
    worker = delivery(runtime, clock, ris_url="http://127.0.0.1:9/nowhere")
    try:
        make_final(runtime)
        drain(worker)
    finally:
        worker.stop()
    assert len(receiver.accepted) == 1


def test_oru_r01_over_mllp_until_aa(runtime, tenant, clock):
    engine = MllpReceiver(code="AE").up()
    worker = delivery(runtime, clock, hl7_to=parse_hl7_to(engine.address))
    try:
        make_final(runtime)
        drain(worker)
        (row,) = delivery_rows(runtime.db, show=str)
        assert row["channel"] == "hl7" and row["state"] == "pending" and row["lastError"].startswith("AE")
        engine.code = "AA"
        clock.offset += 120
        drain(worker)
        clock.offset += 3600
        drain(worker)
    finally:
        worker.stop()
        engine.down()
    (raw,) = engine.accepted()
    msg = Message.decode(raw)
    assert msg.value("MSH", 9) == "ORU" and msg.value("MSH", 9, 2) == "R01"
    assert msg.value("MSH", 18) == "UNICODE UTF-8" and msg.codec == "utf-8"
    assert msg.value("PID", 3) == "P1" and msg.value("PID", 5) == "张三丰"
    assert msg.value("ZDS", 1) == UID
    (back,) = mapping.reports(msg)  # what our own intake reads of it is the report
    assert back.status == "final"
    for name in ("studyId", "accessNumber", "imageDescription", "conclusion", "reportDoctor", "auditDoctor",
                 "auditTime"):
        assert back.report.body[name] == REPORT[name], name
    (row,) = delivery_rows(runtime.db, show=str)
    assert row["state"] == DELIVERED


def test_both_channels_are_delivered_on_their_own(runtime, tenant, receiver, clock):
    engine = MllpReceiver().up()
    receiver.up()
    worker = delivery(runtime, clock, ris_url=receiver.url, hl7_to=parse_hl7_to(engine.address))
    try:
        make_final(runtime)
        drain(worker)
    finally:
        worker.stop()
        engine.down()
    assert len(receiver.accepted) == 1 and len(engine.accepted()) == 1
    assert sorted(r["channel"] for r in delivery_rows(runtime.db, show=str)) == ["hl7", "ris"]
    assert SqlJobQueue(runtime.db).counts(kind=KIND_OUT)[DELIVERED] == 2


def test_serve_delivers_itself_even_for_a_hospital_with_a_gateway(runtime, tenant, receiver, clock):
    from yingyun.storage import deployment

    deployment.record(runtime.db, deployment.ROLE, "serve")  # as `yingyun serve` records it when it starts
    runtime.tenancy.add_gateway(gateway_id="gw1", hospital_id="h1", key="k" * 40)
    receiver.up()
    worker = delivery(runtime, clock, ris_url=receiver.url)
    try:
        make_final(runtime)
        drain(worker)
    finally:
        worker.stop()
    assert len(receiver.accepted) == 1
    with runtime.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(s.report_downlink)).scalar() == 0


def test_the_hl7_address_is_checked_at_start():
    from yingyun.core.errors import Invalid
    from yingyun.settings import Settings

    for bad in ("ris.example", "ris.example:0", "ris.example:70000", "host:port"):
        with pytest.raises(Invalid, match="hl7-report-to"):
            Settings(data_dir=Path("/tmp/x"), database_url="sqlite:////tmp/x/y.db", hl7_report_to=bad)
    assert parse_hl7_to("10.0.0.5:2576") == ("10.0.0.5", 2576)
    with pytest.raises(Invalid, match="ris-report-url"):
        Settings(data_dir=Path("/tmp/x"), database_url="sqlite:////tmp/x/y.db", ris_report_url="ftp://ris")
