/*  Self-tests of the ledger's classes. The store, worker and server tests
    need PostgreSQL: P2C2R_TEST_DB holds a conninfo (tests/run.sh starts a
    private cluster with deploy/local/pg.sh); without it they fail. Run from
    the repository root (migrations from ledger/sql, or P2C2R_TEST_SQL_DIR). */
#include "led_config.h"
#include "led_server.h"
#include "led_store.h"
#include "led_worker.h"
#include "p2c_log.h"
#include "p2c_test.h"

#include <czmq.h>

int
main (int argc, char *argv [])
{
    bool verbose = argc > 1 && !strcmp (argv [1], "-v");
    p2c_log_init ("test_ledger", verbose);
    zsys_init ();
    zsys_set_logstream (NULL);
    led_store_test (verbose);
    led_worker_test (verbose);
    led_server_test (verbose);
    led_config_test (verbose);
    return p2c_test_report ("ledger");
}
