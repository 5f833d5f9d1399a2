/*  The scheduler core's figures for operators: counters and gauges
    (sch_stats_t), the status line written when something changed, the
    tasks per second and latency percentiles, and the flat JSON object of
    StatsReply. */
#include "sch_internal.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>

static const char *s_err_names [SCH_ERR_COUNT] = {
    "no_peers", "timeout", "unavailable", "invalid_params", "kernel_error",
    "unknown_task_type", "insufficient_funds", "rejected", "bad_request"
};

const char *
sch_err_name (sch_err_t err)
{
    assert (err < SCH_ERR_COUNT);
    return s_err_names [err];
}

const sch_stats_t *
sch_core_stats (sch_core_t *self)
{
    self->stats.peers = zhashx_size (self->peers);
    return &self->stats;
}

void
sch_stats_latency (sch_core_t *self, sch_task_t *task, int64_t now_us)
{
    int64_t us = now_us - task->submit_us;
    if (us < 0)
        us = 0;
    self->latency_us [self->latency_n++ % SCH_LATENCIES] = us > UINT32_MAX ? UINT32_MAX
                                                                          : (uint32_t) us;
    sch_alerts_latency (self->alerts, now_us, us);
}

//  Tasks per second over windows of at least a second
void
sch_stats_rate (sch_core_t *self, int64_t now_us)
{
    if (!self->rate_at_us)
        self->rate_at_us = now_us;
    else
    if (now_us - self->rate_at_us >= 1000000) {
        uint64_t done = self->stats.completed + self->stats.cached;
        self->tasks_per_s = (double) (done - self->rate_done) * 1e6
                          / (double) (now_us - self->rate_at_us);
        self->rate_done = done;
        self->rate_at_us = now_us;
    }
}

void
sch_stats_status (sch_core_t *self, int64_t now_us)
{
    if (self->status_next_us == 0) {
        self->status_next_us = now_us + self->config.status_interval_ms * 1000;
        return;
    }
    if (now_us < self->status_next_us)
        return;
    self->status_next_us = now_us + self->config.status_interval_ms * 1000;
    const sch_stats_t *s = sch_core_stats (self);
    if (!memcmp (s, &self->logged, sizeof *s))
        return;
    uint64_t failed = 0;
    for (int i = 0; i < SCH_ERR_COUNT; i++)
        failed += s->failed [i];
    log_info ("status peers=%zu banned=%zu slots=%zu busy=%zu parked=%zu queued=%zu"
              " running=%zu validating=%zu settling=%zu submitted=%" PRIu64
              " completed=%" PRIu64 " cached=%" PRIu64 " failed=%" PRIu64
              " no_peers=%" PRIu64 " timeout=%" PRIu64 " unavailable=%" PRIu64
              " insufficient_funds=%" PRIu64 " rejected=%" PRIu64 " reassigned=%" PRIu64
              " stale_results=%" PRIu64 " checks=%" PRIu64 " invalid=%" PRIu64
              " bans=%" PRIu64 " settle_retries=%" PRIu64 " bad_messages=%" PRIu64,
              s->peers, s->banned_peers, s->slots, s->busy_slots, s->parked, s->queued,
              s->running, s->validating, s->settling, s->submitted, s->completed, s->cached,
              failed, s->failed [SCH_ERR_NO_PEERS], s->failed [SCH_ERR_TIMEOUT],
              s->failed [SCH_ERR_UNAVAILABLE], s->failed [SCH_ERR_INSUFFICIENT_FUNDS],
              s->failed [SCH_ERR_REJECTED], s->reassigned, s->stale_results, s->checks,
              s->invalid_results, s->bans, s->settle_retries, s->bad_messages);
    self->logged = *s;
}

static int
s_cmp_u32 (const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
    return x < y ? -1 : x > y;
}

static const int s_pcts [3] = { 50, 90, 99 };

//  Percentiles 50, 90, 99 of the recent submit-to-result latencies, ms
static void
s_percentiles (sch_core_t *self, double ms [3])
{
    size_t n = self->latency_n < SCH_LATENCIES ? (size_t) self->latency_n : SCH_LATENCIES;
    uint32_t *sorted = (uint32_t *) p2c_malloc ((n ? n : 1) * sizeof (uint32_t));
    memcpy (sorted, self->latency_us, n * sizeof (uint32_t));
    qsort (sorted, n, sizeof (uint32_t), s_cmp_u32);
    for (int i = 0; i < 3; i++)
        ms [i] = n ? sorted [(n - 1) * s_pcts [i] / 100] / 1000.0 : 0;
    free (sorted);
}

//  The percentiles into o
static void
s_latencies (sch_core_t *self, json_t *o)
{
    double ms [3];
    s_percentiles (self, ms);
    for (int i = 0; i < 3; i++) {
        char name [32];
        snprintf (name, sizeof name, "latency_p%d_ms", s_pcts [i]);
        json_object_set_new (o, name, json_real (round (ms [i] * 1000) / 1000));
    }
}

//  Live peers by task type (unbanned, as the queues see them) and by
//  advertised region ("none": no region), for the operator's page; a walk
//  of the peers, one per stats request
static void
s_peer_counts (sch_core_t *self, json_t *o)
{
    json_t *types = json_object (), *regions = json_object ();
    int i = 0;
    for (const p2c_task_type_t *t = p2c_task_types (); t->name && i < SCH_MAX_TYPES; t++, i++)
        json_object_set_new (types, t->name, json_integer ((json_int_t) self->eligible [i]));
    for (sch_peer_t *p = (sch_peer_t *) zhashx_first (self->peers); p;
         p = (sch_peer_t *) zhashx_next (self->peers)) {
        const char *r = p->region && *p->region ? p->region : "none";
        json_int_t n = json_integer_value (json_object_get (regions, r));
        json_object_set_new (regions, r, json_integer (n + 1));
    }
    json_object_set_new (o, "peers_by_type", types);
    json_object_set_new (o, "peers_by_region", regions);
}

//  One flat object of every figure (but the two peer counts, objects by
//  name); a long list of names, one a line
char *
sch_core_stats_json (sch_core_t *self, int64_t now_us)
{
    (void) now_us;
    const sch_stats_t *s = sch_core_stats (self);
    json_t *o = json_object ();
#define SET_INT(name, v) json_object_set_new (o, name, json_integer ((json_int_t) (v)))
    SET_INT ("peers_online", s->peers);
    SET_INT ("peers_banned", s->banned_peers);
    SET_INT ("slots", s->slots);
    SET_INT ("slots_busy", s->busy_slots);
    SET_INT ("queue_depth", s->queued);
    SET_INT ("queued_bytes", s->queued_bytes);
    SET_INT ("parked", s->parked);
    SET_INT ("running", s->running);
    SET_INT ("validating", s->validating);
    SET_INT ("settling", s->settling);
    SET_INT ("submitted", s->submitted);
    SET_INT ("completed", s->completed);
    SET_INT ("ref_joined", s->ref_joined);
    SET_INT ("ref_replayed", s->ref_replayed);
    SET_INT ("assigned", s->assigned);
    SET_INT ("reassigned", s->reassigned);
    SET_INT ("stale_results", s->stale_results);
    SET_INT ("dropped", s->dropped);
    SET_INT ("settle_retries", s->settle_retries);
    SET_INT ("settle_refused", s->settle_refused);
    SET_INT ("bad_messages", s->bad_messages);
    for (int i = 0; i < SCH_ERR_COUNT; i++) {
        char name [64];
        snprintf (name, sizeof name, "failed_%s", s_err_names [i]);
        SET_INT (name, s->failed [i]);
    }
    json_object_set_new (o, "tasks_per_s", json_real (round (self->tasks_per_s * 100) / 100));
    s_latencies (self, o);
    uint64_t hits = sch_cache_hits (self->cache), misses = sch_cache_misses (self->cache);
    SET_INT ("cache_hits", hits);
    SET_INT ("cache_misses", misses);
    json_object_set_new (o, "cache_hit_rate",
                         json_real (hits + misses ? round (1e4 * hits / (double) (hits + misses)) / 1e4 : 0));
    SET_INT ("cache_entries", sch_cache_entries (self->cache));
    SET_INT ("cache_bytes", sch_cache_bytes (self->cache));
    SET_INT ("validation_checks", s->checks);
    SET_INT ("validation_agreed", s->agreed);
    SET_INT ("validation_tiebreaks", s->tiebreaks);
    SET_INT ("validation_unresolved", s->unresolved);
    SET_INT ("validation_incomparable", s->incomparable);
    SET_INT ("validation_invalid", s->invalid_results);
    SET_INT ("validation_unknown_version", s->unknown_versions);
    SET_INT ("billing_flagged", s->billing_flagged);
    SET_INT ("validation_paid_then_invalid", s->paid_then_invalid);
    SET_INT ("validation_check_payouts", s->check_payouts);
    SET_INT ("validation_reversals", s->reversals);
    SET_INT ("validation_payouts_done", s->payouts_done);
    SET_INT ("validation_payouts_dropped", s->payouts_dropped);
    SET_INT ("validation_payouts_pending", s->payouts_pending);
    SET_INT ("banned_results", s->banned_results);
    SET_INT ("bans", s->bans);
    SET_INT ("balance_queries", s->balance_queries);
#undef SET_INT
    json_object_set_new (o, "alerts", sch_alerts_json (self->alerts));
    s_peer_counts (self, o);
    char *text = json_dumps (o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref (o);
    if (!text)
        p2c_oom ("scheduler stats");
    return text;
}

//  One metric with its HELP and TYPE lines
static void
s_metric (FILE *f, const char *name, const char *type, const char *help, double v)
{
    fprintf (f, "# HELP p2c2r_scheduler_%s %s\n# TYPE p2c2r_scheduler_%s %s\n"
                "p2c2r_scheduler_%s %.17g\n", name, help, name, type, name, v);
}

//  Prometheus' text format of the figures (docs/metrics.md lists them):
//  a long list, one metric a line
void
sch_core_metrics (sch_core_t *self, FILE *f)
{
    const sch_stats_t *s = sch_core_stats (self);
    s_metric (f, "peers", "gauge", "Live peers.", s->peers);
    s_metric (f, "peers_banned", "gauge", "Live peers whose account is banned.",
              s->banned_peers);
    s_metric (f, "slots", "gauge", "Task slots of the live peers.", s->slots);
    s_metric (f, "slots_busy", "gauge", "Slots running a task.", s->busy_slots);
    s_metric (f, "queue_depth", "gauge", "Tasks waiting for a free slot.", s->queued);
    s_metric (f, "queued_bytes", "gauge", "Params and payloads of the queued tasks.",
              s->queued_bytes);
    s_metric (f, "parked", "gauge", "Tasks waiting for a gamer's balance.", s->parked);
    s_metric (f, "running", "gauge", "Tasks in flight on a peer (checks too).", s->running);
    s_metric (f, "validating", "gauge", "Results waiting for a quorum.", s->validating);
    s_metric (f, "settling", "gauge", "Tasks waiting for the ledger's ack.", s->settling);
    s_metric (f, "submitted_total", "counter", "Submits accepted for scheduling.", s->submitted);
    s_metric (f, "completed_total", "counter", "Results delivered after settlement.",
              s->completed);
    s_metric (f, "cached_total", "counter", "Results delivered from the cache.", s->cached);
    fprintf (f, "# HELP p2c2r_scheduler_failed_total Error replies, by code.\n"
                "# TYPE p2c2r_scheduler_failed_total counter\n");
    for (int i = 0; i < SCH_ERR_COUNT; i++)
        fprintf (f, "p2c2r_scheduler_failed_total{code=\"%s\"} %" PRIu64 "\n",
                 s_err_names [i], s->failed [i]);
    s_metric (f, "assigned_total", "counter", "Assignments sent (all attempts, checks too).",
              s->assigned);
    s_metric (f, "reassigned_total", "counter", "Attempts after the first.", s->reassigned);
    s_metric (f, "stale_results_total", "counter", "Results for no current attempt.",
              s->stale_results);
    s_metric (f, "dropped_total", "counter", "Queued tasks whose gamer's gateway died.",
              s->dropped);
    s_metric (f, "settle_sent_total", "counter", "Settlements sent (first ones).",
              s->settle_sent);
    s_metric (f, "settle_retries_total", "counter", "Settlements resent.", s->settle_retries);
    s_metric (f, "settle_refused_total", "counter", "Settlements the ledger refused.",
              s->settle_refused);
    s_metric (f, "bad_messages_total", "counter", "Malformed or unexpected inputs.",
              s->bad_messages);
    s_metric (f, "validation_checks_total", "counter", "Extra runs started to check results.",
              s->checks);
    s_metric (f, "validation_invalid_total", "counter", "Results that lost a validation.",
              s->invalid_results);
    s_metric (f, "bans_total", "counter", "Peer accounts banned.", s->bans);
    s_metric (f, "cache_hits_total", "counter", "Submits answered from the result cache.",
              sch_cache_hits (self->cache));
    s_metric (f, "cache_misses_total", "counter", "Submits the cache could not answer.",
              sch_cache_misses (self->cache));
    s_metric (f, "cache_entries", "gauge", "Results in the cache.",
              sch_cache_entries (self->cache));
    s_metric (f, "tasks_per_second", "gauge", "Tasks done per second, last window.",
              self->tasks_per_s);
    double ms [3];
    s_percentiles (self, ms);
    fprintf (f, "# HELP p2c2r_scheduler_latency_seconds Submit-to-result latency of the"
                " recent tasks, by quantile.\n# TYPE p2c2r_scheduler_latency_seconds gauge\n");
    for (int i = 0; i < 3; i++)
        fprintf (f, "p2c2r_scheduler_latency_seconds{quantile=\"0.%d\"} %.6f\n", s_pcts [i],
                 ms [i] / 1000);
    fprintf (f, "# HELP p2c2r_scheduler_alert_firing The server's own alerts: 1 firing.\n"
                "# TYPE p2c2r_scheduler_alert_firing gauge\n");
    for (int i = 0; i < SCH_ALERT_COUNT; i++) {
        const sch_alert_t *a = sch_alerts_get (self->alerts, (sch_alert_id_t) i);
        fprintf (f, "p2c2r_scheduler_alert_firing{alert=\"%s\"} %d\n", a->name, a->firing);
    }
    fprintf (f, "# HELP p2c2r_scheduler_alert_value What each alert's rule measured.\n"
                "# TYPE p2c2r_scheduler_alert_value gauge\n");
    for (int i = 0; i < SCH_ALERT_COUNT; i++) {
        const sch_alert_t *a = sch_alerts_get (self->alerts, (sch_alert_id_t) i);
        fprintf (f, "p2c2r_scheduler_alert_value{alert=\"%s\"} %.17g\n", a->name, a->value);
    }
}

//  --------------------------------------------------------------------------
//  Self-test

void
sch_stats_test (bool verbose)
{
    (void) verbose;
    P2C_CHECK (!strcmp (sch_err_name (SCH_ERR_NO_PEERS), "no_peers"));
    P2C_CHECK (!strcmp (sch_err_name (SCH_ERR_REJECTED), "rejected"));
    sch_selftest_t cap;
    sch_core_t *core = sch_selftest_core (&cap, NULL);
    //  the rate's first window opens at the first cron
    sch_stats_rate (core, 1000000);
    P2C_CHECK (core->rate_at_us == 1000000 && core->tasks_per_s == 0);
    sch_selftest_peer_up (core, "gw-p", 1, 4, "encryption", 11, 1000000);
    const char *ids [] = { "t1", "t2", "t3" };
    for (int i = 0; i < 3; i++) {
        sch_selftest_submit (core, "gw-g", ids [i], "encryption", 500, 1000000);
        sch_selftest_result (core, ids [i], "{}", 10, 1000000 + 1000 * (i + 1));
        sch_selftest_ack (core, ids [i], true, 1000000 + 2000 * (i + 1));
    }
    P2C_CHECK (core->latency_n == 3 && core->latency_us [0] == 2000 && core->latency_us [2] == 6000);
    //  3 tasks in 2 s
    sch_stats_rate (core, 3000000);
    P2C_CHECK (core->tasks_per_s > 1.49 && core->tasks_per_s < 1.51);
    const sch_stats_t *s = sch_core_stats (core);
    P2C_CHECK (s->peers == 1 && s->completed == 3 && s->submitted == 3 && s->slots == 4);
    char *json = sch_core_stats_json (core, 3000000);
    P2C_CHECK (json && strstr (json, "\"ref_replayed\":0") && strstr (json, "\"ref_joined\":0"));
    P2C_CHECK (json && strstr (json, "\"completed\":3") && strstr (json, "\"latency_p50_ms\":4.0")
               && strstr (json, "\"latency_p99_ms\":4.0") && strstr (json, "\"tasks_per_s\":1.5")
               && strstr (json, "\"failed_no_peers\":0"));
    P2C_CHECK (json && strstr (json, "\"peers_by_type\":{") && strstr (json, "\"encryption\":1")
               && strstr (json, "\"compression\":0") && strstr (json, "\"peers_by_region\":{\""));
    free (json);
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream (&text, &size);
    sch_core_metrics (core, f);
    fclose (f);
    P2C_CHECK (strstr (text, "\np2c2r_scheduler_completed_total 3\n")
               && strstr (text, "\np2c2r_scheduler_peers 1\n")
               && strstr (text, "p2c2r_scheduler_failed_total{code=\"no_peers\"} 0\n")
               && strstr (text, "p2c2r_scheduler_latency_seconds{quantile=\"0.99\"} 0.004000\n")
               && strstr (text, "p2c2r_scheduler_alert_firing{alert=\"peers_low\"} 0\n"));
    free (text);
    //  the status line: armed at the first call, then at each interval
    //  when something changed
    sch_stats_status (core, 3000000);
    P2C_CHECK (core->status_next_us == 3000000 + core->config.status_interval_ms * 1000);
    sch_stats_status (core, core->status_next_us);
    P2C_CHECK (!memcmp (&core->logged, &core->stats, sizeof core->stats));
    //  the alerts, evaluated by the cron: no ledger on the bus for longer
    //  than --alert-for-s fires server_down, shown in the figures
    sch_core_set_services (core, 1, 0, 1);
    int64_t t = 100000000;
    sch_core_cron (core, t);
    sch_core_cron (core, t + core->config.alerts.for_ms * 1000);
    P2C_CHECK (sch_alerts_get (sch_core_alerts (core), SCH_ALERT_SERVER_DOWN)->firing);
    json = sch_core_stats_json (core, t);
    P2C_CHECK (json && strstr (json, "\"detail\":\"ledger\"") && strstr (json, "\"state\":\"firing\""));
    free (json);
    sch_core_destroy (&core);
}
