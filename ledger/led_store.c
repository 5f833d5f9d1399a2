/*  The ledger's PostgreSQL store (see led_store.h): the connection, what
    connecting sets up, the statement helpers its concept classes share
    (led_store_int.h), the gamer balances a call reports, and the journal's
    two-entry transfer. */
#define P2C_LOG_COMPONENT "store"
#include "led_store_int.h"
#include "led_migrate.h"
#include "led_rates.h"
#include "led_settle.h"
#include "led_fixture.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <czmq.h>

void
led_store_bal_reset (led_store_t *self)
{
    self->bal_count = 0;
}

void
led_store_bal_add (led_store_t *self, int64_t id, int64_t balance, bool disabled)
{
    if (self->bal_count == self->bal_cap) {
        self->bal_cap = self->bal_cap ? self->bal_cap * 2 : 64;
        self->bal = (led_balance_t *) p2c_realloc (self->bal, self->bal_cap * sizeof (led_balance_t));
    }
    led_balance_t *b = &self->bal [self->bal_count++];
    b->account_id = id;
    b->balance_pico = balance;
    b->disabled = disabled;
}

const led_balance_t *
led_store_balances (led_store_t *self, size_t *count_p)
{
    *count_p = self->bal_count;
    return self->bal;
}

void
led_store_set_policy (led_store_t *self, const led_policy_t *policy)
{
    self->policy = *policy;
}

static bool
s_valid_schema (const char *schema)
{
    size_t len = strlen (schema);
    if (len == 0 || len > 63 || (schema [0] >= '0' && schema [0] <= '9'))
        return false;
    for (const char *c = schema; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return false;
    return true;
}

led_store_t *
led_store_new (const char *conninfo, const char *schema, const char *sql_dir,
               const p2c_rates_t *rates)
{
    if (!conninfo || !sql_dir || !rates)
        return NULL;
    if (!schema || !*schema)
        schema = "public";
    if (!s_valid_schema (schema))
        return NULL;
    led_store_t *self = (led_store_t *) zmalloc (sizeof (led_store_t));
    self->conninfo = p2c_strdup (conninfo);
    self->schema = p2c_strdup (schema);
    self->sql_dir = p2c_strdup (sql_dir);
    self->rates = *rates;
    led_policy_t policy = LED_POLICY_DEFAULT;
    self->policy = policy;
    return self;
}

void
led_store_destroy (led_store_t **self_p)
{
    led_store_t *self = *self_p;
    if (!self)
        return;
    led_store_disconnect (self);
    //  Do not leave the secret in freed memory
    explicit_bzero (self->conninfo, strlen (self->conninfo));
    free (self->conninfo);
    if (self->owner_conninfo)
        explicit_bzero (self->owner_conninfo, strlen (self->owner_conninfo));
    free (self->owner_conninfo);
    free (self->schema);
    free (self->sql_dir);
    free (self->bal);
    free (self);
    *self_p = NULL;
}

bool
led_store_connected (led_store_t *self)
{
    return self->conn && PQstatus (self->conn) == CONNECTION_OK;
}

void
led_store_disconnect (led_store_t *self)
{
    if (self->conn) {
        PQfinish (self->conn);
        self->conn = NULL;
    }
}

//  The first line of the server's error, for one-line logs
void
led_store_log_error (led_store_t *self, const char *what, PGresult *res)
{
    const char *err = res ? PQresultErrorMessage (res) : NULL;
    if (!err || !*err)
        err = self->conn ? PQerrorMessage (self->conn) : "no connection";
    int len = (int) strcspn (err, "\n");
    snprintf (self->error, sizeof self->error, "%.*s", len, err);
    log_warn ("%s failed error=\"%.*s\"", what, len, err);
}

PGresult *
led_store_exec (led_store_t *self, const char *what, const char *sql, int nparams,
                const char *const *values, ExecStatusType expect)
{
    if (!self->conn)
        return NULL;
    PGresult *res = PQexecParams (self->conn, sql, nparams, NULL, values, NULL, NULL, 0);
    if (!res || PQresultStatus (res) != expect) {
        led_store_log_error (self, what, res);
        PQclear (res);
        return NULL;
    }
    return res;
}

bool
led_store_command (led_store_t *self, const char *what, const char *sql, int nparams,
                   const char *const *values)
{
    PGresult *res = led_store_exec (self, what, sql, nparams, values, PGRES_COMMAND_OK);
    PQclear (res);
    return res != NULL;
}

void
led_store_abort (led_store_t *self)
{
    if (!self->conn)
        return;
    if (PQstatus (self->conn) != CONNECTION_OK) {
        log_warn ("connection lost");
        led_store_disconnect (self);
        return;
    }
    PGresult *res = PQexec (self->conn, "ROLLBACK");
    PQclear (res);
    if (PQstatus (self->conn) != CONNECTION_OK)
        led_store_disconnect (self);
}

int64_t
led_store_int64 (PGresult *res, int row, int col)
{
    return strtoll (PQgetvalue (res, row, col), NULL, 10);
}

//  Server notices ("already exists, skipping") go to the debug log, not
//  to stderr unformatted
void
led_store_notice (void *arg, const char *message)
{
    (void) arg;
    log_debug ("notice message=\"%.*s\"", (int) strcspn (message, "\n"), message);
}

//  Creates our schema when missing and puts it first on the search path;
//  false (connection kept, for the caller to drop) when that failed
static bool
s_use_schema (led_store_t *self, bool create)
{
    //  The schema name is checked to be [a-z0-9_] in led_store_new; an
    //  identifier cannot be a parameter, so it is quoted by libpq.
    char *ident = PQescapeIdentifier (self->conn, self->schema, strlen (self->schema));
    char *sql = ident ? zsys_sprintf ("CREATE SCHEMA IF NOT EXISTS %s", ident) : NULL;
    PQfreemem (ident);
    //  Under the migration lock: two connections running CREATE SCHEMA IF
    //  NOT EXISTS at once can both try to create it, and one then fails on
    //  the catalog's unique index (the ledger's database workers connect
    //  together)
    bool ok = sql && (!create || led_store_command (self, "create schema begin", "BEGIN", 0,
                                                    NULL));
    if (ok && create) {
        PGresult *res = led_store_exec (self, "create schema lock",
                                        "SELECT pg_advisory_xact_lock (" LED_MIGRATE_LOCK_KEY ")",
                                        0, NULL, PGRES_TUPLES_OK);
        ok = res != NULL;
        PQclear (res);
        ok = ok && led_store_command (self, "create schema", sql, 0, NULL)
            && led_store_command (self, "create schema commit", "COMMIT", 0, NULL);
        if (!ok)
            led_store_abort (self);
    }
    zstr_free (&sql);
    if (ok) {
        //  Our tables first; pg_catalog stays implicit
        const char *params [] = { self->schema };
        PGresult *res = led_store_exec (self, "set search_path",
            "SELECT pg_catalog.set_config ('search_path', quote_ident ($1), false)",
            1, params, PGRES_TUPLES_OK);
        ok = res != NULL;
        PQclear (res);
    }
    return ok;
}

//  The fixed system accounts the migrations made; false when missing
static bool
s_load_accounts (led_store_t *self)
{
    PGresult *res = led_store_exec (self, "load system accounts",
        "SELECT (SELECT id FROM accounts WHERE kind = 'platform_fee' AND name = 'platform'),"
        "       (SELECT id FROM accounts WHERE kind = 'treasury' AND name = 'treasury'),"
        "       (SELECT id FROM accounts WHERE kind = 'external' AND name = 'funding'),"
        "       (SELECT id FROM accounts WHERE kind = 'payouts_pending' AND name = 'payouts')",
        0, NULL, PGRES_TUPLES_OK);
    if (!res || PQntuples (res) != 1 || PQgetisnull (res, 0, 0) || PQgetisnull (res, 0, 1)
        || PQgetisnull (res, 0, 2) || PQgetisnull (res, 0, 3)) {
        log_warn ("system accounts missing schema=%s", self->schema);
        PQclear (res);
        return false;
    }
    self->fee_account = led_store_int64 (res, 0, 0);
    self->treasury_account = led_store_int64 (res, 0, 1);
    self->external_account = led_store_int64 (res, 0, 2);
    self->payouts_account = led_store_int64 (res, 0, 3);
    PQclear (res);
    return true;
}

void
led_store_set_owner (led_store_t *self, const char *conninfo)
{
    if (self->owner_conninfo)
        explicit_bzero (self->owner_conninfo, strlen (self->owner_conninfo));
    free (self->owner_conninfo);
    self->owner_conninfo = conninfo && *conninfo ? strdup (conninfo) : NULL;
}

//  The migrations on a connection of the owner's, closed after: the
//  store's own connection (the ledger's role) may not change the schema
static bool
s_migrate_as_owner (led_store_t *self)
{
    PGconn *own = PQconnectdb (self->owner_conninfo);
    if (!own || PQstatus (own) != CONNECTION_OK) {
        log_warn ("owner connect (--owner-db) failed error=\"%s\"",
                  own ? strtok (PQerrorMessage (own), "\n") : "out of memory");
        PQfinish (own);
        return false;
    }
    PQsetNoticeProcessor (own, led_store_notice, NULL);
    PGconn *mine = self->conn;
    self->conn = own;
    bool ok = s_use_schema (self, true) && led_migrate_run (self) >= 0;
    PQfinish (self->conn);
    self->conn = mine;
    return ok;
}

int
led_store_connect (led_store_t *self)
{
    led_store_disconnect (self);
    if (self->owner_conninfo && !s_migrate_as_owner (self))
        return -1;
    self->conn = PQconnectdb (self->conninfo);
    if (!self->conn || PQstatus (self->conn) != CONNECTION_OK) {
        led_store_log_error (self, "connect", NULL);
        led_store_disconnect (self);
        return -1;
    }
    PQsetNoticeProcessor (self->conn, led_store_notice, NULL);
    //  Each step logs why it failed; a half set-up connection is dropped
    bool owner = self->owner_conninfo == NULL;
    if (!s_use_schema (self, owner) || (owner && led_migrate_run (self) < 0)
        || !s_load_accounts (self)
        || !led_rates_seed (self) || led_settle_prepare (self) != 0) {
        led_store_disconnect (self);
        return -1;
    }
    log_info ("connected host=%s dbname=%s schema=%s", PQhost (self->conn),
              PQdb (self->conn), self->schema);
    return 0;
}

bool
led_store_transfer (led_store_t *self, const char *kind, int64_t from, int64_t to,
                    int64_t amount, const char *memo, int64_t *tx_p)
{
    char f [32], t [32], a [32];
    snprintf (f, sizeof f, "%lld", (long long) from);
    snprintf (t, sizeof t, "%lld", (long long) to);
    snprintf (a, sizeof a, "%lld", (long long) amount);
    const char *params [] = { kind, memo, f, t, a };
    PGresult *res = led_store_exec (self, "transfer",
        "WITH t AS (INSERT INTO journal_tx (kind, memo) VALUES ($1, $2) RETURNING id),"
        " e AS (INSERT INTO journal_entries (tx_id, account_id, amount_pico)"
        "       SELECT t.id, v.acct, v.amount FROM t,"
        "       (VALUES ($3::bigint, -($5::bigint)), ($4::bigint, $5::bigint)) AS v (acct, amount))"
        " SELECT id FROM t", 5, params, PGRES_TUPLES_OK);
    if (!res)
        return false;
    bool ok = PQntuples (res) == 1;
    if (ok && tx_p)
        *tx_p = led_store_int64 (res, 0, 0);
    PQclear (res);
    return ok;
}

bool
led_store_bal_read (led_store_t *self, int64_t id)
{
    char num [32];
    snprintf (num, sizeof num, "%lld", (long long) id);
    const char *params [] = { num };
    PGresult *res = led_store_exec (self, "read balance",
                                    "SELECT id, balance_pico, disabled FROM accounts"
                                    " WHERE id = $1::bigint AND kind = 'gamer'",
                                    1, params, PGRES_TUPLES_OK);
    if (!res)
        return false;
    for (int r = 0; r < PQntuples (res); r++)
        led_store_bal_add (self, led_store_int64 (res, r, 0), led_store_int64 (res, r, 1),
                           !strcmp (PQgetvalue (res, r, 2), "t"));
    PQclear (res);
    return true;
}

const char *
led_store_test_sql_dir (void)
{
    const char *dir = getenv ("P2C2R_TEST_SQL_DIR");
    return dir && *dir ? dir : "ledger/sql";
}

//  --------------------------------------------------------------------------
//  Self-test: connecting, what it sets up, and the shared helpers. Needs
//  P2C2R_TEST_DB; works in a schema of its own (led_fixture).

//  One scenario, longer than a function should be: each step uses the
//  accounts, keys and balances the steps before it made, and reads best
//  in that order.
void
led_store_test (bool verbose)
{
    led_fixture_t *fx = led_fixture_new ("led_store_test", verbose);
    if (!fx)
        return;
    const char *conninfo = led_fixture_conninfo (fx);
    const char *schema = led_fixture_schema (fx);
    const char *sql_dir = led_store_test_sql_dir ();
    p2c_rates_t rates = P2C_RATES_DEFAULT;

    //  Bad arguments make no store
    P2C_CHECK (led_store_new (conninfo, "Bad-Schema", sql_dir, &rates) == NULL);
    P2C_CHECK (led_store_new (conninfo, "x; drop", sql_dir, &rates) == NULL);
    P2C_CHECK (led_store_new (conninfo, "9lives", sql_dir, &rates) == NULL);
    P2C_CHECK (led_store_new (NULL, schema, sql_dir, &rates) == NULL);

    //  A database that is not there: connect fails, nothing hangs
    led_store_t *down = led_store_new ("host=/nonexistent-p2c2r port=1 dbname=x connect_timeout=2",
                                       schema, sql_dir, &rates);
    P2C_CHECK (down && led_store_connect (down) == -1);
    P2C_CHECK (down && !led_store_connected (down));
    led_store_destroy (&down);

    //  A migrations directory that is not there: no connection
    led_store_t *bare = led_store_new (conninfo, schema, "/nonexistent-p2c2r-sql", &rates);
    P2C_CHECK (bare && led_store_connect (bare) == -1 && !led_store_connected (bare));
    led_store_destroy (&bare);

    //  Two stores on one schema: both connect, the system accounts are
    //  there once, the rates table is seeded once
    led_store_t *store = led_store_new (conninfo, schema, sql_dir, &rates);
    P2C_CHECK (store && led_store_connect (store) == 0);
    led_store_t *store2 = led_store_new (conninfo, schema, sql_dir, &rates);
    P2C_CHECK (store2 && led_store_connect (store2) == 0);
    if (!store || !led_store_connected (store) || !store2 || !led_store_connected (store2)) {
        led_store_destroy (&store);
        led_store_destroy (&store2);
        led_fixture_destroy (&fx);
        return;
    }
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM accounts WHERE kind IN"
                               " ('platform_fee', 'treasury', 'external', 'payouts_pending')",
                               NULL, "4"));
    P2C_CHECK (store->fee_account > 0 && store->treasury_account > 0
               && store->external_account > 0 && store->payouts_account > 0
               && store->fee_account == store2->fee_account
               && store->treasury_account == store2->treasury_account);
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM rates", NULL, "1"));

    //  The helpers: a statement that fails is logged, kept as the error,
    //  and rolled back; the connection stays
    P2C_CHECK (led_store_command (store, "test begin", "BEGIN", 0, NULL));
    P2C_CHECK (led_store_exec (store, "test bad", "SELECT no_such_column FROM accounts", 0, NULL,
                               PGRES_TUPLES_OK) == NULL);
    P2C_CHECK (strstr (store->error, "no_such_column") != NULL);
    led_store_abort (store);
    P2C_CHECK (led_store_connected (store));
    P2C_CHECK (led_store_command (store, "test wrong status", "SELECT 1", 0, NULL) == false);

    //  A transfer is one balanced transaction; a gamer's balance is read
    //  for the scheduler, another kind's is not
    int64_t gamer = led_fixture_account (fx, "gamer", "g-1");
    int64_t peer = led_fixture_account (fx, "peer", "p-1");
    int64_t tx = 0;
    led_store_bal_reset (store);
    P2C_CHECK (led_store_transfer (store, "credit", store->external_account, gamer, 1234,
                                   "test", &tx) && tx > 0);
    P2C_CHECK (led_store_bal_read (store, gamer) && led_store_bal_read (store, peer));
    size_t nb = 0;
    const led_balance_t *bal = led_store_balances (store, &nb);
    P2C_CHECK (nb == 1 && bal [0].account_id == gamer && bal [0].balance_pico == 1234
               && !bal [0].disabled);
    led_store_bal_reset (store);
    P2C_CHECK (led_store_balances (store, &nb) && nb == 0);
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM (SELECT tx_id FROM journal_entries"
                               " GROUP BY tx_id HAVING SUM(amount_pico) <> 0) u", NULL, "0"));

    //  Array literals carry any text as one element
    led_array_t a = { NULL, 0, 0 };
    led_array_start (&a);
    led_array_text (&a, "a\"b\\c,d");
    led_array_int (&a, -5);
    led_array_end (&a);
    P2C_CHECK (!strcmp (a.data, "{\"a\\\"b\\\\c,d\",-5}"));
    P2C_CHECK (led_fixture_is (fx, "SELECT ($1::text[]) [1]", a.data, "a\"b\\c,d"));
    free (a.data);

    //  After a disconnect the store connects again, and is usable
    led_store_disconnect (store);
    P2C_CHECK (!led_store_connected (store));
    P2C_CHECK (led_store_connect (store) == 0 && led_store_bal_read (store, gamer));

    led_store_destroy (&store);
    led_store_destroy (&store2);
    P2C_CHECK (store == NULL);
    led_store_destroy (&store);
    led_fixture_destroy (&fx);
}
