/*  p2c2r-broker: routes frames between the server processes. A thin main:
    settings, then the broker actor until SIGINT/SIGTERM. */
#include "brk_server.h"
#include "p2c_cfg.h"
#include "p2c_log.h"

int
main (int argc, char **argv)
{
    char *bind = NULL;
    p2c_cfg_t table [] = {
        { "bind", P2C_CFG_STR, "tcp://127.0.0.1:5555", 0, 0, &bind,
          "ZeroMQ endpoint the nodes connect to" },
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
