/*  The ceiling for `make bench`: a bare libwebsockets server on one thread
    that sends every binary frame straight back. A task round trip through
    P2C2R can be no faster than one round trip through this. */
#include "p2c_cfg.h"
#include "p2c_log.h"

#include <libwebsockets.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAME 65536
#define QUEUE 1024

typedef struct {
    unsigned char *frames [QUEUE];  //  each LWS_PRE + len bytes
    size_t lens [QUEUE];
    int head, count;
    unsigned char partial [LWS_PRE + MAX_FRAME];    //  a frame arriving in pieces
    size_t partial_len;
} s_conn_t;

static volatile sig_atomic_t s_stop = 0;
static struct lws_context *s_context;

static int
s_callback (struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    s_conn_t *conn = (s_conn_t *) user;
    switch (reason) {
        case LWS_CALLBACK_ESTABLISHED:
            memset (conn, 0, sizeof *conn);
            break;
        case LWS_CALLBACK_RECEIVE:
            if (conn->partial_len + len > MAX_FRAME || conn->count == QUEUE)
                return -1;
            memcpy (conn->partial + LWS_PRE + conn->partial_len, in, len);
            conn->partial_len += len;
            if (!lws_is_final_fragment (wsi))
                break;
            {
                int slot = (conn->head + conn->count) % QUEUE;
                conn->frames [slot] = malloc (LWS_PRE + conn->partial_len);
                memcpy (conn->frames [slot] + LWS_PRE, conn->partial + LWS_PRE, conn->partial_len);
                conn->lens [slot] = conn->partial_len;
                conn->partial_len = 0;
                conn->count++;
            }
            lws_callback_on_writable (wsi);
            break;
        case LWS_CALLBACK_SERVER_WRITEABLE:
            if (conn->count) {
                int slot = conn->head;
                int n = lws_write (wsi, conn->frames [slot] + LWS_PRE, conn->lens [slot], LWS_WRITE_BINARY);
                free (conn->frames [slot]);
                conn->head = (conn->head + 1) % QUEUE;
                conn->count--;
                if (n < 0)
                    return -1;
                if (conn->count)
                    lws_callback_on_writable (wsi);
            }
            break;
        case LWS_CALLBACK_CLOSED:
            while (conn->count) {
                free (conn->frames [conn->head]);
                conn->head = (conn->head + 1) % QUEUE;
                conn->count--;
            }
            break;
        default:
            break;
    }
    return 0;
}

static void
s_signal (int sig)
{
    (void) sig;
    s_stop = 1;
    if (s_context)
        lws_cancel_service (s_context);
}

typedef struct {
    long long port;
} s_settings_t;

#define S_F(field) P2C_CFG_FIELD (s_settings_t, field)
static const p2c_cfg_t s_table [] = {
    { "port", P2C_CFG_LLONG, S_F (port), "18900", 1, 65535,
      .help = "TCP port on 127.0.0.1" },
    { .name = NULL }
};
#undef S_F

static const p2c_cfg_spec_t s_spec = { "echo_server", "[--port N]", s_table, NULL };

int
main (int argc, char **argv)
{
    s_settings_t cfg;
    bool verbose = false;
    int rc = p2c_cfg_parse (&s_spec, &cfg, &argc, argv, &verbose);
    if (rc != 0)
        return rc < 0 ? 2 : 0;
    lws_set_log_level (LLL_ERR, NULL);
    static struct lws_protocols protocols [] = {
        { "echo", s_callback, sizeof (s_conn_t), MAX_FRAME, 0, NULL, 0 },
        { NULL, NULL, 0, 0, 0, NULL, 0 }
    };
    struct lws_context_creation_info info;
    memset (&info, 0, sizeof info);
    info.port = (int) cfg.port;
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    s_context = lws_create_context (&info);
    if (!s_context)
        return 1;
    signal (SIGTERM, s_signal);
    signal (SIGINT, s_signal);
    while (!s_stop && lws_service (s_context, 0) >= 0)
        ;
    lws_context_destroy (s_context);
    return 0;
}
