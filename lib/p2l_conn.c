/*  The one WebSocket client of libp2c2r and p2c2r-agent (libwebsockets
    4.1): one context, one connection at a time, everything on the thread
    that calls p2l_conn_run or p2l_conn_step. No global state: lws' own
    process-wide log level is left to the program.
    wss:// goes through lws' OpenSSL client; a certificate that fails
    verification is caught in OpenSSL's verify callback, so the owner can
    tell it from a server that is down. */
#include "p2l_conn.h"
#include "p2c_frame.h"
#include "p2c_test.h"

#include <assert.h>
#include <errno.h>
#include <libwebsockets.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

_Static_assert (P2L_CONN_PRE >= LWS_PRE, "P2L_CONN_PRE must leave lws its LWS_PRE");

typedef enum { S_IDLE, S_CONNECTING, S_OPEN } s_state_t;

//  One packed ClientMessage waiting for the socket
typedef struct _s_out_t {
    uint8_t *buf;               //  spare bytes (at least LWS_PRE), then the message
    size_t off;                 //  where the message starts
    size_t len;                 //  message length
    void *tag;                  //  passed to on_sent
    void (*on_sent) (void *tag, void *arg);
    void (*free_tag) (void *tag);
    struct _s_out_t *next;
} s_out_t;

struct _p2l_conn_t {
    struct lws_context *context;    //  the one lws context
    struct lws *wsi;            //  the connection, when not idle
    s_state_t state;
    char host [256];            //  from the URL
    int port;
    char path [512];
    bool tls;                   //  wss://
    char *ca_file;              //  the CA file to trust, or NULL: the system's CA store
    bool insecure;              //  accept any certificate (development only)
    p2l_conn_end_t end;         //  how the current connection is ending
    char cert_detail [160];     //  OpenSSL's verdict on the server's certificate, if it failed
    p2l_conn_handlers_t handlers;
    void *arg;                  //  for the handlers
    int cron_ms;
    lws_sorted_usec_list_t sul_cron;    //  the cron timer
    s_out_t *out_head, *out_tail;       //  send queue, oldest first
    bool close_asked;           //  close at the next writable callback
    p2c_frame_t *rx;            //  the message being reassembled
    bool stopping;              //  p2l_conn_stop was called
    bool destroying;            //  no watch calls back while the context goes
    bool in_receive;            //  on_message is running
};

//  A descriptor the loop watches for the owner (see p2l_conn_watch)
struct _p2l_conn_watch_t {
    p2l_conn_t *conn;
    struct lws *wsi;            //  the adopted duplicate
    void (*on_ready) (void *arg);   //  NULL once unwatched
    void *arg;
    p2l_conn_watch_t **ref;     //  the owner's pointer, NULLed when the watch ends
};

//  One log line for the owner's on_log (none without it)
static void
s_log (p2l_conn_t *self, int level, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
static void
s_log (p2l_conn_t *self, int level, const char *fmt, ...)
{
    if (!self->handlers.on_log)
        return;
    char line [400];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (line, sizeof line, fmt, ap);
    va_end (ap);
    self->handlers.on_log (level, line, self->arg);
}

static void
s_out_free (s_out_t *o)
{
    if (o->free_tag && o->tag)
        o->free_tag (o->tag);
    free (o->buf);
    free (o);
}

static void
s_out_clear (p2l_conn_t *self)
{
    while (self->out_head) {
        s_out_t *o = self->out_head;
        self->out_head = o->next;
        s_out_free (o);
    }
    self->out_tail = NULL;
}

//  The connection ended (or never started): reset and tell the owner once.
static void
s_closed (p2l_conn_t *self, const char *why)
{
    if (self->state == S_IDLE)
        return;
    self->state = S_IDLE;
    self->wsi = NULL;
    self->close_asked = false;
    //  A message cut off by the close is not carried into the next connection
    p2c_frame_destroy (&self->rx);
    self->rx = p2c_frame_new (P2L_MAX_SERVER_MSG);
    s_out_clear (self);
    p2l_conn_end_t end = self->end;
    if (end.cert_error)
        ;   //  why already names the certificate's fault
    else
    if (end.code)
        snprintf (end.why, sizeof end.why, "closed by the server: %d%s%s", end.code,
                  end.reason [0] ? " " : "", end.reason);
    else
        snprintf (end.why, sizeof end.why, "%s", why);
    memset (&self->end, 0, sizeof self->end);
    self->cert_detail [0] = 0;
    if (self->handlers.on_close)
        self->handlers.on_close (self, &end, self->arg);
}

//  The server's close frame: 2 bytes of code (network order), then an
//  optional reason. The reason is kept printable: it goes into log lines.
static void
s_peer_close (p2l_conn_t *self, const uint8_t *in, size_t len)
{
    if (len < 2)
        return;
    self->end.code = (in [0] << 8) | in [1];
    size_t n = 0;
    for (size_t i = 2; i < len && n + 1 < sizeof self->end.reason; i++)
        self->end.reason [n++] = in [i] >= 0x20 && in [i] < 0x7f && in [i] != '"' ? (char) in [i]
                                                                              : '?';
    self->end.reason [n] = 0;
}

//  A piece of a message arrived; whole ones go to the owner (p2c_frame
//  reassembles them, as in the gateway)
static void
s_receive (p2l_conn_t *self, struct lws *wsi, const void *in, size_t len)
{
    if (!self->rx) {
        s_log (self, P2L_LOG_WARN, "conn: out of memory for a message");
        p2l_conn_close (self);
        return;
    }
    size_t remaining = lws_remaining_packet_payload (wsi);
    bool final = lws_is_final_fragment (wsi) && remaining == 0;
    p2c_frame_status_t st = p2c_frame_add (self->rx, in, len, remaining, final,
                                           lws_frame_is_binary (wsi));
    if (st == P2C_FRAME_MORE)
        return;
    if (st == P2C_FRAME_TOO_LARGE) {
        s_log (self, P2L_LOG_WARN, "conn: frame dropped reason=too_large");
        return;
    }
    const uint8_t *data = p2c_frame_data (self->rx);
    size_t size = p2c_frame_size (self->rx);
    if (!p2c_frame_binary (self->rx)) {
        s_log (self, P2L_LOG_WARN, "conn: frame dropped reason=text_frame len=%zu", size);
        return;
    }
    P2c2r__ServerMessage *msg = p2c_msg_unpack_server (data, size, P2L_MAX_SERVER_MSG);
    if (!msg)
        s_log (self, P2L_LOG_WARN, "conn: frame dropped reason=bad_protobuf len=%zu", size);
    else
    if (self->handlers.on_message) {
        self->in_receive = true;
        self->handlers.on_message (self, &msg, data, size, self->arg);
        self->in_receive = false;
    }
    p2c_msg_server_free (&msg);
}

static int
s_callback (struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    (void) user;
    struct lws_context *context = lws_get_context (wsi);
    p2l_conn_t *self = context ? (p2l_conn_t *) lws_context_user (context) : NULL;
    if (!self)
        return 0;
    switch (reason) {
        case LWS_CALLBACK_CLIENT_ESTABLISHED:
            if (self->state != S_CONNECTING || (self->wsi && wsi != self->wsi))
                break;
            self->wsi = wsi;
            self->state = S_OPEN;
            self->cert_detail [0] = 0;
            s_log (self, P2L_LOG_DEBUG, "conn: connected host=%s port=%d", self->host, self->port);
            if (self->handlers.on_open)
                self->handlers.on_open (self, self->arg);
            break;
        case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
            //  May come before lws_client_connect_via_info has returned
            if (self->wsi && wsi != self->wsi)
                break;
            char why [200];
            snprintf (why, sizeof why, "connect failed: %.*s", in ? (int) len : 7,
                      in ? (const char *) in : "unknown");
            //  lws' own text ends in a newline at times
            for (char *c = why; *c; c++)
                if (*c == '\n' || *c == '\r' || *c == '"')
                    *c = ' ';
            if (self->cert_detail [0]) {
                self->end.cert_error = true;
                snprintf (self->end.why, sizeof self->end.why,
                          "server certificate not trusted: %s", self->cert_detail);
            }
            s_closed (self, why);
            break;
        }
        case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
            //  user is OpenSSL's X509_STORE_CTX, len its preverify_ok. We only
            //  note why it failed; lws decides (it lets a self-signed one
            //  through when insecure), and a handshake that then fails
            //  is reported as a certificate error
            if (!len && user && !self->cert_detail [0]) {
                int err = X509_STORE_CTX_get_error ((X509_STORE_CTX *) user);
                snprintf (self->cert_detail, sizeof self->cert_detail, "%s (X509 error %d)",
                          X509_verify_cert_error_string (err), err);
            }
            break;
        case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
            if (wsi == self->wsi)
                s_peer_close (self, (const uint8_t *) in, len);
            break;
        case LWS_CALLBACK_CLIENT_CLOSED:
            if (wsi == self->wsi)
                s_closed (self, "connection closed");
            break;
        case LWS_CALLBACK_CLIENT_RECEIVE:
            if (wsi == self->wsi && self->state == S_OPEN)
                s_receive (self, wsi, in, len);
            break;
        case LWS_CALLBACK_CLIENT_WRITEABLE: {
            if (wsi != self->wsi)
                break;
            if (self->close_asked) {
                lws_close_reason (wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
                return -1;
            }
            //  As many as the socket takes now: one poll round per message
            //  would cost more than the messages (many small results or
            //  submits queue up at once under load)
            for (int i = 0; i < 64 && self->out_head; i++) {
                s_out_t *o = self->out_head;
                self->out_head = o->next;
                if (!self->out_head)
                    self->out_tail = NULL;
                int n = lws_write (wsi, o->buf + o->off, o->len, LWS_WRITE_BINARY);
                if (n < (int) o->len) {
                    s_out_free (o);
                    s_log (self, P2L_LOG_WARN, "conn: send failed");
                    return -1;
                }
                if (o->on_sent)
                    o->on_sent (o->tag, self->arg);
                s_out_free (o);
                //  The owner may have asked to close from on_sent
                if (self->close_asked || wsi != self->wsi || lws_send_pipe_choked (wsi))
                    break;
            }
            if (self->out_head || self->close_asked)
                lws_callback_on_writable (wsi);
            break;
        }
        case LWS_CALLBACK_WSI_DESTROY:
            //  Whatever path closed it, the owner hears about it once
            if (wsi == self->wsi)
                s_closed (self, "connection closed");
            break;
        default:
            break;
    }
    return 0;
}

//  Events of a watched descriptor (see p2l_conn_watch)
static int
s_watch_callback (struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    (void) user, (void) in, (void) len;
    p2l_conn_watch_t *w = (p2l_conn_watch_t *) lws_get_opaque_user_data (wsi);
    if (!w)
        return 0;
    switch (reason) {
        case LWS_CALLBACK_RAW_RX_FILE:
        case LWS_CALLBACK_RAW_WRITEABLE_FILE:
            if (!w->on_ready || w->conn->destroying)
                return -1;
            w->on_ready (w->arg);
            //  Unwatched from its own call: close it now
            return w->on_ready ? 0 : -1;
        case LWS_CALLBACK_RAW_CLOSE_FILE: {
            lws_set_opaque_user_data (wsi, NULL);
            void (*on_ready) (void *arg) = w->on_ready;
            bool tell = on_ready && !w->conn->destroying;
            if (w->ref)
                *w->ref = NULL;
            void *arg = w->arg;
            free (w);
            if (tell)
                on_ready (arg);
            break;
        }
        default:
            break;
    }
    return 0;
}

static const struct lws_protocols s_protocols [] = {
    { "p2c2r-agent", s_callback, 0, 65536, 0, NULL, 0 },
    { "p2c2r-agent-fd", s_watch_callback, 0, 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void
s_cron (lws_sorted_usec_list_t *sul)
{
    p2l_conn_t *self = lws_container_of (sul, p2l_conn_t, sul_cron);
    if (self->handlers.on_cron)
        self->handlers.on_cron (self, self->arg);
    lws_sul_schedule (self->context, 0, &self->sul_cron, s_cron,
                      (lws_usec_t) self->cron_ms * LWS_US_PER_MS);
}

int
p2l_conn_parse_url (const char *url, char *host, size_t host_size, int *port_p, char *path,
                    size_t path_size, bool *tls_p, char *err, size_t err_size)
{
    if (!url || !*url) {
        snprintf (err, err_size, "empty server address");
        return -1;
    }
    bool tls = !strncmp (url, "wss://", 6);
    if (!tls && strncmp (url, "ws://", 5)) {
        snprintf (err, err_size, "server address must start with ws:// or wss://, not '%.150s'",
                  url);
        return -1;
    }
    const char *h = url + (tls ? 6 : 5);
    const char *slash = strchr (h, '/');
    size_t hp_len = slash ? (size_t) (slash - h) : strlen (h);
    char hostport [300];
    if (hp_len == 0 || hp_len >= sizeof hostport) {
        snprintf (err, err_size, "bad host in server address '%s'", url);
        return -1;
    }
    memcpy (hostport, h, hp_len);
    hostport [hp_len] = 0;
    int port = P2L_DEFAULT_PORT;
    char *hend = hostport + hp_len;
    //  [v6]:port or host:port
    char *colon = hostport [0] == '[' ? strstr (hostport, "]:") : strrchr (hostport, ':');
    if (colon && hostport [0] == '[')
        colon++;
    if (colon) {
        char *end = NULL;
        long p = strtol (colon + 1, &end, 10);
        if (!colon [1] || *end || p < 1 || p > 65535) {
            snprintf (err, err_size, "bad port in server address '%s'", url);
            return -1;
        }
        port = (int) p;
        hend = colon;
    }
    char *hstart = hostport;
    if (*hstart == '[' && hend > hstart && hend [-1] == ']') {
        hstart++;
        hend--;
    }
    size_t hl = (size_t) (hend - hstart);
    if (hl == 0 || hl >= host_size) {
        snprintf (err, err_size, "bad host in server address '%s'", url);
        return -1;
    }
    memcpy (host, hstart, hl);
    host [hl] = 0;
    snprintf (path, path_size, "%s", slash ? slash : "/");
    *port_p = port;
    *tls_p = tls;
    return 0;
}

p2l_conn_t *
p2l_conn_new (const char *url, const p2l_conn_tls_t *tls, const p2l_conn_handlers_t *handlers,
              void *arg, int cron_ms)
{
    p2l_conn_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    char err [256];
    if (p2l_conn_parse_url (url, self->host, sizeof self->host, &self->port, self->path,
                            sizeof self->path, &self->tls, err, sizeof err) != 0) {
        if (handlers->on_log) {
            char line [320];
            snprintf (line, sizeof line, "conn: bad server address reason=\"%s\"", err);
            handlers->on_log (P2L_LOG_WARN, line, arg);
        }
        free (self);
        return NULL;
    }
    if (tls && tls->ca_file && *tls->ca_file) {
        self->ca_file = strdup (tls->ca_file);
        if (!self->ca_file) {
            free (self);
            return NULL;
        }
    }
    self->insecure = tls && tls->insecure;
    self->handlers = *handlers;
    self->arg = arg;
    self->cron_ms = cron_ms > 0 ? cron_ms : 1000;
    self->rx = p2c_frame_new (P2L_MAX_SERVER_MSG);
    if (!self->rx) {
        free (self->ca_file);
        free (self);
        return NULL;
    }

    struct lws_context_creation_info info;
    memset (&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = s_protocols;
    info.user = self;
    info.gid = -1;
    info.uid = -1;
    if (self->tls) {
        info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        //  A CA file given is the only one trusted: a private server's CA
        //  should not make every public CA good for it too
        if (self->ca_file) {
            info.client_ssl_ca_filepath = self->ca_file;
            info.options |= LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
        }
    }
    else
        //  Plain ws://: no need to load the system's CA store
        info.options = LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
    self->context = lws_create_context (&info);
    if (!self->context) {
        s_log (self, P2L_LOG_WARN, "conn: cannot create the libwebsockets context%s",
               self->ca_file ? " (is the CA file a readable PEM file?)" : "");
        p2c_frame_destroy (&self->rx);
        free (self->ca_file);
        free (self);
        return NULL;
    }
    lws_sul_schedule (self->context, 0, &self->sul_cron, s_cron,
                      (lws_usec_t) self->cron_ms * LWS_US_PER_MS);
    return self;
}

void
p2l_conn_destroy (p2l_conn_t **self_p)
{
    p2l_conn_t *self = *self_p;
    if (!self)
        return;
    //  No handler may run while the context goes away
    memset (&self->handlers, 0, sizeof self->handlers);
    self->destroying = true;
    self->wsi = NULL;
    self->state = S_IDLE;
    lws_sul_cancel (&self->sul_cron);
    lws_context_destroy (self->context);
    s_out_clear (self);
    p2c_frame_destroy (&self->rx);
    free (self->ca_file);
    free (self);
    *self_p = NULL;
}

void
p2l_conn_connect (p2l_conn_t *self)
{
    if (self->state != S_IDLE)
        return;
    struct lws_client_connect_info ci;
    memset (&ci, 0, sizeof ci);
    ci.context = self->context;
    ci.address = self->host;
    ci.port = self->port;
    ci.path = self->path;
    ci.host = self->host;
    ci.origin = self->host;
    ci.ietf_version_or_minus_one = -1;
    ci.local_protocol_name = s_protocols [0].name;
    if (self->tls)
        ci.ssl_connection = LCCSCF_USE_SSL
            | (self->insecure ? LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK
                              : 0);
    memset (&self->end, 0, sizeof self->end);
    self->cert_detail [0] = 0;
    self->state = S_CONNECTING;
    self->wsi = NULL;
    s_log (self, P2L_LOG_DEBUG, "conn: connecting host=%s port=%d tls=%d", self->host, self->port,
           self->tls ? 1 : 0);
    struct lws *wsi = lws_client_connect_via_info (&ci);
    //  A failure reported synchronously may or may not have called back
    if (self->state == S_IDLE)
        return;
    if (!wsi)
        s_closed (self, "connect failed");
    else
        self->wsi = wsi;
}

void
p2l_conn_close (p2l_conn_t *self)
{
    if (self->state == S_IDLE || !self->wsi)
        return;
    self->close_asked = true;
    lws_callback_on_writable (self->wsi);
}

bool
p2l_conn_open (p2l_conn_t *self)
{
    return self->state == S_OPEN && !self->close_asked;
}

int
p2l_conn_send_packed (p2l_conn_t *self, uint8_t *buf, size_t offset, size_t len, void *tag,
                      void (*on_sent) (void *tag, void *arg), void (*free_tag) (void *tag))
{
    assert (offset >= LWS_PRE);
    s_out_t *o = p2l_conn_open (self) && buf ? calloc (1, sizeof *o) : NULL;
    if (!o) {
        if (p2l_conn_open (self) && buf)
            s_log (self, P2L_LOG_WARN, "conn: out of memory queueing a message");
        free (buf);
        if (free_tag && tag)
            free_tag (tag);
        return -1;
    }
    o->buf = buf;
    o->off = offset;
    o->len = len;
    o->tag = tag;
    o->on_sent = on_sent;
    o->free_tag = free_tag;
    //  Straight to the socket when nothing waits before it and it has
    //  room: a peer's result leaves the moment its worker's reply is read,
    //  not one loop turn later. Not from on_message (a gamer's submits go
    //  out together from the writable callback). lws_send_pipe_choked
    //  also tells lws that this write is not a back-to-back one.
    if (!self->out_head && !self->in_receive && !lws_send_pipe_choked (self->wsi)) {
        int n = lws_write (self->wsi, o->buf + o->off, o->len, LWS_WRITE_BINARY);
        if (n < (int) o->len) {
            s_out_free (o);
            s_log (self, P2L_LOG_WARN, "conn: send failed");
            p2l_conn_close (self);
            return -1;
        }
        if (o->on_sent)
            o->on_sent (o->tag, self->arg);
        s_out_free (o);
        return 0;
    }
    if (self->out_tail)
        self->out_tail->next = o;
    else
        self->out_head = o;
    self->out_tail = o;
    lws_callback_on_writable (self->wsi);
    return 0;
}

int
p2l_conn_send_tagged (p2l_conn_t *self, const P2c2r__ClientMessage *msg, void *tag,
                      void (*on_sent) (void *tag, void *arg), void (*free_tag) (void *tag))
{
    if (!p2l_conn_open (self)) {
        if (free_tag && tag)
            free_tag (tag);
        return -1;
    }
    size_t len = 0;
    uint8_t *buf = p2c_msg_pack_client (msg, P2L_CONN_PRE, &len);
    if (!buf) {
        if (free_tag && tag)
            free_tag (tag);
        s_log (self, P2L_LOG_WARN, "conn: out of memory packing a message");
        return -1;
    }
    return p2l_conn_send_packed (self, buf, P2L_CONN_PRE, len, tag, on_sent, free_tag);
}

int
p2l_conn_watch (p2l_conn_t *self, int fd, void (*on_ready) (void *arg), void *arg,
                p2l_conn_watch_t **ref)
{
    assert (on_ready && ref);
    *ref = NULL;
    struct lws_vhost *vhost = lws_get_vhost_by_name (self->context, "default");
    p2l_conn_watch_t *w = calloc (1, sizeof *w);
    lws_sock_file_fd_type desc;
    memset (&desc, 0, sizeof desc);
    //  lws closes what it adopts; the owner keeps its own descriptor
    desc.filefd = fd >= 0 && w && vhost ? dup (fd) : -1;
    if (desc.filefd < 0) {
        free (w);
        s_log (self, P2L_LOG_WARN, "conn: cannot watch a worker socket");
        return -1;
    }
    w->conn = self;
    w->on_ready = on_ready;
    w->arg = arg;
    w->ref = ref;
    w->wsi = lws_adopt_descriptor_vhost (vhost, LWS_ADOPT_RAW_FILE_DESC, desc, "p2c2r-agent-fd",
                                         NULL);
    if (!w->wsi) {
        close (desc.filefd);
        free (w);
        s_log (self, P2L_LOG_WARN, "conn: cannot watch a worker socket");
        return -1;
    }
    lws_set_opaque_user_data (w->wsi, w);
    *ref = w;
    return 0;
}

void
p2l_conn_watch_write (p2l_conn_watch_t *w)
{
    if (w && w->on_ready)
        lws_callback_on_writable (w->wsi);
}

void
p2l_conn_unwatch (p2l_conn_watch_t **ref)
{
    p2l_conn_watch_t *w = *ref;
    if (!w)
        return;
    *ref = NULL;
    w->ref = NULL;
    w->on_ready = NULL;
    //  Closed by lws at its next turn (or at once if this is the watch's
    //  own callback); freed on its close
    lws_set_timeout (w->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

int
p2l_conn_send (p2l_conn_t *self, const P2c2r__ClientMessage *msg)
{
    return p2l_conn_send_tagged (self, msg, NULL, NULL, NULL);
}

int
p2l_conn_run (p2l_conn_t *self, volatile sig_atomic_t *stop_flag)
{
    while (!self->stopping && !(stop_flag && *stop_flag))
        if (lws_service (self->context, 0) < 0)
            return -1;
    return 0;
}

void
p2l_conn_stop (p2l_conn_t *self)
{
    self->stopping = true;
}

int
p2l_conn_step (p2l_conn_t *self)
{
    //  -1: poll without waiting, run the timers that are due. lws may hold
    //  input it has read already (TLS records): that needs "forced
    //  service", another pass, bounded so a flood cannot hold a frame
    for (int i = 0; i < 8; i++) {
        if (lws_service (self->context, -1) < 0)
            return -1;
        if (lws_service_adjust_timeout (self->context, 1, 0) != 0)
            break;
    }
    return 0;
}

int
p2l_conn_socket_fd (p2l_conn_t *self)
{
    return self->wsi && self->state != S_IDLE ? (int) lws_get_socket_fd (self->wsi) : -1;
}

bool
p2l_conn_wants_write (p2l_conn_t *self)
{
    if (self->out_head != NULL || self->close_asked)
        return true;
    //  A TCP connect completes when the socket turns writable. After it, a
    //  writable socket would wake the owner for nothing through the TLS
    //  and HTTP handshakes, which read-driven (see p2l_conn_connecting)
    if (self->state != S_CONNECTING)
        return false;
    int fd = p2l_conn_socket_fd (self);
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    return fd >= 0 && getpeername (fd, (struct sockaddr *) &peer, &len) != 0;
}

bool
p2l_conn_connecting (p2l_conn_t *self)
{
    return self->state == S_CONNECTING;
}

void
p2l_backoff_reset (p2l_backoff_t *self)
{
    self->base_ms = 500;
}

int64_t
p2l_backoff_next (p2l_backoff_t *self, double jitter01)
{
    if (self->base_ms < 500)
        self->base_ms = 500;
    if (jitter01 < 0 || jitter01 >= 1)
        jitter01 = 0.5;
    int64_t base = self->base_ms;
    //  +-25% so that many peers cut off at once do not come back in step
    int64_t delay = base - base / 4 + (int64_t) (jitter01 * (double) (base / 2));
    self->base_ms = base * 2 > 30000 ? 30000 : base * 2;
    return delay;
}

p2l_retry_t
p2l_retry_kind (const p2l_conn_end_t *end, bool auth_refused)
{
    if (auth_refused)
        return P2L_RETRY_AUTH;
    switch (end->code) {
        case 1001:
            return P2L_RETRY_SOON;
        case 1013:
            return P2L_RETRY_LATER;
        case 1008:
            //  The gateway's words for a key it no longer accepts (docs/gateway.md);
            //  its other 1008s (slow consumer, bad frames, registration
            //  timeout) are worth the usual retry
            if (strstr (end->reason, "api_key") || strstr (end->reason, "auth"))
                return P2L_RETRY_AUTH;
            return P2L_RETRY_BACKOFF;
        default:
            return P2L_RETRY_BACKOFF;
    }
}

int64_t
p2l_retry_delay (p2l_retry_t kind, p2l_backoff_t *backoff, double jitter01)
{
    if (jitter01 < 0 || jitter01 >= 1)
        jitter01 = 0.5;
    switch (kind) {
        case P2L_RETRY_SOON:
            //  Only straight after a connection that had been fine (the
            //  backoff was reset): a gateway that answers every connect
            //  with 1001 gets the usual backoff, not a loop. The jitter
            //  spreads a whole gateway's clients over a second.
            if (backoff->base_ms <= 500) {
                backoff->base_ms = 1000;
                return 100 + (int64_t) (jitter01 * 900);
            }
            return p2l_backoff_next (backoff, jitter01);
        case P2L_RETRY_LATER:
            if (backoff->base_ms < 5000)
                backoff->base_ms = 5000;
            return p2l_backoff_next (backoff, jitter01);
        case P2L_RETRY_AUTH:
            //  A refused key stays refused until an operator acts: ask
            //  rarely, 5 minutes +-10%
            backoff->base_ms = 30000;
            return 270000 + (int64_t) (jitter01 * 60000);
        case P2L_RETRY_BACKOFF:
        default:
            return p2l_backoff_next (backoff, jitter01);
    }
}

const char *
p2l_retry_name (p2l_retry_t kind)
{
    switch (kind) {
        case P2L_RETRY_SOON: return "soon";
        case P2L_RETRY_LATER: return "later";
        case P2L_RETRY_AUTH: return "auth";
        default: return "backoff";
    }
}

void
p2l_conn_test (bool verbose)
{
    (void) verbose;
    char host [64], path [64], err [128];
    int port = 0;
    bool tls = true;
    P2C_CHECK (p2l_conn_parse_url ("ws://127.0.0.1:8765", host, sizeof host, &port, path,
                                   sizeof path, &tls, err, sizeof err) == 0);
    P2C_CHECK (!strcmp (host, "127.0.0.1") && port == 8765 && !strcmp (path, "/") && !tls);
    P2C_CHECK (p2l_conn_parse_url ("ws://example.org/p2c", host, sizeof host, &port, path,
                                   sizeof path, &tls, err, sizeof err) == 0);
    P2C_CHECK (!strcmp (host, "example.org") && port == 8765 && !strcmp (path, "/p2c") && !tls);
    P2C_CHECK (p2l_conn_parse_url ("ws://[::1]:9000/x", host, sizeof host, &port, path,
                                   sizeof path, &tls, err, sizeof err) == 0);
    P2C_CHECK (!strcmp (host, "::1") && port == 9000 && !strcmp (path, "/x"));
    //  wss://: TLS, the same default port as ws:// (the gateway serves both on one)
    P2C_CHECK (p2l_conn_parse_url ("wss://h:1", host, sizeof host, &port, path, sizeof path,
                                   &tls, err, sizeof err) == 0);
    P2C_CHECK (!strcmp (host, "h") && port == 1 && !strcmp (path, "/") && tls);
    tls = false;
    P2C_CHECK (p2l_conn_parse_url ("wss://gw.example.org", host, sizeof host, &port, path,
                                   sizeof path, &tls, err, sizeof err) == 0);
    P2C_CHECK (!strcmp (host, "gw.example.org") && port == P2L_DEFAULT_PORT && tls);
    tls = false;
    P2C_CHECK (p2l_conn_parse_url ("wss://[::1]/a/b", host, sizeof host, &port, path,
                                   sizeof path, &tls, err, sizeof err) == 0);
    P2C_CHECK (!strcmp (host, "::1") && port == 8765 && !strcmp (path, "/a/b") && tls);
    P2C_CHECK (p2l_conn_parse_url ("wss://:443", host, sizeof host, &port, path, sizeof path,
                                   &tls, err, sizeof err) == -1);
    P2C_CHECK (p2l_conn_parse_url ("wss://h:70000", host, sizeof host, &port, path, sizeof path,
                                   &tls, err, sizeof err) == -1);
    P2C_CHECK (p2l_conn_parse_url ("wss:/h", host, sizeof host, &port, path, sizeof path,
                                   &tls, err, sizeof err) == -1);
    P2C_CHECK (p2l_conn_parse_url ("https://h", host, sizeof host, &port, path, sizeof path,
                                   &tls, err, sizeof err) == -1);
    P2C_CHECK (strstr (err, "wss://") != NULL);
    P2C_CHECK (p2l_conn_parse_url ("http://h", host, sizeof host, &port, path, sizeof path,
                                   &tls, err, sizeof err) == -1);
    P2C_CHECK (p2l_conn_parse_url ("ws://h:0", host, sizeof host, &port, path, sizeof path,
                                   &tls, err, sizeof err) == -1);
    P2C_CHECK (p2l_conn_parse_url ("ws://h:99999", host, sizeof host, &port, path, sizeof path,
                                   &tls, err, sizeof err) == -1);
    P2C_CHECK (p2l_conn_parse_url ("ws://:80", host, sizeof host, &port, path, sizeof path,
                                   &tls, err, sizeof err) == -1);
    P2C_CHECK (p2l_conn_parse_url ("", host, sizeof host, &port, path, sizeof path,
                                   &tls, err, sizeof err) == -1);

    //  Backoff: every delay within +-25% of 0.5 s doubling, capped at 30 s
    p2l_backoff_t b;
    p2l_backoff_reset (&b);
    int64_t base = 500;
    bool in_bounds = true;
    for (int i = 0; i < 12; i++) {
        double j = (i % 3) / 3.0 + 0.3333;   //  spread over [0, 1)
        int64_t d = p2l_backoff_next (&b, j);
        if (d < base * 3 / 4 || d > base * 5 / 4)
            in_bounds = false;
        base = base * 2 > 30000 ? 30000 : base * 2;
    }
    P2C_CHECK (in_bounds);
    //  The extremes of the jitter land on the edges of the band
    p2l_backoff_reset (&b);
    P2C_CHECK (p2l_backoff_next (&b, 0.0) == 375);
    P2C_CHECK (p2l_backoff_next (&b, 0.999999) <= 1250);
    for (int i = 0; i < 20; i++)
        p2l_backoff_next (&b, 0.5);
    int64_t lo = p2l_backoff_next (&b, 0.0), hi = p2l_backoff_next (&b, 0.999999);
    P2C_CHECK (lo == 22500 && hi >= 37000 && hi <= 37500);
    p2l_backoff_reset (&b);
    P2C_CHECK (p2l_backoff_next (&b, 0.5) == 500);

    //  Close codes: how a connection ended decides when to come back
    p2l_conn_end_t end;
    memset (&end, 0, sizeof end);
    P2C_CHECK (p2l_retry_kind (&end, false) == P2L_RETRY_BACKOFF);    //  no close frame
    P2C_CHECK (p2l_retry_kind (&end, true) == P2L_RETRY_AUTH);        //  auth_failed answer
    end.code = 1001;
    snprintf (end.reason, sizeof end.reason, "going away: gateway shutting down");
    P2C_CHECK (p2l_retry_kind (&end, false) == P2L_RETRY_SOON);
    end.code = 1013;
    snprintf (end.reason, sizeof end.reason, "too many connections from your address");
    P2C_CHECK (p2l_retry_kind (&end, false) == P2L_RETRY_LATER);
    end.code = 1008;
    snprintf (end.reason, sizeof end.reason, "api_key revoked");
    P2C_CHECK (p2l_retry_kind (&end, false) == P2L_RETRY_AUTH);
    snprintf (end.reason, sizeof end.reason, "slow consumer: send queue full");
    P2C_CHECK (p2l_retry_kind (&end, false) == P2L_RETRY_BACKOFF);
    snprintf (end.reason, sizeof end.reason, "registration timeout");
    P2C_CHECK (p2l_retry_kind (&end, false) == P2L_RETRY_BACKOFF);
    end.code = 1000;
    end.reason [0] = 0;
    P2C_CHECK (p2l_retry_kind (&end, false) == P2L_RETRY_BACKOFF);
    end.code = 0;
    end.cert_error = true;
    P2C_CHECK (p2l_retry_kind (&end, false) == P2L_RETRY_BACKOFF);
    P2C_CHECK (!strcmp (p2l_retry_name (P2L_RETRY_AUTH), "auth")
               && !strcmp (p2l_retry_name (P2L_RETRY_SOON), "soon"));

    //  1001 after a good connection: within a second, whatever the jitter
    p2l_backoff_reset (&b);
    int64_t d1 = p2l_retry_delay (P2L_RETRY_SOON, &b, 0.0);
    p2l_backoff_reset (&b);
    int64_t d2 = p2l_retry_delay (P2L_RETRY_SOON, &b, 0.999999);
    P2C_CHECK (d1 >= 100 && d1 <= 1000 && d2 >= 100 && d2 <= 1000 && d2 > d1);
    //  ...but a gateway that says 1001 to every connect gets the usual backoff
    int64_t d3 = p2l_retry_delay (P2L_RETRY_SOON, &b, 0.5);
    P2C_CHECK (d3 == 1000);
    P2C_CHECK (p2l_retry_delay (P2L_RETRY_SOON, &b, 0.5) == 2000);
    //  1013: at least 5 s +-25%, then growing like the usual backoff
    p2l_backoff_reset (&b);
    int64_t l1 = p2l_retry_delay (P2L_RETRY_LATER, &b, 0.0);
    int64_t l2 = p2l_retry_delay (P2L_RETRY_LATER, &b, 0.5);
    P2C_CHECK (l1 == 3750 && l2 == 10000);
    for (int i = 0; i < 10; i++)
        p2l_retry_delay (P2L_RETRY_LATER, &b, 0.5);
    P2C_CHECK (p2l_retry_delay (P2L_RETRY_LATER, &b, 0.5) == 30000);
    //  A refused or revoked key: about 5 minutes, never a fast loop
    p2l_backoff_reset (&b);
    bool long_wait = true;
    for (int i = 0; i < 10; i++) {
        int64_t d = p2l_retry_delay (P2L_RETRY_AUTH, &b, i / 10.0);
        if (d < 270000 || d > 330000)
            long_wait = false;
    }
    P2C_CHECK (long_wait);
    //  After it, a plain failure does not start again from half a second
    P2C_CHECK (p2l_retry_delay (P2L_RETRY_BACKOFF, &b, 0.5) == 30000);
    //  The usual backoff is unchanged by the policy
    p2l_backoff_reset (&b);
    P2C_CHECK (p2l_retry_delay (P2L_RETRY_BACKOFF, &b, 0.5) == 500);
    P2C_CHECK (p2l_retry_delay (P2L_RETRY_BACKOFF, &b, 0.5) == 1000);
}
