"""Damaged HL7 into the intake: every message gets an ACK (AA, AE or AR) that names a reason, and none
reaches the "fault on our side" answer, which would mean a bug in reading it (the property the DIMSE
parser's fuzz test checks for PDUs)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from yingyun.gateway.hl7.intake import Hl7Intake
from yingyun.gateway.hl7.metrics import Hl7Metrics
from yingyun.gateway.hl7.senders import Hl7Senders
from yingyun.serve import record_events

from .test_hl7 import FACILITY, msh, orm, oru

FUZZ = settings(max_examples=150, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
MERGE = "\r".join([msh("ADT^A40", "X2"), "EVN|A40", "PID|1||P2002^^^RMYY^MR||张^三||19900307|M",
                   "MRG|P1001^^^RMYY^MR"]) + "\r"
SAMPLES = [orm("Z1").encode(), orm("Z2", code="CA").encode(), oru("Z3").encode(), MERGE.encode(),
           orm("Z4", charset="GB 18030-2000").encode("gb18030")]
DELIMITERS = b"|^~\\&\r\"\x00\xff"


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        how = draw(st.sampled_from(["cut", "byte", "delimiter", "drop"]))
        if how == "cut":
            del data[at:]
        elif how == "byte":
            data[at:at + 1] = bytes([draw(st.integers(0, 255))])
        elif how == "delimiter":
            data[at:at] = bytes([draw(st.sampled_from(DELIMITERS))])
        else:
            del data[at:at + draw(st.integers(1, 40))]
    return bytes(data)


@pytest.fixture
def intake(runtime, tenant):
    senders = Hl7Senders(runtime.db, refresh_s=60)
    senders.add(facility=FACILITY, host="127.0.0.1", hospital_id=tenant["hospital"])
    return Hl7Intake(vault=runtime.vault, tenancy=runtime.tenancy, senders=senders, writer=runtime.writer,
                     events=record_events(runtime, None), metrics=Hl7Metrics(CollectorRegistry()))


@FUZZ
@given(message=damaged())
def test_damaged_messages_get_a_reasoned_ack(intake, message: bytes) -> None:
    reply = intake.handle(message, peer_host="127.0.0.1")
    segments = reply.split(b"\r")
    assert segments[0].startswith(b"MSH|^~\\&|YINGYUN|"), reply
    msa = segments[1].split(b"|")
    assert msa[0] == b"MSA" and msa[1] in (b"AA", b"AE", b"AR"), reply
    assert b"fault here" not in reply, reply
    if msa[1] != b"AA":
        assert b"ERR|" in reply, reply
