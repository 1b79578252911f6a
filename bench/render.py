"""Render latency: cold (fresh read + decode + encode) vs RenderCache hits.

Run:  .venv/bin/python bench/render.py [-n 200] [--keep DIR]

Generates a 512x512 16-bit CT slice (stored values 0..4095 with
RescaleIntercept -1024, window 40/400, a thorax-like phantom plus noise and a
realistic-size header), then renders it n times to JPEG q90 straight from
disk and n times through a warm RenderCache. "Cold" means nothing is reused
between iterations inside the process; the OS page cache is still warm,
which is also the normal case for a busy server.

`measure(label, fn, n)` is the reusable piece: it times `fn()` n times and
prints p50/p95/max in ms, so other back-ends (e.g. an Orthanc /preview call)
can be put side by side with the same statistics.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from yingyun.core.render import RenderOptions, render
from yingyun.storage.render_cache import RenderCache

ORTHANC = "/usr/sbin/Orthanc"


def measure(label: str, fn: Callable[[], object], n: int) -> dict[str, float]:
    """Time `fn()` n times; print and return p50/p95/max/mean in ms."""
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000.0)
    samples.sort()
    # nearest-rank percentiles: with n=200, p95 is the 190th sample
    stats = {
        "n": float(n),
        "p50": samples[max(0, int(round(0.50 * n)) - 1)],
        "p95": samples[max(0, int(round(0.95 * n)) - 1)],
        "max": samples[-1],
        "mean": statistics.fmean(samples),
    }
    print(f"{label:<28} n={n:<4} p50={stats['p50']:7.2f} ms  p95={stats['p95']:7.2f} ms  max={stats['max']:7.2f} ms")
    return stats


def make_ct_slice(path: Path, seed: int = 7) -> None:
    """A 512x512 thorax-like CT slice written as Explicit VR Little Endian."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:512, 0:512].astype(np.float32)

    def ellipse(cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
        return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0

    hu = np.full((512, 512), -1000.0, dtype=np.float32)  # air
    hu[ellipse(256, 256, 180, 230)] = -100.0  # subcutaneous fat
    hu[ellipse(256, 256, 165, 215)] = 40.0  # muscle / soft tissue
    hu[ellipse(240, 160, 110, 75)] = -850.0  # right lung
    hu[ellipse(240, 352, 110, 75)] = -850.0  # left lung
    hu[ellipse(250, 262, 45, 40)] = 45.0  # heart
    hu[ellipse(200, 262, 16, 16)] = 180.0  # contrast-filled aorta
    hu[ellipse(370, 256, 28, 26)] = 700.0  # vertebral body
    hu[ellipse(370, 256, 20, 18)] = 250.0  # cancellous bone
    hu[ellipse(405, 256, 14, 9)] = 900.0  # spinous process
    # lung vessels
    for _ in range(60):
        cy, cx = rng.uniform(150, 330), rng.choice([rng.uniform(100, 210), rng.uniform(300, 410)])
        hu[ellipse(cy, cx, rng.uniform(1, 4), rng.uniform(1, 4))] = 30.0
    hu += rng.normal(0.0, 12.0, hu.shape).astype(np.float32)  # quantum noise
    hu[~ellipse(256, 256, 250, 250)] = -2048.0  # outside the reconstruction circle
    stored = np.clip(hu + 1024.0, 0, 4095).astype(np.uint16)
    stored[~ellipse(256, 256, 250, 250)] = 0

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.Manufacturer = "BENCH"
    ds.PatientName = "BENCH^PHANTOM"
    ds.PatientID = "BENCH0001"
    ds.SeriesDescription = "Thorax 1.0 B31f"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceNumber = 42
    ds.SliceThickness = "1.0"
    ds.SliceLocation = "-120.5"
    ds.PixelSpacing = [0.703125, 0.703125]
    ds.ImagePositionPatient = [-180.0, -180.0, -120.5]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.KVP = "120"
    ds.ConvolutionKernel = "B31f"
    # Real CT headers carry a few KB of vendor data in front of the pixels.
    ds.add_new(0x00291010, "OB", rng.integers(0, 256, 6000, dtype=np.uint8).tobytes())
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 512
    ds.Columns = 512
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelPaddingValue = 0
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.PixelData = stored.tobytes()
    ds.save_as(path, enforce_file_format=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="iterations per measurement")
    parser.add_argument("--keep", type=Path, help="write the phantom and cache here instead of a temp dir")
    parser.add_argument("--no-orthanc", action="store_true", help="skip the Orthanc reference")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="yingyun-bench-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        dcm = workdir / "ct_512.dcm"
        make_ct_slice(dcm)
        opts = RenderOptions(fmt="jpeg", quality=90)
        cache = RenderCache(workdir / "cache", max_bytes=256 * 1024**2)
        key = ("1.2.3.bench", "etag-1")

        out = render(dcm, opts)  # imports and first-call set-up, outside the timings
        print(f"phantom {dcm.stat().st_size} bytes -> JPEG q90 {len(out)} bytes")
        measure("cold render (disk->JPEG)", lambda: render(dcm, opts), args.n)
        cache.get_or_render(key, lambda: dcm, opts)
        measure("RenderCache hit", lambda: cache.get_or_render(key, lambda: dcm, opts), args.n)
        if not args.no_orthanc:
            orthanc_reference(dcm, workdir, args.n)
    return 0


def orthanc_reference(dcm: Path, workdir: Path, n: int) -> None:
    """The same slice through Orthanc's /instances/{id}/preview (over loopback HTTP), same run."""
    import json
    import socket
    import subprocess
    import time
    import urllib.request

    if not Path(ORTHANC).exists():
        raise SystemExit(f"{ORTHANC} missing: the reference could not be measured (WITH_BENCH_DEPS=1 "
                         "scripts/install-system-deps.sh installs it)")
    with socket.socket() as s_:
        s_.bind(("127.0.0.1", 0))
        http = s_.getsockname()[1]
    root = workdir / "orthanc"
    root.mkdir(exist_ok=True)
    cfg = {"Name": "BenchOrthanc", "StorageDirectory": str(root / "storage"), "IndexDirectory": str(root / "index"),
           "Plugins": [], "HttpServerEnabled": True, "HttpPort": http, "RemoteAccessAllowed": False,
           "AuthenticationEnabled": False, "DicomServerEnabled": False}
    (root / "orthanc.json").write_text(json.dumps(cfg))
    proc = subprocess.Popen([ORTHANC, str(root / "orthanc.json")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{http}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/system", timeout=1).read()
                break
            except OSError as exc:
                if time.time() > deadline:
                    raise SystemExit("Orthanc did not start: the reference could not be measured") from exc
                time.sleep(0.2)
        req = urllib.request.Request(base + "/instances", data=dcm.read_bytes(), method="POST")
        instance = json.loads(urllib.request.urlopen(req).read())["ID"]
        url = f"{base}/instances/{instance}/preview"
        urllib.request.urlopen(url).read()
        measure("Orthanc /preview (HTTP)", lambda: urllib.request.urlopen(url).read(), n)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
