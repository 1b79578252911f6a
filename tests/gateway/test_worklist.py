"""The modality worklist on the DICOM port, asked by dcmtk's `findscu -W` as a modality does."""

from __future__ import annotations

from pathlib import Path

from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian

from yingyun.archive import accept
from yingyun.archive.events import NoEvents
from yingyun.contract import gateway_api as g
from yingyun.contract.params import parse
from yingyun.dicomnet.server import UpperLayerServer
from yingyun.dicomnet.status import Status
from yingyun.gateway.scp import GatewayDicomService

from ..support.dicom_peers import dataset_bytes, make_instance, run_dcmtk

BASE = {"patientSex": "M", "patientBirthday": "1990-03-07", "accessNumber": "", "modality": "CT"}


def register(runtime, hospital: str, study_id: str, **fields: str) -> None:
    body = dict(BASE, patientId=f"P-{study_id}", patientName="张三", studyId=study_id, accessNumber=f"ACC{study_id}",
                **fields)
    with runtime.db.write() as conn:
        accept.accept_study(conn, vault=runtime.vault, hospital_id=hospital, record=parse(g.STUDY_FIELDS, body),
                            source="ris", events=NoEvents())


def worklist(port: int, tmp: Path, *keys: str) -> list:
    """findscu -W with the usual keys a modality asks for, plus `keys`; the answers as datasets."""
    out = tmp / f"rsp-{len(list(tmp.glob('rsp-*')))}"
    out.mkdir()
    asked = ["PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyInstanceUID",
             "RequestedProcedureID", "RequestedProcedureDescription",
             "ScheduledProcedureStepSequence[0].ScheduledProcedureStepID",
             "ScheduledProcedureStepSequence[0].ScheduledProcedureStepDescription"]
    given = {k.split("=")[0] for k in keys}
    args = [arg for k in [*keys, *(a for a in asked if a not in given)] for arg in ("-k", k)]
    for sps_key in ("Modality", "ScheduledStationAETitle", "ScheduledProcedureStepStartDate",
                    "ScheduledProcedureStepStartTime"):
        if f"ScheduledProcedureStepSequence[0].{sps_key}" not in given:
            args += ["-k", f"ScheduledProcedureStepSequence[0].{sps_key}"]
    proc = run_dcmtk("findscu", "-W", "-aet", "MODCT1", "-aec", "YINGYUN", "-X", "-od", str(out), *args,
                     "127.0.0.1", str(port))
    assert proc.returncode == 0, proc.stderr
    return [dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


def test_findscu_reads_the_worklist_of_studies_not_yet_imaged(runtime, tenant, tmp_path) -> None:
    h = tenant["hospital"]
    runtime.tenancy.add_pacs(ae_title="MODCT1", host="127.0.0.1", port=104, hospital_id=h)
    register(runtime, h, "S1", appointDate="2026-12-02 10:30:00", equipment="CTAE1", studyDesc="头颅CT平扫")
    register(runtime, h, "S2", modality="MR", appointDate="2026-12-03 08:00:00", equipment="MRAE1")
    register(runtime, h, "S3", appointDate="2026-12-02 15:00:00", studyUid="1.2.826.0.1.3680043.10.543.3")
    register(runtime, h, "S4", appointDate="2026-12-02 09:00:00")
    with runtime.db.write() as conn:  # cancelled
        accept.accept_delete(conn, vault=runtime.vault, hospital_id=h, source="ris", events=NoEvents(),
                             record=parse(g.DELETE_FIELDS, {"patientId": "P-S4", "studyId": "S4",
                                                            "accessNumber": "ACCS4", "studyUid": "x"}))
    service = GatewayDicomService(db=runtime.db, tenancy=runtime.tenancy, store=runtime.instances)
    server = UpperLayerServer(service, ae_title="YINGYUN", host="127.0.0.1", port=0)
    server.start()
    try:
        everything = worklist(server.port, tmp_path)
        assert sorted(ds.RequestedProcedureID for ds in everything) == ["S1", "S2", "S3"]
        (today_ct,) = worklist(server.port, tmp_path, "ScheduledProcedureStepSequence[0].Modality=CT",
                               "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20261202",
                               "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime=0800-1200")
        assert (str(today_ct.PatientName), today_ct.PatientID, today_ct.AccessionNumber) == ("张三", "P-S1", "ACCS1")
        assert (today_ct.PatientBirthDate, today_ct.PatientSex, today_ct.RequestedProcedureDescription) == (
            "19900307", "M", "头颅CT平扫")
        step = today_ct.ScheduledProcedureStepSequence[0]
        assert (step.Modality, step.ScheduledStationAETitle, step.ScheduledProcedureStepStartDate,
                step.ScheduledProcedureStepStartTime) == ("CT", "CTAE1", "20261202", "103000")
        (mr,) = worklist(server.port, tmp_path, "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=MRAE1")
        assert mr.RequestedProcedureID == "S2"
        (by_name,) = worklist(server.port, tmp_path, "SpecificCharacterSet=ISO_IR 192", "PatientName=张*",
                              "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20261202-",
                              "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime=1400-")
        assert by_name.RequestedProcedureID == "S3"
        # S3's images arrive: it leaves the worklist.
        make_instance(tmp_path / "s3.dcm", study_uid="1.2.826.0.1.3680043.10.543.3")
        result = runtime.instances.store(hospital_id=h, data=dataset_bytes(tmp_path / "s3.dcm"),
                                         transfer_syntax_uid=ExplicitVRLittleEndian)
        assert result.status == Status.SUCCESS, result
        assert sorted(ds.RequestedProcedureID for ds in worklist(server.port, tmp_path)) == ["S1", "S2"]
    finally:
        server.shutdown()
