/*  Peers' payouts (see led_payouts.h). Each command runs inside the
    transaction led_admin_run opened, with its arguments checked by the
    command table. */
#include "led_payouts.h"
#include "led_store_int.h"
#include "led_fixture.h"
#include "p2c_test.h"

#include <czmq.h>

bool
led_payouts_request (led_admin_t *self)
{
    led_store_t *store = led_admin_store (self);
    int64_t id = led_admin_int (self, "account_id");
    char num [32];
    snprintf (num, sizeof num, "%lld", (long long) id);
    const char *params [] = { num };
    //  Locked: a settlement crediting the peer meanwhile waits for us
    PGresult *res = led_store_exec (store, "payout account",
                                    "SELECT kind, balance_pico FROM accounts WHERE id = $1::bigint"
                                    " FOR UPDATE", 1, params, PGRES_TUPLES_OK);
    if (!res)
        return led_admin_failed (self);
    bool peer = PQntuples (res) == 1 && !strcmp (PQgetvalue (res, 0, 0), "peer");
    int64_t balance = peer ? led_store_int64 (res, 0, 1) : 0;
    PQclear (res);
    if (!peer)
        return led_admin_refuse (self, "not_found", "no peer account with that id");
    if (balance <= 0 || balance < store->policy.payout_threshold_pico) {
        char text [200], have [32], need [32];
        snprintf (text, sizeof text, "the payable balance %s USD is under the threshold %s USD",
                  p2c_money_format (balance, have, sizeof have),
                  p2c_money_format (store->policy.payout_threshold_pico, need, sizeof need));
        return led_admin_refuse (self, "below_threshold", text);
    }
    int64_t tx = 0;
    if (!led_store_transfer (store, "payout", id, store->payouts_account, balance,
                             "payout requested", &tx))
        return led_admin_failed (self);
    char amount [32], txn [32];
    snprintf (amount, sizeof amount, "%lld", (long long) balance);
    snprintf (txn, sizeof txn, "%lld", (long long) tx);
    const char *pp [] = { num, amount, txn };
    res = led_store_exec (store, "payout insert",
                          "INSERT INTO payouts (account_id, amount_pico, request_tx)"
                          " VALUES ($1::bigint, $2::bigint, $3::bigint) RETURNING id",
                          3, pp, PGRES_TUPLES_OK);
    if (!res)
        return led_admin_failed (self);
    led_admin_set_int (self, "payout_id", led_store_int64 (res, 0, 0));
    PQclear (res);
    led_admin_set_int (self, "account_id", id);
    led_admin_set_int (self, "amount_pico", balance);
    return true;
}

bool
led_payouts_mark_paid (led_admin_t *self)
{
    led_store_t *store = led_admin_store (self);
    int64_t id = led_admin_int (self, "payout_id");
    const char *reference = led_admin_str (self, "reference");
    char num [32];
    snprintf (num, sizeof num, "%lld", (long long) id);
    const char *params [] = { num };
    PGresult *res = led_store_exec (store, "payout find",
                                    "SELECT amount_pico, paid_tx IS NOT NULL FROM payouts"
                                    " WHERE id = $1::bigint FOR UPDATE", 1, params,
                                    PGRES_TUPLES_OK);
    if (!res)
        return led_admin_failed (self);
    bool found = PQntuples (res) == 1;
    bool paid = found && !strcmp (PQgetvalue (res, 0, 1), "t");
    int64_t amount = found ? led_store_int64 (res, 0, 0) : 0;
    PQclear (res);
    if (!found)
        return led_admin_refuse (self, "not_found", "no payout with that id");
    if (paid)
        return led_admin_refuse (self, "already_paid", "that payout is marked paid already");
    int64_t tx = 0;
    char memo [64];
    snprintf (memo, sizeof memo, "payout %lld paid", (long long) id);
    if (!led_store_transfer (store, "payout", store->payouts_account, store->external_account,
                             amount, memo, &tx))
        return led_admin_failed (self);
    char txn [32];
    snprintf (txn, sizeof txn, "%lld", (long long) tx);
    const char *pp [] = { num, txn, reference };
    if (!led_store_command (store, "payout paid",
                            "UPDATE payouts SET paid_tx = $2::bigint, paid_at = now (),"
                            " reference = $3 WHERE id = $1::bigint", 3, pp))
        return led_admin_failed (self);
    led_admin_set_int (self, "payout_id", id);
    led_admin_set_int (self, "amount_pico", amount);
    led_admin_set_int (self, "tx_id", tx);
    return true;
}

//  --------------------------------------------------------------------------
//  Self-test: the threshold, then the whole balance moves, once; marked
//  paid once. Needs P2C2R_TEST_DB (led_fixture).

void
led_payouts_test (bool verbose)
{
    led_fixture_t *fx = led_fixture_new ("led_payouts_test", verbose);
    if (!fx)
        return;
    led_store_t *store = led_fixture_store (fx);
    if (!store) {
        led_fixture_destroy (&fx);
        return;
    }
    int64_t gamer = led_fixture_account (fx, "gamer", "player-7");
    int64_t peer = led_fixture_account (fx, "peer", "player-7");
    //  The peer earns something
    led_settle_t items [3];
    for (int i = 0; i < 3; i++) {
        char id [32];
        snprintf (id, sizeof id, "p-%d", i);
        led_fixture_fill (&items [i], id, "encryption", gamer, peer, 5000000);
    }
    P2C_CHECK (led_settle_batch (store, items, 3) == 0 && items [0].status == LED_SETTLE_NEW);
    for (int i = 0; i < 3; i++)
        led_settle_clear (&items [i]);
    char args [256], pid [32];
    snprintf (args, sizeof args, "{\"account_id\":%lld}", (long long) peer);
    snprintf (pid, sizeof pid, "%lld", (long long) peer);
    char *owed = led_fixture_scalar (fx, "SELECT balance_pico FROM accounts WHERE id = $1::bigint",
                                     pid);
    P2C_CHECK (strtoll (owed, NULL, 10) > 0);

    //  Under the threshold ($10 by default): refused, nothing moves
    P2C_CHECK (led_fixture_admin (fx, store, "payout-request", args) == LED_ADMIN_REFUSED
               && !strcmp (led_fixture_code (fx), "below_threshold")
               && strstr (led_fixture_message (fx), "under the threshold 10"));
    P2C_CHECK (led_fixture_is (fx, "SELECT balance_pico FROM accounts WHERE id = $1::bigint", pid,
                               owed));
    //  Only a peer is paid out
    snprintf (args, sizeof args, "{\"account_id\":%lld}", (long long) gamer);
    P2C_CHECK (led_fixture_admin (fx, store, "payout-request", args) == LED_ADMIN_REFUSED
               && !strcmp (led_fixture_code (fx), "not_found"));
    //  Over it: the whole balance to payouts pending
    led_policy_t policy = { 0, 1 };
    led_store_set_policy (store, &policy);
    snprintf (args, sizeof args, "{\"account_id\":%lld}", (long long) peer);
    P2C_CHECK (led_fixture_admin (fx, store, "payout-request", args) == LED_ADMIN_OK
               && strstr (led_fixture_result (fx), owed));
    P2C_CHECK (led_fixture_is (fx, "SELECT balance_pico FROM accounts WHERE id = $1::bigint", pid,
                               "0"));
    P2C_CHECK (led_fixture_is (fx, "SELECT balance_pico FROM accounts WHERE kind ="
                               " 'payouts_pending'", NULL, owed));
    P2C_CHECK (led_fixture_is (fx, "SELECT amount_pico FROM payouts WHERE id = 1", NULL, owed));
    //  Nothing left to pay
    P2C_CHECK (led_fixture_admin (fx, store, "payout-request", args) == LED_ADMIN_REFUSED
               && !strcmp (led_fixture_code (fx), "below_threshold"));
    //  Paid once, to the external account
    P2C_CHECK (led_fixture_admin (fx, store, "payout-mark-paid",
                                  "{\"payout_id\":1,\"reference\":\"r1\"}") == LED_ADMIN_OK);
    P2C_CHECK (led_fixture_is (fx, "SELECT reference FROM payouts WHERE id = 1", NULL, "r1"));
    P2C_CHECK (led_fixture_admin (fx, store, "payout-mark-paid", "{\"payout_id\":1}")
               == LED_ADMIN_REFUSED && !strcmp (led_fixture_code (fx), "already_paid"));
    P2C_CHECK (led_fixture_admin (fx, store, "payout-mark-paid", "{\"payout_id\":99}")
               == LED_ADMIN_REFUSED && !strcmp (led_fixture_code (fx), "not_found"));
    P2C_CHECK (led_fixture_is (fx, "SELECT balance_pico FROM accounts WHERE kind ="
                               " 'payouts_pending'", NULL, "0"));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM (SELECT tx_id FROM journal_entries"
                               " GROUP BY tx_id HAVING SUM(amount_pico) <> 0) u", NULL, "0"));
    free (owed);
    led_store_destroy (&store);
    led_fixture_destroy (&fx);
}
