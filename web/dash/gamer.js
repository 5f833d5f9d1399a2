// The gamer's page (gamer.html): signs in as a gamer (the account's API
// key, or a name on an open server), subscribes (spending pushed each
// second) and sends real tasks from the "try a task" form on the same
// connection; an image result is shown as an <img> from a data: URL.
import { $, put, showError, usd, dollars, lineChart, signIn } from "/dash/live.js";

const EXAMPLES = {
  rt_shadows: { resolution: [160, 120] },
  rt_reflections: { resolution: [160, 120], bounces: 2, lights: 2 },
  encryption: { data: "hello from the dashboard", iterations: 1000 },
  compression: { data: "the quick brown fox jumps over the lazy dog, again and again", level: 9 },
  ai_pathfinding: { start: [0, 0], goal: [9, 9] },
};

let ws = null, spent = null, latency = null, seq = 0;
const RUN = Array.from(crypto.getRandomValues(new Uint8Array(8)),
                       (b) => b.toString(16).padStart(2, "0")).join("");
const sent = new Map();            // client_ref -> time sent (ms)
window.dashboard = { updates: 0, earnings: null, results: 0, lastResult: null };

function onEarnings(m) {
  window.dashboard.earnings = m;
  window.dashboard.updates++;
  put("spent-today", usd(m.spent_today));
  put("spent-total", usd(m.spent_total));
  put("balance", usd(m.balance));
  put("tasks-today", m.tasks_today);
  put("tasks-total", m.tasks_total);
  put("rate", m.rates ? usd(m.rates.gamer_per_hour) : "—");
  put("as-of", m.as_of);
  spent.push([dollars(m.spent_total_pico)]);
}

function onResult(m) {
  const t0 = sent.get(m.client_ref);
  if (t0 === undefined) return;
  sent.delete(m.client_ref);
  const ms = Math.round(performance.now() - t0);
  window.dashboard.results++;
  window.dashboard.lastResult = m;
  $("send").disabled = false;
  put("task-latency", ms);
  if (m.status !== "completed") {
    put("task-status", "failed: " + (m.code || "") + " " + (m.error || ""));
    put("task-compute", "—");
    put("task-cost", "—");
    return;
  }
  latency.push([ms]);
  put("task-status", m.cached ? "completed (from the cache)" : "completed");
  put("task-compute", m.processing_time_ms);
  put("task-cost", m.cost_usd === undefined ? "—" : "$" + m.cost_usd);
  const result = Object.assign({}, m.result);
  const img = $("task-image");
  if (result.image_b64) {
    img.src = "data:image/png;base64," + result.image_b64;
    img.hidden = false;
    result.image_b64 = "(" + result.image_b64.length + " base64 characters: the image below)";
  } else {
    img.hidden = true;
    img.removeAttribute("src");
  }
  put("task-result", JSON.stringify(result, null, 2).slice(0, 4000));
}

$("task-type").addEventListener("change", () => {
  $("params").value = JSON.stringify(EXAMPLES[$("task-type").value]);
});
$("params").value = JSON.stringify(EXAMPLES[$("task-type").value]);

$("task-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  let data;
  try { data = JSON.parse($("params").value); } catch (e) {
    put("task-status", "the parameters are not JSON: " + e.message);
    return;
  }
  // refs name one task for 24 h: a mark of this page load, then a counter
  const ref = "page-" + RUN + "-" + (++seq);
  sent.set(ref, performance.now());
  $("send").disabled = true;
  put("task-status", "sent");
  ws.send(JSON.stringify({ type: "submit_task", client_ref: ref,
                           task: { type: $("task-type").value, data } }));
});

$("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  showError("error", "");
  const apiKey = $("key").value.trim(), name = $("name").value.trim();
  if (!apiKey && !name) {
    showError("error", "Give your API key (or, on an open server, your gamer name).");
    return;
  }
  $("go").disabled = true;
  try {
    ws = await signIn({
      role: "gamer", id: name || "dashboard", apiKey,
      onMessage: (m) => {
        if (m.type === "earnings") onEarnings(m);
        else if (m.type === "task_result") onResult(m);
        else if (m.type === "error") {
          if (m.client_ref && sent.has(m.client_ref)) onResult(Object.assign({ status: "error" }, m));
          else showError("error", m.code + ": " + m.error);
        }
      },
      onClose: (e) => showError("error", "disconnected" + (e.reason ? ": " + e.reason : "")
                                + "; reload the page to sign in again"),
    });
    put("who", name ? "gamer " + name : "signed in with your API key");
    for (const id of ["money", "try", "history", "latency-box"]) $(id).hidden = false;
    $("signin").hidden = true;
    spent = lineChart("spent-chart", ["spent in all"]);
    latency = lineChart("latency-chart", ["latency (ms)"]);
  } catch (e) {
    showError("error", "Sign-in refused: " + e.message);
  } finally {
    $("go").disabled = false;
  }
});
