#!/usr/bin/env python3
"""Sustained /ris/study/add throughput and latency (issue: >= 1,000 req/s, p99 <= 25 ms).

Starts `yingyun serve` on SQLite (and on a throwaway PostgreSQL), then drives
it with wrk: 16 connections, closed loop, every request a full signed
payload for a new study. The signature is made once per run (it stays
valid for the 300 s window). Every acknowledged request is durable
(SQLite synchronous=FULL; PostgreSQL synchronous_commit on) — the script
checks the row count afterwards equals the requests wrk saw answered.

usage: bench/ris_api.py [--seconds 20] [--workers 2] [--connections 16] [--db sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.support.net import free_port  # noqa: E402
from tests.support.pg import PostgresServer  # noqa: E402
from yingyun.contract.signing import sign  # noqa: E402

YINGYUN = str(ROOT / ".venv" / "bin" / "yingyun")

LUA = r"""
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread:set("id", thread_id)
  thread_id = thread_id + 1
end
function init(args)
  counter = 0
end
request = function()
  counter = counter + 1
  local sid = RUN .. "-" .. id .. "-" .. counter
  local body = string.format(BODY_TEMPLATE, sid, sid)
  return wrk.format("POST", "/ris/study/add", HEADERS, body)
end
done = function(summary, latency, requests)
  io.write(string.format("JSON {\"requests\": %d, \"errors\": %d, \"non2xx\": %d, \"duration_us\": %d, " ..
                         "\"p50_us\": %d, \"p90_us\": %d, \"p99_us\": %d, \"max_us\": %d}\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""

STUDY = {
    "patientId": "P%s", "patientName": "张三丰", "patientSex": "M", "studyId": "%s", "accessNumber": "ACC",
    "modality": "CT", "patientAge": "45", "patientAgeUnit": "Y", "patientBirthday": "1980-01-01", "size": "1.75",
    "weight": "70", "phoneNum": "13800138000", "medicalInsuranceNum": "MI123456", "idCardNum": "11010519491231002X",
    "hkAndMarcoPermitNum": "", "passportNum": "", "otherInfo": "", "homeAddress": "北京市朝阳区",
    "bodyPart": "胸部", "studyDesc": "胸部CT平扫", "studyDate": "2026-11-26 09:30:00",
    "appointDate": "2026-11-26 09:00:00",
    "scanMode": "平扫", "studyCategory": "normal", "applyDept": "呼吸科", "applyDoctor": "王医生", "applyDeptId": "D01",
    "applyDoctorId": "DR01", "hisNum": "H0001", "clinicNum": "C0001", "examDept": "放射科", "examDoctor": "李技师",
    "examDeptId": "D09", "examDoctorId": "DR09", "status": "registered", "studyUid": "1.2.3.4.5",
    "imageCnt": 300, "reportCnt": 1, "pdfCnt": 0, "seriesCnt": 3,
}


# Requests the server answered with code 0, from its own /metrics.
CODE0_METRIC = (r'yingyun_http_requests_total\{code="0",method="POST",route="/ris/study/add",status="200"\} '
                r'([0-9.e+]+)')


def lua_script(app_id: str, token: str, run: str) -> str:
    ts = str(int(time.time() * 1000))
    headers = {"Content-Type": "application/json", "appId": app_id, "timestamp": ts,
               "signature": sign(app_id, token, ts)}
    body = json.dumps(STUDY, ensure_ascii=False).replace("%", "%%").replace("P%%s", "P%s").replace('"%%s"', '"%s"')
    lua_headers = "{" + ", ".join(f'["{k}"] = "{v}"' for k, v in headers.items()) + "}"
    return f"RUN = \"{run}\"\nHEADERS = {lua_headers}\nBODY_TEMPLATE = [[{body}]]\n" + LUA


def run_server(data_dir: Path, db_url: str | None, port: int, workers: int, *extra: str) -> subprocess.Popen:
    env = dict(os.environ)
    args = [YINGYUN, "serve", "--data-dir", str(data_dir), "--http-port", str(port), "--host", "127.0.0.1",
            "--dicom-port", str(free_port()), "--workers", str(workers), "--dicom-workers", "1", *extra]
    if db_url:
        args += ["--database-url", db_url]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=open(data_dir / "serve.log", "w"))
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start: " + (data_dir / "serve.log").read_text()[-2000:])


def wait_partner(port: int, app_id: str, token: str) -> None:
    """Until every HTTP worker knows the partner (their registries refresh every few seconds)."""
    deadline = time.time() + 30
    while time.time() < deadline:
        ts = str(int(time.time() * 1000))
        r = httpx.post(f"http://127.0.0.1:{port}/ris/getStudyQR", json={"studyId": "none"},
                       headers={"appId": app_id, "timestamp": ts, "signature": sign(app_id, token, ts)})
        if r.json()["code"] != 90001:
            return
        time.sleep(0.2)
    raise RuntimeError("the server never saw the partner")


def admin(data_dir: Path, db_url: str | None, *args: str) -> str:
    cmd = [YINGYUN, "admin", *args, "--data-dir", str(data_dir)]
    if db_url:
        cmd += ["--database-url", db_url]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def count_studies(data_dir: Path, db_url: str | None) -> int:
    code = ("import sys; from sqlalchemy import create_engine, text; "
            "e = create_engine(sys.argv[1]); print(e.connect().execute(text('select count(*) from studies')).scalar())")
    url = db_url or f"sqlite:///{data_dir / 'yingyun.db'}"
    out = subprocess.run([str(ROOT / ".venv/bin/python"), "-c", code, url], check=True, capture_output=True, text=True)
    return int(out.stdout.strip())


def bench(kind: str, seconds: int, workers: int, connections: int, pg: PostgresServer | None) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix=f"yingyun-bench-{kind}-"))
    db_url = pg.create_database() if pg else None
    try:
        port = free_port()
        # The server's first start makes the data dir and the schema; admin commands only use them.
        proc = run_server(data_dir, db_url, port, workers)
        try:
            admin(data_dir, db_url, "hospital", "add", "--id", "bh", "--name", "Bench Hospital")
            token = "b" * 32
            admin(data_dir, db_url, "partner", "add", "--app-id", "bench", "--token", token, "--hospital", "bh")
            wait_partner(port, "bench", token)
            script = data_dir / "post.lua"
            script.write_text(lua_script("bench", token, "warm"))
            # warm-up
            subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", "3s", "-s", str(script),
                            f"http://127.0.0.1:{port}"], check=True, capture_output=True, text=True)
            before = count_studies(data_dir, db_url)
            script.write_text(lua_script("bench", token, "run"))
            out = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency",
                                  "-s", str(script), f"http://127.0.0.1:{port}"],
                                 check=True, capture_output=True, text=True).stdout
            stats = json.loads(re.search(r"JSON (\{.*\})", out).group(1))
            # every request answered must be a durable row (wrk may leave a few in flight at the end)
            time.sleep(1)
            after = count_studies(data_dir, db_url)
            code_ok = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        rows = after - before
        return {
            "db": kind, "workers": workers, "connections": connections,
            "req_per_s": stats["requests"] / (stats["duration_us"] / 1e6),
            "p50_ms": stats["p50_us"] / 1000, "p90_ms": stats["p90_us"] / 1000, "p99_ms": stats["p99_us"] / 1000,
            "max_ms": stats["max_us"] / 1000, "requests": stats["requests"], "errors": stats["errors"],
            "non2xx": stats["non2xx"], "rows_written": rows,
            "code0": sum(float(m.group(1)) for m in re.finditer(CODE0_METRIC, code_ok)),
        }
    finally:
        if os.environ.get("KEEP"):
            print("kept", data_dir)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--db", default="sqlite,postgresql")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: run scripts/install-system-deps.sh")
    print(f"machine: {os.cpu_count()} cores; wrk -t2 -c{a.connections}, {a.seconds}s, server --workers {a.workers}")
    results = []
    pg = None
    try:
        for kind in a.db.split(","):
            if kind == "postgresql" and pg is None:
                pg = PostgresServer().start()
            results.append(bench(kind, a.seconds, a.workers, a.connections, pg if kind == "postgresql" else None))
            r = results[-1]
            verdict = "OK" if r["req_per_s"] >= 1000 and r["p99_ms"] <= 25 else "BELOW TARGET"
            print(f"{r['db']:<11} {r['req_per_s']:8.0f} req/s  p50 {r['p50_ms']:6.2f} ms  p90 {r['p90_ms']:6.2f} ms  "
                  f"p99 {r['p99_ms']:6.2f} ms  max {r['max_ms']:7.1f} ms  errors {r['errors']} non2xx {r['non2xx']}  "
                  f"rows {r['rows_written']} (wrk saw {r['requests']})  [{verdict}: >=1000 req/s, p99<=25 ms]")
    finally:
        if pg:
            pg.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
