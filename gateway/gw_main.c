/*  p2c2r-gateway: holds the clients' WebSocket connections and passes
    their messages to the scheduler and ledger through the broker. A thin
    main: settings, signals, the server actor. */
#include "gw_server.h"
#include "p2c_cfg.h"
#include "p2c_log.h"
#include "p2c_node.h"

#include <czmq.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>

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
    long long auth_cache = 0, auth_recheck = 0, rate = 0, burst = 0, per_ip = 0;
    long long connect_rate = 0, connect_burst = 0, ping = 0, pong = 0, reg_timeout = 0;
    long long drain = 0, stats_timeout = 0;
    char *tls_cert = NULL, *tls_key = NULL, *proxies = NULL, *region = NULL;
    //  The bus's keys (docs/trust.md)
    char *keys = NULL, *key_name = NULL;
    bool curve = true;
    p2c_cfg_t table [] = {
        { "keys", P2C_CFG_STR, "var/keys", 0, 0, &keys,
          "key directory of the bus (p2c2r-ctl keys)" },
        { "key-name", P2C_CFG_STR, "gateway", 0, 0, &key_name,
          "this node's key pair in --keys: NAME.key_secret" },
        { "curve", P2C_CFG_BOOL, "true", 0, 0, &curve,
          "CURVE to the broker; false only to measure its cost" },
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
          "bad frames (or rate-limited messages) in a row before the connection is closed (1008)" },
        { "auth-cache-ms", P2C_CFG_INT, "30000", 0, 3600000, &auth_cache,
          "an API key the ledger accepted is trusted this long for new registrations" },
        { "auth-recheck-ms", P2C_CFG_INT, "5000", 500, 3600000, &auth_recheck,
          "keys of live sessions are asked again this often; revoked ones are closed (1008)" },
        { "tls-cert", P2C_CFG_STR, "", 0, 0, &tls_cert,
          "PEM certificate (chain) file: serve wss:// and https:// (with --tls-key)" },
        { "tls-key", P2C_CFG_STR, "", 0, 0, &tls_key, "PEM private key file of --tls-cert" },
        { "rate-msgs", P2C_CFG_INT, "10000", 1, 1000000, &rate,
          "messages per second per connection (token bucket); over it: rate_limited" },
        { "rate-burst", P2C_CFG_INT, "20000", 1, 1000000, &burst,
          "messages a connection may send in a burst" },
        { "max-conns-per-ip", P2C_CFG_INT, "256", 1, 10000000, &per_ip,
          "live connections per client address" },
        { "connect-rate", P2C_CFG_INT, "200", 1, 1000000, &connect_rate,
          "new connections per second per client address" },
        { "connect-burst", P2C_CFG_INT, "400", 1, 10000000, &connect_burst,
          "new connections per client address allowed in a burst" },
        { "region", P2C_CFG_STR, "", 0, 0, &region,
          "this gateway's region: its gamers' tasks go to peers of that region first" },
        { "trusted-proxies", P2C_CFG_STR, "", 0, 0, &proxies,
          "comma-separated proxy addresses (HAProxy) whose X-Forwarded-For names the client" },
        { "ping-s", P2C_CFG_INT, "30", 1, 3600, &ping,
          "an idle connection is pinged after this many seconds" },
        { "pong-timeout-s", P2C_CFG_INT, "30", 1, 3600, &pong,
          "... and dropped when still silent this many seconds later" },
        { "register-timeout-ms", P2C_CFG_INT, "10000", 100, 86400000, &reg_timeout,
          "a connection that has not registered by then is closed (1008)" },
        { "drain-ms", P2C_CFG_INT, "10000", 0, 3600000, &drain,
          "on SIGTERM, in-flight tasks get this long before clients are closed (1001)" },
        { "stats-timeout-ms", P2C_CFG_INT, "500", 10, 60000, &stats_timeout,
          "/api/stats waits this long for the scheduler's and ledger's figures" },
        { NULL, 0, NULL, 0, 0, NULL, NULL }
    };
    bool verbose = false;
    int rc = p2c_cfg_parse (table, &argc, argv, "p2c2r-gateway", "[options]", &verbose);
    if (rc != 0) {
        p2c_cfg_free (table);
        return rc > 0 ? 0 : 1;
    }
    p2c_log_init ("gateway", verbose);
    if (p2c_node_setup (curve, keys, key_name) != 0) {
        p2c_cfg_free (table);
        return 1;
    }

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
    st.auth_cache_ms = auth_cache;
    st.auth_recheck_ms = auth_recheck;
    st.tls_cert = tls_cert;
    st.tls_key = tls_key;
    st.rate_msgs = (double) rate;
    st.rate_burst = (double) burst;
    st.max_conns_per_ip = (size_t) per_ip;
    st.connect_rate = (double) connect_rate;
    st.connect_burst = (double) connect_burst;
    st.trusted_proxies = proxies;
    st.region = region;
    st.ping_s = (int) ping;
    st.pong_timeout_s = (int) pong;
    st.register_timeout_ms = reg_timeout;
    st.drain_ms = drain;
    st.stats_timeout_ms = stats_timeout;
    if ((*tls_cert != 0) != (*tls_key != 0)) {
        fprintf (stderr, "p2c2r-gateway: --tls-cert and --tls-key go together\n");
        free (host);
        p2c_cfg_free (table);
        return 1;
    }
    //  Every connection is a descriptor: take what the hard limit allows
    //  (before lws sizes its tables from it)
    struct rlimit rl;
    if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit (RLIMIT_NOFILE, &rl) != 0)
            log_warn ("gateway: cannot raise the descriptor limit");
    }
    if (getrlimit (RLIMIT_NOFILE, &rl) == 0)
        log_info ("gateway: descriptor limit nofile=%llu", (unsigned long long) rl.rlim_cur);

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
