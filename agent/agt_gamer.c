/*  The player's client, a program on libp2c2r (lib/p2c2r.h) in its loop
    mode: the run waits on p2c2r_fd and steps the client. Its tasks'
    client_refs are RUN-<index>, RUN random unless --run-id names it (in
    the menu RUN.K-<index> for the K-th choice): after
    a lost connection the library reconnects (to whichever gateway answers
    the address) and sends the unanswered tasks again by client_ref, and
    the server answers each from its first submit's outcome (docs/
    protocol.md), so the run collects every result it is owed, charged
    once. With --resubmit=false a lost connection ends the run (exit 3).
    On a terminal without --task it shows the original demo's menu and
    runs one task per choice, each on a connection of its own. */
#define P2C_LOG_COMPONENT "gamer"
#include "agt_gamer.h"
#include "agt_config.h"
#include "agt_conn.h"
#include "p2c2r.h"
#include "agt_params.h"
#include "agt_peer.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_tasks.h"
#include "p2c_test.h"
#include "p2c_time.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAX_PAYLOAD (48 * 1024 * 1024)

typedef enum { S_NEW = 0, S_OUTSTANDING, S_ANSWERED } s_task_state_t;

typedef struct {
    //  Settings
    char *gamer_id;
    char *api_key;
    char *task;
    char *params;
    uint8_t *payload;
    size_t payload_len;
    uint64_t count;
    uint64_t concurrency;
    uint32_t deadline_ms;
    bool json;
    bool quiet;
    bool full;                  //  -v: results not shortened
    int64_t timeout_us;
    char *out_dir;              //  --out: where binary results are saved, or NULL
    bool progress;              //  draw a progress bar on stderr (a terminal)
    bool menu;                  //  interactive: one task per menu choice
    uint64_t file_base;         //  added to the index in saved file names
    char *url;
    char *ca_file;              //  --ca, or NULL
    bool insecure;              //  --insecure
    char run_id [72];           //  the run's id (--run-id, else random)
    char prefix [96];           //  the client_refs' prefix: run_id, and in the
                                //  menu run_id.K for its K-th choice (a ref
                                //  repeated within the window is answered with
                                //  the first submit's outcome)
    bool resubmit;              //  --resubmit
    //  Run state
    p2c2r_client_t *client;
    bool registered;
    bool finished;              //  every task answered, or given up
    uint64_t next;              //  next index to submit
    uint64_t outstanding;
    uint64_t answered;
    uint8_t *state;             //  per index: s_task_state_t
    int64_t *submit_us;         //  per index: when it was sent
    double *latency_ms;         //  per answered task, in answer order
    uint64_t ok, errors, cached, replayed;
    int64_t cost_pico;
    int64_t start_us, end_us;
    int64_t bar_us;             //  when the progress bar was last drawn
    uint64_t saved;             //  files written to out_dir
    int exit_code;
} s_gamer_t;

static volatile sig_atomic_t s_stop = 0;

//  A run's id: 64 random bits from the kernel in hex (the server keeps an
//  account's client_refs for a window: another run must not repeat them)
static void
s_random_run_id (char *buf, size_t size)
{
    uint64_t v = 0;
    if (getrandom (&v, sizeof v, GRND_NONBLOCK) != (ssize_t) sizeof v)
        v = (uint64_t) p2c_now_us () ^ ((uint64_t) getpid () << 32);
    snprintf (buf, size, "%016" PRIx64, v);
}

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

char *
agt_gamer_subst (const char *params, uint64_t index)
{
    char num [24];
    int nlen = snprintf (num, sizeof num, "%" PRIu64, index);
    size_t hits = 0;
    for (const char *p = strstr (params, "{i}"); p; p = strstr (p + 3, "{i}"))
        hits++;
    size_t len = strlen (params) + hits * (size_t) nlen + 1;
    char *out = p2c_malloc (len);
    char *o = out;
    const char *p = params;
    for (const char *hit = strstr (p, "{i}"); hit; hit = strstr (p, "{i}")) {
        memcpy (o, p, (size_t) (hit - p));
        o += hit - p;
        memcpy (o, num, (size_t) nlen);
        o += nlen;
        p = hit + 3;
    }
    strcpy (o, p);
    return out;
}

double
agt_gamer_percentile (const double *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    if (p <= 0)
        return sorted [0];
    //  Nearest rank: the smallest value with at least p% of values at or below it
    double rank = ceil (p / 100.0 * (double) n);
    size_t r = rank < 1 ? 1 : rank > (double) n ? n : (size_t) rank;
    return sorted [r - 1];
}

void
agt_gamer_usd (int64_t pico, char *buf, size_t size)
{
    uint64_t mag = pico < 0 ? (uint64_t) 0 - (uint64_t) pico : (uint64_t) pico;
    snprintf (buf, size, "%s$%" PRIu64 ".%012" PRIu64, pico < 0 ? "-" : "",
              mag / UINT64_C (1000000000000), mag % UINT64_C (1000000000000));
}

static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static void s_on_done (p2c2r_client_t *client, const p2c2r_result_t *result, void *arg);

static void
s_submit_more (s_gamer_t *self)
{
    while (self->registered && self->next < self->count && self->outstanding < self->concurrency) {
        uint64_t i = self->next;
        char *params = agt_gamer_subst (self->params, i);
        char ref [128];
        snprintf (ref, sizeof ref, "%s-%" PRIu64, self->prefix, i);
        p2c2r_task_t task = { self->task, params, self->payload, self->payload_len, ref,
                              self->deadline_ms };
        p2c2r_code_t code = P2C2R_OK;
        uint64_t id = p2c2r_submit (self->client, &task, s_on_done, self, &code);
        free (params);
        if (!id) {
            log_warn ("submit refused code=%s", p2c2r_code_name (code));
            return;
        }
        self->state [i] = S_OUTSTANDING;
        self->submit_us [i] = p2c_now_us ();
        self->outstanding++;
        self->next++;
    }
}

//  The index of a task from its client_ref (the library matched the reply
//  to a task in flight; this checks that it is one of ours, once), or -1
static int64_t
s_index_of (s_gamer_t *self, const char *ref)
{
    size_t plen = strlen (self->prefix);
    if (!ref || strncmp (ref, self->prefix, plen) || ref [plen] != '-')
        return -1;
    ref += plen + 1;
    char *end = NULL;
    errno = 0;
    unsigned long long v = ref && *ref >= '0' && *ref <= '9' ? strtoull (ref, &end, 10) : 0;
    if (!ref || !*ref || *ref < '0' || *ref > '9' || errno || *end || v >= self->count
        || self->state [v] != S_OUTSTANDING)
        return -1;
    return (int64_t) v;
}

//  The progress bar of a --count run on a terminal: redrawn at most every
//  100 ms (a fast run must not spend its time drawing), and at the end
static void
s_bar (s_gamer_t *self, bool last)
{
    if (!self->progress)
        return;
    int64_t now = p2c_now_us ();
    if (!last && now - self->bar_us < 100000)
        return;
    self->bar_us = now;
    char bar [31];
    size_t fill = self->count ? (size_t) (self->answered * 30 / self->count) : 0;
    for (size_t i = 0; i < 30; i++)
        bar [i] = i < fill ? '#' : '.';
    bar [30] = 0;
    fprintf (stderr, "\r[%s] %" PRIu64 "/%" PRIu64 " ok=%" PRIu64 " errors=%" PRIu64 " %.1fs\033[K%s",
             bar, self->answered, self->count, self->ok, self->errors,
             (double) (now - self->start_us) / 1e6, last ? "\n" : "");
    fflush (stderr);
}

//  Clears the bar's line before a reply line goes to the same terminal
static void
s_bar_clear (s_gamer_t *self)
{
    if (self->progress && self->answered > 1) {
        fprintf (stderr, "\r\033[K");
        fflush (stderr);
    }
}

//  Saves a result's binary output as OUT/<index>-<type>.png (.bin when it
//  is not a PNG). Returns the path (caller frees) or NULL (said why).
static char *
s_save_blob (s_gamer_t *self, int64_t index, const uint8_t *blob, size_t len)
{
    static const uint8_t png_sig [8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    const char *canonical = p2c_task_canonical (self->task);
    char type [64];
    snprintf (type, sizeof type, "%s", canonical ? canonical : self->task);
    for (char *c = type; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            *c = '_';
    bool png = len >= 8 && !memcmp (blob, png_sig, 8);
    size_t size = strlen (self->out_dir) + strlen (type) + 48;
    char *path = malloc (size);
    if (!path)
        return NULL;
    snprintf (path, size, "%s/%" PRIu64 "-%s.%s", self->out_dir, self->file_base + (uint64_t) index,
              type, png ? "png" : "bin");
    FILE *f = fopen (path, "wb");
    bool ok = f && fwrite (blob, 1, len, f) == len;
    if (f && fclose (f) != 0)
        ok = false;
    if (!ok) {
        fprintf (stderr, "p2c2r-agent gamer: cannot save %s: %s\n", path, strerror (errno));
        free (path);
        return NULL;
    }
    self->saved++;
    return path;
}

static void
s_finish (s_gamer_t *self)
{
    if (self->finished)
        return;
    self->finished = true;
    self->end_us = p2c_now_us ();
    s_bar (self, true);
}

//  One reply in the menu: what the player wants to see
static void
s_print_menu_reply (s_gamer_t *self, bool ok, const char *code, const char *error,
                    const char *result_json, size_t blob_len, const char *saved, double latency,
                    int64_t cost_pico, bool cached)
{
    char usd [48];
    agt_gamer_usd (cost_pico, usd, sizeof usd);
    if (!ok) {
        printf ("  %s: error (%s) %s, after %.1f ms\n", self->task, code ? code : "",
                error ? error : "", latency);
        return;
    }
    printf ("  %s: ok in %.1f ms, cost %s%s\n", self->task, latency, usd,
            cached ? " (cached)" : "");
    const char *text = result_json ? result_json : "";
    int limit = self->full || strlen (text) <= 400 ? (int) strlen (text) : 397;
    printf ("    result: %.*s%s\n", limit, text, (size_t) limit < strlen (text) ? "..." : "");
    if (blob_len) {
        json_t *r = json_loads (text, 0, NULL);
        json_int_t w = json_integer_value (json_object_get (r, "width"));
        json_int_t h = json_integer_value (json_object_get (r, "height"));
        json_decref (r);
        printf ("    image: %lldx%lld PNG, %zu bytes%s%s\n", (long long) w, (long long) h, blob_len,
                saved ? ", saved to " : " (use --out DIR to save it)", saved ? saved : "");
    }
}

//  One terminal reply (the library's result of task index): record, print,
//  and keep the pipeline full
static void
s_answer (s_gamer_t *self, int64_t index, const p2c2r_result_t *r)
{
    bool ok = p2c2r_result_code (r) == P2C2R_OK;
    const char *task_id = p2c2r_result_task_id (r);
    const char *code = p2c2r_result_code_name (r);
    const char *error = p2c2r_result_error (r);
    const char *result_json = ok ? p2c2r_result_json (r) : NULL;
    size_t blob_len = 0;
    const uint8_t *blob = p2c2r_result_blob (r, &blob_len);
    int64_t cost_pico = p2c2r_result_cost_pico (r);
    uint64_t billed_us = p2c2r_result_billed_us (r);
    bool cached = p2c2r_result_cached (r);
    bool replayed = p2c2r_result_replayed (r);
    double latency = (double) (p2c_now_us () - self->submit_us [index]) / 1000.0;
    self->state [index] = S_ANSWERED;
    self->outstanding--;
    self->latency_ms [self->answered++] = latency;
    if (ok)
        self->ok++;
    else
        self->errors++;
    if (cached)
        self->cached++;
    if (replayed)
        self->replayed++;
    self->cost_pico += cost_pico;
    char *saved = ok && blob_len && self->out_dir ? s_save_blob (self, index, blob, blob_len) : NULL;

    if (self->menu)
        s_print_menu_reply (self, ok, code, error, result_json, blob_len, saved, latency,
                            cost_pico, cached);
    else
    if (self->json) {
        json_t *o = json_object ();
        json_object_set_new (o, "index", json_integer (index));
        json_object_set_new (o, "task_id", json_string (task_id ? task_id : ""));
        char ref [128];
        snprintf (ref, sizeof ref, "%s-%" PRId64, self->prefix, index);
        json_object_set_new (o, "client_ref", json_string (ref));
        json_object_set_new (o, "ok", json_boolean (ok));
        json_object_set_new (o, "code", ok ? json_null () : json_string (code ? code : ""));
        json_object_set_new (o, "error", ok ? json_null () : json_string (error ? error : ""));
        json_t *result = ok && result_json ? json_loads (result_json, 0, NULL) : NULL;
        json_object_set_new (o, "result", result ? result : json_null ());
        json_object_set_new (o, "latency_ms", json_real (round (latency * 1000) / 1000));
        json_object_set_new (o, "cost_pico", json_integer (cost_pico));
        json_object_set_new (o, "billed_us", json_integer ((json_int_t) billed_us));
        json_object_set_new (o, "cached", json_boolean (cached));
        json_object_set_new (o, "replayed", json_boolean (replayed));
        //  Digests of the bytes as received, to compare runs and peers
        char hex [65];
        if (ok && result_json) {
            agt_sha256_hex (result_json, strlen (result_json), hex);
            json_object_set_new (o, "result_sha256", json_string (hex));
        }
        json_object_set_new (o, "blob_bytes", json_integer ((json_int_t) blob_len));
        if (blob_len) {
            agt_sha256_hex (blob, blob_len, hex);
            json_object_set_new (o, "blob_sha256", json_string (hex));
        }
        json_object_set_new (o, "saved", saved ? json_string (saved) : json_null ());
        char *line = json_dumps (o, JSON_COMPACT | JSON_REAL_PRECISION (15));
        if (line) {
            printf ("%s\n", line);
            free (line);
        }
        json_decref (o);
        fflush (stdout);
    }
    else
    if (!self->quiet) {
        s_bar_clear (self);
        char usd [48];
        agt_gamer_usd (cost_pico, usd, sizeof usd);
        const char *text = ok ? (result_json ? result_json : "") : (error ? error : "");
        int limit = self->full || strlen (text) <= 100 ? (int) strlen (text) : 97;
        printf ("%" PRId64 " %s%s%s%s %.1fms %s cached=%d %.*s%s", index, ok ? "ok" : "error",
                ok ? "" : " (", ok ? "" : (code ? code : ""), ok ? "" : ")", latency, usd,
                cached ? 1 : 0, limit, text, (size_t) limit < strlen (text) ? "..." : "");
        if (blob_len)
            printf (" blob_bytes=%zu", blob_len);
        if (saved)
            printf (" saved=%s", saved);
        printf ("\n");
        fflush (stdout);
    }
    free (saved);
    s_bar (self, false);
    if (self->answered == self->count)
        s_finish (self);
    else
        s_submit_more (self);
}

//  A task's one completion (library callback, inside p2c2r_step)
static void
s_on_done (p2c2r_client_t *client, const p2c2r_result_t *r, void *arg)
{
    (void) client;
    s_gamer_t *self = (s_gamer_t *) arg;
    if (self->finished)
        return;
    int64_t index = s_index_of (self, p2c2r_result_client_ref (r));
    if (index < 0) {
        log_warn ("completion for no task of ours client_ref=%.40s",
                  p2c2r_result_client_ref (r));
        return;
    }
    s_answer (self, index, r);
}

//  The connection's state (library callback). Without reconnects, the
//  first close ends the run: refused (exit 1) or lost (exit 3).
static void
s_on_state (p2c2r_client_t *client, p2c2r_state_t state, p2c2r_code_t code, const char *why,
            void *arg)
{
    (void) client;
    s_gamer_t *self = (s_gamer_t *) arg;
    if (self->finished)
        return;
    if (state == P2C2R_READY) {
        self->registered = true;
        log_debug ("registered id=%s", self->gamer_id);
        s_submit_more (self);
        return;
    }
    if (state != P2C2R_CLOSED && state != P2C2R_DISCONNECTED)
        return;
    if (state == P2C2R_DISCONNECTED && self->resubmit && self->registered
        && (code == P2C2R_CONNECTION_LOST || code == P2C2R_NOT_CONNECTED)) {
        //  the library reconnects and sends the unanswered tasks again
        log_warn ("%s (%s) with %" PRIu64 " of %" PRIu64 " tasks answered; reconnecting",
                  code == P2C2R_CONNECTION_LOST ? "connection lost" : "cannot reach the server",
                  why, self->answered, self->count);
        return;
    }
    if (code == P2C2R_TLS) {
        fprintf (stderr, "p2c2r-agent gamer: cannot connect to %s: %s; give the CA that signed "
                 "the server's certificate with --ca FILE and check the host name in --server "
                 "(--insecure for a development server)\n", self->url, why);
        self->exit_code = 3;
    }
    else
    if (code == P2C2R_CONNECTION_LOST || code == P2C2R_NOT_CONNECTED) {
        fprintf (stderr, "p2c2r-agent gamer: %s (%s) with %" PRIu64 " of %" PRIu64
                 " tasks answered\n",
                 self->registered ? "connection lost" : "cannot reach the server", why,
                 self->answered, self->count);
        self->exit_code = 3;
    }
    else {
        //  The server refused the registration
        fprintf (stderr, "p2c2r-agent gamer: %s\n", why);
        self->exit_code = 1;
    }
    s_finish (self);
}

static void
s_print_missing (s_gamer_t *self)
{
    uint64_t missing = self->count - self->answered, shown = 0;
    fprintf (stderr, "p2c2r-agent gamer: timed out: %" PRIu64 " tasks unanswered (%" PRIu64
             " never submitted):", missing, self->count - self->next);
    for (uint64_t i = 0; i < self->count && shown < 20; i++)
        if (self->state [i] != S_ANSWERED) {
            fprintf (stderr, " %" PRIu64, i);
            shown++;
        }
    fprintf (stderr, "%s\n", missing > shown ? " ..." : "");
}

//  The run's bound (--timeout-s), checked on every turn of the loop
static void
s_check_timeout (s_gamer_t *self)
{
    if (self->finished || p2c_now_us () - self->start_us < self->timeout_us)
        return;
    s_print_missing (self);
    self->exit_code = 2;
    s_finish (self);
}

static void
s_summary (s_gamer_t *self, uint64_t protocol_errors)
{
    FILE *out = self->json ? stderr : stdout;
    double wall_s = (double) ((self->end_us ? self->end_us : p2c_now_us ()) - self->start_us) / 1e6;
    qsort (self->latency_ms, self->answered, sizeof (double), s_cmp_double);
    const double *l = self->latency_ms;
    size_t n = self->answered;
    char usd [48];
    agt_gamer_usd (self->cost_pico, usd, sizeof usd);
    fprintf (out, "summary: tasks=%" PRIu64 " ok=%" PRIu64 " errors=%" PRIu64 " missing=%" PRIu64
             " protocol_errors=%" PRIu64 " cached=%" PRIu64 " replayed=%" PRIu64 "\n", self->count,
             self->ok, self->errors, self->count - self->answered, protocol_errors, self->cached,
             self->replayed);
    fprintf (out, "summary: wall_s=%.3f tasks_per_s=%.1f\n", wall_s,
             wall_s > 0 ? (double) n / wall_s : 0.0);
    fprintf (out, "summary: latency_ms p50=%.1f p90=%.1f p99=%.1f max=%.1f\n",
             agt_gamer_percentile (l, n, 50), agt_gamer_percentile (l, n, 90),
             agt_gamer_percentile (l, n, 99), n ? l [n - 1] : 0.0);
    fprintf (out, "summary: cost_usd=%s\n", usd);
    if (self->out_dir)
        fprintf (out, "summary: saved=%" PRIu64 " dir=%s\n", self->saved, self->out_dir);
    fflush (out);
}

static int
s_read_payload (const char *path, uint8_t **buf_p, size_t *len_p)
{
    FILE *f = fopen (path, "rb");
    if (!f) {
        fprintf (stderr, "p2c2r-agent gamer: cannot open --payload-file %s: %s\n", path,
                 strerror (errno));
        return -1;
    }
    uint8_t *buf = malloc (S_MAX_PAYLOAD + 1);
    size_t len = buf ? fread (buf, 1, S_MAX_PAYLOAD + 1, f) : 0;
    bool err = !buf || ferror (f);
    fclose (f);
    if (err || len > S_MAX_PAYLOAD) {
        fprintf (stderr, "p2c2r-agent gamer: --payload-file %s is unreadable or over %d bytes\n",
                 path, S_MAX_PAYLOAD);
        free (buf);
        return -1;
    }
    *buf_p = buf;
    *len_p = len;
    return 0;
}

//  One run of self->count tasks of self->task on a connection of its own.
//  Returns the exit status (see agt_gamer.h).
static int
s_run (s_gamer_t *self, bool summary)
{
    self->registered = self->finished = false;
    self->next = self->outstanding = self->answered = 0;
    self->ok = self->errors = self->cached = self->replayed = 0;
    self->cost_pico = 0;
    self->end_us = self->bar_us = 0;
    self->exit_code = 0;
    self->state = calloc ((size_t) self->count, 1);
    self->submit_us = calloc ((size_t) self->count, sizeof (int64_t));
    self->latency_ms = calloc ((size_t) self->count, sizeof (double));
    if (!self->state || !self->submit_us || !self->latency_ms)
        fatal ("out of memory for %" PRIu64 " tasks", self->count);
    int rc = 0;
    p2c2r_options_t opt;
    p2c2r_options_init (&opt);
    opt.url = self->url;
    opt.api_key = self->api_key;
    opt.gamer_id = self->gamer_id;
    opt.ca_file = self->ca_file;
    opt.insecure = self->insecure;
    opt.reconnect = self->resubmit;
    //  Every task of the run may wait for the connection at once
    opt.max_queued = self->concurrency > 1000000 ? 1000000 : (uint32_t) self->concurrency;
    opt.on_state = s_on_state;
    opt.on_log = agt_conn_log;
    opt.arg = self;
    self->start_us = p2c_now_us ();
    self->client = p2c2r_new (&opt, NULL);
    if (self->client)
        p2c2r_set_resubmit (self->client, self->resubmit);
    if (!self->client) {
        fprintf (stderr, "p2c2r-agent gamer: cannot use server address '%s'\n", self->url);
        rc = 1;
    }
    else {
        struct pollfd pfd = { p2c2r_fd (self->client), POLLIN, 0 };
        while (!self->finished && !s_stop) {
            //  The client's descriptor wakes us for replies and its timer
            if (poll (&pfd, 1, 100) < 0 && errno != EINTR)
                break;
            p2c2r_step (self->client);
            s_check_timeout (self);
        }
        if (!self->finished) {
            //  Interrupted: say what was left, like a timeout
            if (self->progress)
                fprintf (stderr, "\n");
            s_print_missing (self);
            self->exit_code = 2;
            self->end_us = p2c_now_us ();
        }
        p2c2r_stats_t stats;
        p2c2r_stats (self->client, &stats);
        if (summary && (self->exit_code != 1 || self->registered))
            s_summary (self, stats.protocol_errors);
        rc = self->exit_code;
        if (!rc && (stats.protocol_errors || self->answered != self->count))
            rc = 1;
        if (stats.protocol_errors)
            fprintf (stderr, "p2c2r-agent gamer: %" PRIu64 " protocol errors (replies for unknown "
                     "or already answered tasks)\n", stats.protocol_errors);
    }
    p2c2r_destroy (&self->client);
    free (self->state);
    free (self->submit_us);
    free (self->latency_ms);
    self->state = NULL;
    self->submit_us = NULL;
    self->latency_ms = NULL;
    return rc;
}

//  The nine tasks of the original demo's menu, under the demo's names,
//  with parameters that answer in well under a second
static const struct {
    const char *label;
    const char *task;
    const char *params;
} s_menu_items [] = {
    { "NPC dialogue", "ai_npc_dialogue",
      "{\"player_input\":\"Greetings! Do you have a quest for me?\",\"npc_name\":\"Aldric\","
      "\"personality\":\"friendly\",\"context\":\"tavern\"}" },
    { "Path finding", "ai_pathfinding",
      "{\"grid_size\":[64,64],\"start\":[0,0],\"goal\":[63,63],\"random_obstacles\":0.25,"
      "\"seed\":7}" },
    { "Procedural dungeon", "ai_procedural", "{\"size\":[48,24],\"type\":\"dungeon\",\"seed\":42}" },
    { "Ray tracing: reflections", "raytracing_reflections",
      "{\"resolution\":[160,120],\"bounces\":3,\"lights\":2,\"samples_per_pixel\":1}" },
    { "Ray tracing: shadows", "rt_shadows",
      "{\"resolution\":[160,120],\"lights\":2,\"samples_per_pixel\":4}" },
    { "Ray tracing: global illumination", "rt_global_illumination",
      "{\"resolution\":[96,72],\"bounces\":2,\"lights\":1,\"samples_per_pixel\":8}" },
    { "Physics: rigid bodies", "physics_rigid_body",
      "{\"num_objects\":50,\"simulation_steps\":500,\"dt\":0.01,\"seed\":1}" },
    { "Physics: fluid", "physics_fluid", "{\"grid_size\":[16,16,16],\"iterations\":20}" },
    { "Physics: destruction", "physics_destruction",
      "{\"complexity\":8,\"fracture_depth\":2,\"seed\":1}" },
};
#define S_MENU_ITEMS (sizeof s_menu_items / sizeof s_menu_items [0])

static void
s_menu_task (s_gamer_t *self, size_t item)
{
    free (self->task);
    free (self->params);
    self->task = strdup (s_menu_items [item].task);
    self->params = strdup (s_menu_items [item].params);
    if (!self->task || !self->params)
        fatal ("out of memory");
    //  Each choice's tasks have refs of their own: a choice's task 0 is not
    //  the first choice's
    snprintf (self->prefix, sizeof self->prefix, "%s.%" PRIu64, self->run_id, self->file_base);
    int rc = s_run (self, false);
    if (rc == 3)
        printf ("  (the server could not be reached: is it running at %s?)\n", self->url);
    self->file_base++;
    fflush (stdout);
}

//  The interactive menu: reads a choice per line until quit or end of input
static int
s_menu (s_gamer_t *self)
{
    printf ("P2C2R gamer %s on %s as %s\n", AGT_VERSION, self->url, self->gamer_id);
    while (!s_stop) {
        printf ("\nChoose a task:\n");
        for (size_t i = 0; i < S_MENU_ITEMS; i++)
            printf ("  %2zu) %-34s %s\n", i + 1, s_menu_items [i].label, s_menu_items [i].task);
        printf ("  %2zu) %-34s\n", S_MENU_ITEMS + 1, "All of the above");
        printf ("   q) Quit\n> ");
        fflush (stdout);
        char line [64];
        if (!fgets (line, sizeof line, stdin))
            break;
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        p [strcspn (p, " \t\r\n")] = 0;
        if (!strcmp (p, "q") || !strcmp (p, "quit") || !strcmp (p, "0"))
            break;
        char *end = NULL;
        long choice = strtol (p, &end, 10);
        if (!*p)
            continue;
        if (!strcmp (p, "a") || !strcmp (p, "all"))
            choice = (long) S_MENU_ITEMS + 1;
        else
        if (*end || choice < 1 || choice > (long) S_MENU_ITEMS + 1) {
            printf ("  unknown choice '%s'\n", p);
            continue;
        }
        if (choice == (long) S_MENU_ITEMS + 1) {
            int64_t start = p2c_now_us ();
            for (size_t i = 0; i < S_MENU_ITEMS && !s_stop; i++)
                s_menu_task (self, i);
            printf ("  all %zu tasks in %.1f ms\n", S_MENU_ITEMS,
                    (double) (p2c_now_us () - start) / 1000.0);
        }
        else
            s_menu_task (self, (size_t) choice - 1);
    }
    printf ("bye\n");
    return 0;
}

//  mkdir -p: --out may name a directory a few levels deep
static int
s_mkdirs (const char *dir)
{
    char buf [4096];
    snprintf (buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir (buf, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    struct stat st;
    if (mkdir (buf, 0755) != 0 && errno != EEXIST)
        return -1;
    if (stat (buf, &st) != 0 || !S_ISDIR (st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

int
agt_gamer_main (int argc, char **argv)
{
    agt_gamer_config_t cfg;
    bool verbose = false;
    int rc = p2c_cfg_parse (&agt_config_gamer, &cfg, &argc, argv, &verbose);
    if (rc != 0)
        return rc > 0 ? 0 : 1;
    p2c_log_init ("p2c2r-agent", verbose);
    rc = 0;
    bool menu = (!cfg.task || !*cfg.task) && !cfg.json && !cfg.quiet && isatty (STDIN_FILENO)
                && isatty (STDOUT_FILENO);
    if (argc > 1) {
        fprintf (stderr, "p2c2r-agent gamer: unexpected argument '%s' (see --help)\n", argv [1]);
        rc = 1;
    }
    if (!rc && !menu && (!cfg.task || !*cfg.task)) {
        fprintf (stderr, "p2c2r-agent gamer: --task TYPE is required (see --help)\n");
        rc = 1;
    }
    if (!rc && cfg.run_id && strlen (cfg.run_id) > 64) {
        fprintf (stderr, "p2c2r-agent gamer: --run-id is longer than 64 characters\n");
        rc = 1;
    }
    if (!rc && cfg.out_dir && *cfg.out_dir && s_mkdirs (cfg.out_dir) != 0) {
        fprintf (stderr, "p2c2r-agent gamer: cannot make --out %s: %s\n", cfg.out_dir,
                 strerror (errno));
        rc = 1;
    }
    s_gamer_t *self = calloc (1, sizeof *self);
    if (!self)
        fatal ("out of memory");
    if (!rc && cfg.payload_file && *cfg.payload_file
        && s_read_payload (cfg.payload_file, &self->payload, &self->payload_len) != 0)
        rc = 1;
    self->url = agt_server_url (cfg.conn.server, cfg.conn.cloud_ip, cfg.conn.cloud_port);
    self->ca_file = cfg.conn.ca && *cfg.conn.ca ? strdup (cfg.conn.ca) : NULL;
    self->insecure = cfg.conn.insecure;
    p2l_conn_tls_t tls = { self->ca_file, cfg.conn.insecure };
    if (!rc && agt_conn_check_tls (self->url, &tls, "gamer") != 0)
        rc = 1;
    if (!rc && agt_conn_check_key (self->url, cfg.conn.api_key && *cfg.conn.api_key,
                                   cfg.conn.allow_insecure_ws, "gamer") != 0)
        rc = 1;
    if (!rc) {
        self->gamer_id = *cfg.gamer_id ? strdup (cfg.gamer_id) : agt_default_id ("player-");
        self->api_key = cfg.conn.api_key && *cfg.conn.api_key ? strdup (cfg.conn.api_key) : NULL;
        self->task = p2c_strdup (cfg.task ? cfg.task : "");
        self->params = p2c_strdup (cfg.params ? cfg.params : "{}");
        self->out_dir = cfg.out_dir && *cfg.out_dir ? strdup (cfg.out_dir) : NULL;
        self->menu = menu;
        self->count = menu ? 1 : (uint64_t) cfg.count;
        self->concurrency = (uint64_t) cfg.concurrency;
        self->deadline_ms = (uint32_t) cfg.deadline_ms;
        self->json = cfg.json;
        self->quiet = cfg.quiet;
        self->full = verbose;
        self->timeout_us = cfg.timeout_s * 1000000LL;
        self->resubmit = cfg.resubmit;
        if (cfg.run_id && *cfg.run_id)
            snprintf (self->run_id, sizeof self->run_id, "%s", cfg.run_id);
        else
            s_random_run_id (self->run_id, sizeof self->run_id);
        snprintf (self->prefix, sizeof self->prefix, "%s", self->run_id);
        //  A bar only where a person watches, and never mixed into JSON
        self->progress = !menu && cfg.count > 1 && !cfg.json && !cfg.quiet
                         && isatty (STDERR_FILENO);
    }
    p2c_cfg_free (agt_config_gamer.table, &cfg);
    if (!rc) {
        struct sigaction sa;
        memset (&sa, 0, sizeof sa);
        sa.sa_handler = s_on_signal;
        sigaction (SIGTERM, &sa, NULL);
        sigaction (SIGINT, &sa, NULL);
        signal (SIGPIPE, SIG_IGN);
        rc = menu ? s_menu (self) : s_run (self, true);
    }
    free (self->url);
    free (self->ca_file);
    free (self->gamer_id);
    free (self->api_key);
    free (self->task);
    free (self->params);
    free (self->out_dir);
    free (self->payload);
    free (self);
    return rc;
}

void
agt_gamer_test (bool verbose)
{
    (void) verbose;
    char *s = agt_gamer_subst ("{\"data\":\"g1-{i}\",\"n\":{i}}", 42);
    P2C_CHECK (s && !strcmp (s, "{\"data\":\"g1-42\",\"n\":42}"));
    free (s);
    s = agt_gamer_subst ("{\"data\":\"x\"}", 7);
    P2C_CHECK (s && !strcmp (s, "{\"data\":\"x\"}"));
    free (s);
    s = agt_gamer_subst ("{i}{i}{i", 1234567);
    P2C_CHECK (s && !strcmp (s, "12345671234567{i"));
    free (s);
    s = agt_gamer_subst ("", 0);
    P2C_CHECK (s && !strcmp (s, ""));
    free (s);

    //  Percentiles by nearest rank over 1..100
    double v [100];
    for (int i = 0; i < 100; i++)
        v [i] = i + 1;
    P2C_CHECK (agt_gamer_percentile (v, 100, 50) == 50);
    P2C_CHECK (agt_gamer_percentile (v, 100, 90) == 90);
    P2C_CHECK (agt_gamer_percentile (v, 100, 99) == 99);
    P2C_CHECK (agt_gamer_percentile (v, 100, 100) == 100);
    double one [] = { 7.5 };
    P2C_CHECK (agt_gamer_percentile (one, 1, 50) == 7.5 && agt_gamer_percentile (one, 1, 99) == 7.5);
    double ten [] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 1000 };
    P2C_CHECK (agt_gamer_percentile (ten, 10, 50) == 5);
    P2C_CHECK (agt_gamer_percentile (ten, 10, 90) == 9);
    P2C_CHECK (agt_gamer_percentile (ten, 10, 99) == 1000);
    P2C_CHECK (agt_gamer_percentile (NULL, 0, 50) == 0);

    char usd [48];
    agt_gamer_usd (347, usd, sizeof usd);
    P2C_CHECK (!strcmp (usd, "$0.000000000347"));
    agt_gamer_usd (1500000000000LL, usd, sizeof usd);
    P2C_CHECK (!strcmp (usd, "$1.500000000000"));
    agt_gamer_usd (-2, usd, sizeof usd);
    P2C_CHECK (!strcmp (usd, "-$0.000000000002"));
}
