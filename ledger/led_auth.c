/*  The ledger's API keys and AuthRequest (see led_auth.h). */
#include "led_auth.h"
#include "led_store_int.h"
#include "led_fixture.h"
#include "p2c_sha256.h"
#include "p2c_test.h"

#include <czmq.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

//  A name we store: 1..128 bytes of valid UTF-8 without control characters
bool
led_auth_valid_name (const char *name)
{
    size_t len = name ? strlen (name) : 0;
    if (len == 0 || len > 128)
        return false;
    const unsigned char *s = (const unsigned char *) name;
    while (*s) {
        int extra;
        if (*s < 0x20 || *s == 0x7f)
            return false;
        if (*s < 0x80)
            extra = 0;
        else
        if ((*s & 0xe0) == 0xc0 && *s >= 0xc2)
            extra = 1;
        else
        if ((*s & 0xf0) == 0xe0)
            extra = 2;
        else
        if ((*s & 0xf8) == 0xf0 && *s <= 0xf4)
            extra = 3;
        else
            return false;
        s++;
        for (int i = 0; i < extra; i++, s++)
            if ((*s & 0xc0) != 0x80)
                return false;
    }
    return true;
}

void
led_auth_hash_key (const char *text, char *hash)
{
    if (!p2c_sha256_hex (text, strlen (text), hash))
        strcpy (hash, "x");         //  never matches a stored hash (64 hex digits)
}

int
led_auth_new_key (char *key, char *hash)
{
    unsigned char raw [32];
    if (RAND_bytes (raw, sizeof raw) != 1)
        return -1;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf (key + 2 * i, 3, "%02x", raw [i]);
    explicit_bzero (raw, sizeof raw);
    led_auth_hash_key (key, hash);
    return 0;
}

//  The account of a key's hash (one statement)
static PGresult *
s_by_key (led_store_t *self, const char *key_hash)
{
    //  The key names the account; the client's id only names its
    //  connection (one peer account may run many machines)
    const char *params [] = { key_hash };
    return led_store_exec (self, "auth key",
                           "SELECT id, disabled, kind, balance_pico, COALESCE (owner, '')"
                           " FROM accounts WHERE key_hash = $1", 1, params, PGRES_TUPLES_OK);
}

//  A key's hash as the gateway sends it: SHA-256 in 64 lowercase hex digits
static bool
s_valid_hash (const char *hash)
{
    return strlen (hash) == 64 && strspn (hash, "0123456789abcdef") == 64;
}

//  The account of role and name, created when missing (with the starting
//  credit for a new gamer) in one transaction. NULL when the database
//  failed; *keyed_p true (and NULL) when the account has a key, so that its
//  name alone is not enough.
static PGresult *
s_by_name (led_store_t *self, const char *role, const char *name, bool *keyed_p)
{
    *keyed_p = false;
    PGresult *res = NULL;
    const char *params [] = { role, name };
    //  A concurrent creation makes ours a no-op, and the SELECT (a later
    //  snapshot) then sees the winner's row.
    bool ok = led_store_command (self, "auth begin", "BEGIN", 0, NULL);
    if (ok) {
        res = led_store_exec (self, "auth create",
                              "INSERT INTO accounts (kind, name) VALUES ($1, $2)"
                              " ON CONFLICT (kind, name) DO NOTHING RETURNING id",
                              2, params, PGRES_TUPLES_OK);
        ok = res != NULL;
        if (ok && PQntuples (res) == 1 && !strcmp (role, "gamer")
            && self->policy.starting_credit_pico > 0)
            ok = led_store_transfer (self, "credit", self->external_account,
                                     led_store_int64 (res, 0, 0),
                                     self->policy.starting_credit_pico, "starting credit", NULL);
        PQclear (res);
        res = NULL;
    }
    if (ok)
        res = led_store_exec (self, "auth find",
                              "SELECT id, disabled, kind, balance_pico, COALESCE (owner, ''),"
                              " key_hash IS NOT NULL FROM accounts WHERE kind = $1 AND name = $2",
                              2, params, PGRES_TUPLES_OK);
    if (res && !led_store_command (self, "auth commit", "COMMIT", 0, NULL)) {
        PQclear (res);
        res = NULL;
    }
    if (!res)
        led_store_abort (self);
    else
    if (PQntuples (res) == 1 && !strcmp (PQgetvalue (res, 0, 5), "t")) {
        //  An operator gave this account a key: the name alone is not enough
        PQclear (res);
        res = NULL;
        *keyed_p = true;
    }
    return res;
}

led_auth_status_t
led_auth_request (led_store_t *self, const led_auth_ask_t *ask, int64_t *account_id_p,
                  char *owner, const char **message_p)
{
    *account_id_p = 0;
    *owner = 0;
    led_store_bal_reset (self);
    const char *role = ask->role, *name = ask->name, *key_hash = ask->key_hash;
    if (!role || (strcmp (role, "gamer") && strcmp (role, "peer"))) {
        *message_p = "role must be gamer or peer";
        return LED_AUTH_BAD_REQUEST;
    }
    if (!led_auth_valid_name (name)) {
        *message_p = "the id must be 1 to 128 bytes of UTF-8 text";
        return LED_AUTH_BAD_REQUEST;
    }
    bool keyed = key_hash && *key_hash;
    if (keyed && !s_valid_hash (key_hash)) {
        *message_p = "key_hash must be 64 lowercase hex digits";
        return LED_AUTH_BAD_REQUEST;
    }
    if (!keyed && (!ask->open || ask->account_id)) {
        *message_p = "an API key is required";
        return LED_AUTH_FAILED;
    }
    if (!self->conn) {
        *message_p = "the ledger database is unavailable";
        return LED_AUTH_UNAVAILABLE;
    }
    bool needs_key = false;
    PGresult *res = keyed ? s_by_key (self, key_hash) : s_by_name (self, role, name, &needs_key);
    if (needs_key) {
        *message_p = "this account needs its API key";
        return LED_AUTH_FAILED;
    }
    if (!res) {
        *message_p = "the ledger database is unavailable";
        return LED_AUTH_UNAVAILABLE;
    }
    led_auth_status_t rc = LED_AUTH_OK;
    if (PQntuples (res) != 1) {
        *message_p = keyed ? "unknown API key" : "account not found";
        rc = LED_AUTH_FAILED;
    }
    else
    if (ask->account_id && led_store_int64 (res, 0, 0) != ask->account_id) {
        //  A re-check goes by the account the sessions registered as
        *message_p = "the API key no longer names that account";
        rc = LED_AUTH_FAILED;
    }
    else
    if (strcmp (PQgetvalue (res, 0, 2), role)) {
        *message_p = "the API key belongs to another kind of account";
        rc = LED_AUTH_FAILED;
    }
    else
    if (!strcmp (PQgetvalue (res, 0, 1), "t")) {
        *message_p = "account disabled";
        rc = LED_AUTH_FAILED;
    }
    else {
        *account_id_p = led_store_int64 (res, 0, 0);
        snprintf (owner, LED_AUTH_OWNER_MAX + 1, "%s", PQgetvalue (res, 0, 4));
        *message_p = "ok";
        if (!strcmp (role, "gamer"))
            led_store_bal_add (self, *account_id_p, led_store_int64 (res, 0, 3), false);
    }
    PQclear (res);
    return rc;
}

//  --------------------------------------------------------------------------
//  Self-test: keys and names, registration by name (open) and by key.
//  Needs P2C2R_TEST_DB (led_fixture).

//  An AuthRequest as a gateway makes it from a client's key (hashed)
static led_auth_status_t
s_ask (led_store_t *store, const char *role, const char *name, const char *key, bool open,
       int64_t *aid, const char **message)
{
    char hash [65] = "", owner [LED_AUTH_OWNER_MAX + 1];
    if (*key)
        led_auth_hash_key (key, hash);
    led_auth_ask_t ask = { role, name, hash, open, 0 };
    return led_auth_request (store, &ask, aid, owner, message);
}

//  What needs no database: keys, their hashes, names
static void
s_test_keys_and_names (void)
{
    //  Keys: 64 hex digits, new every time; the stored hash is SHA-256's
    char key [65], key2 [65], hash [65], again [65];
    P2C_CHECK (led_auth_new_key (key, hash) == 0 && led_auth_new_key (key2, again) == 0);
    P2C_CHECK (strlen (key) == 64 && strspn (key, "0123456789abcdef") == 64);
    P2C_CHECK (strlen (hash) == 64 && strcmp (key, key2) && strcmp (hash, again));
    led_auth_hash_key (key, again);
    P2C_CHECK (!strcmp (hash, again));
    led_auth_hash_key ("abc", hash);
    P2C_CHECK (!strcmp (hash, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    //  Names: UTF-8 text without control characters, 1 to 128 bytes
    P2C_CHECK (led_auth_valid_name ("joueur-\xc3\xa9"));
    P2C_CHECK (!led_auth_valid_name (""));
    P2C_CHECK (!led_auth_valid_name (NULL));
    P2C_CHECK (!led_auth_valid_name ("bad\x01"));
    P2C_CHECK (!led_auth_valid_name ("bad\x7f"));
    P2C_CHECK (!led_auth_valid_name ("\xc3\x28"));
    P2C_CHECK (!led_auth_valid_name ("\xc0\xaf"));          //  overlong
    char long_name [130];
    memset (long_name, 'n', 129);
    long_name [129] = 0;
    P2C_CHECK (!led_auth_valid_name (long_name));
    long_name [128] = 0;
    P2C_CHECK (led_auth_valid_name (long_name));
}

//  One scenario, longer than a function should be: each step uses the
//  accounts, keys and balances the steps before it made, and reads best
//  in that order.
void
led_auth_test (bool verbose)
{
    s_test_keys_and_names ();

    led_fixture_t *fx = led_fixture_new ("led_auth_test", verbose);
    if (!fx)
        return;
    int64_t aid = -1;
    const char *message = NULL;
    //  A store that is not connected answers "unavailable", never hangs
    p2c_rates_t rates = P2C_RATES_DEFAULT;
    led_store_t *down = led_store_new ("host=/nonexistent-p2c2r port=1 dbname=x connect_timeout=2",
                                       led_fixture_schema (fx), led_store_test_sql_dir (), &rates);
    P2C_CHECK (down && s_ask (down, "gamer", "g", "", true, &aid, &message)
               == LED_AUTH_UNAVAILABLE);
    led_store_destroy (&down);
    led_store_t *store = led_fixture_store (fx);
    led_store_t *store2 = led_fixture_store (fx);
    if (!store || !store2) {
        led_store_destroy (&store);
        led_fixture_destroy (&fx);
        return;
    }

    //  Open registration creates an account once, per role
    int64_t gamer = 0, gamer_again = 0, peer = 0;
    P2C_CHECK (s_ask (store, "gamer", "player-7", "", true, &gamer, &message)
               == LED_AUTH_OK);
    P2C_CHECK (s_ask (store2, "gamer", "player-7", "", true, &gamer_again, &message)
               == LED_AUTH_OK);
    P2C_CHECK (gamer > 0 && gamer == gamer_again);
    P2C_CHECK (s_ask (store, "peer", "player-7", "", true, &peer, &message)
               == LED_AUTH_OK);
    P2C_CHECK (peer > 0 && peer != gamer);
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM accounts WHERE name = $1", "player-7",
                               "2"));
    //  Closed: a name alone makes nothing
    P2C_CHECK (s_ask (store, "gamer", "player-9", "", false, &aid, &message)
               == LED_AUTH_FAILED && !strcmp (message, "an API key is required"));
    P2C_CHECK (s_ask (store, "gamer", "player-8", "key", false, &aid, &message)
               == LED_AUTH_FAILED);
    P2C_CHECK (message && !strcmp (message, "unknown API key"));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM accounts WHERE name = $1", "player-8",
                               "0"));
    P2C_CHECK (s_ask (store, "admin", "x", "", true, &aid, &message)
               == LED_AUTH_BAD_REQUEST);
    P2C_CHECK (s_ask (store, "gamer", "", "", true, &aid, &message)
               == LED_AUTH_BAD_REQUEST);
    P2C_CHECK (s_ask (store, "gamer", "bad\x01", "", true, &aid, &message)
               == LED_AUTH_BAD_REQUEST);
    P2C_CHECK (s_ask (store, "gamer", "\xc3\x28", "", true, &aid, &message)
               == LED_AUTH_BAD_REQUEST);
    P2C_CHECK (s_ask (store, "gamer", "joueur-\xc3\xa9", "", true, &aid, &message)
               == LED_AUTH_OK);
    //  A gamer's balance goes to the scheduler with its registration
    size_t nb = 0;
    P2C_CHECK (s_ask (store, "gamer", "player-7", "", true, &aid, &message)
               == LED_AUTH_OK && led_store_balances (store, &nb) && nb == 1
               && led_store_balances (store, &nb) [0].account_id == gamer);
    P2C_CHECK (s_ask (store, "peer", "player-7", "", true, &aid, &message)
               == LED_AUTH_OK && (led_store_balances (store, &nb), nb == 0));

    //  A key names its account: the role must match, the name is only the
    //  connection's, a disabled account fails, and once keyed an account
    //  cannot be had by its name alone
    char key [65], hash [65];
    P2C_CHECK (led_auth_new_key (key, hash) == 0);
    const char *kp [] = { "peer", "keyed", hash };
    PGresult *res = PQexecParams (led_fixture_conn (fx), "INSERT INTO accounts (kind, name,"
                                  " key_hash) VALUES ($1, $2, $3) RETURNING id", 3, NULL, kp,
                                  NULL, NULL, 0);
    P2C_CHECK (PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) == 1);
    int64_t keyed = PQntuples (res) == 1 ? led_store_int64 (res, 0, 0) : 0;
    PQclear (res);
    P2C_CHECK (s_ask (store, "peer", "laptop-1", key, false, &aid, &message)
               == LED_AUTH_OK && aid == keyed);
    P2C_CHECK (s_ask (store, "gamer", "laptop-1", key, true, &aid, &message)
               == LED_AUTH_FAILED
               && !strcmp (message, "the API key belongs to another kind of account"));
    P2C_CHECK (s_ask (store, "peer", "laptop-1", "0000", false, &aid, &message)
               == LED_AUTH_FAILED);
    P2C_CHECK (s_ask (store, "peer", "keyed", "", true, &aid, &message)
               == LED_AUTH_FAILED && !strcmp (message, "this account needs its API key"));
    //  Only a key's hash is ever asked for: anything else is malformed; a
    //  re-check names the account the key must still name
    led_auth_ask_t ask = { "peer", "laptop-1", "Secret-Key", false, 0 };
    char owner [LED_AUTH_OWNER_MAX + 1];
    P2C_CHECK (led_auth_request (store, &ask, &aid, owner, &message) == LED_AUTH_BAD_REQUEST);
    ask.key_hash = hash;
    ask.account_id = keyed;
    P2C_CHECK (led_auth_request (store, &ask, &aid, owner, &message) == LED_AUTH_OK
               && aid == keyed && !*owner);
    ask.account_id = keyed + 1000;
    P2C_CHECK (led_auth_request (store, &ask, &aid, owner, &message) == LED_AUTH_FAILED
               && !strcmp (message, "the API key no longer names that account"));
    ask.key_hash = "";
    ask.open = true;
    P2C_CHECK (led_auth_request (store, &ask, &aid, owner, &message) == LED_AUTH_FAILED);
    //  The owner an operator named comes back with the account
    P2C_CHECK (led_fixture_is (fx, "UPDATE accounts SET owner = 'alice' WHERE name = $1"
                               " RETURNING owner", "keyed", "alice"));
    ask.key_hash = hash;
    ask.account_id = 0;
    P2C_CHECK (led_auth_request (store, &ask, &aid, owner, &message) == LED_AUTH_OK
               && !strcmp (owner, "alice"));
    char kid [32];
    snprintf (kid, sizeof kid, "%lld", (long long) keyed);
    P2C_CHECK (led_fixture_is (fx, "UPDATE accounts SET disabled = true WHERE id = $1::bigint"
                               " RETURNING disabled", kid, "t"));
    P2C_CHECK (s_ask (store, "peer", "laptop-1", key, false, &aid, &message)
               == LED_AUTH_FAILED && !strcmp (message, "account disabled"));

    //  A starting credit for new gamers, from the external account, once
    led_policy_t policy = { 3000000000000LL, 1 };
    led_store_set_policy (store, &policy);
    P2C_CHECK (s_ask (store, "gamer", "newcomer", "", true, &aid, &message)
               == LED_AUTH_OK && led_store_balances (store, &nb) && nb == 1
               && led_store_balances (store, &nb) [0].balance_pico == 3000000000000LL);
    P2C_CHECK (s_ask (store, "gamer", "newcomer", "", true, &aid, &message)
               == LED_AUTH_OK
               && led_store_balances (store, &nb) [0].balance_pico == 3000000000000LL);
    P2C_CHECK (s_ask (store, "peer", "newcomer", "", true, &aid, &message)
               == LED_AUTH_OK);
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM journal_tx WHERE memo ="
                               " 'starting credit'", NULL, "1"));
    P2C_CHECK (led_fixture_is (fx, "SELECT balance_pico FROM accounts WHERE kind = 'external'",
                               NULL, "-3000000000000"));

    led_store_destroy (&store);
    led_store_destroy (&store2);
    led_fixture_destroy (&fx);
}
