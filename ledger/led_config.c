/*  The ledger's settings table (see led_config.h). */
#include "led_config.h"
#include "p2c_cfg.h"
#include "p2c_mem.h"
#include "p2c_money.h"
#include "p2c_test.h"

#include <assert.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_F(field) P2C_CFG_FIELD (led_config_t, server.field)
static const p2c_cfg_t s_table [] = {
    P2C_NODE_BUS_ENTRIES (led_config_t, bus, "ledger"),
    { "broker", P2C_CFG_STR, S_F (broker), "tcp://127.0.0.1:5555", .help = "broker endpoint" },
    { "node-id", P2C_CFG_STR, S_F (node_id), "",
      .help = "node id on the broker (default: ledger-HOST-PID-RANDOM)" },
    { "metrics-listen", P2C_CFG_STR, S_F (metrics_listen), "127.0.0.1:9467",
      .help = "HOST:PORT of the Prometheus /metrics listener (empty: none)" },
    { "db", P2C_CFG_SECRET, S_F (db.conninfo), "",
      .help = "PostgreSQL conninfo, e.g. 'host=/tmp/pg/run port=5432 dbname=p2c2r user=p2c2r'"
      " (a secret: prefer P2C2R_DB or @FILE; never logged)" },
    { "owner-db", P2C_CFG_SECRET, S_F (db.owner_conninfo), "",
      .help = "conninfo of the tables' owner, for the migrations only; --db is then the"
      " ledger's own role (DBNAME_ledger). Empty: --db does both (a secret: prefer"
      " P2C2R_OWNER_DB or @FILE)" },
    { "schema", P2C_CFG_STR, S_F (db.schema), "public",
      .help = "PostgreSQL schema of the ledger's tables ([a-z0-9_])" },
    { "sql-dir", P2C_CFG_STR, S_F (db.sql_dir), "",
      .help = "migrations directory (default: BINDIR/../ledger/sql if it exists, else "
      LED_SHARE_SQL ")" },
    //  P2C_RATES_DEFAULT's rates (the self-test holds them equal)
    { "gamer-rate-pico-per-hour", P2C_CFG_INT64, S_F (db.rates.gamer_per_hour), "10000000000",
      0, 1000000000000000LL, .help = "what a gamer pays per compute hour, picodollars (seeds"
      " an empty rates table; later changes: p2c2r-ctl rates set)" },
    { "peer-rate-pico-per-hour", P2C_CFG_INT64, S_F (db.rates.peer_per_hour), "150000000000",
      0, 1000000000000000LL, .help = "what a peer earns per compute hour, picodollars" },
    { "fee-bp", P2C_CFG_INT, S_F (db.rates.fee_bp), "1000", 0, 10000,
      .help = "platform fee, basis points of the gamer charge" },
    { "starting-credit-pico", P2C_CFG_INT64, S_F (db.policy.starting_credit_pico), "0", 0,
      1000000000000000000LL, .help = "credited to every new gamer from the external funding"
      " account, picodollars" },
    { "payout-threshold-pico", P2C_CFG_INT64, S_F (db.policy.payout_threshold_pico),
      "10000000000000", 1, 1000000000000000000LL, .help = "least payable balance a peer's"
      " payout request moves, picodollars (default $10)" },
    { "batch-max", P2C_CFG_SIZE, S_F (batch_max), "5000", 1, 100000,
      .help = "most settlements per database transaction" },
    //  One by default: every batch updates the platform fee and treasury
    //  accounts' rows, so a second batch in flight waits on their row
    //  locks until the first commits; it only halves the batches (and
    //  doubles the statements per task). Measured at c256: one worker
    //  10.5k tasks/s and 56 us of ledger + PostgreSQL CPU per task,
    //  two workers 7.9k and 83 us. More help when batches hit batch-max.
    { "db-workers", P2C_CFG_SIZE, S_F (db_workers), "1", 1, LED_MAX_DB_WORKERS,
      .help = "database connections settling batches at once (each batch locks the fee and"
      " treasury rows until it commits, so more than one helps only past batch-max)" },
    //  One tiny statement (a row per day) on the first database thread;
    //  the stats show figures at most this old
    { "money-refresh-ms", P2C_CFG_INT, S_F (money_refresh_ms), "2000", 100, 600000,
      .help = "how often the money summary in the stats and /metrics is read, ms" },
    { .name = NULL }
};
#undef S_F

//  The migrations: ledger/sql of the source tree when the binary runs from
//  it (bin/../ledger/sql), else the installed copy (make install).
static char *
s_default_sql_dir (void)
{
    char exe [PATH_MAX];
    ssize_t n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe [n] = 0;
        char *dir = zsys_sprintf ("%s/../ledger/sql", dirname (exe));
        struct stat st;
        if (dir && stat (dir, &st) == 0 && S_ISDIR (st.st_mode))
            return dir;
        zstr_free (&dir);
    }
    return p2c_strdup (LED_SHARE_SQL);
}

static int
s_check (void *arg)
{
    led_config_t *self = (led_config_t *) arg;
    led_worker_args_t *db = &self->server.db;
    if (!*db->sql_dir) {
        char *dir = s_default_sql_dir ();
        //  The table owns the field: p2c_cfg_free frees the new value
        free ((char *) db->sql_dir);
        db->sql_dir = dir;
    }
    return 0;
}

static const p2c_cfg_spec_t s_spec = { "p2c2r-ledger", "[options]", s_table, s_check };

//  led_config_defaults, led_config_free
P2C_CFG_FUNCTIONS_BUT_LOAD (led_config, led_config_t, &s_spec)

int
led_config_load (led_config_t *self, int argc, char **argv, bool *verbose_p)
{
    int rc = p2c_cfg_load (&s_spec, self, sizeof *self, &argc, argv, verbose_p);
    if (rc != 0)
        return rc;
    if (!*self->server.db.conninfo) {
        fprintf (stderr, "p2c2r-ledger: no database: set P2C2R_DB or --db (see --help)\n");
        led_config_free (self);
        return -1;
    }
    return 0;
}

void
led_config_test (bool verbose)
{
    (void) verbose;
    led_config_t cfg;
    led_config_defaults (&cfg);
    p2c_rates_t rates = P2C_RATES_DEFAULT;
    P2C_CHECK (cfg.server.db.rates.gamer_per_hour == rates.gamer_per_hour);
    P2C_CHECK (cfg.server.db.rates.peer_per_hour == rates.peer_per_hour);
    P2C_CHECK (cfg.server.db.rates.fee_bp == rates.fee_bp);
    P2C_CHECK (cfg.server.db.policy.payout_threshold_pico == 10 * P2C_PICO_PER_USD);
    P2C_CHECK (cfg.server.batch_max == 5000 && cfg.server.db_workers == 1);
    P2C_CHECK (!strcmp (cfg.server.db.schema, "public"));
    P2C_CHECK (cfg.server.db.sql_dir && *cfg.server.db.sql_dir);
    led_config_free (&cfg);
    P2C_CHECK (cfg.server.db.sql_dir == NULL);

    //  A database is required; a given sql-dir is kept
    unsetenv ("P2C2R_DB");
    char a0 [] = "p2c2r-ledger", a1 [] = "--sql-dir", a2 [] = "/x/sql", a3 [] = "--db",
         a4 [] = "dbname=x", a5 [] = "--fee-bp", a6 [] = "250";
    char *argv [] = { a0, a1, a2, NULL };
    P2C_CHECK (led_config_load (&cfg, 3, argv, NULL) == -1);
    char *argv2 [] = { a0, a1, a2, a3, a4, a5, a6, NULL };
    P2C_CHECK (led_config_load (&cfg, 7, argv2, NULL) == 0);
    P2C_CHECK (!strcmp (cfg.server.db.sql_dir, "/x/sql"));
    P2C_CHECK (!strcmp (cfg.server.db.conninfo, "dbname=x") && cfg.server.db.rates.fee_bp == 250);
    led_config_free (&cfg);
}
