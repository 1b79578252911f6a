"""STOW-RS: stored through the ingest path, per-instance outcomes, hospital choice."""

from __future__ import annotations

import os

import httpx
import pydicom

from yingyun.core.dicom import read_file_info

from .conftest import make, uid
from .test_wado import split_multipart

J = "application/dicom+json"
FAILED, REFERENCED, RETRIEVE_URL, FAILURE_REASON = "00081198", "00081199", "00081190", "00081197"


def multipart(parts: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = "b" + os.urandom(8).hex()
    body = b"".join(f"--{boundary}\r\nContent-Type: {ct}\r\n\r\n".encode() + data + b"\r\n" for ct, data in parts)
    return body + f"--{boundary}--\r\n".encode(), f'multipart/related; type="application/dicom"; boundary={boundary}'


def stow(archive, parts, *, who="ops-h1", path="/studies", params=None, headers=None) -> httpx.Response:
    body, ctype = multipart(parts)
    h = {**(archive.signed(who) if who in archive.partners else archive.bearer(who)), "Content-Type": ctype,
         "Accept": J, **(headers or {})}
    return httpx.post(archive.dw + path, content=body, headers=h, params=params, timeout=60)


def new_files(tmp_path, n=2, **spec_kw):
    from ...support.dicom_data import StudySpec

    spec = StudySpec(accession="STOW" + os.urandom(3).hex(), patient_id="PSTOW", patient_name="Stow^Test=司^透",
                     **spec_kw)
    series_uid = uid()
    return spec, [make(tmp_path / f"i{k}.dcm", spec, series_uid=series_uid, number=k + 1) for k in range(n)]


def test_store_find_retrieve(archive, tmp_path):
    spec, files = new_files(tmp_path)
    r = stow(archive, [("application/dicom", f.read_bytes()) for f in files])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(J)
    body = r.json()
    assert body[RETRIEVE_URL]["Value"] == [f"{archive.dw}/studies/{spec.study_uid}"]
    assert FAILED not in body
    refs = body[REFERENCED]["Value"]
    assert [x["00081155"]["Value"][0] for x in refs] == [str(pydicom.dcmread(f).SOPInstanceUID) for f in files]
    assert all(x["00081150"]["Value"] == ["1.2.840.10008.5.1.4.1.1.2"] for x in refs)
    found = archive.get("/studies", "ops-h1", params={"StudyInstanceUID": spec.study_uid}).json()
    assert found[0]["00201208"]["Value"] == [2]
    # what comes back is what was sent (after our file meta), byte for byte
    url = refs[0]["00081190"]["Value"][0]
    got = httpx.get(url, headers={**archive.bearer("ops-h1"), "Accept": 'multipart/related; type="application/dicom"'})
    sent = files[0].read_bytes()
    assert split_multipart(got)[0][1].endswith(sent[read_file_info(sent).dataset_offset:])
    # a re-send is a success and stores nothing twice
    again = stow(archive, [("application/dicom", files[0].read_bytes())])
    assert again.status_code == 200
    found = archive.get("/studies", "ops-h1", params={"StudyInstanceUID": spec.study_uid}).json()
    assert found[0]["00201208"]["Value"] == [2]


def test_store_into_named_study(archive, tmp_path):
    spec, files = new_files(tmp_path, 1)
    r = stow(archive, [("application/dicom", files[0].read_bytes())], path=f"/studies/{spec.study_uid}")
    assert r.status_code == 200
    other, more = new_files(tmp_path / "o", 1)
    r = stow(archive, [("application/dicom", more[0].read_bytes())], path=f"/studies/{spec.study_uid}")
    assert r.status_code == 409
    [failed] = r.json()[FAILED]["Value"]
    assert failed[FAILURE_REASON]["Value"] == [0xA900]
    assert failed["00081155"]["Value"] == [str(pydicom.dcmread(more[0]).SOPInstanceUID)]
    assert archive.get("/studies", "ops-h1", params={"StudyInstanceUID": other.study_uid}).json() == []


def test_partial_failure_is_202(archive, tmp_path):
    spec, files = new_files(tmp_path, 1)
    r = stow(archive, [("application/dicom", files[0].read_bytes()), ("application/dicom", b"not dicom at all")])
    assert r.status_code == 202
    body = r.json()
    assert len(body[REFERENCED]["Value"]) == 1
    [failed] = body[FAILED]["Value"]
    assert failed[FAILURE_REASON]["Value"] == [0xC000]
    assert "part 2" in r.headers["Warning"]
    r = stow(archive, [("application/dicom", b"junk"), ("application/dicom", b"\0" * 200)])
    assert r.status_code == 409 and len(r.json()[FAILED]["Value"]) == 2


def test_hospital_choice(archive, tmp_path):
    spec, files = new_files(tmp_path, 1)
    data = files[0].read_bytes()
    r = stow(archive, [("application/dicom", data)], who="ops-all")
    assert r.status_code == 400 and "hospitalId" in r.json()["detail"]
    r = stow(archive, [("application/dicom", data)], who="union-u1")  # a partner granted h1 and h2
    assert r.status_code == 400
    r = stow(archive, [("application/dicom", data)], who="ops-h1", params={"hospitalId": "h2"})
    assert r.status_code == 403
    r = stow(archive, [("application/dicom", data)], who="ops-all", params={"hospitalId": "h9"})
    assert r.status_code == 404
    r = stow(archive, [("application/dicom", data)], who="union-u1", params={"hospitalId": "h2"})
    assert r.status_code == 200, r.text
    assert archive.get("/studies", "ops-h2h3", params={"StudyInstanceUID": spec.study_uid}).json()
    assert archive.get("/studies", "ops-h1", params={"StudyInstanceUID": spec.study_uid}).json() == []
    _, files2 = new_files(tmp_path / "p", 1)
    r = stow(archive, [("application/dicom", files2[0].read_bytes())], who="ris-h1")  # one hospital: no need to name it
    assert r.status_code == 200


def test_malformed_requests(archive, tmp_path):
    h = {**archive.bearer("ops-h1")}
    r = httpx.post(archive.dw + "/studies", content=b"{}", headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 415
    r = httpx.post(archive.dw + "/studies", content=b"x",
                   headers={**h, "Content-Type": 'multipart/related; type="application/dicom+json"; boundary=x'})
    assert r.status_code == 415
    r = httpx.post(archive.dw + "/studies", content=b"x", headers={**h, "Content-Type": "multipart/related"})
    assert r.status_code == 400
    r = httpx.post(archive.dw + "/studies", content=b"--x--\r\n",
                   headers={**h, "Content-Type": "multipart/related; boundary=x"})
    assert r.status_code == 400
    _, files = new_files(tmp_path, 1)
    r = stow(archive, [("application/pdf", b"%PDF-1.4"), ("application/dicom", files[0].read_bytes())])
    assert r.status_code == 202 and "application/pdf" in r.headers["Warning"]
    r = stow(archive, [("application/dicom", files[0].read_bytes())], headers={"Accept": "application/dicom+xml"})
    assert r.status_code == 406
    r = httpx.post(archive.dw + "/studies", content=b"x", headers={"Content-Type": "multipart/related; boundary=x"})
    assert r.status_code == 401


def test_a_body_that_ends_inside_a_part_stores_nothing(archive, tmp_path):
    """A STOW cut short (the last part has no closing boundary) is refused whole: the parts
    before it are not stored either, so the sender sees the failure and sends again."""
    spec, files = new_files(tmp_path, 2)
    body, ctype = multipart([("application/dicom", f.read_bytes()) for f in files])
    cut = body[:-len("--\r\n") - 40]  # inside the second part
    r = httpx.post(archive.dw + "/studies", content=cut, timeout=60,
                   headers={**archive.bearer("ops-h1"), "Content-Type": ctype, "Accept": J})
    assert r.status_code == 400 and "closing boundary" in r.json()["detail"]
    assert archive.get("/studies", "ops-h1", params={"StudyInstanceUID": spec.study_uid}).json() == []


def test_a_disabled_hospital_takes_no_instances(archive, tmp_path):
    spec, files = new_files(tmp_path, 1)
    parts = [("application/dicom", files[0].read_bytes())]
    tenancy = archive.runtime.tenancy
    tenancy.set_hospital_enabled(hospital_id="h2", enabled=False)
    try:
        r = stow(archive, parts, who="union-u1", params={"hospitalId": "h2"})
        assert r.status_code == 403 and r.json()["detail"] == "hospital h2 is disabled: it takes no new instances"
        assert archive.get("/studies", "ops-h2h3", params={"StudyInstanceUID": spec.study_uid}).json() == []
    finally:
        tenancy.set_hospital_enabled(hospital_id="h2", enabled=True)
    assert stow(archive, parts, who="union-u1", params={"hospitalId": "h2"}).status_code == 200
