#!/usr/bin/env python3
"""Internet-hospital API: patientStudies latency and callback delivery rate.

Targets (issue 6): patientStudies p95 <= 30 ms with 100,000 studies of
20,000 patients indexed, on SQLite and PostgreSQL; status callbacks
delivered at >= 200/s to a local receiver.

For each database: index 100,000 studies (5 per patient, over three
hospitals in two unions; a tenth of the patients known by phone only; 60 %
of the studies with a report, half with DICOM), start the real app over
HTTP, and ask for random patients' studies (dataFlag 0, signed and
encrypted like a partner) one request at a time:

* "first ask": links are minted for the patient's studies (a write);
* "asked again": the same patients within the reuse period (read only);
* "4 clients": four partners' threads at once, first asks.

Then enqueue callbacks for 3,000 studies (through the record events, as
ingest does) and time the delivery worker posting them, signed and with
encrypted identity fields, to a local receiver that answers {"code": 0}.

usage: bench/hospital_api.py [--db sqlite,postgresql] [--studies 100000] [--requests 1000] [--callbacks 3000]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import insert, select  # noqa: E402

from tests.support.net import free_port  # noqa: E402
from tests.support.pg import PostgresServer  # noqa: E402
from tests.support.servers import ServerThread  # noqa: E402
from yingyun.cloud.callbacks.config import DeliveryConfig  # noqa: E402
from yingyun.cloud.callbacks.events import KIND  # noqa: E402
from yingyun.cloud.hospital_api import HospitalApiConfig  # noqa: E402
from yingyun.contract.identity import encrypt_field  # noqa: E402
from yingyun.contract.signing import signed_headers  # noqa: E402
from yingyun.runtime import Runtime  # noqa: E402
from yingyun.settings import Settings  # noqa: E402
from yingyun.storage import schema as s  # noqa: E402
from yingyun.storage.db import default_sqlite_url  # noqa: E402

TOKEN = "bench-token-0123456789abcdefghij"
HOSPITALS = ("h1", "h2", "h3")


def id_card(i: int) -> str:
    return f"11010519{i:08d}{i % 10}"[:17] + "X"


def phone(i: int) -> str:
    return f"139{i:08d}"


def seed(rt: Runtime, n_studies: int, callback_url: str) -> int:
    t = rt.tenancy
    t.add_union(union_id="u1", name="一")
    t.add_union(union_id="u2", name="二")
    for h, u in (("h1", "u1"), ("h2", "u1"), ("h3", "u2")):
        t.add_hospital(hospital_id=h, name=h, union_id=u)
    t.add_partner(app_id="bench", token=TOKEN, unions=["u1"], hospitals=["h3"], callback_url=callback_url,
                  mini_app_id="wx1", mini_path="pages/s?r={reportId}")
    patients = n_studies // 5
    vault, rnd, now = rt.vault, random.Random(7), time.time()
    rows, reports, dicom = [], [], []
    for p in range(patients):
        phone_only = p % 10 == 0
        ident = {"phoneNum": phone(p)} if phone_only else {"idCardNum": id_card(p), "phoneNum": phone(p)}
        enc = vault.encrypt(orjson.dumps(ident).decode())
        idh = None if phone_only else vault.id_card_hash(id_card(p))
        ph = vault.phone_hash(phone(p))
        for k in range(5):
            sid = f"S{p}-{k}"
            h = HOSPITALS[rnd.randrange(3)]
            rows.append({
                "hospital_id": h, "study_id": sid, "access_number": "A" + sid, "patient_id": f"P{p}",
                "patient_name": f"病人{p}", "patient_sex": "M", "modality": "US" if k == 4 else "CT",
                "body_part": "胸部", "study_desc": "胸部CT",
                "study_date": f"2026-{1 + k:02d}-{1 + p % 28:02d} 09:00:00",
                "status": "final", "his_num": "H" + sid, "id_card_hash": idh, "phone_hash": ph, "identity_enc": enc,
                "details": '{"applyDoctor": "李医生", "applyDept": "内科"}', "raw_values": "{}", "warnings": "[]",
                "version": 1, "deleted": False, "created_at": now, "updated_at": now})
            if rnd.random() < 0.6:
                reports.append({
                    "hospital_id": h, "report_number": "R" + sid, "study_id": sid, "access_number": "A" + sid,
                    "image_description": "…", "conclusion": "未见异常", "raw_values": "{}", "warnings": "[]",
                    "version": 1, "created_at": now, "updated_at": now})
    with rt.db.write() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(insert(s.studies), rows[i:i + 5000])
        for i in range(0, len(reports), 5000):
            conn.execute(insert(s.reports), reports[i:i + 5000])
        pks = [r.pk for r in conn.execute(select(s.studies.c.pk, s.studies.c.hospital_id))]
    for n, pk in enumerate(pks):
        if n % 2 == 0:
            dicom.append({
                "hospital_id": HOSPITALS[n % 3], "study_uid": f"1.2.3.{pk}", "ris_study_pk": pk, "modalities": "CT",
                "n_series": 1, "n_images": 100, "n_sr": 0, "n_pdf": 0, "n_documents": 0, "size_bytes": 1,
                "first_instance_at": now, "last_instance_at": now, "stable": True, "stable_at": now,
                "stable_generation": 1})
    with rt.db.write() as conn:
        for i in range(0, len(dicom), 5000):
            conn.execute(insert(s.dicom_studies), dicom[i:i + 5000])
    # Table statistics, as a live database has them (autovacuum on PostgreSQL analyses
    # a table after a tenth of it changed): without them the planner of a freshly
    # bulk-loaded PostgreSQL guesses, and scans.
    with rt.db.write() as conn:
        conn.exec_driver_sql("ANALYZE")
    return patients


def body_for(p: int) -> bytes:
    return orjson.dumps({"phoneNum": encrypt_field(phone(p), TOKEN),
                         "idNum": encrypt_field(id_card(p), TOKEN),
                         "hospitalId": "h1", "unionId": "u1", "studyType": 0, "dataFlag": 0, "usage": 0,
                         "studyDateBegin": "2026-01-01 00:00:00", "studyDateEnd": "2026-12-31 23:59:59"})


def ask(client: httpx.Client, patients: list[int]) -> tuple[list[float], int]:
    lat, found = [], 0
    for p in patients:
        content = body_for(p)
        t0 = time.perf_counter()
        r = client.post("/thirdparty/patientStudies/bench", content=content,
                        headers={"Content-Type": "application/json", **signed_headers("bench", TOKEN)})
        lat.append(time.perf_counter() - t0)
        answer = r.json()
        assert answer["code"] == 0, answer
        found += len(answer["data"])
    return lat, found


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


SINK = r"""
import asyncio, sys
count = 0
OK = b'{"code":0,"message":"ok"}'
ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(OK)) + OK

async def handle(reader, writer):
    # A lean HTTP/1.1 keep-alive endpoint (what a partner's nginx or Java service is to
    # us): the Python standard library's server would be the bottleneck being measured.
    global count
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            if head.startswith(b"GET"):
                out = str(count).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(out) + out)
            else:
                count += 1
                writer.write(ANSWER)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


class Sink:
    """The partner's endpoint, in its own process: answers {"code": 0}, HTTP/1.1 keep-alive."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-c", SINK, str(self.port)], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cb"

    @property
    def count(self) -> int:
        return int(httpx.get(f"http://127.0.0.1:{self.port}/count", timeout=10).text)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def run(kind: str, pg: PostgresServer | None, a) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="yy-bench-hapi-"))
    url = pg.create_database() if pg else default_sqlite_url(tmp / "data")
    port = free_port()
    rt = Runtime.open(Settings(data_dir=tmp / "data", database_url=url, public_url=f"http://127.0.0.1:{port}"),
                      create_keys=True, migrate=True)
    sink = Sink()
    t0 = time.time()
    patients = seed(rt, a.studies, sink.url)
    seeded = time.time() - t0
    from yingyun.serve import callback_dispatcher, create_app, hospital_api_context

    hctx = hospital_api_context(rt, config=HospitalApiConfig(rate_per_minute=0,
                                                             delivery=DeliveryConfig(per_partner=a.per_partner)))
    server = ServerThread(create_app(rt, hospital=hctx), port=port).start()
    out: dict = {"db": kind, "studies": a.studies, "patients": patients, "seed_s": round(seeded, 1)}
    try:
        rnd = random.Random(11)
        sample = rnd.sample(range(patients), a.requests + 50)
        with httpx.Client(base_url=server.url, timeout=30) as c:
            ask(c, sample[:50])  # warm-up
            first, found = ask(c, sample[50:])
            again, _ = ask(c, sample[50:])
        out["first_ask"] = {"p50_ms": round(pct(first, .5), 2), "p95_ms": round(pct(first, .95), 2),
                            "p99_ms": round(pct(first, .99), 2), "studies_per_answer": round(found / a.requests, 2)}
        out["asked_again"] = {"p50_ms": round(pct(again, .5), 2), "p95_ms": round(pct(again, .95), 2),
                              "p99_ms": round(pct(again, .99), 2)}
        # Four clients at once.
        others = [p for p in range(patients) if p not in set(sample)][: a.requests]
        chunks = [others[i::4] for i in range(4)]
        results: list[list[float]] = [[] for _ in chunks]

        def client(i: int) -> None:
            with httpx.Client(base_url=server.url, timeout=30) as c:
                results[i] = ask(c, chunks[i])[0]

        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        t1 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t1
        conc = [x for r in results for x in r]
        out["four_clients"] = {"p50_ms": round(pct(conc, .5), 2), "p95_ms": round(pct(conc, .95), 2),
                               "req_per_s": round(len(conc) / wall, 1)}

        # Callbacks: enqueue through the record events (as ingest does), then deliver.
        with rt.db.read() as conn:
            picks = [(r.pk, r.hospital_id) for r in conn.execute(
                select(s.studies.c.pk, s.studies.c.hospital_id).order_by(s.studies.c.pk).limit(a.callbacks))]
        with rt.db.write() as conn:
            for pk, h in picks:
                hctx.events.study_written(conn, hospital_id=h, study_pk=pk, action="update")
        dispatcher = callback_dispatcher(hctx)
        t2 = time.perf_counter()
        dispatcher.start()
        deadline = time.time() + 300
        while hctx.queue.counts(kind=KIND)["delivered"] < len(picks) and time.time() < deadline:
            time.sleep(0.02)
        took = time.perf_counter() - t2
        dispatcher.stop()
        counts = hctx.queue.counts(kind=KIND)
        out["callbacks"] = {"delivered": counts["delivered"], "received": sink.count, "seconds": round(took, 2),
                            "per_s": round(counts["delivered"] / took, 1)}
    finally:
        server.stop()
        sink.stop()
        rt.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--studies", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--callbacks", type=int, default=3000)
    ap.add_argument("--per-partner", type=int, default=DeliveryConfig().per_partner,
                    help="callback requests in flight to the partner (default: the product's default)")
    a = ap.parse_args()
    pg = None
    results = []
    try:
        for kind in a.db.split(","):
            if kind == "postgresql" and pg is None:
                pg = PostgresServer().start()
            results.append(run(kind, pg, a))
            print(json.dumps(results[-1], ensure_ascii=False), flush=True)
    finally:
        if pg:
            pg.stop()
    print()
    print(f"{'db':<11} {'first ask p50/p95/p99 ms':<26} {'again p95':>9} {'4 clients p95':>13} {'req/s':>7} "
          f"{'callbacks/s':>11}")
    for r in results:
        f, g, c, cb = r["first_ask"], r["asked_again"], r["four_clients"], r["callbacks"]
        print(f"{r['db']:<11} {f['p50_ms']:>6.1f} / {f['p95_ms']:>5.1f} / {f['p99_ms']:>5.1f}      {g['p95_ms']:>9.1f} "
              f"{c['p95_ms']:>13.1f} {c['req_per_s']:>7.0f} {cb['per_s']:>11.0f}")
    print("reference: patientStudies p95 <= 30 ms at 100,000 studies / 20,000 patients; callbacks >= 200/s")


if __name__ == "__main__":
    main()
