"""`yingyun serve` as a process: a PACS stores, asks for a storage commitment and releases at once; the
result comes to its registered port on a new association, and /metrics counts it and the worklist query."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, ModalityWorklistInformationFind, StorageCommitmentPushModel

from ..support.dicom_peers import make_instance
from ..support.servers import YINGYUN, ServeProcess
from .test_commitment import WELL_KNOWN, RequesterScp, action, wait_for


def admin(data_dir: Path, *args: str) -> str:
    return subprocess.run([YINGYUN, "admin", *args, "--data-dir", str(data_dir)], check=True, capture_output=True,
                          text=True, timeout=60).stdout


def metric(url: str, line: str) -> bool:
    return any(m.startswith(line) for m in httpx.get(url + "/metrics").text.splitlines())


def test_serve_reports_a_commitment_on_a_new_association_and_counts_it(tmp_path) -> None:
    data = tmp_path / "data"
    subprocess.run([YINGYUN, "db", "upgrade", "--data-dir", str(data)], check=True, capture_output=True, timeout=60)
    admin(data, "hospital", "add", "--id", "h1", "--name", "一院")
    peer = RequesterScp()
    try:
        admin(data, "pacs", "add", "--ae-title", "PACS1", "--host", "127.0.0.1", "--port", str(peer.port),
              "--hospital", "h1")
        with ServeProcess(data) as serve:
            dicom_port = int(serve.args[serve.args.index("--dicom-port") + 1])
            ae = AE(ae_title="PACS1")
            ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
            ae.add_requested_context(StorageCommitmentPushModel)
            ae.add_requested_context(ModalityWorklistInformationFind)
            assoc = ae.associate("127.0.0.1", dicom_port, ae_title="YINGYUN")
            assert assoc.is_established
            sent = []
            for i in range(2):
                ds = make_instance(tmp_path / f"i{i}.dcm", index=i)
                assert assoc.send_c_store(ds).Status == 0x0000
                sent.append(str(ds.SOPInstanceUID))
            query = Dataset()
            query.PatientID = ""
            assert [status.Status for status, _ in assoc.send_c_find(query, ModalityWorklistInformationFind)] == [0]
            transaction, info = action([(str(CTImageStorage), u) for u in sent])
            status, _ = assoc.send_n_action(info, 1, StorageCommitmentPushModel, WELL_KNOWN)
            assoc.release()  # before any result: it must come on a new association
            assert status.Status == 0x0000
            wait_for(lambda: peer.reports, "no N-EVENT-REPORT to the PACS's own port", timeout=60)
            ((event_type, result, calling),) = peer.reports
            assert (event_type, calling, result.TransactionUID) == (1, "YINGYUN", transaction)
            assert sorted(i.ReferencedSOPInstanceUID for i in result.ReferencedSOPSequence) == sorted(sent)
            wait_for(lambda: metric(serve.url, 'yingyun_storage_commitment_instances_total{outcome="committed"} 2.0'),
                     "the committed instances are not counted", timeout=30)
            assert metric(serve.url, 'yingyun_storage_commitment_instances_total{outcome="requested"} 2.0')
            assert metric(serve.url, 'yingyun_storage_commitments{state="reported"} 1.0')
            wait_for(lambda: metric(serve.url, 'yingyun_dicom_cfind_total{model="worklist",status="success"} 1.0'),
                     "the worklist query is not counted", timeout=30)
        log = serve.log.read_text()
        assert transaction not in log and sent[0] not in log  # no UID of the request in the log
    finally:
        peer.stop()

