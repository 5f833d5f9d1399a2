/*  p2c2r-scheduler: the peer registry, task queues, retries and settlement
    of one pool. This file is the I/O shell: settings, the broker connection
    and the event loop; the rules live in sch_core.c. One zloop with a reader
    on the broker socket and one 100 ms cron timer. */
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_node.h"
#include "p2c_time.h"
#include "sch_config.h"
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

static void
s_on_message (void *arg, const char *sender, P2c2r__Internal *msg)
{
    sch_server_t *server = (sch_server_t *) arg;
    sch_core_handle (server->core, sender, msg, p2c_now_us ());
}

static int
s_on_broker (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    (void) sock;
    sch_server_t *server = (sch_server_t *) arg;
    p2c_node_drain (server->node, SCH_READ_BATCH, s_on_message, server);
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
    sch_config_t cfg;
    bool verbose = false;
    int rc = sch_config_load (&cfg, argc, argv, &verbose);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    p2c_log_init ("scheduler", verbose);
    if (p2c_node_setup (cfg.bus.curve, cfg.bus.keys, cfg.bus.key_name) != 0) {
        sch_config_free (&cfg);
        return 2;
    }

    sch_server_t server = { NULL, NULL };
    server.node = p2c_node_new (cfg.broker, "scheduler", cfg.node_id);
    if (!server.node)
        fatal ("cannot connect to the broker endpoint=%s", cfg.broker);
    server.core = sch_core_new (&cfg.core, s_send, &server);
    if (!server.core)
        p2c_oom ("scheduler core");

    zloop_t *loop = zloop_new ();
    if (!loop)
        fatal ("cannot make the event loop");
    if (zloop_reader (loop, p2c_node_sock (server.node), s_on_broker, &server) != 0)
        fatal ("cannot watch the broker socket");
    if (zloop_timer (loop, SCH_CRON_MS, 0, s_on_cron, &server) < 0)
        fatal ("cannot start the cron timer");
    log_info ("started id=%s broker=%s attempt_timeout_ms=%lld max_attempts=%u queue_max=%zu"
              " validation=%s funds_check=%d cache_max_entries=%zu",
              p2c_node_id (server.node), cfg.broker, (long long) cfg.core.attempt_timeout_ms,
              cfg.core.max_attempts, cfg.core.queue_max,
              sch_config_validation_name (cfg.core.validation), cfg.core.funds_check,
              cfg.core.cache_max_entries);

    //  returns on SIGINT/SIGTERM (czmq's handler sets zsys_interrupted)
    zloop_start (loop);

    log_info ("stopping id=%s", p2c_node_id (server.node));
    zloop_destroy (&loop);
    sch_core_destroy (&server.core);
    p2c_node_destroy (&server.node);
    sch_config_free (&cfg);
    return 0;
}
