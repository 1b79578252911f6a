"""WADO-RS: byte-identical retrieval, transfer syntaxes, metadata, bulk data, frames, rendered."""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import RLELossless

from yingyun.archive.instances import InstanceStore
from yingyun.core.dicom import read_file_info
from yingyun.storage.blobs import LocalBlobStore

from .conftest import make, uid

MP_DICOM = 'multipart/related; type="application/dicom"'


def split_multipart(resp: httpx.Response) -> list[tuple[dict, bytes]]:
    ctype = resp.headers["content-type"]
    boundary = re.search(r'boundary="?([^";]+)"?', ctype).group(1).encode()
    body = resp.content
    parts = []
    for chunk in body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk[2:].partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode().split("\r\n"):
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        parts.append((headers, data[:-2]))  # the CRLF before the next boundary
    return parts


def blob_of(archive, name: str, index: int = 0) -> tuple[bytes, bytes]:
    """(stored file bytes, original dataset bytes) of one test instance."""
    path = archive.files[name][index]
    original = path.read_bytes()
    info = read_file_info(original)
    ds = pydicom.dcmread(path)
    i = archive.runtime
    with i.db.read() as conn:
        key = conn.exec_driver_sql("SELECT blob_key FROM instances WHERE sop_uid = ?" if i.db.is_sqlite
                                   else "SELECT blob_key FROM instances WHERE sop_uid = %s",
                                   (str(ds.SOPInstanceUID),)).scalar_one()
    stored = (i.settings.blob_dir / key).read_bytes()
    return stored, original[info.dataset_offset:]


def ids(archive, name: str, index: int = 0) -> tuple[str, str, str]:
    ds = pydicom.dcmread(archive.files[name][index])
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def test_instance_is_byte_identical(archive):
    st, se, sop = ids(archive, "zhang")
    stored, dataset = blob_of(archive, "zhang")
    r = archive.get(f"/studies/{st}/series/{se}/instances/{sop}", headers={"Accept": MP_DICOM})
    assert r.status_code == 200 and r.headers["content-type"].startswith("multipart/related")
    [(headers, body)] = split_multipart(r)
    assert headers["content-type"] == "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
    assert body == stored
    assert body.endswith(dataset)  # what the modality sent, after our file meta
    # single part when asked for application/dicom
    r = archive.get(f"/studies/{st}/series/{se}/instances/{sop}", headers={"Accept": "application/dicom"})
    assert r.status_code == 200 and r.content == stored


def test_study_and_series_retrieval(archive):
    st, se, _ = ids(archive, "zhang")
    parts = split_multipart(archive.get(f"/studies/{st}", headers={"Accept": MP_DICOM}))
    assert len(parts) == 6
    stored = {blob_of(archive, "zhang", k)[0] for k in range(6)}
    assert {p[1] for p in parts} == stored
    parts = split_multipart(archive.get(f"/studies/{st}/series/{se}"))  # no Accept: the default
    assert len(parts) == 3
    assert archive.get(f"/studies/{st}", headers={"Accept": "application/dicom"}).status_code == 406
    assert archive.get(f"/studies/{st}", headers={"Accept": "image/jpeg"}).status_code == 406


def test_transfer_syntax_negotiation(archive):
    st, se, sop = ids(archive, "zhang")
    url = f"/studies/{st}/series/{se}/instances/{sop}"
    r = archive.get(url, headers={"Accept": MP_DICOM + "; transfer-syntax=1.2.840.10008.1.2"})
    [(headers, body)] = split_multipart(r)
    assert headers["content-type"] == "application/dicom; transfer-syntax=1.2.840.10008.1.2"
    converted = pydicom.dcmread(io.BytesIO(body))
    assert converted.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert converted.PixelData == pydicom.dcmread(archive.files["zhang"][0]).PixelData
    r = archive.get(url, headers={"Accept": MP_DICOM + "; transfer-syntax=*"})
    assert split_multipart(r)[0][1] == blob_of(archive, "zhang")[0]
    r = archive.get(url, headers={"Accept": MP_DICOM + "; transfer-syntax=1.2.840.10008.1.2.4.50"})
    assert r.status_code == 406
    # the best-ranked alternative that can be delivered wins
    r = archive.get(url, headers={"Accept": MP_DICOM + "; transfer-syntax=1.2.840.10008.1.2.4.50, "
                                  + MP_DICOM + "; transfer-syntax=1.2.840.10008.1.2; q=0.5"})
    assert split_multipart(r)[0][0]["content-type"] == "application/dicom; transfer-syntax=1.2.840.10008.1.2"
    r = archive.get(url, headers={"Accept": MP_DICOM + "; transfer-syntax=1.2.840.10008.1.2; q=0.5, "
                                  + MP_DICOM + "; transfer-syntax=1.2.840.10008.1.2.1"})
    assert split_multipart(r)[0][0]["content-type"] == "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"


def test_metadata_with_bulk_data(archive):
    st, se, sop = ids(archive, "zhang")
    r = archive.get(f"/studies/{st}/metadata")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/dicom+json")
    items = r.json()
    assert len(items) == 6
    item = next(x for x in items if x["00080018"]["Value"] == [sop])
    assert item["00100010"]["Value"] == [{"Alphabetic": "Zhang^Sanfeng", "Ideographic": "张^三丰"}]
    assert item["00083002"]["Value"] == ["1.2.840.10008.1.2.1"]
    assert item["00080005"]["Value"] == ["ISO_IR 192"]
    uri = item["7FE00010"]["BulkDataURI"]
    assert uri == f"{archive.dw}/studies/{st}/series/{se}/instances/{sop}/bulkdata/7FE00010"
    assert "Value" not in item["7FE00010"] and "InlineBinary" not in item["7FE00010"]
    bulk = httpx.get(uri, headers=archive.bearer("ops-all"))
    [(headers, body)] = split_multipart(bulk)
    assert headers["content-type"] == "application/octet-stream"
    assert body == pydicom.dcmread(archive.files["zhang"][0]).PixelData
    assert len(archive.get(f"/studies/{st}/series/{se}/metadata").json()) == 3
    assert len(archive.get(f"/studies/{st}/series/{se}/instances/{sop}/metadata").json()) == 1
    assert archive.get(f"/studies/{st}/series/{se}/instances/{sop}/bulkdata/00100010").status_code == 404


def test_frames_native(archive):
    st, se, sop = ids(archive, "zhang")
    pixels = pydicom.dcmread(archive.files["zhang"][0]).PixelData
    base = f"/studies/{st}/series/{se}/instances/{sop}/frames"
    r = archive.get(f"{base}/1", headers={"Accept": 'multipart/related; type="application/octet-stream"'})
    [(headers, body)] = split_multipart(r)
    assert headers["content-type"] == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    assert body == pixels
    r = archive.get(f"{base}/1",
                    headers={"Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*"})
    assert split_multipart(r)[0][1] == pixels
    assert archive.get(f"{base}/2").status_code == 404
    assert archive.get(f"{base}/0").status_code == 400
    assert archive.get(f"{base}/x").status_code == 400
    assert archive.get(f"{base}/1", headers={"Accept": 'multipart/related; type="image/jpeg"'}).status_code == 406


@pytest.fixture(scope="module")
def special(archive, tmp_path_factory):
    """A 3-frame native instance and an RLE-compressed one, in h1."""
    folder = tmp_path_factory.mktemp("special")
    spec = archive.studies["zhang"].__class__(accession="ACC9", patient_id="PID9", patient_name="Multi^Frame")
    path = make(folder / "mf.dcm", spec, series_uid=uid(), rows=8, cols=8)
    ds = pydicom.dcmread(path)
    frames = np.stack([np.full((8, 8), v, dtype=np.int16) for v in (100, 200, 300)])
    ds.NumberOfFrames = 3
    ds.PixelData = frames.tobytes()
    ds.save_as(path, enforce_file_format=True)
    rle_path = make(folder / "rle.dcm", spec, series_uid=uid(), rows=16, cols=16, seed=5)
    rle = pydicom.dcmread(rle_path)
    original_pixels = rle.PixelData
    rle.compress(RLELossless)
    rle.save_as(rle_path, enforce_file_format=True)
    for p in (path, rle_path):
        data = p.read_bytes()
        info = read_file_info(data)
        assert archive.runtime.instances.store(hospital_id="h1", data=memoryview(data)[info.dataset_offset:],
                                               transfer_syntax_uid=info.transfer_syntax_uid).outcome in ("stored",
                                                                                                         "duplicate")
    mf = pydicom.dcmread(path)
    rl = pydicom.dcmread(rle_path)
    return {"mf": (str(mf.StudyInstanceUID), str(mf.SeriesInstanceUID), str(mf.SOPInstanceUID), frames),
            "rle": (str(rl.StudyInstanceUID), str(rl.SeriesInstanceUID), str(rl.SOPInstanceUID), original_pixels)}


def test_multiframe(archive, special):
    st, se, sop, frames = special["mf"]
    r = archive.get(f"/studies/{st}/series/{se}/instances/{sop}/frames/3,1")
    parts = split_multipart(r)
    assert [p[1] for p in parts] == [frames[2].tobytes(), frames[0].tobytes()]
    assert archive.get(f"/studies/{st}/series/{se}/instances/{sop}/frames/4").status_code == 404


def test_frame_lists_are_deduplicated_and_capped(archive, special):
    st, se, sop, frames = special["mf"]
    base = f"/studies/{st}/series/{se}/instances/{sop}/frames"
    # a 10 KB URL of repeats: each frame once, in the order first asked
    r = archive.get(f"{base}/" + ",".join(["2", "1", "2"] * 1700))
    assert r.status_code == 200
    assert [p[1] for p in split_multipart(r)] == [frames[1].tobytes(), frames[0].tobytes()]
    r = archive.get(f"{base}/" + ",".join(str(n) for n in range(1, 1026)))
    assert r.status_code == 400 and "at most 1024 frames" in r.json()["detail"]
    for bad in ("1,+2", "1,٢", "1_0", "0,1", "-1"):
        assert archive.get(f"{base}/{bad}").status_code == 400, bad
    assert archive.get(f"{base}/99999999999999999999").status_code == 404
    img = archive.get(f"/studies/{st}/series/{se}/instances/{sop}/frames/2/rendered", params={"accept": "image/png"})
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    [inst] = archive.get(f"/studies/{st}/series/{se}/instances").json()
    assert inst["00280008"]["Value"] == [3]


def test_compressed_frames(archive, special):
    st, se, sop, pixels = special["rle"]
    base = f"/studies/{st}/series/{se}/instances/{sop}"
    # as stored: the RLE frame, labelled with its transfer syntax
    r = archive.get(f"{base}/frames/1",
                    headers={"Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*"})
    [(headers, body)] = split_multipart(r)
    assert headers["content-type"] == f"application/octet-stream; transfer-syntax={RLELossless}"
    assert body != pixels
    r = archive.get(f"{base}/frames/1", headers={"Accept": 'multipart/related; type="image/dicom-rle"'})
    assert split_multipart(r)[0] == ({"content-type": f"image/dicom-rle; transfer-syntax={RLELossless}"}, body)
    # decoded on request: exactly the original pixels
    r = archive.get(f"{base}/frames/1", headers={"Accept": 'multipart/related; type="application/octet-stream"'})
    assert split_multipart(r)[0][1] == pixels
    # the instance itself, decompressed to Explicit VR Little Endian
    r = archive.get(base, headers={"Accept": MP_DICOM + "; transfer-syntax=1.2.840.10008.1.2.1"})
    ds = pydicom.dcmread(io.BytesIO(split_multipart(r)[0][1]))
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1" and ds.PixelData == pixels
    r = archive.get(base, headers={"Accept": MP_DICOM})
    assert pydicom.dcmread(io.BytesIO(split_multipart(r)[0][1])).file_meta.TransferSyntaxUID == RLELossless


def test_rendered(archive):
    st, se, sop = ids(archive, "zhang")
    base = f"/studies/{st}/series/{se}/instances/{sop}"
    r = archive.get(f"{base}/rendered")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
    assert Image.open(io.BytesIO(r.content)).size == (16, 16)
    png = archive.get(f"{base}/rendered", headers={"Accept": "image/png"})
    assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    assert archive.get(f"{base}/rendered", params={"accept": "image/png"}).content == png.content
    windowed = archive.get(f"{base}/rendered", params={"window": "40,400", "accept": "image/png"})
    assert windowed.status_code == 200 and windowed.content != png.content
    linear = archive.get(f"{base}/rendered", params={"window": "40,400,SIGMOID", "accept": "image/png"})
    assert linear.content != windowed.content
    small = archive.get(f"{base}/rendered", params={"viewport": "8,8"})
    assert Image.open(io.BytesIO(small.content)).size == (8, 8)
    q10 = archive.get(f"{base}/rendered", params={"quality": "10", "viewport": "16,16"})
    q95 = archive.get(f"{base}/rendered", params={"quality": "95", "viewport": "16,16"})
    assert len(q10.content) < len(q95.content)
    assert archive.get(f"{base}/frames/1/rendered").content[:2] == b"\xff\xd8"
    for bad in ({"window": "40"}, {"window": "a,b"}, {"window": "40,0"}, {"viewport": "x,1"}, {"quality": "101"}):
        assert archive.get(f"{base}/rendered", params=bad).status_code == 400, bad
    assert archive.get(f"{base}/rendered", headers={"Accept": "image/gif"}).status_code == 406
    assert archive.get(f"{base}/frames/2/rendered").status_code == 404


def test_rendered_study_and_series_and_thumbnails(archive):
    st, se, sop = ids(archive, "zhang")
    parts = split_multipart(archive.get(f"/studies/{st}/rendered"))
    assert len(parts) == 6 and all(p[0]["content-type"] == "image/jpeg" and p[1][:2] == b"\xff\xd8" for p in parts)
    assert len(split_multipart(archive.get(f"/studies/{st}/series/{se}/rendered"))) == 3
    for path in (f"/studies/{st}/thumbnail", f"/studies/{st}/series/{se}/thumbnail",
                 f"/studies/{st}/series/{se}/instances/{sop}/thumbnail",
                 f"/studies/{st}/series/{se}/instances/{sop}/frames/1/thumbnail"):
        r = archive.get(path)
        assert r.status_code == 200 and r.content[:2] == b"\xff\xd8", path
    big = archive.get(f"/studies/{st}/thumbnail", params={"viewport": "300,300"})
    assert Image.open(io.BytesIO(big.content)).size == (16, 16)  # never scaled up
    # an SR-only series has nothing to render
    wst = archive.studies["wang"].study_uid
    sr_series = [x for x in archive.get(f"/studies/{wst}/series").json() if x["00080060"]["Value"] == ["SR"]][0]
    assert archive.get(f"/studies/{wst}/series/{sr_series['0020000E']['Value'][0]}/rendered").status_code == 406


def test_scope_and_deleted_on_retrieval(archive):
    st, se, sop = ids(archive, "zhang")
    for path in (f"/studies/{st}", f"/studies/{st}/metadata", f"/studies/{st}/series/{se}/instances/{sop}/frames/1",
                 f"/studies/{st}/rendered", f"/studies/{st}/thumbnail"):
        assert archive.get(path, "ops-h2h3").status_code == 404, path
        assert archive.get(path, "ops-h1").status_code == 200, path
    g, gse, gsop = ids(archive, "gone")
    for path in (f"/studies/{g}", f"/studies/{g}/metadata", f"/studies/{g}/series/{gse}/instances/{gsop}",
                 f"/studies/{g}/series/{gse}/instances/{gsop}/rendered"):
        assert archive.get(path).status_code == 404, path
    assert archive.get(f"/studies/{st}/series/{se}/instances/1.2.3").status_code == 404


# --------------------------------------------------------------------------
# Deflated instances: served in bounded memory; a stored deflate bomb is refused


def _store_as_stored_before(archive, path, monkeypatch) -> tuple[str, str, str]:
    """Store a file with the deflate ratio check off, as ingest did before it
    had one: how a bomb comes to be in an archive that serves it."""
    import yingyun.core.dicom as dicom

    data = path.read_bytes()
    with monkeypatch.context() as m:
        m.setattr(dicom, "MAX_INFLATE_RATIO", 10**9, raising=False)
        info = read_file_info(data)
        store = InstanceStore(archive.runtime.db, LocalBlobStore(archive.runtime.settings.blob_dir))
        try:
            assert store.store(hospital_id="h1", data=memoryview(data)[info.dataset_offset:],
                               transfer_syntax_uid=info.transfer_syntax_uid).outcome == "stored"
        finally:
            store.close()
    return info.study_uid, info.series_uid, info.sop_instance_uid


def test_deflated_instance_is_served_frame_by_frame(archive, tmp_path, monkeypatch):
    from ...support.dicom_data import StudySpec, write_deflated

    path = write_deflated(tmp_path / "d.dcm", StudySpec(patient_name="Deflated^Real"), frames=3, rows=64, cols=64,
                          fill="noise")
    st, se, sop = _store_as_stored_before(archive, path, monkeypatch)
    ref = pydicom.dcmread(path)
    base = f"/studies/{st}/series/{se}/instances/{sop}"
    [meta] = archive.get(f"{base}/metadata").json()
    expected = {k: v for k, v in ref.to_json_dict(1024, lambda e: "uri").items() if k != "7FE00010"}
    assert {k: v for k, v in meta.items() if k not in ("7FE00010", "00083002", "00080005")} == \
        {k: v for k, v in expected.items() if k != "00080005"}
    assert meta["00083002"]["Value"] == ["1.2.840.10008.1.2.1.99"]
    [(_, bulk)] = split_multipart(httpx.get(meta["7FE00010"]["BulkDataURI"], headers=archive.bearer("ops-all")))
    assert bulk == ref.PixelData
    r = archive.get(f"{base}/frames/3,2", headers={"Accept": 'multipart/related; type="application/octet-stream"'})
    assert [p[1] for p in split_multipart(r)] == [ref.pixel_array[2].tobytes(), ref.pixel_array[1].tobytes()]
    png = archive.get(f"{base}/frames/2/rendered", params={"accept": "image/png"})
    assert png.status_code == 200 and np.asarray(Image.open(io.BytesIO(png.content))).shape == (64, 64)
    # As Explicit VR Little Endian: the dataset inflated, bit for bit.
    r = archive.get(base, headers={"Accept": "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"})
    as_explicit = pydicom.dcmread(io.BytesIO(r.content))
    assert as_explicit.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert as_explicit.PixelData == ref.PixelData and as_explicit.PatientName == ref.PatientName
    assert archive.get(base,
                       headers={"Accept": "application/dicom; transfer-syntax=1.2.840.10008.1.2"}).status_code == 406


def test_stored_deflate_bomb_is_refused_when_served(archive, tmp_path, monkeypatch):
    import tracemalloc

    from ...support.dicom_data import StudySpec, write_deflated

    path = write_deflated(tmp_path / "bomb.dcm", StudySpec(patient_name="Deflate^Bomb"), frames=512)  # 1 MB -> 1 GiB
    assert path.stat().st_size < 2 * 2**20
    st, se, sop = _store_as_stored_before(archive, path, monkeypatch)
    base = f"/studies/{st}/series/{se}/instances/{sop}"
    tracemalloc.start()
    try:
        meta = archive.get(f"{base}/metadata")
        rendered = archive.get(f"{base}/rendered")
        rendered_late = archive.get(f"{base}/frames/500/rendered")
        frame = archive.get(f"{base}/frames/500")
        bulk = archive.get(f"{base}/bulkdata/7FE00010")
        explicit = archive.get(base, headers={"Accept": "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert meta.status_code == frame.status_code == bulk.status_code == explicit.status_code == 422
    assert "more than 200:1" in meta.text
    # The first frame lies within the first 16 MiB inflated: it is served,
    # having cost what a real image of that size costs; a later one is not.
    assert rendered.status_code == 200
    assert rendered_late.status_code == 406 and "more than 200:1" in rendered_late.text
    assert peak < 64 * 2**20  # the server runs in this process: it never held the inflated dataset
    # What was stored is still there, byte for byte, for whoever wants it.
    as_stored = archive.get(base, headers={"Accept": "application/dicom"})
    assert as_stored.status_code == 200 and as_stored.content.endswith(path.read_bytes()[-4096:])


def _peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_web_process_peak_memory_serving_a_stored_bomb(tmp_path, monkeypatch):
    """The issue's test: the real web process (`yingyun cloud`), its peak
    RSS while it serves a stored 1 MB -> 1 GiB bomb's metadata and renders it
    (it was 2.2 GB and 3.2 GB)."""
    import os
    import signal
    import subprocess
    import sys

    import yingyun.core.dicom as dicom
    from yingyun.cloud.dicomweb import TokenRegistry
    from yingyun.runtime import Runtime
    from yingyun.settings import Settings
    from yingyun.storage.db import default_sqlite_url

    from ...support.dicom_data import StudySpec, write_deflated
    from ...support.net import free_port, wait_http

    data = tmp_path / "data"
    rt = Runtime.open(Settings(data_dir=data, database_url=default_sqlite_url(data)), create_keys=True, migrate=True)
    try:
        rt.tenancy.add_hospital(hospital_id="h1", name="H")
        token = TokenRegistry(rt.db).add(name="ops", all_hospitals=True)
        bomb = write_deflated(tmp_path / "bomb.dcm", StudySpec(), frames=512)
        raw = bomb.read_bytes()
        with monkeypatch.context() as m:  # stored as ingest did before it had a ratio limit
            m.setattr(dicom, "MAX_INFLATE_RATIO", 10**9, raising=False)
            info = read_file_info(raw)
            store = InstanceStore(rt.db, LocalBlobStore(rt.settings.blob_dir))
            try:
                assert store.store(hospital_id="h1", data=memoryview(raw)[info.dataset_offset:],
                                   transfer_syntax_uid=info.transfer_syntax_uid).outcome == "stored"
            finally:
                store.close()
    finally:
        rt.close()
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "yingyun"), "cloud", "--data-dir", str(data),
                             "--host", "127.0.0.1", "--http-port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url)
        base = (f"{url}/dicomweb/studies/{info.study_uid}/series/{info.series_uid}"
                f"/instances/{info.sop_instance_uid}")
        auth = {"Authorization": f"Bearer {token}"}
        started = _peak_rss_mib(proc.pid)
        assert httpx.get(f"{base}/metadata", headers=auth, timeout=60).status_code == 422
        assert httpx.get(f"{base}/rendered", headers=auth, timeout=60).status_code == 200  # frame 1: 2 MiB in
        assert httpx.get(f"{base}/frames/512/rendered", headers=auth, timeout=60).status_code == 406
        assert httpx.get(f"{base}/frames/512", headers=auth, timeout=60).status_code == 422
        peak = _peak_rss_mib(proc.pid)
        assert peak < 300, (started, peak)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_deflate_bomb_is_refused_by_stow(archive, tmp_path):
    from ...support.dicom_data import StudySpec, write_deflated
    from .test_stow import stow

    path = write_deflated(tmp_path / "bomb.dcm", StudySpec(patient_name="Stow^Bomb"), frames=512)
    r = stow(archive, [("application/dicom", path.read_bytes())])
    assert r.status_code == 409
    assert "more than 200:1" in r.headers.get("warning", "")
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert archive.get(f"/studies/{ds.StudyInstanceUID}/metadata").status_code == 404
