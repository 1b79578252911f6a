"""The gateway's DICOM service: who may associate, where instances go.

Binds the upper-layer server to the archive: the calling AE title + host
pair must be registered (`yingyun admin pacs add`) unless `--accept-any-ae`,
and decides the hospital; each C-STORE goes through InstanceStore (success
only once fsynced and indexed), and is refused with 0x0124 while that
hospital is disabled; C-FIND answers from the index, scoped to
that hospital (Study/Patient Root from the images, the Modality Worklist from
the RIS's studies not yet imaged: gateway/worklist.py); a storage commitment
(N-ACTION) is recorded and answered from what that hospital's index holds
(gateway/commitment.py). A disk-space guard
refuses with 0xA700 before the disk fills.
A PACS registered by host name is looked up again every ADDRESS_TTL_S, so
one whose address changes is let in again without a restart.

This is the DICOM port's edge: the one place where Yingyun's errors
(core/errors.py) become DIMSE statuses (`dimse_failure`), as the vendor
envelope, DICOMweb and the CLI each map them once at theirs.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable
from typing import BinaryIO

from pydicom.dataset import Dataset

from ..archive import query
from ..archive.instances import InstanceStore
from ..core.errors import Forbidden, Invalid, Unauthenticated, Unavailable, YingyunError
from ..core.logging import association_id
from ..core.ttl import TtlCache
from ..dicomnet.acse import AssociationInfo, Rejected
from ..dicomnet.commitment import CommitmentRequest, CommitmentResult
from ..dicomnet.dimse import ServiceFailure, StoreRequest, StoreResponse
from ..dicomnet.status import Category, Status, category
from ..dicomnet.uids import MODALITY_WORKLIST_FIND
from ..storage.db import Database
from ..tenancy import Tenancy
from . import commitment, worklist

log = logging.getLogger("yingyun.dicom")

# A-ASSOCIATE-RJ diagnostics (PS3.8 9.3.4), source 1 = service user.
CALLING_AE_NOT_RECOGNIZED = 3
NO_REASON = 1


# A PACS registered by name may change address: looked up again after this long.
ADDRESS_TTL_S = 30.0


def dimse_failure(exc: YingyunError, *, service: str) -> ServiceFailure:
    """The DIMSE failure that answers a service error on a C-STORE or C-FIND (`service`), with the
    error's detail (never patient data, core/errors.py) as the Error Comment."""
    if isinstance(exc, Unavailable):
        status = Status.OUT_OF_RESOURCES
    elif isinstance(exc, (Forbidden, Unauthenticated)):
        status = Status.NOT_AUTHORIZED
    elif isinstance(exc, Invalid):
        # C-FIND: "Identifier does not match SOP Class" (PS3.4 C.4.1.1.4); C-STORE: "Cannot understand"
        status = Status.DATA_SET_DOES_NOT_MATCH_SOP_CLASS if service == "find" else Status.CANNOT_UNDERSTAND
    else:
        status = Status.PROCESSING_FAILURE
    return ServiceFailure(status, exc.detail)


def resolve_host(host: str) -> frozenset[str]:
    """The addresses a registered PACS host stands for (the host itself when it does not resolve)."""
    try:
        return frozenset(str(info[4][0]) for info in socket.getaddrinfo(host, None))
    except OSError:
        return frozenset({host})


class PacsSession:
    def __init__(self, provider: GatewayDicomService, info: AssociationInfo, hospital_id: str) -> None:
        self.provider = provider
        self.info = info
        self.hospital_id = hospital_id
        self.stored = 0
        self.refused = 0
        # Checked per association, and again every few hundred instances.
        self._room_checked_at = time.monotonic()
        self._has_room = provider.store.has_room()
        self._unreported: dict[str, CommitmentResult] = {}  # storage commitment results sent, not yet answered

    def store(self, req: StoreRequest, data: bytes | memoryview | BinaryIO) -> StoreResponse:
        try:
            return self._store(req, data)
        except YingyunError as exc:
            raise dimse_failure(exc, service="store") from exc

    def _store(self, req: StoreRequest, data: bytes | memoryview | BinaryIO) -> StoreResponse:
        now = time.monotonic()
        if now - self._room_checked_at > 1.0:
            self._has_room = self.provider.store.has_room()
            self._room_checked_at = now
        if not self._has_room:
            self.refused += 1
            return StoreResponse(Status.OUT_OF_RESOURCES, "storage is nearly full")
        hospital = self.provider.tenancy.hospitals().get(self.hospital_id)
        if hospital is None or not hospital["enabled"]:
            # The hospital these images belong to was removed or disabled since the association began.
            self.refused += 1
            state = "does not exist" if hospital is None else "is disabled"
            log.warning("[%s] C-STORE refused 0x%04X: hospital %s %s", self.info.assoc_id, Status.NOT_AUTHORIZED,
                        self.hospital_id, state)
            return StoreResponse(Status.NOT_AUTHORIZED, f"hospital {state}")
        result = self.provider.store.store(
            hospital_id=self.hospital_id, data=data, transfer_syntax_uid=req.transfer_syntax_uid,
            sop_class_uid=req.sop_class_uid, sop_instance_uid=req.sop_instance_uid, source_ae=self.info.calling_ae,
        )
        if category(result.status) == Category.SUCCESS:
            self.stored += 1
            return StoreResponse(result.status)
        self.refused += 1
        log.warning("[%s] C-STORE refused 0x%04X: %s", self.info.assoc_id, result.status, result.reason)
        # The sender is told why, as the log is; the reasons name fields, never their values.
        return StoreResponse(result.status, result.reason)

    def find(self, sop_class_uid: str, identifier: Dataset) -> Iterable[Dataset]:
        try:
            with self.provider.db.read() as conn:
                # Materialised so the read transaction is not held while the peer reads slowly.
                if sop_class_uid == MODALITY_WORKLIST_FIND:
                    return list(worklist.find(conn, identifier, hospital_id=self.hospital_id))
                return list(query.find(conn, identifier, hospital_ids={self.hospital_id}))
        except YingyunError as exc:
            raise dimse_failure(exc, service="find") from exc

    def commit(self, request: CommitmentRequest) -> CommitmentResult:
        db, now = self.provider.db, time.time()
        try:
            with db.write() as conn:
                commitment.record(conn, hospital_id=self.hospital_id, requester_ae=self.info.calling_ae,
                                  request=request, now=now, due_at=now + commitment.HANDOFF_S)
            with db.read() as conn:
                result = commitment.evaluate(conn, self.provider.store.blobs, hospital_id=self.hospital_id,
                                             request=request)
        except YingyunError as exc:
            raise dimse_failure(exc, service="commit") from exc
        log.info("[%s] storage commitment of %d instance(s) from %s: %d held, %d not", self.info.assoc_id,
                 len(request.references), self.info.calling_ae, len(result.committed), len(result.failed))
        self._unreported[request.transaction_uid] = result
        return result

    def commit_reported(self, transaction_uid: str, status: int | None) -> None:
        if status is None or category(status) != Category.SUCCESS:
            return  # left for a new association, at close
        result = self._unreported.pop(transaction_uid, None)
        if result is not None:
            with self.provider.db.write() as conn:
                commitment.mark_reported(conn, hospital_id=self.hospital_id, requester_ae=self.info.calling_ae,
                                         result=result, via="association", now=time.time())

    def close(self, *, aborted: bool) -> None:
        if self._unreported:
            with self.provider.db.write() as conn:
                commitment.hand_over(conn, hospital_id=self.hospital_id, requester_ae=self.info.calling_ae,
                                     transaction_uids=self._unreported, now=time.time())
            log.info("[%s] %d storage commitment result(s) go on a new association", self.info.assoc_id,
                     len(self._unreported))
        log.info("[%s] association %s: %d stored, %d refused", self.info.assoc_id,
                 "aborted" if aborted else "released", self.stored, self.refused)


class GatewayDicomService:
    """The ServiceProvider of the upper-layer server."""

    def __init__(self, *, db: Database, tenancy: Tenancy, store: InstanceStore, accept_any_ae: bool = False,
                 default_hospital: str | None = None,
                 resolve: Callable[[str], frozenset[str]] = resolve_host, address_ttl_s: float = ADDRESS_TTL_S) -> None:
        self.db = db
        self.tenancy = tenancy
        self.store = store
        self.accept_any_ae = accept_any_ae
        self.default_hospital = default_hospital
        self._resolve = resolve
        self._addresses: TtlCache[str, frozenset[str]] = TtlCache(address_ttl_s)

    def addresses(self, host: str) -> frozenset[str]:
        """The addresses of a registered PACS host, looked up at most every ``address_ttl_s``."""
        return self._addresses.get(host, self._resolve)

    def is_registered_host(self, peer_host: str) -> bool:
        """Whether a connection from this address may be a registered PACS: those may take the
        association slots kept for them, so that strangers holding the others cannot lock them out."""
        return any(peer_host in self.addresses(p.host) for p in self.tenancy.pacs().values())

    def associate(self, info: AssociationInfo) -> PacsSession:
        # Called on the association's own thread: every line it logs from here on carries its id (JSON logs).
        association_id.set(info.assoc_id)
        peer = self.tenancy.pacs().get(info.calling_ae)
        if peer is not None and info.peer_host in self.addresses(peer.host):
            return PacsSession(self, info, peer.hospital_id)
        if self.accept_any_ae:
            hospital = self._default_hospital()
            if hospital is not None:
                return PacsSession(self, info, hospital)
            log.warning("[%s] refused: --accept-any-ae needs --default-hospital when several hospitals exist",
                        info.assoc_id)
            raise Rejected("no default hospital", result=1, source=1, diagnostic=NO_REASON)
        why = "unknown calling AE title" if peer is None else "calling AE title from an unregistered host"
        log.warning("[%s] association rejected: %s (calling AE %r from %s)", info.assoc_id, why, info.calling_ae,
                    info.peer_host)
        raise Rejected(why, result=1, source=1, diagnostic=CALLING_AE_NOT_RECOGNIZED)

    def _default_hospital(self) -> str | None:
        if self.default_hospital:
            return self.default_hospital
        hospitals = self.tenancy.hospitals()
        return next(iter(hospitals)) if len(hospitals) == 1 else None
