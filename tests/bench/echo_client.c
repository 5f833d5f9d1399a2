/*  Round trips against the echo server: one WebSocket, --concurrency frames
    in flight, --count in all; prints "tasks_per_s p50_ms p99_ms". Frames are
    the size of a typical submit so the comparison with P2C2R is fair. */
#include "p2c_cfg.h"
#include "p2c_time.h"

#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

static long long s_count, s_conc, s_size;
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
            if (s_sent < s_count && s_sent - s_done < s_conc) {
                unsigned char buf [LWS_PRE + 4096];
                memset (buf + LWS_PRE, 'x', (size_t) s_size);
                memcpy (buf + LWS_PRE, &s_sent, sizeof s_sent);
                s_start_us [s_sent] = p2c_now_us ();
                if (lws_write (wsi, buf + LWS_PRE, (size_t) s_size, LWS_WRITE_BINARY) < 0)
                    return -1;
                s_sent++;
                if (s_sent < s_count && s_sent - s_done < s_conc)
                    lws_callback_on_writable (wsi);
            }
            break;
        case LWS_CALLBACK_CLIENT_RECEIVE:
            //  The sequence number leads the frame: only the first piece of a
            //  frame that arrives in pieces carries it
            if (lws_is_first_fragment (wsi) && len >= sizeof (long long)) {
                long long seq;
                memcpy (&seq, in, sizeof seq);
                if (seq >= 0 && seq < s_count) {
                    s_rtt_us [s_done++] = p2c_now_us () - s_start_us [seq];
                    if (s_done == s_count) {
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

int
main (int argc, char **argv)
{
    long long port = 0;
    p2c_cfg_t table [] = {
        { "port", P2C_CFG_INT, "18900", 1, 65535, &port, "echo server port on 127.0.0.1" },
        { "count", P2C_CFG_INT, "20000", 1, 10000000, &s_count, "frames in all" },
        { "concurrency", P2C_CFG_INT, "1", 1, 100000, &s_conc, "frames in flight" },
        { "size", P2C_CFG_INT, "64", 8, 4096, &s_size, "bytes per frame" },
        { NULL, 0, NULL, 0, 0, NULL, NULL }
    };
    bool verbose = false;
    int rc = p2c_cfg_parse (table, &argc, argv, "echo_client", "[options]", &verbose);
    if (rc != 0)
        return rc < 0 ? 2 : 0;
    lws_set_log_level (LLL_ERR, NULL);
    s_start_us = calloc ((size_t) s_count, sizeof (int64_t));
    s_rtt_us = calloc ((size_t) s_count, sizeof (int64_t));
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
    ci.port = (int) port;
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
    if (s_failed || s_done < s_count) {
        fprintf (stderr, "echo_client: only %lld of %lld round trips\n", s_done, s_count);
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
