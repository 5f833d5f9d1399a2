/*  Replies kept until their gateway confirms them (see sch_outbox.h). A
    kept reply is the packed Internal message: resends are rare, so they
    pay the unpacking, and what is kept is one buffer per reply. Entries
    sit in one list in order of their next send; every send moves an entry
    to the end with the same interval, so the list stays in that order and
    the cron looks only at what is due. */
#include "sch_outbox.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <czmq.h>

typedef struct {
    char *task_id;
    char *gateway;              //  node id of the gamer's gateway
    uint8_t *packed;            //  the Internal message
    size_t size;
    int64_t next_us;            //  next send, 0: one cron after it was added
    int64_t until_us;           //  given up after this
    void *handle;               //  in self->order
    int64_t account;            //  a charged result's gamer, else 0
    bool refund;                //  a TaskFailed to the ledger, not a Deliver
} s_entry_t;

struct _sch_outbox_t {
    int64_t retry_us;
    size_t max_entries, max_bytes;
    sch_send_fn *send;
    void *send_arg;
    zhashx_t *entries;          //  task id -> s_entry_t (not owned: order owns them)
    zlistx_t *order;            //  s_entry_t *, soonest next send first (owns them)
    size_t bytes;               //  of the kept messages
    int64_t now_us;             //  of the last cron
    sch_outbox_stats_t stats;
};

static void
s_entry_destroy (void **item)
{
    s_entry_t *e = (s_entry_t *) *item;
    if (!e)
        return;
    free (e->task_id);
    free (e->gateway);
    free (e->packed);
    free (e);
    *item = NULL;
}

sch_outbox_t *
sch_outbox_new (int64_t retry_us, size_t max_entries, size_t max_bytes, sch_send_fn *send,
                void *arg)
{
    sch_outbox_t *self = (sch_outbox_t *) zmalloc (sizeof (sch_outbox_t));
    self->retry_us = retry_us > 0 ? retry_us : 1;
    self->max_entries = max_entries;
    self->max_bytes = max_bytes;
    self->send = send;
    self->send_arg = arg;
    self->entries = zhashx_new ();
    self->order = zlistx_new ();
    zlistx_set_destructor (self->order, s_entry_destroy);
    return self;
}

void
sch_outbox_destroy (sch_outbox_t **self_p)
{
    sch_outbox_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->entries);
    zlistx_destroy (&self->order);
    free (self);
    *self_p = NULL;
}

//  Takes an entry out and frees it
static void
s_remove (sch_outbox_t *self, s_entry_t *e)
{
    self->bytes -= e->size;
    zhashx_delete (self->entries, e->task_id);
    zlistx_delete (self->order, e->handle);
}

//  Keeps a copy of msg, sent now, to send again to dest until acked
static void
s_keep (sch_outbox_t *self, const char *dest, const char *task_id, const P2c2r__Internal *msg,
        int64_t account, bool refund, int64_t until_us)
{
    if (self->max_entries == 0)
        return;
    s_entry_t *old = (s_entry_t *) zhashx_lookup (self->entries, task_id);
    if (old)
        s_remove (self, old);
    size_t size = p2c2r__internal__get_packed_size (msg);
    if (size > self->max_bytes)
        return;             //  sent once, too large to keep
    //  the oldest go first to make room
    s_entry_t *first;
    while ((zhashx_size (self->entries) >= self->max_entries
            || self->bytes + size > self->max_bytes)
           && (first = (s_entry_t *) zlistx_first (self->order))) {
        log_warn ("%s given up for room task=%s dest=%s", first->refund ? "refund" : "deliver",
                  first->task_id, first->gateway);
        self->stats.evicted++;
        s_remove (self, first);
    }
    s_entry_t *e = (s_entry_t *) zmalloc (sizeof (s_entry_t));
    e->task_id = p2c_strdup (task_id);
    e->gateway = p2c_strdup (dest);
    e->packed = (uint8_t *) p2c_malloc (size ? size : 1);
    e->size = p2c2r__internal__pack (msg, e->packed);
    //  the first resend one interval after the last cron: entries added
    //  between two crons keep the list's order
    e->next_us = self->now_us + self->retry_us;
    e->until_us = until_us;
    e->account = account;
    e->refund = refund;
    e->handle = zlistx_add_end (self->order, e);
    zhashx_insert (self->entries, e->task_id, e);
    self->bytes += e->size;
}

void
sch_outbox_send (sch_outbox_t *self, const char *gateway, const char *task_id,
                 const P2c2r__Internal *msg, int64_t account, int64_t until_us)
{
    self->send (self->send_arg, gateway, msg);
    s_keep (self, gateway, task_id, msg, account, false, until_us);
    self->stats.sent++;
}

void
sch_outbox_refund (sch_outbox_t *self, const char *task_id, int64_t account)
{
    P2c2r__TaskFailed tf = P2C2R__TASK_FAILED__INIT;
    tf.task_id = (char *) task_id;
    tf.gamer_account = account;
    tf.code = "gateway_lost";
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_TASK_FAILED;
    msg.task_failed = &tf;
    self->send (self->send_arg, "ledger", &msg);
    s_keep (self, "ledger", task_id, &msg, account, true,
            self->now_us + SCH_OUTBOX_REFUND_KEEP_MS * 1000);
    self->stats.refunds++;
    log_info ("refund asked for a lost gateway task=%s account=%lld", task_id,
              (long long) account);
}

//  Ends a kept entry of the kind acked; false when there is none
static bool
s_ack (sch_outbox_t *self, const char *task_id, bool refund)
{
    s_entry_t *e = task_id ? (s_entry_t *) zhashx_lookup (self->entries, task_id) : NULL;
    if (!e || e->refund != refund)
        return false;
    s_remove (self, e);
    return true;
}

bool
sch_outbox_ack (sch_outbox_t *self, const char *task_id)
{
    bool found = s_ack (self, task_id, false);
    self->stats.acked += found;
    return found;
}

bool
sch_outbox_refund_ack (sch_outbox_t *self, const char *task_id)
{
    bool found = s_ack (self, task_id, true);
    self->stats.refunds_acked += found;
    return found;
}

bool
sch_outbox_kept (sch_outbox_t *self, const char *task_id, int64_t *account_p)
{
    s_entry_t *e = task_id ? (s_entry_t *) zhashx_lookup (self->entries, task_id) : NULL;
    bool kept = e && !e->refund;
    if (account_p)
        *account_p = kept ? e->account : 0;
    return kept;
}

void
sch_outbox_uncharge (sch_outbox_t *self, const char *task_id)
{
    s_entry_t *e = task_id ? (s_entry_t *) zhashx_lookup (self->entries, task_id) : NULL;
    if (e && !e->refund)
        e->account = 0;
}

void
sch_outbox_gateway_down (sch_outbox_t *self, const char *gateway)
{
    //  gathered first: a refund changes the list
    zlistx_t *charged = zlistx_new ();
    zlistx_set_destructor (charged, (zlistx_destructor_fn *) zstr_free);
    zlistx_t *accounts = zlistx_new ();
    s_entry_t *e = (s_entry_t *) zlistx_first (self->order);
    while (e) {
        s_entry_t *next = (s_entry_t *) zlistx_next (self->order);
        if (!e->refund && !strcmp (e->gateway, gateway)) {
            self->stats.lost_gateway++;
            if (e->account > 0) {
                zlistx_add_end (charged, strdup (e->task_id));
                zlistx_add_end (accounts, (void *) (intptr_t) e->account);
            }
            s_remove (self, e);
        }
        e = next;
    }
    const char *id = (const char *) zlistx_first (charged);
    void *account = zlistx_first (accounts);
    while (id) {
        sch_outbox_refund (self, id, (int64_t) (intptr_t) account);
        id = (const char *) zlistx_next (charged);
        account = zlistx_next (accounts);
    }
    zlistx_destroy (&charged);
    zlistx_destroy (&accounts);
}

void
sch_outbox_cron (sch_outbox_t *self, int64_t now_us)
{
    self->now_us = now_us;
    s_entry_t *e;
    while ((e = (s_entry_t *) zlistx_first (self->order)) && e->next_us <= now_us) {
        if (now_us >= e->until_us) {
            log_info ("%s unconfirmed, given up task=%s dest=%s",
                      e->refund ? "refund" : "deliver", e->task_id, e->gateway);
            self->stats.expired++;
            s_remove (self, e);
            continue;
        }
        P2c2r__Internal *msg = p2c2r__internal__unpack (NULL, e->size, e->packed);
        if (msg) {
            self->send (self->send_arg, e->gateway, msg);
            p2c2r__internal__free_unpacked (msg, NULL);
            self->stats.resent++;
            log_debug ("%s resent task=%s dest=%s", e->refund ? "refund" : "deliver",
                       e->task_id, e->gateway);
        }
        e->next_us = now_us + self->retry_us;
        zlistx_move_end (self->order, e->handle);
    }
}

size_t
sch_outbox_size (sch_outbox_t *self)
{
    return zhashx_size (self->entries);
}

size_t
sch_outbox_bytes (sch_outbox_t *self)
{
    return self->bytes;
}

const sch_outbox_stats_t *
sch_outbox_stats (sch_outbox_t *self)
{
    return &self->stats;
}

//  --------------------------------------------------------------------------
//  Self-test

typedef struct {
    int sent;
    char last_dest [64];
    char last_task [64];
} s_cap_t;

static void
s_cap (void *arg, const char *dest, const P2c2r__Internal *msg)
{
    s_cap_t *c = (s_cap_t *) arg;
    c->sent++;
    snprintf (c->last_dest, sizeof c->last_dest, "%s", dest);
    snprintf (c->last_task, sizeof c->last_task, "%s",
              msg->msg_case == P2C2R__INTERNAL__MSG_DELIVER && msg->deliver->reply
              ? msg->deliver->reply->task_id : "");
}

//  Sends a Deliver of task_id to gateway
static void
s_deliver (sch_outbox_t *o, const char *gateway, const char *task_id, const char *result,
           int64_t until_us)
{
    P2c2r__Session gamer = P2C2R__SESSION__INIT;
    gamer.gateway = (char *) gateway;
    gamer.conn = 1;
    P2c2r__TaskReply reply = P2C2R__TASK_REPLY__INIT;
    reply.task_id = (char *) task_id;
    reply.ok = true;
    reply.result_json = (char *) result;
    P2c2r__Deliver d = P2C2R__DELIVER__INIT;
    d.gamer = &gamer;
    d.reply = &reply;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_DELIVER;
    msg.deliver = &d;
    sch_outbox_send (o, gateway, task_id, &msg, 0, until_us);
}

void
sch_outbox_test (bool verbose)
{
    (void) verbose;
    s_cap_t cap = { 0, "", "" };
    sch_outbox_t *o = sch_outbox_new (1000, 3, 1000, s_cap, &cap);
    sch_outbox_cron (o, 100);
    //  sent at once and kept
    s_deliver (o, "gw-a", "t1", "{}", 5000);
    P2C_CHECK (cap.sent == 1 && !strcmp (cap.last_dest, "gw-a") && !strcmp (cap.last_task, "t1"));
    P2C_CHECK (sch_outbox_size (o) == 1 && sch_outbox_bytes (o) > 0);
    //  not again before the interval; then again each interval, the same bytes
    sch_outbox_cron (o, 1099);
    P2C_CHECK (cap.sent == 1);
    sch_outbox_cron (o, 1100);
    P2C_CHECK (cap.sent == 2 && !strcmp (cap.last_task, "t1") && sch_outbox_stats (o)->resent == 1);
    s_deliver (o, "gw-b", "t2", "{}", 5000);
    P2C_CHECK (cap.sent == 3);
    //  an ack ends it; an ack of nothing kept is false
    P2C_CHECK (sch_outbox_ack (o, "t1") && !sch_outbox_ack (o, "t1") && !sch_outbox_ack (o, NULL));
    sch_outbox_cron (o, 2100);
    P2C_CHECK (cap.sent == 4 && !strcmp (cap.last_task, "t2"));
    //  given up at its keep time, unconfirmed
    sch_outbox_cron (o, 5000);
    P2C_CHECK (sch_outbox_size (o) == 0 && sch_outbox_bytes (o) == 0
               && sch_outbox_stats (o)->expired == 1);
    //  a lost gateway takes its replies, nobody else's
    s_deliver (o, "gw-a", "t3", "{}", 99000);
    s_deliver (o, "gw-b", "t4", "{}", 99000);
    sch_outbox_gateway_down (o, "gw-a");
    P2C_CHECK (sch_outbox_size (o) == 1 && sch_outbox_stats (o)->lost_gateway == 1);
    //  ... and a charged result among them is refunded, sent again until
    //  the ledger acks it
    P2c2r__Internal dm = P2C2R__INTERNAL__INIT;
    dm.msg_case = P2C2R__INTERNAL__MSG_DELIVER_ACK;
    int before = cap.sent;
    sch_outbox_send (o, "gw-c", "t3c", &dm, 77, 99000);
    P2C_CHECK (cap.sent == before + 1 && !strcmp (cap.last_dest, "gw-c"));
    int64_t charged = 0;
    P2C_CHECK (sch_outbox_kept (o, "t3c", &charged) && charged == 77);
    P2C_CHECK (!sch_outbox_kept (o, "t3", NULL) && !sch_outbox_kept (o, NULL, NULL));
    //  one that reached its gamer another way is not refunded
    sch_outbox_send (o, "gw-c", "t3d", &dm, 78, 99000);
    sch_outbox_uncharge (o, "t3d");
    P2C_CHECK (sch_outbox_kept (o, "t3d", &charged) && charged == 0);
    before = cap.sent;
    sch_outbox_gateway_down (o, "gw-c");
    P2C_CHECK (cap.sent == before + 1 && !strcmp (cap.last_dest, "ledger")
               && sch_outbox_stats (o)->refunds == 1 && sch_outbox_size (o) == 2);
    P2C_CHECK (!sch_outbox_ack (o, "t3c"));     //  a gateway's ack is not the ledger's
    sch_outbox_cron (o, 5000 + 1000);
    P2C_CHECK (!strcmp (cap.last_dest, "ledger"));
    P2C_CHECK (sch_outbox_refund_ack (o, "t3c") && sch_outbox_size (o) == 1
               && sch_outbox_stats (o)->refunds_acked == 1);
    //  bounds: the oldest go first, by count and by bytes
    s_deliver (o, "gw-b", "t5", "{}", 99000);
    s_deliver (o, "gw-b", "t6", "{}", 99000);
    s_deliver (o, "gw-b", "t7", "{}", 99000);
    P2C_CHECK (sch_outbox_size (o) == 3 && sch_outbox_stats (o)->evicted == 1);
    P2C_CHECK (!sch_outbox_ack (o, "t4") && sch_outbox_ack (o, "t5"));
    char big [600];
    memset (big, 'x', sizeof big - 1);
    big [sizeof big - 1] = 0;
    s_deliver (o, "gw-b", "t8", big, 99000);
    P2C_CHECK (sch_outbox_size (o) == 3 && sch_outbox_stats (o)->evicted == 1);
    s_deliver (o, "gw-b", "t10", big, 99000);
    P2C_CHECK (sch_outbox_size (o) == 1 && sch_outbox_bytes (o) <= 1000
               && sch_outbox_stats (o)->evicted == 4 && sch_outbox_ack (o, "t10"));
    //  too large to keep at all: sent once
    char huge [1200];
    memset (huge, 'y', sizeof huge - 1);
    huge [sizeof huge - 1] = 0;
    int sent = cap.sent;
    s_deliver (o, "gw-b", "t9", huge, 99000);
    P2C_CHECK (cap.sent == sent + 1 && !sch_outbox_ack (o, "t9"));
    sch_outbox_destroy (&o);
    P2C_CHECK (o == NULL);
    sch_outbox_destroy (&o);
    //  max_entries 0: nothing kept
    o = sch_outbox_new (1000, 0, 1000, s_cap, &cap);
    s_deliver (o, "gw-a", "t1", "{}", 5000);
    P2C_CHECK (sch_outbox_size (o) == 0);
    sch_outbox_destroy (&o);
}
