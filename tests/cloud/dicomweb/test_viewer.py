"""A real DICOMweb viewer: OHIF's published build (@ohif/app on npm), in headless Chromium.

OHIF is served from its own origin (a static server on another port) and
talks to Yingyun's /dicomweb across origins, so CORS is exercised as a
viewer deployed elsewhere would. The bearer token travels as an
Authorization header on every request (Playwright's extra headers, as an
authenticating proxy in front of a viewer would add it). The test passes
when a viewport canvas shows the stored image; the screenshot is saved to
test-artifacts/dicomweb-ohif.png.

The build is the one `make assets` installs (package.json "prebuilt",
node_modules/@ohif/app/dist), served here from the root of another origin as
it was built; Yingyun's own copy at /reading/viewer/ is tests/cloud/viewer's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from yingyun.cloud.dicomweb import TokenRegistry
from yingyun.cloud.viewer import find_build
from yingyun.core.dicom import read_file_info
from yingyun.runtime import Runtime
from yingyun.settings import Settings
from yingyun.storage.db import default_sqlite_url

from ...support.dicom_data import StudySpec, make_study
from ...support.net import free_port
from ...support.servers import ServerThread
from ..browser import CHROMIUM

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--enable-unsafe-swiftshader"]


def ohif_dist() -> Path:
    """The build `make assets` installed (package.json "prebuilt"): no network at test time."""
    build = find_build()
    if build is None:
        pytest.fail("OHIF's build is not installed: run `make assets`")
    return build.dist


def app_config(dicomweb: str) -> str:
    return """
window.config = {
  routerBasename: '/',
  extensions: [],
  modes: [],
  showStudyList: true,
  maxNumberOfWebWorkers: 1,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: false,
  showLoadingIndicator: true,
  investigationalUseDialog: { option: 'never' },
  defaultDataSourceName: 'yingyun',
  dataSources: [{
    namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
    sourceName: 'yingyun',
    configuration: {
      friendlyName: 'Yingyun',
      name: 'yingyun',
      wadoUriRoot: 'DICOMWEB', qidoRoot: 'DICOMWEB', wadoRoot: 'DICOMWEB',
      qidoSupportsIncludeField: true,
      supportsReject: false,
      imageRendering: 'wadors',
      thumbnailRendering: 'wadors',
      enableStudyLazyLoad: true,
      supportsFuzzyMatching: false,
      supportsWildcard: true,
      staticWado: false,
      singlepart: 'bulkdata,video',
      bulkDataURI: { enabled: true },
      omitQuotationForMultipartRequest: true,
    },
  }],
};
""".replace("DICOMWEB", dicomweb)


def static_app(dist: Path, config: str) -> Starlette:
    index = dist / "index.html"

    async def serve(request):
        path = request.path_params.get("path", "")
        if path == "app-config.js":
            return Response(config, media_type="application/javascript")
        if path == "healthz":
            return Response("ok")
        f = (dist / path).resolve()
        if path and f.is_file() and dist.resolve() in f.parents:
            return FileResponse(f)
        return FileResponse(index)  # the single-page app's own routes

    return Starlette(routes=[Route("/", serve), Route("/{path:path}", serve)])


@pytest.fixture
def viewer_setup(tmp_path, pg_server):
    dist = ohif_dist()
    viewer_port = free_port()
    origin = f"http://127.0.0.1:{viewer_port}"
    settings = Settings(data_dir=tmp_path / "data", database_url=default_sqlite_url(tmp_path / "data"),
                        cors_origins=[origin])
    rt = Runtime.open(settings, create_keys=True, migrate=True)
    rt.tenancy.add_hospital(hospital_id="h1", name="第一医院")
    token = TokenRegistry(rt.db).add(name="ohif", hospitals=["h1"])
    spec = StudySpec(patient_name="Viewer^Test=看^图", patient_id="PVIEW", accession="AVIEW")
    files = make_study(tmp_path / "files", spec, series=1, per_series=3)
    for p in files:
        data = p.read_bytes()
        info = read_file_info(data)
        assert rt.instances.store(hospital_id="h1", data=memoryview(data)[info.dataset_offset:],
                                  transfer_syntax_uid=info.transfer_syntax_uid).outcome == "stored"
    from yingyun.serve import create_app

    api = ServerThread(create_app(rt)).start()
    viewer = ServerThread(static_app(dist, app_config(api.url + "/dicomweb")), port=viewer_port).start()
    yield {"viewer": viewer.url, "token": token, "study": spec.study_uid}
    viewer.stop()
    api.stop()
    rt.close()


CANVAS_STATS = """
() => {
  const canvases = [...document.querySelectorAll('canvas.cornerstone-canvas')];
  return canvases.map(c => {
    const ctx = c.getContext('2d');
    if (!ctx || !c.width || !c.height) return [c.width, c.height, 0, 0];
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let n = 0, lit = 0, sum = 0, sum2 = 0;
    for (let i = 0; i < d.length; i += 4 * 7) { const v = d[i]; n++; sum += v; sum2 += v * v; if (v > 10) lit++; }
    const mean = sum / n;
    return [c.width, c.height, lit / n, Math.sqrt(Math.max(0, sum2 / n - mean * mean))];
  });
}
"""


def test_ohif_shows_a_stored_study(viewer_setup, artifacts):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800},
                                          extra_http_headers={"Authorization": f"Bearer {viewer_setup['token']}"})
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            failed: list[str] = []
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.goto(f"{viewer_setup['viewer']}/viewer?StudyInstanceUIDs={viewer_setup['study']}",
                      wait_until="domcontentloaded", timeout=120_000)
            stats = []
            for _ in range(240):
                stats = page.evaluate(CANVAS_STATS)
                if any(s[2] > 0.2 and s[3] > 5 for s in stats):
                    break
                page.wait_for_timeout(500)
            page.screenshot(path=str(artifacts / "dicomweb-ohif.png"))
            assert any(s[2] > 0.2 and s[3] > 5 for s in stats), (stats, errors[:5], failed[:5])
            # and the study list finds it through QIDO-RS with the patient's name
            page.goto(f"{viewer_setup['viewer']}/", wait_until="domcontentloaded")
            try:
                page.get_by_text("Viewer, Test").first.wait_for(timeout=30_000)
            finally:
                page.screenshot(path=str(artifacts / "dicomweb-ohif-list.png"))
        finally:
            browser.close()
