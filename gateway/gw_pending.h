/*  The pending table: one entry per accepted submit that has not been
    answered yet (docs/internals.md, Terminal replies). Whoever answers a
    task first takes its entry out (a Deliver from the scheduler, the
    deadline guard, or the gamer's disconnect); the others then find
    nothing, which is how "exactly one reply" is kept. */
#ifndef GW_PENDING_H_INCLUDED
#define GW_PENDING_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char *task_id;              //  made by this gateway
    uint64_t conn;              //  the gamer's connection
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
int gw_pending_add (gw_pending_t *self, const char *task_id, uint64_t conn,
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

void gw_pending_test (bool verbose);

#endif
