#!/usr/bin/env python3
"""From a final report's commit to the hospital's RIS receiving it (issue 15, "Performance").

Each report is made final as the reading core does it (accept_report, then archive.downlink.queue_report_down
in the same transaction), one at a time at a steady pace, in the database of a running server; the time from
that transaction's commit to the RIS receiver (an HTTP server in this process that checks the vendor's
signature) taking the POST is measured per report.

1. serve: one `yingyun serve` process delivering directly. Target: p95 <= 2 s.
2. split: a `yingyun cloud` and a `yingyun gateway` process; the report goes down the sync link (the gateway
   asks every 2 s) and the gateway delivers it. Target: p95 <= 5 s.

Real processes over loopback, each with its own SQLite database. The load (os.getloadavg) is printed with the
figures: on a shared machine they are upper bounds.

usage: bench/ris_delivery.py [--reports 40] [--rate 4]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.net import free_port, wait_http  # noqa: E402
from tests.support.ris_peers import RisReceiver  # noqa: E402
from yingyun.archive.accept import accept_report, accept_study  # noqa: E402
from yingyun.archive.downlink import queue_report_down  # noqa: E402
from yingyun.archive.events import NoEvents  # noqa: E402
from yingyun.contract import gateway_api as g  # noqa: E402
from yingyun.contract.params import parse  # noqa: E402
from yingyun.runtime import Runtime  # noqa: E402
from yingyun.settings import Settings  # noqa: E402
from yingyun.storage.db import default_sqlite_url  # noqa: E402

YINGYUN = str(ROOT / ".venv" / "bin" / "yingyun")
KEY = "b" * 40
TOKEN = "t" * 32


def admin(data: Path, *args: str) -> None:
    subprocess.run([YINGYUN, "admin", *args, "--data-dir", str(data)], check=True, capture_output=True)


def prepare(data: Path) -> None:
    subprocess.run([YINGYUN, "db", "upgrade", "--data-dir", str(data)], check=True, capture_output=True)
    admin(data, "hospital", "add", "--id", "h1", "--name", "一院")


def start(args: list[str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as err:
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)


def stop(*procs: subprocess.Popen) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=30)


def sign_off(rt: Runtime, i: int, tag: str) -> float:
    """One report made final (a study of its own); the time its transaction committed."""
    uid = f"1.2.826.0.1.3680043.10.1515.{tag}.{i}"
    with rt.db.write() as conn:
        accept_study(conn, vault=rt.vault, hospital_id="h1", source="ris1", events=NoEvents(), record=parse(
            g.STUDY_FIELDS, {"patientId": f"P{i}", "patientName": "测试", "patientSex": "M", "studyId": f"S{i}",
                             "accessNumber": f"A{i}", "modality": "CT", "studyUid": uid}))
        accept_report(conn, vault=rt.vault, hospital_id="h1", source="cloud", events=NoEvents(), record=parse(
            g.REPORT_FIELDS, {"reportNumber": f"R{i}", "studyId": f"S{i}", "accessNumber": f"A{i}",
                              "imageDescription": "所见" * 50, "conclusion": "结论", "auditDoctor": "王主任"}))
        queue_report_down(conn, study_uid=uid)
    return time.time()


def run(rt: Runtime, receiver: RisReceiver, n: int, rate: float, tag: str, timeout: float) -> list[float]:
    committed: dict[str, float] = {}
    for i in range(n):
        committed[f"R{i}"] = sign_off(rt, i, tag)
        time.sleep(1 / rate)
    deadline = time.time() + timeout
    while len(receiver.accepted) < n and time.time() < deadline:
        time.sleep(0.05)
    arrived = {got.body["reportNumber"]: got.at for got in receiver.accepted}
    if len(receiver.accepted) != n or set(arrived) != set(committed):
        raise SystemExit(f"{tag}: {len(receiver.accepted)} deliveries for {n} reports")
    return sorted(arrived[k] - committed[k] for k in committed)


def show(tag: str, lat: list[float], target: float) -> None:
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
    verdict = "ok" if p(0.95) <= target else "OVER TARGET"
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{tag:6s} reports={len(lat)}  p50={p(0.5):.2f}s  p95={p(0.95):.2f}s  max={lat[-1]:.2f}s  "
          f"target p95<={target:g}s: {verdict}   load {load} ({os.cpu_count()} cpus)")


def open_runtime(data: Path, role: str) -> Runtime:
    return Runtime.open(Settings(data_dir=data, database_url=default_sqlite_url(data), role=role,
                                 dicom_enabled=False), create_keys=False, migrate=False)


def bench_serve(tmp: Path, n: int, rate: float) -> list[float]:
    data = tmp / "serve"
    prepare(data)
    admin(data, "partner", "add", "--app-id", "ris1", "--token", TOKEN, "--hospital", "h1")
    receiver = RisReceiver("ris1", TOKEN).up()
    port = free_port()
    proc = start([YINGYUN, "serve", "--data-dir", str(data), "--host", "127.0.0.1", "--http-port", str(port),
                  "--dicom-port", str(free_port()), "--dicom-workers", "1", "--ris-report-url", receiver.url,
                  "--log-level", "WARNING"], tmp / "serve.log")
    try:
        wait_http(f"http://127.0.0.1:{port}")
        rt = open_runtime(data, "serve")
        try:
            return run(rt, receiver, n, rate, "serve", timeout=60)
        finally:
            rt.close()
    finally:
        stop(proc)
        receiver.down()


def bench_split(tmp: Path, n: int, rate: float) -> list[float]:
    cloud_dir, gw_dir = tmp / "cloud", tmp / "gateway"
    prepare(cloud_dir)
    prepare(gw_dir)
    admin(cloud_dir, "gateway", "add", "--id", "gw1", "--hospital", "h1", "--key", KEY)
    admin(gw_dir, "partner", "add", "--app-id", "ris1", "--token", TOKEN, "--hospital", "h1")
    receiver = RisReceiver("ris1", TOKEN).up()
    cloud_port, gw_port = free_port(), free_port()
    cloud = start([YINGYUN, "cloud", "--data-dir", str(cloud_dir), "--host", "127.0.0.1", "--http-port",
                   str(cloud_port), "--log-level", "WARNING"], tmp / "cloud.log")
    gateway = start([YINGYUN, "gateway", "--data-dir", str(gw_dir), "--host", "127.0.0.1", "--http-port",
                     str(gw_port), "--dicom-port", str(free_port()), "--dicom-workers", "1",
                     "--cloud-url", f"http://127.0.0.1:{cloud_port}", "--gateway-id", "gw1", "--gateway-key", KEY,
                     "--public-url", "https://film.example.test", "--ris-report-url", receiver.url,
                     "--log-level", "WARNING"], tmp / "gateway.log")
    try:
        wait_http(f"http://127.0.0.1:{cloud_port}")
        wait_http(f"http://127.0.0.1:{gw_port}")
        rt = open_runtime(cloud_dir, "cloud")
        try:
            return run(rt, receiver, n, rate, "split", timeout=120)
        finally:
            rt.close()
    finally:
        stop(gateway, cloud)
        receiver.down()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reports", type=int, default=40)
    ap.add_argument("--rate", type=float, default=4.0, help="reports made final per second")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ris-"))
    try:
        show("serve", bench_serve(tmp, args.reports, args.rate), 2.0)
        show("split", bench_split(tmp, args.reports, args.rate), 5.0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
