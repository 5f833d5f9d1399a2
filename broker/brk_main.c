/*  p2c2r-broker: routes frames between the server processes. A thin main:
    settings (brk_config.c), then the broker actor until SIGINT/SIGTERM.
    `--probe` checks a running broker instead (container healthchecks: the
    broker and the scheduler serve no HTTP). */
#include "brk_config.h"
#include "brk_server.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_node.h"
#include "p2c_time.h"

//  Joins the broker at endpoint as a node of service "probe" and waits up to
//  timeout_ms for its heartbeat and for a live node of every service in the
//  comma-separated list ("broker" asks for the heartbeat alone). 0 when all
//  are there, 1 when not (each missing one is named on stderr).
static int
s_probe (const char *endpoint, const char *services, int64_t timeout_ms)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    p2c_node_t *node = p2c_node_new (endpoint, "ctl", NULL);
    if (!node) {
        fprintf (stderr, "p2c2r-broker: probe: cannot connect to %s\n", endpoint);
        return 1;
    }
    int64_t until = p2c_now_ms () + timeout_ms;
    bool ok = false;
    while (!ok && p2c_now_ms () < until && !zsys_interrupted) {
        zpoller_t *poller = zpoller_new (p2c_node_sock (node), NULL);
        zpoller_wait (poller, 50);
        zpoller_destroy (&poller);
        char *sender = NULL;
        P2c2r__Internal *msg;
        while ((msg = p2c_node_recv (node, &sender))) {
            p2c2r__internal__free_unpacked (msg, NULL);
            zstr_free (&sender);
        }
        p2c_node_cron (node);
        ok = p2c_node_broker_alive (node);
        char *list = p2c_strdup (services);
        for (char *save = NULL, *s = strtok_r (list, ",", &save); ok && s;
             s = strtok_r (NULL, ",", &save))
            ok = !strcmp (s, "broker") || p2c_node_service_count (node, s) > 0;
        free (list);
    }
    if (!ok) {
        if (!p2c_node_broker_alive (node))
            fprintf (stderr, "p2c2r-broker: probe: no broker heartbeat from %s\n", endpoint);
        else
            fprintf (stderr, "p2c2r-broker: probe: no live node of %s\n", services);
    }
    p2c_node_destroy (&node);
    return ok ? 0 : 1;
}

int
main (int argc, char **argv)
{
    brk_config_t cfg;
    bool verbose = false;
    int rc = brk_config_load (&cfg, argc, argv, &verbose);
    if (rc != 0)
        return rc < 0 ? 2 : 0;
    if (*cfg.probe) {
        //  A probe is a node: on a closed bus it joins with the ctl key,
        //  the one role that may join without serving anything
        rc = p2c_node_setup (cfg.curve, cfg.keys, "ctl") == 0
           ? s_probe (cfg.bind, cfg.probe, cfg.probe_ms) : 1;
        brk_config_free (&cfg);
        return rc;
    }
    p2c_log_init ("broker", verbose);
    zsys_init ();
    zsys_set_logstream (NULL);
    brk_server_args_t args = { cfg.bind, cfg.curve, cfg.keys, false };
    zactor_t *broker = zactor_new (brk_server_actor, &args);
    if (!broker || args.failed)
        fatal ("cannot start endpoint=%s", cfg.bind);
    //  czmq's handler sets zsys_interrupted on SIGINT/SIGTERM
    while (!zsys_interrupted) {
        char *msg = zstr_recv (broker);
        if (!msg)
            break;
        zstr_free (&msg);
    }
    zactor_destroy (&broker);
    log_info ("stopped");
    brk_config_free (&cfg);
    return 0;
}
