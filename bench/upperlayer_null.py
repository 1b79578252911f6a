#!/usr/bin/env python3
"""Network-only C-STORE ceiling of yingyun's upper layer vs stock pynetdicom.

Starts each receiver as a child process on loopback with a *null* handler
(acknowledge, keep nothing), sends N small (~10 KiB) instances over one
association with

    TCP_NODELAY=1 /usr/bin/storescu -aet BENCH -aec YINGYUN +sd +r 127.0.0.1 PORT DIR

and prints instances/s (wall clock around storescu, median of the counted
rounds; round 0 is a warm-up).  Receivers, interleaved per round:

  yingyun      yingyun.dicomnet.server.UpperLayerServer, null Session
  pynetdicom   stock pynetdicom AE, StoragePresentationContexts, null handler
               (what /work/shared/bench-anchors/pynetdicom_scp.py does in "null")
  storescp     dcmtk storescp --ignore (reference ceiling), if installed

usage: bench/upperlayer_null.py [--count 2000] [--rounds 3] [--max-pdu N] [--size 64x76]
                                [--clients 1] [--only yingyun,pynetdicom,storescp] [--data DIR]

--clients N splits the 100-instance series folders over N parallel storescu
processes (N associations); storescp then runs without --fork, so its
figure for N > 1 is serialised and only indicative.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

STORESCU = "/usr/bin/storescu"  # absolute: pynetdicom installs a python 'storescu'
STORESCP = "/usr/bin/storescp"
PY = sys.executable
CLK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ children

def child_yingyun(port: int, max_pdu: int) -> None:
    import logging

    from yingyun.dicomnet.server import UpperLayerServer

    import threading

    logging.getLogger("yingyun.dicom").setLevel(logging.WARNING)
    lock = threading.Lock()
    total = [0]

    class NullSession:
        def __init__(self) -> None:
            self.count = 0

        def store(self, req, data) -> int:
            self.count += 1
            return 0x0000

        def find(self, sop_class_uid, identifier):
            return []

        def close(self, *, aborted: bool) -> None:
            with lock:
                total[0] += self.count
                print(f"total {total[0]}", flush=True)

    class Provider:
        def associate(self, info):
            return NullSession()

    server = UpperLayerServer(Provider(), ae_title="YINGYUN", host="127.0.0.1", port=port,
                              max_pdu=max_pdu)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    server.serve_forever()


def child_pynetdicom(port: int) -> None:
    import logging

    from pynetdicom import AE, StoragePresentationContexts, evt

    logging.getLogger("pynetdicom").setLevel(logging.ERROR)
    count = [0]

    def handle_store(event):
        count[0] += 1
        return 0x0000

    def handle_release(event):
        print(f"total {count[0]}", flush=True)

    ae = AE(ae_title="YINGYUN")
    ae.supported_contexts = StoragePresentationContexts
    ae.start_server(("127.0.0.1", port), block=True,
                    evt_handlers=[(evt.EVT_C_STORE, handle_store),
                                  (evt.EVT_CONN_CLOSE, handle_release)])


# ------------------------------------------------------------------ data

def generate(outdir: str, count: int, rows: int = 64, cols: int = 76) -> int:
    """CT-like int16 instances, one study, 100 per series; default ~10 KiB each."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    rng = np.random.default_rng(7)
    root = "1.2.826.0.1.3680043.8.498."
    study = generate_uid(prefix=root, entropy_srcs=["bench-study"])
    nbytes = 0
    for i in range(count):
        series_no = i // 100 + 1
        sop = generate_uid(prefix=root, entropy_srcs=["bench-sop", str(i)])
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = generate_uid(prefix=root, entropy_srcs=["bench-series", str(series_no)])
        ds.PatientName = "Bench^Null"
        ds.PatientID = "BENCH0001"
        ds.Modality = "CT"
        ds.SeriesNumber = series_no
        ds.InstanceNumber = i % 100 + 1
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.PixelData = rng.integers(-1000, 2000, size=(rows, cols), dtype=np.int16).tobytes()
        sub = os.path.join(outdir, f"s{series_no:02d}")
        os.makedirs(sub, exist_ok=True)
        path = os.path.join(sub, f"i{i:05d}.dcm")
        ds.save_as(path, enforce_file_format=True)
        nbytes += os.path.getsize(path)
    return nbytes


# ------------------------------------------------------------------ harness

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"receiver exited early rc={proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"receiver not listening on {port}")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def receiver_cmd(name: str, port: int, max_pdu: int) -> tuple[list[str], dict]:
    env = dict(os.environ)
    env.pop("TCP_NODELAY", None)
    if name == "storescp":
        env["TCP_NODELAY"] = "1"
        return [STORESCP, "--ignore", str(port)], env
    return [PY, os.path.abspath(__file__), f"--child-{name}", str(port), "--max-pdu", str(max_pdu)], env


def client_dirs(data: str, clients: int) -> list[list[str]]:
    """Split the series folders round-robin over the clients (one association each)."""
    if clients == 1:
        return [[data]]
    series = sorted(os.path.join(data, d) for d in os.listdir(data))
    return [series[i::clients] for i in range(clients)]


def run_once(name: str, data: str, count: int, max_pdu: int, workdir: str, clients: int = 1) -> dict:
    port = free_port()
    cmd, env = receiver_cmd(name, port, max_pdu)
    log_path = os.path.join(workdir, f"{name}.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
        try:
            wait_listening(port, proc)
            time.sleep(0.2)  # let the probe connection's association attempt settle
            cpu0 = cpu_seconds(proc.pid)
            client_env = dict(os.environ, TCP_NODELAY="1")
            t0 = time.perf_counter()
            procs = [subprocess.Popen([STORESCU, "-aet", "BENCH", "-aec", "YINGYUN", "+sd", "+r",
                                       "127.0.0.1", str(port), *dirs],
                                      env=client_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for dirs in client_dirs(data, clients)]
            rc = max(p.wait() for p in procs)
            wall = time.perf_counter() - t0
            cpu = cpu_seconds(proc.pid) - cpu0
            time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    stored = None
    with open(log_path, "rb") as f:
        for line in f.read().decode(errors="replace").splitlines():
            if line.startswith("total "):  # cumulative, printed as associations end
                stored = int(line.split()[1])
    ok = rc == 0 and (stored in (None, count) if name == "storescp" else stored == count)
    return {"name": name, "wall": wall, "cpu": cpu, "rc": rc, "stored": stored, "ok": ok}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-pdu", type=int, default=None,
                    help="max PDU yingyun advertises (default: the server's default)")
    ap.add_argument("--only", default="yingyun,pynetdicom,storescp")
    ap.add_argument("--clients", type=int, default=1, help="parallel storescu processes/associations")
    ap.add_argument("--data", default=None, help="reuse this folder of instances")
    ap.add_argument("--size", default="64x76", help="ROWSxCOLS of generated images (512x512 = CT)")
    ap.add_argument("--child-yingyun", type=int, metavar="PORT")
    ap.add_argument("--child-pynetdicom", type=int, metavar="PORT")
    args = ap.parse_args()

    if args.child_yingyun:
        from yingyun.dicomnet.server import DEFAULT_MAX_PDU
        child_yingyun(args.child_yingyun, DEFAULT_MAX_PDU if args.max_pdu is None else args.max_pdu)
        return
    if args.child_pynetdicom:
        child_pynetdicom(args.child_pynetdicom)
        return

    names = [n for n in args.only.split(",") if n != "storescp" or os.path.exists(STORESCP)]
    workdir = tempfile.mkdtemp(prefix="yy-bench-")
    try:
        data = args.data
        if data is None:
            data = os.path.join(workdir, "data")
            t0 = time.perf_counter()
            rows, cols = (int(v) for v in args.size.split("x"))
            nbytes = generate(data, args.count, rows, cols)
            print(f"generated {args.count} instances, {nbytes / args.count / 1024:.1f} KiB each, "
                  f"in {time.perf_counter() - t0:.1f}s")
        max_pdu = args.max_pdu if args.max_pdu is not None else -1
        results: dict[str, list[dict]] = {n: [] for n in names}
        for rnd in range(args.rounds + 1):
            for name in names:
                r = run_once(name, data, args.count, max_pdu if max_pdu >= 0 else _default_pdu(), workdir,
                             args.clients)
                tag = "warm-up" if rnd == 0 else f"round {rnd}"
                print(f"{tag:8s} {name:10s} wall={r['wall']:.3f}s {args.count / r['wall']:7.0f} inst/s "
                      f"server_cpu={r['cpu'] * 1000 / args.count:.3f} ms/inst rc={r['rc']} "
                      f"stored={r['stored']} {'ok' if r['ok'] else 'FAILED'}", flush=True)
                if rnd:
                    results[name].append(r)
        print()
        print(f"{'receiver':12s} {'median wall s':>13s} {'inst/s':>8s} {'server CPU ms/inst':>19s}  runs ok")
        for name, runs in results.items():
            wall = statistics.median(r["wall"] for r in runs)
            cpu = statistics.median(r["cpu"] for r in runs)
            print(f"{name:12s} {wall:13.3f} {args.count / wall:8.0f} {cpu * 1000 / args.count:19.3f}  "
                  f"{sum(r['ok'] for r in runs)}/{len(runs)}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _default_pdu() -> int:
    from yingyun.dicomnet.server import DEFAULT_MAX_PDU
    return DEFAULT_MAX_PDU


if __name__ == "__main__":
    main()
