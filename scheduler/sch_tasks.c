/*  A task's life in the scheduler core: it runs on a peer, is retried
    elsewhere after a lost peer or an expired attempt, fails with one
    terminal reply, or settles with the ledger; the timer heap wakes it
    when it needs attention (balance wait, deadline, attempt end,
    settlement retry). See docs/scheduler.md. */
#include "sch_internal.h"
#include "p2c_log.h"
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
    free (task->region);
    free (task->cache_key);
    free (task->last_peer);
    free (task->result_json);
    free (task->blob);
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
    sch_send (self, task->gw->id, &msg);
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
    task->last_peer = strdup (peer->key);
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

//  A check that failed lets its validation decide what next.
void
sch_tasks_fail (sch_core_t *self, sch_task_t *task, sch_err_t err, const char *text,
                int64_t now_us)
{
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
    if (task->gw && task->gw->down) {
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

//  Moves the settlement figures of a result into the gamer's task.
void
sch_tasks_settle (sch_core_t *self, sch_task_t *task, const sch_vent_t *e, int64_t now_us)
{
    task->peer_account = e->account;
    task->compute_us = e->compute_us;
    task->observed_us = e->observed_us;
    task->billed_us = e->billed_us;
    free (task->result_json);
    task->result_json = strdup (e->result_json);
    free (task->blob);
    task->blob = sch_memdup (e->blob, e->blob_size);
    task->blob_size = e->blob_size;
    task->settle_next_us = now_us + self->config.settle_retry_ms * 1000;
    sch_tasks_set_state (self, task, SCH_SETTLING);
    sch_tasks_arm (self, task, now_us);
    s_send_settle (self, task);
    self->stats.settle_sent++;
}

void
sch_tasks_start (sch_core_t *self, sch_task_t *task, int64_t now_us)
{
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
