/*  Subscriptions, a part of the gateway core (gw_core_int.h): the
    dashboard pages (web/) ask once, with {"type":"subscribe"}, and get
    their account's figures pushed every second until they send
    {"type":"subscribe","stop":true} or leave: the ledger's Earnings for
    the session's own account (asked as get_earnings asks, one request in
    flight); Agents, the other peers of that account on this gateway with
    their state (a contributor's page signs in as a peer that runs no task
    type, and is not listed); and to a peer account, its Reputation from
    the scheduler (ReputationRequest, answered at once from its table).
    Nothing names an account: what is pushed is always the
    session's own. Each subscription costs the ledger one read a second,
    so their number is bounded per gateway (max_subscriptions). */
#include "gw_core_int.h"
#include "p2c_log.h"
#include "p2c_test.h"

//  How often a subscriber's figures are pushed
#define GW_SUBSCRIBE_EVERY_MS   1000
//  Peers listed per push at most (a page shows them all; more is abuse)
#define GW_SUBSCRIBE_MAX_AGENTS 256

void
gw_subscribe_handle (gw_core_t *self, gw_session_t *s, P2c2r__Subscribe *sub)
{
    if (s->state != GW_STATE_REGISTERED) {
        gw_core_bad (self, s, "bad_request", NULL,
                     "not_registered: register as a peer or gamer before subscribe");
        return;
    }
    if (sub->stop) {
        gw_subscribe_forget (self, s);
        return;
    }
    if (s->subscribed)
        return;
    if (self->subscriptions >= self->cfg.max_subscriptions) {
        gw_metrics_inc (self->metrics, GW_M_LIMITS, "subscriptions");
        gw_core_send_error (self, s, "unavailable",
                            "too many live pages on this gateway; try again later", NULL);
        return;
    }
    s->subscribed = true;
    s->sub_next_ms = self->now_ms;
    self->subscriptions++;
    log_debug ("subscribed conn=%llu account=%lld", (unsigned long long) s->conn,
               (long long) s->account_id);
}

void
gw_subscribe_forget (gw_core_t *self, gw_session_t *s)
{
    if (!s->subscribed)
        return;
    s->subscribed = false;
    assert (self->subscriptions > 0);
    self->subscriptions--;
}

//  The agents of one account: the registered peers in list of that account
static void
s_push_agents (gw_core_t *self, gw_session_t *s, zlistx_t *peers, int64_t now)
{
    P2c2r__AgentState states [GW_SUBSCRIBE_MAX_AGENTS];
    P2c2r__AgentState *ptrs [GW_SUBSCRIBE_MAX_AGENTS];
    size_t n = 0;
    for (gw_session_t *p = (gw_session_t *) zlistx_first (peers); p && n < GW_SUBSCRIBE_MAX_AGENTS;
         p = (gw_session_t *) zlistx_next (peers)) {
        if (p->account_id != s->account_id || p == s)
            continue;
        P2c2r__AgentState init = P2C2R__AGENT_STATE__INIT;
        states [n] = init;
        states [n].id = p->name ? p->name : "";
        states [n].paused = p->paused;
        states [n].tasks = p->assigned ? (uint32_t) zhashx_size (p->assigned) : 0;
        states [n].connected_s = now > p->connected_ms ? (uint64_t) (now - p->connected_ms) / 1000 : 0;
        ptrs [n] = &states [n];
        n++;
    }
    P2c2r__Agents agents = P2C2R__AGENTS__INIT;
    agents.n_agents = n;
    agents.agents = ptrs;
    P2c2r__ServerMessage m = P2C2R__SERVER_MESSAGE__INIT;
    m.msg_case = P2C2R__SERVER_MESSAGE__MSG_AGENTS;
    m.agents = &agents;
    gw_core_send (self, s, &m);
}

//  The scheduler is asked for a peer account's standing; its answer names
//  the connection (corr) and is pushed as it comes. No scheduler: skipped.
static void
s_ask_reputation (gw_core_t *self, gw_session_t *s)
{
    if (self->io.services (self->io.arg, "scheduler") == 0)
        return;
    P2c2r__ReputationRequest req = P2C2R__REPUTATION_REQUEST__INIT;
    req.corr = s->conn;
    req.account_id = s->account_id;
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_REPUTATION_REQUEST;
    m.reputation_request = &req;
    self->io.send (self->io.arg, "scheduler", &m);
}

void
gw_subscribe_on_reputation (gw_core_t *self, P2c2r__ReputationReply *r)
{
    gw_session_t *s = gw_sessions_lookup (self->sessions, r->corr);
    //  Another account's standing never goes out, whatever was answered
    if (!s || !s->subscribed || s->role != GW_ROLE_PEER || s->account_id != r->account_id
        || !r->reputation) {
        log_debug ("stale reputation reply corr=%llu", (unsigned long long) r->corr);
        return;
    }
    P2c2r__ServerMessage m = P2C2R__SERVER_MESSAGE__INIT;
    m.msg_case = P2C2R__SERVER_MESSAGE__MSG_REPUTATION;
    m.reputation = r->reputation;
    gw_core_send (self, s, &m);
}

//  One pass over the sessions per cron tick with a push due: the due
//  subscribers, and the registered peers (matched to them by account)
void
gw_subscribe_cron (gw_core_t *self, int64_t now)
{
    if (!self->subscriptions)
        return;
    zlistx_t *list = gw_sessions_list (self->sessions);
    zlistx_t *due = zlistx_new ();
    zlistx_t *peers = zlistx_new ();
    for (gw_session_t *s = (gw_session_t *) zlistx_first (list); s;
         s = (gw_session_t *) zlistx_next (list)) {
        if (s->subscribed && s->sub_next_ms <= now && !s->closing)
            zlistx_add_end (due, s);
        if (s->state == GW_STATE_REGISTERED && s->role == GW_ROLE_PEER)
            zlistx_add_end (peers, s);
    }
    for (gw_session_t *s = (gw_session_t *) zlistx_first (due); s;
         s = (gw_session_t *) zlistx_next (due)) {
        s->sub_next_ms = now + GW_SUBSCRIBE_EVERY_MS;
        //  A request still in flight (or no ledger): this second's figures
        //  are skipped, the agents still go out
        gw_earnings_ask (self, s);
        s_push_agents (self, s, peers, now);
        if (s->role == GW_ROLE_PEER)
            s_ask_reputation (self, s);
    }
    zlistx_destroy (&peers);
    zlistx_destroy (&due);
    zlistx_destroy (&list);
}

// ---------------------------------------------------------------------------
//  Self-test: subscriptions through the core, in memory

static void
s_subscribe (gw_fake_t *fake, gw_session_t *s, bool stop, int64_t now)
{
    P2c2r__Subscribe sub = P2C2R__SUBSCRIBE__INIT;
    sub.stop = stop;
    P2c2r__ClientMessage m = P2C2R__CLIENT_MESSAGE__INIT;
    m.msg_case = P2C2R__CLIENT_MESSAGE__MSG_SUBSCRIBE;
    m.subscribe = &sub;
    gw_fake_client (fake, s, &m, now);
}

//  Drops what is queued to s; returns the agents of the last Agents push
//  (-1: none came) and whether an error came
static int
s_drain (gw_session_t *s, bool *error_p, char *first_id, size_t id_size)
{
    int agents = -1;
    P2c2r__ServerMessage *m;
    while ((m = gw_fake_reply (s))) {
        if (m->msg_case == P2C2R__SERVER_MESSAGE__MSG_AGENTS) {
            agents = (int) m->agents->n_agents;
            if (first_id && m->agents->n_agents)
                snprintf (first_id, id_size, "%s", m->agents->agents [0]->id);
        }
        if (m->msg_case == P2C2R__SERVER_MESSAGE__MSG_ERROR && error_p)
            *error_p = true;
        p2c_msg_server_free (&m);
    }
    return agents;
}

//  How many EarningsRequests the fake sent since `from`, for account
static size_t
s_asked (gw_fake_t *fake, size_t from, int64_t account)
{
    size_t n = 0;
    for (size_t i = from; i < fake->sent; i++) {
        P2c2r__Internal *m = gw_fake_msg (fake, i);
        if (m && m->msg_case == P2C2R__INTERNAL__MSG_EARNINGS_REQUEST
            && m->earnings_request->account_id == account)
            n++;
    }
    return n;
}

//  ReputationRequests the fake sent since `from`
static size_t
s_reputation_asked (gw_fake_t *fake, size_t from)
{
    size_t n = 0;
    for (size_t i = from; i < fake->sent; i++) {
        P2c2r__Internal *m = gw_fake_msg (fake, i);
        n += m && m->msg_case == P2C2R__INTERNAL__MSG_REPUTATION_REQUEST;
    }
    return n;
}

//  The scheduler answers for account on connection conn; the Reputation
//  messages then queued to that connection's session
static size_t
s_reputation_reply (gw_fake_t *fake, uint64_t conn, int64_t account)
{
    P2c2r__Reputation rep = P2C2R__REPUTATION__INIT;
    rep.known = true;
    rep.valid = 12.5;
    P2c2r__ReputationReply r = P2C2R__REPUTATION_REPLY__INIT;
    r.corr = conn;
    r.account_id = account;
    r.reputation = &rep;
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_REPUTATION_REPLY;
    m.reputation_reply = &r;
    gw_fake_internal (fake, &m, 4100);
    gw_session_t *s = gw_sessions_lookup (fake->core->sessions, conn);
    size_t n = 0;
    P2c2r__ServerMessage *sm;
    while (s && (sm = gw_fake_reply (s))) {
        n += sm->msg_case == P2C2R__SERVER_MESSAGE__MSG_REPUTATION && sm->reputation->known
             && sm->reputation->valid == 12.5;
        p2c_msg_server_free (&sm);
    }
    return n;
}

void
gw_subscribe_test (bool verbose)
{
    (void) verbose;
    gw_fake_t *fake = gw_fake_new (NULL);
    gw_core_t *core = fake->core;
    bool error = false;

    //  Before registration: refused
    gw_session_t *anon = gw_core_open (core, NULL, "192.0.2.1", 1000);
    s_subscribe (fake, anon, false, 1000);
    P2C_CHECK (s_drain (anon, &error, NULL, 0) == -1 && error && core->subscriptions == 0);

    //  Two peers of account 42, one of account 9; a page of account 42
    gw_session_t *p1 = gw_fake_register (fake, GW_ROLE_PEER, "<b>p1</b>", 42, 1000);
    gw_session_t *p2 = gw_fake_register (fake, GW_ROLE_PEER, "p2", 42, 1000);
    gw_session_t *other = gw_fake_register (fake, GW_ROLE_PEER, "other", 9, 1000);
    gw_session_t *page = gw_fake_register (fake, GW_ROLE_GAMER, "page", 42, 1000);
    p2->paused = true;
    s_drain (page, NULL, NULL, 0);
    size_t sent = fake->sent;
    s_subscribe (fake, page, false, 2000);
    P2C_CHECK (core->subscriptions == 1 && page->subscribed);
    //  The first push at the next tick: the ledger asked for 42 and the
    //  agents of 42 only, names as they came
    gw_core_cron (core, 2000);
    char first [64] = "";
    error = false;
    P2C_CHECK (s_drain (page, &error, first, sizeof first) == 2 && !error);
    P2C_CHECK (!strcmp (first, "<b>p1</b>") || !strcmp (first, "p2"));
    P2C_CHECK (s_asked (fake, sent, 42) == 1 && s_asked (fake, sent, 9) == 0);
    //  The page is a gamer's: no reputation asked
    P2C_CHECK (s_reputation_asked (fake, sent) == 0);
    //  Nothing more within the second; again after it (the ledger answered
    //  nothing, so no second request is in flight at once: skipped)
    gw_core_cron (core, 2500);
    P2C_CHECK (s_drain (page, NULL, NULL, 0) == -1);
    page->earnings_corr = 0;
    gw_core_cron (core, 3000);
    P2C_CHECK (s_drain (page, NULL, NULL, 0) == 2 && s_asked (fake, sent, 42) == 2);
    //  A subscription twice counts once; the bound (2 in the tests) holds
    s_subscribe (fake, page, false, 3000);
    P2C_CHECK (core->subscriptions == 1);
    s_drain (p1, NULL, NULL, 0);
    s_subscribe (fake, p1, false, 3000);
    P2C_CHECK (core->subscriptions == 2);
    error = false;
    s_drain (other, NULL, NULL, 0);
    s_subscribe (fake, other, false, 3000);
    P2C_CHECK (core->subscriptions == 2 && !other->subscribed);
    P2C_CHECK (s_drain (other, &error, NULL, 0) == -1 && error);
    P2C_CHECK (gw_metrics_get (core->metrics, GW_M_LIMITS, "subscriptions") == 1);
    //  A peer's page: its reputation asked of the scheduler, the answer
    //  pushed; an answer for another account or connection is dropped
    sent = fake->sent;
    p1->earnings_corr = 0;
    gw_core_cron (core, 4000);
    P2C_CHECK (s_reputation_asked (fake, sent) == 1);
    s_drain (p1, NULL, NULL, 0);
    P2C_CHECK (s_reputation_reply (fake, p1->conn, 42) == 1);
    P2C_CHECK (s_reputation_reply (fake, p1->conn, 9) == 0);
    P2C_CHECK (s_reputation_reply (fake, other->conn, 9) == 0);
    s_drain (page, NULL, NULL, 0);
    //  stop, and a close, end subscriptions
    s_subscribe (fake, page, true, 3100);
    P2C_CHECK (core->subscriptions == 1 && !page->subscribed);
    gw_core_cron (core, 5000);
    P2C_CHECK (s_drain (page, NULL, NULL, 0) == -1);
    gw_core_closed (core, p1, 5100);
    P2C_CHECK (core->subscriptions == 0);
    gw_fake_destroy (&fake);
}
