/*  The server's alerts (see sch_alerts.h). */
#include "sch_alerts.h"
#include "p2c_test.h"

#include <assert.h>
#include <czmq.h>
#include <math.h>
#include <time.h>

//  Latencies kept for the window's p99 (the newest; a busier window than
//  this is judged on its latest tasks)
#define S_LATENCIES 4096
//  Samples of the settlement counter, one a second at most: the window's
//  bound (600 s) and one more
#define S_SAMPLES 602

static const char *s_names [SCH_ALERT_COUNT] = {
    "server_down", "peers_low", "latency_high", "queue_backlog", "settle_failures"
};
static const char *s_summaries [SCH_ALERT_COUNT] = {
    "a server process is gone from the bus (broker, ledger or gateway)",
    "fewer peers online than the threshold",
    "task latency p99 over the window above the threshold (ms)",
    "tasks waiting for a free slot above the threshold",
    "settlement resends and refusals in the window at or above the threshold"
};

typedef struct {
    int64_t at_us;
    uint64_t value;
} s_sample_t;

struct _sch_alerts_t {
    sch_alerts_config_t cfg;
    sch_alert_t alerts [SCH_ALERT_COUNT];
    sch_alert_fn *hook;
    void *hook_arg;
    struct { int64_t at_us; uint32_t us; } lat [S_LATENCIES];  //  ring
    uint64_t lat_n;
    s_sample_t samples [S_SAMPLES];     //  ring of the settlement counter
    size_t sample_n;
    uint32_t *sorted;                   //  scratch for the p99 (owned)
};

sch_alerts_t *
sch_alerts_new (const sch_alerts_config_t *config)
{
    sch_alerts_t *self = (sch_alerts_t *) zmalloc (sizeof (sch_alerts_t));
    self->cfg = *config;
    for (int i = 0; i < SCH_ALERT_COUNT; i++) {
        self->alerts [i].name = s_names [i];
        self->alerts [i].summary = s_summaries [i];
    }
    self->sorted = (uint32_t *) zmalloc (S_LATENCIES * sizeof (uint32_t));
    return self;
}

void
sch_alerts_destroy (sch_alerts_t **self_p)
{
    sch_alerts_t *self = *self_p;
    if (!self)
        return;
    free (self->sorted);
    free (self);
    *self_p = NULL;
}

void
sch_alerts_set_hook (sch_alerts_t *self, sch_alert_fn *fn, void *arg)
{
    self->hook = fn;
    self->hook_arg = arg;
}

void
sch_alerts_latency (sch_alerts_t *self, int64_t now_us, int64_t latency_us)
{
    size_t i = self->lat_n++ % S_LATENCIES;
    self->lat [i].at_us = now_us;
    self->lat [i].us = latency_us < 0 ? 0 : latency_us > UINT32_MAX ? UINT32_MAX
                     : (uint32_t) latency_us;
}

static int
s_cmp_u32 (const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
    return x < y ? -1 : x > y;
}

//  p99 of the latencies in the window, ms; 0 when none
static double
s_p99_ms (sch_alerts_t *self, int64_t now_us)
{
    size_t have = self->lat_n < S_LATENCIES ? (size_t) self->lat_n : S_LATENCIES, n = 0;
    for (size_t i = 0; i < have; i++)
        if (now_us - self->lat [i].at_us <= self->cfg.window_ms * 1000)
            self->sorted [n++] = self->lat [i].us;
    if (!n)
        return 0;
    qsort (self->sorted, n, sizeof (uint32_t), s_cmp_u32);
    return self->sorted [(n - 1) * 99 / 100] / 1000.0;
}

//  Increase of the settlement counter over the window: keeps a sample a
//  second, compares with the oldest one inside the window
static double
s_settle_increase (sch_alerts_t *self, uint64_t counter, int64_t now_us)
{
    size_t have = self->sample_n < S_SAMPLES ? self->sample_n : S_SAMPLES;
    s_sample_t *last = have ? &self->samples [(self->sample_n - 1) % S_SAMPLES] : NULL;
    if (!last || now_us - last->at_us >= 1000000) {
        self->samples [self->sample_n++ % S_SAMPLES] = (s_sample_t) { now_us, counter };
        have = self->sample_n < S_SAMPLES ? self->sample_n : S_SAMPLES;
    }
    uint64_t base = counter;
    for (size_t i = 0; i < have; i++) {
        const s_sample_t *s = &self->samples [i];
        if (now_us - s->at_us <= self->cfg.window_ms * 1000 && s->value < base)
            base = s->value;
    }
    return (double) (counter - base);
}

//  One rule's step: cond is whether the condition holds now
static void
s_step (sch_alerts_t *self, sch_alert_t *a, bool cond, double value, double threshold,
        int64_t now_us)
{
    a->value = value;
    a->threshold = threshold;
    bool was = a->firing;
    if (!cond) {
        a->pending = false;
        a->firing = false;
    }
    else
    if (!a->firing) {
        if (!a->pending) {
            a->pending = true;
            a->pending_us = now_us;
        }
        if (now_us - a->pending_us >= self->cfg.for_ms * 1000) {
            a->pending = false;
            a->firing = true;
        }
    }
    if (a->firing != was) {
        a->since_us = now_us;
        a->since_unix = (int64_t) time (NULL);
        if (self->hook)
            self->hook (self->hook_arg, a);
    }
}

void
sch_alerts_eval (sch_alerts_t *self, const sch_alerts_input_t *in, int64_t now_us)
{
    const sch_alerts_config_t *c = &self->cfg;
    //  server down: the broker names the nodes; a count not known yet
    //  (-1) is not a missing server
    sch_alert_t *a = &self->alerts [SCH_ALERT_SERVER_DOWN];
    int missing = (in->broker == 0) + (in->ledgers == 0) + (in->gateways == 0);
    snprintf (a->detail, sizeof a->detail, "%s%s%s%s%s", in->broker == 0 ? "broker" : "",
              in->broker == 0 && in->ledgers == 0 ? "," : "", in->ledgers == 0 ? "ledger" : "",
              (in->broker == 0 || in->ledgers == 0) && in->gateways == 0 ? "," : "",
              in->gateways == 0 ? "gateway" : "");
    s_step (self, a, missing > 0, missing, 0, now_us);

    a = &self->alerts [SCH_ALERT_PEERS_LOW];
    s_step (self, a, c->peers_min && in->peers < c->peers_min, (double) in->peers,
            c->peers_min, now_us);

    a = &self->alerts [SCH_ALERT_LATENCY_HIGH];
    double p99 = s_p99_ms (self, now_us);
    s_step (self, a, c->latency_p99_ms && p99 > (double) c->latency_p99_ms, p99,
            (double) c->latency_p99_ms, now_us);

    a = &self->alerts [SCH_ALERT_QUEUE_BACKLOG];
    s_step (self, a, c->queue_max && in->queued > c->queue_max, (double) in->queued,
            (double) c->queue_max, now_us);

    a = &self->alerts [SCH_ALERT_SETTLE_FAILURES];
    double inc = s_settle_increase (self, in->settle_failures, now_us);
    s_step (self, a, c->settle_failures && inc >= c->settle_failures, inc, c->settle_failures,
            now_us);
}

const sch_alert_t *
sch_alerts_get (sch_alerts_t *self, sch_alert_id_t id)
{
    assert (id < SCH_ALERT_COUNT);
    return &self->alerts [id];
}

size_t
sch_alerts_firing (sch_alerts_t *self)
{
    size_t n = 0;
    for (int i = 0; i < SCH_ALERT_COUNT; i++)
        n += self->alerts [i].firing;
    return n;
}

json_t *
sch_alerts_json (sch_alerts_t *self)
{
    json_t *list = json_array ();
    for (int i = 0; i < SCH_ALERT_COUNT; i++) {
        const sch_alert_t *a = &self->alerts [i];
        const char *state = a->firing ? "firing" : a->pending ? "pending"
                          : a->since_unix ? "resolved" : "ok";
        json_t *o = json_pack ("{s:s, s:s, s:f, s:f, s:s}", "name", a->name, "state", state,
                               "value", round (a->value * 1000) / 1000, "threshold",
                               a->threshold, "summary", a->summary);
        if (!o)
            continue;
        json_object_set_new (o, "since", a->since_unix ? json_integer (a->since_unix)
                                                       : json_null ());
        if (*a->detail)
            json_object_set_new (o, "detail", json_string (a->detail));
        json_array_append_new (list, o);
    }
    return list;
}

//  --------------------------------------------------------------------------
//  Self-test: one story through every rule on a fake clock (long: each
//  step builds on the state the previous one left)

typedef struct {
    int calls;
    char last [64];
} s_test_log_t;

static void
s_test_hook (void *arg, const sch_alert_t *alert)
{
    s_test_log_t *log = (s_test_log_t *) arg;
    log->calls++;
    snprintf (log->last, sizeof log->last, "%s=%s", alert->name,
              alert->firing ? "firing" : "resolved");
}

void
sch_alerts_test (bool verbose)
{
    (void) verbose;
    sch_alerts_config_t cfg = { .for_ms = 1000, .window_ms = 10000, .peers_min = 2,
                                .latency_p99_ms = 100, .queue_max = 5, .settle_failures = 3 };
    sch_alerts_t *self = sch_alerts_new (&cfg);
    s_test_log_t log = { 0, "" };
    sch_alerts_set_hook (self, s_test_hook, &log);
    int64_t s = 1000000;
    sch_alerts_input_t in = { .peers = 3, .queued = 0, .settle_failures = 0,
                              .broker = -1, .ledgers = -1, .gateways = -1 };
    sch_alerts_eval (self, &in, 10 * s);
    P2C_CHECK (sch_alerts_firing (self) == 0 && log.calls == 0);

    //  peers drop: pending first, firing after for_ms, once
    in.peers = 1;
    sch_alerts_eval (self, &in, 11 * s);
    const sch_alert_t *a = sch_alerts_get (self, SCH_ALERT_PEERS_LOW);
    P2C_CHECK (a->pending && !a->firing && log.calls == 0);
    sch_alerts_eval (self, &in, 12 * s);
    P2C_CHECK (a->firing && a->since_us == 12 * s && a->value == 1 && a->threshold == 2);
    P2C_CHECK (log.calls == 1 && !strcmp (log.last, "peers_low=firing"));
    sch_alerts_eval (self, &in, 13 * s);
    P2C_CHECK (log.calls == 1);
    //  a blip shorter than for_ms never fires
    in.peers = 3;
    sch_alerts_eval (self, &in, 14 * s);
    P2C_CHECK (!a->firing && log.calls == 2 && !strcmp (log.last, "peers_low=resolved"));
    in.peers = 0;
    sch_alerts_eval (self, &in, 15 * s);
    in.peers = 3;
    sch_alerts_eval (self, &in, 15 * s + 500000);
    P2C_CHECK (!a->firing && !a->pending && log.calls == 2);

    //  latency: p99 of the window only
    for (int i = 0; i < 100; i++)
        sch_alerts_latency (self, 16 * s, 500000);
    sch_alerts_eval (self, &in, 16 * s);
    sch_alerts_eval (self, &in, 17 * s);
    a = sch_alerts_get (self, SCH_ALERT_LATENCY_HIGH);
    P2C_CHECK (a->firing && a->value == 500 && a->threshold == 100);
    //  the slow ones leave the window: resolved
    sch_alerts_latency (self, 27 * s, 1000);
    sch_alerts_eval (self, &in, 27 * s);
    P2C_CHECK (!a->firing && a->value == 1);

    //  queue backlog and settlement failures
    in.queued = 6;
    in.settle_failures = 2;
    sch_alerts_eval (self, &in, 28 * s);
    in.settle_failures = 10;
    sch_alerts_eval (self, &in, 29 * s);
    sch_alerts_eval (self, &in, 30 * s);
    P2C_CHECK (sch_alerts_get (self, SCH_ALERT_QUEUE_BACKLOG)->firing);
    a = sch_alerts_get (self, SCH_ALERT_SETTLE_FAILURES);
    P2C_CHECK (a->firing && a->value == 10);
    //  no more failures for a window: resolved
    in.queued = 0;
    sch_alerts_eval (self, &in, 45 * s);
    P2C_CHECK (!a->firing && !sch_alerts_get (self, SCH_ALERT_QUEUE_BACKLOG)->firing);

    //  server down once the broker named none
    in.ledgers = 0;
    in.gateways = 1;
    sch_alerts_eval (self, &in, 46 * s);
    sch_alerts_eval (self, &in, 47 * s);
    a = sch_alerts_get (self, SCH_ALERT_SERVER_DOWN);
    P2C_CHECK (a->firing && !strcmp (a->detail, "ledger"));
    json_t *j = sch_alerts_json (self);
    P2C_CHECK (json_array_size (j) == SCH_ALERT_COUNT);
    json_t *first = json_array_get (j, 0);
    P2C_CHECK (!strcmp (json_string_value (json_object_get (first, "state")), "firing")
               && json_integer_value (json_object_get (first, "since")) > 0
               && !strcmp (json_string_value (json_object_get (first, "detail")), "ledger"));
    json_decref (j);
    P2C_CHECK (sch_alerts_firing (self) == 1);
    //  the broker gone: the nodes behind it are not known
    in.broker = 0;
    in.ledgers = in.gateways = -1;
    sch_alerts_eval (self, &in, 48 * s);
    P2C_CHECK (a->firing && !strcmp (a->detail, "broker"));
    in.broker = 1;
    in.ledgers = 0;
    in.gateways = 0;
    sch_alerts_eval (self, &in, 49 * s);
    P2C_CHECK (a->firing && !strcmp (a->detail, "ledger,gateway") && a->value == 2);
    sch_alerts_destroy (&self);
    P2C_CHECK (self == NULL);
}
