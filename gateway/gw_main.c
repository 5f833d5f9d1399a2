/*  p2c2r-gateway: holds the clients' WebSocket connections and passes
    their messages to the scheduler and ledger through the broker. A thin
    main: settings (gw_config.c), signals, the server actor. */
#include "gw_config.h"
#include "p2c_log.h"
#include "p2c_node.h"

#include <czmq.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>

static gw_server_t *s_server = NULL;

static void
s_on_signal (int sig)
{
    (void) sig;
    if (s_server)
        gw_server_stop (s_server);
}

int
main (int argc, char **argv)
{
    gw_config_t cfg;
    bool verbose = false;
    int rc = gw_config_load (&cfg, argc, argv, &verbose);
    if (rc != 0)
        return rc > 0 ? 0 : 1;
    p2c_log_init ("gateway", verbose);
    if (p2c_node_setup (cfg.bus.curve, cfg.bus.keys, cfg.bus.key_name) != 0) {
        gw_config_free (&cfg);
        return 1;
    }

    //  Every connection is a descriptor: take what the hard limit allows
    //  (before lws sizes its tables from it)
    struct rlimit rl;
    if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit (RLIMIT_NOFILE, &rl) != 0)
            log_warn ("cannot raise the descriptor limit");
    }
    if (getrlimit (RLIMIT_NOFILE, &rl) == 0)
        log_info ("descriptor limit nofile=%llu", (unsigned long long) rl.rlim_cur);

    //  czmq would take SIGINT/SIGTERM for itself; the loop handles them
    zsys_handler_set (NULL);
    s_server = gw_server_new (&cfg.server);
    if (!s_server) {
        gw_config_free (&cfg);
        fatal ("cannot start");
    }
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset (&sa.sa_mask);
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
    signal (SIGPIPE, SIG_IGN);

    gw_server_run (s_server);
    gw_server_destroy (&s_server);
    gw_config_free (&cfg);
    log_info ("stopped");
    return 0;
}
