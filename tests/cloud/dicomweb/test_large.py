"""Instances of 20 MiB and 300 MiB in and out of the cloud: STOW-RS, `yingyun import`, WADO-RS.

Every path streams: what it costs in memory is measured (tracemalloc over
this process, the server thread included) and must stay far below the
instance's size; what comes back is the dataset that went in, byte for byte.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from yingyun.archive.importer import run_import
from yingyun.cloud.dicomweb import TokenRegistry
from yingyun.core.dicom import read_file_info
from yingyun.runtime import Runtime
from yingyun.serve import create_app
from yingyun.settings import Settings
from yingyun.storage import schema as s
from yingyun.storage.db import default_sqlite_url

from ...support.dicom_data import StudySpec, write_large
from ...support.memory import MiB, traced_peak
from ...support.servers import ServerThread
from .test_wado import split_multipart

# What one request may cost whatever the instance's size: a few chunks, the
# parser's in-memory budget for small parts, pydicom reading a header.
BOUND = 32 * MiB
ROWS = COLS = 512
FRAME = ROWS * COLS * 2


class Large:
    def __init__(self, path: Path) -> None:
        self.path = path
        info = read_file_info(path)
        self.sop_uid, self.study_uid, self.series_uid = info.sop_instance_uid, info.study_uid, info.series_uid
        self.frames = info.number_of_frames
        self.pixel_offset = path.stat().st_size - self.frames * FRAME  # Pixel Data is the last element
        self.dataset_sha256 = _sha256(_file_chunks(path, read_file_info(path).dataset_offset))

    def url(self, base: str) -> str:
        return f"{base}/studies/{self.study_uid}/series/{self.series_uid}/instances/{self.sop_uid}"

    def frame(self, n: int) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(self.pixel_offset + (n - 1) * FRAME)
            return f.read(FRAME)


def _file_chunks(path: Path, start: int = 0) -> Iterator[bytes]:
    with open(path, "rb") as f:
        f.seek(start)
        while chunk := f.read(MiB):
            yield chunk


def _sha256(chunks) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return h.hexdigest()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    root = tmp_path_factory.mktemp("large")
    rt = Runtime.open(Settings(data_dir=root / "data", database_url=default_sqlite_url(root / "data"),
                               public_url="https://film.example.test"), create_keys=True, migrate=True)
    rt.tenancy.add_hospital(hospital_id="h1", name="一院")
    rt.tenancy.add_hospital(hospital_id="h2", name="二院")
    tokens = TokenRegistry(rt.db)
    auth = {h: {"Authorization": f"Bearer {tokens.add(name=f'ops-{h}', hospitals=[h])}"} for h in ("h1", "h2")}
    server = ServerThread(create_app(rt)).start()
    spec = StudySpec(accession="BIG1", patient_id="PBIG", patient_name="Big^Instance=大^影像")
    files = {size: Large(write_large(root / "src" / f"{size}.dcm", spec, size=size * MiB, rows=ROWS, cols=COLS,
                                     seed=size)) for size in (20, 300)}
    yield rt, server, auth, files
    server.stop()
    rt.close()
    shutil.rmtree(root, ignore_errors=True)  # a GB of test data is not kept for the next run


def _stow(url: str, auth: dict, path: Path) -> httpx.Response:
    boundary = "large-test-boundary"

    def body() -> Iterator[bytes]:
        yield f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        yield from _file_chunks(path)
        yield f"\r\n--{boundary}--\r\n".encode()

    return httpx.post(f"{url}/dicomweb/studies", content=body(), timeout=300,
                      headers={**auth, "Accept": "application/dicom+json",
                               "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'})


def _retrieved_dataset_sha256(url: str, auth: dict) -> str:
    """The instance as WADO-RS serves it (application/dicom): the SHA-256 of its dataset,
    after the file meta the archive wrote, read as it streams."""
    h = hashlib.sha256()
    head = b""
    skip = None
    with httpx.stream("GET", url, headers={**auth, "Accept": "application/dicom"}, timeout=300) as r:
        assert r.status_code == 200, r.read()
        for chunk in r.iter_raw(MiB):
            if skip is None:
                head += chunk
                if len(head) < 144:
                    continue
                skip = 144 + struct.unpack_from("<I", head, 140)[0]
                chunk, head = head, b""
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            h.update(memoryview(chunk)[skip:])
            skip = 0
    return h.hexdigest()


def _single_part_sha256(response: httpx.Response) -> tuple[str, int]:
    """(SHA-256, size) of the content of a one-part multipart response, read as it streams."""
    boundary = re.search(r"boundary=([^;]+)", response.headers["content-type"]).group(1).strip('"').encode()
    tail = b"\r\n--" + boundary + b"--\r\n"
    h, size, held, head = hashlib.sha256(), 0, b"", True
    for chunk in response.iter_bytes(MiB):
        held += chunk
        if head:
            if b"\r\n\r\n" not in held:
                continue
            held, head = held.split(b"\r\n\r\n", 1)[1], False
        if len(held) > len(tail):
            h.update(held[:-len(tail)])
            size += len(held) - len(tail)
            held = held[-len(tail):]
    assert held == tail
    return h.hexdigest(), size


def _count(rt: Runtime, sop_uid: str, hospital: str) -> int:
    with rt.db.read() as conn:
        return conn.execute(select(func.count()).select_from(s.instances).where(
            s.instances.c.sop_uid == sop_uid, s.instances.c.hospital_id == hospital)).scalar_one()


def test_stow_then_wado_of_large_instances_stream(cloud):
    rt, server, tokens, files = cloud
    auth, base = tokens["h1"], server.url + "/dicomweb"
    for size, large in files.items():
        with traced_peak() as stow:
            r = _stow(server.url, auth, large.path)
        assert r.status_code == 200, r.text
        assert stow.bytes < BOUND, f"STOW of {size} MiB cost {stow.mib:.0f} MiB"
        print(f"STOW of {size} MiB cost {stow.mib:.0f} MiB", "(bound", BOUND // MiB, "MiB)")
        with traced_peak() as wado:
            assert _retrieved_dataset_sha256(large.url(base), auth) == large.dataset_sha256
        assert wado.bytes < BOUND, f"WADO-RS of {size} MiB cost {wado.mib:.0f} MiB"
        print(f"WADO-RS of {size} MiB cost {wado.mib:.0f} MiB", "(bound", BOUND // MiB, "MiB)")
        assert _count(rt, large.sop_uid, "h1") == 1

    # item 24: the re-sent 300 MiB is compared with the stored copy piecewise, not read whole twice
    big = files[300]
    with traced_peak() as again:
        r = _stow(server.url, auth, big.path)
    assert r.status_code == 200, r.text
    assert again.bytes < BOUND, f"a re-sent 300 MiB instance cost {again.mib:.0f} MiB"
    print(f"a re-sent 300 MiB instance cost {again.mib:.0f} MiB", "(bound", BOUND // MiB, "MiB)")
    with rt.db.read() as conn:
        assert conn.execute(select(s.instances.c.version).where(s.instances.c.sop_uid == big.sop_uid)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(s.superseded_instances)).scalar_one() == 0


def test_frames_and_bulk_data_of_a_large_multiframe_stream(cloud):
    rt, server, tokens, files = cloud
    auth, big = tokens["h1"], files[300]
    if _count(rt, big.sop_uid, "h1") == 0:  # stored by the STOW test when it ran first
        assert _stow(server.url, auth, big.path).status_code == 200
    url = big.url(server.url + "/dicomweb")
    octets = {"Accept": 'multipart/related; type="application/octet-stream"'}
    with traced_peak() as frames:
        r = httpx.get(f"{url}/frames/1,{big.frames},2", headers={**auth, **octets}, timeout=120)
    assert r.status_code == 200
    assert [body for _, body in split_multipart(r)] == [big.frame(1), big.frame(big.frames), big.frame(2)]
    assert frames.bytes < BOUND, f"3 frames of a 300 MiB multi-frame cost {frames.mib:.0f} MiB"
    print(f"3 frames of a 300 MiB multi-frame cost {frames.mib:.0f} MiB", "(bound", BOUND // MiB, "MiB)")

    with traced_peak() as bulk:
        with httpx.stream("GET", f"{url}/bulkdata/7FE00010", headers=auth, timeout=300) as r:
            assert r.status_code == 200
            digest, size = _single_part_sha256(r)
    assert size == big.frames * FRAME and digest == _sha256(_file_chunks(big.path, big.pixel_offset))
    assert bulk.bytes < BOUND, f"the bulk data of a 300 MiB multi-frame cost {bulk.mib:.0f} MiB"
    print(f"the bulk data of a 300 MiB multi-frame cost {bulk.mib:.0f} MiB", "(bound", BOUND // MiB, "MiB)")


def test_import_of_large_instances_streams(cloud, tmp_path, large_files_dropped):
    rt, server, tokens, files = cloud
    zipped = tmp_path / "big.zip"
    with zipfile.ZipFile(zipped, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.write(files[20].path, "series/20.dcm")
    with traced_peak() as imported:
        out = run_import(rt.instances, spool_dir=rt.settings.spool_dir,
                         hospital_id="h2", paths=[str(files[300].path), str(zipped)])
    assert out["stored"] == 2 and out["failed"] == [] and out["skipped"] == {}, out
    assert imported.bytes < BOUND, f"importing 320 MiB cost {imported.mib:.0f} MiB"
    print(f"importing 320 MiB cost {imported.mib:.0f} MiB", "(bound", BOUND // MiB, "MiB)")
    with traced_peak() as again:  # a re-import compares piecewise (item 24)
        assert run_import(rt.instances, spool_dir=rt.settings.spool_dir,
                          hospital_id="h2", paths=[str(files[300].path)])["duplicates"] == 1
    assert again.bytes < BOUND, f"re-importing 300 MiB cost {again.mib:.0f} MiB"
    print(f"re-importing 300 MiB cost {again.mib:.0f} MiB", "(bound", BOUND // MiB, "MiB)")
    for large in files.values():
        assert _count(rt, large.sop_uid, "h2") == 1
        assert _retrieved_dataset_sha256(large.url(server.url + "/dicomweb"), tokens["h2"]) == large.dataset_sha256


def test_large_instance_on_the_s3_blob_store(tmp_path, large_files_dropped):
    """The same paths over the S3 store (the emulator): STOW, a re-send, WADO-RS, frames, bulk data."""
    from ...support.s3 import s3_store

    rt = Runtime.open(Settings(data_dir=tmp_path / "data", database_url=default_sqlite_url(tmp_path / "data"),
                               public_url="https://film.example.test"), create_keys=True, migrate=True)
    rt.blobs = s3_store()
    rt.tenancy.add_hospital(hospital_id="h1", name="一院")
    auth = {"Authorization": f"Bearer {TokenRegistry(rt.db).add(name='ops', hospitals=['h1'])}"}
    server = ServerThread(create_app(rt)).start()
    try:
        large = Large(write_large(tmp_path / "20.dcm", StudySpec(accession="S3BIG"), size=20 * MiB, rows=ROWS,
                                  cols=COLS))
        url = large.url(server.url + "/dicomweb")
        # (no memory bound here: the emulator runs in this process and keeps every object in memory)
        for _attempt in ("stored", "re-sent"):
            r = _stow(server.url, auth, large.path)
            assert r.status_code == 200, r.text
        assert _count(rt, large.sop_uid, "h1") == 1
        with rt.db.read() as conn:
            version = select(s.instances.c.version).where(s.instances.c.sop_uid == large.sop_uid)
            assert conn.execute(version).scalar_one() == 1
        assert not list(rt.settings.blob_dir.rglob("*.dcm"))  # nothing went to the local folder
        assert _retrieved_dataset_sha256(url, auth) == large.dataset_sha256
        r = httpx.get(f"{url}/frames/{large.frames},1", timeout=60,
                      headers={**auth, "Accept": 'multipart/related; type="application/octet-stream"'})
        assert [body for _, body in split_multipart(r)] == [large.frame(large.frames), large.frame(1)]
        with httpx.stream("GET", f"{url}/bulkdata/7FE00010", headers=auth, timeout=60) as r:
            assert _single_part_sha256(r) == (_sha256(_file_chunks(large.path, large.pixel_offset)),
                                              large.frames * FRAME)
    finally:
        server.stop()
        rt.close()
