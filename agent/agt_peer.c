/*  The contributor's agent. Threads: the network thread (libwebsockets,
    agt_conn) owns the connection and never blocks; one thread per slot
    takes assignments from the job queue, runs each on its own worker
    process and puts the result on the done queue, then wakes the network
    thread, which sends it. A connection generation number ties every job
    and result to the connection it came on: after a reconnect the old ones
    are dropped (the scheduler has reassigned them). */
#include "agt_peer.h"
#include "agt_bench.h"
#include "agt_conn.h"
#include "agt_worker.h"
#include "p2c_cfg.h"
#include "p2c_log.h"
#include "p2c_tasks.h"
#include "p2c_time.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  One assignment waiting for a slot
typedef struct _s_job_t {
    unsigned gen;                   //  connection it came on
    P2c2r__ServerMessage *msg;      //  the Assign (owned)
    struct _s_job_t *next;
} s_job_t;

//  One finished task waiting for the network thread
typedef struct _s_done_t {
    unsigned gen;
    P2c2r__ClientMessage *reply;    //  the worker's answer, or NULL
    P2c2r__PeerResult local;        //  the error we made when reply is NULL
    char type [64];                 //  task type, for the log line
    bool log_info;                  //  --log-tasks
    struct _s_done_t *next;
} s_done_t;

typedef struct _agt_peer_t agt_peer_t;

typedef struct {
    agt_peer_t *peer;
    int index;
    pthread_t thread;
    bool started;
    agt_worker_t *worker;           //  this slot's worker process
} s_slot_t;

struct _agt_peer_t {
    //  Settings
    char *url;
    char *peer_id;
    char *api_key;
    char *region;
    int nslots;
    long long task_timeout_ms;      //  when an Assign gives no deadline
    bool log_tasks;
    uint64_t *ref_us;               //  per kernel (agt_kernels order): reference time, 0 unknown
                                    //  (guarded by mutex: the bench thread fills it)
    size_t nkernels;
    char **bench_argv;              //  the worker command line, for the bench thread
    pthread_t bench_thread;
    bool bench_started;
    //  Network thread only
    agt_conn_t *conn;
    agt_backoff_t backoff;
    int64_t reconnect_at_us;        //  0: no reconnect pending
    bool registered;
    bool auth_refused;              //  this connection's registration got auth_failed
    int64_t last_beat_us;
    int exit_code;
    //  Shared with the slot threads
    atomic_uint gen;                //  bumped whenever a connection ends
    atomic_bool stopping;
    atomic_int busy;                //  slots running a task
    pthread_mutex_t mutex;          //  guards the two queues
    pthread_cond_t cond;            //  a job arrived, or stopping
    s_job_t *jobs, *jobs_tail;
    s_done_t *done, *done_tail;
    s_slot_t *slots;
};

static volatile sig_atomic_t s_stop = 0;
static volatile sig_atomic_t s_bench_stop = 0;

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
    (void) arg;
    s_done_t *d = (s_done_t *) tag;
    const P2c2r__PeerResult *r = s_done_result (d);
    if (d->log_info) {
        log_info ("peer: task done id=%s type=%s ok=%d compute_us=%llu", r->task_id, d->type,
                  r->ok ? 1 : 0, (unsigned long long) r->compute_us);
        fflush (stderr);
    }
    else
        log_debug ("peer: task done id=%s type=%s ok=%d compute_us=%llu", r->task_id, d->type,
                   r->ok ? 1 : 0, (unsigned long long) r->compute_us);
}

//  ---------------------------------------------------------------------
//  Slot threads

typedef struct {
    agt_peer_t *peer;
    unsigned gen;
} s_abandon_t;

static bool
s_abandon (void *arg)
{
    s_abandon_t *a = (s_abandon_t *) arg;
    return atomic_load (&a->peer->stopping) || atomic_load (&a->peer->gen) != a->gen;
}

static void *
s_slot_run (void *arg)
{
    s_slot_t *slot = (s_slot_t *) arg;
    agt_peer_t *self = slot->peer;
    while (true) {
        pthread_mutex_lock (&self->mutex);
        while (!self->jobs && !atomic_load (&self->stopping))
            pthread_cond_wait (&self->cond, &self->mutex);
        if (atomic_load (&self->stopping)) {
            pthread_mutex_unlock (&self->mutex);
            break;
        }
        s_job_t *job = self->jobs;
        self->jobs = job->next;
        if (!self->jobs)
            self->jobs_tail = NULL;
        pthread_mutex_unlock (&self->mutex);

        if (job->gen != atomic_load (&self->gen)) {
            p2c_msg_server_free (&job->msg);
            free (job);
            continue;
        }
        const P2c2r__Assign *assign = job->msg->assign;
        s_done_t *done = calloc (1, sizeof *done);
        if (!done) {
            log_warn ("peer: out of memory, task dropped id=%s", assign->task_id);
            p2c_msg_server_free (&job->msg);
            free (job);
            continue;
        }
        done->gen = job->gen;
        done->log_info = self->log_tasks;
        snprintf (done->type, sizeof done->type, "%s", assign->task_type);
        p2c2r__peer_result__init (&done->local);
        atomic_fetch_add (&self->busy, 1);
        int64_t timeout_ms = assign->deadline_ms ? (int64_t) assign->deadline_ms
                                                 : self->task_timeout_ms;
        s_abandon_t ab = { self, job->gen };
        char why [128];
        done->reply = agt_worker_run (slot->worker, assign, timeout_ms, s_abandon, &ab, why,
                                      sizeof why);
        atomic_fetch_sub (&self->busy, 1);
        if (!done->reply) {
            log_warn ("peer: task failed id=%s type=%s slot=%d reason=\"%s\"", assign->task_id,
                      assign->task_type, slot->index, why);
            done->local.task_id = strdup (assign->task_id);
            done->local.attempt = assign->attempt;
            done->local.ok = false;
            done->local.error_code = strdup ("kernel_error");
            done->local.error = strdup (why);
            if (!done->local.task_id || !done->local.error_code || !done->local.error) {
                s_done_free (done);
                done = NULL;
            }
        }
        p2c_msg_server_free (&job->msg);
        free (job);
        if (!done)
            continue;
        pthread_mutex_lock (&self->mutex);
        if (self->done_tail)
            self->done_tail->next = done;
        else
            self->done = done;
        self->done_tail = done;
        pthread_mutex_unlock (&self->mutex);
        agt_conn_wake (self->conn);
    }
    return NULL;
}

//  ---------------------------------------------------------------------
//  Network thread

static void
s_register (agt_conn_t *conn, void *arg)
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
        agt_conn_close (conn);
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
    caps.slots = (uint32_t) self->nslots;
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
    if (agt_conn_send (conn, &msg) != 0)
        agt_conn_close (conn);
    else
        log_debug ("peer: registering id=%s slots=%d types=%zu", self->peer_id, self->nslots, n);
    free (types);
    free (infos);
    free (info_ptrs);
}

static void
s_on_message (agt_conn_t *conn, P2c2r__ServerMessage **msg_p, void *arg)
{
    agt_peer_t *self = (agt_peer_t *) arg;
    P2c2r__ServerMessage *msg = *msg_p;
    switch (msg->msg_case) {
        case P2C2R__SERVER_MESSAGE__MSG_REGISTERED:
            if (!self->registered)
                log_info ("peer: registered id=%s slots=%d", self->peer_id, self->nslots);
            self->registered = true;
            agt_backoff_reset (&self->backoff);
            break;
        case P2C2R__SERVER_MESSAGE__MSG_ERROR: {
            const char *code = msg->error->code;
            if (self->registered) {
                log_warn ("peer: server error code=%s message=\"%.200s\"", code,
                          msg->error->message);
                break;
            }
            log_warn ("peer: registration refused code=%s message=\"%.200s\"", code,
                      msg->error->message);
            //  A wrong key is retried only rarely (see s_on_close): exiting
            //  would make a supervisor restart us in a fast loop instead
            if (!strcmp (code, "auth_failed"))
                self->auth_refused = true;
            agt_conn_close (conn);
            break;
        }
        case P2C2R__SERVER_MESSAGE__MSG_ASSIGN: {
            P2c2r__Assign *a = msg->assign;
            if (!self->registered || !a->task_id [0]) {
                log_warn ("peer: assignment ignored reason=%s",
                          self->registered ? "no_task_id" : "not_registered");
                break;
            }
            s_job_t *job = calloc (1, sizeof *job);
            if (!job) {
                log_warn ("peer: out of memory, assignment dropped id=%s", a->task_id);
                break;
            }
            log_debug ("peer: assigned id=%s type=%s", a->task_id, a->task_type);
            job->gen = atomic_load (&self->gen);
            job->msg = msg;
            *msg_p = NULL;
            pthread_mutex_lock (&self->mutex);
            if (self->jobs_tail)
                self->jobs_tail->next = job;
            else
                self->jobs = job;
            self->jobs_tail = job;
            pthread_cond_signal (&self->cond);
            pthread_mutex_unlock (&self->mutex);
            break;
        }
        default:
            log_debug ("peer: message ignored case=%d", (int) msg->msg_case);
            break;
    }
}

static void
s_on_close (agt_conn_t *conn, const agt_conn_end_t *end, void *arg)
{
    (void) conn;
    agt_peer_t *self = (agt_peer_t *) arg;
    self->registered = false;
    bool auth_refused = self->auth_refused;
    self->auth_refused = false;
    //  Everything of the old connection is void: running tasks are
    //  abandoned, queued ones dropped
    atomic_fetch_add (&self->gen, 1);
    pthread_mutex_lock (&self->mutex);
    s_job_t *jobs = self->jobs;
    self->jobs = self->jobs_tail = NULL;
    pthread_mutex_unlock (&self->mutex);
    while (jobs) {
        s_job_t *next = jobs->next;
        p2c_msg_server_free (&jobs->msg);
        free (jobs);
        jobs = next;
    }
    if (atomic_load (&self->stopping))
        return;
    agt_retry_t kind = agt_retry_kind (end, auth_refused);
    int64_t delay = agt_retry_delay (kind, &self->backoff,
                                     (double) random () / ((double) RAND_MAX + 1));
    self->reconnect_at_us = p2c_now_us () + delay * 1000;
    if (kind == AGT_RETRY_AUTH)
        log_warn ("peer: api key refused by the server, check --api-key (P2C2R_API_KEY) "
                  "reason=\"%s\" retry_ms=%lld", auth_refused ? "auth_failed" : end->why,
                  (long long) delay);
    else
    if (end->cert_error)
        log_warn ("peer: cannot connect reason=\"%s\" hint=\"give the CA that signed the server's "
                  "certificate with --ca FILE, check the host name in --server (--insecure for "
                  "a development server)\" retry_ms=%lld", end->why,
                  (long long) delay);
    else
        log_info ("peer: disconnected reason=\"%s\" close_code=%d retry=%s retry_ms=%lld",
                  end->why, end->code, agt_retry_name (kind), (long long) delay);
}

static void
s_on_wake (agt_conn_t *conn, void *arg)
{
    agt_peer_t *self = (agt_peer_t *) arg;
    pthread_mutex_lock (&self->mutex);
    s_done_t *list = self->done;
    self->done = self->done_tail = NULL;
    pthread_mutex_unlock (&self->mutex);
    unsigned gen = atomic_load (&self->gen);
    while (list) {
        s_done_t *d = list;
        list = d->next;
        d->next = NULL;
        if (d->gen != gen || !self->registered) {
            log_debug ("peer: stale result dropped id=%s", s_done_result (d)->task_id);
            s_done_free (d);
            continue;
        }
        P2c2r__ClientMessage local = P2C2R__CLIENT_MESSAGE__INIT;
        local.msg_case = P2C2R__CLIENT_MESSAGE__MSG_RESULT;
        local.result = &d->local;
        //  agt_conn owns d from here and frees it with s_done_free
        agt_conn_send_tagged (conn, d->reply ? d->reply : &local, d, s_on_sent, s_done_free);
    }
}

static void
s_on_cron (agt_conn_t *conn, void *arg)
{
    agt_peer_t *self = (agt_peer_t *) arg;
    int64_t now = p2c_now_us ();
    if (self->reconnect_at_us && now >= self->reconnect_at_us) {
        self->reconnect_at_us = 0;
        agt_conn_connect (conn);
    }
    //  A heartbeat tells the server how loaded this peer is
    if (self->registered && now - self->last_beat_us >= 10 * 1000000LL) {
        self->last_beat_us = now;
        P2c2r__Heartbeat hb = P2C2R__HEARTBEAT__INIT;
        hb.load = (float) atomic_load (&self->busy) / (float) self->nslots;
        P2c2r__ClientMessage msg = P2C2R__CLIENT_MESSAGE__INIT;
        msg.msg_case = P2C2R__CLIENT_MESSAGE__MSG_HEARTBEAT;
        msg.heartbeat = &hb;
        agt_conn_send (conn, &msg);
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
        log_info ("peer: kernel speeds from cache kernels=%zu path=%s", n, path);
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
    log_info ("peer: kernel speeds measured kernels=%zu of=%zu ms=%lld", measured, n,
              (long long) ((p2c_now_us () - start) / 1000));
    pthread_mutex_lock (&self->mutex);
    memcpy (self->ref_us, ref, n * sizeof (uint64_t));
    pthread_mutex_unlock (&self->mutex);
    char *path = agt_bench_cache_path ();
    if (measured == n && path && agt_bench_cache_save (path, ref, n) != 0)
        log_warn ("peer: cannot write the kernel speed cache path=%s reason=\"%s\"", path,
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
    pthread_mutex_lock (&self->mutex);
    atomic_store (&self->stopping, true);
    pthread_cond_broadcast (&self->cond);
    pthread_mutex_unlock (&self->mutex);
    s_bench_stop = 1;
    if (self->bench_started)
        pthread_join (self->bench_thread, NULL);
    for (int i = 0; self->slots && i < self->nslots; i++) {
        if (self->slots [i].started)
            pthread_join (self->slots [i].thread, NULL);
        agt_worker_destroy (&self->slots [i].worker);
    }
    free (self->slots);
    free (self->ref_us);
    agt_conn_destroy (&self->conn);
    while (self->jobs) {
        s_job_t *next = self->jobs->next;
        p2c_msg_server_free (&self->jobs->msg);
        free (self->jobs);
        self->jobs = next;
    }
    while (self->done) {
        s_done_t *next = self->done->next;
        s_done_free (self->done);
        self->done = next;
    }
    pthread_mutex_destroy (&self->mutex);
    pthread_cond_destroy (&self->cond);
    free (self);
    *self_p = NULL;
}

int
agt_peer_main (int argc, char **argv)
{
    char *server = NULL, *cloud_ip = NULL, *api_key = NULL, *peer_id = NULL, *region = NULL;
    char *ca = NULL;
    long long cloud_port = 8765, slots = 0, mem_mb = 1024, task_timeout_ms = 60000;
    bool log_tasks = false, list_kernels = false, no_bench = false, insecure = false;
    p2c_cfg_t table [] = {
        AGT_CONN_CFG (server, ca, insecure, cloud_ip, cloud_port, api_key),
        { "peer-id", P2C_CFG_STR, NULL, 0, 0, &peer_id, "peer name [hostname-pid]" },
        { "region", P2C_CFG_STR, NULL, 0, 0, &region, "region, for same-region scheduling" },
        { "slots", P2C_CFG_INT, "0", 0, 256, &slots,
          "tasks run at once, one worker process each (0: the number of online cores)" },
        { "worker-mem-mb", P2C_CFG_INT, "1024", 16, 1048576, &mem_mb,
          "address space limit of each worker process, MiB" },
        { "task-timeout-ms", P2C_CFG_INT, "60000", 100, 3600000, &task_timeout_ms,
          "time limit of a task whose assignment gives no deadline" },
        { "log-tasks", P2C_CFG_BOOL, "false", 0, 0, &log_tasks,
          "log every completed task at info (\"peer: task done id=...\")" },
        { "list-kernels", P2C_CFG_BOOL, "false", 0, 0, &list_kernels,
          "print the kernel names, versions and aliases and exit" },
        { "no-bench", P2C_CFG_BOOL, "false", 0, 0, &no_bench,
          "do not time the kernels at start (advertise no speeds)" },
        { NULL, 0, NULL, 0, 0, NULL, NULL }
    };
    bool verbose = false;
    int rc = p2c_cfg_parse (table, &argc, argv, "p2c2r-agent peer", "[options]", &verbose);
    if (rc != 0) {
        p2c_cfg_free (table);
        return rc > 0 ? 0 : 1;
    }
    if (argc > 1) {
        fprintf (stderr, "p2c2r-agent peer: unexpected argument '%s' (see --help)\n", argv [1]);
        p2c_cfg_free (table);
        return 1;
    }
    p2c_log_init ("p2c2r-agent", verbose);
    if (list_kernels) {
        printf ("%-24s %-8s %s\n", "kernel", "version", "aliases");
        for (const agt_kernel_t *k = agt_kernels (); k->name; k++) {
            const p2c_task_type_t *t = p2c_task_type (k->name);
            printf ("%-24s %-8s %s\n", k->name, k->version, t && t->alias ? t->alias : "-");
        }
        p2c_cfg_free (table);
        return 0;
    }
    agt_peer_t *self = calloc (1, sizeof *self);
    if (!self)
        fatal ("peer: out of memory");
    pthread_mutex_init (&self->mutex, NULL);
    pthread_cond_init (&self->cond, NULL);
    self->url = agt_server_url (server, cloud_ip, cloud_port);
    self->peer_id = peer_id && *peer_id ? strdup (peer_id) : agt_default_id ("");
    self->api_key = api_key && *api_key ? strdup (api_key) : NULL;
    self->region = strdup (region ? region : "");
    long cores = sysconf (_SC_NPROCESSORS_ONLN);
    self->nslots = slots > 0 ? (int) slots : cores < 1 ? 1 : cores > 256 ? 256 : (int) cores;
    self->task_timeout_ms = task_timeout_ms;
    self->log_tasks = log_tasks;
    agt_conn_tls_t tls = { ca && *ca ? ca : NULL, insecure };
    if (agt_conn_check_tls (self->url, &tls, "peer") != 0) {
        free (self->url);
        free (self->peer_id);
        free (self->api_key);
        free (self->region);
        p2c_cfg_free (table);
        s_peer_destroy (&self);
        return 1;
    }
    agt_backoff_reset (&self->backoff);
    srandom ((unsigned) (p2c_now_us () ^ getpid ()));
    while (agt_kernels () [self->nkernels].name)
        self->nkernels++;
    self->ref_us = calloc (self->nkernels + 1, sizeof (uint64_t));
    if (!self->ref_us)
        fatal ("peer: out of memory");
    agt_conn_handlers_t handlers = { s_register, s_on_message, s_on_close, s_on_wake, s_on_cron };
    self->conn = agt_conn_new (self->url, &tls, &handlers, self, 100);
    p2c_cfg_free (table);
    if (!self->conn) {
        fprintf (stderr, "p2c2r-agent peer: cannot use server address '%s'\n", self->url);
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
    signal (SIGPIPE, SIG_IGN);

    char mem_arg [32];
    snprintf (mem_arg, sizeof mem_arg, "%lld", mem_mb);
    char fd_arg [16];
    snprintf (fd_arg, sizeof fd_arg, "%d", AGT_WORKER_FD);
    char *wargv [] = { "p2c2r-agent", "worker", "--fd", fd_arg, "--worker-mem-mb", mem_arg, NULL };
    self->bench_argv = wargv;
    bool measure = !no_bench && !s_speeds_cached (self);

    //  Workers, and slot threads that never take the signals: those must
    //  interrupt the network thread's poll
    sigset_t block, old;
    sigemptyset (&block);
    sigaddset (&block, SIGTERM);
    sigaddset (&block, SIGINT);
    pthread_sigmask (SIG_BLOCK, &block, &old);
    self->slots = calloc ((size_t) self->nslots, sizeof (s_slot_t));
    if (!self->slots)
        fatal ("peer: out of memory");
    for (int i = 0; i < self->nslots; i++) {
        s_slot_t *slot = &self->slots [i];
        slot->peer = self;
        slot->index = i;
        slot->worker = agt_worker_new ("/proc/self/exe", wargv);
        if (!slot->worker)
            fatal ("peer: cannot start worker process slot=%d", i);
        if (pthread_create (&slot->thread, NULL, s_slot_run, slot) != 0)
            fatal ("peer: cannot start slot thread slot=%d", i);
        slot->started = true;
    }
    if (measure && pthread_create (&self->bench_thread, NULL, s_measure_run, self) == 0)
        self->bench_started = true;
    pthread_sigmask (SIG_SETMASK, &old, NULL);

    log_info ("peer: starting id=%s server=%s slots=%d version=%s", self->peer_id, self->url,
              self->nslots, AGT_VERSION);
    agt_conn_connect (self->conn);
    if (agt_conn_run (self->conn, &s_stop) != 0) {
        log_warn ("peer: network loop failed");
        self->exit_code = 1;
    }
    int exit_code = self->exit_code;
    log_info ("peer: stopping id=%s", self->peer_id);
    atomic_store (&self->stopping, true);
    char *url = self->url, *pid = self->peer_id, *key = self->api_key, *reg = self->region;
    s_peer_destroy (&self);
    free (url);
    free (pid);
    free (key);
    free (reg);
    return exit_code;
}
