"""The patient's path in real headless Chromium at a phone viewport.

Scan (decode the QR PNG that getStudyQR returns), fail then pass
verification, read the conclusion, open the viewer, see a non-blank image,
scroll and see position and pixels change, switch a window preset, measure
scrolling and window-drag frame rates, hit the attempt limit, open an
expired share and a deleted study. Screenshots go to test-artifacts/.
SQLite only: the pages' database logic is covered on both back-ends by
test_pages.py; here the browser is what is under test.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from sqlalchemy import update

from yingyun.storage import schema as s
from yingyun.storage.db import default_sqlite_url

from ..browser import (
    FRAME_RECORDER,
    PHONE,
    SCROLL_EVERY_FRAME,
    WINDOW_EVERY_FRAME,
    chromium,
    decode_qr,
    frames_per_second,
    pixels,
)
from .filmdata import add_study


@pytest.fixture
def database_url(tmp_path):
    return default_sqlite_url(tmp_path / "data")


@pytest.fixture
def browser():
    with chromium() as b:
        yield b


def changed(a, b) -> float:
    """Fraction of pixels that differ clearly (more than 24 grey levels)."""
    return float((np.abs(a - b) > 24).mean())


def shot(page, artifacts, name):
    page.screenshot(path=str(artifacts / f"cloud-film-{name}.png"), full_page=False)


def test_patient_path(server, ris, runtime, tmp_path, browser, artifacts):
    st = add_study(ris, runtime, tmp_path / "dicom", series_sizes=(40, 6), size=256)
    url = decode_qr(st.qr_png)
    assert url == st.qr_url and url.startswith(server.url + "/h5/s/")

    ctx = browser.new_context(**PHONE)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    bad: list[str] = []
    page.on("response",
            lambda r: bad.append(f"{r.status} {r.url}")
            if r.status >= 400 and "favicon" not in r.url and not r.url.endswith("/verify") else None)

    # -- verification: wrong, then right
    page.goto(url)
    assert page.locator("[data-testid=conclusion]").count() == 0
    assert "张" not in page.content()
    shot(page, artifacts, "1-verify")
    page.fill("input[name=answer]", "1111")
    page.click("button[type=submit]")
    assert "输入不正确" in page.locator("[data-testid=verify-error]").inner_text()
    shot(page, artifacts, "2-verify-wrong")
    page.fill("input[name=answer]", "8000")
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=conclusion]")

    # -- the report
    assert page.locator("[data-testid=conclusion]").inner_text() == "胸部CT平扫未见明显异常。"
    assert "双肺纹理清晰" in page.locator("[data-testid=findings]").inner_text()
    assert page.locator("[data-testid=patient-name]").inner_text() == "张*丰"
    shot(page, artifacts, "3-report")

    # -- the viewer
    page.click("[data-testid=open-viewer]")
    img = page.locator("[data-testid=viewer-image]")
    page.wait_for_function("() => { const i = document.querySelector('[data-testid=viewer-image]');"
                           " return i.complete && i.naturalWidth > 0; }")
    assert page.locator("[data-testid=image-index]").inner_text() == "1/40"
    first = pixels(img.screenshot())
    assert first.std() > 20 and first.max() > 150, "the first image is blank"
    shot(page, artifacts, "4-viewer")

    # Scroll two images with the keyboard and one with the wheel.
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.wait_for_function("() => document.querySelector('[data-testid=image-index]').textContent === '3/40'")
    page.wait_for_function("() => { const i = document.querySelector('[data-testid=viewer-image]');"
                           " return i.getAttribute('src').includes('/2.jpg') === false && i.complete; }")
    third = pixels(img.screenshot())
    assert changed(third, first) > 0.002, "scrolling did not change the picture"
    box = img.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(3):  # three notches of the wheel: one image each
        page.mouse.wheel(0, 120)
    page.wait_for_function("() => document.querySelector('[data-testid=image-index]').textContent === '6/40'")

    # Touch-drag scrolling on the phone: swipe down a stretch of the stage.
    before = page.locator("[data-testid=image-index]").inner_text()
    cdp = ctx.new_cdp_session(page)
    x, y = box["x"] + box["width"] / 3, box["y"] + 40
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for k in range(1, 11):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y + 12 * k}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    after = page.locator("[data-testid=image-index]").inner_text()
    assert int(after.split("/")[0]) > int(before.split("/")[0]), (before, after)

    # Pinch to zoom: two fingers moving apart.
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [
        {"x": cx - 30, "y": cy, "id": 1}, {"x": cx + 30, "y": cy, "id": 2}]})
    for k in range(1, 9):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [
            {"x": cx - 30 - 10 * k, "y": cy, "id": 1}, {"x": cx + 30 + 10 * k, "y": cy, "id": 2}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    zoom = page.evaluate("window.__film.state.zoom")
    assert 3.5 < zoom < 3.8, zoom  # fingers 220 px apart from 60: 3.67x
    assert "scale(" in page.evaluate("document.querySelector('[data-testid=viewer-image]').style.transform")
    shot(page, artifacts, "4b-viewer-zoomed")
    page.click("[data-testid=reset]")
    assert page.evaluate("window.__film.state.zoom") == 1

    # A window preset changes the picture.
    page.keyboard.press("Home")
    page.wait_for_function("() => document.querySelector('[data-testid=image-index]').textContent === '1/40'")
    page.wait_for_timeout(100)
    default_px = pixels(img.screenshot())
    page.click("[data-testid=presets-toggle]")
    page.click("[data-testid=preset-lung]")
    page.wait_for_function("() => { const i = document.querySelector('[data-testid=viewer-image]');"
                           " return i.getAttribute('src').includes('p=lung') && i.complete && i.naturalWidth > 0; }")
    lung_px = pixels(img.screenshot())
    assert changed(lung_px, default_px) > 0.05, "the lung window looks like the default one"
    shot(page, artifacts, "5-viewer-lung")

    # -- frame rates once prefetched
    page.wait_for_function("() => { const v = document.getElementById('viewer');"
                           " return +v.dataset.loaded === +v.dataset.total; }", timeout=20000)
    page.evaluate(FRAME_RECORDER)
    for _ in range(20):  # real key presses, as fast as the driver sends them
        page.keyboard.press("ArrowDown")
    page.wait_for_function("() => document.querySelector('[data-testid=image-index]').textContent === '21/40'")
    page.wait_for_timeout(100)
    samples = page.evaluate("() => { window.__rec.on = false; return window.__rec.samples; }")
    assert all(smp[3] for smp in samples), "a frame showed an undecoded picture"
    # One ArrowDown per animation frame through the whole series: the page
    # must put a new, decoded picture on screen in (nearly) every frame.
    page.keyboard.press("Home")
    samples = page.evaluate(SCROLL_EVERY_FRAME, 39)
    fps, n = frames_per_second(samples, key=lambda smp: smp[2])
    assert n >= 35 and fps >= 20, f"scrolling at {fps:.1f} frames/s over {n} changes"
    assert all(smp[3] for smp in samples)
    assert page.locator("[data-testid=image-index]").inner_text() == "40/40"
    # Window drag in the window tool, one move per frame: the picture changes
    # (an exact colour transform of the rendered one) in every frame.
    page.click("[data-testid=tool-window]")
    samples = page.evaluate(WINDOW_EVERY_FRAME, 40)
    wfps, wn = frames_per_second(samples, key=lambda smp: smp[5])
    assert wn >= 35 and wfps >= 20, f"window drag at {wfps:.1f} frames/s over {wn} changes"
    # And with the real mouse: a drag, then the server's exact rendering.
    page.keyboard.press("r")  # reset: back to the lung preset
    page.wait_for_function("() => { const i = document.querySelector('[data-testid=viewer-image]');"
                           " return i.getAttribute('src').includes('p=lung') && i.complete"
                           " && i.style.filter === 'none'; }")
    page.keyboard.press("End")
    page.wait_for_timeout(300)
    before_drag = pixels(img.screenshot())
    zone = page.locator("#stage").bounding_box()
    zx, zy = zone["x"] + zone["width"] / 2, zone["y"] + zone["height"] / 2
    page.mouse.move(zx, zy)
    page.mouse.down()
    for k in range(1, 21):
        page.mouse.move(zx + 4 * k, zy - 2 * k)  # wider and higher: from the lung window towards bone
    page.mouse.up()
    # After the drag pauses, the server renders the exact window.
    page.wait_for_function("() => { const i = document.querySelector('[data-testid=viewer-image]');"
                           " return i.getAttribute('src').includes('w=') && i.complete && i.style.filter === 'none'; }")
    page.wait_for_timeout(100)
    assert changed(pixels(img.screenshot()), before_drag) > 0.05, "dragging the window changed nothing"
    shot(page, artifacts, "6-viewer-window")
    print(f"\nscroll {fps:.1f} frames/s over {n} changes; window drag {wfps:.1f} frames/s over {wn} changes")

    # -- share it, then the share expires
    page.goto(url + "/shares")
    page.click("[data-testid=share-create]")
    share_url = page.locator("[data-testid=share-url]").first.input_value()
    shot(page, artifacts, "7-shares")
    with runtime.db.write() as conn:
        conn.execute(update(s.links).where(s.links.c.kind == "share").values(expires_at=time.time() - 1))
    doctor = browser.new_context(**PHONE).new_page()
    doctor.goto(share_url)
    assert "链接已过期" in doctor.content() and doctor.locator("body").get_attribute("data-code") == "20009"
    assert doctor.locator("[data-testid=conclusion]").count() == 0
    shot(doctor, artifacts, "8-share-expired")

    # -- the hospital deletes the study
    res = ris.post("/ris/study/delete", {"patientId": "P1", "studyId": st.study_id, "accessNumber": "A-" + st.study_id,
                                         "studyUid": st.study_uid})
    assert res["code"] == 0
    assert not bad, bad
    page.goto(url)
    text = page.locator("main").inner_text()
    assert "撤销" in text and "胸部" not in text and "20" not in text
    shot(page, artifacts, "9-deleted")
    assert not errors, errors


def test_attempt_limit_in_the_browser(server, ris, runtime, tmp_path, browser, artifacts):
    st = add_study(ris, runtime, tmp_path / "dicom", series_sizes=(1,))
    url = decode_qr(st.qr_png)
    page = browser.new_context(**PHONE).new_page()
    page.goto(url)
    for k in range(5):
        page.fill("input[name=answer]", f"{k:04d}")
        page.click("button[type=submit]")
    assert page.locator("body").get_attribute("data-code") == "20004"
    assert page.locator("input[name=answer]").count() == 0
    shot(page, artifacts, "10-locked")
    # Another phone, with the right answer: still locked (the lock is per link).
    other = browser.new_context(**PHONE).new_page()
    other.goto(url)
    assert other.locator("input[name=answer]").count() == 0 and "锁定" in other.content()


def test_desktop_english_and_no_js_report(server, ris, runtime, tmp_path, browser, artifacts):
    st = add_study(ris, runtime, tmp_path / "dicom", series_sizes=(12,), size=256)
    ctx = browser.new_context(viewport={"width": 1366, "height": 800}, locale="en-US",
                              extra_http_headers={"Accept-Language": "en-US,en;q=0.9"})
    page = ctx.new_page()
    page.goto(st.qr_url)
    assert "last four digits" in page.content()
    page.fill("input[name=answer]", "8000")
    page.click("button[type=submit]")
    assert page.locator("h2").first.inner_text() == "Report"
    page.click("[data-testid=open-viewer]")
    page.wait_for_function("() => { const i = document.querySelector('[data-testid=viewer-image]');"
                           " return i.complete && i.naturalWidth > 0; }")
    page.locator("[data-testid=image-slider]").fill("7")
    page.wait_for_function("() => document.querySelector('[data-testid=image-index]').textContent === '7/12'")
    shot(page, artifacts, "11-desktop-viewer")
    # Download the images: the page shows progress, then the zip arrives.
    page.goto(st.qr_url + "/download")
    with page.expect_download() as dl:
        page.click("[data-testid=download-images]")
    assert page.locator("[data-testid=download-progress]").inner_text() == "Ready; downloading"
    assert page.evaluate("[document.getElementById('dl-bar').value, document.getElementById('dl-bar').max]") == [12, 12]
    path = dl.value.path()
    import zipfile

    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        assert sum(n.endswith(".jpg") for n in zf.namelist()) == 12
    # The report reads without JavaScript.
    nojs = browser.new_context(java_script_enabled=False, **PHONE)
    p2 = nojs.new_page()
    p2.goto(st.qr_url)
    p2.fill("input[name=answer]", "8000")
    p2.click("button[type=submit]")
    assert p2.locator("[data-testid=conclusion]").inner_text() == "胸部CT平扫未见明显异常。"
