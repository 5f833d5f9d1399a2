/*  Self-tests of the gateway's classes, one entry per class: run one with
    `build/test/test_gateway --test NAME` (--list names them). */
#include "gw_json.h"
#include "gw_authcache.h"
#include "gw_core_int.h"
#include "gw_admin.h"
#include "gw_files.h"
#include "gw_http.h"
#include "gw_install.h"
#include "gw_config.h"
#include "gw_limits.h"
#include "gw_metrics.h"
#include "gw_pending.h"
#include "gw_server.h"
#include "gw_session.h"
#include "gw_sessions.h"
#include "gw_taskid.h"
#include "p2c_test.h"

static const p2c_test_entry_t s_tests [] = {
    { "gw_taskid",      gw_taskid_test },
    { "gw_pending",     gw_pending_test },
    { "gw_session",     gw_session_test },
    { "gw_sessions",    gw_sessions_test },
    { "gw_json",        gw_json_test },
    { "gw_limits",      gw_limits_test },
    { "gw_metrics",     gw_metrics_test },
    { "gw_authcache",   gw_authcache_test },
    { "gw_core",        gw_core_test },
    { "gw_register",    gw_register_test },
    { "gw_tasks",       gw_tasks_test },
    { "gw_earnings",    gw_earnings_test },
    { "gw_subscribe",   gw_subscribe_test },
    { "gw_files",       gw_files_test },
    { "gw_http",        gw_http_test },
    { "gw_install",     gw_install_test },
    { "gw_admin",       gw_admin_test },
    { "gw_server",      gw_server_test },
    { "gw_config",      gw_config_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return p2c_test_main (argc, argv, "gateway", s_tests);
}
