/*  Idempotent resubmission by client_ref (issue 15, docs/protocol.md), like
    an idempotency key: a submit that repeats a client_ref of its account
    within the window gets the outcome of the first, with no new run and no
    new charge. One entry per (account, client_ref):
    - while the first task is in flight the entry points at it, and a
      repeat joins it: the task's one reply goes to every submit, each under
      its own task id (the repeats' with `replayed` set);
    - once the task was answered the entry keeps its reply, packed, and a
      repeat is answered from it (`replayed`, the first task's cost_pico).
    An outcome nobody received is not kept, so that a resubmission runs
    again: a reply to a gateway that was lost before it confirmed it (a
    charged one is refunded by the outbox), a failure to a lost gateway.
    A result reaching a gamer through a repeat keeps its charge (the outbox
    does not refund it when the first gateway is lost later).
    A repeat must be the same task (type, params and payload, compared by a
    fingerprint): a client_ref reused for another task is refused with
    bad_request rather than answered with the first task's outcome, as an
    idempotency key reused with other parameters is.
    In memory, bounded in entries and bytes, oldest first (docs/scheduler.md
    says what a scheduler restart forgets). */
#include "sch_internal.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <inttypes.h>
#include <zlib.h>

typedef struct {
    char *key;                  //  "account/client_ref"
    uint64_t print;             //  the task's fingerprint (s_print)
    sch_task_t *task;           //  the task in flight, or NULL once answered
    uint8_t *reply;             //  the outcome: a packed TaskReply
    size_t size;
    char *task_id;              //  the task that answered (its Deliver in the outbox)
    char *gateway;              //  where that reply went
    bool ok;                    //  a result, not a failure
    int64_t expires_us;         //  the outcome is forgotten then
    void *handle;               //  in core->ref_order
} s_ref_t;

static void
s_ref_destroy (void **item)
{
    s_ref_t *e = (s_ref_t *) *item;
    if (!e)
        return;
    free (e->key);
    free (e->reply);
    free (e->task_id);
    free (e->gateway);
    free (e);
    *item = NULL;
}

void
sch_refs_new (sch_core_t *self)
{
    self->refs = zhashx_new ();
    zhashx_set_destructor (self->refs, s_ref_destroy);
    self->ref_order = zlistx_new ();
}

void
sch_refs_destroy (sch_core_t *self)
{
    zlistx_destroy (&self->ref_order);
    zhashx_destroy (&self->refs);
}

//  The entry key of a submit; false when the submit has no usable ref
static bool
s_key (int64_t account, const char *ref, char *key, size_t size)
{
    if (!ref || !*ref || strlen (ref) > SCH_MAX_ID)
        return false;
    snprintf (key, size, "%" PRId64 "/%s", account, ref);
    return true;
}

//  A task's fingerprint: CRC-32 of its type and params, and of its
//  payload, with their lengths; what tells a repeat from another task
//  under the same ref (a client's mistake, not an attack: the ref space is
//  the account's own)
static uint64_t
s_print (const char *type, const char *params, const uint8_t *payload, size_t payload_size)
{
    size_t tlen = type ? strlen (type) : 0, plen = params ? strlen (params) : 0;
    uLong a = crc32 (0L, Z_NULL, 0), b = crc32 (0L, Z_NULL, 0);
    a = crc32 (a, (const Bytef *) (type ? type : ""), (uInt) tlen);
    a = crc32 (a, (const Bytef *) "\n", 1);
    //  params are bounded by the protocol (far below 4 GiB), payloads too
    a = crc32 (a, (const Bytef *) (params ? params : ""), (uInt) plen);
    if (payload && payload_size)
        b = crc32 (b, payload, (uInt) payload_size);
    return ((uint64_t) a << 32 | (uint64_t) b) ^ ((uint64_t) plen << 40) ^ (uint64_t) payload_size;
}

static void
s_remove (sch_core_t *self, s_ref_t *e)
{
    self->ref_bytes -= e->size;
    if (e->handle)
        zlistx_delete (self->ref_order, e->handle);
    zhashx_delete (self->refs, e->key);     //  frees e
}

//  Gives up the oldest outcomes while over a bound (entries in flight are
//  not in the list: they end by their deadline)
static void
s_make_room (sch_core_t *self)
{
    s_ref_t *e;
    while ((zhashx_size (self->refs) > self->config.ref_max_entries
            || self->ref_bytes > self->config.ref_max_bytes)
           && (e = (s_ref_t *) zlistx_first (self->ref_order)))
        s_remove (self, e);
}

//  A reply of a stored or shared outcome to one submit, under its task id;
//  never charged again, so never refunded (account 0)
static void
s_answer (sch_core_t *self, const char *gateway, uint64_t conn, const char *task_id,
          P2c2r__TaskReply *reply, int64_t until_us)
{
    P2c2r__Session gamer = P2C2R__SESSION__INIT;
    gamer.gateway = (char *) gateway;
    gamer.conn = conn;
    char *id = reply->task_id, *of = reply->replay_of;
    protobuf_c_boolean replayed = reply->replayed;
    reply->task_id = (char *) task_id;
    reply->replay_of = id;
    reply->replayed = true;
    P2c2r__Deliver deliver = P2C2R__DELIVER__INIT;
    deliver.gamer = &gamer;
    deliver.reply = reply;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_DELIVER;
    msg.deliver = &deliver;
    sch_outbox_send (self->outbox, gateway, task_id, &msg, 0, until_us);
    reply->task_id = id;
    reply->replay_of = of;
    reply->replayed = replayed;
}

static void
s_joiner_destroy (void **item)
{
    sch_joiner_t *j = (sch_joiner_t *) *item;
    if (!j)
        return;
    free (j->gateway);
    free (j->task_id);
    free (j);
    *item = NULL;
}

bool
sch_refs_submit (sch_core_t *self, const P2c2r__TaskSubmit *sub, const char *gateway)
{
    char key [SCH_MAX_ID + 32];
    if (!self->config.ref_max_entries || !sub->submit
        || !s_key (sub->gamer_account, sub->submit->client_ref, key, sizeof key))
        return false;
    s_ref_t *e = (s_ref_t *) zhashx_lookup (self->refs, key);
    if (!e)
        return false;
    if (e->print != s_print (sub->submit->task_type, sub->submit->params_json,
                             sub->submit->payload.data, sub->submit->payload.len)) {
        sch_reject_submit (self, sub, gateway, SCH_ERR_BAD_REQUEST,
                           "client_ref: used already for another task (type, params or"
                           " payload differ); use a new client_ref for new work");
        return true;
    }
    if (e->task) {
        sch_task_t *task = e->task;
        if (!task->joiners) {
            task->joiners = zlistx_new ();
            zlistx_set_destructor (task->joiners, s_joiner_destroy);
        }
        if (zlistx_size (task->joiners) >= SCH_REF_JOINERS) {
            //  a client repeating itself in a loop: the oldest repeat gives
            //  way (its gateway's guard answers it)
            zlistx_first (task->joiners);
            zlistx_delete (task->joiners, zlistx_cursor (task->joiners));
        }
        sch_joiner_t *j = (sch_joiner_t *) zmalloc (sizeof (sch_joiner_t));
        j->gateway = p2c_strdup (gateway);
        j->conn = sub->gamer->conn;
        j->task_id = p2c_strdup (sub->task_id);
        zlistx_add_end (task->joiners, j);
        self->stats.ref_joined++;
        log_debug ("client_ref repeat joined task=%s repeat=%s", task->id, sub->task_id);
        return true;
    }
    P2c2r__TaskReply *reply = p2c2r__task_reply__unpack (NULL, e->size, e->reply);
    if (!reply) {
        s_remove (self, e);
        return false;
    }
    s_answer (self, gateway, sub->gamer->conn, sub->task_id, reply,
              self->now_us + (int64_t) self->config.max_deadline_ms * 1000
              + SCH_DELIVER_KEEP_MS * 1000);
    p2c2r__task_reply__free_unpacked (reply, NULL);
    //  the result reached the gamer this way: its charge stands even if
    //  the first reply's gateway is lost before it confirms
    sch_outbox_uncharge (self->outbox, e->task_id);
    self->stats.ref_replayed++;
    log_debug ("client_ref repeat answered from the outcome of task=%s repeat=%s", e->task_id,
               sub->task_id);
    return true;
}

void
sch_refs_track (sch_core_t *self, sch_task_t *task)
{
    char key [SCH_MAX_ID + 32];
    if (!self->config.ref_max_entries || task->is_check || task->is_tile
        || !s_key (task->gamer_account, task->client_ref, key, sizeof key)
        || zhashx_lookup (self->refs, key))
        return;
    s_ref_t *e = (s_ref_t *) zmalloc (sizeof (s_ref_t));
    e->key = p2c_strdup (key);
    e->task = task;
    const p2c_task_type_t *types = p2c_task_types ();
    e->print = s_print (types [task->type].name, task->params_json, task->payload,
                        task->payload_size);
    zhashx_insert (self->refs, e->key, e);
    s_make_room (self);
}

//  The entry of the task while it is in flight, else NULL
static s_ref_t *
s_entry_of (sch_core_t *self, sch_task_t *task)
{
    char key [SCH_MAX_ID + 32];
    if (!self->refs || !s_key (task->gamer_account, task->client_ref, key, sizeof key))
        return NULL;
    s_ref_t *e = (s_ref_t *) zhashx_lookup (self->refs, key);
    return e && e->task == task ? e : NULL;
}

void
sch_refs_untrack (sch_core_t *self, sch_task_t *task)
{
    s_ref_t *e = s_entry_of (self, task);
    if (e)
        s_remove (self, e);
}

void
sch_refs_answered (sch_core_t *self, sch_task_t *task, const P2c2r__TaskReply *reply,
                   bool lost)
{
    s_ref_t *e = s_entry_of (self, task);
    if (!e)
        return;
    if (lost && !sch_task_joined (task)) {
        s_remove (self, e);     //  nobody received it: a resubmission runs again
        return;
    }
    size_t size = p2c2r__task_reply__get_packed_size (reply);
    if (size > self->config.ref_max_bytes) {
        s_remove (self, e);
        return;
    }
    e->reply = (uint8_t *) p2c_malloc (size ? size : 1);
    assert (e->reply);
    e->size = p2c2r__task_reply__pack (reply, e->reply);
    e->task = NULL;
    e->task_id = p2c_strdup (task->id);
    e->gateway = p2c_strdup (task->gw->id);
    e->ok = reply->ok;
    e->expires_us = self->now_us + self->config.ref_window_ms * 1000;
    self->ref_bytes += e->size;
    //  the newest outcome: expiries keep the list's order
    e->handle = zlistx_add_end (self->ref_order, e);
    s_make_room (self);
}

void
sch_refs_deliver_joiners (sch_core_t *self, sch_task_t *task, P2c2r__TaskReply *reply)
{
    if (!task->joiners)
        return;
    for (sch_joiner_t *j = (sch_joiner_t *) zlistx_first (task->joiners); j;
         j = (sch_joiner_t *) zlistx_next (task->joiners)) {
        sch_gw_t *gw = (sch_gw_t *) zhashx_lookup (self->gateways, j->gateway);
        if (gw && gw->down)
            continue;
        s_answer (self, j->gateway, j->conn, j->task_id, reply,
                  task->deadline_us + SCH_DELIVER_KEEP_MS * 1000);
    }
}

void
sch_refs_gateway_down (sch_core_t *self, const char *gateway)
{
    s_ref_t *e = (s_ref_t *) zlistx_first (self->ref_order);
    while (e) {
        s_ref_t *next = (s_ref_t *) zlistx_next (self->ref_order);
        int64_t charged = 0;
        //  unconfirmed there: a charged result is refunded, a failure was
        //  never seen; either way a resubmission runs again
        if (!e->task && e->gateway && !strcmp (e->gateway, gateway)
            && sch_outbox_kept (self->outbox, e->task_id, &charged) && (charged || !e->ok))
            s_remove (self, e);
        e = next;
    }
}

void
sch_refs_cron (sch_core_t *self, int64_t now_us)
{
    s_ref_t *e;
    while ((e = (s_ref_t *) zlistx_first (self->ref_order)) && e->expires_us <= now_us)
        s_remove (self, e);
}

//  --------------------------------------------------------------------------
//  Self-test

//  A submit of ref by account on gw (conn 1)
static void
s_test_submit (sch_core_t *core, const char *gw, const char *id, const char *ref,
               int64_t account, int64_t now_us)
{
    P2c2r__Session gamer = P2C2R__SESSION__INIT;
    gamer.gateway = (char *) gw;
    gamer.conn = 1;
    P2c2r__Submit submit = P2C2R__SUBMIT__INIT;
    submit.task_type = "encryption";
    submit.params_json = "{\"n\":1}";
    submit.client_ref = (char *) ref;
    P2c2r__TaskSubmit ts = P2C2R__TASK_SUBMIT__INIT;
    ts.task_id = (char *) id;
    ts.gamer = &gamer;
    ts.gamer_account = account;
    ts.submit = &submit;
    ts.deadline_ms = 30000;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_TASK_SUBMIT;
    msg.task_submit = &ts;
    sch_core_handle (core, gw, &msg, now_us);
}

static void
s_test_node_down (sch_core_t *core, const char *gw, int64_t now_us)
{
    P2c2r__NodeEvent ev = P2C2R__NODE_EVENT__INIT;
    ev.service = "gateway";
    ev.node_id = (char *) gw;
    ev.up = false;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_NODE_EVENT;
    msg.node_event = &ev;
    sch_core_handle (core, "", &msg, now_us);
}

void
sch_refs_test (bool verbose)
{
    (void) verbose;
    sch_selftest_t cap;
    sch_core_t *core = sch_selftest_core (&cap, NULL);
    sch_selftest_peer_up (core, "gw-p", 1, 1, "encryption", 11, 0);
    //  a repeat while the first runs joins it: one run, one settlement,
    //  both submits get the reply, each under its own task id
    s_test_submit (core, "gw-a", "t1", "r1", 500, 10);
    P2C_CHECK (cap.count [P2C2R__INTERNAL__MSG_TASK_ASSIGN] == 1);
    s_test_submit (core, "gw-b", "t2", "r1", 500, 20);
    P2C_CHECK (sch_selftest_task (core, "t2") == NULL && core->stats.ref_joined == 1);
    P2C_CHECK (cap.count [P2C2R__INTERNAL__MSG_TASK_ASSIGN] == 1);
    //  another account's ref of the same name is its own
    s_test_submit (core, "gw-a", "t3", "r1", 501, 30);
    P2C_CHECK (sch_selftest_task (core, "t3") != NULL);
    sch_selftest_result (core, "t1", "{\"x\":1}", 100, 40);
    P2C_CHECK (cap.count [P2C2R__INTERNAL__MSG_SETTLE_REQUEST] == 1);
    sch_selftest_ack (core, "t1", true, 50);
    P2C_CHECK (cap.count [P2C2R__INTERNAL__MSG_DELIVER] == 2 && !strcmp (cap.last_task, "t2")
               && !strcmp (cap.last_dest, "gw-b") && cap.last_ok);
    //  a repeat after the answer: from the stored outcome, no run, no settlement
    s_test_submit (core, "gw-c", "t4", "r1", 500, 60);
    P2C_CHECK (cap.count [P2C2R__INTERNAL__MSG_DELIVER] == 3 && !strcmp (cap.last_task, "t4")
               && cap.last_ok && core->stats.ref_replayed == 1);
    P2C_CHECK (cap.count [P2C2R__INTERNAL__MSG_SETTLE_REQUEST] == 1
               && sch_selftest_task (core, "t4") == NULL);
    //  the same ref for another task: refused (bad_request), nothing run,
    //  the stored outcome kept for a true repeat
    P2c2r__Session g2 = P2C2R__SESSION__INIT;
    g2.gateway = "gw-c";
    g2.conn = 1;
    P2c2r__Submit other = P2C2R__SUBMIT__INIT;
    other.task_type = "encryption";
    other.params_json = "{\"n\":2}";
    other.client_ref = "r1";
    P2c2r__TaskSubmit ots = P2C2R__TASK_SUBMIT__INIT;
    ots.task_id = "t4b";
    ots.gamer = &g2;
    ots.gamer_account = 500;
    ots.submit = &other;
    P2c2r__Internal omsg = P2C2R__INTERNAL__INIT;
    omsg.msg_case = P2C2R__INTERNAL__MSG_TASK_SUBMIT;
    omsg.task_submit = &ots;
    sch_core_handle (core, "gw-c", &omsg, 65);
    P2C_CHECK (cap.count [P2C2R__INTERNAL__MSG_DELIVER] == 4 && !strcmp (cap.last_task, "t4b")
               && !cap.last_ok && !strcmp (cap.last_code, "bad_request")
               && core->stats.ref_replayed == 1 && sch_selftest_task (core, "t4b") == NULL);
    s_test_submit (core, "gw-c", "t4c", "r1", 500, 66);
    P2C_CHECK (cap.count [P2C2R__INTERNAL__MSG_DELIVER] == 5 && cap.last_ok
               && core->stats.ref_replayed == 2);
    //  an empty ref is no key: every submit runs
    s_test_submit (core, "gw-a", "t5", "", 500, 70);
    s_test_submit (core, "gw-a", "t6", "", 500, 70);
    P2C_CHECK (sch_selftest_task (core, "t5") && sch_selftest_task (core, "t6"));
    //  a failure is an outcome too: the repeat gets the same error
    s_test_submit (core, "gw-a", "t7", "r7", 502, 80);
    sch_task_t *t7 = sch_selftest_task (core, "t7");
    P2C_CHECK (t7);
    sch_tasks_fail (core, t7, SCH_ERR_KERNEL_ERROR, "bad", 90);
    s_test_submit (core, "gw-a", "t8", "r7", 502, 100);
    P2C_CHECK (!strcmp (cap.last_task, "t8") && !cap.last_ok
               && !strcmp (cap.last_code, "kernel_error"));
    //  a task dropped with its gateway frees its ref: the resubmission runs
    s_test_submit (core, "gw-d", "t9", "r9", 503, 110);
    P2C_CHECK (sch_selftest_task (core, "t9"));
    s_test_node_down (core, "gw-d", 120);
    if (sch_selftest_task (core, "t9") == NULL) {
        s_test_submit (core, "gw-e", "t10", "r9", 503, 130);
        P2C_CHECK (sch_selftest_task (core, "t10") != NULL);
    }
    //  an outcome whose reply its gateway never confirmed is forgotten
    //  with that gateway: the resubmission runs again
    s_test_submit (core, "gw-f", "t11", "r11", 504, 140);
    sch_task_t *t11 = sch_selftest_task (core, "t11");
    P2C_CHECK (t11);
    sch_tasks_fail (core, t11, SCH_ERR_NO_PEERS, "", 150);
    s_test_node_down (core, "gw-f", 160);
    s_test_submit (core, "gw-g", "t12", "r11", 504, 170);
    P2C_CHECK (sch_selftest_task (core, "t12") != NULL);
    //  outcomes go after the window
    sch_refs_cron (core, 50 + core->config.ref_window_ms * 1000 + 1);
    s_test_submit (core, "gw-c", "t13", "r1", 500, 200);
    P2C_CHECK (sch_selftest_task (core, "t13") != NULL);
    sch_core_destroy (&core);

    //  bounds: the oldest outcome gives way
    sch_core_config_t config;
    sch_core_config_default (&config);
    config.validation = SCH_VAL_NONE;
    config.funds_check = false;
    config.cache_max_entries = 0;
    config.bill_max_permille = 0;
    config.ref_max_entries = 2;
    core = sch_selftest_core (&cap, &config);
    char id [16], ref [16];
    for (int i = 0; i < 3; i++) {
        snprintf (id, sizeof id, "b%d", i);
        snprintf (ref, sizeof ref, "rb%d", i);
        s_test_submit (core, "gw-a", id, ref, 600, 10 + i);    //  no peers: fails at once
        P2C_CHECK (sch_selftest_task (core, id) == NULL && !strcmp (cap.last_code, "no_peers"));
    }
    P2C_CHECK (zhashx_size (core->refs) == 2);
    s_test_submit (core, "gw-a", "b3", "rb0", 600, 30);     //  runs (and fails) again
    P2C_CHECK (core->stats.ref_replayed == 0 && !strcmp (cap.last_task, "b3"));
    s_test_submit (core, "gw-a", "b4", "rb2", 600, 30);     //  kept
    P2C_CHECK (core->stats.ref_replayed == 1 && !strcmp (cap.last_task, "b4"));
    sch_core_destroy (&core);

    //  The gamer's gateway dies while its task runs on a peer there; the
    //  gamer's resubmission from another gateway joined it first: the task
    //  is retried elsewhere, and the repeat gets the result, charged once
    //  and not refunded
    core = sch_selftest_core (&cap, NULL);
    sch_selftest_peer_up (core, "gw-a", 1, 1, "encryption", 11, 0);
    s_test_submit (core, "gw-a", "j1", "rj", 700, 10);
    P2C_CHECK (!strcmp (cap.last_dest, "gw-a"));
    sch_selftest_peer_up (core, "gw-b", 1, 1, "encryption", 12, 20);
    s_test_submit (core, "gw-b", "j2", "rj", 700, 30);
    P2C_CHECK (core->stats.ref_joined == 1);
    s_test_node_down (core, "gw-a", 40);
    sch_task_t *j1 = sch_selftest_task (core, "j1");
    P2C_CHECK (j1 && j1->state == SCH_RUNNING && !strcmp (cap.last_dest, "gw-b"));
    sch_selftest_result (core, "j1", "{\"x\":2}", 100, 50);
    sch_selftest_ack (core, "j1", true, 60);
    P2C_CHECK (!strcmp (cap.last_task, "j2") && !strcmp (cap.last_dest, "gw-b") && cap.last_ok);
    P2C_CHECK (cap.count [P2C2R__INTERNAL__MSG_TASK_FAILED] == 0);
    //  and a later repeat is answered from the outcome
    s_test_submit (core, "gw-b", "j3", "rj", 700, 70);
    P2C_CHECK (!strcmp (cap.last_task, "j3") && core->stats.ref_replayed == 1);
    sch_core_destroy (&core);
}
