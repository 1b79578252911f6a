"""A device given an AE title through the API sends C-STORE to the DICOM port, filed under its hospital, exactly
while it is enabled (a real association with pynetdicom, on SQLite and PostgreSQL)."""

from __future__ import annotations

from pydicom import dcmread
from pynetdicom import AE
from sqlalchemy import select

from yingyun.gateway.receiver import build_receiver
from yingyun.storage import schema as s

from ...support.dicom_data import StudySpec, make, uid
from ...test_cli import eventually
from .test_api import ok


def _c_store(port: int, path, calling_ae: str) -> int | None:
    """The status of one C-STORE sent as `calling_ae`; None when the association is refused."""
    ds = dcmread(path)
    ae = AE(ae_title=calling_ae)
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title="YINGYUN")
    if not assoc.is_established:
        return None
    try:
        return int(assoc.send_c_store(ds).Status)
    finally:
        assoc.release()


def test_a_device_with_an_ae_title_sends_c_store_while_enabled(staff_world, tmp_path) -> None:
    op, _ = staff_world.sign_in("op")
    ok(op.post("/api/v1/device-types", json={"id": "ct", "name": "GE Revolution CT", "modality": "CT"}))
    ok(op.post("/api/v1/devices", json={"id": "ct1", "hospitalId": "h2", "name": "CT-1", "deviceTypeId": "ct",
                                        "aeTitle": "CT1", "host": "127.0.0.1"}))
    runtime = staff_world.runtime
    server = build_receiver(runtime, port=0)
    server.start()
    try:
        spec = StudySpec(accession="A1")
        assert eventually(lambda: _c_store(server.port, make(tmp_path / "a.dcm", spec, series_uid=uid()), "CT1") == 0)
        with runtime.db.read() as conn:
            assert conn.execute(select(s.instances.c.hospital_id)).scalars().all() == ["h2"]
        ok(op.patch("/api/v1/devices/ct1", json={"enabled": False}))
        # (the receiver's registry notices within its cache's refresh)
        assert eventually(lambda: _c_store(server.port, make(tmp_path / "b.dcm", spec, series_uid=uid()), "CT1")
                          is None)
        with runtime.db.read() as conn:
            assert len(conn.execute(select(s.instances.c.pk)).all()) == 1  # what it sent before stays
    finally:
        server.shutdown()
