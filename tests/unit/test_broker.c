/*  Self-tests of the broker: the routing table alone, then the real actor
    with real nodes over TCP on loopback. */
#include "brk_config.h"
#include "brk_auth.h"
#include "brk_server.h"
#include "brk_table.h"
#include "p2c_log.h"
#include "p2c_test.h"

#include <string.h>

int
main (int argc, char **argv)
{
    bool verbose = argc > 1 && !strcmp (argv [1], "-v");
    p2c_log_init ("test", verbose);
    zsys_init ();
    zsys_set_logstream (NULL);
    brk_table_test (verbose);
    brk_server_test (verbose);
    brk_config_test (verbose);
    brk_auth_test (verbose);
    brk_server_curve_test (verbose);
    return p2c_test_report ("broker");
}
