#!/usr/bin/env python3
"""Reading turnaround (issue 15 item 8): the figures per reading centre and doctor over 30 busy days.

Target: p95 well under a second with >= 50,000 studies read in 30 days, on SQLite and PostgreSQL.

For each database: 20 hospitals routed to 3 reading centres with 10 doctors each; N studies (default 60,000)
stable over the last 30 days, each read (a report first submitted 5-240 minutes after, 90% final up to a day
later, some returned or amended). Then the 30 days' figures are asked again and again, for every centre (an
operator) and for one centre, read from the index and computed (`cloud.stats.turnaround.read_turnaround`);
then through the one-minute memory the statistics API asks it through (`Turnaround`): its first and later.

usage: bench/turnaround.py [--db sqlite,postgresql] [--studies 60000] [--requests 50]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import insert  # noqa: E402

from tests.support.pg import PostgresServer  # noqa: E402
from tests.support.reading import reading_reports, report_row  # noqa: E402
from yingyun.cloud.stats.turnaround import Turnaround, read_turnaround  # noqa: E402
from yingyun.runtime import Runtime  # noqa: E402
from yingyun.settings import Settings  # noqa: E402
from yingyun.storage import schema as s  # noqa: E402
from yingyun.storage.db import default_sqlite_url  # noqa: E402

HOSPITALS = [f"h{i:02d}" for i in range(1, 21)]
CENTRES = ("h01", "h02", "h03")
DAYS = 30
CHUNK = 5000


def seed(rt: Runtime, n: int) -> None:
    rng = random.Random(15)
    table = reading_reports(rt.db.writer)
    now = time.time()
    studies, reports = [], []
    for i in range(n):
        hospital = HOSPITALS[i % len(HOSPITALS)]
        centre = CENTRES[i % len(CENTRES)]
        uid = f"1.2.826.0.1.{i}"
        stable = now - 6 * 3600 - rng.uniform(0, DAYS * 86400 - 12 * 3600)  # read and submitted inside the 30 days
        submitted = stable + rng.uniform(5, 240) * 60
        final = submitted + rng.uniform(10, 1440) * 60 if rng.random() < 0.9 else None
        studies.append({"hospital_id": hospital, "study_uid": uid, "first_instance_at": stable - 120,
                        "last_instance_at": stable - 60, "stable": True, "stable_at": stable})
        reports.append(report_row(hospital_id=hospital, study_uid=uid, centre_id=centre, number=f"R{i}",
                                  doctor=f"{centre}-d{rng.randrange(10)}", submitted=submitted, final=final,
                                  returned=int(rng.random() < 0.08), amended=int(rng.random() < 0.02)))
    for start in range(0, n, CHUNK):
        with rt.db.write() as conn:
            conn.execute(insert(s.dicom_studies), studies[start:start + CHUNK])
            conn.execute(insert(table), reports[start:start + CHUNK])
    with rt.db.write() as conn:
        conn.exec_driver_sql("ANALYZE")


def pct(values: list[float], q: float) -> float:
    return round(sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000, 1)


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def run(kind: str, pg: PostgresServer | None, a: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="yy-bench-turnaround-"))
    url = pg.create_database() if pg else default_sqlite_url(tmp / "data")
    rt = Runtime.open(Settings(data_dir=tmp / "data", database_url=url, public_url="http://127.0.0.1"),
                      create_keys=True, migrate=True)
    try:
        t0 = time.time()
        seed(rt, a.studies)
        out: dict = {"db": kind, "studies": a.studies, "centres": len(CENTRES), "seed_s": round(time.time() - t0, 1)}
        until = time.time() + 60
        since = until - DAYS * 86400 - 120

        def ask(centres: frozenset[str] | None) -> dict:
            with rt.db.read() as conn:
                return read_turnaround(conn, since=since, until=until, centres=centres)

        figures = ask(None)
        assert sum(c["studiesRead"] for c in figures["centres"]) == a.studies, figures["centres"]
        every = timed(lambda: ask(None), a.requests)
        one = timed(lambda: ask(frozenset({CENTRES[0]})), a.requests)
        out["every_centre"] = {"p50_ms": pct(every, .5), "p95_ms": pct(every, .95), "n": len(every)}
        out["one_centre"] = {"p50_ms": pct(one, .5), "p95_ms": pct(one, .95), "n": len(one)}
        memo = Turnaround(rt.db)  # what GET /api/v1/stats asks: a repeated question within a minute from memory
        memo_lat = timed(lambda: memo.figures(since=since, until=until, centres=None), a.requests)
        out["memo"] = {"first_ms": round(memo_lat[0] * 1000, 1), "p95_ms": pct(memo_lat[1:], .95)}
        out["median_to_final_min"] = figures["centres"][0]["toFinal"]["medianMinutes"]
    finally:
        rt.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--studies", type=int, default=60_000)
    ap.add_argument("--requests", type=int, default=50)
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
    load = os.getloadavg()
    print(f"\nload average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores shared)")
    print(f"{'db':<11} {'studies':>8} {'every centre p50/p95 ms':>24} {'one centre p50/p95 ms':>22} "
          f"{'memo first/p95 ms':>18}")
    for r in results:
        e, o, m = r["every_centre"], r["one_centre"], r["memo"]
        print(f"{r['db']:<11} {r['studies']:>8} {e['p50_ms']:>11.1f} / {e['p95_ms']:>8.1f} "
              f"{o['p50_ms']:>10.1f} / {o['p95_ms']:>8.1f} {m['first_ms']:>9.1f} / {m['p95_ms']:>6.2f}")


if __name__ == "__main__":
    main()
