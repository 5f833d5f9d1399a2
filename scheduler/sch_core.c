/*  The scheduler's core (see sch_core.h, docs/internals.md and
    docs/scheduler.md, which states every rule the sch_*.c files implement):
    its settings, construction, the dispatch of each message to the concept
    it is about, and the cron. The data model and the map of the files that
    implement the rules are in sch_internal.h.

    Everything lives in memory and is reached through indexes, so that no
    message costs a scan of all peers or tasks:
    - peers by "gateway/conn"; per task type an index (sch_index) of the
      peers with a free slot, ordered by expected finish time;
    - reputations by peer account, so that they survive reconnects;
    - gamers by account: their balance, the reserve of their tasks in
      flight, and per task type a FIFO of their queued tasks; per type a
      ring of the gamers with queued tasks, served round robin (fairness);
    - tasks by id, per peer the tasks it runs, per gateway the peers and
      the gamers' tasks it holds;
    - one heap (sch_heap) of tasks ordered by the next moment each needs
      attention (balance wait, deadline, attempt end, settlement retry).
    Times are monotonic microseconds: billed time starts from the cost
    model's expected time and moves toward the smaller of the peer's claim
    and what we observe (sch_billing.h), and most tasks take well under a
    millisecond, so milliseconds would bill them nothing. */
#include "sch_internal.h"
#include "sch_config.h"
#include "p2c_cost.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_money.h"
#include "p2c_test.h"

#include <inttypes.h>
#include <stddef.h>

//  --------------------------------------------------------------------------
//  Configuration

void
sch_core_config_default (sch_core_config_t *config)
{
    //  The binary's defaults, from the one table that holds them
    sch_config_t settings;
    sch_config_defaults (&settings);
    *config = settings.core;
    sch_config_free (&settings);
}

int
sch_val_mode_parse (const char *name)
{
    if (!name)
        return -1;
    if (!strcmp (name, "none"))
        return SCH_VAL_NONE;
    if (!strcmp (name, "spot"))
        return SCH_VAL_SPOT;
    if (!strcmp (name, "quorum"))
        return SCH_VAL_QUORUM;
    return -1;
}

//  Calls fn on each comma-separated item of spec; -1 when fn refuses one.
static int
s_each_item (const char *spec, int (*fn) (sch_core_config_t *, char *), sch_core_config_t *c)
{
    if (!spec || !*spec)
        return 0;
    char *copy = p2c_strdup (spec);
    int rc = 0;
    char *save = NULL;
    for (char *item = strtok_r (copy, ", ", &save); item && rc == 0;
         item = strtok_r (NULL, ", ", &save))
        rc = fn (c, item);
    free (copy);
    return rc;
}

static int
s_validation_item (sch_core_config_t *config, char *item)
{
    char *eq = strchr (item, '=');
    if (!eq)
        return -1;
    *eq = 0;
    int type = sch_type_index (item);
    int mode = sch_val_mode_parse (eq + 1);
    if (type < 0 || mode < 0)
        return -1;
    config->validation_type [type] = (sch_val_mode_t) mode;
    return 0;
}

int
sch_core_config_validation (sch_core_config_t *config, const char *spec)
{
    return s_each_item (spec, s_validation_item, config);
}

static int
s_needs_item (sch_core_config_t *config, char *item)
{
    char *colon = strchr (item, ':');
    if (!colon)
        return -1;
    *colon = 0;
    int type = sch_type_index (item);
    if (type < 0)
        return -1;
    const char *need = colon + 1;
    char *end = NULL;
    if (!strcmp (need, "gpu"))
        config->needs_gpu [type] = true;
    else
    if (!strncmp (need, "ram=", 4)) {
        long v = strtol (need + 4, &end, 10);
        if (*end || v < 0 || v > 1000000)
            return -1;
        config->needs_ram_gb [type] = (uint32_t) v;
    }
    else
    if (!strncmp (need, "vram=", 5)) {
        long v = strtol (need + 5, &end, 10);
        if (*end || v < 0 || v > 1000000)
            return -1;
        config->needs_vram_gb [type] = (uint32_t) v;
        config->needs_gpu [type] = v > 0 || config->needs_gpu [type];
    }
    else
        return -1;
    return 0;
}

int
sch_core_config_needs (sch_core_config_t *config, const char *spec)
{
    return s_each_item (spec, s_needs_item, config);
}


//  --------------------------------------------------------------------------
//  Construction

//  The timer heap's order: the soonest wake first
static bool
s_wakes_before (const void *a, const void *b)
{
    return ((const sch_task_t *) a)->wake_us < ((const sch_task_t *) b)->wake_us;
}

sch_core_t *
sch_core_new (const sch_core_config_t *config, sch_send_fn *send, void *arg)
{
    assert (config);
    assert (send);
    sch_core_t *self = (sch_core_t *) zmalloc (sizeof (sch_core_t));
    self->config = *config;
    sch_core_config_t *c = &self->config;
    if (c->max_attempts < 1)
        c->max_attempts = 1;
    if (c->attempt_timeout_ms < 1)
        c->attempt_timeout_ms = 1;
    if (c->settle_retry_ms < 1)
        c->settle_retry_ms = 1;
    if (c->default_deadline_ms < 1)
        c->default_deadline_ms = 1;
    if (c->max_deadline_ms < c->default_deadline_ms)
        c->max_deadline_ms = c->default_deadline_ms;
    if (c->rep_half_life_ms < 1)
        c->rep_half_life_ms = 1;
    if (c->balance_wait_ms < 1)
        c->balance_wait_ms = 1;
    self->send = send;
    self->send_arg = arg;
    self->peers = zhashx_new ();
    self->tasks = zhashx_new ();
    self->gateways = zhashx_new ();
    self->gamers = zhashx_new ();
    self->reps = zhashx_new ();
    self->payouts = sch_payouts_new (c->settle_retry_ms * 1000, send, arg, &self->stats);
    self->outbox = sch_outbox_new (SCH_DELIVER_RETRY_MS * 1000, SCH_DELIVER_MAX,
                                   SCH_DELIVER_MAX_BYTES, send, arg);
    self->timers = sch_heap_new (s_wakes_before, offsetof (sch_task_t, heap_idx));
    self->cache = sch_cache_new (c->cache_ttl_ms * 1000, c->cache_max_entries,
                                 c->cache_max_bytes);
    sch_refs_new (self);
    self->checker = (sch_gamer_t *) zmalloc (sizeof (sch_gamer_t));
    self->checker->known = true;
    self->checker->parked = zlistx_new ();
    self->rng = c->seed ? c->seed : 1;
    for (const p2c_task_type_t *t = p2c_task_types (); t->name; t++)
        self->ntypes++;
    assert (self->ntypes <= SCH_MAX_TYPES);
    for (size_t i = 0; i < self->ntypes; i++) {
        self->index [i] = sch_index_new ();
        self->ring [i] = zlistx_new ();
    }
    self->alerts = sch_alerts_new (&c->alerts);
    self->broker = self->ledgers = self->gateway_nodes = -1;
    return self;
}

void
sch_core_destroy (sch_core_t **self_p)
{
    sch_core_t *self = *self_p;
    if (!self)
        return;
    //  the timer heap marks its tasks out as it goes, before they are freed
    sch_heap_destroy (&self->timers);
    //  validations are shared by tasks: collect them once
    zhashx_t *vals = zhashx_new ();
    for (sch_task_t *t = (sch_task_t *) zhashx_first (self->tasks); t;
         t = (sch_task_t *) zhashx_next (self->tasks)) {
        if (t->val) {
            char key [32];
            snprintf (key, sizeof key, "%p", (void *) t->val);
            zhashx_update (vals, key, t->val);
        }
        sch_tasks_free (&t);
    }
    for (sch_val_t *v = (sch_val_t *) zhashx_first (vals); v;
         v = (sch_val_t *) zhashx_next (vals))
        sch_validation_free (&v);
    zhashx_destroy (&vals);
    //  the indexes mark their entries (inside the peers) out as they go
    for (size_t i = 0; i < self->ntypes; i++)
        sch_index_destroy (&self->index [i]);
    for (sch_peer_t *p = (sch_peer_t *) zhashx_first (self->peers); p;
         p = (sch_peer_t *) zhashx_next (self->peers))
        sch_peers_free (&p);
    for (sch_gw_t *g = (sch_gw_t *) zhashx_first (self->gateways); g;
         g = (sch_gw_t *) zhashx_next (self->gateways))
        sch_gateways_free (&g);
    for (sch_gamer_t *g = (sch_gamer_t *) zhashx_first (self->gamers); g;
         g = (sch_gamer_t *) zhashx_next (self->gamers))
        sch_gamers_free (&g);
    sch_gamers_free (&self->checker);
    for (sch_rep_t *r = (sch_rep_t *) zhashx_first (self->reps); r;
         r = (sch_rep_t *) zhashx_next (self->reps))
        sch_reputation_free (&r);
    zhashx_destroy (&self->tasks);
    zhashx_destroy (&self->peers);
    zhashx_destroy (&self->gateways);
    zhashx_destroy (&self->gamers);
    zhashx_destroy (&self->reps);
    sch_payouts_destroy (&self->payouts);
    sch_outbox_destroy (&self->outbox);
    sch_cache_destroy (&self->cache);
    sch_alerts_destroy (&self->alerts);
    sch_refs_destroy (self);
    for (size_t i = 0; i < self->ntypes; i++)
        zlistx_destroy (&self->ring [i]);
    free (self);
    *self_p = NULL;
}

int
sch_core_peer_busy (sch_core_t *self, const char *gateway, uint64_t conn)
{
    char key [SCH_MAX_ID + 32];
    snprintf (key, sizeof key, "%s/%" PRIu64, gateway, conn);
    sch_peer_t *peer = (sch_peer_t *) zhashx_lookup (self->peers, key);
    return peer ? (int) peer->busy : -1;
}

//  --------------------------------------------------------------------------
//  Tasks from gamers

//  Answers a submit that never became a task.
void
sch_reject_submit (sch_core_t *self, const P2c2r__TaskSubmit *sub, const char *gateway,
                   sch_err_t err, const char *text)
{
    P2c2r__Session gamer = P2C2R__SESSION__INIT;
    gamer.gateway = (char *) gateway;
    gamer.conn = sub->gamer->conn;
    P2c2r__TaskReply reply = P2C2R__TASK_REPLY__INIT;
    reply.task_id = sub->task_id;
    reply.client_ref = sub->submit && sub->submit->client_ref ? sub->submit->client_ref : "";
    reply.ok = false;
    reply.error_code = (char *) sch_err_name (err);
    reply.error = (char *) text;
    P2c2r__Deliver deliver = P2C2R__DELIVER__INIT;
    deliver.gamer = &gamer;
    deliver.reply = &reply;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_DELIVER;
    msg.deliver = &deliver;
    sch_send (self, gateway, &msg);
    self->stats.failed [err]++;
    log_debug ("task refused id=%s code=%s", sub->task_id, sch_err_name (err));
}

//  A task for a checked submit of a known type, in the tasks and its
//  gateway's list, counted as queued until it is placed.
static sch_task_t *
s_task_new (sch_core_t *self, const P2c2r__TaskSubmit *sub, const char *gateway, int type,
            int64_t now_us)
{
    int64_t deadline_ms = sub->deadline_ms ? sub->deadline_ms : self->config.default_deadline_ms;
    if (deadline_ms > self->config.max_deadline_ms)
        deadline_ms = self->config.max_deadline_ms;
    sch_task_t *task = (sch_task_t *) zmalloc (sizeof (sch_task_t));
    task->id = p2c_strdup (sub->task_id);
    task->type = type;
    task->seq = ++self->task_seq;
    task->params_json = sch_strndup_bounded (sub->submit->params_json, P2C_MAX_INTERNAL);
    task->payload = sch_memdup (sub->submit->payload.data, sub->submit->payload.len);
    task->payload_size = task->payload ? sub->submit->payload.len : 0;
    task->client_ref = sch_strndup_bounded (sub->submit->client_ref, SCH_MAX_ID);
    task->region = sch_strndup_bounded (sub->region, SCH_MAX_SHORT);
    task->gamer_account = sub->gamer_account;
    task->gamer_id = sch_strndup_bounded (sub->gamer_id, SCH_MAX_ID);
    task->gamer_block = sch_peers_block (&self->config, sub->address);
    task->gamer_owner = sch_strndup_bounded (sub->gamer_owner, SCH_MAX_ID);
    task->gamer_conn = sub->gamer->conn;
    task->gamer = sch_gamers_require (self, sub->gamer_account, gateway, sub->gamer->conn);
    task->gw = sch_gateways_require (self, gateway);
    task->gw->down = false;
    task->gw_handle = zlistx_add_end (task->gw->tasks, task);
    task->submit_us = now_us;
    task->deadline_ms = (uint32_t) deadline_ms;
    task->deadline_us = now_us + deadline_ms * 1000;
    task->heap_idx = SCH_NO_HEAP;
    task->state = SCH_QUEUED;       //  counted as queued until it is placed
    self->stats.queued++;
    zhashx_insert (self->tasks, task->id, task);
    sch_refs_track (self, task);
    return task;
}

//  The cache answers at once, billed zero, never settled; true when it did
//  (the task is then gone).
static bool
s_cache_answer (sch_core_t *self, sch_task_t *task, int64_t now_us)
{
    task->cache_key = sch_validation_cache_key (task);
    const sch_cache_entry_t *hit = task->cache_key
                                 ? sch_cache_get_for (self->cache, task->cache_key,
                                                      task->gamer_account, now_us)
                                 : NULL;
    if (!hit)
        return false;
    P2c2r__TaskReply reply = P2C2R__TASK_REPLY__INIT;
    reply.ok = true;
    reply.cached = true;
    reply.result_json = hit->result_json;
    reply.blob.data = hit->blob;
    reply.blob.len = hit->blob_size;
    reply.compute_us = hit->compute_us;
    reply.billed_us = 0;
    reply.cost_pico = 0;
    sch_tasks_deliver (self, task, &reply);
    self->stats.cached++;
    sch_stats_latency (self, task, now_us);
    log_debug ("task cached id=%s", task->id);
    sch_tasks_forget (self, task);
    return true;
}

static void
s_on_task_submit (sch_core_t *self, const P2c2r__TaskSubmit *sub, int64_t now_us)
{
    const char *gateway = sch_session_gateway (sub->gamer);
    if (!gateway || !sub->task_id || !*sub->task_id || strlen (sub->task_id) > SCH_MAX_ID) {
        //  nobody to answer, or nothing to answer with
        self->stats.bad_messages++;
        log_debug ("bad TaskSubmit: no gamer session or task id");
        return;
    }
    if (zhashx_lookup (self->tasks, sub->task_id)) {
        //  the gateway makes ids unique: a duplicate is a replay; the first
        //  copy's answer serves both
        self->stats.bad_messages++;
        log_debug ("duplicate TaskSubmit id=%s", sub->task_id);
        return;
    }
    self->stats.submitted++;
    //  a repeat of a client_ref: the first task's reply, not a new run
    if (sch_refs_submit (self, sub, gateway))
        return;
    int type = sub->submit ? sch_type_index (sub->submit->task_type) : -1;
    if (type < 0) {
        sch_reject_submit (self, sub, gateway, SCH_ERR_UNKNOWN_TASK_TYPE, "unknown task type");
        return;
    }
    sch_task_t *task = s_task_new (self, sub, gateway, type, now_us);
    if (self->config.cache_max_entries && s_cache_answer (self, task, now_us))
        return;
    if (self->eligible [type] == 0) {
        sch_tasks_fail (self, task, SCH_ERR_NO_PEERS, "No peers available", now_us);
        return;
    }
    if (self->config.funds_check && !sch_gamers_admit (self, task, now_us))
        return;
    sch_tasks_start (self, task, now_us);
}

//  A result that reports an error: a peer may only blame the parameters or
//  its kernel.
static void
s_result_failed (sch_core_t *self, sch_task_t *task, const P2c2r__PeerResult *res,
                 int64_t now_us)
{
    if (task->is_check) {
        sch_tasks_fail (self, task, SCH_ERR_KERNEL_ERROR, "", now_us);
        return;
    }
    sch_err_t err = res->error_code && !strcmp (res->error_code, "invalid_params")
                  ? SCH_ERR_INVALID_PARAMS : SCH_ERR_KERNEL_ERROR;
    char *text = sch_strndup_bounded (res->error, SCH_MAX_ERROR_TEXT);
    sch_tasks_fail (self, task, err, text, now_us);
    free (text);
}

//  A good result of a task under no validation: settled at once, then
//  perhaps spot-checked in the background.
static void
s_result_accept (sch_core_t *self, sch_task_t *task, sch_peer_t *peer, const sch_run_t *run,
                 int64_t now_us)
{
    const P2c2r__PeerResult *res = run->res;
    if (task->is_tile) {
        //  the spot draw first: holding the tile's result may end (and
        //  free) its frame
        log_debug ("tile done id=%s peer=%s billed_us=%" PRIu64, task->id, peer->key,
                   run->billed_us);
        sch_validation_spot (self, task, peer, run, now_us);
    }
    //  a result naming no version (JSON peers) is judged as the current one
    char current [SCH_MAX_SHORT];
    sch_vent_t e = { 0 };
    e.account = run->account;
    if (res->kernel_version && *res->kernel_version)
        e.version = res->kernel_version;    //  borrowed, for the cache's version check
    else
        e.version = (char *) p2c_task_version_current (sch_type (task->type), current,
                                                       sizeof current);
    e.result_json = sch_strndup_bounded (res->result_json, P2C_MAX_INTERNAL);
    e.blob = sch_memdup (res->blob.data, res->blob.len);
    e.blob_size = e.blob ? res->blob.len : 0;
    e.compute_us = res->compute_us;
    e.observed_us = run->observed_us;
    e.billed_us = run->billed_us;
    bool tile = task->is_tile;
    sch_tasks_settle (self, task, &e, now_us);
    free (e.result_json);
    free (e.blob);
    if (tile)
        return;
    sch_validation_spot (self, task, peer, run, now_us);
    log_debug ("task done id=%s peer=%s billed_us=%" PRIu64 " claimed_us=%" PRIu64
               " observed_us=%" PRIu64, task->id, peer->key, run->billed_us, res->compute_us,
               run->observed_us);
}

//  The running attempt a result answers; NULL for an attempt we gave up on
//  (also an earlier one on this same peer), or a task we never gave it.
static sch_task_t *
s_result_task (sch_core_t *self, const P2c2r__TaskResult *tr, const char *gateway)
{
    const P2c2r__PeerResult *res = tr->result;
    sch_task_t *task = (sch_task_t *) zhashx_lookup (self->tasks, res->task_id);
    if (!task || task->state != SCH_RUNNING || task->peer->conn != tr->peer->conn
        || strcmp (task->peer->gw->id, gateway) || res->attempt != task->attempts)
        return NULL;
    return task;
}

static void
s_on_task_result (sch_core_t *self, const P2c2r__TaskResult *tr, int64_t now_us)
{
    const char *gateway = sch_session_gateway (tr->peer);
    const P2c2r__PeerResult *res = tr->result;
    if (!gateway || !res || !res->task_id) {
        self->stats.bad_messages++;
        log_debug ("bad TaskResult: no session or result");
        return;
    }
    sch_task_t *task = s_result_task (self, tr, gateway);
    if (!task) {
        self->stats.stale_results++;
        log_debug ("stale result id=%.64s from=%s/%" PRIu64, res->task_id, gateway,
                   tr->peer->conn);
        return;
    }
    sch_peer_t *peer = sch_tasks_unrun (self, task);
    if (peer->rep->banned) {
        //  a banned peer's word counts for nothing and earns nothing
        self->stats.banned_results++;
        sch_tasks_retry (self, task, now_us);
        return;
    }
    if (!res->ok) {
        s_result_failed (self, task, res, now_us);
        sch_queues_pull (self, peer, now_us);
        return;
    }
    if (sch_validation_unknown_version (self, task, peer, res, now_us)) {
        sch_queues_pull (self, peer, now_us);
        return;
    }
    uint64_t observed = (uint64_t) (now_us - task->attempt_start_us);
    sch_ptype_t *pt = peer->pt [task->type];
    const sch_core_config_t *c = &self->config;
    sch_billing_run_t bill = {
        res->compute_us, observed, pt ? pt->ref_us : 0,
        self->ref_n [task->type] ? self->ref_sum [task->type] / self->ref_n [task->type] : 0,
        sch_type (task->type)->max_billed_us,
        c->bill_max_permille ? p2c_cost_expected_us (sch_type (task->type)->name,
                                                     task->params_json, task->payload_size) : 0,
        c->bill_min_permille, c->bill_max_permille, c->bill_flag_permille,
        (uint64_t) c->bill_flag_slack_us
    };
    if (sch_billing_flagged (&bill))
        sch_reputation_flag (self, task, peer, &bill, now_us);
    sch_run_t run = { peer->account_id, res, sch_billing_billed (&bill), observed,
                      task->is_check };
    sch_peers_learn (self, peer, task->type,
                     (double) sch_billing_compute (res->compute_us, observed), observed);
    if (task->is_check) {
        sch_validation_check_done (self, task, &run, now_us);
        log_debug ("check done id=%s peer=%s", res->task_id, peer->key);
    }
    else
    if (task->val)
        sch_validation_quorum_result (self, task, &run, now_us);
    else
        s_result_accept (self, task, peer, &run, now_us);
    sch_queues_pull (self, peer, now_us);
}

//  Delivers a settled task's result (or the ledger's refusal) and forgets
//  the task.
static void
s_on_settle_ack (sch_core_t *self, const P2c2r__SettleAck *ack, int64_t now_us)
{
    //  a payout's ack (a check run paid by the treasury, or a reversal)
    if (sch_payouts_ack (self->payouts, ack))
        return;
    //  a refund's, for a result whose gateway was lost
    if (ack->failed) {
        sch_outbox_refund_ack (self->outbox, ack->task_id);
        return;
    }
    sch_task_t *task = ack->task_id && !ack->reversed
                     ? (sch_task_t *) zhashx_lookup (self->tasks, ack->task_id) : NULL;
    if (!task || task->state != SCH_SETTLING) {
        //  a replayed ack for a task already delivered
        self->stats.stale_acks++;
        log_debug ("stale settle ack id=%.64s", ack->task_id ? ack->task_id : "");
        return;
    }
    if (task->is_tile) {
        sch_frames_settled (self, task, ack, now_us);
        return;
    }
    if (ack->ok) {
        P2c2r__TaskReply reply = P2C2R__TASK_REPLY__INIT;
        reply.ok = true;
        reply.result_json = task->result_json;
        reply.blob.data = task->blob;
        reply.blob.len = task->blob_size;
        reply.compute_us = task->compute_us;
        reply.billed_us = task->billed_us;
        reply.cost_pico = ack->gamer_charge_pico;
        sch_tasks_deliver (self, task, &reply);
        self->stats.completed++;
        sch_stats_latency (self, task, now_us);
        //  only a validated result is shared; until then it serves the
        //  gamer who paid for it (a spot check that agrees shares it)
        if (task->cache_key)
            sch_cache_put_for (self->cache, task->cache_key,
                               sch_validation_shareable (self, task) ? 0 : task->gamer_account,
                               task->result_json, task->blob, task->blob_size,
                               task->compute_us, now_us);
        log_debug ("task delivered id=%s billed_us=%" PRIu64 " cost_pico=%" PRId64, task->id,
                   task->billed_us, ack->gamer_charge_pico);
    }
    else {
        char *text = sch_strndup_bounded (ack->error, SCH_MAX_ERROR_TEXT);
        log_info ("settlement refused id=%s", task->id);
        self->stats.settle_refused++;
        sch_tasks_deliver_error (self, task, SCH_ERR_UNAVAILABLE, *text ? text : "settlement failed");
        free (text);
    }
    sch_tasks_forget (self, task);
}

static void
s_on_stats_request (sch_core_t *self, const char *sender, const P2c2r__StatsRequest *req,
                    int64_t now_us)
{
    if (!sender || !*sender) {
        self->stats.bad_messages++;
        return;
    }
    char *json = sch_core_stats_json (self, now_us);
    P2c2r__StatsReply reply = P2C2R__STATS_REPLY__INIT;
    reply.corr = req->corr;
    reply.service = "scheduler";
    reply.stats_json = json;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_STATS_REPLY;
    msg.stats_reply = &reply;
    sch_send (self, sender, &msg);
    free (json);
}

//  A gateway's dashboard page asks for its peer account's reputation;
//  answered at once from the table (no account there: known false)
static void
s_on_reputation_request (sch_core_t *self, const char *sender,
                         const P2c2r__ReputationRequest *req, int64_t now_us)
{
    if (!sender || !*sender) {
        self->stats.bad_messages++;
        return;
    }
    P2c2r__Reputation rep = P2C2R__REPUTATION__INIT;
    bool banned = false;
    rep.known = sch_core_reputation (self, req->account_id, now_us, &rep.valid, &rep.invalid,
                                     &banned);
    rep.banned = banned;
    P2c2r__ReputationReply reply = P2C2R__REPUTATION_REPLY__INIT;
    reply.corr = req->corr;
    reply.account_id = req->account_id;
    reply.reputation = &rep;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_REPUTATION_REPLY;
    msg.reputation_reply = &reply;
    sch_send (self, sender, &msg);
}

void
sch_core_handle (sch_core_t *self, const char *sender, const P2c2r__Internal *msg,
                 int64_t now_us)
{
    assert (self);
    self->now_us = now_us;
    //  a oneof case whose message is missing cannot come from the unpacker,
    //  but the check costs nothing (all cases share one pointer)
    if (!msg || !msg->peer_up) {
        self->stats.bad_messages++;
        return;
    }
    switch (msg->msg_case) {
        case P2C2R__INTERNAL__MSG_PEER_UP:
            sch_peers_up (self, msg->peer_up, now_us);
            break;
        case P2C2R__INTERNAL__MSG_PEER_DOWN:
            sch_peers_down (self, msg->peer_down, now_us);
            break;
        case P2C2R__INTERNAL__MSG_TASK_SUBMIT:
            s_on_task_submit (self, msg->task_submit, now_us);
            break;
        case P2C2R__INTERNAL__MSG_TASK_RESULT:
            s_on_task_result (self, msg->task_result, now_us);
            break;
        case P2C2R__INTERNAL__MSG_SETTLE_ACK:
            s_on_settle_ack (self, msg->settle_ack, now_us);
            break;
        case P2C2R__INTERNAL__MSG_DELIVER_ACK:
            //  an ack of a resend that crossed the first ack finds nothing
            sch_outbox_ack (self->outbox, msg->deliver_ack->task_id);
            break;
        case P2C2R__INTERNAL__MSG_BALANCE_UPDATE:
            sch_gamers_balance (self, msg->balance_update, now_us);
            break;
        case P2C2R__INTERNAL__MSG_STATS_REQUEST:
            s_on_stats_request (self, sender, msg->stats_request, now_us);
            break;
        case P2C2R__INTERNAL__MSG_REPUTATION_REQUEST:
            s_on_reputation_request (self, sender, msg->reputation_request, now_us);
            break;
        case P2C2R__INTERNAL__MSG_NODE_EVENT: {
            //  only the broker speaks NodeEvents
            const P2c2r__NodeEvent *ev = msg->node_event;
            if (sender && !*sender && !ev->up && ev->service && ev->node_id
                && !strcmp (ev->service, "gateway"))
                sch_gateways_down (self, ev->node_id, now_us);
            break;
        }
        default:
            self->stats.bad_messages++;
            log_debug ("unexpected message type=%s from=%.64s", p2c_msg_internal_name (msg),
                       sender ? sender : "");
            break;
    }
}

//  --------------------------------------------------------------------------
//  Cron

void
sch_core_cron (sch_core_t *self, int64_t now_us)
{
    //  each wake either removes the task from the heap or re-arms it later
    //  than now, so this ends
    sch_task_t *task;
    while ((task = (sch_task_t *) sch_heap_top (self->timers)) && task->wake_us <= now_us)
        sch_tasks_wake (self, task, now_us);
    self->now_us = now_us;
    sch_cache_expire (self->cache, now_us);
    sch_refs_cron (self, now_us);
    sch_payouts_cron (self->payouts, now_us);
    sch_outbox_cron (self->outbox, now_us);
    sch_stats_rate (self, now_us);
    //  bans decay: look at the banned accounts once a second
    if (self->stats.bans && now_us >= self->unban_next_us) {
        self->unban_next_us = now_us + 1000000;
        for (sch_rep_t *r = (sch_rep_t *) zhashx_first (self->reps); r;
             r = (sch_rep_t *) zhashx_next (self->reps))
            if (r->banned && sch_reputation_judge (self, r, now_us))
                sch_peers_standing (self, r);
    }
    sch_stats_status (self, now_us);
    //  the alerts twice a second: the latency rule sorts up to 4096
    //  figures, and no threshold means anything finer
    if (now_us >= self->alerts_next_us) {
        self->alerts_next_us = now_us + SCH_ALERTS_EVAL_US;
        sch_alerts_input_t in = {
            .peers = zhashx_size (self->peers), .queued = self->stats.queued,
            .settle_failures = self->stats.settle_retries + self->stats.settle_refused,
            .broker = self->broker, .ledgers = self->ledgers, .gateways = self->gateway_nodes
        };
        sch_alerts_eval (self->alerts, &in, now_us);
    }
}

void
sch_core_set_services (sch_core_t *self, int broker, int ledgers, int gateways)
{
    self->broker = broker;
    self->ledgers = ledgers;
    self->gateway_nodes = gateways;
}

void
sch_core_set_alert_hook (sch_core_t *self, sch_alert_fn *fn, void *arg)
{
    sch_alerts_set_hook (self->alerts, fn, arg);
}

sch_alerts_t *
sch_core_alerts (sch_core_t *self)
{
    return self->alerts;
}

//  --------------------------------------------------------------------------
//  Self-test: the smallest life of a task. tests/unit/test_scheduler.c
//  drives every rule.

typedef struct {
    int sent;
    int last_case;
    char last_dest [64];
} s_capture_t;

static void
s_capture (void *arg, const char *dest, const P2c2r__Internal *msg)
{
    s_capture_t *c = (s_capture_t *) arg;
    c->sent++;
    c->last_case = msg->msg_case;
    snprintf (c->last_dest, sizeof c->last_dest, "%s", dest);
}

void
sch_core_test (bool verbose)
{
    (void) verbose;
    sch_core_config_t config;
    sch_core_config_default (&config);
    config.funds_check = false;
    P2C_CHECK (sch_core_config_validation (&config, "hash=quorum,compression=none") == 0);
    P2C_CHECK (config.validation_type [0] == SCH_VAL_QUORUM);
    P2C_CHECK (sch_core_config_validation (&config, "mining=spot") == -1);
    P2C_CHECK (sch_core_config_validation (&config, "hash=often") == -1);
    P2C_CHECK (sch_core_config_needs (&config, "rt_shadows:gpu,physics_fluid:ram=4") == 0);
    P2C_CHECK (sch_core_config_needs (&config, "rt_shadows:fast") == -1);
    sch_core_config_default (&config);
    config.funds_check = false;
    s_capture_t cap = { 0, 0, "" };
    sch_core_t *core = sch_core_new (&config, s_capture, &cap);
    P2C_CHECK (core);

    P2c2r__Session gw = P2C2R__SESSION__INIT;
    gw.gateway = "gw-1";
    gw.conn = 7;
    P2c2r__Submit submit = P2C2R__SUBMIT__INIT;
    submit.task_type = "hash";
    submit.params_json = "{}";
    P2c2r__TaskSubmit ts = P2C2R__TASK_SUBMIT__INIT;
    ts.task_id = "t-1";
    ts.gamer = &gw;
    ts.submit = &submit;
    ts.deadline_ms = 1000;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_TASK_SUBMIT;
    msg.task_submit = &ts;
    sch_core_handle (core, "gw-1", &msg, 0);
    P2C_CHECK (cap.sent == 1 && cap.last_case == P2C2R__INTERNAL__MSG_DELIVER);
    P2C_CHECK (sch_core_stats (core)->failed [SCH_ERR_NO_PEERS] == 1);

    P2c2r__Session ps = P2C2R__SESSION__INIT;
    ps.gateway = "gw-2";
    ps.conn = 3;
    char *types [] = { "encryption" };
    P2c2r__Capabilities caps = P2C2R__CAPABILITIES__INIT;
    caps.n_task_types = 1;
    caps.task_types = types;
    P2c2r__PeerUp up = P2C2R__PEER_UP__INIT;
    up.session = &ps;
    up.peer_id = "p";
    up.capabilities = &caps;
    P2c2r__Internal upm = P2C2R__INTERNAL__INIT;
    upm.msg_case = P2C2R__INTERNAL__MSG_PEER_UP;
    upm.peer_up = &up;
    sch_core_handle (core, "gw-2", &upm, 0);
    P2C_CHECK (sch_core_peer_busy (core, "gw-2", 3) == 0);
    ts.task_id = "t-2";
    sch_core_handle (core, "gw-1", &msg, 0);
    P2C_CHECK (cap.last_case == P2C2R__INTERNAL__MSG_TASK_ASSIGN);
    P2C_CHECK (!strcmp (cap.last_dest, "gw-2"));
    P2C_CHECK (sch_core_peer_busy (core, "gw-2", 3) == 1);
    //  at the deadline the gamer hears `timeout` and the slot is free
    sch_core_cron (core, 1000 * 1000);
    P2C_CHECK (cap.last_case == P2C2R__INTERNAL__MSG_DELIVER);
    P2C_CHECK (sch_core_stats (core)->failed [SCH_ERR_TIMEOUT] == 1);
    P2C_CHECK (sch_core_peer_busy (core, "gw-2", 3) == 0);
    char *json = sch_core_stats_json (core, 0);
    P2C_CHECK (json && strstr (json, "\"peers_online\":1"));
    free (json);
    sch_core_destroy (&core);
    P2C_CHECK (core == NULL);
    sch_core_destroy (&core);
}
