/*  p2c2r-ledger: the only writer of PostgreSQL. Applies the schema
    migrations, answers AuthRequest, settles tasks in batched, idempotent
    transactions, runs the operator's writes from p2c2r-ctl and tells the
    scheduler the gamers' balances (see led_server.h). This file parses the
    settings (led_config.c) and runs the server actor until a signal. */
#include "led_config.h"
#include "p2c_log.h"
#include "p2c_node.h"

int
main (int argc, char *argv [])
{
    led_config_t cfg;
    bool verbose = false;
    int rc = led_config_load (&cfg, argc, argv, &verbose);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    p2c_log_init ("ledger", verbose);
    if (p2c_node_setup (cfg.bus.curve, cfg.bus.keys, cfg.bus.key_name) != 0) {
        led_config_free (&cfg);
        return 2;
    }
    zsys_init ();
    zsys_set_logstream (NULL);
    const led_worker_args_t *db = &cfg.server.db;
    log_info ("starting sql_dir=%s schema=%s gamer_rate=%lld peer_rate=%lld fee_bp=%d"
              " starting_credit=%lld payout_threshold=%lld", db->sql_dir, db->schema,
              (long long) db->rates.gamer_per_hour, (long long) db->rates.peer_per_hour,
              (int) db->rates.fee_bp, (long long) db->policy.starting_credit_pico,
              (long long) db->policy.payout_threshold_pico);
    zactor_t *server = zactor_new (led_server_actor, &cfg.server);
    int status = 0;
    //  Blocks until the server says it stopped or failed, or a signal
    char *said = zstr_recv (server);
    if (said && !strcmp (said, "FAILED"))
        status = 1;
    zstr_free (&said);
    zactor_destroy (&server);
    led_config_free (&cfg);
    log_info ("stopped");
    return status;
}
