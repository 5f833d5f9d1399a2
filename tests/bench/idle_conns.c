/*  Opens --count idle WebSocket connections to a gateway from one process,
    holds them, and reports how many were established at once. `make bench`
    reads the gateway's memory around it to get bytes per connection. */
#include "p2c_cfg.h"
#include "p2c_time.h"

#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

static long long s_open, s_failed, s_closed;

static int
s_callback (struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    (void) wsi;
    (void) user;
    (void) in;
    (void) len;
    switch (reason) {
        case LWS_CALLBACK_CLIENT_ESTABLISHED:
            s_open++;
            break;
        case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
            s_failed++;
            break;
        case LWS_CALLBACK_CLIENT_CLOSED:
            s_open--;
            s_closed++;
            break;
        default:
            break;
    }
    return 0;
}

typedef struct {
    long long port;
    long long count;
    long long hold_s;
    long long source_ips;
} s_settings_t;

#define S_F(field) P2C_CFG_FIELD (s_settings_t, field)
static const p2c_cfg_t s_table [] = {
    { "port", P2C_CFG_LLONG, S_F (port), "8765", 1, 65535,
      .help = "gateway port on 127.0.0.1" },
    { "count", P2C_CFG_LLONG, S_F (count), "10000", 1, 200000,
      .help = "connections to open" },
    { "hold-s", P2C_CFG_LLONG, S_F (hold_s), "5", 0, 3600,
      .help = "seconds to hold them once open" },
    { "source-ips", P2C_CFG_LLONG, S_F (source_ips), "1", 1, 250,
      .help = "spread connections over 127.0.0.X source addresses (per-IP limits)" },
    { .name = NULL }
};
#undef S_F

static const p2c_cfg_spec_t s_spec = { "idle_conns", "[options]", s_table, NULL };

int
main (int argc, char **argv)
{
    s_settings_t cfg;
    bool verbose = false;
    int rc = p2c_cfg_parse (&s_spec, &cfg, &argc, argv, &verbose);
    if (rc != 0)
        return rc < 0 ? 2 : 0;
    struct rlimit rl;
    getrlimit (RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit (RLIMIT_NOFILE, &rl);
    lws_set_log_level (LLL_ERR, NULL);
    static struct lws_protocols protocols [] = {
        { "idle", s_callback, 0, 4096, 0, NULL, 0 },
        { NULL, NULL, 0, 0, 0, NULL, 0 }
    };
    struct lws_context_creation_info info;
    memset (&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.fd_limit_per_thread = (unsigned) cfg.count + 64;
    struct lws_context *context = lws_create_context (&info);
    if (!context)
        return 1;
    int64_t deadline = p2c_now_ms () + 120000;
    long long started = 0;
    char sources [250][24];
    for (int i = 0; i < cfg.source_ips; i++)
        snprintf (sources [i], sizeof sources [i], "127.0.0.%d", i + 1);
    while (p2c_now_ms () < deadline && s_open + s_failed < cfg.count) {
        //  Start connections in waves so the listen backlog keeps up
        while (started < cfg.count && started - s_open - s_failed - s_closed < 200) {
            struct lws_client_connect_info ci;
            memset (&ci, 0, sizeof ci);
            ci.context = context;
            ci.address = "127.0.0.1";
            ci.port = (int) cfg.port;
            ci.path = "/";
            ci.host = "127.0.0.1";
            ci.origin = "127.0.0.1";
            ci.iface = sources [started % cfg.source_ips];
            if (!lws_client_connect_via_info (&ci))
                s_failed++;
            started++;
        }
        lws_service (context, 0);
    }
    long long held = s_open;
    printf ("open %lld failed %lld\n", held, s_failed);
    fflush (stdout);
    int64_t until = p2c_now_ms () + cfg.hold_s * 1000;
    while (p2c_now_ms () < until)
        lws_service (context, 0);
    printf ("held %lld\n", s_open);
    lws_context_destroy (context);
    return held == cfg.count ? 0 : 1;
}
