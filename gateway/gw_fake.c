/*  The fake glue of the gateway core's self-tests (gw_core_int.h): it
    keeps what the core sends to the broker, answers the services count,
    counts wake-ups, and drives the core with packed client and internal
    messages as the real glue would. */
#include "gw_core_int.h"


static int
s_fake_send (void *arg, const char *dest, const P2c2r__Internal *msg)
{
    gw_fake_t *self = (gw_fake_t *) arg;
    if (self->refuse)
        return -1;
    //  Kept as the broker would carry it: packed, then unpacked
    size_t i = self->sent++ % GW_FAKE_MAX, len = 0;
    p2c_msg_internal_free (&self->msgs [i]);
    uint8_t *buf = p2c_msg_pack_internal (msg, 0, &len);
    assert (buf);
    if (self->watch && memmem (buf, len, self->watch, strlen (self->watch)))
        self->watch_hits++;
    self->msgs [i] = p2c_msg_unpack_internal (buf, len);
    free (buf);
    snprintf (self->dest [i], sizeof self->dest [i], "%s", dest);
    return 0;
}

static void
s_fake_wake (void *arg, gw_session_t *s, gw_wake_t what)
{
    gw_fake_t *self = (gw_fake_t *) arg;
    (void) s;
    self->wakes++;
    if (what == GW_WAKE_CUT)
        self->cuts++;
}

static size_t
s_fake_services (void *arg, const char *service)
{
    gw_fake_t *self = (gw_fake_t *) arg;
    return !strcmp (service, "scheduler") ? self->schedulers
         : !strcmp (service, "ledger") ? self->ledgers : 0;
}

gw_core_config_t
gw_fake_config (void)
{
    gw_core_config_t c;
    memset (&c, 0, sizeof c);
    c.node_id = "gateway-test";
    c.region = "eu";
    c.auth_open = true;
    c.max_frame = 4096;
    c.default_deadline_ms = 1000;
    c.max_deadline_ms = 5000;
    c.guard_grace_ms = 500;
    c.auth_timeout_ms = 2000;
    c.auth_cache_ms = 30000;
    c.auth_recheck_ms = 5000;
    c.register_timeout_ms = 10000;
    c.idle_ms = 60000;
    c.send_queue = 16;
    c.send_queue_bytes = 1 << 20;
    c.max_bad_frames = 3;
    c.rate_msgs = 1000;
    c.rate_burst = 1000;
    c.max_conns_per_ip = 2;
    c.connect_rate = 1000;
    c.connect_burst = 1000;
    c.max_subscriptions = 2;
    c.pre = 16;                 //  spare bytes in front, as LWS_PRE
    return c;
}

gw_fake_t *
gw_fake_new (const gw_core_config_t *config)
{
    gw_fake_t *self = (gw_fake_t *) zmalloc (sizeof (gw_fake_t));
    self->schedulers = 1;
    self->ledgers = 1;
    gw_core_io_t io = { s_fake_send, s_fake_wake, s_fake_services, self };
    gw_core_config_t defaults = gw_fake_config ();
    self->core = gw_core_new (config ? config : &defaults, &io);
    assert (self->core);
    return self;
}

void
gw_fake_destroy (gw_fake_t **self_p)
{
    gw_fake_t *self = *self_p;
    if (!self)
        return;
    gw_core_destroy (&self->core);
    for (size_t i = 0; i < GW_FAKE_MAX; i++)
        p2c_msg_internal_free (&self->msgs [i]);
    free (self);
    *self_p = NULL;
}

P2c2r__Internal *
gw_fake_msg (gw_fake_t *self, size_t n)
{
    if (n >= self->sent || self->sent - n > GW_FAKE_MAX)
        return NULL;
    return self->msgs [n % GW_FAKE_MAX];
}

void
gw_fake_client (gw_fake_t *self, gw_session_t *s, const P2c2r__ClientMessage *m, int64_t now)
{
    size_t len = 0;
    uint8_t *buf = p2c_msg_pack_client (m, 0, &len);
    assert (buf);
    gw_core_message (self->core, s, buf, len, true, now);
    free (buf);
}

void
gw_fake_internal (gw_fake_t *self, const P2c2r__Internal *m, int64_t now)
{
    size_t len = 0;
    uint8_t *buf = p2c_msg_pack_internal (m, 0, &len);
    assert (buf);
    P2c2r__Internal *msg = p2c_msg_unpack_internal (buf, len);
    free (buf);
    assert (msg);
    gw_core_handle (self->core, "", msg, now);
    p2c_msg_internal_free (&msg);
}

P2c2r__ServerMessage *
gw_fake_reply (gw_session_t *s)
{
    gw_outframe_t *f = gw_session_pop (s);
    if (!f)
        return NULL;
    P2c2r__ServerMessage *m = f->binary
                            ? p2c_msg_unpack_server (f->buf + f->pre, f->len, 1 << 20) : NULL;
    gw_outframe_destroy (&f);
    return m;
}

gw_session_t *
gw_fake_register (gw_fake_t *self, gw_role_t role, const char *name, int64_t account,
                  int64_t now)
{
    char ip [32];
    snprintf (ip, sizeof ip, "10.1.%zu.%zu", (self->sent / 250) % 250, self->sent % 250);
    gw_session_t *s = gw_core_open (self->core, NULL, ip, now);
    assert (s && !s->closing);
    P2c2r__RegisterPeer rp = P2C2R__REGISTER_PEER__INIT;
    P2c2r__RegisterGamer rg = P2C2R__REGISTER_GAMER__INIT;
    P2c2r__ClientMessage m = P2C2R__CLIENT_MESSAGE__INIT;
    if (role == GW_ROLE_PEER) {
        rp.peer_id = (char *) name;
        m.msg_case = P2C2R__CLIENT_MESSAGE__MSG_REGISTER_PEER;
        m.register_peer = &rp;
    }
    else {
        rg.gamer_id = (char *) name;
        m.msg_case = P2C2R__CLIENT_MESSAGE__MSG_REGISTER_GAMER;
        m.register_gamer = &rg;
    }
    gw_fake_client (self, s, &m, now);
    P2c2r__Internal *req = gw_fake_msg (self, self->sent - 1);
    assert (req && req->msg_case == P2C2R__INTERNAL__MSG_AUTH_REQUEST);
    P2c2r__AuthReply ar = P2C2R__AUTH_REPLY__INIT;
    ar.corr = req->auth_request->corr;
    ar.ok = true;
    ar.account_id = account;
    P2c2r__Internal reply = P2C2R__INTERNAL__INIT;
    reply.msg_case = P2C2R__INTERNAL__MSG_AUTH_REPLY;
    reply.auth_reply = &ar;
    gw_fake_internal (self, &reply, now);
    assert (s->state == GW_STATE_REGISTERED);
    P2c2r__ServerMessage *r = gw_fake_reply (s);
    assert (r && r->msg_case == P2C2R__SERVER_MESSAGE__MSG_REGISTERED);
    p2c_msg_server_free (&r);
    return s;
}
