// Rulebook dashboard: talks only to the admin API of the process that serves
// it. No framework, no build step. Every value from the server is put into
// the page with textContent, never as HTML.
"use strict";

const TOKEN_KEY = "rulebook-admin-token";
const FEED_MAX = 300;
const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  es: null,
  lastId: 0,
  counts: { event: 0, firing: 0, action: 0 },
  paused: [], // feed entries held while paused
  pending: [], // feed entries waiting for the next frame
  frame: 0,
  rules: new Map(), // "ruleset\0rule" -> fired
  timers: {},
  needToken: false,
};

const $ = (id) => document.getElementById(id);

class AuthError extends Error {}

// api calls the admin API with the token, and returns the decoded JSON.
async function api(path, opts = {}) {
  const headers = {};
  if (state.token) headers["Authorization"] = "Bearer " + state.token;
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, { method: opts.method || "GET", headers, body: opts.body, cache: "no-store" });
  if (resp.status === 401) {
    askToken();
    throw new AuthError("unauthorized");
  }
  let data = null;
  try { data = await resp.json(); } catch (e) { /* not JSON */ }
  if (!resp.ok) throw new Error((data && data.error) || resp.status + " " + resp.statusText);
  return data;
}

// debounce runs fn once, ms after the last call for key.
function debounce(key, ms, fn) {
  clearTimeout(state.timers[key]);
  state.timers[key] = setTimeout(fn, ms);
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function clock(t) {
  if (!t || t.startsWith("0001-")) return "never";
  const d = new Date(t);
  if (isNaN(d)) return t;
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

function seconds(s) {
  if (!s) return "0s";
  if (s < 1) return Math.round(s * 1000) + "ms";
  if (s < 60) return s.toFixed(1) + "s";
  return Math.floor(s / 60) + "m" + Math.round(s % 60) + "s";
}

function notice(text, bad) {
  const n = $("notice");
  n.textContent = text;
  n.className = bad ? "bad" : "";
  n.hidden = false;
  debounce("notice", 6000, () => { n.hidden = true; });
}

// ---- token ----

function askToken() {
  state.needToken = true;
  const dlg = $("token-dialog");
  $("token-error").textContent = state.token ? "That token was refused." : "";
  if (!dlg.open) dlg.showModal();
  $("token-input").focus();
}

$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const v = $("token-input").value.trim();
  if (!v) return;
  state.token = v;
  sessionStorage.setItem(TOKEN_KEY, v);
  state.needToken = false;
  $("token-dialog").close();
  start();
});

// ---- live stream ----

function setConn(on, text) {
  const c = $("conn");
  c.textContent = text || (on ? "live" : "reconnecting…");
  c.className = "pill " + (on ? "pill-on" : "pill-off");
}

function connectStream() {
  if (state.es) state.es.close();
  const q = new URLSearchParams();
  if (state.lastId > 0) q.set("after", String(state.lastId));
  else q.set("replay", "50");
  if (state.token) q.set("token", state.token);
  const es = new EventSource("/api/stream?" + q.toString());
  state.es = es;
  es.onopen = () => setConn(true);
  es.onerror = () => {
    if (state.es !== es) return;
    setConn(false);
    // CLOSED means the server refused (an HTTP error): EventSource gives
    // up, so try again, first checking the token with a plain request.
    if (es.readyState === EventSource.CLOSED) {
      debounce("reconnect", 3000, () => {
        api("/api/rules").then(() => connectStream()).catch(() => {
          if (!state.needToken) debounce("reconnect2", 3000, connectStream);
        });
      });
    }
  };
  for (const kind of ["event", "firing", "action", "reload", "gap"]) {
    es.addEventListener(kind, (m) => onEntry(kind, m));
  }
}

function onEntry(kind, m) {
  let data = {};
  try { data = JSON.parse(m.data); } catch (e) { data = { raw: m.data }; }
  const id = Number(m.lastEventId);
  if (kind !== "gap" && id > 0) state.lastId = id;
  if (kind in state.counts) {
    state.counts[kind]++;
    $("n-" + kind + "s").textContent = state.counts[kind];
  }
  queueFeed({ kind, id, data });
  if (kind === "firing") debounce("rules", 250, refreshRules);
  if (kind === "action") {
    debounce("audit", 600, refreshAudit);
    debounce("approvals", 300, refreshApprovals);
  }
  if (kind === "reload") {
    notice(data.ok ? "Rulebooks reloaded." : "Reload refused: " + (data.error || "unknown error"), !data.ok);
    refreshRules();
  }
}

function summarize(obj, max) {
  let s;
  try { s = JSON.stringify(obj); } catch (e) { s = String(obj); }
  if (s && s.length > max) s = s.slice(0, max) + "…";
  return s;
}

function feedItem(kind, id, d) {
  const li = el("li", "feed-item");
  li.dataset.kind = kind;
  if (id > 0) li.dataset.id = String(id);
  const line = el("div", "feed-line");
  // Every entry's data says when it happened (an event: when it arrived;
  // an action: its last update). Entries replayed from the stream's ring on
  // page load or reconnect are shown at that time, not when the page got
  // them; only the page's own "gap" notice is stamped now.
  const when = d.time || d.updated || (kind === "gap" ? new Date().toISOString() : "");
  const t = el("time", "feed-time", when ? clock(when) : "?");
  if (when) t.dateTime = when;
  line.append(t);
  line.append(el("span", "badge k-" + kind, kind));
  let text = "";
  switch (kind) {
    case "event": {
      li.dataset.eventId = d.event_id || "";
      li.dataset.ruleset = d.ruleset || "";
      let body = d.event;
      if (body && typeof body === "object") {
        body = Object.assign({}, body);
        delete body.meta;
      }
      text = (d.ruleset || "?") + " · " + (d.source || "?") + " · " +
        (d.truncated ? "(event of " + d.truncated + " bytes, too large to show)" : summarize(body, 240));
      break;
    }
    case "firing":
      li.dataset.ruleset = d.ruleset || "";
      li.dataset.rule = d.rule || "";
      text = (d.ruleset || "?") + " / " + (d.rule || "?") + " fired" +
        (d.actions && d.actions.length ? " → " + d.actions.join(", ") : "");
      break;
    case "action": {
      li.dataset.status = d.status || "";
      const st = el("span", "badge s-" + (d.status || ""), d.status || "?");
      line.append(st);
      const detail = d.error || (d.output || "").split("\n")[0];
      text = (d.action || "?") + " for " + (d.ruleset || "?") + " / " + (d.rule || "?") +
        (d.attempts ? " · attempt " + d.attempts : "") +
        (d.duration ? " · " + seconds(d.duration) : "") + (detail ? " · " + detail : "");
      break;
    }
    case "reload":
      text = d.ok ? "rulebooks reloaded" : "reload refused: " + (d.error || "");
      break;
    case "gap":
      text = "some entries were missed while disconnected";
      break;
    default:
      text = summarize(d, 240);
  }
  line.append(el("span", "feed-text", text));
  li.append(line);
  const pre = el("pre", "feed-json");
  li.append(pre);
  li.addEventListener("click", () => {
    if (!pre.textContent) pre.textContent = JSON.stringify(d, null, 2);
    li.classList.toggle("open");
  });
  return li;
}

// queueFeed batches feed lines into one DOM update per frame, keeping only
// what the feed can show, so a burst of events does not freeze the page.
function queueFeed(entry) {
  const q = $("pause").checked ? state.paused : state.pending;
  q.push(entry);
  if (q.length > FEED_MAX) q.splice(0, q.length - FEED_MAX);
  if (q === state.pending && !state.frame) {
    state.frame = requestAnimationFrame(() => {
      state.frame = 0;
      const batch = state.pending;
      state.pending = [];
      addToFeed(batch.map((e) => feedItem(e.kind, e.id, e.data)));
    });
  }
}

function addToFeed(items) {
  const feed = $("feed");
  for (const it of items) feed.prepend(it);
  while (feed.children.length > FEED_MAX) feed.lastElementChild.remove();
  $("feed-empty").hidden = feed.children.length > 0;
}

for (const kind of ["event", "firing", "action"]) {
  $("show-" + kind).addEventListener("change", (ev) => {
    $("feed").classList.toggle("hide-" + kind, !ev.target.checked);
  });
}
$("pause").addEventListener("change", (ev) => {
  if (!ev.target.checked) {
    addToFeed(state.paused.map((e) => feedItem(e.kind, e.id, e.data)));
    state.paused = [];
  }
});
$("clear-feed").addEventListener("click", () => {
  $("feed").replaceChildren();
  $("feed-empty").hidden = false;
});

// ---- rules ----

async function refreshRules() {
  let data;
  try { data = await api("/api/rules"); } catch (e) {
    if (!(e instanceof AuthError)) $("rules-updated").textContent = "cannot load rules: " + e.message;
    return false;
  }
  const rules = data.rules || [];
  const body = $("rules").tBodies[0];
  const rows = [];
  const rulesets = [];
  for (const r of rules) {
    const key = r.ruleset + "\0" + r.rule;
    const tr = el("tr");
    tr.dataset.ruleset = r.ruleset;
    tr.dataset.rule = r.rule;
    if (!r.enabled) {
      tr.className = "disabled";
      tr.title = "disabled";
    }
    // Consumed is counted for single-condition and any rules of rulesets
    // that are not too large (consumed_counted).
    const uncounted = !r.consumed_counted;
    const throttled = el("td", "num suppressed", r.throttle ? (r.suppressed || 0) : "–");
    throttled.title = r.throttle ? "matches its " + r.throttle + " throttle kept from firing" : "no throttle";
    const consumed = el("td", "num consumed", uncounted ? "–" : (r.consumed || 0));
    consumed.title = uncounted ? "not counted for this rule (all/not_all, match_multiple_rules, or a ruleset with over 16 single/any rules); use explain" :
      "events an earlier rule matched and consumed that this rule's condition meets";
    tr.append(el("td", "", r.ruleset), el("td", "", r.rule), el("td", "", r.kind),
      el("td", "num matches", r.matched || 0), el("td", "num hits", r.fired), throttled, consumed,
      el("td", "last", clock(r.last_fired)));
    const before = state.rules.get(key);
    if (before !== undefined && r.fired > before) tr.classList.add("flash");
    state.rules.set(key, r.fired);
    rows.push(tr);
    if (!rulesets.includes(r.ruleset)) rulesets.push(r.ruleset);
  }
  body.replaceChildren(...rows);
  $("rules-empty").hidden = rules.length > 0;
  $("rules-updated").textContent = "updated " + new Date().toLocaleTimeString();
  const sel = $("send-ruleset");
  const keep = sel.value;
  sel.replaceChildren(...rulesets.map((n) => { const o = el("option", "", n); o.value = n; return o; }));
  if (rulesets.includes(keep)) sel.value = keep;
  return true;
}

// ---- action history ----

async function refreshAudit() {
  const q = new URLSearchParams({ limit: "50" });
  if ($("audit-status").value) q.set("status", $("audit-status").value);
  if ($("audit-rule").value.trim()) q.set("rule", $("audit-rule").value.trim());
  let data;
  try { data = await api("/api/audit?" + q.toString()); } catch (e) {
    if (!(e instanceof AuthError)) notice("Action history: " + e.message, true);
    return;
  }
  const rows = [];
  for (const entry of data.entries || []) {
    const f = entry.firing || {};
    for (const st of entry.invocations || []) {
      if (!st) continue;
      const inv = st.invocation || {};
      const atts = st.attempts || [];
      const last = atts.length ? atts[atts.length - 1] : {};
      let took = 0;
      for (const a of atts) took += (a.duration || 0) / 1e9;
      const tr = el("tr");
      tr.dataset.invocation = inv.id || "";
      const status = el("td");
      status.append(el("span", "badge s-" + st.status, st.status));
      const outText = last.error || last.output || "";
      const out = el("td", "out" + (last.error ? " bad" : ""), outText.length > 400 ? outText.slice(0, 400) + "…" : outText);
      if (outText.length > 400) out.title = outText;
      let code = "";
      if (last.exit_code !== undefined && last.exit_code !== null) code = "exit " + last.exit_code + " ";
      else if (last.http_status) code = "http " + last.http_status + " ";
      if (code) out.prepend(el("b", "", code));
      tr.append(el("td", "", clock(f.time)), el("td", "", f.ruleset), el("td", "", f.rule),
        el("td", "", inv.action), status, el("td", "num", atts.length), el("td", "num", seconds(took)), out);
      rows.push(tr);
    }
  }
  $("audit").tBodies[0].replaceChildren(...rows);
  $("audit-empty").hidden = rows.length > 0;
}

$("audit-refresh").addEventListener("click", refreshAudit);
$("audit-status").addEventListener("change", refreshAudit);
$("audit-rule").addEventListener("change", refreshAudit);

// ---- approvals ----

async function refreshApprovals() {
  let data;
  try { data = await api("/api/approvals"); } catch (e) {
    // 404: this engine has no approvals endpoint; keep the panel hidden.
    if (!(e instanceof AuthError) && !/not available/.test(e.message)) notice("Approvals: " + e.message, true);
    return;
  }
  $("approvals-section").hidden = false;
  const rows = [];
  for (const st of data.approvals || []) {
    const inv = st.invocation || {};
    const ap = st.approval || {};
    const tr = el("tr");
    tr.dataset.invocation = inv.id || "";
    const ev = inv.event || {};
    const evShown = Object.assign({}, ev);
    delete evShown.meta;
    const what = el("td", "out");
    what.append(el("b", "", inv.action + " "), el("span", "", JSON.stringify(inv.args || {})));
    const buttons = el("td");
    const approve = el("button", "small approve", "Approve");
    approve.type = "button";
    approve.addEventListener("click", () => decide(inv.id, "approved"));
    const reject = el("button", "small reject", "Reject");
    reject.type = "button";
    reject.addEventListener("click", () => decide(inv.id, "rejected"));
    buttons.append(approve, reject);
    tr.append(el("td", "", clock(ap.requested)), el("td", "", inv.ruleset + " / " + inv.rule), what,
      el("td", "out", summarize(evShown, 300)), el("td", "", clock(ap.deadline)), buttons);
    rows.push(tr);
  }
  $("approvals").tBodies[0].replaceChildren(...rows);
  $("approvals-empty").hidden = rows.length > 0;
}

async function decide(id, decision) {
  try {
    await api("/api/approvals/" + encodeURIComponent(id), { method: "POST", body: JSON.stringify({ decision }) });
    notice((decision === "approved" ? "Approved " : "Rejected ") + id + ".");
  } catch (e) {
    if (!(e instanceof AuthError)) notice("Decision not recorded: " + e.message, true);
  }
  refreshApprovals();
  refreshAudit();
}

$("approvals-refresh").addEventListener("click", refreshApprovals);

// ---- readiness, reload ----

async function refreshReady() {
  const p = $("ready");
  try {
    const resp = await fetch("/readyz", { cache: "no-store" });
    const d = await resp.json();
    p.textContent = d.ready ? "ready" : "not ready";
    p.title = d.ready ? "Readiness (/readyz)" : (d.reasons || []).join("\n");
    p.className = "pill " + (d.ready ? "pill-on" : "pill-bad");
  } catch (e) {
    p.textContent = "unreachable";
    p.className = "pill pill-bad";
  }
}

$("reload").addEventListener("click", async () => {
  try {
    await api("/api/reload", { method: "POST", body: "{}" });
    notice("Rulebooks reloaded.");
  } catch (e) {
    if (!(e instanceof AuthError)) notice("Reload refused: " + e.message, true);
  }
  refreshRules();
});

// ---- test event ----

$("send-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const out = $("send-result");
  out.className = "";
  let event;
  try {
    event = JSON.parse($("send-event").value);
  } catch (e) {
    out.className = "bad";
    out.textContent = "Not valid JSON: " + e.message;
    return;
  }
  if (!event || typeof event !== "object" || Array.isArray(event)) {
    out.className = "bad";
    out.textContent = "The event must be a JSON object.";
    return;
  }
  const ruleset = $("send-ruleset").value;
  try {
    const d = await api("/api/events", { method: "POST", body: JSON.stringify({ ruleset, event }) });
    out.className = "good";
    out.textContent = "Sent to " + ruleset + " (event " + d.event_id + ")";
  } catch (e) {
    if (e instanceof AuthError) return;
    out.className = "bad";
    out.textContent = "Not sent: " + e.message;
  }
});

// ---- start ----

async function start() {
  refreshReady();
  if (!(await refreshRules())) {
    // A missing or refused token opens the dialog, which calls start
    // again; anything else (the server restarting) is retried.
    if (!state.needToken) debounce("start", 3000, start);
    return;
  }
  refreshAudit();
  refreshApprovals();
  connectStream();
}

setInterval(() => { if (!state.needToken) refreshRules(); }, 5000);
setInterval(() => { if (!state.needToken) refreshAudit(); }, 10000);
setInterval(() => { if (!state.needToken) refreshApprovals(); }, 5000);
setInterval(refreshReady, 5000);
start();
