// Yingyun cloud-film viewer: stack scrolling, window/level, zoom and pan over
// server-rendered JPEGs, distance measurement, cine, orientation markers.
// No dependencies, no bundler.
//
// One finger does what the chosen tool says (scroll, window, pan, measure):
// a tool is a visible button in the control bar, never a hidden zone. Two
// fingers always zoom; a mouse's right button always windows.
//
// Images are fetched into a priority queue (nearest the current position
// first, then the rest of the series), so once prefetched, scrolling only
// swaps an <img> source that is already in the memory cache. Dragging the
// window applies an exact affine SVG filter to the picture on screen (the
// change from the window it was rendered with to the one asked for) at
// frame rate, and the server renders the exact picture once the drag pauses.
(function () {
  "use strict";

  var manifestEl = document.getElementById("manifest");
  var img = document.getElementById("vimg");
  if (!manifestEl || !img) return;
  var M = JSON.parse(manifestEl.textContent);
  var root = document.getElementById("viewer");
  var stage = document.getElementById("stage");
  var idxEl = document.getElementById("vindex");
  var infoEl = document.getElementById("vinfo");
  var winEl = document.getElementById("vwin");
  var slider = document.getElementById("vslider");
  var seriesEl = document.querySelector("[data-testid=series-description]");
  var mline = document.getElementById("vmline");
  var mvalue = document.getElementById("vmvalue");
  var cineBtn = document.getElementById("vcine");

  var MAX_LOADS = 5, NEAR_AHEAD = 10, NEAR_BEHIND = 5;

  var S = {
    series: 0,
    index: 0,
    preset: "default",   // preset name, or null when a custom window is set
    custom: null,        // {c, w} while a custom window is in use
    dragWin: null,       // {c, w} while the user is dragging (not yet rendered)
    zoom: 1, panX: 0, panY: 0,
    mode: "scroll",
    measure: null,       // {a: [x, y], b: [x, y]} in the image's own pixels, on `measureAt`
    measureAt: -1,       // the index the measurement was drawn on
    cine: 0              // the cine timer while playing
  };
  var cache = new Map();       // url -> {img, state: "loading"|"ready"|"error", win}
  var loading = 0;
  var queue = [];
  var infos = new Map();       // "pk/frame" -> info json
  var shownUrl = img.getAttribute("src");

  function series() { return M.series[S.series]; }
  function frames() { return series().frames; }

  function query() {
    if (S.custom) return "?w=" + encodeURIComponent(round(S.custom.c) + "," + round(S.custom.w));
    if (S.preset && S.preset !== "default") return "?p=" + encodeURIComponent(S.preset);
    return "";
  }
  function round(x) { return Math.round(x * 10) / 10; }
  function urlFor(i, q) {
    var f = frames()[i];
    return M.base + "/img/" + f[0] + "/" + f[1] + "/" + f[2] + ".jpg" + (q === undefined ? query() : q);
  }

  // The window (in modality units) a given query renders with, if known.
  function windowOfQuery(q, i) {
    if (q.indexOf("?w=") === 0) {
      var p = decodeURIComponent(q.slice(3)).split(",");
      return {c: +p[0], w: +p[1]};
    }
    if (q.indexOf("?p=") === 0) {
      var pw = (series().presetWindows || {})[decodeURIComponent(q.slice(3))];
      return pw ? {c: pw[0], w: pw[1]} : null;
    }
    var info = infoFor(i) || seriesInfo();
    return info && info.window ? {c: info.window.center, w: info.window.width} : null;
  }
  function infoFor(i) { var f = frames()[i]; return infos.get(f[0] + "/" + f[2]) || null; }
  // Facts of another slice of the series stand in while this one's are on their way
  // (a window drag right after paging must start from the series' window, not a guess).
  function seriesInfo() {
    var fr = frames();
    for (var i = 0; i < fr.length; i++) { var v = infos.get(fr[i][0] + "/" + fr[i][2]); if (v) return v; }
    return null;
  }

  // -- loading ----------------------------------------------------------------

  function load(url, near) {
    var e = cache.get(url);
    if (e) return e;
    e = {img: new Image(), state: "loading", near: near};
    cache.set(url, e);
    loading++;
    e.img.onload = function () {
      var done = function () {
        e.state = "ready"; loading--; onLoaded(url); pump();
      };
      if (e.near && e.img.decode) e.img.decode().then(done, done); else done();
    };
    e.img.onerror = function () { e.state = "error"; loading--; pump(); };
    e.img.src = url;
    return e;
  }

  function onLoaded(url) {
    if (url === urlFor(S.index) && shownUrl !== url) show();
    updateLoaded();
  }

  function updateLoaded() {
    var q = query(), n = 0, fr = frames();
    for (var i = 0; i < fr.length; i++) {
      var e = cache.get(urlFor(i, q));
      if (e && e.state === "ready") n++;
    }
    root.setAttribute("data-loaded", String(n));
    root.setAttribute("data-total", String(fr.length));
  }

  function plan() {
    // Nearest first (ahead weighted over behind), then the whole series.
    var n = frames().length, q = query(), out = [], seen = {};
    function add(i, near) {
      if (i < 0 || i >= n || seen[i]) return;
      seen[i] = 1;
      var u = urlFor(i, q);
      if (!cache.has(u)) out.push([u, near]);
    }
    add(S.index, true);
    for (var d = 1; d <= NEAR_AHEAD; d++) { add(S.index + d, true); if (d <= NEAR_BEHIND) add(S.index - d, true); }
    for (d = 1; d < n; d++) { add(S.index + d, false); add(S.index - d, false); }
    queue = out;
    pump();
  }

  function pump() {
    while (loading < MAX_LOADS && queue.length) {
      var item = queue.shift();
      if (!cache.has(item[0])) load(item[0], item[1]);
    }
  }

  // -- display ------------------------------------------------------------------

  // The picture on screen was rendered with window `from`; show it as if
  // rendered with `to`. Both map linearly onto 0..1, so the change is
  // y' = a*y + b, which two CSS colour filters express exactly (Skia colour
  // matrices: cheap at any size, unlike an SVG filter's offscreen pass).
  function setFilter(from, to, inverted) {
    if (!from || !to || (Math.abs(from.c - to.c) < 1e-6 && Math.abs(from.w - to.w) < 1e-6)) {
      img.style.filter = "none";
      img.removeAttribute("data-filter");
      return;
    }
    var a = from.w / to.w;
    var b = (from.c - to.c + (to.w - from.w) / 2) / to.w;
    if (inverted) b = 1 - a - b;
    var css, k = a + 2 * b, c = 1 - 2 * b;
    // contrast(c) maps y to c*y + (1-c)/2, brightness(k) to k*y; pick the order
    // whose intermediate clamp to 0..1 cannot change the result.
    if (k >= 1 || !(c > 0)) css = "contrast(" + (a / k) + ") brightness(" + k + ")";
    else css = "brightness(" + (a / c) + ") contrast(" + c + ")";
    if (k <= 0 && !(c > 0)) css = "brightness(0)";
    img.style.filter = css;
    img.setAttribute("data-filter", css);
  }

  function show() {
    var want = urlFor(S.index);
    var e = cache.get(want);
    var target = S.dragWin;
    var info = infoFor(S.index);
    var inverted = info && info.photometric === "MONOCHROME1";
    if (e && e.state === "ready" && !target) {
      if (shownUrl !== want) { img.src = want; shownUrl = want; }
      setFilter(null, null);
    } else {
      // Best stand-in: this frame in any window we already have, corrected by the filter.
      var stand = null, standQ = null;
      if (e && e.state === "ready") { stand = want; standQ = query(); }
      else {
        cache.forEach(function (v, u) {
          if (!stand && v.state === "ready" && u.split("?")[0] === want.split("?")[0]) { stand = u; standQ = u.indexOf("?") >= 0 ? u.slice(u.indexOf("?")) : ""; }
        });
      }
      if (!e) { queue.unshift([want, true]); pump(); }
      if (stand) {
        if (shownUrl !== stand) { img.src = stand; shownUrl = stand; }
        var to = target || (S.custom ? S.custom : windowOfQuery(query(), S.index));
        setFilter(windowOfQuery(standQ, S.index), to, inverted);
      }
    }
    img.setAttribute("data-index", String(S.index));
    idxEl.textContent = (S.index + 1) + "/" + frames().length;
    if (+slider.value !== S.index + 1) slider.value = String(S.index + 1);
    overlay();
    fetchInfoSoon();
  }

  function overlay() {
    var s = series(), f = frames()[S.index], info = infoFor(S.index);
    var lines = [];
    if (s.description) lines.push(s.description);
    var l2 = [s.modality, f[3] != null ? "Im " + f[3] : null].filter(Boolean).join("  ");
    if (l2) lines.push(l2);
    if (info) {
      if (info.columns && info.rows) lines.push(info.columns + "×" + info.rows);
      if (info.slice_location != null) lines.push("Loc " + round(info.slice_location) + " mm");
      if (info.slice_thickness != null) lines.push("Thk " + round(info.slice_thickness) + " mm");
      if (info.lossy) lines.push("LOSSY");
    }
    infoEl.textContent = lines.join("\n");
    var mk = info && info.markers, sides = ["top", "bottom", "left", "right"];
    for (var k = 0; k < sides.length; k++) {
      document.getElementById("vmk-" + sides[k]).textContent = mk ? (mk[sides[k]] || "") : "";
    }
    drawMeasure();
    var w = S.dragWin || S.custom || windowOfQuery(query(), S.index);
    var label = S.preset && !S.custom && !S.dragWin ? (M.labels["preset_" + S.preset] || S.preset) : "";
    winEl.textContent = (w ? "W " + Math.round(w.w) + "  L " + Math.round(w.c) : "") + (label ? "  " + label : "") +
      (S.zoom !== 1 ? "\nZoom " + S.zoom.toFixed(2) + "×" : "");
  }

  var infoTimer = 0;
  function fetchInfoSoon() {
    clearTimeout(infoTimer);
    infoTimer = setTimeout(function () {
      var f = frames()[S.index], key = f[0] + "/" + f[2];
      if (infos.has(key)) return;
      infos.set(key, null);
      fetch(M.base + "/info/" + f[0] + "/" + f[2] + ".json", {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (j) { if (j) { infos.set(key, j); overlay(); } }, function () { infos.delete(key); });
    }, 120);
  }

  function go(i) {
    var n = frames().length;
    i = Math.max(0, Math.min(n - 1, i));
    if (i === S.index && shownUrl === urlFor(i)) return;
    S.index = i;
    show();
    plan();
  }

  function applyTransform() {
    img.style.transform = "translate(" + S.panX + "px," + S.panY + "px) scale(" + S.zoom + ")";
    drawMeasure();
  }

  // -- measurement ------------------------------------------------------------

  // The image is drawn `object-fit: contain` in the stage, then moved by the
  // pan and scaled about the stage's centre by the zoom. Points are kept in
  // the image's own pixel grid (Columns x Rows), so a line stays on the
  // anatomy while zooming, and its length in mm is the grid's spacing.
  function geometry() {
    var info = infoFor(S.index);
    var cols = (info && info.columns) || img.naturalWidth, rows = (info && info.rows) || img.naturalHeight;
    var W = stage.clientWidth, H = stage.clientHeight;
    if (!cols || !rows || !W || !H) return null;
    var s0 = Math.min(W / cols, H / rows);
    return {cols: cols, rows: rows, W: W, H: H, s0: s0, left: (W - cols * s0) / 2, top: (H - rows * s0) / 2};
  }
  function toImage(g, x, y) {
    var qx = (x - g.W / 2 - S.panX) / S.zoom + g.W / 2, qy = (y - g.H / 2 - S.panY) / S.zoom + g.H / 2;
    return [(qx - g.left) / g.s0, (qy - g.top) / g.s0];
  }
  function toStage(g, p) {
    var qx = g.left + p[0] * g.s0, qy = g.top + p[1] * g.s0;
    return [(qx - g.W / 2) * S.zoom + g.W / 2 + S.panX, (qy - g.H / 2) * S.zoom + g.H / 2 + S.panY];
  }
  function measureText(m) {
    var info = infoFor(S.index);
    var dx = m.b[0] - m.a[0], dy = m.b[1] - m.a[1];
    var ps = info && info.pixel_spacing;  // [between rows (vertical), between columns (horizontal)] in mm
    if (ps && ps[0] > 0 && ps[1] > 0) {
      var mm = Math.hypot(dx * ps[1], dy * ps[0]);
      return {text: mm.toFixed(1) + " mm", mm: mm};
    }
    return {text: Math.hypot(dx, dy).toFixed(0) + " px (" + (M.labels.no_calibration || "no calibration") + ")",
            mm: null};
  }
  function drawMeasure() {
    var m = S.measure, g = m && S.measureAt === S.index ? geometry() : null;
    if (!g) {
      mline.setAttribute("x2", mline.getAttribute("x1")); mline.setAttribute("y2", mline.getAttribute("y1"));
      mline.style.display = "none"; mvalue.hidden = true;
      return;
    }
    var a = toStage(g, m.a), b = toStage(g, m.b), r = measureText(m);
    mline.style.display = "";
    mline.setAttribute("x1", a[0]); mline.setAttribute("y1", a[1]);
    mline.setAttribute("x2", b[0]); mline.setAttribute("y2", b[1]);
    mvalue.hidden = false;
    mvalue.textContent = r.text;
    if (r.mm != null) mvalue.setAttribute("data-mm", r.mm.toFixed(2)); else mvalue.removeAttribute("data-mm");
    mvalue.setAttribute("data-calibrated", r.mm != null ? "yes" : "no");
    var lx = Math.min(Math.max(b[0] + 8, 4), g.W - mvalue.offsetWidth - 4), ly = Math.min(Math.max(b[1] - 24, 4), g.H - 24);
    mvalue.style.left = lx + "px"; mvalue.style.top = ly + "px";
  }

  // -- cine ---------------------------------------------------------------------

  var CINE_FPS = 10;
  function setCine(on) {
    clearInterval(S.cine);
    S.cine = on ? setInterval(function () {
      var n = frames().length;
      go(S.index + 1 < n ? S.index + 1 : 0);
    }, 1000 / CINE_FPS) : 0;
    cineBtn.setAttribute("aria-pressed", on ? "true" : "false");
    cineBtn.textContent = cineBtn.getAttribute(on ? "data-pause" : "data-play");
  }

  function reset() {
    S.zoom = 1; S.panX = 0; S.panY = 0; applyTransform();
    if (S.custom || S.dragWin) { S.custom = null; S.dragWin = null; setPreset(S.preset || S.basePreset || "default"); } else overlay();
  }

  function setPreset(name) {
    S.preset = name; S.custom = null; S.dragWin = null;
    var btns = document.querySelectorAll("[data-preset]");
    for (var k = 0; k < btns.length; k++) btns[k].classList.toggle("on", btns[k].getAttribute("data-preset") === name);
    show(); plan(); updateLoaded();
  }

  function setSeries(k) {
    if (k === S.series) return;
    S.measure = null;
    S.series = k; S.index = 0; S.zoom = 1; S.panX = 0; S.panY = 0; applyTransform();
    var s = series();
    slider.max = String(s.frames.length);
    seriesEl.textContent = s.description || "";
    var th = document.querySelectorAll(".thumb");
    for (var j = 0; j < th.length; j++) th[j].classList.toggle("on", +th[j].getAttribute("data-series") === k);
    var btns = document.querySelectorAll("[data-preset]");
    for (var b = 0; b < btns.length; b++) btns[b].hidden = s.presets.indexOf(btns[b].getAttribute("data-preset")) < 0;
    if (s.presets.indexOf(S.preset) < 0) S.preset = "default";
    S.custom = null;
    show(); plan(); updateLoaded();
  }

  // -- window drag ---------------------------------------------------------------

  var winTimer = 0;
  function startWindow() {
    var base = S.dragWin || S.custom || windowOfQuery(query(), S.index);
    if (!base) {
      var info = infoFor(S.index) || seriesInfo();
      if (info && info.bits_stored) {
        var lo = (info.rescale_intercept || 0), hi = lo + Math.pow(2, info.bits_stored) * (info.rescale_slope || 1);
        base = {c: (lo + hi) / 2, w: hi - lo};
      } else base = {c: 128, w: 256};
    }
    return {c: base.c, w: base.w};
  }
  function dragWindow(start, dx, dy) {
    var w = Math.max(1, start.w * Math.exp(dx / 180));
    var c = start.c - dy * Math.max(start.w, 50) / 300;
    S.dragWin = {c: c, w: w};
    show();
    clearTimeout(winTimer);
    winTimer = setTimeout(commitWindow, 250);
  }
  function commitWindow() {
    if (!S.dragWin) return;
    if (S.preset) S.basePreset = S.preset;
    S.custom = S.dragWin; S.dragWin = null; S.preset = null;
    var btns = document.querySelectorAll("[data-preset]");
    for (var k = 0; k < btns.length; k++) btns[k].classList.remove("on");
    show(); plan(); updateLoaded();
  }

  // -- input ----------------------------------------------------------------------

  var pointers = new Map();
  var gesture = null;

  stage.addEventListener("contextmenu", function (ev) { ev.preventDefault(); });
  stage.addEventListener("pointerdown", function (ev) {
    // The panels and the slider over the stage take their own pointers (captured, they would lose the click).
    if (ev.target.closest && ev.target.closest(".vpanel, #vslider")) return;
    try { stage.setPointerCapture(ev.pointerId); } catch (e) { /* not an active pointer (synthetic) */ }
    pointers.set(ev.pointerId, {x: ev.clientX, y: ev.clientY});
    if (pointers.size === 2) {
      var p = Array.from(pointers.values());
      gesture = {kind: "pinch", d0: dist(p[0], p[1]), z0: S.zoom, m0: mid(p[0], p[1]), px: S.panX, py: S.panY};
      return;
    }
    if (pointers.size > 2) return;
    var kind = S.mode;
    if (ev.button === 2) kind = "window";
    else if (ev.button === 1 || ev.shiftKey) kind = "pan";
    closePanels();
    gesture = {kind: kind, x0: ev.clientX, y0: ev.clientY, i0: S.index, px: S.panX, py: S.panY,
               win: kind === "window" ? startWindow() : null};
    if (kind === "measure") {
      var g = geometry(), r = stage.getBoundingClientRect();
      if (g) {
        var p = toImage(g, ev.clientX - r.left, ev.clientY - r.top);
        S.measure = {a: p, b: p}; S.measureAt = S.index; gesture.g = g; gesture.r = r;
        drawMeasure();
      }
    }
    if (kind === "scroll" && S.cine) setCine(false);
    ev.preventDefault();
  });
  stage.addEventListener("pointermove", function (ev) {
    if (!pointers.has(ev.pointerId)) return;
    pointers.set(ev.pointerId, {x: ev.clientX, y: ev.clientY});
    if (!gesture) return;
    if (gesture.kind === "pinch" && pointers.size >= 2) {
      var p = Array.from(pointers.values()), m = mid(p[0], p[1]);
      S.zoom = clamp(gesture.z0 * dist(p[0], p[1]) / Math.max(gesture.d0, 1), 0.5, 12);
      S.panX = gesture.px + (m.x - gesture.m0.x); S.panY = gesture.py + (m.y - gesture.m0.y);
      applyTransform(); overlay();
      return;
    }
    var dx = ev.clientX - gesture.x0, dy = ev.clientY - gesture.y0;
    if (gesture.kind === "scroll") {
      var n = frames().length, per = Math.max(3, Math.min(12, stage.clientHeight / Math.max(n, 1)));
      go(gesture.i0 + Math.round(dy / per));
    } else if (gesture.kind === "window") {
      dragWindow(gesture.win, dx, dy);
    } else if (gesture.kind === "pan") {
      S.panX = gesture.px + dx; S.panY = gesture.py + dy; applyTransform();
    } else if (gesture.kind === "measure" && gesture.g && S.measure) {
      S.measure.b = toImage(gesture.g, ev.clientX - gesture.r.left, ev.clientY - gesture.r.top);
      drawMeasure();
    }
  });
  function up(ev) {
    pointers.delete(ev.pointerId);
    if (pointers.size === 0) gesture = null;
    else if (pointers.size === 1 && gesture && gesture.kind === "pinch") gesture = null;
  }
  stage.addEventListener("pointerup", up);
  stage.addEventListener("pointercancel", up);
  stage.addEventListener("dblclick", reset);

  var wheelAcc = 0;
  stage.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    if (ev.ctrlKey || ev.metaKey) {
      var r = stage.getBoundingClientRect();
      var cx = ev.clientX - r.left - r.width / 2, cy = ev.clientY - r.top - r.height / 2;
      var z = clamp(S.zoom * Math.exp(-ev.deltaY / 300), 0.5, 12), k = z / S.zoom;
      S.panX = cx - (cx - S.panX) * k; S.panY = cy - (cy - S.panY) * k; S.zoom = z;
      applyTransform(); overlay();
      return;
    }
    // A mouse notch (line mode, or a big pixel delta) is one image; the
    // small pixel deltas of a trackpad add up, 50 px to an image.
    var steps;
    if (ev.deltaMode === 1) steps = Math.round(ev.deltaY / 3) || Math.sign(ev.deltaY);
    else if (ev.deltaMode === 2) steps = Math.sign(ev.deltaY) * 10;
    else if (Math.abs(ev.deltaY) >= 50) { steps = Math.sign(ev.deltaY); wheelAcc = 0; }
    else {
      wheelAcc += ev.deltaY / 50;
      steps = wheelAcc > 0 ? Math.floor(wheelAcc) : Math.ceil(wheelAcc);
    }
    if (steps) { wheelAcc -= steps; go(S.index + steps); }
  }, {passive: false});

  document.addEventListener("keydown", function (ev) {
    if (ev.target && (ev.target.tagName === "INPUT" && ev.target.type !== "range")) return;
    var k = ev.key, n = frames().length;
    if (k === "ArrowDown" || k === "ArrowRight" || k === "PageDown" || k === "j") go(S.index + (k === "PageDown" ? 10 : 1));
    else if (k === "ArrowUp" || k === "ArrowLeft" || k === "PageUp" || k === "k") go(S.index - (k === "PageUp" ? 10 : 1));
    else if (k === "Home") go(0);
    else if (k === "End") go(n - 1);
    else if (k === "r" || k === "Escape") { S.measure = null; reset(); }
    else if (k === " ") setCine(!S.cine);
    else if (k === "+" || k === "=") { S.zoom = clamp(S.zoom * 1.25, 0.5, 12); applyTransform(); overlay(); }
    else if (k === "-") { S.zoom = clamp(S.zoom / 1.25, 0.5, 12); applyTransform(); overlay(); }
    else return;
    ev.preventDefault();
  });

  slider.addEventListener("input", function () { go(+slider.value - 1); });
  document.getElementById("vreset").addEventListener("click", function () { S.measure = null; reset(); });
  function setTool(name) {
    S.mode = name;
    stage.setAttribute("data-tool", name);
    var tools = document.querySelectorAll("[data-tool]");
    for (var k = 0; k < tools.length; k++) {
      if (tools[k] === stage) continue;
      var on = tools[k].getAttribute("data-tool") === name;
      tools[k].classList.toggle("on", on);
      tools[k].setAttribute("aria-pressed", on ? "true" : "false");
    }
  }
  var tbtns = document.querySelectorAll("button[data-tool]");
  for (var t = 0; t < tbtns.length; t++) {
    tbtns[t].addEventListener("click", function (ev) { setTool(ev.currentTarget.getAttribute("data-tool")); });
  }
  cineBtn.addEventListener("click", function () { setCine(!S.cine); });
  var overlayBtn = document.getElementById("voverlay");
  overlayBtn.addEventListener("click", function () {
    var on = root.getAttribute("data-overlay") !== "on";
    root.setAttribute("data-overlay", on ? "on" : "off");
    overlayBtn.setAttribute("aria-pressed", on ? "true" : "false");
  });
  function closePanels(except) {
    var toggles = document.querySelectorAll("[data-panel]");
    for (var k = 0; k < toggles.length; k++) {
      var id = toggles[k].getAttribute("data-panel");
      if (id === except) continue;
      document.getElementById(id).hidden = true;
      toggles[k].setAttribute("aria-expanded", "false");
    }
  }
  var toggles = document.querySelectorAll("[data-panel]");
  for (var q = 0; q < toggles.length; q++) {
    toggles[q].addEventListener("click", function (ev) {
      var btn = ev.currentTarget, panel = document.getElementById(btn.getAttribute("data-panel"));
      closePanels(panel.id);
      panel.hidden = !panel.hidden;
      btn.setAttribute("aria-expanded", panel.hidden ? "false" : "true");
    });
  }
  var pbtns = document.querySelectorAll("[data-preset]");
  for (var b = 0; b < pbtns.length; b++) {
    pbtns[b].addEventListener("click", function (ev) {
      setPreset(ev.currentTarget.getAttribute("data-preset")); closePanels();
    });
  }
  var th = document.querySelectorAll(".thumb");
  for (var j = 0; j < th.length; j++) {
    th[j].addEventListener("click", function (ev) {
      setSeries(+ev.currentTarget.getAttribute("data-series")); closePanels();
    });
  }
  window.addEventListener("resize", drawMeasure);

  function dist(a, b) { return Math.hypot(a.x - b.x, a.y - b.y); }
  function mid(a, b) { return {x: (a.x + b.x) / 2, y: (a.y + b.y) / 2}; }
  function clamp(x, lo, hi) { return Math.max(lo, Math.min(hi, x)); }

  // The first picture came with the HTML; count it as loaded, then start prefetching. Prefetching
  // waits for it: on a slow link, or with a cold render cache, the next images' requests would
  // share its bandwidth and the server's CPU and put it on screen later.
  var first = {img: img, state: img.complete && img.naturalWidth ? "ready" : "loading", near: true};
  cache.set(shownUrl, first);
  var started = false;
  function start() { if (!started) { started = true; plan(); } }
  if (first.state !== "ready") {
    img.addEventListener("load", function () { first.state = "ready"; updateLoaded(); start(); }, {once: true});
    img.addEventListener("error", start, {once: true});
  }
  window.__film = {state: S, go: go, loaded: function () { return +root.getAttribute("data-loaded"); },
                   info: function () { return infoFor(S.index); }};
  updateLoaded();
  show();
  if (first.state === "ready") start();
})();
