"""A final report out as HL7 v2.5.1 ORU^R01 over MLLP (issue 17 item 1, outbound; docs/hl7.md "Reports out").

The message is the inverse of what the intake reads (mapping.reports): the order's study id in ORC-3 and OBR-3,
the accession number in OBR-18, the findings and the impression as text OBX segments (OBX-3 `FINDINGS` and
`IMPRESSION`, one repetition of OBX-5 per line), OBR-25 `F`, the reviewing doctor in OBR-32 and the reporting
one in OBR-33, the time in OBR-22, the report number in OBR-20 (filler field 1), the Study Instance UID in a
ZDS segment. UTF-8, said in MSH-18. MSH-10 is the same on every retry of one delivery, so the receiver can drop
a duplicate.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass
from typing import Any

from ...contract import gateway_api as g
from .message import Message
from .mllp import END, Deframer, Framed, frame

CHARSET = "UNICODE UTF-8"
VERSION = "2.5.1"
MAX_ACK_BYTES = 1 << 20
_ESCAPES = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "~": "\\R\\", "&": "\\T\\"}


@dataclass(frozen=True)
class Patient:
    """What PID carries: the study's patient as the RIS registered it (none of it when there is no study)."""

    patient_id: str = ""
    name: str = ""
    sex: str = ""


def escape(value: str) -> str:
    return "".join(_ESCAPES.get(c, c) for c in value)


def _text(value: Any) -> str:
    return escape(re.sub(r"[\r\n]+", " ", str(value or "")))


def _lines(value: Any) -> str:
    """A text as repetitions of OBX-5, one per line (the intake joins them with line breaks)."""
    return "~".join(escape(line) for line in str(value or "").splitlines() if line.strip()) or '""'


def hl7_time(value: Any) -> str:
    """'yyyy-MM-dd HH:mm:ss' (as the index keeps RIS times) as HL7's YYYYMMDDHHMMSS."""
    return re.sub(r"\D", "", str(value or ""))[:14]


def oru_r01(report: dict[str, Any], *, study_uid: str, control_id: str, patient: Patient,
            sending_facility: str, now: float | None = None) -> bytes:
    """The message's bytes (segments ended by CR, UTF-8)."""
    at = time.strftime("%Y%m%d%H%M%S", time.localtime(time.time() if now is None else now))
    study_id, access = _text(report.get(g.STUDY_ID)), _text(report.get(g.ACCESS_NUMBER))
    when = hl7_time(report.get("auditTime") or report.get("reportTime"))
    msh = ["MSH", "^~\\&", "YINGYUN", _text(sending_facility), "", "", at, "", "ORU^R01^ORU_R01",
           control_id[:20], "P", VERSION, "", "", "", "", "", CHARSET]
    pid = ["PID", "1", "", _text(patient.patient_id), "", _text(patient.name), "", "", _text(patient.sex)]
    orc = ["ORC", "RE", "", study_id]
    obr = ["OBR", "1"] + [""] * 33
    obr[3], obr[18], obr[20], obr[22], obr[25] = study_id, access, _text(report.get(g.REPORT_NUMBER)), when, "F"
    obr[32], obr[33] = "&" + _text(report.get("auditDoctor")), "&" + _text(report.get("reportDoctor"))
    obx = [["OBX", "1", "TX", "^FINDINGS", "", _lines(report.get("imageDescription")), "", "", "", "", "", "F"],
           ["OBX", "2", "TX", "^IMPRESSION", "", _lines(report.get("conclusion")), "", "", "", "", "", "F"]]
    zds = ["ZDS", _text(study_uid)]
    segments = [msh, pid, orc, obr, *obx, zds]
    return ("\r".join("|".join(seg) for seg in segments) + "\r").encode("utf-8")


def send(message: bytes, *, host: str, port: int, control_id: str, timeout_s: float) -> tuple[bool, str]:
    """Send one message and read its ACK: (True, "") on an AA naming its control id, else (False, why)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            sock.sendall(frame(message))
            deframer = Deframer(MAX_ACK_BYTES)
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return False, "the receiver closed the connection before its ACK"
                for got in deframer.feed(chunk):
                    if isinstance(got, Framed):
                        return _read_ack(got.data, control_id)
                    return False, f"the ACK is not framed: {got.reason}"
                if END in chunk and deframer.inside == 0:
                    return False, "the receiver sent no ACK"
    except TimeoutError:
        return False, f"no ACK within {timeout_s:g} s"
    except OSError as e:
        return False, f"{type(e).__name__}: {e.strerror or e}"


def _read_ack(raw: bytes, control_id: str) -> tuple[bool, str]:
    try:
        ack = Message.decode(raw)
    except Exception as e:  # noqa: BLE001 - whatever the receiver sent, it is not an AA
        return False, f"the ACK cannot be read: {type(e).__name__}"
    code, about, words = ack.value("MSA", 1), ack.value("MSA", 2), ack.value("MSA", 3)
    if about != control_id[:20]:
        return False, f"the ACK is for another message (MSA-2 {about[:20]!r})"
    if code in ("AA", "CA"):
        return True, ""
    return False, f"{code or 'no MSA-1'}: {words[:200]}" if words else (code or "no MSA-1")
