/*  The ledger's PostgreSQL store: schema migrations, accounts, and batched,
    idempotent settlement. Every call is synchronous (blocking libpq), so the
    ledger runs the store in its own thread (led_worker); tests call it
    directly. SQL carries values only as parameters (PQexecParams). */
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
    //  Output
    led_settle_status_t status;
    p2c_split_t split;          //  amounts charged (stored ones for a replay)
    const char *error;          //  static text when rejected
} led_settle_t;

//  Frees the strings an item holds (not the item).
void led_settle_clear (led_settle_t *item);

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

//  Connects, creates the schema when missing, applies the migrations under
//  an advisory lock and loads the system accounts. 0 on success.
int led_store_connect (led_store_t *self);
bool led_store_connected (led_store_t *self);
void led_store_disconnect (led_store_t *self);

//  Applies the migrations not yet recorded in schema_migrations, in order,
//  each in its own transaction. Returns how many it applied, -1 on failure.
int led_store_migrate (led_store_t *self);

//  Settles items in one transaction. Returns 0 after COMMIT succeeded (each
//  item NEW, REPLAY or REJECTED), -1 when the transaction failed (all items
//  left PENDING; the connection is dropped when it broke).
int led_store_settle (led_store_t *self, led_settle_t *items, size_t count);

//  Finds the account of role ("gamer"/"peer") and name; under open
//  registration creates it when missing. *message_p is static text.
led_auth_status_t led_store_auth (led_store_t *self, const char *role, const char *name,
                                  const char *api_key, bool open, int64_t *account_id_p,
                                  const char **message_p);

//  True for a task id we accept: 1..128 printable ASCII characters.
bool led_store_valid_task_id (const char *task_id);

//  For the self-tests: where the migrations are (P2C2R_TEST_SQL_DIR, else
//  ledger/sql under the current directory)
const char *led_store_test_sql_dir (void);

//  Self-test; needs P2C2R_TEST_DB (fails loudly without it).
void led_store_test (bool verbose);

#endif
