// The operator's page (operator.html, on the gateway's admin listener
// only): reads /api/stats with the operator's token each second and draws
// the figures of the gateway, the scheduler and the ledger.
import { $, put, rows, showError, lineChart } from "/dash/live.js";

let token = "", tps, lat, queue, timer = null, busy = false;
window.dashboard = { updates: 0, stats: null };

const num = (v) => (typeof v === "number" ? v : "—");

// Money figures, when the ledger answers them (ledger/led_money.c): fields
// <what>_today and <what>_total, exact decimal USD text ("12.345678000000")
const MONEY = [["spent", "gamers spent"], ["earned", "peers earned"], ["fee", "platform fee"],
               ["treasury", "treasury net"], ["subsidy", "subsidy granted"]];
function money(ledger) {
  const out = [];
  for (const [what, label] of MONEY) {
    const today = ledger[what + "_today"], total = ledger[what + "_total"];
    if (today !== undefined || total !== undefined)
      out.push([label, today === undefined ? "—" : "$" + today, total === undefined ? "—" : "$" + total]);
  }
  return out;
}

function counts(obj) {
  return Object.keys(obj).sort().map((k) => [k, obj[k]]);
}

function draw(s) {
  const gw = s.gateway || {}, sch = s.scheduler, led = s.ledger;
  put("node", "gateway " + (gw.node || ""));
  put("updated", "updated " + new Date().toLocaleTimeString());
  const missing = s.missing || [];
  rows("health", [
    ["gateway", gw.draining ? "draining" : "up", "pending tasks " + num(gw.pending_tasks)],
    ["scheduler", sch ? "up" : "no answer", sch ? "tasks submitted " + num(sch.submitted) : ""],
    ["ledger", led ? "up" : "no answer",
     led ? "uptime " + num(led.uptime_s) + " s, settled " + num(led.settled) : ""],
  ]);
  // The alerts that fire or are about to (the scheduler lists every rule,
  // most of them "ok"), with since when, the value and the threshold
  const alerts = (Array.isArray(s.alerts) ? s.alerts : [])
    .filter((a) => a && (a.state === "firing" || a.state === "pending"));
  $("alerts-table").hidden = alerts.length === 0;
  rows("alerts", alerts.map((a) => [
    a.name || "alert", a.state,
    typeof a.since === "number" && a.since > 0 ? new Date(a.since * 1000).toLocaleTimeString() : "—",
    a.value === undefined || a.value === null ? "—" : String(a.value),
    a.threshold === undefined || a.threshold === null ? "—" : String(a.threshold),
    a.detail || a.summary || ""]));
  const c = gw.connections || {};
  put("conns", num(c.peer) + " / " + num(c.gamer));
  if (sch) {
    put("tps", num(sch.tasks_per_s));
    put("p50", num(sch.latency_p50_ms));
    put("p99", num(sch.latency_p99_ms));
    put("peers", num(sch.peers_online));
    put("slots", num(sch.slots_busy) + " / " + num(sch.slots));
    put("queue", num(sch.queue_depth));
    put("inflight", num(sch.running) + " / " + num(sch.validating) + " / " + num(sch.settling));
    put("v-checks", num(sch.validation_checks));
    put("v-agreed", num(sch.validation_agreed));
    put("v-tiebreaks", num(sch.validation_tiebreaks));
    put("v-invalid", num(sch.validation_invalid));
    put("v-unresolved", num(sch.validation_unresolved));
    put("v-reversals", num(sch.validation_reversals));
    put("v-bans", num(sch.bans) + " (" + num(sch.peers_banned) + ")");
    const byType = sch.peers_by_type, byRegion = sch.peers_by_region;
    $("by-type-table").hidden = !byType;
    if (byType) rows("by-type", counts(byType));
    $("by-region-table").hidden = !byRegion;
    if (byRegion) rows("by-region", counts(byRegion));
    tps.push([sch.tasks_per_s || 0]);
    lat.push([sch.latency_p50_ms || 0, sch.latency_p99_ms || 0]);
    queue.push([sch.queue_depth || 0]);
  }
  const m = led ? money(led) : [];
  rows("money", m);
  $("money-note").hidden = m.length > 0;
}

async function poll() {
  if (busy) return;
  busy = true;
  try {
    const r = await fetch("/api/stats", { headers: { Authorization: "Bearer " + token },
                                          cache: "no-store" });
    if (r.status === 401) {
      stop("The operator token was refused.");
      return;
    }
    if (!r.ok) throw new Error("HTTP " + r.status);
    const s = await r.json();
    window.dashboard.stats = s;
    window.dashboard.updates++;
    showError("error", "");
    draw(s);
  } catch (e) {
    showError("error", "Cannot read /api/stats: " + e.message);
  } finally {
    busy = false;
  }
}

function stop(why) {
  clearInterval(timer);
  timer = null;
  token = "";
  sessionStorage.removeItem("p2c2r-operator-token");
  for (const id of ["health-box", "tasks-box", "latency-box", "peers-box", "validation-box",
                    "money-box"]) $(id).hidden = true;
  $("signin").hidden = false;
  showError("error", why);
}

async function start(t) {
  token = t;
  const r = await fetch("/api/stats", { headers: { Authorization: "Bearer " + token },
                                        cache: "no-store" });
  if (r.status === 401) {
    stop("The operator token was refused.");
    return;
  }
  sessionStorage.setItem("p2c2r-operator-token", token);
  $("signin").hidden = true;
  for (const id of ["health-box", "tasks-box", "latency-box", "peers-box", "validation-box",
                    "money-box"]) $(id).hidden = false;
  if (!tps) {
    tps = lineChart("tps-chart", ["tasks/s"]);
    lat = lineChart("latency-chart", ["p50", "p99"]);
    queue = lineChart("queue-chart", ["queue depth"]);
  }
  await poll();
  timer = setInterval(poll, 1000);
}

$("signin-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const t = $("token").value.trim();
  if (t) start(t).catch((e) => showError("error", "Cannot read /api/stats: " + e.message));
});
const saved = sessionStorage.getItem("p2c2r-operator-token");
if (saved) start(saved).catch((e) => showError("error", "Cannot read /api/stats: " + e.message));
