/*  Round trips against the echo server: one WebSocket, --concurrency frames
    in flight, --count in all; prints "tasks_per_s p50_ms p99_ms". Frames are
    the size of a typical submit so the comparison with P2C2R is fair. */
#include "p2c_cfg.h"
#include "p2c_time.h"

#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    long long port;
    long long count;            //  frames in all
    long long conc;             //  frames in flight
    long long size;             //  bytes per frame
} s_settings_t;

static s_settings_t s_cfg;
static long long s_sent, s_done;
static int64_t *s_start_us, *s_rtt_us;
static int64_t s_t0, s_t1;
static int s_finished, s_failed;

static int
s_cmp (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

static int
s_callback (struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    (void) user;
    switch (reason) {
        case LWS_CALLBACK_CLIENT_ESTABLISHED:
            s_t0 = p2c_now_us ();
            lws_callback_on_writable (wsi);
            break;
        case LWS_CALLBACK_CLIENT_WRITEABLE:
            if (s_sent < s_cfg.count && s_sent - s_done < s_cfg.conc) {
                unsigned char buf [LWS_PRE + 4096];
                memset (buf + LWS_PRE, 'x', (size_t) s_cfg.size);
                memcpy (buf + LWS_PRE, &s_sent, sizeof s_sent);
                s_start_us [s_sent] = p2c_now_us ();
                if (lws_write (wsi, buf + LWS_PRE, (size_t) s_cfg.size, LWS_WRITE_BINARY) < 0)
                    return -1;
                s_sent++;
                if (s_sent < s_cfg.count && s_sent - s_done < s_cfg.conc)
                    lws_callback_on_writable (wsi);
            }
            break;
        case LWS_CALLBACK_CLIENT_RECEIVE:
            //  The sequence number leads the frame: only the first piece of a
            //  frame that arrives in pieces carries it
            if (lws_is_first_fragment (wsi) && len >= sizeof (long long)) {
                long long seq;
                memcpy (&seq, in, sizeof seq);
                if (seq >= 0 && seq < s_cfg.count) {
                    s_rtt_us [s_done++] = p2c_now_us () - s_start_us [seq];
                    if (s_done == s_cfg.count) {
                        s_t1 = p2c_now_us ();
                        s_finished = 1;
                        return -1;
                    }
                    lws_callback_on_writable (wsi);
                }
            }
            break;
        case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        case LWS_CALLBACK_CLIENT_CLOSED:
            if (!s_finished)
                s_failed = 1;
            s_finished = 1;
            break;
        default:
            break;
    }
    return 0;
}

#define S_F(field) P2C_CFG_FIELD (s_settings_t, field)
static const p2c_cfg_t s_table [] = {
    { "port", P2C_CFG_LLONG, S_F (port), "18900", 1, 65535,
      .help = "echo server port on 127.0.0.1" },
    { "count", P2C_CFG_LLONG, S_F (count), "20000", 1, 10000000, .help = "frames in all" },
    { "concurrency", P2C_CFG_LLONG, S_F (conc), "1", 1, 100000, .help = "frames in flight" },
    { "size", P2C_CFG_LLONG, S_F (size), "64", 8, 4096, .help = "bytes per frame" },
    { .name = NULL }
};
#undef S_F

static const p2c_cfg_spec_t s_spec = { "echo_client", "[options]", s_table, NULL };

int
main (int argc, char **argv)
{
    bool verbose = false;
    int rc = p2c_cfg_parse (&s_spec, &s_cfg, &argc, argv, &verbose);
    if (rc != 0)
        return rc < 0 ? 2 : 0;
    lws_set_log_level (LLL_ERR, NULL);
    s_start_us = calloc ((size_t) s_cfg.count, sizeof (int64_t));
    s_rtt_us = calloc ((size_t) s_cfg.count, sizeof (int64_t));
    static struct lws_protocols protocols [] = {
        { "echo", s_callback, 0, 65536, 0, NULL, 0 },
        { NULL, NULL, 0, 0, 0, NULL, 0 }
    };
    struct lws_context_creation_info info;
    memset (&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    struct lws_context *context = lws_create_context (&info);
    struct lws_client_connect_info ci;
    memset (&ci, 0, sizeof ci);
    ci.context = context;
    ci.address = "127.0.0.1";
    ci.port = (int) s_cfg.port;
    ci.path = "/";
    ci.host = "127.0.0.1";
    ci.origin = "127.0.0.1";
    ci.protocol = NULL;
    if (!lws_client_connect_via_info (&ci))
        return 1;
    int64_t deadline = p2c_now_us () + 120 * 1000000LL;
    while (!s_finished && p2c_now_us () < deadline)
        lws_service (context, 0);
    lws_context_destroy (context);
    if (s_failed || s_done < s_cfg.count) {
        fprintf (stderr, "echo_client: only %lld of %lld round trips\n", s_done, s_cfg.count);
        return 1;
    }
    qsort (s_rtt_us, (size_t) s_done, sizeof (int64_t), s_cmp);
    double secs = (double) (s_t1 - s_t0) / 1e6;
    printf ("%.1f %.3f %.3f\n", (double) s_done / secs, (double) s_rtt_us [s_done / 2] / 1000.0,
            (double) s_rtt_us [(s_done * 99) / 100] / 1000.0);
    free (s_start_us);
    free (s_rtt_us);
    return 0;
}
