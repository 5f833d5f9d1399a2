/*  The self-test of the database roles (see led_roles.h). */
#include "led_roles.h"
#include "led_admin.h"
#include "led_fixture.h"
#include "led_migrate.h"
#include "led_store_int.h"
#include "p2c_test.h"

#include <czmq.h>

//  A connection as role, in the fixture's schema; NULL (a failed check)
//  when it cannot be made
static PGconn *
s_connect_as (led_fixture_t *fx, const char *role)
{
    char *conninfo = zsys_sprintf ("%s user=%s options='-c search_path=%s'",
                                   led_fixture_conninfo (fx), role, led_fixture_schema (fx));
    PGconn *conn = PQconnectdb (conninfo);
    zstr_free (&conninfo);
    bool ok = conn && PQstatus (conn) == CONNECTION_OK;
    P2C_CHECK (ok);
    if (!ok) {
        fprintf (stderr, "led_roles_test: as %s: %s", role, conn ? PQerrorMessage (conn) : "");
        PQfinish (conn);
        return NULL;
    }
    return conn;
}

//  True when sql fails with a message holding text (text NULL: succeeds);
//  whatever it wrote is rolled back
static bool
s_refused (PGconn *conn, const char *sql, const char *text)
{
    if (!conn)
        return false;
    PQclear (PQexec (conn, "BEGIN"));
    PGresult *res = PQexec (conn, sql);
    const char *msg = PQresultErrorField (res, PG_DIAG_MESSAGE_PRIMARY);
    bool ok = text ? PQresultStatus (res) == PGRES_FATAL_ERROR && msg && strstr (msg, text)
                   : PQresultStatus (res) == PGRES_COMMAND_OK
                     || PQresultStatus (res) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf (stderr, "led_roles_test: %s: want %s got %s\n", sql, text ? text : "success",
                 msg ? msg : "success");
    PQclear (res);
    PQclear (PQexec (conn, "ROLLBACK"));
    return ok;
}

void
led_roles_test (bool verbose)
{
    led_fixture_t *fx = led_fixture_new ("led_roles_test", verbose);
    if (!fx)
        return;
    led_store_t *owner = led_fixture_store (fx);
    if (!owner) {
        led_fixture_destroy (&fx);
        return;
    }
    led_store_destroy (&owner);
    char *db = led_fixture_scalar (fx, "SELECT current_database ()", NULL);
    char *ledger_role = zsys_sprintf ("%s_ledger", db);
    char *reader_role = zsys_sprintf ("%s_reader", db);
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM pg_roles WHERE rolname IN"
                               " (current_database () || '_ledger',"
                               "  current_database () || '_reader') AND NOT rolsuper", NULL, "2"));

    //  The ledger as its role, the owner's conninfo for migrations: it
    //  connects and runs an operator's command (journal, balance, log)
    p2c_rates_t rates = P2C_RATES_DEFAULT;
    char *as_ledger = zsys_sprintf ("%s user=%s", led_fixture_conninfo (fx), ledger_role);
    led_store_t *store = led_store_new (as_ledger, led_fixture_schema (fx),
                                        led_store_test_sql_dir (), &rates);
    led_store_set_owner (store, led_fixture_conninfo (fx));
    P2C_CHECK (store && led_store_connect (store) == 0);
    P2C_CHECK (led_fixture_admin (fx, store, "account-create",
                                  "{\"kind\":\"gamer\",\"name\":\"g\"}") == LED_ADMIN_OK);
    char *gamer = led_fixture_scalar (fx, "SELECT id FROM accounts WHERE name = 'g'", NULL);
    char *args = zsys_sprintf ("{\"account_id\":%s,\"amount_pico\":77}", gamer);
    P2C_CHECK (led_fixture_admin (fx, store, "credit", args) == LED_ADMIN_OK);
    P2C_CHECK (led_fixture_is (fx, "SELECT balance_pico FROM accounts WHERE id = $1::bigint",
                               gamer, "77"));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM admin_log WHERE command = 'credit'",
                               NULL, "1"));
    //  and names an account's owner (011)
    char *link = zsys_sprintf ("{\"account_id\":%s,\"owner\":\"o\"}", gamer);
    P2C_CHECK (led_fixture_admin (fx, store, "account-link", link) == LED_ADMIN_OK);
    zstr_free (&link);
    //  A second migration run as the role is refused: it owns nothing
    P2C_CHECK (led_store_connected (store) && led_migrate_run (store) == -1);
    led_store_destroy (&store);

    //  What the ledger's role may not do
    PGconn *conn = s_connect_as (fx, ledger_role);
    P2C_CHECK (s_refused (conn, "UPDATE admin_log SET who = 'x'", "permission denied"));
    P2C_CHECK (s_refused (conn, "DELETE FROM admin_log", "permission denied"));
    P2C_CHECK (s_refused (conn, "DELETE FROM journal_entries", "permission denied"));
    P2C_CHECK (s_refused (conn, "UPDATE journal_tx SET memo = 'x'", "permission denied"));
    P2C_CHECK (s_refused (conn, "TRUNCATE tasks", "permission denied"));
    //  (UPDATE is granted on rates and tasks for LOCK TABLE alone: the
    //  append-only triggers refuse it; rates holds the seeded row)
    P2C_CHECK (s_refused (conn, "UPDATE rates SET fee_bp = 0", "append-only"));
    P2C_CHECK (s_refused (conn, "UPDATE accounts SET kind = 'admin'", "permission denied"));
    P2C_CHECK (s_refused (conn, "ALTER TABLE admin_log DISABLE TRIGGER admin_log_append_only",
                          "must be owner"));
    P2C_CHECK (s_refused (conn, "CREATE TABLE mine (x int)", "permission denied"));
    //  The settle function's bypass of the journal's checks is not its own
    P2C_CHECK (s_refused (conn, "SET p2c2r.settle_checked = 'on';"
                          " WITH t AS (INSERT INTO journal_tx (kind) VALUES ('adjust') RETURNING id)"
                          " INSERT INTO journal_entries (tx_id, account_id, amount_pico)"
                          " SELECT id, (SELECT min (id) FROM accounts), 5 FROM t",
                          "does not balance"));
    //  What it does: read, and move money in balanced transactions
    P2C_CHECK (s_refused (conn, "SELECT count(*) FROM journal_entries", NULL));
    PQfinish (conn);

    //  The reader reads, and nothing else
    conn = s_connect_as (fx, reader_role);
    P2C_CHECK (s_refused (conn, "SELECT count(*) FROM admin_log", NULL));
    P2C_CHECK (s_refused (conn, "INSERT INTO accounts (kind, name) VALUES ('gamer', 'r')",
                          "permission denied"));
    P2C_CHECK (s_refused (conn, "UPDATE accounts SET disabled = true", "permission denied"));
    P2C_CHECK (s_refused (conn, "INSERT INTO admin_log (who, command, args) VALUES"
                          " ('r', 'x', '{}')", "permission denied"));
    P2C_CHECK (s_refused (conn, "SELECT * FROM ledger_settle (0, '{}', '{}', '{}', '{}', '{}',"
                          " '{}', '{}', '{}', '{}', '{}', '{}', 0, 0)", "permission denied"));
    PQfinish (conn);

    zstr_free (&args);
    zstr_free (&gamer);
    zstr_free (&as_ledger);
    zstr_free (&ledger_role);
    zstr_free (&reader_role);
    zstr_free (&db);
    led_fixture_destroy (&fx);
}
