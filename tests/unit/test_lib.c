/*  Self-tests of libp2c2r (lib/): the connection class (URL parsing,
    backoff, the close-code policy) and the client's paths that need no
    server (codes, bounds, queueing, deadlines, cancels, both modes). The
    client against the real stack is in tests/e2e/test_sdk_*.sh. */
#include "p2l_conn.h"
#include "p2c_test.h"

#include <libwebsockets.h>
#include <signal.h>

static const p2c_test_entry_t s_tests [] = {
    { "p2l_conn",   p2l_conn_test },
    { "p2l_client", p2l_client_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    signal (SIGPIPE, SIG_IGN);
    //  The library leaves libwebsockets' process-wide log to the program
    lws_set_log_level (LLL_ERR, NULL);
    return p2c_test_main (argc, argv, "lib", s_tests);
}
