/*  Inside the ledger's store: the struct and the statement helpers that
    its concept classes (led_migrate, led_settle, led_auth, led_admin,
    led_accounts, led_payouts, led_rates) share. Not for the worker or the
    server, which use led_store.h and the concepts' own headers. */
#ifndef LED_STORE_INT_H_INCLUDED
#define LED_STORE_INT_H_INCLUDED

#include "led_store.h"

#include <assert.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _led_store_t {
    char *conninfo;             //  secret: never logged
    char *owner_conninfo;       //  the schema owner's, for migrations; NULL: conninfo
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

//  Logs the first line of the server's error (res's, else the
//  connection's) as "store: WHAT failed" and keeps it in self->error.
void led_store_log_error (led_store_t *self, const char *what, PGresult *res);

//  Runs one parametrised statement; returns the result when its status is
//  the expected one, else logs, clears and returns NULL.
PGresult *led_store_exec (led_store_t *self, const char *what, const char *sql, int nparams,
                          const char *const *values, ExecStatusType expect);

//  A statement that returns no rows; true when it succeeded.
bool led_store_command (led_store_t *self, const char *what, const char *sql, int nparams,
                        const char *const *values);

//  After a failed statement: roll back, or drop a broken connection so the
//  owner reconnects.
void led_store_abort (led_store_t *self);

//  A bigint column of a result row
int64_t led_store_int64 (PGresult *res, int row, int col);

//  Server notices go to the debug log (a PQsetNoticeProcessor callback)
void led_store_notice (void *arg, const char *message);

//  The gamer balances to send: emptied at the start of every call, added
//  to by what the call changed or read
void led_store_bal_reset (led_store_t *self);
void led_store_bal_add (led_store_t *self, int64_t id, int64_t balance, bool disabled);

//  The stored balance and flag of a gamer, added to the balances to send
//  (nothing when id is not a gamer). False on a failed statement.
bool led_store_bal_read (led_store_t *self, int64_t id);

//  One balanced transaction of two entries: amount from one account to
//  another. *tx_p (when not NULL) gets its id. False on a failed statement.
bool led_store_transfer (led_store_t *self, const char *kind, int64_t from, int64_t to,
                         int64_t amount, const char *memo, int64_t *tx_p);

//  A PostgreSQL array literal built as text ("{1,2}", "{\"a\",\"b\"}"),
//  for one parameter that carries a whole batch. Inline: settlement adds
//  every element of a batch a character at a time, on the hot path.
typedef struct {
    char *data;                 //  the literal so far (free it when done)
    size_t len, cap;
} led_array_t;

static inline void
led_array_add (led_array_t *self, const char *text, size_t len)
{
    if (self->len + len + 1 > self->cap) {
        self->cap = (self->len + len + 1) * 2 + 64;
        self->data = (char *) realloc (self->data, self->cap);
        assert (self->data);
    }
    memcpy (self->data + self->len, text, len);
    self->len += len;
    self->data [self->len] = 0;
}

static inline void
led_array_start (led_array_t *self)
{
    self->len = 0;
    led_array_add (self, "{", 1);
}

static inline void
led_array_sep (led_array_t *self)
{
    if (self->len > 1)
        led_array_add (self, ",", 1);
}

static inline void
led_array_int (led_array_t *self, int64_t value)
{
    char num [32];
    int n = snprintf (num, sizeof num, "%lld", (long long) value);
    led_array_sep (self);
    led_array_add (self, num, (size_t) n);
}

//  An element of a text array literal, quoted so that any text is one value
static inline void
led_array_text (led_array_t *self, const char *value)
{
    led_array_sep (self);
    led_array_add (self, "\"", 1);
    for (const char *c = value; *c; c++) {
        if (*c == '"' || *c == '\\')
            led_array_add (self, "\\", 1);
        led_array_add (self, c, 1);
    }
    led_array_add (self, "\"", 1);
}

static inline void
led_array_end (led_array_t *self)
{
    led_array_add (self, "}", 1);
}

#endif
