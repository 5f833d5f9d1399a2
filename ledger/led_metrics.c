/*  The ledger's /metrics (see led_metrics.h). */
#include "led_metrics.h"
#include "p2c_test.h"

#include <stdlib.h>
#include <string.h>

//  One StatsReply figure and its metric
typedef struct {
    const char *key;            //  in the StatsReply object
    const char *name;           //  after p2c2r_ledger_
    const char *type;           //  counter or gauge
    const char *help;
} s_metric_t;

static const s_metric_t s_metrics [] = {
    { "settled", "settled_total", "counter", "Tasks settled (journal transactions written)." },
    { "replays", "replays_total", "counter", "Settlements asked again and answered as before." },
    { "rejected", "rejected_total", "counter", "Settlements refused (bad or inconsistent)." },
    { "unacked", "unacked_total", "counter", "Settlements whose ack could not be sent." },
    { "batches", "batches_total", "counter", "Settlement transactions committed." },
    { "failed_batches", "failed_batches_total", "counter",
      "Settlement transactions that failed (database errors)." },
    { "dropped", "dropped_total", "counter", "Settlements dropped: too many waiting." },
    { "auths", "auths_total", "counter", "API key checks answered." },
    { "admins", "admins_total", "counter", "Operators' commands answered." },
    { "balance_updates", "balance_updates_total", "counter", "Balances sent to the scheduler." },
    { "stats_requests", "stats_requests_total", "counter", "Stats requests answered." },
    { "pending", "pending", "gauge", "Settlements waiting for the next batch." },
    { "pending_max", "pending_max", "gauge", "Settlements held before new ones are dropped." },
    { "inflight_batches", "inflight_batches", "gauge", "Batches in the database now." },
    { "db_workers", "db_workers", "gauge", "Database threads settling batches." },
    { "uptime_s", "uptime_seconds", "gauge", "Seconds since the ledger started." },
    { NULL, NULL, NULL, NULL }
};

void
led_metrics_render (const json_t *stats, FILE *f)
{
    for (const s_metric_t *m = s_metrics; m->key; m++) {
        json_t *v = json_object_get (stats, m->key);
        if (!json_is_integer (v))
            continue;
        fprintf (f, "# HELP p2c2r_ledger_%s %s\n# TYPE p2c2r_ledger_%s %s\np2c2r_ledger_%s %"
                 JSON_INTEGER_FORMAT "\n", m->name, m->help, m->name, m->type, m->name,
                 json_integer_value (v));
    }
}

void
led_metrics_test (bool verbose)
{
    (void) verbose;
    json_t *stats = json_pack ("{s:I, s:I, s:s}", "settled", (json_int_t) 42, "pending",
                               (json_int_t) 3, "odd", "x");
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream (&text, &size);
    led_metrics_render (stats, f);
    fclose (f);
    P2C_CHECK (strstr (text, "# TYPE p2c2r_ledger_settled_total counter\n"
                             "p2c2r_ledger_settled_total 42\n"));
    P2C_CHECK (strstr (text, "p2c2r_ledger_pending 3\n") && !strstr (text, "odd")
               && !strstr (text, "replays"));
    free (text);
    json_decref (stats);
}
