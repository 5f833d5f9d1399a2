/*  The gateway's settings table (see gw_config.h). */
#include "gw_config.h"
#include "gw_install.h"
#include "p2c_cfg.h"
#include "p2c_test.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  In the order of gw_config_auth_t
static const char *const s_auth_names [] = { "open", "apikey", NULL };

#define S_F(field) P2C_CFG_FIELD (gw_config_t, field)
static const p2c_cfg_t s_table [] = {
    P2C_NODE_BUS_ENTRIES (gw_config_t, bus, "gateway"),
    { "listen", P2C_CFG_STR, S_F (listen), "127.0.0.1:8765",
      .help = "WebSocket and HTTP address, HOST:PORT" },
    { "broker", P2C_CFG_STR, S_F (server.broker), "tcp://127.0.0.1:5555",
      .help = "broker endpoint" },
    { "node-id", P2C_CFG_STR, S_F (server.node_id), "",
      .help = "node id at the broker (default: gateway-HOST-PID-RANDOM)" },
    { "auth", P2C_CFG_ENUM, S_F (auth), "open",
      .help = "registration: open (accounts made on first use) or apikey",
      .names = s_auth_names },
    { "max-frame", P2C_CFG_SIZE, S_F (server.max_frame), "8388608", 1024, 64LL * 1024 * 1024,
      .help = "largest client message, bytes" },
    { "max-input-bytes", P2C_CFG_SIZE, S_F (server.max_input_bytes), "134217728", 65536,
      1LL << 40, .help = "bytes of unfinished client messages all connections may hold together;"
      " a connection that would pass it is closed (1013)" },
    { "default-deadline-ms", P2C_CFG_UINT32, S_F (server.default_deadline_ms), "30000", 100,
      3600000, .help = "deadline of a task that names none" },
    { "max-deadline-ms", P2C_CFG_UINT32, S_F (server.max_deadline_ms), "300000", 100, 3600000,
      .help = "longest deadline a task may ask for" },
    { "guard-grace-ms", P2C_CFG_INT64, S_F (server.guard_grace_ms), "5000", 0, 600000,
      .help = "the deadline guard answers timeout this long after a task's deadline" },
    { "auth-timeout-ms", P2C_CFG_INT64, S_F (server.auth_timeout_ms), "5000", 100, 600000,
      .help = "registration fails as unavailable without the ledger's answer by then" },
    { "send-queue", P2C_CFG_SIZE, S_F (server.send_queue), "1024", 1, 1000000,
      .help = "frames queued to one client at most; a client that does not read is dropped" },
    { "send-queue-bytes", P2C_CFG_SIZE, S_F (server.send_queue_bytes), "67108864", 1024,
      1LL << 34, .help = "bytes queued to one client at most" },
    { "max-bad-frames", P2C_CFG_UINT32, S_F (server.max_bad_frames), "20", 1, 100000,
      .help = "bad frames (or rate-limited messages) in a row before the connection is closed"
      " (1008)" },
    { "auth-cache-ms", P2C_CFG_INT64, S_F (server.auth_cache_ms), "30000", 0, 3600000,
      .help = "an API key the ledger accepted is trusted this long for new registrations" },
    { "auth-recheck-ms", P2C_CFG_INT64, S_F (server.auth_recheck_ms), "5000", 500, 3600000,
      .help = "keys of live sessions are asked again this often; revoked ones are closed"
      " (1008)" },
    { "tls-cert", P2C_CFG_STR, S_F (server.tls_cert), "",
      .help = "PEM certificate (chain) file: serve wss:// and https:// (with --tls-key)" },
    { "tls-key", P2C_CFG_STR, S_F (server.tls_key), "",
      .help = "PEM private key file of --tls-cert" },
    { "rate-msgs", P2C_CFG_DOUBLE, S_F (server.rate_msgs), "10000", 1, 1000000,
      .help = "messages per second per connection (token bucket); over it: rate_limited" },
    { "rate-burst", P2C_CFG_DOUBLE, S_F (server.rate_burst), "20000", 1, 1000000,
      .help = "messages a connection may send in a burst" },
    { "max-conns-per-ip", P2C_CFG_SIZE, S_F (server.max_conns_per_ip), "256", 1, 10000000,
      .help = "live connections per client address" },
    { "connect-rate", P2C_CFG_DOUBLE, S_F (server.connect_rate), "200", 1, 1000000,
      .help = "new connections per second per client address" },
    { "connect-burst", P2C_CFG_DOUBLE, S_F (server.connect_burst), "400", 1, 10000000,
      .help = "new connections per client address allowed in a burst" },
    { "region", P2C_CFG_STR, S_F (server.region), "",
      .help = "this gateway's region: its gamers' tasks go to peers of that region first" },
    { "trusted-proxies", P2C_CFG_STR, S_F (server.trusted_proxies), "",
      .help = "comma-separated proxy addresses (HAProxy) whose X-Forwarded-For names the"
      " client" },
    { "ping-s", P2C_CFG_INT, S_F (server.ping_s), "30", 1, 3600,
      .help = "an idle connection is pinged after this many seconds" },
    { "pong-timeout-s", P2C_CFG_INT, S_F (server.pong_timeout_s), "30", 1, 3600,
      .help = "... and dropped when still silent this many seconds later" },
    { "register-timeout-ms", P2C_CFG_INT64, S_F (server.register_timeout_ms), "10000", 100,
      86400000, .help = "a connection that has not registered by then is closed (1008)" },
    { "drain-ms", P2C_CFG_INT64, S_F (server.drain_ms), "10000", 0, 3600000,
      .help = "on SIGTERM, in-flight tasks get this long before clients are closed (1001)" },
    { "stats-timeout-ms", P2C_CFG_INT64, S_F (server.stats_timeout_ms), "500", 10, 60000,
      .help = "/api/stats waits this long for the scheduler's and ledger's figures" },
    { "web-root", P2C_CFG_STR, S_F (server.web_root), "",
      .help = "static files served over HTTP (default: web/ beside bin/ when run from the"
      " source tree, else PREFIX/share/p2c2r/web)" },
    { "public-url", P2C_CFG_STR, S_F (server.public_url), "",
      .help = "this server's address as contributors reach it, http(s)://HOST[:PORT], filled"
      " into /install.sh (default: each request's Host header)" },
    { "downloads-dir", P2C_CFG_STR, S_F (server.downloads_dir), "",
      .help = "install.sh and the agent binary p2c2r-agent-linux-amd64 (with its .sha256)"
      " served under /install.sh and /downloads/ (default: PREFIX/share/p2c2r/downloads)" },
    { "chart-js-dir", P2C_CFG_STR, S_F (server.vendor_root), "/usr/share/javascript/chart.js",
      .help = "Chart.js (Debian's libjs-chart.js), served as /vendor/chart.js/ for the pages" },
    { "admin-listen", P2C_CFG_STR, S_F (admin_listen), "127.0.0.1:8766",
      .help = "the admin listener, HOST:PORT: /metrics, /api/stats and the operator's page"
      " (never expose it; \"\": off)" },
    { "admin-token-file", P2C_CFG_STR, S_F (server.admin_token_file), "",
      .help = "the operator's token (a file only its owner may read); admin requests need"
      " Authorization: Bearer TOKEN (without one: every admin request is refused, 401)" },
    { "max-subscriptions", P2C_CFG_SIZE, S_F (server.max_subscriptions), "1000", 0, 1000000,
      .help = "live dashboard subscriptions (JSON subscribe) at once; each costs the ledger"
      " one read a second" },
    { .name = NULL }
};
#undef S_F

static int
s_check (void *arg)
{
    gw_config_t *self = (gw_config_t *) arg;
    gw_settings_t *st = &self->server;
    char *host = NULL;
    if (gw_parse_listen (self->listen, &host, &st->port) != 0) {
        fprintf (stderr, "p2c2r-gateway: --listen wants HOST:PORT, not '%s'\n", self->listen);
        return -1;
    }
    //  Kept in the struct, so that settings own no memory beyond the table's
    size_t hlen = strlen (host);
    if (hlen > GW_CONFIG_HOST_MAX) {
        fprintf (stderr, "p2c2r-gateway: --listen: the host is longer than %d\n",
                 GW_CONFIG_HOST_MAX);
        free (host);
        return -1;
    }
    memcpy (self->host, host, hlen + 1);
    free (host);
    st->host = self->host;
    st->admin_host = NULL;
    if (*self->admin_listen) {
        host = NULL;
        if (gw_parse_listen (self->admin_listen, &host, &st->admin_port) != 0
            || strlen (host) > GW_CONFIG_HOST_MAX) {
            fprintf (stderr, "p2c2r-gateway: --admin-listen wants HOST:PORT or \"\", not '%s'\n",
                     self->admin_listen);
            free (host);
            return -1;
        }
        memcpy (self->admin_host, host, strlen (host) + 1);
        free (host);
        st->admin_host = self->admin_host;
    }
    st->auth_open = self->auth == GW_CONFIG_AUTH_OPEN;
    if (st->default_deadline_ms > st->max_deadline_ms)
        st->default_deadline_ms = st->max_deadline_ms;
    if ((*st->tls_cert != 0) != (*st->tls_key != 0)) {
        fprintf (stderr, "p2c2r-gateway: --tls-cert and --tls-key go together\n");
        return -1;
    }
    if (*st->public_url && !gw_install_url_ok (st->public_url)) {
        fprintf (stderr, "p2c2r-gateway: --public-url wants http(s)://HOST[:PORT], not '%s'\n",
                 st->public_url);
        return -1;
    }
    return 0;
}

static const p2c_cfg_spec_t s_spec = { "p2c2r-gateway", "[options]", s_table, s_check };

//  gw_config_defaults, gw_config_load, gw_config_free
P2C_CFG_FUNCTIONS (gw_config, gw_config_t, &s_spec)

void
gw_config_test (bool verbose)
{
    (void) verbose;
    gw_config_t cfg;
    gw_config_defaults (&cfg);
    P2C_CHECK (!strcmp (cfg.server.host, "127.0.0.1") && cfg.server.port == 8765);
    P2C_CHECK (cfg.server.auth_open && cfg.server.max_frame == 8388608);
    P2C_CHECK (cfg.server.rate_msgs == 10000.0 && cfg.server.ping_s == 30);
    P2C_CHECK (cfg.server.default_deadline_ms == 30000 && cfg.server.max_deadline_ms == 300000);
    P2C_CHECK (!strcmp (cfg.server.tls_cert, "") && !strcmp (cfg.server.region, ""));
    P2C_CHECK (cfg.server.admin_host && !strcmp (cfg.server.admin_host, "127.0.0.1")
               && cfg.server.admin_port == 8766 && !strcmp (cfg.server.admin_token_file, ""));
    P2C_CHECK (!strcmp (cfg.server.vendor_root, "/usr/share/javascript/chart.js")
               && cfg.server.max_subscriptions == 1000);
    gw_config_free (&cfg);
    P2C_CHECK (cfg.server.broker == NULL);

    //  The deadline default is cut to the longest; apikey turns open off
    char a0 [] = "p2c2r-gateway", a1 [] = "--listen", a2 [] = ":9000", a3 [] = "--auth",
         a4 [] = "apikey", a5 [] = "--max-deadline-ms", a6 [] = "1000";
    char *argv [] = { a0, a1, a2, a3, a4, a5, a6, NULL };
    P2C_CHECK (gw_config_load (&cfg, 7, argv, NULL) == 0);
    P2C_CHECK (!strcmp (cfg.server.host, "") && cfg.server.port == 9000);
    P2C_CHECK (!cfg.server.auth_open);
    P2C_CHECK (cfg.server.default_deadline_ms == 1000 && cfg.server.max_deadline_ms == 1000);
    gw_config_free (&cfg);

    //  Refused: a listen without a port, a mode not known, a key without
    //  its certificate
    char b1 [] = "127.0.0.1", b2 [] = "closed", b3 [] = "--tls-key", b4 [] = "/k.pem";
    char *argv2 [] = { a0, a1, b1, NULL };
    P2C_CHECK (gw_config_load (&cfg, 3, argv2, NULL) == -1);
    char *argv3 [] = { a0, a3, b2, NULL };
    P2C_CHECK (gw_config_load (&cfg, 3, argv3, NULL) == -1);
    char *argv4 [] = { a0, b3, b4, NULL };
    P2C_CHECK (gw_config_load (&cfg, 3, argv4, NULL) == -1);
    //  ... a public URL a shell would read more into
    char c1 [] = "--public-url", c2 [] = "https://x.org;id", c3 [] = "https://x.org:8443";
    char *argv5 [] = { a0, c1, c2, NULL };
    P2C_CHECK (gw_config_load (&cfg, 3, argv5, NULL) == -1);
    char *argv6 [] = { a0, c1, c3, NULL };
    P2C_CHECK (gw_config_load (&cfg, 3, argv6, NULL) == 0);
    P2C_CHECK (!strcmp (cfg.server.public_url, "https://x.org:8443"));
    gw_config_free (&cfg);
    //  The admin listener: off with "", refused without a port
    char d1 [] = "--admin-listen", d2 [] = "", d3 [] = "localhost";
    char *argv7 [] = { a0, d1, d2, NULL };
    P2C_CHECK (gw_config_load (&cfg, 3, argv7, NULL) == 0 && cfg.server.admin_host == NULL);
    gw_config_free (&cfg);
    char *argv8 [] = { a0, d1, d3, NULL };
    P2C_CHECK (gw_config_load (&cfg, 3, argv8, NULL) == -1);
}
