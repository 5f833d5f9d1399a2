/*  The ledger's schema migrations (see led_migrate.h). The files are ours,
    not input: each runs as the script it is. */
#define P2C_LOG_COMPONENT "store"
#include "led_migrate.h"
#include "led_store_int.h"
#include "led_fixture.h"
#include "led_settle.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <czmq.h>
#include <dirent.h>
#include <errno.h>

#define LED_MAX_SQL_FILE (1024 * 1024)
#define LED_MAX_MIGRATIONS 1000

//  Migration files are NNN_name.sql
bool
led_migrate_valid_name (const char *name)
{
    size_t len = strlen (name);
    if (len < 9 || strcmp (name + len - 4, ".sql"))
        return false;
    for (int i = 0; i < 3; i++)
        if (name [i] < '0' || name [i] > '9')
            return false;
    if (name [3] != '_')
        return false;
    for (size_t i = 4; i < len - 4; i++)
        if (!((name [i] >= 'a' && name [i] <= 'z') || (name [i] >= '0' && name [i] <= '9')
              || name [i] == '_'))
            return false;
    return true;
}

static int
s_strcmp_p (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

static char *
s_read_file (const char *path)
{
    FILE *f = fopen (path, "rb");
    if (!f)
        return NULL;
    char *buf = (char *) p2c_malloc (LED_MAX_SQL_FILE + 1);
    size_t n = fread (buf, 1, LED_MAX_SQL_FILE + 1, f);
    bool err = ferror (f) != 0;
    fclose (f);
    if (err || n > LED_MAX_SQL_FILE) {
        free (buf);
        return NULL;
    }
    buf [n] = 0;
    return buf;
}

//  Applies one migration file in its own transaction; true when done
static bool
s_apply (led_store_t *self, const char *name, int version)
{
    char *path = p2c_sprintf ("%s/%s", self->sql_dir, name);
    char *text = s_read_file (path);
    zstr_free (&path);
    if (!text) {
        log_warn ("cannot read migration file=%s dir=%s", name, self->sql_dir);
        return false;
    }
    char vbuf [16];
    snprintf (vbuf, sizeof vbuf, "%d", version);
    const char *params [] = { vbuf, name };
    bool ok = led_store_command (self, "migration begin", "BEGIN", 0, NULL);
    if (ok) {
        //  The file is ours, not input: run it as the script it is
        PGresult *res = PQexec (self->conn, text);
        ok = res && PQresultStatus (res) == PGRES_COMMAND_OK;
        if (!ok) {
            char what [300];
            snprintf (what, sizeof what, "migration %s", name);
            led_store_log_error (self, what, res);
        }
        PQclear (res);
    }
    ok = ok && led_store_command (self, "migration record",
                                  "INSERT INTO schema_migrations (version, name)"
                                  " VALUES ($1::int, $2)", 2, params);
    ok = ok && led_store_command (self, "migration commit", "COMMIT", 0, NULL);
    if (!ok)
        led_store_abort (self);
    else
        log_info ("migration applied version=%d file=%s schema=%s", version, name,
                  self->schema);
    free (text);
    return ok;
}

//  The migration files of dir, sorted (at most LED_MAX_MIGRATIONS); NULL
//  when the directory cannot be read
static char **
s_list (const char *dir_name, size_t *count_p)
{
    DIR *dir = opendir (dir_name);
    if (!dir) {
        log_warn ("cannot open migrations dir=%s errno=%d", dir_name, errno);
        return NULL;
    }
    char **names = (char **) p2c_calloc (LED_MAX_MIGRATIONS, sizeof (char *));
    size_t count = 0;
    struct dirent *de;
    while ((de = readdir (dir)) && count < LED_MAX_MIGRATIONS)
        if (led_migrate_valid_name (de->d_name))
            names [count++] = strdup (de->d_name);
    closedir (dir);
    qsort (names, count, sizeof (char *), s_strcmp_p);
    *count_p = count;
    return names;
}

int
led_migrate_run (led_store_t *self)
{
    if (!self->conn)
        return -1;
    size_t count = 0;
    char **names = s_list (self->sql_dir, &count);
    if (!names)
        return -1;
    int applied = 0;
    if (count == 0) {
        log_warn ("no migrations dir=%s", self->sql_dir);
        applied = -1;
    }
    //  Session-level lock: released by unlock, or by the server if we die
    if (applied == 0) {
        PGresult *res = led_store_exec (self, "migration lock",
                                        "SELECT pg_advisory_lock (" LED_MIGRATE_LOCK_KEY ")", 0,
                                        NULL, PGRES_TUPLES_OK);
        if (!res)
            applied = -1;
        PQclear (res);
    }
    if (applied == 0 && !led_store_command (self, "migration table",
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INT PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now ())", 0, NULL))
        applied = -1;
    for (size_t i = 0; i < count && applied >= 0; i++) {
        int version = atoi (names [i]);
        char vbuf [16];
        snprintf (vbuf, sizeof vbuf, "%d", version);
        const char *params [] = { vbuf };
        PGresult *res = led_store_exec (self, "migration check",
                                        "SELECT name FROM schema_migrations"
                                        " WHERE version = $1::int", 1, params, PGRES_TUPLES_OK);
        if (!res) {
            applied = -1;
            break;
        }
        bool done = PQntuples (res) > 0;
        PQclear (res);
        if (done)
            continue;
        if (s_apply (self, names [i], version))
            applied++;
        else
            applied = -1;
    }
    if (self->conn) {
        PGresult *res = PQexec (self->conn, "SELECT pg_advisory_unlock (" LED_MIGRATE_LOCK_KEY ")");
        PQclear (res);
    }
    for (size_t i = 0; i < count; i++)
        free (names [i]);
    free (names);
    return applied;
}

//  --------------------------------------------------------------------------
//  Self-test: the migrations apply once, also when a new one comes; a
//  broken one leaves nothing; and the schema they make refuses what would
//  break the journal. Needs P2C2R_TEST_DB (led_fixture).

//  A copy of the migrations in a directory of its own, with one more file
//  (name, text); NULL when it cannot be made
static char *
s_copy_dir (const char *from, const char *name, const char *text)
{
    char tmpl [] = "/tmp/led_migrate_test.XXXXXX";
    if (!mkdtemp (tmpl))
        return NULL;
    char *dir = p2c_strdup (tmpl);
    size_t count = 0;
    char **names = s_list (from, &count);
    bool ok = names != NULL;
    for (size_t i = 0; i < count; i++) {
        char *src = p2c_sprintf ("%s/%s", from, names [i]);
        char *dst = p2c_sprintf ("%s/%s", dir, names [i]);
        char *body = s_read_file (src);
        FILE *f = body ? fopen (dst, "w") : NULL;
        ok = ok && f && fputs (body, f) >= 0;
        if (f)
            fclose (f);
        free (body);
        zstr_free (&src);
        zstr_free (&dst);
        free (names [i]);
    }
    free (names);
    char *extra = p2c_sprintf ("%s/%s", dir, name);
    FILE *f = fopen (extra, "w");
    ok = ok && f && fputs (text, f) >= 0;
    if (f)
        fclose (f);
    zstr_free (&extra);
    if (!ok)
        zstr_free (&dir);
    return dir;
}

static void
s_remove_dir (char **dir_p)
{
    if (!*dir_p)
        return;
    size_t count = 0;
    char **names = s_list (*dir_p, &count);
    for (size_t i = 0; names && i < count; i++) {
        char *path = p2c_sprintf ("%s/%s", *dir_p, names [i]);
        remove (path);
        zstr_free (&path);
        free (names [i]);
    }
    free (names);
    rmdir (*dir_p);
    zstr_free (dir_p);
}

//  The schema the migrations make refuses what would break the journal
//  (its triggers and ledger_settle's own checks)
//  Longer than a function should be: a list of independent refusals, each
//  a statement and the message it must fail with, read best side by side.
static void
s_test_rules (led_fixture_t *fx, led_store_t *store)
{
    PGconn *conn = led_fixture_conn (fx);
    //  The schema's rules need a gamer, a peer and a settled task
    led_fixture_account (fx, "gamer", "g-1");
    int64_t gamer = led_fixture_account (fx, "gamer", "g-2");
    int64_t peer = led_fixture_account (fx, "peer", "p-1");
    led_settle_t one;
    led_fixture_fill (&one, "t-1", "encryption", gamer, peer, 1000);
    P2C_CHECK (led_settle_batch (store, &one, 1) == 0 && one.status == LED_SETTLE_NEW);
    led_settle_clear (&one);

    //  The database itself refuses an unbalanced transaction, entries of
    //  unknown accounts, and changes to the journal
    PQclear (PQexec (conn, "BEGIN"));
    PGresult *res = PQexec (conn, "WITH t AS (INSERT INTO journal_tx (kind) VALUES ('adjust')"
                                  " RETURNING id) INSERT INTO journal_entries (tx_id, account_id,"
                                  " amount_pico) SELECT id, 1, 5 FROM t");
    P2C_CHECK (PQresultStatus (res) != PGRES_COMMAND_OK);
    PQclear (res);
    PQclear (PQexec (conn, "ROLLBACK"));
    res = PQexec (conn, "WITH t AS (INSERT INTO journal_tx (kind) VALUES ('adjust')"
                        " RETURNING id) INSERT INTO journal_entries (tx_id, account_id,"
                        " amount_pico) SELECT id, a, m FROM t,"
                        " (VALUES (1, 5), (987654321, -5)) v (a, m)");
    P2C_CHECK (PQresultStatus (res) != PGRES_COMMAND_OK);
    PQclear (res);
    P2C_CHECK (led_fixture_refused (fx, "WITH t AS (INSERT INTO journal_tx (kind) VALUES ('adjust')"
                                    " RETURNING id) INSERT INTO journal_entries (tx_id, account_id,"
                                    " amount_pico) SELECT id, a, m FROM t,"
                                    " (VALUES (1, 5), (987654321, -5), (2, 0)) v (a, m)",
                                    "entry for unknown account 987654321"));
    P2C_CHECK (led_fixture_refused (fx, "WITH t AS (INSERT INTO journal_tx (kind) VALUES ('adjust')"
                                    " RETURNING id) INSERT INTO journal_entries (tx_id, account_id,"
                                    " amount_pico) SELECT id, a, m FROM t,"
                                    " (VALUES (1, 5), (2, -4)) v (a, m)", "does not balance"));
    P2C_CHECK (led_fixture_refused (fx, "INSERT INTO journal_entries (tx_id, account_id,"
                                    " amount_pico)"
                                    " VALUES (987654321, 1, 5), (987654321, 2, -5)",
                                    "entry for unknown transaction 987654321"));
    //  A task row names its own settle transaction, known accounts and rates
    const char *task_sql = "WITH j AS (INSERT INTO journal_tx (kind, task_id) VALUES"
        " ('settle', 'bogus-%d') RETURNING id) INSERT INTO tasks (task_id, tx_id, task_type,"
        " gamer_account, peer_account, billed_us, compute_us, observed_us, gamer_charge_pico,"
        " peer_earning_pico, fee_pico, treasury_pico, rate_id) SELECT 'bogus-%d', %s, 'encryption',"
        " %s, 2, 0, 0, 0, 0, 0, 0, 0, %s FROM j";
    char *sql = p2c_sprintf (task_sql, 1, 1, "id", "1", "NULL");
    P2C_CHECK (led_fixture_refused (fx, sql, NULL));    //  all good (and rolled back)
    zstr_free (&sql);
    sql = p2c_sprintf (task_sql, 1, 2, "id", "1", "NULL");
    P2C_CHECK (led_fixture_refused (fx, sql, "no settle transaction"));
    zstr_free (&sql);
    sql = p2c_sprintf (task_sql, 1, 1, "id", "987654321", "NULL");
    P2C_CHECK (led_fixture_refused (fx, sql, "unknown account"));
    zstr_free (&sql);
    sql = p2c_sprintf (task_sql, 1, 1, "id", "1", "987654321");
    P2C_CHECK (led_fixture_refused (fx, sql, "unknown rates 987654321"));
    zstr_free (&sql);
    //  ledger_settle checks its own rows (migration 004: the triggers skip
    //  them inside it): a task whose entries would not balance, a treasury
    //  run with a fee, an unknown fee account; and the skip ends with the
    //  call, so a later statement of the same transaction is checked
    const char *settle_sql = "SELECT count(*) FROM ledger_settle ((SELECT id FROM rates"
        " WHERE effective_at <= now () ORDER BY effective_at DESC LIMIT 1), '{bogus-s}',"
        " '{encryption}', ARRAY [%s], ARRAY [(SELECT min (id) FROM accounts WHERE kind = 'peer')],"
        " '{1}', '{1}', '{1}', '{%s}', '{80}', '{10}', '{10}', %s, (SELECT min (id) FROM accounts"
        " WHERE kind = 'treasury'))%s";
    const char *gamer_sql = "(SELECT min (id) FROM accounts WHERE kind = 'gamer')";
    const char *fee = "(SELECT min (id) FROM accounts WHERE kind = 'platform_fee')";
    sql = p2c_sprintf (settle_sql, gamer_sql, "100", fee, "");
    P2C_CHECK (led_fixture_refused (fx, sql, NULL));     //  all good (and rolled back)
    zstr_free (&sql);
    sql = p2c_sprintf (settle_sql, gamer_sql, "101", fee, "");
    P2C_CHECK (led_fixture_refused (fx, sql, "task bogus-s does not balance"));
    zstr_free (&sql);
    sql = p2c_sprintf (settle_sql, "0", "100", fee, "");
    P2C_CHECK (led_fixture_refused (fx, sql, "task bogus-s does not balance"));
    zstr_free (&sql);
    sql = p2c_sprintf (settle_sql, gamer_sql, "100", "987654321", "");
    P2C_CHECK (led_fixture_refused (fx, sql, "entry for unknown account 987654321"));
    zstr_free (&sql);
    sql = p2c_sprintf (settle_sql, gamer_sql, "100", fee,
                        "; SELECT 1 / (current_setting ('p2c2r.settle_checked', true)"
                        " IS DISTINCT FROM 'on')::INT");
    P2C_CHECK (led_fixture_refused (fx, sql, NULL));     //  the setting is over
    zstr_free (&sql);
    sql = p2c_sprintf (settle_sql, gamer_sql, "100", fee,
                        "; WITH t AS (INSERT INTO journal_tx (kind) VALUES ('adjust') RETURNING id)"
                        " INSERT INTO journal_entries (tx_id, account_id, amount_pico)"
                        " SELECT id, 1, 5 FROM t");
    P2C_CHECK (led_fixture_refused (fx, sql, "does not balance"));
    zstr_free (&sql);
    res = PQexec (conn, "SET p2c2r.settle_checked = 'off'");
    PQclear (res);
    P2C_CHECK (led_fixture_refused (fx, "SELECT count(*) FROM ledger_settle (0, '{}', '{}',"
                                    " '{}', '{}',"
                                    " '{}', '{}', '{}', '{}', '{}', '{}', '{}', 1, 2);"
                                    " WITH t AS (INSERT INTO journal_tx (kind) VALUES ('adjust')"
                                    " RETURNING id) INSERT INTO journal_entries (tx_id, account_id,"
                                    " amount_pico) SELECT id, 1, 5 FROM t", "does not balance"));
    PQclear (PQexec (conn, "RESET p2c2r.settle_checked"));
    res = PQexec (conn, "UPDATE journal_entries SET amount_pico = 0");
    P2C_CHECK (PQresultStatus (res) != PGRES_COMMAND_OK);
    PQclear (res);
    res = PQexec (conn, "DELETE FROM accounts WHERE kind = 'treasury'");
    P2C_CHECK (PQresultStatus (res) != PGRES_COMMAND_OK);
    PQclear (res);
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM journal_tx WHERE kind = 'adjust'"
                               " AND memo NOT LIKE 'reverse task %'", NULL, "0"));
    //  Stored balances equal the entries' sums after all of the above
    const char *mismatch_sql = "SELECT count(*) FROM accounts a WHERE balance_pico <>"
        " (SELECT COALESCE (SUM (amount_pico), 0) FROM journal_entries e"
        " WHERE e.account_id = a.id)";
    P2C_CHECK (led_fixture_is (fx, mismatch_sql, NULL, "0"));
}

void
led_migrate_test (bool verbose)
{
    //  File names: only NNN_name.sql counts
    P2C_CHECK (led_migrate_valid_name ("001_init.sql"));
    P2C_CHECK (led_migrate_valid_name ("123_a_b_9.sql"));
    P2C_CHECK (!led_migrate_valid_name ("01_init.sql"));
    P2C_CHECK (!led_migrate_valid_name ("001-init.sql"));
    P2C_CHECK (!led_migrate_valid_name ("001_Init.sql"));
    P2C_CHECK (!led_migrate_valid_name ("001_.sql"));
    P2C_CHECK (!led_migrate_valid_name ("001_init.sql~"));
    P2C_CHECK (!led_migrate_valid_name ("001_init.txt"));

    led_fixture_t *fx = led_fixture_new ("led_migrate_test", verbose);
    if (!fx)
        return;
    const char *sql_dir = led_store_test_sql_dir ();
    p2c_rates_t rates = P2C_RATES_DEFAULT;

    //  Applied once at connect, then again without harm, also by a second store
    led_store_t *store = led_fixture_store (fx);
    P2C_CHECK (store && led_migrate_run (store) == 0);
    led_store_t *store2 = led_fixture_store (fx);
    P2C_CHECK (store2 && led_migrate_run (store2) == 0);
    if (!store || !store2) {
        led_store_destroy (&store);
        led_store_destroy (&store2);
        led_fixture_destroy (&fx);
        return;
    }
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM schema_migrations WHERE version = 1",
                               NULL, "1"));
    char *files = led_fixture_scalar (fx, "SELECT count(*) FROM schema_migrations", NULL);
    P2C_CHECK (atoi (files) >= 4);

    //  A new migration is applied once, by the first store that connects
    char *dir = s_copy_dir (sql_dir, "999_test_extra.sql",
                            "CREATE TABLE test_extra (id INT PRIMARY KEY);");
    P2C_CHECK (dir != NULL);
    led_store_t *more = led_store_new (led_fixture_conninfo (fx), led_fixture_schema (fx),
                                       dir ? dir : sql_dir, &rates);
    P2C_CHECK (more && led_store_connect (more) == 0);
    P2C_CHECK (led_fixture_is (fx, "SELECT name FROM schema_migrations WHERE version = 999", NULL,
                               "999_test_extra.sql"));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM test_extra", NULL, "0"));
    P2C_CHECK (more && led_migrate_run (more) == 0);
    led_store_destroy (&more);
    s_remove_dir (&dir);

    //  A broken one fails the connect and leaves nothing of itself
    dir = s_copy_dir (sql_dir, "998_test_broken.sql",
                      "CREATE TABLE test_broken (id INT); SELECT no_such_function ();");
    P2C_CHECK (dir != NULL);
    more = led_store_new (led_fixture_conninfo (fx), led_fixture_schema (fx),
                          dir ? dir : sql_dir, &rates);
    P2C_CHECK (more && led_store_connect (more) == -1 && !led_store_connected (more));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM schema_migrations WHERE version = 998",
                               NULL, "0"));
    P2C_CHECK (led_fixture_is (fx, "SELECT to_regclass ('test_broken') IS NULL", NULL, "t"));
    led_store_destroy (&more);
    s_remove_dir (&dir);
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM schema_migrations WHERE version < 998",
                               NULL, files));
    free (files);

    s_test_rules (fx, store);

    led_store_destroy (&store);
    led_store_destroy (&store2);
    led_fixture_destroy (&fx);
}
