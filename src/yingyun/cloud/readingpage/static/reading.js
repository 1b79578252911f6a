// The reading page: the worklist, and a study's images (OHIF, framed) beside its report editor.
// Every view is drawn from /api/v1 calls (the server decides who may read, lock and sign what);
// text only through textContent, never markup built from data; words from the page's #words table.
"use strict";

const W = JSON.parse(document.getElementById("words").textContent);
const t = (key, args) => (W[key] || key).replace(/\{(\w+)\}/g, (_, k) => (args && k in args ? args[k] : ""));
const SESSION_GONE = new Set([20005, 20007]);
const NO_REPORT = 30003;
const MODIFIED = 30006; // a save on a version someone else moved on: nothing was overwritten
const LOCKED = 30010;
const LOCK_CODES = new Set([LOCKED, 30011]);
const PAGE = 50;
const AUTOSAVE_MS = Number(document.body.dataset.autosaveMs || 2500);
// The states a report may still be written in (by the holder of the study's lock).
const WRITABLE = new Set(["none", "drafting", "returned", "amending"]);
const VIEWER = document.body.dataset.viewer;

const state = { csrf: null, user: null, offset: 0, rows: new Map(), study: null };

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

const $ = (selector) => document.querySelector(selector);

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

function say(selector, text) {
  const node = $(selector);
  node.hidden = !text;
  node.textContent = text || "";
}

const studyPath = (uid) => `/api/v1/studies/${encodeURIComponent(uid)}`;
const hasRole = (role) => (state.user?.roles || []).some((r) => r.role === role);

// -- session (the console's) ------------------------------------------------------

function showSignIn(message) {
  state.csrf = state.user = null;
  stopStudy();
  $(".reading").hidden = true;
  $(".who").hidden = true;
  const form = $("form.signin");
  form.hidden = false;
  say("[data-testid=sign-in-error]", message);
  form.querySelector("input[name=username]").focus();
}

function signedIn(data) {
  state.csrf = data.csrfToken;
  state.user = data.user;
  $("form.signin").hidden = true;
  $(".reading").hidden = false;
  const who = $(".who");
  who.hidden = false;
  const roles = (data.user.roles || []).map((r) => (r.scope ? `${r.role}@${r.scope}` : r.role)).join(", ");
  who.querySelector("[data-testid=who]").textContent =
    `${t("signed_in_as")}: ${data.user.name || data.user.username} (${roles})`;
  route();
}

async function signIn(event) {
  event.preventDefault();
  const form = event.target;
  const body = { username: form.username.value, password: form.password.value };
  if (form.otp.value) body.otp = form.otp.value;
  try {
    const data = await api("POST", "/api/v1/session", body);
    form.password.value = form.otp.value = "";
    say("[data-testid=sign-in-error]", "");
    signedIn(data);
  } catch (e) {
    say("[data-testid=sign-in-error]", errorText(e));
  }
}

async function signOut() {
  await leaveStudy();
  try {
    await api("DELETE", "/api/v1/session");
  } catch (e) {
    // the session may be over already: the sign-in form is what follows either way
  }
  location.hash = "";
  showSignIn("");
}

// -- routing: #/ is the worklist (with its filters), #/study/<uid> one study -------------

function route() {
  if (!state.user) return;
  const hash = location.hash.replace(/^#\/?/, "");
  if (hash.startsWith("study/")) {
    openStudy(decodeURIComponent(hash.slice("study/".length)));
  } else {
    if (state.study) leaveStudy();
    $("[data-testid=study]").hidden = true;
    $("[data-testid=worklist-view]").hidden = false;
    loadWorklist();
  }
}

// -- the worklist ---------------------------------------------------------------------

const STATES = ["unread", "drafting", "submitted", "returned", "final"];

function filters() {
  const form = $("[data-testid=filters]");
  const q = new URLSearchParams();
  for (const name of ["state", "modality", "hospitalId", "from", "to", "q"]) {
    const value = form[name].value.trim();
    if (value) q.set(name, value);
  }
  return q;
}

function sexAge(item) {
  const sex = item.patientSex ? t(`sex_${item.patientSex}`) : "";
  return [sex === `sex_${item.patientSex}` ? item.patientSex : sex, item.patientAge || ""].filter(Boolean).join(" / ");
}

async function loadWorklist() {
  const q = filters();
  q.set("limit", String(PAGE));
  q.set("offset", String(state.offset));
  const body = $("[data-testid=worklist] tbody");
  let data;
  try {
    data = await api("GET", `/api/v1/worklist?${q}`);
  } catch (e) {
    say("[data-testid=worklist-error]", errorText(e));
    body.replaceChildren();
    return;
  }
  say("[data-testid=worklist-error]", "");
  drawCounts(data.counts || {});
  state.rows = new Map(data.items.map((item) => [item.studyUid, item]));
  body.replaceChildren(...data.items.map(worklistRow));
  if (!data.items.length) body.append(el("tr", {}, el("td", { colspan: 11, class: "none", text: t("none") })));
  $("[data-testid=total]").textContent = t("total", { n: data.total });
  $("[data-testid=previous]").disabled = state.offset === 0;
  $("[data-testid=next]").disabled = state.offset + PAGE >= data.total;
}

function drawCounts(counts) {
  const chosen = $("[data-testid=filters]").state.value;
  const all = STATES.reduce((n, s) => n + (counts[s] || 0), 0);
  const button = (value, label, n) => el("button", {
    type: "button", "data-testid": `count-${value || "all"}`, "data-state": value,
    class: value === chosen ? "current" : null,
    onclick: () => {
      $("[data-testid=filters]").state.value = value;
      state.offset = 0;
      loadWorklist();
    },
  }, el("span", { text: label }), " ", el("b", { class: "n", text: String(n) }));
  $("[data-testid=counts]").replaceChildren(button("", t("all_states"), all),
    ...STATES.map((s) => button(s, t(`state_${s}`), counts[s] || 0)));
}

function worklistRow(item) {
  const emergency = item.category === "emergency";
  const row = el("tr", { "data-testid": "worklist-row", "data-uid": item.studyUid, "data-state": item.state,
    class: emergency ? "emergency" : null, tabindex: 0 },
  el("td", {}, emergency ? el("span", { class: "badge urgent", "data-testid": "emergency", text: t("emergency") })
    : null),
  el("td", { text: item.patientName || "" }),
  el("td", { text: sexAge(item) }),
  el("td", { text: item.hospitalName || item.hospitalId || "" }),
  el("td", { text: item.modality || "" }),
  el("td", { text: [item.bodyPart, item.studyDesc].filter(Boolean).join(" ") }),
  el("td", { text: item.studyDate || "" }),
  el("td", {}, el("span", { class: `badge state-${item.state}`, text: t(`state_${item.state}`) })),
  el("td", { text: item.waitingMinutes === null || item.waitingMinutes === undefined ? ""
    : t("minutes", { n: item.waitingMinutes }) }),
  el("td", { text: item.lockedBy || "" }),
  el("td", { text: item.priors ? String(item.priors) : "" }));
  const open = () => { location.hash = `#/study/${encodeURIComponent(item.studyUid)}`; };
  row.addEventListener("click", open);
  row.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
  return row;
}

// -- one study: the lock, the report, the images -----------------------------------------

const field = (name) => $(`[data-testid=editor] [name=${name}]`);

function stopStudy() {
  if (state.study?.timer) clearTimeout(state.study.timer);
  state.study = null;
}

async function leaveStudy() {
  const study = state.study;
  if (!study) return;
  if (study.timer) clearTimeout(study.timer);
  if (study.dirty && study.writable) await save(study);
  state.study = null;
  if (study.locked) {
    try {
      await api("DELETE", `${studyPath(study.uid)}/lock`);
    } catch (e) {
      // ended already (submitted, expired, taken over by an admin): nothing to release
    }
  }
}

async function openStudy(uid) {
  if (state.study?.uid === uid) return;
  await leaveStudy();
  const study = { uid, item: state.rows.get(uid) || null, version: 0, report: { state: "none" }, locked: false,
    writable: false, dirty: false, saving: null, timer: null };
  state.study = study;
  for (const name of ["imageDescription", "conclusion"]) field(name).value = "";
  field("critical").checked = false;
  draw(study); // read-only until the report is read and the lock taken
  $("[data-testid=worklist-view]").hidden = true;
  $("[data-testid=study]").hidden = false;
  for (const selector of ["lock-warning", "conflict", "editor-error", "return-comment"]) {
    say(`[data-testid=${selector}]`, "");
  }
  $("[data-testid=save-status]").textContent = "";
  const item = study.item;
  $("[data-testid=study-title]").textContent = item
    ? [item.patientName, sexAge(item), item.hospitalName, item.modality, item.studyDesc, item.accessNumber]
      .filter(Boolean).join(" · ")
    : uid;
  const frame = $("[data-testid=viewer]");
  const src = `${VIEWER}?StudyInstanceUIDs=${encodeURIComponent(uid)}`;
  if (frame.getAttribute("src") !== src) frame.setAttribute("src", src);
  await loadReport(study);
  if (state.study !== study) return;
  if (WRITABLE.has(study.report.state) && hasRole("radiologist")) {
    await takeLock(study);
    // The first lock makes the report (from the exam item's template, at version 0): read what it holds.
    if (study.locked && state.study === study) await loadReport(study);
  }
  if (state.study !== study) return;
  draw(study);
  loadPickers(study);
  loadPriors(study);
}

async function loadReport(study) {
  try {
    study.report = await api("GET", `${studyPath(study.uid)}/report`);
  } catch (e) {
    if (e.code !== NO_REPORT) say("[data-testid=editor-error]", errorText(e));
    study.report = { state: "none", version: 0, imageDescription: "", conclusion: "", critical: false };
  }
  study.version = study.report.version || 0;
  study.dirty = false;
  field("imageDescription").value = study.report.imageDescription || "";
  field("conclusion").value = study.report.conclusion || "";
  field("critical").checked = Boolean(study.report.critical);
}

async function takeLock(study) {
  try {
    await api("POST", `${studyPath(study.uid)}/lock`);
    study.locked = true;
  } catch (e) {
    study.locked = false;
    if (e.code === LOCKED) say("[data-testid=lock-warning]", t("lock_held", { who: e.message }));
    else say("[data-testid=editor-error]", errorText(e));
  }
}

function draw(study) {
  const rep = study.report;
  const st = rep.state || "none";
  study.writable = study.locked && WRITABLE.has(st);
  const badge = $("[data-testid=report-state]");
  badge.textContent = `${t(`state_${st}`)} · ${t("version")} ${study.version}`;
  badge.className = `badge state-${st}`;
  badge.dataset.state = st;
  for (const name of ["imageDescription", "conclusion"]) field(name).readOnly = !study.writable;
  field("critical").disabled = !study.writable;
  $("[data-testid=template-picker]").disabled = !study.writable;
  $("[data-testid=insert-template]").disabled = !study.writable;
  $("[data-testid=phrase-picker]").classList.toggle("off", !study.writable);
  const show = (id, on) => { $(`[data-testid=${id}]`).hidden = !on; };
  show("save", study.writable);
  show("submit", study.writable && hasRole("radiologist"));
  show("approve", st === "submitted" && hasRole("reviewer"));
  show("return", st === "submitted" && hasRole("reviewer"));
  show("amend", st === "final" && hasRole("radiologist"));
  show("print", Boolean(rep.reportNumber) && (st === "final" || st === "amending" || Boolean(rep.auditTime)));
  const comment = rep.returnComment || (rep.revisions || []).map((r) => r.comment).filter(Boolean).pop();
  say("[data-testid=return-comment]", st === "returned" && comment ? `${t("return_comment")}: ${comment}` : "");
  const signers = [[t("report_doctor"), rep.reportDoctor, rep.reportTime], [t("audit_doctor"), rep.auditDoctor, rep.auditTime]]
    .filter(([, who]) => who)
    .map(([label, who, at]) => el("span", { text: `${label}: ${who} ${at || ""}`.trim() }));
  $("[data-testid=signers]").replaceChildren(...signers);
  if (!study.writable && !study.dirty) $("[data-testid=save-status]").textContent = "";
}

// -- saving: debounced autosave, the version carried, a conflict never overwritten ---------

function edited() {
  const study = state.study;
  if (!study || !study.writable) return;
  study.dirty = true;
  $("[data-testid=save-status]").textContent = t("unsaved");
  if (study.timer) clearTimeout(study.timer);
  study.timer = setTimeout(() => { study.timer = null; save(study); }, AUTOSAVE_MS);
}

function save(study) {
  // One save at a time: a save asked for while one is on the way follows it (with its new version).
  study.saving = (study.saving || Promise.resolve()).then(() => saveNow(study));
  return study.saving;
}

async function saveNow(study) {
  if (!study.writable || state.study !== study || !study.dirty) return study.dirty === false;
  if (study.timer) { clearTimeout(study.timer); study.timer = null; }
  study.dirty = false;
  $("[data-testid=save-status]").textContent = t("saving");
  const body = { imageDescription: field("imageDescription").value, conclusion: field("conclusion").value,
    critical: field("critical").checked, version: study.version };
  try {
    const data = await api("PUT", `${studyPath(study.uid)}/report`, body);
    study.version = typeof data === "number" ? data : data.version;
    if (data && typeof data === "object" && data.state) study.report = { ...study.report, ...data };
    else {
      const now = ["none", "returned"].includes(study.report.state) ? "drafting" : study.report.state;
      study.report = { ...study.report, ...body, version: study.version, state: now };
    }
    say("[data-testid=conflict]", "");
    draw(study);
    $("[data-testid=save-status]").textContent = study.dirty ? t("unsaved") : t("saved", { v: study.version });
    return true;
  } catch (e) {
    if (e.code === MODIFIED) {
      // Someone else saved first: show theirs, keep nothing of ours over it.
      await loadReport(study);
      draw(study);
      say("[data-testid=conflict]", t("conflict"));
      $("[data-testid=save-status]").textContent = "";
    } else if (LOCK_CODES.has(e.code)) {
      study.locked = false;
      draw(study);
      say("[data-testid=lock-warning]", `${t("lock_lost")} ${errorText(e)}`);
    } else {
      study.dirty = true;
      say("[data-testid=editor-error]", errorText(e));
      $("[data-testid=save-status]").textContent = t("unsaved");
    }
    return false;
  }
}

async function step(verb, body, done) {
  const study = state.study;
  if (!study) return;
  say("[data-testid=editor-error]", "");
  if (study.writable && (study.dirty || study.version === 0)) {
    study.dirty = true;
    if (!(await save(study))) return;
  }
  try {
    await api("POST", `${studyPath(study.uid)}/report/${verb}`, body);
  } catch (e) {
    say("[data-testid=editor-error]", errorText(e));
    return;
  }
  if (verb === "submit") study.locked = false; // the server released it
  await loadReport(study);
  if (state.study !== study) return;
  if (verb === "amend" && hasRole("radiologist")) await takeLock(study);
  draw(study);
  $("[data-testid=save-status]").textContent = t(done);
}

function returnReport() {
  const comment = window.prompt(t("return_prompt"), "");
  if (comment === null) return;
  step("return", { comment }, "done_returned");
}

function printReport() {
  const study = state.study;
  if (study) window.open(`${studyPath(study.uid)}/report.pdf`, "_blank", "noopener");
}

// -- pickers: text inserted at the cursor of the field being written ----------------------

let lastField = null;

function insertAt(textarea, text) {
  if (!text || textarea.readOnly) return;
  const start = textarea.selectionStart ?? textarea.value.length;
  const end = textarea.selectionEnd ?? start;
  textarea.setRangeText(text, start, end, "end");
  textarea.focus();
  textarea.dispatchEvent(new Event("input", { bubbles: true }));
}

async function loadPickers(study) {
  const picker = $("[data-testid=template-picker]");
  const tree = $("[data-testid=phrase-picker] .tree");
  picker.replaceChildren(el("option", { value: "", text: t("pick_template") }));
  tree.replaceChildren();
  try {
    const data = await api("GET", "/api/v1/exam-items");
    if (state.study !== study) return;
    const items = Array.isArray(data) ? data : data.items || [];
    const modality = study.item?.modality;
    items.sort((a, b) => (b.modality === modality) - (a.modality === modality));
    study.templates = new Map(items.map((it) => [String(it.id), it]));
    picker.append(...items.map((it) => el("option", { value: String(it.id), "data-testid": "template",
      text: [it.modality, it.name].filter(Boolean).join(" · ") })));
    if (!items.length) picker.append(el("option", { value: "", disabled: true, text: t("no_templates") }));
  } catch (e) {
    picker.append(el("option", { value: "", disabled: true, text: errorText(e) }));
  }
  try {
    const data = await api("GET", "/api/v1/kb/tree");
    if (state.study !== study) return;
    // {personal: [folder], shared: [folder]}, each folder with its `folders` and `texts`.
    const groups = Array.isArray(data) ? [["", data]] : [["kb_personal", data.personal || []], ["kb_shared", data.shared || []]];
    const shown = groups.filter(([, nodes]) => nodes.length);
    for (const [label, nodes] of shown) {
      if (label) tree.append(el("div", { class: "group", text: t(label) }));
      tree.append(phraseList(nodes));
    }
    if (!shown.length) tree.append(el("p", { class: "none", text: t("no_phrases") }));
  } catch (e) {
    tree.append(el("p", { class: "error", text: errorText(e) }));
  }
}

function insertTemplate() {
  const study = state.study;
  const chosen = study?.templates?.get($("[data-testid=template-picker]").value);
  if (!chosen || !study.writable) return;
  insertAt(field("imageDescription"), chosen.templateDescription || "");
  insertAt(field("conclusion"), chosen.templateConclusion || "");
}

// Folders (with `children` / `folders` and `texts`) as nested lists; a text is a button that inserts its body.
function phraseList(nodes) {
  const list = el("ul", {});
  for (const node of nodes) {
    if (node.body !== undefined && !node.children && !node.texts) {
      list.append(el("li", {}, phraseButton(node)));
      continue;
    }
    const inner = [...(node.children || node.folders || []), ...(node.texts || [])];
    list.append(el("li", { class: "folder" }, el("span", { text: node.name || node.title || "" }),
      inner.length ? phraseList(inner) : null));
  }
  return list;
}

function phraseButton(text) {
  const button = el("button", { type: "button", "data-testid": "phrase", title: text.body, text: text.title || "" });
  // Keep the caret where it is: the click must not take the focus from the field being written.
  button.addEventListener("mousedown", (e) => e.preventDefault());
  button.addEventListener("click", () => {
    if (!state.study?.writable) return;
    insertAt(lastField || field("imageDescription"), text.body);
  });
  return button;
}

// -- priors: the patient's other studies in the union, with their reports ------------------

async function loadPriors(study) {
  const list = $("[data-testid=priors]");
  list.replaceChildren(el("li", { class: "none", text: t("loading") }));
  let data;
  try {
    data = await api("GET", `${studyPath(study.uid)}/priors`);
  } catch (e) {
    list.replaceChildren(el("li", { class: "error", text: errorText(e) }));
    return;
  }
  if (state.study !== study) return;
  const items = Array.isArray(data) ? data : data.items || [];
  if (!items.length) {
    list.replaceChildren(el("li", { class: "none", text: t("no_priors") }));
    return;
  }
  list.replaceChildren(...items.map((p) => {
    const rep = p.report || null;
    return el("li", { "data-testid": "prior", "data-uid": p.studyUid || "" },
      el("div", { class: "prior-head",
        text: [p.studyDate, p.hospitalName || p.hospitalId, p.modality, p.bodyPart, p.studyDesc].filter(Boolean).join(" · ") }),
      rep ? el("div", { class: "prior-report" },
        el("p", { text: rep.imageDescription || "" }),
        el("p", { class: "conclusion", text: rep.conclusion || "" }))
        : el("p", { class: "none", text: t("no_report") }));
  }));
}

// -- start ------------------------------------------------------------------------------

window.addEventListener("hashchange", route);
$("form.signin").addEventListener("submit", signIn);
$("[data-testid=sign-out]").addEventListener("click", signOut);
$("[data-testid=filters]").addEventListener("submit", (e) => {
  e.preventDefault();
  state.offset = 0;
  loadWorklist();
});
$("[data-testid=previous]").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadWorklist(); });
$("[data-testid=next]").addEventListener("click", () => { state.offset += PAGE; loadWorklist(); });
$("[data-testid=back]").addEventListener("click", () => { location.hash = "#/"; });
for (const name of ["imageDescription", "conclusion"]) {
  const area = field(name);
  area.addEventListener("focus", () => { lastField = area; });
  area.addEventListener("input", edited);
}
field("critical").addEventListener("change", edited);
$("[data-testid=save]").addEventListener("click", () => { if (state.study) { state.study.dirty = true; save(state.study); } });
$("[data-testid=submit]").addEventListener("click", () => step("submit", undefined, "done_submitted"));
$("[data-testid=approve]").addEventListener("click", () => step("approve", undefined, "done_approved"));
$("[data-testid=return]").addEventListener("click", returnReport);
$("[data-testid=amend]").addEventListener("click", () => step("amend", undefined, "done_amending"));
$("[data-testid=print]").addEventListener("click", printReport);
$("[data-testid=insert-template]").addEventListener("click", insertTemplate);
window.addEventListener("pagehide", () => {
  // Leaving the page: let the lock go at once rather than after its 30 minutes.
  const study = state.study;
  if (study?.locked && state.csrf) {
    fetch(`${studyPath(study.uid)}/lock`, { method: "DELETE", keepalive: true, credentials: "same-origin",
      headers: { "X-CSRF-Token": state.csrf } });
  }
});
api("GET", "/api/v1/session").then(signedIn, () => showSignIn(""));
