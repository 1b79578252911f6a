"""Headless Chromium (Debian's, never a downloaded build) through Playwright; shared by tests/cloud/*."""

from __future__ import annotations

import contextlib
import io

import numpy as np
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True,
         "locale": "zh-CN", "extra_http_headers": {"Accept-Language": "zh-CN,zh;q=0.9"}}


@contextlib.contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.int16)


def decode_qr(png: bytes) -> str:
    import zxingcpp

    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))
    assert len(results) == 1, f"expected one QR code, found {len(results)}"
    return results[0].text


# Records, on every animation frame, which image index is on screen and
# whether its picture is decoded; `stop()` returns the samples.
FRAME_RECORDER = """
() => {
  const img = document.querySelector('[data-testid=viewer-image]');
  const rec = {samples: [], on: true};
  function tick(ts) {
    if (!rec.on) return;
    rec.samples.push([ts, img.getAttribute('data-index'), img.getAttribute('src'), img.complete && img.naturalWidth > 0,
                      img.style.filter, img.getAttribute('data-filter')]);
    requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);
  window.__rec = rec;
}
"""


def frames_per_second(samples: list, key) -> tuple[float, int]:
    """Frames per second in which `key(sample)` changed, over the span of changes."""
    changes = [samples[i][0] for i in range(1,
                                            len(samples)) if key(samples[i]) != key(samples[i - 1]) and samples[i][3]]
    if len(changes) < 2:
        return 0.0, len(changes)
    return (len(changes) - 1) / ((changes[-1] - changes[0]) / 1000.0), len(changes)


# Dispatches one ArrowDown per animation frame, `n` times, and records what
# each following frame shows (same sample shape as FRAME_RECORDER).
SCROLL_EVERY_FRAME = """
(n) => new Promise(resolve => {
  const img = document.querySelector('[data-testid=viewer-image]');
  const samples = [];
  let sent = 0;
  function tick(ts) {
    samples.push([ts, img.getAttribute('data-index'), img.getAttribute('src'),
                  img.complete && img.naturalWidth > 0, '', '']);
    if (sent < n) {
      document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowDown', bubbles: true, cancelable: true}));
      sent++;
      requestAnimationFrame(tick);
    } else if (samples.length < n + 3) {
      requestAnimationFrame(tick);
    } else {
      resolve(samples);
    }
  }
  requestAnimationFrame(tick);
})
"""


# Drags the window on the stage (the window tool chosen) with one pointer
# move per animation frame (`n` moves), through the viewer's own pointer
# handlers, recording what each frame shows.
WINDOW_EVERY_FRAME = """
(n) => new Promise(resolve => {
  const img = document.querySelector('[data-testid=viewer-image]');
  const zone = document.getElementById('stage');
  const r = zone.getBoundingClientRect();
  const x0 = r.left + r.width / 2, y0 = r.top + r.height / 2;
  const ev = (type, x, y) => new PointerEvent(type, {pointerId: 7, pointerType: 'mouse', button: 0, buttons: 1,
                                                     clientX: x, clientY: y, bubbles: true, cancelable: true});
  zone.dispatchEvent(ev('pointerdown', x0, y0));
  const samples = [];
  let k = 0;
  function tick(ts) {
    samples.push([ts, img.getAttribute('data-index'), img.getAttribute('src'), img.complete && img.naturalWidth > 0,
                  img.style.filter, img.getAttribute('data-filter')]);
    if (k < n) {
      k++;
      zone.dispatchEvent(ev('pointermove', x0 - 3 * k, y0 + 2 * k));
      requestAnimationFrame(tick);
    } else {
      zone.dispatchEvent(ev('pointerup', x0 - 3 * k, y0 + 2 * k));
      resolve(samples);
    }
  }
  requestAnimationFrame(tick);
})
"""
