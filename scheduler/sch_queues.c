/*  Where tasks wait and which peer gets which: per gamer and type a FIFO of
    queued tasks, per type a ring of the gamers with queued tasks (served
    round robin, so one gamer cannot starve the others), the choice of the
    best free peer for a task, and the pull of queued work by a peer that
    frees a slot. See docs/scheduler.md, "Assignment" and "Fairness". */
#include "sch_internal.h"
#include "p2c_log.h"
#include "p2c_test.h"

//  What a queued task holds that its submitter chose: the count limits
//  alone let 40 queued 5 MiB tasks take 418 MiB
static size_t
s_task_bytes (const sch_task_t *task)
{
    return task->payload_size + (task->params_json ? strlen (task->params_json) : 0);
}

void
sch_queues_put (sch_core_t *self, sch_task_t *task, bool front, int64_t now_us)
{
    sch_gamer_t *g = task->gamer;
    int t = task->type;
    if (!g->queue [t])
        g->queue [t] = zlistx_new ();
    task->queue_handle = front ? zlistx_add_start (g->queue [t], task)
                               : zlistx_add_end (g->queue [t], task);
    g->queued++;
    size_t bytes = s_task_bytes (task);
    g->queued_bytes += bytes;
    self->stats.queued_bytes += bytes;
    if (!g->ring_handle [t])
        g->ring_handle [t] = zlistx_add_end (self->ring [t], g);
    sch_tasks_set_state (self, task, SCH_QUEUED);
    sch_tasks_arm (self, task, now_us);
}

void
sch_queues_take (sch_core_t *self, sch_task_t *task)
{
    if (!task->queue_handle)
        return;
    sch_gamer_t *g = task->gamer;
    zlistx_delete (g->queue [task->type], task->queue_handle);
    task->queue_handle = NULL;
    g->queued--;
    size_t bytes = s_task_bytes (task);
    g->queued_bytes -= bytes;
    self->stats.queued_bytes -= bytes;
    if (zlistx_size (g->queue [task->type]) == 0 && g->ring_handle [task->type]) {
        zlistx_delete (self->ring [task->type], g->ring_handle [task->type]);
        g->ring_handle [task->type] = NULL;
    }
}

typedef struct {
    sch_core_t *core;
    sch_task_t *task;
    const char *avoid;          //  a peer key to pass over, or NULL
    const char *region;         //  only peers of this region, or NULL
    bool trusted;               //  only peers past their new or doubted time
} s_pick_t;

static bool
s_pick_ok (void *arg, const sch_index_entry_t *entry)
{
    s_pick_t *pick = (s_pick_t *) arg;
    sch_peer_t *peer = (sch_peer_t *) entry->item;
    if (pick->avoid && !strcmp (peer->key, pick->avoid))
        return false;
    if (pick->region && strcmp (peer->region, pick->region))
        return false;
    if (pick->task->tile_run && !sch_frames_capable (peer, pick->task->type))
        return false;
    if (pick->trusted && sch_reputation_doubted (pick->core, peer->rep))
        return false;
    return sch_validation_may_run (pick->task, peer);
}

//  `avoid` names a peer to take only when no other one is free; a
//  validated task never goes to a peer (account, owner, address block) that
//  ran it, and no task to a peer of its gamer's (sch_validation_may_run); a
//  tile (or its check) only to a peer that renders tiles.
sch_peer_t *
sch_queues_choose (sch_core_t *self, sch_task_t *task, const char *avoid)
{
    sch_index_t *index = self->index [task->type];
    sch_index_entry_t *e = NULL;
    //  Same region first: the best peers of the task's region among the
    //  first SCH_INDEX_LOOK in best-first order, then anyone
    if (task->region && *task->region) {
        s_pick_t pick = { self, task, avoid, task->region, false };
        e = sch_index_best (index, s_pick_ok, &pick, SCH_INDEX_LOOK);
        if (e)
            return (sch_peer_t *) e->item;
    }
    {
        //  a check run goes to a peer of established reputation when one is
        //  free: a new account (a colluder's fresh one) checks nobody first
        s_pick_t pick = { self, task, avoid, NULL, task->is_check };
        e = sch_index_best (index, s_pick_ok, &pick, SCH_INDEX_LOOK);
        if (!e && pick.trusted) {
            pick.trusted = false;
            e = sch_index_best (index, s_pick_ok, &pick, SCH_INDEX_LOOK);
        }
        if (!e && avoid) {
            pick.avoid = NULL;
            e = sch_index_best (index, s_pick_ok, &pick, SCH_INDEX_LOOK);
        }
    }
    return e ? (sch_peer_t *) e->item : NULL;
}

//  The first task of the gamer's queue of type t that this peer may run,
//  NULL when none among the first SCH_QUEUE_LOOK. A check run never goes
//  to a peer that ran its task: one at the head must not keep this peer
//  idle while a task behind it could run here (the check runs of the
//  treasury queue up behind each other, and a peer pulls only when it
//  frees a slot); nor does a tile to a peer of an older kernel
static sch_task_t *
s_first_runnable (sch_gamer_t *g, int t, sch_peer_t *peer)
{
    int depth = 0;
    for (sch_task_t *q = (sch_task_t *) zlistx_first (g->queue [t]);
         q && depth < SCH_QUEUE_LOOK;
         q = (sch_task_t *) zlistx_next (g->queue [t]), depth++)
        if (sch_validation_may_run (q, peer)
            && (!q->tile_run || sch_frames_capable (peer, t)))
            return q;
    return NULL;
}

//  Per type the peer runs, the head task of the next gamer in that type's
//  ring (round robin across gamers); across types, the oldest of those
//  heads.
void
sch_queues_pull (sch_core_t *self, sch_peer_t *peer, int64_t now_us)
{
    while (peer->busy < peer->slots && !peer->rep->banned && !peer->paused) {
        sch_task_t *best = NULL;
        for (size_t t = 0; t < self->ntypes; t++) {
            if (!(peer->types & (1u << t)) || !zlistx_size (self->ring [t]))
                continue;
            int looked = 0;
            for (sch_gamer_t *g = (sch_gamer_t *) zlistx_first (self->ring [t]);
                 g && looked < SCH_RING_LOOK;
                 g = (sch_gamer_t *) zlistx_next (self->ring [t]), looked++) {
                sch_task_t *head = s_first_runnable (g, (int) t, peer);
                if (!head)
                    continue;       //  another gamer's task may run here
                if (!best || head->seq < best->seq)
                    best = head;
                break;
            }
        }
        if (!best)
            break;
        sch_gamer_t *g = best->gamer;
        int t = best->type;
        sch_queues_take (self, best);
        //  served: to the back of the ring
        if (g->ring_handle [t])
            zlistx_move_end (self->ring [t], g->ring_handle [t]);
        sch_tasks_run (self, best, peer, now_us);
    }
}

bool
sch_queues_place (sch_core_t *self, sch_task_t *task, int64_t now_us)
{
    sch_peer_t *peer = sch_queues_choose (self, task, NULL);
    if (peer) {
        sch_tasks_run (self, task, peer, now_us);
        return true;
    }
    //  the task counts itself among the queued already
    size_t bytes = s_task_bytes (task);
    if (self->stats.queued > self->config.queue_max
        || task->gamer->queued >= self->config.gamer_queue_max
        || bytes > self->config.gamer_queue_max_bytes - task->gamer->queued_bytes
        || bytes > self->config.queue_max_bytes - self->stats.queued_bytes)
        return false;
    sch_queues_put (self, task, false, now_us);
    log_debug ("task queued id=%s type=%s queued=%zu", task->id, sch_type (task->type)->name,
               self->stats.queued);
    return true;
}

//  --------------------------------------------------------------------------
//  Self-test: placing, queueing, the peer's pull round robin across gamers

//  A submit of gamer `account` with a payload of `size` bytes
static void
s_submit_sized (sch_core_t *core, const char *id, int64_t account, size_t size)
{
    uint8_t *payload = (uint8_t *) zmalloc (size);
    P2c2r__Session gamer = P2C2R__SESSION__INIT;
    gamer.gateway = "gw-g";
    gamer.conn = 1;
    P2c2r__Submit submit = P2C2R__SUBMIT__INIT;
    submit.task_type = "encryption";
    submit.params_json = "{\"n\":1}";
    submit.client_ref = (char *) id;        //  one per task: a repeat would join it
    submit.payload.data = payload;
    submit.payload.len = size;
    P2c2r__TaskSubmit ts = P2C2R__TASK_SUBMIT__INIT;
    ts.task_id = (char *) id;
    ts.gamer = &gamer;
    ts.gamer_account = account;
    ts.submit = &submit;
    ts.deadline_ms = 30000;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_TASK_SUBMIT;
    msg.task_submit = &ts;
    sch_core_handle (core, "gw-g", &msg, 0);
    free (payload);
}

//  The byte budgets: one gamer's queue, then everyone's
static void
s_test_bytes (void)
{
    sch_selftest_t cap;
    sch_core_config_t config;
    sch_core_config_default (&config);
    config.validation = SCH_VAL_NONE;
    config.funds_check = false;
    config.cache_max_entries = 0;
    config.gamer_queue_max_bytes = 3 * 1024 * 1024 + 100;
    config.queue_max_bytes = 5 * 1024 * 1024 + 100;
    sch_core_t *core = sch_selftest_core (&cap, &config);
    sch_selftest_peer_up (core, "gw-p", 1, 1, "encryption", 11, 0);
    const size_t mib = 1024 * 1024;
    //  Gamer 1: one runs, three queue (3 MiB), the fifth is refused
    s_submit_sized (core, "g1-0", 1, mib);
    for (int i = 1; i <= 3; i++) {
        char id [16];
        snprintf (id, sizeof id, "g1-%d", i);
        s_submit_sized (core, id, 1, mib);
        P2C_CHECK (sch_selftest_task (core, id) != NULL);
    }
    sch_task_t *t = sch_selftest_task (core, "g1-1");
    P2C_CHECK (t && t->state == SCH_QUEUED && t->gamer->queued_bytes >= 3 * mib);
    s_submit_sized (core, "g1-4", 1, mib);
    P2C_CHECK (sch_selftest_task (core, "g1-4") == NULL && !cap.last_ok
               && !strcmp (cap.last_code, "unavailable"));
    //  ... but a small task of the same gamer still fits
    s_submit_sized (core, "g1-small", 1, 10);
    P2C_CHECK (sch_selftest_task (core, "g1-small") != NULL);
    //  Gamer 2: two more MiB fill the global budget; the third is refused
    s_submit_sized (core, "g2-1", 2, mib);
    s_submit_sized (core, "g2-2", 2, mib);
    P2C_CHECK (sch_selftest_task (core, "g2-2") != NULL);
    P2C_CHECK (core->stats.queued_bytes <= config.queue_max_bytes);
    s_submit_sized (core, "g2-3", 2, mib);
    P2C_CHECK (sch_selftest_task (core, "g2-3") == NULL && !strcmp (cap.last_code, "unavailable"));
    //  A finished task lets the next one run: its bytes leave the queue
    size_t before = core->stats.queued_bytes;
    sch_selftest_result (core, "g1-0", "{}", 10, 10);
    P2C_CHECK (core->stats.queued_bytes < before);
    char *json = sch_core_stats_json (core, 20);
    P2C_CHECK (json && strstr (json, "\"queued_bytes\":"));
    free (json);
    sch_core_destroy (&core);
}

void
sch_queues_test (bool verbose)
{
    (void) verbose;
    sch_selftest_t cap;
    sch_core_config_t config;
    sch_core_config_default (&config);
    config.validation = SCH_VAL_NONE;
    config.funds_check = false;
    config.cache_max_entries = 0;
    config.gamer_queue_max = 3;
    sch_core_t *core = sch_selftest_core (&cap, &config);
    sch_selftest_peer_up (core, "gw-p", 1, 1, "encryption", 11, 0);
    sch_peer_t *peer = (sch_peer_t *) zhashx_lookup (core->peers, "gw-p/1");
    P2C_CHECK (peer);
    //  gamer 1 fills the slot and queues two more; gamer 2 queues one
    sch_selftest_submit (core, "gw-g", "a1", "encryption", 1, 0);
    sch_selftest_submit (core, "gw-g", "a2", "encryption", 1, 1);
    sch_selftest_submit (core, "gw-g", "a3", "encryption", 1, 2);
    sch_selftest_submit (core, "gw-g", "b1", "encryption", 2, 3);
    sch_task_t *a1 = sch_selftest_task (core, "a1");
    sch_task_t *a2 = sch_selftest_task (core, "a2");
    P2C_CHECK (a1 && a1->state == SCH_RUNNING && a2 && a2->state == SCH_QUEUED);
    P2C_CHECK (core->stats.queued == 3 && a2->gamer->queued == 2);
    int type = a1->type;
    P2C_CHECK (zlistx_size (core->ring [type]) == 2);
    //  no free peer for another task
    P2C_CHECK (sch_queues_choose (core, a2, NULL) == NULL);
    //  a gamer's own queue has a limit; the refused task is answered
    sch_selftest_submit (core, "gw-g", "a4", "encryption", 1, 4);
    sch_selftest_submit (core, "gw-g", "a5", "encryption", 1, 4);
    P2C_CHECK (sch_selftest_task (core, "a5") == NULL && !cap.last_ok
               && !strcmp (cap.last_code, "unavailable"));
    //  each freed slot pulls the next gamer's head: a2, then b1, then a3
    sch_selftest_result (core, "a1", "{}", 10, 10);
    P2C_CHECK (a2->state == SCH_RUNNING && a2->peer == peer);
    sch_selftest_result (core, "a2", "{}", 10, 20);
    sch_task_t *b1 = sch_selftest_task (core, "b1");
    P2C_CHECK (b1 && b1->state == SCH_RUNNING);
    //  gamer 2 had nothing more: out of the ring
    P2C_CHECK (zlistx_size (core->ring [type]) == 1 && b1->gamer->ring_handle [type] == NULL);
    sch_selftest_result (core, "b1", "{}", 10, 30);
    sch_task_t *a3 = sch_selftest_task (core, "a3");
    P2C_CHECK (a3 && a3->state == SCH_RUNNING);
    //  taking a queued task out: the last one of its gamer leaves the ring
    sch_task_t *a4 = sch_selftest_task (core, "a4");
    P2C_CHECK (a4 && a4->state == SCH_QUEUED);
    sch_queues_take (core, a4);
    P2C_CHECK (a4->queue_handle == NULL && zlistx_size (core->ring [type]) == 0);
    sch_queues_put (core, a4, true, 40);
    P2C_CHECK (a4->state == SCH_QUEUED && zlistx_size (core->ring [type]) == 1);
    P2C_CHECK (a4->gamer->queued_bytes == strlen (a4->params_json) + a4->payload_size
               && core->stats.queued_bytes == a4->gamer->queued_bytes);
    //  a second peer: a queued task's best choice, which a running one avoids
    sch_selftest_peer_up (core, "gw-q", 2, 1, "encryption", 12, 50);
    P2C_CHECK (a4->state == SCH_RUNNING && a4->peer != peer);
    P2C_CHECK (core->stats.queued_bytes == 0 && a4->gamer->queued_bytes == 0);
    sch_core_destroy (&core);
    s_test_bytes ();
}
