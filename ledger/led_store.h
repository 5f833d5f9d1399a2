/*  The ledger's PostgreSQL store: the connection every part of the ledger's
    database work runs on, with the system accounts it loads at connect and
    the gamer balances the last call changed or read. Every call is
    synchronous (blocking libpq), so the ledger runs the store in its own
    thread (led_worker); tests call it directly. SQL carries values only as
    parameters (PQexecParams, and PQexecPrepared for settlement).
    The work itself lives with its concept: led_migrate (schema migrations),
    led_settle (batched, idempotent settlement), led_auth (API keys and
    AuthRequest), led_admin (operators' commands, one table) with
    led_accounts, led_payouts and led_rates (the commands' handlers). */
#ifndef LED_STORE_H_INCLUDED
#define LED_STORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "p2c_money.h"

typedef struct _led_store_t led_store_t;

//  A gamer's balance after a commit, for a BalanceUpdate to the scheduler
typedef struct {
    int64_t account_id;
    int64_t balance_pico;
    bool disabled;
} led_balance_t;

//  Settings of the ledger's business rules
typedef struct {
    int64_t starting_credit_pico;   //  credited to every new gamer (0: none)
    int64_t payout_threshold_pico;  //  least payable balance a payout moves
} led_policy_t;

#define LED_POLICY_DEFAULT { 0, 10000000000000LL }

//  A store for the database at conninfo, in schema (NULL: "public"; names of
//  [a-z0-9_], at most 63), migrations from sql_dir. Does not connect yet.
//  NULL when an argument is invalid.
led_store_t *led_store_new (const char *conninfo, const char *schema, const char *sql_dir,
                            const p2c_rates_t *rates);
void led_store_destroy (led_store_t **self_p);

//  Sets the business rules (defaults: LED_POLICY_DEFAULT).
void led_store_set_policy (led_store_t *self, const led_policy_t *policy);

//  The conninfo of the schema's owner (a secret, copied; NULL or "": none).
//  With it, each connect applies the migrations on a connection of the
//  owner's, closed after, and the store's own connection (the ledger's
//  role, 008_roles.sql) neither creates the schema nor migrates.
void led_store_set_owner (led_store_t *self, const char *conninfo);

//  Connects, creates the schema when missing, applies the migrations under
//  an advisory lock (led_migrate_run), loads the system accounts, when the
//  rates table is empty seeds it with the rates given to led_store_new
//  (led_rates_seed), and prepares the settlement (led_settle_prepare).
//  0 on success.
int led_store_connect (led_store_t *self);
bool led_store_connected (led_store_t *self);
void led_store_disconnect (led_store_t *self);

//  Gamer balances changed or read by the last settle, auth, admin or query
//  call (valid until the next call).
const led_balance_t *led_store_balances (led_store_t *self, size_t *count_p);

//  For the self-tests: where the migrations are (P2C2R_TEST_SQL_DIR, else
//  ledger/sql under the current directory)
const char *led_store_test_sql_dir (void);

//  Self-test; needs P2C2R_TEST_DB (fails loudly without it).
void led_store_test (bool verbose);

#endif
