/*  Gamer accounts in the scheduler core: their balance as the ledger last
    told it, the reserve of their tasks in flight, the tasks that wait for a
    balance, and the funds rule (issue 5): balance minus the reserve minus
    the most a new task may cost may not go under the floor. The fair
    queues of a gamer are sch_queues'. */
#include "sch_internal.h"
#include "p2c_log.h"
#include "p2c_test.h"

#include <inttypes.h>

void
sch_gamers_free (sch_gamer_t **gamer_p)
{
    sch_gamer_t *g = *gamer_p;
    zlistx_destroy (&g->parked);
    for (int i = 0; i < SCH_MAX_TYPES; i++)
        zlistx_destroy (&g->queue [i]);
    free (g);
    *gamer_p = NULL;
}

//  Gamers are their accounts; a session without an account (which the
//  gateways do not make) is a gamer of its own.
sch_gamer_t *
sch_gamers_require (sch_core_t *self, int64_t account, const char *gateway, uint64_t conn)
{
    char key [SCH_MAX_ID + 48];
    if (account > 0)
        snprintf (key, sizeof key, "a%" PRId64, account);
    else
        snprintf (key, sizeof key, "s%s/%" PRIu64, gateway, conn);
    sch_gamer_t *g = (sch_gamer_t *) zhashx_lookup (self->gamers, key);
    if (!g) {
        g = (sch_gamer_t *) zmalloc (sizeof (sch_gamer_t));
        g->account = account;
        snprintf (g->key, sizeof g->key, "%.31s", key);
        g->parked = zlistx_new ();
        zhashx_insert (self->gamers, key, g);
    }
    return g;
}

static void
s_send_balance_query (sch_core_t *self, int64_t account)
{
    P2c2r__BalanceQuery q = P2C2R__BALANCE_QUERY__INIT;
    q.n_account_ids = 1;
    q.account_ids = &account;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_BALANCE_QUERY;
    msg.balance_query = &q;
    sch_send (self, "ledger", &msg);
    self->stats.balance_queries++;
}

//  The funds rule on a known balance. True when the task may go on (its
//  most is then reserved); else it was answered.
static bool
s_funds_ok (sch_core_t *self, sch_task_t *task, int64_t now_us)
{
    sch_gamer_t *g = task->gamer;
    if (g->disabled) {
        sch_tasks_fail (self, task, SCH_ERR_INSUFFICIENT_FUNDS, "account disabled", now_us);
        return false;
    }
    int64_t most = sch_billing_most (task->deadline_ms, sch_type (task->type)->max_billed_us,
                                     self->config.gamer_rate_per_hour);
    if (g->balance_pico - g->reserve_pico - most < self->config.funds_floor_pico) {
        log_debug ("insufficient funds task=%s account=%" PRId64 " balance=%" PRId64
                   " reserve=%" PRId64 " most=%" PRId64, task->id, g->account,
                   g->balance_pico, g->reserve_pico, most);
        sch_tasks_fail (self, task, SCH_ERR_INSUFFICIENT_FUNDS, "balance too low", now_us);
        return false;
    }
    task->reserved_pico = most;
    g->reserve_pico += most;
    return true;
}

//  An unknown balance: the task waits (parked) while the ledger is asked,
//  unless too many wait already or the gamer has no account.
bool
sch_gamers_admit (sch_core_t *self, sch_task_t *task, int64_t now_us)
{
    sch_gamer_t *g = task->gamer;
    if (g->known)
        return s_funds_ok (self, task, now_us);
    if (g->account <= 0 || self->stats.parked >= self->config.park_max) {
        sch_tasks_fail (self, task, SCH_ERR_UNAVAILABLE, "balance unknown", now_us);
        return false;
    }
    //  ask the ledger and wait a little for the answer
    if (!g->queried || now_us - g->query_us >= self->config.balance_wait_ms * 1000) {
        s_send_balance_query (self, g->account);
        g->queried = true;
        g->query_us = now_us;
    }
    task->park_handle = zlistx_add_end (g->parked, task);
    sch_tasks_set_state (self, task, SCH_PARKED);
    sch_tasks_arm (self, task, now_us);
    return false;
}

//  Kept; the gamer's parked tasks go on (or are refused).
void
sch_gamers_balance (sch_core_t *self, const P2c2r__BalanceUpdate *bu, int64_t now_us)
{
    if (bu->account_id <= 0) {
        self->stats.bad_messages++;
        return;
    }
    char key [32];
    snprintf (key, sizeof key, "a%" PRId64, bu->account_id);
    sch_gamer_t *g = (sch_gamer_t *) zhashx_lookup (self->gamers, key);
    if (!g)
        g = sch_gamers_require (self, bu->account_id, "", 0);
    g->known = true;
    g->balance_pico = bu->balance_pico;
    g->disabled = bu->disabled;
    log_debug ("balance account=%" PRId64 " balance_pico=%" PRId64 " disabled=%d",
               bu->account_id, bu->balance_pico, bu->disabled);
    sch_task_t *task;
    while ((task = (sch_task_t *) zlistx_first (g->parked))) {
        zlistx_delete (g->parked, task->park_handle);
        task->park_handle = NULL;
        sch_tasks_set_state (self, task, SCH_QUEUED);   //  counted as queued until placed
        sch_heap_remove (self->timers, task);
        if (s_funds_ok (self, task, now_us))
            sch_tasks_start (self, task, now_us);
    }
}

//  --------------------------------------------------------------------------
//  Self-test: balance waits and the funds rule

void
sch_gamers_test (bool verbose)
{
    (void) verbose;
    sch_selftest_t cap;
    sch_core_config_t config;
    sch_core_config_default (&config);
    config.validation = SCH_VAL_NONE;
    config.cache_max_entries = 0;
    config.funds_check = true;
    config.gamer_rate_per_hour = 3600000000LL;      //  1 pico per us
    sch_core_t *core = sch_selftest_core (&cap, &config);
    //  one gamer per account; sessions without one are gamers of their own
    sch_gamer_t *g = sch_gamers_require (core, 7, "gw-g", 1);
    P2C_CHECK (g && sch_gamers_require (core, 7, "gw-h", 2) == g && !g->known);
    P2C_CHECK (sch_gamers_require (core, 0, "gw-g", 1) != sch_gamers_require (core, 0, "gw-g", 2));
    sch_selftest_peer_up (core, "gw-p", 1, 4, "encryption", 11, 0);
    //  an unknown balance: the task waits while the ledger is asked
    sch_selftest_submit (core, "gw-g", "t1", "encryption", 7, 0);
    sch_task_t *t1 = sch_selftest_task (core, "t1");
    P2C_CHECK (t1 && t1->state == SCH_PARKED && core->stats.parked == 1);
    P2C_CHECK (cap.last_case == P2C2R__INTERNAL__MSG_BALANCE_QUERY
               && !strcmp (cap.last_dest, "ledger") && core->stats.balance_queries == 1);
    //  the balance comes: it runs, its most reserved (30 s deadline, capped
    //  by the type's ceiling)
    int64_t most = sch_billing_most (t1->deadline_ms, sch_type (t1->type)->max_billed_us,
                                     config.gamer_rate_per_hour);
    sch_selftest_balance (core, 7, most + 5, false, 10);
    P2C_CHECK (t1->state == SCH_RUNNING && g->known && g->reserve_pico == most
               && t1->reserved_pico == most && core->stats.parked == 0);
    //  a second task would take the balance under the floor
    sch_selftest_submit (core, "gw-g", "t2", "encryption", 7, 20);
    P2C_CHECK (sch_selftest_task (core, "t2") == NULL && !cap.last_ok
               && !strcmp (cap.last_code, "insufficient_funds"));
    //  the first one's end frees its reserve
    sch_selftest_result (core, "t1", "{}", 10, 30);
    sch_selftest_ack (core, "t1", true, 40);
    P2C_CHECK (g->reserve_pico == 0 && core->stats.completed == 1);
    //  a disabled account gets nothing
    sch_selftest_balance (core, 7, most * 10, true, 50);
    sch_selftest_submit (core, "gw-g", "t3", "encryption", 7, 60);
    P2C_CHECK (!cap.last_ok && !strcmp (cap.last_code, "insufficient_funds"));
    //  no account, no balance to wait for
    sch_selftest_submit (core, "gw-g", "t4", "encryption", 0, 70);
    P2C_CHECK (!cap.last_ok && !strcmp (cap.last_code, "unavailable"));
    //  a balance never told: the waiting task is answered after the wait
    sch_selftest_submit (core, "gw-g", "t5", "encryption", 8, 80);
    P2C_CHECK (sch_selftest_task (core, "t5")->state == SCH_PARKED);
    sch_core_cron (core, 80 + config.balance_wait_ms * 1000);
    P2C_CHECK (sch_selftest_task (core, "t5") == NULL && !strcmp (cap.last_code, "unavailable"));
    //  a bad balance update is counted and dropped
    sch_selftest_balance (core, 0, 1, false, 90);
    P2C_CHECK (core->stats.bad_messages == 1);
    sch_core_destroy (&core);
}
