/*  p2c2r-ctl log: the operators' log (ledger/sql/007_admin_log.sql), newest
    first: who did what, with what arguments, what it changed. Its head, the
    last row's seq and hash, is printed too: noted somewhere else (a ticket,
    a chat), it lets the audit's chain check catch even a rewrite of the
    whole log by the database's owner. */
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>

int
ctl_log (ctl_t *ctl)
{
    char limit [32];
    snprintf (limit, sizeof limit, "%lld", (long long) ctl->limit);
    const char *params [] = { limit };
    PGresult *res = PQexecParams (ctl->conn,
        "SELECT seq, to_char (at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS at_utc, who,"
        "       command, args::text AS args, before::text AS before, after::text AS after,"
        "       array_to_string (tx_ids, ',') AS tx_ids, hash"
        "  FROM admin_log ORDER BY seq DESC LIMIT $1::bigint", 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (res) != PGRES_TUPLES_OK) {
        fprintf (stderr, "p2c2r-ctl: query failed: %s", PQresultErrorMessage (res));
        PQclear (res);
        return CTL_EXIT_ERROR;
    }
    ctl_print_result (res, ctl->json, false);
    if (!ctl->json && PQntuples (res) > 0)
        printf ("head: seq=%s hash=%s\n", PQgetvalue (res, 0, 0),
                PQgetvalue (res, 0, PQfnumber (res, "hash")));
    PQclear (res);
    return CTL_EXIT_OK;
}
