/*  The scheduler's payouts outside settlement (see sch_payouts.h). */
#define P2C_LOG_COMPONENT "validation"
#include "sch_internal.h"          //  SCH_MAX_ID
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <inttypes.h>

typedef struct {
    char *key;                  //  id, or "r:" id for a reversal
    char *id;                   //  the run's task id
    bool check;                 //  a check run's payout
    bool reverse;
    int64_t peer_account;
    int type;
    uint64_t billed_us, compute_us, observed_us;
    int64_t next_us;            //  next resend
    uint32_t tries;
    void *handle;               //  in self->fifo
} s_payout_t;

struct _sch_payouts_t {
    zhashx_t *payouts;          //  key -> s_payout_t * (owned, freed by hand)
    zlistx_t *fifo;             //  the same, by next resend (all share one interval)
    int64_t retry_us;           //  resend interval
    sch_send_fn *send;          //  where outgoing messages go
    void *send_arg;
    sch_stats_t *stats;         //  the core's counters (borrowed)
};

sch_payouts_t *
sch_payouts_new (int64_t retry_us, sch_send_fn *send, void *arg, sch_stats_t *stats)
{
    assert (send && stats);
    sch_payouts_t *self = (sch_payouts_t *) zmalloc (sizeof (sch_payouts_t));
    self->payouts = zhashx_new ();
    self->fifo = zlistx_new ();
    self->retry_us = retry_us;
    self->send = send;
    self->send_arg = arg;
    self->stats = stats;
    return self;
}

static void
s_payout_free (s_payout_t **po_p)
{
    s_payout_t *po = *po_p;
    free (po->key);
    free (po->id);
    free (po);
    *po_p = NULL;
}

void
sch_payouts_destroy (sch_payouts_t **self_p)
{
    sch_payouts_t *self = *self_p;
    if (!self)
        return;
    for (s_payout_t *po = (s_payout_t *) zhashx_first (self->payouts); po;
         po = (s_payout_t *) zhashx_next (self->payouts))
        s_payout_free (&po);
    zhashx_destroy (&self->payouts);
    zlistx_destroy (&self->fifo);
    free (self);
    *self_p = NULL;
}

size_t
sch_payouts_size (sch_payouts_t *self)
{
    return zhashx_size (self->payouts);
}

static void
s_payout_send (sch_payouts_t *self, s_payout_t *po)
{
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    P2c2r__SettleRequest req = P2C2R__SETTLE_REQUEST__INIT;
    P2c2r__SettleReverse rev = P2C2R__SETTLE_REVERSE__INIT;
    if (po->reverse) {
        rev.task_id = po->id;
        rev.reason = "lost validation";
        msg.msg_case = P2C2R__INTERNAL__MSG_SETTLE_REVERSE;
        msg.settle_reverse = &rev;
    }
    else {
        req.task_id = po->id;
        req.gamer_account = 0;          //  the treasury pays
        req.peer_account = po->peer_account;
        req.task_type = (char *) p2c_task_types () [po->type].name;
        req.billed_us = po->billed_us;
        req.compute_us = po->compute_us;
        req.observed_us = po->observed_us;
        msg.msg_case = P2C2R__INTERNAL__MSG_SETTLE_REQUEST;
        msg.settle_request = &req;
    }
    self->send (self->send_arg, "ledger", &msg);
    po->tries++;
}

void
sch_payouts_add (sch_payouts_t *self, const sch_payout_run_t *run, bool reverse,
                 int64_t now_us)
{
    char key [SCH_MAX_ID + 32];
    snprintf (key, sizeof key, "%s%s", reverse ? "r:" : "", run->run_id);
    if (zhashx_lookup (self->payouts, key))
        return;
    s_payout_t *po = (s_payout_t *) zmalloc (sizeof (s_payout_t));
    po->key = p2c_strdup (key);
    po->id = p2c_strdup (run->run_id);
    po->check = run->check;
    po->reverse = reverse;
    po->peer_account = run->peer_account;
    po->type = run->type;
    po->billed_us = run->billed_us;
    po->compute_us = run->compute_us;
    po->observed_us = run->observed_us;
    po->next_us = now_us + self->retry_us;
    po->handle = zlistx_add_end (self->fifo, po);
    zhashx_insert (self->payouts, key, po);
    self->stats->payouts_pending++;
    if (reverse)
        self->stats->reversals++;
    else
        self->stats->check_payouts++;
    s_payout_send (self, po);
}

static void
s_payout_forget (sch_payouts_t *self, s_payout_t *po)
{
    zlistx_delete (self->fifo, po->handle);
    zhashx_delete (self->payouts, po->key);
    self->stats->payouts_pending--;
    s_payout_free (&po);
}

bool
sch_payouts_ack (sch_payouts_t *self, const P2c2r__SettleAck *ack)
{
    if (!ack->task_id)
        return false;
    char key [SCH_MAX_ID + 32];
    snprintf (key, sizeof key, "%s%.*s", ack->reversed ? "r:" : "", SCH_MAX_ID + 16,
              ack->task_id);
    s_payout_t *po = (s_payout_t *) zhashx_lookup (self->payouts, key);
    //  a plain ack answers a payout only when that pays a check run: the
    //  gamer's own run is settled under the same id as the gamer's task
    if (!po || (!ack->reversed && !po->check))
        return false;
    if (ack->ok) {
        self->stats->payouts_done++;
        log_info ("%s task=%s account=%" PRId64 " amount_pico=%" PRId64,
                  po->reverse ? "earning reversed" : "check run paid by the treasury", po->id,
                  po->peer_account, ack->peer_earning_pico);
        s_payout_forget (self, po);
        return true;
    }
    //  a reversal may overtake its task's settlement: the cron resends it;
    //  anything else refused is refused for good
    if (!po->reverse || po->tries >= SCH_PAYOUT_TRIES) {
        self->stats->payouts_dropped++;
        log_warn ("payout refused task=%s reverse=%d", po->id, po->reverse);
        s_payout_forget (self, po);
    }
    return true;
}

void
sch_payouts_cron (sch_payouts_t *self, int64_t now_us)
{
    s_payout_t *po;
    while ((po = (s_payout_t *) zlistx_first (self->fifo)) && po->next_us <= now_us) {
        if (po->tries >= SCH_PAYOUT_TRIES) {
            self->stats->payouts_dropped++;
            log_warn ("payout never acked task=%s reverse=%d", po->id, po->reverse);
            s_payout_forget (self, po);
            continue;
        }
        s_payout_send (self, po);
        self->stats->settle_retries++;
        po->next_us = now_us + self->retry_us;
        zlistx_move_end (self->fifo, po->handle);
    }
}

//  --------------------------------------------------------------------------
//  Self-test

typedef struct {
    int sent;
    int last_case;
    char last_id [64];
    int64_t last_gamer;
} s_capture_t;

static void
s_capture (void *arg, const char *dest, const P2c2r__Internal *msg)
{
    s_capture_t *c = (s_capture_t *) arg;
    assert (!strcmp (dest, "ledger"));
    c->sent++;
    c->last_case = msg->msg_case;
    if (msg->msg_case == P2C2R__INTERNAL__MSG_SETTLE_REQUEST) {
        snprintf (c->last_id, sizeof c->last_id, "%s", msg->settle_request->task_id);
        c->last_gamer = msg->settle_request->gamer_account;
    }
    else
        snprintf (c->last_id, sizeof c->last_id, "%s", msg->settle_reverse->task_id);
}

void
sch_payouts_test (bool verbose)
{
    (void) verbose;
    sch_stats_t stats;
    memset (&stats, 0, sizeof stats);
    s_capture_t cap = { 0, 0, "", -1 };
    sch_payouts_t *payouts = sch_payouts_new (1000, s_capture, &cap, &stats);
    P2C_CHECK (payouts && sch_payouts_size (payouts) == 0);
    //  a check run paid by the treasury: a SettleRequest with no gamer
    sch_payout_run_t run = { "t1#c1", true, 12, 0, 100, 100, 150 };
    sch_payouts_add (payouts, &run, false, 0);
    P2C_CHECK (cap.sent == 1 && cap.last_case == P2C2R__INTERNAL__MSG_SETTLE_REQUEST
               && !strcmp (cap.last_id, "t1#c1") && cap.last_gamer == 0);
    P2C_CHECK (stats.check_payouts == 1 && stats.payouts_pending == 1);
    //  the same payout again is nothing
    sch_payouts_add (payouts, &run, false, 0);
    P2C_CHECK (cap.sent == 1 && sch_payouts_size (payouts) == 1);
    //  resent when unacked, at the interval
    sch_payouts_cron (payouts, 999);
    P2C_CHECK (cap.sent == 1);
    sch_payouts_cron (payouts, 1000);
    P2C_CHECK (cap.sent == 2 && stats.settle_retries == 1);
    //  an ack of another id is not ours; the right one ends it
    P2c2r__SettleAck ack = P2C2R__SETTLE_ACK__INIT;
    ack.task_id = "t1";
    ack.ok = true;
    P2C_CHECK (!sch_payouts_ack (payouts, &ack));
    ack.task_id = "t1#c1";
    P2C_CHECK (sch_payouts_ack (payouts, &ack));
    P2C_CHECK (stats.payouts_done == 1 && stats.payouts_pending == 0
               && sch_payouts_size (payouts) == 0);
    //  the gamer's own run is acked as the gamer's settlement, never here
    sch_payout_run_t own = { "t2", false, 12, 0, 100, 100, 150 };
    sch_payouts_add (payouts, &own, false, 0);
    ack.task_id = "t2";
    P2C_CHECK (!sch_payouts_ack (payouts, &ack) && sch_payouts_size (payouts) == 1);
    //  a reversal refused is kept (it may have overtaken its settlement)
    sch_payout_run_t lost = { "t3", false, 66, 0, 100, 100, 150 };
    sch_payouts_add (payouts, &lost, true, 0);
    P2C_CHECK (cap.last_case == P2C2R__INTERNAL__MSG_SETTLE_REVERSE && stats.reversals == 1);
    ack.task_id = "t3";
    ack.reversed = true;
    ack.ok = false;
    P2C_CHECK (sch_payouts_ack (payouts, &ack) && sch_payouts_size (payouts) == 2);
    //  a payout never acked is given up after SCH_PAYOUT_TRIES sends
    for (int64_t now = 1000; now <= 1000 * (SCH_PAYOUT_TRIES + 1); now += 1000)
        sch_payouts_cron (payouts, now);
    P2C_CHECK (sch_payouts_size (payouts) == 0 && stats.payouts_dropped == 2
               && stats.payouts_pending == 0);
    sch_payouts_add (payouts, &run, false, 0);
    sch_payouts_destroy (&payouts);
    P2C_CHECK (payouts == NULL);
    sch_payouts_destroy (&payouts);
}
