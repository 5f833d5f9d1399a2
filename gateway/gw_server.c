/*  The gateway server (see gw_server.h).

    Flow of a client frame: RECEIVE pieces -> gw_frame reassembly ->
    s_decode_* per dialect -> s_dispatch to one handler per message kind
    -> answers through s_send, which encodes per the connection's dialect
    and queues for SERVER_WRITEABLE. Flow of a broker message: the adopted
    ZeroMQ descriptor wakes the loop -> s_drain -> s_on_internal.

    ZMQ_FD is edge-triggered: a wake-up may stand for many messages, and a
    send may consume the wake-up of messages that arrived meanwhile. So
    every callback that may have sent something ends with s_drain, which
    receives until nothing is left, and the cron drains too. */
#include "gw_server.h"
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
#include <unistd.h>

#define GW_MAX_ID           64      //  longest peer_id / gamer_id
#define GW_MAX_API_KEY      512     //  longest api_key accepted
#define GW_MAX_CLIENT_REF   256     //  longest client_ref kept in a pending entry
#define GW_CRON_MS          100     //  the one periodic timer
#define GW_RX_BUFFER        65536   //  lws' receive buffer, per connection

struct _gw_server_t {
    gw_settings_t cfg;          //  settings; its strings point at the copies below
    char *host;                 //  listen address (owned)
    char *broker;               //  broker endpoint (owned)
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    struct lws *zmq_wsi;        //  the ZeroMQ descriptor adopted into the loop
    p2c_node_t *node;           //  broker connection
    gw_sessions_t *sessions;    //  live client connections
    gw_pending_t *pending;      //  accepted submits not answered yet
    gw_taskid_t *taskids;       //  task id generator
    lws_sorted_usec_list_t cron;
    volatile sig_atomic_t stop; //  set by gw_server_stop
    bool draining;              //  s_drain is on the stack
    //  Counters (for logs now, /metrics later)
    uint64_t deliver_dropped;   //  Deliver for a task no longer pending
    uint64_t internal_dropped;  //  internal messages we do not handle
    uint64_t auth_stale;        //  AuthReply for no registration in progress
    uint64_t bad_frames;        //  client frames answered as bad
    uint64_t timeouts;          //  tasks answered by the deadline guard
};

//  lws' per-connection memory: a pointer to our session (WebSocket) or the
//  body of a pending HTTP answer
typedef struct {
    gw_session_t *session;
    const char *http_body;
} gw_pss_t;

static void s_drain (gw_server_t *self);

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

static int
s_node_send (gw_server_t *self, const char *dest, P2c2r__Internal *msg)
{
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

//  The JSON dialect's encoder (PROTOCOL.md). Only `error` exists until the
//  JSON decoder arrives: a JSON client cannot register before then, so
//  nothing else can be addressed to one.
static uint8_t *
s_encode_json (const P2c2r__ServerMessage *m, size_t pre, size_t *len_p)
{
    json_t *obj = NULL;
    if (m->msg_case == P2C2R__SERVER_MESSAGE__MSG_ERROR) {
        obj = json_pack ("{s:s, s:s, s:s}", "type", "error", "code", m->error->code,
                         "error", m->error->message);
        if (obj && *m->error->client_ref)
            json_object_set_new (obj, "client_ref", json_string (m->error->client_ref));
    }
    if (!obj)
        return NULL;
    char *text = json_dumps (obj, JSON_COMPACT);
    json_decref (obj);
    if (!text)
        return NULL;
    size_t len = strlen (text);
    uint8_t *buf = (uint8_t *) malloc (pre + len + 1);
    if (buf) {
        memcpy (buf + pre, text, len);
        *len_p = len;
    }
    free (text);
    return buf;
}

//  Queues one message for a client. A client whose queue is full does not
//  read what it is sent: it is dropped rather than allowed to hold memory.
static void
s_send (gw_server_t *self, gw_session_t *s, const P2c2r__ServerMessage *m)
{
    (void) self;
    if (s->closing)
        return;
    size_t len = 0;
    bool binary = s->dialect == GW_DIALECT_PROTOBUF;
    uint8_t *buf = binary ? p2c_msg_pack_server (m, LWS_PRE, &len)
                          : s_encode_json (m, LWS_PRE, &len);
    if (!buf) {
        log_warn ("gateway: cannot encode conn=%llu kind=%d dialect=%s",
                  (unsigned long long) s->conn, (int) m->msg_case, binary ? "protobuf" : "json");
        return;
    }
    if (gw_session_queue (s, &buf, LWS_PRE, len, binary) != 0) {
        log_warn ("gateway: send queue full, dropping conn=%llu role=%s id=%s",
                  (unsigned long long) s->conn, gw_role_name (s->role), s->name ? s->name : "-");
        s->closing = true;
        lws_set_timeout (s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return;
    }
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
        log_info ("gateway: closing conn=%llu reason=bad_frames count=%u",
                  (unsigned long long) s->conn, s->bad_in_row);
        gw_session_close (s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too many bad frames");
        lws_callback_on_writable (s->wsi);
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

static void
s_on_auth_reply (gw_server_t *self, P2c2r__AuthReply *r)
{
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
    s->state = GW_STATE_REGISTERED;
    s->account_id = r->account_id;
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

//  Text frames: the JSON dialect of PROTOCOL.md. Its decoder will build a
//  ClientMessage from the JSON object, so that the same handlers serve both
//  dialects; until it exists every text frame is refused.
static P2c2r__ClientMessage *
s_decode_json (gw_server_t *self, const uint8_t *data, size_t size, const char **why_p)
{
    (void) self;
    (void) data;
    (void) size;
    *why_p = "JSON dialect not supported yet; use binary protobuf frames";
    return NULL;
}

static void
s_on_message (gw_server_t *self, gw_session_t *s, const uint8_t *data, size_t size, bool binary)
{
    if (!s->dialect_set) {
        s->dialect = binary ? GW_DIALECT_PROTOBUF : GW_DIALECT_JSON;
        s->dialect_set = true;
    }
    uint64_t bad_before = s->bad_total;
    const char *why = "bad frame";
    P2c2r__ClientMessage *msg = binary ? s_decode_protobuf (self, data, size, &why)
                                       : s_decode_json (self, data, size, &why);
    if (!msg) {
        s_bad (self, s, "bad_request", NULL, "%s", why);
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
    s_send (self, s, &m);
    log_debug ("gateway: assign task=%s conn=%llu", a->assign->task_id,
               (unsigned long long) s->conn);
}

//  A scheduler came up (it restarted, or the broker did): it learns every
//  live peer again
static void
s_on_node_event (gw_server_t *self, P2c2r__NodeEvent *ev)
{
    if (!ev->up || strcmp (ev->service, "scheduler"))
        return;
    size_t n = 0;
    zlistx_t *list = gw_sessions_list (self->sessions);
    for (gw_session_t *s = (gw_session_t *) zlistx_first (list); s;
         s = (gw_session_t *) zlistx_next (list))
        if (s->state == GW_STATE_REGISTERED && s->role == GW_ROLE_PEER && !s->closing) {
            s_peer_up (self, s);
            n++;
        }
    zlistx_destroy (&list);
    log_info ("gateway: scheduler up node=%s peers_announced=%zu", ev->node_id, n);
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
        s_task_error (self, s, e->task_id, e->client_ref, "timeout",
                      "no result within the deadline");
    }
    zlistx_destroy (&expired);
}

static void
s_cron (lws_sorted_usec_list_t *sul)
{
    gw_server_t *self = lws_container_of (sul, gw_server_t, cron);
    int64_t now = p2c_now_ms ();
    p2c_node_cron (self->node);
    s_auth_timeouts (self, now);
    s_guard (self, now);
    s_drain (self);
    lws_sul_schedule (self->ctx, 0, &self->cron, s_cron, GW_CRON_MS * LWS_US_PER_MS);
}

// ---------------------------------------------------------------------------
//  libwebsockets callbacks

static int
s_http_reply (struct lws *wsi, gw_pss_t *pss, unsigned status, const char *body)
{
    uint8_t buf [LWS_PRE + 512];
    uint8_t *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    if (lws_add_http_common_headers (wsi, status, "text/plain", strlen (body), &p, end)
        || lws_finalize_write_http_header (wsi, start, &p, end))
        return 1;
    pss->http_body = body;
    lws_callback_on_writable (wsi);
    return 0;
}

static int
s_http_body (struct lws *wsi, gw_pss_t *pss)
{
    if (!pss || !pss->http_body)
        return 0;
    uint8_t buf [LWS_PRE + 64];
    size_t n = strlen (pss->http_body);
    memcpy (buf + LWS_PRE, pss->http_body, n);
    pss->http_body = NULL;
    if (lws_write (wsi, buf + LWS_PRE, n, LWS_WRITE_HTTP_FINAL) != (int) n)
        return 1;
    return lws_http_transaction_completed (wsi) ? -1 : 0;
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
    log_debug ("gateway: connected conn=%llu", (unsigned long long) pss->session->conn);
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
    gw_frame_status_t st = gw_frame_add (s->rx, in, len, lws_remaining_packet_payload (wsi),
                                         lws_is_final_fragment (wsi), lws_frame_is_binary (wsi));
    if (st == GW_FRAME_TOO_LARGE)
        s_bad (self, s, "too_large", NULL, "message larger than %zu bytes", self->cfg.max_frame);
    else
    if (st == GW_FRAME_DONE)
        s_on_message (self, s, gw_frame_data (s->rx), gw_frame_size (s->rx),
                      gw_frame_binary (s->rx));
    return 0;
}

static int
s_on_writeable (struct lws *wsi, gw_pss_t *pss)
{
    gw_session_t *s = pss->session;
    if (!s)
        return 0;
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
    int rc = 0;
    switch (reason) {
        case LWS_CALLBACK_HTTP: {
            const char *uri = (const char *) in;
            bool get = lws_hdr_total_length (wsi, WSI_TOKEN_GET_URI) > 0;
            if (get && uri && !strcmp (uri, "/healthz"))
                return s_http_reply (wsi, pss, HTTP_STATUS_OK, "ok\n");
            return s_http_reply (wsi, pss, HTTP_STATUS_NOT_FOUND, "not found\n");
        }
        case LWS_CALLBACK_HTTP_WRITEABLE:
            return s_http_body (wsi, pss);
        case LWS_CALLBACK_ESTABLISHED:
            return s_on_established (self, wsi, pss);
        case LWS_CALLBACK_RECEIVE:
            rc = s_on_receive (self, wsi, pss, in, len);
            s_drain (self);
            return rc;
        case LWS_CALLBACK_SERVER_WRITEABLE:
            return s_on_writeable (wsi, pss);
        case LWS_CALLBACK_CLOSED:
            s_on_closed (self, pss);
            s_drain (self);
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
            s_drain (self);
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
    log_info ("gateway: listening host=%s port=%d node=%s broker=%s auth=%s",
              *self->host ? self->host : "*", gw_server_port (self), p2c_node_id (self->node),
              self->broker, self->cfg.auth_open ? "open" : "apikey");
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
    gw_taskid_destroy (&self->taskids);
    p2c_node_destroy (&self->node);
    free (self->host);
    free (self->broker);
    free (self);
    *self_p = NULL;
}

void
gw_server_run (gw_server_t *self)
{
    //  A first drain: the broker may have spoken before the loop started
    s_drain (self);
    while (!self->stop)
        if (lws_service (self->ctx, 0) < 0)
            break;
    log_info ("gateway: stopping sessions=%zu pending=%zu bad_frames=%llu timeouts=%llu "
              "deliver_dropped=%llu", gw_sessions_size (self->sessions),
              gw_pending_size (self->pending), (unsigned long long) self->bad_frames,
              (unsigned long long) self->timeouts, (unsigned long long) self->deliver_dropped);
}

void
gw_server_stop (gw_server_t *self)
{
    self->stop = 1;
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
