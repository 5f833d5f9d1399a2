/*  The ledger's PostgreSQL store: schema migrations, accounts, and batched,
    idempotent settlement. Every call is synchronous (blocking libpq), so the
    ledger runs the store in its own thread (led_worker); tests call it
    directly. SQL carries values only as parameters (PQexecParams, and
    PQexecPrepared for settlement). */
#ifndef LED_STORE_H_INCLUDED
#define LED_STORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "p2c_money.h"

typedef struct _led_store_t led_store_t;

//  One settlement request and, after led_store_settle, its outcome.
typedef enum {
    LED_SETTLE_PENDING = 0,     //  not decided: the batch failed, send no ack
    LED_SETTLE_NEW,             //  written now
    LED_SETTLE_REPLAY,          //  settled before: stored amounts, nothing written
    LED_SETTLE_REJECTED         //  refused for good (error says why): negative ack
} led_settle_status_t;

typedef struct {
    //  Input (owned strings)
    char *task_id;
    char *task_type;
    int64_t gamer_account;
    int64_t peer_account;
    uint64_t billed_us;
    uint64_t compute_us;
    uint64_t observed_us;
    char *reply_to;             //  node id to ack (the server's business)
    bool reverse;               //  a SettleReverse: take the settled task's
                                //  earning back (only task_id and reason count)
    char *reason;               //  of a reversal, kept in the reversals table
    //  Output
    led_settle_status_t status;
    p2c_split_t split;          //  amounts charged (stored ones for a replay)
    const char *error;          //  static text when rejected
} led_settle_t;

//  Frees the strings an item holds (not the item).
void led_settle_clear (led_settle_t *item);

//  A gamer's balance after a commit, for a BalanceUpdate to the scheduler
typedef struct {
    int64_t account_id;
    int64_t balance_pico;
    bool disabled;
} led_balance_t;

//  What an operator's command (led_store_admin) came to
typedef enum {
    LED_ADMIN_OK = 0,
    LED_ADMIN_REFUSED,          //  bad request or against the rules (code says which)
    LED_ADMIN_UNAVAILABLE       //  the database failed; nothing was written
} led_admin_status_t;

//  Settings of the ledger's business rules
typedef struct {
    int64_t starting_credit_pico;   //  credited to every new gamer (0: none)
    int64_t payout_threshold_pico;  //  least payable balance a payout moves
} led_policy_t;

#define LED_POLICY_DEFAULT { 0, 10000000000000LL }

typedef enum {
    LED_AUTH_OK = 0,
    LED_AUTH_FAILED,            //  unknown, disabled, or not allowed
    LED_AUTH_BAD_REQUEST,       //  malformed role or name
    LED_AUTH_UNAVAILABLE        //  the database failed; try again
} led_auth_status_t;

//  A store for the database at conninfo, in schema (NULL: "public"; names of
//  [a-z0-9_], at most 63), migrations from sql_dir. Does not connect yet.
//  NULL when an argument is invalid.
led_store_t *led_store_new (const char *conninfo, const char *schema, const char *sql_dir,
                            const p2c_rates_t *rates);
void led_store_destroy (led_store_t **self_p);

//  Sets the business rules (defaults: LED_POLICY_DEFAULT).
void led_store_set_policy (led_store_t *self, const led_policy_t *policy);

//  Connects, creates the schema when missing, applies the migrations under
//  an advisory lock, loads the system accounts and, when the rates table is
//  empty, seeds it with the rates given to led_store_new. 0 on success.
int led_store_connect (led_store_t *self);
bool led_store_connected (led_store_t *self);
void led_store_disconnect (led_store_t *self);

//  Applies the migrations not yet recorded in schema_migrations, in order,
//  each in its own transaction. Returns how many it applied, -1 on failure.
int led_store_migrate (led_store_t *self);

//  Settles items in one transaction (one statement), at the rates in force
//  at its start. Returns 0 after COMMIT succeeded (each item NEW, REPLAY or
//  REJECTED), -1 when the transaction failed (all items left PENDING; the
//  connection is dropped when it broke). Reversals, rare, run after it in a
//  transaction of their own: when only that one fails, the reversals are
//  left PENDING and the settlements keep their outcome (0).
//  gamer_account 0 means the treasury pays (a validation run): the task row
//  names the treasury as payer, its charge is the peer's earning, no fee, no
//  rates row (the audit's rates check is for gamer charges).
//  A reverse item takes a settled task's peer earning back to the treasury,
//  once per task (table reversals; a replay answers the stored amount); never
//  more than the peer's balance, so that an account already paid out does
//  not go negative. Its split.peer_earning is the amount taken back. A task
//  not settled (yet) is REJECTED with "not settled".
int led_store_settle (led_store_t *self, led_settle_t *items, size_t count);

//  With an API key: the account whose key it is (its kind must be role; a
//  disabled one fails). Without: under open registration the account of role
//  ("gamer"/"peer") and name, created when missing (a new gamer gets the
//  starting credit); else fails. *message_p is static text.
led_auth_status_t led_store_auth (led_store_t *self, const char *role, const char *name,
                                  const char *api_key, bool open, int64_t *account_id_p,
                                  const char **message_p);

//  Runs an operator's command (AdminRequest: command, args_json) in one
//  transaction. On success *result_p is a JSON object text (the caller
//  frees it); else *code_p (static) and *message_p (caller frees) say why.
led_admin_status_t led_store_admin (led_store_t *self, const char *command,
                                    const char *args_json, char **result_p,
                                    const char **code_p, char **message_p);

//  Balances of the given accounts (gamers only), for a BalanceQuery. 0 or -1.
int led_store_query_balances (led_store_t *self, const int64_t *ids, size_t count);

//  Gamer balances changed or read by the last settle, auth, admin or query
//  call (valid until the next call).
const led_balance_t *led_store_balances (led_store_t *self, size_t *count_p);

//  A new API key: 64 hex digits from 256 random bits (OpenSSL RAND_bytes),
//  into key (65 bytes), and its SHA-256 in hex into hash (65 bytes). 0 or -1.
int led_store_new_key (char *key, char *hash);

//  SHA-256 of text in hex, into hash (65 bytes).
void led_store_hash_key (const char *text, char *hash);

//  True for a task id we accept: 1..128 printable ASCII characters.
bool led_store_valid_task_id (const char *task_id);

//  For the self-tests: where the migrations are (P2C2R_TEST_SQL_DIR, else
//  ledger/sql under the current directory)
const char *led_store_test_sql_dir (void);

//  Self-test; needs P2C2R_TEST_DB (fails loudly without it).
void led_store_test (bool verbose);

#endif
