#!/usr/bin/env python3
"""The patient archive: "my studies" (/h5/me/studies) latency.

Target (issue 16): p95 <= 50 ms for a signed-in patient with 3 family members
and 60 studies among 100,000 studies of 20,000 patients, on SQLite and
PostgreSQL.

For each database: index 100,000 studies (5 per patient over three
hospitals, a tenth of the patients known by phone only, 60 % with a
report), the bench family's 60 among them (15 for the holder, by ID card
and by phone, and 15 for each of 3 members); sign the holder in through the
real pages (SMS code from a fake carrier), verify the real name, add the
members; then GET /h5/me/studies over HTTP, one request at a time, and
print p50/p95/max beside the sign-in page (/h5/me, no database read) in the
same run as the reference of what the HTTP stack costs on this machine.

usage: bench/patient_archive.py [--db sqlite,postgresql] [--studies 100000] [--requests 500]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import insert  # noqa: E402

from tests.support.net import free_port  # noqa: E402
from tests.support.pg import PostgresServer  # noqa: E402
from tests.support.servers import ServerThread  # noqa: E402
from yingyun.core.sms import FakeSender  # noqa: E402
from yingyun.runtime import Runtime  # noqa: E402
from yingyun.settings import Settings  # noqa: E402
from yingyun.storage import schema as s  # noqa: E402
from yingyun.storage.db import default_sqlite_url  # noqa: E402

HOSPITALS = ("h1", "h2", "h3")
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
HOLDER_PHONE = "13700000000"


def id_card(i: int, area: str = "110105") -> str:
    # unique for i < 21,000 (the least common multiple of 50, 12, 28 and 1000)
    first = f"{area}{1950 + i % 50}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
    return first + "10X98765432"[sum(int(c) * w for c, w in zip(first, WEIGHTS, strict=True)) % 11]


def phone(i: int) -> str:
    return f"139{i:08d}"


def seed(rt: Runtime, n_studies: int) -> list[tuple[str, str]]:
    """Index the studies; returns the bench family: (name, ID number) of the holder and 3 members."""
    t = rt.tenancy
    t.add_union(union_id="u1", name="一")
    for h in HOSPITALS:
        t.add_hospital(hospital_id=h, name=f"医院{h}", union_id="u1")
    vault, rnd, now = rt.vault, random.Random(7), time.time()
    family = [(f"家人{k}", id_card(k, area="320102")) for k in range(4)]
    people = []  # (name, ID or None, phone, studies)
    for k, (name, idc) in enumerate(family):
        people.append((name, idc, HOLDER_PHONE if k == 0 else phone(9_000_000 + k), 10 if k == 0 else 15))
    people.append((family[0][0], None, HOLDER_PHONE, 5))  # the holder's studies registered by phone only
    n_rest = (n_studies - 60) // 5
    for p in range(n_rest):
        people.append((f"病人{p}", None if p % 10 == 0 else id_card(p), phone(p), 5))
    rows, reports = [], []
    for p, (name, idc, ph, count) in enumerate(people):
        ident = {"phoneNum": ph, **({"idCardNum": idc} if idc else {})}
        enc = vault.encrypt(orjson.dumps(ident).decode())
        idh, phh = vault.id_card_hash(idc), vault.phone_hash(ph)
        for k in range(count):
            sid = f"S{p}-{k}"
            h = HOSPITALS[rnd.randrange(3)]
            rows.append({
                "hospital_id": h, "study_id": sid, "access_number": "A" + sid, "study_uid": f"1.2.826.0.1.{p}.{k}",
                "patient_id": f"P{p}", "patient_name": name, "patient_sex": "M", "modality": "CT",
                "body_part": "胸部", "study_desc": "胸部CT",
                "study_date": f"2026-{1 + k % 12:02d}-{1 + p % 28:02d} 09:00:00",
                "status": "final", "id_card_hash": idh, "phone_hash": phh, "identity_enc": enc, "details": "{}",
                "raw_values": "{}", "warnings": "[]", "version": 1, "deleted": False, "created_at": now,
                "updated_at": now})
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
    with rt.db.write() as conn:  # table statistics, as a live database has them
        conn.exec_driver_sql("ANALYZE")
    return family


def csrf(html: str, action: str) -> str:
    m = re.search(r'action="' + re.escape(action) + r'"[^>]*>\s*<input type="hidden" name="csrf" value="([0-9a-f]+)"',
                  html)
    assert m, html[:2000]
    return m.group(1)


def sign_in_family(c: httpx.Client, sms: FakeSender, family: list[tuple[str, str]]) -> None:
    page = c.get("/h5/me")
    page = c.post("/h5/me/send-code", data={"phone": HOLDER_PHONE, "csrf": csrf(page.text, "/h5/me/send-code")})
    r = c.post("/h5/me/sign-in", data={"phone": HOLDER_PHONE, "code": sms.last_code(HOLDER_PHONE),
                                       "csrf": csrf(page.text, "/h5/me/sign-in")})
    assert r.status_code == 303, r.text
    page = c.get("/h5/me/verify")
    r = c.post("/h5/me/verify", data={"name": family[0][0], "id_card": family[0][1],
                                      "csrf": csrf(page.text, "/h5/me/verify")})
    assert r.status_code == 303, r.text
    for name, idc in family[1:]:
        page = c.get("/h5/me/members")
        r = c.post("/h5/me/members", data={"name": name, "id_card": idc, "relationship": "child",
                                           "csrf": csrf(page.text, "/h5/me/members")})
        assert r.status_code == 303, r.text


def timed(c: httpx.Client, path: str, n: int) -> list[float]:
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = c.get(path)
        lat.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.status_code
    return lat


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


def run(kind: str, pg: PostgresServer | None, a: argparse.Namespace) -> dict[str, object]:
    from yingyun.serve import create_app, patient_context

    tmp = Path(tempfile.mkdtemp(prefix="yy-bench-archive-"))
    url = pg.create_database() if pg else default_sqlite_url(tmp / "data")
    port = free_port()
    rt = Runtime.open(Settings(data_dir=tmp / "data", database_url=url, public_url=f"http://127.0.0.1:{port}",
                               sms_resend_s=0.0), create_keys=True, migrate=True)
    t0 = time.time()
    family = seed(rt, a.studies)
    seeded = time.time() - t0
    sms = FakeSender()
    film = patient_context(rt, sms=sms)
    server = ServerThread(create_app(rt, film=film), port=port)
    server.server.config.proxy_headers = False
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            sign_in_family(c, sms, family)
            page = c.get("/h5/me/studies").text
            shown = page.count('data-testid="study-card"')
            assert shown == 60, shown
            timed(c, "/h5/me/studies", 30)  # warm-up
            mine = timed(c, "/h5/me/studies", a.requests)
            with httpx.Client(base_url=server.url, timeout=30) as anon:
                reference = timed(anon, "/h5/me", a.requests)
    finally:
        server.stop()
        film.stop()
        rt.close()
    return {"db": kind, "studies": a.studies, "shown": shown, "seed_s": round(seeded, 1),
            "my_studies_p50_ms": round(pct(mine, 0.5), 1), "my_studies_p95_ms": round(pct(mine, 0.95), 1),
            "my_studies_max_ms": round(max(mine) * 1000, 1),
            "reference_signin_page_p50_ms": round(pct(reference, 0.5), 1),
            "reference_signin_page_p95_ms": round(pct(reference, 0.95), 1), "target_p95_ms": 50}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--studies", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=500)
    a = ap.parse_args()
    pg = None
    try:
        for kind in a.db.split(","):
            if kind == "postgresql" and pg is None:
                pg = PostgresServer().start()
            print(orjson.dumps(run(kind, pg if kind == "postgresql" else None, a)).decode(), flush=True)
    finally:
        if pg is not None:
            pg.stop()


if __name__ == "__main__":
    main()
