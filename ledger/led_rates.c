/*  The rates settlement is computed at (see led_rates.h). */
#include "led_rates.h"
#include "led_store_int.h"
#include "led_fixture.h"
#include "led_settle.h"
#include "p2c_test.h"

#include <czmq.h>

bool
led_rates_seed (led_store_t *self)
{
    //  The rate flags seed an empty rates table; later changes go through
    //  `p2c2r-ctl rates set`. The lock makes two starting ledgers seed once.
    char g [32], p [32], f [32];
    snprintf (g, sizeof g, "%lld", (long long) self->rates.gamer_per_hour);
    snprintf (p, sizeof p, "%lld", (long long) self->rates.peer_per_hour);
    snprintf (f, sizeof f, "%d", (int) self->rates.fee_bp);
    const char *rp [] = { g, p, f };
    bool seeded = led_store_command (self, "rates begin", "BEGIN", 0, NULL)
        && led_store_command (self, "rates lock", "LOCK TABLE rates IN SHARE ROW EXCLUSIVE MODE",
                              0, NULL)
        && led_store_command (self, "rates seed",
                              "INSERT INTO rates (effective_at, gamer_pico_per_hour,"
                              " peer_pico_per_hour, fee_bp) SELECT now (), $1::bigint,"
                              " $2::bigint, $3::int WHERE NOT EXISTS (SELECT 1 FROM rates)",
                              3, rp)
        && led_store_command (self, "rates commit", "COMMIT", 0, NULL);
    if (!seeded)
        led_store_abort (self);
    return seeded;
}

bool
led_rates_set (led_admin_t *self)
{
    led_store_t *store = led_admin_store (self);
    int64_t gamer = led_admin_int (self, "gamer_pico_per_hour");
    int64_t peer = led_admin_int (self, "peer_pico_per_hour");
    int64_t fee = led_admin_int (self, "fee_bp");
    const char *from = led_admin_str (self, "effective_at");
    //  the treasury's subsidy budget per UTC day (issue 14): digits, as an
    //  optional whole number; absent: no limit
    const char *subsidy = led_admin_str (self, "subsidy_pico_per_day");
    if (subsidy && (!*subsidy || strspn (subsidy, "0123456789") != strlen (subsidy)
                    || strlen (subsidy) > 18))
        return led_admin_refuse (self, "bad_request", "subsidy_pico_per_day must be digits,"
                                 " a whole number from 0 to 999999999999999999");
    char g [32], p [32], f [32];
    snprintf (g, sizeof g, "%lld", (long long) gamer);
    snprintf (p, sizeof p, "%lld", (long long) peer);
    snprintf (f, sizeof f, "%lld", (long long) fee);
    if (from) {
        const char *params [] = { from };
        PGresult *res = led_store_exec (store, "rates when",
                                        "SELECT $1::timestamptz < clock_timestamp ()", 1, params,
                                        PGRES_TUPLES_OK);
        if (!res)
            return led_admin_refuse (self, "bad_request", "effective_at is not a timestamp");
        bool past = !strcmp (PQgetvalue (res, 0, 0), "t");
        PQclear (res);
        if (past)
            return led_admin_refuse (self, "bad_request", "effective_at is in the past: rates"
                                     " never change for tasks already settled");
    }
    //  Settlements in progress finish first and later ones wait for our
    //  COMMIT; "now" is taken after the lock, so a batch that started
    //  before it (now () earlier) keeps the old rates and one that starts
    //  after it sees ours
    if (!led_store_command (store, "rates lock", "LOCK TABLE rates IN SHARE ROW EXCLUSIVE MODE",
                            0, NULL))
        return led_admin_failed (self);
    const char *params [] = { from, g, p, f, subsidy };
    PGresult *res = led_store_exec (store, "rates set",
                                    "INSERT INTO rates (effective_at, gamer_pico_per_hour,"
                                    " peer_pico_per_hour, fee_bp, subsidy_pico_per_day)"
                                    " VALUES (COALESCE ($1::timestamptz, clock_timestamp ()),"
                                    " $2::bigint, $3::bigint, $4::int, $5::bigint)"
                                    " RETURNING id, effective_at",
                                    5, params, PGRES_TUPLES_OK);
    if (!res)
        return led_admin_failed (self);
    led_admin_set_int (self, "id", led_store_int64 (res, 0, 0));
    json_object_set_new (led_admin_result (self), "effective_at",
                         json_string (PQgetvalue (res, 0, 1)));
    PQclear (res);
    return true;
}

//  --------------------------------------------------------------------------
//  Self-test: seeded once, set from now or later, never for the past.
//  Needs P2C2R_TEST_DB (led_fixture).

void
led_rates_test (bool verbose)
{
    led_fixture_t *fx = led_fixture_new ("led_rates_test", verbose);
    if (!fx)
        return;
    //  The first store seeds its rates; another, with other rates, does not
    p2c_rates_t mine = { 20000000000LL, 170000000000LL, 500 };
    led_store_t *store = led_store_new (led_fixture_conninfo (fx), led_fixture_schema (fx),
                                        led_store_test_sql_dir (), &mine);
    P2C_CHECK (store && led_store_connect (store) == 0);
    if (!store || !led_store_connected (store)) {
        led_store_destroy (&store);
        led_fixture_destroy (&fx);
        return;
    }
    led_store_t *other = led_fixture_store (fx);
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM rates", NULL, "1"));
    P2C_CHECK (led_fixture_is (fx, "SELECT gamer_pico_per_hour || ' ' || peer_pico_per_hour"
                               " || ' ' || fee_bp FROM rates", NULL,
                               "20000000000 170000000000 500"));
    P2C_CHECK (other && led_rates_seed (other));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM rates", NULL, "1"));

    //  Never in the past, never beyond the bounds, a time must be one
    const char *set = "{\"gamer_pico_per_hour\":1,\"peer_pico_per_hour\":1,\"fee_bp\":%s%s}";
    char args [256];
    snprintf (args, sizeof args, set, "1", ",\"effective_at\":\"2000-01-01\"");
    P2C_CHECK (led_fixture_admin (fx, store, "rates-set", args) == LED_ADMIN_REFUSED
               && strstr (led_fixture_message (fx), "in the past"));
    snprintf (args, sizeof args, set, "10001", "");
    P2C_CHECK (led_fixture_admin (fx, store, "rates-set", args) == LED_ADMIN_REFUSED);
    snprintf (args, sizeof args, set, "1", ",\"effective_at\":\"not a time\"");
    P2C_CHECK (led_fixture_admin (fx, store, "rates-set", args) == LED_ADMIN_REFUSED
               && !strcmp (led_fixture_message (fx), "effective_at is not a timestamp"));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM rates", NULL, "1"));

    //  Later rates wait for their time: a settlement now keeps the ones in force
    snprintf (args, sizeof args, set, "1", ",\"effective_at\":\"2999-01-01T00:00:00Z\"");
    P2C_CHECK (led_fixture_admin (fx, store, "rates-set", args) == LED_ADMIN_OK
               && strstr (led_fixture_result (fx), "\"effective_at\":\"2999-01-01"));
    int64_t gamer = led_fixture_account (fx, "gamer", "g");
    int64_t peer = led_fixture_account (fx, "peer", "p");
    led_settle_t it;
    led_fixture_fill (&it, "r-1", "encryption", gamer, peer, 3600000);
    p2c_split_t want;
    p2c_money_split (&mine, it.billed_us, &want);
    P2C_CHECK (led_settle_batch (store, &it, 1) == 0 && it.status == LED_SETTLE_NEW
               && !memcmp (&want, &it.split, sizeof want));
    led_settle_clear (&it);
    //  Rates from now: the next settlement, also another store's, uses them
    snprintf (args, sizeof args, "{\"gamer_pico_per_hour\":33333333333,"
              "\"peer_pico_per_hour\":77777777777,\"fee_bp\":1234}");
    P2C_CHECK (led_fixture_admin (fx, store, "rates-set", args) == LED_ADMIN_OK);
    p2c_rates_t now_rates = { 33333333333LL, 77777777777LL, 1234 };
    p2c_money_split (&now_rates, 3600000, &want);
    led_fixture_fill (&it, "r-2", "encryption", gamer, peer, 3600000);
    P2C_CHECK (other && led_settle_batch (other, &it, 1) == 0 && it.status == LED_SETTLE_NEW
               && !memcmp (&want, &it.split, sizeof want));
    led_settle_clear (&it);
    P2C_CHECK (led_fixture_is (fx, "SELECT count (DISTINCT rate_id) FROM tasks", NULL, "2"));

    //  A subsidy budget (issue 14): what the treasury adds is granted in
    //  task order while the day's budget lasts; past it a peer earns the
    //  charge less the fee, a treasury-paid run nothing; every row balances
    snprintf (args, sizeof args, "{\"subsidy_pico_per_day\":\"12x\",\"gamer_pico_per_hour\":1,"
              "\"peer_pico_per_hour\":1,\"fee_bp\":1}");
    P2C_CHECK (led_fixture_admin (fx, store, "rates-set", args) == LED_ADMIN_REFUSED);
    char *used = led_fixture_scalar (fx, "SELECT used_pico FROM subsidy_days", NULL);
    P2C_CHECK (used && *used);
    //  room for one task's subsidy and a part of the next one's
    int64_t sub1 = want.peer_earning + want.fee - want.gamer_charge;
    int64_t budget = (used ? strtoll (used, NULL, 10) : 0) + sub1 + sub1 / 4;
    free (used);
    snprintf (args, sizeof args, "{\"gamer_pico_per_hour\":33333333333,"
              "\"peer_pico_per_hour\":77777777777,\"fee_bp\":1234,"
              "\"subsidy_pico_per_day\":\"%lld\"}", (long long) budget);
    P2C_CHECK (led_fixture_admin (fx, store, "rates-set", args) == LED_ADMIN_OK);
    led_settle_t b [4];
    led_fixture_fill (&b [0], "s-1", "encryption", gamer, peer, 3600000);
    led_fixture_fill (&b [1], "s-2", "encryption", gamer, peer, 3600000);
    led_fixture_fill (&b [2], "s-3", "encryption", gamer, peer, 3600000);
    led_fixture_fill (&b [3], "s-4#c1", "encryption", 0, peer, 3600000);
    P2C_CHECK (led_settle_batch (store, b, 4) == 0);
    for (int i = 0; i < 4; i++) {
        P2C_CHECK (b [i].status == LED_SETTLE_NEW);
        P2C_CHECK (b [i].split.gamer_charge == b [i].split.peer_earning + b [i].split.fee
                                               + b [i].split.treasury);
    }
    P2C_CHECK (!memcmp (&want, &b [0].split, sizeof want));        //  granted whole
    P2C_CHECK (b [1].split.peer_earning == want.peer_earning - (sub1 - sub1 / 4)
               && b [1].split.gamer_charge == want.gamer_charge);   //  granted a quarter
    P2C_CHECK (b [2].split.peer_earning == want.gamer_charge - want.fee
               && b [2].split.treasury == 0);                       //  past the budget
    P2C_CHECK (b [3].split.peer_earning == 0 && b [3].split.gamer_charge == 0);
    char bud [32];
    snprintf (bud, sizeof bud, "%lld", (long long) budget);
    P2C_CHECK (led_fixture_is (fx, "SELECT used_pico FROM subsidy_days", NULL, bud));
    char cut [32];
    snprintf (cut, sizeof cut, "%lld", (long long) ((sub1 - sub1 / 4) + sub1
                                                    + want.peer_earning));
    P2C_CHECK (led_fixture_is (fx, "SELECT sum (subsidy_cut_pico) FROM tasks WHERE task_id"
                               " LIKE 's-%'", NULL, cut));
    //  a replay answers the stored, cut amounts
    led_settle_t again;
    led_fixture_fill (&again, "s-3", "encryption", gamer, peer, 3600000);
    P2C_CHECK (led_settle_batch (other, &again, 1) == 0 && again.status == LED_SETTLE_REPLAY
               && !memcmp (&again.split, &b [2].split, sizeof want));
    led_settle_clear (&again);
    for (int i = 0; i < 4; i++)
        led_settle_clear (&b [i]);
    led_store_destroy (&store);
    led_store_destroy (&other);
    led_fixture_destroy (&fx);
}
