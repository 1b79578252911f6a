#!/usr/bin/env python3
"""HL7 ORM^O01 intake over one MLLP connection (issue 17: >= 1,000 messages/s, ACK after the commit).

Starts `yingyun serve --hl7-port` on SQLite (and on a throwaway PostgreSQL),
registers a sender, then sends ORM^O01 new orders on one connection kept
open, as an interface engine does: each message waits for its ACK before the
next goes (an AA is sent only once the study is committed: SQLite
synchronous=FULL, PostgreSQL synchronous_commit on). Every message is a new
study; afterwards the studies are counted and must equal the AAs received.

Then the same with 32 messages in flight on the one connection (an engine
that does not wait for each ACK: the listener commits what arrived together
in one transaction, and still ACKs each only after it). Reference, measured
in the same run on the same server: the same studies as
`/ris/study/add` JSON over one keep-alive HTTP connection, one request at a time.

usage: bench/hl7_intake.py [--seconds 10] [--db sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT.parent / "src"))

from ris_api import STUDY, admin, count_studies, run_server  # noqa: E402

from tests.support.net import free_port  # noqa: E402
from tests.support.pg import PostgresServer  # noqa: E402
from yingyun.contract.signing import sign  # noqa: E402

FACILITY = "BENCHRIS"
END = b"\x1c\r"


def orm(n: int, run: str) -> bytes:
    order = f"{run}-{n}"
    return ("\r".join([
        f"MSH|^~\\&|RIS|{FACILITY}|YINGYUN|YY|20261202101500||ORM^O01^ORM_O01|{order}|P|2.5.1|||AL|NE|CHN"
        "|UNICODE UTF-8",
        f"PID|1||P{order}^^^H^MR~11010519491231002X^^^CHN^NNCHN||张^三丰||19800101|M|||北京市朝阳区||13800138000",
        "PV1|1|O|RAD^^^H||||||||||||||||C0001",
        f"ORC|NW|PL{order}|{order}||SC||^^^20261126090000^^R||20261126093000|||DR01^王^医生|||||D01^呼吸科",
        f"OBR|1|PL{order}|{order}|CTCHEST^胸部CT平扫|||20261126093000||||||咳嗽||^^^胸部|DR01^王^医生||ACC{order}"
        "||||||CT",
    ]) + "\r").encode()


def exchange(sock: socket.socket, message: bytes) -> bytes:
    sock.sendall(b"\x0b" + message + END)
    reply = b""
    while not reply.endswith(END):
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError("the listener closed the connection")
        reply += chunk
    return reply


def hl7_run(port: int, run: str, seconds: float) -> tuple[int, list[float]]:
    """(AAs, per-message seconds) of `seconds` of sending on one connection."""
    latencies: list[float] = []
    accepted = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        deadline = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            t = time.perf_counter()
            reply = exchange(sock, orm(n, run))
            latencies.append(time.perf_counter() - t)
            if b"MSA|AA|" in reply:
                accepted += 1
            else:
                raise RuntimeError(f"not accepted: {reply!r}")
    return accepted, latencies


def pipelined_run(port: int, run: str, seconds: float, window: int) -> int:
    """AAs of `seconds` with `window` messages in flight on one connection (an engine that does not wait
    for each ACK before the next message; each ACK still comes only after its commit)."""
    accepted = sent = 0
    buffer = b""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        deadline = time.perf_counter() + seconds
        sock.sendall(b"".join(b"\x0b" + orm(sent + i, run) + END for i in range(window)))
        sent = window
        while accepted < sent:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError("the listener closed the connection")
            buffer += chunk
            done = buffer.count(END)
            if b"MSA|AA|" not in buffer and done:
                raise RuntimeError(f"not accepted: {buffer[:300]!r}")
            accepted += done
            buffer = buffer[buffer.rfind(END) + 2:] if done else buffer
            if time.perf_counter() < deadline and done:
                sock.sendall(b"".join(b"\x0b" + orm(sent + i, run) + END for i in range(done)))
                sent += done
    return accepted


def ris_run(port: int, token: str, run: str, seconds: float) -> int:
    ts = str(int(time.time() * 1000))
    headers = {"appId": "bench", "timestamp": ts, "signature": sign("bench", token, ts)}
    done = 0
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            body = dict(STUDY, studyId=f"{run}-{done}", patientId=f"P{run}-{done}")
            if client.post("/ris/study/add", json=body).json()["code"] != 0:
                raise RuntimeError("RIS refused")
            done += 1
    return done


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def bench(kind: str, seconds: float, pg: PostgresServer | None) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix=f"yingyun-bench-hl7-{kind}-"))
    db_url = pg.create_database() if pg else None
    http_port, hl7_port = free_port(), free_port()
    try:
        proc = run_server(data_dir, db_url, http_port, 1, "--hl7-port", str(hl7_port))
        try:
            admin(data_dir, db_url, "hospital", "add", "--id", "bh", "--name", "Bench Hospital")
            token = "b" * 32
            admin(data_dir, db_url, "partner", "add", "--app-id", "bench", "--token", token, "--hospital", "bh")
            admin(data_dir, db_url, "hl7-sender", "add", "--facility", FACILITY, "--host", "127.0.0.1",
                  "--hospital", "bh")
            time.sleep(3)  # the listener's sender registry refreshes every 2 s
            hl7_run(hl7_port, "warm", 2)
            ris_run(http_port, token, "warmris", 2)
            before = count_studies(data_dir, db_url)
            accepted, latencies = hl7_run(hl7_port, "run", seconds)
            rows = count_studies(data_dir, db_url) - before
            t = time.perf_counter()
            piped = pipelined_run(hl7_port, "piped", seconds, 32)
            piped_rate = piped / (time.perf_counter() - t)
            reference = ris_run(http_port, token, "ris", seconds)
            metrics = httpx.get(f"http://127.0.0.1:{http_port}/metrics").text
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        counted = [line for line in metrics.splitlines() if line.startswith('yingyun_hl7_messages_total{ack="AA"')]
        return {"db": kind, "msg_per_s": accepted / seconds, "p50_ms": percentile(latencies, 0.5) * 1000,
                "p99_ms": percentile(latencies, 0.99) * 1000, "acks": accepted, "rows_written": rows,
                "pipelined_32_msg_per_s": piped_rate,
                "ris_one_connection_req_per_s": reference / seconds, "metrics": counted}
    finally:
        if os.environ.get("KEEP"):
            print("kept", data_dir)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--db", default="sqlite,postgresql")
    a = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; one MLLP connection, {a.seconds:g} s each")
    results = []
    pg = None
    try:
        for kind in a.db.split(","):
            if kind == "postgresql" and pg is None:
                pg = PostgresServer().start()
            r = bench(kind, a.seconds, pg if kind == "postgresql" else None)
            results.append(r)
            verdict = "OK" if r["msg_per_s"] >= 1000 and r["rows_written"] == r["acks"] else "BELOW TARGET"
            print(f"{r['db']:<11} HL7 ORM {r['msg_per_s']:7.0f} msg/s  p50 {r['p50_ms']:5.2f} ms  "
                  f"p99 {r['p99_ms']:5.2f} ms  AA {r['acks']} rows {r['rows_written']}  "
                  f"[{verdict}: >= 1000 msg/s, every AA a row]   32 in flight: {r['pipelined_32_msg_per_s']:.0f} msg/s"
                  f"   reference /ris/study/add, one connection: {r['ris_one_connection_req_per_s']:.0f} req/s")
    finally:
        if pg:
            pg.stop()
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
