/*  The ledger's settlement (see led_settle.h). */
#define P2C_LOG_COMPONENT "store"
#include "led_settle.h"
#include "led_store_int.h"
#include "led_admin.h"
#include "led_fixture.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_tasks.h"
#include "p2c_test.h"

#include <czmq.h>
#include <pthread.h>

//  The settlement function of migration 004, prepared once per connection
#define LED_SETTLE_STMT "led_settle"
#define LED_SETTLE_SQL \
    "SELECT r_what, r_n, r_a, r_b, r_c, r_d FROM ledger_settle ($1::bigint, $2::text[]," \
    " $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[]," \
    " $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint, $14::bigint)"
#define LED_SETTLE_PARAMS 14
//  Calls of the function per batch: a rates change makes one more
#define LED_SETTLE_TRIES 3
//  Longest error code a failure records (table failed_tasks)
#define LED_FAILED_CODE_MAX 32

void
led_settle_clear (led_settle_t *item)
{
    free (item->task_id);
    free (item->task_type);
    free (item->reply_to);
    free (item->reason);
    item->task_id = item->task_type = item->reply_to = item->reason = NULL;
}

int
led_settle_prepare (led_store_t *self)
{
    //  Prepared statements live as long as the connection: a new one (after
    //  a database restart) gets its own
    PGresult *res = PQprepare (self->conn, LED_SETTLE_STMT, LED_SETTLE_SQL, LED_SETTLE_PARAMS,
                               NULL);
    if (!res || PQresultStatus (res) != PGRES_COMMAND_OK) {
        led_store_log_error (self, "prepare settle", res);
        PQclear (res);
        return -1;
    }
    PQclear (res);
    self->settle_rate_id = 0;
    return 0;
}

bool
led_settle_valid_task_id (const char *task_id)
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
    if (!led_settle_valid_task_id (item->task_id)) {
        item->error = "bad task_id";
        return false;
    }
    if (item->reverse) {
        if (item->reason && strlen (item->reason) > 200)
            item->reason [200] = 0;
        return true;
    }
    if (item->failed) {
        if (item->reason && strlen (item->reason) > LED_FAILED_CODE_MAX)
            item->reason [LED_FAILED_CODE_MAX] = 0;
        if (item->gamer_account <= 0) {
            item->error = "bad account id";
            return false;
        }
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
        item->task_type = p2c_strdup (canonical);
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

//  The batch's eleven array parameters (amounts at the rates last seen in
//  force), one element per item of idx
static void
s_fill_arrays (led_store_t *self, led_settle_t *items, const size_t *idx, size_t n,
               led_array_t *a)
{
    for (int i = 0; i < 11; i++)
        led_array_start (&a [i]);
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
        led_array_text (&a [0], it->task_id);
        led_array_text (&a [1], it->task_type);
        led_array_int (&a [2], it->gamer_account);
        led_array_int (&a [3], it->peer_account);
        led_array_int (&a [4], (int64_t) it->billed_us);
        led_array_int (&a [5], (int64_t) it->compute_us);
        led_array_int (&a [6], (int64_t) it->observed_us);
        led_array_int (&a [7], it->split.gamer_charge);
        led_array_int (&a [8], it->split.peer_earning);
        led_array_int (&a [9], it->split.fee);
        led_array_int (&a [10], it->split.treasury);
    }
    for (int i = 0; i < 11; i++)
        led_array_end (&a [i]);
}

//  The outcome rows of a call that wrote: one per item ("new", "replay"
//  with the stored amounts, or the unknown "gamer"/"peer"), and one
//  "balance" per gamer whose balance changed
static void
s_take_outcomes (led_store_t *self, PGresult *res, led_settle_t *items, const size_t *idx,
                 size_t n)
{
    int rows = PQntuples (res);
    for (int r = 0; r < rows; r++) {
        const char *what = PQgetvalue (res, r, 0);
        if (!strcmp (what, "balance")) {
            led_store_bal_add (self, led_store_int64 (res, r, 2), led_store_int64 (res, r, 3),
                               led_store_int64 (res, r, 4) != 0);
            continue;
        }
        int64_t pos = led_store_int64 (res, r, 1);
        if (pos < 1 || (uint64_t) pos > n)
            continue;       //  cannot happen: positions in our arrays
        led_settle_t *it = &items [idx [pos - 1]];
        if (!strcmp (what, "new")) {
            //  the amounts written: the earning may be cut by the day's
            //  subsidy budget (migration 005)
            if (!PQgetisnull (res, r, 2)) {
                it->split.gamer_charge = led_store_int64 (res, r, 2);
                it->split.peer_earning = led_store_int64 (res, r, 3);
                it->split.fee = led_store_int64 (res, r, 4);
                it->split.treasury = led_store_int64 (res, r, 5);
            }
            it->status = LED_SETTLE_NEW;
        }
        else
        if (!strcmp (what, "replay")) {
            it->split.gamer_charge = led_store_int64 (res, r, 2);
            it->split.peer_earning = led_store_int64 (res, r, 3);
            it->split.fee = led_store_int64 (res, r, 4);
            it->split.treasury = led_store_int64 (res, r, 5);
            it->status = LED_SETTLE_REPLAY;
        }
        else {
            it->status = LED_SETTLE_REJECTED;
            it->error = !strcmp (what, "gamer") ? "unknown gamer account"
                                                : "unknown peer account";
        }
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
    led_array_t a [11];
    memset (a, 0, sizeof a);
    bool ok = false;
    for (int attempt = 0; attempt < LED_SETTLE_TRIES && !ok; attempt++) {
        s_fill_arrays (self, items, idx, n, a);
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
            led_store_log_error (self, "settle", res);
            PQclear (res);
            break;
        }
        if (PQntuples (res) == 1 && !strcmp (PQgetvalue (res, 0, 0), "rates")) {
            //  Not written: the rates in force changed (or we never knew them)
            if (PQgetisnull (res, 0, 2)) {
                log_warn ("no rates in force");
                PQclear (res);
                break;
            }
            self->settle_rate_id = led_store_int64 (res, 0, 2);
            self->settle_rates.gamer_per_hour = led_store_int64 (res, 0, 3);
            self->settle_rates.peer_per_hour = led_store_int64 (res, 0, 4);
            self->settle_rates.fee_bp = (int32_t) led_store_int64 (res, 0, 5);
            log_debug ("rates in force id=%lld", (long long) self->settle_rate_id);
            PQclear (res);
            if (attempt + 1 == LED_SETTLE_TRIES)
                log_warn ("rates in force kept changing, batch not settled");
            continue;
        }
        s_take_outcomes (self, res, items, idx, n);
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
            log_warn ("settled in the journal without a task row task=%s", it->task_id);
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

//  Reverses one task (see s_reverse_tx); false on a failed statement
static bool
s_reverse_one (led_store_t *self, led_settle_t *it)
{
    const char *p1 [] = { it->task_id };
    //  the task's row first, locked, so that two ledgers reversing the
    //  same task at once queue here and the second sees the first's row
    PGresult *res = led_store_exec (self, "reverse task",
                                    "SELECT peer_account, peer_earning_pico FROM tasks"
                                    " WHERE task_id = $1 FOR UPDATE", 1, p1, PGRES_TUPLES_OK);
    if (!res)
        return false;
    if (PQntuples (res) != 1) {
        PQclear (res);
        it->status = LED_SETTLE_REJECTED;
        it->error = "not settled";
        return true;
    }
    int64_t peer = led_store_int64 (res, 0, 0);
    int64_t earning = led_store_int64 (res, 0, 1);
    PQclear (res);
    res = led_store_exec (self, "reverse replay",
                          "SELECT amount_pico FROM reversals WHERE task_id = $1", 1, p1,
                          PGRES_TUPLES_OK);
    if (!res)
        return false;
    if (PQntuples (res) == 1) {
        it->split.peer_earning = led_store_int64 (res, 0, 0);
        it->status = LED_SETTLE_REPLAY;
        PQclear (res);
        return true;
    }
    PQclear (res);
    char ps [32];
    snprintf (ps, sizeof ps, "%lld", (long long) peer);
    const char *pb [] = { ps };
    res = led_store_exec (self, "reverse balance",
                          "SELECT balance_pico FROM accounts WHERE id = $1 FOR UPDATE", 1, pb,
                          PGRES_TUPLES_OK);
    if (!res)
        return false;
    int64_t balance = PQntuples (res) == 1 ? led_store_int64 (res, 0, 0) : 0;
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
        res = led_store_exec (self, "reverse tx",
                              "INSERT INTO journal_tx (kind, memo) VALUES ('adjust', $1)"
                              " RETURNING id", 1, pm, PGRES_TUPLES_OK);
        if (!res)
            return false;
        snprintf (tx, sizeof tx, "%s", PQgetvalue (res, 0, 0));
        PQclear (res);
        const char *pe [] = { tx, ps, as, ts };
        if (!led_store_command (self, "reverse entries",
                                "INSERT INTO journal_entries (tx_id, account_id, amount_pico)"
                                " VALUES ($1, $2, -$3::bigint), ($1, $4, $3::bigint)", 4, pe))
            return false;
    }
    const char *pr [] = { it->task_id, *tx ? tx : NULL, ps, as, es,
                          it->reason ? it->reason : "" };
    if (!led_store_command (self, "reverse row",
                            "INSERT INTO reversals (task_id, tx_id, peer_account, amount_pico,"
                            " earning_pico, reason) VALUES ($1, $2, $3, $4, $5, $6)", 6, pr))
        return false;
    it->split.peer_earning = amount;
    it->status = LED_SETTLE_NEW;
    log_info ("earning reversed task=%s account=%lld amount_pico=%lld"
              " earning_pico=%lld", it->task_id, (long long) peer, (long long) amount,
              (long long) earning);
    return true;
}

//  The reversals of a batch, in their own transaction, one by one (they are rare:
//  a released result that later lost its validation).
static bool
s_reverse_tx (led_store_t *self, led_settle_t *items, size_t *idx, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (!s_reverse_one (self, &items [idx [k]]))
            return false;
    return true;
}

//  What s_refund found
typedef enum {
    S_REFUND_UNSETTLED,         //  no settlement of the task (yet)
    S_REFUND_NEW,               //  refunded now
    S_REFUND_REPLAY,            //  refunded before
    S_REFUND_NOT_GAMERS         //  settled, but not paid by that gamer
} s_refund_t;

//  Refunds a settled task's charge to its gamer, once; gamer 0: whoever
//  paid (a check run, paid by the treasury, is never refunded). *amount_p
//  gets the amount refunded (now or before). False on a failed statement.
static bool
s_refund (led_store_t *self, const char *task_id, int64_t gamer, const char *code,
          s_refund_t *outcome, int64_t *amount_p)
{
    *outcome = S_REFUND_UNSETTLED;
    *amount_p = 0;
    const char *p1 [] = { task_id };
    //  the task's row locked, so that two ledgers refunding the same task
    //  queue here and the second sees the first's refund
    PGresult *res = led_store_exec (self, "refund task",
                                    "SELECT gamer_account, gamer_charge_pico, fee_pico FROM tasks"
                                    " WHERE task_id = $1 FOR UPDATE", 1, p1, PGRES_TUPLES_OK);
    if (!res)
        return false;
    if (PQntuples (res) != 1) {
        PQclear (res);
        return true;
    }
    int64_t payer = led_store_int64 (res, 0, 0);
    int64_t charge = led_store_int64 (res, 0, 1);
    int64_t fee = led_store_int64 (res, 0, 2);
    PQclear (res);
    if ((gamer && payer != gamer) || payer == self->treasury_account) {
        *outcome = S_REFUND_NOT_GAMERS;
        return true;
    }
    res = led_store_exec (self, "refund replay",
                          "SELECT amount_pico FROM refunds WHERE task_id = $1", 1, p1,
                          PGRES_TUPLES_OK);
    if (!res)
        return false;
    if (PQntuples (res) == 1) {
        *amount_p = led_store_int64 (res, 0, 0);
        *outcome = S_REFUND_REPLAY;
        PQclear (res);
        return true;
    }
    PQclear (res);
    char reason [80];
    snprintf (reason, sizeof reason, "reported failed: %s", code && *code ? code : "error");
    char ps [32], cs [32], fs [32], ts [32], fa [32], tb [32], tx [32] = "";
    snprintf (ps, sizeof ps, "%lld", (long long) payer);
    snprintf (cs, sizeof cs, "%lld", (long long) charge);
    snprintf (fs, sizeof fs, "%lld", (long long) fee);
    snprintf (fa, sizeof fa, "%lld", (long long) self->fee_account);
    snprintf (ts, sizeof ts, "%lld", (long long) self->treasury_account);
    //  the treasury gives back the rest of the charge (charge - fee): with
    //  the peer's earning kept, the treasury has then paid that earning in
    //  full, as for a check run
    snprintf (tb, sizeof tb, "%lld", (long long) (charge - fee));
    if (charge > 0) {
        char memo [200];
        snprintf (memo, sizeof memo, "refund task %s: %s", task_id, reason);
        const char *pm [] = { memo };
        res = led_store_exec (self, "refund tx",
                              "INSERT INTO journal_tx (kind, memo) VALUES ('adjust', $1)"
                              " RETURNING id", 1, pm, PGRES_TUPLES_OK);
        if (!res)
            return false;
        snprintf (tx, sizeof tx, "%s", PQgetvalue (res, 0, 0));
        PQclear (res);
        //  no entry of zero: the fee or the treasury's part may be nothing
        const char *pe [] = { tx, ps, cs, fa, fs, ts, tb };
        if (!led_store_command (self, "refund entries",
                                "INSERT INTO journal_entries (tx_id, account_id, amount_pico)"
                                " SELECT $1, a, m FROM (VALUES ($2::bigint, $3::bigint),"
                                " ($4::bigint, -$5::bigint), ($6::bigint, -$7::bigint)) e (a, m)"
                                " WHERE m <> 0", 7, pe))
            return false;
    }
    const char *pr [] = { task_id, *tx ? tx : NULL, ps, cs, fs, reason };
    if (!led_store_command (self, "refund row",
                            "INSERT INTO refunds (task_id, tx_id, gamer_account, amount_pico,"
                            " fee_pico, reason) VALUES ($1, $2, $3, $4, $5, $6)", 6, pr))
        return false;
    if (charge > 0 && !led_store_bal_read (self, payer))
        return false;
    *amount_p = charge;
    *outcome = S_REFUND_NEW;
    log_info ("charge refunded task=%s account=%lld amount_pico=%lld reason=\"%s\"",
              task_id, (long long) payer, (long long) charge, reason);
    return true;
}

//  Records one failure reported to a gamer and refunds the task when it is
//  settled; false on a failed statement
static bool
s_failed_one (led_store_t *self, led_settle_t *it)
{
    char gs [32];
    snprintf (gs, sizeof gs, "%lld", (long long) it->gamer_account);
    const char *code = it->reason ? it->reason : "";
    const char *p [] = { it->task_id, gs, code };
    //  an unknown gamer inserts nothing (and breaks no foreign key)
    PGresult *res = led_store_exec (self, "failed row",
                                    "INSERT INTO failed_tasks (task_id, gamer_account, code)"
                                    " SELECT $1, id, $3 FROM accounts"
                                    " WHERE id = $2::bigint AND kind = 'gamer'"
                                    " ON CONFLICT (task_id) DO NOTHING RETURNING 1", 3, p,
                                    PGRES_TUPLES_OK);
    if (!res)
        return false;
    bool fresh = PQntuples (res) == 1;
    PQclear (res);
    if (!fresh) {
        res = led_store_exec (self, "failed replay",
                              "SELECT gamer_account FROM failed_tasks WHERE task_id = $1", 1, p,
                              PGRES_TUPLES_OK);
        if (!res)
            return false;
        bool known = PQntuples (res) == 1;
        PQclear (res);
        if (!known) {
            it->status = LED_SETTLE_REJECTED;
            it->error = "unknown gamer account";
            return true;
        }
    }
    s_refund_t outcome;
    int64_t amount;
    if (!s_refund (self, it->task_id, it->gamer_account, code, &outcome, &amount))
        return false;
    if (outcome == S_REFUND_NOT_GAMERS) {
        it->status = LED_SETTLE_REJECTED;
        it->error = "the task is not that gamer's";
        return true;
    }
    it->split.gamer_charge = amount;
    it->status = fresh || outcome == S_REFUND_NEW ? LED_SETTLE_NEW : LED_SETTLE_REPLAY;
    if (fresh)
        log_info ("failure recorded task=%s account=%lld code=%s refunded_pico=%lld",
                  it->task_id, (long long) it->gamer_account, code, (long long) amount);
    return true;
}

//  The failures of a batch in a transaction of their own. The share lock
//  on tasks waits for settlements in progress (another ledger's too) and
//  holds new ones back until we commit: a settlement we cannot see yet
//  commits after us and its batch's look for failures (s_refund_settled)
//  then sees ours.
static bool
s_failed_tx (led_store_t *self, led_settle_t *items, size_t *idx, size_t n)
{
    if (!led_store_command (self, "failed begin", "BEGIN", 0, NULL)
        || !led_store_command (self, "failed lock", "LOCK TABLE tasks IN SHARE MODE", 0, NULL))
        return false;
    for (size_t k = 0; k < n; k++)
        if (!s_failed_one (self, &items [idx [k]]))
            return false;
    return led_store_command (self, "failed commit", "COMMIT", 0, NULL);
}

//  After settlements committed: those of tasks already reported failed to
//  their gamers are refunded. False on a failed statement (the caller then
//  acks none of them, so the scheduler asks again and we look again).
static bool
s_refund_settled (led_store_t *self, led_settle_t *items, const size_t *idx, size_t n)
{
    led_array_t ids = { NULL, 0, 0 };
    led_array_start (&ids);
    size_t want = 0;
    for (size_t k = 0; k < n; k++) {
        led_settle_t *it = &items [idx [k]];
        if ((it->status == LED_SETTLE_NEW || it->status == LED_SETTLE_REPLAY)
            && it->gamer_account != 0) {
            led_array_text (&ids, it->task_id);
            want++;
        }
    }
    led_array_end (&ids);
    if (want == 0) {
        free (ids.data);
        return true;
    }
    const char *p [] = { ids.data };
    PGresult *res = led_store_exec (self, "failed look",
                                    "SELECT f.task_id, f.code FROM failed_tasks f"
                                    " WHERE f.task_id = ANY ($1::text[]) AND NOT EXISTS"
                                    " (SELECT 1 FROM refunds r WHERE r.task_id = f.task_id)",
                                    1, p, PGRES_TUPLES_OK);
    free (ids.data);
    if (!res)
        return false;
    bool ok = true;
    if (PQntuples (res) > 0) {
        ok = led_store_command (self, "refund begin", "BEGIN", 0, NULL);
        for (int r = 0; ok && r < PQntuples (res); r++) {
            s_refund_t outcome;
            int64_t amount;
            ok = s_refund (self, PQgetvalue (res, r, 0), 0, PQgetvalue (res, r, 1), &outcome,
                           &amount);
        }
        ok = ok && led_store_command (self, "refund commit", "COMMIT", 0, NULL);
    }
    PQclear (res);
    return ok;
}

int
led_settle_batch (led_store_t *self, led_settle_t *items, size_t count)
{
    s_reset (items, count);
    led_store_bal_reset (self);
    if (!self->conn)
        return -1;
    if (count == 0)
        return 0;
    size_t *idx = (size_t *) p2c_calloc (count, sizeof (size_t));
    size_t *first = (size_t *) p2c_calloc (count, sizeof (size_t));
    zhashx_t *seen = zhashx_new ();
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        first [i] = i;
        if (!s_check_item (&items [i]))
            continue;
        //  A task twice in one batch is settled once; both get the answer
        //  (a reversal's key cannot be a task id: those are printable)
        char key [140];
        //  (neither can a failure's)
        snprintf (key, sizeof key, "%s%s",
                  items [i].reverse ? "\t" : items [i].failed ? "\n" : "", items [i].task_id);
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
    size_t *ridx = (size_t *) p2c_calloc (n ? n : 1, sizeof (size_t));
    size_t *fidx = (size_t *) p2c_calloc (n ? n : 1, sizeof (size_t));
    size_t ns = 0, nr = 0, nf = 0;
    for (size_t k = 0; k < n; k++) {
        if (items [idx [k]].reverse)
            ridx [nr++] = idx [k];
        else
        if (items [idx [k]].failed)
            fidx [nf++] = idx [k];
        else
            idx [ns++] = idx [k];
    }
    //  Settlements in one statement (its own transaction); then reversals,
    //  rare, in a transaction of their own. When the reversals fail after
    //  the settlements committed, the settlements keep their outcome and
    //  the reversals stay PENDING (no ack: the scheduler asks again).
    bool ok = ns == 0 || s_settle_tx (self, items, idx, ns);
    if (!ok)
        led_store_abort (self);
    if (ok && ns > 0 && !s_refund_settled (self, items, idx, ns)) {
        //  settled but perhaps owed a refund: no ack, the scheduler asks
        //  again and the replay looks again
        led_store_abort (self);
        s_reset_some (items, idx, ns);
        if (nr == 0 && nf == 0)
            ok = false;
    }
    if (ok && nr > 0) {
        bool rok = led_store_command (self, "reverse begin", "BEGIN", 0, NULL)
            && s_reverse_tx (self, items, ridx, nr)
            && led_store_command (self, "reverse commit", "COMMIT", 0, NULL);
        if (!rok) {
            led_store_abort (self);
            s_reset_some (items, ridx, nr);
            if (ns == 0)
                ok = false;
        }
    }
    if (ok && nf > 0) {
        if (!s_failed_tx (self, items, fidx, nf)) {
            led_store_abort (self);
            s_reset_some (items, fidx, nf);
            if (ns == 0 && nr == 0)
                ok = false;
        }
    }
    free (ridx);
    free (fidx);
    if (!ok) {
        s_reset (items, count);
        led_store_bal_reset (self);
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

//  --------------------------------------------------------------------------
//  Self-test: amounts, idempotence, refusals one by one, the money of
//  validation (check runs, reversals), rates that change, and two stores
//  racing on the same tasks. Needs P2C2R_TEST_DB (led_fixture).

typedef struct {
    led_store_t *store;
    led_settle_t *items;
    size_t count;
    int rc;
} s_race_t;

static void *
s_race_thread (void *arg)
{
    s_race_t *r = (s_race_t *) arg;
    r->rc = led_settle_batch (r->store, r->items, r->count);
    return NULL;
}

//  What the steps of the self-test share
typedef struct {
    led_fixture_t *fx;
    led_store_t *store, *store2;    //  two ledgers on one schema
    int64_t gamer, peer;            //  accounts of player-7
    p2c_rates_t rates;              //  the seeded ones
} s_test_t;

//  A batch: every amount is p2c_money_split's, every transaction sums to zero
static void
s_test_batch (s_test_t *t)
{
    led_fixture_t *fx = t->fx;
    led_store_t *store = t->store;
    led_store_t *store2 = t->store2;
    int64_t gamer = t->gamer;
    int64_t peer = t->peer;
    p2c_rates_t rates = t->rates;
    enum { N = 50 };
    led_settle_t batch [N];
    int64_t charge_sum = 0, earn_sum = 0;
    bool amounts_ok = true;
    for (int i = 0; i < N; i++) {
        char id [32];
        snprintf (id, sizeof id, "t-%d", i);
        led_fixture_fill (&batch [i], id, i % 2 ? "encryption" : "hash", gamer, peer,
                          (uint64_t) i * 12345 + 1);
    }
    P2C_CHECK (led_settle_batch (store, batch, N) == 0);
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
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM tasks", NULL, "50"));
    P2C_CHECK (led_fixture_is (fx, "SELECT SUM(cost_usd) FROM tasks", NULL, want_txt));
    P2C_CHECK (led_fixture_is (fx, "SELECT total_earned_usd FROM peers WHERE peer_id = $1",
                               "player-7", earn_txt));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM (SELECT tx_id FROM journal_entries"
                               " GROUP BY tx_id HAVING SUM(amount_pico) <> 0) u", NULL, "0"));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM journal_entries", NULL, "200"));
    P2C_CHECK (led_fixture_is (fx, "SELECT task_type FROM tasks WHERE task_id = 't-0'", NULL,
                               "encryption"));          //  the alias is stored canonical
    //  The gamer's balance is minus what it was charged
    char charge_num [32];
    snprintf (charge_num, sizeof charge_num, "%lld", (long long) -charge_sum);
    P2C_CHECK (led_fixture_is (fx, "SELECT SUM(amount_pico) FROM journal_entries WHERE account_id"
                               " = (SELECT id FROM accounts WHERE kind = 'gamer' AND name = $1)",
                               "player-7", charge_num));

    //  Replaying the batch (through the other store) changes nothing and
    //  answers the stored amounts
    led_settle_t replay [N];
    for (int i = 0; i < N; i++) {
        led_fixture_fill (&replay [i], batch [i].task_id, "encryption", gamer, peer, 999999);
    }
    P2C_CHECK (led_settle_batch (store2, replay, N) == 0);
    bool replay_ok = true;
    for (int i = 0; i < N; i++)
        if (replay [i].status != LED_SETTLE_REPLAY
            || memcmp (&replay [i].split, &batch [i].split, sizeof batch [i].split))
            replay_ok = false;
    P2C_CHECK (replay_ok);
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM journal_tx", NULL, "50"));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM journal_entries", NULL, "200"));
    P2C_CHECK (led_fixture_is (fx, "SELECT SUM(cost_usd) FROM tasks", NULL, want_txt));
    for (int i = 0; i < N; i++) {
        led_settle_clear (&batch [i]);
        led_settle_clear (&replay [i]);
    }
}

//  Bad requests are refused one by one; the good one in the same batch
//  settles, and a task twice in a batch is settled once
static int64_t
s_test_mixed (s_test_t *t)
{
    led_fixture_t *fx = t->fx;
    led_store_t *store = t->store;
    int64_t gamer = t->gamer;
    int64_t peer = t->peer;
    led_settle_t mixed [7];
    led_fixture_fill (&mixed [0], "m-ok", "compression", gamer, peer, 1000);
    led_fixture_fill (&mixed [1], "m-type", "no_such_type", gamer, peer, 1000);
    led_fixture_fill (&mixed [2], "m-kind", "compression", peer, gamer, 1000);
    led_fixture_fill (&mixed [3], "m-acct", "compression", gamer, 987654321, 1000);
    led_fixture_fill (&mixed [4], "bad id", "compression", gamer, peer, 1000);
    led_fixture_fill (&mixed [5], "m-ok", "compression", gamer, peer, 1000);
    led_fixture_fill (&mixed [6], "m-ceiling", "compression", gamer, peer, 1000000000000ULL);
    P2C_CHECK (led_settle_batch (store, mixed, 7) == 0);
    P2C_CHECK (mixed [0].status == LED_SETTLE_NEW);
    P2C_CHECK (mixed [1].status == LED_SETTLE_REJECTED && mixed [1].error);
    P2C_CHECK (mixed [2].status == LED_SETTLE_REJECTED);
    P2C_CHECK (mixed [3].status == LED_SETTLE_REJECTED);
    P2C_CHECK (mixed [4].status == LED_SETTLE_REJECTED);
    P2C_CHECK (mixed [5].status == LED_SETTLE_NEW
               && mixed [5].split.gamer_charge == mixed [0].split.gamer_charge);
    P2C_CHECK (mixed [6].status == LED_SETTLE_REJECTED);
    int64_t mixed_earning = mixed [0].split.peer_earning;
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM tasks WHERE task_id LIKE 'm-%'", NULL,
                               "1"));
    for (int i = 0; i < 7; i++)
        led_settle_clear (&mixed [i]);
    return mixed_earning;
}

//  Money of validation: the treasury pays a check run (gamer 0), no fee,
//  no rates row; a settled task's earning is reversed to the treasury
//  once; a reversal of an unsettled task is refused; a settlement and
//  its reversal in one batch both go through, settlement first
static void
s_test_validation (s_test_t *t, int64_t mixed_earning)
{
    led_fixture_t *fx = t->fx;
    led_store_t *store = t->store;
    led_store_t *store2 = t->store2;
    int64_t gamer = t->gamer;
    int64_t peer = t->peer;
    char tre [32];
    snprintf (tre, sizeof tre, "%lld", (long long) store->treasury_account);
    char *tre_before = led_fixture_scalar (fx, "SELECT balance_pico FROM accounts WHERE id = $1",
                                           tre);
    char *peer_before = led_fixture_scalar (fx, "SELECT balance_pico FROM accounts WHERE id ="
                                            " (SELECT peer_account FROM tasks"
                                            " WHERE task_id = $1)", "m-ok");
    led_settle_t vr [6];
    led_fixture_fill (&vr [0], "m-ok#c1", "compression", 0, peer, 2000000);
    led_fixture_fill (&vr [1], "m-ok", "", 0, 0, 0);
    vr [1].reverse = true;
    vr [1].reason = p2c_strdup ("lost validation");
    led_fixture_fill (&vr [2], "never-settled", "", 0, 0, 0);
    vr [2].reverse = true;
    led_fixture_fill (&vr [3], "rv-2", "compression", gamer, peer, 3000);
    led_fixture_fill (&vr [4], "rv-2", "", 0, 0, 0);
    vr [4].reverse = true;
    led_fixture_fill (&vr [5], "m-ok", "", 0, 0, 0);
    vr [5].reverse = true;
    P2C_CHECK (led_settle_batch (store, vr, 6) == 0);
    P2C_CHECK (vr [0].status == LED_SETTLE_NEW && vr [0].split.fee == 0
               && vr [0].split.peer_earning > 0
               && vr [0].split.gamer_charge == vr [0].split.peer_earning);
    P2C_CHECK (led_fixture_is (fx, "SELECT gamer_account = (SELECT id FROM accounts WHERE kind ="
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
    P2C_CHECK (led_fixture_is (fx, "SELECT balance_pico FROM accounts WHERE id ="
                               " (SELECT peer_account FROM tasks WHERE task_id = $1)", "m-ok",
                               want));
    //  the treasury paid the check run and got both earnings back
    snprintf (want, sizeof want, "%lld", strtoll (tre_before, NULL, 10)
              - vr [0].split.peer_earning + mixed_earning + vr [3].split.treasury
              + vr [3].split.peer_earning);
    P2C_CHECK (led_fixture_is (fx, "SELECT balance_pico FROM accounts WHERE id = $1", tre, want));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM reversals", NULL, "2"));
    free (tre_before);
    free (peer_before);
    for (int i = 0; i < 6; i++)
        led_settle_clear (&vr [i]);
    //  a replay answers the stored amount and writes nothing
    led_settle_t again;
    led_fixture_fill (&again, "m-ok", "", 0, 0, 0);
    again.reverse = true;
    P2C_CHECK (led_settle_batch (store2, &again, 1) == 0);
    P2C_CHECK (again.status == LED_SETTLE_REPLAY && again.split.peer_earning == mixed_earning);
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM journal_tx WHERE kind = 'adjust'"
                               " AND memo LIKE 'reverse task %'", NULL, "2"));
    led_settle_clear (&again);
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM (SELECT tx_id FROM journal_entries"
                               " GROUP BY tx_id HAVING SUM(amount_pico) <> 0) u", NULL, "0"));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM accounts a WHERE balance_pico <>"
                               " (SELECT COALESCE (SUM (amount_pico), 0) FROM journal_entries e"
                               " WHERE e.account_id = a.id)", NULL, "0"));
}

//  A failure reported to the gamer: a task settled before it is refunded
//  once (the gamer gets its charge back, the fee account its fee, the
//  treasury the rest; the peer keeps its earning); a task settled after it
//  (the other store, the race of a late result) is refunded by the batch
//  that settles it; a failure of another gamer's task refunds nothing
static void
s_test_failed (s_test_t *t)
{
    led_fixture_t *fx = t->fx;
    led_store_t *store = t->store;
    led_store_t *store2 = t->store2;
    int64_t gamer = t->gamer;
    int64_t peer = t->peer;
    char gs [32], ps [32];
    snprintf (gs, sizeof gs, "%lld", (long long) gamer);
    snprintf (ps, sizeof ps, "%lld", (long long) peer);
    char *gamer_before = led_fixture_scalar (fx, "SELECT balance_pico FROM accounts"
                                             " WHERE id = $1::bigint", gs);
    char *peer_before = led_fixture_scalar (fx, "SELECT balance_pico FROM accounts"
                                            " WHERE id = $1::bigint", ps);
    led_settle_t a [4];
    led_fixture_fill (&a [0], "f-before", "encryption", gamer, peer, 4000000);
    led_fixture_fill (&a [1], "f-free", "encryption", gamer, peer, 0);
    P2C_CHECK (led_settle_batch (store, a, 2) == 0 && a [0].status == LED_SETTLE_NEW);
    int64_t charge = a [0].split.gamer_charge, earning = a [0].split.peer_earning;
    P2C_CHECK (charge > 0 && a [0].split.fee > 0);
    led_settle_clear (&a [0]);
    led_settle_clear (&a [1]);
    //  the failures: one settled, one free, one not settled yet, one of
    //  another gamer, one twice in the batch
    const char *ids [] = { "f-before", "f-free", "f-after", "f-before" };
    led_settle_t f [5];
    for (int i = 0; i < 4; i++) {
        led_fixture_fill (&f [i], ids [i], "", gamer, 0, 0);
        f [i].failed = true;
        f [i].reason = p2c_strdup ("timeout");
    }
    led_fixture_fill (&f [4], "f-before", "", peer, 0, 0);
    f [4].failed = true;
    P2C_CHECK (led_settle_batch (store, f, 4) == 0);
    P2C_CHECK (f [0].status == LED_SETTLE_NEW && f [0].split.gamer_charge == charge);
    P2C_CHECK (f [1].status == LED_SETTLE_NEW && f [1].split.gamer_charge == 0);
    P2C_CHECK (f [2].status == LED_SETTLE_NEW && f [2].split.gamer_charge == 0);
    P2C_CHECK (f [3].status == LED_SETTLE_NEW && f [3].split.gamer_charge == charge);
    //  the gamer's balance after the refund is what the scheduler hears
    size_t nb = 0;
    const led_balance_t *bal = led_store_balances (store, &nb);
    P2C_CHECK (nb == 1 && bal [0].account_id == gamer);
    P2C_CHECK (led_settle_batch (store, &f [4], 1) == 0 && f [4].status == LED_SETTLE_REJECTED);
    //  the late settlement of f-after, through the other store: refunded
    led_fixture_fill (&a [2], "f-after", "encryption", gamer, peer, 4000000);
    P2C_CHECK (led_settle_batch (store2, &a [2], 1) == 0 && a [2].status == LED_SETTLE_NEW);
    //  replays change nothing
    led_fixture_fill (&a [3], "f-after", "encryption", gamer, peer, 4000000);
    P2C_CHECK (led_settle_batch (store, &a [3], 1) == 0 && a [3].status == LED_SETTLE_REPLAY);
    P2C_CHECK (led_settle_batch (store2, &f [0], 1) == 0 && f [0].status == LED_SETTLE_REPLAY
               && f [0].split.gamer_charge == charge);
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM failed_tasks WHERE task_id LIKE 'f-%'",
                               NULL, "3"));
    char refunded [64];
    snprintf (refunded, sizeof refunded, "3 %lld", (long long) (2 * charge));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) || ' ' || SUM (amount_pico) FROM refunds",
                               NULL, refunded));
    //  the gamer paid nothing in the end; the peer kept both earnings
    P2C_CHECK (led_fixture_is (fx, "SELECT balance_pico FROM accounts WHERE id = $1::bigint", gs,
                               gamer_before));
    char want [64];
    snprintf (want, sizeof want, "%lld", strtoll (peer_before, NULL, 10) + 2 * earning);
    P2C_CHECK (led_fixture_is (fx, "SELECT balance_pico FROM accounts WHERE id = $1::bigint", ps,
                               want));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM (SELECT tx_id FROM journal_entries"
                               " GROUP BY tx_id HAVING SUM(amount_pico) <> 0) u", NULL, "0"));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM accounts a WHERE balance_pico <>"
                               " (SELECT COALESCE (SUM (amount_pico), 0) FROM journal_entries e"
                               " WHERE e.account_id = a.id)", NULL, "0"));
    free (gamer_before);
    free (peer_before);
    for (int i = 0; i < 5; i++)
        led_settle_clear (&f [i]);
    led_settle_clear (&a [2]);
    led_settle_clear (&a [3]);
}

//  Two stores settling the same tasks at once: each task once
static void
s_test_race (s_test_t *t)
{
    led_fixture_t *fx = t->fx;
    led_store_t *store = t->store;
    led_store_t *store2 = t->store2;
    int64_t gamer = t->gamer;
    int64_t peer = t->peer;
    enum { R = 300 };
    bool race_ok = true;
    for (int round = 0; round < 3; round++) {
        static led_settle_t ra [R], rb [R];
        for (int i = 0; i < R; i++) {
            char id [48];
            snprintf (id, sizeof id, "race-%d-%d", round, i);
            led_fixture_fill (&ra [i], id, "physics_cloth", gamer, peer, (uint64_t) i + 1);
            //  the other store sees them in the opposite order
            snprintf (id, sizeof id, "race-%d-%d", round, R - 1 - i);
            led_fixture_fill (&rb [i], id, "physics_cloth", gamer, peer, (uint64_t) (R - i));
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
            fprintf (stderr, "led_settle_test: race round %d rc=%d/%d new=%d\n", round, a.rc,
                     b.rc, fresh);
            race_ok = false;
        }
        for (int i = 0; i < R; i++) {
            led_settle_clear (&ra [i]);
            led_settle_clear (&rb [i]);
        }
    }
    P2C_CHECK (race_ok);
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM tasks WHERE task_id LIKE 'race-%'",
                               NULL, "900"));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM journal_tx WHERE task_id LIKE 'race-%'",
                               NULL, "900"));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM (SELECT tx_id FROM journal_entries"
                               " GROUP BY tx_id HAVING SUM(amount_pico) <> 0) u", NULL, "0"));
}

//  Settlement amounts against the formula for many random billed
//  times (the whole range of a type, small ones where rounding bites),
//  at the seeded rates, then at new rates set now; the old ones stay
static void
s_test_formula (s_test_t *t)
{
    led_fixture_t *fx = t->fx;
    led_store_t *store = t->store;
    int64_t gamer = t->gamer;
    int64_t peer = t->peer;
    p2c_rates_t rates = t->rates;
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
            led_fixture_fill (&rnd [i], id, "encryption", gamer, peer, billed);
        }
        P2C_CHECK (led_settle_batch (store, rnd, RND) == 0);
        for (int i = 0; i < RND; i++) {
            p2c_split_t want;
            p2c_money_split (&now_rates, rnd [i].billed_us, &want);
            if (rnd [i].status != LED_SETTLE_NEW || memcmp (&want, &rnd [i].split, sizeof want)
                || want.gamer_charge != want.fee + want.peer_earning + want.treasury) {
                formula_ok = false;
                fprintf (stderr, "led_settle_test: billed %llu: charge %lld want %lld\n",
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
        char *stored = led_fixture_scalar (fx, "SELECT balance_pico FROM accounts"
                                           " WHERE id = $1::bigint", gid);
        P2C_CHECK (nb == 1 && bal [0].account_id == gamer
                   && bal [0].balance_pico == strtoll (stored, NULL, 10));
        free (stored);
        if (round == 0) {
            spent_before = led_fixture_scalar (fx, "SELECT SUM (cost_usd) FROM tasks"
                                               " WHERE task_id LIKE 'rnd-0-%'", NULL);
            char *result = NULL, *msg = NULL;
            const char *code = NULL;
            P2C_CHECK (led_admin_run (store, "test-operator", "rates-set", "{\"gamer_pico_per_hour\":"
                                      "33333333333,\"peer_pico_per_hour\":77777777777,"
                                      "\"fee_bp\":1234}", &result, &code, &msg)
                       == LED_ADMIN_OK);
            free (result);
            free (msg);
            now_rates.gamer_per_hour = 33333333333LL;
            now_rates.peer_per_hour = 77777777777LL;
            now_rates.fee_bp = 1234;
        }
    }
    P2C_CHECK (formula_ok);
    P2C_CHECK (led_fixture_is (fx, "SELECT SUM (cost_usd) FROM tasks WHERE task_id LIKE 'rnd-0-%'",
                               NULL, spent_before));
    P2C_CHECK (led_fixture_is (fx, "SELECT count (DISTINCT rate_id) FROM tasks WHERE task_id LIKE"
                               " 'rnd-%'", NULL, "2"));
    free (spent_before);
}

void
led_settle_test (bool verbose)
{
    //  What can be told without the database
    P2C_CHECK (led_settle_valid_task_id ("a-1#c2"));
    P2C_CHECK (!led_settle_valid_task_id (""));
    P2C_CHECK (!led_settle_valid_task_id (NULL));
    P2C_CHECK (!led_settle_valid_task_id ("bad id"));
    char long_id [130];
    memset (long_id, 'x', 129);
    long_id [129] = 0;
    P2C_CHECK (!led_settle_valid_task_id (long_id));
    long_id [128] = 0;
    P2C_CHECK (led_settle_valid_task_id (long_id));

    led_fixture_t *fx = led_fixture_new ("led_settle_test", verbose);
    if (!fx)
        return;
    p2c_rates_t rates = P2C_RATES_DEFAULT;
    led_store_t *store = led_fixture_store (fx);
    led_store_t *store2 = led_fixture_store (fx);
    if (!store || !store2) {
        led_store_destroy (&store);
        led_fixture_destroy (&fx);
        return;
    }
    //  A store that is not connected settles nothing and says so
    led_store_t *down = led_store_new ("host=/nonexistent-p2c2r port=1 dbname=x connect_timeout=2",
                                       led_fixture_schema (fx), led_store_test_sql_dir (), &rates);
    led_settle_t one;
    led_fixture_fill (&one, "down-1", "encryption", 1, 2, 100);
    P2C_CHECK (down && led_settle_batch (down, &one, 1) == -1);
    P2C_CHECK (one.status == LED_SETTLE_PENDING);
    led_settle_clear (&one);
    led_store_destroy (&down);
    int64_t gamer = led_fixture_account (fx, "gamer", "player-7");
    int64_t peer = led_fixture_account (fx, "peer", "player-7");

    s_test_t t = { fx, store, store2, gamer, peer, rates };
    s_test_batch (&t);
    int64_t mixed_earning = s_test_mixed (&t);
    s_test_validation (&t, mixed_earning);
    s_test_failed (&t);
    s_test_race (&t);
    s_test_formula (&t);

    led_store_destroy (&store);
    led_store_destroy (&store2);
    led_fixture_destroy (&fx);
}
