/*  The replies the scheduler sent to gamers' gateways and keeps until each
    gateway confirms it (DeliverAck): a Deliver lost with the broker (a
    restart, a full queue) is sent again every retry interval while the
    gamer's gateway may still answer from it, that is until the task's
    deadline plus the gateway's guard grace; the gateway drops duplicates by
    task id and acks them too. Bounded in entries and bytes: past either
    bound the oldest reply is given up (its gamer's gateway answers from its
    deadline guard, and the ledger refunds a settled task reported failed).
    A gateway lost takes its replies with it: nobody is left to receive
    them, so a charged result among them is refunded instead (TaskFailed
    to the ledger, code gateway_lost, sent again until the ledger acks it):
    a settled result reaches its gamer or is not charged. */
#ifndef SCH_OUTBOX_H_INCLUDED
#define SCH_OUTBOX_H_INCLUDED

#include "sch_core.h"

typedef struct _sch_outbox_t sch_outbox_t;

//  Counters, for logs and tests
typedef struct {
    uint64_t sent;              //  replies kept
    uint64_t acked;             //  confirmed by their gateway
    uint64_t resent;            //  sends again
    uint64_t expired;           //  given up at their keep time, unconfirmed
    uint64_t evicted;           //  given up to stay within the bounds
    uint64_t lost_gateway;      //  given up with their gateway
    uint64_t refunds;           //  charged results refunded for a lost gateway
    uint64_t refunds_acked;     //  ... that the ledger acknowledged
} sch_outbox_stats_t;

//  How long a refund is sent again while the ledger does not ack it
#define SCH_OUTBOX_REFUND_KEEP_MS   (3600 * 1000LL)

//  retry_us: the resend interval; max_entries and max_bytes bound what is kept
sch_outbox_t *sch_outbox_new (int64_t retry_us, size_t max_entries, size_t max_bytes,
                              sch_send_fn *send, void *arg);
void sch_outbox_destroy (sch_outbox_t **self_p);

//  Sends msg (a Deliver of task_id) to the gateway node and keeps a copy
//  until it is acked or until_us passes. A task already kept is replaced.
//  account: the gamer's, when the reply is a charged result (refunded if
//  the gateway is lost before it confirms), else 0.
void sch_outbox_send (sch_outbox_t *self, const char *gateway, const char *task_id,
                      const P2c2r__Internal *msg, int64_t account, int64_t until_us);

//  A charged result whose gateway is lost already: the ledger refunds it
//  (sent now, and again until acked).
void sch_outbox_refund (sch_outbox_t *self, const char *task_id, int64_t account);

//  The gateway confirmed the task's reply; false when none was kept.
bool sch_outbox_ack (sch_outbox_t *self, const char *task_id);

//  The ledger acknowledged a refund (SettleAck.failed); false when none
//  was kept.
bool sch_outbox_refund_ack (sch_outbox_t *self, const char *task_id);

//  True when a Deliver of task_id is still kept (its gateway has not
//  confirmed it); *account_p (may be NULL) gets its charged gamer, else 0.
bool sch_outbox_kept (sch_outbox_t *self, const char *task_id, int64_t *account_p);

//  The kept Deliver of task_id is no longer refunded if its gateway is lost
//  (its result reached the gamer another way: a resubmission by client_ref).
void sch_outbox_uncharge (sch_outbox_t *self, const char *task_id);

//  The gateway is lost: its replies go, its charged results are refunded.
void sch_outbox_gateway_down (sch_outbox_t *self, const char *gateway);

//  Sends again what is due, gives up what expired.
void sch_outbox_cron (sch_outbox_t *self, int64_t now_us);

size_t sch_outbox_size (sch_outbox_t *self);
size_t sch_outbox_bytes (sch_outbox_t *self);
const sch_outbox_stats_t *sch_outbox_stats (sch_outbox_t *self);

void sch_outbox_test (bool verbose);

#endif
