/*  p2c2r-broker: routes frames between the server processes. A thin main:
    settings (brk_config.c), then the broker actor until SIGINT/SIGTERM. */
#include "brk_config.h"
#include "brk_server.h"
#include "p2c_log.h"

int
main (int argc, char **argv)
{
    brk_config_t cfg;
    bool verbose = false;
    int rc = brk_config_load (&cfg, argc, argv, &verbose);
    if (rc != 0)
        return rc < 0 ? 2 : 0;
    p2c_log_init ("broker", verbose);
    zsys_init ();
    zsys_set_logstream (NULL);
    brk_server_args_t args = { cfg.bind, cfg.curve, cfg.keys, false };
    zactor_t *broker = zactor_new (brk_server_actor, &args);
    if (!broker || args.failed)
        fatal ("broker: cannot start endpoint=%s", cfg.bind);
    //  czmq's handler sets zsys_interrupted on SIGINT/SIGTERM
    while (!zsys_interrupted) {
        char *msg = zstr_recv (broker);
        if (!msg)
            break;
        zstr_free (&msg);
    }
    zactor_destroy (&broker);
    log_info ("broker: stopped");
    brk_config_free (&cfg);
    return 0;
}
