/*  p2c2r-ctl's commands. Reads are SQL on a read-only session (one
    snapshot per run, so a report's figures agree with each other); writes
    are AdminRequests to the ledger (ctl_admin.c), which owns the rules.
    Money is printed from NUMERIC (exact), never through a double. */
#include "ctl.h"
#include "p2c_log.h"
#include "p2c_money.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ctl_usage =
    "[options] COMMAND [ARGS]\n\n"
    "Reads (PostgreSQL, read-only):\n"
    "  account list [--kind K]            accounts with their balances\n"
    "  account show ACCOUNT               one account in detail\n"
    "  balance ACCOUNT                    an account's balance\n"
    "  statement ACCOUNT [--since TIME]   its journal entries with the running balance\n"
    "  top-peers [N]                      the N peers that earned most (default 10)\n"
    "  revenue [--since TIME]             what gamers paid, the fee, peers earned, top-ups, payouts;\n"
    "                                     the treasury's subsidy today: budget, used, left\n"
    "  totals [--oneline]                 gamers spent, peers earned, fee, treasury, tasks\n"
    "  rates list                         the rates table (effective-dated)\n"
    "  payout list [--status pending|paid|all]\n"
    "  payout export --csv                pending payouts for an external payment run\n"
    "  audit                              check the books; exits 1 on any violation\n"
    "  log [--limit N]                    the operators' log: who did what, newest first\n"
    "  psql [PSQL ARGS]                   psql on the ledger's database and schema\n"
    "Writes (through the ledger, via --broker):\n"
    "  account create gamer|peer|admin NAME [--owner OWNER]   prints the new API key once\n"
    "  account link ACCOUNT OWNER             names the account's holder: the scheduler never runs\n"
    "                                         a gamer's tasks (nor checks) on a peer of its owner\n"
    "  account unlink ACCOUNT                 the account has no owner again\n"
    "  account disable|enable ACCOUNT\n"
    "  account rotate-key ACCOUNT             prints the new API key once\n"
    "  credit GAMER AMOUNT [--memo TEXT]      a top-up in USD from the external funding account\n"
    "  rates set GAMER_USD_PER_HOUR PEER_USD_PER_HOUR FEE_BP [SUBSIDY_USD_PER_DAY] [--from TIME]\n"
    "                                         the subsidy: what the treasury adds to peers' earnings\n"
    "                                         per UTC day (default no limit)\n"
    "  payout request PEER                    moves the peer's payable balance to payouts pending\n"
    "  payout mark-paid PAYOUT_ID [--reference TEXT]\n"
    "Bus keys (the key directory --keys, no database; the broker rereads it):\n"
    "  keys init                              makes the broker's and one key per service if missing\n"
    "  keys list                              listed and revoked keys: name, service, public key\n"
    "  keys add NAME SERVICE [PUBLIC_KEY]     lists a key for gateway|scheduler|ledger|ctl; makes\n"
    "                                         the pair (NAME.key_secret) unless PUBLIC_KEY is given\n"
    "  keys revoke NAME                       refused from the broker's next reread on (1 s)\n"
    "The server's alerts (the scheduler, via --broker, no database):\n"
    "  alerts [--json]                        firing and pending alerts: since, value, threshold;\n"
    "                                         exits 1 when one fires (--json: every rule)\n"
    "ACCOUNT is an id, KIND:NAME, or a name that only one gamer, peer or admin has.";

#define CTL_AUDIT_SHOW 100          //  rows printed per failed check
#define USD(x) "(" x ")::NUMERIC * 0.000000000001"

//  Runs a read query with text parameters; prints the error, NULL on failure
static PGresult *
s_query (ctl_t *ctl, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = PQexecParams (ctl->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (res) != PGRES_TUPLES_OK) {
        fprintf (stderr, "p2c2r-ctl: query failed: %s", PQresultErrorMessage (res));
        PQclear (res);
        return NULL;
    }
    return res;
}

static int
s_show (ctl_t *ctl, const char *sql, int nparams, const char *const *params, bool single)
{
    PGresult *res = s_query (ctl, sql, nparams, params);
    if (!res)
        return CTL_EXIT_ERROR;
    if (single && PQntuples (res) != 1) {
        fprintf (stderr, "p2c2r-ctl: not found\n");
        PQclear (res);
        return CTL_EXIT_VIOLATION;
    }
    ctl_print_result (res, ctl->json, single);
    PQclear (res);
    return CTL_EXIT_OK;
}

//  An account named by id, KIND:NAME, or a name only one user account has.
//  kinds: the kinds allowed (comma-free list like "gamer peer admin").
//  The id as text into buf, or NULL (printed why).
static const char *
s_resolve (ctl_t *ctl, const char *ref, const char *kinds, char *buf, size_t size)
{
    if (!ref || !*ref) {
        fprintf (stderr, "p2c2r-ctl: which account? (see --help)\n");
        return NULL;
    }
    const char *colon = strchr (ref, ':');
    char kind [32] = "";
    const char *name = ref;
    if (colon && (size_t) (colon - ref) < sizeof kind) {
        memcpy (kind, ref, (size_t) (colon - ref));
        kind [colon - ref] = 0;
        name = colon + 1;
    }
    bool numeric = strspn (ref, "0123456789") == strlen (ref) && strlen (ref) < 19;
    const char *params [] = { numeric ? ref : NULL, name, *kind ? kind : NULL };
    PGresult *res = s_query (ctl,
        "SELECT id, kind FROM accounts WHERE"
        " ($1::bigint IS NOT NULL AND id = $1::bigint)"
        " OR ($1::bigint IS NULL AND name = $2 AND kind = COALESCE ($3, kind)"
        "     AND ($3 IS NOT NULL OR kind IN ('gamer', 'peer', 'admin')))"
        " ORDER BY id", 3, params);
    if (!res)
        return NULL;
    const char *out = NULL;
    if (PQntuples (res) == 0)
        fprintf (stderr, "p2c2r-ctl: no account %s\n", ref);
    else
    if (PQntuples (res) > 1)
        fprintf (stderr, "p2c2r-ctl: %d accounts are named %s: say KIND:NAME or the id\n",
                 PQntuples (res), ref);
    else
    if (!strstr (kinds, PQgetvalue (res, 0, 1)))
        fprintf (stderr, "p2c2r-ctl: account %s is a %s account, this wants: %s\n", ref,
                 PQgetvalue (res, 0, 1), kinds);
    else {
        snprintf (buf, size, "%s", PQgetvalue (res, 0, 0));
        out = buf;
    }
    PQclear (res);
    return out;
}

static const char *
s_arg (ctl_t *ctl, int i)
{
    return i < ctl->argc ? ctl->argv [i] : NULL;
}

//  ---------------------------------------------------------------- reads

//  Every account kind, for commands that take any account
#define S_ANY_KIND "gamer peer admin platform_fee treasury external payouts_pending"

static int
s_account_list (ctl_t *ctl)
{
    const char *params [] = { ctl->kind && *ctl->kind ? ctl->kind : NULL };
    return s_show (ctl,
        "SELECT id, kind, name, COALESCE (owner, '') AS owner, disabled,"
        "       key_hash IS NOT NULL AS has_key,"
        "       date_trunc ('second', created_at)::text AS created_at,"
        "       " USD ("balance_pico") " AS balance_usd"
        "  FROM accounts WHERE kind = COALESCE ($1, kind) ORDER BY id", 1, params, false);
}

static int
s_account_show (ctl_t *ctl)
{
    char id [32];
    if (!s_resolve (ctl, s_arg (ctl, 2), S_ANY_KIND, id, sizeof id))
        return CTL_EXIT_ERROR;
    const char *params [] = { id };
    return s_show (ctl,
        "SELECT a.id, a.kind, a.name, COALESCE (a.owner, '') AS owner, a.disabled,"
        "       a.key_hash IS NOT NULL AS has_key,"
        "       date_trunc ('second', a.key_created_at)::text AS key_created_at,"
        "       date_trunc ('second', a.created_at)::text AS created_at,"
        "       " USD ("a.balance_pico") " AS balance_usd,"
        "       (SELECT COUNT (*) FROM tasks t WHERE t.gamer_account = a.id"
        "          OR t.peer_account = a.id) AS tasks,"
        "       " USD ("(SELECT COALESCE (SUM (p.amount_pico), 0) FROM payouts p"
        "          WHERE p.account_id = a.id AND p.paid_tx IS NULL)") " AS payouts_pending_usd,"
        "       " USD ("(SELECT COALESCE (SUM (p.amount_pico), 0) FROM payouts p"
        "          WHERE p.account_id = a.id AND p.paid_tx IS NOT NULL)") " AS paid_out_usd"
        "  FROM accounts a WHERE a.id = $1::bigint", 1, params, true);
}

static int
s_balance (ctl_t *ctl)
{
    char id [32];
    if (!s_resolve (ctl, s_arg (ctl, 1), S_ANY_KIND, id, sizeof id))
        return CTL_EXIT_ERROR;
    const char *params [] = { id };
    return s_show (ctl,
        "SELECT id, kind, name, disabled, balance_pico, " USD ("balance_pico") " AS balance_usd"
        "  FROM accounts WHERE id = $1::bigint", 1, params, true);
}

static int
s_statement (ctl_t *ctl)
{
    char id [32];
    if (!s_resolve (ctl, s_arg (ctl, 1), S_ANY_KIND, id, sizeof id))
        return CTL_EXIT_ERROR;
    const char *params [] = { id, ctl->since && *ctl->since ? ctl->since : NULL };
    //  The running balance counts the entries before --since too
    return s_show (ctl,
        "SELECT date_trunc ('milliseconds', created_at)::text AS at, tx_id, kind, detail,"
        "       amount_usd, balance_usd FROM ("
        "  SELECT j.created_at, j.id AS tx_id, j.kind,"
        "         COALESCE (j.task_id, j.memo, '') AS detail,"
        "         " USD ("e.amount_pico") " AS amount_usd,"
        "         " USD ("SUM (e.amount_pico) OVER (ORDER BY e.id)") " AS balance_usd"
        "    FROM journal_entries e JOIN journal_tx j ON j.id = e.tx_id"
        "   WHERE e.account_id = $1::bigint) s"
        " WHERE $2::timestamptz IS NULL OR created_at >= $2::timestamptz ORDER BY tx_id",
        2, params, false);
}

static int
s_top_peers (ctl_t *ctl)
{
    const char *n = s_arg (ctl, 1) ? s_arg (ctl, 1) : "10";
    if (strspn (n, "0123456789") != strlen (n) || strlen (n) > 6 || atoi (n) < 1) {
        fprintf (stderr, "p2c2r-ctl: top-peers N wants a whole number from 1 to 999999\n");
        return CTL_EXIT_ERROR;
    }
    const char *params [] = { n };
    return s_show (ctl,
        "SELECT peer_id, account_id, tasks_completed, billed_us, total_earned_usd"
        "  FROM peers ORDER BY total_earned_usd DESC, account_id LIMIT $1::int",
        1, params, false);
}

static int
s_revenue (ctl_t *ctl)
{
    const char *params [] = { ctl->since && *ctl->since ? ctl->since : "-infinity" };
    return s_show (ctl,
        "SELECT $1::timestamptz::text AS since, t.tasks,"
        "       " USD ("t.charge") " AS gamers_paid_usd, " USD ("t.fee") " AS platform_fee_usd,"
        "       " USD ("t.earned") " AS peers_earned_usd,"
        "       " USD ("t.treasury") " AS treasury_net_usd,"
        "       " USD ("c.credits") " AS top_ups_usd,"
        "       " USD ("p.requested") " AS payouts_requested_usd,"
        "       " USD ("p.paid") " AS payouts_paid_usd,"
        //  the treasury's subsidy today (issue 14): the budget of the rates
        //  in force (none: no limit), what was granted, what is left
        "       " USD ("s.budget") " AS subsidy_budget_today_usd,"
        "       " USD ("s.used") " AS subsidy_used_today_usd,"
        "       " USD ("GREATEST (s.budget - s.used, 0)") " AS subsidy_left_today_usd,"
        "       " USD ("s.cut") " AS subsidy_cut_today_usd"
        "  FROM (SELECT (SELECT subsidy_pico_per_day FROM rates WHERE effective_at <= now ()"
        "                 ORDER BY effective_at DESC LIMIT 1) AS budget,"
        "               COALESCE ((SELECT used_pico FROM subsidy_days"
        "                 WHERE day = (now () AT TIME ZONE 'UTC')::DATE), 0) AS used,"
        "               COALESCE ((SELECT SUM (subsidy_cut_pico) FROM tasks"
        "                 WHERE settled_at >= (now () AT TIME ZONE 'UTC')::DATE"
        "                                     AT TIME ZONE 'UTC'), 0) AS cut) s,"
        "        (SELECT COUNT (*) AS tasks, COALESCE (SUM (gamer_charge_pico), 0) AS charge,"
        "               COALESCE (SUM (fee_pico), 0) AS fee,"
        "               COALESCE (SUM (peer_earning_pico), 0) AS earned,"
        "               COALESCE (SUM (treasury_pico), 0) AS treasury"
        "          FROM tasks WHERE settled_at >= $1::timestamptz) t,"
        "       (SELECT COALESCE (SUM (e.amount_pico), 0) AS credits"
        "          FROM journal_tx j JOIN journal_entries e ON e.tx_id = j.id"
        "          JOIN accounts a ON a.id = e.account_id"
        "         WHERE j.kind = 'credit' AND a.kind = 'gamer'"
        "           AND j.created_at >= $1::timestamptz) c,"
        "       (SELECT COALESCE (SUM (amount_pico) FILTER (WHERE requested_at >= $1::timestamptz), 0)"
        "                 AS requested,"
        "               COALESCE (SUM (amount_pico) FILTER (WHERE paid_at >= $1::timestamptz), 0)"
        "                 AS paid FROM payouts) p", 1, params, true);
}

static int
s_totals (ctl_t *ctl)
{
    PGresult *res = s_query (ctl,
        "SELECT " USD ("(SELECT COALESCE (SUM (gamer_charge_pico), 0) FROM tasks)") ","
        "       " USD ("(SELECT COALESCE (SUM (peer_earning_pico), 0) FROM tasks)") ","
        "       " USD ("(SELECT COALESCE (SUM (balance_pico), 0) FROM accounts"
        "                WHERE kind = 'platform_fee')") ","
        "       " USD ("(SELECT COALESCE (SUM (balance_pico), 0) FROM accounts"
        "                WHERE kind = 'treasury')") ","
        "       (SELECT COUNT (*) FROM tasks)", 0, NULL);
    if (!res)
        return CTL_EXIT_ERROR;
    const char *labels [] = { "gamers_spent_usd", "peers_earned_usd", "platform_fee_usd",
                              "treasury_usd", "tasks_settled" };
    const char *human [] = { "gamers spent (USD)", "peers earned (USD)", "platform fee (USD)",
                             "treasury (USD)", "tasks settled" };
    if (ctl->oneline)
        printf ("tasks settled %s | gamers spent $%s | peers earned $%s | fee $%s\n",
                PQgetvalue (res, 0, 4), PQgetvalue (res, 0, 0), PQgetvalue (res, 0, 1),
                PQgetvalue (res, 0, 2));
    else
    if (ctl->json) {
        json_t *root = json_object ();
        for (int i = 0; i < 4; i++)
            json_object_set_new (root, labels [i], json_string (PQgetvalue (res, 0, i)));
        json_object_set_new (root, labels [4],
                             json_integer (strtoll (PQgetvalue (res, 0, 4), NULL, 10)));
        ctl_print_json (root);
        json_decref (root);
    }
    else
        for (int i = 0; i < 5; i++)
            printf ("%-20s %22s\n", human [i], PQgetvalue (res, 0, i));
    PQclear (res);
    return CTL_EXIT_OK;
}

static int
s_rates_list (ctl_t *ctl)
{
    return s_show (ctl,
        "SELECT id, effective_at::text AS effective_at,"
        "       " USD ("gamer_pico_per_hour") " AS gamer_usd_per_hour,"
        "       " USD ("peer_pico_per_hour") " AS peer_usd_per_hour, fee_bp,"
        "       " USD ("subsidy_pico_per_day") " AS subsidy_usd_per_day,"
        "       id = (SELECT id FROM rates WHERE effective_at <= now ()"
        "             ORDER BY effective_at DESC LIMIT 1) AS in_force"
        "  FROM rates ORDER BY effective_at", 0, NULL, false);
}

static int
s_payout_list (ctl_t *ctl)
{
    const char *status = ctl->status && *ctl->status ? ctl->status : "all";
    if (strcmp (status, "pending") && strcmp (status, "paid") && strcmp (status, "all")) {
        fprintf (stderr, "p2c2r-ctl: --status is pending, paid or all\n");
        return CTL_EXIT_ERROR;
    }
    const char *params [] = { status };
    return s_show (ctl,
        "SELECT p.id, p.account_id, a.name AS peer, " USD ("p.amount_pico") " AS amount_usd,"
        "       date_trunc ('second', p.requested_at)::text AS requested_at,"
        "       date_trunc ('second', p.paid_at)::text AS paid_at, p.reference"
        "  FROM payouts p JOIN accounts a ON a.id = p.account_id"
        " WHERE $1 = 'all' OR ($1 = 'paid') = (p.paid_tx IS NOT NULL) ORDER BY p.id",
        1, params, false);
}

//  Pending payouts as CSV (RFC 4180) for the payment run; mark-paid each
//  one once it is paid
static int
s_payout_export (ctl_t *ctl)
{
    if (!ctl->csv && !ctl->json) {
        fprintf (stderr, "p2c2r-ctl: payout export writes --csv (or --json)\n");
        return CTL_EXIT_ERROR;
    }
    const char *sql =
        "SELECT p.id AS payout_id, p.account_id, a.name AS peer,"
        "       " USD ("p.amount_pico") " AS amount_usd, p.requested_at::text AS requested_at"
        "  FROM payouts p JOIN accounts a ON a.id = p.account_id"
        " WHERE p.paid_tx IS NULL ORDER BY p.id";
    if (ctl->json)
        return s_show (ctl, sql, 0, NULL, false);
    PGresult *res = s_query (ctl, sql, 0, NULL);
    if (!res)
        return CTL_EXIT_ERROR;
    int cols = PQnfields (res);
    for (int c = 0; c < cols; c++)
        ctl_csv_field (PQfname (res, c), c + 1 == cols);
    for (int r = 0; r < PQntuples (res); r++)
        for (int c = 0; c < cols; c++)
            ctl_csv_field (PQgetvalue (res, r, c), c + 1 == cols);
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
    { "empty_tx", "journal transactions without entries",
      "SELECT format ('transaction %s (%s) has no entries', j.id, j.kind) FROM journal_tx j"
      " WHERE NOT EXISTS (SELECT 1 FROM journal_entries e WHERE e.tx_id = j.id) ORDER BY j.id" },
    { "orphan_entries", "journal entries of unknown transactions or accounts",
      "SELECT format ('entry %s: transaction %s%s, account %s%s', e.id, e.tx_id,"
      "   CASE WHEN j.id IS NULL THEN ' (missing)' ELSE '' END, e.account_id,"
      "   CASE WHEN a.id IS NULL THEN ' (missing)' ELSE '' END)"
      "  FROM journal_entries e LEFT JOIN journal_tx j ON j.id = e.tx_id"
      "  LEFT JOIN accounts a ON a.id = e.account_id"
      " WHERE j.id IS NULL OR a.id IS NULL ORDER BY e.id" },
    { "balance_mismatch", "accounts whose stored balance is not the sum of their entries",
      "SELECT format ('account %s (%s %s): stored balance %s, entries sum to %s picodollars',"
      "   a.id, a.kind, a.name, a.balance_pico, COALESCE (s.total, 0))"
      "  FROM accounts a LEFT JOIN (SELECT account_id, SUM (amount_pico) AS total"
      "    FROM journal_entries GROUP BY account_id) s ON s.account_id = a.id"
      " WHERE a.balance_pico <> COALESCE (s.total, 0) ORDER BY a.id" },
    { "negative_balance", "peer, fee or payouts-pending accounts below zero",
      "SELECT format ('account %s (%s %s) has %s picodollars', a.id, a.kind, a.name, s.total)"
      "  FROM accounts a JOIN (SELECT account_id, SUM (amount_pico) AS total"
      "    FROM journal_entries GROUP BY account_id) s ON s.account_id = a.id"
      " WHERE a.kind IN ('peer', 'platform_fee', 'payouts_pending') AND s.total < 0"
      " ORDER BY a.id" },
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
      "  FROM tasks GROUP BY task_id HAVING COUNT (*) > 1"
      " UNION ALL "
      "SELECT format ('transaction %s carries %s task rows', tx_id, COUNT (*))"
      "  FROM tasks GROUP BY tx_id HAVING COUNT (*) > 1" },
    { "amounts", "task rows whose amounts disagree with their journal entries",
      "SELECT format ('task %s: gamer entry %s (want %s), peer entry %s (want %s),"
      " entries total %s in absolute value (want %s) over %s entries', t.task_id, g, "
      " -t.gamer_charge_pico, p, t.peer_earning_pico, n,"
      " t.gamer_charge_pico + t.peer_earning_pico + t.fee_pico + abs (t.treasury_pico), c)"
      "  FROM (SELECT t.task_id,"
      "          COALESCE (SUM (e.amount_pico) FILTER (WHERE e.account_id = t.gamer_account), 0) g,"
      "          COALESCE (SUM (e.amount_pico) FILTER (WHERE e.account_id = t.peer_account), 0) p,"
      "          COALESCE (SUM (abs (e.amount_pico)), 0) n, COUNT (e.id) c"
      "          FROM tasks t LEFT JOIN journal_entries e ON e.tx_id = t.tx_id"
      "         GROUP BY t.task_id) s JOIN tasks t ON t.task_id = s.task_id"
      " WHERE g <> -t.gamer_charge_pico OR p <> t.peer_earning_pico"
      "    OR n <> t.gamer_charge_pico + t.peer_earning_pico + t.fee_pico + abs (t.treasury_pico)"
      " ORDER BY t.task_id" },
    //  The rounding rule of common/p2c_money.h, in NUMERIC: half up. Each
    //  rates row is in force from its effective_at to the next one's.
    { "rates", "task amounts that are not the formula at the rates in force when settled",
      "WITH f AS (SELECT id, effective_at,"
      "             lead (effective_at) OVER (ORDER BY effective_at) AS until FROM rates)"
      "SELECT format ('task %s (billed %s us, rates %s, in force %s): charge %s want %s,"
      " earning %s want %s, fee %s want %s', t.task_id, t.billed_us, t.rate_id, f.id,"
      " t.gamer_charge_pico, w.charge, t.peer_earning_pico + t.subsidy_cut_pico, w.earn,"
      " t.fee_pico, w.fee)"
      "  FROM tasks t LEFT JOIN rates r ON r.id = t.rate_id"
      "  LEFT JOIN f ON t.settled_at >= f.effective_at"
      "             AND (f.until IS NULL OR t.settled_at < f.until)"
      "  CROSS JOIN LATERAL (SELECT c.charge, c.earn,"
      "    floor ((c.charge * r.fee_bp + 5000) / 10000) AS fee FROM (SELECT"
      "      floor ((t.billed_us::NUMERIC * r.gamer_pico_per_hour + 1800000000) / 3600000000)"
      "        AS charge,"
      "      floor ((t.billed_us::NUMERIC * r.peer_pico_per_hour + 1800000000) / 3600000000)"
      "        AS earn) c) w"
      " WHERE t.rate_id IS NOT NULL AND (r.id IS NULL OR f.id IS DISTINCT FROM r.id"
      "    OR t.gamer_charge_pico <> w.charge"
      "    OR t.peer_earning_pico + t.subsidy_cut_pico <> w.earn"
      "    OR t.fee_pico <> w.fee)"
      " ORDER BY t.task_id" },
    //  Issue 14: what the treasury granted per day is what its tasks got;
    //  an earning is cut only when the day's budget was spent
    { "subsidy", "subsidy days whose total disagrees with their tasks, or cuts under budget",
      "WITH t AS (SELECT (settled_at AT TIME ZONE 'UTC')::DATE AS day,"
      "             SUM (CASE WHEN rate_id IS NULL THEN peer_earning_pico"
      "                       ELSE GREATEST (0, -treasury_pico) END) AS granted,"
      "             SUM (subsidy_cut_pico) AS cut FROM tasks GROUP BY 1)"
      "SELECT format ('day %s: subsidy used %s, its tasks were granted %s', COALESCE (d.day, t.day),"
      "   COALESCE (d.used_pico, 0), COALESCE (t.granted, 0))"
      "  FROM subsidy_days d FULL JOIN t ON t.day = d.day"
      " WHERE COALESCE (d.used_pico, 0) <> COALESCE (t.granted, 0)"
      " UNION ALL "
      "SELECT format ('task %s: earning cut by %s under rates %s without a subsidy budget',"
      "   t.task_id, t.subsidy_cut_pico, t.rate_id)"
      "  FROM tasks t LEFT JOIN rates r ON r.id = t.rate_id"
      " WHERE t.subsidy_cut_pico > 0 AND t.rate_id IS NOT NULL AND r.subsidy_pico_per_day IS NULL" },
    //  Issue 15: a refund gives the gamer back what its task row charged
    //  (settled under any subsidy rule: the cut is the peer's, never the
    //  gamer's), takes back the fee, and the treasury bears the rest
    { "refunds", "refunds that disagree with their task row or their journal transaction",
      "SELECT format ('refund of task %s: amount %s, fee %s, gamer %s; the task charged %s,"
      " fee %s, gamer %s', r.task_id, r.amount_pico, r.fee_pico, r.gamer_account,"
      "   t.gamer_charge_pico, t.fee_pico, t.gamer_account)"
      "  FROM refunds r LEFT JOIN tasks t ON t.task_id = r.task_id"
      " WHERE t.task_id IS NULL OR r.amount_pico <> t.gamer_charge_pico"
      "    OR r.fee_pico <> t.fee_pico OR r.gamer_account <> t.gamer_account"
      " UNION ALL "
      "SELECT format ('refund of task %s: transaction %s gives the gamer %s (want %s), the fee"
      " account %s (want %s), the treasury %s (want %s)', r.task_id, r.tx_id, COALESCE (m.g, 0),"
      "   r.amount_pico, COALESCE (m.f, 0), -r.fee_pico, COALESCE (m.t, 0),"
      "   r.fee_pico - r.amount_pico)"
      "  FROM refunds r LEFT JOIN LATERAL (SELECT"
      "      SUM (e.amount_pico) FILTER (WHERE e.account_id = r.gamer_account) g,"
      "      SUM (e.amount_pico) FILTER (WHERE a.kind = 'platform_fee') f,"
      "      SUM (e.amount_pico) FILTER (WHERE a.kind = 'treasury') t,"
      "      COUNT (*) FILTER (WHERE e.account_id <> r.gamer_account"
      "                         AND a.kind NOT IN ('platform_fee', 'treasury')) o"
      "      FROM journal_entries e JOIN accounts a ON a.id = e.account_id"
      "     WHERE e.tx_id = r.tx_id) m ON true"
      " WHERE r.tx_id IS NOT NULL AND (COALESCE (m.g, 0) <> r.amount_pico"
      "    OR COALESCE (m.f, 0) <> -r.fee_pico OR COALESCE (m.t, 0) <> r.fee_pico - r.amount_pico"
      "    OR m.o > 0)" },
    { "payouts", "payouts whose journal transactions or pending total disagree",
      "SELECT format ('payout %s: request transaction %s moved %s from the peer, want %s',"
      "   p.id, p.request_tx, -COALESCE (m.s, 0), p.amount_pico)"
      "  FROM payouts p LEFT JOIN LATERAL (SELECT SUM (amount_pico) s FROM journal_entries"
      "    WHERE tx_id = p.request_tx AND account_id = p.account_id) m ON true"
      " WHERE COALESCE (m.s, 0) <> -p.amount_pico"
      " UNION ALL "
      "SELECT format ('payouts pending hold %s picodollars, unpaid payouts sum to %s', a.total,"
      "   u.total)"
      "  FROM (SELECT COALESCE (SUM (e.amount_pico), 0) AS total FROM journal_entries e"
      "    JOIN accounts x ON x.id = e.account_id WHERE x.kind = 'payouts_pending') a,"
      "       (SELECT COALESCE (SUM (amount_pico), 0) AS total FROM payouts"
      "    WHERE paid_tx IS NULL) u"
      " WHERE a.total <> u.total" },
    //  Issue 13: the operators' log is whole. Its hash is recomputed here,
    //  by our own expression rather than the database's admin_log_digest,
    //  which whoever could edit a row could also replace.
    { "admin_log", "admin log rows edited, deleted or out of the chain",
      "WITH l AS (SELECT l.*, lag (hash) OVER (ORDER BY seq) AS prior,"
      "                  row_number () OVER (ORDER BY seq) AS n FROM admin_log l)"
      "SELECT format ('admin log row %s (%s by %s): %s', seq, command, who,"
      "   CASE WHEN seq <> n THEN format ('is the row number %s: a row before it is missing', n)"
      "        WHEN prev_hash <> COALESCE (prior, repeat ('0', 64))"
      "        THEN 'does not follow the row before it (edited or deleted)'"
      "        ELSE 'its hash does not match its contents (edited)' END)"
      "  FROM l WHERE seq <> n OR prev_hash <> COALESCE (prior, repeat ('0', 64))"
      "    OR hash <> encode (sha256 (convert_to (prev_hash || jsonb_build_array (seq,"
      "         to_char (at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), who,"
      "         command, args, before, after, result, to_jsonb (tx_ids))::TEXT, 'UTF8')), 'hex')"
      " UNION ALL "
      "SELECT 'the admin log has lost its first row' WHERE NOT EXISTS"
      "  (SELECT 1 FROM admin_log WHERE seq = 1 AND command = 'admin-log-start')" },
    //  Credits and payouts are operators' commands only; the one exception
    //  is the starting credit open registration gives a new gamer, once
    { "admin_journal", "operators' journal transactions without their admin log row",
      "SELECT format ('journal transaction %s (%s%s) has no admin log row', j.id, j.kind,"
      "   COALESCE (', ' || j.memo, ''))"
      "  FROM journal_tx j"
      " WHERE j.kind IN ('credit', 'payout')"
      "   AND j.id > COALESCE ((SELECT (args->>'journal_tx_before')::bigint FROM admin_log"
      "                          WHERE seq = 1 AND command = 'admin-log-start'), 0)"
      "   AND NOT EXISTS (SELECT 1 FROM admin_log l WHERE l.tx_ids @> ARRAY [j.id])"
      "   AND NOT (j.kind = 'credit' AND j.memo = 'starting credit'"
      "            AND (SELECT COUNT (*) FROM journal_tx j2"
      "                   JOIN journal_entries e2 ON e2.tx_id = j2.id AND e2.amount_pico > 0"
      "                  WHERE j2.memo = 'starting credit' AND e2.account_id ="
      "                        (SELECT e.account_id FROM journal_entries e"
      "                          WHERE e.tx_id = j.id AND e.amount_pico > 0 LIMIT 1)) = 1)"
      " ORDER BY j.id" },
    { NULL, NULL, NULL }
};

static int
s_audit (ctl_t *ctl)
{
    PGresult *counts = s_query (ctl,
        "SELECT (SELECT COUNT (*) FROM journal_tx), (SELECT COUNT (*) FROM tasks)", 0, NULL);
    if (!counts)
        return CTL_EXIT_ERROR;
    long long txs = strtoll (PQgetvalue (counts, 0, 0), NULL, 10);
    long long tasks = strtoll (PQgetvalue (counts, 0, 1), NULL, 10);
    PQclear (counts);
    //  Every check reads whole tables: hash joins, whatever the statistics
    //  say (right after a burst of settlements they may be stale, and a
    //  nested loop over a million entries takes minutes)
    PGresult *set = PQexec (ctl->conn, "SET LOCAL enable_nestloop = off;"
                                       " SET LOCAL work_mem = '256MB'");
    PQclear (set);
    json_t *problems = json_array ();
    long long total = 0;
    for (const s_check_t *c = s_checks; c->name; c++) {
        int64_t start = zclock_mono ();
        PGresult *res = s_query (ctl, c->sql, 0, NULL);
        log_debug ("audit check=%s ms=%lld", c->name, (long long) (zclock_mono () - start));
        if (!res) {
            json_decref (problems);
            return CTL_EXIT_ERROR;
        }
        int rows = PQntuples (res);
        total += rows;
        if (rows > 0 && !ctl->json)
            printf ("audit: FAIL %s: %d %s\n", c->name, rows, c->what);
        for (int r = 0; r < rows && r < CTL_AUDIT_SHOW; r++) {
            if (ctl->json) {
                json_t *o = json_object ();
                json_object_set_new (o, "check", json_string (c->name));
                json_object_set_new (o, "detail", json_string (PQgetvalue (res, r, 0)));
                json_array_append_new (problems, o);
            }
            else
                printf ("  %s\n", PQgetvalue (res, r, 0));
        }
        if (rows > CTL_AUDIT_SHOW && !ctl->json)
            printf ("  ... and %d more\n", rows - CTL_AUDIT_SHOW);
        PQclear (res);
    }
    if (ctl->json) {
        json_t *root = json_object ();
        json_object_set_new (root, "ok", json_boolean (total == 0));
        json_object_set_new (root, "transactions", json_integer (txs));
        json_object_set_new (root, "tasks", json_integer (tasks));
        json_object_set_new (root, "violations", json_integer (total));
        json_object_set_new (root, "problems", problems);
        ctl_print_json (root);
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

//  ---------------------------------------------------------------- writes

static void
s_money (json_t *result, const char *key, char *buf, size_t size)
{
    p2c_money_format ((int64_t) json_integer_value (json_object_get (result, key)), buf,
                      (unsigned) size);
}

//  Sends the command; prints the result (JSON, or the human line made by
//  human()); returns the exit status
static int
s_write (ctl_t *ctl, const char *command, json_t *args,
         void (*human) (ctl_t *, json_t *))
{
    json_t *result = NULL;
    int rc = ctl_admin_call (ctl->broker, ctl->timeout_ms, command, args, &result);
    json_decref (args);
    if (rc == CTL_EXIT_OK) {
        if (ctl->json)
            ctl_print_json (result);
        else
            human (ctl, result);
    }
    json_decref (result);
    return rc;
}

static void
s_print_key (json_t *r)
{
    printf ("api_key     %s\n", json_string_value (json_object_get (r, "api_key")));
    printf ("(shown once: only its SHA-256 is stored; give it to the account's owner now)\n");
}

static void
s_human_created (ctl_t *ctl, json_t *r)
{
    (void) ctl;
    const char *owner = json_string_value (json_object_get (r, "owner"));
    printf ("account %lld created: %s %s%s%s\n",
            (long long) json_integer_value (json_object_get (r, "id")),
            json_string_value (json_object_get (r, "kind")),
            json_string_value (json_object_get (r, "name")), owner ? ", owner " : "",
            owner ? owner : "");
    s_print_key (r);
}

static void
s_human_linked (ctl_t *ctl, json_t *r)
{
    (void) ctl;
    const char *owner = json_string_value (json_object_get (r, "owner"));
    printf ("account %lld (%s %s) %s%s; from its next registration on\n",
            (long long) json_integer_value (json_object_get (r, "id")),
            json_string_value (json_object_get (r, "kind")),
            json_string_value (json_object_get (r, "name")),
            owner ? "owned by " : "has no owner", owner ? owner : "");
}

static void
s_human_flag (ctl_t *ctl, json_t *r)
{
    (void) ctl;
    printf ("account %lld %s\n", (long long) json_integer_value (json_object_get (r, "id")),
            json_is_true (json_object_get (r, "disabled")) ? "disabled" : "enabled");
}

static void
s_human_rotated (ctl_t *ctl, json_t *r)
{
    (void) ctl;
    printf ("account %lld has a new API key; the old one no longer works\n",
            (long long) json_integer_value (json_object_get (r, "id")));
    s_print_key (r);
}

static void
s_human_credit (ctl_t *ctl, json_t *r)
{
    (void) ctl;
    char amount [40], balance [40];
    s_money (r, "amount_pico", amount, sizeof amount);
    s_money (r, "balance_pico", balance, sizeof balance);
    printf ("credited %s USD to account %lld (transaction %lld); balance %s USD\n", amount,
            (long long) json_integer_value (json_object_get (r, "account_id")),
            (long long) json_integer_value (json_object_get (r, "tx_id")), balance);
}

static void
s_human_rates (ctl_t *ctl, json_t *r)
{
    (void) ctl;
    printf ("rates %lld in force from %s\n",
            (long long) json_integer_value (json_object_get (r, "id")),
            json_string_value (json_object_get (r, "effective_at")));
}

static void
s_human_payout (ctl_t *ctl, json_t *r)
{
    (void) ctl;
    char amount [40];
    s_money (r, "amount_pico", amount, sizeof amount);
    printf ("payout %lld requested: %s USD from account %lld now pending\n",
            (long long) json_integer_value (json_object_get (r, "payout_id")), amount,
            (long long) json_integer_value (json_object_get (r, "account_id")));
}

static void
s_human_paid (ctl_t *ctl, json_t *r)
{
    (void) ctl;
    char amount [40];
    s_money (r, "amount_pico", amount, sizeof amount);
    printf ("payout %lld marked paid: %s USD (transaction %lld)\n",
            (long long) json_integer_value (json_object_get (r, "payout_id")), amount,
            (long long) json_integer_value (json_object_get (r, "tx_id")));
}

static int
s_account_create (ctl_t *ctl)
{
    if (ctl->argc != 4) {
        fprintf (stderr, "p2c2r-ctl: account create gamer|peer|admin NAME\n");
        return CTL_EXIT_ERROR;
    }
    json_t *args = json_pack ("{s:s, s:s}", "kind", ctl->argv [2], "name", ctl->argv [3]);
    if (ctl->owner && *ctl->owner)
        json_object_set_new (args, "owner", json_string (ctl->owner));
    return s_write (ctl, "account-create", args, s_human_created);
}

//  account link ACCOUNT OWNER, account unlink ACCOUNT
static int
s_account_link (ctl_t *ctl)
{
    char id [32];
    bool link = !strcmp (ctl->argv [1], "link");
    if (ctl->argc != (link ? 4 : 3)) {
        fprintf (stderr, "p2c2r-ctl: account %s\n", link ? "link ACCOUNT OWNER"
                                                         : "unlink ACCOUNT");
        return CTL_EXIT_ERROR;
    }
    if (link && !*ctl->argv [3]) {
        fprintf (stderr, "p2c2r-ctl: OWNER is empty (account unlink ACCOUNT removes one)\n");
        return CTL_EXIT_ERROR;
    }
    if (!s_resolve (ctl, ctl->argv [2], "gamer peer admin", id, sizeof id))
        return CTL_EXIT_ERROR;
    json_t *args = json_pack ("{s:I, s:s}", "account_id", (json_int_t) strtoll (id, NULL, 10),
                              "owner", link ? ctl->argv [3] : "");
    return s_write (ctl, "account-link", args, s_human_linked);
}

//  account disable|enable|rotate-key ACCOUNT
static int
s_account_change (ctl_t *ctl)
{
    char id [32];
    if (ctl->argc != 3) {
        fprintf (stderr, "p2c2r-ctl: account %s ACCOUNT\n", ctl->argv [1]);
        return CTL_EXIT_ERROR;
    }
    if (!s_resolve (ctl, ctl->argv [2], "gamer peer admin", id, sizeof id))
        return CTL_EXIT_ERROR;
    json_t *args = json_pack ("{s:I}", "account_id", (json_int_t) strtoll (id, NULL, 10));
    const char *sub = ctl->argv [1];
    if (!strcmp (sub, "rotate-key"))
        return s_write (ctl, "rotate-key", args, s_human_rotated);
    return s_write (ctl, !strcmp (sub, "disable") ? "account-disable" : "account-enable", args,
                    s_human_flag);
}

static int
s_credit (ctl_t *ctl)
{
    char id [32];
    int64_t pico = 0;
    if (ctl->argc != 3) {
        fprintf (stderr, "p2c2r-ctl: credit GAMER AMOUNT (USD, e.g. 5 or 0.25)\n");
        return CTL_EXIT_ERROR;
    }
    if (ctl_parse_usd (ctl->argv [2], &pico) != 0 || pico <= 0) {
        fprintf (stderr, "p2c2r-ctl: AMOUNT is USD above 0 and at most 1000000, with at most"
                 " 12 decimals, not '%s'\n", ctl->argv [2]);
        return CTL_EXIT_ERROR;
    }
    if (!s_resolve (ctl, ctl->argv [1], "gamer", id, sizeof id))
        return CTL_EXIT_ERROR;
    json_t *args = json_pack ("{s:I, s:I}", "account_id", (json_int_t) strtoll (id, NULL, 10),
                              "amount_pico", (json_int_t) pico);
    if (ctl->memo && *ctl->memo)
        json_object_set_new (args, "memo", json_string (ctl->memo));
    return s_write (ctl, "credit", args, s_human_credit);
}

static int
s_rates_set (ctl_t *ctl)
{
    int64_t gamer = 0, peer = 0, subsidy = -1;
    const char *fee = s_arg (ctl, 4);
    if ((ctl->argc != 5 && ctl->argc != 6) || ctl_parse_usd (ctl->argv [2], &gamer) != 0
        || (ctl->argc == 6 && ctl_parse_usd (ctl->argv [5], &subsidy) != 0)
        || ctl_parse_usd (ctl->argv [3], &peer) != 0
        || strspn (fee, "0123456789") != strlen (fee) || strlen (fee) > 5 || !*fee
        || atoi (fee) > 10000) {
        fprintf (stderr, "p2c2r-ctl: rates set GAMER_USD_PER_HOUR PEER_USD_PER_HOUR FEE_BP"
                 " [SUBSIDY_USD_PER_DAY] [--from TIME]  (e.g. rates set 0.01 0.15 1000 50)\n");
        return CTL_EXIT_ERROR;
    }
    json_t *args = json_pack ("{s:I, s:I, s:i}", "gamer_pico_per_hour", (json_int_t) gamer,
                              "peer_pico_per_hour", (json_int_t) peer, "fee_bp", atoi (fee));
    if (ctl->from && *ctl->from)
        json_object_set_new (args, "effective_at", json_string (ctl->from));
    if (subsidy >= 0) {
        char text [32];
        snprintf (text, sizeof text, "%lld", (long long) subsidy);
        json_object_set_new (args, "subsidy_pico_per_day", json_string (text));
    }
    return s_write (ctl, "rates-set", args, s_human_rates);
}

static int
s_payout_request (ctl_t *ctl)
{
    char id [32];
    if (ctl->argc != 3) {
        fprintf (stderr, "p2c2r-ctl: payout request PEER\n");
        return CTL_EXIT_ERROR;
    }
    if (!s_resolve (ctl, ctl->argv [2], "peer", id, sizeof id))
        return CTL_EXIT_ERROR;
    json_t *args = json_pack ("{s:I}", "account_id", (json_int_t) strtoll (id, NULL, 10));
    return s_write (ctl, "payout-request", args, s_human_payout);
}

static int
s_payout_paid (ctl_t *ctl)
{
    const char *id = s_arg (ctl, 2);
    if (ctl->argc != 3 || strspn (id, "0123456789") != strlen (id) || !*id || strlen (id) > 18) {
        fprintf (stderr, "p2c2r-ctl: payout mark-paid PAYOUT_ID [--reference TEXT]\n");
        return CTL_EXIT_ERROR;
    }
    json_t *args = json_pack ("{s:I}", "payout_id", (json_int_t) strtoll (id, NULL, 10));
    if (ctl->reference && *ctl->reference)
        json_object_set_new (args, "reference", json_string (ctl->reference));
    return s_write (ctl, "payout-mark-paid", args, s_human_paid);
}

//  ---------------------------------------------------------------- dispatch

typedef struct {
    const char *name;           //  command
    const char *sub;            //  subcommand, or NULL
    int (*run) (ctl_t *);
    int min_args, max_args;     //  positional arguments counting the command words
} s_command_t;

static const s_command_t s_commands [] = {
    { "account", "list", s_account_list, 2, 2 },
    { "account", "show", s_account_show, 3, 3 },
    { "account", "create", s_account_create, 4, 4 },
    { "account", "link", s_account_link, 4, 4 },
    { "account", "unlink", s_account_link, 3, 3 },
    { "account", "disable", s_account_change, 3, 3 },
    { "account", "enable", s_account_change, 3, 3 },
    { "account", "rotate-key", s_account_change, 3, 3 },
    { "accounts", NULL, s_account_list, 1, 1 },
    { "balance", NULL, s_balance, 2, 2 },
    { "statement", NULL, s_statement, 2, 2 },
    { "top-peers", NULL, s_top_peers, 1, 2 },
    { "revenue", NULL, s_revenue, 1, 1 },
    { "totals", NULL, s_totals, 1, 1 },
    { "credit", NULL, s_credit, 3, 3 },
    { "rates", "list", s_rates_list, 2, 2 },
    { "rates", "set", s_rates_set, 5, 6 },
    { "payout", "request", s_payout_request, 3, 3 },
    { "payout", "list", s_payout_list, 2, 2 },
    { "payout", "mark-paid", s_payout_paid, 3, 3 },
    { "payout", "export", s_payout_export, 2, 2 },
    { "audit", NULL, s_audit, 1, 1 },
    { "log", NULL, ctl_log, 1, 1 },
    { NULL, NULL, NULL, 0, 0 }
};

int
ctl_run (ctl_t *ctl)
{
    const s_command_t *cmd = NULL;
    for (const s_command_t *c = s_commands; c->name && !cmd; c++)
        if (ctl->argc >= 1 && !strcmp (c->name, ctl->argv [0])
            && (!c->sub || (ctl->argc >= 2 && !strcmp (c->sub, ctl->argv [1]))))
            cmd = c;
    if (!cmd || ctl->argc < cmd->min_args || ctl->argc > cmd->max_args) {
        fprintf (stderr, "usage: p2c2r-ctl %s\n", ctl_usage);
        return CTL_EXIT_ERROR;
    }
    return cmd->run (ctl);
}
