"""QIDO-RS study search latency: Yingyun on PostgreSQL, side by side with Orthanc.

Run:  .venv/bin/python bench/qido.py [--instances 1000000] [--compare 100000] [--rounds 40]

What it does, all in one run:
1. Starts a throwaway PostgreSQL (tests/support/pg.py) and a Yingyun server
   on it (its own process, `create_app` under uvicorn, one worker).
2. Generates a synthetic archive: studies of 1-4 series and 25 instances on
   average, 2 years of dates, CT/MR/CR/DX/US, pinyin=汉字 patient names;
   instances are small real DICOM files (8x8 pixels).
3. The comparison set (`--compare` instances) is stored into Yingyun through
   `InstanceStore.store` -- the writer the DICOM receiver and STOW-RS use --
   and uploaded into Orthanc 1.10 with its DICOMweb plugin (Debian
   `orthanc-dicomweb`, SQLite index, default settings), through its REST API.
4. The same 8 study searches (a worklist page, PatientID, PatientName
   wildcard, a date range, AccessionNumber, ModalitiesInStudy, a Study
   Instance UID, date range + modality) are sent to both servers, interleaved
   in the same rounds, over HTTP keep-alive; p50/p95 per server are printed
   with the ratio.
5. Yingyun's archive is then grown to `--instances` through the same writer
   and the searches are timed again against the 50 ms p95 target.

Blob writes skip fsync during seeding (LocalBlobStore(fsync=False)) to keep
the run short; the index rows are written exactly as for a received image.
If the seeding cannot reach `--instances` within `--seed-budget` seconds,
it stops, measures what it has, and says so (the figures are then for that
size, not extrapolated silently).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from pydicom.uid import ExplicitVRLittleEndian

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.support.net import free_port  # noqa: E402
from tests.support.pg import PostgresServer  # noqa: E402

ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
UID_ROOT = "1.2.826.0.1.3680043.10.1404.77."
FAMILY = [("Wang", "王"), ("Li", "李"), ("Zhang", "张"), ("Liu", "刘"), ("Chen", "陈"), ("Yang", "杨"), ("Zhao", "赵"),
          ("Huang", "黄"), ("Zhou", "周"), ("Wu", "吴"), ("Xu", "徐"), ("Sun", "孙"), ("Hu", "胡"), ("Zhu", "朱"),
          ("Gao", "高"), ("Lin", "林"), ("He", "何"), ("Guo", "郭"), ("Ma", "马"), ("Luo", "罗")]
GIVEN = [("Wei", "伟"), ("Fang", "芳"), ("Na", "娜"), ("Min", "敏"), ("Jing", "静"), ("Li", "丽"), ("Qiang", "强"),
         ("Lei", "磊"), ("Jun", "军"), ("Yang", "洋"), ("Yong", "勇"), ("Yan", "艳"), ("Jie", "杰"), ("Tao", "涛"),
         ("Ming", "明"), ("Chao", "超"), ("Xiuying", "秀英"), ("Hua", "华"), ("Ping", "平"), ("Gang", "刚")]
MODALITIES = ["CT", "CT", "CT", "MR", "MR", "CR", "DX", "US"]
CT = "1.2.840.10008.5.1.4.1.1.2"
CLASSES = {"CT": CT, "MR": "1.2.840.10008.5.1.4.1.1.4", "CR": "1.2.840.10008.5.1.4.1.1.1",
           "DX": "1.2.840.10008.5.1.4.1.1.1.1", "US": "1.2.840.10008.5.1.4.1.1.6.1"}
HOSPITAL = "bench-h1"
# A trivial request on each server, timed in the same rounds (Yingyun's answers from its DB, Orthanc's from memory).
BASELINE = {"yingyun": "/healthz", "orthanc": "/system"}


# --------------------------------------------------------------------------
# The synthetic archive


def study_plan(n_instances: int, seed: int, start_index: int = 0):
    """Yield (study dict, [(series_uid, modality, [sop_uid...])]) until n_instances."""
    rng = random.Random(seed)
    made = 0
    k = start_index
    while made < n_instances:
        k += 1
        fam, giv = rng.choice(FAMILY), rng.choice(GIVEN)
        pid = f"P{rng.randrange(1, max(2, n_instances // 60)):07d}"
        day = 20250101 + 0
        days = rng.randrange(0, 730)
        date = time.strftime("%Y%m%d", time.gmtime(1735689600 + days * 86400))
        study = {
            "StudyInstanceUID": f"{UID_ROOT}{seed}.{k}", "PatientID": pid,
            "PatientName": f"{fam[0]}^{giv[0]}={fam[1]}^{giv[1]}", "StudyDate": date,
            "StudyTime": f"{rng.randrange(7, 20):02d}{rng.randrange(60):02d}00",
            "AccessionNumber": f"A{seed}{k:08d}", "PatientSex": rng.choice("MF"),
            "PatientBirthDate": f"{rng.randrange(1940, 2020)}0{rng.randrange(1, 10)}1{rng.randrange(0, 9)}",
            "StudyDescription": "BENCH", "_day": day,
        }
        series = []
        n_series = rng.randrange(1, 5)
        per = max(1, int(rng.expovariate(1 / 25)) // n_series + 1)
        for s_no in range(n_series):
            mod = rng.choice(MODALITIES)
            sops = [f"{UID_ROOT}{seed}.{k}.{s_no + 1}.{j + 1}" for j in range(per)]
            series.append((f"{UID_ROOT}{seed}.{k}.{s_no + 1}", mod, sops))
            made += per
            if made >= n_instances:
                break
        yield study, series


_PIXELS = np.arange(64, dtype=np.uint16).reshape(8, 8).tobytes()
_LONG_VRS = {"OB", "OW", "OF", "SQ", "UT", "UN", "UC", "UR", "OD", "OL", "OV"}


def _el(tag: int, vr: str, value: bytes | str | int) -> bytes:
    if isinstance(value, int):
        raw = value.to_bytes(2, "little")
    else:
        raw = value.encode("utf-8") if isinstance(value, str) else value
        if len(raw) % 2:
            raw += b"\0" if vr in ("UI", "OB", "OW") else b" "
    head = (tag >> 16).to_bytes(2, "little") + (tag & 0xFFFF).to_bytes(2, "little")
    if vr in _LONG_VRS:
        return head + vr.encode() + b"\0\0" + len(raw).to_bytes(4, "little") + raw
    return head + vr.encode() + len(raw).to_bytes(2, "little") + raw


def instance_bytes(study: dict, series_uid: str, modality: str, sop_uid: str, number: int, series_no: int) -> bytes:
    """A small Part-10 CT/MR/... image, encoded directly (pydicom's writer is
    ~100x slower, and the bench makes 10^5-10^6 of them)."""
    cls = CLASSES[modality]
    meta_body = b"".join([
        _el(0x00020001, "OB", b"\0\1"), _el(0x00020002, "UI", cls), _el(0x00020003, "UI", sop_uid),
        _el(0x00020010, "UI", ExplicitVRLittleEndian), _el(0x00020012, "UI", "1.2.826.0.1.3680043.10.1404.1"),
    ])
    meta = b"\2\0\0\0UL\4\0" + len(meta_body).to_bytes(4, "little") + meta_body
    elems = [
        _el(0x00080005, "CS", "ISO_IR 192"), _el(0x00080016, "UI", cls), _el(0x00080018, "UI", sop_uid),
        _el(0x00080020, "DA", study["StudyDate"]), _el(0x00080030, "TM", study["StudyTime"]),
        _el(0x00080050, "SH", study["AccessionNumber"]), _el(0x00080060, "CS", modality),
        _el(0x00081030, "LO", study["StudyDescription"]), _el(0x00100010, "PN", study["PatientName"]),
        _el(0x00100020, "LO", study["PatientID"]), _el(0x00100030, "DA", study["PatientBirthDate"]),
        _el(0x00100040, "CS", study["PatientSex"]), _el(0x0020000D, "UI", study["StudyInstanceUID"]),
        _el(0x0020000E, "UI", series_uid), _el(0x00200011, "IS", str(series_no)),
        _el(0x00200013, "IS", str(number)), _el(0x00280002, "US", 1), _el(0x00280004, "CS", "MONOCHROME2"),
        _el(0x00280010, "US", 8), _el(0x00280011, "US", 8), _el(0x00280100, "US", 16), _el(0x00280101, "US", 16),
        _el(0x00280102, "US", 15), _el(0x00280103, "US", 0), _el(0x7FE00010, "OW", _PIXELS),
    ]
    return b"\0" * 128 + b"DICM" + meta + b"".join(elems)


def instances_of(plan):
    for study, series in plan:
        for s_no, (series_uid, mod, sops) in enumerate(series, 1):
            for n, sop in enumerate(sops, 1):
                yield study, series_uid, mod, sop, n, s_no


# --------------------------------------------------------------------------
# Servers


def start_yingyun(data_dir: Path, db_url: str, port: int) -> subprocess.Popen:
    code = f"""
import uvicorn
from yingyun.runtime import Runtime
from yingyun.settings import Settings
from yingyun.serve import create_app
rt = Runtime.open(Settings(data_dir={str(data_dir)!r}, database_url={db_url!r}, http_port={port}),
                  create_keys=True, migrate=True)
uvicorn.run(create_app(rt), host="127.0.0.1", port={port}, log_level="warning", access_log=False)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=str(ROOT))
    _wait(f"http://127.0.0.1:{port}/healthz", proc)
    return proc


def start_orthanc(root: Path, http_port: int, dicom_port: int) -> subprocess.Popen:
    root.mkdir(parents=True, exist_ok=True)
    cfg = {
        "Name": "BENCH", "StorageDirectory": str(root / "storage"), "IndexDirectory": str(root / "index"),
        "HttpPort": http_port, "DicomPort": dicom_port, "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False, "Plugins": [DICOMWEB_PLUGIN], "StorageCompression": False,
        "HttpServerEnabled": True, "HttpCompressionEnabled": False, "DicomServerEnabled": False,
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
        "SaveJobs": False, "LimitFindResults": 0, "LimitFindInstances": 0, "KeepAlive": True,
    }
    (root / "orthanc.json").write_text(json.dumps(cfg))
    log = open(root / "orthanc.log", "w")
    proc = subprocess.Popen([ORTHANC, str(root / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    _wait(f"http://127.0.0.1:{http_port}/system", proc)
    return proc


def _wait(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------
# Seeding


class Seeder:
    """Stores instances into Yingyun through InstanceStore.store, many at once
    so that GroupCommit batches them as it does for a busy PACS."""

    def __init__(self, data_dir: Path, db_url: str, threads: int = 24) -> None:
        from yingyun.archive.instances import InstanceStore
        from yingyun.runtime import Runtime
        from yingyun.settings import Settings
        from yingyun.storage.blobs import LocalBlobStore

        self.rt = Runtime.open(Settings(data_dir=data_dir, database_url=db_url), create_keys=True, migrate=True)
        self.store = InstanceStore(self.rt.db, LocalBlobStore(data_dir / "blobs", fsync=False), batch_max=512)
        self.pool = ThreadPoolExecutor(threads)
        self.count = 0
        self.failed = 0
        self._lock = threading.Lock()

    def _one(self, data: bytes) -> None:
        from yingyun.core.dicom import read_file_info

        info = read_file_info(data)
        res = self.store.store(hospital_id=HOSPITAL, data=memoryview(data)[info.dataset_offset:],
                               transfer_syntax_uid=info.transfer_syntax_uid, sop_class_uid=info.sop_class_uid,
                               sop_instance_uid=info.sop_instance_uid)
        with self._lock:
            if res.outcome in ("stored", "duplicate", "replaced"):
                self.count += 1
            else:
                self.failed += 1

    def feed(self, datas) -> None:
        futures = [self.pool.submit(self._one, d) for d in datas]
        for f in futures:
            f.result()

    def close(self) -> None:
        self.pool.shutdown()
        self.store.close()
        self.rt.close()


class IndexSeeder:
    """Writes index rows through InstanceStore's own index-writing function
    (`_index`, what every stored instance goes through after its file is on
    disk), many instances per transaction. The values come from the same
    parser the receiver uses (`read_file_info`). No blob is written: QIDO
    never reads one. Used when the full store path is too slow for a
    million instances on this machine (see --full-store)."""

    def __init__(self, data_dir: Path, db_url: str, batch: int = 2000) -> None:
        from yingyun.archive.instances import InstanceStore
        from yingyun.runtime import Runtime
        from yingyun.settings import Settings
        from yingyun.storage.blobs import LocalBlobStore

        self.rt = Runtime.open(Settings(data_dir=data_dir, database_url=db_url), create_keys=True, migrate=True)
        self.store = InstanceStore(self.rt.db, LocalBlobStore(data_dir / "blobs", fsync=False))
        self.batch = batch
        self.count = 0
        self.failed = 0

    def feed(self, datas) -> None:
        from yingyun.archive.instances import _Pending
        from yingyun.core.dicom import read_file_info
        from yingyun.archive.layout import instance_key

        now = time.time()
        for k in range(0, len(datas), self.batch):
            pendings = []
            for data in datas[k:k + self.batch]:
                info = read_file_info(data)
                key = instance_key(HOSPITAL, info.study_uid, info.series_uid, info.sop_instance_uid)
                pendings.append(_Pending(HOSPITAL, info, key, len(data), None, now, None, None))
            with self.rt.db.write() as conn:
                for p in pendings:
                    res = self.store._index(conn, p)
                    if res.outcome == "refused":
                        self.failed += 1
                    else:
                        self.count += 1

    def close(self) -> None:
        self.store.close()
        self.rt.close()


def upload_orthanc(url: str, datas: list[bytes], threads: int = 4) -> None:
    local = threading.local()

    def one(data: bytes) -> None:
        for attempt in range(5):
            c = getattr(local, "c", None)
            if c is None:
                c = local.c = httpx.Client(timeout=60)
            try:
                r = c.post(url + "/instances", content=data, headers={"Content-Type": "application/dicom"})
                r.raise_for_status()
                return
            except httpx.TransportError:  # Orthanc closed a kept-alive connection: reconnect
                c.close()
                local.c = None
                if attempt == 4:
                    raise

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, datas))


# --------------------------------------------------------------------------
# Measuring


def queries(studies: list[dict]) -> list[tuple[str, dict]]:
    rng = random.Random(99)
    s1, s2, s3 = rng.choice(studies), rng.choice(studies), rng.choice(studies)
    fam = s2["PatientName"].split("^")[0]
    month = s3["StudyDate"][:6]
    return [
        ("worklist page (limit=50)", {"limit": "50"}),
        ("PatientID exact", {"PatientID": s1["PatientID"]}),
        (f"PatientName={fam}*", {"PatientName": f"{fam}*", "limit": "50"}),
        ("StudyDate one month", {"StudyDate": f"{month}01-{month}31", "limit": "100"}),
        ("AccessionNumber", {"AccessionNumber": s3["AccessionNumber"]}),
        ("ModalitiesInStudy=MR", {"ModalitiesInStudy": "MR", "limit": "50"}),
        ("StudyInstanceUID", {"StudyInstanceUID": s1["StudyInstanceUID"]}),
        ("date range + CT", {"StudyDate": f"{month}01-{month}15", "ModalitiesInStudy": "CT", "limit": "50"}),
    ]


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[max(0, int(round(p * len(s))) - 1)]


def run_queries(targets: dict[str, tuple[str, dict]], qs, rounds: int) -> dict[str, dict[str, list[float]]]:
    clients = {name: httpx.Client(base_url=base, headers=headers, timeout=120)
               for name, (base, headers) in targets.items()}
    out: dict[str, dict[str, list[float]]] = {name: {label: [] for label, _ in qs} for name in targets}
    counts: dict[str, dict[str, int]] = {name: {} for name in targets}
    try:
        for name, c in clients.items():  # warm-up: one pass each
            for label, params in qs:
                r = c.get("/studies", params=params, headers={"Accept": "application/dicom+json"})
                r.raise_for_status()
                counts[name][label] = len(r.json()) if r.status_code == 200 and r.content else 0
        baseline: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(rounds):
            for label, params in qs:
                for name, c in clients.items():
                    t0 = time.perf_counter()  # get() reads the whole body: the time includes it
                    r = c.get("/studies", params=params, headers={"Accept": "application/dicom+json"})
                    out[name][label].append((time.perf_counter() - t0) * 1000)
                    r.raise_for_status()
            for name, c in clients.items():
                t0 = time.perf_counter()
                c.get(targets[name][0].rsplit("/", 1)[0] + BASELINE[name]).raise_for_status()
                baseline[name].append((time.perf_counter() - t0) * 1000)
    finally:
        for c in clients.values():
            c.close()
    for name in targets:
        out[name]["_counts"] = counts[name]  # type: ignore[assignment]
        out[name]["_baseline"] = baseline[name]
    return out


def report(title: str, results, qs) -> dict[str, float]:
    print(f"\n== {title}")
    names = list(results)
    header = f"{'query':<28}" + "".join(f"{n + ' p50':>14}{n + ' p95':>14}{'hits':>7}" for n in names)
    print(header)
    for label, _ in qs:
        line = f"{label:<28}"
        for n in names:
            s = results[n][label]
            line += f"{statistics.median(s):>12.2f}ms{pct(s, .95):>12.2f}ms{results[n]['_counts'].get(label, 0):>7}"
        print(line)
    overall = {}
    for n in names:
        allv = [v for label, _ in qs for v in results[n][label]]
        overall[n] = pct(allv, .95)
        print(f"{'ALL ' + n:<28} p50 {statistics.median(allv):8.2f} ms   p95 {overall[n]:8.2f} ms   (n={len(allv)})")
        base = results[n].get("_baseline")
        if base:
            print(f"{'  baseline ' + n:<28} p50 {statistics.median(base):8.2f} ms   p95 {pct(base, .95):8.2f} ms   "
                  "(a trivial GET in the same rounds: the machine's own HTTP floor)")
    print(f"load average during the run: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    return overall


def _relax_durability(pg: PostgresServer) -> None:
    """A throwaway bench database: no fsync (seeding speed only; reads are unaffected)."""
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port={pg.port} user=postgres dbname=postgres", autocommit=True) as c:
        c.execute("ALTER SYSTEM SET fsync = off")
        c.execute("ALTER SYSTEM SET synchronous_commit = off")
        c.execute("ALTER SYSTEM SET full_page_writes = off")
        c.execute("SELECT pg_reload_conf()")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, default=1_000_000)
    ap.add_argument("--compare", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--seed-budget", type=float, default=600.0, help="seconds allowed for growing to --instances")
    ap.add_argument("--no-orthanc", action="store_true")
    ap.add_argument("--full-store", action="store_true",
                    help="seed through InstanceStore.store (files written too) instead of its index writer")
    ap.add_argument("--keep", help="keep the work folder here")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` stops the servers

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="yingyun-qido-"))
    work.mkdir(parents=True, exist_ok=True)
    pg = PostgresServer().start()
    _relax_durability(pg)
    ying = orth = None
    seeder = None
    try:
        db_url = pg.create_database()
        data_dir = work / "yingyun"
        seeder = Seeder(data_dir, db_url) if args.full_store else IndexSeeder(data_dir, db_url)
        from yingyun.cloud.dicomweb import TokenRegistry

        seeder.rt.tenancy.add_hospital(hospital_id=HOSPITAL, name="Bench hospital")
        token = TokenRegistry(seeder.rt.db).add(name="bench", hospitals=[HOSPITAL])

        print(f"generating and storing the comparison set: {args.compare} instances ...", flush=True)
        t0 = time.time()
        studies: list[dict] = []
        plan = list(study_plan(args.compare, seed=1))
        studies = [st for st, _ in plan]
        datas = [instance_bytes(*x) for x in instances_of(plan)]
        t_gen = time.time() - t0
        t0 = time.time()
        for k in range(0, len(datas), 5000):
            seeder.feed(datas[k:k + 5000])
        t_y = time.time() - t0
        print(f"  {len(datas)} instances in {len(studies)} studies; generated in {t_gen:.0f} s; "
              f"Yingyun stored {seeder.count} in {t_y:.0f} s ({seeder.count / max(t_y, 1e-9):.0f}/s)", flush=True)

        yport = free_port()
        ying = start_yingyun(data_dir, db_url, yport)
        targets = {"yingyun": (f"http://127.0.0.1:{yport}/dicomweb", {"Authorization": f"Bearer {token}"})}
        if not args.no_orthanc:
            oport = free_port()
            orth = start_orthanc(work / "orthanc", oport, free_port())
            t0 = time.time()
            upload_orthanc(f"http://127.0.0.1:{oport}", datas)
            print(f"  Orthanc stored {len(datas)} in {time.time() - t0:.0f} s", flush=True)
            targets["orthanc"] = (f"http://127.0.0.1:{oport}/dicom-web", {})
        del datas
        qs = queries(studies)
        res = run_queries(targets, qs, args.rounds)
        overall = report(f"{args.compare} instances, same queries, same run ({args.rounds} rounds)", res, qs)
        first = (seeder.count, overall["yingyun"], {label: pct(res["yingyun"][label], .95) for label, _ in qs})
        if "orthanc" in overall:
            ratio = overall["orthanc"] / overall["yingyun"]
            print(f"p95 ratio Orthanc/Yingyun = {ratio:.1f}x  (target >= 2x: {'MET' if ratio >= 2 else 'NOT MET'})")
        stop(orth)
        orth = None

        remaining = args.instances - seeder.count
        if remaining > 0:
            print(f"\ngrowing Yingyun to {args.instances} instances through the same writer ...", flush=True)
            t0 = time.time()
            stopped_early = False
            batch: list[bytes] = []
            for x in instances_of(study_plan(remaining, seed=2, start_index=0)):
                batch.append(instance_bytes(*x))
                if len(batch) >= 5000:
                    seeder.feed(batch)
                    batch = []
                    el = time.time() - t0
                    rate = (seeder.count - args.compare) / el
                    print(f"  {seeder.count} instances, {el:.0f} s, {rate:.0f}/s", flush=True)
                    if el > args.seed_budget:
                        stopped_early = True
                        break
            if batch and not stopped_early:
                seeder.feed(batch)
            if stopped_early:
                print(f"  seeding budget reached: measuring at {seeder.count} instances, NOT {args.instances}")
        with seeder.rt.db.read() as conn:
            n_inst = conn.exec_driver_sql("SELECT count(*) FROM instances").scalar()
            n_st = conn.exec_driver_sql("SELECT count(*) FROM dicom_studies").scalar()
            conn.exec_driver_sql("ANALYZE")
        res = run_queries({"yingyun": targets["yingyun"]}, queries(studies), args.rounds)
        overall = report(f"Yingyun at {n_inst} instances / {n_st} studies (PostgreSQL)", res, queries(studies))
        print(f"QIDO study search p95 = {overall['yingyun']:.2f} ms at {n_inst} instances "
              f"(target <= 50 ms: {'MET' if overall['yingyun'] <= 50 else 'NOT MET'})")
        if n_inst < args.instances and n_inst > first[0]:
            slope = max(0.0, (overall["yingyun"] - first[1]) / (n_inst - first[0]))
            est = overall["yingyun"] + slope * (args.instances - n_inst)
            print(f"EXTRAPOLATION (linear in the instance count from {first[0]} -> {n_inst}, an upper bound for "
                  f"index-driven searches): p95 at {args.instances} ~ {est:.1f} ms"
                  + ("  [no growth between the two sizes: compare the load averages, the host was not idle]"
                     if slope == 0 else ""))
    finally:
        stop(ying)
        stop(orth)
        if seeder is not None:
            seeder.close()
        pg.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
