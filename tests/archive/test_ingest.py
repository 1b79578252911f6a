"""C-STORE into the archive: counts, linking, re-sends, refusals (real dcmtk peers)."""

from __future__ import annotations

import subprocess
import tracemalloc

import httpx
import pytest
from pydicom import dcmread
from pynetdicom import AE
from sqlalchemy import select

from yingyun.archive.listing import list_studies
from yingyun.archive.stability import StabilityMonitor
from yingyun.cloud.dicomweb import TokenRegistry
from yingyun.storage import schema as s

from ..support.dicom_data import StudySpec, dataset_sha256, make, make_study, uid, write_large
from ..support.dicom_peers import dataset_bytes
from .conftest import storescu


def studies(runtime):
    with runtime.db.read() as conn:
        return list_studies(conn)


def test_echo_and_access_control(receiver):
    ok = subprocess.run(["/usr/bin/echoscu", "-aet", "PACS1", "-aec", "YINGYUN", "127.0.0.1", str(receiver.port)],
                        capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    for calling, called in (("STRANGER", "YINGYUN"), ("PACS1", "NOTUS")):
        bad = subprocess.run(["/usr/bin/echoscu", "-aet", calling, "-aec", called, "127.0.0.1", str(receiver.port)],
                             capture_output=True, text=True, timeout=30)
        assert bad.returncode != 0 and "Rejected" in (bad.stdout + bad.stderr)


def test_store_counts_and_bytes(receiver, runtime, tmp_path, settings):
    spec = StudySpec()
    files = make_study(tmp_path / "in", spec, series=2, per_series=3, sr=1, pdf=1)
    r = storescu(receiver.port, *files)
    assert r.returncode == 0, r.stderr
    (row,) = studies(runtime)
    assert row["studyId"] == "" and row["studyUid"] == spec.study_uid
    assert row["received"] == {"series": 4, "images": 6, "sr": 1, "pdf": 1, "reports": 0}
    assert row["patientName"] == "张三丰"
    with runtime.db.read() as conn:
        inst = conn.execute(select(s.instances)).all()
    assert len(inst) == 8
    by_uid = {dcmread(f).SOPInstanceUID: f for f in files}
    for i in inst:
        stored = settings.blob_dir / i.blob_key
        assert dataset_bytes(stored) == dataset_bytes(by_uid[i.sop_uid])  # as received, byte for byte
        assert dcmread(stored).file_meta.SourceApplicationEntityTitle == "PACS1"
    # a re-send creates nothing new
    assert storescu(receiver.port, *files).returncode == 0
    assert studies(runtime)[0]["received"]["images"] == 6
    with runtime.db.read() as conn:
        assert len(conn.execute(select(s.instances)).all()) == 8


def test_changed_resend_replaces_and_keeps_superseded(receiver, runtime, tmp_path, settings):
    spec = StudySpec()
    series_uid, sop = uid(), uid()
    first = make(tmp_path / "a.dcm", spec, series_uid=series_uid, sop_uid=sop, seed=1)
    second = make(tmp_path / "b.dcm", spec, series_uid=series_uid, sop_uid=sop, seed=2)
    assert storescu(receiver.port, first).returncode == 0
    assert storescu(receiver.port, second).returncode == 0
    with runtime.db.read() as conn:
        (inst,) = conn.execute(select(s.instances)).all()
        (old,) = conn.execute(select(s.superseded_instances)).all()
    assert inst.version == 2 and old.version == 1
    assert dataset_bytes(settings.blob_dir / inst.blob_key) == dataset_bytes(second)
    assert dataset_bytes(settings.blob_dir / old.blob_key) == dataset_bytes(first)
    assert studies(runtime)[0]["received"]["images"] == 1


@pytest.mark.parametrize("order", ["ris-first", "images-first"])
@pytest.mark.parametrize("by", ["uid", "accession"])
def test_linking_in_both_orders(receiver, runtime, ris, tmp_path, order, by):
    spec = StudySpec(accession="ACC-LINK")
    body = {"patientId": "P1", "patientName": "张三丰", "patientSex": "M", "studyId": "S-LINK",
            "accessNumber": "ACC-LINK", "modality": "CT"}
    if by == "uid":
        body["studyUid"] = spec.study_uid
    files = make_study(tmp_path, spec, series=1, per_series=2)
    if order == "ris-first":
        assert ris.post("/ris/study/add", body)["code"] == 0
        assert storescu(receiver.port, *files).returncode == 0
    else:
        assert storescu(receiver.port, *files).returncode == 0
        assert ris.post("/ris/study/add", body)["code"] == 0
    rows = studies(runtime)
    assert len(rows) == 1, rows
    assert rows[0]["studyId"] == "S-LINK" and rows[0]["studyUid"] == spec.study_uid
    assert rows[0]["received"]["images"] == 2


@pytest.mark.parametrize("charset,name,expected", [
    ("GB18030", "张^三丰", "张三丰"),
    ("GBK", "王^小東", "王小東"),
    ("ISO_IR 192", "Li^Si=李^四", "李四"),
])
def test_chinese_names_decoded(receiver, runtime, tmp_path, charset, name, expected):
    spec = StudySpec(charset=charset, patient_name=name)
    f = make(tmp_path / "c.dcm", spec, series_uid=uid())
    assert storescu(receiver.port, f).returncode == 0
    assert studies(runtime)[0]["patientName"] == expected


def _pynetdicom_store(port: int, ds, *, calling="PACS1"):
    """The C-STORE-RSP status elements as pynetdicom decoded them (Status, ErrorComment...)."""
    ae = AE(ae_title=calling)
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title="YINGYUN")
    assert assoc.is_established
    try:
        return assoc.send_c_store(ds)
    finally:
        assoc.release()


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI", "ignore:The value length")
@pytest.mark.parametrize("bad_uid,reason", [
    ("", "missing"), ("../../etc/passwd", "malformed"), ("1.2/3", "malformed"), ("1.2\\3", "malformed"),
    ("1..2", "malformed"), ("1.2\x01", "malformed"), ("1." + "2" * 63, "malformed"),
])
def test_hostile_uids_are_refused(receiver, runtime, tmp_path, settings, bad_uid, reason):
    f = make(tmp_path / "h.dcm", StudySpec(), series_uid=uid())
    ds = dcmread(f)
    ds.StudyInstanceUID = bad_uid
    rsp = _pynetdicom_store(receiver.port, ds)
    assert rsp.Status == 0xC210 and rsp.ErrorComment == f"{reason} Study Instance UID"
    assert studies(runtime) == []
    assert not any(p.is_file() for p in settings.blob_dir.rglob("*")) if settings.blob_dir.exists() else True


HEX_UID = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_non_conformant_uids_are_stored_and_served_exactly_as_sent(receiver, runtime, app_server, tmp_path):
    # What real equipment sends (Orthanc stores both): UIDs that are 64-character hex hashes,
    # and components with leading zeros.
    spec = StudySpec(study_uid="1.2.840.0113654.2.70.1.0099")
    series, sops = HEX_UID[::-1], [HEX_UID, "1.2.03.4.005"]
    files = [make(tmp_path / f"{i}.dcm", spec, series_uid=series, sop_uid=sop, number=i + 1)
             for i, sop in enumerate(sops)]
    r = storescu(receiver.port, *files)
    assert r.returncode == 0 and "E:" not in r.stdout + r.stderr, r.stdout + r.stderr
    with runtime.db.read() as conn:
        rows = {i.sop_uid: i for i in conn.execute(select(s.instances))}
    assert set(rows) == set(sops)
    for row in rows.values():
        assert (row.study_uid, row.series_uid) == (spec.study_uid, series)
        # no UID is a path of its own in the blob store
        assert not {spec.study_uid, series, *sops} & set(row.blob_key.replace(".dcm", "").split("/"))

    token = TokenRegistry(runtime.db).add(name="ops", all_hospitals=True)
    auth = {"Authorization": f"Bearer {token}"}
    found = httpx.get(f"{app_server.url}/dicomweb/studies/{spec.study_uid}/series/{series}/instances",
                      headers=auth, timeout=30)
    assert found.status_code == 200
    assert sorted(i["00080018"]["Value"][0] for i in found.json()) == sorted(sops)
    for i, sop in enumerate(sops):
        url = next(i["00081190"]["Value"][0] for i in found.json() if i["00080018"]["Value"][0] == sop)
        got = httpx.get(url, headers={**auth, "Accept": "application/dicom"}, timeout=30)
        assert got.status_code == 200
        (tmp_path / "got.dcm").write_bytes(got.content)
        assert dataset_sha256(tmp_path / "got.dcm") == dataset_sha256(files[i])
        assert dcmread(tmp_path / "got.dcm").file_meta.MediaStorageSOPInstanceUID == sop


@pytest.mark.parametrize("missing,comment", [
    ("SeriesInstanceUID", "missing Series Instance UID"),
    ("PixelData", None),  # stored: a dataset needs no pixels
])
def test_refusals_tell_the_sender_why_in_the_error_comment(receiver, runtime, tmp_path, missing, comment):
    spec = StudySpec(patient_id="PID-SECRET-7", patient_name="Secret^Patient")
    ds = dcmread(make(tmp_path / "r.dcm", spec, series_uid=uid()))
    delattr(ds, missing)
    rsp = _pynetdicom_store(receiver.port, ds)
    if comment is None:
        assert rsp.Status == 0x0000 and "ErrorComment" not in rsp
        return
    assert rsp.Status == 0xC210
    assert rsp.ErrorComment == comment  # what the log says, and no patient data
    assert "SECRET" not in rsp.ErrorComment.upper() and studies(runtime) == []


def test_disk_guard_refuses_with_a700(runtime, pacs, tmp_path):
    from yingyun.gateway.receiver import build_receiver

    runtime.settings.min_free_bytes = 10**18  # more than any disk
    server = build_receiver(runtime, port=0)
    server.start()
    try:
        f = make(tmp_path / "d.dcm", StudySpec(), series_uid=uid())
        rsp = _pynetdicom_store(server.port, dcmread(f))
        assert rsp.Status == 0xA700 and rsp.ErrorComment == "storage is nearly full"
    finally:
        server.shutdown()
    assert studies(runtime) == []


def test_stable_then_unstable_then_stable(receiver, runtime, tmp_path):
    spec = StudySpec()
    series_uid = uid()
    assert storescu(receiver.port, make(tmp_path / "1.dcm", spec, series_uid=series_uid)).returncode == 0
    monitor = StabilityMonitor(runtime.db, stable_seconds=0.3)
    assert monitor.run_once() == 0  # too soon
    import time

    time.sleep(0.4)
    assert monitor.run_once() == 1
    with runtime.db.read() as conn:
        d = conn.execute(select(s.dicom_studies)).one()
    assert d.stable and d.stable_generation == 1
    assert storescu(receiver.port, make(tmp_path / "2.dcm", spec, series_uid=series_uid, number=2)).returncode == 0
    with runtime.db.read() as conn:
        assert conn.execute(select(s.dicom_studies.c.stable)).scalar() is False
    time.sleep(0.4)
    assert monitor.run_once() == 1
    with runtime.db.read() as conn:
        d = conn.execute(select(s.dicom_studies)).one()
    assert d.stable and d.stable_generation == 2


def _odd_length_image(path) -> bytes:
    """A complete 3 x 3 8-bit image of odd total length: pydicom pads the
    9-byte pixel data to 10, so the padding is taken off again by hand."""
    from pydicom.dataset import Dataset, FileMetaDataset

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = uid()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uid(), uid()
    ds.PatientID, ds.Modality = "ODD1", "OT"
    ds.Rows = ds.Columns = 3
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = bytes(range(9))
    ds.save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    # ... (7FE0,0010) OB, 2 reserved bytes, 4-byte length 10, 9 pixels + the pad byte
    assert data[-22:-10] == b"\xe0\x7f\x10\x00OB\x00\x00\x0a\x00\x00\x00" and data.endswith(b"\x08\x00")
    data = data[:-14] + (9).to_bytes(4, "little") + data[-10:-1]
    assert len(data) % 2
    path.write_bytes(data)
    return data


def test_receiver_and_importer_agree_on_truncated_and_odd_length_datasets(receiver, runtime, tmp_path, monkeypatch):
    import io

    import pynetdicom

    from yingyun.archive.importer import run_import

    whole = make(tmp_path / "whole.dcm", StudySpec(), series_uid=uid())
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(whole.read_bytes()[:-1])  # the pixel data's last byte missing: odd length
    odd = tmp_path / "odd.dcm"
    _odd_length_image(odd)

    def send_as_is(path) -> int:  # pynetdicom's chunked mode sends the file's dataset bytes unchanged
        ds = dcmread(path, stop_before_pixels=True)
        monkeypatch.setattr(pynetdicom._config, "STORE_SEND_CHUNKED_DATASET", True)
        try:
            ae = AE(ae_title="PACS1")
            ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
            assoc = ae.associate("127.0.0.1", receiver.port, ae_title="YINGYUN")
            try:
                return assoc.send_c_store(path).Status
            finally:
                assoc.release()
        finally:
            monkeypatch.setattr(pynetdicom._config, "STORE_SEND_CHUNKED_DATASET", False)

    # The cut file: refused by C-STORE as sent, by C-STORE as a pydicom-based
    # sender re-encodes it (the short value written back whole, odd length),
    # and by the importer.
    assert send_as_is(cut) == 0xC210
    assert _pynetdicom_store(receiver.port, dcmread(cut)).Status == 0xC210
    summary = run_import(runtime.instances, spool_dir=runtime.settings.spool_dir,
                         hospital_id="h1", paths=[str(cut)], out=io.StringIO())
    assert summary["failed"] == [{"file": str(cut), "reason": "file is truncated"}]
    assert studies(runtime) == []
    # The complete odd-length one: stored by both, the same bytes.
    assert send_as_is(odd) == 0
    summary = run_import(runtime.instances, spool_dir=runtime.settings.spool_dir,
                         hospital_id="h1", paths=[str(odd)], out=io.StringIO())
    assert summary["duplicates"] == 1 and summary["failed"] == []
    assert [s["received"]["images"] for s in studies(runtime)] == [1]


def test_deflate_bomb_is_refused_by_cstore_and_import(receiver, runtime, tmp_path, monkeypatch):
    import io

    import pynetdicom

    from yingyun.archive.importer import run_import

    from ..support.dicom_data import write_deflated

    bomb = write_deflated(tmp_path / "bomb.dcm", StudySpec(), frames=512)  # about 1 MB, inflates to 1 GiB
    ds = dcmread(bomb, stop_before_pixels=True)
    monkeypatch.setattr(pynetdicom._config, "STORE_SEND_CHUNKED_DATASET", True)  # the deflated bytes, as they are
    ae = AE(ae_title="PACS1")
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", receiver.port, ae_title="YINGYUN")
    try:
        assert assoc.send_c_store(bomb).Status == 0xC210
    finally:
        assoc.release()
    summary = run_import(runtime.instances, spool_dir=runtime.settings.spool_dir,
                         hospital_id="h1", paths=[str(bomb)], out=io.StringIO())
    assert summary["failed"] == [{"file": str(bomb), "reason": "deflated dataset inflates more than 200:1"}]
    assert studies(runtime) == []


@pytest.mark.parametrize("size", [20 * 2**20, 300 * 2**20], ids=["20MiB", "300MiB"])
def test_large_instances_are_spooled_then_retrieved_byte_identical(receiver, runtime, app_server, tmp_path, settings,
                                                                   size):
    # A fresh data dir: nothing made the receiver's spool folder before it started.
    spec = StudySpec()
    sent = write_large(tmp_path / "big.dcm", spec, size=size)
    tracemalloc.start()
    try:
        r = storescu(receiver.port, sent)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.returncode == 0 and "E:" not in r.stdout + r.stderr, r.stdout + r.stderr
    # Spooled while it arrived (16 MiB in memory at most), and never read whole afterwards.
    assert peak < 48 * 2**20, f"{peak / 2**20:.0f} MiB allocated while receiving"
    assert list(settings.spool_dir.iterdir()) == []
    with runtime.db.read() as conn:
        inst = conn.execute(select(s.instances)).one()
    assert inst.size > size and studies(runtime)[0]["received"]["images"] == 1

    token = TokenRegistry(runtime.db).add(name="ops", all_hospitals=True)
    url = f"{app_server.url}/dicomweb/studies/{inst.study_uid}/series/{inst.series_uid}/instances/{inst.sop_uid}"
    got = tmp_path / "got.dcm"
    with httpx.stream("GET", url, headers={"Authorization": f"Bearer {token}", "Accept": "application/dicom"},
                      timeout=120) as rsp, open(got, "wb") as f:
        assert rsp.status_code == 200
        for chunk in rsp.iter_bytes(1 << 20):
            f.write(chunk)
    assert got.stat().st_size == inst.size
    assert dataset_sha256(got) == dataset_sha256(sent)
