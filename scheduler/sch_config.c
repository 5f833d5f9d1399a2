/*  The scheduler's settings table (see sch_config.h). */
#include "sch_config.h"
#include "p2c_cfg.h"
#include "p2c_money.h"
#include "p2c_tasks.h"
#include "p2c_test.h"
#include "p2c_time.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  In the order of sch_val_mode_t, from SCH_VAL_NONE (0) on
static const char *const s_validation_names [] = { "none", "spot", "quorum", NULL };

#define S_F(field) P2C_CFG_FIELD (sch_config_t, field)
static const p2c_cfg_t s_table [] = {
    P2C_NODE_BUS_ENTRIES (sch_config_t, bus, "scheduler"),
    { "broker", P2C_CFG_STR, S_F (broker), "tcp://127.0.0.1:5555",
      .help = "the broker's endpoint" },
    { "node-id", P2C_CFG_STR, S_F (node_id), "",
      .help = "this node's id (default: scheduler-host-pid-random)" },
    { "attempt-timeout-ms", P2C_CFG_INT64, S_F (core.attempt_timeout_ms), "10000", 100, 3600000,
      .help = "longest time one peer gets for one attempt at a task" },
    { "max-attempts", P2C_CFG_UINT32, S_F (core.max_attempts), "3", 1, 100,
      .help = "peers tried per task before it fails with timeout" },
    { "queue-max", P2C_CFG_SIZE, S_F (core.queue_max), "100000", 1, 100000000,
      .help = "tasks waiting for a free slot before submits get unavailable" },
    { "gamer-queue-max", P2C_CFG_SIZE, S_F (core.gamer_queue_max), "10000", 1, 100000000,
      .help = "tasks of one gamer waiting for a free slot before its submits get unavailable" },
    { "queue-max-bytes", P2C_CFG_SIZE, S_F (core.queue_max_bytes), "536870912", 65536,
      1LL << 40, .help = "bytes (params and payloads) of all queued tasks before submits get"
      " unavailable" },
    { "gamer-queue-max-bytes", P2C_CFG_SIZE, S_F (core.gamer_queue_max_bytes), "67108864",
      65536, 1LL << 40, .help = "bytes of one gamer's queued tasks before its submits get"
      " unavailable" },
    { "settle-retry-ms", P2C_CFG_INT64, S_F (core.settle_retry_ms), "2000", 10, 600000,
      .help = "resend interval of a settlement the ledger has not acknowledged" },
    { "status-interval-ms", P2C_CFG_INT64, S_F (core.status_interval_ms), "10000", 100, 3600000,
      .help = "interval of the status line (logged when something changed)" },
    { "default-deadline-ms", P2C_CFG_INT64, S_F (core.default_deadline_ms), "30000", 100,
      3600000, .help = "deadline of a task whose submit gives none" },
    { "max-deadline-ms", P2C_CFG_INT64, S_F (core.max_deadline_ms), "300000", 100, 3600000,
      .help = "longer deadlines are cut to this" },
    { "cache-ttl-s", P2C_CFG_INT64, S_F (core.cache_ttl_ms), "86400", 1, 31536000,
      .help = "time a result stays in the result cache", .scale = 1000 },
    { "cache-max-entries", P2C_CFG_SIZE, S_F (core.cache_max_entries), "100000", 0, 100000000,
      .help = "results kept in the cache (0: no cache)" },
    { "cache-max-mb", P2C_CFG_SIZE, S_F (core.cache_max_bytes), "256", 1, 1048576,
      .help = "bytes kept in the cache, MiB", .scale = 1024 * 1024 },
    { "client-ref-window-s", P2C_CFG_INT64, S_F (core.ref_window_ms), "86400", 1, 31536000,
      .help = "a submit repeating a client_ref of its account within this time gets the first"
      " one's outcome (no new run, no new charge)", .scale = 1000 },
    { "client-ref-max-entries", P2C_CFG_SIZE, S_F (core.ref_max_entries), "100000", 0,
      100000000, .help = "client_ref outcomes kept at most, oldest given up first"
      " (0: client_refs are only echoed)" },
    { "client-ref-max-mb", P2C_CFG_SIZE, S_F (core.ref_max_bytes), "256", 1, 1048576,
      .help = "bytes of the client_ref outcomes kept, MiB", .scale = 1024 * 1024 },
    { "validation", P2C_CFG_ENUM, S_F (core.validation), "spot",
      .help = "validation of results, server-wide: none, spot or quorum",
      .names = s_validation_names },
    { "validation-types", P2C_CFG_STR, S_F (validation_types), "",
      .help = "per task type modes, e.g. encryption=quorum,compression=none" },
    { "spot-permille", P2C_CFG_UINT32, S_F (core.spot_permille), "50", 0, 1000,
      .help = "share of a trusted peer's results checked again elsewhere, per mille" },
    { "spot-doubted-permille", P2C_CFG_UINT32, S_F (core.spot_doubted_permille), "1000", 0,
      1000, .help = "share of a new or doubted peer's results checked again, per mille" },
    { "new-samples", P2C_CFG_UINT32, S_F (core.new_samples), "10", 0, 1000000,
      .help = "verdicts before a peer is no longer new" },
    { "rep-half-life-s", P2C_CFG_INT64, S_F (core.rep_half_life_ms), "86400", 1, 315360000,
      .help = "half-life of the valid/invalid counts of a peer account", .scale = 1000 },
    { "ban-min-invalid", P2C_CFG_DOUBLE, S_F (core.ban_min_invalid), "2", 1, 1000000,
      .help = "decayed invalid results needed before a ban" },
    { "ban-permille", P2C_CFG_UINT32, S_F (core.ban_permille), "200", 1, 1000,
      .help = "invalid share of verdicts, per mille, at which a peer is banned" },
    { "pay-checks", P2C_CFG_BOOL, S_F (core.pay_checks), "true",
      .help = "the treasury pays the peers of valid check runs (gamer_account 0)" },
    { "bill-min-permille", P2C_CFG_UINT32, S_F (core.bill_min_permille), "750", 0, 1000,
      .help = "least billed time, per mille of the cost model's expected time for the params"
      " (with the most at 1500, no peer is billed more than 2x another for the same params)" },
    { "bill-max-permille", P2C_CFG_UINT32, S_F (core.bill_max_permille), "1500", 0, 100000,
      .help = "most billed time, per mille of the expected time (0: bill the measured time)" },
    { "bill-flag-permille", P2C_CFG_UINT32, S_F (core.bill_flag_permille), "10000", 0, 1000000,
      .help = "a claim past this share of the expected time, per mille, plus the slack, is"
      " flagged and counts against the peer's reputation (0: never)" },
    { "bill-flag-slack-ms", P2C_CFG_INT64, S_F (core.bill_flag_slack_us), "1000", 0, 3600000,
      .help = "slack added to the flag line: an honest peer on a busy machine stalls now and"
      " then, and a flag counts against it", .scale = 1000 },
    { "block-v4-bits", P2C_CFG_UINT32, S_F (core.block_v4_bits), "0", 0, 32,
      .help = "IPv4 prefix of an address block (24: /24): a peer never runs tasks of a gamer,"
      " nor checks of a run, from its block (0: off; off behind a proxy that hides addresses)" },
    { "block-v6-bits", P2C_CFG_UINT32, S_F (core.block_v6_bits), "0", 0, 128,
      .help = "IPv6 prefix of an address block (64: /64), as --block-v4-bits" },
    //  0 stays 0 in the defaults, which the core takes as a fixed seed, so
    //  that tests draw the same; sch_config_load seeds it from the clock
    { "seed", P2C_CFG_UINT64, S_F (core.seed), "0", 0, 0x7fffffffffffffffLL,
      .help = "seed of the spot-check draw (0: from the clock)" },
    { "needs", P2C_CFG_STR, S_F (needs), "",
      .help = "resources per task type, e.g. rt_global_illumination:gpu,physics_fluid:ram=2" },
    { "funds-check", P2C_CFG_BOOL, S_F (core.funds_check), "true",
      .help = "refuse tasks a gamer cannot pay for (needs the ledger's balance updates)" },
    { "funds-floor-pico", P2C_CFG_INT64, S_F (core.funds_floor_pico), "0",
      -1000000000000000LL, 1000000000000000LL,
      .help = "spendable balance a gamer must keep, picodollars" },
    //  P2C_RATES_DEFAULT's gamer rate (the self-test holds them equal)
    { "gamer-rate-pico", P2C_CFG_INT64, S_F (core.gamer_rate_per_hour), "10000000000", 0,
      1000000000000000LL, .help = "what a gamer pays per compute hour, picodollars (for the"
      " reserve of tasks in flight)" },
    { "balance-wait-ms", P2C_CFG_INT64, S_F (core.balance_wait_ms), "2000", 10, 60000,
      .help = "how long a task waits for an unknown gamer's balance before unavailable" },
    { "park-max", P2C_CFG_SIZE, S_F (core.park_max), "10000", 1, 10000000,
      .help = "tasks waiting for balances before submits get unavailable" },
    //  a quarter of full HD (960 x 540) is about a tenth of a second for one
    //  peer; a 1920 x 1080 frame becomes four tiles
    { "tile-px", P2C_CFG_UINT64, S_F (core.tile_px), "518400", 0, 16777216,
      .help = "ray-tracing frames above this many pixels run as tiles on several peers"
      " (0: never)" },
    { "tile-max", P2C_CFG_SIZE, S_F (core.tile_max), "16", 2, 64,
      .help = "most tiles of one frame" },
    //  operators: Prometheus' scrape and the server's own alerts (issues 19, 21)
    { "metrics-listen", P2C_CFG_STR, S_F (metrics_listen), "127.0.0.1:9466",
      .help = "HOST:PORT of the Prometheus /metrics listener (empty: none)" },
    { "alert-for-s", P2C_CFG_INT64, S_F (core.alerts.for_ms), "60", 0, 86400,
      .help = "an alert's condition holds this long before it fires", .scale = 1000 },
    { "alert-window-s", P2C_CFG_INT64, S_F (core.alerts.window_ms), "300", 1, 600,
      .help = "window of the latency and settlement alerts", .scale = 1000 },
    { "alert-peers-min", P2C_CFG_UINT32, S_F (core.alerts.peers_min), "1", 0, 10000000,
      .help = "alert peers_low fires with fewer peers online (0: off)" },
    { "alert-latency-p99-ms", P2C_CFG_INT64, S_F (core.alerts.latency_p99_ms), "5000", 0,
      3600000, .help = "alert latency_high fires when the window's p99 is above (0: off)" },
    { "alert-queue-max", P2C_CFG_SIZE, S_F (core.alerts.queue_max), "1000", 0, 100000000,
      .help = "alert queue_backlog fires with more tasks waiting for a slot (0: off)" },
    { "alert-settle-failures", P2C_CFG_UINT32, S_F (core.alerts.settle_failures), "10", 0,
      1000000, .help = "alert settle_failures fires at this many settlement resends and"
      " refusals in the window (0: off)" },
    { "alert-exec", P2C_CFG_STR, S_F (alert_exec), "",
      .help = "command run once per change of an alert's state, the alert in its environment"
      " (P2C2R_ALERT_NAME, _STATE, _VALUE, _THRESHOLD, _SINCE, ...); split at spaces, no"
      " shell (empty: none)" },
    { "alert-exec-shell", P2C_CFG_BOOL, S_F (alert_exec_shell), "false",
      .help = "run --alert-exec through /bin/sh -c" },
    { "alert-exec-max", P2C_CFG_SIZE, S_F (alert_exec_max), "4", 1, 64,
      .help = "alert commands running at once (more wait in a queue of 64)" },
    { "alert-exec-timeout-s", P2C_CFG_INT64, S_F (alert_exec_timeout_ms), "30", 1, 3600,
      .help = "an alert command still running after this is killed", .scale = 1000 },
    { .name = NULL }
};
#undef S_F

//  The per-type arrays from their lists, afresh each time
static int
s_check (void *arg)
{
    sch_config_t *self = (sch_config_t *) arg;
    sch_core_config_t *core = &self->core;
    for (int i = 0; i < SCH_MAX_TYPES; i++) {
        core->validation_type [i] = SCH_VAL_DEFAULT;
        core->needs_ram_gb [i] = 0;
        core->needs_vram_gb [i] = 0;
        core->needs_gpu [i] = false;
    }
    if (sch_core_config_validation (core, self->validation_types) != 0) {
        fprintf (stderr, "p2c2r-scheduler: bad --validation-types '%s': TYPE=MODE,..."
                 " (MODE none, spot or quorum; see --help)\n", self->validation_types);
        return -1;
    }
    if (sch_core_config_needs (core, self->needs) != 0) {
        fprintf (stderr, "p2c2r-scheduler: bad --needs '%s': TYPE:gpu, TYPE:ram=N or"
                 " TYPE:vram=N, comma-separated (see --help)\n", self->needs);
        return -1;
    }
    return 0;
}

static const p2c_cfg_spec_t s_spec = { "p2c2r-scheduler", "[options]", s_table, s_check };

//  The defaults' lists are empty: nothing for the check to refuse
//  sch_config_defaults, sch_config_free
P2C_CFG_FUNCTIONS_BUT_LOAD (sch_config, sch_config_t, &s_spec)

int
sch_config_load (sch_config_t *self, int argc, char **argv, bool *verbose_p)
{
    int rc = p2c_cfg_load (&s_spec, self, sizeof *self, &argc, argv, verbose_p);
    if (rc != 0)
        return rc;
    if (!self->core.seed)
        self->core.seed = (uint64_t) p2c_now_us () ^ ((uint64_t) getpid () << 32);
    return 0;
}

const char *
sch_config_validation_name (sch_val_mode_t mode)
{
    if (mode >= SCH_VAL_NONE && mode <= SCH_VAL_QUORUM)
        return s_validation_names [mode];
    return "default";
}

void
sch_config_test (bool verbose)
{
    (void) verbose;
    //  The defaults are the binary's (issue 11: pay-checks was false in
    //  the tests' defaults and true in the binary)
    sch_config_t cfg;
    sch_config_defaults (&cfg);
    P2C_CHECK (!strcmp (cfg.broker, "tcp://127.0.0.1:5555"));
    P2C_CHECK (cfg.core.pay_checks && cfg.core.funds_check);
    P2C_CHECK (cfg.core.validation == SCH_VAL_SPOT);
    P2C_CHECK (cfg.core.cache_ttl_ms == 86400LL * 1000);
    P2C_CHECK (cfg.core.cache_max_bytes == 256u * 1024 * 1024);
    P2C_CHECK (cfg.core.rep_half_life_ms == 86400LL * 1000);
    P2C_CHECK (cfg.core.ban_min_invalid == 2.0 && cfg.core.max_attempts == 3);
    p2c_rates_t rates = P2C_RATES_DEFAULT;
    P2C_CHECK (cfg.core.gamer_rate_per_hour == rates.gamer_per_hour);
    P2C_CHECK (cfg.core.validation_type [0] == SCH_VAL_DEFAULT);
    P2C_CHECK (!cfg.core.needs_gpu [0] && cfg.core.needs_ram_gb [0] == 0);
    P2C_CHECK (cfg.core.tile_px == 518400 && cfg.core.tile_max == 16);
    P2C_CHECK (!strcmp (cfg.metrics_listen, "127.0.0.1:9466") && !*cfg.alert_exec);
    P2C_CHECK (cfg.core.alerts.for_ms == 60000 && cfg.core.alerts.window_ms == 300000
               && cfg.core.alerts.peers_min == 1 && cfg.core.alerts.latency_p99_ms == 5000
               && cfg.alert_exec_timeout_ms == 30000);
    sch_config_free (&cfg);
    P2C_CHECK (cfg.broker == NULL);

    //  sch_core_config_default is the same
    sch_core_config_t core;
    sch_core_config_default (&core);
    P2C_CHECK (core.pay_checks && core.queue_max == 100000 && core.park_max == 10000);

    //  Flags land in the rules' settings, the lists in their arrays
    const p2c_task_type_t *type = p2c_task_types ();
    char spec_validation [128], spec_needs [128];
    snprintf (spec_validation, sizeof spec_validation, "%s=quorum", type->name);
    snprintf (spec_needs, sizeof spec_needs, "%s:ram=2", type->name);
    char a0 [] = "p2c2r-scheduler", a1 [] = "--validation", a2 [] = "none",
         a3 [] = "--validation-types", a5 [] = "--needs", a7 [] = "--cache-ttl-s", a8 [] = "5",
         a9 [] = "--pay-checks=false", a10 [] = "--seed", a11 [] = "7";
    char *argv [] = { a0, a1, a2, a3, spec_validation, a5, spec_needs, a7, a8, a9, a10, a11,
                      NULL };
    P2C_CHECK (sch_config_load (&cfg, 12, argv, NULL) == 0);
    P2C_CHECK (cfg.core.validation == SCH_VAL_NONE);
    P2C_CHECK (cfg.core.validation_type [0] == SCH_VAL_QUORUM);
    P2C_CHECK (cfg.core.needs_ram_gb [0] == 2);
    P2C_CHECK (cfg.core.cache_ttl_ms == 5000 && !cfg.core.pay_checks && cfg.core.seed == 7);
    P2C_CHECK (!strcmp (sch_config_validation_name (cfg.core.validation), "none"));
    sch_config_free (&cfg);

    //  A seed of 0 is drawn from the clock by the binary
    char *argv2 [] = { a0, NULL };
    P2C_CHECK (sch_config_load (&cfg, 1, argv2, NULL) == 0);
    P2C_CHECK (cfg.core.seed != 0);
    sch_config_free (&cfg);

    //  A bad list or mode, or a stray argument, is refused
    char b1 [] = "nosuchtype=quorum", b2 [] = "stray", b3 [] = "most";
    char *argv3 [] = { a0, a3, b1, NULL };
    P2C_CHECK (sch_config_load (&cfg, 3, argv3, NULL) == -1);
    char *argv4 [] = { a0, b2, NULL };
    P2C_CHECK (sch_config_load (&cfg, 2, argv4, NULL) == -1);
    char *argv5 [] = { a0, a1, b3, NULL };
    P2C_CHECK (sch_config_load (&cfg, 3, argv5, NULL) == -1);
}
