"""The reading viewer in real headless Chromium (Debian's): a radiologist signs in, opens
/reading/viewer/viewer?StudyInstanceUIDs=… and OHIF draws the study's image from /dicomweb on the session
cookie alone; no request leaves the test server, and the CSP blocks nothing OHIF needs. Another hospital's
radiologist gets nothing. Screenshots: test-artifacts/reading-viewer*.png."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ..browser import CHROMIUM
from .conftest import PASSWORD

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--enable-unsafe-swiftshader"]
# Per viewport canvas: width, height, share of lit pixels, standard deviation of the red channel.
CANVAS_STATS = """
() => [...document.querySelectorAll('canvas.cornerstone-canvas')].map(c => {
  const ctx = c.getContext('2d');
  if (!ctx || !c.width || !c.height) return [c.width, c.height, 0, 0];
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let n = 0, lit = 0, sum = 0, sum2 = 0;
  for (let i = 0; i < d.length; i += 4 * 7) { const v = d[i]; n++; sum += v; sum2 += v * v; if (v > 10) lit++; }
  const mean = sum / n;
  return [c.width, c.height, lit / n, Math.sqrt(Math.max(0, sum2 / n - mean * mean))];
})
"""


def drawn(stats: list) -> bool:
    return any(s[2] > 0.2 and s[3] > 5 for s in stats)


@contextlib.contextmanager
def signed_in_page(world, username: str) -> Iterator[tuple]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            requests: list[str] = []
            context.on("request", lambda r: requests.append(r.url))
            # Sign in as the reading page does: the session API sets the cookie in this browser.
            r = context.request.post(world.url + "/api/v1/session", data={"username": username, "password": PASSWORD})
            assert r.ok and r.json()["code"] == 0, r.text()
            page = context.new_page()
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text))
            yield page, requests, console
        finally:
            browser.close()


def test_a_radiologist_sees_the_study_drawn_by_ohif(world, artifacts) -> None:
    with signed_in_page(world, "rad1") as (page, requests, console):
        page.goto(f"{world.url}/reading/viewer/viewer?StudyInstanceUIDs={world.study}",
                  wait_until="domcontentloaded", timeout=120_000)
        stats: list = []
        for _ in range(240):
            stats = page.evaluate(CANVAS_STATS)
            if drawn(stats):
                break
            page.wait_for_timeout(500)
        page.screenshot(path=str(artifacts / "reading-viewer.png"))
        assert drawn(stats), (stats, console[-10:])
        elsewhere = [u for u in requests if not u.startswith(world.url + "/") and not u.startswith(("data:", "blob:"))]
        assert not elsewhere, elsewhere
        assert any("/dicomweb/studies/" in u and "/frames/" in u for u in requests)
        blocked = [m for m in console if "Content Security Policy" in m]
        assert not blocked, blocked


def test_a_radiologist_of_another_hospital_gets_no_image(world, artifacts) -> None:
    with signed_in_page(world, "rad3") as (page, requests, console):
        answers: list[tuple[str, int]] = []
        page.on("response", lambda r: answers.append((r.url, r.status)) if "/dicomweb/" in r.url else None)
        page.goto(f"{world.url}/reading/viewer/viewer?StudyInstanceUIDs={world.study}",
                  wait_until="domcontentloaded", timeout=120_000)
        page.wait_for_timeout(8000)
        page.screenshot(path=str(artifacts / "reading-viewer-refused.png"))
        assert not drawn(page.evaluate(CANVAS_STATS))
        assert answers, "OHIF asked /dicomweb nothing"
        # QIDO finds no such study for this user, and nothing was retrieved.
        assert not any("/frames/" in u or u.endswith("/metadata") for u, status in answers if status == 200), answers
