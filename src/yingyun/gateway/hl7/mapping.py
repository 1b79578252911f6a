"""HL7 v2 segments to the vendor's record fields (the table in docs/hl7.md).

Pure functions of a decoded `Message`: each returns bodies named as the
JSON API names them (contract §2.1, §2.2), which `gateway.hl7.intake`
then accepts through `archive.accept` like a `/ris/*` body, plus where each
field came from, so that a required field that is missing is refused naming
its HL7 place (ERR-2) rather than the vendor's name.

An HL7 explicit null (`""`) says "no longer known": it removes the field
from a patient update instead of leaving the stored value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ...contract import gateway_api as g
from ...contract.params import A, Field, Malformed
from ...core.dicom import display_person_name
from .faults import Fault, Location
from .message import Message

# HL7 explicit null: the sender says the value is gone.
NULL = '""'

ORDER_TYPES = ("ORM^O01", "OMI^O23")
REPORT_TYPE = "ORU^R01"
UPDATE_TYPE = "ADT^A08"
MERGE_TYPE = "ADT^A40"
MESSAGE_TYPES = (*ORDER_TYPES, REPORT_TYPE, UPDATE_TYPE, MERGE_TYPE)
VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1")

# ORC-1 (table 0119): what an order message asks.
NEW_OR_CHANGED = frozenset({"NW", "XO", "SC", ""})
CANCELLED = frozenset({"CA", "OC", "DC"})
# PID-3 identifier type codes (CX-5, table 0203) that carry one of the vendor's identity numbers.
IDENTITY_TYPES = {"NNCHN": g.ID_CARD, "ID": g.ID_CARD, "PPN": "passportNum", "HC": "medicalInsuranceNum",
                  "MC": "medicalInsuranceNum"}
# PID-8 (table 0001) beyond the vendor's M/F/O.
SEX = {"U": "O", "A": "O", "N": "O"}
# OBR-25 (table 0123): the study status a report moves its study to.
RESULT_STATUS = {"P": "preliminary", "R": "preliminary", "S": "preliminary", "I": "preliminary",
                 "F": "final", "C": "final"}
# OBX-3 words (code or text, any case) that mark the impression; any other text OBX is findings.
_IMPRESSION = re.compile(r"IMP|CONCLUSION|IMPRESSION|DIAGNOS|印象|诊断|结论|意见")
_TEXT_TYPES = frozenset({"TX", "FT", "ST", "CE", "CWE", ""})


@dataclass
class Mapped:
    """A body in the vendor's field names and, per field, its HL7 place."""

    body: dict[str, Any] = field(default_factory=dict)
    where: dict[str, Location] = field(default_factory=dict)

    def put(self, name: str, value: str, where: Location) -> None:
        self.where.setdefault(name, where)
        if value and name not in self.body:
            self.body[name] = value

    def sent(self) -> dict[str, Any]:
        """The body without explicit nulls: what a new record holds."""
        return {k: v for k, v in self.body.items() if v != NULL}


@dataclass
class Order:
    """One ORC/OBR group of an order message: a study to register, or (cancelled) to delete."""

    cancelled: bool
    study: Mapped


@dataclass
class Report:
    report: Mapped
    status: str | None  # the study status OBR-25 moves it to


def hl7_datetime(value: str) -> str:
    """HL7 TS/DTM (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]) as 'yyyy-MM-dd HH:mm:ss', hospital-local ("" when
    not one: the vendor's parser then warns it malformed, as for JSON)."""
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})(\d{2})?(\d{2})?(\d{2})?(\.\d+)?([+-]\d{4})?", value)
    if m is None:
        return value
    y, mo, d, h, mi, s = (m.group(i) or "00" for i in range(1, 7))
    return f"{y}-{mo}-{d} {h}:{mi}:{s}"


def hl7_date(value: str) -> str:
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2}).*", value)
    return f"{m.group(1)}-{m.group(2)}-{m.group(3)}" if m else value


def _person(msg: Message, seg: Any, number: int, *, first: int = 2) -> str:
    """A person's display name from XPN/XCN components family^given^middle (at `first`)."""
    parts = [msg.value(seg, number, first + i) for i in range(3)]
    return display_person_name("^".join(parts))


def patient(msg: Message) -> Mapped:
    """PID (and PV1 when there) as the vendor's patient fields."""
    out = Mapped()
    if not msg.has("PID"):
        out.where["patientId"] = Location("PID", 1, 3)
        return out
    pid = msg.segments("PID")[0]

    def at(number: int) -> Location:
        return Location("PID", 1, number)

    ids = [(msg.value(pid, 3, 1, repetition=r), msg.value(pid, 3, 5, repetition=r).upper())
           for r in range(1, msg.repetitions(pid, 3) + 1)]
    patient_ids = [i for i, kind in ids if kind not in IDENTITY_TYPES and i]
    out.put("patientId", patient_ids[0] if patient_ids else (ids[0][0] if ids else ""), at(3))
    for value, kind in ids:
        if kind in IDENTITY_TYPES:
            out.put(IDENTITY_TYPES[kind], value, at(3))
    out.put(g.ID_CARD, msg.value(pid, 19), at(19))
    name = _person(msg, pid, 5, first=1)
    out.put("patientName", name, at(5))
    sex = msg.value(pid, 8).upper()
    out.put("patientSex", SEX.get(sex, sex), at(8))
    birthday = msg.value(pid, 7)
    out.put("patientBirthday", hl7_date(birthday) if birthday != NULL else NULL, at(7))
    phone = msg.value(pid, 13, 1) or msg.value(pid, 13, 12) or msg.value(pid, 14, 1) or msg.value(pid, 14, 12)
    out.put(g.PHONE, phone, at(13))
    address = " ".join(v for v in (msg.value(pid, 11, c) for c in (1, 2, 3, 4, 5)) if v)
    out.put("homeAddress", address, at(11))
    out.put("hisNum", msg.value(pid, 18, 1), at(18))
    if msg.has("PV1"):
        pv1 = msg.segments("PV1")[0]
        visit = msg.value(pv1, 19, 1)
        kind = msg.value(pv1, 2).upper()
        if kind == "I":
            out.put("inpatientNum", visit, Location("PV1", 1, 19))
        elif kind in ("O", "E"):
            out.put("clinicNum", visit, Location("PV1", 1, 19))
        out.put("hisNum", visit, Location("PV1", 1, 19))
        out.put("inpatientWard", msg.value(pv1, 3, 1), Location("PV1", 1, 3))
        out.put("bedNum", msg.value(pv1, 3, 3), Location("PV1", 1, 3))
    return out


def _groups(msg: Message, head: str, members: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """The segment groups of a repeating order (ORC … OBR … IPC) or result (OBR … OBX): a group begins at
    `head` (or at the first member after a complete group); value: name -> (occurrence, segment); OBX a list."""
    group: dict[str, Any] = {}
    seen: dict[str, int] = {}
    for seg in msg.tree:
        name = str(seg[0])
        if name not in (head, *members):
            continue
        seen[name] = seen.get(name, 0) + 1
        starts = name == head or (name == members[0] and members[0] in group)
        if starts and group:
            yield group
            group = {}
        if name == "OBX":
            group.setdefault("OBX", []).append((seen[name], seg))
        else:
            group.setdefault(name, (seen[name], seg))
    if group:
        yield group


def _order_fields(msg: Message, grp: dict[str, Any], out: Mapped) -> None:
    """studyId and accessNumber from a group's ORC/OBR (and IPC), the same in orders, cancels and results."""
    orc = grp.get("ORC")
    obr = grp.get("OBR")
    ipc = grp.get("IPC")

    def v(entry: tuple[int, Any] | None, number: int, component: int = 1) -> str:
        return msg.value(entry[1], number, component) if entry is not None else ""

    def loc(name: str, entry: tuple[int, Any] | None, number: int) -> Location:
        return Location(name, entry[0] if entry is not None else 1, number)

    filler = v(orc, 3) or v(obr, 3)
    placer = v(orc, 2) or v(obr, 2)
    out.put(g.STUDY_ID, filler or placer, loc("ORC" if orc else "OBR", orc or obr, 3))
    accession = v(ipc, 1) or v(obr, 18) or filler
    out.put(g.ACCESS_NUMBER, accession, loc("IPC", ipc, 1) if ipc else loc("OBR", obr, 18))
    out.put(g.STUDY_UID, v(ipc, 3) or (msg.value("ZDS", 1) if msg.has("ZDS") else ""),
            loc("IPC", ipc, 3) if ipc else Location("ZDS", 1, 1))


def orders(msg: Message) -> list[Order]:
    """ORM^O01 / OMI^O23: one Order per ORC group (PID/PV1 shared by all of them)."""
    who = patient(msg)
    found: list[Order] = []
    for grp in _groups(msg, "ORC", ("OBR", "TQ1", "IPC")):
        orc, obr, ipc, tq1 = grp.get("ORC"), grp.get("OBR"), grp.get("IPC"), grp.get("TQ1")
        out = Mapped()
        _order_fields(msg, grp, out)

        def v(entry: tuple[int, Any] | None, number: int, component: int = 1) -> str:
            return msg.value(entry[1], number, component) if entry is not None else ""

        obr_seq = obr[0] if obr else 1
        out.put("modality", v(ipc, 5) or v(obr, 24),
                Location("IPC", ipc[0], 5) if ipc else Location("OBR", obr_seq, 24))
        out.put("studyDesc", v(obr, 4, 2) or v(obr, 4, 1), Location("OBR", obr_seq, 4))
        body_site = obr and (msg.value(obr[1], 15, 4, sub=2) or msg.value(obr[1], 15, 4))
        out.put("bodyPart", body_site or "", Location("OBR", obr_seq, 15))
        scheduled = v(tq1, 7) or v(obr, 27, 4) or v(obr, 36) or v(orc, 7, 4)
        if scheduled:
            out.put("appointDate", hl7_datetime(scheduled), Location("OBR", obr_seq, 27))
        observed = v(obr, 7) or scheduled
        out.put(g.STUDY_DATE, hl7_datetime(observed) if observed else "", Location("OBR", obr_seq, 7))
        priority = (v(tq1, 9) or v(obr, 27, 6) or v(orc, 7, 6)).upper()
        if priority:
            out.put("studyCategory", "emergency" if priority in ("S", "A") else "normal", Location("OBR", obr_seq, 27))
        doctor_seg, doctor_field = (orc, 12) if orc and v(orc, 12, 2) + v(orc, 12, 1) else (obr, 16)
        if doctor_seg is not None:
            out.put("applyDoctor", _person(msg, doctor_seg[1], doctor_field), Location("ORC", 1, 12))
            out.put("applyDoctorId", v(doctor_seg, doctor_field, 1), Location("ORC", 1, 12))
        out.put("applyDept", v(orc, 17, 2), Location("ORC", 1, 17))
        out.put("applyDeptId", v(orc, 17, 1), Location("ORC", 1, 17))
        out.put("symptom", v(obr, 13), Location("OBR", obr_seq, 13))
        out.put("diagnosis", v(obr, 31, 2) or v(obr, 31, 1), Location("OBR", obr_seq, 31))
        out.put("equipment", v(ipc, 9) or v(ipc, 7), Location("IPC", 1, 9))
        code = v(orc, 1).upper()
        if code not in NEW_OR_CHANGED | CANCELLED:
            raise Fault("AE", 103, Location("ORC", orc[0] if orc else 1, 1),
                        "order control code not handled here (NW, XO, SC new or changed; CA, OC, DC cancelled)")
        cancelled = code in CANCELLED
        if not cancelled:
            out.put("status", "registered", Location("ORC", 1, 5))
            for name, value in who.body.items():
                out.body.setdefault(name, value)
            for name, where in who.where.items():
                out.where.setdefault(name, where)
        else:
            out.put("patientId", who.body.get("patientId", ""), who.where.get("patientId", Location("PID", 1, 3)))
        found.append(Order(cancelled, out))
    if not found:
        raise Fault("AE", 100, Location("ORC", 1, 0), "an order message needs an ORC segment")
    return found


def reports(msg: Message) -> list[Report]:
    """ORU^R01: one Report per OBR, with the text of its OBX segments."""
    found: list[Report] = []
    for grp in _groups(msg, "ORC", ("OBR", "OBX")):
        obr = grp.get("OBR")
        if obr is None:
            continue
        seq, seg = obr
        out = Mapped()
        _order_fields(msg, grp, out)
        out.put(g.REPORT_NUMBER, out.body.get(g.STUDY_ID, ""), Location("OBR", seq, 3))
        findings: list[str] = []
        impression: list[str] = []
        obxs: list[tuple[int, Any]] = grp.get("OBX", [])
        for _, obx in obxs:
            if msg.value(obx, 2).upper() not in _TEXT_TYPES:
                continue  # an encapsulated PDF, a number: not report text
            lines = [msg.value(obx, 5, repetition=r) for r in range(1, msg.repetitions(obx, 5) + 1)]
            text = "\n".join(line for line in lines if line)
            if not text:
                continue
            label = " ".join(str(obx[3]).split()) if len(obx) > 3 else ""
            (impression if _IMPRESSION.search(label.upper()) else findings).append(text)
        out.put("imageDescription", "\n".join(findings), Location("OBX", 1, 5))
        out.put("conclusion", "\n".join(impression), Location("OBX", 1, 5))
        status = msg.value(seg, 25).upper()
        when = hl7_datetime(msg.value(seg, 22) or msg.value(seg, 7))
        interpreter = _interpreter(msg, seg, 32)
        assistant = _interpreter(msg, seg, 33) or _interpreter(msg, seg, 35)
        out.put("reportDoctor", assistant or interpreter, Location("OBR", seq, 32))
        out.put("reportTime", when, Location("OBR", seq, 22))
        if status in ("F", "C"):
            out.put("auditDoctor", interpreter, Location("OBR", seq, 32))
            out.put("auditTime", when, Location("OBR", seq, 22))
        if status and status not in RESULT_STATUS:
            raise Fault("AE", 103, Location("OBR", seq, 25),
                        "result status not a report (P, R, S, I preliminary; F, C final)")
        found.append(Report(out, RESULT_STATUS.get(status)))
    if not found:
        raise Fault("AE", 100, Location("OBR", 1, 0), "a result message needs an OBR segment")
    return found


def _interpreter(msg: Message, seg: Any, number: int) -> str:
    """NDL (OBR-32/33/35): its first component is a name whose sub-components are id&family&given."""
    name = display_person_name("^".join(msg.value(seg, number, 1, sub=i) for i in (2, 3, 4)))
    return name or msg.value(seg, number, 1, sub=1)


def prior_patient_id(msg: Message) -> str:
    """MRG-1: the patient id an ADT^A40 merges away."""
    return msg.value("MRG", 1, 1)


def refuse_missing(fields: tuple[Field, ...], mapped: Mapped) -> None:
    """A Fault naming the HL7 place of the first required (A) field missing or malformed, before the vendor's
    parser (which would name the vendor's field) sees the body."""
    for f in fields:
        if f.cls != A:
            continue
        value = mapped.body.get(f.name)
        where = mapped.where.get(f.name, Location("MSH", 1, 0))
        if value in (None, "", NULL):
            raise Fault("AE", 101, where, f"required field missing ({f.name})")
        try:
            f.convert(value)
        except Malformed as exc:
            raise Fault("AE", 102, where, f"{f.name}: {exc}") from exc
