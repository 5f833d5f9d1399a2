/*  Registration, a part of the gateway core (gw_core_int.h): a client
    names its role and id, with an API key unless registration is open;
    the ledger accepts or refuses (AuthRequest/AuthReply), an accepted key
    is cached so that the next registrations skip the ledger, and the keys
    of live sessions are asked again periodically: a key no longer
    accepted closes its sessions. */
#include "gw_core_int.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#define GW_RECHECK_CORR     (1ULL << 63)    //  marks AuthRequests that re-check a key

static void s_registered (gw_core_t *self, gw_session_t *s, int64_t account_id);

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
s_auth_fail (gw_core_t *self, gw_session_t *s, const char *code, const char *text)
{
    log_info ("gateway: registration refused conn=%llu role=%s id=%s code=%s",
              (unsigned long long) s->conn, gw_role_name (s->role), s->name ? s->name : "-", code);
    s->state = GW_STATE_NEW;
    s->role = GW_ROLE_NONE;
    free (s->name);
    s->name = NULL;
    p2c_msg_client_free (&s->reg);
    gw_core_send_error (self, s, code, text, NULL);
}

//  A registration that may go on: not registered or registering already,
//  a valid id and key, not shutting down, a key where one is required
static bool
s_register_allowed (gw_core_t *self, gw_session_t *s, gw_role_t role, const char *name,
                    const char *key)
{
    if (s->state == GW_STATE_REGISTERED) {
        gw_core_bad (self, s, "bad_request", NULL, "already registered as %s",
                     gw_role_name (s->role));
        return false;
    }
    if (s->state == GW_STATE_AUTHING) {
        gw_core_bad (self, s, "bad_request", NULL, "registration already in progress");
        return false;
    }
    if (!gw_valid_id (name)) {
        gw_core_bad (self, s, "bad_request", NULL, "%s must be 1 to %d visible ASCII characters",
                     role == GW_ROLE_PEER ? "peer_id" : "gamer_id", GW_MAX_ID);
        return false;
    }
    if (strlen (key) > GW_MAX_API_KEY) {
        gw_core_bad (self, s, "bad_request", NULL, "api_key longer than %d characters",
                     GW_MAX_API_KEY);
        return false;
    }
    if (self->quitting) {
        gw_core_send_error (self, s, "unavailable", "this gateway is shutting down; reconnect",
                            NULL);
        return false;
    }
    if (!*key && !self->cfg.auth_open) {
        //  The ledger would say the same; no need to ask it
        gw_metrics_inc (self->metrics, GW_M_EVENTS, "auth_refused");
        gw_core_bad (self, s, "auth_failed", NULL, "an api_key is required on this server");
        return false;
    }
    return true;
}

void
gw_register_handle (gw_core_t *self, gw_session_t *s, gw_role_t role,
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
    if (!s_register_allowed (self, s, role, name, key))
        return;
    if (*key) {
        char hash [GW_KEY_HASH_LEN + 1];
        gw_authcache_hash (gw_role_name (role), key, hash);
        gw_authentry_t *e = gw_authcache_fresh (self->authcache, hash, self->now_ms);
        if (e) {
            gw_metrics_inc (self->metrics, GW_M_EVENTS, "auth_cache_hit");
            s->role = role;
            s->name = p2c_strdup (name);
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
    s->name = p2c_strdup (name);
    s->state = GW_STATE_AUTHING;
    s->auth_corr = s_next_corr (s);
    s->auth_deadline_ms = self->now_ms + self->cfg.auth_timeout_ms;
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
    if (self->io.send (self->io.arg, "ledger", &m) != 0) {
        s_auth_fail (self, s, "unavailable", "the ledger cannot be reached; try again later");
        return;
    }
    log_debug ("gateway: auth request conn=%llu role=%s id=%s",
               (unsigned long long) s->conn, gw_role_name (role), s->name);
}

//  The ledger's answer to the periodic re-check of a key in use: a key
//  that is no longer accepted closes every session registered with it
static void
s_on_recheck (gw_core_t *self, P2c2r__AuthReply *r)
{
    gw_authentry_t *e = gw_authcache_by_corr (self->authcache, r->corr);
    if (!e) {
        self->counters.auth_stale++;
        return;
    }
    if (r->ok && r->account_id == e->account_id) {
        e->verified_ms = self->now_ms;
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
            gw_core_close (self, s, GW_CLOSE_POLICY, "api_key revoked");
            closed++;
        }
    zlistx_destroy (&list);
    gw_metrics_inc (self->metrics, GW_M_EVENTS, "auth_revoked");
    log_info ("gateway: api key no longer accepted role=%s sessions_closed=%zu", e->role, closed);
    gw_authcache_remove (self->authcache, hash);
}

//  Sends the re-checks that are due (from the slow cron)
void
gw_register_rechecks (gw_core_t *self, int64_t now)
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
        if (self->io.send (self->io.arg, "ledger", &m) == 0)
            gw_authcache_asked (self->authcache, e, corr, now);
    }
    zlistx_destroy (&due);
}

void
gw_register_on_reply (gw_core_t *self, P2c2r__AuthReply *r)
{
    if (r->corr & GW_RECHECK_CORR) {
        s_on_recheck (self, r);
        return;
    }
    gw_session_t *s = gw_sessions_lookup (self->sessions, r->corr >> 16);
    if (!s || s->state != GW_STATE_AUTHING || s->auth_corr != r->corr) {
        //  The client left, or the attempt timed out already
        self->counters.auth_stale++;
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
                                              s->name, key, r->account_id, self->now_ms);
        e->users++;
        snprintf (s->key_hash, sizeof s->key_hash, "%s", hash);
    }
    s_registered (self, s, r->account_id);
}

//  The registration succeeded (from the ledger, or a cached key)
static void
s_registered (gw_core_t *self, gw_session_t *s, int64_t account_id)
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
    gw_core_send (self, s, &m);
    if (s->role == GW_ROLE_PEER)
        gw_tasks_peer_up (self, s);
}

//  Registrations the ledger has not answered in time
void
gw_register_timeouts (gw_core_t *self, int64_t now)
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
//  Self-test: registration through the core, in memory

static bool
s_error_is (gw_session_t *s, const char *code)
{
    P2c2r__ServerMessage *m = gw_fake_reply (s);
    bool ok = m && m->msg_case == P2C2R__SERVER_MESSAGE__MSG_ERROR && !strcmp (m->error->code, code);
    p2c_msg_server_free (&m);
    return ok;
}

static void
s_register (gw_fake_t *fake, gw_session_t *s, gw_role_t role, const char *name, const char *key,
            int64_t now)
{
    P2c2r__RegisterPeer rp = P2C2R__REGISTER_PEER__INIT;
    P2c2r__RegisterGamer rg = P2C2R__REGISTER_GAMER__INIT;
    P2c2r__ClientMessage m = P2C2R__CLIENT_MESSAGE__INIT;
    if (role == GW_ROLE_PEER) {
        rp.peer_id = (char *) name;
        rp.api_key = (char *) key;
        m.msg_case = P2C2R__CLIENT_MESSAGE__MSG_REGISTER_PEER;
        m.register_peer = &rp;
    }
    else {
        rg.gamer_id = (char *) name;
        rg.api_key = (char *) key;
        m.msg_case = P2C2R__CLIENT_MESSAGE__MSG_REGISTER_GAMER;
        m.register_gamer = &rg;
    }
    gw_fake_client (fake, s, &m, now);
}

//  The ledger's answer to the last AuthRequest sent
static void
s_answer (gw_fake_t *fake, bool ok, const char *code, int64_t account, int64_t now)
{
    P2c2r__Internal *req = gw_fake_msg (fake, fake->sent - 1);
    assert (req && req->msg_case == P2C2R__INTERNAL__MSG_AUTH_REQUEST);
    P2c2r__AuthReply ar = P2C2R__AUTH_REPLY__INIT;
    ar.corr = req->auth_request->corr;
    ar.ok = ok;
    ar.code = (char *) code;
    ar.account_id = account;
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_AUTH_REPLY;
    m.auth_reply = &ar;
    gw_fake_internal (fake, &m, now);
}

static void
s_test_open (void)
{
    gw_fake_t *fake = gw_fake_new (NULL);
    gw_core_t *core = fake->core;
    gw_session_t *s = gw_core_open (core, NULL, "192.0.2.1", 1000);
    //  Refused at once, nothing asked of the ledger: a bad id, a long key
    s_register (fake, s, GW_ROLE_GAMER, "has space", "", 1000);
    P2C_CHECK (s_error_is (s, "bad_request"));
    char key [GW_MAX_API_KEY + 2];
    memset (key, 'k', sizeof key);
    key [GW_MAX_API_KEY + 1] = 0;
    s_register (fake, s, GW_ROLE_GAMER, "g1", key, 1000);
    P2C_CHECK (s_error_is (s, "bad_request"));
    P2C_CHECK (fake->sent == 0 && s->state == GW_STATE_NEW);

    //  Open registration: the ledger is asked (open, no key) and says yes
    s_register (fake, s, GW_ROLE_GAMER, "g1", "", 1000);
    P2C_CHECK (s->state == GW_STATE_AUTHING && fake->sent == 1);
    P2c2r__Internal *req = gw_fake_msg (fake, 0);
    P2C_CHECK (!strcmp (fake->dest [0], "ledger"));
    P2C_CHECK (req->msg_case == P2C2R__INTERNAL__MSG_AUTH_REQUEST);
    P2C_CHECK (!strcmp (req->auth_request->role, "gamer") && !strcmp (req->auth_request->name, "g1"));
    P2C_CHECK (req->auth_request->open && !*req->auth_request->api_key);
    P2C_CHECK (req->auth_request->corr >> 16 == s->conn);
    //  While it is asked: a second registration is refused
    s_register (fake, s, GW_ROLE_GAMER, "g1", "", 1100);
    P2C_CHECK (s_error_is (s, "bad_request"));
    //  A reply for another attempt is stale and changes nothing
    P2c2r__AuthReply ar = P2C2R__AUTH_REPLY__INIT;
    ar.corr = req->auth_request->corr + 1;
    ar.ok = true;
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_AUTH_REPLY;
    m.auth_reply = &ar;
    gw_fake_internal (fake, &m, 1100);
    P2C_CHECK (core->counters.auth_stale == 1 && s->state == GW_STATE_AUTHING);
    s_answer (fake, true, "", 77, 1200);
    P2C_CHECK (s->state == GW_STATE_REGISTERED && s->account_id == 77 && s->role == GW_ROLE_GAMER);
    P2c2r__ServerMessage *r = gw_fake_reply (s);
    P2C_CHECK (r && r->msg_case == P2C2R__SERVER_MESSAGE__MSG_REGISTERED
               && !strcmp (r->registered->role, "gamer") && !strcmp (r->registered->id, "g1"));
    p2c_msg_server_free (&r);
    P2C_CHECK (fake->sent == 1);       //  a gamer is nobody's business but the ledger's
    s_register (fake, s, GW_ROLE_PEER, "p1", "", 1300);
    P2C_CHECK (s_error_is (s, "bad_request") && s->role == GW_ROLE_GAMER);

    //  A peer: the scheduler hears of it with its session and account
    gw_session_t *p = gw_core_open (core, NULL, "192.0.2.2", 1000);
    s_register (fake, p, GW_ROLE_PEER, "p1", "", 1000);
    s_answer (fake, true, "", 88, 1000);
    P2C_CHECK (p->state == GW_STATE_REGISTERED && fake->sent == 3);
    P2c2r__Internal *up = gw_fake_msg (fake, 2);
    P2C_CHECK (!strcmp (fake->dest [2], "scheduler") && up->msg_case == P2C2R__INTERNAL__MSG_PEER_UP);
    P2C_CHECK (!strcmp (up->peer_up->session->gateway, "gateway-test")
               && up->peer_up->session->conn == p->conn && up->peer_up->account_id == 88
               && !strcmp (up->peer_up->peer_id, "p1") && !up->peer_up->paused);
    //  Its owner pauses it: the heartbeat says so, the scheduler hears it
    //  once as a refreshed PeerUp; the same state again sends nothing
    P2c2r__Heartbeat hb = P2C2R__HEARTBEAT__INIT;
    hb.paused = true;
    P2c2r__ClientMessage beat = P2C2R__CLIENT_MESSAGE__INIT;
    beat.msg_case = P2C2R__CLIENT_MESSAGE__MSG_HEARTBEAT;
    beat.heartbeat = &hb;
    gw_fake_client (fake, p, &beat, 2000);
    P2C_CHECK (fake->sent == 4 && p->paused);
    up = gw_fake_msg (fake, 3);
    P2C_CHECK (up->msg_case == P2C2R__INTERNAL__MSG_PEER_UP && up->peer_up->paused
               && up->peer_up->session->conn == p->conn);
    gw_fake_client (fake, p, &beat, 2100);
    P2C_CHECK (fake->sent == 4);
    hb.paused = false;
    gw_fake_client (fake, p, &beat, 2200);
    P2C_CHECK (fake->sent == 5 && !p->paused && !gw_fake_msg (fake, 4)->peer_up->paused);
    gw_fake_destroy (&fake);
}

static void
s_test_refused (void)
{
    gw_fake_t *fake = gw_fake_new (NULL);
    gw_core_t *core = fake->core;
    //  Refused by the ledger: an error with its code; the client may try again
    gw_session_t *q = gw_core_open (core, NULL, "192.0.2.3", 1000);
    s_register (fake, q, GW_ROLE_PEER, "p2", "", 1000);
    s_answer (fake, false, "auth_failed", 0, 1000);
    P2C_CHECK (s_error_is (q, "auth_failed"));
    P2C_CHECK (q->state == GW_STATE_NEW && q->role == GW_ROLE_NONE && !q->name);
    //  No answer in time: unavailable
    s_register (fake, q, GW_ROLE_PEER, "p2", "", 2000);
    gw_core_cron (core, 2000 + 1999);
    P2C_CHECK (q->state == GW_STATE_AUTHING);
    gw_core_cron (core, 2000 + 2000);
    P2C_CHECK (s_error_is (q, "unavailable") && q->state == GW_STATE_NEW);
    //  ... and the late answer is stale
    s_answer (fake, true, "", 5, 4100);
    P2C_CHECK (q->state == GW_STATE_NEW && core->counters.auth_stale == 1);
    //  The ledger cannot be reached: unavailable at once
    fake->refuse = true;
    s_register (fake, q, GW_ROLE_PEER, "p2", "", 4200);
    P2C_CHECK (s_error_is (q, "unavailable") && q->state == GW_STATE_NEW);
    fake->refuse = false;
    //  Shutting down: no registrations
    gw_core_quit (core, 10000);
    s_register (fake, q, GW_ROLE_PEER, "p2", "", 4300);
    P2C_CHECK (s_error_is (q, "unavailable") && q->state == GW_STATE_NEW);
    gw_fake_destroy (&fake);
}

static void
s_test_apikey (void)
{
    gw_core_config_t config = gw_fake_config ();
    config.auth_open = false;
    gw_fake_t *fake = gw_fake_new (&config);
    gw_core_t *core = fake->core;
    //  Without a key: refused without asking
    gw_session_t *a = gw_core_open (core, NULL, "192.0.2.1", 1000);
    s_register (fake, a, GW_ROLE_GAMER, "g1", "", 1000);
    P2C_CHECK (s_error_is (a, "auth_failed") && fake->sent == 0);
    //  With one: the ledger is asked, with the key; its yes is cached
    s_register (fake, a, GW_ROLE_GAMER, "g1", "secret-1", 1000);
    P2c2r__Internal *req = gw_fake_msg (fake, 0);
    P2C_CHECK (req && !req->auth_request->open && !strcmp (req->auth_request->api_key, "secret-1"));
    s_answer (fake, true, "", 31, 1000);
    P2C_CHECK (a->state == GW_STATE_REGISTERED && a->account_id == 31);
    P2C_CHECK (gw_core_auth_keys (core) == 1);
    //  A second session with the same key skips the ledger
    gw_session_t *b = gw_core_open (core, NULL, "192.0.2.2", 1500);
    s_register (fake, b, GW_ROLE_GAMER, "g1", "secret-1", 1500);
    P2C_CHECK (b->state == GW_STATE_REGISTERED && b->account_id == 31 && fake->sent == 1);
    P2C_CHECK (gw_metrics_get (core->metrics, GW_M_EVENTS, "auth_cache_hit") == 1);
    //  ... but the same key for another role is another key
    gw_session_t *c = gw_core_open (core, NULL, "192.0.2.3", 1500);
    s_register (fake, c, GW_ROLE_PEER, "g1", "secret-1", 1500);
    P2C_CHECK (c->state == GW_STATE_AUTHING && fake->sent == 2);

    //  The key in use is asked again after auth_recheck_ms; still good:
    //  nothing changes
    gw_core_cron (core, 7000);
    P2C_CHECK (fake->sent == 3);
    req = gw_fake_msg (fake, 2);
    P2C_CHECK (req && req->msg_case == P2C2R__INTERNAL__MSG_AUTH_REQUEST
               && !strcmp (req->auth_request->api_key, "secret-1")
               && (req->auth_request->corr >> 63) == 1);
    s_answer (fake, true, "", 31, 7000);
    P2C_CHECK (!a->closing && !b->closing);
    //  Unavailable: the ledger cannot tell, nothing changes either
    gw_core_cron (core, 13000);
    P2C_CHECK (fake->sent == 4);
    s_answer (fake, false, "unavailable", 0, 13000);
    P2C_CHECK (!a->closing && !b->closing);
    //  Revoked: every session of the key is closed
    gw_core_cron (core, 19000);
    P2C_CHECK (fake->sent == 5);
    s_answer (fake, false, "auth_failed", 0, 19000);
    P2C_CHECK (a->closing && b->closing && a->close_code == GW_CLOSE_POLICY
               && !strcmp (a->close_reason, "api_key revoked"));
    P2C_CHECK (gw_core_auth_keys (core) == 0);
    P2C_CHECK (gw_metrics_get (core->metrics, GW_M_EVENTS, "auth_revoked") == 1);
    gw_fake_destroy (&fake);
}

void
gw_register_test (bool verbose)
{
    (void) verbose;
    s_test_open ();
    s_test_refused ();
    s_test_apikey ();
}
