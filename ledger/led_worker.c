/*  The ledger's database thread (see led_worker.h). */
#define P2C_LOG_COMPONENT "worker"
#include "led_worker.h"
#include "led_accounts.h"
#include "led_earnings.h"
#include "led_money.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"
#include "p2c_time.h"

#include <libpq-fe.h>
#include <poll.h>

#define LED_BACKOFF_MIN_MS 100
#define LED_BACKOFF_MAX_MS 5000

led_batch_t *
led_batch_new (size_t capacity)
{
    led_batch_t *self = (led_batch_t *) zmalloc (sizeof (led_batch_t));
    self->items = (led_settle_t *) p2c_calloc (capacity ? capacity : 1, sizeof (led_settle_t));
    return self;
}

void
led_batch_destroy (led_batch_t **self_p)
{
    led_batch_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        led_settle_clear (&self->items [i]);
    free (self->items);
    free (self->balances.items);
    free (self);
    *self_p = NULL;
}

void
led_auth_job_destroy (led_auth_job_t **self_p)
{
    led_auth_job_t *self = *self_p;
    if (!self)
        return;
    free (self->role);
    free (self->name);
    free (self->key_hash);
    free (self->reply_to);
    free (self->balances.items);
    free (self);
    *self_p = NULL;
}

void
led_admin_job_destroy (led_admin_job_t **self_p)
{
    led_admin_job_t *self = *self_p;
    if (!self)
        return;
    free (self->command);
    free (self->args_json);
    free (self->reply_to);
    free (self->who);
    free (self->message);
    //  May hold a new API key
    if (self->result_json)
        explicit_bzero (self->result_json, strlen (self->result_json));
    free (self->result_json);
    free (self->balances.items);
    free (self);
    *self_p = NULL;
}

void
led_balq_job_destroy (led_balq_job_t **self_p)
{
    led_balq_job_t *self = *self_p;
    if (!self)
        return;
    free (self->ids);
    free (self->balances.items);
    free (self);
    *self_p = NULL;
}

//  Copies the store's balances of its last call into a job
static void
s_take_balances (led_store_t *store, led_balances_t *out)
{
    size_t n = 0;
    const led_balance_t *b = led_store_balances (store, &n);
    free (out->items);
    out->items = NULL;
    out->count = 0;
    if (n == 0)
        return;
    out->items = (led_balance_t *) p2c_malloc (n * sizeof (led_balance_t));
    memcpy (out->items, b, n * sizeof (led_balance_t));
    out->count = n;
}

typedef struct {
    led_store_t *store;
    int64_t retry_ms;           //  next connection attempt while down
    int64_t backoff_ms;         //  current wait between attempts
} s_worker_t;

//  Connects when down and the backoff allows; true when connected
static bool
s_ensure (s_worker_t *w)
{
    if (led_store_connected (w->store))
        return true;
    if (p2c_now_ms () < w->retry_ms)
        return false;
    if (led_store_connect (w->store) == 0) {
        w->backoff_ms = LED_BACKOFF_MIN_MS;
        return true;
    }
    w->retry_ms = p2c_now_ms () + w->backoff_ms;
    log_warn ("database down retry_ms=%lld", (long long) w->backoff_ms);
    w->backoff_ms = w->backoff_ms * 2 > LED_BACKOFF_MAX_MS ? LED_BACKOFF_MAX_MS : w->backoff_ms * 2;
    return false;
}

static void
s_settle (s_worker_t *w, led_batch_t *batch)
{
    batch->rc = -1;
    for (size_t i = 0; i < batch->count; i++)
        batch->items [i].status = LED_SETTLE_PENDING;
    if (!s_ensure (w)) {
        log_warn ("batch not settled, database down tasks=%zu", batch->count);
        return;
    }
    int64_t start = p2c_now_us ();
    batch->rc = led_settle_batch (w->store, batch->items, batch->count);
    if (batch->rc == 0)
        s_take_balances (w->store, &batch->balances);
    if (batch->rc != 0 && led_store_connected (w->store) && batch->count > 1) {
        //  The server refused the batch: settle one by one, so that one bad
        //  request cannot hold back the others on every retry
        log_warn ("batch failed, settling one by one tasks=%zu", batch->count);
        led_balances_t all = { NULL, 0 };
        for (size_t i = 0; i < batch->count && led_store_connected (w->store); i++) {
            if (led_settle_batch (w->store, &batch->items [i], 1) != 0)
                log_warn ("task not settled task=%s", batch->items [i].task_id
                          ? batch->items [i].task_id : "");
            else {
                //  Later balances of a gamer supersede earlier ones
                led_balances_t one = { NULL, 0 };
                s_take_balances (w->store, &one);
                all.items = (led_balance_t *) p2c_realloc (all.items, (all.count + one.count + 1)
                                                       * sizeof (led_balance_t));
                memcpy (all.items + all.count, one.items, one.count * sizeof (led_balance_t));
                all.count += one.count;
                free (one.items);
            }
        }
        free (batch->balances.items);
        batch->balances = all;
        batch->rc = 0;
    }
    if (!led_store_connected (w->store))
        s_ensure (w);       //  starts the backoff at once
    log_debug ("batch done tasks=%zu rc=%d us=%lld", batch->count, batch->rc,
               (long long) (p2c_now_us () - start));
}

static void
s_auth (s_worker_t *w, led_auth_job_t *job)
{
    if (!s_ensure (w)) {
        job->status = LED_AUTH_UNAVAILABLE;
        job->account_id = 0;
        job->message = "the ledger database is unavailable";
        //  Malformed requests still get their precise answer
        if (strcmp (job->role ? job->role : "", "gamer") && strcmp (job->role ? job->role : "", "peer")) {
            job->status = LED_AUTH_BAD_REQUEST;
            job->message = "role must be gamer or peer";
        }
        return;
    }
    led_auth_ask_t ask = { job->role, job->name, job->key_hash, job->open,
                           job->recheck_account };
    job->status = led_auth_request (w->store, &ask, &job->account_id, job->owner, &job->message);
    if (job->status == LED_AUTH_OK)
        s_take_balances (w->store, &job->balances);
    if (!led_store_connected (w->store))
        s_ensure (w);
}

static void
s_admin (s_worker_t *w, led_admin_job_t *job)
{
    free (job->message);
    free (job->result_json);
    job->message = job->result_json = NULL;
    if (!w->store || !s_ensure (w)) {
        job->status = LED_ADMIN_UNAVAILABLE;
        job->code = "unavailable";
        job->message = p2c_strdup ("the ledger database is unavailable");
        return;
    }
    job->status = led_admin_run (w->store, job->who, job->command, job->args_json,
                                 &job->result_json, &job->code, &job->message);
    if (job->status == LED_ADMIN_OK)
        s_take_balances (w->store, &job->balances);
    if (!led_store_connected (w->store))
        s_ensure (w);
}

static void
s_balq (s_worker_t *w, led_balq_job_t *job)
{
    if (w->store && s_ensure (w)
        && led_accounts_query_balances (w->store, job->ids, job->count) == 0)
        s_take_balances (w->store, &job->balances);
}

//  A client's own figures; while the database is down: unavailable at once
static void
s_earnings (s_worker_t *w, led_earnings_job_t *job)
{
    job->status = w->store && s_ensure (w)
                ? led_earnings_read (w->store, job->account_id, job->role, &job->figures)
                : LED_EARNINGS_UNAVAILABLE;
    if (w->store && !led_store_connected (w->store))
        s_ensure (w);
}

//  The money summary for the stats; while the database is down: not ok
static void
s_money (s_worker_t *w, led_money_t *job)
{
    job->ok = false;
    if (w->store && s_ensure (w))
        led_money_read (w->store, job);
    if (w->store && !led_store_connected (w->store))
        s_ensure (w);
}

int
led_pipe_send (zsock_t *pipe, const char *command, void *job)
{
    void *handle = zsock_resolve (pipe);
    if (zmq_send (handle, command, strlen (command), ZMQ_SNDMORE) < 0
        || zmq_send (handle, &job, sizeof job, 0) < 0)
        return -1;
    return 0;
}

int
led_pipe_recv (zsock_t *pipe, char *command, size_t size, void **job_p)
{
    assert (size > 0);
    void *handle = zsock_resolve (pipe);
    *job_p = NULL;
    command [0] = 0;
    int n = zmq_recv (handle, command, size - 1, ZMQ_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    command [(size_t) n < size - 1 ? (size_t) n : size - 1] = 0;
    //  The rest of the message is here already (ZeroMQ delivers whole
    //  messages); the first pointer-sized frame is the job
    bool took = false;
    int more = 0;
    size_t more_size = sizeof more;
    while (zmq_getsockopt (handle, ZMQ_RCVMORE, &more, &more_size) == 0 && more) {
        void *job = NULL;
        int got = zmq_recv (handle, &job, sizeof job, 0);
        if (got < 0)
            return -1;
        if (!took && got == (int) sizeof job) {
            *job_p = job;
            took = true;
        }
        more_size = sizeof more;
    }
    return 1;
}

//  Does one job and sends it back; false on $TERM
static bool
s_worker_job (s_worker_t *w, zsock_t *pipe, const char *command, void *job)
{
    if (!strcmp (command, "$TERM"))
        return false;
    if (!strcmp (command, "SETTLE") && job) {
        led_batch_t *batch = (led_batch_t *) job;
        if (w->store)
            s_settle (w, batch);
        else
            batch->rc = -1;
        led_pipe_send (pipe, "SETTLED", batch);
    }
    else
    if (!strcmp (command, "AUTH") && job) {
        led_auth_job_t *aj = (led_auth_job_t *) job;
        if (w->store)
            s_auth (w, aj);
        else {
            aj->status = LED_AUTH_UNAVAILABLE;
            aj->message = "the ledger database is unavailable";
        }
        led_pipe_send (pipe, "AUTHED", aj);
    }
    else
    if (!strcmp (command, "ADMIN") && job) {
        s_admin (w, (led_admin_job_t *) job);
        led_pipe_send (pipe, "ADMINED", job);
    }
    else
    if (!strcmp (command, "BALANCES") && job) {
        s_balq (w, (led_balq_job_t *) job);
        led_pipe_send (pipe, "BALANCED", job);
    }
    else
    if (!strcmp (command, "EARNINGS") && job) {
        s_earnings (w, (led_earnings_job_t *) job);
        led_pipe_send (pipe, "EARNED", job);
    }
    else
    if (!strcmp (command, "MONEY") && job) {
        s_money (w, (led_money_t *) job);
        led_pipe_send (pipe, "MONEYED", job);
    }
    else
        log_warn ("unknown command=%.16s", command);
    return true;
}

//  The worker sleeps in one poll(2) on its pipe's ZMQ_FD rather than in
//  zpoller, whose zmq_poll makes several system calls per wakeup; at one
//  task per batch it wakes once per task. Every turn drains the pipe to
//  EAGAIN after the last answer was sent, then sleeps.
void
led_worker_actor (zsock_t *pipe, void *args)
{
    led_worker_args_t *a = (led_worker_args_t *) args;
    s_worker_t w = { NULL, 0, LED_BACKOFF_MIN_MS };
    w.store = led_store_new (a->conninfo, a->schema, a->sql_dir, &a->rates);
    if (w.store)
        led_store_set_owner (w.store, a->owner_conninfo);
    if (w.store && (a->policy.starting_credit_pico || a->policy.payout_threshold_pico))
        led_store_set_policy (w.store, &a->policy);
    zsock_signal (pipe, 0);
    if (!w.store) {
        log_warn ("bad store settings");
    }
    else
        s_ensure (&w);
    struct pollfd item = { zsock_fd (pipe), POLLIN, 0 };
    while (true) {
        char command [16];
        void *job = NULL;
        int rc = 0;
        bool alive = true;
        while (alive && (rc = led_pipe_recv (pipe, command, sizeof command, &job)) == 1)
            alive = s_worker_job (&w, pipe, command, job);
        if (!alive || rc < 0)
            break;
        int timeout = -1;
        if (w.store && !led_store_connected (w.store)) {
            s_ensure (&w);
            if (!led_store_connected (w.store)) {
                int64_t wait = w.retry_ms - p2c_now_ms ();
                timeout = wait < 0 ? 0 : (int) wait;
            }
        }
        item.revents = 0;
        if (poll (&item, 1, timeout) < 0 && errno != EINTR) {
            log_warn ("poll failed errno=%d", errno);
            break;
        }
        if (zsys_interrupted)
            break;
    }
    led_store_destroy (&w.store);
}

//  --------------------------------------------------------------------------
//  Self-test: the worker answers at once while the database is down, and
//  settles and authenticates once it is up (needs P2C2R_TEST_DB).

static void *
s_roundtrip (zactor_t *worker, const char *command, void *job, const char *expect)
{
    zsock_set_rcvtimeo (zactor_sock (worker), 10000);
    zsock_send (zactor_sock (worker), "sp", command, job);
    char *answer = NULL;
    void *back = NULL;
    zsock_recv (zactor_sock (worker), "sp", &answer, &back);
    bool ok = answer && !strcmp (answer, expect) && back == job;
    zstr_free (&answer);
    return ok ? back : NULL;
}

static void
s_quiet (void *arg, const char *message)
{
    (void) arg; (void) message;
}

void
led_worker_test (bool verbose)
{
    (void) verbose;
    p2c_rates_t rates = P2C_RATES_DEFAULT;
    //  Down: answers come back at once, nothing settled
    led_worker_args_t args = { "host=/nonexistent-p2c2r port=1 dbname=x", "led_worker_down",
                               led_store_test_sql_dir (), rates, LED_POLICY_DEFAULT, NULL };
    zactor_t *worker = zactor_new (led_worker_actor, &args);
    led_batch_t *batch = led_batch_new (1);
    batch->count = 1;
    batch->items [0].task_id = p2c_strdup ("w-down");
    batch->items [0].task_type = p2c_strdup ("encryption");
    batch->items [0].gamer_account = 3;
    batch->items [0].peer_account = 4;
    int64_t start = zclock_mono ();
    P2C_CHECK (s_roundtrip (worker, "SETTLE", batch, "SETTLED") == batch);
    P2C_CHECK (batch->rc == -1 && batch->items [0].status == LED_SETTLE_PENDING);
    led_auth_job_t *job = (led_auth_job_t *) zmalloc (sizeof (led_auth_job_t));
    job->role = p2c_strdup ("gamer");
    job->name = p2c_strdup ("w-gamer");
    job->key_hash = p2c_strdup ("");
    job->reply_to = p2c_strdup ("gw");
    job->open = true;
    P2C_CHECK (s_roundtrip (worker, "AUTH", job, "AUTHED") == job);
    P2C_CHECK (job->status == LED_AUTH_UNAVAILABLE);
    P2C_CHECK (zclock_mono () - start < 5000);
    zactor_destroy (&worker);

    const char *conninfo = getenv ("P2C2R_TEST_DB");
    if (!conninfo || !*conninfo) {
        fprintf (stderr, "led_worker_test: FAIL: P2C2R_TEST_DB is not set\n");
        P2C_CHECK (!"P2C2R_TEST_DB set");
        led_batch_destroy (&batch);
        led_auth_job_destroy (&job);
        return;
    }
    char schema [64];
    snprintf (schema, sizeof schema, "led_wtest_%d_%04x", (int) getpid (), (unsigned) randof (0x10000));
    led_worker_args_t up = { conninfo, schema, led_store_test_sql_dir (), rates,
                             LED_POLICY_DEFAULT, NULL };
    worker = zactor_new (led_worker_actor, &up);
    P2C_CHECK (s_roundtrip (worker, "AUTH", job, "AUTHED") == job);
    P2C_CHECK (job->status == LED_AUTH_OK && job->account_id > 0);
    int64_t gamer = job->account_id;
    free (job->role);
    job->role = p2c_strdup ("peer");
    P2C_CHECK (s_roundtrip (worker, "AUTH", job, "AUTHED") == job);
    P2C_CHECK (job->status == LED_AUTH_OK && job->account_id != gamer);
    batch->items [0].gamer_account = gamer;
    batch->items [0].peer_account = job->account_id;
    batch->items [0].billed_us = 1000000;           //  one second
    P2C_CHECK (s_roundtrip (worker, "SETTLE", batch, "SETTLED") == batch);
    P2C_CHECK (batch->rc == 0 && batch->items [0].status == LED_SETTLE_NEW);
    P2C_CHECK (batch->items [0].split.gamer_charge == 2777778);     //  1e6 * 1e10 / 3.6e9
    P2C_CHECK (s_roundtrip (worker, "SETTLE", batch, "SETTLED") == batch);
    P2C_CHECK (batch->rc == 0 && batch->items [0].status == LED_SETTLE_REPLAY);
    P2C_CHECK (batch->items [0].split.gamer_charge == 2777778);
    zactor_destroy (&worker);
    led_batch_destroy (&batch);
    led_auth_job_destroy (&job);

    //  Leave no schema behind
    PGconn *conn = PQconnectdb (conninfo);
    PQsetNoticeProcessor (conn, s_quiet, NULL);
    char *ident = PQescapeIdentifier (conn, schema, strlen (schema));
    char *drop = p2c_sprintf ("DROP SCHEMA %s CASCADE", ident);
    PGresult *res = PQexec (conn, drop);
    P2C_CHECK (PQresultStatus (res) == PGRES_COMMAND_OK);
    PQclear (res);
    zstr_free (&drop);
    PQfreemem (ident);
    PQfinish (conn);
}
