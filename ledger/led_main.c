/*  p2c2r-ledger: the only writer of PostgreSQL. Applies the schema
    migrations, answers AuthRequest, settles tasks in batched, idempotent
    transactions, runs the operator's writes from p2c2r-ctl and tells the
    scheduler the gamers' balances (see led_server.h). This file parses the settings and runs
    the server actor until a signal. */
#include "led_server.h"
#include "p2c_cfg.h"
#include "p2c_log.h"
#include "p2c_node.h"

#include <libgen.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#define LED_SHARE_SQL "/usr/local/share/p2c2r/sql"

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
        if (stat (dir, &st) == 0 && S_ISDIR (st.st_mode))
            return dir;
        zstr_free (&dir);
    }
    return strdup (LED_SHARE_SQL);
}

int
main (int argc, char *argv [])
{
    char *broker = NULL, *node_id = NULL, *db = NULL, *schema = NULL, *sql_dir = NULL;
    long long gamer_rate = 0, peer_rate = 0, fee_bp = 0, batch_max = 0;
    long long starting_credit = 0, payout_threshold = 0, db_workers = 0;
    //  The bus's keys (docs/trust.md)
    char *keys = NULL, *key_name = NULL;
    bool curve = true;
    p2c_cfg_t table [] = {
        { "keys", P2C_CFG_STR, "var/keys", 0, 0, &keys,
          "key directory of the bus (p2c2r-ctl keys)" },
        { "key-name", P2C_CFG_STR, "ledger", 0, 0, &key_name,
          "this node's key pair in --keys: NAME.key_secret" },
        { "curve", P2C_CFG_BOOL, "true", 0, 0, &curve,
          "CURVE to the broker; false only to measure its cost" },
        { "broker", P2C_CFG_STR, "tcp://127.0.0.1:5555", 0, 0, &broker, "broker endpoint" },
        { "node-id", P2C_CFG_STR, "", 0, 0, &node_id,
          "node id on the broker (default: ledger-HOST-PID-RANDOM)" },
        { "db", P2C_CFG_SECRET, "", 0, 0, &db,
          "PostgreSQL conninfo, e.g. 'host=/tmp/pg/run port=5432 dbname=p2c2r user=p2c2r'"
          " (a secret: prefer P2C2R_DB or @FILE; never logged)" },
        { "schema", P2C_CFG_STR, "public", 0, 0, &schema,
          "PostgreSQL schema of the ledger's tables ([a-z0-9_])" },
        { "sql-dir", P2C_CFG_STR, "", 0, 0, &sql_dir,
          "migrations directory (default: BINDIR/../ledger/sql if it exists, else "
          LED_SHARE_SQL ")" },
        { "gamer-rate-pico-per-hour", P2C_CFG_INT, "10000000000", 0, 1000000000000000LL,
          &gamer_rate, "what a gamer pays per compute hour, picodollars (seeds an empty rates"
          " table; later changes: p2c2r-ctl rates set)" },
        { "peer-rate-pico-per-hour", P2C_CFG_INT, "150000000000", 0, 1000000000000000LL,
          &peer_rate, "what a peer earns per compute hour, picodollars" },
        { "fee-bp", P2C_CFG_INT, "1000", 0, 10000, &fee_bp,
          "platform fee, basis points of the gamer charge" },
        { "starting-credit-pico", P2C_CFG_INT, "0", 0, 1000000000000000000LL, &starting_credit,
          "credited to every new gamer from the external funding account, picodollars" },
        { "payout-threshold-pico", P2C_CFG_INT, "10000000000000", 1, 1000000000000000000LL,
          &payout_threshold, "least payable balance a peer's payout request moves, picodollars"
          " (default $10)" },
        { "batch-max", P2C_CFG_INT, "5000", 1, 100000, &batch_max,
          "most settlements per database transaction" },
        //  One by default: every batch updates the platform fee and treasury
        //  accounts' rows, so a second batch in flight waits on their row
        //  locks until the first commits; it only halves the batches (and
        //  doubles the statements per task). Measured at c256: one worker
        //  10.5k tasks/s and 56 us of ledger + PostgreSQL CPU per task,
        //  two workers 7.9k and 83 us. More help when batches hit batch-max.
        { "db-workers", P2C_CFG_INT, "1", 1, LED_MAX_DB_WORKERS, &db_workers,
          "database connections settling batches at once (each batch locks the fee and"
          " treasury rows until it commits, so more than one helps only past batch-max)" },
        { NULL, 0, NULL, 0, 0, NULL, NULL }
    };
    bool verbose = false;
    int rc = p2c_cfg_parse (table, &argc, argv, "p2c2r-ledger", "[options]", &verbose);
    if (rc != 0) {
        p2c_cfg_free (table);
        return rc > 0 ? 0 : 2;
    }
    p2c_log_init ("ledger", verbose);
    if (p2c_node_setup (curve, keys, key_name) != 0) {
        p2c_cfg_free (table);
        return 2;
    }
    if (argc > 1) {
        log_warn ("ledger: unexpected argument '%s' (see --help)", argv [1]);
        p2c_cfg_free (table);
        return 2;
    }
    if (!db || !*db) {
        log_warn ("ledger: no database: set P2C2R_DB or --db (see --help)");
        p2c_cfg_free (table);
        return 2;
    }
    if (!*sql_dir) {
        free (sql_dir);
        sql_dir = s_default_sql_dir ();
    }
    zsys_init ();
    zsys_set_logstream (NULL);
    led_server_args_t args = {
        broker, node_id, (size_t) batch_max, (size_t) db_workers,
        { db, schema, sql_dir,
          { (int64_t) gamer_rate, (int64_t) peer_rate, (int32_t) fee_bp },
          { (int64_t) starting_credit, (int64_t) payout_threshold } }
    };
    log_info ("ledger: starting sql_dir=%s schema=%s gamer_rate=%lld peer_rate=%lld fee_bp=%lld"
              " starting_credit=%lld payout_threshold=%lld", sql_dir, schema, gamer_rate,
              peer_rate, fee_bp, starting_credit, payout_threshold);
    zactor_t *server = zactor_new (led_server_actor, &args);
    int status = 0;
    //  Blocks until the server says it stopped or failed, or a signal
    char *said = zstr_recv (server);
    if (said && !strcmp (said, "FAILED"))
        status = 1;
    zstr_free (&said);
    zactor_destroy (&server);
    p2c_cfg_free (table);
    free (sql_dir);
    log_info ("ledger: stopped");
    return status;
}
