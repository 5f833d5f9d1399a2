/*  The ledger's settlement: a batch of SettleRequest / SettleReverse items
    settled in one call of the SQL function ledger_settle (migration 004)
    over arrays, prepared once per connection and run in autocommit: one
    round trip and one commit per batch, and a thousand tasks cost little
    more than one. Idempotence comes from the unique task_id of journal_tx
    (INSERT ... ON CONFLICT DO NOTHING), which also serialises two ledgers
    settling the same task at once. */
#ifndef LED_SETTLE_H_INCLUDED
#define LED_SETTLE_H_INCLUDED

#include "led_store.h"

//  One settlement request and, after led_settle_batch, its outcome.
typedef enum {
    LED_SETTLE_PENDING = 0,     //  not decided: the batch failed, send no ack
    LED_SETTLE_NEW,             //  written now
    LED_SETTLE_REPLAY,          //  settled before: stored amounts, nothing written
    LED_SETTLE_REJECTED         //  refused for good (error says why): negative ack
} led_settle_status_t;

typedef struct {
    //  Input (owned strings)
    char *task_id;
    char *task_type;
    int64_t gamer_account;
    int64_t peer_account;
    uint64_t billed_us;
    uint64_t compute_us;
    uint64_t observed_us;
    char *reply_to;             //  node id to ack (the server's business)
    bool reverse;               //  a SettleReverse: take the settled task's
                                //  earning back (only task_id and reason count)
    char *reason;               //  of a reversal, kept in the reversals table;
                                //  of a failure, its error code
    bool failed;                //  a TaskFailed: the gamer was told the task
                                //  failed (only task_id, gamer_account and
                                //  reason count); a settlement of it is refunded
    //  Output
    led_settle_status_t status;
    p2c_split_t split;          //  amounts charged (stored ones for a replay)
    const char *error;          //  static text when rejected
} led_settle_t;

//  Frees the strings an item holds (not the item).
void led_settle_clear (led_settle_t *item);

//  Prepares the settlement statement on the store's new connection (a
//  prepared statement lives as long as its connection) and forgets the
//  rates last seen in force. 0, or -1 (logged).
int led_settle_prepare (led_store_t *store);

//  Settles items in one transaction (one statement), at the rates in force
//  at its start. Returns 0 after COMMIT succeeded (each item NEW, REPLAY or
//  REJECTED), -1 when the transaction failed (all items left PENDING; the
//  connection is dropped when it broke). Reversals, rare, run after it in a
//  transaction of their own: when only that one fails, the reversals are
//  left PENDING and the settlements keep their outcome (0).
//  gamer_account 0 means the treasury pays (a validation run): the task row
//  names the treasury as payer, its charge is the peer's earning, no fee, no
//  rates row (the audit's rates check is for gamer charges).
//  A reverse item takes a settled task's peer earning back to the treasury,
//  once per task (table reversals; a replay answers the stored amount); never
//  more than the peer's balance, so that an account already paid out does
//  not go negative. Its split.peer_earning is the amount taken back. A task
//  not settled (yet) is REJECTED with "not settled".
//  A failed item records that the gamer was told the task failed (table
//  failed_tasks, once per task) and, when the task is settled, refunds the
//  gamer's charge once (table refunds): the gamer gets its charge back, the
//  fee account gives its fee back, the treasury the rest; the peer keeps its
//  earning. Its split.gamer_charge is the amount refunded (0: not settled,
//  or free). Failures run last, in a transaction of their own that waits
//  for settlements in progress (a share lock on tasks), and every batch of
//  settlements looks for failures recorded of its tasks afterwards: a
//  settlement that races a failure, in any order and on any ledger, is
//  refunded. A failure whose gamer_account is not the task's payer refunds
//  nothing (REJECTED).
//  The gamers whose balance changed are in led_store_balances.
int led_settle_batch (led_store_t *store, led_settle_t *items, size_t count);

//  True for a task id we accept: 1..128 printable ASCII characters.
bool led_settle_valid_task_id (const char *task_id);

//  Self-test; needs P2C2R_TEST_DB (fails loudly without it).
void led_settle_test (bool verbose);

#endif
