/*  p2c2r-ctl's settings table (see ctl_config.h). */
#include "ctl_config.h"
#include "p2c_cfg.h"
#include "p2c_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_F(field) P2C_CFG_FIELD (ctl_t, field)
static const p2c_cfg_t s_table [] = {
    P2C_NODE_BUS_ENTRIES (ctl_t, bus, "ctl"),
    { "db", P2C_CFG_SECRET, S_F (db), "",
      .help = "PostgreSQL conninfo (a secret: prefer P2C2R_DB or @FILE)" },
    { "schema", P2C_CFG_STR, S_F (schema), "public", .help = "schema of the ledger's tables" },
    { "broker", P2C_CFG_STR, S_F (broker), "tcp://127.0.0.1:5555",
      .help = "broker endpoint, for writes through the ledger and alerts from the scheduler" },
    { "timeout-ms", P2C_CFG_INT64, S_F (timeout_ms), "10000", 100, 600000,
      .help = "how long a write waits for the ledger's answer" },
    { "json", P2C_CFG_BOOL, S_F (json), "false", .help = "print JSON for scripts" },
    { "oneline", P2C_CFG_BOOL, S_F (oneline), "false", .help = "totals on one line" },
    { "csv", P2C_CFG_BOOL, S_F (csv), "false", .help = "payout export: CSV" },
    { "since", P2C_CFG_STR, S_F (since), "",
      .help = "statement, revenue: from this time on (e.g. 2026-01-01 or '2026-01-01"
      " 12:00+00')" },
    { "kind", P2C_CFG_STR, S_F (kind), "", .help = "account list: only this kind" },
    { "memo", P2C_CFG_STR, S_F (memo), "", .help = "credit: a note kept with the transaction" },
    { "owner", P2C_CFG_STR, S_F (owner), "",
      .help = "account create: the account's holder (as account link)" },
    { "reference", P2C_CFG_STR, S_F (reference), "",
      .help = "payout mark-paid: the payment's reference" },
    { "from", P2C_CFG_STR, S_F (from), "", .help = "rates set: in force from (default: now)" },
    { "status", P2C_CFG_STR, S_F (status), "all",
      .help = "payout list: pending, paid or all" },
    { "limit", P2C_CFG_INT64, S_F (limit), "20", 1, 100000,
      .help = "log: how many rows, newest first" },
    { .name = NULL }
};
#undef S_F

void
ctl_config_defaults (ctl_t *self)
{
    p2c_cfg_spec_t spec = { "p2c2r-ctl", "", s_table, NULL };
    p2c_cfg_init (&spec, self, sizeof *self);
}

int
ctl_config_load (ctl_t *self, int *argc_p, char **argv, bool *verbose_p)
{
    memset (self, 0, sizeof *self);
    //  The usage text is ctl_cmds.c's, not a constant here; the command and
    //  its arguments stay in argv (operands, not refused)
    p2c_cfg_spec_t spec = { "p2c2r-ctl", ctl_usage, s_table, NULL };
    //  (a database is checked for by main: `keys` needs none)
    return p2c_cfg_parse (&spec, self, argc_p, argv, verbose_p);
}

void
ctl_config_free (ctl_t *self)
{
    p2c_cfg_free (s_table, self);
}

void
ctl_config_test (bool verbose)
{
    (void) verbose;
    ctl_t ctl;
    ctl_config_defaults (&ctl);
    P2C_CHECK (!strcmp (ctl.status, "all") && !strcmp (ctl.schema, "public"));
    P2C_CHECK (ctl.timeout_ms == 10000 && !ctl.json && !ctl.csv && !ctl.oneline);
    P2C_CHECK (ctl.limit == 20);
    ctl_config_free (&ctl);
    P2C_CHECK (ctl.status == NULL);

    unsetenv ("P2C2R_DB");
    char a0 [] = "p2c2r-ctl", a1 [] = "--json", a2 [] = "balance", a3 [] = "--db",
         a4 [] = "dbname=x";
    char *argv [] = { a0, a1, a2, NULL };
    int argc = 3;
    //  No database is the main's to refuse (`keys` needs none)
    P2C_CHECK (ctl_config_load (&ctl, &argc, argv, NULL) == 0 && !strcmp (ctl.db, ""));
    P2C_CHECK (!strcmp (ctl.bus.key_name, "ctl") && ctl.bus.curve);
    ctl_config_free (&ctl);
    char *argv2 [] = { a0, a1, a2, a3, a4, NULL };
    argc = 5;
    P2C_CHECK (ctl_config_load (&ctl, &argc, argv2, NULL) == 0);
    P2C_CHECK (ctl.json && argc == 2 && !strcmp (argv2 [1], "balance"));
    ctl_config_free (&ctl);
}
