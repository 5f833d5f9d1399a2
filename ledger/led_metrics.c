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
    //  The money summary (led_money): decimal USD text, exact, as read
    //  from the database every money-refresh-ms; the same for every ledger
    { "spent_total", "gamers_spent_usd_total", "counter", "What settled tasks charged, USD." },
    { "spent_today", "gamers_spent_today_usd", "gauge",
      "What tasks settled today (UTC) charged, USD." },
    { "earned_total", "peers_earned_usd_total", "counter", "What peers earned, USD." },
    { "earned_today", "peers_earned_today_usd", "gauge", "What peers earned today (UTC), USD." },
    { "fee_total", "fee_usd_total", "counter", "The platform fee taken, USD." },
    { "fee_today", "fee_today_usd", "gauge", "The platform fee taken today (UTC), USD." },
    { "treasury_total", "treasury_net_usd", "gauge",
      "The treasury's net from settlements (negative: it paid more than it took), USD." },
    { "treasury_today", "treasury_net_today_usd", "gauge",
      "The treasury's net from today's (UTC) settlements, USD." },
    { "subsidy_total", "subsidy_granted_usd_total", "counter",
      "What the treasury added to peers' earnings, USD." },
    { "subsidy_today", "subsidy_granted_today_usd", "gauge",
      "What the treasury added today (UTC), USD." },
    { NULL, NULL, NULL, NULL }
};

void
led_metrics_render (const json_t *stats, FILE *f)
{
    for (const s_metric_t *m = s_metrics; m->key; m++) {
        json_t *v = json_object_get (stats, m->key);
        const char *text = json_string_value (v);
        if (text) {
            //  an exact decimal as it is (the exposition's values are
            //  floats in text); anything else is left out
            size_t len = strlen (text), sign = *text == '-';
            if (len > sign && len < 64 && strspn (text + sign, "0123456789.") == len - sign)
                fprintf (f, "# HELP p2c2r_ledger_%s %s\n# TYPE p2c2r_ledger_%s %s\n"
                         "p2c2r_ledger_%s %s\n", m->name, m->help, m->name, m->type, m->name,
                         text);
            continue;
        }
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
    json_t *stats = json_pack ("{s:I, s:I, s:s, s:s, s:s}", "settled", (json_int_t) 42, "pending",
                               (json_int_t) 3, "odd", "x", "spent_total", "12.345678000000",
                               "fee_today", "1; rm");
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream (&text, &size);
    led_metrics_render (stats, f);
    fclose (f);
    P2C_CHECK (strstr (text, "# TYPE p2c2r_ledger_settled_total counter\n"
                             "p2c2r_ledger_settled_total 42\n"));
    P2C_CHECK (strstr (text, "p2c2r_ledger_pending 3\n") && !strstr (text, "odd")
               && !strstr (text, "replays"));
    //  money as its exact decimal; a string that is not one is left out
    P2C_CHECK (strstr (text, "# TYPE p2c2r_ledger_gamers_spent_usd_total counter\n"
                             "p2c2r_ledger_gamers_spent_usd_total 12.345678000000\n")
               && !strstr (text, "fee_today"));
    free (text);
    json_decref (stats);
}
