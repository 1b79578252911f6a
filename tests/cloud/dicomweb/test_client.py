"""dicomweb-client (PyPI), as an outside tool would use it, over loopback."""

from __future__ import annotations

import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from requests.exceptions import HTTPError

from .conftest import make, uid


@pytest.fixture
def client(archive):
    c = DICOMwebClient(archive.dw, headers=archive.bearer("ops-h1"))
    yield c
    c._session.close()


def test_store_search_retrieve(archive, client, tmp_path):
    from ...support.dicom_data import StudySpec

    spec = StudySpec(accession="DWC1", patient_id="PDWC", patient_name="Client^Test=客^户", study_date="20261123")
    series_uid = uid()
    paths = [make(tmp_path / f"{k}.dcm", spec, series_uid=series_uid, number=k + 1) for k in range(3)]
    sent = [pydicom.dcmread(p) for p in paths]
    result = client.store_instances(sent)
    assert len(result.ReferencedSOPSequence) == 3 and "FailedSOPSequence" not in result

    found = client.search_for_studies(search_filters={"PatientName": "客*", "StudyDate": "20261101-20261130"})
    assert [f["0020000D"]["Value"][0] for f in found] == [spec.study_uid]
    assert client.search_for_studies(search_filters={"PatientID": "PDWC"}, fields=["PatientSex"])[0]["00100040"]
    assert len(client.search_for_series(spec.study_uid)) == 1
    insts = client.search_for_instances(spec.study_uid, series_uid)
    assert sorted(i["00200013"]["Value"][0] for i in insts) == [1, 2, 3]
    assert len(client.search_for_studies(limit=1, offset=0)) == 1

    study = client.retrieve_study(spec.study_uid)
    assert sorted(str(d.SOPInstanceUID) for d in study) == sorted(str(d.SOPInstanceUID) for d in sent)
    got = client.retrieve_instance(spec.study_uid, series_uid, str(sent[0].SOPInstanceUID))
    assert got.PatientName == "Client^Test=客^户"
    assert got == sent[0]  # every element, same values (the file meta is the archive's own)
    assert got.PixelData == sent[0].PixelData

    meta = client.retrieve_series_metadata(spec.study_uid, series_uid)
    assert len(meta) == 3 and all("BulkDataURI" in m["7FE00010"] for m in meta)
    frames = client.retrieve_instance_frames(spec.study_uid, series_uid, str(sent[0].SOPInstanceUID), [1])
    assert frames == [sent[0].PixelData]
    jpeg = client.retrieve_instance_rendered(spec.study_uid, series_uid, str(sent[0].SOPInstanceUID),
                                             media_types=("image/jpeg",))
    assert jpeg[:2] == b"\xff\xd8"
    framejpeg = client.retrieve_instance_frames_rendered(spec.study_uid, series_uid, str(sent[0].SOPInstanceUID),
                                                         [1], media_types=("image/png",), params={"window": "40,400"})
    assert framejpeg[:4] == b"\x89PNG"
    bulk = client.retrieve_bulkdata(meta[0]["7FE00010"]["BulkDataURI"])
    assert bytes(bulk[0]) in {bytes(d.PixelData) for d in sent}


def test_refused_without_credentials(archive):
    anonymous = DICOMwebClient(archive.dw)
    try:
        with pytest.raises(HTTPError) as exc:
            anonymous.search_for_studies()
        assert exc.value.response.status_code == 401
    finally:
        anonymous._session.close()


def test_other_hospitals_are_not_there(archive, client):
    with pytest.raises(HTTPError) as exc:
        client.retrieve_study(archive.studies["li"].study_uid)
    assert exc.value.response.status_code == 404
    assert client.search_for_studies(search_filters={"PatientID": "PID3"}) == []
