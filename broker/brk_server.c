/*  Broker actor (see brk_server.h). */
#include "brk_server.h"
#include "brk_table.h"
#include "p2c_log.h"
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
} s_server_t;

//  Sends [to][from][body] with body packed from msg
static void
s_send_ctl (s_server_t *self, const char *to, const P2c2r__Internal *msg)
{
    size_t len = 0;
    uint8_t *buf = p2c_msg_pack_internal (msg, 0, &len);
    if (!buf)
        return;
    void *handle = zsock_resolve (self->router);
    if (zmq_send (handle, to, strlen (to), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0
        || zmq_send (handle, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0
        || zmq_send (handle, buf, len, ZMQ_DONTWAIT) < 0)
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
    log_info ("broker: node lost id=%s service=%s", node_id, service);
    s_event_ctx_t ctx = { self, node_id, service, false };
    brk_table_each (self->table, s_event_to, &ctx);
}

static void
s_handle_control (s_server_t *self, const char *sender, zmq_msg_t *body)
{
    P2c2r__Internal *msg = p2c_msg_unpack_internal (
        (const uint8_t *) zmq_msg_data (body), zmq_msg_size (body));
    if (!msg || msg->msg_case != P2C2R__INTERNAL__MSG_NODE_HELLO
        || !msg->node_hello->service || !*msg->node_hello->service
        || strlen (msg->node_hello->service) > 64) {
        self->dropped++;
        log_debug ("broker: bad control message from=%s", sender);
        p2c_msg_internal_free (&msg);
        return;
    }
    const char *service = msg->node_hello->service;
    if (brk_table_hello (self->table, sender, service, p2c_now_ms ())) {
        log_info ("broker: node joined id=%s service=%s", sender, service);
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

//  Drains the ROUTER: every message is [sender][dest][body]. Receives
//  without waiting until EAGAIN, so one wakeup serves every message that
//  came in meanwhile. Returns true when it stopped at its budget with
//  messages still waiting (the loop then must not sleep), false when the
//  socket is empty: its last, failed receive has processed the socket's
//  pending commands, so ZMQ_FD will signal the next arrival.
static bool
s_router_drain (s_server_t *self)
{
    void *handle = zsock_resolve (self->router);
    for (int budget = 0; budget < 10000; budget++) {
        zmq_msg_t frames [3];
        int n = 0;
        bool more = true;
        while (more) {
            zmq_msg_t part;
            zmq_msg_init (&part);
            if (zmq_msg_recv (&part, handle, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close (&part);
                if (n == 0)
                    return false;   //  drained
                break;
            }
            more = zmq_msg_more (&part);
            if (n < 3)
                frames [n++] = part;
            else {
                zmq_msg_close (&part);
                n = 4;              //  too many frames
            }
        }
        if (n != 3) {
            self->dropped++;
            for (int i = 0; i < n && i < 3; i++)
                zmq_msg_close (&frames [i]);
            continue;
        }
        char sender [256], dest [256];
        size_t slen = zmq_msg_size (&frames [0]), dlen = zmq_msg_size (&frames [1]);
        if (slen == 0 || slen >= sizeof sender || dlen >= sizeof dest) {
            self->dropped++;
            for (int i = 0; i < 3; i++)
                zmq_msg_close (&frames [i]);
            continue;
        }
        memcpy (sender, zmq_msg_data (&frames [0]), slen);
        sender [slen] = 0;
        memcpy (dest, zmq_msg_data (&frames [1]), dlen);
        dest [dlen] = 0;
        if (dlen == 0)
            s_handle_control (self, sender, &frames [2]);
        else {
            const char *target = brk_table_route (self->table, dest);
            if (!target) {
                self->dropped++;
                log_debug ("broker: no route dest=%s from=%s", dest, sender);
            }
            else
            //  Forward as [target][sender][body]; the body moves, no copy
            if (zmq_send (handle, target, strlen (target), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0
                || zmq_msg_send (&frames [0], handle, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0
                || zmq_msg_send (&frames [2], handle, ZMQ_DONTWAIT) < 0) {
                self->dropped++;
                log_debug ("broker: send failed dest=%s errno=%d", target, errno);
            }
            else
                self->forwarded++;
        }
        for (int i = 0; i < 3; i++)
            zmq_msg_close (&frames [i]);
    }
    return true;
}

static void
s_beat_to (void *arg, const char *node_id, const char *service)
{
    (void) service;
    s_send_beat ((s_server_t *) arg, node_id);
}

//  The cron: beats, expiry of silent nodes, a status line now and then
static void
s_cron (s_server_t *self)
{
    int64_t now = p2c_now_ms ();
    brk_table_expire (self->table, now, P2C_HEARTBEAT_MS * P2C_HEARTBEAT_LIVENESS,
                      s_on_lost, self);
    brk_table_each (self->table, s_beat_to, self);
    if (now - self->status_ms >= 10000 && self->forwarded != self->logged_forwarded) {
        log_info ("broker: status nodes=%zu forwarded=%llu dropped=%llu wakeups=%llu",
                  brk_table_size (self->table), (unsigned long long) self->forwarded,
                  (unsigned long long) self->dropped, (unsigned long long) self->wakeups);
        self->status_ms = now;
        self->logged_forwarded = self->forwarded;
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
        zstr_sendf (self->pipe, "%llu %llu %zu", (unsigned long long) self->forwarded,
                    (unsigned long long) self->dropped, brk_table_size (self->table));
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
    struct pollfd items [2] = {
        { zsock_fd (self->router), POLLIN, 0 },
        { zsock_fd (self->pipe), POLLIN, 0 }
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
        now = p2c_now_ms ();
        int timeout = more ? 0 : (int) (cron_at > now ? cron_at - now : 0);
        items [0].revents = items [1].revents = 0;
        if (poll (items, 2, timeout) < 0 && errno != EINTR) {
            log_warn ("broker: poll failed errno=%d", errno);
            break;
        }
        self->wakeups++;
        check_pipe = items [1].revents != 0;
    }
}

void
brk_server_actor (zsock_t *pipe, void *endpoint)
{
    s_server_t self = { 0 };
    self.pipe = pipe;
    self.router = zsock_new (ZMQ_ROUTER);
    zsock_set_router_mandatory (self.router, 1);
    zsock_set_sndhwm (self.router, 1000000);
    zsock_set_rcvhwm (self.router, 1000000);
    zsock_set_linger (self.router, 0);
    zsock_set_maxmsgsize (self.router, P2C_MAX_INTERNAL + 1024);
    self.port = zsock_bind (self.router, "%s", (const char *) endpoint);
    if (self.port < 0) {
        log_warn ("broker: cannot bind endpoint=%s", (const char *) endpoint);
        zsock_destroy (&self.router);
        zsock_signal (pipe, 1);
        return;
    }
    self.table = brk_table_new ();
    //  A fresh epoch on every start, so nodes notice a restart
    self.epoch = ((uint64_t) time (NULL) << 20) ^ (uint64_t) randof (1 << 20) ^ (uint64_t) getpid ();
    if (self.epoch == 0)
        self.epoch = 1;
    zsock_signal (pipe, 0);
    log_info ("broker: listening endpoint=%s", (const char *) endpoint);

    s_run (&self);
    brk_table_destroy (&self.table);
    zsock_destroy (&self.router);
}

void
brk_server_test (bool verbose)
{
    zactor_t *broker = zactor_new (brk_server_actor, (void *) "tcp://127.0.0.1:*");
    P2C_CHECK (broker != NULL);
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
