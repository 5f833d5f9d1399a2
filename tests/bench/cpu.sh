# CPU accounting for the benchmarks: where the CPU of a run goes, per
# process of the stack (user + system time from /proc, each process counted
# with its descendants: the peers' worker processes, PostgreSQL's backends)
# and for the load generator. Sourced after tests/e2e/lib.sh's start_stack.
#   cpu_start PEER_PID...      snapshot before the run
#   cpu_stop TASKS             prints "name microseconds-per-task" lines,
#                              the gamer's and the total last

# CPU seconds of each group of pids given as "name=pid,pid[@text]" arguments
# (with @text, only the processes whose command line holds text count, e.g.
# "@local" for PostgreSQL's backends of local connections). Needs no T_DIR.
s_cpu_groups () {
  python3 - "$@" <<'PY'
import os, sys
hz = os.sysconf("SC_CLK_TCK")
procs = {}
for d in os.listdir("/proc"):
    if d.isdigit():
        try:
            f = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
            procs[int(d)] = (int(f[1]), int(f[11]) + int(f[12]))
        except (OSError, IndexError):
            pass
for arg in sys.argv[1:]:
    name, pids = arg.split("=", 1)
    pids, _, only = pids.partition("@")
    roots = {int(p) for p in pids.split(",") if p}
    tot = 0
    for pid, (ppid, t) in procs.items():
        if only:
            try:
                if only not in open(f"/proc/{pid}/cmdline").read():
                    continue
            except OSError:
                continue
        p, seen = pid, 0
        while p and seen < 64:
            if p in roots:
                tot += t
                break
            p = procs.get(p, (0, 0))[0]
            seen += 1
    print(name, tot / hz)
PY
}

# CPU seconds of the children this shell has waited for (the gamer runs
# are): the builtin times, run in this shell, since a subshell sees none
s_cpu_children () {
  times > "$T_DIR/cpu-times"
  python3 -c 'import re, sys; print("gamer", sum(int(m) * 60 + float(s) for m, s in re.findall(r"(\d+)m([\d.]+)s", open(sys.argv[1]).read().splitlines()[-1])))' "$T_DIR/cpu-times"
}

cpu_start () {
  local pg peers
  pg=$(head -1 "$P2C2R_TEST_PGDIR/data/postmaster.pid" 2>/dev/null)
  peers=$(IFS=,; echo "$*")
  CPU_ARGS=("broker=$PID_broker" "gateway=$PID_gateway" "scheduler=$PID_scheduler"
            "ledger=$PID_ledger" "peers=$peers" "postgres=$pg")
  #  the children's snapshot last, so its python is not counted as the gamer's
  s_cpu_groups "${CPU_ARGS[@]}" > "$T_DIR/cpu-before"
  s_cpu_children >> "$T_DIR/cpu-before"
}

cpu_stop () {
  s_cpu_children > "$T_DIR/cpu-after"
  s_cpu_groups "${CPU_ARGS[@]}" >> "$T_DIR/cpu-after"
  python3 - "$T_DIR/cpu-before" "$T_DIR/cpu-after" "$1" <<'PY'
import sys
read = lambda p: dict((l.split()[0], float(l.split()[1])) for l in open(p) if l.strip())
b, a, n = read(sys.argv[1]), read(sys.argv[2]), int(sys.argv[3])
if n <= 0:
    sys.exit(0)             # no run finished: nothing to divide by
total = 0
for k in ["broker", "gateway", "scheduler", "ledger", "peers", "postgres", "gamer"]:
    us = (a[k] - b[k]) * 1e6 / n
    total += us
    print(k, round(us, 1))
print("total", round(total, 1))
PY
}
