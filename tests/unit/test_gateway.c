/*  Self-tests of the gateway's classes. */
#include "gw_json.h"
#include "gw_authcache.h"
#include "gw_config.h"
#include "gw_limits.h"
#include "gw_metrics.h"
#include "gw_pending.h"
#include "gw_server.h"
#include "gw_session.h"
#include "gw_sessions.h"
#include "gw_taskid.h"
#include "p2c_log.h"
#include "p2c_test.h"

#include <string.h>

int
main (int argc, char **argv)
{
    bool verbose = argc > 1 && !strcmp (argv [1], "-v");
    p2c_log_init ("test", verbose);
    gw_taskid_test (verbose);
    gw_pending_test (verbose);
    gw_session_test (verbose);
    gw_sessions_test (verbose);
    gw_json_test (verbose);
    gw_limits_test (verbose);
    gw_metrics_test (verbose);
    gw_authcache_test (verbose);
    gw_server_test (verbose);
    gw_config_test (verbose);
    return p2c_test_report ("gateway");
}
