#!/usr/bin/env python3
"""One very large instance over C-STORE, then back over WADO-RS (issue 12, item 1).

Writes one multi-frame instance of --size bytes (default 2 GiB: 512x512
16-bit frames, explicit VR little endian; tests/support/dicom_data.write_large
streams it to disk a frame at a time) and sends it with

    TCP_NODELAY=1 /usr/bin/storescu -aet BENCHSCU -aec YINGYUN 127.0.0.1 PORT FILE

to, each started fresh with its own folders,

  storescp  dcmtk storescp -od DIR: the reference (page cache only, no fsync,
            no index)
  yingyun   `yingyun serve --dicom-workers 1` on a fresh data dir, the calling
            AE registered: a success status only once the instance is
            fsynced and indexed. The data set is spooled to
            {data-dir}/spool-tmp while it arrives, then copied behind its
            file meta into the blob store.

and prints for each: the wall time from storescu's start to its exit, MB/s
(10^6 B of the file sent per second) and the peak RSS of the receiving
process (/proc sampled every 50 ms; for yingyun the receiver process and,
apart, the serve process). For yingyun it then checks that the stored data
set is byte-identical to the one sent (SHA-256), retrieves the instance with
WADO-RS (Accept: application/dicom, a bearer token from `admin token add`)
and prints its MB/s beside a plain read of the stored file (the reference);
with --resend it sends the same instance again (a duplicate, compared with
the stored copy) and prints that run's wall time and the receiver's peak RSS.
Any failed step exits 2 without printing the table.

usage: bench/large_instance.py [--size-mib 2048] [--resend] [--keep DIR]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

from ingest import CALLING_AE, STORESCU, YINGYUN, StoreSCP, Yingyun, descendants, rss_bytes  # noqa: E402

from tests.support.dicom_data import StudySpec, dataset_sha256, uid, write_large  # noqa: E402


class PeakRss:
    """Per-process peak RSS of a process tree, sampled every 50 ms."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in descendants(self.root_pid):
                self.peaks[pid] = max(self.peaks.get(pid, 0), rss_bytes([pid]))
            self._stop.wait(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def of_root(self) -> int:
        return self.peaks.get(self.root_pid, 0)

    def of_children(self) -> int:
        return max((v for pid, v in self.peaks.items() if pid != self.root_pid), default=0)


def send(port: int, path: str, log: str) -> tuple[float, int, list[str]]:
    env = dict(os.environ, TCP_NODELAY="1")
    with open(log, "wb") as out:
        t0 = time.perf_counter()
        rc = subprocess.run([STORESCU, "-aet", CALLING_AE, "-aec", "YINGYUN", "127.0.0.1", str(port), path],
                            stdout=out, stderr=subprocess.STDOUT, env=env, timeout=3600).returncode
        wall = time.perf_counter() - t0
    with open(log, errors="replace") as f:
        errors = [ln.strip() for ln in f if ln.startswith(("E:", "F:"))]
    return wall, rc, errors


def read_through(chunks) -> tuple[float, int]:
    t0, n = time.perf_counter(), 0
    for chunk in chunks:
        n += len(chunk)
    return time.perf_counter() - t0, n


def hashed(chunks, h):
    for chunk in chunks:
        h.update(chunk)
        yield chunk


def file_chunks(path: str):
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            yield chunk


def wado_chunks(url: str, token: str):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/dicom"})
    with urllib.request.urlopen(req, timeout=600) as rsp:
        while chunk := rsp.read(1 << 20):
            yield chunk


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mib", type=int, default=2048)
    ap.add_argument("--resend", action="store_true", help="send the instance a second time (a duplicate)")
    ap.add_argument("--keep", default=None, help="folder to keep the generated instance in (reused if there)")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="yy-large-bench-")
    data = a.keep or os.path.join(tmp, "data")
    os.makedirs(data, exist_ok=True)
    failures: list[str] = []
    try:
        spec_file = os.path.join(data, f"large-{a.size_mib}.json")
        path = os.path.join(data, f"large-{a.size_mib}.dcm")
        if os.path.exists(spec_file):
            with open(spec_file) as f:
                ids = json.load(f)
        else:
            ids = {"study": uid(), "series": uid(), "sop": uid()}
            t0 = time.perf_counter()
            write_large(Path(path), StudySpec(study_uid=ids["study"]), size=a.size_mib << 20,
                        series_uid=ids["series"], sop_uid=ids["sop"])
            print(f"generated {os.path.getsize(path) / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s", flush=True)
            with open(spec_file, "w") as f:
                json.dump(ids, f)
        size = os.path.getsize(path)
        sent_sha = dataset_sha256(path)
        Yingyun.workers = 1
        Yingyun.prepare_template(tmp)
        rows = []
        for cls in (StoreSCP, Yingyun):
            root = tempfile.mkdtemp(prefix=f"{cls.name}-", dir=tmp)
            srv = cls(root, 1)
            srv.start()
            try:
                time.sleep(0.3)
                with PeakRss(srv.proc.pid) as rss:
                    wall, rc, errors = send(srv.port, path, os.path.join(root, "client.log"))
                if rc != 0 or errors or srv.count() != 1:
                    failures.append(f"{cls.name}: rc={rc} stored={srv.count()} {errors[:3]}")
                    continue
                row = {"server": cls.name, "wall": wall, "rss": rss.of_children() if cls is Yingyun else rss.of_root(),
                       "serve_rss": rss.of_root() if cls is Yingyun else None}
                if cls is Yingyun:
                    blobs = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(srv.data_dir, "blobs"))
                             for f in fs if f.endswith(".dcm")]
                    if len(blobs) != 1 or dataset_sha256(blobs[0]) != sent_sha:
                        failures.append(f"yingyun: stored data set differs from the one sent ({blobs})")
                        continue
                    token = subprocess.run([YINGYUN, "admin", "token", "add", "--name", "bench", "--all-hospitals",
                                            "--data-dir", srv.data_dir], check=True, capture_output=True,
                                           text=True).stdout.split("token:", 1)[1].strip()
                    url = (f"http://127.0.0.1:{srv.http}/dicomweb/studies/{ids['study']}/series/{ids['series']}"
                           f"/instances/{ids['sop']}")
                    h = hashlib.sha256()
                    row["wado"], got = read_through(hashed(wado_chunks(url, token), h))
                    row["wado_bytes"] = got
                    if got != os.path.getsize(blobs[0]):
                        failures.append(f"yingyun: WADO-RS returned {got} bytes of {os.path.getsize(blobs[0])}")
                    with open(blobs[0], "rb") as f:
                        if hashlib.file_digest(f, "sha256").hexdigest() != h.hexdigest():
                            failures.append("yingyun: WADO-RS bytes differ from the stored file")
                    row["local"], _ = read_through(file_chunks(blobs[0]))
                    if a.resend:
                        with PeakRss(srv.proc.pid) as rss2:
                            wall2, rc2, errors2 = send(srv.port, path, os.path.join(root, "client2.log"))
                        if rc2 != 0 or errors2 or srv.count() != 1:
                            failures.append(f"yingyun resend: rc={rc2} stored={srv.count()} {errors2[:3]}")
                        row["resend"], row["resend_rss"] = wall2, rss2.of_children()
                rows.append(row)
            finally:
                srv.stop()
                shutil.rmtree(root, ignore_errors=True)
                os.sync()
        if failures:
            print("FAILED: " + "; ".join(failures))
            return 2
        mb = size / 1e6
        print(f"\none instance of {mb:.1f} MB ({size / 2**30:.2f} GiB), storescu over loopback, one association"
              " (machine shared with other work: compare the rows, not the absolute figures)")
        print(f"{'C-STORE':<48s} {'wall s':>8s} {'MB/s':>8s} {'peak RSS MB':>14s}")
        for r in rows:
            what = ("storescp -od (page cache, no index; reference)" if r["server"] == "storescp"
                    else "yingyun serve (fsynced + indexed), receiver")
            print(f"{what:<48s} {r['wall']:8.2f} {mb / r['wall']:8.1f} {r['rss'] / 1e6:14.0f}")
            if r["serve_rss"] is not None:
                print(f"{'  yingyun serve process (HTTP, not receiving)':<48s} {'':>8s} {'':>8s} "
                      f"{r['serve_rss'] / 1e6:14.0f}")
        y = next(r for r in rows if r["server"] == "yingyun")
        print("yingyun: stored data set byte-identical to the one sent (SHA-256): yes")
        if "resend" in y:
            print(f"{'yingyun, the same instance again (duplicate)':<48s} {y['resend']:8.2f} {mb / y['resend']:8.1f} "
                  f"{y['resend_rss'] / 1e6:14.0f}")
        print(f"\n{'retrieve':<48s} {'wall s':>8s} {'MB/s':>8s}")
        wado_mb = y["wado_bytes"] / 1e6
        print(f"{'WADO-RS, Accept: application/dicom':<48s} {y['wado']:8.2f} {wado_mb / y['wado']:8.1f}")
        print(f"{'read of the stored file (reference)':<48s} {y['local']:8.2f} {wado_mb / y['local']:8.1f}")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
