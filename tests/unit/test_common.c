/*  Self-tests of the common library. */
#include "p2c_cfg.h"
#include "p2c_log.h"
#include "p2c_money.h"
#include "p2c_msg.h"
#include "p2c_node.h"
#include "p2c_tasks.h"
#include "p2c_test.h"

#include <string.h>

int
main (int argc, char **argv)
{
    bool verbose = argc > 1 && !strcmp (argv [1], "-v");
    p2c_log_init ("test", verbose);
    p2c_cfg_test (verbose);
    p2c_msg_test (verbose);
    p2c_money_test (verbose);
    p2c_tasks_test (verbose);
    p2c_node_test (verbose);
    return p2c_test_report ("common");
}
