// The operations console: every view drawn from /api/v1 calls (the server enforces who may see what).
// Text only through textContent (never markup built from data); words from the page's #words table.
"use strict";

const W = JSON.parse(document.getElementById("words").textContent);
const t = (key, args) => (W[key] || key).replace(/\{(\w+)\}/g, (_, k) => (args && k in args ? args[k] : ""));
const state = { csrf: null, user: null, charts: [] };
const SESSION_GONE = new Set([20005, 20007]);

// field: [name, {create: only when creating, list: space-separated, roles, number, secret, label: word key}]
// The shapes are the organisation API's (cloud/organisation): `key` is the id in the item's path.
const RESOURCES = {
  unions: { key: "id", fields: [["id", { create: true }], ["name"]] },
  hospitals: { key: "id", fields: [["id", { create: true }], ["name"], ["unionId"]], toggle: true },
  departments: { key: "id", fields: [["id", { create: true }], ["hospitalId"], ["name"]], toggle: true },
  "device-types": { key: "id", fields: [["id", { create: true }], ["name"], ["modality"]], toggle: true },
  devices: {
    key: "id",
    fields: [["id", { create: true }], ["hospitalId"], ["name"], ["deviceTypeId"], ["modality"], ["departmentId"],
      ["aeTitle"], ["host"], ["port", { number: true }]],
    toggle: true,
  },
  doctors: {
    key: "doctorId",
    fields: [["doctorId", { create: true }], ["hospitalId"], ["name"], ["title", { label: "title_field" }], ["dept"]],
  },
  users: {
    key: "username",
    fields: [["username", { create: true }], ["name"], ["phone"], ["password", { create: true, secret: true }],
      ["roles", { list: true, roles: true }]],
    toggle: true,
  },
  partners: {
    key: "appId",
    fields: [["appId", { create: true }], ["callbackUrl"], ["hospitals", { list: true, label: "hospitals_field" }],
      ["unions", { list: true, label: "unions_field" }]],
    toggle: true,
    rotate: true,
  },
  pacs: { key: "aeTitle", fields: [["aeTitle", { create: true }], ["hospitalId"], ["host"], ["port", { number: true }]] },
  gateways: { key: "id", fields: [["id", { create: true }], ["hospitalId"]], sync: true },
};
const VIEWS = ["dashboard", ...Object.keys(RESOURCES), "discrepancies", "audit"];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
  let answer;
  try {
    const response = await fetch(path, { method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body) });
    answer = await response.json();
  } catch (e) {
    throw new ApiError(-1, t("network_error"));
  }
  if (answer.code !== 0) {
    const error = new ApiError(answer.code, answer.message);
    if (SESSION_GONE.has(answer.code) && path !== "/api/v1/session") showSignIn(errorText(error));
    throw error;
  }
  return answer.data;
}

function errorText(e) {
  return e.code > 0 ? `${e.message} (${e.code})` : e.message;
}

// -- session ------------------------------------------------------------------

function showSignIn(message) {
  state.csrf = state.user = null;
  document.querySelector(".app").hidden = true;
  document.querySelector(".who").hidden = true;
  const form = document.querySelector("form.signin");
  form.hidden = false;
  const error = form.querySelector(".error");
  error.hidden = !message;
  error.textContent = message || "";
  form.querySelector("input[name=username]").focus();
}

function signedIn(data) {
  state.csrf = data.csrfToken;
  state.user = data.user;
  document.querySelector("form.signin").hidden = true;
  document.querySelector(".app").hidden = false;
  const who = document.querySelector(".who");
  who.hidden = false;
  const roles = (data.user.roles || []).map((r) => (r.scope ? `${r.role}@${r.scope}` : r.role)).join(", ");
  who.querySelector("[data-testid=who]").textContent = `${t("signed_in_as")}: ${data.user.name || data.user.username} (${roles})`;
  drawNav();
  route();
}

async function signIn(event) {
  event.preventDefault();
  const form = event.target;
  const body = { username: form.username.value, password: form.password.value };
  if (form.otp.value) body.otp = form.otp.value;
  const error = form.querySelector(".error");
  try {
    const data = await api("POST", "/api/v1/session", body);
    form.password.value = form.otp.value = "";
    error.hidden = true;
    signedIn(data);
  } catch (e) {
    error.hidden = false;
    error.textContent = errorText(e);
  }
}

async function signOut() {
  try {
    await api("DELETE", "/api/v1/session");
  } catch (e) {
    // the session may be over already: the sign-in form is what follows either way
  }
  location.hash = "";
  showSignIn("");
}

// -- navigation -----------------------------------------------------------------

function drawNav() {
  const nav = document.querySelector("nav");
  nav.replaceChildren(...VIEWS.map((v) => el("a", { href: `#/${v}`, "data-testid": `nav-${v}`, text: t(v) })));
}

function route() {
  if (!state.user) return;
  const [view, query] = (location.hash.replace(/^#\/?/, "") || "dashboard").split("?");
  const name = VIEWS.includes(view) ? view : "dashboard";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("current", a.dataset.testid === `nav-${name}`);
  for (const chart of state.charts) chart.dispose();
  state.charts = [];
  const section = document.querySelector(".view");
  section.replaceChildren();
  const params = new URLSearchParams(query || "");
  if (name === "dashboard") dashboard(section, params);
  else if (name === "discrepancies") discrepancies(section);
  else if (name === "audit") audit(section, params);
  else resource(section, name, params);
}

// -- dashboard ----------------------------------------------------------------

// The statistics count the days of the platform's zone (the page names it), which for hours of every day is not
// the browser's: "today" is reckoned there.
const DAY = new Intl.DateTimeFormat("en-CA", {
  timeZone: document.documentElement.dataset.timezone || undefined, year: "numeric", month: "2-digit", day: "2-digit",
});

function isoDay(date) {
  return DAY.format(date);
}

// Every yyyy-MM-dd from `from` to `to`: calendar arithmetic (on UTC midnights), no zone involved.
function calendarDays(from, to) {
  const days = [];
  for (let d = new Date(`${from}T00:00:00Z`); d.toISOString().slice(0, 10) <= to; d = new Date(d.getTime() + 86400000)) {
    days.push(d.toISOString().slice(0, 10));
  }
  return days;
}

function bytesText(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

async function dashboard(section, params) {
  const today = new Date();
  const from = params.get("from") || isoDay(new Date(today.getTime() - 29 * 86400000));
  const to = params.get("to") || isoDay(today);
  const form = el("form", { class: "filters", "data-testid": "stats-filters" },
    el("label", { text: t("from") }, el("input", { type: "date", name: "from", value: from })),
    el("label", { text: t("to") }, el("input", { type: "date", name: "to", value: to })),
    el("button", { type: "submit", text: t("apply") }));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `#/dashboard?from=${form.from.value}&to=${form.to.value}`;
  });
  const board = el("div", { "data-testid": "dashboard", class: "dashboard" });
  section.append(el("h2", { text: t("dashboard") }), form, board);
  let data;
  try {
    data = await api("GET", `/api/v1/stats?from=${from}&to=${to}`);
  } catch (e) {
    board.append(el("p", { class: "error", role: "alert", text: errorText(e) }));
    return;
  }
  const warnings = el("ul", { class: "warnings", "data-testid": "warnings" });
  const totals = el("div", { class: "totals", "data-testid": "totals" });
  const sum = { studies: 0, studiesWithImages: 0, instances: 0, bytes: 0, reports: 0, patientVisits: 0 };
  for (const row of data.days) for (const k of Object.keys(sum)) sum[k] += row[k];
  for (const [k, v] of Object.entries(sum)) {
    totals.append(el("div", { class: "figure", "data-measure": k },
      el("span", { class: "value", text: k === "bytes" ? bytesText(v) : String(v) }), el("span", { text: t(k) })));
  }
  const charts = el("div", { class: "charts" },
    el("figure", {}, el("figcaption", { text: t("per_day") }), el("div", { class: "chart", "data-testid": "chart-daily" })),
    el("figure", {}, el("figcaption", { text: t("by_modality") }), el("div", { class: "chart", "data-testid": "chart-modality" })),
    el("figure", {}, el("figcaption", { text: t("by_hospital") }), el("div", { class: "chart", "data-testid": "chart-hospital" })));
  board.append(warnings, totals, charts, gaugesView(data.gauges, warnings));
  if (!window.echarts) {
    charts.replaceChildren(el("p", { class: "error", text: t("assets_missing") }));
    return;
  }
  drawCharts(charts, data.days, from, to);
}

function drawCharts(charts, days, from, to) {
  const dates = calendarDays(from, to);
  const perDay = (k) => dates.map((d) => days.filter((r) => r.date === d).reduce((n, r) => n + r[k], 0));
  const modalities = {};
  const hospitals = {};
  for (const row of days) {
    for (const [m, f] of Object.entries(row.byModality)) modalities[m] = (modalities[m] || 0) + f.studies;
    const h = (hospitals[row.hospitalId] = hospitals[row.hospitalId] || { studies: 0, instances: 0 });
    h.studies += row.studies;
    h.instances += row.instances;
  }
  const make = (testid, option) => {
    const chart = window.echarts.init(charts.querySelector(`[data-testid=${testid}]`), null, { renderer: "canvas" });
    chart.setOption(Object.assign({ animation: false, tooltip: { trigger: "item" } }, option));
    state.charts.push(chart);
  };
  make("chart-daily", {
    tooltip: { trigger: "axis" },
    legend: { data: [t("studies"), t("instances")] },
    xAxis: { type: "category", data: dates },
    yAxis: [{ type: "value", name: t("studies") }, { type: "value", name: t("instances") }],
    series: [{ name: t("studies"), type: "bar", data: perDay("studies") },
      { name: t("instances"), type: "line", yAxisIndex: 1, data: perDay("instances") }],
  });
  make("chart-modality", {
    series: [{ type: "pie", radius: "60%", label: { formatter: "{b}: {c}" }, data: Object.entries(modalities).map(([name, value]) => ({ name, value })) }],
  });
  const names = Object.keys(hospitals).sort();
  make("chart-hospital", {
    tooltip: { trigger: "axis" },
    legend: { data: [t("studies"), t("instances")] },
    xAxis: { type: "category", data: names },
    yAxis: [{ type: "value" }, { type: "value" }],
    series: [{ name: t("studies"), type: "bar", data: names.map((h) => hospitals[h].studies) },
      { name: t("instances"), type: "bar", yAxisIndex: 1, data: names.map((h) => hospitals[h].instances) }],
  });
}

function table(columns, rows, testid) {
  const head = el("tr", {}, ...columns.map(([, label]) => el("th", { text: label })));
  const body = rows.map((row) => el("tr", {}, ...columns.map(([k]) => el("td", { text: row[k] === null || row[k] === undefined ? "" : String(row[k]) }))));
  if (!rows.length) body.push(el("tr", {}, el("td", { colspan: columns.length, text: t("none") })));
  return el("table", { "data-testid": testid }, el("thead", {}, head), el("tbody", {}, ...body));
}

// A gateway's backlog warns above these (as well as when it grew since the gateway's report before).
const BACKLOG_WARN_ITEMS = 1000;
const BACKLOG_WARN_AGE_S = 3600;

function backlogWarnings(gw, warn) {
  const b = gw.backlog;
  if (!b) return;
  if (b.growing) warn(t("warn_backlog_growing", { id: gw.gatewayId, before: b.previousPending, n: b.pending }), "warn-backlog");
  else if (b.pending > BACKLOG_WARN_ITEMS || b.oldestPendingSeconds > BACKLOG_WARN_AGE_S) {
    warn(t("warn_backlog", { id: gw.gatewayId, n: b.pending, m: Math.floor(b.oldestPendingSeconds / 60) }), "warn-backlog");
  }
  if (b.parked > 0) warn(t("warn_backlog_parked", { id: gw.gatewayId, n: b.parked }), "warn-backlog-parked");
}

function gaugesView(g, warnings) {
  const warn = (text, testid) => warnings.append(el("li", testid ? { text, "data-testid": testid } : { text }));
  for (const gw of g.gateways) {
    if (gw.gatewayId !== "local" && (gw.secondsSinceLastSuccess === null || gw.secondsSinceLastSuccess > 3600)) {
      warn(t("warn_gateway", { id: gw.gatewayId, h: gw.secondsSinceLastSuccess === null ? "∞" : Math.floor(gw.secondsSinceLastSuccess / 3600) }));
    }
    backlogWarnings(gw, warn);
  }
  for (const cb of g.callbacks) if (cb.parked > 0) warn(t("warn_parked", { id: cb.partnerId, n: cb.parked }));
  if (g.disk.totalBytes && g.disk.freeBytes / g.disk.totalBytes < 0.1) warn(t("warn_disk"));
  warnings.hidden = !warnings.children.length;
  const gateways = g.gateways.map((x) => ({ ...x, lastSuccessAt: x.lastSuccessAt || t("never"),
    pending: x.backlog ? x.backlog.pending : null, parked: x.backlog ? x.backlog.parked : null,
    oldest: x.backlog ? Math.floor(x.backlog.oldestPendingSeconds / 60) : null }));
  return el("div", { class: "gauges", "data-testid": "gauges" },
    el("h3", { text: t("gauges") }),
    el("p", { "data-testid": "disk", text: `${t("disk")}: ${bytesText(g.disk.freeBytes)} / ${bytesText(g.disk.totalBytes)}` }),
    table([["gatewayId", t("gateway")], ["hospitalId", t("hospitalId")], ["lastSuccessAt", t("last_sync")],
      ["pending", t("backlog")], ["parked", t("parked")], ["oldest", t("oldest_pending")]], gateways, "gauge-gateways"),
    table([["partnerId", t("callbacks")], ["pending", t("pending")], ["parked", t("parked")]], g.callbacks, "gauge-callbacks"),
    table([["hospitalId", t("hospitalId")], ["open", t("open_discrepancies")]], g.discrepancies, "gauge-discrepancies"));
}

// -- organisation objects -------------------------------------------------------

function fieldValue(spec, raw) {
  if (spec.list) {
    const parts = raw.split(/[\s,]+/).filter(Boolean);
    return spec.roles ? parts.map((p) => { const [role, ...scope] = p.split(":"); return { role, scope: scope.join(":") || null }; }) : parts;
  }
  if (spec.number) return raw === "" ? null : Number(raw);
  return raw;
}

function shown(spec, value) {
  if (value === null || value === undefined) return "";
  if (spec.roles) return value.map((r) => (r.scope ? `${r.role}:${r.scope}` : r.role)).join(" ");
  if (Array.isArray(value)) return value.join(" ");
  return String(value);
}

async function resource(section, name, params) {
  const conf = RESOURCES[name];
  const q = params.get("q") || "";
  const offset = Number(params.get("offset") || 0);
  const limit = 20;
  const search = el("form", { class: "filters", "data-testid": "search" },
    el("input", { type: "search", name: "q", value: q, placeholder: t("search") }),
    el("button", { type: "submit", text: t("search") }),
    el("button", { type: "button", "data-testid": "create", text: t("create"), onclick: () => editor(null) }));
  search.addEventListener("submit", (e) => { e.preventDefault(); location.hash = `#/${name}?q=${encodeURIComponent(search.q.value)}`; });
  const notice = el("div", { class: "notice", "data-testid": "notice", role: "status" });
  const slot = el("div", { class: "editor" });
  const list = el("div", { "data-testid": "list" }, el("p", { text: t("loading") }));
  section.append(el("h2", { text: t(name) }), search, notice, slot, list);

  function editor(item) {
    const form = el("form", { "data-testid": "form", class: "form" });
    for (const [field, spec = {}] of conf.fields) {
      if (item && spec.create) continue;
      const input = el("input", { name: field, type: spec.secret ? "password" : spec.number ? "number" : "text",
        value: item ? shown(spec, item[field]) : "" });
      form.append(el("label", { text: t(spec.label || field) }, input));
    }
    const error = el("p", { class: "error", "data-testid": "form-error", role: "alert", hidden: true });
    form.append(error, el("button", { type: "submit", text: t("save") }),
      el("button", { type: "button", text: t("cancel"), onclick: () => slot.replaceChildren() }));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = {};
      for (const [field, spec = {}] of conf.fields) {
        const input = form.elements.namedItem(field);
        if (!input) continue;
        if (item ? input.value === shown(spec, item[field]) : input.value === "") continue; // unchanged or not given
        body[field] = fieldValue(spec, input.value);
      }
      try {
        const data = item
          ? await api("PATCH", `/api/v1/${name}/${encodeURIComponent(item[conf.key])}`, body)
          : await api("POST", `/api/v1/${name}`, body);
        slot.replaceChildren();
        showSecret(notice, data);
        await load();
      } catch (err) {
        error.hidden = false;
        error.textContent = errorText(err);
      }
    });
    slot.replaceChildren(form);
    form.querySelector("input").focus();
  }

  async function act(method, item, body, suffix = "") {
    try {
      const data = await api(method, `/api/v1/${name}/${encodeURIComponent(item[conf.key])}${suffix}`, body);
      showSecret(notice, data);
      await load();
    } catch (err) {
      notice.replaceChildren(el("p", { class: "error", role: "alert", text: errorText(err) }));
    }
  }

  async function load() {
    let data;
    try {
      data = await api("GET", `/api/v1/${name}?q=${encodeURIComponent(q)}&limit=${limit}&offset=${offset}`);
    } catch (err) {
      list.replaceChildren(el("p", { class: "error", role: "alert", text: errorText(err) }));
      return;
    }
    const columns = conf.fields.filter(([, spec = {}]) => !spec.secret);
    if (conf.sync) {
      // Each gateway's sync state, from the statistics' gauges (the hospitals the caller may see).
      const today = isoDay(new Date());
      try {
        const gauges = (await api("GET", `/api/v1/stats?from=${today}&to=${today}`)).gauges.gateways;
        const byId = Object.fromEntries(gauges.map((g) => [g.gatewayId, g]));
        for (const item of data.items) item.lastSuccessAt = (byId[item.id] || {}).lastSuccessAt || t("never");
      } catch (err) {
        for (const item of data.items) item.lastSuccessAt = "";
      }
      columns.push(["lastSuccessAt", {}]);
    }
    const head = el("tr", {}, ...columns.map(([f, spec = {}]) => el("th", { text: t(spec.label || f) })),
      ...(conf.toggle ? [el("th", { text: t("enabled") })] : []), el("th", {}));
    const rows = data.items.map((item) => {
      const actions = el("td", { class: "actions" },
        el("button", { type: "button", "data-action": "edit", text: t("edit"), onclick: () => editor(item) }));
      if (conf.toggle && "enabled" in item) {
        actions.append(el("button", { type: "button", "data-action": item.enabled ? "disable" : "enable",
          text: t(item.enabled ? "disable" : "enable"), onclick: () => act("PATCH", item, { enabled: !item.enabled }) }));
      }
      if (conf.rotate) {
        actions.append(el("button", { type: "button", "data-action": "rotate", text: t("rotate"),
          onclick: () => act("POST", item, undefined, "/rotate") }));
      }
      actions.append(el("button", { type: "button", "data-action": "remove", text: t("remove"),
        onclick: () => { if (window.confirm(t("confirm_remove"))) act("DELETE", item); } }));
      return el("tr", { "data-id": item[conf.key] },
        ...columns.map(([f, spec = {}]) => el("td", { text: shown(spec, item[f]) })),
        ...(conf.toggle ? [el("td", { text: "enabled" in item ? t(item.enabled ? "on" : "off") : "" })] : []), actions);
    });
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: columns.length + 2, text: t("none") })));
    const pager = el("div", { class: "pager" }, el("span", { "data-testid": "total", text: t("total", { n: data.total }) }));
    if (offset > 0) pager.append(el("a", { href: `#/${name}?q=${encodeURIComponent(q)}&offset=${Math.max(0, offset - limit)}`, text: t("previous") }));
    if (offset + limit < data.total) pager.append(el("a", { href: `#/${name}?q=${encodeURIComponent(q)}&offset=${offset + limit}`, text: t("next") }));
    list.replaceChildren(el("table", { "data-testid": "rows" }, el("thead", {}, head), el("tbody", {}, ...rows)), pager);
  }
  await load();
}

// A token the server shows once (a partner's on creation or rotation, a gateway's key, a TOTP URI).
function showSecret(notice, data) {
  notice.replaceChildren();
  const secret = data && (data.token || data.key || data.totpUri);
  if (!secret) return;
  const value = el("code", { "data-testid": "secret", text: secret });
  const copy = el("button", { type: "button", "data-testid": "copy", text: t("copy") });
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(secret);
    } catch (e) {
      const range = document.createRange();
      range.selectNodeContents(value);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      document.execCommand("copy");
    }
    copy.textContent = t("copied");
  });
  notice.append(el("p", { class: "secret" }, t("token_once"), " ", value, " ", copy));
}

// -- discrepancies and audit ------------------------------------------------------

async function discrepancies(section) {
  section.append(el("h2", { text: t("discrepancies") }));
  try {
    const data = await api("GET", "/api/v1/discrepancies");
    const rows = data.items.map((d) => ({ ...d, expected: JSON.stringify(d.expected), received: JSON.stringify(d.received) }));
    section.append(table([["kind", t("kind")], ["hospitalId", t("hospitalId")], ["studyId", t("studyId")],
      ["studyUid", t("studyUid")], ["expected", t("expected")], ["received", t("received")], ["loggedAt", t("loggedAt")]],
    rows, "rows"));
    // What the scrub could not repair from a copy (issue 18 item 5).
    const damaged = await api("GET", "/api/v1/damaged-objects");
    section.append(el("h2", { text: t("damaged_objects") }), table([["hospitalId", t("hospitalId")],
      ["studyUid", t("studyUid")], ["blobKey", t("blobKey")], ["state", t("state")], ["checkedAt", t("checkedAt")]],
    damaged.items, "damaged-objects"));
  } catch (e) {
    section.append(el("p", { class: "error", role: "alert", text: errorText(e) }));
  }
}

async function audit(section, params) {
  const names = ["from", "to", "kind", "studyUid", "username"];
  const form = el("form", { class: "filters", "data-testid": "audit-filters" },
    ...names.map((n) => el("label", { text: t(n === "username" ? "username" : n) },
      el("input", { name: n, type: n === "from" || n === "to" ? "date" : "text", value: params.get(n) || "" }))),
    el("button", { type: "submit", text: t("apply") }));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const n of names) if (form[n].value) q.set(n, form[n].value);
    location.hash = `#/audit?${q}`;
  });
  section.append(el("h2", { text: t("audit") }), form);
  const q = new URLSearchParams();
  for (const n of names) if (params.get(n)) q.set(n, params.get(n));
  q.set("limit", "100");
  try {
    const data = await api("GET", `/api/v1/audit?${q}`);
    section.append(el("p", { "data-testid": "total", text: t("total", { n: data.total }) }),
      table([["at", t("at")], ["kind", t("kind")], ["username", t("username")], ["action", t("action")],
        ["subject", t("subject")], ["hospitalId", t("hospitalId")], ["studyUid", t("studyUid")], ["detail", t("detail")]],
      data.items, "rows"));
  } catch (e) {
    section.append(el("p", { class: "error", role: "alert", text: errorText(e) }));
  }
}

// -- start ------------------------------------------------------------------------

window.addEventListener("hashchange", route);
window.addEventListener("resize", () => { for (const chart of state.charts) chart.resize(); });
document.querySelector("form.signin").addEventListener("submit", signIn);
document.querySelector("[data-testid=sign-out]").addEventListener("click", signOut);
api("GET", "/api/v1/session").then(signedIn, () => showSignIn(""));
