/*  The agent's settings tables (see agt_config.h). */
#include "agt_config.h"
#include "p2c_test.h"

#include <stdlib.h>
#include <string.h>

//  The connection's entries, the same in every table that has them (T: a
//  struct with an agt_conn_config_t named conn)
#define AGT_CONN_ENTRIES(T) \
    { "server", P2C_CFG_STR, P2C_CFG_FIELD (T, conn.server), "ws://127.0.0.1:8765", \
      .help = "gateway address, ws://HOST[:PORT] or wss://HOST[:PORT] (TLS) [port 8765]" }, \
    { "ca", P2C_CFG_STR, P2C_CFG_FIELD (T, conn.ca), NULL, \
      .help = "wss://: CA certificate file (PEM) that signed the server's [the system's CA" \
      " store]" }, \
    { "insecure", P2C_CFG_BOOL, P2C_CFG_FIELD (T, conn.insecure), "false", \
      .help = "wss://: accept a self-signed certificate and any host name (development" \
      " only)" }, \
    { "allow-insecure-ws", P2C_CFG_BOOL, P2C_CFG_FIELD (T, conn.allow_insecure_ws), "false", \
      .help = "send the API key over plain ws:// to a non-loopback address (refused otherwise:" \
      " anyone on the path could read it; use wss://)" }, \
    { "cloud-ip", P2C_CFG_STR, P2C_CFG_FIELD (T, conn.cloud_ip), NULL, \
      .help = "gateway IP (the original demo's flag; overrides --server)" }, \
    { "cloud-port", P2C_CFG_INT, P2C_CFG_FIELD (T, conn.cloud_port), "8765", 1, 65535, \
      .help = "gateway port with --cloud-ip" }, \
    { "api-key", P2C_CFG_SECRET, P2C_CFG_FIELD (T, conn.api_key), NULL, \
      .help = "API key (optional under open registration)" }

#define S_F(field) P2C_CFG_FIELD (agt_peer_config_t, field)
static const p2c_cfg_t s_peer [] = {
    AGT_CONN_ENTRIES (agt_peer_config_t),
    { "peer-id", P2C_CFG_STR, S_F (peer_id), NULL, .help = "peer name [hostname-pid]" },
    { "region", P2C_CFG_STR, S_F (region), NULL, .help = "region, for same-region scheduling" },
    { "slots", P2C_CFG_INT, S_F (slots), "0", 0, 256,
      .help = "tasks run at once, one worker process each (0: the number of online cores)" },
    { "worker-queue", P2C_CFG_INT, S_F (queue), "0", 0, 16,
      .help = "tasks advertised per worker process; 0: as many as keep each worker busy while "
      "a result and the next task cross the network (1 + round trip / task time, measured, "
      "at most 16); 1 to 16: fixed (the extra tasks wait here)" },
    { "worker-mem-mb", P2C_CFG_INT, S_F (mem_mb), "1024", 16, 1048576,
      .help = "address space limit of each worker process, MiB" },
    { "task-timeout-ms", P2C_CFG_INT64, S_F (task_timeout_ms), "60000", 100, 3600000,
      .help = "time limit of a task whose assignment gives no deadline" },
    { "log-tasks", P2C_CFG_BOOL, S_F (log_tasks), "false",
      .help = "log every completed task at info (\"peer: task done id=...\")" },
    { "list-kernels", P2C_CFG_BOOL, S_F (list_kernels), "false",
      .help = "print the kernel names, versions and aliases and exit" },
    { "no-bench", P2C_CFG_BOOL, S_F (no_bench), "false",
      .help = "do not time the kernels at start (advertise no speeds)" },
    { "sandbox", P2C_CFG_BOOL, S_F (sandbox), "true",
      .help = "run kernels under a seccomp filter with no network, exec or file writes "
      "(agt_sandbox.h); turn off only to debug a kernel" },
    { "worker-user", P2C_CFG_STR, S_F (worker_user), "nobody",
      .help = "the account kernels run as when the agent runs as root" },
    //  The owner's preferences, BOINC's names (agt_prefs.h); in agt_prefs_names' order
    { "run-if-user-active", P2C_CFG_STR, S_F (prefs [0]), "true",
      .help = "run while the computer is in use; false: only after idle-time-to-run" },
    { "idle-time-to-run", P2C_CFG_STR, S_F (prefs [1]), "3",
      .help = "minutes without keyboard or mouse input before running (run-if-user-active "
      "false)" },
    { "exclusive-apps", P2C_CFG_STR, S_F (prefs [2]), "",
      .help = "programs (comma-separated names) during which the peer pauses, e.g. your games" },
    { "cpu-usage-limit", P2C_CFG_STR, S_F (prefs [3]), "100",
      .help = "percent of the time the workers may run (1-100; a stop/continue cycle each "
      "second)" },
    { "max-ncpus-pct", P2C_CFG_STR, S_F (prefs [4]), "100",
      .help = "percent of the CPUs to use when --slots is 0 (1-100)" },
    { "run-on-batteries", P2C_CFG_STR, S_F (prefs [5]), "false",
      .help = "run while the computer is on battery" },
    { "suspend-cpu-usage", P2C_CFG_STR, S_F (prefs [6]), "0",
      .help = "pause while other programs use more than this percent of the CPU (0: never)" },
    { "run-hours", P2C_CFG_STR, S_F (prefs [7]), "",
      .help = "when to run, e.g. \"mon-fri 18:00-23:30, sat-sun 0-24\" (empty: any time)" },
    { "control", P2C_CFG_STR, S_F (control), "",
      .help = "the local control socket (p2c2r-agent status) [$XDG_RUNTIME_DIR/p2c2r-agent/"
      "control]; off: none" },
    { "state-dir", P2C_CFG_STR, S_F (state_dir), "",
      .help = "where the counters of work done are kept [$STATE_DIRECTORY, ~/.local/state/"
      "p2c2r]" },
    { "proc-root", P2C_CFG_STR, S_F (proc_root), "/proc",
      .help = "where to read processes, input and load (tests stage a directory)" },
    { "sys-root", P2C_CFG_STR, S_F (sys_root), "/sys",
      .help = "where to read the power supply (tests stage a directory)" },
    { .name = NULL }
};
#undef S_F

#define S_F(field) P2C_CFG_FIELD (agt_gamer_config_t, field)
static const p2c_cfg_t s_gamer [] = {
    AGT_CONN_ENTRIES (agt_gamer_config_t),
    { "gamer-id", P2C_CFG_STR, S_F (gamer_id), NULL, .help = "player name [player-hostname-pid]" },
    { "task", P2C_CFG_STR, S_F (task), NULL,
      .help = "task type to submit (without it, on a terminal: a menu of the demo's tasks)" },
    { "params", P2C_CFG_STR, S_F (params), "{}",
      .help = "task parameters, a JSON object; \"{i}\" becomes the task's index" },
    { "payload-file", P2C_CFG_STR, S_F (payload_file), NULL,
      .help = "binary input sent with every task (a PNG frame)" },
    { "count", P2C_CFG_INT, S_F (count), "1", 1, 10000000, .help = "tasks in all" },
    { "concurrency", P2C_CFG_INT, S_F (concurrency), "1", 1, 100000,
      .help = "tasks outstanding at once" },
    { "deadline-ms", P2C_CFG_UINT32, S_F (deadline_ms), "0", 0, 3600000,
      .help = "deadline per task (0: the server's default)" },
    { "timeout-s", P2C_CFG_INT64, S_F (timeout_s), "120", 1, 86400,
      .help = "bound on the whole run; on expiry the missing tasks are listed, exit 2" },
    { "json", P2C_CFG_BOOL, S_F (json), "false",
      .help = "one JSON object per reply on stdout, summary on stderr" },
    { "quiet", P2C_CFG_BOOL, S_F (quiet), "false", .help = "print only the summary" },
    { "out", P2C_CFG_STR, S_F (out_dir), NULL,
      .help = "save binary results (images) as DIR/<index>-<type>.png" },
    { "run-id", P2C_CFG_STR, S_F (run_id), "",
      .help = "the run's client_refs are RUN-<index> (default: random); a run repeated"
      " with the same id within the server's window gets the first run's outcomes,"
      " with no new runs and no new charges" },
    { "resubmit", P2C_CFG_BOOL, S_F (resubmit), "true",
      .help = "after a lost connection, reconnect and send the unanswered tasks again by"
      " client_ref (collected once, charged once); false: the run ends, exit 3" },
    { .name = NULL }
};
#undef S_F

#define S_F(field) P2C_CFG_FIELD (agt_bench_config_t, field)
static const p2c_cfg_t s_bench [] = {
    { "runs", P2C_CFG_INT, S_F (runs), "5", 1, 1000,
      .help = "runs of each kernel (the median is shown)" },
    { "kernel", P2C_CFG_STR, S_F (kernel), NULL,
      .help = "bench only this kernel (name or alias)" },
    { "json", P2C_CFG_BOOL, S_F (json), "false",
      .help = "print one JSON object instead of a table" },
    { .name = NULL }
};
#undef S_F

#define S_F(field) P2C_CFG_FIELD (agt_worker_config_t, field)
static const p2c_cfg_t s_worker [] = {
    { "fd", P2C_CFG_INT, S_F (fd), "3", 0, 65535, .help = "the socket to the agent" },
    { "worker-mem-mb", P2C_CFG_INT, S_F (mem_mb), "1024", 16, 1048576,
      .help = "address space limit of the worker, MiB" },
    { "sandbox", P2C_CFG_BOOL, S_F (sandbox), "true",
      .help = "seccomp filter and limits (agt_sandbox.h); off only for tests" },
    { "worker-user", P2C_CFG_STR, S_F (user), "nobody",
      .help = "the account kernels run as when the agent runs as root" },
    { .name = NULL }
};
#undef S_F

const p2c_cfg_spec_t agt_config_peer = { "p2c2r-agent peer", "[options]", s_peer, NULL };
const p2c_cfg_spec_t agt_config_gamer = {
    "p2c2r-agent gamer", "--task TYPE --params JSON [--count N] [--concurrency C] [options]"
    "  (-v: full results and debug lines)", s_gamer, NULL };
const p2c_cfg_spec_t agt_config_bench = {
    "p2c2r-agent bench", "[--runs N] [--json]", s_bench, NULL };
const p2c_cfg_spec_t agt_config_worker = {
    "p2c2r-agent worker", "--fd N (internal: run by the peer)", s_worker, NULL };

//  agt_MODE_config_defaults (and _free) of each mode
P2C_CFG_FUNCTIONS_BUT_LOAD (agt_peer_config, agt_peer_config_t, &agt_config_peer)
P2C_CFG_FUNCTIONS_BUT_LOAD (agt_gamer_config, agt_gamer_config_t, &agt_config_gamer)
P2C_CFG_FUNCTIONS_BUT_LOAD (agt_bench_config, agt_bench_config_t, &agt_config_bench)
P2C_CFG_FUNCTIONS_BUT_LOAD (agt_worker_config, agt_worker_config_t, &agt_config_worker)

void
agt_config_test (bool verbose)
{
    (void) verbose;
    agt_peer_config_t peer;
    agt_peer_config_defaults (&peer);
    P2C_CHECK (!strcmp (peer.conn.server, "ws://127.0.0.1:8765") && peer.conn.cloud_port == 8765);
    P2C_CHECK (!strcmp (peer.conn.api_key, "") && !peer.conn.insecure);
    P2C_CHECK (peer.slots == 0 && peer.queue == 0 && peer.mem_mb == 1024);
    P2C_CHECK (peer.task_timeout_ms == 60000 && !peer.no_bench);
    p2c_cfg_free (agt_config_peer.table, &peer);
    P2C_CHECK (peer.conn.server == NULL);

    agt_gamer_config_t gamer;
    agt_gamer_config_defaults (&gamer);
    P2C_CHECK (!strcmp (gamer.params, "{}") && gamer.count == 1 && gamer.timeout_s == 120);
    p2c_cfg_free (agt_config_gamer.table, &gamer);

    //  The connection's entries are the same in both
    char a0 [] = "gamer", a1 [] = "--cloud-ip", a2 [] = "10.0.0.1", a3 [] = "--count",
         a4 [] = "3";
    char *argv [] = { a0, a1, a2, a3, a4, NULL };
    int argc = 5;
    P2C_CHECK (p2c_cfg_parse (&agt_config_gamer, &gamer, &argc, argv, NULL) == 0);
    P2C_CHECK (!strcmp (gamer.conn.cloud_ip, "10.0.0.1") && gamer.count == 3);
    p2c_cfg_free (agt_config_gamer.table, &gamer);

    agt_bench_config_t bench;
    agt_bench_config_defaults (&bench);
    P2C_CHECK (bench.runs == 5 && !strcmp (bench.kernel, ""));
    p2c_cfg_free (agt_config_bench.table, &bench);

    agt_worker_config_t worker;
    agt_worker_config_defaults (&worker);
    P2C_CHECK (worker.fd == 3 && worker.mem_mb == 1024);
}
