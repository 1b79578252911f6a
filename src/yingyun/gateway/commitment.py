"""Storage commitment (Storage Commitment Push Model, PS3.4 Annex J): what the gateway confirms it holds.

A PACS asks (N-ACTION, on the DICOM port: gateway/scp.py) whether the gateway
holds a list of instances, before it deletes its own copies. The request is
written here (`record`) before it is acknowledged, so a restart does not lose
it. The result is worked out when it is sent (`evaluate`), from what is
durably held then: an instance is committed only when its index row is
committed and its blob is there, which is what a C-STORE success means
(archive/instances.py); anything else is a Failed SOP Sequence item with its
reason (0x0112 never received, 0x0119 stored under another SOP class, 0x0122
not a storage class, 0x0110 the blob is gone).

The result goes on the requester's association while it is open. When the
requester released first, or did not answer it with a success, it goes on a
new association to the requester's registered port (`yingyun admin pacs add
--port`), the gateway as requestor proposing the SCP role of the class
(SCP/SCU role selection, PS3.7 D.3.3.4), retried after `RETRY_S` and then
given up ("undeliverable"). That worker (`CommitmentSender`) runs once per
instance, in the serve process; the outbound association is pynetdicom's
(one short association per result, where its polling costs nothing).

Logs carry the row's number and AE titles, never a UID of the request.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, and_, delete, insert, select, update

from ..core.worker import PeriodicWorker
from ..dicomnet.acse import STORE, service_of
from ..dicomnet.commitment import CommitmentRequest, CommitmentResult, Reason, report_dataset
from ..dicomnet.status import Category, category
from ..dicomnet.uids import STORAGE_COMMITMENT_INSTANCE, STORAGE_COMMITMENT_PUSH
from ..storage import schema as s
from ..storage.blobs import BlobStore
from ..storage.db import Database
from ..tenancy import Pacs, Tenancy

log = logging.getLogger("yingyun.dicom")

PENDING, REPORTED, UNDELIVERABLE = "pending", "reported", "undeliverable"
# A result the requester's association may still carry is left to it this long before the
# worker sends it on a new association (its close hands it over at once; a crash does not).
HANDOFF_S = 60.0
# Waits after each failed attempt on a new association; after the last, undeliverable.
RETRY_S = (10.0, 30.0, 60.0, 300.0)
_CHUNK = 500

sc = s.storage_commitments


def record(conn: Connection, *, hospital_id: str, requester_ae: str, request: CommitmentRequest, now: float,
           due_at: float) -> None:
    """Write a request (a transaction sent again replaces the one before: its result is due again)."""
    key = and_(sc.c.hospital_id == hospital_id, sc.c.requester_ae == requester_ae,
               sc.c.transaction_uid == request.transaction_uid)
    conn.execute(delete(sc).where(key))
    conn.execute(insert(sc).values(
        hospital_id=hospital_id, requester_ae=requester_ae, transaction_uid=request.transaction_uid,
        refs=orjson.dumps([list(r) for r in request.references]).decode(), n_requested=len(request.references),
        state=PENDING, attempts=0, next_attempt_at=due_at, requested_at=now))


def evaluate(conn: Connection, blobs: BlobStore, *, hospital_id: str, request: CommitmentRequest) -> CommitmentResult:
    """What of the request the gateway holds durably now, and why not the rest."""
    held: dict[str, tuple[str, str]] = {}
    uids = sorted({inst for _, inst in request.references})
    i = s.instances
    for start in range(0, len(uids), _CHUNK):
        rows = conn.execute(select(i.c.sop_uid, i.c.sop_class_uid, i.c.blob_key).where(
            i.c.hospital_id == hospital_id, i.c.sop_uid.in_(uids[start:start + _CHUNK])))
        held.update({r.sop_uid: (r.sop_class_uid, r.blob_key) for r in rows})
    committed: list[tuple[str, str]] = []
    failed: list[tuple[str, str, int]] = []
    for cls, inst in request.references:
        reason = _failure(blobs, cls, held.get(inst))
        if reason is None:
            committed.append((cls, inst))
        else:
            failed.append((cls, inst, reason))
    return CommitmentResult(request.transaction_uid, tuple(committed), tuple(failed))


def _failure(blobs: BlobStore, cls: str, row: tuple[str, str] | None) -> int | None:
    if service_of(cls) != STORE:
        return Reason.REFERENCED_SOP_CLASS_NOT_SUPPORTED
    if row is None:
        return Reason.NO_SUCH_OBJECT_INSTANCE
    stored_class, blob_key = row
    if stored_class != cls:
        return Reason.CLASS_INSTANCE_CONFLICT
    try:
        return None if blobs.exists(blob_key) else Reason.PROCESSING_FAILURE
    except OSError:
        return Reason.PROCESSING_FAILURE


def mark_reported(conn: Connection, *, hospital_id: str, requester_ae: str, result: CommitmentResult, via: str,
                  now: float) -> None:
    conn.execute(update(sc).where(
        sc.c.hospital_id == hospital_id, sc.c.requester_ae == requester_ae,
        sc.c.transaction_uid == result.transaction_uid, sc.c.state == PENDING,
    ).values(state=REPORTED, via=via, n_committed=len(result.committed), n_failed=len(result.failed),
             reported_at=now))


def hand_over(conn: Connection, *, hospital_id: str, requester_ae: str, transaction_uids: Iterable[str],
              now: float) -> None:
    """Results the association could not deliver: due on a new association now."""
    uids = list(transaction_uids)
    if uids:
        conn.execute(update(sc).where(
            sc.c.hospital_id == hospital_id, sc.c.requester_ae == requester_ae, sc.c.transaction_uid.in_(uids),
            sc.c.state == PENDING).values(next_attempt_at=now))


def request_of(row: Any) -> CommitmentRequest:
    refs: list[list[str]] = orjson.loads(row.refs)
    return CommitmentRequest(row.transaction_uid, tuple((c, i) for c, i in refs))


def send_report(*, ae_title: str, peer: Pacs, result: CommitmentResult, timeout_s: float) -> int | None:
    """Send a result on a new association to `peer`; the N-EVENT-REPORT-RSP status, None when none came."""
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
    from pynetdicom import AE, build_role

    ae = AE(ae_title=ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    ae.add_requested_context(STORAGE_COMMITMENT_PUSH, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    # The association's requestor is the SCP of the class here: it says so (PS3.4 J.3.3).
    role = build_role(STORAGE_COMMITMENT_PUSH, scu_role=False, scp_role=True)
    # pynetdicom leaks its socket when the connection is refused: a peer that is down is found out first.
    socket.create_connection((peer.host, peer.port), timeout=timeout_s).close()
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title, ext_neg=[role])
    if not assoc.is_established:
        return None
    try:
        answer, _ = assoc.send_n_event_report(report_dataset(result), result.event_type, STORAGE_COMMITMENT_PUSH,
                                              STORAGE_COMMITMENT_INSTANCE)
        return int(answer.Status) if answer is not None and "Status" in answer else None
    except (ValueError, RuntimeError) as exc:  # the role or the context was not accepted
        log.warning("storage commitment: %s did not take the report (%s)", peer.ae_title, type(exc).__name__)
        return None
    finally:
        if assoc.is_established:
            assoc.release()


class CommitmentSender:
    """Sends the results due on a new association (`hand_over`, or left by a crash), retrying."""

    def __init__(self, *, db: Database, tenancy: Tenancy, blobs: BlobStore, ae_title: str, interval_s: float = 2.0,
                 retry_s: Sequence[float] = RETRY_S, timeout_s: float = 10.0) -> None:
        self.db = db
        self.tenancy = tenancy
        self.blobs = blobs
        self.ae_title = ae_title
        self.retry_s = tuple(retry_s)
        self.timeout_s = timeout_s
        self._worker = PeriodicWorker("storage-commitment", self.step, interval_s=interval_s, log=log)

    def start(self) -> CommitmentSender:
        self._worker.start()
        return self

    def stop(self) -> None:
        self._worker.stop()

    def step(self) -> None:
        now = time.time()
        with self.db.read() as conn:
            due = list(conn.execute(select(sc).where(sc.c.state == PENDING, sc.c.next_attempt_at <= now)
                                    .order_by(sc.c.next_attempt_at).limit(20)))
        for row in due:
            if self._worker.stopping:
                return
            self._attempt(row)

    def _attempt(self, row: Any) -> None:
        request = request_of(row)
        peer = self.tenancy.pacs().get(row.requester_ae)
        status = None
        if peer is None or peer.hospital_id != row.hospital_id:
            log.warning("storage commitment %d: %s is not a registered PACS of its hospital; no port to report to",
                        row.pk, row.requester_ae)
        else:
            with self.db.read() as conn:
                result = evaluate(conn, self.blobs, hospital_id=row.hospital_id, request=request)
            try:
                status = send_report(ae_title=self.ae_title, peer=peer, result=result, timeout_s=self.timeout_s)
            except OSError as exc:
                log.warning("storage commitment %d: %s unreachable (%s)", row.pk, peer.ae_title, type(exc).__name__)
        now = time.time()
        with self.db.write() as conn:
            if status is not None and category(status) == Category.SUCCESS:
                mark_reported(conn, hospital_id=row.hospital_id, requester_ae=row.requester_ae, result=result,
                              via="new-association", now=now)
                log.info("storage commitment %d: reported to %s (%d committed, %d failed)", row.pk,
                         row.requester_ae, len(result.committed), len(result.failed))
                return
            attempts = row.attempts + 1
            if attempts > len(self.retry_s):
                conn.execute(update(sc).where(sc.c.pk == row.pk, sc.c.state == PENDING).values(
                    state=UNDELIVERABLE, attempts=attempts))
                log.warning("storage commitment %d: undeliverable to %s after %d attempts", row.pk,
                            row.requester_ae, attempts)
                return
            conn.execute(update(sc).where(sc.c.pk == row.pk, sc.c.state == PENDING).values(
                attempts=attempts, next_attempt_at=now + self.retry_s[attempts - 1]))
            log.info("storage commitment %d: attempt %d to %s failed (status %s); retrying", row.pk, attempts,
                     row.requester_ae, "none" if status is None else f"0x{status:04x}")
