/*  HTTP on the gateway's port (see gw_http.h). */
#include "gw_http.h"
#include "gw_core_int.h"
#include "gw_files.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <czmq.h>
#include <jansson.h>
#include <sys/stat.h>

//  One /api/stats request waiting for the scheduler's and ledger's figures
typedef struct {
    uint64_t corr;
    void *conn;                 //  the HTTP connection (the glue's handle)
    json_t *sched;              //  StatsReply figures, NULL until they come
    json_t *ledger;
    int64_t deadline_ms;        //  answer with what is there by then
} gw_stats_job_t;

struct _gw_http_t {
    gw_core_t *core;            //  whose figures the pages show (borrowed)
    gw_http_config_t cfg;
    gw_http_io_t io;
    gw_files_t *files;          //  static files below the web root
    gw_files_t *vendor;         //  Chart.js (Debian's libjs-chart.js)
    zlistx_t *stats_jobs;       //  gw_stats_job_t waiting (owned)
    uint64_t stats_seq;
};

void
gw_http_answer_free (gw_http_answer_t *answer)
{
    free (answer->buf);
    memset (answer, 0, sizeof *answer);
}

//  Sets an answer with a copy of the body
static void
s_answer (gw_http_t *self, gw_http_answer_t *a, unsigned status, const char *type,
          const char *body, size_t len)
{
    a->buf = (uint8_t *) p2c_malloc (self->cfg.pre + len + 1);
    a->len = a->buf ? len : 0;
    if (a->buf)
        memcpy (a->buf + self->cfg.pre, body, len);
    a->status = a->buf ? status : 500;
    a->type = type;
}

static void
s_stats_job_free (gw_stats_job_t **job_p)
{
    gw_stats_job_t *job = *job_p;
    if (!job)
        return;
    json_decref (job->sched);
    json_decref (job->ledger);
    free (job);
    *job_p = NULL;
}

gw_http_t *
gw_http_new (gw_core_t *core, const gw_http_config_t *config, const gw_http_io_t *io)
{
    assert (core && config && io && io->send && io->services && io->broker_alive && io->done);
    gw_http_t *self = (gw_http_t *) zmalloc (sizeof (gw_http_t));
    self->core = core;
    self->cfg = *config;
    self->cfg.web_root = NULL;
    self->cfg.vendor_root = NULL;
    self->vendor = gw_files_new (config->vendor_root && *config->vendor_root
                                 ? config->vendor_root : NULL);
    self->io = *io;
    if (config->web_root && *config->web_root)
        self->files = gw_files_new (config->web_root);
    else {
        char *root = gw_files_default_root ();
        self->files = gw_files_new (root);
        free (root);
    }
    self->stats_jobs = zlistx_new ();
    zlistx_set_destructor (self->stats_jobs, (zlistx_destructor_fn *) s_stats_job_free);
    return self;
}

void
gw_http_destroy (gw_http_t **self_p)
{
    gw_http_t *self = *self_p;
    if (!self)
        return;
    zlistx_destroy (&self->stats_jobs);
    gw_files_destroy (&self->files);
    gw_files_destroy (&self->vendor);
    free (self);
    *self_p = NULL;
}

const char *
gw_http_web_root (gw_http_t *self)
{
    return gw_files_root (self->files);
}

static bool
s_ready (gw_http_t *self)
{
    return self->io.broker_alive (self->io.arg)
        && self->io.services (self->io.arg, "scheduler") > 0
        && self->io.services (self->io.arg, "ledger") > 0
        && !gw_core_quitting (self->core);
}

static void
s_metrics (gw_http_t *self, gw_http_answer_t *a)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream (&text, &size);
    if (!f) {
        s_answer (self, a, 500, "text/plain", "error\n", 6);
        return;
    }
    size_t none, peers, gamers;
    gw_core_role_counts (self->core, &none, &peers, &gamers);
    gw_core_counters_t *c = gw_core_counters (self->core);
    fprintf (f, "# HELP p2c2r_gateway_connections Live WebSocket connections, by role.\n"
                "# TYPE p2c2r_gateway_connections gauge\n"
                "p2c2r_gateway_connections{role=\"none\"} %zu\n"
                "p2c2r_gateway_connections{role=\"peer\"} %zu\n"
                "p2c2r_gateway_connections{role=\"gamer\"} %zu\n", none, peers, gamers);
    fprintf (f, "# HELP p2c2r_gateway_pending_tasks Accepted submits not answered yet.\n"
                "# TYPE p2c2r_gateway_pending_tasks gauge\np2c2r_gateway_pending_tasks %zu\n",
             gw_core_pending (self->core));
    fprintf (f, "# HELP p2c2r_gateway_input_held_bytes Unfinished client messages held.\n"
                "# TYPE p2c2r_gateway_input_held_bytes gauge\np2c2r_gateway_input_held_bytes %zu\n",
             gw_core_input_held (self->core));
    fprintf (f, "# HELP p2c2r_gateway_ready Broker, a scheduler and a ledger reachable.\n"
                "# TYPE p2c2r_gateway_ready gauge\np2c2r_gateway_ready %d\n", s_ready (self));
    fprintf (f, "# HELP p2c2r_gateway_auth_cache_keys API keys in the cache.\n"
                "# TYPE p2c2r_gateway_auth_cache_keys gauge\np2c2r_gateway_auth_cache_keys %zu\n",
             gw_core_auth_keys (self->core));
    fprintf (f, "# HELP p2c2r_gateway_internal_dropped_total Internal messages dropped.\n"
                "# TYPE p2c2r_gateway_internal_dropped_total counter\n"
                "p2c2r_gateway_internal_dropped_total{what=\"deliver\"} %llu\n"
                "p2c2r_gateway_internal_dropped_total{what=\"other\"} %llu\n"
                "p2c2r_gateway_internal_dropped_total{what=\"auth_stale\"} %llu\n",
             (unsigned long long) c->deliver_dropped, (unsigned long long) c->internal_dropped,
             (unsigned long long) c->auth_stale);
    gw_metrics_render (gw_core_metrics (self->core), f);
    fclose (f);
    s_answer (self, a, 200, "text/plain; version=0.0.4", text, size);
    free (text);
}

static void
s_readyz (gw_http_t *self, gw_http_answer_t *a)
{
    char text [200];
    bool broker = self->io.broker_alive (self->io.arg);
    size_t sched = self->io.services (self->io.arg, "scheduler");
    size_t ledger = self->io.services (self->io.arg, "ledger");
    bool quitting = gw_core_quitting (self->core);
    bool ok = broker && sched > 0 && ledger > 0 && !quitting;
    int n = snprintf (text, sizeof text, "%s broker=%s schedulers=%zu ledgers=%zu draining=%s\n",
                      ok ? "ready" : "not ready", broker ? "up" : "down", sched, ledger,
                      quitting ? "yes" : "no");
    s_answer (self, a, ok ? 200 : 503, "text/plain", text, (size_t) n);
}

//  The "alerts" of /api/stats: the scheduler's rules (scheduler/sch_alerts.c)
//  as it sent them, and, when a server did not answer in time, the
//  gateway's own server_down for it (no since: we do not keep state)
static json_t *
s_alerts (gw_stats_job_t *job)
{
    json_t *alerts = json_array ();
    json_t *theirs = job->sched ? json_object_get (job->sched, "alerts") : NULL;
    if (json_is_array (theirs))
        json_array_extend (alerts, theirs);
    const char *gone [2] = { job->sched ? NULL : "scheduler", job->ledger ? NULL : "ledger" };
    for (int i = 0; i < 2; i++)
        if (gone [i])
            json_array_append_new (alerts, json_pack (
                "{s:s, s:s, s:n, s:i, s:i, s:s, s:s, s:s}", "name", "server_down", "state",
                "firing", "since", "value", 1, "threshold", 0, "summary",
                "a server process did not answer the gateway's stats request", "detail",
                gone [i], "source", "gateway"));
    return alerts;
}

//  Hands the /api/stats answer with the figures that came to the glue and
//  frees the job, which the caller took off the list first: the answer
//  goes out through the glue, which may call back into this class (a
//  walk of the list must not hold a cursor across that call)
static void
s_stats_finish (gw_http_t *self, gw_stats_job_t **job_p)
{
    gw_stats_job_t *job = *job_p;
    size_t none, peers, gamers;
    gw_core_role_counts (self->core, &none, &peers, &gamers);
    json_t *gw = gw_metrics_json (gw_core_metrics (self->core));
    json_object_set_new (gw, "node", json_string (gw_core_node_id (self->core)));
    json_object_set_new (gw, "connections", json_pack ("{s:I, s:I, s:I}", "none", (json_int_t) none,
                         "peer", (json_int_t) peers, "gamer", (json_int_t) gamers));
    json_object_set_new (gw, "pending_tasks",
                         json_integer ((json_int_t) gw_core_pending (self->core)));
    json_object_set_new (gw, "draining", json_boolean (gw_core_quitting (self->core)));
    json_t *missing = json_array ();
    if (!job->sched)
        json_array_append_new (missing, json_string ("scheduler"));
    if (!job->ledger)
        json_array_append_new (missing, json_string ("ledger"));
    json_t *root = json_pack ("{s:o, s:O, s:O, s:o, s:o}", "gateway", gw,
                              "scheduler", job->sched ? job->sched : json_null (),
                              "ledger", job->ledger ? job->ledger : json_null (),
                              "missing", missing, "alerts", s_alerts (job));
    char *text = root ? json_dumps (root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref (root);
    gw_http_answer_t a = { 0, NULL, NULL, 0 };
    if (text)
        s_answer (self, &a, 200, "application/json", text, strlen (text));
    else
        s_answer (self, &a, 500, "text/plain", "error\n", 6);
    free (text);
    void *conn = job->conn;
    s_stats_job_free (job_p);
    self->io.done (self->io.arg, conn, &a);
    gw_http_answer_free (&a);
}

static void
s_stats (gw_http_t *self, void *conn, int64_t now_ms)
{
    gw_stats_job_t *job = (gw_stats_job_t *) zmalloc (sizeof (gw_stats_job_t));
    job->corr = ++self->stats_seq;
    job->conn = conn;
    job->deadline_ms = now_ms + self->cfg.stats_timeout_ms;
    zlistx_add_end (self->stats_jobs, job);
    P2c2r__StatsRequest req = P2C2R__STATS_REQUEST__INIT;
    req.corr = job->corr;
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_STATS_REQUEST;
    m.stats_request = &req;
    //  A service that cannot be reached simply does not answer; the cron
    //  writes the answer without it at the deadline
    self->io.send (self->io.arg, "scheduler", &m);
    self->io.send (self->io.arg, "ledger", &m);
}

void
gw_http_stats_reply (gw_http_t *self, P2c2r__StatsReply *r)
{
    if (!r->service || !r->stats_json) {
        gw_core_counters (self->core)->internal_dropped++;
        return;
    }
    for (gw_stats_job_t *job = (gw_stats_job_t *) zlistx_first (self->stats_jobs); job;
         job = (gw_stats_job_t *) zlistx_next (self->stats_jobs)) {
        if (job->corr != r->corr)
            continue;
        json_t *v = json_loads (r->stats_json, 0, NULL);
        if (!json_is_object (v)) {
            json_decref (v);
            v = json_pack ("{s:s}", "error", "stats_json is not a JSON object");
        }
        json_t **slot = !strcmp (r->service, "scheduler") ? &job->sched
                      : !strcmp (r->service, "ledger") ? &job->ledger : NULL;
        if (slot && !*slot)
            *slot = v;
        else
            json_decref (v);
        if (job->sched && job->ledger) {
            zlistx_detach_cur (self->stats_jobs);
            s_stats_finish (self, &job);
        }
        return;
    }
    gw_core_counters (self->core)->internal_dropped++;
}

//  Answers the requests whose wait is over. The due jobs are taken off the
//  list before any answer goes out: finishing one used to delete it from
//  the list this loop was walking (zlistx_find moved the cursor), so with
//  two requests due at once the second was freed and then read again.
void
gw_http_cron (gw_http_t *self, int64_t now_ms)
{
    zlistx_t *due = zlistx_new ();
    gw_stats_job_t *job = (gw_stats_job_t *) zlistx_first (self->stats_jobs);
    while (job) {
        if (job->deadline_ms <= now_ms) {
            zlistx_detach_cur (self->stats_jobs);
            zlistx_add_end (due, job);
        }
        job = (gw_stats_job_t *) zlistx_next (self->stats_jobs);
    }
    while ((job = (gw_stats_job_t *) zlistx_detach (due, NULL)))
        s_stats_finish (self, &job);
    zlistx_destroy (&due);
}

void
gw_http_forget (gw_http_t *self, void *conn)
{
    gw_stats_job_t *job = (gw_stats_job_t *) zlistx_first (self->stats_jobs);
    while (job) {
        if (job->conn == conn) {
            zlistx_detach_cur (self->stats_jobs);
            s_stats_job_free (&job);
        }
        job = (gw_stats_job_t *) zlistx_next (self->stats_jobs);
    }
}

//  A static file of files at path, or its 404/403/500 answer
static void
s_file (gw_http_t *self, gw_files_t *files, const char *path, gw_http_answer_t *answer)
{
    answer->status = gw_files_get (files, path, self->cfg.pre, &answer->buf, &answer->len,
                                   &answer->type);
    if (answer->status == 404)
        s_answer (self, answer, 404, "text/plain", "not found\n", 10);
    else
    if (answer->status != 200) {
        unsigned status = answer->status;
        s_answer (self, answer, status, "text/plain", status == 403 ? "forbidden\n" : "error\n",
                  status == 403 ? 10 : 6);
    }
}

#define S_VENDOR "/vendor/chart.js/"

bool
gw_http_get (gw_http_t *self, void *conn, const char *path, const gw_http_req_t *req,
             int64_t now_ms, gw_http_answer_t *answer)
{
    memset (answer, 0, sizeof *answer);
    if (!path) {
        s_answer (self, answer, 405, "text/plain", "GET only\n", 9);
        return true;
    }
    gw_metrics_inc (gw_core_metrics (self->core), GW_M_EVENTS,
                    req->admin ? "admin_http_request" : "http_request");
    bool data = !strcmp (path, "/metrics") || !strcmp (path, "/api/stats");
    //  The operator's figures and page exist only on the admin listener
    if (!req->admin && (data || !strncmp (path, "/operator", 9)))
        s_answer (self, answer, 404, "text/plain", "not found\n", 10);
    else
    if (data && !gw_admin_allows (self->cfg.admin, req->authorization)) {
        gw_metrics_inc (gw_core_metrics (self->core), GW_M_EVENTS, "admin_unauthorized");
        static const char text [] = "unauthorized: send Authorization: Bearer <operator token>\n";
        s_answer (self, answer, 401, "text/plain", text, sizeof text - 1);
    }
    else
    if (!strcmp (path, "/healthz"))
        s_answer (self, answer, 200, "text/plain", "ok\n", 3);
    else
    if (!strcmp (path, "/readyz"))
        s_readyz (self, answer);
    else
    if (!strcmp (path, "/metrics"))
        s_metrics (self, answer);
    else
    if (!strcmp (path, "/api/stats")) {
        s_stats (self, conn, now_ms);
        return false;
    }
    else
    if (!strncmp (path, S_VENDOR, strlen (S_VENDOR)))
        s_file (self, self->vendor, path + strlen (S_VENDOR) - 1, answer);
    else
        s_file (self, self->files, req->admin && !strcmp (path, "/") ? "/operator.html" : path,
                answer);
    return true;
}

// ---------------------------------------------------------------------------
//  Self-test: the answers, with a core in memory and a fake glue

typedef struct {
    bool broker;                //  the broker beats
    size_t schedulers, ledgers;
    size_t to_scheduler, to_ledger;     //  StatsRequests sent
    uint64_t corr;              //  of the last one
    void *done_conn;            //  the last late answer
    size_t done_count;          //  late answers so far
    gw_http_answer_t done;
} s_fake_io_t;

static int
s_fake_send (void *arg, const char *dest, const P2c2r__Internal *msg)
{
    s_fake_io_t *io = (s_fake_io_t *) arg;
    assert (msg->msg_case == P2C2R__INTERNAL__MSG_STATS_REQUEST);
    io->corr = msg->stats_request->corr;
    if (!strcmp (dest, "scheduler"))
        io->to_scheduler++;
    else
        io->to_ledger++;
    return 0;
}

static size_t
s_fake_services (void *arg, const char *service)
{
    s_fake_io_t *io = (s_fake_io_t *) arg;
    return !strcmp (service, "scheduler") ? io->schedulers
         : !strcmp (service, "ledger") ? io->ledgers : 0;
}

static bool
s_fake_alive (void *arg)
{
    return ((s_fake_io_t *) arg)->broker;
}

static void
s_fake_done (void *arg, void *conn, gw_http_answer_t *answer)
{
    s_fake_io_t *io = (s_fake_io_t *) arg;
    gw_http_answer_free (&io->done);
    io->done = *answer;
    memset (answer, 0, sizeof *answer);
    io->done_conn = conn;
    io->done_count++;
}

//  The answer's body as a string (in a static buffer, cut at 4 KB)
static const char *
s_body (gw_http_answer_t *a, size_t pre)
{
    static char text [4096];
    size_t n = a->len < sizeof text - 1 ? a->len : sizeof text - 1;
    if (a->buf)
        memcpy (text, a->buf + pre, n);
    text [a->buf ? n : 0] = 0;
    return text;
}

static void
s_stats_reply (gw_http_t *http, const char *service, uint64_t corr, const char *json)
{
    P2c2r__StatsReply r = P2C2R__STATS_REPLY__INIT;
    r.service = (char *) service;
    r.corr = corr;
    r.stats_json = (char *) json;
    gw_http_stats_reply (http, &r);
}

//  A request to the public listener, and one with the operator's token to
//  the admin listener
static const gw_http_req_t pub = { false, NULL };
static const gw_http_req_t adm = { true, "Bearer operator-token-0123456789" };

//  What each listener serves, and the operator's token
static void
s_test_listeners (gw_http_t *http)
{
    int conn;
    gw_http_answer_t a;
    //  Public: no figures, no operator page; Chart.js from its own root
    const char *hidden [] = { "/metrics", "/api/stats", "/operator.html", "/operator/x.js" };
    for (size_t i = 0; i < 4; i++) {
        P2C_CHECK (gw_http_get (http, &conn, hidden [i], &pub, 1000, &a));
        P2C_CHECK (a.status == 404);
        gw_http_answer_free (&a);
    }
    P2C_CHECK (gw_http_get (http, &conn, "/vendor/chart.js/chart.min.js", &pub, 1000, &a));
    P2C_CHECK (a.status == 200 && !strcmp (s_body (&a, 16), "var Chart;\n")
               && !strcmp (a.type, "text/javascript; charset=utf-8"));
    gw_http_answer_free (&a);
    P2C_CHECK (gw_http_get (http, &conn, "/vendor/chart.js/../index.html", &pub, 1000, &a));
    P2C_CHECK (a.status == 404);
    gw_http_answer_free (&a);
    //  Admin: / is the operator's page; the figures need the token
    P2C_CHECK (gw_http_get (http, &conn, "/", &adm, 1000, &a));
    P2C_CHECK (a.status == 200 && !strcmp (s_body (&a, 16), "<h1>operator</h1>\n"));
    gw_http_answer_free (&a);
    const char *wrong [] = { NULL, "", "Bearer ", "Bearer operator-token-012345678",
                             "Basic operator-token-0123456789", "operator-token-0123456789" };
    for (size_t i = 0; i < sizeof wrong / sizeof wrong [0]; i++) {
        gw_http_req_t bad = { true, wrong [i] };
        P2C_CHECK (gw_http_get (http, &conn, "/metrics", &bad, 1000, &a));
        P2C_CHECK (a.status == 401 && strstr (s_body (&a, 16), "Bearer"));
        gw_http_answer_free (&a);
        P2C_CHECK (gw_http_get (http, &conn, "/api/stats", &bad, 1000, &a));
        P2C_CHECK (a.status == 401);
        gw_http_answer_free (&a);
    }
    P2C_CHECK (gw_http_get (http, &conn, "/healthz", &adm, 1000, &a));
    P2C_CHECK (a.status == 200);
    gw_http_answer_free (&a);
}

//  The pages answered at once
static void
s_test_pages (gw_http_t *http, gw_fake_t *fake, s_fake_io_t *fio)
{
    int conn;                           //  stands for a connection
    gw_http_answer_t a;
    P2C_CHECK (gw_http_get (http, &conn, "/healthz", &pub, 1000, &a));
    P2C_CHECK (a.status == 200 && !strcmp (s_body (&a, 16), "ok\n"));
    gw_http_answer_free (&a);
    P2C_CHECK (gw_http_get (http, &conn, NULL, &pub, 1000, &a));
    P2C_CHECK (a.status == 405);
    gw_http_answer_free (&a);
    //  Ready only with the broker, a scheduler and a ledger, not draining
    P2C_CHECK (gw_http_get (http, &conn, "/readyz", &pub, 1000, &a));
    P2C_CHECK (a.status == 503 && strstr (s_body (&a, 16), "broker=down schedulers=0 ledgers=0"));
    gw_http_answer_free (&a);
    fio->broker = true;
    fio->schedulers = fio->ledgers = 1;
    P2C_CHECK (gw_http_get (http, &conn, "/readyz", &pub, 1000, &a));
    P2C_CHECK (a.status == 200 && !strncmp (s_body (&a, 16), "ready ", 6));
    gw_http_answer_free (&a);
    P2C_CHECK (gw_http_get (http, &conn, "/metrics", &adm, 1000, &a));
    P2C_CHECK (a.status == 200
               && strstr (s_body (&a, 16), "p2c2r_gateway_connections{role=\"peer\"} 1\n"));
    P2C_CHECK (strstr (s_body (&a, 16), "p2c2r_gateway_ready 1\n"));
    gw_http_answer_free (&a);
    //  Files: the index for "/", 404 for what is not there or outside
    P2C_CHECK (gw_http_get (http, &conn, "/", &pub, 1000, &a));
    P2C_CHECK (a.status == 200 && !strcmp (a.type, "text/html; charset=utf-8")
               && !strcmp (s_body (&a, 16), "<h1>P2C2R</h1>\n"));
    gw_http_answer_free (&a);
    P2C_CHECK (gw_http_get (http, &conn, "/nothing.js", &pub, 1000, &a));
    P2C_CHECK (a.status == 404 && !strcmp (s_body (&a, 16), "not found\n"));
    gw_http_answer_free (&a);
    P2C_CHECK (gw_http_get (http, &conn, "/../etc/passwd", &pub, 1000, &a));
    P2C_CHECK (a.status == 404);
    gw_http_answer_free (&a);
    s_test_listeners (http);
    gw_core_quit (fake->core, 5000);
    P2C_CHECK (gw_http_get (http, &conn, "/readyz", &pub, 1000, &a));
    P2C_CHECK (a.status == 503 && strstr (s_body (&a, 16), "draining=yes"));
    gw_http_answer_free (&a);
}

//  /api/stats, answered later
static void
s_test_stats (gw_http_t *http, gw_fake_t *fake, s_fake_io_t *fio)
{
    int conn_a, conn_b;                 //  stand for two connections
    gw_http_answer_t a;
    //  It waits for both services' figures
    P2C_CHECK (!gw_http_get (http, &conn_a, "/api/stats", &adm, 1000, &a));
    P2C_CHECK (fio->to_scheduler == 1 && fio->to_ledger == 1 && !fio->done_conn);
    s_stats_reply (http, "scheduler", fio->corr, "{\"peers\":1,\"alerts\":[{\"name\":"
                   "\"peers_low\",\"state\":\"firing\"}]}");
    P2C_CHECK (!fio->done_conn);
    s_stats_reply (http, "ledger", fio->corr, "not json");
    P2C_CHECK (fio->done_conn == &conn_a && fio->done.status == 200
               && !strcmp (fio->done.type, "application/json"));
    json_t *root = json_loads (s_body (&fio->done, 16), 0, NULL);
    P2C_CHECK (root && json_integer_value (json_object_get (json_object_get (root, "scheduler"),
                                                             "peers")) == 1);
    P2C_CHECK (root && json_is_string (json_object_get (json_object_get (root, "ledger"), "error")));
    P2C_CHECK (root && json_array_size (json_object_get (root, "missing")) == 0);
    //  the scheduler's alerts, at the top
    json_t *alerts = root ? json_object_get (root, "alerts") : NULL;
    P2C_CHECK (json_array_size (alerts) == 1 && !strcmp (json_string_value (json_object_get (
                   json_array_get (alerts, 0), "name")), "peers_low"));
    P2C_CHECK (root && !strcmp (json_string_value (json_object_get (
                   json_object_get (root, "gateway"), "node")), "gateway-test"));
    json_decref (root);
    //  A reply nobody waits for is counted as dropped
    uint64_t dropped = gw_core_counters (fake->core)->internal_dropped;
    s_stats_reply (http, "ledger", fio->corr, "{}");
    P2C_CHECK (gw_core_counters (fake->core)->internal_dropped == dropped + 1);
    //  Without an answer: at the deadline, with what came
    fio->done_conn = NULL;
    P2C_CHECK (!gw_http_get (http, &conn_b, "/api/stats", &adm, 2000, &a));
    s_stats_reply (http, "scheduler", fio->corr, "{}");
    gw_http_cron (http, 2499);
    P2C_CHECK (!fio->done_conn);
    gw_http_cron (http, 2500);
    P2C_CHECK (fio->done_conn == &conn_b);
    root = json_loads (s_body (&fio->done, 16), 0, NULL);
    P2C_CHECK (root && json_is_null (json_object_get (root, "ledger"))
               && json_array_size (json_object_get (root, "missing")) == 1);
    //  the ledger that did not answer is the gateway's own server_down
    alerts = root ? json_object_get (root, "alerts") : NULL;
    P2C_CHECK (json_array_size (alerts) == 1 && !strcmp (json_string_value (json_object_get (
                   json_array_get (alerts, 0), "detail")), "ledger"));
    json_decref (root);
    //  A connection that closed while waiting gets nothing
    fio->done_conn = NULL;
    P2C_CHECK (!gw_http_get (http, &conn_a, "/api/stats", &adm, 3000, &a));
    gw_http_forget (http, &conn_a);
    gw_http_cron (http, 9000);
    P2C_CHECK (!fio->done_conn);
    //  Three requests due at the same tick each get one answer (finishing
    //  one while walking the list freed the next: issue 15)
    int conn_c;
    size_t count = fio->done_count;
    P2C_CHECK (!gw_http_get (http, &conn_a, "/api/stats", &adm, 10000, &a));
    P2C_CHECK (!gw_http_get (http, &conn_b, "/api/stats", &adm, 10000, &a));
    P2C_CHECK (!gw_http_get (http, &conn_c, "/api/stats", &adm, 10000, &a));
    gw_http_cron (http, 10500);
    P2C_CHECK (fio->done_count == count + 3 && fio->done_conn == &conn_c);
    gw_http_cron (http, 20000);
    P2C_CHECK (fio->done_count == count + 3);
    //  Forgetting one of several leaves the others waiting
    P2C_CHECK (!gw_http_get (http, &conn_a, "/api/stats", &adm, 30000, &a));
    P2C_CHECK (!gw_http_get (http, &conn_b, "/api/stats", &adm, 30000, &a));
    P2C_CHECK (!gw_http_get (http, &conn_a, "/api/stats", &adm, 30000, &a));
    gw_http_forget (http, &conn_a);
    gw_http_cron (http, 30500);
    P2C_CHECK (fio->done_count == count + 4 && fio->done_conn == &conn_b);
}

void
gw_http_test (bool verbose)
{
    (void) verbose;
    char top [] = "/tmp/gw_http_test.XXXXXX";
    P2C_CHECK (mkdtemp (top) != NULL);
    char *index = p2c_sprintf ("%s/index.html", top);
    FILE *f = fopen (index, "w");
    assert (f);
    fputs ("<h1>P2C2R</h1>\n", f);
    fclose (f);
    char *operator_page = p2c_sprintf ("%s/operator.html", top);
    f = fopen (operator_page, "w");
    assert (f);
    fputs ("<h1>operator</h1>\n", f);
    fclose (f);
    char vendor [] = "/tmp/gw_http_vendor.XXXXXX";
    P2C_CHECK (mkdtemp (vendor) != NULL);
    char *chart = p2c_sprintf ("%s/chart.min.js", vendor);
    f = fopen (chart, "w");
    assert (f);
    fputs ("var Chart;\n", f);
    fclose (f);
    char *token = p2c_sprintf ("%s/token", vendor);
    f = fopen (token, "w");
    assert (f);
    fputs ("operator-token-0123456789\n", f);
    fclose (f);
    chmod (token, 0600);
    const char *error = NULL;
    gw_admin_t *admin = gw_admin_new (token, &error);
    P2C_CHECK (admin && !error);

    gw_fake_t *fake = gw_fake_new (NULL);
    gw_fake_register (fake, GW_ROLE_PEER, "p1", 1, 1000);
    s_fake_io_t fio;
    memset (&fio, 0, sizeof fio);
    gw_http_io_t io = { s_fake_send, s_fake_services, s_fake_alive, s_fake_done, &fio };
    gw_http_config_t config = { top, vendor, admin, 500, 16 };
    gw_http_t *http = gw_http_new (fake->core, &config, &io);
    P2C_CHECK (gw_http_web_root (http) != NULL);
    s_test_pages (http, fake, &fio);
    s_test_stats (http, fake, &fio);
    gw_http_answer_free (&fio.done);
    gw_http_destroy (&http);
    gw_http_destroy (&http);
    gw_fake_destroy (&fake);
    gw_admin_destroy (&admin);
    unlink (index);
    unlink (operator_page);
    rmdir (top);
    unlink (chart);
    unlink (token);
    rmdir (vendor);
    zstr_free (&index);
    zstr_free (&operator_page);
    zstr_free (&chart);
    zstr_free (&token);
}
