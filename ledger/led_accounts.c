/*  The operators' account commands and BalanceQuery (see led_accounts.h).
    Each command runs inside the transaction led_admin_run opened, with its
    arguments checked by the command table. */
#include "led_accounts.h"
#include "led_store_int.h"
#include "led_auth.h"
#include "led_fixture.h"
#include "p2c_test.h"

#include <czmq.h>

bool
led_accounts_create (led_admin_t *self)
{
    led_store_t *store = led_admin_store (self);
    const char *kind = led_admin_str (self, "kind");
    const char *name = led_admin_str (self, "name");
    if (!kind || (strcmp (kind, "gamer") && strcmp (kind, "peer") && strcmp (kind, "admin")))
        return led_admin_refuse (self, "bad_request", "kind must be gamer, peer or admin");
    if (!led_auth_valid_name (name))
        return led_admin_refuse (self, "bad_request",
                                 "the name must be 1 to 128 bytes of UTF-8 text");
    const char *owner = led_admin_str (self, "owner");
    if (owner && *owner && !led_auth_valid_name (owner))
        return led_admin_refuse (self, "bad_request",
                                 "the owner must be 1 to 128 bytes of UTF-8 text");
    char key [65], hash [65];
    if (led_auth_new_key (key, hash) != 0)
        return led_admin_refuse (self, "unavailable", "no random numbers for the key");
    const char *params [] = { kind, name, hash, owner && *owner ? owner : NULL };
    PGresult *res = led_store_exec (store, "account create",
                                    "INSERT INTO accounts (kind, name, key_hash, key_created_at,"
                                    " owner) VALUES ($1, $2, $3, now (), $4)"
                                    " ON CONFLICT (kind, name) DO NOTHING RETURNING id",
                                    4, params, PGRES_TUPLES_OK);
    if (!res)
        return led_admin_failed (self);
    if (PQntuples (res) != 1) {
        PQclear (res);
        return led_admin_refuse (self, "exists", "an account of that kind and name exists"
                                 " (rotate-key gives it a new key)");
    }
    int64_t id = led_store_int64 (res, 0, 0);
    PQclear (res);
    if (!strcmp (kind, "gamer") && store->policy.starting_credit_pico > 0
        && !led_store_transfer (store, "credit", store->external_account, id,
                                store->policy.starting_credit_pico, "starting credit", NULL))
        return led_admin_failed (self);
    if (!strcmp (kind, "gamer") && !led_store_bal_read (store, id))
        return led_admin_failed (self);
    json_t *result = led_admin_result (self);
    led_admin_set_int (self, "id", id);
    json_object_set_new (result, "kind", json_string (kind));
    json_object_set_new (result, "name", json_string (name));
    json_object_set_new (result, "owner", owner && *owner ? json_string (owner) : json_null ());
    json_object_set_new (result, "api_key", json_string (key));
    explicit_bzero (key, sizeof key);
    return true;
}

//  Live sessions keep the owner they registered with; the next
//  registration (a reconnect, or a gateway's cached key at its next
//  re-check) carries the new one.
bool
led_accounts_link (led_admin_t *self)
{
    int64_t id = led_admin_int (self, "account_id");
    const char *owner = led_admin_str (self, "owner");
    if (owner && *owner && !led_auth_valid_name (owner))
        return led_admin_refuse (self, "bad_request",
                                 "the owner must be 1 to 128 bytes of UTF-8 text");
    char num [32];
    snprintf (num, sizeof num, "%lld", (long long) id);
    const char *params [] = { num, owner && *owner ? owner : NULL };
    PGresult *res = led_store_exec (led_admin_store (self), "account link",
                                    "UPDATE accounts SET owner = $2 WHERE id = $1::bigint"
                                    " AND kind IN ('gamer', 'peer', 'admin')"
                                    " RETURNING kind, name, owner", 2, params, PGRES_TUPLES_OK);
    if (!res)
        return led_admin_failed (self);
    bool found = PQntuples (res) == 1;
    json_t *result = led_admin_result (self);
    if (found) {
        led_admin_set_int (self, "id", id);
        json_object_set_new (result, "kind", json_string (PQgetvalue (res, 0, 0)));
        json_object_set_new (result, "name", json_string (PQgetvalue (res, 0, 1)));
        json_object_set_new (result, "owner", PQgetisnull (res, 0, 2) ? json_null ()
                                              : json_string (PQgetvalue (res, 0, 2)));
    }
    PQclear (res);
    if (!found)
        return led_admin_refuse (self, "not_found", "no gamer, peer or admin account with that id");
    return true;
}

//  Disable or enable; for a gamer the scheduler hears of it at once
static bool
s_set_disabled (led_admin_t *self, bool disabled)
{
    led_store_t *store = led_admin_store (self);
    int64_t id = led_admin_int (self, "account_id");
    char num [32];
    snprintf (num, sizeof num, "%lld", (long long) id);
    const char *params [] = { num, disabled ? "true" : "false" };
    PGresult *res = led_store_exec (store, "account flag",
                                    "UPDATE accounts SET disabled = $2::boolean"
                                    " WHERE id = $1::bigint"
                                    " AND kind IN ('gamer', 'peer', 'admin') RETURNING kind",
                                    2, params, PGRES_TUPLES_OK);
    if (!res)
        return led_admin_failed (self);
    bool found = PQntuples (res) == 1;
    bool gamer = found && !strcmp (PQgetvalue (res, 0, 0), "gamer");
    PQclear (res);
    if (!found)
        return led_admin_refuse (self, "not_found", "no gamer, peer or admin account with that id");
    if (gamer && !led_store_bal_read (store, id))
        return led_admin_failed (self);
    led_admin_set_int (self, "id", id);
    json_object_set_new (led_admin_result (self), "disabled", json_boolean (disabled));
    return true;
}

bool
led_accounts_disable (led_admin_t *self)
{
    return s_set_disabled (self, true);
}

bool
led_accounts_enable (led_admin_t *self)
{
    return s_set_disabled (self, false);
}

bool
led_accounts_rotate_key (led_admin_t *self)
{
    int64_t id = led_admin_int (self, "account_id");
    char key [65], hash [65], num [32];
    if (led_auth_new_key (key, hash) != 0)
        return led_admin_refuse (self, "unavailable", "no random numbers for the key");
    snprintf (num, sizeof num, "%lld", (long long) id);
    const char *params [] = { num, hash };
    PGresult *res = led_store_exec (led_admin_store (self), "rotate key",
                                    "UPDATE accounts SET key_hash = $2, key_created_at = now ()"
                                    " WHERE id = $1::bigint AND kind IN ('gamer', 'peer', 'admin')"
                                    " RETURNING id", 2, params, PGRES_TUPLES_OK);
    if (!res)
        return led_admin_failed (self);
    bool found = PQntuples (res) == 1;
    PQclear (res);
    if (!found)
        return led_admin_refuse (self, "not_found", "no gamer, peer or admin account with that id");
    led_admin_set_int (self, "id", id);
    json_object_set_new (led_admin_result (self), "api_key", json_string (key));
    explicit_bzero (key, sizeof key);
    return true;
}

bool
led_accounts_credit (led_admin_t *self)
{
    led_store_t *store = led_admin_store (self);
    int64_t id = led_admin_int (self, "account_id");
    int64_t amount = led_admin_int (self, "amount_pico");
    const char *memo = led_admin_str (self, "memo");
    char num [32];
    snprintf (num, sizeof num, "%lld", (long long) id);
    const char *params [] = { num };
    PGresult *res = led_store_exec (store, "credit account",
                                    "SELECT kind FROM accounts WHERE id = $1::bigint", 1, params,
                                    PGRES_TUPLES_OK);
    if (!res)
        return led_admin_failed (self);
    bool gamer = PQntuples (res) == 1 && !strcmp (PQgetvalue (res, 0, 0), "gamer");
    PQclear (res);
    if (!gamer)
        return led_admin_refuse (self, "not_found", "no gamer account with that id");
    int64_t tx = 0;
    if (!led_store_transfer (store, "credit", store->external_account, id, amount,
                             memo ? memo : "top-up", &tx)
        || !led_store_bal_read (store, id))
        return led_admin_failed (self);
    led_admin_set_int (self, "tx_id", tx);
    led_admin_set_int (self, "account_id", id);
    led_admin_set_int (self, "amount_pico", amount);
    if (store->bal_count == 1)
        led_admin_set_int (self, "balance_pico", store->bal [0].balance_pico);
    return true;
}

int
led_accounts_query_balances (led_store_t *self, const int64_t *ids, size_t count)
{
    led_store_bal_reset (self);
    if (!self->conn)
        return -1;
    led_array_t b = { NULL, 0, 0 };
    led_array_start (&b);
    for (size_t i = 0; i < count; i++)
        led_array_int (&b, ids [i]);
    led_array_end (&b);
    const char *params [] = { b.data };
    PGresult *res = led_store_exec (self, "query balances",
                                    "SELECT id, balance_pico, disabled FROM accounts"
                                    " WHERE id = ANY ($1::bigint[]) AND kind = 'gamer'",
                                    1, params, PGRES_TUPLES_OK);
    free (b.data);
    if (!res) {
        led_store_abort (self);
        return -1;
    }
    for (int r = 0; r < PQntuples (res); r++)
        led_store_bal_add (self, led_store_int64 (res, r, 0), led_store_int64 (res, r, 1),
                           !strcmp (PQgetvalue (res, r, 2), "t"));
    PQclear (res);
    return 0;
}

//  --------------------------------------------------------------------------
//  Self-test: the account commands as the ledger runs them for p2c2r-ctl,
//  and BalanceQuery. Needs P2C2R_TEST_DB (led_fixture).

//  A number of the last command's result (0 when absent)
static int64_t
s_result_int (led_fixture_t *fx, const char *key)
{
    json_error_t jerr;
    json_t *o = json_loads (led_fixture_result (fx), 0, &jerr);
    int64_t value = o ? (int64_t) json_integer_value (json_object_get (o, key)) : 0;
    json_decref (o);
    return value;
}

//  Credit, a starting credit, and the balances the scheduler asks for
static void
s_test_credit (led_fixture_t *fx, led_store_t *store, int64_t gamer, int64_t peer)
{
    char args [256];
    size_t nb = 0;
    //  Credit: from the external account, to gamers only
    snprintf (args, sizeof args, "{\"account_id\":%lld,\"amount_pico\":5000000000000}",
              (long long) gamer);
    P2C_CHECK (led_fixture_admin (fx, store, "credit", args) == LED_ADMIN_OK
               && led_store_balances (store, &nb) && nb == 1
               && s_result_int (fx, "balance_pico") == 5000000000000LL
               && s_result_int (fx, "tx_id") > 0);
    P2C_CHECK (led_fixture_is (fx, "SELECT balance_pico FROM accounts WHERE kind = 'external'",
                               NULL, "-5000000000000"));
    P2C_CHECK (led_fixture_is (fx, "SELECT memo FROM journal_tx WHERE kind = 'credit'", NULL,
                               "top-up"));
    snprintf (args, sizeof args, "{\"account_id\":%lld,\"amount_pico\":-5}", (long long) gamer);
    P2C_CHECK (led_fixture_admin (fx, store, "credit", args) == LED_ADMIN_REFUSED
               && !strcmp (led_fixture_code (fx), "bad_request"));
    snprintf (args, sizeof args, "{\"account_id\":%lld,\"amount_pico\":%lld}", (long long) gamer,
              LED_MAX_CREDIT_PICO + 1);
    P2C_CHECK (led_fixture_admin (fx, store, "credit", args) == LED_ADMIN_REFUSED
               && !strcmp (led_fixture_code (fx), "bad_request"));
    snprintf (args, sizeof args, "{\"account_id\":%lld,\"amount_pico\":5}", (long long) peer);
    P2C_CHECK (led_fixture_admin (fx, store, "credit", args) == LED_ADMIN_REFUSED
               && !strcmp (led_fixture_code (fx), "not_found"));

    //  A starting credit for a gamer an operator creates
    led_policy_t policy = { 3000000000000LL, 1 };
    led_store_set_policy (store, &policy);
    P2C_CHECK (led_fixture_admin (fx, store, "account-create",
                                  "{\"kind\":\"gamer\",\"name\":\"newcomer-2\"}") == LED_ADMIN_OK
               && led_store_balances (store, &nb) && nb == 1
               && led_store_balances (store, &nb) [0].balance_pico == 3000000000000LL);
    P2C_CHECK (led_fixture_admin (fx, store, "account-create",
                                  "{\"kind\":\"peer\",\"name\":\"newcomer-2\"}") == LED_ADMIN_OK
               && (led_store_balances (store, &nb), nb == 0));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM journal_tx WHERE memo ="
                               " 'starting credit'", NULL, "1"));

    //  Balances on demand (BalanceQuery): gamers only
    int64_t ids [] = { gamer, peer, 987654321 };
    P2C_CHECK (led_accounts_query_balances (store, ids, 3) == 0
               && led_store_balances (store, &nb) && nb == 1
               && led_store_balances (store, &nb) [0].account_id == gamer
               && led_store_balances (store, &nb) [0].balance_pico == 5000000000000LL);
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM accounts a WHERE balance_pico <>"
                               " (SELECT COALESCE (SUM (amount_pico), 0) FROM journal_entries e"
                               " WHERE e.account_id = a.id)", NULL, "0"));
}

//  One scenario, longer than a function should be: each step uses the
//  accounts, keys and balances the steps before it made, and reads best
//  in that order.
//  A registration with a key, as a gateway asks for it (by the key's hash)
static led_auth_status_t
s_login (led_store_t *store, const char *role, const char *key, int64_t *aid, char *owner,
         const char **message)
{
    char hash [65];
    led_auth_hash_key (key, hash);
    led_auth_ask_t ask = { role, "laptop-1", hash, false, 0 };
    return led_auth_request (store, &ask, aid, owner, message);
}

//  The key an account-create answered (key: 65 bytes), and the account's id
static int64_t
s_made (led_fixture_t *fx, char *key)
{
    json_error_t jerr;
    json_t *made = json_loads (led_fixture_result (fx), 0, &jerr);
    int64_t id = made ? (int64_t) json_integer_value (json_object_get (made, "id")) : 0;
    snprintf (key, 65, "%s", made ? json_string_value (json_object_get (made, "api_key")) : "");
    json_decref (made);
    return id;
}

//  Owners: named at creation or linked later, returned with every
//  registration, cleared with an empty owner; bad owners and system
//  accounts refused
static void
s_test_owner (led_fixture_t *fx, led_store_t *store)
{
    char gkey [65], pkey [65], owner [LED_AUTH_OWNER_MAX + 1], args [256];
    int64_t aid = 0;
    const char *message = NULL;
    P2C_CHECK (led_fixture_admin (fx, store, "account-create", "{\"kind\":\"gamer\","
                                  "\"name\":\"dana-plays\",\"owner\":\"dana\"}") == LED_ADMIN_OK
               && strstr (led_fixture_result (fx), "\"dana\""));
    int64_t g = s_made (fx, gkey);
    P2C_CHECK (led_fixture_admin (fx, store, "account-create", "{\"kind\":\"peer\","
                                  "\"name\":\"rig-7\"}") == LED_ADMIN_OK);
    int64_t p = s_made (fx, pkey);
    P2C_CHECK (s_login (store, "gamer", gkey, &aid, owner, &message) == LED_AUTH_OK
               && aid == g && !strcmp (owner, "dana"));
    P2C_CHECK (s_login (store, "peer", pkey, &aid, owner, &message) == LED_AUTH_OK
               && aid == p && !*owner);
    snprintf (args, sizeof args, "{\"account_id\":%lld,\"owner\":\"dana\"}", (long long) p);
    P2C_CHECK (led_fixture_admin (fx, store, "account-link", args) == LED_ADMIN_OK
               && strstr (led_fixture_result (fx), "rig-7"));
    P2C_CHECK (s_login (store, "peer", pkey, &aid, owner, &message) == LED_AUTH_OK
               && !strcmp (owner, "dana"));
    snprintf (args, sizeof args, "{\"account_id\":%lld,\"owner\":\"\"}", (long long) p);
    P2C_CHECK (led_fixture_admin (fx, store, "account-link", args) == LED_ADMIN_OK);
    P2C_CHECK (s_login (store, "peer", pkey, &aid, owner, &message) == LED_AUTH_OK && !*owner);
    snprintf (args, sizeof args, "{\"account_id\":%lld,\"owner\":\"bad\\u0001\"}",
              (long long) p);
    P2C_CHECK (led_fixture_admin (fx, store, "account-link", args) == LED_ADMIN_REFUSED
               && !strcmp (led_fixture_code (fx), "bad_request"));
    snprintf (args, sizeof args, "{\"account_id\":%lld,\"owner\":\"x\"}",
              (long long) store->fee_account);
    P2C_CHECK (led_fixture_admin (fx, store, "account-link", args) == LED_ADMIN_REFUSED
               && !strcmp (led_fixture_code (fx), "not_found"));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM accounts WHERE owner = $1", "dana", "1"));
}

void
led_accounts_test (bool verbose)
{
    led_fixture_t *fx = led_fixture_new ("led_accounts_test", verbose);
    if (!fx)
        return;
    led_store_t *store = led_fixture_store (fx);
    if (!store) {
        led_fixture_destroy (&fx);
        return;
    }
    int64_t gamer = led_fixture_account (fx, "gamer", "player-7");
    int64_t peer = led_fixture_account (fx, "peer", "player-7");
    int64_t aid = 0;
    const char *message = NULL;
    char owner [LED_AUTH_OWNER_MAX + 1];

    //  Create: a key shown once, only its hash stored; a name once per kind
    P2C_CHECK (led_fixture_admin (fx, store, "account-create",
                                  "{\"kind\":\"peer\",\"name\":\"keyed\"}") == LED_ADMIN_OK);
    json_error_t jerr;
    json_t *made = json_loads (led_fixture_result (fx), 0, &jerr);
    char key [65] = "";
    int64_t keyed = made ? (int64_t) json_integer_value (json_object_get (made, "id")) : 0;
    snprintf (key, sizeof key, "%s",
              made ? json_string_value (json_object_get (made, "api_key")) : "");
    json_decref (made);
    P2C_CHECK (strlen (key) == 64 && keyed > 0);
    P2C_CHECK (led_fixture_admin (fx, store, "account-create",
                                  "{\"kind\":\"peer\",\"name\":\"keyed\"}") == LED_ADMIN_REFUSED
               && !strcmp (led_fixture_code (fx), "exists"));
    P2C_CHECK (led_fixture_admin (fx, store, "account-create",
                                  "{\"kind\":\"treasury\",\"name\":\"x\"}") == LED_ADMIN_REFUSED
               && !strcmp (led_fixture_code (fx), "bad_request"));
    P2C_CHECK (led_fixture_admin (fx, store, "account-create",
                                  "{\"kind\":\"peer\",\"name\":\"bad\\u0001\"}")
               == LED_ADMIN_REFUSED && !strcmp (led_fixture_code (fx), "bad_request"));
    char hash [65];
    led_auth_hash_key (key, hash);
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM accounts WHERE key_hash = $1", hash, "1"));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM accounts WHERE key_hash = $1", key, "0"));
    P2C_CHECK (s_login (store, "peer", key, &aid, owner, &message)
               == LED_AUTH_OK && aid == keyed);

    //  Disable, enable, rotate: the key stops and starts working
    char args [256];
    snprintf (args, sizeof args, "{\"account_id\":%lld}", (long long) keyed);
    P2C_CHECK (led_fixture_admin (fx, store, "account-disable", args) == LED_ADMIN_OK);
    P2C_CHECK (s_login (store, "peer", key, &aid, owner, &message)
               == LED_AUTH_FAILED);
    P2C_CHECK (led_fixture_admin (fx, store, "account-enable", args) == LED_ADMIN_OK);
    P2C_CHECK (s_login (store, "peer", key, &aid, owner, &message)
               == LED_AUTH_OK);
    P2C_CHECK (led_fixture_admin (fx, store, "rotate-key", args) == LED_ADMIN_OK
               && strstr (led_fixture_result (fx), "api_key")
               && !strstr (led_fixture_result (fx), key));
    P2C_CHECK (s_login (store, "peer", key, &aid, owner, &message)
               == LED_AUTH_FAILED);
    //  System accounts are no operator's to change
    char fee [32];
    snprintf (fee, sizeof fee, "{\"account_id\":%lld}", (long long) store->fee_account);
    P2C_CHECK (led_fixture_admin (fx, store, "account-disable", fee) == LED_ADMIN_REFUSED
               && !strcmp (led_fixture_code (fx), "not_found"));
    P2C_CHECK (led_fixture_admin (fx, store, "rotate-key", fee) == LED_ADMIN_REFUSED
               && !strcmp (led_fixture_code (fx), "not_found"));
    //  Disabling a gamer tells the scheduler
    snprintf (args, sizeof args, "{\"account_id\":%lld}", (long long) gamer);
    size_t nb = 0;
    P2C_CHECK (led_fixture_admin (fx, store, "account-disable", args) == LED_ADMIN_OK
               && led_store_balances (store, &nb) && nb == 1
               && led_store_balances (store, &nb) [0].disabled);
    P2C_CHECK (led_fixture_admin (fx, store, "account-enable", args) == LED_ADMIN_OK
               && led_store_balances (store, &nb) && nb == 1
               && !led_store_balances (store, &nb) [0].disabled);
    snprintf (args, sizeof args, "{\"account_id\":%lld}", (long long) peer);
    P2C_CHECK (led_fixture_admin (fx, store, "account-disable", args) == LED_ADMIN_OK
               && (led_store_balances (store, &nb), nb == 0));
    P2C_CHECK (led_fixture_admin (fx, store, "account-enable", args) == LED_ADMIN_OK);

    s_test_owner (fx, store);
    s_test_credit (fx, store, gamer, peer);
    //  Without the database: no balances
    led_store_disconnect (store);
    int64_t ids [] = { gamer };
    P2C_CHECK (led_accounts_query_balances (store, ids, 1) == -1);
    led_store_destroy (&store);
    led_fixture_destroy (&fx);
}
