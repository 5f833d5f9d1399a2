/*  The ledger's money summary (see led_money.h). */
#define P2C_LOG_COMPONENT "store"
#include "led_money.h"
#include "led_store_int.h"
#include "led_fixture.h"
#include "led_settle.h"
#include "p2c_log.h"
#include "p2c_test.h"

#include <czmq.h>

const char *const led_money_names [LED_MONEY_KINDS] = {
    "spent", "earned", "fee", "treasury", "subsidy"
};

//  One statement, one snapshot. The USD text is made the way p2c2r-ctl
//  makes it (NUMERIC times 1e-12: twelve decimals), so the two agree to
//  the character and neither is bounded by int64 (9.2 million dollars).
//  "Today" is the UTC day of now (), as in ctl revenue --since.
#define S_USD(x) "((" x ") * 0.000000000001)::text"
static const char *s_sql =
    "WITH d AS (SELECT (now () AT TIME ZONE 'UTC')::DATE AS today),"
    " m AS (SELECT COALESCE (SUM (x.tasks) FILTER (WHERE x.day = d.today), 0) AS n_d,"
    "              COALESCE (SUM (x.tasks), 0) AS n_t,"
    "              COALESCE (SUM (x.charge_pico) FILTER (WHERE x.day = d.today), 0) AS ch_d,"
    "              COALESCE (SUM (x.charge_pico), 0) AS ch_t,"
    "              COALESCE (SUM (x.earning_pico) FILTER (WHERE x.day = d.today), 0) AS ea_d,"
    "              COALESCE (SUM (x.earning_pico), 0) AS ea_t,"
    "              COALESCE (SUM (x.fee_pico) FILTER (WHERE x.day = d.today), 0) AS fe_d,"
    "              COALESCE (SUM (x.fee_pico), 0) AS fe_t,"
    "              COALESCE (SUM (x.treasury_pico) FILTER (WHERE x.day = d.today), 0) AS tr_d,"
    "              COALESCE (SUM (x.treasury_pico), 0) AS tr_t"
    "         FROM d LEFT JOIN money_days x ON true GROUP BY d.today),"
    " s AS (SELECT COALESCE (SUM (y.used_pico) FILTER (WHERE y.day = d.today), 0) AS su_d,"
    "              COALESCE (SUM (y.used_pico), 0) AS su_t"
    "         FROM d LEFT JOIN subsidy_days y ON true GROUP BY d.today)"
    " SELECT d.today::text, m.n_d, m.n_t,"
    "        " S_USD ("m.ch_d") ", " S_USD ("m.ch_t") ", " S_USD ("m.ea_d") ", "
    S_USD ("m.ea_t") ","
    "        " S_USD ("m.fe_d") ", " S_USD ("m.fe_t") ", " S_USD ("m.tr_d") ", "
    S_USD ("m.tr_t") ","
    "        " S_USD ("s.su_d") ", " S_USD ("s.su_t")
    "   FROM d, m, s";

//  Copies a decimal from the database; false when it is not one or too long
static bool
s_decimal (char *dest, const char *text)
{
    size_t len = strlen (text);
    if (len == 0 || len >= LED_MONEY_TEXT
        || strspn (text + (*text == '-'), "0123456789.") != len - (*text == '-'))
        return false;
    memcpy (dest, text, len + 1);
    return true;
}

void
led_money_read (led_store_t *store, led_money_t *out)
{
    memset (out, 0, sizeof *out);
    if (!store->conn)
        return;
    PGresult *res = led_store_exec (store, "money", s_sql, 0, NULL, PGRES_TUPLES_OK);
    if (!res) {
        led_store_abort (store);
        return;
    }
    bool ok = PQntuples (res) == 1 && PQnfields (res) == 3 + 2 * LED_MONEY_KINDS;
    if (ok) {
        snprintf (out->day, sizeof out->day, "%s", PQgetvalue (res, 0, 0));
        out->tasks_today = led_store_int64 (res, 0, 1);
        out->tasks_total = led_store_int64 (res, 0, 2);
        for (int k = 0; k < LED_MONEY_KINDS && ok; k++)
            ok = s_decimal (out->today [k], PQgetvalue (res, 0, 3 + 2 * k))
              && s_decimal (out->total [k], PQgetvalue (res, 0, 4 + 2 * k));
    }
    if (!ok)
        log_warn ("money summary unreadable");
    out->ok = ok;
    PQclear (res);
}

void
led_money_json (const led_money_t *self, json_t *stats)
{
    if (!self || !self->ok || !stats)
        return;
    char key [32];
    for (int k = 0; k < LED_MONEY_KINDS; k++) {
        snprintf (key, sizeof key, "%s_today", led_money_names [k]);
        json_object_set_new (stats, key, json_string (self->today [k]));
        snprintf (key, sizeof key, "%s_total", led_money_names [k]);
        json_object_set_new (stats, key, json_string (self->total [k]));
    }
    json_object_set_new (stats, "money_tasks_today", json_integer (self->tasks_today));
    json_object_set_new (stats, "money_tasks_total", json_integer (self->tasks_total));
    json_object_set_new (stats, "money_day", json_string (self->day));
}

//  --------------------------------------------------------------------------
//  Self-test: zeros on a fresh schema; after settlements (one of them on an
//  earlier day, written as it would have been then) the figures equal the
//  sums over tasks and subsidy_days, to the character, today and in all;
//  without the database: not ok. Needs P2C2R_TEST_DB (led_fixture).

static void
s_settle (led_store_t *store, const char *task_id, int64_t gamer, int64_t peer, uint64_t billed)
{
    led_settle_t it;
    led_fixture_fill (&it, task_id, "encryption", gamer, peer, billed);
    P2C_CHECK (led_settle_batch (store, &it, 1) == 0 && it.status == LED_SETTLE_NEW);
    led_settle_clear (&it);
}

//  A figure equals what sql says
static bool
s_equals (led_fixture_t *fx, const char *have, const char *sql)
{
    char *want = led_fixture_scalar (fx, sql, NULL);
    bool same = want && !strcmp (have, want);
    if (!same)
        fprintf (stderr, "led_money: have %s, the tables say %s (%s)\n", have,
                 want ? want : "nothing", sql);
    free (want);
    return same;
}

void
led_money_test (bool verbose)
{
    led_fixture_t *fx = led_fixture_new ("led_money_test", verbose);
    if (!fx)
        return;
    led_store_t *store = led_fixture_store (fx);
    if (!store) {
        led_fixture_destroy (&fx);
        return;
    }
    led_money_t m;
    led_money_read (store, &m);
    P2C_CHECK (m.ok && m.tasks_total == 0 && m.tasks_today == 0 && strlen (m.day) == 10);
    for (int k = 0; k < LED_MONEY_KINDS; k++)
        P2C_CHECK (!strcmp (m.today [k], "0.000000000000")
                   && !strcmp (m.total [k], "0.000000000000"));

    int64_t gamer = led_fixture_account (fx, "gamer", "money-g");
    int64_t peer = led_fixture_account (fx, "peer", "money-p");
    char args [128];
    snprintf (args, sizeof args, "{\"account_id\":%lld,\"amount_pico\":%lld}", (long long) gamer,
              100 * P2C_PICO_PER_USD);
    P2C_CHECK (led_fixture_admin (fx, store, "credit", args) == LED_ADMIN_OK);
    //  Yesterday's task, written as settlement wrote it then (the trigger
    //  files it under its settled_at): counted in all, not today
    s_settle (store, "money-0", gamer, peer, 5000000);
    char *moved = led_fixture_scalar (fx,
        "WITH t AS (SELECT * FROM tasks WHERE task_id = 'money-0'),"
        " a AS (UPDATE money_days m SET tasks = m.tasks - 1,"
        "        charge_pico = m.charge_pico - t.gamer_charge_pico,"
        "        earning_pico = m.earning_pico - t.peer_earning_pico,"
        "        fee_pico = m.fee_pico - t.fee_pico, treasury_pico = m.treasury_pico - t.treasury_pico"
        "        FROM t WHERE m.day = (t.settled_at AT TIME ZONE 'UTC')::DATE RETURNING 1),"
        " b AS (INSERT INTO money_days SELECT (t.settled_at AT TIME ZONE 'UTC')::DATE - 1, 1,"
        "        t.gamer_charge_pico, t.peer_earning_pico, t.fee_pico, t.treasury_pico FROM t"
        "        RETURNING 1)"
        " SELECT (SELECT count (*) FROM a) + (SELECT count (*) FROM b)", NULL);
    P2C_CHECK (moved && !strcmp (moved, "2"));
    free (moved);
    s_settle (store, "money-1", gamer, peer, 1000000);
    s_settle (store, "money-2", gamer, peer, 12500);
    led_money_read (store, &m);
    P2C_CHECK (m.ok && m.tasks_total == 3 && m.tasks_today == 2);
    const char *cols [] = { "gamer_charge_pico", "peer_earning_pico", "fee_pico",
                            "treasury_pico" };
    char sql [256];
    for (int k = 0; k < 4; k++) {
        snprintf (sql, sizeof sql, "SELECT (COALESCE (SUM (%s), 0)::NUMERIC"
                  " * 0.000000000001)::text FROM tasks", cols [k]);
        P2C_CHECK (s_equals (fx, m.total [k], sql));
        snprintf (sql, sizeof sql, "SELECT (COALESCE (SUM (%s), 0)::NUMERIC"
                  " * 0.000000000001)::text FROM tasks WHERE task_id <> 'money-0'", cols [k]);
        P2C_CHECK (s_equals (fx, m.today [k], sql));
    }
    //  one second and 12.5 ms at $0.01/h, fee 10%, each rounded half up;
    //  the subsidy is what the treasury added, as subsidy_days counts it
    P2C_CHECK (strcmp (m.today [0], m.total [0]) && !strcmp (m.today [2], "0.000000281250"));
    P2C_CHECK (s_equals (fx, m.total [4], "SELECT (SUM (used_pico) * 0.000000000001)::text"
                                          " FROM subsidy_days"));
    P2C_CHECK (strcmp (m.total [4], "0.000000000000"));

    //  The stats' fields
    json_t *stats = json_object ();
    led_money_json (&m, stats);
    P2C_CHECK (!strcmp (json_string_value (json_object_get (stats, "earned_total")), m.total [1])
               && json_integer_value (json_object_get (stats, "money_tasks_today")) == 2
               && json_is_string (json_object_get (stats, "subsidy_today")));
    json_decref (stats);

    //  The per-day table holds what the tasks hold
    P2C_CHECK (led_fixture_is (fx, "SELECT (SELECT SUM (charge_pico) FROM money_days)"
                               " = (SELECT SUM (gamer_charge_pico) FROM tasks)", NULL, "t"));

    //  A bad figure from the database is refused
    char buf [LED_MONEY_TEXT];
    P2C_CHECK (s_decimal (buf, "-1.5") && !s_decimal (buf, "") && !s_decimal (buf, "1e5")
               && !s_decimal (buf, "12345678901234567890123456789012345678901234567890"));

    //  Without the database: not ok, and nothing goes into the stats
    led_store_disconnect (store);
    led_money_read (store, &m);
    P2C_CHECK (!m.ok);
    stats = json_object ();
    led_money_json (&m, stats);
    P2C_CHECK (json_object_size (stats) == 0);
    json_decref (stats);
    led_store_destroy (&store);
    led_fixture_destroy (&fx);
}
