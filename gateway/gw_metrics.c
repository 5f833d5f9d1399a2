/*  Counters and the latency histogram (see gw_metrics.h). */
#include "gw_metrics.h"
#include "p2c_test.h"

#include <czmq.h>

static const struct {
    const char *name, *label, *help;
} s_families [GW_M_FAMILIES] = {
    { "p2c2r_gateway_messages_in_total", "type", "Client messages received, by type." },
    { "p2c2r_gateway_messages_out_total", "type", "Messages sent to clients, by type." },
    { "p2c2r_gateway_errors_total", "code", "Error answers sent to clients, by code." },
    { "p2c2r_gateway_limits_hit_total", "limit", "Times a client limit was hit, by limit." },
    { "p2c2r_gateway_events_total", "event", "Connection and authentication events." },
};

//  Upper bounds of the latency buckets, milliseconds
static const double s_bounds [] = { 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
                                    30000, 60000 };
#define S_NBOUNDS (sizeof s_bounds / sizeof s_bounds [0])
#define S_FAST    16        //  labels per family remembered by address

//  A label seen before, by its address: counted without hashing its text
typedef struct {
    const char *label;
    uint64_t *count;
} s_fast_t;

struct _gw_metrics_t {
    zhashx_t *counts [GW_M_FAMILIES];   //  label -> uint64_t (owned)
    s_fast_t fast [GW_M_FAMILIES][S_FAST];
    uint64_t buckets [S_NBOUNDS];       //  observations <= bound (not cumulative)
    uint64_t observed;                  //  all observations
    double sum_ms;
};

static void
s_free (void **item)
{
    free (*item);
    *item = NULL;
}

gw_metrics_t *
gw_metrics_new (void)
{
    gw_metrics_t *self = (gw_metrics_t *) zmalloc (sizeof (gw_metrics_t));
    for (int f = 0; f < GW_M_FAMILIES; f++) {
        self->counts [f] = zhashx_new ();
        zhashx_set_destructor (self->counts [f], s_free);
    }
    return self;
}

void
gw_metrics_destroy (gw_metrics_t **self_p)
{
    gw_metrics_t *self = *self_p;
    if (!self)
        return;
    for (int f = 0; f < GW_M_FAMILIES; f++)
        zhashx_destroy (&self->counts [f]);
    free (self);
    *self_p = NULL;
}

void
gw_metrics_inc (gw_metrics_t *self, gw_family_t family, const char *label)
{
    //  Labels come from our own tables of codes, never from a client, so
    //  the number of series stays bounded
    s_fast_t *fast = self->fast [family];
    int i;
    for (i = 0; i < S_FAST && fast [i].label; i++)
        if (fast [i].label == label) {
            (*fast [i].count)++;
            return;
        }
    uint64_t *n = (uint64_t *) zhashx_lookup (self->counts [family], label);
    if (!n) {
        n = (uint64_t *) zmalloc (sizeof (uint64_t));
        zhashx_insert (self->counts [family], label, n);
    }
    (*n)++;
    if (i < S_FAST) {
        fast [i].label = label;
        fast [i].count = n;
    }
}

uint64_t
gw_metrics_get (gw_metrics_t *self, gw_family_t family, const char *label)
{
    uint64_t *n = (uint64_t *) zhashx_lookup (self->counts [family], label);
    return n ? *n : 0;
}

void
gw_metrics_observe_ms (gw_metrics_t *self, double ms)
{
    self->observed++;
    self->sum_ms += ms;
    for (size_t i = 0; i < S_NBOUNDS; i++)
        if (ms <= s_bounds [i]) {
            self->buckets [i]++;
            break;
        }
}

static int
s_cmp (const void *a, const void *b)
{
    return strcmp ((const char *) a, (const char *) b);
}

void
gw_metrics_render (gw_metrics_t *self, FILE *out)
{
    for (int f = 0; f < GW_M_FAMILIES; f++) {
        fprintf (out, "# HELP %s %s\n# TYPE %s counter\n", s_families [f].name,
                 s_families [f].help, s_families [f].name);
        zlistx_t *keys = zhashx_keys (self->counts [f]);
        zlistx_set_comparator (keys, (zlistx_comparator_fn *) s_cmp);
        zlistx_sort (keys);
        for (const char *k = (const char *) zlistx_first (keys); k;
             k = (const char *) zlistx_next (keys))
            fprintf (out, "%s{%s=\"%s\"} %llu\n", s_families [f].name, s_families [f].label, k,
                     (unsigned long long) gw_metrics_get (self, (gw_family_t) f, k));
        zlistx_destroy (&keys);
    }
    const char *h = "p2c2r_gateway_task_latency_ms";
    fprintf (out, "# HELP %s Time from a submit to its terminal reply, milliseconds.\n"
                  "# TYPE %s histogram\n", h, h);
    uint64_t cum = 0;
    for (size_t i = 0; i < S_NBOUNDS; i++) {
        cum += self->buckets [i];
        fprintf (out, "%s_bucket{le=\"%g\"} %llu\n", h, s_bounds [i], (unsigned long long) cum);
    }
    fprintf (out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.3f\n%s_count %llu\n", h,
             (unsigned long long) self->observed, h, self->sum_ms, h,
             (unsigned long long) self->observed);
}

json_t *
gw_metrics_json (gw_metrics_t *self)
{
    static const char *keys [GW_M_FAMILIES] = { "messages_in", "messages_out", "errors",
                                                "limits_hit", "events" };
    json_t *obj = json_object ();
    for (int f = 0; f < GW_M_FAMILIES; f++) {
        json_t *fam = json_object ();
        for (uint64_t *n = (uint64_t *) zhashx_first (self->counts [f]); n;
             n = (uint64_t *) zhashx_next (self->counts [f]))
            json_object_set_new (fam, (const char *) zhashx_cursor (self->counts [f]),
                                 json_integer ((json_int_t) *n));
        json_object_set_new (obj, keys [f], fam);
    }
    json_object_set_new (obj, "tasks_answered", json_integer ((json_int_t) self->observed));
    json_object_set_new (obj, "task_latency_ms_avg",
                         json_real (self->observed ? self->sum_ms / (double) self->observed : 0));
    return obj;
}

void
gw_metrics_test (bool verbose)
{
    (void) verbose;
    gw_metrics_t *m = gw_metrics_new ();
    gw_metrics_inc (m, GW_M_MSG_IN, "submit_task");
    gw_metrics_inc (m, GW_M_MSG_IN, "submit_task");
    gw_metrics_inc (m, GW_M_ERRORS, "rate_limited");
    P2C_CHECK (gw_metrics_get (m, GW_M_MSG_IN, "submit_task") == 2);
    P2C_CHECK (gw_metrics_get (m, GW_M_MSG_IN, "heartbeat") == 0);
    //  The same text at another (lasting) address is the same series
    static char copy [16];
    snprintf (copy, sizeof copy, "%s", "submit_task");
    gw_metrics_inc (m, GW_M_MSG_IN, copy);
    P2C_CHECK (gw_metrics_get (m, GW_M_MSG_IN, "submit_task") == 3);
    //  More labels than are remembered by address still count
    static const char *many [] = { "l0", "l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8", "l9",
        "l10", "l11", "l12", "l13", "l14", "l15", "l16", "l17", "l18", "l19" };
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 20; i++)
            gw_metrics_inc (m, GW_M_EVENTS, many [i]);
    P2C_CHECK (gw_metrics_get (m, GW_M_EVENTS, "l0") == 3
               && gw_metrics_get (m, GW_M_EVENTS, "l19") == 3);
    gw_metrics_observe_ms (m, 3);
    gw_metrics_observe_ms (m, 40);
    gw_metrics_observe_ms (m, 100000);
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream (&text, &size);
    gw_metrics_render (m, f);
    fclose (f);
    P2C_CHECK (text && strstr (text, "p2c2r_gateway_messages_in_total{type=\"submit_task\"} 3\n"));
    P2C_CHECK (text && strstr (text, "p2c2r_gateway_errors_total{code=\"rate_limited\"} 1\n"));
    //  Buckets are cumulative; the slow one is only in +Inf
    P2C_CHECK (text && strstr (text, "p2c2r_gateway_task_latency_ms_bucket{le=\"5\"} 1\n"));
    P2C_CHECK (text && strstr (text, "p2c2r_gateway_task_latency_ms_bucket{le=\"50\"} 2\n"));
    P2C_CHECK (text && strstr (text, "p2c2r_gateway_task_latency_ms_bucket{le=\"60000\"} 2\n"));
    P2C_CHECK (text && strstr (text, "p2c2r_gateway_task_latency_ms_bucket{le=\"+Inf\"} 3\n"));
    P2C_CHECK (text && strstr (text, "p2c2r_gateway_task_latency_ms_count 3\n"));
    free (text);
    json_t *j = gw_metrics_json (m);
    P2C_CHECK (json_integer_value (json_object_get (json_object_get (j, "messages_in"),
                                                    "submit_task")) == 3);
    json_decref (j);
    gw_metrics_destroy (&m);
    P2C_CHECK (m == NULL);
}
