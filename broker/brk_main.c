/*  p2c2r-broker: routes frames between the server processes. A thin main:
    settings, then the broker actor until SIGINT/SIGTERM. */
#include "brk_server.h"
#include "p2c_cfg.h"
#include "p2c_log.h"

int
main (int argc, char **argv)
{
    char *bind = NULL;
    //  The bus's keys (docs/trust.md)
    char *keys = NULL;
    bool curve = true;
    p2c_cfg_t table [] = {
        { "bind", P2C_CFG_STR, "tcp://127.0.0.1:5555", 0, 0, &bind,
          "ZeroMQ endpoint the nodes connect to" },
        { "keys", P2C_CFG_STR, "var/keys", 0, 0, &keys,
          "key directory: the broker's pair and the allow-list (p2c2r-ctl keys)" },
        { "curve", P2C_CFG_BOOL, "true", 0, 0, &curve,
          "CURVE and the allow-list; false lets any process join (to measure the cost only)" },
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
    brk_server_args_t args = { bind, curve, keys, false };
    zactor_t *broker = zactor_new (brk_server_actor, &args);
    if (!broker || args.failed)
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
