/*  Test support for the ledger's self-tests (see led_fixture.h). */
#include "led_fixture.h"
#include "led_store_int.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <czmq.h>

struct _led_fixture_t {
    const char *who;            //  the test, for messages
    const char *conninfo;       //  P2C2R_TEST_DB (borrowed from the environment)
    char schema [64];           //  ours, dropped by destroy
    PGconn *conn;               //  the test's own connection
    bool verbose;
    char *result;               //  of the last led_fixture_admin
    const char *code;
    char *message;
};

led_fixture_t *
led_fixture_new (const char *who, bool verbose)
{
    const char *conninfo = getenv ("P2C2R_TEST_DB");
    if (!conninfo || !*conninfo) {
        fprintf (stderr, "%s: FAIL: P2C2R_TEST_DB is not set; start a cluster with"
                 " deploy/local/pg.sh start DIR PORT and set P2C2R_TEST_DB to its conninfo\n",
                 who);
        P2C_CHECK (!"P2C2R_TEST_DB set");
        return NULL;
    }
    PGconn *conn = PQconnectdb (conninfo);
    P2C_CHECK (PQstatus (conn) == CONNECTION_OK);
    if (PQstatus (conn) != CONNECTION_OK) {
        fprintf (stderr, "%s: cannot connect to P2C2R_TEST_DB: %s", who, PQerrorMessage (conn));
        PQfinish (conn);
        return NULL;
    }
    led_fixture_t *self = (led_fixture_t *) zmalloc (sizeof (led_fixture_t));
    self->who = who;
    self->conninfo = conninfo;
    self->conn = conn;
    self->verbose = verbose;
    //  Unique per process and per fixture: tests of one run never share
    static int counter = 0;
    snprintf (self->schema, sizeof self->schema, "led_test_%d_%d_%04x", (int) getpid (),
              ++counter, (unsigned) randof (0x10000));
    PQsetNoticeProcessor (conn, led_store_notice, NULL);
    const char *sp [] = { self->schema };
    PQclear (PQexecParams (conn, "SELECT set_config ('search_path', $1, false)", 1, NULL, sp,
                           NULL, NULL, 0));
    return self;
}

void
led_fixture_destroy (led_fixture_t **self_p)
{
    led_fixture_t *self = *self_p;
    if (!self)
        return;
    char *ident = PQescapeIdentifier (self->conn, self->schema, strlen (self->schema));
    char *drop = p2c_sprintf ("DROP SCHEMA IF EXISTS %s CASCADE", ident);
    PGresult *res = PQexec (self->conn, drop);
    P2C_CHECK (PQresultStatus (res) == PGRES_COMMAND_OK);
    PQclear (res);
    zstr_free (&drop);
    PQfreemem (ident);
    PQfinish (self->conn);
    free (self->result);
    free (self->message);
    free (self);
    *self_p = NULL;
}

PGconn *
led_fixture_conn (led_fixture_t *self)
{
    return self->conn;
}

const char *
led_fixture_conninfo (led_fixture_t *self)
{
    return self->conninfo;
}

const char *
led_fixture_schema (led_fixture_t *self)
{
    return self->schema;
}

led_store_t *
led_fixture_store (led_fixture_t *self)
{
    p2c_rates_t rates = P2C_RATES_DEFAULT;
    led_store_t *store = led_store_new (self->conninfo, self->schema, led_store_test_sql_dir (),
                                        &rates);
    P2C_CHECK (store && led_store_connect (store) == 0);
    if (store && !led_store_connected (store)) {
        fprintf (stderr, "%s: the store does not connect (migrations in %s?)\n", self->who,
                 led_store_test_sql_dir ());
        led_store_destroy (&store);
    }
    return store;
}

char *
led_fixture_scalar (led_fixture_t *self, const char *sql, const char *param)
{
    const char *params [] = { param };
    PGresult *res = PQexecParams (self->conn, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
    bool rows = res && PQresultStatus (res) == PGRES_TUPLES_OK;
    char *value = p2c_strdup (rows && PQntuples (res) == 1 && !PQgetisnull (res, 0, 0)
                          ? PQgetvalue (res, 0, 0) : "");
    if (!rows)
        fprintf (stderr, "%s: query failed: %s", self->who, PQresultErrorMessage (res));
    PQclear (res);
    return value;
}

bool
led_fixture_is (led_fixture_t *self, const char *sql, const char *param, const char *expect)
{
    char *v = led_fixture_scalar (self, sql, param);
    bool same = !strcmp (v, expect);
    if (!same)
        fprintf (stderr, "%s: '%s' gave '%s', expected '%s'\n", self->who, sql, v, expect);
    free (v);
    return same;
}

bool
led_fixture_refused (led_fixture_t *self, const char *sql, const char *text)
{
    PQclear (PQexec (self->conn, "BEGIN"));
    PGresult *res = PQexec (self->conn, sql);
    const char *msg = PQresultErrorField (res, PG_DIAG_MESSAGE_PRIMARY);
    bool ok = text ? PQresultStatus (res) == PGRES_FATAL_ERROR && msg && strstr (msg, text)
                   : PQresultStatus (res) == PGRES_COMMAND_OK
                     || PQresultStatus (res) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf (stderr, "%s: want %s got %s\n", self->who, text ? text : "success",
                 msg ? msg : "success");
    PQclear (res);
    PQclear (PQexec (self->conn, "ROLLBACK"));
    return ok;
}

int64_t
led_fixture_account (led_fixture_t *self, const char *kind, const char *name)
{
    const char *params [] = { kind, name };
    PGresult *res = PQexecParams (self->conn, "INSERT INTO accounts (kind, name) VALUES ($1, $2)"
                                  " RETURNING id", 2, NULL, params, NULL, NULL, 0);
    bool made = PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) == 1;
    P2C_CHECK (made);
    if (!made)
        fprintf (stderr, "%s: account %s %s: %s", self->who, kind, name,
                 PQresultErrorMessage (res));
    int64_t id = made ? led_store_int64 (res, 0, 0) : 0;
    PQclear (res);
    return id;
}

void
led_fixture_fill (led_settle_t *it, const char *task_id, const char *type, int64_t gamer,
                  int64_t peer, uint64_t billed)
{
    memset (it, 0, sizeof *it);
    it->task_id = p2c_strdup (task_id);
    it->task_type = p2c_strdup (type);
    it->gamer_account = gamer;
    it->peer_account = peer;
    it->billed_us = billed;
    it->compute_us = billed + 10;
    it->observed_us = billed + 20;
}

led_admin_status_t
led_fixture_admin (led_fixture_t *self, led_store_t *store, const char *command,
                   const char *args_json)
{
    free (self->result);
    free (self->message);
    self->result = self->message = NULL;
    self->code = NULL;
    led_admin_status_t rc = led_admin_run (store, "test-operator", command, args_json,
                                           &self->result, &self->code, &self->message);
    if (self->verbose && rc != LED_ADMIN_OK)
        fprintf (stderr, "%s: %s refused code=%s message=%s\n", self->who, command,
                 self->code, self->message);
    return rc;
}

const char *
led_fixture_result (led_fixture_t *self)
{
    return self->result ? self->result : "";
}

const char *
led_fixture_code (led_fixture_t *self)
{
    return self->code ? self->code : "";
}

const char *
led_fixture_message (led_fixture_t *self)
{
    return self->message ? self->message : "";
}

void
led_fixture_test (bool verbose)
{
    led_fixture_t *fx = led_fixture_new ("led_fixture_test", verbose);
    if (!fx)
        return;
    led_fixture_t *other = led_fixture_new ("led_fixture_test", verbose);
    P2C_CHECK (other && strcmp (led_fixture_schema (fx), led_fixture_schema (other)));
    led_store_t *store = led_fixture_store (fx);
    P2C_CHECK (store && led_store_connected (store));
    P2C_CHECK (led_fixture_is (fx, "SELECT current_schema ()", NULL, led_fixture_schema (fx)));
    P2C_CHECK (led_fixture_account (fx, "gamer", "g") > 0);
    P2C_CHECK (led_fixture_is (fx, "SELECT name FROM accounts WHERE kind = $1", "gamer", "g"));
    P2C_CHECK (led_fixture_refused (fx, "SELECT 1 / 0", "division by zero"));
    P2C_CHECK (led_fixture_refused (fx, "SELECT 1", NULL));
    P2C_CHECK (led_fixture_admin (fx, store, "no-such-command", "{}") == LED_ADMIN_REFUSED
               && !strcmp (led_fixture_code (fx), "bad_request")
               && !strcmp (led_fixture_message (fx), "unknown command")
               && !strcmp (led_fixture_result (fx), ""));
    led_store_destroy (&store);
    //  Destroy drops the schema, nothing of it stays
    char *schema = p2c_strdup (led_fixture_schema (fx));
    led_fixture_destroy (&fx);
    P2C_CHECK (fx == NULL);
    P2C_CHECK (other && led_fixture_is (other, "SELECT count(*) FROM pg_namespace"
                                        " WHERE nspname = $1", schema, "0"));
    free (schema);
    led_fixture_destroy (&other);
}
