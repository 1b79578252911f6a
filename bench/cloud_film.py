"""Cloud film in a real browser: first image painted, scrolling rate, report-page bytes.

Run:  .venv/bin/python bench/cloud_film.py [--images 300] [--runs 5]

Starts `yingyun serve`'s app (SQLite, a temp data dir) on loopback, stores a
300-slice 512x512 16-bit CT study through the importer (the C-STORE path),
sends its RIS record and report through the signed API, then drives Debian's
Chromium (Playwright, phone viewport 390x844) through the patient's path:

* first image painted: Element Timing `renderTime` of the viewer's image,
  from the viewer page's navigation start, with a cold render cache (every
  run gets a fresh cache folder) and with a warm one. Target <= 1500 ms.
* full series prefetched: time until all images of the series are loaded.
* scrolling: one ArrowDown per animation frame through the series once
  prefetched; frames per second that show a new, decoded image. Target >= 20.
* report page: bytes transferred for the report page and everything it
  loads, counting cached assets at their full size (as on a first visit).
  Target <= 100 KB.

Rendering latency per slice (p95 cold/cached) is bench/render.py's.
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from pydicom import dcmread
from pydicom.uid import generate_uid

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from render import make_ct_slice  # noqa: E402  (bench/render.py)

from yingyun.archive.importer import run_import  # noqa: E402
from yingyun.contract.signing import signed_headers  # noqa: E402
from yingyun.runtime import Runtime  # noqa: E402
from yingyun.settings import Settings  # noqa: E402
from yingyun.storage.db import default_sqlite_url  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True, "has_touch": True,
             "locale": "zh-CN"}

FIRST_PAINT = """
() => new Promise(resolve => {
  const done = (v) => resolve(v);
  try {
    new PerformanceObserver(list => {
      for (const e of list.getEntries()) if (e.identifier === 'first-image') done(e.renderTime || e.loadTime);
    }).observe({type: 'element', buffered: true});
  } catch (e) { done(-1); }
  setTimeout(() => done(-2), 15000);
})
"""

SCROLL = """
(n) => new Promise(resolve => {
  const img = document.querySelector('[data-testid=viewer-image]');
  const samples = [];
  let sent = 0;
  function tick(ts) {
    samples.push([ts, img.getAttribute('src'), img.complete && img.naturalWidth > 0]);
    if (sent < n) { document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowDown', bubbles: true})); sent++; }
    if (samples.length < n + 3) requestAnimationFrame(tick); else resolve(samples);
  }
  requestAnimationFrame(tick);
})
"""


def make_study(folder: Path, n: int) -> tuple[str, list[Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    proto = folder / "proto.dcm"
    make_ct_slice(proto)
    base = dcmread(proto)
    pixels = base.pixel_array.copy()
    study_uid, series_uid = generate_uid(), generate_uid()
    paths = []
    for i in range(n):
        ds = base.copy()
        ds.file_meta = base.file_meta.copy()
        sop = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.SOPInstanceUID = sop
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.AccessionNumber = "BENCH-A1"
        ds.InstanceNumber = i + 1
        ds.SliceLocation = f"{-150 + i:.1f}"
        # Different content per slice (a shifted phantom), so nothing is a cache twin.
        ds.PixelData = np.roll(pixels, i % 40 - 20, axis=0).astype(np.uint16).tobytes()
        p = folder / f"{i:04d}.dcm"
        ds.save_as(p, enforce_file_format=True)
        paths.append(p)
    proto.unlink()
    return study_uid, paths


def serve_study(tmp: Path, images: int) -> tuple[Any, Any, Any, str]:
    """A server on loopback with one `images`-slice CT study, its RIS record and report:
    (runtime, patient context, server thread, the study's QR URL). Also bench/film_first_paint.py's."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    from yingyun.serve import create_app, patient_context

    from tests.support.net import free_port
    from tests.support.servers import ServerThread

    port = free_port()
    settings = Settings(data_dir=tmp / "data", database_url=default_sqlite_url(tmp / "data"),
                        public_url=f"http://127.0.0.1:{port}")
    rt = Runtime.open(settings, create_keys=True, migrate=True)
    rt.tenancy.add_hospital(hospital_id="h1", name="基准医院")
    _, token = rt.tenancy.add_partner(app_id="ris-bench", hospitals=["h1"])
    t0 = time.perf_counter()
    study_uid, paths = make_study(tmp / "dicom", images)
    summary = run_import(rt.instances, spool_dir=rt.settings.spool_dir,
                         hospital_id="h1", paths=[str(p) for p in paths], out=io.StringIO())
    print(f"study: {images} slices 512x512 16-bit CT, stored {summary['stored']} in "
          f"{time.perf_counter() - t0:.1f} s")

    film = patient_context(rt)
    server = ServerThread(create_app(rt, film=film), port=port)
    server.server.config.proxy_headers = False
    server.start()
    http = httpx.Client(base_url=server.url, timeout=30)

    def ris(path, body):
        r = http.post(path, json=body, headers=signed_headers("ris-bench", token))
        assert r.json()["code"] == 0, r.text
        return r.json()

    ris("/ris/study/add", {"patientId": "B1", "patientName": "张三丰", "patientSex": "M", "studyId": "B1",
                           "accessNumber": "BENCH-A1", "modality": "CT", "studyUid": study_uid,
                           "phoneNum": "13812348000", "studyDesc": "胸部CT", "bodyPart": "胸部",
                           "studyDate": "2026-11-20 09:30:00", "patientAge": "45", "patientAgeUnit": "Y"})
    ris("/ris/report/add", {"reportNumber": "RB1", "studyId": "B1", "accessNumber": "BENCH-A1",
                            "imageDescription": "双肺纹理清晰，未见明确实质性病变。" * 4,
                            "conclusion": "胸部CT平扫未见明显异常。", "reportDoctor": "李医生",
                            "reportTime": "2026-11-20 10:00:00", "auditDoctor": "王主任",
                            "auditTime": "2026-11-20 10:30:00"})
    url = ris("/ris/getStudyQR", {"studyId": "B1"})["data"]["qrUrl"]
    return rt, film, server, url


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="yingyun-film-bench-"))
    try:
        rt, film, server, url = serve_study(tmp, args.images)

        cold, warm, prefetch, fps_list = [], [], [], []
        report_bytes = None
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for _run in range(args.runs):
                for label, bucket in (("cold", cold), ("warm", warm)):
                    if label == "cold":
                        shutil.rmtree(film.cache.root, ignore_errors=True)
                        film.cache.root.mkdir(parents=True)
                    ctx = browser.new_context(**PHONE)
                    page = ctx.new_page()
                    page.goto(url)
                    page.fill("input[name=answer]", "8000")
                    page.click("button[type=submit]")
                    page.wait_for_selector("[data-testid=conclusion]")
                    if report_bytes is None:
                        report_bytes = page.evaluate(
                            "() => performance.getEntriesByType('navigation')"
                            ".concat(performance.getEntriesByType('resource'))"
                            ".reduce((a, e) => a + Math.max(e.transferSize || 0, e.encodedBodySize || 0), 0)")
                    t_nav = time.perf_counter()
                    page.goto(url + "/viewer")
                    paint = page.evaluate(FIRST_PAINT)
                    bucket.append(paint)
                    if label == "cold":
                        page.wait_for_function("() => { const v = document.getElementById('viewer');"
                                               " return +v.dataset.loaded === +v.dataset.total; }", timeout=120000)
                        prefetch.append((time.perf_counter() - t_nav) * 1000)
                        samples = page.evaluate(SCROLL, min(args.images - 1, 200))
                        changes = [samples[i][0] for i in range(1, len(samples))
                                   if samples[i][1] != samples[i - 1][1] and samples[i][2]]
                        if len(changes) > 1:
                            fps_list.append((len(changes) - 1) / ((changes[-1] - changes[0]) / 1000))
                    ctx.close()
            browser.close()
        server.stop()
        film.stop()
        rt.close()

        def line(name, xs, unit, target=None):
            xs = sorted(xs)
            if not xs:
                print(f"{name:<40} (no data)")
                return
            med = statistics.median(xs)
            extra = f"  target {target}" if target else ""
            print(f"{name:<40} median {med:8.1f} {unit}  min {xs[0]:8.1f}  max {xs[-1]:8.1f}  (n={len(xs)}){extra}")

        print(f"\nChromium {CHROMIUM}, phone 390x844 @3x, loopback, {args.runs} runs")
        line("first image painted, cold cache", cold, "ms", "<= 1500 ms")
        line("first image painted, warm cache", warm, "ms", "<= 1500 ms")
        line(f"all {args.images} images prefetched (cold)", prefetch, "ms")
        line("scrolling once prefetched", fps_list, "fps", ">= 20 fps")
        print(f"{'report page, bytes transferred':<40} {report_bytes / 1024:8.1f} KB  target <= 100 KB")
        print("rendering per slice (p95 cold / cached): see bench/render.py")
        ok = max(cold) <= 1500 and report_bytes <= 100 * 1024 and (not fps_list or min(fps_list) >= 20)
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
