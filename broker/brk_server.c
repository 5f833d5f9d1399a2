/*  Broker actor (see brk_server.h). */
#include "brk_server.h"
#include "brk_auth.h"
#include "brk_table.h"
#include "p2c_drain.h"
#include "p2c_keys.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_msg.h"
#include "p2c_node.h"
#include "p2c_test.h"
#include "p2c_time.h"

#include <errno.h>
#include <poll.h>

typedef struct {
    zsock_t *pipe;              //  actor pipe
    zsock_t *router;            //  the one ROUTER
    brk_table_t *table;         //  routing table
    uint64_t epoch;             //  start epoch, changes on every start
    int port;                   //  bound port
    uint64_t forwarded;         //  messages forwarded
    uint64_t dropped;           //  messages with nowhere to go or malformed
    uint64_t logged_forwarded;  //  forwarded at the last status line
    int64_t status_ms;          //  last status line
    uint64_t wakeups;           //  loop turns; forwarded / wakeups is the batch
    bool curve;                 //  CURVE and the allow-list are on
    brk_auth_t *auth;           //  the allow-list and ZAP handler (curve)
    zsock_t *zap;               //  ZAP requests from libzmq (curve)
    zsock_t *monitor;           //  handshake failures ZAP never sees: a node
                                //  without a key or with a wrong broker key
    zhashx_t *node_keys;        //  node id -> public key it joined with (curve)
    uint64_t refused_handshakes;    //  by the monitor (ZAP counts its own)
    uint64_t refused_hellos;    //  a service the node's key is not bound to
    uint64_t refused_messages;  //  from a key no longer listed
    uint64_t logged_refused;    //  all refusals at the last status line
} s_server_t;

//  The first refusals of a kind are logged, then one in a hundred: a node
//  retrying every 100 ms must not fill the disk
static bool
s_log_refusal (uint64_t count)
{
    return count <= 20 || count % 100 == 0;
}

//  Sends the one frame [sender NUL stamp NUL body] (docs/internals.md). One
//  frame, not three: with CURVE every frame costs an encryption here and a
//  decryption at the node, more than the copy of a small body
static int
s_send_frame (void *handle, const char *sender, size_t slen, const char *stamp, size_t stamp_len,
              const uint8_t *body, size_t blen)
{
    zmq_msg_t frame;
    if (zmq_msg_init_size (&frame, slen + stamp_len + 2 + blen) != 0)
        return -1;
    uint8_t *out = (uint8_t *) zmq_msg_data (&frame);
    memcpy (out, sender, slen);
    out [slen] = 0;
    memcpy (out + slen + 1, stamp, stamp_len);
    out [slen + 1 + stamp_len] = 0;
    memcpy (out + slen + stamp_len + 2, body, blen);
    int rc = zmq_msg_send (&frame, handle, ZMQ_DONTWAIT);
    zmq_msg_close (&frame);
    return rc < 0 ? -1 : 0;
}

//  Sends [to][NUL "broker" NUL body] with body packed from msg
static void
s_send_ctl (s_server_t *self, const char *to, const P2c2r__Internal *msg)
{
    size_t len = 0;
    uint8_t *buf = p2c_msg_pack_internal (msg, 0, &len);
    if (!buf)
        return;
    void *handle = zsock_resolve (self->router);
    if (zmq_send (handle, to, strlen (to), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0
        || s_send_frame (handle, "", 0, "broker", 6, buf, len) < 0)
        self->dropped++;
    free (buf);
}

static void
s_send_event (s_server_t *self, const char *to, const char *node_id, const char *service, bool up)
{
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    P2c2r__NodeEvent ev = P2C2R__NODE_EVENT__INIT;
    ev.node_id = (char *) node_id;
    ev.service = (char *) service;
    ev.up = up;
    msg.msg_case = P2C2R__INTERNAL__MSG_NODE_EVENT;
    msg.node_event = &ev;
    s_send_ctl (self, to, &msg);
}

static void
s_send_beat (s_server_t *self, const char *to)
{
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    P2c2r__BrokerBeat beat = P2C2R__BROKER_BEAT__INIT;
    beat.epoch = self->epoch;
    msg.msg_case = P2C2R__INTERNAL__MSG_BROKER_BEAT;
    msg.broker_beat = &beat;
    s_send_ctl (self, to, &msg);
}

typedef struct {
    s_server_t *server;
    const char *node_id;        //  the node the event is about
    const char *service;
    bool up;
} s_event_ctx_t;

//  Tells node `to` about the event in ctx (skipping the node itself)
static void
s_event_to (void *arg, const char *to, const char *service)
{
    (void) service;
    s_event_ctx_t *ctx = (s_event_ctx_t *) arg;
    if (strcmp (to, ctx->node_id) != 0)
        s_send_event (ctx->server, to, ctx->node_id, ctx->service, ctx->up);
}

//  Tells the new node in ctx about existing node `id`
static void
s_existing_to_new (void *arg, const char *id, const char *service)
{
    s_event_ctx_t *ctx = (s_event_ctx_t *) arg;
    if (strcmp (id, ctx->node_id) != 0)
        s_send_event (ctx->server, ctx->node_id, id, service, true);
}

static void
s_on_lost (void *arg, const char *node_id, const char *service)
{
    s_server_t *self = (s_server_t *) arg;
    log_info ("node lost id=%s service=%s", node_id, service);
    s_event_ctx_t ctx = { self, node_id, service, false };
    brk_table_each (self->table, s_event_to, &ctx);
    if (self->node_keys)
        zhashx_delete (self->node_keys, node_id);
}

//  After the allow-list changed: a node whose key is no longer on it is
//  cut off now, not at its next handshake: it leaves the routing table
//  (everyone hears it is down) and what it still sends is refused
static void
s_cut_revoked (s_server_t *self)
{
    zlistx_t *gone = zlistx_new ();
    zlistx_set_destructor (gone, (zlistx_destructor_fn *) zstr_free);
    for (const char *pub = (const char *) zhashx_first (self->node_keys); pub;
         pub = (const char *) zhashx_next (self->node_keys))
        if (!brk_auth_key (self->auth, pub))
            zlistx_add_end (gone, strdup ((const char *) zhashx_cursor (self->node_keys)));
    for (const char *id = (const char *) zlistx_first (gone); id;
         id = (const char *) zlistx_next (gone)) {
        const char *pub = (const char *) zhashx_lookup (self->node_keys, id);
        const char *service = brk_table_service (self->table, id);
        char *svc = service ? strdup (service) : NULL;
        log_warn ("key revoked, node cut off id=%s key=%s", id,
                  brk_auth_name (self->auth, pub));
        if (svc && brk_table_remove (self->table, id)) {
            s_event_ctx_t ctx = { self, id, svc, false };
            brk_table_each (self->table, s_event_to, &ctx);
        }
        free (svc);
        zhashx_delete (self->node_keys, id);
    }
    zlistx_destroy (&gone);
}

//  A hello: with CURVE, its service must be the one its key is bound to
static void
s_handle_control (s_server_t *self, const char *sender, const brk_key_t *key,
                  const uint8_t *body, size_t len)
{
    P2c2r__Internal *msg = p2c_msg_unpack_internal (body, len);
    if (!msg || msg->msg_case != P2C2R__INTERNAL__MSG_NODE_HELLO
        || !msg->node_hello->service || !*msg->node_hello->service
        || strlen (msg->node_hello->service) > 64) {
        self->dropped++;
        log_debug ("bad control message from=%s", sender);
        p2c_msg_internal_free (&msg);
        return;
    }
    const char *service = msg->node_hello->service;
    if (key && strcmp (key->service, service) != 0) {
        self->refused_hellos++;
        if (s_log_refusal (self->refused_hellos))
            log_warn ("refused hello id=%s service=%s key=%s bound=%s refused=%llu",
                      sender, service, key->name, key->service,
                      (unsigned long long) self->refused_hellos);
        p2c_msg_internal_free (&msg);
        return;
    }
    if (key)
        zhashx_update (self->node_keys, sender, key->public_txt);
    if (brk_table_hello (self->table, sender, service, p2c_now_ms ())) {
        log_info ("node joined id=%s service=%s", sender, service);
        //  Tell it our epoch now rather than at the next beat, and before
        //  the nodes already here: a node that sees a new epoch forgets
        //  every node it knew (the broker restarted), so a beat after
        //  these events would make it forget them
        s_send_beat (self, sender);
        s_event_ctx_t ctx = { self, sender, service, true };
        brk_table_each (self->table, s_event_to, &ctx);
        brk_table_each (self->table, s_existing_to_new, &ctx);
    }
    p2c_msg_internal_free (&msg);
}

//  One message of the ROUTER: [sender][dest NUL body]
static void
s_on_router (void *arg, zmq_msg_t *frames, size_t n)
{
    s_server_t *self = (s_server_t *) arg;
    void *handle = zsock_resolve (self->router);
    if (n != 2) {
        self->dropped++;
        return;
    }
    char sender [256], dest [256];
    size_t slen = zmq_msg_size (&frames [0]);
    const uint8_t *data = (const uint8_t *) zmq_msg_data (&frames [1]);
    size_t len = zmq_msg_size (&frames [1]);
    const uint8_t *nul = (const uint8_t *) memchr (data, 0, len < sizeof dest ? len : sizeof dest);
    //  A NUL in a node's id would let it write a stamp of its own into
    //  the frame [sender NUL stamp NUL body]: such ids are refused
    if (slen == 0 || slen >= sizeof sender || !nul
        || memchr (zmq_msg_data (&frames [0]), 0, slen)) {
        self->dropped++;
        return;
    }
    memcpy (sender, zmq_msg_data (&frames [0]), slen);
    sender [slen] = 0;
    size_t dlen = (size_t) (nul - data);
    memcpy (dest, data, dlen + 1);
    const uint8_t *body = nul + 1;
    size_t blen = len - dlen - 1;
    //  Who sent it: with CURVE the key of its connection (the ZAP user
    //  id, looked up now, so a key revoked since is refused at once);
    //  without, the service the node announced
    const brk_key_t *key = NULL;
    const char *stamp = "";
    size_t stamp_len = 0;
    if (self->curve) {
        const char *pub = zmq_msg_gets (&frames [1], "User-Id");
        key = brk_auth_key (self->auth, pub);
        if (!key) {
            self->refused_messages++;
            if (s_log_refusal (self->refused_messages))
                log_warn ("refused message from=%s key=%s refused=%llu", sender,
                          brk_auth_name (self->auth, pub),
                          (unsigned long long) self->refused_messages);
            return;
        }
        stamp = key->stamp;
        stamp_len = key->stamp_len;
    }
    else {
        const char *service = brk_table_service (self->table, sender);
        if (service) {
            stamp = service;
            stamp_len = strlen (service);
        }
    }
    if (dlen == 0)
        s_handle_control (self, sender, key, body, blen);
    else {
        const char *target = brk_table_route (self->table, dest);
        if (!target) {
            self->dropped++;
            log_debug ("no route dest=%s from=%s", dest, sender);
        }
        else
        if (zmq_send (handle, target, strlen (target), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0
            || s_send_frame (handle, sender, slen, stamp, stamp_len, body, blen) < 0) {
            self->dropped++;
            log_debug ("send failed dest=%s errno=%d", target, errno);
        }
        else
            self->forwarded++;
    }
}

//  Drains the ROUTER (p2c_drain), so one wakeup serves every message that
//  came in meanwhile. Returns true when it stopped at its budget with
//  messages still waiting (the loop then must not sleep), false when the
//  socket is empty: ZMQ_FD will signal the next arrival.
static bool
s_router_drain (s_server_t *self)
{
    return p2c_drain (zsock_resolve (self->router), 10000, s_on_router, self);
}

static void
s_beat_to (void *arg, const char *node_id, const char *service)
{
    (void) service;
    s_send_beat ((s_server_t *) arg, node_id);
}

static uint64_t
s_refused_handshakes (s_server_t *self)
{
    return self->refused_handshakes + (self->auth ? brk_auth_refused (self->auth) : 0);
}

//  Handshake failures from the ROUTER's monitor: [event id, value][address].
//  ZAP refusals are logged by ZAP with the key's name; these are the ones
//  it never sees (no CURVE at all, or the wrong broker key).
static void
s_on_monitor (void *arg, zmq_msg_t *parts, size_t nparts)
{
    s_server_t *self = (s_server_t *) arg;
    if (nparts < 2 || zmq_msg_size (&parts [0]) != 6)
        return;
    zmq_msg_t *ev = &parts [0], *addr = &parts [1];
    uint16_t id;
    uint32_t value;
    memcpy (&id, zmq_msg_data (ev), 2);
    memcpy (&value, (uint8_t *) zmq_msg_data (ev) + 2, 4);
    //  A protocol event's value names the error; a failure with no
    //  detail (the peer hung up mid-handshake) carries an errno
    bool protocol = id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL;
    bool no_curve = protocol && value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH;
    self->refused_handshakes++;
    if (s_log_refusal (self->refused_handshakes))
        log_warn ("refused handshake key=%s reason=%s %s=0x%x"
                  " endpoint=%.*s refused=%llu",
                  no_curve ? "none" : "unknown",
                  no_curve ? "no-curve"
                  : !protocol ? "closed"
                  : value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC ? "crypto" : "protocol",
                  protocol ? "error" : "errno", value,
                  (int) zmq_msg_size (addr), (const char *) zmq_msg_data (addr),
                  (unsigned long long) s_refused_handshakes (self));
}

static void
s_monitor_drain (s_server_t *self)
{
    p2c_drain (zsock_resolve (self->monitor), SIZE_MAX, s_on_monitor, self);
}

//  The cron: beats, expiry of silent nodes, a status line now and then
static void
s_cron (s_server_t *self)
{
    int64_t now = p2c_now_ms ();
    if (self->auth && brk_auth_reload (self->auth))
        s_cut_revoked (self);
    brk_table_expire (self->table, now, P2C_HEARTBEAT_MS * P2C_HEARTBEAT_LIVENESS,
                      s_on_lost, self);
    brk_table_each (self->table, s_beat_to, self);
    uint64_t refused = s_refused_handshakes (self) + self->refused_hellos
                     + self->refused_messages;
    if (now - self->status_ms >= 10000
        && (self->forwarded != self->logged_forwarded || refused != self->logged_refused)) {
        log_info ("status nodes=%zu forwarded=%llu dropped=%llu wakeups=%llu"
                  " refused_handshakes=%llu refused_hellos=%llu refused_messages=%llu",
                  brk_table_size (self->table), (unsigned long long) self->forwarded,
                  (unsigned long long) self->dropped, (unsigned long long) self->wakeups,
                  (unsigned long long) s_refused_handshakes (self),
                  (unsigned long long) self->refused_hellos,
                  (unsigned long long) self->refused_messages);
        self->status_ms = now;
        self->logged_forwarded = self->forwarded;
        self->logged_refused = refused;
    }
}

//  A command on the actor pipe; false on $TERM or a dead pipe
static bool
s_pipe_command (s_server_t *self)
{
    char *cmd = zstr_recv (self->pipe);
    if (!cmd)
        return false;
    bool alive = true;
    if (!strcmp (cmd, "$TERM"))
        alive = false;
    else
    if (!strcmp (cmd, "PORT"))
        zstr_sendf (self->pipe, "%d", self->port);
    else
    if (!strcmp (cmd, "STATS"))
        zstr_sendf (self->pipe, "%llu %llu %zu %llu %llu %llu",
                    (unsigned long long) self->forwarded, (unsigned long long) self->dropped,
                    brk_table_size (self->table),
                    (unsigned long long) s_refused_handshakes (self),
                    (unsigned long long) self->refused_hellos,
                    (unsigned long long) self->refused_messages);
    zstr_free (&cmd);
    return alive;
}

//  The event loop. It sleeps in one poll(2) on the two sockets' ZMQ_FDs
//  rather than in zloop, whose zmq_poll makes about six system calls per
//  wakeup (a zero-timeout pass, then ZMQ_EVENTS on each socket before and
//  after the wait); at load the broker wakes thousands of times a second.
//  ZMQ_FD only signals new commands, so every turn ends with a drain to
//  EAGAIN (or a pipe check) right before sleeping: nothing may touch the
//  ROUTER between that last receive and the poll.
static void
s_run (s_server_t *self)
{
    struct pollfd items [4] = {
        { zsock_fd (self->router), POLLIN, 0 },
        { zsock_fd (self->pipe), POLLIN, 0 },
        { self->zap ? zsock_fd (self->zap) : -1, POLLIN, 0 },
        { self->monitor ? zsock_fd (self->monitor) : -1, POLLIN, 0 }
    };
    int64_t cron_at = p2c_now_ms () + P2C_HEARTBEAT_MS;
    bool check_pipe = true;         //  a command may be queued already
    while (!zsys_interrupted) {
        if (check_pipe) {
            bool alive = true;
            while (alive && (zsock_events (self->pipe) & ZMQ_POLLIN))
                alive = s_pipe_command (self);
            if (!alive)
                break;
        }
        int64_t now = p2c_now_ms ();
        if (now >= cron_at) {
            s_cron (self);
            cron_at = now + P2C_HEARTBEAT_MS;
        }
        bool more = s_router_drain (self);
        //  Handshakes wait on ZAP's answers; neither drain touches the ROUTER
        if (self->zap)
            brk_auth_zap_drain (self->auth, self->zap);
        if (self->monitor)
            s_monitor_drain (self);
        now = p2c_now_ms ();
        int timeout = more ? 0 : (int) (cron_at > now ? cron_at - now : 0);
        items [0].revents = items [1].revents = items [2].revents = items [3].revents = 0;
        if (poll (items, 4, timeout) < 0 && errno != EINTR) {
            log_warn ("poll failed errno=%d", errno);
            break;
        }
        self->wakeups++;
        check_pipe = items [1].revents != 0;
    }
}

//  With CURVE: the allow-list, the ZAP handler (bound before the ROUTER,
//  since libzmq lets a CURVE handshake through when no handler listens),
//  the broker's own pair on the ROUTER, and a monitor of the handshakes
//  that fail before ZAP. 0, or -1 (logged).
static int
s_curve_setup (s_server_t *self, const char *keys)
{
    self->auth = brk_auth_new (keys);
    if (!self->auth)
        return -1;
    zcert_t *cert = p2c_keys_load (keys, "broker");
    if (!cert) {
        log_warn ("no key pair %s/broker.key_secret (p2c2r-ctl keys init)", keys);
        return -1;
    }
    self->zap = zsock_new (ZMQ_REP);
    if (!self->zap || zsock_bind (self->zap, "inproc://zeromq.zap.01") != 0) {
        log_warn ("cannot bind the ZAP handler");
        zcert_destroy (&cert);
        return -1;
    }
    zsock_set_rcvtimeo (self->zap, 0);
    zcert_apply (cert, zsock_resolve (self->router));
    zcert_destroy (&cert);
    zsock_set_curve_server (self->router, 1);
    zsock_set_zap_domain (self->router, "p2c2r");
    char *endpoint = p2c_sprintf ("inproc://p2c2r-broker-monitor-%p", (void *) self);
    if (zmq_socket_monitor (zsock_resolve (self->router), endpoint,
                            ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
                            | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) == 0) {
        self->monitor = zsock_new (ZMQ_PAIR);
        if (self->monitor && zsock_connect (self->monitor, "%s", endpoint) != 0)
            zsock_destroy (&self->monitor);
    }
    zstr_free (&endpoint);
    self->node_keys = zhashx_new ();
    zhashx_set_duplicator (self->node_keys, (zhashx_duplicator_fn *) strdup);
    zhashx_set_destructor (self->node_keys, (zhashx_destructor_fn *) zstr_free);
    return 0;
}

static void
s_server_free (s_server_t *self)
{
    brk_table_destroy (&self->table);
    if (self->monitor)
        zmq_socket_monitor (zsock_resolve (self->router), NULL, 0);
    zsock_destroy (&self->monitor);
    zsock_destroy (&self->router);
    zsock_destroy (&self->zap);
    brk_auth_destroy (&self->auth);
    zhashx_destroy (&self->node_keys);
}

void
brk_server_actor (zsock_t *pipe, void *arg)
{
    brk_server_args_t *args = (brk_server_args_t *) arg;
    s_server_t self = { 0 };
    self.pipe = pipe;
    self.curve = args->curve;
    self.router = zsock_new (ZMQ_ROUTER);
    zsock_set_router_mandatory (self.router, 1);
    zsock_set_sndhwm (self.router, 1000000);
    zsock_set_rcvhwm (self.router, 1000000);
    zsock_set_linger (self.router, 0);
    zsock_set_maxmsgsize (self.router, P2C_MAX_INTERNAL + 1024);
    if (self.curve && s_curve_setup (&self, args->keys ? args->keys : "") != 0) {
        s_server_free (&self);
        args->failed = true;
        zsock_signal (pipe, 1);
        return;
    }
    self.port = zsock_bind (self.router, "%s", args->endpoint);
    if (self.port < 0) {
        log_warn ("cannot bind endpoint=%s", args->endpoint);
        s_server_free (&self);
        args->failed = true;
        zsock_signal (pipe, 1);
        return;
    }
    self.table = brk_table_new ();
    //  A fresh epoch on every start, so nodes notice a restart
    self.epoch = ((uint64_t) time (NULL) << 20) ^ (uint64_t) randof (1 << 20) ^ (uint64_t) getpid ();
    if (self.epoch == 0)
        self.epoch = 1;
    if (self.curve)
        log_info ("listening endpoint=%s curve=on keys=%s", args->endpoint, args->keys);
    else
        log_warn ("listening endpoint=%s curve=off: any process that reaches it may"
                  " join", args->endpoint);
    zsock_signal (pipe, 0);

    s_run (&self);
    s_server_free (&self);
}

void
brk_server_test (bool verbose)
{
    brk_server_args_t args = { "tcp://127.0.0.1:*", false, NULL, false };
    zactor_t *broker = zactor_new (brk_server_actor, &args);
    P2C_CHECK (broker != NULL && !args.failed);
    zstr_send (broker, "PORT");
    char *port = zstr_recv (broker);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%s", port);
    zstr_free (&port);

    //  Two nodes: a "gateway" and a "ledger". The gateway learns about the
    //  ledger, then a message to the service "ledger" arrives there with the
    //  gateway as sender, and the answer to the sender's id comes back.
    p2c_node_t *gw = p2c_node_new (endpoint, "gateway", "gw-t");
    p2c_node_t *led = p2c_node_new (endpoint, "ledger", "led-t");
    zpoller_t *poller = zpoller_new (p2c_node_sock (gw), p2c_node_sock (led), NULL);
    int64_t until = p2c_now_ms () + 5000;
    while (p2c_node_service_count (gw, "ledger") == 0 && p2c_now_ms () < until) {
        zpoller_wait (poller, 50);
        char *sender = NULL;
        P2c2r__Internal *m;
        while ((m = p2c_node_recv (gw, &sender))) {
            p2c_msg_internal_free (&m);
            zstr_free (&sender);
        }
        while ((m = p2c_node_recv (led, &sender))) {
            p2c_msg_internal_free (&m);
            zstr_free (&sender);
        }
    }
    P2C_CHECK (p2c_node_service_count (gw, "ledger") == 1);
    P2C_CHECK (p2c_node_broker_alive (gw));

    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    P2c2r__AuthRequest req = P2C2R__AUTH_REQUEST__INIT;
    req.corr = 7;
    req.role = "gamer";
    req.name = "player-1";
    msg.msg_case = P2C2R__INTERNAL__MSG_AUTH_REQUEST;
    msg.auth_request = &req;
    P2C_CHECK (p2c_node_send (gw, "ledger", &msg) == 0);
    P2c2r__Internal *got = NULL;
    char *sender = NULL;
    until = p2c_now_ms () + 5000;
    while (!got && p2c_now_ms () < until) {
        zpoller_wait (poller, 50);
        while (!got && (got = p2c_node_recv (led, &sender))) {
            if (got->msg_case != P2C2R__INTERNAL__MSG_AUTH_REQUEST) {
                p2c_msg_internal_free (&got);
                zstr_free (&sender);
            }
        }
    }
    P2C_CHECK (got && got->auth_request->corr == 7);
    P2C_CHECK (sender && !strcmp (sender, "gw-t"));
    p2c_msg_internal_free (&got);

    P2c2r__AuthReply rep = P2C2R__AUTH_REPLY__INIT;
    rep.corr = 7;
    rep.ok = true;
    msg.msg_case = P2C2R__INTERNAL__MSG_AUTH_REPLY;
    msg.auth_reply = &rep;
    P2C_CHECK (sender && p2c_node_send (led, sender, &msg) == 0);
    zstr_free (&sender);
    until = p2c_now_ms () + 5000;
    while (!got && p2c_now_ms () < until) {
        zpoller_wait (poller, 50);
        while (!got && (got = p2c_node_recv (gw, &sender))) {
            if (got->msg_case != P2C2R__INTERNAL__MSG_AUTH_REPLY) {
                p2c_msg_internal_free (&got);
                zstr_free (&sender);
            }
        }
    }
    P2C_CHECK (got && got->auth_reply->ok && got->auth_reply->corr == 7);
    P2C_CHECK (sender && !strcmp (sender, "led-t"));
    p2c_msg_internal_free (&got);
    zstr_free (&sender);

    //  A destination nobody serves is dropped and counted, not crashed on
    P2C_CHECK (p2c_node_send (gw, "nobody", &msg) == 0);
    char *stats = NULL;
    until = p2c_now_ms () + 5000;
    unsigned long long fwd = 0, dropped = 0;
    while (dropped == 0 && p2c_now_ms () < until) {
        zstr_send (broker, "STATS");
        stats = zstr_recv (broker);
        size_t nodes = 0;
        if (stats)
            sscanf (stats, "%llu %llu %zu", &fwd, &dropped, &nodes);
        zstr_free (&stats);
        if (dropped == 0)
            zpoller_wait (poller, 20);
    }
    P2C_CHECK (fwd == 2);
    P2C_CHECK (dropped == 1);

    //  A burst larger than one drain's budget all arrives, in order: the
    //  loop must not sleep while messages wait in the ROUTER
    int burst = 45000, seen = 0;
    bool in_order = true;
    req.role = "gamer";
    msg.msg_case = P2C2R__INTERNAL__MSG_AUTH_REQUEST;
    msg.auth_request = &req;
    int unsent = 0;
    int64_t burst_ms = p2c_now_ms ();
    for (int i = 0; i < burst; i++) {
        req.corr = 1000 + i;
        if (p2c_node_send (gw, "ledger", &msg) != 0)
            unsent++;
    }
    P2C_CHECK (unsent == 0);
    until = p2c_now_ms () + 10000;
    while (seen < burst && p2c_now_ms () < until) {
        zpoller_wait (poller, 50);
        while ((got = p2c_node_recv (led, &sender))) {
            if (got->msg_case == P2C2R__INTERNAL__MSG_AUTH_REQUEST) {
                if (got->auth_request->corr != (uint64_t) (1000 + seen))
                    in_order = false;
                seen++;
            }
            p2c_msg_internal_free (&got);
            zstr_free (&sender);
        }
    }
    burst_ms = p2c_now_ms () - burst_ms;
    P2C_CHECK (seen == burst);
    P2C_CHECK (in_order);
    //  A loop that slept with messages waiting would stall till its cron,
    //  a second per drain budget: 4 s here, against 0.1 to 1 s when correct
    P2C_CHECK (burst_ms < 3000);
    if (verbose)
        printf ("broker: burst of %d took %lld ms\n", burst, (long long) burst_ms);
    zstr_send (broker, "STATS");
    stats = zstr_recv (broker);
    P2C_CHECK (stats && sscanf (stats, "%llu", &fwd) == 1 && fwd == 2 + (unsigned long long) burst);
    zstr_free (&stats);

    //  A node whose id holds a NUL could write a stamp of its own into the
    //  frame [sender NUL stamp NUL body]: the broker drops what it sends
    zsock_t *forger = zsock_new (ZMQ_DEALER);
    zmq_setsockopt (zsock_resolve (forger), ZMQ_ROUTING_ID, "x\0ledger:ledger", 15);
    zsock_connect (forger, "%s", endpoint);
    req.corr = 999;
    msg.msg_case = P2C2R__INTERNAL__MSG_AUTH_REQUEST;
    msg.auth_request = &req;
    size_t len = 0;
    uint8_t *buf = p2c_msg_pack_internal (&msg, 0, &len);
    uint8_t *forged = (uint8_t *) p2c_malloc (len + 7);
    memcpy (forged, "ledger", 7);
    memcpy (forged + 7, buf, len);
    zmq_send (zsock_resolve (forger), forged, len + 7, 0);
    free (forged);
    free (buf);
    until = p2c_now_ms () + 5000;
    dropped = 1;
    while (dropped == 1 && p2c_now_ms () < until) {
        zstr_send (broker, "STATS");
        stats = zstr_recv (broker);
        if (stats)
            sscanf (stats, "%*u %llu", &dropped);
        zstr_free (&stats);
        zpoller_wait (poller, 20);
    }
    P2C_CHECK (dropped == 2);
    got = NULL;
    while ((got = p2c_node_recv (led, &sender))) {
        P2C_CHECK (got->msg_case != P2C2R__INTERNAL__MSG_AUTH_REQUEST);
        p2c_msg_internal_free (&got);
        zstr_free (&sender);
    }
    zsock_destroy (&forger);

    //  The ledger goes away: the gateway is told within the liveness time
    p2c_node_destroy (&led);
    zpoller_destroy (&poller);
    poller = zpoller_new (p2c_node_sock (gw), NULL);
    bool down = false;
    until = p2c_now_ms () + 3 * P2C_HEARTBEAT_MS * P2C_HEARTBEAT_LIVENESS;
    while (!down && p2c_now_ms () < until) {
        zpoller_wait (poller, 100);
        p2c_node_cron (gw);
        while ((got = p2c_node_recv (gw, &sender))) {
            if (got->msg_case == P2C2R__INTERNAL__MSG_NODE_EVENT && !got->node_event->up
                && !strcmp (got->node_event->node_id, "led-t"))
                down = true;
            p2c_msg_internal_free (&got);
            zstr_free (&sender);
        }
    }
    P2C_CHECK (down);
    P2C_CHECK (p2c_node_service_count (gw, "ledger") == 0);
    zpoller_destroy (&poller);
    p2c_node_destroy (&gw);
    zactor_destroy (&broker);
}

//  --------------------------------------------------------------------------
//  The closed bus, with real nodes over TCP: who gets in, who may say what

//  Polls the nodes for up to ms, passing every message to nobody; returns
//  the first message of type want that arrived at node `at` (or NULL)
static P2c2r__Internal *
s_test_pump (p2c_node_t **nodes, size_t count, p2c_node_t *at, int want, int ms, char **sender_p)
{
    zpoller_t *poller = zpoller_new (NULL);
    for (size_t i = 0; i < count; i++)
        if (nodes [i])
            zpoller_add (poller, p2c_node_sock (nodes [i]));
    P2c2r__Internal *found = NULL;
    int64_t until = p2c_now_ms () + ms;
    while (p2c_now_ms () < until && !found) {
        zpoller_wait (poller, 20);
        for (size_t i = 0; i < count; i++) {
            if (!nodes [i])
                continue;
            p2c_node_cron (nodes [i]);
            char *sender = NULL;
            P2c2r__Internal *m;
            while ((m = p2c_node_recv (nodes [i], &sender))) {
                if (!found && nodes [i] == at && (int) m->msg_case == want) {
                    found = m;
                    if (sender_p)
                        *sender_p = sender;
                    else
                        zstr_free (&sender);
                    continue;
                }
                p2c_msg_internal_free (&m);
                zstr_free (&sender);
            }
        }
    }
    zpoller_destroy (&poller);
    return found;
}

static void
s_test_stats (zactor_t *broker, unsigned long long v [6])
{
    zstr_send (broker, "STATS");
    char *stats = zstr_recv (broker);
    memset (v, 0, 6 * sizeof v [0]);
    if (stats)
        sscanf (stats, "%llu %llu %llu %llu %llu %llu", &v [0], &v [1], &v [2], &v [3], &v [4],
                &v [5]);
    zstr_free (&stats);
}

void
brk_server_curve_test (bool verbose)
{
    (void) verbose;
    char dir [] = "/tmp/brk-curve-test.XXXXXX";
    P2C_CHECK (mkdtemp (dir) != NULL);
    char *keys = p2c_sprintf ("%s/keys", dir);
    char *other = p2c_sprintf ("%s/other", dir);
    //  Without keys the broker does not start
    brk_server_args_t args = { "tcp://127.0.0.1:*", true, keys, false };
    zactor_t *broker = zactor_new (brk_server_actor, &args);
    P2C_CHECK (args.failed);
    zactor_destroy (&broker);

    P2C_CHECK (p2c_keys_init (keys) == 0);
    P2C_CHECK (p2c_keys_add (keys, "gw-evil", "gateway", NULL) == 0);
    P2C_CHECK (p2c_keys_add (keys, "gw-2", "gateway", NULL) == 0);
    P2C_CHECK (p2c_keys_init (other) == 0);       //  keys nobody listed
    char *wrong_broker = p2c_sprintf ("%s/wrong", dir);
    P2C_CHECK (p2c_keys_init (wrong_broker) == 0);
    //  ... talking to the right broker
    char *cmd = p2c_sprintf ("cp '%s/broker.key' '%s/broker.key'", keys, other);
    P2C_CHECK (system (cmd) == 0);
    zstr_free (&cmd);
    args.failed = false;
    broker = zactor_new (brk_server_actor, &args);
    P2C_CHECK (broker && !args.failed);
    zstr_send (broker, "PORT");
    char *port = zstr_recv (broker);
    char *endpoint = p2c_sprintf ("tcp://127.0.0.1:%s", port ? port : "1");
    zstr_free (&port);

    enum { LED, GW, POSER, NOKEY, STRANGER, WRONG, GW2, COUNT };
    p2c_node_t *n [COUNT] = { NULL };
    P2C_CHECK (p2c_node_set_keys (keys, "ledger") == 0);
    n [LED] = p2c_node_new (endpoint, "ledger", "led-c");
    P2C_CHECK (p2c_node_set_keys (keys, "gateway") == 0);
    n [GW] = p2c_node_new (endpoint, "gateway", "gw-c");
    //  A second "ledger" with a gateway's key, to take auth requests
    P2C_CHECK (p2c_node_set_keys (keys, "gw-evil") == 0);
    n [POSER] = p2c_node_new (endpoint, "ledger", "led-evil");
    P2C_CHECK (p2c_node_set_keys (keys, "gw-2") == 0);
    n [GW2] = p2c_node_new (endpoint, "gateway", "gw-2");
    p2c_node_set_plain ();
    n [NOKEY] = p2c_node_new (endpoint, "ledger", "led-nokey");
    P2C_CHECK (p2c_node_set_keys (other, "ledger") == 0);
    n [STRANGER] = p2c_node_new (endpoint, "ledger", "led-stranger");
    //  A listed key that trusts another broker's key
    P2C_CHECK (p2c_node_set_keys (wrong_broker, "ledger") == 0);
    n [WRONG] = p2c_node_new (endpoint, "ledger", "led-wrong");
    p2c_node_set_plain ();
    //  A missing key makes no node at all, rather than a plain one
    P2C_CHECK (p2c_node_set_keys (keys, "nobody") == -1);
    P2C_CHECK (p2c_node_new (endpoint, "gateway", NULL) == NULL);
    p2c_node_set_plain ();

    int64_t until = p2c_now_ms () + 5000;
    while (p2c_now_ms () < until
           && (p2c_node_service_count (n [GW], "ledger") == 0
               || !p2c_node_broker_alive (n [GW2])))
        s_test_pump (n, COUNT, NULL, 0, 100, NULL);
    //  Give the refused ones time to try (their hellos every second)
    s_test_pump (n, COUNT, NULL, 0, 1500, NULL);
    P2C_CHECK (p2c_node_service_count (n [GW], "ledger") == 1);
    P2C_CHECK (!p2c_node_broker_alive (n [NOKEY]));
    P2C_CHECK (!p2c_node_broker_alive (n [STRANGER]));
    P2C_CHECK (!p2c_node_broker_alive (n [WRONG]));
    unsigned long long st [6];
    s_test_stats (broker, st);
    P2C_CHECK (st [3] >= 3);            //  no key, unknown key, wrong broker
    P2C_CHECK (st [4] >= 1);            //  the posing "ledger"

    //  Every auth request reaches the real ledger, stamped with its sender
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    P2c2r__AuthRequest req = P2C2R__AUTH_REQUEST__INIT;
    req.role = "gamer";
    req.name = "g";
    msg.msg_case = P2C2R__INTERNAL__MSG_AUTH_REQUEST;
    msg.auth_request = &req;
    int got = 0;
    for (int i = 0; i < 4; i++) {
        req.corr = 100 + i;
        P2C_CHECK (p2c_node_send (n [GW], "ledger", &msg) == 0);
        P2c2r__Internal *m = s_test_pump (n, COUNT, n [LED], P2C2R__INTERNAL__MSG_AUTH_REQUEST,
                                          3000, NULL);
        if (m)
            got++;
        p2c_msg_internal_free (&m);
    }
    P2C_CHECK (got == 4);

    //  A gateway's key sending what only ctl or a scheduler may: forwarded
    //  with its true stamp, refused and counted by the ledger
    P2c2r__AdminRequest admin = P2C2R__ADMIN_REQUEST__INIT;
    admin.command = "credit";
    admin.args_json = "{}";
    msg.msg_case = P2C2R__INTERNAL__MSG_ADMIN_REQUEST;
    msg.admin_request = &admin;
    P2C_CHECK (p2c_node_send (n [GW2], "ledger", &msg) == 0);
    P2c2r__SettleRequest settle = P2C2R__SETTLE_REQUEST__INIT;
    settle.task_id = "forged";
    msg.msg_case = P2C2R__INTERNAL__MSG_SETTLE_REQUEST;
    msg.settle_request = &settle;
    P2C_CHECK (p2c_node_send (n [GW2], "ledger", &msg) == 0);
    P2c2r__Internal *m = s_test_pump (n, COUNT, n [LED], P2C2R__INTERNAL__MSG_ADMIN_REQUEST,
                                      1000, NULL);
    P2C_CHECK (m == NULL);
    p2c_msg_internal_free (&m);
    P2C_CHECK (p2c_node_refused (n [LED]) == 2);

    //  gw-2 is revoked while connected: everyone hears it is down, and what
    //  it sends from then on is refused at the broker
    P2C_CHECK (p2c_node_service_count (n [LED], "gateway") == 2);
    P2C_CHECK (p2c_keys_revoke (keys, "gw-2") == 0);
    until = p2c_now_ms () + 5000;
    while (p2c_now_ms () < until && p2c_node_service_count (n [LED], "gateway") != 1)
        s_test_pump (n, COUNT, NULL, 0, 100, NULL);
    P2C_CHECK (p2c_node_service_count (n [LED], "gateway") == 1);
    msg.msg_case = P2C2R__INTERNAL__MSG_AUTH_REQUEST;
    msg.auth_request = &req;
    P2C_CHECK (p2c_node_send (n [GW2], "ledger", &msg) == 0);
    m = s_test_pump (n, COUNT, n [LED], P2C2R__INTERNAL__MSG_AUTH_REQUEST, 1000, NULL);
    P2C_CHECK (m == NULL);
    p2c_msg_internal_free (&m);
    s_test_stats (broker, st);
    P2C_CHECK (st [5] >= 1);
    //  and the others go on
    P2C_CHECK (p2c_node_send (n [GW], "ledger", &msg) == 0);
    m = s_test_pump (n, COUNT, n [LED], P2C2R__INTERNAL__MSG_AUTH_REQUEST, 3000, NULL);
    P2C_CHECK (m != NULL);
    p2c_msg_internal_free (&m);

    for (int i = 0; i < COUNT; i++)
        p2c_node_destroy (&n [i]);
    zactor_destroy (&broker);
    zstr_free (&endpoint);
    zstr_free (&wrong_broker);
    cmd = p2c_sprintf ("rm -rf '%s'", dir);
    P2C_CHECK (system (cmd) == 0);
    zstr_free (&cmd);
    zstr_free (&keys);
    zstr_free (&other);
}
