"""/reading/viewer/ serves OHIF's build from our own node_modules (no network): the index, the generated
app-config.js, the build's files rewritten for the base path, the SPA fallback, cache headers and the CSP."""

from __future__ import annotations

import re

import httpx

from yingyun.cloud.viewer import find_build
from yingyun.cloud.viewer.pages import app_config


def get(world, path: str) -> httpx.Response:
    return httpx.get(world.url + "/reading/viewer" + path, timeout=60)


def test_the_index_loads_only_our_own_files_under_the_base_path(world) -> None:
    r = get(world, "/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-cache"
    html = r.text
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls and all(u.startswith("/reading/viewer/") for u in urls), urls
    assert 'window.PUBLIC_URL="/reading/viewer/"' in html
    assert "init-service-worker" not in html and "googleapis" not in html
    for u in urls:  # each is served, from the installed build
        assert httpx.get(world.url + u, timeout=60).status_code == 200, u
    csp = r.headers["content-security-policy"]
    assert "'wasm-unsafe-eval'" in csp and "worker-src 'self' blob:" in csp and "connect-src 'self'" in csp
    assert "'unsafe-eval'" not in csp.replace("'wasm-unsafe-eval'", "")
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert re.search(r"script-src [^;]*'sha256-[A-Za-z0-9+/=]+'", csp)
    assert r.headers["x-content-type-options"] == "nosniff"
    # the bare path and OHIF's own routes answer the index
    assert httpx.get(world.url + "/reading/viewer", timeout=30, follow_redirects=False).status_code == 308
    spa = get(world, "/viewer?StudyInstanceUIDs=1.2.3")
    assert spa.status_code == 200 and spa.text == html


def test_app_config_points_at_our_dicomweb(world) -> None:
    r = get(world, "/app-config.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    js = r.text
    assert js == app_config()
    assert "routerBasename: \"/reading/viewer\"" in js
    assert js.count('window.location.origin + "/dicomweb"') == 3  # qido, wado, wado-uri roots
    assert "http://" not in js and "https://" not in js  # no other host, no CDN


def test_hashed_files_are_cached_for_a_year_and_rewritten_for_the_base_path(world) -> None:
    build = find_build()
    assert build is not None
    app = get(world, "/" + build.app_bundle)
    assert app.status_code == 200 and app.headers["content-type"].startswith("text/javascript")
    assert app.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert b'__webpack_require__.p = "/reading/viewer/";' in app.content
    assert b'__webpack_require__.p = "/";' not in app.content
    css = get(world, "/app.bundle.css")
    assert css.status_code == 200 and b"url(/reading/viewer/" in css.content and b"url(/a" not in css.content
    wasm = next(p.name for p in build.dist.glob("*.wasm"))
    w = get(world, "/" + wasm)
    assert w.status_code == 200 and w.headers["content-type"] == "application/wasm"
    assert w.headers["cache-control"].endswith("immutable")
    assert w.content == (build.dist / wasm).read_bytes()


def test_missing_files_and_paths_out_of_the_build_are_404(world) -> None:
    assert get(world, "/no-such.bundle.0123456789abcdef.js").status_code == 404
    # ../ sent encoded, so no client normalises it away: the server keeps inside dist/
    for path in ("..%2F..%2Fpackage.json", "..%2F..%2F..%2F..%2Fpackage.json", "assets%2F..%2F..%2Fpackage.json"):
        r = httpx.get(f"{world.url}/reading/viewer/{path}", timeout=30)
        assert r.status_code == 404 and b"ohif" not in r.content.lower(), path
