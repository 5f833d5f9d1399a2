/*  The gateway server (see gw_server.h).

    Flow of a client frame: RECEIVE pieces -> p2c_frame reassembly ->
    s_decode_* per dialect -> s_dispatch to one handler per message kind
    -> answers through s_send, which encodes per the connection's dialect
    and queues for SERVER_WRITEABLE. Flow of a broker message: the adopted
    ZeroMQ descriptor wakes the loop -> s_drain -> s_on_internal.

    ZMQ_FD is edge-triggered: a wake-up may stand for many messages, and a
    send may consume the wake-up of messages that arrived meanwhile. So
    after every pass of the loop in which something was sent, or in which
    the broker socket woke us, the run loop calls s_drain, which receives
    until nothing is left; the cron drains too. Draining once per pass,
    not per callback, matters: an empty receive costs libzmq two system
    calls. */
#include "gw_server.h"
#include "gw_authcache.h"
#include "gw_json.h"
#include "gw_limits.h"
#include "gw_metrics.h"
#include "gw_pending.h"
#include "gw_session.h"
#include "gw_sessions.h"
#include "gw_taskid.h"
#include "p2c_log.h"
#include "p2c_msg.h"
#include "p2c_node.h"
#include "p2c_tasks.h"
#include "p2c_test.h"
#include "p2c_time.h"

#include <ctype.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define GW_MAX_ID           64      //  longest peer_id / gamer_id
#define GW_MAX_API_KEY      512     //  longest api_key accepted
#define GW_MAX_CLIENT_REF   256     //  longest client_ref kept in a pending entry
#define GW_CRON_MS          100     //  the one periodic timer
#define GW_RX_BUFFER        65536   //  lws' receive buffer, per connection
#define GW_SLOW_CRON_MS     1000    //  chores that need not run every tick
#define GW_CLOSE_WAIT_MS    1500    //  after the going-away closes, the loop ends by then
#define GW_RECHECK_CORR     (1ULL << 63)    //  marks AuthRequests that re-check a key
#define GW_WRITE_BATCH      65536   //  queued frames coalesced into one write, bytes

//  One /api/stats request waiting for the scheduler's and ledger's figures
typedef struct {
    uint64_t corr;
    struct lws *wsi;            //  the HTTP connection (borrowed)
    json_t *sched;              //  StatsReply figures, NULL until they come
    json_t *ledger;
    int64_t deadline_ms;        //  answer with what is there by then
} gw_stats_job_t;

struct _gw_server_t {
    gw_settings_t cfg;          //  settings; its strings point at the copies below
    char *host;                 //  listen address (owned)
    char *broker;               //  broker endpoint (owned)
    char *tls_cert, *tls_key;   //  certificate and key files (owned), NULL: plain
    char *proxies;              //  trusted proxies (owned)
    char *region;               //  this gateway's region (owned)
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    struct lws *zmq_wsi;        //  the ZeroMQ descriptor adopted into the loop
    p2c_node_t *node;           //  broker connection
    gw_sessions_t *sessions;    //  live client connections
    gw_pending_t *pending;      //  accepted submits not answered yet
    gw_taskid_t *taskids;       //  task id generator
    lws_sorted_usec_list_t cron;
    volatile sig_atomic_t stop; //  stop requests (signals) so far
    bool stopping;              //  the loop ends now
    bool draining;              //  s_drain is on the stack
    bool drain_due;             //  broker messages may wait: drain at the end of the pass
    bool quitting;              //  SIGTERM: no new work, finishing in-flight tasks
    bool goodbye_sent;          //  every session was told 1001 going away
    int64_t quit_deadline_ms;   //  in-flight tasks are given up then
    int64_t goodbye_ms;         //  when the going-away closes were sent
    int64_t last_slow_ms;       //  last run of the slow chores
    gw_metrics_t *metrics;
    gw_iplimit_t *iplimit;      //  connections and connects per client address
    gw_authcache_t *authcache;  //  API keys the ledger accepted
    uint64_t recheck_seq;       //  correlation of key re-checks
    zlistx_t *stats_jobs;       //  gw_stats_job_t waiting (owned)
    uint64_t stats_seq;
    lws_retry_bo_t retry;       //  lws' idle ping / hang-up policy for client connections
    uint8_t *wbuf;              //  LWS_PRE, then frames coalesced for one write
    size_t wbuf_size;
    //  Counters (for logs now, /metrics later)
    uint64_t deliver_dropped;   //  Deliver for a task no longer pending
    uint64_t internal_dropped;  //  internal messages we do not handle
    uint64_t auth_stale;        //  AuthReply for no registration in progress
    uint64_t bad_frames;        //  client frames answered as bad
    uint64_t timeouts;          //  tasks answered by the deadline guard
};

//  lws' per-connection memory: a pointer to our session (WebSocket) or the
//  HTTP answer being made (phase 0: waiting for it, 1: headers to write,
//  2: body to write)
typedef struct {
    gw_session_t *session;
    gw_stats_job_t *job;        //  an /api/stats answer in the making
    uint8_t *http_body;         //  LWS_PRE spare bytes, then the body
    size_t http_len;
    unsigned http_status;
    const char *http_type;
    int http_phase;
} gw_pss_t;

static void s_drain (gw_server_t *self);
static void s_registered (gw_server_t *self, gw_session_t *s, int64_t account_id);
static void s_on_stats_reply (gw_server_t *self, P2c2r__StatsReply *r);

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

bool
gw_valid_id (const char *id)
{
    if (!id)
        return false;
    size_t n = strlen (id);
    if (n == 0 || n > GW_MAX_ID)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) id [i] < 0x21 || (unsigned char) id [i] > 0x7e)
            return false;
    return true;
}

// ---------------------------------------------------------------------------
//  Sending to the broker

//  A send may take in the wake-up of messages that arrived meanwhile (see
//  the top): the run loop drains after any pass that sent
static int
s_node_send (gw_server_t *self, const char *dest, P2c2r__Internal *msg)
{
    self->drain_due = true;
    return p2c_node_send (self->node, dest, msg);
}

static void
s_peer_up (gw_server_t *self, gw_session_t *s)
{
    P2c2r__Session sess = P2C2R__SESSION__INIT;
    sess.gateway = (char *) p2c_node_id (self->node);
    sess.conn = s->conn;
    P2c2r__Capabilities none = P2C2R__CAPABILITIES__INIT;
    P2c2r__PeerUp up = P2C2R__PEER_UP__INIT;
    up.session = &sess;
    up.peer_id = s->name;
    up.account_id = s->account_id;
    up.capabilities = s->reg && s->reg->register_peer && s->reg->register_peer->capabilities
                    ? s->reg->register_peer->capabilities : &none;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_PEER_UP;
    msg.peer_up = &up;
    if (s_node_send (self, "scheduler", &msg) != 0)
        log_warn ("gateway: cannot send peer_up conn=%llu id=%s",
                  (unsigned long long) s->conn, s->name);
}

static void
s_peer_down (gw_server_t *self, const char *gateway, uint64_t conn)
{
    P2c2r__Session sess = P2C2R__SESSION__INIT;
    sess.gateway = (char *) gateway;
    sess.conn = conn;
    P2c2r__PeerDown down = P2C2R__PEER_DOWN__INIT;
    down.session = &sess;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_PEER_DOWN;
    msg.peer_down = &down;
    if (s_node_send (self, "scheduler", &msg) != 0)
        log_warn ("gateway: cannot send peer_down conn=%llu", (unsigned long long) conn);
}

// ---------------------------------------------------------------------------
//  Sending to clients: encode per dialect, queue, write when writeable

//  Metric labels come only from this list, never from free text a client
//  (or a peer's error code passed through the scheduler) could vary
static const char *
s_code_label (const char *code)
{
    static const char *known [] = { "bad_request", "auth_failed", "too_large", "rate_limited",
        "no_peers", "timeout", "invalid_params", "unknown_task_type", "insufficient_funds",
        "kernel_error", "rejected", "unavailable", NULL };
    for (int i = 0; code && known [i]; i++)
        if (!strcmp (code, known [i]))
            return known [i];
    return "other";
}

static const char *
s_server_kind (const P2c2r__ServerMessage *m)
{
    switch (m->msg_case) {
        case P2C2R__SERVER_MESSAGE__MSG_REGISTERED: return "registered";
        case P2C2R__SERVER_MESSAGE__MSG_ASSIGN: return "execute_task";
        case P2C2R__SERVER_MESSAGE__MSG_TASK_RESULT: return "task_result";
        case P2C2R__SERVER_MESSAGE__MSG_ERROR: return "error";
        default: return "other";
    }
}

//  Closes a connection with a status and reason once its queue is written
static void
s_close (gw_session_t *s, int code, const char *reason)
{
    gw_session_close (s, code, reason);
    lws_callback_on_writable (s->wsi);
}

//  Queues one message for a client. A client whose queue is full does not
//  read what it is sent: it is dropped rather than allowed to hold memory.
static void
s_send (gw_server_t *self, gw_session_t *s, const P2c2r__ServerMessage *m)
{
    if (s->closing)
        return;
    size_t len = 0;
    bool binary = s->dialect == GW_DIALECT_PROTOBUF;
    uint8_t *buf = binary ? p2c_msg_pack_server (m, LWS_PRE, &len)
                          : gw_json_encode (m, LWS_PRE, &len);
    if (!buf) {
        log_warn ("gateway: cannot encode conn=%llu kind=%d dialect=%s",
                  (unsigned long long) s->conn, (int) m->msg_case, binary ? "protobuf" : "json");
        return;
    }
    if (gw_session_queue (s, &buf, LWS_PRE, len, binary) != 0) {
        log_warn ("gateway: send queue full, closing conn=%llu role=%s id=%s",
                  (unsigned long long) s->conn, gw_role_name (s->role), s->name ? s->name : "-");
        gw_metrics_inc (self->metrics, GW_M_LIMITS, "send_queue");
        //  What is queued will not be read: only the close frame goes out,
        //  and a client that does not even take that is cut after 5 s
        gw_session_clear (s);
        s_close (s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "slow consumer: send queue full");
        lws_set_timeout (s->wsi, PENDING_TIMEOUT_CLOSE_SEND, 5);
        return;
    }
    gw_metrics_inc (self->metrics, GW_M_MSG_OUT, s_server_kind (m));
    if (m->msg_case == P2C2R__SERVER_MESSAGE__MSG_ERROR)
        gw_metrics_inc (self->metrics, GW_M_ERRORS, s_code_label (m->error->code));
    else
    if (m->msg_case == P2C2R__SERVER_MESSAGE__MSG_TASK_RESULT && !m->task_result->ok)
        gw_metrics_inc (self->metrics, GW_M_ERRORS, s_code_label (m->task_result->error_code));
    lws_callback_on_writable (s->wsi);
}

static void
s_send_error (gw_server_t *self, gw_session_t *s, const char *code, const char *text,
              const char *client_ref)
{
    P2c2r__Error err = P2C2R__ERROR__INIT;
    err.code = (char *) code;
    err.message = (char *) text;
    err.client_ref = (char *) (client_ref ? client_ref : "");
    P2c2r__ServerMessage m = P2C2R__SERVER_MESSAGE__INIT;
    m.msg_case = P2C2R__SERVER_MESSAGE__MSG_ERROR;
    m.error = &err;
    s_send (self, s, &m);
}

//  Answers a bad frame. Nothing else happens for it; a client that sends
//  only bad frames is closed with 1008 after max_bad_frames in a row.
static void
s_bad (gw_server_t *self, gw_session_t *s, const char *code, const char *client_ref,
       const char *fmt, ...) __attribute__ ((format (printf, 5, 6)));

static void
s_bad (gw_server_t *self, gw_session_t *s, const char *code, const char *client_ref,
       const char *fmt, ...)
{
    char text [256];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (text, sizeof text, fmt, ap);
    va_end (ap);
    self->bad_frames++;
    s->bad_total++;
    s->bad_in_row++;
    log_debug ("gateway: bad frame conn=%llu code=%s in_row=%u", (unsigned long long) s->conn,
               code, s->bad_in_row);
    s_send_error (self, s, code, text, client_ref);
    if (s->bad_in_row >= self->cfg.max_bad_frames && !s->closing) {
        log_info ("gateway: closing conn=%llu reason=bad_frames count=%u last=%s",
                  (unsigned long long) s->conn, s->bad_in_row, code);
        s_close (s, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                 !strcmp (code, "rate_limited") ? "rate limit exceeded" : "too many bad frames");
    }
}

//  The one terminal answer to a submit that failed
static void
s_task_error (gw_server_t *self, gw_session_t *s, const char *task_id, const char *client_ref,
              const char *code, const char *text)
{
    P2c2r__TaskReply r = P2C2R__TASK_REPLY__INIT;
    r.task_id = (char *) (task_id ? task_id : "");
    r.client_ref = (char *) (client_ref ? client_ref : "");
    r.ok = false;
    r.error_code = (char *) code;
    r.error = (char *) text;
    P2c2r__ServerMessage m = P2C2R__SERVER_MESSAGE__INIT;
    m.msg_case = P2C2R__SERVER_MESSAGE__MSG_TASK_RESULT;
    m.task_result = &r;
    s_send (self, s, &m);
}

// ---------------------------------------------------------------------------
//  Registration

//  The correlation number names the connection and the attempt, so a late
//  AuthReply for an earlier attempt of the same connection is recognised
//  as stale. Connection numbers stay below 2^48 in any real run.
static uint64_t
s_next_corr (gw_session_t *s)
{
    uint64_t attempt = ((s->auth_corr & 0xffff) + 1) & 0xffff;
    return (s->conn << 16) | attempt;
}

static void
s_auth_fail (gw_server_t *self, gw_session_t *s, const char *code, const char *text)
{
    log_info ("gateway: registration refused conn=%llu role=%s id=%s code=%s",
              (unsigned long long) s->conn, gw_role_name (s->role), s->name ? s->name : "-", code);
    s->state = GW_STATE_NEW;
    s->role = GW_ROLE_NONE;
    free (s->name);
    s->name = NULL;
    p2c_msg_client_free (&s->reg);
    s_send_error (self, s, code, text, NULL);
}

static void
s_handle_register (gw_server_t *self, gw_session_t *s, gw_role_t role,
                   P2c2r__ClientMessage **msg_p)
{
    P2c2r__ClientMessage *msg = *msg_p;
    const char *name, *key;
    if (role == GW_ROLE_PEER) {
        name = msg->register_peer->peer_id;
        key = msg->register_peer->api_key;
    }
    else {
        name = msg->register_gamer->gamer_id;
        key = msg->register_gamer->api_key;
    }
    if (s->state == GW_STATE_REGISTERED) {
        s_bad (self, s, "bad_request", NULL, "already registered as %s", gw_role_name (s->role));
        return;
    }
    if (s->state == GW_STATE_AUTHING) {
        s_bad (self, s, "bad_request", NULL, "registration already in progress");
        return;
    }
    if (!gw_valid_id (name)) {
        s_bad (self, s, "bad_request", NULL, "%s must be 1 to %d visible ASCII characters",
               role == GW_ROLE_PEER ? "peer_id" : "gamer_id", GW_MAX_ID);
        return;
    }
    if (strlen (key) > GW_MAX_API_KEY) {
        s_bad (self, s, "bad_request", NULL, "api_key longer than %d characters", GW_MAX_API_KEY);
        return;
    }
    if (self->quitting) {
        s_send_error (self, s, "unavailable", "this gateway is shutting down; reconnect", NULL);
        return;
    }
    if (!*key && !self->cfg.auth_open) {
        //  The ledger would say the same; no need to ask it
        gw_metrics_inc (self->metrics, GW_M_EVENTS, "auth_refused");
        s_bad (self, s, "auth_failed", NULL, "an api_key is required on this server");
        return;
    }
    if (*key) {
        char hash [GW_KEY_HASH_LEN + 1];
        gw_authcache_hash (gw_role_name (role), key, hash);
        gw_authentry_t *e = gw_authcache_fresh (self->authcache, hash, p2c_now_ms ());
        if (e) {
            gw_metrics_inc (self->metrics, GW_M_EVENTS, "auth_cache_hit");
            s->role = role;
            s->name = strdup (name);
            p2c_msg_client_free (&s->reg);
            s->reg = msg;
            *msg_p = NULL;
            snprintf (s->key_hash, sizeof s->key_hash, "%s", hash);
            e->users++;
            s_registered (self, s, e->account_id);
            return;
        }
        gw_metrics_inc (self->metrics, GW_M_EVENTS, "auth_cache_miss");
    }
    s->role = role;
    s->name = strdup (name);
    s->state = GW_STATE_AUTHING;
    s->auth_corr = s_next_corr (s);
    s->auth_deadline_ms = p2c_now_ms () + self->cfg.auth_timeout_ms;
    //  Kept for the capabilities, sent again with every PeerUp
    p2c_msg_client_free (&s->reg);
    s->reg = msg;
    *msg_p = NULL;

    P2c2r__AuthRequest req = P2C2R__AUTH_REQUEST__INIT;
    req.corr = s->auth_corr;
    req.role = (char *) gw_role_name (role);
    req.name = s->name;
    req.api_key = (char *) key;
    req.open = self->cfg.auth_open;
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_AUTH_REQUEST;
    m.auth_request = &req;
    if (s_node_send (self, "ledger", &m) != 0) {
        s_auth_fail (self, s, "unavailable", "the ledger cannot be reached; try again later");
        return;
    }
    log_debug ("gateway: auth request conn=%llu role=%s id=%s",
               (unsigned long long) s->conn, gw_role_name (role), s->name);
}

//  The ledger's answer to the periodic re-check of a key in use: a key
//  that is no longer accepted closes every session registered with it
static void
s_on_recheck (gw_server_t *self, P2c2r__AuthReply *r)
{
    gw_authentry_t *e = gw_authcache_by_corr (self->authcache, r->corr);
    if (!e) {
        self->auth_stale++;
        return;
    }
    if (r->ok && r->account_id == e->account_id) {
        e->verified_ms = p2c_now_ms ();
        return;
    }
    if (!r->ok && !strcmp (r->code, "unavailable"))
        return;         //  the ledger cannot tell now; ask again next time
    char hash [GW_KEY_HASH_LEN + 1];
    snprintf (hash, sizeof hash, "%s", e->hash);
    size_t closed = 0;
    zlistx_t *list = gw_sessions_list (self->sessions);
    for (gw_session_t *s = (gw_session_t *) zlistx_first (list); s;
         s = (gw_session_t *) zlistx_next (list))
        if (!strcmp (s->key_hash, hash) && !s->closing) {
            s_close (s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "api_key revoked");
            closed++;
        }
    zlistx_destroy (&list);
    gw_metrics_inc (self->metrics, GW_M_EVENTS, "auth_revoked");
    log_info ("gateway: api key no longer accepted role=%s sessions_closed=%zu", e->role, closed);
    gw_authcache_remove (self->authcache, hash);
}

//  Sends the re-checks that are due (from the slow cron)
static void
s_rechecks (gw_server_t *self, int64_t now)
{
    zlistx_t *due = gw_authcache_due (self->authcache, now, self->cfg.auth_recheck_ms);
    for (gw_authentry_t *e = (gw_authentry_t *) zlistx_first (due); e;
         e = (gw_authentry_t *) zlistx_next (due)) {
        uint64_t corr = GW_RECHECK_CORR | ++self->recheck_seq;
        P2c2r__AuthRequest req = P2C2R__AUTH_REQUEST__INIT;
        req.corr = corr;
        req.role = e->role;
        req.name = e->name;
        req.api_key = e->key;
        req.open = self->cfg.auth_open;
        P2c2r__Internal m = P2C2R__INTERNAL__INIT;
        m.msg_case = P2C2R__INTERNAL__MSG_AUTH_REQUEST;
        m.auth_request = &req;
        if (s_node_send (self, "ledger", &m) == 0)
            gw_authcache_asked (self->authcache, e, corr, now);
    }
    zlistx_destroy (&due);
}

static void
s_on_auth_reply (gw_server_t *self, P2c2r__AuthReply *r)
{
    if (r->corr & GW_RECHECK_CORR) {
        s_on_recheck (self, r);
        return;
    }
    gw_session_t *s = gw_sessions_lookup (self->sessions, r->corr >> 16);
    if (!s || s->state != GW_STATE_AUTHING || s->auth_corr != r->corr) {
        //  The client left, or the attempt timed out already
        self->auth_stale++;
        log_debug ("gateway: stale auth reply corr=%llu", (unsigned long long) r->corr);
        return;
    }
    if (!r->ok) {
        s_auth_fail (self, s, *r->code ? r->code : "auth_failed",
                     *r->message ? r->message : "registration refused");
        return;
    }
    const char *key = s->reg && s->reg->register_peer ? s->reg->register_peer->api_key
                    : s->reg && s->reg->register_gamer ? s->reg->register_gamer->api_key : "";
    if (*key) {
        char hash [GW_KEY_HASH_LEN + 1];
        gw_authcache_hash (gw_role_name (s->role), key, hash);
        gw_authentry_t *e = gw_authcache_put (self->authcache, hash, gw_role_name (s->role),
                                              s->name, key, r->account_id, p2c_now_ms ());
        e->users++;
        snprintf (s->key_hash, sizeof s->key_hash, "%s", hash);
    }
    s_registered (self, s, r->account_id);
}

//  The registration succeeded (from the ledger, or a cached key)
static void
s_registered (gw_server_t *self, gw_session_t *s, int64_t account_id)
{
    s->state = GW_STATE_REGISTERED;
    s->account_id = account_id;
    log_info ("gateway: registered conn=%llu role=%s id=%s account=%lld",
              (unsigned long long) s->conn, gw_role_name (s->role), s->name,
              (long long) s->account_id);

    char text [128];
    snprintf (text, sizeof text, "Registered as %s: %s", gw_role_name (s->role), s->name);
    P2c2r__Registered reg = P2C2R__REGISTERED__INIT;
    reg.role = (char *) gw_role_name (s->role);
    reg.id = s->name;
    reg.message = text;
    P2c2r__ServerMessage m = P2C2R__SERVER_MESSAGE__INIT;
    m.msg_case = P2C2R__SERVER_MESSAGE__MSG_REGISTERED;
    m.registered = &reg;
    s_send (self, s, &m);
    if (s->role == GW_ROLE_PEER)
        s_peer_up (self, s);
}

//  Registrations the ledger has not answered in time
static void
s_auth_timeouts (gw_server_t *self, int64_t now)
{
    zlistx_t *list = gw_sessions_list (self->sessions);
    for (gw_session_t *s = (gw_session_t *) zlistx_first (list); s;
         s = (gw_session_t *) zlistx_next (list))
        if (s->state == GW_STATE_AUTHING && s->auth_deadline_ms <= now)
            s_auth_fail (self, s, "unavailable",
                         "no answer from the account service; try again later");
    zlistx_destroy (&list);
}

// ---------------------------------------------------------------------------
//  Client messages after registration

//  True when the session is registered in the role; else answers bad.
static bool
s_require (gw_server_t *self, gw_session_t *s, gw_role_t role, const char *what,
           const char *client_ref)
{
    if (s->state != GW_STATE_REGISTERED) {
        s_bad (self, s, "bad_request", client_ref, "not_registered: register as a %s before %s",
               gw_role_name (role), what);
        return false;
    }
    if (s->role != role) {
        s_bad (self, s, "bad_request", client_ref, "%s is for a %s, this connection is a %s",
               what, gw_role_name (role), gw_role_name (s->role));
        return false;
    }
    return true;
}

static void
s_handle_submit (gw_server_t *self, gw_session_t *s, P2c2r__Submit *sub)
{
    const char *ref = sub->client_ref;
    if (!s_require (self, s, GW_ROLE_GAMER, "submit", ref))
        return;
    if (strlen (ref) > GW_MAX_CLIENT_REF) {
        s_task_error (self, s, NULL, "", "invalid_params", "client_ref is too long");
        return;
    }
    const char *type = p2c_task_canonical (sub->task_type);
    if (!type) {
        s_task_error (self, s, NULL, ref, "unknown_task_type", "unknown task type");
        return;
    }
    const char *params = *sub->params_json ? sub->params_json : "{}";
    json_error_t jerr;
    json_t *obj = json_loads (params, JSON_REJECT_DUPLICATES, &jerr);
    bool is_object = obj && json_is_object (obj);
    json_decref (obj);
    if (!is_object) {
        s_task_error (self, s, NULL, ref, "invalid_params", "params_json is not a JSON object");
        return;
    }
    uint32_t deadline = sub->deadline_ms ? sub->deadline_ms : self->cfg.default_deadline_ms;
    if (deadline > self->cfg.max_deadline_ms)
        deadline = self->cfg.max_deadline_ms;

    char *task_id = gw_taskid_next (self->taskids);
    if (!task_id) {
        s_task_error (self, s, NULL, ref, "unavailable", "out of memory");
        return;
    }
    if (self->quitting) {
        s_task_error (self, s, task_id, ref, "unavailable",
                      "this gateway is shutting down; reconnect and submit again");
        free (task_id);
        return;
    }
    if (p2c_node_service_count (self->node, "scheduler") == 0) {
        s_task_error (self, s, task_id, ref, "unavailable", "no scheduler is running");
        free (task_id);
        return;
    }
    int64_t guard = p2c_now_ms () + deadline + self->cfg.guard_grace_ms;
    if (gw_pending_add (self->pending, task_id, s->conn, ref, guard) != 0) {
        s_task_error (self, s, task_id, ref, "unavailable", "duplicate task id");
        free (task_id);
        return;
    }

    //  A shallow copy carries the canonical name and the default params;
    //  its strings stay owned by the decoded client message
    P2c2r__Submit fwd = *sub;
    fwd.task_type = (char *) type;
    fwd.params_json = (char *) params;
    fwd.deadline_ms = deadline;
    P2c2r__Session gamer = P2C2R__SESSION__INIT;
    gamer.gateway = (char *) p2c_node_id (self->node);
    gamer.conn = s->conn;
    P2c2r__TaskSubmit ts = P2C2R__TASK_SUBMIT__INIT;
    ts.task_id = task_id;
    ts.gamer = &gamer;
    ts.gamer_account = s->account_id;
    ts.gamer_id = s->name;
    ts.submit = &fwd;
    ts.deadline_ms = deadline;
    ts.region = self->region;
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_TASK_SUBMIT;
    m.task_submit = &ts;
    if (s_node_send (self, "scheduler", &m) != 0) {
        gw_pending_entry_t *e = gw_pending_take (self->pending, task_id);
        gw_pending_entry_destroy (&e);
        s_task_error (self, s, task_id, ref, "unavailable", "the scheduler cannot be reached");
    }
    else {
        s->tasks++;
        log_debug ("gateway: submit task=%s conn=%llu type=%s deadline_ms=%u", task_id,
                   (unsigned long long) s->conn, type, deadline);
    }
    free (task_id);
}

static void
s_handle_result (gw_server_t *self, gw_session_t *s, P2c2r__PeerResult *res)
{
    if (!s_require (self, s, GW_ROLE_PEER, "result", NULL))
        return;
    //  A JSON peer has no attempt number: it is the one this gateway
    //  passed on with the task
    uint32_t attempt = 0;
    if (gw_session_assigned_take (s, res->task_id, &attempt) && s->dialect == GW_DIALECT_JSON)
        res->attempt = attempt;
    P2c2r__Session peer = P2C2R__SESSION__INIT;
    peer.gateway = (char *) p2c_node_id (self->node);
    peer.conn = s->conn;
    P2c2r__TaskResult tr = P2C2R__TASK_RESULT__INIT;
    tr.peer = &peer;
    tr.result = res;
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_TASK_RESULT;
    m.task_result = &tr;
    if (s_node_send (self, "scheduler", &m) != 0)
        log_warn ("gateway: cannot forward result task=%s conn=%llu", res->task_id,
                  (unsigned long long) s->conn);
    else
        log_debug ("gateway: result task=%s conn=%llu ok=%d", res->task_id,
                   (unsigned long long) s->conn, res->ok);
}

static void
s_handle_heartbeat (gw_server_t *self, gw_session_t *s, P2c2r__Heartbeat *hb)
{
    (void) hb;
    //  Accepted and not used yet: load reporting comes with the scheduler's
    //  latency model
    s_require (self, s, GW_ROLE_PEER, "heartbeat", NULL);
}

//  One handler per message kind. Handlers that keep the message take it
//  from *msg_p.
static void
s_dispatch (gw_server_t *self, gw_session_t *s, P2c2r__ClientMessage **msg_p)
{
    P2c2r__ClientMessage *msg = *msg_p;
    switch (msg->msg_case) {
        case P2C2R__CLIENT_MESSAGE__MSG_REGISTER_PEER:
            s_handle_register (self, s, GW_ROLE_PEER, msg_p);
            break;
        case P2C2R__CLIENT_MESSAGE__MSG_REGISTER_GAMER:
            s_handle_register (self, s, GW_ROLE_GAMER, msg_p);
            break;
        case P2C2R__CLIENT_MESSAGE__MSG_SUBMIT:
            s_handle_submit (self, s, msg->submit);
            break;
        case P2C2R__CLIENT_MESSAGE__MSG_RESULT:
            s_handle_result (self, s, msg->result);
            break;
        case P2C2R__CLIENT_MESSAGE__MSG_HEARTBEAT:
            s_handle_heartbeat (self, s, msg->heartbeat);
            break;
        default:
            s_bad (self, s, "bad_request", NULL, "unknown message kind");
            break;
    }
}

//  Binary frames: one protobuf ClientMessage
static P2c2r__ClientMessage *
s_decode_protobuf (gw_server_t *self, const uint8_t *data, size_t size, const char **why_p)
{
    P2c2r__ClientMessage *msg = p2c_msg_unpack_client (data, size, self->cfg.max_frame);
    if (!msg)
        *why_p = "undecodable frame: expected one protobuf ClientMessage";
    return msg;
}

static const char *
s_client_kind (const P2c2r__ClientMessage *m)
{
    switch (m->msg_case) {
        case P2C2R__CLIENT_MESSAGE__MSG_REGISTER_PEER: return "register_peer";
        case P2C2R__CLIENT_MESSAGE__MSG_REGISTER_GAMER: return "register_gamer";
        case P2C2R__CLIENT_MESSAGE__MSG_SUBMIT: return "submit_task";
        case P2C2R__CLIENT_MESSAGE__MSG_RESULT: return "task_result";
        case P2C2R__CLIENT_MESSAGE__MSG_HEARTBEAT: return "heartbeat";
        default: return "other";
    }
}

static void
s_on_message (gw_server_t *self, gw_session_t *s, const uint8_t *data, size_t size, bool binary)
{
    if (!s->dialect_set) {
        s->dialect = binary ? GW_DIALECT_PROTOBUF : GW_DIALECT_JSON;
        s->dialect_set = true;
    }
    int64_t now = p2c_now_ms ();
    s->last_rx_ms = now;
    bool allowed = gw_bucket_take (&s->msgs, self->cfg.rate_msgs, self->cfg.rate_burst, now);
    uint64_t bad_before = s->bad_total;
    const char *code = "bad_request";
    char why [200] = "bad frame", ref [GW_MAX_CLIENT_REF + 1] = "";
    P2c2r__ClientMessage *msg = NULL;
    if (binary) {
        msg = s_decode_protobuf (self, data, size, (const char **) &code);
        if (!msg) {
            snprintf (why, sizeof why, "%s", code);
            code = "bad_request";
        }
        else
        if (msg->msg_case == P2C2R__CLIENT_MESSAGE__MSG_SUBMIT)
            snprintf (ref, sizeof ref, "%s", msg->submit->client_ref);
    }
    else
        msg = gw_json_decode ((const char *) data, size, self->cfg.max_frame, &code, why,
                              sizeof why, ref, sizeof ref);
    gw_metrics_inc (self->metrics, GW_M_MSG_IN, msg ? s_client_kind (msg) : "undecodable");
    if (!allowed) {
        //  Over the rate: answered, not done. A submit gets its one
        //  terminal reply; in a row they count as bad frames, so a flood
        //  ends in a close
        gw_metrics_inc (self->metrics, GW_M_LIMITS, "rate_limited");
        if (msg && msg->msg_case == P2C2R__CLIENT_MESSAGE__MSG_SUBMIT
            && s->state == GW_STATE_REGISTERED && s->role == GW_ROLE_GAMER) {
            s_task_error (self, s, NULL, ref, "rate_limited", "too many messages per second");
            s->bad_total++;
            s->bad_in_row++;
            self->bad_frames++;
            if (s->bad_in_row >= self->cfg.max_bad_frames && !s->closing)
                s_close (s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "rate limit exceeded");
        }
        else
            s_bad (self, s, "rate_limited", *ref ? ref : NULL, "too many messages per second");
        p2c_msg_client_free (&msg);
        return;
    }
    if (!msg) {
        s_bad (self, s, code, *ref ? ref : NULL, "%s", why);
        return;
    }
    s_dispatch (self, s, &msg);
    p2c_msg_client_free (&msg);
    if (s->bad_total == bad_before)
        s->bad_in_row = 0;
}

// ---------------------------------------------------------------------------
//  Messages from the broker

static void
s_on_deliver (gw_server_t *self, P2c2r__Deliver *d)
{
    if (!d->reply) {
        self->deliver_dropped++;
        return;
    }
    gw_pending_entry_t *e = gw_pending_take (self->pending, d->reply->task_id);
    if (!e) {
        //  Answered already (guard, or the gamer left): exactly one reply
        self->deliver_dropped++;
        log_debug ("gateway: deliver for no pending task=%s", d->reply->task_id);
        return;
    }
    gw_session_t *s = gw_sessions_lookup (self->sessions, e->conn);
    if (s) {
        P2c2r__TaskReply r = *d->reply;
        r.client_ref = e->client_ref;
        P2c2r__ServerMessage m = P2C2R__SERVER_MESSAGE__INIT;
        m.msg_case = P2C2R__SERVER_MESSAGE__MSG_TASK_RESULT;
        m.task_result = &r;
        s_send (self, s, &m);
        if (s->tasks)
            s->tasks--;
        gw_metrics_observe_ms (self->metrics, (double) (p2c_now_ms () - e->start_ms));
        log_debug ("gateway: delivered task=%s conn=%llu ok=%d", e->task_id,
                   (unsigned long long) e->conn, r.ok);
    }
    gw_pending_entry_destroy (&e);
}

static void
s_on_task_assign (gw_server_t *self, P2c2r__TaskAssign *a)
{
    if (!a->peer || !a->assign) {
        self->internal_dropped++;
        return;
    }
    const char *me = p2c_node_id (self->node);
    if (strcmp (a->peer->gateway, me)) {
        //  Not one of ours: a PeerDown would make the scheduler forget a
        //  live peer of another gateway
        self->internal_dropped++;
        log_warn ("gateway: assign for another gateway=%s task=%s", a->peer->gateway,
                  a->assign->task_id);
        return;
    }
    gw_session_t *s = gw_sessions_lookup (self->sessions, a->peer->conn);
    if (!s || s->state != GW_STATE_REGISTERED || s->role != GW_ROLE_PEER || s->closing) {
        log_info ("gateway: assign for a gone peer conn=%llu task=%s",
                  (unsigned long long) a->peer->conn, a->assign->task_id);
        s_peer_down (self, me, a->peer->conn);
        return;
    }
    P2c2r__ServerMessage m = P2C2R__SERVER_MESSAGE__INIT;
    m.msg_case = P2C2R__SERVER_MESSAGE__MSG_ASSIGN;
    m.assign = a->assign;
    gw_session_assigned_add (s, a->assign->task_id, a->assign->attempt);
    s_send (self, s, &m);
    log_debug ("gateway: assign task=%s conn=%llu", a->assign->task_id,
               (unsigned long long) s->conn);
}

//  A scheduler came up (it restarted, or the broker did): it learns every
//  live peer again
static void
s_on_node_event (gw_server_t *self, P2c2r__NodeEvent *ev)
{
    //  Announce our peers whenever the active scheduler may have changed: a
    //  new one came up, or one went down (a scheduler restarted within the
    //  broker's liveness time came up while the dead one was still routed
    //  to, so the announcements sent then were lost)
    if (strcmp (ev->service, "scheduler"))
        return;
    if (!ev->up && p2c_node_service_count (self->node, "scheduler") == 0) {
        log_info ("gateway: scheduler down node=%s", ev->node_id);
        return;
    }
    size_t n = 0;
    zlistx_t *list = gw_sessions_list (self->sessions);
    for (gw_session_t *s = (gw_session_t *) zlistx_first (list); s;
         s = (gw_session_t *) zlistx_next (list))
        if (s->state == GW_STATE_REGISTERED && s->role == GW_ROLE_PEER && !s->closing) {
            s_peer_up (self, s);
            n++;
        }
    zlistx_destroy (&list);
    log_info ("gateway: scheduler %s node=%s peers_announced=%zu", ev->up ? "up" : "down",
              ev->node_id, n);
}

static void
s_on_internal (gw_server_t *self, const char *sender, P2c2r__Internal *msg)
{
    switch (msg->msg_case) {
        case P2C2R__INTERNAL__MSG_AUTH_REPLY:
            s_on_auth_reply (self, msg->auth_reply);
            break;
        case P2C2R__INTERNAL__MSG_DELIVER:
            s_on_deliver (self, msg->deliver);
            break;
        case P2C2R__INTERNAL__MSG_TASK_ASSIGN:
            s_on_task_assign (self, msg->task_assign);
            break;
        case P2C2R__INTERNAL__MSG_NODE_EVENT:
            s_on_node_event (self, msg->node_event);
            break;
        case P2C2R__INTERNAL__MSG_STATS_REPLY:
            s_on_stats_reply (self, msg->stats_reply);
            break;
        default:
            self->internal_dropped++;
            log_debug ("gateway: unexpected internal type=%s from=%s",
                       p2c_msg_internal_name (msg), sender);
            break;
    }
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
    char *sender = NULL;
    P2c2r__Internal *msg;
    while ((msg = p2c_node_recv (self->node, &sender))) {
        s_on_internal (self, sender, msg);
        p2c_msg_internal_free (&msg);
        zstr_free (&sender);
    }
    self->draining = false;
}

// ---------------------------------------------------------------------------
//  The deadline guard and the cron

static void
s_guard (gw_server_t *self, int64_t now)
{
    zlistx_t *expired = gw_pending_expire (self->pending, now);
    for (gw_pending_entry_t *e = (gw_pending_entry_t *) zlistx_first (expired); e;
         e = (gw_pending_entry_t *) zlistx_next (expired)) {
        self->timeouts++;
        gw_session_t *s = gw_sessions_lookup (self->sessions, e->conn);
        log_info ("gateway: task timed out task=%s conn=%llu", e->task_id,
                  (unsigned long long) e->conn);
        if (!s)
            continue;
        if (s->tasks)
            s->tasks--;
        gw_metrics_observe_ms (self->metrics, (double) (now - e->start_ms));
        s_task_error (self, s, e->task_id, e->client_ref, "timeout",
                      "no result within the deadline");
    }
    zlistx_destroy (&expired);
}

// ---------------------------------------------------------------------------
//  HTTP: /healthz, /readyz, /metrics, /api/stats

//  Sets the answer of an HTTP request and asks to write it
static void
s_http_answer (struct lws *wsi, gw_pss_t *pss, unsigned status, const char *type,
               const char *body, size_t len)
{
    free (pss->http_body);
    pss->http_body = (uint8_t *) malloc (LWS_PRE + len + 1);
    pss->http_len = pss->http_body ? len : 0;
    if (pss->http_body)
        memcpy (pss->http_body + LWS_PRE, body, len);
    pss->http_status = pss->http_body ? status : HTTP_STATUS_INTERNAL_SERVER_ERROR;
    pss->http_type = type;
    pss->http_phase = 1;
    lws_callback_on_writable (wsi);
}

static int
s_http_writeable (struct lws *wsi, gw_pss_t *pss)
{
    if (!pss || pss->http_phase == 0)
        return 0;
    if (pss->http_phase == 1) {
        uint8_t buf [LWS_PRE + 512];
        uint8_t *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
        if (lws_add_http_common_headers (wsi, pss->http_status, pss->http_type, pss->http_len,
                                         &p, end)
            || lws_finalize_write_http_header (wsi, start, &p, end))
            return 1;
        pss->http_phase = 2;
        lws_callback_on_writable (wsi);
        return 0;
    }
    int n = lws_write (wsi, pss->http_body + LWS_PRE, pss->http_len, LWS_WRITE_HTTP_FINAL);
    free (pss->http_body);
    pss->http_body = NULL;
    pss->http_phase = 0;
    if (n < 0 || (size_t) n != pss->http_len)
        return 1;
    return lws_http_transaction_completed (wsi) ? -1 : 0;
}

static void
s_role_counts (gw_server_t *self, size_t *none, size_t *peers, size_t *gamers)
{
    *none = *peers = *gamers = 0;
    zlistx_t *list = gw_sessions_list (self->sessions);
    for (gw_session_t *s = (gw_session_t *) zlistx_first (list); s;
         s = (gw_session_t *) zlistx_next (list))
        if (s->state != GW_STATE_REGISTERED)
            (*none)++;
        else
        if (s->role == GW_ROLE_PEER)
            (*peers)++;
        else
            (*gamers)++;
    zlistx_destroy (&list);
}

static void
s_http_metrics (gw_server_t *self, struct lws *wsi, gw_pss_t *pss)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream (&text, &size);
    if (!f) {
        s_http_answer (wsi, pss, HTTP_STATUS_INTERNAL_SERVER_ERROR, "text/plain", "error\n", 6);
        return;
    }
    size_t none, peers, gamers;
    s_role_counts (self, &none, &peers, &gamers);
    fprintf (f, "# HELP p2c2r_gateway_connections Live WebSocket connections, by role.\n"
                "# TYPE p2c2r_gateway_connections gauge\n"
                "p2c2r_gateway_connections{role=\"none\"} %zu\n"
                "p2c2r_gateway_connections{role=\"peer\"} %zu\n"
                "p2c2r_gateway_connections{role=\"gamer\"} %zu\n", none, peers, gamers);
    fprintf (f, "# HELP p2c2r_gateway_pending_tasks Accepted submits not answered yet.\n"
                "# TYPE p2c2r_gateway_pending_tasks gauge\np2c2r_gateway_pending_tasks %zu\n",
             gw_pending_size (self->pending));
    fprintf (f, "# HELP p2c2r_gateway_ready Broker, a scheduler and a ledger reachable.\n"
                "# TYPE p2c2r_gateway_ready gauge\np2c2r_gateway_ready %d\n",
             p2c_node_broker_alive (self->node)
             && p2c_node_service_count (self->node, "scheduler") > 0
             && p2c_node_service_count (self->node, "ledger") > 0 && !self->quitting);
    fprintf (f, "# HELP p2c2r_gateway_auth_cache_keys API keys in the cache.\n"
                "# TYPE p2c2r_gateway_auth_cache_keys gauge\np2c2r_gateway_auth_cache_keys %zu\n",
             gw_authcache_size (self->authcache));
    fprintf (f, "# HELP p2c2r_gateway_internal_dropped_total Internal messages dropped.\n"
                "# TYPE p2c2r_gateway_internal_dropped_total counter\n"
                "p2c2r_gateway_internal_dropped_total{what=\"deliver\"} %llu\n"
                "p2c2r_gateway_internal_dropped_total{what=\"other\"} %llu\n"
                "p2c2r_gateway_internal_dropped_total{what=\"auth_stale\"} %llu\n",
             (unsigned long long) self->deliver_dropped, (unsigned long long) self->internal_dropped,
             (unsigned long long) self->auth_stale);
    gw_metrics_render (self->metrics, f);
    fclose (f);
    s_http_answer (wsi, pss, HTTP_STATUS_OK, "text/plain; version=0.0.4", text, size);
    free (text);
}

static void
s_http_ready (gw_server_t *self, struct lws *wsi, gw_pss_t *pss)
{
    char text [200];
    bool broker = p2c_node_broker_alive (self->node);
    size_t sched = p2c_node_service_count (self->node, "scheduler");
    size_t ledger = p2c_node_service_count (self->node, "ledger");
    bool ok = broker && sched > 0 && ledger > 0 && !self->quitting;
    int n = snprintf (text, sizeof text, "%s broker=%s schedulers=%zu ledgers=%zu draining=%s\n",
                      ok ? "ready" : "not ready", broker ? "up" : "down", sched, ledger,
                      self->quitting ? "yes" : "no");
    s_http_answer (wsi, pss, ok ? HTTP_STATUS_OK : HTTP_STATUS_SERVICE_UNAVAILABLE, "text/plain",
                   text, (size_t) n);
}

static void
s_stats_job_free (gw_stats_job_t **job_p)
{
    gw_stats_job_t *job = *job_p;
    if (!job)
        return;
    json_decref (job->sched);
    json_decref (job->ledger);
    free (job);
    *job_p = NULL;
}

//  Writes the /api/stats answer with the figures that came and drops the job
static void
s_stats_finish (gw_server_t *self, gw_stats_job_t *job)
{
    gw_pss_t *pss = (gw_pss_t *) lws_wsi_user (job->wsi);
    size_t none, peers, gamers;
    s_role_counts (self, &none, &peers, &gamers);
    json_t *gw = gw_metrics_json (self->metrics);
    json_object_set_new (gw, "node", json_string (p2c_node_id (self->node)));
    json_object_set_new (gw, "connections", json_pack ("{s:I, s:I, s:I}", "none", (json_int_t) none,
                         "peer", (json_int_t) peers, "gamer", (json_int_t) gamers));
    json_object_set_new (gw, "pending_tasks", json_integer ((json_int_t) gw_pending_size (self->pending)));
    json_object_set_new (gw, "draining", json_boolean (self->quitting));
    json_t *missing = json_array ();
    if (!job->sched)
        json_array_append_new (missing, json_string ("scheduler"));
    if (!job->ledger)
        json_array_append_new (missing, json_string ("ledger"));
    json_t *root = json_pack ("{s:o, s:O, s:O, s:o}", "gateway", gw,
                              "scheduler", job->sched ? job->sched : json_null (),
                              "ledger", job->ledger ? job->ledger : json_null (),
                              "missing", missing);
    char *text = root ? json_dumps (root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref (root);
    if (pss) {
        pss->job = NULL;
        if (text)
            s_http_answer (job->wsi, pss, HTTP_STATUS_OK, "application/json", text, strlen (text));
        else
            s_http_answer (job->wsi, pss, HTTP_STATUS_INTERNAL_SERVER_ERROR, "text/plain",
                           "error\n", 6);
    }
    free (text);
    void *handle = zlistx_find (self->stats_jobs, job);
    if (handle)
        zlistx_delete (self->stats_jobs, handle);
}

static void
s_http_stats (gw_server_t *self, struct lws *wsi, gw_pss_t *pss)
{
    gw_stats_job_t *job = (gw_stats_job_t *) zmalloc (sizeof (gw_stats_job_t));
    job->corr = ++self->stats_seq;
    job->wsi = wsi;
    job->deadline_ms = p2c_now_ms () + self->cfg.stats_timeout_ms;
    pss->job = job;
    zlistx_add_end (self->stats_jobs, job);
    P2c2r__StatsRequest req = P2C2R__STATS_REQUEST__INIT;
    req.corr = job->corr;
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_STATS_REQUEST;
    m.stats_request = &req;
    //  A service that cannot be reached simply does not answer; the cron
    //  writes the answer without it at the deadline
    s_node_send (self, "scheduler", &m);
    s_node_send (self, "ledger", &m);
}

static void
s_on_stats_reply (gw_server_t *self, P2c2r__StatsReply *r)
{
    for (gw_stats_job_t *job = (gw_stats_job_t *) zlistx_first (self->stats_jobs); job;
         job = (gw_stats_job_t *) zlistx_next (self->stats_jobs)) {
        if (job->corr != r->corr)
            continue;
        json_t *v = json_loads (r->stats_json, 0, NULL);
        if (!json_is_object (v)) {
            json_decref (v);
            v = json_pack ("{s:s}", "error", "stats_json is not a JSON object");
        }
        json_t **slot = !strcmp (r->service, "scheduler") ? &job->sched
                      : !strcmp (r->service, "ledger") ? &job->ledger : NULL;
        if (slot && !*slot)
            *slot = v;
        else
            json_decref (v);
        if (job->sched && job->ledger)
            s_stats_finish (self, job);
        return;
    }
    self->internal_dropped++;
}

static void
s_stats_timeouts (gw_server_t *self, int64_t now)
{
    gw_stats_job_t *job = (gw_stats_job_t *) zlistx_first (self->stats_jobs);
    while (job) {
        gw_stats_job_t *next = (gw_stats_job_t *) zlistx_next (self->stats_jobs);
        if (job->deadline_ms <= now)
            s_stats_finish (self, job);
        job = next;
    }
}

static int
s_on_http (gw_server_t *self, struct lws *wsi, gw_pss_t *pss, const char *uri)
{
    if (lws_hdr_total_length (wsi, WSI_TOKEN_GET_URI) <= 0 || !uri) {
        s_http_answer (wsi, pss, HTTP_STATUS_METHOD_NOT_ALLOWED, "text/plain", "GET only\n", 9);
        return 0;
    }
    gw_metrics_inc (self->metrics, GW_M_EVENTS, "http_request");
    if (!strcmp (uri, "/healthz"))
        s_http_answer (wsi, pss, HTTP_STATUS_OK, "text/plain", "ok\n", 3);
    else
    if (!strcmp (uri, "/readyz"))
        s_http_ready (self, wsi, pss);
    else
    if (!strcmp (uri, "/metrics"))
        s_http_metrics (self, wsi, pss);
    else
    if (!strcmp (uri, "/api/stats"))
        s_http_stats (self, wsi, pss);
    else
        s_http_answer (wsi, pss, HTTP_STATUS_NOT_FOUND, "text/plain", "not found\n", 10);
    return 0;
}

static void
s_http_closed (gw_server_t *self, gw_pss_t *pss)
{
    if (!pss)
        return;
    if (pss->job) {
        void *handle = zlistx_find (self->stats_jobs, pss->job);
        if (handle)
            zlistx_delete (self->stats_jobs, handle);
        pss->job = NULL;
    }
    free (pss->http_body);
    pss->http_body = NULL;
    pss->http_phase = 0;
}

// ---------------------------------------------------------------------------
//  The cron: every tick the node, auth and deadline guards; every second
//  the slow chores (registration timeouts, key re-checks, table sweeps,
//  the shutdown's progress)

static void
s_register_timeouts (gw_server_t *self, int64_t now)
{
    zlistx_t *list = gw_sessions_list (self->sessions);
    for (gw_session_t *s = (gw_session_t *) zlistx_first (list); s;
         s = (gw_session_t *) zlistx_next (list))
        if (s->state == GW_STATE_NEW && !s->closing
            && now - s->connected_ms >= self->cfg.register_timeout_ms) {
            gw_metrics_inc (self->metrics, GW_M_LIMITS, "register_timeout");
            log_debug ("gateway: registration timeout conn=%llu", (unsigned long long) s->conn);
            s_close (s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "registration timeout");
        }
    zlistx_destroy (&list);
}

//  During a shutdown: close everyone once nothing is in flight (or the
//  bound passed), then end the loop once they are gone
static void
s_quit_progress (gw_server_t *self, int64_t now)
{
    if (!self->goodbye_sent) {
        size_t busy = 0;
        zlistx_t *list = gw_sessions_list (self->sessions);
        for (gw_session_t *s = (gw_session_t *) zlistx_first (list); s;
             s = (gw_session_t *) zlistx_next (list))
            if (s->role == GW_ROLE_PEER && !s->closing)
                busy += gw_session_assigned (s);
        bool idle = gw_pending_size (self->pending) == 0 && busy == 0;
        if (!idle && now < self->quit_deadline_ms) {
            zlistx_destroy (&list);
            return;
        }
        log_info ("gateway: closing sessions=%zu pending=%zu peer_tasks=%zu",
                  gw_sessions_size (self->sessions), gw_pending_size (self->pending), busy);
        for (gw_session_t *s = (gw_session_t *) zlistx_first (list); s;
             s = (gw_session_t *) zlistx_next (list)) {
            gw_session_close (s, LWS_CLOSE_STATUS_GOINGAWAY, "going away: gateway shutting down");
            lws_callback_on_writable (s->wsi);
        }
        zlistx_destroy (&list);
        self->goodbye_sent = true;
        self->goodbye_ms = now;
    }
    if (gw_sessions_size (self->sessions) == 0 || now - self->goodbye_ms >= GW_CLOSE_WAIT_MS)
        self->stopping = true;
}

static void
s_cron (lws_sorted_usec_list_t *sul)
{
    gw_server_t *self = lws_container_of (sul, gw_server_t, cron);
    int64_t now = p2c_now_ms ();
    p2c_node_cron (self->node);
    s_auth_timeouts (self, now);
    s_guard (self, now);
    s_stats_timeouts (self, now);
    if (now - self->last_slow_ms >= GW_SLOW_CRON_MS) {
        self->last_slow_ms = now;
        s_register_timeouts (self, now);
        s_rechecks (self, now);
        gw_authcache_sweep (self->authcache, now);
        gw_iplimit_sweep (self->iplimit, now);
    }
    if (self->quitting)
        s_quit_progress (self, now);
    s_drain (self);
    if (self->stopping)
        lws_cancel_service (self->ctx);
    lws_sul_schedule (self->ctx, 0, &self->cron, s_cron, GW_CRON_MS * LWS_US_PER_MS);
}

// ---------------------------------------------------------------------------
//  libwebsockets callbacks

//  Whether addr is one of the comma-separated trusted proxies
static bool
s_trusted (const char *list, const char *addr)
{
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
    if (*last && strlen (last) < size)
        snprintf (ip, size, "%s", last);
}

static int
s_on_established (gw_server_t *self, struct lws *wsi, gw_pss_t *pss)
{
    gw_session_t *s = gw_session_new (gw_sessions_next_conn (self->sessions), wsi,
                                      self->cfg.max_frame, self->cfg.send_queue,
                                      self->cfg.send_queue_bytes);
    if (!s)
        return -1;
    pss->session = gw_sessions_insert (self->sessions, &s);
    if (!pss->session)
        return -1;
    s = pss->session;
    int64_t now = p2c_now_ms ();
    s->connected_ms = s->last_rx_ms = now;
    s_client_ip (self, wsi, s->ip, sizeof s->ip);
    gw_metrics_inc (self->metrics, GW_M_EVENTS, "connect");
    gw_admit_t admit = gw_iplimit_admit (self->iplimit, s->ip, now);
    if (admit == GW_ADMIT_OK)
        s->ip_counted = true;
    else {
        //  Refused with a reason the client can read, rather than a reset
        bool conns = admit == GW_ADMIT_CONNS;
        gw_metrics_inc (self->metrics, GW_M_LIMITS, conns ? "conns_per_ip" : "connects_per_ip");
        log_info ("gateway: connection refused conn=%llu ip=%s reason=%s",
                  (unsigned long long) s->conn, s->ip, conns ? "conns_per_ip" : "connect_rate");
        s_close (s, 1013 /* try again later */,
                 conns ? "too many connections from your address"
                       : "too many connects per second from your address");
        return 0;
    }
    if (self->quitting)
        s_close (s, LWS_CLOSE_STATUS_GOINGAWAY, "going away: gateway shutting down");
    log_debug ("gateway: connected conn=%llu ip=%s", (unsigned long long) s->conn, s->ip);
    return 0;
}

static int
s_on_receive (gw_server_t *self, struct lws *wsi, gw_pss_t *pss, const void *in, size_t len)
{
    gw_session_t *s = pss->session;
    if (!s)
        return -1;
    if (s->closing)
        return 0;
    p2c_frame_status_t st = p2c_frame_add (s->rx, in, len, lws_remaining_packet_payload (wsi),
                                         lws_is_final_fragment (wsi), lws_frame_is_binary (wsi));
    if (st == P2C_FRAME_TOO_LARGE) {
        gw_metrics_inc (self->metrics, GW_M_LIMITS, "frame_too_large");
        s_bad (self, s, "too_large", NULL, "message larger than %zu bytes", self->cfg.max_frame);
    }
    else
    if (st == P2C_FRAME_DONE)
        s_on_message (self, s, p2c_frame_data (s->rx), p2c_frame_size (s->rx),
                      p2c_frame_binary (s->rx));
    else
        s->last_rx_ms = p2c_now_ms ();
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
    if (s->state == GW_STATE_REGISTERED && s->role == GW_ROLE_PEER)
        s_peer_down (self, p2c_node_id (self->node), s->conn);
    if (s->ip_counted)
        gw_iplimit_release (self->iplimit, s->ip);
    if (*s->key_hash) {
        gw_authentry_t *e = gw_authcache_lookup (self->authcache, s->key_hash);
        if (e && e->users)
            e->users--;
    }
    //  lws hangs up on a client silent past the ping and pong time; it
    //  does not say so, but the silence does
    int64_t silent = p2c_now_ms () - s->last_rx_ms;
    if (!s->closing && silent >= ((int64_t) self->cfg.ping_s + self->cfg.pong_timeout_s) * 1000 - 1000)
        gw_metrics_inc (self->metrics, GW_M_LIMITS, "idle_timeout");
    gw_metrics_inc (self->metrics, GW_M_EVENTS, "close");
    size_t dropped = gw_pending_drop_conn (self->pending, s->conn);
    log_info ("gateway: disconnected conn=%llu role=%s id=%s tasks_dropped=%zu",
              (unsigned long long) s->conn, gw_role_name (s->role), s->name ? s->name : "-",
              dropped);
    gw_sessions_remove (self->sessions, s->conn);
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
            return self->quitting ? -1 : 0;
        case LWS_CALLBACK_HTTP:
            return s_on_http (self, wsi, pss, (const char *) in);
        case LWS_CALLBACK_HTTP_WRITEABLE:
            return s_http_writeable (wsi, pss);
        case LWS_CALLBACK_CLOSED_HTTP:
            s_http_closed (self, pss);
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
        log_warn ("gateway: lws error: %s", buf);
    else
        log_debug ("gateway: lws: %s", buf);
}

// ---------------------------------------------------------------------------
//  Life cycle

gw_server_t *
gw_server_new (const gw_settings_t *settings)
{
    gw_server_t *self = (gw_server_t *) zmalloc (sizeof (gw_server_t));
    self->cfg = *settings;
    self->host = strdup (settings->host ? settings->host : "");
    self->broker = strdup (settings->broker);
    self->cfg.host = self->host;
    self->cfg.broker = self->broker;
    self->cfg.node_id = NULL;
    self->tls_cert = settings->tls_cert && *settings->tls_cert ? strdup (settings->tls_cert) : NULL;
    self->tls_key = settings->tls_key && *settings->tls_key ? strdup (settings->tls_key) : NULL;
    self->proxies = strdup (settings->trusted_proxies ? settings->trusted_proxies : "");
    self->region = strdup (settings->region ? settings->region : "");
    self->cfg.tls_cert = self->tls_cert;
    self->cfg.tls_key = self->tls_key;
    self->cfg.trusted_proxies = self->proxies;
    self->metrics = gw_metrics_new ();
    self->iplimit = gw_iplimit_new (settings->max_conns_per_ip, settings->connect_rate,
                                    settings->connect_burst);
    self->authcache = gw_authcache_new (settings->auth_cache_ms);
    self->stats_jobs = zlistx_new ();
    zlistx_set_destructor (self->stats_jobs, (zlistx_destructor_fn *) s_stats_job_free);
    self->sessions = gw_sessions_new ();
    self->pending = gw_pending_new ();
    self->taskids = gw_taskid_new ();
    if (!self->taskids) {
        log_warn ("gateway: no randomness for task ids");
        gw_server_destroy (&self);
        return NULL;
    }
    self->node = p2c_node_new (settings->broker, "gateway", settings->node_id);
    if (!self->node) {
        log_warn ("gateway: cannot connect to the broker endpoint=%s", settings->broker);
        gw_server_destroy (&self);
        return NULL;
    }

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
        log_warn ("gateway: cannot create the libwebsockets context");
        gw_server_destroy (&self);
        return NULL;
    }
    info.port = settings->port;
    info.iface = *self->host ? self->host : NULL;
    info.protocols = s_protocols;
    info.vhost_name = "default";
    //  lws pings a connection silent for ping_s and hangs up on one that
    //  stays silent pong_timeout_s longer
    self->retry.secs_since_valid_ping = (uint16_t) settings->ping_s;
    self->retry.secs_since_valid_hangup = (uint16_t) (settings->ping_s + settings->pong_timeout_s);
    info.retry_and_idle_policy = &self->retry;
    if (self->tls_cert) {
        info.ssl_cert_filepath = self->tls_cert;
        info.ssl_private_key_filepath = self->tls_key;
    }
    self->vhost = lws_create_vhost (self->ctx, &info);
    if (!self->vhost) {
        log_warn ("gateway: cannot listen host=%s port=%d", *self->host ? self->host : "*",
                  settings->port);
        gw_server_destroy (&self);
        return NULL;
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
        log_warn ("gateway: cannot adopt the broker socket into the loop");
        gw_server_destroy (&self);
        return NULL;
    }
    lws_sul_schedule (self->ctx, 0, &self->cron, s_cron, GW_CRON_MS * LWS_US_PER_MS);
    log_info ("gateway: listening host=%s port=%d node=%s broker=%s auth=%s tls=%s task_prefix=%s",
              *self->host ? self->host : "*", gw_server_port (self), p2c_node_id (self->node),
              self->broker, self->cfg.auth_open ? "open" : "apikey", self->tls_cert ? "on" : "off",
              gw_taskid_prefix (self->taskids));
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
    gw_sessions_destroy (&self->sessions);
    gw_pending_destroy (&self->pending);
    zlistx_destroy (&self->stats_jobs);
    gw_metrics_destroy (&self->metrics);
    gw_iplimit_destroy (&self->iplimit);
    gw_authcache_destroy (&self->authcache);
    free (self->tls_cert);
    free (self->tls_key);
    free (self->proxies);
    free (self->region);
    gw_taskid_destroy (&self->taskids);
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
    int port = gw_server_port (self);
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
        if (p == port && shutdown (fd, SHUT_RDWR) == 0)
            log_info ("gateway: stopped listening port=%d", port);
    }
}

//  The first SIGTERM: no new connections (the listening socket closes, so
//  a restarted gateway can bind the port at once), no new work, and the
//  cron closes everyone with 1001 once in-flight tasks are done or the
//  drain bound has passed
static void
s_quit (gw_server_t *self)
{
    self->quitting = true;
    self->quit_deadline_ms = p2c_now_ms () + self->cfg.drain_ms;
    s_stop_listening (self);
    log_info ("gateway: draining sessions=%zu pending=%zu drain_ms=%lld",
              gw_sessions_size (self->sessions), gw_pending_size (self->pending),
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
        if (self->stop == 1 && !self->quitting)
            s_quit (self);
    }
    log_info ("gateway: stopping sessions=%zu pending=%zu bad_frames=%llu timeouts=%llu "
              "deliver_dropped=%llu", gw_sessions_size (self->sessions),
              gw_pending_size (self->pending), (unsigned long long) self->bad_frames,
              (unsigned long long) self->timeouts, (unsigned long long) self->deliver_dropped);
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

    P2C_CHECK (gw_valid_id ("laptop-1"));
    P2C_CHECK (gw_valid_id ("a"));
    P2C_CHECK (!gw_valid_id (""));
    P2C_CHECK (!gw_valid_id (NULL));
    P2C_CHECK (!gw_valid_id ("has space"));
    P2C_CHECK (!gw_valid_id ("tab\there"));
    P2C_CHECK (!gw_valid_id ("caf\xc3\xa9"));
    char id [GW_MAX_ID + 2];
    memset (id, 'x', sizeof id);
    id [GW_MAX_ID] = 0;
    P2C_CHECK (gw_valid_id (id));
    id [GW_MAX_ID] = 'x';
    id [GW_MAX_ID + 1] = 0;
    P2C_CHECK (!gw_valid_id (id));
}
