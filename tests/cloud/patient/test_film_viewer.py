"""The cloud film viewer on a phone, upright and on its side (issue 16, item 5).

Real Chromium with touch at 390x844 and 844x390: one control bar that never
scrolls sideways, the image taking the room, window/level by one finger in
the window tool, a distance measured on a calibrated CT checked in mm (and
"no calibration" without Pixel Spacing), orientation markers, cine, and the
patient/exam overlay hidden and shown. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pydicom import dcmread

from yingyun.archive.importer import run_import
from yingyun.cloud.patient.pages.viewer import direction_letters, orientation_markers
from yingyun.storage.db import default_sqlite_url

from ..browser import CHROMIUM, chromium, decode_qr
from .filmdata import add_study, ct_slice, uid

SIZE = 256
SPACING = (0.7, 0.7)
UPRIGHT = {"width": 390, "height": 844}
ON_ITS_SIDE = {"width": 844, "height": 390}


def phone(viewport: dict) -> dict:
    return {"viewport": viewport, "device_scale_factor": 2, "is_mobile": True, "has_touch": True, "locale": "zh-CN",
            "extra_http_headers": {"Accept-Language": "zh-CN,zh;q=0.9"}}


@pytest.fixture
def database_url(tmp_path):
    return default_sqlite_url(tmp_path / "data")


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists()
    with chromium() as b:
        yield b


def calibrated_study(ris, runtime, folder: Path, *, study_id: str, spacing: tuple[float, float] | None,
                     n: int = 8):
    """A CT study of `n` axial slices, with Pixel Spacing `spacing` (none when None)."""
    st = add_study(ris, runtime, folder, study_id=study_id, series_sizes=())
    series_uid = uid()
    paths = []
    for i in range(n):
        p = ct_slice(folder / study_id / f"{i:04d}.dcm", study_uid=st.study_uid, series_uid=series_uid,
                     number=i + 1, total=n, size=SIZE, accession="A-" + study_id)
        ds = dcmread(p)
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-90, -90, 5.0 * i]
        if spacing:
            ds.PixelSpacing = list(spacing)
        ds.save_as(p, enforce_file_format=True)
        paths.append(str(p))
    summary = run_import(runtime.instances, spool_dir=runtime.settings.spool_dir, hospital_id="h1", paths=paths,
                         out=io.StringIO())
    assert summary["stored"] == n, summary
    return st


def open_viewer(browser, st, viewport: dict):
    ctx = browser.new_context(**phone(viewport))
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(decode_qr(st.qr_png))
    page.fill("input[name=answer]", "8000")
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=conclusion]")
    page.click("[data-testid=open-viewer]")
    page.wait_for_function("() => { const i = document.querySelector('[data-testid=viewer-image]');"
                           " return i.complete && i.naturalWidth > 0 && window.__film && window.__film.info(); }")
    return ctx, page, errors


def touch_line(ctx, page, a: tuple[float, float], b: tuple[float, float], steps: int = 12) -> None:
    cdp = ctx.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": a[0], "y": a[1]}]})
    for k in range(1, steps + 1):
        x = a[0] + (b[0] - a[0]) * k / steps
        y = a[1] + (b[1] - a[1]) * k / steps
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def image_to_screen(stage: dict, px: float, py: float) -> tuple[float, float]:
    """Where pixel (px, py) of the SIZE x SIZE image is on screen, the image contained in the stage, unzoomed."""
    s0 = min(stage["width"] / SIZE, stage["height"] / SIZE)
    left = stage["x"] + (stage["width"] - SIZE * s0) / 2
    top = stage["y"] + (stage["height"] - SIZE * s0) / 2
    return left + px * s0, top + py * s0


def assert_bar_fits(page, viewport: dict) -> None:
    """Every control is on screen and nothing scrolls sideways."""
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    bar = page.locator("[data-testid=control-bar]")
    assert page.evaluate("(el) => el.scrollWidth <= el.clientWidth", bar.element_handle())
    for el in bar.locator("a, button").all():
        box = el.bounding_box()
        assert box is not None and box["width"] > 20 and box["height"] > 20
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"] + 0.5, el.inner_text()
        assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"] + 0.5, el.inner_text()


@pytest.mark.parametrize("viewport", [UPRIGHT, ON_ITS_SIDE], ids=["390x844", "844x390"])
def test_measure_a_calibrated_ct_in_mm(server, ris, runtime, tmp_path, browser, artifacts, viewport):
    st = calibrated_study(ris, runtime, tmp_path / "dicom", study_id="CAL", spacing=SPACING)
    ctx, page, errors = open_viewer(browser, st, viewport)
    name = f"{viewport['width']}x{viewport['height']}"
    assert_bar_fits(page, viewport)

    stage = page.locator("#stage").bounding_box()
    share = stage["width"] * stage["height"] / (viewport["width"] * viewport["height"])
    assert share >= 0.8, f"the image area is {share:.0%} of the screen"
    # The markers of an axial slice seen from the feet: patient's right on the screen's left.
    marks = {side: page.locator(f"[data-testid=orient-{side}]").inner_text() for side in
             ("left", "right", "top", "bottom")}
    assert marks == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    page.screenshot(path=str(artifacts / f"cloud-film-viewer-{name}.png"))

    # Measure 200 pixels across and 100 down: sqrt(200² + 100²) * 0.7 mm = 156.5 mm.
    page.click("[data-testid=tool-measure]")
    a = image_to_screen(stage, 28, 78)
    b = image_to_screen(stage, 228, 178)
    touch_line(ctx, page, a, b)
    value = page.locator("[data-testid=measure-value]")
    assert value.is_visible()
    expected = ((200 * SPACING[1]) ** 2 + (100 * SPACING[0]) ** 2) ** 0.5
    mm = float(value.get_attribute("data-mm"))
    # One screen pixel is at most 256/390 image pixels: the touch points round to it.
    assert abs(mm - expected) < 1.0, (mm, expected)
    assert value.inner_text().endswith(" mm") and abs(float(value.inner_text().split()[0]) - expected) < 1.0
    page.screenshot(path=str(artifacts / f"cloud-film-measure-{name}.png"))
    # Zooming keeps the line on the anatomy: the same length.
    page.evaluate("() => { const s = window.__film.state; s.zoom = 2; }")
    page.click("[data-testid=tool-pan]")
    touch_line(ctx, page, (stage["x"] + 60, stage["y"] + 60), (stage["x"] + 80, stage["y"] + 70), steps=3)
    assert abs(float(page.locator("[data-testid=measure-value]").get_attribute("data-mm")) - mm) < 0.01

    # The overlay hides and comes back; the markers go with it.
    overlay = page.locator("[data-testid=patient-overlay]")
    assert overlay.is_visible() and "张*丰" in overlay.inner_text()
    page.click("[data-testid=overlay-toggle]")
    assert not overlay.is_visible() and not page.locator("[data-testid=orient-left]").is_visible()
    page.click("[data-testid=overlay-toggle]")
    assert overlay.is_visible()
    assert not errors, errors
    ctx.close()


def test_uncalibrated_image_says_so(server, ris, runtime, tmp_path, browser):
    st = calibrated_study(ris, runtime, tmp_path / "dicom", study_id="NOCAL", spacing=None)
    ctx, page, errors = open_viewer(browser, st, UPRIGHT)
    stage = page.locator("#stage").bounding_box()
    page.click("[data-testid=tool-measure]")
    touch_line(ctx, page, image_to_screen(stage, 28, 128), image_to_screen(stage, 228, 128))
    value = page.locator("[data-testid=measure-value]")
    assert value.get_attribute("data-calibrated") == "no" and value.get_attribute("data-mm") is None
    assert "无校准" in value.inner_text() and "mm" not in value.inner_text()
    px = float(value.inner_text().split()[0])
    assert abs(px - 200) <= 2, px
    assert not errors, errors
    ctx.close()


def test_window_by_one_finger_and_cine(server, ris, runtime, tmp_path, browser, artifacts):
    st = calibrated_study(ris, runtime, tmp_path / "dicom", study_id="WL", spacing=SPACING, n=12)
    ctx, page, errors = open_viewer(browser, st, ON_ITS_SIDE)
    stage = page.locator("#stage").bounding_box()
    mid = (stage["x"] + stage["width"] / 2, stage["y"] + stage["height"] / 2)
    # In the scroll tool, one finger pages...
    touch_line(ctx, page, mid, (mid[0], mid[1] + 60), steps=6)
    assert page.locator("[data-testid=image-index]").inner_text() != "1/12"
    assert page.evaluate("window.__film.state.custom") is None
    # ...in the window tool, the same finger sets a window, rendered by the server once it stops;
    # at once, before the new slice's facts have arrived, it starts from the series' window.
    page.click("[data-testid=tool-window]")
    assert page.get_attribute("[data-testid=tool-window]", "aria-pressed") == "true"
    index = page.locator("[data-testid=image-index]").inner_text()
    touch_line(ctx, page, mid, (mid[0] + 80, mid[1] - 40), steps=8)
    assert page.locator("[data-testid=image-index]").inner_text() == index
    page.wait_for_function("() => { const i = document.querySelector('[data-testid=viewer-image]');"
                           " return i.getAttribute('src').includes('w=') && i.complete && i.style.filter === 'none'; }")
    custom = page.evaluate("window.__film.state.custom")
    assert custom["w"] > 400  # wider than the 400 HU the slices carry
    # Presets sit in a panel the bar opens.
    page.click("[data-testid=presets-toggle]")
    page.click("[data-testid=preset-lung]")
    assert page.locator("[data-testid=preset-panel]").is_hidden()
    assert page.evaluate("window.__film.state.preset") == "lung"
    # Cine plays through the series and pauses.
    page.evaluate("window.__film.go(0)")
    page.click("[data-testid=cine]")
    assert page.get_attribute("[data-testid=cine]", "aria-pressed") == "true"
    page.wait_for_function("() => document.querySelector('[data-testid=image-index]').textContent === '6/12'")
    page.click("[data-testid=cine]")
    stopped = page.locator("[data-testid=image-index]").inner_text()
    page.wait_for_timeout(400)
    assert page.locator("[data-testid=image-index]").inner_text() == stopped
    assert page.get_attribute("[data-testid=cine]", "aria-pressed") == "false"
    assert not errors, errors
    ctx.close()


def test_orientation_letters():
    assert orientation_markers([1, 0, 0, 0, 1, 0]) == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    # Coronal: rows run to the patient's left, columns to the feet.
    assert orientation_markers([1, 0, 0, 0, 0, -1]) == {"left": "R", "right": "L", "top": "H", "bottom": "F"}
    # Sagittal: rows run posterior, columns to the feet.
    assert orientation_markers([0, 1, 0, 0, 0, -1]) == {"left": "A", "right": "P", "top": "H", "bottom": "F"}
    # Oblique: the strongest axis first.
    assert direction_letters([0.866, 0.5, 0]) == "LP"
    assert orientation_markers(None) is None and orientation_markers([0, 0, 0, 0, 0, 0]) is None
