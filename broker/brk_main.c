/*  p2c2r-broker: routes frames between the server processes. A thin main:
    settings, then the broker actor until SIGINT/SIGTERM. `--probe` checks
    a running broker instead (container healthchecks: the broker and the
    scheduler serve no HTTP). */
#include "brk_server.h"
#include "p2c_cfg.h"
#include "p2c_log.h"
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
    p2c_node_t *node = p2c_node_new (endpoint, "probe", NULL);
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
        char *list = strdup (services);
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
    char *bind = NULL, *probe = NULL;
    long long probe_ms = 0;
    p2c_cfg_t table [] = {
        { "bind", P2C_CFG_STR, "tcp://127.0.0.1:5555", 0, 0, &bind,
          "ZeroMQ endpoint the nodes connect to" },
        { "probe", P2C_CFG_STR, "", 0, 0, &probe,
          "do not serve: exit 0 when the broker at --bind beats and has a live node of each"
          " of these services (comma-separated; 'broker': the broker alone), else 1" },
        { "probe-ms", P2C_CFG_INT, "3000", 100, 60000, &probe_ms, "how long --probe waits" },
        { NULL, 0, NULL, 0, 0, NULL, NULL }
    };
    bool verbose = false;
    int rc = p2c_cfg_parse (table, &argc, argv, "p2c2r-broker", "[options]", &verbose);
    if (rc != 0)
        return rc < 0 ? 2 : 0;
    if (argc > 1) {
        fprintf (stderr, "p2c2r-broker: unexpected argument '%s' (see --help)\n", argv [1]);
        return 2;
    }
    if (*probe) {
        rc = s_probe (bind, probe, probe_ms);
        p2c_cfg_free (table);
        return rc;
    }
    p2c_log_init ("broker", verbose);
    zsys_init ();
    zsys_set_logstream (NULL);
    zactor_t *broker = zactor_new (brk_server_actor, bind);
    if (!broker)
        fatal ("broker: cannot start endpoint=%s", bind);
    //  czmq's handler sets zsys_interrupted on SIGINT/SIGTERM
    while (!zsys_interrupted) {
        char *msg = zstr_recv (broker);
        if (!msg)
            break;
        zstr_free (&msg);
    }
    zactor_destroy (&broker);
    log_info ("broker: stopped");
    p2c_cfg_free (table);
    return 0;
}
