/*  p2c2r-scheduler: the peer registry, task queues, retries and settlement
    of one pool. This file is the I/O shell: settings, the broker connection
    and the event loop; the rules live in sch_core.c. One zloop with a reader
    on the broker socket, the /metrics listener's sockets, and one 100 ms
    cron timer; the alerts' hook runs children that the cron reaps. */
#include "p2c_log.h"
#include "p2c_metrics_http.h"
#include "p2c_mem.h"
#include "p2c_node.h"
#include "p2c_time.h"
#include "sch_config.h"
#include "sch_core.h"
#include "sch_hook.h"

#include <czmq.h>

//  Messages handled per wake-up, so that a flood cannot starve the cron
#define SCH_READ_BATCH  1000
#define SCH_CRON_MS     100

typedef struct {
    p2c_node_t *node;           //  our connection to the broker
    sch_core_t *core;           //  the scheduling rules
    p2c_metrics_http_t *metrics;    //  /metrics, or NULL
    sch_hook_t *hook;           //  --alert-exec, or NULL
    bool broker_seen;           //  the broker has beaten once
} sch_server_t;

//  Connections the /metrics listener takes at once
#define SCH_METRICS_CONNS 8

static void
s_render (void *arg, FILE *f)
{
    sch_server_t *server = (sch_server_t *) arg;
    sch_core_metrics (server->core, f);
    if (server->hook)
        fprintf (f, "# HELP p2c2r_scheduler_alert_hook_runs_total Runs of --alert-exec, by"
                    " outcome.\n# TYPE p2c2r_scheduler_alert_hook_runs_total counter\n"
                    "p2c2r_scheduler_alert_hook_runs_total{outcome=\"started\"} %llu\n"
                    "p2c2r_scheduler_alert_hook_runs_total{outcome=\"failed\"} %llu\n"
                    "p2c2r_scheduler_alert_hook_runs_total{outcome=\"dropped\"} %llu\n",
                 (unsigned long long) sch_hook_started (server->hook),
                 (unsigned long long) sch_hook_failed (server->hook),
                 (unsigned long long) sch_hook_dropped (server->hook));
}

//  A change of an alert's state: one line in the log, and the hook
static void
s_on_alert (void *arg, const sch_alert_t *alert)
{
    sch_server_t *server = (sch_server_t *) arg;
    log_info ("alert %s name=%s value=%g threshold=%g%s%s", alert->firing ? "firing" : "resolved",
              alert->name, alert->value, alert->threshold, *alert->detail ? " detail=" : "",
              alert->detail);
    if (server->hook)
        sch_hook_fire (server->hook, alert, p2c_now_ms ());
}

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
    //  the broker names the nodes once it has answered our hello; a broker
    //  that stopped beating hides them
    if (p2c_node_broker_alive (server->node)) {
        server->broker_seen = true;
        sch_core_set_services (server->core, 1,
                               (int) p2c_node_service_count (server->node, "ledger"),
                               (int) p2c_node_service_count (server->node, "gateway"));
    }
    else
    if (server->broker_seen)
        sch_core_set_services (server->core, 0, -1, -1);
    sch_core_cron (server->core, p2c_now_us ());
    if (server->hook)
        sch_hook_cron (server->hook, p2c_now_ms ());
    if (server->metrics)
        p2c_metrics_http_cron (server->metrics, p2c_now_ms ());
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

    sch_server_t server = { NULL, NULL, NULL, NULL, false };
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
    //  a metrics port that cannot be bound is said in the log; the
    //  scheduling goes on without it
    if (*cfg.metrics_listen) {
        server.metrics = p2c_metrics_http_new (cfg.metrics_listen, SCH_METRICS_CONNS, s_render,
                                               &server);
        if (server.metrics && p2c_metrics_http_zloop (server.metrics, loop) != 0)
            fatal ("cannot watch the metrics listener");
    }
    server.hook = sch_hook_new (cfg.alert_exec, cfg.alert_exec_shell, cfg.alert_exec_max,
                                cfg.alert_exec_timeout_ms);
    sch_core_set_alert_hook (server.core, s_on_alert, &server);
    log_info ("started id=%s broker=%s attempt_timeout_ms=%lld max_attempts=%u queue_max=%zu"
              " validation=%s funds_check=%d cache_max_entries=%zu",
              p2c_node_id (server.node), cfg.broker, (long long) cfg.core.attempt_timeout_ms,
              cfg.core.max_attempts, cfg.core.queue_max,
              sch_config_validation_name (cfg.core.validation), cfg.core.funds_check,
              cfg.core.cache_max_entries);

    //  returns on SIGINT/SIGTERM (czmq's handler sets zsys_interrupted)
    zloop_start (loop);

    log_info ("stopping id=%s", p2c_node_id (server.node));
    p2c_metrics_http_destroy (&server.metrics);
    zloop_destroy (&loop);
    sch_hook_destroy (&server.hook);
    sch_core_destroy (&server.core);
    p2c_node_destroy (&server.node);
    sch_config_free (&cfg);
    return 0;
}
