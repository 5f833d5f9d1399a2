/*  Registration, a part of the gateway core (gw_core_int.h): a client
    names its role and id, with an API key unless registration is open;
    the ledger accepts or refuses (AuthRequest/AuthReply), an accepted key
    is cached so that the next registrations skip the ledger, and the keys
    of live sessions are asked again periodically, by account: a key no
    longer accepted closes its sessions. The key itself is hashed as soon
    as it is read and wiped: only its SHA-256 is kept or sent. */
#include "gw_core_int.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#define GW_RECHECK_CORR     (1ULL << 63)    //  marks AuthRequests that re-check a key

static void s_registered (gw_core_t *self, gw_session_t *s, int64_t account_id,
                          const char *owner);

//  Overwrites a key the client sent, where the decoded message holds it
static void
s_wipe (char *text)
{
    if (text && *text)
        explicit_bzero (text, strlen (text));
}

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
    log_info ("registration refused conn=%llu role=%s id=%s code=%s",
              (unsigned long long) s->conn, gw_role_name (s->role), s->name ? s->name : "-", code);
    s->state = GW_STATE_NEW;
    s->role = GW_ROLE_NONE;
    free (s->name);
    s->name = NULL;
    explicit_bzero (s->auth_key_hash, sizeof s->auth_key_hash);
    p2c_msg_client_free (&s->reg);
    gw_core_send_error (self, s, code, text, NULL);
}

//  A registration that may go on: not registered or registering already,
//  a valid id and key, not shutting down, a key where one is required
static bool
s_register_allowed (gw_core_t *self, gw_session_t *s, gw_role_t role, const char *name,
                    size_t key_len)
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
    if (key_len > GW_MAX_API_KEY) {
        gw_core_bad (self, s, "bad_request", NULL, "api_key longer than %d characters",
                     GW_MAX_API_KEY);
        return false;
    }
    if (self->quitting) {
        gw_core_send_error (self, s, "unavailable", "this gateway is shutting down; reconnect",
                            NULL);
        return false;
    }
    if (!key_len && !self->cfg.auth_open) {
        //  The ledger would say the same; no need to ask it
        gw_metrics_inc (self->metrics, GW_M_EVENTS, "auth_refused");
        gw_core_bad (self, s, "auth_failed", NULL, "an api_key is required on this server");
        return false;
    }
    return true;
}

void
gw_register_wipe (gw_session_t *s, P2c2r__ClientMessage *msg)
{
    if (msg && msg->msg_case == P2C2R__CLIENT_MESSAGE__MSG_REGISTER_PEER && msg->register_peer)
        s_wipe (msg->register_peer->api_key);
    if (msg && msg->msg_case == P2C2R__CLIENT_MESSAGE__MSG_REGISTER_GAMER && msg->register_gamer)
        s_wipe (msg->register_gamer->api_key);
    s->wipe_rx = true;
}

void
gw_register_handle (gw_core_t *self, gw_session_t *s, gw_role_t role,
                    P2c2r__ClientMessage **msg_p)
{
    P2c2r__ClientMessage *msg = *msg_p;
    const char *name;
    char *key;
    if (role == GW_ROLE_PEER) {
        name = msg->register_peer->peer_id;
        key = msg->register_peer->api_key;
    }
    else {
        name = msg->register_gamer->gamer_id;
        key = msg->register_gamer->api_key;
    }
    //  The key is hashed and wiped before anything else: from here on only
    //  its SHA-256 (the ledger's stored hash) exists in this process
    char key_hash [GW_KEY_HASH_LEN + 1] = "";
    size_t key_len = strlen (key);
    if (key_len > 0 && key_len <= GW_MAX_API_KEY)
        gw_authcache_key_hash (key, key_hash);
    s_wipe (key);
    s->wipe_rx = true;
    if (key_len > 0 && key_len <= GW_MAX_API_KEY && !*key_hash) {
        gw_core_send_error (self, s, "unavailable", "the key cannot be checked now", NULL);
        return;
    }
    if (!s_register_allowed (self, s, role, name, key_len))
        return;
    if (*key_hash) {
        char hash [GW_KEY_HASH_LEN + 1];
        gw_authcache_hash (gw_role_name (role), key_hash, hash);
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
            s_registered (self, s, e->account_id, e->owner);
            return;
        }
        gw_metrics_inc (self->metrics, GW_M_EVENTS, "auth_cache_miss");
    }
    s->role = role;
    s->name = p2c_strdup (name);
    s->state = GW_STATE_AUTHING;
    s->auth_corr = s_next_corr (s);
    s->auth_deadline_ms = self->now_ms + self->cfg.auth_timeout_ms;
    snprintf (s->auth_key_hash, sizeof s->auth_key_hash, "%s", key_hash);
    //  Kept for the capabilities, sent again with every PeerUp
    p2c_msg_client_free (&s->reg);
    s->reg = msg;
    *msg_p = NULL;

    P2c2r__AuthRequest req = P2C2R__AUTH_REQUEST__INIT;
    req.corr = s->auth_corr;
    req.role = (char *) gw_role_name (role);
    req.name = s->name;
    req.key_hash = s->auth_key_hash;
    req.open = self->cfg.auth_open;
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_AUTH_REQUEST;
    m.auth_request = &req;
    if (self->io.send (self->io.arg, "ledger", &m) != 0) {
        s_auth_fail (self, s, "unavailable", "the ledger cannot be reached; try again later");
        return;
    }
    log_debug ("auth request conn=%llu role=%s id=%s",
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
        //  An owner linked since applies to the next registrations; the
        //  live sessions keep the one they registered with
        free (e->owner);
        e->owner = p2c_strdup (r->owner ? r->owner : "");
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
    log_info ("api key no longer accepted role=%s sessions_closed=%zu", e->role, closed);
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
        req.key_hash = e->key_hash;
        req.account_id = e->account_id;
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
        log_debug ("stale auth reply corr=%llu", (unsigned long long) r->corr);
        return;
    }
    if (!r->ok) {
        s_auth_fail (self, s, *r->code ? r->code : "auth_failed",
                     *r->message ? r->message : "registration refused");
        return;
    }
    if (*s->auth_key_hash) {
        char hash [GW_KEY_HASH_LEN + 1];
        gw_authcache_hash (gw_role_name (s->role), s->auth_key_hash, hash);
        gw_authentry_t *e = gw_authcache_put (self->authcache, hash, gw_role_name (s->role),
                                              s->name, s->auth_key_hash, r->account_id,
                                              r->owner, self->now_ms);
        e->users++;
        snprintf (s->key_hash, sizeof s->key_hash, "%s", hash);
        explicit_bzero (s->auth_key_hash, sizeof s->auth_key_hash);
    }
    s_registered (self, s, r->account_id, r->owner);
}

//  The registration succeeded (from the ledger, or a cached key)
static void
s_registered (gw_core_t *self, gw_session_t *s, int64_t account_id, const char *owner)
{
    s->state = GW_STATE_REGISTERED;
    s->account_id = account_id;
    free (s->owner);
    s->owner = owner && *owner ? p2c_strdup (owner) : NULL;
    log_info ("registered conn=%llu role=%s id=%s account=%lld",
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
    P2C_CHECK (req->auth_request->open && !*req->auth_request->key_hash);
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
    //  An adapted queue: new slots go to the scheduler once, with the rest
    //  of the registration; the registered number again, or none, is no news
    P2C_CHECK (gw_fake_msg (fake, 4)->peer_up->capabilities->slots == 0);
    hb.slots = 0;
    gw_fake_client (fake, p, &beat, 2300);
    P2C_CHECK (fake->sent == 5);
    hb.slots = 32;
    gw_fake_client (fake, p, &beat, 2400);
    P2C_CHECK (fake->sent == 6 && p->slots == 32);
    up = gw_fake_msg (fake, 5);
    P2C_CHECK (up->msg_case == P2C2R__INTERNAL__MSG_PEER_UP && !up->peer_up->paused
               && up->peer_up->capabilities->slots == 32 && !strcmp (up->peer_up->peer_id, "p1"));
    gw_fake_client (fake, p, &beat, 2500);
    P2C_CHECK (fake->sent == 6);
    //  a pause keeps the slots given
    hb.slots = 0;
    hb.paused = true;
    gw_fake_client (fake, p, &beat, 2600);
    P2C_CHECK (fake->sent == 7 && gw_fake_msg (fake, 6)->peer_up->capabilities->slots == 32
               && gw_fake_msg (fake, 6)->peer_up->paused);
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
    //  With one: the ledger is asked with the key's SHA-256, never the key
    //  (no byte of any message to the broker holds it); its yes is cached
    fake->watch = "secret-1";
    s_register (fake, a, GW_ROLE_GAMER, "g1", "secret-1", 1000);
    P2c2r__Internal *req = gw_fake_msg (fake, 0);
    //  sha256sum of "secret-1"
    const char *h1 = "f7e7c36e458e80e6b6a2c67d0a9ec09bd718dadd7bfa8d6bf6e7ad526e46c2f7";
    P2C_CHECK (req && !req->auth_request->open && !strcmp (req->auth_request->key_hash, h1)
               && req->auth_request->account_id == 0);
    P2C_CHECK (fake->watch_hits == 0 && !strstr (a->auth_key_hash, "secret"));
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
               && !strcmp (req->auth_request->key_hash, h1) && req->auth_request->account_id == 31
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
    P2C_CHECK (fake->watch_hits == 0);
    gw_fake_destroy (&fake);
}

//  The key leaves no copy behind: not in the frame buffer the client's
//  bytes were reassembled in, not in the kept registration, in either
//  dialect; the owner the ledger names goes with the peer to the scheduler
static void
s_test_key_wiped (void)
{
    gw_core_config_t config = gw_fake_config ();
    config.auth_open = false;
    gw_fake_t *fake = gw_fake_new (&config);
    gw_core_t *core = fake->core;
    fake->watch = "topsecret-9";
    char json [] = "{\"type\":\"register_peer\",\"peer_id\":\"p9\",\"api_key\":\"topsecret-9\"}";
    gw_session_t *j = gw_core_open (core, NULL, "192.0.2.9", 1000);
    gw_core_receive (core, j, json, strlen (json), 0, true, false, 1000);
    P2C_CHECK (j->state == GW_STATE_AUTHING && fake->sent == 1 && fake->watch_hits == 0);
    P2C_CHECK (!memmem (p2c_frame_data (j->rx), p2c_frame_size (j->rx), "topsecret", 9));
    P2C_CHECK (j->reg && j->reg->register_peer && !strstr (j->reg->register_peer->api_key, "top"));
    //  The ledger says yes, with the account's owner
    P2c2r__AuthReply ar = P2C2R__AUTH_REPLY__INIT;
    ar.corr = gw_fake_msg (fake, 0)->auth_request->corr;
    ar.ok = true;
    ar.account_id = 12;
    ar.owner = "alice";
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_AUTH_REPLY;
    m.auth_reply = &ar;
    gw_fake_internal (fake, &m, 1000);
    P2C_CHECK (j->state == GW_STATE_REGISTERED && j->owner && !strcmp (j->owner, "alice"));
    P2c2r__Internal *up = gw_fake_msg (fake, 1);
    P2C_CHECK (up && up->msg_case == P2C2R__INTERNAL__MSG_PEER_UP
               && !strcmp (up->peer_up->owner, "alice"));

    //  The binary dialect, through the reassembler too; a cached key
    //  gives the owner it was cached with
    P2c2r__RegisterPeer rp = P2C2R__REGISTER_PEER__INIT;
    rp.peer_id = "p10";
    rp.api_key = "topsecret-9";
    P2c2r__ClientMessage cm = P2C2R__CLIENT_MESSAGE__INIT;
    cm.msg_case = P2C2R__CLIENT_MESSAGE__MSG_REGISTER_PEER;
    cm.register_peer = &rp;
    size_t len = 0;
    uint8_t *buf = p2c_msg_pack_client (&cm, 0, &len);
    gw_session_t *b = gw_core_open (core, NULL, "192.0.2.10", 1000);
    gw_core_receive (core, b, buf, len, 0, true, true, 1000);
    free (buf);
    P2C_CHECK (b->state == GW_STATE_REGISTERED && b->account_id == 12 && fake->sent == 3);
    P2C_CHECK (!memmem (p2c_frame_data (b->rx), p2c_frame_size (b->rx), "topsecret", 9));
    P2C_CHECK (b->owner && !strcmp (b->owner, "alice") && fake->watch_hits == 0);
    //  A malformed registration holding a key is not left in the buffer either
    char broken [] = "{\"type\":\"register_gamer\",\"api_key\":\"topsecret-9\"";
    gw_session_t *x = gw_core_open (core, NULL, "192.0.2.11", 1000);
    gw_core_receive (core, x, broken, strlen (broken), 0, true, false, 1000);
    P2C_CHECK (x->state == GW_STATE_NEW && fake->sent == 3);
    P2C_CHECK (!memmem (p2c_frame_data (x->rx), p2c_frame_size (x->rx), "topsecret", 9));
    gw_fake_destroy (&fake);
}

void
gw_register_test (bool verbose)
{
    (void) verbose;
    s_test_open ();
    s_test_refused ();
    s_test_apikey ();
    s_test_key_wiped ();
}
