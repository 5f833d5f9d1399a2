/*  Self-tests of p2c2r-ctl's parts that need no database: money parsing,
    command dispatch of bad command lines, and the writer's clear failure
    when no broker answers. Every command against a real ledger is tested
    end to end in tests/e2e/test_ledger_ctl.sh. */
#include "ctl.h"
#include "ctl_config.h"
#include "p2c_log.h"
#include "p2c_test.h"

#include <czmq.h>

static int
s_run (int argc, char **argv)
{
    ctl_t ctl;
    memset (&ctl, 0, sizeof ctl);
    ctl.argc = argc;
    ctl.argv = argv;
    return ctl_run (&ctl);
}

int
main (int argc, char *argv [])
{
    bool verbose = argc > 1 && !strcmp (argv [1], "-v");
    p2c_log_init ("test_ctl", verbose);
    zsys_init ();
    zsys_set_logstream (NULL);
    ctl_util_test (verbose);
    ctl_config_test (verbose);
    ctl_alerts_test (verbose);

    //  Unknown commands and wrong argument counts are usage errors, found
    //  before any connection is used
    char *unknown [] = { "frobnicate" };
    P2C_CHECK (s_run (1, unknown) == CTL_EXIT_ERROR);
    char *no_sub [] = { "account" };
    P2C_CHECK (s_run (1, no_sub) == CTL_EXIT_ERROR);
    char *bad_sub [] = { "payout", "steal" };
    P2C_CHECK (s_run (2, bad_sub) == CTL_EXIT_ERROR);
    char *too_many [] = { "audit", "now", "please" };
    P2C_CHECK (s_run (3, too_many) == CTL_EXIT_ERROR);
    char *too_few [] = { "credit", "alice" };
    P2C_CHECK (s_run (2, too_few) == CTL_EXIT_ERROR);
    char *bad_rate [] = { "rates", "set", "0.01", "0.15", "20000" };
    P2C_CHECK (s_run (5, bad_rate) == CTL_EXIT_ERROR);
    char *bad_n [] = { "top-peers", "ten" };
    P2C_CHECK (s_run (2, bad_n) == CTL_EXIT_ERROR);

    //  No broker: the write fails with CTL_EXIT_ERROR after the timeout
    json_t *result = NULL;
    json_t *args = json_pack ("{s:i}", "account_id", 1);
    int64_t start = zclock_mono ();
    P2C_CHECK (ctl_admin_call ("tcp://127.0.0.1:1", 700, "account-disable", args, &result)
               == CTL_EXIT_ERROR);
    P2C_CHECK (result == NULL);
    P2C_CHECK (zclock_mono () - start >= 600 && zclock_mono () - start < 5000);
    json_decref (args);
    return p2c_test_report ("ctl");
}
