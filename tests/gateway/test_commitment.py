"""Storage commitment on the DICOM port, asked by pynetdicom as a PACS does before it deletes its copies:
the result on the same association while it is open, on a new one to the PACS's registered port when it
released first; only instances held durably are committed; a request outlives a restart."""

from __future__ import annotations

import socket
import time

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage, StorageCommitmentPushModel
from sqlalchemy import select

from yingyun.dicomnet.commitment import CommitmentRequest
from yingyun.dicomnet.server import UpperLayerServer
from yingyun.gateway import commitment
from yingyun.gateway.scp import GatewayDicomService
from yingyun.storage import schema as s

from ..support.dicom_peers import TEST_UID_ROOT, make_instance

CT = str(CTImageStorage)
WELL_KNOWN = "1.2.840.10008.1.20.1.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def gateway(runtime, tenant):
    service = GatewayDicomService(db=runtime.db, tenancy=runtime.tenancy, store=runtime.instances)
    server = UpperLayerServer(service, ae_title="YINGYUN", host="127.0.0.1", port=0)
    server.start()
    yield server
    server.shutdown()


def store_some(port: int, tmp_path, n: int) -> list[str]:
    ae = AE(ae_title="PACS1")
    ae.add_requested_context(CT, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="YINGYUN")
    assert assoc.is_established
    uids = []
    try:
        for i in range(n):
            ds = make_instance(tmp_path / f"i{i}.dcm", index=i)
            assert assoc.send_c_store(ds).Status == 0x0000
            uids.append(str(ds.SOPInstanceUID))
    finally:
        assoc.release()
    return uids


def action(refs: list[tuple[str, str]]) -> tuple[str, Dataset]:
    ds = Dataset()
    ds.TransactionUID = generate_uid(prefix=TEST_UID_ROOT)
    items = []
    for cls, inst in refs:
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = cls, inst
        items.append(item)
    ds.ReferencedSOPSequence = Sequence(items)
    return str(ds.TransactionUID), ds


def row_of(runtime, transaction: str):
    with runtime.db.read() as conn:
        return conn.execute(select(s.storage_commitments).where(
            s.storage_commitments.c.transaction_uid == transaction)).one()


def wait_for(check, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_the_result_comes_on_the_same_association_and_names_what_never_arrived(runtime, tenant, gateway,
                                                                                tmp_path) -> None:
    runtime.tenancy.add_pacs(ae_title="PACS1", host="127.0.0.1", port=free_port(), hospital_id=tenant["hospital"])
    stored = store_some(gateway.port, tmp_path, 3)
    never = generate_uid(prefix=TEST_UID_ROOT)
    transaction, info = action([(CT, u) for u in stored] + [(CT, never)])
    reports: list[tuple[int, Dataset]] = []

    def on_report(event) -> tuple[int, None]:
        reports.append((event.event_type, event.event_information))
        return 0x0000, None

    ae = AE(ae_title="PACS1")
    ae.add_requested_context(StorageCommitmentPushModel)
    assoc = ae.associate("127.0.0.1", gateway.port, ae_title="YINGYUN",
                         evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    assert assoc.is_established
    try:
        status, reply = assoc.send_n_action(info, 1, StorageCommitmentPushModel, WELL_KNOWN)
        assert status.Status == 0x0000
        wait_for(lambda: reports, "no N-EVENT-REPORT on the association")
        wait_for(lambda: row_of(runtime, transaction).state == "reported", "the report's answer was not recorded")
    finally:
        assoc.release()
    ((event_type, result),) = reports
    assert event_type == 2  # some failed
    assert result.TransactionUID == transaction
    assert sorted(i.ReferencedSOPInstanceUID for i in result.ReferencedSOPSequence) == sorted(stored)
    (failed,) = result.FailedSOPSequence
    assert (failed.ReferencedSOPInstanceUID, failed.FailureReason) == (never, 0x0112)
    row = row_of(runtime, transaction)
    assert (row.via, row.n_requested, row.n_committed, row.n_failed) == ("association", 4, 3, 1)


class RequesterScp:
    """The PACS's own SCP, where a result comes on a new association (the gateway as requestor, in the SCP role)."""

    def __init__(self) -> None:
        self.reports: list[tuple[int, Dataset, str]] = []
        self.ae = AE(ae_title="PACS1")
        # As the acceptor: the requestor may take the SCP role of the class (it sends the N-EVENT-REPORT).
        self.ae.add_supported_context(StorageCommitmentPushModel, scu_role=False, scp_role=True)
        self.port = free_port()
        self.server = self.ae.start_server(("127.0.0.1", self.port), block=False,
                                           evt_handlers=[(evt.EVT_N_EVENT_REPORT, self._on_report)])

    def _on_report(self, event) -> tuple[int, None]:
        self.reports.append((event.event_type, event.event_information, event.assoc.requestor.ae_title))
        return 0x0000, None

    def stop(self) -> None:
        self.server.shutdown()


def test_a_requester_that_released_first_gets_the_result_on_a_new_association(runtime, tenant, gateway,
                                                                              tmp_path) -> None:
    peer = RequesterScp()
    try:
        runtime.tenancy.add_pacs(ae_title="PACS1", host="127.0.0.1", port=peer.port, hospital_id=tenant["hospital"])
        stored = store_some(gateway.port, tmp_path, 2)
        transaction, info = action([(CT, u) for u in stored])
        ae = AE(ae_title="PACS1")
        ae.add_requested_context(StorageCommitmentPushModel)
        assoc = ae.associate("127.0.0.1", gateway.port, ae_title="YINGYUN")  # it takes no report here
        assert assoc.is_established
        status, _ = assoc.send_n_action(info, 1, StorageCommitmentPushModel, WELL_KNOWN)
        assoc.release()
        assert status.Status == 0x0000
        # The association handed it over: due now, not after the hand-off delay.
        wait_for(lambda: row_of(runtime, transaction).next_attempt_at <= time.time(), "not handed over at close")
        assert row_of(runtime, transaction).state == "pending"
        sender = commitment.CommitmentSender(db=runtime.db, tenancy=runtime.tenancy, blobs=runtime.blobs,
                                             ae_title="YINGYUN")
        sender.step()
        ((event_type, result, calling),) = peer.reports
        assert (event_type, calling) == (1, "YINGYUN")
        assert sorted(i.ReferencedSOPInstanceUID for i in result.ReferencedSOPSequence) == sorted(stored)
        assert "FailedSOPSequence" not in result
        row = row_of(runtime, transaction)
        assert (row.state, row.via, row.n_committed, row.n_failed) == ("reported", "new-association", 2, 0)
        sender.step()  # nothing is due any more: not sent twice
        assert len(peer.reports) == 1
    finally:
        peer.stop()


def test_a_request_outlives_a_restart_and_an_unreachable_requester_is_given_up(runtime, tenant, tmp_path) -> None:
    h = tenant["hospital"]
    peer = RequesterScp()
    port_of_nobody = free_port()
    runtime.tenancy.add_pacs(ae_title="PACS1", host="127.0.0.1", port=peer.port, hospital_id=h)
    runtime.tenancy.add_pacs(ae_title="GONE", host="127.0.0.1", port=port_of_nobody, hospital_id=h)
    never = generate_uid(prefix=TEST_UID_ROOT)
    # As a receiver that died after acknowledging the N-ACTION left them: recorded, never reported.
    now = time.time()
    with runtime.db.write() as conn:
        for ae_title in ("PACS1", "GONE"):
            commitment.record(conn, hospital_id=h, requester_ae=ae_title, now=now - 120, due_at=now - 60,
                              request=CommitmentRequest(f"2.25.{len(ae_title)}", ((CT, never), ("1.2.3", never))))
    try:
        sender = commitment.CommitmentSender(db=runtime.db, tenancy=runtime.tenancy, blobs=runtime.blobs,
                                             ae_title="YINGYUN", retry_s=(0.0, 0.0), timeout_s=2.0)
        for _ in range(3):
            sender.step()
        ((event_type, result, _),) = peer.reports
        assert event_type == 2
        assert "ReferencedSOPSequence" not in result
        assert sorted(i.FailureReason for i in result.FailedSOPSequence) == [0x0112, 0x0122]
        with runtime.db.read() as conn:
            c = s.storage_commitments.c
            states = {r[0]: r[1] for r in conn.execute(select(c.requester_ae, c.state)).all()}
            gone = conn.execute(select(s.storage_commitments.c.attempts).where(
                s.storage_commitments.c.requester_ae == "GONE")).scalar_one()
        assert states == {"PACS1": "reported", "GONE": "undeliverable"}
        assert gone == 3
    finally:
        peer.stop()


def test_a_request_on_the_wrong_instance_or_without_references_is_refused_and_not_recorded(runtime, tenant,
                                                                                          gateway) -> None:
    runtime.tenancy.add_pacs(ae_title="PACS1", host="127.0.0.1", port=free_port(), hospital_id=tenant["hospital"])
    ae = AE(ae_title="PACS1")
    ae.add_requested_context(StorageCommitmentPushModel)
    assoc = ae.associate("127.0.0.1", gateway.port, ae_title="YINGYUN")
    assert assoc.is_established
    try:
        _, info = action([(CT, generate_uid(prefix=TEST_UID_ROOT))])
        status, _ = assoc.send_n_action(info, 1, StorageCommitmentPushModel, "1.2.3.4")
        assert status.Status == 0x0112  # no such SOP instance: the well-known one only
        status, _ = assoc.send_n_action(info, 7, StorageCommitmentPushModel, WELL_KNOWN)
        assert status.Status == 0x0123  # no such action type
        empty = Dataset()
        empty.TransactionUID = generate_uid(prefix=TEST_UID_ROOT)
        status, _ = assoc.send_n_action(empty, 1, StorageCommitmentPushModel, WELL_KNOWN)
        assert status.Status == 0x0120  # missing attribute
    finally:
        assoc.release()
    with runtime.db.read() as conn:
        assert conn.execute(select(s.storage_commitments)).all() == []
