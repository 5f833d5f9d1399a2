/*  Self-tests of the common library. */
#include "p2c_auth.h"
#include "p2c_cfg.h"
#include "p2c_cost.h"
#include "p2c_drain.h"
#include "p2c_frame.h"
#include "p2c_keys.h"
#include "p2c_metrics_http.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_money.h"
#include "p2c_sha256.h"
#include "p2c_msg.h"
#include "p2c_node.h"
#include "p2c_tasks.h"
#include "p2c_test.h"

#include <string.h>

static const p2c_test_entry_t s_tests [] = {
    { "p2c_cfg",    p2c_cfg_test },
    { "p2c_frame",  p2c_frame_test },
    { "p2c_msg",    p2c_msg_test },
    { "p2c_money",  p2c_money_test },
    { "p2c_tasks",  p2c_tasks_test },
    { "p2c_cost",   p2c_cost_test },
    { "p2c_node",   p2c_node_test },
    { "p2c_auth",   p2c_auth_test },
    { "p2c_keys",   p2c_keys_test },
    { "p2c_metrics_http", p2c_metrics_http_test },
    { "p2c_drain",  p2c_drain_test },
    { "p2c_log",    p2c_log_test },
    { "p2c_mem",    p2c_mem_test },
    { "p2c_sha256", p2c_sha256_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return p2c_test_main (argc, argv, "common", s_tests);
}
