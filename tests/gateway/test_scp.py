"""The gateway's DICOM service: registered PACS hosts are looked up again, not cached for ever; one
implementation identity on the wire and in stored files."""

from __future__ import annotations

import time

from yingyun.archive.instances import InstanceStore
from yingyun.dicomnet.server import UpperLayerServer
from yingyun.gateway.scp import GatewayDicomService
from yingyun.storage.blobs import LocalBlobStore

from ..support.dicom_peers import echoscu


def test_a_pacs_whose_address_changes_is_let_in_without_a_restart(runtime, tenant, tmp_path):
    runtime.tenancy.add_pacs(ae_title="PACS1", host="pacs.hospital.example", port=104, hospital_id="h1")
    # The hospital's DNS: the PACS moves from 10.1.2.3 to this machine.
    answers = {"pacs.hospital.example": frozenset({"10.1.2.3"})}
    lookups: list[str] = []

    def resolve(host: str) -> frozenset[str]:
        lookups.append(host)
        return answers[host]

    store = InstanceStore(runtime.db, LocalBlobStore(tmp_path / "blobs", fsync=False))
    service = GatewayDicomService(db=runtime.db, tenancy=runtime.tenancy, store=store, resolve=resolve,
                                  address_ttl_s=0.5)
    server = UpperLayerServer(service, ae_title="YINGYUN", host="127.0.0.1", port=0)
    server.start()
    try:
        assert echoscu(server.port, called="YINGYUN", calling="PACS1").returncode != 0
        answers["pacs.hospital.example"] = frozenset({"127.0.0.1"})
        deadline = time.monotonic() + 30
        while echoscu(server.port, called="YINGYUN", calling="PACS1").returncode != 0:
            assert time.monotonic() < deadline, "the PACS's new address was never looked up"
            time.sleep(0.2)
        # ...and looked up once per TTL, not once per association.
        assert len(lookups) < 1 + 30 / 0.5
    finally:
        server.shutdown()
        store.close()


def test_a_stored_file_carries_the_implementation_identity_the_association_announced(runtime, tenant, tmp_path):
    """One identity for the product: what the A-ASSOCIATE-AC says we are is what the file meta of
    every stored instance says wrote it (pynetdicom's test_events checks the same of its own)."""
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian
    from sqlalchemy import select

    from yingyun.storage import schema as s

    from ..support.dicom_peers import make_instance, pynetdicom_associate

    runtime.tenancy.add_pacs(ae_title="PACS1", host="127.0.0.1", port=104, hospital_id="h1")
    service = GatewayDicomService(db=runtime.db, tenancy=runtime.tenancy, store=runtime.instances)
    server = UpperLayerServer(service, ae_title="YINGYUN", host="127.0.0.1", port=0)
    server.start()
    try:
        ds = make_instance(tmp_path / "ct.dcm")
        assoc = pynetdicom_associate(server.port, called="YINGYUN", calling="PACS1",
                                     contexts=[(ds.SOPClassUID, [ExplicitVRLittleEndian])])
        try:
            announced = (assoc.acceptor.implementation_class_uid, assoc.acceptor.implementation_version_name)
            assert assoc.send_c_store(ds).Status == 0x0000
        finally:
            assoc.release()
    finally:
        server.shutdown()
    with runtime.db.read() as conn:
        key = conn.execute(select(s.instances.c.blob_key).where(s.instances.c.sop_uid == ds.SOPInstanceUID)).scalar()
    with runtime.blobs.open(key) as f:
        meta = pydicom.dcmread(f).file_meta
    assert announced[0] and announced[0] != ds.file_meta.get("ImplementationClassUID")
    assert (meta.ImplementationClassUID, meta.ImplementationVersionName) == announced


def test_a_c_find_the_archive_cannot_answer_is_told_why(runtime, tenant):
    """The archive's Invalid (an unsupported QueryRetrieveLevel) is mapped once, at the DICOM edge, to
    0xA900 "Identifier does not match SOP Class" with its reason (it was 0xC311, "the handler failed")."""
    from pydicom.dataset import Dataset
    from pydicom.uid import ImplicitVRLittleEndian
    from pynetdicom.sop_class import (
        StudyRootQueryRetrieveInformationModelFind as STUDY_ROOT,
    )

    from ..support.dicom_peers import pynetdicom_associate

    runtime.tenancy.add_pacs(ae_title="PACS1", host="127.0.0.1", port=104, hospital_id="h1")
    service = GatewayDicomService(db=runtime.db, tenancy=runtime.tenancy, store=runtime.instances)
    server = UpperLayerServer(service, ae_title="YINGYUN", host="127.0.0.1", port=0)
    server.start()
    try:
        assoc = pynetdicom_associate(server.port, called="YINGYUN", calling="PACS1",
                                     contexts=[(STUDY_ROOT, [ImplicitVRLittleEndian])])
        try:
            query = Dataset()
            query.QueryRetrieveLevel = "PATIENT"
            query.PatientID = ""
            answers = list(assoc.send_c_find(query, STUDY_ROOT))
        finally:
            assoc.release()
    finally:
        server.shutdown()
    [(status, identifier)] = answers
    assert status.Status == 0xA900 and identifier is None
    assert status.ErrorComment == "unsupported QueryRetrieveLevel 'PATIENT'"
