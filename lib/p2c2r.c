/*  libp2c2r's client (see p2c2r.h): tasks, registration, reconnects and
    the two ways of driving it, over the one connection class p2l_conn.
    Loop mode and thread mode share one engine, s_step: the thread of
    thread mode is only a loop that waits on the same epoll descriptor a
    game would poll (the socket, a timer, a wake-up eventfd) and steps. */
#include "p2c2r.h"
#include "p2l_conn.h"
#include "p2c_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

//  Limits on what a task may carry (the server has its own, lower ones for
//  each kernel; these keep a bad call from queueing gigabytes)
#define S_MAX_TYPE      64
#define S_MAX_PARAMS    (1024 * 1024)
#define S_MAX_PAYLOAD   (48 * 1024 * 1024)
#define S_MAX_REF       128
//  The client's timer: reconnects and deadlines of queued tasks
#define S_CRON_MS       100
//  ... and while a connection is being made (TLS and HTTP handshakes)
#define S_CONNECTING_MS 5

//  Resubmission of tasks lost with a connection, by their client_ref (on
//  by default, p2c2r_set_resubmit): the server keeps each client_ref's
//  outcome for a window (docs/protocol.md), so a lost task goes back to the
//  head of the queue and is sent again with the same client_ref on the
//  next connection (to any gateway): a task still running is joined, one
//  answered is answered again, with no new run and no new charge. A task
//  is sent at most this many times, then fails with P2C2R_CONNECTION_LOST.
#define S_MAX_SENDS     4

typedef enum { S_QUEUED, S_SENT, S_ABANDONED } s_task_state_t;

//  One task from p2c2r_submit to its completion
typedef struct _s_task_t {
    uint64_t id;                //  ours, > 0
    char *ref;                  //  the client_ref on the wire
    char *type;
    char *params;
    uint8_t *payload;
    size_t payload_len;
    uint32_t deadline_ms;
    int64_t submit_us;          //  when p2c2r_submit took it
    s_task_state_t state;       //  S_ABANDONED: cancelled after it was sent; its
                                //  reply is dropped when it comes
    uint32_t sends;             //  times it went on a connection
    p2c2r_done_fn *done;
    void *arg;
    struct _s_task_t *prev, *next;  //  in the queue or the sent list
    struct _s_task_t *chain;        //  in the client_ref table
} s_task_t;

//  A doubly linked list of tasks, oldest first
typedef struct {
    s_task_t *head, *tail;
    uint64_t size;
} s_list_t;

//  A completion decided away from a reply (cancel), run at the next step
typedef struct _s_later_t {
    uint64_t id;
    char *ref;
    p2c2r_code_t code;
    int64_t submit_us;
    p2c2r_done_fn *done;
    void *arg;
    struct _s_later_t *next;
} s_later_t;

struct _p2c2r_result_t {
    uint64_t id;
    p2c2r_code_t code;
    const char *code_name;
    const char *error;
    const char *json;
    const uint8_t *blob;
    size_t blob_len;
    const char *task_id;
    const char *client_ref;
    int64_t cost_pico;
    uint64_t billed_us;
    bool cached;
    bool replayed;
    double latency_ms;
};

struct _p2c2r_client_t {
    //  Settings (copies)
    char *url, *api_key, *gamer_id, *ca_file;
    p2l_conn_tls_t tls;
    bool threaded;
    bool reconnect;
    bool resubmit_lost;         //  p2c2r_set_resubmit
    char run_id [20];           //  random, the prefix of the refs we make
    uint32_t max_queued;
    void (*on_state) (p2c2r_client_t *, p2c2r_state_t, p2c2r_code_t, const char *, void *);
    void (*on_log) (int, const char *, void *);
    void *arg;
    //  Connection
    p2l_conn_t *conn;
    p2c2r_state_t state;
    bool refused;               //  the server answered the registration with an error
    p2c2r_code_t refused_code;
    char refused_why [200];
    p2l_backoff_t backoff;
    int64_t reconnect_at_us;    //  when DISCONNECTED: the next attempt
    uint64_t rand_state;        //  jitter of the backoff (no global rand)
    //  Tasks
    uint64_t next_id;
    s_list_t queue;             //  waiting to be sent
    s_list_t sent;              //  sent, waiting for the reply (and abandoned ones)
    s_task_t **table;           //  by client_ref, every task in queue or sent
    size_t table_size;          //  buckets, a power of two
    s_later_t *later_head, *later_tail;
    p2c2r_stats_t stats;
    //  Driving
    pthread_mutex_t lock;       //  recursive: callbacks may call submit
    bool in_step;               //  s_step is running (on the driving thread)
    int epfd;                   //  socket + timerfd + eventfd
    int timerfd;
    int wakefd;
    int reg_fd;                 //  the socket registered in epfd, or -1
    long timer_ms;              //  the timerfd's period now
    uint32_t reg_events;
    pthread_t thread;
    bool thread_started;
    atomic_bool stopping;       //  set by p2c2r_destroy, read by the thread
};

static int64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
s_log (p2c2r_client_t *self, int level, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
static void
s_log (p2c2r_client_t *self, int level, const char *fmt, ...)
{
    if (!self->on_log)
        return;
    char line [400];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (line, sizeof line, fmt, ap);
    va_end (ap);
    self->on_log (level, line, self->arg);
}

//  --------------------------------------------------------------------------
//  Codes

static const struct {
    const char *name;
    const char *text;
} s_codes [P2C2R_CODE_COUNT] = {
    [P2C2R_OK] = { "ok", "done" },
    [P2C2R_NO_PEERS] = { "no_peers", "no peer can run this task now" },
    [P2C2R_TIMEOUT] = { "timeout", "the task's deadline passed" },
    [P2C2R_INVALID_PARAMS] = { "invalid_params", "the task's parameters were refused" },
    [P2C2R_UNKNOWN_TASK_TYPE] = { "unknown_task_type", "no kernel has this task type" },
    [P2C2R_INSUFFICIENT_FUNDS] = { "insufficient_funds", "the account's balance is too low" },
    [P2C2R_KERNEL_ERROR] = { "kernel_error", "the kernel failed on the peer" },
    [P2C2R_REJECTED] = { "rejected", "the result failed validation" },
    [P2C2R_RATE_LIMITED] = { "rate_limited", "too many requests: slow down" },
    [P2C2R_TOO_LARGE] = { "too_large", "the task is larger than the server accepts" },
    [P2C2R_UNAVAILABLE] = { "unavailable", "the server cannot take the task now" },
    [P2C2R_AUTH_FAILED] = { "auth_failed", "the API key was refused" },
    [P2C2R_BAD_REQUEST] = { "bad_request", "the server did not understand the request" },
    [P2C2R_SERVER_ERROR] = { "server_error", "the server answered with an unknown error" },
    [P2C2R_CONNECTION_LOST] = { "connection_lost",
                                "the connection closed before the reply; the task may have "
                                "run, and its result cannot be collected yet" },
    [P2C2R_CANCELLED] = { "cancelled", "cancelled by the caller" },
    [P2C2R_NOT_CONNECTED] = { "not_connected", "the server could not be reached" },
    [P2C2R_TLS] = { "tls", "the server's certificate is not trusted" },
    [P2C2R_INVALID_ARGUMENT] = { "invalid_argument", "an argument is missing or out of bounds" },
    [P2C2R_QUEUE_FULL] = { "queue_full", "too many tasks wait to be sent" },
    [P2C2R_NO_MEMORY] = { "no_memory", "out of memory" },
};

const char *
p2c2r_code_name (p2c2r_code_t code)
{
    return (unsigned) code < P2C2R_CODE_COUNT ? s_codes [code].name : "server_error";
}

const char *
p2c2r_code_text (p2c2r_code_t code)
{
    return (unsigned) code < P2C2R_CODE_COUNT ? s_codes [code].text
                                              : s_codes [P2C2R_SERVER_ERROR].text;
}

p2c2r_code_t
p2c2r_code_from_name (const char *name)
{
    if (!name || !*name)
        return P2C2R_OK;
    for (int i = 1; i < P2C2R_CODE_COUNT; i++)
        if (!strcmp (name, s_codes [i].name))
            return (p2c2r_code_t) i;
    return P2C2R_SERVER_ERROR;
}

//  --------------------------------------------------------------------------
//  Tasks: the list and the client_ref table

static void
s_list_push (s_list_t *list, s_task_t *t)
{
    t->next = NULL;
    t->prev = list->tail;
    if (list->tail)
        list->tail->next = t;
    else
        list->head = t;
    list->tail = t;
    list->size++;
}

static void
s_list_push_front (s_list_t *list, s_task_t *t)
{
    t->prev = NULL;
    t->next = list->head;
    if (list->head)
        list->head->prev = t;
    else
        list->tail = t;
    list->head = t;
    list->size++;
}

static void
s_list_remove (s_list_t *list, s_task_t *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        list->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        list->tail = t->prev;
    t->prev = t->next = NULL;
    list->size--;
}

//  FNV-1a of a client_ref
static size_t
s_hash (const char *ref)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *) ref; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t) h;
}

static s_task_t *
s_table_find (p2c2r_client_t *self, const char *ref)
{
    if (!ref)
        return NULL;
    for (s_task_t *t = self->table [s_hash (ref) & (self->table_size - 1)]; t; t = t->chain)
        if (!strcmp (t->ref, ref))
            return t;
    return NULL;
}

//  Grows the table to keep chains short; false when out of memory
static bool
s_table_room (p2c2r_client_t *self)
{
    uint64_t tasks = self->queue.size + self->sent.size + 1;
    if (tasks <= self->table_size)
        return true;
    size_t size = self->table_size * 2;
    s_task_t **table = calloc (size, sizeof *table);
    if (!table)
        return false;
    for (size_t i = 0; i < self->table_size; i++)
        for (s_task_t *t = self->table [i], *next; t; t = next) {
            next = t->chain;
            size_t b = s_hash (t->ref) & (size - 1);
            t->chain = table [b];
            table [b] = t;
        }
    free (self->table);
    self->table = table;
    self->table_size = size;
    return true;
}

static void
s_table_insert (p2c2r_client_t *self, s_task_t *t)
{
    size_t b = s_hash (t->ref) & (self->table_size - 1);
    t->chain = self->table [b];
    self->table [b] = t;
}

static void
s_table_remove (p2c2r_client_t *self, s_task_t *t)
{
    s_task_t **p = &self->table [s_hash (t->ref) & (self->table_size - 1)];
    while (*p && *p != t)
        p = &(*p)->chain;
    if (*p)
        *p = t->chain;
    t->chain = NULL;
}

static void
s_task_free (s_task_t **t_p)
{
    s_task_t *t = *t_p;
    if (!t)
        return;
    free (t->ref);
    free (t->type);
    free (t->params);
    free (t->payload);
    free (t);
    *t_p = NULL;
}

//  Takes a task out of its list and the table, and frees it
static void
s_task_drop (p2c2r_client_t *self, s_task_t *t)
{
    s_list_remove (t->state == S_QUEUED ? &self->queue : &self->sent, t);
    s_table_remove (self, t);
    s_task_free (&t);
}

//  --------------------------------------------------------------------------
//  Completions

//  Runs a task's callback with result r (id, client_ref and latency filled
//  in here), then drops the task. The callback may submit and cancel.
static void
s_complete (p2c2r_client_t *self, s_task_t *t, p2c2r_result_t *r)
{
    r->id = t->id;
    r->client_ref = t->ref;
    r->latency_ms = (double) (s_now_us () - t->submit_us) / 1000.0;
    //  Out of every list first: the callback sees the client as it is after
    //  this task, and may cancel or submit freely
    s_list_remove (t->state == S_QUEUED ? &self->queue : &self->sent, t);
    s_table_remove (self, t);
    self->stats.completed++;
    if (r->code != P2C2R_OK)
        self->stats.failed++;
    if (t->done)
        t->done (self, r, t->arg);
    s_task_free (&t);
}

//  A task ends with an error found here (not the server's)
static void
s_fail (p2c2r_client_t *self, s_task_t *t, p2c2r_code_t code, const char *why)
{
    p2c2r_result_t r;
    memset (&r, 0, sizeof r);
    r.code = code;
    r.code_name = p2c2r_code_name (code);
    r.error = why ? why : p2c2r_code_text (code);
    r.json = "";
    r.task_id = "";
    s_complete (self, t, &r);
}

//  Fails every task of a list (the list empties; callbacks may add to the
//  queue, but only tasks that were there at the start are failed)
static void
s_fail_all (p2c2r_client_t *self, s_list_t *list, p2c2r_code_t code, const char *why)
{
    uint64_t n = list->size;
    while (n-- > 0 && list->head) {
        s_task_t *t = list->head;
        if (t->state == S_ABANDONED)
            s_task_drop (self, t);
        else
            s_fail (self, t, code, why);
    }
}

static void
s_run_later (p2c2r_client_t *self)
{
    while (self->later_head) {
        s_later_t *l = self->later_head;
        self->later_head = l->next;
        if (!self->later_head)
            self->later_tail = NULL;
        p2c2r_result_t r;
        memset (&r, 0, sizeof r);
        r.id = l->id;
        r.code = l->code;
        r.code_name = p2c2r_code_name (l->code);
        r.error = p2c2r_code_text (l->code);
        r.json = "";
        r.task_id = "";
        r.client_ref = l->ref;
        r.latency_ms = (double) (s_now_us () - l->submit_us) / 1000.0;
        self->stats.completed++;
        self->stats.failed++;
        if (l->done)
            l->done (self, &r, l->arg);
        free (l->ref);
        free (l);
    }
}

//  --------------------------------------------------------------------------
//  The connection's events

static void
s_set_state (p2c2r_client_t *self, p2c2r_state_t state, p2c2r_code_t code, const char *why)
{
    self->state = state;
    if (self->on_state)
        self->on_state (self, state, code, why ? why : "", self->arg);
}

//  Sends what waits in the queue, oldest first, while the connection takes it
static void
s_flush (p2c2r_client_t *self)
{
    while (self->state == P2C2R_READY && self->queue.head) {
        s_task_t *t = self->queue.head;
        P2c2r__Submit sub = P2C2R__SUBMIT__INIT;
        sub.task_type = t->type;
        sub.params_json = t->params;
        sub.payload.data = t->payload;
        sub.payload.len = t->payload_len;
        sub.client_ref = t->ref;
        sub.deadline_ms = t->deadline_ms;
        P2c2r__ClientMessage msg = P2C2R__CLIENT_MESSAGE__INIT;
        msg.msg_case = P2C2R__CLIENT_MESSAGE__MSG_SUBMIT;
        msg.submit = &sub;
        if (p2l_conn_send (self->conn, &msg) != 0)
            return;
        s_list_remove (&self->queue, t);
        t->state = S_SENT;
        t->sends++;
        //  The payload is not needed again unless lost tasks are resent
        if (!self->resubmit_lost) {
            free (t->payload);
            t->payload = NULL;
        }
        s_list_push (&self->sent, t);
    }
}

static void
s_on_open (p2l_conn_t *conn, void *arg)
{
    p2c2r_client_t *self = (p2c2r_client_t *) arg;
    P2c2r__RegisterGamer reg = P2C2R__REGISTER_GAMER__INIT;
    reg.gamer_id = self->gamer_id;
    reg.api_key = self->api_key ? self->api_key : "";
    P2c2r__ClientMessage msg = P2C2R__CLIENT_MESSAGE__INIT;
    msg.msg_case = P2C2R__CLIENT_MESSAGE__MSG_REGISTER_GAMER;
    msg.register_gamer = &reg;
    if (p2l_conn_send (conn, &msg) != 0)
        p2l_conn_close (conn);
}

//  A reply for a ref we do not wait for: counted and dropped
static void
s_protocol_error (p2c2r_client_t *self, const char *why, const char *ref, const char *task_id)
{
    self->stats.protocol_errors++;
    s_log (self, P2C2R_LOG_WARN, "p2c2r: protocol error reason=%s client_ref=%.40s task_id=%.60s",
           why, ref ? ref : "", task_id ? task_id : "");
}

static void
s_on_message (p2l_conn_t *conn, P2c2r__ServerMessage **msg_p, const uint8_t *raw,
              size_t raw_len, void *arg)
{
    (void) raw, (void) raw_len;
    p2c2r_client_t *self = (p2c2r_client_t *) arg;
    P2c2r__ServerMessage *msg = *msg_p;
    switch (msg->msg_case) {
        case P2C2R__SERVER_MESSAGE__MSG_REGISTERED:
            if (self->state == P2C2R_READY)
                break;
            p2l_backoff_reset (&self->backoff);
            self->stats.connects++;
            s_log (self, P2C2R_LOG_DEBUG, "p2c2r: registered id=%.100s", self->gamer_id);
            s_set_state (self, P2C2R_READY, P2C2R_OK, NULL);
            s_flush (self);
            break;
        case P2C2R__SERVER_MESSAGE__MSG_TASK_RESULT: {
            P2c2r__TaskReply *m = msg->task_result;
            s_task_t *t = s_table_find (self, m->client_ref);
            if (!t || t->state == S_QUEUED) {
                s_protocol_error (self, t ? "reply_before_submit" : "unknown_client_ref",
                                  m->client_ref, m->task_id);
                break;
            }
            if (t->state == S_ABANDONED) {
                s_task_drop (self, t);
                break;
            }
            p2c2r_result_t r;
            memset (&r, 0, sizeof r);
            r.code = m->ok ? P2C2R_OK : p2c2r_code_from_name (m->error_code);
            //  A failure without a code is still a failure
            if (!m->ok && r.code == P2C2R_OK)
                r.code = P2C2R_SERVER_ERROR;
            r.code_name = m->ok ? "" : m->error_code;
            r.error = m->ok ? "" : m->error;
            r.json = m->ok && m->result_json ? m->result_json : "";
            r.blob = m->blob.len ? m->blob.data : NULL;
            r.blob_len = m->blob.len;
            r.task_id = m->task_id;
            r.cost_pico = m->cost_pico;
            r.billed_us = m->billed_us;
            r.cached = m->cached;
            //  a repeat's reply names the task whose outcome it is
            r.replayed = m->replayed;
            if (m->replayed && m->replay_of && *m->replay_of)
                r.task_id = m->replay_of;
            s_complete (self, t, &r);
            break;
        }
        case P2C2R__SERVER_MESSAGE__MSG_ERROR: {
            P2c2r__Error *e = msg->error;
            if (self->state != P2C2R_READY) {
                //  The registration was refused: on_close tells why
                self->refused = true;
                self->refused_code = p2c2r_code_from_name (e->code);
                if (self->refused_code == P2C2R_OK)
                    self->refused_code = P2C2R_SERVER_ERROR;
                snprintf (self->refused_why, sizeof self->refused_why, "%s (%s)", e->message,
                          e->code);
                s_log (self, P2C2R_LOG_WARN, "p2c2r: registration refused code=%.40s", e->code);
                p2l_conn_close (conn);
                break;
            }
            //  A submit refused before it was accepted is answered this way
            if (e->client_ref [0]) {
                s_task_t *t = s_table_find (self, e->client_ref);
                if (!t || t->state == S_QUEUED) {
                    s_protocol_error (self, t ? "reply_before_submit" : "unknown_client_ref",
                                      e->client_ref, NULL);
                    break;
                }
                if (t->state == S_ABANDONED) {
                    s_task_drop (self, t);
                    break;
                }
                p2c2r_result_t r;
                memset (&r, 0, sizeof r);
                r.code = p2c2r_code_from_name (e->code);
                if (r.code == P2C2R_OK)
                    r.code = P2C2R_SERVER_ERROR;
                r.code_name = e->code;
                r.error = e->message;
                r.json = "";
                r.task_id = "";
                s_complete (self, t, &r);
            }
            else
                s_log (self, P2C2R_LOG_WARN, "p2c2r: server error code=%.40s message=\"%.200s\"",
                       e->code, e->message);
            break;
        }
        default:
            s_log (self, P2C2R_LOG_DEBUG, "p2c2r: message ignored case=%d", (int) msg->msg_case);
            break;
    }
}

//  A uniform number in [0, 1) for the backoff's jitter (xorshift64*)
static double
s_jitter (p2c2r_client_t *self)
{
    uint64_t x = self->rand_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    self->rand_state = x;
    return (double) ((x * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static void
s_on_close (p2l_conn_t *conn, const p2l_conn_end_t *end, void *arg)
{
    (void) conn;
    p2c2r_client_t *self = (p2c2r_client_t *) arg;
    bool was_ready = self->state == P2C2R_READY;
    p2c2r_code_t code;
    char why [300];
    if (self->refused) {
        code = self->refused_code;
        snprintf (why, sizeof why, "registration refused: %s", self->refused_why);
    }
    else {
        code = end->cert_error ? P2C2R_TLS : was_ready ? P2C2R_CONNECTION_LOST
                                                       : P2C2R_NOT_CONNECTED;
        snprintf (why, sizeof why, "%s", end->why);
    }
    bool auth = code == P2C2R_AUTH_FAILED;
    self->refused = false;
    if (self->reconnect) {
        p2l_retry_t kind = p2l_retry_kind (end, auth);
        int64_t delay = p2l_retry_delay (kind, &self->backoff, s_jitter (self));
        self->reconnect_at_us = s_now_us () + delay * 1000;
        s_log (self, P2C2R_LOG_WARN, "p2c2r: disconnected reason=\"%s\" code=%s retry=%s "
               "in_ms=%lld", why, p2c2r_code_name (code), p2l_retry_name (kind),
               (long long) delay);
        s_set_state (self, P2C2R_DISCONNECTED, code, why);
    }
    else {
        s_log (self, P2C2R_LOG_WARN, "p2c2r: closed reason=\"%s\" code=%s", why,
               p2c2r_code_name (code));
        s_set_state (self, P2C2R_CLOSED, code, why);
    }
    //  Tasks sent on the lost connection: again on the next one, newest
    //  last, each a bounded number of times (and only with its payload
    //  kept); the others fail
    uint64_t again = 0;
    if (self->resubmit_lost && self->reconnect && !auth) {
        s_task_t *t = self->sent.tail;
        while (t) {
            s_task_t *prev = t->prev;
            if (t->state == S_ABANDONED) {
                s_list_remove (&self->sent, t);
                s_table_remove (self, t);
                s_task_free (&t);
            }
            else
            if (t->sends < S_MAX_SENDS && (t->payload || t->payload_len == 0)) {
                s_list_remove (&self->sent, t);
                t->state = S_QUEUED;
                s_list_push_front (&self->queue, t);
                again++;
            }
            t = prev;
        }
    }
    if (again)
        s_log (self, P2C2R_LOG_WARN, "p2c2r: resubmitting tasks=%llu", (unsigned long long) again);
    s_fail_all (self, &self->sent, P2C2R_CONNECTION_LOST,
                p2c2r_code_text (P2C2R_CONNECTION_LOST));
    //  Tasks not sent yet wait for the next connection, unless there is none
    //  or the key was refused (a refused key stays refused for minutes)
    if (!self->reconnect || auth)
        s_fail_all (self, &self->queue, code, why);
}

static void
s_on_cron (p2l_conn_t *conn, void *arg)
{
    p2c2r_client_t *self = (p2c2r_client_t *) arg;
    int64_t now = s_now_us ();
    if (self->state == P2C2R_DISCONNECTED && now >= self->reconnect_at_us) {
        s_set_state (self, P2C2R_CONNECTING, P2C2R_OK, NULL);
        p2l_conn_connect (conn);
    }
    //  A task that waits unsent past its deadline cannot make it any more
    //  (from the head again after each: its callback may cancel others)
    for (s_task_t *t = self->queue.head; t; ) {
        if (t->deadline_ms && now - t->submit_us > (int64_t) t->deadline_ms * 1000) {
            s_fail (self, t, P2C2R_TIMEOUT, "the deadline passed before the task could be sent");
            t = self->queue.head;
        }
        else
            t = t->next;
    }
}

static void
s_conn_log (int level, const char *line, void *arg)
{
    p2c2r_client_t *self = (p2c2r_client_t *) arg;
    if (self->on_log)
        self->on_log (level, line, self->arg);
}

//  --------------------------------------------------------------------------
//  Driving

//  The timer's period: short while a connection is being made (see
//  p2l_conn_connecting), S_CRON_MS otherwise
static void
s_sync_timer (p2c2r_client_t *self)
{
    long ms = p2l_conn_connecting (self->conn) ? S_CONNECTING_MS : S_CRON_MS;
    if (ms == self->timer_ms)
        return;
    struct itimerspec its;
    memset (&its, 0, sizeof its);
    its.it_value.tv_nsec = its.it_interval.tv_nsec = ms * 1000000L;
    timerfd_settime (self->timerfd, 0, &its, NULL);
    self->timer_ms = ms;
}

//  Keeps the connection's socket in the epoll set with the events it needs
static void
s_sync_epoll (p2c2r_client_t *self)
{
    s_sync_timer (self);
    int fd = p2l_conn_socket_fd (self->conn);
    uint32_t events = EPOLLIN | (p2l_conn_wants_write (self->conn) ? EPOLLOUT : 0);
    if (fd == self->reg_fd && events == self->reg_events)
        return;
    struct epoll_event ev;
    memset (&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.fd = fd;
    if (fd != self->reg_fd && self->reg_fd >= 0)
        //  Fails harmlessly when the old socket is closed already
        epoll_ctl (self->epfd, EPOLL_CTL_DEL, self->reg_fd, NULL);
    self->reg_fd = -1;
    if (fd < 0)
        return;
    //  The same number may be a new socket whose old self left the set
    //  when it was closed: MOD then fails, and ADD is right
    if (epoll_ctl (self->epfd, EPOLL_CTL_MOD, fd, &ev) != 0
        && epoll_ctl (self->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        s_log (self, P2C2R_LOG_WARN, "p2c2r: cannot watch the socket errno=%d", errno);
        return;
    }
    self->reg_fd = fd;
    self->reg_events = events;
}

static void
s_drain (int fd)
{
    uint64_t v;
    while (read (fd, &v, sizeof v) == (ssize_t) sizeof v)
        ;
}

//  One turn of the engine; the lock is held
static void
s_step (p2c2r_client_t *self)
{
    self->in_step = true;
    s_drain (self->timerfd);
    s_drain (self->wakefd);
    s_flush (self);
    if (p2l_conn_step (self->conn) != 0)
        s_log (self, P2C2R_LOG_WARN, "p2c2r: libwebsockets failed a service call");
    s_flush (self);
    s_run_later (self);
    s_sync_epoll (self);
    self->in_step = false;
}

static void
s_wake (p2c2r_client_t *self)
{
    uint64_t one = 1;
    ssize_t n = write (self->wakefd, &one, sizeof one);
    (void) n;   //  a full counter is readable anyway
}

static void *
s_thread (void *arg)
{
    p2c2r_client_t *self = (p2c2r_client_t *) arg;
    while (!self->stopping) {
        struct epoll_event ev [8];
        //  The timerfd bounds the wait; -1 would do, 1 s is a guard
        epoll_wait (self->epfd, ev, 8, 1000);
        if (self->stopping)
            break;
        pthread_mutex_lock (&self->lock);
        s_step (self);
        pthread_mutex_unlock (&self->lock);
    }
    return NULL;
}

//  --------------------------------------------------------------------------
//  The API

void
p2c2r_options_init (p2c2r_options_t *options)
{
    memset (options, 0, sizeof *options);
    options->url = "ws://127.0.0.1:8765";
    options->reconnect = true;
    options->max_queued = 10000;
}

static char *
s_dup (const char *s, bool *ok)
{
    if (!s || !*s)
        return NULL;
    char *copy = strdup (s);
    if (!copy)
        *ok = false;
    return copy;
}

//  A run's id: 64 random bits from the kernel, in hex, so that the refs
//  this client makes (p2c2r-RUN-N) are its own across runs and processes
//  (the server keeps an account's refs for a window)
static void
s_run_id (char *buf, size_t size)
{
    uint64_t v = 0;
    if (getrandom (&v, sizeof v, GRND_NONBLOCK) != (ssize_t) sizeof v)
        v = (uint64_t) s_now_us () ^ ((uint64_t) getpid () << 32) ^ (uint64_t) (uintptr_t) buf;
    snprintf (buf, size, "%016llx", (unsigned long long) v);
}

p2c2r_client_t *
p2c2r_new (const p2c2r_options_t *options, p2c2r_code_t *code_p)
{
    p2c2r_code_t dummy;
    if (!code_p)
        code_p = &dummy;
    *code_p = P2C2R_INVALID_ARGUMENT;
    if (!options || !options->url || strlen (options->url) > 1000
        || (options->api_key && strlen (options->api_key) > 1000)
        || (options->gamer_id && strlen (options->gamer_id) > 200))
        return NULL;
    p2c2r_client_t *self = calloc (1, sizeof *self);
    if (!self) {
        *code_p = P2C2R_NO_MEMORY;
        return NULL;
    }
    self->epfd = self->timerfd = self->wakefd = self->reg_fd = -1;
    bool ok = true;
    self->url = s_dup (options->url, &ok);
    self->api_key = s_dup (options->api_key, &ok);
    self->ca_file = s_dup (options->ca_file, &ok);
    if (options->gamer_id && *options->gamer_id)
        self->gamer_id = s_dup (options->gamer_id, &ok);
    else {
        char id [40];
        snprintf (id, sizeof id, "player-%ld", (long) getpid ());
        self->gamer_id = s_dup (id, &ok);
    }
    self->tls.ca_file = self->ca_file;
    self->tls.insecure = options->insecure;
    self->threaded = options->threaded;
    self->reconnect = options->reconnect;
    self->max_queued = options->max_queued ? options->max_queued : 10000;
    self->on_state = options->on_state;
    self->on_log = options->on_log;
    self->arg = options->arg;
    self->state = P2C2R_CONNECTING;
    self->rand_state = (uint64_t) s_now_us () ^ (uint64_t) (uintptr_t) self ^ 0x9e3779b97f4a7c15ULL;
    if (!self->rand_state)
        self->rand_state = 1;
    self->resubmit_lost = true;
    s_run_id (self->run_id, sizeof self->run_id);
    p2l_backoff_reset (&self->backoff);
    self->table_size = 64;
    self->table = calloc (self->table_size, sizeof *self->table);
    pthread_mutexattr_t attr;
    pthread_mutexattr_init (&attr);
    pthread_mutexattr_settype (&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init (&self->lock, &attr);
    pthread_mutexattr_destroy (&attr);
    self->epfd = epoll_create1 (EPOLL_CLOEXEC);
    self->timerfd = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    self->wakefd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!ok || !self->table || self->epfd < 0 || self->timerfd < 0 || self->wakefd < 0) {
        *code_p = P2C2R_NO_MEMORY;
        p2c2r_destroy (&self);
        return NULL;
    }
    struct epoll_event ev;
    memset (&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.fd = self->timerfd;
    epoll_ctl (self->epfd, EPOLL_CTL_ADD, self->timerfd, &ev);
    ev.data.fd = self->wakefd;
    epoll_ctl (self->epfd, EPOLL_CTL_ADD, self->wakefd, &ev);

    p2l_conn_handlers_t handlers = { s_on_open, s_on_message, s_on_close, s_on_cron, s_conn_log };
    self->conn = p2l_conn_new (self->url, &self->tls, &handlers, self, S_CRON_MS);
    if (!self->conn) {
        //  A bad URL, or a CA file libwebsockets cannot load
        p2c2r_destroy (&self);
        return NULL;
    }
    p2l_conn_connect (self->conn);
    s_sync_epoll (self);
    if (self->threaded) {
        if (pthread_create (&self->thread, NULL, s_thread, self) != 0) {
            *code_p = P2C2R_NO_MEMORY;
            p2c2r_destroy (&self);
            return NULL;
        }
        self->thread_started = true;
    }
    *code_p = P2C2R_OK;
    return self;
}

void
p2c2r_destroy (p2c2r_client_t **client_p)
{
    p2c2r_client_t *self = client_p ? *client_p : NULL;
    if (!self)
        return;
    if (self->thread_started) {
        self->stopping = true;
        s_wake (self);
        pthread_join (self->thread, NULL);
    }
    //  No callback after this point: tasks are dropped silently
    self->on_state = NULL;
    self->on_log = NULL;
    p2l_conn_destroy (&self->conn);
    while (self->queue.head) {
        s_task_t *t = self->queue.head;
        s_list_remove (&self->queue, t);
        s_task_free (&t);
    }
    while (self->sent.head) {
        s_task_t *t = self->sent.head;
        s_list_remove (&self->sent, t);
        s_task_free (&t);
    }
    while (self->later_head) {
        s_later_t *l = self->later_head;
        self->later_head = l->next;
        free (l->ref);
        free (l);
    }
    free (self->table);
    if (self->epfd >= 0)
        close (self->epfd);
    if (self->timerfd >= 0)
        close (self->timerfd);
    if (self->wakefd >= 0)
        close (self->wakefd);
    pthread_mutex_destroy (&self->lock);
    free (self->url);
    free (self->api_key);
    free (self->gamer_id);
    free (self->ca_file);
    free (self);
    *client_p = NULL;
}

int
p2c2r_fd (p2c2r_client_t *self)
{
    return self && !self->threaded ? self->epfd : -1;
}

p2c2r_code_t
p2c2r_step (p2c2r_client_t *self)
{
    if (!self || self->threaded)
        return P2C2R_INVALID_ARGUMENT;
    pthread_mutex_lock (&self->lock);
    //  A callback that steps again would nest the engine: a no-op instead
    if (!self->in_step)
        s_step (self);
    pthread_mutex_unlock (&self->lock);
    return P2C2R_OK;
}

p2c2r_state_t
p2c2r_state (p2c2r_client_t *self)
{
    pthread_mutex_lock (&self->lock);
    p2c2r_state_t state = self->state;
    pthread_mutex_unlock (&self->lock);
    return state;
}

uint64_t
p2c2r_submit (p2c2r_client_t *self, const p2c2r_task_t *task, p2c2r_done_fn *done, void *arg,
              p2c2r_code_t *code_p)
{
    p2c2r_code_t dummy;
    if (!code_p)
        code_p = &dummy;
    if (!self || !task || !task->type || !*task->type || strlen (task->type) > S_MAX_TYPE
        || (task->params_json && strlen (task->params_json) > S_MAX_PARAMS)
        || task->payload_len > S_MAX_PAYLOAD || (task->payload_len && !task->payload)
        || (task->client_ref && strlen (task->client_ref) > S_MAX_REF)) {
        *code_p = P2C2R_INVALID_ARGUMENT;
        return 0;
    }
    pthread_mutex_lock (&self->lock);
    uint64_t id = 0;
    s_task_t *t = NULL;
    if (self->state == P2C2R_CLOSED) {
        *code_p = P2C2R_NOT_CONNECTED;
        goto done;
    }
    if (self->queue.size >= self->max_queued) {
        *code_p = P2C2R_QUEUE_FULL;
        goto done;
    }
    t = calloc (1, sizeof *t);
    if (!t || !s_table_room (self)) {
        *code_p = P2C2R_NO_MEMORY;
        goto done;
    }
    t->id = ++self->next_id;
    char ref [48];
    if (!task->client_ref || !*task->client_ref)
        snprintf (ref, sizeof ref, "p2c2r-%s-%llu", self->run_id, (unsigned long long) t->id);
    t->ref = strdup (task->client_ref && *task->client_ref ? task->client_ref : ref);
    t->type = strdup (task->type);
    t->params = strdup (task->params_json ? task->params_json : "{}");
    if (task->payload_len) {
        t->payload = malloc (task->payload_len);
        if (t->payload)
            memcpy (t->payload, task->payload, task->payload_len);
        t->payload_len = task->payload_len;
    }
    if (!t->ref || !t->type || !t->params || (task->payload_len && !t->payload)) {
        *code_p = P2C2R_NO_MEMORY;
        goto done;
    }
    //  A reply is matched by its client_ref: two in flight could not be told apart
    if (s_table_find (self, t->ref)) {
        *code_p = P2C2R_INVALID_ARGUMENT;
        goto done;
    }
    t->deadline_ms = task->deadline_ms;
    t->submit_us = s_now_us ();
    t->done = done;
    t->arg = arg;
    t->state = S_QUEUED;
    s_list_push (&self->queue, t);
    s_table_insert (self, t);
    self->stats.submitted++;
    id = t->id;
    t = NULL;
    *code_p = P2C2R_OK;
    //  From inside the engine (a callback) it goes out now; otherwise the
    //  engine is told (thread mode) or the next step sends it (loop mode)
    if (self->in_step)
        s_flush (self);
    else
        s_wake (self);
done:
    s_task_free (&t);
    pthread_mutex_unlock (&self->lock);
    return id;
}

p2c2r_code_t
p2c2r_cancel (p2c2r_client_t *self, uint64_t id)
{
    if (!self || !id)
        return P2C2R_INVALID_ARGUMENT;
    pthread_mutex_lock (&self->lock);
    s_task_t *t = NULL;
    for (t = self->queue.head; t && t->id != id; t = t->next)
        ;
    if (!t)
        for (t = self->sent.head; t && (t->id != id || t->state == S_ABANDONED); t = t->next)
            ;
    p2c2r_code_t rc = P2C2R_INVALID_ARGUMENT;
    s_later_t *l = t ? calloc (1, sizeof *l) : NULL;
    if (l)
        l->ref = strdup (t->ref);
    if (t && (!l || !l->ref))
        rc = P2C2R_NO_MEMORY;
    if (t && l && l->ref) {
        l->id = t->id;
        l->code = P2C2R_CANCELLED;
        l->submit_us = t->submit_us;
        l->done = t->done;
        l->arg = t->arg;
        if (self->later_tail)
            self->later_tail->next = l;
        else
            self->later_head = l;
        self->later_tail = l;
        l = NULL;
        //  Not sent: forgotten. Sent: kept until its reply, which is dropped
        if (t->state == S_QUEUED)
            s_task_drop (self, t);
        else {
            t->state = S_ABANDONED;
            t->done = NULL;
        }
        s_wake (self);
        rc = P2C2R_OK;
    }
    if (l)
        free (l->ref);
    free (l);
    pthread_mutex_unlock (&self->lock);
    return rc;
}

void
p2c2r_set_resubmit (p2c2r_client_t *client, bool on)
{
    if (!client)
        return;
    pthread_mutex_lock (&client->lock);
    client->resubmit_lost = on;
    pthread_mutex_unlock (&client->lock);
}

void
p2c2r_stats (p2c2r_client_t *self, p2c2r_stats_t *stats)
{
    pthread_mutex_lock (&self->lock);
    *stats = self->stats;
    stats->queued = self->queue.size;
    stats->in_flight = 0;
    for (s_task_t *t = self->sent.head; t; t = t->next)
        if (t->state == S_SENT)
            stats->in_flight++;
    pthread_mutex_unlock (&self->lock);
}

uint64_t p2c2r_result_id (const p2c2r_result_t *r) { return r->id; }
p2c2r_code_t p2c2r_result_code (const p2c2r_result_t *r) { return r->code; }
const char *p2c2r_result_code_name (const p2c2r_result_t *r) { return r->code_name ? r->code_name : ""; }
const char *p2c2r_result_error (const p2c2r_result_t *r) { return r->error ? r->error : ""; }
const char *p2c2r_result_json (const p2c2r_result_t *r) { return r->json ? r->json : ""; }
const char *p2c2r_result_task_id (const p2c2r_result_t *r) { return r->task_id ? r->task_id : ""; }
const char *p2c2r_result_client_ref (const p2c2r_result_t *r) { return r->client_ref ? r->client_ref : ""; }
int64_t p2c2r_result_cost_pico (const p2c2r_result_t *r) { return r->cost_pico; }
uint64_t p2c2r_result_billed_us (const p2c2r_result_t *r) { return r->billed_us; }
bool p2c2r_result_cached (const p2c2r_result_t *r) { return r->cached; }
bool p2c2r_result_replayed (const p2c2r_result_t *r) { return r->replayed; }
double p2c2r_result_latency_ms (const p2c2r_result_t *r) { return r->latency_ms; }

const uint8_t *
p2c2r_result_blob (const p2c2r_result_t *r, size_t *len_p)
{
    if (len_p)
        *len_p = r->blob ? r->blob_len : 0;
    return r->blob;
}

//  --------------------------------------------------------------------------
//  Self-test: the paths that need no server (a port nobody listens on)

typedef struct {
    int done;                   //  completions seen
    p2c2r_code_t last_code;
    char last_ref [64];
    int closed, disconnected;   //  states seen
    p2c2r_code_t state_code;
    bool other_thread;          //  a callback ran off the test's thread
    pthread_t main;
} s_probe_t;

static void
s_probe_done (p2c2r_client_t *client, const p2c2r_result_t *r, void *arg)
{
    (void) client;
    s_probe_t *p = (s_probe_t *) arg;
    p->last_code = p2c2r_result_code (r);
    snprintf (p->last_ref, sizeof p->last_ref, "%s", p2c2r_result_client_ref (r));
    if (!pthread_equal (pthread_self (), p->main))
        p->other_thread = true;
    __atomic_add_fetch (&p->done, 1, __ATOMIC_SEQ_CST);
}

static void
s_probe_state (p2c2r_client_t *client, p2c2r_state_t state, p2c2r_code_t code, const char *why,
               void *arg)
{
    (void) client, (void) why;
    s_probe_t *p = (s_probe_t *) arg;
    if (state == P2C2R_CLOSED)
        p->closed++;
    if (state == P2C2R_DISCONNECTED)
        p->disconnected++;
    if (state == P2C2R_CLOSED || state == P2C2R_DISCONNECTED)
        p->state_code = code;
}

//  Steps a loop-mode client until *flag reaches want, at most 5 s
static bool
s_probe_until (p2c2r_client_t *c, int *flag, int want)
{
    int64_t end = s_now_us () + 5000000;
    while (__atomic_load_n (flag, __ATOMIC_SEQ_CST) < want && s_now_us () < end) {
        if (c && !c->threaded) {
            struct epoll_event ev;
            epoll_wait (p2c2r_fd (c), &ev, 1, 50);
            p2c2r_step (c);
        }
        else {
            struct timespec ts = { 0, 5000000 };
            nanosleep (&ts, NULL);
        }
    }
    return __atomic_load_n (flag, __ATOMIC_SEQ_CST) >= want;
}

void
p2l_client_test (bool verbose)
{
    (void) verbose;
    //  Codes: the protocol's names both ways
    for (int i = 1; i < P2C2R_CODE_COUNT; i++)
        P2C_CHECK ((int) p2c2r_code_from_name (p2c2r_code_name ((p2c2r_code_t) i)) == i);
    P2C_CHECK (!strcmp (p2c2r_code_name (P2C2R_NO_PEERS), "no_peers"));
    P2C_CHECK (!strcmp (p2c2r_code_name (P2C2R_INSUFFICIENT_FUNDS), "insufficient_funds"));
    P2C_CHECK (p2c2r_code_from_name ("rate_limited") == P2C2R_RATE_LIMITED);
    P2C_CHECK (p2c2r_code_from_name ("something_new") == P2C2R_SERVER_ERROR);
    P2C_CHECK (p2c2r_code_from_name ("") == P2C2R_OK && p2c2r_code_from_name (NULL) == P2C2R_OK);
    P2C_CHECK (!strcmp (p2c2r_code_name ((p2c2r_code_t) 999), "server_error"));
    P2C_CHECK (strlen (p2c2r_code_text (P2C2R_CONNECTION_LOST)) > 10);

    //  Bad settings
    p2c2r_options_t o;
    p2c2r_options_init (&o);
    P2C_CHECK (o.reconnect && !o.threaded && o.max_queued == 10000);
    o.url = "http://127.0.0.1:1";
    p2c2r_code_t code = P2C2R_OK;
    P2C_CHECK (p2c2r_new (&o, &code) == NULL && code == P2C2R_INVALID_ARGUMENT);
    P2C_CHECK (p2c2r_new (NULL, &code) == NULL && code == P2C2R_INVALID_ARGUMENT);

    //  A port nobody listens on: bound, never listened to, so no one else
    //  takes it while the test runs
    int hold = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset (&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t salen = sizeof sa;
    P2C_CHECK (bind (hold, (struct sockaddr *) &sa, sizeof sa) == 0
               && getsockname (hold, (struct sockaddr *) &sa, &salen) == 0);
    char url [64];
    snprintf (url, sizeof url, "ws://127.0.0.1:%d", ntohs (sa.sin_port));

    //  No reconnect: the client closes, queued tasks fail, new ones are refused
    s_probe_t p;
    memset (&p, 0, sizeof p);
    p.main = pthread_self ();
    p2c2r_options_init (&o);
    o.url = url;
    o.reconnect = false;
    o.on_state = s_probe_state;
    o.arg = &p;
    p2c2r_client_t *c = p2c2r_new (&o, &code);
    P2C_CHECK (c && code == P2C2R_OK && p2c2r_fd (c) >= 0);
    p2c2r_task_t task = { "encryption", "{\"data\":\"x\",\"iterations\":1}", NULL, 0, NULL, 0 };
    uint64_t id = c ? p2c2r_submit (c, &task, s_probe_done, &p, &code) : 0;
    P2C_CHECK (id > 0 && code == P2C2R_OK);
    P2C_CHECK (s_probe_until (c, &p.done, 1));
    P2C_CHECK (p.closed == 1 && p.state_code == P2C2R_NOT_CONNECTED);
    //  the ref the library made: p2c2r-RUN-1, RUN 16 hex digits of this client's
    P2C_CHECK (p.last_code == P2C2R_NOT_CONNECTED && !strncmp (p.last_ref, "p2c2r-", 6)
               && strlen (p.last_ref) == 6 + 16 + 2 && !strcmp (p.last_ref + 22, "-1"));
    P2C_CHECK (c && p2c2r_state (c) == P2C2R_CLOSED);
    P2C_CHECK (c && p2c2r_submit (c, &task, s_probe_done, &p, &code) == 0
               && code == P2C2R_NOT_CONNECTED);
    p2c2r_stats_t st;
    if (c)
        p2c2r_stats (c, &st);
    P2C_CHECK (c && st.submitted == 1 && st.completed == 1 && st.failed == 1 && st.connects == 0);
    p2c2r_destroy (&c);
    P2C_CHECK (c == NULL);
    p2c2r_destroy (&c);

    //  Reconnecting: tasks wait; deadlines, cancels and bounds still apply
    memset (&p, 0, sizeof p);
    p.main = pthread_self ();
    p2c2r_options_init (&o);
    o.url = url;
    o.max_queued = 3;
    o.on_state = s_probe_state;
    o.arg = &p;
    c = p2c2r_new (&o, &code);
    P2C_CHECK (c != NULL);
    p2c2r_task_t bad = task;
    bad.type = NULL;
    P2C_CHECK (c && !p2c2r_submit (c, &bad, NULL, NULL, &code) && code == P2C2R_INVALID_ARGUMENT);
    bad = task;
    char big_ref [200];
    memset (big_ref, 'r', sizeof big_ref - 1);
    big_ref [sizeof big_ref - 1] = 0;
    bad.client_ref = big_ref;
    P2C_CHECK (c && !p2c2r_submit (c, &bad, NULL, NULL, &code) && code == P2C2R_INVALID_ARGUMENT);
    bad = task;
    bad.payload_len = 10;
    P2C_CHECK (c && !p2c2r_submit (c, &bad, NULL, NULL, &code) && code == P2C2R_INVALID_ARGUMENT);
    p2c2r_task_t mine = task;
    mine.client_ref = "mine-1";
    uint64_t a = c ? p2c2r_submit (c, &mine, s_probe_done, &p, &code) : 0;
    P2C_CHECK (a > 0);
    //  The same client_ref twice in flight could not be told apart
    P2C_CHECK (c && !p2c2r_submit (c, &mine, s_probe_done, &p, &code)
               && code == P2C2R_INVALID_ARGUMENT);
    p2c2r_task_t soon = task;
    soon.deadline_ms = 200;
    uint64_t b = c ? p2c2r_submit (c, &soon, s_probe_done, &p, &code) : 0;
    uint64_t d = c ? p2c2r_submit (c, &task, s_probe_done, &p, &code) : 0;
    P2C_CHECK (b > 0 && d > 0);
    P2C_CHECK (c && !p2c2r_submit (c, &task, s_probe_done, &p, &code) && code == P2C2R_QUEUE_FULL);
    //  Cancelled: completes at the next step, not inside the call
    P2C_CHECK (c && p2c2r_cancel (c, a) == P2C2R_OK && p.done == 0);
    P2C_CHECK (c && p2c2r_cancel (c, a) == P2C2R_INVALID_ARGUMENT);
    P2C_CHECK (c && p2c2r_cancel (c, 12345) == P2C2R_INVALID_ARGUMENT);
    P2C_CHECK (s_probe_until (c, &p.done, 1));
    P2C_CHECK (p.last_code == P2C2R_CANCELLED && !strcmp (p.last_ref, "mine-1"));
    //  The refs of finished tasks may be used again
    a = c ? p2c2r_submit (c, &mine, s_probe_done, &p, &code) : 0;
    P2C_CHECK (a > 0);
    //  The deadline passes while the server is unreachable
    P2C_CHECK (s_probe_until (c, &p.done, 2));
    P2C_CHECK (p.last_code == P2C2R_TIMEOUT);
    P2C_CHECK (p.disconnected >= 1 && p.closed == 0 && p.state_code == P2C2R_NOT_CONNECTED);
    if (c)
        p2c2r_stats (c, &st);
    P2C_CHECK (c && st.queued == 2 && st.in_flight == 0 && st.completed == 2);
    //  Destroyed with tasks waiting: no callback runs
    p2c2r_destroy (&c);
    P2C_CHECK (p.done == 2);

    //  Thread mode: callbacks run on the client's thread
    memset (&p, 0, sizeof p);
    p.main = pthread_self ();
    p2c2r_options_init (&o);
    o.url = url;
    o.threaded = true;
    o.on_state = s_probe_state;
    o.arg = &p;
    c = p2c2r_new (&o, &code);
    P2C_CHECK (c && p2c2r_fd (c) == -1 && p2c2r_step (c) == P2C2R_INVALID_ARGUMENT);
    id = c ? p2c2r_submit (c, &soon, s_probe_done, &p, &code) : 0;
    P2C_CHECK (id > 0);
    P2C_CHECK (s_probe_until (c, &p.done, 1));
    P2C_CHECK (p.last_code == P2C2R_TIMEOUT && p.other_thread);
    id = c ? p2c2r_submit (c, &task, s_probe_done, &p, &code) : 0;
    P2C_CHECK (c && id > 0 && p2c2r_cancel (c, id) == P2C2R_OK);
    P2C_CHECK (s_probe_until (c, &p.done, 2));
    P2C_CHECK (p.last_code == P2C2R_CANCELLED);
    p2c2r_destroy (&c);
    close (hold);
}
