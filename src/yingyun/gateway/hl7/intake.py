"""Accepting HL7 v2 messages: the sender, the message, the records, the ACK.

`Hl7Intake.handle(raw, peer_host)` answers one message, and answers AA only
once what it asked is committed. The records go through `archive.accept` as
the `/ris/*` bodies do (same tables, same data-quality warnings, same
events: status callbacks, forwarding to the cloud), in the process's
group-committed writer:

| message              | what is written                                                                   |
|----------------------|-----------------------------------------------------------------------------------|
| ORM^O01, OMI^O23     | per ORC group: the study (as `/ris/study/add`), or with ORC-1 CA/OC/DC its soft delete |
| ORU^R01              | per OBR: the report (as `/ris/report/add`); OBR-25 moves the study's status        |
| ADT^A08              | every study of the patient (PID-3) updated with the PID fields sent                 |
| ADT^A40              | the studies of MRG-1 moved to PID-3, with the PID fields; the merge audited (hl7_merges) |

A study updated by A08/A40/OBR-25 is its stored record with the new fields
over it, accepted again: a new version, as if the RIS had sent the whole
study again. Every message of a registered sender is kept (`hl7_messages`,
encrypted) with its answer: AA; AE naming the segment and field (content);
AR for the sender, the kind of message, its version, a disabled hospital, or
a fault on our side (the sender should send it again). A message sent again
under a control id already accepted is answered AA and not written again.
Logs name the facility, the message type and control id, never a value.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select, update

from ...archive import accept, records
from ...archive.events import RecordEvents
from ...contract import gateway_api as g
from ...contract.envelope import ContractError
from ...contract.params import Record, parse
from ...core.crypto import Vault
from ...core.errors import Invalid, NotFound, YingyunError
from ...storage import schema as s
from ...storage.groupcommit import GroupCommit
from ...storage.rawsql import insert_sql
from ...storage.upsert import insert_ignore
from ...tenancy import Tenancy
from . import mapping
from .faults import Fault, Location
from .message import Header, Message, ack
from .metrics import Hl7Metrics
from .senders import Hl7Senders, Sender

log = logging.getLogger("yingyun.hl7")

# What an operation of a message does inside its transaction (the message's hl7_messages pk is passed).
Operation = Callable[[Connection, int], None]

# Every message's first write, pre-written (storage/rawsql.py): through SQLAlchemy Core, building and
# caching this one INSERT cost more CPU than the rest of an ORM^O01's transaction.
_MESSAGE_COLUMNS = ["facility", "control_id", "hospital_id", "message_type", "ack_code", "error", "raw_enc",
                    "received_at"]
_INSERT_MESSAGE = insert_sql("hl7_messages", _MESSAGE_COLUMNS, conflict=["facility", "control_id"], returning="pk")


@dataclass(frozen=True)
class _Answer:
    code: str
    duplicate: bool = False


@dataclass(frozen=True)
class _Pending:
    """A message whose writes are with the writer."""

    future: Future[_Answer]
    raw: bytes
    header: Header
    kind: str
    sender: Sender


class Hl7Intake:
    def __init__(self, *, vault: Vault, tenancy: Tenancy, senders: Hl7Senders, writer: GroupCommit,
                 events: RecordEvents, metrics: Hl7Metrics | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.vault = vault
        self.tenancy = tenancy
        self.senders = senders
        self.writer = writer
        self.events = events
        self.metrics = metrics
        self.clock = clock

    # -- the listener's two calls ------------------------------------------------

    def handle(self, raw: bytes, *, peer_host: str) -> bytes:
        """The ACK of one message (its content between the MLLP start and end bytes)."""
        return self.handle_all([raw], peer_host=peer_host)[0]

    def handle_all(self, raws: list[bytes], *, peer_host: str) -> list[bytes]:
        """The ACKs of messages that arrived together, in their order. A sender that sends before the
        previous ACK came (pipelining) has them committed in one transaction of the group-committed writer,
        in order; each is still answered only once it is committed."""
        started = [self._start(raw, peer_host) for raw in raws]
        return [s if isinstance(s, bytes) else self._finish(s, peer_host) for s in started]

    def reject_framing(self, head: bytes, *, peer_host: str, kind: str, reason: str) -> bytes | None:
        """A NAK for what arrived badly framed (`head`: its first bytes), or None when nothing in it names a
        message to answer. Nothing of it is written."""
        if self.metrics is not None:
            self.metrics.framing.labels(kind).inc()
        log.warning("HL7 from %s: %s", peer_host, reason)
        if not head.startswith(b"MSH"):
            return None
        header = Header.of_raw(head)
        fault = Fault("AR", 100, Location("MSH", 1, 0), reason)
        return self._answer(header, "", "AR", fault=fault)

    def _start(self, raw: bytes, peer_host: str) -> bytes | _Pending:
        """Read, check and plan a message, and hand its writes to the writer; or its answer when refused."""
        try:
            msg = Message.decode(raw)
            header = Header.of(msg)
        except Fault as fault:
            return self._refuse(raw, Header.of_raw(raw), "", fault, peer_host)
        sender = self._sender(header, peer_host)
        if sender is None:
            return self._answer(header, msg.message_type, "AR", fault=self._stranger(header, peer_host))
        kind = msg.message_type
        try:
            self._check_header(msg, sender)
            plan = self._plan(msg, sender)
        except Fault as fault:
            return self._refuse(raw, header, kind, fault, peer_host, sender=sender)
        except (YingyunError, ContractError) as exc:
            return self._refuse(raw, header, kind, _content_fault(exc), peer_host, sender=sender)
        future = self.writer.submit(lambda conn: self._apply(conn, sender, header, kind, raw, plan),
                                    key=sender.facility)
        return _Pending(future, raw, header, kind, sender)

    def _finish(self, p: _Pending, peer_host: str) -> bytes:
        """The answer of a message once its writes committed (AA), or failed."""
        try:
            answer = p.future.result()
        except Fault as fault:
            return self._refuse(p.raw, p.header, p.kind, fault, peer_host, sender=p.sender)
        except (YingyunError, ContractError) as exc:
            return self._refuse(p.raw, p.header, p.kind, _content_fault(exc), peer_host, sender=p.sender)
        except Exception as exc:  # the database, a bug: not the message's fault, and nothing was written
            log.error("HL7 %s %s from %s: not written (%s); answered AR so that it is sent again", p.kind,
                      p.header.control_id, p.sender.facility, type(exc).__name__)
            ours = Fault("AR", 207, Location("MSH", 1, 0), "not written because of a fault here: send it again")
            return self._refuse(p.raw, p.header, p.kind, ours, peer_host, sender=p.sender)
        log.info("HL7 %s %s from %s: %s", p.kind, p.header.control_id, p.sender.facility,
                 "duplicate, not written again" if answer.duplicate else "accepted")
        return self._answer(p.header, p.kind, "AA", duplicate=answer.duplicate,
                            text="duplicate of an accepted message: not written again" if answer.duplicate else "")

    # -- the steps ---------------------------------------------------------------

    def _sender(self, header: Header, peer_host: str) -> Sender | None:
        sender = self.senders.lookup(header.facility)
        if sender is None or not self.senders.allows(sender, peer_host):
            return None
        return sender

    def _stranger(self, header: Header, peer_host: str) -> Fault:
        known = self.senders.lookup(header.facility) is not None
        why = "sent from a host not registered for it" if known else "not a registered sender"
        log.warning("HL7 from %s refused: sending facility %r %s", peer_host, header.facility, why)
        return Fault("AR", 207, Location("MSH", 1, 4),
                     f"sending facility {why} (yingyun admin hl7-sender add --facility … --host …)")

    def _check_header(self, msg: Message, sender: Sender) -> None:
        if msg.version not in mapping.VERSIONS:
            raise Fault("AR", 203, Location("MSH", 1, 12), "version not read here (2.3 to 2.5.1)")
        if msg.message_type not in mapping.MESSAGE_TYPES:
            raise Fault("AR", 200, Location("MSH", 1, 9),
                        "message type not handled here (" + ", ".join(mapping.MESSAGE_TYPES) + ")")
        if not msg.control_id:
            raise Fault("AE", 101, Location("MSH", 1, 10), "required field missing (message control id)")
        hospital = self.tenancy.hospitals().get(sender.hospital_id)
        if hospital is None or not hospital["enabled"]:
            state = "does not exist" if hospital is None else "is disabled"
            raise Fault("AR", 207, Location("MSH", 1, 4), f"the sender's hospital {state}: it takes no data")

    def _plan(self, msg: Message, sender: Sender) -> list[Operation]:
        """What the message asks, checked before the transaction: a Fault names what is wrong."""
        kind = msg.message_type
        source = f"hl7:{sender.facility}"
        hospital_id = sender.hospital_id
        plan: list[Operation] = []
        if kind in mapping.ORDER_TYPES:
            for order in mapping.orders(msg):
                if order.cancelled:
                    mapping.refuse_missing((g.DELETE_FIELDS[1],), order.study)
                    plan.append(self._cancel(hospital_id, order.study.sent(), source))
                else:
                    mapping.refuse_missing(g.STUDY_FIELDS, order.study)
                    plan.append(functools.partial(self._add, hospital_id=hospital_id,
                                                  record=parse(g.STUDY_FIELDS, order.study.sent()), source=source))
        elif kind == mapping.REPORT_TYPE:
            for report in mapping.reports(msg):
                mapping.refuse_missing(g.REPORT_FIELDS, report.report)
                plan.append(functools.partial(self._report, hospital_id=hospital_id,
                                              record=parse(g.REPORT_FIELDS, report.report.sent()),
                                              status=report.status, source=source))
        else:
            who = mapping.patient(msg)
            mapping.refuse_missing((g.STUDY_FIELDS[0],), who)
            _check_changes(who)
            if kind == mapping.UPDATE_TYPE:
                plan.append(lambda conn, _pk: self._update(conn, hospital_id, who.body["patientId"], who.body,
                                                           source))
            else:
                prior = mapping.prior_patient_id(msg)
                if not prior:
                    raise Fault("AE", 101, Location("MRG", 1, 1), "required field missing (prior patient id)")
                plan.append(lambda conn, pk: self._merge(conn, pk, sender, msg.control_id, prior, who.body, source))
        return plan

    def _apply(self, conn: Connection, sender: Sender, header: Header, kind: str, raw: bytes,
               plan: list[Operation]) -> _Answer:
        now = self.clock()
        m = s.hl7_messages
        values = {"facility": sender.facility, "control_id": header.control_id, "hospital_id": sender.hospital_id,
                  "message_type": kind, "ack_code": "AA", "error": None, "raw_enc": self.vault.encrypt(raw),
                  "received_at": now}
        inserted = _INSERT_MESSAGE.one(conn, values)
        pk = None if inserted is None else inserted[0]
        if pk is None:
            row = conn.execute(select(m.c.pk, m.c.ack_code).where(
                m.c.facility == sender.facility, m.c.control_id == header.control_id)).one()
            if row.ack_code == "AA":
                return _Answer("AA", duplicate=True)
            # Refused before (nothing of it was written): sent again, it is processed again.
            conn.execute(update(m).where(m.c.pk == row.pk).values(**values))
            pk = row.pk
        for operation in plan:
            operation(conn, pk)
        return _Answer("AA")

    # -- the operations ----------------------------------------------------------

    def _add(self, conn: Connection, _message_pk: int, *, hospital_id: str, record: Record, source: str) -> None:
        accept.accept_study(conn, vault=self.vault, hospital_id=hospital_id, record=record, source=source,
                            events=self.events, received_at=self.clock())

    def _cancel(self, hospital_id: str, body: dict[str, Any], source: str) -> Operation:
        def cancel(conn: Connection, _pk: int) -> None:
            study_id = body[g.STUDY_ID]
            row = records.study_row(conn, hospital_id=hospital_id, study_id=study_id)
            if row is None:
                raise Fault("AE", 204, Location("ORC", 1, 3), "no study with this order number to cancel")
            known_uid = row.study_uid or conn.execute(
                select(s.dicom_studies.c.study_uid).where(s.dicom_studies.c.ris_study_pk == row.pk).limit(1)
            ).scalar()
            # A cancel names the order; what it leaves out is the stored study's (records.delete_study compares).
            values = {"patientId": body.get("patientId") or row.patient_id, g.STUDY_ID: study_id,
                      g.ACCESS_NUMBER: row.access_number or body.get(g.ACCESS_NUMBER),
                      g.STUDY_UID: body.get(g.STUDY_UID) or known_uid}
            accept.accept_delete(conn, vault=self.vault, hospital_id=hospital_id,
                                 record=Record(values=values, raw=body), source=source, events=self.events,
                                 received_at=self.clock())
        return cancel

    def _report(self, conn: Connection, _message_pk: int, *, hospital_id: str, record: Record, status: str | None,
                source: str) -> None:
        accept.accept_report(conn, vault=self.vault, hospital_id=hospital_id, record=record, source=source,
                             events=self.events, received_at=self.clock())
        if status is None:
            return
        row = records.study_row(conn, hospital_id=hospital_id, study_id=record.values[g.STUDY_ID])
        # A report before its study (contract §2.2) is kept; the status waits for a study to move.
        if row is not None and not row.deleted and row.status != status:
            self._restate(conn, hospital_id, row.pk, {"status": status}, source)

    def _update(self, conn: Connection, hospital_id: str, patient_id: str, changes: dict[str, Any],
                source: str) -> None:
        for pk, _ in _studies_of(conn, hospital_id, patient_id):
            self._restate(conn, hospital_id, pk, changes, source)

    def _merge(self, conn: Connection, message_pk: int, sender: Sender, control_id: str, prior: str,
               changes: dict[str, Any], source: str) -> None:
        hospital_id = sender.hospital_id
        moved = _studies_of(conn, hospital_id, prior)
        for pk, _ in moved:
            self._restate(conn, hospital_id, pk, changes, source)
        conn.execute(insert(s.hl7_merges).values(
            hospital_id=hospital_id, message_pk=message_pk, facility=sender.facility, control_id=control_id,
            from_patient_id=prior, to_patient_id=changes["patientId"],
            study_ids=orjson.dumps([study_id for _, study_id in moved]).decode(), merged_at=self.clock()))

    def _restate(self, conn: Connection, hospital_id: str, study_pk: int, changes: dict[str, Any],
                 source: str) -> None:
        """The study's stored record with `changes` over it (an explicit null removes), accepted again."""
        v = s.study_versions
        raw_enc = conn.execute(select(v.c.raw_enc).where(v.c.study_pk == study_pk)
                               .order_by(v.c.version.desc()).limit(1)).scalar_one()
        body = orjson.loads(self.vault.decrypt(raw_enc))
        for name, value in changes.items():
            if value == mapping.NULL:
                body.pop(name, None)
            else:
                body[name] = value
        accept.accept_study(conn, vault=self.vault, hospital_id=hospital_id, record=parse(g.STUDY_FIELDS, body),
                            source=source, events=self.events, received_at=self.clock())

    # -- answers -----------------------------------------------------------------

    def _refuse(self, raw: bytes, header: Header, kind: str, fault: Fault, peer_host: str,
                sender: Sender | None = None) -> bytes:
        """Keep the refused message (a registered sender's: nothing it sent is dropped) and NAK it."""
        sender = sender or self._sender(header, peer_host)
        if sender is None:
            return self._answer(header, kind, "AR", fault=self._stranger(header, peer_host))
        log.warning("HL7 %s %s from %s: %s %s", kind or "message", header.control_id, sender.facility,
                    fault.ack_code, fault.text)

        def keep(conn: Connection) -> bool:
            m = s.hl7_messages
            values = {"facility": sender.facility, "control_id": header.control_id,
                      "hospital_id": sender.hospital_id, "message_type": kind[:32], "ack_code": fault.ack_code,
                      "error": fault.text, "raw_enc": self.vault.encrypt(raw), "received_at": self.clock()}
            if insert_ignore(conn, m, values, keys=["facility", "control_id"]).rowcount:
                return False
            where = (m.c.facility == sender.facility, m.c.control_id == header.control_id)
            if conn.execute(select(m.c.ack_code).where(*where)).scalar_one() == "AA":
                return True  # sent again, damaged or not, under the control id of an accepted message
            conn.execute(update(m).where(*where).values(**values))
            return False

        try:
            duplicate = self.writer.run(keep, key=sender.facility)
        except Exception as exc:
            log.error("HL7 %s from %s: the refusal could not be kept (%s)", header.control_id, sender.facility,
                      type(exc).__name__)
            fault = Fault("AR", 207, Location("MSH", 1, 0), "not kept because of a fault here: send it again")
            return self._answer(header, kind, "AR", fault=fault)
        if duplicate:
            return self._answer(header, kind, "AA", duplicate=True,
                                text="duplicate of an accepted message: not written again")
        return self._answer(header, kind, fault.ack_code, fault=fault)

    def _answer(self, header: Header, kind: str, code: str, *, fault: Fault | None = None, text: str = "",
                duplicate: bool = False) -> bytes:
        if self.metrics is not None:
            self.metrics.answered(kind, code, duplicate=duplicate)
        return ack(header, code, fault=fault, text=text)


def _studies_of(conn: Connection, hospital_id: str, patient_id: str) -> list[tuple[int, str]]:
    st = s.studies
    rows = conn.execute(select(st.c.pk, st.c.study_id).where(
        st.c.hospital_id == hospital_id, st.c.patient_id == patient_id, st.c.deleted.is_(False)
    ).order_by(st.c.pk)).all()
    return [(r.pk, r.study_id) for r in rows]


def _check_changes(who: mapping.Mapped) -> None:
    """A patient update's required study fields, when sent, must read (patientSex M/F/O …)."""
    for f in g.STUDY_FIELDS:
        value = who.body.get(f.name)
        if f.cls == "A" and value == mapping.NULL:
            raise Fault("AE", 101, who.where.get(f.name, Location("PID", 1, 0)),
                        f"a required field cannot be removed ({f.name})")
    present = {k: v for k, v in who.body.items() if v != mapping.NULL}
    mapping.refuse_missing(tuple(f for f in g.STUDY_FIELDS if f.name in present), mapping.Mapped(present, who.where))


def _content_fault(exc: YingyunError | ContractError) -> Fault:
    """A service's refusal of the message's content (a cancel that disagrees with the study …) as an AE."""
    detail = exc.detail
    code = 204 if isinstance(exc, NotFound) else 102 if isinstance(exc, (Invalid, ContractError)) else 207
    return Fault("AE", code, Location("MSH", 1, 0), detail)
