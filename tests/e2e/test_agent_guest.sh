#!/usr/bin/env bash
# The peer as a guest on its owner's PC, through the real stack: the local
# control socket (status, pause, resume, snooze, prefs), an exclusive app
# pausing and resuming the peer (a staged /proc: --proc-root), preferences
# reloaded on SIGHUP, counters that survive a restart, and the CPU usage
# limit held by the duty cycle (the worker's CPU time read from /proc).
. "$(dirname "$0")/lib.sh"
start_stack || { t_report; exit 1; }
PROC=$T_DIR/proc
SYS=$T_DIR/sys
mkdir -p "$PROC" "$SYS" "$T_DIR/state"
CTL=$T_DIR/run/control
CONF=$T_DIR/agent.conf
printf 'cpu-usage-limit = 100\nexclusive-apps = mygame, other\n' >"$CONF"
start_guest () {
  peer "${1:-guest}" --peer-id guest --slots 1 --no-bench --config "$CONF" --control "$CTL" \
      --proc-root "$PROC" --sys-root "$SYS" \
      --state-dir "$T_DIR/state"
}
start_guest
wait_peers guest || { t_report; exit 1; }
status () { "$BIN/p2c2r-agent" status --control "$CTL" "$@"; }

check "status answers on the control socket" bash -c "'$BIN/p2c2r-agent' status --control '$CTL' >/dev/null"
status >"$T_DIR/status0.txt"
check "status: running and connected" \
    grep -Eq '^state: +running' "$T_DIR/status0.txt" -a -n "$(grep 'connected' "$T_DIR/status0.txt" | grep -v 'not connected')"
check "the control socket is the owner's alone" test "$(stat -c %a "$CTL")" = 600
"$BIN/p2c2r-agent" status --control "$T_DIR/none" >"$T_DIR/none.out" 2>&1
check "status without a peer fails, saying so" test $? = 2 -a -n "$(grep 'no peer agent answers' "$T_DIR/none.out")"

"$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id g1 --task encryption \
    --params '{"data":"guest-{i}","iterations":100}' --count 5 --quiet --timeout-s 60 >"$T_DIR/g1.out" 2>&1
check "five tasks done" grep -q 'summary: tasks=5 ok=5' "$T_DIR/g1.out"
tasks_today () { status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tasks_today"])'; }
check "status counts the five tasks done today" test "$(tasks_today)" = 5

# An exclusive app starts: paused within a couple of seconds, with the reason
mkdir -p "$PROC/4242"
echo mygame >"$PROC/4242/comm"
state_is () { status --json | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if d['state']=='$1' else 1)"; }
check "an exclusive app pauses the peer" wait_for 5 state_is paused
check "status says why" bash -c "'$BIN/p2c2r-agent' status --control '$CTL' | grep -q \"exclusive app 'mygame' is running\""
check "the peer logged the pause" grep -q "peer: paused reason=\"exclusive app 'mygame' is running\"" "$T_DIR/guest.log"
rm -rf "$PROC/4242"
check "the app ends: running again" wait_for 5 state_is running

# On battery (a staged /sys: --sys-root): paused; on mains again: running
mkdir -p "$SYS/class/power_supply/BAT0" "$SYS/class/power_supply/AC"
echo Battery >"$SYS/class/power_supply/BAT0/type"
echo Discharging >"$SYS/class/power_supply/BAT0/status"
echo Mains >"$SYS/class/power_supply/AC/type"
echo 0 >"$SYS/class/power_supply/AC/online"
check "on battery the peer pauses" wait_for 5 state_is paused
check "status says on battery" bash -c "'$BIN/p2c2r-agent' status --control '$CTL' | grep -q 'paused: on battery'"
echo 1 >"$SYS/class/power_supply/AC/online"
echo Charging >"$SYS/class/power_supply/BAT0/status"
check "back on mains: running again" wait_for 5 state_is running

# Keyboard and mouse: with run-if-user-active false, fresh input (the staged
# input interrupts moving) pauses the peer until idle-time-to-run passes
printf '  1:  %s  0  IO-APIC  1-edge  i8042\n' 100 >"$PROC/interrupts"
printf 'exclusive-apps = mygame\nrun-if-user-active = false\nidle-time-to-run = 1\n' >"$CONF"
"$BIN/p2c2r-agent" prefs reload --control "$CTL" >/dev/null
printf '  1:  %s  0  IO-APIC  1-edge  i8042\n' 101 >"$PROC/interrupts"
check "input while the owner is at the PC pauses it" wait_for 5 state_is paused
check "status says the computer is in use" \
    bash -c "'$BIN/p2c2r-agent' status --control '$CTL' | grep -q 'computer in use'"

# The clock: hours that exclude now pause it, hours that include now resume it
day=$(date +%a | tr 'A-Z' 'a-z'); hour=$(date +%-H)
other=$(( (hour + 2) % 24 ))
printf 'exclusive-apps = mygame\nrun-hours = %s %d-%d\n' "$day" "$other" "$(( other + 1 ))" >"$CONF"
"$BIN/p2c2r-agent" prefs reload --control "$CTL" >/dev/null
check "outside its run-hours the peer pauses" wait_for 5 state_is paused
check "status says outside run-hours" \
    bash -c "'$BIN/p2c2r-agent' status --control '$CTL' | grep -q 'outside run-hours'"
printf 'exclusive-apps = mygame\nrun-hours = daily 0-24\n' >"$CONF"
"$BIN/p2c2r-agent" prefs reload --control "$CTL" >/dev/null
check "inside its run-hours: running again" wait_for 5 state_is running
printf 'cpu-usage-limit = 100\nexclusive-apps = mygame, other\n' >"$CONF"
"$BIN/p2c2r-agent" prefs reload --control "$CTL" >/dev/null

# The owner's commands
check "pause" bash -c "'$BIN/p2c2r-agent' pause --control '$CTL' | grep -q 'paused by the owner'"
check "paused until resumed" state_is paused
# While paused the server sends it nothing: another peer does the work
peer other --slots 1 --no-bench
wait_peers other
check "the scheduler heard of the pause" wait_for 5 grep -q 'peer paused key=.* peer_id=guest' "$T_DIR/scheduler.log"
"$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id g3 --task encryption \
    --params '{"data":"paused-{i}","iterations":100}' --count 20 --concurrency 4 --quiet \
    --timeout-s 60 >"$T_DIR/g3.out" 2>&1
check "tasks sent while the guest is paused are all done" grep -q 'summary: tasks=20 ok=20' "$T_DIR/g3.out"
check "... by the other peer, none by the paused one" \
    test "$(grep -c 'task done id=.*paused-\|task done' "$T_DIR/other.log")" -ge 20 -a -z "$(grep 'task done' "$T_DIR/guest.log" | tail -n +6)"
kill "$PID_other"
check "resume" bash -c "'$BIN/p2c2r-agent' resume --control '$CTL' | grep -Eq '^state: +running'"
check "the scheduler heard of the resume" wait_for 5 grep -q 'peer resumed key=.* peer_id=guest' "$T_DIR/scheduler.log"
check "snooze 10m" bash -c "'$BIN/p2c2r-agent' snooze 10m --control '$CTL' | grep -q 'snoozed by the owner'"
check "a bad duration is refused before sending" bash -c "! '$BIN/p2c2r-agent' snooze 9y --control '$CTL' 2>/dev/null"
"$BIN/p2c2r-agent" resume --control "$CTL" >/dev/null

# SIGHUP reads the preferences again; a bad file keeps the old ones
printf 'cpu-usage-limit = 50\nexclusive-apps = mygame\n' >"$CONF"
kill -HUP "$PID_guest"
limit () { "$BIN/p2c2r-agent" prefs --control "$CTL" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["prefs"]["cpu_usage_limit"])'; }
limit_is () { test "$(limit)" = "$1"; }
check "SIGHUP reloads the preferences" wait_for 5 limit_is 50
printf 'cpu-usage-limit = 500\n' >"$CONF"
check "a bad preferences file is refused by prefs reload" \
    bash -c "'$BIN/p2c2r-agent' prefs reload --control '$CTL' --json | grep -q '\"cpu_usage_limit\": *50'"
check "and the peer says why in its log" wait_for 5 grep -q 'preferences not reloaded' "$T_DIR/guest.log"
printf 'cpu-usage-limit = 50\nexclusive-apps = mygame\n' >"$CONF"

# The CPU usage limit: the one worker runs long tasks throughout, for 20 s
# under a 50% limit. Read from /proc: how much of the time the kernel keeps
# the worker stopped (sampled 20 times a second), which is what the limit
# sets whatever else the machine runs, and the worker's CPU time relative to
# 10 s without a limit (printed: on a busy machine an idle-priority worker
# gets what others leave, so that ratio is noisy there).
printf 'cpu-usage-limit = 100\nexclusive-apps = mygame\n' >"$CONF"
kill -HUP "$PID_guest"
wait_for 5 limit_is 100
"$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id g2 --task encryption \
    --params '{"data":"cpu-{i}","iterations":2000000}' --count 1500 --concurrency 2 --quiet \
    --deadline-ms 60000 --timeout-s 180 >"$T_DIR/g2.out" 2>&1 &
GAMER=$!
T_PIDS+=("$GAMER")
worker=$(pgrep -P "$PID_guest" | head -1)
ticks () { awk '{print $14 + $15}' "/proc/$worker/stat" 2>/dev/null || echo 0; }
busy () { test "$(ticks)" -gt 0 2>/dev/null; }
wait_for 20 busy
# share SECONDS: the worker's CPU over a window, percent of one core
share () {
  local t0 t1 s0 s1
  t0=$(ticks); s0=$(date +%s.%N)
  sleep "$1"    # the measurement window itself, not a wait for an event
  t1=$(ticks); s1=$(date +%s.%N)
  python3 -c "import os; print(round(100*($t1-$t0)/os.sysconf('SC_CLK_TCK')/($s1-$s0)))"
}
full=$(share 10)
printf 'cpu-usage-limit = 50\nexclusive-apps = mygame\n' >"$CONF"
kill -HUP "$PID_guest"
wait_for 5 limit_is 50
t0=$(ticks)
stopped=$(python3 - "$worker" <<'PY'
import sys, time
pid, samples, stopped = sys.argv[1], 0, 0
end = time.monotonic() + 20
while time.monotonic() < end:
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        break
    samples += 1
    stopped += stat[stat.rindex(")") + 2] == "T"
    time.sleep(0.05)
print(round(100 * stopped / max(samples, 1)))
PY
)
t1=$(ticks)
half=$(python3 -c "import os; print(round(100*($t1-$t0)/os.sysconf('SC_CLK_TCK')/20))")
echo "worker under a 50% limit: stopped $stopped% of the time; CPU $half% against $full% unlimited"
check "under a 50% limit the worker runs 50% of the time, within 10 points (stopped $stopped%)" \
    test "$stopped" -ge 40 -a "$stopped" -le 60
check "and its CPU time fell under the limit ($half% against $full%)" test "$half" -lt "$full"
kill "$GAMER" 2>/dev/null

# Counters survive a restart
kill "$PID_guest"
gone () { ! kill -0 "$PID_guest" 2>/dev/null; }
wait_for 10 gone
start_guest guest2
wait_peers guest2
total () { status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tasks_total"])'; }
total_ok () { test "$(total)" -ge 5 2>/dev/null; }
check "the counters survive a restart" wait_for 10 total_ok
t_report
