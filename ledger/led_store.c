/*  The ledger's PostgreSQL store (see led_store.h). Settlement of a batch is
    one call of the SQL function ledger_settle (migration 004) over arrays,
    prepared once per connection and run in autocommit: one round trip and
    one commit per batch, and a thousand tasks cost little more than one.
    Idempotence comes from the unique task_id of journal_tx (INSERT ... ON
    CONFLICT DO NOTHING), which also serialises two ledgers settling the
    same task at once. */
#include "led_store.h"
#include "p2c_log.h"
#include "p2c_tasks.h"
#include "p2c_test.h"

#include <czmq.h>
#include <dirent.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Serialises migrations of every ledger that starts at the same time
#define LED_MIGRATE_LOCK_KEY "7321000101"
#define LED_MAX_SQL_FILE (1024 * 1024)
#define LED_MAX_MIGRATIONS 1000

//  The settlement function of migration 004, prepared once per connection
#define LED_SETTLE_STMT "led_settle"
#define LED_SETTLE_SQL \
    "SELECT r_what, r_n, r_a, r_b, r_c, r_d FROM ledger_settle ($1::bigint, $2::text[]," \
    " $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[]," \
    " $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint, $14::bigint)"
#define LED_SETTLE_PARAMS 14
//  Calls of the function per batch: a rates change makes one more
#define LED_SETTLE_TRIES 3

struct _led_store_t {
    char *conninfo;             //  secret: never logged
    char *schema;               //  where our tables live
    char *sql_dir;              //  migrations
    p2c_rates_t rates;          //  seed of the rates table when it is empty
    led_policy_t policy;        //  starting credit, payout threshold
    PGconn *conn;               //  NULL while disconnected
    int64_t fee_account;        //  fixed system accounts, loaded at connect
    int64_t treasury_account;
    int64_t external_account;   //  where top-ups come from and payouts go
    int64_t payouts_account;    //  payouts requested, not yet paid
    int64_t settle_rate_id;     //  rates row last seen in force (0: none yet)
    p2c_rates_t settle_rates;   //  its rates, which settlements are computed at
    led_balance_t *bal;         //  gamer balances of the last call
    size_t bal_count, bal_cap;
    char error [256];           //  first line of the last failed statement's error
};

static void
s_bal_reset (led_store_t *self)
{
    self->bal_count = 0;
}

static void
s_bal_add (led_store_t *self, int64_t id, int64_t balance, bool disabled)
{
    if (self->bal_count == self->bal_cap) {
        self->bal_cap = self->bal_cap ? self->bal_cap * 2 : 64;
        self->bal = (led_balance_t *) realloc (self->bal, self->bal_cap * sizeof (led_balance_t));
        assert (self->bal);
    }
    led_balance_t *b = &self->bal [self->bal_count++];
    b->account_id = id;
    b->balance_pico = balance;
    b->disabled = disabled;
}

const led_balance_t *
led_store_balances (led_store_t *self, size_t *count_p)
{
    *count_p = self->bal_count;
    return self->bal;
}

void
led_store_set_policy (led_store_t *self, const led_policy_t *policy)
{
    self->policy = *policy;
}

void
led_settle_clear (led_settle_t *item)
{
    free (item->task_id);
    free (item->task_type);
    free (item->reply_to);
    free (item->reason);
    item->task_id = item->task_type = item->reply_to = item->reason = NULL;
}

static bool
s_valid_schema (const char *schema)
{
    size_t len = strlen (schema);
    if (len == 0 || len > 63 || (schema [0] >= '0' && schema [0] <= '9'))
        return false;
    for (const char *c = schema; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return false;
    return true;
}

led_store_t *
led_store_new (const char *conninfo, const char *schema, const char *sql_dir,
               const p2c_rates_t *rates)
{
    if (!conninfo || !sql_dir || !rates)
        return NULL;
    if (!schema || !*schema)
        schema = "public";
    if (!s_valid_schema (schema))
        return NULL;
    led_store_t *self = (led_store_t *) zmalloc (sizeof (led_store_t));
    self->conninfo = strdup (conninfo);
    self->schema = strdup (schema);
    self->sql_dir = strdup (sql_dir);
    self->rates = *rates;
    led_policy_t policy = LED_POLICY_DEFAULT;
    self->policy = policy;
    return self;
}

void
led_store_destroy (led_store_t **self_p)
{
    led_store_t *self = *self_p;
    if (!self)
        return;
    led_store_disconnect (self);
    //  Do not leave the secret in freed memory
    explicit_bzero (self->conninfo, strlen (self->conninfo));
    free (self->conninfo);
    free (self->schema);
    free (self->sql_dir);
    free (self->bal);
    free (self);
    *self_p = NULL;
}

bool
led_store_connected (led_store_t *self)
{
    return self->conn && PQstatus (self->conn) == CONNECTION_OK;
}

void
led_store_disconnect (led_store_t *self)
{
    if (self->conn) {
        PQfinish (self->conn);
        self->conn = NULL;
    }
}

//  The first line of the server's error, for one-line logs
static void
s_log_error (led_store_t *self, const char *what, PGresult *res)
{
    const char *err = res ? PQresultErrorMessage (res) : NULL;
    if (!err || !*err)
        err = self->conn ? PQerrorMessage (self->conn) : "no connection";
    int len = (int) strcspn (err, "\n");
    snprintf (self->error, sizeof self->error, "%.*s", len, err);
    log_warn ("store: %s failed error=\"%.*s\"", what, len, err);
}

//  Runs one parametrised statement; returns the result when its status is
//  the expected one, else logs, clears and returns NULL.
static PGresult *
s_exec (led_store_t *self, const char *what, const char *sql, int nparams,
        const char *const *values, ExecStatusType expect)
{
    if (!self->conn)
        return NULL;
    PGresult *res = PQexecParams (self->conn, sql, nparams, NULL, values, NULL, NULL, 0);
    if (!res || PQresultStatus (res) != expect) {
        s_log_error (self, what, res);
        PQclear (res);
        return NULL;
    }
    return res;
}

static bool
s_command (led_store_t *self, const char *what, const char *sql, int nparams,
           const char *const *values)
{
    PGresult *res = s_exec (self, what, sql, nparams, values, PGRES_COMMAND_OK);
    PQclear (res);
    return res != NULL;
}

//  After a failed statement: roll back, or drop a broken connection so the
//  owner reconnects.
static void
s_abort (led_store_t *self)
{
    if (!self->conn)
        return;
    if (PQstatus (self->conn) != CONNECTION_OK) {
        log_warn ("store: connection lost");
        led_store_disconnect (self);
        return;
    }
    PGresult *res = PQexec (self->conn, "ROLLBACK");
    PQclear (res);
    if (PQstatus (self->conn) != CONNECTION_OK)
        led_store_disconnect (self);
}

static int64_t
s_get_int64 (PGresult *res, int row, int col)
{
    return strtoll (PQgetvalue (res, row, col), NULL, 10);
}

//  Server notices ("already exists, skipping") go to the debug log, not
//  to stderr unformatted
static void
s_notice (void *arg, const char *message)
{
    (void) arg;
    log_debug ("store: notice message=\"%.*s\"", (int) strcspn (message, "\n"), message);
}

int
led_store_connect (led_store_t *self)
{
    led_store_disconnect (self);
    self->conn = PQconnectdb (self->conninfo);
    if (!self->conn || PQstatus (self->conn) != CONNECTION_OK) {
        s_log_error (self, "connect", NULL);
        led_store_disconnect (self);
        return -1;
    }
    PQsetNoticeProcessor (self->conn, s_notice, NULL);
    //  The schema name is checked to be [a-z0-9_] in led_store_new; an
    //  identifier cannot be a parameter, so it is quoted by libpq.
    char *ident = PQescapeIdentifier (self->conn, self->schema, strlen (self->schema));
    char *sql = ident ? zsys_sprintf ("CREATE SCHEMA IF NOT EXISTS %s", ident) : NULL;
    PQfreemem (ident);
    //  Under the migration lock: two connections running CREATE SCHEMA IF
    //  NOT EXISTS at once can both try to create it, and one then fails on
    //  the catalog's unique index (the ledger's database workers connect
    //  together)
    bool ok = sql && s_command (self, "create schema begin", "BEGIN", 0, NULL);
    if (ok) {
        PGresult *res = s_exec (self, "create schema lock",
                                "SELECT pg_advisory_xact_lock (" LED_MIGRATE_LOCK_KEY ")", 0,
                                NULL, PGRES_TUPLES_OK);
        ok = res != NULL;
        PQclear (res);
        ok = ok && s_command (self, "create schema", sql, 0, NULL)
            && s_command (self, "create schema commit", "COMMIT", 0, NULL);
        if (!ok)
            s_abort (self);
    }
    zstr_free (&sql);
    if (ok) {
        //  Our tables first; pg_catalog stays implicit
        const char *params [] = { self->schema };
        PGresult *res = s_exec (self, "set search_path",
                                "SELECT pg_catalog.set_config ('search_path', quote_ident ($1), false)",
                                1, params, PGRES_TUPLES_OK);
        ok = res != NULL;
        PQclear (res);
    }
    if (!ok) {
        led_store_disconnect (self);
        return -1;
    }
    if (led_store_migrate (self) < 0) {
        led_store_disconnect (self);
        return -1;
    }
    PGresult *res = s_exec (self, "load system accounts",
        "SELECT (SELECT id FROM accounts WHERE kind = 'platform_fee' AND name = 'platform'),"
        "       (SELECT id FROM accounts WHERE kind = 'treasury' AND name = 'treasury'),"
        "       (SELECT id FROM accounts WHERE kind = 'external' AND name = 'funding'),"
        "       (SELECT id FROM accounts WHERE kind = 'payouts_pending' AND name = 'payouts')",
        0, NULL, PGRES_TUPLES_OK);
    if (!res || PQntuples (res) != 1 || PQgetisnull (res, 0, 0) || PQgetisnull (res, 0, 1)
        || PQgetisnull (res, 0, 2) || PQgetisnull (res, 0, 3)) {
        log_warn ("store: system accounts missing schema=%s", self->schema);
        PQclear (res);
        led_store_disconnect (self);
        return -1;
    }
    self->fee_account = s_get_int64 (res, 0, 0);
    self->treasury_account = s_get_int64 (res, 0, 1);
    self->external_account = s_get_int64 (res, 0, 2);
    self->payouts_account = s_get_int64 (res, 0, 3);
    PQclear (res);
    //  The rate flags seed an empty rates table; later changes go through
    //  `p2c2r-ctl rates set`. The lock makes two starting ledgers seed once.
    char g [32], p [32], f [32];
    snprintf (g, sizeof g, "%lld", (long long) self->rates.gamer_per_hour);
    snprintf (p, sizeof p, "%lld", (long long) self->rates.peer_per_hour);
    snprintf (f, sizeof f, "%d", (int) self->rates.fee_bp);
    const char *rp [] = { g, p, f };
    bool seeded = s_command (self, "rates begin", "BEGIN", 0, NULL)
        && s_command (self, "rates lock", "LOCK TABLE rates IN SHARE ROW EXCLUSIVE MODE", 0, NULL)
        && s_command (self, "rates seed",
                      "INSERT INTO rates (effective_at, gamer_pico_per_hour, peer_pico_per_hour,"
                      " fee_bp) SELECT now (), $1::bigint, $2::bigint, $3::int"
                      " WHERE NOT EXISTS (SELECT 1 FROM rates)", 3, rp)
        && s_command (self, "rates commit", "COMMIT", 0, NULL);
    if (!seeded) {
        s_abort (self);
        led_store_disconnect (self);
        return -1;
    }
    //  Prepared statements live as long as the connection: a new one (after
    //  a database restart) gets its own
    res = PQprepare (self->conn, LED_SETTLE_STMT, LED_SETTLE_SQL, LED_SETTLE_PARAMS, NULL);
    if (!res || PQresultStatus (res) != PGRES_COMMAND_OK) {
        s_log_error (self, "prepare settle", res);
        PQclear (res);
        led_store_disconnect (self);
        return -1;
    }
    PQclear (res);
    self->settle_rate_id = 0;
    log_info ("store: connected host=%s dbname=%s schema=%s", PQhost (self->conn),
              PQdb (self->conn), self->schema);
    return 0;
}

//  Migration files are NNN_name.sql
static bool
s_migration_name (const char *name)
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
    char *buf = (char *) malloc (LED_MAX_SQL_FILE + 1);
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
    char *path = zsys_sprintf ("%s/%s", self->sql_dir, name);
    char *text = s_read_file (path);
    zstr_free (&path);
    if (!text) {
        log_warn ("store: cannot read migration file=%s dir=%s", name, self->sql_dir);
        return false;
    }
    char vbuf [16];
    snprintf (vbuf, sizeof vbuf, "%d", version);
    const char *params [] = { vbuf, name };
    bool ok = s_command (self, "migration begin", "BEGIN", 0, NULL);
    if (ok) {
        //  The file is ours, not input: run it as the script it is
        PGresult *res = PQexec (self->conn, text);
        ok = res && PQresultStatus (res) == PGRES_COMMAND_OK;
        if (!ok) {
            char what [300];
            snprintf (what, sizeof what, "migration %s", name);
            s_log_error (self, what, res);
        }
        PQclear (res);
    }
    ok = ok && s_command (self, "migration record",
                          "INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2)",
                          2, params);
    ok = ok && s_command (self, "migration commit", "COMMIT", 0, NULL);
    if (!ok)
        s_abort (self);
    else
        log_info ("store: migration applied version=%d file=%s schema=%s", version, name,
                  self->schema);
    free (text);
    return ok;
}

int
led_store_migrate (led_store_t *self)
{
    if (!self->conn)
        return -1;
    DIR *dir = opendir (self->sql_dir);
    if (!dir) {
        log_warn ("store: cannot open migrations dir=%s errno=%d", self->sql_dir, errno);
        return -1;
    }
    char **names = (char **) calloc (LED_MAX_MIGRATIONS, sizeof (char *));
    size_t count = 0;
    struct dirent *de;
    while ((de = readdir (dir)) && count < LED_MAX_MIGRATIONS)
        if (s_migration_name (de->d_name))
            names [count++] = strdup (de->d_name);
    closedir (dir);
    qsort (names, count, sizeof (char *), s_strcmp_p);
    int applied = 0;
    if (count == 0) {
        log_warn ("store: no migrations dir=%s", self->sql_dir);
        applied = -1;
    }
    //  Session-level lock: released by unlock, or by the server if we die
    if (applied == 0) {
        PGresult *res = s_exec (self, "migration lock",
                                "SELECT pg_advisory_lock (" LED_MIGRATE_LOCK_KEY ")", 0, NULL,
                                PGRES_TUPLES_OK);
        if (!res)
            applied = -1;
        PQclear (res);
    }
    if (applied == 0 && !s_command (self, "migration table",
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INT PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now ())", 0, NULL))
        applied = -1;
    for (size_t i = 0; i < count && applied >= 0; i++) {
        int version = atoi (names [i]);
        char vbuf [16];
        snprintf (vbuf, sizeof vbuf, "%d", version);
        const char *params [] = { vbuf };
        PGresult *res = s_exec (self, "migration check",
                                "SELECT name FROM schema_migrations WHERE version = $1::int",
                                1, params, PGRES_TUPLES_OK);
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

//  A growing text buffer for array literals
typedef struct {
    char *data;
    size_t len, cap;
} s_buf_t;

static void
s_buf_add (s_buf_t *b, const char *text, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        b->cap = (b->len + len + 1) * 2 + 64;
        b->data = (char *) realloc (b->data, b->cap);
        assert (b->data);
    }
    memcpy (b->data + b->len, text, len);
    b->len += len;
    b->data [b->len] = 0;
}

static void
s_buf_start (s_buf_t *b)
{
    b->len = 0;
    s_buf_add (b, "{", 1);
}

static void
s_buf_sep (s_buf_t *b)
{
    if (b->len > 1)
        s_buf_add (b, ",", 1);
}

static void
s_array_int (s_buf_t *b, int64_t value)
{
    char num [32];
    int n = snprintf (num, sizeof num, "%lld", (long long) value);
    s_buf_sep (b);
    s_buf_add (b, num, (size_t) n);
}

//  An element of a text array literal, quoted so that any text is one value
static void
s_array_text (s_buf_t *b, const char *value)
{
    s_buf_sep (b);
    s_buf_add (b, "\"", 1);
    for (const char *c = value; *c; c++) {
        if (*c == '"' || *c == '\\')
            s_buf_add (b, "\\", 1);
        s_buf_add (b, c, 1);
    }
    s_buf_add (b, "\"", 1);
}

static void
s_buf_end (s_buf_t *b)
{
    s_buf_add (b, "}", 1);
}

bool
led_store_valid_task_id (const char *task_id)
{
    size_t len = task_id ? strlen (task_id) : 0;
    if (len == 0 || len > 128)
        return false;
    for (const char *c = task_id; *c; c++)
        if (*c < '!' || *c > '~')
            return false;
    return true;
}

//  Checks what can be checked without the database; false with item->error
static bool
s_check_item (led_settle_t *item)
{
    if (!led_store_valid_task_id (item->task_id)) {
        item->error = "bad task_id";
        return false;
    }
    if (item->reverse) {
        if (item->reason && strlen (item->reason) > 200)
            item->reason [200] = 0;
        return true;
    }
    const char *canonical = item->task_type ? p2c_task_canonical (item->task_type) : NULL;
    const p2c_task_type_t *type = canonical ? p2c_task_type (canonical) : NULL;
    if (!type) {
        item->error = "unknown task_type";
        return false;
    }
    if (item->billed_us > type->max_billed_us) {
        item->error = "billed_us above the task type's ceiling";
        return false;
    }
    if (item->compute_us > INT64_MAX || item->observed_us > INT64_MAX) {
        item->error = "time out of range";
        return false;
    }
    //  gamer 0: the treasury pays
    if (item->gamer_account < 0 || item->peer_account <= 0) {
        item->error = "bad account id";
        return false;
    }
    //  Stored under its canonical name
    if (strcmp (canonical, item->task_type)) {
        free (item->task_type);
        item->task_type = strdup (canonical);
    }
    return true;
}

static void
s_reset (led_settle_t *items, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        items [i].status = LED_SETTLE_PENDING;
        items [i].error = NULL;
        memset (&items [i].split, 0, sizeof items [i].split);
    }
}

//  Settles items in one call of ledger_settle (one round trip, its own
//  transaction); false when the call failed (nothing was written).
//  idx lists the items still to decide (first occurrences, locally valid).
//  The amounts are computed here, at the rates row we last saw in force;
//  the function writes only when that row is still the one in force, else
//  answers the row in force and we compute again.
static bool
s_settle_tx (led_store_t *self, led_settle_t *items, size_t *idx, size_t n)
{
    s_buf_t a [11];
    memset (a, 0, sizeof a);
    bool ok = false;
    for (int attempt = 0; attempt < LED_SETTLE_TRIES && !ok; attempt++) {
        for (int i = 0; i < 11; i++)
            s_buf_start (&a [i]);
        for (size_t k = 0; k < n; k++) {
            led_settle_t *it = &items [idx [k]];
            p2c_money_split (&self->settle_rates, it->billed_us, &it->split);
            if (it->gamer_account == 0) {
                //  a validation run: the treasury pays the peer's earning, no
                //  fee; as payer its "charge" is that earning, so the row balances
                it->split.gamer_charge = it->split.peer_earning;
                it->split.fee = 0;
                it->split.treasury = 0;
            }
            s_array_text (&a [0], it->task_id);
            s_array_text (&a [1], it->task_type);
            s_array_int (&a [2], it->gamer_account);
            s_array_int (&a [3], it->peer_account);
            s_array_int (&a [4], (int64_t) it->billed_us);
            s_array_int (&a [5], (int64_t) it->compute_us);
            s_array_int (&a [6], (int64_t) it->observed_us);
            s_array_int (&a [7], it->split.gamer_charge);
            s_array_int (&a [8], it->split.peer_earning);
            s_array_int (&a [9], it->split.fee);
            s_array_int (&a [10], it->split.treasury);
        }
        for (int i = 0; i < 11; i++)
            s_buf_end (&a [i]);
        char rate_id [32], fee [32], treasury [32];
        snprintf (rate_id, sizeof rate_id, "%lld", (long long) self->settle_rate_id);
        snprintf (fee, sizeof fee, "%lld", (long long) self->fee_account);
        snprintf (treasury, sizeof treasury, "%lld", (long long) self->treasury_account);
        const char *pv [LED_SETTLE_PARAMS] = {
            rate_id, a [0].data, a [1].data, a [2].data, a [3].data, a [4].data, a [5].data,
            a [6].data, a [7].data, a [8].data, a [9].data, a [10].data, fee, treasury };
        PGresult *res = PQexecPrepared (self->conn, LED_SETTLE_STMT, LED_SETTLE_PARAMS, pv,
                                        NULL, NULL, 0);
        if (!res || PQresultStatus (res) != PGRES_TUPLES_OK || PQnfields (res) != 6) {
            s_log_error (self, "settle", res);
            PQclear (res);
            break;
        }
        int rows = PQntuples (res);
        if (rows == 1 && !strcmp (PQgetvalue (res, 0, 0), "rates")) {
            //  Not written: the rates in force changed (or we never knew them)
            if (PQgetisnull (res, 0, 2)) {
                log_warn ("store: no rates in force");
                PQclear (res);
                break;
            }
            self->settle_rate_id = s_get_int64 (res, 0, 2);
            self->settle_rates.gamer_per_hour = s_get_int64 (res, 0, 3);
            self->settle_rates.peer_per_hour = s_get_int64 (res, 0, 4);
            self->settle_rates.fee_bp = (int32_t) s_get_int64 (res, 0, 5);
            log_debug ("store: rates in force id=%lld", (long long) self->settle_rate_id);
            PQclear (res);
            if (attempt + 1 == LED_SETTLE_TRIES)
                log_warn ("store: rates in force kept changing, batch not settled");
            continue;
        }
        for (int r = 0; r < rows; r++) {
            const char *what = PQgetvalue (res, r, 0);
            if (!strcmp (what, "balance")) {
                s_bal_add (self, s_get_int64 (res, r, 2), s_get_int64 (res, r, 3),
                           s_get_int64 (res, r, 4) != 0);
                continue;
            }
            int64_t pos = s_get_int64 (res, r, 1);
            if (pos < 1 || (uint64_t) pos > n)
                continue;       //  cannot happen: positions in our arrays
            led_settle_t *it = &items [idx [pos - 1]];
            if (!strcmp (what, "new"))
                it->status = LED_SETTLE_NEW;
            else
            if (!strcmp (what, "replay")) {
                it->split.gamer_charge = s_get_int64 (res, r, 2);
                it->split.peer_earning = s_get_int64 (res, r, 3);
                it->split.fee = s_get_int64 (res, r, 4);
                it->split.treasury = s_get_int64 (res, r, 5);
                it->status = LED_SETTLE_REPLAY;
            }
            else {
                it->status = LED_SETTLE_REJECTED;
                it->error = !strcmp (what, "gamer") ? "unknown gamer account"
                                                    : "unknown peer account";
            }
        }
        PQclear (res);
        ok = true;
    }
    for (int i = 0; i < 11; i++)
        free (a [i].data);
    for (size_t k = 0; k < n; k++) {
        led_settle_t *it = &items [idx [k]];
        if (!ok) {
            it->status = LED_SETTLE_PENDING;
            memset (&it->split, 0, sizeof it->split);
        }
        else
        if (it->status == LED_SETTLE_PENDING)
            log_warn ("store: settled in the journal without a task row task=%s", it->task_id);
        if (it->status == LED_SETTLE_PENDING || it->status == LED_SETTLE_REJECTED)
            memset (&it->split, 0, sizeof it->split);
    }
    return ok;
}

static void
s_reset_some (led_settle_t *items, const size_t *idx, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        items [idx [k]].status = LED_SETTLE_PENDING;
        items [idx [k]].error = NULL;
        memset (&items [idx [k]].split, 0, sizeof items [idx [k]].split);
    }
}

//  The reversals of a batch, in their own transaction, one by one (they are rare:
//  a released result that later lost its validation).
static bool
s_reverse_tx (led_store_t *self, led_settle_t *items, size_t *idx, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        led_settle_t *it = &items [idx [k]];
        const char *p1 [] = { it->task_id };
        //  the task's row first, locked, so that two ledgers reversing the
        //  same task at once queue here and the second sees the first's row
        PGresult *res = s_exec (self, "reverse task",
                                "SELECT peer_account, peer_earning_pico FROM tasks"
                                " WHERE task_id = $1 FOR UPDATE", 1, p1, PGRES_TUPLES_OK);
        if (!res)
            return false;
        if (PQntuples (res) != 1) {
            PQclear (res);
            it->status = LED_SETTLE_REJECTED;
            it->error = "not settled";
            continue;
        }
        int64_t peer = s_get_int64 (res, 0, 0);
        int64_t earning = s_get_int64 (res, 0, 1);
        PQclear (res);
        res = s_exec (self, "reverse replay",
                      "SELECT amount_pico FROM reversals WHERE task_id = $1", 1, p1,
                      PGRES_TUPLES_OK);
        if (!res)
            return false;
        if (PQntuples (res) == 1) {
            it->split.peer_earning = s_get_int64 (res, 0, 0);
            it->status = LED_SETTLE_REPLAY;
            PQclear (res);
            continue;
        }
        PQclear (res);
        char ps [32];
        snprintf (ps, sizeof ps, "%lld", (long long) peer);
        const char *pb [] = { ps };
        res = s_exec (self, "reverse balance",
                      "SELECT balance_pico FROM accounts WHERE id = $1 FOR UPDATE", 1, pb,
                      PGRES_TUPLES_OK);
        if (!res)
            return false;
        int64_t balance = PQntuples (res) == 1 ? s_get_int64 (res, 0, 0) : 0;
        PQclear (res);
        //  what was paid out already is gone: never below zero
        int64_t amount = earning < balance ? earning : balance;
        if (amount < 0)
            amount = 0;
        char memo [300];
        snprintf (memo, sizeof memo, "reverse task %s: %s", it->task_id,
                  it->reason && *it->reason ? it->reason : "lost validation");
        char as [32], es [32], ts [32], tx [32] = "";
        snprintf (as, sizeof as, "%lld", (long long) amount);
        snprintf (es, sizeof es, "%lld", (long long) earning);
        snprintf (ts, sizeof ts, "%lld", (long long) self->treasury_account);
        if (amount > 0) {
            const char *pm [] = { memo };
            res = s_exec (self, "reverse tx",
                          "INSERT INTO journal_tx (kind, memo) VALUES ('adjust', $1) RETURNING id",
                          1, pm, PGRES_TUPLES_OK);
            if (!res)
                return false;
            snprintf (tx, sizeof tx, "%s", PQgetvalue (res, 0, 0));
            PQclear (res);
            const char *pe [] = { tx, ps, as, ts };
            if (!s_command (self, "reverse entries",
                            "INSERT INTO journal_entries (tx_id, account_id, amount_pico)"
                            " VALUES ($1, $2, -$3::bigint), ($1, $4, $3::bigint)", 4, pe))
                return false;
        }
        const char *pr [] = { it->task_id, *tx ? tx : NULL, ps, as, es,
                              it->reason ? it->reason : "" };
        if (!s_command (self, "reverse row",
                        "INSERT INTO reversals (task_id, tx_id, peer_account, amount_pico,"
                        " earning_pico, reason) VALUES ($1, $2, $3, $4, $5, $6)", 6, pr))
            return false;
        it->split.peer_earning = amount;
        it->status = LED_SETTLE_NEW;
        log_info ("store: earning reversed task=%s account=%lld amount_pico=%lld"
                  " earning_pico=%lld", it->task_id, (long long) peer, (long long) amount,
                  (long long) earning);
    }
    return true;
}

int
led_store_settle (led_store_t *self, led_settle_t *items, size_t count)
{
    s_reset (items, count);
    s_bal_reset (self);
    if (!self->conn)
        return -1;
    if (count == 0)
        return 0;
    size_t *idx = (size_t *) calloc (count, sizeof (size_t));
    size_t *first = (size_t *) calloc (count, sizeof (size_t));
    zhashx_t *seen = zhashx_new ();
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        first [i] = i;
        if (!s_check_item (&items [i]))
            continue;
        //  A task twice in one batch is settled once; both get the answer
        //  (a reversal's key cannot be a task id: those are printable)
        char key [140];
        snprintf (key, sizeof key, "%s%s", items [i].reverse ? "\t" : "", items [i].task_id);
        uintptr_t pos = (uintptr_t) zhashx_lookup (seen, key);
        if (pos) {
            first [i] = pos - 1;
            continue;
        }
        zhashx_insert (seen, key, (void *) (uintptr_t) (i + 1));
        idx [n++] = i;
    }
    zhashx_destroy (&seen);
    //  settlements first, so that a reversal in the same batch finds its task
    size_t *ridx = (size_t *) calloc (n ? n : 1, sizeof (size_t));
    size_t ns = 0, nr = 0;
    for (size_t k = 0; k < n; k++) {
        if (items [idx [k]].reverse)
            ridx [nr++] = idx [k];
        else
            idx [ns++] = idx [k];
    }
    //  Settlements in one statement (its own transaction); then reversals,
    //  rare, in a transaction of their own. When the reversals fail after
    //  the settlements committed, the settlements keep their outcome and
    //  the reversals stay PENDING (no ack: the scheduler asks again).
    bool ok = ns == 0 || s_settle_tx (self, items, idx, ns);
    if (!ok)
        s_abort (self);
    if (ok && nr > 0) {
        bool rok = s_command (self, "reverse begin", "BEGIN", 0, NULL)
            && s_reverse_tx (self, items, ridx, nr)
            && s_command (self, "reverse commit", "COMMIT", 0, NULL);
        if (!rok) {
            s_abort (self);
            s_reset_some (items, ridx, nr);
            if (ns == 0)
                ok = false;
        }
    }
    free (ridx);
    if (!ok) {
        s_reset (items, count);
        s_bal_reset (self);
        free (idx);
        free (first);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        if (first [i] != i) {
            items [i].status = items [first [i]].status;
            items [i].split = items [first [i]].split;
            items [i].error = items [first [i]].error;
        }
        else
        if (items [i].status == LED_SETTLE_PENDING && items [i].error)
            items [i].status = LED_SETTLE_REJECTED;
    }
    free (idx);
    free (first);
    return 0;
}

//  A name we store: 1..128 bytes of valid UTF-8 without control characters
static bool
s_valid_name (const char *name)
{
    size_t len = name ? strlen (name) : 0;
    if (len == 0 || len > 128)
        return false;
    const unsigned char *s = (const unsigned char *) name;
    while (*s) {
        int extra;
        if (*s < 0x20 || *s == 0x7f)
            return false;
        if (*s < 0x80)
            extra = 0;
        else
        if ((*s & 0xe0) == 0xc0 && *s >= 0xc2)
            extra = 1;
        else
        if ((*s & 0xf0) == 0xe0)
            extra = 2;
        else
        if ((*s & 0xf8) == 0xf0 && *s <= 0xf4)
            extra = 3;
        else
            return false;
        s++;
        for (int i = 0; i < extra; i++, s++)
            if ((*s & 0xc0) != 0x80)
                return false;
    }
    return true;
}

void
led_store_hash_key (const char *text, char *hash)
{
    unsigned char md [EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!EVP_Digest (text, strlen (text), md, &len, EVP_sha256 (), NULL) || len != 32) {
        //  Never matches a stored hash (those are 64 hex digits)
        strcpy (hash, "x");
        return;
    }
    for (unsigned i = 0; i < len; i++)
        snprintf (hash + 2 * i, 3, "%02x", md [i]);
}

int
led_store_new_key (char *key, char *hash)
{
    unsigned char raw [32];
    if (RAND_bytes (raw, sizeof raw) != 1)
        return -1;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf (key + 2 * i, 3, "%02x", raw [i]);
    explicit_bzero (raw, sizeof raw);
    led_store_hash_key (key, hash);
    return 0;
}

//  One balanced transaction of two entries: amount from one account to
//  another. *tx_p gets its id. False on a failed statement.
static bool
s_transfer (led_store_t *self, const char *kind, int64_t from, int64_t to, int64_t amount,
            const char *memo, int64_t *tx_p)
{
    char f [32], t [32], a [32];
    snprintf (f, sizeof f, "%lld", (long long) from);
    snprintf (t, sizeof t, "%lld", (long long) to);
    snprintf (a, sizeof a, "%lld", (long long) amount);
    const char *params [] = { kind, memo, f, t, a };
    PGresult *res = s_exec (self, "transfer",
        "WITH t AS (INSERT INTO journal_tx (kind, memo) VALUES ($1, $2) RETURNING id),"
        " e AS (INSERT INTO journal_entries (tx_id, account_id, amount_pico)"
        "       SELECT t.id, v.acct, v.amount FROM t,"
        "       (VALUES ($3::bigint, -($5::bigint)), ($4::bigint, $5::bigint)) AS v (acct, amount))"
        " SELECT id FROM t", 5, params, PGRES_TUPLES_OK);
    if (!res)
        return false;
    bool ok = PQntuples (res) == 1;
    if (ok && tx_p)
        *tx_p = s_get_int64 (res, 0, 0);
    PQclear (res);
    return ok;
}

//  The stored balance and flag of a gamer, added to the balances to send
static bool
s_bal_read (led_store_t *self, int64_t id)
{
    char num [32];
    snprintf (num, sizeof num, "%lld", (long long) id);
    const char *params [] = { num };
    PGresult *res = s_exec (self, "read balance",
                            "SELECT id, balance_pico, disabled FROM accounts"
                            " WHERE id = $1::bigint AND kind = 'gamer'",
                            1, params, PGRES_TUPLES_OK);
    if (!res)
        return false;
    for (int r = 0; r < PQntuples (res); r++)
        s_bal_add (self, s_get_int64 (res, r, 0), s_get_int64 (res, r, 1),
                   !strcmp (PQgetvalue (res, r, 2), "t"));
    PQclear (res);
    return true;
}

led_auth_status_t
led_store_auth (led_store_t *self, const char *role, const char *name, const char *api_key,
                bool open, int64_t *account_id_p, const char **message_p)
{
    *account_id_p = 0;
    s_bal_reset (self);
    if (!role || (strcmp (role, "gamer") && strcmp (role, "peer"))) {
        *message_p = "role must be gamer or peer";
        return LED_AUTH_BAD_REQUEST;
    }
    if (!s_valid_name (name)) {
        *message_p = "the id must be 1 to 128 bytes of UTF-8 text";
        return LED_AUTH_BAD_REQUEST;
    }
    bool keyed = api_key && *api_key;
    if (!keyed && !open) {
        *message_p = "an API key is required";
        return LED_AUTH_FAILED;
    }
    if (!self->conn) {
        *message_p = "the ledger database is unavailable";
        return LED_AUTH_UNAVAILABLE;
    }
    PGresult *res = NULL;
    if (keyed) {
        //  The key names the account; the client's id only names its
        //  connection (one peer account may run many machines)
        char hash [65];
        led_store_hash_key (api_key, hash);
        const char *params [] = { hash };
        res = s_exec (self, "auth key",
                      "SELECT id, disabled, kind, balance_pico FROM accounts WHERE key_hash = $1",
                      1, params, PGRES_TUPLES_OK);
        explicit_bzero (hash, sizeof hash);
    }
    else {
        const char *params [] = { role, name };
        //  Create when missing, with the starting credit for a new gamer, in
        //  one transaction. A concurrent creation makes ours a no-op, and the
        //  SELECT (a later snapshot) then sees the winner's row.
        bool ok = s_command (self, "auth begin", "BEGIN", 0, NULL);
        if (ok) {
            res = s_exec (self, "auth create",
                          "INSERT INTO accounts (kind, name) VALUES ($1, $2)"
                          " ON CONFLICT (kind, name) DO NOTHING RETURNING id",
                          2, params, PGRES_TUPLES_OK);
            ok = res != NULL;
            if (ok && PQntuples (res) == 1 && !strcmp (role, "gamer")
                && self->policy.starting_credit_pico > 0)
                ok = s_transfer (self, "credit", self->external_account, s_get_int64 (res, 0, 0),
                                 self->policy.starting_credit_pico, "starting credit", NULL);
            PQclear (res);
            res = NULL;
        }
        if (ok)
            res = s_exec (self, "auth find",
                          "SELECT id, disabled, kind, balance_pico, key_hash IS NOT NULL"
                          " FROM accounts WHERE kind = $1 AND name = $2",
                          2, params, PGRES_TUPLES_OK);
        if (res && !s_command (self, "auth commit", "COMMIT", 0, NULL)) {
            PQclear (res);
            res = NULL;
        }
        if (!res)
            s_abort (self);
        else
        if (PQntuples (res) == 1 && !strcmp (PQgetvalue (res, 0, 4), "t")) {
            //  An operator gave this account a key: the name alone is not enough
            PQclear (res);
            *message_p = "this account needs its API key";
            return LED_AUTH_FAILED;
        }
    }
    if (!res) {
        *message_p = "the ledger database is unavailable";
        return LED_AUTH_UNAVAILABLE;
    }
    led_auth_status_t rc = LED_AUTH_OK;
    if (PQntuples (res) != 1) {
        *message_p = keyed ? "unknown API key" : "account not found";
        rc = LED_AUTH_FAILED;
    }
    else
    if (strcmp (PQgetvalue (res, 0, 2), role)) {
        *message_p = "the API key belongs to another kind of account";
        rc = LED_AUTH_FAILED;
    }
    else
    if (!strcmp (PQgetvalue (res, 0, 1), "t")) {
        *message_p = "account disabled";
        rc = LED_AUTH_FAILED;
    }
    else {
        *account_id_p = s_get_int64 (res, 0, 0);
        *message_p = "ok";
        if (!strcmp (role, "gamer"))
            s_bal_add (self, *account_id_p, s_get_int64 (res, 0, 3), false);
    }
    PQclear (res);
    return rc;
}

int
led_store_query_balances (led_store_t *self, const int64_t *ids, size_t count)
{
    s_bal_reset (self);
    if (!self->conn)
        return -1;
    s_buf_t b = { NULL, 0, 0 };
    s_buf_start (&b);
    for (size_t i = 0; i < count; i++)
        s_array_int (&b, ids [i]);
    s_buf_end (&b);
    const char *params [] = { b.data };
    PGresult *res = s_exec (self, "query balances",
                            "SELECT id, balance_pico, disabled FROM accounts"
                            " WHERE id = ANY ($1::bigint[]) AND kind = 'gamer'",
                            1, params, PGRES_TUPLES_OK);
    free (b.data);
    if (!res) {
        s_abort (self);
        return -1;
    }
    for (int r = 0; r < PQntuples (res); r++)
        s_bal_add (self, s_get_int64 (res, r, 0), s_get_int64 (res, r, 1),
                   !strcmp (PQgetvalue (res, r, 2), "t"));
    PQclear (res);
    return 0;
}

//  --------------------------------------------------------------------------
//  Operators' commands. Each runs inside one transaction opened by
//  led_store_admin; a refusal rolls it back.

typedef struct {
    led_store_t *store;
    json_t *args;               //  the request's arguments
    json_t *result;             //  what we answer
    const char *code;           //  set on refusal
    char *message;
} s_admin_t;

static bool
s_refuse (s_admin_t *a, const char *code, const char *message)
{
    a->code = code;
    free (a->message);
    a->message = strdup (message);
    return false;
}

//  A whole-number argument in [min, max]
static bool
s_arg_int (s_admin_t *a, const char *key, int64_t min, int64_t max, int64_t *value_p)
{
    json_t *v = json_object_get (a->args, key);
    if (!json_is_integer (v) || json_integer_value (v) < min || json_integer_value (v) > max) {
        char text [200];
        snprintf (text, sizeof text, "%s must be a whole number from %lld to %lld", key,
                  (long long) min, (long long) max);
        return s_refuse (a, "bad_request", text);
    }
    *value_p = (int64_t) json_integer_value (v);
    return true;
}

//  An optional text argument (NULL when absent), at most max bytes
static bool
s_arg_str (s_admin_t *a, const char *key, size_t max, const char **value_p)
{
    json_t *v = json_object_get (a->args, key);
    *value_p = NULL;
    if (!v || json_is_null (v))
        return true;
    if (!json_is_string (v) || strlen (json_string_value (v)) > max) {
        char text [200];
        snprintf (text, sizeof text, "%s must be text of at most %zu bytes", key, max);
        return s_refuse (a, "bad_request", text);
    }
    *value_p = json_string_value (v);
    return true;
}

//  A failed statement: the database's reason when it still answers
static bool
s_failed (s_admin_t *a)
{
    if (a->store->conn && PQstatus (a->store->conn) == CONNECTION_OK)
        return s_refuse (a, "refused", a->store->error);
    return s_refuse (a, "unavailable", "the ledger database is unavailable");
}

static void
s_set_int (json_t *o, const char *key, int64_t value)
{
    json_object_set_new (o, key, json_integer ((json_int_t) value));
}

static bool
s_cmd_account_create (s_admin_t *a)
{
    const char *kind, *name;
    if (!s_arg_str (a, "kind", 16, &kind) || !s_arg_str (a, "name", 1000, &name))
        return false;
    if (!kind || (strcmp (kind, "gamer") && strcmp (kind, "peer") && strcmp (kind, "admin")))
        return s_refuse (a, "bad_request", "kind must be gamer, peer or admin");
    if (!s_valid_name (name))
        return s_refuse (a, "bad_request", "the name must be 1 to 128 bytes of UTF-8 text");
    char key [65], hash [65];
    if (led_store_new_key (key, hash) != 0)
        return s_refuse (a, "unavailable", "no random numbers for the key");
    const char *params [] = { kind, name, hash };
    PGresult *res = s_exec (a->store, "account create",
                            "INSERT INTO accounts (kind, name, key_hash, key_created_at)"
                            " VALUES ($1, $2, $3, now ()) ON CONFLICT (kind, name) DO NOTHING"
                            " RETURNING id", 3, params, PGRES_TUPLES_OK);
    if (!res)
        return s_failed (a);
    if (PQntuples (res) != 1) {
        PQclear (res);
        return s_refuse (a, "exists", "an account of that kind and name exists"
                         " (rotate-key gives it a new key)");
    }
    int64_t id = s_get_int64 (res, 0, 0);
    PQclear (res);
    if (!strcmp (kind, "gamer") && a->store->policy.starting_credit_pico > 0
        && !s_transfer (a->store, "credit", a->store->external_account, id,
                        a->store->policy.starting_credit_pico, "starting credit", NULL))
        return s_failed (a);
    if (!strcmp (kind, "gamer") && !s_bal_read (a->store, id))
        return s_failed (a);
    s_set_int (a->result, "id", id);
    json_object_set_new (a->result, "kind", json_string (kind));
    json_object_set_new (a->result, "name", json_string (name));
    json_object_set_new (a->result, "api_key", json_string (key));
    explicit_bzero (key, sizeof key);
    return true;
}

//  Disable or enable; for a gamer the scheduler hears of it at once
static bool
s_cmd_account_flag (s_admin_t *a, bool disabled)
{
    int64_t id;
    if (!s_arg_int (a, "account_id", 1, INT64_MAX, &id))
        return false;
    char num [32];
    snprintf (num, sizeof num, "%lld", (long long) id);
    const char *params [] = { num, disabled ? "true" : "false" };
    PGresult *res = s_exec (a->store, "account flag",
                            "UPDATE accounts SET disabled = $2::boolean WHERE id = $1::bigint"
                            " AND kind IN ('gamer', 'peer', 'admin') RETURNING kind",
                            2, params, PGRES_TUPLES_OK);
    if (!res)
        return s_failed (a);
    bool found = PQntuples (res) == 1;
    bool gamer = found && !strcmp (PQgetvalue (res, 0, 0), "gamer");
    PQclear (res);
    if (!found)
        return s_refuse (a, "not_found", "no gamer, peer or admin account with that id");
    if (gamer && !s_bal_read (a->store, id))
        return s_failed (a);
    s_set_int (a->result, "id", id);
    json_object_set_new (a->result, "disabled", json_boolean (disabled));
    return true;
}

static bool
s_cmd_rotate_key (s_admin_t *a)
{
    int64_t id;
    if (!s_arg_int (a, "account_id", 1, INT64_MAX, &id))
        return false;
    char key [65], hash [65], num [32];
    if (led_store_new_key (key, hash) != 0)
        return s_refuse (a, "unavailable", "no random numbers for the key");
    snprintf (num, sizeof num, "%lld", (long long) id);
    const char *params [] = { num, hash };
    PGresult *res = s_exec (a->store, "rotate key",
                            "UPDATE accounts SET key_hash = $2, key_created_at = now ()"
                            " WHERE id = $1::bigint AND kind IN ('gamer', 'peer', 'admin')"
                            " RETURNING id", 2, params, PGRES_TUPLES_OK);
    if (!res)
        return s_failed (a);
    bool found = PQntuples (res) == 1;
    PQclear (res);
    if (!found)
        return s_refuse (a, "not_found", "no gamer, peer or admin account with that id");
    s_set_int (a->result, "id", id);
    json_object_set_new (a->result, "api_key", json_string (key));
    explicit_bzero (key, sizeof key);
    return true;
}

//  Largest single top-up: one million dollars
#define LED_MAX_CREDIT_PICO (1000000LL * P2C_PICO_PER_USD)

static bool
s_cmd_credit (s_admin_t *a)
{
    int64_t id, amount;
    const char *memo;
    if (!s_arg_int (a, "account_id", 1, INT64_MAX, &id)
        || !s_arg_int (a, "amount_pico", 1, LED_MAX_CREDIT_PICO, &amount)
        || !s_arg_str (a, "memo", 500, &memo))
        return false;
    char num [32];
    snprintf (num, sizeof num, "%lld", (long long) id);
    const char *params [] = { num };
    PGresult *res = s_exec (a->store, "credit account",
                            "SELECT kind FROM accounts WHERE id = $1::bigint", 1, params,
                            PGRES_TUPLES_OK);
    if (!res)
        return s_failed (a);
    bool gamer = PQntuples (res) == 1 && !strcmp (PQgetvalue (res, 0, 0), "gamer");
    PQclear (res);
    if (!gamer)
        return s_refuse (a, "not_found", "no gamer account with that id");
    int64_t tx = 0;
    if (!s_transfer (a->store, "credit", a->store->external_account, id, amount,
                     memo ? memo : "top-up", &tx)
        || !s_bal_read (a->store, id))
        return s_failed (a);
    s_set_int (a->result, "tx_id", tx);
    s_set_int (a->result, "account_id", id);
    s_set_int (a->result, "amount_pico", amount);
    if (a->store->bal_count == 1)
        s_set_int (a->result, "balance_pico", a->store->bal [0].balance_pico);
    return true;
}

static bool
s_cmd_rates_set (s_admin_t *a)
{
    int64_t gamer, peer, fee;
    const char *from;
    if (!s_arg_int (a, "gamer_pico_per_hour", 0, 1000000000000000LL, &gamer)
        || !s_arg_int (a, "peer_pico_per_hour", 0, 1000000000000000LL, &peer)
        || !s_arg_int (a, "fee_bp", 0, 10000, &fee)
        || !s_arg_str (a, "effective_at", 64, &from))
        return false;
    char g [32], p [32], f [32];
    snprintf (g, sizeof g, "%lld", (long long) gamer);
    snprintf (p, sizeof p, "%lld", (long long) peer);
    snprintf (f, sizeof f, "%lld", (long long) fee);
    if (from) {
        const char *params [] = { from };
        PGresult *res = s_exec (a->store, "rates when",
                                "SELECT $1::timestamptz < clock_timestamp ()", 1, params, PGRES_TUPLES_OK);
        if (!res)
            return s_refuse (a, "bad_request", "effective_at is not a timestamp");
        bool past = !strcmp (PQgetvalue (res, 0, 0), "t");
        PQclear (res);
        if (past)
            return s_refuse (a, "bad_request", "effective_at is in the past: rates never"
                             " change for tasks already settled");
    }
    //  Settlements in progress finish first and later ones wait for our
    //  COMMIT; "now" is taken after the lock, so a batch that started
    //  before it (now () earlier) keeps the old rates and one that starts
    //  after it sees ours
    if (!s_command (a->store, "rates lock", "LOCK TABLE rates IN SHARE ROW EXCLUSIVE MODE", 0,
                    NULL))
        return s_failed (a);
    const char *params [] = { from, g, p, f };
    PGresult *res = s_exec (a->store, "rates set",
                            "INSERT INTO rates (effective_at, gamer_pico_per_hour,"
                            " peer_pico_per_hour, fee_bp)"
                            " VALUES (COALESCE ($1::timestamptz, clock_timestamp ()), $2::bigint, $3::bigint,"
                            " $4::int) RETURNING id, effective_at", 4, params, PGRES_TUPLES_OK);
    if (!res)
        return s_failed (a);
    s_set_int (a->result, "id", s_get_int64 (res, 0, 0));
    json_object_set_new (a->result, "effective_at", json_string (PQgetvalue (res, 0, 1)));
    PQclear (res);
    return true;
}

static bool
s_cmd_payout_request (s_admin_t *a)
{
    int64_t id;
    if (!s_arg_int (a, "account_id", 1, INT64_MAX, &id))
        return false;
    char num [32];
    snprintf (num, sizeof num, "%lld", (long long) id);
    const char *params [] = { num };
    //  Locked: a settlement crediting the peer meanwhile waits for us
    PGresult *res = s_exec (a->store, "payout account",
                            "SELECT kind, balance_pico FROM accounts WHERE id = $1::bigint"
                            " FOR UPDATE", 1, params, PGRES_TUPLES_OK);
    if (!res)
        return s_failed (a);
    bool peer = PQntuples (res) == 1 && !strcmp (PQgetvalue (res, 0, 0), "peer");
    int64_t balance = peer ? s_get_int64 (res, 0, 1) : 0;
    PQclear (res);
    if (!peer)
        return s_refuse (a, "not_found", "no peer account with that id");
    if (balance <= 0 || balance < a->store->policy.payout_threshold_pico) {
        char text [200], have [32], need [32];
        snprintf (text, sizeof text, "the payable balance %s USD is under the threshold %s USD",
                  p2c_money_format (balance, have, sizeof have),
                  p2c_money_format (a->store->policy.payout_threshold_pico, need, sizeof need));
        return s_refuse (a, "below_threshold", text);
    }
    int64_t tx = 0;
    if (!s_transfer (a->store, "payout", id, a->store->payouts_account, balance,
                     "payout requested", &tx))
        return s_failed (a);
    char amount [32], txn [32];
    snprintf (amount, sizeof amount, "%lld", (long long) balance);
    snprintf (txn, sizeof txn, "%lld", (long long) tx);
    const char *pp [] = { num, amount, txn };
    res = s_exec (a->store, "payout insert",
                  "INSERT INTO payouts (account_id, amount_pico, request_tx)"
                  " VALUES ($1::bigint, $2::bigint, $3::bigint) RETURNING id",
                  3, pp, PGRES_TUPLES_OK);
    if (!res)
        return s_failed (a);
    s_set_int (a->result, "payout_id", s_get_int64 (res, 0, 0));
    PQclear (res);
    s_set_int (a->result, "account_id", id);
    s_set_int (a->result, "amount_pico", balance);
    return true;
}

static bool
s_cmd_payout_paid (s_admin_t *a)
{
    int64_t id;
    const char *reference;
    if (!s_arg_int (a, "payout_id", 1, INT64_MAX, &id)
        || !s_arg_str (a, "reference", 200, &reference))
        return false;
    char num [32];
    snprintf (num, sizeof num, "%lld", (long long) id);
    const char *params [] = { num };
    PGresult *res = s_exec (a->store, "payout find",
                            "SELECT amount_pico, paid_tx IS NOT NULL FROM payouts"
                            " WHERE id = $1::bigint FOR UPDATE", 1, params, PGRES_TUPLES_OK);
    if (!res)
        return s_failed (a);
    bool found = PQntuples (res) == 1;
    bool paid = found && !strcmp (PQgetvalue (res, 0, 1), "t");
    int64_t amount = found ? s_get_int64 (res, 0, 0) : 0;
    PQclear (res);
    if (!found)
        return s_refuse (a, "not_found", "no payout with that id");
    if (paid)
        return s_refuse (a, "already_paid", "that payout is marked paid already");
    int64_t tx = 0;
    char memo [64];
    snprintf (memo, sizeof memo, "payout %lld paid", (long long) id);
    if (!s_transfer (a->store, "payout", a->store->payouts_account, a->store->external_account,
                     amount, memo, &tx))
        return s_failed (a);
    char txn [32];
    snprintf (txn, sizeof txn, "%lld", (long long) tx);
    const char *pp [] = { num, txn, reference };
    if (!s_command (a->store, "payout paid",
                    "UPDATE payouts SET paid_tx = $2::bigint, paid_at = now (), reference = $3"
                    " WHERE id = $1::bigint", 3, pp))
        return s_failed (a);
    s_set_int (a->result, "payout_id", id);
    s_set_int (a->result, "amount_pico", amount);
    s_set_int (a->result, "tx_id", tx);
    return true;
}

led_admin_status_t
led_store_admin (led_store_t *self, const char *command, const char *args_json,
                 char **result_p, const char **code_p, char **message_p)
{
    *result_p = NULL;
    *code_p = NULL;
    *message_p = NULL;
    s_bal_reset (self);
    json_error_t jerr;
    json_t *args = args_json && *args_json ? json_loads (args_json, 0, &jerr) : json_object ();
    if (!json_is_object (args)) {
        json_decref (args);
        *code_p = "bad_request";
        *message_p = strdup ("args_json must be a JSON object");
        return LED_ADMIN_REFUSED;
    }
    bool (*run) (s_admin_t *) = NULL;
    int flag = -1;
    if (!command)
        ;
    else
    if (!strcmp (command, "account-create"))
        run = s_cmd_account_create;
    else
    if (!strcmp (command, "account-disable"))
        flag = 1;
    else
    if (!strcmp (command, "account-enable"))
        flag = 0;
    else
    if (!strcmp (command, "rotate-key"))
        run = s_cmd_rotate_key;
    else
    if (!strcmp (command, "credit"))
        run = s_cmd_credit;
    else
    if (!strcmp (command, "rates-set"))
        run = s_cmd_rates_set;
    else
    if (!strcmp (command, "payout-request"))
        run = s_cmd_payout_request;
    else
    if (!strcmp (command, "payout-mark-paid"))
        run = s_cmd_payout_paid;
    if (!run && flag < 0) {
        json_decref (args);
        *code_p = "bad_request";
        *message_p = strdup ("unknown command");
        return LED_ADMIN_REFUSED;
    }
    if (!self->conn || !s_command (self, "admin begin", "BEGIN", 0, NULL)) {
        json_decref (args);
        led_store_disconnect (self);
        *code_p = "unavailable";
        *message_p = strdup ("the ledger database is unavailable");
        return LED_ADMIN_UNAVAILABLE;
    }
    s_admin_t a = { self, args, json_object (), NULL, NULL };
    bool ok = run ? run (&a) : s_cmd_account_flag (&a, flag == 1);
    if (ok && !s_command (self, "admin commit", "COMMIT", 0, NULL))
        ok = s_failed (&a);
    led_admin_status_t rc = LED_ADMIN_OK;
    if (ok)
        *result_p = json_dumps (a.result, JSON_COMPACT | JSON_PRESERVE_ORDER);
    else {
        s_abort (self);
        s_bal_reset (self);
        rc = a.code && !strcmp (a.code, "unavailable") ? LED_ADMIN_UNAVAILABLE : LED_ADMIN_REFUSED;
        *code_p = a.code ? a.code : "refused";
        *message_p = a.message ? a.message : strdup ("refused");
        a.message = NULL;
    }
    json_decref (a.result);
    json_decref (args);
    free (a.message);
    log_info ("store: admin command=%s ok=%d code=%s", command, ok, ok ? "" : *code_p);
    return rc;
}

//  --------------------------------------------------------------------------
//  Self-test. Needs a PostgreSQL conninfo in P2C2R_TEST_DB (the test runner
//  starts a private cluster with deploy/local/pg.sh); works in a schema of
//  its own, dropped at the end, so that reruns and parallel runs are clean.

#include <pthread.h>

const char *
led_store_test_sql_dir (void)
{
    const char *dir = getenv ("P2C2R_TEST_SQL_DIR");
    return dir && *dir ? dir : "ledger/sql";
}

//  A scalar from the test's own connection, as text ("" on error)
static char *
s_scalar (PGconn *conn, const char *sql, const char *param)
{
    const char *params [] = { param };
    PGresult *res = PQexecParams (conn, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
    char *value = strdup (res && PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) == 1
                          && !PQgetisnull (res, 0, 0) ? PQgetvalue (res, 0, 0) : "");
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK)
        fprintf (stderr, "led_store_test: query failed: %s", PQresultErrorMessage (res));
    PQclear (res);
    return value;
}

static bool
s_scalar_is (PGconn *conn, const char *sql, const char *param, const char *expect)
{
    char *v = s_scalar (conn, sql, param);
    bool same = !strcmp (v, expect);
    if (!same)
        fprintf (stderr, "led_store_test: '%s' gave '%s', expected '%s'\n", sql, v, expect);
    free (v);
    return same;
}

static void
s_fill (led_settle_t *it, const char *task_id, const char *type, int64_t gamer, int64_t peer,
        uint64_t billed)
{
    memset (it, 0, sizeof *it);
    it->task_id = strdup (task_id);
    it->task_type = strdup (type);
    it->gamer_account = gamer;
    it->peer_account = peer;
    it->billed_us = billed;
    it->compute_us = billed + 10;
    it->observed_us = billed + 20;
}

typedef struct {
    led_store_t *store;
    led_settle_t *items;
    size_t count;
    int rc;
} s_race_t;

//  True when the statement fails with a message that holds text, or (text
//  NULL) when it succeeds; nothing it wrote stays (rolled back)
static bool
s_refused_for (PGconn *conn, const char *sql, const char *text)
{
    PQclear (PQexec (conn, "BEGIN"));
    PGresult *res = PQexec (conn, sql);
    const char *msg = PQresultErrorField (res, PG_DIAG_MESSAGE_PRIMARY);
    bool ok = text ? PQresultStatus (res) == PGRES_FATAL_ERROR && msg && strstr (msg, text)
                   : PQresultStatus (res) == PGRES_COMMAND_OK
                     || PQresultStatus (res) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf (stderr, "s_refused_for: want %s got %s\n", text ? text : "success",
                 msg ? msg : "success");
    PQclear (res);
    PQclear (PQexec (conn, "ROLLBACK"));
    return ok;
}

static void *
s_race_thread (void *arg)
{
    s_race_t *r = (s_race_t *) arg;
    r->rc = led_store_settle (r->store, r->items, r->count);
    return NULL;
}

void
led_store_test (bool verbose)
{
    (void) verbose;
    const char *conninfo = getenv ("P2C2R_TEST_DB");
    if (!conninfo || !*conninfo) {
        fprintf (stderr, "led_store_test: FAIL: P2C2R_TEST_DB is not set; start a cluster with"
                 " deploy/local/pg.sh start DIR PORT and set P2C2R_TEST_DB to its conninfo\n");
        P2C_CHECK (!"P2C2R_TEST_DB set");
        return;
    }
    const char *sql_dir = led_store_test_sql_dir ();
    char schema [64];
    snprintf (schema, sizeof schema, "led_test_%d_%04x", (int) getpid (), (unsigned) randof (0x10000));
    p2c_rates_t rates = P2C_RATES_DEFAULT;

    //  Bad arguments make no store
    P2C_CHECK (led_store_new (conninfo, "Bad-Schema", sql_dir, &rates) == NULL);
    P2C_CHECK (led_store_new (conninfo, "x; drop", sql_dir, &rates) == NULL);

    //  A database that is not there: connect fails, settle fails, nothing hangs
    led_store_t *down = led_store_new ("host=/nonexistent-p2c2r port=1 dbname=x connect_timeout=2",
                                       schema, sql_dir, &rates);
    P2C_CHECK (down && led_store_connect (down) == -1);
    P2C_CHECK (down && !led_store_connected (down));
    led_settle_t one;
    s_fill (&one, "down-1", "encryption", 1, 2, 100);
    P2C_CHECK (down && led_store_settle (down, &one, 1) == -1);
    P2C_CHECK (one.status == LED_SETTLE_PENDING);
    led_settle_clear (&one);
    int64_t aid = -1;
    const char *message = NULL;
    P2C_CHECK (down && led_store_auth (down, "gamer", "g", "", true, &aid, &message)
               == LED_AUTH_UNAVAILABLE);
    led_store_destroy (&down);

    PGconn *conn = PQconnectdb (conninfo);
    P2C_CHECK (PQstatus (conn) == CONNECTION_OK);
    if (PQstatus (conn) != CONNECTION_OK) {
        fprintf (stderr, "led_store_test: cannot connect to P2C2R_TEST_DB: %s", PQerrorMessage (conn));
        PQfinish (conn);
        return;
    }
    PQsetNoticeProcessor (conn, s_notice, NULL);
    const char *sp [] = { schema };
    PQclear (PQexecParams (conn, "SELECT set_config ('search_path', $1, false)", 1, NULL, sp,
                           NULL, NULL, 0));

    //  Migrations: applied once, then again without harm, also by a second store
    led_store_t *store = led_store_new (conninfo, schema, sql_dir, &rates);
    P2C_CHECK (store && led_store_connect (store) == 0);
    P2C_CHECK (led_store_connected (store));
    P2C_CHECK (led_store_migrate (store) == 0);
    led_store_t *store2 = led_store_new (conninfo, schema, sql_dir, &rates);
    P2C_CHECK (store2 && led_store_connect (store2) == 0);
    P2C_CHECK (s_scalar_is (conn, "SELECT count(*) FROM schema_migrations WHERE version = 1",
                            NULL, "1"));
    P2C_CHECK (s_scalar_is (conn, "SELECT count(*) FROM accounts WHERE kind IN"
                            " ('platform_fee', 'treasury')", NULL, "2"));

    //  Auth creates an account once, per role
    int64_t gamer = 0, gamer_again = 0, peer = 0;
    P2C_CHECK (led_store_auth (store, "gamer", "player-7", "", true, &gamer, &message) == LED_AUTH_OK);
    P2C_CHECK (led_store_auth (store2, "gamer", "player-7", "", true, &gamer_again, &message)
               == LED_AUTH_OK);
    P2C_CHECK (gamer > 0 && gamer == gamer_again);
    P2C_CHECK (led_store_auth (store, "peer", "player-7", "", true, &peer, &message) == LED_AUTH_OK);
    P2C_CHECK (peer > 0 && peer != gamer);
    P2C_CHECK (s_scalar_is (conn, "SELECT count(*) FROM accounts WHERE name = $1", "player-7", "2"));
    P2C_CHECK (led_store_auth (store, "gamer", "player-8", "key", false, &aid, &message)
               == LED_AUTH_FAILED);
    P2C_CHECK (message && !strcmp (message, "unknown API key"));
    P2C_CHECK (s_scalar_is (conn, "SELECT count(*) FROM accounts WHERE name = $1", "player-8", "0"));
    P2C_CHECK (led_store_auth (store, "admin", "x", "", true, &aid, &message) == LED_AUTH_BAD_REQUEST);
    P2C_CHECK (led_store_auth (store, "gamer", "", "", true, &aid, &message) == LED_AUTH_BAD_REQUEST);
    P2C_CHECK (led_store_auth (store, "gamer", "bad\x01", "", true, &aid, &message)
               == LED_AUTH_BAD_REQUEST);
    P2C_CHECK (led_store_auth (store, "gamer", "\xc3\x28", "", true, &aid, &message)
               == LED_AUTH_BAD_REQUEST);
    P2C_CHECK (led_store_auth (store, "gamer", "joueur-\xc3\xa9", "", true, &aid, &message)
               == LED_AUTH_OK);

    //  A batch: every amount is p2c_money_split's, every transaction sums to zero
    enum { N = 50 };
    led_settle_t batch [N];
    int64_t charge_sum = 0, earn_sum = 0;
    bool amounts_ok = true;
    for (int i = 0; i < N; i++) {
        char id [32];
        snprintf (id, sizeof id, "t-%d", i);
        s_fill (&batch [i], id, i % 2 ? "encryption" : "hash", gamer, peer,
                (uint64_t) i * 12345 + 1);
    }
    P2C_CHECK (led_store_settle (store, batch, N) == 0);
    for (int i = 0; i < N; i++) {
        p2c_split_t want;
        p2c_money_split (&rates, batch [i].billed_us, &want);
        if (batch [i].status != LED_SETTLE_NEW || memcmp (&want, &batch [i].split, sizeof want))
            amounts_ok = false;
        charge_sum += want.gamer_charge;
        earn_sum += want.peer_earning;
    }
    P2C_CHECK (amounts_ok);
    char want_txt [40], earn_txt [40];
    p2c_money_format (charge_sum, want_txt, sizeof want_txt);
    p2c_money_format (earn_sum, earn_txt, sizeof earn_txt);
    P2C_CHECK (s_scalar_is (conn, "SELECT count(*) FROM tasks", NULL, "50"));
    P2C_CHECK (s_scalar_is (conn, "SELECT SUM(cost_usd) FROM tasks", NULL, want_txt));
    P2C_CHECK (s_scalar_is (conn, "SELECT total_earned_usd FROM peers WHERE peer_id = $1",
                            "player-7", earn_txt));
    P2C_CHECK (s_scalar_is (conn, "SELECT count(*) FROM (SELECT tx_id FROM journal_entries"
                            " GROUP BY tx_id HAVING SUM(amount_pico) <> 0) u", NULL, "0"));
    P2C_CHECK (s_scalar_is (conn, "SELECT count(*) FROM journal_entries", NULL, "200"));
    P2C_CHECK (s_scalar_is (conn, "SELECT task_type FROM tasks WHERE task_id = 't-0'", NULL,
                            "encryption"));          //  the alias is stored canonical
    //  The gamer's balance is minus what it was charged
    char charge_num [32];
    snprintf (charge_num, sizeof charge_num, "%lld", (long long) -charge_sum);
    P2C_CHECK (s_scalar_is (conn, "SELECT SUM(amount_pico) FROM journal_entries WHERE account_id"
                            " = (SELECT id FROM accounts WHERE kind = 'gamer' AND name = $1)",
                            "player-7", charge_num));

    //  Replaying the batch (through the other store) changes nothing and
    //  answers the stored amounts
    led_settle_t replay [N];
    for (int i = 0; i < N; i++) {
        s_fill (&replay [i], batch [i].task_id, "encryption", gamer, peer, 999999);
    }
    P2C_CHECK (led_store_settle (store2, replay, N) == 0);
    bool replay_ok = true;
    for (int i = 0; i < N; i++)
        if (replay [i].status != LED_SETTLE_REPLAY
            || memcmp (&replay [i].split, &batch [i].split, sizeof batch [i].split))
            replay_ok = false;
    P2C_CHECK (replay_ok);
    P2C_CHECK (s_scalar_is (conn, "SELECT count(*) FROM journal_tx", NULL, "50"));
    P2C_CHECK (s_scalar_is (conn, "SELECT count(*) FROM journal_entries", NULL, "200"));
    P2C_CHECK (s_scalar_is (conn, "SELECT SUM(cost_usd) FROM tasks", NULL, want_txt));
    for (int i = 0; i < N; i++) {
        led_settle_clear (&batch [i]);
        led_settle_clear (&replay [i]);
    }

    //  Bad requests are refused one by one; the good one in the same batch
    //  settles, and a task twice in a batch is settled once
    led_settle_t mixed [7];
    s_fill (&mixed [0], "m-ok", "compression", gamer, peer, 1000);
    s_fill (&mixed [1], "m-type", "no_such_type", gamer, peer, 1000);
    s_fill (&mixed [2], "m-kind", "compression", peer, gamer, 1000);
    s_fill (&mixed [3], "m-acct", "compression", gamer, 987654321, 1000);
    s_fill (&mixed [4], "bad id", "compression", gamer, peer, 1000);
    s_fill (&mixed [5], "m-ok", "compression", gamer, peer, 1000);
    s_fill (&mixed [6], "m-ceiling", "compression", gamer, peer, 1000000000000ULL);
    P2C_CHECK (led_store_settle (store, mixed, 7) == 0);
    P2C_CHECK (mixed [0].status == LED_SETTLE_NEW);
    P2C_CHECK (mixed [1].status == LED_SETTLE_REJECTED && mixed [1].error);
    P2C_CHECK (mixed [2].status == LED_SETTLE_REJECTED);
    P2C_CHECK (mixed [3].status == LED_SETTLE_REJECTED);
    P2C_CHECK (mixed [4].status == LED_SETTLE_REJECTED);
    P2C_CHECK (mixed [5].status == LED_SETTLE_NEW
               && mixed [5].split.gamer_charge == mixed [0].split.gamer_charge);
    P2C_CHECK (mixed [6].status == LED_SETTLE_REJECTED);
    int64_t mixed_earning = mixed [0].split.peer_earning;
    P2C_CHECK (s_scalar_is (conn, "SELECT count(*) FROM tasks WHERE task_id LIKE 'm-%'", NULL, "1"));
    for (int i = 0; i < 7; i++)
        led_settle_clear (&mixed [i]);

    //  Money of validation: the treasury pays a check run (gamer 0), no fee,
    //  no rates row; a settled task's earning is reversed to the treasury
    //  once; a reversal of an unsettled task is refused; a settlement and
    //  its reversal in one batch both go through, settlement first
    char tre [32];
    snprintf (tre, sizeof tre, "%lld", (long long) store->treasury_account);
    char *tre_before = s_scalar (conn, "SELECT balance_pico FROM accounts WHERE id = $1", tre);
    char *peer_before = s_scalar (conn, "SELECT balance_pico FROM accounts WHERE id ="
                                  " (SELECT peer_account FROM tasks WHERE task_id = $1)", "m-ok");
    led_settle_t vr [6];
    s_fill (&vr [0], "m-ok#c1", "compression", 0, peer, 2000000);
    s_fill (&vr [1], "m-ok", "", 0, 0, 0);
    vr [1].reverse = true;
    vr [1].reason = strdup ("lost validation");
    s_fill (&vr [2], "never-settled", "", 0, 0, 0);
    vr [2].reverse = true;
    s_fill (&vr [3], "rv-2", "compression", gamer, peer, 3000);
    s_fill (&vr [4], "rv-2", "", 0, 0, 0);
    vr [4].reverse = true;
    s_fill (&vr [5], "m-ok", "", 0, 0, 0);
    vr [5].reverse = true;
    P2C_CHECK (led_store_settle (store, vr, 6) == 0);
    P2C_CHECK (vr [0].status == LED_SETTLE_NEW && vr [0].split.fee == 0
               && vr [0].split.peer_earning > 0
               && vr [0].split.gamer_charge == vr [0].split.peer_earning);
    P2C_CHECK (s_scalar_is (conn, "SELECT gamer_account = (SELECT id FROM accounts WHERE kind ="
                            " 'treasury') AND rate_id IS NULL AND fee_pico = 0 FROM tasks"
                            " WHERE task_id = $1", "m-ok#c1", "t"));
    P2C_CHECK (vr [1].status == LED_SETTLE_NEW
               && vr [1].split.peer_earning == mixed_earning);
    P2C_CHECK (vr [2].status == LED_SETTLE_REJECTED && !strcmp (vr [2].error, "not settled"));
    P2C_CHECK (vr [3].status == LED_SETTLE_NEW && vr [4].status == LED_SETTLE_NEW
               && vr [4].split.peer_earning == vr [3].split.peer_earning);
    P2C_CHECK (vr [5].status == LED_SETTLE_NEW && vr [5].split.peer_earning == mixed_earning);
    //  the peer got the check run's earning and lost m-ok's and rv-2's
    char want [64];
    snprintf (want, sizeof want, "%lld", strtoll (peer_before, NULL, 10)
              + vr [0].split.peer_earning - mixed_earning);
    P2C_CHECK (s_scalar_is (conn, "SELECT balance_pico FROM accounts WHERE id ="
                            " (SELECT peer_account FROM tasks WHERE task_id = $1)", "m-ok", want));
    //  the treasury paid the check run and got both earnings back
    snprintf (want, sizeof want, "%lld", strtoll (tre_before, NULL, 10)
              - vr [0].split.peer_earning + mixed_earning + vr [3].split.treasury
              + vr [3].split.peer_earning);
    P2C_CHECK (s_scalar_is (conn, "SELECT balance_pico FROM accounts WHERE id = $1", tre, want));
    P2C_CHECK (s_scalar_is (conn, "SELECT count(*) FROM reversals", NULL, "2"));
    free (tre_before);
    free (peer_before);
    for (int i = 0; i < 6; i++)
        led_settle_clear (&vr [i]);
    //  a replay answers the stored amount and writes nothing
    led_settle_t again;
    s_fill (&again, "m-ok", "", 0, 0, 0);
    again.reverse = true;
    P2C_CHECK (led_store_settle (store2, &again, 1) == 0);
    P2C_CHECK (again.status == LED_SETTLE_REPLAY && again.split.peer_earning == mixed_earning);
    P2C_CHECK (s_scalar_is (conn, "SELECT count(*) FROM journal_tx WHERE kind = 'adjust'"
                            " AND memo LIKE 'reverse task %'", NULL, "2"));
    led_settle_clear (&again);
    P2C_CHECK (s_scalar_is (conn, "SELECT count(*) FROM (SELECT tx_id FROM journal_entries"
                            " GROUP BY tx_id HAVING SUM(amount_pico) <> 0) u", NULL, "0"));
    P2C_CHECK (s_scalar_is (conn, "SELECT count(*) FROM accounts a WHERE balance_pico <>"
                            " (SELECT COALESCE (SUM (amount_pico), 0) FROM journal_entries e"
                            " WHERE e.account_id = a.id)", NULL, "0"));

    //  Two stores settling the same tasks at once: each task once
    enum { R = 300 };
    bool race_ok = true;
    for (int round = 0; round < 3; round++) {
        static led_settle_t ra [R], rb [R];
        for (int i = 0; i < R; i++) {
            char id [48];
            snprintf (id, sizeof id, "race-%d-%d", round, i);
            s_fill (&ra [i], id, "physics_cloth", gamer, peer, (uint64_t) i + 1);
            //  the other store sees them in the opposite order
            snprintf (id, sizeof id, "race-%d-%d", round, R - 1 - i);
            s_fill (&rb [i], id, "physics_cloth", gamer, peer, (uint64_t) (R - i));
        }
        s_race_t a = { store, ra, R, -1 }, b = { store2, rb, R, -1 };
        pthread_t ta, tb;
        pthread_create (&ta, NULL, s_race_thread, &a);
        pthread_create (&tb, NULL, s_race_thread, &b);
        pthread_join (ta, NULL);
        pthread_join (tb, NULL);
        int fresh = 0;
        for (int i = 0; i < R; i++) {
            fresh += (ra [i].status == LED_SETTLE_NEW) + (rb [i].status == LED_SETTLE_NEW);
            if (ra [i].status == LED_SETTLE_PENDING || rb [i].status == LED_SETTLE_PENDING
                || ra [i].split.gamer_charge != rb [R - 1 - i].split.gamer_charge)
                race_ok = false;
        }
        if (a.rc != 0 || b.rc != 0 || fresh != R) {
            fprintf (stderr, "led_store_test: race round %d rc=%d/%d new=%d\n", round, a.rc,
                     b.rc, fresh);
            race_ok = false;
        }
        for (int i = 0; i < R; i++) {
            led_settle_clear (&ra [i]);
            led_settle_clear (&rb [i]);
        }
    }
    P2C_CHECK (race_ok);
    P2C_CHECK (s_scalar_is (conn, "SELECT count(*) FROM tasks WHERE task_id LIKE 'race-%'",
                            NULL, "900"));
    P2C_CHECK (s_scalar_is (conn, "SELECT count(*) FROM journal_tx WHERE task_id LIKE 'race-%'",
                            NULL, "900"));
    P2C_CHECK (s_scalar_is (conn, "SELECT count(*) FROM (SELECT tx_id FROM journal_entries"
                            " GROUP BY tx_id HAVING SUM(amount_pico) <> 0) u", NULL, "0"));

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
    P2C_CHECK (s_refused_for (conn, "WITH t AS (INSERT INTO journal_tx (kind) VALUES ('adjust')"
                              " RETURNING id) INSERT INTO journal_entries (tx_id, account_id,"
                              " amount_pico) SELECT id, a, m FROM t,"
                              " (VALUES (1, 5), (987654321, -5), (2, 0)) v (a, m)",
                              "entry for unknown account 987654321"));
    P2C_CHECK (s_refused_for (conn, "WITH t AS (INSERT INTO journal_tx (kind) VALUES ('adjust')"
                              " RETURNING id) INSERT INTO journal_entries (tx_id, account_id,"
                              " amount_pico) SELECT id, a, m FROM t,"
                              " (VALUES (1, 5), (2, -4)) v (a, m)", "does not balance"));
    P2C_CHECK (s_refused_for (conn, "INSERT INTO journal_entries (tx_id, account_id, amount_pico)"
                              " VALUES (987654321, 1, 5), (987654321, 2, -5)",
                              "entry for unknown transaction 987654321"));
    //  A task row names its own settle transaction, known accounts and rates
    const char *task_sql = "WITH j AS (INSERT INTO journal_tx (kind, task_id) VALUES"
        " ('settle', 'bogus-%d') RETURNING id) INSERT INTO tasks (task_id, tx_id, task_type,"
        " gamer_account, peer_account, billed_us, compute_us, observed_us, gamer_charge_pico,"
        " peer_earning_pico, fee_pico, treasury_pico, rate_id) SELECT 'bogus-%d', %s, 'encryption',"
        " %s, 2, 0, 0, 0, 0, 0, 0, 0, %s FROM j";
    char *sql = zsys_sprintf (task_sql, 1, 1, "id", "1", "NULL");
    P2C_CHECK (s_refused_for (conn, sql, NULL));    //  all good (and rolled back)
    zstr_free (&sql);
    sql = zsys_sprintf (task_sql, 1, 2, "id", "1", "NULL");
    P2C_CHECK (s_refused_for (conn, sql, "no settle transaction"));
    zstr_free (&sql);
    sql = zsys_sprintf (task_sql, 1, 1, "id", "987654321", "NULL");
    P2C_CHECK (s_refused_for (conn, sql, "unknown account"));
    zstr_free (&sql);
    sql = zsys_sprintf (task_sql, 1, 1, "id", "1", "987654321");
    P2C_CHECK (s_refused_for (conn, sql, "unknown rates 987654321"));
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
    sql = zsys_sprintf (settle_sql, gamer_sql, "100", fee, "");
    P2C_CHECK (s_refused_for (conn, sql, NULL));     //  all good (and rolled back)
    zstr_free (&sql);
    sql = zsys_sprintf (settle_sql, gamer_sql, "101", fee, "");
    P2C_CHECK (s_refused_for (conn, sql, "task bogus-s does not balance"));
    zstr_free (&sql);
    sql = zsys_sprintf (settle_sql, "0", "100", fee, "");
    P2C_CHECK (s_refused_for (conn, sql, "task bogus-s does not balance"));
    zstr_free (&sql);
    sql = zsys_sprintf (settle_sql, gamer_sql, "100", "987654321", "");
    P2C_CHECK (s_refused_for (conn, sql, "entry for unknown account 987654321"));
    zstr_free (&sql);
    sql = zsys_sprintf (settle_sql, gamer_sql, "100", fee,
                        "; SELECT 1 / (current_setting ('p2c2r.settle_checked', true)"
                        " IS DISTINCT FROM 'on')::INT");
    P2C_CHECK (s_refused_for (conn, sql, NULL));     //  the setting is over
    zstr_free (&sql);
    sql = zsys_sprintf (settle_sql, gamer_sql, "100", fee,
                        "; WITH t AS (INSERT INTO journal_tx (kind) VALUES ('adjust') RETURNING id)"
                        " INSERT INTO journal_entries (tx_id, account_id, amount_pico)"
                        " SELECT id, 1, 5 FROM t");
    P2C_CHECK (s_refused_for (conn, sql, "does not balance"));
    zstr_free (&sql);
    res = PQexec (conn, "SET p2c2r.settle_checked = 'off'");
    PQclear (res);
    P2C_CHECK (s_refused_for (conn, "SELECT count(*) FROM ledger_settle (0, '{}', '{}', '{}', '{}',"
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
    P2C_CHECK (s_scalar_is (conn, "SELECT count(*) FROM journal_tx WHERE kind = 'adjust'"
                            " AND memo NOT LIKE 'reverse task %'", NULL, "0"));
    //  Stored balances equal the entries' sums after all of the above
    const char *mismatch_sql = "SELECT count(*) FROM accounts a WHERE balance_pico <>"
        " (SELECT COALESCE (SUM (amount_pico), 0) FROM journal_entries e WHERE e.account_id = a.id)";
    P2C_CHECK (s_scalar_is (conn, mismatch_sql, NULL, "0"));

    //  Settlement amounts against the formula for many random billed
    //  times (the whole range of a type, small ones where rounding bites),
    //  at the seeded rates, then at new rates set now; the old ones stay
    enum { RND = 2000 };
    static led_settle_t rnd [RND];
    uint64_t max_billed = p2c_task_type ("encryption")->max_billed_us;
    bool formula_ok = true;
    p2c_rates_t now_rates = rates;
    char *spent_before = NULL;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < RND; i++) {
            char id [48];
            snprintf (id, sizeof id, "rnd-%d-%d", round, i);
            uint64_t r = ((uint64_t) randof (0x7fffffff) << 31) ^ (uint64_t) randof (0x7fffffff);
            uint64_t billed = i % 4 == 0 ? r % 100 : i % 4 == 1 ? r % 100000 : r % (max_billed + 1);
            s_fill (&rnd [i], id, "encryption", gamer, peer, billed);
        }
        P2C_CHECK (led_store_settle (store, rnd, RND) == 0);
        for (int i = 0; i < RND; i++) {
            p2c_split_t want;
            p2c_money_split (&now_rates, rnd [i].billed_us, &want);
            if (rnd [i].status != LED_SETTLE_NEW || memcmp (&want, &rnd [i].split, sizeof want)
                || want.gamer_charge != want.fee + want.peer_earning + want.treasury) {
                formula_ok = false;
                fprintf (stderr, "led_store_test: billed %llu: charge %lld want %lld\n",
                         (unsigned long long) rnd [i].billed_us,
                         (long long) rnd [i].split.gamer_charge, (long long) want.gamer_charge);
            }
            led_settle_clear (&rnd [i]);
        }
        //  The gamer's balance after the batch is what the scheduler hears
        size_t nb = 0;
        const led_balance_t *bal = led_store_balances (store, &nb);
        char gid [32];
        snprintf (gid, sizeof gid, "%lld", (long long) gamer);
        char *stored = s_scalar (conn, "SELECT balance_pico FROM accounts WHERE id = $1::bigint", gid);
        P2C_CHECK (nb == 1 && bal [0].account_id == gamer
                   && bal [0].balance_pico == strtoll (stored, NULL, 10));
        free (stored);
        if (round == 0) {
            spent_before = s_scalar (conn, "SELECT SUM (cost_usd) FROM tasks WHERE task_id LIKE"
                                     " 'rnd-0-%'", NULL);
            char *result = NULL, *msg = NULL;
            const char *code = NULL;
            P2C_CHECK (led_store_admin (store, "rates-set", "{\"gamer_pico_per_hour\":"
                       "33333333333,\"peer_pico_per_hour\":77777777777,\"fee_bp\":1234}",
                       &result, &code, &msg) == LED_ADMIN_OK);
            free (result);
            free (msg);
            now_rates.gamer_per_hour = 33333333333LL;
            now_rates.peer_per_hour = 77777777777LL;
            now_rates.fee_bp = 1234;
        }
    }
    P2C_CHECK (formula_ok);
    P2C_CHECK (s_scalar_is (conn, "SELECT SUM (cost_usd) FROM tasks WHERE task_id LIKE 'rnd-0-%'",
                            NULL, spent_before));
    P2C_CHECK (s_scalar_is (conn, "SELECT count (DISTINCT rate_id) FROM tasks WHERE task_id LIKE"
                            " 'rnd-%'", NULL, "2"));
    free (spent_before);

    //  Operators' commands, as the ledger runs them for p2c2r-ctl
    char *result = NULL, *msg = NULL;
    const char *code = NULL;
#define ADMIN(cmd, args) (free (result), free (msg), result = msg = NULL, code = NULL, \
                          led_store_admin (store, cmd, args, &result, &code, &msg))
    P2C_CHECK (ADMIN ("account-create", "{\"kind\":\"peer\",\"name\":\"keyed\"}") == LED_ADMIN_OK);
    json_error_t jerr;
    json_t *made = json_loads (result ? result : "", 0, &jerr);
    char key [65] = "";
    int64_t keyed = made ? (int64_t) json_integer_value (json_object_get (made, "id")) : 0;
    snprintf (key, sizeof key, "%s", made ? json_string_value (json_object_get (made, "api_key")) : "");
    json_decref (made);
    P2C_CHECK (strlen (key) == 64 && keyed > 0);
    P2C_CHECK (ADMIN ("account-create", "{\"kind\":\"peer\",\"name\":\"keyed\"}") == LED_ADMIN_REFUSED
               && !strcmp (code, "exists"));
    P2C_CHECK (ADMIN ("account-create", "{\"kind\":\"treasury\",\"name\":\"x\"}") == LED_ADMIN_REFUSED
               && !strcmp (code, "bad_request"));
    P2C_CHECK (ADMIN ("no-such-command", "{}") == LED_ADMIN_REFUSED);
    P2C_CHECK (ADMIN ("credit", "[1, 2]") == LED_ADMIN_REFUSED);
    P2C_CHECK (ADMIN ("credit", "not json") == LED_ADMIN_REFUSED);
    //  Keys: the key names the account, the role must match, only the hash is stored
    char hash [65];
    led_store_hash_key (key, hash);
    P2C_CHECK (s_scalar_is (conn, "SELECT count(*) FROM accounts WHERE key_hash = $1", hash, "1"));
    P2C_CHECK (led_store_auth (store, "peer", "laptop-1", key, false, &aid, &message) == LED_AUTH_OK
               && aid == keyed);
    P2C_CHECK (led_store_auth (store, "gamer", "laptop-1", key, true, &aid, &message) == LED_AUTH_FAILED);
    P2C_CHECK (led_store_auth (store, "peer", "laptop-1", "0000", false, &aid, &message)
               == LED_AUTH_FAILED);
    P2C_CHECK (led_store_auth (store, "peer", "laptop-1", "", false, &aid, &message) == LED_AUTH_FAILED
               && !strcmp (message, "an API key is required"));
    P2C_CHECK (led_store_auth (store, "peer", "keyed", "", true, &aid, &message) == LED_AUTH_FAILED);
    char args [256];
    snprintf (args, sizeof args, "{\"account_id\":%lld}", (long long) keyed);
    P2C_CHECK (ADMIN ("account-disable", args) == LED_ADMIN_OK);
    P2C_CHECK (led_store_auth (store, "peer", "laptop-1", key, false, &aid, &message) == LED_AUTH_FAILED);
    P2C_CHECK (ADMIN ("account-enable", args) == LED_ADMIN_OK);
    P2C_CHECK (led_store_auth (store, "peer", "laptop-1", key, false, &aid, &message) == LED_AUTH_OK);
    P2C_CHECK (ADMIN ("rotate-key", args) == LED_ADMIN_OK && result && !strstr (result, key));
    P2C_CHECK (led_store_auth (store, "peer", "laptop-1", key, false, &aid, &message) == LED_AUTH_FAILED);
    P2C_CHECK (ADMIN ("account-disable", "{\"account_id\":1}") == LED_ADMIN_REFUSED
               && !strcmp (code, "not_found"));
    //  Disabling a gamer tells the scheduler
    snprintf (args, sizeof args, "{\"account_id\":%lld}", (long long) gamer);
    size_t nb = 0;
    P2C_CHECK (ADMIN ("account-disable", args) == LED_ADMIN_OK
               && led_store_balances (store, &nb) && nb == 1
               && led_store_balances (store, &nb) [0].disabled);
    P2C_CHECK (ADMIN ("account-enable", args) == LED_ADMIN_OK);
    //  Credit: from the external account, to gamers only
    snprintf (args, sizeof args, "{\"account_id\":%lld,\"amount_pico\":5000000000000}",
              (long long) gamer);
    P2C_CHECK (ADMIN ("credit", args) == LED_ADMIN_OK && nb == 1);
    P2C_CHECK (s_scalar_is (conn, "SELECT balance_pico FROM accounts WHERE kind = 'external'",
                            NULL, "-5000000000000"));
    snprintf (args, sizeof args, "{\"account_id\":%lld,\"amount_pico\":-5}", (long long) gamer);
    P2C_CHECK (ADMIN ("credit", args) == LED_ADMIN_REFUSED && !strcmp (code, "bad_request"));
    snprintf (args, sizeof args, "{\"account_id\":%lld,\"amount_pico\":5}", (long long) peer);
    P2C_CHECK (ADMIN ("credit", args) == LED_ADMIN_REFUSED && !strcmp (code, "not_found"));
    //  Rates cannot start in the past
    P2C_CHECK (ADMIN ("rates-set", "{\"gamer_pico_per_hour\":1,\"peer_pico_per_hour\":1,"
                      "\"fee_bp\":1,\"effective_at\":\"2000-01-01\"}") == LED_ADMIN_REFUSED);
    P2C_CHECK (ADMIN ("rates-set", "{\"gamer_pico_per_hour\":1,\"peer_pico_per_hour\":1,"
                      "\"fee_bp\":10001}") == LED_ADMIN_REFUSED);
    P2C_CHECK (ADMIN ("rates-set", "{\"gamer_pico_per_hour\":1,\"peer_pico_per_hour\":1,"
                      "\"fee_bp\":1,\"effective_at\":\"not a time\"}") == LED_ADMIN_REFUSED);
    //  Payouts: the threshold ($10 by default), then the whole balance moves
    snprintf (args, sizeof args, "{\"account_id\":%lld}", (long long) peer);
    P2C_CHECK (ADMIN ("payout-request", args) == LED_ADMIN_REFUSED
               && !strcmp (code, "below_threshold"));
    led_policy_t policy = { 0, 1 };
    led_store_set_policy (store, &policy);
    char pid [32];
    char *owed = s_scalar (conn, "SELECT balance_pico FROM accounts WHERE id = $1::bigint",
                           (snprintf (pid, sizeof pid, "%lld", (long long) peer), pid));
    P2C_CHECK (ADMIN ("payout-request", args) == LED_ADMIN_OK && result && strstr (result, owed));
    P2C_CHECK (s_scalar_is (conn, "SELECT balance_pico FROM accounts WHERE id = $1::bigint", pid, "0"));
    P2C_CHECK (s_scalar_is (conn, "SELECT balance_pico FROM accounts WHERE kind = 'payouts_pending'",
                            NULL, owed));
    free (owed);
    P2C_CHECK (ADMIN ("payout-request", args) == LED_ADMIN_REFUSED);
    P2C_CHECK (ADMIN ("payout-mark-paid", "{\"payout_id\":1,\"reference\":\"r1\"}") == LED_ADMIN_OK);
    P2C_CHECK (ADMIN ("payout-mark-paid", "{\"payout_id\":1}") == LED_ADMIN_REFUSED
               && !strcmp (code, "already_paid"));
    P2C_CHECK (ADMIN ("payout-mark-paid", "{\"payout_id\":99}") == LED_ADMIN_REFUSED
               && !strcmp (code, "not_found"));
    P2C_CHECK (s_scalar_is (conn, "SELECT balance_pico FROM accounts WHERE kind = 'payouts_pending'",
                            NULL, "0"));
    //  A starting credit for new gamers, from the external account
    policy.starting_credit_pico = 3000000000000LL;
    led_store_set_policy (store, &policy);
    P2C_CHECK (led_store_auth (store, "gamer", "newcomer", "", true, &aid, &message) == LED_AUTH_OK
               && led_store_balances (store, &nb) && nb == 1
               && led_store_balances (store, &nb) [0].balance_pico == 3000000000000LL);
    P2C_CHECK (led_store_auth (store, "gamer", "newcomer", "", true, &aid, &message) == LED_AUTH_OK
               && led_store_balances (store, &nb) [0].balance_pico == 3000000000000LL);
    P2C_CHECK (ADMIN ("account-create", "{\"kind\":\"gamer\",\"name\":\"newcomer-2\"}")
               == LED_ADMIN_OK && nb == 1);
    P2C_CHECK (s_scalar_is (conn, "SELECT count(*) FROM journal_tx WHERE memo = 'starting credit'",
                            NULL, "2"));
    //  Balances on demand (BalanceQuery): gamers only
    int64_t ids [] = { gamer, peer, 987654321 };
    P2C_CHECK (led_store_query_balances (store, ids, 3) == 0
               && led_store_balances (store, &nb) && nb == 1);
    free (result);
    free (msg);
#undef ADMIN
    P2C_CHECK (s_scalar_is (conn, mismatch_sql, NULL, "0"));

    led_store_destroy (&store);
    led_store_destroy (&store2);
    P2C_CHECK (store == NULL);
    led_store_destroy (&store);
    char *ident = PQescapeIdentifier (conn, schema, strlen (schema));
    char *drop = zsys_sprintf ("DROP SCHEMA %s CASCADE", ident);
    res = PQexec (conn, drop);
    P2C_CHECK (PQresultStatus (res) == PGRES_COMMAND_OK);
    PQclear (res);
    zstr_free (&drop);
    PQfreemem (ident);
    PQfinish (conn);
}
