/*  get_earnings, a part of the gateway core (gw_core_int.h): a registered
    client, peer or gamer, reads its own account's figures. The request
    names no account: the gateway asks the ledger (EarningsRequest) for
    the session's account and role as registration set them, so a client
    can never read another's. At most one request per connection every
    GW_EARNINGS_EVERY_MS (the ledger sums the account's history for each),
    one in flight; the ledger's silence past auth_timeout_ms is answered
    unavailable. */
#include "gw_core_int.h"
#include "p2c_log.h"
#include "p2c_test.h"

//  Often enough for a status page or an agent's `status`; each answer
//  costs the ledger a few index scans over the account's own rows
#define GW_EARNINGS_EVERY_MS    10000

//  The correlation number names the connection and the attempt, as
//  registration's does: a late reply to an earlier request is stale
static uint64_t
s_next_corr (gw_session_t *s)
{
    uint64_t attempt = ((s->earnings_seq & 0xffff) + 1) & 0xffff;
    s->earnings_seq = attempt ? attempt : 1;
    return (s->conn << 16) | s->earnings_seq;
}

void
gw_earnings_handle (gw_core_t *self, gw_session_t *s)
{
    if (s->state != GW_STATE_REGISTERED) {
        gw_core_bad (self, s, "bad_request", NULL,
                     "not_registered: register as a peer or gamer before get_earnings");
        return;
    }
    if (s->earnings_corr
        || !gw_bucket_take (&s->earnings_rate, 1000.0 / GW_EARNINGS_EVERY_MS, 1, self->now_ms)) {
        gw_metrics_inc (self->metrics, GW_M_LIMITS, "rate_limited");
        gw_core_bad (self, s, "rate_limited", NULL,
                     "get_earnings at most once every %d s per connection",
                     GW_EARNINGS_EVERY_MS / 1000);
        return;
    }
    if (!gw_earnings_ask (self, s))
        gw_core_send_error (self, s, "unavailable",
                            "the account service is not reachable; try again later", NULL);
}

bool
gw_earnings_ask (gw_core_t *self, gw_session_t *s)
{
    if (s->earnings_corr || self->io.services (self->io.arg, "ledger") == 0)
        return false;
    uint64_t corr = s_next_corr (s);
    P2c2r__EarningsRequest req = P2C2R__EARNINGS_REQUEST__INIT;
    req.corr = corr;
    req.account_id = s->account_id;
    req.role = (char *) gw_role_name (s->role);
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_EARNINGS_REQUEST;
    m.earnings_request = &req;
    if (self->io.send (self->io.arg, "ledger", &m) != 0)
        return false;
    s->earnings_corr = corr;
    s->earnings_deadline_ms = self->now_ms + self->cfg.auth_timeout_ms;
    log_debug ("earnings request conn=%llu account=%lld",
               (unsigned long long) s->conn, (long long) s->account_id);
    return true;
}

void
gw_earnings_on_reply (gw_core_t *self, P2c2r__EarningsReply *r)
{
    gw_session_t *s = gw_sessions_lookup (self->sessions, r->corr >> 16);
    if (!s || s->state != GW_STATE_REGISTERED || !s->earnings_corr || s->earnings_corr != r->corr) {
        //  The client left, or its request timed out already
        log_debug ("stale earnings reply corr=%llu", (unsigned long long) r->corr);
        return;
    }
    s->earnings_corr = 0;
    //  Figures of another account than the session's never go out, whatever
    //  the ledger said
    if (!r->ok || !r->earnings || r->account_id != s->account_id) {
        const char *code = !r->ok && *r->code ? r->code : "unavailable";
        log_info ("earnings refused conn=%llu account=%lld code=%s",
                  (unsigned long long) s->conn, (long long) s->account_id, code);
        gw_core_send_error (self, s, code, !r->ok && *r->message ? r->message
                            : "the account service gave no figures", NULL);
        return;
    }
    P2c2r__ServerMessage m = P2C2R__SERVER_MESSAGE__INIT;
    m.msg_case = P2C2R__SERVER_MESSAGE__MSG_EARNINGS;
    m.earnings = r->earnings;
    gw_core_send (self, s, &m);
}

void
gw_earnings_timeouts (gw_core_t *self, int64_t now)
{
    zlistx_t *list = gw_sessions_list (self->sessions);
    for (gw_session_t *s = (gw_session_t *) zlistx_first (list); s;
         s = (gw_session_t *) zlistx_next (list))
        if (s->earnings_corr && s->earnings_deadline_ms <= now) {
            s->earnings_corr = 0;
            gw_core_send_error (self, s, "unavailable",
                                "no answer from the account service; try again later", NULL);
        }
    zlistx_destroy (&list);
}

// ---------------------------------------------------------------------------
//  Self-test: get_earnings through the core, in memory

//  The oldest reply queued to s (the caller frees it)
static P2c2r__ServerMessage *
s_reply (gw_session_t *s)
{
    return gw_fake_reply (s);
}

static bool
s_error_is (gw_session_t *s, const char *code)
{
    P2c2r__ServerMessage *m = s_reply (s);
    bool ok = m && m->msg_case == P2C2R__SERVER_MESSAGE__MSG_ERROR && !strcmp (m->error->code, code);
    p2c_msg_server_free (&m);
    return ok;
}

static void
s_ask (gw_fake_t *fake, gw_session_t *s, int64_t now)
{
    P2c2r__GetEarnings ge = P2C2R__GET_EARNINGS__INIT;
    P2c2r__ClientMessage m = P2C2R__CLIENT_MESSAGE__INIT;
    m.msg_case = P2C2R__CLIENT_MESSAGE__MSG_GET_EARNINGS;
    m.get_earnings = &ge;
    gw_fake_client (fake, s, &m, now);
}

//  The ledger answers the last request sent, for account (ok) or with code
static void
s_answer (gw_fake_t *fake, int64_t account, const char *code, int64_t now)
{
    P2c2r__Internal *req = gw_fake_msg (fake, fake->sent - 1);
    assert (req && req->msg_case == P2C2R__INTERNAL__MSG_EARNINGS_REQUEST);
    P2c2r__Earnings e = P2C2R__EARNINGS__INIT;
    e.role = req->earnings_request->role;
    e.balance_pico = 520833;
    e.earned_total_pico = 41666667;
    e.as_of = "2026-12-02T10:00:00Z";
    P2c2r__EarningsReply r = P2C2R__EARNINGS_REPLY__INIT;
    r.corr = req->earnings_request->corr;
    r.account_id = account;
    r.ok = code == NULL;
    r.code = (char *) (code ? code : "");
    r.earnings = code ? NULL : &e;
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_EARNINGS_REPLY;
    m.earnings_reply = &r;
    gw_fake_internal (fake, &m, now);
}

void
gw_earnings_test (bool verbose)
{
    (void) verbose;
    gw_fake_t *fake = gw_fake_new (NULL);
    gw_core_t *core = fake->core;

    //  Before registration: an error, nothing asked of the ledger
    gw_session_t *anon = gw_core_open (core, NULL, "192.0.2.1", 1000);
    s_ask (fake, anon, 1000);
    P2c2r__ServerMessage *m = s_reply (anon);
    P2C_CHECK (m && m->msg_case == P2C2R__SERVER_MESSAGE__MSG_ERROR
               && !strcmp (m->error->code, "bad_request") && strstr (m->error->message,
                                                                     "not_registered"));
    p2c_msg_server_free (&m);
    P2C_CHECK (fake->sent == 0);

    //  A peer asks: the ledger is asked for the session's own account and
    //  role, and its figures go back as they came
    gw_session_t *p = gw_fake_register (fake, GW_ROLE_PEER, "p1", 42, 1000);
    while ((m = s_reply (p)))
        p2c_msg_server_free (&m);
    size_t sent = fake->sent;
    s_ask (fake, p, 2000);
    P2C_CHECK (fake->sent == sent + 1);
    P2c2r__Internal *req = gw_fake_msg (fake, fake->sent - 1);
    P2C_CHECK (req && req->msg_case == P2C2R__INTERNAL__MSG_EARNINGS_REQUEST
               && req->earnings_request->account_id == 42
               && !strcmp (req->earnings_request->role, "peer")
               && !strcmp (fake->dest [(fake->sent - 1) % GW_FAKE_MAX], "ledger"));
    s_answer (fake, 42, NULL, 2100);
    m = s_reply (p);
    P2C_CHECK (m && m->msg_case == P2C2R__SERVER_MESSAGE__MSG_EARNINGS
               && m->earnings->balance_pico == 520833 && m->earnings->earned_total_pico == 41666667
               && !strcmp (m->earnings->role, "peer")
               && !strcmp (m->earnings->as_of, "2026-12-02T10:00:00Z"));
    p2c_msg_server_free (&m);
    //  The same answer again is stale: nothing more goes out
    P2c2r__EarningsReply again = P2C2R__EARNINGS_REPLY__INIT;
    again.corr = req ? req->earnings_request->corr : 0;
    again.ok = true;
    again.account_id = 42;
    P2c2r__Earnings e = P2C2R__EARNINGS__INIT;
    again.earnings = &e;
    P2c2r__Internal im = P2C2R__INTERNAL__INIT;
    im.msg_case = P2C2R__INTERNAL__MSG_EARNINGS_REPLY;
    im.earnings_reply = &again;
    gw_fake_internal (fake, &im, 2200);
    P2C_CHECK (gw_session_queued (p) == 0);

    //  A second request within the limit: rate_limited, the ledger not asked
    sent = fake->sent;
    s_ask (fake, p, 5000);
    P2C_CHECK (s_error_is (p, "rate_limited") && fake->sent == sent);
    P2C_CHECK (gw_metrics_get (core->metrics, GW_M_LIMITS, "rate_limited") == 1);
    //  ... and allowed again once the interval passed
    s_ask (fake, p, 2000 + GW_EARNINGS_EVERY_MS);
    P2C_CHECK (fake->sent == sent + 1 && gw_session_queued (p) == 0);
    //  One in flight at a time; the ledger's silence: unavailable
    s_ask (fake, p, 2000 + 3 * GW_EARNINGS_EVERY_MS);
    P2C_CHECK (s_error_is (p, "rate_limited") && fake->sent == sent + 1);
    gw_core_cron (core, 2000 + 3 * GW_EARNINGS_EVERY_MS + 100);
    P2C_CHECK (s_error_is (p, "unavailable"));
    P2C_CHECK (p->earnings_corr == 0);

    //  Figures of another account than the session's never go out
    gw_session_t *g = gw_fake_register (fake, GW_ROLE_GAMER, "g1", 7, 1000);
    while ((m = s_reply (g)))
        p2c_msg_server_free (&m);
    s_ask (fake, g, 3000);
    req = gw_fake_msg (fake, fake->sent - 1);
    P2C_CHECK (req && req->earnings_request->account_id == 7
               && !strcmp (req->earnings_request->role, "gamer"));
    s_answer (fake, 42, NULL, 3100);
    P2C_CHECK (s_error_is (g, "unavailable"));
    //  The ledger's refusal is passed on with its code
    s_ask (fake, g, 3000 + GW_EARNINGS_EVERY_MS);
    s_answer (fake, 7, "not_found", 3000 + GW_EARNINGS_EVERY_MS);
    P2C_CHECK (s_error_is (g, "not_found"));

    //  No ledger, or the broker refuses: unavailable at once
    fake->ledgers = 0;
    sent = fake->sent;
    s_ask (fake, g, 3000 + 2 * GW_EARNINGS_EVERY_MS);
    P2C_CHECK (s_error_is (g, "unavailable") && fake->sent == sent);
    fake->ledgers = 1;
    fake->refuse = true;
    s_ask (fake, g, 3000 + 3 * GW_EARNINGS_EVERY_MS);
    P2C_CHECK (s_error_is (g, "unavailable") && g->earnings_corr == 0);
    fake->refuse = false;

    //  A reply for a connection that closed is dropped
    s_ask (fake, g, 3000 + 4 * GW_EARNINGS_EVERY_MS);
    P2C_CHECK (g->earnings_corr != 0);
    gw_core_closed (core, g, 3000 + 4 * GW_EARNINGS_EVERY_MS);
    s_answer (fake, 7, NULL, 3000 + 4 * GW_EARNINGS_EVERY_MS + 10);
    gw_fake_destroy (&fake);
}
