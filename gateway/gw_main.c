/*  p2c2r-gateway: holds the clients' WebSocket connections and passes
    their messages to the scheduler and ledger through the broker. A thin
    main: settings, signals, the server actor. */
#include "gw_server.h"
#include "p2c_cfg.h"
#include "p2c_log.h"

#include <czmq.h>
#include <signal.h>
#include <string.h>

static gw_server_t *s_server = NULL;

static void
s_on_signal (int sig)
{
    (void) sig;
    if (s_server)
        gw_server_stop (s_server);
}

int
main (int argc, char **argv)
{
    char *listen = NULL, *broker = NULL, *node_id = NULL, *auth = NULL;
    long long max_frame = 0, default_deadline = 0, max_deadline = 0, grace = 0;
    long long auth_timeout = 0, send_queue = 0, send_queue_bytes = 0, max_bad = 0;
    p2c_cfg_t table [] = {
        { "listen", P2C_CFG_STR, "127.0.0.1:8765", 0, 0, &listen,
          "WebSocket and HTTP address, HOST:PORT" },
        { "broker", P2C_CFG_STR, "tcp://127.0.0.1:5555", 0, 0, &broker, "broker endpoint" },
        { "node-id", P2C_CFG_STR, "", 0, 0, &node_id,
          "node id at the broker (default: gateway-HOST-PID-RANDOM)" },
        { "auth", P2C_CFG_STR, "open", 0, 0, &auth,
          "registration: open (accounts made on first use) or apikey" },
        { "max-frame", P2C_CFG_INT, "8388608", 1024, 64LL * 1024 * 1024, &max_frame,
          "largest client message, bytes" },
        { "default-deadline-ms", P2C_CFG_INT, "30000", 100, 3600000, &default_deadline,
          "deadline of a task that names none" },
        { "max-deadline-ms", P2C_CFG_INT, "300000", 100, 3600000, &max_deadline,
          "longest deadline a task may ask for" },
        { "guard-grace-ms", P2C_CFG_INT, "5000", 0, 600000, &grace,
          "the deadline guard answers timeout this long after a task's deadline" },
        { "auth-timeout-ms", P2C_CFG_INT, "5000", 100, 600000, &auth_timeout,
          "registration fails as unavailable without the ledger's answer by then" },
        { "send-queue", P2C_CFG_INT, "1024", 1, 1000000, &send_queue,
          "frames queued to one client at most; a client that does not read is dropped" },
        { "send-queue-bytes", P2C_CFG_INT, "67108864", 1024, 1LL << 34, &send_queue_bytes,
          "bytes queued to one client at most" },
        { "max-bad-frames", P2C_CFG_INT, "20", 1, 100000, &max_bad,
          "bad frames in a row before the connection is closed (1008)" },
        { NULL, 0, NULL, 0, 0, NULL, NULL }
    };
    bool verbose = false;
    int rc = p2c_cfg_parse (table, &argc, argv, "p2c2r-gateway", "[options]", &verbose);
    if (rc != 0) {
        p2c_cfg_free (table);
        return rc > 0 ? 0 : 1;
    }
    p2c_log_init ("gateway", verbose);

    gw_settings_t st;
    memset (&st, 0, sizeof st);
    char *host = NULL;
    if (gw_parse_listen (listen, &host, &st.port) != 0) {
        fprintf (stderr, "p2c2r-gateway: --listen wants HOST:PORT, not '%s'\n", listen);
        p2c_cfg_free (table);
        return 1;
    }
    if (strcmp (auth, "open") && strcmp (auth, "apikey")) {
        fprintf (stderr, "p2c2r-gateway: --auth is open or apikey, not '%s'\n", auth);
        free (host);
        p2c_cfg_free (table);
        return 1;
    }
    st.host = host;
    st.broker = broker;
    st.node_id = node_id;
    st.auth_open = !strcmp (auth, "open");
    st.max_frame = (size_t) max_frame;
    st.default_deadline_ms = (uint32_t) default_deadline;
    st.max_deadline_ms = (uint32_t) max_deadline;
    if (st.default_deadline_ms > st.max_deadline_ms)
        st.default_deadline_ms = st.max_deadline_ms;
    st.guard_grace_ms = grace;
    st.auth_timeout_ms = auth_timeout;
    st.send_queue = (size_t) send_queue;
    st.send_queue_bytes = (size_t) send_queue_bytes;
    st.max_bad_frames = (unsigned) max_bad;

    //  czmq would take SIGINT/SIGTERM for itself; the loop handles them
    zsys_handler_set (NULL);
    s_server = gw_server_new (&st);
    free (host);
    if (!s_server) {
        p2c_cfg_free (table);
        fatal ("gateway: cannot start");
    }
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset (&sa.sa_mask);
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
    signal (SIGPIPE, SIG_IGN);

    gw_server_run (s_server);
    gw_server_destroy (&s_server);
    p2c_cfg_free (table);
    log_info ("gateway: stopped");
    return 0;
}
