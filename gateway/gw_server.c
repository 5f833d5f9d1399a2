/*  The gateway server (see gw_server.h): the glue between libwebsockets,
    the broker connection and the gateway's rules (gw_core) and pages
    (gw_http).

    Flow of a client frame: RECEIVE pieces -> gw_core_receive, whose
    answers are queued on the session; the core's wake callback asks lws
    for SERVER_WRITEABLE, where s_on_writeable writes them (coalesced).
    Flow of a broker message: the adopted ZeroMQ descriptor wakes the loop
    -> s_drain -> gw_core_handle (StatsReply: gw_http_stats_reply).

    ZMQ_FD is edge-triggered: a wake-up may stand for many messages, and a
    send may consume the wake-up of messages that arrived meanwhile. So
    after every pass of the loop in which something was sent, or in which
    the broker socket woke us, the run loop calls s_drain, which receives
    until nothing is left; the cron drains too. Draining once per pass,
    not per callback, matters: an empty receive costs libzmq two system
    calls. */
#include "gw_server.h"
#include "gw_admin.h"
#include "gw_core.h"
#include "gw_http.h"
#include "gw_install.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_msg.h"
#include "p2c_node.h"
#include "p2c_test.h"
#include "p2c_time.h"

#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define GW_CRON_MS          100     //  the one periodic timer
#define GW_RX_BUFFER        65536   //  lws' receive buffer, per connection
#define GW_WRITE_BATCH      65536   //  queued frames coalesced into one write, bytes

struct _gw_server_t {
    gw_settings_t cfg;          //  settings; its strings point at the copies below
    char *host;                 //  listen address (owned)
    char *broker;               //  broker endpoint (owned)
    char *tls_cert, *tls_key;   //  certificate and key files (owned), NULL: plain
    char *proxies;              //  trusted proxies (owned)
    char *admin_host;           //  admin listen address (owned), NULL: off
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    struct lws_vhost *admin_vhost;  //  the admin listener, NULL: off
    gw_admin_t *admin;          //  the operator's token
    struct lws *zmq_wsi;        //  the ZeroMQ descriptor adopted into the loop
    p2c_node_t *node;           //  broker connection
    gw_core_t *core;            //  the gateway's rules and sessions
    gw_http_t *http;            //  the HTTP pages and files
    gw_install_t *install;      //  /install.sh and /downloads/ (gw_install)
    lws_sorted_usec_list_t cron;
    volatile sig_atomic_t stop; //  stop requests (signals) so far
    bool stopping;              //  the loop ends now
    bool draining;              //  s_drain is on the stack
    bool drain_due;             //  broker messages may wait: drain at the end of the pass
    lws_retry_bo_t retry;       //  lws' idle ping / hang-up policy for client connections
    uint8_t *wbuf;              //  LWS_PRE, then frames coalesced for one write
    size_t wbuf_size;
};

//  lws' per-connection memory: a pointer to our session (WebSocket) or the
//  HTTP answer being made (phase 0: waiting for it, 1: headers to write,
//  2: body to write)
typedef struct {
    gw_session_t *session;
    gw_http_answer_t answer;
    int http_phase;
} gw_pss_t;

// ---------------------------------------------------------------------------
//  Pure helpers

int
gw_parse_listen (const char *text, char **host_p, int *port_p)
{
    const char *colon = text ? strrchr (text, ':') : NULL;
    if (!colon || !colon [1])
        return -1;
    char *end = NULL;
    long port = strtol (colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return -1;
    size_t hlen = (size_t) (colon - text);
    char *host = (char *) malloc (hlen + 1);
    if (!host)
        return -1;
    memcpy (host, text, hlen);
    host [hlen] = 0;
    *host_p = host;
    *port_p = (int) port;
    return 0;
}

// ---------------------------------------------------------------------------
//  What the core and the pages ask of the glue

//  A send may take in the wake-up of messages that arrived meanwhile (see
//  the top): the run loop drains after any pass that sent
static int
s_io_send (void *arg, const char *dest, const P2c2r__Internal *msg)
{
    gw_server_t *self = (gw_server_t *) arg;
    self->drain_due = true;
    return p2c_node_send (self->node, dest, msg);
}

static void
s_io_wake (void *arg, gw_session_t *s, gw_wake_t what)
{
    (void) arg;
    lws_callback_on_writable (s->wsi);
    //  A client that does not even take its close frame is cut after 5 s
    if (what == GW_WAKE_CUT)
        lws_set_timeout (s->wsi, PENDING_TIMEOUT_CLOSE_SEND, 5);
}

static size_t
s_io_services (void *arg, const char *service)
{
    return p2c_node_service_count (((gw_server_t *) arg)->node, service);
}

static bool
s_io_broker_alive (void *arg)
{
    return p2c_node_broker_alive (((gw_server_t *) arg)->node);
}

//  A late HTTP answer (/api/stats): written when the socket takes it
static void
s_io_http_done (void *arg, void *conn, gw_http_answer_t *answer)
{
    (void) arg;
    struct lws *wsi = (struct lws *) conn;
    gw_pss_t *pss = (gw_pss_t *) lws_wsi_user (wsi);
    if (!pss)
        return;
    gw_http_answer_free (&pss->answer);
    pss->answer = *answer;
    memset (answer, 0, sizeof *answer);
    pss->http_phase = 1;
    lws_callback_on_writable (wsi);
}

// ---------------------------------------------------------------------------
//  Messages from the broker

static void
s_on_message (void *arg, const char *sender, P2c2r__Internal *msg)
{
    gw_server_t *self = (gw_server_t *) arg;
    if (msg->msg_case == P2C2R__INTERNAL__MSG_STATS_REPLY)
        gw_http_stats_reply (self->http, msg->stats_reply);
    else
        gw_core_handle (self->core, sender, msg, p2c_now_ms ());
}

//  Receives until nothing is left (ZMQ_FD is edge-triggered). Sends made
//  by handlers inside are followed by further receives of this same loop,
//  so a nested call has nothing to add.
static void
s_drain (gw_server_t *self)
{
    if (self->draining || !self->node)
        return;
    self->draining = true;
    self->drain_due = false;
    p2c_node_drain (self->node, SIZE_MAX, s_on_message, self);
    self->draining = false;
}

// ---------------------------------------------------------------------------
//  HTTP: the answers come from gw_http

static bool s_trusted (const char *list, const char *addr);

//  The one-line install's files (gw_install), with what the request says
//  of the address it was sent to: its Host header, and X-Forwarded-Proto
//  only from a trusted proxy
static void
s_on_install (gw_server_t *self, struct lws *wsi, gw_pss_t *pss, const char *path)
{
    char host [300], proto [16], ip [64];
    gw_install_request_t req = { NULL, NULL, self->tls_cert != NULL };
    //  HTTP/2 (ALPN over TLS) says :authority instead of Host
    enum lws_token_indexes tok = lws_hdr_total_length (wsi, WSI_TOKEN_HOST) > 0
                               ? WSI_TOKEN_HOST : WSI_TOKEN_HTTP_COLON_AUTHORITY;
    if (lws_hdr_total_length (wsi, tok) < (int) sizeof host
        && lws_hdr_copy (wsi, host, sizeof host, tok) > 0)
        req.host = host;
    if (!lws_get_peer_simple (wsi, ip, sizeof ip))
        ip [0] = 0;
    if (*self->cfg.trusted_proxies && s_trusted (self->cfg.trusted_proxies, ip)
        && lws_hdr_custom_copy (wsi, proto, sizeof proto, "x-forwarded-proto:", 18) > 0)
        req.proto = proto;
    gw_http_answer_t *a = &pss->answer;
    memset (a, 0, sizeof *a);
    a->status = gw_install_get (self->install, path, &req, LWS_PRE, &a->buf, &a->len, &a->type);
    if (!a->buf) {
        //  404 and errors: a short text body
        const char *text = a->status == 404 ? "not found\n" : "error\n";
        a->len = strlen (text);
        a->buf = (uint8_t *) malloc (LWS_PRE + a->len);
        if (a->buf)
            memcpy (a->buf + LWS_PRE, text, a->len);
        a->type = "text/plain";
    }
    pss->http_phase = 1;
    lws_callback_on_writable (wsi);
}

//  lws hands over the path decoded (%XX) and without the query; a path
//  with a NUL decoded into it names nothing (passed on as "", a 404)
static int
s_on_http (gw_server_t *self, struct lws *wsi, gw_pss_t *pss, const char *uri, size_t len)
{
    bool get = lws_hdr_total_length (wsi, WSI_TOKEN_GET_URI) > 0 && uri;
    const char *path = !get ? NULL : strnlen (uri, len + 1) == len ? uri : "";
    gw_http_req_t req = { lws_get_vhost (wsi) == self->admin_vhost && self->admin_vhost, NULL };
    //  /install.sh and /downloads/ are the public listener's
    if (!req.admin && gw_install_owns (path)) {
        s_on_install (self, wsi, pss, path);
        return 0;
    }
    //  Only the admin listener looks at Authorization; a longer header
    //  than a token can be is not copied (and refused)
    char auth [GW_ADMIN_TOKEN_MAX + 16];
    if (req.admin && lws_hdr_copy (wsi, auth, sizeof auth, WSI_TOKEN_HTTP_AUTHORIZATION) > 0)
        req.authorization = auth;
    bool now = gw_http_get (self->http, wsi, path, &req, p2c_now_ms (), &pss->answer);
    OPENSSL_cleanse (auth, sizeof auth);
    if (now) {
        pss->http_phase = 1;
        lws_callback_on_writable (wsi);
    }
    return 0;
}

static int
s_http_writeable (struct lws *wsi, gw_pss_t *pss)
{
    if (!pss || pss->http_phase == 0)
        return 0;
    gw_http_answer_t *a = &pss->answer;
    if (pss->http_phase == 1) {
        uint8_t buf [LWS_PRE + 512];
        uint8_t *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
        if (lws_add_http_common_headers (wsi, a->status, a->type, a->len, &p, end)
            || lws_finalize_write_http_header (wsi, start, &p, end))
            return 1;
        pss->http_phase = 2;
        lws_callback_on_writable (wsi);
        return 0;
    }
    int n = a->buf ? lws_write (wsi, a->buf + LWS_PRE, a->len, LWS_WRITE_HTTP_FINAL) : 0;
    size_t len = a->len;
    gw_http_answer_free (a);
    pss->http_phase = 0;
    if (n < 0 || (size_t) n != len)
        return 1;
    return lws_http_transaction_completed (wsi) ? -1 : 0;
}

static void
s_http_closed (gw_server_t *self, struct lws *wsi, gw_pss_t *pss)
{
    if (!pss)
        return;
    gw_http_forget (self->http, wsi);
    gw_http_answer_free (&pss->answer);
    pss->http_phase = 0;
}

// ---------------------------------------------------------------------------
//  The cron: the node's heartbeat, the core's guards and chores, the
//  pages' waits, then a drain

static void
s_cron (lws_sorted_usec_list_t *sul)
{
    gw_server_t *self = lws_container_of (sul, gw_server_t, cron);
    int64_t now = p2c_now_ms ();
    p2c_node_cron (self->node);
    if (gw_core_cron (self->core, now))
        self->stopping = true;
    gw_http_cron (self->http, now);
    s_drain (self);
    if (self->stopping)
        lws_cancel_service (self->ctx);
    lws_sul_schedule (self->ctx, 0, &self->cron, s_cron, GW_CRON_MS * LWS_US_PER_MS);
}

// ---------------------------------------------------------------------------
//  libwebsockets callbacks

//  Whether addr is one of the comma-separated trusted proxies. lws names
//  an IPv4 peer of a dual-stack socket in its IPv6 form (::ffff:a.b.c.d):
//  that is the IPv4 address the operator lists
static bool
s_trusted (const char *list, const char *addr)
{
    if (!strncmp (addr, "::ffff:", 7) && strchr (addr + 7, '.'))
        addr += 7;
    size_t n = strlen (addr);
    for (const char *p = list; p && *p; ) {
        const char *comma = strchr (p, ',');
        size_t len = comma ? (size_t) (comma - p) : strlen (p);
        if (len == n && !strncmp (p, addr, n))
            return true;
        p = comma ? comma + 1 : NULL;
    }
    return false;
}

//  The client's address: the TCP peer, or behind a trusted proxy the last
//  address it appended to X-Forwarded-For
static void
s_client_ip (gw_server_t *self, struct lws *wsi, char *ip, size_t size)
{
    if (!lws_get_peer_simple (wsi, ip, size))
        snprintf (ip, size, "unknown");
    if (!self->cfg.trusted_proxies || !*self->cfg.trusted_proxies
        || !s_trusted (self->cfg.trusted_proxies, ip))
        return;
    char xff [256];
    if (lws_hdr_copy (wsi, xff, sizeof xff, WSI_TOKEN_X_FORWARDED_FOR) <= 0)
        return;
    char *last = strrchr (xff, ',');
    last = last ? last + 1 : xff;
    while (*last == ' ')
        last++;
    //  memcpy, not snprintf: gcc -O1 (make asan) cannot see the length
    //  check and fails the build with -Wformat-truncation
    size_t n = strlen (last);
    if (*last && n < size)
        memcpy (ip, last, n + 1);
}

//  A WebSocket upgrade request, before the 101 answer: an address already
//  at its limits is refused here (429, the reason in the body) without a
//  session or its buffers; gw_core_open still admits and counts, so
//  handshakes that raced each other get their 1013 there
static int
s_on_upgrade (gw_server_t *self, struct lws *wsi)
{
    char ip [64];
    s_client_ip (self, wsi, ip, sizeof ip);
    if (gw_core_may_connect (self->core, ip, p2c_now_ms ()))
        return 0;
    //  Written whole by hand: lws' own status page says HTTP/1.0 here,
    //  which WebSocket clients do not parse. > 0: lws hangs up after it.
    static const char body [] = "too many connections from your address, try again later\n";
    uint8_t buf [LWS_PRE + 256];
    int n = snprintf ((char *) buf + LWS_PRE, sizeof buf - LWS_PRE,
                      "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\n"
                      "Content-Length: %zu\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s",
                      sizeof body - 1, body);
    if (n > 0 && (size_t) n < sizeof buf - LWS_PRE)
        lws_write (wsi, buf + LWS_PRE, (size_t) n, LWS_WRITE_HTTP_HEADERS);
    return 1;
}

static int
s_on_established (gw_server_t *self, struct lws *wsi, gw_pss_t *pss)
{
    char ip [64];
    s_client_ip (self, wsi, ip, sizeof ip);
    pss->session = gw_core_open (self->core, wsi, ip, p2c_now_ms ());
    return pss->session ? 0 : -1;
}

static int
s_on_receive (gw_server_t *self, struct lws *wsi, gw_pss_t *pss, const void *in, size_t len)
{
    if (!pss->session)
        return -1;
    gw_core_receive (self->core, pss->session, in, len, lws_remaining_packet_payload (wsi),
                     lws_is_final_fragment (wsi), lws_frame_is_binary (wsi), p2c_now_ms ());
    return 0;
}

//  Writes what is queued. One frame (or a big one) goes out as it is;
//  several go out framed by us in one write (lws writes raw bytes as
//  given), so a burst of replies costs one system call and one pass of
//  the loop, not one each. lws keeps what the socket did not take and
//  writes it before it calls us again, so at most one batch waits in lws
//  beyond our queue.
static int
s_on_writeable (gw_server_t *self, struct lws *wsi, gw_pss_t *pss)
{
    gw_session_t *s = pss->session;
    if (!s)
        return 0;
    if (gw_session_queued (s) > 1) {
        size_t len = gw_session_take_batch (s, &self->wbuf, &self->wbuf_size, LWS_PRE,
                                            GW_WRITE_BATCH);
        if (len) {
            int n = lws_write (wsi, self->wbuf + LWS_PRE, len, LWS_WRITE_RAW);
            if (n < 0 || (size_t) n < len)
                return -1;
            if (gw_session_queued (s) || s->closing)
                lws_callback_on_writable (wsi);
            return 0;
        }
    }
    gw_outframe_t *f = gw_session_pop (s);
    if (f) {
        int n = lws_write (wsi, f->buf + f->pre, f->len,
                           f->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
        bool ok = n >= 0 && (size_t) n >= f->len;
        gw_outframe_destroy (&f);
        if (!ok)
            return -1;
        if (gw_session_queued (s) || s->closing)
            lws_callback_on_writable (wsi);
        return 0;
    }
    if (s->closing) {
        lws_close_reason (wsi, (enum lws_close_status) s->close_code,
                          (unsigned char *) s->close_reason, strlen (s->close_reason));
        return -1;
    }
    return 0;
}

static void
s_on_closed (gw_server_t *self, gw_pss_t *pss)
{
    gw_session_t *s = pss->session;
    if (!s)
        return;
    pss->session = NULL;
    gw_core_closed (self->core, s, p2c_now_ms ());
}

static int
s_ws_callback (struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
               size_t len)
{
    gw_server_t *self = (gw_server_t *) lws_context_user (lws_get_context (wsi));
    gw_pss_t *pss = (gw_pss_t *) user;
    switch (reason) {
        case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
            //  Connections that raced the shutdown of the listening socket
            return gw_core_quitting (self->core) ? -1 : 0;
        case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
            //  The admin listener serves HTTP only
            if (self->admin_vhost && lws_get_vhost (wsi) == self->admin_vhost)
                return 1;
            return s_on_upgrade (self, wsi);
        case LWS_CALLBACK_HTTP:
            return s_on_http (self, wsi, pss, (const char *) in, len);
        case LWS_CALLBACK_HTTP_WRITEABLE:
            return s_http_writeable (wsi, pss);
        case LWS_CALLBACK_CLOSED_HTTP:
            s_http_closed (self, wsi, pss);
            break;
        case LWS_CALLBACK_RECEIVE_PONG:
            if (pss && pss->session)
                pss->session->last_rx_ms = p2c_now_ms ();
            return 0;
        case LWS_CALLBACK_ESTABLISHED:
            return s_on_established (self, wsi, pss);
        case LWS_CALLBACK_RECEIVE:
            return s_on_receive (self, wsi, pss, in, len);
        case LWS_CALLBACK_SERVER_WRITEABLE:
            return s_on_writeable (self, wsi, pss);
        case LWS_CALLBACK_CLOSED:
            s_on_closed (self, pss);
            return 0;
        default:
            break;
    }
    return lws_callback_http_dummy (wsi, reason, user, in, len);
}

static int
s_zmq_callback (struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                size_t len)
{
    (void) user;
    (void) in;
    (void) len;
    gw_server_t *self = (gw_server_t *) lws_context_user (lws_get_context (wsi));
    switch (reason) {
        case LWS_CALLBACK_RAW_RX_FILE:
            //  Drained once at the end of this pass, together with what
            //  the client messages of the same pass sent
            self->drain_due = true;
            break;
        case LWS_CALLBACK_RAW_CLOSE_FILE:
            self->zmq_wsi = NULL;
            break;
        case LWS_CALLBACK_ESTABLISHED:
            //  A client asking for this protocol by name gets nothing
            return -1;
        default:
            break;
    }
    return 0;
}

static const struct lws_protocols s_protocols [] = {
    { "p2c2r", s_ws_callback, sizeof (gw_pss_t), GW_RX_BUFFER, 0, NULL, GW_RX_BUFFER },
    { "p2c2r-zmq-internal", s_zmq_callback, 0, 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 }
};

//  lws' own log lines, into ours (errors and warnings only)
static void
s_lws_log (int level, const char *line)
{
    char buf [512];
    snprintf (buf, sizeof buf, "%s", line);
    size_t n = strlen (buf);
    while (n > 0 && (buf [n - 1] == '\n' || buf [n - 1] == '\r'))
        buf [--n] = 0;
    if (level & LLL_ERR)
        log_warn ("lws error: %s", buf);
    else
        log_debug ("lws: %s", buf);
}

// ---------------------------------------------------------------------------
//  Life cycle

//  The core's settings, from the server's
static gw_core_config_t
s_core_config (gw_server_t *self)
{
    const gw_settings_t *st = &self->cfg;
    gw_core_config_t c;
    memset (&c, 0, sizeof c);
    c.node_id = p2c_node_id (self->node);
    c.region = st->region;
    c.auth_open = st->auth_open;
    c.max_frame = st->max_frame;
    c.max_input_bytes = st->max_input_bytes;
    c.default_deadline_ms = st->default_deadline_ms;
    c.max_deadline_ms = st->max_deadline_ms;
    c.guard_grace_ms = st->guard_grace_ms;
    c.auth_timeout_ms = st->auth_timeout_ms;
    c.auth_cache_ms = st->auth_cache_ms;
    c.auth_recheck_ms = st->auth_recheck_ms;
    c.register_timeout_ms = st->register_timeout_ms;
    c.idle_ms = ((int64_t) st->ping_s + st->pong_timeout_s) * 1000;
    c.send_queue = st->send_queue;
    c.send_queue_bytes = st->send_queue_bytes;
    c.max_bad_frames = st->max_bad_frames;
    c.rate_msgs = st->rate_msgs;
    c.rate_burst = st->rate_burst;
    c.max_conns_per_ip = st->max_conns_per_ip;
    c.connect_rate = st->connect_rate;
    c.connect_burst = st->connect_burst;
    c.max_subscriptions = st->max_subscriptions;
    c.pre = LWS_PRE;
    return c;
}

//  The rules and the pages, once the node (whose id they stamp) is there
static int
s_make_parts (gw_server_t *self)
{
    gw_core_config_t config = s_core_config (self);
    gw_core_io_t io = { s_io_send, s_io_wake, s_io_services, self };
    self->core = gw_core_new (&config, &io);
    if (!self->core)
        return -1;
    const char *error = NULL;
    self->admin = gw_admin_new (self->cfg.admin_token_file, &error);
    if (!self->admin) {
        log_warn ("--admin-token-file: %s", error);
        return -1;
    }
    if (self->admin_host && !gw_admin_has_token (self->admin))
        log_warn ("no --admin-token-file: the admin listener refuses /metrics and"
                  " /api/stats (401)");
    gw_http_config_t hconfig = { self->cfg.web_root, self->cfg.vendor_root, self->admin,
                                 self->cfg.stats_timeout_ms, LWS_PRE };
    gw_http_io_t hio = { s_io_send, s_io_services, s_io_broker_alive, s_io_http_done, self };
    self->http = gw_http_new (self->core, &hconfig, &hio);
    self->install = gw_install_new (self->cfg.downloads_dir, self->cfg.public_url);
    return 0;
}

//  TLS as we serve it, set here rather than left to the library's and the
//  system's defaults (which accepted static-RSA AES128-SHA on TLS 1.2): TLS
//  1.2 or newer, and on 1.2 only forward-secret key exchange (ECDHE, DHE)
//  with AEAD ciphers (Mozilla's "intermediate" list). TLS 1.3's suites are
//  all forward-secret and AEAD; named anyway so that the list is ours.
#define GW_TLS12_CIPHERS "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
                         "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
                         "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
                         "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"
#define GW_TLS13_CIPHERS "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:" \
                         "TLS_CHACHA20_POLY1305_SHA256"
#define GW_TLS_NO_OLD    (SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 \
                          | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION \
                          | SSL_OP_NO_RENEGOTIATION)

//  Creates the lws context and the listening vhost; 0, or -1 (logged)
static int
s_listen (gw_server_t *self)
{
    lws_set_log_level (LLL_ERR | LLL_WARN, s_lws_log);
    struct lws_context_creation_info info;
    memset (&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    if (self->tls_cert)
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.user = self;
    info.port = CONTEXT_PORT_NO_LISTEN;
    self->ctx = lws_create_context (&info);
    if (!self->ctx) {
        log_warn ("cannot create the libwebsockets context");
        return -1;
    }
    info.port = self->cfg.port;
    info.iface = *self->host ? self->host : NULL;
    info.protocols = s_protocols;
    info.vhost_name = "default";
    //  lws pings a connection silent for ping_s and hangs up on one that
    //  stays silent pong_timeout_s longer
    self->retry.secs_since_valid_ping = (uint16_t) self->cfg.ping_s;
    self->retry.secs_since_valid_hangup = (uint16_t) (self->cfg.ping_s + self->cfg.pong_timeout_s);
    info.retry_and_idle_policy = &self->retry;
    if (self->tls_cert) {
        info.ssl_cert_filepath = self->tls_cert;
        info.ssl_private_key_filepath = self->tls_key;
        info.ssl_cipher_list = GW_TLS12_CIPHERS;
        info.tls1_3_plus_cipher_list = GW_TLS13_CIPHERS;
        info.ssl_options_set = (long) GW_TLS_NO_OLD;
    }
    self->vhost = lws_create_vhost (self->ctx, &info);
    if (!self->vhost) {
        log_warn ("cannot listen host=%s port=%d", *self->host ? self->host : "*",
                  self->cfg.port);
        return -1;
    }
    if (self->admin_host) {
        //  Plain HTTP, no WebSocket, no idle policy: the operator's
        //  listener, on loopback or a private network
        struct lws_context_creation_info ainfo;
        memset (&ainfo, 0, sizeof ainfo);
        ainfo.port = self->cfg.admin_port;
        ainfo.iface = *self->admin_host ? self->admin_host : NULL;
        ainfo.protocols = s_protocols;
        ainfo.vhost_name = "admin";
        self->admin_vhost = lws_create_vhost (self->ctx, &ainfo);
        if (!self->admin_vhost) {
            log_warn ("cannot listen (admin) host=%s port=%d",
                      *self->admin_host ? self->admin_host : "*", self->cfg.admin_port);
            return -1;
        }
    }
    //  lws closes what it adopts: give it a duplicate so that ZeroMQ's own
    //  descriptor outlives the context
    lws_sock_file_fd_type fd;
    memset (&fd, 0, sizeof fd);
    fd.filefd = dup (p2c_node_fd (self->node));
    if (fd.filefd >= 0)
        self->zmq_wsi = lws_adopt_descriptor_vhost (self->vhost, LWS_ADOPT_RAW_FILE_DESC, fd,
                                                    "p2c2r-zmq-internal", NULL);
    if (!self->zmq_wsi) {
        if (fd.filefd >= 0)
            close (fd.filefd);
        log_warn ("cannot adopt the broker socket into the loop");
        return -1;
    }
    return 0;
}

gw_server_t *
gw_server_new (const gw_settings_t *settings)
{
    gw_server_t *self = (gw_server_t *) zmalloc (sizeof (gw_server_t));
    self->cfg = *settings;
    self->host = p2c_strdup (settings->host ? settings->host : "");
    self->broker = p2c_strdup (settings->broker);
    self->cfg.host = self->host;
    self->cfg.broker = self->broker;
    self->cfg.node_id = NULL;
    self->tls_cert = settings->tls_cert && *settings->tls_cert ? strdup (settings->tls_cert) : NULL;
    self->tls_key = settings->tls_key && *settings->tls_key ? strdup (settings->tls_key) : NULL;
    self->proxies = p2c_strdup (settings->trusted_proxies ? settings->trusted_proxies : "");
    self->cfg.tls_cert = self->tls_cert;
    self->cfg.tls_key = self->tls_key;
    self->cfg.trusted_proxies = self->proxies;
    self->admin_host = settings->admin_host ? strdup (settings->admin_host) : NULL;
    self->cfg.admin_host = self->admin_host;
    self->node = p2c_node_new (settings->broker, "gateway", settings->node_id);
    if (!self->node) {
        log_warn ("cannot connect to the broker endpoint=%s", settings->broker);
        gw_server_destroy (&self);
        return NULL;
    }
    //  The region and web root are copied by the core and the pages
    if (s_make_parts (self) != 0 || s_listen (self) != 0) {
        gw_server_destroy (&self);
        return NULL;
    }
    self->cfg.region = NULL;
    self->cfg.web_root = NULL;
    self->cfg.public_url = NULL;
    self->cfg.downloads_dir = NULL;
    self->cfg.vendor_root = NULL;
    self->cfg.admin_token_file = NULL;
    lws_sul_schedule (self->ctx, 0, &self->cron, s_cron, GW_CRON_MS * LWS_US_PER_MS);
    log_info ("listening host=%s port=%d node=%s broker=%s auth=%s tls=%s task_prefix=%s",
              *self->host ? self->host : "*", gw_server_port (self), p2c_node_id (self->node),
              self->broker, self->cfg.auth_open ? "open" : "apikey", self->tls_cert ? "on" : "off",
              gw_core_task_prefix (self->core));
    if (self->admin_vhost)
        log_info ("admin listening host=%s port=%d token=%s",
                  *self->admin_host ? self->admin_host : "*", gw_server_admin_port (self),
                  gw_admin_has_token (self->admin) ? "yes" : "no");
    return self;
}

void
gw_server_destroy (gw_server_t **self_p)
{
    gw_server_t *self = *self_p;
    if (!self)
        return;
    if (self->ctx) {
        lws_sul_schedule (self->ctx, 0, &self->cron, NULL, LWS_SET_TIMER_USEC_CANCEL);
        //  Closes every connection: peers still registered are reported
        //  down to the scheduler from the close callbacks
        lws_context_destroy (self->ctx);
        self->ctx = NULL;
    }
    gw_http_destroy (&self->http);
    gw_install_destroy (&self->install);
    gw_core_destroy (&self->core);
    gw_admin_destroy (&self->admin);
    free (self->admin_host);
    free (self->tls_cert);
    free (self->tls_key);
    free (self->proxies);
    p2c_node_destroy (&self->node);
    free (self->host);
    free (self->broker);
    free (self->wbuf);
    free (self);
    *self_p = NULL;
}

//  Stops listening while the connections live on. lws 4.1's own way
//  (lws_context_deprecate) crashes with explicit vhosts, so the listening
//  socket is found among our descriptors and shut down: the kernel drops
//  it from the port at once, and a restarted gateway can bind the port
//  while this one drains.
static void
s_stop_listening (gw_server_t *self)
{
    int port = gw_server_port (self), admin_port = gw_server_admin_port (self);
    struct rlimit rl;
    int max = getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1048576 ? (int) rl.rlim_cur : 65536;
    for (int fd = 0; fd < max; fd++) {
        int listening = 0;
        socklen_t len = sizeof listening;
        if (getsockopt (fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening)
            continue;
        struct sockaddr_storage ss;
        socklen_t slen = sizeof ss;
        if (getsockname (fd, (struct sockaddr *) &ss, &slen) != 0)
            continue;
        int p = ss.ss_family == AF_INET ? ntohs (((struct sockaddr_in *) &ss)->sin_port)
              : ss.ss_family == AF_INET6 ? ntohs (((struct sockaddr_in6 *) &ss)->sin6_port) : -1;
        if ((p == port || p == admin_port) && shutdown (fd, SHUT_RDWR) == 0)
            log_info ("stopped listening port=%d", p);
    }
}

//  The first SIGTERM: no new connections (the listening socket closes, so
//  a restarted gateway can bind the port at once), no new work, and the
//  cron closes everyone with 1001 once in-flight tasks are done or the
//  drain bound has passed
static void
s_quit (gw_server_t *self)
{
    gw_core_quit (self->core, p2c_now_ms () + self->cfg.drain_ms);
    s_stop_listening (self);
    log_info ("draining sessions=%zu pending=%zu drain_ms=%lld",
              gw_core_sessions (self->core), gw_core_pending (self->core),
              (long long) self->cfg.drain_ms);
}

void
gw_server_run (gw_server_t *self)
{
    //  A first drain: the broker may have spoken before the loop started
    s_drain (self);
    while (!self->stopping) {
        if (lws_service (self->ctx, 0) < 0)
            break;
        //  Once per pass rather than after every callback that sent or
        //  woke us: an empty receive costs libzmq two system calls
        if (self->drain_due)
            s_drain (self);
        if (self->stop >= 2)
            break;
        if (self->stop == 1 && !gw_core_quitting (self->core))
            s_quit (self);
    }
    gw_core_counters_t *c = gw_core_counters (self->core);
    log_info ("stopping sessions=%zu pending=%zu bad_frames=%llu timeouts=%llu "
              "deliver_dropped=%llu", gw_core_sessions (self->core),
              gw_core_pending (self->core), (unsigned long long) c->bad_frames,
              (unsigned long long) c->timeouts, (unsigned long long) c->deliver_dropped);
}

void
gw_server_stop (gw_server_t *self)
{
    self->stop++;
    if (self->ctx)
        lws_cancel_service (self->ctx);
}

int
gw_server_port (gw_server_t *self)
{
    return self->vhost ? lws_get_vhost_listen_port (self->vhost) : -1;
}

int
gw_server_admin_port (gw_server_t *self)
{
    return self->admin_vhost ? lws_get_vhost_listen_port (self->admin_vhost) : -1;
}

const char *
gw_server_node_id (gw_server_t *self)
{
    return p2c_node_id (self->node);
}

void
gw_server_test (bool verbose)
{
    (void) verbose;
    char *host = NULL;
    int port = 0;
    P2C_CHECK (gw_parse_listen ("127.0.0.1:8765", &host, &port) == 0);
    P2C_CHECK (host && !strcmp (host, "127.0.0.1") && port == 8765);
    free (host);
    host = NULL;
    P2C_CHECK (gw_parse_listen (":9000", &host, &port) == 0);
    P2C_CHECK (host && !strcmp (host, "") && port == 9000);
    free (host);
    host = NULL;
    P2C_CHECK (gw_parse_listen ("127.0.0.1", &host, &port) == -1);
    P2C_CHECK (gw_parse_listen ("127.0.0.1:", &host, &port) == -1);
    P2C_CHECK (gw_parse_listen ("127.0.0.1:70000", &host, &port) == -1);
    P2C_CHECK (gw_parse_listen ("127.0.0.1:80x", &host, &port) == -1);
    P2C_CHECK (host == NULL);

    P2C_CHECK (s_trusted ("10.0.0.1,10.0.0.2", "10.0.0.2"));
    P2C_CHECK (s_trusted ("10.0.0.1", "10.0.0.1"));
    P2C_CHECK (!s_trusted ("10.0.0.1,10.0.0.2", "10.0.0.3"));
    P2C_CHECK (!s_trusted ("10.0.0.10", "10.0.0.1"));
    P2C_CHECK (!s_trusted ("", "10.0.0.1"));
    P2C_CHECK (s_trusted ("10.0.0.1", "::ffff:10.0.0.1"));
    P2C_CHECK (!s_trusted ("10.0.0.1", "::ffff:10.0.0.2"));
    P2C_CHECK (s_trusted ("::1", "::1"));
}
