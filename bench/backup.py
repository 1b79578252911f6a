#!/usr/bin/env python3
"""Backup throughput, the incremental backup's share, and the scrub under its throttle (issue 18, items 3 and 5).

Targets: 10,000 instances / 5 GB backed up at >= 200 MB/s to a local disk;
the second (incremental) backup in <= 5 % of the first's time; the scrub
holds its throttle (<= --scrub-rate-mb) while ingest stays within 10 % of
its speed without it.

Builds a data dir (SQLite + local folder) holding --instances instances of
about --size-kib each, stored through the ingest path (InstanceStore, as
C-STORE stores them), then prints:

  reference   `cp -r` of the blob folder to a fresh folder + sync: the disk's
              plain copy speed in this run
  backup      `storage.backup.backup` into a fresh folder (index copy, blobs
              copied and SHA-256'd, manifest): MB/s of blob bytes
  incremental 1 % more instances, then a second backup into the same folder:
              its time as a share of the first's
  ingest      --ingest instances stored with no scrub running, then as many
              more with a scrub thread reading the store at --scrub-rate-mb:
              instances/s of each and the ratio; the scrub's measured read
              rate beside its throttle

usage: bench/backup.py [--instances 2000] [--size-kib 256] [--ingest 400] [--scrub-rate-mb 20] [--keep DIR]
(on a shared machine use the defaults, 500 MB, and say so; the target size is --instances 10000 --size-kib 512)
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE)]

import numpy as np  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.filebase import DicomBytesIO  # noqa: E402
from pydicom.filewriter import write_dataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # noqa: E402

from yingyun.archive.scrub import Scrubber  # noqa: E402
from yingyun.runtime import Runtime  # noqa: E402
from yingyun.settings import Settings  # noqa: E402
from yingyun.storage import backup  # noqa: E402
from yingyun.storage.db import default_sqlite_url  # noqa: E402

ROOT = "1.2.826.0.1.3680043.8.498.9"


def dataset(study_uid: str, series_uid: str, n: int, size: int) -> bytes:
    """An explicit-VR-little-endian CT data set of about `size` bytes (random pixels, so nothing compresses)."""
    side = max(16, int((size / 2) ** 0.5))
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = generate_uid(prefix=ROOT + ".")
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.PatientID, ds.PatientName, ds.Modality, ds.InstanceNumber = "BENCH", "Bench^Backup", "CT", n
    ds.Rows = ds.Columns = side
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.random.default_rng(n).integers(0, 4096, side * side, dtype=np.uint16).tobytes()
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    write_dataset(out, ds)  # the data set alone, as a C-STORE carries it
    return out.getvalue()


def ingest(rt: Runtime, count: int, size: int, start: int) -> float:
    """Store `count` instances (100 per study); returns the seconds it took."""
    t0 = time.perf_counter()
    study = series = ""
    for n in range(start, start + count):
        if n % 100 == 0 or not study:
            study, series = generate_uid(prefix=ROOT + "."), generate_uid(prefix=ROOT + ".")
        result = rt.instances.store(hospital_id="h1", data=dataset(study, series, n, size),
                                    transfer_syntax_uid=ExplicitVRLittleEndian)
        assert result.status == 0, result
    return time.perf_counter() - t0


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, default=2000)
    ap.add_argument("--size-kib", type=int, default=256)
    ap.add_argument("--ingest", type=int, default=400)
    ap.add_argument("--scrub-rate-mb", type=float, default=20.0)
    ap.add_argument("--keep", type=Path)
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="yy-bench-backup-"))
    data = work / "data"
    size = args.size_kib * 1024
    rt = Runtime.open(Settings(data_dir=data, database_url=default_sqlite_url(data)), create_keys=True, migrate=True)
    try:
        rt.tenancy.add_hospital(hospital_id="h1", name="Bench")
        print(f"building {args.instances} instances of ~{args.size_kib} KiB ...", file=sys.stderr)
        ingest(rt, args.instances, size, 0)
        blob_bytes = folder_bytes(data / "blobs")

        ref = work / "cp-reference"
        shutil.rmtree(ref, ignore_errors=True)
        t0 = time.perf_counter()
        subprocess.run(["cp", "-r", str(data / "blobs"), str(ref)], check=True)
        os.sync()
        t_ref = time.perf_counter() - t0

        to = work / "backup"
        shutil.rmtree(to, ignore_errors=True)
        first = backup.backup(rt.db, rt.blobs, to)
        more = max(1, args.instances // 100)
        ingest(rt, more, size, args.instances)
        second = backup.backup(rt.db, rt.blobs, to)
        assert backup.verify(to).ok

        # Ingest without, then with the scrub reading the whole store under its throttle.
        t_plain = ingest(rt, args.ingest, size, args.instances + more)
        scrubber = Scrubber(rt.db, rt.blobs, rate_bytes=args.scrub_rate_mb * 1e6)
        stop = threading.Event()
        read = {"bytes": 0, "seconds": 0.0}

        def scrub() -> None:
            t = time.perf_counter()
            while not stop.is_set():
                if scrubber.step() is None:
                    break
            read["seconds"] = time.perf_counter() - t
            read["bytes"] = scrubber.throttle.done

        thread = threading.Thread(target=scrub)
        thread.start()
        t_scrubbed = ingest(rt, args.ingest, size, args.instances + more + args.ingest)
        stop.set()
        thread.join()
    finally:
        rt.close()

    mb = blob_bytes / 1e6
    print("load average (1, 5, 15 min):", open("/proc/loadavg").read().split()[:3])
    print(f"{'what':<14}{'seconds':>10}{'MB/s':>10}  note")
    print(f"{'cp -r (ref)':<14}{t_ref:>10.2f}{mb / t_ref:>10.1f}  {args.instances} blobs, {mb:.0f} MB, plain copy")
    print(f"{'backup':<14}{first.seconds:>10.2f}{first.bytes_copied / 1e6 / first.seconds:>10.1f}  "
          f"{first.copied} blobs copied + SHA-256, index, manifest (target >= 200 MB/s)")
    print(f"{'incremental':<14}{second.seconds:>10.2f}{'':>10}  {second.copied} new blobs: "
          f"{100 * second.seconds / first.seconds:.1f} % of the first (target <= 5 %)")
    rate_plain, rate_scrubbed = args.ingest / t_plain, args.ingest / t_scrubbed
    print(f"{'ingest':<14}{t_plain:>10.2f}{'':>10}  {rate_plain:.0f} instances/s without the scrub")
    print(f"{'ingest+scrub':<14}{t_scrubbed:>10.2f}{'':>10}  {rate_scrubbed:.0f} instances/s with it: "
          f"{100 * rate_scrubbed / rate_plain:.0f} % (target >= 90 %)")
    scrub_rate = read["bytes"] / 1e6 / read["seconds"] if read["seconds"] else 0.0
    print(f"{'scrub':<14}{read['seconds']:>10.2f}{scrub_rate:>10.1f}  throttle {args.scrub_rate_mb:g} MB/s")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
