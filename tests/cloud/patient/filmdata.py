"""Studies for the cloud-film tests: RIS records through the signed API and
DICOM images through the importer (the same durable path as C-STORE)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from yingyun.archive.importer import run_import

ROOT = "1.2.826.0.1.3680043.10.1404."
PDF_SOP = "1.2.840.10008.5.1.4.1.1.104.1"


def uid() -> str:
    return generate_uid(prefix=ROOT)


def ct_slice(path: Path, *, study_uid: str, series_uid: str, number: int, total: int, size: int = 128,
             series_number: int = 1, description: str = "Axial 5mm", accession: str = "A1") -> Path:
    """A CT slice whose content moves with `number`: a bright disc in soft
    tissue plus a lung-like dark area and a bone-like rim, so windows differ."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c = size / 2
    body = ((yy - c) / (0.45 * size)) ** 2 + ((xx - c) / (0.40 * size)) ** 2 <= 1
    hu = np.full((size, size), -1000.0, dtype=np.float32)
    hu[body] = 40.0
    lung = ((yy - c) / (0.25 * size)) ** 2 + ((xx - c * 0.7) / (0.12 * size)) ** 2 <= 1
    hu[lung] = -800.0
    rim = body & ~(((yy - c) / (0.41 * size)) ** 2 + ((xx - c) / (0.36 * size)) ** 2 <= 1)
    hu[rim] = 900.0
    t = number / max(total, 1)
    cy, cx = c + (t - 0.5) * 0.5 * size, c * 1.2
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= (0.08 * size) ** 2
    hu[disc] = 200.0 + 400.0 * t
    stored = np.clip(hu + 1024.0, 0, 4095).astype(np.uint16)
    meta = FileMetaDataset()
    sop = uid()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.PatientName = "Zhang^Sanfeng=张^三丰"
    ds.PatientID = "P1"
    ds.StudyDate, ds.StudyTime = "20261120", "093000"
    ds.AccessionNumber = accession
    ds.Modality = "CT"
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.InstanceNumber = number
    ds.SliceLocation = float(number) * 5.0
    ds.SliceThickness = 5.0
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.PixelData = stored.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def pdf_report(path: Path, *, study_uid: str, accession: str = "A1") -> Path:
    meta = FileMetaDataset()
    sop = uid()
    meta.MediaStorageSOPClassUID = PDF_SOP
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = PDF_SOP, sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, uid()
    ds.PatientName, ds.PatientID, ds.AccessionNumber = "Zhang^Sanfeng", "P1", accession
    ds.Modality = "DOC"
    ds.SeriesNumber = ds.InstanceNumber = 99
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    ds.save_as(path, enforce_file_format=True)
    return path


@dataclass
class FilmStudy:
    study_id: str
    study_uid: str
    phone: str | None
    id_card: str | None
    series_sizes: list[int]
    token: str = ""
    qr_url: str = ""
    qr_png: bytes = b""
    extra: dict = field(default_factory=dict)


def add_study(ris, runtime, folder: Path, *, study_id: str = "S1", phone: str | None = "13812348000",
              id_card: str | None = "11010519491231002X", series_sizes: tuple[int, ...] = (12, 5), size: int = 128,
              report: bool = True, pdf: bool = False, name: str = "张三丰", qr: bool = True) -> FilmStudy:
    import base64

    study_uid = uid()
    body = {"patientId": "P1", "patientName": name, "patientSex": "M", "studyId": study_id,
            "accessNumber": "A-" + study_id,
            "modality": "CT", "patientAge": "45", "patientAgeUnit": "Y", "bodyPart": "胸部", "studyDesc": "胸部CT平扫",
            "studyDate": "2026-11-20 09:30:00", "studyUid": study_uid, "examDept": "放射科"}
    if phone:
        body["phoneNum"] = phone
    if id_card:
        body["idCardNum"] = id_card
    res = ris.post("/ris/study/add", body)
    assert res["code"] == 0, res
    if report:
        res = ris.post("/ris/report/add", {
            "reportNumber": "R-" + study_id, "studyId": study_id, "accessNumber": "A-" + study_id,
            "imageDescription": "双肺纹理清晰，未见明确实质性病变。", "conclusion": "胸部CT平扫未见明显异常。",
            "reportDoctor": "李医生", "reportTime": "2026-11-20 10:00:00", "auditDoctor": "王主任",
            "auditTime": "2026-11-20 10:30:00"})
        assert res["code"] == 0, res
    paths = []
    for k, n in enumerate(series_sizes):
        series_uid = uid()
        for i in range(n):
            paths.append(ct_slice(folder / study_id / f"s{k}" / f"{i:04d}.dcm", study_uid=study_uid,
                                  series_uid=series_uid,
                                  number=i + 1, total=n, size=size, series_number=k + 1,
                                  description=f"Series {k + 1}", accession="A-" + study_id))
    if pdf:
        paths.append(pdf_report(folder / study_id / "report.dcm", study_uid=study_uid, accession="A-" + study_id))
    if paths:
        summary = run_import(runtime.instances, spool_dir=runtime.settings.spool_dir,
                             hospital_id="h1", paths=[str(p) for p in paths], out=io.StringIO())
        assert summary["stored"] == len(paths), summary
    fs = FilmStudy(study_id, study_uid, phone, id_card, list(series_sizes))
    if qr:
        res = ris.post("/ris/getStudyQR", {"studyId": study_id})
        assert res["code"] == 0, res
        fs.qr_url = res["data"]["qrUrl"]
        fs.qr_png = base64.b64decode(res["data"]["qrImage"])
        fs.token = fs.qr_url.rsplit("/", 1)[1]
    return fs
