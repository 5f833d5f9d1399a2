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
    "unknown_task_type", "insufficient_funds", "rejected"
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

//  Percentiles of the recent submit-to-result latencies, into o
static void
s_latencies (sch_core_t *self, json_t *o)
{
    size_t n = self->latency_n < SCH_LATENCIES ? (size_t) self->latency_n : SCH_LATENCIES;
    uint32_t *sorted = (uint32_t *) p2c_malloc ((n ? n : 1) * sizeof (uint32_t));
    memcpy (sorted, self->latency_us, n * sizeof (uint32_t));
    qsort (sorted, n, sizeof (uint32_t), s_cmp_u32);
    const int pcts [] = { 50, 90, 99 };
    for (int i = 0; i < 3; i++) {
        char name [32];
        snprintf (name, sizeof name, "latency_p%d_ms", pcts [i]);
        double v = n ? sorted [(n - 1) * pcts [i] / 100] / 1000.0 : 0;
        json_object_set_new (o, name, json_real (round (v * 1000) / 1000));
    }
    free (sorted);
}

//  One flat object of every figure; a long list of names, one a line
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
    SET_INT ("assigned", s->assigned);
    SET_INT ("reassigned", s->reassigned);
    SET_INT ("stale_results", s->stale_results);
    SET_INT ("dropped", s->dropped);
    SET_INT ("settle_retries", s->settle_retries);
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
    char *text = json_dumps (o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref (o);
    if (!text)
        p2c_oom ("scheduler stats");
    return text;
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
    P2C_CHECK (json && strstr (json, "\"completed\":3") && strstr (json, "\"latency_p50_ms\":4.0")
               && strstr (json, "\"latency_p99_ms\":4.0") && strstr (json, "\"tasks_per_s\":1.5")
               && strstr (json, "\"failed_no_peers\":0"));
    free (json);
    //  the status line: armed at the first call, then at each interval
    //  when something changed
    sch_stats_status (core, 3000000);
    P2C_CHECK (core->status_next_us == 3000000 + core->config.status_interval_ms * 1000);
    sch_stats_status (core, core->status_next_us);
    P2C_CHECK (!memcmp (&core->logged, &core->stats, sizeof core->stats));
    sch_core_destroy (&core);
}
