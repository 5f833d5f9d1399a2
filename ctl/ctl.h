/*  p2c2r-ctl's parts: one context shared by the commands (ctl_cmds.c), the
    read-only PostgreSQL session, the writer that sends AdminRequests to the
    ledger through the broker (ctl_admin.c), and small helpers (ctl_util.c):
    money parsing and result printing as human tables or JSON. */
#ifndef CTL_H_INCLUDED
#define CTL_H_INCLUDED

#include "p2c_node.h"
#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#define CTL_EXIT_OK 0
#define CTL_EXIT_VIOLATION 1        //  audit found problems, or the ledger refused
#define CTL_EXIT_ERROR 2            //  usage, connection, no answer

typedef struct {
    PGconn *conn;               //  read-only session in the ledger's schema
    bool json;                  //  JSON for scripts instead of tables
    bool oneline;               //  totals on one line
    bool csv;                   //  payout export as CSV
    const char *db;             //  conninfo (secret)
    const char *schema;
    const char *broker;         //  where the ledger is, for writes
    int64_t timeout_ms;         //  how long a write waits for the ledger
    const char *since;          //  --since for statement and revenue
    const char *kind;           //  --kind for account list
    const char *memo;           //  --memo for credit
    const char *owner;          //  --owner for account create
    const char *reference;      //  --reference for payout mark-paid
    const char *from;           //  --from for rates set
    const char *status;         //  --status for payout list
    int64_t limit;              //  --limit for log
    int argc;                   //  positional arguments after the command
    char **argv;
    p2c_node_bus_t bus;         //  the bus's keys: writes use the ctl key
} ctl_t;

//  Runs the command named by argv [0] (and argv [1] for groups). Returns
//  the exit status. Opens ctl->conn itself when the command needs it.
int ctl_run (ctl_t *ctl);

//  The usage text
extern const char *ctl_usage;

//  ---- ctl_util.c
//  "12.5", "$0.000000000001" -> picodollars; exact, at most 12 decimals,
//  not negative, at most 10^6 USD. 0 or -1.
int ctl_parse_usd (const char *text, int64_t *pico_p);

//  Prints a result as a table (header, aligned columns, row count) or as
//  JSON (an array of objects; with single, the one row as an object).
//  Integers and booleans become JSON numbers and booleans; everything else,
//  NUMERIC money included, stays a string so nothing is rounded.
void ctl_print_result (PGresult *res, bool json, bool single);

//  Prints a JSON value (indented)
void ctl_print_json (json_t *value);

//  CSV field quoting (RFC 4180) of one value to stdout
void ctl_csv_field (const char *value, bool last);

void ctl_util_test (bool verbose);

//  ---- ctl_admin.c
//  Sends AdminRequest{command, args} to service "ledger" through the broker
//  and waits up to timeout_ms for the reply. Returns CTL_EXIT_OK with
//  *result_p (caller decrefs), CTL_EXIT_VIOLATION when the ledger refused
//  (printed to stderr), CTL_EXIT_ERROR when no ledger answered (printed).
//  The bus identity writes use (settings curve, keys, key-name); loaded at
//  the first ctl_admin_call, so that reads need no key. Borrowed strings.
void ctl_admin_keys (bool curve, const char *dir, const char *name);

int ctl_admin_call (const char *broker, int64_t timeout_ms, const char *command, json_t *args,
                    json_t **result_p);

//  A connection to the broker as a node of service "ctl", with the bus
//  identity of ctl_admin_keys (the operator key, refused unless its owner's
//  alone: p2c_keys_private); NULL (said on stderr) when it cannot be made
p2c_node_t *ctl_bus_node (const char *broker);

//  ---- ctl_alerts.c
//  `p2c2r-ctl alerts`: asks the scheduler through the broker for its
//  figures (StatsRequest) and prints its alerts that fire or are pending
//  (all of them with json). Returns 0 when none fires, 1 when some fire,
//  2 when no scheduler answered.
int ctl_alerts (const char *broker, int64_t timeout_ms, bool json);

//  The alerts of a StatsReply's figures as lines, to f; how many fire
size_t ctl_alerts_print (json_t *stats, FILE *f);

void ctl_alerts_test (bool verbose);

//  ---- ctl_log.c
//  `p2c2r-ctl log [--limit N]`: the admin log, newest first, and its head
//  (seq and hash) to note elsewhere. Returns the exit status.
int ctl_log (ctl_t *ctl);

//  ---- ctl_keys.c
//  `p2c2r-ctl keys init|list|add|revoke` on the key directory dir (no
//  database, no broker: the broker rereads the allow-list itself). argv
//  starts after "keys". Returns the exit status.
int ctl_keys (const char *dir, int argc, char **argv);

#endif
