/*  p2c2r-ctl: the operator's tool. Reads PostgreSQL directly (--db or
    P2C2R_DB); it writes nothing: writes will go through the ledger, which
    owns the rules. Human tables by default, --json for scripts.

      totals    what gamers spent, peers earned, the fee and treasury hold,
                and how many tasks were settled (USD, 12 decimals)
      accounts  every account with its balance
      audit     checks the journal: every transaction sums to zero, every
                task row has exactly one settle transaction and every settle
                transaction one task row, amounts agree, no task twice.
                Exits 1 on any violation, printing each. */
#include "p2c_cfg.h"
#include "p2c_log.h"

#include <czmq.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CTL_EXIT_OK 0
#define CTL_EXIT_VIOLATION 1
#define CTL_EXIT_ERROR 2
#define CTL_AUDIT_SHOW 100          //  rows printed per failed check

static const char *s_usage =
    "[options] COMMAND\n\n"
    "Commands:\n"
    "  totals     gamers spent, peers earned, platform fee, treasury, tasks settled\n"
    "  accounts   accounts with their balances\n"
    "  audit      check the journal; exits 1 on any violation";

//  Runs a read query; prints the error and returns NULL on failure
static PGresult *
s_query (PGconn *conn, const char *sql)
{
    PGresult *res = PQexecParams (conn, sql, 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus (res) != PGRES_TUPLES_OK) {
        fprintf (stderr, "p2c2r-ctl: query failed: %s", PQresultErrorMessage (res));
        PQclear (res);
        return NULL;
    }
    return res;
}

static void
s_print_json (json_t *root)
{
    char *text = json_dumps (root, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
    if (text)
        printf ("%s\n", text);
    free (text);
}

//  totals on one line, for the live status of `make run`
static bool s_oneline = false;

//  NUMERIC values stay strings in JSON: a double would lose picodollars
static int
s_totals (PGconn *conn, bool json)
{
    PGresult *res = s_query (conn,
        "SELECT (SELECT COALESCE (SUM (gamer_charge_pico), 0) FROM tasks) * 0.000000000001,"
        "       (SELECT COALESCE (SUM (peer_earning_pico), 0) FROM tasks) * 0.000000000001,"
        "       (SELECT COALESCE (SUM (e.amount_pico), 0) FROM journal_entries e"
        "          JOIN accounts a ON a.id = e.account_id WHERE a.kind = 'platform_fee')"
        "          * 0.000000000001,"
        "       (SELECT COALESCE (SUM (e.amount_pico), 0) FROM journal_entries e"
        "          JOIN accounts a ON a.id = e.account_id WHERE a.kind = 'treasury')"
        "          * 0.000000000001,"
        "       (SELECT COUNT (*) FROM tasks)");
    if (!res)
        return CTL_EXIT_ERROR;
    const char *labels [] = { "gamers_spent_usd", "peers_earned_usd", "platform_fee_usd",
                              "treasury_usd", "tasks_settled" };
    const char *human [] = { "gamers spent (USD)", "peers earned (USD)", "platform fee (USD)",
                             "treasury (USD)", "tasks settled" };
    if (s_oneline)
        printf ("tasks settled %s | gamers spent $%s | peers earned $%s | fee $%s\n",
                PQgetvalue (res, 0, 4), PQgetvalue (res, 0, 0), PQgetvalue (res, 0, 1),
                PQgetvalue (res, 0, 2));
    else
    if (json) {
        json_t *root = json_object ();
        for (int i = 0; i < 4; i++)
            json_object_set_new (root, labels [i], json_string (PQgetvalue (res, 0, i)));
        json_object_set_new (root, labels [4],
                             json_integer (strtoll (PQgetvalue (res, 0, 4), NULL, 10)));
        s_print_json (root);
        json_decref (root);
    }
    else
        for (int i = 0; i < 5; i++)
            printf ("%-20s %22s\n", human [i], PQgetvalue (res, 0, i));
    PQclear (res);
    return CTL_EXIT_OK;
}

static int
s_accounts (PGconn *conn, bool json)
{
    PGresult *res = s_query (conn,
        "SELECT a.id, a.kind, a.name, a.disabled, a.created_at,"
        "       COALESCE (SUM (e.amount_pico), 0) * 0.000000000001 AS balance_usd"
        "  FROM accounts a LEFT JOIN journal_entries e ON e.account_id = a.id"
        " GROUP BY a.id ORDER BY a.id");
    if (!res)
        return CTL_EXIT_ERROR;
    int rows = PQntuples (res);
    if (json) {
        json_t *list = json_array ();
        for (int r = 0; r < rows; r++) {
            json_t *o = json_object ();
            json_object_set_new (o, "id", json_integer (strtoll (PQgetvalue (res, r, 0), NULL, 10)));
            json_object_set_new (o, "kind", json_string (PQgetvalue (res, r, 1)));
            json_object_set_new (o, "name", json_string (PQgetvalue (res, r, 2)));
            json_object_set_new (o, "disabled", json_boolean (!strcmp (PQgetvalue (res, r, 3), "t")));
            json_object_set_new (o, "created_at", json_string (PQgetvalue (res, r, 4)));
            json_object_set_new (o, "balance_usd", json_string (PQgetvalue (res, r, 5)));
            json_array_append_new (list, o);
        }
        s_print_json (list);
        json_decref (list);
    }
    else {
        printf ("%8s  %-12s  %-32s  %-8s  %22s\n", "ID", "KIND", "NAME", "DISABLED", "BALANCE (USD)");
        for (int r = 0; r < rows; r++)
            printf ("%8s  %-12s  %-32s  %-8s  %22s\n", PQgetvalue (res, r, 0),
                    PQgetvalue (res, r, 1), PQgetvalue (res, r, 2),
                    !strcmp (PQgetvalue (res, r, 3), "t") ? "yes" : "no", PQgetvalue (res, r, 5));
        printf ("%d account%s\n", rows, rows == 1 ? "" : "s");
    }
    PQclear (res);
    return CTL_EXIT_OK;
}

//  One audit check: a query whose rows are violations (first column a
//  one-line description of each)
typedef struct {
    const char *name;
    const char *what;
    const char *sql;
} s_check_t;

static const s_check_t s_checks [] = {
    { "unbalanced", "journal transactions whose entries do not sum to zero",
      "SELECT format ('transaction %s (%s%s) sums to %s picodollars', j.id, j.kind,"
      "   COALESCE (' task ' || j.task_id, ''), COALESCE (SUM (e.amount_pico), 0))"
      "  FROM journal_tx j LEFT JOIN journal_entries e ON e.tx_id = j.id"
      " GROUP BY j.id HAVING COALESCE (SUM (e.amount_pico), 0) <> 0 ORDER BY j.id" },
    { "task_without_tx", "task rows without their settle transaction",
      "SELECT format ('task %s points to transaction %s, which is %s', t.task_id, t.tx_id,"
      "   CASE WHEN j.id IS NULL THEN 'missing'"
      "        ELSE format ('%s of task %s', j.kind, COALESCE (j.task_id, 'none')) END)"
      "  FROM tasks t LEFT JOIN journal_tx j ON j.id = t.tx_id"
      " WHERE j.id IS NULL OR j.kind <> 'settle' OR j.task_id IS DISTINCT FROM t.task_id"
      " ORDER BY t.task_id" },
    { "tx_without_task", "settle transactions without a task row",
      "SELECT format ('settle transaction %s of task %s has no task row', j.id, j.task_id)"
      "  FROM journal_tx j WHERE j.kind = 'settle'"
      "   AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.tx_id = j.id) ORDER BY j.id" },
    { "settled_twice", "tasks settled more than once",
      "SELECT format ('task %s has %s settle transactions', task_id, COUNT (*))"
      "  FROM journal_tx WHERE task_id IS NOT NULL GROUP BY task_id HAVING COUNT (*) > 1"
      " UNION ALL "
      "SELECT format ('task %s has %s task rows', task_id, COUNT (*))"
      "  FROM tasks GROUP BY task_id HAVING COUNT (*) > 1" },
    { "amounts", "task rows whose amounts disagree with their journal entries",
      "SELECT format ('task %s: gamer entry %s (want %s), peer entry %s (want %s),"
      " entries total %s in absolute value (want %s) over %s entries', t.task_id, g.s,"
      " -t.gamer_charge_pico, p.s, t.peer_earning_pico, n.s,"
      " t.gamer_charge_pico + t.peer_earning_pico + t.fee_pico + abs (t.treasury_pico), n.c)"
      "  FROM tasks t"
      "  CROSS JOIN LATERAL (SELECT COALESCE (SUM (amount_pico), 0) s FROM journal_entries"
      "    WHERE tx_id = t.tx_id AND account_id = t.gamer_account) g"
      "  CROSS JOIN LATERAL (SELECT COALESCE (SUM (amount_pico), 0) s FROM journal_entries"
      "    WHERE tx_id = t.tx_id AND account_id = t.peer_account) p"
      "  CROSS JOIN LATERAL (SELECT COALESCE (SUM (abs (amount_pico)), 0) s, COUNT (*) c"
      "    FROM journal_entries WHERE tx_id = t.tx_id) n"
      " WHERE g.s <> -t.gamer_charge_pico OR p.s <> t.peer_earning_pico"
      "    OR n.s <> t.gamer_charge_pico + t.peer_earning_pico + t.fee_pico + abs (t.treasury_pico)"
      " ORDER BY t.task_id" },
    { NULL, NULL, NULL }
};

static int
s_audit (PGconn *conn, bool json)
{
    PGresult *counts = s_query (conn,
        "SELECT (SELECT COUNT (*) FROM journal_tx), (SELECT COUNT (*) FROM tasks)");
    if (!counts)
        return CTL_EXIT_ERROR;
    long long txs = strtoll (PQgetvalue (counts, 0, 0), NULL, 10);
    long long tasks = strtoll (PQgetvalue (counts, 0, 1), NULL, 10);
    PQclear (counts);
    json_t *problems = json_array ();
    long long total = 0;
    for (const s_check_t *c = s_checks; c->name; c++) {
        PGresult *res = s_query (conn, c->sql);
        if (!res) {
            json_decref (problems);
            return CTL_EXIT_ERROR;
        }
        int rows = PQntuples (res);
        total += rows;
        if (rows > 0 && !json)
            printf ("audit: FAIL %s: %d %s\n", c->name, rows, c->what);
        for (int r = 0; r < rows && r < CTL_AUDIT_SHOW; r++) {
            if (json) {
                json_t *o = json_object ();
                json_object_set_new (o, "check", json_string (c->name));
                json_object_set_new (o, "detail", json_string (PQgetvalue (res, r, 0)));
                json_array_append_new (problems, o);
            }
            else
                printf ("  %s\n", PQgetvalue (res, r, 0));
        }
        if (rows > CTL_AUDIT_SHOW && !json)
            printf ("  ... and %d more\n", rows - CTL_AUDIT_SHOW);
        PQclear (res);
    }
    if (json) {
        json_t *root = json_object ();
        json_object_set_new (root, "ok", json_boolean (total == 0));
        json_object_set_new (root, "transactions", json_integer (txs));
        json_object_set_new (root, "tasks", json_integer (tasks));
        json_object_set_new (root, "violations", json_integer (total));
        json_object_set_new (root, "problems", problems);
        s_print_json (root);
        json_decref (root);
    }
    else {
        json_decref (problems);
        if (total == 0)
            printf ("audit: OK transactions=%lld tasks=%lld\n", txs, tasks);
        else
            printf ("audit: %lld violation%s transactions=%lld tasks=%lld\n", total,
                    total == 1 ? "" : "s", txs, tasks);
    }
    return total == 0 ? CTL_EXIT_OK : CTL_EXIT_VIOLATION;
}

static void
s_notice (void *arg, const char *message)
{
    (void) arg; (void) message;
}

int
main (int argc, char *argv [])
{
    char *db = NULL, *schema = NULL;
    bool json = false;
    p2c_cfg_t table [] = {
        { "db", P2C_CFG_SECRET, "", 0, 0, &db,
          "PostgreSQL conninfo (a secret: prefer P2C2R_DB or @FILE)" },
        { "schema", P2C_CFG_STR, "public", 0, 0, &schema, "schema of the ledger's tables" },
        { "json", P2C_CFG_BOOL, "false", 0, 0, &json, "print JSON for scripts" },
        { "oneline", P2C_CFG_BOOL, "false", 0, 0, &s_oneline, "totals on one line" },
        { NULL, 0, NULL, 0, 0, NULL, NULL }
    };
    bool verbose = false;
    int rc = p2c_cfg_parse (table, &argc, argv, "p2c2r-ctl", s_usage, &verbose);
    if (rc != 0) {
        p2c_cfg_free (table);
        return rc > 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;
    }
    p2c_log_init ("ctl", verbose);
    const char *command = argc > 1 ? argv [1] : NULL;
    int (*run) (PGconn *, bool) = !command ? NULL
        : !strcmp (command, "totals") ? s_totals
        : !strcmp (command, "accounts") ? s_accounts
        : !strcmp (command, "audit") ? s_audit : NULL;
    if (!run || argc > 2) {
        fprintf (stderr, "usage: p2c2r-ctl %s\n(see --help)\n", s_usage);
        p2c_cfg_free (table);
        return CTL_EXIT_ERROR;
    }
    if (!db || !*db) {
        fprintf (stderr, "p2c2r-ctl: no database: set P2C2R_DB or --db\n");
        p2c_cfg_free (table);
        return CTL_EXIT_ERROR;
    }
    PGconn *conn = PQconnectdb (db);
    if (PQstatus (conn) != CONNECTION_OK) {
        //  libpq's message names the host, never the password
        fprintf (stderr, "p2c2r-ctl: cannot connect: %s", PQerrorMessage (conn));
        PQfinish (conn);
        p2c_cfg_free (table);
        return CTL_EXIT_ERROR;
    }
    PQsetNoticeProcessor (conn, s_notice, NULL);
    //  A read-only session in the ledger's schema
    const char *params [] = { schema };
    PGresult *res = PQexecParams (conn,
        "SELECT set_config ('search_path', quote_ident ($1), false),"
        "       set_config ('default_transaction_read_only', 'on', false)",
        1, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus (res) == PGRES_TUPLES_OK;
    PQclear (res);
    if (ok) {
        res = PQexecParams (conn, "SELECT to_regclass ('tasks') IS NOT NULL", 0, NULL, NULL,
                            NULL, NULL, 0);
        ok = PQresultStatus (res) == PGRES_TUPLES_OK && !strcmp (PQgetvalue (res, 0, 0), "t");
        PQclear (res);
        if (!ok)
            fprintf (stderr, "p2c2r-ctl: no ledger tables in schema %s (has p2c2r-ledger run?)\n",
                     schema);
    }
    else
        fprintf (stderr, "p2c2r-ctl: cannot set up the session: %s", PQerrorMessage (conn));
    //  One snapshot, so that the figures of a report agree with each other
    if (ok) {
        res = PQexec (conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        ok = PQresultStatus (res) == PGRES_COMMAND_OK;
        PQclear (res);
    }
    int status = ok ? run (conn, json) : CTL_EXIT_ERROR;
    PQfinish (conn);
    p2c_cfg_free (table);
    return status;
}
