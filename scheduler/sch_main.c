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
    char *broker = NULL, *node_id = NULL;
    long long attempt_timeout_ms = 0, max_attempts = 0, queue_max = 0, settle_retry_ms = 0,
              status_interval_ms = 0;
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
        { "settle-retry-ms", P2C_CFG_INT, "2000", 10, 600000, &settle_retry_ms,
          "resend interval of a settlement the ledger has not acknowledged" },
        { "status-interval-ms", P2C_CFG_INT, "10000", 100, 3600000, &status_interval_ms,
          "interval of the status line (logged when something changed)" },
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
    p2c_log_init ("scheduler", verbose);

    sch_core_config_t config;
    sch_core_config_default (&config);
    config.attempt_timeout_ms = attempt_timeout_ms;
    config.max_attempts = (uint32_t) max_attempts;
    config.queue_max = (size_t) queue_max;
    config.settle_retry_ms = settle_retry_ms;
    config.status_interval_ms = status_interval_ms;

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
    log_info ("started id=%s broker=%s attempt_timeout_ms=%lld max_attempts=%lld queue_max=%lld",
              p2c_node_id (server.node), broker, attempt_timeout_ms, max_attempts, queue_max);

    //  returns on SIGINT/SIGTERM (czmq's handler sets zsys_interrupted)
    zloop_start (loop);

    log_info ("stopping id=%s", p2c_node_id (server.node));
    zloop_destroy (&loop);
    sch_core_destroy (&server.core);
    p2c_node_destroy (&server.node);
    p2c_cfg_free (table);
    return 0;
}
