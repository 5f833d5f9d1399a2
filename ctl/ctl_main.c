/*  p2c2r-ctl: the operator's tool (commands in ctl_cmds.c, `--help` lists
    them). Reads go straight to PostgreSQL on a read-only session in the
    ledger's schema (--db or P2C2R_DB, --schema, as the ledger); every write
    goes through the ledger as an AdminRequest via the broker (--broker),
    because the ledger is the only writer and owns the rules. Human tables by
    default, --json for scripts. `psql [ARGS]` runs psql on the same
    database and schema, the password and conninfo passed in its
    environment, never on a command line. Exit status: 0 ok, 1 a violation
    (audit) or a refusal (the ledger said no), 2 a usage or connection error. */
#include "ctl.h"
#include "ctl_config.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_node.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
s_notice (void *arg, const char *message)
{
    (void) arg; (void) message;
}

//  Replaces this process with psql on the ledger's database: the conninfo
//  becomes PG* environment variables, the schema the search_path.
static int
s_psql (const char *db, const char *schema, int argc, char **argv)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse (db, &err);
    if (!opts) {
        fprintf (stderr, "p2c2r-ctl: bad conninfo: %s", err ? err : "?\n");
        PQfreemem (err);
        return CTL_EXIT_ERROR;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (o->val && *o->val && o->envvar)
            setenv (o->envvar, o->val, 1);
    PQconninfoFree (opts);
    char *options = p2c_sprintf ("-c search_path=%s", schema);
    setenv ("PGOPTIONS", options, 1);
    zstr_free (&options);
    char **args = (char **) p2c_calloc ((size_t) argc + 2, sizeof (char *));
    args [0] = "psql";
    for (int i = 0; i < argc; i++)
        args [i + 1] = argv [i];
    execvp ("psql", args);
    fprintf (stderr, "p2c2r-ctl: cannot run psql (apt-get install postgresql-client)\n");
    free (args);
    return CTL_EXIT_ERROR;
}

//  A read-only session in the ledger's schema, inside one snapshot
static PGconn *
s_connect (const char *db, const char *schema)
{
    PGconn *conn = PQconnectdb (db);
    if (PQstatus (conn) != CONNECTION_OK) {
        //  libpq's message names the host, never the password
        fprintf (stderr, "p2c2r-ctl: cannot connect: %s", PQerrorMessage (conn));
        PQfinish (conn);
        return NULL;
    }
    PQsetNoticeProcessor (conn, s_notice, NULL);
    const char *params [] = { schema };
    PGresult *res = PQexecParams (conn,
        "SELECT set_config ('search_path', quote_ident ($1), false),"
        "       set_config ('default_transaction_read_only', 'on', false)",
        1, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus (res) == PGRES_TUPLES_OK;
    PQclear (res);
    if (!ok)
        fprintf (stderr, "p2c2r-ctl: cannot set up the session: %s", PQerrorMessage (conn));
    if (ok) {
        res = PQexec (conn, "SELECT to_regclass ('payouts') IS NOT NULL");
        ok = PQresultStatus (res) == PGRES_TUPLES_OK && !strcmp (PQgetvalue (res, 0, 0), "t");
        PQclear (res);
        if (!ok)
            fprintf (stderr, "p2c2r-ctl: no ledger tables (version 2) in schema %s"
                     " (has p2c2r-ledger run?)\n", schema);
    }
    if (ok) {
        res = PQexec (conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        ok = PQresultStatus (res) == PGRES_COMMAND_OK;
        PQclear (res);
    }
    if (!ok) {
        PQfinish (conn);
        return NULL;
    }
    return conn;
}

int
main (int argc, char *argv [])
{
    //  Everything after "psql" belongs to psql, not to our flags
    int psql_at = 0;
    for (int i = 1; i < argc && !psql_at; i++)
        if (!strcmp (argv [i], "psql"))
            psql_at = i;
    int our_argc = psql_at ? psql_at + 1 : argc;
    //  Kept aside: parsing ends our part of argv with a NULL
    char **psql_argv = psql_at ? argv + psql_at + 1 : NULL;
    int psql_argc = psql_at ? argc - psql_at - 1 : 0;
    char **saved = psql_at ? (char **) calloc ((size_t) psql_argc + 1, sizeof (char *)) : NULL;
    for (int i = 0; i < psql_argc; i++)
        saved [i] = psql_argv [i];
    ctl_t ctl;
    bool verbose = false;
    int rc = ctl_config_load (&ctl, &our_argc, argv, &verbose);
    if (rc != 0) {
        free (saved);
        return rc > 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;
    }
    p2c_log_init ("ctl", verbose);
    //  The allow-list needs no database
    if (our_argc > 1 && !strcmp (argv [1], "keys")) {
        rc = ctl_keys (ctl.bus.keys, our_argc - 2, argv + 2);
        free (saved);
        ctl_config_free (&ctl);
        return rc;
    }
    //  The alerts come from the scheduler, over the bus
    if (our_argc > 1 && !strcmp (argv [1], "alerts")) {
        free (saved);
        if (our_argc > 2) {
            fprintf (stderr, "usage: p2c2r-ctl [--json] alerts\n");
            ctl_config_free (&ctl);
            return CTL_EXIT_ERROR;
        }
        zsys_init ();
        zsys_set_logstream (NULL);
        ctl_admin_keys (ctl.bus.curve, ctl.bus.keys, ctl.bus.key_name);
        rc = ctl_alerts (ctl.broker, ctl.timeout_ms, ctl.json);
        ctl_config_free (&ctl);
        return rc;
    }
    if (!*ctl.db) {
        fprintf (stderr, "p2c2r-ctl: no database: set P2C2R_DB or --db\n");
        free (saved);
        ctl_config_free (&ctl);
        return CTL_EXIT_ERROR;
    }
    if (psql_at) {
        rc = s_psql (ctl.db, ctl.schema, psql_argc, saved);
        free (saved);
        ctl_config_free (&ctl);
        return rc;
    }
    zsys_init ();
    zsys_set_logstream (NULL);
    //  Reads need no key: it is loaded for the first write
    ctl_admin_keys (ctl.bus.curve, ctl.bus.keys, ctl.bus.key_name);
    ctl.argc = our_argc - 1;
    ctl.argv = argv + 1;
    if (ctl.argc < 1) {
        fprintf (stderr, "usage: p2c2r-ctl %s\n", ctl_usage);
        ctl_config_free (&ctl);
        return CTL_EXIT_ERROR;
    }
    ctl.conn = s_connect (ctl.db, ctl.schema);
    int status_code = ctl.conn ? ctl_run (&ctl) : CTL_EXIT_ERROR;
    PQfinish (ctl.conn);
    ctl_config_free (&ctl);
    return status_code;
}
