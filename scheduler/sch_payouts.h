/*  Money the ledger must move outside a gamer's settlement: a valid check
    run paid by the treasury, or a paid result's earning reversed after it
    lost a validation. Each payout is resent until the ledger acks it (the
    ledger is idempotent on the id), given up after SCH_PAYOUT_TRIES sends,
    then forgotten. Counters go to the core's sch_stats_t. */
#ifndef SCH_PAYOUTS_H_INCLUDED
#define SCH_PAYOUTS_H_INCLUDED

#include "sch_core.h"

#define SCH_PAYOUT_TRIES    30      //  sends before a payout is given up

typedef struct _sch_payouts_t sch_payouts_t;

//  The run a payout is about
typedef struct {
    const char *run_id;         //  task id of the run
    bool check;                 //  a check run (else the gamer's own run)
    int64_t peer_account;       //  who ran it
    int type;                   //  catalogue index
    uint64_t billed_us, compute_us, observed_us;
} sch_payout_run_t;

//  retry_us: the resend interval; stats: the core's counters, borrowed.
sch_payouts_t *sch_payouts_new (int64_t retry_us, sch_send_fn *send, void *arg,
                                sch_stats_t *stats);
void sch_payouts_destroy (sch_payouts_t **self_p);

//  Asks the ledger to pay the run from the treasury, or (reverse) to take
//  its earning back; nothing when that payout is under way already.
void sch_payouts_add (sch_payouts_t *self, const sch_payout_run_t *run, bool reverse,
                      int64_t now_us);

//  The ledger's answer; false when the ack is for no payout of ours (a
//  gamer's settlement).
bool sch_payouts_ack (sch_payouts_t *self, const P2c2r__SettleAck *ack);

//  Resends the payouts whose time has come; gives up those sent too often.
void sch_payouts_cron (sch_payouts_t *self, int64_t now_us);

//  Payouts waiting for the ledger's ack
size_t sch_payouts_size (sch_payouts_t *self);

void sch_payouts_test (bool verbose);

#endif
