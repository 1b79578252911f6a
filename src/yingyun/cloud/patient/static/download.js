// Download page: render the whole study ahead (progress shown), then
// download the zip with an exact Content-Length. Without JS the link
// streams the same zip directly.
(function () {
  "use strict";
  var a = document.getElementById("dl-images");
  if (!a) return;
  var msg = document.getElementById("dl-progress");
  var bar = document.getElementById("dl-bar");
  var busy = false;
  a.addEventListener("click", function (ev) {
    ev.preventDefault();
    if (busy) return;
    busy = true;
    var base = a.getAttribute("href").replace(/\/images\.zip$/, "");
    msg.hidden = false; bar.hidden = false;
    function show(done, total) {
      msg.textContent = a.dataset.label.replace("{done}", done).replace("{total}", total);
      bar.max = total; bar.value = done;
    }
    fetch(base + "/prepare", {method: "POST", headers: {"X-CSRF-Token": a.dataset.csrf}, credentials: "same-origin"})
      .then(function (r) { if (!r.ok) throw new Error("prepare " + r.status); return r.json(); })
      .then(function (j) {
        show(0, j.total);
        return new Promise(function (resolve) {
          (function poll() {
            fetch(base + "/status", {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (s) {
              show(s.done, s.total);
              if (s.done >= s.total) resolve(); else setTimeout(poll, 700);
            }, function () { setTimeout(poll, 1500); });
          })();
        });
      })
      .then(function () { msg.textContent = a.dataset.ready; busy = false; window.location.href = a.getAttribute("href"); },
            function () { busy = false; window.location.href = a.getAttribute("href"); });
  });
})();
