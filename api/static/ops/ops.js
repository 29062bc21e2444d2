// The /ops page: sign in with an API key or an Auth0 access token (kept in this tab's
// sessionStorage, sent only as `Authorization: Bearer` to this origin), then draw the funnel,
// the time-to-accept histogram and the pending invitations that have waited longest.
// Served by the API (api/routes/ops_page.py); no library, no CDN: the charts are SVG drawn here.
"use strict";

const CREDENTIAL = "invites.ops.credential";
const STAGES = ["created", "delivered", "opened", "accepted", "expired", "revoked", "undeliverable"];
const MAX_GROUPS = 8; // bars per stage for this many groups; the rest is in the table
// The pending list: visibility lists newest first, so the oldest are on the last pages. The
// page walks at most PENDING_PAGES pages of PENDING_PAGE_SIZE and says so when more remain.
const PENDING_PAGE_SIZE = 200;
const PENDING_PAGES = 10;
const PENDING_SHOWN = 10;
const SVG = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);

class ApiFailure extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path) {
  const response = await fetch(path, {
    headers: {Authorization: `Bearer ${sessionStorage.getItem(CREDENTIAL)}`, Accept: "application/json"},
    cache: "no-store",
    credentials: "omit",
  });
  if (!response.ok) {
    let message = `The API answered ${response.status}.`;
    try {
      message = (await response.json()).error.message || message;
    } catch (_) {
      // not our JSON error body: keep the status
    }
    throw new ApiFailure(response.status, message);
  }
  return response.json();
}

// -- sign in and out ---------------------------------------------------------------------------

function showSignIn(message) {
  sessionStorage.removeItem(CREDENTIAL);
  $("dashboard").hidden = true;
  $("signout").hidden = true;
  $("signin").hidden = false;
  $("signin-error").hidden = !message;
  $("signin-error").textContent = message || "";
  $("credential").focus();
}

function signIn(event) {
  event.preventDefault();
  const value = $("credential").value.trim();
  $("credential").value = "";
  if (!value) return;
  sessionStorage.setItem(CREDENTIAL, value);
  showDashboard();
}

function showDashboard() {
  $("signin").hidden = true;
  $("dashboard").hidden = false;
  $("signout").hidden = false;
  load();
}

// -- loading -----------------------------------------------------------------------------------

let loading = 0; // the latest load wins when the controls change quickly

async function load() {
  const mine = ++loading;
  const by = $("by").value;
  const to = new Date();
  const from = new Date(to.getTime() - Number($("window").value) * 86_400_000);
  const query = new URLSearchParams({from: from.toISOString(), to: to.toISOString(), by});
  $("status").textContent = "Loading…";
  try {
    const [funnel, histogram, pending] = await Promise.all([
      api(`/v1/stats/funnel?${query}`),
      api(`/v1/stats/time-to-accept?${query}`),
      oldestPending(),
    ]);
    if (mine !== loading) return;
    $("group-head").textContent = by;
    drawFunnel(funnel.groups);
    fillFunnelTable(funnel.groups);
    drawHistogram(histogram);
    fillPending(pending);
    $("status").textContent = `Updated ${formatDate(new Date().toISOString())}.`;
  } catch (failure) {
    if (mine !== loading) return;
    if (failure instanceof ApiFailure && (failure.status === 401 || failure.status === 403)) {
      showSignIn(failure.message);
    } else {
      $("status").textContent = failure.message || "The API could not be reached.";
    }
  }
}

async function oldestPending() {
  const items = [];
  let token = null;
  let pages = 0;
  do {
    const query = new URLSearchParams({status: "pending", page_size: String(PENDING_PAGE_SIZE)});
    if (token) query.set("page_token", token);
    const page = await api(`/v1/invitations?${query}`);
    items.push(...page.items);
    token = page.next_page_token;
    pages += 1;
  } while (token && pages < PENDING_PAGES);
  const started = (item) => (item.created_at ? Date.parse(item.created_at) : Infinity);
  items.sort((a, b) => started(a) - started(b));
  const oldest = items.slice(0, PENDING_SHOWN);
  // Delivery state is the workflow's (delivered_at, opened_at): one read per row shown.
  const details = await Promise.all(
    oldest.map((item) => api(`/v1/invitations/${encodeURIComponent(item.id)}`).catch(() => null)),
  );
  return {rows: oldest.map((item, i) => ({...item, ...(details[i] || {})})), scanned: items.length, more: Boolean(token)};
}

// -- the funnel --------------------------------------------------------------------------------

function svg(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

const groupName = (key) => (key === null || key === undefined ? "(none)" : key);

function drawFunnel(groups) {
  const shown = groups.slice(0, MAX_GROUPS);
  const box = $("funnel-chart");
  box.replaceChildren();
  if (!shown.length) {
    box.append(paragraph("No invitation was created in this window."));
    return;
  }
  const width = 920;
  const height = 280;
  const top = 24;
  const bottom = 40;
  const left = 8;
  const cluster = (width - left * 2) / shown.length;
  const bar = Math.min(36, (cluster * 0.84) / STAGES.length);
  const max = Math.max(1, ...shown.flatMap((g) => STAGES.map((s) => g[s])));
  const scale = (height - top - bottom) / max;
  const chart = svg("svg", {viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Funnel per group"});
  chart.append(svg("line", {x1: 0, x2: width, y1: height - bottom, y2: height - bottom, class: "axis"}));
  shown.forEach((group, g) => {
    const start = left + g * cluster + (cluster - bar * STAGES.length) / 2;
    STAGES.forEach((stage, s) => {
      const count = group[stage];
      const h = Math.max(count ? 2 : 0, count * scale);
      const x = start + s * bar;
      const rect = svg("rect", {
        x: x + 1, y: height - bottom - h, width: bar - 2, height: h,
        class: `bar stage-${stage}`, "data-group": groupName(group.key), "data-stage": stage, "data-count": count,
      });
      rect.append(svg("title", {}, `${groupName(group.key)}: ${count} ${stage}`));
      chart.append(rect);
      chart.append(svg("text", {x: x + bar / 2, y: height - bottom - h - 5, class: "count"}, String(count)));
    });
    chart.append(svg("text", {x: left + g * cluster + cluster / 2, y: height - bottom + 20, class: "group"}, groupName(group.key)));
  });
  box.append(chart, legend(STAGES.map((stage) => [stage, `stage-${stage}`])));
  if (groups.length > shown.length) {
    box.append(paragraph(`The chart shows the ${shown.length} largest of ${groups.length} groups; the table has them all.`));
  }
}

function fillFunnelTable(groups) {
  const body = $("funnel-table").tBodies[0];
  body.replaceChildren(
    ...groups.map((group) =>
      row(
        [
          groupName(group.key),
          ...STAGES.map((s) => String(group[s])),
          `${(group.accept_rate * 100).toFixed(1)} %`,
          formatDuration(group.time_to_accept_s.p50),
          formatDuration(group.time_to_accept_s.p90),
        ],
        {"data-group": groupName(group.key)},
      ),
    ),
  );
  if (!groups.length) body.append(row(["No invitation was created in this window."], {}, STAGES.length + 4));
}

// -- time to accept ----------------------------------------------------------------------------

function bucketLabels(bounds) {
  return [
    `< ${formatDuration(bounds[0])}`,
    ...bounds.slice(1).map((b, i) => `${formatDuration(bounds[i])} – ${formatDuration(b)}`),
    `≥ ${formatDuration(bounds[bounds.length - 1])}`,
  ];
}

function drawHistogram(histogram) {
  const labels = bucketLabels(histogram.bounds_s);
  const totals = labels.map((_, i) => histogram.groups.reduce((sum, g) => sum + g.counts[i], 0));
  const accepted = totals.reduce((a, b) => a + b, 0);
  $("histogram-note").textContent = accepted
    ? `${accepted} accepted invitation${accepted === 1 ? "" : "s"} of this window, all groups, by time from creation to acceptance.`
    : "No invitation of this window was accepted yet.";
  const box = $("histogram");
  box.replaceChildren();
  if (!accepted) return;
  const width = 920;
  const height = 180;
  const top = 24;
  const bottom = 36;
  const slot = width / labels.length;
  const max = Math.max(...totals);
  const chart = svg("svg", {viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Time to accept"});
  chart.append(svg("line", {x1: 0, x2: width, y1: height - bottom, y2: height - bottom, class: "axis"}));
  totals.forEach((count, i) => {
    const h = Math.max(count ? 2 : 0, (count / max) * (height - top - bottom));
    const x = i * slot;
    const rect = svg("rect", {x: x + slot * 0.12, y: height - bottom - h, width: slot * 0.76, height: h, class: "bar bucket", "data-bucket": labels[i], "data-count": count});
    rect.append(svg("title", {}, `${labels[i]}: ${count}`));
    chart.append(rect);
    chart.append(svg("text", {x: x + slot / 2, y: height - bottom - h - 5, class: "count"}, String(count)));
    chart.append(svg("text", {x: x + slot / 2, y: height - bottom + 20, class: "group"}, labels[i]));
  });
  box.append(chart);
}

// -- pending -----------------------------------------------------------------------------------

function fillPending({rows, scanned, more}) {
  const body = $("pending").tBodies[0];
  const now = Date.now();
  body.replaceChildren(
    ...rows.map((inv) => {
      const tr = row(
        [
          inv.id,
          inv.email || "",
          inv.created_at ? formatDuration((now - Date.parse(inv.created_at)) / 1000) : "",
          inv.expires_at ? formatDate(inv.expires_at) : "",
          delivery(inv),
          inv.reminders_sent === undefined ? "" : String(inv.reminders_sent),
        ],
        {"data-invitation": inv.id},
      );
      const link = document.createElement("a");
      link.href = document.body.dataset.runUrl.replace(document.body.dataset.runPlaceholder, encodeURIComponent(inv.id));
      link.textContent = "Temporal UI";
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.className = "run-link";
      const cell = document.createElement("td");
      cell.append(link);
      tr.append(cell);
      return tr;
    }),
  );
  if (!rows.length) body.append(row(["No invitation is pending."], {}, 7));
  $("pending-note").textContent = more
    ? `The oldest of the ${scanned} most recent pending invitations; older ones exist (use invites list).`
    : `${scanned} pending invitation${scanned === 1 ? "" : "s"} in all; the ${Math.min(scanned, PENDING_SHOWN)} oldest here.`;
}

function delivery(inv) {
  if (inv.opened_at) return `opened ${formatDate(inv.opened_at)}`;
  if (inv.delivered_at) return `delivered ${formatDate(inv.delivered_at)}`;
  if (inv.status === undefined) return "unknown (the workflow did not answer)";
  return "sent, no delivery report yet";
}

// -- small helpers -----------------------------------------------------------------------------

function row(cells, attrs, span) {
  const tr = document.createElement("tr");
  for (const [key, value] of Object.entries(attrs)) tr.setAttribute(key, value);
  for (const text of cells) {
    const td = document.createElement("td");
    td.textContent = text;
    if (span) td.colSpan = span;
    tr.append(td);
  }
  return tr;
}

function paragraph(text) {
  const p = document.createElement("p");
  p.className = "muted";
  p.textContent = text;
  return p;
}

function legend(entries) {
  const list = document.createElement("ul");
  list.className = "legend";
  for (const [label, cls] of entries) {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = `swatch ${cls}`;
    item.append(swatch, label);
    list.append(item);
  }
  return list;
}

function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const units = [["d", 86_400], ["h", 3600], ["min", 60]];
  for (const [unit, size] of units) {
    if (seconds >= size) {
      const value = seconds / size;
      return `${Number.isInteger(value) ? value : value.toFixed(1)} ${unit}`;
    }
  }
  return `${Math.round(seconds)} s`;
}

// As the other pages write dates: 2026-12-06 10:00 UTC.
function formatDate(iso) {
  return `${new Date(iso).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

// -- start -------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", () => showSignIn(""));
  $("refresh").addEventListener("click", load);
  $("window").addEventListener("change", load);
  $("by").addEventListener("change", load);
  if (sessionStorage.getItem(CREDENTIAL)) showDashboard();
  else showSignIn("");
});
