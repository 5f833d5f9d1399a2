/*  The pending table: one entry per accepted submit that has not been
    answered yet (docs/internals.md, Terminal replies). Whoever answers a
    task first takes its entry out (a Deliver from the scheduler, the
    deadline guard, or the gamer's disconnect); the others then find
    nothing, which is how "exactly one reply" is kept.
    It also keeps the failures this gateway reported on its own (the
    guard's timeout) until the ledger acknowledges them: a task reported
    failed is never charged, so the ledger must hear of every one. */
#ifndef GW_PENDING_H_INCLUDED
#define GW_PENDING_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char *task_id;              //  made by this gateway
    uint64_t conn;              //  the gamer's connection
    int64_t account;            //  the gamer's account
    char *client_ref;           //  echoed in the reply
    int64_t guard_ms;           //  monotonic time the guard answers timeout
    int64_t start_ms;           //  when the submit was accepted (latency metric)
} gw_pending_entry_t;

void gw_pending_entry_destroy (gw_pending_entry_t **self_p);

typedef struct _gw_pending_t gw_pending_t;

gw_pending_t *gw_pending_new (void);
void gw_pending_destroy (gw_pending_t **self_p);

//  Records a task. 0, or -1 when the task id is already pending (a bug in
//  the id generator, which the caller answers as unavailable).
int gw_pending_add (gw_pending_t *self, const char *task_id, uint64_t conn, int64_t account,
                    const char *client_ref, int64_t guard_ms);

//  Takes a task's entry out; the caller destroys it. NULL when the task is
//  not pending (already answered, or never ours).
gw_pending_entry_t *gw_pending_take (gw_pending_t *self, const char *task_id);

//  Takes out every entry whose guard time is at or before now_ms. Returns
//  a list owning them (destroy it), empty when none expired.
zlistx_t *gw_pending_expire (gw_pending_t *self, int64_t now_ms);

//  Forgets every task of a connection (the gamer left); returns how many.
size_t gw_pending_drop_conn (gw_pending_t *self, uint64_t conn);

size_t gw_pending_size (gw_pending_t *self);

//  A failure reported to a gamer, kept until the ledger acknowledges it.
typedef struct {
    char *task_id;
    int64_t account;            //  the gamer's account
    char *code;                 //  the error code the gamer got
    int64_t next_ms;            //  when to send it (again)
} gw_failed_t;

//  At most this many failures wait for the ledger; beyond, a new one is
//  refused (logged): a ledger away that long is an outage to page about.
#define GW_FAILED_MAX 65536

//  Records a failure to send now; 0, or -1 when the table is full. A task
//  already recorded keeps its entry (0).
int gw_pending_fail_add (gw_pending_t *self, const char *task_id, int64_t account,
                         const char *code, int64_t now_ms);

//  The failures due at now_ms (borrowed: valid until the next call that
//  changes the table), each next due resend_ms later. Destroy the list.
zlistx_t *gw_pending_fail_due (gw_pending_t *self, int64_t now_ms, int64_t resend_ms);

//  The ledger acknowledged a failure: forgotten. True when it was there.
bool gw_pending_fail_ack (gw_pending_t *self, const char *task_id);

size_t gw_pending_fail_size (gw_pending_t *self);

void gw_pending_test (bool verbose);

#endif
