#!/usr/bin/env python3
"""C-STORE ingest benchmark: Yingyun vs Orthanc vs dcmtk storescp (issue 3).

Sends, with dcmtk's storescu,

    TCP_NODELAY=1 /usr/bin/storescu -aet BENCHSCU -aec YINGYUN +sd +r 127.0.0.1 PORT DIR

(a) a 300-image 512x512 16-bit CT study (~158 MB) and (b) 2,000 small
instances (64x64 16-bit, ~9.5 KiB), each with one association and with four
associations in parallel (the data set split in four folders), to

  yingyun   `.venv/bin/yingyun serve` with a fresh --data-dir, the calling AE
            registered with `yingyun admin hospital add` + `admin pacs add`;
            a success status only once the instance is durable and its index
            row committed (SQLite WAL, synchronous=FULL; a small instance's
            bytes ride in that commit, larger files are fsynced first)
  orthanc   /usr/sbin/Orthanc, default settings as in
            /work/shared/bench-anchors (SQLite index, fsync of every file),
            TCP_NODELAY=1 in its environment
  storescp  dcmtk storescp -od DIR (files only, no fsync, no index: the
            near-physical reference; --fork for the parallel rows)

every server started fresh for every run (own ports and folders). A
finished run's files are emptied (truncated) right away and deleted only
once all runs are done, and each run is followed by a sync(). Three
artefacts of this VM made runs pay for the ones before them, whichever
server it was: (1) its root is ext4 without a journal, where creating a
file steps over every inode deleted in the last 60-360 s (ext4's
recently_deleted check, a buffer lookup each): deleting each run's 2,000
files at once made the next run's creations cost up to 0.2 ms more;
(2) keeping the files instead let the page cache grow by gigabytes, and
copying into page cache that had never been used cost twice the CPU (the
host backs guest memory on first touch): truncating frees the data and the
cache but not the inodes; (3) without the sync, a run shared the disk with
the write-back of what the last one left dirty, storescp's files above all.
A server ingesting for real is doing none of that at the same moment.  Round 0
is a warm-up; the medians of the counted rounds are printed, rounds
interleaving all servers and rows so drift on the noisy 2-core machine hits
all alike.  Timing is time.perf_counter() from the first
storescu start to the last storescu exit.  Every run is checked: storescu
exit status 0, no E:/F: lines in its log, and the stored count equal to what
was sent (yingyun: `yingyun admin studies --json` received counts; orthanc:
GET /statistics; storescp: files on disk).  If any run of any server failed,
the script prints the failures and exits 2 instead of printing a table (our
figure is never printed without its references).

Then peak RSS summed over ALL Yingyun processes (serve, its DICOM receiver
processes and any other descendant; /proc sampled every 50 ms) while it
ingests 10,000 small instances over four associations.  Target < 300 MB.

usage: bench/ingest.py [--quick] [--rounds 3] [--data DIR] [--dicom-workers 2]
                       [--only ct-1,small-4,...] [--skip-rss] [--check]

--quick     smoke run: 1 round, no warm-up, 60 CT + 400 small, RSS on 2,000
--data DIR  keep/reuse the generated data sets in DIR (default: a temp dir
            removed at exit)
--check     exit 1 when a target is missed (ratio < 1.0 or RSS >= 300 MB)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VENV_BIN = os.path.join(REPO, ".venv", "bin")
YINGYUN = os.path.join(VENV_BIN, "yingyun")
STORESCU = "/usr/bin/storescu"  # absolute: pynetdicom installs python apps of the same names
STORESCP = "/usr/bin/storescp"
ORTHANC = "/usr/sbin/Orthanc"
CALLING_AE = "BENCHSCU"
HOSPITAL = "bench"
PAGE = os.sysconf("SC_PAGE_SIZE")

# --------------------------------------------------------------------- data


def generate(root: str, *, ct_images: int, small_images: int, rss_images: int) -> dict:
    """Write the data sets (deterministic UIDs) unless `root` already has them."""
    marker = os.path.join(root, f"generated-v2-{ct_images}-{small_images}-{rss_images}.json")
    if os.path.exists(marker):
        with open(marker) as f:
            return json.load(f)
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

    prefix = "1.2.826.0.1.3680043.8.498."

    def uid(*parts) -> str:
        # One joined source: pydicom concatenates entropy sources without a
        # separator, so ("sop", 1, 23) and ("sop", 12, 3) would collide.
        return generate_uid(prefix=prefix, entropy_srcs=["|".join(str(p) for p in parts)])

    def phantom(n: int, z: int, rng) -> np.ndarray:
        y, x = np.mgrid[-1:1:complex(0, n), -1:1:complex(0, n)]
        img = np.full((n, n), -1000.0)
        img[(x / 0.85) ** 2 + (y / 0.65) ** 2 <= 1.0] = 40.0
        lungs = (((x - 0.35) / 0.22) ** 2 + (y / 0.38) ** 2 <= 1) | (((x + 0.35) / 0.22) ** 2 + (y / 0.38) ** 2 <= 1)
        img[lungs] = -850.0
        r = 0.08 + 0.04 * np.sin(z / 15.0)
        img[(x ** 2 + ((y - 0.45) / 0.9) ** 2) <= r ** 2] = 700.0
        img += rng.normal(0, 12, size=img.shape)
        return np.clip(img, -1024, 3071).astype(np.int16)

    def study(name: str, n_images: int, size: int, per_series: int, seed: int) -> dict:
        """One study, `per_series` images a series, files split over q0..q3."""
        out = os.path.join(root, name)
        rng = np.random.default_rng(seed)
        study_uid, for_uid = uid("study", name), uid("for", name)
        base = phantom(size, 0, rng) if size <= 128 else None
        per_folder = -(-n_images // 4)
        nbytes = 0
        for k in range(n_images):
            s, i = divmod(k, per_series)
            series_uid = uid("series", name, s)
            sop_uid = uid("sop", name, s, i)
            fm = FileMetaDataset()
            fm.MediaStorageSOPClassUID = CTImageStorage
            fm.MediaStorageSOPInstanceUID = sop_uid
            fm.TransferSyntaxUID = ExplicitVRLittleEndian
            fm.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
            fm.ImplementationVersionName = "YYBENCH_1"
            ds = Dataset()
            ds.file_meta = fm
            ds.SpecificCharacterSet = "ISO_IR 100"
            ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
            ds.SOPClassUID = CTImageStorage
            ds.SOPInstanceUID = sop_uid
            ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240315"
            ds.StudyTime, ds.SeriesTime, ds.ContentTime = "101500", "101600", "101610"
            ds.AccessionNumber = "ACC" + name.upper()[:8]
            ds.Modality = "CT"
            ds.Manufacturer = "YYBENCH"
            ds.InstitutionName = "Benchmark Hospital"
            ds.ReferringPhysicianName = "Referrer^Rita"
            ds.StudyDescription = "CT CHEST ABDOMEN PELVIS W CONTRAST"
            ds.SeriesDescription = ["AXIAL 1.25MM", "AXIAL 1.25MM BONE", "AXIAL 1.25MM LUNG"][s % 3]
            ds.PatientName = "Doe^Jane"
            ds.PatientID = "BENCH0001"
            ds.PatientBirthDate = "19700101"
            ds.PatientSex = "F"
            ds.BodyPartExamined = "CHEST"
            ds.SliceThickness = "1.25"
            ds.KVP = "120"
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series_uid
            ds.StudyID = "1"
            ds.SeriesNumber = s + 1
            ds.InstanceNumber = i + 1
            ds.ImagePositionPatient = [-190.0, -190.0, round(-i * 1.25, 3)]
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.FrameOfReferenceUID = for_uid
            ds.SliceLocation = round(-i * 1.25, 3)
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.Rows = ds.Columns = size
            ds.PixelSpacing = [round(380.0 / size, 4)] * 2
            ds.BitsAllocated = ds.BitsStored = 16
            ds.HighBit = 15
            ds.PixelRepresentation = 1
            ds.WindowCenter, ds.WindowWidth = "40", "400"
            ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "HU"
            img = phantom(size, i, rng) if base is None else base + rng.integers(-8, 8, size=base.shape, dtype=np.int16)
            ds.PixelData = img.tobytes()
            folder = os.path.join(out, f"q{k // per_folder}")
            os.makedirs(folder, exist_ok=True)
            fn = os.path.join(folder, f"s{s + 1:03d}_i{i + 1:04d}.dcm")
            ds.save_as(fn, enforce_file_format=True)
            nbytes += os.path.getsize(fn)
        return {"dir": out, "instances": n_images, "bytes": nbytes}

    t0 = time.time()
    sets = {
        "ct": study("ct", ct_images, 512, 100, 1),
        "small": study("small", small_images, 64, 100, 2),
        "rss": study("rss", rss_images, 64, 100, 3),
    }
    made = ", ".join(f"{k} {v['instances']} files {v['bytes'] / 1e6:.1f} MB" for k, v in sets.items())
    print(f"generated data in {time.time() - t0:.1f} s: {made}", flush=True)
    with open(marker, "w") as f:
        json.dump(sets, f)
    return sets


def client_dirs(dataset: dict, parallel: int) -> list[str]:
    qs = sorted(os.path.join(dataset["dir"], q) for q in os.listdir(dataset["dir"]))
    return [dataset["dir"]] if parallel == 1 else qs


# ------------------------------------------------------------------ helpers


def listeners(port: int) -> int:
    """How many sockets listen on `port`."""
    h = f":{port:04X}"
    n = 0
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(fn) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if p[1].endswith(h) and p[3] == "0A":
                        n += 1
        except FileNotFoundError:
            pass
    return n


def descendants(pid: int) -> list[int]:
    parent: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
            parent.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parent.get(p, []))
    return out


CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                # utime, stime, and those of reaped children (storescp --fork)
                total += sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:15])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            pass
    return total / CLK


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            pass
    return total


class RssSampler:
    """Peak of the RSS summed over a process tree, sampled every 50 ms."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid, self.interval = pid, interval
        self.peak = 0
        self.peak_procs = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        pids, refreshed = descendants(self.pid), time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - refreshed > 0.5:  # receivers may be restarted
                pids, refreshed = descendants(self.pid), time.monotonic()
            total = rss_bytes(pids)
            self.samples += 1
            if total > self.peak:
                self.peak, self.peak_procs = total, len(pids)
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


_port = [int(os.environ.get("BENCH_PORT_BASE", 0)) or 20000 + (os.getpid() % 200) * 50]


def next_port() -> int:
    while True:
        _port[0] += 1
        if _port[0] > 60000:
            _port[0] = 20001
        if listeners(_port[0]) == 0 and listeners(_port[0] + 1) == 0:
            return _port[0]


# ------------------------------------------------------------------ servers


class Server:
    name = "?"

    def __init__(self, root: str, parallel: int) -> None:
        self.root = root
        self.parallel = parallel
        self.port = next_port()
        self.proc: subprocess.Popen | None = None
        self.log = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict:
        env = dict(os.environ)
        env.pop("TCP_NODELAY", None)
        return env

    def expected_listeners(self) -> int:
        return 1

    def start(self) -> None:
        self.log = open(os.path.join(self.root, "server.log"), "wb")
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=subprocess.STDOUT, env=self.env(),
                                     cwd=self.root, start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early (rc={self.proc.returncode})")
            if listeners(self.port) >= self.expected_listeners() and self.ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready on port {self.port}")

    def ready(self) -> bool:
        return True

    def count(self) -> int:
        raise NotImplementedError

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            kids = descendants(self.proc.pid)[1:]
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            for k in kids:  # storescp --fork children, receivers left behind
                try:
                    os.kill(k, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.log is not None:
            self.log.close()


class StoreSCP(Server):
    name = "storescp"

    def env(self) -> dict:
        return dict(super().env(), TCP_NODELAY="1")

    def command(self) -> list[str]:
        self.out = os.path.join(self.root, "out")
        os.makedirs(self.out, exist_ok=True)
        return [STORESCP, "-od", self.out] + (["--fork"] if self.parallel > 1 else []) + [str(self.port)]

    def count(self) -> int:
        return sum(len(fs) for _, _, fs in os.walk(self.out))


class Orthanc(Server):
    name = "orthanc"

    def env(self) -> dict:
        return dict(super().env(), TCP_NODELAY="1")

    def command(self) -> list[str]:
        self.http = self.port + 1
        cfg = {  # the anchors' configuration: everything else at Orthanc's defaults
            "Name": "BenchOrthanc", "StorageDirectory": os.path.join(self.root, "storage"),
            "IndexDirectory": os.path.join(self.root, "index"), "Plugins": [], "LuaScripts": [],
            "HttpServerEnabled": True, "HttpPort": self.http, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "DicomServerEnabled": True, "DicomAet": "ORTHANC",
            "DicomPort": self.port, "DicomCheckCalledAet": False, "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowEcho": True, "DicomModalities": {}, "SaveJobs": False, "SyncStorageArea": True,
        }
        path = os.path.join(self.root, "orthanc.json")
        with open(path, "w") as f:
            json.dump(cfg, f, indent=1)
        return [ORTHANC, path]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/system", timeout=2):
                return True
        except Exception:
            return False

    def count(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/statistics", timeout=30) as r:
            return int(json.load(r)["CountInstances"])


class Yingyun(Server):
    name = "yingyun"
    template: str | None = None  # a data dir with the hospital and the PACS peer registered
    workers = 2

    @classmethod
    def prepare_template(cls, root: str) -> None:
        d = os.path.join(root, "yingyun-template")
        shutil.rmtree(d, ignore_errors=True)
        for args in (["db", "upgrade"], ["admin", "hospital", "add", "--id", HOSPITAL, "--name", "Bench Hospital"],
                     ["admin", "pacs", "add", "--ae-title", CALLING_AE, "--host", "127.0.0.1", "--port", "104",
                      "--hospital", HOSPITAL]):
            subprocess.run([YINGYUN, *args, "--data-dir", d], check=True, stdout=subprocess.DEVNULL)
        cls.template = d

    def command(self) -> list[str]:
        self.data_dir = os.path.join(self.root, "data")
        shutil.copytree(self.template, self.data_dir)
        self.http = self.port + 1
        cmd = [YINGYUN, "serve", "--data-dir", self.data_dir, "--host", "127.0.0.1", "--http-port", str(self.http),
               "--dicom-port", str(self.port), "--ae-title", "YINGYUN"]
        return cmd + ["--dicom-workers", str(self.workers)]

    def ready(self) -> bool:
        # Every receiver serving (they share serve's one listening socket).
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/healthz", timeout=2) as r:
                return json.load(r)["listeners"]["dicom"]["receiversUp"] == self.workers
        except Exception:
            return False

    def count(self) -> int:
        out = subprocess.run([YINGYUN, "admin", "studies", "--json", "--data-dir", self.data_dir], check=True,
                             capture_output=True, text=True).stdout
        total = 0
        for row in json.loads(out):
            received = row.get("received") or {}
            total += sum(int(received.get(k) or 0) for k in ("images", "sr", "pdf", "reports"))
        return total


SERVERS = {"yingyun": Yingyun, "orthanc": Orthanc, "storescp": StoreSCP}


# --------------------------------------------------------------------- runs


FINISHED_RUNS: list[str] = []


def one_run(server_cls, dataset: dict, parallel: int, work: str, tag: str, sample_rss: bool = False) -> dict:
    root = tempfile.mkdtemp(prefix=f"{server_cls.name}-{tag}-", dir=work)
    srv = server_cls(root, parallel)
    rec = {"server": server_cls.name, "ok": False}
    try:
        srv.start()
        time.sleep(0.3)
        dirs = client_dirs(dataset, parallel)
        env = dict(os.environ, TCP_NODELAY="1")
        logs = [open(os.path.join(root, f"client{i}.log"), "wb") for i in range(len(dirs))]
        sampler = RssSampler(srv.proc.pid) if sample_rss else None
        if sampler:
            sampler.__enter__()
        tree = descendants(srv.proc.pid)
        cpu0 = cpu_seconds(tree)
        try:
            t0 = time.perf_counter()
            procs = [subprocess.Popen([STORESCU, "-aet", CALLING_AE, "-aec", "YINGYUN", "+sd", "+r", "127.0.0.1",
                                       str(srv.port), d], stdout=lg, stderr=subprocess.STDOUT, env=env)
                     for d, lg in zip(dirs, logs, strict=False)]
            rcs = [p.wait(timeout=1800) for p in procs]
            wall = time.perf_counter() - t0
            rec["cpu"] = cpu_seconds(tree) - cpu0
        finally:
            if sampler:
                sampler.__exit__()
            for lg in logs:
                lg.close()
        errors = []
        for i in range(len(dirs)):
            with open(os.path.join(root, f"client{i}.log"), errors="replace") as f:
                errors += [ln.strip() for ln in f if ln.startswith(("E:", "F:"))]
        stored = srv.count()
        rec.update(wall=wall, rcs=rcs, stored=stored, expected=dataset["instances"], client_errors=errors[:3])
        if sampler:
            rec.update(rss_peak=sampler.peak, rss_procs=sampler.peak_procs, rss_samples=sampler.samples)
        rec["ok"] = stored == dataset["instances"] and all(rc == 0 for rc in rcs) and not errors
    except Exception as e:  # recorded; a failed run fails the whole benchmark
        rec["error"] = repr(e)
    finally:
        srv.stop()
        if rec["ok"]:
            _empty_files(root)
            FINISHED_RUNS.append(root)  # deleted at the end (module doc)
        else:
            rec["kept"] = root
        os.sync()  # the next run starts with no dirty data of this one left to write back (module doc)
    return rec


def _empty_files(root: str) -> None:
    """Free a finished run's data and page cache without freeing its inodes (module doc)."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            try:
                os.truncate(os.path.join(folder, name), 0)
            except OSError:
                pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 round, no warm-up, smaller sets")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--data", default=None, help="folder to keep/reuse the generated data in")
    ap.add_argument("--dicom-workers", type=int, default=2, help="yingyun serve --dicom-workers (default 2)")
    ap.add_argument("--only", default="", help="rows to run, e.g. small-1,small-4 (default all)")
    ap.add_argument("--servers", default="yingyun,orthanc,storescp")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    a = ap.parse_args()

    for exe in (STORESCU, STORESCP, ORTHANC, YINGYUN):
        if not os.access(exe, os.X_OK):
            print(f"missing {exe}", file=sys.stderr)
            return 2
    rounds = a.rounds if a.rounds is not None else (1 if a.quick else 3)
    warmup = 0 if a.quick else 1
    sizes = {"ct_images": 60, "small_images": 400, "rss_images": 2000} if a.quick else \
        {"ct_images": 300, "small_images": 2000, "rss_images": 10000}
    servers = [SERVERS[s] for s in a.servers.split(",")]
    Yingyun.workers = a.dicom_workers

    tmp = tempfile.mkdtemp(prefix="yy-ingest-bench-")
    data_root = a.data or os.path.join(tmp, "data")
    os.makedirs(data_root, exist_ok=True)
    work = os.path.join(tmp, "runs")
    os.makedirs(work)
    try:
        sets = generate(data_root, **sizes)
        Yingyun.prepare_template(tmp)
        rows = [("ct", 1), ("ct", 4), ("small", 1), ("small", 4)]
        if a.only:
            wanted = set(a.only.split(","))
            rows = [r for r in rows if f"{r[0]}-{r[1]}" in wanted]
        results: dict[tuple, list[dict]] = {}
        failures = []
        t_start = time.time()
        for rnd in range(warmup + rounds):
            for ds_name, par in rows:
                for cls in servers:
                    rec = one_run(cls, sets[ds_name], par, work, f"{ds_name}{par}r{rnd}")
                    counted = rnd >= warmup
                    outcome = ("ok" if rec["ok"] else
                               "FAILED " + rec.get("error", "") + " " + " ".join(rec.get("client_errors", [])))
                    print(f"[{time.time() - t_start:5.0f}s] r{rnd}{'' if counted else ' (warm-up)'} {cls.name:<8s} "
                          f"{ds_name:<5s} x{par}  wall={rec.get('wall', float('nan')):7.3f}s  "
                          f"cpu={rec.get('cpu', float('nan')):6.2f}s  "
                          f"stored={rec.get('stored')}/{sets[ds_name]['instances']}  {outcome}", flush=True)
                    if not rec["ok"]:
                        failures.append((cls.name, ds_name, par, rnd, rec))
                    if counted:
                        results.setdefault((cls.name, ds_name, par), []).append(rec)

        rss = None
        if not a.skip_rss and Yingyun in servers:
            rec = one_run(Yingyun, sets["rss"], 4, work, "rss", sample_rss=True)
            n_rss = sets["rss"]["instances"]
            print(f"[{time.time() - t_start:5.0f}s] rss      yingyun  {n_rss} small x4  "
                  f"wall={rec.get('wall', float('nan')):7.3f}s  stored={rec.get('stored')}/{n_rss}  "
                  f"{'ok' if rec['ok'] else 'FAILED ' + rec.get('error', '')}", flush=True)
            if rec["ok"]:
                rss = rec
            else:
                failures.append(("yingyun", "rss", 4, 0, rec))

        if failures:
            print(f"\nFAILED: {len(failures)} run(s) could not be measured; no figures are printed.")
            for name, ds_name, par, rnd, rec in failures:
                print(f"  {name} {ds_name} x{par} round {rnd}: {rec.get('error') or ''} stored={rec.get('stored')} "
                      f"rc={rec.get('rcs')} {rec.get('client_errors')} (kept {rec.get('kept')})")
            return 2

        print()
        print(f"Medians of {rounds} round(s){' after a warm-up' if warmup else ' (quick: no warm-up, smaller sets)'}; "
              "wall = first storescu start to last exit; MB = 10^6 B of DICOM files sent.")
        print("yingyun: ack once durable (SQLite WAL synchronous=FULL; instances <= 128 KiB: bytes in the index "
              "commit, files flushed in batches after; larger: file fsynced first); "
              "orthanc: defaults (fsync each file); storescp: page cache only.\n"
              "cpu ms/inst: user+system CPU of the server's whole process tree during the run, per instance.")
        hdr = (f"{'data':<9s} {'inst':<5s} {'x':>3s}  {'server':<9s} {'wall s':>8s} {'inst/s':>9s} {'MB/s':>8s} "
               f"{'cpu ms/inst':>11s}  {'wall min-max':<15s}")
        print(hdr)
        print("-" * len(hdr))
        missed = []
        summary = []
        for ds_name, par in rows:
            ds = sets[ds_name]
            med = {}
            for cls in servers:
                walls = [r["wall"] for r in results[(cls.name, ds_name, par)]]
                cpu = statistics.median(r["cpu"] for r in results[(cls.name, ds_name, par)])
                m = statistics.median(walls)
                med[cls.name] = m
                n = ds["instances"]
                print(f"{ds_name:<9s} {n:<5d} {par:3d}  {cls.name:<9s} {m:8.3f} {n / m:9.0f} "
                      f"{ds['bytes'] / 1e6 / m:8.1f} {cpu * 1e3 / n:11.2f}  {min(walls):.3f}-{max(walls):.3f}")
            if "yingyun" in med:
                vs_o = med["orthanc"] / med["yingyun"] if "orthanc" in med else None
                vs_s = med["storescp"] / med["yingyun"] if "storescp" in med else None
                summary.append((ds_name, par, vs_o, vs_s))
                if vs_o is not None and vs_o < 1.0:
                    missed.append(f"{ds_name} x{par}: yingyun/orthanc {vs_o:.2f} < 1.0")
            print()
        print(f"{'data':<9s} {'x':>3s}  {'yingyun/orthanc':>16s}  {'yingyun/storescp':>17s}")
        for ds_name, par, vs_o, vs_s in summary:
            o = "-" if vs_o is None else f"{vs_o:.2f}"
            verdict = "" if vs_o is None else ("ok" if vs_o >= 1.0 else "MISS")
            st = "-" if vs_s is None else f"{vs_s:.2f}"
            print(f"{ds_name:<9s} {par:3d}  {o:>10s} {verdict:>5s}  {st:>17s}")
        if rss is not None:
            mb = rss["rss_peak"] / 1e6
            n_rss = sets["rss"]["instances"]
            print(f"\nyingyun peak RSS, summed over {rss['rss_procs']} processes (serve + receivers), {n_rss} instances"
                  f" over 4 associations: {mb:.0f} MB ({rss['rss_peak'] / 2**20:.0f} MiB; target < 300 MB) "
                  f"{'ok' if mb < 300 else 'MISS'}  [{rss['rss_samples']} samples, {n_rss / rss['wall']:.0f} inst/s]")
            if mb >= 300:
                missed.append(f"peak RSS {mb:.0f} MB >= 300 MB")
        if missed:
            print("\ntargets missed: " + "; ".join(missed))
            return 1 if a.check else 0
        print("\nall targets met" if "orthanc" in a.servers else "")
        return 0
    finally:
        for root in FINISHED_RUNS:
            shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True) if not os.listdir(work) else None
        if a.data is None:
            shutil.rmtree(os.path.join(tmp, "data"), ignore_errors=True)
        shutil.rmtree(os.path.join(tmp, "yingyun-template"), ignore_errors=True)
        if not os.path.exists(work):
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
