/*  An account's own figures (see led_earnings.h). */
#include "led_earnings.h"
#include "led_store_int.h"
#include "led_fixture.h"
#include "led_settle.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <czmq.h>

//  One statement, so one snapshot. Earned counts every settled task the
//  account ran as a peer (validation runs the treasury paid too), less
//  what reversals took back; spent what its tasks cost it as a gamer.
//  "Today" is the UTC day of now (); each sum is an index scan over the
//  account's own rows (tasks_peer, tasks_gamer, reversals_peer,
//  payouts_account), never over the whole history.
static const char *s_sql =
    "SELECT a.kind, a.balance_pico,"
    "  (COALESCE ((SELECT SUM (t.peer_earning_pico) FROM tasks t"
    "              WHERE t.peer_account = a.id AND t.settled_at >= d.d0), 0)"
    "   - COALESCE ((SELECT SUM (r.amount_pico) FROM reversals r"
    "                WHERE r.peer_account = a.id AND r.reversed_at >= d.d0), 0))::bigint,"
    "  (COALESCE ((SELECT SUM (t.peer_earning_pico) FROM tasks t"
    "              WHERE t.peer_account = a.id), 0)"
    "   - COALESCE ((SELECT SUM (r.amount_pico) FROM reversals r"
    "                WHERE r.peer_account = a.id), 0))::bigint,"
    "  COALESCE ((SELECT SUM (t.gamer_charge_pico) FROM tasks t"
    "             WHERE t.gamer_account = a.id AND t.settled_at >= d.d0), 0)::bigint,"
    "  COALESCE ((SELECT SUM (t.gamer_charge_pico) FROM tasks t"
    "             WHERE t.gamer_account = a.id), 0)::bigint,"
    "  COALESCE ((SELECT SUM (p.amount_pico) FROM payouts p"
    "             WHERE p.account_id = a.id AND p.paid_tx IS NULL), 0)::bigint,"
    "  COALESCE (r.gamer_pico_per_hour, 0), COALESCE (r.peer_pico_per_hour, 0),"
    "  COALESCE (r.fee_bp, 0),"
    "  (SELECT COUNT (*) FROM tasks t WHERE t.peer_account = a.id AND t.settled_at >= d.d0)"
    "  + (SELECT COUNT (*) FROM tasks t WHERE t.gamer_account = a.id AND t.settled_at >= d.d0),"
    "  (SELECT COUNT (*) FROM tasks t WHERE t.peer_account = a.id)"
    "  + (SELECT COUNT (*) FROM tasks t WHERE t.gamer_account = a.id),"
    "  to_char (d.now AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    "  r.subsidy_pico_per_day,"
    "  COALESCE ((SELECT s.used_pico FROM subsidy_days s"
    "             WHERE s.day = (d.now AT TIME ZONE 'UTC')::DATE), 0)"
    "  FROM accounts a"
    "  CROSS JOIN (SELECT now () AS now,"
    "                     date_trunc ('day', now () AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS d0) d"
    "  LEFT JOIN LATERAL (SELECT gamer_pico_per_hour, peer_pico_per_hour, fee_bp,"
    "                            subsidy_pico_per_day FROM rates"
    "                      WHERE effective_at <= now () ORDER BY effective_at DESC LIMIT 1) r"
    "    ON true"
    " WHERE a.id = $1::bigint AND a.kind = $2";

led_earnings_status_t
led_earnings_read (led_store_t *store, int64_t id, const char *role, led_earnings_t *out)
{
    memset (out, 0, sizeof *out);
    if (!role || (strcmp (role, "peer") && strcmp (role, "gamer")) || id <= 0)
        return LED_EARNINGS_NOT_FOUND;
    if (!store->conn)
        return LED_EARNINGS_UNAVAILABLE;
    char num [32];
    snprintf (num, sizeof num, "%lld", (long long) id);
    const char *params [] = { num, role };
    PGresult *res = led_store_exec (store, "earnings", s_sql, 2, params, PGRES_TUPLES_OK);
    if (!res) {
        led_store_abort (store);
        return LED_EARNINGS_UNAVAILABLE;
    }
    if (PQntuples (res) != 1) {
        PQclear (res);
        return LED_EARNINGS_NOT_FOUND;
    }
    snprintf (out->role, sizeof out->role, "%s", PQgetvalue (res, 0, 0));
    out->balance = led_store_int64 (res, 0, 1);
    out->earned_today = led_store_int64 (res, 0, 2);
    out->earned_total = led_store_int64 (res, 0, 3);
    out->spent_today = led_store_int64 (res, 0, 4);
    out->spent_total = led_store_int64 (res, 0, 5);
    out->pending_payout = led_store_int64 (res, 0, 6);
    out->rates.gamer_per_hour = led_store_int64 (res, 0, 7);
    out->rates.peer_per_hour = led_store_int64 (res, 0, 8);
    out->rates.fee_bp = (int32_t) led_store_int64 (res, 0, 9);
    out->tasks_today = (uint64_t) led_store_int64 (res, 0, 10);
    out->tasks_total = (uint64_t) led_store_int64 (res, 0, 11);
    snprintf (out->as_of, sizeof out->as_of, "%s", PQgetvalue (res, 0, 12));
    out->payout_threshold = store->policy.payout_threshold_pico;
    bool limited = !PQgetisnull (res, 0, 13);
    int64_t used = led_store_int64 (res, 0, 14);
    out->subsidy_per_day = limited ? led_store_int64 (res, 0, 13) : -1;
    out->subsidy_left_today = !limited ? -1
                            : out->subsidy_per_day > used ? out->subsidy_per_day - used : 0;
    out->subsidy_spent = limited && out->subsidy_left_today == 0;
    out->peer_per_hour_in_force = led_earnings_peer_rate (&out->rates, out->subsidy_spent);
    PQclear (res);
    return LED_EARNINGS_OK;
}

int64_t
led_earnings_peer_rate (const p2c_rates_t *rates, bool subsidy_spent)
{
    if (!subsidy_spent)
        return rates->peer_per_hour;
    //  The cut of the settlement (006_subsidy_budget.sql): earning + fee
    //  never above the charge; for one billed hour
    p2c_split_t hour;
    p2c_money_split (rates, 3600000000ULL, &hour);
    int64_t most = hour.gamer_charge - hour.fee;
    return most < rates->peer_per_hour ? (most > 0 ? most : 0) : rates->peer_per_hour;
}

led_earnings_job_t *
led_earnings_job_new (uint64_t corr, int64_t account_id, const char *role, const char *reply_to)
{
    led_earnings_job_t *self = (led_earnings_job_t *) zmalloc (sizeof (led_earnings_job_t));
    self->corr = corr;
    self->account_id = account_id;
    self->role = p2c_strdup (role ? role : "");
    self->reply_to = p2c_strdup (reply_to ? reply_to : "");
    self->status = LED_EARNINGS_UNAVAILABLE;
    return self;
}

void
led_earnings_job_destroy (led_earnings_job_t **self_p)
{
    led_earnings_job_t *self = *self_p;
    if (!self)
        return;
    free (self->role);
    free (self->reply_to);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Self-test: figures of a peer and a gamer after settlements, a reversal
//  and a payout, each checked against the tables; an account of the other
//  kind, or unknown, is not found; without the database: unavailable.
//  Needs P2C2R_TEST_DB (led_fixture).

static void
s_settle (led_store_t *store, const char *task_id, int64_t gamer, int64_t peer, uint64_t billed)
{
    led_settle_t it;
    led_fixture_fill (&it, task_id, "encryption", gamer, peer, billed);
    P2C_CHECK (led_settle_batch (store, &it, 1) == 0 && it.status == LED_SETTLE_NEW);
    led_settle_clear (&it);
}

void
led_earnings_test (bool verbose)
{
    led_fixture_t *fx = led_fixture_new ("led_earnings_test", verbose);
    if (!fx)
        return;
    led_store_t *store = led_fixture_store (fx);
    if (!store) {
        led_fixture_destroy (&fx);
        return;
    }
    led_policy_t policy = { 0, 5 * P2C_PICO_PER_USD };
    led_store_set_policy (store, &policy);
    int64_t gamer = led_fixture_account (fx, "gamer", "earn-g");
    int64_t peer = led_fixture_account (fx, "peer", "earn-p");
    int64_t other = led_fixture_account (fx, "peer", "earn-other");

    //  Nothing yet: zeros, the default rates, the threshold, a time
    led_earnings_t e;
    P2C_CHECK (led_earnings_read (store, peer, "peer", &e) == LED_EARNINGS_OK);
    P2C_CHECK (!strcmp (e.role, "peer") && e.balance == 0 && e.earned_total == 0
               && e.earned_today == 0 && e.tasks_total == 0 && e.pending_payout == 0);
    P2C_CHECK (e.rates.gamer_per_hour == 10000000000LL && e.rates.peer_per_hour == 150000000000LL
               && e.rates.fee_bp == 1000 && e.payout_threshold == 5 * P2C_PICO_PER_USD);
    P2C_CHECK (strlen (e.as_of) == 20 && e.as_of [10] == 'T' && e.as_of [19] == 'Z');

    //  The gamer has money; two tasks for our peer, one for another
    char args [128];
    snprintf (args, sizeof args, "{\"account_id\":%lld,\"amount_pico\":%lld}", (long long) gamer,
              100 * P2C_PICO_PER_USD);
    P2C_CHECK (led_fixture_admin (fx, store, "credit", args) == LED_ADMIN_OK);
    s_settle (store, "earn-1", gamer, peer, 1000000);       //  one second: 41666667
    s_settle (store, "earn-2", gamer, peer, 12500);
    s_settle (store, "earn-3", gamer, other, 1000000);
    P2C_CHECK (led_earnings_read (store, peer, "peer", &e) == LED_EARNINGS_OK);
    P2C_CHECK (e.earned_total == 41666667 + 520833 && e.earned_today == e.earned_total
               && e.balance == e.earned_total && e.spent_total == 0 && e.tasks_total == 2
               && e.tasks_today == 2);
    char num [32];
    snprintf (num, sizeof num, "%lld", (long long) peer);
    P2C_CHECK (led_fixture_is (fx, "SELECT SUM (peer_earning_pico) FROM tasks"
                               " WHERE peer_account = $1::bigint", num, "42187500"));
    //  The gamer: what it spent, its balance after the top-up
    P2C_CHECK (led_earnings_read (store, gamer, "gamer", &e) == LED_EARNINGS_OK);
    char *spent = led_fixture_scalar (fx, "SELECT SUM (gamer_charge_pico) FROM tasks", NULL);
    P2C_CHECK (!strcmp (e.role, "gamer") && e.spent_total == strtoll (spent, NULL, 10)
               && e.spent_today == e.spent_total && e.earned_total == 0 && e.tasks_total == 3
               && e.balance == 100 * P2C_PICO_PER_USD - e.spent_total);
    free (spent);

    //  A reversal takes an earning back: earned is net of it
    led_settle_t rev;
    memset (&rev, 0, sizeof rev);
    rev.task_id = p2c_strdup ("earn-2");
    rev.task_type = p2c_strdup ("");
    rev.reason = p2c_strdup ("test");
    rev.reverse = true;
    P2C_CHECK (led_settle_batch (store, &rev, 1) == 0 && rev.status == LED_SETTLE_NEW);
    led_settle_clear (&rev);
    P2C_CHECK (led_earnings_read (store, peer, "peer", &e) == LED_EARNINGS_OK);
    P2C_CHECK (e.earned_total == 41666667 && e.earned_today == 41666667
               && e.balance == 41666667);

    //  A payout under the threshold is refused; at a lower threshold it
    //  moves the whole balance to pending
    snprintf (args, sizeof args, "{\"account_id\":%lld}", (long long) peer);
    P2C_CHECK (led_fixture_admin (fx, store, "payout-request", args) == LED_ADMIN_REFUSED);
    policy.payout_threshold_pico = 1000000;
    led_store_set_policy (store, &policy);
    P2C_CHECK (led_fixture_admin (fx, store, "payout-request", args) == LED_ADMIN_OK);
    P2C_CHECK (led_earnings_read (store, peer, "peer", &e) == LED_EARNINGS_OK);
    P2C_CHECK (e.balance == 0 && e.pending_payout == 41666667 && e.earned_total == 41666667
               && e.payout_threshold == 1000000);

    //  Only the account of the session's role: a peer id asked as a
    //  gamer, an unknown id, a system account, a bad role
    P2C_CHECK (led_earnings_read (store, peer, "gamer", &e) == LED_EARNINGS_NOT_FOUND);
    P2C_CHECK (led_earnings_read (store, 987654321, "peer", &e) == LED_EARNINGS_NOT_FOUND);
    P2C_CHECK (led_earnings_read (store, store->treasury_account, "peer", &e)
               == LED_EARNINGS_NOT_FOUND);
    P2C_CHECK (led_earnings_read (store, peer, "treasury", &e) == LED_EARNINGS_NOT_FOUND);
    P2C_CHECK (led_earnings_read (store, 0, "peer", &e) == LED_EARNINGS_NOT_FOUND);

    //  The subsidy: no limit by default, the peer rate in force is the
    //  table's; a budget of 0 is spent at once, and the rate in force is
    //  the gamer's less the fee ($0.01/h less 10%)
    P2C_CHECK (led_earnings_read (store, peer, "peer", &e) == LED_EARNINGS_OK);
    P2C_CHECK (e.subsidy_per_day == -1 && e.subsidy_left_today == -1 && !e.subsidy_spent
               && e.peer_per_hour_in_force == 150000000000LL);
    P2C_CHECK (led_fixture_admin (fx, store, "rates-set", "{\"gamer_pico_per_hour\":10000000000,"
                                  "\"peer_pico_per_hour\":150000000000,\"fee_bp\":1000,"
                                  "\"subsidy_pico_per_day\":\"0\"}") == LED_ADMIN_OK);
    P2C_CHECK (led_earnings_read (store, peer, "peer", &e) == LED_EARNINGS_OK);
    P2C_CHECK (e.subsidy_per_day == 0 && e.subsidy_left_today == 0 && e.subsidy_spent
               && e.peer_per_hour_in_force == 9000000000LL);
    P2C_CHECK (led_fixture_admin (fx, store, "rates-set", "{\"gamer_pico_per_hour\":10000000000,"
                                  "\"peer_pico_per_hour\":150000000000,\"fee_bp\":1000,"
                                  "\"subsidy_pico_per_day\":\"1000000000000000\"}")
               == LED_ADMIN_OK);
    P2C_CHECK (led_earnings_read (store, peer, "peer", &e) == LED_EARNINGS_OK);
    P2C_CHECK (e.subsidy_per_day == 1000000000000000LL && !e.subsidy_spent
               && e.subsidy_left_today > 0 && e.subsidy_left_today < e.subsidy_per_day
               && e.peer_per_hour_in_force == 150000000000LL);
    //  A peer rate below the cap stays
    p2c_rates_t low = { 10000000000LL, 5000000000LL, 1000 };
    P2C_CHECK (led_earnings_peer_rate (&low, true) == 5000000000LL);

    //  The job carries its request
    led_earnings_job_t *job = led_earnings_job_new (7, peer, "peer", "gw-1");
    P2C_CHECK (job && job->corr == 7 && !strcmp (job->reply_to, "gw-1")
               && job->status == LED_EARNINGS_UNAVAILABLE);
    led_earnings_job_destroy (&job);
    led_earnings_job_destroy (&job);
    P2C_CHECK (job == NULL);

    //  Without the database: unavailable
    led_store_disconnect (store);
    P2C_CHECK (led_earnings_read (store, peer, "peer", &e) == LED_EARNINGS_UNAVAILABLE);
    led_store_destroy (&store);
    led_fixture_destroy (&fx);
}
