// The contributor's page (contributor.html): signs in as a peer that runs
// nothing (the account's API key, or a name on an open server), subscribes,
// and shows the account's figures pushed each second.
import { $, put, rows, showError, usd, dollars, lineChart, signIn, suffix } from "/dash/live.js";

let chart = null;
window.dashboard = { updates: 0, earnings: null, agents: [], reputation: null };

function onEarnings(m) {
  window.dashboard.earnings = m;
  window.dashboard.updates++;
  put("earned-today", usd(m.earned_today));
  put("earned-total", usd(m.earned_total));
  put("balance", usd(m.balance));
  put("tasks-today", m.tasks_today);
  put("tasks-total", m.tasks_total);
  put("rate", m.rates ? usd(m.rates.peer_per_hour) : "—");
  put("as-of", m.as_of);
  put("threshold", usd(m.payout_threshold));
  put("pending", usd(m.pending_payout));
  const due = BigInt(m.balance_pico) >= BigInt(m.payout_threshold_pico);
  put("payout-status", BigInt(m.pending_payout_pico) > 0n ? "a payout is on its way"
      : due ? "the balance has reached the threshold: a payout can be requested"
      : "below the threshold: " + usd(fmtPico(BigInt(m.payout_threshold_pico) - BigInt(m.balance_pico)))
        + " to go");
  chart.push([dollars(m.earned_total_pico)]);
}

// Picodollars (BigInt) as exact dollars text, 12 decimals
function fmtPico(p) {
  const neg = p < 0n, a = neg ? -p : p;
  return (neg ? "-" : "") + (a / 1000000000000n) + "." + String(a % 1000000000000n).padStart(12, "0");
}

function onReputation(m) {
  window.dashboard.reputation = m;
  put("rep-valid", m.known ? m.valid : "—");
  put("rep-invalid", m.known ? m.invalid : "—");
  put("rep-state", !m.known ? "not judged yet" : m.banned ? "banned: gets no work for now" : "in good standing");
}

function onAgents(m) {
  window.dashboard.agents = m.agents;
  rows("agents", m.agents.map((a) => [a.id, a.state, a.tasks, a.connected_s]));
  $("no-agents").hidden = m.agents.length > 0;
}

$("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  showError("error", "");
  const apiKey = $("key").value.trim(), name = $("name").value.trim();
  if (!apiKey && !name) {
    showError("error", "Give your API key (or, on an open server, your peer name).");
    return;
  }
  $("go").disabled = true;
  try {
    await signIn({
      // with a key the name is only a label; without one (an open server)
      // the name is the account's
      role: "peer", id: apiKey ? "dashboard-" + suffix() : name, apiKey,
      onMessage: (m) => {
        if (m.type === "earnings") onEarnings(m);
        else if (m.type === "agents") onAgents(m);
        else if (m.type === "reputation") onReputation(m);
        else if (m.type === "error") showError("error", m.code + ": " + m.error);
      },
      onClose: (e) => showError("error", "disconnected" + (e.reason ? ": " + e.reason : "")
                                + "; reload the page to sign in again"),
    });
    put("who", name ? "peer " + name : "signed in with your API key");
    for (const id of ["money", "payout", "reputation-box", "history", "agents-box"]) $(id).hidden = false;
    $("signin").hidden = true;
    chart = lineChart("earned-chart", ["earned in all"]);
  } catch (e) {
    showError("error", "Sign-in refused: " + e.message);
  } finally {
    $("go").disabled = false;
  }
});
