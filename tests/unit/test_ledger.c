/*  Self-tests of the ledger's classes, one entry per class (--test NAME
    runs one, --list names them). They need PostgreSQL: P2C2R_TEST_DB holds
    a conninfo (tests/run.sh starts a private cluster with
    deploy/local/pg.sh); without it they fail. Each class works in a schema
    of its own (led_fixture). Run from the repository root (migrations from
    ledger/sql, or P2C2R_TEST_SQL_DIR). */
#include "led_metrics.h"
#include "led_accounts.h"
#include "led_admin.h"
#include "led_adminlog.h"
#include "led_auth.h"
#include "led_earnings.h"
#include "led_money.h"
#include "led_fixture.h"
#include "led_migrate.h"
#include "led_payouts.h"
#include "led_rates.h"
#include "led_roles.h"
#include "led_config.h"
#include "led_server.h"
#include "led_settle.h"
#include "led_store.h"
#include "led_worker.h"
#include "p2c_test.h"

#include <czmq.h>

static const p2c_test_entry_t s_tests [] = {
    { "led_fixture",  led_fixture_test },
    { "led_store",    led_store_test },
    { "led_migrate",  led_migrate_test },
    { "led_settle",   led_settle_test },
    { "led_auth",     led_auth_test },
    { "led_admin",    led_admin_test },
    { "led_adminlog", led_adminlog_test },
    { "led_accounts", led_accounts_test },
    { "led_payouts",  led_payouts_test },
    { "led_rates",    led_rates_test },
    { "led_roles",    led_roles_test },
    { "led_earnings", led_earnings_test },
    { "led_money", led_money_test },
    { "led_worker",   led_worker_test },
    { "led_server",   led_server_test },
    { "led_config",   led_config_test },
    { "led_metrics",  led_metrics_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    //  czmq must not log on its own (the tests start actors)
    zsys_init ();
    zsys_set_logstream (NULL);
    return p2c_test_main (argc, argv, "ledger", s_tests);
}
