/*  Tasks and peers, a part of the gateway core (gw_core_int.h): a gamer's
    submit is checked, given a task id, stamped with the session address
    (this gateway's node id and the connection number) and the account,
    recorded as pending and forwarded to the scheduler; the one reply per
    task (the scheduler's Deliver, or the deadline guard's timeout,
    whichever comes first) goes to the session that submitted it. Peers:
    tasks assigned to them are passed on, their results forwarded, and the
    scheduler hears of them coming and going (PeerUp, PeerDown) and again
    whenever a scheduler comes up. */
#include "gw_core_int.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_tasks.h"
#include "p2c_test.h"

#include <jansson.h>

// ---------------------------------------------------------------------------
//  Peers coming and going

void
gw_tasks_peer_up (gw_core_t *self, gw_session_t *s)
{
    P2c2r__Session sess = P2C2R__SESSION__INIT;
    sess.gateway = self->node_id;
    sess.conn = s->conn;
    P2c2r__Capabilities none = P2C2R__CAPABILITIES__INIT;
    P2c2r__PeerUp up = P2C2R__PEER_UP__INIT;
    up.session = &sess;
    up.peer_id = s->name;
    up.account_id = s->account_id;
    up.address = s->ip;
    up.owner = s->owner ? s->owner : "";
    //  (a shallow copy: the heartbeat's slots, when one gave them, over
    //  the registration's)
    P2c2r__Capabilities caps = s->reg && s->reg->register_peer && s->reg->register_peer->capabilities
                             ? *s->reg->register_peer->capabilities : none;
    if (s->slots)
        caps.slots = s->slots;
    up.capabilities = &caps;
    up.paused = s->paused;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_PEER_UP;
    msg.peer_up = &up;
    if (self->io.send (self->io.arg, "scheduler", &msg) != 0)
        log_warn ("cannot send peer_up conn=%llu id=%s",
                  (unsigned long long) s->conn, s->name);
}

void
gw_tasks_peer_down (gw_core_t *self, uint64_t conn)
{
    P2c2r__Session sess = P2C2R__SESSION__INIT;
    sess.gateway = self->node_id;
    sess.conn = conn;
    P2c2r__PeerDown down = P2C2R__PEER_DOWN__INIT;
    down.session = &sess;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_PEER_DOWN;
    msg.peer_down = &down;
    if (self->io.send (self->io.arg, "scheduler", &msg) != 0)
        log_warn ("cannot send peer_down conn=%llu", (unsigned long long) conn);
}

// ---------------------------------------------------------------------------
//  The submit path

//  Forwards an accepted submit to the scheduler, stamped with the
//  session's address and account; 0, or -1 when it cannot go
static int
s_forward_submit (gw_core_t *self, gw_session_t *s, P2c2r__Submit *sub, const char *task_id,
                  const char *type, const char *params, uint32_t deadline)
{
    //  A shallow copy carries the canonical name and the default params;
    //  its strings stay owned by the decoded client message
    P2c2r__Submit fwd = *sub;
    fwd.task_type = (char *) type;
    fwd.params_json = (char *) params;
    fwd.deadline_ms = deadline;
    P2c2r__Session gamer = P2C2R__SESSION__INIT;
    gamer.gateway = self->node_id;
    gamer.conn = s->conn;
    P2c2r__TaskSubmit ts = P2C2R__TASK_SUBMIT__INIT;
    ts.task_id = (char *) task_id;
    ts.gamer = &gamer;
    ts.gamer_account = s->account_id;
    ts.gamer_id = s->name;
    ts.submit = &fwd;
    ts.deadline_ms = deadline;
    ts.region = self->region;
    ts.address = s->ip;
    ts.gamer_owner = s->owner ? s->owner : "";
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_TASK_SUBMIT;
    m.task_submit = &ts;
    return self->io.send (self->io.arg, "scheduler", &m);
}

void
gw_tasks_submit (gw_core_t *self, gw_session_t *s, P2c2r__Submit *sub)
{
    const char *ref = sub->client_ref;
    if (!gw_core_require (self, s, GW_ROLE_GAMER, "submit", ref))
        return;
    if (strlen (ref) > GW_MAX_CLIENT_REF) {
        gw_core_task_error (self, s, NULL, "", "invalid_params", "client_ref is too long");
        return;
    }
    const char *type = p2c_task_canonical (sub->task_type);
    if (!type) {
        gw_core_task_error (self, s, NULL, ref, "unknown_task_type", "unknown task type");
        return;
    }
    const char *params = *sub->params_json ? sub->params_json : "{}";
    json_error_t jerr;
    json_t *obj = json_loads (params, JSON_REJECT_DUPLICATES, &jerr);
    bool is_object = obj && json_is_object (obj);
    json_decref (obj);
    if (!is_object) {
        gw_core_task_error (self, s, NULL, ref, "invalid_params",
                            "params_json is not a JSON object");
        return;
    }
    uint32_t deadline = sub->deadline_ms ? sub->deadline_ms : self->cfg.default_deadline_ms;
    if (deadline > self->cfg.max_deadline_ms)
        deadline = self->cfg.max_deadline_ms;

    char *task_id = gw_taskid_next (self->taskids);
    if (self->quitting)
        gw_core_task_error (self, s, task_id, ref, "unavailable",
                            "this gateway is shutting down; reconnect and submit again");
    else
    if (self->io.services (self->io.arg, "scheduler") == 0)
        gw_core_task_error (self, s, task_id, ref, "unavailable", "no scheduler is running");
    else
    if (gw_pending_add (self->pending, task_id, s->conn, s->account_id, ref,
                        self->now_ms + deadline + self->cfg.guard_grace_ms) != 0)
        gw_core_task_error (self, s, task_id, ref, "unavailable", "duplicate task id");
    else
    if (s_forward_submit (self, s, sub, task_id, type, params, deadline) != 0) {
        gw_pending_entry_t *e = gw_pending_take (self->pending, task_id);
        gw_pending_entry_destroy (&e);
        gw_core_task_error (self, s, task_id, ref, "unavailable",
                            "the scheduler cannot be reached");
    }
    else {
        s->tasks++;
        log_debug ("submit task=%s conn=%llu type=%s deadline_ms=%u", task_id,
                   (unsigned long long) s->conn, type, deadline);
    }
    free (task_id);
}

void
gw_tasks_result (gw_core_t *self, gw_session_t *s, P2c2r__PeerResult *res)
{
    if (!gw_core_require (self, s, GW_ROLE_PEER, "result", NULL))
        return;
    //  A JSON peer has no attempt number: it is the one this gateway
    //  passed on with the task
    uint32_t attempt = 0;
    if (gw_session_assigned_take (s, res->task_id, &attempt) && s->dialect == GW_DIALECT_JSON)
        res->attempt = attempt;
    P2c2r__Session peer = P2C2R__SESSION__INIT;
    peer.gateway = self->node_id;
    peer.conn = s->conn;
    P2c2r__TaskResult tr = P2C2R__TASK_RESULT__INIT;
    tr.peer = &peer;
    tr.result = res;
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_TASK_RESULT;
    m.task_result = &tr;
    if (self->io.send (self->io.arg, "scheduler", &m) != 0)
        log_warn ("cannot forward result task=%s conn=%llu", res->task_id,
                  (unsigned long long) s->conn);
    else
        log_debug ("result task=%s conn=%llu ok=%d", res->task_id,
                   (unsigned long long) s->conn, res->ok);
}

// ---------------------------------------------------------------------------
//  Messages from the broker

//  Tells the scheduler node that sent a reply that it arrived, so that it
//  stops sending it again (it keeps replies until then: a Deliver lost with
//  the broker is sent again)
static void
s_deliver_ack (gw_core_t *self, const char *sender, const char *task_id)
{
    if (!sender || !*sender || !task_id || !*task_id)
        return;
    P2c2r__DeliverAck ack = P2C2R__DELIVER_ACK__INIT;
    ack.task_id = (char *) task_id;
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_DELIVER_ACK;
    m.deliver_ack = &ack;
    if (self->io.send (self->io.arg, sender, &m) != 0)
        log_debug ("cannot ack deliver task=%s", task_id);
}

void
gw_tasks_deliver (gw_core_t *self, const char *sender, P2c2r__Deliver *d)
{
    if (!d->reply) {
        self->counters.deliver_dropped++;
        return;
    }
    //  acked whatever becomes of it: a duplicate (or a reply to a task the
    //  guard answered, or whose gamer left) needs no second send either
    s_deliver_ack (self, sender, d->reply->task_id);
    gw_pending_entry_t *e = gw_pending_take (self->pending, d->reply->task_id);
    if (!e) {
        //  Answered already (guard, or the gamer left): exactly one reply
        self->counters.deliver_dropped++;
        log_debug ("deliver for no pending task=%s", d->reply->task_id);
        return;
    }
    gw_session_t *s = gw_sessions_lookup (self->sessions, e->conn);
    if (s) {
        P2c2r__TaskReply r = *d->reply;
        r.client_ref = e->client_ref;
        P2c2r__ServerMessage m = P2C2R__SERVER_MESSAGE__INIT;
        m.msg_case = P2C2R__SERVER_MESSAGE__MSG_TASK_RESULT;
        m.task_result = &r;
        gw_core_send (self, s, &m);
        if (s->tasks)
            s->tasks--;
        gw_metrics_observe_ms (self->metrics, (double) (self->now_ms - e->start_ms));
        log_debug ("delivered task=%s conn=%llu ok=%d", e->task_id,
                   (unsigned long long) e->conn, r.ok);
    }
    gw_pending_entry_destroy (&e);
}

void
gw_tasks_assign (gw_core_t *self, P2c2r__TaskAssign *a)
{
    if (!a->peer || !a->assign) {
        self->counters.internal_dropped++;
        return;
    }
    if (strcmp (a->peer->gateway, self->node_id)) {
        //  Not one of ours: a PeerDown would make the scheduler forget a
        //  live peer of another gateway
        self->counters.internal_dropped++;
        log_warn ("assign for another gateway=%s task=%s", a->peer->gateway,
                  a->assign->task_id);
        return;
    }
    gw_session_t *s = gw_sessions_lookup (self->sessions, a->peer->conn);
    if (!s || s->state != GW_STATE_REGISTERED || s->role != GW_ROLE_PEER || s->closing) {
        log_info ("assign for a gone peer conn=%llu task=%s",
                  (unsigned long long) a->peer->conn, a->assign->task_id);
        gw_tasks_peer_down (self, a->peer->conn);
        return;
    }
    P2c2r__ServerMessage m = P2C2R__SERVER_MESSAGE__INIT;
    m.msg_case = P2C2R__SERVER_MESSAGE__MSG_ASSIGN;
    m.assign = a->assign;
    gw_session_assigned_add (s, a->assign->task_id, a->assign->attempt);
    gw_core_send (self, s, &m);
    log_debug ("assign task=%s conn=%llu", a->assign->task_id,
               (unsigned long long) s->conn);
}

//  A scheduler came up (it restarted, or the broker did): it learns every
//  live peer again
void
gw_tasks_node_event (gw_core_t *self, P2c2r__NodeEvent *ev)
{
    //  Announce our peers whenever the active scheduler may have changed: a
    //  new one came up, or one went down (a scheduler restarted within the
    //  broker's liveness time came up while the dead one was still routed
    //  to, so the announcements sent then were lost)
    if (strcmp (ev->service, "scheduler"))
        return;
    if (!ev->up && self->io.services (self->io.arg, "scheduler") == 0) {
        log_info ("scheduler down node=%s", ev->node_id);
        return;
    }
    size_t n = 0;
    zlistx_t *list = gw_sessions_list (self->sessions);
    for (gw_session_t *s = (gw_session_t *) zlistx_first (list); s;
         s = (gw_session_t *) zlistx_next (list))
        if (s->state == GW_STATE_REGISTERED && s->role == GW_ROLE_PEER && !s->closing) {
            gw_tasks_peer_up (self, s);
            n++;
        }
    zlistx_destroy (&list);
    log_info ("scheduler %s node=%s peers_announced=%zu", ev->up ? "up" : "down",
              ev->node_id, n);
}

// ---------------------------------------------------------------------------
//  The deadline guard, and the failures it reported

//  Sends the ledger every failure due (again): until it acks, the task may
//  still settle somewhere (a late result, a Deliver lost with the broker or
//  the scheduler, a ledger that committed but could not ack), and the
//  ledger refunds what settles of a task reported failed
static void
s_failed_send (gw_core_t *self, int64_t now)
{
    if (gw_pending_fail_size (self->pending) == 0)
        return;
    zlistx_t *due = gw_pending_fail_due (self->pending, now, GW_FAILED_RESEND_MS);
    for (gw_failed_t *f = (gw_failed_t *) zlistx_first (due); f;
         f = (gw_failed_t *) zlistx_next (due)) {
        P2c2r__TaskFailed tf = P2C2R__TASK_FAILED__INIT;
        tf.task_id = f->task_id;
        tf.gamer_account = f->account;
        tf.code = f->code;
        P2c2r__Internal m = P2C2R__INTERNAL__INIT;
        m.msg_case = P2C2R__INTERNAL__MSG_TASK_FAILED;
        m.task_failed = &tf;
        if (self->io.send (self->io.arg, "ledger", &m) != 0)
            log_debug ("cannot send task_failed task=%s", f->task_id);
    }
    zlistx_destroy (&due);
}

//  Tasks past their deadline and grace: the gamer gets timeout, once (the
//  entry is taken out, so a late Deliver finds nothing), and the ledger
//  hears it, so that the task is never charged
void
gw_tasks_guard (gw_core_t *self, int64_t now)
{
    zlistx_t *expired = gw_pending_expire (self->pending, now);
    for (gw_pending_entry_t *e = (gw_pending_entry_t *) zlistx_first (expired); e;
         e = (gw_pending_entry_t *) zlistx_next (expired)) {
        self->counters.timeouts++;
        gw_session_t *s = gw_sessions_lookup (self->sessions, e->conn);
        log_info ("task timed out task=%s conn=%llu", e->task_id,
                  (unsigned long long) e->conn);
        if (!s)
            continue;
        //  recorded before the gamer hears it: a failure the ledger never
        //  hears of must not be one the gamer did
        if (gw_pending_fail_add (self->pending, e->task_id, e->account, "timeout", now) != 0)
            log_warn ("too many failures unacknowledged by the ledger, task=%s"
                      " may be charged", e->task_id);
        if (s->tasks)
            s->tasks--;
        gw_metrics_observe_ms (self->metrics, (double) (now - e->start_ms));
        gw_core_task_error (self, s, e->task_id, e->client_ref, "timeout",
                            "no result within the deadline");
    }
    zlistx_destroy (&expired);
    s_failed_send (self, now);
}

void
gw_tasks_failed_ack (gw_core_t *self, P2c2r__SettleAck *ack)
{
    if (!ack->failed || !gw_pending_fail_ack (self->pending, ack->task_id)) {
        self->counters.internal_dropped++;
        return;
    }
    if (!ack->ok)
        log_warn ("ledger refused a failure task=%s error=\"%.100s\"", ack->task_id,
                  ack->error ? ack->error : "");
    else
    if (ack->gamer_charge_pico)
        log_info ("failed task refunded task=%s amount_pico=%lld", ack->task_id,
                  (long long) ack->gamer_charge_pico);
}

// ---------------------------------------------------------------------------
//  Self-test: the submit path, delivery, the guard and peers, in memory

//  Submits a task from s; deadline 0: the default
static void
s_submit (gw_fake_t *fake, gw_session_t *s, const char *type, const char *params,
          const char *ref, uint32_t deadline, int64_t now)
{
    P2c2r__Submit sub = P2C2R__SUBMIT__INIT;
    sub.task_type = (char *) type;
    sub.params_json = (char *) params;
    sub.client_ref = (char *) ref;
    sub.deadline_ms = deadline;
    P2c2r__ClientMessage m = P2C2R__CLIENT_MESSAGE__INIT;
    m.msg_case = P2C2R__CLIENT_MESSAGE__MSG_SUBMIT;
    m.submit = &sub;
    gw_fake_client (fake, s, &m, now);
}

//  The scheduler's reply for a task
static void
s_deliver (gw_fake_t *fake, const char *task_id, bool ok, int64_t now)
{
    P2c2r__TaskReply r = P2C2R__TASK_REPLY__INIT;
    r.task_id = (char *) task_id;
    r.ok = ok;
    r.result_json = ok ? "{\"x\":1}" : "";
    r.error_code = ok ? "" : "no_peers";
    P2c2r__Deliver d = P2C2R__DELIVER__INIT;
    d.reply = &r;
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_DELIVER;
    m.deliver = &d;
    gw_fake_internal (fake, &m, now);
}

//  The last message sent is a TaskFailed of the task to the ledger
static bool
s_last_failed (gw_fake_t *fake, const char *task_id, int64_t account)
{
    P2c2r__Internal *m = fake->sent ? gw_fake_msg (fake, fake->sent - 1) : NULL;
    return m && m->msg_case == P2C2R__INTERNAL__MSG_TASK_FAILED
        && !strcmp (fake->dest [(fake->sent - 1) % GW_FAKE_MAX], "ledger")
        && !strcmp (m->task_failed->task_id, task_id)
        && m->task_failed->gamer_account == account
        && !strcmp (m->task_failed->code, "timeout");
}

//  The ledger's ack of a failure
static void
s_failed_ack (gw_fake_t *fake, const char *task_id, int64_t now)
{
    P2c2r__SettleAck ack = P2C2R__SETTLE_ACK__INIT;
    ack.task_id = (char *) task_id;
    ack.ok = true;
    ack.failed = true;
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_SETTLE_ACK;
    m.settle_ack = &ack;
    gw_fake_internal (fake, &m, now);
}

//  The last TaskSubmit sent; NULL when the last message is another
static P2c2r__TaskSubmit *
s_last_submit (gw_fake_t *fake)
{
    P2c2r__Internal *m = fake->sent ? gw_fake_msg (fake, fake->sent - 1) : NULL;
    return m && m->msg_case == P2C2R__INTERNAL__MSG_TASK_SUBMIT ? m->task_submit : NULL;
}

//  The oldest reply of s is a task_result: ok, or failed with this code
static bool
s_result_is (gw_session_t *s, const char *task_id, const char *ref, const char *code)
{
    P2c2r__ServerMessage *m = gw_fake_reply (s);
    bool ok = m && m->msg_case == P2C2R__SERVER_MESSAGE__MSG_TASK_RESULT
           && (!task_id || !strcmp (m->task_result->task_id, task_id))
           && !strcmp (m->task_result->client_ref, ref)
           && (code ? !m->task_result->ok && !strcmp (m->task_result->error_code, code)
                    : m->task_result->ok);
    p2c_msg_server_free (&m);
    return ok;
}

static void
s_test_submit (void)
{
    gw_fake_t *fake = gw_fake_new (NULL);
    gw_core_t *core = fake->core;
    gw_session_t *g = gw_fake_register (fake, GW_ROLE_GAMER, "g1", 42, 1000);
    //  Forwarded with the session address, the account, the canonical
    //  type, default params and deadline, and the gateway's region
    s_submit (fake, g, "hash", "", "r1", 0, 1000);
    P2c2r__TaskSubmit *ts = s_last_submit (fake);
    P2C_CHECK (ts && !strcmp (fake->dest [(fake->sent - 1) % GW_FAKE_MAX], "scheduler"));
    P2C_CHECK (ts && *ts->task_id && !strcmp (ts->gamer->gateway, "gateway-test")
               && ts->gamer->conn == g->conn && ts->gamer_account == 42
               && !strcmp (ts->gamer_id, "g1") && !strcmp (ts->region, "eu")
               && ts->deadline_ms == 1000 && !strcmp (ts->submit->task_type, "encryption")
               && !strcmp (ts->submit->params_json, "{}")
               && !strcmp (ts->submit->client_ref, "r1"));
    P2C_CHECK (gw_core_pending (core) == 1 && g->tasks == 1);
    P2C_CHECK (gw_session_queued (g) == 0);     //  the reply comes later
    //  A deadline beyond the longest allowed is cut to it; task ids differ
    char first [64];
    snprintf (first, sizeof first, "%s", ts ? ts->task_id : "");
    s_submit (fake, g, "compression", "{\"level\":1}", "r2", 999999, 1000);
    ts = s_last_submit (fake);
    P2C_CHECK (ts && ts->deadline_ms == 5000 && strcmp (ts->task_id, first));

    //  Refused, each with one terminal reply and nothing forwarded
    size_t sent = fake->sent;
    s_submit (fake, g, "no_such_kernel", "{}", "r3", 0, 1000);
    P2C_CHECK (s_result_is (g, NULL, "r3", "unknown_task_type"));
    s_submit (fake, g, "hash", "[1,2]", "r4", 0, 1000);
    P2C_CHECK (s_result_is (g, NULL, "r4", "invalid_params"));
    s_submit (fake, g, "hash", "{\"a\":1,\"a\":2}", "r5", 0, 1000);
    P2C_CHECK (s_result_is (g, NULL, "r5", "invalid_params"));
    char ref [GW_MAX_CLIENT_REF + 2];
    memset (ref, 'r', sizeof ref);
    ref [GW_MAX_CLIENT_REF + 1] = 0;
    s_submit (fake, g, "hash", "{}", ref, 0, 1000);
    P2C_CHECK (s_result_is (g, NULL, "", "invalid_params"));
    fake->schedulers = 0;
    s_submit (fake, g, "hash", "{}", "r6", 0, 1000);
    P2C_CHECK (s_result_is (g, NULL, "r6", "unavailable"));
    fake->schedulers = 1;
    P2C_CHECK (fake->sent == sent && gw_core_pending (core) == 2);
    fake->refuse = true;
    s_submit (fake, g, "hash", "{}", "r7", 0, 1000);
    P2C_CHECK (s_result_is (g, NULL, "r7", "unavailable"));
    P2C_CHECK (gw_core_pending (core) == 2);
    fake->refuse = false;
    //  Only a registered gamer submits
    gw_session_t *p = gw_fake_register (fake, GW_ROLE_PEER, "p1", 9, 1000);
    s_submit (fake, p, "hash", "{}", "r8", 0, 1000);
    P2c2r__ServerMessage *r = gw_fake_reply (p);
    P2C_CHECK (r && r->msg_case == P2C2R__SERVER_MESSAGE__MSG_ERROR
               && !strcmp (r->error->code, "bad_request") && !strcmp (r->error->client_ref, "r8"));
    p2c_msg_server_free (&r);
    gw_session_t *n = gw_core_open (core, NULL, "192.0.2.7", 1000);
    s_submit (fake, n, "hash", "{}", "r9", 0, 1000);
    r = gw_fake_reply (n);
    P2C_CHECK (r && r->msg_case == P2C2R__SERVER_MESSAGE__MSG_ERROR
               && strstr (r->error->message, "not_registered"));
    p2c_msg_server_free (&r);
    P2C_CHECK (gw_core_pending (core) == 2);
    gw_fake_destroy (&fake);
}

static void
s_test_delivery (void)
{
    gw_fake_t *fake = gw_fake_new (NULL);
    gw_core_t *core = fake->core;
    gw_session_t *g1 = gw_fake_register (fake, GW_ROLE_GAMER, "g1", 1, 1000);
    gw_session_t *g2 = gw_fake_register (fake, GW_ROLE_GAMER, "g2", 2, 1000);
    char t1 [64], t2 [64], t3 [64];
    s_submit (fake, g1, "hash", "{}", "a", 0, 1000);
    snprintf (t1, sizeof t1, "%s", s_last_submit (fake)->task_id);
    s_submit (fake, g2, "hash", "{}", "b", 0, 1000);
    snprintf (t2, sizeof t2, "%s", s_last_submit (fake)->task_id);
    s_submit (fake, g2, "hash", "{}", "c", 5000, 1000);
    snprintf (t3, sizeof t3, "%s", s_last_submit (fake)->task_id);
    P2C_CHECK (gw_core_pending (core) == 3);
    //  A reply goes to the session that submitted, with its client_ref
    s_deliver (fake, t2, true, 1200);
    P2C_CHECK (gw_session_queued (g1) == 0);
    P2C_CHECK (s_result_is (g2, t2, "b", NULL));
    P2C_CHECK (gw_core_pending (core) == 2 && g2->tasks == 1);
    //  Exactly one reply: a duplicate is dropped
    s_deliver (fake, t2, true, 1300);
    P2C_CHECK (gw_session_queued (g2) == 0);
    P2C_CHECK (core->counters.deliver_dropped == 1);
    //  The deadline guard answers timeout once, deadline + grace later
    gw_core_cron (core, 1000 + 1000 + 499);
    P2C_CHECK (gw_session_queued (g1) == 0);
    gw_core_cron (core, 1000 + 1000 + 500);
    P2C_CHECK (s_result_is (g1, t1, "a", "timeout"));
    P2C_CHECK (core->counters.timeouts == 1 && g1->tasks == 0);
    //  ... and tells the ledger, so that the task is never charged
    P2C_CHECK (s_last_failed (fake, t1, 1));
    size_t sent = fake->sent;
    gw_core_cron (core, 3000);
    P2C_CHECK (gw_session_queued (g1) == 0 && fake->sent == sent);
    //  ... again each second until the ledger acks it
    gw_core_cron (core, 2500 + GW_FAILED_RESEND_MS);
    P2C_CHECK (fake->sent == sent + 1 && s_last_failed (fake, t1, 1));
    s_failed_ack (fake, t1, 3600);
    gw_core_cron (core, 6000);
    P2C_CHECK (fake->sent == sent + 1);
    //  an ack of nothing we sent is dropped
    uint64_t dropped = core->counters.internal_dropped;
    s_failed_ack (fake, t1, 3700);
    P2C_CHECK (core->counters.internal_dropped == dropped + 1);
    //  ... and the scheduler's late reply finds nothing
    s_deliver (fake, t1, true, 3000);
    P2C_CHECK (gw_session_queued (g1) == 0 && core->counters.deliver_dropped == 2);
    //  A failure is delivered as it came
    s_deliver (fake, t3, false, 3100);
    P2C_CHECK (s_result_is (g2, t3, "c", "no_peers"));
    P2C_CHECK (gw_core_pending (core) == 0);
    //  A gamer that left takes its pending tasks with it
    s_submit (fake, g1, "hash", "{}", "d", 0, 4000);
    snprintf (t1, sizeof t1, "%s", s_last_submit (fake)->task_id);
    gw_core_closed (core, g1, 4100);
    P2C_CHECK (gw_core_pending (core) == 0);
    s_deliver (fake, t1, true, 4200);
    P2C_CHECK (core->counters.deliver_dropped == 3);
    P2c2r__Deliver none = P2C2R__DELIVER__INIT;
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_DELIVER;
    m.deliver = &none;
    gw_fake_internal (fake, &m, 4300);
    P2C_CHECK (core->counters.deliver_dropped == 4);
    //  Every reply is acked to the scheduler node that sent it, so that it
    //  stops sending it again; a second copy (a resend) reaches the gamer
    //  no more, and is acked too
    s_submit (fake, g2, "hash", "{}", "e", 0, 5000);
    snprintf (t2, sizeof t2, "%s", s_last_submit (fake)->task_id);
    P2c2r__TaskReply r = P2C2R__TASK_REPLY__INIT;
    r.task_id = t2;
    r.ok = true;
    r.result_json = "{}";
    P2c2r__Deliver d = P2C2R__DELIVER__INIT;
    d.reply = &r;
    m.deliver = &d;
    for (int copy = 0; copy < 2; copy++) {
        sent = fake->sent;
        gw_core_handle (core, "scheduler-1", &m, 5100);
        P2c2r__Internal *ack = gw_fake_msg (fake, fake->sent - 1);
        P2C_CHECK (fake->sent == sent + 1 && ack->msg_case == P2C2R__INTERNAL__MSG_DELIVER_ACK
                   && !strcmp (ack->deliver_ack->task_id, t2)
                   && !strcmp (fake->dest [(fake->sent - 1) % GW_FAKE_MAX], "scheduler-1"));
        P2C_CHECK (copy ? gw_session_queued (g2) == 0 : s_result_is (g2, t2, "e", NULL));
    }
    P2C_CHECK (core->counters.deliver_dropped == 5);
    gw_fake_destroy (&fake);
}

//  The scheduler assigns a task to conn of gateway
static void
s_assign (gw_fake_t *fake, const char *gateway, uint64_t conn, const char *task_id,
          uint32_t attempt)
{
    P2c2r__Session sess = P2C2R__SESSION__INIT;
    sess.gateway = (char *) gateway;
    sess.conn = conn;
    P2c2r__Assign as = P2C2R__ASSIGN__INIT;
    as.task_id = (char *) task_id;
    as.task_type = "encryption";
    as.attempt = attempt;
    P2c2r__TaskAssign ta = P2C2R__TASK_ASSIGN__INIT;
    ta.peer = &sess;
    ta.assign = &as;
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_TASK_ASSIGN;
    m.task_assign = &ta;
    gw_fake_internal (fake, &m, 1000);
}

static void
s_test_peers (void)
{
    gw_fake_t *fake = gw_fake_new (NULL);
    gw_core_t *core = fake->core;
    gw_session_t *p1 = gw_fake_register (fake, GW_ROLE_PEER, "p1", 1, 1000);
    gw_session_t *p2 = gw_fake_register (fake, GW_ROLE_PEER, "p2", 2, 1000);
    gw_session_t *g = gw_fake_register (fake, GW_ROLE_GAMER, "g", 3, 1000);
    //  A task for one of ours goes to that peer
    s_assign (fake, "gateway-test", p2->conn, "t1", 2);
    P2c2r__ServerMessage *r = gw_fake_reply (p2);
    P2C_CHECK (r && r->msg_case == P2C2R__SERVER_MESSAGE__MSG_ASSIGN
               && !strcmp (r->assign->task_id, "t1") && r->assign->attempt == 2);
    p2c_msg_server_free (&r);
    P2C_CHECK (gw_session_queued (p1) == 0 && gw_session_assigned (p2) == 1);
    //  ... one for another gateway is dropped, without a PeerDown
    size_t sent = fake->sent;
    s_assign (fake, "gateway-other", p1->conn, "t2", 1);
    P2C_CHECK (gw_session_queued (p1) == 0 && fake->sent == sent);
    P2C_CHECK (core->counters.internal_dropped == 1);
    //  ... one for a gone peer (or a gamer) is answered with a PeerDown
    s_assign (fake, "gateway-test", 999, "t3", 1);
    P2c2r__Internal *down = gw_fake_msg (fake, fake->sent - 1);
    P2C_CHECK (fake->sent == sent + 1 && down->msg_case == P2C2R__INTERNAL__MSG_PEER_DOWN
               && down->peer_down->session->conn == 999
               && !strcmp (down->peer_down->session->gateway, "gateway-test"));
    s_assign (fake, "gateway-test", g->conn, "t4", 1);
    P2C_CHECK (gw_session_queued (g) == 0 && fake->sent == sent + 2);

    //  A peer's result goes to the scheduler with the peer's session
    P2c2r__PeerResult res = P2C2R__PEER_RESULT__INIT;
    res.task_id = "t1";
    res.ok = true;
    res.attempt = 2;
    P2c2r__ClientMessage cm = P2C2R__CLIENT_MESSAGE__INIT;
    cm.msg_case = P2C2R__CLIENT_MESSAGE__MSG_RESULT;
    cm.result = &res;
    gw_fake_client (fake, p2, &cm, 1100);
    P2c2r__Internal *tr = gw_fake_msg (fake, fake->sent - 1);
    P2C_CHECK (tr->msg_case == P2C2R__INTERNAL__MSG_TASK_RESULT
               && tr->task_result->peer->conn == p2->conn
               && !strcmp (tr->task_result->result->task_id, "t1")
               && tr->task_result->result->attempt == 2);
    P2C_CHECK (gw_session_assigned (p2) == 0);
    //  ... a gamer's "result" is refused
    sent = fake->sent;
    gw_fake_client (fake, g, &cm, 1100);
    r = gw_fake_reply (g);
    P2C_CHECK (r && r->msg_case == P2C2R__SERVER_MESSAGE__MSG_ERROR && fake->sent == sent);
    p2c_msg_server_free (&r);
    gw_fake_destroy (&fake);
}

static void
s_test_peer_events (void)
{
    gw_fake_t *fake = gw_fake_new (NULL);
    gw_core_t *core = fake->core;
    gw_session_t *p1 = gw_fake_register (fake, GW_ROLE_PEER, "p1", 1, 1000);
    gw_session_t *p2 = gw_fake_register (fake, GW_ROLE_PEER, "p2", 2, 1000);
    gw_session_t *g = gw_fake_register (fake, GW_ROLE_GAMER, "g", 3, 1000);
    size_t sent = fake->sent;
    //  A scheduler comes up: every registered peer is announced again
    P2c2r__NodeEvent ev = P2C2R__NODE_EVENT__INIT;
    ev.service = "scheduler";
    ev.node_id = "scheduler-2";
    ev.up = true;
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_NODE_EVENT;
    m.node_event = &ev;
    gw_fake_internal (fake, &m, 2000);
    P2C_CHECK (fake->sent == sent + 2);
    P2c2r__Internal *u1 = gw_fake_msg (fake, sent), *u2 = gw_fake_msg (fake, sent + 1);
    assert (u1 && u2);
    P2C_CHECK (u1->msg_case == P2C2R__INTERNAL__MSG_PEER_UP
               && u2->msg_case == P2C2R__INTERNAL__MSG_PEER_UP
               && u1->peer_up->session->conn + u2->peer_up->session->conn == p1->conn + p2->conn);
    //  One went down and none is left: nothing to announce to
    ev.up = false;
    fake->schedulers = 0;
    gw_fake_internal (fake, &m, 2100);
    P2C_CHECK (fake->sent == sent + 2);
    //  ... one went down and another is still routed to: announce again
    fake->schedulers = 1;
    gw_fake_internal (fake, &m, 2200);
    P2C_CHECK (fake->sent == sent + 4);
    //  Other services' events change nothing
    ev.service = "ledger";
    ev.up = true;
    gw_fake_internal (fake, &m, 2300);
    P2C_CHECK (fake->sent == sent + 4);

    //  A registered peer that leaves is reported down
    uint64_t conn = p1->conn;
    gw_core_closed (core, p1, 3000);
    P2c2r__Internal *down = gw_fake_msg (fake, fake->sent - 1);
    P2C_CHECK (fake->sent == sent + 5 && down->msg_case == P2C2R__INTERNAL__MSG_PEER_DOWN
               && down->peer_down->session->conn == conn);
    gw_core_closed (core, g, 3000);
    P2C_CHECK (fake->sent == sent + 5);
    gw_fake_destroy (&fake);
}

void
gw_tasks_test (bool verbose)
{
    (void) verbose;
    s_test_submit ();
    s_test_delivery ();
    s_test_peers ();
    s_test_peer_events ();
}
