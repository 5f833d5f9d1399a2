/*  p2c2r-scheduler: the peer registry, task queues, retries and settlement
    of one pool. This file is the I/O shell: settings, the broker connection
    and the event loop; the rules live in sch_core.c. One zloop with a reader
    on the broker socket and one 100 ms cron timer. */
#include "p2c_cfg.h"
#include "p2c_log.h"
#include "p2c_node.h"
#include "p2c_time.h"
#include "sch_core.h"

#include <czmq.h>
#include <unistd.h>

//  Messages handled per wake-up, so that a flood cannot starve the cron
#define SCH_READ_BATCH  1000
#define SCH_CRON_MS     100

typedef struct {
    p2c_node_t *node;           //  our connection to the broker
    sch_core_t *core;           //  the scheduling rules
} sch_server_t;

//  The core's way out: everything goes through the broker.
static void
s_send (void *arg, const char *dest, const P2c2r__Internal *msg)
{
    sch_server_t *server = (sch_server_t *) arg;
    p2c_node_send (server->node, dest, msg);
}

static int
s_on_broker (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    (void) sock;
    sch_server_t *server = (sch_server_t *) arg;
    for (int i = 0; i < SCH_READ_BATCH; i++) {
        char *sender = NULL;
        P2c2r__Internal *msg = p2c_node_recv (server->node, &sender);
        if (!msg)
            break;
        sch_core_handle (server->core, sender, msg, p2c_now_us ());
        p2c_msg_internal_free (&msg);
        zstr_free (&sender);
    }
    return 0;
}

static int
s_on_cron (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    sch_server_t *server = (sch_server_t *) arg;
    p2c_node_cron (server->node);
    sch_core_cron (server->core, p2c_now_us ());
    return 0;
}

int
main (int argc, char **argv)
{
    char *broker = NULL, *node_id = NULL, *validation = NULL, *validation_types = NULL,
         *needs = NULL;
    long long attempt_timeout_ms = 0, max_attempts = 0, queue_max = 0, gamer_queue_max = 0,
              settle_retry_ms = 0, status_interval_ms = 0, default_deadline_ms = 0,
              max_deadline_ms = 0, cache_ttl_s = 0, cache_max_entries = 0, cache_max_mb = 0,
              spot_permille = 0, spot_doubted_permille = 0, new_samples = 0,
              rep_half_life_s = 0, ban_min_invalid = 0, ban_permille = 0, seed = 0,
              funds_floor_pico = 0, gamer_rate = 0, balance_wait_ms = 0, park_max = 0,
              tile_px = 0, tile_max = 0;
    bool funds_check = true;
    bool pay_checks = false;
    sch_core_config_t config;
    sch_core_config_default (&config);
    char rate_def [32];
    snprintf (rate_def, sizeof rate_def, "%lld", (long long) config.gamer_rate_per_hour);
    p2c_cfg_t table [] = {
        { "broker", P2C_CFG_STR, "tcp://127.0.0.1:5555", 0, 0, &broker,
          "the broker's endpoint" },
        { "node-id", P2C_CFG_STR, "", 0, 0, &node_id,
          "this node's id (default: scheduler-host-pid-random)" },
        { "attempt-timeout-ms", P2C_CFG_INT, "10000", 100, 3600000, &attempt_timeout_ms,
          "longest time one peer gets for one attempt at a task" },
        { "max-attempts", P2C_CFG_INT, "3", 1, 100, &max_attempts,
          "peers tried per task before it fails with timeout" },
        { "queue-max", P2C_CFG_INT, "100000", 1, 100000000, &queue_max,
          "tasks waiting for a free slot before submits get unavailable" },
        { "gamer-queue-max", P2C_CFG_INT, "10000", 1, 100000000, &gamer_queue_max,
          "tasks of one gamer waiting for a free slot before its submits get unavailable" },
        { "settle-retry-ms", P2C_CFG_INT, "2000", 10, 600000, &settle_retry_ms,
          "resend interval of a settlement the ledger has not acknowledged" },
        { "status-interval-ms", P2C_CFG_INT, "10000", 100, 3600000, &status_interval_ms,
          "interval of the status line (logged when something changed)" },
        { "default-deadline-ms", P2C_CFG_INT, "30000", 100, 3600000, &default_deadline_ms,
          "deadline of a task whose submit gives none" },
        { "max-deadline-ms", P2C_CFG_INT, "300000", 100, 3600000, &max_deadline_ms,
          "longer deadlines are cut to this" },
        { "cache-ttl-s", P2C_CFG_INT, "86400", 1, 31536000, &cache_ttl_s,
          "time a result stays in the result cache" },
        { "cache-max-entries", P2C_CFG_INT, "100000", 0, 100000000, &cache_max_entries,
          "results kept in the cache (0: no cache)" },
        { "cache-max-mb", P2C_CFG_INT, "256", 1, 1048576, &cache_max_mb,
          "bytes kept in the cache, MiB" },
        { "validation", P2C_CFG_STR, "spot", 0, 0, &validation,
          "validation of results, server-wide: none, spot or quorum" },
        { "validation-types", P2C_CFG_STR, "", 0, 0, &validation_types,
          "per task type modes, e.g. encryption=quorum,compression=none" },
        { "spot-permille", P2C_CFG_INT, "50", 0, 1000, &spot_permille,
          "share of a trusted peer's results checked again elsewhere, per mille" },
        { "spot-doubted-permille", P2C_CFG_INT, "1000", 0, 1000, &spot_doubted_permille,
          "share of a new or doubted peer's results checked again, per mille" },
        { "new-samples", P2C_CFG_INT, "10", 0, 1000000, &new_samples,
          "verdicts before a peer is no longer new" },
        { "rep-half-life-s", P2C_CFG_INT, "86400", 1, 315360000, &rep_half_life_s,
          "half-life of the valid/invalid counts of a peer account" },
        { "ban-min-invalid", P2C_CFG_INT, "2", 1, 1000000, &ban_min_invalid,
          "decayed invalid results needed before a ban" },
        { "ban-permille", P2C_CFG_INT, "200", 1, 1000, &ban_permille,
          "invalid share of verdicts, per mille, at which a peer is banned" },
        { "pay-checks", P2C_CFG_BOOL, "true", 0, 0, &pay_checks,
          "the treasury pays the peers of valid check runs (gamer_account 0)" },
        { "seed", P2C_CFG_INT, "0", 0, 0x7fffffffffffffffLL, &seed,
          "seed of the spot-check draw (0: from the clock)" },
        { "needs", P2C_CFG_STR, "", 0, 0, &needs,
          "resources per task type, e.g. rt_global_illumination:gpu,physics_fluid:ram=2" },
        { "funds-check", P2C_CFG_BOOL, "true", 0, 0, &funds_check,
          "refuse tasks a gamer cannot pay for (needs the ledger's balance updates)" },
        { "funds-floor-pico", P2C_CFG_INT, "0", -1000000000000000LL, 1000000000000000LL,
          &funds_floor_pico, "spendable balance a gamer must keep, picodollars" },
        { "gamer-rate-pico", P2C_CFG_INT, rate_def, 0, 1000000000000000LL, &gamer_rate,
          "what a gamer pays per compute hour, picodollars (for the reserve of tasks in flight)" },
        { "balance-wait-ms", P2C_CFG_INT, "2000", 10, 60000, &balance_wait_ms,
          "how long a task waits for an unknown gamer's balance before unavailable" },
        { "park-max", P2C_CFG_INT, "10000", 1, 10000000, &park_max,
          "tasks waiting for balances before submits get unavailable" },
        { "tile-px", P2C_CFG_INT, "518400", 0, 16777216, &tile_px,
          "ray-tracing frames above this many pixels run as tiles on several peers (0: never)" },
        { "tile-max", P2C_CFG_INT, "16", 2, 64, &tile_max, "most tiles of one frame" },
        { NULL, 0, NULL, 0, 0, NULL, NULL }
    };
    bool verbose = false;
    int rc = p2c_cfg_parse (table, &argc, argv, "p2c2r-scheduler", "[options]", &verbose);
    if (rc != 0) {
        p2c_cfg_free (table);
        return rc > 0 ? 0 : 2;
    }
    if (argc > 1) {
        fprintf (stderr, "p2c2r-scheduler: unexpected argument '%s' (see --help)\n", argv [1]);
        p2c_cfg_free (table);
        return 2;
    }
    int mode = sch_val_mode_parse (validation);
    if (mode < 0 || sch_core_config_validation (&config, validation_types) != 0
        || sch_core_config_needs (&config, needs) != 0) {
        fprintf (stderr, "p2c2r-scheduler: bad --validation, --validation-types or --needs"
                         " (see --help)\n");
        p2c_cfg_free (table);
        return 2;
    }
    p2c_log_init ("scheduler", verbose);

    config.attempt_timeout_ms = attempt_timeout_ms;
    config.max_attempts = (uint32_t) max_attempts;
    config.queue_max = (size_t) queue_max;
    config.gamer_queue_max = (size_t) gamer_queue_max;
    config.settle_retry_ms = settle_retry_ms;
    config.status_interval_ms = status_interval_ms;
    config.default_deadline_ms = default_deadline_ms;
    config.max_deadline_ms = max_deadline_ms;
    config.cache_ttl_ms = cache_ttl_s * 1000;
    config.cache_max_entries = (size_t) cache_max_entries;
    config.cache_max_bytes = (size_t) cache_max_mb * 1024 * 1024;
    config.validation = (sch_val_mode_t) mode;
    config.spot_permille = (uint32_t) spot_permille;
    config.spot_doubted_permille = (uint32_t) spot_doubted_permille;
    config.new_samples = (uint32_t) new_samples;
    config.rep_half_life_ms = rep_half_life_s * 1000;
    config.ban_min_invalid = (double) ban_min_invalid;
    config.ban_permille = (uint32_t) ban_permille;
    config.seed = seed ? (uint64_t) seed : (uint64_t) p2c_now_us () ^ ((uint64_t) getpid () << 32);
    config.funds_check = funds_check;
    config.pay_checks = pay_checks;
    config.funds_floor_pico = funds_floor_pico;
    config.gamer_rate_per_hour = gamer_rate;
    config.balance_wait_ms = balance_wait_ms;
    config.park_max = (size_t) park_max;
    config.tile_px = (uint64_t) tile_px;
    config.tile_max = (size_t) tile_max;

    sch_server_t server = { NULL, NULL };
    server.node = p2c_node_new (broker, "scheduler", node_id);
    if (!server.node)
        fatal ("cannot connect to the broker endpoint=%s", broker);
    server.core = sch_core_new (&config, s_send, &server);
    if (!server.core)
        fatal ("out of memory");

    zloop_t *loop = zloop_new ();
    if (!loop)
        fatal ("cannot make the event loop");
    if (zloop_reader (loop, p2c_node_sock (server.node), s_on_broker, &server) != 0)
        fatal ("cannot watch the broker socket");
    if (zloop_timer (loop, SCH_CRON_MS, 0, s_on_cron, &server) < 0)
        fatal ("cannot start the cron timer");
    log_info ("started id=%s broker=%s attempt_timeout_ms=%lld max_attempts=%lld queue_max=%lld"
              " validation=%s funds_check=%d cache_max_entries=%lld",
              p2c_node_id (server.node), broker, attempt_timeout_ms, max_attempts, queue_max,
              validation, funds_check, cache_max_entries);

    //  returns on SIGINT/SIGTERM (czmq's handler sets zsys_interrupted)
    zloop_start (loop);

    log_info ("stopping id=%s", p2c_node_id (server.node));
    zloop_destroy (&loop);
    sch_core_destroy (&server.core);
    p2c_node_destroy (&server.node);
    p2c_cfg_free (table);
    return 0;
}
