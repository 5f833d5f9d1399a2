// live.js: what the dashboard pages share (web/*.html; docs/dashboard.md).
// No build step, nothing from outside this server: Chart.js comes from
// /vendor/chart.js/ (Debian's libjs-chart.js, served by the gateway).
// Every figure and name from the server is written with textContent, never
// as HTML: a peer named <img src=x onerror=...> shows as that text.

export const $ = (id) => document.getElementById(id);

// Sets an element's text (a number, a name: anything from the server)
export function put(id, value) {
  const el = typeof id === "string" ? $(id) : id;
  if (el) el.textContent = value === undefined || value === null ? "—" : String(value);
}

// Replaces a table body's rows; each row an array of cell texts
export function rows(tbody, list) {
  const body = typeof tbody === "string" ? $(tbody) : tbody;
  body.replaceChildren();
  for (const cells of list) {
    const tr = document.createElement("tr");
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = String(c);
      if (typeof c === "number") td.className = "n";
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
}

// Shows an error line (text only), or clears it with ""
export function showError(id, text) {
  const el = $(id);
  el.textContent = text;
  el.hidden = !text;
}

// A money amount as the server wrote it (exact decimal dollars) with a $
export const usd = (text) => (text === undefined || text === null ? "—" : "$" + text);

// Picodollars (an integer) as dollars for a chart's axis (a float is fine there)
export const dollars = (pico) => Number(pico) / 1e12;

const COLORS = ["#2f6fde", "#d9480f", "#2b8a3e", "#862e9c"];

// A line chart of up to `keep` points per series, labelled by time
export function lineChart(canvas, series, keep = 120) {
  const chart = new window.Chart($(canvas), {
    type: "line",
    data: { labels: [], datasets: series.map((label, i) => ({
      label, data: [], tension: 0.2, pointRadius: 0, borderWidth: 2,
      borderColor: COLORS[i % COLORS.length], backgroundColor: COLORS[i % COLORS.length] })) },
    options: { animation: false, responsive: true, maintainAspectRatio: false,
               scales: { y: { beginAtZero: true } } },
  });
  return {
    chart,
    push(values) {
      chart.data.labels.push(new Date().toLocaleTimeString());
      values.forEach((v, i) => chart.data.datasets[i].data.push(v));
      if (chart.data.labels.length > keep) {
        chart.data.labels.shift();
        chart.data.datasets.forEach((d) => d.data.shift());
      }
      chart.update("none");
    },
    points() { return chart.data.labels.length; },
  };
}

// The gateway's WebSocket, this page's own origin
export function wsUrl() {
  return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/";
}

// One signed-in WebSocket session speaking the JSON dialect: resolves once
// registered (then subscribes: the account's figures each second), rejects
// with the server's error. onMessage gets every later message.
export function signIn({ role, id, apiKey, onMessage, onClose }) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl());
    let registered = false;
    ws.onopen = () => {
      const msg = role === "peer"
        // a page is a peer that runs nothing: no task type is offered,
        // so the scheduler never gives it a task
        ? { type: "register_peer", peer_id: id, capabilities: { task_types: [] } }
        : { type: "register_gamer", gamer_id: id };
      if (apiKey) msg.api_key = apiKey;
      ws.send(JSON.stringify(msg));
    };
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (!registered) {
        if (m.type === "registered") {
          registered = true;
          ws.send(JSON.stringify({ type: "subscribe" }));
          resolve(ws);
        } else if (m.type === "error") {
          reject(new Error((m.code || "error") + ": " + (m.error || "")));
          ws.close();
        }
        return;
      }
      onMessage(m);
    };
    ws.onclose = (ev) => {
      if (!registered) reject(new Error("the server closed the connection" +
                                        (ev.reason ? ": " + ev.reason : "")));
      else if (onClose) onClose(ev);
    };
    ws.onerror = () => {};
  });
}

// A short random suffix, so that two tabs are two sessions
export const suffix = () => Math.random().toString(36).slice(2, 8);
