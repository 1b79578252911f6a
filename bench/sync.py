#!/usr/bin/env python3
"""Gateway -> cloud forwarding speed (issue [4/6]).

1. Backlog: the cloud is down; 10,000 small instances are sent to the
   gateway with dcmtk storescu (4 associations) — that is the gateway's own
   C-STORE ingest rate, measured alone. Then the cloud starts and the
   backlog drains (gateway otherwise idle): instances/s forwarded, from the
   first instance in the cloud to the last (the time the gateway took to
   notice the cloud is back, its next probe, is printed apart).
   Target: drain rate >= 80% of the ingest rate.
2. Lag: with both up, instances are sent at a steady 50/s (pynetdicom, one
   association, TCP_NODELAY) and each one's time from C-STORE acknowledgement
   to being indexed in the cloud is measured. Target: p95 <= 2 s.

Both processes are real `yingyun gateway` / `yingyun cloud` over loopback,
each with its own SQLite database and folder. Same machine, same clock.

usage: bench/sync.py [--instances 10000] [--lag-seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.net import free_port, wait_http  # noqa: E402
YINGYUN = str(ROOT / ".venv" / "bin" / "yingyun")
KEY = "s" * 40
UIDROOT = "1.2.826.0.1.3680043.10.1404.77."


def make(path: Path, study: str, series: str, i: int) -> str:
    meta = FileMetaDataset()
    sop = generate_uid(prefix=UIDROOT)
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.PatientName, ds.PatientID, ds.Modality, ds.InstanceNumber = "Bench^Sync", "BS1", "OT", i + 1
    ds.Rows = ds.Columns = 64
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit, ds.PixelRepresentation = 15, 0
    ds.PixelData = np.random.default_rng(i).integers(0, 4000, (64, 64), dtype=np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return sop


def admin(data: Path, *args: str) -> None:
    subprocess.run([YINGYUN, "admin", *args, "--data-dir", str(data)], check=True, capture_output=True)


def pending(gw: Path) -> dict:
    out = subprocess.run([YINGYUN, "admin", "sync", "--json", "--data-dir", str(gw)], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)["pending"]


def cloud_count(cloud: Path) -> int:
    import sqlite3

    con = sqlite3.connect(f"file:{cloud / 'yingyun.db'}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute("select count(*) from instances").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", type=int, default=10000)
    ap.add_argument("--lag-seconds", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--cloud-args", default="", help="extra options of `yingyun cloud`")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="yingyun-bench-sync-"))
    procs: list[subprocess.Popen] = []
    try:
        cloud_dir, gw_dir, data = tmp / "cloud", tmp / "gw", tmp / "data"
        study = generate_uid(prefix=UIDROOT)
        print(f"generating {a.instances} instances ...", flush=True)
        for q in range(4):
            series = generate_uid(prefix=UIDROOT)
            (data / f"q{q}").mkdir(parents=True)
            for i in range(q, a.instances, 4):
                make(data / f"q{q}" / f"{i}.dcm", study, series, i)
        for d in (cloud_dir, gw_dir):  # admin commands use a data dir, never make one
            subprocess.run([YINGYUN, "db", "upgrade", "--data-dir", str(d)], check=True, capture_output=True)
        admin(cloud_dir, "hospital", "add", "--id", "h1", "--name", "H")
        admin(cloud_dir, "gateway", "add", "--id", "gw1", "--hospital", "h1", "--key", KEY)
        admin(gw_dir, "hospital", "add", "--id", "h1", "--name", "H")
        admin(gw_dir, "pacs", "add", "--ae-title", "BENCH", "--host", "127.0.0.1", "--port", "104", "--hospital", "h1")
        cport, gport, dport = free_port(), free_port(), free_port()
        curl = f"http://127.0.0.1:{cport}"
        gw = subprocess.Popen([YINGYUN, "gateway", "--data-dir", str(gw_dir), "--host", "127.0.0.1",
                               "--http-port", str(gport), "--dicom-port", str(dport), "--cloud-url", curl,
                               "--gateway-id", "gw1", "--gateway-key", KEY,
                               "--public-url", "https://film.example"], stdout=subprocess.DEVNULL,
                              stderr=open(tmp / "gw.log", "w"), start_new_session=True)
        procs.append(gw)
        wait_http(f"http://127.0.0.1:{gport}", timeout=120)  # healthy: its DICOM port serves too

        # 1a. the gateway's own ingest, alone (the cloud is not running: everything queues)
        t0 = time.perf_counter()
        senders = [subprocess.Popen(["/usr/bin/storescu", "-aet", "BENCH", "-aec", "YINGYUN", "+sd", "127.0.0.1",
                                     str(dport), str(data / f"q{q}")], env={"TCP_NODELAY": "1"},
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for q in range(4)]
        if any(p.wait() != 0 for p in senders):
            raise SystemExit("storescu failed")
        ingest_s = time.perf_counter() - t0
        ingest_rate = a.instances / ingest_s
        backlog = pending(gw_dir)["instances"]
        print(f"gateway ingest alone: {a.instances} instances in {ingest_s:.2f} s = {ingest_rate:.0f} inst/s "
              f"(backlog {backlog})", flush=True)
        if backlog != a.instances:
            raise SystemExit(f"expected a backlog of {a.instances}, found {backlog}")

        # 1b. the cloud comes up: the backlog drains
        cloud = subprocess.Popen([YINGYUN, "cloud", "--data-dir", str(cloud_dir), "--host", "127.0.0.1",
                                  "--http-port", str(cport), *a.cloud_args.split()], stdout=subprocess.DEVNULL,
                                 stderr=open(tmp / "cloud.log", "w"), start_new_session=True)
        procs.append(cloud)
        wait_http(curl, timeout=120)
        t0 = time.perf_counter()
        first = None  # the gateway probes a down link at most 15 s apart: the drain starts at its next probe
        while (n_cloud := cloud_count(cloud_dir)) < a.instances:
            if first is None and n_cloud:
                first = time.perf_counter()
            time.sleep(0.05)
            if time.perf_counter() - t0 > 1800:
                raise SystemExit("the backlog did not drain in 30 minutes")
        end = time.perf_counter()
        first = first or end
        drain_s = end - first
        drain_rate = a.instances / drain_s
        ratio = drain_rate / ingest_rate
        print(f"backlog drained:      {a.instances} instances in {drain_s:.2f} s = {drain_rate:.0f} inst/s "
              f"= {ratio:.0%} of ingest  [{'OK' if ratio >= 0.8 else 'BELOW TARGET'}: >= 80%]; the first arrived "
              f"{first - t0:.1f} s after the cloud was up (next link probe), all {end - t0:.1f} s after", flush=True)

        # 2. lag at a steady rate
        from pynetdicom import AE
        import pydicom

        lag_dir = tmp / "lag"
        lag_dir.mkdir()
        n = int(a.lag_seconds * a.rate)
        files = [lag_dir / f"{i}.dcm" for i in range(n)]
        series = generate_uid(prefix=UIDROOT)
        sops = [make(f, study, series, 100000 + i) for i, f in enumerate(files)]
        datasets = [pydicom.dcmread(f) for f in files]
        ae = AE(ae_title="BENCH")
        ae.add_requested_context("1.2.840.10008.5.1.4.1.1.7", ExplicitVRLittleEndian)
        assoc = ae.associate("127.0.0.1", dport, ae_title="YINGYUN")
        assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        acked: dict[str, float] = {}
        start = time.time()
        for i, ds in enumerate(datasets):
            target = start + i / a.rate
            delay = target - time.time()
            if delay > 0:
                time.sleep(delay)
            status = assoc.send_c_store(ds)
            if status.Status != 0:
                raise SystemExit(f"C-STORE failed 0x{status.Status:04X}")
            acked[sops[i]] = time.time()
        assoc.release()
        import sqlite3

        deadline = time.time() + 120
        seen: dict[str, float] = {}
        while len(seen) < n and time.time() < deadline:
            con = sqlite3.connect(f"file:{cloud_dir / 'yingyun.db'}?mode=ro", uri=True, timeout=30)
            for sop, at in con.execute("select sop_uid, received_at from instances where series_uid = ?", (series,)):
                seen[sop] = at
            con.close()
            time.sleep(0.2)
        if len(seen) < n:
            raise SystemExit(f"only {len(seen)} of {n} arrived")
        lags = sorted(seen[s] - acked[s] for s in sops)
        p50, p95 = statistics.median(lags), lags[int(0.95 * (len(lags) - 1))]
        print(f"lag at {a.rate:.0f} inst/s over {a.lag_seconds:.0f} s: p50 {p50 * 1000:.0f} ms, "
              f"p95 {p95 * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms  "
              f"[{'OK' if p95 <= 2 else 'BELOW TARGET'}: p95 <= 2 s]")
        print(json.dumps({"ingest_per_s": ingest_rate, "drain_per_s": drain_rate, "drain_ratio": ratio,
                          "reconnect_s": first - t0,
                          "lag_p50_s": p50, "lag_p95_s": p95, "lag_max_s": lags[-1]}))
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
