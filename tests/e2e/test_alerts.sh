#!/usr/bin/env bash
# Issue 21, part 1: the server's own alerts, on the real stack. The
# scheduler's hook is deploy/alerts/mail.sh with a sendmail that appends
# each mail to a mailbox file, so a mail is one run of the hook.
# Stop the peers: peers_low fires, one mail; `p2c2r-ctl alerts` shows it
# with since, value and threshold; /api/stats and the scheduler's /metrics
# show it. A slow peer (tests/e2e/sched_peer.py holding each result) raises
# latency_high; a fast peer instead resolves both, one mail each. The
# ledger stopped raises server_down. The
# Prometheus rules of deploy/prometheus/alerts.yml pass promtool.
. "$(dirname "$0")/lib.sh"

cat >"$T_DIR/sendmail" <<'SH'
#!/bin/sh
cat >>"$P2C2R_TEST_MAILBOX"
SH
chmod +x "$T_DIR/sendmail"
export SENDMAIL=$T_DIR/sendmail P2C2R_TEST_MAILBOX=$T_DIR/mailbox P2C2R_ALERT_MAIL_TO=ops@example.org
touch "$T_DIR/mailbox"
SCHED_ARGS="--validation none --alert-for-s 1 --alert-window-s 4 --alert-peers-min 1
  --alert-latency-p99-ms 700 --alert-exec $ROOT/deploy/alerts/mail.sh"
start_stack || { t_report; exit 1; }

# alert_is NAME STATE[|STATE]: the scheduler's alert NAME is in one of the
# states (p2c2r-ctl --json alerts; it exits 1 while one fires, and pipefail is on)
alert_is () {
  { "$BIN/p2c2r-ctl" --broker "$BROKER" --json --timeout-ms 3000 alerts 2>/dev/null || true; } \
    | python3 -c 'import json,sys; a={x["name"]: x for x in json.load(sys.stdin)}; sys.exit(a[sys.argv[1]]["state"] not in sys.argv[2].split("|"))' "$1" "$2"
}
# mails STATE NAME: mails sent so far for that change
mails () { grep -c "^Subject: \[p2c2r\] $1 $2 on " "$T_DIR/mailbox"; }

peer p1 --slots 2
wait_peers p1
check "with a peer online, peers_low does not fire" \
  wait_for 20 alert_is peers_low "resolved|ok"
# startup (no peer yet) may have fired and resolved it, and the hook runs
# apart from the scheduler's loop: count from here on, once its mails are in
settled () { test "$(mails FIRING peers_low)" = "$(mails RESOLVED peers_low)"; }
check "the hook's mails of the start are in (as many resolved as fired)" wait_for 10 settled
F0=$(mails FIRING peers_low); R0=$(mails RESOLVED peers_low)

kill "$PID_p1"
check "stopping the peers: peers_low fires" wait_for 20 alert_is peers_low firing
check "the hook mailed the firing of peers_low" \
  wait_for 10 test "$(mails FIRING peers_low)" -ge $((F0 + 1))

"$BIN/p2c2r-ctl" --broker "$BROKER" alerts >"$T_DIR/ctl-alerts.out" 2>&1
check "p2c2r-ctl alerts exits 1 while an alert fires" test $? = 1
check "p2c2r-ctl alerts shows peers_low firing, since when, value 0, threshold 1" \
  grep -Eq '^peers_low +firing +20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z +0 +1 ' "$T_DIR/ctl-alerts.out"
check "the mail says what fired, its value and threshold" \
  grep -q "^value:     0 (threshold 1)" "$T_DIR/mailbox"
check "the mail goes to P2C2R_ALERT_MAIL_TO" grep -q "^To: ops@example.org$" "$T_DIR/mailbox"

admin_get "$GW_ADMIN" /api/stats >"$T_DIR/stats.json"
check "/api/stats lists peers_low firing in its alerts" python3 - "$T_DIR/stats.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
a = {x["name"]: x for x in s["alerts"]}
sys.exit(not (a["peers_low"]["state"] == "firing" and a["peers_low"]["since"] > 0
              and a["peers_low"]["threshold"] == 1))
PY
curl -fsS "http://127.0.0.1:$SCHED_METRICS_PORT/metrics" >"$T_DIR/sched.metrics"
check "the scheduler's /metrics says peers_low fires" \
  grep -q '^p2c2r_scheduler_alert_firing{alert="peers_low"} 1$' "$T_DIR/sched.metrics"
check "the scheduler's /metrics counts the tasks" \
  grep -Eq '^p2c2r_scheduler_submitted_total [0-9]+$' "$T_DIR/sched.metrics"
curl -fsS "http://127.0.0.1:$LED_METRICS_PORT/metrics" >"$T_DIR/ledger.metrics"
check "the ledger's /metrics counts settlements" \
  grep -Eq '^p2c2r_ledger_settled_total [0-9]+$' "$T_DIR/ledger.metrics"

# A slow peer: correct results, each held 1.2 s (p99 over 700 ms)
spawn_out slow /usr/bin/python3 "$(dirname "$0")/sched_peer.py" --server "$SERVER" \
    --peer-id slow --mode corrupt --share 0 --slots 4 --hold-s 1.2
check "a peer back: peers_low resolves" wait_for 30 alert_is peers_low resolved
"$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id g1 --task encryption \
    --params '{"data":"s{i}","iterations":100}' --count 6 --concurrency 3 --quiet --timeout-s 60
check "the slow peer's tasks were answered" test $? = 0
check "slow peers: latency_high fires" wait_for 20 alert_is latency_high firing
check "the hook mailed the firing of latency_high" \
  wait_for 10 test "$(mails FIRING latency_high)" = 1

# Recovery: a fast peer takes over (started first, so peers never drop)
peer p2 --slots 2
wait_peers p2
kill "$PID_slow"
"$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id g1 --task encryption \
    --params '{"data":"f{i}","iterations":100}' --count 6 --concurrency 3 --quiet --timeout-s 60
check "the fast peer's tasks were answered" test $? = 0
check "recovery: latency_high resolves once the slow tasks leave the window" \
  wait_for 30 alert_is latency_high resolved
check "the hook mailed the resolution of latency_high" \
  wait_for 10 test "$(mails RESOLVED latency_high)" = 1
check "the hook ran once per change: peers_low fired once and resolved once" \
  test "$(mails FIRING peers_low)" = $((F0 + 1)) -a "$(mails RESOLVED peers_low)" = $((R0 + 1))
check "the hook ran once per change: latency_high fired once and resolved once" \
  test "$(mails FIRING latency_high)" = 1 -a "$(mails RESOLVED latency_high)" = 1
"$BIN/p2c2r-ctl" --broker "$BROKER" alerts >"$T_DIR/ctl-alerts2.out" 2>&1
check "p2c2r-ctl alerts exits 0 once nothing fires" test $? = 0

# A server process gone: the ledger stops, the broker says so, server_down fires
S0=$(mails FIRING server_down)
kill "$PID_ledger"
check "the ledger stopped: server_down fires" wait_for 20 alert_is server_down firing
check "the hook mailed server_down, naming the ledger" \
  wait_for 10 bash -c "test \$(grep -c '^Subject: \[p2c2r\] FIRING server_down ' '$T_DIR/mailbox') = $((S0 + 1)) && grep -q '^detail:    ledger$' '$T_DIR/mailbox'"
check "the books pass the audit (p2c2r-ctl audit)" env P2C2R_DB="$T_DB" "$BIN/p2c2r-ctl" audit

# The same rules for operators who run Prometheus
if command -v promtool >/dev/null; then
  check "deploy/prometheus/alerts.yml passes promtool check rules" \
    promtool check rules "$ROOT/deploy/prometheus/alerts.yml"
  check "deploy/monitoring/prometheus.yml (with its rules) passes promtool check config" \
    promtool check config --syntax-only "$ROOT/deploy/monitoring/prometheus.yml"
  # every query of the Grafana dashboard parses (as recording rules)
  python3 - "$ROOT/deploy/grafana/dashboards/p2c2r.json" >"$T_DIR/dashboard-rules.yml" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in d["panels"] for t in p["targets"]]
print("groups:\n  - name: dashboard\n    rules:")
for i, e in enumerate(exprs):
    print(f"      - record: p2c2r_dashboard_q{i}\n        expr: {json.dumps(e)}")
PY
  check "the Grafana dashboard's queries parse (promtool check rules)" \
    promtool check rules "$T_DIR/dashboard-rules.yml"
else
  echo "SKIP promtool check rules: promtool is missing (Debian: apt-get install prometheus)"
fi
t_report
