/*  The ledger server (see led_server.h). */
#include "led_server.h"
#include "led_earnings.h"
#include "led_metrics.h"
#include "led_money.h"
#include "p2c_metrics_http.h"
#include "p2c_auth.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_node.h"
#include "p2c_test.h"
#include "p2c_time.h"

#include <jansson.h>
#include <poll.h>

#define LED_CRON_MS 100
#define LED_STATS_MS 60000

typedef struct {
    zsock_t *pipe;              //  to our owner
    p2c_node_t *node;           //  broker connection
    //  settlement threads; the first also runs auth, admin and balance jobs
    zactor_t *workers [LED_MAX_DB_WORKERS];
    led_batch_t *inflights [LED_MAX_DB_WORKERS];    //  each one's batch, or NULL
    size_t nworkers;
    size_t batch_max;
    size_t pending_max;         //  settle requests we hold before dropping
    led_settle_t *pending;      //  requests waiting for the next batch
    size_t pending_count, pending_cap;
    zlistx_t *auth_jobs;        //  auth jobs in the database, freed if we stop first
    zlistx_t *admin_jobs;       //  operators' commands in the database
    zlistx_t *balq_jobs;        //  balance queries in the database
    zlistx_t *earn_jobs;        //  clients' GetEarnings in the database
    int64_t stats_ms;           //  when we last logged counters
    //  Sockets to drain before the loop sleeps: ZMQ_FD signals only new
    //  arrivals, and a send may take in an arrival's signal, so a socket
    //  we sent on or that poll reported must be read until EAGAIN
    bool node_dirty;
    bool worker_dirty [LED_MAX_DB_WORKERS];
    uint64_t wakeups;
    //  Counters
    uint64_t settled, replays, rejected, unacked, batches, failed_batches, dropped, auths;
    uint64_t admins, balance_updates, stats_requests;
    int64_t started_ms;         //  for uptime_s in the stats
    led_money_t *money;         //  the money summary last read, or NULL
    led_money_t *money_job;     //  the read in the database now, or NULL
    int64_t money_ms;           //  when it was asked for
    int64_t money_refresh_ms;
    p2c_metrics_http_t *metrics;    //  /metrics, or NULL
} s_server_t;

//  Connections the /metrics listener takes at once
#define LED_METRICS_CONNS 8

//  Hands a job to database thread w; 0 or -1 when its pipe is gone (said
//  in the log). Its pipe is then read before the loop sleeps: a send may
//  take in the signal of an answer that came meanwhile.
static int
s_to_worker (s_server_t *self, size_t w, const char *command, void *job)
{
    self->worker_dirty [w] = true;
    if (led_pipe_send (zactor_sock (self->workers [w]), command, job) == 0)
        return 0;
    log_warn ("cannot reach the database thread");
    return -1;
}

//  Hands the waiting requests to every idle settlement thread, a batch
//  each. Two batches in the database at once overlap their inserts (each
//  backend uses its own CPU); they meet only on the account rows, which the
//  journal trigger locks in id order just before COMMIT.
static void
s_dispatch (s_server_t *self)
{
    for (size_t w = 0; w < self->nworkers && self->pending_count > 0; w++) {
        if (self->inflights [w])
            continue;
        size_t n = self->pending_count < self->batch_max ? self->pending_count : self->batch_max;
        led_batch_t *batch = led_batch_new (n);
        memcpy (batch->items, self->pending, n * sizeof (led_settle_t));
        batch->count = n;
        memmove (self->pending, self->pending + n,
                 (self->pending_count - n) * sizeof (led_settle_t));
        self->pending_count -= n;
        self->inflights [w] = batch;
        if (s_to_worker (self, w, "SETTLE", batch) != 0) {
            self->inflights [w] = NULL;
            led_batch_destroy (&batch);
        }
    }
}

//  A fresh slot in the pending queue for a settle or reverse request, NULL
//  when it must be dropped (the scheduler asks again).
static led_settle_t *
s_pending_add (s_server_t *self, const char *sender, const char *task_id)
{
    if (!task_id || !*task_id) {
        log_debug ("settle without task id from=%s", sender);
        self->dropped++;
        return NULL;
    }
    if (self->pending_count >= self->pending_max) {
        //  The database cannot keep up; the scheduler will ask again
        self->dropped++;
        log_debug ("settle dropped, queue full task=%.128s", task_id);
        return NULL;
    }
    if (self->pending_count == self->pending_cap) {
        self->pending_cap = self->pending_cap ? self->pending_cap * 2 : 64;
        self->pending = (led_settle_t *) p2c_realloc (self->pending,
                                                  self->pending_cap * sizeof (led_settle_t));
    }
    led_settle_t *it = &self->pending [self->pending_count++];
    memset (it, 0, sizeof *it);
    it->task_id = p2c_strdup (task_id);
    it->reply_to = p2c_strdup (sender);
    return it;
}

//  A released result lost its validation: its earning goes back to the
//  treasury, in the next batch, acked like a settlement (reversed set).
static void
s_on_reverse (s_server_t *self, const char *sender, P2c2r__SettleReverse *req)
{
    led_settle_t *it = s_pending_add (self, sender, req->task_id);
    if (!it)
        return;
    it->reverse = true;
    it->task_type = p2c_strdup ("");
    it->reason = p2c_strdup (req->reason ? req->reason : "");
    s_dispatch (self);
}

//  A gateway told its gamer that the task failed: recorded, and a
//  settlement of it refunded, in the next batch; acked to the gateway
static void
s_on_task_failed (s_server_t *self, const char *sender, P2c2r__TaskFailed *req)
{
    led_settle_t *it = s_pending_add (self, sender, req->task_id);
    if (!it)
        return;
    it->failed = true;
    it->task_type = p2c_strdup ("");
    it->gamer_account = req->gamer_account;
    it->reason = p2c_strdup (req->code ? req->code : "");
    s_dispatch (self);
}

static void
s_on_settle (s_server_t *self, const char *sender, P2c2r__SettleRequest *req)
{
    led_settle_t *it = s_pending_add (self, sender, req->task_id);
    if (!it)
        return;
    it->task_type = p2c_strdup (req->task_type ? req->task_type : "");
    it->gamer_account = req->gamer_account;
    it->peer_account = req->peer_account;
    it->billed_us = req->billed_us;
    it->compute_us = req->compute_us;
    it->observed_us = req->observed_us;
    s_dispatch (self);
}

static void
s_on_auth (s_server_t *self, const char *sender, P2c2r__AuthRequest *req)
{
    led_auth_job_t *job = (led_auth_job_t *) zmalloc (sizeof (led_auth_job_t));
    job->corr = req->corr;
    job->role = p2c_strdup (req->role ? req->role : "");
    job->name = p2c_strdup (req->name ? req->name : "");
    job->key_hash = p2c_strdup (req->key_hash ? req->key_hash : "");
    job->open = req->open;
    job->recheck_account = req->account_id;
    job->reply_to = p2c_strdup (sender);
    zlistx_add_end (self->auth_jobs, job);
    if (s_to_worker (self, 0, "AUTH", job) != 0) {
        zlistx_delete (self->auth_jobs, zlistx_find (self->auth_jobs, job));
    }
}

//  Admin commands arrive from p2c2r-ctl; the database thread runs them
//  between settlement batches, in order.
static void
s_on_admin (s_server_t *self, const char *sender, P2c2r__AdminRequest *req)
{
    led_admin_job_t *job = (led_admin_job_t *) zmalloc (sizeof (led_admin_job_t));
    job->corr = req->corr;
    job->command = p2c_strdup (req->command ? req->command : "");
    job->args_json = p2c_strdup (req->args_json ? req->args_json : "");
    job->reply_to = p2c_strdup (sender);
    //  "ctl:NAME": the operator key the broker authenticated; the whole
    //  stamp when it names no key (--curve false)
    const char *stamp = p2c_node_stamp (self->node);
    const char *colon = strchr (stamp, ':');
    job->who = p2c_strdup (colon && colon [1] ? colon + 1 : *stamp ? stamp : "unknown");
    zlistx_add_end (self->admin_jobs, job);
    if (s_to_worker (self, 0, "ADMIN", job) != 0) {
        zlistx_delete (self->admin_jobs, zlistx_find (self->admin_jobs, job));
    }
}

//  The scheduler does not know these gamers (it restarted, say)
#define LED_MAX_BALANCE_QUERY 10000

static void
s_on_balance_query (s_server_t *self, const char *sender, P2c2r__BalanceQuery *req)
{
    if (req->n_account_ids == 0 || req->n_account_ids > LED_MAX_BALANCE_QUERY) {
        self->dropped++;
        log_debug ("balance query dropped ids=%zu from=%s", req->n_account_ids, sender);
        return;
    }
    led_balq_job_t *job = (led_balq_job_t *) zmalloc (sizeof (led_balq_job_t));
    job->ids = (int64_t *) p2c_malloc (req->n_account_ids * sizeof (int64_t));
    memcpy (job->ids, req->account_ids, req->n_account_ids * sizeof (int64_t));
    job->count = req->n_account_ids;
    zlistx_add_end (self->balq_jobs, job);
    if (s_to_worker (self, 0, "BALANCES", job) != 0) {
        zlistx_delete (self->balq_jobs, zlistx_find (self->balq_jobs, job));
    }
}

//  A client's own figures (GetEarnings through its gateway), read on the
//  first database thread. Bounded: past LED_MAX_EARNINGS_JOBS in the
//  database the gateway hears unavailable at once, so a flood of clients
//  cannot queue unbounded work ahead of auth and settlement.
#define LED_MAX_EARNINGS_JOBS 256

static void
s_earnings_reply (s_server_t *self, led_earnings_job_t *job)
{
    const led_earnings_t *f = &job->figures;
    P2c2r__Earnings e = P2C2R__EARNINGS__INIT;
    P2c2r__EarningsReply reply = P2C2R__EARNINGS_REPLY__INIT;
    reply.corr = job->corr;
    reply.account_id = job->account_id;
    reply.ok = job->status == LED_EARNINGS_OK;
    reply.code = (char *) (reply.ok ? "" : job->status == LED_EARNINGS_NOT_FOUND ? "not_found"
                                                                                : "unavailable");
    reply.message = (char *) (reply.ok ? ""
                    : job->status == LED_EARNINGS_NOT_FOUND ? "no such account"
                    : "the ledger database is unavailable; try again later");
    if (reply.ok) {
        e.role = (char *) f->role;
        e.balance_pico = f->balance;
        e.earned_today_pico = f->earned_today;
        e.earned_total_pico = f->earned_total;
        e.spent_today_pico = f->spent_today;
        e.spent_total_pico = f->spent_total;
        e.pending_payout_pico = f->pending_payout;
        e.payout_threshold_pico = f->payout_threshold;
        e.gamer_pico_per_hour = f->rates.gamer_per_hour;
        e.peer_pico_per_hour = f->rates.peer_per_hour;
        e.fee_bp = f->rates.fee_bp;
        e.tasks_today = f->tasks_today;
        e.tasks_total = f->tasks_total;
        e.as_of = (char *) f->as_of;
        e.subsidy_limited = f->subsidy_per_day >= 0;
        e.subsidy_pico_per_day = e.subsidy_limited ? f->subsidy_per_day : 0;
        e.subsidy_left_today_pico = e.subsidy_limited ? f->subsidy_left_today : 0;
        e.subsidy_spent = f->subsidy_spent;
        e.peer_pico_per_hour_in_force = f->peer_per_hour_in_force;
        reply.earnings = &e;
    }
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_EARNINGS_REPLY;
    msg.earnings_reply = &reply;
    p2c_node_send (self->node, job->reply_to, &msg);
    log_debug ("earnings account=%lld ok=%d code=%s", (long long) job->account_id,
               reply.ok, reply.code);
}

static void
s_on_earnings (s_server_t *self, const char *sender, P2c2r__EarningsRequest *req)
{
    led_earnings_job_t *job = led_earnings_job_new (req->corr, req->account_id, req->role,
                                                    sender);
    if (zlistx_size (self->earn_jobs) >= LED_MAX_EARNINGS_JOBS) {
        s_earnings_reply (self, job);       //  status: unavailable
        led_earnings_job_destroy (&job);
        return;
    }
    zlistx_add_end (self->earn_jobs, job);
    if (s_to_worker (self, 0, "EARNINGS", job) != 0) {
        s_earnings_reply (self, job);
        zlistx_delete (self->earn_jobs, zlistx_find (self->earn_jobs, job));
    }
}

//  One BalanceUpdate per gamer to the scheduler service; when a gamer
//  appears twice the later balance wins (it was read later)
static void
s_send_balances (s_server_t *self, const led_balances_t *balances)
{
    zhashx_t *sent = zhashx_new ();
    for (size_t k = balances->count; k-- > 0; ) {
        char key [32];
        snprintf (key, sizeof key, "%lld", (long long) balances->items [k].account_id);
        if (zhashx_insert (sent, key, (void *) 1) != 0)
            continue;           //  a later balance of this gamer went already
        const led_balance_t *b = &balances->items [k];
        P2c2r__BalanceUpdate up = P2C2R__BALANCE_UPDATE__INIT;
        up.account_id = b->account_id;
        up.balance_pico = b->balance_pico;
        up.disabled = b->disabled;
        P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
        msg.msg_case = P2C2R__INTERNAL__MSG_BALANCE_UPDATE;
        msg.balance_update = &up;
        p2c_node_send (self->node, "scheduler", &msg);
        self->balance_updates++;
    }
    zhashx_destroy (&sent);
}

//  A gateway's /api/stats asks for our figures: the counters this loop
//  keeps, answered at once (no database round trip, so a busy database
//  never delays the page; the money itself is p2c2r-ctl's to report)
static json_t *
s_stats (s_server_t *self)
{
    size_t inflight = 0;
    for (size_t w = 0; w < self->nworkers; w++)
        inflight += self->inflights [w] != NULL;
    json_t *root = json_pack ("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
                              " s:I, s:I, s:I, s:I}",
        "settled", (json_int_t) self->settled,
        "replays", (json_int_t) self->replays,
        "rejected", (json_int_t) self->rejected,
        "unacked", (json_int_t) self->unacked,
        "batches", (json_int_t) self->batches,
        "failed_batches", (json_int_t) self->failed_batches,
        "dropped", (json_int_t) self->dropped,
        "auths", (json_int_t) self->auths,
        "admins", (json_int_t) self->admins,
        "balance_updates", (json_int_t) self->balance_updates,
        "stats_requests", (json_int_t) self->stats_requests,
        "pending", (json_int_t) self->pending_count,
        "pending_max", (json_int_t) self->pending_max,
        "inflight_batches", (json_int_t) inflight,
        "db_workers", (json_int_t) self->nworkers,
        "uptime_s", (json_int_t) ((p2c_now_ms () - self->started_ms) / 1000));
    led_money_json (self->money, root);
    return root;
}

//  Prometheus' scrape: the same figures
static void
s_render (void *arg, FILE *f)
{
    json_t *stats = s_stats ((s_server_t *) arg);
    led_metrics_render (stats, f);
    json_decref (stats);
}

static void
s_on_stats (s_server_t *self, const char *sender, P2c2r__StatsRequest *req)
{
    self->stats_requests++;
    json_t *root = s_stats (self);
    char *json = root ? json_dumps (root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref (root);
    P2c2r__StatsReply reply = P2C2R__STATS_REPLY__INIT;
    reply.corr = req->corr;
    reply.service = "ledger";
    reply.stats_json = json ? json : "{}";
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_STATS_REPLY;
    msg.stats_reply = &reply;
    p2c_node_send (self->node, sender, &msg);
    free (json);
}

//  One message from the broker connection (s_node_drain)
static void
s_on_message (void *arg, const char *sender, P2c2r__Internal *msg)
{
    s_server_t *self = (s_server_t *) arg;
    //  protobuf-c sets the member of the case it decoded; an empty
    //  sender is the broker itself, which sends us nothing to serve
    switch (*sender ? msg->msg_case : P2C2R__INTERNAL__MSG__NOT_SET) {
        case P2C2R__INTERNAL__MSG_SETTLE_REQUEST:
            s_on_settle (self, sender, msg->settle_request);
            break;
        case P2C2R__INTERNAL__MSG_SETTLE_REVERSE:
            s_on_reverse (self, sender, msg->settle_reverse);
            break;
        case P2C2R__INTERNAL__MSG_TASK_FAILED:
            s_on_task_failed (self, sender, msg->task_failed);
            break;
        case P2C2R__INTERNAL__MSG_AUTH_REQUEST:
            s_on_auth (self, sender, msg->auth_request);
            break;
        case P2C2R__INTERNAL__MSG_ADMIN_REQUEST:
            s_on_admin (self, sender, msg->admin_request);
            break;
        case P2C2R__INTERNAL__MSG_BALANCE_QUERY:
            s_on_balance_query (self, sender, msg->balance_query);
            break;
        case P2C2R__INTERNAL__MSG_EARNINGS_REQUEST:
            s_on_earnings (self, sender, msg->earnings_request);
            break;
        case P2C2R__INTERNAL__MSG_STATS_REQUEST:
            s_on_stats (self, sender, msg->stats_request);
            break;
        default:
            if (msg->msg_case != P2C2R__INTERNAL__MSG_NODE_EVENT) {
                self->dropped++;
                log_debug ("unexpected message type=%s from=%s",
                           p2c_msg_internal_name (msg), sender);
            }
            break;
    }
}

//  Serves every message waiting on the broker connection, until EAGAIN
static void
s_node_drain (s_server_t *self)
{
    p2c_node_drain (self->node, SIZE_MAX, s_on_message, self);
}

static void
s_send_acks (s_server_t *self, led_batch_t *batch)
{
    for (size_t i = 0; i < batch->count; i++) {
        led_settle_t *it = &batch->items [i];
        if (batch->rc != 0 || it->status == LED_SETTLE_PENDING) {
            self->unacked++;
            continue;
        }
        P2c2r__SettleAck ack = P2C2R__SETTLE_ACK__INIT;
        ack.task_id = it->task_id;
        ack.reversed = it->reverse;
        ack.failed = it->failed;
        if (it->status == LED_SETTLE_REJECTED) {
            ack.ok = false;
            ack.error = (char *) (it->error ? it->error : "rejected");
            self->rejected++;
            log_warn ("settle rejected task=%s reason=\"%s\"", it->task_id, ack.error);
        }
        else {
            ack.ok = true;
            ack.gamer_charge_pico = it->split.gamer_charge;
            ack.peer_earning_pico = it->split.peer_earning;
            ack.fee_pico = it->split.fee;
            //  a failure recorded is neither a settlement nor its replay
            if (it->status == LED_SETTLE_REPLAY && !it->failed)
                self->replays++;
            else
            if (!it->failed)
                self->settled++;
        }
        P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
        msg.msg_case = P2C2R__INTERNAL__MSG_SETTLE_ACK;
        msg.settle_ack = &ack;
        p2c_node_send (self->node, it->reply_to, &msg);
    }
}

//  A job back from a database thread; its replies go out on the broker
//  connection
static void
s_on_answer (s_server_t *self, const char *command, void *job)
{
    self->node_dirty = true;
    size_t w = 0;
    while (w < self->nworkers && (!job || job != self->inflights [w]))
        w++;
    if (!strcmp (command, "SETTLED") && w < self->nworkers) {
        led_batch_t *batch = self->inflights [w];
        self->inflights [w] = NULL;
        self->batches++;
        if (batch->rc != 0) {
            self->failed_batches++;
            log_warn ("batch not committed, no acks tasks=%zu", batch->count);
        }
        //  Balances first: the scheduler then knows them when it releases
        if (batch->rc == 0)
            s_send_balances (self, &batch->balances);
        s_send_acks (self, batch);
        log_debug ("batch acked tasks=%zu", batch->count);
        led_batch_destroy (&batch);
        s_dispatch (self);
    }
    else
    if (!strcmp (command, "AUTHED") && job) {
        led_auth_job_t *aj = (led_auth_job_t *) job;
        P2c2r__AuthReply reply = P2C2R__AUTH_REPLY__INIT;
        reply.corr = aj->corr;
        reply.ok = aj->status == LED_AUTH_OK;
        reply.account_id = aj->account_id;
        reply.code = (char *) (aj->status == LED_AUTH_OK ? ""
                     : aj->status == LED_AUTH_BAD_REQUEST ? "bad_request"
                     : aj->status == LED_AUTH_UNAVAILABLE ? "unavailable" : "auth_failed");
        reply.message = (char *) (aj->message ? aj->message : "");
        reply.owner = aj->owner;
        //  The balance before the reply, so that it reaches the scheduler
        //  before the gamer's first submit
        if (reply.ok)
            s_send_balances (self, &aj->balances);
        P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
        msg.msg_case = P2C2R__INTERNAL__MSG_AUTH_REPLY;
        msg.auth_reply = &reply;
        p2c_node_send (self->node, aj->reply_to, &msg);
        self->auths++;
        log_info ("auth role=%s name=%s ok=%d code=%s account=%lld", aj->role,
                  aj->name, reply.ok, reply.code, (long long) aj->account_id);
        zlistx_delete (self->auth_jobs, zlistx_find (self->auth_jobs, aj));
    }
    else
    if (!strcmp (command, "ADMINED") && job) {
        led_admin_job_t *aj = (led_admin_job_t *) job;
        if (aj->status == LED_ADMIN_OK)
            s_send_balances (self, &aj->balances);
        P2c2r__AdminReply reply = P2C2R__ADMIN_REPLY__INIT;
        reply.corr = aj->corr;
        reply.ok = aj->status == LED_ADMIN_OK;
        reply.code = (char *) (reply.ok ? "" : aj->code ? aj->code : "refused");
        reply.message = reply.ok ? "" : aj->message ? aj->message : "";
        reply.result_json = reply.ok && aj->result_json ? aj->result_json : "{}";
        P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
        msg.msg_case = P2C2R__INTERNAL__MSG_ADMIN_REPLY;
        msg.admin_reply = &reply;
        p2c_node_send (self->node, aj->reply_to, &msg);
        self->admins++;
        log_info ("admin command=%s who=%s from=%s ok=%d code=%s", aj->command, aj->who,
                  aj->reply_to, reply.ok, reply.code);
        zlistx_delete (self->admin_jobs, zlistx_find (self->admin_jobs, aj));
    }
    else
    if (!strcmp (command, "BALANCED") && job) {
        led_balq_job_t *bj = (led_balq_job_t *) job;
        s_send_balances (self, &bj->balances);
        zlistx_delete (self->balq_jobs, zlistx_find (self->balq_jobs, bj));
    }
    else
    if (!strcmp (command, "EARNED") && job) {
        s_earnings_reply (self, (led_earnings_job_t *) job);
        zlistx_delete (self->earn_jobs, zlistx_find (self->earn_jobs, job));
    }
    else
    if (!strcmp (command, "MONEYED") && job && job == self->money_job) {
        //  a failed read keeps the last figures: they were true when read
        self->money_job = NULL;
        led_money_t *m = (led_money_t *) job;
        if (m->ok) {
            free (self->money);
            self->money = m;
        }
        else
            free (m);
    }
    else
        log_warn ("unexpected answer from the database thread command=%s", command);
}

static void
s_cron (s_server_t *self)
{
    p2c_node_cron (self->node);
    //  Sending may have made the socket readable without a new event
    self->node_dirty = true;
    int64_t now = p2c_now_ms ();
    if (self->metrics)
        p2c_metrics_http_cron (self->metrics, now);
    //  The money summary: at start, then every money-refresh-ms (so after
    //  a reconnect too), one read at a time
    if (!self->money_job && (!self->money_ms || now - self->money_ms >= self->money_refresh_ms)) {
        self->money_ms = now;
        self->money_job = (led_money_t *) zmalloc (sizeof (led_money_t));
        if (s_to_worker (self, 0, "MONEY", self->money_job) != 0) {
            free (self->money_job);
            self->money_job = NULL;
        }
    }
    if (now - self->stats_ms >= LED_STATS_MS) {
        self->stats_ms = now;
        log_info ("stats settled=%llu replays=%llu rejected=%llu unacked=%llu"
                  " batches=%llu failed_batches=%llu dropped=%llu auths=%llu admins=%llu"
                  " balance_updates=%llu pending=%zu wakeups=%llu",
                  (unsigned long long) self->settled, (unsigned long long) self->replays,
                  (unsigned long long) self->rejected, (unsigned long long) self->unacked,
                  (unsigned long long) self->batches, (unsigned long long) self->failed_batches,
                  (unsigned long long) self->dropped, (unsigned long long) self->auths,
                  (unsigned long long) self->admins, (unsigned long long) self->balance_updates,
                  self->pending_count, (unsigned long long) self->wakeups);
    }
}

//  Most drain passes per wakeup before the loop polls again (with no wait):
//  under a flood the owner's pipe and the timer still get their turn
#define LED_MAX_PASSES 64

//  The event loop. It sleeps in one poll(2) on the ZMQ_FDs of the broker
//  connection, the owner's pipe and the database threads' pipes, rather
//  than in zloop, whose zmq_poll makes about six system calls per wakeup
//  (a zero-timeout pass, then ZMQ_EVENTS on each socket before and after
//  the wait); at one task per batch the loop wakes twice per task. Before
//  it sleeps, every socket that poll reported or that we sent on is read
//  until EAGAIN (see node_dirty); the others were left drained and
//  untouched, so their ZMQ_FD will signal. Returns true when the owner
//  said $TERM, false when interrupted.
static bool
s_run (s_server_t *self)
{
    struct pollfd items [2 + LED_MAX_DB_WORKERS + 1 + LED_METRICS_CONNS];
    items [0] = (struct pollfd) { zsock_fd (self->pipe), POLLIN, 0 };
    items [1] = (struct pollfd) { p2c_node_fd (self->node), POLLIN, 0 };
    for (size_t w = 0; w < self->nworkers; w++) {
        items [2 + w] = (struct pollfd) { zsock_fd (zactor_sock (self->workers [w])), POLLIN, 0 };
        self->worker_dirty [w] = true;
    }
    nfds_t nitems = (nfds_t) (2 + self->nworkers);
    self->node_dirty = true;
    bool check_pipe = true;         //  a command may be queued already
    int64_t cron_at = p2c_now_ms () + LED_CRON_MS;
    while (!zsys_interrupted) {
        if (check_pipe) {
            char command [16];
            void *job = NULL;
            int rc;
            while ((rc = led_pipe_recv (self->pipe, command, sizeof command, &job)) == 1)
                if (!strcmp (command, "$TERM"))
                    return true;
            if (rc < 0)
                return true;        //  our owner is gone
        }
        int64_t now = p2c_now_ms ();
        if (now >= cron_at) {
            s_cron (self);
            cron_at = now + LED_CRON_MS;
        }
        bool dirty = true;
        for (int pass = 0; dirty && pass < LED_MAX_PASSES; pass++) {
            if (self->node_dirty) {
                self->node_dirty = false;
                s_node_drain (self);
            }
            for (size_t w = 0; w < self->nworkers; w++) {
                if (!self->worker_dirty [w])
                    continue;
                self->worker_dirty [w] = false;
                char command [16];
                void *job = NULL;
                while (led_pipe_recv (zactor_sock (self->workers [w]), command, sizeof command,
                                      &job) == 1)
                    s_on_answer (self, command, job);
            }
            dirty = self->node_dirty;
            for (size_t w = 0; w < self->nworkers; w++)
                dirty = dirty || self->worker_dirty [w];
        }
        now = p2c_now_ms ();
        int timeout = dirty ? 0 : (int) (cron_at > now ? cron_at - now : 0);
        for (nfds_t i = 0; i < nitems; i++)
            items [i].revents = 0;
        //  the metrics listener's sockets come last, afresh each time
        size_t nmetrics = self->metrics
            ? p2c_metrics_http_pollfds (self->metrics, items + nitems, 1 + LED_METRICS_CONNS) : 0;
        if (poll (items, nitems + nmetrics, timeout) < 0 && errno != EINTR) {
            log_warn ("poll failed errno=%d", errno);
            return false;
        }
        self->wakeups++;
        check_pipe = items [0].revents != 0;
        if (items [1].revents)
            self->node_dirty = true;
        for (size_t w = 0; w < self->nworkers; w++)
            if (items [2 + w].revents)
                self->worker_dirty [w] = true;
        if (nmetrics)
            p2c_metrics_http_handle (self->metrics, items + nitems, nmetrics);
    }
    return false;
}

static void
s_auth_job_free (void **item_p)
{
    led_auth_job_destroy ((led_auth_job_t **) item_p);
}

static void
s_admin_job_free (void **item_p)
{
    led_admin_job_destroy ((led_admin_job_t **) item_p);
}

static void
s_balq_job_free (void **item_p)
{
    led_balq_job_destroy ((led_balq_job_t **) item_p);
}

static void
s_earn_job_free (void **item_p)
{
    led_earnings_job_destroy ((led_earnings_job_t **) item_p);
}

void
led_server_actor (zsock_t *pipe, void *args)
{
    led_server_args_t *a = (led_server_args_t *) args;
    s_server_t self_s;
    s_server_t *self = &self_s;
    memset (self, 0, sizeof *self);
    self->pipe = pipe;
    self->batch_max = a->batch_max ? a->batch_max : 1;
    self->pending_max = self->batch_max * 100;
    self->node = p2c_node_new (a->broker, "ledger", a->node_id);
    self->nworkers = a->db_workers < 1 ? 1 : a->db_workers > LED_MAX_DB_WORKERS
                     ? LED_MAX_DB_WORKERS : a->db_workers;
    bool started = self->node != NULL;
    for (size_t w = 0; w < self->nworkers && started; w++) {
        self->workers [w] = zactor_new (led_worker_actor, &a->db);
        started = self->workers [w] != NULL;
    }
    if (!started) {
        log_warn ("cannot start broker=%s", a->broker);
        for (size_t w = 0; w < self->nworkers; w++)
            zactor_destroy (&self->workers [w]);
        p2c_node_destroy (&self->node);
        zsock_signal (pipe, 0);
        zstr_send (pipe, "FAILED");
        return;
    }
    self->auth_jobs = zlistx_new ();
    zlistx_set_destructor (self->auth_jobs, s_auth_job_free);
    self->admin_jobs = zlistx_new ();
    zlistx_set_destructor (self->admin_jobs, s_admin_job_free);
    self->balq_jobs = zlistx_new ();
    zlistx_set_destructor (self->balq_jobs, s_balq_job_free);
    self->earn_jobs = zlistx_new ();
    zlistx_set_destructor (self->earn_jobs, s_earn_job_free);
    self->stats_ms = self->started_ms = p2c_now_ms ();
    self->money_refresh_ms = a->money_refresh_ms > 0 ? a->money_refresh_ms : 2000;
    log_info ("started node=%s broker=%s batch_max=%zu", p2c_node_id (self->node),
              a->broker, self->batch_max);
    //  a metrics port that cannot be bound is said in the log; the ledger
    //  goes on without it
    if (a->metrics_listen && *a->metrics_listen)
        self->metrics = p2c_metrics_http_new (a->metrics_listen, LED_METRICS_CONNS, s_render, self);
    zsock_signal (pipe, 0);

    //  $TERM from our owner, or interrupted: then tell the owner
    if (!s_run (self))
        zstr_send (pipe, "STOPPED");
    log_info ("stopping settled=%llu replays=%llu pending=%zu batches=%llu wakeups=%llu",
              (unsigned long long) self->settled, (unsigned long long) self->replays,
              self->pending_count, (unsigned long long) self->batches,
              (unsigned long long) self->wakeups);
    //  The worker finishes its current job first; what it held is ours
    for (size_t w = 0; w < self->nworkers; w++) {
        zactor_destroy (&self->workers [w]);
        led_batch_destroy (&self->inflights [w]);
    }
    for (size_t i = 0; i < self->pending_count; i++)
        led_settle_clear (&self->pending [i]);
    free (self->pending);
    zlistx_destroy (&self->auth_jobs);
    zlistx_destroy (&self->admin_jobs);
    zlistx_destroy (&self->balq_jobs);
    zlistx_destroy (&self->earn_jobs);
    free (self->money_job);     //  the threads are gone: nobody else holds it
    free (self->money);
    p2c_metrics_http_destroy (&self->metrics);
    p2c_node_destroy (&self->node);
}

//  --------------------------------------------------------------------------
//  Self-test against a ROUTER standing in for the broker (needs
//  P2C2R_TEST_DB): an AuthRequest gets its AuthReply with the same corr, a
//  SettleRequest its SettleAck with p2c_money_split's amounts, a replay the
//  same amounts, and a malformed request a negative ack.

#include <libpq-fe.h>

static void
s_test_send (zsock_t *router, const char *node, const char *sender, P2c2r__Internal *msg)
{
    size_t len = 0;
    uint8_t *buf = p2c_msg_pack_internal (msg, 0, &len);
    //  As the broker does: [sender NUL stamp NUL body], the stamp of a role
    //  that may send this type
    const char *stamp = p2c_auth_sender_of ((int) msg->msg_case);
    size_t slen = strlen (sender), tlen = strlen (stamp);
    uint8_t *frame = (uint8_t *) p2c_malloc (slen + tlen + 2 + len);
    memcpy (frame, sender, slen + 1);
    memcpy (frame + slen + 1, stamp, tlen + 1);
    memcpy (frame + slen + tlen + 2, buf, len);
    zmsg_t *m = zmsg_new ();
    zmsg_addstr (m, node);
    zmsg_addmem (m, frame, slen + tlen + 2 + len);
    zmsg_send (&m, router);
    free (frame);
    free (buf);
}

//  Unpacks a node's frame [dest NUL body]: *to_p (the caller's) and the
//  message, NULL when it has none
static P2c2r__Internal *
s_test_unpack (zmsg_t *m, char **to_p)
{
    char *from = zmsg_popstr (m);
    zframe_t *frame = zmsg_pop (m);
    zstr_free (&from);
    *to_p = NULL;
    const byte *nul = frame ? (const byte *) memchr (zframe_data (frame), 0, zframe_size (frame))
                            : NULL;
    P2c2r__Internal *msg = NULL;
    if (nul) {
        size_t dlen = (size_t) (nul - zframe_data (frame));
        *to_p = p2c_strndup ((const char *) zframe_data (frame), dlen);
        msg = p2c_msg_unpack_internal (nul + 1, zframe_size (frame) - dlen - 1);
    }
    zframe_destroy (&frame);
    return msg;
}

//  The next message from the ledger to dest that is not a hello; NULL after
//  a few seconds
static P2c2r__Internal *
s_test_recv (zsock_t *router, const char *dest)
{
    //  Bounded by time, not by count: messages to others (balance updates
    //  to the scheduler) may come in between, as many as there are batches
    zsock_set_rcvtimeo (router, 500);
    int64_t until = p2c_now_ms () + 10000;
    while (p2c_now_ms () < until) {
        zmsg_t *m = zmsg_recv (router);
        if (!m)
            continue;
        char *to = NULL;
        P2c2r__Internal *msg = s_test_unpack (m, &to);
        if (msg && (!to || strcmp (to, dest)))
            p2c_msg_internal_free (&msg);
        zstr_free (&to);
        zmsg_destroy (&m);
        if (msg)
            return msg;
    }
    return NULL;
}

//  The next message from the ledger to anyone but the broker; *dest_p gets
//  where it goes
static P2c2r__Internal *
s_test_recv_any (zsock_t *router, char **dest_p)
{
    zsock_set_rcvtimeo (router, 500);
    for (int i = 0; i < 20; i++) {
        zmsg_t *m = zmsg_recv (router);
        if (!m)
            continue;
        char *to = NULL;
        P2c2r__Internal *msg = s_test_unpack (m, &to);
        if (msg && (!to || !*to))
            p2c_msg_internal_free (&msg);
        zmsg_destroy (&m);
        if (msg) {
            *dest_p = to;
            return msg;
        }
        zstr_free (&to);
    }
    return NULL;
}

static void
s_test_quiet (void *arg, const char *message)
{
    (void) arg; (void) message;
}

void
led_server_test (bool verbose)
{
    (void) verbose;
    const char *conninfo = getenv ("P2C2R_TEST_DB");
    if (!conninfo || !*conninfo) {
        fprintf (stderr, "led_server_test: FAIL: P2C2R_TEST_DB is not set\n");
        P2C_CHECK (!"P2C2R_TEST_DB set");
        return;
    }
    char schema [64];
    snprintf (schema, sizeof schema, "led_stest_%d_%04x", (int) getpid (), (unsigned) randof (0x10000));
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    P2C_CHECK (port > 0);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    led_server_args_t args = { endpoint, "ledger-test", 100, 2,
                               { conninfo, schema, led_store_test_sql_dir (),
                                 P2C_RATES_DEFAULT, LED_POLICY_DEFAULT, NULL }, NULL, 100 };
    zactor_t *server = zactor_new (led_server_actor, &args);

    //  Auth a gamer and a peer
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    P2c2r__AuthRequest auth = P2C2R__AUTH_REQUEST__INIT;
    auth.corr = 77;
    auth.role = "gamer";
    auth.name = "srv-gamer";
    auth.open = true;
    msg.msg_case = P2C2R__INTERNAL__MSG_AUTH_REQUEST;
    msg.auth_request = &auth;
    //  the ROUTER learns the node's id from its first hello
    zsock_set_rcvtimeo (router, 5000);
    zmsg_t *hello = zmsg_recv (router);
    P2C_CHECK (hello != NULL);
    zmsg_destroy (&hello);
    s_test_send (router, "ledger-test", "gw-test", &msg);
    P2c2r__Internal *got = s_test_recv (router, "gw-test");
    P2C_CHECK (got && got->msg_case == P2C2R__INTERNAL__MSG_AUTH_REPLY);
    P2C_CHECK (got && got->auth_reply->corr == 77 && got->auth_reply->ok
               && got->auth_reply->account_id > 0);
    int64_t gamer = got ? got->auth_reply->account_id : 0;
    p2c_msg_internal_free (&got);
    auth.corr = 78;
    auth.role = "peer";
    auth.name = "srv-peer";
    s_test_send (router, "ledger-test", "gw-test", &msg);
    got = s_test_recv (router, "gw-test");
    P2C_CHECK (got && got->msg_case == P2C2R__INTERNAL__MSG_AUTH_REPLY
               && got->auth_reply->corr == 78 && got->auth_reply->ok);
    int64_t peer = got ? got->auth_reply->account_id : 0;
    p2c_msg_internal_free (&got);
    //  Without open registration, an unknown key's hash: auth_failed
    auth.corr = 79;
    auth.open = false;
    auth.key_hash = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";
    s_test_send (router, "ledger-test", "gw-test", &msg);
    got = s_test_recv (router, "gw-test");
    P2C_CHECK (got && got->msg_case == P2C2R__INTERNAL__MSG_AUTH_REPLY && got->auth_reply->corr == 79
               && !got->auth_reply->ok && !strcmp (got->auth_reply->code, "auth_failed"));
    p2c_msg_internal_free (&got);

    //  Settle, then replay: the same amounts both times
    P2c2r__SettleRequest req = P2C2R__SETTLE_REQUEST__INIT;
    req.task_id = "srv-task-1";
    req.gamer_account = gamer;
    req.peer_account = peer;
    req.task_type = "ai_pathfinding";
    req.billed_us = 12500;
    req.compute_us = 12500;
    req.observed_us = 13000;
    msg.msg_case = P2C2R__INTERNAL__MSG_SETTLE_REQUEST;
    msg.settle_request = &req;
    for (int round = 0; round < 2; round++) {
        s_test_send (router, "ledger-test", "sch-test", &msg);
        got = s_test_recv (router, "sch-test");
        P2C_CHECK (got && got->msg_case == P2C2R__INTERNAL__MSG_SETTLE_ACK);
        P2C_CHECK (got && !strcmp (got->settle_ack->task_id, "srv-task-1") && got->settle_ack->ok);
        P2C_CHECK (got && got->settle_ack->gamer_charge_pico == 34722
                   && got->settle_ack->peer_earning_pico == 520833
                   && got->settle_ack->fee_pico == 3472);
        p2c_msg_internal_free (&got);
    }
    //  An unknown account is refused with a reason
    req.task_id = "srv-task-2";
    req.peer_account = gamer;
    s_test_send (router, "ledger-test", "sch-test", &msg);
    got = s_test_recv (router, "sch-test");
    P2C_CHECK (got && got->msg_case == P2C2R__INTERNAL__MSG_SETTLE_ACK && !got->settle_ack->ok
               && got->settle_ack->error && *got->settle_ack->error);
    p2c_msg_internal_free (&got);

    //  Many at once: every one acked. Like the scheduler, the test resends
    //  what is not acked yet (a batch that met the database still
    //  connecting gets no ack); replays are acked again and settle nothing,
    //  which the row count below checks.
    enum { M = 500 };
    req.peer_account = peer;
    zhashx_t *acked = zhashx_new ();
    int acks = 0;
    int64_t until = p2c_now_ms () + 20000;
    while (acks < M && p2c_now_ms () < until) {
        for (int i = 0; i < M; i++) {
            char id [32];
            snprintf (id, sizeof id, "srv-many-%d", i);
            if (zhashx_lookup (acked, id))
                continue;
            req.task_id = id;
            req.billed_us = (uint64_t) i;
            s_test_send (router, "ledger-test", "sch-test", &msg);
        }
        int64_t round_end = p2c_now_ms () + 2000;
        while (acks < M && p2c_now_ms () < round_end) {
            got = s_test_recv (router, "sch-test");
            if (!got)
                break;
            if (got->msg_case == P2C2R__INTERNAL__MSG_SETTLE_ACK && got->settle_ack->ok
                && zhashx_insert (acked, got->settle_ack->task_id, (void *) 1) == 0)
                acks++;
            p2c_msg_internal_free (&got);
        }
    }
    P2C_CHECK (acks == M);
    zhashx_destroy (&acked);

    //  A new gamer: its balance reaches the scheduler before the AuthReply
    //  reaches the gateway
    auth.corr = 80;
    auth.role = "gamer";
    auth.name = "srv-gamer-2";
    auth.key_hash = "";
    auth.open = true;
    msg.msg_case = P2C2R__INTERNAL__MSG_AUTH_REQUEST;
    msg.auth_request = &auth;
    s_test_send (router, "ledger-test", "gw-test", &msg);
    char *d1 = NULL, *d2 = NULL;
    P2c2r__Internal *m1 = s_test_recv_any (router, &d1);
    P2c2r__Internal *m2 = s_test_recv_any (router, &d2);
    P2C_CHECK (m1 && d1 && !strcmp (d1, "scheduler")
               && m1->msg_case == P2C2R__INTERNAL__MSG_BALANCE_UPDATE);
    P2C_CHECK (m2 && d2 && !strcmp (d2, "gw-test") && m2->msg_case == P2C2R__INTERNAL__MSG_AUTH_REPLY
               && m2->auth_reply->ok);
    int64_t gamer2 = m2 && m2->msg_case == P2C2R__INTERNAL__MSG_AUTH_REPLY
                     ? m2->auth_reply->account_id : -1;
    P2C_CHECK (m1 && m1->msg_case == P2C2R__INTERNAL__MSG_BALANCE_UPDATE
               && m1->balance_update->account_id == gamer2 && m1->balance_update->balance_pico == 0
               && !m1->balance_update->disabled);
    p2c_msg_internal_free (&m1);
    p2c_msg_internal_free (&m2);
    zstr_free (&d1);
    zstr_free (&d2);

    //  An operator's credit: the new balance to the scheduler, then the reply
    P2c2r__AdminRequest admin = P2C2R__ADMIN_REQUEST__INIT;
    char cargs [128];
    snprintf (cargs, sizeof cargs, "{\"account_id\":%lld,\"amount_pico\":1000}", (long long) gamer2);
    admin.corr = 9;
    admin.command = "credit";
    admin.args_json = cargs;
    msg.msg_case = P2C2R__INTERNAL__MSG_ADMIN_REQUEST;
    msg.admin_request = &admin;
    s_test_send (router, "ledger-test", "ctl-test", &msg);
    m1 = s_test_recv_any (router, &d1);
    m2 = s_test_recv_any (router, &d2);
    P2C_CHECK (m1 && !strcmp (d1, "scheduler") && m1->msg_case == P2C2R__INTERNAL__MSG_BALANCE_UPDATE
               && m1->balance_update->account_id == gamer2
               && m1->balance_update->balance_pico == 1000);
    P2C_CHECK (m2 && !strcmp (d2, "ctl-test") && m2->msg_case == P2C2R__INTERNAL__MSG_ADMIN_REPLY
               && m2->admin_reply->corr == 9 && m2->admin_reply->ok
               && strstr (m2->admin_reply->result_json, "\"balance_pico\":1000"));
    p2c_msg_internal_free (&m1);
    p2c_msg_internal_free (&m2);
    zstr_free (&d1);
    zstr_free (&d2);
    admin.corr = 10;
    admin.command = "format-disk";
    s_test_send (router, "ledger-test", "ctl-test", &msg);
    m1 = s_test_recv_any (router, &d1);
    P2C_CHECK (m1 && !strcmp (d1, "ctl-test") && m1->msg_case == P2C2R__INTERNAL__MSG_ADMIN_REPLY
               && m1->admin_reply->corr == 10 && !m1->admin_reply->ok
               && !strcmp (m1->admin_reply->code, "bad_request"));
    p2c_msg_internal_free (&m1);
    zstr_free (&d1);

    //  A scheduler that does not know the gamer asks
    P2c2r__BalanceQuery query = P2C2R__BALANCE_QUERY__INIT;
    int64_t ids [] = { gamer2 };
    query.n_account_ids = 1;
    query.account_ids = ids;
    msg.msg_case = P2C2R__INTERNAL__MSG_BALANCE_QUERY;
    msg.balance_query = &query;
    s_test_send (router, "ledger-test", "sch-test", &msg);
    m1 = s_test_recv_any (router, &d1);
    P2C_CHECK (m1 && !strcmp (d1, "scheduler") && m1->msg_case == P2C2R__INTERNAL__MSG_BALANCE_UPDATE
               && m1->balance_update->account_id == gamer2
               && m1->balance_update->balance_pico == 1000);
    p2c_msg_internal_free (&m1);
    zstr_free (&d1);

    //  A client's own figures, through its gateway: the peer's, answered
    //  to the asking node with the same corr; an account of another kind
    //  than the session's role is not found
    P2c2r__EarningsRequest ereq = P2C2R__EARNINGS_REQUEST__INIT;
    ereq.corr = 501;
    ereq.account_id = peer;
    ereq.role = "peer";
    msg.msg_case = P2C2R__INTERNAL__MSG_EARNINGS_REQUEST;
    msg.earnings_request = &ereq;
    s_test_send (router, "ledger-test", "gw-test", &msg);
    got = s_test_recv (router, "gw-test");
    P2C_CHECK (got && got->msg_case == P2C2R__INTERNAL__MSG_EARNINGS_REPLY
               && got->earnings_reply->corr == 501 && got->earnings_reply->ok
               && got->earnings_reply->account_id == peer && got->earnings_reply->earnings
               && !strcmp (got->earnings_reply->earnings->role, "peer")
               && got->earnings_reply->earnings->tasks_total == 501
               && got->earnings_reply->earnings->earned_total_pico
                  == got->earnings_reply->earnings->balance_pico
               && got->earnings_reply->earnings->earned_total_pico > 520833);
    p2c_msg_internal_free (&got);
    ereq.corr = 502;
    ereq.role = "gamer";
    s_test_send (router, "ledger-test", "gw-test", &msg);
    got = s_test_recv (router, "gw-test");
    P2C_CHECK (got && got->msg_case == P2C2R__INTERNAL__MSG_EARNINGS_REPLY
               && got->earnings_reply->corr == 502 && !got->earnings_reply->ok
               && !strcmp (got->earnings_reply->code, "not_found")
               && !got->earnings_reply->earnings);
    p2c_msg_internal_free (&got);
    //  A gateway's /api/stats: our counters, under the same corr
    P2c2r__StatsRequest sreq = P2C2R__STATS_REQUEST__INIT;
    sreq.corr = 4242;
    msg.msg_case = P2C2R__INTERNAL__MSG_STATS_REQUEST;
    msg.stats_request = &sreq;
    s_test_send (router, "ledger-test", "gw-test", &msg);
    got = s_test_recv (router, "gw-test");
    P2C_CHECK (got && got->msg_case == P2C2R__INTERNAL__MSG_STATS_REPLY
               && got->stats_reply->corr == 4242 && !strcmp (got->stats_reply->service, "ledger"));
    json_t *figures = got && got->msg_case == P2C2R__INTERNAL__MSG_STATS_REPLY
                      ? json_loads (got->stats_reply->stats_json, 0, NULL) : NULL;
    //  501 settled once each (the replay of srv-task-1 is not settled again)
    P2C_CHECK (json_is_object (figures)
               && json_integer_value (json_object_get (figures, "settled")) == 501
               && json_integer_value (json_object_get (figures, "replays")) >= 1
               && json_integer_value (json_object_get (figures, "rejected")) == 1
               && json_integer_value (json_object_get (figures, "db_workers")) == 2);
    json_decref (figures);
    p2c_msg_internal_free (&got);
    //  The money summary, read every 100 ms here: it comes to count the
    //  501 tasks (asked again until then, a bounded number of times)
    char spent [LED_MONEY_TEXT] = "";
    for (int i = 0; i < 50 && !*spent; i++) {
        sreq.corr = 4243 + (uint64_t) i;
        s_test_send (router, "ledger-test", "gw-test", &msg);
        got = s_test_recv (router, "gw-test");
        figures = got && got->msg_case == P2C2R__INTERNAL__MSG_STATS_REPLY
                  ? json_loads (got->stats_reply->stats_json, 0, NULL) : NULL;
        if (json_integer_value (json_object_get (figures, "money_tasks_total")) == 501)
            snprintf (spent, sizeof spent, "%s",
                      json_string_value (json_object_get (figures, "spent_total")));
        json_decref (figures);
        p2c_msg_internal_free (&got);
        if (!*spent)
            zclock_sleep (100);
    }
    P2C_CHECK (*spent);
    zactor_destroy (&server);
    zsock_destroy (&router);

    PGconn *conn = PQconnectdb (conninfo);
    PQsetNoticeProcessor (conn, s_test_quiet, NULL);
    const char *params [] = { schema };
    PGresult *res = PQexecParams (conn, "SELECT count(*) FROM pg_catalog.pg_class c JOIN"
                                  " pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                                  " WHERE n.nspname = $1 AND c.relname = 'tasks'",
                                  1, NULL, params, NULL, NULL, 0);
    P2C_CHECK (PQresultStatus (res) == PGRES_TUPLES_OK && !strcmp (PQgetvalue (res, 0, 0), "1"));
    PQclear (res);
    char *ident = PQescapeIdentifier (conn, schema, strlen (schema));
    char *sql = p2c_sprintf ("SELECT count(*) FROM %s.tasks", ident);
    res = PQexec (conn, sql);
    P2C_CHECK (PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) == 1
               && !strcmp (PQgetvalue (res, 0, 0), "501"));
    PQclear (res);
    zstr_free (&sql);
    sql = p2c_sprintf ("SELECT (SUM (gamer_charge_pico)::NUMERIC * 0.000000000001)::text"
                        " FROM %s.tasks", ident);
    res = PQexec (conn, sql);
    P2C_CHECK (PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) == 1
               && !strcmp (PQgetvalue (res, 0, 0), spent));
    PQclear (res);
    zstr_free (&sql);
    sql = p2c_sprintf ("DROP SCHEMA %s CASCADE", ident);
    res = PQexec (conn, sql);
    P2C_CHECK (PQresultStatus (res) == PGRES_COMMAND_OK);
    PQclear (res);
    zstr_free (&sql);
    PQfreemem (ident);
    PQfinish (conn);
}
