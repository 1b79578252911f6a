"""Peak memory of the web process serving a stored deflate bomb.

Run:  .venv/bin/python bench/deflate_bomb.py [--inflated-mib 1024]

Writes a Deflated Explicit VR Little Endian multi-frame image of about 1 MB
that inflates to --inflated-mib (zeros: about 1000:1), stores it the way an
archive held it before ingest refused bombs (the ratio check switched off
while storing, where there is one), then for each request starts a fresh
`yingyun cloud`, asks once and prints the process's peak RSS (VmHWM) before
and after the request, with the HTTP status. The "started" column is the
reference measured in the same run: what the web process costs idle.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import httpx
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

import yingyun.core.dicom as dicom
from yingyun.archive.instances import InstanceStore
from yingyun.cloud.dicomweb import TokenRegistry
from yingyun.runtime import Runtime
from yingyun.settings import Settings
from yingyun.storage.blobs import LocalBlobStore
from yingyun.storage.db import default_sqlite_url

YINGYUN = str(Path(sys.executable).parent / "yingyun")


def bomb(path: Path, frames: int, rows: int = 1024, cols: int = 1024) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7.3"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.Modality = "BOMB", "OT"
    ds.NumberOfFrames, ds.Rows, ds.Columns = frames, rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit, ds.PixelRepresentation = 15, 0
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, ds)
    head = fp.getvalue() + b"\xe0\x7f\x10\x00OW\x00\x00" + (frames * rows * cols * 2).to_bytes(4, "little")

    def piece(data: bytes, mode: int = zlib.Z_FULL_FLUSH) -> bytes:
        z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        return z.compress(data) + z.flush(mode)

    zero_frame = piece(bytes(rows * cols * 2))
    with open(path, "wb") as f:
        f.write(b"\0" * 128 + b"DICM")
        write_file_meta_info(f, ds.file_meta, enforce_standard=True)
        f.write(piece(head))
        for _ in range(frames):
            f.write(zero_frame)
        f.write(piece(b"", zlib.Z_FINISH))


def peak_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--inflated-mib", type=int, default=1024)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "bomb.dcm"
        bomb(path, frames=args.inflated_mib // 2)
        data_dir = root / "data"
        rt = Runtime.open(Settings(data_dir=data_dir, database_url=default_sqlite_url(data_dir)), create_keys=True,
                          migrate=True)
        rt.tenancy.add_hospital(hospital_id="h1", name="H")
        token = TokenRegistry(rt.db).add(name="bench", all_hospitals=True)
        if hasattr(dicom, "MAX_INFLATE_RATIO"):
            dicom.MAX_INFLATE_RATIO = 10**9  # type: ignore[attr-defined]
        raw = path.read_bytes()
        info = dicom.read_file_info(raw)
        store = InstanceStore(rt.db, LocalBlobStore(rt.settings.blob_dir))
        result = store.store(hospital_id="h1", data=memoryview(raw)[info.dataset_offset:],
                             transfer_syntax_uid=info.transfer_syntax_uid)
        store.close()
        rt.close()
        assert result.outcome == "stored", result
        print(f"bomb: {len(raw) / 1e6:.2f} MB stored, inflates to {args.inflated_mib} MiB")
        base = f"/dicomweb/studies/{info.study_uid}/series/{info.series_uid}/instances/{info.sop_instance_uid}"
        print(f"{'request':<28} {'status':>6} {'started MiB':>12} {'peak MiB':>9} {'seconds':>8}")
        for label, path_ in [("metadata", "/metadata"), ("rendered (frame 1)", "/rendered"),
                             ("rendered (last frame)", f"/frames/{args.inflated_mib // 2}/rendered"),
                             ("frames (last frame)", f"/frames/{args.inflated_mib // 2}")]:
            port = _free_port()
            proc = subprocess.Popen([YINGYUN, "cloud", "--data-dir", str(data_dir), "--host", "127.0.0.1",
                                     "--http-port", str(port)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True, env=os.environ)
            try:
                url = f"http://127.0.0.1:{port}"
                _wait(url)
                started = peak_mib(proc.pid)
                t0 = time.perf_counter()
                try:
                    status = str(httpx.get(url + base + path_, headers={"Authorization": f"Bearer {token}"},
                                           timeout=600).status_code)
                except httpx.HTTPError as e:
                    status = type(e).__name__
                seconds = time.perf_counter() - t0
                print(f"{label:<28} {status:>6} {started:>12.0f} {peak_mib(proc.pid):>9.0f} {seconds:>8.2f}")
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=60)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


if __name__ == "__main__":
    main()
