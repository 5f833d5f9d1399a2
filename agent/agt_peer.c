/*  The contributor's agent. One thread runs everything that matters: the
    libwebsockets loop (p2l_conn) owns the connection to the gateway and
    also watches the socket of each slot's worker process. An assignment
    goes from the frame it came in straight to an idle worker (the same
    bytes, no packing again); the worker's reply goes to the gateway from
    the buffer it was read into, the moment it is complete. No thread hop
    and no wake-up on the way: at concurrency 1 the hand-offs cost a few
    system calls instead of a millisecond. A connection generation number
    ties every task to the connection it came on: after a reconnect the old
    ones are abandoned (the scheduler has reassigned them). A second thread
    only times the kernels at start (agt_bench). */
#define P2C_LOG_COMPONENT "peer"
#include "agt_peer.h"
#include "agt_bench.h"
#include "agt_config.h"
#include "agt_conn.h"
#include "agt_depth.h"
#include "agt_guest.h"
#include "agt_worker.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_money.h"
#include "p2c_tasks.h"
#include "p2c_time.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert (AGT_WORKER_REPLY_PRE >= P2L_CONN_PRE, "a worker's reply goes out as read");

//  The account's earnings are asked of the server at registration, every
//  hour, and when the owner asks for status and the last answer is older
//  than a minute (that status shows what is known; the next one the fresh
//  figures). Never more often than the gateway's limit per connection.
#define S_EARN_EVERY_US     (3600 * 1000000LL)
#define S_EARN_STALE_US     (60 * 1000000LL)
#define S_EARN_MIN_GAP_US   (10 * 1000000LL)

//  One assignment waiting for a slot (only when the server sent more than
//  the slots advertised)
typedef struct _s_job_t {
    unsigned gen;                   //  connection it came on
    P2c2r__ServerMessage *msg;      //  the Assign (owned)
    uint8_t *raw;                   //  its bytes as they came (owned)
    size_t raw_len;
    struct _s_job_t *next;
} s_job_t;

//  One result on its way to the socket (the tag of p2l_conn_send_*)
typedef struct {
    P2c2r__ClientMessage *reply;    //  the worker's answer, or NULL
    P2c2r__PeerResult local;        //  the error we made when reply is NULL
    char type [64];                 //  task type, for the log line
    bool log_info;                  //  --log-tasks
} s_done_t;

typedef struct _agt_peer_t agt_peer_t;

typedef struct {
    agt_peer_t *peer;
    int index;
    agt_worker_t *worker;           //  this slot's worker process
    p2l_conn_watch_t *watch;        //  the loop's watch on its socket
    uint64_t watched;               //  agt_worker_serial the watch is for
    //  The task in flight, when the worker is busy
    unsigned gen;                   //  connection it came on
    char task_id [128];
    uint32_t attempt;
    char type [64];
    int64_t started_us;             //  when the worker got it (its time, for agt_depth)
} s_slot_t;

struct _agt_peer_t {
    //  Settings
    char *url;
    char *peer_id;
    char *api_key;
    char *region;
    int nslots;                     //  worker processes
    int queue;                      //  tasks advertised per worker (--worker-queue; 0: depth's)
    agt_depth_t *depth;             //  the adapted queue per worker, when queue is 0
    long long task_timeout_ms;      //  when an Assign gives no deadline
    bool log_tasks;
    uint64_t *ref_us;               //  per kernel (agt_kernels order): reference time, 0 unknown
                                    //  (guarded by mutex: the bench thread fills it)
    size_t nkernels;
    char **bench_argv;              //  the worker command line, for the bench thread
    pthread_t bench_thread;
    bool bench_started;
    pthread_mutex_t mutex;          //  guards ref_us
    //  Network thread only
    p2l_conn_t *conn;
    p2l_backoff_t backoff;
    int64_t reconnect_at_us;        //  0: no reconnect pending
    bool registered;
    bool auth_refused;              //  this connection's registration got auth_failed
    int64_t last_beat_us;
    int exit_code;
    unsigned gen;                   //  bumped whenever a connection ends
    s_job_t *jobs, *jobs_tail;      //  assignments waiting for a slot
    int njobs;                      //  ... how many
    uint32_t advertised;            //  tasks at once the server was last told (0: not yet)
    s_slot_t *slots;
    agt_guest_t *guest;             //  the owner's preferences and local control
    p2l_conn_watch_t *control_watch;//  the loop's watch on the control socket
    int64_t register_sent_us;       //  for the round trip shown by status
    int64_t earn_asked_us;          //  GetEarnings last sent (0: never)
    int64_t earn_got_us;            //  ... last answered
    int64_t earn_logged_us;         //  ... last written to the log
};

static volatile sig_atomic_t s_stop = 0;
static volatile sig_atomic_t s_bench_stop = 0;
static volatile sig_atomic_t s_reload = 0;

static void
s_on_hup (int sig)
{
    (void) sig;
    s_reload = 1;
}

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
    s_bench_stop = 1;
}

char *
agt_server_url (const char *server, const char *cloud_ip, long long cloud_port)
{
    char buf [512];
    if (cloud_ip && *cloud_ip)
        snprintf (buf, sizeof buf, strchr (cloud_ip, ':') ? "ws://[%s]:%lld/" : "ws://%s:%lld/",
                  cloud_ip, cloud_port);
    else
        snprintf (buf, sizeof buf, "%s", server && *server ? server : "ws://127.0.0.1:8765");
    return strdup (buf);
}

char *
agt_default_id (const char *prefix)
{
    char host [256] = "host";
    if (gethostname (host, sizeof host - 1) != 0)
        snprintf (host, sizeof host, "host");
    host [sizeof host - 1] = 0;
    char buf [400];
    snprintf (buf, sizeof buf, "%s%s-%d", prefix, host, (int) getpid ());
    return strdup (buf);
}

static void
s_done_free (void *tag)
{
    s_done_t *d = (s_done_t *) tag;
    p2c_msg_client_free (&d->reply);
    agt_worker_result_reset (&d->local);
    free (d);
}

static const P2c2r__PeerResult *
s_done_result (s_done_t *d)
{
    return d->reply ? d->reply->result : &d->local;
}

//  The result is on the socket: only now does it count as done (a test
//  matches these lines against who was paid)
static void
s_on_sent (void *tag, void *arg)
{
    s_done_t *d = (s_done_t *) tag;
    const P2c2r__PeerResult *r = s_done_result (d);
    agt_peer_t *self = (agt_peer_t *) arg;
    if (self && self->guest)
        agt_guest_task_done (self->guest, r->ok, r->compute_us);
    if (d->log_info) {
        log_info ("task done id=%s type=%s ok=%d compute_us=%llu", r->task_id, d->type,
                  r->ok ? 1 : 0, (unsigned long long) r->compute_us);
        fflush (stderr);
    }
    else
        log_debug ("task done id=%s type=%s ok=%d compute_us=%llu", r->task_id, d->type,
                   r->ok ? 1 : 0, (unsigned long long) r->compute_us);
}

static s_done_t *
s_done_new (agt_peer_t *self, const char *type)
{
    s_done_t *d = calloc (1, sizeof *d);
    if (!d)
        return NULL;
    d->log_info = self->log_tasks;
    snprintf (d->type, sizeof d->type, "%s", type ? type : "");
    p2c2r__peer_result__init (&d->local);
    return d;
}

//  A task that got no answer from its worker: the error goes to the server
//  as a kernel_error result, so the task is not left to its deadline
static void
s_send_error (agt_peer_t *self, const char *task_id, uint32_t attempt, const char *type,
              int slot, const char *why)
{
    log_warn ("task failed id=%s type=%s slot=%d reason=\"%s\"", task_id, type, slot, why);
    if (!self->registered)
        return;
    s_done_t *d = s_done_new (self, type);
    if (d) {
        d->local.task_id = p2c_strdup (task_id);
        d->local.attempt = attempt;
        d->local.ok = false;
        d->local.error_code = strdup ("kernel_error");
        d->local.error = strdup (why);
    }
    if (!d || !d->local.task_id || !d->local.error_code || !d->local.error) {
        if (d)
            s_done_free (d);
        log_warn ("out of memory, result dropped id=%s", task_id);
        return;
    }
    P2c2r__ClientMessage msg = P2C2R__CLIENT_MESSAGE__INIT;
    msg.msg_case = P2C2R__CLIENT_MESSAGE__MSG_RESULT;
    msg.result = &d->local;
    //  p2l_conn owns d from here and frees it with s_done_free
    p2l_conn_send_tagged (self->conn, &msg, d, s_on_sent, s_done_free);
}

//  ---------------------------------------------------------------------
//  Slots: each a worker process whose socket the loop watches

static void s_slot_ready (void *arg);
static void s_slot_next (s_slot_t *slot);
static int s_busy_slots (agt_peer_t *self);

//  Keeps the loop's watch on the worker's current socket (a replaced
//  worker has a new one)
static void
s_slot_watch (s_slot_t *slot)
{
    agt_worker_t *w = slot->worker;
    if (slot->watch && slot->watched == agt_worker_serial (w))
        return;
    p2l_conn_unwatch (&slot->watch);
    if (agt_worker_fd (w) < 0)
        return;
    if (p2l_conn_watch (slot->peer->conn, agt_worker_fd (w), s_slot_ready, slot, &slot->watch)
        == 0)
        slot->watched = agt_worker_serial (w);
}

//  Hands an assignment to this slot's idle worker
static void
s_slot_start (s_slot_t *slot, unsigned gen, const P2c2r__Assign *a, const uint8_t *raw,
              size_t raw_len)
{
    agt_peer_t *self = slot->peer;
    slot->gen = gen;
    snprintf (slot->task_id, sizeof slot->task_id, "%s", a->task_id);
    slot->attempt = a->attempt;
    snprintf (slot->type, sizeof slot->type, "%s", a->task_type ? a->task_type : "");
    int64_t timeout_ms = a->deadline_ms ? (int64_t) a->deadline_ms : self->task_timeout_ms;
    slot->started_us = p2c_now_us ();
    char why [128];
    if (agt_worker_start (slot->worker, a->task_id, raw, raw_len, timeout_ms, why, sizeof why)
        != 0) {
        s_send_error (self, a->task_id, a->attempt, slot->type, slot->index, why);
        s_slot_watch (slot);
        return;
    }
    s_slot_watch (slot);
    if (agt_worker_wants_write (slot->worker))
        p2l_conn_watch_write (slot->watch);
}

//  The worker's socket is ready (or it is time to check the time limit)
static void
s_slot_pump (s_slot_t *slot)
{
    agt_peer_t *self = slot->peer;
    char why [128];
    agt_worker_status_t st = agt_worker_pump (slot->worker, why, sizeof why);
    if (st == AGT_WORKER_DONE) {
        size_t len = 0;
        P2c2r__ClientMessage *reply = NULL;
        uint8_t *buf = agt_worker_take_reply (slot->worker, &len, &reply);
        s_done_t *d = slot->gen == self->gen && self->registered
                    ? s_done_new (self, slot->type) : NULL;
        if (d && self->depth) {
            //  Full: every place the server knows of was taken (this task
            //  included), so the next assignment answers this result
            int64_t now = p2c_now_us ();
            int held = s_busy_slots (self) + 1 + self->njobs;
            agt_depth_task (self->depth, now - slot->started_us);
            agt_depth_freed (self->depth, now, held >= (int) self->advertised);
        }
        if (d) {
            d->reply = reply;
            //  The worker's bytes go out as they are: p2l_conn owns buf and d
            p2l_conn_send_packed (self->conn, buf, AGT_WORKER_REPLY_PRE, len, d, s_on_sent,
                                  s_done_free);
        }
        else {
            log_debug ("stale result dropped id=%s", slot->task_id);
            p2c_msg_client_free (&reply);
            free (buf);
        }
    }
    else
    if (st == AGT_WORKER_FAILED) {
        if (slot->gen == self->gen)
            s_send_error (self, slot->task_id, slot->attempt, slot->type, slot->index, why);
    }
    else
    if (st == AGT_WORKER_RUNNING && agt_worker_wants_write (slot->worker))
        p2l_conn_watch_write (slot->watch);
    s_slot_watch (slot);
    if (!agt_worker_busy (slot->worker))
        s_slot_next (slot);
}

static void
s_slot_ready (void *arg)
{
    s_slot_pump ((s_slot_t *) arg);
}

//  An idle slot takes the oldest waiting assignment of this connection
static void
s_slot_next (s_slot_t *slot)
{
    agt_peer_t *self = slot->peer;
    //  A paused peer starts nothing new; what waits starts on resume
    while (self->jobs && !agt_worker_busy (slot->worker)
           && !(self->guest && agt_guest_paused (self->guest))) {
        s_job_t *job = self->jobs;
        self->jobs = job->next;
        self->njobs--;
        if (!self->jobs)
            self->jobs_tail = NULL;
        if (job->gen == self->gen)
            s_slot_start (slot, job->gen, job->msg->assign, job->raw, job->raw_len);
        p2c_msg_server_free (&job->msg);
        free (job->raw);
        free (job);
    }
}

static void
s_jobs_clear (agt_peer_t *self)
{
    while (self->jobs) {
        s_job_t *next = self->jobs->next;
        p2c_msg_server_free (&self->jobs->msg);
        free (self->jobs->raw);
        free (self->jobs);
        self->jobs = next;
    }
    self->jobs_tail = NULL;
    self->njobs = 0;
}

static int
s_busy_slots (agt_peer_t *self)
{
    int busy = 0;
    for (int i = 0; i < self->nslots; i++)
        busy += agt_worker_busy (self->slots [i].worker) ? 1 : 0;
    return busy;
}

//  Tasks the peer takes at once: a worker each, times the queue per
//  worker (fixed, or what agt_depth measured keeps the workers busy)
static uint32_t
s_capacity (agt_peer_t *self)
{
    bool changed;
    int per = self->queue ? self->queue
            : agt_depth_get (self->depth, p2c_now_us (), &changed);
    return (uint32_t) (self->nslots * per);
}

//  ---------------------------------------------------------------------
//  Network events

static void
s_register (p2l_conn_t *conn, void *arg)
{
    agt_peer_t *self = (agt_peer_t *) arg;
    const agt_kernel_t *kernels = agt_kernels ();
    size_t n = 0;
    while (kernels [n].name)
        n++;
    char **types = calloc (n + 1, sizeof (char *));
    P2c2r__KernelInfo *infos = calloc (n + 1, sizeof (P2c2r__KernelInfo));
    P2c2r__KernelInfo **info_ptrs = calloc (n + 1, sizeof (P2c2r__KernelInfo *));
    if (!types || !infos || !info_ptrs) {
        free (types);
        free (infos);
        free (info_ptrs);
        p2l_conn_close (conn);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        types [i] = (char *) kernels [i].name;
        p2c2r__kernel_info__init (&infos [i]);
        infos [i].task_type = (char *) kernels [i].name;
        infos [i].version = (char *) kernels [i].version;
        pthread_mutex_lock (&self->mutex);
        infos [i].reference_us = i < self->nkernels && self->ref_us ? self->ref_us [i] : 0;
        pthread_mutex_unlock (&self->mutex);
        info_ptrs [i] = &infos [i];
    }
    long pages = sysconf (_SC_PHYS_PAGES), page = sysconf (_SC_PAGESIZE);
    long cores = sysconf (_SC_NPROCESSORS_ONLN);
    P2c2r__Capabilities caps = P2C2R__CAPABILITIES__INIT;
    caps.cpu_cores = cores > 0 ? (uint32_t) cores : 1;
    caps.ram_gb = pages > 0 && page > 0
                ? (uint32_t) ((double) pages * (double) page / (1024.0 * 1024 * 1024) + 0.5) : 0;
    caps.slots = self->advertised = s_capacity (self);
    caps.n_task_types = n;
    caps.task_types = types;
    caps.n_kernels = n;
    caps.kernels = info_ptrs;
    caps.region = self->region ? self->region : "";
    caps.agent_version = AGT_VERSION;
    P2c2r__RegisterPeer reg = P2C2R__REGISTER_PEER__INIT;
    reg.peer_id = self->peer_id;
    reg.api_key = self->api_key ? self->api_key : "";
    reg.capabilities = &caps;
    P2c2r__ClientMessage msg = P2C2R__CLIENT_MESSAGE__INIT;
    msg.msg_case = P2C2R__CLIENT_MESSAGE__MSG_REGISTER_PEER;
    msg.register_peer = &reg;
    self->register_sent_us = p2c_now_us ();
    if (p2l_conn_send (conn, &msg) != 0)
        p2l_conn_close (conn);
    else
        log_debug ("registering id=%s slots=%d types=%zu", self->peer_id, self->nslots, n);
    free (types);
    free (infos);
    free (info_ptrs);
}

//  Asks the server for this account's earnings (its answer: s_on_earnings)
static void
s_ask_earnings (agt_peer_t *self, int64_t now)
{
    if (!self->registered || (self->earn_asked_us && now - self->earn_asked_us < S_EARN_MIN_GAP_US))
        return;
    P2c2r__GetEarnings ge = P2C2R__GET_EARNINGS__INIT;
    P2c2r__ClientMessage msg = P2C2R__CLIENT_MESSAGE__INIT;
    msg.msg_case = P2C2R__CLIENT_MESSAGE__MSG_GET_EARNINGS;
    msg.get_earnings = &ge;
    //  Counted as asked even when the send failed: the connection is then
    //  failing, and the next registration asks again
    self->earn_asked_us = now;
    if (p2l_conn_send (self->conn, &msg) != 0)
        log_debug ("earnings not asked, send failed");
}

//  The answer: shown by status (decimal text, exact) and, once an hour,
//  one line in the log
static void
s_on_earnings (agt_peer_t *self, const P2c2r__Earnings *e)
{
    int64_t now = p2c_now_us ();
    char today [32], total [32], balance [32], pending [32], threshold [32];
    char spent_today [32], spent_total [32];
    p2c_money_format (e->earned_today_pico, today, sizeof today);
    p2c_money_format (e->earned_total_pico, total, sizeof total);
    p2c_money_format (e->balance_pico, balance, sizeof balance);
    p2c_money_format (e->pending_payout_pico, pending, sizeof pending);
    p2c_money_format (e->payout_threshold_pico, threshold, sizeof threshold);
    p2c_money_format (e->spent_today_pico, spent_today, sizeof spent_today);
    p2c_money_format (e->spent_total_pico, spent_total, sizeof spent_total);
    json_t *o = json_pack ("{s:s s:s s:s s:s s:s s:s s:s s:s s:I s:I}",
                           "earned_today", today, "earned_total", total, "balance", balance,
                           "pending_payout", pending, "payout_threshold", threshold,
                           "spent_today", spent_today, "spent_total", spent_total,
                           "as_of", e->as_of,
                           "tasks_today", (json_int_t) e->tasks_today,
                           "tasks_total", (json_int_t) e->tasks_total);
    //  The rate in force and the treasury's subsidy: whether peers are paid
    //  the full rate today, or only from what gamers pay
    char rate [32], rate_now [32], left [32];
    p2c_money_format (e->peer_pico_per_hour, rate, sizeof rate);
    p2c_money_format (e->peer_pico_per_hour_in_force, rate_now, sizeof rate_now);
    p2c_money_format (e->subsidy_left_today_pico, left, sizeof left);
    if (o) {
        json_object_set_new (o, "peer_per_hour", json_string (rate));
        json_object_set_new (o, "peer_per_hour_in_force", json_string (rate_now));
        json_object_set_new (o, "subsidy_spent", json_boolean (e->subsidy_spent));
        json_object_set_new (o, "subsidy_left_today", e->subsidy_limited
                                                      ? json_string (left) : json_null ());
    }
    char *text = o ? json_dumps (o, JSON_COMPACT) : NULL;
    json_decref (o);
    if (text && self->guest)
        agt_guest_set_earnings (self->guest, text);
    free (text);
    self->earn_got_us = now;
    if (!self->earn_logged_us || now - self->earn_logged_us >= S_EARN_EVERY_US) {
        self->earn_logged_us = now;
        log_info ("earnings id=%s earned_today=%s earned_total=%s balance=%s"
                  " pending_payout=%s payout_threshold=%s tasks_total=%llu as_of=%s",
                  self->peer_id, today, total, balance, pending, threshold,
                  (unsigned long long) e->tasks_total, e->as_of);
    }
}

//  The owner asked for status: fresher figures for the next one, when
//  these are older than a minute
static void
s_status_refresh (agt_peer_t *self, int64_t now)
{
    if (self->guest && agt_guest_take_status_asked (self->guest)
        && (!self->earn_got_us || now - self->earn_got_us >= S_EARN_STALE_US))
        s_ask_earnings (self, now);
}

static void
s_on_message (p2l_conn_t *conn, P2c2r__ServerMessage **msg_p, const uint8_t *raw,
              size_t raw_len, void *arg)
{
    agt_peer_t *self = (agt_peer_t *) arg;
    P2c2r__ServerMessage *msg = *msg_p;
    switch (msg->msg_case) {
        case P2C2R__SERVER_MESSAGE__MSG_REGISTERED:
            if (!self->registered)
                log_info ("registered id=%s slots=%u workers=%d queue=%s", self->peer_id,
                          self->advertised, self->nslots, self->queue ? "fixed" : "adapted");
            self->registered = true;
            p2l_backoff_reset (&self->backoff);
            if (self->guest)
                agt_guest_set_link (self->guest, true,
                                    (double) (p2c_now_us () - self->register_sent_us) / 1000.0);
            //  the server learns at once that this peer is paused
            self->last_beat_us = 0;
            self->earn_asked_us = 0;        //  a new connection: ask at once
            s_ask_earnings (self, p2c_now_us ());
            break;
        case P2C2R__SERVER_MESSAGE__MSG_EARNINGS:
            s_on_earnings (self, msg->earnings);
            break;
        case P2C2R__SERVER_MESSAGE__MSG_ERROR: {
            const char *code = msg->error->code;
            if (self->registered) {
                log_warn ("server error code=%s message=\"%.200s\"", code,
                          msg->error->message);
                break;
            }
            log_warn ("registration refused code=%s message=\"%.200s\"", code,
                      msg->error->message);
            //  A wrong key is retried only rarely (see s_on_close): exiting
            //  would make a supervisor restart us in a fast loop instead
            if (!strcmp (code, "auth_failed"))
                self->auth_refused = true;
            p2l_conn_close (conn);
            break;
        }
        case P2C2R__SERVER_MESSAGE__MSG_ASSIGN: {
            P2c2r__Assign *a = msg->assign;
            if (!self->registered || !a->task_id [0]) {
                log_warn ("assignment ignored reason=%s",
                          self->registered ? "no_task_id" : "not_registered");
                break;
            }
            log_debug ("assigned id=%s type=%s", a->task_id, a->task_type);
            if (self->depth)
                agt_depth_assigned (self->depth, p2c_now_us ());
            //  The worker takes the frame as it came: it is a
            //  ServerMessage{assign} already. A paused peer keeps it until
            //  it resumes (sent before the server knew of the pause).
            bool paused = self->guest && agt_guest_paused (self->guest);
            for (int i = 0; i < self->nslots && !paused; i++)
                if (!agt_worker_busy (self->slots [i].worker)) {
                    s_slot_start (&self->slots [i], self->gen, a, raw, raw_len);
                    return;
                }
            s_job_t *job = calloc (1, sizeof *job);
            uint8_t *copy = job ? malloc (raw_len ? raw_len : 1) : NULL;
            if (!copy) {
                free (job);
                log_warn ("out of memory, assignment dropped id=%s", a->task_id);
                break;
            }
            memcpy (copy, raw, raw_len);
            job->gen = self->gen;
            job->msg = msg;
            job->raw = copy;
            job->raw_len = raw_len;
            *msg_p = NULL;
            if (self->jobs_tail)
                self->jobs_tail->next = job;
            else
                self->jobs = job;
            self->jobs_tail = job;
            self->njobs++;
            break;
        }
        default:
            log_debug ("message ignored case=%d", (int) msg->msg_case);
            break;
    }
}

static void
s_on_close (p2l_conn_t *conn, const p2l_conn_end_t *end, void *arg)
{
    (void) conn;
    agt_peer_t *self = (agt_peer_t *) arg;
    self->registered = false;
    if (self->guest)
        agt_guest_set_link (self->guest, false, -1);
    bool auth_refused = self->auth_refused;
    self->auth_refused = false;
    //  Everything of the old connection is void: running tasks are
    //  abandoned (their workers killed and replaced), queued ones dropped
    self->gen++;
    s_jobs_clear (self);
    if (self->depth)
        agt_depth_reset (self->depth);
    for (int i = 0; i < self->nslots; i++) {
        s_slot_t *slot = &self->slots [i];
        if (agt_worker_busy (slot->worker)) {
            log_warn ("task failed id=%s type=%s slot=%d reason=\"task abandoned\"",
                      slot->task_id, slot->type, slot->index);
            agt_worker_abandon (slot->worker);
            s_slot_watch (slot);
        }
    }
    if (s_stop)
        return;
    p2l_retry_t kind = p2l_retry_kind (end, auth_refused);
    int64_t delay = p2l_retry_delay (kind, &self->backoff,
                                     (double) random () / ((double) RAND_MAX + 1));
    self->reconnect_at_us = p2c_now_us () + delay * 1000;
    if (kind == P2L_RETRY_AUTH)
        log_warn ("api key refused by the server, check --api-key (P2C2R_API_KEY) "
                  "reason=\"%s\" retry_ms=%lld", auth_refused ? "auth_failed" : end->why,
                  (long long) delay);
    else
    if (end->cert_error)
        log_warn ("cannot connect reason=\"%s\" hint=\"give the CA that signed the server's "
                  "certificate with --ca FILE, check the host name in --server (--insecure for "
                  "a development server)\" retry_ms=%lld", end->why,
                  (long long) delay);
    else
        log_info ("disconnected reason=\"%s\" close_code=%d retry=%s retry_ms=%lld",
                  end->why, end->code, p2l_retry_name (kind), (long long) delay);
}

//  The owner's preferences, once per cron tick: a change of state is
//  told to the server at once (by the heartbeat that follows), and a
//  resume starts what waited
static void
s_guest_tick (agt_peer_t *self, int64_t now)
{
    if (!self->guest)
        return;
    if (s_reload) {
        s_reload = 0;
        agt_guest_reload (self->guest);
    }
    int pids [256];
    int n = 0;
    for (int i = 0; i < self->nslots && n < 256; i++) {
        int pid = agt_worker_pid (self->slots [i].worker);
        if (pid > 0)
            pids [n++] = pid;
    }
    agt_guest_set_running (self->guest, s_busy_slots (self));
    if (agt_guest_tick (self->guest, now, pids, n)) {
        self->last_beat_us = 0;
        for (int i = 0; i < self->nslots && !agt_guest_paused (self->guest); i++)
            if (!agt_worker_busy (self->slots [i].worker))
                s_slot_next (&self->slots [i]);
    }
}

static void
s_control_ready (void *arg)
{
    agt_peer_t *self = (agt_peer_t *) arg;
    agt_guest_control_ready (self->guest, p2c_now_us ());
    //  a pause or resume shows in the state at once
    s_guest_tick (self, p2c_now_us ());
    s_status_refresh (self, p2c_now_us ());
}

static void
s_on_cron (p2l_conn_t *conn, void *arg)
{
    agt_peer_t *self = (agt_peer_t *) arg;
    int64_t now = p2c_now_us ();
    if (self->reconnect_at_us && now >= self->reconnect_at_us) {
        self->reconnect_at_us = 0;
        p2l_conn_connect (conn);
    }
    //  Time limits of running tasks (a hung worker is silent), and workers
    //  whose watch could not be set up
    for (int i = 0; i < self->nslots; i++) {
        s_slot_t *slot = &self->slots [i];
        if (agt_worker_busy (slot->worker) || !slot->watch)
            s_slot_pump (slot);
    }
    s_guest_tick (self, now);
    s_status_refresh (self, now);
    if (self->registered && now - self->earn_asked_us >= S_EARN_EVERY_US)
        s_ask_earnings (self, now);
    //  A new adapted queue is told at once (the heartbeat's slots)
    uint32_t cap = s_capacity (self);
    if (self->depth && self->registered && cap != self->advertised) {
        log_info ("queue per worker %u slots=%u round_trip_us=%lld task_us=%lld",
                  cap / (uint32_t) self->nslots, cap, (long long) agt_depth_rtt_us (self->depth),
                  (long long) agt_depth_task_us (self->depth));
        self->last_beat_us = 0;
    }
    //  A heartbeat tells the server how loaded this peer is, whether it is
    //  paused, and how many tasks it takes at once
    if (self->registered && now - self->last_beat_us >= 10 * 1000000LL) {
        self->last_beat_us = now;
        P2c2r__Heartbeat hb = P2C2R__HEARTBEAT__INIT;
        hb.load = (float) s_busy_slots (self) / (float) self->nslots;
        hb.paused = self->guest && agt_guest_paused (self->guest);
        hb.reason = self->guest ? (char *) agt_guest_reason (self->guest) : "";
        hb.slots = self->advertised = cap;
        P2c2r__ClientMessage msg = P2C2R__CLIENT_MESSAGE__INIT;
        msg.msg_case = P2C2R__CLIENT_MESSAGE__MSG_HEARTBEAT;
        msg.heartbeat = &hb;
        p2l_conn_send (conn, &msg);
    }
}

//  ---------------------------------------------------------------------

//  The kernels' speeds on their reference inputs, advertised at
//  registration so the scheduler can choose fast peers. From the cache when
//  it holds every kernel of this version (returns true); else they are
//  timed by s_measure_run on a thread of its own, once each on a worker
//  process of its own (a bad kernel cannot hurt the agent), and cached.
//  Registration does not wait for them: a gamer's tasks must not meet
//  "no peers" while a fresh install times itself; until they are known the
//  peer advertises 0 ("not measured"), and every later registration (a
//  reconnect, a restart) carries them.
static bool
s_speeds_cached (agt_peer_t *self)
{
    char *path = agt_bench_cache_path ();
    size_t n = self->nkernels;
    bool all = agt_bench_cache_load (path, self->ref_us, n) == n;
    if (all)
        log_info ("kernel speeds from cache kernels=%zu path=%s", n, path);
    free (path);
    return all;
}

static void *
s_measure_run (void *arg)
{
    agt_peer_t *self = (agt_peer_t *) arg;
    size_t n = self->nkernels;
    uint64_t *ref = calloc (n + 1, sizeof (uint64_t));
    if (!ref)
        return NULL;
    int64_t start = p2c_now_us ();
    size_t measured = agt_bench_measure ("/proc/self/exe", self->bench_argv, 10000, &s_bench_stop,
                                         ref, n);
    log_info ("kernel speeds measured kernels=%zu of=%zu ms=%lld", measured, n,
              (long long) ((p2c_now_us () - start) / 1000));
    pthread_mutex_lock (&self->mutex);
    memcpy (self->ref_us, ref, n * sizeof (uint64_t));
    pthread_mutex_unlock (&self->mutex);
    char *path = agt_bench_cache_path ();
    if (measured == n && path && agt_bench_cache_save (path, ref, n) != 0)
        log_warn ("cannot write the kernel speed cache path=%s reason=\"%s\"", path,
                  strerror (errno));
    free (path);
    free (ref);
    return NULL;
}

static void
s_peer_destroy (agt_peer_t **self_p)
{
    agt_peer_t *self = *self_p;
    if (!self)
        return;
    s_bench_stop = 1;
    if (self->bench_started)
        pthread_join (self->bench_thread, NULL);
    free (self->ref_us);
    //  The connection first: its watches point into the slots
    p2l_conn_unwatch (&self->control_watch);
    p2l_conn_destroy (&self->conn);
    agt_guest_destroy (&self->guest);
    for (int i = 0; self->slots && i < self->nslots; i++)
        agt_worker_destroy (&self->slots [i].worker);
    free (self->slots);
    s_jobs_clear (self);
    agt_depth_destroy (&self->depth);
    pthread_mutex_destroy (&self->mutex);
    free (self);
    *self_p = NULL;
}

//  The --config file, read again on SIGHUP for the preferences
static const char *
s_config_path (int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp (argv [i], "--config"))
            return argv [i + 1];
    return NULL;
}

//  The counters' file: --state-dir, else systemd's StateDirectory, else
//  XDG's state home. Caller frees; NULL when there is nowhere to keep them.
static char *
s_state_path (const char *state_dir)
{
    char dir [4096];
    const char *sd = getenv ("STATE_DIRECTORY");
    const char *xdg = getenv ("XDG_STATE_HOME");
    const char *home = getenv ("HOME");
    if (state_dir && *state_dir)
        snprintf (dir, sizeof dir, "%s", state_dir);
    else
    if (sd && sd [0] == '/' && !strchr (sd, ':'))
        snprintf (dir, sizeof dir, "%s", sd);
    else
    if (xdg && xdg [0] == '/')
        snprintf (dir, sizeof dir, "%s/p2c2r", xdg);
    else
    if (home && home [0] == '/')
        snprintf (dir, sizeof dir, "%s/.local/state/p2c2r", home);
    else
        return NULL;
    //  mkdir -p, owner only
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir (dir, 0700);
            *p = '/';
        }
    mkdir (dir, 0700);
    char path [4200];
    snprintf (path, sizeof path, "%s/peer-counters.json", dir);
    return strdup (path);
}

int
agt_peer_main (int argc, char **argv)
{
    //  Before p2c_cfg_parse keeps only the positional arguments in argv
    const char *config_path = s_config_path (argc, argv);
    agt_peer_config_t cfg;
    bool verbose = false;
    int rc = p2c_cfg_parse (&agt_config_peer, &cfg, &argc, argv, &verbose);
    if (rc != 0)
        return rc > 0 ? 0 : 1;
    if (argc > 1) {
        fprintf (stderr, "p2c2r-agent peer: unexpected argument '%s' (see --help)\n", argv [1]);
        p2c_cfg_free (agt_config_peer.table, &cfg);
        return 1;
    }
    p2c_log_init ("p2c2r-agent", verbose);
    agt_prefs_t prefs;
    agt_prefs_defaults (&prefs);
    for (int i = 0; agt_prefs_names [i]; i++) {
        char why [200];
        if (agt_prefs_set (&prefs, agt_prefs_names [i], cfg.prefs [i], why, sizeof why) != 0) {
            fprintf (stderr, "p2c2r-agent peer: %s\n", why);
            p2c_cfg_free (agt_config_peer.table, &cfg);
            return 1;
        }
    }
    //  The table's strings are freed before the workers start
    char user_arg [64];
    snprintf (user_arg, sizeof user_arg, "%s", *cfg.worker_user ? cfg.worker_user : "nobody");
    bool sandbox = cfg.sandbox;
    if (cfg.list_kernels) {
        printf ("%-24s %-8s %s\n", "kernel", "version", "aliases");
        for (const agt_kernel_t *k = agt_kernels (); k->name; k++) {
            const p2c_task_type_t *t = p2c_task_type (k->name);
            printf ("%-24s %-8s %s\n", k->name, k->version, t && t->alias ? t->alias : "-");
        }
        p2c_cfg_free (agt_config_peer.table, &cfg);
        return 0;
    }
    agt_peer_t *self = calloc (1, sizeof *self);
    if (!self)
        fatal ("out of memory");
    pthread_mutex_init (&self->mutex, NULL);
    self->url = agt_server_url (cfg.conn.server, cfg.conn.cloud_ip, cfg.conn.cloud_port);
    self->peer_id = *cfg.peer_id ? strdup (cfg.peer_id) : agt_default_id ("");
    self->api_key = *cfg.conn.api_key ? strdup (cfg.conn.api_key) : NULL;
    self->region = p2c_strdup (cfg.region);
    long cores = sysconf (_SC_NPROCESSORS_ONLN);
    cores = cores < 1 ? 1 : cores > 256 ? 256 : cores;
    self->nslots = cfg.slots > 0 ? cfg.slots : agt_prefs_ncpus (&prefs, (int) cores);
    self->queue = cfg.queue;
    if (!self->queue && !(self->depth = agt_depth_new (AGT_DEPTH_MAX)))
        fatal ("out of memory");
    self->task_timeout_ms = cfg.task_timeout_ms;
    self->log_tasks = cfg.log_tasks;
    p2l_conn_tls_t tls = { *cfg.conn.ca ? cfg.conn.ca : NULL, cfg.conn.insecure };
    if (agt_conn_check_tls (self->url, &tls, "peer") != 0
        || agt_conn_check_key (self->url, self->api_key != NULL, cfg.conn.allow_insecure_ws,
                               "peer") != 0) {
        free (self->url);
        free (self->peer_id);
        free (self->api_key);
        free (self->region);
        p2c_cfg_free (agt_config_peer.table, &cfg);
        s_peer_destroy (&self);
        return 1;
    }
    p2l_backoff_reset (&self->backoff);
    srandom ((unsigned) (p2c_now_us () ^ getpid ()));
    while (agt_kernels () [self->nkernels].name)
        self->nkernels++;
    self->ref_us = calloc (self->nkernels + 1, sizeof (uint64_t));
    if (!self->ref_us)
        fatal ("out of memory");
    p2l_conn_handlers_t handlers = { s_register, s_on_message, s_on_close, s_on_cron,
                                     agt_conn_log };
    self->conn = p2l_conn_new (self->url, &tls, &handlers, self, 100);
    char *state_path = s_state_path (cfg.state_dir);
    agt_guest_opts_t gopts = { config_path, *cfg.control ? cfg.control : NULL, cfg.proc_root,
                               cfg.sys_root, state_path, self->url };
    char gwhy [512] = "";
    self->guest = self->conn ? agt_guest_new (&gopts, &prefs, gwhy, sizeof gwhy) : NULL;
    free (state_path);
    p2c_cfg_free (agt_config_peer.table, &cfg);
    if (!self->conn || !self->guest) {
        if (!self->conn)
            fprintf (stderr, "p2c2r-agent peer: cannot use server address '%s'\n", self->url);
        else
            fprintf (stderr, "p2c2r-agent peer: %s\n", gwhy [0] ? gwhy : "out of memory");
        free (self->url);
        free (self->peer_id);
        free (self->api_key);
        free (self->region);
        s_peer_destroy (&self);
        return 1;
    }
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction (SIGTERM, &sa, NULL);
    sigaction (SIGINT, &sa, NULL);
    sa.sa_handler = s_on_hup;
    sigaction (SIGHUP, &sa, NULL);
    signal (SIGPIPE, SIG_IGN);
    if (agt_guest_control_fd (self->guest) >= 0
        && p2l_conn_watch (self->conn, agt_guest_control_fd (self->guest), s_control_ready, self,
                           &self->control_watch) != 0)
        log_warn ("cannot watch the control socket, status answers once a tick");

    char mem_arg [32];
    snprintf (mem_arg, sizeof mem_arg, "%d", cfg.mem_mb);
    char fd_arg [16];
    snprintf (fd_arg, sizeof fd_arg, "%d", AGT_WORKER_FD);
    char *wargv [] = { "p2c2r-agent", "worker", "--fd", fd_arg, "--worker-mem-mb", mem_arg,
                       sandbox ? "--sandbox=true" : "--sandbox=false",
                       "--worker-user", user_arg,
                       NULL };
    if (!sandbox)
        log_warn ("kernels run WITHOUT the sandbox (--sandbox=false)");
    self->bench_argv = wargv;
    bool measure = !cfg.no_bench && !s_speeds_cached (self);

    //  Workers, and a bench thread that never takes the signals: those
    //  must interrupt the network thread's poll
    sigset_t block, old;
    sigemptyset (&block);
    sigaddset (&block, SIGTERM);
    sigaddset (&block, SIGINT);
    pthread_sigmask (SIG_BLOCK, &block, &old);
    self->slots = calloc ((size_t) self->nslots, sizeof (s_slot_t));
    if (!self->slots)
        fatal ("out of memory");
    for (int i = 0; i < self->nslots; i++) {
        s_slot_t *slot = &self->slots [i];
        slot->peer = self;
        slot->index = i;
        slot->worker = agt_worker_new ("/proc/self/exe", wargv);
        if (!slot->worker)
            fatal ("cannot start worker process slot=%d", i);
        s_slot_watch (slot);
        if (!slot->watch)
            fatal ("cannot watch worker process slot=%d", i);
    }
    if (measure && pthread_create (&self->bench_thread, NULL, s_measure_run, self) == 0)
        self->bench_started = true;
    pthread_sigmask (SIG_SETMASK, &old, NULL);

    log_info ("starting id=%s server=%s slots=%d version=%s", self->peer_id, self->url,
              self->nslots, AGT_VERSION);
    p2l_conn_connect (self->conn);
    if (p2l_conn_run (self->conn, &s_stop) != 0) {
        log_warn ("network loop failed");
        self->exit_code = 1;
    }
    int exit_code = self->exit_code;
    log_info ("stopping id=%s", self->peer_id);
    char *url = self->url, *pid = self->peer_id, *key = self->api_key, *reg = self->region;
    s_peer_destroy (&self);
    free (url);
    free (pid);
    free (key);
    free (reg);
    return exit_code;
}
