"""HL7 v2 over MLLP, against a real listener on loopback: python-hl7's MLLP client as the RIS, and raw
sockets for what a client library would never send (bad framing, a cut connection)."""

from __future__ import annotations

import json
import socket
import time

import orjson
import pytest
from hl7.client import MLLPClient
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from typer.testing import CliRunner

from yingyun.cli.main import app as cli
from yingyun.contract import gateway_api as g
from yingyun.contract.params import parse
from yingyun.gateway.hl7.intake import Hl7Intake
from yingyun.gateway.hl7.metrics import Hl7Metrics
from yingyun.gateway.hl7.mllp import END, START, Deframer, Framed, FramingFault, MllpServer, frame
from yingyun.gateway.hl7.senders import Hl7Senders
from yingyun.gateway.outbox import KIND as SYNC
from yingyun.serve import record_events
from yingyun.storage import schema as s

FACILITY = "RMYY"  # the hospital's interface engine, as its MSH-4 says


def msh(kind: str, control_id: str, *, charset: str = "UNICODE UTF-8", version: str = "2.5.1",
        facility: str = FACILITY) -> str:
    structure = {"ORM^O01": "ORM_O01", "OMI^O23": "OMI_O23", "ORU^R01": "ORU_R01", "ADT^A08": "ADT_A01",
                 "ADT^A40": "ADT_A39"}.get(kind, "")
    return (f"MSH|^~\\&|RIS|{facility}|YINGYUN|YY|20261202101500||{kind}^{structure}|{control_id}|P|{version}"
            f"|||AL|NE|CHN|{charset}")


PID = ("PID|1||P1001^^^RMYY^MR~110101199003071234^^^CHN^NNCHN||张^三||19900307|M|||人民路1号^^北京^^100000"
       "||13800138000||||ACCT77")
PV1 = "PV1|1|O|RAD^^^RMYY||||||||||||||||V2001"


def orm(control_id: str = "M1", *, order: str = "ST1001", code: str = "NW", modality: str = "CT",
        charset: str = "UNICODE UTF-8", pid: str = PID) -> str:
    return "\r".join([
        msh("ORM^O01", control_id, charset=charset), pid, PV1,
        f"ORC|{code}|PL{order}|{order}||SC||^^^20261202103000^^S||20261202101500|||D01^李^医生|||||INT^内科",
        f"OBR|1|PL{order}|{order}|CTHEAD^头颅CT平扫|||20261202101500||||||头痛||^^^头部|D01^李^医生||ACC{order}"
        f"||||||{modality}",
    ]) + "\r"


def oru(control_id: str, *, order: str = "ST1001", status: str = "F", findings: str = "脑实质未见异常密度影",
        impression: str = "头颅CT平扫未见异常") -> str:
    return "\r".join([
        msh("ORU^R01", control_id), PID,
        f"OBR|1|PL{order}|{order}|CTHEAD^头颅CT平扫|||20261202101500|||||||||||ACC{order}||||20261202113000"
        f"||CT|{status}|||||||D02&王&审核",
        f"OBX|1|TX|^^^^GDT^检查所见||{findings}||||||{status}",
        f"OBX|2|TX|^^^^IMP^诊断意见||{impression}||||||{status}",
    ]) + "\r"


def acked(reply: bytes) -> dict[str, list[str]]:
    """The ACK's segments by name (fields split), its MLLP frame removed."""
    assert reply.startswith(START) and reply.endswith(END + b"\r"), reply
    text = reply[1:-2].decode("utf-8")
    return {seg.split("|")[0]: seg.split("|") for seg in text.split("\r") if seg}


@pytest.fixture
def sender(runtime, tenant):
    senders = Hl7Senders(runtime.db, refresh_s=0)
    senders.add(facility=FACILITY, host="127.0.0.1", hospital_id=tenant["hospital"])
    return senders


@pytest.fixture
def metrics():
    return Hl7Metrics(CollectorRegistry())


@pytest.fixture
def listener(runtime, sender, metrics):
    # As serve builds it (serve.hl7_listener), on a free port and with a small size limit for the tests.
    intake = Hl7Intake(vault=runtime.vault, tenancy=runtime.tenancy, senders=sender, writer=runtime.writer,
                       events=record_events(runtime, None), metrics=metrics)
    server = MllpServer(intake, host="127.0.0.1", port=0, max_message_bytes=2 * 2**20, stall_timeout_s=2).start()
    yield server
    server.stop()


@pytest.fixture
def client(listener):
    with MLLPClient("127.0.0.1", listener.port) as c:
        yield c


def send(client: MLLPClient, message: str | bytes) -> dict[str, list[str]]:
    reply = client.send_message(message)
    while not reply.endswith(END + b"\r"):
        reply += client.socket.recv(65536)
    return acked(reply)


def study(runtime, study_id: str = "ST1001"):
    with runtime.db.read() as conn:
        return conn.execute(select(s.studies).where(s.studies.c.study_id == study_id)).first()


def count(runtime, table) -> int:
    with runtime.db.read() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def versions(runtime, study_pk: int) -> list:
    with runtime.db.read() as conn:
        return conn.execute(select(s.study_versions).where(s.study_versions.c.study_pk == study_pk)
                            .order_by(s.study_versions.c.version)).all()


# -- orders ----------------------------------------------------------------------


def test_an_orm_registers_the_study_as_ris_study_add_does(runtime, client) -> None:
    ack = send(client, orm("M1"))
    assert ack["MSA"][1:3] == ["AA", "M1"]
    assert "ERR" not in ack
    row = study(runtime)
    assert (row.patient_id, row.patient_name, row.patient_sex, row.access_number, row.modality) == (
        "P1001", "张三", "M", "ACCST1001", "CT")
    assert (row.study_desc, row.body_part, row.study_date, row.status) == (
        "头颅CT平扫", "头部", "2026-12-02 10:15:00", "registered")
    details = orjson.loads(row.details)
    assert details["applyDoctor"] == "李医生" and details["applyDept"] == "内科"
    assert details["studyCategory"] == "emergency" and details["appointDate"] == "2026-12-02 10:30:00"
    assert details["clinicNum"] == "V2001" and details["symptom"] == "头痛"
    # The identity numbers, encrypted and hashed as the JSON API keeps them.
    identity = orjson.loads(runtime.vault.decrypt(row.identity_enc))
    assert identity == {g.ID_CARD: "110101199003071234", g.PHONE: "13800138000", "homeAddress": "人民路1号 北京 100000"}
    assert row.id_card_hash == runtime.vault.id_card_hash("110101199003071234")
    # The same data-quality warnings as the same fields sent as JSON.
    (version,) = versions(runtime, row.pk)
    sent = orjson.loads(runtime.vault.decrypt(version.raw_enc))
    assert json.loads(row.warnings) == parse(g.STUDY_FIELDS, sent).warnings
    assert "size/weight: missing (B)" in json.loads(row.warnings)
    assert version.source == f"hl7:{FACILITY}"
    # … and forwarded to the cloud like a /ris/study/add.
    with runtime.db.read() as conn:
        assert conn.execute(select(func.count()).where(s.jobs.c.kind == SYNC)).scalar_one() == 1
        kept = conn.execute(select(s.hl7_messages)).one()
    assert (kept.facility, kept.control_id, kept.message_type, kept.ack_code) == (FACILITY, "M1", "ORM^O01", "AA")
    assert runtime.vault.decrypt_bytes(kept.raw_enc) == orm("M1").encode()


def test_an_omi_in_gb18030_with_its_imaging_procedure_control(runtime, client) -> None:
    message = "\r".join([
        msh("OMI^O23", "G1", charset="GB 18030-2000"), PID, PV1,
        "ORC|NW|PL7|ST7",
        "TQ1|1||||||20261203080000||R",
        "OBR|1|PL7|ST7|MRKNEE^膝关节磁共振",
        "IPC|ACC7|RP7|1.2.826.0.1.3680043.10.543.7|SPS7|MR||MR_ROOM1||MRAE1",
    ]) + "\r"
    ack = send(client, message.encode("gb18030"))
    assert ack["MSA"][1] == "AA", ack
    row = study(runtime, "ST7")
    assert (row.patient_name, row.access_number, row.study_uid, row.modality, row.study_desc) == (
        "张三", "ACC7", "1.2.826.0.1.3680043.10.543.7", "MR", "膝关节磁共振")
    details = orjson.loads(row.details)
    assert details["equipment"] == "MRAE1" and details["appointDate"] == "2026-12-03 08:00:00"
    assert details["studyCategory"] == "normal"


def test_an_ascii_message_in_version_2_3(runtime, client) -> None:
    message = "\r".join([msh("ORM^O01", "A1", charset="ASCII", version="2.3"),
                         "PID|1||P9^^^RMYY^MR||ZHANG^SAN||19800101|F", "ORC|NW|PL9|ST1001",
                         "OBR|1|PL9|ST1001|XCHEST^Chest X-ray|||20261202101500|||||||||||ACC9||||||DX"]) + "\r"
    ack = send(client, message)
    assert ack["MSA"][1] == "AA", ack
    assert ack["MSH"][11] == "2.3" and ack["MSH"][-1] == "ASCII"
    assert (study(runtime).patient_name, study(runtime).patient_sex) == ("ZHANG^SAN", "F")


def test_a_message_sent_again_is_acknowledged_without_a_second_write(runtime, client, metrics) -> None:
    first = send(client, orm("D1"))
    again = send(client, orm("D1"))
    assert first["MSA"][1] == again["MSA"][1] == "AA"
    assert "duplicate" in again["MSA"][3]
    assert len(versions(runtime, study(runtime).pk)) == 1
    assert count(runtime, s.hl7_messages) == 1
    # A new control id is a new message: the study gets its second version.
    send(client, orm("D2"))
    assert len(versions(runtime, study(runtime).pk)) == 2
    assert metrics.duplicates.labels("ORM^O01")._value.get() == 1
    assert metrics.messages.labels("ORM^O01", "AA")._value.get() == 3


def test_an_order_cancel_soft_deletes_the_study(runtime, client) -> None:
    send(client, orm("C1"))
    cancel = "\r".join([msh("ORM^O01", "C2"), "PID|1||P1001^^^RMYY^MR", "ORC|CA|PLST1001|ST1001",
                        "OBR|1|PLST1001|ST1001"]) + "\r"
    ack = send(client, cancel)
    assert ack["MSA"][1] == "AA", ack
    row = study(runtime)
    assert row.deleted and versions(runtime, row.pk)[-1].action == "delete"
    unknown = cancel.replace("ST1001", "ST404").replace("|C2|", "|C3|")
    ack = send(client, unknown)
    assert ack["MSA"][1] == "AE"
    assert ack["ERR"][2] == "ORC^1^3" and ack["ERR"][3].startswith("204^")


# -- results and patients ---------------------------------------------------------


def test_an_oru_adds_the_report_and_moves_the_study_to_final(runtime, client) -> None:
    send(client, orm("R0"))
    ack = send(client, oru("R1"))
    assert ack["MSA"][1] == "AA", ack
    with runtime.db.read() as conn:
        report = conn.execute(select(s.reports)).one()
    assert (report.report_number, report.study_id, report.access_number) == ("ST1001", "ST1001", "ACCST1001")
    assert (report.image_description, report.conclusion) == ("脑实质未见异常密度影", "头颅CT平扫未见异常")
    assert (report.audit_doctor, report.audit_time) == ("王审核", "2026-12-02 11:30:00")
    row = study(runtime)
    assert row.status == "final"
    # The study's other fields are the ones the order sent: a new version of the whole record.
    assert (row.patient_name, row.modality, orjson.loads(row.details)["applyDoctor"]) == ("张三", "CT", "李医生")
    assert [v.action for v in versions(runtime, row.pk)] == ["add", "update"]


def test_a_report_without_an_impression_is_refused_naming_obx_5(runtime, client) -> None:
    message = "\r".join(oru("R2").split("\r")[:-2]) + "\r"  # the findings only
    ack = send(client, message)
    assert ack["MSA"][1] == "AE"
    assert ack["ERR"][2] == "OBX^1^5" and ack["ERR"][3].startswith("101^")
    assert "conclusion" in ack["MSA"][3]
    assert count(runtime, s.reports) == 0
    # Kept all the same, with the reason: nothing the hospital sent is dropped.
    with runtime.db.read() as conn:
        kept = conn.execute(select(s.hl7_messages)).one()
    assert kept.ack_code == "AE" and "OBX-5" in kept.error


def test_adt_a08_updates_every_study_of_the_patient(runtime, client) -> None:
    send(client, orm("U1", order="ST1"))
    send(client, orm("U2", order="ST2"))
    update = "\r".join([msh("ADT^A08", "U3"), "EVN|A08|20261202120000",
                        "PID|1||P1001^^^RMYY^MR||张^三丰||19900307|M|||||13900139000"]) + "\r"
    ack = send(client, update)
    assert ack["MSA"][1] == "AA", ack
    for study_id in ("ST1", "ST2"):
        row = study(runtime, study_id)
        assert row.patient_name == "张三丰"
        assert row.phone_hash == runtime.vault.phone_hash("13900139000")
        assert row.modality == "CT"  # what the update did not send stays


def test_adt_a40_moves_the_studies_to_the_surviving_patient_and_is_audited(runtime, client) -> None:
    send(client, orm("X1", order="ST1"))
    merge = "\r".join([msh("ADT^A40", "X2"), "EVN|A40|20261202120000",
                       "PID|1||P2002^^^RMYY^MR||张^三||19900307|M", "MRG|P1001^^^RMYY^MR"]) + "\r"
    ack = send(client, merge)
    assert ack["MSA"][1] == "AA", ack
    assert study(runtime, "ST1").patient_id == "P2002"
    with runtime.db.read() as conn:
        audit = conn.execute(select(s.hl7_merges)).one()
    assert (audit.from_patient_id, audit.to_patient_id, json.loads(audit.study_ids)) == ("P1001", "P2002", ["ST1"])
    assert (audit.facility, audit.control_id) == (FACILITY, "X2")


# -- refusals ------------------------------------------------------------------------


def test_a_required_field_missing_is_refused_naming_its_segment_and_field(runtime, client, metrics) -> None:
    ack = send(client, orm("E1", modality=""))
    assert ack["MSA"][1:3] == ["AE", "E1"]
    assert ack["ERR"][2] == "OBR^1^24" and ack["ERR"][3] == "101^Required field missing^HL70357"
    assert study(runtime) is None
    assert metrics.messages.labels("ORM^O01", "AE")._value.get() == 1
    # Corrected and sent again under the same control id, it is processed.
    assert send(client, orm("E1"))["MSA"][1] == "AA"
    assert study(runtime) is not None


def test_version_2_3_errors_go_in_err_1(runtime, client) -> None:
    ack = send(client, orm("E2", modality="").replace("|2.5.1|", "|2.4|"))
    assert ack["MSA"][1] == "AE"
    assert ack["ERR"][1] == "OBR^1^24^101&Required field missing&HL70357"


def test_unknown_senders_message_types_and_versions_are_rejected(runtime, client, sender, tenant) -> None:
    stranger = orm("S1").replace(f"|{FACILITY}|", "|ELSEWHERE|", 1)
    ack = send(client, stranger)
    assert ack["MSA"][1] == "AR" and ack["ERR"][2] == "MSH^1^4"
    assert count(runtime, s.hl7_messages) == 0  # a stranger's bytes are not kept
    sender.add(facility=FACILITY, host="192.0.2.7", hospital_id=tenant["hospital"])  # registered elsewhere
    assert send(client, orm("S2"))["MSA"][1] == "AR"
    sender.add(facility=FACILITY, host="localhost", hospital_id=tenant["hospital"])  # by name: resolved
    assert send(client, orm("S3"))["MSA"][1] == "AA"
    odd = orm("S4").replace("ORM^O01^ORM_O01", "SIU^S12^SIU_S12")
    ack = send(client, odd)
    assert ack["MSA"][1] == "AR" and ack["ERR"][2] == "MSH^1^9" and ack["ERR"][3].startswith("200^")
    ack = send(client, orm("S5").replace("|2.5.1|", "|2.7|"))
    assert ack["MSA"][1] == "AR" and ack["ERR"][2] == "MSH^1^12"
    runtime.tenancy.set_hospital_enabled(hospital_id=tenant["hospital"], enabled=False)
    time.sleep(runtime.settings.tenancy_refresh_s)
    ack = send(client, orm("S6"))
    assert ack["MSA"][1] == "AR" and "disabled" in ack["MSA"][3]
    # Kept: the registered sender's messages (S2 came from a host not registered for it).
    assert _kept(runtime) == [("S3", "AA"), ("S4", "AR"), ("S5", "AR"), ("S6", "AR")]


def _kept(runtime) -> list[tuple[str, str]]:
    with runtime.db.read() as conn:
        return [(r.control_id, r.ack_code) for r in conn.execute(
            select(s.hl7_messages).order_by(s.hl7_messages.c.control_id))]


def test_a_wrong_msh_18_is_refused_naming_it(runtime, client) -> None:
    # Said UTF-8, sent GB 18030: refused rather than stored garbled.
    ack = send(client, orm("W1").encode("gb18030"))
    assert ack["MSA"][1:3] == ["AE", "W1"] and ack["ERR"][2] == "MSH^1^18" and ack["ERR"][3].startswith("102^")
    ack = send(client, orm("W2", charset="KOI8-R"))
    assert ack["MSA"][1] == "AE" and ack["ERR"][2] == "MSH^1^18" and ack["ERR"][3].startswith("103^")
    ack = send(client, orm("W3", charset="").encode("gb18030"))
    assert ack["MSA"][1] == "AE" and ack["ERR"][2] == "MSH^1^18"
    assert study(runtime) is None
    assert [code for _, code in _kept(runtime)] == ["AE", "AE", "AE"]


def test_a_1_mb_report_is_accepted_whole(runtime, client) -> None:
    send(client, orm("B0"))
    findings = "肺野清晰，" * (2**20 // 15)
    message = oru("B1", findings=findings)
    assert len(message.encode()) > 2**20
    ack = send(client, message)
    assert ack["MSA"][1] == "AA", ack
    with runtime.db.read() as conn:
        assert conn.execute(select(s.reports.c.image_description)).scalar_one() == findings


# -- framing ---------------------------------------------------------------------------


def raw_exchange(port: int, data: bytes, answers: int) -> list[dict[str, list[str]]]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        buffer = b""
        while buffer.count(END + b"\r") < answers:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {buffer!r}"
            buffer += chunk
    return [acked(START + part) for part in buffer.split(START)[1:]]


def test_malformed_framing_gets_a_nak_and_the_connection_goes_on(runtime, listener, metrics) -> None:
    unended = START + orm("F1").encode()  # no 0x1C 0x0D: the next frame begins
    unframed = b"\r\n" + orm("F2").encode()  # no frame at all
    data = unended + frame(orm("F3").encode()) + unframed + frame(orm("F4", order="ST2").encode())
    first, second, third, fourth = raw_exchange(listener.port, data, 4)
    assert first["MSA"][1:3] == ["AR", "F1"] and "0x1C" in first["MSA"][3]
    assert second["MSA"][1:3] == ["AA", "F3"]
    assert third["MSA"][1:3] == ["AR", "F2"] and "outside an MLLP frame" in third["MSA"][3]
    assert fourth["MSA"][1:3] == ["AA", "F4"]
    assert [c for c, _ in _kept(runtime)] == ["F3", "F4"]
    assert metrics.framing.labels("unended")._value.get() == 1
    assert metrics.framing.labels("unframed")._value.get() == 1


def test_a_message_over_the_limit_is_rejected_and_the_next_one_read(runtime, listener) -> None:
    huge = oru("L1", findings="x" * (3 * 2**20))  # the test listener's limit is 2 MiB
    first, second = raw_exchange(listener.port, frame(huge.encode()) + frame(orm("L2").encode()), 2)
    assert first["MSA"][1:3] == ["AR", "L1"] and "longer than" in first["MSA"][3]
    assert second["MSA"][1:3] == ["AA", "L2"]
    assert count(runtime, s.reports) == 0


def test_a_connection_cut_mid_message_writes_nothing(runtime, listener) -> None:
    message = orm("K1").encode()
    with socket.create_connection(("127.0.0.1", listener.port)) as sock:
        sock.sendall(START + message[: len(message) // 2])
    # The listener goes on: the sender, without an ACK, sends the whole message again.
    (ack,) = raw_exchange(listener.port, frame(message), 1)
    assert ack["MSA"][1:3] == ["AA", "K1"]
    assert count(runtime, s.hl7_messages) == 1 and len(versions(runtime, study(runtime).pk)) == 1


def test_deframer_keeps_order_across_chunks() -> None:
    d = Deframer(max_message_bytes=100)
    data = b"junk" + frame(b"MSH|a") + START + b"MSH|b" + frame(b"MSH|c") + frame(b"MSH|" + b"z" * 200)
    events = [e for i in range(len(data)) for e in d.feed(data[i:i + 1])]  # one byte at a time
    assert [type(e).__name__ for e in events] == ["FramingFault", "Framed", "FramingFault", "Framed",
                                                  "FramingFault"]
    assert events[1] == Framed(b"MSH|a") and events[3] == Framed(b"MSH|c")
    assert isinstance(events[2], FramingFault) and events[2].head == b"MSH|b"
    assert isinstance(events[4], FramingFault) and events[4].kind == "too-large"
    assert d.inside == 0 and d.flush() == []


# -- the operator's commands -------------------------------------------------------------


def test_admin_hl7_sender_add_list_remove(settings, runtime, tenant) -> None:
    runner = CliRunner()
    where = ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url]
    added = runner.invoke(cli, ["admin", "hl7-sender", "add", "--facility", "RMYY", "--host", "10.1.2.3",
                                "--hospital", tenant["hospital"], *where])
    assert added.exit_code == 0, added.output
    assert "HL7 sender RMYY added" in added.output
    listed = runner.invoke(cli, ["admin", "hl7-sender", "list", "--json", *where])
    assert json.loads(listed.output) == [{"facility": "RMYY", "host": "10.1.2.3", "hospitalId": tenant["hospital"]}]
    unknown = runner.invoke(cli, ["admin", "hl7-sender", "add", "--facility", "X", "--host", "h",
                                  "--hospital", "nope", *where])
    assert unknown.exit_code != 0 and "no hospital" in unknown.output
    removed = runner.invoke(cli, ["admin", "hl7-sender", "remove", "--facility", "RMYY", *where])
    assert removed.exit_code == 0 and "removed" in removed.output
    again = runner.invoke(cli, ["admin", "hl7-sender", "remove", "--facility", "RMYY", *where])
    assert again.exit_code != 0 and "no HL7 sender" in again.output


def test_messages_sent_without_waiting_are_answered_in_order_each_after_its_commit(runtime, listener) -> None:
    # An engine that pipelines: 12 orders in one write, a bad one and a repeat among them.
    messages = [orm(f"Q{i}", order=f"ST{i}") for i in range(10)]
    messages.insert(4, orm("Q3", order="ST3"))  # Q3 again: acknowledged, not written again
    messages.insert(7, orm("QX", order="STX", modality=""))  # refused alone
    acks = raw_exchange(listener.port, b"".join(frame(m.encode()) for m in messages), len(messages))
    assert [(a["MSA"][1], a["MSA"][2]) for a in acks] == [
        ("AA", "Q0"), ("AA", "Q1"), ("AA", "Q2"), ("AA", "Q3"), ("AA", "Q3"), ("AA", "Q4"), ("AA", "Q5"),
        ("AE", "QX"), ("AA", "Q6"), ("AA", "Q7"), ("AA", "Q8"), ("AA", "Q9")]
    assert "duplicate" in acks[4]["MSA"][3]
    assert count(runtime, s.studies) == 10
    assert all(len(versions(runtime, study(runtime, f"ST{i}").pk)) == 1 for i in range(10))
