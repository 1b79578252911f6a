"""DICOMweb retrievals land in the access trail beside the patient pages' views (issue 16, item 5)."""

from __future__ import annotations

import time

import httpx
import pydicom

from yingyun.cloud.dicomweb.router import retrieval_kind
from yingyun.cloud.patient import audit as audit_mod

MP_DICOM = 'multipart/related; type="application/dicom"'


def trail(archive, study_uid: str, n: int) -> list[dict]:
    """The study's audit rows once `n` are written (the trail is written in the background)."""
    deadline = time.monotonic() + 20
    while True:
        with archive.runtime.db.read() as conn:
            rows = [r for r in audit_mod.query(conn, study_uid=study_uid) if r["linkKind"] == "dicomweb"]
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_wado_retrievals_are_audited(archive):
    spec = archive.studies["zhang"]
    st = spec.study_uid
    ds = pydicom.dcmread(archive.files["zhang"][0])
    se, sop = str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)
    assert archive.get(f"/studies/{st}", headers={"Accept": MP_DICOM}).status_code == 200
    assert archive.get(f"/studies/{st}/metadata", who="ops-h1").status_code == 200
    assert archive.get(f"/studies/{st}/series/{se}/instances/{sop}/frames/1/rendered",
                       headers={"Accept": "image/jpeg"}).status_code == 200
    assert archive.get(f"/studies/{st}/thumbnail", headers={"Accept": "image/jpeg"}).status_code == 200
    # A partner's retrieval names the partner.
    r = httpx.get(f"{archive.dw}/studies/{st}/series/{se}", headers={**archive.signed("ris-h1"), "Accept": MP_DICOM},
                  timeout=30)
    assert r.status_code == 200
    # Refused (outside the token's hospitals): nothing was retrieved, nothing recorded.
    assert archive.get(f"/studies/{st}/metadata", who="ops-h2h3").status_code == 404
    rows = trail(archive, st, 5)
    got = [(r["access"], r["hospitalId"], r["detail"]) for r in rows]
    assert got == [
        ("dicomweb-retrieve", "h1", "token:ops-all instances=6"),
        ("dicomweb-metadata", "h1", "token:ops-h1 instances=6"),
        ("dicomweb-rendered", "h1", "token:ops-all instances=1"),
        ("dicomweb-thumbnail", "h1", "token:ops-all instances=6"),
        ("dicomweb-retrieve", "h1", "partner:ris-h1 instances=3"),
    ], got
    # Like a page view: when and from where, in `yingyun admin audit`'s rows; no patient identity.
    assert all(r["client"] and r["at"] for r in rows)
    assert not any("Zhang" in (r["detail"] or "") or "张" in (r["detail"] or "") for r in rows)
    # QIDO searches are not retrievals.
    assert archive.get("/studies", params={"PatientID": spec.patient_id}).status_code == 200
    assert len(trail(archive, st, 6)) == 5


def test_retrieval_kinds():
    st = "/dicomweb/studies/1.2"
    assert retrieval_kind(st) == "retrieve"
    assert retrieval_kind(st + "/series/3/instances/4") == "retrieve"
    assert retrieval_kind(st + "/metadata") == "metadata"
    assert retrieval_kind(st + "/series/3/instances/4/frames/1,2") == "frames"
    assert retrieval_kind(st + "/series/3/instances/4/bulkdata/7FE00010") == "bulkdata"
    assert retrieval_kind(st + "/series/3/instances/4/frames/1/rendered") == "rendered"
    assert retrieval_kind(st + "/rendered") == "rendered" and retrieval_kind(st + "/thumbnail") == "thumbnail"
