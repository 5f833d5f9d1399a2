/*  A task's life in the scheduler core: it runs on a peer, is retried
    elsewhere after a lost peer or an expired attempt, fails with one
    terminal reply, or settles with the ledger; the timer heap wakes it
    when it needs attention (balance wait, deadline, attempt end,
    settlement retry). See docs/scheduler.md. */
#include "sch_internal.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <inttypes.h>

void
sch_tasks_free (sch_task_t **task_p)
{
    sch_task_t *task = *task_p;
    free (task->id);
    free (task->params_json);
    free (task->payload);
    free (task->client_ref);
    zlistx_destroy (&task->joiners);
    free (task->region);
    free (task->gamer_id);
    free (task->gamer_block);
    free (task->gamer_owner);
    free (task->cache_key);
    free (task->last_peer);
    free (task->result_json);
    free (task->blob);
    //  only at sch_core_destroy: a forgotten task has let its frame go
    if (task->frame && !task->is_tile)
        sch_frames_free (&task->frame);
    free (task);
    *task_p = NULL;
}

//  --------------------------------------------------------------------------
//  Sending

void
sch_tasks_deliver (sch_core_t *self, sch_task_t *task, P2c2r__TaskReply *reply)
{
    assert (!task->is_check && task->gw);
    P2c2r__Session gamer = P2C2R__SESSION__INIT;
    gamer.gateway = task->gw->id;
    gamer.conn = task->gamer_conn;
    P2c2r__Deliver deliver = P2C2R__DELIVER__INIT;
    deliver.gamer = &gamer;
    deliver.reply = reply;
    reply->task_id = task->id;
    reply->client_ref = task->client_ref;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_DELIVER;
    msg.deliver = &deliver;
    //  a charged result is refunded when its gamer's gateway is lost,
    //  unless repeats of its client_ref joined it (they receive it)
    int64_t account = reply->ok && reply->cost_pico > 0 && !sch_task_joined (task)
                    ? task->gamer_account : 0;
    if (task->gw->down) {
        if (account > 0)
            sch_outbox_refund (self->outbox, task->id, account);
    }
    else
        //  kept and sent again until the gateway confirms it, while its
        //  deadline guard has not answered yet
        sch_outbox_send (self->outbox, task->gw->id, task->id, &msg, account,
                         task->deadline_us + SCH_DELIVER_KEEP_MS * 1000);
    sch_refs_answered (self, task, reply, task->gw->down);
    sch_refs_deliver_joiners (self, task, reply);
}

void
sch_tasks_deliver_error (sch_core_t *self, sch_task_t *task, sch_err_t err, const char *text)
{
    if (task->is_check)
        return;         //  nobody waits for a check
    P2c2r__TaskReply reply = P2C2R__TASK_REPLY__INIT;
    reply.ok = false;
    reply.error_code = (char *) sch_err_name (err);
    reply.error = (char *) (text ? text : "");
    sch_tasks_deliver (self, task, &reply);
    self->stats.failed [err]++;
    log_debug ("task failed id=%s code=%s attempts=%u", task->id, sch_err_name (err),
               task->attempts);
}

static void
s_send_settle (sch_core_t *self, sch_task_t *task)
{
    P2c2r__SettleRequest req = P2C2R__SETTLE_REQUEST__INIT;
    req.task_id = task->id;
    req.gamer_account = task->gamer_account;
    req.peer_account = task->peer_account;
    req.task_type = (char *) sch_type (task->type)->name;
    req.billed_us = task->billed_us;
    req.compute_us = task->compute_us;
    req.observed_us = task->observed_us;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_SETTLE_REQUEST;
    msg.settle_request = &req;
    sch_send (self, "ledger", &msg);
}

//  --------------------------------------------------------------------------
//  Timers

void
sch_tasks_arm (sch_core_t *self, sch_task_t *task, int64_t now_us)
{
    if (task->state == SCH_PARKED)
        task->wake_us = now_us + self->config.balance_wait_ms * 1000;
    else
    if (task->state == SCH_QUEUED || task->state == SCH_VALIDATING)
        task->wake_us = task->deadline_us;
    else
    if (task->state == SCH_RUNNING)
        task->wake_us = task->attempt_end_us;       //  never after the deadline
    else
        task->wake_us = task->settle_next_us;
    sch_heap_update (self->timers, task);
}

//  --------------------------------------------------------------------------
//  Attempts

sch_peer_t *
sch_tasks_unrun (sch_core_t *self, sch_task_t *task)
{
    assert (task->state == SCH_RUNNING && task->peer);
    sch_peer_t *peer = task->peer;
    zlistx_delete (peer->tasks, task->peer_handle);
    task->peer_handle = NULL;
    task->peer = NULL;
    assert (peer->busy > 0);
    peer->busy--;
    self->stats.busy_slots--;
    sch_peers_rekey (self, peer);
    return peer;
}

//  A running task must have been taken off its peer first (the caller then
//  gives the slot new work).
void
sch_tasks_forget (sch_core_t *self, sch_task_t *task)
{
    if (task->frame)
        sch_frames_forget (self, task);
    assert (!task->peer);
    sch_queues_take (self, task);
    if (task->park_handle) {
        zlistx_delete (task->gamer->parked, task->park_handle);
        task->park_handle = NULL;
    }
    task->gamer->reserve_pico -= task->reserved_pico;
    (*sch_tasks_gauge (self, task->state))--;
    sch_heap_remove (self->timers, task);
    if (task->val) {
        if (task->is_check)
            task->val->checks_live--;
        else
            task->val->task = NULL;
        sch_validation_unref (self, task->val);
    }
    sch_gw_t *gw = task->gw;
    if (gw)
        zlistx_delete (gw->tasks, task->gw_handle);
    zhashx_delete (self->tasks, task->id);
    sch_refs_untrack (self, task);
    sch_tasks_free (&task);
    if (gw)
        sch_gateways_collect (self, gw);
}

void
sch_tasks_run (sch_core_t *self, sch_task_t *task, sch_peer_t *peer, int64_t now_us)
{
    int64_t timeout_us = self->config.attempt_timeout_ms * 1000;
    if (task->deadline_us - now_us < timeout_us)
        timeout_us = task->deadline_us - now_us;
    if (timeout_us < 1)
        timeout_us = 1;
    task->attempts++;
    if (task->attempts > 1)
        self->stats.reassigned++;
    self->stats.assigned++;
    task->peer = peer;
    task->peer_handle = zlistx_add_end (peer->tasks, task);
    peer->busy++;
    self->stats.busy_slots++;
    peer->last_assign = ++self->assign_seq;
    sch_peers_rekey (self, peer);
    free (task->last_peer);
    task->last_peer = p2c_strdup (peer->key);
    if (task->val)
        sch_validation_use (task->val, peer);
    task->attempt_start_us = now_us;
    task->attempt_end_us = now_us + timeout_us;
    sch_tasks_set_state (self, task, SCH_RUNNING);
    sch_tasks_arm (self, task, now_us);

    P2c2r__Session session = P2C2R__SESSION__INIT;
    session.gateway = peer->gw->id;
    session.conn = peer->conn;
    P2c2r__Assign assign = P2C2R__ASSIGN__INIT;
    assign.task_id = task->id;
    assign.task_type = (char *) sch_type (task->type)->name;
    assign.params_json = task->params_json;
    assign.payload.data = task->payload;
    assign.payload.len = task->payload_size;
    //  whole milliseconds, rounded up so the peer never gets 0
    assign.deadline_ms = (uint32_t) ((timeout_us + 999) / 1000);
    assign.attempt = task->attempts;
    P2c2r__TaskAssign ta = P2C2R__TASK_ASSIGN__INIT;
    ta.peer = &session;
    ta.assign = &assign;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_TASK_ASSIGN;
    msg.task_assign = &ta;
    sch_send (self, peer->gw->id, &msg);
    log_debug ("task assigned id=%s peer=%s attempt=%u timeout_ms=%u", task->id, peer->key,
               task->attempts, assign.deadline_ms);
}

//  --------------------------------------------------------------------------
//  Endings

//  A check that failed lets its validation decide what next; a tile that
//  cannot finish ends its frame.
void
sch_tasks_fail (sch_core_t *self, sch_task_t *task, sch_err_t err, const char *text,
                int64_t now_us)
{
    if (task->is_tile) {
        sch_frames_fail (self, task->frame, err, text, now_us);
        return;
    }
    if (task->is_check) {
        sch_val_t *val = task->val;
        val->refs++;            //  keep it through the forget
        sch_tasks_forget (self, task);
        sch_validation_eval (self, val, now_us);
        sch_validation_unref (self, val);
        return;
    }
    sch_tasks_deliver_error (self, task, err, text);
    sch_tasks_forget (self, task);
}

//  The task is off its peer.
void
sch_tasks_retry (sch_core_t *self, sch_task_t *task, int64_t now_us)
{
    if (task->gw && task->gw->down && !sch_task_joined (task)) {
        //  nobody is left to answer
        self->stats.dropped++;
        sch_tasks_forget (self, task);
        return;
    }
    if (task->attempts >= self->config.max_attempts || now_us >= task->deadline_us) {
        sch_tasks_fail (self, task, SCH_ERR_TIMEOUT, "no peer finished the task in time",
                        now_us);
        return;
    }
    sch_peer_t *peer = sch_queues_choose (self, task, task->last_peer);
    if (peer)
        sch_tasks_run (self, task, peer, now_us);
    else
        sch_queues_put (self, task, true, now_us);
}

void
sch_tasks_settle_send (sch_core_t *self, sch_task_t *task, int64_t now_us)
{
    task->settle_next_us = now_us + self->config.settle_retry_ms * 1000;
    sch_tasks_set_state (self, task, SCH_SETTLING);
    sch_tasks_arm (self, task, now_us);
    s_send_settle (self, task);
    self->stats.settle_sent++;
}

//  Moves the settlement figures of a result into the gamer's task. A
//  result of a kernel version other than the catalogue's is delivered but
//  never cached (issue 12: encryption 1.0.0 and 2.0.0 differ).
void
sch_tasks_settle (sch_core_t *self, sch_task_t *task, const sch_vent_t *e, int64_t now_us)
{
    if (task->is_tile) {
        sch_frames_hold (self, task, e, now_us);
        return;
    }
    if (task->cache_key && !sch_cache_version_ok (sch_type (task->type)->name, e->version)) {
        free (task->cache_key);
        task->cache_key = NULL;
    }
    task->peer_account = e->account;
    task->compute_us = e->compute_us;
    task->observed_us = e->observed_us;
    task->billed_us = e->billed_us;
    free (task->result_json);
    task->result_json = p2c_strdup (e->result_json);
    free (task->blob);
    task->blob = sch_memdup (e->blob, e->blob_size);
    task->blob_size = e->blob_size;
    sch_tasks_settle_send (self, task, now_us);
}

//  A large ray-tracing frame is split into tiles first (sch_frames.c).
void
sch_tasks_start (sch_core_t *self, sch_task_t *task, int64_t now_us)
{
    if (sch_frames_split (self, task, now_us))
        return;
    if (self->eligible [task->type] == 0) {
        sch_tasks_fail (self, task, SCH_ERR_NO_PEERS, "No peers available", now_us);
        return;
    }
    bool quorum = sch_mode (self, task->type) == SCH_VAL_QUORUM;
    if (quorum)
        sch_validation_new (self, task, SCH_VAL_QUORUM);
    if (!sch_queues_place (self, task, now_us)) {
        sch_tasks_fail (self, task, SCH_ERR_UNAVAILABLE, "scheduler queue is full", now_us);
        return;
    }
    if (quorum)
        sch_validation_spawn (self, task->val, now_us);
}

void
sch_tasks_wake (sch_core_t *self, sch_task_t *task, int64_t now_us)
{
    switch (task->state) {
        case SCH_SETTLING:
            //  the ledger is idempotent on task_id: resending is safe
            s_send_settle (self, task);
            self->stats.settle_retries++;
            log_debug ("settle resent id=%s", task->id);
            task->settle_next_us = now_us + self->config.settle_retry_ms * 1000;
            sch_tasks_arm (self, task, now_us);
            return;
        case SCH_PARKED:
            sch_tasks_fail (self, task, SCH_ERR_UNAVAILABLE, "the gamer's balance is unknown", now_us);
            return;
        case SCH_QUEUED:
            //  queued tasks wake only at their deadline
            sch_tasks_fail (self, task, SCH_ERR_TIMEOUT, "no peer was free before the deadline", now_us);
            return;
        case SCH_VALIDATING: {
            if (task->frame && !task->is_tile) {
                sch_frames_fail (self, task->frame, SCH_ERR_TIMEOUT,
                                 "the frame's tiles did not all finish before the deadline",
                                 now_us);
                return;
            }
            bool split = task->val && task->val->n >= 2;
            sch_tasks_fail (self, task, split ? SCH_ERR_REJECTED : SCH_ERR_TIMEOUT,
                            split ? "peers disagree on the result"
                                  : "no second result before the deadline", now_us);
            return;
        }
        case SCH_RUNNING:
            break;
    }
    sch_peer_t *peer = sch_tasks_unrun (self, task);
    if (now_us >= task->deadline_us)
        sch_tasks_fail (self, task, SCH_ERR_TIMEOUT, "the task did not finish before the deadline", now_us);
    else {
        log_debug ("attempt timed out id=%s peer=%s attempt=%u", task->id, peer->key,
                   task->attempts);
        sch_tasks_retry (self, task, now_us);
    }
    sch_queues_pull (self, peer, now_us);
}

//  --------------------------------------------------------------------------
//  Self-test: a task's life through its states, with the timers that move it

void
sch_tasks_test (bool verbose)
{
    (void) verbose;
    sch_selftest_t cap;
    sch_core_t *core = sch_selftest_core (&cap, NULL);
    int64_t timeout_us = core->config.attempt_timeout_ms * 1000;
    int64_t retry_us = core->config.settle_retry_ms * 1000;
    sch_selftest_peer_up (core, "gw-p", 1, 1, "encryption", 11, 0);
    //  runs at once on the free peer; the timer is the attempt's end
    sch_selftest_submit (core, "gw-g", "t1", "encryption", 500, 0);
    sch_task_t *task = sch_selftest_task (core, "t1");
    P2C_CHECK (task && task->state == SCH_RUNNING && task->attempts == 1 && !task->is_check);
    P2C_CHECK (cap.last_case == P2C2R__INTERNAL__MSG_TASK_ASSIGN
               && !strcmp (cap.last_dest, "gw-p") && cap.last_attempt == 1);
    P2C_CHECK (task->wake_us == timeout_us && sch_heap_top (core->timers) == task);
    P2C_CHECK (core->stats.running == 1 && core->stats.busy_slots == 1);
    //  the attempt expires: retried on the only peer there is
    sch_core_cron (core, timeout_us);
    P2C_CHECK (task->state == SCH_RUNNING && task->attempts == 2 && cap.last_attempt == 2);
    P2C_CHECK (core->stats.reassigned == 1 && core->stats.busy_slots == 1);
    //  a result: settling, the SettleRequest to the ledger, resent when unacked
    int64_t now = timeout_us + 100;
    sch_selftest_result (core, "t1", "{\"hash\":\"ab\"}", 50, now);
    P2C_CHECK (task->state == SCH_SETTLING && core->stats.settling == 1);
    P2C_CHECK (cap.last_case == P2C2R__INTERNAL__MSG_SETTLE_REQUEST
               && !strcmp (cap.last_dest, "ledger") && cap.last_gamer == 500);
    P2C_CHECK (task->billed_us == 50 && task->wake_us == now + retry_us);
    int settles = cap.count [P2C2R__INTERNAL__MSG_SETTLE_REQUEST];
    sch_core_cron (core, now + retry_us);
    P2C_CHECK (cap.count [P2C2R__INTERNAL__MSG_SETTLE_REQUEST] == settles + 1
               && core->stats.settle_retries == 1);
    //  the ack: the one reply goes to the gamer's gateway and the task goes
    sch_selftest_ack (core, "t1", true, now + retry_us + 1);
    P2C_CHECK (cap.last_case == P2C2R__INTERNAL__MSG_DELIVER && cap.last_ok
               && !strcmp (cap.last_dest, "gw-g") && !strcmp (cap.last_task, "t1"));
    P2C_CHECK (sch_selftest_task (core, "t1") == NULL && core->stats.completed == 1);
    P2C_CHECK (core->stats.settling == 0 && sch_heap_size (core->timers) == 0);
    //  the reply is kept until the gateway confirms it: sent again each
    //  interval (a Deliver lost with the broker), no more once acked
    now += retry_us + 1;
    int delivers = cap.count [P2C2R__INTERNAL__MSG_DELIVER];
    sch_core_cron (core, now + SCH_DELIVER_RETRY_MS * 1000);
    P2C_CHECK (cap.count [P2C2R__INTERNAL__MSG_DELIVER] == delivers + 1
               && !strcmp (cap.last_dest, "gw-g") && !strcmp (cap.last_task, "t1"));
    P2c2r__DeliverAck dack = P2C2R__DELIVER_ACK__INIT;
    dack.task_id = "t1";
    P2c2r__Internal dm = P2C2R__INTERNAL__INIT;
    dm.msg_case = P2C2R__INTERNAL__MSG_DELIVER_ACK;
    dm.deliver_ack = &dack;
    sch_core_handle (core, "gw-g", &dm, now + SCH_DELIVER_RETRY_MS * 1000);
    sch_core_cron (core, now + 5 * SCH_DELIVER_RETRY_MS * 1000);
    P2C_CHECK (cap.count [P2C2R__INTERNAL__MSG_DELIVER] == delivers + 1
               && sch_outbox_size (core->outbox) == 0);
    now += 5 * SCH_DELIVER_RETRY_MS * 1000;
    //  a type nobody runs fails at once with no_peers
    sch_selftest_submit (core, "gw-g", "t2", "compression", 500, now);
    P2C_CHECK (cap.last_case == P2C2R__INTERNAL__MSG_DELIVER && !cap.last_ok
               && !strcmp (cap.last_code, "no_peers") && sch_selftest_task (core, "t2") == NULL);
    //  a lost peer's task goes back to the front of its gamer's queue;
    //  queued tasks wake at their deadline and fail with timeout
    sch_selftest_submit (core, "gw-g", "t3", "encryption", 500, now);
    sch_selftest_submit (core, "gw-g", "t4", "encryption", 500, now);
    sch_task_t *t3 = sch_selftest_task (core, "t3");
    task = sch_selftest_task (core, "t4");
    P2C_CHECK (t3 && t3->state == SCH_RUNNING && task && task->state == SCH_QUEUED);
    P2C_CHECK (task->wake_us == task->deadline_us);
    P2c2r__Session session = P2C2R__SESSION__INIT;
    session.gateway = "gw-p";
    session.conn = 1;
    P2c2r__PeerDown down = P2C2R__PEER_DOWN__INIT;
    down.session = &session;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_PEER_DOWN;
    msg.peer_down = &down;
    sch_core_handle (core, "gw-p", &msg, now + 1);
    P2C_CHECK (t3->state == SCH_QUEUED && t3->peer == NULL
               && zlistx_first (t3->gamer->queue [t3->type]) == t3);
    sch_core_cron (core, task->deadline_us);
    P2C_CHECK (sch_selftest_task (core, "t3") == NULL && sch_selftest_task (core, "t4") == NULL
               && core->stats.failed [SCH_ERR_TIMEOUT] == 2);
    P2C_CHECK (core->stats.queued == 0 && core->stats.running == 0
               && sch_heap_size (core->timers) == 0);
    sch_core_destroy (&core);
}
