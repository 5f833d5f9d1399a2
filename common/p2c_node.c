/*  Broker connection of a server process (see p2c_node.h). */
#define P2C_LOG_COMPONENT "node"
#include "p2c_node.h"
#include <sys/random.h>
#include "p2c_auth.h"
#include "p2c_drain.h"
#include "p2c_keys.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"
#include "p2c_time.h"

#include <errno.h>
#include <unistd.h>

//  Longest stamp "role:keyname" (with its NUL) we take
#define P2C_NODE_STAMP_MAX 96
//  Longest sender id (with its NUL): the broker refuses longer ones
#define P2C_NODE_SENDER_MAX 256

struct _p2c_node_t {
    zsock_t *sock;              //  DEALER to the broker
    char *id;                   //  our routing id
    char *service;              //  our service name
    uint64_t broker_epoch;      //  last epoch the broker announced, 0 none
    int64_t broker_seen_ms;     //  when we last heard the broker
    int64_t hello_ms;           //  when we last said hello
    bool broker_alive;          //  false once beats stop
    zhashx_t *nodes;            //  node id -> service name (strdup'd)
    uint64_t dropped;           //  messages we could not queue or decode
    unsigned role;              //  our role bit (p2c_auth.h)
    uint64_t refused;           //  messages our role may not take from their sender
    char stamp [P2C_NODE_STAMP_MAX];    //  the stamp of the message last returned
};

//  The process's identity (p2c_node_set_keys): its pair, the broker's
//  public key, and whether loading them failed
static zcert_t *s_cert = NULL;
static char s_broker_key [41];
static bool s_keys_broken = false;

int
p2c_node_set_keys (const char *dir, const char *name)
{
    p2c_node_set_plain ();
    s_cert = p2c_keys_load (dir, name);
    bool broker = s_cert && p2c_keys_public (dir, "broker", s_broker_key) == 0;
    if (s_cert && !broker)
        fprintf (stderr, "keys: no broker public key %s/broker.key (p2c2r-ctl keys init)\n", dir);
    if (!broker) {
        zcert_destroy (&s_cert);
        s_keys_broken = true;
        return -1;
    }
    return 0;
}

int
p2c_node_setup (bool curve, const char *dir, const char *name)
{
    if (curve)
        return p2c_node_set_keys (dir, name);
    log_warn ("curve=off, the bus is neither authenticated nor encrypted");
    p2c_node_set_plain ();
    return 0;
}

void
p2c_node_set_plain (void)
{
    zcert_destroy (&s_cert);
    s_keys_broken = false;
}

p2c_node_t *
p2c_node_new (const char *endpoint, const char *service, const char *node_id)
{
    if (s_keys_broken) {
        log_warn ("no bus key, not connecting service=%s", service);
        return NULL;
    }
    p2c_node_t *self = (p2c_node_t *) zmalloc (sizeof (p2c_node_t));
    self->service = p2c_strdup (service);
    self->role = p2c_auth_role (service);
    if (node_id && *node_id)
        self->id = p2c_strdup (node_id);
    else {
        char host [64] = "host";
        gethostname (host, sizeof host - 1);
        host [sizeof host - 1] = 0;
        //  Random from the kernel: czmq's randof uses an unseeded random(),
        //  the same in every process, so a restarted container (same host
        //  name, pid 1) came back under its old id, which the broker took
        //  for the old node and never told it of the others
        uint32_t r = 0;
        if (getrandom (&r, sizeof r, 0) != (ssize_t) sizeof r)
            r = (uint32_t) zclock_usecs () ^ (uint32_t) getpid ();
        self->id = p2c_sprintf ("%s-%s-%d-%08x", service, host, (int) getpid (), r);
    }
    self->sock = zsock_new (ZMQ_DEALER);
    if (!self->sock) {
        p2c_node_destroy (&self);
        return NULL;
    }
    zsock_set_identity (self->sock, self->id);
    zsock_set_linger (self->sock, 0);
    zsock_set_sndhwm (self->sock, 100000);
    zsock_set_rcvhwm (self->sock, 100000);
    zsock_set_maxmsgsize (self->sock, P2C_MAX_INTERNAL + 1024);
    zsock_set_reconnect_ivl (self->sock, 100);
    zsock_set_reconnect_ivl_max (self->sock, 1000);
    if (s_cert) {
        zcert_apply (s_cert, zsock_resolve (self->sock));
        zsock_set_curve_serverkey (self->sock, s_broker_key);
    }
    if (zsock_connect (self->sock, "%s", endpoint) != 0) {
        log_warn ("cannot connect endpoint=%s", endpoint);
        p2c_node_destroy (&self);
        return NULL;
    }
    self->nodes = zhashx_new ();
    zhashx_set_duplicator (self->nodes, (zhashx_duplicator_fn *) strdup);
    zhashx_set_destructor (self->nodes, (zhashx_destructor_fn *) zstr_free);
    self->broker_alive = false;
    self->broker_seen_ms = p2c_now_ms ();
    p2c_node_cron (self);           //  first hello
    return self;
}

void
p2c_node_destroy (p2c_node_t **self_p)
{
    p2c_node_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->sock);
    zhashx_destroy (&self->nodes);
    free (self->id);
    free (self->service);
    free (self);
    *self_p = NULL;
}

const char *
p2c_node_id (p2c_node_t *self)
{
    return self->id;
}

zsock_t *
p2c_node_sock (p2c_node_t *self)
{
    return self->sock;
}

int
p2c_node_fd (p2c_node_t *self)
{
    return zsock_fd (self->sock);
}

uint64_t
p2c_node_dropped (p2c_node_t *self)
{
    return self->dropped;
}

uint64_t
p2c_node_refused (p2c_node_t *self)
{
    return self->refused;
}

bool
p2c_node_broker_alive (p2c_node_t *self)
{
    return self->broker_alive;
}

size_t
p2c_node_service_count (p2c_node_t *self, const char *service)
{
    size_t n = 0;
    for (const char *s = (const char *) zhashx_first (self->nodes); s;
         s = (const char *) zhashx_next (self->nodes))
        if (!strcmp (s, service))
            n++;
    return n;
}

//  One frame [dest NUL body]: with CURVE every frame costs an encryption
//  here and a decryption at the broker, so the destination rides with the
//  body. The body is packed straight into the ZeroMQ message that is sent,
//  so its bytes are written once: no buffer of ours, no copy by zmq_send.
int
p2c_node_send (p2c_node_t *self, const char *dest, const P2c2r__Internal *msg)
{
    void *handle = zsock_resolve (self->sock);
    size_t dlen = strlen (dest);
    zmq_msg_t frame;
    int rc = zmq_msg_init_size (&frame, dlen + 1 + p2c_msg_internal_size (msg));
    if (rc == 0) {
        uint8_t *data = (uint8_t *) zmq_msg_data (&frame);
        memcpy (data, dest, dlen);
        data [dlen] = 0;
        p2c_msg_pack_internal_into (msg, data + dlen + 1);
        if (zmq_msg_send (&frame, handle, ZMQ_DONTWAIT) < 0)
            rc = -1;
        zmq_msg_close (&frame);
    }
    if (rc != 0) {
        self->dropped++;
        log_debug ("send failed dest=%s type=%s errno=%d", dest,
                   p2c_msg_internal_name (msg), errno);
    }
    return rc;
}

static void
s_hello (p2c_node_t *self)
{
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    P2c2r__NodeHello hello = P2C2R__NODE_HELLO__INIT;
    hello.service = self->service;
    hello.node_id = self->id;
    msg.msg_case = P2C2R__INTERNAL__MSG_NODE_HELLO;
    msg.node_hello = &hello;
    p2c_node_send (self, "", &msg);
    self->hello_ms = p2c_now_ms ();
}

void
p2c_node_cron (p2c_node_t *self)
{
    int64_t now = p2c_now_ms ();
    if (now - self->hello_ms >= P2C_HEARTBEAT_MS)
        s_hello (self);
    if (self->broker_alive
        && now - self->broker_seen_ms > P2C_HEARTBEAT_MS * P2C_HEARTBEAT_LIVENESS) {
        self->broker_alive = false;
        log_warn ("broker lost id=%s", self->id);
        //  What the broker told us may be stale; it tells us again when back
        zhashx_purge (self->nodes);
    }
}

//  Splits one message, the frame [sender NUL stamp NUL body], into sender
//  and stamp (copied, NUL-terminated) and the body's offset; false for a
//  message of another shape (the caller counts it). Neither a node id (the
//  broker refuses ids with a NUL or of 256 bytes and more) nor a stamp
//  holds a NUL, so the first two NULs split the frame.
static bool
s_parse (zmq_msg_t *parts, size_t nparts, char *sender, char *stamp, size_t *body_at)
{
    if (nparts != 1)
        return false;
    const char *data = (const char *) zmq_msg_data (&parts [0]);
    size_t len = zmq_msg_size (&parts [0]);
    const char *nul1 = (const char *) memchr (data, 0, len);
    const char *nul2 = nul1 ? (const char *) memchr (nul1 + 1, 0, len - (size_t) (nul1 + 1 - data))
                            : NULL;
    size_t slen = nul1 ? (size_t) (nul1 - data) : 0;
    size_t tlen = nul2 ? (size_t) (nul2 - nul1 - 1) : 0;
    if (!nul2 || slen >= P2C_NODE_SENDER_MAX || tlen >= P2C_NODE_STAMP_MAX)
        return false;
    memcpy (sender, data, slen + 1);
    memcpy (stamp, nul1 + 1, tlen + 1);
    *body_at = (size_t) (nul2 + 1 - data);
    return true;
}

//  True when the stamped sender's role may send msg to us; else counted and
//  logged with the key's name (the first few, then one in a thousand, so a
//  flood cannot fill the disk)
static bool
s_authorized (p2c_node_t *self, const char *sender, const char *stamp, P2c2r__Internal *msg)
{
    const char *key;
    size_t klen;
    unsigned from = p2c_auth_stamp_role (stamp, strlen (stamp), &key, &klen);
    //  Only the broker speaks with an empty sender, and it stamps "broker"
    if ((*sender == 0) != (from == P2C_ROLE_BROKER))
        from = 0;
    if (p2c_auth_allowed ((int) msg->msg_case, from, self->role))
        return true;
    self->refused++;
    if (self->refused <= 20 || self->refused % 1000 == 0) {
        log_warn ("refused type=%s from=%s stamp=%s key=%.*s refused=%llu",
                  p2c_msg_internal_name (msg), sender, stamp, (int) klen, key,
                  (unsigned long long) self->refused);
    }
    return false;
}


//  One message off the socket: decoded, authorized, and the broker's own
//  (beats, node events) taken into our view. Returns what the caller gets,
//  or NULL for what it does not (counted, or consumed here).
static P2c2r__Internal *
s_accept (p2c_node_t *self, zmq_msg_t *parts, size_t nparts, char *sender)
{
    char stamp [P2C_NODE_STAMP_MAX];
    size_t at;
    if (!s_parse (parts, nparts, sender, stamp, &at)) {
        self->dropped++;
        return NULL;
    }
    P2c2r__Internal *msg = p2c_msg_unpack_internal (
        (const uint8_t *) zmq_msg_data (&parts [0]) + at, zmq_msg_size (&parts [0]) - at);
    if (!msg) {
        self->dropped++;
        log_debug ("undecodable body from=%s", sender);
        return NULL;
    }
    if (!s_authorized (self, sender, stamp, msg)) {
        p2c_msg_internal_free (&msg);
        return NULL;
    }
    if (*sender == 0 && msg->msg_case == P2C2R__INTERNAL__MSG_BROKER_BEAT) {
        uint64_t epoch = msg->broker_beat->epoch;
        self->broker_seen_ms = p2c_now_ms ();
        if (!self->broker_alive || epoch != self->broker_epoch) {
            if (self->broker_epoch && epoch != self->broker_epoch) {
                log_info ("broker restarted id=%s", self->id);
                zhashx_purge (self->nodes);
            }
            else
                log_info ("broker reached id=%s", self->id);
            self->broker_epoch = epoch;
            self->broker_alive = true;
            s_hello (self);
        }
        p2c_msg_internal_free (&msg);
        return NULL;
    }
    if (*sender == 0 && msg->msg_case == P2C2R__INTERNAL__MSG_NODE_EVENT) {
        P2c2r__NodeEvent *ev = msg->node_event;
        if (ev->up)
            zhashx_update (self->nodes, ev->node_id, ev->service);
        else
            zhashx_delete (self->nodes, ev->node_id);
    }
    //  The caller's handler may ask whose message it holds (p2c_node_stamp)
    memcpy (self->stamp, stamp, sizeof self->stamp);
    return msg;
}

//  What p2c_node_drain and p2c_node_recv hand to p2c_drain
typedef struct {
    p2c_node_t *self;
    p2c_node_fn *fn;            //  the caller's handler (drain), or NULL (recv)
    void *arg;
    P2c2r__Internal *msg;       //  recv: the message kept
    char sender [P2C_NODE_SENDER_MAX];
} s_drain_t;

static void
s_on_message (void *arg, zmq_msg_t *parts, size_t nparts)
{
    s_drain_t *d = (s_drain_t *) arg;
    P2c2r__Internal *msg = s_accept (d->self, parts, nparts, d->sender);
    if (msg && d->fn) {
        d->fn (d->arg, d->sender, msg);
        p2c_msg_internal_free (&msg);
    }
    d->msg = msg;
}

bool
p2c_node_drain (p2c_node_t *self, size_t budget, p2c_node_fn *fn, void *arg)
{
    assert (fn);
    s_drain_t d = { self, fn, arg, NULL, "" };
    return p2c_drain (zsock_resolve (self->sock), budget, s_on_message, &d);
}

P2c2r__Internal *
p2c_node_recv (p2c_node_t *self, char **sender_p)
{
    s_drain_t d = { self, NULL, NULL, NULL, "" };
    //  One message at a time, until one is for the caller or none is left
    while (p2c_drain (zsock_resolve (self->sock), 1, s_on_message, &d))
        if (d.msg) {
            *sender_p = p2c_strdup (d.sender);
            return d.msg;
        }
    return NULL;
}

const char *
p2c_node_stamp (p2c_node_t *self)
{
    return self->stamp;
}

//  Adds the frame [sender NUL stamp NUL body] as the broker writes it
static void
s_test_frame (zmsg_t *out, const char *sender, const char *stamp, const uint8_t *body, size_t len)
{
    size_t slen = strlen (sender), tlen = strlen (stamp);
    uint8_t *buf = (uint8_t *) p2c_malloc (slen + tlen + 2 + len);
    memcpy (buf, sender, slen + 1);
    memcpy (buf + slen + 1, stamp, tlen + 1);
    memcpy (buf + slen + tlen + 2, body, len);
    zmsg_addmem (out, buf, slen + tlen + 2 + len);
    free (buf);
}

void
p2c_node_test (bool verbose)
{
    (void) verbose;
    //  A node without a broker: makes its id, queues its hello, and its
    //  receive returns nothing rather than blocking.
    p2c_node_t *node = p2c_node_new ("tcp://127.0.0.1:1", "ledger", NULL);
    P2C_CHECK (node != NULL);
    P2C_CHECK (node && !strncmp (p2c_node_id (node), "ledger-", 7));
    P2C_CHECK (node && !p2c_node_broker_alive (node));
    char *sender = NULL;
    P2C_CHECK (node && p2c_node_recv (node, &sender) == NULL);
    P2C_CHECK (node && p2c_node_service_count (node, "scheduler") == 0);
    p2c_node_destroy (&node);
    P2C_CHECK (node == NULL);
    p2c_node_destroy (&node);

    //  Against a ROUTER standing in for the broker: hello arrives with our
    //  id, a beat marks the broker alive, an event updates the view, and a
    //  message to a service goes out as [id][dest NUL body].
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    P2C_CHECK (port > 0);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    node = p2c_node_new (endpoint, "gateway", "gw-test");
    zsock_set_rcvtimeo (router, 2000);
    zmsg_t *m = zmsg_recv (router);
    P2C_CHECK (m && zmsg_size (m) == 2);
    char *rid = m ? zmsg_popstr (m) : NULL;
    zframe_t *hello = m ? zmsg_pop (m) : NULL;
    P2C_CHECK (rid && !strcmp (rid, "gw-test"));
    //  a hello goes to the broker itself: an empty destination
    P2C_CHECK (hello && zframe_size (hello) > 1 && zframe_data (hello) [0] == 0);
    zframe_destroy (&hello);
    zmsg_destroy (&m);

    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    P2c2r__BrokerBeat beat = P2C2R__BROKER_BEAT__INIT;
    beat.epoch = 42;
    msg.msg_case = P2C2R__INTERNAL__MSG_BROKER_BEAT;
    msg.broker_beat = &beat;
    size_t len;
    uint8_t *buf = p2c_msg_pack_internal (&msg, 0, &len);
    zmsg_t *out = zmsg_new ();
    zmsg_addstr (out, "gw-test");
    s_test_frame (out, "", "broker", buf, len);
    zmsg_send (&out, router);
    free (buf);

    //  What a gateway's role may not take is refused and counted, whoever
    //  the body claims to be: a settlement ack from a "gateway" key, an
    //  auth reply from a scheduler, a beat that names a node as sender, a
    //  message without a stamp
    struct { const char *sender, *stamp; int msg_case; } wrong [] = {
        { "gw-evil", "gateway:gw-evil", P2C2R__INTERNAL__MSG_AUTH_REPLY },
        { "sch-1", "scheduler:scheduler", P2C2R__INTERNAL__MSG_AUTH_REPLY },
        { "led-1", "ledger:ledger", P2C2R__INTERNAL__MSG_SETTLE_REQUEST },
        { "led-1", "broker", P2C2R__INTERNAL__MSG_NODE_EVENT },
        { "", "ledger:ledger", P2C2R__INTERNAL__MSG_NODE_EVENT },
        { "led-1", "", P2C2R__INTERNAL__MSG_AUTH_REPLY },
    };
    P2c2r__AuthReply wrong_reply = P2C2R__AUTH_REPLY__INIT;
    P2c2r__SettleRequest wrong_settle = P2C2R__SETTLE_REQUEST__INIT;
    P2c2r__NodeEvent wrong_ev = P2C2R__NODE_EVENT__INIT;
    wrong_ev.service = "ledger";
    wrong_ev.node_id = "forged";
    wrong_ev.up = true;
    for (size_t i = 0; i < sizeof wrong / sizeof wrong [0]; i++) {
        P2c2r__Internal w = P2C2R__INTERNAL__INIT;
        w.msg_case = wrong [i].msg_case;
        if (w.msg_case == P2C2R__INTERNAL__MSG_AUTH_REPLY)
            w.auth_reply = &wrong_reply;
        else
        if (w.msg_case == P2C2R__INTERNAL__MSG_SETTLE_REQUEST)
            w.settle_request = &wrong_settle;
        else
            w.node_event = &wrong_ev;
        buf = p2c_msg_pack_internal (&w, 0, &len);
        out = zmsg_new ();
        zmsg_addstr (out, "gw-test");
        s_test_frame (out, wrong [i].sender, wrong [i].stamp, buf, len);
        zmsg_send (&out, router);
        free (buf);
    }
    //  and a frame without a stamp, or in two parts, is dropped
    out = zmsg_new ();
    zmsg_addstr (out, "gw-test");
    zmsg_addmem (out, "led-1\0x", 7);
    zmsg_send (&out, router);
    out = zmsg_new ();
    zmsg_addstr (out, "gw-test");
    zmsg_addmem (out, "led-1\0ledger", 13);
    zmsg_addmem (out, "\0x", 2);
    zmsg_send (&out, router);

    P2c2r__NodeEvent ev = P2C2R__NODE_EVENT__INIT;
    ev.service = "scheduler";
    ev.node_id = "sch-1";
    ev.up = true;
    msg.msg_case = P2C2R__INTERNAL__MSG_NODE_EVENT;
    msg.node_event = &ev;
    buf = p2c_msg_pack_internal (&msg, 0, &len);
    out = zmsg_new ();
    zmsg_addstr (out, "gw-test");
    s_test_frame (out, "", "broker", buf, len);
    zmsg_send (&out, router);
    free (buf);

    zpoller_t *poller = zpoller_new (p2c_node_sock (node), NULL);
    P2c2r__Internal *got = NULL;
    P2C_CHECK (!strcmp (p2c_node_stamp (node), ""));
    for (int i = 0; i < 20 && !got; i++) {
        zpoller_wait (poller, 100);
        got = p2c_node_recv (node, &sender);
    }
    zpoller_destroy (&poller);
    P2C_CHECK (got && got->msg_case == P2C2R__INTERNAL__MSG_NODE_EVENT);
    P2C_CHECK (sender && !strcmp (sender, ""));
    //  the stamp of what was returned, not of the refused ones before it
    P2C_CHECK (!strcmp (p2c_node_stamp (node), "broker"));
    P2C_CHECK (p2c_node_broker_alive (node));
    P2C_CHECK (p2c_node_service_count (node, "scheduler") == 1);
    P2C_CHECK (p2c_node_service_count (node, "ledger") == 0);
    P2C_CHECK (p2c_node_refused (node) == 6);
    P2C_CHECK (p2c_node_dropped (node) == 2);
    p2c_msg_internal_free (&got);
    zstr_free (&sender);

    //  Our answer to the new epoch is a hello
    m = zmsg_recv (router);
    P2C_CHECK (m && zmsg_size (m) == 2);
    zmsg_destroy (&m);

    P2c2r__PeerDown down = P2C2R__PEER_DOWN__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_PEER_DOWN;
    msg.peer_down = &down;
    P2C_CHECK (p2c_node_send (node, "scheduler", &msg) == 0);
    m = zmsg_recv (router);
    P2C_CHECK (m && zmsg_size (m) == 2);
    if (m) {
        zframe_t *f = zmsg_pop (m);
        zframe_destroy (&f);
        f = zmsg_pop (m);
        P2C_CHECK (f && zframe_size (f) > 10 && !memcmp (zframe_data (f), "scheduler\0", 10));
        zframe_destroy (&f);
        zmsg_destroy (&m);
    }
    zstr_free (&rid);
    p2c_node_destroy (&node);
    zsock_destroy (&router);
}
